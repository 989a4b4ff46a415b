//! The insurance fund and auto-deleveraging: every loss is borne by someone, and the fund never
//! goes below zero (DESIGN.md 8.2).

use super::adl_index::{AdlRanking, opposite_sign};
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::config::FundAuthority;
use solvent_core::venue::DeficitPolicy;

impl Engine {
    pub(super) fn insurance_changed(
        &self,
        asset: &str,
        change: Decimal,
        reason: InsuranceFundReason,
        effects: &mut Vec<Effect>,
    ) {
        effects.push(Effect::InsuranceFundChanged {
            asset: asset.to_owned(),
            balance: Amount(self.ledger.balance(&LedgerAccount::InsuranceFund, asset)),
            change: Amount(change),
            reason,
        });
    }

    /// When closing the last position at the mark would leave the account with negative equity
    /// that the insurance fund cannot cover, the position is closed at the bankruptcy price
    /// against the opposite positions ranked by profit x leverage (Hyperliquid, dYdX v4), so the
    /// account ends at exactly nothing and no account without a position pays. Returns whether it
    /// deleveraged.
    pub(super) fn deleverage_if_bankrupt(
        &mut self,
        id: &str,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        mark: Decimal,
        isolated: bool,
        effects: &mut Vec<Effect>,
    ) -> bool {
        if self.venue.deficits == DeficitPolicy::Socialise {
            // The venue shares deficits instead (`cover_from_fund`): the position closes at
            // the market and what the fund cannot pay goes to the accounts in profit.
            return false;
        }
        let holder = LedgerAccount::of_position(id, &instrument.name, isolated);
        let asset = instrument.settlement.clone();
        let Some(position) = self
            .accounts
            .get(id)
            .and_then(|a| a.positions.get(instrument.name.as_str()))
            .cloned()
        else {
            return false;
        };
        // What the cross pool's other coins will pay once sold (`cover_deficit`): the deficit
        // is what is left after them.
        let balance = self.ledger.balance(&holder, &asset)
            + if isolated {
                Decimal::ZERO
            } else {
                self.other_coins_value(id, &asset)
            };
        let outcome = |price: Decimal| {
            trade_position(instrument, position.size, position.entry, signed, price)
        };
        let at_mark = balance + outcome(mark).realised + outcome(mark).premium;
        let deficit = -at_mark;
        if deficit <= Decimal::ZERO {
            return false;
        }
        // Bankruptcy price: the price at which closing leaves the holder with exactly zero.
        let side = if position.size.is_sign_negative() {
            PositionSide::Short
        } else {
            PositionSide::Long
        };
        let bankruptcy = || {
            solvent_risk::liquidation::solve(mark, side, (Decimal::new(1, 12), MAX_PRICE), |p| {
                Ok(balance + outcome(p).realised + outcome(p).premium)
            })
        };
        if self.config.fund == FundAuthority::SystemShard {
            // The fund is the system shard's: this shard cannot know whether it covers the
            // deficit, so the position closes at the market and the deficit is claimed with
            // the position and its bankruptcy price, which the system shard deleverages
            // across shards if the fund falls short (`engine/claims.rs`).
            let Ok(Some(bankruptcy)) = bankruptcy() else {
                return false;
            };
            let claimed = ClaimedPosition {
                instrument: instrument.name.clone(),
                size: Quantity(signed),
                mark: Price(mark),
                bankruptcy_price: Price(bankruptcy),
                isolated,
                fee: Amount(self.liquidation_fee(instrument, signed.abs(), mark)),
            };
            return self.close_and_claim(id, instrument, claimed, effects);
        }
        let fund = self
            .ledger
            .balance(&LedgerAccount::InsuranceFund, &asset)
            .max(Decimal::ZERO);
        if fund >= deficit {
            return false;
        }
        let Ok(Some(bankruptcy)) = bankruptcy() else {
            return false;
        };
        let mut remaining = signed.abs();
        let mut queue = self.take_adl_queue(instrument, side, mark);
        // The queue is the ranking of the state now: each candidate is taken for what it
        // holds now (its size in the candidate is as scored).
        let mut takers: Vec<(CompactString, Decimal)> = Vec::new();
        let mut left = remaining;
        let mut place = 0;
        while !left.is_zero() {
            let Some(candidate) = self.adl_candidate_at(&mut queue, instrument, side, mark, place)
            else {
                break;
            };
            place += 1;
            let other = candidate.account.clone();
            let available = self
                .accounts
                .get(&other)
                .filter(|_| other.as_str() != id)
                .and_then(|a| a.positions.get(instrument.name.as_str()))
                .filter(|p| {
                    p.size.signum() == -position.size.signum()
                        && solvent_risk::standard::unrealized_pnl(instrument, p.size, p.entry, mark)
                            > Decimal::ZERO
                })
                .map(|p| p.size.abs());
            if let Some(available) = available {
                left -= left.min(available);
                takers.push((other, available));
            }
        }
        self.adl_ranked += queue.scorings;
        self.adl_bounded += queue.bounded;
        queue.scorings = 0;
        queue.bounded = 0;
        self.keep_adl_queue(instrument, side, queue);
        if takers.is_empty() {
            return false;
        }
        let precision = self.venue.asset(&asset).map_or(8, |a| a.precision);
        effects.push(Effect::DeficitBeyondFund {
            account: id.to_owned(),
            asset: asset.to_string(),
            deficit: Amount(rounding::requirement(deficit, precision)),
            fund: Amount(fund),
            resolution: DeficitResolution::Adl,
            position: None,
        });
        for (other, available) in takers {
            if remaining.is_zero() {
                break;
            }
            let take = remaining.min(available);
            let sign = signed.signum();
            self.trade(
                id,
                instrument,
                take * sign,
                bankruptcy,
                TransferReason::Adl,
                effects,
            );
            self.trade(
                &other,
                instrument,
                -take * sign,
                bankruptcy,
                TransferReason::Adl,
                effects,
            );
            effects.push(Effect::Adl {
                account: id.to_owned(),
                counterparty: other.to_string(),
                instrument: instrument.name.clone(),
                size: Quantity(-take * sign),
                price: Price(bankruptcy),
            });
            self.reindex(&other);
            self.deleveraged.insert(other.to_string());
            remaining -= take;
        }
        if !remaining.is_zero() {
            // Not enough opposite interest inside: the rest closes at the market.
            let rest = remaining * signed.signum();
            self.trade(
                id,
                instrument,
                rest,
                mark,
                TransferReason::LiquidationPnl,
                effects,
            );
            self.trade_external(instrument, -rest, mark, effects);
            effects.push(Effect::Liquidation {
                account: id.to_owned(),
                instrument: instrument.name.clone(),
                size: Quantity(rest),
                price: Price(mark),
                fee: Amount(Decimal::ZERO),
                reason: LiquidationReason::BankruptBeyondOppositeInterest,
            });
        }
        true
    }

