#!/usr/bin/env bash
# `make bench`: Ferry's benchmarks, in six sections. See bench/README.md.
#
#   1. artifact size   `make build` (cargo lambda build --release, x86_64), then the size of
#                      every target/lambda/<bin>/bootstrap.zip and bootstrap
#   2. cold start      bench/coldstart.py: each release binary against a local Lambda Runtime
#                      API and an AWS stub, BENCH_RUNS runs (default 30); peak RSS
#   3. coalescing      criterion: cargo bench -p ferry --bench coalesce
#   4. polling cost    cargo run -p ferry --example poll_cost
#   5. stream          bench/stream.py: the real system (emulator, runner definition, function
#                      binaries) against steady upload streams, every timer scaled by
#                      BENCH_TIME_SCALE (0.05); v1's per-batch policy beside it (bench/lane_model.py)
#   6. limits          bench/limits.py: the lane function's take at a lane's cap (2,000 jobs;
#                      the heaviest jobs) with its peak RSS, and the sweep over 10,000 lanes
#
# Results: bench/results/latest.json (sections 1-4), bench/results/stream.json (section 5) and
# bench/results/limits.json (section 6),
# with the date and machine, and the summary tables printed at the end. Needs what a fresh clone has (Rust, Python 3, a C compiler for the
# harness floor); cargo-lambda is installed, pinned, by scripts/install-tools.sh.
#
# BENCH_RUNS=<n>       cold start runs per function (at least 20 for docs/performance.md's figures)
# BENCH_SKIP_BUILD=1   reuse target/lambda as the last `make build` left it
# BENCH_SKIP_STREAM=1  leave section 5 out (it takes about 20 minutes at the default scale)
# BENCH_SKIP_LIMITS=1  leave section 6 out (about 4 minutes)
# BENCH_TIME_SCALE=<f> section 5's time scale (0.05: a 2-hour stream in 6 minutes)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/venv/bin:$PATH"
target="${CARGO_TARGET_DIR:-$root/target}"
runs="${BENCH_RUNS:-30}"
out="$root/bench/results/latest.json"
work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

section() { printf '\n==== %s ====\n\n' "$*"; }

# --- the machine --------------------------------------------------------------------------
dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=" (with uncommitted changes)"
BENCH_CPU="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
BENCH_RUSTC="$(rustc -V)" \
BENCH_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty" \
python3 - "$work/machine.json" <<'EOF'
import datetime, json, os, platform, sys
with open("/proc/meminfo") as meminfo:
    kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "cpu": os.environ["BENCH_CPU"],
    "nproc": os.cpu_count(),
    "memory_gib": round(kib / 1048576, 1),
    "kernel": f"{platform.system()} {platform.release()}",
    "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    "rustc": os.environ["BENCH_RUSTC"],
    "git_commit": os.environ["BENCH_COMMIT"],
}, open(sys.argv[1], "w"), indent=2)
EOF

# --- 1. artifact size ---------------------------------------------------------------------
section "1/6 Artifact size: make build (cargo lambda build --release, x86_64)"
if [[ "${BENCH_SKIP_BUILD:-0}" == 1 ]]; then
  echo "BENCH_SKIP_BUILD=1: using target/lambda as it is"
  build_seconds=null
else
  started=$(date +%s)
  make --no-print-directory build
  build_seconds=$(( $(date +%s) - started ))
fi
python3 - "$work/artifacts.json" "$target/lambda" "$build_seconds" functions/*/Cargo.toml <<'EOF'
import json, os, sys
out, lambda_dir, build_seconds, *manifests = sys.argv[1:]
rows = []
for manifest in manifests:
    function = "ferry-" + os.path.basename(os.path.dirname(manifest))
    zip_path = os.path.join(lambda_dir, function, "bootstrap.zip")
    binary = os.path.join(lambda_dir, function, "bootstrap")
    for p in (zip_path, binary):
        if not os.path.isfile(p):
            sys.exit(f"bench: {p} is missing: run `make build`")
    rows.append({"function": function, "zip_bytes": os.path.getsize(zip_path),
                 "bootstrap_bytes": os.path.getsize(binary)})
json.dump({"method": "make build: cargo lambda build --release --x86-64 --compiler cargo-zigbuild; "
                     "sizes of target/lambda/<bin>/bootstrap.zip and bootstrap",
           "make_build_seconds": None if build_seconds == "null" else int(build_seconds),
           "functions": rows}, open(out, "w"), indent=2)
print(f"{'function':<20} {'bootstrap.zip':>14} {'bootstrap':>12}")
for r in rows:
    print(f"{r['function']:<20} {r['zip_bytes']:>14,} {r['bootstrap_bytes']:>12,}  bytes")
EOF

# --- 2. cold start and peak memory --------------------------------------------------------
section "2/6 Cold start and peak RSS: $runs runs per function (bench/coldstart.py)"
python3 bench/coldstart.py --lambda-dir "$target/lambda" --runs "$runs" --json "$work/coldstart.json"

# --- 3. coalescing ------------------------------------------------------------------------
section "3/6 Coalescing: cargo bench -p ferry --bench coalesce (criterion)"
# A criterion home of this run's own: the report reads only what this run measured.
CRITERION_HOME="$work/criterion" cargo bench --locked -p ferry --bench coalesce

# --- 4. polling cost ----------------------------------------------------------------------
section "4/6 Polling cost: adaptive vs fixed 30 s (poll_cost, walking statemachine/ferry.asl.json)"
# A count, not a timing: the dev profile (what `cargo test` already built) is enough.
cargo run --locked -q -p ferry --example poll_cost -- --json "$work/poll.json"

# --- summary ------------------------------------------------------------------------------
section "Summary"
python3 bench/report.py --work "$work" --criterion "$work/criterion" --out "$out"

# The harness for sections 5 and 6 (emulator venv, statemachine/test's npm packages, the debug
# binaries).
# shellcheck source=../local/prepare.sh
source "$root/local/prepare.sh"
ferry_prepare "$root"

# --- 5. stream ----------------------------------------------------------------------------
if [[ "${BENCH_SKIP_STREAM:-0}" == 1 ]]; then
  echo "BENCH_SKIP_STREAM=1: section 5 left out"
else
  section "5/6 Stream: steady uploads through the real system, time scale ${BENCH_TIME_SCALE:-0.05} (bench/stream.py)"
  "$root/.tools/emulator-venv/bin/python" bench/stream.py --time-scale "${BENCH_TIME_SCALE:-0.05}"
fi

# --- 6. limits ----------------------------------------------------------------------------
if [[ "${BENCH_SKIP_LIMITS:-0}" == 1 ]]; then
  echo "BENCH_SKIP_LIMITS=1: section 6 left out"
  exit 0
fi
section "6/6 Limits: take at a lane's cap, the sweep over 10,000 lanes (bench/limits.py)"
"$root/.tools/emulator-venv/bin/python" bench/limits.py --json "$root/bench/results/limits.json"
