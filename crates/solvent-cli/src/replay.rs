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
//!
//! Two threads share the work, joined by a bounded queue of batches: one reads and parses the
//! lines, the calling thread applies the events in file order, counts the effects and writes
//! them (`Effect::write_json_line`, straight into a byte buffer). A bad line reaches the engine
//! in its place, after every line before it, and stops the replay there, as when one thread did
//! everything.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use indicatif::ProgressBar;
use serde::Serialize;
use solvent_core::Decimal;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{Effect, RejectReason};
use solvent_engine::event::{Envelope, parse_line};
use solvent_engine::ledger::{CLEARING, EXTERNAL, FEES, INSURANCE_FUND};
use solvent_risk::MarketView;
use solvent_risk::account::{Detail, build_report};

use crate::progress::Feedback;

/// Events per batch from the reader to the engine (the progress bar moves once a batch).
const BATCH_EVENTS: usize = 1024;
/// Batches the queue holds before the reader waits: it runs at most this far ahead of the
/// engine.
pub(crate) const QUEUE_BATCHES: usize = 4;
/// The reader's buffer.
const READ_BUFFER_BYTES: usize = 1 << 20;
/// Effects are handed to the `--out` file once this many bytes of them are buffered.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

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
    /// Also every account at the end of the stream, weakest first: equity, initial and
    /// maintenance margin (in the account's report currency), health, state and the
    /// liquidations it took. One margin report per account: on a large population this is most
    /// of the work, hence a flag.
    #[arg(long)]
    accounts: bool,
    /// Every column of the accounts table, however wide (by default it fits 120 columns).
    #[arg(long)]
    wide: bool,
    /// Print one table as CSV (RFC 4180: a header row, then the exact figures as the ledger
    /// holds them): effects, refused, balances or accounts (with --accounts).
    #[arg(long, value_name = "TABLE", value_enum, conflicts_with = "json")]
    csv: Option<crate::render::ReplayTable>,
}

/// One account at the end of a replay (`solvent replay --accounts`).
#[derive(Debug, Serialize)]
pub struct AccountSummary {
    /// The account's id.
    pub account: String,
    /// The currency of the figures below (the report's settlement asset).
    pub settlement_asset: String,
    /// Equity (decimal string).
    pub equity: String,
    /// Initial margin (decimal string).
    pub initial_margin: String,
    /// Maintenance margin (decimal string).
    pub maintenance_margin: String,
    /// Equity over maintenance margin; `None` without a requirement.
    pub health: Option<f64>,
    /// The account's state as the engine holds it.
    pub state: String,
    /// Liquidation effects the account took during the stream.
    pub liquidations: u64,
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
    /// Every account, weakest first (only with `--accounts`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountSummary>,
    /// The volatility-scaled ranges in force at the end, from the stream's `scenario_range`
    /// events (absent when there are none), as `solvent margin --history` shows them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vol_scaled_ranges: Vec<crate::scaled::ScaledRange>,
}

