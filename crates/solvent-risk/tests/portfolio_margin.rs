//! Portfolio margin: hand-worked cases per component, and the invariants of DESIGN.md 6.5
//! (an exact hedge never raises the scan; scaling every size by k scales the scan by k; a hedged
//! book needs less than the sum of its standard margins).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::history::{LoadOptions, PriceHistory, SeriesText, correlation_matrix};
use solvent_risk::portfolio_margin::{
    Correlations, ReportCurrency, ScenarioBook, Scratch, exposures, maintenance_margin,
    portfolio_risk, scenarios, shocked_volatility,
};
use solvent_risk::report::MarginReport;
use solvent_risk::valuation::HistoricalScenarios;
use solvent_risk::{MarketView, margin_report};

/// A venue with one clean BTC grid (moves +/-10% in 5% steps, no contingencies, no add-ons), so
/// every figure can be worked by hand; `extra` adds lines to the BTC underlying table.
fn venue(extra: &str) -> Venue {
    let text = format!(
        r#"
[venue]
name = "pm test"
settlement_asset = "USDT"
[assets.USDT]
precision = 6
usd_peg = "1"
cash_like = true
[assets.USDC]
precision = 6
usd_peg = "1"
[assets.BTC]
precision = 8
[assets.ETH]
precision = 8
[collateral.USDT]
tiers = [{{ ratio = "1" }}]
[collateral.BTC]
tiers = [{{ ratio = "1" }}]
[margin_rules.flat]
kind = "tiered"
tiers = [{{ max_leverage = 10, mmr = "0.05" }}]
[margin_rules.options]
kind = "deribit_option"
initial_base = "0.15"
initial_floor = "0.1"
maintenance = "0.075"
[instruments.BTCUSDT]
kind = "perpetual"
style = "linear"
underlying = "BTC"
settlement = "USDT"
contract_size = "1"
size_step = "0.001"
margin = "flat"
[instruments.BTCUSDC]
kind = "perpetual"
style = "linear"
underlying = "BTC"
settlement = "USDC"
contract_size = "1"
size_step = "0.001"
margin = "flat"
[instruments.ETHUSDT]
kind = "perpetual"
style = "linear"
underlying = "ETH"
settlement = "USDT"
contract_size = "1"
size_step = "0.001"
margin = "flat"
[[series]]
kind = "option"
underlying = "BTC"
settlement = "USDT"
style = "linear"
contract_size = "1"
size_step = "0.1"
margin = "options"
[portfolio_margin]
im_factor = "1.25"
max_offset = "0.5"
correlations = [{{ pair = ["BTC", "ETH"], rho = "0.8" }}]
[portfolio_margin.underlyings.BTC]
price_moves = ["-0.1", "-0.05", "0", "0.05", "0.1"]
vol_shock_up = "0.5"
vol_shock_down = "0.25"
{extra}
[portfolio_margin.underlyings.ETH]
price_moves = ["-0.2", "0", "0.2"]
vol_shock_up = "0.5"
vol_shock_down = "0.25"
"#
    );
    Venue::from_toml("pm.toml", &text).unwrap()
}

const MARKET: &str = r#"{"timestamp":"2026-01-01T08:00:00Z","index":{"BTC":"100000","ETH":"4000","USDT":"1","USDC":"1"},
  "vol":{"BTC":{"2026-01-31":{"strikes":[100000],"vols":[0.6]}}}}"#;

fn report(venue: &Venue, positions: &str, collateral: &str) -> MarginReport {
    let portfolio = Portfolio::from_json(
        "p.json",
        &format!(r#"{{"account":"pm","mode":"portfolio","collateral":{{{collateral}}},"positions":[{positions}]}}"#),
        venue,
    )
    .unwrap();
    let market = Market::from_json("m.json", MARKET).unwrap();
    margin_report(&portfolio, &MarketView::new(venue, &market).unwrap()).unwrap()
}

fn component(report: &MarginReport, name: &str) -> Decimal {
    report
        .components
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.amount.value())
        .unwrap_or_else(|| panic!("no component {name}: {:?}", report.components))
}

