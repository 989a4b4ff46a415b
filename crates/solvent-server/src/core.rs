//! The engine's thread and the journal's thread: the service's write path (DESIGN.md 10).
//!
//! ```text
//! HTTP handlers --try_send--> [bounded queue] --> engine thread --> [bounded] --> commit thread
//!      ^  429 when full                           applies events,   (solvent_store::Committer:
//!      |                                          builds the next    appends what queued while
//!      |                                          view               the last commit synced)
//!      +------------- replies, feed, view <-------------------------------------- once durable
//! ```
//!
//! The engine thread never waits for a sync: while the journal thread makes batch N durable, it
//! applies batch N+1. Once a batch is durable the journal thread writes each accepted event's
//! effects as JSON, once, for the reply, the feed and the audit (the engine thread is the
//! service's one serial stage: it writes only what it must answer from itself, a refusal and an
//! event kept with its client id), and hands them to the audit writer's bounded queue
//! (`solvent_store::AuditSink`), never waiting for it: a writer behind catches up from the
//! journal. Nothing leaves the service before its batch is durable: replies, WebSocket
//! messages and the readers' view are all released by the journal thread after the append
//! returns, in the order the engine applied them. A failed append is final (the storage may have
//! dropped pages it reported written): the service answers every later request with
//! `journal_failed` and stops.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use arc_swap::ArcSwap;
use jiff::Timestamp;
use serde::Serialize;
use solvent_engine::Engine;
use solvent_engine::effect::{Effect, RejectReason};
use solvent_engine::event::{Envelope, Event};
use solvent_store::outcome::event_type;
use solvent_store::outcome::user_account;
use solvent_store::{
    AuditSink, ClientRecord, Committer, CommitterConfig, Entry, Journal, JournalError, Outcome,
};
use tokio::sync::oneshot;

use crate::client_ids::ClientIds;
use crate::feed::{Channel, Feed, FeedData};
use crate::forecast::Forecaster;
use crate::json_text::JsonText;
use crate::view::View;

/// One event as a client sends it.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The client's id for it: a retry with the same id is answered with the first result.
    pub client_id: Option<String>,
    /// When it happened; `None` stamps it with the service's clock when the engine takes it
    /// (never before the engine's time, so a clock stepping back cannot refuse live events).
    pub ts: Option<Timestamp>,
    /// What happened.
    pub event: Event,
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Applied and durable.
    Accepted,
    /// Refused: nothing changed (the effects name the reason).
    Rejected,
    /// A retry of an event already accepted under the same client id: not applied again; the
    /// reply is the first one.
    Duplicate,
}

/// The answer to one event.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EventReply {
    /// The sequence number the event was given (`None` when refused: a refusal takes none).
    pub seq: Option<u64>,
    /// What became of it.
    pub status: Status,
    /// The client's id, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its effects, as `solvent replay` writes them.
    #[schema(value_type = Vec<Object>)]
    pub effects: Vec<JsonText>,
}

impl EventReply {
    /// Appends the reply as JSON to `out`: what its `Serialize` writes, the effects copied as
    /// they were written.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self.seq {
            Some(seq) => {
                let _ = write!(out, r#"{{"seq":{seq},"#);
            }
            None => out.push_str(r#"{"seq":null,"#),
        }
        out.push_str(match self.status {
            Status::Accepted => r#""status":"accepted""#,
            Status::Rejected => r#""status":"rejected""#,
            Status::Duplicate => r#""status":"duplicate""#,
        });
        if let Some(id) = &self.client_id {
            out.push_str(r#","client_id":"#);
            out.push_str(&serde_json::to_string(id).unwrap_or_default());
        }
        out.push_str(r#","effects":["#);
        for (n, effect) in self.effects.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(effect.as_str());
        }
        out.push_str("]}");
    }
}

/// Why the write path could not take a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The engine's queue is full: retry after a moment.
    #[error("the engine's queue is full")]
    QueueFull,
    /// The journal failed and the service is stopping.
    #[error("the journal failed: {0}")]
    JournalFailed(String),
    /// A client id older than the in-memory window could not be looked up in the journal, so
    /// whether the event is a retry is unknown: nothing of the request was applied.
    #[error("the journal could not be read to check a client id: {0}")]
    ClientLookup(String),
}

type ReplySender = oneshot::Sender<Result<Vec<EventReply>, SubmitError>>;

/// The last sequence number and the state hash at it.
pub type HashAnswer = (Option<u64>, String);

