//! Tests of portfolio margin: the grid, the scan, and the full and lean paths against each other.

#![allow(clippy::unwrap_used)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use solvent_core::market::Market;
use solvent_core::venue::Venue;

use super::lean::lowest;
use super::*;

/// The full path's scan, written plainly: the first scenario strictly below all before it.
fn strict_scan(values: &[f64], weights: &[f64], inverse: f64) -> Worst {
    let mut worst = Worst {
        index: 0,
        pnl: f64::INFINITY,
    };
    for (index, (value, weight)) in values.iter().zip(weights).enumerate() {
        let weighted = value * inverse * weight;
        if weighted < worst.pnl {
            worst = Worst {
                index,
                pnl: weighted,
            };
        }
    }
    worst
}

fn to_lanes(values: &[f64], fill: f64) -> Vec<Lane> {
    let mut flat = values.to_vec();
    flat.resize(values.len().div_ceil(LANES) * LANES, fill);
    flat.chunks_exact(LANES)
        .map(|chunk| {
            let mut lane = [fill; LANES];
            lane.copy_from_slice(chunk);
            lane
        })
        .collect()
}

#[test]
fn lowest_finds_the_first_minimum_a_strict_scan_finds() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Few distinct values, so ties across lanes are common; NaN, signed zeros, infinities.
    let pool = [
        -3.0,
        -1.0,
        -0.0,
        0.0,
        2.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    for case in 0..20_000 {
        let count = rng.random_range(1..=40);
        let values: Vec<f64> = (0..count)
            .map(|_| pool[rng.random_range(0..pool.len())])
            .collect();
        let weights: Vec<f64> = (0..count)
            .map(|_| if rng.random_bool(0.8) { 1.0 } else { 0.5 })
            .collect();
        let expected = strict_scan(&values, &weights, 1.0);
        let got = lowest(&to_lanes(&values, 0.0), &to_lanes(&weights, f64::NAN), 1.0);
        assert_eq!(got.index, expected.index, "case {case}: {values:?}");
        assert!(
            got.pnl == expected.pnl || (got.pnl.is_nan() && expected.pnl.is_nan()),
            "case {case}: {} != {}",
            got.pnl,
            expected.pnl
        );
    }
}

const MARKET: &str = r#"{"timestamp":"2026-01-06T08:00:00Z",
    "index":{"BTC":"93859.71","ETH":"3224.99","SOL":"137.9","USDT":"1","USDC":"1"},
    "vol":{"BTC":{"30JAN26":{"strikes":[80000,94000,110000],"vols":[0.55,0.48,0.5]}}},
    "rate":0.03}"#;

#[test]
fn prepared_lean_path_is_the_full_paths_maintenance_margin_in_every_report_currency() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let params = venue.portfolio_margin.clone().unwrap();
    lean_path_matches_the_full_path(&venue, &params);
}

#[test]
fn prepared_lean_path_is_the_full_paths_for_grids_of_every_width() {
    // 35 scenarios take the register path for 9 lanes; these widths take others: 5 scenarios
    // (2 lanes), 27 + 22 = 49 (13 lanes, past the widest in registers) and 27 + 45 = 72.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    for extended in [0, 22, 45] {
        let mut params = venue.portfolio_margin.clone().unwrap();
        for underlying in params.underlyings.values_mut() {
            if extended == 0 {
                underlying.price_moves = vec![-0.1, 0.0, 0.1];
                underlying.vol_shocks.truncate(1);
                underlying.extended_moves = vec![-0.5, 2.0];
            } else {
                underlying.extended_moves = (0..extended)
                    .map(|i| {
                        if i % 2 == 0 {
                            -0.02 * f64::from(i + 1)
                        } else {
                            0.1 * f64::from(i)
                        }
                    })
                    .collect();
            }
        }
        lean_path_matches_the_full_path(&venue, &params);
    }
}

