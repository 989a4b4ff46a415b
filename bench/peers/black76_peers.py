#!/usr/bin/env python3
"""Black-76 peers for bench/black76.sh: options per second for price + delta + gamma + vega.

Peers, each on the same deterministic inputs as crates/solvent-pricing/examples/black76_throughput.rs
(same generators, same seeds, same order; crates/solvent-pricing/benches/inputs/mod.rs):
  numpy      vectorised numpy with scipy.special.ndtr for N(x), over all N options; no input
             validation (the Rust figure it is compared with, price_and_greeks_checked,
             validates every input as it values). Several forms, the fastest counts: the textbook
             expressions, and the same in place over blocks of 4096, 16384 or 65536 options
             (temporaries reused, kept near the caches; about twice the textbook's rate)
  quantlib   QuantLib's blackFormula and BlackCalculator (deltaForward, gammaForward, vega) per
             option, on fewer options
  vollib     vollib.black and vollib.black.greeks.analytical per option, on fewer options

Workloads (numpy runs all three; QuantLib and vollib the mix):
  mix         independent uniform draws: moneyness 0.5..2, 1 day..2 years, volatility 10%..150%
  chain       a Deribit-like crypto option chain (expiry ladder 1 day..1 year, round strike grids
              0.3x..3x the forward, a volatility smile within 30%..150%); see chain()
  chain_flat  the same chain with the at-the-money volatility at every strike

Per-option peers run on a prefix of the inputs and report options/s (no scaling is needed for a
rate). Each figure is the best of several repetitions. Run pinned to one core with
OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1 (bench/black76.sh does this).

Prints one line per peer and workload: `name options_per_second` (numpy: `numpy`, `numpy_chain`,
`numpy_chain_flat`), and the fraction of each workload the Rust batch sends to its careful kernel
(`careful_mix` ...), computed here from the routing rule, as a cross-check of the Rust figure.
"""

import argparse
import math
import sys
import time

import numpy as np
from scipy.special import ndtr

MASK64 = (1 << 64) - 1


