//! Durable journal throughput (DESIGN.md 12: >= 300,000 events / s in batches, acknowledged only
//! when durable) beside plain SQLite inserts of the same rows in the same run, plus the disk's
//! own sync latency, the audit writer's throughput (effects written per second: from the journal
//! with its replica, from its queue, and beside the committer, whose acknowledgements it must not
//! slow) and the replay path (journal read + decode + apply against apply alone).
//!
//! `cargo run --release -p solvent-store --example journal_bench -- [events] [dir] [paced
//! [rounds]]` (defaults: 1,000,000 events; a temporary directory under the system's temp dir,
//! which should be on the disk being measured; `paced`: only the paced runs, without the audit
//! writer, with it, with its thread at nice 10 and with its file on tmpfs, in turn, 3 rounds).
//! Run by `bench/journal.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use rust_decimal::Decimal;
use solvent_core::money::Price;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::{Envelope, Event, IndexPrice};
use solvent_engine::population::{PopulationParams, generate};
use solvent_store::{
    AUDIT_FILE, AuditOptions, AuditStatus, AuditWriter, Committer, CommitterConfig, Entry, Journal,
    JournalError, Outcome, PRAGMAS, SqliteJournal, codec, entry_crc, fill_effects,
};

const VENUE: &str = include_str!("../../../venues/default.toml");

/// A population of 20,000 accounts (deposits, leverage, fills), then index updates of BTC and
/// ETH in a seeded walk until `count` events.
fn events(count: usize) -> Vec<Envelope> {
    let venue = Venue::from_toml("venues/default.toml", VENUE).unwrap();
    let params = PopulationParams {
        accounts: 20_000,
        ..PopulationParams::default()
    };
    let mut events = generate(&venue, &params).unwrap().events;
    events.truncate(count);
    let mut prices = [93_859.71_f64, 3_224.99_f64];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while events.len() < count {
        let last = events.last().unwrap();
        let (seq, ts) = (last.seq + 1, last.ts + SignedDuration::from_millis(1));
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let uniform = (state >> 11) as f64 / (1_u64 << 53) as f64;
        let which = (seq % 2) as usize;
        prices[which] *= 1.0 + (uniform - 0.5) * 0.002;
        events.push(Envelope {
            seq,
            ts,
            event: Event::IndexPrice(IndexPrice {
                underlying: ["BTC", "ETH"][which].to_owned(),
                price: Price(Decimal::from_f64_retain(prices[which]).unwrap().round_dp(2)),
                source: None,
            }),
        });
    }
    events
}

fn rate(count: usize, elapsed: Duration) -> String {
    format!("{:>10.0} events/s", count as f64 / elapsed.as_secs_f64())
}

fn fresh(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The disk's own cost of a durable write: 4 KiB `fdatasync`ed, 200 times appended to a growing
/// file (the file system journals the new size too) and 200 times written over the same block
/// (as a reused write-ahead log is).
fn sync_latency(root: &Path) {
    use std::io::{Seek, SeekFrom};
    let path = root.join("fsync.probe");
    let mut file = std::fs::File::create(&path).unwrap();
    let page = [7_u8; 4096];
    for overwrite in [false, true] {
        let mut samples = Vec::new();
        for _ in 0..200 {
            if overwrite {
                file.seek(SeekFrom::Start(0)).unwrap();
            }
            let start = Instant::now();
            file.write_all(&page).unwrap();
            file.sync_data().unwrap();
            samples.push(start.elapsed());
        }
        samples.sort();
        println!(
            "disk: 4 KiB {} + fdatasync: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            if overwrite { "overwritten" } else { "appended" },
            quantile(&samples, 0.5),
            quantile(&samples, 0.9),
            quantile(&samples, 0.99),
            quantile(&samples, 1.0)
        );
    }
    let _ = std::fs::remove_file(path);
}

/// Plain SQLite: the same rows (sequence, encoded body, checksum), encoded beforehand, one
/// prepared insert per row, `batch` rows per transaction, the journal's pragmas.
fn plain_sqlite(root: &Path, rows: &[(i64, Vec<u8>, u32)], batch: usize) -> Duration {
    let dir = fresh(root, &format!("plain-{batch}"));
    let mut connection = rusqlite::Connection::open(dir.join("plain.sqlite")).unwrap();
    connection.execute_batch(PRAGMAS).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, crc INTEGER NOT NULL)",
        )
        .unwrap();
    let start = Instant::now();
    for chunk in rows.chunks(batch) {
        let transaction = connection.transaction().unwrap();
        {
            let mut insert = transaction
                .prepare_cached("INSERT INTO events (seq, body, crc) VALUES (?1, ?2, ?3)")
                .unwrap();
            for (seq, body, crc) in chunk {
                insert.execute(rusqlite::params![seq, body, crc]).unwrap();
            }
        }
        transaction.commit().unwrap();
    }
    start.elapsed()
}

