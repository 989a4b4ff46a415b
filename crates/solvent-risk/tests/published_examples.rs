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
    // Notional 1,000,000 (bracket 3: 800,000 - 3,000,000, 0.65%, cum 1,500): MM = 6,500 - 1,500
    // = 5,000 = 300,000 x 0.4% + 500,000 x 0.5% + 200,000 x 0.65% = 1,200 + 2,500 + 1,300.
    let requirement = requirement(&exposure(&perp, dec!(10), dec!(100000))).unwrap();
    assert_eq!(requirement.maintenance, dec!(5000));
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
    // get_margin_ratio::test: imf 0 leaves the base, initial 1000 (10%) and maintenance 500 (5%).
    assert_eq!(
        size_premium_rate(dec!(0.1), dec!(0), dec!(1), step),
        dec!(0.1)
    );
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

/// A dYdX-like venue: one open-interest rule (caps in USD = quote quantums / 1e6), ppm floor.
fn dydx_venue(initial_base: &str, lower_usd: &str, upper_usd: &str) -> Venue {
    let text = format!(
        r#"
[venue]
name = "dydx test"
settlement_asset = "USDC"
[assets.USDC]
precision = 6
usd_peg = "1"
[margin_rules.tier]
kind = "open_interest"
initial_base = "{initial_base}"
maintenance_fraction = "0.5"
open_interest_lower_usd = "{lower_usd}"
open_interest_upper_usd = "{upper_usd}"
rate_step = "0.000001"
[instruments.BTC-USD]
kind = "perpetual"
style = "linear"
underlying = "BTC"
settlement = "USDC"
contract_size = "1"
size_step = "0.000001"
margin = "tier"
"#
    );
    Venue::from_toml("dydx.toml", &text).unwrap()
}

/// `(IM, MM)` of `size` BTC-USD at `price` with `open_interest_usd` on `venue`, each rounded up to
/// the quote quantum (1e-6 USDC), as dYdX's `BigMulPpm(.., roundUp = true)`.
fn dydx_requirement(
    venue: &Venue,
    size: Decimal,
    price: Decimal,
    open_interest_usd: Decimal,
) -> (Decimal, Decimal) {
    let perp = venue.instrument("BTC-USD").unwrap();
    let mut case = exposure(&perp, size, price);
    case.open_interest_usd = Some(open_interest_usd);
    let r = requirement(&case).unwrap();
    (
        solvent_core::rounding::requirement(r.initial, 6),
        solvent_core::rounding::requirement(r.maintenance, 6),
    )
}

#[test]
fn dydx_margin_requirements_without_scaling_at_full_scale_and_realistic() {
    // TestGetMarginRequirementsInQuoteQuantums_2, the three rows beside "scaled to 60%": 0.012 BTC
    // (12,000 base quantums at atomic resolution -6) at 36,750 = notional 441 USDC
    // (441,000,000 quote quantums); base IMF 200,000 ppm, maintenance fraction 500,000 ppm.
    let (size, price) = (dec!(0.012), dec!(36750));
    // MMR in every row from the base IMF: 441 x 0.2 x 0.5 = 44.1 USDC (44,100,000 quantums).
    let mmr = dec!(44.1);

    // "no OIMF": caps 0 / 0 disable the scaling. IMR = 441 x 0.2 = 88.2 (88,200,000 quantums).
    let plain = dydx_venue("0.2", "0", "0");
    assert_eq!(
        dydx_requirement(&plain, size, price, dec!(20000000)),
        (dec!(88.2), mmr)
    );

    // "scaled to 100%": open interest 1,000,000,000 base quantums = 1,000 BTC x 36,750
    // = 36,750,000 USDC, above the upper cap 20e12 quantums = 20,000,000 USDC: IMF 1,000,000 ppm,
    // IMR = the notional, 441 USDC (441,000,000 quantums).
    let caps_10_20 = dydx_venue("0.2", "10000000", "20000000");
    assert_eq!(
        dydx_requirement(&caps_10_20, size, price, dec!(36750000)),
        (dec!(441), mmr)
    );

    // "realistic": open interest 1,123,456,789 base quantums x 36,750 = 41,287,036,995,750 quote
    // quantums = 41,287,036.99575 USDC, caps 25e12 / 50e12 quantums (25,000,000 / 50,000,000 USDC):
    // IMF = 200,000 + floor(800,000 x 16,287,036.99575 / 25,000,000) = 200,000 + floor(521,185.18...)
    // = 721,185 ppm; IMR = 441 x 0.721185 = 318.042585 USDC (318,042,585 quantums).
    let caps_25_50 = dydx_venue("0.2", "25000000", "50000000");
    assert_eq!(
        dydx_requirement(&caps_25_50, size, price, dec!(41287036.99575)),
        (dec!(318.042585), mmr)
    );
}

#[test]
fn dydx_initial_margin_quote_quantums_unit_tests() {
    // TestGetInitialMarginQuoteQuantums: base 200,000 ppm, notional 500,000 quote quantums
    // = 0.5 USDC (here 0.00001 BTC at 50,000); caps and open interest in quote quantums / 1e6.
    let (size, price) = (dec!(0.00001), dec!(50000));
    let im = |venue: &Venue, oi: Decimal| dydx_requirement(venue, size, price, oi).0;
    // Caps 1e12 / 2e12 (1 / 2 million USDC), OI 1.5e12: IMF 0.2 + 0.5 x 0.8 = 60%; 300,000 quantums.
    assert_eq!(
        im(&dydx_venue("0.2", "1000000", "2000000"), dec!(1500000)),
        dec!(0.3)
    );
    // Caps 25e12 / 50e12, OI 80e12: above the upper cap, IMF 100%; 500,000 quantums.
    let caps_25_50 = dydx_venue("0.2", "25000000", "50000000");
    assert_eq!(im(&caps_25_50, dec!(80000000)), dec!(0.5));
    // OI at the lower cap 25e12: the base IMF 20%; 100,000 quantums.
    assert_eq!(im(&caps_25_50, dec!(25000000)), dec!(0.1));
    // Caps 25e12 / 60e12, OI 28,123,456,789,123 quantums: IMF = 200,000 + floor(800,000 x
    // 3,123,456.789123 / 35,000,000) = 200,000 + floor(71,393.29...) = 271,393 ppm;
    // 500,000 x 0.271393 = 135,696.5 -> rounded up to 135,697 quantums.
    assert_eq!(
        im(
            &dydx_venue("0.2", "25000000", "60000000"),
            dec!(28123456.789123)
        ),
        dec!(0.135697)
    );
    // An initial margin of 56.7243% (567,243 ppm) on 123,456 quantums (0.000001 BTC at 123,456):
    // 70,029.5518... -> rounded up to 70,030 quantums.
    let no_caps = dydx_venue("0.567243", "0", "0");
    assert_eq!(
        dydx_requirement(&no_caps, dec!(0.000001), dec!(123456), dec!(0)).0,
        dec!(0.07003)
    );
    // 10% of one quantum (0.000001 BTC at 1 USDC) is 0.1 quantum -> rounded up to 1.
    let ten_percent = dydx_venue("0.1", "0", "0");
    assert_eq!(
        dydx_requirement(&ten_percent, dec!(0.000001), dec!(1), dec!(0)).0,
        dec!(0.000001)
    );
}

