//! Engine throughput (DESIGN.md 12: "engine, in memory >= 1 million events / s on one core").
//!
//! A population of accounts is opened through ordinary events (USDT deposits, some BTC
//! collateral, fills on BTCUSDT / ETHUSDT against `external`; 0.1% of the accounts at 60-90% of
//! the maximum leverage, the rest at 1.5-12x). Then streams of pre-built events (no parsing: the
//! `Envelope`s are made before timing) are applied to a fresh clone of that engine (the clone is
//! not timed) and reported as elements (events) per second:
//!
//! - `mixed`: 90% index updates (BTC and ETH, moves N(0, 0.02%)), 5% fills, 5% deposits, 20,000
//!   a batch;
//! - `fills`: fills only (4 in 5 against `external`, 1 in 5 between two accounts), 2,000 a batch;
//! - `index`: index updates only, 20,000 a batch;
//! - `deposits`: USDT deposits only, 2,000 a batch;
//! - `first_marks`: the first `mark_price` of BTCUSDT and of ETHUSDT, which examine every holder
//!   (they were valued at the index until then), 2 a batch;
//!
//! and, on the same population once both contracts have a given mark (set before timing):
//!
//! - `marks`: mark updates only (the index, which stays put, times a basis walking N(0, 0.002%)
//!   a step), 20,000 a batch;
//! - `mixed_marked`: 45% index updates, 45% mark updates, 5% fills, 5% deposits, 20,000 a batch.
//!
//! Population size: `SOLVENT_ENGINE_BENCH_ACCOUNTS` (default 10,000). Each stream's effects are
//! summarised on stderr once (events rejected must stay near zero, or the figures measure the
//! rejection path).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use solvent_core::money::{Amount, Price};
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::Effect;
use solvent_engine::event::{Deposit, Envelope, Event, MarkPrice};
use solvent_engine::ledger::EXTERNAL;
use support::{LEGS, Leg, Stream, account_id, cents, fill, index, normal, open_account};

/// Events per batch of the `mixed` and `index` streams.
const BATCH: usize = 20_000;
/// Events per batch of the `fills` and `deposits` streams (a fill costs tens of index updates).
const FILL_BATCH: usize = 2_000;

/// The benchmark's starting point: an engine holding `accounts` accounts, the stream's position,
/// and which accounts are at ordinary leverage (the ones streams trade and deposit on).
struct Population {
    engine: Engine,
    stream: Stream,
    ordinary: Vec<usize>,
}

fn population(accounts: usize) -> Population {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let venue = match Venue::from_toml(path, &text) {
        Ok(venue) => venue,
        Err(error) => panic!("the default venue must load: {error}"),
    };
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut stream = Stream::new();
    for leg in &LEGS {
        engine.apply(&stream.next(index(leg, leg.price)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut ordinary = Vec::with_capacity(accounts);
    let mut events = Vec::new();
    let mut rejected = 0;
    let start = Instant::now();
    for i in 0..accounts {
        events.clear();
        if !open_account(i, 0.001, &mut rng, &mut events) {
            ordinary.push(i);
        }
        for event in events.drain(..) {
            rejected += count_rejected(&engine.apply(&stream.next(event)));
        }
    }
    eprintln!(
        "engine bench: {accounts} accounts opened in {:.1} s ({rejected} events rejected)",
        start.elapsed().as_secs_f64()
    );
    Population {
        engine,
        stream,
        ordinary,
    }
}

fn count_rejected(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Rejected { .. }))
        .count()
}

/// What a stream is made of, in percent (the rest of 100 is deposits).
#[derive(Clone, Copy)]
struct Mix {
    index_pct: u32,
    mark_pct: u32,
    fill_pct: u32,
}

/// `count` events after the population: index updates as a random walk per underlying, fills of
/// small sizes and deposits on ordinary accounts.
fn stream(population: &Population, mix: Mix, count: usize, seed: u64) -> Vec<Envelope> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stream = population.stream.clone();
    let mut prices = LEGS.map(|leg| leg.price);
    let mut basis = [0.0_f64; 2];
    let pick =
        |rng: &mut ChaCha8Rng| population.ordinary[rng.random_range(0..population.ordinary.len())];
    (0..count)
        .map(|_| {
            stream.ts_ms += 1;
            let roll = rng.random_range(0..100);
            let which = rng.random_range(0..2);
            let leg = &LEGS[which];
            let event = if roll < mix.index_pct {
                // N(0, 0.02%).
                prices[which] *= 1.0 + 0.0002 * normal(&mut rng);
                index(leg, prices[which])
            } else if roll < mix.index_pct + mix.mark_pct {
                // The index's walk times a basis that walks too, N(0, 0.002%) a step (a venue's
                // mark is smoothed: it does not jump about the index).
                basis[which] += 0.00002 * normal(&mut rng);
                mark(leg, prices[which] * (1.0 + basis[which]))
            } else if roll < mix.index_pct + mix.mark_pct + mix.fill_pct {
                let account = account_id(pick(&mut rng));
                let counterparty = if rng.random_bool(0.2) {
                    account_id(pick(&mut rng))
                } else {
                    EXTERNAL.to_owned()
                };
                let units = rng.random_range(1..=10);
                let mut event = fill(&account, &counterparty, leg, rng.random_bool(0.5), units);
                if let Event::Fill(fill) = &mut event {
                    // Trade at the current index, as a venue's fills would.
                    fill.price = Price(cents(prices[which]));
                    fill.fee =
                        Amount((fill.size.0 * fill.price.0 * Decimal::new(5, 4)).round_dp(6));
                }
                event
            } else {
                Event::Deposit(Deposit {
                    account: account_id(pick(&mut rng)),
                    asset: "USDT".to_owned(),
                    amount: Amount(Decimal::from(rng.random_range(10..1_000))),
                })
            };
            stream.next(event)
        })
        .collect()
}

