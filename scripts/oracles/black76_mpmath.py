#!/usr/bin/env python3
"""Black-76 reference values at 30 significant digits, computed with mpmath (50-digit arithmetic).

Writes crates/solvent-pricing/tests/data/black76_mpmath.csv: about 50 hand-picked cases,
including far wings where the price is many orders of magnitude below the forward.

Each input is a binary64 number written with repr() (shortest round-trip form); the reference is
computed from exactly that binary value, so the Rust test compares like with like.

Formulas (Black 1976; Hull, Options, Futures, and Other Derivatives, 10th ed., 18.8 and 19):
    s = sigma sqrt(T), d1 = ln(F/K)/s + s/2, d2 = d1 - s, theta_sign = +1 call / -1 put
    price = DF * theta_sign * (F N(theta_sign d1) - K N(theta_sign d2))
    delta = theta_sign * DF * N(theta_sign d1)
    gamma = DF n(d1) / (F s)
    vega  = DF F n(d1) sqrt(T)                      (per 1.00 of volatility)
    theta = -dV/dT = -DF F n(d1) sigma / (2 sqrt T) + r V,  r = -ln(DF)/T   (per year)

Usage:
    black76_mpmath.py            # write the CSV
    black76_mpmath.py --check    # regenerate in memory, exit 1 if the committed file differs
"""

import io
import pathlib
import sys

import mpmath as mp

import vectors  # scripts/oracles/vectors.py: the shared command line

mp.mp.dps = 50
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/solvent-pricing/tests/data/black76_mpmath.csv"
HEADER = "option_type,forward,strike,time_to_expiry_years,volatility,discount_factor,price,delta,gamma,vega,theta"

