#!/usr/bin/env bash
# Installs the template validation and packaging tools into .tools/ (gitignored).
# Idempotent: when the pinned versions are already there it only checks them and exits.
#
#   .tools/venv          aws-sam-cli, cfn-lint, aws-sam-translator (next to cargo-lambda,
#                        which scripts/install-tools.sh puts there)
#   .tools/checkov-venv  checkov, in a venv of its own: checkov pins boto3==1.35.49 and
#                        aws-sam-cli pins boto3[crt]==1.43.108, so pip cannot put them in one
#   .tools/node          asl-validator, from scripts/validate-tools/package-lock.json (npm ci)
#
# The three Python pins are a set: aws-sam-cli 1.170.0 requires exactly
# aws-sam-translator 1.115.0 and cfn-lint >=1.52.0,<1.59. Checked with Python 3.11.
# Needs only python3 (with the venv module), node/npm (20+) and access to PyPI and npm.
set -euo pipefail

SAM_CLI_VERSION="1.170.0"
CFN_LINT_VERSION="1.58.0"
SAM_TRANSLATOR_VERSION="1.115.0"
CHECKOV_VERSION="3.3.30"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/venv"
checkov_venv="$root/.tools/checkov-venv"
node_dir="$root/.tools/node"
node_lock="$root/scripts/validate-tools/package-lock.json"

# A package is installed when pip's record of that exact version exists (fast: no imports).
has_dist() { # venv, distribution (dist-info spelling), version
  compgen -G "$1/lib/python3*/site-packages/$2-$3.dist-info" >/dev/null
}

python_ok() {
  has_dist "$venv" aws_sam_cli "$SAM_CLI_VERSION" &&
    has_dist "$venv" cfn_lint "$CFN_LINT_VERSION" &&
    has_dist "$venv" aws_sam_translator "$SAM_TRANSLATOR_VERSION"
}
checkov_ok() { has_dist "$checkov_venv" checkov "$CHECKOV_VERSION"; }
# npm ci writes node_modules/.package-lock.json; the copied lock must match the committed one.
node_ok() {
  [[ -f "$node_dir/node_modules/.package-lock.json" ]] && cmp -s "$node_lock" "$node_dir/package-lock.json"
}

pip_install() { # venv, requirements...
  local v="$1"; shift
  if [[ ! -x "$v/bin/python" ]]; then
    echo "install-validate-tools: creating venv at ${v#"$root"/}"
    python3 -m venv "$v"
  fi
  "$v/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

if python_ok; then
  echo "install-validate-tools: aws-sam-cli $SAM_CLI_VERSION, cfn-lint $CFN_LINT_VERSION, aws-sam-translator $SAM_TRANSLATOR_VERSION already in .tools/venv"
else
  echo "install-validate-tools: installing aws-sam-cli==$SAM_CLI_VERSION cfn-lint==$CFN_LINT_VERSION aws-sam-translator==$SAM_TRANSLATOR_VERSION into .tools/venv"
  pip_install "$venv" "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION" \
    "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
  python_ok || { echo "install-validate-tools: .tools/venv does not have the pinned versions after installing" >&2; exit 1; }
fi

if checkov_ok; then
  echo "install-validate-tools: checkov $CHECKOV_VERSION already in .tools/checkov-venv"
else
  echo "install-validate-tools: installing checkov==$CHECKOV_VERSION into .tools/checkov-venv"
  pip_install "$checkov_venv" "checkov==$CHECKOV_VERSION"
  checkov_ok || { echo "install-validate-tools: checkov $CHECKOV_VERSION missing after installing" >&2; exit 1; }
fi

if node_ok; then
  echo "install-validate-tools: asl-validator (scripts/validate-tools/package-lock.json) already in .tools/node"
else
  echo "install-validate-tools: installing asl-validator from scripts/validate-tools/package-lock.json into .tools/node"
  mkdir -p "$node_dir"
  cp "$root/scripts/validate-tools/package.json" "$node_lock" "$node_dir/"
  npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
  node_ok || { echo "install-validate-tools: .tools/node does not match the lock file after npm ci" >&2; exit 1; }
fi
