//! Effects written as JSON lines without an intermediate `serde_json::Value`.
//!
//! The format is the one `solvent replay --out` has always written: the [`EffectLine`] turned
//! into a `serde_json::Value` and printed compactly. A `Value` object keeps its keys in
//! alphabetical order, so every line lists them that way (`{"account":..,"equity":..,
//! "health":..,..,"seq":..,"state":..,"type":..}`), `seq` and `type` among them. Here each effect
//! is written field by field in that same order, straight into a byte buffer: the same bytes,
//! without the map of owned keys and values built and dropped per effect. Strings and `f64`s go
//! through `serde_json`'s own serializer (same escaping, same shortest float, `null` for a
//! non-finite float); money is its normalised decimal in quotes, as its `Serialize` writes it.
//! `tests::matches_the_value_path` holds every variant to the `Value` path.

use std::fmt::{self, Write as _};

use serde::Serialize;
use solvent_core::Decimal;
use solvent_risk::AccountState;

use super::{
    DeferralReason, DeficitResolution, Effect, EffectLine, GuardReason, InsuranceFundReason,
    LiquidationReason, RejectReason, TransferReason,
};

/// A byte buffer a line is appended to; `fmt::Write` lets `Display` values (decimals, integers)
/// be written into it without an intermediate `String`.
struct Out<'a>(&'a mut Vec<u8>);

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

impl Out<'_> {
    /// The key of the next field: `{"name":` for the first, `,"name":` after.
    fn key(&mut self, first: bool, name: &str) {
        self.0.push(if first { b'{' } else { b',' });
        self.0.push(b'"');
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    /// A name written as a JSON string (enum variants, state names: no character to escape).
    fn name(&mut self, name: &str) {
        self.0.push(b'"');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'"');
    }

    /// Any string, escaped as `serde_json` escapes it.
    fn string(&mut self, text: &str) {
        // Writing into a `Vec` cannot fail, and a `str` always serializes.
        let _ = text.serialize(&mut serde_json::Serializer::new(&mut *self.0));
    }

    /// A decimal as money serializes in text formats: the normalised figure in quotes, as
    /// `Decimal`'s `Display` writes it (`-0.0012`, `150`). A mantissa within `u64` (every amount
    /// Solvent accepts has one) is written here digit by digit; zero and wider ones go through
    /// `Display` itself.
    fn decimal(&mut self, value: Decimal) {
        let value = value.normalize();
        self.0.push(b'"');
        match u64::try_from(value.mantissa().unsigned_abs()) {
            Ok(magnitude) if magnitude != 0 => {
                if value.is_sign_negative() {
                    self.0.push(b'-');
                }
                let mut digits = [0_u8; 20];
                let digits = decimal_digits(magnitude, &mut digits);
                let scale = value.scale() as usize;
                if scale == 0 {
                    self.0.extend_from_slice(digits);
                } else if scale >= digits.len() {
                    self.0.extend_from_slice(b"0.");
                    self.0.resize(self.0.len() + scale - digits.len(), b'0');
                    self.0.extend_from_slice(digits);
                } else {
                    let (whole, fraction) = digits.split_at(digits.len() - scale);
                    self.0.extend_from_slice(whole);
                    self.0.push(b'.');
                    self.0.extend_from_slice(fraction);
                }
            }
            _ => {
                let _ = write!(self, "{value}");
            }
        }
        self.0.push(b'"');
    }

    /// A health: `serde_json`'s shortest form, `null` when absent or not finite.
    fn health(&mut self, value: Option<f64>) {
        let _ = value.serialize(&mut serde_json::Serializer::new(&mut *self.0));
    }

    fn seq(&mut self, seq: u64) {
        let mut digits = [0_u8; 20];
        self.0.extend_from_slice(decimal_digits(seq, &mut digits));
    }
}

