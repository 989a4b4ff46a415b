//! Liquidation prices in full reports: the numeric solver against closed forms, and the defining
//! property (health 1 at the price) where the bracket changes on the way.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::report::MarginReport;
use solvent_risk::{MarketView, margin_report};

fn report(portfolio: &str, market: &str) -> MarginReport {
    let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
    let venue = Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let portfolio = Portfolio::from_json("p.json", portfolio, &venue).unwrap();
    let market = Market::from_json("m.json", market).unwrap();
    margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap()
}

const MARKET: &str = r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"60000","USDT":"1"}}"#;

#[test]
fn isolated_long_matches_the_hyperliquid_closed_form() {
    let report = report(
        r#"{"account":"i","mode":"cross","collateral":{"USDT":"1000"},"positions":[
            {"instrument":"BTCUSDT","size":"2","entry_price":"60000","isolated_margin":"6000","leverage":20}]}"#,
        MARKET,
    );
    // liq = mark - side (equity - MM) / |size| / (1 - mmr side), equity 6,000, MM = 120,000 x 0.5% = 600:
    // 60,000 - 5,400 / 2 / 0.995 = 57,286.4321608..., rounded up for a long to 57,286.433.
    let position = &report.positions[0];
    assert_eq!(position.liquidation_price.unwrap().value(), dec!(57286.433));
    // The isolated position keeps its own figures; the cross pool holds only the 1,000 USDT.
    assert_eq!(position.isolated_equity.unwrap().value(), dec!(6000));
    assert_eq!(report.equity.value(), dec!(1000));
    assert_eq!(report.maintenance_margin.value(), dec!(0));
}

#[test]
fn isolated_short_matches_the_closed_form() {
    let report = report(
        r#"{"account":"i","mode":"cross","collateral":{},"positions":[
            {"instrument":"BTCUSDT","size":"-2","entry_price":"60000","isolated_margin":"6000","leverage":20}]}"#,
        MARKET,
    );
    // 60,000 + 5,400 / 2 / 1.005 = 62,686.5671641..., rounded down for a short to 62,686.567.
    assert_eq!(
        report.positions[0].liquidation_price.unwrap().value(),
        dec!(62686.567)
    );
}

#[test]
fn cross_long_moves_only_its_own_price() {
    let report = report(
        r#"{"account":"c","mode":"cross","collateral":{"USDT":"10000"},"positions":[
            {"instrument":"BTCUSDT","size":"2","entry_price":"60000","leverage":20}]}"#,
        MARKET,
    );
    // 10,000 + 2 (p - 60,000) = 0.005 x 2 p  =>  p = 110,000 / 1.99 = 55,276.3819095...
    let position = &report.positions[0];
    assert_eq!(position.liquidation_price.unwrap().value(), dec!(55276.382));
    // Distance: (60,000 - 55,276.382) / 60,000 = 7.8727%.
    let distance = position.distance_to_liquidation_pct.unwrap();
    assert!((distance - 7.872_697).abs() < 1e-5, "{distance}");
}

#[test]
fn the_bracket_can_change_on_the_way_to_liquidation() {
    // A 30 BTC short at 60,000 is 1,800,000 USDT (tier 1); with 250,000 USDT its liquidation lies
    // above 2,000,000 of value (66,666.67 per BTC), in tier 2, where MM = value x 0.56% - 1,200.
    let report = report(
        r#"{"account":"t","mode":"cross","collateral":{"USDT":"250000"},"positions":[
            {"instrument":"BTCUSDT","size":"-30","entry_price":"60000","leverage":10}]}"#,
        MARKET,
    );
    let price = report.positions[0].liquidation_price.unwrap().value();
    // Tier 2: 250,000 - 30 (p - 60,000) = 30 p x 0.0056 - 1,200 => p = 2,051,200 / 30.168.
    // (Tier 1's formula would give 2,050,000 / 30.15 = 67,993.37, a different price.)
    let expected = dec!(2051200) / dec!(30.168);
    assert!(
        price <= expected && expected - price < dec!(0.001),
        "{price} vs {expected}"
    );
    assert!(price * dec!(30) > dec!(2000000));
}

#[test]
fn an_account_without_risk_has_no_liquidation_price() {
    let report = report(
        r#"{"account":"s","mode":"cross","collateral":{"USDT":"1000000"},"positions":[
            {"instrument":"BTCUSDT","size":"1","entry_price":"60000"}]}"#,
        MARKET,
    );
    assert_eq!(report.positions[0].liquidation_price, None);
    assert_eq!(Decimal::ZERO, report.positions[0].upnl.value());
}

