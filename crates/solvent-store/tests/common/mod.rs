//! A seeded workload for the store's tests: the engine's population generator (deposits,
//! leverage settings, fills of linear and inverse perpetuals), then a price walk with falls deep
//! enough to call margins and liquidate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use solvent_core::money::Price;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::event::{Envelope, Event, IndexPrice};
use solvent_engine::population::{PopulationParams, generate};
use solvent_store::Entry;

/// The shipped default venue's text.
pub const VENUE: &str = include_str!("../../../../venues/default.toml");

pub fn venue() -> Venue {
    Venue::from_toml("venues/default.toml", VENUE).unwrap()
}

pub fn engine() -> Engine {
    Engine::new(venue(), EngineConfig::default())
}

/// `accounts` drawn accounts, then `ticks` index updates walking BTC and ETH (a seeded random
/// walk with a crash in the middle).
pub fn workload(accounts: usize, ticks: usize) -> Vec<Envelope> {
    let params = PopulationParams {
        accounts,
        ..PopulationParams::default()
    };
    let population = generate(&venue(), &params).unwrap();
    let mut events = population.events;
    let first = events.last().map_or(0, |e| e.seq) + 1;
    let mut ts = events.last().map_or(Timestamp::UNIX_EPOCH, |e| e.ts);
    let mut prices = [("BTC", 93_859.71_f64), ("ETH", 3_224.99_f64)];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for (seq, tick) in (first..).zip(0..ticks) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        #[allow(clippy::cast_precision_loss)]
        let uniform = (state >> 11) as f64 / (1_u64 << 53) as f64;
        let (underlying, price) = &mut prices[tick % 2];
        // Up to 1.5% a tick (inside the jump guard), drifting down through the middle third.
        let drift = if tick > ticks / 3 && tick < 2 * ticks / 3 {
            -0.006
        } else {
            0.0
        };
        *price *= 1.0 + drift + (uniform - 0.5) * 0.018;
        ts = ts.checked_add(SignedDuration::from_millis(250)).unwrap();
        let cents = Decimal::from_f64_retain(*price).unwrap().round_dp(2);
        events.push(Envelope {
            seq,
            ts,
            event: Event::IndexPrice(IndexPrice {
                underlying: (*underlying).to_owned(),
                price: Price(cents),
                source: None,
            }),
        });
    }
    events
}

/// The events as the service journals them: each with the effects an engine applying them in
/// order gives.
pub fn entries(events: &[Envelope]) -> Vec<Entry> {
    applied(&mut engine(), events)
}

/// `batch` applied to `engine`, as entries with the effects it gave (the service's order: apply,
/// then journal the effects with the events).
pub fn applied(engine: &mut Engine, batch: &[Envelope]) -> Vec<Entry> {
    batch
        .iter()
        .map(|envelope| {
            let effects = engine.apply(envelope);
            Entry {
                envelope: envelope.clone(),
                client_id: None,
                reply: None,
                outcome: solvent_store::Outcome::render(envelope.seq, &envelope.event, &effects),
            }
        })
        .collect()
}

/// The entries as a reader of entries gives them back: without their effects (those are read
/// with `JournalReader::audit`).
pub fn as_read(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|entry| Entry {
            outcome: solvent_store::Outcome::default(),
            ..entry.clone()
        })
        .collect()
}

/// The state hash of an uninterrupted in-memory run of `events`.
pub fn uninterrupted_hash(events: &[Envelope]) -> String {
    let mut engine = engine();
    for event in events {
        engine.apply(event);
    }
    engine.state_hash()
}

/// Opens `sql` on the journal file directly (to damage it as a disk would).
pub fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(solvent_store::JOURNAL_FILE)).unwrap()
}

/// Rewrites the stored body of entry `seq` through `change` (as a disk error would, leaving the
/// checksum as it was).
pub fn damage(dir: &Path, seq: u64, change: impl FnOnce(&mut Vec<u8>)) {
    let connection = raw(dir);
    let key = i64::try_from(seq).unwrap();
    let mut body: Vec<u8> = connection
        .query_row("SELECT body FROM events WHERE seq = ?1", [key], |row| {
            row.get(0)
        })
        .unwrap();
    change(&mut body);
    connection
        .execute(
            "UPDATE events SET body = ?1 WHERE seq = ?2",
            rusqlite::params![body, key],
        )
        .unwrap();
}

/// How many effects of each type an uninterrupted run of `events` gives (to check the workload
/// reaches liquidations).
pub fn effect_counts(events: &[Envelope]) -> std::collections::BTreeMap<String, usize> {
    let mut engine = engine();
    let mut counts = std::collections::BTreeMap::new();
    for event in events {
        for effect in engine.apply(event) {
            let name = format!("{effect:?}");
            let kind = name
                .split([' ', '(', '{'])
                .next()
                .unwrap_or_default()
                .to_owned();
            *counts.entry(kind).or_insert(0) += 1;
        }
    }
    counts
}