/// The decimal digits of `value` (no sign, no leading zero; `0` for zero), written at the end of
/// `buffer` (20 digits hold any `u64`).
fn decimal_digits(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        // The remainder of a division by 10 is a digit.
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

impl Effect {
    /// The effect's `type`, as it is written (`account_updated`, `transfer_applied`, ...).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::AccountUpdated { .. } => "account_updated",
            Self::MarginCall { .. } => "margin_call",
            Self::StateChanged { .. } => "state_changed",
            Self::TransferApplied { .. } => "transfer_applied",
            Self::Liquidation { .. } => "liquidation",
            Self::LiquidationDeferred { .. } => "liquidation_deferred",
            Self::InsuranceFundChanged { .. } => "insurance_fund_changed",
            Self::Adl { .. } => "adl",
            Self::DeficitBeyondFund { .. } => "deficit_beyond_fund",
            Self::PriceGuarded { .. } => "price_guarded",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// Every effect `type`, in the order of [`Effect::kind_index`].
    pub const KINDS: [&'static str; 11] = [
        "account_updated",
        "margin_call",
        "state_changed",
        "transfer_applied",
        "liquidation",
        "liquidation_deferred",
        "insurance_fund_changed",
        "adl",
        "deficit_beyond_fund",
        "price_guarded",
        "rejected",
    ];

    /// The position of the effect's `type` in [`Effect::KINDS`] (for counting without a map).
    #[must_use]
    pub const fn kind_index(&self) -> usize {
        match self {
            Self::AccountUpdated { .. } => 0,
            Self::MarginCall { .. } => 1,
            Self::StateChanged { .. } => 2,
            Self::TransferApplied { .. } => 3,
            Self::Liquidation { .. } => 4,
            Self::LiquidationDeferred { .. } => 5,
            Self::InsuranceFundChanged { .. } => 6,
            Self::Adl { .. } => 7,
            Self::DeficitBeyondFund { .. } => 8,
            Self::PriceGuarded { .. } => 9,
            Self::Rejected { .. } => 10,
        }
    }

    /// Appends the effect of event `seq` to `out` as one JSON line, newline included: the bytes
    /// of `serde_json::to_value(EffectLine { seq, effect })` printed compactly (keys in
    /// alphabetical order), without building the value.
    pub fn write_json_line(&self, seq: u64, out: &mut Vec<u8>) {
        let mut out = Out(out);
        let o = &mut out;
        match self {
            Self::AccountUpdated {
                account,
                equity,
                initial_margin,
                maintenance_margin,
                health,
                state,
            } => {
                o.key(true, "account");
                o.string(account);
                o.key(false, "equity");
                o.decimal(equity.0);
                o.key(false, "health");
                o.health(*health);
                o.key(false, "initial_margin");
                o.decimal(initial_margin.0);
                o.key(false, "maintenance_margin");
                o.decimal(maintenance_margin.0);
                o.key(false, "seq");
                o.seq(seq);
                o.key(false, "state");
                o.name(state_name(*state));
            }
            Self::MarginCall {
                account,
                health,
                deposit,
                asset,
            } => {
                o.key(true, "account");
                o.string(account);
                o.key(false, "asset");
                o.string(asset);
                o.key(false, "deposit");
                o.decimal(deposit.0);
                o.key(false, "health");
                o.health(*health);
                o.key(false, "seq");
                o.seq(seq);
            }
            Self::StateChanged { account, from, to } => {
                o.key(true, "account");
                o.string(account);
                o.key(false, "from");
                o.name(state_name(*from));
                o.key(false, "seq");
                o.seq(seq);
                o.key(false, "to");
                o.name(state_name(*to));
            }
            Self::TransferApplied {
                from,
                to,
                asset,
                amount,
                reason,
            } => {
                o.key(true, "amount");
                o.decimal(amount.0);
                o.key(false, "asset");
                o.string(asset);
                o.key(false, "from");
                o.string(from);
                o.key(false, "reason");
                o.name(reason.name());
                o.key(false, "seq");
                o.seq(seq);
                o.key(false, "to");
                o.string(to);
            }
            Self::Liquidation {
                account,
                instrument,
                size,
                price,
                fee,
                reason,
            } => {
                o.key(true, "account");
                o.string(account);
                o.key(false, "fee");
                o.decimal(fee.0);
                o.key(false, "instrument");
                o.string(instrument);
                o.key(false, "price");
                o.decimal(price.0);
                o.key(false, "reason");
                o.name(reason.name());
                o.key(false, "seq");
                o.seq(seq);
                o.key(false, "size");
                o.decimal(size.0);
            }
            Self::LiquidationDeferred {
                account,
                reason,
                detail,
            } => {
                o.key(true, "account");
                o.string(account);
                o.key(false, "detail");
                o.string(detail);
                o.key(false, "reason");
                o.name(reason.name());
                o.key(false, "seq");
                o.seq(seq);
            }
            Self::InsuranceFundChanged {
                asset,
                balance,
                change,
                reason,
            } => {
                o.key(true, "asset");
                o.string(asset);
                o.key(false, "balance");
                o.decimal(balance.0);
                o.key(false, "change");
                o.decimal(change.0);
                o.key(false, "reason");
                o.name(reason.name());
                o.key(false, "seq");
                o.seq(seq);
            }
            Self::Adl {
                account,
                counterparty,
                instrument,
                size,
                price,
            } => {
                o.key(true, "account");
                o.string(account);
                o.key(false, "counterparty");
                o.string(counterparty);
                o.key(false, "instrument");
                o.string(instrument);
                o.key(false, "price");
                o.decimal(price.0);
                o.key(false, "seq");
                o.seq(seq);
                o.key(false, "size");
                o.decimal(size.0);
            }
            Self::DeficitBeyondFund {
                account,
                asset,
                deficit,
                fund,
                resolution,
                position,
            } => {
                o.key(true, "account");
                o.string(account);
                o.key(false, "asset");
                o.string(asset);
                o.key(false, "deficit");
                o.decimal(deficit.0);
                o.key(false, "fund");
                o.decimal(fund.0);
                if let Some(position) = position {
                    // Rare (a claim on a cluster's account shard): through the value path,
                    // which orders its keys as `to_value` does.
                    o.key(false, "position");
                    if let Ok(value) = serde_json::to_value(position) {
                        let _ = serde_json::to_writer(&mut *o.0, &value);
                    }
                }
                o.key(false, "resolution");
                o.name(resolution.name());
                o.key(false, "seq");
                o.seq(seq);
            }
            Self::PriceGuarded {
                name,
                received,
                used,
                reason,
                detail,
            } => {
                o.key(true, "detail");
                o.string(detail);
                o.key(false, "name");
                o.string(name);
                o.key(false, "reason");
                o.name(reason.name());
                o.key(false, "received");
                o.decimal(received.0);
                o.key(false, "seq");
                o.seq(seq);
                o.key(false, "type");
                o.name(self.kind());
                o.key(false, "used");
                match used {
                    Some(price) => o.decimal(price.0),
                    None => o.0.extend_from_slice(b"null"),
                }
                // `used` sorts after `type`: the line is complete.
                o.0.extend_from_slice(b"}\n");
                return;
            }
            Self::Rejected { reason, detail } => {
                o.key(true, "detail");
                o.string(detail);
                o.key(false, "reason");
                o.name(reason.name());
                o.key(false, "seq");
                o.seq(seq);
            }
        }
        // Every other effect's keys sort before `type`.
        o.key(false, "type");
        o.name(self.kind());
        o.0.extend_from_slice(b"}\n");
    }
}

impl EffectLine {
    /// Appends the line to `out` as JSON, newline included (see [`Effect::write_json_line`]).
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        self.effect.write_json_line(self.seq, out);
    }
}

