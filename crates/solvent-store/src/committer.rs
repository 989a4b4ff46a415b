//! Adaptive group commit (DESIGN.md 10): a thread owns the journal and commits batches as they
//! come. While one commit syncs, batches queue; the next commit takes all of them at once (up to
//! a cap of entries), so the sync's cost is shared by everything that arrived during the last
//! one: under light load a batch is committed alone and at once, under heavy load commits grow
//! and the throughput follows.
//!
//! Each batch's completion is signalled to its own callback, only after the commit holding it is
//! durable. A failed commit is final: its batches and every later one are answered with the
//! error, and the thread stops appending.
//!
//! Started with an [`AuditSink`] ([`Committer::start_with_audit`]), the thread then hands each
//! durable entry's outcome (the effects its caller rendered) to the audit writer, after
//! the callbacks and without waiting: a full queue drops them, and the writer writes those from
//! the journal ([`crate::AuditWriter`]).
//!
//! ```
//! use solvent_store::{Committer, CommitterConfig, MemoryJournal};
//! let committer = Committer::start(MemoryJournal::default(), CommitterConfig::default());
//! assert_eq!(committer.submit_wait(Vec::new()), Ok(()));
//! let journal = committer.stop();
//! assert!(journal.is_ok());
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::{AuditSink, Entry, Journal, JournalError};

/// What a batch's submitter is told once its batch is durable (or failed).
pub type Done = Box<dyn FnOnce(Result<(), JournalError>) + Send>;

/// Sizes of the committer's queue and commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitterConfig {
    /// Batches that may wait while a commit syncs; a full queue blocks [`Committer::submit`]
    /// and refuses [`Committer::try_submit`] (the service answers 429 then).
    pub queue_batches: usize,
    /// A commit takes queued batches until it holds this many entries (a single larger batch is
    /// committed alone, whole).
    pub max_entries_per_commit: usize,
}

impl Default for CommitterConfig {
    fn default() -> Self {
        Self {
            queue_batches: 1024,
            max_entries_per_commit: 65_536,
        }
    }
}

/// Counts kept by the committer thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits made (each one sync).
    pub commits: u64,
    /// Batches made durable.
    pub batches: u64,
    /// Entries made durable.
    pub entries: u64,
    /// The largest commit, in entries.
    pub largest_commit: u64,
}

struct Batch {
    entries: Vec<Entry>,
    done: Done,
}

#[derive(Default)]
struct Shared {
    /// The first failure; once set, nothing more is taken.
    failed: Mutex<Option<JournalError>>,
    commits: AtomicU64,
    batches: AtomicU64,
    entries: AtomicU64,
    largest_commit: AtomicU64,
}

impl Shared {
    fn failure(&self) -> Option<JournalError> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stopped(&self) -> Option<JournalError> {
        self.failure().map(|cause| JournalError::Stopped {
            cause: cause.to_string(),
        })
    }
}

/// Why [`Committer::try_submit`] did not take a batch.
#[derive(Debug)]
pub enum SubmitError {
    /// The queue is full: the batch is handed back, untouched.
    Full(Vec<Entry>),
    /// The committer stopped (after a failure, or because it is shutting down).
    Stopped(JournalError),
}

/// The group-commit thread and the handle to submit to it (see the module documentation).
pub struct Committer<J: Journal + 'static> {
    sender: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<J>>,
    shared: Arc<Shared>,
}

impl<J: Journal + 'static> std::fmt::Debug for Committer<J> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Committer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<J: Journal + 'static> Committer<J> {
    /// Starts the thread, which owns `journal` until [`Self::stop`].
    #[must_use]
    pub fn start(journal: J, config: CommitterConfig) -> Self {
        Self::start_with_audit(journal, config, None)
    }

    /// As [`Self::start`], and once a commit is durable, each of its entries' outcome is moved
    /// to `audit` (the audit writer's queue), never waiting for it (see the module
    /// documentation). The entries' outcomes are taken after the append, so the journal's own
    /// use of them (the [`crate::MemoryJournal`] keeps them) is unchanged.
    #[must_use]
    pub fn start_with_audit(journal: J, config: CommitterConfig, audit: Option<AuditSink>) -> Self {
        let (sender, receiver) = sync_channel(config.queue_batches.max(1));
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let cap = config.max_entries_per_commit.max(1);
        let thread = std::thread::Builder::new()
            .name("journal-commit".to_owned())
            .spawn(move || run(journal, &receiver, &thread_shared, cap, audit.as_ref()));
        match thread {
            Ok(thread) => Self {
                sender: Some(sender),
                thread: Some(thread),
                shared,
            },
            Err(error) => {
                // No thread, no journal: the committer is stopped from the start.
                let failure =
                    JournalError::Storage(format!("cannot start the commit thread: {error}"));
                *shared.failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(failure);
                Self {
                    sender: None,
                    thread: None,
                    shared,
                }
            }
        }
    }

