//! One shard: an engine that reads its accounts' subject and the market subject of the input
//! stream through one ordered consumer, in stream order, and writes each message's effects to
//! its effect subject.
//!
//! Exactly once, across crashes:
//! - **Input.** The shard's snapshots record the last stream sequence they include; recovery
//!   takes the newest valid one and reads the stream from the next sequence. A message at or
//!   below the last sequence applied (an ordered consumer's re-delivery after it recreates
//!   itself) is skipped. Each event's sequence number is derived from its message's stream
//!   sequence ([`crate::message::event_seq`]), so a replay numbers the events as the first run.
//! - **Effects.** A message's effects are published with the message's stream sequence in a
//!   header and as JetStream's message id (`shard-K-S`), up to
//!   [`ShardConfig::effects_in_flight`] of them awaiting JetStream's acknowledgement at once.
//!   On recovery the shard reads every effect message of its subject stored since its
//!   snapshot's *effect floor* (below every effect message for input after the snapshot) and,
//!   replaying the input after the snapshot, publishes the effects of exactly the inputs it
//!   did not find: the engine is deterministic, so what it would publish again is what was
//!   published. A previous run's publication still landing while the shard recovers carries
//!   the same message id, so JetStream drops whichever of the two comes second.
//! - **The fund.** A shard also reads `solvent.fund`, the system shard's answers to deficit
//!   claims ([`crate::system`]), and applies those to its own claims, and their auto-deleveraging
//!   shares of its own accounts, at their stream sequence; to a request for candidates it
//!   writes its offer in its effects;
//!   when it has caught up (or stops at the end) with every effect stored, it records its
//!   progress on `solvent.progress.<K>`, which the system shard waits for before answering.
//! - **Snapshots** are written only once every effect up to their sequence is acknowledged by
//!   JetStream, with their effect floor beside them (`effect-floors/<seq>`): a snapshot never
//!   holds a state whose effects could be lost, and recovery knows where to look for the
//!   effects of the input after it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::EffectLine;
use tokio::sync::watch;

use crate::ClusterError;
use crate::effects;
use crate::message;
use crate::query::{Answer, Query, answer, query_subject};
use crate::routing::{
    EFFECT_STREAM, EFFECT_SUBJECT_PREFIX, FUND_SUBJECT, INPUT_STREAM, MARKET_SUBJECT,
    PROGRESS_SUBJECT_PREFIX, SHARD_SUBJECT_PREFIX, SHARDS_METADATA_KEY, SYSTEM_SUBJECT,
    effect_subject, progress_subject, shard_subject,
};

/// The header that carries the input stream sequence an effect message answers.
pub const INPUT_SEQ_HEADER: &str = "Solvent-Input-Seq";

/// Effect messages published and not yet acknowledged, at most, by default. Waiting for each
/// one's fsynced acknowledgement before reading on cost a shard five times its throughput
/// (docs/scale.md, "Measured"); what is stored need not be a prefix, since recovery reads which
/// inputs' effects are stored rather than the last one.
pub const DEFAULT_EFFECTS_IN_FLIGHT: usize = 256;

/// The directory of the data directory holding each snapshot's effect floor.
const FLOORS_DIR: &str = "effect-floors";

/// Snapshots kept in the shard's data directory.
const SNAPSHOTS_KEPT: usize = 3;

/// What a shard is.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// NATS server URLs (any node of the cluster; the client fails over between them).
    pub servers: Vec<String>,
    /// This shard's number, `0..shards`.
    pub shard: u32,
    /// The number of shards the input is routed for.
    pub shards: u32,
    /// The shard's data directory: its venue and snapshots.
    pub data_dir: PathBuf,
    /// The venue's text (recorded in the data directory at the first start, checked after).
    pub venue_text: String,
    /// The engine's configuration.
    pub engine: EngineConfig,
    /// Replicas of the streams when the shard creates them (3 in production; a stream that
    /// exists keeps its own).
    pub replicas: usize,
    /// Input messages between snapshots.
    pub snapshot_every: u64,
    /// Effect messages published and not yet acknowledged, at most, before the shard reads
    /// on (0: each acknowledged before the next input).
    pub effects_in_flight: usize,
    /// Testing: the `n`-th effect message this run publishes (from 1) is not sent and its
    /// acknowledgement fails, while the messages after it are sent, as when a publication
    /// fails while a stream leader changes: the shard stops at that acknowledgement, and its
    /// next run must publish the lost message again and not the later ones.
    pub fail_effect_message: Option<u64>,
    /// Stop once everything the stream held for this shard when it started is applied.
    pub stop_at_end: bool,
}

