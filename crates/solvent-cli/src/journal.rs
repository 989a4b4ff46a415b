//! `solvent journal verify|export|replay|import|migrate DIR`: the operator's tools for a data
//! directory (DESIGN.md 10): `journal.sqlite` (the journal), `audit.sqlite` (each event's
//! effects, written after it), `venue.toml` (the venue its events were accepted under) and
//! `snapshots/`.
//!
//! - `verify` checks every entry, client row and recorded effect, every snapshot file, replays
//!   the journal from its start and compares the state hash at each snapshot's sequence with the
//!   one recorded, and each event's recorded effects with the ones the replay gives (every
//!   event's effects recorded once, as the engine gives them); it prints a summary and fails
//!   (exit 2) when anything is wrong, events whose effects are not written yet included (the
//!   audit writer was behind or stopped when the service stopped: `migrate` writes them).
//! - `export` writes the events as `EVENTS.jsonl`, the format `solvent replay` reads, and with
//!   `--effects FILE` their recorded effects as `EFFECTS.jsonl` (the format `solvent replay
//!   --out` writes); it refuses when some effects are not written yet.
//! - `replay` recomputes the state from scratch and prints its hash beside recovery's (newest
//!   snapshot + tail); they must agree.
//! - `import` journals an `EVENTS.jsonl` into a data directory (batches of one transaction
//!   each; snapshots every N events), then writes their effects to the audit file: bulk
//!   ingest, and a way to make a data directory to try the others on.
//! - `migrate` brings a journal of schema version 1 (events only) or 2 (effects in the journal
//!   file) to version 3, and writes every effect the audit file lacks by replaying the journal
//!   (from the newest snapshot at or below the effects' reach, else its start): the repair after
//!   a crash or a stopped audit writer too.
//!
//! None of them but `migrate` (and `import`) changes a journal it reads: a damaged one is reported, never
//! repaired (cutting a torn tail is the server's `recover` with the operator's explicit option).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::{parse_line, to_line};
use solvent_store::{
    Entry, JOURNAL_FILE, Journal, JournalError, Outcome, SqliteJournal, fill_effects,
    init_data_dir, list_snapshots, migrate, read_snapshot, read_venue, recover, write_snapshot,
};

use crate::progress::Feedback;

/// The arguments of `solvent journal`.
#[derive(Args)]
pub struct JournalArgs {
    #[command(subcommand)]
    command: JournalCommand,
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Checks every entry and snapshot; replays and compares each snapshot's state hash.
    Verify {
        /// The data directory.
        dir: PathBuf,
    },
    /// Writes the journal's events as EVENTS.jsonl (the format `solvent replay` reads).
    Export {
        /// The data directory.
        dir: PathBuf,
        /// The file to write (stdout when absent).
        #[arg(long, value_name = "EVENTS.jsonl")]
        out: Option<PathBuf>,
        /// Also write each event's recorded effects to this file, one per line in event order
        /// (the format `solvent replay --out` writes).
        #[arg(long, value_name = "EFFECTS.jsonl")]
        effects: Option<PathBuf>,
    },
    /// Recomputes the state from the whole journal and prints its hash beside recovery's.
    Replay {
        /// The data directory.
        dir: PathBuf,
        /// The venue to start from (by default the one recorded in DIR/venue.toml).
        #[arg(long)]
        venue: Option<PathBuf>,
    },
    /// Journals an event stream into a data directory (created if absent).
    Import {
        /// The event stream (EVENTS.jsonl).
        events: PathBuf,
        /// The data directory.
        dir: PathBuf,
        /// Venue parameters recorded for a new directory (the built-in default when absent).
        #[arg(long)]
        venue: Option<PathBuf>,
        /// Events per transaction.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// A snapshot after every this many events (0: none; one is always taken at the end).
        #[arg(long, default_value_t = 0)]
        snapshot_every: u64,
    },
    /// Brings a journal of schema version 1 or 2 to version 3 and writes every missing effect to
    /// the audit file, replaying the journal on the recorded venue (the repair of effects not
    /// written before a crash, too).
    Migrate {
        /// The data directory.
        dir: PathBuf,
    },
}

