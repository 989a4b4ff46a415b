//! Amounts converted between assets at the market's USD prices (`MarketView::conversion`, read
//! once per position's figures, and `MarketView::convert`): hand-worked figures, and the order
//! of the checks (an asset into itself and a zero amount need no price; a missing price is the
//! first asset's before the second's).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

mod support;

use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_risk::{MarketView, RiskError};
use support::default_venue;

/// BTC at 100,000 and ETH at 2,500 by index; USDT has no index and counts at its peg of 1;
/// USDe has neither.
const MARKET: &str =
    r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","ETH":"2500"}}"#;

#[test]
fn amounts_convert_at_usd_prices_and_a_missing_price_is_named() {
    let venue = default_venue();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let asset = |symbol: &str| venue.asset(symbol).unwrap();
    let (btc, eth, usdt, usde) = (asset("BTC"), asset("ETH"), asset("USDT"), asset("USDe"));

    // 0.5 BTC = 50,000 USD = 20 ETH; 1,250 USDT (at its peg) = 0.5 ETH.
    let btc_in_eth = view.conversion(btc, eth);
    assert_eq!(btc_in_eth.convert(dec!(0.5)).unwrap(), dec!(20));
    assert_eq!(btc_in_eth.convert(dec!(-0.5)).unwrap(), dec!(-20));
    assert_eq!(view.convert(dec!(0.5), btc, eth).unwrap(), dec!(20));
    assert_eq!(
        view.conversion(usdt, eth).convert(dec!(1250)).unwrap(),
        dec!(0.5)
    );

    // Nothing to price: an asset into itself, or nothing at all, even without a price.
    assert_eq!(
        view.conversion(usde, usde).convert(dec!(7.25)).unwrap(),
        dec!(7.25)
    );
    assert_eq!(
        view.conversion(usde, btc).convert(dec!(0)).unwrap(),
        dec!(0)
    );

    // A missing price is named, the first asset's before the second's.
    let missing = |result: Result<rust_decimal::Decimal, RiskError>| match result {
        Err(RiskError::MissingIndex { name, needed_for }) => (name, needed_for),
        other => panic!("expected a missing index, got {other:?}"),
    };
    let (name, needed_for) = missing(view.conversion(usde, btc).convert(dec!(1)));
    assert_eq!(name, usde.index.to_string());
    assert_eq!(needed_for, "valuing USDe");
    let (name, _) = missing(view.conversion(btc, usde).convert(dec!(1)));
    assert_eq!(name, usde.index.to_string());
}

/// Beyond `Decimal`'s range the conversion is an overflow error naming both assets, not a
/// panic: the largest amount of BTC at 100,000 in ETH at 2,500 is 40 times too large.
#[test]
fn a_conversion_beyond_range_is_an_overflow() {
    let venue = default_venue();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let (btc, eth) = (venue.asset("BTC").unwrap(), venue.asset("ETH").unwrap());
    match view
        .conversion(btc, eth)
        .convert(rust_decimal::Decimal::MAX)
    {
        Err(RiskError::Overflow { what }) => assert!(what.contains("BTC in ETH"), "{what}"),
        other => panic!("expected an overflow, got {other:?}"),
    }
}
