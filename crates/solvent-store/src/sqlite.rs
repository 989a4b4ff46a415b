//! The embedded journal: one SQLite file (rusqlite, bundled SQLite) in write-ahead-log mode with
//! `synchronous=FULL`, so a commit returns only once the log is synced to disk.
//!
//! Schema (inspect it with the `sqlite3` shell; `meta` says how to read the rest):
//!
//! ```sql
//! meta(key TEXT PRIMARY KEY, value TEXT)        -- format, event_encoding, checksum
//! events(seq INTEGER PRIMARY KEY, body BLOB, crc INTEGER)
//! clients(client_id TEXT PRIMARY KEY, seq INTEGER, reply TEXT, crc INTEGER)
//! ```
//!
//! `body` is the event in the binary encoding of [`crate::codec`]; `crc` is the CRC-32 of the
//! sequence number (8 bytes, little-endian) followed by the body, so a torn or corrupted row, or
//! a row moved to another key, is detected when read. A client row's `crc` covers the sequence
//! number, the id and the reply.
//!
//! One [`SqliteJournal::append`] is one transaction: the whole batch is durable or none of it.
//! A failure is final: the journal refuses every later append ([`JournalError::Stopped`]).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::codec::{self, EVENT_ENCODING};
use crate::{ClientIndex, ClientRecord, Entry, Journal, JournalError, JournalReader};

/// The journal file's name in a data directory.
pub const JOURNAL_FILE: &str = "journal.sqlite";

/// Version of the journal's schema, recorded in `meta`.
pub const JOURNAL_FORMAT: u32 = 1;

/// The pragmas every connection to a journal takes (the benchmark's plain-SQLite peer takes the
/// same): WAL, and a sync of the log at every commit.
pub const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;";

/// The SQLite journal (see the module documentation).
pub struct SqliteJournal {
    connection: Connection,
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

fn storage(error: &rusqlite::Error) -> JournalError {
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
        connection
            .execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, crc INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS clients (client_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, reply TEXT, crc INTEGER NOT NULL) WITHOUT ROWID;
                 CREATE INDEX IF NOT EXISTS clients_by_seq ON clients (seq);
                 COMMIT;",
            )
            .map_err(|e| storage(&e))?;
        let mut journal = Self {
            connection,
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
            let seq: i64 = row.get(0).map_err(|e| storage(&e))?;
            let body = row.get_ref(1).map_err(|e| storage(&e))?;
            let body = body.as_blob().map_err(|error| JournalError::CorruptEntry {
                seq: u64::try_from(seq).unwrap_or(0),
                problem: format!("body: {error}"),
            })?;
            let crc: i64 = row.get(2).map_err(|e| storage(&e))?;
            visit(decode_row(seq, body, crc)?)?;
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
        Ok(problems)
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

    /// Removes every entry from `seq` on (and their client ids), in one durable transaction:
    /// what an operator asks for to cut a torn tail. Returns how many entries were removed.
    ///
    /// # Errors
    /// [`JournalError::Storage`].
    pub fn truncate_from(&mut self, seq: u64) -> Result<u64, JournalError> {
        let from = key(seq)?;
        let transaction = self.connection.transaction().map_err(|e| storage(&e))?;
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
}

/// A read-only connection to a journal file, for another thread than the appending one: in
/// WAL mode it reads beside the appends and sees every committed transaction.
pub struct SqliteReader {
    connection: Connection,
}

impl SqliteReader {
    /// Opens a reader of the journal file at `path` (which must exist).
    ///
    /// # Errors
    /// [`JournalError::Storage`] when the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| JournalError::Storage(format!("{}: {error}", path.display())))?;
        Ok(Self { connection })
    }
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader").finish_non_exhaustive()
    }
}

impl JournalReader for SqliteReader {
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
        let seq: i64 = row.get(0).map_err(|e| storage(&e))?;
        let body = row.get_ref(1).map_err(|e| storage(&e))?;
        let body = body.as_blob().map_err(|error| JournalError::CorruptEntry {
            seq: u64::try_from(seq).unwrap_or(0),
            problem: format!("body: {error}"),
        })?;
        let crc: i64 = row.get(2).map_err(|e| storage(&e))?;
        let envelope = decode_row(seq, body, crc)?;
        let client_id: Option<String> = row.get(3).map_err(|e| storage(&e))?;
        let reply: Option<String> = row.get(4).map_err(|e| storage(&e))?;
        if let Some(client_id) = &client_id {
            let crc: i64 = row.get(5).map_err(|e| storage(&e))?;
            if u32::try_from(crc).ok()
                != Some(client_crc(envelope.seq, client_id, reply.as_deref()))
            {
                return Err(JournalError::CorruptEntry {
                    seq: envelope.seq,
                    problem: format!("client id {client_id:?} fails its checksum"),
                });
            }
        }
        entries.push(Entry {
            envelope,
            client_id,
            reply,
        });
    }
    Ok(entries)
}
