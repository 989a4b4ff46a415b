//! Scheduled forecasts (`solvent serve --forecast-history`): the service appends the
//! `scenario_range` event of each close its events' time crosses, with the numbers `solvent
//! forecast` gives for the same closes; the journal replays to the same state without them
//! being made again, and a restarted service reads the closes it took back from the journal.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{Value, json};
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::Event;
use solvent_risk::history::{LoadOptions, PriceHistory, SeriesText};
use solvent_risk::vol_scaled::venue_ranges;
use solvent_server::forecast::{Forecaster, scenario_range_event};
use solvent_server::keys::{KeyRing, Scope};
use solvent_server::{Config, Running};
use solvent_store::Journal;

mod support;

/// The demo's committed history (BTC and ETH, 2024-10-01..2025-09-30).
const HISTORY: [(&str, &str); 2] = [
    (
        "BTC",
        include_str!("../demo/history/BTC-USDT.binance.daily.csv"),
    ),
    (
        "ETH",
        include_str!("../demo/history/ETH-USDT.binance.daily.csv"),
    ),
];

fn venue() -> Venue {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/vol-scaled-venue.toml"
    );
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One underlying's history as `solvent forecast` reads its file, with `extra` rows (date,
/// close) appended as further lines of the file.
fn history(underlying: &str, extra: &[(&str, &str)]) -> PriceHistory {
    let (_, text) = HISTORY.iter().find(|(u, _)| *u == underlying).unwrap();
    let mut text = (*text).to_owned();
    for (date, close) in extra {
        text.push_str(&format!("{date},{close},{close},{close},{close},0\n"));
    }
    PriceHistory::from_texts(
        &[SeriesText {
            underlying,
            origin: underlying,
            text: &text,
        }],
        &[],
        &LoadOptions::default(),
    )
    .unwrap()
}

fn forecaster() -> Forecaster {
    let histories: BTreeMap<String, PriceHistory> = HISTORY
        .iter()
        .map(|(u, _)| ((*u).to_owned(), history(u, &[])))
        .collect();
    Forecaster::new(histories).unwrap()
}

/// The event `solvent forecast` writes for the last close of `underlying` given `extra`.
fn expected(underlying: &str, extra: &[(&str, &str)]) -> (jiff::Timestamp, Event) {
    let prices = history(underlying, extra);
    let ranges = venue_ranges(&venue(), underlying, prices.dates(), prices.log_returns(0))
        .unwrap()
        .unwrap();
    scenario_range_event(ranges.last().unwrap()).unwrap()
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "solvent-server-{name}-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(engine: Engine, journal: Box<dyn Journal>) -> (Running, String) {
    let mut ring = KeyRing::in_memory();
    let admin = ring.add(Scope::Admin, "2025-09-30T00:00:00Z").unwrap();
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        forecaster: Some(forecaster()),
        ..Config::default()
    };
    let running = solvent_server::start(engine, journal, ring, &config)
        .await
        .unwrap();
    (running, admin)
}

/// One exchange that must answer 200: its body.
async fn call(addr: SocketAddr, method: &str, path: &str, key: &str, body: &str) -> Value {
    let (status, value) = support::call(addr, method, path, Some(key), Some(body)).await;
    assert_eq!(status, 200, "{method} {path}: {value}");
    assert!(value.is_object() || value.is_array(), "not JSON: {value}");
    value
}

/// Posts `events`; every one must be accepted. Their sequence numbers.
async fn post(running: &Running, key: &str, events: Value) -> Vec<u64> {
    let body = json!({ "events": events }).to_string();
    let reply = call(running.addr, "POST", "/v1/events", key, &body).await;
    reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "accepted", "{reply}");
            r["seq"].as_u64().unwrap()
        })
        .collect()
}

fn index(underlying: &str, price: &str, ts: &str) -> Value {
    json!({"type": "index_price", "underlying": underlying, "price": price, "ts": ts})
}

