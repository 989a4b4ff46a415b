//! Stress and reverse stress, worked by hand on small accounts.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

mod support;

use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::shock::{Shock, read_shocks};
use solvent_core::venue::Venue;
use solvent_risk::stress::{reverse, run, shocked_market, shocked_report};
use solvent_risk::{MarketView, margin_report};
use support::default_venue;

const MARKET: &str = r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","ETH":"4000","USDT":"1","USDC":"1"},
  "mark":{"BTCUSDT":"100000","BTC-27DEC26-120000-C":"0.05"},
  "vol":{"BTC":{"27DEC26":{"strikes":[80000,120000],"vols":[0.55,0.5]}}}}"#;

fn portfolio(venue: &Venue, text: &str) -> Portfolio {
    Portfolio::from_json("p.json", text, venue).unwrap()
}

#[test]
fn a_joint_fall_moves_collateral_and_perpetuals_together() {
    let venue = default_venue();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let account = portfolio(
        &venue,
        r#"{"account":"s","mode":"cross","collateral":{"USDT":"20000","BTC":"1"},
            "positions":[{"instrument":"BTCUSDT","size":"2","entry_price":"100000","leverage":20}]}"#,
    );
    let base = margin_report(&account, &view).unwrap();
    let rows = run(
        &account,
        &view,
        &base,
        &[Shock::joint("-10%", &["BTC".to_owned()], -0.1)],
    )
    .unwrap();
    // Collateral 1 BTC loses 10,000 and the 2 BTC long loses 20,000.
    assert_eq!(rows[0].pnl.value(), dec!(-30000));
    // After: equity 20,000 + 90,000 - 20,000 = 90,000; MM = 2 x 90,000 x 0.5% = 900.
    assert_eq!(rows[0].equity.value(), dec!(90000));
    assert_eq!(rows[0].maintenance_margin.value(), dec!(900));
    assert!(!rows[0].liquidates);
}

#[test]
fn an_option_mark_is_repriced_at_its_implied_volatility() {
    let venue = default_venue();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let shock = Shock {
        name: "up".to_owned(),
        price_moves: [("BTC".to_owned(), 0.2)].into_iter().collect(),
        vol_changes: [("BTC".to_owned(), 0.0)].into_iter().collect(),
    };
    let shocked = shocked_market(&view, &shock).unwrap();
    assert_eq!(shocked.index["BTC"].value(), dec!(120000));
    assert_eq!(shocked.mark["BTCUSDT"].value(), dec!(120000));
    // The call, repriced at the forward 120,000 with the volatility its 0.05 BTC mark implies,
    // is worth more in USD than before.
    let before = 0.05 * 100_000.0;
    let after = shocked.mark["BTC-27DEC26-120000-C"].to_f64() * 120_000.0;
    assert!(after > before * 1.5, "{after} vs {before}");
    // An unchanged market reprices the option to its own mark.
    let same = shocked_market(&view, &Shock::joint("none", &["BTC".to_owned()], 0.0)).unwrap();
    assert_eq!(same.mark["BTC-27DEC26-120000-C"].value(), dec!(0.05));
}

#[test]
fn reverse_stress_finds_where_health_reaches_one() {
    let venue = default_venue();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let account = portfolio(
        &venue,
        r#"{"account":"r","mode":"cross","collateral":{"USDT":"20000"},
            "positions":[{"instrument":"BTCUSDT","size":"2","entry_price":"100000","leverage":20}]}"#,
    );
    let found = reverse(&account, &view).unwrap();
    assert_eq!(found.len(), 1);
    // 20,000 + 2 x 100,000 x m = 0.005 x 2 x 100,000 (1 + m)  =>  m = -19,000 / 199,000 = -9.548%.
    let down = found[0].down.unwrap();
    assert!((down - (-19_000.0 / 199_000.0)).abs() < 1e-6, "{down}");
    assert_eq!(found[0].up, None);
    let at = shocked_report(
        &account,
        &view,
        &Shock::joint("at", &["BTC".to_owned()], down),
    )
    .unwrap();
    assert!((at.health.unwrap() - 1.0).abs() < 1e-4);
}

#[test]
fn the_shipped_historical_days_match_the_shared_data_readme() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/historical-days.json"
    ))
    .unwrap();
    let shocks = read_shocks("historical-days.json", &text).unwrap();
    // ../shared/data/prices/README.md: 2020-03-12 BTC -39.50%, ETH -44.60%; 2022-11-09 SOL -42.25%.
    assert!((shocks[0].price_moves["BTC"] + 0.3950).abs() < 5e-5);
    assert!((shocks[0].price_moves["ETH"] + 0.4460).abs() < 5e-5);
    assert!((shocks[2].price_moves["SOL"] + 0.4225).abs() < 5e-5);
    // DVOL 2022-11-09: BTC 76.66 -> 114.72.
    assert!((shocks[2].vol_changes["BTC"] - (114.72 / 76.66 - 1.0)).abs() < 1e-5);
}
