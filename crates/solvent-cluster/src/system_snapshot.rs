//! The system shard's snapshots (docs/scale.md, "Money across shards"): its whole state at a
//! point of its reading (the fund, the deposits engine, each shard's recorded progress and
//! where it has read each stream to), in one file with a state hash, so that a restart reads
//! only the streams' tail after it.
//!
//! ```text
//! <data dir>/system-snapshots/<effects_through, 20 digits>.json
//!   {"format":1,"state_hash":"<blake3 of the state's JSON, hex>","state":{...}}
//! ```
//!
//! A file is written to a temporary name, synced, renamed into place and the directory synced;
//! recovery takes the newest file whose state hashes to what it records (and whose deposits
//! engine restores to the state hash recorded for it), and lists the others it passed over.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use solvent_engine::Engine;

use crate::ClusterError;
use crate::system::Fund;

/// The directory of the system shard's data directory holding its snapshots.
pub const SNAPSHOT_DIR: &str = "system-snapshots";

/// The format of a snapshot file.
pub const FORMAT: u32 = 1;

/// Snapshots kept.
pub const KEPT: usize = 3;

/// Everything the system shard needs to resume reading where it was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemState {
    /// The fund: balances, deposits not yet counted, effect messages applied, requests
    /// awaiting offers and the offers read.
    pub fund: Fund,
    /// The engine that checks deposits to the fund by the venue's rules, as
    /// [`Engine::snapshot`] encodes it (hex).
    pub deposits_engine: String,
    /// That engine's state hash, checked when it is restored.
    pub deposits_state_hash: String,
    /// Each shard's recorded progress (input stream sequence).
    pub progress: BTreeMap<u32, u64>,
    /// The effect stream's progress records read through.
    pub progress_through: u64,
    /// The effect stream's effect messages to read again above: below every one read and not
    /// yet applied (those applied again are passed over by the fund).
    pub effects_through: u64,
    /// The input stream's deposits to the fund read through.
    pub deposits_through: u64,
    /// The input stream's last sequence when the snapshot was taken: every answer and request
    /// the fund has taken into account is at or below it, so a restart reads the fund subject
    /// above it only.
    pub fund_subject_through: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotFile {
    format: u32,
    state_hash: String,
    state: SystemState,
}

impl SystemState {
    /// The state's hash: BLAKE3 of its JSON (maps ordered, amounts as written), hex.
    ///
    /// # Errors
    /// [`ClusterError::Config`] when the state cannot be encoded.
    pub fn state_hash(&self) -> Result<String, ClusterError> {
        let text = serde_json::to_vec(self)
            .map_err(|error| ClusterError::Config(format!("encoding the system state: {error}")))?;
        Ok(blake3::hash(&text).to_hex().to_string())
    }

    /// The deposits engine, restored and checked against its recorded state hash.
    ///
    /// # Errors
    /// [`ClusterError::Config`] when it does not decode or hashes otherwise.
    pub fn restore_deposits(&self) -> Result<Engine, ClusterError> {
        let bytes = unhex(&self.deposits_engine)
            .ok_or_else(|| ClusterError::Config("the deposits engine is not hex".to_owned()))?;
        let engine = Engine::restore(&bytes)
            .map_err(|error| ClusterError::Config(format!("the deposits engine: {error}")))?;
        let hash = engine.state_hash();
        if hash != self.deposits_state_hash {
            return Err(ClusterError::Config(format!(
                "the deposits engine hashes to {hash}, not {}",
                self.deposits_state_hash
            )));
        }
        Ok(engine)
    }
}