# (option_type, F, K, T, sigma, DF)
CASES = [
    # at the money, a range of total volatilities
    ("call", 100.0, 100.0, 1.0, 0.2, 1.0),
    ("put", 100.0, 100.0, 1.0, 0.2, 1.0),
    ("call", 60000.0, 60000.0, 0.25, 0.55, 0.99),
    ("put", 60000.0, 60000.0, 0.25, 0.55, 0.99),
    ("call", 3000.0, 3000.0, 1.0 / 365.0, 0.8, 1.0),
    ("call", 3000.0, 3000.0, 1.0 / 8760.0, 0.3, 1.0),
    ("put", 1.0, 1.0, 1e-6, 0.5, 1.0),
    ("call", 100.0, 100.0, 30.0, 2.0, 0.5),
    ("put", 100.0, 100.0, 30.0, 2.0, 0.5),
    # near the money, short dated (small total volatility: the cancellation region)
    ("call", 100.0, 100.5, 2.0 / 365.0, 0.25, 1.0),
    ("put", 100.0, 99.5, 2.0 / 365.0, 0.25, 1.0),
    ("call", 60000.0, 61000.0, 1.0 / 365.0, 0.45, 1.0),
    ("put", 60000.0, 59000.0, 1.0 / 365.0, 0.45, 1.0),
    ("call", 60000.0, 60600.0, 1.0 / 8760.0, 0.6, 1.0),
    ("put", 60000.0, 59400.0, 1.0 / 8760.0, 0.6, 1.0),
    ("call", 1.0, 1.0001, 1e-5, 0.3, 1.0),
    # deep out of the money: far wings, prices down to ~1e-100 of the forward
    ("call", 100.0, 200.0, 0.1, 0.3, 1.0),
    ("put", 100.0, 50.0, 0.1, 0.3, 1.0),
    ("call", 100.0, 300.0, 0.25, 0.2, 0.98),
    ("put", 100.0, 30.0, 0.25, 0.2, 0.98),
    ("call", 100.0, 120.0, 1.0 / 365.0, 0.5, 1.0),
    ("put", 100.0, 85.0, 1.0 / 365.0, 0.5, 1.0),
    ("call", 60000.0, 90000.0, 7.0 / 365.0, 0.6, 1.0),
    ("put", 60000.0, 40000.0, 7.0 / 365.0, 0.6, 1.0),
    ("call", 100.0, 110.0, 1.0 / 365.0, 0.2, 1.0),
    ("put", 100.0, 90.0, 1.0 / 365.0, 0.2, 1.0),
    ("call", 100.0, 1000.0, 1.0, 0.5, 1.0),
    ("put", 100.0, 10.0, 1.0, 0.5, 1.0),
    ("call", 100.0, 101.0, 1e-5, 0.3, 1.0),
    ("put", 100.0, 99.0, 1e-5, 0.3, 1.0),
    # deep in the money (intrinsic plus a tiny time value)
    ("call", 200.0, 100.0, 0.1, 0.3, 1.0),
    ("put", 50.0, 100.0, 0.1, 0.3, 1.0),
    ("call", 100.0, 80.0, 1.0 / 365.0, 0.5, 0.999),
    ("put", 100.0, 125.0, 1.0 / 365.0, 0.5, 0.999),
    # long expiries, high volatility
    ("call", 100.0, 150.0, 10.0, 1.5, 0.7),
    ("put", 100.0, 150.0, 10.0, 1.5, 0.7),
    ("call", 100.0, 40.0, 5.0, 3.0, 0.8),
    ("put", 100.0, 40.0, 5.0, 3.0, 0.8),
    ("call", 100.0, 100.0, 100.0, 5.0, 1.0),
    # the Taylor / direct boundary (s / 2 = 0.1, i.e. s = 0.2)
    ("call", 100.0, 130.0, 1.0, 0.1999999, 1.0),
    ("call", 100.0, 130.0, 1.0, 0.2000001, 1.0),
    ("put", 100.0, 70.0, 0.04, 0.9999999, 1.0),
    ("put", 100.0, 70.0, 0.04, 1.0000001, 1.0),
    # discount factors above and well below one
    ("call", 100.0, 95.0, 0.5, 0.4, 1.01),
    ("put", 100.0, 105.0, 0.5, 0.4, 1.01),
    ("call", 100.0, 95.0, 2.0, 0.4, 0.6),
    ("put", 100.0, 105.0, 2.0, 0.4, 0.6),
    # small and large price levels
    ("call", 1e-6, 1.2e-6, 0.5, 0.9, 1.0),
    ("put", 1e7, 0.9e7, 0.5, 0.9, 1.0),
    ("call", 0.00002, 0.00003, 0.05, 1.2, 1.0),
]


def normal_cdf(x):
    return mp.ncdf(x)


def normal_pdf(x):
    return mp.npdf(x)


def reference(kind, f, k, t, sigma, df):
    F, K, T, S, DF = (mp.mpf(v) for v in (f, k, t, sigma, df))
    th = 1 if kind == "call" else -1
    s = S * mp.sqrt(T)
    d1 = mp.log(F / K) / s + s / 2
    d2 = d1 - s
    price = DF * th * (F * normal_cdf(th * d1) - K * normal_cdf(th * d2))
    delta = th * DF * normal_cdf(th * d1)
    gamma = DF * normal_pdf(d1) / (F * s)
    vega = DF * F * normal_pdf(d1) * mp.sqrt(T)
    rate = -mp.log(DF) / T
    theta = -DF * F * normal_pdf(d1) * S / (2 * mp.sqrt(T)) + rate * price
    return price, delta, gamma, vega, theta


def render():
    buf = io.StringIO()
    buf.write(HEADER + "\n")
    for kind, f, k, t, sigma, df in CASES:
        values = reference(kind, f, k, t, sigma, df)
        inputs = [repr(float(v)) for v in (f, k, t, sigma, df)]
        outputs = [mp.nstr(v, 30, min_fixed=1, max_fixed=0) for v in values]
        buf.write(",".join([kind] + inputs + outputs) + "\n")
    return buf.getvalue()


if __name__ == "__main__":
    sys.exit(vectors.main(__doc__.splitlines()[0], OUT, render, len(CASES), "mpmath"))
