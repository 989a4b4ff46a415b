#!/usr/bin/env python3
"""Derives crates/solvent-server/demo/prices.csv, the live demo's market, from the shared price
data (../shared/data/prices).

The extract is 2025-10-01..2025-11-04 (35 UTC days) for BTC and ETH: the rally to BTC's all-time
high (126,199.63 on 2025-10-06), the 2025-10-10 liquidation cascade (BTC's intraday low 16.2%
under its open, ETH's 21.4%) and the slide of early November. Each row is one coin's day: the
Binance spot daily kline (open, high, low, close, USDT) and Deribit's DVOL open and close that
day (30-day implied volatility, percent). Values are copied as the source writes them.

It also copies the year before the extract, 2024-10-01..2025-09-30, of each coin's Binance file
(the rows as written, under the same header) to crates/solvent-server/demo/history/: the demo's
scheduled volatility forecasts start from those closes (docs/vol-scaled-ranges.md; GARCH's first
fit needs 250 returns), and the server's forecast tests read them.
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
HISTORY_FIRST = datetime.date(2024, 10, 1)
HISTORY_DIR = OUT.parent / "history"


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


def history(directory, coin):
    """The coin's Binance rows from HISTORY_FIRST to the day before FIRST, as the source writes them."""
    source = directory / f"{coin}-USDT.binance.daily.csv"
    lines = source.read_text().splitlines()
    kept = [lines[0]]
    day = HISTORY_FIRST
    for line in lines[1:]:
        date = line.split(",", 1)[0]
        if HISTORY_FIRST.isoformat() <= date < FIRST.isoformat():
            if date != day.isoformat():
                sys.exit(f"{source}: expected {day}, found {date}")
            kept.append(line)
            day += datetime.timedelta(days=1)
    if day != FIRST:
        sys.exit(f"{source}: the rows stop before {day}")
    return "\n".join(kept) + "\n"


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    directory = Path(args[0]) if args else Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "prices"
    outputs = {OUT: build(directory)}
    for coin in COINS:
        outputs[HISTORY_DIR / f"{coin}-USDT.binance.daily.csv"] = history(directory, coin)
    if "--check" in sys.argv:
        for path, text in outputs.items():
            if not path.exists() or path.read_text() != text:
                sys.exit(f"{path} differs from what {directory} gives: regenerate it")
        return
    HISTORY_DIR.mkdir(exist_ok=True)
    for path, text in outputs.items():
        path.write_text(text)


if __name__ == "__main__":
    main()
