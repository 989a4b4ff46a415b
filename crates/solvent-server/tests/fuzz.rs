//! Bad requests, bounded (DESIGN.md 10): every route of the service, fed by a seeded generator
//! with malformed, truncated, oversized, mistyped and mutated requests, wrong methods, bad paths
//! and query strings, and missing, dead or wrongly scoped keys, over a small live book.
//!
//! For every answer: never a 5xx, never a dropped connection (a panic); a 2xx or a 4xx (101 for
//! a WebSocket upgrade); every 4xx in the error shape `{"error":{"code","field","message"}}` with
//! a code and a message, and a field when the code says a field is invalid; and a refused
//! request (or any read) leaves the state hash and the last sequence number where they were.
//!
//! The routes come from `route_table()`: a route with no valid request in [`valid_requests`]
//! fails the test, so a new route cannot go unfuzzed. `SOLVENT_FUZZ_SEED` and
//! `SOLVENT_FUZZ_CASES` override the seed and the number of cases; a failure prints the seed,
//! the case number and the request. Each bug it found is pinned by a test of `tests/api.rs`
//! named after it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_server::api::MAX_BODY_BYTES;
use solvent_server::keys::{KeyRing, Scope};
use solvent_server::{Config, Running};
use solvent_store::MemoryJournal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEFAULT_SEED: u64 = 0x5017_E47F;
const DEFAULT_CASES: usize = 6_000;

fn workspace(relative: &str) -> String {
    let path = format!("{}/../../{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

// ---- the service --------------------------------------------------------------------------------

struct Keys {
    admin: String,
    feeder: String,
    viewer: String,
    alice: String,
    bob: String,
    revoked: String,
}

async fn start() -> (Running, Keys) {
    let venue_text = workspace("venues/default.toml");
    let venue = Venue::from_toml("default.toml", &venue_text).unwrap();
    let engine = Engine::new(venue, EngineConfig::default());
    let mut ring = KeyRing::in_memory();
    let at = "2026-12-04T00:00:00Z";
    let keys = Keys {
        admin: ring.add(Scope::Admin, at).unwrap(),
        feeder: ring.add(Scope::Feeder, at).unwrap(),
        viewer: ring.add(Scope::Viewer, at).unwrap(),
        alice: ring.add(Scope::Account("alice".to_owned()), at).unwrap(),
        bob: ring.add(Scope::Account("bob".to_owned()), at).unwrap(),
        revoked: ring.add(Scope::Admin, at).unwrap(),
    };
    let revoked_id = ring.list().last().unwrap().id.clone();
    ring.revoke(&revoked_id).unwrap();
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        // Events sent without a time take the engine's: the run does not depend on the date.
        clock: solvent_server::core::Clock::Engine,
        ..Config::default()
    };
    let running = solvent_server::start(engine, Box::new(MemoryJournal::default()), ring, &config)
        .await
        .unwrap();
    (running, keys)
}

/// A small book: three index prices, a smile, five accounts (one in portfolio margin) with
/// perpetuals, an inverse perpetual and options, a leverage, a buffer policy and a top-up rule.
fn population() -> Vec<Value> {
    let events = [
        json!({"type": "index_price", "underlying": "BTC", "price": "100000"}),
        json!({"type": "index_price", "underlying": "ETH", "price": "3000"}),
        json!({"type": "index_price", "underlying": "SOL", "price": "150"}),
        json!({"type": "vol_surface", "underlying": "BTC", "expiry": "27DEC26", "strikes": [80000, 90000, 100000, 110000, 120000], "vols": [0.6, 0.55, 0.5, 0.52, 0.56]}),
        json!({"type": "deposit", "account": "alice", "asset": "USDT", "amount": "500000"}),
        json!({"type": "deposit", "account": "alice", "asset": "USDC", "amount": "250000"}),
        json!({"type": "deposit", "account": "bob", "asset": "USDT", "amount": "20000"}),
        json!({"type": "deposit", "account": "carol", "asset": "USDT", "amount": "30000"}),
        json!({"type": "deposit", "account": "carol", "asset": "BTC", "amount": "0.5"}),
        json!({"type": "deposit", "account": "dave", "asset": "BTC", "amount": "3"}),
        json!({"type": "deposit", "account": "dave", "asset": "USDT", "amount": "20000"}),
        json!({"type": "deposit", "account": "pm1", "asset": "USDT", "amount": "1000000"}),
        json!({"type": "deposit", "account": "pm1", "asset": "USDC", "amount": "100000"}),
        json!({"type": "set_margin_mode", "account": "pm1", "mode": "portfolio"}),
        json!({"type": "fill", "account": "bob", "instrument": "BTCUSDT", "side": "buy", "size": "3", "price": "100000", "fee": "165"}),
        json!({"type": "fill", "account": "carol", "instrument": "ETHUSDT", "side": "buy", "size": "10", "price": "3000", "fee": "16.5", "counterparty": "dave"}),
        json!({"type": "fill", "account": "carol", "instrument": "BTC-27DEC26-110000-C", "side": "buy", "size": "1", "price": "0.01", "fee": "0.0003", "counterparty": "dave"}),
        json!({"type": "fill", "account": "dave", "instrument": "BTC-PERPETUAL", "side": "buy", "size": "100000", "price": "100000", "fee": "0.0005"}),
        json!({"type": "fill", "account": "alice", "instrument": "BTC_USDC-PERPETUAL", "side": "buy", "size": "4", "price": "100000", "fee": "200"}),
        json!({"type": "fill", "account": "alice", "instrument": "BTCUSDT", "side": "sell", "size": "2", "price": "100010", "fee": "110"}),
        json!({"type": "fill", "account": "pm1", "instrument": "BTCUSDT", "side": "buy", "size": "5", "price": "100000"}),
        json!({"type": "fill", "account": "pm1", "instrument": "BTC_USDC-27DEC26-100000-P", "side": "buy", "size": "10", "price": "2000"}),
        json!({"type": "mark_price", "instrument": "BTCUSDT", "price": "100005"}),
        json!({"type": "set_leverage", "account": "bob", "instrument": "BTCUSDT", "leverage": "18"}),
        json!({"type": "set_buffer_policy", "account": "alice", "policy": "mm:1.5"}),
        json!({"type": "set_auto_top_up", "account": "carol", "source": "external", "trigger_health": "1.2", "target_health": "1.5", "per_event_cap": "1000", "per_day_cap": "5000"}),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(index, mut event)| {
            event["ts"] = json!(format!("2026-12-20T00:00:{index:02}Z"));
            event
        })
        .collect()
}

// ---- HTTP on a raw socket -------------------------------------------------------------------------

/// A request as bytes go on the wire: anything, including what no client library would send.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    /// Path and query, sent as they are.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Sent with `Transfer-Encoding: chunked` instead of a length.
    chunked: bool,
}