    /// The accounts that can take the other side of a bankrupt `side` position in
    /// `instrument`: the opposite holders in profit at `mark`, ranked by profit x leverage
    /// (Hyperliquid, dYdX v4), highest first, ties by id, as the state stands at this
    /// bankruptcy. The event's first bankruptcy in the contract and side ranks the queue:
    /// through the ADL index where it files the contract's holders (`engine/adl_index.rs`),
    /// scoring the holders whose group can reach its head, else by scoring every opposite
    /// holder in profit. The queue is kept for the event; a later bankruptcy scores again only
    /// the accounts changed since (a cascade costs one ranking and its changes, not one pass
    /// over the holders per bankruptcy). Either way the queue is put in order only as far as
    /// the bankruptcy walks it.
    fn take_adl_queue(
        &mut self,
        instrument: &Arc<Instrument>,
        side: PositionSide,
        mark: Decimal,
    ) -> AdlRanking {
        // The accounts changed so far are logged for a kept queue before it is taken out.
        self.refile_changed();
        let cached =
            self.adl_queues
                .get_mut(instrument.name.as_str())
                .and_then(|queues| match side {
                    PositionSide::Long => queues.against_longs.take(),
                    PositionSide::Short => queues.against_shorts.take(),
                });
        match cached {
            Some(mut queue) if queue.mark == mark => {
                self.resync_adl_queue(&mut queue, instrument, side, mark);
                queue
            }
            _ => self.adl_ranking(instrument, side, mark),
        }
    }

