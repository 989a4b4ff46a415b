//! Fills: validation, open-interest caps, booking both sides through clearing (DESIGN.md 9).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    pub(super) fn fill(&mut self, event: &crate::event::Fill) -> Result<Vec<Effect>, Rejection> {
        let id = event.account.as_str();
        self.known_account(id)?;
        let instrument = self.instrument(&event.instrument)?;
        let size = event.size.value();
        if size <= Decimal::ZERO {
            return Err(reject(
                RejectReason::InvalidSize,
                "a fill's size must be positive",
            ));
        }
        instrument
            .check_size(size)
            .map_err(|problem| reject(RejectReason::InvalidSize, problem))?;
        let counterparty = LedgerAccount::named(&event.counterparty);
        if counterparty == LedgerAccount::Wallet(id.into()) {
            return Err(reject(
                RejectReason::AccountsMustBeDifferent,
                format!("{id} trades with itself"),
            ));
        }
        if let LedgerAccount::Wallet(other) = &counterparty {
            self.known_account(other)?;
        } else if counterparty != LedgerAccount::External {
            return Err(reject(
                RejectReason::UnknownAccount,
                format!("counterparty {:?}", event.counterparty),
            ));
        }
        let fee = event.fee.value();
        if !fee.is_zero() {
            self.checked_amount(&instrument.settlement, fee.abs())?;
        }
        let signed = match event.side {
            Side::Buy => size,
            Side::Sell => -size,
        };
        let price = event.price.value();
        if solvent_risk::standard::bounded_exposure(&instrument, signed, &[price]).is_none() {
            return Err(reject(
                RejectReason::OutOfRange,
                "the fill's value exceeds 1e15",
            ));
        }
        self.check_open_interest(&instrument, id, &counterparty, signed)?;
        let figures_after = self.check_trade_risk(id, &instrument, signed, price, fee)?;
        let counterparty_after = match &counterparty {
            LedgerAccount::Wallet(other) => {
                self.check_trade_risk(other, &instrument, -signed, price, Decimal::ZERO)?
            }
            _ => None,
        };
        // Checked: apply both sides.
        let mut effects = Vec::new();
        self.trade(
            id,
            &instrument,
            signed,
            price,
            TransferReason::RealisedPnl,
            &mut effects,
        );
        if !fee.is_zero() {
            self.settle_cash(
                &LedgerAccount::Wallet(id.into()),
                &LedgerAccount::Fees,
                &instrument.settlement,
                -fee,
                TransferReason::Fee,
                &mut effects,
            );
        }
        // The pre-trade rule valued both accounts as the trade leaves them (each side is booked
        // against clearing, so neither side's booking moves the other): monitoring takes those
        // figures. The counterparty is evaluated first; the account's figures stand unless that
        // evaluation reached beyond the counterparty (its liquidation can deleverage the
        // account), which only its liquidation effects and money moved can do.
        let known = match &counterparty {
            LedgerAccount::Wallet(other) => {
                let other = other.clone();
                self.trade(
                    &other,
                    &instrument,
                    -signed,
                    price,
                    TransferReason::RealisedPnl,
                    &mut effects,
                );
                self.reindex(&other);
                let before = effects.len();
                self.evaluate_known(&other, Figures::Reported, counterparty_after, &mut effects);
                let confined = effects[before..].iter().all(|effect| {
                    matches!(
                        effect,
                        Effect::AccountUpdated { .. }
                            | Effect::StateChanged { .. }
                            | Effect::MarginCall { .. }
                            | Effect::LiquidationDeferred { .. }
                    )
                });
                figures_after.filter(|_| confined)
            }
            _ => {
                self.trade_external(&instrument, -signed, price, &mut effects);
                figures_after
            }
        };
        self.reindex(id);
        self.evaluate_known(id, Figures::Reported, known, &mut effects);
        Ok(effects)
    }

    pub(super) fn open_interest(&self, name: &str) -> Decimal {
        self.accounts
            .values()
            .filter_map(|a| a.positions.get(name))
            .chain(self.external.get(name))
            .map(|p| p.size.max(Decimal::ZERO))
            .sum()
    }

    pub(super) fn check_open_interest(
        &self,
        instrument: &Instrument,
        id: &str,
        counterparty: &LedgerAccount,
        signed: Decimal,
    ) -> Result<(), Rejection> {
        let Some(cap) = self
            .config
            .guards
            .max_open_interest
            .get(instrument.name.as_str())
        else {
            return Ok(());
        };
        let size_of = |account: Option<&Account>| {
            account
                .and_then(|a| a.positions.get(instrument.name.as_str()))
                .map_or(Decimal::ZERO, |p| p.size)
        };
        let mine = size_of(self.accounts.get(id));
        let theirs = match counterparty {
            LedgerAccount::Wallet(other) => size_of(self.accounts.get(other)),
            _ => self
                .external
                .get(instrument.name.as_str())
                .map_or(Decimal::ZERO, |p| p.size),
        };
        let change = (mine + signed).max(Decimal::ZERO) - mine.max(Decimal::ZERO)
            + (theirs - signed).max(Decimal::ZERO)
            - theirs.max(Decimal::ZERO);
        let after = self.open_interest(&instrument.name) + change;
        if change > Decimal::ZERO && after > *cap {
            return Err(reject(
                RejectReason::OpenInterestCap,
                format!(
                    "open interest of {} would be {after}, above its cap {cap}",
                    instrument.name
                ),
            ));
        }
        Ok(())
    }

    /// Applies a signed trade to an account's position; realised P&L and premium pass through
    /// clearing (into the isolated margin of an isolated position).
    pub(super) fn trade(
        &mut self,
        id: &str,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        price: Decimal,
        reason: TransferReason,
        effects: &mut Vec<Effect>,
    ) {
        let Some(account) = self.accounts.get_mut(id) else {
            return;
        };
        let (outcome, isolated) = account.trade_outcome(instrument, signed, price);
        account.apply_outcome(instrument, &outcome, isolated);
        let holder = LedgerAccount::of_position(id, &instrument.name, isolated);
        self.settle_cash(
            &holder,
            &LedgerAccount::Clearing,
            &instrument.settlement,
            outcome.realised,
            reason,
            effects,
        );
        self.settle_cash(
            &holder,
            &LedgerAccount::Clearing,
            &instrument.settlement,
            outcome.premium,
            TransferReason::Premium,
            effects,
        );
        if isolated && outcome.size.is_zero() {
            self.release_isolated(id, instrument, effects);
        }
    }

    /// The outside world's side of a fill: its realised P&L passes through clearing against
    /// `external`, so clearing returns to zero once everything is closed.
    pub(super) fn trade_external(
        &mut self,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        price: Decimal,
        effects: &mut Vec<Effect>,
    ) {
        let (old_size, old_entry) = self
            .external
            .get(instrument.name.as_str())
            .map_or((Decimal::ZERO, price), |p| (p.size, p.entry));
        let outcome = trade_position(instrument, old_size, old_entry, signed, price);
        set_position(&mut self.external, instrument, &outcome, false);
        for (amount, reason) in [
            (outcome.realised, TransferReason::RealisedPnl),
            (outcome.premium, TransferReason::Premium),
        ] {
            self.settle_cash(
                &LedgerAccount::External,
                &LedgerAccount::Clearing,
                &instrument.settlement,
                amount,
                reason,
                effects,
            );
        }
    }

    /// Returns what is left of an isolated position's margin to the wallet.
    pub(super) fn release_isolated(
        &mut self,
        id: &str,
        instrument: &Instrument,
        effects: &mut Vec<Effect>,
    ) {
        let isolated = LedgerAccount::Isolated(id.into(), instrument.name.as_str().into());
        let left = self.ledger.balance(&isolated, &instrument.settlement);
        self.settle_cash(
            &LedgerAccount::Wallet(id.into()),
            &isolated,
            &instrument.settlement,
            left,
            TransferReason::IsolatedMargin,
            effects,
        );
    }
}