/// The journal, `batch` entries per append (one transaction, encoding and checksums included).
fn journal(root: &Path, entries: &[Entry], batch: usize) -> Duration {
    let dir = fresh(root, &format!("journal-{batch}"));
    let mut journal = SqliteJournal::open(&dir).unwrap();
    let start = Instant::now();
    for chunk in entries.chunks(batch) {
        journal.append(chunk).unwrap();
    }
    start.elapsed()
}

/// Issue 11: the service keeps a bounded window of client ids and reads older ones from the
/// journal. Measured here: appends where every event carries a client id and a reply of the size
/// the service stores, then lookups through a reader opened beside the journal, of ids it holds
/// (a retry older than the window) and of ids it does not (every new id that misses the window).
fn client_ids(root: &Path, entries: &[Entry]) {
    let reply = format!(
        r#"{{"seq":0,"status":"accepted","effects":[{}]}}"#,
        "x".repeat(160)
    );
    let with_ids: Vec<Entry> = entries
        .iter()
        .map(|entry| Entry {
            client_id: Some(format!("client-{:012}", entry.envelope.seq)),
            reply: Some(reply.clone()),
            ..entry.clone()
        })
        .collect();
    let dir = fresh(root, "journal-client-ids");
    let mut journal = SqliteJournal::open(&dir).unwrap();
    let start = Instant::now();
    for chunk in with_ids.chunks(10_000) {
        journal.append(chunk).unwrap();
    }
    let appended = start.elapsed();
    let reader = journal.reader().unwrap();
    let lookups = with_ids.len().min(200_000);
    // A fixed stride through the ids: reads spread over the whole index, not one hot page.
    let stride = 7_919;
    let start = Instant::now();
    for n in 0..lookups {
        let id = with_ids[(n * stride) % with_ids.len()]
            .client_id
            .as_deref()
            .unwrap();
        assert!(reader.client(id).unwrap().is_some());
    }
    let hits = start.elapsed();
    let start = Instant::now();
    for n in 0..lookups {
        assert!(reader.client(&format!("absent-{n:012}")).unwrap().is_none());
    }
    let misses = start.elapsed();
    println!(
        "with a client id and a {}-byte reply on every event, batches of 10,000: SqliteJournal {} | client-id lookups through a reader: held {} , absent {}",
        reply.len(),
        rate(with_ids.len(), appended),
        rate(lookups, hits),
        rate(lookups, misses)
    );
}

