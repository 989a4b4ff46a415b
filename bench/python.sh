#!/usr/bin/env bash
# The Python package through Python: calls/s for the margin of a 5-position account, the
# per-call overhead, and Black-76 price + delta + gamma + vega through the binding against the
# fastest numpy + scipy form, on the same arrays in the same run (python/benchmarks/bench_binding.py
# says what each figure is).
#
# Usage: bench/python.sh [ARGS for bench_binding.py, e.g. --options 1000000 --calls 5000]
#
# Builds the release wheel and installs it (scripts/test-python with SOLVENT_WHEEL_PROFILE=release,
# which also runs the package's tests on it) and the same margin computation as a Rust program
# (crates/solvent-py/examples/margin_rust.rs, on python/benchmarks/account-5.json): the binding's
# per-call overhead is the Python time per call minus the Rust time per report. Everything runs
# pinned to one core (taskset, core $BENCH_CORE or 0), with one thread for OpenMP/OpenBLAS/MKL
# and for rayon (margin_many); Rust and Python alternate ROUNDS times (default 3) and each figure
# is the best of its rounds. Other load on the machine lowers the rates. Figures and what is not
# covered: docs/benchmarks.md ("Python package").
set -euo pipefail
cd "$(dirname "$0")/.."
SOLVENT_WHEEL_PROFILE=release ./scripts/test-python -q -x >/dev/null
cargo build --quiet --release --locked -p solvent-py --example margin_rust
PY=target/python-venv/bin/python
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c "${BENCH_CORE:-0}"); fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1

# Rust and Python alternate, ROUNDS times; each figure is the best of its rounds (seconds: the
# smallest; rates: the largest), so load that comes and goes hits both sides alike.
ROUNDS="${ROUNDS:-3}"
rust_all=""
py_all=""
for _ in $(seq "$ROUNDS"); do
  rust_all+="$("${PIN[@]}" target/release/examples/margin_rust)"$'\n'
  py_all+="$("${PIN[@]}" "$PY" python/benchmarks/bench_binding.py "$@")"$'\n'
done
best() {
  awk '$2 ~ /^[0-9.e+-]+$/ {
         if (!($1 in v)) { v[$1] = $2; order[++n] = $1 }
         else if ($1 ~ /seconds$/ && $2 + 0 < v[$1] + 0) v[$1] = $2
         else if ($1 !~ /seconds$/ && $2 + 0 > v[$1] + 0) v[$1] = $2
       }
       END { for (i = 1; i <= n; i++) print order[i], v[order[i]] }'
}
rust_out="$(best <<<"$rust_all")"
py_out="$(best <<<"$py_all")"
echo "$rust_out"
echo "$py_out"

value() { awk -v name="$1" '$1 == name { print $2 }'; }
echo
echo "== per-call overhead of the binding (Python seconds per call - Rust seconds per report)"
for detail in full figures; do
  rust="$(value "rust_margin_${detail}_seconds" <<<"$rust_out")"
  for how in read_once dicts; do
    python="$(value "margin_${detail}_${how}_seconds" <<<"$py_out")"
    awk -v d="$detail" -v h="$how" -v p="$python" -v r="$rust" \
      'BEGIN { printf "%-8s %-10s python %8.2f us  rust %8.2f us  overhead %7.2f us (%4.1f%%)\n", d, h, p * 1e6, r * 1e6, (p - r) * 1e6, 100 * (p - r) / p }'
  done
done
binding="$(value black76_binding_options_per_s <<<"$py_out")"
numpy="$(value black76_numpy_options_per_s <<<"$py_out")"
awk -v b="$binding" -v n="$numpy" 'BEGIN { printf "\nBlack-76 through the binding: %.1f x the fastest numpy + scipy form\n", b / n }'
