//! Money across shards (issue 13 item 3): two account shards and the system shard on one NATS
//! node (JetStream, 127.0.0.1, a free port). The venue's 20,000 USDT deposit to the insurance
//! fund goes to the system shard; an account of one shard, which holds no part of the fund,
//! goes bankrupt with a deficit of 16,000, claims it, and the system shard's answer covers it
//! from the one fund; a liquidation fee on that shard feeds the fund through the system shard;
//! a second bankruptcy, on the other shard, claims more than the fund has left and keeps the
//! rest as its debt.
//!
//! Checked: between claim and answer the deficit is pending (the account at zero,
//! `pending_claims` short by it, the books balanced); the answers' amounts; and at the end each
//! account's balances, the fund (the system shard's, and the shards' pieces added up), and the
//! sum of every balance but `external`, per asset, equal one engine's over the same events.
//!
//! The NATS server comes from `scripts/setup-nats` (`target/nats-venv/bin/nats-server`) or
//! `SOLVENT_NATS_SERVER`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_cluster::ClusterError;
use solvent_cluster::publish::Publisher;
use solvent_cluster::routing::shard_of;
use solvent_cluster::shard::{self, ShardConfig};
use solvent_cluster::system::{self, ClaimAnswer, LeaseWait, SystemConfig, SystemReport};
use solvent_engine::Engine;
use solvent_engine::config::{EngineConfig, FundAuthority};
use solvent_engine::effect::Effect;
use solvent_engine::event::{Envelope, parse_line};
use solvent_engine::ledger::{INSURANCE_FUND, LedgerAccount};
use tokio::sync::watch;

const SHARDS: u32 = 2;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("SOLVENT_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let installed = root().join("target/nats-venv/bin/nats-server");
    assert!(
        installed.exists(),
        "no nats-server at {}: run ./scripts/setup-nats (./scripts/test does), or set SOLVENT_NATS_SERVER",
        installed.display()
    );
    installed
}

/// A port for the NATS node, below the kernel's ephemeral range (32768-60999 by default): a
/// port from `bind(:0)` may be taken by some outgoing connection's local port before the node
/// binds it, and the node exits. Handed out once per test process, from an offset taken from
/// its pid.
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

/// One NATS node with JetStream on 127.0.0.1, killed when dropped.
struct Nats {
    child: Child,
    port: u16,
}

impl Nats {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let store = dir.join("nats");
        std::fs::create_dir_all(&store).expect("store dir");
        let config = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\", sync_interval: always }}\n",
            store.display()
        );
        let path = dir.join("nats.conf");
        std::fs::write(&path, config).expect("write the configuration");
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venue_text() -> String {
    std::fs::read_to_string(root().join("venues/default.toml")).expect("the default venue")
}

/// The first id `prefix-N` held by a shard for which `wanted` holds.
fn account_on(prefix: &str, wanted: impl Fn(u32) -> bool) -> String {
    (0..1000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| wanted(shard_of(id, SHARDS)))
        .expect("an id on the wanted shard")
}

/// The accounts: the BTC loser and the fee payer on one shard, the ETH loser on the other (the
/// shard `insurance_fund` would hash to: its deposit goes to the system shard instead).
struct Cast {
    fund_shard: u32,
    btc_loser: String,
    payer: String,
    eth_loser: String,
}

impl Cast {
    fn new() -> Self {
        let fund_shard = shard_of(INSURANCE_FUND, SHARDS);
        Self {
            fund_shard,
            btc_loser: account_on("btc-loser", |k| k != fund_shard),
            payer: account_on("payer", |k| k != fund_shard),
            eth_loser: account_on("eth-loser", |k| k == fund_shard),
        }
    }
}

