//! Effects (DESIGN.md 9): what the engine did in response to an event, written as JSON lines
//! (`{"seq": n, "type": ..., ...}`, section 11).

use serde::Serialize;
use solvent_core::money::{Amount, Price, Quantity};
use solvent_risk::AccountState;

mod json;

/// Why money moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferReason {
    /// A deposit.
    Deposit,
    /// A withdrawal.
    Withdrawal,
    /// A transfer between accounts.
    Transfer,
    /// Realised P&L of a fill.
    RealisedPnl,
    /// An option premium.
    Premium,
    /// A trading fee.
    Fee,
    /// A funding payment.
    Funding,
    /// Expiry settlement.
    Settlement,
    /// Margin moved into or out of an isolated position.
    IsolatedMargin,
    /// A liquidation's realised P&L.
    LiquidationPnl,
    /// The liquidation fee, paid to the insurance fund.
    LiquidationFee,
    /// The insurance fund covering a bankrupt account's deficit.
    InsuranceCover,
    /// Auto-deleveraging at the bankruptcy price.
    Adl,
    /// An automated top-up from the account's external wallet.
    TopUp,
    /// Collateral moved from the cross pool to an isolated position nearing liquidation.
    Reallocation,
    /// A bankrupt account's other collateral sold at the index to pay its deficit.
    CollateralSale,
    /// A share of a bankrupt account's deficit beyond the insurance fund, taken from an account
    /// in profit (the venue's `deficits = "socialise"`).
    SocialisedLoss,
    /// A bankrupt account's deficit advanced from `pending_claims` while it is claimed from a
    /// cluster's system shard.
    DeficitClaimed,
    /// The part of a claimed deficit the system shard's fund could not pay, taken back from the
    /// account into `pending_claims`: the account's debt.
    ClaimUncovered,
    /// Interest on a loan (a negative wallet balance), by the hour at the venue's published
    /// rate, paid to the fee account.
    Interest,
}

/// Why a position was liquidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationReason {
    /// The cross pool's health fell to the liquidation threshold.
    HealthBelowThreshold,
    /// An isolated position's own health fell to the liquidation threshold.
    IsolatedHealthBelowThreshold,
    /// A bankrupt position too large for the opposite interest inside the venue: the rest was
    /// closed at the market.
    BankruptBeyondOppositeInterest,
}

/// Which guard held a due liquidation back (DESIGN.md 8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeferralReason {
    /// An index the account's figures move with has no fresh source: liquidating on an old
    /// price is refused until one comes.
    StaleIndex,
    /// The breach has not yet lasted the configured number of updates and time.
    BreachNotPersistent,
}

/// Why the insurance fund's balance changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InsuranceFundReason {
    /// The venue paid into the fund.
    Funded,
    /// A liquidation fee.
    LiquidationFee,
    /// The fund paid a bankrupt account's deficit (as far as it held it).
    DeficitCovered,
    /// A cluster's auto-deleveraged counterparty held less than its share when the system
    /// shard's answer reached its shard: the fund bore the rest (a negative change). Written
    /// by earlier versions only, and still read from their streams: the engine now claims the
    /// rest again (`deficit_beyond_fund`, resolution `remainder_claimed`), so the fund never
    /// bears it below zero.
    AdlShortfall,
}

/// What a price guard did (DESIGN.md 8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardReason {
    /// No source is fresh and within the outlier band: the index is left as it was.
    NoFreshSource,
    /// The index is the median of the fresh sources, not the quote received.
    MedianOfFreshSources,
    /// A jump beyond the threshold waits for the next update to confirm it.
    JumpAwaitsConfirmation,
    /// The mark was clamped to its band around the index.
    MarkClamped,
}

