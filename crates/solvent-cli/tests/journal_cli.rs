//! End-to-end tests of `solvent journal import|verify|export|replay` on a data directory made
//! from the demo stream (`examples/events-demo.jsonl`): the export reads back as the stream, the
//! two replays agree, and damage to an entry or a snapshot makes `verify` fail naming it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test harness: a failed expectation is a failed test"
)]

mod support;

use std::fs;

use support::{Scratch, path, run};

fn imported(label: &str) -> (Scratch, String) {
    let scratch = Scratch::new(label);
    let dir = scratch.path("data");
    let (code, stdout, stderr) = run(&[
        "journal",
        "import",
        &path("examples/events-demo.jsonl"),
        &dir,
        "--batch",
        "3",
        "--snapshot-every",
        "5",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("imported"), "{stdout}");
    (scratch, dir)
}

#[test]
fn an_imported_journal_verifies_exports_the_stream_and_replays_to_recoverys_hash() {
    let (scratch, dir) = imported("journal-ok");
    let (code, stdout, stderr) = run(&["journal", "verify", &dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("verified: no problem found"), "{stdout}");
    assert!(
        stdout.contains("checksum and restored hash good"),
        "{stdout}"
    );

    let out = scratch.path("back.jsonl");
    let (code, _, stderr) = run(&["journal", "export", &dir, "--out", &out]);
    assert_eq!(code, 0, "{stderr}");
    let demo = fs::read_to_string(path("examples/events-demo.jsonl")).unwrap();
    let back = fs::read_to_string(&out).unwrap();
    // Lines whose sequence does not increase are left out (the engine refuses them anyway).
    let lines = demo.lines().filter(|line| !line.trim().is_empty()).count();
    assert!(back.lines().count() < lines && back.lines().count() > lines - 5);
    // The export replays to the same state as the original stream.
    let hash = |file: &str| {
        let (code, stdout, stderr) = run(&["replay", file, "--json"]);
        assert_eq!(code, 0, "{stderr}");
        let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        summary["state_hash"].as_str().unwrap().to_owned()
    };
    assert_eq!(hash(&out), hash(&path("examples/events-demo.jsonl")));

    let (code, stdout, stderr) = run(&["journal", "replay", &dir]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.ends_with("equal\n"), "{stdout}");
    assert!(stdout.contains(&hash(&out)), "{stdout}");
}

#[test]
fn verify_fails_naming_a_damaged_entry_and_a_damaged_snapshot() {
    let (_scratch, dir) = imported("journal-damaged");
    // One byte of entry 10's stored body flipped, its checksum left as it was.
    let journal = rusqlite::Connection::open(format!("{dir}/journal.sqlite")).unwrap();
    let mut body: Vec<u8> = journal
        .query_row("SELECT body FROM events WHERE seq = 10", [], |row| {
            row.get(0)
        })
        .unwrap();
    body[5] ^= 0x20;
    journal
        .execute("UPDATE events SET body = ?1 WHERE seq = 10", [body])
        .unwrap();
    drop(journal);
    let snapshots: Vec<_> = fs::read_dir(format!("{dir}/snapshots"))
        .unwrap()
        .map(|item| item.unwrap().path())
        .collect();
    let snapshot = &snapshots[0];
    let mut bytes = fs::read(snapshot).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(snapshot, bytes).unwrap();

    let (code, stdout, stderr) = run(&["journal", "verify", &dir]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("problem(s) found"), "{stderr}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(stderr.contains(&snapshot.display().to_string()), "{stderr}");
    assert!(stderr.contains("journal entry 10 is corrupt"), "{stderr}");
    // Export stops at the bad entry rather than skip it.
    let (code, _, stderr) = run(&["journal", "export", &dir]);
    assert_eq!(code, 2);
    assert!(stderr.contains("journal entry 10 is corrupt"), "{stderr}");
}

/// Issue 12: each event's effects are journaled with it. `export --effects` writes them as
/// `solvent replay --out` would from the exported events, byte for byte; `verify` compares them
/// with its replay and names an entry whose recorded effects differ.
#[test]
fn the_exported_effects_are_the_replay_s_and_verify_names_an_entry_whose_effects_differ() {
    let (scratch, dir) = imported("journal-effects");
    let events = scratch.path("events.jsonl");
    let effects = scratch.path("effects.jsonl");
    let (code, stdout, stderr) = run(&[
        "journal",
        "export",
        &dir,
        "--out",
        &events,
        "--effects",
        &effects,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("effects to"), "{stdout}");
    let replayed = scratch.path("replayed.jsonl");
    let (code, _, stderr) = run(&["replay", &events, "--out", &replayed]);
    assert_eq!(code, 0, "{stderr}");
    let recorded = fs::read_to_string(&effects).unwrap();
    assert!(recorded.lines().count() > 10, "{recorded}");
    assert_eq!(recorded, fs::read_to_string(&replayed).unwrap());
    let (code, stdout, _) = run(&["journal", "verify", &dir]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("effects      recorded once per entry"),
        "{stdout}"
    );

    // A crash between the events' commits and their effects' write (the audit writer was
    // behind): verify names the events whose effects are not written yet, export refuses, and
    // migrate writes them, once.
    let audit = rusqlite::Connection::open(format!("{dir}/audit.sqlite")).unwrap();
    audit
        .execute_batch(
            "DELETE FROM outcomes WHERE seq > 5; DELETE FROM effect_types WHERE seq > 5; DELETE FROM event_accounts WHERE seq > 5;",
        )
        .unwrap();
    drop(audit);
    let (code, _, stderr) = run(&["journal", "verify", &dir]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("effects written up to sequence Some(5)")
            && stderr.contains("not written yet"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&[
        "journal",
        "export",
        &dir,
        "--out",
        &events,
        "--effects",
        &effects,
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("entry 6: its effects are not written yet"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(&["journal", "migrate", &dir]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("already schema version 3"), "{stdout}");
    let (code, stdout, stderr) = run(&["journal", "verify", &dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, _, stderr) = run(&[
        "journal",
        "export",
        &dir,
        "--out",
        &events,
        "--effects",
        &effects,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fs::read_to_string(&effects).unwrap(), recorded);

    // Entry 7's effects replaced by entry 8's, checksum and all (a bug, not a torn write).
    let journal = rusqlite::Connection::open(format!("{dir}/audit.sqlite")).unwrap();
    journal
        .execute_batch(
            "UPDATE outcomes SET effects = (SELECT effects FROM outcomes WHERE seq = 8) WHERE seq = 7;",
        )
        .unwrap();
    drop(journal);
    let (code, _, stderr) = run(&["journal", "verify", &dir]);
    assert_eq!(code, 2);
    // The checksum covers the sequence number: the moved row fails it, named.
    assert!(stderr.contains("journal entry 7 is corrupt"), "{stderr}");
}

/// A data directory written by the previous schema (version 1: events without effects) is
/// refused by every command, naming the version, until `solvent journal migrate` records the
/// effects; then it verifies.
#[test]
fn a_schema_version_1_journal_is_refused_naming_it_and_verifies_once_migrated() {
    let (_scratch, dir) = imported("journal-version-1");
    let journal = rusqlite::Connection::open(format!("{dir}/journal.sqlite")).unwrap();
    journal
        .execute_batch(
            "DELETE FROM meta WHERE key = 'outcome_checksum';
             UPDATE meta SET value = '1' WHERE key = 'format';",
        )
        .unwrap();
    drop(journal);
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{dir}/audit.sqlite{suffix}"));
    }
    for command in ["verify", "export", "replay"] {
        let (code, _, stderr) = run(&["journal", command, &dir]);
        assert_ne!(code, 0, "{command}");
        assert!(
            stderr.contains("schema version 1, this build reads version 3")
                && stderr.contains("solvent journal migrate"),
            "{command}: {stderr}"
        );
    }
    let (code, stdout, stderr) = run(&["journal", "migrate", &dir]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("schema version 1 -> 3"), "{stdout}");
    let (code, stdout, stderr) = run(&["journal", "verify", &dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = run(&["journal", "migrate", &dir]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("effects of 0 events were missing"),
        "{stdout}"
    );
}
