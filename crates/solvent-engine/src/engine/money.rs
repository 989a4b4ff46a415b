//! Deposits, withdrawals and transfers: every movement of money is a ledger transfer with its
//! effect (DESIGN.md 4).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    pub(super) fn deposit(
        &mut self,
        id: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        self.checked_amount(asset, amount)?;
        match LedgerAccount::named(id) {
            LedgerAccount::InsuranceFund => {
                // The venue funds its insurance fund from outside.
                let mut effects = Vec::new();
                self.move_money(
                    &LedgerAccount::External,
                    &LedgerAccount::InsuranceFund,
                    asset,
                    amount,
                    TransferReason::Deposit,
                    &mut effects,
                );
                self.insurance_changed(asset, amount, InsuranceFundReason::Funded, &mut effects);
                return Ok(effects);
            }
            LedgerAccount::Wallet(_) => {}
            _ => {
                return Err(reject(
                    RejectReason::InvalidInput,
                    format!("{id:?} is a system ledger account, not a user account"),
                ));
            }
        }
        self.open_account(id)?;
        let mut effects = Vec::new();
        self.move_money(
            &LedgerAccount::External,
            &LedgerAccount::Wallet(id.into()),
            asset,
            amount,
            TransferReason::Deposit,
            &mut effects,
        );
        // Pegged assets are never indexed (see `reindex`): more of one changes no index set.
        if self
            .venue
            .assets
            .get(asset)
            .is_none_or(|held| held.usd_peg.is_none())
        {
            self.reindex(id);
        }
        self.evaluate(id, Figures::Reported, &mut effects);
        Ok(effects)
    }

    pub(super) fn withdraw(
        &mut self,
        id: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        self.known_account(id)?;
        self.checked_amount(asset, amount)?;
        self.check_outflow(id, asset, amount)?;
        let mut effects = Vec::new();
        self.move_money(
            &LedgerAccount::Wallet(id.into()),
            &LedgerAccount::External,
            asset,
            amount,
            TransferReason::Withdrawal,
            &mut effects,
        );
        self.reindex(id);
        self.evaluate(id, Figures::Reported, &mut effects);
        Ok(effects)
    }

    pub(super) fn transfer(
        &mut self,
        from: &str,
        to: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        self.known_account(from)?;
        if from == to {
            return Err(reject(
                RejectReason::AccountsMustBeDifferent,
                format!("{from} to itself"),
            ));
        }
        if LedgerAccount::named(to) != LedgerAccount::Wallet(to.into()) {
            return Err(reject(
                RejectReason::UnknownAccount,
                format!("{to:?} is not a user account"),
            ));
        }
        self.checked_amount(asset, amount)?;
        self.check_outflow(from, asset, amount)?;
        self.open_account(to)?;
        let mut effects = Vec::new();
        self.move_money(
            &LedgerAccount::Wallet(from.into()),
            &LedgerAccount::Wallet(to.into()),
            asset,
            amount,
            TransferReason::Transfer,
            &mut effects,
        );
        self.reindex(from);
        self.reindex(to);
        self.evaluate(from, Figures::Reported, &mut effects);
        self.evaluate(to, Figures::Reported, &mut effects);
        Ok(effects)
    }

    /// Moves a positive amount and records the effect; amounts here are validated beforehand, so
    /// the ledger cannot refuse them.
    pub(super) fn move_money(
        &mut self,
        from: &LedgerAccount,
        to: &LedgerAccount,
        asset: &str,
        amount: Decimal,
        reason: TransferReason,
        effects: &mut Vec<Effect>,
    ) {
        if self.ledger.transfer(from, to, asset, amount).is_ok() {
            self.transferred(from, to, asset, amount, reason, effects);
        }
    }

    /// Settles a signed cash flow for `holder` (positive: `holder` receives) against `counter`,
    /// rounded toward the venue at the asset's precision.
    pub(super) fn settle_cash(
        &mut self,
        holder: &LedgerAccount,
        counter: &LedgerAccount,
        asset: &str,
        received: Decimal,
        reason: TransferReason,
        effects: &mut Vec<Effect>,
    ) {
        // Most fills and liquidation steps carry no premium: nothing to look up or round.
        if received.is_zero() {
            return;
        }
        let precision = self.venue.asset(asset).map_or(8, |a| a.precision);
        let rounded = rounding::credit(received, precision);
        if let Ok(Some((from, to, amount))) = self.ledger.settle(counter, holder, asset, rounded) {
            self.transferred(&from, &to, asset, amount, reason, effects);
        }
    }

    /// What follows a transfer the ledger made: both holders noted for the ADL index, and the
    /// `transfer_applied` effect.
    fn transferred(
        &mut self,
        from: &LedgerAccount,
        to: &LedgerAccount,
        asset: &str,
        amount: Decimal,
        reason: TransferReason,
        effects: &mut Vec<Effect>,
    ) {
        self.touch_holder(from);
        self.touch_holder(to);
        effects.push(Effect::TransferApplied {
            from: from.name(),
            to: to.name(),
            asset: asset.to_owned(),
            amount: Amount(amount),
            reason,
        });
    }

    /// Records that the user account owning ledger account `holder` (its wallet or an
    /// isolated margin) has had its money moved, for the ADL index (`engine/adl_index.rs`).
    pub(super) fn touch_holder(&mut self, holder: &LedgerAccount) {
        match holder {
            LedgerAccount::Wallet(id) | LedgerAccount::Isolated(id, _) => self.accounts.touch(id),
            _ => {}
        }
    }
}
