//! # solvent-store
//!
//! Durable storage for the service (DESIGN.md 10): the journal of every accepted event, in
//! order, behind the [`Journal`] trait so that a distributed log can replace the embedded
//! default later; checksummed snapshots of the whole engine; and recovery from both.
//!
//! The contract every journal keeps: [`Journal::append`] returns only once its entries are
//! durable, and a failed append is final: the caller stops rather than retrying, since after a
//! failed sync the storage may have dropped pages it reported as written (the fsync-gate lesson
//! of PostgreSQL, 2018). (An entry out of order is refused before anything is written and is the
//! caller's bug, not the storage's.)
//!
//! The pieces, in the order a service meets them:
//!
//! - [`init_data_dir`] / [`read_venue`]: a data directory holds `journal.sqlite`,
//!   `audit.sqlite` (each event's effects and the audit's indexes), `venue.toml` (the venue the
//!   events were accepted under) and `snapshots/`.
//! - [`recover`] / [`recover_with`]: the newest valid snapshot plus the journal's tail, giving a
//!   [`Recovered`] engine, the open [`SqliteJournal`] and a
//!   [`RecoveryReport`]; damage is reported, never taken in silently.
//! - [`SqliteJournal`]: SQLite in WAL mode with `synchronous=FULL`, one transaction per append,
//!   read beside the appends through a [`JournalReader`] ([`SqliteReader`]),
//!   events in the compact binary encoding of [`codec`], a CRC per row.
//! - [`Committer`]: adaptive group commit on its own thread; each batch is acknowledged once the
//!   commit holding it is durable (the events, not their effects).
//! - [`AuditWriter`]: each event's effects written to the audit file after the event is durable,
//!   on its own thread: the effects as the service's replies carried them, handed over once
//!   durable (by the service's commit thread, or by the [`Committer`] started with an audit)
//!   through a bounded queue ([`AuditSink`]) never waited on; when the queue overflowed or
//!   after a restart, computed again from the journal with a replica of the engine until caught
//!   up (effects are a function of the events); [`fill_effects`] writes the missing ones in the
//!   caller's thread.
//! - [`write_snapshot`]: the engine's state as of a journal sequence whose entries are all
//!   durable, written atomically; [`read_snapshot`] checks and restores one.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use solvent_engine::config::EngineConfig;
//! use solvent_store::{Committer, CommitterConfig, read_venue, recover, write_snapshot};
//!
//! let dir = Path::new("data");
//! let (venue, _) = read_venue(dir)?;
//! let recovered = recover(dir, venue, EngineConfig::default())?;
//! let mut engine = recovered.engine;
//! let committer = Committer::start(recovered.journal, CommitterConfig::default());
//! // ... for each batch of accepted events: submit, apply once durable, answer ...
//! let last = recovered.report.last_seq.unwrap_or(0);
//! write_snapshot(dir, &engine, last, 3)?;
//! # let _ = (&mut engine, committer);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use solvent_core::venue::Venue;
use solvent_engine::event::Envelope;

mod audit;
pub mod codec;
mod committer;
pub mod outcome;
mod recover;
mod snapshots;
mod sqlite;

pub use audit::{
    AUDIT_QUEUE, AuditOptions, AuditSink, AuditStatus, AuditWriter, FOLLOW, FillReport, GATHER,
    WRITER_BATCH, fill_effects,
};
pub use committer::{CommitStats, Committer, CommitterConfig, Done, SubmitError};
pub use outcome::Outcome;
pub use recover::{RecoverOptions, Recovered, RecoveryReport, Truncation, recover, recover_with};
pub use snapshots::{
    SNAPSHOT_DIR, SNAPSHOT_FILE_FORMAT, SNAPSHOT_MAGIC, SkippedSnapshot, SnapshotInfo,
    list_snapshots, read_snapshot, write_snapshot,
};
pub use sqlite::{
    AUDIT_FILE, JOURNAL_FILE, JOURNAL_FORMAT, Migration, PRAGMAS, SqliteJournal, SqliteReader,
    entry_crc, migrate,
};

