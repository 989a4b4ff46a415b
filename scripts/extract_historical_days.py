#!/usr/bin/env python3
"""Derives scenarios/historical-days.json from the shared price data (../shared/data/prices).

Each named day becomes one joint scenario: the close-to-close move of every coin that traded
(close_t / close_{t-1} - 1), and the close-to-close change of Deribit's DVOL for BTC and ETH where
the series exists (DVOL_t / DVOL_{t-1} - 1, a relative volatility change). 2025-10-10 also gets an
intraday variant (low_t / close_{t-1} - 1), the wicks that liquidated accounts that day.
Usage: scripts/extract_historical_days.py [PRICES_DIR] [--check]
"""
import csv
import json
import sys
from pathlib import Path

DAYS = [
    ("2020-03-12 COVID crash", "2020-03-12", "close"),
    ("2021-05-19 China mining ban", "2021-05-19", "close"),
    ("2022-11-09 FTX collapse", "2022-11-09", "close"),
    ("2025-10-10 liquidation cascade", "2025-10-10", "close"),
    ("2025-10-10 liquidation cascade, intraday lows", "2025-10-10", "low"),
]
COINS = ["BTC", "ETH", "SOL", "XRP", "BNB", "DOGE"]
OUT = Path(__file__).resolve().parent.parent / "scenarios" / "historical-days.json"


def spot(directory, coin):
    with open(directory / f"{coin}-USDT.binance.daily.csv", newline="") as handle:
        return {row["timestamp"]: row for row in csv.DictReader(handle)}


def dvol(directory, coin):
    path = directory / f"{coin}-DVOL.deribit.daily.csv"
    with open(path, newline="") as handle:
        return {row["date"]: float(row["close"]) for row in csv.DictReader(handle)}


def previous(day):
    import datetime
    return (datetime.date.fromisoformat(day) - datetime.timedelta(days=1)).isoformat()


def build(directory):
    prices = {coin: spot(directory, coin) for coin in COINS}
    vols = {coin: dvol(directory, coin) for coin in ["BTC", "ETH"]}
    scenarios = []
    for name, day, field in DAYS:
        moves, vol_changes = {}, {}
        for coin in COINS:
            today, before = prices[coin].get(day), prices[coin].get(previous(day))
            if today and before:
                moves[coin] = f"{float(today[field]) / float(before['close']) - 1:.6f}"
        for coin, series in vols.items():
            if day in series and previous(day) in series:
                vol_changes[coin] = f"{series[day] / series[previous(day)] - 1:.6f}"
        scenarios.append({"name": name, "price_moves": moves, "vol_changes": vol_changes})
    return {
        "source": "../shared/data/prices (Binance daily klines, Deribit DVOL); derived by scripts/extract_historical_days.py",
        "scenarios": scenarios,
    }


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    directory = Path(args[0]) if args else Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "prices"
    text = json.dumps(build(directory), indent=2) + "\n"
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            sys.exit(f"{OUT} differs from what {directory} gives: regenerate it")
        return
    OUT.write_text(text)


if __name__ == "__main__":
    main()
