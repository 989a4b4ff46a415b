//! The audit writer: each journaled event's effects and the audit's index rows, written to the
//! audit file ([`crate::AUDIT_FILE`]) after the event is durable, off the acknowledgement path.
//!
//! In steady state the writer applies nothing: the engine thread renders each event's effects
//! once (for its reply and the WebSocket) and they travel with the event to the commit thread
//! ([`crate::Entry::outcome`]); once the commit holding them is durable, the commit thread hands
//! each event's outcome to the writer through a bounded queue ([`AuditSink`]), with `try_send`:
//! it never waits for the writer. The writer takes what is queued and writes it, a batch per
//! transaction, on its own thread and its own connection. What it writes is what the engine
//! emitted, byte for byte; the queue holds durable events only, so the audit file never holds
//! the effects of an event the journal could still lose.
//!
//! The journal stays the source. Effects are a deterministic function of the journaled events
//! (the engine is pure), so when the queue cannot serve, the writer falls back to the journal: it
//! builds a replica of the engine at the audit's reach, re-applies the events after it, renders
//! and writes their effects until it reaches the journal's end, then drops the replica and goes
//! back to the queue, discarding the queued events it has written meanwhile. It falls back:
//!
//! - at start, when the audit's reach is behind the journal's last event (a crash between an
//!   event's commit and its effects' write, the audit file lost or deleted, events journaled
//!   without a writer: `solvent journal import`, a service run without one);
//! - when the queue overflowed (the writer was behind): the sink records the first sequence
//!   number it could not queue, and the writer, seeing it beyond its reach, catches up from the
//!   journal rather than leave a hole;
//! - when the next queued event is not the one after its reach (a hole the sink did not see,
//!   such as an event journaled by another path): the same;
//! - when, idle, it finds events beyond its reach that were already there a [`FOLLOW`] before (a
//!   journal appended to by a committer that feeds no sink).
//!
//! So no second engine runs in steady state, and a writer behind catches up by reading the
//! journal, never by blocking a commit or by leaving an event's effects out.
//!
//! Where a fallback starts: the audit's reach is the largest sequence number of its `outcomes`
//! rows (events are written in order, a batch per transaction, so the rows are a prefix of the
//! journal). The replica starts from the newest snapshot at or below that reach, or from the
//! venue when none is (snapshots older than the reach may have been pruned: the journal is
//! replayed from its start then), and re-applies the events up to the reach without writing them.
//! [`fill_effects`] (`solvent journal migrate`) does the same to the journal's end, in the
//! caller's thread.
//!
//! A failure (I/O, a corrupt entry) stops the writer: it is logged, kept in
//! [`AuditStatus::failure`], and the audit's reach stays where the last committed batch left it,
//! so pages show the later events' effects as not written rather than as none. Nothing is lost:
//! a restart, or `solvent journal migrate`, writes them from the journal.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::Event;

use crate::outcome::{Outcome, event_type};
use crate::snapshots::{list_snapshots, read_snapshot, seq_of_path};
use crate::sqlite::{
    JOURNAL_FILE, attach_audit, effects_through, insert_outcomes, read_events, storage,
};
use crate::{Entry, JournalError, StoreError};

/// Events whose effects one transaction of the writer holds at most.
pub const WRITER_BATCH: usize = 8_192;

/// Events the audit queue holds by default ([`AuditOptions::queue`]): about 1.3 s of the
/// service's paced target (50,000 events / s), or one commit of the committer's largest, before
/// the writer falls back to the journal. Each waiting event holds its rendered effects (a few
/// hundred bytes).
pub const AUDIT_QUEUE: usize = 65_536;

/// How long an idle writer waits on its queue before looking again at its stop signal and the
/// sink's overflow mark: the delay, at most, before a fallback starts when the service is quiet.
const IDLE: Duration = Duration::from_millis(5);