/// The venue file's name in a data directory: the venue the journal's events were accepted
/// under, so that recovery and replay start from the same one.
pub const VENUE_FILE: &str = "venue.toml";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A file could not be read or written.
    #[error("{}: {problem}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// A snapshot file is unusable (or could not be made).
    #[error("snapshot {}: {problem}", path.display())]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The data directory's venue file is missing, unreadable, invalid, or not the one given.
    #[error("venue {}: {problem}", path.display())]
    Venue {
        /// The venue file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A valid snapshot is newer than the journal's last entry: the journal lost entries that
    /// were durable when the snapshot was taken.
    #[error(
        "snapshot {} is at sequence {snapshot_seq} but the journal ends at {journal_last:?}: the journal lost durable entries",
        snapshot.display()
    )]
    JournalBehindSnapshot {
        /// The snapshot.
        snapshot: PathBuf,
        /// Its sequence number.
        snapshot_seq: u64,
        /// The journal's last entry.
        journal_last: Option<u64>,
    },
}

/// Prepares data directory `dir` for a service: creates it, and records `venue_text` as its
/// venue (`venue.toml`, written durably), or checks that the venue already recorded is the same
/// text.
///
/// # Errors
/// [`StoreError::Io`]; [`StoreError::Venue`] when the text is not a valid venue or differs from
/// the one recorded.
pub fn init_data_dir(dir: &Path, venue_text: &str) -> Result<(), StoreError> {
    let io = |path: &Path, error: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        problem: error.to_string(),
    };
    let path = dir.join(VENUE_FILE);
    Venue::from_toml(&path.display().to_string(), venue_text).map_err(|error| {
        StoreError::Venue {
            path: path.clone(),
            problem: error.to_string(),
        }
    })?;
    std::fs::create_dir_all(dir).map_err(|error| io(dir, error))?;
    if path.exists() {
        let recorded = std::fs::read_to_string(&path).map_err(|error| io(&path, error))?;
        if recorded != venue_text {
            return Err(StoreError::Venue {
                path,
                problem: "differs from the venue given: the journal's events were accepted under the recorded one".to_owned(),
            });
        }
        return Ok(());
    }
    let temporary = dir.join(format!("{VENUE_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(venue_text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|error| io(&temporary, error))?;
    std::fs::rename(&temporary, &path).map_err(|error| io(&path, error))?;
    snapshots::sync_dir(dir)
}

/// The venue recorded in data directory `dir`, with its text.
///
/// # Errors
/// [`StoreError::Venue`] when it is missing, unreadable or invalid.
pub fn read_venue(dir: &Path) -> Result<(Venue, String), StoreError> {
    let path = dir.join(VENUE_FILE);
    let bad = |problem: String| StoreError::Venue {
        path: path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|error| bad(error.to_string()))?;
    let venue = Venue::from_toml(&path.display().to_string(), &text)
        .map_err(|error| bad(error.to_string()))?;
    Ok((venue, text))
}

/// One accepted event as the journal keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The event, with the sequence number the service gave it.
    pub envelope: Envelope,
    /// The client's own id for the event, if it sent one: a retry with the same id is answered
    /// with the first result and applied once.
    pub client_id: Option<String>,
    /// The first result as the API answered it (JSON), kept for entries with a client id.
    pub reply: Option<String>,
    /// The effects the event caused, as the service rendered them. The [`MemoryJournal`] keeps
    /// them with the entry ([`Journal::keeps_outcomes`]); the [`SqliteJournal`] does not write
    /// them: once the entry is durable they go to the audit writer ([`AuditWriter`], through its
    /// [`AuditSink`]: the service hands them over itself, a [`Committer`] started with an audit
    /// takes them from here), which writes them to the audit file off the commit path.
    /// Readers of entries ([`Journal::read_after`], [`JournalReader::read_before`],
    /// [`SqliteJournal::scan`]) leave it empty: effects are read with [`JournalReader::audit`].
    pub outcome: Outcome,
}

/// What an audit page asks of the journal: a page of events in sequence order from a cursor
/// (keyset pagination: the cursor is a sequence number, so a page costs the same at any depth),
/// every filter applied by the journal over all of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Where the page starts and which way it goes.
    pub cursor: Cursor,
    /// At most this many events.
    pub limit: usize,
    /// Only events from this sequence number on (inclusive).
    pub from_seq: Option<u64>,
    /// Only events up to this sequence number (inclusive).
    pub to_seq: Option<u64>,
    /// Only events that concern this account, themselves or through one of their effects.
    pub account: Option<String>,
    /// Only events of this type (`deposit`, `fill`, ...).
    pub event_type: Option<String>,
    /// Only events that caused at least one effect of this type (`liquidation`, ...).
    pub effect_type: Option<String>,
}