/// A request to the engine thread.
pub enum Command {
    /// Apply these events, in order; answer once they are durable.
    Submit {
        /// The events.
        events: Vec<Incoming>,
        /// Where the answer goes.
        reply: ReplySender,
    },
    /// Finish what was taken and stop.
    Stop,
    /// The engine's state hash, once everything before it is durable.
    StateHash {
        /// Where the answer goes: the last sequence number and the hash.
        reply: oneshot::Sender<HashAnswer>,
    },
    /// A copy of the engine, once everything before it is durable (for simulations such as a
    /// cascade, which run on the copy, off the engine's thread).
    Copy {
        /// Where the copy goes.
        reply: oneshot::Sender<Box<Engine>>,
    },
}

/// What the engine thread hands the commit thread besides the entries: everything released
/// once they are durable.
struct Batch {
    /// Each request's replies; an accepted event's reply takes the effects of `applied[i]`,
    /// written once the batch is durable.
    replies: Vec<(ReplySender, Vec<Draft>)>,
    hashes: Vec<(oneshot::Sender<HashAnswer>, HashAnswer)>,
    copies: Vec<(oneshot::Sender<Box<Engine>>, Box<Engine>)>,
    /// The accepted events, in order, with their effects as the engine returned them.
    applied: Vec<Applied>,
    view: Arc<View>,
    events: usize,
    /// The engine's last sequence number once this batch is applied (durable once released).
    last_seq: Option<u64>,
    /// A copy of the engine to snapshot once this batch is durable, with its sequence number.
    snapshot: Option<(Engine, u64)>,
    snapshots: Option<SyncSender<(Engine, u64)>>,
}

/// A reply as the engine thread leaves it: an accepted event's effects are those of
/// `Batch::applied[i]`, written once the batch is durable.
type Draft = (EventReply, Option<usize>);

/// An accepted event whose effects the journal thread writes as JSON once its batch is durable:
/// for its reply, the feed and the audit.
struct Applied {
    seq: u64,
    ts: Timestamp,
    event_type: &'static str,
    effects: Vec<Effect>,
    /// The effects already written, where the engine thread needed them (an event kept with
    /// its client id, whose reply is stored with it).
    written: Option<Vec<JsonText>>,
    /// The accounts and effect types the audit indexes (its lines are added when written).
    outcome: Outcome,
    /// The `prices` channel's message, after the event's effects.
    price: Option<Arc<str>>,
}

/// What readers and the HTTP layer share with the two threads.
pub struct Shared {
    /// The latest durable view.
    pub view: ArcSwap<View>,
    /// The WebSocket feed.
    pub feed: Feed,
    /// A reader of the journal for the audit page (one request at a time): events and their
    /// effects, both journaled.
    pub journal: std::sync::Mutex<Box<dyn solvent_store::JournalReader>>,
    /// Each account's health over time, bounded per account.
    pub health: crate::health::History,
    /// Set once the journal fails: the service is stopping.
    pub failure: OnceLock<String>,
    /// Submissions waiting in the engine's queue.
    pub queue_depth: std::sync::atomic::AtomicUsize,
    /// The last durable sequence number (0: none yet): client ids up to it may leave the
    /// engine's window, the journal answers for them.
    pub durable_seq: std::sync::atomic::AtomicU64,
    /// The audit writer's queue, fed by the journal thread as batches become durable.
    pub audit: Option<AuditSink>,
}

/// When and where the service snapshots its state.
#[derive(Clone, Debug)]
pub struct SnapshotPolicy {
    /// The data directory (snapshots go to its `snapshots/`).
    pub dir: std::path::PathBuf,
    /// Accepted events between snapshots.
    pub every_events: u64,
    /// Snapshot files kept (the newest).
    pub keep: usize,
}

/// Limits of the write path.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Submissions the engine's queue holds before answering 429.
    pub queue: usize,
    /// Events the engine thread takes into one batch (more wait for the next). A batch is
    /// answered only once all of it is durable, so a larger one holds its first request back
    /// behind the others: at 4,096 four requests of 1,000 events were applied, committed and
    /// answered together, and the engine sat idle while their senders turned around (the
    /// committer groups what queues behind a sync on its own side).
    pub batch_events: usize,
    /// Entries one journal commit takes at most.
    pub commit_entries: usize,
    /// Client ids (each with its first reply) kept in memory, the most recent; a retry of an
    /// older one is answered from the journal. The window also holds, beyond this, the ids of
    /// events not yet durable (at most a few batches' worth); a Bloom filter of fixed size
    /// ([`crate::client_ids::FILTER_BYTES`]) spares new ids the journal read.
    pub client_window: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue: 1024,
            batch_events: 1024,
            commit_entries: 65_536,
            client_window: 100_000,
        }
    }
}