/// How long the writer gathers queued events into one transaction when fewer than a full batch
/// are waiting. A transaction writes each page it touches whole to the audit file's log (the
/// outcomes', and each index's newest pages), whatever it holds: paced at 50,000 events / s, one
/// transaction per commit rewrote those pages hundreds of times a second, disk traffic and wake-ups
/// beside the journal's commits; gathered, about 1,250 events share them. It delays the effects'
/// reach by as much, never an acknowledgement.
pub const GATHER: Duration = Duration::from_millis(25);

/// How long the writer must have been idle between two looks at the journal that both find it
/// ahead (the second still holding events the first saw) before it reads the journal itself. A
/// commit hands its events over right after it is durable, so events beyond the reach for this
/// long are ones nobody queues (journaled by another path).
pub const FOLLOW: Duration = Duration::from_secs(1);

/// How an [`AuditWriter`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// Events the queue from the commit thread holds (at least 1); beyond, the sink drops them
    /// and the writer catches up from the journal.
    pub queue: usize,
    /// How long events stay beyond the reach of an idle writer before it reads them from the
    /// journal itself ([`FOLLOW`] by default). Tests that assert the queue alone served lengthen
    /// it: on a loaded machine a commit thread may be descheduled between an event's durability
    /// and its hand-over for longer than the default.
    pub follow: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            queue: AUDIT_QUEUE,
            follow: FOLLOW,
        }
    }
}

/// Where the audit writer stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditStatus {
    /// Every event up to this sequence number has its effects written (`None`: none has).
    pub effects_through: Option<u64>,
    /// Events whose effects this writer wrote since it started (from the queue and from the
    /// journal).
    pub written: u64,
    /// Of those, the events whose effects it computed again from the journal (with a replica of
    /// the engine) because the queue could not serve them.
    pub replayed: u64,
    /// How many times it fell back to the journal (at start when behind, after an overflow of the
    /// queue, a hole in it, or a journal ahead while idle).
    pub fallbacks: u64,
    /// The first sequence number the sink could not queue since the writer started (it was
    /// behind): where the first fallback for an overflow started from at the latest; `None` if
    /// the queue never overflowed.
    pub first_overflow: Option<u64>,
    /// Why the writer stopped, if it failed; its effects are written again from the journal on
    /// the next start or by `solvent journal migrate`.
    pub failure: Option<String>,
}

/// What [`fill_effects`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillReport {
    /// The audit's reach before.
    pub from: Option<u64>,
    /// The snapshot the replica started from (`None`: the journal's start).
    pub snapshot: Option<u64>,
    /// Events re-applied without writing (from the snapshot or the start up to the reach).
    pub reapplied: u64,
    /// Events whose effects were written.
    pub written: u64,
    /// The audit's reach after: the journal's last entry.
    pub through: Option<u64>,
    /// The replica's state hash at the end (the recovered engine's, if the journal is whole).
    pub state_hash: String,
}

/// One durable event's effects on their way to the writer.
#[derive(Debug)]
struct Queued {
    seq: u64,
    event_type: &'static str,
    outcome: Outcome,
}

/// The commit thread's end of the audit queue: hands each durable event's outcome to the
/// [`AuditWriter`] without ever waiting ([`Self::offer`]). Cloneable; see the module
/// documentation.
#[derive(Clone)]
pub struct AuditSink {
    sender: SyncSender<Queued>,
    /// The first sequence number ever refused, plus one (0: none), for the status.
    first_missed: Arc<AtomicU64>,
    /// The largest sequence number refused since the writer last looked, plus one (0: none).
    /// The largest, not the first, decides: when it is at or below the writer's reach, every
    /// refused event's effects are written; the first alone could hide a later refusal.
    last_missed: Arc<AtomicU64>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let missed = self.last_missed.load(Ordering::Relaxed);
        formatter
            .debug_struct("AuditSink")
            .field("last_missed", &missed.checked_sub(1))
            .finish_non_exhaustive()
    }
}

