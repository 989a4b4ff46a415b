//! The audit page's journal (issue 12): the durable journal read in pages, newest or oldest
//! first, filtered by event type and account, each event with the effects it caused.
//!
//! Events come from the journal itself (a [`solvent_store::JournalReader`]), so every accepted
//! event can be paged to, back to the first. A page examines at most [`MAX_SCANNED`] entries:
//! a filter that matches rarely returns what it found with the cursor to continue from, never
//! a scan of the whole journal in one request. Effects are not journaled (they are the engine's
//! deterministic answer to the events, and written out would multiply the journal's bytes by
//! tens); the effects of the last [`KEEP_EVENTS`] events (at most [`KEEP_EFFECTS`] effects) are
//! kept in memory and attached to their events, and an older event says its effects are no
//! longer held (`solvent journal replay` recomputes them).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use solvent_store::{Entry, JournalError, JournalReader};

use crate::json_text::JsonText;

/// Journal entries one page of the API examines at most.
pub const MAX_SCANNED: usize = 20_000;

/// Entries read from the journal at a time while a page is filled.
const CHUNK: usize = 1_000;

/// Events whose effects are kept in memory.
pub const KEEP_EVENTS: usize = 50_000;
/// Effects kept in memory over all the events kept (the oldest events go first).
pub const KEEP_EFFECTS: usize = 250_000;

/// One accepted event and its effects.
#[derive(Clone, Debug, Serialize)]
pub struct Recorded {
    /// Its sequence number.
    pub seq: u64,
    /// Its time (RFC 3339).
    pub ts: String,
    /// The event as `solvent replay` reads it.
    pub event: JsonText,
    /// Its effects, as `solvent replay` writes them.
    pub effects: Vec<JsonText>,
}

impl Recorded {
    /// Whether the event or one of its effects names `account` (as the account, a counterparty
    /// or a side of a transfer).
    #[must_use]
    pub fn concerns(&self, account: &str) -> bool {
        std::iter::once(&self.event)
            .chain(&self.effects)
            .any(|text| names(text, account))
    }

    /// The event's type.
    #[must_use]
    pub fn kind(&self) -> String {
        kind_of(&self.event)
    }
}

/// The names an event or effect gives (read from its text when a query asks).
#[derive(serde::Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    account: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    counterparty: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    from: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<std::borrow::Cow<'a, str>>,
}

fn names(text: &JsonText, account: &str) -> bool {
    let Ok(names) = serde_json::from_str::<Names<'_>>(text.as_str()) else {
        return false;
    };
    [names.account, names.counterparty, names.from, names.to]
        .into_iter()
        .flatten()
        .any(|name| {
            name == account
                || name
                    .split_once("/isolated/")
                    .is_some_and(|(owner, _)| owner == account)
        })
}

/// The recent events, oldest first.
#[derive(Default)]
pub struct Recent {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    events: VecDeque<Arc<Recorded>>,
    effects: usize,
}

/// What a query asks for.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Only events after this sequence number (oldest first from there); `None`: the latest.
    pub after: Option<u64>,
    /// Only events before this sequence number (the latest `limit` of them).
    pub before: Option<u64>,
    /// At most this many.
    pub limit: usize,
    /// Only events concerning this account.
    pub account: Option<String>,
    /// Only events of this type.
    pub kind: Option<String>,
    /// Journal entries examined at most ([`MAX_SCANNED`] for the API).
    pub max_scanned: usize,
}

impl Recent {
    /// Keeps `events`, forgetting the oldest beyond the bounds.
    pub fn record(&self, events: Vec<Recorded>) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for event in events {
            kept.effects += event.effects.len();
            kept.events.push_back(Arc::new(event));
        }
        while kept.events.len() > KEEP_EVENTS
            || (kept.effects > KEEP_EFFECTS && kept.events.len() > 1)
        {
            if let Some(old) = kept.events.pop_front() {
                kept.effects -= old.effects.len();
            }
        }
    }

    /// The oldest sequence number kept, if any.
    #[must_use]
    pub fn oldest(&self) -> Option<u64> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .events
            .front()
            .map(|event| event.seq)
    }
}

