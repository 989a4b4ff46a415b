#!/usr/bin/env bash
# ISDA SIMM for 10,000 netting sets of 50 CRIF rows: Solvent against Open Source Risk Engine's
# SimmCalculator (pip open-source-risk-engine, scripts/oracles/simm_ore.py) in the same run.
#
# Usage: bench/simm.sh [SETS] [ROWS]   (default 10000 50)
#
# Builds crates/solvent-simm/examples/simm_vs_ore.rs in release, which writes a seeded CRIF (FX,
# equity and commodity deltas and vegas over every bucket, target/simm-bench.tsv), times Solvent
# reading it and computing SIMM 2.8+2506 for every netting set (best of 5, one core), runs ORE on
# the same file (ORE's own timer around loading the CRIF and SimmCalculator: Python start-up and
# result extraction are not counted), checks that every netting set agrees to the cent and prints
# the ratio. Both are pinned to core 0 (or $BENCH_CORE) when taskset is available. Results and
# what they cover: docs/simm.md.
# Needs the oracle venv: ./scripts/setup-oracles
set -euo pipefail
cd "$(dirname "$0")/.."

SETS="${1:-10000}"
ROWS="${2:-50}"
./scripts/setup-oracles
cargo build --quiet --release -p solvent-simm --example simm_vs_ore
pin=()
if command -v taskset > /dev/null; then
  pin=(taskset -c "${BENCH_CORE:-0}")
fi
"${pin[@]}" target/release/examples/simm_vs_ore "$SETS" "$ROWS" target/simm-bench.tsv