    /// Keeps `queue` for the next bankruptcy of `side` in `instrument` this event.
    fn keep_adl_queue(&mut self, instrument: &Instrument, side: PositionSide, queue: AdlRanking) {
        let queues = self
            .adl_queues
            .entry(instrument.name.to_string())
            .or_default();
        match side {
            PositionSide::Long => queues.against_longs = Some(queue),
            PositionSide::Short => queues.against_shorts = Some(queue),
        }
    }

    /// The opposite holders in profit of a bankrupt `side` position in `instrument` at `mark`,
    /// each with its slot and ADL score, in no order (see [`adl_order`]).
    pub(super) fn adl_scored(
        &self,
        instrument: &Instrument,
        side: PositionSide,
        mark: Decimal,
    ) -> Vec<(u32, AdlCandidate)> {
        let wanted_sign = opposite_sign(side);
        self.instrument_holders
            .get(instrument.name.as_str())
            .into_iter()
            .flatten()
            .filter_map(|slot| {
                let account = self.accounts.by_slot(*slot)?;
                Some((
                    *slot,
                    self.adl_candidate(account, instrument, wanted_sign, mark)?,
                ))
            })
            .collect()
    }

    /// `account` as a candidate to take the other side (positions of `wanted_sign`) in
    /// `instrument` at `mark`, with its score; `None` when it holds no such position in profit.
    pub(super) fn adl_candidate(
        &self,
        account: &Account,
        instrument: &Instrument,
        wanted_sign: Decimal,
        mark: Decimal,
    ) -> Option<AdlCandidate> {
        let p = account.positions.get(instrument.name.as_str())?;
        if p.size.signum() != wanted_sign {
            return None;
        }
        let profit = solvent_risk::standard::unrealized_pnl(instrument, p.size, p.entry, mark);
        if profit <= Decimal::ZERO {
            return None;
        }
        let notional = solvent_risk::standard::notional(instrument, p.size, mark);
        // Leverage from the candidate's equity now (profitable opposite holders of this
        // instrument only, so the count is bounded by its open interest holders).
        let equity = self
            .ranking_equity(account)
            .unwrap_or(Decimal::ONE)
            .max(Decimal::new(1, 6));
        let score = (profit * notional / equity).to_f64().unwrap_or(0.0);
        Some(AdlCandidate {
            account: account.id.clone(),
            score,
            size: p.size.abs(),
        })
    }

    /// The equity an ADL candidate is ranked by: its margin report's. A cross account whose
    /// preparation for the measured kernel still holds gives the same figure from it
    /// (`engine/prepared.rs`), and one the ADL index can file in a group from its wallet and
    /// positions alone ([`Self::filed_equity`]); both are checked against the report in debug
    /// builds and cost a fraction of it, which was nearly all of ranking a crowded contract.
    fn ranking_equity(&self, account: &Account) -> Result<Decimal, Rejection> {
        if let Some(equity) = self
            .prepared_equity(account)
            .or_else(|| self.filed_equity(account))
        {
            #[cfg(debug_assertions)]
            if let Ok(report) = self.report(&account.id) {
                assert_eq!(
                    report.equity.value(),
                    equity,
                    "{}: the prepared or filed equity disagrees with the margin report",
                    account.id
                );
            }
            return Ok(equity);
        }
        self.report(&account.id).map(|r| r.equity.value())
    }

    /// This engine's first `limit` candidates to take the other side of a bankrupt `side`
    /// position in `instrument` at `mark`, in the order of its ADL queue: what an account
    /// shard offers for the cluster's merged ranking (docs/scale.md, "Money across shards").
    ///
    /// # Errors
    /// [`Rejection`] naming an unknown instrument.
    pub fn adl_candidates(
        &self,
        instrument: &str,
        side: PositionSide,
        mark: Decimal,
        limit: usize,
    ) -> Result<Vec<AdlCandidate>, Rejection> {
        let instrument = self.instrument(instrument)?;
        let mut ranking = self.queue_ranking(&instrument, side, mark);
        let mut ranked = Vec::new();
        for place in 0..limit {
            match self.adl_candidate_at(&mut ranking, &instrument, side, mark, place) {
                Some(candidate) => ranked.push(candidate.clone()),
                None => break,
            }
        }
        Ok(ranked)
    }

