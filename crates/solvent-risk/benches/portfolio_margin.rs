//! Portfolio margin throughput (DESIGN.md 12: >= 20x the fastest numpy of the same model,
//! `bench/peers/portfolio_margin.py`: exposure matrices times scenario P&L matrices, run by
//! `bench/portfolio_margin.sh`, which also checks the peer and the test oracle
//! `scripts/oracles/pm_oracle.py` against Rust's MM and IM of every account).
//!
//! Workload (seeded, ChaCha8): the default venue, one market (BTC, ETH, SOL; smiles for BTC and
//! ETH), a shared set of listed instruments (perpetuals, inverse futures, BTC and ETH inverse and
//! `BTC_USDC` options, all model-marked), 10,000 portfolio-mode accounts of 10 positions each on
//! those instruments, reported in USDT; every underlying has 9 x 3 + 8 = 35 scenarios.
//! - `revaluation`: [`ScenarioBook::new`], every instrument revalued once per scenario;
//! - `maintenance_margin_prepared_10000_accounts`: the lean path over every account, each
//!   prepared beforehand ([`PreparedExposures::new`], not timed): what a price update costs in
//!   real use, where an account is prepared once when its positions change and reused across
//!   every price update (the book's revaluation, timed above, is the price update's other part);
//!   throughput = accounts; nanoseconds per position-scenario = time per account / (10 x 35);
//! - `maintenance_margin_10000_accounts`: the same from the plain exposures, grouping them by
//!   underlying inside every call (the cost when an account is margined once).
//!
//! With `SOLVENT_PM_WORKLOAD=path` the workload (in `scripts/oracles/pm_oracle.py`'s case format,
//! with Rust's MM and IM of every account) is written there for the peer, before timing.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use solvent_core::instrument::{Instrument, OptionRight, Style, Terms};
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::portfolio_margin::{
    Combine, PortfolioMarginParams, UnderlyingParams, VolShock, VolShockMode,
};
use solvent_core::venue::Venue;
use solvent_risk::MarketView;
use solvent_risk::portfolio_margin::{
    Correlations, Exposure, PreparedExposures, ReportCurrency, ScenarioBook, Scratch, exposures,
    maintenance_margin, maintenance_margin_prepared, portfolio_risk,
};
use solvent_risk::valuation::MarkSource;

const ACCOUNTS: usize = 10_000;
const POSITIONS: usize = 10;
const NOW: &str = "2026-01-06T08:00:00Z";
const SEED: u64 = 20_260_106;

fn market() -> Market {
    let smile = |spot: f64, atm: f64| {
        let strikes: Vec<f64> = [0.5, 0.7, 0.85, 0.95, 1.0, 1.05, 1.15, 1.3, 1.6, 2.0]
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
        "timestamp": NOW,
        "index": {"BTC": "93859.71", "ETH": "3224.99", "SOL": "137.9", "USDT": "1", "USDC": "1"},
        "mark": {"BTCUSDT": "93871.2", "ETHUSDT": "3226.1", "BTC-27MAR26": "95012.5"},
        "vol": {
            "BTC": {"30JAN26": smile(93_859.71, 0.48), "27MAR26": smile(93_859.71, 0.52), "26JUN26": smile(93_859.71, 0.55)},
            "ETH": {"30JAN26": smile(3_224.99, 0.66), "27MAR26": smile(3_224.99, 0.70)},
        },
        "rate": 0.03,
    });
    Market::from_json("bench-market.json", &text.to_string()).unwrap()
}

fn instrument_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "BTCUSDT",
        "ETHUSDT",
        "BTC_USDC-PERPETUAL",
        "SOL_USDC-PERPETUAL",
        "BTC-PERPETUAL",
        "ETH-PERPETUAL",
        "BTC-30JAN26",
        "BTC-27MAR26",
        "BTC-26JUN26",
        "ETH-27MAR26",
        "ETH-26JUN26",
    ]
    .iter()
    .map(|n| (*n).to_owned())
    .collect();
    for (prefix, spot, step, expiries) in [
        (
            "BTC",
            93_859.71_f64,
            1000.0,
            &["09JAN26", "30JAN26", "27MAR26", "26JUN26"][..],
        ),
        ("ETH", 3_224.99, 50.0, &["30JAN26", "27MAR26"][..]),
        ("BTC_USDC", 93_859.71, 1000.0, &["30JAN26", "27MAR26"][..]),
    ] {
        for expiry in expiries {
            for moneyness in [0.7, 0.85, 0.95, 1.0, 1.05, 1.15, 1.3, 1.6] {
                for right in ["C", "P"] {
                    let strike: f64 = (spot * moneyness / step).round() * step;
                    names.push(format!("{prefix}-{expiry}-{strike}-{right}"));
                }
            }
        }
    }
    names
}