impl AuditSink {
    /// Queues event `seq`'s `outcome` for the writer, if there is room; never blocks. Call it
    /// only once the event is durable, in sequence order. Returns whether it was queued; when it
    /// was not (the queue is full, or the writer stopped), `seq` is recorded as missed and the
    /// writer writes the event's effects from the journal instead.
    pub fn offer(&self, seq: u64, event: &Event, outcome: Outcome) -> bool {
        self.offer_as(seq, event_type(event), outcome)
    }

    /// [`Self::offer`] for an event known by its type (`event_type` of it) alone.
    pub fn offer_as(&self, seq: u64, event_type: &'static str, outcome: Outcome) -> bool {
        let queued = Queued {
            seq,
            event_type,
            outcome,
        };
        match self.sender.try_send(queued) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let mark = seq.saturating_add(1);
                // Only the first refusal ever sets it (0 is "none").
                let _ = self.first_missed.compare_exchange(
                    0,
                    mark,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                self.last_missed.fetch_max(mark, Ordering::AcqRel);
                false
            }
        }
    }

    /// Offers the outcomes of `entries` (durable, in order), moving them out of the entries.
    /// Stops at the first one the queue refuses: the writer catches up from the journal from
    /// there, so queueing the rest would only be work for it to discard.
    pub fn offer_all(&self, entries: &mut [Entry]) {
        for entry in entries {
            let outcome = std::mem::take(&mut entry.outcome);
            if !self.offer(entry.envelope.seq, &entry.envelope.event, outcome) {
                return;
            }
        }
    }

    /// The largest sequence number refused since the last call, cleared (the writer's side).
    fn take_missed(&self) -> Option<u64> {
        self.last_missed.swap(0, Ordering::AcqRel).checked_sub(1)
    }

    /// The first sequence number ever refused.
    fn first_missed(&self) -> Option<u64> {
        self.first_missed.load(Ordering::Acquire).checked_sub(1)
    }
}

/// Opens data directory `dir`'s journal with its audit file attached (the file created when
/// missing) on a connection of the writer's own; returns it with the audit's reach.
fn open_connection(dir: &Path) -> Result<(Connection, Option<u64>), StoreError> {
    let path = dir.join(JOURNAL_FILE);
    if !path.is_file() {
        return Err(JournalError::Storage(format!("{}: no journal here", path.display())).into());
    }
    // Read-write so the attached audit file is writable, and allowed to create (which an
    // attached file inherits from the main one) so a missing audit file is made; nothing
    // writes the journal's own tables through it, and the journal exists.
    let connection = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(|e| storage(&e))?;
    attach_audit(&connection, dir, true)?;
    let through = effects_through(&connection)?;
    let last = journal_last(&connection)?;
    if let Some(through) = through
        && last.is_none_or(|last| last < through)
    {
        return Err(JournalError::CorruptEntry {
            seq: through,
            problem: format!(
                "the audit file holds effects up to it, the journal ends at {last:?}: remove {} and its log files to write them again",
                dir.join(crate::AUDIT_FILE).display()
            ),
        }
        .into());
    }
    Ok((connection, through))
}

/// Where a writer on data directory `dir` starts: its connection, its reach and whether the
/// journal is beyond that reach.
fn writer_start(dir: &Path) -> Result<(Connection, Option<u64>, bool), StoreError> {
    let (connection, through) = open_connection(dir)?;
    let behind = journal_last(&connection)? > through;
    Ok((connection, through, behind))
}

/// The journal's last sequence number on `connection`.
fn journal_last(connection: &Connection) -> Result<Option<u64>, JournalError> {
    let last: Option<i64> = connection
        .query_row("SELECT max(seq) FROM main.events", [], |row| row.get(0))
        .map_err(|e| storage(&e))?;
    last.map(|last| {
        u64::try_from(last).map_err(|_| JournalError::CorruptEntry {
            seq: 0,
            problem: format!("negative sequence number {last}"),
        })
    })
    .transpose()
}

