//! The liquidation-move search's contract, checked against full reports built on the moved
//! market: the answer is a move at which health has reached 1 (rounded toward liquidation), and
//! a move at most the search's tolerance nearer to zero still has health above 1. The tolerance
//! is the first bracket's width `2^-40`, the precision forty bisection steps gave; the ITP
//! refinement must reach it in at most one step more than bisection would take.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use solvent_core::market::Market;
use solvent_core::portfolio::{MarginMode, Portfolio};
use solvent_core::shock::Shock;
use solvent_core::venue::Venue;
use solvent_risk::stress::{
    Crossing, ShockBase, nearest_crossing, reverse, search_health, shocked_report,
};
use solvent_risk::{MarketView, margin_report};

fn venue() -> Venue {
    let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
    Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn desk() -> Value {
    let path = format!(
        "{}/../../examples/btc-desk.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Health of the full report when `underlying` alone moves by `price_move`.
fn full_health(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    underlying: &str,
    price_move: f64,
) -> f64 {
    let shock = Shock::joint("check", &[underlying.to_owned()], price_move);
    search_health(&shocked_report(portfolio, view, &shock).unwrap())
}

/// Checks the contract of the nearest crossing of `underlying` in account `file`; the crossing.
fn check(venue: &Venue, file: &Value, underlying: &str) -> Option<Crossing> {
    let portfolio = Portfolio::from_json("p.json", &file.to_string(), venue).unwrap();
    let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
    let view = MarketView::new(venue, &market).unwrap();
    let report = margin_report(&portfolio, &view).unwrap();
    let unmoved = search_health(&report);
    let base = ShockBase::new(&view);
    let crossing = nearest_crossing(
        &portfolio,
        &base,
        venue.portfolio_margin.as_ref(),
        underlying,
        unmoved,
    )
    .unwrap()?;
    if unmoved <= 1.0 {
        assert_eq!(crossing.crossed, 0.0, "already at or below 1: no move");
        return Some(crossing);
    }
    let Crossing {
        crossed,
        safe,
        tolerance,
        refinements,
    } = crossing;
    // Same direction, the safe end nearer to zero, at most the tolerance apart (up to the
    // rounding of the last step's end points).
    assert!(crossed != 0.0 && (safe == 0.0 || safe.signum() == crossed.signum()));
    assert!(safe.abs() < crossed.abs(), "{crossing:?}");
    let slack = 4.0 * f64::EPSILON * crossed.abs();
    assert!(
        crossed.abs() - safe.abs() <= tolerance + slack,
        "{underlying}: bracket wider than the tolerance: {crossing:?}"
    );
    // ITP's 41 steps at most, and the two exact checks of an answer found with fast steps.
    assert!(refinements <= 43, "{crossing:?}");
    // The answer liquidates, by the full report; the safe end does not.
    let at_answer = full_health(&portfolio, &view, underlying, crossed);
    assert!(
        at_answer <= 1.0,
        "{underlying}: health {at_answer} at the answer {crossed}"
    );
    let at_safe = if safe == 0.0 {
        unmoved
    } else {
        full_health(&portfolio, &view, underlying, safe)
    };
    assert!(
        at_safe > 1.0,
        "{underlying}: health {at_safe} at the safe end {safe}"
    );
    // The report's liquidation prices come from the same answer.
    if portfolio.mode == MarginMode::Portfolio {
        for (position, line) in portfolio.positions.iter().zip(&report.positions) {
            if position.instrument.underlying == underlying && position.isolated_margin.is_none() {
                assert_eq!(
                    line.distance_to_liquidation_pct,
                    Some(crossed.abs() * 100.0)
                );
            }
        }
    }
    Some(crossing)
}

/// Account shapes: the desk (options, inverse and linear perpetuals, several underlyings), and
/// single-kind accounts, each in portfolio and cross mode.
fn shapes() -> Vec<(&'static str, Value)> {
    let market = desk()["market"].clone();
    let account = |positions: Value, collateral: Value| {
        json!({"account": "a", "mode": "portfolio", "collateral": collateral,
               "positions": positions, "market": market.clone()})
    };
    let mut shapes = vec![
        ("desk", desk()),
        (
            "linear",
            account(
                json!([{"instrument": "BTCUSDT", "size": "-12", "entry_price": "93000"}]),
                json!({"USDT": "400000"}),
            ),
        ),
        (
            "inverse",
            account(
                json!([{"instrument": "BTC-PERPETUAL", "size": "-900000", "entry_price": "95000"}]),
                json!({"BTC": "1.5"}),
            ),
        ),
        (
            "options",
            account(
                json!([
                    {"instrument": "BTC-27MAR26-110000-C", "size": "-40", "entry_price": "0.02"},
                    {"instrument": "BTC_USDC-26JUN26-80000-P", "size": "-25", "entry_price": "3000"},
                    {"instrument": "BTC-27MAR26-90000-P", "size": "15", "entry_price": "0.03"}
                ]),
                json!({"USDT": "1500000"}),
            ),
        ),
        (
            "several underlyings",
            account(
                json!([
                    {"instrument": "BTCUSDT", "size": "5", "entry_price": "93000"},
                    {"instrument": "ETHUSDT", "size": "-160", "entry_price": "3200"}
                ]),
                json!({"USDT": "150000", "ETH": "3"}),
            ),
        ),
    ];
    // Options marked by the market (a venue's snapshot marks them): the search reprices them.
    let mut marked = account(
        json!([
            {"instrument": "BTC-27MAR26-110000-C", "size": "-40", "entry_price": "0.02"},
            {"instrument": "BTC-27MAR26-90000-P", "size": "-30", "entry_price": "0.03"}
        ]),
        json!({"BTC": "3", "USDT": "900000"}),
    );
    marked["market"]["mark"]["BTC-27MAR26-110000-C"] = json!("0.0121");
    marked["market"]["mark"]["BTC-27MAR26-90000-P"] = json!("0.0352");
    shapes.push(("marked options", marked));
    let cross: Vec<(&'static str, Value)> = shapes
        .iter()
        .map(|(name, file)| {
            let mut file = file.clone();
            file["mode"] = json!("cross");
            (*name, file)
        })
        .collect();
    let mut portfolio: Vec<(&'static str, Value)> = shapes
        .into_iter()
        .map(|(name, mut file)| {
            file["mode"] = json!("portfolio");
            (name, file)
        })
        .collect();
    portfolio.extend(cross);
    portfolio
}

#[test]
fn the_answer_liquidates_and_lies_within_the_tolerance_for_every_shape() {
    let venue = venue();
    let mut found = 0;
    for (name, file) in shapes() {
        for underlying in ["BTC", "ETH"] {
            if let Some(crossing) = check(&venue, &file, underlying) {
                found += 1;
                eprintln!("{name} {} {underlying}: {crossing:?}", file["mode"]);
            }
        }
    }
    // Most shapes cross somewhere: the checks above are not vacuous.
    assert!(found >= 10, "{found}");
}

#[test]
fn interpolation_takes_far_fewer_steps_than_bisection_where_health_is_smooth() {
    // Where health is smooth at the search's precision (large equity, options), interpolation
    // converges in about ten steps. Where the rounding of figures to the settlement asset's
    // precision makes health a staircase finer than that precision (a small linear account:
    // steps of 1e-6 USDT in a few thousand of equity), no method can place the step faster
    // than bisection, and ITP takes at most one step more.
    let venue = venue();
    for (name, file) in shapes() {
        let Some(crossing) = check(&venue, &file, "BTC") else {
            continue;
        };
        if ["desk", "options", "marked options"].contains(&name) && file["mode"] == "portfolio" {
            assert!(crossing.refinements <= 15, "{name}: {crossing:?}");
        }
    }
}

#[test]
fn an_account_already_liquidating_needs_no_move() {
    let venue = venue();
    let mut file = shapes().swap_remove(1).1;
    file["collateral"] = json!({"USDT": "1000"});
    let crossing = check(&venue, &file, "BTC").unwrap();
    assert_eq!(crossing.crossed, 0.0);
    let portfolio = Portfolio::from_json("p.json", &file.to_string(), &venue).unwrap();
    let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
    let report = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
    // Liquidated where it stands: at its own mark, no distance.
    let line = &report.positions[0];
    assert_eq!(line.distance_to_liquidation_pct, Some(0.0));
    assert_eq!(
        line.liquidation_price.map(|price| price.value()),
        Some(line.mark_price.value().normalize())
    );
}

#[test]
fn reverse_stress_answers_liquidate() {
    let venue = venue();
    for (name, file) in shapes() {
        let portfolio = Portfolio::from_json("p.json", &file.to_string(), &venue).unwrap();
        let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
        let view = MarketView::new(&venue, &market).unwrap();
        for row in reverse(&portfolio, &view).unwrap() {
            for answer in [row.down, row.up].into_iter().flatten() {
                let shock = Shock::joint("check", &row.underlyings, answer);
                let health = search_health(&shocked_report(&portfolio, &view, &shock).unwrap());
                assert!(
                    health <= 1.0,
                    "{name} {:?} {answer}: {health}",
                    row.underlyings
                );
            }
        }
    }
}

/// Instruments of random portfolio-mode accounts: linear and inverse perpetuals, coin and USDC
/// options, on BTC and ETH.
const INSTRUMENTS: [(&str, &str); 6] = [
    ("BTCUSDT", "93000"),
    ("ETHUSDT", "3200"),
    ("BTC-PERPETUAL", "95000"),
    ("BTC-27MAR26-110000-C", "0.02"),
    ("BTC_USDC-26JUN26-80000-P", "3000"),
    ("BTC-27MAR26-90000-P", "0.03"),
];

/// Size units per instrument (contract steps of the venue file).
const STEPS: [Decimal; 6] = [
    dec!(0.001),
    dec!(0.01),
    dec!(10),
    dec!(0.1),
    dec!(0.01),
    dec!(0.1),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_accounts_keep_the_contract(
        held in proptest::collection::vec((0usize..INSTRUMENTS.len(), -4000i64..4000), 1..5),
        usdt in 1_000i64..400_000,
        btc_tenths in 0i64..40,
        portfolio_mode in any::<bool>(),
    ) {
        let venue = venue();
        let mut positions: Vec<Value> = Vec::new();
        for (which, units) in held {
            let (name, entry) = INSTRUMENTS[which];
            if units == 0 || positions.iter().any(|p| p["instrument"] == name) {
                continue;
            }
            let size = Decimal::from(units) * STEPS[which];
            positions.push(json!({"instrument": name, "size": format!("{size}"), "entry_price": entry}));
        }
        prop_assume!(!positions.is_empty());
        let file = json!({
            "account": "r",
            "mode": if portfolio_mode { "portfolio" } else { "cross" },
            "collateral": {"USDT": usdt.to_string(), "BTC": (Decimal::from(btc_tenths) / dec!(10)).to_string()},
            "positions": positions,
            "market": desk()["market"].clone(),
        });
        for underlying in ["BTC", "ETH"] {
            check(&venue, &file, underlying);
        }
    }
}
