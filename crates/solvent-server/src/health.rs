//! Each account's health over time, for the account page (issue 12): a bounded ring of points
//! per account, downsampled as it fills.
//!
//! An account keeps at most [`POINTS_PER_ACCOUNT`] points (about 100 bytes each, so about
//! 6.4 KB per account that has moved: 64 MB for a book of 10,000 busy accounts). When its ring is
//! full, every second point of its older half is dropped before the new one is added: the
//! newest updates stay at full resolution while the older end thins out, so the chart spans the
//! account's whole life (since the service started) at a coarser grain the further back it goes.
//! The journal holds every update; this is only what the chart draws.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::Serialize;
use solvent_core::money::Amount;
use solvent_engine::effect::Effect;
use solvent_risk::AccountState;

/// Points kept per account.
pub const POINTS_PER_ACCOUNT: usize = 64;

/// An account's figures after one update (an `account_updated` effect).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The event that caused the update.
    pub seq: u64,
    /// The event's time.
    pub ts: Timestamp,
    /// Health (`None`: no requirement).
    pub health: Option<f64>,
    /// State after the update.
    pub state: AccountState,
    /// Equity, in the account's settlement asset.
    pub equity: Amount,
    /// Initial margin requirement.
    pub initial_margin: Amount,
    /// Maintenance margin requirement.
    pub maintenance_margin: Amount,
}

/// Every account's ring.
#[derive(Default)]
pub struct History {
    accounts: Mutex<HashMap<String, Vec<Point>>>,
}

impl History {
    /// Adds the accounts' figures of durable effects (`account_updated`; the others are passed
    /// over), each with its event's sequence number and time, in order.
    pub fn record<'e>(&self, effects: impl IntoIterator<Item = (u64, Timestamp, &'e Effect)>) {
        let mut updates = effects
            .into_iter()
            .filter_map(|(seq, ts, effect)| match effect {
                Effect::AccountUpdated {
                    account,
                    equity,
                    initial_margin,
                    maintenance_margin,
                    health,
                    state,
                } => Some((
                    account.as_str(),
                    Point {
                        seq,
                        ts,
                        health: *health,
                        state: *state,
                        equity: *equity,
                        initial_margin: *initial_margin,
                        maintenance_margin: *maintenance_margin,
                    },
                )),
                _ => None,
            });
        // Locked only when there is something to add (a batch of prices may have nothing).
        let Some(first) = updates.next() else {
            return;
        };
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (account, point) in std::iter::once(first).chain(updates) {
            // A known account's ring is found by its id as it is: an id is copied once, into
            // the map, when the account first moves.
            match accounts.get_mut(account) {
                Some(ring) => push(ring, point),
                None => {
                    accounts.insert(account.to_owned(), vec![point]);
                }
            }
        }
    }

    /// The last `limit` points of `account`, oldest first.
    #[must_use]
    pub fn points(&self, account: &str, limit: usize) -> Vec<Point> {
        let accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        accounts.get(account).map_or_else(Vec::new, |ring| {
            ring[ring.len().saturating_sub(limit)..].to_vec()
        })
    }
}

/// Adds `point` to a ring, thinning the older half first when it is full.
fn push(ring: &mut Vec<Point>, point: Point) {
    if ring.len() >= POINTS_PER_ACCOUNT {
        let older_half = ring.len() / 2;
        let mut index = 0;
        // Every odd position of the older half goes; the newer half is kept whole.
        ring.retain(|_| {
            let keep = index >= older_half || index % 2 == 0;
            index += 1;
            keep
        });
    }
    ring.push(point);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use rust_decimal::Decimal;

    fn updated(account: &str, equity: i64) -> Effect {
        Effect::AccountUpdated {
            account: account.to_owned(),
            equity: Amount(Decimal::from(equity)),
            initial_margin: Amount(Decimal::from(3)),
            maintenance_margin: Amount(Decimal::from(2)),
            health: Some(2.0),
            state: AccountState::Healthy,
        }
    }

    #[test]
    fn each_account_update_becomes_a_point_of_its_account_and_other_effects_none() {
        let history = History::default();
        let ts = Timestamp::from_second(1_700_000_000).unwrap();
        let effects = [
            (7, ts, updated("a", 10)),
            (
                7,
                ts,
                Effect::MarginCall {
                    account: "a".to_owned(),
                    health: Some(1.1),
                    deposit: Amount(Decimal::from(5)),
                    asset: "USDT".to_owned(),
                },
            ),
            (8, ts, updated("b", 20)),
            (9, ts, updated("a", 30)),
        ];
        history.record(effects.iter().map(|(seq, ts, effect)| (*seq, *ts, effect)));
        let a = history.points("a", usize::MAX);
        assert_eq!(
            a.iter().map(|p| (p.seq, p.equity)).collect::<Vec<_>>(),
            [
                (7, Amount(Decimal::from(10))),
                (9, Amount(Decimal::from(30)))
            ]
        );
        assert_eq!(a[0].ts, ts);
        assert_eq!(a[0].initial_margin, Amount(Decimal::from(3)));
        assert_eq!(a[0].maintenance_margin, Amount(Decimal::from(2)));
        assert_eq!(a[0].health, Some(2.0));
        assert_eq!(history.points("b", usize::MAX).len(), 1);
    }

    #[test]
    fn a_ring_stays_bounded_keeps_the_newest_whole_and_thins_the_oldest() {
        let history = History::default();
        let updates = 10_000_u64;
        let update = updated("a", 1);
        history.record((1..=updates).map(|seq| (seq, Timestamp::UNIX_EPOCH, &update)));
        let points = history.points("a", usize::MAX);
        assert!(points.len() <= POINTS_PER_ACCOUNT);
        assert!(points.len() > POINTS_PER_ACCOUNT / 2);
        let seqs: Vec<u64> = points.iter().map(|p| p.seq).collect();
        assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
        // The newest quarter of the ring is every update, one after the other.
        let newest = &seqs[seqs.len() - POINTS_PER_ACCOUNT / 4..];
        assert!(
            newest.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "{seqs:?}"
        );
        assert_eq!(*newest.last().unwrap(), updates);
        // The oldest point kept reaches back over most of the history.
        assert!(seqs[0] < updates / 10, "{seqs:?}");
        assert_eq!(history.points("a", 3).len(), 3);
        assert!(history.points("b", 3).is_empty());
    }
}
