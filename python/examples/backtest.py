#!/usr/bin/env python3
"""A leveraged BTC/ETH basket over the shared daily price history, margined by each venue.

The strategy holds a long basket (60% BTC, 40% ETH by notional) at a target leverage on its
equity, rebalanced every Monday at the close; between rebalances the positions are fixed and the
equity moves with the prices. Every day, for every venue, the account (cash collateral, the two
perpetuals at their entry prices, the day's closes as index and mark) goes through
``venue.margin`` and the script records the venue's own figures: maintenance margin, health,
state, and each position's liquidation price. It then reports, per venue, the margin calls (days
whose state is ``margin_call`` or worse), the days whose intraday low reached the venue's BTC or
ETH liquidation price (the position is then closed at that price, its loss realised, and the
basket reopened at the next rebalance), and the lowest health seen.

Prices come from ``--prices`` (default ``../shared/data/prices`` from the repository root, the
layout its README describes: ``BTC-USDT.binance.daily.csv`` etc., USDT closes; the last row is a
partial day and is dropped). Money stays exact: prices are read as the CSV's decimal text,
cash is a ``Decimal``. Fees and funding are left out (this is about where each venue's margin
rules put the account, not about the strategy's return).

    python python/examples/backtest.py --start 2021-01-01 --end 2022-12-31 --leverage 3
"""

from __future__ import annotations

import argparse
import csv
import datetime
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import solvent

# Each venue's settlement asset and its BTC and ETH perpetuals (names as the venue files list).
VENUES: Dict[str, Tuple[str, Dict[str, str]]] = {
    "binance-usdm": ("USDT", {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}),
    "bybit-linear": ("USDT", {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}),
    "hyperliquid": ("USDC", {"BTC": "BTC", "ETH": "ETH"}),
    "drift": ("USDC", {"BTC": "BTC-PERP", "ETH": "ETH-PERP"}),
    "default": ("USDT", {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}),
}
WEIGHTS = {"BTC": Decimal("0.6"), "ETH": Decimal("0.4")}
# Size steps every venue above accepts (a multiple of each venue's own step).
STEPS = {"BTC": Decimal("0.001"), "ETH": Decimal("0.01")}
CALL_STATES = ("margin_call", "reduce_only", "liquidating", "bankrupt")


@dataclass
class Day:
    date: str
    weekday: int
    close: Dict[str, str]
    low: Dict[str, Decimal]


def read_prices(directory: Path, coins: List[str]) -> List[Day]:
    """The days every coin has, oldest first, without the partial last row (README, A1)."""
    series: Dict[str, Dict[str, Tuple[str, str]]] = {}
    for coin in coins:
        path = directory / f"{coin}-USDT.binance.daily.csv"
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))[:-1]
        series[coin] = {row["timestamp"]: (row["close"], row["low"]) for row in rows}
    dates = sorted(set.intersection(*(set(s) for s in series.values())))
    return [
        Day(
            date,
            datetime.date.fromisoformat(date).weekday(),
            {coin: series[coin][date][0] for coin in coins},
            {coin: Decimal(series[coin][date][1]) for coin in coins},
        )
        for date in dates
    ]


@dataclass
class Book:
    """The strategy's account on one venue: cash and positions (size, entry) per coin."""

    cash: Decimal
    positions: Dict[str, Tuple[Decimal, Decimal]] = field(default_factory=dict)

    def equity(self, close: Dict[str, str]) -> Decimal:
        upnl = sum(
            (size * (Decimal(close[coin]) - entry) for coin, (size, entry) in self.positions.items()),
            Decimal(0),
        )
        return self.cash + upnl

    def rebalance(self, close: Dict[str, str], leverage: Decimal) -> None:
        """Realises the P&L at the close and opens the target basket there."""
        equity = self.equity(close)
        self.cash = equity.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
        self.positions = {}
        if equity <= 0:
            return
        for coin, weight in WEIGHTS.items():
            size = (equity * leverage * weight / Decimal(close[coin])).quantize(
                STEPS[coin], rounding=ROUND_DOWN
            )
            if size > 0:
                self.positions[coin] = (size, Decimal(close[coin]))


