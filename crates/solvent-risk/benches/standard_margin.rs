//! Standard cross margin: account recomputations per second, accounts of 5 positions (a USDT
//! Bybit-tiered BTC and ETH perpetual, Deribit size-linear BTC and SOL USDC perpetuals, and the
//! inverse BTC-PERPETUAL), recomputed at new marks. Target (DESIGN.md 12): >= 5 million / s / core.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::MarketView;
use solvent_risk::prepared::{PreparedAccount, PreparedMark};

const ACCOUNTS: usize = 4096;

/// A seeded linear congruential generator: deterministic accounts without a dependency.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self, bound: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        i64::try_from((self.0 >> 33) % u64::try_from(bound).unwrap()).unwrap()
    }
}

fn accounts(venue: &Venue, market: &Market) -> Vec<PreparedAccount> {
    let view = MarketView::new(venue, market).unwrap();
    let mut random = Seeded(42);
    (0..ACCOUNTS)
        .map(|index| {
            let sign = |r: &mut Seeded| if r.next(2) == 0 { 1 } else { -1 };
            let text = format!(
                r#"{{"account":"a{index}","mode":"cross","collateral":{{"USDT":"{}","BTC":"{}"}},"positions":[
                {{"instrument":"BTCUSDT","size":"{}","entry_price":"{}","leverage":{}}},
                {{"instrument":"ETHUSDT","size":"{}","entry_price":"{}"}},
                {{"instrument":"BTC_USDC-PERPETUAL","size":"{}","entry_price":"{}"}},
                {{"instrument":"SOL_USDC-PERPETUAL","size":"{}","entry_price":"{}"}},
                {{"instrument":"BTC-PERPETUAL","size":"{}","entry_price":"{}"}}]}}"#,
                10_000 + random.next(1_000_000),
                Decimal::new(random.next(500), 2),
                Decimal::new(sign(&mut random) * (1 + random.next(30_000)), 3),
                Decimal::new(8_000_000 + random.next(2_000_000), 2),
                5 + random.next(50),
                Decimal::new(sign(&mut random) * (1 + random.next(50_000)), 2),
                Decimal::new(280_000 + random.next(60_000), 2),
                Decimal::new(sign(&mut random) * (1 + random.next(20_000)), 3),
                Decimal::new(8_000_000 + random.next(2_000_000), 2),
                Decimal::new(sign(&mut random) * (1 + random.next(50_000)), 1),
                Decimal::new(12_000 + random.next(3_000), 2),
                sign(&mut random) * 10 * (1 + random.next(100_000)),
                Decimal::new(8_000_000 + random.next(2_000_000), 2),
            );
            let portfolio = Portfolio::from_json("bench.json", &text, venue).unwrap();
            PreparedAccount::new(&portfolio, &view).unwrap()
        })
        .collect()
}

fn standard_margin(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let market = Market::from_json(
        "bench-market.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"93859.71","ETH":"3224.99","SOL":"137.9","USDT":"1","USDC":"1"}}"#,
    )
    .unwrap();
    let prepared = accounts(&venue, &market);
    // A price update prepares each instrument's mark once; every account holding it reads it.
    let marks: Vec<PreparedMark> = ["93871.2", "3226.1", "93860.4", "137.95", "93880.5"]
        .iter()
        .map(|m| PreparedMark::new(m.parse().unwrap()))
        .collect();
    let mut group = c.benchmark_group("standard_cross_margin");
    group.throughput(Throughput::Elements(ACCOUNTS as u64));
    group.bench_function("recompute_5_position_accounts", |b| {
        b.iter(|| {
            for account in &prepared {
                black_box(account.figures(black_box(&marks)).unwrap());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, standard_margin);
criterion_main!(benches);