#[test]
fn dydx_maintenance_uses_the_base_imf_whatever_the_open_interest() {
    // TestGetMarginRequirementsInQuoteQuantums (lib_test.go): price 123,456,789,123 x 1e-5
    // = 1,234,567.89123 USDC, atomic resolution 4 (1 base quantum = 10,000 coins), 1 base
    // quantum: notional 12,345,678,912.3 USDC (12,345,678,912,300,000 quote quantums). Base IMF
    // 200,000 ppm, maintenance fraction 500,000. Perpetual open interest 1e12 base quantums
    // = 1e16 coins x 1,234,567.89123 = 12,345,678,912,300,000,000,000 USDC.
    let (size, price) = (dec!(10000), dec!(1234567.89123));
    let oi = dec!(12345678912300000000000);
    // No caps: IMR = 20% = 2,469,135,782.46 USDC; MMR = 10% = 1,234,567,891.23 USDC.
    assert_eq!(
        dydx_requirement(&dydx_venue("0.2", "0", "0"), size, price, oi),
        (dec!(2469135782.46), dec!(1234567891.23))
    );
    // Caps 1e12 / 2e12 quantums (1 / 2 million USDC), far below the OI: IMF 100%, IMR = the
    // notional 12,345,678,912.3 USDC; MMR unchanged, from the base IMF.
    assert_eq!(
        dydx_requirement(&dydx_venue("0.2", "1000000", "2000000"), size, price, oi),
        (dec!(12345678912.3), dec!(1234567891.23))
    );
}

#[test]
fn bybit_btcusdt_tier_three_uses_the_published_deduction() {
    let venue = venue("default.toml");
    let perp = venue.instrument("BTCUSDT").unwrap();
    // 30 BTC at 100,000 = 3,000,000 USDT, tier 3 (2,600,000 to 3,200,000, 0.63%, deduction 3,020):
    // MM = 3,000,000 x 0.63% - 3,020 = 18,900 - 3,020 = 15,880
    // = 2,000,000 x 0.5% + 600,000 x 0.56% + 400,000 x 0.63% = 10,000 + 3,360 + 2,520.
    let mut case = exposure(&perp, dec!(30), dec!(100000));
    case.leverage = Some(dec!(80));
    let requirement = requirement(&case).unwrap();
    assert_eq!(requirement.maintenance, dec!(15880));
    // IM at tier 3's 80x: 3,000,000 / 80 = 37,500.
    assert_eq!(requirement.initial, dec!(37500));
}

/// `(notionalCap, maintMarginRatio, cum)` of one bracket.
type Bracket = (u64, &'static str, u64);

/// Binance's published brackets (freqtrade snapshot of `GET /fapi/v1/leverageBracket`, commit
/// 6bc35af3, 2026-03-26): `(notionalCap, maintMarginRatio, cum)` per bracket, as the venue
/// publishes them, independent of the venue file.
const BINANCE_BRACKETS: [(&str, &[Bracket]); 6] = [
    (
        "BTCUSDT",
        &[
            (300_000, "0.004", 0),
            (800_000, "0.005", 300),
            (3_000_000, "0.0065", 1_500),
            (12_000_000, "0.01", 12_000),
            (70_000_000, "0.02", 132_000),
            (100_000_000, "0.025", 482_000),
            (230_000_000, "0.05", 2_982_000),
            (480_000_000, "0.1", 14_482_000),
            (600_000_000, "0.125", 26_482_000),
            (800_000_000, "0.15", 41_482_000),
            (1_200_000_000, "0.25", 121_482_000),
            (1_800_000_000, "0.5", 421_482_000),
        ],
    ),
    (
        "ETHUSDT",
        &[
            (300_000, "0.004", 0),
            (800_000, "0.005", 300),
            (3_000_000, "0.0065", 1_500),
            (12_000_000, "0.01", 12_000),
            (50_000_000, "0.02", 132_000),
            (65_000_000, "0.025", 382_000),
            (150_000_000, "0.05", 2_007_000),
            (320_000_000, "0.1", 9_507_000),
            (400_000_000, "0.125", 17_507_000),
            (530_000_000, "0.15", 27_507_000),
            (800_000_000, "0.25", 80_507_000),
            (1_200_000_000, "0.5", 280_507_000),
        ],
    ),
    (
        "SOLUSDT",
        &[
            (50_000, "0.005", 0),
            (400_000, "0.0065", 75),
            (1_000_000, "0.01", 1_475),
            (4_000_000, "0.02", 11_475),
            (8_000_000, "0.025", 31_475),
            (40_000_000, "0.05", 231_475),
            (80_000_000, "0.1", 2_231_475),
            (100_000_000, "0.125", 4_231_475),
            (200_000_000, "0.25", 16_731_475),
            (400_000_000, "0.5", 66_731_475),
        ],
    ),
    (
        "XRPUSDT",
        &[
            (40_000, "0.005", 0),
            (80_000, "0.006", 40),
            (150_000, "0.01", 360),
            (400_000, "0.0125", 735),
            (1_000_000, "0.02", 3_735),
            (2_000_000, "0.025", 8_735),
            (10_000_000, "0.05", 58_735),
            (20_000_000, "0.1", 558_735),
            (25_000_000, "0.125", 1_058_735),
            (50_000_000, "0.25", 4_183_735),
            (100_000_000, "0.5", 16_683_735),
        ],
    ),
    (
        "BNBUSDT",
        &[
            (10_000, "0.005", 0),
            (200_000, "0.006", 10),
            (400_000, "0.01", 810),
            (1_500_000, "0.02", 4_810),
            (3_000_000, "0.025", 12_310),
            (15_000_000, "0.05", 87_310),
            (30_000_000, "0.1", 837_310),
            (37_500_000, "0.125", 1_587_310),
            (75_000_000, "0.25", 6_274_810),
            (150_000_000, "0.5", 25_024_810),
        ],
    ),
    (
        "DOGEUSDT",
        &[
            (80_000, "0.0065", 0),
            (150_000, "0.01", 280),
            (750_000, "0.0125", 655),
            (2_000_000, "0.02", 6_280),
            (4_000_000, "0.025", 16_280),
            (20_000_000, "0.05", 116_280),
            (40_000_000, "0.1", 1_116_280),
            (50_000_000, "0.125", 2_116_280),
            (100_000_000, "0.25", 8_366_280),
            (200_000_000, "0.5", 33_366_280),
        ],
    ),
];

#[test]
fn binance_usdm_every_published_maintenance_amount() {
    let venue = venue("binance-usdm.toml");
    for (symbol, brackets) in BINANCE_BRACKETS {
        let perp = venue.instrument(symbol).unwrap();
        let mut previous: Option<(Decimal, Decimal, Decimal)> = None;
        for &(cap, mmr, cum) in brackets {
            let (cap, mmr, cum) = (
                Decimal::from(cap),
                mmr.parse::<Decimal>().unwrap(),
                Decimal::from(cum),
            );
            // The published cum follows from the rates: cum_n = cum_(n-1) + floor_n x (mmr_n - mmr_(n-1)).
            let expected_cum = previous.map_or(Decimal::ZERO, |(floor, prev_mmr, prev_cum)| {
                prev_cum + floor * (mmr - prev_mmr)
            });
            assert_eq!(cum, expected_cum, "{symbol} bracket up to {cap}");
            // At the bracket's cap (price 1, size = notional), MM = cap x mmr - cum.
            let at_cap = requirement(&exposure(&perp, cap, dec!(1))).unwrap();
            assert_eq!(at_cap.maintenance, cap * mmr - cum, "{symbol} cap {cap}");
            previous = Some((cap, mmr, cum));
        }
    }
    // BTCUSDT's last bracket by hand: 1,800,000,000 x 50% - 421,482,000 = 478,518,000.
    let btc = venue.instrument("BTCUSDT").unwrap();
    let top = requirement(&exposure(&btc, dec!(18000), dec!(100000))).unwrap();
    assert_eq!(top.maintenance, dec!(478518000));
}

#[test]
fn binance_usdm_new_contracts_worked_examples() {
    let venue = venue("binance-usdm.toml");
    // [computed, not published] ETHUSDT, 20 ETH at 3,000 = 60,000 (bracket 1, 0.4%): MM 240,
    // IM at the default 20x 3,000.
    let eth = venue.instrument("ETHUSDT").unwrap();
    let small = requirement(&exposure(&eth, dec!(20), dec!(3000))).unwrap();
    assert_eq!((small.initial, small.maintenance), (dec!(3000), dec!(240)));
    // SOLUSDT, 10,000 SOL at 150 = 1,500,000 (bracket 4: 1,000,000 - 4,000,000, 2%, cum 11,475):
    // MM = 30,000 - 11,475 = 18,525 = 50,000 x 0.5% + 350,000 x 0.65% + 600,000 x 1% + 500,000 x 2%
    // = 250 + 2,275 + 6,000 + 10,000.
    let sol = venue.instrument("SOLUSDT").unwrap();
    let mid = requirement(&exposure(&sol, dec!(10000), dec!(150))).unwrap();
    assert_eq!(mid.maintenance, dec!(18525));
    // DOGEUSDT short 10,000,000 DOGE at 0.2 = 2,000,000, the cap of bracket 4 (2%, cum 6,280):
    // MM = 40,000 - 6,280 = 33,720; IM at 20x (bracket max 25x) = 100,000.
    let doge = venue.instrument("DOGEUSDT").unwrap();
    let short = requirement(&exposure(&doge, dec!(-10000000), dec!(0.2))).unwrap();
    assert_eq!(
        (short.initial, short.maintenance),
        (dec!(100000), dec!(33720))
    );
}

#[test]
fn hyperliquid_sol_and_eth_second_tiers() {
    let venue = venue("hyperliquid.toml");
    // SOL: 500,000 SOL at 200 = 100,000,000 (tier 2, mmr 5%, deduction 70,000,000 x 2.5% = 1,750,000):
    // MM = 5,000,000 - 1,750,000 = 3,250,000 = 70,000,000 x 2.5% + 30,000,000 x 5%.
    let sol = venue.instrument("SOL").unwrap();
    let requirement_sol = requirement(&exposure(&sol, dec!(500000), dec!(200))).unwrap();
    assert_eq!(requirement_sol.maintenance, dec!(3250000));
    // ETH: 50,000 ETH at 3,000 = 150,000,000 (tier 2, mmr 1/30, deduction 100,000,000 x (1/30 - 2%)
    // = 1,333,333.33...): MM = 5,000,000 - 1,333,333.33... = 3,666,666.66... = 100,000,000 x 2%
    // + 50,000,000 / 30. mmr 1/30 is written to 28 decimals, so MM is exact to the USDC micro-unit
    // once rounded up: 3,666,666.666667.
    let eth = venue.instrument("ETH").unwrap();
    let requirement_eth = requirement(&exposure(&eth, dec!(50000), dec!(3000))).unwrap();
    assert_eq!(
        solvent_core::rounding::requirement(requirement_eth.maintenance, 6),
        dec!(3666666.666667)
    );
}

#[test]
fn hyperliquid_isolated_long_liquidation_price_regression() {
    // docs/published-examples.md 8 [computed, not published]: isolated long 1 BTC at mark 100,000
    // with 2,500 USDC margin (40x), mmr 1.25% (tier 1): MM = 1,250;
    // liq = 100,000 - (2,500 - 1,250) / 1 / (1 - 0.0125) = 100,000 - 1,265.8227848...
    // = 98,734.1772151..., which the report rounds up for a long (toward the mark, the
    // conservative side) to its 3 price decimals, as tests/liquidation_prices.rs: 98,734.178.
    let venue = venue("hyperliquid.toml");
    let portfolio = Portfolio::from_json(
        "p.json",
        r#"{"account":"h","mode":"cross","collateral":{},"positions":[
            {"instrument":"BTC","size":"1","entry_price":"100000","isolated_margin":"2500","leverage":40}]}"#,
        &venue,
    )
    .unwrap();
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","USDC":"1"}}"#,
    )
    .unwrap();
    let report = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
    let position = &report.positions[0];
    assert_eq!(position.maintenance_margin.value(), dec!(1250));
    assert_eq!(position.liquidation_price.unwrap().value(), dec!(98734.178));
}

