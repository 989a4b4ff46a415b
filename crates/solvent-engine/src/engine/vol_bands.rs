//! Which option holders a change of a volatility smile re-examines.
//!
//! An account holding options is banded in volatility as it is in price: its figures are
//! computed at the current smiles, and the band sizing (`engine/bands.rs`) gives how far every
//! volatility of the underlying may move before its state can change (its *tolerance*). The
//! account is registered against a snapshot of the underlying's smiles (an *epoch*) with that
//! tolerance. A smile change measures, for every live epoch, how far today's smiles are from the
//! snapshot's (the largest volatility difference at any strike of any expiry,
//! [`smile_distance`]); a volatility anywhere on the surface has moved by at most that much
//! (the surface is 1-Lipschitz in its smiles, see `solvent_pricing::surface::smile_distance`),
//! so only the holders whose tolerance that distance reaches are examined.
//!
//! Measuring from the snapshot, not summing each change's size, matters because smiles are
//! re-quoted up and down: the sum of `n` moves grows as `n`, their net as about `sqrt(n)`.
//!
//! Each smile change costs one smile comparison per live epoch; at most [`MAX_EPOCHS`] are kept
//! per underlying, the oldest merged into the newest beyond that (its holders' tolerance reduced
//! by the distance between the two snapshots).

#[allow(clippy::wildcard_imports)]
use super::*;

use std::collections::VecDeque;

use solvent_pricing::surface::smile_distance;

use super::bands::{BAND_KEY_MARGIN, BandKey, band_key};

/// Snapshots of an underlying's smiles kept at once: each smile change compares today's smile
/// of the changed expiry with every snapshot's, so this bounds that cost.
pub(super) const MAX_EPOCHS: usize = 32;

/// The share of a holder's tolerance that today's distance from the newest snapshot may use
/// for the holder to be registered there (its tolerance reduced by that distance) rather than
/// against a new snapshot: fewer snapshots, at the price of at most this share of tolerance.
const REUSE_SHARE: f64 = 0.25;

/// The option holders of one underlying, registered against snapshots of its smiles.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct VolWatch {
    /// Smile changes of the underlying so far (an epoch is named by the count at its snapshot).
    changes: u64,
    /// Live epochs, oldest first.
    epochs: VecDeque<VolEpoch>,
}

/// The underlying's smiles at one time and the holders whose tolerance is counted from them.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct VolEpoch {
    /// [`VolWatch::changes`] when the snapshot was taken.
    at_change: u64,
    /// The smiles then, by expiry, in the market's order.
    smiles: Vec<(String, Smile)>,
    /// Per expiry (as in `smiles`), the distance of today's smile from the snapshot's.
    distances: Vec<f64>,
    /// The largest of `distances`, or infinite once the epoch is retired (too old to keep
    /// comparing, or before a change no distance bounds).
    distance: f64,
    /// Holders by the key of their tolerance, and slot.
    holders: BTreeSet<(BandKey, u32)>,
}

/// How far a smile moved from `before` to `after` (see [`smile_distance`]).
fn distance(before: &Smile, after: &Smile) -> f64 {
    smile_distance(
        (&before.strikes, &before.vols),
        (&after.strikes, &after.vols),
    )
}

impl VolEpoch {
    fn reached(&self) -> impl Iterator<Item = &u32> {
        self.holders
            .range(..=(band_key(self.distance), u32::MAX))
            .map(|(_, slot)| slot)
    }
}

impl VolWatch {
    /// Where a holder with `tolerance` is registered: the newest epoch when today's smiles are
    /// within [`REUSE_SHARE`] of the tolerance from its snapshot, with the tolerance less that
    /// distance (if `d(snapshot, later) <= t - d(snapshot, today)` then `d(today, later) <= t`),
    /// else a new epoch of today's smiles (named `changes`) with the whole tolerance. Returns
    /// the epoch and the key of the tolerance registered.
    fn placement(&self, tolerance: f64) -> (u64, BandKey) {
        match self.epochs.back() {
            Some(newest)
                if newest.at_change == self.changes
                    || newest.distance <= tolerance * REUSE_SHARE =>
            {
                let distance = newest.distance * (1.0 + BAND_KEY_MARGIN);
                let left = (tolerance - distance) * (1.0 - BAND_KEY_MARGIN);
                (newest.at_change, band_key(left))
            }
            _ => (self.changes, band_key(tolerance * (1.0 - BAND_KEY_MARGIN))),
        }
    }

