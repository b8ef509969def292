# The commands a person and CI both use. Each installs what it needs.
#
#   make test     fmt check, clippy (warnings denied), build, every test
#   make demo     local blue/green rehearsal: paysim blue/green, the three hooks, a good and a bad release
#   make invoke   run one hook under cargo lambda watch and invoke it with a sample event
#   make serve    start one hook under cargo lambda watch and print the invoke command to use
#   make bench    performance benchmarks (release build, nginx, wrk, oha): see BENCHMARKS.md
#   make bench-sizes   the hooks' size and cold start alone (release build only)
#   make tools    install cargo-lambda into the project venv (.venv, git-ignored)

SHELL := /bin/bash
VENV := .venv
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda
CARGO_LAMBDA_VERSION := 1.9.2
CHECKOV := $(VENV)/checkov/bin/checkov
# A real JUnit reader, for the tests of `greenlight check --format junit`.
JUNITPARSER_VERSION := 5.0.3
JUNITPARSER := $(VENV)/.junitparser-$(JUNITPARSER_VERSION)
# An independent JSON Schema validator, for the tests of greenlight.schema.json. Its own venv:
# it needs a newer click than the SAM CLI pins.
CHECK_JSONSCHEMA_VERSION := 0.39.0
CHECK_JSONSCHEMA := $(VENV)/jsonschema/bin/check-jsonschema
HOOK ?=
CONFIG ?= examples/local.yaml
TARGET_MODE ?= healthy
EVENT ?=
FAULT ?= idempotency-ignored
export FAULT

# Never let the AWS SDK wait on the EC2 metadata service on a laptop or CI machine.
export AWS_EC2_METADATA_DISABLED := true

.PHONY: test tools build fmt-check lint lint-templates demo invoke serve bench bench-sizes package clean

test: tools fmt-check lint lint-templates build
	cargo nextest run --workspace --locked --no-fail-fast

tools: $(CARGO_LAMBDA) $(JUNITPARSER) $(CHECK_JSONSCHEMA)

$(CARGO_LAMBDA):
	@command -v python3 >/dev/null || { echo "python3 is required (3.9 or newer) to install cargo-lambda"; exit 2; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'cargo-lambda==$(CARGO_LAMBDA_VERSION)'
	@$(CARGO_LAMBDA) lambda --version

$(JUNITPARSER): $(CARGO_LAMBDA)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'junitparser==$(JUNITPARSER_VERSION)'
	@touch $@

$(CHECK_JSONSCHEMA): $(CARGO_LAMBDA)
	python3 -m venv $(VENV)/jsonschema
	$(VENV)/jsonschema/bin/pip install --quiet --disable-pip-version-check 'check-jsonschema==$(CHECK_JSONSCHEMA_VERSION)'

# cfn-lint and the SAM CLI, for the templates.
$(VENV)/bin/sam: $(CARGO_LAMBDA)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'cfn-lint>=1.20' 'aws-sam-cli>=1.120'

# checkov, the security checks of the templates. It pins boto3, botocore, networkx and packaging
# below what the SAM CLI and cfn-lint require, so it gets a venv of its own inside .venv.
$(CHECKOV): $(CARGO_LAMBDA)
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check 'checkov>=3.2,<4'

# template.yaml and the example stack, linted the way AWS does, then checkov offline
# (--skip-download: no Prisma Cloud calls); no account needed. A skipped check carries its
# reason in the template (Metadata: checkov: skip).
lint-templates: $(VENV)/bin/sam $(CHECKOV)
	AWS_DEFAULT_REGION=us-east-1 $(VENV)/bin/cfn-lint template.yaml examples/bluegreen-stack.yaml
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template template.yaml
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template examples/bluegreen-stack.yaml
	AWS_DEFAULT_REGION=us-east-1 $(CHECKOV) -f template.yaml examples/bluegreen-stack.yaml --framework cloudformation --skip-download --quiet --compact

# sam build for arm64 (provided.al2023) with cargo-lambda and zig (from PyPI): .aws-sam/build.
package: $(VENV)/bin/sam
	$(VENV)/bin/pip install --quiet --disable-pip-version-check ziglang
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --template template.yaml --beta-features

fmt-check:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets --locked -- -D warnings

# One build with every target, so tests, scripts and the hook binaries share one set of
# artifacts (a narrower build would resolve other features and compile the AWS SDK again).
build:
	cargo build --workspace --all-targets --locked

demo: tools build
	scripts/demo.sh

invoke: tools build
	EVENT=$(EVENT) scripts/invoke.sh "$(HOOK)" $(CONFIG) $(TARGET_MODE)

serve: tools build
	SERVE=1 EVENT=$(EVENT) scripts/invoke.sh "$(HOOK)" $(CONFIG) $(TARGET_MODE)

# Release hooks and CLI, nginx and wrk (Debian), oha (crates.io, into target/bench-tools), boto3
# for the Python floor; then one side-by-side run.
bench: tools build
	cargo build --release --locked -p after-allow-test-traffic -p before-allow-traffic -p after-allow-traffic -p greenlight-cli
	@command -v nginx >/dev/null && command -v wrk >/dev/null || { \
	  echo "installing nginx and wrk from Debian (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk; }
	@test -x target/bench-tools/bin/oha || cargo install oha --locked --root target/bench-tools
	$(VENV)/bin/pip install --quiet --disable-pip-version-check boto3
	$(VENV)/bin/python bench/bench.py

# What a change to the hooks' code moves: their size and cold start, without the load rig.
bench-sizes:
	cargo build --release --locked -p after-allow-test-traffic -p before-allow-traffic -p after-allow-traffic
	python3 bench/bench.py sizes

clean:
	cargo clean
	rm -rf $(VENV)
