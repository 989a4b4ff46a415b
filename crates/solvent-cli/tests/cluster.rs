//! Scale-out on NATS JetStream (issue 13): a three-node NATS cluster on 127.0.0.1 (JetStream,
//! streams replicated three ways, `sync_interval: always`), the `solvent` binary as publisher
//! and as four shard processes.
//!
//! - `four_shards_give_each_account_the_effects_of_one_engine`: a seeded population and a
//!   falling market with trading between the price updates, through one engine in memory and
//!   through four shards: every account's effects are the same, in the same order, and the
//!   insurance funds of the shards add up to the one engine's.
//! - `killed_shards_and_a_killed_nats_node_lose_nothing_and_apply_nothing_twice`: the same
//!   stream published while one NATS node is killed with SIGKILL, and every shard killed with
//!   SIGKILL at random moments and restarted: every shard's effect stream holds each input
//!   message's effects exactly once, and the effects equal the one engine's again.
//! - `shards_killed_with_their_effect_window_full_publish_each_effect_once`: every shard
//!   catching up on the whole stream, its effect messages pipelined: three runs of each whose
//!   20th effect message is lost while the ones after it are stored (the shard stops at its
//!   failed acknowledgement), then three killed with SIGKILL as soon as they have written a
//!   snapshot (while their window of unacknowledged effect messages is full): what a run lost
//!   in flight is published again by the next, once, and what it stored is not.
//! - `a_system_shard_killed_with_sigkill_recovers_from_its_snapshot_and_deleverages_across_shards`:
//!   a deficit beyond the fund auto-deleveraged across shards (`--fund system`), the system
//!   shard process killed with SIGKILL after it asked for candidates and restarted from its
//!   snapshot; while it ran, a second system shard was refused.
//!
//! The NATS server comes from `scripts/setup-nats` (`target/nats-venv/bin/nats-server`, or
//! `SOLVENT_NATS_SERVER`); `./scripts/test` runs it first.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test harness: a failed expectation is a failed test"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::EffectLine;
use solvent_engine::event::{Envelope, parse_line, to_line};
use solvent_engine::population::{PopulationParams, generate};
use support::Scratch;

const SHARDS: u32 = 4;

fn nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("SOLVENT_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let installed = support::root().join("target/nats-venv/bin/nats-server");
    assert!(
        installed.exists(),
        "no nats-server at {}: run ./scripts/setup-nats (./scripts/test does), or set SOLVENT_NATS_SERVER",
        installed.display()
    );
    installed
}

