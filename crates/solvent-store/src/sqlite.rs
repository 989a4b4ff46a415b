//! The embedded journal: one SQLite file (rusqlite, bundled SQLite) in write-ahead-log mode with
//! `synchronous=FULL`, so a commit returns only once the log is synced to disk; and beside it the
//! audit file, each event's effects, written after the event by [`crate::AuditWriter`].
//!
//! Schema, format 3 (inspect it with the `sqlite3` shell; `meta` says how to read the rest):
//!
//! ```sql
//! -- journal.sqlite: what a commit writes, and all an acknowledgement waits for
//! meta(key TEXT PRIMARY KEY, value TEXT)        -- format, event_encoding, checksum, outcome_checksum
//! events(seq INTEGER PRIMARY KEY, body BLOB, crc INTEGER)
//! clients(client_id TEXT PRIMARY KEY, seq INTEGER, reply TEXT, crc INTEGER)
//! -- audit.sqlite (attached as `audit`): written by the audit writer, after the events
//! outcomes(seq INTEGER PRIMARY KEY, event_type TEXT, effects TEXT, crc INTEGER)
//!   -- index outcomes_by_event_type (event_type, seq)
//! effect_types(effect_type TEXT, seq INTEGER, PRIMARY KEY (effect_type, seq))
//! event_accounts(bucket INTEGER, account TEXT, seq INTEGER, PRIMARY KEY (bucket, account, seq))
//! ```
//!
//! `body` is the event in the binary encoding of [`crate::codec`]; `crc` is the CRC-32 of the
//! sequence number (8 bytes, little-endian) followed by the body, so a torn or corrupted row, or
//! a row moved to another key, is detected when read. A client row's `crc` covers the sequence
//! number, the id and the reply.
//!
//! Each event has one `outcomes` row once the audit writer reached it: its type and its effects
//! as JSON lines (one object per line, as `solvent replay --out` writes them; empty when it
//! caused none), with a CRC-32 of the sequence number, the type's length and bytes, and the
//! effects. `effect_types` and `event_accounts` are the audit's indexes: one row per distinct
//! effect type an event caused, one per account the event or an effect concerns (keyed by a
//! bucket of sequence numbers first, `BUCKET_BITS`), so a filter walks its index in sequence
//! order from the page's cursor (keyset pagination) instead of scanning the journal. The writer
//! writes the events in order, a batch per transaction, so the outcome rows are a prefix of the
//! journal and their largest sequence number is the audit's reach
//! ([`SqliteJournal::effects_through`]): an audit page says it, and an event beyond it has its
//! effects "not written yet", not "none".
//!
//! The effects are in a file of their own so that their writer never holds the journal's write
//! lock (SQLite has one writer per file): a commit waits for nothing but its own events. The
//! audit file is never synced (`synchronous=OFF`), so its writes never put a sync on the disk
//! ahead of a commit's: it is regenerated from the journal, so a loss (a power cut; a process
//! crash loses nothing committed) costs a rewrite, never an effect. Format 2 kept the effects in the journal file, written
//! in the event's own commit (five times slower); format 1 kept the events only. [`migrate`]
//! brings either to format 3 and writes the effects; [`SqliteJournal::open`] refuses them rather
//! than serve them without.
//!
//! One [`SqliteJournal::append`] is one transaction: the whole batch is durable or none of it.
//! A failure is final: the journal refuses every later append ([`JournalError::Stopped`]).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::codec::{self, EVENT_ENCODING};
use crate::outcome::{Outcome, event_type};
use crate::{
    AuditQuery, AuditRecord, ClientIndex, ClientRecord, Cursor, Entry, Journal, JournalError,
    JournalReader,
};

/// The journal file's name in a data directory.
pub const JOURNAL_FILE: &str = "journal.sqlite";

/// Version of the journal's schema, recorded in `meta`: 3 since each event's effects are kept in
/// the audit file, written after the event (format 2 wrote them in the journal, in the event's
/// own commit; format 1 kept the events only).
pub const JOURNAL_FORMAT: u32 = 3;

/// The journal's tables (each created only if absent). The effects are not here: they live in
/// the audit file ([`AUDIT_FILE`], [`AUDIT_SCHEMA`]), written after the events by the audit
/// writer ([`crate::AuditWriter`]), so a commit writes the event and its client row only.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, crc INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS clients (client_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, reply TEXT, crc INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS clients_by_seq ON clients (seq);
";

/// The audit file's name in a data directory: each journaled event's effects and the audit's
/// indexes, beside the journal (`journal.sqlite`) but in a file of its own, so that its writer
/// never takes the journal's write lock from the commit thread.
pub const AUDIT_FILE: &str = "audit.sqlite";

/// The page size of a new audit file, in bytes (see [`attach_audit`]).
const AUDIT_PAGE_SIZE: u32 = 16_384;

