#!/usr/bin/env python3
"""The Python package's throughput, for bench/python.sh (figures in docs/benchmarks.md).

1. Margin of a 5-position cross account (default venue: BTCUSDT, ETHUSDT, BTC_USDC-PERPETUAL,
   SOL_USDC-PERPETUAL, BTC-PERPETUAL, four collateral assets) through the package:
   - `venue.margin(dict)`: the account and its market read from dicts on every call;
   - `venue.margin(portfolio, market)`: read once (`venue.portfolio`, `solvent.Market`);
   - `venue.margin_many([...] * N, market)`: N accounts in one call, on RAYON_NUM_THREADS threads
     (bench/python.sh runs it with 1, so it is the computation itself, and with all cores);
   - a getter (`venue.name`): the floor of any call into the module.
   The per-call overhead is the one-call time minus the per-account time of margin_many on one
   thread (the same computation without a Python call around each account), and what a report
   costs to read (the `to_dict()` of every figure, a few attributes).
2. Black-76 price + delta + gamma + vega over a crypto option chain: `solvent.black76.greeks`
   against the fastest numpy + scipy form (bench/peers/black76_peers.py, the peer bench/black76.sh
   uses), on the same arrays, in the same run.

Prints `name value` lines: calls/s, seconds per call, options/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import solvent

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "peers"))
import black76_peers  # noqa: E402  (the peer of bench/black76.sh)

# The 5-position account (with its market) that crates/solvent-py/examples/margin_rust.rs times
# from Rust in the same run.
_FILE = json.loads((Path(__file__).with_name("account-5.json")).read_text())
MARKET = _FILE.pop("market")
ACCOUNT = _FILE


def best_seconds(work, repetitions: int) -> float:
    best = float("inf")
    for _ in range(repetitions):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def per_call(work, calls: int, repetitions: int) -> float:
    def loop():
        for _ in range(calls):
            work()

    return best_seconds(loop, repetitions) / calls


def margin(calls: int, accounts: int, repetitions: int) -> None:
    venue = solvent.Venue.load("default")
    portfolio = venue.portfolio(ACCOUNT)
    market = solvent.Market(MARKET)
    report = venue.margin(portfolio, market)
    assert len(report.positions) == 5 and report.maintenance_margin > 0
    assert venue.margin(ACCOUNT, MARKET).to_json() == report.to_json()
    figures = venue.margin(portfolio, market, detail="figures")
    assert figures.maintenance_margin == report.maintenance_margin
    floor = per_call(lambda: venue.name, calls * 10, repetitions)
    rows = [
        ("full_dicts", lambda: venue.margin(ACCOUNT, MARKET)),
        ("full_read_once", lambda: venue.margin(portfolio, market)),
        (
            "full_read_once_attributes",
            lambda: (lambda r: (r.equity, r.maintenance_margin, r.health))(venue.margin(portfolio, market)),
        ),
        ("full_read_once_to_dict", lambda: venue.margin(portfolio, market).to_dict()),
        ("figures_dicts", lambda: venue.margin(ACCOUNT, MARKET, detail="figures")),
        ("figures_read_once", lambda: venue.margin(portfolio, market, detail="figures")),
    ]
    print(f"getter_seconds {floor:.3e}")
    for name, work in rows:
        seconds = per_call(work, calls, repetitions)
        print(f"margin_{name}_calls_per_s {1 / seconds:.0f}")
        print(f"margin_{name}_seconds {seconds:.3e}")
    threads = os.environ.get("RAYON_NUM_THREADS", "all")
    for detail in ("full", "figures"):
        many = [portfolio] * accounts
        batch = best_seconds(lambda: venue.margin_many(many, market, detail=detail), repetitions)
        print(f"margin_many_{detail}_threads {threads}")
        print(f"margin_many_{detail}_accounts_per_s {accounts / batch:.0f}")


def black76(options: int, repetitions: int) -> None:
    data = black76_peers.chain(options)
    f, k, t, vol, df, sign = (np.ascontiguousarray(row) for row in data)
    is_call = sign > 0
    ours = solvent.black76.greeks(f, k, t, vol, df, is_call)
    theirs = black76_peers.numpy_greeks(f, k, t, vol, df, sign)
    for a, b in zip(ours, theirs):
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9 * f), "binding and numpy disagree"
    binding = options / best_seconds(
        lambda: solvent.black76.greeks(f, k, t, vol, df, is_call), repetitions
    )
    numpy_rate = black76_peers.run_numpy(data, repetitions)
    print(f"black76_options {options}")
    print(f"black76_binding_options_per_s {binding:.0f}")
    print(f"black76_numpy_options_per_s {numpy_rate:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--options", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--only", choices=("margin", "black76"))
    args = parser.parse_args()
    if args.only in (None, "margin"):
        margin(args.calls, args.accounts, args.repetitions)
    if args.only in (None, "black76"):
        black76(args.options, args.repetitions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