/// A port for a NATS node to listen on, below the kernel's ephemeral range (32768-60999 by
/// default). A port the kernel hands out for `bind(:0)` comes from that range, and so does the
/// local port of every outgoing connection: between this check and the node's own bind, another
/// test's connection may take it, the node exits, and a fresh cluster short of a node may never
/// elect its JetStream meta leader ("JetStream system temporarily unavailable"). Ports are handed
/// out once per test process, from an offset taken from its pid.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + u16::try_from(std::process::id() % 200).expect("below 200") * 60;
    let _ = NEXT.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
    loop {
        let port = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(port < 32_768, "no free port left below the ephemeral range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Holds the one cluster test running: each starts three NATS nodes syncing every write and
/// four or five `solvent` processes, and two such tests at once on two cores stretch every
/// replicated write and election toward the tests' deadlines. A test that failed leaves the
/// lock poisoned; the next still runs.
fn one_cluster_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Three NATS nodes in one cluster, killed when dropped.
struct NatsCluster {
    nodes: Vec<Option<Child>>,
    client_ports: Vec<u16>,
    logs: Vec<PathBuf>,
}

impl NatsCluster {
    fn start(dir: &Path) -> Self {
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        // A cluster name of its own: nodes of two tests running at once never gossip into one
        // cluster.
        let name = format!("solvent-{}", client_ports[0]);
        let mut nodes = Vec::new();
        let mut logs = Vec::new();
        for node in 0..3 {
            let store = dir.join(format!("nats-{node}"));
            std::fs::create_dir_all(&store).expect("store dir");
            let config = format!(
                "server_name: n{node}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\", sync_interval: always }}\ncluster {{ name: {name}, listen: 127.0.0.1:{}, routes: [{routes}] }}\n",
                client_ports[node],
                store.display(),
                route_ports[node],
            );
            let path = dir.join(format!("nats-{node}.conf"));
            std::fs::write(&path, config).expect("write the node's configuration");
            let log = dir.join(format!("nats-{node}.log"));
            let child = Command::new(nats_server())
                .arg("-c")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("the node's log"))
                .spawn()
                .expect("start nats-server");
            nodes.push(Some(child));
            logs.push(log);
        }
        let cluster = Self {
            nodes,
            client_ports,
            logs,
        };
        cluster.wait_until_listening();
        cluster
    }

    /// Waits until every node accepts connections; a node that exited (a port taken after
    /// all) fails the test with its log rather than leaving a cluster that never elects.
    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for &port in &self.client_ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "a NATS node is not listening on {port}:\n{}",
                    self.log_tails()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The last lines of each node's log, for a failed test's message.
    fn log_tails(&self) -> String {
        self.logs
            .iter()
            .map(|log| {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                format!("== {}\n{tail}", log.display())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn urls(&self) -> String {
        self.client_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the NATS nodes' logs:\n{}", self.log_tails());
        }
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
    }
}

/// The events: a seeded population of 300 accounts, then 300 price updates of BTC and ETH
/// drifting down about 8%, with deposits and fills of random accounts between them.
fn events() -> (Vec<Envelope>, BTreeSet<String>) {
    let venue = solvent_core::venue::Venue::from_toml(
        "default",
        &std::fs::read_to_string(support::root().join("venues/default.toml")).expect("venue"),
    )
    .expect("the default venue");
    let population = generate(
        &venue,
        &PopulationParams {
            accounts: 300,
            ..PopulationParams::default()
        },
    )
    .expect("a population");
    let mut lines: Vec<String> = population.events.iter().map(to_line).collect();
    let accounts: Vec<String> = population.accounts.iter().map(|a| a.id.clone()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut prices = [("BTC", 93_859.71_f64), ("ETH", 3_224.99_f64)];
    let start = population.events.last().map(|e| e.ts).expect("events");
    for step in 0..300_i64 {
        let ts = start + jiff::SignedDuration::from_secs(step + 1);
        let (underlying, price) = &mut prices[(step % 2) as usize];
        *price *= 1.0 + rng.random_range(-0.0035..0.0030);
        lines.push(format!(
            r#"{{"seq":0,"ts":"{ts}","type":"index_price","underlying":"{underlying}","price":"{:.2}"}}"#,
            *price
        ));
        if step % 5 == 0 {
            let account = &accounts[rng.random_range(0..accounts.len())];
            lines.push(format!(
                r#"{{"seq":0,"ts":"{ts}","type":"deposit","account":"{account}","asset":"USDT","amount":"{}"}}"#,
                rng.random_range(100..5_000)
            ));
            let account = &accounts[rng.random_range(0..accounts.len())];
            let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
            lines.push(format!(
                r#"{{"seq":0,"ts":"{ts}","type":"fill","account":"{account}","instrument":"BTCUSDT","side":"{side}","size":"0.01","price":"{:.2}","fee":"0.5"}}"#,
                prices[0].1
            ));
        }
    }
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let mut value: serde_json::Value = serde_json::from_str(line).expect("json");
            value["seq"] = (i as u64 + 1).into();
            parse_line("events", i + 1, &value.to_string()).expect("a valid event")
        })
        .collect();
    (events, accounts.into_iter().collect())
}

/// Each account's effects (their JSON without the sequence number, which the cluster derives
/// from stream positions), in order, and the insurance fund's last balance per asset.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    by_account: BTreeMap<String, Vec<String>>,
    fund: BTreeMap<String, rust_decimal::Decimal>,
}

impl Outcome {
    fn add(&mut self, accounts: &BTreeSet<String>, line: &serde_json::Value) {
        let mut value = line.clone();
        let fields = value.as_object_mut().expect("an effect is an object");
        fields.remove("seq");
        fields.remove("shard");
        fields.remove("input_seq");
        fields.remove("effect_message");
        let text = value.to_string();
        let named: BTreeSet<&str> = ["account", "from", "to", "counterparty"]
            .iter()
            .filter_map(|key| value.get(*key).and_then(serde_json::Value::as_str))
            .filter(|name| accounts.contains(*name))
            .collect();
        for name in named {
            self.by_account
                .entry(name.to_owned())
                .or_default()
                .push(text.clone());
        }
    }
}

fn reference(events: &[Envelope], accounts: &BTreeSet<String>) -> Outcome {
    reference_engine(events, accounts).0
}

fn reference_engine(events: &[Envelope], accounts: &BTreeSet<String>) -> (Outcome, Engine) {
    let venue = solvent_core::venue::Venue::from_toml(
        "default",
        &std::fs::read_to_string(support::root().join("venues/default.toml")).expect("venue"),
    )
    .expect("the default venue");
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut lines = Vec::new();
    for envelope in events {
        for effect in engine.apply(envelope) {
            // Through text, as the cluster's effects are read back (serde_json reads a float
            // back within an ulp, the same way on both sides).
            let text = serde_json::to_string(&EffectLine {
                seq: envelope.seq,
                effect,
            })
            .expect("an effect serialises");
            lines.push(serde_json::from_str(&text).expect("an effect reads back"));
        }
    }
    let mut outcome = Outcome::default();
    for line in &lines {
        outcome.add(accounts, line);
    }
    outcome.fund = fund_balances(engine.ledger());
    (outcome, engine)
}

fn fund_balances(
    ledger: &solvent_engine::ledger::Ledger,
) -> BTreeMap<String, rust_decimal::Decimal> {
    ledger
        .balances_of(&solvent_engine::ledger::LedgerAccount::InsuranceFund)
        .map(|(asset, amount)| (asset.to_string(), amount))
        .collect()
}

fn write_events(path: &Path, events: &[Envelope]) {
    let text: String = events.iter().map(|e| to_line(e) + "\n").collect();
    std::fs::write(path, text).expect("write the events");
}

/// Runs `solvent ARGS...`, failing the test with its stderr if it fails; its stdout.
fn solvent(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_solvent"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run solvent");
    assert!(
        output.status.success(),
        "solvent {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Publishes until JetStream has acknowledged every message (a publication that fails, as it
/// may while a node dies, is retried with the same message ids: JetStream drops duplicates).
fn publish(urls: &str, events: &Path, id_prefix: &str) -> serde_json::Value {
    publish_batched(urls, events, id_prefix, 50)
}

/// As [`publish`], at most `batch` events per message.
fn publish_batched(urls: &str, events: &Path, id_prefix: &str, batch: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = Command::new(env!("CARGO_BIN_EXE_solvent"))
            .args([
                "cluster",
                "publish",
                "--cluster",
                urls,
                "--shards",
                &SHARDS.to_string(),
                "--batch",
                &batch.to_string(),
                "--id-prefix",
                id_prefix,
                &events.display().to_string(),
            ])
            .output()
            .expect("run solvent cluster publish");
        if output.status.success() {
            return serde_json::from_slice(&output.stdout).expect("a publish report");
        }
        assert!(
            Instant::now() < deadline,
            "publish kept failing: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Input messages between a test shard's snapshots, and its effect messages in flight at most:
/// a window smaller than the snapshot interval, so that it fills between two snapshots (a shard
/// waits for every acknowledgement before a snapshot).
const SNAPSHOT_EVERY: &str = "40";
const EFFECTS_IN_FLIGHT: &str = "8";

fn shard_args<'a>(urls: &'a str, shard: &'a str, data: &'a str) -> Vec<&'a str> {
    vec![
        "cluster",
        "shard",
        "--cluster",
        urls,
        "--shard",
        shard,
        "--data",
        data,
        "--snapshot-every",
        SNAPSHOT_EVERY,
        "--effects-in-flight",
        EFFECTS_IN_FLIGHT,
    ]
}

/// A `solvent` process of a test, killed and reaped when dropped: a test that fails part-way
/// leaves no shard, gateway or system shard running behind it.
struct Reaped(Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Shard `shard` running (not stopping at the end of the stream), its data under `scratch`.
fn start_shard(urls: &str, scratch: &Path, shard: u32) -> Reaped {
    start_shard_with(urls, scratch, shard, &[])
}

/// As [`start_shard`], with `extra` arguments.
fn start_shard_with(urls: &str, scratch: &Path, shard: u32, extra: &[&str]) -> Reaped {
    let shard_text = format!("{shard}/{SHARDS}");
    let data = scratch.join(format!("shard-{shard}")).display().to_string();
    Reaped(
        Command::new(env!("CARGO_BIN_EXE_solvent"))
            .args(shard_args(urls, &shard_text, &data))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a shard"),
    )
}

/// Every shard run to the end of the stream (recovering from its snapshot where it has one).
fn finish_shards(urls: &str, scratch: &Path) -> Vec<serde_json::Value> {
    let children: Vec<Child> = (0..SHARDS)
        .map(|shard| {
            let shard_text = format!("{shard}/{SHARDS}");
            let data = scratch.join(format!("shard-{shard}")).display().to_string();
            let mut args = shard_args(urls, &shard_text, &data);
            args.push("--stop-at-end");
            Command::new(env!("CARGO_BIN_EXE_solvent"))
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("a shard ends");
            assert!(
                output.status.success(),
                "shard: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice(&output.stdout).expect("a shard report")
        })
        .collect()
}

/// The cluster's effects, per account, with the check that each shard's effect stream holds
/// each input message's effects once (input sequences strictly increasing per shard).
fn cluster_outcome(urls: &str, accounts: &BTreeSet<String>, scratch: &Path) -> Outcome {
    let text = solvent(&["cluster", "effects", "--cluster", urls]);
    let mut outcome = Outcome::default();
    // Per shard: the effect message that answered each input message; one each, in order.
    let mut answered: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut last_input: BTreeMap<u64, u64> = BTreeMap::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("an effect line");
        let shard = value["shard"].as_u64().expect("shard");
        let input = value["input_seq"].as_u64().expect("input_seq");
        let message = value["effect_message"].as_u64().expect("effect_message");
        let first = *answered.entry((shard, input)).or_insert(message);
        assert_eq!(
            first, message,
            "shard {shard}: the effects of input {input} were published twice"
        );
        let previous = last_input.insert(shard, input).unwrap_or(0);
        assert!(
            input >= previous,
            "shard {shard}: input {input} after {previous}"
        );
        outcome.add(accounts, &value);
    }
    // The funds: each shard's last snapshot.
    for shard in 0..SHARDS {
        let dir = scratch.join(format!("shard-{shard}"));
        let newest = solvent_store::list_snapshots(&dir)
            .expect("snapshots")
            .and_then(|files| files.into_iter().next())
            .expect("a snapshot");
        let (_, engine) = solvent_store::read_snapshot(&newest).expect("a valid snapshot");
        for (asset, amount) in fund_balances(engine.ledger()) {
            *outcome.fund.entry(asset).or_default() += amount;
        }
    }
    outcome
}

fn assert_same(reference: &Outcome, cluster: &Outcome) {
    assert_eq!(
        reference.by_account.len(),
        cluster.by_account.len(),
        "accounts with effects"
    );
    for (account, effects) in &reference.by_account {
        assert_eq!(
            Some(effects),
            cluster.by_account.get(account),
            "account {account}"
        );
    }
    assert_eq!(reference.fund, cluster.fund, "insurance fund");
}

/// What the stream must hold for the comparison to mean something: liquidations, and no
/// deficit (the cluster has no system shard yet: a deficit would be met by one shard's fund).
fn check_reference(reference: &Outcome) {
    let all: Vec<&String> = reference.by_account.values().flatten().collect();
    let count = |kind: &str| {
        all.iter()
            .filter(|line| line.contains(&format!(r#""type":"{kind}""#)))
            .count()
    };
    assert!(count("liquidation") > 0, "the stream liquidates no account");
    assert!(count("margin_call") > 0, "the stream calls no margin");
    assert_eq!(count("adl") + count("deficit_beyond_fund"), 0);
}

#[test]
fn four_shards_give_each_account_the_effects_of_one_engine() {
    let _serial = one_cluster_at_a_time();
    let scratch = Scratch::new("cluster-same");
    let (events, accounts) = events();
    let expected = reference(&events, &accounts);
    check_reference(&expected);
    let mut nats = NatsCluster::start(scratch.dir());
    let urls = nats.urls();
    let file = scratch.dir().join("events.jsonl");
    write_events(&file, &events);
    let published = publish(&urls, &file, "all");
    assert_eq!(published["events"], events.len() as u64);
    let reports = finish_shards(&urls, scratch.dir());
    let applied: u64 = reports
        .iter()
        .map(|r| r["events"].as_u64().expect("events"))
        .sum();
    let market = events
        .iter()
        .filter(|e| {
            solvent_cluster::routing::route(&e.event, SHARDS)
                == Ok(solvent_cluster::routing::Route::Market)
        })
        .count() as u64;
    // Every account event once, every market event once per shard.
    assert_eq!(
        applied,
        events.len() as u64 + market * u64::from(SHARDS - 1)
    );
    let held: usize = reports
        .iter()
        .map(|r| r["accounts"].as_u64().expect("accounts") as usize)
        .sum();
    assert_eq!(held, accounts.len());
    assert_same(&expected, &cluster_outcome(&urls, &accounts, scratch.dir()));
    nats.kill(0);
}

#[test]
fn killed_shards_and_a_killed_nats_node_lose_nothing_and_apply_nothing_twice() {
    let _serial = one_cluster_at_a_time();
    let scratch = Scratch::new("cluster-kill");
    let (events, accounts) = events();
    let expected = reference(&events, &accounts);
    let mut nats = NatsCluster::start(scratch.dir());
    let urls = nats.urls();
    // The first part published before anything is killed: the streams exist, replicated.
    let (opening, rest) = events.split_at(events.len() / 3);
    let first = scratch.dir().join("opening.jsonl");
    write_events(&first, opening);
    publish(&urls, &first, "opening");
    let file = scratch.dir().join("rest.jsonl");
    write_events(&file, rest);
    let mut rng = ChaCha8Rng::seed_from_u64(
        std::env::var("SOLVENT_CLUSTER_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7),
    );
    // Shards running while the events arrive.
    let start_shard = |shard: u32| start_shard(&urls, scratch.dir(), shard);
    let mut shards: Vec<Reaped> = (0..SHARDS).map(start_shard).collect();
    let publisher = {
        let urls = urls.clone();
        let file = file.clone();
        std::thread::spawn(move || publish(&urls, &file, "rest"))
    };
    // A NATS node dies under load; two of three keep the streams writable.
    std::thread::sleep(Duration::from_millis(rng.random_range(20..200)));
    nats.kill(2);
    // Every shard killed with SIGKILL at a random moment once it has written a snapshot (so
    // it recovers from one), restarted, and killed again; a shard that stopped by itself (NATS
    // unreachable while a node is down) is restarted too.
    let snapshots_of = |shard: u32| {
        solvent_store::list_snapshots(&scratch.dir().join(format!("shard-{shard}")))
            .ok()
            .flatten()
            .map_or(0, |files| files.len())
    };
    let mut kills = 0;
    for _ in 0..3 {
        for shard in 0..SHARDS {
            let deadline = Instant::now() + Duration::from_secs(30);
            while snapshots_of(shard) == 0 && Instant::now() < deadline {
                let child = &mut shards[shard as usize];
                if child.try_wait().ok().flatten().is_some() {
                    *child = start_shard(shard);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
            let child = &mut shards[shard as usize];
            let _ = child.kill();
            let _ = child.wait();
            kills += 1;
            *child = start_shard(shard);
        }
    }
    let published = publisher.join().expect("the publisher thread");
    assert_eq!(published["events"], rest.len() as u64);
    for child in &mut shards {
        let _ = child.kill();
        let _ = child.wait();
    }
    let reports = finish_shards(&urls, scratch.dir());
    assert!(kills >= 12);
    assert!(
        reports.iter().all(|r| !r["recovered_from"].is_null()),
        "a shard did not recover from a snapshot: {reports:?}"
    );
    assert_same(&expected, &cluster_outcome(&urls, &accounts, scratch.dir()));
}

#[test]
fn shards_killed_with_their_effect_window_full_publish_each_effect_once() {
    let _serial = one_cluster_at_a_time();
    let scratch = Scratch::new("cluster-window");
    let (events, accounts) = events();
    let expected = reference(&events, &accounts);
    let nats = NatsCluster::start(scratch.dir());
    let urls = nats.urls();
    // The whole stream first, one event per message (so that each shard has many messages with
    // effects between two snapshots): each shard then reads as fast as it can, with its window
    // of unacknowledged effect messages full (an fsynced acknowledgement takes milliseconds, an
    // input message microseconds).
    let file = scratch.dir().join("events.jsonl");
    write_events(&file, &events);
    publish_batched(&urls, &file, "all", 1);
    let newest_snapshot = |shard: u32| {
        solvent_store::list_snapshots(&scratch.dir().join(format!("shard-{shard}")))
            .ok()
            .flatten()
            .and_then(|files| files.into_iter().next())
    };
    // A publication lost in the middle of the window: the shard stops at its acknowledgement,
    // with later ones stored (the case where "the last effect message stored" is not a
    // prefix). Recovery must publish the lost one again.
    for _ in 0..3 {
        for shard in 0..SHARDS {
            let mut child = start_shard_with(
                &urls,
                scratch.dir(),
                shard,
                &["--fail-effect-message", "20"],
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Some(status) = child.try_wait().expect("the shard's status") {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "shard {shard} did not stop at its lost effect message"
                );
                std::thread::sleep(Duration::from_millis(5));
            };
            assert!(!status.success(), "shard {shard} did not fail");
        }
    }
    let mut kills = 0;
    for _ in 0..3 {
        for shard in 0..SHARDS {
            let before = newest_snapshot(shard);
            let mut child = start_shard(&urls, scratch.dir(), shard);
            // Killed as soon as it has written a new snapshot: it has read on since, publishing
            // the effects of the next messages without waiting for their acknowledgements.
            let deadline = Instant::now() + Duration::from_secs(30);
            while newest_snapshot(shard) == before
                && Instant::now() < deadline
                && child.try_wait().ok().flatten().is_none()
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_ne!(
                newest_snapshot(shard),
                before,
                "shard {shard} wrote no new snapshot (it has {:?})",
                child.try_wait()
            );
            let _ = child.kill();
            let _ = child.wait();
            kills += 1;
        }
    }
    assert_eq!(kills, 12);
    let reports = finish_shards(&urls, scratch.dir());
    assert!(
        reports.iter().all(|r| !r["recovered_from"].is_null()),
        "a shard did not recover from a snapshot: {reports:?}"
    );
    assert_same(&expected, &cluster_outcome(&urls, &accounts, scratch.dir()));
}

/// One HTTP/1.1 request to the gateway: status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, payload) = response.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, payload.to_owned())
}

/// A value as it reads back from JSON text (floats within an ulp, as the gateway's do).
fn through_text(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::from_str(&serde_json::to_string(value).expect("serialise")).expect("read back")
}

/// A report as the gateway gives it: with the volatility-scaled ranges it was margined on (none
/// on the default venue, which scales nothing).
fn with_no_scaled_ranges(mut report: serde_json::Value) -> serde_json::Value {
    if let Some(object) = report.as_object_mut() {
        object.insert("vol_scaled_ranges".to_owned(), serde_json::json!([]));
    }
    report
}

#[test]
fn the_gateway_sends_each_query_to_its_shard_and_merges_the_views() {
    let _serial = one_cluster_at_a_time();
    let scratch = Scratch::new("cluster-gateway");
    let (events, accounts) = events();
    let (expected, engine) = reference_engine(&events, &accounts);
    let nats = NatsCluster::start(scratch.dir());
    let urls = nats.urls();
    // The opening through the publisher, the market through the gateway.
    let (opening, rest) = events.split_at(events.len() / 2);
    let first = scratch.dir().join("opening.jsonl");
    write_events(&first, opening);
    publish(&urls, &first, "opening");
    let mut shards: Vec<Reaped> = (0..SHARDS)
        .map(|shard| start_shard(&urls, scratch.dir(), shard))
        .collect();
    let mut gateway = Reaped(
        Command::new(env!("CARGO_BIN_EXE_solvent"))
            .args([
                "cluster",
                "gateway",
                "--cluster",
                &urls,
                "--shards",
                &SHARDS.to_string(),
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the gateway"),
    );
    let line = BufReader::new(gateway.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("the gateway's first line")
        .expect("UTF-8");
    let addr: SocketAddr = line
        .strip_prefix("solvent: gateway on http://")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let mut last = 0;
    for chunk in rest.chunks(200) {
        let body: Vec<serde_json::Value> = chunk
            .iter()
            .map(|e| {
                let mut value: serde_json::Value = serde_json::from_str(&to_line(e)).expect("json");
                value.as_object_mut().expect("object").remove("seq");
                value
            })
            .collect();
        let (status, reply) = http(
            addr,
            "POST",
            "/v1/events",
            &serde_json::json!({ "events": body }).to_string(),
        );
        assert_eq!(status, 200, "{reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("json");
        assert_eq!(reply["accepted"], chunk.len());
        last = last.max(reply["last_stream_seq"].as_u64().expect("a sequence"));
    }
    // Every shard caught up with the last message.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http(addr, "GET", "/v1/shards", "");
        assert_eq!(status, 200, "{body}");
        let statuses: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
        if statuses
            .iter()
            .all(|s| s["last_stream_seq"].as_u64().is_some_and(|seq| seq >= last))
        {
            break;
        }
        assert!(Instant::now() < deadline, "shards behind: {statuses:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // An account's report from its shard is the one engine's.
    let view = solvent_risk::MarketView::new(engine.venue(), engine.market()).expect("a view");
    for account in accounts.iter().step_by(12) {
        let (status, body) = http(addr, "GET", &format!("/v1/accounts/{account}"), "");
        assert_eq!(status, 200, "{account}: {body}");
        let portfolio = engine.portfolio(account).expect("an account");
        let report = solvent_risk::margin_report(&portfolio, &view).expect("a report");
        let got: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            got,
            with_no_scaled_ranges(through_text(&report)),
            "{account}"
        );
    }
    // With the moves that liquidate it, as the single service and `solvent margin --json` give
    // them.
    let account = accounts.iter().next().expect("an account");
    let (status, body) = http(
        addr,
        "GET",
        &format!("/v1/accounts/{account}?liquidation_moves=true"),
        "",
    );
    assert_eq!(status, 200, "{account}: {body}");
    let portfolio = engine.portfolio(account).expect("an account");
    let report = solvent_risk::margin_report(&portfolio, &view).expect("a report");
    let expected_moves =
        solvent_risk::stress::ReportWithMoves::new(&report, &portfolio, &view, |error| {
            error.to_string()
        });
    let got: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(got["liquidation_moves"].is_array(), "{got}");
    assert_eq!(
        got,
        with_no_scaled_ranges(through_text(&expected_moves)),
        "{account}"
    );
    let (status, body) = http(
        addr,
        "GET",
        &format!("/v1/accounts/{account}?liquidation_moves=maybe"),
        "",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""field":"liquidation_moves""#), "{body}");
    // The ranking merged from four shards is the one engine's.
    let (status, body) = http(addr, "GET", "/v1/accounts?limit=40", "");
    assert_eq!(status, 200, "{body}");
    let got: serde_json::Value = serde_json::from_str(&body).expect("json");
    let solvent_cluster::query::Answer::Ok(ranking) = solvent_cluster::query::answer(
        &engine,
        0,
        None,
        &solvent_cluster::query::Query::Ranked { limit: 40 },
    ) else {
        panic!("the reference ranking failed")
    };
    assert_eq!(got, through_text(&ranking));
    assert_eq!(got.as_array().map(Vec::len), Some(40));
    // The insurance funds add up.
    let (status, body) = http(addr, "GET", "/v1/insurance-fund", "");
    assert_eq!(status, 200, "{body}");
    let fund: BTreeMap<String, String> = serde_json::from_str(&body).expect("json");
    let fund: BTreeMap<String, rust_decimal::Decimal> = fund
        .into_iter()
        .map(|(asset, amount)| (asset, amount.parse().expect("a decimal")))
        .collect();
    assert_eq!(fund, expected.fund);
    // Errors name the field.
    let (status, body) = http(addr, "GET", "/v1/accounts/nobody", "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains(r#""field":"account""#), "{body}");
    let (status, body) = http(addr, "GET", "/v1/accounts?limit=0", "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""field":"limit""#), "{body}");
    let (from, to) = accounts
        .iter()
        .flat_map(|a| accounts.iter().map(move |b| (a, b)))
        .find(|(a, b)| {
            solvent_cluster::routing::shard_of(a, SHARDS)
                != solvent_cluster::routing::shard_of(b, SHARDS)
        })
        .expect("two accounts on different shards");
    let (status, body) = http(
        addr,
        "POST",
        "/v1/events",
        &format!(
            r#"{{"events":[{{"ts":"2026-02-01T00:00:00Z","type":"transfer","from":"{from}","to":"{to}","asset":"USDT","amount":"1"}}]}}"#
        ),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("cross_shard"), "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/v1/events",
        r#"{"events":[{"type":"deposit"}]}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""field":"events[0]""#), "{body}");
    let _ = gateway.kill();
    let _ = gateway.wait();
    for child in &mut shards {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The first id `prefix-N` on a shard for which `wanted` holds.
fn account_on(prefix: &str, wanted: impl Fn(u32) -> bool) -> String {
    (0..1000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| wanted(solvent_cluster::routing::shard_of(id, SHARDS)))
        .expect("an id on the wanted shard")
}

/// Every shard run with `--fund system` to the end of the stream.
fn finish_fund_shards(urls: &str, scratch: &Path) {
    for shard in 0..SHARDS {
        let shard_text = format!("{shard}/{SHARDS}");
        let data = scratch.join(format!("shard-{shard}")).display().to_string();
        let mut args = shard_args(urls, &shard_text, &data);
        args.extend(["--fund", "system", "--stop-at-end"]);
        solvent(&args);
    }
}

/// Auto-deleveraging across shards with the system shard as a process killed with SIGKILL
/// (issue 13 item 3): a bankrupt long (1 BTCUSDT from 60,000 on 4,000, BTC at 40,000: 16,000
/// short of a fund of 1,000) and three shorts on three other shards (0.6, 0.3 and 2 sold at
/// 60,000). The system shard, running with snapshots, asks for candidates and is killed once
/// it has written its snapshot; the shards offer; restarted, it recovers from the snapshot,
/// asks nothing again and answers: 0.6, 0.3 and 0.1 at 56,000, paying 9,600, 4,800 and 1,600.
/// The shards apply their shares (three `adl` effects), and a system shard reading the streams
/// from their start finds the answer published and the same fund.
#[test]
fn a_system_shard_killed_with_sigkill_recovers_from_its_snapshot_and_deleverages_across_shards() {
    let _serial = one_cluster_at_a_time();
    let scratch = Scratch::new("cluster-adl");
    let nats = NatsCluster::start(scratch.dir());
    let urls = nats.urls();
    let loser = account_on("loser", |_| true);
    let taken = solvent_cluster::routing::shard_of(&loser, SHARDS);
    let first = account_on("first", |k| k != taken);
    let second = account_on("second", |k| {
        k != taken && k != solvent_cluster::routing::shard_of(&first, SHARDS)
    });
    let third = account_on("third", |k| k == taken);
    let mut lines = vec![
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"deposit","account":"insurance_fund","asset":"USDT","amount":"1000""#.to_owned(),
    ];
    let deposit = |account: &str, amount: &str| {
        format!(r#""type":"deposit","account":"{account}","asset":"USDT","amount":"{amount}""#)
    };
    let fill = |account: &str, side: &str, size: &str| {
        format!(
            r#""type":"fill","account":"{account}","instrument":"BTCUSDT","side":"{side}","size":"{size}","price":"60000","counterparty":"external""#
        )
    };
    lines.push(deposit(&loser, "4000"));
    lines.push(fill(&loser, "buy", "1"));
    for (account, amount, size) in [
        (&first, "10000", "0.6"),
        (&second, "3000", "0.3"),
        (&third, "1000000", "2"),
    ] {
        lines.push(deposit(account, amount));
        lines.push(fill(account, "sell", size));
    }
    lines.extend(
        (0..4).map(|_| r#""type":"index_price","underlying":"BTC","price":"40000""#.to_owned()),
    );
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, body)| {
            format!(
                "{{\"seq\":{},\"ts\":\"2026-01-01T00:00:{:02}Z\",{body}}}\n",
                i + 1,
                i + 1
            )
        })
        .collect();
    let events = scratch.dir().join("events.jsonl");
    std::fs::write(&events, text).expect("write the events");
    publish(&urls, &events, "adl");
    finish_fund_shards(&urls, scratch.dir());

    // The system shard, running with snapshots, killed once it has written one (after it has
    // asked for candidates: the request is published before the snapshot of its iteration).
    let system_dir = scratch.dir().join("system");
    let system_data = system_dir.display().to_string();
    let shards = SHARDS.to_string();
    let system_args = [
        "cluster",
        "system",
        "--cluster",
        &urls,
        "--shards",
        &shards,
        "--replicas",
        "3",
        "--data",
        &system_data,
        "--snapshot-every",
        "1",
    ];
    let system_log = scratch.dir().join("system.log");
    let mut system = Reaped(
        Command::new(env!("CARGO_BIN_EXE_solvent"))
            .args(system_args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&system_log).expect("the system shard's log"))
            .spawn()
            .expect("start the system shard"),
    );
    let snapshots = system_dir.join("system-snapshots");
    // Generous: beside the other cluster tests on two cores, each replicated write of the
    // lease and the streams waits for three synced nodes.
    let deadline = Instant::now() + Duration::from_secs(90);
    while std::fs::read_dir(&snapshots).map_or(0, Iterator::count) == 0 {
        assert!(
            Instant::now() < deadline,
            "no snapshot written; the system shard said:\n{}",
            std::fs::read_to_string(&system_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only one system shard may run: a second is refused, after waiting one lease period for
    // the first's to lapse, and says why; `--query` asks the running one for its report.
    let started = Instant::now();
    let beside = Command::new(env!("CARGO_BIN_EXE_solvent"))
        .args(["cluster", "system", "--cluster", &urls, "--shards", &shards])
        .arg("--stop-at-end")
        .output()
        .expect("run a second system shard");
    assert!(!beside.status.success(), "a second system shard ran");
    let stderr = String::from_utf8_lossy(&beside.stderr);
    assert!(
        stderr.contains("another system shard is running (pid"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let running: serde_json::Value = serde_json::from_str(&solvent(&[
        "cluster",
        "system",
        "--cluster",
        &urls,
        "--shards",
        &shards,
        "--query",
    ]))
    .expect("the running system shard's report");
    assert_eq!(running["adl_requests_published"], 1, "{running}");
    system.kill().expect("SIGKILL");
    let _ = system.wait();
    // Its lease lapses (a lease period at most): the restart below takes it.

    finish_fund_shards(&urls, scratch.dir());
    let mut args = system_args.to_vec();
    args.push("--stop-at-end");
    let report: serde_json::Value = serde_json::from_str(&solvent(&args)).expect("a system report");
    assert!(report["recovered_from"].is_u64(), "{report}");
    assert_eq!(report["adl_requests_published"], 0, "{report}");
    assert_eq!(report["answers_published"], 1, "{report}");
    assert_eq!(report["adl_shares"], 3, "{report}");
    assert_eq!(report["fund"]["USDT"], "1000", "{report}");
    finish_fund_shards(&urls, scratch.dir());

    let effects = solvent(&["cluster", "effects", "--cluster", &urls]);
    let mut adl: Vec<(String, String, String)> = effects
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("an effect"))
        .filter(|e| e["type"] == "adl")
        .map(|e| {
            (
                e["counterparty"].as_str().unwrap_or_default().to_owned(),
                e["size"].as_str().unwrap_or_default().to_owned(),
                e["price"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    adl.sort();
    let mut expected = vec![
        (first.clone(), "0.6".to_owned(), "56000".to_owned()),
        (second.clone(), "0.3".to_owned(), "56000".to_owned()),
        (third.clone(), "0.1".to_owned(), "56000".to_owned()),
    ];
    expected.sort();
    assert_eq!(adl, expected);

    // From the streams' start: the answer is found published, the fund the same.
    let fresh: serde_json::Value = serde_json::from_str(&solvent(&[
        "cluster",
        "system",
        "--cluster",
        &urls,
        "--shards",
        &shards,
        "--stop-at-end",
    ]))
    .expect("a system report");
    assert_eq!(fresh["answers_published"], 0, "{fresh}");
    assert_eq!(fresh["answers_already_published"], 1, "{fresh}");
    assert_eq!(fresh["fund"], report["fund"], "{fresh}");
}
