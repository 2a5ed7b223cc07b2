#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 60) each and fails
# on any crash (panic, failed property, hang over 10 s, or more than 2 GiB of memory).
#
#   FUZZ_SECONDS=300 make fuzz                       # longer runs
#   FUZZ_TARGETS="key_decode routes" make fuzz       # some targets only
#   FUZZ_JOBS=1 make fuzz                            # one target at a time (default: one per core)
#   FUZZ_PROFILE=dev make fuzz                       # unoptimized build: about half the compile
#                                                    # time, a tenth of the throughput (CI's smoke)
#
# cargo-fuzz is installed, pinned, into .tools/cargo-fuzz. It passes nightly-only flags to
# rustc (sanitizer coverage); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Rust is
# memory-safe, so no sanitizer (--sanitizer none): the targets hunt panics, failed properties,
# stack overflows, hangs and runaway memory, and an ASan build would rebuild every dependency.
# Builds go to fuzz/target (the fuzz crate is not a workspace member) so they never invalidate
# the workspace's target/. The committed seeds in fuzz/corpus/<target> are read, never written:
# what a run discovers goes to fuzz/target/corpus/<target>, crashes to fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ALL_TARGETS="s3_event s3_batch key_decode job_spec failure_report_csv datasync_report routes"
read -r -a targets <<<"${FUZZ_TARGETS:-$ALL_TARGETS}"

tools=.tools/cargo-fuzz
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    cargo install --locked --root "$tools" "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
export PATH="$PWD/$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1

# cargo-fuzz has no --locked: check that fuzz/Cargo.lock is complete before building with it.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

# Both profiles keep debug assertions and overflow checks (fuzz/Cargo.toml).
case "${FUZZ_PROFILE:-release}" in
    release) fuzz_flags=(--sanitizer none --release) ;;
    dev) fuzz_flags=(--sanitizer none --dev) ;;
    *) echo "FUZZ_PROFILE must be release or dev, not ${FUZZ_PROFILE}" >&2; exit 2 ;;
esac
start=$SECONDS
cargo fuzz build "${fuzz_flags[@]}"
build_seconds=$((SECONDS - start))

logs=fuzz/target/logs
mkdir -p "$logs"

# One target: its run's log in $logs/<target>.log, its exit status in $logs/<target>.status.
fuzz_one() {
    local target=$1 scratch=fuzz/target/corpus/$1 status=0
    mkdir -p "$scratch" "fuzz/corpus/$target" "fuzz/artifacts/$target"
    cargo fuzz run "${fuzz_flags[@]}" "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$logs/$target.log" 2>&1 || status=$?
    echo "$status" >"$logs/$target.status"
}

# libFuzzer runs one process per target on one core: run FUZZ_JOBS targets at a time (default:
# one per core), so CI spends ceil(7 / cores) x FUZZ_SECONDS, not 7 x FUZZ_SECONDS. Each target
# still gets FUZZ_SECONDS of a whole core.
jobs=${FUZZ_JOBS:-$(nproc)}
running=0
for target in "${targets[@]}"; do
    rm -f "$logs/$target.status"
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
    echo "== fuzz $target for ${FUZZ_SECONDS}s"
    fuzz_one "$target" &
    running=$((running + 1))
done
wait

failed=()
summary=()
for target in "${targets[@]}"; do
    status=$(cat "$logs/$target.status" 2>/dev/null || echo "no status")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -1)
    rate=$(grep -o 'exec/s: [0-9]*' "$logs/$target.log" | tail -1 | cut -d' ' -f2)
    cov=$(grep -o 'cov: [0-9]*' "$logs/$target.log" | tail -1 | cut -d' ' -f2)
    corpus=$(grep -o 'corp: [0-9]*' "$logs/$target.log" | tail -1 | cut -d' ' -f2)
    line=$(printf '%-20s runs %10s  exec/s %7s  cov %6s  corpus %6s' \
        "$target" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${corpus:-?}")
    if [[ $status != 0 ]]; then
        failed+=("$target")
        line+="  CRASH (exit $status)"
        echo "--- $target failed; the end of $logs/$target.log:" >&2
        tail -40 "$logs/$target.log" >&2
        echo "--- reproduce: RUSTC_BOOTSTRAP=1 $tools/bin/cargo-fuzz run ${fuzz_flags[*]} $target fuzz/artifacts/$target/<file>" >&2
    fi
    summary+=("$line")
done

echo
echo "fuzz: ${FUZZ_PROFILE:-release} build ${build_seconds}s, total $((SECONDS - start))s, ${FUZZ_SECONDS}s per target"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