    /// Queues `entries` (in order after every batch submitted before) and returns at once;
    /// `done` is called on the commit thread once they are durable, or with the error that
    /// stopped the journal. Blocks while the queue is full.
    ///
    /// # Errors
    /// [`JournalError::Stopped`] when the committer stopped before (`done` is not called then).
    pub fn submit(
        &self,
        entries: Vec<Entry>,
        done: impl FnOnce(Result<(), JournalError>) + Send + 'static,
    ) -> Result<(), JournalError> {
        if let Some(stopped) = self.shared.stopped() {
            return Err(stopped);
        }
        let sender = self.sender.as_ref().ok_or_else(|| self.gone())?;
        sender
            .send(Batch {
                entries,
                done: Box::new(done),
            })
            .map_err(|_| self.gone())
    }

    /// As [`Self::submit`], but never blocks: a full queue hands the batch back.
    ///
    /// # Errors
    /// [`SubmitError`].
    pub fn try_submit(
        &self,
        entries: Vec<Entry>,
        done: impl FnOnce(Result<(), JournalError>) + Send + 'static,
    ) -> Result<(), SubmitError> {
        if let Some(stopped) = self.shared.stopped() {
            return Err(SubmitError::Stopped(stopped));
        }
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| SubmitError::Stopped(self.gone()))?;
        match sender.try_send(Batch {
            entries,
            done: Box::new(done),
        }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(batch)) => Err(SubmitError::Full(batch.entries)),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped(self.gone())),
        }
    }

    /// Submits `entries` and waits until they are durable.
    ///
    /// # Errors
    /// The journal's error, or [`JournalError::Stopped`].
    pub fn submit_wait(&self, entries: Vec<Entry>) -> Result<(), JournalError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        self.submit(entries, move |result| {
            // The waiter may have gone: nothing to tell then.
            let _ = sender.send(result);
        })?;
        receiver.recv().map_err(|_| self.gone())?
    }

    /// The first failure, if the committer stopped.
    #[must_use]
    pub fn failure(&self) -> Option<JournalError> {
        self.shared.failure()
    }

    /// Counts so far.
    #[must_use]
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
            entries: self.shared.entries.load(Ordering::Relaxed),
            largest_commit: self.shared.largest_commit.load(Ordering::Relaxed),
        }
    }

    /// Commits what is queued, stops the thread and gives the journal back.
    ///
    /// # Errors
    /// The failure that stopped the committer, if any (the journal is dropped then: it takes
    /// nothing more anyway).
    pub fn stop(mut self) -> Result<J, JournalError> {
        self.sender = None;
        let journal = match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| JournalError::Storage("the commit thread panicked".to_owned()))?,
            None => return Err(self.gone()),
        };
        match self.shared.failure() {
            Some(failure) => Err(failure),
            None => Ok(journal),
        }
    }

    fn gone(&self) -> JournalError {
        self.shared.stopped().unwrap_or(JournalError::Stopped {
            cause: "the committer has shut down".to_owned(),
        })
    }
}

impl<J: Journal + 'static> Drop for Committer<J> {
    fn drop(&mut self) {
        // Closing the queue lets the thread commit what is queued and end.
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The commit loop: wait for a batch, take what else is queued up to the cap, commit, answer.
fn run<J: Journal>(
    mut journal: J,
    receiver: &Receiver<Batch>,
    shared: &Shared,
    cap: usize,
    audit: Option<&AuditSink>,
) -> J {
    let mut held: Option<Batch> = None;
    let mut entries: Vec<Entry> = Vec::new();
    let mut dones: Vec<Done> = Vec::new();
    loop {
        let first = match held.take() {
            Some(batch) => batch,
            None => match receiver.recv() {
                Ok(batch) => batch,
                Err(_) => return journal,
            },
        };
        entries.clear();
        dones.clear();
        entries.extend(first.entries);
        dones.push(first.done);
        while entries.len() < cap {
            match receiver.try_recv() {
                Ok(batch) if entries.len() + batch.entries.len() > cap => {
                    held = Some(batch);
                    break;
                }
                Ok(batch) => {
                    entries.extend(batch.entries);
                    dones.push(batch.done);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Some(stopped) = shared.stopped() {
            for done in dones.drain(..) {
                done(Err(stopped.clone()));
            }
            continue;
        }
        match journal.append(&entries) {
            Ok(()) => {
                let count = entries.len() as u64;
                shared.commits.fetch_add(1, Ordering::Relaxed);
                shared
                    .batches
                    .fetch_add(dones.len() as u64, Ordering::Relaxed);
                shared.entries.fetch_add(count, Ordering::Relaxed);
                shared.largest_commit.fetch_max(count, Ordering::Relaxed);
                for done in dones.drain(..) {
                    done(Ok(()));
                }
                // After the acknowledgements (they wait for nothing of the audit's), and only
                // now that the entries are durable: the audit file never gets ahead of the
                // journal.
                if let Some(audit) = audit {
                    audit.offer_all(&mut entries);
                }
            }
            Err(error) => {
                *shared.failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
                for done in dones.drain(..) {
                    done(Err(error.clone()));
                }
            }
        }
    }
}
