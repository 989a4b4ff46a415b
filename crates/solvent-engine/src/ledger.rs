//! The double-entry ledger (DESIGN.md 4): every movement of money is a transfer between two
//! ledger accounts, so per asset the sum of all balances is always zero.
//!
//! Ledger accounts: each user account's cross wallet (its id), each isolated position's margin
//! (`ID/isolated/INSTRUMENT`), the insurance fund, the fee account, `external` (deposits,
//! withdrawals and the world outside), and `clearing`, the central counterparty every realised
//! P&L, premium, funding payment and settlement passes through. When every position is closed,
//! `clearing` is back to zero: trading is zero-sum.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use compact_str::CompactString;
use foldhash::fast::FixedState;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use thiserror::Error;

use crate::engine::snapshot::sorted_entries;

/// The ledger account for money entering and leaving the system, and for counterparties outside it.
pub const EXTERNAL: &str = "external";
/// The insurance fund.
pub const INSURANCE_FUND: &str = "insurance_fund";
/// Fees collected.
pub const FEES: &str = "fees";
/// The central counterparty of realised P&L, premiums, funding and settlement.
pub const CLEARING: &str = "clearing";
/// Deficits claimed from a cluster's system shard and not yet answered (a receivable: negative
/// while claims are pending, zero once each is answered).
pub const PENDING_CLAIMS: &str = "pending_claims";

/// A ledger account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub enum LedgerAccount {
    /// A user account's cross wallet. Names are kept inline (ids and instrument names are
    /// short): comparing or hashing one then reads no other cache line.
    Wallet(CompactString),
    /// The margin of one isolated position.
    Isolated(CompactString, CompactString),
    /// The insurance fund.
    InsuranceFund,
    /// Fees collected.
    Fees,
    /// The outside world.
    External,
    /// The central counterparty.
    Clearing,
    /// Deficits advanced to bankrupt accounts and claimed from the cluster's system shard, not
    /// yet answered (see [`crate::config::FundAuthority::SystemShard`]).
    PendingClaims,
}

impl LedgerAccount {
    /// Where the money of account `id`'s position in `instrument` sits: its isolated margin, or
    /// the cross wallet.
    #[must_use]
    pub fn of_position(id: &str, instrument: &str, isolated: bool) -> Self {
        if isolated {
            Self::Isolated(id.into(), instrument.into())
        } else {
            Self::Wallet(id.into())
        }
    }

    /// The ledger account a name in an event refers to (`external` or a user account).
    #[must_use]
    pub fn named(name: &str) -> Self {
        match name {
            EXTERNAL => Self::External,
            INSURANCE_FUND => Self::InsuranceFund,
            FEES => Self::Fees,
            CLEARING => Self::Clearing,
            PENDING_CLAIMS => Self::PendingClaims,
            other => Self::Wallet(other.into()),
        }
    }

    /// The pieces the account's name is made of, in order: its name is their concatenation.
    fn name_parts(&self) -> [&str; 3] {
        match self {
            Self::Wallet(id) => [id, "", ""],
            Self::Isolated(id, instrument) => [id, "/isolated/", instrument],
            Self::InsuranceFund => [INSURANCE_FUND, "", ""],
            Self::Fees => [FEES, "", ""],
            Self::External => [EXTERNAL, "", ""],
            Self::Clearing => [CLEARING, "", ""],
            Self::PendingClaims => [PENDING_CLAIMS, "", ""],
        }
    }

    /// The account's name as [`fmt::Display`] writes it, built without the formatter: every
    /// transfer's effect names both sides, and a liquidation step makes several.
    #[must_use]
    pub fn name(&self) -> String {
        self.name_parts().concat()
    }
}

impl fmt::Display for LedgerAccount {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.name_parts()
            .into_iter()
            .try_for_each(|part| formatter.write_str(part))
    }
}

impl From<LedgerAccount> for String {
    fn from(account: LedgerAccount) -> Self {
        account.to_string()
    }
}

/// A transfer the ledger refused: it would break an invariant.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// Amounts move in one direction: from the first account to the second.
    #[error("a transfer amount must be positive, found {0}")]
    NotPositive(Decimal),
    /// An account cannot pay itself.
    #[error("a transfer needs two different accounts ({0})")]
    SameAccount(String),
}

/// An account's balances, sorted by asset: an account holds few assets, so a short vector is
/// both smaller and faster than a map; the first two are held inline, with their symbols, so a
/// wallet lookup touches no other memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Holdings(SmallVec<[(CompactString, Decimal); 2]>);

impl Holdings {
    fn get(&self, asset: &str) -> Option<Decimal> {
        self.0
            .iter()
            .find(|(held, _)| held == asset)
            .map(|(_, amount)| *amount)
    }

