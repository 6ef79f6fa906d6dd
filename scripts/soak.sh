#!/usr/bin/env bash
# The reliability test program (RELIABILITY.md section 6) at soak size, in
# release mode. `cargo test` runs the same tests at smoke size.
#
#   scripts/soak.sh            # everything at the sizes below
#   FUZZ_SECONDS=0 scripts/soak.sh   # skip the cargo-fuzz targets
#
# Every size can be overridden through its environment variable.
set -euo pipefail
cd "$(dirname "$0")/.."

export PERSISTED_SOAK_SEEDS="${PERSISTED_SOAK_SEEDS:-100000}"        # T5: seeds (~400 crash images each)
export PERSISTED_SOAK_SEED_START="${PERSISTED_SOAK_SEED_START:-0}"   # T5: first seed (split a soak into parts)
export PERSISTED_SOAK_SHARED_SEEDS="${PERSISTED_SOAK_SHARED_SEEDS:-200}"  # shared mode: a writer killed at every op, per format
export PERSISTED_SHARED_SCALE="${PERSISTED_SHARED_SCALE:-10}"          # shared mode: tests/shared.rs workloads x10
export PERSISTED_SOAK_FAULT_SEEDS="${PERSISTED_SOAK_FAULT_SEEDS:-300}" # T9: EIO/ENOSPC workloads
export PERSISTED_SOAK_TAILS="${PERSISTED_SOAK_TAILS:-1000000}"       # T2: random journal tails
export PERSISTED_KILL9_ROUNDS="${PERSISTED_KILL9_ROUNDS:-3334}"      # T7: kill -9 per format (x3 formats)
export PERSISTED_RESUME_ROUNDS="${PERSISTED_RESUME_ROUNDS:-300}"     # kill -9 of the resumable-job pattern, per format
export PERSISTED_RESUME_ITEMS="${PERSISTED_RESUME_ITEMS:-200000}"    # ... on a state of this many items
export PERSISTED_LOCK_ROUNDS="${PERSISTED_LOCK_ROUNDS:-100}"         # T15: second opens rejected
export PERSISTED_PROPTEST_CASES="${PERSISTED_PROPTEST_CASES:-100000}" # T17: model-based cases
export PERSISTED_FUZZ_CASES="${PERSISTED_FUZZ_CASES:-1000000}"       # T16: generated inputs (stable Rust)
FUZZ_SECONDS="${FUZZ_SECONDS:-1800}"                                 # T16: cargo-fuzz, per target
export FUZZ_JOBS="${FUZZ_JOBS:-$(nproc)}"                            # T16: targets fuzzed side by side

start=$(date +%s)
mkdir -p target
set +e
cargo test --release --workspace --all-features -- --nocapture > target/soak.log 2>&1
status=$?
set -e
grep -E '^test result|^T[0-9]+:|^S[0-9/]+|^resumable:' target/soak.log || true
if [ "$status" -ne 0 ]; then
    echo "soak: FAILED (see target/soak.log)"
    exit 1
fi
echo "soak: cargo tests passed in $(( $(date +%s) - start )) s"

if [ "$FUZZ_SECONDS" -gt 0 ] && [ -x scripts/fuzz.sh ]; then
    scripts/fuzz.sh "$FUZZ_SECONDS"
fi
