# %% [markdown]
# # Solvent from Python, cell by cell
#
# Run it whole (`python python/examples/notebook.py` from the repository root) or cell by cell in
# an editor that knows `# %%` cells. pandas is used when installed, for display only.

# %%
from decimal import Decimal

import numpy as np

import solvent

try:
    import pandas as pd
except ImportError:  # pandas is optional
    pd = None

# %% A venue's own margin for an account: the shipped Bybit venue, the README's example account.
venue = solvent.Venue.load("bybit-linear")
report = venue.margin("examples/isolated-btcusdt.json")
print(report)
print("maintenance margin:", report.maintenance_margin, report.settlement_asset)
for component in report.components:
    print(f"  {component.name:<32} {component.amount:>14}  {component.detail}")

# %% Where does the position get liquidated, and how far is that?
position = report.position("BTCUSDT")
print(position.liquidation_price, f"{position.distance_to_liquidation_pct:.2f}%")

# %% The same account written in Python: money as str, int or Decimal, never float.
account = {
    "account": "notebook",
    "mode": "cross",
    "collateral": {"USDT": Decimal("25000")},
    "positions": [{"instrument": "BTCUSDT", "size": "0.8", "entry_price": "93000", "leverage": 25}],
    "market": {"timestamp": "2026-01-06T08:00:00Z", "index": {"BTC": "93859.71", "USDT": "1"}},
}
print(venue.margin(account).to_dict()["positions"][0]["liquidation_price"])
try:
    venue.margin({**account, "collateral": {"USDT": 25000.0}})
except solvent.MoneyAsFloatError as error:
    print("refused:", error.field, "-", error.problem[:60])

# %% What if I double the position? The venue's pre-trade rule answers.
outcome = venue.whatif(account, "BTCUSDT:0.8")
print(outcome.accepted, outcome.refusal, outcome.reason)

# %% Stress: the account under joint moves of -50%..+50%.
stress = venue.stress(account, scenarios="grid")
rows = [(row["name"], row["pnl"], row["health"], row["state"]) for row in stress["scenarios"]]
if pd is not None:
    print(pd.DataFrame(rows, columns=["scenario", "pnl", "health", "state"]).to_string())
else:
    for row in rows:
        print(*row)

# %% Black-76 over a strike ladder, and back to the volatility.
strikes = np.arange(60_000.0, 130_001.0, 5_000.0)
greeks = solvent.black76.greeks(93_859.71, strikes, 80 / 365, 0.45, 1.0, "call")
vols = solvent.black76.implied_vol(greeks.price, 93_859.71, strikes, 80 / 365)
print(np.column_stack([strikes, greeks.price, greeks.delta, vols])[:5])

# %% The engine: replay the demo's events, effects as columns for pandas.
engine = solvent.Engine(solvent.Venue.load("default"))
columns = engine.apply_many(__import__("pathlib").Path("examples/events-demo.jsonl"), columns=True)
if pd is not None:
    frame = pd.DataFrame(columns)
    print(frame["type"].value_counts().to_string())
else:
    print({kind: columns["type"].count(kind) for kind in set(columns["type"])})
print("state hash", engine.state_hash())
