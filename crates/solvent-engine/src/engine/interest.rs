//! Interest on loans (issue 10, item 3): a wallet's negative balance in an asset whose venue
//! schedule charges interest (`[collateral.X] interest`) pays it by the hour, from the wallet to
//! the fee account, as trading fees are booked; money is moved, never made.
//!
//! Time is the events' own: an event whose time crosses one or more whole hours (UTC, hh:00)
//! first charges each of those hours, one at a time, on the loans held at that hour, before the
//! event itself applies. Each hour's charge is rounded up to the asset's precision (the venues
//! round toward themselves) and adds to the loan (the wallet pays it by going further negative).
//!
//! Which hours a loan pays, and on what, follows the venue's rule ([`InterestRule`]):
//! - `hour_snapshot` (Bybit, OKX): the hours whose start finds the loan outstanding, each on the
//!   loan as it stands, unpaid interest included (both count interest in the liability);
//! - `started_hour` (Binance): those, and also the hour in which a loan is taken or grows, each
//!   on the principal only ("simple interest", added to the debt but never charged itself): after
//!   an event, a wallet whose principal is above what the current hour already covers pays the
//!   hour on the difference at once. Per loan, the principal covered in the current hour, the
//!   interest charged and not yet repaid, and the loan last seen are kept
//!   ([`Engine::interest_covered`]) and hashed; a repayment pays the interest first, as Binance
//!   repays it.
//!
//! A refused event takes nothing: the hours it would have crossed are charged by the next
//! accepted event, exactly as they would have been.

use solvent_core::venue::{InterestRule, InterestSchedule};

#[allow(clippy::wildcard_imports)]
use super::*;

/// Seconds in an hour: the venues charge by the whole UTC hour.
const HOUR_SECONDS: i64 = 3_600;

/// The most hours one event may cross while loans accrue interest: a year (8,784 hours in a
/// leap year). Hours are charged one by one (under `hour_snapshot` each on the loan the previous
/// one left), so a longer gap is refused rather than looped over; an event inside the gap is
/// accepted.
pub const MAX_INTEREST_HOURS: i64 = 8_784;

/// Under the started-hour rule, what one loan (a wallet's negative balance in one asset) stands
/// at: the principal its current hour is charged on, the interest charged and not yet repaid
/// (part of the loan, never itself charged), and the loan as last seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanCover {
    /// Principal the current hour has been charged on.
    pub covered: Decimal,
    /// Interest charged and not yet repaid (inside the loan).
    pub unpaid: Decimal,
    /// The loan (positive) when last seen.
    pub loan: Decimal,
}

/// The interest an event's time owes before the event applies: the charges, in order, and what
/// each started-hour loan is covered for in the hour the event lands in.
#[derive(Debug, Default)]
pub(super) struct InterestPlan {
    /// `(account, asset, amount)`, in the order they are booked: hour by hour, then asset by
    /// asset in the venue's order, then account by account by id.
    charges: Vec<(CompactString, CompactString, Decimal)>,
    /// The new hour's coverage when the event crosses a whole hour; `None` when it stays in the
    /// hour of the previous event.
    covered: Option<BTreeMap<(CompactString, CompactString), LoanCover>>,
}