impl Request {
    fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn key(self, key: &str) -> Self {
        self.header("Authorization", &format!("Bearer {key}"))
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn json(self, body: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(body.to_string())
    }

    fn is_upgrade(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("upgrade") && value == "websocket")
    }

    fn describe(&self) -> String {
        let mut text = format!("{} {}", self.method, shorten(self.target.as_bytes(), 300));
        for (name, value) in &self.headers {
            let _ = write!(text, "\n  {name}: {}", shorten(value.as_bytes(), 120));
        }
        let _ = write!(
            text,
            "\n  body ({} bytes{}): {}",
            self.body.len(),
            if self.chunked { ", chunked" } else { "" },
            shorten(&self.body, 600)
        );
        text
    }

    fn wire_head(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: test\r\n", self.method, self.target);
        if !self.headers.iter().any(|(name, _)| name == "Connection") {
            head.push_str("Connection: close\r\n");
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if self.chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else {
            let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        }
        head.into_bytes()
    }
}

fn shorten(bytes: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(limit)]).into_owned();
    if bytes.len() > limit {
        format!("{text}... ({} more bytes)", bytes.len() - limit)
    } else {
        text
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Sends one request on its own connection and reads the answer; `Err` when the connection is
/// dropped without a complete answer (a handler that panicked) or nothing comes in 20 s.
async fn send(addr: SocketAddr, request: &Request) -> Result<Answer, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let head = request.wire_head();
    let body = request.body.clone();
    let chunked = request.chunked;
    // Written while the answer is read: a server may answer (413) before the body is all sent,
    // and then stop reading; the write's failure is then no failure of the service.
    let writing = tokio::spawn(async move {
        writer.write_all(&head).await?;
        if chunked {
            for piece in body.chunks(64 * 1024) {
                writer
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                writer.write_all(piece).await?;
                writer.write_all(b"\r\n").await?;
            }
            writer.write_all(b"0\r\n\r\n").await?;
        } else {
            writer.write_all(&body).await?;
        }
        writer.flush().await?;
        // Keep the writing half open until the server closes: shutting it would end the body.
        Ok::<_, std::io::Error>(writer)
    });
    let answer = tokio::time::timeout(Duration::from_secs(20), read_answer(&mut reader))
        .await
        .map_err(|_| "no complete answer within 20 s".to_owned())?;
    writing.abort();
    answer
}