/// Bybit help "Liquidation Price (USDT Contract)", isolated margin, Example 1 (Long): 1 BTC at
/// 20,000 USDT at 50x, MMR 0.5%, no extra margin: IM = 20,000 / 50 = 400, MM = 20,000 x 0.5%
/// = 100, LP = 20,000 - (400 - 100) = 19,700 (Bybit takes MM on the entry value:
/// `liquidation_maintenance = "at_entry_value"`). The short, by the page's formula
/// [computed, not published]: 20,000 + 300 = 20,300. Binance's convention (MM at the
/// liquidation price) would give 19,698.49... and 20,298.50... instead.
#[test]
fn bybit_isolated_liquidation_price_takes_maintenance_on_the_entry_value() {
    let venue = venue("bybit-linear.toml");
    let liquidation = |size: &str| {
        let portfolio = Portfolio::from_json(
            "p.json",
            &format!(
                r#"{{"account":"b","mode":"cross","collateral":{{}},"positions":[
                {{"instrument":"BTCUSDT","size":"{size}","entry_price":"20000","isolated_margin":"400","leverage":50}}]}}"#
            ),
            &venue,
        )
        .unwrap();
        let market = Market::from_json(
            "m.json",
            r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"20000"},"mark":{"BTCUSDT":"20000"}}"#,
        )
        .unwrap();
        let report = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
        let position = &report.positions[0];
        assert_eq!(position.maintenance_margin.value(), dec!(100));
        position.liquidation_price.unwrap().value()
    };
    assert_eq!(liquidation("1"), dec!(19700));
    assert_eq!(liquidation("-1"), dec!(20300));
}

