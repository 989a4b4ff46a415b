//! Invariants of standard margin, checked on random positions and accounts:
//! IM >= MM >= 0; both non-decreasing in |size|; the waterfall and attribution add up exactly;
//! rounding never favours the account.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

mod support;

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_risk::standard::{Exposure, requirement};
use solvent_risk::{MarketView, margin_report};
use support::default_venue;

const INSTRUMENTS: [(&str, Decimal); 7] = [
    ("BTCUSDT", dec!(0.001)),
    ("ETHUSDT", dec!(0.01)),
    ("BTC_USDC-PERPETUAL", dec!(0.001)),
    ("SOL_USDC-PERPETUAL", dec!(0.1)),
    ("BTC-PERPETUAL", dec!(10)),
    ("BTC-27DEC26-110000-C", dec!(0.1)),
    ("BTC_USDC-27DEC26-80000-P", dec!(0.01)),
];

fn decimal(units: i64, step: Decimal) -> Decimal {
    Decimal::from(units) * step
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn initial_covers_maintenance_and_both_grow_with_size(
        which in 0usize..INSTRUMENTS.len(),
        units in 1i64..2_000_000,
        extra in 1i64..500_000,
        short in any::<bool>(),
        price_cents in 100i64..20_000_000,
        leverage in proptest::option::of(1i64..100),
    ) {
        let venue = default_venue();
        let (name, step) = INSTRUMENTS[which];
        let instrument = venue.instrument(name).unwrap();
        let sign = if short { Decimal::NEGATIVE_ONE } else { Decimal::ONE };
        let is_option = name.ends_with("-C") || name.ends_with("-P");
        // Option marks are premiums: keep them below the underlying (coin premium below 1).
        let underlying = Decimal::new(price_cents, 2);
        let mark = if is_option {
            if name.starts_with("BTC_USDC") { underlying / dec!(10) } else { dec!(0.05) }
        } else {
            underlying
        };
        let at = |size: Decimal| {
            requirement(&Exposure {
                instrument: &instrument,
                size,
                mark,
                underlying_usd: underlying,
                leverage: leverage.map(Decimal::from),
                open_interest_usd: None,
        expired: false,
            })
            .unwrap()
        };
        let small = at(sign * decimal(units, step));
        let large = at(sign * decimal(units + extra, step));
        prop_assert!(small.maintenance >= Decimal::ZERO);
        prop_assert!(small.initial >= small.maintenance, "{name}: IM {} < MM {}", small.initial, small.maintenance);
        prop_assert!(large.initial >= small.initial, "{name}: IM fell with size");
        prop_assert!(large.maintenance >= small.maintenance, "{name}: MM fell with size");
    }

    #[test]
    fn the_waterfall_and_attribution_sum_exactly(
        sizes in proptest::collection::vec(-5_000i64..5_000, 1..6),
        btc in 8_000_000i64..15_000_000,
        usdt in 0i64..10_000_000,
    ) {
        let venue = default_venue();
        let names = ["BTCUSDT", "ETHUSDT", "BTC_USDC-PERPETUAL", "BTC-PERPETUAL", "BTC-27DEC26-110000-C"];
        let mut positions = Vec::new();
        for (index, units) in sizes.iter().enumerate() {
            if *units == 0 { continue; }
            let size = match names[index] {
                "BTC-PERPETUAL" => Decimal::from(*units) * dec!(10),
                "ETHUSDT" => Decimal::from(*units) * dec!(0.01),
                "BTC-27DEC26-110000-C" => Decimal::from(*units) * dec!(0.1),
                _ => Decimal::from(*units) * dec!(0.001),
            };
            let entry = if names[index].ends_with("-C") { "0.02" } else if names[index] == "ETHUSDT" { "3000" } else { "95000" };
            positions.push(format!(r#"{{"instrument":"{}","size":"{size}","entry_price":"{entry}"}}"#, names[index]));
        }
        let text = format!(
            r#"{{"account":"p","mode":"cross","collateral":{{"USDT":"{usdt}","BTC":"1.5"}},"positions":[{}]}}"#,
            positions.join(",")
        );
        let portfolio = Portfolio::from_json("p.json", &text, &venue).unwrap();
        let market = Market::from_json("m.json", &format!(
            r#"{{"timestamp":"2026-06-01T08:00:00Z","index":{{"BTC":"{}","ETH":"3100","USDT":"1","USDC":"1"}},
                "vol":{{"BTC":{{"27DEC26":{{"strikes":[80000,100000,120000],"vols":[0.55,0.5,0.52]}}}}}}}}"#,
            Decimal::new(btc, 2)
        )).unwrap();
        let view = MarketView::new(&venue, &market).unwrap();
        let report = margin_report(&portfolio, &view).unwrap();
        let sum = |prefixes: &[&str]| -> Decimal {
            report.components.iter()
                .filter(|c| prefixes.iter().any(|p| c.name.starts_with(p)))
                .map(|c| c.amount.value())
                .sum()
        };
        prop_assert_eq!(sum(&["collateral:", "upnl:", "option_value:"]), report.equity.value());
        prop_assert_eq!(sum(&["initial_margin:", "borrow_initial_margin:"]), report.initial_margin.value());
        prop_assert_eq!(sum(&["maintenance_margin:", "borrow_maintenance_margin:"]), report.maintenance_margin.value());
        let attributed: Decimal = report.positions.iter().map(|p| p.initial_margin.value()).sum();
        prop_assert_eq!(attributed, report.initial_margin.value());
        prop_assert!(report.initial_margin >= report.maintenance_margin);
        // Every amount is at the asset's precision (USDT: 6 decimals).
        for component in &report.components {
            prop_assert!(component.amount.value().normalize().scale() <= 6, "{}", component.name);
        }
        if !report.initial_margin.is_zero() {
            let shares: f64 = report.positions.iter().map(|p| p.im_share).sum();
            prop_assert!((shares - 1.0).abs() < 1e-9);
        }
    }
}