async fn read_answer(reader: &mut tokio::net::tcp::OwnedReadHalf) -> Result<Answer, String> {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                .collect();
            let mut answer = Answer {
                status,
                headers,
                body: Vec::new(),
            };
            if status == 101 {
                return Ok(answer);
            }
            let mut rest = buffer[end + 4..].to_vec();
            let length = answer
                .header("content-length")
                .and_then(|value| value.parse::<usize>().ok());
            let chunked = answer
                .header("transfer-encoding")
                .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
            loop {
                if let Some(length) = length
                    && rest.len() >= length
                {
                    rest.truncate(length);
                    answer.body = rest;
                    return Ok(answer);
                }
                if chunked && let Some(body) = dechunk(&rest) {
                    answer.body = body;
                    return Ok(answer);
                }
                let read = reader
                    .read(&mut chunk)
                    .await
                    .map_err(|error| format!("reading the body: {error}"))?;
                if read == 0 {
                    if length.is_none() && !chunked {
                        answer.body = rest;
                        return Ok(answer);
                    }
                    return Err(format!(
                        "the connection closed inside the body ({} bytes read)",
                        rest.len()
                    ));
                }
                rest.extend_from_slice(&chunk[..read]);
            }
        }
        let read = reader
            .read(&mut chunk)
            .await
            .map_err(|error| format!("reading the head: {error}"))?;
        if read == 0 {
            return Err(format!(
                "the connection closed without an answer ({} bytes read)",
                buffer.len()
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The body of a complete chunked message, or `None` while it is incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

async fn state_hash(addr: SocketAddr, admin: &str) -> (Option<u64>, String) {
    let answer = send(addr, &Request::new("GET", "/v1/state-hash").key(admin))
        .await
        .expect("the state hash answers");
    let value = answer.json().expect("the state hash is JSON");
    assert_eq!(answer.status, 200, "{value}");
    (
        value["seq"].as_u64(),
        value["state_hash"].as_str().unwrap().to_owned(),
    )
}

// ---- valid requests, per route ----------------------------------------------------------------------

/// A request a route answers with a 2xx under the admin key (the seed of every mutation).
#[derive(Clone, Debug)]
struct Valid {
    target: String,
    body: Option<Value>,
}

fn get(target: &str) -> Valid {
    Valid {
        target: target.to_owned(),
        body: None,
    }
}

fn post(target: &str, body: Value) -> Valid {
    Valid {
        target: target.to_owned(),
        body: Some(body),
    }
}

/// What the generator needs to know of the book and of the shipped files.
struct Material {
    desk: Value,
    market: Value,
    venue_text: String,
}

fn material() -> Material {
    let mut desk: Value = serde_json::from_str(&workspace("examples/btc-desk.json")).unwrap();
    // The desk file ships its own market; the request sends it beside the portfolio.
    let market = desk
        .as_object_mut()
        .unwrap()
        .remove("market")
        .unwrap_or_else(|| {
            serde_json::from_str(&workspace("examples/market-2026-01-06.json")).unwrap()
        });
    Material {
        desk,
        market,
        venue_text: workspace("venues/default.toml"),
    }
}

/// One event of every type, each valid against the book.
fn event_templates(material: &Material) -> Vec<Value> {
    vec![
        json!({"type": "deposit", "account": "alice", "asset": "USDT", "amount": "100"}),
        json!({"type": "withdraw", "account": "bob", "asset": "USDT", "amount": "1"}),
        json!({"type": "transfer", "from": "alice", "to": "carol", "asset": "USDT", "amount": "10"}),
        json!({"type": "fill", "account": "alice", "instrument": "BTCUSDT", "side": "buy", "size": "0.01", "price": "100000", "fee": "0.5", "counterparty": "external"}),
        json!({"type": "index_price", "underlying": "BTC", "price": "100100", "source": "kraken"}),
        json!({"type": "mark_price", "instrument": "BTCUSDT", "price": "100050"}),
        json!({"type": "vol_surface", "underlying": "BTC", "expiry": "27DEC26", "strikes": [80000, 90000, 100000, 110000, 120000], "vols": [0.61, 0.56, 0.51, 0.53, 0.57]}),
        json!({"type": "funding", "instrument": "BTCUSDT", "rate": "0.0001"}),
        json!({"type": "settlement", "instrument": "BTC-20DEC26", "price": "100000"}),
        json!({"type": "set_leverage", "account": "bob", "instrument": "BTCUSDT", "leverage": "15"}),
        json!({"type": "set_margin_mode", "account": "dave", "mode": "cross"}),
        json!({"type": "set_isolated_margin", "account": "alice", "instrument": "BTCUSDT", "amount": "0"}),
        json!({"type": "set_buffer_policy", "account": "alice", "policy": "sigma:3:1"}),
        json!({"type": "set_auto_top_up", "account": "bob", "instrument": null, "source": "cross_pool", "trigger_health": "1.1", "target_health": "1.3", "per_event_cap": "100", "per_day_cap": "1000"}),
        json!({"type": "list_instrument", "name": "DOGEUSDT", "spec": {"kind": "perpetual", "style": "linear", "underlying": "BTC", "settlement": "USDT", "contract_size": "1", "size_step": "0.001", "margin": "bybit_btcusdt"}}),
        json!({"type": "update_venue", "venue": material.venue_text}),
    ]
}

/// Valid requests of `method path`, or `None` for a route the fuzz does not know yet.
fn valid_requests(method: &str, path: &str, material: &Material) -> Option<Vec<Valid>> {
    let small = json!({"account": "x", "mode": "cross", "collateral": {"USDT": "10000", "BTC": "0.1"}, "positions": [{"instrument": "BTCUSDT", "size": "0.5", "entry_price": "99000", "leverage": "10"}]});
    let portfolio_mode = json!({"account": "y", "mode": "portfolio", "collateral": {"USDT": "500000", "USDC": "10000"}, "positions": [{"instrument": "BTCUSDT", "size": "-2", "entry_price": "101000"}, {"instrument": "BTC_USDC-27DEC26-100000-P", "size": "5", "entry_price": "2000"}]});
    let scenarios = json!({"scenarios": [{"name": "crash", "price_moves": {"BTC": "-0.3", "ETH": "-0.4"}, "vol_changes": {"BTC": "0.5"}}, {"name": "rally", "price_moves": {"BTC": "0.2"}}]});
    Some(match (method, path) {
        ("POST", "/v1/events") => event_templates(material)
            .into_iter()
            .map(|event| post(path, json!({"events": [event]})))
            .collect(),
        ("GET", "/v1/accounts") => vec![
            get(path),
            get("/v1/accounts?sort=health&state=healthy&search=a&offset=1&limit=3"),
        ],
        ("GET", "/v1/accounts/{id}") => ["alice", "bob", "carol", "dave", "pm1"]
            .iter()
            .map(|id| get(&format!("/v1/accounts/{id}")))
            .collect(),
        ("GET", "/v1/accounts/{id}/risk-matrix") => vec![get("/v1/accounts/pm1/risk-matrix")],
        ("POST", "/v1/margin") => vec![
            post(path, json!({"portfolio": small})),
            post(path, json!({"portfolio": portfolio_mode})),
            post(
                path,
                json!({"portfolio": material.desk, "market": material.market}),
            ),
        ],
        ("POST", "/v1/margin/order") => vec![
            post(
                path,
                json!({"account": "alice", "instrument": "BTCUSDT", "amount": "0.1"}),
            ),
            post(
                path,
                json!({"account": "carol", "instrument": "BTC-27DEC26-110000-C", "amount": "1", "price": "0.01"}),
            ),
            post(
                path,
                json!({"portfolio": small, "instrument": "ETHUSDT", "amount": "2", "price": "3000"}),
            ),
        ],
        ("POST", "/v1/whatif") => vec![
            post(
                path,
                json!({"account": "alice", "trades": ["BTCUSDT:0.5@100000,fee=1", "ETHUSDT:-1"]}),
            ),
            post(
                path,
                json!({"account": "pm1", "trades": ["BTC_USDC-27DEC26-100000-P:-5@2100"]}),
            ),
            post(
                path,
                json!({"portfolio": material.desk, "market": material.market, "trades": ["BTC-PERPETUAL:10000"]}),
            ),
        ],
        ("POST", "/v1/allocate") => vec![
            post(
                path,
                json!({"account": "alice", "buffer": "mm:1.5", "trigger_health": 1.2, "target_health": 1.5}),
            ),
            post(path, json!({"portfolio": small, "buffer": "sigma:3:1"})),
        ],
        ("POST", "/v1/stress") => vec![
            post(path, json!({"account": "bob"})),
            post(
                path,
                json!({"account": "carol", "scenarios": "historical", "reverse": true}),
            ),
            post(path, json!({"account": "pm1", "scenarios": scenarios})),
            post(path, json!({"portfolio": small, "scenarios": "grid"})),
        ],
        ("GET", "/v1/insurance-fund") => vec![get(path), get("/v1/insurance-fund?limit=5")],
        ("GET", "/v1/liquidations") => vec![get(path), get("/v1/liquidations?limit=10000")],
        ("GET", "/v1/prices") => vec![get(path)],
        ("GET", "/v1/state-hash") => vec![get(path)],
        ("GET", "/v1/ws") => vec![get(path)],
        ("GET", "/v1/accounts/{id}/history") => vec![
            get("/v1/accounts/alice/history"),
            get("/v1/accounts/pm1/history?limit=5"),
        ],
        ("GET", "/v1/journal") => vec![
            get(path),
            get("/v1/journal?after=1&limit=5&account=alice&type=deposit"),
            get("/v1/journal?before=10&limit=3"),
        ],
        ("GET", "/v1/key") => vec![get(path)],
        ("POST", "/v1/cascade") => vec![
            post(
                path,
                json!({"shocks": {"BTC": "-0.3"}, "max_rounds": 3, "adv_usd": {"SOL": "900000000"}}),
            ),
            post(
                path,
                json!({"shocks": {"BTC": "-0.2", "ETH": "-0.25"}, "adv_usd": {"SOL": "900000000", "BTC": "2000000000"}, "impact_model": "per_round"}),
            ),
        ],
        _ => return None,
    })
}

/// The service's routes outside `/v1` (no key, plain-text answers on success).
const OUTSIDE_V1: [&str; 4] = ["/openapi.json", "/healthz", "/readyz", "/metrics"];

// ---- junk ----------------------------------------------------------------------------------------

/// Spellings of a number no decimal field of the API takes, raw JSON: exponents, separators,
/// signs and points where plain digits go, words, blanks, JSON floats (a binary float may have
/// changed a digit) and numbers beyond `Decimal`.
const REFUSED_DECIMALS: [&str; 40] = [
    r#""1e30""#,
    r#""1E3""#,
    r#""1_000""#,
    r#""NaN""#,
    r#""nan""#,
    r#""inf""#,
    r#""-Infinity""#,
    r#""+5""#,
    r#""1.""#,
    r#"".5""#,
    r#""""#,
    r#"" ""#,
    r#""-""#,
    r#""--1""#,
    r#""1e99999""#,
    r#""1e-99999""#,
    r#""1234567890123456789012345678901234567890""#,
    r#""0.1234567890123456789012345678901234567890""#,
    r#""79228162514264337593543950336""#,
    r#""-79228162514264337593543950336""#,
    r#""0.00000000000000000000000000001""#,
    r#""0x10""#,
    r#""1,5""#,
    r#""1 000""#,
    r#""١٢٣""#,
    r#""1.5.2""#,
    r#""12abc""#,
    r#""∞""#,
    "1e30",
    "1.5",
    "0.1",
    "-0.0",
    "1234567890123456789012345678901234567890",
    "18446744073709551616",
    "1e999",
    "-1e999",
    "-1e-999",
    "1e308",
    "4.9e-324",
    "2.5e-5",
];

/// Spellings a decimal field may take or refuse by its own bounds (sign, range, precision).
const OTHER_DECIMALS: [&str; 16] = [
    r#""-0""#,
    r#""-0.0""#,
    r#""0""#,
    r#""-1""#,
    r#"" 1""#,
    r#""10000000000000000""#,
    r#""999999999999999""#,
    r#""79228162514264337593543950335""#,
    r#""-79228162514264337593543950335""#,
    r#""0.0000000000000000000000000001""#,
    r#""0.000000000001""#,
    "-0",
    "0",
    "18446744073709551615",
    "-9223372036854775808",
    "1000000000000",
];

/// Whether the value at `steps` of a body of `route` is a decimal (an amount, price, size,
/// rate, leverage, health threshold, collateral balance, index or mark, price move).
fn is_decimal_field(route: &str, steps: &[Step]) -> bool {
    const EVENT_DECIMALS: [&str; 10] = [
        "amount",
        "price",
        "fee",
        "size",
        "rate",
        "leverage",
        "trigger_health",
        "target_health",
        "per_event_cap",
        "per_day_cap",
    ];
    let names: Vec<&str> = steps
        .iter()
        .map(|step| match step {
            Step::Key(key) => key.as_str(),
            Step::Index(_) => "#",
        })
        .collect();
    match names.as_slice() {
        ["events", "#", field] => route == "/v1/events" && EVENT_DECIMALS.contains(field),
        ["amount" | "price"] => route == "/v1/margin/order",
        ["portfolio", "collateral", _]
        | [
            "portfolio",
            "positions",
            "#",
            "size" | "entry_price" | "isolated_margin" | "leverage",
        ]
        | ["market", "index" | "mark", _] => true,
        [
            "scenarios",
            "scenarios",
            "#",
            "price_moves" | "vol_changes",
            _,
        ] => route == "/v1/stress",
        _ => false,
    }
}

/// Whether the value at `steps` of a body of `route` is an id an event gives (an account, a
/// counterparty, an index source, a listed instrument's name).
fn is_id_field(route: &str, steps: &[Step]) -> bool {
    route == "/v1/events"
        && matches!(
            steps,
            [Step::Key(events), Step::Index(_), Step::Key(field)]
                if events == "events"
                    && ["account", "from", "to", "counterparty", "source", "name"]
                        .contains(&field.as_str())
        )
}

/// Whether an event of an events body holds, in an id field, a string no id may be (a value
/// still to be replaced by raw JSON excepted).
fn holds_a_bad_id(body: &Value) -> bool {
    let Some(events) = body.get("events").and_then(Value::as_array) else {
        return false;
    };
    events.iter().filter_map(Value::as_object).any(|event| {
        ["account", "from", "to", "counterparty", "source", "name"]
            .iter()
            .filter_map(|field| event.get(*field).and_then(Value::as_str))
            .any(|text| !text.starts_with('\u{1}') && !is_id(text))
    })
}

/// Whether `text` may be an id: not blank, no space around it, no control character, at most
/// 128 bytes (the rule as the service states it, written out independently).
fn is_id(text: &str) -> bool {
    !text.trim().is_empty()
        && text.trim() == text
        && !text.chars().any(char::is_control)
        && text.len() <= 128
}

/// Values of the wrong type, raw JSON.
const TYPE_JUNK: [&str; 9] = [
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "[1, 2]",
    r#"{"a": 1}"#,
    r#""text""#,
    "7",
];

/// Strings put in place of an id, a name, a trade or a policy.
fn string_junk(rng: &mut ChaCha8Rng) -> String {
    const FIXED: [&str; 44] = [
        "",
        " ",
        "\t",
        "\u{0}",
        " alice",
        "alice\n",
        "al\u{1b}[31mice",
        "é",
        "🦀",
        "../../etc/passwd",
        "alice",
        "bob",
        "carol",
        "nobody",
        "external",
        "BTCUSDT",
        "BTC-27DEC26-110000-C",
        "BTC-99XXX99-1-C",
        "mm:1.5",
        "mm:1e400",
        "sigma:inf:1",
        "sigma:3:0",
        "none",
        "grid",
        "historical",
        "BTCUSDT:0.1",
        "BTCUSDT:1e30",
        "BTCUSDT:1_000",
        "BTCUSDT:NaN@1",
        "BTCUSDT:1@0",
        "BTCUSDT:-0",
        "BTCUSDT:1,fee=-1e3",
        "BTCUSDT:79228162514264337593543950335",
        ":1",
        "BTCUSDT:",
        "portfolio",
        "cross",
        "2026-12-20T00:00:30Z",
        "2026-12-27T08:00:00Z",
        "2030-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "-009999-01-01T00:00:00Z",
        "2026-12-20T00:00:30+14:00",
        "2026-02-30T00:00:00Z",
    ];
    match rng.random_range(0..10) {
        0 => "a".repeat(rng.random_range(129..20_000)),
        1 => (0..rng.random_range(1..40))
            .map(|_| char::from_u32(rng.random_range(0x20..0x2FFF)).unwrap_or('?'))
            .collect(),
        _ => (*FIXED.choose(rng).unwrap()).to_owned(),
    }
}

/// Query strings, each alone or appended to a valid one.
const QUERY_JUNK: [&str; 28] = [
    "limit=abc",
    "limit=-1",
    "limit=0",
    "limit=10001",
    "limit=99999999999999999999999",
    "limit=1.5",
    "limit=",
    "limit=1&limit=2",
    "offset=-1",
    "offset=18446744073709551616",
    "offset=99999999",
    "sort=size",
    "sort=",
    "state=bankrupt",
    "state=NaN",
    "state=HEALTHY",
    "search=%FF%FE",
    "search=%00",
    "unknown=1",
    "%zz",
    "=&&&",
    "a[b]=1",
    "limit=%00",
    "limit=+5",
    "api_key=garbage",
    "sort=health&sort=health",
    "%E2%82",
    "limit=1%26offset%3D2",
];

// ---- cases -----------------------------------------------------------------------------------------

/// A route as the fuzz sees it.
struct Route {
    method: &'static str,
    /// The path as the route table writes it.
    template: &'static str,
    valid: Vec<Valid>,
    /// Outside `/v1`: no key, and a plain-text success.
    open: bool,
}

/// One generated request and what its answer must be beyond the checks every answer passes.
struct Case {
    /// The family of the edit (for the run's summary).
    kind: &'static str,
    what: String,
    request: Request,
    /// The statuses allowed, when the input fixes them.
    expect: Option<&'static [u16]>,
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"];

fn upgrade_headers(request: Request) -> Request {
    request
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Version", "13")
}

/// The valid request as it is sent, with the admin key.
fn base(route: &Route, valid: &Valid, keys: &Keys) -> Request {
    let mut request = Request::new(route.method, &valid.target);
    if !route.open {
        request = request.key(&keys.admin);
    }
    if let Some(body) = &valid.body {
        request = request.json(body);
    }
    if route.template == "/v1/ws" {
        request = upgrade_headers(request);
    }
    request
}

fn generate(rng: &mut ChaCha8Rng, route: &Route, keys: &Keys) -> Case {
    let valid = route.valid.choose(rng).unwrap();
    let request = base(route, valid, keys);
    let has_body = valid.body.is_some();
    // Weights: keys, methods, paths, queries and headers for every route; bodies where a body
    // is read.
    let kinds: &[(&str, u32)] = if has_body {
        &[
            ("as_is", 3),
            ("key", 6),
            ("method", 4),
            ("path", 4),
            ("query", 2),
            ("header", 3),
            ("syntax", 14),
            ("structure", 40),
            ("oversized", 1),
        ]
    } else {
        &[
            ("as_is", 3),
            ("key", 8),
            ("method", 5),
            ("path", 10),
            ("query", 10),
            ("header", 2),
            ("get_body", 2),
        ]
    };
    let total: u32 = kinds.iter().map(|(_, weight)| weight).sum();
    let mut pick = rng.random_range(0..total);
    let kind = kinds
        .iter()
        .find(|(_, weight)| {
            if pick < *weight {
                true
            } else {
                pick -= weight;
                false
            }
        })
        .map_or("as_is", |(kind, _)| *kind);
    let mut case = match kind {
        // The routes outside /v1 take no key: a wrong method instead.
        "key" if route.open => method_case(rng, route, request),
        "key" => key_case(rng, route, request, keys),
        "method" => method_case(rng, route, request),
        "path" => path_case(rng, route, request),
        "query" => query_case(rng, request),
        "header" => header_case(rng, route, request),
        "syntax" => syntax_case(rng, request),
        "structure" => structure_case(rng, route.template, request, valid.body.as_ref().unwrap()),
        "oversized" => oversized_case(rng, request),
        "get_body" => {
            let body = random_bytes(rng, 200);
            Case {
                kind: "",
                what: "a body on a route that reads none".to_owned(),
                request: request.body(body),
                expect: None,
            }
        }
        _ => {
            let request = if !route.open && rng.random_bool(0.3) {
                // The key in the query instead of the header (as the WebSocket sends it).
                let mut request = request;
                request.headers.retain(|(name, _)| name != "Authorization");
                let separator = if request.target.contains('?') {
                    '&'
                } else {
                    '?'
                };
                request.target = format!("{}{separator}api_key={}", request.target, keys.viewer);
                request
            } else {
                request
            };
            Case {
                kind: "",
                what: "as it is".to_owned(),
                request,
                // Valid: answered (a viewer's key may not send events; a drifted book may
                // leave a figure that cannot be computed), never refused as malformed.
                expect: Some(&[101, 200, 403, 422]),
            }
        }
    };
    case.kind = kind;
    case
}

fn key_case(rng: &mut ChaCha8Rng, route: &Route, mut request: Request, keys: &Keys) -> Case {
    request.headers.retain(|(name, _)| name != "Authorization");
    let mut tampered = keys.admin.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let long = format!("{}{}", keys.admin, "f".repeat(10_000));
    let unauthorized: &'static [u16] = &[401];
    let (what, header, expect): (&str, Option<String>, Option<&'static [u16]>) =
        match rng.random_range(0..12) {
            0 => ("no key", None, Some(unauthorized)),
            1 => (
                "garbage key",
                Some("Bearer garbage".to_owned()),
                Some(unauthorized),
            ),
            2 => (
                "empty bearer",
                Some("Bearer ".to_owned()),
                Some(unauthorized),
            ),
            3 => (
                "made-up key",
                Some(format!("Bearer sk_00000000_{}", "0".repeat(64))),
                Some(unauthorized),
            ),
            4 => (
                "revoked key",
                Some(format!("Bearer {}", keys.revoked)),
                Some(unauthorized),
            ),
            5 => (
                "tampered key",
                Some(format!("Bearer {tampered}")),
                Some(unauthorized),
            ),
            6 => (
                "basic auth",
                Some("Basic YWRtaW46YWRtaW4=".to_owned()),
                Some(unauthorized),
            ),
            7 => (
                "overlong key",
                Some(format!("Bearer {long}")),
                Some(unauthorized),
            ),
            8 => ("bob's key", Some(format!("Bearer {}", keys.bob)), None),
            9 => ("alice's key", Some(format!("Bearer {}", keys.alice)), None),
            10 => ("viewer key", Some(format!("Bearer {}", keys.viewer)), None),
            _ => ("feeder key", Some(format!("Bearer {}", keys.feeder)), None),
        };
    if let Some(header) = header {
        request = request.header("Authorization", &header);
    }
    // Writing with a key that may only read is forbidden, whatever the body.
    let expect = if route.template == "/v1/events"
        && matches!(what, "viewer key" | "bob's key" | "alice's key")
    {
        Some(&[403][..])
    } else {
        expect
    };
    Case {
        kind: "",
        what: what.to_owned(),
        request,
        expect,
    }
}

fn method_case(rng: &mut ChaCha8Rng, route: &Route, mut request: Request) -> Case {
    let others: Vec<&&str> = METHODS
        .iter()
        .filter(|method| **method != route.method && !(route.method == "GET" && **method == "HEAD"))
        .collect();
    let method = if rng.random_bool(0.1) {
        "FROB"
    } else {
        others.choose(rng).unwrap()
    };
    request.method = method.to_owned();
    Case {
        kind: "",
        what: format!("method {method}"),
        request,
        expect: Some(&[405]),
    }
}

fn path_case(rng: &mut ChaCha8Rng, route: &Route, mut request: Request) -> Case {
    let not_found: &'static [u16] = &[404];
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (request.target.clone(), None),
    };
    let with_id = route.template.contains("{id}");
    let choice = rng.random_range(0..if with_id { 14 } else { 6 });
    let (what, path, expect): (&str, String, &'static [u16]) = match choice {
        0 => ("trailing slash", format!("{path}/"), not_found),
        1 => ("unknown child", format!("{path}/zz"), not_found),
        2 => ("upper case", path.to_uppercase(), not_found),
        3 => ("double slash", format!("/{path}"), not_found),
        4 => (
            "unknown version",
            match path.strip_prefix("/v1") {
                Some(rest) => format!("/v2{rest}"),
                None => format!("/v2{path}"),
            },
            not_found,
        ),
        5 => ("dot segment", format!("{path}/../prices"), not_found),
        other => {
            let id = match other {
                6 => "%20".to_owned(),
                7 => String::new(),
                8 => "a".repeat(rng.random_range(200..12_000)),
                9 => "%FF%FE".to_owned(),
                // No event can open it (a space before it): unknown for the whole run.
                10 => "%20nobody".to_owned(),
                11 => "%00".to_owned(),
                12 => "alice%2Frisk-matrix".to_owned(),
                _ => "%C3%A9%F0%9F%A6%80".to_owned(),
            };
            let rest = path
                .strip_prefix("/v1/accounts/")
                .and_then(|rest| rest.split_once('/').map(|(_, tail)| format!("/{tail}")))
                .unwrap_or_default();
            (
                "account id",
                format!("/v1/accounts/{id}{rest}"),
                &[400, 404][..],
            )
        }
    };
    request.target = match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    Case {
        kind: "",
        what: what.to_owned(),
        request,
        expect: Some(expect),
    }
}

fn query_case(rng: &mut ChaCha8Rng, mut request: Request) -> Case {
    let junk = if rng.random_bool(0.1) {
        format!("search={}", "q".repeat(rng.random_range(100..4_000)))
    } else {
        (*QUERY_JUNK.choose(rng).unwrap()).to_owned()
    };
    request.target = if request.target.contains('?') && rng.random_bool(0.5) {
        format!("{}&{junk}", request.target)
    } else {
        let path = request
            .target
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        format!("{path}?{junk}")
    };
    Case {
        kind: "",
        what: format!("query {}", shorten(junk.as_bytes(), 40)),
        request,
        expect: None,
    }
}

fn header_case(rng: &mut ChaCha8Rng, route: &Route, mut request: Request) -> Case {
    if route.template == "/v1/ws" {
        // An upgrade missing one of its headers, or with a wrong one.
        let choice = rng.random_range(0..6);
        let what = match choice {
            0 => "no upgrade header",
            1 => "no connection header",
            2 => "no websocket key",
            3 => "no websocket version",
            4 => "websocket version 8",
            _ => "plain GET",
        };
        request.headers.retain(|(name, _)| match choice {
            0 => name != "Upgrade",
            1 => name != "Connection",
            2 => name != "Sec-WebSocket-Key",
            3 | 4 => name != "Sec-WebSocket-Version",
            _ => name == "Authorization",
        });
        if choice == 4 {
            request = request.header("Sec-WebSocket-Version", "8");
        }
        return Case {
            kind: "",
            what: what.to_owned(),
            request,
            expect: None,
        };
    }
    request.headers.retain(|(name, _)| name != "Content-Type");
    let content_type = [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=utf-16"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("application/json"),
    ]
    .choose(rng)
    .copied()
    .flatten();
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    request.chunked = rng.random_bool(0.3);
    Case {
        kind: "",
        what: format!(
            "content type {content_type:?}{}",
            if request.chunked { ", chunked" } else { "" }
        ),
        request,
        expect: None,
    }
}

fn random_bytes(rng: &mut ChaCha8Rng, most: usize) -> Vec<u8> {
    (0..rng.random_range(0..most))
        .map(|_| rng.random())
        .collect()
}

fn syntax_case(rng: &mut ChaCha8Rng, request: Request) -> Case {
    let text = request.body.clone();
    let bad: &'static [u16] = &[400];
    let (what, body): (&str, Vec<u8>) = match rng.random_range(0..12) {
        0 => ("empty body", Vec::new()),
        1 => {
            let fixed = [
                "{",
                "[",
                "nul",
                "{]",
                "\"str\"",
                "42",
                "null",
                "[]",
                "{}",
                "true",
                "{\"a\"}",
                "{\"a\":}",
                "{,}",
                "[1,]",
                "{\"a\":1,}",
                "\u{feff}{}",
                "{'a': 1}",
                "NaN",
            ];
            (
                "not a document",
                fixed.choose(rng).unwrap().as_bytes().to_vec(),
            )
        }
        2 | 3 => {
            let at = rng.random_range(0..text.len().max(1));
            ("truncated", text[..at].to_vec())
        }
        4 => {
            let tail = [" x", "}", " {}", "\n{}", "]", ",", "\u{0}", "//", "null"];
            let mut body = text.clone();
            body.extend_from_slice(tail.choose(rng).unwrap().as_bytes());
            ("text after the document", body)
        }
        5 => ("random bytes", random_bytes(rng, 300)),
        6 => {
            let mut body = text.clone();
            let at = rng.random_range(0..body.len().max(1));
            if let Some(byte) = body.get_mut(at) {
                *byte = [0xFF, 0xC3, 0x80, 0x00][rng.random_range(0..4)];
            }
            ("one byte broken", body)
        }
        7 => {
            let depth = rng.random_range(129..50_000);
            let mut body = "[".repeat(depth);
            body.push_str(&"]".repeat(depth));
            ("deep nesting", body.into_bytes())
        }
        8 => {
            let depth = rng.random_range(100..2_000);
            let body = format!("{{\"events\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
            ("deep nesting in a field", body.into_bytes())
        }
        9 => {
            let mut body = b"\xEF\xBB\xBF".to_vec();
            body.extend_from_slice(&text);
            ("byte order mark", body)
        }
        10 => {
            let mut body = text.clone();
            let at = rng.random_range(0..body.len().max(1));
            body.insert(at.min(body.len()), rng.random());
            ("one byte inserted", body)
        }
        _ => {
            let body = String::from_utf8_lossy(&text).replace(':', "=");
            ("colons as equals", body.into_bytes())
        }
    };
    // A byte inserted or broken may leave the document valid (a digit in a number, a letter in
    // a string): only the other edits must be refused.
    let expect = match what {
        "one byte broken" | "one byte inserted" => None,
        _ => Some(bad),
    };
    Case {
        kind: "",
        what: what.to_owned(),
        request: request.body(body),
        expect,
    }
}

fn oversized_case(rng: &mut ChaCha8Rng, mut request: Request) -> Case {
    let size = MAX_BODY_BYTES + rng.random_range(1..4096);
    let mut body = request.body.clone();
    // A valid document followed by enough spaces: only its size is wrong.
    body.resize(size, b' ');
    request.chunked = rng.random_bool(0.5);
    Case {
        kind: "",
        what: format!("{size}-byte body"),
        request: request.body(body),
        expect: Some(&[413]),
    }
}

/// A place in a JSON document.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn places(value: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(Step::Key(key.clone()));
                places(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                at.push(Step::Index(index));
                places(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|step| match step {
            Step::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
            Step::Index(index) => format!("/{index}"),
        })
        .collect()
}

/// What a raw edit does, for the answer it must get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Raw {
    /// Nothing the answer depends on.
    Plain,
    /// A key written twice in one object: refused, wherever it is.
    Twice,
    /// A spelling no decimal takes, in a decimal field: refused when it is the only edit.
    RefusedDecimal,
}

/// Up to three structure-aware edits of a valid body: a value replaced by decimal junk, a value
/// of the wrong type or a junk string, a field removed, an unknown field added, a duplicate
/// key, an array emptied or grown.
fn structure_case(rng: &mut ChaCha8Rng, route: &str, request: Request, valid: &Value) -> Case {
    let mut body = valid.clone();
    // (marker, raw JSON to put in its place, what it does)
    let mut raw: Vec<(String, String, Raw)> = Vec::new();
    let mut edits = Vec::new();
    let rounds = if rng.random_bool(0.5) {
        1
    } else {
        rng.random_range(2..=3)
    };
    for round in 0..rounds {
        let mut all = Vec::new();
        places(&body, &mut Vec::new(), &mut all);
        // Mostly a field of the request's own (a decimal or an id), where the answer is known.
        let own: Vec<&Vec<Step>> = all
            .iter()
            .filter(|place| is_decimal_field(route, place) || is_id_field(route, place))
            .collect();
        let place = match own.choose(rng) {
            Some(place) if rng.random_bool(0.5) => (*place).clone(),
            _ => all.choose(rng).unwrap().clone(),
        };
        let here = pointer(&place);
        let marker = format!("\u{1}RAW{round}\u{1}");
        let Some(target) = body.pointer_mut(&here) else {
            continue;
        };
        let edit = if is_decimal_field(route, &place) && rng.random_bool(0.6) {
            0
        } else if is_id_field(route, &place) && rng.random_bool(0.6) {
            4
        } else {
            rng.random_range(0..12)
        };
        match edit {
            0..=3 => {
                let refused = rng.random_bool(0.7);
                let spellings: &[&str] = if refused {
                    &REFUSED_DECIMALS
                } else {
                    &OTHER_DECIMALS
                };
                let what = if refused && is_decimal_field(route, &place) {
                    Raw::RefusedDecimal
                } else {
                    Raw::Plain
                };
                raw.push((
                    marker.clone(),
                    (*spellings.choose(rng).unwrap()).to_owned(),
                    what,
                ));
                edits.push(format!("{here} = decimal junk"));
                *target = Value::String(marker);
            }
            4 | 5 => {
                *target = Value::String(string_junk(rng));
                edits.push(format!("{here} = junk string"));
            }
            6 => {
                raw.push((
                    marker.clone(),
                    (*TYPE_JUNK.choose(rng).unwrap()).to_owned(),
                    Raw::Plain,
                ));
                edits.push(format!("{here} = wrong type"));
                *target = Value::String(marker);
            }
            7 => {
                let (Some(last), parent) = (place.last(), &place[..place.len().saturating_sub(1)])
                else {
                    continue;
                };
                let parent_pointer = pointer(parent);
                if let Some(parent) = body.pointer_mut(&parent_pointer) {
                    match (parent, last) {
                        (Value::Object(map), Step::Key(key)) => {
                            map.remove(key);
                        }
                        (Value::Array(items), Step::Index(index)) => {
                            items.remove(*index);
                        }
                        _ => {}
                    }
                }
                edits.push(format!("{here} removed"));
            }
            8 => {
                if let Value::Object(map) = target {
                    // Unknown names, and the envelope's own (`seq` is the service's to give).
                    let name = *["colour", "", "Account", "type", "seq", "ts", "client_id"]
                        .choose(rng)
                        .unwrap();
                    map.insert(name.to_owned(), Value::String(string_junk(rng)));
                    edits.push(format!("{here}/{name} set"));
                } else {
                    *target = Value::Null;
                    edits.push(format!("{here} = null"));
                }
            }
            9 => {
                if let Value::Object(map) = target
                    && let Some((key, value)) =
                        map.iter().next().map(|(k, v)| (k.clone(), v.clone()))
                {
                    // Written twice in the text, the second time with another value.
                    let other = if value == json!("1") {
                        json!("2")
                    } else {
                        json!("1")
                    };
                    raw.push((
                        marker.clone(),
                        format!("{value}, {}: {other}", json!(key)),
                        Raw::Twice,
                    ));
                    map.insert(key.clone(), Value::String(marker));
                    edits.push(format!("{here}/{key} duplicated"));
                } else {
                    *target = json!([]);
                    edits.push(format!("{here} = []"));
                }
            }
            10 => {
                if let Value::Array(items) = target {
                    if items.is_empty() || rng.random_bool(0.5) {
                        items.clear();
                        edits.push(format!("{here} emptied"));
                    } else {
                        let copies = if rng.random_bool(0.1) {
                            10_001
                        } else {
                            rng.random_range(2..50)
                        };
                        let first = items[0].clone();
                        items.resize(copies, first);
                        edits.push(format!("{here} grown to {copies}"));
                    }
                } else {
                    *target = Value::String(string_junk(rng));
                    edits.push(format!("{here} = junk string"));
                }
            }
            _ => {
                let refused = rng.random_bool(0.7);
                let spellings: &[&str] = if refused {
                    &REFUSED_DECIMALS
                } else {
                    &OTHER_DECIMALS
                };
                let what = if refused && is_decimal_field(route, &place) {
                    Raw::RefusedDecimal
                } else {
                    Raw::Plain
                };
                raw.push((
                    marker.clone(),
                    (*spellings.choose(rng).unwrap()).to_owned(),
                    what,
                ));
                edits.push(format!("{here} = decimal junk"));
                *target = Value::String(marker);
            }
        }
    }
    // An event holding an id no event may give is refused, whatever else was edited.
    let mut refused = route == "/v1/events" && holds_a_bad_id(&body);
    let mut text = body.to_string();
    for (marker, value, what) in raw {
        let quoted = json!(marker).to_string();
        // A later edit may have replaced or removed the marked value.
        if text.contains(&quoted) {
            refused |= what == Raw::Twice || (what == Raw::RefusedDecimal && edits.len() == 1);
            text = text.replace(&quoted, &value);
        }
    }
    Case {
        kind: "",
        what: format!("structure: {}", edits.join("; ")),
        request: request.body(text),
        expect: refused.then_some(&[400][..]),
    }
}

// ---- checks ---------------------------------------------------------------------------------------

/// Problems with one answer (empty when it is right).
fn check(route: &Route, case: &Case, answer: &Answer) -> Vec<String> {
    let mut problems = Vec::new();
    let status = answer.status;
    if status >= 500 {
        problems.push(format!("a {status}"));
    }
    let upgrade = route.template == "/v1/ws" && case.request.is_upgrade();
    let answered = (200..300).contains(&status) || (status == 101 && upgrade);
    if !answered && !(400..500).contains(&status) {
        problems.push(format!("status {status} is neither a 2xx nor a 4xx"));
    }
    if let Some(expect) = case.expect
        && !expect.contains(&status)
    {
        problems.push(format!("status {status}, expected one of {expect:?}"));
    }
    if status >= 400 {
        problems.extend(error_shape_problems(answer));
    } else if (200..300).contains(&status) && !route.open && answer.json().is_none() {
        problems.push(format!(
            "a {status} whose body is not JSON: {:?}",
            shorten(&answer.body, 200)
        ));
    }
    problems
}

fn error_shape_problems(answer: &Answer) -> Vec<String> {
    let mut problems = Vec::new();
    let content_type = answer.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/json") {
        problems.push(format!("content type {content_type:?}, not JSON"));
    }
    let Some(body) = answer.json() else {
        problems.push(format!(
            "the body is not JSON: {:?}",
            shorten(&answer.body, 200)
        ));
        return problems;
    };
    let error = &body["error"];
    let keys: Vec<&String> = body
        .as_object()
        .map(|map| map.keys().collect())
        .unwrap_or_default();
    if keys != ["error"] {
        problems.push(format!("the body is not {{\"error\": ...}}: {body}"));
    }
    let mut inner: Vec<&String> = error
        .as_object()
        .map(|map| map.keys().collect())
        .unwrap_or_default();
    inner.sort();
    if inner != ["code", "field", "message"] {
        problems.push(format!("the error is not {{code, field, message}}: {body}"));
    }
    let code = error["code"].as_str().unwrap_or_default();
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        problems.push(format!("the code is not snake_case text: {body}"));
    }
    if error["message"]
        .as_str()
        .is_none_or(|message| message.trim().is_empty())
    {
        problems.push(format!("no message: {body}"));
    }
    match &error["field"] {
        Value::Null if code == "invalid_request" => {
            problems.push(format!("an invalid request names no field: {body}"));
        }
        Value::Null => {}
        Value::String(field) if !field.trim().is_empty() => {}
        other => problems.push(format!("the field is {other}: {body}")),
    }
    problems
}

/// Whether an answer to `POST /v1/events` applied anything, and the last number it gave.
fn applied(route: &Route, answer: &Answer) -> Option<Option<u64>> {
    if route.template != "/v1/events" || !(200..300).contains(&answer.status) {
        return None;
    }
    let body = answer.json()?;
    let accepted = body["results"]
        .as_array()?
        .iter()
        .filter(|result| result["status"] == "accepted")
        .filter_map(|result| result["seq"].as_u64())
        .max();
    Some(accepted)
}

// ---- the fuzz -------------------------------------------------------------------------------------

fn routes(material: &Material) -> Vec<Route> {
    let mut routes = Vec::new();
    let mut missing = Vec::new();
    for (method, template, _) in solvent_server::api::route_table() {
        match valid_requests(method, template, material) {
            Some(valid) => routes.push(Route {
                method,
                template,
                valid,
                open: false,
            }),
            None => missing.push(format!("{method} {template}")),
        }
    }
    assert!(
        missing.is_empty(),
        "routes without a fuzz case (add their valid requests to `valid_requests`): {missing:?}"
    );
    for path in OUTSIDE_V1 {
        routes.push(Route {
            method: "GET",
            template: path,
            valid: vec![get(path)],
            open: true,
        });
    }
    routes
}

#[test]
fn every_route_of_the_table_has_fuzz_cases() {
    let material = material();
    let served = solvent_server::api::route_table();
    let routes = routes(&material);
    assert_eq!(routes.len(), served.len() + OUTSIDE_V1.len());
    for route in &routes {
        assert!(
            !route.valid.is_empty(),
            "{} {}",
            route.method,
            route.template
        );
    }
    assert!(valid_requests("GET", "/v1/not-a-route", &material).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_bad_requests_in_the_error_shape_and_changes_nothing() {
    let seed: u64 = env_or("SOLVENT_FUZZ_SEED", DEFAULT_SEED);
    let cases: usize = env_or("SOLVENT_FUZZ_CASES", DEFAULT_CASES);
    let started = Instant::now();
    let material = material();
    let routes = routes(&material);
    let (running, keys) = start().await;
    let addr = running.addr;
    let opening = json!({"events": population()});
    let answer = send(
        addr,
        &Request::new("POST", "/v1/events")
            .key(&keys.admin)
            .json(&opening),
    )
    .await
    .unwrap();
    let reply = answer.json().unwrap();
    assert_eq!(answer.status, 200, "{reply}");
    for (result, event) in reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(population())
    {
        assert_eq!(result["status"], "accepted", "{event}: {result}");
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut state = state_hash(addr, &keys.admin).await;
    let opening_seq = state.0;
    let mut failures: Vec<String> = Vec::new();
    // (route, kind of edit, first problem without its details) -> cases
    let mut classes: BTreeMap<(String, &str, String), usize> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for number in 0..cases {
        // Every route in turn, so a short run covers them all.
        let route = &routes[number % routes.len()];
        let case = generate(&mut rng, route, &keys);
        *kinds.entry(case.kind).or_default() += 1;
        let mut problems = Vec::new();
        let mut answer_text = String::new();
        let mut applied_seq = None;
        match send(addr, &case.request).await {
            Ok(answer) => {
                *statuses.entry(answer.status).or_default() += 1;
                problems = check(route, &case, &answer);
                applied_seq = applied(route, &answer);
                answer_text = format!("{} {}", answer.status, shorten(&answer.body, 400));
            }
            Err(problem) => problems.push(format!("dropped: {problem}")),
        }
        let now = state_hash(addr, &keys.admin).await;
        match applied_seq {
            // An accepted event moved the state: it took the numbers up to its own.
            Some(Some(last)) => {
                if now.0 != Some(last) {
                    problems.push(format!(
                        "events were accepted up to seq {last} but the engine is at {:?}",
                        now.0
                    ));
                }
            }
            _ => {
                if now != state {
                    problems.push(format!(
                        "the state moved from {state:?} to {now:?} on a request that applied nothing"
                    ));
                }
            }
        }
        state = now;
        if !problems.is_empty() {
            let class: String = problems[0]
                .chars()
                .take_while(|c| *c != ':')
                .take(60)
                .collect();
            *classes
                .entry((route.template.to_owned(), case.kind, class))
                .or_default() += 1;
            failures.push(format!(
                "case {number} ({}), {}:\n  {}\n request: {}\n answer: {answer_text}",
                route.template,
                case.what,
                problems.join("\n  "),
                case.request.describe()
            ));
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz: seed {seed:#x}, {cases} cases over {} routes in {:.1} s; statuses {statuses:?}; kinds {kinds:?}; the engine at seq {:?} after {opening_seq:?}",
        routes.len(),
        elapsed.as_secs_f64(),
        state.0,
    );
    running.stop().await.unwrap();
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(25).collect();
        let classes: Vec<String> = classes
            .iter()
            .map(|((route, kind, problem), count)| format!("  {count:5} {route} {kind}: {problem}"))
            .collect();
        panic!(
            "{} of {cases} cases failed (seed {seed:#x}; rerun with SOLVENT_FUZZ_SEED={seed} SOLVENT_FUZZ_CASES={cases}):\n{}\n\nthe first ones:\n{}",
            failures.len(),
            classes.join("\n"),
            shown
                .iter()
                .map(|failure| failure.as_str())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}