/// The committer: a producer submits batches of `batch` entries as fast as the queue takes
/// them; each is timed from submission to its durable acknowledgement.
fn committer(
    root: &Path,
    entries: &[Entry],
    batch: usize,
    cap: usize,
    audit: bool,
) -> (
    Duration,
    Vec<Duration>,
    u64,
    Option<(Duration, AuditStatus)>,
) {
    let dir = fresh(root, &format!("committer-{batch}-{audit}"));
    let journal = SqliteJournal::open(&dir).unwrap();
    // The audit writer beside the commits, as the service runs it: on its own thread, fed the
    // rendered effects by the commit thread through its bounded queue (the journal when that
    // overflows); how long it takes to write every effect is timed from the same start.
    let writer = audit.then(|| AuditWriter::start(&dir, venue(), EngineConfig::default()).unwrap());
    let committer = Committer::start_with_audit(
        journal,
        CommitterConfig {
            queue_batches: 4096,
            max_entries_per_commit: cap,
        },
        writer.as_ref().map(AuditWriter::sink),
    );
    let (sender, receiver) = mpsc::channel::<Result<Duration, JournalError>>();
    let start = Instant::now();
    let mut submitted = 0;
    for chunk in entries.chunks(batch) {
        let sender = sender.clone();
        let submitted_at = Instant::now();
        committer
            .submit(chunk.to_vec(), move |result| {
                let _ = sender.send(result.map(|()| submitted_at.elapsed()));
            })
            .unwrap();
        submitted += 1;
    }
    let mut latencies = Vec::with_capacity(submitted);
    for _ in 0..submitted {
        latencies.push(receiver.recv().unwrap().unwrap());
    }
    let elapsed = start.elapsed();
    let commits = committer.stats().commits;
    committer.stop().unwrap();
    let caught_up = writer.map(|writer| {
        let last = entries.last().unwrap().envelope.seq;
        let status = writer.wait_for(last, Duration::from_secs(3600));
        assert_eq!(status.effects_through, Some(last), "{status:?}");
        (start.elapsed(), status)
    });
    latencies.sort();
    (elapsed, latencies, commits, caught_up)
}