/// Gate's published rule (support reply on Gate's forum, gatenode.pro/post/status/3870211,
/// read 2026-12-04): "liquidation price = (average opening price ± margin / contract multiplier /
/// position) / [1 ± (maintenance margin ratio + Taker fee Rate)]", "long is subtracted, and short
/// is added", "Taker rate = 0.075%"; OKX's isolated margin ratio has the same denominator,
/// "Face value × |Contracts| × Mark price × (Tiered margin rate + fee rate)". No numeric example
/// is published; the figures are [computed, not published] from that formula, on the default
/// venue's BTCUSDT (tier 1, mmr 0.5%) with `liquidation_fee_rate = "0.00075"`:
/// 1 BTC at 20,000 with 400 USDT of margin (50x).
#[test]
fn fee_to_close_joins_the_maintenance_rate_in_the_liquidation_price() {
    let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let with_fee = text.replacen(
        "[venue]\n",
        "[venue]\nliquidation_fee_rate = \"0.00075\"\n",
        1,
    );
    assert_ne!(with_fee, text, "the [venue] table must be found");
    let liquidation = |venue_text: &str, position: &str, collateral: &str| {
        let venue = Venue::from_toml("v.toml", venue_text).unwrap();
        let portfolio = Portfolio::from_json(
            "p.json",
            &format!(
                r#"{{"account":"g","mode":"cross","collateral":{{{collateral}}},"positions":[{position}]}}"#
            ),
            &venue,
        )
        .unwrap();
        let market = Market::from_json(
            "m.json",
            r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"20000"},"mark":{"BTCUSDT":"20000"}}"#,
        )
        .unwrap();
        let report = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
        let position = &report.positions[0];
        // The maintenance margin itself is not changed by the fee: 20,000 x 0.5% = 100.
        assert_eq!(position.maintenance_margin.value(), dec!(100));
        position.liquidation_price.unwrap().value()
    };
    let isolated = |size: &str| {
        format!(
            r#"{{"instrument":"BTCUSDT","size":"{size}","entry_price":"20000","isolated_margin":"400","leverage":50}}"#
        )
    };
    // Long: (20,000 - 400 / 1 / 1) / (1 - (0.005 + 0.00075)) = 19,600 / 0.99425
    // = 19,713.351772..., rounded up for a long to eight significant digits.
    assert_eq!(liquidation(&with_fee, &isolated("1"), ""), dec!(19713.352));
    // Short: (20,000 + 400) / (1 + 0.00575) = 20,283.370618..., rounded down for a short.
    assert_eq!(liquidation(&with_fee, &isolated("-1"), ""), dec!(20283.37));
    // Without the fee (the default): 19,600 / 0.995 = 19,698.492462... and
    // 20,400 / 1.005 = 20,298.507462...: the fee moves each price about 15 USDT toward the mark.
    assert_eq!(liquidation(&text, &isolated("1"), ""), dec!(19698.493));
    assert_eq!(liquidation(&text, &isolated("-1"), ""), dec!(20298.507));
    // A cross position whose pool holds the same 400 USDT meets the same equation (equity
    // 400 + (p - 20,000) against 0.005 p + 0.00075 p), so the same prices.
    let cross = |size: &str| {
        format!(r#"{{"instrument":"BTCUSDT","size":"{size}","entry_price":"20000","leverage":50}}"#)
    };
    assert_eq!(
        liquidation(&with_fee, &cross("1"), r#""USDT":"400""#),
        dec!(19713.352)
    );
    assert_eq!(
        liquidation(&with_fee, &cross("-1"), r#""USDT":"400""#),
        dec!(20283.37)
    );
}

/// OKX BTC-USDT-SWAP's tick is 0.1 ("Tick Size 0.1", OKX help 7053456733325): an isolated
/// liquidation price lies on that grid, on the side of the position's risk. 100 contracts
/// (1 BTC at 0.01) from 20,000 with 400 USDT (50x), tier 1 (mmr 0.5%) and the 0.05% fee to close
/// [computed, not published]: long (20,000 - 400) / (1 - 0.0055) = 19,708.396179..., shown at
/// the tick at or above it, 19,708.4 (the grid's last price before liquidation); short (20,000 +
/// 400) / (1 + 0.0055) = 20,288.413724..., shown at the tick at or below it, 20,288.4.
#[test]
fn okx_liquidation_prices_lie_on_the_contracts_price_tick() {
    let path = format!("{}/../../venues/okx-swap.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let without_tick = text.replacen("tick_size = \"0.1\"", "", 1);
    assert_ne!(without_tick, text, "the tick must be in the file");
    let liquidation = |venue_text: &str, size: &str| {
        let venue = Venue::from_toml("okx-swap.toml", venue_text).unwrap();
        let portfolio = Portfolio::from_json(
            "p.json",
            &format!(
                r#"{{"account":"o","mode":"cross","collateral":{{}},"positions":[{{"instrument":"BTC-USDT-SWAP","size":"{size}","entry_price":"20000","isolated_margin":"400","leverage":50}}]}}"#
            ),
            &venue,
        )
        .unwrap();
        let market = Market::from_json(
            "m.json",
            r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"20000","USDT":"1"},"mark":{"BTC-USDT-SWAP":"20000"}}"#,
        )
        .unwrap();
        let report = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
        report.positions[0].liquidation_price.unwrap().value()
    };
    assert_eq!(liquidation(&text, "100"), dec!(19708.4));
    assert_eq!(liquidation(&text, "-100"), dec!(20288.4));
    // Without the tick, eight significant digits toward the risk, as for any venue.
    assert_eq!(liquidation(&without_tick, "100"), dec!(19708.397));
    assert_eq!(liquidation(&without_tick, "-100"), dec!(20288.413));
}

#[test]
fn dydx_venue_file_floors_the_scaled_imf_to_ppm_and_large_cap_needs_no_open_interest() {
    let venue = venue("dydx-v4.toml");
    // Large-Cap (caps 0 / 0): no open interest in the market, IMF 2%, MMF 2% x 60% = 1.2%.
    // 1 BTC at 100,000: IM 2,000, MM 1,200.
    let btc = venue.instrument("BTC-USD").unwrap();
    let large = requirement(&exposure(&btc, dec!(1), dec!(100000))).unwrap();
    assert_eq!((large.initial, large.maintenance), (dec!(2000), dec!(1200)));
    // Small-Cap (10%, caps 20,000,000 - 50,000,000), 1,000 LINK at 14.5 = 14,500 USDC, open
    // interest 35,123,456.789 USDC [computed, not published]: scale = 15,123,456.789 / 30,000,000
    // = 0.5041152263; increment 0.9 x scale = 0.45370370367, floored to ppm 0.453703 (dYdX's
    // integer ppm); IMF 0.553703; IM = 14,500 x 0.553703 = 8,028.6935 (unfloored: 8,028.7037...).
    // MM from the base IMF: 14,500 x 10% x 50% = 725.
    let link = venue.instrument("LINK-USD").unwrap();
    let mut case = exposure(&link, dec!(1000), dec!(14.5));
    case.open_interest_usd = Some(dec!(35123456.789));
    let small = requirement(&case).unwrap();
    assert_eq!(small.initial, dec!(8028.6935));
    assert_eq!(small.maintenance, dec!(725));
    // Small-Cap without open interest is refused: the scaling needs it.
    assert!(requirement(&exposure(&link, dec!(1000), dec!(14.5))).is_err());
}

#[test]
fn drift_venue_file_floors_the_size_premium_to_margin_precision() {
    // venues/drift.toml SOL-PERP (base ratios 5% / 2.5%, imf 0.00005: ASSUMPTION values, see the
    // file), rate_step 0.0001 (Drift MARGIN_PRECISION). 50,000 SOL at 150 = 7,500,000 USDC
    // [computed, not published]: sqrt(50,000) = 223.6067977...;
    // IM ratio max(0.05, floor4(0.04 + 0.00005 x 223.6068 = 0.0511803...)) = 0.0511 -> 383,250
    // (exact ratio: 383,852.549...); MM ratio max(0.025, floor4(0.0311803...)) = 0.0311 -> 233,250.
    let venue = venue("drift.toml");
    let perp = venue.instrument("SOL-PERP").unwrap();
    let large = requirement(&exposure(&perp, dec!(50000), dec!(150))).unwrap();
    assert_eq!(
        (large.initial, large.maintenance),
        (dec!(383250), dec!(233250))
    );
}

/// Bybit's published BTCUSDT ladder ("Margin Parameters" page, read 2026-12-04):
/// `(risk limit, max leverage, maintenance margin rate, maintenance margin deduction)`.
const BYBIT_BTCUSDT: [(u64, u32, &str, u64); 20] = [
    (2_000_000, 100, "0.005", 0),
    (2_600_000, 90, "0.0056", 1_200),
    (3_200_000, 80, "0.0063", 3_020),
    (3_800_000, 75, "0.0067", 4_300),
    (4_400_000, 70, "0.0071", 5_820),
    (5_000_000, 65, "0.0077", 8_460),
    (5_600_000, 55, "0.0091", 15_460),
    (8_500_000, 50, "0.01", 20_500),
    (10_000_000, 45, "0.013", 46_000),
    (14_000_000, 40, "0.015", 66_000),
    (20_000_000, 35, "0.016", 80_000),
    (28_000_000, 30, "0.02", 160_000),
    (38_000_000, 25, "0.025", 300_000),
    (50_000_000, 20, "0.029", 452_000),
    (55_000_000, 19, "0.03", 502_000),
    (60_000_000, 18, "0.035", 777_000),
    (65_000_000, 17, "0.036", 837_000),
    (70_000_000, 16, "0.038", 967_000),
    (75_000_000, 15, "0.04", 1_107_000),
    (80_000_000, 14, "0.045", 1_482_000),
];