/// Whether the journal holds no event between `through` and `seq` (both excluded): `seq` is
/// then the event after the audit's reach. Sequence numbers follow each other in the service,
/// so the common case is answered without reading the journal.
fn follows(connection: &Connection, through: Option<u64>, seq: u64) -> Result<bool, JournalError> {
    if through.is_some_and(|through| through.checked_add(1) == Some(seq)) {
        return Ok(true);
    }
    let from = through.map_or(Ok(-1), |through| {
        i64::try_from(through).map_err(|_| JournalError::CorruptEntry {
            seq: through,
            problem: "sequence number beyond SQLite's integers".to_owned(),
        })
    })?;
    let Ok(to) = i64::try_from(seq) else {
        return Ok(false);
    };
    let between: Option<i64> = connection
        .query_row(
            "SELECT seq FROM main.events WHERE seq > ?1 AND seq < ?2 LIMIT 1",
            [from, to],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| storage(&e))?;
    Ok(between.is_none())
}

/// Writes `outcomes` (in order, each after the last) in one transaction on `connection`.
fn write_outcomes<'o>(
    connection: &mut Connection,
    outcomes: impl IntoIterator<Item = (u64, &'o str, &'o Outcome)>,
    text: &mut String,
) -> Result<(), JournalError> {
    let transaction = connection.transaction().map_err(|e| storage(&e))?;
    insert_outcomes(&transaction, outcomes, text)?;
    transaction.commit().map_err(|e| storage(&e))
}

/// A replica of the engine at the audit's reach and the writer's connection: applies the
/// journal's events after the reach and writes their effects (the fallback, and
/// [`fill_effects`]).
struct Filler<'c> {
    connection: &'c mut Connection,
    engine: Engine,
    through: Option<u64>,
    snapshot: Option<u64>,
    reapplied: u64,
    text: String,
}

impl<'c> Filler<'c> {
    /// A replica at `through`, the audit's reach on `connection`, from a snapshot of `dir` or
    /// from `venue` and `config`.
    fn on(
        connection: &'c mut Connection,
        dir: &Path,
        through: Option<u64>,
        venue: Venue,
        config: EngineConfig,
    ) -> Result<Self, StoreError> {
        let (engine, snapshot) = base(dir, through, venue, config)?;
        let mut filler = Self {
            connection,
            engine,
            through: snapshot,
            snapshot,
            reapplied: 0,
            text: String::with_capacity(1024),
        };
        // Up to the reach, the effects are written: the events are applied only.
        while through.is_some() {
            let events = read_events(filler.connection, filler.through, through, WRITER_BATCH)?;
            let Some(last) = events.last().map(|envelope| envelope.seq) else {
                break;
            };
            for envelope in &events {
                filler.engine.apply(envelope);
            }
            filler.reapplied += events.len() as u64;
            filler.through = Some(last);
        }
        if filler.through != through {
            return Err(JournalError::Storage(format!(
                "the audit's effects reach {through:?} but the journal's events from the replica's start end at {:?}",
                filler.through
            ))
            .into());
        }
        Ok(filler)
    }

