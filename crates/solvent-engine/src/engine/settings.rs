//! Account settings and venue changes: leverage, margin mode, isolated margin, buffer policy,
//! automated top-ups, listings and venue updates.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    pub(super) fn set_leverage(
        &mut self,
        id: &str,
        name: &str,
        leverage: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        let instrument = self.instrument(name)?;
        // Bounded on both sides like every number that enters: an event built in code, not read
        // by the parser, must not bring a leverage whose initial margin overflows.
        if leverage < solvent_core::money::MIN_LEVERAGE
            || leverage > solvent_core::money::MAX_LEVERAGE
        {
            return Err(reject(
                RejectReason::InvalidLeverage,
                format!(
                    "leverage {leverage} for {name}: outside [{}, {}]",
                    solvent_core::money::MIN_LEVERAGE,
                    solvent_core::money::MAX_LEVERAGE
                ),
            ));
        }
        // Above the first tier's maximum no position can stand at it: refused with the tier
        // named, as a position held is below.
        if let Some((tiers, unit, _)) = instrument.margin.tiers()
            && let Some(first) = tiers.first()
            && leverage > first.max_leverage
        {
            return Err(reject(
                RejectReason::InvalidLeverage,
                format!(
                    "leverage {leverage} for {name}: above the {}x maximum of tier 1 ({})",
                    first.max_leverage.normalize(),
                    solvent_risk::account::bracket_text(
                        first.floor,
                        first.up_to,
                        unit,
                        &instrument.settlement
                    )
                ),
            ));
        }
        let mut after = account.clone();
        after.leverage.insert(name.into(), leverage);
        // A position already held is refused a leverage above its own bracket's maximum (the
        // first bracket's allows the most), as the venue refuses it.
        if account.positions.contains_key(name) {
            let report = self.report_of(&self.portfolio_of(&after)?)?;
            if let Some(line) = report.positions.iter().find(|l| l.instrument == name)
                && let solvent_risk::standard::Basis::Tiered {
                    tier,
                    floor,
                    up_to,
                    leverage: maximum,
                    requested_leverage: Some(_),
                    unit,
                    ..
                } = &line.margin_basis
            {
                return Err(reject(
                    RejectReason::InvalidLeverage,
                    format!(
                        "leverage {leverage} for {name}: above the {}x maximum of tier {tier} ({})",
                        maximum.normalize(),
                        solvent_risk::account::bracket_text(
                            *floor,
                            *up_to,
                            *unit,
                            &line.settlement
                        )
                    ),
                ));
            }
        }
        self.replace_account_if_margined(id, after, &format!("at {leverage}x"))
    }

    /// Replaces an account by `after` (a settings change) when its initial margin stays covered,
    /// then evaluates it; `setting` names the change in the rejection.
    pub(super) fn replace_account_if_margined(
        &mut self,
        id: &str,
        after: Account,
        setting: &str,
    ) -> Result<Vec<Effect>, Rejection> {
        let report = self.report_of(&self.portfolio_of(&after)?)?;
        if report.available.value() < Decimal::ZERO && !report.initial_margin.is_zero() {
            return Err(reject(
                RejectReason::InsufficientInitialMargin,
                format!(
                    "{setting} the initial margin {} exceeds equity {}",
                    report.initial_margin, report.equity
                ),
            ));
        }
        self.accounts.replace(after);
        let mut effects = Vec::new();
        self.evaluate(id, Figures::Reported, &mut effects);
        Ok(effects)
    }

    pub(super) fn set_margin_mode(
        &mut self,
        id: &str,
        mode: MarginMode,
    ) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        if mode == MarginMode::Portfolio && self.venue.portfolio_margin.is_none() {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{} offers no portfolio margin", self.venue.name),
            ));
        }
        let mut after = account;
        after.mode = mode;
        self.replace_account_if_margined(id, after, &format!("in {mode:?} mode"))
    }

    pub(super) fn set_isolated_margin(
        &mut self,
        id: &str,
        name: &str,
        target: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        let instrument = self.instrument(name)?;
        let Some(position) = account.positions.get(name).cloned() else {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{id} holds no {name} position"),
            ));
        };
        if matches!(instrument.terms, Terms::Option { .. }) {
            return Err(reject(
                RejectReason::InvalidInput,
                "options are margined in the cross pool",
            ));
        }
        if target < Decimal::ZERO {
            return Err(reject(
                RejectReason::AmountMustBePositive,
                format!("target {target}"),
            ));
        }
        let asset = instrument.settlement.clone();
        let precision = self.venue.asset(&asset).map_or(8, |a| a.precision);
        if target.normalize().scale() > precision {
            return Err(reject(
                RejectReason::PrecisionExceeded,
                format!("{target} has more than {precision} decimals"),
            ));
        }
        let isolated = LedgerAccount::Isolated(id.into(), name.into());
        let current = if position.isolated {
            self.ledger.balance(&isolated, &asset)
        } else {
            Decimal::ZERO
        };
        let delta = target - current;
        let mut after = account.clone();
        if let Some(p) = after.positions.get_mut(name) {
            p.isolated = !target.is_zero();
        }
        // Check the result: the wallet must cover the cross pool's IM, and an isolated position
        // its own initial margin.
        let mut portfolio = self.portfolio_of(&after)?;
        if let Some(balance) = portfolio
            .balances
            .iter_mut()
            .find(|b| b.asset.symbol == asset)
        {
            balance.amount = Amount(balance.amount.value() - delta);
        } else if delta < Decimal::ZERO {
            let held = self
                .venue
                .asset(&asset)
                .map_err(|p| reject(RejectReason::UnknownAsset, p))?
                .clone();
            portfolio.balances.push(Balance {
                asset: held,
                amount: Amount(-delta),
            });
        }
        if let Some(p) = portfolio
            .positions
            .iter_mut()
            .find(|p| p.instrument.name == name)
        {
            p.isolated_margin = (!target.is_zero()).then_some(Amount(target));
        }
        if delta > self.ledger.wallet_balance(id, &asset) {
            return Err(reject(
                RejectReason::InsufficientBalance,
                format!("{id} lacks {delta} {asset} for the isolated margin"),
            ));
        }
        let report = self.report_of(&portfolio)?;
        let isolated_short = report.positions.iter().any(|p| {
            p.instrument == name
                && p.isolated
                && p.isolated_equity.is_some_and(|e| e < p.initial_margin)
        });
        if (report.available.value() < Decimal::ZERO && !report.initial_margin.is_zero())
            || isolated_short
        {
            return Err(reject(
                RejectReason::InsufficientInitialMargin,
                format!(
                    "an isolated margin of {target} {asset} leaves the cross pool or the position below its initial margin"
                ),
            ));
        }
        // Where the venue keeps the maintenance margin in the wallet (Binance, `[venue]
        // withdrawal`), margin moved between the cross wallet and an isolated position keeps it
        // on both sides (FAQ "How to Adjust Margin Balance in Cross/Isolated Margin Mode"): the
        // cross wallet its positions' ("max addable: crossWalletBalance - sum crossPosition
        // MM"), the isolated wallet its position's ("max removable: isolatedWalletBalance -
        // isolatedPosition MM"); unrealised profit pays neither out.
        if self.venue.withdrawal == WithdrawalRule::WalletAboveMaintenanceMargin {
            let cross_short = delta > Decimal::ZERO && report.wallet_shortfall().is_some();
            let isolated_below = delta < Decimal::ZERO
                && report.positions.iter().any(|p| {
                    p.instrument == name && p.isolated && target < p.maintenance_margin.value()
                });
            if cross_short || isolated_below {
                let side = if cross_short {
                    "the cross wallet below its positions' maintenance margin"
                } else {
                    "the isolated wallet below its position's maintenance margin"
                };
                return Err(reject(
                    RejectReason::ExceedsWithdrawable,
                    format!(
                        "an isolated margin of {target} {asset} leaves {side}, which {} keeps whatever the unrealised profit",
                        self.venue.name
                    ),
                ));
            }
        }
        self.accounts.replace(after);
        let mut effects = Vec::new();
        if delta > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::Wallet(id.into()),
                &isolated,
                &asset,
                delta,
                TransferReason::IsolatedMargin,
                &mut effects,
            );
        } else if delta < Decimal::ZERO {
            self.move_money(
                &isolated,
                &LedgerAccount::Wallet(id.into()),
                &asset,
                -delta,
                TransferReason::IsolatedMargin,
                &mut effects,
            );
        }
        self.reindex(id);
        self.evaluate(id, Figures::Reported, &mut effects);
        Ok(effects)
    }

    /// The equity the account's buffer policy keeps (zero without one).
    pub(super) fn buffer_of(
        &self,
        account: &Account,
        portfolio: &Portfolio,
        report: &MarginReport,
    ) -> Result<Decimal, Rejection> {
        if account.buffer == BufferPolicy::None {
            return Ok(Decimal::ZERO);
        }
        let surfaces = self.surfaces()?;
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        solvent_risk::allocation::buffer(portfolio, &view, report, account.buffer)
            .map(|(buffer, _)| buffer)
            .map_err(risk_rejection)
    }

    pub(super) fn set_buffer_policy(
        &mut self,
        id: &str,
        policy: &str,
    ) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        let buffer: BufferPolicy = policy.parse().map_err(|problem: String| {
            reject(RejectReason::InvalidInput, format!("policy: {problem}"))
        })?;
        let mut after = account;
        after.buffer = buffer;
        // The policy must be computable now (a sigma policy needs volatility for every underlying).
        let portfolio = self.portfolio_of(&after)?;
        let report = self.report_of(&portfolio)?;
        self.buffer_of(&after, &portfolio, &report)?;
        self.accounts.replace(after);
        let mut effects = Vec::new();
        self.evaluate(id, Figures::Reported, &mut effects);
        Ok(effects)
    }

    pub(super) fn set_auto_top_up(
        &mut self,
        rule: &crate::event::SetAutoTopUp,
    ) -> Result<Vec<Effect>, Rejection> {
        let id = rule.account.as_str();
        self.known_account(id)?;
        if rule.trigger_health <= Decimal::ZERO || rule.target_health < rule.trigger_health {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "need 0 < trigger_health <= target_health, found {} and {}",
                    rule.trigger_health, rule.target_health
                ),
            ));
        }
        let asset = match &rule.instrument {
            Some(name) => self.instrument(name)?.settlement.clone(),
            None => self.venue.settlement_asset.clone(),
        };
        for cap in [rule.per_event_cap.value(), rule.per_day_cap.value()] {
            self.checked_amount(&asset, cap)?;
        }
        if let Some(account) = self.accounts.get_mut(id) {
            account.top_ups.retain(|r| {
                !(r.rule.instrument == rule.instrument && r.rule.source == rule.source)
            });
            account.top_ups.push(TopUpRule {
                rule: rule.clone(),
                day: i64::MIN,
                used: Decimal::ZERO,
            });
        }
        let mut effects = Vec::new();
        self.evaluate(id, Figures::Reported, &mut effects);
        Ok(effects)
    }

    pub(super) fn list_instrument(
        &mut self,
        name: &str,
        spec: &serde_json::Value,
    ) -> Result<Vec<Effect>, Rejection> {
        let mut venue = self.venue.clone();
        venue
            .list_instrument("list_instrument", name, spec)
            .map_err(|error| reject(RejectReason::InvalidInput, error.to_string()))?;
        // The installed venue already carries the scaled grids: installed as it is (scaling
        // it as a venue given would scale them twice).
        self.set_installed_venue(venue);
        Ok(Vec::new())
    }

    pub(super) fn update_venue(&mut self, text: &str) -> Result<Vec<Effect>, Rejection> {
        let venue = Venue::from_toml("update_venue", text)
            .map_err(|error| reject(RejectReason::InvalidInput, error.to_string()))?;
        // Every instrument held must still be listed; positions take the new rules.
        let mut resolved: Vec<(CompactString, CompactString, Arc<Instrument>)> = Vec::new();
        for account in self.accounts.values() {
            for name in account.positions.keys() {
                let instrument = venue.instrument(name).map_err(|problem| {
                    reject(
                        RejectReason::InvalidInput,
                        format!("{} holds {name}: {problem}", account.id),
                    )
                })?;
                resolved.push((account.id.clone(), name.clone(), instrument));
            }
        }
        for name in self.external.keys() {
            venue.instrument(name).map_err(|problem| {
                reject(
                    RejectReason::InvalidInput,
                    format!("external holds {name}: {problem}"),
                )
            })?;
        }
        self.install_venue(venue);
        for (id, name, instrument) in resolved {
            if let Some(position) = self
                .accounts
                .get_mut(&id)
                .and_then(|a| a.positions.get_mut(&name))
            {
                position.instrument = instrument;
            }
        }
        let external: Vec<CompactString> = self.external.keys().cloned().collect();
        for name in external {
            if let (Ok(instrument), Some(position)) =
                (self.venue.instrument(&name), self.external.get_mut(&name))
            {
                position.instrument = instrument;
            }
        }
        let mut effects = Vec::new();
        let ids: Vec<String> = self.accounts.keys().map(str::to_owned).collect();
        for id in ids {
            self.reindex(&id);
            self.evaluate(&id, Figures::Unreported, &mut effects);
        }
        Ok(effects)
    }
}
