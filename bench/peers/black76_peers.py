#!/usr/bin/env python3
"""Black-76 peers for bench/black76.sh: options per second for price + delta + gamma + vega.

Peers, each on the same deterministic inputs as crates/solvent-pricing/examples/black76_throughput.rs
(same generator, same seed, same order):
  numpy      vectorised numpy with scipy.special.ndtr for N(x), over all N options; no input
             validation (the Rust figure it is compared with, price_and_greeks_checked,
             validates every input as it values)
  quantlib   QuantLib's blackFormula and BlackCalculator (deltaForward, gammaForward, vega) per
             option, on fewer options
  vollib     vollib.black and vollib.black.greeks.analytical per option, on fewer options

Per-option peers run on a prefix of the inputs and report options/s (no scaling is needed for a
rate). Each figure is the best of several repetitions. Run pinned to one core with
OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1 (bench/black76.sh does this).

Prints one line per peer: `name options_per_second`.
"""

import argparse
import sys
import time

import numpy as np
from scipy.special import ndtr

MASK64 = (1 << 64) - 1


def inputs(n):
    """The benchmark inputs: a 64-bit LCG (Knuth's MMIX constants), top 53 bits as a uniform."""
    state = 20260101
    mult, inc = 6364136223846793005, 1442695040888963407
    out = np.empty((6, n))
    scale = 1.0 / (1 << 53)
    for i in range(n):
        u = []
        for _ in range(5):
            state = (state * mult + inc) & MASK64
            u.append((state >> 11) * scale)
        forward = 100.0
        strike = forward * (0.5 + 1.5 * u[0])
        t = 1.0 / 365.0 + 2.0 * u[1]
        vol = 0.1 + 1.4 * u[2]
        rate = 0.05 * u[3]
        is_call = 1.0 if u[4] < 0.5 else -1.0
        out[:, i] = (forward, strike, t, vol, np.exp(-rate * t), is_call)
    return out


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


def best_rate(fn, n, repetitions):
    best = float("inf")
    for _ in range(repetitions):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def run_numpy(data, repetitions):
    f, k, t, vol, df, sign = (np.ascontiguousarray(row) for row in data)
    return best_rate(lambda: numpy_greeks(f, k, t, vol, df, sign), f.size, repetitions)


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
    print(f"quantlib {run_quantlib(small, max(1, args.repetitions // 2)):.0f}", flush=True)
    print(f"vollib {run_vollib(small, max(1, args.repetitions // 2)):.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
