//! `solvent replay EVENTS.jsonl [--venue VENUE.toml] [--out EFFECTS.jsonl] [--json]`: the
//! deterministic replay of an event stream through the engine (DESIGN.md 2, 9, 11).
//!
//! Each non-blank line is parsed (`solvent_engine::event::parse_line`) and applied in file
//! order; every effect is written to `--out` as one JSON line (`{"seq": n, "type": ..., ...}`).
//! A malformed line stops the replay with the file, line and field on stderr: nothing is printed
//! and no `--out` file is left behind, because effects go to a temporary file beside the target
//! that is renamed over it only once the whole stream has been applied. An event the engine
//! refuses (a sequence number that does not increase, a withdrawal above what is withdrawable)
//! is not bad input: it is a `rejected` effect, counted by reason in the summary.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use solvent_core::Decimal;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::EffectLine;
use solvent_engine::event::parse_line;
use solvent_engine::ledger::{CLEARING, EXTERNAL, FEES, INSURANCE_FUND};

/// Events between two updates of the progress bar (it redraws at most a few times a second
/// anyway; this keeps the per-event cost to a counter).
const PROGRESS_EVERY: u64 = 256;

/// The arguments of `solvent replay`.
#[derive(Args)]
pub struct ReplayArgs {
    /// The event stream: one JSON event per line (EVENTS.jsonl, DESIGN.md 11).
    events: PathBuf,
    /// Venue parameters (VENUE.toml); the built-in venues/default.toml when absent.
    #[arg(long)]
    venue: Option<PathBuf>,
    /// Write every effect as one JSON line to this file (created or replaced once the whole
    /// stream has been applied).
    #[arg(long, value_name = "EFFECTS.jsonl")]
    out: Option<PathBuf>,
    /// Print the summary as JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// What a replay ends with (DESIGN.md 11): counts, every ledger balance, the conservation check
/// and the state hash.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The events file, as given.
    #[serde(skip)]
    pub origin: String,
    /// The venue's name.
    #[serde(skip)]
    pub venue: String,
    /// Events read and applied (refused ones included).
    pub events: u64,
    /// Effects by type.
    pub effects: BTreeMap<String, u64>,
    /// `rejected` effects by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Ledger account -> asset -> balance (decimal string). The system accounts
    /// (`insurance_fund`, `fees`, `external`, `clearing`) are always present, empty when they
    /// hold nothing.
    pub balances: BTreeMap<String, BTreeMap<String, String>>,
    /// Asset -> sum of every balance above: "0" for each asset, or the ledger is broken.
    pub conservation: BTreeMap<String, String>,
    /// The engine's fingerprint of its whole state.
    pub state_hash: String,
}

/// Runs the replay and returns what to print on stdout.
///
/// # Errors
/// An unreadable file, a malformed line (naming the file, line and field), a bad venue, or an
/// `--out` file that cannot be written. No `--out` file is created then.
pub fn run(args: &ReplayArgs) -> Result<String> {
    let venue = match &args.venue {
        Some(path) => Venue::from_toml(&path.display().to_string(), &crate::read(path)?)?,
        None => Venue::from_toml("venues/default.toml (built in)", crate::DEFAULT_VENUE)?,
    };
    let origin = args.events.display().to_string();
    let file =
        File::open(&args.events).with_context(|| format!("{origin}: cannot read the file"))?;
    let size_bytes = file.metadata().map_or(0, |m| m.len());
    let mut out = args.out.as_deref().map(PendingFile::create).transpose()?;
    let progress = progress_bar(size_bytes);
    let mut summary = Summary {
        origin: origin.clone(),
        venue: venue.name.clone(),
        events: 0,
        effects: BTreeMap::new(),
        rejected: BTreeMap::new(),
        balances: BTreeMap::new(),
        conservation: BTreeMap::new(),
        state_hash: String::new(),
    };
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut line_number = 0_usize;
    let mut bytes_read = 0_u64;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("{origin}: line {}: cannot read", line_number + 1))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        bytes_read += read as u64;
        if line.trim().is_empty() {
            continue;
        }
        let envelope = parse_line(&origin, line_number, line.trim_end_matches(['\n', '\r']))?;
        for effect in engine.apply(&envelope) {
            let effect_line = EffectLine {
                seq: envelope.seq,
                effect,
            };
            let value = serde_json::to_value(&effect_line)?;
            count(&mut summary, &value);
            if let Some(out) = &mut out {
                out.write_line(&value)?;
            }
        }
        summary.events += 1;
        if summary.events.is_multiple_of(PROGRESS_EVERY) {
            progress.set_position(bytes_read);
            progress.set_message(format!("{} events", summary.events));
        }
    }
    progress.finish_and_clear();
    if let Some(out) = out {
        out.commit()?;
    }
    finish(&mut summary, &engine);
    for (asset, total) in &summary.conservation {
        if total != "0" {
            eprintln!(
                "warning: {origin}: the ledger does not balance: {asset} sums to {total}, not 0"
            );
        }
    }
    if args.json {
        Ok(serde_json::to_string_pretty(&summary)? + "\n")
    } else {
        Ok(crate::render::replay(&summary))
    }
}

