//! Recovery = newest valid snapshot + the journal's tail, with the uninterrupted run's state
//! hash; and the corruption suite: every kind of damage is detected and reported, never taken
//! in silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use solvent_engine::config::EngineConfig;
use solvent_engine::event::Envelope;
use solvent_store::{
    Journal, JournalError, RecoverOptions, SNAPSHOT_DIR, SqliteJournal, StoreError, init_data_dir,
    list_snapshots, read_venue, recover, recover_with, write_snapshot,
};

/// Journals `events` in batches of 100 while applying them, with a snapshot after the batches
/// ending at each of `snapshot_after` (event counts, multiples of 100).
fn build(dir: &Path, events: &[Envelope], snapshot_after: &[usize]) {
    init_data_dir(dir, common::VENUE).unwrap();
    let mut journal = SqliteJournal::open(dir).unwrap();
    let mut engine = common::engine();
    let mut applied = 0;
    for batch in events.chunks(100) {
        journal
            .append(&common::applied(&mut engine, batch))
            .unwrap();
        applied += batch.len();
        if snapshot_after.contains(&applied) {
            let seq = batch.last().unwrap().seq;
            write_snapshot(dir, &engine, seq, 3).unwrap();
        }
    }
}

fn venue_of(dir: &Path) -> solvent_core::venue::Venue {
    read_venue(dir).unwrap().0
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    list_snapshots(dir).unwrap().unwrap_or_default()
}

#[test]
fn recovery_from_the_newest_snapshot_gives_the_uninterrupted_hash_and_goes_on_alike() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(200, 1_500);
    let counts = common::effect_counts(&events);
    // The workload reaches margin calls and liquidations, not only account updates.
    assert!(
        counts.get("Liquidation").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    assert!(
        counts.get("MarginCall").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    let (first, second) = events.split_at(1_200);
    build(dir.path(), first, &[300, 600, 900, 1_200]);
    // Four snapshots were taken; the newest three are kept.
    assert_eq!(snapshots(dir.path()).len(), 3);

    let recovered = recover(dir.path(), venue_of(dir.path()), EngineConfig::default()).unwrap();
    let report = &recovered.report;
    assert_eq!(
        report.snapshot.as_ref().map(|s| s.seq),
        Some(first[1_199].seq)
    );
    assert_eq!(report.replayed, 0);
    assert!(report.skipped.is_empty());
    assert_eq!(report.state_hash, common::uninterrupted_hash(first));

    // The service goes on: more events, then a crash (no snapshot), then recovery again.
    let mut journal = recovered.journal;
    let mut engine = recovered.engine;
    for batch in second.chunks(50) {
        journal
            .append(&common::applied(&mut engine, batch))
            .unwrap();
    }
    drop(journal);
    let again = recover(dir.path(), venue_of(dir.path()), EngineConfig::default()).unwrap();
    assert_eq!(again.report.replayed, second.len() as u64);
    assert_eq!(again.report.state_hash, engine.state_hash());
    assert_eq!(again.report.state_hash, common::uninterrupted_hash(&events));
    assert_eq!(again.report.last_seq, Some(events.last().unwrap().seq));
}

#[test]
fn without_a_snapshot_directory_the_whole_journal_is_replayed_and_the_fact_reported() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(100, 500);
    build(dir.path(), &events, &[300]);
    fs::remove_dir_all(dir.path().join(SNAPSHOT_DIR)).unwrap();
    let recovered = recover(dir.path(), venue_of(dir.path()), EngineConfig::default()).unwrap();
    assert!(recovered.report.snapshot_dir_missing);
    assert_eq!(recovered.report.snapshot, None);
    assert_eq!(recovered.report.replayed, events.len() as u64);
    assert_eq!(
        recovered.report.state_hash,
        common::uninterrupted_hash(&events)
    );
}