/// One event of a page, as the journal holds it, with its effects when still held.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    /// Its sequence number.
    pub seq: u64,
    /// Its time (RFC 3339).
    pub ts: String,
    /// The event as `solvent replay` reads it.
    pub event: JsonText,
    /// The client's id for it, if it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its effects, each carrying the event's sequence number; `None` when the event is older
    /// than the effects held in memory.
    pub effects: Option<Vec<JsonText>>,
}

/// A page of the journal.
#[derive(Clone, Debug, Serialize)]
pub struct Page {
    /// The matching events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Where to continue in the same direction (as `after` when paging forward, as `before`
    /// when paging back); `None` when the scan reached the journal's end (or its start).
    pub next: Option<u64>,
    /// Journal entries examined for this page.
    pub scanned: usize,
    /// The oldest event whose effects are held in memory.
    pub effects_from: Option<u64>,
}

impl Recent {
    /// The kept event `seq`, if it is still held.
    fn get(&self, seq: u64) -> Option<Arc<Recorded>> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = kept.events.partition_point(|event| event.seq < seq);
        kept.events
            .get(index)
            .filter(|event| event.seq == seq)
            .cloned()
    }
}

/// A page of the journal read by `reader` for `query`, with the effects `recent` holds: forward
/// from `after` when it is given, else back from `before` (or the latest).
///
/// # Errors
/// The journal could not be read, or an entry is corrupt.
pub fn page(
    reader: &dyn JournalReader,
    recent: &Recent,
    query: &Query,
) -> Result<Page, JournalError> {
    let forward = query.after.is_some();
    let mut cursor = if forward { query.after } else { query.before };
    let mut events = Vec::new();
    let mut scanned = 0;
    let mut next = None;
    'scan: loop {
        let chunk = if forward {
            reader.read_after(cursor, CHUNK)?
        } else {
            reader.read_before(cursor, CHUNK)?
        };
        if chunk.is_empty() {
            break;
        }
        for entry in chunk {
            scanned += 1;
            cursor = Some(entry.envelope.seq);
            if let Some(event) = matching(entry, recent, query) {
                events.push(event);
            }
            if events.len() >= query.limit || scanned >= query.max_scanned.max(1) {
                next = cursor;
                break 'scan;
            }
        }
    }
    if !forward {
        events.reverse();
    }
    Ok(Page {
        events,
        next,
        scanned,
        effects_from: recent.oldest(),
    })
}

/// The entry as a page shows it, if it passes the query's filters (the account filter looks at
/// the event and at its effects when they are held).
fn matching(entry: Entry, recent: &Recent, query: &Query) -> Option<AuditEvent> {
    let event = JsonText::of(&entry.envelope.event);
    if let Some(kind) = &query.kind
        && kind_of(&event) != *kind
    {
        return None;
    }
    let held = recent.get(entry.envelope.seq);
    if let Some(account) = &query.account
        && !names(&event, account)
        && !held
            .as_ref()
            .is_some_and(|held| held.effects.iter().any(|effect| names(effect, account)))
    {
        return None;
    }
    Some(AuditEvent {
        seq: entry.envelope.seq,
        ts: entry.envelope.ts.to_string(),
        event,
        client_id: entry.client_id,
        effects: held.map(|held| held.effects.clone()),
    })
}

