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
//!   header and as JetStream's message id (`shard-K-S`); on recovery the shard reads the last
//!   effect message of its subject and publishes nothing for input at or below it. The engine is
//!   deterministic, so what it would publish again is what was published.
//! - **Snapshots** are written only once every effect up to their sequence is acknowledged by
//!   JetStream: a snapshot never holds a state whose effects could be lost.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{Config as StreamConfig, LastRawMessageErrorKind, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::EffectLine;
use tokio::sync::watch;

use crate::ClusterError;
use crate::message;
use crate::query::{Answer, Query, answer, query_subject};
use crate::routing::{
    EFFECT_STREAM, EFFECT_SUBJECT_PREFIX, INPUT_STREAM, MARKET_SUBJECT, SHARD_SUBJECT_PREFIX,
    SHARDS_METADATA_KEY, effect_subject, shard_subject,
};

/// The header that carries the input stream sequence an effect message answers.
pub const INPUT_SEQ_HEADER: &str = "Solvent-Input-Seq";

/// Effect messages published and not yet acknowledged, at most, before the shard reads on:
/// none. Recovery skips the input at or below the last effect message stored, which is sound
/// only if what is stored is a prefix: with several in flight, an early one can fail (a stream
/// leader changing) while a later one is stored, and its effects would be skipped for good (the
/// cluster kill test found it). Pipelining needs recovery to read which inputs' effects are
/// stored since the snapshot (their effect-stream position kept with it): not built yet.
const EFFECTS_IN_FLIGHT: usize = 0;

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
    let recorded = input
        .info()
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {INPUT_STREAM}: {error}")))?
        .config
        .metadata
        .get(SHARDS_METADATA_KEY)
        .cloned();
    if recorded.as_deref() != Some(shards.to_string().as_str()) {
        return Err(ClusterError::ShardCount {
            expected: shards,
            recorded,
        });
    }
    js.get_or_create_stream(StreamConfig {
        name: EFFECT_STREAM.to_owned(),
        subjects: vec![format!("{EFFECT_SUBJECT_PREFIX}*")],
        storage: StorageType::File,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        metadata,
        ..StreamConfig::default()
    })
    .await
    .map_err(|error| ClusterError::Nats(format!("stream {EFFECT_STREAM}: {error}")))?;
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

/// The last input stream sequence whose effects shard `shard` has published, if any.
async fn effects_published_through(js: &Context, shard: u32) -> Result<Option<u64>, ClusterError> {
    let stream = js
        .get_stream(EFFECT_STREAM)
        .await
        .map_err(|error| ClusterError::Nats(format!("stream {EFFECT_STREAM}: {error}")))?;
    match stream
        .get_last_raw_message_by_subject(&effect_subject(shard))
        .await
    {
        Ok(message) => {
            let seq = message
                .headers
                .get(INPUT_SEQ_HEADER)
                .and_then(|value| value.as_str().parse::<u64>().ok())
                .ok_or_else(|| {
                    ClusterError::Nats(format!(
                        "effect message {} of shard {shard} has no {INPUT_SEQ_HEADER} header",
                        message.sequence
                    ))
                })?;
            Ok(Some(seq))
        }
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(error) => Err(ClusterError::Nats(format!(
            "last effect of shard {shard}: {error}"
        ))),
    }
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
    let published_through = effects_published_through(&js, config.shard).await?;
    let mut report = ShardReport {
        shard: config.shard,
        recovered_from,
        skipped_snapshots,
        last_stream_seq: recovered_from,
        messages: 0,
        events: 0,
        effects: 0,
        effects_already_published: 0,
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
    let deliver_policy = DeliverPolicy::ByStartSequence {
        start_sequence: start,
    };
    let subjects = vec![shard_subject(config.shard), MARKET_SUBJECT.to_owned()];
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
    let mut in_flight: VecDeque<PublishAckFuture> = VecDeque::new();
    let mut since_snapshot = 0_u64;
    let done_at_start = config.stop_at_end && (pending == 0 || end < start);
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
            _ = stop.changed() => None,
        };
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
        let events = message::decode(stream_seq, &message.payload)?;
        let mut lines = Vec::new();
        for envelope in &events {
            for effect in engine.apply(envelope) {
                lines.push(EffectLine {
                    seq: envelope.seq,
                    effect,
                });
            }
        }
        report.messages += 1;
        report.events += events.len() as u64;
        report.effects += lines.len() as u64;
        report.last_stream_seq = Some(stream_seq);
        if !lines.is_empty() {
            if published_through.is_some_and(|through| stream_seq <= through) {
                report.effects_already_published += 1;
            } else {
                in_flight.push_back(publish_effects(&js, config.shard, stream_seq, &lines).await?);
                while in_flight.len() > EFFECTS_IN_FLIGHT {
                    acknowledged(in_flight.pop_front()).await?;
                }
            }
        }
        since_snapshot += 1;
        if since_snapshot >= config.snapshot_every {
            snapshot(&config, &engine, stream_seq, &mut in_flight).await?;
            since_snapshot = 0;
        }
        if config.stop_at_end && (pending == 0 || stream_seq >= end) {
            break;
        }
    }
    if let Some(last) = report.last_stream_seq
        && since_snapshot > 0
    {
        snapshot(&config, &engine, last, &mut in_flight).await?;
    }
    while let Some(ack) = in_flight.pop_front() {
        acknowledged(Some(ack)).await?;
    }
    report.state_hash = engine.state_hash();
    report.accounts = engine.accounts().len();
    Ok(report)
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
    lines: &[EffectLine],
) -> Result<PublishAckFuture, ClusterError> {
    let mut payload = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut payload, line)
            .map_err(|error| ClusterError::Nats(format!("encoding an effect: {error}")))?;
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

async fn acknowledged(ack: Option<PublishAckFuture>) -> Result<(), ClusterError> {
    if let Some(ack) = ack {
        ack.await
            .map_err(|error| ClusterError::Nats(format!("effects not acknowledged: {error}")))?;
    }
    Ok(())
}

/// Writes a snapshot at `stream_seq` once every effect published so far is acknowledged.
async fn snapshot(
    config: &ShardConfig,
    engine: &Engine,
    stream_seq: u64,
    in_flight: &mut VecDeque<PublishAckFuture>,
) -> Result<(), ClusterError> {
    while let Some(ack) = in_flight.pop_front() {
        acknowledged(Some(ack)).await?;
    }
    solvent_store::write_snapshot(&config.data_dir, engine, stream_seq, SNAPSHOTS_KEPT)?;
    Ok(())
}