    /// Writes the effects of up to `limit` events after the reach, in one transaction; returns
    /// how many. After an error the replica may be ahead of the reach: the caller stops.
    fn step(&mut self, limit: usize) -> Result<usize, JournalError> {
        let events = read_events(self.connection, self.through, None, limit)?;
        let Some(last) = events.last().map(|envelope| envelope.seq) else {
            return Ok(0);
        };
        let outcomes: Vec<(u64, &'static str, Outcome)> = events
            .iter()
            .map(|envelope| {
                let effects = self.engine.apply(envelope);
                (
                    envelope.seq,
                    event_type(&envelope.event),
                    Outcome::render(envelope.seq, &envelope.event, &effects),
                )
            })
            .collect();
        write_outcomes(
            self.connection,
            outcomes
                .iter()
                .map(|(seq, kind, outcome)| (*seq, *kind, outcome)),
            &mut self.text,
        )?;
        self.through = Some(last);
        Ok(events.len())
    }
}

/// The replica's start: the newest snapshot that checks out at or below `through`, else a new
/// engine of `venue` and `config` (the journal from its start).
fn base(
    dir: &Path,
    through: Option<u64>,
    venue: Venue,
    config: EngineConfig,
) -> Result<(Engine, Option<u64>), StoreError> {
    let Some(through) = through else {
        return Ok((Engine::new(venue, config), None));
    };
    for path in list_snapshots(dir)?.unwrap_or_default() {
        if seq_of_path(&path).is_none_or(|seq| seq > through) {
            continue;
        }
        // A snapshot that does not check out is passed over, as recovery passes it over (and
        // reports it): an older one, or the journal's start, serves.
        if let Ok((info, engine)) = read_snapshot(&path)
            && info.seq <= through
        {
            return Ok((engine, Some(info.seq)));
        }
    }
    Ok((Engine::new(venue, config), None))
}

/// Writes the effects of every event of data directory `dir`'s journal that has none yet, in
/// the caller's thread: the repair after a crash or a writer's failure, and the migration's
/// last step. `venue` and `config` start the replica when no snapshot serves (the recorded
/// venue, `venue.toml`).
///
/// # Errors
/// [`StoreError`]: the files cannot be read or written, or an event is corrupt (effects before
/// it are written and kept).
pub fn fill_effects(
    dir: &Path,
    venue: Venue,
    config: EngineConfig,
) -> Result<FillReport, StoreError> {
    let (mut connection, through) = open_connection(dir)?;
    let mut filler = Filler::on(&mut connection, dir, through, venue, config)?;
    let from = filler.through;
    let mut written = 0_u64;
    loop {
        let count = filler.step(WRITER_BATCH)?;
        if count == 0 {
            break;
        }
        written += count as u64;
    }
    Ok(FillReport {
        from,
        snapshot: filler.snapshot,
        reapplied: filler.reapplied,
        written,
        through: filler.through,
        state_hash: filler.engine.state_hash(),
    })
}

/// The audit writer's thread (see the module documentation). Dropping it stops the thread
/// after its current batch.
pub struct AuditWriter {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<AuditStatus>>,
    sink: AuditSink,
    dir: PathBuf,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AuditWriter")
            .field("dir", &self.dir)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Starts the writer over data directory `dir` (whose journal exists) with the default
    /// options: see [`Self::start_with`].
    ///
    /// # Errors
    /// As [`Self::start_with`].
    pub fn start(dir: &Path, venue: Venue, config: EngineConfig) -> Result<Self, JournalError> {
        Self::start_with(dir, venue, config, AuditOptions::default())
    }

    /// Starts the writer over data directory `dir` (whose journal exists): it first writes the
    /// effects the audit file lacks from the journal (with a replica from a snapshot, or from
    /// `venue` and `config` when none serves), then writes what its queue ([`Self::sink`])
    /// brings, falling back to the journal when the queue cannot serve, until stopped.
    ///
    /// # Errors
    /// [`JournalError::Storage`] when the thread cannot be spawned. Failures on the thread are
    /// in [`Self::status`].
    pub fn start_with(
        dir: &Path,
        venue: Venue,
        config: EngineConfig,
        options: AuditOptions,
    ) -> Result<Self, JournalError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (sender, queue) = std::sync::mpsc::sync_channel(options.queue.max(1));
        let sink = AuditSink {
            sender,
            first_missed: Arc::new(AtomicU64::new(0)),
            last_missed: Arc::new(AtomicU64::new(0)),
        };
        let status = Arc::new(Mutex::new(AuditStatus::default()));
        // Where the writer stands against the journal is read now, not when its thread first
        // runs: an event committed after this returns reaches the writer through its queue,
        // however late the thread is scheduled (else it would find that event in the journal
        // and write it from there).
        let start = writer_start(dir).ok();
        let mut run = Run {
            dir: dir.to_path_buf(),
            venue,
            config,
            status: Arc::clone(&status),
            sink: sink.clone(),
            queue,
            stopped,
            text: String::with_capacity(1024),
            follow: options.follow,
            start,
        };
        let thread = std::thread::Builder::new()
            .name("journal-audit".to_owned())
            .spawn(move || {
                if let Err(failure) = run.run() {
                    tracing::error!(
                        data = %run.dir.display(),
                        %failure,
                        "the audit writer stopped; the effects after its reach are written again from the journal on the next start or by `solvent journal migrate`"
                    );
                    lock(&run.status).failure = Some(failure.to_string());
                }
            })
            .map_err(|error| JournalError::Storage(format!("audit writer thread: {error}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            status,
            sink,
            dir: dir.to_path_buf(),
        })
    }

