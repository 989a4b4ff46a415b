#!/usr/bin/env python3
"""Fit the rational approximation of the scaled normal tail used by the Black-76 direct kernel.

Usage: tail_ratio_fit.py M N B
  (the crate's coefficients: tail_ratio_fit.py 7 8 5.656854249492381, about 2 minutes)
Run with the oracle venv's Python (target/oracle-venv, made by scripts/setup-oracles: mpmath).

The function is Y(-w) = N(-w) / n(w) = sqrt(pi / 2) erfcx(w / sqrt(2)) on [0, B]: the same
method as scripts/oracles/erfcx_fit.py (which fits erfcx itself, for the careful kernel), in the
variable w, so that the kernel needs no scaling of its argument or result. Minimises the relative
error of P_M(w) / Q_N(w), Q(0) = 1, at 400 Chebyshev points of [0, B] by linearised weighted
least squares (Sanathanan-Koerner: weights 1 / (f Q_previous)) followed by Lawson's reweighting
towards the minimax solution, in 40-digit mpmath arithmetic. Prints the error per iteration,
the error of the f64-rounded coefficients evaluated in f64 (Horner) on a fine grid, and the
coefficients (lowest degree first), as pasted into
crates/solvent-pricing/src/black76/vector_math.rs (TAIL_P, TAIL_Q).
"""
import mpmath as mp, sys
mp.mp.dps = 40
m, n = int(sys.argv[1]), int(sys.argv[2])  # numerator degree m, denominator degree n, Q(0) = 1
A, B = 0.0, float(sys.argv[3])
N = 400
xs = [mp.mpf(A) + (mp.mpf(B)-A)*(1 - mp.cos(mp.pi*(i+0.5)/N))/2 for i in range(N)]
SC = mp.sqrt(mp.pi/2)
fs = [SC*mp.erfc(x/mp.sqrt(2))*mp.exp(x*x/2) for x in xs]
w = [mp.mpf(1)]*N
qprev = [mp.mpf(1)]*N
best = None
for it in range(40):
    # unknowns: p0..pm, q1..qn   (q0 = 1)
    rows = []; rhs = []
    for i, x in enumerate(xs):
        s = mp.sqrt(w[i]) / (fs[i]*qprev[i])
        row = [s*x**k for k in range(m+1)] + [-s*fs[i]*x**k for k in range(1, n+1)]
        rows.append(row); rhs.append(s*fs[i])
    M = mp.matrix(rows); r = mp.matrix(rhs)
    sol, res = mp.qr_solve(M, r)
    p = [sol[k] for k in range(m+1)]; q = [mp.mpf(1)] + [sol[m+1+k] for k in range(n)]
    # eval with doubles-rounded coefficients
    pd = [float(c) for c in p]; qd = [float(c) for c in q]
    errs = []
    for i, x in enumerate(xs):
        P = mp.polyval(p[::-1], x); Q = mp.polyval(q[::-1], x)
        errs.append((P/Q - fs[i])/fs[i])
        qprev[i] = Q
    emax = max(abs(e) for e in errs)
    # Lawson
    if it >= 5:
        tot = 0
        for i in range(N):
            w[i] = w[i]*abs(errs[i]); tot += w[i]
        w = [wi/tot*N for wi in w]
    if best is None or emax < best[0]:
        best = (emax, pd, qd)
    print(it, mp.nstr(emax, 4), flush=True)
emax, pd, qd = best
# check with float evaluation on fine grid
import math
def ev(x):
    P = 0.0
    for c in reversed(pd): P = P*x + c
    Q = 0.0
    for c in reversed(qd): Q = Q*x + c
    return P/Q
mx = 0
for i in range(4001):
    x = B*i/4000
    ex = SC*mp.erfc(mp.mpf(x)/mp.sqrt(2))*mp.exp(mp.mpf(x)**2/2)
    mx = max(mx, abs((ev(x)-ex)/ex))
print("double eval max rel", float(mx))
print("P", [repr(c) for c in pd]); print("Q", [repr(c) for c in qd])