fn f64_of(value: Decimal) -> f64 {
    value.to_f64().unwrap()
}

/// 10 distinct instruments per account, signed sizes on each instrument's step.
fn portfolios(venue: &Venue, market: &Market, instruments: &[Arc<Instrument>]) -> Vec<Portfolio> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let btc = f64_of(market.index["BTC"].value());
    (0..ACCOUNTS)
        .map(|index| {
            let scale = 10f64.powf(rng.random_range(-1.5..1.0));
            let positions: Vec<Value> = sample(&mut rng, instruments.len(), POSITIONS)
                .into_iter()
                .map(|slot| {
                    let instrument = &instruments[slot];
                    let spot = f64_of(market.index[instrument.underlying.as_str()].value());
                    let coins = scale * btc / spot * rng.random_range(0.05..1.0);
                    let sign = if rng.random_bool(0.5) { 1 } else { -1 };
                    let units = match (&instrument.terms, instrument.style) {
                        (Terms::Option { .. }, _) | (_, Style::Linear) => coins,
                        (_, Style::Inverse) => coins * spot,
                    };
                    let steps = (units / f64_of(instrument.size_step)).round().max(1.0);
                    let size = Decimal::from(sign * steps as i64) * instrument.size_step;
                    let entry = spot * rng.random_range(0.9..1.1);
                    json!({"instrument": instrument.name, "size": size.normalize().to_string(), "entry_price": format!("{entry:.1}")})
                })
                .collect();
            let text = json!({
                "account": format!("a{index}"),
                "mode": "portfolio",
                "settlement_asset": "USDT",
                "collateral": {"USDT": "100000"},
                "positions": positions,
            });
            Portfolio::from_json("bench.json", &text.to_string(), venue).unwrap()
        })
        .collect()
}

// ---- the workload for the numpy peer (pm_oracle.py's case format) --------------------------

fn shock(s: VolShock) -> &'static str {
    match s {
        VolShock::Up => "up",
        VolShock::Unchanged => "unchanged",
        VolShock::Down => "down",
    }
}

fn combine(c: Combine) -> &'static str {
    match c {
        Combine::Add => "add",
        Combine::Floor => "floor",
    }
}

fn params_json(p: &UnderlyingParams) -> Value {
    json!({
        "price_moves": p.price_moves,
        "vol_shocks": p.vol_shocks.iter().map(|s| shock(*s)).collect::<Vec<_>>(),
        "vol_shock_mode": if p.vol_shock_mode == VolShockMode::Relative { "relative" } else { "absolute" },
        "vol_shock_up": p.vol_shock_up,
        "vol_shock_down": p.vol_shock_down,
        "vol_up_floor": p.vol_up_floor,
        "vol_power_short": p.vol_power_short,
        "vol_power_long": p.vol_power_long,
        "extended_moves": p.extended_moves,
        "extended_dampener": p.extended_dampener,
        "extended_weight": p.extended_weight,
        "extended_vol": shock(p.extended_vol),
        "min_delta_rate": p.min_delta_rate,
        "hedged_delta_rate": p.hedged_delta_rate,
        "min_delta_combine": combine(p.min_delta_combine),
        "short_option_minimum": p.short_option_minimum,
        "short_option_combine": combine(p.short_option_combine),
        "roll_shock": p.roll_shock,
        "delta_shock_threshold": p.delta_shock_threshold,
        "delta_shock_rate": p.delta_shock_rate,
        "half_spread": p.half_spread,
        "impact": p.impact,
        "adv_usd": p.adv_usd,
        "concentration_threshold_usd": p.concentration_threshold_usd,
        "concentration_rate": p.concentration_rate,
    })
}