#[test]
fn bybit_btcusdt_every_published_deduction_and_tier() {
    let venue = venue("bybit-linear.toml");
    let perp = venue.instrument("BTCUSDT").unwrap();
    let mut previous: Option<(Decimal, Decimal, Decimal)> = None;
    for (limit, leverage, mmr, deduction) in BYBIT_BTCUSDT {
        let (limit, mmr, deduction) = (
            Decimal::from(limit),
            mmr.parse::<Decimal>().unwrap(),
            Decimal::from(deduction),
        );
        // Bybit's rule: deduction_n = limit_(n-1) x (mmr_n - mmr_(n-1)) + deduction_(n-1).
        let expected = previous.map_or(Decimal::ZERO, |(prev_limit, prev_mmr, prev_deduction)| {
            prev_limit * (mmr - prev_mmr) + prev_deduction
        });
        assert_eq!(deduction, expected, "tier up to {limit}");
        // At the tier's limit (price 1), MM = limit x mmr - deduction and IM = limit / max leverage.
        let mut case = exposure(&perp, limit, dec!(1));
        case.leverage = Some(Decimal::from(leverage));
        let at_limit = requirement(&case).unwrap();
        assert_eq!(
            at_limit.maintenance,
            limit * mmr - deduction,
            "limit {limit}"
        );
        assert_eq!(
            at_limit.initial,
            limit / Decimal::from(leverage),
            "limit {limit}"
        );
        previous = Some((limit, mmr, deduction));
    }
}

#[test]
fn bybit_btcusdt_large_positions_reach_the_upper_tiers() {
    let venue = venue("bybit-linear.toml");
    let perp = venue.instrument("BTCUSDT").unwrap();
    // [computed, not published] 90 BTC at 100,000 = 9,000,000 (tier 9: 8,500,000 - 10,000,000,
    // 1.3%, deduction 46,000): MM = 117,000 - 46,000 = 71,000 = the bracket sum 2,000,000 x 0.5%
    // + 600,000 x 0.56% + 600,000 x 0.63% + 600,000 x 0.67% + 600,000 x 0.71% + 600,000 x 0.77%
    // + 600,000 x 0.91% + 2,900,000 x 1% + 500,000 x 1.3% = 10,000 + 3,360 + 3,780 + 4,020
    // + 4,260 + 4,620 + 5,460 + 29,000 + 6,500. (The ladder that ended at 3,200,000 gave
    // 9,000,000 x 0.63% - 3,020 = 53,680.)
    let tier_nine = requirement(&exposure(&perp, dec!(90), dec!(100000))).unwrap();
    assert_eq!(tier_nine.maintenance, dec!(71000));
    // 700 BTC at 100,000 = 70,000,000, the limit of tier 18 (3.8%, deduction 967,000):
    // MM = 2,660,000 - 967,000 = 1,693,000.
    let whale = requirement(&exposure(&perp, dec!(-700), dec!(100000))).unwrap();
    assert_eq!(whale.maintenance, dec!(1693000));
}

#[test]
fn hyperliquid_asset_group_tables() {
    let venue = venue("hyperliquid.toml");
    let mm = |name: &str, size: Decimal, price: Decimal| {
        let perp = venue.instrument(name).unwrap();
        requirement(&exposure(&perp, size, price))
            .unwrap()
            .maintenance
    };
    // [computed from the published rule] XRP, table 53 (40M: 20x -> 10x): 20,000,000 XRP at 2.5
    // = 50,000,000; deduction 40,000,000 x (5% - 2.5%) = 1,000,000; MM = 2,500,000 - 1,000,000
    // = 1,500,000 = 40,000,000 x 2.5% + 10,000,000 x 5%.
    assert_eq!(mm("XRP", dec!(20000000), dec!(2.5)), dec!(1500000));
    // DOGE, table 52 (20M: 10x -> 5x): 125,000,000 DOGE at 0.2 = 25,000,000; deduction
    // 20,000,000 x (10% - 5%) = 1,000,000; MM = 2,500,000 - 1,000,000 = 1,500,000.
    assert_eq!(mm("DOGE", dec!(125000000), dec!(0.2)), dec!(1500000));
    // BNB, table 51 (3M: 10x -> 5x): 5,000 BNB at 800 = 4,000,000; deduction 3,000,000 x 5%
    // = 150,000; MM = 400,000 - 150,000 = 250,000 = 3,000,000 x 5% + 1,000,000 x 10%.
    assert_eq!(mm("BNB", dec!(5000), dec!(800)), dec!(250000));
    // Below the boundary the first tier alone: 1,000 BNB at 800 = 800,000 x 5% = 40,000.
    assert_eq!(mm("BNB", dec!(1000), dec!(800)), dec!(40000));
}

// ---- Binance COIN-M (venues/binance-coinm.toml), docs/published-examples.md section 10 --------

/// The margin report of a one-position Binance COIN-M portfolio (BTC wallet) at `mark`.
fn coinm_report(position: &str, collateral: &str, mark: &str) -> solvent_risk::MarginReport {
    let venue = venue("binance-coinm.toml");
    let portfolio = Portfolio::from_json(
        "p.json",
        &format!(
            r#"{{"account":"cm","mode":"cross","collateral":{{{collateral}}},"positions":[{position}]}}"#
        ),
        &venue,
    )
    .unwrap();
    let market = Market::from_json(
        "m.json",
        &format!(
            r#"{{"timestamp":"2026-01-06T08:00:00Z","index":{{"BTC":"{mark}"}},"mark":{{"BTCUSD_PERP":"{mark}"}}}}"#
        ),
    )
    .unwrap();
    margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap()
}

/// Binance FAQ "How to Calculate Liquidation Price of Coin-M Futures Contracts" (es-MX copy,
/// read 2026-12-04): "you have 100 BTCUSDT [sic: BTCUSD] Perpetual contracts, and the latest Mark
/// Price is 25,000 USDT. The position's notional value is calculated as 100 * 100 / 25,000 = 0.4
/// BTC, which is in margin level 1 ... Maintenance Margin = 100 * 100 / 25,000 * 0.4% - 0 =
/// 0.0016 BTC". In Solvent the size is the USD amount, 100 contracts of 100 USD = 10,000.
#[test]
fn binance_coinm_maintenance_margin_of_the_faq_example() {
    let venue = venue("binance-coinm.toml");
    let perp = venue.instrument("BTCUSD_PERP").unwrap();
    let requirement = requirement(&exposure(&perp, dec!(10000), dec!(25000))).unwrap();
    // Notional 10,000 / 25,000 = 0.4 BTC, bracket 1 (0-5 BTC, 0.4%, cum 0): 0.4 x 0.4% - 0.
    assert_eq!(requirement.maintenance, dec!(0.0016));
    // [computed, not published] IM at the bracket's 125x (no leverage named): 0.4 / 125.
    assert_eq!(requirement.initial, dec!(0.0032));
    // The report shows the same figure in BTC, the settlement coin.
    let report = coinm_report(
        r#"{"instrument":"BTCUSD_PERP","size":"10000","entry_price":"25000"}"#,
        r#""BTC":"1""#,
        "25000",
    );
    assert_eq!(report.positions[0].maintenance_margin.value(), dec!(0.0016));
    assert_eq!(report.settlement_asset, "BTC");
}

