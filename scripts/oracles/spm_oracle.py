"""Independent oracle for Deribit segregated portfolio margin (S:PM), BTC sub-portfolio.

Reproduces `btc_options_futures_and_balance_are_scanned_in_btc` in
crates/solvent-risk/tests/segregated_margin.rs from first principles (standard library only):
Black-76 with math.erfc, Deribit's BTC grid from venues/deribit.toml, the scan in BTC at the moved
price. Run: python3 scripts/oracles/spm_oracle.py
"""
# Independent oracle for Deribit S:PM, BTC sub-portfolio: 2 BTC balance, short 5 BTC-27DEC26-110000-C
# (inverse, 1 BTC each), long 300,000 USD BTC-27DEC26 future entered and marked at 100,000.
# Index 100,000, flat vol 0.55 at the option's expiry, rate 0, now 2026-01-06T08:00Z,
# expiry 2026-12-27T08:00Z (355 days).
import math
from decimal import Decimal, ROUND_FLOOR, ROUND_CEILING
N = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))
def call(F, K, T, s):
    d1 = (math.log(F / K) + 0.5 * s * s * T) / (s * math.sqrt(T)); d2 = d1 - s * math.sqrt(T)
    return F * N(d1) - K * N(d2)
S, K, T, sig = 100000.0, 110000.0, 355 / 365, 0.55
dte = 355.0
scale = (30 / dte) ** 0.13
up = max(sig * (1 + 0.5 * scale), 0.5); down = max(sig * (1 - 0.25 * scale), 0.01 * sig)
moves = [-0.16, -0.12, -0.08, -0.04, 0, 0.04, 0.08, 0.12, 0.16]
scen = [(m, v, 1.0) for m in moves for v in (up, sig, down)]
scen += [(m, up, min(1, 0.16 / abs(m))) for m in [-0.66, -0.33, 0.5, 1, 2, 3, 4, 5]]
base = call(S, K, T, sig)
mark = base / S  # the engine keeps a model mark at full precision
E = -5 * mark * S          # positions' USD equity: the short calls at their mark, the future at 0
worst = None
for m, v, w in scen:
    P = -5 * (call(S * (1 + m), K, T, v) - base) + 3 * S * m   # USD P&L of the positions
    coin = (E + P) / (S * (1 + m)) - E / S                     # in BTC at the moved price
    x = coin * w
    if worst is None or x < worst[0]:
        worst = (x, m, v)
roll = abs(3 * S * 0.01 * math.sqrt(T)) / S
mm = -worst[0] + roll
print("base call USD", base, "mark BTC", mark, "scale", scale, "up", up, "down", down)
print("worst", worst, "roll BTC", roll)
print("MM", repr(mm), "IM", repr(1.25 * mm))
for x in (mm, 1.25 * mm):
    print(Decimal(x).quantize(Decimal('1e-8'), rounding=ROUND_CEILING))
