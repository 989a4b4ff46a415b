//! What each WebSocket subscriber must receive, worked out from the HTTP replies: every effect
//! of every accepted event goes to the channels the service routes it to (`core::channels` on the
//! server side, restated here from the channel list of DESIGN.md 10), in event order and, within
//! an event, in effect order.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use solvent_engine::ledger::{CLEARING, EXTERNAL, FEES, INSURANCE_FUND};

/// The channels a subscriber of the benchmark listens to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chan {
    /// `account.{id}` of its own account.
    Account,
    /// `margin_calls`.
    MarginCalls,
    /// `liquidations`.
    Liquidations,
}

impl Chan {
    /// The channel of a feed message's name, for a subscriber of `account`.
    pub fn of_name(name: &str) -> Option<Self> {
        match name {
            "margin_calls" => Some(Self::MarginCalls),
            "liquidations" => Some(Self::Liquidations),
            _ if name.starts_with("account.") => Some(Self::Account),
            _ => None,
        }
    }
}

/// One message as compared: the event's sequence number, the effect's type, the channel.
pub type Item = (u64, Box<str>, Chan);

/// An expected message with its place: event, effect index, channel order within the effect.
type Placed = (u64, u32, u8, Box<str>, Chan);

/// The messages expected so far.
#[derive(Default)]
pub struct Expected {
    /// Account id -> subscriber.
    watch: HashMap<String, usize>,
    /// Per subscriber, the messages of its own account.
    own: Vec<Vec<Placed>>,
    /// The messages of `margin_calls` and `liquidations`, which every subscriber gets.
    shared: Vec<Placed>,
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    results: Vec<Result<'a>>,
}

#[derive(Deserialize)]
struct Result<'a> {
    seq: Option<u64>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    effects: Vec<EffectRef<'a>>,
}

#[derive(Deserialize)]
struct EffectRef<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    account: Option<Cow<'a, str>>,
    #[serde(borrow)]
    counterparty: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
}

/// The user account behind a ledger account's name.
fn user_account(ledger_name: &str) -> Option<&str> {
    let id = ledger_name
        .split_once("/isolated/")
        .map_or(ledger_name, |(id, _)| id);
    (![EXTERNAL, FEES, INSURANCE_FUND, CLEARING].contains(&id)).then_some(id)
}

/// Channels of one effect: the accounts named, and whether it goes to `margin_calls` or
/// `liquidations`, in the order the service publishes them.
fn routes<'a>(effect: &'a EffectRef<'a>) -> (Vec<&'a str>, Option<Chan>) {
    let account = effect.account.as_deref();
    match effect.kind.as_ref() {
        "account_updated" | "state_changed" => (account.into_iter().collect(), None),
        "margin_call" => (account.into_iter().collect(), Some(Chan::MarginCalls)),
        "liquidation" | "liquidation_deferred" | "deficit_beyond_fund" => {
            (account.into_iter().collect(), Some(Chan::Liquidations))
        }
        "adl" => (
            account
                .into_iter()
                .chain(effect.counterparty.as_deref())
                .collect(),
            Some(Chan::Liquidations),
        ),
        "transfer_applied" => {
            let mut names: Vec<&str> = [effect.from.as_deref(), effect.to.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(user_account)
                .collect();
            names.dedup();
            (names, None)
        }
        _ => (Vec::new(), None),
    }
}

impl Expected {
    /// Subscribers numbered by the accounts they watch.
    #[must_use]
    pub fn new(watched: &[String]) -> Self {
        Self {
            watch: watched
                .iter()
                .enumerate()
                .map(|(n, id)| (id.clone(), n))
                .collect(),
            own: vec![Vec::new(); watched.len()],
            shared: Vec::new(),
        }
    }

    /// Takes in one reply of `POST /v1/events`; the number of accepted events.
    ///
    /// # Errors
    /// The reply is not the documented shape.
    pub fn take(&mut self, body: &[u8]) -> std::result::Result<usize, String> {
        let reply: Reply<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let mut accepted = 0;
        for result in &reply.results {
            let Some(seq) = result.seq else { continue };
            if result.status != "accepted" {
                continue;
            }
            accepted += 1;
            for (index, effect) in result.effects.iter().enumerate() {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                let (accounts, book) = routes(effect);
                let mut order = 0_u8;
                for id in accounts {
                    if let Some(&subscriber) = self.watch.get(id) {
                        self.own[subscriber].push((
                            seq,
                            index,
                            order,
                            effect.kind.as_ref().into(),
                            Chan::Account,
                        ));
                    }
                    order += 1;
                }
                if let Some(chan) = book {
                    self.shared
                        .push((seq, index, order, effect.kind.as_ref().into(), chan));
                }
            }
        }
        Ok(accepted)
    }

    /// What subscriber `n` must receive, in order.
    #[must_use]
    pub fn of(&self, n: usize) -> Vec<Item> {
        let mut all: Vec<&Placed> = self.own[n].iter().chain(&self.shared).collect();
        all.sort_by_key(|a| (a.0, a.1, a.2));
        all.into_iter()
            .map(|(seq, _, _, kind, chan)| (*seq, kind.clone(), *chan))
            .collect()
    }

    /// Messages of `margin_calls` and `liquidations` expected (each subscriber gets them all).
    #[must_use]
    pub fn shared_len(&self) -> usize {
        self.shared.len()
    }

    /// Messages of the watched accounts' own channels expected, over all subscribers.
    #[must_use]
    pub fn own_len(&self) -> usize {
        self.own.iter().map(Vec::len).sum()
    }
}

/// How one subscriber's messages compare with what it should have received.
#[derive(Default, Debug, Clone, Copy)]
pub struct Comparison {
    /// Expected and received, in order.
    pub matched: usize,
    /// Expected but never received (gaps).
    pub missing: usize,
    /// Received but not expected.
    pub unexpected: usize,
    /// Received out of order (compared with the expected order).
    pub out_of_order: usize,
}

/// Compares `received` with `expected`, both in arrival / event order.
#[must_use]
pub fn compare(expected: &[Item], received: &[Item]) -> Comparison {
    if expected == received {
        return Comparison {
            matched: expected.len(),
            ..Comparison::default()
        };
    }
    let mut counts: HashMap<&Item, isize> = HashMap::new();
    for item in expected {
        *counts.entry(item).or_default() += 1;
    }
    for item in received {
        *counts.entry(item).or_default() -= 1;
    }
    let missing: isize = counts.values().filter(|c| **c > 0).sum();
    let unexpected: isize = -counts.values().filter(|c| **c < 0).sum::<isize>();
    let out_of_order = received
        .windows(2)
        .filter(|pair| pair[0].0 > pair[1].0)
        .count();
    Comparison {
        matched: received.len().saturating_sub(unexpected.unsigned_abs()),
        missing: missing.unsigned_abs(),
        unexpected: unexpected.unsigned_abs(),
        out_of_order,
    }
}
