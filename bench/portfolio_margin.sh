#!/usr/bin/env bash
# Portfolio margin (DESIGN.md 12): Rust on one core against the fastest numpy of the same model
# (matrix products), on the same workload.
#
# Usage: bench/portfolio_margin.sh [extra criterion arguments, e.g. --measurement-time 3]
#
# Workload: crates/solvent-risk/benches/portfolio_margin.rs - 10,000 portfolio-mode accounts of
# 10 positions on a shared set of listed instruments of the default venue, 9 x 3 + 8 = 35
# scenarios per underlying. The Rust bench times the revaluation (ScenarioBook::new, every
# instrument once per scenario) and the lean maintenance margin over all accounts - over accounts
# prepared beforehand (PreparedExposures, built once per account when its positions change and
# reused across price updates, so not part of a price update: not timed, like the peer's layout of
# its padded arrays) and, for reference, straight from the exposures - and writes the
# workload with its MM and IM per account to target/pm-bench/workload.json; the numpy peer
# (bench/peers/portfolio_margin.py: exposure matrices @ scenario P&L matrices, contingencies
# vectorised) reads it, times the same two steps (not the file reading nor the layout of the
# exposure matrices) and checks that every account's MM and IM agree with Rust's; it also runs
# the test oracle (scripts/oracles/pm_oracle.py) on the workload, untimed, as a second check.
# Rust runs pinned to one core with taskset when available (core 0, or BENCH_CORE). The peer runs
# twice: with the OpenMP/OpenBLAS/MKL thread variables unset and not pinned (numpy's default BLAS
# threads, as a quant would run it: the headline ratio), and pinned to Rust's core with one
# thread. Needs the oracle venv: ./scripts/setup-oracles. Measured figures and what the
# benchmark does not cover (the engine's path, attribution, ES): docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-target/oracle-venv/bin/python}"
if [ ! -x "$PY" ]; then
    echo "the numpy peer needs its Python environment ($PY is missing): run ./scripts/setup-oracles" >&2
    exit 1
fi
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c "${BENCH_CORE:-0}"); fi
ONE_THREAD=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1)
DEFAULT_THREADS=(env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS -u MKL_NUM_THREADS)

work="$PWD/target/pm-bench"
mkdir -p "$work"
workload="$work/workload.json"
rm -f "$workload"

cargo bench --quiet -p solvent-risk --bench portfolio_margin --no-run
rust_out="$(SOLVENT_PM_WORKLOAD="$workload" "${PIN[@]}" cargo bench --quiet -p solvent-risk \
    --bench portfolio_margin -- "$@" 2>/dev/null)"
peer_out="$("${DEFAULT_THREADS[@]}" "$PY" bench/peers/portfolio_margin.py "$workload" --label numpy)"
peer_1t_out="$("${ONE_THREAD[@]}" "${PIN[@]}" "$PY" bench/peers/portfolio_margin.py "$workload" --label numpy_1t)"

estimate() { # mean nanoseconds per iteration of a criterion bench
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["mean"]["point_estimate"])' \
        "target/criterion/portfolio_margin/$1/new/estimates.json"
}
peers_out="$peer_out"$'\n'"$peer_1t_out"
field() { awk -v name="$1" '$1 == name { print $2; exit }' <<<"$peers_out"; }

accounts="$(field accounts)"
instruments="$(field instruments)"
positions=10
scenarios=35
rust_margin_ns="$(estimate maintenance_margin_prepared_10000_accounts)"
rust_unprepared_ns="$(estimate maintenance_margin_10000_accounts)"
rust_revaluation_ns="$(estimate revaluation)"
peer_margin_s="$(field numpy_aggregation_s)"
peer_revaluation_s="$(field numpy_revaluation_s)"
peer_1t_margin_s="$(field numpy_1t_aggregation_s)"
peer_1t_revaluation_s="$(field numpy_1t_revaluation_s)"

grep '^portfolio_margin:' <<<"$rust_out" || true
echo
# Rust's best of 20 over the prepared accounts, the like-for-like peer of numpy's best of 7 (a
# criterion mean also counts every time the core was shared with something else).
rust_best="$(awk '/^portfolio_margin:.*prepared:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "accounts/s,") print $i }' <<<"$rust_out")"
awk -v a="$accounts" -v p="$positions" -v s="$scenarios" -v i="$instruments" \
    -v rm="$rust_margin_ns" -v ru="$rust_unprepared_ns" -v rr="$rust_revaluation_ns" -v rb="${rust_best:-0}" \
    -v pm="$peer_margin_s" -v pr="$peer_revaluation_s" \
    -v qm="$peer_1t_margin_s" -v qr="$peer_1t_revaluation_s" -v threads="$(nproc)" 'BEGIN {
    printf "workload: %d accounts x %d positions x %d scenarios, %d listed instruments\n\n", a, p, s, i
    printf "%-36s %14s %16s %16s\n", "implementation", "accounts/s", "ns/pos-scenario", "revaluation ms"
    printf "%-36s %14.0f %16.3f %16.3f\n", "rust prepared, 1 core (crit. mean)", a / (rm * 1e-9), rm / (a * p * s), rr / 1e6
    printf "%-36s %14.0f %16.3f %16s\n", "rust from exposures, 1 core (mean)", a / (ru * 1e-9), ru / (a * p * s), "-"
    if (rb > 0) printf "%-36s %14.0f %16.3f %16s\n", "rust prepared, 1 core (best of 20)", rb, 1e9 / (rb * p * s), "-"
    printf "%-36s %14.0f %16.3f %16.3f\n", "numpy, default threads (best of 7)", a / pm, pm * 1e9 / (a * p * s), pr * 1e3
    printf "%-36s %14.0f %16.3f %16.3f\n", "numpy, 1 thread, 1 core (best of 7)", a / qm, qm * 1e9 / (a * p * s), qr * 1e3
    ratio = (pm * 1e9) / rm
    printf "\n(this machine: %d hardware threads; numpy default threads may use all of them)\n", threads
    printf "ratio rust 1 core / numpy default threads, margin: %.1fx (target >= 20x: %s)\n", ratio, (ratio >= 20 ? "met" : "NOT met")
    printf "ratio rust 1 core / numpy 1 thread, margin:        %.1fx\n", (qm * 1e9) / rm
    printf "  (from exposures, grouping inside each call:      %.1fx default, %.1fx 1 thread)\n", (pm * 1e9) / ru, (qm * 1e9) / ru
    if (rb > 0) printf "  (rust best of 20 / numpy best of 7:              %.1fx default, %.1fx 1 thread)\n", rb * pm / a, rb * qm / a
    printf "ratio rust / numpy, revaluation:                   %.1fx default, %.1fx 1 thread\n", (pr * 1e9) / rr, (qr * 1e9) / rr
}'
echo
grep -E '^numpy(_1t)?_(form|tuned_forms|dense_s|sparse_s|tuned_s) ' <<<"$peers_out"
grep -E '^(max_rel_gap_vs_rust|oracle_max_rel_gap_vs_rust|check) ' <<<"$peer_out"
