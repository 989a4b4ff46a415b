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
printf '%-48s %9s %9s\n' "ratio rust batch / peer" "v3" "native"
for peer in numpy quantlib vollib; do
    p="$(rate "$peer" <<<"$peers_out")"
    awk -v s="$rust_shipped" -v n="$rust_native" -v p="$p" -v name="$peer" \
        'BEGIN { printf "%-48s %8.1fx %8.1fx\n", name, s / p, n / p }'
done