/// Runs `solvent journal ...` and returns what to print on stdout.
///
/// # Errors
/// A missing or damaged data directory (for `verify`, the summary with every problem found).
pub fn run(args: &JournalArgs, feedback: Feedback) -> Result<String> {
    match &args.command {
        JournalCommand::Verify { dir } => verify(dir, feedback),
        JournalCommand::Export { dir, out, effects } => {
            export(dir, out.as_deref(), effects.as_deref(), feedback)
        }
        JournalCommand::Migrate { dir } => migrate_dir(dir),
        JournalCommand::Replay { dir, venue } => replay(dir, venue.as_deref(), feedback),
        JournalCommand::Import {
            events,
            dir,
            venue,
            batch,
            snapshot_every,
        } => import(
            events,
            dir,
            venue.as_deref(),
            (*batch, *snapshot_every),
            feedback,
        ),
    }
}

/// Opens the journal of an existing data directory (never creates one).
fn open_existing(dir: &Path) -> Result<SqliteJournal> {
    let path = dir.join(JOURNAL_FILE);
    if !path.is_file() {
        bail!("{}: no journal here", path.display());
    }
    Ok(SqliteJournal::open(dir)?)
}

fn events_per_second(events: u64, seconds: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let events = events as f64;
    if seconds > 0.0 { events / seconds } else { 0.0 }
}

/// A bar counting a journal's entries (moved once per [`STEP`] entries).
fn entries_bar(feedback: Feedback, verb: &str, entries: u64) -> ProgressBar {
    feedback.bar(
        entries,
        &format!("{verb} {{wide_bar}} {{pos}}/{{len}} entries [{{elapsed}}<{{eta}}]"),
    )
}

/// Entries between two moves of a bar (moving it at every entry would cost more than the entry).
const STEP: u64 = 1024;

