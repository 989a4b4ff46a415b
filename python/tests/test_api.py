"""The package's API on hand-derived cases: money in and out as Decimal, floats refused for
money, errors naming the field, liquidation prices, the engine from dicts."""

from __future__ import annotations

from decimal import Decimal

import pytest

import solvent
from conftest import EXAMPLES, MARKET, load_json

# examples/isolated-btcusdt.json: 10,000 USDT cross; 1 BTCUSDT isolated with 5,000, leverage 20.
ISOLATED = EXAMPLES / "isolated-btcusdt.json"


def account(**changes):
    portfolio = {
        "account": "t1",
        "mode": "cross",
        "collateral": {"USDT": "10000"},
        "positions": [{"instrument": "BTCUSDT", "size": "1", "entry_price": "60000", "leverage": 10}],
        "market": {"timestamp": "2026-01-06T08:00:00Z", "index": {"BTC": "60000", "USDT": "1"}},
    }
    portfolio.update(changes)
    return portfolio


def test_venues_load_by_name_or_path() -> None:
    assert "bybit-linear" in solvent.Venue.shipped()
    by_name = solvent.Venue.load("bybit-linear")
    by_path = solvent.Venue.load(EXAMPLES.parent / "venues" / "bybit-linear.toml")
    assert by_name.name == by_path.name
    assert "BTCUSDT" in by_name.instruments()
    with pytest.raises(solvent.VenueNotFoundError) as raised:
        solvent.Venue.load("bybit-linaer")
    assert "shipped: default" in str(raised.value)
    assert isinstance(raised.value, LookupError)


def test_figures_are_decimals_and_equal_the_hand_derived_ones() -> None:
    venue = solvent.Venue.load("default")
    report = venue.margin(account())
    # Long 1 BTCUSDT at 60,000, marked at the index 60,000: no P&L, equity = 10,000 USDT.
    assert report.equity == Decimal("10000")
    assert report.unrealized_pnl == Decimal("0")
    position = report.position("BTCUSDT")
    assert position is not None
    assert position.value == Decimal("60000")
    # Initial margin at leverage 10 = 60,000 / 10.
    assert position.initial_margin == Decimal("6000")
    assert report.initial_margin == Decimal("6000")
    assert report.available == Decimal("4000")
    assert all(isinstance(c.amount, Decimal) for c in report.components)
    assert any(c.name == "initial_margin:BTCUSDT" for c in report.components)
    assert report.to_dict()["equity"] == Decimal("10000")


def test_decimal_and_int_money_give_the_same_report_as_strings() -> None:
    venue = solvent.Venue.load("default")
    as_text = venue.margin(account())
    as_decimal = venue.margin(
        account(
            collateral={"USDT": Decimal("10000")},
            positions=[{"instrument": "BTCUSDT", "size": Decimal("1"), "entry_price": 60000, "leverage": 10}],
        )
    )
    assert as_decimal.to_json() == as_text.to_json()


def test_float_money_is_refused_naming_the_field() -> None:
    venue = solvent.Venue.load("default")
    with pytest.raises(solvent.MoneyAsFloatError) as raised:
        venue.margin(account(collateral={"USDT": 10000.5}))
    assert raised.value.field == "collateral.USDT"
    assert "money must not be a float" in str(raised.value)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, solvent.InputError)
    with pytest.raises(solvent.MoneyAsFloatError) as raised:
        venue.margin(
            account(positions=[{"instrument": "BTCUSDT", "size": 0.1, "entry_price": "60000"}])
        )
    assert raised.value.field == "positions[0].size"
    with pytest.raises(solvent.MoneyAsFloatError) as raised:
        venue.whatif(account(), {"instrument": "BTCUSDT", "size": 0.5})
    assert raised.value.field == "size" and raised.value.origin == "trades[0]"
    engine = solvent.Engine(venue)
    with pytest.raises(solvent.MoneyAsFloatError) as raised:
        engine.apply(
            {"seq": 1, "ts": "2026-01-01T00:00:00Z", "type": "deposit", "account": "a", "asset": "USDT", "amount": 10.5}
        )
    assert raised.value.field == "amount"


