#!/usr/bin/env bash
# A local blue/green rehearsal: paysim blue (v1) and green (v2) on one database behind a local
# ALB, the three real hook binaries under `cargo lambda watch`, invoked in CodeDeploy's order
# with `cargo lambda invoke`, reporting to a local CodeDeploy that prints what it receives.
# First a good release, then a broken green (FAULT, default idempotency-ignored): see where
# greenlight stops it and why. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

fault=${FAULT:-idempotency-ignored}
prod_port=${PROD_PORT:-8080}
test_port=${TEST_PORT:-8443}
watch_port=${WATCH_PORT:-9000}
codedeploy_port=${CODEDEPLOY_PORT:-9901}
cloudwatch_port=${CLOUDWATCH_PORT:-9902}
config=${CONFIG:-examples/payments.yaml}
bin=target/debug
cargo_lambda=.venv/bin/cargo-lambda
export PAYSIM_API_KEY=${PAYSIM_API_KEY:-sk_test_demo_$(date +%s)}
hooks=(after-allow-test-traffic before-allow-traffic after-allow-traffic)
stages=(AfterAllowTestTraffic BeforeAllowTraffic AfterAllowTraffic)

for tool in "$cargo_lambda" "$bin/paysim" "$bin/fake-alb" "$bin/fake-codedeploy" "$bin/fake-cloudwatch" "${hooks[@]/#/$bin/}"; do
  [ -x "$tool" ] || { echo "$tool is missing: run 'make demo' (it builds and installs what it needs)" >&2; exit 2; }
done
work=$(mktemp -d)
# The shipped suite names the ALB listeners 127.0.0.1:8080 (prod) and :8443 (test). Its metric
# checks read minutes of CloudWatch datapoints and its bake watches production for ten minutes;
# this rehearsal lasts seconds, so periods and windows shrink to 1s and 1m (the local CloudWatch
# serves any period) and the bake to a run every second for 4 seconds.
sed -e "s/127.0.0.1:8443/127.0.0.1:$test_port/; s/127.0.0.1:8080/127.0.0.1:$prod_port/" \
    -e "s/period: 60s/period: 1s/; s/window: 10m/window: 1m/" \
    -e "s/repeat: { every: 1m, for: 10m }/repeat: { every: 1s, for: 4s }/" "$config" > "$work/suite.yaml"
config=$work/suite.yaml
logs=target/demo
mkdir -p "$logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

require_free "$prod_port" PROD_PORT; require_free "$test_port" TEST_PORT
require_free "$watch_port" WATCH_PORT; require_free "$codedeploy_port" CODEDEPLOY_PORT
require_free "$cloudwatch_port" CLOUDWATCH_PORT

# Logs of the processes started here, numbered in start order (never two with one name).
started=0

# paysim prints "paysim vN listening on http://127.0.0.1:PORT (fault: ...)"; start it on a free
# port and leave that port in $port. Not called in $(...): the pid must reach this shell's
# $pids, or the cleanup would leave paysim running.
start_paysim() { # version fault
  local log="$work/paysim-$1-$((++started)).log" args=(--version "$1" --port 0 --db "$work/paysim.db") pid gone
  [ -n "$2" ] && args+=(--fault "$2")
  # Created here: the background job's own redirection may not have run yet at the first read.
  : > "$log"
  "$bin/paysim" "${args[@]}" > "$log" 2>&1 & pid=$!; pids+=($pid)
  for _ in $(seq 1 300); do
    # Whether it still runs is asked before its log is read, so a line printed just before it
    # exited is still seen.
    gone=; kill -0 "$pid" 2>/dev/null || gone=1
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && return 0
    [ -z "$gone" ] || break
    sleep 0.1
  done
  echo "paysim $1 did not start:" >&2; cat "$log" >&2; exit 1
}

# The target groups of the shipped suite's deployment section: blue is payments-a, green
# payments-b, as the local CodeDeploy says for every deployment.
blue_tg=targetgroup/payments-a/73e2d6bc24d8a067
green_tg=targetgroup/payments-b/2453ed029918f21f

# wait_alb_line TEXT N: wait (at most 30 s) until the local ALB has printed N lines containing
# TEXT, then show the last of them. It prints each event once it has taken effect (listening,
# traffic shifted), so this waits on the event itself.
wait_alb_line() {
  local count gone
  for _ in $(seq 1 300); do
    gone=; kill -0 "$alb_pid" 2>/dev/null || gone=1
    count=$(grep -c -F -- "$1" "$alb_log" || true)
    if [ "${count:-0}" -ge "$2" ]; then grep -F -- "$1" "$alb_log" | tail -n 1; return 0; fi
    [ -z "$gone" ] || break
    sleep 0.1
  done
  echo "the local ALB did not report '$1':" >&2; cat "$alb_log" >&2; exit 1
}