/// The audit file's tables, in the database attached as `audit` (each created only if absent).
/// Unqualified names resolve to them on a connection that attached the file (the journal file
/// holds no table of these names from format 3 on).
const AUDIT_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS audit.outcomes (seq INTEGER PRIMARY KEY, event_type TEXT NOT NULL, effects TEXT NOT NULL, crc INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS audit.outcomes_by_event_type ON outcomes (event_type, seq);
    CREATE TABLE IF NOT EXISTS audit.effect_types (effect_type TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (effect_type, seq)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS audit.event_accounts (bucket INTEGER NOT NULL, account TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (bucket, account, seq)) WITHOUT ROWID;
";

/// Attaches data directory `dir`'s audit file to `connection` as `audit` (creating it and its
/// tables when `create`).
pub(crate) fn attach_audit(
    connection: &Connection,
    dir: &Path,
    create: bool,
) -> Result<(), JournalError> {
    let path = dir.join(AUDIT_FILE);
    let name = path
        .to_str()
        .ok_or_else(|| JournalError::Storage(format!("{}: not UTF-8", path.display())))?;
    connection
        .execute("ATTACH DATABASE ?1 AS audit", [name])
        .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
    if create {
        // Pages of 16 KiB (set before WAL, which fixes the size): a transaction writes every
        // page it touches whole to the log, and the outcomes' rows (each event's effects as
        // text) fill 4 KiB pages four times as often; the writer's CPU for the service's steady
        // mix fell by a seventh (docs/benchmarks.md). An audit file made before keeps its size.
        // WAL: the audit's readers read beside its writer. OFF: the audit file never syncs,
        // so its writes never queue a sync on the disk ahead of a journal commit's; it is
        // regenerated from the journal after a loss (see `crate::audit`). A process crash loses
        // nothing committed (the OS holds it); a power loss may lose its tail, or damage it
        // (then the writer stops, naming the error: delete the file, a restart rewrites it).
        connection
            .execute_batch(&format!(
                "PRAGMA audit.page_size = {AUDIT_PAGE_SIZE}; PRAGMA audit.journal_mode = WAL; PRAGMA audit.synchronous = OFF; BEGIN; {AUDIT_SCHEMA} COMMIT;"
            ))
            .map_err(|e| storage(&e))?;
    }
    Ok(())
}

/// How far the audit file's effects reach on `connection` (with the audit attached): every
/// event up to it has its effects written; `None` when none has.
pub(crate) fn effects_through(connection: &Connection) -> Result<Option<u64>, JournalError> {
    let last: Option<i64> = connection
        .query_row("SELECT max(seq) FROM audit.outcomes", [], |row| row.get(0))
        .map_err(|e| storage(&e))?;
    last.map(seq_of).transpose()
}

/// The account index is keyed by bucket of sequence numbers first (`seq >> BUCKET_BITS`), then
/// account: a commit's rows then land in the newest buckets' few pages, instead of one page per
/// account across the whole index (keyed by account first, a commit of 10,000 events touching
/// 10,000 accounts dirtied about as many pages, each written whole to the log; the journal
/// benchmark's appends ran 1.4x faster bucketed). A page of one account's events probes each
/// bucket from the cursor on, one B-tree search each: 2^12 events a bucket, about 250 probes per
/// million events for an account with none.
const BUCKET_BITS: u32 = 12;

/// What the outcome rows' checksum covers, recorded in `meta`.
const OUTCOME_CHECKSUM: &str = "crc32(seq_le64 || len_le64(event_type) || event_type || effects)";

/// The pragmas every connection to a journal takes (the benchmark's plain-SQLite peer takes the
/// same): WAL, and a sync of the log at every commit.
pub const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;";

/// The SQLite journal (see the module documentation).
pub struct SqliteJournal {
    connection: Connection,
    /// The journal's file with the audit file attached: checks, cuts, effects (never a commit).
    side: Connection,
    path: PathBuf,
    last: Option<u64>,
    /// The first failure, after which nothing is appended.
    failed: Option<String>,
    /// Reused encoding buffer.
    buffer: Vec<u8>,
    /// The thread that copies the log into the database file, off the commit path.
    checkpointer: Option<Checkpointer>,
}

/// Checkpoints run on their own connection and thread (`PASSIVE`: they never block a commit), so
/// a commit pays for its own log write and sync only, not now and then for copying the log into
/// the database file and syncing that too. A failed checkpoint stops the journal like a failed
/// commit: the database file may have lost pages the log no longer holds.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the checkpointer copies the log into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, JournalError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
        connection.execute_batch(PRAGMAS).map_err(|e| storage(&e))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
        let thread_failed = std::sync::Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("journal-checkpoint".to_owned())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let result: Result<(i64, i64, i64), _> =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        });
                    if let Err(error) = result {
                        *thread_failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some(format!("checkpoint: {error}"));
                        return;
                    }
                }
            })
            .map_err(|error| JournalError::Storage(format!("checkpoint thread: {error}")))?;
        Ok(Self {
            stop,
            failed,
            thread: Some(thread),
        })
    }

    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for SqliteJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SqliteJournal")
            .field("path", &self.path)
            .field("last", &self.last)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

pub(crate) fn storage(error: &rusqlite::Error) -> JournalError {
    JournalError::Storage(error.to_string())
}

/// The checksum of an event row.
#[must_use]
pub fn entry_crc(seq: u64, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(body);
    hasher.finalize()
}

fn client_crc(seq: u64, client_id: &str, reply: Option<&str>) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(&(client_id.len() as u64).to_le_bytes());
    hasher.update(client_id.as_bytes());
    match reply {
        Some(reply) => {
            hasher.update(&[1]);
            hasher.update(reply.as_bytes());
        }
        None => hasher.update(&[0]),
    }
    hasher.finalize()
}

/// A sequence number as SQLite's signed key (sequence numbers above `i64::MAX` are refused).
fn key(seq: u64) -> Result<i64, JournalError> {
    i64::try_from(seq)
        .map_err(|_| JournalError::Storage(format!("sequence {seq} is beyond the journal's range")))
}

fn seq_of(key: i64) -> Result<u64, JournalError> {
    u64::try_from(key).map_err(|_| JournalError::Corrupt {
        after: None,
        problem: format!("negative sequence number {key}"),
    })
}

/// The event in a row's first three columns (seq, body, crc), checked and decoded.
fn event_in_row(row: &rusqlite::Row<'_>) -> Result<solvent_engine::event::Envelope, JournalError> {
    let seq: i64 = row.get(0).map_err(|e| storage(&e))?;
    let body = row.get_ref(1).map_err(|e| storage(&e))?;
    let body = body.as_blob().map_err(|error| JournalError::CorruptEntry {
        seq: u64::try_from(seq).unwrap_or(0),
        problem: format!("body: {error}"),
    })?;
    let crc: i64 = row.get(2).map_err(|e| storage(&e))?;
    decode_row(seq, body, crc)
}

/// One stored row, checked and decoded.
fn decode_row(
    seq: i64,
    body: &[u8],
    crc: i64,
) -> Result<solvent_engine::event::Envelope, JournalError> {
    let seq = seq_of(seq)?;
    if u32::try_from(crc).ok() != Some(entry_crc(seq, body)) {
        return Err(JournalError::CorruptEntry {
            seq,
            problem: "checksum mismatch (torn or corrupted row)".to_owned(),
        });
    }
    codec::decode(seq, body).map_err(|problem| JournalError::CorruptEntry { seq, problem })
}

