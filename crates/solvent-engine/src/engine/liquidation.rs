//! Partial and gradual liquidation, with the guards that defer it (DESIGN.md 8.2).

#[allow(clippy::wildcard_imports)]
use super::*;
use solvent_risk::report::PositionReport;

impl Engine {
    /// Liquidates what is due in account `id` (its `report` as it stands, its isolated
    /// positions at their threshold `isolated_due`) unless a guard defers it. Returns the
    /// account's standing after the liquidation, when one ran (what the caller bands it on).
    pub(super) fn maybe_liquidate(
        &mut self,
        id: &str,
        report: &MarginReport,
        isolated_due: &[String],
        effects: &mut Vec<Effect>,
    ) -> Option<LiquidationStanding> {
        // Any index its figures move with (collateral and settlement coins as well as the
        // positions' underlyings): a stale one would liquidate on an old price.
        let stale = self.accounts.get(id).and_then(|account| {
            self.indices_of(account)
                .into_iter()
                .find(|index| self.index_is_stale(index))
                .map(str::to_owned)
        });
        if let Some(stale) = stale {
            effects.push(Effect::LiquidationDeferred {
                account: id.to_owned(),
                reason: DeferralReason::StaleIndex,
                detail: format!("no fresh {stale} index source; liquidation waits for one"),
            });
            return None;
        }
        let guards = &self.config.guards;
        let now = self.now;
        let account = self.accounts.monitoring_mut(id)?;
        let (count, since) = match account.breach {
            Some((count, since)) => (count + 1, since),
            None => (1, now),
        };
        account.breach = Some((count, since));
        let persisted = count >= guards.liquidation_persist_updates
            && now.as_millisecond() - since.as_millisecond() >= guards.liquidation_persist_ms;
        if !persisted {
            effects.push(Effect::LiquidationDeferred {
                account: id.to_owned(),
                reason: DeferralReason::BreachNotPersistent,
                detail: format!("{count} evaluation(s) in breach since {since}"),
            });
            return None;
        }
        for name in isolated_due {
            self.liquidate_position(id, name, Pool::Isolated, None, effects);
        }
        let mut after = None;
        if report.state >= AccountState::Liquidating {
            // The report monitoring read is the account as it stands unless an isolated
            // position was liquidated since; it is also the cross report the first step needs
            // outside portfolio mode (where the two details differ only by the attribution of
            // the requirement to positions, which the choice of the position reads).
            let known = (isolated_due.is_empty() && report.mode != MarginMode::Portfolio)
                .then(|| LiquidationStanding::of(report.clone()));
            after = self.liquidate_cross(id, known, effects);
        }
        if let Some(account) = self.accounts.monitoring_mut(id) {
            account.breach = None;
        }
        self.reindex(id);
        let after = match after {
            Some(standing) => standing,
            None => LiquidationStanding::of(self.report(id).ok()?),
        };
        self.track_state(id, &after.standing(), effects);
        Some(after)
    }

