#!/usr/bin/env python3
"""Volatility-surface test vectors from scipy's linear interpolation, seeded and deterministic.

Writes crates/solvent-pricing/tests/data/surface_scipy.csv for crates/solvent-pricing/tests/
surface_oracle.rs, which builds the same surfaces with solvent_pricing::surface::VolSurface and
compares every query. The model (crates/solvent-pricing/src/surface.rs, module documentation):
- in strike, within one smile: linear between points, flat (the end point's volatility) beyond
  the first and the last strike;
- in time, at a fixed strike: linear in total variance w(T) = sigma(K, T)^2 T between the two
  expiries around T, sigma = sqrt(w(T) / T); flat volatility (the nearest smile's) before the
  first and from the last expiry on.
Here both interpolations are scipy.interpolate.interp1d (kind "linear"; in strike with
fill_value = the end volatilities), independent of the Rust code's search and arithmetic.

Surfaces: the hand-worked surface of tests/surface.rs, a one-expiry surface, a Deribit-like BTC
surface (expiries from one day to a year, strike grids widening with expiry and differing
between expiries, a smile), a surface with one-strike smiles, and seeded random surfaces (1 to 7
expiries, 1 to 15 strikes each, independent grids). Queries per surface: node strikes and
strikes between nodes (at most 24, a seeded sample; a node of one expiry falls between the nodes
of another), below the lowest and above the highest strike, each at time zero, before the first
expiry, at and between every expiry, after the last.

CSV columns: kind,surface,time_to_expiry_years,strike,volatility. A `node` row is an input point
of a surface (rows of one surface in ascending expiry then strike order), a `query` row a point
to evaluate with scipy's volatility. Floats are written with repr (shortest round trip).

Usage:
    surface_scipy.py            # write the CSV
    surface_scipy.py --check    # regenerate in memory, exit 1 if the committed file differs
"""

import io
import math
import pathlib
import random
import sys

import numpy as np
from scipy.interpolate import interp1d

import vectors  # scripts/oracles/vectors.py: the shared command line

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/solvent-pricing/tests/data/surface_scipy.csv"
HEADER = "kind,surface,time_to_expiry_years,strike,volatility"
SEED = 2026
RANDOM_SURFACES = 12
MAX_INNER_STRIKES = 24  # node and mid-node strikes queried per surface, at most (a seeded sample)


def smile_vol(strikes, vols, strike):
    """Linear in strike, flat beyond the ends (scipy interp1d; a one-point smile is flat)."""
    if len(strikes) == 1:
        return float(vols[0])
    f = interp1d(strikes, vols, kind="linear", bounds_error=False, fill_value=(vols[0], vols[-1]), assume_sorted=True)
    return float(f(strike))


def surface_vol(smiles, strike, time):
    """Linear in total variance between expiries; flat volatility outside them."""
    times = [t for t, _, _ in smiles]
    vols = [smile_vol(k, v, strike) for _, k, v in smiles]
    if time < times[0]:
        return vols[0]
    if time >= times[-1]:
        return vols[-1]
    w = interp1d(times, [v * v * t for v, t in zip(vols, times)], kind="linear", assume_sorted=True)
    return math.sqrt(float(w(time)) / time)


def hand_surface():
    return [(0.25, [80.0, 100.0, 120.0], [0.60, 0.50, 0.55]), (1.0, [80.0, 100.0, 120.0], [0.50, 0.40, 0.45])]


def one_expiry_surface():
    return [(30.0 / 365.0, [2500.0, 3000.0, 3200.0, 3500.0, 4000.0], [0.95, 0.72, 0.66, 0.70, 0.81])]


def deribit_like_surface(rng):
    """BTC at 95,000: expiries 1 day to a year, strike grids in round steps, a smile."""
    spot = 95000.0
    smiles = []
    for days, width, step in ((1, 0.1, 1000.0), (7, 0.25, 2000.0), (30, 0.5, 5000.0), (91, 0.8, 5000.0),
                              (182, 1.0, 10000.0), (365, 1.2, 10000.0)):
        t = days / 365.0
        low = max(0.3 * spot, spot * math.exp(-width))
        high = min(3.0 * spot, spot * math.exp(width))
        strikes = list(np.arange(math.ceil(low / step) * step, high + 1e-9, step))
        atm = 0.45 + 0.15 * rng.random()
        vols = []
        for k in strikes:
            x = math.log(k / spot) / math.sqrt(t)
            vols.append(round(atm * (1.0 + 0.02 * x * x - 0.03 * x), 6))
        smiles.append((t, [float(k) for k in strikes], vols))
    return smiles


def one_strike_surface():
    return [(0.1, [100.0], [0.8]), (0.5, [90.0, 110.0], [0.7, 0.6]), (2.0, [105.0], [0.5])]


def random_surface(rng):
    smiles = []
    t = 0.0
    for _ in range(rng.randint(1, 7)):
        t += rng.choice([1.0 / 365.0, 7.0 / 365.0, rng.uniform(0.01, 0.5)])
        n = rng.randint(1, 15)
        strikes = sorted({round(math.exp(rng.uniform(math.log(20.0), math.log(500.0))), 2) for _ in range(n)})
        vols = [rng.uniform(0.05, 2.5) for _ in strikes]
        smiles.append((t, strikes, vols))
    return smiles


def queries(rng, smiles):
    """(time, strike) points: nodes, between and beyond strikes and expiries."""
    times = [t for t, _, _ in smiles]
    all_strikes = sorted({k for _, ks, _ in smiles for k in ks})
    low, high = all_strikes[0], all_strikes[-1]
    strike_points = list(all_strikes)
    strike_points += [0.5 * (a + b) for a, b in zip(all_strikes, all_strikes[1:])]
    if len(strike_points) > MAX_INNER_STRIKES:
        strike_points = sorted(rng.sample(strike_points, MAX_INNER_STRIKES))
    strike_points += [low * 0.5, low * (1.0 - 1e-9), high * (1.0 + 1e-9), high * 2.0]
    strike_points += [rng.uniform(0.3 * low, 1.5 * high) for _ in range(6)]
    time_points = [0.0, times[0] * 0.5, times[-1] * 1.5, times[-1] + 10.0]
    time_points += times
    time_points += [0.5 * (a + b) for a, b in zip(times, times[1:])]
    time_points += [a + 0.1 * (b - a) for a, b in zip(times, times[1:])]
    out = []
    for t in time_points:
        for k in strike_points:
            out.append((t, k))
    return out


def fmt(x):
    return repr(float(x))


def render():
    rng = random.Random(SEED)
    surfaces = [hand_surface(), one_expiry_surface(), deribit_like_surface(rng), one_strike_surface()]
    surfaces += [random_surface(rng) for _ in range(RANDOM_SURFACES)]
    buf = io.StringIO()
    buf.write(HEADER + "\n")
    for s, smiles in enumerate(surfaces):
        for t, strikes, vols in smiles:
            for k, v in zip(strikes, vols):
                buf.write(f"node,{s},{fmt(t)},{fmt(k)},{fmt(v)}\n")
        for t, k in queries(rng, smiles):
            buf.write(f"query,{s},{fmt(t)},{fmt(k)},{fmt(surface_vol(smiles, k, t))}\n")
    return buf.getvalue()


def count():
    return sum(1 for line in render().splitlines() if line.startswith("query,"))


if __name__ == "__main__":
    sys.exit(vectors.main(__doc__.splitlines()[0], OUT, render, count(), "scipy"))