impl SqliteJournal {
    /// Opens the journal in `dir` (creating the directory and the file if absent) and checks its
    /// format.
    ///
    /// # Errors
    /// [`JournalError::Storage`] when the file cannot be opened or set up;
    /// [`JournalError::Format`] when it was written by another format.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir)
            .map_err(|error| JournalError::Storage(format!("{}: {error}", dir.display())))?;
        let path = dir.join(JOURNAL_FILE);
        let connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
        connection.execute_batch(PRAGMAS).map_err(|e| storage(&e))?;
        // The format is checked before any table is created: a file of another format is left
        // as it was found.
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
            )
            .map_err(|e| storage(&e))?;
        if let Some(found) = stored_format(&connection)?
            && found != JOURNAL_FORMAT.to_string()
        {
            return Err(format_refused(&path, &found));
        }
        connection
            .execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;"))
            .map_err(|e| storage(&e))?;
        // The audit file is attached on a second connection, for the journal's checks and cuts
        // (`check_all`, `truncate_from`), not on the one that commits: a commit touches the
        // journal's file only. Holding it open also keeps the audit's log files for the readers.
        let side = Connection::open_with_flags(
            &path,
            // CREATE: an attached file inherits it, and the audit file may not exist yet.
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
        attach_audit(&side, dir, true)?;
        let mut journal = Self {
            connection,
            side,
            path,
            last: None,
            failed: None,
            buffer: Vec::with_capacity(256),
            checkpointer: None,
        };
        journal.check_meta()?;
        journal.last = journal.stored_last()?;
        journal
            .connection
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(|e| storage(&e))?;
        journal.checkpointer = Some(Checkpointer::start(&journal.path)?);
        Ok(journal)
    }

    /// Writes the format on a new journal, or checks it on an existing one.
    fn check_meta(&mut self) -> Result<(), JournalError> {
        let expected = [
            ("format", JOURNAL_FORMAT.to_string()),
            ("event_encoding", EVENT_ENCODING.to_string()),
            ("checksum", "crc32(seq_le64 || body)".to_owned()),
            ("outcome_checksum", OUTCOME_CHECKSUM.to_owned()),
        ];
        for (name, value) in expected {
            let found: Option<String> = self
                .connection
                .query_row("SELECT value FROM meta WHERE key = ?1", [name], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(|e| storage(&e))?;
            match found {
                Some(found) if found == value => {}
                Some(found) => {
                    return Err(JournalError::Format(format!(
                        "{}: {name} is {found:?}, this build reads {value:?}",
                        self.path.display()
                    )));
                }
                None => {
                    self.connection
                        .execute(
                            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                            params![name, value],
                        )
                        .map_err(|e| storage(&e))?;
                }
            }
        }
        Ok(())
    }

    fn stored_last(&self) -> Result<Option<u64>, JournalError> {
        let last: Option<i64> = self
            .connection
            .query_row("SELECT max(seq) FROM events", [], |row| row.get(0))
            .map_err(|e| storage(&e))?;
        last.map(seq_of).transpose()
    }

    /// The journal file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of entries held.
    ///
    /// # Errors
    /// [`JournalError::Storage`].
    pub fn len(&self) -> Result<u64, JournalError> {
        let count: i64 = self
            .connection
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .map_err(|e| storage(&e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Whether the journal holds no entry.
    ///
    /// # Errors
    /// [`JournalError::Storage`].
    pub fn is_empty(&self) -> Result<bool, JournalError> {
        Ok(self.last.is_none())
    }

    fn write(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        let transaction = self.connection.transaction().map_err(|e| storage(&e))?;
        {
            let mut insert = transaction
                .prepare_cached("INSERT INTO events (seq, body, crc) VALUES (?1, ?2, ?3)")
                .map_err(|e| storage(&e))?;
            let mut insert_client = transaction
                .prepare_cached(
                    "INSERT INTO clients (client_id, seq, reply, crc) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| storage(&e))?;
            for entry in entries {
                let seq = entry.envelope.seq;
                self.buffer.clear();
                codec::encode(&entry.envelope, &mut self.buffer);
                let crc = entry_crc(seq, &self.buffer);
                insert
                    .execute(params![key(seq)?, &self.buffer, crc])
                    .map_err(|e| storage(&e))?;
                if let Some(client_id) = &entry.client_id {
                    let crc = client_crc(seq, client_id, entry.reply.as_deref());
                    insert_client
                        .execute(params![client_id, key(seq)?, entry.reply, crc])
                        .map_err(|error| match error.sqlite_error_code() {
                            Some(rusqlite::ErrorCode::ConstraintViolation) => {
                                JournalError::DuplicateClientId {
                                    seq,
                                    client_id: client_id.clone(),
                                }
                            }
                            _ => storage(&error),
                        })?;
                }
            }
        }
        // The commit syncs the log (synchronous=FULL): once it returns, the batch is durable.
        transaction.commit().map_err(|e| storage(&e))
    }

    /// Visits the entries above `after` in order, checked and decoded, without their client
    /// ids (what replay needs), stopping at the first entry that fails its check.
    ///
    /// # Errors
    /// [`JournalError::CorruptEntry`] naming the first bad entry; [`JournalError::Storage`]; or
    /// the visitor's own error.
    pub fn scan<E: From<JournalError>>(
        &self,
        after: Option<u64>,
        mut visit: impl FnMut(solvent_engine::event::Envelope) -> Result<(), E>,
    ) -> Result<(), E> {
        let from = match after {
            Some(after) => key(after)?,
            None => -1,
        };
        let mut statement = self
            .connection
            .prepare("SELECT seq, body, crc FROM events WHERE seq > ?1 ORDER BY seq")
            .map_err(|e| storage(&e))?;
        let mut rows = statement.query([from]).map_err(|e| storage(&e))?;
        while let Some(row) = rows.next().map_err(|e| storage(&e))? {
            visit(event_in_row(row)?)?;
        }
        Ok(())
    }

    /// Checks every entry and client row without stopping at the first problem: each bad one
    /// is listed (for `solvent journal verify`).
    ///
    /// # Errors
    /// [`JournalError::Storage`] when the file itself cannot be read.
    pub fn check_all(&self) -> Result<Vec<JournalError>, JournalError> {
        let mut problems = Vec::new();
        let mut statement = self
            .connection
            .prepare("SELECT seq, body, crc FROM events ORDER BY seq")
            .map_err(|e| storage(&e))?;
        let mut rows = statement.query([]).map_err(|e| storage(&e))?;
        while let Some(row) = rows.next().map_err(|e| storage(&e))? {
            let checked = (|| {
                let seq: i64 = row.get(0).map_err(|e| storage(&e))?;
                let body: Vec<u8> = row.get(1).map_err(|error| JournalError::CorruptEntry {
                    seq: u64::try_from(seq).unwrap_or(0),
                    problem: format!("body: {error}"),
                })?;
                let crc: i64 = row.get(2).map_err(|e| storage(&e))?;
                decode_row(seq, &body, crc).map(|_| ())
            })();
            if let Err(problem) = checked {
                problems.push(problem);
            }
        }
        if let Err(problem) = self.clients() {
            problems.push(problem);
        }
        self.check_outcomes(&mut problems)?;
        Ok(problems)
    }

    /// Every outcome row against its checksum; every event up to the audit's reach with exactly
    /// one outcome (the key allows no second), the events beyond it named as a whole, and no
    /// outcome or index row without its event.
    fn check_outcomes(&self, problems: &mut Vec<JournalError>) -> Result<(), JournalError> {
        let mut statement = self
            .side
            .prepare("SELECT seq, event_type, effects, crc FROM outcomes ORDER BY seq")
            .map_err(|e| storage(&e))?;
        let mut rows = statement.query([]).map_err(|e| storage(&e))?;
        while let Some(row) = rows.next().map_err(|e| storage(&e))? {
            if let Err(problem) = outcome_row(row, 0) {
                problems.push(problem);
            }
        }
        // Below the audit's reach an event without effects is a hole; beyond it, effects not
        // written yet (the audit writer was behind, or stopped, when the service stopped).
        let through = effects_through(&self.side)?;
        let missing = format!(
            "SELECT e.seq FROM events e LEFT JOIN outcomes o ON o.seq = e.seq WHERE o.seq IS NULL AND e.seq <= {} ORDER BY e.seq",
            through.map_or(-1, |through| i64::try_from(through).unwrap_or(i64::MAX))
        );
        for seq in self.seqs(&missing)? {
            problems.push(JournalError::CorruptEntry {
                seq,
                problem: "no effects recorded for it".to_owned(),
            });
        }
        if let Some(last) = self.last
            && through.is_none_or(|through| through < last)
        {
            problems.push(JournalError::EffectsMissing { through, last });
        }
        for table in ["outcomes", "effect_types", "event_accounts"] {
            let orphans = format!(
                "SELECT DISTINCT t.seq FROM {table} t LEFT JOIN events e ON e.seq = t.seq WHERE e.seq IS NULL ORDER BY t.seq"
            );
            for seq in self.seqs(&orphans)? {
                problems.push(JournalError::CorruptEntry {
                    seq,
                    problem: format!(
                        "a row of {table} names it, but the journal holds no such event"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The sequence numbers `sql` selects (at most 100: a summary, not a dump).
    fn seqs(&self, sql: &str) -> Result<Vec<u64>, JournalError> {
        let mut statement = self.side.prepare(sql).map_err(|e| storage(&e))?;
        let mut rows = statement.query([]).map_err(|e| storage(&e))?;
        let mut seqs = Vec::new();
        while let Some(row) = rows.next().map_err(|e| storage(&e))? {
            let seq: i64 = row.get(0).map_err(|e| storage(&e))?;
            seqs.push(seq_of(seq)?);
            if seqs.len() >= 100 {
                break;
            }
        }
        Ok(seqs)
    }

    /// Visits the entries above `after` in order, each with its effects as recorded (JSON
    /// lines, `\n`-separated; empty when it caused none), checked; `None` for the entries
    /// beyond the audit's reach ([`Self::effects_through`]), whose effects are not written yet.
    /// Stops at the first entry or outcome that fails its check, or is missing below the reach.
    ///
    /// # Errors
    /// [`JournalError::CorruptEntry`] naming the first bad entry; [`JournalError::Storage`]; or
    /// the visitor's own error.
    pub fn scan_with_effects<E: From<JournalError>>(
        &self,
        after: Option<u64>,
        mut visit: impl FnMut(solvent_engine::event::Envelope, Option<&str>) -> Result<(), E>,
    ) -> Result<(), E> {
        let from = match after {
            Some(after) => key(after)?,
            None => -1,
        };
        let mut statement = self
            .side
            .prepare(
                "SELECT e.seq, e.body, e.crc, o.seq, o.event_type, o.effects, o.crc
                 FROM events e LEFT JOIN outcomes o ON o.seq = e.seq
                 WHERE e.seq > ?1 ORDER BY e.seq",
            )
            .map_err(|e| storage(&e))?;
        let through = effects_through(&self.side)?;
        let mut rows = statement.query([from]).map_err(|e| storage(&e))?;
        while let Some(row) = rows.next().map_err(|e| storage(&e))? {
            let envelope = event_in_row(row)?;
            let outcome = outcome_row(row, 3)?;
            if outcome.is_none() && through.is_none_or(|through| envelope.seq > through) {
                visit(envelope, None)?;
            } else {
                let effects = recorded_effects(&envelope, outcome)?;
                visit(envelope, Some(&effects))?;
            }
        }
        Ok(())
    }

    /// Every client id held, with its entry and reply, checked.
    ///
    /// # Errors
    /// [`JournalError::Corrupt`] naming the first bad client row; [`JournalError::Storage`].
    pub fn clients(&self) -> Result<ClientIndex, JournalError> {
        let mut statement = self
            .connection
            .prepare("SELECT client_id, seq, reply, crc FROM clients")
            .map_err(|e| storage(&e))?;
        let mut rows = statement.query([]).map_err(|e| storage(&e))?;
        let mut index = ClientIndex::new();
        while let Some(row) = rows.next().map_err(|e| storage(&e))? {
            let (client_id, record) = client_row(row)?;
            index.insert(client_id, record);
        }
        Ok(index)
    }

    /// How far the audit file's effects reach: every entry up to it has its effects written;
    /// `None` when none has.
    ///
    /// # Errors
    /// [`JournalError::Storage`].
    pub fn effects_through(&self) -> Result<Option<u64>, JournalError> {
        effects_through(&self.side)
    }

    /// Removes every entry from `seq` on (with their client ids and effects), durably: what an
    /// operator asks for to cut a torn tail. Returns how many entries were removed.
    ///
    /// # Errors
    /// [`JournalError::Storage`].
    pub fn truncate_from(&mut self, seq: u64) -> Result<u64, JournalError> {
        let from = key(seq)?;
        // The effects go first, in a commit of their own: a crash between the two commits leaves
        // events without effects (the audit writer writes them again), never effects of events
        // that are gone, which later events of the same sequence numbers would collide with.
        // (A commit over both files is not atomic across them in WAL mode anyway.) The index
        // tables are keyed by type or bucket first: cutting them scans them, which an operator's
        // rare cut can afford.
        let transaction = self.side.transaction().map_err(|e| storage(&e))?;
        for table in ["outcomes", "effect_types", "event_accounts"] {
            transaction
                .execute(
                    &format!("DELETE FROM audit.{table} WHERE seq >= ?1"),
                    [from],
                )
                .map_err(|e| storage(&e))?;
        }
        transaction.commit().map_err(|e| storage(&e))?;
        let transaction = self.side.transaction().map_err(|e| storage(&e))?;
        let removed = transaction
            .execute("DELETE FROM events WHERE seq >= ?1", [from])
            .map_err(|e| storage(&e))?;
        transaction
            .execute("DELETE FROM clients WHERE seq >= ?1", [from])
            .map_err(|e| storage(&e))?;
        transaction.commit().map_err(|e| storage(&e))?;
        self.last = self.stored_last()?;
        Ok(removed as u64)
    }
}

fn client_row(row: &rusqlite::Row<'_>) -> Result<(String, ClientRecord), JournalError> {
    let corrupt = |problem: String| JournalError::Corrupt {
        after: None,
        problem: format!("client row: {problem}"),
    };
    let client_id: String = row.get(0).map_err(|e| corrupt(e.to_string()))?;
    let seq: i64 = row.get(1).map_err(|e| corrupt(e.to_string()))?;
    let reply: Option<String> = row.get(2).map_err(|e| corrupt(e.to_string()))?;
    let crc: i64 = row.get(3).map_err(|e| corrupt(e.to_string()))?;
    let seq = seq_of(seq)?;
    if u32::try_from(crc).ok() != Some(client_crc(seq, &client_id, reply.as_deref())) {
        return Err(corrupt(format!(
            "client id {client_id:?} of entry {seq} fails its checksum"
        )));
    }
    Ok((client_id, ClientRecord { seq, reply }))
}

impl Journal for SqliteJournal {
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        if self.failed.is_none() {
            self.failed = self.checkpointer.as_ref().and_then(Checkpointer::failure);
        }
        if let Some(cause) = &self.failed {
            return Err(JournalError::Stopped {
                cause: cause.clone(),
            });
        }
        let mut last = self.last;
        for entry in entries {
            let seq = entry.envelope.seq;
            if last.is_some_and(|last| seq <= last) {
                return Err(JournalError::OutOfOrder { seq, last });
            }
            last = Some(seq);
        }
        match self.write(entries) {
            Ok(()) => {
                self.last = last;
                Ok(())
            }
            Err(error) => {
                // Never retried: after a failed sync the file may have lost pages it reported
                // as written, so nothing more is taken (see the crate documentation).
                self.failed = Some(error.to_string());
                Err(error)
            }
        }
    }

    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        Ok(self.last)
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        read_after(&self.connection, after, limit)
    }

    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
        client(&self.connection, client_id)
    }

    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError> {
        Ok(Box::new(SqliteReader::open(&self.path)?))
    }

    /// The effects go to the audit writer, not into the journal's file.
    fn keeps_outcomes(&self) -> bool {
        false
    }
}

/// A read-only connection to a journal file, for another thread than the appending one: in
/// WAL mode it reads beside the appends and sees every committed transaction.
pub struct SqliteReader {
    connection: Connection,
}

impl SqliteReader {
    /// Opens a reader of the journal file at `path` (which must exist, with the audit file
    /// beside it, as [`SqliteJournal::open`] leaves them).
    ///
    /// # Errors
    /// [`JournalError::Storage`] when a file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
        attach_audit(
            &connection,
            path.parent().unwrap_or_else(|| Path::new(".")),
            false,
        )?;
        Ok(Self { connection })
    }
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader").finish_non_exhaustive()
    }
}

impl JournalReader for SqliteReader {
    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, JournalError> {
        audit(&self.connection, query)
    }

    fn effects_through(&self) -> Result<Option<u64>, JournalError> {
        effects_through(&self.connection)
    }

    fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
        client(&self.connection, client_id)
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        read_after(&self.connection, after, limit)
    }

    fn read_before(&self, before: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        let below = match before {
            Some(before) => key(before)?,
            None => i64::MAX,
        };
        read_rows(
            &self.connection,
            "SELECT e.seq, e.body, e.crc, c.client_id, c.reply, c.crc
             FROM events e LEFT JOIN clients c ON c.seq = e.seq
             WHERE e.seq < ?1 ORDER BY e.seq DESC LIMIT ?2",
            below,
            limit,
        )
    }

    fn each_client_id(&self, visit: &mut dyn FnMut(&str)) -> Result<(), JournalError> {
        let mut statement = self
            .connection
            .prepare("SELECT client_id FROM clients")
            .map_err(|e| storage(&e))?;
        let mut rows = statement.query([]).map_err(|e| storage(&e))?;
        while let Some(row) = rows.next().map_err(|e| storage(&e))? {
            let id = row.get_ref(0).map_err(|e| storage(&e))?;
            let id = id.as_str().map_err(|error| JournalError::Corrupt {
                after: None,
                problem: format!("client row: {error}"),
            })?;
            visit(id);
        }
        Ok(())
    }
}

fn client(connection: &Connection, client_id: &str) -> Result<Option<ClientRecord>, JournalError> {
    let mut statement = connection
        .prepare_cached("SELECT client_id, seq, reply, crc FROM clients WHERE client_id = ?1")
        .map_err(|e| storage(&e))?;
    let mut rows = statement.query([client_id]).map_err(|e| storage(&e))?;
    match rows.next().map_err(|e| storage(&e))? {
        Some(row) => client_row(row).map(|(_, record)| Some(record)),
        None => Ok(None),
    }
}

fn read_after(
    connection: &Connection,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<Entry>, JournalError> {
    let from = match after {
        Some(after) => key(after)?,
        None => -1,
    };
    read_rows(
        connection,
        "SELECT e.seq, e.body, e.crc, c.client_id, c.reply, c.crc
         FROM events e LEFT JOIN clients c ON c.seq = e.seq
         WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
        from,
        limit,
    )
}

/// The entries `sql` selects (seq, body, crc and the client row's id, reply and crc, with the
/// bound and the limit as its two parameters), each checked and decoded.
fn read_rows(
    connection: &Connection,
    sql: &str,
    bound: i64,
    limit: usize,
) -> Result<Vec<Entry>, JournalError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = connection.prepare_cached(sql).map_err(|e| storage(&e))?;
    let mut rows = statement.query([bound, limit]).map_err(|e| storage(&e))?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next().map_err(|e| storage(&e))? {
        entries.push(entry_row(row)?);
    }
    Ok(entries)
}

/// The entry in a row's first six columns (seq, body, crc and the client row's id, reply and
/// crc), checked and decoded; its outcome is not read.
fn entry_row(row: &rusqlite::Row<'_>) -> Result<Entry, JournalError> {
    let envelope = event_in_row(row)?;
    let client_id: Option<String> = row.get(3).map_err(|e| storage(&e))?;
    let reply: Option<String> = row.get(4).map_err(|e| storage(&e))?;
    if let Some(client_id) = &client_id {
        let crc: i64 = row.get(5).map_err(|e| storage(&e))?;
        if u32::try_from(crc).ok() != Some(client_crc(envelope.seq, client_id, reply.as_deref())) {
            return Err(JournalError::CorruptEntry {
                seq: envelope.seq,
                problem: format!("client id {client_id:?} fails its checksum"),
            });
        }
    }
    Ok(Entry {
        envelope,
        client_id,
        reply,
        outcome: Outcome::default(),
    })
}

/// Up to `limit` events above `after` and up to `upto` (all if `None`), in order, checked and
/// decoded: what the audit writer reads.
pub(crate) fn read_events(
    connection: &Connection,
    after: Option<u64>,
    upto: Option<u64>,
    limit: usize,
) -> Result<Vec<solvent_engine::event::Envelope>, JournalError> {
    let from = match after {
        Some(after) => key(after)?,
        None => -1,
    };
    let to = match upto {
        Some(upto) => key(upto)?,
        None => i64::MAX,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = connection
        .prepare_cached(
            "SELECT seq, body, crc FROM main.events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(|e| storage(&e))?;
    let mut rows = statement
        .query([from, to, limit])
        .map_err(|e| storage(&e))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(|e| storage(&e))? {
        events.push(event_in_row(row)?);
    }
    Ok(events)
}

/// Rows one multi-row `INSERT` writes: a statement per row spent more on setting the statement
/// up, binding it and finishing it than on inserting its row (the audit writer's profile at
/// 100,000 events / s). 64 rows of at most 4 values stay far inside SQLite's bound on a
/// statement's variables (32,766).
const ROWS_PER_STATEMENT: usize = 64;

/// Writes events' outcomes and their index rows (in the audit file) on `connection`, inside the
/// caller's transaction: the outcome rows in sequence order, the index rows sorted by their keys
/// (each insertion then lands beside the last in its B-tree instead of at a random page), each
/// table through multi-row statements of [`ROWS_PER_STATEMENT`] rows and single-row ones for the
/// rest.
pub(crate) fn insert_outcomes<'o>(
    connection: &Connection,
    outcomes: impl IntoIterator<Item = (u64, &'o str, &'o Outcome)>,
    text: &mut String,
) -> Result<(), JournalError> {
    // Every outcome's effects joined into one buffer; each row keeps its range in it.
    text.clear();
    let mut rows: Vec<(i64, &str, std::ops::Range<usize>, u32)> = Vec::new();
    let mut effect_types: Vec<(&str, i64)> = Vec::new();
    let mut accounts: Vec<(i64, &str, i64)> = Vec::new();
    for (seq, event_type, outcome) in outcomes {
        let at = key(seq)?;
        let start = text.len();
        for (n, line) in outcome.effects.iter().enumerate() {
            if n > 0 {
                text.push('\n');
            }
            text.push_str(line);
        }
        let crc = outcome_crc(seq, event_type, &text[start..]);
        rows.push((at, event_type, start..text.len(), crc));
        effect_types.extend(outcome.effect_types.iter().map(|kind| (*kind, at)));
        let bucket = at >> BUCKET_BITS;
        accounts.extend(
            outcome
                .accounts
                .iter()
                .map(|account| (bucket, account.as_str(), at)),
        );
    }
    effect_types.sort_unstable();
    accounts.sort_unstable();
    let text = text.as_str();
    insert_rows(
        connection,
        "INSERT INTO outcomes (seq, event_type, effects, crc) VALUES ",
        4,
        &rows,
        |statement, first, (at, event_type, range, crc)| {
            bind(statement, first, at)?;
            bind(statement, first + 1, event_type)?;
            bind(statement, first + 2, &text[range.clone()])?;
            bind(statement, first + 3, crc)
        },
    )?;
    insert_rows(
        connection,
        "INSERT INTO effect_types (effect_type, seq) VALUES ",
        2,
        &effect_types,
        |statement, first, (kind, at)| {
            bind(statement, first, kind)?;
            bind(statement, first + 1, at)
        },
    )?;
    insert_rows(
        connection,
        "INSERT INTO event_accounts (bucket, account, seq) VALUES ",
        3,
        &accounts,
        |statement, first, (bucket, account, at)| {
            bind(statement, first, bucket)?;
            bind(statement, first + 1, account)?;
            bind(statement, first + 2, at)
        },
    )
}

fn bind(
    statement: &mut rusqlite::Statement<'_>,
    index: usize,
    value: impl rusqlite::ToSql,
) -> Result<(), JournalError> {
    statement
        .raw_bind_parameter(index, value)
        .map_err(|e| storage(&e))
}

/// Inserts `rows` with `insert` (the statement up to its `VALUES`) followed by `(?, ..)` of
/// `columns` values per row, [`ROWS_PER_STATEMENT`] rows per statement and the rest one by one;
/// `bind_row` binds a row's values from the (1-based) index given.
fn insert_rows<R>(
    connection: &Connection,
    insert: &str,
    columns: usize,
    rows: &[R],
    bind_row: impl Fn(&mut rusqlite::Statement<'_>, usize, &R) -> Result<(), JournalError>,
) -> Result<(), JournalError> {
    let placeholders = |count: usize| {
        let row = format!("({})", vec!["?"; columns].join(", "));
        format!("{insert}{}", vec![row; count].join(", "))
    };
    let mut chunks = rows.chunks_exact(ROWS_PER_STATEMENT);
    if chunks.len() > 0 {
        let mut statement = connection
            .prepare_cached(&placeholders(ROWS_PER_STATEMENT))
            .map_err(|e| storage(&e))?;
        for chunk in chunks.by_ref() {
            for (n, row) in chunk.iter().enumerate() {
                bind_row(&mut statement, n * columns + 1, row)?;
            }
            statement.raw_execute().map_err(|e| storage(&e))?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut statement = connection
            .prepare_cached(&placeholders(1))
            .map_err(|e| storage(&e))?;
        for row in rest {
            bind_row(&mut statement, 1, row)?;
            statement.raw_execute().map_err(|e| storage(&e))?;
        }
    }
    Ok(())
}

/// The checksum of an outcome row ([`OUTCOME_CHECKSUM`]).
fn outcome_crc(seq: u64, event_type: &str, effects: &str) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(&(event_type.len() as u64).to_le_bytes());
    hasher.update(event_type.as_bytes());
    hasher.update(effects.as_bytes());
    hasher.finalize()
}

/// An outcome row read from columns `start..start + 4` (seq, event type, effects, crc) and
/// checked: `None` when the row is absent (a left join found none), else its event type and
/// effects.
fn outcome_row(
    row: &rusqlite::Row<'_>,
    start: usize,
) -> Result<Option<(String, String)>, JournalError> {
    let seq: Option<i64> = row.get(start).map_err(|e| storage(&e))?;
    let Some(seq) = seq else {
        return Ok(None);
    };
    let seq = seq_of(seq)?;
    let corrupt = |problem: String| JournalError::CorruptEntry { seq, problem };
    let event_type: String = row
        .get(start + 1)
        .map_err(|error| corrupt(format!("event type: {error}")))?;
    let effects: String = row
        .get(start + 2)
        .map_err(|error| corrupt(format!("effects: {error}")))?;
    let crc: i64 = row.get(start + 3).map_err(|e| storage(&e))?;
    if u32::try_from(crc).ok() != Some(outcome_crc(seq, &event_type, &effects)) {
        return Err(corrupt(
            "its effects fail their checksum (torn or corrupted row)".to_owned(),
        ));
    }
    Ok(Some((event_type, effects)))
}

/// The effects recorded for `envelope`, checked: present, and recorded for an event of its type.
fn recorded_effects(
    envelope: &solvent_engine::event::Envelope,
    outcome: Option<(String, String)>,
) -> Result<String, JournalError> {
    let seq = envelope.seq;
    let Some((recorded_type, effects)) = outcome else {
        return Err(JournalError::CorruptEntry {
            seq,
            problem: "no effects recorded for it".to_owned(),
        });
    };
    let kind = event_type(&envelope.event);
    if recorded_type != kind {
        return Err(JournalError::CorruptEntry {
            seq,
            problem: format!(
                "its effects were recorded for a {recorded_type} event, it is a {kind}"
            ),
        });
    }
    Ok(effects)
}

/// The format recorded in a journal's `meta`, if any.
fn stored_format(connection: &Connection) -> Result<Option<String>, JournalError> {
    connection
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|e| storage(&e))
}

/// Why a journal of format `found` is not opened.
fn format_refused(path: &Path, found: &str) -> JournalError {
    let advice = if found == "1" || found == "2" {
        "`solvent journal migrate DIR` brings it to this version (the effects go to the audit file, written by replaying the journal), or run the build that wrote it"
    } else {
        "run the build that wrote it"
    };
    JournalError::Format(format!(
        "{}: schema version {found}, this build reads version {JOURNAL_FORMAT}; {advice}",
        path.display()
    ))
}

/// A page of the journal for `query` (see [`JournalReader::audit`]). The most selective
/// filter's index drives the read (an account's, then an effect type's, then an event type's),
/// walked in sequence order from the cursor; the other filters are checked per row by key.
fn audit(connection: &Connection, query: &AuditQuery) -> Result<Vec<AuditRecord>, JournalError> {
    // One read transaction: the audit's reach is read first, so an event up to it read after
    // has its effects in the same snapshot of the audit file (the writer may commit between).
    let read = connection
        .unchecked_transaction()
        .map_err(|e| storage(&e))?;
    let through = effects_through(&read)?;
    let records = audit_in(&read, query, through);
    // Only read: nothing to commit, and ending it cannot lose anything.
    let _ = read.rollback();
    records
}

/// [`audit`] in its read transaction, with the audit's reach `through`.
fn audit_in(
    connection: &Connection,
    query: &AuditQuery,
    through: Option<u64>,
) -> Result<Vec<AuditRecord>, JournalError> {
    let (above, below) = bounds(query)?;
    if query.account.is_none() {
        return audit_rows(connection, query, None, through);
    }
    // The account index is walked bucket by bucket, in the page's direction, until the page is
    // full or the bounds are passed.
    let last: Option<i64> = connection
        .query_row("SELECT max(seq) FROM events", [], |row| row.get(0))
        .map_err(|e| storage(&e))?;
    let Some(last) = last else {
        return Ok(Vec::new());
    };
    let first_bucket = above.saturating_add(1).max(0) >> BUCKET_BITS;
    let last_bucket = below.saturating_sub(1).min(last) >> BUCKET_BITS;
    let buckets: Box<dyn Iterator<Item = i64>> = match query.cursor {
        Cursor::After(_) => Box::new(first_bucket..=last_bucket),
        Cursor::Latest | Cursor::Before(_) => Box::new((first_bucket..=last_bucket).rev()),
    };
    let mut records = Vec::new();
    for bucket in buckets {
        let rest = AuditQuery {
            limit: query.limit - records.len(),
            ..query.clone()
        };
        records.extend(audit_rows(connection, &rest, Some(bucket), through)?);
        if records.len() >= query.limit {
            break;
        }
    }
    Ok(records)
}

/// The rows of `query` (in `bucket` of the account index, for an account's); events beyond
/// `through` (the audit's reach) have no effects written yet.
fn audit_rows(
    connection: &Connection,
    query: &AuditQuery,
    bucket: Option<i64>,
    through: Option<u64>,
) -> Result<Vec<AuditRecord>, JournalError> {
    let (sql, values) = audit_statement(query, bucket)?;
    let bound: Vec<(&str, &dyn rusqlite::ToSql)> = values
        .iter()
        .map(|(name, value)| (*name, value as &dyn rusqlite::ToSql))
        .collect();
    let mut statement = connection.prepare_cached(&sql).map_err(|e| storage(&e))?;
    let mut rows = statement.query(bound.as_slice()).map_err(|e| storage(&e))?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(|e| storage(&e))? {
        let entry = entry_row(row)?;
        let outcome = outcome_row(row, 6)?;
        let effects =
            if outcome.is_none() && through.is_none_or(|through| entry.envelope.seq > through) {
                None
            } else {
                Some(
                    recorded_effects(&entry.envelope, outcome)?
                        .split('\n')
                        .filter(|line| !line.is_empty())
                        .map(std::sync::Arc::from)
                        .collect(),
                )
            };
        records.push(AuditRecord {
            envelope: entry.envelope,
            client_id: entry.client_id,
            effects,
        });
    }
    Ok(records)
}

/// The statement of an audit page and the values of its named parameters.
type Statement = (String, Vec<(&'static str, rusqlite::types::Value)>);

/// The page's bounds as exclusive keys: above the cursor (or `from_seq - 1`), below the cursor
/// (or `to_seq + 1`).
fn bounds(query: &AuditQuery) -> Result<(i64, i64), JournalError> {
    let (mut above, mut below) = (-1_i64, i64::MAX);
    match query.cursor {
        Cursor::Latest => {}
        Cursor::After(after) => above = key(after)?,
        Cursor::Before(before) => below = key(before)?,
    }
    if let Some(from) = query.from_seq {
        above = above.max(key(from)?.saturating_sub(1));
    }
    if let Some(to) = query.to_seq {
        below = below.min(key(to)?.saturating_add(1));
    }
    Ok((above, below))
}

/// The SQL that answers `query` (see [`audit`]), with its parameters; an account's query reads
/// one `bucket` of the account index.
fn audit_statement(query: &AuditQuery, bucket: Option<i64>) -> Result<Statement, JournalError> {
    use rusqlite::types::Value;
    let (above, below) = bounds(query)?;
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let text = |value: &String| Value::Text(value.clone());
    let mut bound = vec![
        (":above", Value::Integer(above)),
        (":below", Value::Integer(below)),
        (":limit", Value::Integer(limit)),
    ];
    let mut conditions = Vec::new();
    let driver = if let Some(account) = &query.account {
        bound.push((":account", text(account)));
        bound.push((":bucket", Value::Integer(bucket.unwrap_or(0))));
        "event_accounts d JOIN events e ON e.seq = d.seq AND d.bucket = :bucket AND d.account = :account"
    } else if let Some(effect_type) = &query.effect_type {
        bound.push((":effect_type", text(effect_type)));
        "effect_types d JOIN events e ON e.seq = d.seq AND d.effect_type = :effect_type"
    } else if let Some(event_type) = &query.event_type {
        bound.push((":event_type", text(event_type)));
        "outcomes d JOIN events e ON e.seq = d.seq AND d.event_type = :event_type"
    } else {
        "events d JOIN events e ON e.seq = d.seq"
    };
    if query.account.is_some()
        && let Some(effect_type) = &query.effect_type
    {
        bound.push((":effect_type", text(effect_type)));
        conditions.push(
            "AND EXISTS (SELECT 1 FROM effect_types t WHERE t.effect_type = :effect_type AND t.seq = d.seq)",
        );
    }
    if (query.account.is_some() || query.effect_type.is_some())
        && let Some(event_type) = &query.event_type
    {
        bound.push((":event_type", text(event_type)));
        conditions.push("AND o.event_type = :event_type");
    }
    let order = match query.cursor {
        Cursor::After(_) => "ASC",
        Cursor::Latest | Cursor::Before(_) => "DESC",
    };
    let sql = format!(
        "SELECT e.seq, e.body, e.crc, c.client_id, c.reply, c.crc, o.seq, o.event_type, o.effects, o.crc
         FROM {driver}
         LEFT JOIN clients c ON c.seq = e.seq
         LEFT JOIN outcomes o ON o.seq = e.seq
         WHERE d.seq > :above AND d.seq < :below {}
         ORDER BY d.seq {order} LIMIT :limit",
        conditions.join(" ")
    );
    Ok((sql, bound))
}

/// How a journal was brought to format 3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The format found.
    pub from_format: String,
    /// Events whose effects were written to the audit file (those missing: all of them for
    /// formats 1 and 2, only the missing ones for a journal already of format 3).
    pub events: u64,
    /// The audit writer's replica's state hash after the last event.
    pub state_hash: String,
}

/// Brings the journal in data directory `dir` to format 3 and writes every missing effect to
/// the audit file: for format 1 (events only) and format 2 (effects in the journal file), the
/// journal's effect tables are dropped and the format recorded in one transaction, then the
/// effects are written by replaying the journal ([`crate::fill_effects`], from the start or a
/// snapshot at or below the audit's reach) on an engine of `venue` and `config` (the recorded
/// venue, `venue.toml`). A journal already of format 3 gets its missing effects only: the repair
/// after a crash or an audit writer's failure. Effects recomputed are those this build's engine
/// gives, which recovery would also give.
///
/// # Errors
/// [`JournalError::Storage`]; [`JournalError::Format`] for another format;
/// [`JournalError::CorruptEntry`] when an event does not check out (the effects before it are
/// written and kept).
pub fn migrate(
    dir: &Path,
    venue: solvent_core::venue::Venue,
    config: solvent_engine::config::EngineConfig,
) -> Result<Migration, crate::StoreError> {
    let path = dir.join(JOURNAL_FILE);
    let mut connection = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
    connection.execute_batch(PRAGMAS).map_err(|e| storage(&e))?;
    let found = stored_format(&connection)?
        .ok_or_else(|| JournalError::Format(format!("{}: no format recorded", path.display())))?;
    if found != JOURNAL_FORMAT.to_string() {
        if found != "1" && found != "2" {
            return Err(format_refused(&path, &found).into());
        }
        let transaction = connection.transaction().map_err(|e| storage(&e))?;
        transaction
            .execute_batch(
                "DROP TABLE IF EXISTS main.event_accounts; DROP TABLE IF EXISTS main.effect_types; DROP TABLE IF EXISTS main.outcomes;",
            )
            .map_err(|e| storage(&e))?;
        transaction
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'format'",
                [JOURNAL_FORMAT.to_string()],
            )
            .map_err(|e| storage(&e))?;
        transaction
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('outcome_checksum', ?1)",
                [OUTCOME_CHECKSUM],
            )
            .map_err(|e| storage(&e))?;
        transaction.commit().map_err(|e| storage(&e))?;
    }
    drop(connection);
    let filled = crate::audit::fill_effects(dir, venue, config)?;
    Ok(Migration {
        from_format: found,
        events: filled.written,
        state_hash: filled.state_hash,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// "The events of account X" and every other filter walk an index from the cursor, in
    /// order: no scan of a table, no sort of what was found.
    #[test]
    fn every_audit_filter_reads_through_an_index_in_sequence_order() {
        let dir = std::env::temp_dir().join(format!("solvent-plan-{}", std::process::id()));
        let journal = SqliteJournal::open(&dir).unwrap();
        let some = |text: &str| Some(text.to_owned());
        let queries = [
            AuditQuery::default(),
            AuditQuery {
                account: some("a1"),
                cursor: Cursor::Before(100),
                ..AuditQuery::default()
            },
            AuditQuery {
                account: some("a1"),
                effect_type: some("liquidation"),
                event_type: some("index_price"),
                ..AuditQuery::default()
            },
            AuditQuery {
                effect_type: some("liquidation"),
                cursor: Cursor::After(5),
                ..AuditQuery::default()
            },
            AuditQuery {
                event_type: some("fill"),
                from_seq: Some(3),
                to_seq: Some(9),
                ..AuditQuery::default()
            },
        ];
        for query in queries {
            let (sql, values) = audit_statement(&query, Some(0)).unwrap();
            let bound: Vec<(&str, &dyn rusqlite::ToSql)> = values
                .iter()
                .map(|(name, value)| (*name, value as &dyn rusqlite::ToSql))
                .collect();
            let mut statement = journal
                .side
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = statement
                .query_map(bound.as_slice(), |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter()
                    .all(|step| step.starts_with("SEARCH") || step.starts_with("CORRELATED")),
                "{query:?}: {plan:?}"
            );
            assert!(
                plan[0].contains("seq>?") || plan[0].contains("rowid>?"),
                "{query:?}: {plan:?}"
            );
        }
        drop(journal);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A new audit file has its larger pages; the journal's own file keeps SQLite's default
    /// (its commits are small and synced one after another).
    #[test]
    fn a_new_audit_file_has_pages_of_16_kib() {
        let dir = std::env::temp_dir().join(format!("solvent-pages-{}", std::process::id()));
        let journal = SqliteJournal::open(&dir).unwrap();
        let page_size = |schema: &str| -> u32 {
            journal
                .side
                .query_row(&format!("PRAGMA {schema}.page_size"), [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(page_size("audit"), AUDIT_PAGE_SIZE);
        assert_eq!(page_size("audit"), 16_384);
        assert_eq!(page_size("main"), 4_096);
        drop(journal);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