    fn add(&mut self, asset: &str, delta: Decimal) {
        match self
            .0
            .binary_search_by(|(held, _)| held.as_str().cmp(asset))
        {
            Ok(index) => {
                if let Some((_, amount)) = self.0.get_mut(index) {
                    *amount += delta;
                }
            }
            Err(index) => self.0.insert(index, (asset.into(), delta)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, Decimal)> {
        self.0
            .iter()
            .map(|(asset, amount)| (asset.as_str(), *amount))
    }
}

/// Balances by (ledger account, asset). Every listing is ordered, so every hash and report built
/// from it is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// User wallets by id, found by hashing (the hot path looks them up at every event); listed
    /// sorted. A fixed hasher: the map is never iterated in its own order.
    #[serde(with = "crate::engine::snapshot::sorted_map")]
    wallets: HashMap<CompactString, Holdings, FixedState>,
    /// Every other ledger account (isolated margins and the system accounts), found by hashing
    /// too: every liquidation step and trade moves money through the system accounts, which a
    /// tree ordered by account would find only after comparing against the isolated margins'
    /// names. Listed sorted.
    #[serde(with = "crate::engine::snapshot::ledger_accounts")]
    others: HashMap<LedgerAccount, Holdings, FixedState>,
}

impl Ledger {
    fn holdings(&self, account: &LedgerAccount) -> Option<&Holdings> {
        match account {
            LedgerAccount::Wallet(id) => self.wallets.get(id.as_str()),
            other => self.others.get(other),
        }
    }

    /// The non-zero balances of one ledger account, by asset (in the order `balances` lists
    /// them), without walking the others.
    pub fn balances_of(&self, account: &LedgerAccount) -> impl Iterator<Item = (&str, Decimal)> {
        self.holdings(account)
            .into_iter()
            .flat_map(|assets| assets.iter())
            .filter(|(_, amount)| !amount.is_zero())
    }

    /// The balance of `account` in `asset` (zero when it never moved).
    #[must_use]
    pub fn balance(&self, account: &LedgerAccount, asset: &str) -> Decimal {
        self.holdings(account)
            .and_then(|assets| assets.get(asset))
            .unwrap_or(Decimal::ZERO)
    }

    /// The balance of user account `id`'s wallet in `asset` (zero when it never moved).
    #[must_use]
    pub fn wallet_balance(&self, id: &str, asset: &str) -> Decimal {
        self.wallets
            .get(id)
            .and_then(|assets| assets.get(asset))
            .unwrap_or(Decimal::ZERO)
    }

    /// The non-zero balances of user account `id`'s wallet, by asset.
    pub fn wallet(&self, id: &str) -> impl Iterator<Item = (&str, Decimal)> {
        self.wallets
            .get(id)
            .into_iter()
            .flat_map(Holdings::iter)
            .filter(|(_, amount)| !amount.is_zero())
    }

    fn add(&mut self, account: &LedgerAccount, asset: &str, delta: Decimal) {
        let assets = match account {
            LedgerAccount::Wallet(id) => match self.wallets.get_mut(id.as_str()) {
                Some(assets) => assets,
                None => self.wallets.entry(id.clone()).or_default(),
            },
            other => match self.others.get_mut(other) {
                Some(assets) => assets,
                None => self.others.entry(other.clone()).or_default(),
            },
        };
        assets.add(asset, delta);
    }

    /// Moves `amount` of `asset` from `from` to `to`.
    ///
    /// # Errors
    /// [`LedgerError`] for a non-positive amount or a transfer to oneself; nothing moves then.
    pub fn transfer(
        &mut self,
        from: &LedgerAccount,
        to: &LedgerAccount,
        asset: &str,
        amount: Decimal,
    ) -> Result<(), LedgerError> {
        if amount <= Decimal::ZERO {
            return Err(LedgerError::NotPositive(amount));
        }
        if from == to {
            return Err(LedgerError::SameAccount(from.to_string()));
        }
        self.add(from, asset, -amount);
        self.add(to, asset, amount);
        Ok(())
    }

    /// Moves a signed amount: positive from `payer` to `payee`, negative the other way, zero not
    /// at all. Returns the transfer made as `(from, to, amount)`, if any.
    ///
    /// # Errors
    /// [`LedgerError::SameAccount`].
    pub fn settle(
        &mut self,
        payer: &LedgerAccount,
        payee: &LedgerAccount,
        asset: &str,
        amount: Decimal,
    ) -> Result<Option<(LedgerAccount, LedgerAccount, Decimal)>, LedgerError> {
        if amount.is_zero() {
            return Ok(None);
        }
        let (from, to, amount) = if amount > Decimal::ZERO {
            (payer, payee, amount)
        } else {
            (payee, payer, -amount)
        };
        self.transfer(from, to, asset, amount)?;
        Ok(Some((from.clone(), to.clone(), amount)))
    }

    /// The wallets owing `asset` (a negative balance), by id, with the loan (positive): the
    /// loans that pay interest at a whole hour.
    #[must_use]
    pub fn wallet_loans(&self, asset: &str) -> Vec<(CompactString, Decimal)> {
        let mut loans: Vec<(CompactString, Decimal)> = self
            .wallets
            .iter()
            .filter_map(|(id, assets)| {
                let amount = assets.get(asset)?;
                (amount < Decimal::ZERO).then(|| (id.clone(), -amount))
            })
            .collect();
        loans.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        loans
    }