    /// The first candidates of the ADL queue of a bankrupt `side` position in `instrument` at
    /// `mark`, in order, leaving out `excluded` (the bankrupt account), until their sizes reach
    /// `quantity`: an account shard's offer for the cluster's merged ranking (docs/scale.md,
    /// "Money across shards"; why no more is needed: `solvent_cluster::adl`). The ADL index is
    /// filed first (built at the first call, kept up to date by every event after it), so a
    /// crowded contract is ranked through it: about as many candidates are scored as are
    /// offered, not every holder of the contract.
    ///
    /// # Errors
    /// [`Rejection`] naming an unknown instrument.
    pub fn adl_candidates_reaching(
        &mut self,
        instrument: &str,
        side: PositionSide,
        mark: Decimal,
        quantity: Decimal,
        excluded: &str,
    ) -> Result<Vec<AdlCandidate>, Rejection> {
        let instrument = self.instrument(instrument)?;
        self.file_adl_index();
        let mut ranking = self.queue_ranking(&instrument, side, mark);
        let mut offered = Vec::new();
        let mut reached = Decimal::ZERO;
        let mut place = 0;
        while reached < quantity {
            let Some(candidate) =
                self.adl_candidate_at(&mut ranking, &instrument, side, mark, place)
            else {
                break;
            };
            place += 1;
            if candidate.account != excluded {
                reached += candidate.size;
                offered.push(candidate.clone());
            }
        }
        self.adl_ranked += ranking.scorings;
        self.adl_bounded += ranking.bounded;
        Ok(offered)
    }

    /// The net worth in `asset` of the account's wallet balances of other coins, at the index:
    /// holdings count at what selling them raises (rounded down, as [`Self::sell_collateral_for`]
    /// credits them), loans at what repaying them costs (rounded up). A coin without a price
    /// counts for nothing when held (so the deficit is never understated) and is not subtracted
    /// when owed (its loan stays open, as `cover_deficit` leaves it).
    pub(super) fn other_coins_value(&self, id: &str, asset: &str) -> Decimal {
        let Ok(target) = self.venue.asset(asset) else {
            return Decimal::ZERO;
        };
        let Ok(surfaces) = self.surfaces() else {
            return Decimal::ZERO;
        };
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        let Ok(target_usd) = view.asset_usd(target) else {
            return Decimal::ZERO;
        };
        if target_usd <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        let mut total = Decimal::ZERO;
        for (symbol, held) in self.ledger.wallet(id) {
            if symbol == asset || held.is_zero() {
                continue;
            }
            let Ok(other) = self.venue.asset(symbol) else {
                continue;
            };
            let Ok(other_usd) = view.asset_usd(other) else {
                continue;
            };
            let Some(in_target) = held
                .abs()
                .checked_mul(other_usd)
                .and_then(|usd| usd.checked_div(target_usd))
            else {
                continue;
            };
            if held > Decimal::ZERO {
                total += rounding::credit(in_target, target.precision);
            } else {
                total -= rounding::requirement(in_target, target.precision);
            }
        }
        total
    }

