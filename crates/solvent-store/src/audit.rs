//! The audit writer: each journaled event's effects and the audit's index rows, written to the
//! audit file ([`crate::AUDIT_FILE`]) after the event is durable, off the acknowledgement path.
//!
//! Effects are a deterministic function of the journaled events (the engine is pure), so they
//! need not be durable before an event is acknowledged: the journal is their source, the audit
//! file a projection of it. The writer keeps its own replica of the engine and follows the
//! journal: it reads the events after the last one whose effects are written
//! ([`effects_through`](AuditStatus::effects_through)), applies them, renders their effects as
//! the service's replies carry them ([`Outcome::render`]) and writes them with their index rows,
//! a batch per transaction, on its own thread and its own connection. The journal is its queue:
//! the commit thread hands it nothing and never waits for it, and a writer that falls behind
//! catches up by reading further, never by blocking a commit or dropping an event.
//!
//! Where it starts: the audit's reach is the largest sequence number of its `outcomes` rows
//! (events are written in order, a batch per transaction, so the rows are a prefix of the
//! journal). The replica starts from the newest snapshot at or below that reach, or from the
//! venue when none is (snapshots older than the reach may have been pruned: the journal is
//! replayed from its start then), and re-applies the events up to the reach without writing
//! them. So effects missing after a crash (between an event's commit and its effects' write),
//! or after the audit file was lost or deleted, are written again on the next start, whatever
//! snapshot recovery used; [`fill_effects`] (`solvent journal migrate`) does the same to the
//! journal's end, in the caller's thread.
//!
//! A failure (I/O, a corrupt entry) stops the writer: it is logged, kept in
//! [`AuditStatus::failure`], and the audit's reach stays where the last committed batch left it,
//! so pages show the later events' effects as not written rather than as none. Nothing is lost:
//! a restart, or `solvent journal migrate`, writes them from the journal.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;

use crate::outcome::{Outcome, event_type};
use crate::snapshots::{list_snapshots, read_snapshot, seq_of_path};
use crate::sqlite::{
    JOURNAL_FILE, OutcomeStatements, attach_audit, effects_through, read_events, storage,
};
use crate::{JournalError, StoreError};

/// Events whose effects one transaction of the writer holds at most.
pub const WRITER_BATCH: usize = 8_192;

/// How long an idle writer waits before looking at the journal again: the delay, at most, before
/// a new event's effects are readable when the service is quiet.
const IDLE: Duration = Duration::from_millis(5);

/// Where the audit writer stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditStatus {
    /// Every event up to this sequence number has its effects written (`None`: none has).
    pub effects_through: Option<u64>,
    /// Events whose effects this writer wrote since it started.
    pub written: u64,
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

/// The replica and the connection of a writer: applies the journal's events after the audit's
/// reach and writes their effects.
struct Filler {
    connection: Connection,
    engine: Engine,
    through: Option<u64>,
    snapshot: Option<u64>,
    reapplied: u64,
    text: String,
}

impl Filler {
    /// Opens data directory `dir`'s journal and audit file and brings a replica of the engine
    /// to the audit's reach (see the module documentation).
    fn open(dir: &Path, venue: Venue, config: EngineConfig) -> Result<Self, StoreError> {
        let path = dir.join(JOURNAL_FILE);
        if !path.is_file() {
            return Err(
                JournalError::Storage(format!("{}: no journal here", path.display())).into(),
            );
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
        let last: Option<i64> = connection
            .query_row("SELECT max(seq) FROM main.events", [], |row| row.get(0))
            .map_err(|e| storage(&e))?;
        if let Some(through) = through
            && last.is_none_or(|last| u64::try_from(last).is_ok_and(|last| last < through))
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
            let events = read_events(&filler.connection, filler.through, through, WRITER_BATCH)?;
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
        let events = read_events(&self.connection, self.through, None, limit)?;
        let Some(last) = events.last().map(|envelope| envelope.seq) else {
            return Ok(0);
        };
        let transaction = self.connection.transaction().map_err(|e| storage(&e))?;
        {
            let mut statements = OutcomeStatements::prepare(&transaction)?;
            for envelope in &events {
                let effects = self.engine.apply(envelope);
                let outcome = Outcome::render(envelope.seq, &envelope.event, &effects);
                statements.insert(
                    envelope.seq,
                    event_type(&envelope.event),
                    &outcome,
                    &mut self.text,
                )?;
            }
        }
        transaction.commit().map_err(|e| storage(&e))?;
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
    let mut filler = Filler::open(dir, venue, config)?;
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
    /// Starts the writer over data directory `dir` (whose journal exists): it brings its replica
    /// to the audit's reach (from a snapshot, `venue` and `config` when none serves), then
    /// follows the journal until stopped.
    ///
    /// # Errors
    /// [`JournalError::Storage`] when the thread cannot be spawned. Failures on the thread are
    /// in [`Self::status`].
    pub fn start(dir: &Path, venue: Venue, config: EngineConfig) -> Result<Self, JournalError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let status = Arc::new(Mutex::new(AuditStatus::default()));
        let thread_status = Arc::clone(&status);
        let thread_dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("journal-audit".to_owned())
            .spawn(move || {
                let fail = |failure: String| {
                    tracing::error!(
                        data = %thread_dir.display(),
                        %failure,
                        "the audit writer stopped; the effects after its reach are written again from the journal on the next start or by `solvent journal migrate`"
                    );
                    lock(&thread_status).failure = Some(failure);
                };
                let mut filler = match Filler::open(&thread_dir, venue, config) {
                    Ok(filler) => filler,
                    Err(error) => return fail(error.to_string()),
                };
                lock(&thread_status).effects_through = filler.through;
                loop {
                    match filler.step(WRITER_BATCH) {
                        Ok(0) => match stopped.recv_timeout(IDLE) {
                            Err(RecvTimeoutError::Timeout) => {}
                            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                        },
                        Ok(count) => {
                            let mut status = lock(&thread_status);
                            status.effects_through = filler.through;
                            status.written += count as u64;
                            drop(status);
                            match stopped.try_recv() {
                                Err(TryRecvError::Empty) => {}
                                Ok(()) | Err(TryRecvError::Disconnected) => return,
                            }
                        }
                        Err(error) => return fail(error.to_string()),
                    }
                }
            })
            .map_err(|error| JournalError::Storage(format!("audit writer thread: {error}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            status,
            dir: dir.to_path_buf(),
        })
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

    /// Stops the thread after its current batch and returns where it stood.
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

fn lock(status: &Mutex<AuditStatus>) -> std::sync::MutexGuard<'_, AuditStatus> {
    // A panic while holding it leaves a whole status: still readable.
    status.lock().unwrap_or_else(PoisonError::into_inner)
}