/// A mark update of `leg`'s contract.
fn mark(leg: &Leg, price: f64) -> Event {
    Event::MarkPrice(MarkPrice {
        instrument: leg.instrument.to_owned(),
        price: Price(cents(price)),
    })
}

/// The first mark of each contract, at its start price.
fn first_marks(population: &Population) -> Vec<Envelope> {
    let mut stream = population.stream.clone();
    LEGS.iter()
        .map(|leg| {
            stream.ts_ms += 1;
            stream.next(mark(leg, leg.price))
        })
        .collect()
}

/// The population once both contracts have a given mark.
fn with_marks(population: &Population) -> Population {
    let mut engine = population.engine.clone();
    let marks = first_marks(population);
    for envelope in &marks {
        engine.apply(envelope);
    }
    let mut stream = population.stream.clone();
    stream.seq += marks.len() as u64;
    stream.ts_ms += marks.len() as i64;
    Population {
        engine,
        stream,
        ordinary: population.ordinary.clone(),
    }
}

/// Applies `events` to fresh clones of the engine, timing only `Engine::apply`.
fn run(engine: &Engine, events: &[Envelope], iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut engine = engine.clone();
        let start = Instant::now();
        for envelope in events {
            black_box(engine.apply(black_box(envelope)));
        }
        total += start.elapsed();
        drop(black_box(engine));
    }
    total
}

fn summarise(name: &str, engine: &Engine, events: &[Envelope]) {
    let mut engine = engine.clone();
    let (mut effects, mut rejected) = (0, 0);
    for envelope in events {
        let out = engine.apply(envelope);
        effects += out.len();
        rejected += count_rejected(&out);
    }
    eprintln!(
        "engine bench: {name}: {} events, {effects} effects, {rejected} rejected",
        events.len()
    );
}

fn engine_benches(c: &mut Criterion) {
    let accounts = std::env::var("SOLVENT_ENGINE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let population = population(accounts);
    let marked = with_marks(&population);
    let mix = |index_pct, mark_pct, fill_pct| Mix {
        index_pct,
        mark_pct,
        fill_pct,
    };
    let streams = [
        ("mixed", &population, mix(90, 0, 5)),
        ("fills", &population, mix(0, 0, 100)),
        ("index", &population, mix(100, 0, 0)),
        ("deposits", &population, mix(0, 0, 0)),
        ("marks", &marked, mix(0, 100, 0)),
        ("mixed_marked", &marked, mix(45, 45, 5)),
    ];
    let mut group = c.benchmark_group(format!("engine_{accounts}_accounts"));
    for (seed, (name, population, mix)) in (1..).zip(streams) {
        let count = if mix.index_pct + mix.mark_pct == 0 {
            FILL_BATCH
        } else {
            BATCH
        };
        let events = stream(population, mix, count, seed);
        summarise(name, &population.engine, &events);
        group.throughput(Throughput::Elements(events.len() as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| run(&population.engine, &events, iters));
        });
    }
    let firsts = first_marks(&population);
    summarise("first_marks", &population.engine, &firsts);
    group.sample_size(10);
    group.throughput(Throughput::Elements(firsts.len() as u64));
    group.bench_function("first_marks", |b| {
        b.iter_custom(|iters| run(&population.engine, &firsts, iters));
    });
    group.finish();
}

criterion_group!(benches, engine_benches);
criterion_main!(benches);