/// The running write path: the queue's sending end and the two threads.
pub struct Core {
    sender: SyncSender<Command>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Core {
    /// Starts the engine thread over `engine` (recovered or new) and the journal thread over
    /// `journal` (which must hold every event `engine` has applied). Retries of client ids
    /// are answered from a window of the recent ones and from a reader of `journal` for older
    /// ones ([`crate::client_ids`]). With a `forecaster`, the closes the engine's time crosses
    /// get their `scenario_range` events ([`crate::forecast`]); it first reads `journal` for the
    /// closes taken before. With `audit`, each durable event's effects go to the audit writer
    /// behind it.
    ///
    /// # Errors
    /// The threads could not be spawned, or the journal (or its reader) could not be read.
    pub fn start(
        engine: Engine,
        journal: Box<dyn Journal>,
        limits: Limits,
        clock: Clock,
        snapshots: Option<SnapshotPolicy>,
        mut forecaster: Option<Forecaster>,
        audit: Option<solvent_store::AuditSink>,
    ) -> std::io::Result<Self> {
        if let Some(forecaster) = forecaster.as_mut() {
            let read = forecaster
                .catch_up(journal.as_ref())
                .map_err(std::io::Error::other)?;
            tracing::info!(
                events = read,
                day = ?forecaster.day(),
                "forecaster: the closes taken before read from the journal"
            );
        }
        let shared = Arc::new(Shared {
            view: ArcSwap::from_pointee(View::of(&engine)),
            feed: Feed::new(),
            journal: std::sync::Mutex::new(journal.reader().map_err(std::io::Error::other)?),
            health: crate::health::History::default(),
            failure: OnceLock::new(),
            queue_depth: std::sync::atomic::AtomicUsize::new(0),
            durable_seq: std::sync::atomic::AtomicU64::new(engine.last_seq().unwrap_or(0)),
            audit,
        });
        let client_ids = ClientIds::new(
            limits.client_window,
            journal.reader().map_err(std::io::Error::other)?,
        )
        .map_err(std::io::Error::other)?;
        let (sender, commands) = std::sync::mpsc::sync_channel(limits.queue);
        // Two batches waiting at most while one syncs; beyond that the engine thread waits, its
        // queue fills and clients get 429 (backpressure, not a backlog).
        // The audit is fed by `release`, which writes the effects it takes.
        let journal_keeps_outcomes = journal.keeps_outcomes();
        let committer = Committer::start(
            Box::new(Timed(journal)) as Box<dyn Journal>,
            CommitterConfig {
                queue_batches: 2,
                max_entries_per_commit: limits.commit_entries,
            },
        );
        let snapshot_writer = match snapshots {
            Some(policy) => Some(SnapshotWriter::start(policy)?),
            None => None,
        };
        let engine_thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("solvent-engine".to_owned())
                .spawn(move || {
                    EngineLoop {
                        engine,
                        client_ids,
                        shared,
                        limits,
                        clock,
                        since_snapshot: 0,
                        snapshot_writer,
                        forecaster,
                        buffer: Vec::with_capacity(512),
                        journal_keeps_outcomes,
                    }
                    .run(&commands, committer);
                })?
        };
        Ok(Self {
            sender,
            shared,
            threads: vec![engine_thread],
        })
    }

    /// What readers share.
    #[must_use]
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A handle to send commands with.
    #[must_use]
    pub fn handle(&self) -> CoreHandle {
        CoreHandle {
            sender: self.sender.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops taking commands and waits until everything taken is durable and answered.
    pub fn shutdown(self) {
        // Handles elsewhere keep the queue open: the engine thread is told to stop, after
        // whatever is queued before this (a blocking send: a full queue drains).
        let _ = self.sender.send(Command::Stop);
        self.shared
            .queue_depth
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(self.sender);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// What stamps an event that comes without a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The service's wall clock (never before the engine's time, so a clock stepping back
    /// cannot refuse live events).
    #[default]
    Wall,
    /// The engine's own time: the last event's. For a replay of history such as the demo's,
    /// where a wall-clock stamp would move the engine years ahead of the feed and every later
    /// historical event would be refused as out of order.
    Engine,
}

/// A cloneable handle to the write path.
#[derive(Clone)]
pub struct CoreHandle {
    sender: SyncSender<Command>,
    shared: Arc<Shared>,
}

impl CoreHandle {
    /// Queues `events`; the answer arrives once they are durable.
    ///
    /// # Errors
    /// [`SubmitError::QueueFull`] (never waits), [`SubmitError::JournalFailed`].
    pub fn submit(
        &self,
        events: Vec<Incoming>,
    ) -> Result<oneshot::Receiver<Result<Vec<EventReply>, SubmitError>>, SubmitError> {
        if let Some(failure) = self.shared.failure.get() {
            return Err(SubmitError::JournalFailed(failure.clone()));
        }
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Submit { events, reply })?;
        Ok(receiver)
    }

    /// The state hash once everything queued before is durable.
    ///
    /// # Errors
    /// As [`Self::submit`].
    pub fn state_hash(&self) -> Result<oneshot::Receiver<HashAnswer>, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::StateHash { reply })?;
        Ok(receiver)
    }

