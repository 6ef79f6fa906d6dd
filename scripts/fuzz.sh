#!/usr/bin/env bash
# T16 (soak): runs every cargo-fuzz target in fuzz/ for N seconds each and
# fails if any of them crashed, ran out of memory or timed out.
#
#   scripts/fuzz.sh [seconds]        # default 1800 (30 min) per target
#   FUZZ_TARGETS="journal_json snapshot_yaml" scripts/fuzz.sh 60
#   FUZZ_SANITIZER=address scripts/fuzz.sh 600   # default: none
#   FUZZ_KEEP_GOING=1 scripts/fuzz.sh 60   # don't stop at the first crash
#                                          # (libFuzzer -fork=1 -ignore_crashes=1)
#   FUZZ_JOBS=2 scripts/fuzz.sh            # run the targets two at a time
#                                          # (one per core; 90 min in all)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Corpora grow in fuzz/corpus/<target>/; a crashing input is kept in
# fuzz/artifacts/<target>/ and the log in fuzz/target/fuzz-<target>.log.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../fuzz"

seconds="${1:-1800}"
sanitizer="${FUZZ_SANITIZER:-none}"
read -r -a targets <<< "${FUZZ_TARGETS:-journal_json journal_yaml journal_toml journal_bincode snapshot_json snapshot_yaml snapshot_toml snapshot_bincode}"

if ! cargo +nightly fuzz --version > /dev/null 2>&1; then
    echo "T16: cargo-fuzz or the nightly toolchain is missing (cargo install cargo-fuzz; rustup toolchain install nightly)"
    exit 1
fi

# Overflow checks and debug assertions stay on (cargo-fuzz's default).
mkdir -p target
if ! cargo +nightly fuzz build -s "$sanitizer" ${FUZZ_FEATURES:+--features "$FUZZ_FEATURES"} \
    > target/fuzz-build.log 2>&1; then
    cat target/fuzz-build.log
    echo "T16: the fuzz targets do not build"
    exit 1
fi

jobs="${FUZZ_JOBS:-1}"
if [ "$jobs" -gt 1 ]; then
    # Deal the targets out to $jobs runs of this script, side by side.
    pids=()
    rm -f target/fuzz-job-*.out
    for ((j = 0; j < jobs; j++)); do
        share=()
        for ((i = j; i < ${#targets[@]}; i += jobs)); do
            share+=("${targets[i]}")
        done
        [ "${#share[@]}" -gt 0 ] || continue
        FUZZ_JOBS=1 FUZZ_TARGETS="${share[*]}" "$self" "$seconds" > "target/fuzz-job-$j.out" 2>&1 &
        pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do
        wait "$pid" || status=1
    done
    grep -h '^T16:\|^  ' target/fuzz-job-*.out || true
    if [ "$status" -ne 0 ]; then
        echo "fuzz: FAILED"
        exit 1
    fi
    echo "fuzz: ${#targets[@]} targets, ${seconds} s each, $jobs at a time, 0 crashes"
    exit 0
fi

extra=()
if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
    extra=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
fi

bin_dir="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
failed=()
for target in "${targets[@]}"; do
    log="target/fuzz-$target.log"
    mkdir -p "corpus/$target"
    set +e
    cargo +nightly fuzz run -s "$sanitizer" ${FUZZ_FEATURES:+--features "$FUZZ_FEATURES"} "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${extra[@]}" > "$log" 2>&1
    status=$?
    set -e
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    if [ -z "$execs" ]; then # -fork mode: the last progress line's "#<runs>"
        execs=$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -1 || true)
    fi
    corpus=$(find "corpus/$target" -type f | wc -l)
    # -fork mode counts what it ignored: "oom/timeout/crash: 0/0/3".
    counts=$(grep -oE 'oom/timeout/crash: [0-9]+/[0-9]+/[0-9]+' "$log" | tail -1 \
        | grep -oE '[0-9]+/[0-9]+/[0-9]+' || true)
    crashes=0
    if [ -n "$counts" ]; then
        IFS=/ read -r ooms timeouts crashes <<< "$counts"
        crashes=$((ooms + timeouts + crashes))
    fi
    if [ "$status" -eq 0 ] && [ "$crashes" -eq 0 ]; then
        echo "T16: $target: ${execs:-?} executions in ${seconds} s, corpus $corpus, 0 crashes"
    else
        artifact=$(grep -oE "artifacts/$target/[^ ]+" "$log" | tail -1 || true)
        echo "T16: $target: FAILED after ${execs:-?} executions${counts:+, oom/timeout/crash $counts} (fuzz/$log; reproducer: fuzz/${artifact:-?})"
        # Replay every kept input (a -fork run keeps many) and group them
        # by where they failed.
        for input in "artifacts/$target"/*; do
            [ -f "$input" ] || continue
            out=$("$bin_dir/$target" "$input" 2>&1 || true)
            where=$(grep -m1 -oE 'panicked at [^ ]+|memory allocation of|ERROR: libFuzzer: [a-z -]+' <<< "$out" || true)
            echo "${where:-no failure on replay}"
        done | sort | uniq -c | sed 's/^/  /' || true
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, 0 crashes"
