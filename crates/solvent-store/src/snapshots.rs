//! Snapshot files in `DIR/snapshots/`: the engine's bytes ([`Engine::snapshot`]) behind a
//! header that says what they are and proves they are whole.
//!
//! Header (92 bytes, integers little-endian):
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `SOLVSNAP` |
//! | 4 | file format ([`SNAPSHOT_FILE_FORMAT`]) |
//! | 8 | the journal sequence number the state includes every entry up to |
//! | 32 | the engine's state hash at that point |
//! | 8 | body length |
//! | 32 | BLAKE3 of everything before it and of the body |
//!
//! A file is written to a temporary name, synced, renamed into place, and the directory synced,
//! so a crash leaves either the whole file or none of it under its name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use solvent_engine::Engine;

use crate::StoreError;

/// The snapshot directory's name in a data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Magic bytes opening every snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"SOLVSNAP";

/// Version of the snapshot file layout.
pub const SNAPSHOT_FILE_FORMAT: u32 = 1;

/// The header's length in bytes.
const HEADER_BYTES: usize = 8 + 4 + 8 + 32 + 8 + 32;

/// What a snapshot file says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The file.
    pub path: PathBuf,
    /// The journal sequence number the state includes every entry up to.
    pub seq: u64,
    /// The engine's state hash at that point (64 hex digits).
    pub state_hash: String,
    /// The file's size.
    pub bytes: u64,
}

/// A snapshot file that was not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSnapshot {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

fn io_error(path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        problem: error.to_string(),
    }
}

fn file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.bin")
}

/// The sequence number in a snapshot file's name.
fn seq_of_name(name: &str) -> Option<u64> {
    name.strip_prefix("snapshot-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

/// The sequence number in a snapshot file's path (its name says it).
pub(crate) fn seq_of_path(path: &Path) -> Option<u64> {
    path.file_name()?.to_str().and_then(seq_of_name)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0_u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (index, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Syncs a directory, so that a rename or removal in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| io_error(dir, &error))
}

/// Writes a snapshot of `engine` as of journal sequence `seq` into `data_dir/snapshots/`, then
/// removes all but the newest `keep` snapshots (at least one is kept).
///
/// The caller guarantees what the file claims: `engine` has applied exactly the journal's
/// entries up to `seq`, and they are durable (a snapshot of a state whose events could still be
/// lost would let recovery resurrect them).
///
/// # Errors
/// [`StoreError::Io`] or [`StoreError::Snapshot`] (the engine could not be encoded).
pub fn write_snapshot(
    data_dir: &Path,
    engine: &Engine,
    seq: u64,
    keep: usize,
) -> Result<SnapshotInfo, StoreError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    fs::create_dir_all(&dir).map_err(|error| io_error(&dir, &error))?;
    let body = engine.snapshot().map_err(|error| StoreError::Snapshot {
        path: dir.clone(),
        problem: error.to_string(),
    })?;
    let state_hash = engine.state_hash();
    let hash_bytes = unhex(&state_hash).ok_or_else(|| StoreError::Snapshot {
        path: dir.clone(),
        problem: format!("state hash {state_hash:?} is not 64 hex digits"),
    })?;
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(SNAPSHOT_MAGIC);
    header.extend_from_slice(&SNAPSHOT_FILE_FORMAT.to_le_bytes());
    header.extend_from_slice(&seq.to_le_bytes());
    header.extend_from_slice(&hash_bytes);
    header.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let mut checksum = blake3::Hasher::new();
    checksum.update(&header);
    checksum.update(&body);
    header.extend_from_slice(checksum.finalize().as_bytes());

    let path = dir.join(file_name(seq));
    let temporary = dir.join(format!("{}.tmp", file_name(seq)));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temporary)?;
        file.write_all(&header)?;
        file.write_all(&body)?;
        file.sync_all()
    };
    write().map_err(|error| io_error(&temporary, &error))?;
    fs::rename(&temporary, &path).map_err(|error| io_error(&path, &error))?;
    sync_dir(&dir)?;

    let names = snapshot_files(data_dir)?;
    for old in names.iter().skip(keep.max(1)) {
        fs::remove_file(old).map_err(|error| io_error(old, &error))?;
    }
    if names.len() > keep.max(1) {
        sync_dir(&dir)?;
    }
    Ok(SnapshotInfo {
        path,
        seq,
        state_hash,
        bytes: (HEADER_BYTES + body.len()) as u64,
    })
}

