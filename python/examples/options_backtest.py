#!/usr/bin/env python3
"""A short BTC strangle on Deribit over the shared price history, margined daily in standard and
in portfolio margin.

The strategy sells BTC inverse options (settled in BTC, the collateral BTC): every four weeks, a
call and a put ``--otm`` out of the money (strikes rounded to 1,000 USD), expiring on the Friday
four weeks ahead, ``--contracts`` each. The premium is received in BTC at the day's model price;
at expiry the options settle at that day's opening price (the previous close: Deribit settles on
a 30-minute average before 08:00 UTC) and the next pair is sold.

Every day the account (its BTC, the two options) goes through ``venue.margin`` twice, once as a
standard (cross) account and once in portfolio mode, on the day's market: the BTC close as index
and a flat smile at the day's Deribit DVOL close for the options' expiry (no option marks are
given: both are valued by Black-76 on that smile, as the venue's model marks them). The script
records each mode's requirement, health and state; an account the venue would liquidate
(``liquidating`` or worse at the close) buys both options back at the close's model price, its
loss realised, and sells the next pair the next day. It reports, per mode, the margin-call
days, the liquidations, the largest initial margin as a share of equity, the lowest health and
the end equity. The daily close is the only price seen: an intraday spike is not.

Prices come from ``--prices`` (default ``../shared/data/prices``): ``BTC-USDT.binance.daily.csv``
for the index and ``BTC-DVOL.deribit.daily.csv`` (from 2021-03-24) for the volatility. Money is
exact: BTC amounts are ``Decimal``; only the model premium passes through a float, as Black-76
computes it, and is rounded to the venue's 0.0001 BTC tick toward the seller's loss.

    python python/examples/options_backtest.py --start 2022-01-01 --end 2022-12-31
"""

from __future__ import annotations

import argparse
import csv
import datetime
import warnings
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import solvent
from solvent import black76

CALL_STATES = ("margin_call", "reduce_only", "liquidating", "bankrupt")
LIQUIDATED = ("liquidating", "bankrupt")
MODES = ("cross", "portfolio")
# Deribit's BTC option tick (0.0001 BTC for premiums above 0.005 BTC; the finer tick below is
# left out: a premium is rounded to the coarser one).
TICK = Decimal("0.0001")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass
class Day:
    date: datetime.date
    close: Decimal
    dvol: float


def read_days(directory: Path) -> List[Day]:
    """The days with both a BTC close and a DVOL close, oldest first, without the BTC file's
    partial last row (README, A1)."""
    with open(directory / "BTC-USDT.binance.daily.csv", newline="", encoding="utf-8") as handle:
        closes = {row["timestamp"]: row["close"] for row in list(csv.DictReader(handle))[:-1]}
    with open(directory / "BTC-DVOL.deribit.daily.csv", newline="", encoding="utf-8") as handle:
        vols = {row["date"]: float(row["close"]) for row in csv.DictReader(handle)}
    return [
        Day(datetime.date.fromisoformat(date), Decimal(closes[date]), vols[date])
        for date in sorted(set(closes) & set(vols))
    ]


def expiry_key(date: datetime.date) -> str:
    """Deribit's expiry code: ``27MAR26``."""
    return f"{date.day}{MONTHS[date.month - 1]}{date.year % 100:02d}"


def friday_four_weeks_after(date: datetime.date) -> datetime.date:
    ahead = date + datetime.timedelta(days=28)
    return ahead + datetime.timedelta(days=(4 - ahead.weekday()) % 7)


@dataclass
class Leg:
    name: str
    strike: Decimal
    call: bool
    size: Decimal  # negative: sold
    entry: Decimal  # BTC per contract


@dataclass
class Book:
    """One mode's account: its BTC and the options it has sold."""

    btc: Decimal
    legs: List[Leg] = field(default_factory=list)
    expiry: Optional[datetime.date] = None


def model_premium(day: Day, leg: Leg, expiry: datetime.date, rounding: str) -> Decimal:
    """The leg's Black-76 premium in BTC at the day's close and DVOL (expiry at 08:00 UTC)."""
    close = datetime.datetime.combine(day.date, datetime.time(23, 59, 59))
    settle = datetime.datetime.combine(expiry, datetime.time(8))
    years = max((settle - close).total_seconds(), 0.0) / (365 * 86400)
    usd = black76.price(
        float(day.close), float(leg.strike), years, day.dvol / 100, 1.0, "call" if leg.call else "put"
    )[0]
    return (Decimal(repr(float(usd))) / day.close).quantize(TICK, rounding=rounding)


def market(day: Day, book: Book) -> dict:
    """The day's market: the BTC close as index, a flat smile at DVOL for the options' expiry."""
    vol: Dict[str, dict] = {}
    if book.legs and book.expiry is not None:
        strikes = sorted({float(leg.strike) for leg in book.legs})
        vol = {"BTC": {expiry_key(book.expiry): {"strikes": strikes, "vols": [day.dvol / 100] * len(strikes)}}}
    return {
        "timestamp": f"{day.date.isoformat()}T23:59:59Z",
        "index": {"BTC": str(day.close), "USDC": "1"},
        "vol": vol,
    }


def portfolio(book: Book, mode: str) -> dict:
    return {
        "account": f"strangle-{mode}",
        "mode": mode,
        "collateral": {"BTC": book.btc},
        "positions": [
            {"instrument": leg.name, "size": leg.size, "entry_price": leg.entry} for leg in book.legs
        ],
    }