    /// Partial and gradual liquidation of the cross pool (DESIGN.md 8.2): close the position that
    /// frees the most maintenance margin per unit of notional, at most a fraction of a large one
    /// per step, until the account is back above the liquidation threshold.
    /// `known`: the account's cross standing as it stands, when the caller has it (checked
    /// against a fresh report in debug builds, as every standing a step follows). Each step
    /// hands the standing it chose its position by to the step, which reads its figures before
    /// the trade from it, and returns the standing after it when it can follow it exactly (see
    /// [`LiquidationStanding`]): a report is made only where it cannot. Returns the account's
    /// standing when it is known as the account stands (the liquidation ended on it).
    pub(super) fn liquidate_cross(
        &mut self,
        id: &str,
        known: Option<LiquidationStanding>,
        effects: &mut Vec<Effect>,
    ) -> Option<LiquidationStanding> {
        let mut known = known;
        for _ in 0..self.config.liquidation.max_steps {
            let standing = match known.take() {
                Some(standing) => {
                    #[cfg(debug_assertions)]
                    {
                        let fresh = self.report(id).ok().map(LiquidationStanding::of);
                        assert!(
                            fresh.as_ref().is_some_and(|f| f.same_figures(&standing)),
                            "{id}: the cross standing known is not the account's: {standing:?} against {fresh:?}"
                        );
                    }
                    standing
                }
                None => match self.report(id) {
                    Ok(report) => LiquidationStanding::of(report),
                    Err(_) => return None,
                },
            };
            if standing.state < AccountState::Liquidating {
                return Some(standing);
            }
            if standing.equity <= Decimal::ZERO {
                // Bankrupt: partial steps at the mark would only realise the loss into a negative
                // balance. Close everything, the largest position last, which the insurance fund
                // covers or, beyond it, is deleveraged at the bankruptcy price.
                self.close_bankrupt(id, &standing.positions, effects);
                break;
            }
            let choice = standing
                .positions
                .iter()
                .filter(|p| !p.isolated && !p.size.value().is_zero())
                .max_by(|a, b| {
                    // A position worth nothing that still requires margin (a short option far
                    // out of the money) frees margin at no cost: first. One worth nothing that
                    // requires nothing (a long option far out of the money) frees nothing, but
                    // while it is held the pool's loans cannot be repaid from its collateral
                    // (`cover_deficit`): last.
                    let rate = |p: &PositionReport| {
                        if p.value.is_zero() {
                            return if p.maintenance_margin.value() > Decimal::ZERO {
                                f64::INFINITY
                            } else {
                                f64::NEG_INFINITY
                            };
                        }
                        (p.maintenance_margin.value() / p.value.value().abs())
                            .to_f64()
                            .unwrap_or(0.0)
                    };
                    rate(a)
                        .total_cmp(&rate(b))
                        .then_with(|| b.instrument.cmp(&a.instrument))
                })
                .map(|p| p.instrument.clone());
            let Some(name) = choice else {
                break;
            };
            known = self.liquidate_position(id, &name, Pool::Cross, Some(&standing), effects);
        }
        self.cover_deficit(id, effects);
        None
    }

    /// Closes every cross position of a bankrupt account (`positions`: its report's), smallest
    /// value first.
    pub(super) fn close_bankrupt(
        &mut self,
        id: &str,
        positions: &[PositionReport],
        effects: &mut Vec<Effect>,
    ) {
        let mut order: Vec<(String, Decimal)> = positions
            .iter()
            .filter(|p| !p.isolated)
            .map(|p| (p.instrument.to_string(), p.value.value().abs()))
            .collect();
        order.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        for (name, _) in order {
            // Each position closes whole (`liquidate_position` closes whole when bankrupt).
            for _ in 0..self.config.liquidation.max_steps {
                let held = self
                    .accounts
                    .get(id)
                    .is_some_and(|a| a.positions.contains_key(name.as_str()));
                if !held {
                    break;
                }
                self.liquidate_position(id, &name, Pool::Cross, None, effects);
            }
        }
    }

    /// The liquidation fee of closing `quantity` (absolute) of `instrument` at `mark`, before
    /// it is capped by what the account holds: its notional times the fee rate, rounded down.
    pub(super) fn liquidation_fee(
        &self,
        instrument: &Instrument,
        quantity: Decimal,
        mark: Decimal,
    ) -> Decimal {
        rounding::credit(
            solvent_risk::standard::notional(instrument, quantity, mark)
                * self.config.liquidation.fee_rate,
            self.venue
                .asset(&instrument.settlement)
                .map_or(8, |a| a.precision),
        )
    }

