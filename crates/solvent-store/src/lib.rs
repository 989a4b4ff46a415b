//! # solvent-store
//!
//! Durable storage for the service (DESIGN.md 10): the journal of every accepted event, in
//! order, behind the [`Journal`] trait so that a distributed log can replace the embedded
//! default later.
//!
//! The contract every journal keeps: [`Journal::append`] returns only once its entries are
//! durable, and a failed append is final: the caller stops rather than retrying, since after a
//! failed sync the storage may have dropped pages it reported as written (the fsync-gate lesson
//! of PostgreSQL, 2018).

use solvent_engine::event::Envelope;

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
}

/// Why the journal failed. Every failure is final for the process that met it.
#[derive(Debug, thiserror::Error)]
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
}

/// A journal in memory: for tests and for runs that need no durability.
#[derive(Clone, Debug, Default)]
pub struct MemoryJournal {
    entries: Vec<Entry>,
}

impl Journal for MemoryJournal {
    fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        let mut last = self.entries.last().map(|entry| entry.envelope.seq);
        for entry in entries {
            if last.is_some_and(|last| entry.envelope.seq <= last) {
                return Err(JournalError::OutOfOrder {
                    seq: entry.envelope.seq,
                    last,
                });
            }
            last = Some(entry.envelope.seq);
        }
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        Ok(self.entries.last().map(|entry| entry.envelope.seq))
    }

    fn read_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, JournalError> {
        let start = after.map_or(0, |after| {
            self.entries
                .partition_point(|entry| entry.envelope.seq <= after)
        });
        Ok(self
            .entries
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect())
    }
}
