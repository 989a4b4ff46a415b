#!/usr/bin/env python3
"""Portfolio-margin peer for bench/portfolio_margin.sh: the same algorithm as Solvent's
(crates/solvent-risk/benches/portfolio_margin.rs) in vectorised numpy.

Reads the workload the Rust bench writes (SOLVENT_PM_WORKLOAD: market inputs, parameters, listed
instruments, 10,000 accounts of 10 positions, and Rust's MM and IM of every account, in the case
format of scripts/oracles/pm_oracle.py), then times, each as the best of several repetitions:
  revaluation   every listed instrument revalued once per scenario (Black-76 on numpy arrays for
                the options), as pm_oracle.revalue;
  aggregation   every account's scenario P&L as the sum of exposure x unit P&L over its
                positions, the charges, the cross-underlying offset, MM and IM, vectorised over
                accounts (pm_oracle.margins).
Reading the file and laying the accounts out as padded arrays is not timed (the Rust bench also
prepares its exposures before timing). The MM of every account is checked against Rust's.

Run pinned to one core with OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1
(bench/portfolio_margin.sh does this). Prints `name value` lines.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "oracles"))

import numpy as np  # noqa: E402
import pm_oracle  # noqa: E402


def best_of(repeats, work):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with open(args.workload) as handle:
        case = json.load(handle)

    revaluation_s, (books, locate, _) = best_of(args.repeats, lambda: pm_oracle.revalue(case))
    under, row, amount, _ = pm_oracle.layout(case, books, locate)
    aggregation_s, (mm, im, _) = best_of(args.repeats, lambda: pm_oracle.margins(case, books, under, row, amount))

    rust_mm = np.array([a["rust"]["mm"] for a in case["accounts"]])
    rust_im = np.array([a["rust"]["im"] for a in case["accounts"]])
    gap = max(
        float(np.max(np.abs(mm - rust_mm) / np.maximum(np.abs(rust_mm), 1.0))),
        float(np.max(np.abs(im - rust_im) / np.maximum(np.abs(rust_im), 1.0))),
    )
    accounts = len(case["accounts"])
    positions = sum(len(a["positions"]) + len(a["spot"]) for a in case["accounts"])
    scenarios = len(books[0]["moves"])
    print(f"instruments {len(case['instruments'])}")
    print(f"accounts {accounts}")
    print(f"revaluation_s {revaluation_s:.9f}")
    print(f"aggregation_s {aggregation_s:.9f}")
    print(f"accounts_per_s {accounts / aggregation_s:.1f}")
    print(f"ns_per_position_scenario {aggregation_s * 1e9 / (positions * scenarios):.3f}")
    print(f"max_rel_gap_vs_rust {gap:.3e}")
    for index in (0, 1, accounts // 2, accounts - 1):
        print(f"check {case['accounts'][index]['id']} numpy {mm[index]:.6f} rust {rust_mm[index]:.6f}")
    if not gap <= 1e-9:
        sys.exit(f"numpy and Rust disagree: largest relative gap {gap:e}")


if __name__ == "__main__":
    main()
