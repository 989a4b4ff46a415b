//! Rough timing probe: N accounts with one BTCUSDT position each, then small index ticks.
#![allow(clippy::unwrap_used, missing_docs, reason = "a probe")]
use std::time::Instant;

use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::parse_line;

/// The allocator the `solvent` binary runs on.
#[path = "../benches/support/alloc.rs"]
mod alloc;

fn main() {
    let accounts: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut seq = 0u64;
    let mut apply = |engine: &mut Engine, body: String| {
        seq += 1;
        let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T00:00:00Z",{body}}}"#);
        engine.apply(&parse_line("probe", 1, &line).unwrap())
    };
    apply(
        &mut engine,
        r#""type":"index_price","underlying":"BTC","price":"60000""#.into(),
    );
    let start = Instant::now();
    for i in 0..accounts {
        apply(
            &mut engine,
            format!(
                r#""type":"deposit","account":"a{i}","asset":"USDT","amount":"{}""#,
                5_000 + (i % 50) * 1_000
            ),
        );
        apply(
            &mut engine,
            format!(
                r#""type":"fill","account":"a{i}","instrument":"BTCUSDT","side":"buy","size":"{}","price":"60000""#,
                0.1 + (i % 7) as f64 * 0.1
            ),
        );
    }
    let setup = start.elapsed();
    println!(
        "setup: {accounts} accounts, {:.1} us per account (deposit + fill)",
        setup.as_secs_f64() * 1e6 / accounts as f64
    );
    let mut latencies = Vec::new();
    let mut price = 60_000.0_f64;
    for step in 0..2_000 {
        price *= if step % 2 == 0 { 1.0003 } else { 0.9997 };
        let tick = Instant::now();
        let effects = apply(
            &mut engine,
            format!(
                r#""type":"index_price","underlying":"BTC","price":"{:.2}""#,
                price
            ),
        );
        latencies.push(tick.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(effects);
    }
    latencies.sort_by(f64::total_cmp);
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "index ticks: p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        p(0.5),
        p(0.99),
        p(1.0)
    );
}
