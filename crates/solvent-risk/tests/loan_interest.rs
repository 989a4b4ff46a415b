//! A loan's accrued interest in the margin report (issue 10, item 3): owed on top of the
//! principal, it is inside the loan's value and its borrow margins, and the report names it.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

mod support;

use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_risk::{MarketView, margin_report};
use support::default_venue;

const MARKET: &str = r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","USDT":"1"}}"#;

/// 200,000 USDT and a loan of 1 BTC at 100,000 owing 0.01 BTC of interest, on the default
/// venue (BTC borrow margins 20% initial, 4% maintenance, Bybit's borrow tier 1):
/// - the loan is 1.01 BTC = 101,000 USDT at full value: collateral 200,000 - 101,000 = 99,000;
/// - borrow initial margin 101,000 x 0.2 = 20,200, maintenance 101,000 x 0.04 = 4,040 (4,000
///   on the principal alone: the 40 more is the interest's share of the requirement);
/// - accrued interest 0.01 x 100,000 = 1,000 USDT, named apart.
#[test]
fn accrued_interest_is_inside_the_loans_value_and_margins_and_named() {
    let venue = default_venue();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let text = |extra: &str| {
        format!(
            r#"{{"account":"l","mode":"cross","collateral":{{"USDT":"200000","BTC":"-1"}}{extra}}}"#
        )
    };
    let owed = Portfolio::from_json(
        "p.json",
        &text(r#","accrued_interest":{"BTC":"0.01"}"#),
        &venue,
    )
    .unwrap();
    let report = margin_report(&owed, &view).unwrap();
    assert_eq!(report.collateral_value.value(), dec!(99000));
    assert_eq!(report.equity.value(), dec!(99000));
    assert_eq!(report.initial_margin.value(), dec!(20200));
    assert_eq!(report.maintenance_margin.value(), dec!(4040));
    assert_eq!(report.accrued_interest.value(), dec!(1000));
    let component = report
        .components
        .iter()
        .find(|c| c.name == "borrow_interest:BTC")
        .unwrap();
    assert_eq!(component.amount.value(), dec!(1000));
    assert!(
        component.detail.contains("0.01 BTC"),
        "{}",
        component.detail
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["accrued_interest"], "1000");

    let plain = Portfolio::from_json("p.json", &text(""), &venue).unwrap();
    let before = margin_report(&plain, &view).unwrap();
    assert_eq!(before.maintenance_margin.value(), dec!(4000));
    assert!(before.accrued_interest.is_zero());
    let json = serde_json::to_value(&before).unwrap();
    assert!(
        json.get("accrued_interest").is_none(),
        "left out when nothing is owed"
    );
}