/// Flips one byte of a file at `offset` from its end.
fn flip(path: &Path, offset_from_end: usize) {
    let mut bytes = fs::read(path).unwrap();
    let at = bytes.len() - offset_from_end;
    bytes[at] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupt_or_truncated_snapshot_is_skipped_and_reported_for_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(100, 600);
    build(dir.path(), &events, &[300, 500, 600]);
    let listed = snapshots(dir.path());
    assert_eq!(listed.len(), 3);
    // The newest: one byte flipped in the body. The next: cut short.
    flip(&listed[0], 10);
    let bytes = fs::read(&listed[1]).unwrap();
    fs::write(&listed[1], &bytes[..bytes.len() / 2]).unwrap();

    let recovered = recover(dir.path(), venue_of(dir.path()), EngineConfig::default()).unwrap();
    let report = &recovered.report;
    assert_eq!(report.skipped.len(), 2);
    assert_eq!(report.skipped[0].path, listed[0]);
    assert!(report.skipped[0].problem.contains("checksum"), "{report:?}");
    assert!(
        report.skipped[1].problem.contains("truncated"),
        "{report:?}"
    );
    assert_eq!(report.snapshot.as_ref().map(|s| &s.path), Some(&listed[2]));
    assert_eq!(report.replayed, (events.len() - 300) as u64);
    assert_eq!(report.state_hash, common::uninterrupted_hash(&events));
}

#[test]
fn a_torn_last_row_stops_recovery_naming_it_unless_the_operator_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(50, 300);
    build(dir.path(), &events, &[200]);
    let last = events.last().unwrap().seq;
    // The last row loses its final bytes, as a torn write would leave it.
    common::damage(dir.path(), last, |body| body.truncate(body.len() - 3));
    let refused = recover(dir.path(), venue_of(dir.path()), EngineConfig::default());
    match refused {
        Err(StoreError::Journal(JournalError::CorruptEntry { seq, .. })) => assert_eq!(seq, last),
        other => panic!("{other:?}"),
    }
    // Nothing was cut by the refusal.
    assert_eq!(
        SqliteJournal::open(dir.path()).unwrap().last_seq().unwrap(),
        Some(last)
    );

    let options = RecoverOptions {
        truncate_torn_tail: true,
    };
    let recovered = recover_with(
        dir.path(),
        venue_of(dir.path()),
        EngineConfig::default(),
        options,
    )
    .unwrap();
    let cut = recovered.report.truncated.clone().unwrap();
    assert_eq!((cut.from_seq, cut.removed), (last, 1));
    assert_eq!(cut.last_seq_before, Some(last));
    assert_eq!(recovered.report.last_seq, Some(last - 1));
    assert_eq!(
        recovered.report.state_hash,
        common::uninterrupted_hash(&events[..events.len() - 1])
    );
    // The journal takes the next entry where the cut left it.
    let mut journal = recovered.journal;
    journal
        .append(&common::entries(&events)[events.len() - 1..])
        .unwrap();
}

#[test]
fn a_flipped_byte_inside_the_journal_is_named_and_cutting_reports_everything_removed() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(50, 300);
    build(dir.path(), &events, &[]);
    let bad = events[123].seq;
    common::damage(dir.path(), bad, |body| body[3] ^= 0x01);
    let journal = SqliteJournal::open(dir.path()).unwrap();
    let problems = journal.check_all().unwrap();
    assert!(
        matches!(
            problems.as_slice(),
            [JournalError::CorruptEntry { seq, .. }, JournalError::EffectsMissing { .. }] if *seq == bad
        ),
        "{problems:?}"
    );
    drop(journal);
    match recover(dir.path(), venue_of(dir.path()), EngineConfig::default()) {
        Err(StoreError::Journal(JournalError::CorruptEntry { seq, .. })) => assert_eq!(seq, bad),
        other => panic!("{other:?}"),
    }
    let options = RecoverOptions {
        truncate_torn_tail: true,
    };
    let recovered = recover_with(
        dir.path(),
        venue_of(dir.path()),
        EngineConfig::default(),
        options,
    )
    .unwrap();
    let cut = recovered.report.truncated.unwrap();
    assert_eq!(cut.from_seq, bad);
    assert_eq!(cut.removed, (events.len() - 123) as u64);
    assert_eq!(
        recovered.report.state_hash,
        common::uninterrupted_hash(&events[..123])
    );
}

