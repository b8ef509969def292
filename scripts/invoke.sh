#!/usr/bin/env bash
# Run one hook binary under `cargo lambda watch` (runtime emulator) and send it a sample event
# with `cargo lambda invoke`, with a local CodeDeploy that prints the status report it receives.
#
#   scripts/invoke.sh [HOOK] [CONFIG] [TARGET_MODE]
#   HOOK         after-allow-test-traffic (default) | before-allow-traffic | after-allow-traffic
#   CONFIG       config file (default examples/local.yaml)
#   TARGET_MODE  healthy (default) | broken | slow   (how the local target answers)
#   EVENT=doctor sends {"greenlight": "doctor"} instead: the preflight, as in a deployed function
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

hook=${1:-after-allow-test-traffic}
config=${2:-examples/local.yaml}
mode=${3:-healthy}
watch_port=${WATCH_PORT:-9000}
codedeploy_port=${CODEDEPLOY_PORT:-9901}
target_port=${TARGET_PORT:-9902}
bin=target/debug
cargo_lambda=.venv/bin/cargo-lambda

case "$hook" in
  after-allow-test-traffic|before-allow-traffic|after-allow-traffic) ;;
  *) echo "unknown hook '$hook': use after-allow-test-traffic, before-allow-traffic or after-allow-traffic" >&2; exit 2 ;;
esac
[ -f "$config" ] || { echo "config file '$config' not found" >&2; exit 2; }
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
run_hook "$hook" GREENLIGHT_CONFIG="file:$config" & pids+=($!)

if [ "${EVENT:-}" = doctor ]; then
  echo "[invoke] cargo lambda invoke $hook --data-ascii '{\"greenlight\": \"doctor\"}'"
  status=0
  "$cargo_lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$watch_port" \
    --data-ascii '{"greenlight": "doctor"}' --output-format json "$hook" > "target/invoke-$hook.json" || status=$?
  [ "$status" -eq 0 ] || { echo "[result] the invocation failed (see above)"; exit "$status"; }
  python3 - "target/invoke-$hook.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
for f in result["findings"]:
    line = f"[doctor] {'ok ' if f['ok'] else 'FIX'} {f['subject']}: {f['detail']}"
    print(line + (f" -> {f['fix']}" if f.get("fix") else ""))
print("[doctor] all is well" if result["ok"] else "[doctor] not ready")
PY
  exit 0
fi
echo "[invoke] cargo lambda invoke $hook --data-file events/$hook.json"
status=0
"$cargo_lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$watch_port" \
  --data-file "events/$hook.json" --output-format json "$hook" > "target/invoke-$hook.json" || status=$?
if [ "$status" -eq 0 ]; then
  python3 - "target/invoke-$hook.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
print(f"[result] CodeDeploy status: {result['status']} ({result['delivery']})")
for check in result["report"]["checks"]:
    print(f"[result]   {check['name']}: {check['outcome']} - {check['message']}")
PY
else
  echo "[result] the invocation failed (see above)"
fi
exit "$status"