fn instrument_json(view: &MarketView<'_>, instrument: &Instrument) -> Value {
    let spot = f64_of(view.index(&instrument.underlying, "bench").unwrap());
    let mark = view.mark(instrument).unwrap();
    let mut out = json!({
        "name": instrument.name,
        "underlying": instrument.underlying,
        "style": if instrument.style == Style::Inverse { "inverse" } else { "linear" },
        "contract_size": f64_of(instrument.contract_size),
        "mark": f64_of(mark.price),
        "mark_source": match mark.source {
            MarkSource::Given => "given",
            MarkSource::Index => "index",
            MarkSource::Model { .. } => "model",
        },
    });
    match &instrument.terms {
        Terms::Perpetual => out["kind"] = json!("perpetual"),
        Terms::Future { expiry } => {
            out["kind"] = json!("future");
            out["expiry"] = json!(expiry.to_string());
        }
        Terms::Option {
            expiry,
            strike,
            right,
        } => {
            let MarkSource::Model { volatility, .. } = mark.source else {
                panic!("bench options are model-marked")
            };
            let time = view.years_to(*expiry).max(0.0);
            let rate = view.market().rate;
            out["kind"] = json!("option");
            out["expiry"] = json!(expiry.to_string());
            out["time"] = json!(time);
            out["strike"] = json!(strike.to_f64());
            out["right"] = json!(if *right == OptionRight::Call {
                "call"
            } else {
                "put"
            });
            out["vol"] = json!(volatility);
            out["forward"] = json!(spot * (rate * time).exp());
            out["discount"] = json!((-rate * time).exp());
        }
    }
    out
}

struct Workload<'a> {
    view: &'a MarketView<'a>,
    params: &'a PortfolioMarginParams,
    book: &'a ScenarioBook,
    instruments: &'a [Arc<Instrument>],
    portfolios: &'a [Portfolio],
    exposures: &'a [Vec<Exposure>],
    currency: &'a ReportCurrency,
}

fn write_workload(path: &Path, w: &Workload<'_>) {
    let underlyings: Vec<Value> = w
        .book
        .underlyings
        .values()
        .map(|u| json!({"name": u.name, "price": u.price_usd, "params": params_json(&w.params.underlyings[&u.name])}))
        .collect();
    let instruments: Vec<Value> = w
        .instruments
        .iter()
        .map(|i| instrument_json(w.view, i))
        .collect();
    let accounts: Vec<Value> = w
        .portfolios
        .iter()
        .zip(w.exposures)
        .map(|(portfolio, exposures)| {
            let risk = portfolio_risk(w.book, w.params, exposures, w.currency).unwrap();
            json!({
                "id": portfolio.account,
                "positions": portfolio.positions.iter().map(|p| json!({
                    "instrument": p.instrument.name,
                    "size": p.size.value().to_string(),
                    "entry": p.entry_price.value().to_string(),
                })).collect::<Vec<_>>(),
                "spot": [],
                "rust": {"mm": risk.maintenance_margin, "im": risk.initial_margin},
            })
        })
        .collect();
    let case = json!({
        "timestamp": NOW,
        "rate": w.view.market().rate,
        "report": {"asset": "USDT", "price_usd": w.currency.price_usd},
        "im_factor": w.params.im_factor,
        "max_offset": w.params.max_offset,
        "correlations": w.params.correlations.iter().map(|(a, b, rho)| json!([a, b, rho])).collect::<Vec<_>>(),
        "underlyings": underlyings,
        "instruments": instruments,
        "accounts": accounts,
    });
    std::fs::write(path, case.to_string()).unwrap();
}

