//! Volatility-scaled ranges cost no more per account than the static grid once the forecast is
//! made (issue 15 item 4): the scaled grid has the static grid's scenarios, only moved.
//!
//! Workload (seeded, ChaCha8): the default venue, one market (BTC, ETH with smiles), 1,000
//! portfolio-mode accounts of 6 positions (linear perpetuals, inverse futures, BTC and ETH
//! options), each margined by [`margin_report`] (the product path: the full report) with
//! - `static`: the venue's grid (BTC +/-16%, ETH +/-20%);
//! - `scaled`: the grids scaled to the ranges of 2026-01-05 (BTC 5.70%, ETH 14.00%, as
//!   `solvent margin --venue examples/vol-scaled-venue.toml --history ...` reports them).
//!
//! The forecast itself is made once a day per underlying, not per account: `forecast_*` times
//! it on 3,000 seeded returns (about the length of the shared BTC history).
//!
//! Run: `cargo bench -p solvent-risk --bench vol_scaled`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::civil::Date;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_core::vol_scaled::{AntiProcyclicality, VolModel, VolScaledRange};
use solvent_risk::vol_scaled::{range_path, scaled_grid};
use solvent_risk::{MarketView, margin_report};

const ACCOUNTS: usize = 1_000;
const SEED: u64 = 20_261_205;

fn market() -> Market {
    let smile = |spot: f64, atm: f64| {
        let strikes: Vec<f64> = [0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.6, 2.0]
            .iter()
            .map(|m| (spot * m).round())
            .collect();
        let vols: Vec<f64> = strikes
            .iter()
            .map(|k| {
                let x = (k / spot).ln();
                atm - 0.1 * x + 0.5 * x * x
            })
            .collect();
        json!({"strikes": strikes, "vols": vols})
    };
    let text = json!({
        "timestamp": "2026-01-06T08:00:00Z",
        "index": {"BTC": "93859.71", "ETH": "3224.99", "USDT": "1", "USDC": "1"},
        "vol": {
            "BTC": {"27MAR26": smile(93_859.71, 0.52), "26JUN26": smile(93_859.71, 0.55)},
            "ETH": {"27MAR26": smile(3_224.99, 0.70)},
        },
        "rate": 0.0,
    });
    Market::from_json("bench-market.json", &text.to_string()).unwrap()
}

fn accounts(venue: &Venue) -> Vec<Portfolio> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    (0..ACCOUNTS)
        .map(|i| {
            // A non-zero size of at most `scale` in magnitude, either sign, in steps of `step`.
            let mut size = |scale: f64, step: f64| {
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let steps = (rng.random::<f64>() * scale / step).floor().max(1.0);
                let decimals = usize::from(step < 1.0);
                format!("{:.*}", decimals, sign * steps * step)
            };
            let text = json!({
                "account": format!("a{i}"),
                "mode": "portfolio",
                "collateral": {"USDT": "1000000", "BTC": "2"},
                "positions": [
                    {"instrument": "BTCUSDT", "size": size(5.0, 0.1), "entry_price": "93000"},
                    {"instrument": "ETHUSDT", "size": size(50.0, 0.1), "entry_price": "3200"},
                    {"instrument": "BTC-27MAR26", "size": "-50000", "entry_price": "94000"},
                    {"instrument": "BTC-27MAR26-110000-C", "size": size(10.0, 0.1), "entry_price": "0.02"},
                    {"instrument": "BTC-26JUN26-80000-P", "size": size(10.0, 0.1), "entry_price": "0.03"},
                    {"instrument": "ETH-27MAR26-3000-P", "size": size(50.0, 1.0), "entry_price": "0.05"},
                ],
            });
            Portfolio::from_json("bench.json", &text.to_string(), venue).unwrap()
        })
        .collect()
}

fn scaled_venue(venue: &Venue) -> Venue {
    let mut scaled = venue.clone();
    let pm = scaled.portfolio_margin.as_mut().unwrap();
    for (name, range) in [("BTC", 0.0570), ("ETH", 0.1400)] {
        let grid = scaled_grid(&pm.underlyings[name], range);
        pm.underlyings.insert(name.to_owned(), grid);
    }
    scaled
}

fn bench(c: &mut Criterion) {
    let venue = Venue::from_toml(
        "default.toml",
        solvent_core::shipped::shipped("default").unwrap(),
    )
    .unwrap();
    let scaled = scaled_venue(&venue);
    let market = market();
    let portfolios = accounts(&venue);
    let mut group = c.benchmark_group("vol_scaled");
    group.throughput(Throughput::Elements(ACCOUNTS as u64));
    for (label, v) in [
        ("static_grid_1000_accounts", &venue),
        ("scaled_grid_1000_accounts", &scaled),
    ] {
        let view = MarketView::new(v, &market).unwrap();
        // Every account is margined (the same figures the report gives).
        for p in &portfolios {
            margin_report(p, &view).unwrap();
        }
        group.bench_function(label, |b| {
            b.iter(|| {
                for p in &portfolios {
                    black_box(margin_report(black_box(p), &view).unwrap());
                }
            });
        });
    }
    group.finish();

    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let returns: Vec<f64> = (0..3000)
        .map(|_| (rng.random::<f64>() - 0.5) * 0.08)
        .collect();
    let first: Date = "2017-08-17".parse().unwrap();
    let dates: Vec<Date> = (0..=3000)
        .map(|i| first.checked_add(jiff::Span::new().days(i)).unwrap())
        .collect();
    let mut forecast = c.benchmark_group("vol_scaled_forecast");
    for (label, model) in [
        (
            "forecast_ewma_3000_returns",
            VolModel::Ewma { lambda: 0.94 },
        ),
        (
            "forecast_garch_fit_once_3000_returns",
            VolModel::Garch { refit_days: 5000 },
        ),
    ] {
        let spec = VolScaledRange {
            model,
            k: 3.0,
            floor: 0.04,
            margin_period_days: 1,
            control: AntiProcyclicality::Buffer {
                share: 0.25,
                rebuild_days: 20,
            },
        };
        forecast.bench_function(label, |b| {
            b.iter(|| black_box(range_path(&dates, black_box(&returns), &spec).unwrap()));
        });
    }
    forecast.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
