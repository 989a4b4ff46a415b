//! Each event's effects kept in the audit file beside the journal (issue 12), written after the
//! event by the audit writer: pending (not "none") until written, then read back for every event
//! however old, filtered by the indexes as the in-memory reference filters the same entries, cut
//! with their events, checked by `check_all`; effects a crash left unwritten are written again
//! from the journal, from a snapshot at or below their reach or from the start; a journal of
//! schema version 1 is refused by name until migrated, and the migration writes the effects a
//! replay gives. The writer takes the effects the commit thread hands it through its bounded
//! queue, and falls back to the journal only when the queue overflowed or after a restart behind
//! it; either way the audit ends as a full replay's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use solvent_engine::config::EngineConfig;
use solvent_store::{
    AUDIT_FILE, AuditOptions, AuditQuery, AuditSink, AuditWriter, Committer, CommitterConfig,
    Cursor, Entry, Journal, JournalError, MemoryJournal, SqliteJournal, fill_effects,
    init_data_dir, migrate, write_snapshot,
};

/// Writes the missing effects of the journal in `dir`; returns how many.
fn fill(dir: &std::path::Path) -> u64 {
    fill_effects(dir, common::venue(), EngineConfig::default())
        .unwrap()
        .written
}

/// Opens the audit file directly (to damage it, or lose its tail, as a crash would).
fn raw_audit(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(AUDIT_FILE)).unwrap()
}

fn seqs(records: &[solvent_store::AuditRecord]) -> Vec<u64> {
    records.iter().map(|record| record.envelope.seq).collect()
}

/// A journal in `dir` holding the workload's entries, in batches, with a client id on some.
fn written(dir: &std::path::Path) -> Vec<Entry> {
    let mut entries = common::entries(&common::workload(30, 300));
    entries[4].client_id = Some("order-4".to_owned());
    let mut journal = SqliteJournal::open(dir).unwrap();
    for batch in entries.chunks(37) {
        journal.append(batch).unwrap();
    }
    entries
}

#[test]
fn every_event_s_effects_read_back_as_written_and_the_filters_agree_with_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let entries = written(dir.path());
    // Durable events, no effects written yet: pending, not none, and named by the check.
    let journal = SqliteJournal::open(dir.path()).unwrap();
    let reader = journal.reader().unwrap();
    assert_eq!(reader.effects_through().unwrap(), None);
    let page = reader
        .audit(&AuditQuery {
            limit: 5,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|record| record.effects.is_none()));
    let last = entries.last().unwrap().envelope.seq;
    assert_eq!(
        journal.check_all().unwrap(),
        [JournalError::EffectsMissing {
            through: None,
            last
        }]
    );
    drop((reader, journal));
    assert_eq!(fill(dir.path()), entries.len() as u64);
    filters_agree_with_the_reference(dir.path(), &entries);
}

/// The same with sequence numbers 20,011 apart, so the account index's pages cross many of its
/// buckets (2^16 sequence numbers each) in both directions.
#[test]
fn an_account_s_events_are_found_across_the_buckets_of_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<_> = common::workload(30, 300)
        .into_iter()
        .map(|mut envelope| {
            envelope.seq *= 20_011;
            envelope
        })
        .collect();
    let entries = common::entries(&events);
    let mut journal = SqliteJournal::open(dir.path()).unwrap();
    for batch in entries.chunks(37) {
        journal.append(batch).unwrap();
    }
    drop(journal);
    assert_eq!(fill(dir.path()), entries.len() as u64);
    filters_agree_with_the_reference(dir.path(), &entries);
}

