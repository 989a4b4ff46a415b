//! Every published venue example of docs/published-examples.md, reproduced to the last digit.
//! Expected values are written as the venue's arithmetic, with a comment per term.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::standard::{
    Exposure, open_interest_initial_rate, requirement, size_premium_rate,
};
use solvent_risk::{MarketView, margin_report};

fn venue(file: &str) -> Venue {
    let path = format!("{}/../../venues/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    Venue::from_toml(&path, &text).unwrap()
}

fn exposure<'a>(
    instrument: &'a solvent_core::instrument::Instrument,
    size: Decimal,
    mark: Decimal,
) -> Exposure<'a> {
    Exposure {
        instrument,
        size,
        mark,
        underlying_usd: mark,
        leverage: None,
        open_interest_usd: None,
        expired: false,
    }
}

#[test]
fn bybit_btcusdt_tier_two_maintenance_uses_the_published_deduction() {
    let venue = venue("default.toml");
    let perp = venue.instrument("BTCUSDT").unwrap();
    // 2.5 BTC... no: value 2,500,000 USDT = 25 BTC at 100,000, tier 2 (2,000,000 to 2,600,000).
    let mut case = exposure(&perp, dec!(25), dec!(100000));
    case.leverage = Some(dec!(90));
    let requirement = requirement(&case).unwrap();
    // MM = 2,500,000 x 0.56% - 1,200 = 12,800 (= 2,000,000 x 0.5% + 500,000 x 0.56%).
    assert_eq!(requirement.maintenance, dec!(12800));
    // IM = 2,500,000 / 90.
    assert_eq!(requirement.initial, dec!(2500000) / dec!(90));
}

#[test]
fn bybit_illustration_of_progressive_maintenance() {
    // Bybit help "Maintenance Margin (USDT Contract)": tiers of 1,000 at 2%, 2.5%, 3%, 3.5%, 4%;
    // 100 contracts at 35 USDT, 10x: IM 350, MM = 1,000x2% + 1,000x2.5% + 1,000x3% + 500x3.5% = 92.5.
    let text = r#"
[venue]
name = "bybit illustration"
settlement_asset = "USDT"
[assets.USDT]
precision = 6
usd_peg = "1"
[margin_rules.xyz]
kind = "tiered"
tiers = [
  { up_to = "1000", max_leverage = 50, mmr = "0.02" },
  { up_to = "2000", max_leverage = 40, mmr = "0.025", deduction = "5" },
  { up_to = "3000", max_leverage = 33, mmr = "0.03", deduction = "15" },
  { up_to = "4000", max_leverage = 28, mmr = "0.035", deduction = "30" },
  { up_to = "5000", max_leverage = 25, mmr = "0.04", deduction = "50" },
]
[instruments.XYZUSDT]
kind = "perpetual"
style = "linear"
underlying = "XYZ"
settlement = "USDT"
contract_size = "1"
size_step = "1"
margin = "xyz"
"#;
    let venue = Venue::from_toml("xyz.toml", text).unwrap();
    let perp = venue.instrument("XYZUSDT").unwrap();
    let mut case = exposure(&perp, dec!(100), dec!(35));
    case.leverage = Some(dec!(10));
    let requirement = requirement(&case).unwrap();
    assert_eq!(requirement.initial, dec!(350));
    assert_eq!(requirement.maintenance, dec!(92.5));
}

#[test]
fn deribit_btc_usdc_perpetual_at_25_and_350_btc() {
    let venue = venue("default.toml");
    let perp = venue.instrument("BTC_USDC-PERPETUAL").unwrap();
    // 25 BTC at 100,000: IM rate 2% + 25 x 0.005% = 2.125% -> 53,125; MM 1.125% -> 28,125.
    let small = requirement(&exposure(&perp, dec!(25), dec!(100000))).unwrap();
    assert_eq!(
        (small.initial, small.maintenance),
        (dec!(53125), dec!(28125))
    );
    // 350 BTC: IM 2% + 350 x 0.005% = 3.75% of 35,000,000 = 1,312,500; MM 2.75% = 962,500.
    let large = requirement(&exposure(&perp, dec!(-350), dec!(100000))).unwrap();
    assert_eq!(
        (large.initial, large.maintenance),
        (dec!(1312500), dec!(962500))
    );
}

