#!/usr/bin/env bash
# Installs the project's build tools into .tools/ (gitignored). Idempotent: when
# the pinned versions are already there it only checks them and exits.
#
#   cargo-lambda  pinned, from PyPI (prebuilt binary)
#   ziglang       pinned, from PyPI (cargo-lambda's default linker; it only
#                 asks for ziglang>=0.10, so pin it here for reproducible builds)
#
# Needs only python3 (with the venv module) and access to PyPI.
set -euo pipefail

CARGO_LAMBDA_VERSION="1.9.2"
ZIGLANG_VERSION="0.17.1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/venv"
bin="$venv/bin/cargo-lambda"

# The binary is a cargo subcommand: plain `cargo-lambda --version` is rejected;
# `cargo-lambda lambda --version` prints "cargo-lambda 1.9.2 (<sha> <date>)".
cargo_lambda_version() {
  [[ -x "$bin" ]] || return 0
  "$bin" lambda --version 2>/dev/null | awk '{print $2}' || true
}

ziglang_installed() {
  compgen -G "$venv/lib/python3*/site-packages/ziglang-${ZIGLANG_VERSION}.dist-info" >/dev/null
}

installed="$(cargo_lambda_version)"
if [[ "$installed" == "$CARGO_LAMBDA_VERSION" ]] && ziglang_installed; then
  echo "install-tools: cargo-lambda $CARGO_LAMBDA_VERSION, ziglang $ZIGLANG_VERSION already in .tools/venv; nothing to do"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "install-tools: creating venv at .tools/venv"
  python3 -m venv "$venv"
fi

echo "install-tools: installing cargo-lambda==$CARGO_LAMBDA_VERSION ziglang==$ZIGLANG_VERSION${installed:+ (cargo-lambda was $installed)}"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"

got="$(cargo_lambda_version)"
if [[ "$got" != "$CARGO_LAMBDA_VERSION" ]] || ! ziglang_installed; then
  echo "install-tools: expected cargo-lambda $CARGO_LAMBDA_VERSION and ziglang $ZIGLANG_VERSION, got cargo-lambda '${got}'" >&2
  exit 1
fi
echo "install-tools: cargo-lambda $got and ziglang $ZIGLANG_VERSION installed in .tools/venv/bin"
