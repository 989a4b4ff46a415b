//! Recovery (DESIGN.md 10): the newest snapshot that checks out, then the journal's entries
//! after it, applied in order. The result has the state hash an uninterrupted run would have.
//!
//! Nothing is dropped silently. A snapshot that fails its checks is skipped and reported (an
//! older one, or the journal from its start, serves instead). A journal entry that fails its
//! check stops recovery with an error naming it, unless the operator asked to cut the torn tail
//! ([`RecoverOptions::truncate_torn_tail`]): then the entry and everything after it are removed,
//! and the report says what was cut. A snapshot newer than the journal's last entry means the
//! journal lost entries that were durable: an error too, unless the operator asked to cut.

use std::path::{Path, PathBuf};

use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;

use crate::snapshots::{SkippedSnapshot, SnapshotInfo, list_snapshots, read_snapshot};
use crate::{Journal, JournalError, SqliteJournal, StoreError};

/// What the operator allows recovery to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoverOptions {
    /// Cut the journal at its first bad entry (removing it and every later one) instead of
    /// stopping; also set aside snapshots newer than what remains. Reported in
    /// [`RecoveryReport::truncated`].
    pub truncate_torn_tail: bool,
}

/// What was cut from the journal at the operator's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The first entry removed.
    pub from_seq: u64,
    /// The journal's last entry before the cut.
    pub last_seq_before: Option<u64>,
    /// Entries removed.
    pub removed: u64,
    /// Why (the first bad entry's problem).
    pub problem: String,
    /// Snapshots set aside because they were newer than what remains (renamed, not deleted).
    pub snapshots_set_aside: Vec<PathBuf>,
}

/// How recovery went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot recovery started from, if one served.
    pub snapshot: Option<SnapshotInfo>,
    /// Snapshots tried and not used, newest first, with the reason.
    pub skipped: Vec<SkippedSnapshot>,
    /// Whether the snapshot directory was missing (recovery then replays the whole journal).
    pub snapshot_dir_missing: bool,
    /// Journal entries applied after the snapshot.
    pub replayed: u64,
    /// The journal's last entry after recovery.
    pub last_seq: Option<u64>,
    /// The recovered engine's state hash.
    pub state_hash: String,
    /// What was cut, when the operator allowed it and something had to be.
    pub truncated: Option<Truncation>,
}

/// A recovered service state.
#[derive(Debug)]
pub struct Recovered {
    /// The engine, with every journal entry applied.
    pub engine: Engine,
    /// The journal, open for appending after its last entry.
    pub journal: SqliteJournal,
    /// How it went.
    pub report: RecoveryReport,
}

/// [`recover_with`] with the default options (nothing is cut: a bad entry is an error).
///
/// # Errors
/// As [`recover_with`].
pub fn recover(dir: &Path, venue: Venue, config: EngineConfig) -> Result<Recovered, StoreError> {
    recover_with(dir, venue, config, RecoverOptions::default())
}

/// Recovers the state kept in data directory `dir`. `venue` and `config` start the engine when
/// no snapshot serves (a snapshot carries its own, as they were when it was taken: the venue may
/// have changed by events since the start).
///
/// # Errors
/// [`StoreError::Journal`] with [`JournalError::CorruptEntry`] naming the first bad entry (unless
/// cutting is allowed); [`StoreError::JournalBehindSnapshot`]; I/O and storage errors.
pub fn recover_with(
    dir: &Path,
    venue: Venue,
    config: EngineConfig,
    options: RecoverOptions,
) -> Result<Recovered, StoreError> {
    let mut journal = SqliteJournal::open(dir)?;
    let journal_last = journal.last_seq()?;
    let mut report = RecoveryReport::default();
    let listed = list_snapshots(dir)?;
    report.snapshot_dir_missing = listed.is_none();
    let mut start = None;
    let mut ahead = Vec::new();
    for path in listed.unwrap_or_default() {
        match read_snapshot(&path) {
            Ok((info, engine)) if journal_last.is_none_or(|last| info.seq > last) => {
                if !options.truncate_torn_tail {
                    return Err(StoreError::JournalBehindSnapshot {
                        snapshot: path,
                        snapshot_seq: info.seq,
                        journal_last,
                    });
                }
                drop(engine);
                ahead.push(path);
            }
            Ok((info, engine)) => {
                start = Some((info, engine));
                break;
            }
            Err(error) => report.skipped.push(SkippedSnapshot {
                path,
                problem: error.to_string(),
            }),
        }
    }
    let (mut engine, after) = match start {
        Some((info, engine)) => {
            let seq = info.seq;
            report.snapshot = Some(info);
            (engine, Some(seq))
        }
        None => (Engine::new(venue, config), None),
    };
    let mut replayed = 0_u64;
    let scanned = journal.scan(after, |envelope| {
        engine.apply(&envelope);
        replayed += 1;
        Ok::<(), JournalError>(())
    });
    report.replayed = replayed;
    let mut truncation = None;
    match scanned {
        Ok(()) => {}
        Err(JournalError::CorruptEntry { seq, problem }) if options.truncate_torn_tail => {
            let removed = journal.truncate_from(seq)?;
            truncation = Some(Truncation {
                from_seq: seq,
                last_seq_before: journal_last,
                removed,
                problem,
                snapshots_set_aside: Vec::new(),
            });
        }
        Err(error) => return Err(error.into()),
    }
    if !ahead.is_empty() {
        let set_aside = set_aside(dir, &ahead)?;
        let cut = truncation.get_or_insert_with(|| Truncation {
            from_seq: journal_last.map_or(0, |last| last + 1),
            last_seq_before: journal_last,
            removed: 0,
            problem: "snapshots newer than the journal's last entry".to_owned(),
            snapshots_set_aside: Vec::new(),
        });
        cut.snapshots_set_aside = set_aside;
    }
    // A cut journal may end below snapshots that were behind its old end: set them aside too,
    // or a later entry would reuse their sequence numbers.
    if let Some(cut) = &mut truncation {
        let last = journal.last_seq()?;
        let mut newer = Vec::new();
        for path in list_snapshots(dir)?.unwrap_or_default() {
            if crate::snapshots::seq_of_path(&path)
                .is_some_and(|seq| last.is_none_or(|last| seq > last))
            {
                newer.push(path);
            }
        }
        cut.snapshots_set_aside.extend(set_aside(dir, &newer)?);
    }
    report.truncated = truncation;
    report.last_seq = journal.last_seq()?;
    report.state_hash = engine.state_hash();
    // Client ids are not loaded: the service keeps a bounded window of recent ones and reads
    // older ones from the journal when a retry asks (`Journal::reader`).
    Ok(Recovered {
        engine,
        journal,
        report,
    })
}

/// Renames snapshot files so they are no longer listed (kept for the operator to inspect).
fn set_aside(dir: &Path, paths: &[PathBuf]) -> Result<Vec<PathBuf>, StoreError> {
    let mut moved = Vec::new();
    for path in paths {
        let target = path.with_extension("bin.set-aside");
        std::fs::rename(path, &target).map_err(|error| StoreError::Io {
            path: path.clone(),
            problem: error.to_string(),
        })?;
        moved.push(target);
    }
    if !moved.is_empty() {
        crate::snapshots::sync_dir(&dir.join(crate::snapshots::SNAPSHOT_DIR))?;
    }
    Ok(moved)
}