fn lean_path_matches_the_full_path(venue: &Venue, params: &PortfolioMarginParams) {
    let params = params.clone();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(venue, &market).unwrap();
    let instruments: Vec<_> = [
        "BTC-PERPETUAL",
        "ETH-PERPETUAL",
        "SOL_USDC-PERPETUAL",
        "BTC-30JAN26-94000-C",
        "BTC-30JAN26-80000-P",
        "BTC-30JAN26-110000-C",
    ]
    .iter()
    .map(|name| venue.instrument(name).unwrap())
    .collect();
    let refs: Vec<&Instrument> = instruments.iter().map(AsRef::as_ref).collect();
    let spot = [("BTC".to_owned(), "BTC".to_owned())];
    let book = ScenarioBook::new(&view, &params, &refs, &spot).unwrap();
    let correlations = Correlations::new(&book, &params);
    let btc = book.underlyings.get_index_of("BTC").unwrap();
    let currencies = [
        ReportCurrency {
            price_usd: 1.0,
            priced_by: None,
            equity_usd: 0.0,
        },
        ReportCurrency {
            price_usd: 0.9997,
            priced_by: None,
            equity_usd: 0.0,
        },
        ReportCurrency {
            price_usd: book.underlyings[btc].price_usd,
            priced_by: Some(btc),
            equity_usd: 250_000.0,
        },
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut scratch = Scratch::default();
    for account in 0..2_000 {
        let count = rng.random_range(1..=8);
        let exposures: Vec<Exposure> = (0..count)
            .map(|_| {
                let underlying = rng.random_range(0..book.underlyings.len());
                let rows = book.underlyings[underlying].instruments.len();
                Exposure {
                    underlying,
                    instrument: rng.random_range(0..rows),
                    amount: rng.random_range(-5.0..5.0),
                    position: None,
                }
            })
            .collect();
        let prepared = PreparedExposures::new(&exposures);
        assert_eq!(prepared.len(), exposures.len());
        for currency in &currencies {
            let full = portfolio_risk(&book, &params, &exposures, currency)
                .unwrap()
                .maintenance_margin;
            let lean = maintenance_margin_prepared(
                &book,
                &correlations,
                params.max_offset,
                &prepared,
                currency,
                &mut scratch,
            )
            .unwrap();
            let unprepared = maintenance_margin(
                &book,
                &correlations,
                params.max_offset,
                &exposures,
                currency,
                &mut scratch,
            )
            .unwrap();
            assert_eq!(lean.to_bits(), unprepared.to_bits());
            // The same operations in the same order (the conversion skipped only where it
            // divides by 1), so the same bits in every report currency.
            assert_eq!(
                lean.to_bits(),
                full.to_bits(),
                "account {account} in {currency:?}: lean {lean} != full {full}"
            );
        }
    }
}

#[test]
fn an_exposure_outside_the_book_is_an_error_not_a_panic() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let params = venue.portfolio_margin.clone().unwrap();
    let market = Market::from_json("m.json", MARKET).unwrap();
    let view = MarketView::new(&venue, &market).unwrap();
    let perpetual = venue.instrument("BTC-PERPETUAL").unwrap();
    let book = ScenarioBook::new(&view, &params, &[perpetual.as_ref()], &[]).unwrap();
    let correlations = Correlations::new(&book, &params);
    let currency = ReportCurrency {
        price_usd: 1.0,
        priced_by: None,
        equity_usd: 0.0,
    };
    for (underlying, instrument) in [(0, 1), (1, 0), (usize::MAX, 0), (0, usize::MAX)] {
        let exposures = [Exposure {
            underlying,
            instrument,
            amount: 1.0,
            position: None,
        }];
        let result = maintenance_margin(
            &book,
            &correlations,
            params.max_offset,
            &exposures,
            &currency,
            &mut Scratch::default(),
        );
        assert!(matches!(result, Err(RiskError::Unsupported { .. })));
    }
}
