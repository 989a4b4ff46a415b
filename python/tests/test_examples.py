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


@pytest.mark.skipif(not PRICES.is_dir(), reason="../shared/data/prices is not there")
def test_the_options_backtest_margins_a_strangle_in_both_modes() -> None:
    # June 2022 (Celsius, 3AC): BTC fell from 31,000 to 20,500 in a week, DVOL from 60 to 100.
    # Two 15%-out-of-the-money strangles on 1 BTC: standard margin calls twice; portfolio margin,
    # which shocks the BTC collateral with the puts, calls from 2022-06-12 and liquidates on
    # 2022-06-13 (health 0.971), the options bought back for 0.1678 BTC.
    out = run(
        "python/examples/options_backtest.py",
        "--start", "2022-05-20", "--end", "2022-06-30", "--contracts", "2",
    )
    assert out.startswith("42 days 2022-05-20..2022-06-30, short 2 BTC strangles")
    cross, portfolio = out.split("\ncross\n")[1].split("\nportfolio\n")
    assert "margin-call days 2 (first 2022-06-16)" in cross
    assert "liquidations (bought back at the close): 0" in cross
    assert "margin-call days 13 (first 2022-06-12)" in portfolio
    assert "lowest health 0.971 on 2022-06-13" in portfolio
    assert "2022-06-13 cost 0.1678 BTC" in portfolio