def test_bad_input_names_the_field() -> None:
    venue = solvent.Venue.load("default")
    cases = [
        (account(positions=[{"instrument": "BTCUSDT", "size": "1.23456", "entry_price": "60000"}]), "positions[0].size"),
        (account(positions=[{"instrument": "NOPE", "size": "1", "entry_price": "60000"}]), "positions[0].instrument"),
        (account(collateral={"USDT": "ten"}), "collateral.USDT"),
        (account(colateral={"USDT": "1"}), "colateral"),
        (account(market={"timestamp": "2026-01-06T08:00:00Z", "index": {"BTC": "-5"}}), "market.index.BTC"),
    ]
    for portfolio, field in cases:
        with pytest.raises(solvent.InputError) as raised:
            venue.margin(portfolio)
        assert raised.value.field == field, str(raised.value)
        assert raised.value.origin == "portfolio"
    # Valid input whose margin needs a figure the market lacks.
    with pytest.raises(solvent.RiskError) as raised:
        venue.margin(account(market={"timestamp": "2026-01-06T08:00:00Z", "index": {"USDT": "1"}}))
    assert raised.value.field == "market.index.BTC"
    # No market anywhere.
    portfolio = account()
    del portfolio["market"]
    with pytest.raises(solvent.InputError) as raised:
        venue.margin(portfolio)
    assert raised.value.field == "market"


def test_inputs_are_checked_as_the_command_line_checks_its_files() -> None:
    venue = solvent.Venue.load("default")
    market = {"timestamp": "2026-01-06T08:00:00Z", "index": {"BTC": "60000", "USDT": "1"}}
    far = account(market={**market, "mark": {"BTCUSDT": "600000"}})
    # A mark ten times its index is refused, naming the field and the switch that allows it.
    with pytest.raises(solvent.InputError) as raised:
        venue.margin(far)
    assert (raised.value.origin, raised.value.field) == ("portfolio", "market.mark.BTCUSDT")
    assert "is 900.0% from the BTC index 60,000.00, beyond the 20% mark band" in raised.value.problem
    assert "allow_far_marks=True" in raised.value.problem
    # Allowed, it is valued (1 BTC from 60,000 at 600,000: 540,000 of P&L) with a warning.
    with pytest.warns(solvent.InputWarning, match=r"valued anyway \(allow_far_marks=True\)"):
        report = venue.margin(far, allow_far_marks=True)
    assert report.positions[0].upnl == Decimal("540000")
    # No mark: the index stands in, and a warning says so.
    with pytest.warns(
        solvent.InputWarning,
        match=r"portfolio: market\.mark\.BTCUSDT: missing; the BTC index 60,000\.00 stands in for it",
    ):
        venue.margin(account())
    # A what-if trade's price is checked like a mark: no inverse option is worth a coin or more.
    deribit = solvent.Venue.load("deribit")
    with pytest.raises(solvent.InputError) as raised:
        deribit.whatif(
            str(EXAMPLES / "deribit-btc-inverse.json"), "BTC-27DEC26-110000-C:1@1000"
        )
    assert raised.value.origin == "trades[0]"
    assert raised.value.problem.startswith("1000 is not a premium of BTC-27DEC26-110000-C")


def test_a_figures_only_report_has_the_same_figures_without_liquidation_prices() -> None:
    venue = solvent.Venue.load("default")
    full = venue.margin(str(EXAMPLES / "btc-desk.json"))
    figures = venue.margin(str(EXAMPLES / "btc-desk.json"), detail="figures")
    for name in ("equity", "initial_margin", "maintenance_margin", "available", "withdrawable"):
        assert getattr(figures, name) == getattr(full, name)
    assert figures.components == [] and full.components
    assert all(p.liquidation_price is None for p in figures.positions)
    assert [p.maintenance_margin for p in figures.positions] == [p.maintenance_margin for p in full.positions]
    many = venue.margin_many([str(EXAMPLES / "btc-desk.json")] * 3, detail="figures")
    assert [r.maintenance_margin for r in many] == [full.maintenance_margin] * 3
    with pytest.raises(solvent.InputError) as raised:
        venue.margin(str(EXAMPLES / "btc-desk.json"), detail="some")
    assert raised.value.field == "detail"


def test_liquidation_price_of_the_isolated_example() -> None:
    venue = solvent.Venue.load("default")
    report = venue.margin(str(ISOLATED))
    expected = report.position("BTCUSDT").liquidation_price
    assert expected is not None
    assert venue.liquidation_price(str(ISOLATED), "BTCUSDT") == expected
    # Below the entry for a long.
    assert expected < report.position("BTCUSDT").mark_price
    with pytest.raises(solvent.InputError) as raised:
        venue.liquidation_price(str(ISOLATED), "ETHUSDT")
    assert raised.value.field == "instrument"


def test_a_portfolio_read_once_is_reused_and_bound_to_its_venue() -> None:
    venue = solvent.Venue.load("default")
    portfolio = venue.portfolio(str(ISOLATED))
    market = solvent.Market(str(MARKET))
    assert venue.margin(portfolio).to_json() == venue.margin(str(ISOLATED)).to_json()
    assert venue.margin(portfolio, market).to_json() == venue.margin(str(ISOLATED), str(MARKET)).to_json()
    with pytest.raises(solvent.InputError):
        solvent.Venue.load("deribit").margin(portfolio)