#[test]
fn deribit_sol_usdc_perpetual() {
    let venue = venue("default.toml");
    let perp = venue.instrument("SOL_USDC-PERPETUAL").unwrap();
    // 25 SOL at 200: IM 4% + 25 x 0.0005% = 4.0125% of 5,000 = 200.625; MM 2.0125% = 100.625.
    let small = requirement(&exposure(&perp, dec!(25), dec!(200))).unwrap();
    assert_eq!(
        (small.initial, small.maintenance),
        (dec!(200.625), dec!(100.625))
    );
    // 6,000 SOL: IM 7% of 1,200,000 = 84,000; MM 5% = 60,000.
    let large = requirement(&exposure(&perp, dec!(6000), dec!(200))).unwrap();
    assert_eq!(
        (large.initial, large.maintenance),
        (dec!(84000), dec!(60000))
    );
}

#[test]
fn deribit_inverse_perpetual_in_coin() {
    let venue = venue("default.toml");
    let perp = venue.instrument("BTC-PERPETUAL").unwrap();
    // 2,500,000 USD at 100,000 is 25 BTC: IM 25 x 2.125% = 0.53125 BTC, MM 25 x 1.125% = 0.28125 BTC.
    let small = requirement(&exposure(&perp, dec!(2500000), dec!(100000))).unwrap();
    assert_eq!(
        (small.initial, small.maintenance),
        (dec!(0.53125), dec!(0.28125))
    );
    // 35,000,000 USD is 350 BTC: IM 350 x 3.75% = 13.125 BTC.
    let large = requirement(&exposure(&perp, dec!(-35000000), dec!(100000))).unwrap();
    assert_eq!(large.initial, dec!(13.125));
}

#[test]
fn binance_collateral_6000_btc_at_20000() {
    let venue = venue("default.toml");
    let portfolio = Portfolio::from_json(
        "p.json",
        r#"{"account":"a","mode":"cross","collateral":{"BTC":"6000"},"settlement_asset":"USDT"}"#,
        &venue,
    )
    .unwrap();
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-01T00:00:00Z","index":{"BTC":"20000","USDT":"1"}}"#,
    )
    .unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let report = margin_report(&portfolio, &view).unwrap();
    // 100,000,000 x 100% + (120,000,000 - 100,000,000) x 97.5% = 119,500,000.
    assert_eq!(report.collateral_value.value(), dec!(119500000));
    assert_eq!(report.equity.value(), dec!(119500000));
}

#[test]
fn binance_usdm_maintenance_amount() {
    let venue = venue("binance-usdm.toml");
    let perp = venue.instrument("BTCUSDT").unwrap();
    // Notional 1,000,000 (bracket 3, 1%, cum 1,300): MM = 10,000 - 1,300 = 8,700
    // = 50,000 x 0.4% + 200,000 x 0.5% + 750,000 x 1%.
    let requirement = requirement(&exposure(&perp, dec!(10), dec!(100000))).unwrap();
    assert_eq!(requirement.maintenance, dec!(8700));
}

#[test]
fn drift_size_premium_unit_tests() {
    let step = Some(dec!(0.0001));
    // smart_hlm_size: margin_ratio_initial 1000 (10%), imf_factor 50 (0.00005), 1,000,000 coins -> 1300 (13%).
    assert_eq!(
        size_premium_rate(dec!(0.1), dec!(0.00005), dec!(1000000), step),
        dec!(0.13)
    );
    // spot_market_asset_weight: liability weight 11000 (110%), 1,000 tokens.
    assert_eq!(
        size_premium_rate(dec!(1.1), dec!(0.00001), dec!(1000), step),
        dec!(1.1)
    ); // imf 10 -> 11000
    assert_eq!(
        size_premium_rate(dec!(1.1), dec!(0.01), dec!(1000), step),
        dec!(1.1962)
    ); // imf 10000 -> 11962
    assert_eq!(
        size_premium_rate(dec!(1.1), dec!(0.1), dec!(1000), step),
        dec!(4.0422)
    ); // imf 100000 -> 40422
    assert_eq!(
        size_premium_rate(dec!(0), dec!(0.1), dec!(1000), step),
        dec!(3.1622)
    ); // maintenance 0 -> 31622
    // get_margin_ratio: imf 0 leaves the base.
    assert_eq!(
        size_premium_rate(dec!(0.05), dec!(0), dec!(1), step),
        dec!(0.05)
    );
}

