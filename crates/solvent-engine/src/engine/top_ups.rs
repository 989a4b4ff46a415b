//! Automated top-ups and dynamic reallocation to isolated positions (DESIGN.md 7).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    /// Applies the account's automated top-ups and dynamic reallocation to the figures of
    /// `report`; returns whether money moved (the caller then recomputes the figures).
    pub(super) fn apply_top_ups(
        &mut self,
        id: &str,
        report: &MarginReport,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let Some(account) = self.accounts.get(id) else {
            return false;
        };
        if account.top_ups.is_empty() {
            return false;
        }
        let day = self.now.as_second().div_euclid(86_400);
        let rules: Vec<(usize, crate::event::SetAutoTopUp, Decimal)> = account
            .top_ups
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let used = if r.day == day { r.used } else { Decimal::ZERO };
                let room = r
                    .rule
                    .per_event_cap
                    .value()
                    .min(r.rule.per_day_cap.value() - used)
                    .max(Decimal::ZERO);
                (index, r.rule.clone(), room)
            })
            .collect();
        let mut moved_any = false;
        for (index, rule, room) in rules {
            if room.is_zero() {
                continue;
            }
            let trigger = rule.trigger_health.to_f64().unwrap_or(0.0);
            let target = rule.target_health.to_f64().unwrap_or(0.0);
            let mut grants: Vec<(
                LedgerAccount,
                LedgerAccount,
                String,
                Decimal,
                TransferReason,
            )> = Vec::new();
            match (&rule.instrument, rule.source) {
                (None, crate::event::TopUpSource::External) => {
                    if report.health.is_some_and(|h| h < trigger) {
                        let need = Decimal::try_from(target).unwrap_or(Decimal::ZERO)
                            * report.maintenance_margin.value()
                            - report.equity.value();
                        grants.push((
                            LedgerAccount::External,
                            LedgerAccount::Wallet(id.into()),
                            report.settlement_asset.to_string(),
                            need.min(room),
                            TransferReason::TopUp,
                        ));
                    }
                }
                (Some(name), source) => {
                    let Some(line) = report
                        .positions
                        .iter()
                        .find(|p| p.instrument == name && p.isolated)
                    else {
                        continue;
                    };
                    if !line.isolated_health.is_some_and(|h| h < trigger) {
                        continue;
                    }
                    let equity = line.isolated_equity.map_or(Decimal::ZERO, |e| e.value());
                    let need = Decimal::try_from(target).unwrap_or(Decimal::ZERO)
                        * line.maintenance_margin.value()
                        - equity;
                    let from = match source {
                        crate::event::TopUpSource::External => LedgerAccount::External,
                        crate::event::TopUpSource::CrossPool => LedgerAccount::Wallet(id.into()),
                    };
                    let mut amount = need.min(room);
                    if source == crate::event::TopUpSource::CrossPool {
                        // Never below the pool's own initial margin.
                        let free = report.available.value().max(Decimal::ZERO);
                        let held = self
                            .ledger
                            .balance(&from, &line.settlement)
                            .max(Decimal::ZERO);
                        amount = amount.min(free).min(held);
                    }
                    grants.push((
                        from,
                        LedgerAccount::Isolated(id.into(), name.as_str().into()),
                        line.settlement.to_string(),
                        amount,
                        if source == crate::event::TopUpSource::External {
                            TransferReason::TopUp
                        } else {
                            TransferReason::Reallocation
                        },
                    ));
                }
                (None, crate::event::TopUpSource::CrossPool) => {
                    let below = report
                        .positions
                        .iter()
                        .any(|p| p.isolated && p.isolated_health.is_some_and(|h| h < trigger));
                    if !below {
                        continue;
                    }
                    let Some(account) = self.accounts.get(id) else {
                        continue;
                    };
                    let buffer = account.buffer;
                    let Ok(portfolio) = self.portfolio_of(account) else {
                        continue;
                    };
                    let Ok(surfaces) = self.surfaces() else {
                        continue;
                    };
                    let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
                    let policy = AllocationPolicy {
                        buffer,
                        trigger_health: trigger,
                        target_health: target,
                    };
                    let Ok(allocation) =
                        solvent_risk::allocation::allocate(&portfolio, &view, policy)
                    else {
                        continue;
                    };
                    let mut left = room;
                    for recommended in allocation.moves {
                        let amount = recommended.amount.value().min(left);
                        left -= amount;
                        grants.push((
                            LedgerAccount::Wallet(id.into()),
                            LedgerAccount::Isolated(
                                id.into(),
                                recommended.instrument.as_str().into(),
                            ),
                            recommended.asset.clone(),
                            amount,
                            TransferReason::Reallocation,
                        ));
                    }
                }
            }
            let mut used = Decimal::ZERO;
            for (from, to, asset, amount, reason) in grants {
                let precision = self.venue.asset(&asset).map_or(8, |a| a.precision);
                let amount = rounding::credit(amount, precision);
                if amount <= Decimal::ZERO {
                    continue;
                }
                self.move_money(&from, &to, &asset, amount, reason, effects);
                used += amount;
            }
            if used > Decimal::ZERO {
                moved_any = true;
                if let Some(rule) = self
                    .accounts
                    .get_mut(id)
                    .and_then(|a| a.top_ups.get_mut(index))
                {
                    if rule.day != day {
                        rule.day = day;
                        rule.used = Decimal::ZERO;
                    }
                    rule.used += used;
                }
            }
        }
        moved_any
    }
}