def portfolio(book: Book, day: Day, asset: str, names: Dict[str, str], leverage: int) -> dict:
    """The account in PORTFOLIO.json's shape, with the day's market."""
    return {
        "account": "basket",
        "mode": "cross",
        "collateral": {asset: book.cash},
        "positions": [
            {"instrument": names[coin], "size": size, "entry_price": entry, "leverage": leverage}
            for coin, (size, entry) in book.positions.items()
        ],
        "market": {
            "timestamp": f"{day.date}T23:59:59Z",
            "index": {**day.close, "USDT": "1", "USDC": "1"},
        },
    }


@dataclass
class Tally:
    calls: List[str] = field(default_factory=list)
    breaches: List[Tuple[str, str, Decimal, Decimal]] = field(default_factory=list)
    lowest_health: Optional[Tuple[float, str]] = None
    errors: List[str] = field(default_factory=list)
    last: Optional[solvent.MarginReport] = None


def run(days: List[Day], venues: List[str], leverage: Decimal, capital: Decimal) -> Dict[str, Tally]:
    tallies: Dict[str, Tally] = {}
    for name in venues:
        asset, names = VENUES[name]
        venue = solvent.Venue.load(name)
        book = Book(cash=capital)
        tally = Tally()
        liquidation: Dict[str, Optional[Decimal]] = {}
        for index, day in enumerate(days):
            # Yesterday's liquidation prices against today's low: the venue liquidates the
            # position during the day, at about that price (closed there, its loss realised).
            for coin, price in liquidation.items():
                if price is not None and coin in book.positions and day.low[coin] <= price:
                    tally.breaches.append((day.date, coin, day.low[coin], price))
                    size, entry = book.positions.pop(coin)
                    book.cash += size * (price - entry)
                    # Each liquidation price holds all else fixed: once one position is closed,
                    # the others' prices are no longer those; they are recomputed at the close.
                    break
            if book.cash <= 0 and not book.positions:
                tally.errors.append(f"{day.date}: the account is wiped out")
                break
            if index == 0 or day.weekday == 0:
                book.rebalance(day.close, leverage)
            try:
                report = venue.margin(portfolio(book, day, asset, names, int(leverage) * 2))
            except solvent.SolventError as error:
                tally.errors.append(f"{day.date}: {error}")
                liquidation = {}
                continue
            tally.last = report
            if report.state in CALL_STATES:
                tally.calls.append(day.date)
            if report.health is not None and (
                tally.lowest_health is None or report.health < tally.lowest_health[0]
            ):
                tally.lowest_health = (report.health, day.date)
            by_name = {position.instrument: position for position in report.positions}
            liquidation = {
                coin: by_name[names[coin]].liquidation_price
                for coin in book.positions
                if names[coin] in by_name
            }
        tallies[name] = tally
    return tallies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=Path("../shared/data/prices"))
    parser.add_argument("--start", default="2021-01-01")
    parser.add_argument("--end", default="2022-12-31")
    parser.add_argument("--leverage", type=Decimal, default=Decimal("3"))
    parser.add_argument("--capital", type=Decimal, default=Decimal("100000"))
    parser.add_argument("--venues", default=",".join(VENUES))
    args = parser.parse_args()
    days = [d for d in read_prices(args.prices, list(WEIGHTS)) if args.start <= d.date <= args.end]
    venues = [v.strip() for v in args.venues.split(",") if v.strip()]
    tallies = run(days, venues, args.leverage, args.capital)
    print(
        f"{len(days)} days {days[0].date}..{days[-1].date}, {args.leverage}x long 60% BTC / 40% ETH, "
        f"rebalanced on Mondays, capital {args.capital}"
    )
    for name, tally in tallies.items():
        print(f"\n{name}")
        first = tally.calls[0] if tally.calls else "none"
        print(f"  margin-call days {len(tally.calls)} (first {first})")
        if tally.lowest_health:
            health, when = tally.lowest_health
            print(f"  lowest health {health:.3f} on {when}")
        print(f"  liquidations (the day's low reached the venue's liquidation price): {len(tally.breaches)}")
        for when, coin, low, price in tally.breaches[:5]:
            print(f"    {when} {coin} low {low} <= liquidation {price}")
        if tally.last is not None:
            report = tally.last
            print(
                f"  last day: equity {report.equity} {report.settlement_asset}, "
                f"MM {report.maintenance_margin}, health {report.health and round(report.health, 3)}, {report.state}"
            )
            for position in report.positions:
                print(
                    f"    {position.instrument:<12} size {position.size} liquidation price {position.liquidation_price}"
                )
        for error in tally.errors[:3]:
            print(f"  stopped: {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
