#!/usr/bin/env bash
# Engine (DESIGN.md 12): in-memory throughput (target >= 1 million events / s on one core, with a
# population of options, portfolio, inverse and linear accounts) and price event to each
# liquidation effect (target p99 < 10 ms, index update p99 < 1 ms, with 1 million accounts).
# Results and what each part does not cover: docs/benchmarks.md, section "Engine".
#
# Usage: bench/engine.sh [accounts (1000000)] [index updates (4000)]
#   ENGINE_BENCH_ACCOUNTS   population of the criterion benchmark (default 10000)
#   ENGINE_BENCH_FULL=1     also the 1-million-account mixed runs and the 1-million-holder scaling
#                           point (about 30-40 minutes and up to about 8 GiB; see below)
#   SKIP_CRITERION=1        skip the criterion benchmark
#
# 1. crates/solvent-engine/benches/engine.rs (criterion): events / s on today's linear-only
#    population, stream by stream; events are built before timing. benches/portfolio.rs: a BTC
#    index update over 10,000 portfolio-mode accounts.
# 2. examples/engine_throughput.rs: events / s of a mixed stream (85% index, 5% marks, 1% vol
#    surfaces, 5% fills, 4% deposits) and a fill-heavy one (25% index, 70% fills, 5% deposits)
#    on the linear-only population and on the mixed one (60% linear cross, 15% inverse, 10%
#    options, 10% portfolio, 5% isolated), in the same run; per event type and account kind.
#    10,000 accounts; with ENGINE_BENCH_FULL=1 also 1,000,000 (each stream stops after 60 s of
#    apply time).
# 3. examples/tick_latency.rs: index updates at `accounts` (linear-only population), in HDR
#    histograms: all, small and large moves, and apart those that produced liquidation effects;
#    with ENGINE_BENCH_FULL=1 also 60 updates of the mixed population of 1,000,000 accounts
#    (every 20th a large move).
# 4. examples/engine_scaling.rs: the first mark_price of a contract and an ADL against N
#    opposite holders, at 10,000 and 100,000 holders (and 1,000,000 with ENGINE_BENCH_FULL=1),
#    ranked through the ADL index: it prints how many candidates the ranking scored; then the
#    same with the crowded contract the inverse BTC-PERPETUAL (holders in BTC), and its first mark.
# Everything runs pinned to core 0 with taskset when available.
set -euo pipefail
cd "$(dirname "$0")/.."

accounts="${1:-1000000}"
ticks="${2:-4000}"
full="${ENGINE_BENCH_FULL:-0}"
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c 0); fi
echo "engine bench on $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${SKIP_CRITERION:-0}" != 1 ]; then
    cargo bench --quiet -p solvent-engine --bench engine --no-run
    SOLVENT_ENGINE_BENCH_ACCOUNTS="${ENGINE_BENCH_ACCOUNTS:-10000}" "${PIN[@]}" \
        cargo bench --quiet -p solvent-engine --bench engine -- --warm-up-time 1 --measurement-time 5
    # An index update over portfolio-mode accounts (benches/portfolio.rs); the lean kernel alone
    # is bench/portfolio_margin.sh.
    cargo bench --quiet -p solvent-engine --bench portfolio --no-run
    SOLVENT_ENGINE_BENCH_ACCOUNTS="${ENGINE_BENCH_ACCOUNTS:-10000}" "${PIN[@]}" \
        cargo bench --quiet -p solvent-engine --bench portfolio -- --warm-up-time 2 --measurement-time 8
    echo
fi

cargo build --quiet --release -p solvent-engine \
    --example engine_throughput --example tick_latency --example engine_scaling

echo "== throughput, 10,000 accounts"
"${PIN[@]}" target/release/examples/engine_throughput --accounts 10000 --events 200000 --seconds 30
if [ "$full" = 1 ]; then
    echo "== throughput, 1,000,000 accounts"
    "${PIN[@]}" target/release/examples/engine_throughput --accounts 1000000 --events 200000 \
        --seconds 60
fi

echo "== index update latency, $accounts accounts, linear-only population"
"${PIN[@]}" target/release/examples/tick_latency "$accounts" "$ticks"
if [ "$full" = 1 ]; then
    echo
    echo "== index update latency, 1,000,000 accounts, mixed population"
    "${PIN[@]}" target/release/examples/tick_latency 1000000 60 0.001 0.5 1.0 mixed 20
fi

echo
echo "== first mark and ADL against N holders"
sizes=10000,100000
if [ "$full" = 1 ]; then
    sizes=10000,100000,1000000
fi
"${PIN[@]}" target/release/examples/engine_scaling "$sizes"
echo
echo "== ADL against N holders of an inverse contract, then its first mark"
"${PIN[@]}" target/release/examples/engine_scaling "$sizes" 0 inverse
