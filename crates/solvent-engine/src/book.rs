//! The engine's accounts: found by id in constant time (every event looks its accounts up
//! several times), listed in id order (hashes, reports and scans that must not depend on when
//! an account was opened).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use compact_str::CompactString;
use foldhash::fast::FixedState;

use crate::engine::Account;

/// Accounts by id. Each keeps the slot it was opened in; none is ever removed.
///
/// Each account is shared, copied on its first change after the book was cloned: a clone (the
/// service's snapshot copy, taken on the engine's thread between two batches) counts references
/// instead of copying every account's positions, and the accounts changed while the copy lives
/// are copied then, one at a time, as they change.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AccountBook {
    /// Accounts by slot.
    accounts: Vec<Arc<Account>>,
    /// Slot by id, for lookups. A fixed hasher: the map is never iterated, so the seed could not
    /// change any result, and a fixed one keeps runs identical to the byte.
    #[serde(with = "crate::engine::snapshot::sorted_map")]
    slots: HashMap<CompactString, u32, FixedState>,
    /// Slot by id, in id order, for listing.
    order: BTreeMap<CompactString, u32>,
    /// The slots of the accounts written (but through [`Self::monitoring_mut`]) or touched since
    /// the last [`Self::take_changed`] (repeats allowed): what the engine's ADL index files
    /// again (see `engine/adl_index.rs`). A log of the current event, never snapshotted.
    #[serde(skip)]
    changed: Vec<u32>,
}

impl AccountBook {
    /// The account `id`.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Account> {
        let slot = *self.slots.get(id)?;
        self.accounts.get(slot as usize).map(Arc::as_ref)
    }

    /// The account `id`, to change.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Account> {
        let slot = *self.slots.get(id)?;
        self.changed.push(slot);
        self.accounts.get_mut(slot as usize).map(Arc::make_mut)
    }

    /// The account `id`, to change only what monitoring keeps of it (its state, margin call,
    /// breach count, bands, watch lists and preparation). The ADL index reads none of these, only
    /// positions and the wallet, so the write is not logged for filing the account again (see
    /// [`Self::take_changed`]): a price update re-bands hundreds of accounts whose filings it
    /// leaves as they are.
    pub(crate) fn monitoring_mut(&mut self, id: &str) -> Option<&mut Account> {
        let slot = *self.slots.get(id)?;
        self.accounts.get_mut(slot as usize).map(Arc::make_mut)
    }

    /// Whether `id` exists.
    #[must_use]
    pub fn contains_key(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    /// The account in `slot`.
    #[must_use]
    pub fn by_slot(&self, slot: u32) -> Option<&Account> {
        self.accounts.get(slot as usize).map(Arc::as_ref)
    }

    /// Records that something the account's figures read outside it changed (its wallet):
    /// for [`Self::take_changed`], as a write of the account would be.
    pub(crate) fn touch(&mut self, id: &str) {
        if let Some(slot) = self.slots.get(id) {
            self.changed.push(*slot);
        }
    }

    /// [`Self::touch`] by slot.
    pub(crate) fn touch_slot(&mut self, slot: u32) {
        if (slot as usize) < self.accounts.len() {
            self.changed.push(slot);
        }
    }

    /// The slots written or touched since the last call, each once, in slot order.
    pub(crate) fn take_changed(&mut self) -> Vec<u32> {
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// Whether an account was written or touched since the last [`Self::take_changed`].
    pub(crate) fn any_changed(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Number of accounts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The slot the next opened account takes.
    pub(crate) fn next_slot(&self) -> Option<u32> {
        u32::try_from(self.accounts.len()).ok()
    }

    /// Opens `account` (its id must be new and its slot [`Self::next_slot`]).
    pub(crate) fn open(&mut self, account: Account) {
        let slot = account.slot();
        debug_assert_eq!(Some(slot), self.next_slot());
        debug_assert!(!self.contains_key(&account.id));
        self.slots.insert(account.id.clone(), slot);
        self.order.insert(account.id.clone(), slot);
        self.accounts.push(Arc::new(account));
        self.changed.push(slot);
    }

    /// Replaces the account with `account`'s id (its slot is kept).
    pub(crate) fn replace(&mut self, account: Account) {
        if let Some(existing) = self.get_mut(&account.id) {
            *existing = account;
        }
    }

    /// The accounts in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Account)> {
        self.order.iter().filter_map(|(id, slot)| {
            self.accounts
                .get(*slot as usize)
                .map(|account| (id.as_str(), account.as_ref()))
        })
    }

    /// The ids in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.order.keys().map(CompactString::as_str)
    }

    /// The accounts in id order.
    pub fn values(&self) -> impl Iterator<Item = &Account> {
        self.iter().map(|(_, account)| account)
    }
}
