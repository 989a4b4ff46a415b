"""Solvent: a venue's own margin figures from Python.

>>> import solvent
>>> venue = solvent.Venue.load("bybit-linear")          # a shipped venue, or a VENUE.toml path
>>> report = venue.margin("examples/isolated-btcusdt.json")  # or a dict in PORTFOLIO.json's shape
>>> report.maintenance_margin                           # decimal.Decimal, as `solvent margin`

- :class:`Venue`: ``load``, ``margin``, ``margin_many``, ``liquidation_price``, ``whatif``,
  ``allocate``, ``stress``; ``venue.portfolio(...)`` reads an account once for many calls.
- :class:`MarginReport`: figures as ``decimal.Decimal``, ``components`` with their details,
  ``positions``; ``to_dict()`` and ``to_json()`` as ``solvent margin --json``.
- :mod:`solvent.black76`: price, greeks and implied volatility over numpy arrays.
- :class:`Engine`: the event-driven engine, for backtests.
- Errors: :class:`SolventError` and its subclasses name the field. Money never passes as a
  float: a ``float`` where money is expected raises :class:`MoneyAsFloatError`.
"""

from solvent._errors import (
    InputError,
    InputWarning,
    MoneyAsFloatError,
    PricingError,
    RiskError,
    SolventError,
    VenueNotFoundError,
)
from solvent._solvent import (
    Component,
    Engine,
    MarginReport,
    Market,
    Portfolio,
    PositionReport,
    Venue,
    WhatIf,
    __version__,
)
from solvent import black76

__all__ = [
    "Component",
    "Engine",
    "InputError",
    "InputWarning",
    "MarginReport",
    "Market",
    "MoneyAsFloatError",
    "Portfolio",
    "PositionReport",
    "PricingError",
    "RiskError",
    "SolventError",
    "Venue",
    "VenueNotFoundError",
    "WhatIf",
    "__version__",
    "black76",
]
