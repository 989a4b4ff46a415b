//! Deficits claimed from a cluster's system shard (docs/scale.md, "Money across shards"): on an
//! account shard the insurance fund is not the engine's to spend, so a bankrupt account's
//! deficit is advanced to it from the `pending_claims` ledger account and claimed; the system
//! shard's answer, an input at its own stream sequence, settles the claim.
//!
//! Between claim and answer the deficit is neither made nor lost: the account's wallet is back
//! at zero and `pending_claims` is short by the deficit (a receivable from the fund). The
//! answer moves what the fund covers from the shard's `insurance_fund` ledger account (the
//! fund's money that passed through this shard: its liquidation fees, less what it drew) into
//! `pending_claims`, and takes what it does not cover back from the account, whose debt it
//! then is, as one engine leaves it when nothing can bear a deficit.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The system shard's answer to one deficit claim of this shard, as the account shard applies
/// it (the message that carries it is `solvent_cluster::system::ClaimAnswer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimAnswer {
    /// The bankrupt account.
    pub account: String,
    /// The asset of the deficit.
    pub asset: String,
    /// The deficit claimed, in `asset` (positive).
    pub claimed: Decimal,
    /// What the fund pays of it: between 0 and `claimed`.
    pub covered: Decimal,
    /// What the whole fund held of `asset` when the system shard answered.
    pub fund_before: Decimal,
    /// What auto-deleveraged counterparties pay towards the deficit, on any shard (each one's
    /// part is an [`AdlAssignment`] applied by its own shard): between 0 and `claimed -
    /// covered`, plus at most what rounding leaves. It passes through the shards'
    /// `insurance_fund` ledger accounts, out of the claimant's and into each payer's, so it
    /// sums to nothing over the shards and leaves the fund as it was.
    pub adl_paid: Decimal,
    /// What the accounts in profit pay towards the deficit under `deficits = "socialise"`, on
    /// any shard (each one's part a [`SocialisedShare`] applied by its own shard), through the
    /// shards' `insurance_fund` ledger accounts as `adl_paid`.
    pub socialised_paid: Decimal,
    /// What the answer leaves uncovered goes back to the account, not into its debt: the claim
    /// was an isolated position's (one engine's wallet bears an isolated loss the fund would
    /// cover, or that nobody is deleveraged for); the account's next evaluation liquidates it
    /// and claims again what its wallet cannot bear.
    pub returned: bool,
    /// The liquidation fee owed when a returned claim was not deleveraged at all (one engine
    /// then closes the position at the mark and charges it), capped by the wallet's cash.
    pub fee: Decimal,
    /// The claim was a deleveraging's remainder, claimed by this (the counterparty's) shard
    /// for a bankrupt account of another: what is uncovered is the bankrupt account's debt,
    /// taken on its own shard ([`Engine::apply_claim_debt`]), so here it leaves the shard's
    /// `insurance_fund` ledger account (through which it reaches that shard).
    pub remainder: bool,
}

/// One position's share of a deficit socialised across shards, applied by the shard that holds
/// it: the account pays `paid` from the position's margin (its wallet, or its isolated margin
/// while the position is held) into the shard's `insurance_fund` ledger account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocialisedShare {
    /// The bankrupt account (on the claiming shard).
    pub bankrupt: String,
    /// The account that pays.
    pub account: String,
    /// The position in profit its share was taken on.
    pub instrument: String,
    /// Whether that position had its own isolated margin.
    pub isolated: bool,
    /// Its share, in the deficit's asset (positive).
    pub paid: Decimal,
    /// The deficit's asset.
    pub asset: String,
}

/// One counterparty's share of a cross-shard auto-deleveraging (docs/scale.md, "Money across
/// shards"), applied by the shard that holds it: its opposite position is reduced by `size`
/// at `mark` against the market (where the bankrupt position was closed) and it pays `paid`,
/// which makes its trade one at the bankruptcy price `price`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdlAssignment {
    /// The bankrupt account (on the claiming shard).
    pub bankrupt: String,
    /// The account deleveraged.
    pub account: String,
    /// The instrument.
    pub instrument: String,
    /// Contracts taken over (positive).
    pub size: Decimal,
    /// The mark the bankrupt position was closed at.
    pub mark: Decimal,
    /// The bankruptcy price: `mark` moved against the counterparty by `paid / size` per
    /// contract (for a linear contract).
    pub price: Decimal,
    /// What the counterparty pays towards the deficit, in the instrument's settlement asset.
    pub paid: Decimal,
}

