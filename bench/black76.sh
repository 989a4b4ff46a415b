#!/usr/bin/env bash
# Black-76 price + delta + gamma + vega: Rust batch path against Python peers, one core each.
#
# Usage: bench/black76.sh [OPTIONS]   (default 1000000 options)
#
# Builds crates/solvent-pricing/examples/black76_throughput.rs twice: for the baseline x86-64
# target (SSE2, what a plain `cargo build` gives) and for this machine's CPU
# (-C target-cpu=native: AVX2/AVX-512 lanes and FMA), in a separate target directory. numpy
# chooses its SIMD kernels at run time for the same CPU, so the native build is the like-for-like
# figure. Every program is pinned to core 0 with taskset when available, Python with one
# thread for OpenMP/OpenBLAS/MKL. The peers run on the same deterministic inputs
# (bench/peers/black76_peers.py). Needs the oracle venv:
#   python3 -m venv target/oracle-venv && target/oracle-venv/bin/pip install -r scripts/oracles/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."

OPTIONS="${1:-1000000}"
PY="${PYTHON:-target/oracle-venv/bin/python}"
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c 0); fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

cargo build --quiet --release -p solvent-pricing --example black76_throughput
RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=native" CARGO_TARGET_DIR=target/native \
    cargo build --quiet --release -p solvent-pricing --example black76_throughput

rate() { awk -v name="$1" '$1 == name { print $2 }'; }

baseline_out="$("${PIN[@]}" target/release/examples/black76_throughput "$OPTIONS" 2>/dev/null)"
native_out="$("${PIN[@]}" target/native/release/examples/black76_throughput "$OPTIONS" 2>/dev/null)"
peers_out="$("${PIN[@]}" "$PY" bench/peers/black76_peers.py --options "$OPTIONS")"

rust_native="$(rate batch <<<"$native_out")"
rust_baseline="$(rate batch <<<"$baseline_out")"
rust_scalar="$(rate scalar <<<"$native_out")"

printf '%-40s %15s\n' "implementation (one core)" "options/s"
printf '%-40s %15.0f\n' "rust batch, target-cpu=native" "$rust_native"
printf '%-40s %15.0f\n' "rust batch, baseline x86-64" "$rust_baseline"
printf '%-40s %15.0f\n' "rust scalar greeks (incl. theta)" "$rust_scalar"
for peer in numpy quantlib vollib; do
    printf '%-40s %15.0f\n' "python $peer" "$(rate "$peer" <<<"$peers_out")"
done
echo
printf '%-40s %8s %10s\n' "ratio rust batch / peer" "native" "baseline"
for peer in numpy quantlib vollib; do
    p="$(rate "$peer" <<<"$peers_out")"
    awk -v n="$rust_native" -v b="$rust_baseline" -v p="$p" -v name="$peer" \
        'BEGIN { printf "%-40s %7.1fx %9.1fx\n", name, n / p, b / p }'
done
