#!/usr/bin/env python3
"""Derives crates/solvent-server/demo/prices.csv, the live demo's market, from the shared price
data (../shared/data/prices).

The extract is 2025-10-01..2025-11-04 (35 UTC days) for BTC and ETH: the rally to BTC's all-time
high (126,199.63 on 2025-10-06), the 2025-10-10 liquidation cascade (BTC's intraday low 16.2%
under its open, ETH's 21.4%) and the slide of early November. Each row is one coin's day: the
Binance spot daily kline (open, high, low, close, USDT) and Deribit's DVOL open and close that
day (30-day implied volatility, percent). Values are copied as the source writes them.
Usage: scripts/extract_demo_prices.py [PRICES_DIR] [--check]
"""
import csv
import datetime
import sys
from pathlib import Path

FIRST = datetime.date(2025, 10, 1)
LAST = datetime.date(2025, 11, 4)
COINS = ["BTC", "ETH"]
OUT = Path(__file__).resolve().parent.parent / "crates" / "solvent-server" / "demo" / "prices.csv"
HEADER = "date,underlying,open,high,low,close,dvol_open,dvol_close"


def rows_by_date(path, key):
    with open(path, newline="") as handle:
        return {row[key]: row for row in csv.DictReader(handle)}


def build(directory):
    lines = [HEADER]
    spot = {c: rows_by_date(directory / f"{c}-USDT.binance.daily.csv", "timestamp") for c in COINS}
    dvol = {c: rows_by_date(directory / f"{c}-DVOL.deribit.daily.csv", "date") for c in COINS}
    day = FIRST
    while day <= LAST:
        key = day.isoformat()
        for coin in COINS:
            kline, vol = spot[coin].get(key), dvol[coin].get(key)
            if kline is None or vol is None:
                sys.exit(f"{directory}: no {coin} row for {key}")
            fields = [kline["open"], kline["high"], kline["low"], kline["close"], vol["open"], vol["close"]]
            lines.append(",".join([key, coin] + fields))
        day += datetime.timedelta(days=1)
    return "\n".join(lines) + "\n"


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    directory = Path(args[0]) if args else Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "prices"
    text = build(directory)
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit(f"{OUT} differs from what {directory} gives: regenerate it")
        return
    OUT.write_text(text)


if __name__ == "__main__":
    main()