    /// Registers `slot` at `placement` (see [`Self::placement`]), taking a snapshot of today's
    /// smiles (`smiles`, the underlying's) when it names a new epoch.
    fn register(
        &mut self,
        smiles: &IndexMap<String, Smile>,
        (at_change, key): (u64, BandKey),
        slot: u32,
    ) {
        if self.epochs.back().is_none_or(|e| e.at_change != at_change) {
            self.epochs.push_back(VolEpoch {
                at_change,
                smiles: smiles
                    .iter()
                    .map(|(expiry, smile)| (expiry.clone(), smile.clone()))
                    .collect(),
                distances: vec![0.0; smiles.len()],
                distance: 0.0,
                holders: BTreeSet::new(),
            });
        }
        if let Some(epoch) = self.epochs.back_mut() {
            epoch.holders.insert((key, slot));
        }
    }

    /// Beyond [`MAX_EPOCHS`] live epochs, merges the oldest live one into the newest: each
    /// holder's tolerance is reduced by the distance between the two snapshots (if
    /// `d(old, later) <= t` is needed and `d(old, later) <= d(old, new) + d(new, later)`,
    /// `t - d(old, new)` from the newest suffices). Into the newest, not the next: re-quotes
    /// that go up and down cost a holder their net move over the epochs merged, not the sum
    /// of the moves between each. Returns the holders moved, with the epoch and key they are
    /// registered at now.
    fn merge_oldest(&mut self) -> Vec<(u32, u64, BandKey)> {
        let live = self
            .epochs
            .iter()
            .filter(|e| e.distance.is_finite())
            .count();
        let Some(oldest) = self.epochs.iter().position(|e| e.distance.is_finite()) else {
            return Vec::new();
        };
        if live <= MAX_EPOCHS || oldest + 1 >= self.epochs.len() {
            return Vec::new();
        }
        let Some(merged) = self.epochs.remove(oldest) else {
            return Vec::new();
        };
        let Some(next) = self.epochs.back_mut() else {
            return Vec::new();
        };
        let apart = merged
            .smiles
            .iter()
            .map(|(expiry, before)| {
                next.smiles
                    .iter()
                    .find(|(e, _)| e == expiry)
                    .map_or(f64::INFINITY, |(_, after)| distance(before, after))
            })
            .fold(0.0, f64::max)
            * (1.0 + BAND_KEY_MARGIN);
        let mut moved = Vec::with_capacity(merged.holders.len());
        for (key, slot) in merged.holders {
            let left = (f64::from_bits(key) - apart) * (1.0 - BAND_KEY_MARGIN);
            // A negative or undefined tolerance is none: examined at the next change.
            let key = band_key(if left.is_nan() { 0.0 } else { left });
            next.holders.insert((key, slot));
            moved.push((slot, next.at_change, key));
        }
        moved
    }

    /// Removes a registration; an epoch left without holders is dropped (unless it is today's).
    fn unregister(&mut self, at_change: u64, key: BandKey, slot: u32) {
        let Ok(place) = self
            .epochs
            .binary_search_by_key(&at_change, |epoch| epoch.at_change)
        else {
            return;
        };
        let Some(epoch) = self.epochs.get_mut(place) else {
            return;
        };
        epoch.holders.remove(&(key, slot));
        if epoch.holders.is_empty() && at_change != self.changes {
            self.epochs.remove(place);
        }
    }