    /// A copy of the engine once everything queued before is durable.
    ///
    /// # Errors
    /// As [`Self::submit`].
    pub fn copy(&self) -> Result<oneshot::Receiver<Box<Engine>>, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Copy { reply })?;
        Ok(receiver)
    }

    fn send(&self, command: Command) -> Result<(), SubmitError> {
        match self.sender.try_send(command) {
            Ok(()) => {
                self.shared
                    .queue_depth
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(SubmitError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::JournalFailed(
                self.shared
                    .failure
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "the engine has stopped".to_owned()),
            )),
        }
    }

    /// What readers share.
    #[must_use]
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

struct EngineLoop {
    engine: Engine,
    client_ids: ClientIds,
    shared: Arc<Shared>,
    limits: Limits,
    clock: Clock,
    since_snapshot: u64,
    snapshot_writer: Option<SnapshotWriter>,
    /// Makes the scheduled forecasts, when the service was given a history.
    forecaster: Option<Forecaster>,
    /// Scratch space for writing effects as JSON, kept between events.
    buffer: Vec<u8>,
    /// Whether the journal keeps the effects with each entry ([`Journal::keeps_outcomes`]).
    journal_keeps_outcomes: bool,
}

/// Writes snapshots on its own thread, from copies of the engine taken between batches: the
/// engine pays for a copy, never for serialising or syncing a file.
struct SnapshotWriter {
    every_events: u64,
    sender: SyncSender<(Engine, u64)>,
}

impl SnapshotWriter {
    fn start(policy: SnapshotPolicy) -> std::io::Result<Self> {
        // One waiting copy at most: a snapshot due while the last is still being written is
        // skipped (the next one comes `every_events` later), never queued behind it.
        let (sender, copies) = std::sync::mpsc::sync_channel::<(Engine, u64)>(1);
        let every_events = policy.every_events;
        std::thread::Builder::new()
            .name("solvent-snapshots".to_owned())
            .spawn(move || {
                while let Ok((engine, seq)) = copies.recv() {
                    let started = Instant::now();
                    match solvent_store::write_snapshot(&policy.dir, &engine, seq, policy.keep) {
                        Ok(_) => {
                            crate::metrics::snapshot(started.elapsed());
                            tracing::info!(seq, "snapshot written");
                        }
                        // A failed snapshot loses nothing (the journal holds every event):
                        // recovery replays a longer tail.
                        Err(error) => tracing::warn!(seq, %error, "snapshot failed"),
                    }
                }
            })?;
        Ok(Self {
            every_events,
            sender,
        })
    }
}

impl EngineLoop {
    fn run(mut self, commands: &Receiver<Command>, committer: Committer<Box<dyn Journal>>) {
        let mut view = self.shared.view.load_full();
        while let Ok(first) = commands.recv() {
            // Sized for a usual full batch at once (an entry and an applied event each): grown
            // by doubling, these vectors (a few hundred kilobytes each at a full batch) were copied several times per batch into fresh memory the kernel had to
            // fault in. Bounded, whatever the configured batch: they still grow past it.
            let presized = self.limits.batch_events.min(PRESIZED_EVENTS);
            let mut entries = Vec::with_capacity(presized);
            let mut batch = Batch {
                replies: Vec::new(),
                hashes: Vec::new(),
                copies: Vec::new(),
                applied: Vec::with_capacity(presized),
                view: Arc::clone(&view),
                events: 0,
                last_seq: None,
                snapshot: None,
                snapshots: None,
            };
            let mut changed = Changed::default();
            let mut next = Some(first);
            let mut stopping = false;
            while let Some(command) = next.take() {
                self.shared
                    .queue_depth
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                match command {
                    Command::Submit { events, reply } => {
                        match self.apply_all(events, &mut batch, &mut entries, &mut changed) {
                            Ok(replies) => batch.replies.push((reply, replies)),
                            // Nothing of it was applied: answered at once.
                            Err(error) => {
                                let _ = reply.send(Err(error));
                            }
                        }
                    }
                    Command::StateHash { reply } => {
                        let answer = (self.engine.last_seq(), self.engine.state_hash());
                        batch.hashes.push((reply, answer));
                    }
                    Command::Copy { reply } => {
                        batch.copies.push((reply, Box::new(self.engine.clone())));
                    }
                    Command::Stop => stopping = true,
                }
                if !stopping && batch.events < self.limits.batch_events {
                    next = commands.try_recv().ok();
                }
            }
            if changed.market || changed.venue || !entries.is_empty() {
                // The accounts whose view the batch refreshes: the user accounts its events and
                // their effects concern, as the audit indexes them, each once.
                let mut touched: Vec<&str> = batch
                    .applied
                    .iter()
                    .flat_map(|applied| applied.outcome.accounts.iter().map(String::as_str))
                    .collect();
                touched.sort_unstable();
                touched.dedup();
                view = Arc::new(view.next(&self.engine, touched, changed.market, changed.venue));
            }
            batch.view = Arc::clone(&view);
            batch.last_seq = self.engine.last_seq();
            self.since_snapshot += entries.len() as u64;
            if let Some(writer) = &self.snapshot_writer
                && self.since_snapshot >= writer.every_events
                && let Some(seq) = self.engine.last_seq()
            {
                // Written only after this batch is durable: a snapshot never holds an event
                // the journal could lose.
                let copying = std::time::Instant::now();
                batch.snapshot = Some((self.engine.clone(), seq));
                crate::metrics::snapshot_copy(copying.elapsed());
                batch.snapshots = Some(writer.sender.clone());
                self.since_snapshot = 0;
            }
            let shared = Arc::clone(&self.shared);
            let submitted = committer.submit(entries, move |result| match result {
                Ok(()) => release(batch, &shared),
                Err(error) => fail(&shared, &error, batch),
            });
            if let Err(error) = submitted {
                // The committer stopped after a failed append: so does the engine. (The batch's
                // replies were dropped with it: their callers are told the engine stopped.)
                let _ = self.shared.failure.set(error.to_string());
                return;
            }
            if stopping {
                // Everything taken is committed and answered before the thread ends.
                let _ = committer.stop();
                return;
            }
        }
        let _ = committer.stop();
    }

