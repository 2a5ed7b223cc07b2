# Sourced by scripts/demo.sh and scripts/e2e.sh: checks the prerequisites, installs what the
# local runs need (pinned, into .tools/ and statemachine/test/node_modules) and builds the
# function binaries. Every step is a no-op when already done.
#
#   emulator venv      scripts/emulator.sh install (moto, boto3, pytest; the harness runs in it)
#   aws-local-stepfunctions   npm ci in statemachine/test (package-lock.json)
#   ferry-* binaries   cargo build --workspace --bins --locked (debug; FERRY_PROFILE=release
#                      builds and uses release binaries; FERRY_PROFILE=lambda builds nothing and
#                      uses `make build`'s target/lambda/<bin>/bootstrap, the shipped artifacts)

ferry_prepare() {
  local root="$1"
  local missing=()
  for tool in cargo python3 node npm; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if (( ${#missing[@]} )); then
    echo "ferry: missing ${missing[*]} (needed: Rust, Python 3.11+, Node 20+ with npm)" >&2
    return 1
  fi
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if (( node_major < 20 )); then
    echo "ferry: Node $(node --version) is too old: Node 20+ runs the state machine" >&2
    return 1
  fi

  bash "$root/scripts/emulator.sh" install
  local deps="$root/statemachine/test/node_modules/.package-lock.json"
  if [[ ! "$deps" -nt "$root/statemachine/test/package-lock.json" ]]; then
    echo "ferry: installing statemachine/test's pinned npm packages"
    npm ci --prefix "$root/statemachine/test" --no-audit --no-fund
  fi
  local build=(cargo build --workspace --bins --locked)
  case "${FERRY_PROFILE:-debug}" in
    debug) ;;
    release) build+=(--release) ;;
    lambda)
      echo "ferry: using make build's Lambda binaries (target/lambda/<bin>/bootstrap)"
      return 0 ;;
    *) echo "ferry: FERRY_PROFILE must be debug, release or lambda, not ${FERRY_PROFILE}" >&2; return 1 ;;
  esac
  echo "ferry: building the function binaries (${build[*]})"
  (cd "$root" && "${build[@]}")
}