/// A short BTC_USDC put on USDC collateral, priced from a flat 50% smile: its liquidation
/// level is an index level, the put repriced from it.
#[test]
fn an_options_liquidation_level_is_its_underlyings_index() {
    use solvent_core::instrument::Terms;
    use solvent_pricing::black76::{Black76, OptionType};
    use solvent_risk::report::LiquidationLevel;

    let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
    let venue = Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let portfolio = Portfolio::from_json(
        "p.json",
        r#"{"account":"o","mode":"cross","settlement_asset":"USDC","collateral":{"USDC":"40000"},
            "positions":[{"instrument":"BTC_USDC-27DEC26-80000-P","size":"-1","entry_price":"5000"}]}"#,
        &venue,
    )
    .unwrap();
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000"},
            "vol":{"BTC":{"27DEC26":{"strikes":[50000,150000],"vols":[0.5,0.5]}}}}"#,
    )
    .unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let report = margin_report(&portfolio, &view).unwrap();
    let position = &report.positions[0];
    assert_eq!(position.liquidation_price_of, LiquidationLevel::Index);
    let level = position.liquidation_price.unwrap().value();
    // The put at index x (rate 0: forward = x, discount 1), at the smile's 50%.
    let instrument = venue.instrument("BTC_USDC-27DEC26-80000-P").unwrap();
    let Terms::Option { expiry, .. } = instrument.terms else {
        panic!("an option")
    };
    let years = view.years_to(expiry);
    let put = |x: f64| {
        Black76::new_checked(x, 80_000.0, years, 0.5, 1.0)
            .unwrap()
            .price(OptionType::Put)
    };
    // Deribit's short put: MM = max(0.075 x, 0.075 p) + p; equity = 40,000 - p (the short
    // put's value against it). Health 1 where 40,000 - p(x) = 0.075 x + p(x).
    let surplus = |x: f64| 40_000.0 - put(x) - (0.075 * x).max(0.075 * put(x)) - put(x);
    let x: f64 = level.to_string().parse().unwrap();
    // A fall hurts a short put, so the level is rounded up to the thousandth, as a long's
    // price is: the root lies within 0.001 below the reported level.
    assert!(surplus(x) >= 0.0, "surplus {} at {x}", surplus(x));
    assert!(
        surplus(x - 0.001) < 0.0,
        "surplus {} below {x}",
        surplus(x - 0.001)
    );
    // Healthy at 100,000 (about 40,000 - 7,500 - 2 x 9,160), liquidated by a fall.
    assert!(surplus(100_000.0) > 10_000.0);
    assert!(x > 50_000.0 && x < 100_000.0, "level {x}");
    // Its distance is the index's: (100,000 - x) / 100,000 in percent.
    let distance = position.distance_to_liquidation_pct.unwrap();
    assert!(
        (distance - (100_000.0 - x) / 1_000.0).abs() < 1e-9,
        "distance {distance}"
    );
}

/// A long call (no margin of its own) holds up a pool whose other positions fall short of their
/// maintenance: the account liquidates where the call, repriced from a falling index, is worth
/// no more than that shortfall. (A long option in a pool that covers itself needs no search: it
/// never liquidates the account, and has no level.)
#[test]
fn a_long_option_that_holds_the_pool_up_has_an_index_level() {
    use solvent_core::instrument::Terms;
    use solvent_pricing::black76::{Black76, OptionType};

    let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
    let venue = Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let portfolio = |collateral: &str| {
        Portfolio::from_json(
            "p.json",
            &format!(
                r#"{{"account":"o","mode":"cross","settlement_asset":"USDC","collateral":{{"USDC":"{collateral}"}},
                "positions":[{{"instrument":"BTC_USDC-PERPETUAL","size":"1","entry_price":"100000"}},
                             {{"instrument":"BTC_USDC-27DEC26-100000-C","size":"1","entry_price":"1000"}}]}}"#
            ),
            &venue,
        )
        .unwrap()
    };
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000"},
            "vol":{"BTC":{"27DEC26":{"strikes":[50000,150000],"vols":[0.5,0.5]}}}}"#,
    )
    .unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    // 500 USDC against the perpetual's maintenance of 1.005% x 100,000 = 1,005: short by 505
    // without the call.
    let report = margin_report(&portfolio("500"), &view).unwrap();
    let call = &report.positions[1];
    let shortfall =
        report.maintenance_margin.value() - (report.equity.value() - call.value.value());
    assert_eq!(shortfall, rust_decimal_macros::dec!(505));
    let level: f64 = call
        .liquidation_price
        .unwrap()
        .value()
        .to_string()
        .parse()
        .unwrap();
    let instrument = venue.instrument("BTC_USDC-27DEC26-100000-C").unwrap();
    let Terms::Option { expiry, .. } = instrument.terms else {
        panic!("an option")
    };
    let premium = Black76::new_checked(level, 100_000.0, view.years_to(expiry), 0.5, 1.0)
        .unwrap()
        .price(OptionType::Call);
    assert!((premium - 505.0).abs() < 0.01, "call {premium} at {level}");
    assert!(level < 100_000.0, "{level}");
    // With 5,000 USDC the pool covers itself: the call never liquidates it.
    let covered = margin_report(&portfolio("5000"), &view).unwrap();
    assert!(covered.positions[1].liquidation_price.is_none());
}