/// The scenario ranges of the journal, with their stamps, in order.
fn ranges_in(journal: &dyn Journal) -> Vec<(u64, jiff::Timestamp, Event)> {
    journal
        .read_after(None, 10_000)
        .unwrap()
        .into_iter()
        .filter(|entry| matches!(entry.envelope.event, Event::ScenarioRange(_)))
        .map(|entry| (entry.envelope.seq, entry.envelope.ts, entry.envelope.event))
        .collect()
}

async fn state_hash(running: &Running) -> (Option<u64>, String) {
    running.state.core.state_hash().unwrap().await.unwrap()
}

#[tokio::test]
async fn each_close_crossed_appends_the_forecast_solvent_forecast_gives_and_replays_unchanged() {
    let dir = TempDir::new("forecast");
    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let (running, admin) = start(
        Engine::new(venue(), EngineConfig::default()),
        Box::new(journal),
    )
    .await;
    // 2025-10-01, the day after the history's last: a portfolio account long 2 BTC.
    let opening = post(
        &running,
        &admin,
        json!([
            index("BTC", "118000", "2025-10-01T00:00:00Z"),
            index("ETH", "4300", "2025-10-01T00:00:01Z"),
            {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "60000", "ts": "2025-10-01T00:00:02Z"},
            {"type": "set_margin_mode", "account": "a1", "mode": "portfolio", "ts": "2025-10-01T00:00:03Z"},
            {"type": "fill", "account": "a1", "instrument": "BTCUSDT", "side": "buy", "size": "2", "price": "118000", "counterparty": "external", "ts": "2025-10-01T00:00:04Z"},
            index("BTC", "118594.99", "2025-10-01T23:59:00Z"),
            index("ETH", "4348.03", "2025-10-01T23:59:30Z"),
        ]),
    )
    .await;
    assert_eq!(opening, [1, 2, 3, 4, 5, 6, 7]);
    let before = call(running.addr, "GET", "/v1/accounts/a1", &admin, "").await;
    assert_eq!(before["vol_scaled_ranges"], json!([]), "{before}");
    // The first price after 00:00 closes 2025-10-01: BTC's and ETH's forecasts come first.
    let crossing = post(
        &running,
        &admin,
        json!([index("BTC", "120000", "2025-10-02T00:00:05Z")]),
    )
    .await;
    assert_eq!(crossing, [10]);
    post(
        &running,
        &admin,
        json!([
            index("BTC", "120529.35", "2025-10-02T12:00:00Z"),
            index("ETH", "4484.35", "2025-10-02T12:00:01Z"),
            // Past the next 00:00: 2025-10-02 closes.
            {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1", "ts": "2025-10-03T00:00:10Z"},
        ]),
    )
    .await;
    let report = call(running.addr, "GET", "/v1/accounts/a1", &admin, "").await;
    let shown = report["vol_scaled_ranges"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{report}");
    assert_eq!(shown[0]["underlying"], "BTC");
    assert_eq!(shown[0]["as_of"], "2025-10-02");
    let live = state_hash(&running).await;
    running.stop().await.unwrap();

    let first_day = [("2025-10-01", "118594.99")];
    let eth_first_day = [("2025-10-01", "4348.03")];
    let two_days = [("2025-10-01", "118594.99"), ("2025-10-02", "120529.35")];
    let eth_two_days = [("2025-10-01", "4348.03"), ("2025-10-02", "4484.35")];
    let want = [
        (8, expected("BTC", &first_day)),
        (9, expected("ETH", &eth_first_day)),
        (13, expected("BTC", &two_days)),
        (14, expected("ETH", &eth_two_days)),
    ];
    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let found = ranges_in(&journal);
    assert_eq!(found.len(), want.len(), "{found:?}");
    for ((seq, ts, event), (want_seq, (want_ts, want_event))) in found.iter().zip(&want) {
        assert_eq!((seq, ts), (want_seq, want_ts));
        assert_eq!(event, want_event);
    }
    assert_eq!(
        found[0].1.to_string(),
        "2025-10-02T00:00:00Z",
        "stamped at the close"
    );
    let Event::ScenarioRange(btc) = &found[2].2 else {
        unreachable!()
    };
    assert_eq!(btc.as_of.to_string(), "2025-10-02");
    assert!(btc.range >= 0.04 && btc.range < 0.16, "{btc:?}");

    // Replay: the journal alone, no forecaster, the same state.
    let recovered = solvent_store::recover(&dir.0, venue(), EngineConfig::default()).unwrap();
    assert_eq!(recovered.report.last_seq, live.0);
    assert_eq!(recovered.engine.state_hash(), live.1);

    // Restarted with a forecaster: it reads the closes it took from the journal, so the next
    // close (2025-10-03: BTC's price of the day, ETH's of the day before carried) has the
    // forecast of all three days.
    let (running, admin) = start(recovered.engine, Box::new(recovered.journal)).await;
    assert_eq!(state_hash(&running).await, live);
    post(
        &running,
        &admin,
        json!([
            index("BTC", "121000", "2025-10-03T15:00:00Z"),
            {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1", "ts": "2025-10-04T00:00:01Z"},
        ]),
    )
    .await;
    running.stop().await.unwrap();
    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let found = ranges_in(&journal);
    assert_eq!(found.len(), 6);
    let three_days = [
        ("2025-10-01", "118594.99"),
        ("2025-10-02", "120529.35"),
        ("2025-10-03", "121000"),
    ];
    let eth_three_days = [
        ("2025-10-01", "4348.03"),
        ("2025-10-02", "4484.35"),
        ("2025-10-03", "4484.35"),
    ];
    assert_eq!(
        (found[4].1, found[4].2.clone()),
        expected("BTC", &three_days)
    );
    assert_eq!(found[5].2, expected("ETH", &eth_three_days).1);
}

#[test]
fn a_close_the_history_does_not_reach_gets_no_forecast() {
    // The history ends 2025-09-30; the service's first price is on 2025-10-05: the closes of
    // 10-01..10-04 are unknown, so no forecast is made (the range in force stays).
    let mut forecaster = forecaster();
    let venue = venue();
    let price = |ts: &str, price: &str| solvent_engine::event::Envelope {
        seq: 1,
        ts: ts.parse().unwrap(),
        event: serde_json::from_value(
            json!({"type": "index_price", "underlying": "BTC", "price": price}),
        )
        .unwrap(),
    };
    forecaster.observe(&price("2025-10-05T10:00:00Z", "120000"));
    assert!(
        forecaster
            .due("2025-10-06T00:00:01Z".parse().unwrap(), &venue)
            .is_empty()
    );
    let error = forecaster
        .forecast(&venue, "BTC", "2025-10-05".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("no close"), "{error}");
    // A close within the history is the history's: `solvent forecast --to 2025-09-30`.
    let range = forecaster
        .forecast(&venue, "BTC", "2025-09-30".parse().unwrap())
        .unwrap();
    let whole = history("BTC", &[]);
    let path = venue_ranges(&venue, "BTC", whole.dates(), whole.log_returns(0))
        .unwrap()
        .unwrap();
    assert_eq!(&range, path.last().unwrap());
}

/// An event whose time crosses several closes at once gets a forecast for each, in order, once
/// (the forecasts, stamped at closes already crossed, do not move the service's day back); an
/// event stamped more than a month ahead is refused before anything is forecast, naming why, and
/// the service's time does not move.
#[tokio::test]
async fn a_gap_of_days_forecasts_each_close_once_and_a_far_jump_is_refused() {
    let dir = TempDir::new("forecast-gap");
    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let (running, admin) = start(
        Engine::new(venue(), EngineConfig::default()),
        Box::new(journal),
    )
    .await;
    post(
        &running,
        &admin,
        json!([
            index("BTC", "118000", "2025-10-01T00:00:00Z"),
            index("ETH", "4300", "2025-10-01T00:00:01Z"),
        ]),
    )
    .await;
    // Three closes at once (2025-10-01, -02, -03), then one more.
    post(
        &running,
        &admin,
        json!([index("BTC", "119000", "2025-10-04T00:00:05Z")]),
    )
    .await;
    post(
        &running,
        &admin,
        json!([index("BTC", "119500", "2025-10-05T00:00:05Z")]),
    )
    .await;
    // Two months ahead: refused, nothing forecast, nothing journaled.
    let body = json!({ "events": [index("BTC", "90000", "2025-12-05T00:00:00Z")] }).to_string();
    let reply = call(running.addr, "POST", "/v1/events", &admin, &body).await;
    let result = &reply["results"][0];
    assert_eq!(result["status"], "rejected", "{reply}");
    let effect = &result["effects"][0];
    assert_eq!(effect["reason"], "out_of_range", "{reply}");
    assert!(
        effect["detail"]
            .as_str()
            .unwrap()
            .contains("61 daily closes"),
        "{reply}"
    );
    // The service's day did not move: the next day's event is taken, its close forecast.
    post(
        &running,
        &admin,
        json!([index("BTC", "120000", "2025-10-06T00:00:05Z")]),
    )
    .await;
    running.stop().await.unwrap();
    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let days: Vec<(String, String)> = ranges_in(&journal)
        .into_iter()
        .map(|(_, _, event)| match event {
            Event::ScenarioRange(range) => (range.underlying, range.as_of.to_string()),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<(String, String)> = [
        "2025-10-01",
        "2025-10-02",
        "2025-10-03",
        "2025-10-04",
        "2025-10-05",
    ]
    .iter()
    .flat_map(|day| {
        ["BTC", "ETH"]
            .iter()
            .map(move |u| ((*u).to_owned(), (*day).to_owned()))
    })
    .collect();
    assert_eq!(days, want);
}

/// With the audit writer behind the service, the scheduled forecasts reach it as any event does:
/// every event's effects written from the queue (none re-applied, none missed: a forecast not
/// handed to the writer would leave a gap it fills by re-applying the journal), the forecasts on
/// the audit page at their sequence numbers, written.
#[tokio::test]
async fn scheduled_forecasts_reach_the_audit_writer_with_their_effects() {
    let dir = TempDir::new("forecast-audit");
    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let writer =
        solvent_store::AuditWriter::start(&dir.0, venue(), EngineConfig::default()).unwrap();
    let mut ring = KeyRing::in_memory();
    let admin = ring.add(Scope::Admin, "2025-09-30T00:00:00Z").unwrap();
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        forecaster: Some(forecaster()),
        audit: Some(writer.sink()),
        ..Config::default()
    };
    let running = solvent_server::start(
        Engine::new(venue(), EngineConfig::default()),
        Box::new(journal),
        ring,
        &config,
    )
    .await
    .unwrap();
    post(
        &running,
        &admin,
        json!([
            index("BTC", "118000", "2025-10-01T00:00:00Z"),
            index("ETH", "4300", "2025-10-01T00:00:01Z"),
            {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "60000", "ts": "2025-10-01T00:00:02Z"},
            {"type": "set_margin_mode", "account": "a1", "mode": "portfolio", "ts": "2025-10-01T00:00:03Z"},
            {"type": "fill", "account": "a1", "instrument": "BTCUSDT", "side": "buy", "size": "2", "price": "118000", "counterparty": "external", "ts": "2025-10-01T00:00:04Z"},
        ]),
    )
    .await;
    let crossing = post(
        &running,
        &admin,
        json!([index("BTC", "120000", "2025-10-02T00:00:05Z")]),
    )
    .await;
    // Five events, the two forecasts (6, 7), then the crossing event.
    assert_eq!(crossing, [8]);
    let written = writer.wait_for(8, std::time::Duration::from_secs(60));
    assert_eq!(written.effects_through, Some(8), "{written:?}");
    assert_eq!(
        (written.written, written.replayed, written.fallbacks),
        (8, 0, 0),
        "{written:?}"
    );
    let page = call(
        running.addr,
        "GET",
        "/v1/journal?type=scenario_range",
        &admin,
        "",
    )
    .await;
    let events = page["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [6, 7], "{page}");
    // Written, not pending: a healthy account re-examined at a new range changes no state, so
    // these forecasts caused no effect.
    for event in events {
        assert_eq!(event["effects"], json!([]), "{page}");
        assert!(
            event.get("effects_pending").is_none_or(|p| p == false),
            "{page}"
        );
    }
    running.stop().await.unwrap();
    drop(writer.stop());
}
