//! Interest on loans (issue 10, item 3): a wallet's negative balance in an asset whose venue
//! schedule charges interest (`[collateral.X] interest`) pays it by the hour, from the wallet to
//! the fee account, as trading fees are booked; money is moved, never made.
//!
//! Time is the events' own: an event whose time crosses one or more whole hours (UTC, hh:00)
//! first charges each of those hours, one at a time, on the loans held at that hour, before the
//! event itself applies. Each hour's charge is `loan x hourly rate`, rounded up to the asset's
//! precision (the venues round toward themselves), and it adds to the loan, as Bybit and OKX add
//! unpaid interest to the liability; the next hour is charged on the larger loan.
//!
//! Which hours a loan pays follows the venue's rule ([`InterestRule`]):
//! - `hour_snapshot` (Bybit, OKX): only the hours whose start finds the loan outstanding;
//! - `started_hour` (Binance): those, and also the hour in which a loan is taken or grows: after
//!   an event, a wallet that paid out and whose loan is larger than the loan already charged for
//!   the current hour pays the hour on the difference at once. What each wallet's loan was
//!   charged for in the current hour is kept ([`Engine::interest_covered`]) and hashed.
//!
//! A refused event takes nothing: the hours it would have crossed are charged by the next
//! accepted event, exactly as they would have been.

use solvent_core::venue::{InterestRule, InterestSchedule};

#[allow(clippy::wildcard_imports)]
use super::*;

/// Seconds in an hour: the venues charge by the whole UTC hour.
const HOUR_SECONDS: i64 = 3_600;

/// The most hours one event may cross while loans accrue interest: a year (8,784 hours in a
/// leap year). Hours are charged one by one (each on the loan the previous one left), so a
/// longer gap is refused rather than looped over; an event inside the gap is accepted.
pub const MAX_INTEREST_HOURS: i64 = 8_784;

/// The interest an event's time owes before the event applies: the charges, in order, and what
/// each started-hour loan is covered for in the hour the event lands in.
#[derive(Debug, Default)]
pub(super) struct InterestPlan {
    /// `(account, asset, amount)`, in the order they are booked: hour by hour, then asset by
    /// asset in the venue's order, then account by account by id.
    charges: Vec<(CompactString, CompactString, Decimal)>,
    /// The new hour's coverage when the event crosses a whole hour; `None` when it stays in the
    /// hour of the previous event.
    covered: Option<BTreeMap<(CompactString, CompactString), Decimal>>,
}

/// What booking a plan replaced, to undo it if the event is refused.
#[derive(Debug)]
pub(super) struct Booked {
    charges: Vec<(CompactString, CompactString, Decimal)>,
    covered: Option<BTreeMap<(CompactString, CompactString), Decimal>>,
}

/// The venue's interest-bearing assets, in its order, with their schedule and precision.
fn schedules(venue: &Venue) -> Vec<(CompactString, InterestSchedule, u32)> {
    venue
        .collateral
        .iter()
        .filter_map(|(symbol, schedule)| {
            let interest = schedule.interest.clone()?;
            let precision = venue.assets.get(symbol.as_str())?.precision;
            Some((symbol.as_str().into(), interest, precision))
        })
        .collect()
}

/// One hour's interest on a loan of `loan` (positive), rounded up to `precision`; `None` when
/// it leaves `Decimal`'s range.
fn hour_of_interest(schedule: &InterestSchedule, loan: Decimal, precision: u32) -> Option<Decimal> {
    schedule
        .interest(loan, 1)
        .map(|exact| rounding::requirement(exact, precision))
}

fn out_of_range(what: &str) -> Rejection {
    reject(
        RejectReason::OutOfRange,
        format!("the interest on {what} leaves the range of amounts"),
    )
}

