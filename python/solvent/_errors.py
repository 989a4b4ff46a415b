"""Solvent's exceptions. Every one names where the problem is.

``SolventError`` is the base of all of them; each carries:

- ``origin``: where the input came from (a file path, ``"portfolio"``, ``"market"``,
  ``"events[3]"``, ``"trades[0]"``), or ``None``;
- ``field``: the field inside it, as a path (``"positions[0].size"``, ``"index.BTC"``,
  ``"strike"``), or ``None``;
- ``problem``: what is wrong, in words;
- ``index``: for Black-76 arrays, the position of the offending element, or ``None``.

``str(error)`` is ``"origin: field: problem"``.
"""

from __future__ import annotations

from typing import Optional


class SolventError(Exception):
    """Base class of every error Solvent raises."""

    origin: Optional[str]
    field: Optional[str]
    problem: str
    index: Optional[int]

    def __init__(
        self,
        message: str,
        *,
        field: Optional[str] = None,
        problem: Optional[str] = None,
        origin: Optional[str] = None,
        index: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem if problem is not None else message
        self.origin = origin
        self.index = index


class InputError(SolventError, ValueError):
    """A portfolio, market, venue, event, trade or argument that Solvent refuses."""


class MoneyAsFloatError(InputError, TypeError):
    """Money given as a binary ``float``: pass a ``str``, ``int`` or ``decimal.Decimal``."""


class VenueNotFoundError(InputError, LookupError):
    """``Venue.load`` got a name that is neither a file nor a shipped venue."""


class RiskError(SolventError):
    """Valid input whose margin cannot be computed (an index or mark the market lacks)."""


class PricingError(SolventError, ValueError):
    """Black-76 input outside the model's domain, or a price no volatility reaches."""


class InputWarning(UserWarning):
    """A default Solvent filled in (a missing mark: the index stands in, or the option is priced
    from the volatility surface; a leverage the margin rule ignores) or a far mark it valued
    under ``allow_far_marks=True``: the figures stand, but may not be what was meant."""


__all__ = [
    "SolventError",
    "InputWarning",
    "InputError",
    "MoneyAsFloatError",
    "VenueNotFoundError",
    "RiskError",
    "PricingError",
]
