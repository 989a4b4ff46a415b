//! Auto-deleveraging candidates across shards (issue 13 item 3): the same events through one
//! engine and through three shard engines (each account's events to its shard, the prices to
//! all); each shard's first `n` candidates against a bankrupt long, merged, are one engine's
//! first `n`, in its order and with its scores, for every `n`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_cluster::adl::{self, AdlCandidate};
use solvent_cluster::query::{Answer, Query, answer};
use solvent_cluster::routing::{Route, route};
use solvent_core::money::PositionSide;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::{Envelope, parse_line};

const SHARDS: u32 = 3;

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).expect("venue")).expect("the venue")
}

/// BTC at 60,000; 40 accounts: shorts of 0.1 to 0.49 BTCUSDT sold between 60,000 and 62,000
/// on 10,000 to 13,900 USDT (various profits and leverage once BTC is at 55,000), a few longs
/// (the wrong side) and a short sold at 54,000 (a loss at 55,000: not a candidate); then BTC
/// at 55,000.
fn events() -> Vec<Envelope> {
    let mut bodies = vec![r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned()];
    for i in 0..40_u32 {
        let id = format!("acct-{i:02}");
        bodies.push(format!(
            r#""type":"deposit","account":"{id}","asset":"USDT","amount":"{}""#,
            10_000 + 100 * i
        ));
        let (side, price) = match i % 8 {
            7 => ("buy", "60000".to_owned()),
            6 => ("sell", "54000".to_owned()),
            _ => ("sell", (60_000 + 50 * i).to_string()),
        };
        bodies.push(format!(
            r#""type":"fill","account":"{id}","instrument":"BTCUSDT","side":"{side}","size":"{}","price":"{price}","counterparty":"external""#,
            Decimal::new(10 + i64::from(i), 2)
        ));
    }
    bodies.push(r#""type":"index_price","underlying":"BTC","price":"55000""#.to_owned());
    bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            let seq = index + 1;
            let line = format!(
                r#"{{"seq":{seq},"ts":"2026-01-01T00:{:02}:{:02}Z",{body}}}"#,
                seq / 60,
                seq % 60
            );
            parse_line("adl_merge", seq, &line).expect("an event")
        })
        .collect()
}

#[test]
fn each_shards_top_candidates_merged_are_one_engines_adl_queue() {
    let events = events();
    let mut one = Engine::new(venue(), EngineConfig::default());
    let mut shards: Vec<Engine> = (0..SHARDS)
        .map(|_| Engine::new(venue(), EngineConfig::default()))
        .collect();
    for envelope in &events {
        let rejected = |effects: &[solvent_engine::effect::Effect]| {
            effects
                .iter()
                .any(|e| matches!(e, solvent_engine::effect::Effect::Rejected { .. }))
        };
        assert!(!rejected(&one.apply(envelope)), "{envelope:?}");
        match route(&envelope.event, SHARDS).expect("routed") {
            Route::Shard(shard) => {
                assert!(!rejected(&shards[shard as usize].apply(envelope)));
            }
            Route::Market | Route::System => {
                for shard in &mut shards {
                    assert!(!rejected(&shard.apply(envelope)));
                }
            }
        }
    }
    let mark = dec!(55000);
    let everyone = one
        .adl_candidates("BTCUSDT", PositionSide::Long, mark, usize::MAX)
        .expect("candidates");
    // 40 accounts: 5 longs (the wrong side) and 5 shorts at a loss are not candidates.
    assert_eq!(everyone.len(), 30);
    assert!(
        shards
            .iter()
            .all(|shard| shard.accounts().len() < one.accounts().len()),
        "the accounts are spread over the shards"
    );
    let reference = adl::offer(0, &everyone);
    for n in [1, 2, 5, 10, 30, 40] {
        let offers: Vec<Vec<AdlCandidate>> = shards
            .iter()
            .zip(0..)
            .map(|(engine, shard)| {
                let ranked = engine
                    .adl_candidates("BTCUSDT", PositionSide::Long, mark, n)
                    .expect("candidates");
                adl::offer(shard, &ranked)
            })
            .collect();
        let merged = adl::merge(&offers, n);
        let strip = |candidates: &[AdlCandidate]| -> Vec<(String, f64, Decimal)> {
            candidates
                .iter()
                .map(|c| (c.account.clone(), c.score, c.size))
                .collect()
        };
        let expected = &reference[..n.min(reference.len())];
        assert_eq!(strip(&merged), strip(expected), "first {n}");
        // And the quantity goes to the same accounts: 3.5 contracts down the ranking.
        let (assigned, _) = adl::assign(&merged, dec!(3.5));
        let (one_assigned, _) = adl::assign(expected, dec!(3.5));
        assert_eq!(
            assigned
                .iter()
                .map(|a| (a.account.clone(), a.size))
                .collect::<Vec<_>>(),
            one_assigned
                .iter()
                .map(|a| (a.account.clone(), a.size))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        one.adl_candidates("NOPE", PositionSide::Long, mark, 3)
            .is_err()
    );
    // The query a shard answers over NATS gives the same offer, through JSON.
    let query: Query = serde_json::from_str(
        r#"{"op":"adl_candidates","instrument":"BTCUSDT","side":"long","mark":"55000","limit":4}"#,
    )
    .expect("the query reads");
    let Answer::Ok(value) = answer(&shards[1], 1, None, &query) else {
        panic!("no offer");
    };
    let offered: Vec<AdlCandidate> = serde_json::from_value(value).expect("an offer");
    let ranked = shards[1]
        .adl_candidates("BTCUSDT", PositionSide::Long, mark, 4)
        .expect("candidates");
    assert_eq!(offered, adl::offer(1, &ranked));
    assert!(!offered.is_empty());
    let unknown: Query = serde_json::from_str(
        r#"{"op":"adl_candidates","instrument":"NOPE","side":"short","mark":"1","limit":4}"#,
    )
    .expect("the query reads");
    assert!(matches!(
        answer(&shards[1], 1, None, &unknown),
        Answer::Error { code, .. } if code == "not_found"
    ));
}