    /// One liquidation step of one position: at the mark, vs the market, with the fee to the
    /// insurance fund. A position the insurance fund cannot make whole is deleveraged instead.
    /// `known`: the account's cross standing as it stands, when the caller has it; else it is
    /// read from a report here, for a cross step only (an isolated step reads none). Returns the
    /// cross standing after the step where it is known exactly without another report (see
    /// [`Self::standing_after_fee`]).
    pub(super) fn liquidate_position(
        &mut self,
        id: &str,
        name: &str,
        pool: Pool,
        known: Option<&LiquidationStanding>,
        effects: &mut Vec<Effect>,
    ) -> Option<LiquidationStanding> {
        let isolated = pool == Pool::Isolated;
        // The cross pool's figures before the step: whether it is bankrupt, and the
        // maintenance margin the step frees (which caps its fee).
        let before: Option<(bool, Decimal)> = if isolated {
            None
        } else {
            match known {
                Some(standing) => Some(standing.before_step()),
                None => self
                    .report(id)
                    .ok()
                    .map(|report| LiquidationStanding::of(report).before_step()),
            }
        };
        let position = self
            .accounts
            .get(id)
            .and_then(|a| a.positions.get(name))
            .cloned()?;
        let instrument = Arc::clone(&position.instrument);
        let Ok(surfaces) = self.surfaces() else {
            return None;
        };
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        let Ok(mark) = view.mark(&instrument) else {
            return None;
        };
        let mark = mark.price;
        // A coin without an index of its own counts at par (read from the market directly: a
        // missing index here is no error to build and drop at every step).
        let notional_usd = solvent_risk::standard::notional(&instrument, position.size, mark)
            * self
                .market
                .index
                .get(instrument.settlement.as_str())
                .map_or(Decimal::ONE, |price| price.value());
        let params = &self.config.liquidation;
        let bankrupt = before.is_some_and(|(bankrupt, _)| bankrupt);
        let whole = isolated || bankrupt || notional_usd <= params.full_close_notional_usd;
        let step = instrument.size_step;
        let mut quantity = if whole {
            position.size.abs()
        } else {
            ((position.size.abs() * params.max_step_fraction) / step).ceil() * step
        };
        if instrument.style == Style::Inverse && !matches!(instrument.terms, Terms::Option { .. }) {
            quantity = (quantity / instrument.contract_size).ceil() * instrument.contract_size;
        }
        let quantity = quantity.min(position.size.abs());
        let signed = if position.size > Decimal::ZERO {
            -quantity
        } else {
            quantity
        };
        let fee = self.liquidation_fee(&instrument, quantity, mark);
        let last = quantity == position.size.abs()
            && self.accounts.get(id).is_some_and(|a| {
                a.positions
                    .values()
                    .filter(|p| p.isolated == isolated)
                    .count()
                    <= 1
                    || isolated
            });
        if last && self.deleverage_if_bankrupt(id, &instrument, signed, mark, isolated, effects) {
            return None;
        }
        let maintenance_before = before.map_or(Decimal::ZERO, |(_, maintenance)| maintenance);
        self.trade(
            id,
            &instrument,
            signed,
            mark,
            TransferReason::LiquidationPnl,
            effects,
        );
        self.trade_external(&instrument, -signed, mark, effects);
        let holder =
            LedgerAccount::of_position(id, name, isolated && quantity < position.size.abs());
        // The fee comes out of what the account still has: never beyond its cash, and never so
        // much that it turns the account's equity negative (the fee must not cause a bankruptcy).
        // Nor so much that the step cannot raise health: at most half the share of equity matching
        // the share of maintenance margin the step freed (health then grows by the factor
        // (1 - freed/2) / (1 - freed) per step), so liquidation stays partial and gradual.
        let balance = self.ledger.balance(&holder, &instrument.settlement);
        let cash = balance.max(Decimal::ZERO);
        let after_trade = if isolated { None } else { self.report(id).ok() };
        let cap = if isolated {
            cash
        } else {
            after_trade.as_ref().map_or(Decimal::ZERO, |r| {
                if r.settlement_asset != instrument.settlement || maintenance_before.is_zero() {
                    return Decimal::ZERO;
                }
                let freed = (Decimal::ONE - r.maintenance_margin.value() / maintenance_before)
                    .max(Decimal::ZERO);
                r.equity.value().max(Decimal::ZERO) * freed / Decimal::TWO
            })
        };
        let precision = self
            .venue
            .asset(&instrument.settlement)
            .map_or(8, |a| a.precision);
        let charged = rounding::credit(fee.min(cash).min(cap), precision);
        if charged > Decimal::ZERO {
            self.move_money(
                &holder,
                &LedgerAccount::InsuranceFund,
                &instrument.settlement,
                charged,
                TransferReason::LiquidationFee,
                effects,
            );
            self.insurance_changed(
                &instrument.settlement,
                charged,
                InsuranceFundReason::LiquidationFee,
                effects,
            );
        }
        effects.push(Effect::Liquidation {
            account: id.to_owned(),
            instrument: name.to_owned(),
            size: Quantity(signed),
            price: Price(mark),
            fee: Amount(charged),
            reason: if isolated {
                LiquidationReason::IsolatedHealthBelowThreshold
            } else {
                LiquidationReason::HealthBelowThreshold
            },
        });
        after_trade.and_then(|report| {
            self.standing_after_fee(report, &instrument.settlement, balance, charged)
        })
    }