    /// Once no cross position is left, a negative balance is repaid from the account's other
    /// collateral, sold at the index; what that cannot pay is covered by the insurance fund
    /// (which may go negative: the venue's own loss, never another account's). A loan of a
    /// borrowable asset is left open unless the pool is in breach or its equity is negative.
    pub(super) fn cover_deficit(&mut self, id: &str, effects: &mut Vec<Effect>) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        if !account.positions.values().all(|p| p.isolated) {
            return;
        }
        let wallet = LedgerAccount::Wallet(id.into());
        let assets: Vec<String> = self.venue.assets.keys().cloned().collect();
        for asset in &assets {
            let balance = self.ledger.balance(&wallet, asset);
            if balance >= Decimal::ZERO {
                continue;
            }
            let borrowable = self
                .venue
                .collateral
                .get(asset)
                .is_some_and(|s| s.borrow.is_some());
            // A loan may stay open while the pool can carry it; once the pool is in breach with
            // no cross position left to close, the loan itself is what must shrink.
            if borrowable
                && self.report(id).is_ok_and(|r| {
                    r.equity.value() >= Decimal::ZERO && r.state < AccountState::Liquidating
                })
            {
                continue;
            }
            // The account's other collateral pays first: sold to the market at the index (the
            // insurance fund is for what the account cannot pay, not for what it still holds).
            self.sell_collateral_for(id, asset, -balance, &assets, effects);
            let left = self.ledger.balance(&wallet, asset);
            if left < Decimal::ZERO {
                self.cover_from_fund(id, asset, -left, effects);
            }
        }
    }

    /// The insurance fund pays `deficit` of `asset` into the account's wallet as far as it
    /// holds it, never below zero (a negative fund is a loss nobody bears); what it cannot pay
    /// stays the account's debt, reported as such.
    pub(super) fn cover_from_fund(
        &mut self,
        id: &str,
        asset: &str,
        deficit: Decimal,
        effects: &mut Vec<Effect>,
    ) {
        if self.config.fund == FundAuthority::SystemShard {
            self.claim_deficit(id, asset, deficit, effects);
            return;
        }
        let fund = self
            .ledger
            .balance(&LedgerAccount::InsuranceFund, asset)
            .max(Decimal::ZERO);
        let paid = deficit.min(fund);
        if paid > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::InsuranceFund,
                &LedgerAccount::Wallet(id.into()),
                asset,
                paid,
                TransferReason::InsuranceCover,
                effects,
            );
            self.insurance_changed(asset, -paid, InsuranceFundReason::DeficitCovered, effects);
        }
        if paid < deficit {
            let socialised = if self.venue.deficits == DeficitPolicy::Socialise {
                self.socialise(id, asset, deficit - paid, effects)
            } else {
                Decimal::ZERO
            };
            effects.push(Effect::DeficitBeyondFund {
                account: id.to_owned(),
                asset: asset.to_owned(),
                deficit: Amount(deficit),
                fund: Amount(fund),
                resolution: if paid + socialised == deficit {
                    DeficitResolution::Socialised
                } else {
                    DeficitResolution::AccountDebt
                },
                position: None,
            });
        }
    }

    /// Shares `amount` of `asset` owed by bankrupt `id` among the positions in profit settled
    /// in `asset` (perpetuals and futures at their marks; options carry no shared P&L), pro rata
    /// to each one's unrealised profit and never beyond it, and pays it into `id`'s wallet.
    /// Returns what was shared: `amount`, or all the profit there is when that is less.
    ///
    /// Shares are rounded down to the asset's precision; the remainder is handed out one unit
    /// at a time from the largest profit down (ties by account), so the shares sum to exactly
    /// what is returned and money is neither made nor lost. Each payer is examined again before
    /// the event ends (`deleveraged`), since its equity fell. One pass over every account: a
    /// venue that socialises pays it once per deficit beyond its fund, which is rare.
    fn socialise(
        &mut self,
        id: &str,
        asset: &str,
        amount: Decimal,
        effects: &mut Vec<Effect>,
    ) -> Decimal {
        let precision = self.venue.asset(asset).map_or(8, |a| a.precision);
        let payers = self.profit_holders(id, asset);
        let profits: Vec<(&str, Decimal)> = payers
            .iter()
            .map(|p| (p.account.as_str(), p.profit))
            .collect();
        let shares = share_deficit(&profits, amount, precision);
        let wallet = LedgerAccount::Wallet(id.into());
        let mut shared = Decimal::ZERO;
        for (payer, share) in payers.into_iter().zip(shares) {
            if share > Decimal::ZERO {
                let holder =
                    LedgerAccount::of_position(&payer.account, &payer.instrument, payer.isolated);
                self.move_money(
                    &holder,
                    &wallet,
                    asset,
                    share,
                    TransferReason::SocialisedLoss,
                    effects,
                );
                self.deleveraged.insert(payer.account.to_string());
                shared += share;
            }
        }
        shared
    }

    /// The positions in profit settled in `asset` (perpetuals and futures at their marks;
    /// options carry no shared P&L) of every account but `excluding`, each with its unrealised
    /// profit rounded down to the asset's precision: who bears a deficit under
    /// `deficits = "socialise"`, in the book's order of accounts, then by instrument.
    #[must_use]
    pub fn profit_holders(&self, excluding: &str, asset: &str) -> Vec<ProfitHolder> {
        let precision = self.venue.asset(asset).map_or(8, |a| a.precision);
        let mut payers = Vec::new();
        let Ok(surfaces) = self.surfaces() else {
            return payers;
        };
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        for account in self.accounts.values().filter(|a| a.id != excluding) {
            for (name, position) in &account.positions {
                let Ok(instrument) = self.venue.instrument(name) else {
                    continue;
                };
                if instrument.settlement != asset
                    || matches!(instrument.terms, Terms::Option { .. })
                {
                    continue;
                }
                let Ok(mark) = view.mark(&instrument) else {
                    continue;
                };
                let profit = rounding::credit(
                    solvent_risk::standard::unrealized_pnl(
                        &instrument,
                        position.size,
                        position.entry,
                        mark.price,
                    ),
                    precision,
                );
                if profit > Decimal::ZERO {
                    payers.push(ProfitHolder {
                        account: account.id.clone(),
                        instrument: name.to_string(),
                        isolated: position.isolated,
                        profit,
                    });
                }
            }
        }
        payers
    }

    /// Sells the account's other positive balances to the market at the index until `needed` of
    /// `asset` is raised (or nothing is left to sell).
    pub(super) fn sell_collateral_for(
        &mut self,
        id: &str,
        asset: &str,
        needed: Decimal,
        assets: &[String],
        effects: &mut Vec<Effect>,
    ) {
        let wallet = LedgerAccount::Wallet(id.into());
        let mut sales: Vec<(String, Decimal, Decimal)> = Vec::new();
        {
            let Ok(target) = self.venue.asset(asset) else {
                return;
            };
            let Ok(surfaces) = self.surfaces() else {
                return;
            };
            let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
            let Ok(target_usd) = view.asset_usd(target) else {
                return;
            };
            let mut needed = needed;
            for other in assets.iter().filter(|a| a.as_str() != asset) {
                if needed <= Decimal::ZERO {
                    break;
                }
                let held = self.ledger.balance(&wallet, other);
                let Ok(held_asset) = self.venue.asset(other) else {
                    continue;
                };
                let Ok(other_usd) = view.asset_usd(held_asset) else {
                    continue;
                };
                if held <= Decimal::ZERO || other_usd <= Decimal::ZERO {
                    continue;
                }
                // Sell just enough (rounded up in the sold asset), or all of it.
                let wanted =
                    rounding::requirement(needed * target_usd / other_usd, held_asset.precision);
                let sold = wanted.min(held);
                let raised = rounding::credit(sold * other_usd / target_usd, target.precision);
                if sold <= Decimal::ZERO || raised <= Decimal::ZERO {
                    continue;
                }
                sales.push((other.clone(), sold, raised));
                needed -= raised;
            }
        }
        for (other, sold, raised) in sales {
            self.move_money(
                &wallet,
                &LedgerAccount::External,
                &other,
                sold,
                TransferReason::CollateralSale,
                effects,
            );
            self.move_money(
                &LedgerAccount::External,
                &wallet,
                asset,
                raised,
                TransferReason::CollateralSale,
                effects,
            );
        }
    }
}

