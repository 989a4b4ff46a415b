//! Snapshots of varied states: the demo stream (options, inverse contracts, several index
//! sources, marks, funding, settlement, refusals) followed by portfolio margin, an inverse
//! future, an option on a second expiry, a listing that gives a held contract's name a new
//! definition, automated top-ups, buffer policies and a venue update. A snapshot taken after
//! any event, restored, answers the rest of the stream with the same effects and hashes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use solvent_engine::Engine;
use solvent_engine::event::{Envelope, parse_line};

fn stream() -> Vec<Envelope> {
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/events-demo.jsonl"
    ))
    .unwrap();
    let mut events: Vec<Envelope> = demo
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| parse_line("demo", index + 1, line).unwrap())
        .collect();
    let venue = serde_json::to_string(common::VENUE).unwrap();
    let extra = [
        r#""type":"index_price","underlying":"BTC","price":"118000""#.to_owned(),
        r#""type":"vol_surface","underlying":"BTC","expiry":"26MAR27","strikes":[100000,120000,140000],"vols":[0.6,0.55,0.57]"#.to_owned(),
        r#""type":"deposit","account":"erin","asset":"BTC","amount":"2""#.to_owned(),
        r#""type":"deposit","account":"erin","asset":"USDT","amount":"50000""#.to_owned(),
        r#""type":"fill","account":"erin","instrument":"BTC-26MAR27","side":"sell","size":"20000","price":"119000","counterparty":"external""#.to_owned(),
        r#""type":"fill","account":"erin","instrument":"BTC-26MAR27-130000-C","side":"buy","size":"1","price":"0.03","counterparty":"external""#.to_owned(),
        r#""type":"list_instrument","name":"BTC-26MAR27","spec":{"kind":"future","style":"inverse","underlying":"BTC","settlement":"BTC","contract_size":"10","size_step":"10","margin":"deribit_btc_inverse","default_leverage":"5","expiry":"2027-03-26T08:00:00Z"}"#.to_owned(),
        r#""type":"set_buffer_policy","account":"erin","policy":"sigma:3:1""#.to_owned(),
        r#""type":"set_margin_mode","account":"erin","mode":"portfolio""#.to_owned(),
        r#""type":"deposit","account":"fay","asset":"USDT","amount":"9000""#.to_owned(),
        r#""type":"fill","account":"fay","instrument":"BTCUSDT","side":"buy","size":"0.5","price":"118000","counterparty":"external""#.to_owned(),
        r#""type":"set_isolated_margin","account":"fay","instrument":"BTCUSDT","amount":"1500""#.to_owned(),
        r#""type":"set_auto_top_up","account":"fay","source":"cross_pool","trigger_health":"1.6","target_health":"2.5","per_event_cap":"400","per_day_cap":"1000""#.to_owned(),
        r#""type":"index_price","underlying":"BTC","price":"115500""#.to_owned(),
        r#""type":"index_price","underlying":"BTC","price":"113000""#.to_owned(),
        r#""type":"funding","instrument":"BTCUSDT","rate":"0.0001""#.to_owned(),
        format!(r#""type":"update_venue","venue":{venue}"#),
        r#""type":"index_price","underlying":"BTC","price":"110800""#.to_owned(),
        r#""type":"index_price","underlying":"BTC","price":"108700""#.to_owned(),
        r#""type":"withdraw","account":"erin","asset":"USDT","amount":"1000""#.to_owned(),
    ];
    let (mut seq, mut ts) = {
        let last = events.last().unwrap();
        (last.seq, last.ts)
    };
    for fields in extra {
        seq += 1;
        ts = ts.checked_add(jiff::SignedDuration::from_secs(30)).unwrap();
        let line = format!(r#"{{"seq":{seq},"ts":"{ts}",{fields}}}"#);
        events.push(parse_line("extra", 0, &line).unwrap());
    }
    events
}

#[test]
fn a_snapshot_after_any_event_answers_the_rest_alike() {
    let events = stream();
    let mut whole = common::engine();
    let mut rejected = 0;
    let mut redefined = false;
    for event in &events {
        let effects = whole.apply(event);
        rejected += effects
            .iter()
            .filter(|e| matches!(e, solvent_engine::effect::Effect::Rejected { .. }))
            .count();
        // After the listing, erin's future is held under its series definition while the
        // venue lists another one under the same name.
        if let Some(position) = whole
            .accounts()
            .get("erin")
            .and_then(|account| account.positions.get("BTC-26MAR27"))
            && let Ok(listed) = whole.venue().instrument("BTC-26MAR27")
        {
            redefined |= *position.instrument != *listed;
        }
    }
    assert!(
        redefined,
        "the stream exercises a held instrument the venue redefined"
    );
    assert!(
        rejected < 10,
        "{rejected} refusals: the stream mostly applies"
    );

    for cut in 0..=events.len() {
        let mut original = common::engine();
        for event in &events[..cut] {
            original.apply(event);
        }
        let bytes = original.snapshot().unwrap();
        let mut restored = Engine::restore(&bytes).unwrap();
        assert_eq!(restored.state_hash(), original.state_hash(), "cut {cut}");
        assert_eq!(restored.snapshot().unwrap(), bytes, "cut {cut}");
        for event in &events[cut..] {
            assert_eq!(
                original.apply(event),
                restored.apply(event),
                "cut {cut}, seq {}",
                event.seq
            );
        }
        assert_eq!(restored.state_hash(), whole.state_hash(), "cut {cut}");
    }
}