/// Counts one effect by type, and a refusal by reason.
fn count(summary: &mut Summary, effect: &serde_json::Value) {
    let kind = effect["type"].as_str().unwrap_or("(untyped)");
    *summary.effects.entry(kind.to_owned()).or_default() += 1;
    if kind == "rejected" {
        let reason = effect["reason"].as_str().unwrap_or("(none)");
        *summary.rejected.entry(reason.to_owned()).or_default() += 1;
    }
}

/// Fills in the balances, the conservation sums (added up here from the balances shown, not
/// taken from the ledger's own totals) and the state hash.
fn finish(summary: &mut Summary, engine: &Engine) {
    for system in [INSURANCE_FUND, FEES, EXTERNAL, CLEARING] {
        summary.balances.entry(system.to_owned()).or_default();
    }
    let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
    for asset in engine.venue().assets.keys() {
        totals.insert(asset.clone(), Decimal::ZERO);
    }
    for (account, asset, amount) in engine.ledger().balances() {
        summary
            .balances
            .entry(account.to_string())
            .or_default()
            .insert(asset.to_owned(), amount.normalize().to_string());
        *totals.entry(asset.to_owned()).or_default() += amount;
    }
    summary.conservation = totals
        .into_iter()
        .map(|(asset, total)| (asset, total.normalize().to_string()))
        .collect();
    summary.state_hash = engine.state_hash();
}

/// The progress bar on stderr, counting events (its length is the file's size in bytes, so it
/// fills without reading the file twice). Hidden when stderr is not a terminal, so pipes, tests
/// and CI logs stay clean.
fn progress_bar(size_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(size_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("replay {wide_bar} {percent:>3}% {msg} [{elapsed}]")
    {
        bar.set_style(style);
    }
    bar
}

/// An `--out` file being written: a temporary file beside the target, renamed over it by
/// [`PendingFile::commit`] and removed when dropped uncommitted (a replay stopped by bad input
/// leaves nothing behind).
struct PendingFile {
    target: PathBuf,
    temporary: PathBuf,
    writer: Option<BufWriter<File>>,
    committed: bool,
}

impl PendingFile {
    fn create(target: &Path) -> Result<Self> {
        let name = target
            .file_name()
            .ok_or_else(|| anyhow!("--out {}: not a file name", target.display()))?;
        let temporary = target.with_file_name(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&temporary)
            .with_context(|| format!("--out {}: cannot create the file", target.display()))?;
        Ok(Self {
            target: target.to_path_buf(),
            temporary,
            writer: Some(BufWriter::new(file)),
            committed: false,
        })
    }

    fn write_line(&mut self, value: &serde_json::Value) -> Result<()> {
        let target = &self.target;
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| anyhow!("--out {}: already closed", target.display()))?;
        serde_json::to_writer(&mut *writer, value)?;
        writer
            .write_all(b"\n")
            .with_context(|| format!("--out {}: cannot write", target.display()))
    }

    fn commit(mut self) -> Result<()> {
        let target = self.target.display().to_string();
        if let Some(writer) = self.writer.take() {
            let file = writer
                .into_inner()
                .map_err(|error| anyhow!("--out {target}: cannot write: {}", error.error()))?;
            file.sync_all()
                .with_context(|| format!("--out {target}: cannot write"))?;
        }
        fs::rename(&self.temporary, &self.target)
            .with_context(|| format!("--out {target}: cannot replace the file"))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            // Close the file before removing it.
            self.writer = None;
            let _ = fs::remove_file(&self.temporary);
        }
    }
}