#[test]
fn dydx_open_interest_scaled_imf_unit_tests() {
    let ppm = Some(dec!(0.000001));
    let rate =
        |oi: Decimal| open_interest_initial_rate(dec!(0.2), dec!(1000000), dec!(2000000), oi, ppm);
    // TestGetAdjustedInitialMarginPpm, base 200,000 ppm, caps 1,000,000 - 2,000,000.
    assert_eq!(rate(dec!(0)), dec!(0.2));
    assert_eq!(rate(dec!(1500000)), dec!(0.6));
    assert_eq!(rate(dec!(1234567)), dec!(0.387653)); // 0.2 + 0.234567 x 0.8 = 0.3876536, floored to ppm
    assert_eq!(rate(dec!(1000000)), dec!(0.2));
    assert_eq!(rate(dec!(2000000)), dec!(1));
    assert_eq!(rate(dec!(2500000)), dec!(1));
    // Caps 0 / 0 disable the scaling.
    assert_eq!(
        open_interest_initial_rate(dec!(0.2), dec!(0), dec!(0), dec!(1500000), ppm),
        dec!(0.2)
    );
}

#[test]
fn dydx_margin_requirements_scaled_to_sixty_percent() {
    // TestGetMarginRequirementsInQuoteQuantums_2: 0.012 BTC at 36,750 = 441 USDC; open notional
    // 14,999,999.98875 USDC between caps 10,000,000 and 20,000,000; base IMF 20%, fraction 50%.
    let text = r#"
[venue]
name = "dydx test"
settlement_asset = "USDC"
[assets.USDC]
precision = 6
usd_peg = "1"
[margin_rules.tier]
kind = "open_interest"
initial_base = "0.2"
maintenance_fraction = "0.5"
open_interest_lower_usd = "10000000"
open_interest_upper_usd = "20000000"
rate_step = "0.000001"
[instruments.BTC-USD]
kind = "perpetual"
style = "linear"
underlying = "BTC"
settlement = "USDC"
contract_size = "1"
size_step = "0.000001"
margin = "tier"
"#;
    let venue = Venue::from_toml("dydx.toml", text).unwrap();
    let perp = venue.instrument("BTC-USD").unwrap();
    let mut case = exposure(&perp, dec!(0.012), dec!(36750));
    case.open_interest_usd = Some(dec!(14999999.98875));
    let requirement = requirement(&case).unwrap();
    // IMF = 200,000 + floor(800,000 x 0.499999998875) = 599,999 ppm; IMR = 441 x 0.599999 = 264.599559.
    assert_eq!(requirement.initial, dec!(264.599559));
    // MMR from the base IMF: 441 x 0.2 x 0.5 = 44.1, whatever the open interest.
    assert_eq!(requirement.maintenance, dec!(44.1));
}

#[test]
fn deribit_inverse_option_margin_regression_values() {
    let venue = venue("default.toml");
    let per_contract = |name: &str, mark: Decimal| {
        let option = venue.instrument(name).unwrap();
        let case = Exposure {
            instrument: &option,
            size: dec!(-1),
            mark,
            underlying_usd: dec!(100000),
            leverage: None,
            open_interest_usd: None,
            expired: false,
        };
        let requirement = requirement(&case).unwrap();
        (requirement.initial, requirement.maintenance)
    };
    // Short call 110,000, mark 0.01 BTC: OTM/S = 0.1; IM = max(0.15 - 0.1, 0.1) + 0.01; MM = 0.075 + 0.01.
    assert_eq!(
        per_contract("BTC-27DEC26-110000-C", dec!(0.01)),
        (dec!(0.11), dec!(0.085))
    );
    // Short put 90,000, mark 0.005: MM = max(0.075, 0.075 x 0.005) + 0.005; IM = max(0.1 + 0.005, MM).
    assert_eq!(
        per_contract("BTC-27DEC26-90000-P", dec!(0.005)),
        (dec!(0.105), dec!(0.08))
    );
    // At the money call, mark 0.04: IM = 0.15 + 0.04; MM = 0.075 + 0.04.
    assert_eq!(
        per_contract("BTC-27DEC26-100000-C", dec!(0.04)),
        (dec!(0.19), dec!(0.115))
    );
    // Long options need nothing beyond the premium.
    let option = venue.instrument("BTC-27DEC26-100000-C").unwrap();
    let long = requirement(&exposure(&option, dec!(1), dec!(0.04))).unwrap();
    assert_eq!((long.initial, long.maintenance), (dec!(0), dec!(0)));
}

#[test]
fn hyperliquid_btc_second_tier() {
    let venue = venue("hyperliquid.toml");
    let perp = venue.instrument("BTC").unwrap();
    // 2,000 BTC at 100,000 = 200,000,000: MM = 200,000,000 x 2.5% - 1,875,000 = 3,125,000
    // = 150,000,000 x 1.25% + 50,000,000 x 2.5%.
    let requirement = requirement(&exposure(&perp, dec!(2000), dec!(100000))).unwrap();
    assert_eq!(requirement.maintenance, dec!(3125000));
}
