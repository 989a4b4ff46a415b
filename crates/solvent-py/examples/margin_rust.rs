//! The margin report of python/benchmarks/account-5.json computed from Rust, for
//! bench/python.sh: the same computation the package runs, without Python around it, so the
//! difference is the binding's per-call overhead. Prints `name seconds` lines (best of the
//! repetitions, per report).
//!
//! Usage: cargo run --release -p solvent-py --example margin_rust [CALLS] [REPETITIONS]

use std::hint::black_box;
use std::time::Instant;

use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::MarketView;
use solvent_risk::account::{Detail, build_report};

const ACCOUNT: &str = include_str!("../../../python/benchmarks/account-5.json");
const VENUE: &str = include_str!("../../../venues/default.toml");

fn best_seconds_per_call(calls: u32, repetitions: u32, mut work: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..repetitions {
        let start = Instant::now();
        for _ in 0..calls {
            work();
        }
        best = best.min(start.elapsed().as_secs_f64() / f64::from(calls));
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let calls: u32 = args.next().map_or(Ok(5_000), |text| text.parse())?;
    let repetitions: u32 = args.next().map_or(Ok(5), |text| text.parse())?;
    let venue = Venue::from_toml("venues/default.toml", VENUE)?;
    let portfolio = Portfolio::from_json("account-5.json", ACCOUNT, &venue)?;
    let market = portfolio
        .market
        .clone()
        .ok_or("account-5.json has no market")?;
    let surfaces = solvent_risk::valuation::surfaces(&venue, &market)?;
    let view = MarketView::with_surfaces(&venue, &market, &surfaces);
    for (name, detail) in [("full", Detail::Full), ("figures", Detail::Figures)] {
        let seconds = best_seconds_per_call(calls, repetitions, || {
            let report = match detail {
                Detail::Full => solvent_risk::margin_report(&portfolio, &view),
                other => build_report(&portfolio, &view, other),
            };
            black_box(report.ok());
        });
        println!("rust_margin_{name}_seconds {seconds:.3e}");
    }
    let parse = best_seconds_per_call(calls, repetitions, || {
        black_box(Portfolio::from_json("account-5.json", ACCOUNT, &venue).ok());
    });
    println!("rust_parse_portfolio_seconds {parse:.3e}");
    Ok(())
}
