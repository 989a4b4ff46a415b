//! Funding payments and expiry settlement.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    pub(super) fn funding(&mut self, name: &str, rate: Decimal) -> Result<Vec<Effect>, Rejection> {
        let instrument = self.instrument(name)?;
        if !matches!(instrument.terms, Terms::Perpetual) {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{name} is not a perpetual"),
            ));
        }
        if rate.abs() > Decimal::ONE {
            return Err(reject(
                RejectReason::OutOfRange,
                format!("funding rate {rate}"),
            ));
        }
        let surfaces = self.surfaces()?;
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        let mark = view.mark(&instrument).map_err(risk_rejection)?.price;
        // A long pays `size x contract size x mark x rate` (linear) or `size_usd x rate / mark`
        // coin (inverse) when the rate is positive; shorts receive it.
        let payment = |size: Decimal| match instrument.style {
            Style::Linear => size * instrument.contract_size * mark * rate,
            Style::Inverse => size * rate / mark,
        };
        let mut effects = Vec::new();
        let holders: Vec<(CompactString, Decimal, bool)> = self
            .accounts
            .values()
            .filter_map(|a| {
                a.positions
                    .get(name)
                    .map(|p| (a.id.clone(), p.size, p.isolated))
            })
            .collect();
        let clearing_before = self
            .ledger
            .balance(&LedgerAccount::Clearing, &instrument.settlement);
        for (id, size, isolated) in &holders {
            let holder = LedgerAccount::of_position(id, name, *isolated);
            self.settle_cash(
                &holder,
                &LedgerAccount::Clearing,
                &instrument.settlement,
                -payment(*size),
                TransferReason::Funding,
                &mut effects,
            );
        }
        if let Some(size) = self.external.get(name).map(|p| p.size) {
            self.settle_cash(
                &LedgerAccount::External,
                &LedgerAccount::Clearing,
                &instrument.settlement,
                -payment(size),
                TransferReason::Funding,
                &mut effects,
            );
        }
        // Payers round up and receivers down: what that leaves in clearing is the venue's, and
        // goes to the fee account so that funding itself nets to zero in clearing.
        let residual = self
            .ledger
            .balance(&LedgerAccount::Clearing, &instrument.settlement)
            - clearing_before;
        if residual > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::Clearing,
                &LedgerAccount::Fees,
                &instrument.settlement,
                residual,
                TransferReason::Fee,
                &mut effects,
            );
        }
        for (id, _, _) in &holders {
            // A payment in an unpegged settlement asset can open or empty a balance on its index.
            self.reindex(id);
            self.evaluate(id, Figures::Unreported, &mut effects);
        }
        Ok(effects)
    }

    pub(super) fn settlement(
        &mut self,
        name: &str,
        price: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        let instrument = self.instrument(name)?;
        if matches!(instrument.terms, Terms::Perpetual) {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{name} is a perpetual: it never settles"),
            ));
        }
        let mut effects = Vec::new();
        let holders: Vec<(CompactString, Decimal)> = self
            .accounts
            .values()
            .filter_map(|a| a.positions.get(name).map(|p| (a.id.clone(), p.size)))
            .collect();
        let is_option = matches!(instrument.terms, Terms::Option { .. });
        for (id, size) in &holders {
            if is_option {
                // The option is exercised for its settlement value, paid through clearing.
                let (holder, isolated) = self.holder_of(id, name);
                let value = *size * instrument.contract_size * price;
                if let Some(account) = self.accounts.get_mut(id) {
                    account.positions.remove(name);
                }
                self.settle_cash(
                    &holder,
                    &LedgerAccount::Clearing,
                    &instrument.settlement,
                    value,
                    TransferReason::Settlement,
                    &mut effects,
                );
                if isolated {
                    self.release_isolated(id, &instrument, &mut effects);
                }
            } else {
                self.trade(
                    id,
                    &instrument,
                    -*size,
                    price,
                    TransferReason::Settlement,
                    &mut effects,
                );
            }
            self.reindex(id);
        }
        if let Some(size) = self.external.get(name).map(|p| p.size) {
            if is_option {
                self.external.remove(name);
                self.settle_cash(
                    &LedgerAccount::External,
                    &LedgerAccount::Clearing,
                    &instrument.settlement,
                    size * instrument.contract_size * price,
                    TransferReason::Settlement,
                    &mut effects,
                );
            } else {
                self.trade_external(&instrument, -size, price, &mut effects);
            }
        }
        for (id, _) in &holders {
            self.evaluate(id, Figures::Reported, &mut effects);
        }
        Ok(effects)
    }
}