def sell_strangle(book: Book, day: Day, otm: Decimal, contracts: Decimal) -> None:
    """Sells a call and a put `otm` away from the close, expiring four weeks ahead."""
    expiry = friday_four_weeks_after(day.date)
    book.expiry = expiry
    book.legs = []
    for call in (True, False):
        level = day.close * (1 + otm if call else 1 - otm)
        strike = (level / 1000).quantize(Decimal(1), rounding=ROUND_CEILING if call else ROUND_FLOOR) * 1000
        name = f"BTC-{expiry_key(expiry)}-{strike}-{'C' if call else 'P'}"
        leg = Leg(name, strike, call, -contracts, Decimal(0))
        # The seller receives the premium rounded down to the tick.
        leg.entry = model_premium(day, leg, expiry, ROUND_FLOOR)
        book.btc += contracts * leg.entry
        book.legs.append(leg)


def settle(book: Book, price: Decimal) -> None:
    """Expiry: each leg pays its intrinsic value in BTC at `price` (`max(S - K, 0) / S` for a
    call), paid by the seller."""
    for leg in book.legs:
        intrinsic = max(price - leg.strike, Decimal(0)) if leg.call else max(leg.strike - price, Decimal(0))
        book.btc += leg.size * (intrinsic / price).quantize(Decimal("0.00000001"), rounding=ROUND_CEILING)
    book.legs = []
    book.expiry = None


def buy_back(book: Book, day: Day) -> Decimal:
    """Closes every leg at the close's model premium (rounded up: the buyer pays the tick);
    returns what it cost in BTC."""
    cost = Decimal(0)
    assert book.expiry is not None
    for leg in book.legs:
        cost += -leg.size * model_premium(day, leg, book.expiry, ROUND_CEILING)
    book.btc -= cost
    book.legs = []
    book.expiry = None
    return cost


@dataclass
class Tally:
    calls: List[str] = field(default_factory=list)
    liquidations: List[Tuple[str, Decimal]] = field(default_factory=list)
    largest_im_share: Optional[Tuple[Decimal, str]] = None
    lowest_health: Optional[Tuple[float, str]] = None
    rolls: int = 0
    last: Optional[solvent.MarginReport] = None


def run(days: List[Day], collateral: Decimal, otm: Decimal, contracts: Decimal) -> Dict[str, Tally]:
    venue = solvent.Venue.load("deribit")
    # The options are meant to be valued from the smile: the warning that names each mark so
    # filled in would repeat every day.
    warnings.simplefilter("ignore", solvent.InputWarning)
    tallies: Dict[str, Tally] = {}
    for mode in MODES:
        book = Book(btc=collateral)
        tally = Tally()
        for index, day in enumerate(days):
            if book.expiry is not None and day.date >= book.expiry:
                # Settled at the expiry day's open: the previous day's close.
                settle(book, days[index - 1].close)
            if not book.legs:
                if book.btc <= 0:
                    break
                sell_strangle(book, day, otm, contracts)
                tally.rolls += 1
            report = venue.margin(portfolio(book, mode), market(day, book))
            tally.last = report
            if report.state in CALL_STATES:
                tally.calls.append(day.date.isoformat())
            if report.health is not None and (
                tally.lowest_health is None or report.health < tally.lowest_health[0]
            ):
                tally.lowest_health = (report.health, day.date.isoformat())
            if report.equity > 0:
                share = report.initial_margin / report.equity
                if tally.largest_im_share is None or share > tally.largest_im_share[0]:
                    tally.largest_im_share = (share, day.date.isoformat())
            if report.state in LIQUIDATED:
                tally.liquidations.append((day.date.isoformat(), buy_back(book, day)))
        tallies[mode] = tally
    return tallies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=Path("../shared/data/prices"))
    parser.add_argument("--start", default="2022-01-01")
    parser.add_argument("--end", default="2022-12-31")
    parser.add_argument("--collateral", type=Decimal, default=Decimal("1"), help="BTC")
    parser.add_argument("--otm", type=Decimal, default=Decimal("0.15"), help="strikes this far out")
    parser.add_argument("--contracts", type=Decimal, default=Decimal("1"), help="BTC per leg")
    args = parser.parse_args()
    start, end = datetime.date.fromisoformat(args.start), datetime.date.fromisoformat(args.end)
    days = [d for d in read_days(args.prices) if start <= d.date <= end]
    if not days:
        parser.error(f"no day with both a BTC close and a DVOL close in {args.start}..{args.end}")
    tallies = run(days, args.collateral, args.otm, args.contracts)
    print(
        f"{len(days)} days {days[0].date}..{days[-1].date}, short {args.contracts} BTC strangles "
        f"{args.otm * 100}% out of the money, 4 weeks, on {args.collateral} BTC (Deribit)"
    )
    for mode, tally in tallies.items():
        print(f"\n{mode}")
        print(f"  strangles sold {tally.rolls}")
        first = tally.calls[0] if tally.calls else "none"
        print(f"  margin-call days {len(tally.calls)} (first {first})")
        if tally.largest_im_share:
            share, when = tally.largest_im_share
            print(f"  largest initial margin {share * 100:.1f}% of equity on {when}")
        if tally.lowest_health:
            health, when = tally.lowest_health
            print(f"  lowest health {health:.3f} on {when}")
        print(f"  liquidations (bought back at the close): {len(tally.liquidations)}")
        for when, cost in tally.liquidations[:5]:
            print(f"    {when} cost {cost} BTC")
        if tally.last is not None:
            report = tally.last
            print(
                f"  last day: equity {report.equity} {report.settlement_asset}, "
                f"IM {report.initial_margin}, MM {report.maintenance_margin}, {report.state}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