fn kind_of(text: &JsonText) -> String {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Kind<'_>>(text.as_str())
        .ok()
        .and_then(|kind| kind.kind)
        .map(std::borrow::Cow::into_owned)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use solvent_engine::event::{Envelope, Event};
    use solvent_store::{Journal as _, MemoryJournal};

    fn deposit(seq: u64, account: &str) -> Entry {
        let event: Event = serde_json::from_value(serde_json::json!({
            "type": "deposit", "account": account, "asset": "USDT", "amount": "1"
        }))
        .unwrap();
        Entry {
            envelope: Envelope {
                seq,
                ts: jiff::Timestamp::UNIX_EPOCH,
                event,
            },
            client_id: None,
            reply: None,
        }
    }

    fn recorded(seq: u64, account: &str, effects: usize) -> Recorded {
        Recorded {
            seq,
            ts: "1970-01-01T00:00:00Z".to_owned(),
            event: JsonText::of(&serde_json::json!({"type": "deposit", "account": account})),
            effects: (0..effects)
                .map(|_| {
                    JsonText::of(
                        &serde_json::json!({"seq": seq, "type": "account_updated", "account": account}),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn pages_come_from_the_journal_both_ways_filtered_bounded_with_the_effects_held() {
        let mut journal = MemoryJournal::default();
        // 1..=100, even events for "a", odd for "b"; the effects of 91..=100 held in memory.
        let entries: Vec<Entry> = (1..=100)
            .map(|seq| deposit(seq, if seq % 2 == 0 { "a" } else { "b" }))
            .collect();
        journal.append(&entries).unwrap();
        let recent = Recent::default();
        recent.record(
            (91..=100)
                .map(|seq| recorded(seq, if seq % 2 == 0 { "a" } else { "b" }, 1))
                .collect(),
        );
        let reader = journal.reader().unwrap();
        let query = |after, before, limit, account: Option<&str>, max_scanned| Query {
            after,
            before,
            limit,
            account: account.map(str::to_owned),
            kind: None,
            max_scanned,
        };
        let seqs = |page: &Page| page.events.iter().map(|e| e.seq).collect::<Vec<_>>();
        // The latest three, oldest first, with their effects, each naming its event.
        let latest = page(&*reader, &recent, &query(None, None, 3, None, 1_000)).unwrap();
        assert_eq!(seqs(&latest), [98, 99, 100]);
        assert_eq!(latest.next, Some(98));
        let effects = latest.events[2].effects.as_ref().unwrap();
        assert!(effects[0].as_str().contains(r#""seq":100"#));
        assert_eq!(latest.effects_from, Some(91));
        // Back past the effects held: the events are still there, their effects not.
        let older = page(&*reader, &recent, &query(None, Some(12), 3, None, 1_000)).unwrap();
        assert_eq!(seqs(&older), [9, 10, 11]);
        assert!(older.events.iter().all(|e| e.effects.is_none()));
        // Forward from 4, account "a": 6, 8; to the start and the end: no cursor.
        let forward = page(
            &*reader,
            &recent,
            &query(Some(4), None, 2, Some("a"), 1_000),
        )
        .unwrap();
        assert_eq!(seqs(&forward), [6, 8]);
        let first = page(&*reader, &recent, &query(None, Some(4), 10, None, 1_000)).unwrap();
        assert_eq!((seqs(&first), first.next), (vec![1, 2, 3], None));
        // A scan bound: 5 entries examined, 2 matches, and where to continue.
        let bounded = page(&*reader, &recent, &query(None, None, 10, Some("a"), 5)).unwrap();
        assert_eq!(seqs(&bounded), [96, 98, 100]);
        assert_eq!((bounded.scanned, bounded.next), (5, Some(96)));
        // A type that never matches scans to the bound and says so.
        let mut fills = query(None, None, 10, None, 50);
        fills.kind = Some("fill".to_owned());
        let none = page(&*reader, &recent, &fills).unwrap();
        assert!(none.events.is_empty());
        assert_eq!((none.scanned, none.next), (50, Some(51)));
    }

    #[test]
    fn the_effects_held_stay_within_their_bounds() {
        let recent = Recent::default();
        recent.record((1..=10).map(|seq| recorded(seq, "a", 1)).collect());
        assert_eq!(recent.oldest(), Some(1));
        recent.record(vec![recorded(11, "a", KEEP_EFFECTS)]);
        assert_eq!(recent.oldest(), Some(11));
    }
}