impl Engine {
    /// Closes bankrupt `id`'s position (its closing trade and bankruptcy price in `claimed`)
    /// for a claim that carries it. A cross position closes on the usual path at the mark, and
    /// its deficit, found once every cross position has closed and the account's other coins
    /// are sold (`cover_deficit`), is claimed with it: returns `false`. An isolated position's
    /// deficit is its margin's: it closes here at the mark (no fee: one engine charges none
    /// when it deleverages, and a returned claim charges it then), and what its margin lacked,
    /// which the close took from the wallet, is claimed with it at once: returns `true`.
    pub(super) fn close_and_claim(
        &mut self,
        id: &str,
        instrument: &Arc<Instrument>,
        claimed: ClaimedPosition,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let isolated = claimed.isolated;
        let signed = claimed.size.value();
        let mark = claimed.mark.value();
        self.claimed_positions.insert(id.to_owned(), claimed);
        if !isolated {
            return false;
        }
        let wallet = LedgerAccount::Wallet(id.into());
        let before = self.ledger.balance(&wallet, &instrument.settlement);
        self.trade(
            id,
            instrument,
            signed,
            mark,
            TransferReason::LiquidationPnl,
            effects,
        );
        self.trade_external(instrument, -signed, mark, effects);
        effects.push(Effect::Liquidation {
            account: id.to_owned(),
            instrument: instrument.name.clone(),
            size: Quantity(signed),
            price: Price(mark),
            fee: Amount::ZERO,
            reason: LiquidationReason::IsolatedHealthBelowThreshold,
        });
        let lost = before - self.ledger.balance(&wallet, &instrument.settlement);
        self.claim_deficit(id, &instrument.settlement, lost, effects);
        self.claimed_positions.remove(id);
        true
    }

    /// Advances `deficit` of `asset` to bankrupt account `id` from `pending_claims` and claims
    /// it from the system shard (a `deficit_beyond_fund` effect, resolution `claimed`), with
    /// the bankrupt position this event closed, if one settled in `asset` did.
    pub(super) fn claim_deficit(
        &mut self,
        id: &str,
        asset: &str,
        deficit: Decimal,
        effects: &mut Vec<Effect>,
    ) {
        if deficit <= Decimal::ZERO {
            return;
        }
        let position = self.claimed_positions.remove(id).filter(|claimed| {
            self.venue
                .instrument(&claimed.instrument)
                .is_ok_and(|instrument| instrument.settlement == asset)
        });
        self.move_money(
            &LedgerAccount::PendingClaims,
            &LedgerAccount::Wallet(id.into()),
            asset,
            deficit,
            TransferReason::DeficitClaimed,
            effects,
        );
        effects.push(Effect::DeficitBeyondFund {
            account: id.to_owned(),
            asset: asset.to_owned(),
            deficit: Amount(deficit),
            fund: Amount::ZERO,
            resolution: DeficitResolution::Claimed,
            position: position.map(Box::new),
        });
    }

