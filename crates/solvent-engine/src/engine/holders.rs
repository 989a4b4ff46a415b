//! Which accounts hold what: the holder sets a price update looks up, kept in step with positions
//! and balances.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Moves account `slot` from the sets of `old` names it left to the sets of `new` names it joined.
pub(super) fn reindex_sets(
    sets: &mut BTreeMap<String, BTreeSet<u32>>,
    slot: u32,
    old: &[CompactString],
    new: &[CompactString],
) {
    for name in old.iter().filter(|name| !new.contains(name)) {
        if let Some(holders) = sets.get_mut(name.as_str()) {
            holders.remove(&slot);
        }
    }
    for name in new.iter().filter(|name| !old.contains(name)) {
        sets.entry(name.to_string()).or_default().insert(slot);
    }
}

impl Engine {
    pub(super) fn holder_of(&self, id: &str, name: &str) -> (LedgerAccount, bool) {
        let isolated = self
            .accounts
            .get(id)
            .and_then(|a| a.positions.get(name))
            .is_some_and(|p| p.isolated);
        (LedgerAccount::of_position(id, name, isolated), isolated)
    }

    /// The indices an account's figures move with, sorted: its positions' underlyings, the
    /// third coins they settle in (see [`Self::third_coin_index`]), and its unpegged coins.
    pub(super) fn indices_of<'a>(&'a self, account: &'a Account) -> Vec<&'a str> {
        let mut indices: Vec<&str> = account
            .positions
            .values()
            .map(|p| p.instrument.underlying.as_str())
            .chain(
                account
                    .positions
                    .values()
                    .filter_map(|p| self.third_coin_index(p)),
            )
            .collect();
        for (symbol, _) in self.ledger.wallet(&account.id) {
            if let Some(asset) = self.venue.assets.get(symbol)
                && asset.usd_peg.is_none()
            {
                indices.push(&asset.index);
            }
        }
        indices.sort_unstable();
        indices.dedup();
        indices
    }

    /// Re-indexes which underlyings an account is exposed to (positions and collateral) and
    /// which instruments it holds, changing only the entries that differ from its last indexing.
    pub(super) fn reindex(&mut self, id: &str) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        let underlyings = self.indices_of(account);
        // Positions are keyed by instrument name: already sorted and distinct.
        if account
            .indexed_underlyings
            .iter()
            .eq(underlyings.iter().copied())
            && account
                .indexed_instruments
                .iter()
                .eq(account.positions.keys())
        {
            return;
        }
        let underlyings: Vec<CompactString> =
            underlyings.into_iter().map(CompactString::from).collect();
        let instruments: Vec<CompactString> = account.positions.keys().cloned().collect();
        // A perpetual's or future's first holder before its first mark: from now on it is
        // banded on the mark, which the index stands in for until it comes (see `band_source`
        // and `ratio_parts`).
        let awaiting: Vec<(CompactString, CompactString)> = account
            .positions
            .values()
            .filter(|position| {
                let instrument = &position.instrument;
                self.banded_on_awaited_mark(instrument)
                    && !self
                        .instrument_holders
                        .contains_key(instrument.name.as_str())
                    && !self.market.mark.contains_key(instrument.name.as_str())
            })
            .map(|position| {
                let instrument = &position.instrument;
                (
                    CompactString::from(instrument.name.as_str()),
                    CompactString::from(instrument.underlying.as_str()),
                )
            })
            .collect();
        self.awaiting_mark.extend(awaiting);
        let Some(account) = self.accounts.get_mut(id) else {
            return;
        };
        let old_underlyings = std::mem::replace(&mut account.indexed_underlyings, underlyings);
        let old_instruments = std::mem::replace(&mut account.indexed_instruments, instruments);
        let slot = account.slot;
        reindex_sets(
            &mut self.holders,
            slot,
            &old_underlyings,
            &account.indexed_underlyings,
        );
        reindex_sets(
            &mut self.instrument_holders,
            slot,
            &old_instruments,
            &account.indexed_instruments,
        );
    }

    /// Examines every account `source` can move: the holders of an underlying (which hold every
    /// contract on it), or of the contract whose mark it is.
    pub(super) fn revalue_holders(&mut self, source: Source<'_>, effects: &mut Vec<Effect>) {
        let holders = match source {
            Source::Index(underlying) => self.holders.get(underlying),
            Source::Mark(name) | Source::Ratio { contract: name, .. } => {
                self.instrument_holders.get(name)
            }
        };
        let holders = self.ids_of(holders.into_iter().flatten());
        for id in holders {
            self.evaluate(&id, Figures::Unreported, effects);
        }
    }

    /// The ids of account `slots`, in the order of the ids (the order accounts are examined in).
    pub(super) fn ids_of<'a>(&self, slots: impl Iterator<Item = &'a u32>) -> Vec<CompactString> {
        let mut ids: Vec<CompactString> = slots
            .filter_map(|slot| self.accounts.by_slot(*slot).map(|a| a.id.clone()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