    /// Every non-zero balance, ordered by ledger account (wallets first, by id), then asset.
    pub fn balances(&self) -> impl Iterator<Item = (LedgerAccount, &str, Decimal)> {
        let wallets = sorted_entries(&self.wallets)
            .into_iter()
            .map(|(id, assets)| (LedgerAccount::Wallet(id.clone()), assets));
        let others = sorted_entries(&self.others)
            .into_iter()
            .map(|(account, assets)| (account.clone(), assets));
        wallets.chain(others).flat_map(|(account, assets)| {
            assets
                .iter()
                .filter(|(_, amount)| !amount.is_zero())
                .map(move |(asset, amount)| (account.clone(), asset, amount))
        })
    }

    /// Per asset, the sum of all balances: always zero (the conservation invariant).
    #[must_use]
    pub fn totals(&self) -> BTreeMap<String, Decimal> {
        let mut totals = BTreeMap::new();
        for assets in self.wallets.values().chain(self.others.values()) {
            for (asset, amount) in assets.iter() {
                *totals.entry(asset.to_owned()).or_insert(Decimal::ZERO) += amount;
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    /// The names effects carry are the ones `Display` writes (and the snapshot's, `parse`).
    #[test]
    fn every_ledger_account_is_named_as_displayed() {
        for account in [
            LedgerAccount::Wallet("alice".into()),
            LedgerAccount::Isolated("bob".into(), "BTCUSDT".into()),
            LedgerAccount::InsuranceFund,
            LedgerAccount::Fees,
            LedgerAccount::External,
            LedgerAccount::Clearing,
            LedgerAccount::PendingClaims,
        ] {
            assert_eq!(account.name(), account.to_string());
        }
        assert_eq!(
            LedgerAccount::Isolated("bob".into(), "BTCUSDT".into()).name(),
            "bob/isolated/BTCUSDT"
        );
    }

    /// Balances list system accounts and isolated margins in account order, however the
    /// ledger came to hold them.
    #[test]
    fn balances_are_listed_in_account_order() {
        let mut ledger = Ledger::default();
        let accounts = [
            LedgerAccount::Clearing,
            LedgerAccount::Isolated("zed".into(), "BTCUSDT".into()),
            LedgerAccount::InsuranceFund,
            LedgerAccount::Isolated("amy".into(), "ETHUSDT".into()),
            LedgerAccount::Wallet("carl".into()),
            LedgerAccount::Fees,
        ];
        for account in &accounts {
            ledger
                .transfer(&LedgerAccount::External, account, "USDT", dec!(1))
                .unwrap();
        }
        let listed: Vec<LedgerAccount> = ledger.balances().map(|(a, _, _)| a).collect();
        let mut others: Vec<LedgerAccount> = accounts
            .iter()
            .filter(|a| !matches!(a, LedgerAccount::Wallet(_)))
            .cloned()
            .chain([LedgerAccount::External])
            .collect();
        others.sort();
        let expected: Vec<LedgerAccount> = [LedgerAccount::Wallet("carl".into())]
            .into_iter()
            .chain(others)
            .collect();
        assert_eq!(listed, expected);
    }

    #[test]
    fn transfers_move_money_between_two_accounts() {
        let mut ledger = Ledger::default();
        let alice = LedgerAccount::Wallet("alice".into());
        ledger
            .transfer(&LedgerAccount::External, &alice, "USDT", dec!(100))
            .unwrap();
        assert_eq!(ledger.balance(&alice, "USDT"), dec!(100));
        assert_eq!(ledger.balance(&LedgerAccount::External, "USDT"), dec!(-100));
        assert!(ledger.transfer(&alice, &alice, "USDT", dec!(1)).is_err());
        assert!(
            ledger
                .transfer(&alice, &LedgerAccount::Fees, "USDT", dec!(0))
                .is_err()
        );
        let made = ledger
            .settle(&alice, &LedgerAccount::Clearing, "USDT", dec!(-5))
            .unwrap();
        assert_eq!(
            made,
            Some((LedgerAccount::Clearing, alice.clone(), dec!(5)))
        );
        assert_eq!(ledger.balance(&alice, "USDT"), dec!(105));
        assert_eq!(
            LedgerAccount::Isolated("a".into(), "BTCUSDT".into()).to_string(),
            "a/isolated/BTCUSDT"
        );
    }

    proptest! {
        #[test]
        fn every_asset_sums_to_zero(moves in proptest::collection::vec((0usize..4, 0usize..4, 1i64..1_000_000, any::<bool>()), 0..200)) {
            let accounts = [
                LedgerAccount::External,
                LedgerAccount::Wallet("a".into()),
                LedgerAccount::Isolated("a".into(), "X".into()),
                LedgerAccount::InsuranceFund,
            ];
            let mut ledger = Ledger::default();
            for (from, to, cents, btc) in moves {
                let asset = if btc { "BTC" } else { "USDT" };
                let _ = ledger.transfer(&accounts[from], &accounts[to], asset, Decimal::new(cents, 2));
            }
            for total in ledger.totals().values() {
                prop_assert_eq!(*total, Decimal::ZERO);
            }
        }
    }
}
