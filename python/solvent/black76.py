"""Black-76 on forwards, vectorised over numpy arrays.

Every argument is a ``float`` (broadcast) or a 1-D array; contiguous ``float64`` arrays are read
in place without a copy, other array-likes are converted once with
``numpy.asarray(x, dtype=numpy.float64)``. The batch is valued by Solvent's SIMD kernel (the one
the margin models use) with the GIL released. Definitions:

- ``price``: present value ``DF * (F N(d1) - K N(d2))`` for a call, in units of the forward;
- ``delta``: ``dV/dF`` (discounted); ``gamma``: ``d2V/dF2``; ``vega``: ``dV/dsigma`` per 1.00
  of volatility.

Invalid inputs (non-finite, non-positive forward or strike, negative time or volatility, a
discount factor outside (0, 1e6]) raise :class:`solvent.PricingError` naming the argument and
the element's index; no result is ever NaN.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Union

import numpy as np
import numpy.typing as npt

from solvent import _solvent

ArrayLike = Union[float, "npt.ArrayLike"]
OptionTypes = Union[str, "npt.NDArray[np.bool_]", Sequence[str]]


class Greeks(NamedTuple):
    """Price and first/second-order greeks, one ``float64`` array each."""

    price: "npt.NDArray[np.float64]"
    delta: "npt.NDArray[np.float64]"
    gamma: "npt.NDArray[np.float64]"
    vega: "npt.NDArray[np.float64]"


def greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry_years: ArrayLike,
    volatility: ArrayLike,
    discount_factor: ArrayLike = 1.0,
    option_type: OptionTypes = "call",
) -> Greeks:
    """Price, delta, gamma and vega of every option.

    ``option_type`` is ``"call"`` or ``"put"`` for all options, or per option a bool array
    (``True`` = call) or a sequence of ``"call"``/``"put"``.

    >>> g = greeks(60_000.0, 60_000.0, 0.25, 0.55)
    >>> round(float(g.price[0]), 6)
    6561.864435
    """
    price, delta, gamma, vega = _solvent.black76_greeks(
        forward, strike, time_to_expiry_years, volatility, discount_factor, option_type
    )
    return Greeks(price, delta, gamma, vega)


def price(
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry_years: ArrayLike,
    volatility: ArrayLike,
    discount_factor: ArrayLike = 1.0,
    option_type: OptionTypes = "call",
) -> "npt.NDArray[np.float64]":
    """Present value of every option (see :func:`greeks`)."""
    return greeks(
        forward, strike, time_to_expiry_years, volatility, discount_factor, option_type
    ).price


def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry_years: ArrayLike,
    discount_factor: ArrayLike = 1.0,
    option_type: OptionTypes = "call",
    on_error: str = "raise",
) -> "npt.NDArray[np.float64]":
    """The volatility at which Black-76 gives ``price``, for every option.

    Jaeckel's "Let's Be Rational" (full double precision). A price no volatility reaches (below
    the discounted intrinsic value, at or above the upper bound) raises
    :class:`solvent.PricingError` naming the element, or gives NaN for it with
    ``on_error="nan"``; invalid inputs always raise.
    """
    return _solvent.black76_implied_vol(
        price,
        forward,
        strike,
        time_to_expiry_years,
        discount_factor,
        option_type,
        on_error,
    )


__all__ = ["Greeks", "greeks", "price", "implied_vol"]