fn verify(dir: &Path, feedback: Feedback) -> Result<String> {
    let mut problems: Vec<String> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let venue = match read_venue(dir) {
        Ok((venue, _)) => Some(venue),
        Err(error) => {
            problems.push(error.to_string());
            None
        }
    };
    let journal = open_existing(dir)?;
    let entries = journal.len()?;
    for problem in journal.check_all()? {
        problems.push(problem.to_string());
    }
    let clients = journal.clients().map(|index| index.len()).unwrap_or(0);
    lines.push(format!(
        "journal      {} entries, last sequence {}, {clients} client ids",
        entries,
        journal
            .last_seq()?
            .map_or_else(|| "-".to_owned(), |seq| seq.to_string())
    ));

    // Each snapshot on its own: header, checksum, restore, and the hash of the restored state.
    let mut expected: Vec<(u64, String, PathBuf)> = Vec::new();
    match list_snapshots(dir)? {
        None => lines.push("snapshots    none (no snapshots directory)".to_owned()),
        Some(paths) => {
            for path in paths {
                match read_snapshot(&path) {
                    Ok((info, _)) => {
                        lines.push(format!(
                            "snapshot     {} at sequence {}: checksum and restored hash good",
                            path.display(),
                            info.seq
                        ));
                        expected.push((info.seq, info.state_hash, path));
                    }
                    Err(error) => problems.push(error.to_string()),
                }
            }
        }
    }
    expected.sort_by_key(|(seq, _, _)| *seq);

    // The whole journal from its start, compared with each snapshot at its sequence.
    if let Some(venue) = venue {
        let mut engine = Engine::new(venue, EngineConfig::default());
        let mut pending = expected.iter().peekable();
        let mut replayed = 0_u64;
        let mut compare = |engine: &Engine, seq: Option<u64>, problems: &mut Vec<String>| {
            while let Some((at, hash, path)) = pending.peek() {
                if seq.is_none_or(|seq| *at > seq) {
                    break;
                }
                let found = engine.state_hash();
                if Some(*at) != seq {
                    problems.push(format!(
                        "snapshot {} is at sequence {at}, which the journal does not hold",
                        path.display()
                    ));
                } else if &found != hash {
                    problems.push(format!(
                        "snapshot {} records state hash {hash}; the replay has {found} at sequence {at}",
                        path.display()
                    ));
                }
                pending.next();
            }
        };
        let started = Instant::now();
        let progress = entries_bar(feedback, "verify", entries);
        let mut effects_differ = 0_u64;
        let mut unwritten = 0_u64;
        let scanned = journal.scan_with_effects(None, |envelope, recorded| {
            // A snapshot between two entries' sequence numbers is compared before the next.
            compare(&engine, Some(envelope.seq - 1), &mut problems);
            let effects = engine.apply(&envelope);
            let replayed_effects = Outcome::render(envelope.seq, &envelope.event, &effects);
            // Effects not written yet are reported once by `check_all` (EffectsMissing).
            unwritten += u64::from(recorded.is_none());
            if recorded.is_some_and(|recorded| !same_effects(recorded, &replayed_effects)) {
                // The first few named; the count says the rest.
                if effects_differ < 10 {
                    problems.push(format!(
                        "entry {}: the recorded effects differ from the replay's",
                        envelope.seq
                    ));
                }
                effects_differ += 1;
            }
            replayed += 1;
            compare(&engine, Some(envelope.seq), &mut problems);
            if replayed.is_multiple_of(STEP) {
                progress.set_position(replayed);
            }
            Ok::<(), JournalError>(())
        });
        progress.finish_and_clear();
        if let Err(error) = scanned {
            problems.push(format!("replay stopped: {error}"));
        }
        if effects_differ > 0 {
            problems.push(format!(
                "{effects_differ} entries' recorded effects differ from the replay's"
            ));
        }
        compare(&engine, None, &mut problems);
        for (at, _, path) in pending {
            problems.push(format!(
                "snapshot {} at sequence {at} is beyond the journal's end",
                path.display()
            ));
        }
        let seconds = started.elapsed().as_secs_f64();
        lines.push(format!(
            "effects      recorded once per entry, {} equal to the replay's, {unwritten} not written yet",
            replayed - effects_differ - unwritten
        ));
        lines.push(format!(
            "replay       {replayed} entries in {seconds:.2} s ({:.0} events/s), state hash {}",
            events_per_second(replayed, seconds),
            engine.state_hash()
        ));
    }
    let mut report = lines.join("\n") + "\n";
    if problems.is_empty() {
        report.push_str("verified: no problem found\n");
        return Ok(report);
    }
    for problem in &problems {
        report.push_str(&format!("problem      {problem}\n"));
    }
    Err(anyhow!("{report}{} problem(s) found", problems.len()))
}

/// Whether the recorded effects (JSON lines, `\n`-separated) are the replay's, byte for byte.
fn same_effects(recorded: &str, replayed: &Outcome) -> bool {
    let mut lines = recorded.split('\n').filter(|line| !line.is_empty());
    replayed
        .effects
        .iter()
        .all(|effect| lines.next() == Some(&**effect))
        && lines.next().is_none()
}