/// An account state as serde writes it (its `Display` is that same snake_case name).
const fn state_name(state: AccountState) -> &'static str {
    match state {
        AccountState::Healthy => "healthy",
        AccountState::MarginCall => "margin_call",
        AccountState::ReduceOnly => "reduce_only",
        AccountState::Liquidating => "liquidating",
        AccountState::Bankrupt => "bankrupt",
    }
}

impl TransferReason {
    /// The reason as it is written (`deposit`, `realised_pnl`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::Transfer => "transfer",
            Self::RealisedPnl => "realised_pnl",
            Self::Premium => "premium",
            Self::Fee => "fee",
            Self::Funding => "funding",
            Self::Settlement => "settlement",
            Self::IsolatedMargin => "isolated_margin",
            Self::LiquidationPnl => "liquidation_pnl",
            Self::LiquidationFee => "liquidation_fee",
            Self::InsuranceCover => "insurance_cover",
            Self::Adl => "adl",
            Self::TopUp => "top_up",
            Self::Reallocation => "reallocation",
            Self::CollateralSale => "collateral_sale",
            Self::SocialisedLoss => "socialised_loss",
            Self::DeficitClaimed => "deficit_claimed",
            Self::ClaimUncovered => "claim_uncovered",
            Self::Interest => "interest",
        }
    }
}

