//! A first end-to-end pass: deposit, trade, price falls, liquidation.
#![allow(clippy::unwrap_used, reason = "tests")]

use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::parse_line;

#[test]
fn smoke() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let mut engine = Engine::new(venue, EngineConfig::default());
    let lines = [
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"index_price","underlying":"BTC","price":"60000"}"#,
        r#"{"seq":2,"ts":"2026-01-01T00:00:01Z","type":"deposit","account":"a1","asset":"USDT","amount":"10000"}"#,
        r#"{"seq":3,"ts":"2026-01-01T00:00:02Z","type":"fill","account":"a1","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","fee":"6","counterparty":"external"}"#,
        r#"{"seq":4,"ts":"2026-01-01T00:00:03Z","type":"index_price","underlying":"BTC","price":"55000"}"#,
        r#"{"seq":5,"ts":"2026-01-01T00:00:04Z","type":"index_price","underlying":"BTC","price":"51000"}"#,
        r#"{"seq":6,"ts":"2026-01-01T00:00:05Z","type":"index_price","underlying":"BTC","price":"50500"}"#,
        r#"{"seq":7,"ts":"2026-01-01T00:00:06Z","type":"index_price","underlying":"BTC","price":"50300"}"#,
        r#"{"seq":8,"ts":"2026-01-01T00:00:07Z","type":"index_price","underlying":"BTC","price":"50150"}"#,
        r#"{"seq":9,"ts":"2026-01-01T00:00:08Z","type":"index_price","underlying":"BTC","price":"49000"}"#,
        r#"{"seq":10,"ts":"2026-01-01T00:00:09Z","type":"withdraw","account":"a1","asset":"USDT","amount":"100000"}"#,
    ];
    for (n, line) in lines.iter().enumerate() {
        let envelope = parse_line("smoke", n + 1, line).unwrap();
        let effects = engine.apply(&envelope);
        for effect in &effects {
            println!(
                "{}",
                serde_json::to_string(&solvent_engine::effect::EffectLine {
                    seq: envelope.seq,
                    effect: effect.clone()
                })
                .unwrap()
            );
        }
        for total in engine.ledger().totals().values() {
            assert!(total.is_zero());
        }
    }
    println!("{}", engine.state_hash());
}