    /// The queue's sending end, for the commit thread ([`crate::Committer::start_with_audit`]).
    #[must_use]
    pub fn sink(&self) -> AuditSink {
        self.sink.clone()
    }

    /// Where the writer stands.
    #[must_use]
    pub fn status(&self) -> AuditStatus {
        lock(&self.status).clone()
    }

    /// Waits until the effects of every event up to `seq` are written, or the writer failed,
    /// or `timeout` passed; returns the status then.
    #[must_use]
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> AuditStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status();
            if status.effects_through.is_some_and(|through| through >= seq)
                || status.failure.is_some()
                || Instant::now() >= deadline
            {
                return status;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Writes what is queued, stops the thread and returns where it stood (a fallback under way
    /// stops after its current batch: the next start finishes it).
    #[must_use]
    pub fn stop(mut self) -> AuditStatus {
        self.shut_down();
        self.status()
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may have ended already (after a failure): nothing to tell then.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            lock(&self.status).failure = Some("the audit writer's thread panicked".to_owned());
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The writer's thread: its queue, its stop signal and what a fallback needs.
struct Run {
    dir: PathBuf,
    venue: Venue,
    config: EngineConfig,
    status: Arc<Mutex<AuditStatus>>,
    /// The writer's own copy, to read the overflow marks (it never sends).
    sink: AuditSink,
    queue: Receiver<Queued>,
    stopped: Receiver<()>,
    text: String,
    /// [`AuditOptions::follow`].
    follow: Duration,
    /// Where the writer starts, read before [`AuditWriter::start_with`] returns: its connection,
    /// its reach and whether the journal is beyond it. `None` when that read failed: the thread
    /// reads again, and reports the failure.
    start: Option<(Connection, Option<u64>, bool)>,
}

impl Run {
    fn run(&mut self) -> Result<(), StoreError> {
        let (mut connection, mut through, mut behind) = match self.start.take() {
            Some(start) => start,
            None => writer_start(&self.dir)?,
        };
        lock(&self.status).effects_through = through;
        let mut batch: Vec<Queued> = Vec::with_capacity(WRITER_BATCH);
        let mut idle_since = Instant::now();
        // The journal's last event at the last idle look, when it was beyond the reach.
        let mut ahead: Option<u64> = None;
        loop {
            if let Some(missed) = self.sink.take_missed() {
                lock(&self.status).first_overflow = self.sink.first_missed();
                // Refusals at or below the reach were covered by the last fallback already.
                behind |= through.is_none_or(|through| missed > through);
            }
            if behind {
                let (reach, stopped) = self.catch_up(&mut connection, through)?;
                through = reach;
                behind = false;
                idle_since = Instant::now();
                if stopped {
                    return Ok(());
                }
                continue;
            }
            let stopping = self.stop_asked();
            batch.clear();
            if stopping {
                // What is queued is written before the thread ends: a clean stop leaves the
                // audit whole when the queue kept up.
                batch.extend(self.queue.try_iter().take(WRITER_BATCH));
            } else {
                match self.queue.recv_timeout(IDLE) {
                    Ok(first) => {
                        let gathering = Instant::now();
                        batch.push(first);
                        batch.extend(self.queue.try_iter().take(WRITER_BATCH - 1));
                        // Short of a full batch, what arrives within GATHER joins it: one
                        // transaction (and one wake-up) per GATHER instead of one per commit.
                        if batch.len() < WRITER_BATCH
                            && let Some(rest) = GATHER.checked_sub(gathering.elapsed())
                        {
                            std::thread::sleep(rest);
                            let room = WRITER_BATCH - batch.len();
                            batch.extend(self.queue.try_iter().take(room));
                        }
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
                }
            }
            if batch.is_empty() {
                if stopping {
                    return Ok(());
                }
                if idle_since.elapsed() >= self.follow {
                    idle_since = Instant::now();
                    // Behind only if an event already beyond the reach at the last look still
                    // is: a commit hands its events over right after it is durable, so a look
                    // between the two sees the journal ahead for a moment, never for `FOLLOW`.
                    behind = ahead.is_some_and(|ahead| through.is_none_or(|t| t < ahead));
                    let last = journal_last(&connection)?;
                    ahead = last.filter(|_| last > through);
                }
                continue;
            }
            idle_since = Instant::now();
            // Events a fallback wrote are still queued behind it: skipped.
            let fresh = batch
                .iter()
                .position(|queued| through.is_none_or(|through| queued.seq > through))
                .unwrap_or(batch.len());
            let mut end = fresh;
            let mut reach = through;
            while let Some(queued) = batch.get(end)
                && follows(&connection, reach, queued.seq)?
            {
                reach = Some(queued.seq);
                end += 1;
            }
            if let Some(written) = batch.get(fresh..end)
                && !written.is_empty()
            {
                write_outcomes(
                    &mut connection,
                    written
                        .iter()
                        .map(|queued| (queued.seq, queued.event_type, &queued.outcome)),
                    &mut self.text,
                )?;
                through = reach;
                let mut status = lock(&self.status);
                status.effects_through = through;
                status.written += written.len() as u64;
            }
            if end < batch.len() {
                // A hole before the next queued event: the journal has it (queued events are
                // durable), the queue does not.
                behind = true;
            }
            // Stopping, a full batch may have more queued behind it: drained too (the stop
            // signal stays readable), unless a fallback is due (left to the next start).
            if stopping && (behind || batch.len() < WRITER_BATCH) {
                return Ok(());
            }
        }
    }

    /// Whether the writer was told to stop (or its handle is gone).
    fn stop_asked(&self) -> bool {
        match self.stopped.try_recv() {
            Err(TryRecvError::Empty) => false,
            Ok(()) | Err(TryRecvError::Disconnected) => true,
        }
    }

    /// The fallback: writes the effects of the journal's events after `through` with a replica
    /// of the engine, until the journal's end or a stop; returns the reach and whether it was
    /// told to stop.
    fn catch_up(
        &mut self,
        connection: &mut Connection,
        through: Option<u64>,
    ) -> Result<(Option<u64>, bool), StoreError> {
        lock(&self.status).fallbacks += 1;
        tracing::info!(
            data = %self.dir.display(),
            effects_through = ?through,
            "the audit writer is behind the journal: writing effects from it"
        );
        // Cleared before the journal is read: a refusal from here on may be of an event this
        // fallback does not read (committed after its last read), and is seen next round.
        if self.sink.take_missed().is_some() {
            lock(&self.status).first_overflow = self.sink.first_missed();
        }
        let mut filler = Filler::on(
            connection,
            &self.dir,
            through,
            self.venue.clone(),
            self.config.clone(),
        )?;
        loop {
            let count = filler.step(WRITER_BATCH)?;
            if count == 0 {
                break;
            }
            let mut status = lock(&self.status);
            status.effects_through = filler.through;
            status.written += count as u64;
            status.replayed += count as u64;
            drop(status);
            if self.stop_asked() {
                return Ok((filler.through, true));
            }
        }
        // The replica is dropped on return: none runs while the queue serves.
        Ok((filler.through, false))
    }
}

fn lock(status: &Mutex<AuditStatus>) -> std::sync::MutexGuard<'_, AuditStatus> {
    // A panic while holding it leaves a whole status: still readable.
    status.lock().unwrap_or_else(PoisonError::into_inner)
}
