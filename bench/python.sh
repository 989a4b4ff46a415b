#!/usr/bin/env bash
# The Python package through Python: calls/s for the margin of a 5-position account, the
# per-call overhead, and Black-76 price + delta + gamma + vega through the binding against the
# fastest numpy + scipy form, on the same arrays in the same run (python/benchmarks/bench_binding.py
# says what each figure is).
#
# Usage: bench/python.sh [ARGS for bench_binding.py, e.g. --options 1000000 --accounts 100000]
#
# Builds the release wheel and installs it (scripts/test-python with SOLVENT_WHEEL_PROFILE=release,
# which also runs the package's tests on it), then runs pinned to one core (taskset, core
# $BENCH_CORE or 0) with one thread for OpenMP/OpenBLAS/MKL and for rayon; margin_many is run a
# second time on every core. Rates are the best of several repetitions; other load on the machine
# lowers them. Figures and what is not covered: docs/benchmarks.md ("Python package").
set -euo pipefail
cd "$(dirname "$0")/.."
SOLVENT_WHEEL_PROFILE=release ./scripts/test-python -q -x >/dev/null
PY=target/python-venv/bin/python
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c "${BENCH_CORE:-0}"); fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
echo "== one core"
RAYON_NUM_THREADS=1 "${PIN[@]}" "$PY" python/benchmarks/bench_binding.py "$@"
echo "== margin_many on every core ($(nproc))"
"$PY" python/benchmarks/bench_binding.py --only margin "$@" | grep '^margin_many'