class Lcg:
    """A 64-bit LCG (Knuth's MMIX constants), top 53 bits as a uniform in [0, 1)."""

    def __init__(self, seed):
        self.state = seed

    def unit(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK64
        return (self.state >> 11) * (1.0 / (1 << 53))


def inputs(n):
    """The mix: forward 100, moneyness 0.5..2, 1 day..2 years, volatility 10%..150%, rate 0..5%."""
    rng = Lcg(20260101)
    out = np.empty((6, n))
    for i in range(n):
        u = [rng.unit() for _ in range(5)]
        forward = 100.0
        strike = forward * (0.5 + 1.5 * u[0])
        t = 1.0 / 365.0 + 2.0 * u[1]
        vol = 0.1 + 1.4 * u[2]
        rate = 0.05 * u[3]
        is_call = 1.0 if u[4] < 0.5 else -1.0
        out[:, i] = (forward, strike, t, vol, np.exp(-rate * t), is_call)
    return out


# (days to expiry, days before expiry its strikes were listed): three dailies, three weeklies,
# two monthlies, four quarterlies (Deribit-like).
LADDER = ((1, 4), (2, 4), (3, 4), (7, 28), (14, 28), (21, 28), (28, 91), (63, 91),
          (91, 364), (182, 364), (273, 364), (364, 364))


def round_step(raw):
    """The smallest round step (1, 2, 2.5 or 5 times a power of ten) at least raw."""
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * magnitude >= raw:
            return m * magnitude
    return 10.0 * magnitude


def chain(n, flat=False):
    """Snapshots of a crypto option chain, a call and a put per strike (see the Rust chain())."""
    rng = Lcg(20260102)
    cols = [[] for _ in range(6)]
    while len(cols[0]) < n:
        spot = 100.0 * math.exp(rng.unit() - 0.5)
        atm_base = 0.35 + 0.5 * rng.unit()
        term = 0.4 * (rng.unit() - 0.5)
        rate = 0.05 * rng.unit()
        for days, listed_days in LADDER:
            t = days / 365.0
            atm = atm_base * (1.0 + term * math.exp(-t * 8.0))
            basis = 0.1 * rng.unit()
            forward = spot * math.exp(basis * t)
            z = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 2.0
            elapsed = (listed_days - days) / 365.0
            at_listing = forward * math.exp(atm * math.sqrt(elapsed) * z)
            width = 3.5 * atm * math.sqrt(listed_days / 365.0)
            low = max(0.3 * forward, min(forward, at_listing) * math.exp(-width))
            high = min(3.0 * forward, max(forward, at_listing) * math.exp(width))
            strikes = 16.0 + 24.0 * rng.unit()
            step = round_step((high - low) / strikes)
            skew = -0.1 + 0.2 * rng.unit()
            strike = math.ceil(low / step) * step
            df = math.exp(-rate * t)
            while strike <= high:
                x = math.log(strike / forward) / (atm * math.sqrt(t))
                vol = atm if flat else atm * (1.0 + 0.03 * x * x + skew * 0.1 * x)
                vol = min(1.5, max(0.3, vol))
                for sign in (1.0, -1.0):
                    for col, value in zip(cols, (forward, strike, t, vol, df, sign)):
                        col.append(value)
                strike += step
    return np.array([col[:n] for col in cols])


def careful_fraction(data):
    """The routing of the Rust batch (src/black76/batch/direct.rs, routing_excess) restated."""
    f, k, t, vol = data[:4]
    s = vol * np.sqrt(t)
    abs_h = np.abs(np.log(f / k)) / s
    half = 0.5 * s
    careful = (t <= 0) | (abs_h + half > 4.0 * math.sqrt(2.0)) | (abs_h + 1.26 > 160.0 * half)
    return float(careful.mean())


def numpy_greeks(f, k, t, vol, df, sign):
    """Price, delta, gamma, vega, vectorised (the textbook formulas, N via ndtr)."""
    sqrt_t = np.sqrt(t)
    s = vol * sqrt_t
    d1 = np.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    nd1 = ndtr(sign * d1)
    nd2 = ndtr(sign * d2)
    pdf = np.exp(-0.5 * d1 * d1) * 0.3989422804014327
    price = df * sign * (f * nd1 - k * nd2)
    delta = df * sign * nd1
    gamma = df * pdf / (f * s)
    vega = df * f * pdf * sqrt_t
    return price, delta, gamma, vega


BLOCKS = (4096, 16384, 65536)


def numpy_greeks_blocked(f, k, t, vol, df, sign, out, tmp):
    """The same formulas in place, a block of options at a time (temporaries stay in cache)."""
    price, delta, gamma, vega = out
    sqrt_t, s, d1, d2, pdf = tmp
    n, block = f.size, sqrt_t.size
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        m = hi - lo
        fb, kb, tb, vb, dfb, sb = f[lo:hi], k[lo:hi], t[lo:hi], vol[lo:hi], df[lo:hi], sign[lo:hi]
        q, ss, a, b, p = sqrt_t[:m], s[:m], d1[:m], d2[:m], pdf[:m]
        np.sqrt(tb, out=q)
        np.multiply(vb, q, out=ss)
        np.divide(fb, kb, out=a)
        np.log(a, out=a)
        np.divide(a, ss, out=a)
        np.multiply(ss, 0.5, out=b)
        np.add(a, b, out=a)  # d1
        np.subtract(a, ss, out=b)  # d2
        np.multiply(a, a, out=p)
        np.multiply(p, -0.5, out=p)
        np.exp(p, out=p)
        np.multiply(p, 0.3989422804014327, out=p)  # n(d1)
        np.multiply(sb, a, out=a)
        ndtr(a, out=a)  # N(sign d1)
        np.multiply(sb, b, out=b)
        ndtr(b, out=b)  # N(sign d2)
        pr, de, ga, ve = price[lo:hi], delta[lo:hi], gamma[lo:hi], vega[lo:hi]
        np.multiply(dfb, sb, out=de)
        np.multiply(fb, a, out=pr)
        np.multiply(kb, b, out=b)
        np.subtract(pr, b, out=pr)
        np.multiply(pr, de, out=pr)  # price = df sign (F N1 - K N2)
        np.multiply(de, a, out=de)  # delta = df sign N1
        np.multiply(dfb, p, out=p)  # df n(d1)
        np.multiply(fb, ss, out=ga)
        np.divide(p, ga, out=ga)  # gamma = df n / (F s)
        np.multiply(p, fb, out=ve)
        np.multiply(ve, q, out=ve)  # vega = df F n sqrt(T)
    return out


def best_rate(fn, n, repetitions):
    best = float("inf")
    for _ in range(repetitions):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def run_numpy(data, repetitions):
    """The fastest of the numpy forms (textbook, in place by blocks), which agree to rounding."""
    f, k, t, vol, df, sign = (np.ascontiguousarray(row) for row in data)
    out = [np.empty_like(f) for _ in range(4)]
    plain = numpy_greeks(f, k, t, vol, df, sign)
    best = best_rate(lambda: numpy_greeks(f, k, t, vol, df, sign), f.size, repetitions)
    for block in BLOCKS:
        tmp = [np.empty(block) for _ in range(5)]
        blocked = numpy_greeks_blocked(f, k, t, vol, df, sign, out, tmp)
        for a, b in zip(plain, blocked):
            assert np.allclose(a, b, rtol=1e-12, atol=1e-10), "numpy forms disagree"
        rate = best_rate(
            lambda: numpy_greeks_blocked(f, k, t, vol, df, sign, out, tmp), f.size, repetitions
        )
        best = max(best, rate)
    return best


def run_quantlib(data, repetitions):
    import QuantLib as ql

    n = data.shape[1]
    rows = [tuple(float(v) for v in data[:, i]) for i in range(n)]

    def work():
        for f, k, t, vol, df, sign in rows:
            kind = ql.Option.Call if sign > 0 else ql.Option.Put
            std_dev = vol * t ** 0.5
            ql.blackFormula(kind, k, f, std_dev, df)
            # Greeks with respect to the forward from QuantLib's BlackCalculator.
            calc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, k), f, std_dev, df)
            calc.deltaForward()
            calc.gammaForward()
            calc.vega(t)

    return best_rate(work, n, repetitions)