def test_whatif_names_the_refusal() -> None:
    venue = solvent.Venue.load("default")
    refused = venue.whatif(account(), "BTCUSDT:10")
    assert not refused and refused.refusal is not None
    assert refused.after.initial_margin > refused.before.initial_margin
    accepted = venue.whatif(account(), ["BTCUSDT:-0.5"])
    assert accepted and accepted.refusal is None
    with pytest.raises(solvent.InputError) as raised:
        venue.whatif(account(), "BTCUSDT:abc")
    assert raised.value.field == "size"


def test_engine_from_dicts_and_columns() -> None:
    engine = solvent.Engine(solvent.Venue.load("default"))
    events = [
        {"ts": "2026-01-01T00:00:00Z", "type": "index_price", "underlying": "BTC", "price": "60000"},
        {"ts": "2026-01-01T00:00:01Z", "type": "deposit", "account": "a1", "asset": "USDT", "amount": "10000"},
        {"ts": "2026-01-01T00:00:02Z", "type": "fill", "account": "a1", "instrument": "BTCUSDT",
         "side": "buy", "size": "1", "price": "60000", "fee": "6", "counterparty": "external"},
        {"ts": "2026-01-01T00:00:03Z", "type": "withdraw", "account": "a1", "asset": "USDT", "amount": "99999"},
    ]
    table = engine.apply_many(events, columns=True)
    # The withdrawal is refused: it counts as an event but takes no sequence number.
    assert engine.events == 4 and engine.last_seq == 3
    assert set(table) >= {"seq", "type"}
    assert "rejected" in table["type"]
    assert engine.balances()["a1"]["USDT"] == Decimal("9994")
    report = engine.margin("a1")
    assert report.equity == Decimal("9994")
    with pytest.raises(solvent.InputError) as raised:
        engine.apply({"ts": "2026-01-01T00:00:04Z", "type": "deposit", "account": "a1", "asset": "USDT"})
    assert raised.value.field == "amount"


def test_stress_takes_scenarios_as_dicts_with_decimal_moves(tmp_path) -> None:
    venue = solvent.Venue.load("default")
    scenarios = [
        {"name": "btc -30%", "price_moves": {"BTC": Decimal("-0.3")}},
        {"name": "btc +10%, vol up", "price_moves": {"BTC": "0.1"}, "vol_changes": {"BTC": "0.5"}},
    ]
    as_dicts = venue.stress(account(), scenarios=scenarios)
    path = tmp_path / "scenarios.json"
    path.write_text(
        '{"scenarios": [{"name": "btc -30%", "price_moves": {"BTC": "-0.3"}},'
        ' {"name": "btc +10%, vol up", "price_moves": {"BTC": "0.1"}, "vol_changes": {"BTC": "0.5"}}]}'
    )
    assert venue.stress(account(), scenarios=str(path)) == as_dicts
    row = as_dicts["scenarios"][0]
    # Long 1 BTCUSDT at 60,000: a 30% fall loses 18,000 USDT.
    assert row["name"] == "btc -30%" and row["pnl"] == Decimal("-18000")
    with pytest.raises(solvent.MoneyAsFloatError) as raised:
        venue.stress(account(), scenarios=[{"name": "x", "price_moves": {"BTC": -0.3}}])
    assert raised.value.field == "scenarios[0].price_moves.BTC"


def test_engine_configuration_overrides_the_defaults_and_refuses_float_decimals() -> None:
    venue = solvent.Venue.load("default")
    default = solvent.Engine(venue).config()
    assert isinstance(default["liquidation"]["fee_rate"], Decimal)
    engine = solvent.Engine(
        venue, {"liquidation": {"fee_rate": Decimal("0.01"), "max_steps": 8}, "guards": {"max_open_interest": {"BTCUSDT": "50"}}}
    )
    config = engine.config()
    assert config["liquidation"]["fee_rate"] == Decimal("0.01")
    assert config["liquidation"]["max_steps"] == 8
    assert config["liquidation"]["max_step_fraction"] == default["liquidation"]["max_step_fraction"]
    assert config["guards"]["max_open_interest"] == {"BTCUSDT": Decimal("50")}
    with pytest.raises(solvent.MoneyAsFloatError) as raised:
        solvent.Engine(venue, {"liquidation": {"fee_rate": 0.01}})
    assert raised.value.field == "liquidation.fee_rate"
    with pytest.raises(solvent.InputError) as raised:
        solvent.Engine(venue, {"liquidation": {"fee": "0.01"}})
    assert raised.value.field == "liquidation.fee"
