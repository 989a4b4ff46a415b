//! Evaluation of an account after anything that can change its figures: state changes, margin
//! calls, liquidation when due (DESIGN.md 8.1).

use super::liquidation::LiquidationStanding;
#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    /// The account's margin report; `None`, with empty bands, for an account that cannot be
    /// valued (a venue update left it holding what the market does not price): it is examined at
    /// every update of what it holds until it can be.
    pub(super) fn report_or_unband(&mut self, id: &str) -> Option<MarginReport> {
        let report = self.monitoring_report(id).ok();
        if report.is_none() {
            self.set_bands(id, None);
        }
        report
    }

    /// Recomputes an account's figures and acts on them: state changes, one margin call per
    /// episode, liquidation when due and allowed by the guards.
    pub(super) fn evaluate(&mut self, id: &str, figures: Figures, effects: &mut Vec<Effect>) {
        self.evaluate_known(id, figures, None, effects);
    }

    /// [`Self::evaluate`] given the account's monitoring figures when the caller already has
    /// them (`known`: [`Self::monitoring_report`] of the account as it stands; checked in debug
    /// builds).
    pub(super) fn evaluate_known(
        &mut self,
        id: &str,
        figures: Figures,
        known: Option<MarginReport>,
        effects: &mut Vec<Effect>,
    ) {
        // A price update re-examining the account: the measured kernel, when it serves the
        // account (a cross pool without isolated positions or top-up rules, out of
        // liquidation), gives all monitoring needs. An event addressed to the account changes
        // what a preparation fixes: it takes the full report and drops the preparation, which
        // the next price update makes again (and keeps while only prices move).
        if figures == Figures::Reported {
            // Written only when there is something to drop: a write copies an account still
            // shared with a snapshot's copy (see `AccountBook`).
            if self.accounts.get(id).is_some_and(|a| a.prepared.is_some())
                && let Some(account) = self.accounts.monitoring_mut(id)
            {
                account.prepared = None;
            }
        } else if let Some(prepared) = self.prepared_standing(id)
            && prepared.state < AccountState::Liquidating
        {
            let standing = Standing {
                equity: Amount(prepared.figures.equity),
                initial_margin: Amount(prepared.figures.initial_margin),
                maintenance_margin: Amount(prepared.figures.maintenance_margin),
                health: prepared.health,
                state: prepared.state,
                settlement_asset: &prepared.settlement_asset,
                positions: &[],
                scenario_sides: &[],
            };
            self.evaluations.prepared += 1;
            self.record_examined_id(id);
            self.act_on(id, &standing, figures, effects);
            return;
        }
        self.evaluations.reported += 1;
        self.record_examined_id(id);
        #[cfg(debug_assertions)]
        if let Some(known) = &known {
            assert_eq!(
                Some(known),
                self.monitoring_report(id).ok().as_ref(),
                "{id}: the figures the caller knew are not the account's"
            );
        }
        let Some(mut report) = known.or_else(|| self.report_or_unband(id)) else {
            return;
        };
        if self.apply_top_ups(id, &report, effects) {
            // Money moved in (or between pools) may be an unpegged asset the account did not hold.
            self.reindex(id);
            match self.report_or_unband(id) {
                Some(after) => report = after,
                None => return,
            }
        }
        let standing = Standing::of(&report);
        let isolated_due: Vec<String> = report
            .positions
            .iter()
            .filter(|p| {
                p.isolated
                    && p.isolated_health
                        .is_some_and(|h| h <= self.venue.thresholds.liquidation)
            })
            .map(|p| p.instrument.to_string())
            .collect();
        if report.state < AccountState::Liquidating && isolated_due.is_empty() {
            self.act_on(id, &standing, figures, effects);
            return;
        }
        self.report_figures(id, &standing, figures, effects);
        self.track_state(id, &standing, effects);
        let liquidated = self.maybe_liquidate(id, &report, &isolated_due, effects);
        // Until it is out of danger, an account is re-examined at every price update.
        let after = liquidated.or_else(|| self.report(id).ok().map(LiquidationStanding::of));
        self.set_bands(
            id,
            after.as_ref().map(LiquidationStanding::standing).as_ref(),
        );
    }

    /// Notes `id` as examined, when [`Engine::record_examined`] asks for it.
    fn record_examined_id(&mut self, id: &str) {
        if let Some(examined) = &mut self.examined {
            examined.push(id.into());
        }
    }

    /// Monitoring of an account out of liquidation's reach with no isolated position due: its
    /// figures reported if asked, its state tracked, its breach count cleared, its bands set.
    fn act_on(
        &mut self,
        id: &str,
        standing: &Standing<'_>,
        figures: Figures,
        effects: &mut Vec<Effect>,
    ) {
        self.report_figures(id, standing, figures, effects);
        self.track_state(id, standing, effects);
        if self.accounts.get(id).is_some_and(|a| a.breach.is_some())
            && let Some(account) = self.accounts.monitoring_mut(id)
        {
            account.breach = None;
        }
        self.set_bands(id, Some(standing));
    }

    fn report_figures(
        &self,
        id: &str,
        standing: &Standing<'_>,
        figures: Figures,
        effects: &mut Vec<Effect>,
    ) {
        if figures == Figures::Reported {
            effects.push(Effect::AccountUpdated {
                account: id.to_owned(),
                equity: standing.equity,
                initial_margin: standing.initial_margin,
                maintenance_margin: standing.maintenance_margin,
                health: standing.health,
                state: standing.state,
            });
        }
    }

    pub(super) fn track_state(
        &mut self,
        id: &str,
        report: &Standing<'_>,
        effects: &mut Vec<Effect>,
    ) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        let previous = account.state;
        let call_sent = if report.state == AccountState::Healthy {
            false
        } else {
            account.margin_call_sent || report.state >= AccountState::MarginCall
        };
        let call_now = call_sent && !account.margin_call_sent;
        // Most evaluations change neither: the account is written (and so copied, while a
        // snapshot's copy still shares it; see `AccountBook`) only when one changes.
        if report.state == previous && call_sent == account.margin_call_sent {
            return;
        }
        if let Some(account) = self.accounts.monitoring_mut(id) {
            account.state = report.state;
            account.margin_call_sent = call_sent;
        }
        if report.state != previous {
            effects.push(Effect::StateChanged {
                account: id.to_owned(),
                from: previous,
                to: report.state,
            });
        }
        if call_now {
            effects.push(Effect::MarginCall {
                account: id.to_owned(),
                health: report.health,
                deposit: Amount(
                    (report.initial_margin.value() - report.equity.value()).max(Decimal::ZERO),
                ),
                asset: report.settlement_asset.to_string(),
            });
        }
    }
}