impl Engine {
    /// The interest owed for the whole hours between the engine's time and `ts`, computed
    /// without changing anything.
    ///
    /// # Errors
    /// `out_of_range` when loans accrue over more than [`MAX_INTEREST_HOURS`] or a charge
    /// leaves the range of amounts.
    pub(super) fn interest_plan(&self, ts: Timestamp) -> Result<InterestPlan, Rejection> {
        let crossed =
            ts.as_second().div_euclid(HOUR_SECONDS) - self.now.as_second().div_euclid(HOUR_SECONDS);
        if crossed <= 0 {
            return Ok(InterestPlan::default());
        }
        let schedules = schedules(&self.venue);
        if schedules.is_empty() {
            // A venue update may have taken the schedules away: the new hour covers nothing.
            return Ok(InterestPlan {
                charges: Vec::new(),
                covered: (!self.interest_covered.is_empty()).then(BTreeMap::new),
            });
        }
        let mut loans: Vec<Vec<(CompactString, Decimal)>> = schedules
            .iter()
            .map(|(asset, _, _)| self.ledger.wallet_loans(asset))
            .collect();
        let mut plan = InterestPlan {
            charges: Vec::new(),
            covered: Some(BTreeMap::new()),
        };
        if loans.iter().all(Vec::is_empty) {
            return Ok(plan);
        }
        if crossed > MAX_INTEREST_HOURS {
            return Err(reject(
                RejectReason::OutOfRange,
                format!(
                    "{ts} is {crossed} whole hours after {}, while loans accrue interest: at most {MAX_INTEREST_HOURS} hours are charged at once (send an event in between)",
                    self.now
                ),
            ));
        }
        for _ in 0..crossed {
            for ((asset, schedule, precision), held) in schedules.iter().zip(&mut loans) {
                for (id, loan) in held.iter_mut() {
                    let charge = hour_of_interest(schedule, *loan, *precision)
                        .ok_or_else(|| out_of_range(&format!("{loan} {asset}")))?;
                    if charge > Decimal::ZERO {
                        *loan = loan
                            .checked_add(charge)
                            .ok_or_else(|| out_of_range(&format!("{loan} {asset}")))?;
                        plan.charges.push((id.clone(), asset.clone(), charge));
                    }
                }
            }
        }
        if let Some(covered) = plan.covered.as_mut() {
            for ((asset, schedule, _), held) in schedules.iter().zip(&loans) {
                if schedule.rule == InterestRule::StartedHour {
                    for (id, loan) in held {
                        covered.insert((id.clone(), asset.clone()), *loan);
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Books a plan's charges (each an `interest` transfer from the wallet to the fee account)
    /// and installs its coverage; returns what to undo should the event be refused.
    pub(super) fn book_interest(
        &mut self,
        plan: InterestPlan,
        effects: &mut Vec<Effect>,
    ) -> Booked {
        for (id, asset, amount) in &plan.charges {
            self.move_money(
                &LedgerAccount::Wallet(id.clone()),
                &LedgerAccount::Fees,
                asset,
                *amount,
                TransferReason::Interest,
                effects,
            );
        }
        let covered = plan
            .covered
            .map(|covered| std::mem::replace(&mut self.interest_covered, covered));
        Booked {
            charges: plan.charges,
            covered,
        }
    }

    /// Takes back what [`Self::book_interest`] booked, for a refused event: the same amounts
    /// back to the same wallets, so every balance is as it was to the unit.
    pub(super) fn unbook_interest(&mut self, booked: Booked) {
        for (id, asset, amount) in booked.charges.iter().rev() {
            let _ = self.ledger.transfer(
                &LedgerAccount::Fees,
                &LedgerAccount::Wallet(id.clone()),
                asset,
                *amount,
            );
        }
        if let Some(covered) = booked.covered {
            self.interest_covered = covered;
        }
    }

    /// After an accepted event: the accounts charged for crossed hours are evaluated (their
    /// equity fell), and under the started-hour rule a loan taken or grown by the event pays the
    /// current hour on what it grew by.
    pub(super) fn settle_interest(&mut self, booked: &Booked, effects: &mut Vec<Effect>) {
        let mut charged: BTreeSet<CompactString> =
            booked.charges.iter().map(|(id, _, _)| id.clone()).collect();
        let started: Vec<(CompactString, InterestSchedule, u32)> = schedules(&self.venue)
            .into_iter()
            .filter(|(_, schedule, _)| schedule.rule == InterestRule::StartedHour)
            .collect();
        if !started.is_empty() {
            // Only a wallet that paid something out can have a larger loan.
            let payers: BTreeSet<(CompactString, CompactString)> = effects
                .iter()
                .filter_map(|effect| match effect {
                    Effect::TransferApplied { from, asset, .. }
                        if self.accounts.contains_key(from.as_str()) =>
                    {
                        Some((from.as_str().into(), asset.as_str().into()))
                    }
                    _ => None,
                })
                .collect();
            for (id, asset) in payers {
                let Some((_, schedule, precision)) =
                    started.iter().find(|(symbol, _, _)| *symbol == asset)
                else {
                    continue;
                };
                let loan = -self.ledger.wallet_balance(&id, &asset);
                let key = (id.clone(), asset.clone());
                let covered = self
                    .interest_covered
                    .get(&key)
                    .copied()
                    .unwrap_or(Decimal::ZERO);
                if loan <= covered {
                    continue;
                }
                // A charge that would leave the range is not booked (no venue lends that much);
                // the next whole hour charges the loan as it stands.
                let Some(charge) = hour_of_interest(schedule, loan - covered, *precision) else {
                    continue;
                };
                if charge > Decimal::ZERO {
                    self.move_money(
                        &LedgerAccount::Wallet(id.clone()),
                        &LedgerAccount::Fees,
                        &asset,
                        charge,
                        TransferReason::Interest,
                        effects,
                    );
                    charged.insert(id.clone());
                }
                self.interest_covered.insert(key, loan + charge);
            }
        }
        for id in &charged {
            self.reindex(id);
            self.evaluate(id, Figures::Unreported, effects);
        }
    }

    /// What each started-hour loan has been charged for in the current hour, by (account,
    /// asset): the loan at the hour's start or as grown since, with the interest charged on it.
    #[must_use]
    pub fn interest_covered(&self) -> &BTreeMap<(CompactString, CompactString), Decimal> {
        &self.interest_covered
    }
}