/// A buffered writer to `path`, or to stdout when absent.
fn output(path: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("{}: cannot create", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

fn export(
    dir: &Path,
    out: Option<&Path>,
    effects_out: Option<&Path>,
    feedback: Feedback,
) -> Result<String> {
    let journal = open_existing(dir)?;
    let progress = entries_bar(feedback, "export", journal.len()?);
    let mut writer = output(out)?;
    let mut written = 0_u64;
    let mut effects_written = 0_u64;
    match effects_out {
        None => journal.scan(None, |envelope| {
            writeln!(writer, "{}", to_line(&envelope))?;
            written += 1;
            if written.is_multiple_of(STEP) {
                progress.set_position(written);
            }
            Ok::<(), anyhow::Error>(())
        })?,
        Some(path) => {
            if out.is_none() {
                bail!("--effects needs --out: both cannot go to stdout");
            }
            let mut effects = output(Some(path))?;
            journal.scan_with_effects(None, |envelope, recorded| {
                let Some(recorded) = recorded else {
                    bail!(
                        "entry {}: its effects are not written yet (nor any later entry's): `solvent journal migrate {}` writes them",
                        envelope.seq,
                        dir.display()
                    );
                };
                writeln!(writer, "{}", to_line(&envelope))?;
                for line in recorded.split('\n').filter(|line| !line.is_empty()) {
                    writeln!(effects, "{line}")?;
                    effects_written += 1;
                }
                written += 1;
                if written.is_multiple_of(STEP) {
                    progress.set_position(written);
                }
                Ok::<(), anyhow::Error>(())
            })?;
            effects.flush()?;
        }
    }
    writer.flush()?;
    progress.finish_and_clear();
    Ok(match (out, effects_out) {
        (Some(path), Some(effects)) => format!(
            "exported {written} events to {} and their {effects_written} effects to {}\n",
            path.display(),
            effects.display()
        ),
        (Some(path), None) => format!("exported {written} events to {}\n", path.display()),
        (None, _) => String::new(),
    })
}

fn migrate_dir(dir: &Path) -> Result<String> {
    let path = dir.join(JOURNAL_FILE);
    if !path.is_file() {
        bail!("{}: no journal here", path.display());
    }
    let (venue, _) = read_venue(dir)?;
    let started = Instant::now();
    let migration = migrate(dir, venue, EngineConfig::default())?;
    if migration.from_format == solvent_store::JOURNAL_FORMAT.to_string() {
        return Ok(format!(
            "{}: already schema version {}; effects of {} events were missing and are written ({:.2} s); state hash {}\n",
            path.display(),
            migration.from_format,
            migration.events,
            started.elapsed().as_secs_f64(),
            migration.state_hash
        ));
    }
    Ok(format!(
        "{}: schema version {} -> {}: {} events replayed and their effects written to the audit file in {:.2} s; state hash {}\n",
        path.display(),
        migration.from_format,
        solvent_store::JOURNAL_FORMAT,
        migration.events,
        started.elapsed().as_secs_f64(),
        migration.state_hash
    ))
}

fn replay(dir: &Path, venue_path: Option<&Path>, feedback: Feedback) -> Result<String> {
    let (recorded, _) = read_venue(dir)?;
    let venue = match venue_path {
        Some(path) => crate::venues::load(Some(path))?,
        None => recorded.clone(),
    };
    let journal = open_existing(dir)?;
    let started = Instant::now();
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut replayed = 0_u64;
    let progress = entries_bar(feedback, "replay", journal.len()?);
    journal.scan(None, |envelope| {
        engine.apply(&envelope);
        replayed += 1;
        if replayed.is_multiple_of(STEP) {
            progress.set_position(replayed);
        }
        Ok::<(), JournalError>(())
    })?;
    progress.finish_and_clear();
    let scratch_seconds = started.elapsed().as_secs_f64();
    let scratch = engine.state_hash();
    drop(journal);

    let started = Instant::now();
    let recovered = recover(dir, recorded, EngineConfig::default())?;
    let recovery_seconds = started.elapsed().as_secs_f64();
    let report = &recovered.report;
    let from = report.snapshot.as_ref().map_or_else(
        || "the journal's start".to_owned(),
        |snapshot| format!("snapshot at sequence {}", snapshot.seq),
    );
    let mut text = format!(
        "from scratch  {scratch}  {replayed} events in {scratch_seconds:.2} s ({:.0} events/s)\n\
         recovery      {}  {from} + {} events in {recovery_seconds:.2} s\n",
        events_per_second(replayed, scratch_seconds),
        report.state_hash,
        report.replayed,
    );
    for skipped in &report.skipped {
        text.push_str(&format!(
            "skipped       {}: {}\n",
            skipped.path.display(),
            skipped.problem
        ));
    }
    if report.state_hash != scratch {
        bail!("{text}the two state hashes differ");
    }
    text.push_str("equal\n");
    Ok(text)
}

/// `(batch, snapshot_every)`: events per transaction, events between snapshots.
fn import(
    events: &Path,
    dir: &Path,
    venue_path: Option<&Path>,
    (batch, snapshot_every): (usize, u64),
    feedback: Feedback,
) -> Result<String> {
    let (_, venue_text) = crate::venues::text_of(venue_path)?;
    init_data_dir(dir, &venue_text)?;
    let recovered = recover(dir, read_venue(dir)?.0, EngineConfig::default())?;
    let mut engine = recovered.engine;
    let mut journal = recovered.journal;
    let origin = events.display().to_string();
    let file = File::open(events).with_context(|| format!("{origin}: cannot read the file"))?;
    let progress = feedback.bar(
        file.metadata().map_or(0, |m| m.len()),
        "import {wide_bar} {percent:>3}% [{elapsed}<{eta}]",
    );
    let mut bytes_read = 0_u64;
    let reader = BufReader::new(file);
    let started = Instant::now();
    let mut pending: Vec<Entry> = Vec::with_capacity(batch.max(1));
    let mut imported = 0_u64;
    let mut since_snapshot = 0_u64;
    let mut snapshots = 0_u64;
    let mut skipped = 0_u64;
    let mut flush = |pending: &mut Vec<Entry>,
                     engine: &mut Engine,
                     journal: &mut SqliteJournal,
                     snapshot: bool|
     -> Result<()> {
        // Applied, as the service does; a failed append ends the import. Their effects are
        // written to the audit file after the last batch (`fill_effects`).
        for entry in pending.iter() {
            engine.apply(&entry.envelope);
        }
        journal.append(pending)?;
        pending.clear();
        if snapshot && let Some(seq) = journal.last_seq()? {
            write_snapshot(dir, engine, seq, 3)?;
            snapshots += 1;
        }
        Ok(())
    };
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{origin}: line {}: cannot read", index + 1))?;
        // The line and its newline.
        bytes_read += line.len() as u64 + 1;
        if index % 1024 == 0 {
            progress.set_position(bytes_read);
        }
        if line.trim().is_empty() {
            continue;
        }
        let envelope = parse_line(&origin, index + 1, &line)?;
        // The service numbers what it accepts; a stream's own numbers may repeat or go back
        // (the engine refuses those events, `sequence_not_increasing`, and they change
        // nothing). The journal holds increasing numbers only: such lines are left out, counted.
        let last = pending
            .last()
            .map(|entry| entry.envelope.seq)
            .or(journal.last_seq()?);
        if last.is_some_and(|last| envelope.seq <= last) {
            skipped += 1;
            continue;
        }
        pending.push(Entry {
            envelope,
            client_id: None,
            reply: None,
            outcome: Outcome::default(),
        });
        imported += 1;
        since_snapshot += 1;
        if pending.len() >= batch.max(1) {
            let snapshot = snapshot_every > 0 && since_snapshot >= snapshot_every;
            if snapshot {
                since_snapshot = 0;
            }
            flush(&mut pending, &mut engine, &mut journal, snapshot)?;
        }
    }
    flush(&mut pending, &mut engine, &mut journal, true)?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    drop(journal);
    let effects_started = Instant::now();
    let filled = fill_effects(dir, read_venue(dir)?.0, EngineConfig::default())?;
    let effects_seconds = effects_started.elapsed().as_secs_f64();
    Ok(format!(
        "imported {imported} events into {} in {seconds:.2} s ({:.0} events/s, parsing, journaling and applying); {snapshots} snapshot(s); {skipped} line(s) left out (sequence not increasing); state hash {}\n\
         effects of {} events written in {effects_seconds:.2} s ({:.0} events/s)\n",
        dir.display(),
        events_per_second(imported, seconds),
        engine.state_hash(),
        filled.written,
        events_per_second(filled.written, effects_seconds),
    ))
}
