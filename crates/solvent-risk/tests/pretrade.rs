//! The pre-trade rule's verdict does not depend on the detail of the reports it builds: the
//! engine judges at [`Detail::Totals`] (no attribution of a portfolio requirement to its
//! positions), `solvent whatif` at [`Detail::Figures`].

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::account::Detail;
use solvent_risk::pretrade::{Refusal, TradeLeg, book_trades, decide_trade_at};
use solvent_risk::{AccountState, MarketView};

fn venue() -> Venue {
    let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    Venue::from_toml(&path, &text).unwrap()
}

fn market() -> Market {
    Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000"},"mark":{"BTCUSDT":"100000"}}"#,
    )
    .unwrap()
}

/// The verdicts on buying `size` BTCUSDT at 100x (tier 1 of the default table allows 100x up
/// to 2,000,000 USDT, tier 2 90x) from an empty account in `mode`, at both details.
fn verdicts(mode: &str, size: Decimal) -> [Result<(), Refusal>; 2] {
    let venue = venue();
    let market = market();
    let view = MarketView::new(&venue, &market).unwrap();
    let before = Portfolio::from_json(
        "p.json",
        &format!(
            r#"{{"account":"a","mode":"{mode}","collateral":{{"USDT":"10000000"}},"positions":[]}}"#
        ),
        &venue,
    )
    .unwrap();
    let legs = [TradeLeg {
        instrument: venue.instrument("BTCUSDT").unwrap(),
        size,
        price: dec!(100000),
        fee: Decimal::ZERO,
    }];
    let after = book_trades(&before, &legs, &view, &|_| Some(dec!(100))).unwrap();
    [Detail::Figures, Detail::Totals].map(|detail| {
        decide_trade_at(
            detail,
            AccountState::Healthy,
            &before,
            &after,
            &["BTCUSDT"],
            &view,
        )
        .unwrap()
        .verdict
        .map(|_| ())
    })
}

#[test]
fn a_cross_position_beyond_its_brackets_leverage_is_refused_at_every_detail() {
    // 30 BTC at 100,000 is 3,000,000 USDT: tier 3 (80x).
    let [figures, totals] = verdicts("cross", dec!(30));
    let refusal = figures.unwrap_err();
    assert_eq!(refusal.name(), "leverage_above_bracket");
    assert!(matches!(
        refusal,
        Refusal::LeverageAboveBracket { tier: 3, .. }
    ));
    assert_eq!(totals.unwrap_err().to_string(), refusal.to_string());
    // Inside tier 1: accepted at both.
    let [figures, totals] = verdicts("cross", dec!(10));
    assert!(figures.is_ok() && totals.is_ok());
}

#[test]
fn a_portfolio_accounts_cross_position_is_not_judged_by_its_bracket_at_any_detail() {
    // Under portfolio margin the position's requirement is its share of the scan: the bracket's
    // leverage does not bind it. A report of totals keeps the standard rule's basis (tier 3 at
    // 100x): the rule must not read it.
    let [figures, totals] = verdicts("portfolio", dec!(30));
    assert!(figures.is_ok(), "{figures:?}");
    assert!(totals.is_ok(), "{totals:?}");
}
