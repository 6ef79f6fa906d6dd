#!/usr/bin/env bash
# Runs every benchmark in benches/ (criterion: floors, ours, peers) and then
# scripts/bench-report.py, which writes benches/results.md (tables, P1-P7,
# P15 and P9-P11 ratios) and benches/commit.svg (chart), and prints the ratios.
#
#   scripts/bench.sh                          # everything (~6 min of benches on 2 cores, plus the first build ~5 min)
#   scripts/bench.sh --bench commit           # one bench file; other results kept
#   scripts/bench.sh --no-default-features    # ours and the floors, no peer crates
#   scripts/bench.sh --bench commit -- 'flush/'   # criterion filter after --
#
# benches/ is its own cargo workspace (target dir benches/target), so the
# root's `cargo test --workspace` never builds criterion or the peers.
# A full run (no arguments) first clears old criterion results so the
# report shows one run only. Set CARGO_BUILD_JOBS to limit build parallelism.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/benches"
if [ "$#" -eq 0 ]; then
    rm -rf target/criterion target/persisted-bench target/bench-tmp
fi
start=$(date +%s)
cargo bench "$@"
end=$(date +%s)
echo "benchmarks took $((end - start)) s"
cd "$root"
python3 scripts/bench-report.py --command "scripts/bench.sh${*:+ $*}"
