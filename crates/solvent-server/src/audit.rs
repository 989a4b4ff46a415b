//! The recent journal as the audit page reads it: each accepted event with the effects it
//! caused, kept in memory for the last [`KEEP_EVENTS`] events (at most [`KEEP_EFFECTS`] effects
//! in all). The durable journal holds every event; `solvent journal` reads all of it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::json_text::JsonText;

/// Events kept.
pub const KEEP_EVENTS: usize = 50_000;
/// Effects kept over all the events kept (the oldest events go first).
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
        #[derive(serde::Deserialize)]
        struct Kind<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<std::borrow::Cow<'a, str>>,
        }
        serde_json::from_str::<Kind<'_>>(self.event.as_str())
            .ok()
            .and_then(|kind| kind.kind)
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default()
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

    /// The events matching `query`, oldest first.
    #[must_use]
    pub fn query(&self, query: &Query) -> Vec<Arc<Recorded>> {
        let events: Vec<Arc<Recorded>> = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .events
            .iter()
            .cloned()
            .collect();
        let matches = |event: &&Arc<Recorded>| {
            query.after.is_none_or(|after| event.seq > after)
                && query.before.is_none_or(|before| event.seq < before)
                && query
                    .kind
                    .as_deref()
                    .is_none_or(|kind| event.kind() == kind)
                && query
                    .account
                    .as_deref()
                    .is_none_or(|account| event.concerns(account))
        };
        if query.after.is_some() {
            events
                .iter()
                .filter(matches)
                .take(query.limit)
                .cloned()
                .collect()
        } else {
            let mut latest: Vec<Arc<Recorded>> = events
                .iter()
                .rev()
                .filter(matches)
                .take(query.limit)
                .cloned()
                .collect();
            latest.reverse();
            latest
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, account: &str, effects: usize) -> Recorded {
        Recorded {
            seq,
            ts: "2025-10-01T00:00:00Z".to_owned(),
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
    fn queries_filter_and_page_both_ways_and_the_bounds_hold() {
        let recent = Recent::default();
        recent.record(
            (1..=10)
                .map(|seq| event(seq, if seq % 2 == 0 { "a" } else { "b" }, 1))
                .collect(),
        );
        let seqs =
            |query: &Query| -> Vec<u64> { recent.query(query).iter().map(|e| e.seq).collect() };
        assert_eq!(
            seqs(&Query {
                limit: 3,
                ..Query::default()
            }),
            [8, 9, 10]
        );
        assert_eq!(
            seqs(&Query {
                limit: 2,
                after: Some(4),
                ..Query::default()
            }),
            [5, 6]
        );
        assert_eq!(
            seqs(&Query {
                limit: 2,
                before: Some(4),
                ..Query::default()
            }),
            [2, 3]
        );
        assert_eq!(
            seqs(&Query {
                limit: 10,
                account: Some("a".to_owned()),
                ..Query::default()
            }),
            [2, 4, 6, 8, 10]
        );
        assert!(
            seqs(&Query {
                limit: 10,
                kind: Some("fill".to_owned()),
                ..Query::default()
            })
            .is_empty()
        );
        recent.record(vec![event(11, "a", KEEP_EFFECTS)]);
        assert_eq!(recent.oldest(), Some(11));
    }
}