    /// Applies `events` in order. Their client ids are looked up first (older ones in the
    /// journal), so that a failed lookup refuses the whole request before anything is applied.
    fn apply_all(
        &mut self,
        events: Vec<Incoming>,
        batch: &mut Batch,
        entries: &mut Vec<Entry>,
        changed: &mut Changed,
    ) -> Result<Vec<Draft>, SubmitError> {
        self.client_ids.evict(
            match self
                .shared
                .durable_seq
                .load(std::sync::atomic::Ordering::Acquire)
            {
                0 => None,
                seq => Some(seq),
            },
        );
        for id in events
            .iter()
            .filter_map(|incoming| incoming.client_id.as_ref())
        {
            self.client_ids
                .find(id)
                .map_err(|error| SubmitError::ClientLookup(error.to_string()))?;
        }
        let mut replies = Vec::with_capacity(events.len());
        for incoming in events {
            batch.events += 1;
            if let Some(first) = incoming
                .client_id
                .as_ref()
                .and_then(|id| self.client_ids.recent(id))
            {
                replies.push((duplicate_of(first), None));
                continue;
            }
            let ts = incoming.ts.unwrap_or_else(|| match self.clock {
                Clock::Wall => Timestamp::now().max(self.engine.now()),
                Clock::Engine => self.engine.now(),
            });
            // An event whose time jumps many days ahead would make a forecast of every day
            // between (each a fit over the whole history) before the engine even reads it, and
            // would move the engine's time by them though it is refused: it is refused first.
            if let Some(crossed) = self
                .forecaster
                .as_ref()
                .map(|forecaster| forecaster.closes_crossed(ts))
                .filter(|crossed| *crossed > MAX_CLOSES_PER_EVENT)
            {
                replies.push((
                    self.refuse(
                        incoming,
                        RejectReason::OutOfRange,
                        format!(
                            "ts {ts}: the event's time crosses {crossed} daily closes, each of which gets a volatility forecast; at most {MAX_CLOSES_PER_EVENT} are made before one event: send the days between first"
                        ),
                    ),
                    None,
                ));
                continue;
            }
            // The closes this event's time crosses come first, each with its forecast, stamped
            // at 00:00 UTC: the event then finds the ranges of its day in force.
            let due = match self.forecaster.as_mut() {
                Some(forecaster) => forecaster.due(ts, self.engine.venue()),
                None => Vec::new(),
            };
            for (at, event) in due {
                batch.events += 1;
                // What the log names: the forecast, as the event carries it.
                let forecast = match &event {
                    Event::ScenarioRange(r) => {
                        format!(
                            "{} {} range {} ({:?})",
                            r.underlying, r.as_of, r.range, r.bound
                        )
                    }
                    _ => String::new(),
                };
                let scheduled = Incoming {
                    client_id: None,
                    ts: Some(at),
                    event,
                };
                let (reply, _) = self.apply_one(scheduled, at, batch, entries, changed);
                match reply.status {
                    Status::Accepted => {
                        tracing::info!(seq = ?reply.seq, %at, %forecast, "scheduled forecast appended");
                    }
                    _ => tracing::warn!(
                        %at,
                        %forecast,
                        effects = ?reply.effects.iter().map(JsonText::as_str).collect::<Vec<_>>(),
                        "scheduled forecast refused"
                    ),
                }
            }
            replies.push(self.apply_one(incoming, ts, batch, entries, changed));
        }
        Ok(replies)
    }

