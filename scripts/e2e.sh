#!/usr/bin/env bash
# make e2e (part of make test): end-to-end tests of Ferry against the local AWS emulator.
#
#   scripts/e2e.sh [PYTEST ARGS]      e.g. scripts/e2e.sh -k conflict -x
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
exec "$root/.tools/emulator-venv/bin/python" -m pytest --durations=5 "$@"