/// Who bears the part of a bankrupt account's deficit that the insurance fund cannot pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeficitResolution {
    /// Opposite positions were reduced at the bankruptcy price (auto-deleveraging), so the
    /// account closed at exactly nothing and the fund paid nothing.
    Adl,
    /// The accounts in profit in the asset bore it pro rata to their unrealised profit (the
    /// venue's `deficits = "socialise"`), so the fund paid what it held and no more.
    Socialised,
    /// Nothing was left to deleverage (no opposite interest, or the loss was found only once
    /// every position had closed): the rest stays a negative balance, the account's debt to the
    /// venue, and never a draw on the fund beyond what it holds.
    AccountDebt,
    /// Claimed from a cluster's system shard, which holds the fund: advanced to the account from
    /// `pending_claims` until the answer (the effect's `fund` is then 0: the shard does not know
    /// it).
    Claimed,
    /// The part of a cross-shard auto-deleveraging a counterparty could no longer take (it
    /// reduced its position between its shard's offer and the answer), advanced by the
    /// counterparty's shard and claimed again: offered to the next candidates, or covered by
    /// the fund as far as it holds, the rest the bankrupt account's debt; never a loss of the
    /// fund below zero.
    RemainderClaimed,
}

/// The bankrupt position a deficit claim carries (docs/scale.md, "Money across shards"): what
/// the system shard deleverages across shards when the fund cannot cover the claim, with the
/// bankruptcy price the claimant's engine solved for it, as one engine solves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimedPosition {
    /// The instrument.
    pub instrument: String,
    /// The bankrupt account's closing trade (signed: negative closes a long): the
    /// counterparties take over its opposite.
    pub size: Quantity,
    /// The mark it was closed at.
    pub mark: Price,
    /// The price at which closing it leaves the account (or its isolated margin) with exactly
    /// nothing: for an inverse contract the solution in its settlement coin, not the mark.
    pub bankruptcy_price: Price,
    /// Whether it was an isolated position: then the deficit is its margin's, and what the
    /// counterparties do not take goes back to the account (as one engine's wallet bears an
    /// isolated loss the fund would cover).
    pub isolated: bool,
    /// The liquidation fee a close at the mark charges: owed only if nothing is deleveraged
    /// and the claim goes back to the account.
    pub fee: Amount,
}

/// Why the engine refused an event: named, checked in a fixed order (TigerBeetle style).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The sequence number did not increase.
    SequenceNotIncreasing,
    /// The timestamp went back.
    TimestampBeforePrevious,
    /// The account does not exist.
    UnknownAccount,
    /// The asset is not the venue's.
    UnknownAsset,
    /// The instrument is not the venue's.
    UnknownInstrument,
    /// An amount must be positive.
    AmountMustBePositive,
    /// More decimals than the asset allows.
    PrecisionExceeded,
    /// A size the instrument does not allow.
    InvalidSize,
    /// The account and the counterparty are the same.
    AccountsMustBeDifferent,
    /// Not enough balance of the asset.
    InsufficientBalance,
    /// The withdrawal exceeds what is withdrawable.
    ExceedsWithdrawable,
    /// The account may only reduce risk.
    ReduceOnly,
    /// The account would not cover its initial margin.
    InsufficientInitialMargin,
    /// Open interest would exceed the venue's cap.
    OpenInterestCap,
    /// The leverage is not allowed.
    InvalidLeverage,
    /// The market lacks a price the event needs.
    MissingMarketData,
    /// The venue or the risk model refused the input.
    InvalidInput,
    /// A figure would leave the range Solvent computes exactly.
    OutOfRange,
}