/// The events in three steps, each a list of event bodies:
/// 1. the fund's 20,000; the BTC loser long 1 BTCUSDT from 60,000 on 4,000 and BTC at 40,000
///    (confirmed): 4,000 - 20,000 = -16,000, a deficit of 16,000, more than its shard's piece
///    of the fund (nothing): the fund covers it whole, 4,000 left;
/// 2. the payer, long 3 ETHUSDT from 3,000 on 600, liquidated whole as ETH falls to 2,820
///    (equity 600 - 540 = 60 below the maintenance margin of 1% x 8,460 = 84.6; a notional
///    under 10,000 closes whole), paying a liquidation fee into the fund: 0.5% x 8,460 = 42.3,
///    capped at half its equity times the share of margin freed, 60 x 1 / 2 = 30;
/// 3. the ETH loser, long 10 ETHUSDT from 3,000 on 2,500 (healthy at 2,820: 700 against
///    282), bankrupt as ETH falls to 2,000: 2,500 - 10,000 = -7,500, more than the fund has
///    left (4,030): 3,470 stays its debt.
fn steps(cast: &Cast) -> [Vec<String>; 3] {
    let index = |underlying: &str, price: &str| {
        format!(r#""type":"index_price","underlying":"{underlying}","price":"{price}""#)
    };
    let deposit = |account: &str, amount: &str| {
        format!(r#""type":"deposit","account":"{account}","asset":"USDT","amount":"{amount}""#)
    };
    let buy = |account: &str, instrument: &str, size: &str, price: &str| {
        format!(
            r#""type":"fill","account":"{account}","instrument":"{instrument}","side":"buy","size":"{size}","price":"{price}","counterparty":"external""#
        )
    };
    let mut first = vec![
        index("BTC", "60000"),
        index("ETH", "3000"),
        deposit(INSURANCE_FUND, "20000"),
        // More decimals than USDT's 6: refused, by one engine and by the system shard alike.
        deposit(INSURANCE_FUND, "1.0000001"),
        deposit(&cast.btc_loser, "4000"),
        buy(&cast.btc_loser, "BTCUSDT", "1", "60000"),
        deposit(&cast.payer, "600"),
        buy(&cast.payer, "ETHUSDT", "3", "3000"),
        deposit(&cast.eth_loser, "2500"),
        buy(&cast.eth_loser, "ETHUSDT", "10", "3000"),
    ];
    first.extend((0..4).map(|_| index("BTC", "40000")));
    let second = (0..4).map(|_| index("ETH", "2820")).collect();
    let third = (0..4).map(|_| index("ETH", "2000")).collect();
    [first, second, third]
}

/// Numbers every body of `steps` (seq from 1, a second apart).
fn envelopes(steps: &[Vec<String>]) -> Vec<Vec<Envelope>> {
    let mut seq = 0_usize;
    steps
        .iter()
        .map(|bodies| {
            bodies
                .iter()
                .map(|body| {
                    seq += 1;
                    let line = format!(
                        r#"{{"seq":{seq},"ts":"2026-01-01T00:{:02}:{:02}Z",{body}}}"#,
                        seq / 60,
                        seq % 60
                    );
                    parse_line("system_shard", seq, &line).expect("an event")
                })
                .collect()
        })
        .collect()
}

/// One engine over every event, with its effects.
fn one_engine(events: &[Envelope]) -> (Engine, Vec<Effect>) {
    let venue = solvent_core::venue::Venue::from_toml("default", &venue_text()).expect("the venue");
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut effects = Vec::new();
    for envelope in events {
        effects.extend(engine.apply(envelope));
    }
    (engine, effects)
}

/// Every balance but `external`'s, by (ledger account, asset).
fn balances(engine: &Engine) -> BTreeMap<(String, String), Decimal> {
    engine
        .ledger()
        .balances()
        .filter(|(account, _, _)| *account != LedgerAccount::External)
        .map(|(account, asset, amount)| ((account.to_string(), asset.to_owned()), amount))
        .collect()
}

/// Sums per asset.
fn per_asset(balances: &BTreeMap<(String, String), Decimal>) -> BTreeMap<String, Decimal> {
    let mut sums = BTreeMap::new();
    for ((_, asset), amount) in balances {
        *sums.entry(asset.clone()).or_default() += *amount;
    }
    sums.retain(|_, amount: &mut Decimal| !amount.is_zero());
    sums
}

struct Cluster {
    url: String,
    dir: PathBuf,
}

impl Cluster {
    fn shard_config(&self, shard: u32) -> ShardConfig {
        ShardConfig {
            servers: vec![self.url.clone()],
            shard,
            shards: SHARDS,
            data_dir: self.dir.join(format!("shard-{shard}")),
            venue_text: venue_text(),
            engine: EngineConfig {
                fund: FundAuthority::SystemShard,
                ..EngineConfig::default()
            },
            replicas: 1,
            snapshot_every: 1000,
            effects_in_flight: 8,
            fail_effect_message: None,
            stop_at_end: true,
        }
    }

    async fn publish(&self, events: &[Envelope]) {
        let js = shard::connect(std::slice::from_ref(&self.url), SHARDS, 1)
            .await
            .expect("connect");
        let prefix = format!("step-{}", events.first().map_or(0, |e| e.seq));
        let mut publisher = Publisher::new(&js, SHARDS, 64, &prefix);
        for envelope in events {
            publisher.push(envelope.clone()).await.expect("publish");
        }
        publisher.finish().await.expect("acknowledged");
    }

    /// Runs every account shard until it has applied what the stream holds for it.
    async fn run_shards(&self) {
        for shard in 0..SHARDS {
            self.run_shard(shard).await;
        }
    }

    /// Runs account shard `shard` until it has applied what the stream holds for it.
    async fn run_shard(&self, shard: u32) {
        let (_stop, stopped) = watch::channel(false);
        let report = shard::run(self.shard_config(shard), stopped)
            .await
            .unwrap_or_else(|error| panic!("shard {shard}: {error}"));
        assert_eq!(report.redelivered, 0);
    }

    /// Runs the system shard until it has answered every claim stored.
    async fn run_system(&self) -> SystemReport {
        let (_stop, stopped) = watch::channel(false);
        system::run(
            SystemConfig {
                servers: vec![self.url.clone()],
                venue_text: venue_text(),
                shards: SHARDS,
                replicas: 1,
                stop_at_end: true,
                poll: Duration::from_millis(100),
                data_dir: None,
                snapshot_every: 1000,
                lease_wait: LeaseWait::Refuse,
            },
            stopped,
        )
        .await
        .expect("the system shard")
    }

    /// Each shard's engine as its newest snapshot holds it.
    fn engines(&self) -> Vec<Engine> {
        (0..SHARDS)
            .map(|shard| {
                let dir = self.dir.join(format!("shard-{shard}"));
                let newest = solvent_store::list_snapshots(&dir)
                    .expect("snapshots")
                    .and_then(|paths| paths.into_iter().next())
                    .expect("a snapshot");
                solvent_store::read_snapshot(&newest).expect("it reads").1
            })
            .collect()
    }

    async fn answers(&self) -> Vec<ClaimAnswer> {
        let js = shard::connect(std::slice::from_ref(&self.url), SHARDS, 1)
            .await
            .expect("connect");
        system::read_answers(&js)
            .await
            .expect("answers")
            .into_iter()
            .map(|(_, answer)| answer)
            .collect()
    }
}

/// Waits until the standby `standby` answers as having taken the lease over, which must be
/// within a lease period (and two seconds) of this call; its report then.
async fn wait_takeover(
    client: &async_nats::Client,
    standby: &tokio::task::JoinHandle<Result<SystemReport, ClusterError>>,
) -> SystemReport {
    let killed = std::time::Instant::now();
    loop {
        if let Ok(Some(report)) = system::report(client).await
            && report.standby.is_some_and(|standby| standby.took_over)
        {
            return report;
        }
        assert!(!standby.is_finished(), "the standby stopped");
        assert!(
            killed.elapsed() <= system::LEASE_TTL + Duration::from_secs(2),
            "no takeover within {:?}",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The cast's two claims, answered as one engine would: the BTC loser's 16,000 covered whole,
/// the ETH loser's 7,500 covered as far as the 4,030 left goes.
async fn assert_the_cast_claims_answered(cluster: &Cluster) {
    let covered: Vec<(Decimal, Decimal)> = cluster
        .answers()
        .await
        .iter()
        .map(|answer| (answer.claimed, answer.covered))
        .collect();
    assert_eq!(
        covered,
        [(dec!(16000), dec!(16000)), (dec!(7500), dec!(4030))]
    );
}

/// Waits until NATS answers.
async fn wait_for(url: &str) {
    for _ in 0..100 {
        if shard::client(&[url.to_owned()]).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("NATS at {url} did not start");
}

fn wallet(engine: &Engine, id: &str) -> Decimal {
    engine
        .ledger()
        .balance(&LedgerAccount::Wallet(id.into()), "USDT")
}

fn ledger(engine: &Engine, account: &LedgerAccount) -> Decimal {
    engine.ledger().balance(account, "USDT")
}

/// Against one engine: every account's balances, the fund, and every sum. The fund is in
/// pieces: the 20,000 deposited, which the system shard holds, and each shard's
/// `insurance_fund` ledger account (the fees it collected less the covers it drew). Money is
/// conserved: every balance but the outside's, per asset, is one engine's.
fn assert_as_one_engine(engines: &[Engine], one: &Engine, report: &SystemReport) {
    let mut cluster_balances: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for engine in engines {
        for (key, amount) in balances(engine) {
            *cluster_balances.entry(key).or_default() += amount;
        }
        assert_eq!(ledger(engine, &LedgerAccount::PendingClaims), dec!(0));
    }
    let fund_key = (INSURANCE_FUND.to_owned(), "USDT".to_owned());
    let pieces = cluster_balances.remove(&fund_key).unwrap_or_default();
    let deposited = dec!(20000);
    let fund = report.fund.get("USDT").copied().unwrap_or_default();
    assert_eq!(
        deposited + pieces,
        fund,
        "the pieces add up to the system shard's fund"
    );
    assert_eq!(fund, ledger(one, &LedgerAccount::InsuranceFund));
    if !fund.is_zero() {
        cluster_balances.insert(fund_key, fund);
    }
    cluster_balances.retain(|_, amount| !amount.is_zero());
    let one_balances = balances(one);
    assert_eq!(cluster_balances, one_balances);
    assert_eq!(per_asset(&cluster_balances), per_asset(&one_balances));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deficit_beyond_its_shards_share_is_met_from_the_one_fund_and_money_is_conserved() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = Cast::new();
    let steps = envelopes(&steps(&cast));
    let all: Vec<Envelope> = steps.iter().flatten().cloned().collect();
    let (one, one_effects) = one_engine(&all);
    let fee: Decimal = one_effects
        .iter()
        .filter_map(|e| match e {
            Effect::Liquidation { account, fee, .. } if *account == cast.payer => Some(fee.value()),
            _ => None,
        })
        .sum();
    assert_eq!(fee, dec!(30), "the payer's liquidation fee");
    let loser_shard = 1 - cast.fund_shard;

    // Step 1: the claim, then the system shard down until it is answered.
    cluster.publish(&steps[0]).await;
    cluster.run_shards().await;
    let engines = cluster.engines();
    let claimant = &engines[loser_shard as usize];
    assert_eq!(wallet(claimant, &cast.btc_loser), dec!(0));
    assert_eq!(
        ledger(claimant, &LedgerAccount::PendingClaims),
        dec!(-16000)
    );
    assert_eq!(ledger(claimant, &LedgerAccount::InsuranceFund), dec!(0));
    for engine in &engines {
        for (asset, total) in engine.ledger().totals() {
            assert!(total.is_zero(), "{asset} sums to {total} while pending");
        }
    }
    let report = cluster.run_system().await;
    assert_eq!((report.claims, report.answers_published), (1, 1));
    assert_eq!(report.deposits_refused, 1);
    assert_eq!(report.fund.get("USDT"), Some(&dec!(4000)));
    // Run again: it finds the answer stored and publishes nothing twice. While it runs, it
    // answers for the fund (and nobody does when it is not running).
    let client = shard::client(std::slice::from_ref(&cluster.url))
        .await
        .expect("a client");
    assert_eq!(system::fund(&client).await.expect("no responder"), None);
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(system::run(
        SystemConfig {
            servers: vec![cluster.url.clone()],
            venue_text: venue_text(),
            shards: SHARDS,
            replicas: 1,
            stop_at_end: false,
            poll: Duration::from_millis(50),
            data_dir: None,
            snapshot_every: 1000,
            lease_wait: LeaseWait::Refuse,
        },
        stopped,
    ));
    let mut seen = None;
    for _ in 0..100 {
        if let Ok(Some(fund)) = system::fund(&client).await
            && !fund.is_empty()
        {
            seen = Some(fund);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.and_then(|fund| fund.get("USDT").copied()),
        Some(dec!(4000))
    );
    let _ = stop.send(true);
    let again = running
        .await
        .expect("the system shard's task")
        .expect("the system shard");
    assert_eq!(
        (again.answers_published, again.answers_already_published),
        (0, 1)
    );
    cluster.run_shards().await;

    // Steps 2 and 3: a liquidation fee on the first claimant's shard feeds the fund, then the
    // second bankruptcy, on the other shard, claims beyond what the fund has left. The
    // claimant's shard runs first, so its claim is stored before the fee in the effect
    // stream: the system shard waits until every shard has recorded its progress past the
    // claim, and then applies the fee first, in input order.
    cluster.publish(&steps[1]).await;
    cluster.publish(&steps[2]).await;
    cluster.run_shard(cast.fund_shard).await;
    let early = cluster.run_system().await;
    assert_eq!(
        early.answers_published, 0,
        "answered before the fee's shard ran"
    );
    assert!(early.effect_messages_waiting > 0);
    cluster.run_shard(loser_shard).await;
    // The fund holds less than the deficit: the system shard asks every shard for candidates
    // to deleverage first (there are none: nobody is short ETH), and answers once every
    // shard has offered.
    let asked = cluster.run_system().await;
    assert_eq!(
        (asked.answers_published, asked.adl_requests_published),
        (0, 1)
    );
    cluster.run_shards().await;
    let report = cluster.run_system().await;
    assert_eq!(
        (
            report.answers_published,
            report.adl_requests_already_published
        ),
        (1, 1)
    );
    assert_eq!(report.adl_shares, 0);
    cluster.run_shards().await;

    let answers = cluster.answers().await;
    let amounts: Vec<_> = answers
        .iter()
        .map(|a| {
            (
                a.claim.shard,
                a.account.as_str(),
                a.claimed,
                a.covered,
                a.fund_before,
            )
        })
        .collect();
    assert_eq!(
        amounts,
        [
            (
                loser_shard,
                cast.btc_loser.as_str(),
                dec!(16000),
                dec!(16000),
                dec!(20000)
            ),
            (
                cast.fund_shard,
                cast.eth_loser.as_str(),
                dec!(7500),
                dec!(4030),
                dec!(4030)
            ),
        ]
    );
    assert_eq!(report.fund.get("USDT"), Some(&dec!(0)));

    let engines = cluster.engines();
    assert_as_one_engine(&engines, &one, &report);
    assert_eq!(wallet(&one, &cast.btc_loser), dec!(0));
    assert_eq!(wallet(&one, &cast.eth_loser), dec!(-3470));

    // A message on the fund subject that is not an answer is refused by every shard, which
    // reads on: it stops none of them.
    let js = shard::connect(std::slice::from_ref(&cluster.url), SHARDS, 1)
        .await
        .expect("connect");
    js.publish(
        solvent_cluster::routing::FUND_SUBJECT,
        "not an answer".into(),
    )
    .await
    .expect("published")
    .await
    .expect("stored");
    cluster.run_shards().await;
    let after: Vec<String> = cluster.engines().iter().map(Engine::state_hash).collect();
    let before: Vec<String> = engines.iter().map(Engine::state_hash).collect();
    assert_eq!(after, before, "a refused message changes no state");
}

/// A stream made before the system shard (no `solvent.fund`, no `solvent.system`) gains their
/// subjects when a shard connects, keeping its messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_before_the_system_shard_gains_its_subjects() {
    use async_nats::jetstream::stream::{Config, StorageType};
    use solvent_cluster::routing::{
        FUND_SUBJECT, INPUT_STREAM, MARKET_SUBJECT, SHARD_SUBJECT_PREFIX, SHARDS_METADATA_KEY,
        SYSTEM_SUBJECT,
    };
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let js = async_nats::jetstream::new(shard::client(&[nats.url()]).await.expect("a client"));
    js.create_stream(Config {
        name: INPUT_STREAM.to_owned(),
        subjects: vec![
            MARKET_SUBJECT.to_owned(),
            format!("{SHARD_SUBJECT_PREFIX}*"),
        ],
        storage: StorageType::File,
        metadata: std::collections::HashMap::from([(
            SHARDS_METADATA_KEY.to_owned(),
            SHARDS.to_string(),
        )]),
        ..Config::default()
    })
    .await
    .expect("the old stream");
    js.publish(MARKET_SUBJECT, "old".into())
        .await
        .expect("published")
        .await
        .expect("stored");
    let js = shard::connect(&[nats.url()], SHARDS, 1)
        .await
        .expect("connect");
    let mut stream = js.get_stream(INPUT_STREAM).await.expect("the stream");
    let info = stream.info().await.expect("its info");
    for subject in [FUND_SUBJECT, SYSTEM_SUBJECT] {
        assert!(
            info.config.subjects.iter().any(|held| held == subject),
            "{subject} missing from {:?}",
            info.config.subjects
        );
    }
    assert_eq!(info.state.messages, 1, "the old message is kept");
}

/// Everything running, as in production: the shards and the system shard read on, none stops
/// at the end. The shards record their progress when idle, so the claim is answered and
/// applied without anything being restarted; the books then equal one engine's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_shards_record_their_progress_and_the_claim_is_answered_live() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = Cast::new();
    let steps = envelopes(&steps(&cast));
    // The connection makes the streams before anyone reads them.
    shard::connect(std::slice::from_ref(&cluster.url), SHARDS, 1)
        .await
        .expect("connect");
    let (stop, stopped) = watch::channel(false);
    // A shard's future holds its engine across its awaits (it is not `Send`): everything runs
    // on this task, side by side.
    let shards = futures_util::future::join_all((0..SHARDS).map(|shard| {
        let config = ShardConfig {
            stop_at_end: false,
            ..cluster.shard_config(shard)
        };
        shard::run(config, stopped.clone())
    }));
    let system = system::run(
        SystemConfig {
            servers: vec![cluster.url.clone()],
            venue_text: venue_text(),
            shards: SHARDS,
            replicas: 1,
            stop_at_end: false,
            poll: Duration::from_millis(50),
            data_dir: None,
            snapshot_every: 1000,
            lease_wait: LeaseWait::Refuse,
        },
        stopped.clone(),
    );
    let loser_shard = 1 - cast.fund_shard;
    let check = async {
        cluster.publish(&steps[0]).await;
        let client = shard::client(std::slice::from_ref(&cluster.url))
            .await
            .expect("a client");
        let js = shard::connect(std::slice::from_ref(&cluster.url), SHARDS, 1)
            .await
            .expect("connect");
        let mut settled = false;
        for _ in 0..200 {
            // Once answered, the answer is the stream's last message: settled when the
            // claimant's shard has applied it.
            if !cluster.answers().await.is_empty() {
                let mut stream = js
                    .get_stream(solvent_cluster::routing::INPUT_STREAM)
                    .await
                    .expect("the stream");
                let last = stream.info().await.expect("its info").state.last_sequence;
                let applied = solvent_cluster::query::statuses(&client, SHARDS)
                    .await
                    .ok()
                    .and_then(|statuses| statuses.get(loser_shard as usize)?.last_stream_seq);
                if applied == Some(last) {
                    settled = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop.send(true);
        settled
    };
    let (shards, system, settled) = tokio::join!(shards, system, check);
    assert!(
        settled,
        "the claim was not answered and applied while running"
    );
    for (shard, result) in shards.into_iter().enumerate() {
        result.unwrap_or_else(|error| panic!("shard {shard}: {error}"));
    }
    let report = system.expect("the system shard");
    assert_eq!(report.fund.get("USDT"), Some(&dec!(4000)));
    assert_eq!(report.answers_published, 1);
    let all: Vec<Envelope> = steps[0].clone();
    let (one, _) = one_engine(&all);
    let engines = cluster.engines();
    assert_eq!(
        wallet(&engines[loser_shard as usize], &cast.btc_loser),
        wallet(&one, &cast.btc_loser)
    );
    assert_eq!(
        ledger(
            &engines[loser_shard as usize],
            &LedgerAccount::PendingClaims
        ),
        dec!(0)
    );
}

/// The accounts of the auto-deleveraging test: the bankrupt long and the first short on one
/// shard, the other two shorts on the other.
struct AdlCast {
    loser_shard: u32,
    loser: String,
    first: String,
    second: String,
    third: String,
}

impl AdlCast {
    fn new() -> Self {
        let loser = account_on("adl-loser", |_| true);
        let loser_shard = shard_of(&loser, SHARDS);
        Self {
            loser_shard,
            first: account_on("adl-first", |k| k == loser_shard),
            second: account_on("adl-second", |k| k != loser_shard),
            third: account_on("adl-third", |k| k != loser_shard),
            loser,
        }
    }

    fn shorts(&self) -> [&str; 3] {
        [&self.first, &self.second, &self.third]
    }
}

/// The fund's 1,000; the loser long 1 BTCUSDT from 60,000 on 4,000; three shorts sold to the
/// market at 60,000: 0.6 on 10,000, 0.3 on 3,000 and 2 on 1,000,000; BTC at 40,000
/// (confirmed). The loser is bankrupt by 16,000, beyond the fund: one engine closes its long
/// at the bankruptcy price, 4,000 / 1 above... 60,000 - 4,000 = 56,000, against the shorts in
/// profit ranked by profit x notional / equity: the first (12,000 x 24,000 / 22,000 = 13,091)
/// takes 0.6, the second (6,000 x 12,000 / 9,000 = 8,000) 0.3, the third (40,000 x 80,000 /
/// 1,040,000 = 3,077) the last 0.1.
fn adl_events(cast: &AdlCast) -> Vec<Envelope> {
    envelopes(&[adl_bodies(cast)])
        .into_iter()
        .flatten()
        .collect()
}

/// The bodies of [`adl_events`].
fn adl_bodies(cast: &AdlCast) -> Vec<String> {
    let index = r#""type":"index_price","underlying":"BTC","price":"#;
    let deposit = |account: &str, amount: &str| {
        format!(r#""type":"deposit","account":"{account}","asset":"USDT","amount":"{amount}""#)
    };
    let fill = |account: &str, side: &str, size: &str| {
        format!(
            r#""type":"fill","account":"{account}","instrument":"BTCUSDT","side":"{side}","size":"{size}","price":"60000","counterparty":"external""#
        )
    };
    let mut bodies = vec![
        format!(r#"{index}"60000""#),
        deposit(INSURANCE_FUND, "1000"),
        deposit(&cast.loser, "4000"),
        fill(&cast.loser, "buy", "1"),
    ];
    for (account, amount, size) in [
        (&cast.first, "10000", "0.6"),
        (&cast.second, "3000", "0.3"),
        (&cast.third, "1000000", "2"),
    ] {
        bodies.push(deposit(account, amount));
        bodies.push(fill(account, "sell", size));
    }
    bodies.extend((0..4).map(|_| format!(r#"{index}"40000""#)));
    bodies
}

fn position(engine: &Engine, id: &str) -> Decimal {
    engine
        .accounts()
        .get(id)
        .and_then(|account| account.positions.get("BTCUSDT"))
        .map_or(Decimal::ZERO, |p| p.size)
}

/// Within a millionth of a USDT: one engine trades at the bankruptcy price its solver finds,
/// the cluster at the mark plus each share of the deficit, which is the same up to the
/// solver's precision.
fn close(a: Decimal, b: Decimal) -> bool {
    (a - b).abs() <= dec!(0.000001)
}

/// Auto-deleveraging across shards (issue 13 item 3): a deficit beyond the fund on one shard is
/// borne by the shorts in profit of both, as one engine ranks them. The system shard asks every
/// shard for its candidates (a request on the fund subject), merges their offers, and answers
/// with the assignments; each shard applies its own at the answer's place in the stream.
///
/// Checked against one engine on the same events: the assignments (accounts, sizes, the
/// bankruptcy price), every account's wallet and position, the fund; and conservation: the
/// contracts the loser closed are the contracts the shorts gave up, the money the shorts paid
/// is the money the loser's shard received (the shards' `insurance_fund` ledger accounts,
/// through which it passes, add up to the system shard's fund less its deposits), every
/// shard's books balance and nothing is left pending. A shard replayed from the stream alone
/// (its data directory removed) ends in the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deficit_beyond_the_fund_is_deleveraged_across_shards_as_one_engine_does() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = AdlCast::new();
    let events = adl_events(&cast);
    let (one, one_effects) = one_engine(&events);
    let one_adl: Vec<(String, Decimal, Decimal)> = one_effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Adl {
                account,
                counterparty,
                size,
                price,
                ..
            } if *account == cast.loser => {
                Some((counterparty.clone(), size.value(), price.value()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        one_adl
            .iter()
            .map(|(account, size, _)| (account.as_str(), *size))
            .collect::<Vec<_>>(),
        [
            (cast.first.as_str(), dec!(0.6)),
            (cast.second.as_str(), dec!(0.3)),
            (cast.third.as_str(), dec!(0.1)),
        ],
        "one engine's ranking"
    );

    cluster.publish(&events).await;
    cluster.run_shards().await;
    let asked = cluster.run_system().await;
    assert_eq!(
        (asked.adl_requests_published, asked.answers_published),
        (1, 0)
    );
    // The loser's deficit is pending while the shards offer.
    let engines = cluster.engines();
    assert_eq!(
        ledger(
            &engines[cast.loser_shard as usize],
            &LedgerAccount::PendingClaims
        ),
        dec!(-16000)
    );
    cluster.run_shards().await;
    let answered = cluster.run_system().await;
    assert_eq!((answered.answers_published, answered.adl_shares), (1, 3));
    cluster.run_shards().await;

    let answers = cluster.answers().await;
    let [answer] = answers.as_slice() else {
        panic!("one answer: {answers:?}");
    };
    assert_eq!((answer.claimed, answer.covered), (dec!(16000), dec!(0)));
    let shares: Vec<(u32, &str, Decimal, Decimal, Decimal)> = answer
        .adl
        .iter()
        .map(|s| (s.shard, s.account.as_str(), s.size, s.price, s.paid))
        .collect();
    let other = 1 - cast.loser_shard;
    assert_eq!(
        shares,
        [
            (
                cast.loser_shard,
                cast.first.as_str(),
                dec!(0.6),
                dec!(56000),
                dec!(9600)
            ),
            (
                other,
                cast.second.as_str(),
                dec!(0.3),
                dec!(56000),
                dec!(4800)
            ),
            (
                other,
                cast.third.as_str(),
                dec!(0.1),
                dec!(56000),
                dec!(1600)
            ),
        ]
    );
    for (share, (_, _, price)) in answer.adl.iter().zip(&one_adl) {
        assert!(close(share.price, *price), "{} vs {price}", share.price);
    }

    // Every account as one engine leaves it.
    let engines = cluster.engines();
    let holder = |id: &str| &engines[shard_of(id, SHARDS) as usize];
    for id in [cast.loser.as_str()].into_iter().chain(cast.shorts()) {
        let (cluster_wallet, one_wallet) = (wallet(holder(id), id), wallet(&one, id));
        assert!(
            close(cluster_wallet, one_wallet),
            "{id}: {cluster_wallet} vs {one_wallet}"
        );
        assert_eq!(position(holder(id), id), position(&one, id), "{id}");
    }
    assert_eq!(wallet(holder(&cast.loser), &cast.loser), dec!(0));
    assert_eq!(position(holder(&cast.third), &cast.third), dec!(-1.9));

    // Conservation. Contracts: the loser closed 1, the shorts gave up 1 between them.
    let given_up: Decimal = cast
        .shorts()
        .iter()
        .zip([dec!(-0.6), dec!(-0.3), dec!(-2)])
        .map(|(id, sold)| position(holder(id), id) - sold)
        .sum();
    assert_eq!(given_up, dec!(-1) * dec!(-1));
    assert_eq!(answer.adl.iter().map(|s| s.size).sum::<Decimal>(), dec!(1));
    // Money: each shard's books balance, nothing is pending, and what passed between the
    // shards through their `insurance_fund` accounts sums to nothing: the fund is its 1,000.
    let mut pieces = Decimal::ZERO;
    for engine in &engines {
        for (asset, total) in engine.ledger().totals() {
            assert!(total.is_zero(), "{asset} sums to {total}");
        }
        assert_eq!(ledger(engine, &LedgerAccount::PendingClaims), dec!(0));
        pieces += ledger(engine, &LedgerAccount::InsuranceFund);
    }
    assert_eq!(
        ledger(
            &engines[cast.loser_shard as usize],
            &LedgerAccount::InsuranceFund
        ),
        dec!(-16000) + dec!(9600),
        "the loser's shard received 16,000 and its first short paid 9,600 of it"
    );
    assert_eq!(pieces, dec!(0));
    assert_eq!(answered.fund.get("USDT"), Some(&dec!(1000)));
    assert_eq!(ledger(&one, &LedgerAccount::InsuranceFund), dec!(1000));
    // Every balance but the outside's, per asset, as one engine's.
    let mut cluster_balances: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for engine in &engines {
        for (key, amount) in balances(engine) {
            *cluster_balances.entry(key).or_default() += amount;
        }
    }
    let fund_key = (INSURANCE_FUND.to_owned(), "USDT".to_owned());
    cluster_balances.insert(fund_key, dec!(1000));
    let (ours, theirs) = (per_asset(&cluster_balances), per_asset(&balances(&one)));
    for (asset, amount) in &theirs {
        let got = ours.get(asset).copied().unwrap_or_default();
        assert!(close(got, *amount), "{asset}: {got} vs {amount}");
    }

    // Deterministic on replay: the other shard, its data directory removed, replays the
    // stream (offers, the answer's shares) to the same state.
    let before = engines[other as usize].state_hash();
    std::fs::remove_dir_all(scratch.path().join(format!("shard-{other}"))).expect("removed");
    cluster.run_shard(other).await;
    assert_eq!(cluster.engines()[other as usize].state_hash(), before);
}

impl Cluster {
    fn system_config(&self, stop_at_end: bool, data_dir: Option<PathBuf>) -> SystemConfig {
        SystemConfig {
            servers: vec![self.url.clone()],
            venue_text: venue_text(),
            shards: SHARDS,
            replicas: 1,
            stop_at_end,
            poll: Duration::from_millis(50),
            data_dir,
            snapshot_every: 1,
            lease_wait: LeaseWait::Refuse,
        }
    }

    /// A system shard started in a task of its own, running until its stop is sent.
    fn start_system(
        &self,
        lease_wait: LeaseWait,
    ) -> (
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<SystemReport, ClusterError>>,
    ) {
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(system::run(
            SystemConfig {
                lease_wait,
                ..self.system_config(false, None)
            },
            stopped,
        ));
        (stop, running)
    }

    async fn run_system_in(&self, data_dir: Option<PathBuf>) -> SystemReport {
        let (_stop, stopped) = watch::channel(false);
        system::run(self.system_config(true, data_dir), stopped)
            .await
            .expect("the system shard")
    }
}

/// System-shard snapshots (issue 13 item 3): the system shard, killed (its task aborted, no
/// last snapshot) after it asked for candidates for the second claim, recovers from its newest
/// snapshot and reads only the streams' tail; it answers what was left, publishes nothing
/// twice, and its fund hashes as that of a system shard that read the streams from their
/// start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_system_shard_recovers_from_its_snapshot_and_the_streams_tail() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let system_dir = scratch.path().join("system");
    let cast = Cast::new();
    let steps = envelopes(&steps(&cast));

    // The first claim, answered; the system shard's snapshot written at the end.
    cluster.publish(&steps[0]).await;
    cluster.run_shards().await;
    let first = cluster.run_system_in(Some(system_dir.clone())).await;
    assert_eq!((first.answers_published, first.recovered_from), (1, None));
    assert!(first.snapshots_written > 0);
    cluster.run_shards().await;

    // The fee and the second bankruptcy; the system shard runs until it has asked for
    // candidates, and is killed.
    cluster.publish(&steps[1]).await;
    cluster.publish(&steps[2]).await;
    cluster.run_shards().await;
    let (_stop, stopped) = watch::channel(false);
    let running = tokio::spawn(system::run(
        cluster.system_config(false, Some(system_dir.clone())),
        stopped,
    ));
    let js = shard::connect(std::slice::from_ref(&cluster.url), SHARDS, 1)
        .await
        .expect("connect");
    let mut asked = false;
    for _ in 0..200 {
        let messages = system::read_fund_messages(&js, 0).await.expect("read");
        if messages
            .iter()
            .any(|(_, message)| matches!(message, system::FundMessage::Request(_)))
        {
            asked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.abort();
    let _ = running.await;
    assert!(asked, "the system shard asked for candidates");

    // The shards offer; the system shard restarts from its snapshot.
    cluster.run_shards().await;
    let recovered = cluster.run_system_in(Some(system_dir.clone())).await;
    assert!(recovered.recovered_from.is_some(), "{recovered:?}");
    assert!(recovered.skipped_snapshots.is_empty());
    assert_eq!(recovered.answers_published, 1, "{recovered:?}");
    assert_eq!(recovered.adl_requests_published, 0, "asked once only");
    let total = effects_stored(&js).await;
    assert!(
        recovered.effect_messages < total,
        "read {} of the {total} effect messages: the tail only",
        recovered.effect_messages
    );
    cluster.run_shards().await;

    // As a system shard that reads everything from the start, which finds every answer
    // published.
    let scratch_run = cluster.run_system_in(None).await;
    assert_eq!(
        (
            scratch_run.answers_published,
            scratch_run.answers_already_published
        ),
        (0, 2)
    );
    assert_eq!(recovered.fund.get("USDT"), Some(&dec!(0)));
    assert_the_cast_claims_answered(&cluster).await;
    // From the snapshot again, over the same input as the run from the start: only the tail
    // read (the effects of the answer's application), nothing answered, the same fund.
    let again = cluster.run_system_in(Some(system_dir)).await;
    assert_eq!((again.answers_published, again.claims), (0, 0));
    assert_eq!(again.effect_messages, 1, "{again:?}");
    assert_eq!(scratch_run.effect_messages, effects_stored(&js).await);
    assert_eq!(again.fund_hash, scratch_run.fund_hash);
}

/// The effect messages the effect stream holds.
async fn effects_stored(js: &async_nats::jetstream::Context) -> u64 {
    solvent_cluster::effects::read_all(js, None)
        .await
        .expect("the effects")
        .len() as u64
}

/// A counterparty that changes between its shard's offer and the answer (issue 13, scale-out
/// gap 2): the second short buys 0.2 of its 0.3 back after offering, so when the answer reaches
/// its shard it takes the 0.1 it holds and pays 4,800 x 0.1 / 0.3 = 1,600 of its 4,800. The
/// claimant's shard received the whole 16,000: its shard advances the 3,200 not paid and
/// claims it again with the 0.2 contracts not taken, at the same bankruptcy price. The fund
/// (1,000) is short of it, so the system shard asks for candidates a second time: the first
/// two shorts hold nothing now, the third takes the 0.2 and pays the 3,200. The fund never
/// goes below its 1,000; every shard's books balance with nothing pending; the shards' pieces
/// of the fund sum to nothing (deposits + pieces = the fund); and replayed from the stream
/// alone, the counterparty's shard ends in the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counterparty_that_reduced_its_position_before_the_answer_leaves_the_rest_to_a_second_round()
 {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = AdlCast::new();
    let events = adl_events(&cast);
    let mut funds = Vec::new();
    cluster.publish(&events).await;
    cluster.run_shards().await;
    funds.push(cluster.run_system().await.fund);
    cluster.run_shards().await;
    // After the offers, before the answer.
    let seq = events.len() + 1;
    let body = format!(
        r#""type":"fill","account":"{}","instrument":"BTCUSDT","side":"buy","size":"0.2","price":"40000","counterparty":"external""#,
        cast.second
    );
    let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T00:10:00Z",{body}}}"#);
    cluster
        .publish(&[parse_line("race", seq, &line).expect("an event")])
        .await;
    let other = 1 - cast.loser_shard;
    cluster.run_shard(other).await;
    let answered = cluster.run_system().await;
    assert_eq!((answered.answers_published, answered.adl_shares), (1, 3));
    funds.push(answered.fund);
    cluster.run_shards().await;
    // The remainder, claimed by the second short's shard: candidates asked for again.
    let again = cluster.run_system().await;
    assert_eq!(
        (again.adl_requests_published, again.answers_published),
        (1, 0),
        "{again:?}"
    );
    funds.push(again.fund);
    cluster.run_shards().await;
    let last = cluster.run_system().await;
    assert_eq!(
        (last.answers_published, last.adl_shares),
        (1, 4),
        "{last:?}"
    );
    funds.push(last.fund);
    cluster.run_shards().await;
    let settled = cluster.run_system().await;
    funds.push(settled.fund.clone());
    for fund in &funds {
        let usdt = fund.get("USDT").copied().unwrap_or_default();
        assert!(usdt >= dec!(0), "the fund went below zero: {funds:?}");
    }
    assert_eq!(settled.fund.get("USDT"), Some(&dec!(1000)));

    let answers = cluster.answers().await;
    let [_, remainder] = answers.as_slice() else {
        panic!("two answers: {answers:?}");
    };
    assert!(remainder.remainder);
    assert_eq!(remainder.claim.shard, other);
    assert_eq!(
        (
            remainder.account.as_str(),
            remainder.claimed,
            remainder.covered
        ),
        (cast.loser.as_str(), dec!(3200), dec!(0))
    );
    assert_eq!(
        remainder
            .adl
            .iter()
            .map(|s| (s.account.as_str(), s.size, s.price, s.paid))
            .collect::<Vec<_>>(),
        [(cast.third.as_str(), dec!(0.2), dec!(56000), dec!(3200))]
    );

    let engines = cluster.engines();
    let holder = |id: &str| &engines[shard_of(id, SHARDS) as usize];
    assert_eq!(position(holder(&cast.second), &cast.second), dec!(0));
    assert_eq!(position(holder(&cast.first), &cast.first), dec!(0));
    assert_eq!(position(holder(&cast.third), &cast.third), dec!(-1.7));
    // 3,000 + 0.2 x 20,000 (bought back) + 0.1 x 20,000 - 1,600.
    assert_eq!(
        wallet(holder(&cast.second), &cast.second),
        dec!(3000) + dec!(4000) + dec!(2000) - dec!(1600)
    );
    // 1,000,000 + 0.3 x 20,000 - 1,600 - 3,200: 0.3 at the bankruptcy price of 56,000.
    assert_eq!(
        wallet(holder(&cast.third), &cast.third),
        dec!(1000000) + dec!(6000) - dec!(4800)
    );
    assert_eq!(wallet(holder(&cast.loser), &cast.loser), dec!(0));
    let mut pieces = Decimal::ZERO;
    for engine in &engines {
        for (asset, total) in engine.ledger().totals() {
            assert!(total.is_zero(), "{asset} sums to {total}");
        }
        assert_eq!(ledger(engine, &LedgerAccount::PendingClaims), dec!(0));
        pieces += ledger(engine, &LedgerAccount::InsuranceFund);
    }
    assert_eq!(pieces, dec!(0));
    assert_eq!(
        dec!(1000) + pieces,
        dec!(1000),
        "deposits + pieces = the fund"
    );

    // Deterministic on replay: the counterparties' shard, its data directory removed,
    // replays the stream (both rounds) to the same state.
    let before = engines[other as usize].state_hash();
    std::fs::remove_dir_all(scratch.path().join(format!("shard-{other}"))).expect("removed");
    cluster.run_shard(other).await;
    assert_eq!(cluster.engines()[other as usize].state_hash(), before);
}

/// Every counterparty closed its position between the offers and the answer (issue 13,
/// scale-out gap 2): each takes nothing, and each share's payment (9,600, 4,800, 1,600) is
/// claimed again by its shard with its contracts. A second round of offers finds no short in
/// profit: the fund covers what it holds (1,000, the first remainder in input order), never
/// going below zero, and the rest (15,000) is the bankrupt account's debt, taken on its own
/// shard as one engine leaves a deficit nothing can bear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remainder_nobody_can_take_is_covered_by_the_fund_then_the_bankrupts_debt() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = AdlCast::new();
    let events = adl_events(&cast);
    cluster.publish(&events).await;
    cluster.run_shards().await;
    cluster.run_system().await;
    cluster.run_shards().await;
    // After the offers, before the answer: every short closes.
    let mut seq = events.len();
    let mut closing = Vec::new();
    for (id, size) in [
        (&cast.first, "0.6"),
        (&cast.second, "0.3"),
        (&cast.third, "2"),
    ] {
        seq += 1;
        let line = format!(
            r#"{{"seq":{seq},"ts":"2026-01-01T00:10:{seq:02}Z","type":"fill","account":"{id}","instrument":"BTCUSDT","side":"buy","size":"{size}","price":"40000","counterparty":"external"}}"#
        );
        closing.push(parse_line("race", seq, &line).expect("an event"));
    }
    cluster.publish(&closing).await;
    cluster.run_shards().await;
    let mut funds = Vec::new();
    for _ in 0..4 {
        let report = cluster.run_system().await;
        funds.push(report.fund.get("USDT").copied().unwrap_or_default());
        cluster.run_shards().await;
    }
    assert!(funds.iter().all(|fund| *fund >= dec!(0)), "{funds:?}");
    assert_eq!(funds.last(), Some(&dec!(0)));
    let answers = cluster.answers().await;
    // The first answer (three shares, none taken), then one remainder claim per shard that
    // had a counterparty: each with no candidate, covered as far as the fund goes.
    let remainders: Vec<(Decimal, Decimal)> = answers
        .iter()
        .filter(|answer| answer.remainder)
        .map(|answer| (answer.claimed, answer.covered))
        .collect();
    let claimed: Decimal = remainders.iter().map(|(claimed, _)| *claimed).sum();
    let covered: Decimal = remainders.iter().map(|(_, covered)| *covered).sum();
    assert_eq!(claimed, dec!(16000), "{remainders:?}");
    assert_eq!(covered, dec!(1000), "{remainders:?}");
    let engines = cluster.engines();
    let holder = |id: &str| &engines[shard_of(id, SHARDS) as usize];
    assert_eq!(
        wallet(holder(&cast.loser), &cast.loser),
        dec!(-15000),
        "the rest is the bankrupt account's debt"
    );
    let mut pieces = Decimal::ZERO;
    for engine in &engines {
        for (asset, total) in engine.ledger().totals() {
            assert!(total.is_zero(), "{asset} sums to {total}");
        }
        assert_eq!(ledger(engine, &LedgerAccount::PendingClaims), dec!(0));
        pieces += ledger(engine, &LedgerAccount::InsuranceFund);
    }
    assert_eq!(dec!(1000) + pieces, dec!(0), "deposits + pieces = the fund");
}

/// The default venue with `deficits = "socialise"`.
fn socialising_venue() -> String {
    venue_text().replacen("[venue]\n", "[venue]\ndeficits = \"socialise\"\n", 1)
}

/// `deficits = "socialise"` with the fund on the system shard (issue 13 item 3): the loser of
/// the auto-deleveraging test, bankrupt by 16,000 with 1,000 in the fund, on a venue that
/// shares deficits. One engine: the fund pays its 1,000 and the shorts in profit (12,000,
/// 6,000 and 40,000: 58,000) share the 15,000 left pro rata, rounded down to 6 decimals
/// (3,103.448275, 1,551.724137, 10,344.827586: 14,999.999998), the two units left to the
/// largest profits (the third's, then the first's). The cluster: the system shard covers the
/// 1,000, asks every shard for its positions in profit, shares the rest by the same rule
/// (`share_deficit`) and each shard takes its accounts' shares: every wallet is one engine's to
/// the unit, nobody is deleveraged, and the money is conserved (deposits + the shards' pieces
/// = the fund = 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socialising_venue_shares_a_deficit_beyond_the_fund_across_shards_as_one_engine() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = AdlCast::new();
    let events = adl_events(&cast);
    let venue = solvent_core::venue::Venue::from_toml("socialising", &socialising_venue())
        .expect("the venue");
    let mut one = Engine::new(venue, EngineConfig::default());
    let mut one_effects = Vec::new();
    for envelope in &events {
        one_effects.extend(one.apply(envelope));
    }
    assert!(!one_effects.iter().any(|e| matches!(e, Effect::Adl { .. })));
    assert_eq!(
        wallet(&one, &cast.third),
        dec!(1000000) - dec!(10344.827587)
    );

    let run_shards = || async {
        for shard in 0..SHARDS {
            let (_stop, stopped) = watch::channel(false);
            let config = ShardConfig {
                venue_text: socialising_venue(),
                ..cluster.shard_config(shard)
            };
            shard::run(config, stopped)
                .await
                .unwrap_or_else(|error| panic!("shard {shard}: {error}"));
        }
    };
    let run_system = || async {
        let (_stop, stopped) = watch::channel(false);
        let config = SystemConfig {
            venue_text: socialising_venue(),
            ..cluster.system_config(true, None)
        };
        system::run(config, stopped)
            .await
            .expect("the system shard")
    };
    cluster.publish(&events).await;
    run_shards().await;
    let asked = run_system().await;
    assert_eq!(
        (asked.answers_published, asked.fund.get("USDT")),
        (0, Some(&dec!(0)))
    );
    run_shards().await;
    let answered = run_system().await;
    assert_eq!(
        (
            answered.answers_published,
            answered.socialised_shares,
            answered.adl_shares
        ),
        (1, 3, 0)
    );
    run_shards().await;

    let answers = cluster.answers().await;
    let [answer] = answers.as_slice() else {
        panic!("one answer: {answers:?}");
    };
    assert_eq!(
        (answer.claimed, answer.covered, answer.fund_before),
        (dec!(16000), dec!(1000), dec!(1000))
    );
    assert_eq!(answer.socialised_paid(), dec!(15000));
    let engines = cluster.engines();
    let holder = |id: &str| &engines[shard_of(id, SHARDS) as usize];
    for id in [cast.loser.as_str()].into_iter().chain(cast.shorts()) {
        assert_eq!(wallet(holder(id), id), wallet(&one, id), "{id}");
        assert_eq!(position(holder(id), id), position(&one, id), "{id}");
    }
    let mut pieces = Decimal::ZERO;
    for engine in &engines {
        for (asset, total) in engine.ledger().totals() {
            assert!(total.is_zero(), "{asset} sums to {total}");
        }
        assert_eq!(ledger(engine, &LedgerAccount::PendingClaims), dec!(0));
        pieces += ledger(engine, &LedgerAccount::InsuranceFund);
    }
    assert_eq!(dec!(1000) + pieces, dec!(0));
    assert_eq!(answered.fund.get("USDT"), Some(&dec!(0)));
    assert_eq!(ledger(&one, &LedgerAccount::InsuranceFund), dec!(0));
}

/// Runs the three phases of a cross-shard deleveraging (the claim, the offers, the answer's
/// shares) and checks the result against one engine over the same `events`: the `adl` trades
/// (counterparty, size, bankruptcy price), every account of `cast` (its `asset` wallet within
/// `tolerance`, its `instrument` position exactly), each shard's books balanced with nothing
/// pending, and the fund unchanged: what passed between the shards through their
/// `insurance_fund` ledger accounts sums to nothing. Returns the answer.
async fn deleveraged_as_one_engine(
    cluster: &Cluster,
    cast: &AdlCast,
    events: &[Envelope],
    instrument: &str,
    asset: &str,
    tolerance: Decimal,
) -> ClaimAnswer {
    let (one, one_effects) = one_engine(events);
    let trades = |effects: &[Effect]| -> Vec<(String, Decimal, Decimal)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Adl {
                    account,
                    counterparty,
                    size,
                    price,
                    ..
                } if *account == cast.loser => {
                    Some((counterparty.clone(), size.value(), price.value()))
                }
                _ => None,
            })
            .collect()
    };
    let one_adl = trades(&one_effects);
    assert!(!one_adl.is_empty(), "one engine deleverages");

    cluster.publish(events).await;
    cluster.run_shards().await;
    let asked = cluster.run_system().await;
    assert_eq!(
        (asked.adl_requests_published, asked.answers_published),
        (1, 0),
        "{asked:?}"
    );
    cluster.run_shards().await;
    let answered = cluster.run_system().await;
    assert_eq!(answered.answers_published, 1);
    let before = answered.fund.clone();
    cluster.run_shards().await;

    // The trades, as the shards' effects report them, are one engine's.
    let js = shard::connect(std::slice::from_ref(&cluster.url), SHARDS, 1)
        .await
        .expect("connect");
    let mut cluster_adl = Vec::new();
    for message in solvent_cluster::effects::read_all(&js, None)
        .await
        .expect("the effects")
    {
        for line in &message.lines {
            let value: serde_json::Value = serde_json::from_str(line).expect("json");
            if value["type"] == "adl" && value["account"] == cast.loser.as_str() {
                let decimal = |field: &str| {
                    value[field]
                        .as_str()
                        .and_then(|text| text.parse::<Decimal>().ok())
                        .expect("a decimal")
                };
                cluster_adl.push((
                    value["counterparty"].as_str().expect("an id").to_owned(),
                    decimal("size"),
                    decimal("price"),
                ));
            }
        }
    }
    assert_eq!(
        cluster_adl, one_adl,
        "the adl trades, bankruptcy price included"
    );

    let engines = cluster.engines();
    let holder = |id: &str| &engines[shard_of(id, SHARDS) as usize];
    for id in [cast.loser.as_str()].into_iter().chain(cast.shorts()) {
        let ours = holder(id)
            .ledger()
            .balance(&LedgerAccount::Wallet(id.into()), asset);
        let theirs = one
            .ledger()
            .balance(&LedgerAccount::Wallet(id.into()), asset);
        assert!(
            (ours - theirs).abs() <= tolerance,
            "{id}: {ours} vs {theirs}"
        );
        let held = |engine: &Engine| {
            engine
                .accounts()
                .get(id)
                .and_then(|account| account.positions.get(instrument))
                .map_or(Decimal::ZERO, |p| p.size)
        };
        assert_eq!(held(holder(id)), held(&one), "{id}");
    }
    let mut pieces = Decimal::ZERO;
    for engine in &engines {
        for (asset, total) in engine.ledger().totals() {
            assert!(total.is_zero(), "{asset} sums to {total}");
        }
        assert_eq!(
            engine
                .ledger()
                .balance(&LedgerAccount::PendingClaims, asset),
            dec!(0)
        );
        pieces += engine
            .ledger()
            .balance(&LedgerAccount::InsuranceFund, asset);
    }
    assert_eq!(pieces, dec!(0), "the shards' pieces of the fund");
    assert_eq!(
        before.get(asset),
        Some(&one.ledger().balance(&LedgerAccount::InsuranceFund, asset)),
        "the fund, untouched"
    );
    let answers = cluster.answers().await;
    let [answer] = answers.as_slice() else {
        panic!("one answer: {answers:?}");
    };
    answer.clone()
}

/// An isolated position's bankruptcy (issue 13, scale-out gap 1): the loser's long of 1
/// BTCUSDT from 60,000 has 4,000 of isolated margin, and its wallet keeps 6,000 beside it. At
/// 40,000 the position's margin is short by 16,000, beyond the fund's 1,000: one engine
/// deleverages it at its bankruptcy price (56,000) against the shorts of the auto-deleveraging
/// test, and the wallet's 6,000 is untouched. The account shard closes it at the mark and
/// claims the margin's deficit with the position (no `liquidation` effect tells the system
/// shard which: the claim does); across shards the trades, the wallets and the fund are one
/// engine's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_bankruptcy_is_deleveraged_across_shards_as_one_engine_does() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = AdlCast::new();
    let mut bodies = adl_bodies(&cast);
    // The loser deposits 10,000 instead of 4,000 and isolates 4,000 of it on its long.
    let loser_deposit = bodies
        .iter()
        .position(|body| body.contains(&cast.loser) && body.contains("deposit"))
        .expect("the loser's deposit");
    bodies[loser_deposit] = bodies[loser_deposit].replace("\"4000\"", "\"10000\"");
    bodies.insert(
        loser_deposit + 2,
        format!(
            r#""type":"set_isolated_margin","account":"{}","instrument":"BTCUSDT","amount":"4000""#,
            cast.loser
        ),
    );
    let events: Vec<Envelope> = envelopes(&[bodies]).into_iter().flatten().collect();
    let answer =
        deleveraged_as_one_engine(&cluster, &cast, &events, "BTCUSDT", "USDT", dec!(0.000001))
            .await;
    assert!(answer.returned, "an isolated position's claim");
    assert_eq!((answer.claimed, answer.covered), (dec!(16000), dec!(0)));
    assert!(answer.adl.iter().all(|share| share.price == dec!(56000)));
    let engines = cluster.engines();
    assert_eq!(
        wallet(&engines[cast.loser_shard as usize], &cast.loser),
        dec!(6000),
        "the wallet beside the isolated margin is untouched"
    );
}

/// An inverse contract's bankruptcy (issue 13, scale-out gap 1): the loser is long 60,000 USD
/// of BTC-PERPETUAL from 60,000 on 0.1 BTC; BTC falls to 40,000: 60,000 x (1/60,000 -
/// 1/40,000) = -0.5 BTC, a deficit of 0.4 BTC beyond the fund's 0.01. The bankruptcy price
/// solves 0.1 + 60,000 x (1/60,000 - 1/p) = 0: p = 60,000 / 1.1 = 54,545.45..., not the mark.
/// The shorts (36,000 USD on 1 BTC, 18,000 on 0.3, 120,000 on 20) take it over as one engine
/// ranks them; trades, wallets and the fund as one engine's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inverse_bankruptcy_is_deleveraged_across_shards_at_its_bankruptcy_price() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let cast = AdlCast::new();
    let index =
        |price: &str| format!(r#""type":"index_price","underlying":"BTC","price":"{price}""#);
    let deposit = |account: &str, amount: &str| {
        format!(r#""type":"deposit","account":"{account}","asset":"BTC","amount":"{amount}""#)
    };
    let fill = |account: &str, side: &str, size: &str| {
        format!(
            r#""type":"fill","account":"{account}","instrument":"BTC-PERPETUAL","side":"{side}","size":"{size}","price":"60000","counterparty":"external""#
        )
    };
    let mut bodies = vec![
        index("60000"),
        deposit(INSURANCE_FUND, "0.01"),
        deposit(&cast.loser, "0.1"),
        fill(&cast.loser, "buy", "60000"),
    ];
    for (account, amount, size) in [
        (&cast.first, "1", "36000"),
        (&cast.second, "0.3", "18000"),
        (&cast.third, "20", "120000"),
    ] {
        bodies.push(deposit(account, amount));
        bodies.push(fill(account, "sell", size));
    }
    bodies.extend((0..4).map(|_| index("40000")));
    let events: Vec<Envelope> = envelopes(&[bodies]).into_iter().flatten().collect();
    let answer = deleveraged_as_one_engine(
        &cluster,
        &cast,
        &events,
        "BTC-PERPETUAL",
        "BTC",
        dec!(0.00000001),
    )
    .await;
    assert!(!answer.returned);
    let mark = dec!(40000);
    for share in &answer.adl {
        assert_eq!(share.mark, mark);
        // 60,000 / 1.1, as the engine's solver finds it.
        assert!(
            (share.price - dec!(54545.4545)).abs() < dec!(0.001),
            "{}",
            share.price
        );
    }
}

/// Only one system shard runs (issue 13, scale-out gap 3): while one runs and renews its
/// lease, a second is refused, after waiting one lease period for it to lapse, with an error
/// that says so and names the holder; once the first stops (giving its lease up), the next
/// starts at once; one whose task is killed (no release) leaves its lease to lapse, and the
/// next starts within a lease period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_system_shard_is_refused_while_one_runs() {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let nats = Nats::start(scratch.path());
    wait_for(&nats.url()).await;
    let cluster = Cluster {
        url: nats.url(),
        dir: scratch.path().to_path_buf(),
    };
    let client = shard::client(std::slice::from_ref(&cluster.url))
        .await
        .expect("a client");
    let start_running = || {
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(system::run(cluster.system_config(false, None), stopped));
        (stop, running)
    };
    let wait_running = || async {
        for _ in 0..200 {
            if let Ok(Some(_)) = system::report(&client).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the system shard did not start");
    };
    let (stop, running) = start_running();
    wait_running().await;

    let (_stop, stopped) = watch::channel(false);
    let second = system::run(cluster.system_config(true, None), stopped).await;
    let Err(error) = second else {
        panic!("a second system shard ran beside the first: {second:?}");
    };
    assert!(
        matches!(&error, solvent_cluster::ClusterError::SystemShardRunning { holder, .. } if holder.contains("pid")),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("another system shard is running (pid "),
        "{error}"
    );
    // The first was not disturbed.
    assert!(system::report(&client).await.expect("it answers").is_some());

    // Stopped, it gives its lease up: the next starts at once.
    let _ = stop.send(true);
    running
        .await
        .expect("the first system shard's task")
        .expect("the first system shard");
    let started = std::time::Instant::now();
    cluster.run_system().await;
    assert!(
        started.elapsed() < system::LEASE_TTL,
        "{:?}",
        started.elapsed()
    );

    // Killed (its task aborted: no release), its lease lapses within a lease period.
    let (_stop, running) = start_running();
    wait_running().await;
    running.abort();
    let _ = running.await;
    let started = std::time::Instant::now();
    cluster.run_system().await;
    assert!(
        started.elapsed() <= system::LEASE_TTL + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A standby system shard (issue 13, [`LeaseWait::StandBy`]): started while one runs, it does
/// not start. After more than a lease period (and a second, when a refused start gives up) it
/// still waits, the lease still holds the first's name (with the time the first took it), and
/// the one that answers queries is the first (its report has no standby wait). A second
/// standby, stopped while it waits, ends at once with a report that says it did not take over
/// and published nothing. Killed (its task aborted: no release), the first's lease lapses and the standby
/// takes it over and answers within a lease period and two seconds; a claim made after the
/// takeover is answered once, by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_system_shard_waits_while_one_runs_and_takes_over_when_it_dies() {
    let Staged {
        _scratch,
        _nats,
        cluster,
        cast,
        steps,
        one: _,
        loser_shard,
        js,
        client,
    } = Staged::new().await;
    let (_first_stop, first) = cluster.start_system(LeaseWait::Refuse);
    wait_answering(&client).await;
    // Made by the first system shard.
    let store = js
        .get_key_value(system::LEASE_BUCKET)
        .await
        .expect("the lease's bucket");
    let lease_holder = || async {
        store
            .get(system::LEASE_KEY)
            .await
            .expect("the lease reads")
            .map(|value| String::from_utf8_lossy(&value).into_owned())
    };
    let firsts = lease_holder().await.expect("the first holds the lease");

    let (standby_stop, standby) = cluster.start_system(LeaseWait::StandBy);
    tokio::time::sleep(system::LEASE_TTL + Duration::from_millis(1500)).await;
    assert!(!standby.is_finished(), "the standby did not wait");
    assert!(!first.is_finished(), "the first stopped");
    assert_eq!(
        lease_holder().await,
        Some(firsts.clone()),
        "the lease moved"
    );
    let answering = system::report(&client)
        .await
        .expect("it answers")
        .expect("a system shard answers");
    assert_eq!(
        answering.standby, None,
        "the standby answered: {answering:?}"
    );

    // A standby stopped while it waits ends promptly, having done nothing.
    let (stop, stopped_standby) = cluster.start_system(LeaseWait::StandBy);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    let stopped = tokio::time::timeout(Duration::from_secs(1), stopped_standby)
        .await
        .expect("the stopped standby ended promptly")
        .expect("its task")
        .expect("a stopped standby is no error");
    let waited = stopped.standby.expect("it says it stood by");
    assert!(!waited.took_over, "{stopped:?}");
    // Counted from its connection, made after its start: about the 500 ms slept, no more
    // than the stop's handling beyond.
    assert!(waited.waited_ms < 1_000, "{stopped:?}");
    // It read what was stored while it waited, and published and wrote nothing.
    assert_eq!(
        (
            stopped.answers_published,
            stopped.adl_requests_published,
            stopped.snapshots_written
        ),
        (0, 0, 0),
        "{stopped:?}"
    );
    assert!(
        waited.read_standing_by <= effects_stored(&js).await,
        "{stopped:?}"
    );
    assert_eq!(
        lease_holder().await,
        Some(firsts.clone()),
        "the lease moved"
    );

    // The first killed: the standby takes over within a lease period (and two seconds).
    first.abort();
    let _ = first.await;
    let took_over = wait_takeover(&client, &standby).await;
    let standbys = lease_holder().await.expect("the standby holds the lease");
    assert_ne!(standbys, firsts);
    assert!(
        took_over.standby.is_some_and(
            |s| s.waited_ms >= u64::try_from(system::LEASE_TTL.as_millis()).expect("small")
        ),
        "{took_over:?}"
    );

    // A claim after the takeover: answered once, by the standby.
    cluster.publish(&steps[0]).await;
    settle(&cluster, 1).await;
    let answers: Vec<_> = cluster
        .answers()
        .await
        .iter()
        .map(|a| (a.claim.shard, a.account.clone(), a.covered, a.fund_before))
        .collect();
    assert_eq!(
        answers,
        [(
            loser_shard,
            cast.btc_loser.clone(),
            dec!(16000),
            dec!(20000)
        )]
    );
    assert_eq!(fund_subject(&js).await.len(), 1, "answered once");
    let _ = standby_stop.send(true);
    let report = standby
        .await
        .expect("the standby's task")
        .expect("the standby");
    assert_eq!(report.answers_published, 1, "{report:?}");
}

/// A standby keeps the fund as the holder does (issue 13): while it waits it follows the
/// holder's answer to the first claim and its request for candidates for the second. The
/// holder killed once it has asked, the standby takes over from what it kept (no snapshot, no
/// reading again): it answers the second claim once from the shards' offers, asks nothing
/// again, and its fund hashes as that of a system shard that reads everything from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_keeps_the_fund_and_takes_over_where_the_holder_was() {
    let Staged {
        _scratch,
        _nats,
        cluster,
        cast: _,
        steps,
        one: _,
        loser_shard: _,
        js,
        client,
    } = Staged::new().await;
    let (_first_stop, first) = cluster.start_system(LeaseWait::Refuse);
    wait_answering(&client).await;
    let (standby_stop, standby) = cluster.start_system(LeaseWait::StandBy);

    // The first claim, answered by the holder; the fee and the second bankruptcy, beyond the
    // fund: the holder asks for candidates and is killed.
    cluster.publish(&steps[0]).await;
    settle(&cluster, 1).await;
    cluster.publish(&steps[1]).await;
    cluster.publish(&steps[2]).await;
    cluster.run_shards().await;
    let mut asked = false;
    for _ in 0..200 {
        if system::read_fund_messages(&js, 0)
            .await
            .expect("read")
            .iter()
            .any(|(_, message)| matches!(message, system::FundMessage::Request(_)))
        {
            asked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(asked, "the holder asked for candidates");
    first.abort();
    let _ = first.await;
    let stored_at_kill = effects_stored(&js).await;

    // The shards offer; the standby takes over and answers.
    cluster.run_shards().await;
    wait_takeover(&client, &standby).await;
    settle(&cluster, 2).await;
    // Until it has read and applied the effects of its answer's application.
    let total = effects_stored(&js).await;
    let mut caught_up = false;
    for _ in 0..500 {
        if system::report(&client)
            .await
            .ok()
            .flatten()
            .is_some_and(|report| {
                report.effect_messages == total
                    && report.effect_messages_waiting == 0
                    && report.adl_requests_waiting == 0
            })
        {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        caught_up,
        "the standby did not apply the {total} effect messages"
    );
    let _ = standby_stop.send(true);
    let report = standby
        .await
        .expect("the standby's task")
        .expect("the standby");
    let waited = report.standby.expect("it stood by");
    assert!(waited.took_over, "{report:?}");
    assert!(
        waited.read_standing_by >= stored_at_kill,
        "read {} effect messages standing by, {stored_at_kill} stored when the holder died: {report:?}",
        waited.read_standing_by
    );
    assert_eq!(report.recovered_from, None);
    assert_eq!(report.effect_messages, total, "each read once: {report:?}");
    assert_eq!(
        (
            report.answers_already_published,
            report.adl_requests_already_published,
            report.answers_published,
            report.adl_requests_published,
        ),
        (1, 1, 1, 0),
        "{report:?}"
    );
    assert_the_cast_claims_answered(&cluster).await;
    assert_eq!(fund_subject(&js).await.len(), 3, "each published once");
    assert_eq!(report.fund.get("USDT"), Some(&dec!(0)));
    let scratch_run = cluster.run_system_in(None).await;
    assert_eq!(scratch_run.answers_published, 0);
    assert_eq!(report.fund_hash, scratch_run.fund_hash);
}

/// The environment variable that makes [`system_shard_process`] run a system shard on the
/// NATS server at its value, rather than return.
const SYSTEM_PROCESS_NATS: &str = "SOLVENT_TEST_SYSTEM_SHARD_NATS";

/// What [`system_shard_process`] prints before how its system shard stopped.
const SYSTEM_PROCESS_STOPPED: &str = "system shard stopped: ";

/// How often a replacement reads the streams in the stall tests: long enough that what the
/// test does between two of its readings (a claim made, a stalled process continued, a
/// message published) is done before the next one.
const REPLACEMENT_POLL: Duration = Duration::from_secs(15);

/// A system shard in a process of its own: this test binary run again with
/// [`SYSTEM_PROCESS_NATS`] set, so a test can stall it as an operating system stalls a
/// process (SIGSTOP, then SIGCONT), renewal task and all. Not a test by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a system shard's process, started by the stall tests"]
async fn system_shard_process() {
    let Ok(url) = std::env::var(SYSTEM_PROCESS_NATS) else {
        return;
    };
    let cluster = Cluster {
        url,
        dir: PathBuf::new(),
    };
    let (_stop, stopped) = watch::channel(false);
    let stopped_with = match system::run(cluster.system_config(false, None), stopped).await {
        Ok(report) => format!("ok, {} answers published", report.answers_published),
        Err(error) => error.to_string(),
    };
    println!("{SYSTEM_PROCESS_STOPPED}{stopped_with}");
}

/// A system shard's process ([`system_shard_process`]); killed when dropped (SIGKILL ends a
/// stopped process too).
struct SystemProcess {
    child: Child,
}

impl SystemProcess {
    fn start(url: &str) -> Self {
        let child = Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "system_shard_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(SYSTEM_PROCESS_NATS, url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the system shard's process");
        Self { child }
    }

    /// Sends it `signal` (`STOP`, `CONT`).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits at most `within` for the process to end; how its system shard stopped.
    async fn stopped(&mut self, within: Duration) -> String {
        use std::io::Read;
        let deadline = std::time::Instant::now() + within;
        while self.child.try_wait().expect("its status").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the system shard's process did not stop"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut output = String::new();
        self.child
            .stdout
            .take()
            .expect("its output")
            .read_to_string(&mut output)
            .expect("it reads");
        // Its line may follow the test harness's own on the same line.
        output
            .lines()
            .find_map(|line| line.split_once(SYSTEM_PROCESS_STOPPED))
            .map(|(_, how)| how.to_owned())
            .unwrap_or_else(|| panic!("the process reported no stop: {output}"))
    }
}

impl Drop for SystemProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a system shard answers queries: it holds the lease and has read the streams
/// once. A stopped process still subscribed makes a query wait its whole timeout.
async fn wait_answering(client: &async_nats::Client) {
    for _ in 0..100 {
        if let Ok(Some(_)) = system::report(client).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no system shard answers");
}

/// Waits until the lease names `holder` (a pid): a replacement took it over.
async fn wait_lease_held_by(js: &async_nats::jetstream::Context, holder: u32) {
    let store = js
        .get_key_value(system::LEASE_BUCKET)
        .await
        .expect("the lease's bucket");
    let wanted = format!("pid {holder} ");
    for _ in 0..200 {
        if let Ok(Some(value)) = store.get(system::LEASE_KEY).await
            && String::from_utf8_lossy(&value).starts_with(&wanted)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the lease was not taken over by pid {holder}");
}

/// Every message on the fund subject, decoded or not, as (stream sequence, message id).
async fn fund_subject(js: &async_nats::jetstream::Context) -> Vec<(u64, String)> {
    let stream = js
        .get_stream(solvent_cluster::routing::INPUT_STREAM)
        .await
        .expect("the input stream");
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let next = stream
            .get_first_raw_message_by_subject(solvent_cluster::routing::FUND_SUBJECT, after + 1)
            .await;
        let Ok(message) = next else {
            return messages;
        };
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        after = message.sequence;
        messages.push((message.sequence, id));
    }
}

/// Runs the shards until the fund subject holds `answers` answers and they are applied.
async fn settle(cluster: &Cluster, answers: usize) {
    for _ in 0..90 {
        cluster.run_shards().await;
        if cluster.answers().await.len() >= answers {
            cluster.run_shards().await;
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("not {answers} answers");
}

/// What the lease-takeover tests start from: a NATS node, the cast's steps and the one engine
/// that applied them all, the shard the losers are on, a JetStream context and a client.
struct Staged {
    // Dropped in this order: the node stops before its directory goes.
    _nats: Nats,
    _scratch: tempfile::TempDir,
    cluster: Cluster,
    cast: Cast,
    steps: Vec<Vec<Envelope>>,
    one: Engine,
    loser_shard: u32,
    js: async_nats::jetstream::Context,
    client: async_nats::Client,
}

impl Staged {
    async fn new() -> Self {
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let nats = Nats::start(scratch.path());
        wait_for(&nats.url()).await;
        let cluster = Cluster {
            url: nats.url(),
            dir: scratch.path().to_path_buf(),
        };
        let cast = Cast::new();
        let steps = envelopes(&steps(&cast));
        let all: Vec<Envelope> = steps.iter().flatten().cloned().collect();
        let (one, _) = one_engine(&all);
        let loser_shard = 1 - cast.fund_shard;
        let js = shard::connect(std::slice::from_ref(&cluster.url), SHARDS, 1)
            .await
            .expect("connect");
        let client = shard::client(std::slice::from_ref(&cluster.url))
            .await
            .expect("a client");
        Self {
            _nats: nats,
            _scratch: scratch,
            cluster,
            cast,
            steps,
            one,
            loser_shard,
            js,
            client,
        }
    }
}

/// A system shard that stalls past its lease while a replacement takes the lease over
/// (issue 13): the first runs in a process of its own, stopped with SIGSTOP until its lease
/// lapses and another system shard has taken it; then a claim is made, and the stalled one is
/// continued (SIGCONT) before the replacement reads the streams again. Its renewal task has
/// not yet told it the lease is gone when it reads the claim: it must confirm its lease before
/// publishing, find it lost, and stop (`lost its lease`) with nothing published. (Without the
/// confirmation it published its answer as it resumed, ahead of the replacement, and only then
/// stopped.) The replacement keeps running, answers every claim once, and money is conserved
/// as one engine conserves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_shard_stalled_past_its_lease_stops_unpublished_and_its_replacement_runs_on() {
    let Staged {
        _scratch,
        _nats,
        cluster,
        cast,
        steps,
        one,
        loser_shard,
        js,
        client,
    } = Staged::new().await;

    let mut stalled = SystemProcess::start(&cluster.url);
    wait_answering(&client).await;
    stalled.signal("STOP");
    // The replacement waits for the stalled one's lease to lapse, takes it, and reads the
    // streams: nothing to answer yet.
    let (stop, stopped) = watch::channel(false);
    let replacement = tokio::spawn(system::run(
        SystemConfig {
            poll: REPLACEMENT_POLL,
            ..cluster.system_config(false, None)
        },
        stopped,
    ));
    wait_lease_held_by(&js, std::process::id()).await;
    wait_answering(&client).await;
    let read_once = std::time::Instant::now();

    // The claim, and every shard's progress past it; then the stalled one goes on.
    cluster.publish(&steps[0]).await;
    cluster.run_shards().await;
    stalled.signal("CONT");
    let stopped_with = stalled.stopped(Duration::from_secs(30)).await;
    let on_the_subject = fund_subject(&js).await;
    assert!(
        read_once.elapsed() < REPLACEMENT_POLL,
        "the replacement may have read the claim first: {:?}",
        read_once.elapsed()
    );
    assert!(
        on_the_subject.is_empty(),
        "the stalled system shard published after its lease was taken over: {on_the_subject:?} (it stopped with: {stopped_with})"
    );
    assert!(stopped_with.contains("lost its lease"), "{stopped_with}");

    // The replacement answers at its next reading, and the next claim too (after asking every
    // shard for candidates).
    cluster.publish(&steps[1]).await;
    cluster.publish(&steps[2]).await;
    settle(&cluster, 2).await;
    assert!(!replacement.is_finished(), "the replacement stopped");
    let answers = cluster.answers().await;
    let amounts: Vec<_> = answers
        .iter()
        .map(|a| (a.claim.shard, a.account.as_str(), a.covered, a.fund_before))
        .collect();
    assert_eq!(
        amounts,
        [
            (
                loser_shard,
                cast.btc_loser.as_str(),
                dec!(16000),
                dec!(20000)
            ),
            (
                cast.fund_shard,
                cast.eth_loser.as_str(),
                dec!(4030),
                dec!(4030)
            ),
        ],
        "each claim answered once"
    );
    let ids: Vec<String> = fund_subject(&js)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids.len(), 3, "two answers and one request: {ids:?}");
    let _ = stop.send(true);
    let report = replacement
        .await
        .expect("the replacement's task")
        .expect("the replacement");
    assert_eq!(
        (
            report.answers_published,
            report.adl_requests_published,
            report.reconciled
        ),
        (2, 1, 0)
    );
    assert_eq!(report.fund.get("USDT"), Some(&dec!(0)));
    assert_as_one_engine(&cluster.engines(), &one, &report);
}

/// The gap the lease's confirmation leaves: a former holder that stalls between its
/// confirmation and its publication, past its lease, publishes after a replacement took the
/// lease over. Here that publication is made by hand (the answer the former holder computed,
/// under its message id) after the claim and before the replacement reads it. The
/// replacement's own publication is then refused (the fence on `solvent.fund`, or JetStream's
/// duplicate id); holding the lease, it reads the subject, follows the answer found there (as
/// on recovery) and runs on: the claim is answered once. Then a message that is no answer
/// lands there: the replacement's next publication (its request for candidates for the second
/// claim) is refused, it reads past that message and publishes. Money is conserved as one
/// engine conserves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_refused_for_a_former_holders_answer_follows_it_and_runs_on() {
    let Staged {
        _scratch,
        _nats,
        cluster,
        cast,
        steps,
        one,
        loser_shard,
        js,
        client,
    } = Staged::new().await;
    let (stop, stopped) = watch::channel(false);
    let replacement = tokio::spawn(system::run(
        SystemConfig {
            poll: REPLACEMENT_POLL,
            ..cluster.system_config(false, None)
        },
        stopped,
    ));
    wait_answering(&client).await;
    let read_once = std::time::Instant::now();
    cluster.publish(&steps[0]).await;
    cluster.run_shards().await;
    // The claim as the effect stream holds it: the first (and only) claim of its message.
    let claim_at = solvent_cluster::effects::read_all(&js, Some(loser_shard))
        .await
        .expect("the effects")
        .into_iter()
        .find(|message| {
            message
                .lines
                .iter()
                .any(|line| line.contains(r#""resolution":"claimed""#))
        })
        .expect("the claim's effect message")
        .input_seq;
    let answer = ClaimAnswer {
        claim: system::ClaimId {
            shard: loser_shard,
            input_seq: claim_at,
            index: 0,
        },
        account: cast.btc_loser.clone(),
        asset: "USDT".to_owned(),
        claimed: dec!(16000),
        covered: dec!(16000),
        fund_before: dec!(20000),
        adl: Vec::new(),
        socialised: Vec::new(),
        returned: false,
        fee: Decimal::ZERO,
        remainder: false,
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", answer.claim.message_id().as_str());
    js.publish_with_headers(
        solvent_cluster::routing::FUND_SUBJECT,
        headers,
        serde_json::to_vec(&answer).expect("encoded").into(),
    )
    .await
    .expect("published")
    .await
    .expect("stored");
    assert!(
        read_once.elapsed() < REPLACEMENT_POLL,
        "the replacement may have read the claim first: {:?}",
        read_once.elapsed()
    );
    settle(&cluster, 1).await;
    // Its next reading, after the answer: it has followed it.
    let mut followed = None;
    for _ in 0..200 {
        if replacement.is_finished() {
            let stopped = replacement.await.expect("the replacement's task");
            panic!("the replacement stopped: {stopped:?}");
        }
        if let Ok(Some(report)) = system::report(&client).await
            && report.claims == 1
        {
            followed = Some(report);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let followed = followed.expect("the replacement answered for the claim");
    assert!(!replacement.is_finished(), "the replacement stopped");
    assert_eq!(
        (
            followed.answers_published,
            followed.answers_already_published,
            followed.reconciled
        ),
        (0, 1, 1)
    );
    assert_eq!(fund_subject(&js).await.len(), 1, "the claim answered once");

    js.publish(
        solvent_cluster::routing::FUND_SUBJECT,
        "not an answer".into(),
    )
    .await
    .expect("published")
    .await
    .expect("stored");
    cluster.publish(&steps[1]).await;
    cluster.publish(&steps[2]).await;
    settle(&cluster, 2).await;
    assert!(!replacement.is_finished(), "the replacement stopped");
    let _ = stop.send(true);
    let report = replacement
        .await
        .expect("the replacement's task")
        .expect("the replacement");
    assert_eq!(
        (
            report.answers_published,
            report.adl_requests_published,
            report.answers_already_published,
            report.reconciled
        ),
        (1, 1, 1, 2)
    );
    let answered: Vec<(u32, Decimal)> = cluster
        .answers()
        .await
        .iter()
        .map(|a| (a.claim.shard, a.covered))
        .collect();
    assert_eq!(
        answered,
        [(loser_shard, dec!(16000)), (cast.fund_shard, dec!(4030))],
        "each claim answered once"
    );
    assert_eq!(report.fund.get("USDT"), Some(&dec!(0)));
    assert_as_one_engine(&cluster.engines(), &one, &report);
}
