#!/usr/bin/env bash
# make e2e (part of make test): end-to-end tests of Ferry against the local AWS emulator.
#
#   scripts/e2e.sh [PYTEST ARGS]      e.g. scripts/e2e.sh -k conflict -x
#
# Without arguments, tests/test_stream.py runs beside the rest (two pytest processes).
#
# Installs what it needs (pinned, into .tools/ and statemachine/test/node_modules), builds the
# function binaries, then runs local/tests with pytest: the real binaries behind a local Lambda
# Invoke/Runtime API, the real state machine definition on aws-local-stepfunctions, AWS
# emulated (local/ferry_local).
# The tests start their own emulator and functions and stop them when they end, fail or are
# interrupted; logs are in .tools/logs/e2e/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../local/prepare.sh
source "$root/local/prepare.sh"
ferry_prepare "$root"

cd "$root/local"
pytest=("$root/.tools/emulator-venv/bin/python" -m pytest --durations=5)
if [[ $# -gt 0 ]]; then
  exec "${pytest[@]}" "$@"
fi

# The whole suite: the upload-stream tests (each with its own emulator and functions, about
# half the suite's time, mostly waiting on scaled timers) run beside the others, in a second
# pytest; both must pass. Their output follows the main run's.
stream_log="$root/.tools/logs/e2e-stream.log"
mkdir -p "$(dirname "$stream_log")"
"${pytest[@]}" tests/test_stream.py >"$stream_log" 2>&1 &
stream=$!
trap 'kill "$stream" 2>/dev/null || true' EXIT
rc=0
"${pytest[@]}" --ignore=tests/test_stream.py || rc=$?
stream_rc=0
wait "$stream" || stream_rc=$?
trap - EXIT
echo "::: the upload-stream tests (tests/test_stream.py, run beside the others):"
cat "$stream_log"
if [[ $rc -ne 0 ]]; then exit "$rc"; fi
exit "$stream_rc"
