//! The SQLite journal and the group committer: entries read back as written, order and client
//! ids are enforced, a failure stops everything after it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use solvent_store::{
    ClientRecord, Committer, CommitterConfig, Entry, Journal, JournalError, JournalReader,
    MemoryJournal, SqliteJournal,
};

#[test]
fn entries_read_back_as_written_with_their_client_ids() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(20, 50);
    let mut entries = common::entries(&events);
    entries[3].client_id = Some("order-3".to_owned());
    entries[3].reply = Some(r#"{"effects":[]}"#.to_owned());
    entries[7].client_id = Some("order-7".to_owned());
    {
        let mut journal = SqliteJournal::open(dir.path()).unwrap();
        assert_eq!(journal.last_seq().unwrap(), None);
        let (first, rest) = entries.split_at(10);
        journal.append(first).unwrap();
        journal.append(rest).unwrap();
    }
    // Reopened: everything is there, in order, equal field for field.
    let journal = SqliteJournal::open(dir.path()).unwrap();
    assert_eq!(
        journal.last_seq().unwrap(),
        Some(events.last().unwrap().seq)
    );
    let all = journal.read_after(None, usize::MAX).unwrap();
    let read = common::as_read(&entries);
    assert_eq!(all, read);
    let tail = journal
        .read_after(Some(entries[9].envelope.seq), 5)
        .unwrap();
    assert_eq!(tail, read[10..15]);
    assert_eq!(
        journal.client("order-3").unwrap(),
        Some(ClientRecord {
            seq: entries[3].envelope.seq,
            reply: Some(r#"{"effects":[]}"#.to_owned()),
        })
    );
    assert_eq!(journal.client("unknown").unwrap(), None);
    let index = journal.clients().unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index["order-7"].seq, entries[7].envelope.seq);
    // Sound, with the effects not written yet (the audit writer writes them, after the events).
    assert!(
        journal
            .check_all()
            .unwrap()
            .iter()
            .all(|problem| matches!(problem, solvent_store::JournalError::EffectsMissing { .. }))
    );
}

/// A reader opened beside the appending journal sees each append once it returns, answers client
/// ids and pages both ways; the in-memory journal's reader does the same.
#[test]
fn a_reader_beside_the_appends_sees_every_returned_append_and_pages_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = common::entries(&common::workload(5, 10));
    entries[2].client_id = Some("order-2".to_owned());
    entries[2].reply = Some(r#"{"seq":3}"#.to_owned());
    entries[12].client_id = Some("order-12".to_owned());
    let sqlite: Box<dyn Journal> = Box::new(SqliteJournal::open(dir.path()).unwrap());
    let memory: Box<dyn Journal> = Box::new(MemoryJournal::default());
    for mut journal in [sqlite, memory] {
        let reader: Box<dyn JournalReader> = journal.reader().unwrap();
        assert_eq!(reader.client("order-2").unwrap(), None);
        journal.append(&entries[..10]).unwrap();
        assert_eq!(
            reader.client("order-2").unwrap(),
            Some(ClientRecord {
                seq: entries[2].envelope.seq,
                reply: Some(r#"{"seq":3}"#.to_owned()),
            })
        );
        assert_eq!(reader.client("order-12").unwrap(), None);
        journal.append(&entries[10..]).unwrap();
        assert_eq!(
            reader.client("order-12").unwrap().map(|record| record.seq),
            Some(entries[12].envelope.seq)
        );
        let read = common::as_read(&entries);
        assert_eq!(reader.read_after(None, usize::MAX).unwrap(), read);
        let newest: Vec<Entry> = read.iter().rev().take(4).cloned().collect();
        assert_eq!(reader.read_before(None, 4).unwrap(), newest);
        let before = entries[5].envelope.seq;
        let older: Vec<Entry> = read[..5].iter().rev().take(3).cloned().collect();
        assert_eq!(reader.read_before(Some(before), 3).unwrap(), older);
        assert_eq!(
            reader.read_after(Some(entries[1].envelope.seq), 2).unwrap(),
            read[2..4]
        );
        let mut ids = Vec::new();
        reader
            .each_client_id(&mut |id| ids.push(id.to_owned()))
            .unwrap();
        ids.sort();
        assert_eq!(ids, ["order-12", "order-2"]);
    }
}

#[test]
fn an_out_of_order_entry_or_a_repeated_client_id_is_refused_and_stops_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = common::entries(&common::workload(5, 10));
    entries[0].client_id = Some("x".to_owned());
    let mut journal = SqliteJournal::open(dir.path()).unwrap();
    journal.append(&entries[..3]).unwrap();
    let again = journal.append(&entries[2..4]);
    assert!(
        matches!(again, Err(JournalError::OutOfOrder { .. })),
        "{again:?}"
    );
    // Order is checked before anything is written: the journal goes on.
    let mut repeat = entries[3].clone();
    repeat.client_id = Some("x".to_owned());
    let repeated = journal.append(&[repeat]);
    assert!(
        matches!(repeated, Err(JournalError::DuplicateClientId { ref client_id, .. }) if client_id == "x"),
        "{repeated:?}"
    );
    // A storage-level failure is final, even though this one wrote nothing.
    let after = journal.append(&entries[3..4]);
    assert!(
        matches!(after, Err(JournalError::Stopped { .. })),
        "{after:?}"
    );
    drop(journal);
    let journal = SqliteJournal::open(dir.path()).unwrap();
    assert_eq!(
        journal.read_after(None, 100).unwrap(),
        common::as_read(&entries[..3])
    );
}

