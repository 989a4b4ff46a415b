"""Type stubs of the native module ``solvent._solvent`` (crates/solvent-py)."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

# A dict in the JSON shape of the file (PORTFOLIO.json, MARKET.json), or a path to the file.
PortfolioLike = Union["Portfolio", Mapping[str, Any], str, "os.PathLike[str]"]
MarketLike = Union["Market", Mapping[str, Any], str, "os.PathLike[str]"]
# "INSTRUMENT:SIZE[@PRICE][,fee=FEE]" or {"instrument", "size", "price", "fee"} (money as
# str, int or Decimal).
TradeLike = Union[str, Mapping[str, Any]]
Money = Union[str, int, Decimal]

class Venue:
    """A venue's parameters: assets and haircuts, instruments and their margin rules."""

    @classmethod
    def load(cls, name_or_path: Union[str, "os.PathLike[str]"]) -> Venue:
        """A venue file at that path, else the shipped venue of that name."""
    @classmethod
    def from_toml(cls, text: str, origin: str = "<string>") -> Venue:
        """A venue from the text of a venue file."""
    @staticmethod
    def shipped() -> List[str]:
        """The names ``load`` takes without a path."""
    @property
    def name(self) -> str: ...
    @property
    def origin(self) -> str: ...
    def instruments(self) -> List[str]:
        """The names of the instruments the venue lists."""
    def portfolio(self, portfolio: PortfolioLike) -> Portfolio:
        """The portfolio validated against this venue, to reuse across calls."""
    def margin(
        self,
        portfolio: PortfolioLike,
        market: Optional[MarketLike] = None,
        detail: Literal["full", "figures"] = "full",
        *,
        allow_far_marks: bool = False,
    ) -> MarginReport:
        """The margin report (``market`` ``None``: the portfolio's own market). ``"figures"``
        leaves out the components and the liquidation prices. Inputs are checked as the
        command line checks its files: a value that cannot be meant (an inverse option's
        premium of a coin or more, a mark beyond 20% of its index) raises ``InputError``
        (``allow_far_marks=True`` values a far mark); a default filled in (a missing mark) is
        named as an ``InputWarning``."""
    def margin_many(
        self,
        portfolios: Iterable[PortfolioLike],
        market: Optional[MarketLike] = None,
        detail: Literal["full", "figures"] = "full",
        *,
        allow_far_marks: bool = False,
    ) -> List[MarginReport]:
        """The reports of many accounts at one market, in parallel."""
    def liquidation_price(
        self,
        portfolio: PortfolioLike,
        instrument: str,
        market: Optional[MarketLike] = None,
        *,
        allow_far_marks: bool = False,
    ) -> Optional[Decimal]:
        """The price of ``instrument`` at which its pool reaches health 1, all else fixed."""
    def whatif(
        self,
        portfolio: PortfolioLike,
        trades: Union[TradeLike, Sequence[TradeLike]],
        market: Optional[MarketLike] = None,
        *,
        allow_far_marks: bool = False,
    ) -> WhatIf:
        """Before, after, and whether the venue would accept the trades."""
    def allocate(
        self,
        portfolio: PortfolioLike,
        market: Optional[MarketLike] = None,
        buffer: str = "none",
        trigger: float = 1.2,
        target: float = 1.5,
        *,
        allow_far_marks: bool = False,
    ) -> Dict[str, Any]:
        """As ``solvent allocate --json`` (money as Decimal)."""
    def stress(
        self,
        portfolio: PortfolioLike,
        market: Optional[MarketLike] = None,
        scenarios: Union[str, "os.PathLike[str]", Mapping[str, Any], Sequence[Mapping[str, Any]], None] = None,
        reverse: bool = False,
        *,
        allow_far_marks: bool = False,
    ) -> Dict[str, Any]:
        """As ``solvent stress --json`` (money as Decimal); scenarios default to ``"grid"``."""

class Portfolio:
    """An account validated against a venue (``venue.portfolio(...)``)."""

    @property
    def account(self) -> str: ...
    def instruments(self) -> List[str]: ...

class Market:
    """A market snapshot (MARKET.json's shape)."""

    def __init__(self, market: Union[Mapping[str, Any], str, "os.PathLike[str]"]) -> None: ...
    @property
    def timestamp(self) -> str: ...

