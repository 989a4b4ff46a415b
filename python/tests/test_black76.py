"""Black-76 through the package: known values, parity, the inverse, arrays read in place, and
errors that name the argument and the element."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

import solvent
from solvent import black76


def test_at_the_money_call_has_the_closed_form_value() -> None:
    # At the money, V = F (2 N(s/2) - 1) with s = sigma sqrt(T) = 0.55 * 0.5 (the crate's doc).
    g = black76.greeks(60_000.0, 60_000.0, 0.25, 0.55)
    assert g.price[0] == pytest.approx(6_561.864_435_308, abs=1e-8)
    assert g.delta[0] == pytest.approx(0.554_682_203_627_567, abs=1e-14)
    s = 0.55 * 0.5
    assert g.price[0] == pytest.approx(60_000.0 * (2 * ndtr(s / 2) - 1), rel=1e-13)
    # gamma = n(d1) / (F s), vega = F n(d1) sqrt(T), d1 = s / 2.
    density = math.exp(-((s / 2) ** 2) / 2) / math.sqrt(2 * math.pi)
    assert g.gamma[0] == pytest.approx(density / (60_000.0 * s), rel=1e-13)
    assert g.vega[0] == pytest.approx(60_000.0 * density * 0.5, rel=1e-13)


def reference(forward, strike, time, vol, discount, is_call):
    """The textbook formulas in numpy + scipy."""
    s = vol * np.sqrt(time)
    d1 = np.log(forward / strike) / s + s / 2
    d2 = d1 - s
    call = discount * (forward * ndtr(d1) - strike * ndtr(d2))
    put = discount * (strike * ndtr(-d2) - forward * ndtr(-d1))
    return np.where(is_call, call, put)


def chain(n: int = 2_000, seed: int = 7):
    rng = np.random.default_rng(seed)
    forward = rng.uniform(50_000, 150_000, n)
    strike = forward * rng.uniform(0.5, 2.0, n)
    time = rng.uniform(1 / 365, 2.0, n)
    vol = rng.uniform(0.3, 1.5, n)
    discount = np.exp(-0.05 * time)
    is_call = rng.random(n) < 0.5
    return forward, strike, time, vol, discount, is_call


def test_a_chain_agrees_with_the_textbook_formula() -> None:
    forward, strike, time, vol, discount, is_call = chain()
    price = black76.price(forward, strike, time, vol, discount, is_call)
    expected = reference(forward, strike, time, vol, discount, is_call)
    assert price.dtype == np.float64 and price.shape == forward.shape
    # Relative 1e-9, or 1e-9 of the forward for values near zero (the formula above loses
    # digits there by cancellation; Solvent's kernel does not).
    assert np.all(np.abs(price - expected) <= 1e-9 * np.maximum(np.abs(expected), forward))


def test_put_call_parity_and_broadcast_scalars() -> None:
    strikes = np.linspace(20_000.0, 200_000.0, 91)
    call = black76.price(100_000.0, strikes, 0.5, 0.6, 0.99, "call")
    put = black76.price(100_000.0, strikes, 0.5, 0.6, 0.99, "put")
    np.testing.assert_allclose(call - put, 0.99 * (100_000.0 - strikes), rtol=0, atol=1e-7)


def test_implied_vol_inverts_the_price() -> None:
    forward, strike, time, vol, discount, is_call = chain(500)
    price = black76.price(forward, strike, time, vol, discount, is_call)
    solved = black76.implied_vol(price, forward, strike, time, discount, is_call)
    # Deep out-of-the-money prices carry little information about vol; compare where vega is
    # material.
    vega = black76.greeks(forward, strike, time, vol, discount, is_call).vega
    material = vega > 1e-3 * forward
    np.testing.assert_allclose(solved[material], vol[material], rtol=1e-10)


def test_a_strided_view_gives_the_same_values_as_a_contiguous_copy() -> None:
    forward, strike, time, vol, discount, is_call = chain(1_000)
    interleaved = np.stack([forward, strike], axis=1)  # forward, strike, forward, strike, ...
    strided = interleaved[:, 0]
    assert not strided.flags["C_CONTIGUOUS"]
    a = black76.greeks(strided, strike, time, vol, discount, is_call)
    b = black76.greeks(np.ascontiguousarray(strided), strike, time, vol, discount, is_call)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)


def test_the_input_arrays_are_not_written() -> None:
    forward, strike, time, vol, discount, is_call = chain(100)
    for array in (forward, strike, time, vol, discount):
        array.setflags(write=False)
    black76.greeks(forward, strike, time, vol, discount, is_call)


def test_errors_name_the_argument_and_the_element() -> None:
    strikes = np.array([50_000.0, -1.0, 70_000.0])
    with pytest.raises(solvent.PricingError) as raised:
        black76.price(60_000.0, strikes, 0.25, 0.55)
    assert raised.value.field == "strike"
    assert raised.value.index == 1
    assert "strike must be greater than zero, got -1" in str(raised.value)
    with pytest.raises(solvent.PricingError) as raised:
        black76.price(np.ones(3) * 60_000.0, np.ones(4) * 60_000.0, 0.25, 0.55)
    assert raised.value.field == "strike"
    with pytest.raises(solvent.PricingError) as raised:
        black76.price(60_000.0, 60_000.0, 0.25, float("nan"))
    assert raised.value.field == "volatility"
    with pytest.raises(solvent.PricingError) as raised:
        black76.price(60_000.0, 60_000.0, 0.25, 0.5, option_type="straddle")
    assert raised.value.field == "option_type"


def test_implied_vol_of_an_unreachable_price_raises_or_gives_nan_on_request() -> None:
    # A call on 60,000 struck at 50,000 is worth at least 10,000.
    prices = np.array([9_000.0, 12_000.0])
    with pytest.raises(solvent.PricingError) as raised:
        black76.implied_vol(prices, 60_000.0, 50_000.0, 0.25)
    assert raised.value.index == 0 and raised.value.field == "price"
    solved = black76.implied_vol(prices, 60_000.0, 50_000.0, 0.25, on_error="nan")
    assert math.isnan(solved[0]) and 0.0 < solved[1] < 5.0


def test_batches_larger_than_a_chunk_broadcast_and_name_the_element() -> None:
    # The binding values 16,384 options per kernel call: a batch of 40,000 spans three calls.
    forward, strike, time, vol, discount, is_call = chain(40_000, seed=11)
    whole = black76.greeks(forward, strike, time, vol, discount, is_call)
    expected = reference(forward, strike, time, vol, discount, is_call)
    assert np.all(np.abs(whole.price - expected) <= 1e-9 * np.maximum(np.abs(expected), forward))
    # A number broadcasts as the same number repeated, chunk after chunk.
    broadcast = black76.greeks(forward, strike, time, 0.6, 1.0, "put")
    repeated = black76.greeks(forward, strike, time, np.full(40_000, 0.6), np.ones(40_000), np.zeros(40_000, bool))
    for a, b in zip(broadcast, repeated):
        np.testing.assert_array_equal(a, b)
    bad = vol.copy()
    bad[35_000] = -0.1
    with pytest.raises(solvent.PricingError) as raised:
        black76.greeks(forward, strike, time, bad, discount, is_call)
    assert raised.value.index == 35_000 and raised.value.field == "volatility"