mod fast_path {
    use super::*;
    use solvent_risk::prepared::{KernelRules, PreparedAccount, PreparedMark};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The filtered f64 path gives exactly the Decimal figures, which are the report's.
        #[test]
        fn the_fast_path_equals_the_exact_path_and_the_report(
            btc_units in -30_000i64..30_000,
            eth_units in -50_000i64..50_000,
            usdc_units in -20_000i64..20_000,
            inverse_contracts in -100_000i64..100_000,
            btc_mark_cents in 1_000_000i64..20_000_000,
            eth_mark_cents in 100_000i64..600_000,
            mark_extra_decimals in 0u32..6,
            leverage in 1i64..126,
            other_leverage in 1i64..126,
            report_in_usdc in any::<bool>(),
        ) {
            let venue = default_venue();
            let portfolio_at = |leverage: i64| {
                let mut positions = Vec::new();
                let mut add = |name: &str, size: Decimal, entry: &str| {
                    if !size.is_zero() {
                        positions.push(format!(
                            r#"{{"instrument":"{name}","size":"{size}","entry_price":"{entry}","leverage":{leverage}}}"#
                        ));
                    }
                };
                add("BTCUSDT", Decimal::new(btc_units, 3), "91234.5");
                add("ETHUSDT", Decimal::new(eth_units, 2), "3101.37");
                add("BTC_USDC-PERPETUAL", Decimal::new(usdc_units, 3), "90000");
                add("BTC-PERPETUAL", Decimal::from(inverse_contracts * 10), "95210.5");
                let settlement = if report_in_usdc { "USDC" } else { "USDT" };
                let text = format!(
                    r#"{{"account":"f","mode":"cross","collateral":{{"USDT":"50000","BTC":"0.7"}},"settlement_asset":"{settlement}","positions":[{}]}}"#,
                    positions.join(",")
                );
                Portfolio::from_json("p.json", &text, &venue).unwrap()
            };
            let portfolio = portfolio_at(leverage);
            // Marks with extra decimals exercise the undecidable cases and their exact fallback.
            let btc_mark = Decimal::new(btc_mark_cents * 10i64.pow(mark_extra_decimals) + 7, 2 + mark_extra_decimals);
            let eth_mark = Decimal::new(eth_mark_cents, 2);
            let market = Market::from_json("m.json", &format!(
                r#"{{"timestamp":"2026-06-01T08:00:00Z","index":{{"BTC":"{btc_mark}","ETH":"{eth_mark}","USDT":"1.0003","USDC":"0.9999"}},
                    "mark":{{"BTCUSDT":"{btc_mark}","ETHUSDT":"{eth_mark}","BTC_USDC-PERPETUAL":"{btc_mark}","BTC-PERPETUAL":"{btc_mark}"}}}}"#
            )).unwrap();
            let view = MarketView::new(&venue, &market).unwrap();
            let prepared = PreparedAccount::new(&portfolio, &view).unwrap();
            let marks: Vec<PreparedMark> = portfolio.positions.iter().map(|p| PreparedMark::new(market.mark[&p.instrument.name].value())).collect();
            let fast = prepared.figures(&marks).unwrap();
            let exact = prepared.figures_exact(&marks).unwrap();
            prop_assert_eq!(fast, exact);
            let report = margin_report(&portfolio, &view).unwrap();
            prop_assert_eq!(fast.equity, report.equity.value());
            prop_assert_eq!(fast.initial_margin, report.initial_margin.value());
            prop_assert_eq!(fast.maintenance_margin, report.maintenance_margin.value());
            // Preparations sharing the venue's rule tables (as the engine's do): a second
            // account at another leverage reads the tables the first one's preparation made.
            let mut rules = KernelRules::new();
            let other = portfolio_at(other_leverage);
            let first = PreparedAccount::with_rules(&portfolio, &view, &mut rules).unwrap();
            let cached = rules.len();
            let second = PreparedAccount::with_rules(&other, &view, &mut rules).unwrap();
            prop_assert_eq!(rules.len(), cached);
            prop_assert_eq!(first.figures(&marks).unwrap(), fast);
            let report = margin_report(&other, &view).unwrap();
            let shared = second.figures(&marks).unwrap();
            prop_assert_eq!(shared.equity, report.equity.value());
            prop_assert_eq!(shared.initial_margin, report.initial_margin.value());
            prop_assert_eq!(shared.maintenance_margin, report.maintenance_margin.value());
        }
    }
}