/// One effect.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// An account's figures after an event that concerned it.
    AccountUpdated {
        /// Account.
        account: String,
        /// Equity.
        equity: Amount,
        /// Initial margin.
        initial_margin: Amount,
        /// Maintenance margin.
        maintenance_margin: Amount,
        /// Health.
        health: Option<f64>,
        /// State.
        state: AccountState,
    },
    /// A margin call: once per episode, with the deposit that restores the initial margin.
    MarginCall {
        /// Account.
        account: String,
        /// Health.
        health: Option<f64>,
        /// Deposit that restores IM, in `asset`.
        deposit: Amount,
        /// Asset of the deposit (the account's settlement asset).
        asset: String,
    },
    /// An account's state changed.
    StateChanged {
        /// Account.
        account: String,
        /// Before.
        from: AccountState,
        /// After.
        to: AccountState,
    },
    /// Money moved.
    TransferApplied {
        /// Paying ledger account.
        from: String,
        /// Receiving ledger account.
        to: String,
        /// Asset.
        asset: String,
        /// Amount.
        amount: Amount,
        /// Why.
        reason: TransferReason,
    },
    /// A liquidation step.
    Liquidation {
        /// Account.
        account: String,
        /// Instrument.
        instrument: String,
        /// Size closed (signed as the trade: negative sells).
        size: Quantity,
        /// Price.
        price: Price,
        /// Fee to the insurance fund.
        fee: Amount,
        /// Why.
        reason: LiquidationReason,
    },
    /// Liquidation was due but a guard held it back.
    LiquidationDeferred {
        /// Account.
        account: String,
        /// Which guard.
        reason: DeferralReason,
        /// The figures behind it.
        detail: String,
    },
    /// The insurance fund's balance changed.
    InsuranceFundChanged {
        /// Asset.
        asset: String,
        /// New balance.
        balance: Amount,
        /// Change.
        change: Amount,
        /// Why.
        reason: InsuranceFundReason,
    },
    /// Auto-deleveraging: a profitable opposite position reduced at the bankruptcy price.
    Adl {
        /// The bankrupt account.
        account: String,
        /// The account deleveraged.
        counterparty: String,
        /// Instrument.
        instrument: String,
        /// Size taken from the counterparty (signed as the counterparty's trade).
        size: Quantity,
        /// Bankruptcy price.
        price: Price,
    },
    /// A bankrupt account's deficit beyond what the insurance fund held: the fund pays what it
    /// holds and no more (it never goes below zero), and the rest is borne as `resolution` says.
    /// The sum of `deficit - fund` over a run is what a larger fund would have had to hold to
    /// avoid auto-deleveraging.
    DeficitBeyondFund {
        /// The bankrupt account.
        account: String,
        /// Asset of the deficit.
        asset: String,
        /// The account's deficit, in `asset`.
        deficit: Amount,
        /// What the insurance fund held of `asset` when the deficit was met.
        fund: Amount,
        /// Who bears the part the fund could not pay.
        resolution: DeficitResolution,
        /// With a claim (resolution `claimed` or `remainder_claimed`), the bankrupt position
        /// it asks the system shard to deleverage; none when nothing can be (the loss was
        /// found only once every position had closed, or the venue socialises). Boxed: the
        /// largest variant sets every effect's size, and a large move writes thousands of
        /// effects into memory the process has not touched yet (see [`EFFECT_SIZE`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        position: Option<Box<ClaimedPosition>>,
    },
    /// A price update a guard held or adjusted.
    PriceGuarded {
        /// Index or instrument.
        name: String,
        /// The price received.
        received: Price,
        /// The price used, if any.
        used: Option<Price>,
        /// Which guard.
        reason: GuardReason,
        /// The figures behind it.
        detail: String,
    },
    /// The event was refused; nothing changed.
    Rejected {
        /// Named reason.
        reason: RejectReason,
        /// The figures behind it.
        detail: String,
    },
}

/// The size in bytes an [`Effect`] may take at most. A large price move returns thousands of
/// effects in one vector, which grows into memory the process has not touched before: each new
/// page costs a fault, and a transparent huge page's first touch stalls the engine for
/// milliseconds on a VM (docs/benchmarks.md, "Transparent huge pages"). At 184 bytes (the
/// deficit's claimed position inline) the 4,964 effects of `tick_latency`'s -0.99% move took
/// about 700 page faults of 4 KiB; at 112, about 500.
pub const EFFECT_SIZE: usize = 112;

const _: () = assert!(std::mem::size_of::<Effect>() <= EFFECT_SIZE);

/// An effect with the sequence number of the event that caused it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectLine {
    /// The event's sequence number.
    pub seq: u64,
    /// The effect.
    #[serde(flatten)]
    pub effect: Effect,
}