    /// The reply to an event refused before the engine sees it: nothing applied, no sequence
    /// number taken, the reason named as the engine names its own refusals.
    fn refuse(&mut self, incoming: Incoming, reason: RejectReason, detail: String) -> EventReply {
        let seq = self.engine.last_seq().map_or(1, |last| last + 1);
        let effect = Effect::Rejected { reason, detail };
        EventReply {
            seq: None,
            status: Status::Rejected,
            client_id: incoming.client_id,
            effects: self.write_effects(&[effect], seq),
        }
    }

    /// Applies one event stamped `ts`; an accepted one is recorded for the journal, and its
    /// effects for the reply, the feed and the audit, which the journal thread writes once the
    /// batch is durable (the index returned: `batch.applied`'s). A refusal is written here.
    fn apply_one(
        &mut self,
        incoming: Incoming,
        ts: Timestamp,
        batch: &mut Batch,
        entries: &mut Vec<Entry>,
        changed: &mut Changed,
    ) -> Draft {
        let seq = self.engine.last_seq().map_or(1, |last| last + 1);
        let envelope = Envelope {
            seq,
            ts,
            event: incoming.event,
        };
        let effects = self.engine.apply(&envelope);
        if self.engine.last_seq() != Some(seq) {
            let reply = EventReply {
                seq: None,
                status: Status::Rejected,
                client_id: incoming.client_id,
                effects: self.write_effects(&effects, seq),
            };
            return (reply, None);
        }
        note_changes(&envelope.event, changed);
        // The effects are written now only where they are needed before the batch is durable:
        // the first reply an event kept with its client id keeps (a retry may come first), and
        // a journal that keeps the effects with their entry (the memory journal; the SQLite
        // journal leaves them to the audit writer, fed by `release`).
        let written = (incoming.client_id.is_some() || self.journal_keeps_outcomes)
            .then(|| self.write_effects(&effects, seq));
        let stored = match (&incoming.client_id, &written) {
            (Some(id), Some(lines)) => {
                let reply = EventReply {
                    seq: Some(seq),
                    status: Status::Accepted,
                    client_id: Some(id.clone()),
                    effects: lines.clone(),
                };
                let mut text = String::with_capacity(256);
                reply.write_json(&mut text);
                self.client_ids.insert(
                    id.clone(),
                    ClientRecord {
                        seq,
                        reply: Some(text.clone()),
                    },
                );
                Some(text)
            }
            _ => None,
        };
        if let Some(forecaster) = self.forecaster.as_mut() {
            forecaster.observe(&envelope);
        }
        // The accounts the audit indexes (and the view refreshes); the effects' lines join
        // them once written.
        let outcome = Outcome::of(&envelope.event, &effects, Vec::new());
        let entry_outcome = match &written {
            Some(lines) if self.journal_keeps_outcomes => Outcome {
                effects: lines.iter().map(JsonText::shared).collect(),
                ..outcome.clone()
            },
            _ => Outcome::default(),
        };
        let applied = batch.applied.len();
        batch.applied.push(Applied {
            seq,
            ts: envelope.ts,
            event_type: event_type(&envelope.event),
            effects,
            written,
            outcome,
            price: price_message(&envelope),
        });
        let reply = EventReply {
            seq: Some(seq),
            status: Status::Accepted,
            client_id: incoming.client_id.clone(),
            effects: Vec::new(),
        };
        entries.push(Entry {
            envelope,
            client_id: incoming.client_id,
            reply: stored,
            outcome: entry_outcome,
        });
        (reply, Some(applied))
    }

    /// Effects of event `seq` as JSON, in the engine's order.
    fn write_effects(&mut self, effects: &[Effect], seq: u64) -> Vec<JsonText> {
        effects
            .iter()
            .map(|effect| JsonText::of_effect(effect, seq, &mut self.buffer))
            .collect()
    }
}

/// The most events a batch's vectors are sized for before it is applied (a batch configured
/// larger grows past it).
const PRESIZED_EVENTS: usize = 4096;

/// The most daily closes one event's time may cross where the service forecasts at each close
/// (a month: a feed that was down for longer sends the days between first).
const MAX_CLOSES_PER_EVENT: i64 = 31;

