#!/usr/bin/env python3
"""Fit the rational approximations of the Black-76 batch kernels (crates/solvent-pricing).

Usage: rational_fit.py FUNCTION M N B
  erfcx       erfcx(z) on [0, B], for the careful kernel (NEAR_P, NEAR_Q):
              rational_fit.py erfcx 8 8 4.0, about 3 minutes
  tail_ratio  Y(-w) = N(-w) / n(w) = sqrt(pi / 2) erfcx(w / sqrt(2)) on [0, B], the scaled normal
              tail of the direct kernel in its own variable, so that the kernel needs no scaling
              of its argument or result (TAIL_P, TAIL_Q):
              rational_fit.py tail_ratio 7 8 5.656854249492381, about 2 minutes
Run with the oracle venv's Python (target/oracle-venv, made by scripts/setup-oracles: mpmath).

Minimises the relative error of P_M(x) / Q_N(x), Q(0) = 1, at Chebyshev points of [0, B] by
linearised weighted least squares (Sanathanan-Koerner: weights 1 / (f Q_previous)) followed by
Lawson's reweighting towards the minimax solution, in high-precision mpmath arithmetic. Prints
the error per iteration, the error of the f64-rounded coefficients evaluated in f64 (Horner) on a
fine grid, and the coefficients (lowest degree first), as pasted into
crates/solvent-pricing/src/black76/vector_math.rs.
"""
import sys

import mpmath as mp

# Per function: the target, mpmath digits, Chebyshev points, iterations (as the crate's
# coefficients were fitted).
FUNCTIONS = {
    "erfcx": (lambda x: mp.erfc(x) * mp.exp(x * x), 50, 600, 60),
    "tail_ratio": (
        lambda x: mp.sqrt(mp.pi / 2) * mp.erfc(x / mp.sqrt(2)) * mp.exp(x * x / 2),
        40,
        400,
        40,
    ),
}

name = sys.argv[1]
target, digits, points, iterations = FUNCTIONS[name]
mp.mp.dps = digits
m, n = int(sys.argv[2]), int(sys.argv[3])  # numerator degree m, denominator degree n, Q(0) = 1
A, B = 0.0, float(sys.argv[4])
xs = [mp.mpf(A) + (mp.mpf(B) - A) * (1 - mp.cos(mp.pi * (i + 0.5) / points)) / 2 for i in range(points)]
fs = [target(x) for x in xs]
w = [mp.mpf(1)] * points
qprev = [mp.mpf(1)] * points
best = None
for it in range(iterations):
    # unknowns: p0..pm, q1..qn   (q0 = 1)
    rows = []
    rhs = []
    for i, x in enumerate(xs):
        s = mp.sqrt(w[i]) / (fs[i] * qprev[i])
        row = [s * x**k for k in range(m + 1)] + [-s * fs[i] * x**k for k in range(1, n + 1)]
        rows.append(row)
        rhs.append(s * fs[i])
    sol, _ = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))
    p = [sol[k] for k in range(m + 1)]
    q = [mp.mpf(1)] + [sol[m + 1 + k] for k in range(n)]
    pd = [float(c) for c in p]
    qd = [float(c) for c in q]
    errs = []
    for i, x in enumerate(xs):
        P = mp.polyval(p[::-1], x)
        Q = mp.polyval(q[::-1], x)
        errs.append((P / Q - fs[i]) / fs[i])
        qprev[i] = Q
    emax = max(abs(e) for e in errs)
    # Lawson: weights grow where the error is largest.
    if it >= 5:
        total = 0
        for i in range(points):
            w[i] = w[i] * abs(errs[i])
            total += w[i]
        w = [wi / total * points for wi in w]
    if best is None or emax < best[0]:
        best = (emax, pd, qd)
    print(it, mp.nstr(emax, 4), flush=True)
emax, pd, qd = best


def horner(coefficients, x):
    value = 0.0
    for c in reversed(coefficients):
        value = value * x + c
    return value


worst = 0
for i in range(4001):
    x = B * i / 4000
    exact = target(mp.mpf(x))
    worst = max(worst, abs((horner(pd, x) / horner(qd, x) - exact) / exact))
print("double eval max rel", float(worst))
print("P", [repr(c) for c in pd])
print("Q", [repr(c) for c in qd])
