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
    /// Adds durable updates, in order.
    pub fn record(&self, points: Vec<(String, Point)>) {
        if points.is_empty() {
            return;
        }
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (account, point) in points {
            push(accounts.entry(account).or_default(), point);
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
    use super::*;

    fn point(seq: u64) -> Point {
        Point {
            seq,
            ts: Timestamp::UNIX_EPOCH,
            health: Some(2.0),
            state: AccountState::Healthy,
            equity: Amount::ZERO,
            initial_margin: Amount::ZERO,
            maintenance_margin: Amount::ZERO,
        }
    }

    #[test]
    fn a_ring_stays_bounded_keeps_the_newest_whole_and_thins_the_oldest() {
        let history = History::default();
        let updates = 10_000_u64;
        history.record(
            (1..=updates)
                .map(|seq| ("a".to_owned(), point(seq)))
                .collect(),
        );
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