/// Runs the replay and returns what to print on stdout.
///
/// # Errors
/// An unreadable file, a malformed line (naming the file, line and field), a bad venue, or an
/// `--out` file that cannot be written. No `--out` file is created then.
pub fn run(args: &ReplayArgs, feedback: Feedback) -> Result<String> {
    let venue = crate::venues::load(args.venue.as_deref())?;
    let origin = args.events.display().to_string();
    let file =
        File::open(&args.events).with_context(|| format!("{origin}: cannot read the file"))?;
    let size_bytes = file.metadata().map_or(0, |m| m.len());
    let mut out = args.out.as_deref().map(PendingFile::create).transpose()?;
    let progress = feedback.bar(
        size_bytes,
        "replay {wide_bar} {percent:>3}% {msg} [{elapsed}]",
    );
    let venue_name = venue.name.clone();
    let mut engine = Engine::new(venue, EngineConfig::default());
    let counts = std::thread::scope(|scope| {
        let (events_in, events) = sync_channel(QUEUE_BATCHES);
        let origin = origin.as_str();
        scope.spawn(move || read_events(origin, file, &events_in));
        // On an error the queue is dropped here, which stops the reader.
        apply_events(&mut engine, &events, out.as_mut(), &progress)
    })?;
    progress.finish_and_clear();
    if let Some(out) = out {
        out.commit()?;
    }
    let mut summary = Summary {
        origin: origin.clone(),
        venue: venue_name,
        events: counts.events,
        effects: BTreeMap::new(),
        rejected: BTreeMap::new(),
        balances: BTreeMap::new(),
        conservation: BTreeMap::new(),
        state_hash: String::new(),
        accounts: Vec::new(),
        vol_scaled_ranges: engine.scenario_ranges().values().cloned().collect(),
    };
    counts.fill(&mut summary);
    finish(&mut summary, &engine);
    if args.accounts {
        summary.accounts = accounts(&engine, &counts.liquidations)?;
    }
    for (asset, total) in &summary.conservation {
        if total != "0" {
            eprintln!(
                "warning: {origin}: the ledger does not balance: {asset} sums to {total}, not 0"
            );
        }
    }
    if let Some(table) = args.csv {
        if table == crate::render::ReplayTable::Accounts && !args.accounts {
            anyhow::bail!("--csv accounts: the accounts table needs --accounts");
        }
        Ok(crate::render::replay_csv(&summary, engine.venue(), table)?)
    } else if args.json {
        Ok(serde_json::to_string_pretty(&summary)? + "\n")
    } else {
        let layout = crate::display::Layout::new(args.wide);
        Ok(crate::render::replay(&summary, engine.venue(), layout)
            + &crate::scaled::render(&summary.vol_scaled_ranges, layout))
    }
}

/// Parsed events for the engine, and how far into the file they reach (for the progress bar).
pub(crate) struct EventBatch {
    pub(crate) events: Vec<Envelope>,
    pub(crate) bytes_read: u64,
}

/// The reader: reads and parses every line in file order and sends them in batches. A line
/// that cannot be read or parsed is sent after every event before it, as the error that stops
/// the replay; nothing after it is read. Returns when done, or as soon as the engine stops
/// taking batches.
pub(crate) fn read_events(origin: &str, file: File, batches: &SyncSender<Result<EventBatch>>) {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut line = String::new();
    let mut line_number = 0_usize;
    let mut bytes_read = 0_u64;
    let mut events = Vec::with_capacity(BATCH_EVENTS);
    let failure = loop {
        line.clear();
        let read = match reader
            .read_line(&mut line)
            .with_context(|| format!("{origin}: line {}: cannot read", line_number + 1))
        {
            Ok(read) => read,
            Err(error) => break Some(error),
        };
        if read == 0 {
            break None;
        }
        line_number += 1;
        bytes_read += read as u64;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(origin, line_number, line.trim_end_matches(['\n', '\r'])) {
            Ok(envelope) => events.push(envelope),
            Err(error) => break Some(error.into()),
        }
        if events.len() == BATCH_EVENTS {
            let batch = EventBatch {
                events: std::mem::replace(&mut events, Vec::with_capacity(BATCH_EVENTS)),
                bytes_read,
            };
            if batches.send(Ok(batch)).is_err() {
                return;
            }
        }
    };
    if !events.is_empty() && batches.send(Ok(EventBatch { events, bytes_read })).is_err() {
        return;
    }
    if let Some(error) = failure {
        // The engine may already have stopped (a write to --out failed): nothing left to tell.
        let _ = batches.send(Err(error));
    }
}

