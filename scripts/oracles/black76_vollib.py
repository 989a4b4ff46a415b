#!/usr/bin/env python3
"""Black-76 test vectors from vollib (Jaeckel's LetsBeRational), seeded and deterministic.

Writes crates/solvent-pricing/tests/data/black76_vollib.csv: 3,000 cases covering at the money,
deep in- and out-of-the-money wings, expiries from 10 minutes to 30 years, volatilities from 2%
to 400%, calls and puts, with and without discounting.

Conventions converted here so the CSV is in solvent-pricing's units:
- vollib takes a continuously compounded rate r; its price is the undiscounted Black value times
  numpy.exp(-r t). The CSV's discount_factor is that same float, numpy.exp(-r t).
- vollib's vega is per 1% of volatility (it multiplies by 0.01): the CSV has vega * 100, per 1.00.
- vollib's theta is per calendar day (it divides by 365) and is -dV/dT including the r V term:
  the CSV has theta * 365, per year, which is solvent-pricing's definition with r = -ln(DF)/T.
- delta and gamma are with respect to the forward, discounted, as in solvent-pricing.
- implied_volatility is vollib.black.implied_volatility.implied_volatility of vollib's own
  (discounted) price: the volatility recovered by LetsBeRational.

Usage:
    black76_vollib.py            # write the CSV
    black76_vollib.py --check    # regenerate in memory, exit 1 if the committed file differs
"""

import io
import math
import pathlib
import random
import sys

import numpy
from vollib.black import black
from vollib.black.greeks import analytical
from vollib.black.implied_volatility import implied_volatility

import vectors  # scripts/oracles/vectors.py: the shared command line

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/solvent-pricing/tests/data/black76_vollib.csv"
HEADER = (
    "option_type,forward,strike,time_to_expiry_years,volatility,discount_factor,"
    "price,delta,gamma,vega,theta,implied_volatility"
)
SEED = 76
CASES = 3000


def draw(rng, i):
    """One case. Region cycles through at-the-money, near, wings and extreme wings."""
    forward = math.exp(rng.uniform(math.log(1e-2), math.log(1e5)))
    region = i % 6
    if region == 0:
        moneyness = 1.0
    elif region == 1:
        moneyness = math.exp(rng.uniform(-0.05, 0.05))
    elif region == 2:
        moneyness = math.exp(rng.uniform(-0.7, 0.7))
    elif region == 3:
        moneyness = math.exp(rng.uniform(-2.5, 2.5))
    elif region == 4:
        moneyness = math.exp(rng.choice([-1, 1]) * rng.uniform(0.7, 3.0))
    else:
        moneyness = math.exp(rng.uniform(-0.3, 0.3))
    expiry_kind = rng.random()
    if expiry_kind < 0.25:
        t = rng.uniform(10.0 / 525600.0, 1.0 / 365.0)  # 10 minutes .. 1 day
    elif expiry_kind < 0.5:
        t = rng.uniform(1.0 / 365.0, 30.0 / 365.0)
    elif expiry_kind < 0.9:
        t = rng.uniform(30.0 / 365.0, 2.0)
    else:
        t = rng.uniform(2.0, 30.0)
    sigma = math.exp(rng.uniform(math.log(0.02), math.log(4.0)))
    rate = 0.0 if rng.random() < 0.3 else rng.uniform(-0.01, 0.12)
    flag = "c" if rng.random() < 0.5 else "p"
    strike = forward * moneyness
    return flag, forward, strike, t, sigma, rate


def fmt(x):
    return repr(float(x))


def render():
    rng = random.Random(SEED)
    buf = io.StringIO()
    buf.write(HEADER + "\n")
    for i in range(CASES):
        flag, f, k, t, sigma, r = draw(rng, i)
        df = float(numpy.exp(-r * t))
        price = float(black(flag, f, k, t, r, sigma))
        delta = float(analytical.delta(flag, f, k, t, r, sigma))
        gamma = float(analytical.gamma(flag, f, k, t, r, sigma))
        vega = float(analytical.vega(flag, f, k, t, r, sigma)) * 100.0  # per 1% -> per 1.00
        theta = float(analytical.theta(flag, f, k, t, r, sigma)) * 365.0  # per day -> per year
        try:
            iv = float(implied_volatility(price, f, k, r, t, flag))
        except Exception:  # noqa: BLE001 - vollib raises for prices at the bounds
            iv = float("nan")
        kind = "call" if flag == "c" else "put"
        buf.write(",".join([kind] + [fmt(v) for v in (f, k, t, sigma, df, price, delta, gamma, vega, theta, iv)]) + "\n")
    return buf.getvalue()


if __name__ == "__main__":
    sys.exit(vectors.main(__doc__.splitlines()[0], OUT, render, CASES, "vollib"))
