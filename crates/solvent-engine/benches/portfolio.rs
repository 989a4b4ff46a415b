//! Portfolio-mode accounts in the engine (DESIGN.md 12: "portfolio margin, 10 positions x
//! (9x3 + 8) scenarios, in the engine"): `Engine::apply` of an index update that examines every
//! portfolio-mode holder of the underlying (they have no safe band: DESIGN.md 9, `bands.rs`).
//!
//! The population is the mixed one of `engine_throughput` with portfolio-mode accounts only
//! (`benches/support/mixed.rs`: USDT and half with BTC collateral, 3-6 positions among the linear
//! perpetuals and BTC_USDC options), every contract marked; `SOLVENT_ENGINE_BENCH_ACCOUNTS`
//! accounts (default 10,000). Each iteration applies one BTC index update, small moves up and
//! down around the opening price (no liquidation), to the same engine: the first account
//! examined builds the BTC scenario book shared by the others (`engine/books.rs`), the rest read
//! their margin from it by the lean path. Criterion reports updates per second; divided by the
//! holders examined (printed once), the cost per account.
//!
//! The lean kernel alone over a population prepared beforehand is timed by
//! `solvent-risk/benches/portfolio_margin.rs` (`maintenance_margin_prepared_10000_accounts`);
//! `bench/portfolio_margin.sh` runs both with the numpy peer.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use solvent_engine::effect::Effect;
use support::LEGS;
use support::mixed::{MARKED, Shares, build, count_rejections};

fn portfolio_index_update(c: &mut Criterion) {
    let accounts: usize = std::env::var("SOLVENT_ENGINE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let shares = match Shares::parse("0,0,0,100,0") {
        Ok(shares) => shares,
        Err(error) => panic!("portfolio-mode shares: {error}"),
    };
    let mut built = build(accounts, shares, 0.0, 7);
    let mut rejected = std::collections::BTreeMap::new();
    for (instrument, underlying) in MARKED {
        let event = support::mixed::mark(instrument, LEGS[underlying].price);
        count_rejections(
            &built.engine.apply(&built.stream.next(event)),
            &mut rejected,
        );
    }
    let btc = &LEGS[0];
    let holders = built
        .opened
        .iter()
        .filter(|opened| opened.holds.iter().any(|t| t.underlying == 0))
        .count();
    eprintln!(
        "portfolio-mode population: {accounts} accounts, {holders} with a BTC position; setup rejections {rejected:?}"
    );
    let mut group = c.benchmark_group("engine_portfolio");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    let mut step = 0_u64;
    let mut effects_seen = 0_usize;
    group.bench_function(
        format!("apply_btc_index_update_{accounts}_portfolio_accounts"),
        |b| {
            b.iter(|| {
                // Alternating 0.01% and 0.02% above the opening price: every update moves the
                // index, none by enough to trip the jump guard or liquidate.
                step += 1;
                let price = btc.price * (1.0 + 0.0001 * (1 + step % 2) as f64);
                let envelope = built.stream.next(support::index(btc, price));
                let effects = built.engine.apply(&envelope);
                effects_seen += effects
                    .iter()
                    .filter(|e| matches!(e, Effect::Rejected { .. }))
                    .count();
                black_box(effects)
            });
        },
    );
    group.finish();
    if effects_seen > 0 {
        eprintln!("warning: {effects_seen} index updates rejected: the figures time the refusal");
    }
}

criterion_group!(benches, portfolio_index_update);
criterion_main!(benches);