# The ALB in front of blue and green, and the CloudWatch that publishes their traffic.
start_alb() { # blue green
  alb_log="$work/alb-$((++started)).log"
  : > "$alb_log"
  "$bin/fake-alb" --prod-port "$prod_port" --test-port "$test_port" --blue "$1" --green "$2" > "$alb_log" 2>&1 & alb_pid=$!; pids+=($alb_pid)
  "$bin/fake-cloudwatch" --port "$cloudwatch_port" --target-group "$blue_tg=http://127.0.0.1:$1" \
    --target-group "$green_tg=http://127.0.0.1:$2" >/dev/null & cloudwatch_pid=$!; pids+=($cloudwatch_pid)
  wait_alb_line "[alb] listening" 1
  wait_port "$cloudwatch_port" "the local CloudWatch"
}
stop_alb() {
  kill "$alb_pid" "$cloudwatch_pid" 2>/dev/null || true; wait "$alb_pid" "$cloudwatch_pid" 2>/dev/null || true
}

"$bin/fake-codedeploy" --port "$codedeploy_port" \
  --green-target-group payments-b --blue-target-group payments-a & pids+=($!)
"$cargo_lambda" lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$watch_port" >/dev/null 2>&1 & pids+=($!)
wait_port "$codedeploy_port" fake-codedeploy
wait_port "$watch_port" "cargo lambda watch"

for hook in "${hooks[@]}"; do
  run_hook "$hook" GREENLIGHT_CONFIG="file:$config" PAYSIM_API_KEY="$PAYSIM_API_KEY" \
    AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:$cloudwatch_port" \
    > "$logs/$hook.log" 2>&1 & pids+=($!)
done
echo "hook logs (JSON lines, as CloudWatch would get them): $logs/"

show() { # result-file stage
  python3 - "$1" "$2" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
report = result["report"]
mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}
print(f"  {sys.argv[2]}: {result['status']} (CodeDeploy {result['delivery']}), {report['duration_ms']} ms")
for check in report["checks"]:
    print(f"    {mark[check['outcome']]:5}  {check['name']}")
    if check["outcome"] != "passed":
        for part in check["message"].split("; "):
            print(f"           {part}")
sys.exit(0 if result["status"] == "Succeeded" else 3)
PY
}

# Run the hooks in CodeDeploy's order; production traffic moves to green before
# AfterAllowTraffic. Returns 1 at the first Failed stage (CodeDeploy rolls back there).
deploy() { # name
  local i
  for i in 0 1 2; do
    if [ "$i" -eq 2 ]; then
      # Shift production to green and wait until the ALB says requests go there. Then wait for
      # the clock to pass the next whole second: like CloudWatch, the local one publishes whole
      # 1-second periods only, and the metric checks judge green's traffic from the shift on.
      kill -USR1 "$alb_pid"; wait_alb_line "(traffic shifted)" 1
      sleep 1
    fi
    local id="$1-${stages[$i]}-$(date +%s%N)"
    "$cargo_lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$watch_port" --output-format json \
      --data-ascii "{\"DeploymentId\":\"d-$1\",\"LifecycleEventHookExecutionId\":\"$id\"}" "${hooks[$i]}" > "$work/result.json"
    if ! show "$work/result.json" "${stages[$i]}"; then
      if [ "$i" -eq 2 ]; then
        echo "  => CodeDeploy rolls back at ${stages[$i]}: production moves back to blue."
      else
        echo "  => CodeDeploy rolls back at ${stages[$i]}: production keeps serving blue."
      fi
      return 1
    fi
  done
  echo "  => all hooks passed: the release is live."
}

unrefunded() {
  python3 - "$1" <<'PY'
import json, os, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/payments?limit=100",
                             headers={"Authorization": "Bearer " + os.environ["PAYSIM_API_KEY"]})
payments = json.load(urllib.request.urlopen(req, timeout=10))["data"]
open_ = [p["id"] for p in payments if p["status"] in ("captured", "authorized")]
print(f"  test payments created: {len(payments)}, left unrefunded: {len(open_)}")
PY
}

echo
echo "== Release 1: a good green (paysim v2) =="
start_paysim v1 ""; blue=$port
start_paysim v2 ""; green=$port
start_alb "$blue" "$green"
deploy good || true
# How many requests the good green served in the whole deployment, the bake's 5 included: a
# green that dies at the bake's second run serves 3 fewer (release 3).
served=$(python3 -c "import json,urllib.request;print(len(json.load(urllib.request.urlopen('http://127.0.0.1:$green/_stats',timeout=10))['requests']))")
unrefunded "$green"

echo
echo "== Release 2: a broken green (paysim v2 --fault $fault) =="
stop_alb
auditor=$green
start_paysim v2 "$fault"; green=$port
start_alb "$blue" "$green"
if deploy broken; then
  echo "  !! the fault '$fault' was not caught" >&2; exit 1
fi
unrefunded "$auditor"

echo
echo "== Release 3: a green that dies after the shift (paysim v2 --fault crash-after=$((served - 3))) =="
stop_alb
start_paysim v2 "crash-after=$((served - 3))"; green=$port
start_alb "$blue" "$green"
if deploy late; then
  echo "  !! the crash after the shift was not caught" >&2; exit 1
fi
unrefunded "$auditor"
