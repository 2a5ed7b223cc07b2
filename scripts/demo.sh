#!/usr/bin/env bash
# make demo: Ferry's main job end to end on this machine, against the local AWS emulator.
#
#   scripts/demo.sh [--files N] [--step-seconds S] [--quiet]
#
# Installs what it needs (pinned, into .tools/ and statemachine/test/node_modules), builds the
# function binaries, then runs local/ferry_local/demo.py: uploads → s3-trigger → the state
# machine (statemachine/ferry.asl.json) → FSx import and DataSync transfer, then the scheduled
# export and release of template.yaml → the completion reports, printed as a subscriber gets
# them. The demo starts its own emulator and functions and stops them when it ends, fails or
# is interrupted (Ctrl-C, SIGTERM); logs are in .tools/logs/demo/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../local/prepare.sh
source "$root/local/prepare.sh"
ferry_prepare "$root"

# exec: the demo is this process from here on, so a Ctrl-C or SIGTERM reaches it, and it stops
# every process it started (local/ferry_local/processes.py).
cd "$root/local"
exec "$root/.tools/emulator-venv/bin/python" -m ferry_local.demo "$@"