/// What a shard did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ShardReport {
    /// The shard's number.
    pub shard: u32,
    /// The stream sequence of the snapshot it recovered from, if any.
    pub recovered_from: Option<u64>,
    /// Snapshots that could not be used, with the reason.
    pub skipped_snapshots: Vec<String>,
    /// The last input stream sequence applied.
    pub last_stream_seq: Option<u64>,
    /// Input messages applied in this run.
    pub messages: u64,
    /// Events in them.
    pub events: u64,
    /// Effects they caused.
    pub effects: u64,
    /// Effect messages not published again because JetStream already held them.
    pub effects_already_published: u64,
    /// Effect messages found stored since the snapshot's effect floor at recovery (this
    /// shard's, for input after the snapshot).
    pub effects_found_at_recovery: u64,
    /// Input messages delivered again and skipped.
    pub redelivered: u64,
    /// The engine's state hash at the end.
    pub state_hash: String,
    /// Accounts the shard holds.
    pub accounts: usize,
}

/// Connects to NATS and makes sure the input and effect streams exist, routed for `shards`
/// (a stream made for another count is refused), with `replicas` replicas when created here.
///
/// # Errors
/// [`ClusterError`] when NATS cannot be reached or refuses the streams.
pub async fn connect(
    servers: &[String],
    shards: u32,
    replicas: usize,
) -> Result<Context, ClusterError> {
    let js = jetstream::new(client(servers).await?);
    // While a node of the cluster is down, JetStream answers "temporarily unavailable" until
    // its groups have elected new leaders (seconds): the streams are asked for again until
    // then. Any other answer (a stream routed for another count) is final.
    let deadline = tokio::time::Instant::now() + STREAMS_PATIENCE;
    loop {
        match ensure_streams(&js, shards, replicas).await {
            Err(ClusterError::Nats(problem)) if tokio::time::Instant::now() < deadline => {
                note_waiting(&problem);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            result => return result.map(|()| js),
        }
    }
}

/// How long [`connect`] waits for JetStream to answer for the streams.
const STREAMS_PATIENCE: Duration = Duration::from_secs(30);

/// A transient refusal while connecting: written to stderr (the crate logs nothing else).
fn note_waiting(problem: &str) {
    eprintln!("solvent-cluster: waiting for JetStream: {problem}");
}

/// A client of the NATS servers `servers` (it fails over between them).
///
/// # Errors
/// [`ClusterError::Config`] for a URL that does not parse; [`ClusterError::Nats`] when no
/// server can be reached.
pub async fn client(servers: &[String]) -> Result<async_nats::Client, ClusterError> {
    let addresses = servers
        .iter()
        .map(|url| {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|error| ClusterError::Config(format!("--cluster {url:?}: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addresses.is_empty() {
        return Err(ClusterError::Config(
            "--cluster: no NATS server given".to_owned(),
        ));
    }
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(addresses)
        .await
        .map_err(|error| ClusterError::Nats(format!("connect to {servers:?}: {error}")))
}

async fn ensure_streams(js: &Context, shards: u32, replicas: usize) -> Result<(), ClusterError> {
    let metadata = HashMap::from([(SHARDS_METADATA_KEY.to_owned(), shards.to_string())]);
    let mut input = js
        .get_or_create_stream(StreamConfig {
            name: INPUT_STREAM.to_owned(),
            subjects: vec![
                MARKET_SUBJECT.to_owned(),
                FUND_SUBJECT.to_owned(),
                SYSTEM_SUBJECT.to_owned(),
                format!("{SHARD_SUBJECT_PREFIX}*"),
            ],
            storage: StorageType::File,
            num_replicas: replicas,
            duplicate_window: Duration::from_secs(120),
            metadata: metadata.clone(),
            ..StreamConfig::default()
        })
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {INPUT_STREAM}: {error}")))?;
    let mut recorded_config = input
        .info()
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {INPUT_STREAM}: {error}")))?
        .config
        .clone();
    let recorded = recorded_config.metadata.get(SHARDS_METADATA_KEY).cloned();
    if recorded.as_deref() != Some(shards.to_string().as_str()) {
        return Err(ClusterError::ShardCount {
            expected: shards,
            recorded,
        });
    }
    // A stream made before the system shard lacks its subjects: they are added (the stream's
    // messages and sequences stay as they are).
    let missing: Vec<String> = [FUND_SUBJECT, SYSTEM_SUBJECT]
        .into_iter()
        .filter(|subject| !recorded_config.subjects.iter().any(|held| held == subject))
        .map(str::to_owned)
        .collect();
    if !missing.is_empty() {
        recorded_config.subjects.extend(missing);
        js.update_stream(&recorded_config)
            .await
            .map_err(|error| ClusterError::Nats(format!("stream {INPUT_STREAM}: {error}")))?;
    }
    let progress = format!("{PROGRESS_SUBJECT_PREFIX}*");
    let mut effects = js
        .get_or_create_stream(StreamConfig {
            name: EFFECT_STREAM.to_owned(),
            subjects: vec![format!("{EFFECT_SUBJECT_PREFIX}*"), progress.clone()],
            storage: StorageType::File,
            num_replicas: replicas,
            duplicate_window: Duration::from_secs(120),
            metadata,
            ..StreamConfig::default()
        })
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {EFFECT_STREAM}: {error}")))?;
    let mut effects_config = effects
        .info()
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {EFFECT_STREAM}: {error}")))?
        .config
        .clone();
    if !effects_config.subjects.contains(&progress) {
        effects_config.subjects.push(progress);
        js.update_stream(&effects_config)
            .await
            .map_err(|error| ClusterError::Nats(format!("stream {EFFECT_STREAM}: {error}")))?;
    }
    Ok(())
}

/// The engine a shard starts from: its newest valid snapshot, with the stream sequence it
/// includes, or a new engine; the snapshots that could not be used, with the reason.
fn recover(config: &ShardConfig) -> Result<(Engine, Option<u64>, Vec<String>), ClusterError> {
    solvent_store::init_data_dir(&config.data_dir, &config.venue_text)?;
    let (venue, _) = solvent_store::read_venue(&config.data_dir)?;
    let mut skipped = Vec::new();
    for path in solvent_store::list_snapshots(&config.data_dir)?.unwrap_or_default() {
        match solvent_store::read_snapshot(&path) {
            Ok((info, engine)) => {
                return Ok((
                    engine.reconfigured(config.engine.clone()),
                    Some(info.seq),
                    skipped,
                ));
            }
            Err(error) => skipped.push(error.to_string()),
        }
    }
    Ok((Engine::new(venue, config.engine.clone()), None, skipped))
}

/// Where a shard's effect messages are in the effect stream, for the floor recorded with each
/// snapshot: an effect-stream sequence below every effect message of the shard for input after
/// the snapshot, stored or still to come. Recovery reads the shard's effect messages above it.
struct EffectPositions {
    /// The effect messages recovery found stored for input after the snapshot: input sequence
    /// to effect-stream sequence.
    stored: BTreeMap<u64, u64>,
    /// The effect-stream sequence recovery read through: a previous run's publication that
    /// lands after the read is stored above it.
    read_through: u64,
    /// The input stream's last sequence when this run started: a previous run read no further,
    /// so it published no effects for input beyond it.
    previous_end: u64,
    /// The highest effect-stream sequence acknowledged to this run.
    acknowledged: u64,
}

impl EffectPositions {
    /// The floor for a snapshot at input `seq`, once every effect message up to it is
    /// acknowledged.
    fn floor(&self, seq: u64) -> u64 {
        // This run's own publications for input after `seq` come after every acknowledgement
        // it has had (the snapshot waited for them), so they are stored above it.
        let mut floor = self.acknowledged.max(self.read_through);
        if seq < self.previous_end {
            // A previous run may have published for input after `seq`, stored before the read
            // (in `stored`) or landing after it (above `read_through`).
            floor = floor.min(self.read_through);
            if let Some(first) = self.stored.range(seq + 1..).map(|(_, at)| *at).min() {
                floor = floor.min(first.saturating_sub(1));
            }
        }
        floor
    }
}

/// The effect floor recorded with the snapshot at `seq`; 0 (the shard's whole effect subject)
/// when there is none or it does not read, which is slower to recover from but as exact.
fn read_floor(data_dir: &Path, seq: u64) -> u64 {
    std::fs::read_to_string(data_dir.join(FLOORS_DIR).join(seq.to_string()))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Records the effect floor of the snapshot at `seq` (before the snapshot itself, so that every
/// snapshot has one), durably, and removes the floors of snapshots no longer kept.
fn write_floor(data_dir: &Path, seq: u64, floor: u64) -> Result<(), ClusterError> {
    let dir = data_dir.join(FLOORS_DIR);
    let io = |path: &Path, error: std::io::Error| ClusterError::Io {
        path: path.to_path_buf(),
        problem: error.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|error| io(&dir, error))?;
    let path = dir.join(seq.to_string());
    let temporary = dir.join(format!("{seq}.tmp"));
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&temporary).map_err(|error| io(&temporary, error))?;
        file.write_all(floor.to_string().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|error| io(&temporary, error))?;
    }
    std::fs::rename(&temporary, &path).map_err(|error| io(&path, error))?;
    let mut seqs: Vec<u64> = std::fs::read_dir(&dir)
        .map_err(|error| io(&dir, error))?
        .filter_map(|item| item.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    seqs.sort_unstable();
    // One more than the snapshots kept: a floor written before a snapshot that then failed
    // must not push out the floor of one that is kept.
    let excess = seqs.len().saturating_sub(SNAPSHOTS_KEPT + 1);
    for old in &seqs[..excess] {
        let old = dir.join(old.to_string());
        std::fs::remove_file(&old).map_err(|error| io(&old, error))?;
    }
    Ok(())
}

/// Runs shard `config.shard` until `stop` turns true (or, with `stop_at_end`, until it has
/// applied what the stream held for it at the start).
///
/// # Errors
/// [`ClusterError`]: NATS unreachable or refusing, a message that does not decode, the data
/// directory unusable. The shard stops at the first error; restarting it resumes from its last
/// snapshot with nothing lost or applied twice.
pub async fn run(
    config: ShardConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<ShardReport, ClusterError> {
    if config.shards == 0 || config.shard >= config.shards {
        return Err(ClusterError::Config(format!(
            "shard {}/{}: the shard must be below the number of shards",
            config.shard, config.shards
        )));
    }
    let (mut engine, recovered_from, skipped_snapshots) = recover(&config)?;
    let js = connect(&config.servers, config.shards, config.replicas).await?;
    let mut report = ShardReport {
        shard: config.shard,
        recovered_from,
        skipped_snapshots,
        last_stream_seq: recovered_from,
        messages: 0,
        events: 0,
        effects: 0,
        effects_already_published: 0,
        effects_found_at_recovery: 0,
        redelivered: 0,
        state_hash: String::new(),
        accounts: 0,
    };
    let mut input = js
        .get_stream(INPUT_STREAM)
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {INPUT_STREAM}: {error}")))?;
    let state = input
        .info()
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {INPUT_STREAM}: {error}")))?
        .state
        .clone();
    let end = state.last_sequence;
    let start = recovered_from.map_or(1, |seq| seq + 1);
    // The stream must still hold what the shard has not applied: a stream behind the snapshot
    // (deleted and made again, or cut) or one whose first messages are gone lost input.
    if let Some(snapshot) = recovered_from
        && end < snapshot
    {
        return Err(ClusterError::StreamBehind {
            snapshot,
            stream_last: end,
        });
    }
    if state.messages > 0 && state.first_sequence > start {
        return Err(ClusterError::StreamCut {
            next: start,
            stream_first: state.first_sequence,
        });
    }
    let mut positions = stored_effects(
        &js,
        &config,
        recovered_from,
        end,
        &mut report.effects_found_at_recovery,
    )
    .await?;
    let deliver_policy = DeliverPolicy::ByStartSequence {
        start_sequence: start,
    };
    let subjects = vec![
        shard_subject(config.shard),
        MARKET_SUBJECT.to_owned(),
        FUND_SUBJECT.to_owned(),
    ];
    // As for the streams (see `connect`): while a node is down, making the consumer may time
    // out until JetStream has elected new leaders; it is asked for again until then.
    let deadline = tokio::time::Instant::now() + STREAMS_PATIENCE;
    let consumer = loop {
        match input
            .create_consumer(OrderedConfig {
                filter_subjects: subjects.clone(),
                deliver_policy,
                ..OrderedConfig::default()
            })
            .await
        {
            Ok(consumer) => break consumer,
            Err(error) if tokio::time::Instant::now() < deadline => {
                note_waiting(&error.to_string());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => {
                return Err(ClusterError::Nats(format!(
                    "consumer of shard {}: {error}",
                    config.shard
                )));
            }
        }
    };
    let mut pending: u64 = {
        let mut consumer = consumer.clone();
        consumer
            .info()
            .await
            .map_err(|error| ClusterError::Nats(format!("consumer info: {error}")))?
            .num_pending
    };
    let mut messages = consumer.messages().await.map_err(|error| {
        ClusterError::Nats(format!("messages of shard {}: {error}", config.shard))
    })?;
    // Queries about the shard's accounts, answered between two input messages.
    let mut queries = js
        .client()
        .subscribe(query_subject(config.shard))
        .await
        .map_err(|error| {
            ClusterError::Nats(format!("queries of shard {}: {error}", config.shard))
        })?;
    let mut in_flight: VecDeque<Publication> = VecDeque::new();
    let mut published = 0_u64;
    let mut since_snapshot = 0_u64;
    let done_at_start = config.stop_at_end && (pending == 0 || end < start);
    // Whether the shard has applied input since it last recorded its progress, and when it
    // last recorded it while busy.
    let mut progress_due = true;
    let mut last_progress = tokio::time::Instant::now();
    loop {
        if done_at_start {
            break;
        }
        let next = tokio::select! {
            next = messages.next() => next,
            Some(request) = queries.next() => {
                answer_query(&js, &engine, config.shard, report.last_stream_seq, &request).await?;
                continue;
            }
            () = tokio::time::sleep(PROGRESS_IDLE), if progress_due => {
                if let Some(through) =
                    caught_up_through(&mut input, &subjects, report.last_stream_seq).await
                {
                    while let Some(publication) = in_flight.pop_front() {
                        acknowledged(Some(publication), &mut positions).await?;
                    }
                    progress_due = !publish_progress(&js, config.shard, through).await;
                }
                continue;
            }
            _ = stop.changed() => None,
        };
        progress_due = true;
        let Some(next) = next else { break };
        let message =
            next.map_err(|error| ClusterError::Nats(format!("reading the stream: {error}")))?;
        let info = message
            .info()
            .map_err(|error| ClusterError::Nats(format!("message metadata: {error}")))?;
        let stream_seq = info.stream_sequence;
        pending = info.pending;
        if report
            .last_stream_seq
            .is_some_and(|last| stream_seq <= last)
        {
            report.redelivered += 1;
            continue;
        }
        let (lines, events) = if message.subject.as_str() == FUND_SUBJECT {
            apply_answer(&mut engine, config.shard, stream_seq, &message.payload)?
        } else {
            apply_events(&mut engine, stream_seq, &message.payload)?
        };
        report.messages += 1;
        report.events += events;
        report.effects += lines.len() as u64;
        report.last_stream_seq = Some(stream_seq);
        if !lines.is_empty() {
            if positions.stored.contains_key(&stream_seq) {
                report.effects_already_published += 1;
            } else {
                published += 1;
                in_flight.push_back(if config.fail_effect_message == Some(published) {
                    Publication::Failed(stream_seq)
                } else {
                    Publication::Sent(publish_effects(&js, config.shard, stream_seq, &lines).await?)
                });
                while in_flight.len() > config.effects_in_flight {
                    acknowledged(in_flight.pop_front(), &mut positions).await?;
                }
            }
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            // Busy: the input never pauses long enough for the idle record, so the progress
            // through the last input applied is recorded now and then (after every
            // acknowledgement, one round trip).
            while let Some(publication) = in_flight.pop_front() {
                acknowledged(Some(publication), &mut positions).await?;
            }
            let _ = publish_progress(&js, config.shard, stream_seq).await;
            last_progress = tokio::time::Instant::now();
        }
        since_snapshot += 1;
        if since_snapshot >= config.snapshot_every {
            snapshot(&config, &engine, stream_seq, &mut in_flight, &mut positions).await?;
            since_snapshot = 0;
        }
        if config.stop_at_end && (pending == 0 || stream_seq >= end) {
            break;
        }
    }
    if let Some(last) = report.last_stream_seq
        && since_snapshot > 0
    {
        snapshot(&config, &engine, last, &mut in_flight, &mut positions).await?;
    }
    while let Some(publication) = in_flight.pop_front() {
        acknowledged(Some(publication), &mut positions).await?;
    }
    if config.stop_at_end {
        // Everything the stream held for this shard when it started is applied and its
        // effects are stored.
        let _ = publish_progress(
            &js,
            config.shard,
            end.max(report.last_stream_seq.unwrap_or(0)),
        )
        .await;
    }
    report.state_hash = engine.state_hash();
    report.accounts = engine.accounts().len();
    Ok(report)
}

/// How long a shard waits without input before it records its progress.
const PROGRESS_IDLE: Duration = Duration::from_millis(200);

/// How often a busy shard records its progress (through the last input it applied).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The input stream sequence through which the shard has applied everything the stream holds
/// for it, when it has: the stream's last sequence `L` is read first, then the last message of
/// each of the shard's subjects; when none is beyond what the shard applied, every message of
/// its subjects up to `L` (all stored before those reads) is applied. `None` when that cannot
/// be said now (input still to apply, or NATS not answering).
async fn caught_up_through(
    input: &mut async_nats::jetstream::stream::Stream,
    subjects: &[String],
    applied: Option<u64>,
) -> Option<u64> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let last = input.info().await.ok()?.state.last_sequence;
    let applied = applied.unwrap_or(0);
    for subject in subjects {
        match input.get_last_raw_message_by_subject(subject).await {
            Ok(message) if message.sequence > applied => return None,
            Ok(_) => {}
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {}
            Err(_) => return None,
        }
    }
    Some(last)
}

/// Records that every effect of the shard's input up to stream sequence `through` is stored
/// (the caller has had every acknowledgement): the system shard answers a claim only once
/// every shard's progress has reached it. A record that fails is noted on stderr and reported
/// (`false`), not an error: the next one (a second later, or at the next idle check)
/// supersedes it, and until then answers only wait.
async fn publish_progress(js: &Context, shard: u32, through: u64) -> bool {
    let mut headers = HeaderMap::new();
    headers.insert(INPUT_SEQ_HEADER, through.to_string().as_str());
    let stored = match js
        .publish_with_headers(progress_subject(shard), headers, through.to_string().into())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(problem) = &stored {
        eprintln!(
            "solvent-cluster: shard {shard}: progress through {through} not recorded: {problem}"
        );
    }
    stored.is_ok()
}

/// The JSON lines of `lines`, as the shard's effect message carries them.
fn encoded(lines: &[EffectLine]) -> Result<Vec<String>, ClusterError> {
    lines
        .iter()
        .map(|line| {
            serde_json::to_string(line)
                .map_err(|error| ClusterError::Nats(format!("encoding an effect: {error}")))
        })
        .collect()
}

/// Applies the events of the input message at `stream_seq`: their effects, and how many.
fn apply_events(
    engine: &mut Engine,
    stream_seq: u64,
    payload: &[u8],
) -> Result<(Vec<String>, u64), ClusterError> {
    let events = message::decode(stream_seq, payload)?;
    let mut lines = Vec::new();
    for envelope in &events {
        for effect in engine.apply(envelope) {
            lines.push(EffectLine {
                seq: envelope.seq,
                effect,
            });
        }
    }
    Ok((encoded(&lines)?, events.len() as u64))
}

/// Applies the system shard's message at `stream_seq` on the fund subject:
/// - an answer to one of this shard's claims (numbered as the first event of its message),
///   then the answer's auto-deleveraging shares of this shard's accounts (numbered as the
///   next events, in the answer's order), then, for a deleveraging's remainder whose bankrupt
///   account is here, its debt; another shard's answer with nothing for it changes nothing;
/// - a request for candidates: the shard's offer, an `adl_offer` line of its effects (the
///   engine's ranking at this place in the stream, the same in every replay);
/// - a message that is neither is refused (a `rejected` effect).
fn apply_answer(
    engine: &mut Engine,
    shard: u32,
    stream_seq: u64,
    payload: &[u8],
) -> Result<(Vec<String>, u64), ClusterError> {
    let seq = message::event_seq(stream_seq, 0);
    let answer = match crate::system::decode_fund_message(stream_seq, payload) {
        Ok(crate::system::FundMessage::Answer(answer)) => answer,
        Ok(crate::system::FundMessage::Request(crate::system::Request::Adl(request))) => {
            let line = crate::system::offer_line(engine, shard, seq, &request)?;
            return Ok((vec![line], 1));
        }
        Ok(crate::system::FundMessage::Request(crate::system::Request::Share(request))) => {
            let line = crate::system::profit_line(engine, shard, seq, &request)?;
            return Ok((vec![line], 1));
        }
        // Refused, not fatal: a message that would stop every shard at each restart is
        // recorded as refused (the same on every shard and in every replay) and passed.
        Err(error) => {
            let effect = solvent_engine::effect::Effect::Rejected {
                reason: solvent_engine::effect::RejectReason::InvalidInput,
                detail: error.to_string(),
            };
            return Ok((encoded(&[EffectLine { seq, effect }])?, 1));
        }
    };
    let mut lines = Vec::new();
    let mut events = 0;
    if answer.claim.shard == shard {
        events += 1;
        lines.extend(
            engine
                .apply_claim_answer(seq, &answer.for_engine())
                .into_iter()
                .map(|effect| EffectLine { seq, effect }),
        );
    }
    for (index, share) in answer.adl.iter().enumerate() {
        if share.shard != shard {
            continue;
        }
        let seq = message::event_seq(
            stream_seq,
            (index + 1).min(message::MAX_EVENTS_PER_MESSAGE - 1),
        );
        events += 1;
        lines.extend(
            engine
                .apply_adl_assignment(seq, &share.for_engine(&answer.account))
                .into_iter()
                .map(|effect| EffectLine { seq, effect }),
        );
    }
    for (index, share) in answer.socialised.iter().enumerate() {
        if share.shard != shard {
            continue;
        }
        let seq = message::event_seq(
            stream_seq,
            (answer.adl.len() + index + 1).min(message::MAX_EVENTS_PER_MESSAGE - 1),
        );
        events += 1;
        lines.extend(
            engine
                .apply_socialised_share(seq, &share.for_engine(&answer.account, &answer.asset))
                .into_iter()
                .map(|effect| EffectLine { seq, effect }),
        );
    }
    let uncovered = answer.uncovered();
    if answer.remainder
        && uncovered > rust_decimal::Decimal::ZERO
        && engine.accounts().get(answer.account.as_str()).is_some()
    {
        // A deleveraging's remainder, claimed by a counterparty's shard: what nobody else
        // bears is the bankrupt account's debt, taken here, where the account is.
        let seq = message::event_seq(
            stream_seq,
            (answer.adl.len() + answer.socialised.len() + 1)
                .min(message::MAX_EVENTS_PER_MESSAGE - 1),
        );
        events += 1;
        lines.extend(
            engine
                .apply_claim_debt(
                    seq,
                    &answer.account,
                    &answer.asset,
                    uncovered,
                    answer.fund_before,
                )
                .into_iter()
                .map(|effect| EffectLine { seq, effect }),
        );
    }
    Ok((encoded(&lines)?, events))
}

/// Answers one query (see [`crate::query`]); a request that does not read gets a `bad_query`
/// answer, one without a reply subject none.
async fn answer_query(
    js: &Context,
    engine: &Engine,
    shard: u32,
    last_stream_seq: Option<u64>,
    request: &async_nats::Message,
) -> Result<(), ClusterError> {
    let Some(reply) = request.reply.clone() else {
        return Ok(());
    };
    let answer = match serde_json::from_slice::<Query>(&request.payload) {
        Ok(query) => answer(engine, shard, last_stream_seq, &query),
        Err(error) => Answer::Error {
            code: "bad_query".to_owned(),
            field: "query".to_owned(),
            message: error.to_string(),
        },
    };
    let payload = serde_json::to_vec(&answer)
        .map_err(|error| ClusterError::Nats(format!("encoding an answer: {error}")))?;
    js.client()
        .publish(reply, payload.into())
        .await
        .map_err(|error| ClusterError::Nats(format!("answering a query: {error}")))
}

async fn publish_effects(
    js: &Context,
    shard: u32,
    stream_seq: u64,
    lines: &[String],
) -> Result<PublishAckFuture, ClusterError> {
    let mut payload = Vec::new();
    for line in lines {
        payload.extend_from_slice(line.as_bytes());
        payload.push(b'\n');
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        format!("shard-{shard}-{stream_seq}").as_str(),
    );
    headers.insert(INPUT_SEQ_HEADER, stream_seq.to_string().as_str());
    js.publish_with_headers(effect_subject(shard), headers, payload.into())
        .await
        .map_err(|error| ClusterError::Nats(format!("publishing effects: {error}")))
}

/// Waits for one effect message's acknowledgement. A failure stops the shard: the effect
/// messages after it may be stored or not, and recovery, which reads which are, publishes the
/// rest again.
async fn acknowledged(
    publication: Option<Publication>,
    positions: &mut EffectPositions,
) -> Result<(), ClusterError> {
    match publication {
        Some(Publication::Sent(ack)) => {
            let ack = ack.await.map_err(|error| {
                ClusterError::Nats(format!("effects not acknowledged: {error}"))
            })?;
            positions.acknowledged = positions.acknowledged.max(ack.sequence);
        }
        Some(Publication::Failed(input_seq)) => {
            return Err(ClusterError::Nats(format!(
                "effects of input {input_seq} not sent (fail_effect_message, for testing)"
            )));
        }
        None => {}
    }
    Ok(())
}

/// An effect message awaiting its acknowledgement.
enum Publication {
    /// Sent: JetStream's acknowledgement to come.
    Sent(PublishAckFuture),
    /// Not sent, for testing ([`ShardConfig::fail_effect_message`]): the effects of this input
    /// sequence, whose acknowledgement fails.
    Failed(u64),
}

/// Writes a snapshot at `stream_seq`, with its effect floor, once every effect published so
/// far is acknowledged.
async fn snapshot(
    config: &ShardConfig,
    engine: &Engine,
    stream_seq: u64,
    in_flight: &mut VecDeque<Publication>,
    positions: &mut EffectPositions,
) -> Result<(), ClusterError> {
    while let Some(publication) = in_flight.pop_front() {
        acknowledged(Some(publication), positions).await?;
    }
    write_floor(&config.data_dir, stream_seq, positions.floor(stream_seq))?;
    solvent_store::write_snapshot(&config.data_dir, engine, stream_seq, SNAPSHOTS_KEPT)?;
    Ok(())
}

/// The effect messages of the shard stored since its snapshot's floor (every one for input
/// after the snapshot, whichever run published it), asked for again while JetStream elects
/// leaders (as in [`connect`]); `previous_end` is the input stream's last sequence now.
async fn stored_effects(
    js: &Context,
    config: &ShardConfig,
    recovered_from: Option<u64>,
    previous_end: u64,
    found: &mut u64,
) -> Result<EffectPositions, ClusterError> {
    let floor = recovered_from.map_or(0, |seq| read_floor(&config.data_dir, seq));
    let deadline = tokio::time::Instant::now() + STREAMS_PATIENCE;
    let messages = loop {
        match effects::read_after(js, Some(config.shard), floor).await {
            Err(ClusterError::Nats(problem)) if tokio::time::Instant::now() < deadline => {
                note_waiting(&problem);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            result => break result?,
        }
    };
    let after = recovered_from.unwrap_or(0);
    let mut positions = EffectPositions {
        stored: BTreeMap::new(),
        read_through: floor,
        previous_end,
        acknowledged: 0,
    };
    for message in messages {
        positions.read_through = positions.read_through.max(message.effect_seq);
        if message.input_seq > after {
            *found += 1;
            positions
                .stored
                .entry(message.input_seq)
                .or_insert(message.effect_seq);
        }
    }
    Ok(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A previous run stored the effects of inputs 12 and 15 out of order (15 first, at 45;
    /// 12 at 50); recovery from a snapshot at 10 read through 60; the input stream ended at 20
    /// when this run started; this run has had acknowledgements up to 80.
    fn positions() -> EffectPositions {
        EffectPositions {
            stored: BTreeMap::from([(12, 50), (15, 45)]),
            read_through: 60,
            previous_end: 20,
            acknowledged: 80,
        }
    }

    #[test]
    fn the_floor_stays_below_every_effect_message_a_recovery_after_it_must_find() {
        let positions = positions();
        // Below the first stored message for input after the snapshot, whatever its input.
        assert_eq!(positions.floor(10), 44);
        assert_eq!(positions.floor(12), 44);
        // Nothing stored after 15, but a previous run's late publication lands above 60.
        assert_eq!(positions.floor(15), 60);
        // Beyond what a previous run can have read: this run's own acknowledgements.
        assert_eq!(positions.floor(20), 80);
        assert_eq!(positions.floor(25), 80);
    }

    #[test]
    fn a_floor_reads_back_and_only_the_newest_are_kept() -> Result<(), ClusterError> {
        let dir = std::env::temp_dir().join(format!("solvent-floors-{}", std::process::id()));
        // A snapshot without a floor reads the whole subject.
        assert_eq!(read_floor(&dir, 7), 0);
        for seq in 1..=6 {
            write_floor(&dir, seq * 10, seq * 100)?;
        }
        assert_eq!(read_floor(&dir, 60), 600);
        assert_eq!(read_floor(&dir, 30), 300);
        // One more than the snapshots kept.
        assert_eq!(read_floor(&dir, 20), 0);
        assert_eq!(
            std::fs::read_dir(dir.join(FLOORS_DIR))
                .map(Iterator::count)
                .ok(),
            Some(SNAPSHOTS_KEPT + 1)
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
