//! The engine side of the pre-trade rule (`solvent_risk::pretrade`): a fill or a withdrawal is
//! checked against the account as the engine holds it, and a refusal becomes a named rejection.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A refusal of the pre-trade rule as the engine's rejection.
pub(super) fn refused(id: &str, refusal: &Refusal) -> Rejection {
    let reason = match refusal {
        Refusal::ReduceOnly { .. } => RejectReason::ReduceOnly,
        Refusal::LeverageAboveBracket { .. } => RejectReason::InvalidLeverage,
        Refusal::IsolatedInitialMargin { .. } | Refusal::InitialMargin { .. } => {
            RejectReason::InsufficientInitialMargin
        }
        Refusal::BelowBuffer { .. }
        | Refusal::BelowInitialMargin { .. }
        | Refusal::WalletBelowMaintenanceMargin { .. }
        | Refusal::WalletBelowUnrealisedLoss { .. } => RejectReason::ExceedsWithdrawable,
    };
    reject(reason, format!("{id}: {refusal}"))
}

impl Engine {
    /// Checks that taking `amount` of `asset` out of `id`'s wallet leaves it covering its initial
    /// margin and holding no negative balance (Hyperliquid 2025: no withdrawal may leave an
    /// account below IM; Mango 2022: unrealised profit is not a balance, so it cannot leave).
    pub(super) fn check_outflow(
        &self,
        id: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<(), Rejection> {
        let account = self.known_account(id)?;
        let balance = self.ledger.wallet_balance(id, asset);
        if balance < amount {
            return Err(reject(
                RejectReason::InsufficientBalance,
                format!(
                    "{id} holds {} {asset}, not {}",
                    balance.normalize(),
                    amount.normalize()
                ),
            ));
        }
        let mut after = self.portfolio_of(account)?;
        if let Some(held) = after.balances.iter_mut().find(|b| b.asset.symbol == asset) {
            held.amount = Amount(held.amount.value() - amount);
        }
        let report = self.report_of(&after)?;
        let buffer = self.buffer_of(account, &after, &report)?;
        decide_withdrawal(&report, buffer, asset).map_err(|refusal| refused(id, &refusal))
    }

    /// Pre-trade checks of one side: an account in reduce-only or worse may only reduce; any
    /// account must cover its initial margin after a trade that raises it. Accepted, it returns
    /// the account's figures after the trade when the rule computed them (monitoring's figures:
    /// [`Self::monitoring_report`] of the account once the trade is booked).
    pub(super) fn check_trade_risk(
        &self,
        id: &str,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> Result<Option<MarginReport>, Rejection> {
        let account = self.known_account(id)?;
        let (outcome, _) = account.trade_outcome(instrument, signed, price);
        if Quantity::try_from(outcome.size).is_err() || outcome.entry > MAX_PRICE {
            return Err(reject(
                RejectReason::OutOfRange,
                "the position would leave the accepted range",
            ));
        }
        let before = self.portfolio_of(account)?;
        let surfaces = self.surfaces_for(
            before
                .positions
                .iter()
                .map(|p| p.instrument.as_ref())
                .chain([instrument.as_ref()]),
        )?;
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        let leg = TradeLeg {
            instrument: Arc::clone(instrument),
            size: signed,
            price,
            fee,
        };
        let leverage_of = |name: &str| account.leverage.get(name).copied();
        let after = book_trades(&before, &[leg], &view, &leverage_of).map_err(risk_rejection)?;
        let decision = decide_trade_at(
            Detail::Totals,
            account.state,
            &before,
            &after,
            &[instrument.name.as_str()],
            &view,
        )
        .map_err(risk_rejection)?;
        match decision.verdict {
            Ok(_) => Ok(decision.after),
            Err(refusal) => Err(refused(id, &refusal)),
        }
    }
}