/// Where a page of the journal starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cursor {
    /// The latest events, newest first.
    #[default]
    Latest,
    /// Events with sequence numbers above this one, oldest first.
    After(u64),
    /// Events with sequence numbers below this one, newest first.
    Before(u64),
}

impl AuditQuery {
    /// Whether `entry` passes the filters (the cursor and the limit aside): what every journal's
    /// [`JournalReader::audit`] answers, written once for the journals that filter in memory.
    #[must_use]
    pub fn admits(&self, entry: &Entry) -> bool {
        let seq = entry.envelope.seq;
        self.from_seq.is_none_or(|from| seq >= from)
            && self.to_seq.is_none_or(|to| seq <= to)
            && self
                .account
                .as_ref()
                .is_none_or(|account| entry.outcome.accounts.contains(account))
            && self
                .event_type
                .as_deref()
                .is_none_or(|kind| outcome::event_type(&entry.envelope.event) == kind)
            && self
                .effect_type
                .as_deref()
                .is_none_or(|kind| entry.outcome.effect_types.contains(kind))
    }
}

/// One event of an audit page, with the effects it caused.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    /// The event, with its sequence number and time.
    pub envelope: Envelope,
    /// The client's id for it, if it sent one.
    pub client_id: Option<String>,
    /// Its effects, each a JSON object carrying the event's sequence number; `None` when they
    /// are not written yet (the event is beyond the audit's reach,
    /// [`JournalReader::effects_through`]), which is not the same as none.
    pub effects: Option<Vec<std::sync::Arc<str>>>,
}

/// Why the journal failed. Every failure is final for the process that met it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The entries do not follow the journal: sequence numbers must increase.
    #[error("entry {seq} does not follow the journal's last sequence {last:?}")]
    OutOfOrder {
        /// The entry's sequence number.
        seq: u64,
        /// The last sequence number held.
        last: Option<u64>,
    },
    /// The storage failed (an I/O or database error, a failed sync).
    #[error("journal storage failed: {0}")]
    Storage(String),
    /// A stored entry cannot be read back (torn or corrupted).
    #[error("journal entry after sequence {after:?} is corrupt: {problem}")]
    Corrupt {
        /// The last good sequence number before it.
        after: Option<u64>,
        /// What is wrong.
        problem: String,
    },
    /// A stored entry fails its checksum or does not decode: torn or corrupted.
    #[error("journal entry {seq} is corrupt: {problem}")]
    CorruptEntry {
        /// The entry's sequence number.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// An entry carries a client id the journal already holds (the caller answers retries from
    /// the client index before appending).
    #[error("entry {seq} repeats client id {client_id:?}")]
    DuplicateClientId {
        /// The entry's sequence number.
        seq: u64,
        /// The client id.
        client_id: String,
    },
    /// An earlier append failed: the journal takes nothing more.
    #[error("the journal stopped after an earlier failure: {cause}")]
    Stopped {
        /// The first failure.
        cause: String,
    },
    /// The journal was written by another format than this build reads.
    #[error("journal format: {0}")]
    Format(String),
    /// The audit file holds the effects of the events up to `through` only, the journal ends at
    /// `last`: the effects after are not written yet (the audit writer was behind or stopped).
    /// They are not lost: the audit writer or `solvent journal migrate` writes them from the
    /// journal.
    #[error(
        "effects written up to sequence {through:?}, the journal ends at {last}: the later events' effects are not written yet (`solvent journal migrate DIR` writes them)"
    )]
    EffectsMissing {
        /// The audit's reach.
        through: Option<u64>,
        /// The journal's last entry.
        last: u64,
    },
}

/// The ordered, durable record of accepted events.
pub trait Journal: Send {
    /// Appends `entries` (in order, after the last one held) and returns once they are durable.
    ///
    /// # Errors
    /// [`JournalError`]; the caller must stop, never retry.
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError>;

    /// The sequence number of the last durable entry.
    ///
    /// # Errors
    /// [`JournalError::Storage`].
    fn last_seq(&self) -> Result<Option<u64>, JournalError>;

    /// Up to `limit` entries with sequence numbers above `after` (all if `None`), in order.
    ///
    /// # Errors
    /// [`JournalError::Storage`] or [`JournalError::Corrupt`].
    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError>;