/// One published COIN-M bracket: (bracketNotionalCap in coin, bracketMaintenanceMarginRate,
/// cumFastMaintenanceAmount in coin).
type CoinBracket = (&'static str, &'static str, &'static str);

/// Every maintenance amount of the eight brackets tables, as published in the capture of Binance's
/// brackets endpoint (venues/binance-coinm.toml names it), checked against the rates and at
/// every bracket's cap.
#[test]
fn binance_coinm_every_published_maintenance_amount() {
    let venue = venue("binance-coinm.toml");
    let tables: [(&str, &[CoinBracket]); 8] = [
        (
            "BTCUSD_PERP",
            &[
                ("5", "0.004", "0"),
                ("10", "0.005", "0.005"),
                ("25", "0.01", "0.055"),
                ("150", "0.025", "0.43"),
                ("400", "0.05", "4.18"),
                ("950", "0.1", "24.18"),
                ("1200", "0.125", "47.93"),
                ("1600", "0.15", "77.93"),
                ("2400", "0.25", "237.93"),
                ("3500", "0.5", "837.93"),
            ],
        ),
        (
            "ETHUSD_PERP",
            &[
                ("15", "0.005", "0"),
                ("100", "0.0065", "0.0225"),
                ("400", "0.01", "0.3725"),
                ("1500", "0.025", "6.3725"),
                ("5000", "0.05", "43.8725"),
                ("14000", "0.1", "293.8725"),
                ("18000", "0.125", "643.8725"),
                ("24000", "0.15", "1093.8725"),
                ("36000", "0.25", "3493.8725"),
                ("55000", "0.5", "12493.8725"),
            ],
        ),
        (
            "SOLUSD_PERP",
            &[
                ("400", "0.01", "0"),
                ("2300", "0.02", "4"),
                ("4600", "0.025", "15.5"),
                ("23400", "0.05", "130.5"),
                ("37400", "0.1", "1300.5"),
                ("46800", "0.125", "2235.5"),
                ("56100", "0.1667", "4187.06"),
                ("93600", "0.25", "8860.19"),
                ("187200", "0.5", "32260.19"),
            ],
        ),
        (
            "XRPUSD_PERP",
            &[
                ("33100", "0.01", "0"),
                ("165600", "0.02", "331"),
                ("500000", "0.025", "1159"),
                ("2000000", "0.05", "13659"),
                ("3000000", "0.1", "113659"),
                ("5000000", "0.125", "188659"),
                ("10000000", "0.15", "313659"),
                ("20000000", "0.25", "1313659"),
                ("40000000", "0.5", "6313659"),
            ],
        ),
        (
            "DOGEUSD_PERP",
            &[
                ("500000", "0.012", "0"),
                ("2500000", "0.025", "6500"),
                ("5000000", "0.05", "69000"),
                ("10000000", "0.1", "319000"),
                ("20000000", "0.125", "569000"),
                ("50000000", "0.25", "3069000"),
                ("75000000", "0.5", "15569000"),
            ],
        ),
        (
            "BNBUSD_PERP",
            &[
                ("2000", "0.025", "0"),
                ("4000", "0.05", "50"),
                ("10000", "0.05", "50"),
                ("20000", "0.05", "50"),
                ("40000", "0.1", "1050"),
                ("60000", "0.125", "2050"),
                ("100000", "0.15", "3550"),
                ("150000", "0.25", "13550"),
                ("250000", "0.5", "51050"),
            ],
        ),
        (
            "ADAUSD_PERP",
            &[
                ("250000", "0.025", "0"),
                ("500000", "0.0498", "6200"),
                ("1000000", "0.0499", "6250"),
                ("2000000", "0.05", "6350"),
                ("3000000", "0.1", "106350"),
                ("4000000", "0.125", "181350"),
                ("5000000", "0.15", "281350"),
                ("10000000", "0.25", "781350"),
                ("15000000", "0.5", "3281350"),
            ],
        ),
        (
            "LINKUSD_PERP",
            &[
                ("10000", "0.025", "0"),
                ("20000", "0.05", "250"),
                ("40000", "0.05", "250"),
                ("60000", "0.05", "250"),
                ("80000", "0.1", "3250"),
                ("100000", "0.125", "5250"),
                ("150000", "0.15", "7750"),
                ("2000000", "0.25", "22750"),
                ("3000000", "0.5", "522750"),
            ],
        ),
    ];
    for (symbol, brackets) in tables {
        let perp = venue.instrument(symbol).unwrap();
        let mut previous: Option<(Decimal, Decimal, Decimal)> = None;
        for (cap, mmr, cum) in brackets {
            let (cap, mmr, cum): (Decimal, Decimal, Decimal) = (
                cap.parse().unwrap(),
                mmr.parse().unwrap(),
                cum.parse().unwrap(),
            );
            // Binance's rule: cum_n = floor_n x (mmr_n - mmr_(n-1)) + cum_(n-1).
            let expected = previous.map_or(Decimal::ZERO, |(floor, prev_mmr, prev_cum)| {
                prev_cum + floor * (mmr - prev_mmr)
            });
            assert_eq!(cum, expected, "{symbol} bracket up to {cap}");
            // At the cap (mark 1 USD, size = cap USD, so the notional is cap coins).
            let at_cap = requirement(&exposure(&perp, cap, dec!(1))).unwrap();
            assert_eq!(at_cap.maintenance, cap * mmr - cum, "{symbol} cap {cap}");
            previous = Some((cap, mmr, cum));
        }
    }
}

/// [computed, not published] ETHUSD_PERP, -1,000,000 USD (100,000 contracts of 10 USD) at 2,000:
/// 500 ETH, bracket 4 (400-1,500 ETH, 2.5%, cum 6.3725): MM = 12.5 - 6.3725 = 6.1275 ETH, the
/// bracket sum 15 x 0.5% + 85 x 0.65% + 300 x 1% + 100 x 2.5%; IM at the bracket's 20x: 25 ETH.
#[test]
fn binance_coinm_bracket_sums() {
    let venue = venue("binance-coinm.toml");
    let eth = venue.instrument("ETHUSD_PERP").unwrap();
    let eth_short = requirement(&exposure(&eth, dec!(-1000000), dec!(2000))).unwrap();
    assert_eq!(
        eth_short.maintenance,
        dec!(0.075) + dec!(0.5525) + dec!(3) + dec!(2.5)
    );
    assert_eq!(eth_short.maintenance, dec!(6.1275));
    assert_eq!(eth_short.initial, dec!(25));
    // [computed, not published] SOLUSD_PERP, short 5,000,000 USD at 100 = 50,000 SOL, bracket 7
    // (46,800-56,100 SOL, 16.67%, cum 4,187.06): MM = 8,335 - 4,187.06 = 4,147.94 SOL, the
    // bracket sum 400 x 1% + 1,900 x 2% + 2,300 x 2.5% + 18,800 x 5% + 14,000 x 10%
    // + 9,400 x 12.5% + 3,200 x 16.67%; IM at the bracket's 3x: 50,000 / 3.
    let sol = venue.instrument("SOLUSD_PERP").unwrap();
    let sol_short = requirement(&exposure(&sol, dec!(-5000000), dec!(100))).unwrap();
    assert_eq!(
        sol_short.maintenance,
        dec!(4) + dec!(38) + dec!(57.5) + dec!(940) + dec!(1400) + dec!(1175) + dec!(533.44)
    );
    assert_eq!(sol_short.maintenance, dec!(4147.94));
    assert_eq!(sol_short.initial, dec!(50000) / dec!(3));
}

/// Binance's COIN-M liquidation price (FAQ formula, one-way mode, one position):
/// `LP = (B x MMR + side x B) / ((WB + cum) / CM + side x B / EP)`, B contracts of CM USD, WB in
/// coin; with Q = B x CM in USD, `LP = Q (MMR + side) / (WB + cum + side Q / EP)`. No numeric
/// example with today's brackets is published; the figures are [computed, not published].
/// Isolated: 1,000 contracts (100,000 USD) from 100,000 with 0.05 BTC of margin (20x), bracket 1
/// (0.4%, cum 0) at the liquidation price:
/// long `100,000 x 1.004 / (0.05 + 1) = 95,619.0476...` (reported on the contract's 0.1 tick,
/// rounded up: 95,619.1), short `100,000 x 0.996 / (1 - 0.05) = 104,842.1052...` (rounded down,
/// 104,842.1).
/// Cross, with the inputs of a user's case on Binance's developer forum (dev.binance.vision
/// t/6292: wallet 101 BTC, long 10,000,000 USD from 45,000) on today's brackets: at the price
/// found the notional is 311.8 BTC, bracket 5 (5%, cum 4.18):
/// `10,000,000 x 1.05 / (101 + 4.18 + 222.2222...) = 32,070.6436...` (reported on the tick,
/// 32,070.7).
#[test]
fn binance_coinm_liquidation_price_takes_the_maintenance_at_that_price() {
    let isolated = |size: &str| {
        let report = coinm_report(
            &format!(
                r#"{{"instrument":"BTCUSD_PERP","size":"{size}","entry_price":"100000","isolated_margin":"0.05","leverage":20}}"#
            ),
            "",
            "100000",
        );
        report.positions[0].liquidation_price.unwrap().value()
    };
    assert_eq!(isolated("100000"), dec!(95619.1));
    assert_eq!(isolated("-100000"), dec!(104842.1));
    let cross = coinm_report(
        r#"{"instrument":"BTCUSD_PERP","size":"10000000","entry_price":"45000"}"#,
        r#""BTC":"101""#,
        "45000",
    );
    assert_eq!(
        cross.positions[0].liquidation_price.unwrap().value(),
        dec!(32070.7)
    );
}

// ---- Bybit inverse (venues/bybit-inverse.toml), docs/published-examples.md section 11 --------

/// Bybit help "Liquidation Price Calculation under Isolated Mode (Unified Trading Account)",
/// inverse contracts, Example (testnet.bybit.com/ar-SA copy, read 2026-12-04): "a long entry of
/// 60,000 USD of BTCUSD short position [sic; the long formula follows] at 50,000 USD with 10x
/// leverage. Assuming the Maintenance Margin Rate (MMR) is 0.5% and no extra margin is added: Position Value = 60,000 / 50,000 = 1.2 BTC, Initial
/// Margin = 1.2 / 10 = 0.12 BTC". The stored copy stops there; the rest is
/// [computed, not published] by the page's formula: MM = 1.2 x 0.5% = 0.006 BTC,
/// LP (long) = 60,000 / [1.2 + (0.12 - 0.006)] = 45,662.100456... (reported on the contract's 0.10
/// tick, rounded up: 45,662.2); LP (short) = 60,000 / [1.2 - (0.12 - 0.006)] = 55,248.618784...
/// (rounded down: 55,248.6).
/// MM at the liquidation price (Binance's convention) would give 60,300 / 1.32 = 45,681.818...
#[test]
fn bybit_inverse_isolated_liquidation_price_takes_maintenance_on_the_entry_value() {
    let venue = venue("bybit-inverse.toml");
    let report = |size: &str| {
        let portfolio = Portfolio::from_json(
            "p.json",
            &format!(
                r#"{{"account":"bi","mode":"cross","collateral":{{}},"positions":[
                {{"instrument":"BTCUSD","size":"{size}","entry_price":"50000","isolated_margin":"0.12","leverage":10}}]}}"#
            ),
            &venue,
        )
        .unwrap();
        let market = Market::from_json(
            "m.json",
            r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"50000"},"mark":{"BTCUSD":"50000"}}"#,
        )
        .unwrap();
        margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap()
    };
    let long = report("60000");
    let position = &long.positions[0];
    // Published: Position Value 1.2 BTC, Initial Margin 0.12 BTC.
    assert_eq!(position.value.value(), dec!(1.2));
    assert_eq!(position.initial_margin.value(), dec!(0.12));
    // MM = 1.2 x 0.5% - 0 (tier 1).
    assert_eq!(position.maintenance_margin.value(), dec!(0.006));
    assert_eq!(position.liquidation_price.unwrap().value(), dec!(45662.2));
    let short = report("-60000");
    assert_eq!(
        short.positions[0].liquidation_price.unwrap().value(),
        dec!(55248.6)
    );
}