/// The deposits engine encoded for a [`SystemState`], with its state hash.
///
/// # Errors
/// [`ClusterError::Config`] when it cannot be encoded.
pub fn encode_deposits(engine: &Engine) -> Result<(String, String), ClusterError> {
    let bytes = engine
        .snapshot()
        .map_err(|error| ClusterError::Config(format!("the deposits engine: {error}")))?;
    Ok((hex(&bytes), engine.state_hash()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

fn io(path: &Path, error: &std::io::Error) -> ClusterError {
    ClusterError::Io {
        path: path.to_path_buf(),
        problem: error.to_string(),
    }
}

/// Writes `state` durably as the newest snapshot and removes all but the [`KEPT`] newest.
/// Returns its state hash.
///
/// # Errors
/// [`ClusterError::Io`] when the file cannot be written.
pub fn write(data_dir: &Path, state: &SystemState) -> Result<String, ClusterError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    fs::create_dir_all(&dir).map_err(|error| io(&dir, &error))?;
    let state_hash = state.state_hash()?;
    let file = SnapshotFile {
        format: FORMAT,
        state_hash: state_hash.clone(),
        state: state.clone(),
    };
    let body = serde_json::to_vec(&file)
        .map_err(|error| ClusterError::Config(format!("encoding the system state: {error}")))?;
    let name = format!("{:020}.json", state.effects_through);
    let path = dir.join(&name);
    let temporary = dir.join(format!("{name}.tmp"));
    {
        let mut handle = File::create(&temporary).map_err(|error| io(&temporary, &error))?;
        handle
            .write_all(&body)
            .and_then(|()| handle.sync_all())
            .map_err(|error| io(&temporary, &error))?;
    }
    fs::rename(&temporary, &path).map_err(|error| io(&path, &error))?;
    File::open(&dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| io(&dir, &error))?;
    for old in files(data_dir)?.iter().skip(KEPT) {
        fs::remove_file(old).map_err(|error| io(old, &error))?;
    }
    Ok(state_hash)
}

/// The snapshot files, newest first (the name is the effect-stream position, zero-padded).
fn files(data_dir: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io(&dir, &error)),
    };
    let mut paths: Vec<PathBuf> = listing
        .filter_map(|item| item.ok().map(|item| item.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths.reverse();
    Ok(paths)
}

/// Reads one snapshot file, checking its format and state hash.
///
/// # Errors
/// [`ClusterError::Config`] naming the file and what is wrong.
pub fn read(path: &Path) -> Result<SystemState, ClusterError> {
    let bad = |problem: String| ClusterError::Config(format!("{}: {problem}", path.display()));
    let bytes = fs::read(path).map_err(|error| io(path, &error))?;
    let file: SnapshotFile =
        serde_json::from_slice(&bytes).map_err(|error| bad(error.to_string()))?;
    if file.format != FORMAT {
        return Err(bad(format!("format {}, not {FORMAT}", file.format)));
    }
    let hash = file.state.state_hash()?;
    if hash != file.state_hash {
        return Err(bad(format!(
            "the state hashes to {hash}, not the {} recorded",
            file.state_hash
        )));
    }
    Ok(file.state)
}

/// What recovery found: the newest valid snapshot with its deposits engine restored, if any,
/// and the snapshots passed over, with the reason.
pub type Recovered = (Option<(SystemState, Engine)>, Vec<String>);

/// The newest valid snapshot, with its deposits engine restored, if any; the snapshots passed
/// over, with the reason.
///
/// # Errors
/// [`ClusterError::Io`] when the directory cannot be listed.
pub fn recover(data_dir: &Path) -> Result<Recovered, ClusterError> {
    let mut skipped = Vec::new();
    for path in files(data_dir)? {
        match read(&path).and_then(|state| {
            let engine = state.restore_deposits()?;
            Ok((state, engine))
        }) {
            Ok(found) => return Ok((Some(found), skipped)),
            Err(error) => skipped.push(error.to_string()),
        }
    }
    Ok((None, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(effects_through: u64) -> SystemState {
        let venue_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        let text = fs::read_to_string(venue_path).unwrap_or_default();
        let venue = solvent_core::venue::Venue::from_toml("default", &text);
        let engine =
            venue.map(|venue| Engine::new(venue, solvent_engine::config::EngineConfig::default()));
        let (deposits_engine, deposits_state_hash) = engine
            .as_ref()
            .ok()
            .and_then(|engine| encode_deposits(engine).ok())
            .unwrap_or_default();
        let mut fund = Fund::default();
        fund.deposit(3, 0, "USDT", rust_decimal::Decimal::new(20000, 0));
        SystemState {
            fund,
            deposits_engine,
            deposits_state_hash,
            progress: BTreeMap::from([(0, 7), (1, 9)]),
            progress_through: 12,
            effects_through,
            deposits_through: 3,
            fund_subject_through: 9,
        }
    }

    /// Written and read back equal; the newest valid one is recovered; a file whose state no
    /// longer hashes to what it records (a changed byte) is passed over and named; only the
    /// newest three are kept.
    #[test]
    fn a_snapshot_reads_back_and_a_corrupt_one_is_passed_over() -> Result<(), ClusterError> {
        let dir = std::env::temp_dir().join(format!("solvent-system-snap-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for at in [10, 20, 30, 40] {
            write(&dir, &state(at))?;
        }
        assert_eq!(files(&dir)?.len(), KEPT);
        let (found, skipped) = recover(&dir)?;
        assert_eq!(found.map(|(state, _)| state), Some(state(40)));
        assert!(skipped.is_empty());
        // The newest changed: its balance of 20000 becomes 90000.
        let newest = dir.join(SNAPSHOT_DIR).join(format!("{:020}.json", 40));
        let text = fs::read_to_string(&newest).map_err(|error| io(&newest, &error))?;
        fs::write(&newest, text.replace("20000", "90000")).map_err(|error| io(&newest, &error))?;
        let (found, skipped) = recover(&dir)?;
        assert_eq!(found.map(|(state, _)| state), Some(state(30)));
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("hashes to"), "{skipped:?}");
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }
}