    /// The entry that carried `client_id`, if any: its sequence number and first reply.
    ///
    /// # Errors
    /// [`JournalError::Storage`] or [`JournalError::Corrupt`].
    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError>;

    /// A reader of this journal for another thread, working beside the appends: it sees every
    /// entry whose append has returned. The service answers retried client ids older than its
    /// in-memory window, and pages the audit history, through one.
    ///
    /// # Errors
    /// [`JournalError::Storage`] when the reader cannot be opened.
    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError>;

    /// Whether the journal keeps each entry's [`Entry::outcome`] (the effects) itself, as the
    /// [`MemoryJournal`] does, so that an appender must hand them over with the entry. A journal
    /// that drops them (the [`SqliteJournal`]: the audit writer keeps them) says `false`, and
    /// its appender may write them after the append. `true` unless the journal says otherwise.
    fn keeps_outcomes(&self) -> bool {
        true
    }
}

/// Reads a journal from another thread than the one appending to it (see [`Journal::reader`]).
pub trait JournalReader: Send {
    /// The entry that carried `client_id`, if any: its sequence number and first reply.
    ///
    /// # Errors
    /// [`JournalError::Storage`] or [`JournalError::Corrupt`].
    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError>;

    /// Up to `limit` entries with sequence numbers above `after` (all if `None`), oldest first.
    ///
    /// # Errors
    /// [`JournalError::Storage`] or [`JournalError::CorruptEntry`].
    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError>;

    /// Up to `limit` entries with sequence numbers below `before` (the latest if `None`),
    /// newest first: a page of history read backwards.
    ///
    /// # Errors
    /// [`JournalError::Storage`] or [`JournalError::CorruptEntry`].
    fn read_before(&self, before: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError>;

    /// A page of events with their effects, filtered as `query` asks, in the cursor's
    /// direction (newest first for [`Cursor::Latest`] and [`Cursor::Before`]).
    ///
    /// # Errors
    /// [`JournalError::Storage`] or [`JournalError::CorruptEntry`].
    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, JournalError>;

    /// How far the effects reach: every event up to it has its effects written, later ones may
    /// not yet (`None`: no event has). An audit page's filters on effects (account, effect
    /// type) see the events up to it.
    ///
    /// # Errors
    /// [`JournalError::Storage`].
    fn effects_through(&self) -> Result<Option<u64>, JournalError>;

    /// Visits every client id the journal holds, in no particular order (what a service needs
    /// at start to know which ids it may have to look up; the replies are not read).
    ///
    /// # Errors
    /// [`JournalError::Storage`] or [`JournalError::Corrupt`].
    fn each_client_id(&self, visit: &mut dyn FnMut(&str)) -> Result<(), JournalError>;
}

/// What the journal holds for a client id: the first result, to answer a retry with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    /// The sequence number of the entry that carried the id.
    pub seq: u64,
    /// The reply given then (JSON), if one was kept.
    pub reply: Option<String>,
}

/// Every client id a journal holds, in memory ([`SqliteJournal::clients`], for verification:
/// the service keeps only a bounded window of recent ids and asks a [`JournalReader`] for older
/// ones).
pub type ClientIndex = std::collections::HashMap<String, ClientRecord>;

/// A boxed journal is a journal: the service picks its journal at run time.
impl<J: Journal + ?Sized> Journal for Box<J> {
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        (**self).append(entries)
    }

    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        (**self).last_seq()
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        (**self).read_after(after, limit)
    }

    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
        (**self).client(client_id)
    }

    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError> {
        (**self).reader()
    }
    fn keeps_outcomes(&self) -> bool {
        (**self).keeps_outcomes()
    }
}

/// A journal in memory: for tests and for runs that need no durability. Its clones and readers
/// share its entries (as readers of a file would).
#[derive(Clone, Debug, Default)]
pub struct MemoryJournal {
    held: std::sync::Arc<std::sync::RwLock<Held>>,
}

#[derive(Debug, Default)]
struct Held {
    entries: Vec<Entry>,
    /// Each client id's position in `entries`.
    clients: std::collections::HashMap<String, usize>,
}