/// The snapshot files in `data_dir/snapshots/`, newest (highest sequence) first; `None` when
/// the directory does not exist. Temporary files of an interrupted write are not listed.
///
/// # Errors
/// [`StoreError::Io`] when the directory cannot be listed.
pub fn list_snapshots(data_dir: &Path) -> Result<Option<Vec<PathBuf>>, StoreError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    if !dir.is_dir() {
        return Ok(None);
    }
    snapshot_files(data_dir).map(Some)
}

fn snapshot_files(data_dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for item in fs::read_dir(&dir).map_err(|error| io_error(&dir, &error))? {
        let item = item.map_err(|error| io_error(&dir, &error))?;
        let name = item.file_name();
        if let Some(seq) = name.to_str().and_then(seq_of_name) {
            files.push((seq, item.path()));
        }
    }
    files.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

/// Reads a snapshot file: checks its header and checksum, restores the engine, and checks the
/// restored state's hash against the one recorded.
///
/// # Errors
/// [`StoreError::Io`] when the file cannot be read; [`StoreError::Snapshot`] naming what is
/// wrong with it otherwise.
pub fn read_snapshot(path: &Path) -> Result<(SnapshotInfo, Engine), StoreError> {
    let bytes = fs::read(path).map_err(|error| io_error(path, &error))?;
    let bad = |problem: String| StoreError::Snapshot {
        path: path.to_path_buf(),
        problem,
    };
    let (header, body) = bytes
        .split_at_checked(HEADER_BYTES)
        .ok_or_else(|| bad(format!("{} bytes: shorter than the header", bytes.len())))?;
    let field = |from: usize, to: usize| header.get(from..to).unwrap_or_default();
    let word = |from: usize| {
        let mut value = [0_u8; 8];
        value.copy_from_slice(field(from, from + 8));
        u64::from_le_bytes(value)
    };
    if field(0, 8) != SNAPSHOT_MAGIC {
        return Err(bad("not a snapshot file (magic)".to_owned()));
    }
    let mut version = [0_u8; 4];
    version.copy_from_slice(field(8, 12));
    let version = u32::from_le_bytes(version);
    if version != SNAPSHOT_FILE_FORMAT {
        return Err(bad(format!(
            "file format {version}, this build reads {SNAPSHOT_FILE_FORMAT}"
        )));
    }
    let seq = word(12);
    let state_hash = hex(field(20, 52));
    let length = word(52);
    if length != body.len() as u64 {
        return Err(bad(format!(
            "body of {} bytes, the header says {length} (truncated?)",
            body.len()
        )));
    }
    let mut checksum = blake3::Hasher::new();
    checksum.update(field(0, 60));
    checksum.update(body);
    if checksum.finalize().as_bytes().as_slice() != field(60, 92) {
        return Err(bad("checksum mismatch (corrupted)".to_owned()));
    }
    let engine = Engine::restore(body).map_err(|error| bad(error.to_string()))?;
    let restored = engine.state_hash();
    if restored != state_hash {
        return Err(bad(format!(
            "restored state hash {restored} differs from the recorded {state_hash}"
        )));
    }
    Ok((
        SnapshotInfo {
            path: path.to_path_buf(),
            seq,
            state_hash,
            bytes: bytes.len() as u64,
        },
        engine,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hex_round_trip() {
        assert_eq!(seq_of_name(&file_name(42)), Some(42));
        assert_eq!(seq_of_name("snapshot-x.bin"), None);
        let bytes: Vec<u8> = (0..32).collect();
        assert_eq!(unhex(&hex(&bytes)).map(Vec::from), Some(bytes));
    }
}