    /// Applies the system shard's answer to a deficit claim of this shard, numbered `seq` (its
    /// message's stream sequence, so a replay applies it at the same place): the fund's part
    /// from the shard's `insurance_fund` ledger account into `pending_claims`, the rest taken
    /// back from the account (its debt, a `deficit_beyond_fund` effect with resolution
    /// `account_debt`, as one engine reports a deficit nothing could bear). The account's state
    /// is then tracked, but it is not liquidated again here: its debt is not claimed twice.
    ///
    /// A refused answer (a sequence not after the last, an unknown asset, amounts out of range,
    /// more claimed than is pending) yields one `rejected` effect and changes nothing.
    pub fn apply_claim_answer(&mut self, seq: u64, answer: &ClaimAnswer) -> Vec<Effect> {
        match self.checked_answer(seq, answer) {
            Ok(()) => {}
            Err(rejection) => return vec![rejected(&rejection)],
        }
        self.last_seq = Some(seq);
        self.events += 1;
        let mut effects = Vec::new();
        let asset = answer.asset.as_str();
        if answer.covered > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::InsuranceFund,
                &LedgerAccount::PendingClaims,
                asset,
                answer.covered,
                TransferReason::InsuranceCover,
                &mut effects,
            );
            self.insurance_changed(
                asset,
                -answer.covered,
                InsuranceFundReason::DeficitCovered,
                &mut effects,
            );
        }
        if answer.adl_paid > Decimal::ZERO {
            // The counterparties' payments, which their shards move into their own
            // `insurance_fund` ledger accounts (`apply_adl_assignment`).
            self.move_money(
                &LedgerAccount::InsuranceFund,
                &LedgerAccount::PendingClaims,
                asset,
                answer.adl_paid,
                TransferReason::Adl,
                &mut effects,
            );
        }
        if answer.socialised_paid > Decimal::ZERO {
            // The accounts in profit's shares, which their shards move into their own
            // `insurance_fund` ledger accounts (`apply_socialised_share`).
            self.move_money(
                &LedgerAccount::InsuranceFund,
                &LedgerAccount::PendingClaims,
                asset,
                answer.socialised_paid,
                TransferReason::SocialisedLoss,
                &mut effects,
            );
        }
        let uncovered = answer.claimed - answer.covered - answer.adl_paid - answer.socialised_paid;
        if answer.socialised_paid > Decimal::ZERO && uncovered <= Decimal::ZERO {
            effects.push(Effect::DeficitBeyondFund {
                account: answer.account.clone(),
                asset: answer.asset.clone(),
                deficit: Amount(answer.claimed),
                fund: Amount(answer.fund_before),
                resolution: DeficitResolution::Socialised,
                position: None,
            });
        }
        if uncovered < Decimal::ZERO {
            // Rounding of the shares paid a little more than the deficit: the account keeps
            // it, as one engine's account keeps what closing at the bankruptcy price leaves.
            self.move_money(
                &LedgerAccount::PendingClaims,
                &LedgerAccount::Wallet(answer.account.as_str().into()),
                asset,
                -uncovered,
                TransferReason::Adl,
                &mut effects,
            );
        }
        if uncovered > Decimal::ZERO && answer.remainder {
            // The bankrupt account's shard takes it from the account (`apply_claim_debt`) into
            // its own `insurance_fund` ledger account: it leaves this shard's.
            self.move_money(
                &LedgerAccount::InsuranceFund,
                &LedgerAccount::PendingClaims,
                asset,
                uncovered,
                TransferReason::ClaimUncovered,
                &mut effects,
            );
        } else if uncovered > Decimal::ZERO {
            let wallet = LedgerAccount::Wallet(answer.account.as_str().into());
            self.move_money(
                &wallet,
                &LedgerAccount::PendingClaims,
                asset,
                uncovered,
                TransferReason::ClaimUncovered,
                &mut effects,
            );
            if answer.returned {
                if answer.adl_paid.is_zero() && answer.fee > Decimal::ZERO {
                    // Closed at the mark as one engine closes it when it deleverages nothing:
                    // the liquidation fee, from what the wallet still has.
                    let cash = self.ledger.balance(&wallet, asset).max(Decimal::ZERO);
                    let charged = answer.fee.min(cash);
                    if charged > Decimal::ZERO {
                        self.move_money(
                            &wallet,
                            &LedgerAccount::InsuranceFund,
                            asset,
                            charged,
                            TransferReason::LiquidationFee,
                            &mut effects,
                        );
                        self.insurance_changed(
                            asset,
                            charged,
                            InsuranceFundReason::LiquidationFee,
                            &mut effects,
                        );
                    }
                }
            } else {
                effects.push(Effect::DeficitBeyondFund {
                    account: answer.account.clone(),
                    asset: answer.asset.clone(),
                    deficit: Amount(answer.claimed),
                    fund: Amount(answer.fund_before),
                    resolution: DeficitResolution::AccountDebt,
                    position: None,
                });
            }
            if self.accounts.contains_key(answer.account.as_str()) {
                self.reindex(&answer.account);
                if let Ok(report) = self.report(&answer.account) {
                    self.track_state(&answer.account, &Standing::of(&report), &mut effects);
                }
            }
        }
        effects
    }

    /// The first checks of a message from the system shard: its sequence follows the last one
    /// applied, and its asset is the venue's.
    fn checked_sequence_and_asset(&self, seq: u64, asset: &str) -> Result<(), Rejection> {
        if let Some(last) = self.last_seq
            && seq <= last
        {
            return Err(reject(
                RejectReason::SequenceNotIncreasing,
                format!("sequence {seq} after {last}"),
            ));
        }
        self.venue
            .asset(asset)
            .map_err(|problem| reject(RejectReason::UnknownAsset, problem))?;
        Ok(())
    }

    /// The checks an answer passes before it moves anything, in order.
    fn checked_answer(&self, seq: u64, answer: &ClaimAnswer) -> Result<(), Rejection> {
        self.checked_sequence_and_asset(seq, &answer.asset)?;
        if answer.claimed <= Decimal::ZERO
            || answer.covered < Decimal::ZERO
            || answer.covered > answer.claimed
        {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "claim answer: covered {} of claimed {} (0 <= covered <= claimed, claimed > 0)",
                    answer.covered, answer.claimed
                ),
            ));
        }
        if answer.adl_paid < Decimal::ZERO
            || answer.socialised_paid < Decimal::ZERO
            || answer.fee < Decimal::ZERO
            || answer.covered + answer.adl_paid + answer.socialised_paid
                > answer.claimed * Decimal::TWO
        {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "claim answer: {} paid by deleveraging, with {} covered, for {} claimed",
                    answer.adl_paid, answer.covered, answer.claimed
                ),
            ));
        }
        let pending = -self
            .ledger
            .balance(&LedgerAccount::PendingClaims, &answer.asset);
        if answer.claimed > pending {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "claim answer for {:?}: {} {} claimed, but only {pending} is pending",
                    answer.account, answer.claimed, answer.asset
                ),
            ));
        }
        Ok(())
    }
}