/// The answer to a retry: the first reply, marked as a duplicate.
fn duplicate_of(first: &ClientRecord) -> EventReply {
    let Some(reply) = &first.reply else {
        return EventReply {
            seq: Some(first.seq),
            status: Status::Duplicate,
            client_id: None,
            effects: Vec::new(),
        };
    };
    match serde_json::from_str::<serde_json::Value>(reply) {
        Ok(value) => EventReply {
            seq: value.get("seq").and_then(serde_json::Value::as_u64),
            status: Status::Duplicate,
            client_id: value
                .get("client_id")
                .and_then(|id| id.as_str())
                .map(str::to_owned),
            effects: value
                .get("effects")
                .and_then(|effects| effects.as_array())
                .map(|effects| effects.iter().map(JsonText::of).collect())
                .unwrap_or_default(),
        },
        Err(_) => EventReply {
            seq: Some(first.seq),
            status: Status::Duplicate,
            client_id: None,
            effects: Vec::new(),
        },
    }
}

#[derive(Default)]
struct Changed {
    market: bool,
    venue: bool,
}

/// What an accepted event changes beside its accounts' figures: the market the view copies,
/// or the venue.
fn note_changes(event: &Event, changed: &mut Changed) {
    match event {
        Event::IndexPrice(_)
        | Event::MarkPrice(_)
        | Event::VolSurface(_)
        | Event::Funding(_)
        | Event::Settlement(_) => changed.market = true,
        // A scenario range installs the scaled grid in the engine's venue.
        Event::ListInstrument(_) | Event::UpdateVenue(_) | Event::ScenarioRange(_) => {
            changed.venue = true;
            changed.market = true;
        }
        Event::Deposit(_)
        | Event::Withdraw(_)
        | Event::Transfer(_)
        | Event::Fill(_)
        | Event::SetLeverage(_)
        | Event::SetMarginMode(_)
        | Event::SetIsolatedMargin(_)
        | Event::SetBufferPolicy(_)
        | Event::SetAutoTopUp(_) => {}
    }
}

/// The WebSocket channels an effect goes to.
fn channels(effect: &Effect) -> Vec<Channel> {
    let account = |id: &str| Channel::Account(id.to_owned());
    match effect {
        Effect::AccountUpdated { account: id, .. } | Effect::StateChanged { account: id, .. } => {
            vec![account(id), Channel::Health]
        }
        Effect::MarginCall { account: id, .. } => vec![account(id), Channel::MarginCalls],
        Effect::Liquidation { account: id, .. }
        | Effect::LiquidationDeferred { account: id, .. } => {
            vec![account(id), Channel::Liquidations]
        }
        Effect::Adl {
            account: id,
            counterparty,
            ..
        } => vec![account(id), account(counterparty), Channel::Liquidations],
        Effect::DeficitBeyondFund { account: id, .. } => {
            vec![account(id), Channel::InsuranceFund, Channel::Liquidations]
        }
        Effect::InsuranceFundChanged { .. } => vec![Channel::InsuranceFund],
        Effect::TransferApplied { from, to, .. } => {
            let mut channels: Vec<Channel> = [from, to]
                .into_iter()
                .filter_map(|name| user_account(name))
                .map(account)
                .collect();
            channels.dedup();
            channels
        }
        Effect::PriceGuarded { .. } => vec![Channel::Prices],
        Effect::Rejected { .. } => Vec::new(),
    }
}

/// The `prices` message of an accepted price event.
fn price_message(envelope: &Envelope) -> Option<Arc<str>> {
    let (kind, name, price) = match &envelope.event {
        Event::IndexPrice(e) => ("index_price", &e.underlying, e.price.value()),
        Event::MarkPrice(e) => ("mark_price", &e.instrument, e.price.value()),
        _ => return None,
    };
    Some(
        serde_json::json!({
            "seq": envelope.seq,
            "type": kind,
            "name": name,
            "price": price.normalize().to_string(),
            "ts": envelope.ts.to_string(),
        })
        .to_string()
        .into(),
    )
}

/// A journal whose appends (write and sync) are timed for `/metrics`.
struct Timed(Box<dyn Journal>);

impl Journal for Timed {
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        self.0.append(entries)?;
        crate::metrics::committed(entries.len(), started.elapsed());
        Ok(())
    }

    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        self.0.last_seq()
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        self.0.read_after(after, limit)
    }

    fn client(&self, client_id: &str) -> Result<Option<solvent_store::ClientRecord>, JournalError> {
        self.0.client(client_id)
    }

    fn reader(&self) -> Result<Box<dyn solvent_store::JournalReader>, JournalError> {
        self.0.reader()
    }
    fn keeps_outcomes(&self) -> bool {
        self.0.keeps_outcomes()
    }
}

