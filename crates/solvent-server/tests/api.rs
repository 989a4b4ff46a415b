//! The service end to end on 127.0.0.1 (a free port, stopped by each test): events in, figures
//! out, errors named, keys scoped, retries deduplicated, the WebSocket live, a full queue
//! answered 429 and a failed journal stopping the service.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_server::keys::{KeyRing, Scope};
use solvent_server::{Config, Running};
use solvent_store::{
    AuditQuery, AuditRecord, ClientRecord, Entry, Journal, JournalError, JournalReader,
    MemoryJournal,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
use support::call;

fn engine() -> Engine {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    Engine::new(venue, EngineConfig::default())
}

struct Keys {
    admin: String,
    viewer: String,
    a1: String,
    a2: String,
}

fn keys() -> (KeyRing, Keys) {
    let mut ring = KeyRing::in_memory();
    let at = "2026-12-04T00:00:00Z";
    let keys = Keys {
        admin: ring.add(Scope::Admin, at).unwrap(),
        viewer: ring.add(Scope::Viewer, at).unwrap(),
        a1: ring.add(Scope::Account("a1".to_owned()), at).unwrap(),
        a2: ring.add(Scope::Account("a2".to_owned()), at).unwrap(),
    };
    (ring, keys)
}

async fn start_with(journal: Box<dyn Journal>, config: Config) -> (Running, Keys) {
    let (ring, keys) = keys();
    let running = solvent_server::start(engine(), journal, ring, &config)
        .await
        .unwrap();
    (running, keys)
}

fn local() -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    }
}

/// One exchange of raw bytes (anything, chunked bodies included), written while the answer is
/// read: a server may answer before the body is all sent. The status, the head and the body as
/// JSON (or as a string if it is not JSON).
async fn exchange(addr: SocketAddr, request: Vec<u8>) -> (u16, String, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut response = Vec::new();
    reader.read_to_end(&mut response).await.unwrap();
    writing.abort();
    let text = String::from_utf8(response).unwrap();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let value = serde_json::from_str(payload).unwrap_or(Value::String(payload.to_owned()));
    (status, head.to_owned(), value)
}

/// A request head for [`exchange`], closing the connection after the answer.
fn head(method: &str, target: &str, key: Option<&str>, extra: &str) -> String {
    let auth = key.map_or(String::new(), |key| {
        format!("Authorization: Bearer {key}\r\n")
    });
    format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}{extra}\r\n")
}

/// Whether `error` is the error shape with `code`, a message and `field`.
fn assert_error(status: u16, head: &str, error: &Value, code: &str, field: Option<&str>) {
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{status}: {head}"
    );
    assert_eq!(error["error"]["code"], code, "{status}: {error}");
    assert_eq!(error["error"]["field"].as_str(), field, "{status}: {error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{error}"
    );
}

async fn post_events(running: &Running, key: &str, events: Value) -> (u16, Value) {
    let body = json!({ "events": events }).to_string();
    call(running.addr, "POST", "/v1/events", Some(key), Some(&body)).await
}

fn opening() -> Value {
    json!([
        {"type": "index_price", "underlying": "BTC", "price": "60000", "ts": "2026-01-01T00:00:00Z"},
        {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "10000", "ts": "2026-01-01T00:00:01Z", "client_id": "dep-1"},
        {"type": "fill", "account": "a1", "instrument": "BTCUSDT", "side": "buy", "size": "1", "price": "60000", "fee": "6", "counterparty": "external", "ts": "2026-01-01T00:00:02Z"},
    ])
}

#[tokio::test]
async fn events_are_numbered_applied_and_read_back_as_the_margin_report() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    let (status, reply) = post_events(&running, &keys.admin, opening()).await;
    assert_eq!(status, 200, "{reply}");
    let results = reply["results"].as_array().unwrap();
    let seqs: Vec<u64> = results.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(results.iter().all(|r| r["status"] == "accepted"));
    // The fill pays its fee: a transfer from a1 to the fee account, numbered with the fill.
    let fee = results[2]["effects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "transfer_applied" && e["reason"] == "fee")
        .unwrap();
    assert_eq!(
        (fee["seq"].as_u64(), fee["amount"].as_str()),
        (Some(3), Some("6"))
    );

    // The account as `solvent margin --json` prints it: 10,000 - 6 fee, at the mark 60,000.
    let (status, report) = call(running.addr, "GET", "/v1/accounts/a1", Some(&keys.a1), None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["account"], "a1");
    assert_eq!(report["equity"], "9994");
    assert_eq!(report["positions"][0]["instrument"], "BTCUSDT");
    assert!(report.get("liquidation_moves").is_none(), "{report}");
    // Asked for, the moves that liquidate it: equity 9,994 - MM 0.5% x 60,000 = 9,694 of room, which a
    // fall of 9,694 / 0.995 = 9,742.71 USD (the requirement falls with the price) uses up:
    // index 50,257.2864, a move of -16.2379%; no rise liquidates a long.
    let (status, with_moves) = call(
        running.addr,
        "GET",
        "/v1/accounts/a1?liquidation_moves=true",
        Some(&keys.a1),
        None,
    )
    .await;
    assert_eq!(status, 200, "{with_moves}");
    assert_eq!(with_moves["equity"], "9994");
    let moves = with_moves["liquidation_moves"].as_array().unwrap();
    assert_eq!(moves[0]["underlyings"], json!(["BTC"]));
    let fall = &moves[0]["fall"];
    let index: f64 = fall["index"].as_str().unwrap().parse().unwrap();
    assert!(
        (index - (60_000.0 - 9_694.0 / 0.995)).abs() < 1e-4,
        "{fall}"
    );
    let price_move = fall["move"].as_f64().unwrap();
    assert!(
        (price_move - (index / 60_000.0 - 1.0)).abs() < 1e-12,
        "{fall}"
    );
    assert!(moves[0]["rise"].is_null(), "{}", moves[0]);
    // A portfolio sent in carries its moves too: 10,000 USDT long 1 BTCUSDT at 60,000, room
    // 10,000 - 300 = 9,700, reached 9,700 / 0.995 below: 50,251.2563.
    let body = json!({"portfolio": {"account": "x", "mode": "cross", "collateral": {"USDT": "10000"}, "positions": [{"instrument": "BTCUSDT", "size": "1", "entry_price": "60000"}]}}).to_string();
    let (status, sent) = call(
        running.addr,
        "POST",
        "/v1/margin",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let fall = &sent["liquidation_moves"][0]["fall"];
    let index: f64 = fall["index"].as_str().unwrap().parse().unwrap();
    assert!(
        (index - (60_000.0 - 9_700.0 / 0.995)).abs() < 1e-4,
        "{fall}"
    );

    // Ranked list, state filter, unknown sort named.
    let (status, list) = call(
        running.addr,
        "GET",
        "/v1/accounts?sort=health",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["accounts"][0]["account"], "a1");
    assert_eq!(list["accounts"][0]["equity"], "9994");
    let (status, error) = call(
        running.addr,
        "GET",
        "/v1/accounts?sort=size",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("sort"))
    );
    let (status, list) = call(
        running.addr,
        "GET",
        "/v1/accounts?state=bankrupt",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!((status, list["total"].as_u64()), (200, Some(0)));

    // The same portfolio sent in gets the same figures.
    let (status, prices) = call(running.addr, "GET", "/v1/prices", Some(&keys.a1), None).await;
    assert_eq!(
        (status, prices["index"]["BTC"].as_str()),
        (200, Some("60000"))
    );
    running.stop().await.unwrap();
}

/// A service on `examples/vol-scaled-venue.toml` (BTC's range scaled with forecast volatility)
/// whose account `a1` holds 40,000 USDT and 2 BTCUSDT long at 92,000 in portfolio mode.
async fn start_scaled_with_a_btc_long() -> (Running, Keys) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/vol-scaled-venue.toml"
    );
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let (ring, keys) = keys();
    let running = solvent_server::start(
        Engine::new(venue, EngineConfig::default()),
        Box::new(MemoryJournal::default()),
        ring,
        &local(),
    )
    .await
    .unwrap();
    let opening = json!([
        {"type": "index_price", "underlying": "BTC", "price": "92000", "ts": "2026-01-05T00:00:00Z"},
        {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "40000", "ts": "2026-01-05T00:00:01Z"},
        {"type": "set_margin_mode", "account": "a1", "mode": "portfolio", "ts": "2026-01-05T00:00:02Z"},
        {"type": "fill", "account": "a1", "instrument": "BTCUSDT", "side": "buy", "size": "2", "price": "92000", "counterparty": "external", "ts": "2026-01-05T00:00:03Z"},
    ]);
    let (status, reply) = post_events(&running, &keys.admin, opening).await;
    assert_eq!(status, 200, "{reply}");
    (running, keys)
}

