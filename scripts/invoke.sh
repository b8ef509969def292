#!/usr/bin/env bash
# Run one hook binary under `cargo lambda watch` (runtime emulator), with a local CodeDeploy that
# prints the status report it receives and a local target, and send it a sample event with
# `cargo lambda invoke`. Exits 0 only when the hook's answer is a success.
#
#   scripts/invoke.sh [HOOK] [CONFIG] [TARGET_MODE]
#   HOOK         after-allow-test-traffic | before-allow-traffic | after-allow-traffic
#                (default: the one the event is for, else after-allow-test-traffic)
#   CONFIG       config file (default examples/local.yaml)
#   TARGET_MODE  healthy (default) | broken | slow   (how the local target answers)
#   EVENT=NAME   a file in events/ (CodeDeploy or ECS-native), or a path; EVENT=doctor sends
#                {"greenlight": "doctor"}: the preflight, as in a deployed function
#   SERVE=1      start everything, print the `cargo lambda invoke` command for a second
#                terminal, and keep running until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

config=${2:-examples/local.yaml}
mode=${3:-healthy}
watch_port=${WATCH_PORT:-9000}
codedeploy_port=${CODEDEPLOY_PORT:-9901}
target_port=${TARGET_PORT:-9902}
bin=target/debug
cargo_lambda=.venv/bin/cargo-lambda

# The event: a name in events/, a path, or the doctor.
event=${EVENT:-}
case "$event" in
  doctor) event_file= ;;
  "") event_file= ;;
  */*) event_file=$event ;;
  *) event_file=events/${event%.json}.json ;;
esac
if [ -n "$event_file" ] && [ ! -f "$event_file" ]; then
  echo "event '$event' not found: use a file in events/ ($(cd events && ls | tr '\n' ' ')) or EVENT=doctor" >&2
  exit 2
fi

# The hook: as asked, else the one an ECS event's lifecycleStage or a CodeDeploy sample's name is for.
hook=${1:-}
if [ -z "$hook" ] && [ -n "$event_file" ]; then
  hook=$(python3 - "$event_file" <<'PY'
import json, os, sys
path = sys.argv[1]
event = json.load(open(path))
stage = event.get("lifecycleStage", "")
hooks = {
    "POST_TEST_TRAFFIC_SHIFT": "after-allow-test-traffic",
    "PRE_PRODUCTION_TRAFFIC_SHIFT": "before-allow-traffic",
    "PRODUCTION_TRAFFIC_SHIFT": "after-allow-traffic",
    "POST_PRODUCTION_TRAFFIC_SHIFT": "after-allow-traffic",
}
name = os.path.basename(path).removesuffix(".json")
print(hooks.get(stage, name if name in hooks.values() else ""))
PY
)
fi
hook=${hook:-after-allow-test-traffic}
case "$hook" in
  after-allow-test-traffic|before-allow-traffic|after-allow-traffic) ;;
  *) echo "unknown hook '$hook': use after-allow-test-traffic, before-allow-traffic or after-allow-traffic" >&2; exit 2 ;;
esac
event_file=${event_file:-events/$hook.json}
[ -f "$config" ] || { echo "config file '$config' not found (CONFIG=path/to/config.yaml)" >&2; exit 2; }
for tool in "$cargo_lambda" "$bin/$hook" "$bin/fake-codedeploy" "$bin/fake-target"; do
  [ -x "$tool" ] || { echo "$tool is missing: run 'make invoke' (it builds and installs what it needs)" >&2; exit 2; }
done

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

require_free "$watch_port" WATCH_PORT; require_free "$codedeploy_port" CODEDEPLOY_PORT; require_free "$target_port" TARGET_PORT

"$bin/fake-codedeploy" --port "$codedeploy_port" & pids+=($!)
"$bin/fake-target" --port "$target_port" --mode "$mode" & pids+=($!)
"$cargo_lambda" lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$watch_port" >/dev/null 2>&1 & pids+=($!)
wait_port "$codedeploy_port" fake-codedeploy
wait_port "$target_port" fake-target
wait_port "$watch_port" "cargo lambda watch"

echo "[hook] $hook with GREENLIGHT_CONFIG=file:$config (logs below are the function's JSON lines)"
# GREENLIGHT_LOCAL_RUN: the doctor skips what only AWS can answer (CodeDeploy, IAM) and says so.
run_hook "$hook" GREENLIGHT_CONFIG="file:$config" GREENLIGHT_LOCAL_RUN=1 & pids+=($!)

invoke=("$cargo_lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$watch_port")
if [ "$event" = doctor ]; then
  data=(--data-ascii '{"greenlight": "doctor"}')
  shown="--data-ascii '{\"greenlight\": \"doctor\"}'"
else
  data=(--data-file "$event_file")
  shown="--data-file $event_file"
fi

if [ "${SERVE:-}" = 1 ]; then
  echo "[serve] the hook is up. In a second terminal, from $(pwd):"
  echo "  ${invoke[*]} $shown $hook"
  echo "[serve] any file in events/ works the same way (an ECS event must be for this hook's stage). Ctrl-C stops everything."
  wait
  exit 0
fi

echo "[invoke] ${invoke[*]} $shown $hook"
status=0
"${invoke[@]}" "${data[@]}" --output-format json "$hook" > "target/invoke-$hook.json" || status=$?
[ "$status" -eq 0 ] || { echo "[result] the invocation failed (see above)"; exit "$status"; }
if [ "$event" = doctor ]; then
  python3 - "target/invoke-$hook.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
for f in result["findings"]:
    line = f"[doctor] {'ok ' if f['ok'] else 'FIX'} {f['subject']}: {f['detail']}"
    print(line + (f" -> {f['fix']}" if f.get("fix") else ""))
print("[doctor] all is well" if result["ok"] else "[doctor] not ready")
sys.exit(0 if result["ok"] else 1)
PY
  exit $?
fi
python3 - "target/invoke-$hook.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
if "hookStatus" in result:  # ECS reads the return value
    status = result["hookStatus"]
    print(f"[result] ECS hookStatus: {status}")
    details = result.get("hookDetails", {})
    if details.get("greenlightSummary"):
        print(f"[result]   {details['greenlightSummary']}")
    if status == "IN_PROGRESS":
        print(f"[result]   the watch goes on: ECS would call again in {result.get('callBackDelay')} s with hookDetails")
    sys.exit(0 if status == "SUCCEEDED" else 1)
status = result["status"]
print(f"[result] CodeDeploy status: {status} ({result.get('delivery', 'not reported')})")
for check in result["report"]["checks"]:
    print(f"[result]   {check['name']}: {check['outcome']} - {check['message']}")
for error in result["report"].get("errors", []):
    print(f"[result]   error: {error}")
sys.exit(0 if status == "Succeeded" else 1)
PY