#[test]
fn a_snapshot_newer_than_the_journal_is_an_error_unless_cut_then_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(50, 300);
    build(dir.path(), &events, &[200, 300]);
    let kept = events[249].seq;
    // The journal loses its last 50 entries (as if its file were replaced by an older copy).
    common::raw(dir.path())
        .execute(
            "DELETE FROM events WHERE seq > ?1",
            [i64::try_from(kept).unwrap()],
        )
        .unwrap();
    match recover(dir.path(), venue_of(dir.path()), EngineConfig::default()) {
        Err(StoreError::JournalBehindSnapshot {
            snapshot_seq,
            journal_last,
            ..
        }) => {
            assert_eq!(snapshot_seq, events[299].seq);
            assert_eq!(journal_last, Some(kept));
        }
        other => panic!("{other:?}"),
    }
    let options = RecoverOptions {
        truncate_torn_tail: true,
    };
    let recovered = recover_with(
        dir.path(),
        venue_of(dir.path()),
        EngineConfig::default(),
        options,
    )
    .unwrap();
    let cut = recovered.report.truncated.unwrap();
    assert_eq!(cut.snapshots_set_aside.len(), 1);
    assert_eq!(
        recovered.report.snapshot.map(|s| s.seq),
        Some(events[199].seq)
    );
    assert_eq!(snapshots(dir.path()).len(), 1);
    assert_eq!(
        recovered.report.state_hash,
        common::uninterrupted_hash(&events[..250])
    );
}

#[test]
fn the_data_directory_keeps_its_venue() {
    let dir = tempfile::tempdir().unwrap();
    init_data_dir(dir.path(), common::VENUE).unwrap();
    init_data_dir(dir.path(), common::VENUE).unwrap();
    let other = common::VENUE.replace("name = ", "name = \"other\"\n# was: ");
    assert!(matches!(
        init_data_dir(dir.path(), &other),
        Err(StoreError::Venue { .. })
    ));
    assert_eq!(read_venue(dir.path()).unwrap().1, common::VENUE);
}

#[test]
fn an_engine_restored_midway_gives_the_same_effects_for_the_rest_of_the_workload() {
    let events = common::workload(300, 2_000);
    for cut in [events.len() / 4, events.len() / 2, events.len() - 700] {
        let mut original = common::engine();
        for event in &events[..cut] {
            original.apply(event);
        }
        let bytes = original.snapshot().unwrap();
        let mut restored = solvent_engine::Engine::restore(&bytes).unwrap();
        assert_eq!(restored.state_hash(), original.state_hash());
        for event in &events[cut..] {
            assert_eq!(
                original.apply(event),
                restored.apply(event),
                "seq {}",
                event.seq
            );
        }
        assert_eq!(restored.state_hash(), original.state_hash());
        assert_eq!(restored.events(), original.events());
    }
}

#[test]
fn a_crash_image_with_a_torn_log_recovers_to_a_clean_prefix() {
    let live = tempfile::tempdir().unwrap();
    let events = common::workload(50, 400);
    init_data_dir(live.path(), common::VENUE).unwrap();
    let mut journal = SqliteJournal::open(live.path()).unwrap();
    for batch in common::entries(&events).chunks(100) {
        journal.append(batch).unwrap();
    }
    // The files as a crash would leave them (the journal still open: the log not yet
    // checkpointed), with the log's last write torn part way through.
    let image = tempfile::tempdir().unwrap();
    for name in ["journal.sqlite", "journal.sqlite-wal", "venue.toml"] {
        fs::copy(live.path().join(name), image.path().join(name)).unwrap();
    }
    drop(journal);
    let log = image.path().join("journal.sqlite-wal");
    let length = fs::metadata(&log).unwrap().len();
    assert!(length > 0, "the log holds the last commits");
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(length - 100)
        .unwrap();

    let recovered = recover(
        image.path(),
        venue_of(image.path()),
        EngineConfig::default(),
    )
    .unwrap();
    let last = recovered.report.last_seq.unwrap();
    // SQLite drops the torn commit whole (its frames fail the log's checksums): what remains is
    // the journal up to the commit before, never a part of a batch.
    let kept = events.iter().position(|e| e.seq == last).unwrap() + 1;
    assert_eq!(kept % 100, 0, "whole batches only");
    assert!(kept < events.len());
    assert_eq!(
        recovered.report.state_hash,
        common::uninterrupted_hash(&events[..kept])
    );
}
