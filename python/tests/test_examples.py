"""The examples run against the installed package (so they do not rot)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

PRICES = ROOT.parent / "shared" / "data" / "prices"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(not PRICES.is_dir(), reason="../shared/data/prices is not there")
def test_the_backtest_reports_each_venue() -> None:
    # November 2022 (FTX): BTC fell from 20,500 to 15,600; at 8x the basket is liquidated.
    out = run(
        "python/examples/backtest.py",
        "--start", "2022-11-01", "--end", "2022-11-30",
        "--leverage", "8", "--venues", "binance-usdm,hyperliquid",
    )
    assert out.startswith("30 days 2022-11-01..2022-11-30, 8x long")
    for venue in ("binance-usdm", "hyperliquid"):
        assert f"\n{venue}\n  margin-call days" in out
    assert "liquidations (the day's low reached the venue's liquidation price): 0" not in out


def test_the_notebook_runs() -> None:
    out = run("python/examples/notebook.py")
    assert "maintenance margin:" in out and "state hash" in out