#[test]
fn deribit_grid_has_27_standard_and_8_dampened_extended_scenarios() {
    let venue = solvent_core::venue::Venue::from_toml(
        "default.toml",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../venues/default.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let params = &venue.portfolio_margin.unwrap().underlyings["BTC"];
    let all = scenarios(params);
    assert_eq!(all.len(), 9 * 3 + 8);
    let weights: Vec<f64> = all
        .iter()
        .filter(|s| s.extended)
        .map(|s| s.weight)
        .collect();
    // 0.16 / |move|: -66% -> 0.2424, -33% -> 0.4848, +50% -> 0.32, +100% -> 0.16 ... +500% -> 0.032.
    let expected = [
        0.16 / 0.66,
        0.16 / 0.33,
        0.32,
        0.16,
        0.08,
        0.16 / 3.0,
        0.04,
        0.032,
    ];
    for (weight, want) in weights.iter().zip(expected) {
        assert!((weight - want).abs() < 1e-15, "{weight} vs {want}");
    }
}

#[test]
fn volatility_shocks_follow_the_term_structure_power() {
    let venue = venue("");
    let params = &venue.portfolio_margin.as_ref().unwrap().underlyings["BTC"];
    // (30/7)^0.3 = 1.5474 (docs/portfolio-margin-sources.md); up: 0.6 x (1 + 0.5 x 1.5474).
    let up = shocked_volatility(
        0.6,
        7.0,
        solvent_risk::portfolio_margin::VolShock::Up,
        params,
    );
    assert!((up - 0.6 * (1.0 + 0.5 * (30.0_f64 / 7.0).powf(0.3))).abs() < 1e-15);
    assert!((up - 1.064_22).abs() < 1e-4, "{up}");
    // 60 days uses the long power: (30/60)^0.13 = 0.9138; down: 0.6 x (1 - 0.25 x 0.9138).
    let down = shocked_volatility(
        0.6,
        60.0,
        solvent_risk::portfolio_margin::VolShock::Down,
        params,
    );
    assert!((down - 0.6 * (1.0 - 0.25 * 0.5_f64.powf(0.13))).abs() < 1e-15);
    // Below one day the clock stops at one day.
    let today = shocked_volatility(
        0.6,
        0.1,
        solvent_risk::portfolio_margin::VolShock::Up,
        params,
    );
    assert_eq!(
        today,
        shocked_volatility(
            0.6,
            1.0,
            solvent_risk::portfolio_margin::VolShock::Up,
            params
        )
    );
}

#[test]
fn a_long_perpetual_loses_its_largest_down_move() {
    let report = report(
        &venue(""),
        r#"{"instrument":"BTCUSDT","size":"2","entry_price":"100000"}"#,
        r#""USDT":"50000""#,
    );
    // 2 BTC x 100,000 x 10% = 20,000; IM = 1.25 x 20,000.
    assert_eq!(report.maintenance_margin.value(), dec!(20000));
    assert_eq!(report.initial_margin.value(), dec!(25000));
    assert_eq!(component(&report, "portfolio:scan_risk:BTC"), dec!(20000));
    assert_eq!(report.positions[0].maintenance_margin.value(), dec!(20000));
}

#[test]
fn spot_collateral_hedges_a_short_perpetual_exactly() {
    // 1 BTC held against a 1 BTC short: every scenario nets to zero.
    let report = report(
        &venue(""),
        r#"{"instrument":"BTCUSDT","size":"-1","entry_price":"100000"}"#,
        r#""USDT":"1000","BTC":"1""#,
    );
    assert_eq!(report.maintenance_margin.value(), dec!(0));
}

#[test]
fn the_minimum_delta_charge_floors_a_hedged_book() {
    // Long 3 BTCUSDT, short 3 BTCUSDC at the same price: scan 0; hedged delta 3 at 1% of
    // 100,000 = 3,000, net delta 0.
    let report = report(
        &venue("min_delta_rate = \"0.02\"\nhedged_delta_rate = \"0.01\""),
        r#"{"instrument":"BTCUSDT","size":"3","entry_price":"100000"},{"instrument":"BTCUSDC","size":"-3","entry_price":"100000"}"#,
        r#""USDT":"100000""#,
    );
    assert_eq!(report.maintenance_margin.value(), dec!(3000));
    assert_eq!(
        component(&report, "portfolio:minimum_charge:BTC"),
        dec!(3000)
    );
}

#[test]
fn the_liquidity_add_on_is_spread_plus_square_root_impact() {
    // Net delta 10 BTC = 1,000,000 USD; ADV 100,000,000: 1,000,000 x (0.0005 + 0.2 x sqrt(0.01)) = 20,500,
    // plus the scan 10 x 100,000 x 10% = 100,000.
    let report = report(
        &venue("half_spread = \"0.0005\"\nimpact = \"0.2\"\nadv_usd = \"100000000\""),
        r#"{"instrument":"BTCUSDT","size":"10","entry_price":"100000"}"#,
        r#""USDT":"1000000""#,
    );
    // Risk figures are f64 and round up to the asset's precision: at most one unit (1e-6) above.
    let within_a_unit =
        |value: Decimal, exact: Decimal| value >= exact && value - exact <= dec!(0.000001);
    assert!(within_a_unit(
        component(&report, "portfolio:liquidity:BTC"),
        dec!(20500)
    ));
    assert!(within_a_unit(
        report.maintenance_margin.value(),
        dec!(120500)
    ));
}

#[test]
fn opposite_books_on_correlated_underlyings_get_a_capped_credit() {
    // Long 1 BTC (loses 10,000 at -10%, d = +1) and short 10 ETH (loses 10 x 4,000 x 20% = 8,000 at
    // +20%, d = -1), rho 0.8: R = sqrt(10,000^2 + 8,000^2 - 2 x 0.8 x 10,000 x 8,000) = 6,000,
    // above the floor (1 - 0.5) x 18,000 = 9,000 -> 9,000.
    let report = report(
        &venue(""),
        r#"{"instrument":"BTCUSDT","size":"1","entry_price":"100000"},{"instrument":"ETHUSDT","size":"-10","entry_price":"4000"}"#,
        r#""USDT":"100000""#,
    );
    assert_eq!(report.maintenance_margin.value(), dec!(9000));
    assert_eq!(
        component(&report, "portfolio:cross_underlying_offset"),
        dec!(-9000)
    );
    // Attribution: both scale by 9,000 / 18,000; the parts sum to the account figure.
    let parts: Vec<Decimal> = report
        .positions
        .iter()
        .map(|p| p.maintenance_margin.value())
        .collect();
    assert_eq!(parts, vec![dec!(5000), dec!(4000)]);
}

#[test]
fn the_correlated_combination_below_its_bounds() {
    // Same book with max_offset 1 (the bound does not bind): R = 6,000; Euler shares
    // c_BTC = 10,000 (10,000 - 0.8 x 8,000) / 6,000 = 6,000, c_ETH = 8,000 (8,000 - 0.8 x 10,000) / 6,000 = 0.
    let venue = venue("").clone();
    let mut params = venue.portfolio_margin.clone().unwrap();
    params.max_offset = 1.0;
    let mut venue = venue;
    venue.portfolio_margin = Some(params);
    let report = report(
        &venue,
        r#"{"instrument":"BTCUSDT","size":"1","entry_price":"100000"},{"instrument":"ETHUSDT","size":"-10","entry_price":"4000"}"#,
        r#""USDT":"100000""#,
    );
    assert_eq!(report.maintenance_margin.value(), dec!(6000));
    let parts: Vec<Decimal> = report
        .positions
        .iter()
        .map(|p| p.maintenance_margin.value())
        .collect();
    assert_eq!(parts, vec![dec!(6000), dec!(0)]);
}

#[test]
fn a_correlation_the_venue_does_not_give_comes_from_the_price_history() {
    // The opposite book of the two tests above (long 1 BTC: R_BTC = 10,000, d = +1; short 10 ETH:
    // R_ETH = 8,000, d = -1), on the venue without its BTC-ETH correlation and with max_offset 1.
    let mut venue = venue("").clone();
    let mut params = venue.portfolio_margin.clone().unwrap();
    params.correlations.clear();
    params.max_offset = 1.0;
    venue.portfolio_margin = Some(params);
    let portfolio = Portfolio::from_json(
        "p.json",
        r#"{"account":"pm","mode":"portfolio","collateral":{"USDT":"100000"},"positions":[
            {"instrument":"BTCUSDT","size":"1","entry_price":"100000"},
            {"instrument":"ETHUSDT","size":"-10","entry_price":"4000"}]}"#,
        &venue,
    )
    .unwrap();
    let market = Market::from_json("m.json", MARKET).unwrap();

    // Without a history the pair is unknown and counts as perfectly adverse (rho d_u d_v = 1):
    // R = sqrt((10,000 + 8,000)^2) = 18,000.
    let alone = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
    assert_eq!(alone.maintenance_margin.value(), dec!(18000));

    // With the committed FTX extract (tests/data, 2022-10-01 to 2023-01-31) as the history, the
    // pair's correlation is the Pearson correlation of its 122 daily log returns, which numpy
    // gives over the two CSVs' closes as 0.934659674810183:
    // R = sqrt(10,000^2 + 8,000^2 - 2 x 0.934659674810183 x 10,000 x 8,000)
    //   = sqrt(164,000,000 - 149,545,547.9696293) = sqrt(14,454,452.0303707) = 3,801.901107...,
    // rounded up to USDT's 6 decimals.
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let read = |coin: &str| {
        std::fs::read_to_string(format!(
            "{data}/{coin}-USDT.binance.daily.2022-10-01_2023-01-31.csv"
        ))
        .unwrap()
    };
    let (btc, eth) = (read("BTC"), read("ETH"));
    let series = |underlying, text| SeriesText {
        underlying,
        origin: "extract",
        text,
    };
    let history = PriceHistory::from_texts(
        &[series("BTC", &btc), series("ETH", &eth)],
        &[],
        &LoadOptions::default(),
    )
    .unwrap();
    let scenarios = HistoricalScenarios {
        underlyings: vec!["BTC".to_owned(), "ETH".to_owned()],
        scenarios: Vec::new(),
        correlations: correlation_matrix(&history, &["BTC", "ETH"], None).unwrap(),
    };
    let view = MarketView::new(&venue, &market)
        .unwrap()
        .with_history(Some(&scenarios));
    let estimated = margin_report(&portfolio, &view).unwrap();
    let rho = 0.934_659_674_810_183_f64;
    let expected = (164_000_000.0 - 160_000_000.0 * rho).sqrt();
    assert!((expected - 3_801.901_107).abs() < 1e-6, "{expected}");
    let got = estimated.maintenance_margin.value();
    // The Rust correlation and numpy's differ by at most a few ulp; R moves by
    // 80,000,000 / R = 21,000 x that, far below the 1e-6 rounding step, unless a rounding
    // boundary lies in between: allow one step.
    let wanted = solvent_core::rounding::requirement_from_f64(expected, 6, "R").unwrap();
    assert!((got - wanted).abs() <= dec!(0.000001), "{got} vs {wanted}");
}