/// Bybit help "Maintenance Margin (Inverse Contract)", section "Illustration" (read 2026-12-04 in
/// the stored search listings of bybit.global): XYZUSD tiers "1: 0 - 10: 1%", "2: >10 - 20: 2%",
/// "3: >20 - 30: 3%", "4: >30 - 40: 4%", "5: >40 - 50: 5%" (in XYZ); "a long position of 10,000
/// contracts with 10x leverage at 400 USD ... Position Value = Contract quantity / Average Entry
/// Price = 10,000 / 400 = 25 XYZ, Initial Margin = Position Value / Leverage = 25 / 10 = 2.5 XYZ".
/// The stored text stops before the maintenance margin; by Bybit's stated method ("any excess
/// beyond a particular tier is subject to ... the MMR of the new tier") it is
/// [computed, not published] 10 x 1% + 10 x 2% + 5 x 3% = 0.45 XYZ. The page gives no leverage
/// per tier; the test writes the example's 10x for every tier.
#[test]
fn bybit_inverse_illustration_of_progressive_maintenance() {
    let text = r#"
[venue]
name = "bybit inverse illustration"
settlement_asset = "XYZ"
[assets.XYZ]
precision = 8
[collateral.XYZ]
tiers = [{ ratio = "1" }]
[margin_rules.xyzusd]
kind = "tiered"
tiers = [
  { up_to = "10", max_leverage = 10, mmr = "0.01" },
  { up_to = "20", max_leverage = 10, mmr = "0.02", deduction = "0.1" },
  { up_to = "30", max_leverage = 10, mmr = "0.03", deduction = "0.3" },
  { up_to = "40", max_leverage = 10, mmr = "0.04", deduction = "0.6" },
  { up_to = "50", max_leverage = 10, mmr = "0.05", deduction = "1" },
]
[instruments.XYZUSD]
kind = "perpetual"
style = "inverse"
underlying = "XYZ"
settlement = "XYZ"
contract_size = "1"
size_step = "1"
margin = "xyzusd"
"#;
    let venue = Venue::from_toml("illustration.toml", text).unwrap();
    let perp = venue.instrument("XYZUSD").unwrap();
    let mut case = exposure(&perp, dec!(10000), dec!(400));
    case.leverage = Some(dec!(10));
    let requirement = requirement(&case).unwrap();
    // IM = 25 / 10 = 2.5 XYZ (published).
    assert_eq!(requirement.initial, dec!(2.5));
    // MM: tier 3 (20-30, 3%, deduction 0.3): 25 x 3% - 0.3 = 0.45 = 0.1 + 0.2 + 0.15.
    assert_eq!(requirement.maintenance, dec!(0.1) + dec!(0.2) + dec!(0.15));
}

/// The margin report of one OKX position (`venues/okx-swap.toml`), marked at `mark`.
fn okx_report(position: &str, collateral: &str, mark: &str) -> solvent_risk::MarginReport {
    let venue = venue("okx-swap.toml");
    let portfolio = Portfolio::from_json(
        "p.json",
        &format!(
            r#"{{"account":"o","mode":"cross","collateral":{{{collateral}}},"positions":[{position}]}}"#
        ),
        &venue,
    )
    .unwrap();
    let market = Market::from_json(
        "m.json",
        &format!(
            r#"{{"timestamp":"2026-01-06T08:00:00Z","index":{{"BTC":"{mark}","ETH":"{mark}"}},"mark":{{"BTC-USDT-SWAP":"{mark}","ETH-USDT-SWAP":"{mark}"}}}}"#
        ),
    )
    .unwrap();
    margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap()
}