class Component:
    """One line of the margin waterfall."""

    @property
    def name(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def detail(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

class PositionReport:
    """One position of a margin report."""

    @property
    def instrument(self) -> str: ...
    @property
    def size(self) -> Decimal: ...
    @property
    def mark_price(self) -> Decimal: ...
    @property
    def mark_source(self) -> str: ...
    @property
    def settlement(self) -> str: ...
    @property
    def value(self) -> Decimal: ...
    @property
    def upnl(self) -> Decimal: ...
    @property
    def initial_margin(self) -> Decimal: ...
    @property
    def maintenance_margin(self) -> Decimal: ...
    @property
    def im_share(self) -> float: ...
    @property
    def liquidation_price(self) -> Optional[Decimal]: ...
    @property
    def liquidation_price_of(self) -> str: ...
    @property
    def distance_to_liquidation_pct(self) -> Optional[float]: ...
    @property
    def distance_to_liquidation_sd(self) -> Optional[float]: ...
    @property
    def isolated(self) -> bool: ...
    @property
    def isolated_equity(self) -> Optional[Decimal]: ...
    @property
    def isolated_health(self) -> Optional[float]: ...
    @property
    def margin_basis(self) -> Dict[str, Any]: ...
    def to_dict(self) -> Dict[str, Any]: ...

class MarginReport:
    """The margin report of one account; amounts in ``settlement_asset``."""

    @property
    def account(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def settlement_asset(self) -> str: ...
    @property
    def timestamp(self) -> str: ...
    @property
    def equity(self) -> Decimal: ...
    @property
    def collateral_value(self) -> Decimal: ...
    @property
    def unrealized_pnl(self) -> Decimal: ...
    @property
    def option_value(self) -> Decimal: ...
    @property
    def initial_margin(self) -> Decimal: ...
    @property
    def maintenance_margin(self) -> Decimal: ...
    @property
    def available(self) -> Decimal: ...
    @property
    def withdrawable(self) -> Decimal: ...
    @property
    def withdrawable_limit(self) -> str: ...
    @property
    def health(self) -> Optional[float]: ...
    @property
    def state(self) -> str: ...
    @property
    def components(self) -> List[Component]: ...
    @property
    def positions(self) -> List[PositionReport]: ...
    @property
    def warnings(self) -> List[str]: ...
    def position(self, instrument: str) -> Optional[PositionReport]: ...
    def to_dict(self) -> Dict[str, Any]:
        """As ``solvent margin --json`` prints it, money as Decimal."""
    def to_json(self) -> str:
        """The text ``solvent margin --json`` prints."""

class WhatIf:
    """Before, after, and the venue's verdict; true when accepted."""

    @property
    def before(self) -> MarginReport: ...
    @property
    def after(self) -> MarginReport: ...
    @property
    def accepted(self) -> bool: ...
    @property
    def refusal(self) -> Optional[str]: ...
    @property
    def reason(self) -> str: ...
    def __bool__(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...

class Engine:
    """The deterministic engine: apply events, get effects."""

    def __init__(self, venue: Venue, config: Optional[Mapping[str, Any]] = None) -> None:
        """``config`` overrides the defaults: ``{"liquidation": {"fee_rate": "0.01"}, "guards": {...}}``."""
    def config(self) -> Dict[str, Any]: ...
    def apply(self, event: Union[Mapping[str, Any], str]) -> List[Dict[str, Any]]: ...
    def apply_many(
        self,
        events: Union[Iterable[Union[Mapping[str, Any], str]], str, "os.PathLike[str]"],
        columns: bool = False,
    ) -> Union[List[Dict[str, Any]], Dict[str, List[Any]]]: ...
    def margin(self, account: str) -> MarginReport: ...
    def balances(self) -> Dict[str, Dict[str, Decimal]]: ...
    def state_hash(self) -> str: ...
    def accounts(self) -> List[str]: ...
    @property
    def events(self) -> int: ...
    @property
    def last_seq(self) -> Optional[int]: ...
    @property
    def now(self) -> str: ...

def black76_greeks(
    forward: Any,
    strike: Any,
    time_to_expiry_years: Any,
    volatility: Any,
    discount_factor: Any = None,
    option_type: Any = None,
) -> Tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]
]: ...
def black76_implied_vol(
    price: Any,
    forward: Any,
    strike: Any,
    time_to_expiry_years: Any,
    discount_factor: Any = None,
    option_type: Any = None,
    on_error: str = "raise",
) -> npt.NDArray[np.float64]: ...