/// A position in profit that bears its share of a deficit under `deficits = "socialise"`
/// (see [`Engine::profit_holders`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfitHolder {
    /// The account.
    pub account: CompactString,
    /// The instrument.
    pub instrument: String,
    /// Whether the position has its own isolated margin (its share is paid from it).
    pub isolated: bool,
    /// Its unrealised profit at the mark, rounded down to the asset's precision (positive).
    pub profit: Decimal,
}

/// The shares of `amount` that `profits` (account, profit; positive) bear, in their order:
/// pro rata to each profit and never beyond it, each rounded down to `precision` decimals, the
/// remainder handed out one unit at a time from the largest profit down (ties by account, then
/// their order), so the shares sum to exactly `amount`, or to every profit when that is less.
/// One rule for one engine's `socialise` and a cluster's system shard.
#[must_use]
pub fn share_deficit(profits: &[(&str, Decimal)], amount: Decimal, precision: u32) -> Vec<Decimal> {
    let total: Decimal = profits.iter().map(|(_, profit)| *profit).sum();
    if total <= Decimal::ZERO || amount <= Decimal::ZERO {
        return vec![Decimal::ZERO; profits.len()];
    }
    let shared = amount.min(total);
    let mut shares: Vec<Decimal> = profits
        .iter()
        .map(|(_, profit)| rounding::credit(shared * *profit / total, precision))
        .collect();
    let mut left = shared - shares.iter().sum::<Decimal>();
    let unit = Decimal::new(1, precision);
    let mut order: Vec<usize> = (0..profits.len()).collect();
    order.sort_by(|&a, &b| {
        profits[b]
            .1
            .cmp(&profits[a].1)
            .then_with(|| profits[a].0.cmp(profits[b].0))
    });
    while left > Decimal::ZERO {
        let before = left;
        for &i in &order {
            let room = profits[i].1 - shares[i];
            let add = unit.min(left).min(room);
            if add > Decimal::ZERO {
                shares[i] += add;
                left -= add;
            }
            if left <= Decimal::ZERO {
                break;
            }
        }
        if left == before {
            break;
        }
    }
    shares
}