/// OKX tiers count contracts and apply the rate of the tier reached to the whole position
/// (docs/published-examples.md 12.1). ETHUSDT perpetual swap, OKX announcement effective
/// 2021-06-11: "1 | 0 | 3,000 | 0.40% | 0.80% | 125", "2 | 3,001 | 6,000 | 0.50% | 1.00% | 100";
/// face value 0.1 ETH; maintenance margin = face value x contracts x mark x tier rate.
#[test]
fn okx_eth_usdt_swap_tiers_count_contracts_and_rate_the_whole_position() {
    let venue = venue("okx-swap.toml");
    let swap = venue.instrument("ETH-USDT-SWAP").unwrap();
    let at = |contracts: Decimal, mark: Decimal| {
        let mut case = exposure(&swap, contracts, mark);
        case.leverage = Some(dec!(100));
        requirement(&case).unwrap()
    };
    // 3,000 contracts at 2,000: value 3,000 x 0.1 x 2,000 = 600,000 USDT, tier 1 (0-3,000):
    // MM = 600,000 x 0.40% = 2,400; IM at 100x = 6,000.
    let tier_one = at(dec!(3000), dec!(2000));
    assert_eq!(tier_one.maintenance, dec!(2400));
    assert_eq!(tier_one.initial, dec!(6000));
    // One contract more is tier 2 (3,001-6,000): the whole 600,200 at 0.50% = 3,001, a jump
    // of 601 (no deduction: the tier's rate applies to the whole position).
    assert_eq!(at(dec!(3001), dec!(2000)).maintenance, dec!(3001));
    // The tier does not move with the price: 3,000 contracts at 4,000 (value 1,200,000) stay
    // in tier 1, MM = 1,200,000 x 0.40% = 4,800.
    assert_eq!(at(dec!(3000), dec!(4000)).maintenance, dec!(4800));
    // Tier 3 (6,001-12,000, 1.00%) for 10,000 contracts short at 2,000: value 2,000,000,
    // MM 20,000; tier 4 by the announcement's increase rule (12,001-24,000, 1.50%): 20,000
    // contracts, value 4,000,000, MM 60,000.
    assert_eq!(at(dec!(-10000), dec!(2000)).maintenance, dec!(20000));
    let mut tier_four = exposure(&swap, dec!(20000), dec!(2000));
    tier_four.leverage = Some(dec!(50));
    assert_eq!(requirement(&tier_four).unwrap().maintenance, dec!(60000));
}

/// BTC-USDT-SWAP, face value 0.01 BTC (OKX help "I. Perpetual swaps": "Contract Size
/// 0.01BTC"), tiers of OKX help "Tiered maintenance margin ratio rules": "1 | 0-20,000 | 0.50% |
/// 1.00% | 100x", "2 | 20,001-22,000 | 1.00% | 1.50% | 66.66x". Values [computed, not
/// published] from those rates (docs/published-examples.md 12.1).
#[test]
fn okx_btc_usdt_swap_face_value_and_tiers() {
    // 100 contracts = 1 BTC at 100,000: value 100,000, tier 1, MM 500, IM at 10x 10,000.
    let report = okx_report(
        r#"{"instrument":"BTC-USDT-SWAP","size":"100","entry_price":"100000"}"#,
        r#""USDT":"20000""#,
        "100000",
    );
    let line = &report.positions[0];
    assert_eq!(line.value.value(), dec!(100000));
    assert_eq!(line.maintenance_margin.value(), dec!(500));
    assert_eq!(line.initial_margin.value(), dec!(10000));
    // 20,000 contracts (200 BTC, 20,000,000 USDT): tier 1, MM 100,000; 20,001 contracts
    // (20,001,000 USDT): tier 2 at 1% on the whole position, MM 200,010.
    let venue = venue("okx-swap.toml");
    let swap = venue.instrument("BTC-USDT-SWAP").unwrap();
    let maintenance = |contracts: Decimal| {
        let mut case = exposure(&swap, contracts, dec!(100000));
        case.leverage = Some(dec!(20));
        requirement(&case).unwrap().maintenance
    };
    assert_eq!(maintenance(dec!(20000)), dec!(100000));
    assert_eq!(maintenance(dec!(20001)), dec!(200010));
    // Beyond the table (22,000 contracts): margined at its last tier, with a warning that
    // names the contracts.
    let beyond = okx_report(
        r#"{"instrument":"BTC-USDT-SWAP","size":"60000","entry_price":"100000","leverage":20}"#,
        r#""USDT":"10000000""#,
        "100000",
    );
    assert!(
        beyond.warnings.iter().any(|w| w.contains(
            "BTC-USDT-SWAP: 60000 contracts exceeds the largest risk-limit tier (up to 22000)"
        )),
        "{:?}",
        beyond.warnings
    );
}

/// OKX liquidates when the margin ratio `(margin balance + P&L) / (face value x |contracts| x
/// mark x (tiered rate + fee rate))` falls to 100% (docs/published-examples.md 12.2); no
/// numeric example is published, the figures are [computed, not published] from that formula
/// with `venues/okx-swap.toml` (tier 1 rate 0.5%, fee rate 0.05%): 100 contracts of
/// BTC-USDT-SWAP (1 BTC) from 100,000 with 1,000 USDT of isolated margin (100x).
#[test]
fn okx_isolated_liquidation_price_adds_the_fee_to_the_tier_rate() {
    let liquidation = |size: &str| {
        let report = okx_report(
            &format!(
                r#"{{"instrument":"BTC-USDT-SWAP","size":"{size}","entry_price":"100000","isolated_margin":"1000","leverage":100}}"#
            ),
            "",
            "100000",
        );
        let line = &report.positions[0];
        // MM itself carries no fee: 100,000 x 0.5% = 500.
        assert_eq!(line.maintenance_margin.value(), dec!(500));
        line.liquidation_price.unwrap().value()
    };
    // Long: 1,000 + (p - 100,000) = p x (0.005 + 0.0005)  =>  p = 99,000 / 0.9945
    // = 99,547.5113122..., up to the contract's 0.1 tick for a long: 99,547.6.
    assert_eq!(liquidation("100"), dec!(99547.6));
    // Short: 1,000 - (p - 100,000) = 0.0055 p  =>  p = 101,000 / 1.0055 = 100,447.538538...,
    // down to the tick for a short: 100,447.5.
    assert_eq!(liquidation("-100"), dec!(100447.5));
}

/// A leverage above the maximum of the tier a trade takes the position into is refused with the
/// tier named, never capped: 21,000 contracts of BTC-USDT-SWAP (tier 2, 20,001-22,000
/// contracts, at most 66.66x in OKX's table) at 100x.
#[test]
fn okx_leverage_above_the_tier_maximum_is_refused_naming_the_tier_in_contracts() {
    use solvent_risk::pretrade::{Refusal, TradeLeg, book_trades, decide_trade};
    let venue = venue("okx-swap.toml");
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000"},"mark":{"BTC-USDT-SWAP":"100000"}}"#,
    )
    .unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let before = Portfolio::from_json(
        "p.json",
        r#"{"account":"o","mode":"cross","collateral":{"USDT":"100000000"},"positions":[]}"#,
        &venue,
    )
    .unwrap();
    let trade = |contracts: Decimal| {
        let legs = [TradeLeg {
            instrument: venue.instrument("BTC-USDT-SWAP").unwrap(),
            size: contracts,
            price: dec!(100000),
            fee: Decimal::ZERO,
        }];
        let after = book_trades(&before, &legs, &view, &|_| Some(dec!(100))).unwrap();
        decide_trade(
            solvent_risk::AccountState::Healthy,
            &before,
            &after,
            &["BTC-USDT-SWAP"],
            &view,
        )
        .unwrap()
        .verdict
    };
    // 20,000 contracts stay in tier 1 (100x allowed): accepted.
    assert!(trade(dec!(20000)).is_ok());
    let refusal = trade(dec!(21000)).unwrap_err();
    assert_eq!(refusal.name(), "leverage_above_bracket");
    assert_eq!(
        refusal.to_string(),
        "BTC-USDT-SWAP at 100x would stand in tier 2 (20000-22000 contracts), whose maximum leverage is 66.66x"
    );
    assert!(matches!(
        refusal,
        Refusal::LeverageAboveBracket { tier: 2, .. }
    ));
    // A report of a position already standing so (a portfolio file) warns with the tier named
    // and takes initial margin at the tier's maximum: 21,000,000 / 66.66.
    let report = okx_report(
        r#"{"instrument":"BTC-USDT-SWAP","size":"21000","entry_price":"100000","leverage":100}"#,
        r#""USDT":"100000000""#,
        "100000",
    );
    assert!(
        report.warnings.iter().any(|w| w
            == "BTC-USDT-SWAP: leverage 100x is above the 66.66x maximum of tier 2 (20000-22000 contracts); the venue would refuse it, and initial margin is taken at 66.66x"),
        "{:?}",
        report.warnings
    );
    assert_eq!(
        report.positions[0].initial_margin.value(),
        solvent_core::rounding::requirement(dec!(21000000) / dec!(66.66), 6)
    );
}