    /// The cross standing after a liquidation fee of `charged` left the wallet's `coin`, whose
    /// balance was `balance` before it, derived from `report` (the account's report just
    /// before the fee) without another report, where that is exact: no fee, or a fee that
    /// leaves its coin at or above zero in an account outside portfolio margin. There the
    /// requirement reads the wallet only through the margins of loans (coins below zero), and
    /// the state only through the equity, which moves by the change of the coin's term of the
    /// collateral value (`balance_collateral_value`, the report's own term). Debug builds check
    /// the result against a fresh report at the next step.
    fn standing_after_fee(
        &self,
        report: MarginReport,
        coin: &str,
        balance: Decimal,
        charged: Decimal,
    ) -> Option<LiquidationStanding> {
        if charged.is_zero() {
            return Some(LiquidationStanding::of(report));
        }
        let after = balance - charged;
        if report.mode == MarginMode::Portfolio
            || !report.currencies.is_empty()
            || after < Decimal::ZERO
        {
            return None;
        }
        let report_asset = self.venue.assets.get(report.settlement_asset.as_str())?;
        let asset = self.venue.assets.get(coin)?;
        let surfaces = self.surfaces().ok()?;
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        let term = |amount: Decimal| {
            solvent_risk::account::balance_collateral_value(&view, report_asset, asset, amount).ok()
        };
        let equity = report.equity.value() - (term(balance)? - term(after)?);
        let maintenance_margin = report.maintenance_margin.value();
        let (health, state) =
            solvent_risk::report::standing(equity, maintenance_margin, &self.venue.thresholds);
        Some(LiquidationStanding {
            equity,
            initial_margin: report.initial_margin.value(),
            maintenance_margin,
            health,
            state,
            settlement_asset: report.settlement_asset,
            positions: report.positions,
            scenario_sides: report.scenario_sides,
        })
    }
}

/// An account's standing as liquidation follows it: the pool's figures and state, and its
/// positions' lines (the choice of the position to close, the bands set after it). Read from a
/// margin report, or followed from the report after a step's trade through the step's fee
/// ([`Engine::standing_after_fee`]), which spares a report per step.
#[derive(Debug)]
pub(super) struct LiquidationStanding {
    equity: Decimal,
    initial_margin: Decimal,
    maintenance_margin: Decimal,
    health: Option<f64>,
    state: AccountState,
    settlement_asset: CompactString,
    positions: Vec<PositionReport>,
    scenario_sides: Vec<solvent_risk::portfolio_margin::ScenarioSides>,
}

impl LiquidationStanding {
    /// The standing a report gives.
    pub(super) fn of(report: MarginReport) -> Self {
        Self {
            equity: report.equity.value(),
            initial_margin: report.initial_margin.value(),
            maintenance_margin: report.maintenance_margin.value(),
            health: report.health,
            state: report.state,
            settlement_asset: report.settlement_asset,
            positions: report.positions,
            scenario_sides: report.scenario_sides,
        }
    }

    /// What a step reads of the pool before its trade: whether it is bankrupt, and its
    /// maintenance margin (which caps the step's fee).
    fn before_step(&self) -> (bool, Decimal) {
        (self.equity <= Decimal::ZERO, self.maintenance_margin)
    }

    /// The standing as monitoring reads it.
    pub(super) fn standing(&self) -> Standing<'_> {
        Standing {
            equity: Amount(self.equity),
            initial_margin: Amount(self.initial_margin),
            maintenance_margin: Amount(self.maintenance_margin),
            health: self.health,
            state: self.state,
            settlement_asset: &self.settlement_asset,
            positions: &self.positions,
            scenario_sides: &self.scenario_sides,
        }
    }

    /// The same figures as `other` (the debug check of a standing followed without a report).
    #[cfg(debug_assertions)]
    fn same_figures(&self, other: &Self) -> bool {
        self.equity == other.equity
            && self.initial_margin == other.initial_margin
            && self.maintenance_margin == other.maintenance_margin
            && self.health == other.health
            && self.state == other.state
            && self.settlement_asset == other.settlement_asset
            && self.positions == other.positions
            && self.scenario_sides == other.scenario_sides
    }
}