impl LiquidationReason {
    /// The reason as it is written.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::HealthBelowThreshold => "health_below_threshold",
            Self::IsolatedHealthBelowThreshold => "isolated_health_below_threshold",
            Self::BankruptBeyondOppositeInterest => "bankrupt_beyond_opposite_interest",
        }
    }
}

impl DeferralReason {
    /// The reason as it is written.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::StaleIndex => "stale_index",
            Self::BreachNotPersistent => "breach_not_persistent",
        }
    }
}

impl InsuranceFundReason {
    /// The reason as it is written.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Funded => "funded",
            Self::LiquidationFee => "liquidation_fee",
            Self::DeficitCovered => "deficit_covered",
            Self::AdlShortfall => "adl_shortfall",
        }
    }
}

impl GuardReason {
    /// The reason as it is written.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::NoFreshSource => "no_fresh_source",
            Self::MedianOfFreshSources => "median_of_fresh_sources",
            Self::JumpAwaitsConfirmation => "jump_awaits_confirmation",
            Self::MarkClamped => "mark_clamped",
        }
    }
}

impl DeficitResolution {
    /// The resolution as it is written.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Adl => "adl",
            Self::Socialised => "socialised",
            Self::AccountDebt => "account_debt",
            Self::Claimed => "claimed",
            Self::RemainderClaimed => "remainder_claimed",
        }
    }
}

