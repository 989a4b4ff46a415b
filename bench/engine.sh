#!/usr/bin/env bash
# Engine (DESIGN.md 12): in-memory throughput (target >= 1 million events / s on one core) and
# price tick to liquidation effect (target p99 < 1 ms with 1 million accounts).
#
# Usage: bench/engine.sh [accounts (1000000)] [index updates (4000)]
#   ENGINE_BENCH_ACCOUNTS   population of the throughput benchmark (default 10000)
#   SKIP_CRITERION=1        only the latency run
#
# 1. crates/solvent-engine/benches/engine.rs (criterion): events / s for a mixed stream (90% index
#    updates, 5% fills, 5% deposits), fills alone, index updates alone, deposits alone, and mark
#    updates, on a population opened through ordinary events; events are built before timing.
# 2. crates/solvent-engine/examples/tick_latency.rs: opens the population (about 12 s and 2 GiB
#    for 1 million accounts), then times each index update in an HDR histogram and prints
#    p50 / p99 / p99.9 / max, the accounts each update re-examined (estimated), setup time and
#    peak memory (VmHWM).
# Both run pinned to core 0 with taskset when available.
set -euo pipefail
cd "$(dirname "$0")/.."

accounts="${1:-1000000}"
ticks="${2:-4000}"
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c 0); fi

if [ "${SKIP_CRITERION:-0}" != 1 ]; then
    cargo bench --quiet -p solvent-engine --bench engine --no-run
    SOLVENT_ENGINE_BENCH_ACCOUNTS="${ENGINE_BENCH_ACCOUNTS:-10000}" "${PIN[@]}" \
        cargo bench --quiet -p solvent-engine --bench engine -- --warm-up-time 1 --measurement-time 5
    echo
fi

cargo build --quiet --release -p solvent-engine --example tick_latency
"${PIN[@]}" target/release/examples/tick_latency "$accounts" "$ticks"