impl Engine {
    /// Applies one counterparty's share of a cross-shard auto-deleveraging, numbered `seq`
    /// (after the last event): the counterparty pays its share of the deficit into the shard's
    /// `insurance_fund` ledger account (through which it reaches the claimant's shard, see
    /// [`ClaimAnswer::adl_paid`]), then its opposite position is reduced by the size assigned
    /// at the mark, against the market. An `adl` effect reports the trade at the bankruptcy
    /// price, as one engine reports it.
    ///
    /// The counterparty takes no more than it holds on the opposite side now: one that
    /// reduced (or closed, or turned) its position between its shard's offer and the answer
    /// takes what it still holds and pays that share. The claimant's shard received the whole
    /// share, so the rest is not the fund's loss: this shard advances it from `pending_claims`
    /// and claims it again with the contracts not taken (a `deficit_beyond_fund` effect,
    /// resolution `remainder_claimed`), which the system shard offers to the next candidates
    /// or covers as far as the fund holds, the rest the bankrupt account's debt.
    ///
    /// A refused assignment (a sequence not after the last, an unknown instrument or account,
    /// amounts out of range) yields one `rejected` effect and changes nothing.
    pub fn apply_adl_assignment(&mut self, seq: u64, assignment: &AdlAssignment) -> Vec<Effect> {
        let (instrument, held) = match self.checked_assignment(seq, assignment) {
            Ok(checked) => checked,
            Err(rejection) => return vec![rejected(&rejection)],
        };
        self.last_seq = Some(seq);
        self.events += 1;
        let mut effects = Vec::new();
        let take = held
            .as_ref()
            .map_or(Decimal::ZERO, |held| assignment.size.min(held.size.abs()));
        let precision = self
            .venue
            .asset(&instrument.settlement)
            .map_or(8, |a| a.precision);
        let paid = if take == assignment.size {
            assignment.paid
        } else {
            rounding::credit(assignment.paid * take / assignment.size, precision)
        };
        let id = assignment.account.as_str();
        if let Some(held) = held.filter(|_| take > Decimal::ZERO) {
            if paid > Decimal::ZERO {
                self.move_money(
                    &LedgerAccount::of_position(id, &instrument.name, held.isolated),
                    &LedgerAccount::InsuranceFund,
                    &instrument.settlement,
                    paid,
                    TransferReason::Adl,
                    &mut effects,
                );
            }
            let signed = -take * held.size.signum();
            self.trade(
                id,
                &instrument,
                signed,
                assignment.mark,
                TransferReason::Adl,
                &mut effects,
            );
            self.trade_external(&instrument, -signed, assignment.mark, &mut effects);
            effects.push(Effect::Adl {
                account: assignment.bankrupt.clone(),
                counterparty: assignment.account.clone(),
                instrument: instrument.name.clone(),
                size: Quantity(signed),
                price: Price(assignment.price),
            });
        }
        let unpaid = assignment.paid - paid;
        if unpaid > Decimal::ZERO {
            self.claim_remainder(assignment, &instrument, take, unpaid, &mut effects);
        }
        self.reindex(id);
        if let Ok(report) = self.report(id) {
            self.track_state(id, &Standing::of(&report), &mut effects);
        }
        effects
    }

