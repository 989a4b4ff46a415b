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
}

impl Engine {
    /// Advances `deficit` of `asset` to bankrupt account `id` from `pending_claims` and claims
    /// it from the system shard (a `deficit_beyond_fund` effect, resolution `claimed`).
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
        let uncovered = answer.claimed - answer.covered;
        if uncovered > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::Wallet(answer.account.as_str().into()),
                &LedgerAccount::PendingClaims,
                asset,
                uncovered,
                TransferReason::ClaimUncovered,
                &mut effects,
            );
            effects.push(Effect::DeficitBeyondFund {
                account: answer.account.clone(),
                asset: answer.asset.clone(),
                deficit: Amount(answer.claimed),
                fund: Amount(answer.fund_before),
                resolution: DeficitResolution::AccountDebt,
            });
            if self.accounts.contains_key(answer.account.as_str()) {
                self.reindex(&answer.account);
                if let Ok(report) = self.report(&answer.account) {
                    self.track_state(&answer.account, &Standing::of(&report), &mut effects);
                }
            }
        }
        effects
    }

    /// The checks an answer passes before it moves anything, in order.
    fn checked_answer(&self, seq: u64, answer: &ClaimAnswer) -> Result<(), Rejection> {
        if let Some(last) = self.last_seq
            && seq <= last
        {
            return Err(reject(
                RejectReason::SequenceNotIncreasing,
                format!("sequence {seq} after {last}"),
            ));
        }
        self.venue
            .asset(&answer.asset)
            .map_err(|problem| reject(RejectReason::UnknownAsset, problem))?;
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