/// On a venue that scales BTC's range (`examples/vol-scaled-venue.toml`), a portfolio account is
/// margined on the static grid with a warning until a `scenario_range` event arrives; then on
/// the scaled grid, and the account's report shows the range in force. Long 2 BTCUSDT at
/// 92,000 with 40,000 USDT: MM = 2 x 92,000 x 16% + 300.304613 of add-ons = 29,740.304613, then
/// 2 x 92,000 x 5.6955% + 300.30 = 10,780.032079 (docs/vol-scaled-ranges.md).
#[tokio::test]
async fn a_scenario_range_event_rescales_the_account_report() {
    let (running, keys) = start_scaled_with_a_btc_long().await;
    let (status, report) = call(running.addr, "GET", "/v1/accounts/a1", Some(&keys.a1), None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["maintenance_margin"], "29740.304613");
    assert_eq!(report["vol_scaled_ranges"], json!([]));
    assert!(
        report["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("BTC: the venue scales its range")),
        "{report}"
    );
    let range = json!([{"type": "scenario_range", "underlying": "BTC", "as_of": "2026-01-05",
        "model": "ewma", "control": "buffer", "sigma_daily": "0.015819448100447976",
        "base": "0.04745834430134393", "range": "0.05695504057259702", "bound": "buffer_partial",
        "ts": "2026-01-06T00:00:00Z"}]);
    let (status, reply) = post_events(&running, &keys.admin, range).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][0]["status"], "accepted", "{reply}");
    let (status, report) = call(running.addr, "GET", "/v1/accounts/a1", Some(&keys.a1), None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["maintenance_margin"], "10780.032079");
    let ranges = report["vol_scaled_ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0]["underlying"], "BTC");
    assert_eq!(ranges[0]["as_of"], "2026-01-05");
    assert_eq!(ranges[0]["range"], 0.05695504057259702);
    assert_eq!(ranges[0]["static_range"], 0.16);
    assert_eq!(ranges[0]["bound"], "buffer_partial");
    assert!(
        !report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("scenario_range")),
        "{report}"
    );
    // Every computation on the live venue margins on the scaled grid and says so: the account's
    // what-if, allocation, stress and get_margins, and a portfolio sent in exposed to BTC.
    let sent_in = json!({"portfolio": {"account": "p", "mode": "portfolio",
        "collateral": {"USDT": "40000"},
        "positions": [{"instrument": "BTCUSDT", "size": "2", "entry_price": "92000"}]}});
    let routes = [
        (
            "/v1/whatif",
            json!({"account": "a1", "trades": ["BTCUSDT:0.1"]}),
        ),
        ("/v1/allocate", json!({"account": "a1"})),
        ("/v1/stress", json!({"account": "a1"})),
        (
            "/v1/margin/order",
            json!({"account": "a1", "instrument": "BTCUSDT", "amount": "0.1"}),
        ),
        ("/v1/margin", sent_in),
    ];
    for (path, body) in &routes {
        let (status, answer) = call(
            running.addr,
            "POST",
            path,
            Some(&keys.a1),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(status, 200, "{path}: {answer}");
        let ranges = answer["vol_scaled_ranges"].as_array().unwrap();
        assert_eq!(ranges.len(), 1, "{path}: {answer}");
        assert_eq!(ranges[0]["range"], 0.05695504057259702, "{path}");
        assert_eq!(ranges[0]["bound"], "buffer_partial", "{path}");
    }
    // The scaled grid's figures: the same as the account's report.
    let (_, margin) = call(
        running.addr,
        "POST",
        "/v1/margin",
        Some(&keys.a1),
        Some(&routes[4].1.to_string()),
    )
    .await;
    assert_eq!(margin["maintenance_margin"], "10780.032079", "{margin}");
    running.stop().await.unwrap();
}