    /// Advances `unpaid` of an assignment's payment, which its counterparty could not make
    /// having taken only `take` contracts, into the shard's `insurance_fund` ledger account
    /// (the claimant's shard received it all) from `pending_claims`, and claims it with the
    /// contracts not taken, for the bankrupt account, at the bankruptcy price.
    fn claim_remainder(
        &mut self,
        assignment: &AdlAssignment,
        instrument: &Instrument,
        take: Decimal,
        unpaid: Decimal,
        effects: &mut Vec<Effect>,
    ) {
        self.move_money(
            &LedgerAccount::PendingClaims,
            &LedgerAccount::InsuranceFund,
            &instrument.settlement,
            unpaid,
            TransferReason::DeficitClaimed,
            effects,
        );
        effects.push(Effect::DeficitBeyondFund {
            account: assignment.bankrupt.clone(),
            asset: instrument.settlement.clone(),
            deficit: Amount(unpaid),
            fund: Amount::ZERO,
            resolution: DeficitResolution::RemainderClaimed,
            position: Some(Box::new(ClaimedPosition {
                instrument: instrument.name.clone(),
                // The bankrupt account's closing trade is the counterparties' opposite.
                size: Quantity(
                    (assignment.size - take) * counterparty_side(assignment).signum_of_close(),
                ),
                mark: Price(assignment.mark),
                bankruptcy_price: Price(assignment.price),
                isolated: false,
                fee: Amount::ZERO,
            })),
        });
    }

    /// The checks an assignment passes before it moves anything, in order: the instrument,
    /// the amounts, the account; with the counterparty's position on the side the assignment
    /// takes from, if it still holds one.
    fn checked_assignment(
        &self,
        seq: u64,
        assignment: &AdlAssignment,
    ) -> Result<(Arc<Instrument>, Option<PositionState>), Rejection> {
        if let Some(last) = self.last_seq
            && seq <= last
        {
            return Err(reject(
                RejectReason::SequenceNotIncreasing,
                format!("sequence {seq} after {last}"),
            ));
        }
        let instrument = self.instrument(&assignment.instrument)?;
        if assignment.size <= Decimal::ZERO
            || assignment.paid < Decimal::ZERO
            || assignment.mark <= Decimal::ZERO
        {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "adl assignment: {} contracts paying {} at mark {} (size > 0, paid >= 0, mark > 0)",
                    assignment.size, assignment.paid, assignment.mark
                ),
            ));
        }
        let wanted = counterparty_side(assignment);
        let held = self
            .accounts
            .get(assignment.account.as_str())
            .ok_or_else(|| reject(RejectReason::UnknownAccount, assignment.account.clone()))?
            .positions
            .get(instrument.name.as_str())
            .filter(|p| wanted.holds(p.size))
            .cloned();
        Ok((instrument, held))
    }

    /// Takes `amount` of `asset` that a deficit's remainder left uncovered (see
    /// [`ClaimAnswer::remainder`]) from bankrupt account `account`'s wallet into this shard's
    /// `insurance_fund` ledger account (through which it reaches the counterparty's shard that
    /// claimed it): the account's debt, reported as one engine reports a deficit nothing could
    /// bear. Numbered `seq` (after the last event).
    ///
    /// A refused debt (a sequence not after the last, an unknown asset or account, an amount
    /// not positive) yields one `rejected` effect and changes nothing.
    pub fn apply_claim_debt(
        &mut self,
        seq: u64,
        account: &str,
        asset: &str,
        amount: Decimal,
        fund_before: Decimal,
    ) -> Vec<Effect> {
        if let Err(rejection) = self.checked_debt(seq, account, asset, amount) {
            return vec![rejected(&rejection)];
        }
        self.last_seq = Some(seq);
        self.events += 1;
        let mut effects = Vec::new();
        self.move_money(
            &LedgerAccount::Wallet(account.into()),
            &LedgerAccount::InsuranceFund,
            asset,
            amount,
            TransferReason::ClaimUncovered,
            &mut effects,
        );
        effects.push(Effect::DeficitBeyondFund {
            account: account.to_owned(),
            asset: asset.to_owned(),
            deficit: Amount(amount),
            fund: Amount(fund_before),
            resolution: DeficitResolution::AccountDebt,
            position: None,
        });
        self.reindex(account);
        if let Ok(report) = self.report(account) {
            self.track_state(account, &Standing::of(&report), &mut effects);
        }
        effects
    }

    /// The checks a remainder's debt passes before it moves anything, in order.
    fn checked_debt(
        &self,
        seq: u64,
        account: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<(), Rejection> {
        if let Some(last) = self.last_seq
            && seq <= last
        {
            return Err(reject(
                RejectReason::SequenceNotIncreasing,
                format!("sequence {seq} after {last}"),
            ));
        }
        self.venue
            .asset(asset)
            .map_err(|problem| reject(RejectReason::UnknownAsset, problem))?;
        if !self.accounts.contains_key(account) {
            return Err(reject(RejectReason::UnknownAccount, account.to_owned()));
        }
        if amount <= Decimal::ZERO {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("remainder debt of {account:?}: {amount} (> 0)"),
            ));
        }
        Ok(())
    }
}

