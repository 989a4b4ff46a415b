//! Each event's effects kept in the journal beside it (issue 12): read back as written for every
//! event however old, filtered by the journal's indexes as the in-memory reference filters the
//! same entries, cut with their events, checked by `check_all`; a journal of schema version 1 is
//! refused by name until migrated, and the migration records the effects a replay gives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use solvent_store::{
    AuditQuery, Cursor, Entry, Journal, JournalError, MemoryJournal, SqliteJournal, init_data_dir,
    migrate,
};

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
    filters_agree_with_the_reference(dir.path(), &entries);
}

/// The same with sequence numbers 20,011 apart, so the account index's pages cross many of its
/// buckets (2^16 sequence numbers each) in both directions.
#[test]
fn an_account_s_events_are_found_across_the_buckets_of_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry> = common::entries(&common::workload(30, 300))
        .into_iter()
        .map(|mut entry| {
            entry.envelope.seq *= 20_011;
            entry
        })
        .collect();
    let mut journal = SqliteJournal::open(dir.path()).unwrap();
    for batch in entries.chunks(37) {
        journal.append(batch).unwrap();
    }
    drop(journal);
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
    for (record, entry) in all.iter().zip(entries) {
        assert_eq!(record.envelope, entry.envelope);
        assert_eq!(
            record.effects, entry.outcome.effects,
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
    let last = entries.last().unwrap().envelope.seq;
    let mut journal = SqliteJournal::open(dir.path()).unwrap();
    journal.truncate_from(last - 9).unwrap();
    assert!(journal.check_all().unwrap().is_empty());
    let reader = journal.reader().unwrap();
    let latest = reader
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(seqs(&latest), [last - 10]);
    // The journal takes the cut events again, effects and all, exactly once.
    journal.append(&entries[entries.len() - 10..]).unwrap();
    assert!(journal.check_all().unwrap().is_empty());
    drop(journal);

    // A disk flips a byte of one event's effects, and loses another's.
    let connection = common::raw(dir.path());
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
/// no effects, `format` 1.
fn as_version_1(dir: &std::path::Path) {
    let connection = common::raw(dir);
    connection
        .execute_batch(
            "DROP TABLE outcomes; DROP TABLE effect_types; DROP TABLE event_accounts;
             DELETE FROM meta WHERE key = 'outcome_checksum';
             UPDATE meta SET value = '1' WHERE key = 'format';",
        )
        .unwrap();
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
    for (record, entry) in all.iter().zip(&entries) {
        assert_eq!(
            record.effects, entry.outcome.effects,
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
    assert_eq!((again.from_format.as_str(), again.events), ("2", 0));
}