#[test]
fn the_committer_groups_queued_batches_and_acknowledges_each_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let events = common::workload(50, 400);
    let entries = common::entries(&events);
    let journal = SqliteJournal::open(dir.path()).unwrap();
    let committer = Committer::start(
        journal,
        CommitterConfig {
            queue_batches: 64,
            max_entries_per_commit: 100,
        },
    );
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    for (index, batch) in entries.chunks(7).enumerate() {
        let acknowledged = Arc::clone(&acknowledged);
        committer
            .submit(batch.to_vec(), move |result| {
                acknowledged.lock().unwrap().push((index, result));
            })
            .unwrap();
    }
    let stats_before_stop = committer.stats();
    let journal = committer.stop().unwrap();
    let acknowledged = acknowledged.lock().unwrap();
    let batches = entries.chunks(7).count();
    assert_eq!(acknowledged.len(), batches);
    // Acknowledged in submission order, every one durable.
    for (position, (index, result)) in acknowledged.iter().enumerate() {
        assert_eq!(*index, position);
        assert_eq!(result, &Ok(()));
    }
    assert!(stats_before_stop.largest_commit <= 100);
    assert_eq!(
        journal.read_after(None, usize::MAX).unwrap(),
        common::as_read(&entries)
    );
}

/// A journal whose every append fails, as a disk whose sync failed.
struct FailingJournal;

impl Journal for FailingJournal {
    fn append(&mut self, _: &[Entry]) -> Result<(), JournalError> {
        Err(JournalError::Storage(
            "fsync: input/output error".to_owned(),
        ))
    }
    fn last_seq(&self) -> Result<Option<u64>, JournalError> {
        Ok(None)
    }
    fn read_after(&self, _: Option<u64>, _: usize) -> Result<Vec<Entry>, JournalError> {
        Ok(Vec::new())
    }
    fn client(&self, _: &str) -> Result<Option<ClientRecord>, JournalError> {
        Ok(None)
    }
    fn reader(&self) -> Result<Box<dyn JournalReader>, JournalError> {
        MemoryJournal::default().reader()
    }
}

#[test]
fn a_failed_commit_answers_its_batches_with_the_error_and_stops_the_committer() {
    let entries = common::entries(&common::workload(3, 4));
    let committer = Committer::start(FailingJournal, CommitterConfig::default());
    let first = committer.submit_wait(entries[..2].to_vec());
    assert!(matches!(first, Err(JournalError::Storage(_))), "{first:?}");
    assert!(committer.failure().is_some());
    let later = committer.submit_wait(entries[2..].to_vec());
    assert!(
        matches!(later, Err(JournalError::Stopped { .. })),
        "{later:?}"
    );
    assert!(committer.stop().is_err());
}

#[test]
fn the_committer_works_over_the_memory_journal_too() {
    let entries = common::entries(&common::workload(3, 10));
    let committer = Committer::start(MemoryJournal::default(), CommitterConfig::default());
    for batch in entries.chunks(4) {
        committer.submit_wait(batch.to_vec()).unwrap();
    }
    let journal = committer.stop().unwrap();
    assert_eq!(
        journal.read_after(None, usize::MAX).unwrap(),
        common::as_read(&entries)
    );
}