/// The side a counterparty of an assignment holds: the bankrupt position's opposite, read from
/// where its price lies: a bankrupt long closes above the mark (its counterparties, short,
/// buy back higher), a bankrupt short below; at the mark (nothing to pay) either side may
/// take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CounterpartySide {
    Short,
    Long,
    Either,
}

fn counterparty_side(assignment: &AdlAssignment) -> CounterpartySide {
    match assignment.price.cmp(&assignment.mark) {
        std::cmp::Ordering::Greater => CounterpartySide::Short,
        std::cmp::Ordering::Less => CounterpartySide::Long,
        std::cmp::Ordering::Equal => CounterpartySide::Either,
    }
}

impl CounterpartySide {
    /// Whether a position of signed `size` is one to take from.
    fn holds(self, size: Decimal) -> bool {
        match self {
            Self::Short => size.is_sign_negative() && !size.is_zero(),
            Self::Long => size.is_sign_positive() && !size.is_zero(),
            Self::Either => !size.is_zero(),
        }
    }

    /// The sign of the bankrupt account's closing trade: a bankrupt long (short counterparties)
    /// sells.
    fn signum_of_close(self) -> Decimal {
        match self {
            Self::Short | Self::Either => Decimal::NEGATIVE_ONE,
            Self::Long => Decimal::ONE,
        }
    }
}

impl Engine {
    /// Applies one position's share of a deficit socialised across shards, numbered `seq`
    /// (after the last event): the account pays it from the position's margin (its isolated
    /// margin while that position is held, else its wallet) into the shard's `insurance_fund`
    /// ledger account, through which it reaches the claimant's shard (see
    /// [`ClaimAnswer::socialised_paid`]); the account is then examined, since its equity fell.
    /// A share is paid whatever the account's profit is by then, as a socialised loss is.
    ///
    /// A refused share (a sequence not after the last, an unknown account or asset, a share not
    /// positive) yields one `rejected` effect and changes nothing.
    pub fn apply_socialised_share(&mut self, seq: u64, share: &SocialisedShare) -> Vec<Effect> {
        if let Err(rejection) = self.checked_share(seq, share) {
            return vec![rejected(&rejection)];
        }
        self.last_seq = Some(seq);
        self.events += 1;
        let mut effects = Vec::new();
        let id = share.account.as_str();
        let isolated = share.isolated
            && self
                .accounts
                .get(id)
                .and_then(|a| a.positions.get(share.instrument.as_str()))
                .is_some_and(|p| p.isolated);
        self.move_money(
            &LedgerAccount::of_position(id, &share.instrument, isolated),
            &LedgerAccount::InsuranceFund,
            &share.asset,
            share.paid,
            TransferReason::SocialisedLoss,
            &mut effects,
        );
        self.reindex(id);
        if let Ok(report) = self.report(id) {
            self.track_state(id, &Standing::of(&report), &mut effects);
        }
        effects
    }

    /// The checks a socialised share passes before it moves anything, in order.
    fn checked_share(&self, seq: u64, share: &SocialisedShare) -> Result<(), Rejection> {
        self.checked_sequence_and_asset(seq, &share.asset)?;
        if !self.accounts.contains_key(share.account.as_str()) {
            return Err(reject(RejectReason::UnknownAccount, share.account.clone()));
        }
        if share.paid <= Decimal::ZERO {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "socialised share of {:?}: {} (> 0)",
                    share.account, share.paid
                ),
            ));
        }
        Ok(())
    }
}