/// Effects counted by type, refusals by reason, without a map lookup per effect.
#[derive(Default)]
struct Counts {
    events: u64,
    effects: [u64; Effect::KINDS.len()],
    rejected: [u64; RejectReason::ALL.len()],
    /// Liquidation effects per account.
    liquidations: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, effect: &Effect) {
        self.effects[effect.kind_index()] += 1;
        match effect {
            Effect::Rejected { reason, .. } => self.rejected[*reason as usize] += 1,
            Effect::Liquidation { account, .. } => {
                *self.liquidations.entry(account.clone()).or_default() += 1;
            }
            _ => {}
        }
    }

    /// The summary's maps: every type and reason seen at least once.
    fn fill(&self, summary: &mut Summary) {
        for (kind, count) in Effect::KINDS.iter().zip(self.effects) {
            if count > 0 {
                summary.effects.insert((*kind).to_owned(), count);
            }
        }
        for (reason, count) in RejectReason::ALL.iter().zip(self.rejected) {
            if count > 0 {
                summary.rejected.insert(reason.name().to_owned(), count);
            }
        }
    }
}

/// The engine's side: applies each batch in order, counts the effects and writes them to the
/// `--out` file (when there is one). Stops at the reader's error.
fn apply_events(
    engine: &mut Engine,
    batches: &Receiver<Result<EventBatch>>,
    mut out: Option<&mut PendingFile>,
    progress: &ProgressBar,
) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut buffer: Vec<u8> = Vec::with_capacity(2 * WRITE_BUFFER_BYTES);
    for batch in batches {
        let batch = batch?;
        for envelope in &batch.events {
            let effects = engine.apply(envelope);
            for effect in &effects {
                counts.add(effect);
            }
            if out.is_some() {
                for effect in &effects {
                    effect.write_json_line(envelope.seq, &mut buffer);
                }
            }
        }
        counts.events += batch.events.len() as u64;
        if let Some(out) = out.as_deref_mut()
            && buffer.len() >= WRITE_BUFFER_BYTES
        {
            out.write(&buffer)?;
            buffer.clear();
        }
        progress.set_position(batch.bytes_read);
        progress.set_message(format!("{} events", counts.events));
    }
    if let Some(out) = out {
        out.write(&buffer)?;
    }
    Ok(counts)
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

/// Every account's figures at the end of the replay, weakest first (lowest health; accounts
/// without a requirement last), then by id.
///
/// # Errors
/// The market cannot be valued, or an account's report cannot be built (named).
fn accounts(engine: &Engine, liquidations: &BTreeMap<String, u64>) -> Result<Vec<AccountSummary>> {
    let market = MarketView::new(engine.venue(), engine.market())
        .map_err(|error| anyhow!("the market at the end of the stream: {error}"))?;
    let mut accounts = engine
        .accounts()
        .iter()
        .map(|(id, account)| {
            let portfolio = engine
                .portfolio(id)
                .ok_or_else(|| anyhow!("account {id}: not in the engine"))?;
            let report = build_report(&portfolio, &market, Detail::Totals)
                .map_err(|error| anyhow!("account {id}: {error}"))?;
            Ok(AccountSummary {
                account: id.to_owned(),
                settlement_asset: report.settlement_asset.to_string(),
                equity: report.equity.value().normalize().to_string(),
                initial_margin: report.initial_margin.value().normalize().to_string(),
                maintenance_margin: report.maintenance_margin.value().normalize().to_string(),
                health: report.health,
                state: account.state.to_string(),
                liquidations: liquidations.get(id).copied().unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    accounts.sort_by(|a, b| {
        let health = |s: &AccountSummary| s.health.unwrap_or(f64::INFINITY);
        health(a)
            .total_cmp(&health(b))
            .then_with(|| a.account.cmp(&b.account))
    });
    Ok(accounts)
}

/// An `--out` file being written: a temporary file beside the target, renamed over it by
/// [`PendingFile::commit`] and removed when dropped uncommitted (a replay stopped by bad input
/// leaves nothing behind).
pub(crate) struct PendingFile {
    target: PathBuf,
    temporary: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl PendingFile {
    pub(crate) fn create(target: &Path) -> Result<Self> {
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
            file: Some(file),
            committed: false,
        })
    }

    /// Appends `bytes` to the temporary file.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let target = &self.target;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| anyhow!("--out {}: already closed", target.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("--out {}: cannot write", target.display()))
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        let target = self.target.display().to_string();
        if let Some(file) = self.file.take() {
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
            self.file = None;
            let _ = fs::remove_file(&self.temporary);
        }
    }
}