impl Held {
    fn client(&self, client_id: &str) -> Option<ClientRecord> {
        self.clients.get(client_id).map(|&index| ClientRecord {
            seq: self.entries[index].envelope.seq,
            reply: self.entries[index].reply.clone(),
        })
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Vec<Entry> {
        let start = after.map_or(0, |after| {
            self.entries
                .partition_point(|entry| entry.envelope.seq <= after)
        });
        self.entries
            .iter()
            .skip(start)
            .take(limit)
            .map(without_outcome)
            .collect()
    }

    fn read_before(&self, before: Option<u64>, limit: usize) -> Vec<Entry> {
        let end = before.map_or(self.entries.len(), |before| {
            self.entries
                .partition_point(|entry| entry.envelope.seq < before)
        });
        self.entries[..end]
            .iter()
            .rev()
            .take(limit)
            .map(without_outcome)
            .collect()
    }

    fn audit(&self, query: &AuditQuery) -> Vec<AuditRecord> {
        let record = |entry: &Entry| AuditRecord {
            envelope: entry.envelope.clone(),
            client_id: entry.client_id.clone(),
            effects: Some(entry.outcome.effects.clone()),
        };
        let admitted = |entry: &&Entry| query.admits(entry);
        match query.cursor {
            Cursor::After(after) => {
                let start = self
                    .entries
                    .partition_point(|entry| entry.envelope.seq <= after);
                self.entries[start..]
                    .iter()
                    .filter(admitted)
                    .take(query.limit)
                    .map(record)
                    .collect()
            }
            Cursor::Latest | Cursor::Before(_) => {
                let end = match query.cursor {
                    Cursor::Before(before) => self
                        .entries
                        .partition_point(|entry| entry.envelope.seq < before),
                    _ => self.entries.len(),
                };
                self.entries[..end]
                    .iter()
                    .rev()
                    .filter(admitted)
                    .take(query.limit)
                    .map(record)
                    .collect()
            }
        }
    }
}

/// An entry as a reader of entries gives it: the event and its client id, not its effects (as
/// the SQLite journal's readers, which do not read the effects table for them).
fn without_outcome(entry: &Entry) -> Entry {
    Entry {
        envelope: entry.envelope.clone(),
        client_id: entry.client_id.clone(),
        reply: entry.reply.clone(),
        outcome: Outcome::default(),
    }
}

impl MemoryJournal {
    fn held(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        // A panic while appending leaves whole entries or none: the entries stay readable.
        self.held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A reader of a [`MemoryJournal`]: it shares the journal's entries.
#[derive(Clone, Debug)]
pub struct MemoryReader(MemoryJournal);

impl JournalReader for MemoryReader {
    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
        Ok(self.0.held().client(client_id))
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        Ok(self.0.held().read_after(after, limit))
    }

    fn read_before(&self, before: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        Ok(self.0.held().read_before(before, limit))
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, JournalError> {
        Ok(self.0.held().audit(query))
    }

    fn effects_through(&self) -> Result<Option<u64>, JournalError> {
        // The effects come with the entries: they reach as far as the entries do.
        Ok(self.0.held().entries.last().map(|entry| entry.envelope.seq))
    }

    fn each_client_id(&self, visit: &mut dyn FnMut(&str)) -> Result<(), JournalError> {
        for id in self.0.held().clients.keys() {
            visit(id);
        }
        Ok(())
    }
}

impl Journal for MemoryJournal {
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        let mut held = self
            .held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut last = held.entries.last().map(|entry| entry.envelope.seq);
        for (index, entry) in entries.iter().enumerate() {
            if let Some(client_id) = &entry.client_id {
                let earlier = entries.iter().take(index);
                if held.clients.contains_key(client_id)
                    || earlier
                        .into_iter()
                        .any(|other| other.client_id.as_ref() == Some(client_id))
                {
                    return Err(JournalError::DuplicateClientId {
                        seq: entry.envelope.seq,
                        client_id: client_id.clone(),
                    });
                }
            }
            if last.is_some_and(|last| entry.envelope.seq <= last) {
                return Err(JournalError::OutOfOrder {
                    seq: entry.envelope.seq,
                    last,
                });
            }
            last = Some(entry.envelope.seq);
        }
        for entry in entries {
            if let Some(client_id) = &entry.client_id {
                let index = held.entries.len();
                held.clients.insert(client_id.clone(), index);
            }
            held.entries.push(entry.clone());
        }
        Ok(())
    }

    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        Ok(self.held().entries.last().map(|entry| entry.envelope.seq))
    }

    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
        Ok(self.held().client(client_id))
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        Ok(self.held().read_after(after, limit))
    }

    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError> {
        Ok(Box::new(MemoryReader(self.clone())))
    }
}