/// One account that can take the other side of a bankrupt position (see
/// [`Engine::adl_candidates`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AdlCandidate {
    /// The account.
    pub account: CompactString,
    /// Its rank key: unrealised profit x notional / equity at the mark, higher first (a
    /// ratio, compared as the engine's ADL queue compares it).
    pub score: f64,
    /// What it holds on the opposite side (absolute contracts): the most it can take.
    pub size: Decimal,
}

/// A contract's ADL queues within one event, where they are ranked by a full scan (see
/// [`Engine::take_adl_queue`]).
#[derive(Clone, Debug, Default)]
pub(super) struct AdlQueues {
    /// The shorts in profit (the counterparties of a bankrupt long).
    against_longs: Option<AdlRanking>,
    /// The longs in profit (the counterparties of a bankrupt short).
    against_shorts: Option<AdlRanking>,
}

/// The ADL queue's order: score highest first, ties by id (ids are unique: a total order).
pub(super) fn adl_order(a: &AdlCandidate, b: &AdlCandidate) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.account.cmp(&b.account))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Walking the queue one candidate at a time, as bankruptcies do, orders it exactly as a
    /// sort of every candidate does, ties on the score included (broken by id).
    #[test]
    fn a_walk_down_the_adl_queue_meets_the_candidates_in_the_full_sort_order() {
        for seed in 0..20u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let count = rng.random_range(0..400);
            let candidates: Vec<AdlCandidate> = (0..count)
                .map(|i| AdlCandidate {
                    account: CompactString::from(format!("acct{:04}", (i * 7919) % 10_000)),
                    // Few distinct scores, so ties are common.
                    score: f64::from(rng.random_range(0..30u32)) / 4.0,
                    size: Decimal::ONE,
                })
                .collect();
            let mut sorted = candidates.clone();
            sorted.sort_by(adl_order);
            let mut queue = AdlRanking::of_all(
                candidates
                    .into_iter()
                    .enumerate()
                    .map(|(slot, c)| (slot as u32, c))
                    .collect(),
            );
            for (index, expected) in sorted.iter().enumerate() {
                let placed = queue.place_through(index, "test", |_, _| Vec::new(), |_| None);
                assert_eq!(placed, Some(expected), "seed {seed}, place {index}");
            }
            assert_eq!(
                queue.place_through(sorted.len(), "test", |_, _| Vec::new(), |_| None),
                None
            );
        }
    }
}