/// The audit writer's own rate from its queue (no replica): every entry's outcome offered to a
/// writer whose queue holds them all, from this thread, the committer aside; timed until the
/// last is written. (The journal is left empty: the writer trusts its queue, whose events a
/// committer offers only once durable.)
fn queue_alone(root: &Path, entries: &[Entry]) {
    let dir = fresh(root, "queue-alone");
    drop(SqliteJournal::open(&dir).unwrap());
    let writer = AuditWriter::start_with(
        &dir,
        venue(),
        EngineConfig::default(),
        AuditOptions {
            queue: entries.len(),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    let sink = writer.sink();
    let mut outcomes: Vec<Entry> = entries.to_vec();
    let start = Instant::now();
    sink.offer_all(&mut outcomes);
    let offered = start.elapsed();
    let last = entries.last().unwrap().envelope.seq;
    let status = writer.wait_for(last, Duration::from_secs(3600));
    assert_eq!(status.effects_through, Some(last), "{status:?}");
    assert_eq!(status.replayed, 0, "{status:?}");
    println!(
        "audit writer from its queue alone: effects of {} (offered in {offered:?}: {} on the offering thread)",
        rate(entries.len(), start.elapsed()),
        rate(entries.len(), offered)
    );
}

/// Where the audit writer's effects came from.
fn sources(status: &AuditStatus) -> String {
    format!(
        "{} from the queue, {} replayed from the journal in {} fallbacks",
        status.written - status.replayed,
        status.replayed,
        status.fallbacks
    )
}

fn venue() -> Venue {
    Venue::from_toml("venues/default.toml", VENUE).unwrap()
}

/// A paced committer run: batches of `batch` submitted at `per_second` events / s, acks timed.
fn paced(
    root: &Path,
    entries: &[Entry],
    batch: usize,
    per_second: f64,
    audit: Beside,
) -> Vec<Duration> {
    let dir = fresh(root, &format!("paced-{audit:?}"));
    if audit == Beside::WriterInMemory {
        // The audit file (and, SQLite following the link, its log) on tmpfs: the writer's CPU
        // kept, its disk writes taken away. Linked before the journal opens (it creates the
        // audit file).
        let target = std::path::Path::new("/dev/shm")
            .join(format!("journal-bench-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&target);
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(target.join(AUDIT_FILE), dir.join(AUDIT_FILE)).unwrap();
    }
    let journal = SqliteJournal::open(&dir).unwrap();
    let writer = (audit != Beside::Nothing)
        .then(|| AuditWriter::start(&dir, venue(), EngineConfig::default()).unwrap());
    if audit == Beside::NicedWriter {
        renice_writer();
    }
    let committer = Committer::start_with_audit(
        journal,
        CommitterConfig::default(),
        writer.as_ref().map(AuditWriter::sink),
    );
    let (sender, receiver) = mpsc::channel::<Duration>();
    let cpu = process_cpu();
    let start = Instant::now();
    let mut submitted = 0;
    for (index, chunk) in entries.chunks(batch).enumerate() {
        let due = start + Duration::from_secs_f64((index * batch) as f64 / per_second);
        // Sleeping, not spinning: the machine's cores are shared with the commit thread.
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sender = sender.clone();
        let submitted_at = Instant::now();
        committer
            .submit(chunk.to_vec(), move |result| {
                if result.is_ok() {
                    let _ = sender.send(submitted_at.elapsed());
                }
            })
            .unwrap();
        submitted += 1;
    }
    let mut latencies: Vec<Duration> = (0..submitted)
        .filter_map(|_| receiver.recv().ok())
        .collect();
    committer.stop().unwrap();
    if let Some(writer) = writer {
        let last = entries.last().unwrap().envelope.seq;
        let status = writer.wait_for(last, Duration::from_secs(3600));
        assert_eq!(status.effects_through, Some(last), "{status:?}");
        println!(
            "  (audit writer beside it: effects of all {} events written {:?} after the last ack was due; {})",
            entries.len(),
            start
                .elapsed()
                .saturating_sub(Duration::from_secs_f64(entries.len() as f64 / per_second)),
            sources(&status)
        );
        if audit == Beside::WriterInMemory {
            // Where SQLite put the audit's log: beside the link's target, if it followed it.
            println!(
                "  (audit log in the data directory: {}; on tmpfs: {})",
                dir.join(format!("{AUDIT_FILE}-wal")).exists(),
                std::fs::read_link(dir.join(AUDIT_FILE))
                    .unwrap()
                    .with_extension("sqlite-wal")
                    .exists()
            );
            drop(writer);
            let target = std::fs::read_link(dir.join(AUDIT_FILE)).unwrap();
            let _ = std::fs::remove_dir_all(target.parent().unwrap());
        }
    }
    // The CPU the process spent, from the first submission to the last ack (and the last
    // effect written, with the writer): what the writer adds, whatever else loads the machine.
    let spent = process_cpu().saturating_sub(cpu);
    println!(
        "  (process CPU during the paced run: {spent:?}, {:.1} µs per event)",
        spent.as_secs_f64() * 1e6 / entries.len() as f64
    );
    latencies.sort();
    latencies
}

/// What runs beside the paced committer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Beside {
    Nothing,
    Writer,
    /// The writer's thread at nice 10 (`renice`d from outside, as an operator would: the library
    /// sets no priority).
    NicedWriter,
    /// The writer with the audit file on tmpfs (`/dev/shm`, through a symbolic link).
    WriterInMemory,
}

/// Runs `renice -n 10` on this process's threads named `journal-audit` (the audit writer's).
fn renice_writer() {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "journal-audit" {
            let status = std::process::Command::new("renice")
                .args(["-n", "10", "-p"])
                .arg(task.file_name())
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}

/// The CPU time (user + system) this process has used so far, from `/proc/self/stat` (zero where
/// there is none).
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th of
    // the line, the 12th and 13th after it, in clock ticks of 1/100 s.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&n| fields.get(n).and_then(|field| field.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * q) as usize)
        .copied()
        .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let temporary = tempfile::tempdir().unwrap();
    let root = args
        .next()
        .map_or_else(|| temporary.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&root).unwrap();
    // `paced`: only the paced runs, without the audit writer, with it, with its thread at nice 10
    // and with its file on tmpfs, in turn, `rounds` times (on a shared machine whose load drifts,
    // taking them in turn keeps the sides comparable).
    let paced_rounds = match (args.next().as_deref(), args.next()) {
        (Some("paced"), rounds) => Some(rounds.and_then(|r| r.parse().ok()).unwrap_or(3_usize)),
        _ => None,
    };
    println!("journal bench: {count} events in {}", root.display());
    let events = events(count);
    // Each event with the effects the engine gives it, rendered beforehand as the service's
    // engine thread renders them for its replies (the SQLite journal no longer writes them: the
    // commit thread hands them to the audit writer once durable, measured below).
    let mut engine = Engine::new(
        Venue::from_toml("venues/default.toml", VENUE).unwrap(),
        EngineConfig::default(),
    );
    let entries: Vec<Entry> = events
        .iter()
        .map(|envelope| {
            let effects = engine.apply(envelope);
            Entry {
                envelope: envelope.clone(),
                client_id: None,
                reply: None,
                outcome: Outcome::render(envelope.seq, &envelope.event, &effects),
            }
        })
        .collect();
    drop(engine);
    if let Some(rounds) = paced_rounds {
        let paced_count = entries.len().min(250_000);
        for round in 1..=rounds {
            for audit in [
                Beside::Nothing,
                Beside::Writer,
                Beside::NicedWriter,
                Beside::WriterInMemory,
            ] {
                let beside = match audit {
                    Beside::Nothing => "",
                    Beside::Writer => ", audit writer beside",
                    Beside::NicedWriter => ", audit writer beside at nice 10",
                    Beside::WriterInMemory => ", audit writer beside, its file on tmpfs",
                };
                let latencies = paced(&root, &entries[..paced_count], 50, 50_000.0, audit);
                println!(
                    "round {round}: committer at 50,000 events / s in batches of 50{beside}: ack p50 {:?}, p99 {:?}, max {:?} (load {})",
                    quantile(&latencies, 0.5),
                    quantile(&latencies, 0.99),
                    quantile(&latencies, 1.0),
                    std::fs::read_to_string("/proc/loadavg")
                        .unwrap_or_default()
                        .split_whitespace()
                        .next()
                        .unwrap_or("?")
                );
            }
        }
        return;
    }
    let effects: usize = entries.iter().map(|e| e.outcome.effects.len()).sum();
    let effect_bytes: usize = entries
        .iter()
        .flat_map(|e| &e.outcome.effects)
        .map(|line| line.len() + 1)
        .sum();
    let index_rows: usize = entries
        .iter()
        .map(|e| e.outcome.accounts.len() + e.outcome.effect_types.len())
        .sum();
    println!(
        "effects: {:.2} per event, {:.1} bytes of JSON per event; {:.2} index rows per event (accounts and effect types)",
        effects as f64 / count as f64,
        effect_bytes as f64 / count as f64,
        index_rows as f64 / count as f64
    );
    let rows: Vec<(i64, Vec<u8>, u32)> = events
        .iter()
        .map(|envelope| {
            let mut body = Vec::new();
            codec::encode(envelope, &mut body);
            let crc = entry_crc(envelope.seq, &body);
            (i64::try_from(envelope.seq).unwrap(), body, crc)
        })
        .collect();
    let bytes: usize = rows.iter().map(|(_, body, _)| body.len()).sum();
    println!(
        "encoded bodies: {:.1} bytes / event on average (JSON lines: {:.1})",
        bytes as f64 / count as f64,
        events
            .iter()
            .map(|e| solvent_engine::event::to_line(e).len() + 1)
            .sum::<usize>() as f64
            / count as f64
    );
    sync_latency(&root);

    for batch in [1_000, 10_000] {
        let plain = plain_sqlite(&root, &rows, batch);
        let ours = journal(&root, &entries, batch);
        println!(
            "batches of {batch:>6}: plain SQLite inserts {} | SqliteJournal {} ({} syncs)",
            rate(count, plain),
            rate(count, ours),
            count.div_ceil(batch)
        );
    }
    client_ids(&root, &entries);
    // The audit writer's fallback alone: the effects of the journal's events (written without
    // effects above) written to the audit file, replica apply + render + insert, in the caller's
    // thread.
    let dir = root.join("journal-10000");
    let start = Instant::now();
    let filled = fill_effects(&dir, venue(), EngineConfig::default()).unwrap();
    assert_eq!(filled.written, count as u64);
    println!(
        "audit writer alone (fill_effects): effects of {}",
        rate(count, start.elapsed())
    );
    queue_alone(&root, &entries);
    for audit in [false, true] {
        let beside = if audit { ", audit writer beside" } else { "" };
        for (batch, cap) in [(100, 65_536), (1_000, 65_536)] {
            let (elapsed, latencies, commits, caught_up) =
                committer(&root, &entries, batch, cap, audit);
            println!(
                "committer, batches of {batch:>5} submitted back to back{beside}: {} in {commits} commits ({:.0} entries / commit); ack p50 {:?}, p99 {:?}{}",
                rate(count, elapsed),
                count as f64 / commits.max(1) as f64,
                quantile(&latencies, 0.5),
                quantile(&latencies, 0.99),
                caught_up.map_or_else(String::new, |(all, status)| format!(
                    "; every effect written {all:?} after the start ({}; {})",
                    rate(count, all),
                    sources(&status)
                ))
            );
        }
        let paced_count = entries.len().min(250_000);
        let beside_paced = if audit {
            Beside::Writer
        } else {
            Beside::Nothing
        };
        let latencies = paced(&root, &entries[..paced_count], 50, 50_000.0, beside_paced);
        println!(
            "committer at 50,000 events / s in batches of 50{beside}: ack p50 {:?}, p99 {:?}, max {:?}",
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            quantile(&latencies, 1.0)
        );
    }

    // Replay: the journal's rows read, checked and decoded, then applied; against apply alone
    // on events already in memory, in the same run.
    let dir = root.join("journal-10000");
    let journal = SqliteJournal::open(&dir).unwrap();
    let start = Instant::now();
    let mut decoded = 0_usize;
    journal
        .scan(None, |_| {
            decoded += 1;
            Ok::<(), JournalError>(())
        })
        .unwrap();
    let read = start.elapsed();
    let venue = Venue::from_toml("venues/default.toml", VENUE).unwrap();
    let mut engine = Engine::new(venue.clone(), EngineConfig::default());
    let start = Instant::now();
    journal
        .scan(None, |envelope| {
            engine.apply(&envelope);
            Ok::<(), JournalError>(())
        })
        .unwrap();
    let end_to_end = start.elapsed();
    let mut memory = Engine::new(venue, EngineConfig::default());
    let start = Instant::now();
    for envelope in &events {
        memory.apply(envelope);
    }
    let in_memory = start.elapsed();
    assert_eq!(engine.state_hash(), memory.state_hash());
    let start = Instant::now();
    let snapshot = memory.snapshot().unwrap();
    let taken = start.elapsed();
    let start = Instant::now();
    let restored = Engine::restore(&snapshot).unwrap();
    let restored_in = start.elapsed();
    assert_eq!(restored.state_hash(), memory.state_hash());
    println!(
        "replay: journal read + check + decode {} | + apply (end to end) {} | apply alone in memory {} | ratio {:.2}x",
        rate(decoded, read),
        rate(count, end_to_end),
        rate(count, in_memory),
        end_to_end.as_secs_f64() / in_memory.as_secs_f64()
    );
    println!(
        "snapshot of {} accounts: {:.1} MB, taken in {:?}, restored in {:?}",
        memory.accounts().len(),
        snapshot.len() as f64 / 1e6,
        taken,
        restored_in
    );
}
