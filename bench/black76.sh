#!/usr/bin/env bash
# Black-76 price + delta + gamma + vega: Rust batch path against Python peers, one core each.
#
# Usage: bench/black76.sh [OPTIONS]   (default 1000000 options)
#
# Builds crates/solvent-pricing/examples/black76_throughput.rs as the product ships: for the
# workspace target in .cargo/config.toml (x86-64-v3: AVX2 + FMA), with RUSTFLAGS cleared so that
# nothing overrides it; its batch kernels switch to AVX-512 at run time where the processor has
# it (the script prints which). The ratios are computed from that build. For information it
# also builds for this machine's CPU (-C target-cpu=native), in a separate target directory.
# Every program is pinned to core 0 (or to core $BENCH_CORE) with taskset when available, Python
# with one thread for OpenMP/OpenBLAS/MKL. The peers run on the same deterministic inputs
# (bench/peers/black76_peers.py). Rates are the best of several repetitions; other load on the
# machine lowers them, so run it a few times and compare the ratios (numpy is measured in the
# same run). The Rust batch figure is the fused call price_and_greeks_checked, which validates
# every input (finite, in range) as it values; the numpy peer validates nothing.
#
# Three workloads (crates/solvent-pricing/benches/inputs/mod.rs, bench/peers/black76_peers.py):
# the mix (independent uniform draws), a Deribit-like crypto option chain (expiry ladder 1 day to
# 1 year, round strike grids 0.3x to 3x the forward, a market smile within 30% to 150%), and the
# same chain with a flat smile. Each is timed against the fastest of several numpy forms, and the
# fraction of its options the batch sends to its careful (slow) kernel is printed (from both
# sides: they must agree, which checks that both generated the same chain). Measured figures,
# where the time goes and what is not covered: docs/benchmarks.md.
# Needs the oracle venv: ./scripts/setup-oracles
set -euo pipefail
cd "$(dirname "$0")/.."

OPTIONS="${1:-1000000}"
PY="${PYTHON:-target/oracle-venv/bin/python}"
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c "${BENCH_CORE:-0}"); fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
    cargo build --quiet --release -p solvent-pricing --example black76_throughput
RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=target/native \
    cargo build --quiet --release -p solvent-pricing --example black76_throughput

rate() { awk -v name="$1" '$1 == name { print $2 }'; }

shipped_out="$("${PIN[@]}" target/release/examples/black76_throughput "$OPTIONS" 2>/dev/null)"
native_out="$("${PIN[@]}" target/native/release/examples/black76_throughput "$OPTIONS" 2>/dev/null)"
peers_out="$("${PIN[@]}" "$PY" bench/peers/black76_peers.py --options "$OPTIONS")"

rust_shipped="$(rate batch <<<"$shipped_out")"
rust_chain="$(rate chain_batch <<<"$shipped_out")"
rust_chain_flat="$(rate chain_flat_batch <<<"$shipped_out")"
native_chain="$(rate chain_batch <<<"$native_out")"
native_chain_flat="$(rate chain_flat_batch <<<"$native_out")"
rust_native="$(rate batch <<<"$native_out")"
rust_scalar="$(rate scalar <<<"$shipped_out")"
rust_two_step="$(rate two_step <<<"$shipped_out")"

echo "shipped build target features: $(awk '$1 == "features" { $1 = ""; print substr($0, 2) }' <<<"$shipped_out")"
echo "batch kernels at run time: $(awk '$1 == "runtime" { $1 = ""; print substr($0, 2) }' <<<"$shipped_out")"
echo
printf '%-48s %15s\n' "implementation (one core, $OPTIONS options)" "options/s"
printf '%-48s %15.0f\n' "rust batch checked+valued, x86-64-v3 (shipped)" "$rust_shipped"
printf '%-48s %15.0f\n' "rust new_checked then batch, x86-64-v3" "$rust_two_step"
printf '%-48s %15.0f\n' "rust scalar greeks (incl. theta), x86-64-v3" "$rust_scalar"
printf '%-48s %15.0f\n' "rust batch checked, target-cpu=native (info)" "$rust_native"
for peer in numpy quantlib vollib; do
    printf '%-48s %15.0f\n' "python $peer" "$(rate "$peer" <<<"$peers_out")"
done
echo "(rust batch validates every input as it values; the numpy peer does no validation)"
echo
printf '%-48s %15s %15s %10s\n' "workload (fused batch vs fastest numpy)" "rust options/s" "numpy options/s" "careful"
for w in mix chain chain_flat; do
    case "$w" in
        mix) r="$rust_shipped"; p="$(rate numpy <<<"$peers_out")" ;;
        chain) r="$rust_chain"; p="$(rate numpy_chain <<<"$peers_out")" ;;
        chain_flat) r="$rust_chain_flat"; p="$(rate numpy_chain_flat <<<"$peers_out")" ;;
    esac
    careful_rust="$(rate "careful_$w" <<<"$shipped_out")"
    careful_peer="$(rate "careful_$w" <<<"$peers_out")"
    if [ "$careful_rust" != "$careful_peer" ]; then
        echo "careful fraction of $w differs: rust $careful_rust, python $careful_peer (inputs differ)" >&2
        exit 1
    fi
    printf '%-48s %15.0f %15.0f %9.1f%%\n' "$w" "$r" "$p" "$(awk -v c="$careful_rust" 'BEGIN { print 100 * c }')"
done
echo
printf '%-48s %9s %9s\n' "ratio rust batch / peer" "v3" "native"
for peer in numpy quantlib vollib; do
    p="$(rate "$peer" <<<"$peers_out")"
    awk -v s="$rust_shipped" -v n="$rust_native" -v p="$p" -v name="$peer (mix)" \
        'BEGIN { printf "%-48s %8.1fx %8.1fx\n", name, s / p, n / p }'
done
for w in chain chain_flat; do
    p="$(rate "numpy_$w" <<<"$peers_out")"
    if [ "$w" = chain ]; then s="$rust_chain" n="$native_chain"; else s="$rust_chain_flat" n="$native_chain_flat"; fi
    awk -v s="$s" -v n="$n" -v p="$p" -v name="numpy ($w)" \
        'BEGIN { printf "%-48s %8.1fx %8.1fx\n", name, s / p, n / p }'
done
echo "(target, DESIGN 12: >= 10x the fastest numpy per core on the crypto chain)"