/// What booking a plan replaced, to undo it if the event is refused.
#[derive(Debug)]
pub(super) struct Booked {
    charges: Vec<(CompactString, CompactString, Decimal)>,
    covered: Option<BTreeMap<(CompactString, CompactString), LoanCover>>,
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
        // Under the started-hour rule each loan's unpaid interest (at most the loan: money moved
        // outside events, by a cluster's claims, can only have lowered it) is not charged.
        let mut unpaid: Vec<Vec<Decimal>> = schedules
            .iter()
            .zip(&loans)
            .map(|((asset, schedule, _), held)| {
                held.iter()
                    .map(|(id, loan)| match schedule.rule {
                        InterestRule::HourSnapshot => Decimal::ZERO,
                        InterestRule::StartedHour => self
                            .interest_covered
                            .get(&(id.clone(), asset.clone()))
                            .map_or(Decimal::ZERO, |cover| cover.unpaid.min(*loan)),
                    })
                    .collect()
            })
            .collect();
        for _ in 0..crossed {
            for (((asset, schedule, precision), held), owed) in
                schedules.iter().zip(&mut loans).zip(&mut unpaid)
            {
                for ((id, loan), owed) in held.iter_mut().zip(owed.iter_mut()) {
                    let charged_on = *loan - *owed;
                    let charge = hour_of_interest(schedule, charged_on, *precision)
                        .ok_or_else(|| out_of_range(&format!("{loan} {asset}")))?;
                    if charge > Decimal::ZERO {
                        *loan = loan
                            .checked_add(charge)
                            .ok_or_else(|| out_of_range(&format!("{loan} {asset}")))?;
                        if schedule.rule == InterestRule::StartedHour {
                            *owed += charge;
                        }
                        plan.charges.push((id.clone(), asset.clone(), charge));
                    }
                }
            }
        }
        if let Some(covered) = plan.covered.as_mut() {
            for (((asset, schedule, _), held), owed) in schedules.iter().zip(&loans).zip(&unpaid) {
                if schedule.rule == InterestRule::StartedHour {
                    for ((id, loan), owed) in held.iter().zip(owed) {
                        let cover = LoanCover {
                            covered: *loan - *owed,
                            unpaid: *owed,
                            loan: *loan,
                        };
                        covered.insert((id.clone(), asset.clone()), cover);
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
            self.accounts.touch(id);
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
            // A loan changes only by money moving in or out of its wallet: every wallet an
            // effect of the event touched is looked at (a repayment pays the interest first).
            let touched: BTreeSet<(CompactString, CompactString)> = effects
                .iter()
                .filter_map(|effect| match effect {
                    Effect::TransferApplied {
                        from, to, asset, ..
                    } => Some([from, to].map(|id| (id.as_str(), asset.as_str()))),
                    _ => None,
                })
                .flatten()
                .filter(|(id, _)| self.accounts.contains_key(id))
                .map(|(id, asset)| (id.into(), asset.into()))
                .collect();
            for (id, asset) in touched {
                let Some((_, schedule, precision)) =
                    started.iter().find(|(symbol, _, _)| *symbol == asset)
                else {
                    continue;
                };
                let key = (id.clone(), asset.clone());
                let before = self.interest_covered.get(&key).copied().unwrap_or_default();
                let loan = (-self.ledger.wallet_balance(&id, &asset)).max(Decimal::ZERO);
                let repaid = (before.loan - loan).max(Decimal::ZERO);
                let unpaid = (before.unpaid - repaid).max(Decimal::ZERO).min(loan);
                let principal = loan - unpaid;
                // A principal repaid and borrowed again inside the hour is a new borrowing, and
                // pays its started hour again.
                let covered = before.covered.min(principal);
                let mut cover = LoanCover {
                    covered,
                    unpaid,
                    loan,
                };
                if principal > covered {
                    // A charge that would leave the range is not booked (no venue lends that
                    // much); the next whole hour charges the loan as it stands.
                    if let Some(charge) =
                        hour_of_interest(schedule, principal - covered, *precision)
                    {
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
                        cover = LoanCover {
                            covered: principal,
                            unpaid: unpaid + charge,
                            loan: loan + charge,
                        };
                    }
                }
                if cover == LoanCover::default() {
                    self.interest_covered.remove(&key);
                } else {
                    self.interest_covered.insert(key, cover);
                }
            }
        }
        for id in &charged {
            self.reindex(id);
            self.evaluate(id, Figures::Unreported, effects);
        }
    }

    /// Under the started-hour rule, each loan's standing in the current hour by (account,
    /// asset): the principal charged for, the unpaid interest and the loan last seen.
    #[must_use]
    pub fn interest_covered(&self) -> &BTreeMap<(CompactString, CompactString), LoanCover> {
        &self.interest_covered
    }
}