/// Publishes a durable batch: the view first (a reader told of an effect finds it), then the
/// feed, then the replies.
fn release(batch: Batch, shared: &Shared) {
    crate::metrics::applied(batch.events);
    shared.view.store(batch.view);
    if let Some(seq) = batch.last_seq {
        shared
            .durable_seq
            .store(seq, std::sync::atomic::Ordering::Release);
    }
    // The accounts' figures after each update, for their health history: read here from the
    // effects, off the engine's thread.
    shared.health.record(
        batch
            .applied
            .iter()
            .flat_map(|applied| applied.effects.iter().map(|e| (applied.seq, applied.ts, e))),
    );
    // Each accepted event's effects written once, for its reply, the feed and the audit.
    let mut buffer = Vec::with_capacity(512);
    let mut feed = Vec::with_capacity(batch.applied.len() * 2);
    let mut lines_of = Vec::with_capacity(batch.applied.len());
    let mut audit = shared.audit.as_ref();
    for applied in batch.applied {
        let lines = applied.written.unwrap_or_else(|| {
            applied
                .effects
                .iter()
                .map(|effect| JsonText::of_effect(effect, applied.seq, &mut buffer))
                .collect()
        });
        // The feed's copy carries the event's time (for charts over time), written once and
        // only when one has a channel.
        let mut ts: Option<Arc<str>> = None;
        for (effect, line) in applied.effects.iter().zip(&lines) {
            let channels = channels(effect);
            if channels
                .iter()
                .any(|c| matches!(c, Channel::MarginCalls | Channel::Liquidations))
            {
                // Each margin call, liquidation, ADL and uncovered deficit goes to one of these
                // two channels once: counted once.
                crate::metrics::effect(effect.kind());
            }
            if channels.is_empty() {
                continue;
            }
            let ts = ts.get_or_insert_with(|| applied.ts.to_string().into());
            for channel in channels {
                feed.push((
                    channel,
                    FeedData::Stamped {
                        line: line.clone(),
                        ts: Arc::clone(ts),
                    },
                ));
            }
        }
        if let Some(price) = applied.price {
            feed.push((Channel::Prices, FeedData::Text(price)));
        }
        if let Some(sink) = audit {
            let mut outcome = applied.outcome;
            outcome.effects = lines.iter().map(JsonText::shared).collect();
            if !sink.offer_as(applied.seq, applied.event_type, outcome) {
                // The writer catches up from the journal from here: offering the rest of the
                // batch would only be work for it to discard.
                audit = None;
            }
        }
        lines_of.push(lines);
    }
    shared.feed.publish_all(feed);
    for (reply, replies) in batch.replies {
        let replies = replies
            .into_iter()
            .map(|(mut reply, applied)| {
                if let Some(lines) = applied.and_then(|index| lines_of.get_mut(index)) {
                    reply.effects = std::mem::take(lines);
                }
                reply
            })
            .collect();
        let _ = reply.send(Ok(replies));
    }
    for (reply, answer) in batch.hashes {
        let _ = reply.send(answer);
    }
    for (reply, copy) in batch.copies {
        let _ = reply.send(copy);
    }
    if let (Some(copy), Some(writer)) = (batch.snapshot, batch.snapshots) {
        let _ = writer.try_send(copy);
    }
}

fn fail(shared: &Shared, error: &JournalError, batch: Batch) {
    let message = error.to_string();
    if shared.failure.set(message.clone()).is_ok() {
        tracing::error!(error = %message, "journal append failed: the service stops");
    }
    for (reply, _) in batch.replies {
        let _ = reply.send(Err(SubmitError::JournalFailed(message.clone())));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// The reply kept with a client id is written by hand (`write_json`); a retry is answered
    /// from it, so it must be what `Serialize` writes, byte for byte.
    #[test]
    fn a_reply_written_by_hand_is_what_serialize_writes() {
        let effects = vec![
            JsonText::new(r#"{"seq":7,"type":"deposited","account":"a\"1","amount":"10"}"#),
            JsonText::new(r#"{"seq":7,"type":"account_updated","health":null}"#),
        ];
        for reply in [
            EventReply {
                seq: Some(7),
                status: Status::Accepted,
                client_id: Some("dep \"1\" \u{e9}\\".to_owned()),
                effects: effects.clone(),
            },
            EventReply {
                seq: None,
                status: Status::Rejected,
                client_id: None,
                effects: effects[..1].to_vec(),
            },
            EventReply {
                seq: Some(3),
                status: Status::Duplicate,
                client_id: Some("c".to_owned()),
                effects: Vec::new(),
            },
        ] {
            let mut by_hand = String::new();
            reply.write_json(&mut by_hand);
            assert_eq!(by_hand, serde_json::to_string(&reply).unwrap());
        }
    }
}