#[test]
fn a_short_option_is_charged_its_worst_revaluation() {
    // Short 1 at-the-money call, 30 days, vol 60%: the worst scenario is +10% with vol up
    // (0.6 x 1.5 = 0.9). B76(110,000, 100,000, 30/365, 0.9) - B76(100,000, 100,000, 30/365, 0.6).
    let report = report(
        &venue(""),
        r#"{"instrument":"BTC_USDT-31JAN26-100000-C","size":"-1","entry_price":"1"}"#,
        r#""USDT":"100000""#,
    );
    let time = 30.0 / 365.0;
    let price = |forward: f64, vol: f64| {
        solvent_pricing::black76::Black76::new_checked(forward, 100_000.0, time, vol, 1.0)
            .unwrap()
            .price(solvent_pricing::black76::OptionType::Call)
    };
    let loss = price(110_000.0, 0.9) - price(100_000.0, 0.6);
    let expected = solvent_core::rounding::requirement_from_f64(loss, 6, "x").unwrap();
    assert_eq!(report.maintenance_margin.value(), expected);
    assert!(component(&report, "portfolio:scan_risk:BTC") > dec!(0));
}

fn book_margin(venue: &Venue, positions: &str, collateral: &str) -> (f64, f64) {
    let portfolio = Portfolio::from_json(
        "p.json",
        &format!(r#"{{"account":"pm","mode":"portfolio","collateral":{{{collateral}}},"positions":[{positions}]}}"#),
        venue,
    )
    .unwrap();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(venue, &market).unwrap();
    let params = venue.portfolio_margin.as_ref().unwrap();
    let instruments: Vec<_> = portfolio
        .positions
        .iter()
        .map(|p| p.instrument.as_ref())
        .collect();
    let spot: Vec<(String, String)> = portfolio
        .balances
        .iter()
        .filter(|b| params.underlyings.contains_key(b.asset.index.as_str()))
        .map(|b| (b.asset.symbol.to_string(), b.asset.index.to_string()))
        .collect();
    let book = ScenarioBook::new(&view, params, &instruments, &spot).unwrap();
    let exposures = exposures(&portfolio, &book).unwrap();
    let currency = ReportCurrency {
        price_usd: 1.0,
        priced_by: None,
        equity_usd: 0.0,
    };
    let risk = portfolio_risk(&book, params, &exposures, &currency).unwrap();
    let lean = maintenance_margin(
        &book,
        &Correlations::new(&book, params),
        params.max_offset,
        &exposures,
        &currency,
        &mut Scratch::default(),
    )
    .unwrap();
    assert!(
        (lean - risk.maintenance_margin).abs() <= 1e-12 * risk.maintenance_margin.abs().max(1.0)
    );
    let attributed: f64 = risk.attribution.iter().sum();
    assert!(
        (attributed - risk.maintenance_margin).abs()
            <= 1e-9 * risk.maintenance_margin.abs().max(1.0)
    );
    (risk.summed_risk, risk.maintenance_margin)
}

fn book(sizes: &[(i64, &str)]) -> String {
    sizes
        .iter()
        .filter(|(size, _)| *size != 0)
        .map(|(size, name)| {
            let size = Decimal::new(
                *size,
                if name.contains("-C") || name.contains("-P") {
                    1
                } else {
                    3
                },
            );
            format!(r#"{{"instrument":"{name}","size":"{size}","entry_price":"1"}}"#)
        })
        .collect::<Vec<_>>()
        .join(",")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scaling_every_size_scales_the_scan(
        perp in -20_000i64..20_000,
        call in -50i64..50,
        put in -50i64..50,
        k in 2i64..5,
    ) {
        let venue = venue("");
        let names = ["BTCUSDT", "BTC_USDT-31JAN26-110000-C", "BTC_USDT-31JAN26-90000-P"];
        let base = book(&[(perp, names[0]), (call, names[1]), (put, names[2])]);
        let scaled = book(&[(perp * k, names[0]), (call * k, names[1]), (put * k, names[2])]);
        prop_assume!(!base.is_empty());
        let (scan, _) = book_margin(&venue, &base, "");
        let (scaled_scan, _) = book_margin(&venue, &scaled, "");
        prop_assert!((scaled_scan - k as f64 * scan).abs() <= 1e-9 * scaled_scan.max(1.0), "{scaled_scan} vs {k} x {scan}");
    }

    #[test]
    fn adding_an_exact_hedge_never_raises_the_scan(
        perp in -20_000i64..20_000,
        call in -50i64..50,
        pair in 1i64..20_000,
    ) {
        // An exact hedge: a long and a short of the same size in two linear BTC instruments at
        // the same price, whose P&L cancels in every scenario. With the hedged-delta charge off
        // margin cannot rise; with it on it rises by exactly that charge (Paradex charges hedged
        // delta on purpose: the counter-example is by design, and asserted as such).
        let names = ["BTCUSDT", "BTC_USDT-31JAN26-110000-C"];
        let base = book(&[(perp, names[0]), (call, names[1])]);
        prop_assume!(!base.is_empty());
        // The pair's short leg is merged into any BTCUSDT already held.
        let merged = {
            let perp_total = perp - pair;
            let mut parts = vec![format!(r#"{{"instrument":"BTCUSDC","size":"{}","entry_price":"1"}}"#, Decimal::new(pair, 3))];
            let rest = book(&[(perp_total, names[0]), (call, names[1])]);
            if !rest.is_empty() {
                parts.push(rest);
            }
            parts.join(",")
        };
        let plain = venue("");
        let (scan, margin) = book_margin(&plain, &base, "");
        let (hedged_scan, hedged_margin) = book_margin(&plain, &merged, "");
        prop_assert!((hedged_scan - scan).abs() <= 1e-9 * scan.max(1.0), "scan {hedged_scan} vs {scan}");
        prop_assert!(hedged_margin <= margin + 1e-9 * margin.max(1.0), "{hedged_margin} > {margin}");
        let charged = venue("hedged_delta_rate = \"0.01\"");
        let (_, charged_base) = book_margin(&charged, &base, "");
        let (_, charged_hedged) = book_margin(&charged, &merged, "");
        prop_assert!(charged_hedged + 1e-9 >= charged_base, "the hedged-delta charge cannot fall when hedged delta grows");
    }

    #[test]
    fn a_hedged_book_needs_less_than_its_standard_margins(
        pair in 1i64..20_000,
        calls in 1i64..50,
        strike_steps in -2i64..3,
    ) {
        // Hedged books: a perfectly hedged pair of perpetuals plus a delta-hedged short call
        // (the perpetual leg sized to the call's delta at 60% vol, 30 days). Standard margin
        // charges every leg alone; portfolio margin sees the offsets.
        let venue = venue("min_delta_rate = \"0.02\"\nhedged_delta_rate = \"0.01\"");
        let strike = 100_000 + strike_steps * 5_000;
        let option = format!("BTC_USDT-31JAN26-{strike}-C");
        let delta = solvent_pricing::black76::Black76::new_checked(100_000.0, strike as f64, 30.0 / 365.0, 0.6, 1.0)
            .unwrap()
            .greeks(solvent_pricing::black76::OptionType::Call)
            .delta;
        let contracts = Decimal::new(calls, 1);
        let hedge_units = ((calls as f64) * 0.1 * delta * 1000.0).round() as i64;
        prop_assume!(hedge_units != pair);
        let positions = format!(
            r#"{{"instrument":"BTCUSDC","size":"{q}","entry_price":"100000"}},{{"instrument":"BTCUSDT","size":"{h}","entry_price":"100000"}},{{"instrument":"{option}","size":"-{contracts}","entry_price":"1"}}"#,
            q = Decimal::new(pair, 3),
            h = Decimal::new(hedge_units - pair, 3),
        );
        let portfolio = report(&venue, &positions, r#""USDT":"1000000""#);
        let standard = {
            let text = format!(r#"{{"account":"s","mode":"cross","collateral":{{"USDT":"1000000"}},"positions":[{positions}]}}"#);
            let p = Portfolio::from_json("s.json", &text, &venue).unwrap();
            let market = Market::from_json("m.json", MARKET).unwrap();
            margin_report(&p, &MarketView::new(&venue, &market).unwrap()).unwrap()
        };
        prop_assert!(
            portfolio.maintenance_margin <= standard.maintenance_margin,
            "counter-example: portfolio MM {} above standard {} for {positions}",
            portfolio.maintenance_margin,
            standard.maintenance_margin
        );
    }
}

#[test]
fn the_span_grid_is_sixteen_scenarios_on_the_same_engine() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/span-16.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let params = &venue.portfolio_margin.as_ref().unwrap().underlyings["BTC"];
    let all = scenarios(params);
    assert_eq!(all.len(), 16);
    let extreme: Vec<_> = all.iter().filter(|s| s.extended).collect();
    assert_eq!(extreme.len(), 2);
    assert!(
        extreme
            .iter()
            .all(|s| s.weight == 0.35
                && s.vol == solvent_risk::portfolio_margin::VolShock::Unchanged)
    );
    // A 1 BTC long at 100,000 in SPAN: the worst full-weight loss is -15% = 15,000; the extreme
    // -30% counts 35% x 30,000 = 10,500, less.
    let portfolio = Portfolio::from_json(
        "p.json",
        r#"{"account":"s","mode":"portfolio","collateral":{"USDT":"50000"},"positions":[{"instrument":"BTCUSDT","size":"1","entry_price":"100000"}]}"#,
        &venue,
    )
    .unwrap();
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-01T08:00:00Z","index":{"BTC":"100000","USDT":"1"}}"#,
    )
    .unwrap();
    let report = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
    assert_eq!(report.maintenance_margin.value(), dec!(15000));
    // Absolute volatility shocks: 60% becomes 70% and 50%.
    let up = shocked_volatility(
        0.6,
        10.0,
        solvent_risk::portfolio_margin::VolShock::Up,
        params,
    );
    let down = shocked_volatility(
        0.6,
        10.0,
        solvent_risk::portfolio_margin::VolShock::Down,
        params,
    );
    assert!(
        (up - 0.7).abs() < 1e-12 && (down - 0.5).abs() < 1e-12,
        "{up} {down}"
    );
}

#[test]
fn the_deribit_venue_margins_each_currency_alone() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/deribit.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let params = venue.portfolio_margin.as_ref().unwrap();
    assert_eq!(params.max_offset, 0.0);
    assert_eq!(scenarios(&params.underlyings["BTC"]).len(), 35);
}

#[test]
fn an_options_liquidation_level_under_portfolio_margin_is_the_index_after_the_move() {
    // A short at-the-money call on 20,000 USDT: a rise of BTC liquidates the account; the call's
    // level is the BTC index after that rise, not the call's premium there.
    let venue = venue("");
    let report = report(
        &venue,
        r#"{"instrument":"BTC_USDT-31JAN26-100000-C","size":"-1","entry_price":"1"}"#,
        r#""USDT":"20000""#,
    );
    let call = &report.positions[0];
    assert_eq!(
        call.liquidation_price_of,
        solvent_risk::report::LiquidationLevel::Index
    );
    let level: f64 = call
        .liquidation_price
        .unwrap()
        .value()
        .to_string()
        .parse()
        .unwrap();
    let price_move = call.distance_to_liquidation_pct.unwrap() / 100.0;
    assert!(
        (level - 100_000.0 * (1.0 + price_move)).abs() < 1e-6,
        "{level}"
    );
    assert!(level > 100_000.0 && level < 200_000.0, "{level}");
    // At that move the account's health is 1 (the search's precision).
    let portfolio = Portfolio::from_json(
        "p.json",
        r#"{"account":"pm","mode":"portfolio","collateral":{"USDT":"20000"},"positions":[{"instrument":"BTC_USDT-31JAN26-100000-C","size":"-1","entry_price":"1"}]}"#,
        &venue,
    )
    .unwrap();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let shocked = solvent_risk::stress::shocked_report(
        &portfolio,
        &view,
        &solvent_core::shock::Shock::joint("liquidation", &["BTC".to_owned()], price_move),
    )
    .unwrap();
    let health = shocked.health.unwrap();
    assert!((health - 1.0).abs() < 1e-3, "{health}");
}