impl RejectReason {
    /// The reason as it is written (`sequence_not_increasing`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::SequenceNotIncreasing => "sequence_not_increasing",
            Self::TimestampBeforePrevious => "timestamp_before_previous",
            Self::UnknownAccount => "unknown_account",
            Self::UnknownAsset => "unknown_asset",
            Self::UnknownInstrument => "unknown_instrument",
            Self::AmountMustBePositive => "amount_must_be_positive",
            Self::PrecisionExceeded => "precision_exceeded",
            Self::InvalidSize => "invalid_size",
            Self::AccountsMustBeDifferent => "accounts_must_be_different",
            Self::InsufficientBalance => "insufficient_balance",
            Self::ExceedsWithdrawable => "exceeds_withdrawable",
            Self::ReduceOnly => "reduce_only",
            Self::InsufficientInitialMargin => "insufficient_initial_margin",
            Self::OpenInterestCap => "open_interest_cap",
            Self::InvalidLeverage => "invalid_leverage",
            Self::MissingMarketData => "missing_market_data",
            Self::InvalidInput => "invalid_input",
            Self::OutOfRange => "out_of_range",
        }
    }

    /// Every reason, in declaration order (for counting without a map).
    pub const ALL: [Self; 18] = [
        Self::SequenceNotIncreasing,
        Self::TimestampBeforePrevious,
        Self::UnknownAccount,
        Self::UnknownAsset,
        Self::UnknownInstrument,
        Self::AmountMustBePositive,
        Self::PrecisionExceeded,
        Self::InvalidSize,
        Self::AccountsMustBeDifferent,
        Self::InsufficientBalance,
        Self::ExceedsWithdrawable,
        Self::ReduceOnly,
        Self::InsufficientInitialMargin,
        Self::OpenInterestCap,
        Self::InvalidLeverage,
        Self::MissingMarketData,
        Self::InvalidInput,
        Self::OutOfRange,
    ];
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use solvent_core::money::{Amount, Price, Quantity};

    use crate::effect::ClaimedPosition;

    use super::*;

    /// The bytes the `Value` path writes for one line.
    fn via_value(seq: u64, effect: &Effect) -> String {
        let line = EffectLine {
            seq,
            effect: effect.clone(),
        };
        let value = serde_json::to_value(&line).unwrap_or_default();
        let mut text = serde_json::to_string(&value).unwrap_or_default();
        text.push('\n');
        text
    }

    fn direct(seq: u64, effect: &Effect) -> String {
        let mut out = Vec::new();
        effect.write_json_line(seq, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    const STATES: [AccountState; 5] = [
        AccountState::Healthy,
        AccountState::MarginCall,
        AccountState::ReduceOnly,
        AccountState::Liquidating,
        AccountState::Bankrupt,
    ];

    /// One effect of every variant (and every reason), from the given figures.
    fn every_effect(text: &str, number: Decimal, health: Option<f64>, pick: usize) -> Vec<Effect> {
        let amount = Amount(number);
        let price = Price(number.abs().max(Decimal::new(1, 12)));
        let state = STATES[pick % STATES.len()];
        let mut effects = vec![
            Effect::AccountUpdated {
                account: text.to_owned(),
                equity: amount,
                initial_margin: Amount(-number),
                maintenance_margin: amount,
                health,
                state,
            },
            Effect::MarginCall {
                account: text.to_owned(),
                health,
                deposit: amount,
                asset: "USDT".to_owned(),
            },
            Effect::StateChanged {
                account: text.to_owned(),
                from: state,
                to: STATES[(pick + 1) % STATES.len()],
            },
            Effect::Adl {
                account: text.to_owned(),
                counterparty: format!("{text}-2"),
                instrument: "BTC-PERPETUAL".to_owned(),
                size: Quantity(number),
                price,
            },
            Effect::PriceGuarded {
                name: text.to_owned(),
                received: price,
                used: None,
                reason: GuardReason::NoFreshSource,
                detail: text.to_owned(),
            },
        ];
        for reason in [
            TransferReason::Deposit,
            TransferReason::Withdrawal,
            TransferReason::Transfer,
            TransferReason::RealisedPnl,
            TransferReason::Premium,
            TransferReason::Fee,
            TransferReason::Funding,
            TransferReason::Settlement,
            TransferReason::IsolatedMargin,
            TransferReason::LiquidationPnl,
            TransferReason::LiquidationFee,
            TransferReason::InsuranceCover,
            TransferReason::Adl,
            TransferReason::TopUp,
            TransferReason::Reallocation,
            TransferReason::CollateralSale,
            TransferReason::SocialisedLoss,
            TransferReason::DeficitClaimed,
            TransferReason::ClaimUncovered,
            TransferReason::Interest,
        ] {
            effects.push(Effect::TransferApplied {
                from: text.to_owned(),
                to: "external".to_owned(),
                asset: "BTC".to_owned(),
                amount,
                reason,
            });
        }
        for reason in [
            LiquidationReason::HealthBelowThreshold,
            LiquidationReason::IsolatedHealthBelowThreshold,
            LiquidationReason::BankruptBeyondOppositeInterest,
        ] {
            effects.push(Effect::Liquidation {
                account: text.to_owned(),
                instrument: "BTCUSDT".to_owned(),
                size: Quantity(-number),
                price,
                fee: amount,
                reason,
            });
        }
        for reason in [
            DeferralReason::StaleIndex,
            DeferralReason::BreachNotPersistent,
        ] {
            effects.push(Effect::LiquidationDeferred {
                account: text.to_owned(),
                reason,
                detail: format!("{text} {number}"),
            });
        }
        for reason in [
            InsuranceFundReason::Funded,
            InsuranceFundReason::LiquidationFee,
            InsuranceFundReason::DeficitCovered,
            InsuranceFundReason::AdlShortfall,
        ] {
            effects.push(Effect::InsuranceFundChanged {
                asset: text.to_owned(),
                balance: amount,
                change: Amount(-number),
                reason,
            });
        }
        for resolution in [
            DeficitResolution::Adl,
            DeficitResolution::Socialised,
            DeficitResolution::AccountDebt,
            DeficitResolution::Claimed,
            DeficitResolution::RemainderClaimed,
        ] {
            effects.push(Effect::DeficitBeyondFund {
                account: text.to_owned(),
                asset: "USDC".to_owned(),
                deficit: amount,
                fund: Amount::ZERO,
                resolution,
                position: None,
            });
            effects.push(Effect::DeficitBeyondFund {
                account: text.to_owned(),
                asset: "USDC".to_owned(),
                deficit: amount,
                fund: Amount::ZERO,
                resolution,
                position: Some(Box::new(ClaimedPosition {
                    instrument: "BTC-PERPETUAL".to_owned(),
                    size: Quantity(-number),
                    mark: price,
                    bankruptcy_price: price,
                    isolated: true,
                    fee: amount,
                })),
            });
        }
        for reason in [
            GuardReason::NoFreshSource,
            GuardReason::MedianOfFreshSources,
            GuardReason::JumpAwaitsConfirmation,
            GuardReason::MarkClamped,
        ] {
            effects.push(Effect::PriceGuarded {
                name: "ETH".to_owned(),
                received: price,
                used: Some(price),
                reason,
                detail: text.to_owned(),
            });
        }
        for reason in RejectReason::ALL {
            effects.push(Effect::Rejected {
                reason,
                detail: text.to_owned(),
            });
        }
        effects
    }

    #[test]
    fn matches_the_value_path() {
        let texts = [
            "acct-00001",
            "",
            "quote \" back \\ slash",
            "tab\tnew\nline\u{1}",
            "ünï €",
        ];
        let numbers = [
            Decimal::ZERO,
            // Negative zero with a scale: written "0".
            Decimal::from_parts(0, 0, 0, true, 3),
            Decimal::new(1_500, 3),
            Decimal::new(-123_456_789, 8),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::new(1, 28),
        ];
        let healths = [
            None,
            Some(1.0),
            Some(0.1 + 0.2),
            Some(-0.0),
            Some(1e-7),
            Some(1e21),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::MIN_POSITIVE),
        ];
        let mut kinds_seen = [false; Effect::KINDS.len()];
        for (pick, ((text, number), health)) in texts
            .iter()
            .flat_map(|t| numbers.iter().map(move |n| (t, n)))
            .flat_map(|tn| healths.iter().map(move |h| (tn, h)))
            .enumerate()
        {
            for effect in every_effect(text, *number, *health, pick) {
                let seq = pick as u64 * 7_919;
                assert_eq!(direct(seq, &effect), via_value(seq, &effect), "{effect:?}");
                let value = serde_json::to_value(&effect).unwrap_or_default();
                assert_eq!(Some(effect.kind()), value["type"].as_str());
                assert_eq!(Effect::KINDS[effect.kind_index()], effect.kind());
                kinds_seen[effect.kind_index()] = true;
            }
        }
        assert!(kinds_seen.iter().all(|seen| *seen));
    }

    #[test]
    fn reject_reasons_index_their_table() {
        for (index, reason) in RejectReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, index);
            let value = serde_json::to_value(reason).unwrap_or_default();
            assert_eq!(value.as_str(), Some(reason.name()));
        }
    }

    /// `Out::decimal` is `Decimal`'s `Display` of the normalised value, in quotes.
    fn assert_decimal_as_display(value: Decimal) {
        let mut bytes = Vec::new();
        Out(&mut bytes).decimal(value);
        assert_eq!(
            String::from_utf8(bytes).unwrap_or_default(),
            format!("\"{}\"", value.normalize()),
            "{value:?}"
        );
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for (mantissa, scale) in [
            (0, 0),
            (0, 5),
            (1, 0),
            (-1, 0),
            (1, 28),
            (-1, 28),
            (120, 2),
            (1_200, 0),
            (i64::MAX, 0),
            (i64::MIN, 3),
            (i64::MAX, 19),
            (i64::MAX, 20),
            (-5, 1),
        ] {
            assert_decimal_as_display(Decimal::new(mantissa, scale));
        }
        assert_decimal_as_display(Decimal::from_parts(0, 0, 0, true, 3));
        assert_decimal_as_display(Decimal::MAX);
        assert_decimal_as_display(Decimal::MIN);
        assert_decimal_as_display(Decimal::from_parts(u32::MAX, u32::MAX, 0, true, 7));
        assert_decimal_as_display(Decimal::from_parts(0, 0, 1, false, 28));
        let mut digits = [0_u8; 20];
        for value in [0, 9, 10, 99, 100, u64::MAX] {
            assert_eq!(
                decimal_digits(value, &mut digits),
                value.to_string().as_bytes()
            );
        }
    }

    proptest! {
        #[test]
        fn random_decimals_are_written_as_display_writes_them(
            low in any::<u32>(),
            mid in any::<u32>(),
            high in prop_oneof![Just(0_u32), any::<u32>()],
            negative in any::<bool>(),
            scale in 0_u32..=28,
        ) {
            assert_decimal_as_display(Decimal::from_parts(low, mid, high, negative, scale));
        }

        #[test]
        fn random_figures_match_the_value_path(
            text in "\\PC{0,12}|[\\x00-\\x7f]{0,12}",
            mantissa in any::<i64>(),
            scale in 0_u32..=28,
            health in proptest::option::of(any::<f64>()),
            seq in any::<u64>(),
            pick in 0_usize..5,
        ) {
            let number = Decimal::new(mantissa, scale);
            for effect in every_effect(&text, number, health, pick) {
                prop_assert_eq!(direct(seq, &effect), via_value(seq, &effect));
            }
        }
    }
}