fn filters_agree_with_the_reference(dir: &std::path::Path, entries: &[Entry]) {
    let journal = SqliteJournal::open(dir).unwrap();
    let reader = journal.reader().unwrap();
    let mut memory = MemoryJournal::default();
    memory.append(entries).unwrap();
    let reference = memory.reader().unwrap();

    // Every event, oldest first, with the effects written with it.
    let all = reader
        .audit(&AuditQuery {
            cursor: Cursor::After(0),
            limit: usize::MAX,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(all.len(), entries.len());
    assert_eq!(
        reader.effects_through().unwrap(),
        entries.last().map(|entry| entry.envelope.seq)
    );
    for (record, entry) in all.iter().zip(entries) {
        assert_eq!(record.envelope, entry.envelope);
        assert_eq!(
            record.effects.as_ref(),
            Some(&entry.outcome.effects),
            "{}",
            entry.envelope.seq
        );
        assert_eq!(record.client_id, entry.client_id);
    }
    assert!(
        entries
            .iter()
            .any(|entry| !entry.outcome.effects.is_empty()),
        "the workload causes effects"
    );

    // The filters: an account that trades, one that names a transfer's side, the liquidations,
    // price events, a range, combined; each page as the in-memory filter gives it.
    let account = entries
        .iter()
        .find_map(|entry| entry.outcome.accounts.iter().next().cloned())
        .unwrap();
    let liquidated = entries
        .iter()
        .any(|entry| entry.outcome.effect_types.contains("liquidation"));
    assert!(liquidated, "the workload liquidates");
    let last = entries.last().unwrap().envelope.seq;
    let queries = [
        AuditQuery {
            account: Some(account.clone()),
            ..AuditQuery::default()
        },
        AuditQuery {
            effect_type: Some("liquidation".to_owned()),
            ..AuditQuery::default()
        },
        AuditQuery {
            event_type: Some("index_price".to_owned()),
            from_seq: Some(last / 3),
            to_seq: Some(last / 2),
            ..AuditQuery::default()
        },
        AuditQuery {
            account: Some(account.clone()),
            event_type: Some("fill".to_owned()),
            ..AuditQuery::default()
        },
        AuditQuery {
            account: Some(account),
            effect_type: Some("account_updated".to_owned()),
            event_type: Some("index_price".to_owned()),
            ..AuditQuery::default()
        },
        AuditQuery {
            effect_type: Some("margin_call".to_owned()),
            event_type: Some("index_price".to_owned()),
            to_seq: Some(last - 10),
            ..AuditQuery::default()
        },
        AuditQuery {
            account: Some("nobody".to_owned()),
            ..AuditQuery::default()
        },
    ];
    for query in queries {
        for (cursor, limit) in [
            (Cursor::Latest, 7),
            (Cursor::Before(last / 2), 5),
            (Cursor::After(last / 4), 9),
            (Cursor::After(0), usize::MAX),
        ] {
            let query = AuditQuery {
                cursor,
                limit,
                ..query.clone()
            };
            let found = reader.audit(&query).unwrap();
            let expected = reference.audit(&query).unwrap();
            assert_eq!(seqs(&found), seqs(&expected), "{query:?}");
            assert_eq!(found, expected, "{query:?}");
        }
    }
    assert!(journal.check_all().unwrap().is_empty());
}

#[test]
fn a_cut_removes_the_effects_with_their_events_and_damage_to_them_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let entries = written(dir.path());
    fill(dir.path());
    let last = entries.last().unwrap().envelope.seq;
    let mut journal = SqliteJournal::open(dir.path()).unwrap();
    journal.truncate_from(last - 9).unwrap();
    assert_eq!(journal.effects_through().unwrap(), Some(last - 10));
    assert!(journal.check_all().unwrap().is_empty());
    let reader = journal.reader().unwrap();
    let latest = reader
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(seqs(&latest), [last - 10]);
    // The journal takes the cut events again; their effects are written once.
    journal.append(&entries[entries.len() - 10..]).unwrap();
    drop(journal);
    assert_eq!(fill(dir.path()), 10);
    let journal = SqliteJournal::open(dir.path()).unwrap();
    assert!(journal.check_all().unwrap().is_empty());
    drop(journal);

    // A disk flips a byte of one event's effects, and loses another's.
    let connection = raw_audit(dir.path());
    let damaged = i64::try_from(last / 2).unwrap();
    let lost = i64::try_from(last / 3).unwrap();
    connection
        .execute(
            "UPDATE outcomes SET effects = effects || ' ' WHERE seq = ?1",
            [damaged],
        )
        .unwrap();
    connection
        .execute("DELETE FROM outcomes WHERE seq = ?1", [lost])
        .unwrap();
    drop(connection);
    let journal = SqliteJournal::open(dir.path()).unwrap();
    let problems = journal.check_all().unwrap();
    let named: Vec<u64> = problems
        .iter()
        .filter_map(|problem| match problem {
            JournalError::CorruptEntry { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(named.len(), 2, "{problems:?}");
    assert!(named.contains(&(last / 2)) && named.contains(&(last / 3)));
    let reader = journal.reader().unwrap();
    let page = reader.audit(&AuditQuery {
        cursor: Cursor::Before(last / 2 + 1),
        limit: 1,
        ..AuditQuery::default()
    });
    assert!(
        matches!(page, Err(JournalError::CorruptEntry { seq, .. }) if seq == last / 2),
        "{page:?}"
    );
}

/// Makes the journal in `dir` what schema version 1 wrote: the same events and client rows,
/// no effects (no audit file), `format` 1.
fn as_version_1(dir: &std::path::Path) {
    let connection = common::raw(dir);
    connection
        .execute_batch(
            "DELETE FROM meta WHERE key = 'outcome_checksum';
             UPDATE meta SET value = '1' WHERE key = 'format';",
        )
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{AUDIT_FILE}{suffix}")));
    }
}

#[test]
fn a_version_1_journal_is_refused_by_name_until_migrated_then_holds_the_replay_s_effects() {
    let dir = tempfile::tempdir().unwrap();
    init_data_dir(dir.path(), common::VENUE).unwrap();
    let entries = written(dir.path());
    as_version_1(dir.path());
    let refused = SqliteJournal::open(dir.path());
    let Err(JournalError::Format(message)) = refused else {
        panic!("{refused:?}");
    };
    assert!(
        message.contains("schema version 1") && message.contains("solvent journal migrate"),
        "{message}"
    );
    // Refused untouched: still version 1, so the migration finds it as it was.
    let migration = migrate(
        dir.path(),
        common::venue(),
        solvent_engine::config::EngineConfig::default(),
    )
    .unwrap();
    assert_eq!(migration.from_format, "1");
    assert_eq!(migration.events, entries.len() as u64);
    let events: Vec<_> = entries.iter().map(|e| e.envelope.clone()).collect();
    assert_eq!(migration.state_hash, common::uninterrupted_hash(&events));
    let journal = SqliteJournal::open(dir.path()).unwrap();
    assert!(journal.check_all().unwrap().is_empty());
    let all = journal
        .reader()
        .unwrap()
        .audit(&AuditQuery {
            cursor: Cursor::After(0),
            limit: usize::MAX,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(all.len(), entries.len());
    for (record, entry) in all.iter().zip(&entries) {
        assert_eq!(
            record.effects.as_ref(),
            Some(&entry.outcome.effects),
            "{}",
            entry.envelope.seq
        );
    }
    drop(journal);
    // A second migration has nothing to do.
    let again = migrate(
        dir.path(),
        common::venue(),
        solvent_engine::config::EngineConfig::default(),
    )
    .unwrap();
    assert_eq!((again.from_format.as_str(), again.events), ("3", 0));
}

/// A crash between events' commit and their effects' write: the audit file ends at `k`, the
/// journal at `last`, a snapshot was taken at `s1 < k` and another at `s2 > k` (the one recovery
/// starts from, so its tail replay does not reach back to `k`). The writer starts from `s1`
/// (the newest snapshot at or below its reach), re-applies up to `k` without writing, and writes
/// the rest once; without a usable snapshot it starts from the journal's start.
#[test]
fn effects_a_crash_left_unwritten_are_written_once_from_a_snapshot_below_them_or_the_start() {
    let dir = tempfile::tempdir().unwrap();
    init_data_dir(dir.path(), common::VENUE).unwrap();
    let entries = written(dir.path());
    let last = entries.last().unwrap().envelope.seq;
    let (s1, k, s2) = (last / 4, last / 2, last * 3 / 4);
    let mut engine = common::engine();
    for entry in &entries {
        engine.apply(&entry.envelope);
        if entry.envelope.seq == s1 || entry.envelope.seq == s2 {
            write_snapshot(dir.path(), &engine, entry.envelope.seq, 3).unwrap();
        }
    }
    assert_eq!(fill(dir.path()), entries.len() as u64);
    let lose_after_k = || {
        let connection = raw_audit(dir.path());
        for table in ["outcomes", "effect_types", "event_accounts"] {
            connection
                .execute(
                    &format!("DELETE FROM {table} WHERE seq > ?1"),
                    [i64::try_from(k).unwrap()],
                )
                .unwrap();
        }
    };
    lose_after_k();
    let journal = SqliteJournal::open(dir.path()).unwrap();
    assert_eq!(
        journal.check_all().unwrap(),
        [JournalError::EffectsMissing {
            through: Some(k),
            last
        }]
    );
    drop(journal);

    // On its thread, as the service runs it: it catches up.
    let writer = AuditWriter::start(dir.path(), common::venue(), EngineConfig::default()).unwrap();
    let status = writer.wait_for(last, std::time::Duration::from_secs(60));
    assert_eq!(status.effects_through, Some(last), "{status:?}");
    assert_eq!(status.written, last - k);
    drop(writer);
    let check = |dir: &std::path::Path| {
        let journal = SqliteJournal::open(dir).unwrap();
        assert!(journal.check_all().unwrap().is_empty());
        let all = journal
            .reader()
            .unwrap()
            .audit(&AuditQuery {
                cursor: Cursor::After(0),
                limit: usize::MAX,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(all.len(), entries.len());
        for (record, entry) in all.iter().zip(&entries) {
            assert_eq!(record.effects.as_ref(), Some(&entry.outcome.effects));
        }
    };
    check(dir.path());

    // The repair in the caller's thread, from the snapshot at s1.
    lose_after_k();
    let report = fill_effects(dir.path(), common::venue(), EngineConfig::default()).unwrap();
    assert_eq!(report.snapshot, Some(s1));
    assert_eq!((report.from, report.written), (Some(k), last - k));
    let events: Vec<_> = entries.iter().map(|e| e.envelope.clone()).collect();
    assert_eq!(report.state_hash, common::uninterrupted_hash(&events));
    check(dir.path());

    // Without the snapshot at s1: from the journal's start.
    lose_after_k();
    for path in solvent_store::list_snapshots(dir.path()).unwrap().unwrap() {
        if solvent_store::read_snapshot(&path).unwrap().0.seq == s1 {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let report = fill_effects(dir.path(), common::venue(), EngineConfig::default()).unwrap();
    assert_eq!((report.snapshot, report.reapplied), (None, k));
    check(dir.path());
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Commits `entries` in batches of `batch` through a committer over the journal in `dir` that
/// hands each durable batch's outcomes to `audit`, as the service's commit thread does.
/// A writer whose counts the tests assert exactly: it reads the journal itself only for a hole
/// or an overflow of its queue, never because a loaded machine kept the commit thread from
/// handing events over within the default [`solvent_store::FOLLOW`].
fn writer_on_its_queue(dir: &std::path::Path) -> AuditWriter {
    AuditWriter::start_with(
        dir,
        common::venue(),
        EngineConfig::default(),
        AuditOptions {
            follow: std::time::Duration::from_secs(600),
            ..AuditOptions::default()
        },
    )
    .unwrap()
}

fn commit(dir: &std::path::Path, entries: &[Entry], batch: usize, audit: Option<AuditSink>) {
    let committer = Committer::start_with_audit(
        SqliteJournal::open(dir).unwrap(),
        CommitterConfig::default(),
        audit,
    );
    let (sender, receiver) = std::sync::mpsc::channel();
    for chunk in entries.chunks(batch) {
        let sender = sender.clone();
        committer
            .submit(chunk.to_vec(), move |result| {
                let _ = sender.send(result);
            })
            .unwrap();
    }
    for _ in entries.chunks(batch) {
        receiver.recv().unwrap().unwrap();
    }
    drop(committer.stop().unwrap());
}

#[test]
fn with_room_in_its_queue_the_writer_writes_the_rendered_effects_and_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Journal created before the writer starts, empty: nothing to catch up.
    drop(SqliteJournal::open(dir.path()).unwrap());
    let entries = common::entries(&common::workload(30, 300));
    let last = entries.last().unwrap().envelope.seq;
    let writer = writer_on_its_queue(dir.path());
    commit(dir.path(), &entries, 37, Some(writer.sink()));
    let status = writer.wait_for(last, WAIT);
    assert_eq!(status.effects_through, Some(last), "{status:?}");
    assert_eq!(
        (status.written, status.replayed, status.fallbacks),
        (entries.len() as u64, 0, 0),
        "every effect from the queue, no replica: {status:?}"
    );
    assert_eq!(status.first_overflow, None);
    drop(writer);
    filters_agree_with_the_reference(dir.path(), &entries);
}

#[test]
fn an_overflowing_queue_falls_back_to_the_journal_and_the_audit_ends_as_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteJournal::open(dir.path()).unwrap());
    let events = common::workload(30, 600);
    let last = events.last().unwrap().seq;
    // A queue of 2 against commits of 50 events handed over at once: it overflows on the first
    // commit the writer has not emptied it for, and keeps overflowing.
    let writer = AuditWriter::start_with(
        dir.path(),
        common::venue(),
        EngineConfig::default(),
        AuditOptions {
            queue: 2,
            ..AuditOptions::default()
        },
    )
    .unwrap();
    commit(
        dir.path(),
        &common::entries(&events),
        50,
        Some(writer.sink()),
    );
    let status = writer.wait_for(last, WAIT);
    assert_eq!(status.effects_through, Some(last), "{status:?}");
    assert!(status.first_overflow.is_some(), "{status:?}");
    assert!(status.fallbacks >= 1 && status.replayed >= 1, "{status:?}");
    // Each event's effects written once (a second write of a sequence number fails the writer).
    assert_eq!(status.written, events.len() as u64, "{status:?}");
    assert_eq!(status.failure, None);
    drop(writer);
    // Compared with the effects of a replay of the whole journal from its start, independent of
    // what was queued: effects, index rows, pages.
    filters_agree_with_the_reference(dir.path(), &common::entries(&events));
}

#[test]
fn a_writer_behind_the_journal_at_restart_catches_up_from_it_then_takes_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteJournal::open(dir.path()).unwrap());
    let events = common::workload(30, 300);
    let entries = common::entries(&events);
    let (first, rest) = entries.split_at(entries.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    let seq_of = |part: &[Entry]| part.last().unwrap().envelope.seq;

    // The first third with a writer beside the commits, then the writer stops (the service
    // stopped, or crashed).
    let writer = writer_on_its_queue(dir.path());
    commit(dir.path(), first, 37, Some(writer.sink()));
    let status = writer.stop();
    assert_eq!(status.effects_through, Some(seq_of(first)), "{status:?}");
    assert_eq!(status.replayed, 0, "{status:?}");
    // The second third journaled with no writer (its effects never queued anywhere), and a
    // snapshot in it, which the restarted writer's replica must not start beyond.
    commit(dir.path(), second, 37, None);
    let mut engine = common::engine();
    for envelope in &events[..first.len() + second.len() / 2] {
        engine.apply(envelope);
    }
    write_snapshot(dir.path(), &engine, engine.last_seq().unwrap(), 3).unwrap();
    drop(engine);

    // Restarted: behind the journal, it writes the second third's effects from the journal
    // (its replica from the journal's start, the snapshot being beyond its reach)...
    let writer = writer_on_its_queue(dir.path());
    let status = writer.wait_for(seq_of(second), WAIT);
    assert_eq!(status.effects_through, Some(seq_of(second)), "{status:?}");
    assert_eq!(
        (status.written, status.replayed, status.fallbacks),
        (second.len() as u64, second.len() as u64, 1),
        "{status:?}"
    );
    // ... then drops its replica and writes the last third from its queue.
    commit(dir.path(), third, 37, Some(writer.sink()));
    let status = writer.wait_for(seq_of(third), WAIT);
    assert_eq!(status.effects_through, Some(seq_of(third)), "{status:?}");
    assert_eq!(
        (status.written, status.replayed, status.fallbacks),
        ((second.len() + third.len()) as u64, second.len() as u64, 1),
        "{status:?}"
    );
    drop(writer);
    filters_agree_with_the_reference(dir.path(), &entries);
}
