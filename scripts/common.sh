# Shared by scripts/invoke.sh and scripts/demo.sh (sourced, not run).

# Whether something listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_free PORT VARIABLE: stop with the variable to set when the port is taken.
require_free() {
  if port_busy "$1"; then echo "127.0.0.1:$1 is already in use; set $2 to a free port" >&2; exit 1; fi
}

# wait_port PORT NAME: wait (at most 30 s) until NAME listens on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 300); do port_busy "$1" && return 0; sleep 0.1; done
  echo "$2 did not start listening on 127.0.0.1:$1" >&2; exit 1
}

# The key that seals a watch's state between invocations: random for each local run, as the
# deployed stack's generated secret is random for each stack (never a fixed, published key).
GREENLIGHT_STATE_KEY=${GREENLIGHT_STATE_KEY:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}

# run_hook HOOK [NAME=VALUE...]: become the hook binary, attached to the runtime emulator on
# $watch_port and reporting to the local CodeDeploy on $codedeploy_port, with dummy AWS
# credentials and nothing else from this shell's environment. Run it in the background. (The
# dummy keys are the ones the local AWS fakes check SigV4 signatures against.)
run_hook() {
  local hook=$1; shift
  exec env -i PATH="$PATH" \
    AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$watch_port/.rt/$hook" \
    AWS_LAMBDA_FUNCTION_NAME="$hook" AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDGREENLIGHTTEST AWS_SECRET_ACCESS_KEY=greenlight-test-secret AWS_EC2_METADATA_DISABLED=true \
    AWS_ENDPOINT_URL_CODEDEPLOY="http://127.0.0.1:$codedeploy_port" \
    GREENLIGHT_STATE_KEY="$GREENLIGHT_STATE_KEY" \
    "$@" "target/debug/$hook"
}
