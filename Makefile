# Ferry: build, test and lint entry points. See README.md ("Quickstart").
#
# Tools the project installs itself (cargo-lambda, pinned) live in .tools/venv;
# put them first on PATH for every recipe.
export PATH := $(CURDIR)/.tools/venv/bin:$(PATH)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

# The Lambda functions: one per functions/<dir>, binary `ferry-<dir>`. Artifacts
# land in target/lambda/<bin>/bootstrap and target/lambda/<bin>/bootstrap.zip.
FUNCTIONS := $(patsubst functions/%/Cargo.toml,ferry-%,$(wildcard functions/*/Cargo.toml))
LAMBDA_DIR := $(or $(CARGO_TARGET_DIR),target)/lambda

.PHONY: simulate test lint tools build bench demo e2e fuzz clean validate-tools validate package

# The state machine tests run the deployed definition with aws-local-stepfunctions (pinned
# in statemachine/test/package-lock.json); installed again only when the lock file changes.
SFN_TEST_DEPS := statemachine/test/node_modules/.package-lock.json
$(SFN_TEST_DEPS): statemachine/test/package-lock.json
	npm ci --prefix statemachine/test --no-audit --no-fund

# Everything: unit, adapter (mocked AWS) and fixture tests; the state machine with scripted
# Lambda states; the local emulator's own tests; then end to end against the emulator.
test: $(SFN_TEST_DEPS)
	cargo test --workspace --all-targets --locked
	cargo test --workspace --doc --locked
	@# Benchmarks that cannot rot: one run of the cold-start section's functions against its
	@# AWS stub, and the polling-cost walk of the runner definition (bench/README.md).
	python3 bench/coldstart.py --smoke
	cargo run -p ferry --example poll_cost --locked -q > /dev/null
	cd statemachine/test && npm test
	bash scripts/emulator.sh install
	bash scripts/emulator.sh test
	$(MAKE) e2e

# End-to-end tests: the real function binaries and the deployed state machine definition
# against the local emulator (scripts/e2e.sh installs and starts what it needs).
e2e: $(SFN_TEST_DEPS)
	bash scripts/e2e.sh

# Fuzz the parsers for a bounded time each (scripts/fuzz.sh; FUZZ_SECONDS per target).
fuzz:
	bash scripts/fuzz.sh

# The lane protocol's simulation, a longer campaign than `make test`'s 1,000 seeds
# (tests/tests/all/simulation.rs): FERRY_SIM_SEEDS seeds from FERRY_SIM_FIRST_SEED, release build.
simulate:
	FERRY_SIM_SEEDS=$${FERRY_SIM_SEEDS:-20000} FERRY_SIM_FIRST_SEED=$${FERRY_SIM_FIRST_SEED:-1000} \
		cargo test --release --locked -p ferry-tests --test all -- simulation::

lint:
	python3 scripts/check-docs.py && python3 scripts/check-docs.py --self-test
	python3 statemachine/build.py --check && python3 statemachine/build.py --self-test
	python3 scripts/check-architecture.py && python3 scripts/check-architecture.py --self-test
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

tools:
	bash scripts/install-tools.sh

# Benchmarks (never timing assertions in tests): cold start, peak memory, artifact size,
# coalescing and polling cost. See bench/README.md.
bench:
	bash bench/run.sh

# cargo-lambda writes either the binary or the zip per invocation, never both:
# the first run compiles and copies `bootstrap`, the second reuses the same
# cargo build (nothing recompiles) and writes `bootstrap.zip`.
# The compiler is cargo-lambda's default, spelled out: cargo-zigbuild, linking
# with the pinned `ziglang` from .tools/venv (works offline). cargo-lambda keeps
# the [profile.release] settings of Cargo.toml (panic = "unwind" included) and
# only adds RUSTFLAGS="-C target-cpu=haswell" for x86_64.
LAMBDA_BUILD := cargo lambda build --release --x86-64 --compiler cargo-zigbuild --locked

build: tools
	rm -rf $(LAMBDA_DIR)
	$(LAMBDA_BUILD)
	$(LAMBDA_BUILD) --output-format zip
	@for f in $(FUNCTIONS); do \
	  for a in bootstrap bootstrap.zip; do \
	    p="$(LAMBDA_DIR)/$$f/$$a"; \
	    [[ -f "$$p" ]] || { echo "make build: missing $$p" >&2; exit 1; }; \
	    printf '%-45s %10s bytes\n' "$$p" "$$(stat -c %s "$$p")"; \
	  done; \
	done

# Template checks, all offline (no AWS account or credentials): SAM's own validation with
# cfn-lint, the plain CloudFormation that SAM's transform produces (cfn-lint again, then
# checkov), the dashboard's metrics and what only a real account would show (on-failure
# destinations, retained keys, global names: scripts/check-template.py), and the state
# machine definition. Tools are pinned in
# scripts/install-validate-tools.sh. Suppressions live next to the resources they concern.
SAM := SAM_CLI_TELEMETRY=0 sam
TRANSLATED := build/template.translated.json
CHECKOV := .tools/checkov-venv/bin/checkov
ASL_VALIDATOR := .tools/node/node_modules/.bin/asl-validator

validate-tools:
	bash scripts/install-validate-tools.sh

validate: validate-tools
	$(SAM) validate --lint --template template.yaml --region us-east-1
	python scripts/sam-translate.py --template template.yaml --output $(TRANSLATED)
	@# cfn-lint walks the state machine's Fn::Join (one part per line of the definition, about
	@# 1,200) recursively, past Python's default depth of 1,000: the same cfn-lint, deeper limit.
	python -c 'import sys; sys.setrecursionlimit(20000); sys.argv[0] = "cfn-lint"; from cfnlint.runner import main; sys.exit(main())' $(TRANSLATED)
	python3 scripts/check-dashboard.py --self-test
	python3 scripts/check-dashboard.py $(TRANSLATED)
	python3 scripts/check-template.py --self-test
	python3 scripts/check-template.py $(TRANSLATED)
	$(ASL_VALIDATOR) --json-path statemachine/ferry.asl.json
	$(CHECKOV) -f template.yaml -f $(TRANSLATED) --framework cloudformation --compact --quiet --skip-download

# `sam build` for x86_64 (the architecture `make build` compiles for): SAM's rust-cargolambda
# builder runs `cargo lambda build --release --bin <Binary>` in the workspace root, into the
# workspace's target/ (it sets CARGO_TARGET_DIR to it unless already set), so after
# `make build` nothing is compiled again: cargo finds every unit fresh and SAM copies the five
# binaries to .aws-sam/build/<Function>/bootstrap, next to .aws-sam/build/template.yaml.
package: tools validate-tools
	$(SAM) build --template template.yaml --parameter-overrides Architecture=x86_64
	@for d in .aws-sam/build/*Function; do \
	  p="$$d/bootstrap"; \
	  [[ -f "$$p" ]] || { echo "make package: missing $$p" >&2; exit 1; }; \
	  printf '%-50s %10s bytes\n' "$$p" "$$(stat -c %s "$$p")"; \
	done

# Ferry's main job on the local emulator: uploads -> s3-trigger -> state machine -> reports.
demo: $(SFN_TEST_DEPS)
	bash scripts/demo.sh

clean:
	cargo clean
	rm -rf .tools