    /// After the smile of `expiry` changed to `smile` (an expiry every epoch knows): the
    /// holders whose tolerance the distance from their epoch now reaches.
    fn changed(&mut self, expiry: &str, smile: &Smile) -> Vec<u32> {
        self.changes += 1;
        let mut reached = Vec::new();
        for epoch in &mut self.epochs {
            if epoch.distance.is_finite() {
                // Today's distance, not the largest ever: between changes the smiles stand
                // still, so a holder within its tolerance now has kept its state.
                epoch.distance = match epoch.smiles.iter().position(|(e, _)| e == expiry) {
                    Some(place) => {
                        let before = &epoch.smiles[place].1;
                        epoch.distances[place] = distance(before, smile);
                        epoch.distances.iter().copied().fold(0.0, f64::max)
                    }
                    None => f64::INFINITY,
                };
            }
            reached.extend(epoch.reached().copied());
        }
        reached
    }
}

impl Engine {
    /// Registers where an account holding options must be examined again as the smiles change:
    /// when the smiles of one of its options' underlyings have moved by `tolerance` (narrowed
    /// by the key margin; 0 in danger or without a bound: at the next change) from today's.
    pub(super) fn set_vol_limits(&mut self, id: &str, tolerance: f64) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        let mut underlyings: Vec<CompactString> = account
            .positions
            .values()
            .filter(|p| matches!(p.instrument.terms, Terms::Option { .. }))
            .map(|p| p.instrument.underlying.as_str().into())
            .collect();
        underlyings.sort_unstable();
        underlyings.dedup();
        let placements: Vec<(CompactString, u64, BandKey)> = underlyings
            .into_iter()
            .map(|underlying| {
                let (at_change, key) = self.vol_watch.get(underlying.as_str()).map_or_else(
                    || (0, band_key(tolerance * (1.0 - BAND_KEY_MARGIN))),
                    |watch| watch.placement(tolerance),
                );
                (underlying, at_change, key)
            })
            .collect();
        if placements == account.vol_limits {
            return;
        }
        let slot = account.slot;
        let Some(account) = self.accounts.monitoring_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut account.vol_limits, placements.clone());
        for (underlying, at_change, key) in old {
            if let Some(watch) = self.vol_watch.get_mut(underlying.as_str()) {
                watch.unregister(at_change, key, slot);
            }
        }
        let empty = IndexMap::new();
        for (underlying, at_change, key) in placements {
            let smiles = self.market.vol.get(underlying.as_str()).unwrap_or(&empty);
            let watch = self.vol_watch.entry(underlying.to_string()).or_default();
            watch.register(smiles, (at_change, key), slot);
            let moved = watch.merge_oldest();
            for (moved_slot, at_change, key) in moved {
                let Some(id) = self.accounts.by_slot(moved_slot).map(|a| a.id.clone()) else {
                    continue;
                };
                if let Some(account) = self.accounts.monitoring_mut(&id)
                    && let Some(limit) = account
                        .vol_limits
                        .iter_mut()
                        .find(|(u, ..)| *u == underlying)
                {
                    *limit = (underlying.clone(), at_change, key);
                }
            }
        }
    }

    /// After the smile of `underlying`'s `expiry` changed (an expiry it already had): the
    /// option holders the change takes beyond their tolerance, those whose bands on the
    /// underlying expired, and those not banded on it yet, in id order.
    pub(super) fn vol_crossed(&mut self, underlying: &str, expiry: &str) -> Vec<CompactString> {
        let smile = self
            .market
            .vol
            .get(underlying)
            .and_then(|smiles| smiles.get(expiry));
        let mut crossed: Vec<u32> = match (smile, self.vol_watch.get_mut(underlying)) {
            (Some(smile), Some(watch)) => watch.changed(expiry, smile),
            _ => Vec::new(),
        };
        let now_ms = self.now.as_millisecond();
        if let Some(bands) = self.bands.index.get(underlying) {
            crossed.extend(bands.by_expiry.range(..(now_ms, 0)).map(|(_, slot)| *slot));
        }
        crossed.extend(self.unbanded.get(underlying).into_iter().flatten());
        self.ids_of(crossed.iter())
    }

    /// A smile change no distance bounds (a new expiry re-weights the surface's interpolation
    /// in time): every epoch of the underlying is retired. Its option holders are all examined
    /// by the change and registered again against today's smiles; any left behind is
    /// examined at every later change.
    pub(super) fn vol_reset(&mut self, underlying: &str) {
        if let Some(watch) = self.vol_watch.get_mut(underlying) {
            watch.changes += 1;
            for epoch in &mut watch.epochs {
                epoch.distance = f64::INFINITY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One expiry, `E`, flat at `vol`.
    fn smiles(vol: f64) -> IndexMap<String, Smile> {
        let mut smiles = IndexMap::new();
        smiles.insert("E".to_owned(), flat(vol));
        smiles
    }

    fn flat(vol: f64) -> Smile {
        Smile {
            strikes: vec![100.0],
            vols: vec![vol],
        }
    }

    fn tolerance(key: BandKey) -> f64 {
        f64::from_bits(key)
    }

    /// A holder with 5 points of tolerance: a 2-point move leaves it, 6 points reach it; then
    /// back within 2 points of its snapshot, nothing does (today's distance, not the largest).
    #[test]
    fn a_change_reaches_the_holders_whose_tolerance_todays_distance_uses_up() {
        let mut watch = VolWatch::default();
        let placement = watch.placement(0.05);
        watch.register(&smiles(0.50), placement, 1);
        assert!(watch.changed("E", &flat(0.52)).is_empty());
        assert_eq!(watch.changed("E", &flat(0.56)), vec![1]);
        assert!(watch.changed("E", &flat(0.52)).is_empty());
    }

    /// Registered after a 1-point move with 8 points of tolerance: within a quarter of it, so
    /// against the same snapshot with 7 points left.
    #[test]
    fn a_holder_registered_near_the_newest_snapshot_is_charged_its_distance() {
        let mut watch = VolWatch::default();
        let first = watch.placement(0.08);
        watch.register(&smiles(0.50), first, 1);
        assert!(watch.changed("E", &flat(0.51)).is_empty());
        let (at_change, key) = watch.placement(0.08);
        assert_eq!(at_change, first.0, "the same snapshot");
        assert!((tolerance(key) - 0.07).abs() < 1e-12 && tolerance(key) < 0.07);
        // A tolerance of 2 points is not charged half of it: a snapshot of today's smiles.
        assert_eq!(watch.placement(0.02).0, watch.changes);
    }

    /// Beyond `MAX_EPOCHS` snapshots the oldest is merged into the newest, its holders'
    /// tolerance less the distance between the two: a holder of 0.3 points registered at 50.0,
    /// then one after each re-quote between 50.1 and 50.2 (each a snapshot of its own); holder 0
    /// keeps 0.2 points from the newest snapshot (50.1), so a smile at 50.31 reaches it, as it
    /// must (0.31 points from where it was examined), and no other holder.
    #[test]
    fn the_oldest_snapshot_is_merged_with_its_holders_charged_the_distance() {
        let mut watch = VolWatch::default();
        let last = u32::try_from(MAX_EPOCHS).unwrap_or(u32::MAX);
        for slot in 0..=last {
            let vol = if slot == 0 {
                0.500
            } else {
                0.501 + 0.001 * f64::from(slot % 2 == 1)
            };
            if slot > 0 {
                assert!(watch.changed("E", &flat(vol)).is_empty());
            }
            let placement = watch.placement(0.003);
            watch.register(&smiles(vol), placement, slot);
        }
        let moved = watch.merge_oldest();
        assert_eq!(moved.len(), 1);
        let (slot, at_change, key) = moved[0];
        assert_eq!(
            (slot, at_change),
            (0, u64::from(last)),
            "holder 0 now counts from the newest snapshot"
        );
        assert!((tolerance(key) - 0.002).abs() < 1e-12 && tolerance(key) < 0.002);
        assert_eq!(watch.epochs.len(), MAX_EPOCHS);
        assert_eq!(watch.changed("E", &flat(0.5031)), vec![0]);
    }
}