/// Before any `scenario_range` event, every computation on a venue that scales BTC warns that it
/// margined BTC on the static grid, and names no range.
#[tokio::test]
async fn computations_before_a_forecast_warn_of_the_static_grid() {
    let (running, keys) = start_scaled_with_a_btc_long().await;
    for (path, body) in [
        (
            "/v1/whatif",
            json!({"account": "a1", "trades": ["BTCUSDT:0.1"]}),
        ),
        ("/v1/allocate", json!({"account": "a1"})),
        ("/v1/stress", json!({"account": "a1"})),
    ] {
        let (status, answer) = call(
            running.addr,
            "POST",
            path,
            Some(&keys.a1),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert!(
            answer.get("vol_scaled_ranges").is_none(),
            "{path}: {answer}"
        );
        assert!(
            answer["warnings"].as_array().unwrap().iter().any(|w| w
                .as_str()
                .unwrap()
                .starts_with("BTC: the venue scales its range")),
            "{path}: {answer}"
        );
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_bad_event_refuses_the_whole_request_naming_the_field_and_nothing_moves() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    let (_, before) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    let cases = [
        (json!({"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5"}, {"type": "deposit", "account": "a1", "asset": "USDT"}]}).to_string(), "events[1].amount"),
        (json!({"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1e3"}]}).to_string(), "events[0].amount"),
        (json!({"events": [{"type": "teleport"}]}).to_string(), "events[0].type"),
        (json!({"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5", "colour": 1}]}).to_string(), "events[0].colour"),
        (json!({"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5", "seq": 9}]}).to_string(), "events[0].seq"),
        (json!({"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5", "ts": "yesterday"}]}).to_string(), "events[0].ts"),
        (json!({"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5", "client_id": " "}]}).to_string(), "events[0].client_id"),
        (json!({"events": [{"type": "deposit", "account": " a1", "asset": "USDT", "amount": "5"}]}).to_string(), "events[0].account"),
        (json!({"events": [{"type": "deposit", "account": "a".repeat(129), "asset": "USDT", "amount": "5"}]}).to_string(), "events[0].account"),
        (json!({"events": []}).to_string(), "events"),
        (json!({"events": [], "extra": true}).to_string(), "extra"),
        (r#"{"events": [] } trailing"#.to_owned(), "(body)"),
        ("not json".to_owned(), "(body)"),
    ];
    for (body, field) in cases {
        let (status, error) = call(
            running.addr,
            "POST",
            "/v1/events",
            Some(&keys.admin),
            Some(&body),
        )
        .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["code"], "invalid_request");
        assert_eq!(
            error["error"]["field"].as_str(),
            Some(field),
            "{body}: {error}"
        );
    }
    let (_, after) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(before, after);
    // A refusal by the engine is an answer, not an error: no sequence number, the reason named.
    let (status, reply) = post_events(
        &running,
        &keys.admin,
        json!([{"type": "withdraw", "account": "a1", "asset": "USDT", "amount": "100000"}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["results"][0]["status"], "rejected");
    assert_eq!(reply["results"][0]["seq"], Value::Null);
    assert_eq!(reply["results"][0]["effects"][0]["type"], "rejected");
    let (_, after_refusal) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(before, after_refusal);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_retry_with_the_same_client_id_gets_the_first_result_and_moves_money_once() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    let (_, first) = post_events(&running, &keys.admin, opening()).await;
    let retry = json!([{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "10000", "client_id": "dep-1"}]);
    let (status, second) = post_events(&running, &keys.admin, retry).await;
    assert_eq!(status, 200);
    assert_eq!(second["results"][0]["status"], "duplicate");
    assert_eq!(second["results"][0]["seq"], first["results"][1]["seq"]);
    assert_eq!(
        second["results"][0]["effects"],
        first["results"][1]["effects"]
    );
    let (_, report) = call(
        running.addr,
        "GET",
        "/v1/accounts/a1",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(report["equity"], "9994");
    running.stop().await.unwrap();
}

/// A data directory under the system's temporary directory, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "solvent-server-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
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

/// Issue 12: a service with the audit writer behind it hands each durable event's effects, as
/// its reply carried them, to the writer's queue: the audit page shows them, byte for byte, and
/// the writer re-applied nothing (no second engine while the queue keeps up).
#[tokio::test]
async fn the_audit_writer_writes_the_effects_the_replies_carried_from_its_queue() {
    let dir = TempDir::new("audit-queue");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let writer = solvent_store::AuditWriter::start(&dir.0, venue, EngineConfig::default()).unwrap();
    let config = Config {
        audit: Some(writer.sink()),
        ..local()
    };
    let (running, keys) = start_with(Box::new(journal), config).await;
    let (status, opened) = post_events(&running, &keys.admin, opening()).await;
    assert_eq!(status, 200, "{opened}");
    let (status, more) = post_events(
        &running,
        &keys.admin,
        json!([
            {"type": "index_price", "underlying": "BTC", "price": "54000", "ts": "2026-01-01T00:00:03Z"},
            {"type": "deposit", "account": "a2", "asset": "USDT", "amount": "500", "ts": "2026-01-01T00:00:04Z"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{more}");
    let results: Vec<&Value> = opened["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(more["results"].as_array().unwrap())
        .collect();
    let last = results.last().unwrap()["seq"].as_u64().unwrap();
    let written = writer.wait_for(last, Duration::from_secs(60));
    assert_eq!(written.effects_through, Some(last), "{written:?}");
    assert_eq!(
        (written.written, written.replayed, written.fallbacks),
        (last, 0, 0),
        "{written:?}"
    );
    let (status, page) = call(
        running.addr,
        "GET",
        "/v1/journal?after=0&limit=10",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["effects_through"], last, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), results.len(), "{page}");
    for (event, result) in events.iter().zip(&results) {
        assert_eq!(event["seq"], result["seq"], "{page}");
        assert_eq!(event["effects"], result["effects"], "{page}");
    }
    running.stop().await.unwrap();
    drop(writer.stop());
}

/// Issue 11: the client-id window is bounded; an id that has left it (after many later events,
/// and after a restart, when no id is in memory) is answered from the journal with its first
/// reply and never applied twice.
#[tokio::test]
async fn a_retry_older_than_the_client_id_window_is_answered_from_the_journal_after_a_restart() {
    let dir = TempDir::new("client-window");
    let venue = || {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut config = local();
    config.limits.client_window = 8;
    let deposit = |id: &str, account: &str| json!({"type": "deposit", "account": account, "asset": "USDT", "amount": "100", "client_id": id});
    let equity = |report: &Value| report["equity"].as_str().unwrap().to_owned();

    let journal = solvent_store::SqliteJournal::open(&dir.0).unwrap();
    let (running, keys) = start_with(Box::new(journal), config.clone()).await;
    let (status, first) = post_events(&running, &keys.admin, json!([deposit("old", "a1")])).await;
    assert_eq!(status, 200, "{first}");
    // 200 later ids, in batches of 20: the window (8) forgets "old" many times over.
    for batch in 0..10 {
        let events: Vec<Value> = (0..20)
            .map(|n| deposit(&format!("later-{batch}-{n}"), "a2"))
            .collect();
        let (status, reply) = post_events(&running, &keys.admin, Value::Array(events)).await;
        assert_eq!(status, 200, "{reply}");
    }
    let (_, retried) = post_events(&running, &keys.admin, json!([deposit("old", "a1")])).await;
    assert_eq!(retried["results"][0]["status"], "duplicate", "{retried}");
    assert_eq!(retried["results"][0]["seq"], first["results"][0]["seq"]);
    assert_eq!(
        retried["results"][0]["effects"],
        first["results"][0]["effects"]
    );
    let (_, report) = call(
        running.addr,
        "GET",
        "/v1/accounts/a1",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(equity(&report), "100");
    running.stop().await.unwrap();

    // Restarted from the data directory: nothing in memory, the journal answers.
    let recovered = solvent_store::recover(&dir.0, venue(), EngineConfig::default()).unwrap();
    assert_eq!(recovered.report.last_seq, Some(201));
    let (ring, keys) = crate::keys();
    let running =
        solvent_server::start(recovered.engine, Box::new(recovered.journal), ring, &config)
            .await
            .unwrap();
    // The old id twice in one request, and a later one: each answered with its first reply.
    let (status, again) = post_events(
        &running,
        &keys.admin,
        json!([
            deposit("old", "a1"),
            deposit("later-9-19", "a2"),
            deposit("old", "a1"),
            deposit("new", "a1")
        ]),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    let results = again["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["duplicate", "duplicate", "duplicate", "accepted"]
    );
    assert_eq!(results[0]["seq"], first["results"][0]["seq"]);
    assert_eq!(results[0]["effects"], first["results"][0]["effects"]);
    assert_eq!(results[2]["effects"], first["results"][0]["effects"]);
    assert_eq!(results[1]["seq"], 201);
    assert_eq!(results[3]["seq"], 202);
    let (_, report) = call(
        running.addr,
        "GET",
        "/v1/accounts/a1",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(equity(&report), "200");
    let (_, report) = call(
        running.addr,
        "GET",
        "/v1/accounts/a2",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(equity(&report), "20000");
    // The effects are written after the events, off the acknowledgement path, by the audit
    // writer; none ran yet: the page says how far the effects reach (nowhere) and marks the
    // events' effects as not written, not as none. Started, the writer catches up from the
    // journal.
    let (status, pending) = call(
        running.addr,
        "GET",
        "/v1/journal?limit=1",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["effects_through"], Value::Null, "{pending}");
    assert_eq!(pending["events"][0]["effects_pending"], true, "{pending}");
    let writer =
        solvent_store::AuditWriter::start(&dir.0, venue(), EngineConfig::default()).unwrap();
    let written = writer.wait_for(202, std::time::Duration::from_secs(60));
    assert_eq!(written.effects_through, Some(202), "{written:?}");
    // Issue 12: the audit pages the journal itself: the events before the restart are there,
    // each with its client id and the effects it caused then (journaled with it, nothing of
    // them held in memory across the restart), equal to the first reply's.
    let (status, audit) = call(
        running.addr,
        "GET",
        "/v1/journal?before=3&limit=5",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let events = audit["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(events[0]["client_id"], "old");
    assert_eq!(
        events[0]["effects"], first["results"][0]["effects"],
        "{audit}"
    );
    assert!(!events[1]["effects"].as_array().unwrap().is_empty());
    assert!(audit["next"].is_null(), "{audit}");
    // The account filter reaches the old event of a1 across the 200 of a2 after it, and only
    // a1's: event 1 before the restart, 202 after it.
    let (_, of_a1) = call(
        running.addr,
        "GET",
        "/v1/journal?account=a1&limit=10",
        Some(&keys.viewer),
        None,
    )
    .await;
    let seqs: Vec<u64> = of_a1["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 202], "{of_a1}");
    assert!(
        of_a1["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"]["account"] == "a1"),
        "{of_a1}"
    );
    // The latest event's effects name it; the effect-type filter and a sequence range reach
    // the old ones too.
    let (_, latest) = call(
        running.addr,
        "GET",
        "/v1/journal?limit=1&account=a1",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(latest["events"][0]["seq"], 202);
    assert_eq!(latest["next"], 202);
    let effects = latest["events"][0]["effects"].as_array().unwrap();
    assert!(
        !effects.is_empty() && effects.iter().all(|e| e["seq"] == 202),
        "{latest}"
    );
    let (_, ranged) = call(
        running.addr,
        "GET",
        "/v1/journal?effect_type=transfer_applied&from_seq=1&to_seq=2&after=0",
        Some(&keys.viewer),
        None,
    )
    .await;
    let seqs: Vec<u64> = ranged["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2], "{ranged}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_wrong_key() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    let portfolio = json!({"portfolio": {"account": "x", "mode": "cross", "collateral": {"USDT": "1000"}, "positions": []}}).to_string();
    let whatif = json!({"account": "a1", "trades": ["BTCUSDT:0.1"]}).to_string();
    let stress = json!({"account": "a1"}).to_string();
    let order = json!({"account": "a1", "instrument": "BTCUSDT", "amount": "0.1"}).to_string();
    let allocate = json!({"account": "a1"}).to_string();
    let routes: [(&str, &str, Option<&str>); 12] = [
        (
            "POST",
            "/v1/events",
            Some(r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1"}]}"#),
        ),
        ("GET", "/v1/accounts", None),
        ("GET", "/v1/accounts/a1", None),
        ("GET", "/v1/accounts/a1/risk-matrix", None),
        ("POST", "/v1/margin", Some(&portfolio)),
        ("POST", "/v1/margin/order", Some(&order)),
        ("POST", "/v1/whatif", Some(&whatif)),
        ("POST", "/v1/allocate", Some(&allocate)),
        ("POST", "/v1/stress", Some(&stress)),
        ("GET", "/v1/insurance-fund", None),
        ("GET", "/v1/liquidations", None),
        ("GET", "/v1/state-hash", None),
    ];
    for (method, path, body) in routes {
        let (status, error) = call(running.addr, method, path, None, body).await;
        assert_eq!(status, 401, "{method} {path} without a key: {error}");
        let (status, _) = call(running.addr, method, path, Some("sk_00000000_00"), body).await;
        assert_eq!(status, 401, "{method} {path} with a made-up key");
        // a2's key sees nothing of a1 and nothing of the book; it may price a portfolio it sends.
        let (status, error) = call(running.addr, method, path, Some(&keys.a2), body).await;
        if path == "/v1/margin" {
            assert_eq!(status, 200, "{method} {path} with a2's key: {error}");
        } else {
            assert_eq!(status, 403, "{method} {path} with a2's key: {error}");
            assert_eq!(error["error"]["code"], "forbidden");
        }
        // The viewer reads everything and changes nothing.
        let (status, error) = call(running.addr, method, path, Some(&keys.viewer), body).await;
        if path == "/v1/events" {
            assert_eq!(status, 403, "{error}");
        } else if path.ends_with("risk-matrix") {
            // a1 is in cross margin: no risk matrix, and the answer says why.
            assert_eq!(status, 422, "{error}");
        } else {
            assert_eq!(
                status, 200,
                "{method} {path} with the viewer's key: {error}"
            );
        }
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn computations_answer_like_the_command_line() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    // What-if: 1 BTC more on 9,994 equity at the default venue's rates is accepted or refused by
    // the one pre-trade rule; 100 BTC more is refused with the named reason.
    let body = json!({"account": "a1", "trades": ["BTCUSDT:100"]}).to_string();
    let (status, outcome) = call(
        running.addr,
        "POST",
        "/v1/whatif",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["accepted"], false);
    assert_eq!(outcome["refusal"], "initial_margin");
    let body = json!({"account": "a1", "trades": ["BTCUSDT:nope"]}).to_string();
    let (status, error) = call(
        running.addr,
        "POST",
        "/v1/whatif",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("trades[0]"))
    );
    // get_margins: the buy adds initial margin, the sell of 0.1 against a 1 BTC long frees some.
    let body = json!({"account": "a1", "instrument": "BTCUSDT", "amount": "0.1"}).to_string();
    let (status, order) = call(
        running.addr,
        "POST",
        "/v1/margin/order",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{order}");
    let buy: f64 = order["buy"].as_str().unwrap().parse().unwrap();
    let sell: f64 = order["sell"].as_str().unwrap().parse().unwrap();
    assert!(buy > 0.0 && sell < 0.0, "{order}");
    assert!(
        (buy + sell).abs() < 1e-6,
        "linear tiers: symmetric around 1 BTC: {order}"
    );
    // A stress grid and a reverse stress.
    let body = json!({"account": "a1", "reverse": true}).to_string();
    let (status, stress) = call(
        running.addr,
        "POST",
        "/v1/stress",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{stress}");
    assert_eq!(stress["scenarios"].as_array().unwrap().len(), 15);
    assert!(stress["reverse"].as_array().is_some_and(|r| !r.is_empty()));
    // A portfolio sent in with an unknown instrument: the field is named.
    let body = json!({"portfolio": {"account": "x", "mode": "cross", "collateral": {"USDT": "1000"}, "positions": [{"instrument": "NOPE", "size": "1", "entry_price": "1"}]}}).to_string();
    let (status, error) = call(
        running.addr,
        "POST",
        "/v1/margin",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("portfolio.positions"),
        "{error}"
    );
    running.stop().await.unwrap();
}

/// What is sent in is checked as the command line checks its files (`solvent_risk::checks`): a
/// mark ten times its index is refused naming the field and the request's own switch; with the
/// switch it is valued with a warning; a missing mark is valued at the index and named.
#[tokio::test]
async fn inputs_sent_in_are_checked_as_the_command_lines_files() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    let portfolio = json!({"account": "x", "mode": "cross", "collateral": {"USDT": "100000"}, "positions": [{"instrument": "BTCUSDT", "size": "1", "entry_price": "60000"}]});
    let far = json!({"timestamp": "2026-01-06T08:00:00Z", "index": {"BTC": "60000", "USDT": "1"}, "mark": {"BTCUSDT": "600000"}});
    let body = json!({"portfolio": portfolio, "market": far}).to_string();
    for path in ["/v1/margin", "/v1/stress", "/v1/allocate"] {
        let (status, error) = call(running.addr, "POST", path, Some(&keys.a1), Some(&body)).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert_eq!(error["error"]["field"], "market.mark.BTCUSDT", "{path}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "600,000.00 is 900.0% from the BTC index 60,000.00, beyond the 20% mark band"
            ) && message.contains("pass \"allow_far_marks\": true"),
            "{message}"
        );
    }
    let body = json!({"portfolio": portfolio, "market": far, "allow_far_marks": true}).to_string();
    let (status, report) = call(
        running.addr,
        "POST",
        "/v1/margin",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    // Valued at the far mark: 1 BTC long from 60,000 marked at 600,000 gains 540,000.
    assert_eq!(report["positions"][0]["upnl"], "540000");
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .ends_with("valued anyway (\"allow_far_marks\": true)"),
        "{report}"
    );
    // No mark: the index stands in, and the answer says so.
    let body = json!({"portfolio": portfolio, "market": {"timestamp": "2026-01-06T08:00:00Z", "index": {"BTC": "60000", "USDT": "1"}}}).to_string();
    let (status, report) = call(
        running.addr,
        "POST",
        "/v1/margin",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["warnings"],
        json!(["market: mark.BTCUSDT: missing; the BTC index 60,000.00 stands in for it"])
    );
    // A well-formed request adds no warning (the report's own list stays empty).
    let body = json!({"portfolio": portfolio, "market": {"timestamp": "2026-01-06T08:00:00Z", "index": {"BTC": "60000", "USDT": "1"}, "mark": {"BTCUSDT": "60010"}}}).to_string();
    let (status, report) = call(
        running.addr,
        "POST",
        "/v1/margin",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["warnings"], json!([]), "{report}");
    running.stop().await.unwrap();
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .unwrap();
        if let Ok(text) = message.to_text()
            && !text.is_empty()
        {
            return serde_json::from_str(text).unwrap();
        }
    }
}

async fn subscribe(socket: &mut Socket, request: Value) -> Value {
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            request.to_string().into(),
        ))
        .await
        .unwrap();
    next_text(socket).await
}

#[tokio::test]
async fn the_stream_sends_a_snapshot_then_every_effect_numbered_and_resumes_without_a_gap() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    let url = format!("ws://{}/v1/ws?api_key={}", running.addr, keys.a1);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let subscribed = subscribe(
        &mut socket,
        json!({"op": "subscribe", "args": ["account.a1", "prices"]}),
    )
    .await;
    assert_eq!(subscribed["op"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["snapshots"]["account.a1"]["equity"], "9994");
    assert_eq!(subscribed["snapshots"]["prices"]["index"]["BTC"], "60000");
    // a1's key may not watch the whole book.
    let refused = subscribe(
        &mut socket,
        json!({"op": "subscribe", "args": ["liquidations"]}),
    )
    .await;
    assert_eq!(refused["code"], "forbidden");
    let bad = subscribe(&mut socket, json!({"op": "subscribe", "args": ["trades"]})).await;
    assert_eq!(bad["code"], "invalid_request");

    post_events(
        &running,
        &keys.admin,
        json!([
            {"type": "index_price", "underlying": "BTC", "price": "59000", "ts": "2026-01-01T00:00:03Z"},
            {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5", "ts": "2026-01-01T00:00:04Z"},
        ]),
    )
    .await;
    let price = next_text(&mut socket).await;
    assert_eq!(
        (price["channel"].as_str(), price["data"]["price"].as_str()),
        (Some("prices"), Some("59000"))
    );
    let mut seen = vec![price["seq"].as_u64().unwrap()];
    let deposit = loop {
        let message = next_text(&mut socket).await;
        seen.push(message["seq"].as_u64().unwrap());
        if message["data"]["reason"] == "deposit" {
            break message;
        }
    };
    assert_eq!(deposit["channel"], "account.a1");
    assert_eq!(deposit["data"]["amount"], "5");
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]), "{seen:?}");
    drop(socket);

    // Reconnect after the price: everything after it comes again, in order, then live ones.
    let resume_after = seen[0];
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let subscribed = subscribe(
        &mut socket,
        json!({"op": "subscribe", "args": ["account.a1", "prices"], "since": resume_after}),
    )
    .await;
    assert_eq!(subscribed["op"], "subscribed");
    let mut resumed = Vec::new();
    while resumed.len() < seen.len() - 1 {
        resumed.push(next_text(&mut socket).await["seq"].as_u64().unwrap());
    }
    assert_eq!(resumed, seen[1..]);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_stream_request_longer_than_the_read_buffer_is_read_whole() {
    // The server reads a socket 4 KiB at a time; a request of about 13 KiB must still arrive
    // whole, be answered, and leave the connection usable.
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    let url = format!("ws://{}/v1/ws?api_key={}", running.addr, keys.a1);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let names: Vec<String> = (0..1000).map(|i| format!("account.a{i:04}")).collect();
    let request = json!({"op": "unsubscribe", "args": names});
    assert!(request.to_string().len() > 12 * 1024);
    let answer = subscribe(&mut socket, request).await;
    assert_eq!(answer["op"], "unsubscribed", "{answer}");
    assert_eq!(answer["args"], json!(names));
    let subscribed = subscribe(
        &mut socket,
        json!({"op": "subscribe", "args": ["account.a1"]}),
    )
    .await;
    assert_eq!(subscribed["op"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["snapshots"]["account.a1"]["equity"], "9994");
    running.stop().await.unwrap();
}

/// Where a [`HeldJournal`]'s appends wait until [`open`] lets them through.
type Gate = Arc<(Mutex<bool>, Condvar)>;

/// A journal that holds every append until released, to fill the pipeline.
struct HeldJournal {
    gate: Gate,
    inner: MemoryJournal,
}

impl HeldJournal {
    /// A memory journal whose appends wait at the gate returned beside it.
    fn new() -> (Self, Gate) {
        let gate: Gate = Arc::new((Mutex::new(false), Condvar::new()));
        let journal = Self {
            gate: Arc::clone(&gate),
            inner: MemoryJournal::default(),
        };
        (journal, gate)
    }
}

/// Lets a held journal's appends through, the waiting one and every later one.
fn open(gate: &Gate) {
    let (open, changed) = &**gate;
    *open.lock().unwrap() = true;
    changed.notify_all();
}

impl Journal for HeldJournal {
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        let (open, changed) = &*self.gate;
        let mut open = open.lock().unwrap();
        while !*open {
            open = changed.wait(open).unwrap();
        }
        self.inner.append(entries)
    }
    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        self.inner.last_seq()
    }
    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        self.inner.read_after(after, limit)
    }
    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
        self.inner.client(client_id)
    }
    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError> {
        self.inner.reader()
    }
}

#[tokio::test]
async fn a_full_queue_answers_429_and_nothing_is_acknowledged_before_it_is_durable() {
    let (journal, gate) = HeldJournal::new();
    let mut config = local();
    config.limits.queue = 2;
    let (running, keys) = start_with(Box::new(journal), config).await;
    let deposit = |n: u32| json!([{"type": "deposit", "account": format!("q{n}"), "asset": "USDT", "amount": "1"}]);
    let mut waiting = Vec::new();
    let mut refused = None;
    for n in 0..16 {
        let body = json!({ "events": deposit(n) }).to_string();
        let addr = running.addr;
        let key = keys.admin.clone();
        let call =
            tokio::spawn(
                async move { call(addr, "POST", "/v1/events", Some(&key), Some(&body)).await },
            );
        tokio::time::sleep(Duration::from_millis(30)).await;
        if call.is_finished() {
            refused = Some(call.await.unwrap());
            break;
        }
        waiting.push(call);
    }
    let (status, error) = refused.expect("a held journal fills the queue");
    assert_eq!(status, 429, "{error}");
    assert_eq!(error["error"]["code"], "queue_full");
    // Nothing was answered while the journal held the first append.
    assert!(waiting.iter().all(|call| !call.is_finished()));
    assert_eq!(running.state.view().seq, None);
    open(&gate);
    for call in waiting {
        let (status, reply) = call.await.unwrap();
        assert_eq!(status, 200, "{reply}");
    }
    running.stop().await.unwrap();
}

/// Requests the engine takes into one batch (the journal holds the first append, so the rest
/// queue and are applied together) each get their own events' replies: sequence numbers, their
/// effects written once the batch is durable, a refusal in the middle, a client id's reply.
#[tokio::test]
async fn requests_applied_in_one_batch_each_get_their_own_effects() {
    let (journal, gate) = HeldJournal::new();
    let (running, keys) = start_with(Box::new(journal), local()).await;
    let mut calls = Vec::new();
    for n in 0..12_u32 {
        let account = format!("r{n}");
        // A deposit, a withdrawal beyond it (refused), a second deposit with a client id.
        let events = json!([
            {"type": "deposit", "account": account, "asset": "USDT", "amount": format!("{}", 100 + n)},
            {"type": "withdraw", "account": account, "asset": "USDT", "amount": "1000000"},
            {"type": "deposit", "account": account, "asset": "USDT", "amount": "1", "client_id": format!("batch-{n}")},
        ]);
        let body = json!({ "events": events }).to_string();
        let (addr, key) = (running.addr, keys.admin.clone());
        calls.push((
            account,
            tokio::spawn(
                async move { call(addr, "POST", "/v1/events", Some(&key), Some(&body)).await },
            ),
        ));
    }
    // Every request queued and applied behind the held append.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(calls.iter().all(|(_, call)| !call.is_finished()));
    open(&gate);
    let mut seqs = Vec::new();
    for (account, call) in calls {
        let (status, reply) = call.await.unwrap();
        assert_eq!(status, 200, "{reply}");
        let results = reply["results"].as_array().unwrap();
        assert_eq!(results.len(), 3, "{reply}");
        for (index, result) in results.iter().enumerate() {
            let effects = result["effects"].as_array().unwrap();
            assert!(!effects.is_empty(), "{result}");
            if index == 1 {
                assert_eq!(result["status"], "rejected", "{result}");
                assert_eq!(effects[0]["type"], "rejected", "{result}");
                continue;
            }
            assert_eq!(result["status"], "accepted", "{result}");
            let seq = result["seq"].as_u64().unwrap();
            seqs.push(seq);
            for effect in effects {
                assert_eq!(effect["seq"].as_u64(), Some(seq), "{result}");
                if let Some(owner) = effect.get("account") {
                    assert_eq!(owner, &json!(account), "{result}");
                }
            }
            assert!(
                effects.iter().any(|e| e["type"] == "transfer_applied"
                    && e["reason"] == "deposit"
                    && e["to"] == json!(account)),
                "{result}"
            );
        }
        assert_eq!(
            results[2]["client_id"],
            json!(format!("batch-{}", &account[1..]))
        );
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=24).collect::<Vec<u64>>(),
        "each accepted event numbered once"
    );
    running.stop().await.unwrap();
}

/// A journal whose every append fails, as a failed fsync does.
struct FailingJournal;

impl Journal for FailingJournal {
    fn append(&mut self, _: &[Entry]) -> Result<(), JournalError> {
        Err(JournalError::Storage(
            "fsync: input/output error".to_owned(),
        ))
    }
    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        Ok(None)
    }
    fn read_after(&self, _: Option<u64>, _: usize) -> Result<Vec<Entry>, JournalError> {
        Ok(Vec::new())
    }
    fn client(&self, _: &str) -> Result<Option<ClientRecord>, JournalError> {
        Ok(None)
    }
    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError> {
        MemoryJournal::default().reader()
    }
}

/// A journal whose reader cannot read client ids (a storage error on the read side).
struct UnreadableClients(MemoryJournal);

impl Journal for UnreadableClients {
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        self.0.append(entries)
    }
    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        self.0.last_seq()
    }
    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        self.0.read_after(after, limit)
    }
    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
        self.0.client(client_id)
    }
    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError> {
        Ok(Box::new(UnreadableReader))
    }
}

struct UnreadableReader;

impl JournalReader for UnreadableReader {
    fn client(&self, _: &str) -> Result<Option<ClientRecord>, JournalError> {
        Err(JournalError::Storage("disk I/O error".to_owned()))
    }
    fn read_after(&self, _: Option<u64>, _: usize) -> Result<Vec<Entry>, JournalError> {
        Err(JournalError::Storage("disk I/O error".to_owned()))
    }
    fn read_before(&self, _: Option<u64>, _: usize) -> Result<Vec<Entry>, JournalError> {
        Err(JournalError::Storage("disk I/O error".to_owned()))
    }
    fn audit(&self, _: &AuditQuery) -> Result<Vec<AuditRecord>, JournalError> {
        Err(JournalError::Storage("disk I/O error".to_owned()))
    }
    fn effects_through(&self) -> Result<Option<u64>, JournalError> {
        Err(JournalError::Storage("disk I/O error".to_owned()))
    }
    fn each_client_id(&self, visit: &mut dyn FnMut(&str)) -> Result<(), JournalError> {
        // The journal says it holds "x" at start, then fails when a request asks about it.
        visit("x");
        Ok(())
    }
}

/// When the journal cannot say whether a client id is a retry, the request is refused whole
/// (503, nothing applied) rather than risk applying a retry twice; events without ids go on.
#[tokio::test]
async fn a_client_id_the_journal_cannot_check_refuses_the_request_and_applies_nothing() {
    let (running, keys) = start_with(
        Box::new(UnreadableClients(MemoryJournal::default())),
        local(),
    )
    .await;
    let (status, error) = post_events(
        &running,
        &keys.admin,
        json!([
            {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5"},
            {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "7", "client_id": "x"}
        ]),
    )
    .await;
    assert_eq!(status, 503, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing applied"),
        "{error}"
    );
    assert_eq!(running.state.view().seq, None);
    let (status, reply) = post_events(
        &running,
        &keys.admin,
        json!([{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "5"}]),
    )
    .await;
    assert_eq!(
        (status, reply["results"][0]["seq"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    // The audit page says the journal cannot be read, in the error shape.
    let (status, error) = call(running.addr, "GET", "/v1/journal", Some(&keys.viewer), None).await;
    assert_eq!(status, 503, "{error}");
    assert!(error["error"]["message"].as_str().is_some(), "{error}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_append_is_never_acknowledged_and_stops_the_service() {
    let (running, keys) = start_with(Box::new(FailingJournal), local()).await;
    let (status, error) = post_events(&running, &keys.admin, opening()).await;
    assert_eq!(status, 503, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fsync")
    );
    let (status, _) = post_events(&running, &keys.admin, opening()).await;
    assert_eq!(status, 503);
    let (status, _) = call(running.addr, "GET", "/readyz", None, None).await;
    assert_eq!(status, 503);
    // Nothing of the refused batch reached the readers.
    let (status, list) = call(
        running.addr,
        "GET",
        "/v1/accounts",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!((status, list["total"].as_u64()), (200, Some(0)));
    assert!(running.failed().await.contains("fsync"));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    use utoipa::OpenApi as _;
    let document = serde_json::to_value(solvent_server::api::ApiDoc::openapi()).unwrap();
    let mut documented: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let mut served: Vec<(String, String)> = solvent_server::api::route_table()
        .into_iter()
        .map(|(method, path, _)| (method.to_owned(), path.to_owned()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    // Every operation states its security and its error shape.
    for (method, path) in &documented {
        let operation = &document["paths"][path][method.to_lowercase()];
        assert!(operation["security"].is_array(), "{method} {path}");
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
    }
    // And the service serves it, without a key.
    let (running, _) = start_with(Box::new(MemoryJournal::default()), local()).await;
    let (status, served_document) = call(running.addr, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(served_document, document);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_the_durable_events_and_the_margin_calls_and_liquidations() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    // 10,000 - 6 on one BTC long: at 50,300 equity is 294 against a maintenance margin near
    // 250 (a margin call); at 49,000 it is gone (a liquidation).
    let (status, reply) = post_events(
        &running,
        &keys.admin,
        json!([
            {"type": "index_price", "underlying": "BTC", "price": "50300", "ts": "2026-01-01T00:00:03Z"},
            {"type": "index_price", "underlying": "BTC", "price": "49000", "ts": "2026-01-01T00:00:04Z"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let kinds: Vec<&str> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|result| result["effects"].as_array().unwrap())
        .filter_map(|effect| effect["type"].as_str())
        .collect();
    assert!(kinds.contains(&"margin_call"), "{kinds:?}");
    assert!(kinds.contains(&"liquidation"), "{kinds:?}");
    let response = reqwest_like_get(running.addr, "/metrics").await;
    for line in [
        "solvent_effects_total{type=\"margin_call\"}",
        "solvent_effects_total{type=\"liquidation\"}",
        "solvent_events_durable_total",
        "solvent_accounts{state=",
    ] {
        assert!(response.contains(line), "{line} missing from:\n{response}");
    }
    running.stop().await.unwrap();
}

/// An unauthenticated GET returning the body as text (`/metrics` is not JSON).
async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn an_event_without_a_time_takes_the_wall_clock_or_under_a_replay_the_engines() {
    let later_history = json!([
        {"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1", "ts": "2026-01-01T00:00:05Z"},
    ]);
    let untimed = json!([{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1"}]);
    for (clock, later_accepted) in [
        (solvent_server::core::Clock::Wall, false),
        (solvent_server::core::Clock::Engine, true),
    ] {
        let config = Config { clock, ..local() };
        let (running, keys) = start_with(Box::new(MemoryJournal::default()), config).await;
        post_events(&running, &keys.admin, opening()).await;
        let (status, reply) = post_events(&running, &keys.admin, untimed.clone()).await;
        assert_eq!(
            (status, reply["results"][0]["status"].as_str()),
            (200, Some("accepted")),
            "{reply}"
        );
        // Under the wall clock the untimed deposit is stamped now (after 2026-01-01), so the
        // history's next event is out of order; under the engine's clock it is not.
        let (status, reply) = post_events(&running, &keys.admin, later_history.clone()).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(
            reply["results"][0]["status"] == "accepted",
            later_accepted,
            "{clock:?}: {reply}"
        );
        running.stop().await.unwrap();
    }
}

#[tokio::test]
async fn the_dashboard_routes_answer_with_the_key_scope_journal_history_totals_and_a_cascade() {
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    let (status, reply) = post_events(&running, &keys.admin, opening()).await;
    assert_eq!(status, 200, "{reply}");

    // The pages are public shells; their modules and the chart library are embedded.
    let (status, page) = call(running.addr, "GET", "/", None, None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("/assets/js/overview.js"));
    let (status, page) = call(running.addr, "GET", "/accounts/a1", None, None).await;
    assert!(status == 200 && page.as_str().unwrap().contains(r#"data-account="a1""#));
    for path in [
        "/stress",
        "/audit",
        "/assets/js/common.js",
        "/assets/vendor/uPlot.iife.min.js",
    ] {
        assert_eq!(
            call(running.addr, "GET", path, None, None).await.0,
            200,
            "{path}"
        );
    }
    assert_eq!(
        call(running.addr, "GET", "/assets/nothing.js", None, None)
            .await
            .0,
        404
    );

    // The key's scope.
    let (status, who) = call(running.addr, "GET", "/v1/key", Some(&keys.a1), None).await;
    assert_eq!((status, who["scope"].as_str()), (200, Some("account:a1")));
    assert_eq!(
        (who["account"].as_str(), who["can_read_book"].as_bool()),
        (Some("a1"), Some(false))
    );
    assert_eq!(
        call(running.addr, "GET", "/v1/key", None, None).await.0,
        401
    );

    // Totals per settlement asset over the whole book, exact.
    let (_, list) = call(
        running.addr,
        "GET",
        "/v1/accounts?limit=1",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(list["totals"]["USDT"]["equity"], "9994");
    assert_eq!(list["totals"]["USDT"]["accounts"], 1);

    // The journal: events with their effects, filtered; an account key reads its own only.
    let (status, journal) = call(
        running.addr,
        "GET",
        "/v1/journal?account=a1&type=fill",
        Some(&keys.viewer),
        None,
    )
    .await;
    assert_eq!(status, 200, "{journal}");
    let events = journal["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0]["seq"].as_u64(),
            events[0]["event"]["type"].as_str()
        ),
        (Some(3), Some("fill"))
    );
    assert!(
        events[0]["effects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["seq"] == 3)
    );
    let (_, journal) = call(
        running.addr,
        "GET",
        "/v1/journal?after=1&limit=1",
        Some(&keys.a1),
        None,
    )
    .await;
    assert_eq!(journal["events"][0]["seq"], 2);
    assert_eq!(
        call(
            running.addr,
            "GET",
            "/v1/journal?account=a2",
            Some(&keys.a1),
            None
        )
        .await
        .0,
        403
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("after=1&before=3", "before"),
        ("type=Fill!", "type"),
        ("effect_type=", "effect_type"),
        ("from_seq=5&to_seq=4", "to_seq"),
        ("colour=1", "colour"),
    ] {
        let (status, error) = call(
            running.addr,
            "GET",
            &format!("/v1/journal?{query}"),
            Some(&keys.viewer),
            None,
        )
        .await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (400, Some(field)),
            "{query}"
        );
    }

    // Health history from the feed, each point with the event's time.
    let (status, history) = call(
        running.addr,
        "GET",
        "/v1/accounts/a1/history",
        Some(&keys.a1),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let points = history["points"].as_array().unwrap();
    assert!(!points.is_empty());
    assert_eq!(
        history["kept_per_account"].as_u64(),
        Some(solvent_server::health::POINTS_PER_ACCOUNT as u64)
    );
    assert_eq!(points.last().unwrap()["ts"], "2026-01-01T00:00:02Z");
    assert_eq!(
        call(
            running.addr,
            "GET",
            "/v1/accounts/a1/history",
            Some(&keys.a2),
            None
        )
        .await
        .0,
        403
    );

    // The stress curve: 41 joint moves from -50% to +50%.
    let body = json!({"account": "a1", "scenarios": "curve"}).to_string();
    let (status, stress) = call(
        running.addr,
        "POST",
        "/v1/stress",
        Some(&keys.a1),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{stress}");
    assert_eq!(stress["scenarios"].as_array().unwrap().len(), 41);

    // A cascade on a copy of the engine: the live book does not move.
    let (_, before) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    let body = json!({"shocks": {"BTC": "-0.5"}, "max_rounds": 5}).to_string();
    let (status, cascade) = call(
        running.addr,
        "POST",
        "/v1/cascade",
        Some(&keys.viewer),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{cascade}");
    assert_eq!(cascade["rounds"][0]["prices"]["BTC"], "30000.0");
    assert!(
        cascade["totals"]["accounts_liquidated"].as_u64().unwrap() >= 1,
        "{cascade}"
    );
    let (_, after) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(before, after);
    assert_eq!(
        call(
            running.addr,
            "POST",
            "/v1/cascade",
            Some(&keys.a1),
            Some(&body)
        )
        .await
        .0,
        403
    );
    for (body, field) in [
        (json!({"shocks": {}}), "shocks"),
        (json!({"shocks": {"BTC": "-1"}}), "shocks.BTC"),
        (
            json!({"shocks": {"BTC": "-0.1"}, "max_rounds": 0}),
            "max_rounds",
        ),
        (
            json!({"shocks": {"BTC": "-0.1"}, "impact_model": "square"}),
            "impact_model",
        ),
        (json!({"shocks": {"BTC": "-0.1"}, "colour": 1}), "colour"),
    ] {
        let (status, error) = call(
            running.addr,
            "POST",
            "/v1/cascade",
            Some(&keys.viewer),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    let body = json!({"shocks": {"DOGE": "-0.1"}}).to_string();
    let (status, error) = call(
        running.addr,
        "POST",
        "/v1/cascade",
        Some(&keys.viewer),
        Some(&body),
    )
    .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (422, Some("shocks")),
        "{error}"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_in_the_error_shape_naming_the_limit() {
    // Found by the fuzz: axum's plain-text "length limit exceeded".
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    let (_, before) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    // A valid batch, made too long by spaces after it: only its size is wrong.
    let mut body =
        json!({"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1"}]})
            .to_string()
            .into_bytes();
    body.resize(solvent_server::api::MAX_BODY_BYTES + 1, b' ');
    for chunked in [false, true] {
        let framing = if chunked {
            "Transfer-Encoding: chunked\r\n".to_owned()
        } else {
            format!("Content-Length: {}\r\n", body.len())
        };
        let mut request = head("POST", "/v1/events", Some(&keys.admin), &framing).into_bytes();
        if chunked {
            request.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            request.extend_from_slice(&body);
            request.extend_from_slice(b"\r\n0\r\n\r\n");
        } else {
            request.extend_from_slice(&body);
        }
        let (status, head, error) = exchange(running.addr, request).await;
        assert_eq!(status, 413, "chunked {chunked}: {error}");
        assert_error(status, &head, &error, "body_too_large", None);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("8388608 bytes"),
            "{error}"
        );
    }
    let (_, after) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(before, after);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_method_a_path_does_not_answer_gets_405_in_the_error_shape_with_allow() {
    // Found by the fuzz: an empty 405 from the router.
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    for (method, target, allow) in [
        ("PUT", "/v1/prices", "GET"),
        ("GET", "/v1/events", "POST"),
        ("DELETE", "/v1/accounts/a1", "GET"),
        ("OPTIONS", "/v1/margin/order", "POST"),
        ("POST", "/healthz", "GET"),
    ] {
        let request = head(method, target, Some(&keys.admin), "Content-Length: 0\r\n");
        let (status, head, error) = exchange(running.addr, request.into_bytes()).await;
        assert_eq!(status, 405, "{method} {target}: {error}");
        assert_error(status, &head, &error, "method_not_allowed", None);
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("allow: {}", allow.to_ascii_lowercase())),
            "{method} {target}: {head}"
        );
    }
    // An unknown path was already answered in the shape; it stays so.
    let request = head("GET", "/v2/prices", Some(&keys.admin), "");
    let (status, head, error) = exchange(running.addr, request.into_bytes()).await;
    assert_eq!(status, 404);
    assert_error(status, &head, &error, "not_found", Some("(path)"));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_over_its_time_gets_408_in_the_error_shape() {
    // The timeout layer answers an empty 408: a journal holding every append keeps a batch of
    // events from being answered until the time is up.
    let (journal, gate) = HeldJournal::new();
    let config = Config {
        request_timeout: Duration::from_millis(300),
        ..local()
    };
    let (running, keys) = start_with(Box::new(journal), config).await;
    let body = json!({"events": opening()}).to_string();
    let mut request = head(
        "POST",
        "/v1/events",
        Some(&keys.admin),
        &format!("Content-Length: {}\r\n", body.len()),
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    let (status, head, error) = exchange(running.addr, request).await;
    assert_eq!(status, 408, "{error}");
    assert_error(status, &head, &error, "timeout", None);
    open(&gate);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_bad_path_or_query_names_its_field_and_the_key_in_the_query_is_no_parameter() {
    // Found by the fuzz: an account id that is not UTF-8 got axum's plain text, and a list read
    // with the key in the query (as the WebSocket sends it) was refused for an unknown field.
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    for (target, field) in [
        ("/v1/accounts/%FF%FE", "id"),
        ("/v1/accounts/%C3/risk-matrix", "id"),
        ("/v1/accounts?limit=abc", "limit"),
        ("/v1/accounts?offset=-1", "offset"),
        ("/v1/accounts?limit=1&limit=2", "limit"),
        ("/v1/accounts?colour=blue", "colour"),
        ("/v1/liquidations?limit=1.5", "limit"),
        ("/v1/insurance-fund?limit=", "limit"),
        ("/v1/liquidations?=&&", "(query)"),
    ] {
        let request = head("GET", target, Some(&keys.viewer), "");
        let (status, head, error) = exchange(running.addr, request.into_bytes()).await;
        assert_eq!(status, 400, "{target}: {error}");
        assert_error(status, &head, &error, "invalid_request", Some(field));
    }
    // A field missing at the top of a body is named too, not `(body)`.
    let (status, error) = call(
        running.addr,
        "POST",
        "/v1/whatif",
        Some(&keys.viewer),
        Some("{}"),
    )
    .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("trades")),
        "{error}"
    );
    for target in [
        "/v1/accounts?sort=health&api_key=KEY",
        "/v1/insurance-fund?api_key=KEY&limit=5",
        "/v1/liquidations?api_key=KEY",
        "/v1/prices?api_key=KEY",
    ] {
        let target = target.replace("KEY", &keys.viewer);
        let (status, reply) = call(running.addr, "GET", &target, None, None).await;
        assert_eq!(status, 200, "{target}: {reply}");
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_to_the_stream_that_is_no_upgrade_is_refused_in_the_error_shape() {
    // Found by the fuzz: axum's plain-text upgrade rejections.
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    // Each asks to close the connection after the answer (`upgrade` is read as a word).
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    for extra in [
        "Connection: close\r\n".to_owned(),
        upgrade.to_owned(),
        format!("{upgrade}Sec-WebSocket-Version: 8\r\n"),
        "Upgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\n"
            .to_owned(),
    ] {
        let request = format!(
            "GET /v1/ws HTTP/1.1\r\nHost: test\r\n{extra}Authorization: Bearer {}\r\n\r\n",
            keys.a1
        );
        let (status, head, error) = exchange(running.addr, request.into_bytes()).await;
        assert_eq!(status, 400, "{extra}: {error}");
        assert_error(status, &head, &error, "invalid_request", Some("(headers)"));
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_key_written_twice_is_refused_wherever_it_is_and_nothing_moves() {
    // Found by the fuzz: an event, a portfolio or a scenario naming a key twice was read with
    // the last value (a deposit of "1" and "1000000" deposited 1,000,000).
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    let (_, before) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    let portfolio = r#""portfolio": {"account": "x", "mode": "cross", "collateral": {"USDT": "1", "USDT": "1000000"}}"#;
    let cases = [
        (
            "/v1/events",
            r#"{"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1", "amount": "1000000"}]}"#.to_owned(),
            "events[0].amount",
        ),
        (
            "/v1/events",
            r#"{"events": [{"type": "deposit", "account": "a1", "asset": "USDT", "amount": "1", "type": "withdraw"}]}"#.to_owned(),
            "events[0].type",
        ),
        ("/v1/margin", format!("{{{portfolio}}}"), "portfolio.collateral.USDT"),
        (
            "/v1/stress",
            r#"{"account": "a1", "scenarios": {"scenarios": [{"name": "x", "price_moves": {"BTC": "-0.1", "BTC": "-0.9"}}]}}"#.to_owned(),
            "scenarios.scenarios[0].price_moves.BTC",
        ),
        (
            "/v1/whatif",
            r#"{"account": "a1", "trades": ["BTCUSDT:0.1"], "account": "a2"}"#.to_owned(),
            "account",
        ),
    ];
    for (path, body, field) in cases {
        let (status, error) =
            call(running.addr, "POST", path, Some(&keys.admin), Some(&body)).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["code"], "invalid_request");
        assert_eq!(
            error["error"]["field"].as_str(),
            Some(field),
            "{body}: {error}"
        );
    }
    let (_, after) = call(
        running.addr,
        "GET",
        "/v1/state-hash",
        Some(&keys.admin),
        None,
    )
    .await;
    assert_eq!(before, after);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_order_reads_its_amount_and_price_as_every_decimal_of_the_api() {
    // Found by the fuzz: `Decimal::from_str` took "1_000" and "1e3" as 1,000, a price of
    // 1e-28, and an amount beyond any size reached the computation (422 naming `instrument`).
    let (running, keys) = start_with(Box::new(MemoryJournal::default()), local()).await;
    post_events(&running, &keys.admin, opening()).await;
    let order = |amount: &str, price: Option<&str>, instrument: &str| {
        let mut body = json!({"account": "a1", "instrument": instrument, "amount": amount});
        if let Some(price) = price {
            body["price"] = json!(price);
        }
        body.to_string()
    };
    let mut cases = Vec::new();
    for amount in [
        "1_000",
        "1e3",
        "+5",
        "NaN",
        "",
        "1.",
        "0",
        "-0",
        "-1",
        "79228162514264337593543950335",
        "10000000000000000",
    ] {
        cases.push((order(amount, None, "BTCUSDT"), "amount"));
    }
    for price in [
        "0.0000000000000000000000000001",
        "1_000",
        "0",
        "-5",
        "10000000000001",
    ] {
        cases.push((order("0.1", Some(price), "BTCUSDT"), "price"));
    }
    cases.push((order("0.1", None, " "), "instrument"));
    for (body, field) in cases {
        let (status, error) = call(
            running.addr,
            "POST",
            "/v1/margin/order",
            Some(&keys.a1),
            Some(&body),
        )
        .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(
            error["error"]["field"].as_str(),
            Some(field),
            "{body}: {error}"
        );
    }
    // The plain spellings still answer.
    let (status, answer) = call(
        running.addr,
        "POST",
        "/v1/margin/order",
        Some(&keys.a1),
        Some(&order("1000", Some("60000.5"), "BTCUSDT")),
    )
    .await;
    assert_eq!(
        (status, answer["amount"].as_str()),
        (200, Some("1000")),
        "{answer}"
    );
    running.stop().await.unwrap();
}
