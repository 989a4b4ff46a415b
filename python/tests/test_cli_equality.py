"""The package's figures equal the `solvent` command's, for every shipped example under every
shipped venue (with its own market and with examples/market-2026-01-06.json): the same JSON text
for `margin` and `whatif`, the same figures for `allocate` and `stress`, the same error (origin,
field and problem) where the command refuses the input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import List, Optional

import pytest

import solvent
from conftest import MARKET, PORTFOLIOS, load_json, run_cli, same_figures, venue_names

CASES = [
    (portfolio, venue, market)
    for portfolio in PORTFOLIOS
    for venue in venue_names()
    for market in (None, MARKET)
]


def case_id(case) -> str:
    portfolio, venue, market = case
    return f"{portfolio.stem}@{venue}" + ("+market" if market else "")


def cli_args(command: str, portfolio: Path, venue: str, market: Optional[Path]) -> List[str]:
    args = [command, str(portfolio.relative_to(portfolio.parents[1])), "--venue", venue, "--json"]
    if market is not None:
        args += ["--market", str(market.relative_to(market.parents[1]))]
    return args


def report_part(stdout: str) -> str:
    """The command's `margin --json` without the liquidating moves it prints after the report's
    fields (the reverse stress beside the report, which the package's report does not carry)."""
    moves = stdout.index(',\n  "liquidation_moves": ')
    return stdout[:moves] + "\n}\n"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_margin_equals_the_command(case, cli_available, monkeypatch) -> None:
    portfolio, venue_name, market = case
    monkeypatch.chdir(portfolio.parents[1])
    code, stdout, stderr = run_cli(cli_args("margin", portfolio, venue_name, market))
    venue = solvent.Venue.load(venue_name)
    relative = str(portfolio.relative_to(portfolio.parents[1]))
    market_arg = None if market is None else str(market.relative_to(market.parents[1]))
    if code != 0:
        assert code == 2, stderr
        with pytest.raises(solvent.SolventError) as raised:
            venue.margin(relative, market_arg)
        # Read from the same files, the error is the command's, word for word.
        assert stderr.strip() == f"error: {raised.value}"
        assert raised.value.field is None or raised.value.field in stderr
        return
    report = venue.margin(relative, market_arg)
    assert report.to_json() + "\n" == report_part(stdout)
    cli = json.loads(report_part(stdout))
    same_figures(cli, report.to_dict(), portfolio.stem)
    # The attributes are the same figures.
    for name in ("equity", "initial_margin", "maintenance_margin", "available", "withdrawable"):
        assert getattr(report, name) == Decimal(cli[name])
    assert report.withdrawable_limit == cli["withdrawable_limit"]
    for ours, theirs in zip(report.positions, cli["positions"]):
        assert ours.instrument == theirs["instrument"]
        assert ours.maintenance_margin == Decimal(theirs["maintenance_margin"])
        expected = theirs["liquidation_price"]
        assert ours.liquidation_price == (None if expected is None else Decimal(expected))
    for ours, theirs in zip(report.components, cli["components"]):
        assert (ours.name, ours.amount, ours.detail) == (
            theirs["name"],
            Decimal(theirs["amount"]),
            theirs["detail"],
        )
    # A dict in the file's shape gives the same report as the file.
    from_dict = venue.margin(
        load_json(portfolio), None if market is None else load_json(market)
    )
    assert from_dict.to_json() == report.to_json()


def margin_ok(portfolio: Path, venue: str) -> bool:
    code, _, _ = run_cli(cli_args("margin", portfolio, venue, None))
    return code == 0


WHATIF_CASES = [(p, v) for p in PORTFOLIOS for v in ("default", "deribit", "bybit-linear")]


@pytest.mark.parametrize(
    "case", WHATIF_CASES, ids=[f"{p.stem}@{v}" for p, v in WHATIF_CASES]
)
def test_whatif_equals_the_command(case, cli_available, monkeypatch) -> None:
    portfolio, venue_name = case
    monkeypatch.chdir(portfolio.parents[1])
    relative = str(portfolio.relative_to(portfolio.parents[1]))
    if not margin_ok(portfolio, venue_name):
        pytest.skip("the command refuses this portfolio under this venue")
    positions = load_json(portfolio)["positions"]
    if not positions:
        pytest.skip("no position to trade")
    venue = solvent.Venue.load(venue_name)
    first = positions[0]
    size = Decimal(first["size"])
    for trade in (f"{first['instrument']}:{-size}", f"{first['instrument']}:{size * 2}"):
        code, stdout, stderr = run_cli(
            ["whatif", relative, "--venue", venue_name, "--json", "--trade", trade]
        )
        if code == 2:
            with pytest.raises(solvent.SolventError):
                venue.whatif(relative, [trade])
            continue
        outcome = venue.whatif(relative, [trade])
        assert outcome.to_json() + "\n" == stdout
        assert outcome.accepted == (code == 0)
        assert bool(outcome) == outcome.accepted
        if not outcome.accepted:
            assert outcome.refusal is not None and outcome.reason.startswith("refused")
        # The same trade as a dict, money as Decimal.
        instrument, text = trade.split(":")
        as_dict = venue.whatif(relative, {"instrument": instrument, "size": Decimal(text)})
        assert as_dict.to_json() == outcome.to_json()


@pytest.mark.parametrize("portfolio", PORTFOLIOS, ids=[p.stem for p in PORTFOLIOS])
def test_allocate_and_stress_equal_the_command(portfolio, cli_available, monkeypatch) -> None:
    monkeypatch.chdir(portfolio.parents[1])
    relative = str(portfolio.relative_to(portfolio.parents[1]))
    venue = solvent.Venue.load("default")
    runs = [
        (["allocate", relative, "--json"], lambda: venue.allocate(relative)),
        (
            ["allocate", relative, "--json", "--buffer", "mm:1.5", "--trigger", "1.3", "--target", "2"],
            lambda: venue.allocate(relative, buffer="mm:1.5", trigger=1.3, target=2.0),
        ),
        (["stress", relative, "--json"], lambda: venue.stress(relative)),
        (
            ["stress", relative, "--json", "--scenarios", "historical", "--reverse"],
            lambda: venue.stress(relative, scenarios="historical", reverse=True),
        ),
    ]
    for args, ours in runs:
        code, stdout, stderr = run_cli(args)
        if code != 0:
            with pytest.raises(solvent.SolventError) as raised:
                ours()
            assert stderr.strip() == f"error: {raised.value}", args
            continue
        same_figures(json.loads(stdout), ours(), " ".join(args))


def test_margin_many_equals_one_by_one(monkeypatch) -> None:
    monkeypatch.chdir(MARKET.parents[1])
    venue = solvent.Venue.load("default")
    portfolios = [
        str(p.relative_to(p.parents[1]))
        for p in PORTFOLIOS
        if p.stem in ("btc-desk", "isolated-btcusdt", "deribit-btc-inverse", "margin-call")
    ]
    many = venue.margin_many(portfolios * 25)
    assert len(many) == 100
    for index, report in enumerate(many):
        assert report.to_json() == venue.margin(portfolios[index % 4]).to_json()
    shared = venue.margin_many(portfolios, market=str(MARKET.relative_to(MARKET.parents[1])))
    for path, report in zip(portfolios, shared):
        assert report.to_json() == venue.margin(path, str(MARKET.relative_to(MARKET.parents[1]))).to_json()


def test_engine_replays_the_demo_as_the_command(cli_available, monkeypatch) -> None:
    monkeypatch.chdir(MARKET.parents[1])
    code, stdout, stderr = run_cli(["replay", "examples/events-demo.jsonl", "--json"])
    assert code == 0, stderr
    summary = json.loads(stdout)
    engine = solvent.Engine(solvent.Venue.load("default"))
    effects = engine.apply_many(Path("examples/events-demo.jsonl"))
    assert engine.state_hash() == summary["state_hash"]
    from_text_path = solvent.Engine(solvent.Venue.load("default"))
    assert from_text_path.apply_many("examples/events-demo.jsonl") == effects
    counts: dict = {}
    for effect in effects:
        counts[effect["type"]] = counts.get(effect["type"], 0) + 1
    assert counts == summary["effects"]
    for account, assets in engine.balances().items():
        for asset, amount in assets.items():
            assert Decimal(summary["balances"][account][asset]) == amount
    # Event by event, from dicts, gives the same state; columns line up for pandas.
    lines = Path("examples/events-demo.jsonl").read_text().splitlines()
    again = solvent.Engine(solvent.Venue.load("default"))
    columns = again.apply_many([json.loads(line) for line in lines if line.strip()], columns=True)
    assert again.state_hash() == summary["state_hash"]
    assert len(columns["type"]) == len(effects)
    assert all(len(column) == len(effects) for column in columns.values())


PM_VENUES = ("default", "deribit", "span-16")  # the shipped venues with [portfolio_margin]


@pytest.mark.parametrize("venue_name", PM_VENUES)
def test_portfolio_margin_of_many_accounts_equals_the_command(venue_name, cli_available, tmp_path) -> None:
    """Every shipped example switched to portfolio mode: `margin_many` in one call gives, for
    each account the command accepts, the command's report, and refuses the list naming the
    first account it does not."""
    venue = solvent.Venue.load(venue_name)
    accepted = []
    for portfolio in PORTFOLIOS:
        account = load_json(portfolio)
        account["mode"] = "portfolio"
        path = tmp_path / portfolio.name
        path.write_text(json.dumps(account))
        code, stdout, stderr = run_cli(["margin", str(path), "--venue", venue_name, "--json"])
        if code == 0:
            accepted.append((path, stdout))
        else:
            with pytest.raises(solvent.SolventError) as raised:
                venue.margin_many([str(path)])
            assert stderr.strip() == f"error: {raised.value}".replace("portfolios[0]", str(path))
    assert accepted, f"no example is accepted in portfolio mode by {venue_name}"
    reports = venue.margin_many([str(path) for path, _ in accepted] * 3)
    assert len(reports) == 3 * len(accepted)
    for index, report in enumerate(reports):
        path, stdout = accepted[index % len(accepted)]
        assert report.mode == "portfolio"
        assert report.to_json() + "\n" == report_part(stdout), path.name
