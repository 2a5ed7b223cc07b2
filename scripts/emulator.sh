#!/usr/bin/env bash
# Ferry's local AWS emulator (TEST INFRASTRUCTURE): moto's server plus Ferry's extension
# (emulator/). See emulator/README.md.
#
#   scripts/emulator.sh install        venv at .tools/emulator-venv with emulator/requirements.txt
#                                      (skipped when already installed at those pins)
#   scripts/emulator.sh start          start in the background on a free 127.0.0.1 port; wait
#                                      until healthy; write .tools/emulator.url and
#                                      .tools/emulator.pid; print the URL
#   scripts/emulator.sh stop           stop the background emulator
#   scripts/emulator.sh status         print the URL if it is running (exit 1 otherwise)
#   scripts/emulator.sh run            run in the foreground (Ctrl-C stops it)
#   scripts/emulator.sh env            print export lines for AWS SDK clients
#   scripts/emulator.sh test [ARGS]    the emulator's own tests (pytest ARGS)
#
# FERRY_EMULATOR_PORT picks a port instead of a free one (the start fails, saying so, when it
# is taken). Needs python3 (3.11+, with venv) and access to PyPI for install.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/emulator-venv"
py="$venv/bin/python"
requirements="$root/emulator/requirements.txt"
stamp="$venv/.ferry-requirements.sha256"
url_file="$root/.tools/emulator.url"
pid_file="$root/.tools/emulator.pid"
log_file="$root/.tools/emulator.log"
host="127.0.0.1"
port="${FERRY_EMULATOR_PORT:-0}"
start_timeout="${FERRY_EMULATOR_START_TIMEOUT:-60}"

say() { echo "emulator: $*"; }
die() { echo "emulator: $*" >&2; exit 1; }

requirements_hash() {
  { sha256sum "$requirements" | cut -d' ' -f1; "$py" -c 'import sys; print(sys.version)'; } \
    | sha256sum | cut -d' ' -f1
}

# The venv was installed from the current requirements.txt by this Python.
stamp_matches() {
  [[ -x "$py" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$(requirements_hash)" ]]
}

installed() {
  stamp_matches && "$py" -c 'import moto, boto3, pytest, flask' 2>/dev/null
}

cmd_install() {
  if installed; then
    say "pinned requirements already installed in .tools/emulator-venv; nothing to do"
    return 0
  fi
  local python="${PYTHON:-python3}"
  command -v "$python" >/dev/null || die "$python not found (Python 3.11+ is needed)"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$("$python" --version 2>&1) is too old: Python 3.11+ is needed (set PYTHON=...)"
  if [[ ! -x "$py" ]]; then
    say "creating venv at .tools/emulator-venv"
    mkdir -p "$root/.tools"
    "$python" -m venv "$venv"
  fi
  say "installing emulator/requirements.txt"
  "$py" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  "$py" -m pip check >/dev/null || die "pip check failed in .tools/emulator-venv"
  requirements_hash >"$stamp"
  say "installed: $("$py" -c 'import moto, boto3; print(f"moto {moto.__version__}, boto3 {boto3.__version__}")')"
}

# The pid in .tools/emulator.pid, if that process is alive and is the emulator.
running_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(cat "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ferry_emulator" || return 1
  echo "$pid"
}

# Alive and not a zombie (an exited emulator stays a zombie until its new parent reaps it).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]]
}

healthy() {
  [[ -f "$url_file" ]] || return 1
  PYTHONPATH="$root/emulator" "$py" -m ferry_emulator.client health "$(cat "$url_file")" >/dev/null 2>&1
}

cmd_start() {
  stamp_matches || cmd_install
  if running_pid >/dev/null && healthy; then
    say "already running at $(cat "$url_file")"
    cat "$url_file"
    return 0
  fi
  rm -f "$url_file" "$pid_file"
  mkdir -p "$root/.tools"
  local began=$SECONDS
  PYTHONPATH="$root/emulator" nohup "$py" -m ferry_emulator --host "$host" --port "$port" \
    --url-file "$url_file" --pid-file "$pid_file" --quiet >"$log_file" 2>&1 </dev/null &
  local pid=$!
  local waited=0
  while [[ ! -f "$url_file" ]]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "emulator: failed to start (log: .tools/emulator.log):" >&2
      tail -n 20 "$log_file" >&2 || true
      exit 1
    fi
    if (( waited >= start_timeout * 10 )); then
      kill "$pid" 2>/dev/null || true
      die "not ready after ${start_timeout}s (log: .tools/emulator.log)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  healthy || { kill "$pid" 2>/dev/null || true; die "started but not healthy (log: .tools/emulator.log)"; }
  say "running at $(cat "$url_file") (pid $pid, $((SECONDS - began))s; log .tools/emulator.log)" >&2
  cat "$url_file"
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$pid_file" "$url_file"
    say "not running"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 200); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    say "pid $pid did not stop after 10s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file" "$url_file"
  say "stopped (pid $pid)"
}

cmd_status() {
  if running_pid >/dev/null && healthy; then
    cat "$url_file"
  else
    say "not running" >&2
    return 1
  fi
}

cmd_run() {
  stamp_matches || cmd_install
  if running_pid >/dev/null; then
    die "already running in the background at $(cat "$url_file" 2>/dev/null); stop it first"
  fi
  mkdir -p "$root/.tools"
  PYTHONPATH="$root/emulator" exec "$py" -m ferry_emulator --host "$host" --port "$port" \
    --url-file "$url_file" --pid-file "$pid_file"
}

cmd_env() {
  local url
  url="$(cmd_status)" || die "not running (scripts/emulator.sh start)"
  PYTHONPATH="$root/emulator" "$py" -m ferry_emulator.client env "$url"
}

cmd_test() {
  cmd_install
  local began=$SECONDS
  (cd "$root/emulator" && PYTHONPATH="$root/emulator" "$py" -m pytest tests "$@")
  say "tests took $((SECONDS - began))s"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  run) cmd_run ;;
  env) cmd_env ;;
  test) shift; cmd_test "$@" ;;
  *)
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