fn portfolio_margin(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let params = venue.portfolio_margin.clone().unwrap();
    let market = market();
    let view = MarketView::new(&venue, &market).unwrap();
    let instruments: Vec<Arc<Instrument>> = instrument_names()
        .iter()
        .map(|n| venue.instrument(n).unwrap())
        .collect();
    let refs: Vec<&Instrument> = instruments.iter().map(AsRef::as_ref).collect();
    let portfolios = portfolios(&venue, &market, &instruments);
    let book = ScenarioBook::new(&view, &params, &refs, &[]).unwrap();
    let scenarios: Vec<usize> = book
        .underlyings
        .values()
        .map(|u| u.scenarios.len())
        .collect();
    assert!(scenarios.iter().all(|&n| n == 9 * 3 + 8), "{scenarios:?}");
    let exposures: Vec<Vec<Exposure>> = portfolios
        .iter()
        .map(|p| exposures(p, &book).unwrap())
        .collect();
    let prepared: Vec<PreparedExposures> = exposures
        .iter()
        .map(|e| PreparedExposures::new(e))
        .collect();
    let correlations = Correlations::new(&book, &params);
    let currency = ReportCurrency {
        price_usd: 1.0,
        priced_by: None,
        equity_usd: 0.0,
    };
    // The timed lean path is the full path's maintenance margin (ES is not enabled here).
    let mut scratch = Scratch::default();
    for (account, exposures) in prepared.iter().zip(&exposures) {
        let full = portfolio_risk(&book, &params, exposures, &currency)
            .unwrap()
            .maintenance_margin;
        let lean = maintenance_margin_prepared(
            &book,
            &correlations,
            params.max_offset,
            account,
            &currency,
            &mut scratch,
        )
        .unwrap();
        assert!(
            (lean - full).abs() <= 1e-12 * full.abs().max(1.0),
            "{lean} != {full}"
        );
    }
    if let Some(path) = std::env::var_os("SOLVENT_PM_WORKLOAD") {
        write_workload(
            Path::new(&path),
            &Workload {
                view: &view,
                params: &params,
                book: &book,
                instruments: &instruments,
                portfolios: &portfolios,
                exposures: &exposures,
                currency: &currency,
            },
        );
    }

    let mut group = c.benchmark_group("portfolio_margin");
    group.throughput(Throughput::Elements(instruments.len() as u64));
    group.bench_function("revaluation", |b| {
        b.iter(|| black_box(ScenarioBook::new(&view, &params, black_box(&refs), &[]).unwrap()));
    });
    group.throughput(Throughput::Elements(ACCOUNTS as u64));
    group.bench_function("maintenance_margin_prepared_10000_accounts", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut total = 0.0;
            for account in &prepared {
                total += maintenance_margin_prepared(
                    &book,
                    &correlations,
                    params.max_offset,
                    black_box(account),
                    &currency,
                    &mut scratch,
                )
                .unwrap();
            }
            black_box(total)
        });
    });
    group.bench_function("maintenance_margin_10000_accounts", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut total = 0.0;
            for account in &exposures {
                total += maintenance_margin(
                    &book,
                    &correlations,
                    params.max_offset,
                    black_box(account),
                    &currency,
                    &mut scratch,
                )
                .unwrap();
            }
            black_box(total)
        });
    });
    group.finish();

    // Nanoseconds per position-scenario, from a direct timing of the same loops (best of 20).
    let mut scratch = Scratch::default();
    let mut best_of_20 = |run: &mut dyn FnMut(&mut Scratch) -> f64| {
        (0..20)
            .map(|_| {
                let start = std::time::Instant::now();
                black_box(run(&mut scratch));
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let lean_prepared = best_of_20(&mut |scratch| {
        prepared
            .iter()
            .map(|account| {
                maintenance_margin_prepared(
                    &book,
                    &correlations,
                    params.max_offset,
                    black_box(account),
                    &currency,
                    scratch,
                )
                .unwrap()
            })
            .sum()
    });
    let lean = best_of_20(&mut |scratch| {
        exposures
            .iter()
            .map(|account| {
                maintenance_margin(
                    &book,
                    &correlations,
                    params.max_offset,
                    black_box(account),
                    &currency,
                    scratch,
                )
                .unwrap()
            })
            .sum()
    });
    let position_scenarios = (ACCOUNTS * POSITIONS * (9 * 3 + 8)) as f64;
    for (label, best) in [("prepared", lean_prepared), ("from exposures", lean)] {
        println!(
            "portfolio_margin: {} instruments, {ACCOUNTS} accounts x {POSITIONS} positions x 35 \
             scenarios, {label}: {:.0} accounts/s, {:.3} ns per position-scenario (best of 20)",
            instruments.len(),
            ACCOUNTS as f64 / best,
            best * 1e9 / position_scenarios
        );
    }
}

criterion_group!(benches, portfolio_margin);
criterion_main!(benches);
