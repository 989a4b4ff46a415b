//! The audit page's journal (issue 12): the durable journal read in pages, each event with the
//! effects it caused, filtered by account, event type, effect type and sequence range.
//!
//! Events and their effects both come from the journal (a [`solvent_store::JournalReader`]): an
//! event is acknowledged once it is durable, and its effects are written after it, off the
//! acknowledgement path, by the store's audit writer (`solvent_store::AuditWriter`), which the
//! commit thread hands the effects the engine rendered (the journal when it falls behind); every
//! accepted event's effects can be paged to, back to the first,
//! across restarts. A page says how far the written effects reach (`effects_through`): an event
//! beyond it is marked `effects_pending` (its effects are not written yet, which is not "none"),
//! and the filters on effects (account, effect type) see the events up to it. The filters are the journal's
//! own ([`solvent_store::JournalReader::audit`]): each walks an index in sequence order from
//! the page's cursor (keyset pagination), so a page costs about the same at any depth and a
//! filter reaches the whole journal, never only a recent window.

use serde::Serialize;
use solvent_store::{AuditQuery, AuditRecord, Cursor, JournalError, JournalReader};

use crate::json_text::JsonText;

/// Events one page holds at most.
pub const MAX_LIMIT: usize = 1_000;

/// One event of a page, with its effects.
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
    /// Its effects, each carrying the event's sequence number (`seq`): the link from an
    /// effect to the event that caused it. Empty also while they are pending.
    pub effects: Vec<JsonText>,
    /// Whether its effects are not written yet (it is beyond the page's `effects_through`):
    /// then `effects` is empty for that reason, not because it caused none.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub effects_pending: bool,
}

impl From<AuditRecord> for AuditEvent {
    fn from(record: AuditRecord) -> Self {
        Self {
            seq: record.envelope.seq,
            ts: record.envelope.ts.to_string(),
            event: JsonText::of(&record.envelope.event),
            client_id: record.client_id,
            effects_pending: record.effects.is_none(),
            effects: record
                .effects
                .unwrap_or_default()
                .into_iter()
                .map(JsonText::new)
                .collect(),
        }
    }
}

/// A page of the journal.
#[derive(Clone, Debug, Serialize)]
pub struct Page {
    /// The matching events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Where to continue in the same direction (as `after` when paging forward, as `before`
    /// when paging back); `None` when no further event matches.
    pub next: Option<u64>,
    /// Every event up to this sequence number has its effects written (read before the page,
    /// so it holds for every event on it); `None` when no event has yet.
    pub effects_through: Option<u64>,
}

/// A page of the journal read by `reader` for `query`: forward from [`Cursor::After`], else
/// back from [`Cursor::Before`] or the latest event; shown oldest first either way.
///
/// # Errors
/// The journal could not be read, or an entry or its effects are corrupt.
pub fn page(reader: &dyn JournalReader, query: &AuditQuery) -> Result<Page, JournalError> {
    // Read first: the reach only grows, so it holds for every event the page then reads.
    let effects_through = reader.effects_through()?;
    // One more than asked tells whether a next page exists without a second query.
    let mut records = reader.audit(&AuditQuery {
        limit: query.limit.saturating_add(1),
        ..query.clone()
    })?;
    let more = records.len() > query.limit;
    records.truncate(query.limit);
    let next = if more {
        records.last().map(|record| record.envelope.seq)
    } else {
        None
    };
    let mut events: Vec<AuditEvent> = records.into_iter().map(AuditEvent::from).collect();
    if !matches!(query.cursor, Cursor::After(_)) {
        events.reverse();
    }
    Ok(Page {
        events,
        next,
        effects_through,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use solvent_engine::event::{Envelope, Event};
    use solvent_store::{Entry, Journal as _, MemoryJournal, Outcome};

    /// Event `seq`: a deposit to `account`, with one effect of type `effect`.
    fn deposit(seq: u64, account: &str, effect: &'static str) -> Entry {
        let event: Event = serde_json::from_value(serde_json::json!({
            "type": "deposit", "account": account, "asset": "USDT", "amount": "1"
        }))
        .unwrap();
        let line = serde_json::json!({"seq": seq, "type": effect, "account": account}).to_string();
        Entry {
            envelope: Envelope {
                seq,
                ts: jiff::Timestamp::UNIX_EPOCH,
                event,
            },
            client_id: None,
            reply: None,
            outcome: Outcome {
                effects: vec![line.into()],
                effect_types: [effect].into(),
                accounts: [account.to_owned()].into(),
            },
        }
    }

    #[test]
    fn pages_go_both_ways_filtered_with_each_event_s_effects_and_where_to_continue() {
        let mut journal = MemoryJournal::default();
        // 1..=100, even events for "a", odd for "b"; every tenth caused a margin call.
        let entries: Vec<Entry> = (1..=100)
            .map(|seq| {
                let account = if seq % 2 == 0 { "a" } else { "b" };
                let effect = if seq % 10 == 0 {
                    "margin_call"
                } else {
                    "account_updated"
                };
                deposit(seq, account, effect)
            })
            .collect();
        journal.append(&entries).unwrap();
        let reader = journal.reader().unwrap();
        let query = |cursor, limit| AuditQuery {
            cursor,
            limit,
            ..AuditQuery::default()
        };
        let seqs = |page: &Page| page.events.iter().map(|e| e.seq).collect::<Vec<_>>();
        // The latest three, oldest first, with their effects, each naming its event.
        let latest = page(&*reader, &query(Cursor::Latest, 3)).unwrap();
        assert_eq!((seqs(&latest), latest.next), (vec![98, 99, 100], Some(98)));
        assert!(
            latest.events[2].effects[0]
                .as_str()
                .contains(r#""seq":100"#)
        );
        // The oldest events have theirs too.
        let first = page(&*reader, &query(Cursor::Before(4), 10)).unwrap();
        assert_eq!((seqs(&first), first.next), (vec![1, 2, 3], None));
        assert!(first.events[0].effects[0].as_str().contains(r#""seq":1"#));
        // Forward from 4, account "a", a range, an effect type.
        let mut forward = query(Cursor::After(4), 2);
        forward.account = Some("a".to_owned());
        let forward = page(&*reader, &forward).unwrap();
        assert_eq!((seqs(&forward), forward.next), (vec![6, 8], Some(8)));
        let mut calls = query(Cursor::Latest, 10);
        calls.effect_type = Some("margin_call".to_owned());
        calls.from_seq = Some(20);
        calls.to_seq = Some(60);
        let calls = page(&*reader, &calls).unwrap();
        assert_eq!((seqs(&calls), calls.next), (vec![20, 30, 40, 50, 60], None));
        // A type that never matches: an empty page, nothing to continue.
        let mut fills = query(Cursor::Latest, 10);
        fills.event_type = Some("fill".to_owned());
        let none = page(&*reader, &fills).unwrap();
        assert!(none.events.is_empty() && none.next.is_none());
    }
}
