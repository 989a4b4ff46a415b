//! The harness the `solvent` end-to-end tests share: where the repository is, running the built
//! binary (`CARGO_BIN_EXE_solvent`) away from the repository, and scratch directories.

// Each test binary includes this module and uses a part of it.
#![allow(
    dead_code,
    clippy::expect_used,
    reason = "test harness: a part per test binary; a failed expectation is a failed test"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The repository root (two levels above this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/solvent-cli sits two levels below the workspace root")
        .to_path_buf()
}

/// `solvent serve` on the data directory `data`, listening on a free port, with `extra`
/// arguments: warnings only, on a discarded stderr; stdout piped, where it prints its address
/// first. The caller spawns it and reads that line.
pub fn serve_command(data: &str, extra: &[&str]) -> Command {
    use std::process::Stdio;
    let mut command = Command::new(env!("CARGO_BIN_EXE_solvent"));
    command
        .args(["serve", "--data", data, "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Starts `solvent` with `args` (a `serve` that listens on a free port), waits until it says it
/// serves, stops it and returns what it logged on stderr.
pub fn serve_logs<S: AsRef<str>>(args: &[S]) -> String {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_solvent"))
        .args(args.iter().map(AsRef::as_ref))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start solvent serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let first = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("text");
    assert!(first.starts_with("solvent: serving http://"), "{first}");
    child.kill().expect("stop the server");
    let output = child.wait_with_output().expect("its stderr");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The full path of `relative` (to the repository root), as an argument.
pub fn path(relative: &str) -> String {
    root().join(relative).display().to_string()
}

/// Runs `solvent ARGS...` from `directory`.
pub fn solvent_in<S: AsRef<str>>(directory: &Path, args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_solvent"))
        .args(args.iter().map(AsRef::as_ref))
        .current_dir(directory)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the solvent binary")
}

/// Runs `solvent ARGS...` from the temp directory (not the repository).
pub fn solvent<S: AsRef<str>>(args: &[S]) -> Output {
    solvent_in(&std::env::temp_dir(), args)
}

/// Runs `solvent ARGS...` from the temp directory: exit code (-1 if killed), stdout, stderr.
pub fn run<S: AsRef<str>>(args: &[S]) -> (i32, String, String) {
    let output = solvent(args);
    (
        output.status.code().unwrap_or(-1),
        stdout(&output),
        stderr(&output),
    )
}

/// A command's standard output.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// A command's standard error.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// A scratch directory under the system temp dir, unique per test, removed on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A new empty directory named after `label`.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "solvent-test-{}-{label}-{sequence}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create the scratch directory");
        Self { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full path of `name` inside the directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Writes `text` to `name` inside the directory and returns its full path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        fs::write(&path, text).expect("write a scratch file");
        path
    }

    /// The names of the files in the directory, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .expect("list the scratch directory")
            .map(|entry| {
                entry
                    .expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