def run_vollib(data, repetitions):
    from vollib.black import black
    from vollib.black.greeks import analytical

    n = data.shape[1]
    rows = []
    for i in range(n):
        f, k, t, vol, df, sign = (float(v) for v in data[:, i])
        rows.append((f, k, t, -np.log(df) / t, vol, "c" if sign > 0 else "p"))

    def work():
        for f, k, t, r, vol, flag in rows:
            black(flag, f, k, t, r, vol)
            analytical.delta(flag, f, k, t, r, vol)
            analytical.gamma(flag, f, k, t, r, vol)
            analytical.vega(flag, f, k, t, r, vol)

    return best_rate(work, n, repetitions)


def main():
    parser = argparse.ArgumentParser(description="Black-76 peer throughput")
    parser.add_argument("--options", type=int, default=1_000_000, help="options for numpy")
    parser.add_argument("--per-option", type=int, default=20_000, help="options for QuantLib and vollib")
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    data = inputs(args.options)
    small = data[:, : args.per_option]
    print(f"numpy {run_numpy(data, args.repetitions):.0f}", flush=True)
    print(f"careful_mix {careful_fraction(data):.4f}", flush=True)
    for name, flat in (("chain", False), ("chain_flat", True)):
        workload = chain(args.options, flat=flat)
        print(f"numpy_{name} {run_numpy(workload, args.repetitions):.0f}", flush=True)
        print(f"careful_{name} {careful_fraction(workload):.4f}", flush=True)
    print(f"quantlib {run_quantlib(small, max(1, args.repetitions // 2)):.0f}", flush=True)
    print(f"vollib {run_vollib(small, max(1, args.repetitions // 2)):.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
