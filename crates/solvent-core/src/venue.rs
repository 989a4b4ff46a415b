//! Venue parameters (`VENUE.toml`, see `docs/venue-format.md`): assets, collateral haircut tiers,
//! margin rules and instruments, read from a file and validated into [`Venue`].

use std::sync::Arc;

use compact_str::CompactString;
use indexmap::IndexMap;
use jiff::civil::Time;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{InputError, from_toml_str};
use crate::instrument::{
    Instrument, InstrumentKind, OptionRight, Style, Terms, parse_deribit_name,
};
use crate::money::{Price, check_leverage, deserialize_decimal, deserialize_optional_decimal};

/// Largest USD bound a venue may write (a collateral tier's `up_to_usd`, a margin tier's `up_to`,
/// an open-interest cap): 10^18 USD, far above any market, so that sums and products of these
/// bounds with rates stay inside `Decimal`'s range.
const MAX_USD_BOUND: Decimal = Decimal::from_parts(2_808_348_672, 232_830_643, 0, false, 0);

/// Largest health threshold (a health of 100 is equity 100 times the maintenance margin).
const MAX_HEALTH: f64 = 100.0;
use crate::names::NameMap;

/// An asset: its ledger precision and how it is priced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Symbol (`BTC`). Kept inline, as is the index name (both are short): portfolios copy
    /// assets at every margin evaluation, and a copy then allocates nothing.
    pub symbol: CompactString,
    /// Decimals of ledger amounts.
    pub precision: u32,
    /// Name of the index that prices it in USD.
    pub index: CompactString,
    /// Price used when the market gives no index (stablecoins only, and only if the venue says so).
    pub usd_peg: Option<Decimal>,
    /// Counts as cash for `withdrawable`.
    pub cash_like: bool,
}

/// One progressive collateral tier: value up to `up_to_usd` counts at `ratio`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollateralTier {
    /// Upper bound of the tier in USD value; `None` for an open-ended last tier.
    pub up_to_usd: Option<Decimal>,
    /// Collateral value ratio inside the tier (1 = no haircut).
    pub ratio: Decimal,
}

/// Rates applied to a borrowed (negative) balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BorrowRates {
    /// Initial margin on the loan value.
    pub initial_rate: Decimal,
    /// Maintenance margin on the loan value.
    pub maintenance_rate: Decimal,
}

/// How a held asset counts as collateral.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollateralSchedule {
    /// Progressive tiers, ascending.
    pub tiers: Vec<CollateralTier>,
    /// Whether and at what margin the asset may be borrowed.
    pub borrow: Option<BorrowRates>,
    /// The interest a loan of the asset (a negative balance) pays, when the venue charges any
    /// (venue key `[collateral.X] interest`).
    pub interest: Option<InterestSchedule>,
}

/// How often a venue publishes its borrowing rate (venue key `interest.per`): the rate applies
/// to that period, and Solvent charges the hourly share of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatePeriod {
    /// An hourly rate (Bybit `hourlyBorrowRate`, Binance `nextHourlyInterestRate`).
    Hour,
    /// A daily rate; an hour is 1/24 of it (Binance FAQ: "If the daily interest rate is 0.02%,
    /// the hourly interest rate is calculated as 0.02%/24").
    Day,
    /// An annual rate; an hour is 1/8,760 of it (365 days of 24 hours).
    Year,
}

impl RatePeriod {
    /// Hours in the period.
    #[must_use]
    pub const fn hours(self) -> u32 {
        match self {
            Self::Hour => 1,
            Self::Day => 24,
            Self::Year => 8_760,
        }
    }
}

/// Which hours of a loan a venue charges (venue key `interest.rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterestRule {
    /// Every hour the loan is outstanding at its start, and the hour in which it is taken: one
    /// hour accrues when the coin is borrowed and another at the start of each hour after, so
    /// a started hour counts in full (Binance Margin FAQ "Frequently Asked Questions on Binance
    /// Margin Trading's New Dynamic Interest Rate System": borrowed at 13:55, at 14:30 two hours
    /// have accrued).
    StartedHour,
    /// Only the loan held at each whole hour: the liability at hh:00 pays one hour, a loan taken
    /// and repaid between two whole hours pays nothing (Bybit "Borrowing, Interest and Repayment
    /// (Unified Trading Account)": "Hourly Interest Payment = Borrowing Amount x Hourly Interest
    /// Rate", charged five minutes after each hour on the borrowing at that time; OKX "Interest
    /// Calculation": borrowed at 14:55 and repaid at 14:57, no interest).
    HourSnapshot,
}

/// The interest a loan pays: the rate as the venue publishes it, and which hours it charges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterestSchedule {
    /// The rate as published, per `per`.
    pub rate: Decimal,
    /// The period the published rate is for.
    pub per: RatePeriod,
    /// Which hours are charged.
    pub rule: InterestRule,
}

impl InterestSchedule {
    /// The rate of one hour: the published rate divided by the hours in its period (exact to
    /// 28 digits; the interest itself is rounded up once, to the asset's precision).
    #[must_use]
    pub fn hourly_rate(&self) -> Decimal {
        self.rate / Decimal::from(self.per.hours())
    }

    /// The interest of `hours` hours on a loan of `principal` (positive), simple and unrounded:
    /// `principal x hourly rate x hours`, the formula the venues publish (Binance: "I = P x R x
    /// T"). `None` if the product leaves `Decimal`'s range.
    #[must_use]
    pub fn interest(&self, principal: Decimal, hours: u32) -> Option<Decimal> {
        principal
            .checked_mul(self.hourly_rate())?
            .checked_mul(Decimal::from(hours))
    }
}

/// One bracket of a tiered rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarginTier {
    /// Lower bound of position value (the previous tier's `up_to`, 0 for the first).
    pub floor: Decimal,
    /// Upper bound of position value (inclusive); `None` for an open-ended last bracket.
    pub up_to: Option<Decimal>,
    /// Highest leverage allowed in the bracket.
    pub max_leverage: Decimal,
    /// Maintenance margin rate.
    pub maintenance_rate: Decimal,
    /// Deduction `d_n = d_(n-1) + floor_n * (mmr_n - mmr_(n-1))` (DESIGN.md 6.3), so that
    /// `MM = value * mmr_n - d_n` is continuous across brackets.
    pub deduction: Decimal,
}

/// A margin rule for perpetuals, futures or options (DESIGN.md 6.3-6.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MarginRule {
    /// Brackets of position value (Binance, Bybit, OKX, Hyperliquid).
    Tiered {
        /// The rule's name in the venue file.
        name: String,
        /// Brackets, ascending.
        tiers: Vec<MarginTier>,
    },
    /// Rates growing linearly with size in coin (Deribit futures and perpetuals).
    SizeLinear {
        /// The rule's name.
        name: String,
        /// Initial margin rate at zero size.
        initial_base: Decimal,
        /// Maintenance margin rate at zero size.
        maintenance_base: Decimal,
        /// Added to both rates per unit of size in coin.
        rate_per_unit: Decimal,
        /// Cap on both rates.
        max_rate: Decimal,
    },
    /// `rate = max(base, 0.8 * base + imf * sqrt(size))` (Drift IMF).
    SizeSqrt {
        /// The rule's name.
        name: String,
        /// Initial margin ratio.
        initial_base: Decimal,
        /// Maintenance margin ratio.
        maintenance_base: Decimal,
        /// Drift's `imf_factor` as a decimal rate per sqrt(coin).
        imf_factor: Decimal,
        /// Rates are floored to a multiple of this step, as the venue's fixed-point arithmetic
        /// does (Drift: 0.0001, `MARGIN_PRECISION`); `None` keeps them exact.
        rate_step: Option<Decimal>,
    },
    /// Open-interest-scaled initial margin fraction (dYdX v4 liquidity tiers).
    OpenInterest {
        /// The rule's name.
        name: String,
        /// Base initial margin fraction.
        initial_base: Decimal,
        /// Maintenance fraction of the base initial margin fraction.
        maintenance_fraction: Decimal,
        /// Open interest (USD) below which the IMF is the base.
        open_interest_lower_usd: Decimal,
        /// Open interest (USD) at and above which the IMF is 1. Both caps zero: no scaling
        /// (dYdX's large-cap tier).
        open_interest_upper_usd: Decimal,
        /// The scaled IMF is floored to a multiple of this step (dYdX: 0.000001, one ppm).
        rate_step: Option<Decimal>,
    },
    /// Deribit's standard option margin.
    DeribitOption {
        /// The rule's name.
        name: String,
        /// 0.15 at Deribit: initial rate before the out-of-the-money credit.
        initial_base: Decimal,
        /// 0.10 at Deribit: floor of the initial rate.
        initial_floor: Decimal,
        /// 0.075 at Deribit: maintenance rate.
        maintenance: Decimal,
    },
    /// Brackets that count something other than position value, or whose rate applies to the
    /// whole position (OKX: tiers in contracts, the rate of the tier a position reaches on all of
    /// it). Written in the file as a `tiered` rule with `tier_unit` or `rate_applies_to`; kept
    /// apart from [`MarginRule::Tiered`] so that the venues written before these keys keep their
    /// encoding and digest.
    TieredBy {
        /// The rule's name in the venue file.
        name: String,
        /// Brackets, ascending, their bounds (`floor`, `up_to`) in `unit`; every deduction is 0
        /// when the rate applies to the whole position.
        tiers: Vec<MarginTier>,
        /// What the bounds count.
        unit: TierUnit,
        /// How a bracket's maintenance rate applies.
        rates: TierRates,
    },
}

/// What the brackets of a tiered rule count (venue key `tier_unit` of a `tiered` rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierUnit {
    /// Position value in the settlement currency (coin for inverse contracts): Binance, Bybit,
    /// Hyperliquid.
    #[default]
    Value,
    /// Number of contracts held (OKX "Tiered maintenance margin ratio rules": "Min. amount
    /// (Cont)", "Max. amount (Cont)"; `minSz`/`maxSz` of `GET /api/v5/public/position-tiers`):
    /// the position's size for a linear contract (size counted in contracts of
    /// `contract_size` coin), size / `contract_size` for an inverse one. A bracket does not move
    /// with the price.
    Contracts,
}

/// How a tiered rule's maintenance rate applies (venue key `rate_applies_to` of a `tiered`
/// rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierRates {
    /// Each part of the position at its own bracket's rate, written `MM = value x mmr_n - d_n`
    /// with the deduction of DESIGN.md 6.3 (Binance, Bybit, Hyperliquid).
    #[default]
    EachBracket,
    /// The rate of the bracket the position reaches on the whole position, no deduction (OKX:
    /// maintenance margin = face value x contracts x mark price x tiered maintenance margin
    /// ratio, help page "Tiered maintenance margin ratio rules").
    WholePosition,
}

impl MarginRule {
    /// The brackets of a tiered rule (either form), what they count and how their rates apply;
    /// `None` for the other rules.
    #[must_use]
    pub fn tiers(&self) -> Option<(&[MarginTier], TierUnit, TierRates)> {
        match self {
            Self::Tiered { tiers, .. } => Some((tiers, TierUnit::Value, TierRates::EachBracket)),
            Self::TieredBy {
                tiers, unit, rates, ..
            } => Some((tiers, *unit, *rates)),
            _ => None,
        }
    }

    /// The rule's name in the venue file.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Tiered { name, .. }
            | Self::SizeLinear { name, .. }
            | Self::SizeSqrt { name, .. }
            | Self::OpenInterest { name, .. }
            | Self::DeribitOption { name, .. }
            | Self::TieredBy { name, .. } => name,
        }
    }
}

/// Health thresholds of the account states (DESIGN.md 8.1; defaults from Binance portfolio margin).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthThresholds {
    /// At or below: `margin_call`.
    pub margin_call: f64,
    /// At or below: `reduce_only`.
    pub reduce_only: f64,
    /// At or below: `liquidating`.
    pub liquidation: f64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            margin_call: 1.5,
            reduce_only: 1.2,
            liquidation: 1.05,
        }
    }
}

/// Template for instruments named in Deribit style.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Series {
    /// Perpetual, future or option.
    pub kind: InstrumentKind,
    /// Index name of the underlying (`BTC`).
    pub underlying: String,
    /// Asset the series settles in.
    pub settlement: String,
    /// Linear or inverse.
    pub style: Style,
    /// As [`Instrument::contract_size`].
    pub contract_size: Decimal,
    /// Smallest size increment.
    pub size_step: Decimal,
    /// The margin rule of every instrument of the series.
    pub margin: Arc<MarginRule>,
    /// Leverage for `tiered` initial margin when a position names none.
    pub default_leverage: Option<Decimal>,
}

/// A validated venue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Venue {
    /// Display name.
    pub name: String,
    /// Default currency of margin reports.
    pub settlement_asset: String,
    /// Time of day (UTC) at which date codes expire.
    pub expiry_time_utc: Time,
    /// Account state thresholds.
    pub thresholds: HealthThresholds,
    /// Assets by symbol.
    pub assets: NameMap<Asset>,
    /// Collateral schedules by asset symbol.
    pub collateral: NameMap<CollateralSchedule>,
    /// Margin rules by name.
    pub rules: NameMap<Arc<MarginRule>>,
    instruments: NameMap<Arc<Instrument>>,
    series: Vec<Series>,
    /// Portfolio-margin parameters, when the venue offers portfolio margin.
    pub portfolio_margin: Option<crate::portfolio_margin::PortfolioMarginParams>,
    /// Who bears a bankrupt account's deficit beyond the insurance fund.
    pub deficits: DeficitPolicy,
    /// Where an isolated position's liquidation price takes its maintenance margin.
    #[serde(default)]
    pub liquidation_maintenance: LiquidationMaintenance,
    /// Rate of the fee to close a perpetual or future that the liquidation price adds to the
    /// maintenance rate (venue key `[venue] liquidation_fee_rate`, default 0): OKX and Gate
    /// liquidate when the margin no longer covers the maintenance margin plus the taker fee of
    /// closing the position at the liquidation price, so their price sits that much closer to
    /// the mark than the maintenance margin alone puts it. A fraction of the position value at
    /// the liquidation price, from 0 to 1.
    #[serde(default)]
    pub liquidation_fee_rate: Decimal,
    /// What a withdrawal from the cross pool may take (venue key `[venue] withdrawal`).
    #[serde(default)]
    pub withdrawal: WithdrawalRule,
}

/// What a withdrawal from the cross pool may take (venue key `[venue] withdrawal`), beside the
/// limits every venue applies (the cash-like collateral, and the equity above the initial
/// margin, DESIGN.md 7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalRule {
    /// `min(cash-like collateral, equity - initial margin)` (DESIGN.md 7).
    #[default]
    EquityAboveInitialMargin,
    /// Also the wallet keeps the cross positions' maintenance margin: `min(cash-like
    /// collateral - cross maintenance margin, equity - initial margin)`, so unrealised profit
    /// backs the initial margin but never pays the wallet out below the maintenance margin
    /// (Binance FAQ "How to Adjust Margin Balance in Cross/Isolated Margin Mode": the maximum
    /// withdrawal in cross margin is `crossWalletBalance - sum isolated open order IM - cross
    /// position MM`, and no more than `crossWalletBalance + sum cross unrealised PNL - sum cross
    /// IM - sum isolated open order IM`; Solvent has no open orders).
    WalletAboveMaintenanceMargin,
    /// Also each coin pays out only what its wallet holds beyond the unrealised loss of the
    /// cross perpetuals and futures settled in it: `min(sum over cash-like coins of max(0,
    /// wallet + min(unrealised P&L, 0)), equity - initial margin)`, so unrealised profit never
    /// pays out and a coin's unrealised loss holds back that coin, whatever the other collateral
    /// (Bybit API documentation "Get Transferable Amount (Unified)": "Asset Available Balance
    /// for withdraw = min(X, asset withdraw Available balance)", X reverse-calculated from
    /// `totalAvailableBalance`, and under cross margin "asset withdraw Available balance = asset
    /// wallet balance + min(unrealised pnl,0) + ..."; the other terms are orders, options,
    /// bonuses and frozen amounts, which Solvent does not hold).
    WalletLessUnrealisedLoss,
}

/// Where the liquidation price of an isolated position takes its maintenance margin (venue key
/// `[venue] liquidation_maintenance`): venues publish different formulas for the same rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationMaintenance {
    /// At the liquidation price itself: the price where the margin plus the P&L meets the
    /// maintenance margin of the position valued there (Binance's isolated formula with its
    /// maintenance amount, Hyperliquid's `liq = mark - side x margin / |size| / (1 - l x side)`).
    #[default]
    AtLiquidationPrice,
    /// On the position's entry value: `liq = entry - side x (margin - MM(entry)) / |size|`
    /// (Bybit "Liquidation Price (USDT Contract)", isolated: `Entry - (IM - MM) / size`, with IM
    /// and MM on `Position Value = size x Entry Price`).
    AtEntryValue,
}

/// Who bears a bankrupt account's deficit that the insurance fund cannot cover (venue key
/// `[venue] deficits`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeficitPolicy {
    /// The opposite positions in profit are reduced at the bankruptcy price, ranked by profit x
    /// leverage (auto-deleveraging: Binance, Bybit, Hyperliquid, dYdX v4); what no opposite
    /// interest can take stays the account's debt.
    #[default]
    Adl,
    /// The deficit is shared by the accounts in profit in the deficit's asset, pro rata to
    /// their unrealised profit and never beyond it (socialised loss: Drift's pool-wide
    /// settlement of bankruptcies, BitMEX's early clawbacks); what their profit cannot pay
    /// stays the account's debt.
    Socialise,
}

// ---- the file as written -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueFile {
    venue: VenueSection,
    #[serde(default)]
    assets: IndexMap<String, AssetFile>,
    #[serde(default)]
    collateral: IndexMap<String, CollateralFile>,
    #[serde(default)]
    margin_rules: IndexMap<String, RuleFile>,
    #[serde(default)]
    instruments: IndexMap<String, InstrumentFile>,
    #[serde(default)]
    series: Vec<SeriesFile>,
    #[serde(default)]
    portfolio_margin: Option<crate::portfolio_margin::PortfolioMarginFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueSection {
    name: String,
    settlement_asset: String,
    #[serde(default)]
    expiry_time_utc: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    margin_call_health: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    reduce_only_health: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    liquidation_health: Option<Decimal>,
    #[serde(default)]
    deficits: DeficitPolicy,
    #[serde(default)]
    liquidation_maintenance: LiquidationMaintenance,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    liquidation_fee_rate: Option<Decimal>,
    #[serde(default)]
    withdrawal: WithdrawalRule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetFile {
    precision: u32,
    #[serde(default)]
    index: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    usd_peg: Option<Decimal>,
    #[serde(default)]
    cash_like: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollateralFile {
    tiers: Vec<TierFile>,
    #[serde(default)]
    borrow: Option<BorrowFile>,
    #[serde(default)]
    interest: Option<InterestFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterestFile {
    #[serde(deserialize_with = "deserialize_decimal")]
    rate: Decimal,
    per: RatePeriod,
    rule: InterestRule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    up_to_usd: Option<Decimal>,
    #[serde(deserialize_with = "deserialize_decimal")]
    ratio: Decimal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BorrowFile {
    #[serde(deserialize_with = "deserialize_decimal")]
    initial_rate: Decimal,
    #[serde(deserialize_with = "deserialize_decimal")]
    maintenance_rate: Decimal,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RuleKind {
    Tiered,
    SizeLinear,
    SizeSqrt,
    OpenInterest,
    DeribitOption,
}

/// A margin rule as written: one flat table whose `kind` decides which fields it needs (a flat
/// struct rather than a tagged enum keeps the exact path of a bad field in error messages).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    kind: RuleKind,
    #[serde(default)]
    tiers: Option<Vec<MarginTierFile>>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    initial_base: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    maintenance_base: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    rate_per_unit: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    max_rate: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    imf_factor: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    maintenance_fraction: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    open_interest_lower_usd: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    open_interest_upper_usd: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    initial_floor: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    maintenance: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    rate_step: Option<Decimal>,
    #[serde(default)]
    tier_unit: Option<TierUnit>,
    #[serde(default)]
    rate_applies_to: Option<TierRates>,
}

impl RuleFile {
    /// The fields each kind takes, so that a field meant for another kind is refused by name.
    fn allowed_fields(kind: RuleKind) -> &'static [&'static str] {
        match kind {
            RuleKind::Tiered => &["tiers", "tier_unit", "rate_applies_to"],
            RuleKind::SizeLinear => &[
                "initial_base",
                "maintenance_base",
                "rate_per_unit",
                "max_rate",
            ],
            RuleKind::SizeSqrt => &[
                "initial_base",
                "maintenance_base",
                "imf_factor",
                "rate_step",
            ],
            RuleKind::OpenInterest => &[
                "initial_base",
                "maintenance_fraction",
                "open_interest_lower_usd",
                "open_interest_upper_usd",
                "rate_step",
            ],
            RuleKind::DeribitOption => &["initial_base", "initial_floor", "maintenance"],
        }
    }

    fn present_fields(&self) -> Vec<&'static str> {
        let mut present = Vec::new();
        let mut note = |name: &'static str, is_set: bool| {
            if is_set {
                present.push(name);
            }
        };
        note("tiers", self.tiers.is_some());
        note("initial_base", self.initial_base.is_some());
        note("maintenance_base", self.maintenance_base.is_some());
        note("rate_per_unit", self.rate_per_unit.is_some());
        note("max_rate", self.max_rate.is_some());
        note("imf_factor", self.imf_factor.is_some());
        note("maintenance_fraction", self.maintenance_fraction.is_some());
        note(
            "open_interest_lower_usd",
            self.open_interest_lower_usd.is_some(),
        );
        note(
            "open_interest_upper_usd",
            self.open_interest_upper_usd.is_some(),
        );
        note("initial_floor", self.initial_floor.is_some());
        note("maintenance", self.maintenance.is_some());
        note("rate_step", self.rate_step.is_some());
        note("tier_unit", self.tier_unit.is_some());
        note("rate_applies_to", self.rate_applies_to.is_some());
        present
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarginTierFile {
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    from: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    up_to: Option<Decimal>,
    #[serde(deserialize_with = "deserialize_decimal")]
    max_leverage: Decimal,
    #[serde(deserialize_with = "deserialize_decimal")]
    mmr: Decimal,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    deduction: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentFile {
    kind: InstrumentKind,
    style: Style,
    underlying: String,
    settlement: String,
    #[serde(deserialize_with = "deserialize_decimal")]
    contract_size: Decimal,
    #[serde(deserialize_with = "deserialize_decimal")]
    size_step: Decimal,
    margin: String,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    default_leverage: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    tick_size: Option<Decimal>,
    #[serde(default)]
    expiry: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    strike: Option<Decimal>,
    #[serde(default)]
    right: Option<OptionRight>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesFile {
    kind: InstrumentKind,
    underlying: String,
    settlement: String,
    style: Style,
    #[serde(deserialize_with = "deserialize_decimal")]
    contract_size: Decimal,
    #[serde(deserialize_with = "deserialize_decimal")]
    size_step: Decimal,
    margin: String,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    default_leverage: Option<Decimal>,
}

// ---- validation ----------------------------------------------------------------------------

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn fail(&self, path: impl Into<String>, problem: impl Into<String>) -> InputError {
        InputError::new(self.file, path, problem)
    }

    fn rate(
        &self,
        path: String,
        value: Decimal,
        allow_above_one: bool,
    ) -> Result<Decimal, InputError> {
        if value < Decimal::ZERO {
            return Err(self.fail(path, format!("must not be negative, found {value}")));
        }
        if !allow_above_one && value > Decimal::ONE {
            return Err(self.fail(path, format!("must be at most 1, found {value}")));
        }
        Ok(value)
    }

    fn positive(&self, path: String, value: Decimal) -> Result<Decimal, InputError> {
        if value <= Decimal::ZERO {
            return Err(self.fail(path, format!("must be greater than zero, found {value}")));
        }
        Ok(value)
    }

    /// A rate that must be positive and at most 1 (a cap on rates, a rounding step of rates).
    fn positive_rate(&self, path: String, value: Decimal) -> Result<Decimal, InputError> {
        self.positive(path.clone(), value)?;
        self.rate(path, value, false)
    }

    /// A USD bound: positive and at most [`MAX_USD_BOUND`].
    fn usd_bound(&self, path: String, value: Decimal) -> Result<Decimal, InputError> {
        if value > MAX_USD_BOUND {
            return Err(self.fail(path, format!("must be at most 1e18 USD, found {value}")));
        }
        self.positive(path, value)
    }

    /// A leverage within [`check_leverage`]'s range.
    fn leverage(&self, path: String, value: Decimal) -> Result<Decimal, InputError> {
        check_leverage(value).map_err(|problem| self.fail(path, problem))
    }

    /// A contract size or size step: positive and at most 10^6, so that sizes times contract sizes
    /// times prices stay far inside `Decimal`'s range.
    fn contract(&self, path: String, value: Decimal) -> Result<Decimal, InputError> {
        if value > Decimal::from(1_000_000) {
            return Err(self.fail(path, format!("must be at most 1000000, found {value}")));
        }
        self.positive(path, value)
    }

    fn health(&self, path: &str, value: Option<Decimal>, default: f64) -> Result<f64, InputError> {
        match value {
            None => Ok(default),
            Some(value) => {
                let number: f64 = value
                    .try_into()
                    .map_err(|_| self.fail(path, "not representable as a number"))?;
                if !(number > 0.0 && number <= MAX_HEALTH) {
                    return Err(self.fail(
                        path,
                        format!(
                            "must be greater than zero and at most {MAX_HEALTH}, found {value}"
                        ),
                    ));
                }
                Ok(number)
            }
        }
    }
}

impl Venue {
    /// Reads and validates a venue file.
    ///
    /// # Errors
    /// [`InputError`] naming the table and field of the first problem.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, InputError> {
        let raw: VenueFile = from_toml_str(file, text)?;
        Self::validate(file, raw)
    }

    fn validate(file: &str, raw: VenueFile) -> Result<Self, InputError> {
        let check = Checker { file };
        let expiry_time_utc = match &raw.venue.expiry_time_utc {
            None => Time::constant(8, 0, 0, 0),
            Some(text) => text.parse::<Time>().map_err(|_| {
                check.fail(
                    "venue.expiry_time_utc",
                    format!("expected \"HH:MM\", found {text:?}"),
                )
            })?,
        };
        let defaults = HealthThresholds::default();
        let thresholds = HealthThresholds {
            margin_call: check.health(
                "venue.margin_call_health",
                raw.venue.margin_call_health,
                defaults.margin_call,
            )?,
            reduce_only: check.health(
                "venue.reduce_only_health",
                raw.venue.reduce_only_health,
                defaults.reduce_only,
            )?,
            liquidation: check.health(
                "venue.liquidation_health",
                raw.venue.liquidation_health,
                defaults.liquidation,
            )?,
        };
        if !(thresholds.margin_call > thresholds.reduce_only
            && thresholds.reduce_only > thresholds.liquidation)
        {
            return Err(check.fail(
                "venue",
                "health thresholds must satisfy margin_call_health > reduce_only_health > liquidation_health",
            ));
        }
        // A fee of 100% or more of the position would put a long's liquidation price at or
        // above any mark; venues charge a fraction of a percent.
        let liquidation_fee_rate = match raw.venue.liquidation_fee_rate {
            None => Decimal::ZERO,
            Some(rate) => {
                let rate = check.rate("venue.liquidation_fee_rate".to_owned(), rate, false)?;
                if rate == Decimal::ONE {
                    return Err(
                        check.fail("venue.liquidation_fee_rate", "must be below 1, found 1")
                    );
                }
                rate
            }
        };

        let mut assets = NameMap::default();
        for (symbol, asset) in raw.assets {
            if asset.precision > 18 {
                return Err(check.fail(format!("assets.{symbol}.precision"), "must be at most 18"));
            }
            if let Some(peg) = asset.usd_peg {
                // A peg stands in for an index price, so it is bounded like one.
                Price::try_from(peg)
                    .map_err(|problem| check.fail(format!("assets.{symbol}.usd_peg"), problem))?;
            }
            assets.insert(
                symbol.clone(),
                Asset {
                    index: asset.index.unwrap_or_else(|| symbol.clone()).into(),
                    symbol: symbol.into(),
                    precision: asset.precision,
                    usd_peg: asset.usd_peg,
                    cash_like: asset.cash_like,
                },
            );
        }
        let known_asset = |path: String, symbol: &str| -> Result<(), InputError> {
            if assets.contains_key(symbol) {
                Ok(())
            } else {
                Err(check.fail(
                    path,
                    format!("unknown asset {symbol:?}: list it under [assets]"),
                ))
            }
        };
        known_asset(
            "venue.settlement_asset".to_owned(),
            &raw.venue.settlement_asset,
        )?;

        let mut collateral = NameMap::default();
        for (symbol, schedule) in raw.collateral {
            known_asset(format!("collateral.{symbol}"), &symbol)?;
            collateral.insert(
                symbol.clone(),
                Self::validate_collateral(&check, &symbol, schedule)?,
            );
        }

        let mut rules = NameMap::default();
        for (name, rule) in raw.margin_rules {
            let rule = Self::validate_rule(&check, &name, rule)?;
            rules.insert(name, Arc::new(rule));
        }
        let find_rule = |path: String, name: &str| -> Result<Arc<MarginRule>, InputError> {
            rules.get(name).cloned().ok_or_else(|| {
                check.fail(
                    path,
                    format!("unknown margin rule {name:?}: define it under [margin_rules]"),
                )
            })
        };

        let mut instruments = NameMap::default();
        for (name, spec) in raw.instruments {
            let instrument = Self::validate_instrument(
                &check,
                &assets,
                &rules,
                &format!("instruments.{name}"),
                &name,
                spec,
            )?;
            instruments.insert(name, Arc::new(instrument));
        }

        let mut series = Vec::new();
        for (position, spec) in raw.series.into_iter().enumerate() {
            let path = format!("series[{position}]");
            known_asset(format!("{path}.settlement"), &spec.settlement)?;
            let entry = Series {
                kind: spec.kind,
                margin: find_rule(format!("{path}.margin"), &spec.margin)?,
                contract_size: check
                    .contract(format!("{path}.contract_size"), spec.contract_size)?,
                size_step: check.contract(format!("{path}.size_step"), spec.size_step)?,
                default_leverage: Self::leverage(
                    &check,
                    format!("{path}.default_leverage"),
                    spec.default_leverage,
                )?,
                underlying: spec.underlying,
                settlement: spec.settlement,
                style: spec.style,
            };
            Self::check_default_leverage(
                &check,
                &format!("{path}.default_leverage"),
                &entry.margin,
                entry.default_leverage,
            )?;
            let is_option_rule = matches!(*entry.margin, MarginRule::DeribitOption { .. });
            if is_option_rule != (entry.kind == InstrumentKind::Option) {
                return Err(check.fail(
                    format!("{path}.margin"),
                    "options need a deribit_option rule, and only options may use one",
                ));
            }
            series.push(entry);
        }

        let portfolio_margin = raw
            .portfolio_margin
            .map(|params| crate::portfolio_margin::validate(file, params))
            .transpose()?;
        Ok(Self {
            portfolio_margin,
            deficits: raw.venue.deficits,
            liquidation_maintenance: raw.venue.liquidation_maintenance,
            liquidation_fee_rate,
            withdrawal: raw.venue.withdrawal,
            name: raw.venue.name,
            settlement_asset: raw.venue.settlement_asset,
            expiry_time_utc,
            thresholds,
            assets,
            collateral,
            rules,
            instruments,
            series,
        })
    }

    fn step(
        check: &Checker<'_>,
        path: &str,
        value: Option<Decimal>,
    ) -> Result<Option<Decimal>, InputError> {
        value
            .map(|step| check.positive_rate(format!("{path}.rate_step"), step))
            .transpose()
    }

    fn validate_instrument(
        check: &Checker<'_>,
        assets: &NameMap<Asset>,
        rules: &NameMap<Arc<MarginRule>>,
        path: &str,
        name: &str,
        spec: InstrumentFile,
    ) -> Result<Instrument, InputError> {
        if !assets.contains_key(&spec.settlement) {
            return Err(check.fail(
                format!("{path}.settlement"),
                format!(
                    "unknown asset {:?}: list it under [assets]",
                    spec.settlement
                ),
            ));
        }
        let margin = rules.get(&spec.margin).cloned().ok_or_else(|| {
            check.fail(
                format!("{path}.margin"),
                format!(
                    "unknown margin rule {:?}: define it under [margin_rules]",
                    spec.margin
                ),
            )
        })?;
        let terms = Self::validate_terms(check, path, &spec)?;
        let instrument = Instrument {
            name: name.to_owned(),
            terms,
            style: spec.style,
            underlying: spec.underlying,
            settlement: spec.settlement,
            contract_size: check.contract(format!("{path}.contract_size"), spec.contract_size)?,
            size_step: check.contract(format!("{path}.size_step"), spec.size_step)?,
            margin,
            default_leverage: Self::leverage(
                check,
                format!("{path}.default_leverage"),
                spec.default_leverage,
            )?,
            tick_size: spec
                .tick_size
                .map(|tick| check.contract(format!("{path}.tick_size"), tick))
                .transpose()?,
        };
        Self::check_rule_fits(check, path, &instrument)?;
        Self::check_default_leverage(
            check,
            &format!("{path}.default_leverage"),
            &instrument.margin,
            instrument.default_leverage,
        )?;
        Ok(instrument)
    }

    /// A default leverage above the first tier's maximum would stand every position that names
    /// none above its tier's maximum (refused by the venue): refused here by key rather than
    /// capped at every evaluation.
    fn check_default_leverage(
        check: &Checker<'_>,
        path: &str,
        rule: &MarginRule,
        default_leverage: Option<Decimal>,
    ) -> Result<(), InputError> {
        let Some(((tiers, _, _), leverage)) = rule.tiers().zip(default_leverage) else {
            return Ok(());
        };
        match tiers.first() {
            Some(first) if leverage > first.max_leverage => Err(check.fail(
                path,
                format!(
                    "default leverage {} is above the {}x maximum of tier 1 of margin rule {:?}",
                    leverage.normalize(),
                    first.max_leverage.normalize(),
                    rule.name()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Lists a new instrument, written as one `[instruments.NAME]` table would be (as JSON).
    ///
    /// # Errors
    /// [`InputError`] naming the field, or when the name is already listed; the venue is then
    /// unchanged.
    pub fn list_instrument(
        &mut self,
        origin: &str,
        name: &str,
        spec: &serde_json::Value,
    ) -> Result<(), InputError> {
        let check = Checker { file: origin };
        let path = format!("instruments.{name}");
        if self.instruments.contains_key(name) {
            return Err(check.fail(path, format!("{name} is already listed")));
        }
        let spec: InstrumentFile =
            serde_path_to_error::deserialize(spec.clone()).map_err(|error| {
                check.fail(
                    format!("{path}.{}", error.path()),
                    error.into_inner().to_string(),
                )
            })?;
        let instrument =
            Self::validate_instrument(&check, &self.assets, &self.rules, &path, name, spec)?;
        self.instruments
            .insert(name.to_owned(), Arc::new(instrument));
        Ok(())
    }

    fn leverage(
        check: &Checker<'_>,
        path: String,
        value: Option<Decimal>,
    ) -> Result<Option<Decimal>, InputError> {
        value
            .map(|leverage| check.leverage(path, leverage))
            .transpose()
    }

    fn validate_collateral(
        check: &Checker<'_>,
        symbol: &str,
        schedule: CollateralFile,
    ) -> Result<CollateralSchedule, InputError> {
        let mut tiers = Vec::with_capacity(schedule.tiers.len());
        let mut previous = Decimal::ZERO;
        let count = schedule.tiers.len();
        for (position, tier) in schedule.tiers.into_iter().enumerate() {
            let path = format!("collateral.{symbol}.tiers[{position}]");
            check.rate(format!("{path}.ratio"), tier.ratio, false)?;
            if let Some(up_to) = tier.up_to_usd {
                check.usd_bound(format!("{path}.up_to_usd"), up_to)?;
            }
            match tier.up_to_usd {
                Some(up_to) if up_to <= previous => {
                    return Err(check.fail(
                        format!("{path}.up_to_usd"),
                        format!(
                            "tiers must ascend: {up_to} is not above the previous bound {previous}"
                        ),
                    ));
                }
                Some(up_to) => previous = up_to,
                None if position + 1 != count => {
                    return Err(check.fail(
                        format!("{path}.up_to_usd"),
                        "only the last tier may be open-ended",
                    ));
                }
                None => {}
            }
            tiers.push(CollateralTier {
                up_to_usd: tier.up_to_usd,
                ratio: tier.ratio,
            });
        }
        if tiers.is_empty() {
            return Err(check.fail(
                format!("collateral.{symbol}.tiers"),
                "at least one tier is needed",
            ));
        }
        let borrow = match schedule.borrow {
            None => None,
            Some(rates) => {
                let path = format!("collateral.{symbol}.borrow");
                let initial_rate =
                    check.rate(format!("{path}.initial_rate"), rates.initial_rate, false)?;
                let maintenance_rate = check.rate(
                    format!("{path}.maintenance_rate"),
                    rates.maintenance_rate,
                    false,
                )?;
                if maintenance_rate > initial_rate {
                    return Err(check.fail(path, "maintenance_rate must not exceed initial_rate"));
                }
                Some(BorrowRates {
                    initial_rate,
                    maintenance_rate,
                })
            }
        };
        let interest = match schedule.interest {
            None => None,
            Some(interest) => {
                // A rate above 100% of the period is no borrowing rate any venue publishes; the
                // bound also keeps `loan x rate` inside `Decimal`.
                let rate = check.rate(
                    format!("collateral.{symbol}.interest.rate"),
                    interest.rate,
                    false,
                )?;
                Some(InterestSchedule {
                    rate,
                    per: interest.per,
                    rule: interest.rule,
                })
            }
        };
        Ok(CollateralSchedule {
            tiers,
            borrow,
            interest,
        })
    }

    fn validate_rule(
        check: &Checker<'_>,
        name: &str,
        rule: RuleFile,
    ) -> Result<MarginRule, InputError> {
        let path = format!("margin_rules.{name}");
        let allowed = RuleFile::allowed_fields(rule.kind);
        if let Some(field) = rule
            .present_fields()
            .into_iter()
            .find(|field| !allowed.contains(field))
        {
            return Err(check.fail(
                format!("{path}.{field}"),
                format!(
                    "not a field of a {:?} rule (it takes {})",
                    rule.kind,
                    allowed.join(", ")
                ),
            ));
        }
        let required = |field: &str, value: Option<Decimal>| {
            value.ok_or_else(|| {
                check.fail(
                    format!("{path}.{field}"),
                    format!("required for a {:?} rule", rule.kind),
                )
            })
        };
        let rate = |field: &str, value: Option<Decimal>| {
            check.rate(format!("{path}.{field}"), required(field, value)?, false)
        };
        // The base rates of the size-scaled rules: maintenance never above initial.
        let bases = || -> Result<(Decimal, Decimal), InputError> {
            let initial_base = rate("initial_base", rule.initial_base)?;
            let maintenance_base = rate("maintenance_base", rule.maintenance_base)?;
            if maintenance_base > initial_base {
                return Err(check.fail(
                    path.clone(),
                    "maintenance_base must not exceed initial_base",
                ));
            }
            Ok((initial_base, maintenance_base))
        };
        let name = name.to_owned();
        Ok(match rule.kind {
            RuleKind::Tiered => {
                let unit = rule.tier_unit.unwrap_or_default();
                let rates = rule.rate_applies_to.unwrap_or_default();
                let tiers =
                    Self::validate_tiers(check, &path, rule.tiers.unwrap_or_default(), rates)?;
                if unit == TierUnit::Value && rates == TierRates::EachBracket {
                    MarginRule::Tiered { tiers, name }
                } else {
                    MarginRule::TieredBy {
                        name,
                        tiers,
                        unit,
                        rates,
                    }
                }
            }
            RuleKind::SizeLinear => {
                let (initial_base, maintenance_base) = bases()?;
                MarginRule::SizeLinear {
                    name,
                    initial_base,
                    maintenance_base,
                    rate_per_unit: rate("rate_per_unit", rule.rate_per_unit)?,
                    max_rate: check.positive_rate(
                        format!("{path}.max_rate"),
                        rule.max_rate.unwrap_or(Decimal::ONE),
                    )?,
                }
            }
            RuleKind::SizeSqrt => {
                let (initial_base, maintenance_base) = bases()?;
                MarginRule::SizeSqrt {
                    name,
                    initial_base,
                    maintenance_base,
                    imf_factor: rate("imf_factor", rule.imf_factor)?,
                    rate_step: Self::step(check, &path, rule.rate_step)?,
                }
            }
            RuleKind::OpenInterest => {
                let lower = required("open_interest_lower_usd", rule.open_interest_lower_usd)?;
                let upper = required("open_interest_upper_usd", rule.open_interest_upper_usd)?;
                if lower.is_sign_negative() && !lower.is_zero() {
                    return Err(check.fail(
                        format!("{path}.open_interest_lower_usd"),
                        "must not be negative",
                    ));
                }
                if upper > MAX_USD_BOUND {
                    return Err(check.fail(
                        format!("{path}.open_interest_upper_usd"),
                        format!("must be at most 1e18 USD, found {upper}"),
                    ));
                }
                let disabled = lower.is_zero() && upper.is_zero();
                if upper <= lower && !disabled {
                    return Err(check.fail(
                        format!("{path}.open_interest_upper_usd"),
                        "must be greater than open_interest_lower_usd",
                    ));
                }
                MarginRule::OpenInterest {
                    name,
                    initial_base: rate("initial_base", rule.initial_base)?,
                    maintenance_fraction: rate("maintenance_fraction", rule.maintenance_fraction)?,
                    open_interest_lower_usd: lower,
                    open_interest_upper_usd: upper,
                    rate_step: Self::step(check, &path, rule.rate_step)?,
                }
            }
            RuleKind::DeribitOption => MarginRule::DeribitOption {
                name,
                initial_base: rate("initial_base", rule.initial_base)?,
                initial_floor: rate("initial_floor", rule.initial_floor)?,
                maintenance: rate("maintenance", rule.maintenance)?,
            },
        })
    }

    fn validate_tiers(
        check: &Checker<'_>,
        path: &str,
        tiers: Vec<MarginTierFile>,
        rates: TierRates,
    ) -> Result<Vec<MarginTier>, InputError> {
        if tiers.is_empty() {
            return Err(check.fail(format!("{path}.tiers"), "at least one tier is needed"));
        }
        let mut result: Vec<MarginTier> = Vec::with_capacity(tiers.len());
        for (position, tier) in tiers.into_iter().enumerate() {
            let tier_path = format!("{path}.tiers[{position}]");
            let maintenance_rate = check.rate(format!("{tier_path}.mmr"), tier.mmr, false)?;
            let max_leverage =
                check.leverage(format!("{tier_path}.max_leverage"), tier.max_leverage)?;
            if let Some(up_to) = tier.up_to {
                check.usd_bound(format!("{tier_path}.up_to"), up_to)?;
            }
            if maintenance_rate * max_leverage > Decimal::ONE {
                return Err(check.fail(
                    format!("{tier_path}.mmr"),
                    format!("maintenance rate {maintenance_rate} exceeds the initial rate 1/{max_leverage} of the tier"),
                ));
            }
            let (floor, deduction) = match result.last() {
                None => (Decimal::ZERO, Decimal::ZERO),
                Some(MarginTier { up_to: None, .. }) => {
                    return Err(check.fail(
                        format!("{path}.tiers[{}].up_to", position - 1),
                        "only the last tier may be open-ended",
                    ));
                }
                Some(MarginTier {
                    up_to: Some(previous_up_to),
                    deduction,
                    maintenance_rate: previous_rate,
                    ..
                }) => (
                    *previous_up_to,
                    deduction + previous_up_to * (maintenance_rate - previous_rate),
                ),
            };
            if let Some(from) = tier.from
                && from != floor
            {
                let previous = match position {
                    0 => "the first tier starts at 0".to_owned(),
                    _ => format!("tier {position} ends at {}", floor.normalize()),
                };
                return Err(check.fail(
                    format!("{tier_path}.from"),
                    format!(
                        "tiers must be contiguous: tier {} starts at {} but {previous}",
                        position + 1,
                        from.normalize()
                    ),
                ));
            }
            if let Some(up_to) = tier.up_to
                && up_to <= floor
            {
                return Err(check.fail(
                    format!("{tier_path}.up_to"),
                    format!("tiers must ascend: {up_to} is not above {floor}"),
                ));
            }
            // A rate on the whole position has no deduction: the maintenance margin jumps
            // where the position enters the next bracket, as the venue's does.
            let deduction = match rates {
                TierRates::EachBracket => deduction,
                TierRates::WholePosition => {
                    if tier.deduction.is_some() {
                        return Err(check.fail(
                            format!("{tier_path}.deduction"),
                            "a rate applied to the whole position (rate_applies_to = \"whole_position\") has no deduction",
                        ));
                    }
                    Decimal::ZERO
                }
            };
            if let Some(published) = tier.deduction
                && published != deduction
            {
                return Err(check.fail(
                    format!("{tier_path}.deduction"),
                    format!(
                        "published deduction {published} differs from d_n = d_(n-1) + floor_n * (mmr_n - mmr_(n-1)) = {}",
                        deduction.normalize()
                    ),
                ));
            }
            result.push(MarginTier {
                floor,
                up_to: tier.up_to,
                max_leverage,
                maintenance_rate,
                deduction,
            });
        }
        Ok(result)
    }

    fn validate_terms(
        check: &Checker<'_>,
        path: &str,
        spec: &InstrumentFile,
    ) -> Result<Terms, InputError> {
        let expiry = match &spec.expiry {
            None => None,
            Some(text) => Some(text.parse::<jiff::Timestamp>().map_err(|_| {
                check.fail(
                    format!("{path}.expiry"),
                    format!("expected an RFC 3339 instant, found {text:?}"),
                )
            })?),
        };
        let missing = |field: &str| {
            check.fail(
                format!("{path}.{field}"),
                format!("required for a {:?}", spec.kind),
            )
        };
        let unexpected = |field: &str| {
            check.fail(
                format!("{path}.{field}"),
                format!("not allowed for a {:?}", spec.kind),
            )
        };
        match spec.kind {
            InstrumentKind::Perpetual => {
                if spec.expiry.is_some() {
                    return Err(unexpected("expiry"));
                }
                if spec.strike.is_some() {
                    return Err(unexpected("strike"));
                }
                Ok(Terms::Perpetual)
            }
            InstrumentKind::Future => {
                if spec.strike.is_some() {
                    return Err(unexpected("strike"));
                }
                Ok(Terms::Future {
                    expiry: expiry.ok_or_else(|| missing("expiry"))?,
                })
            }
            InstrumentKind::Option => {
                let strike = spec.strike.ok_or_else(|| missing("strike"))?;
                Ok(Terms::Option {
                    expiry: expiry.ok_or_else(|| missing("expiry"))?,
                    strike: Price::try_from(strike)
                        .map_err(|problem| check.fail(format!("{path}.strike"), problem))?,
                    right: spec.right.ok_or_else(|| missing("right"))?,
                })
            }
        }
    }

    fn check_rule_fits(
        check: &Checker<'_>,
        path: &str,
        instrument: &Instrument,
    ) -> Result<(), InputError> {
        let is_option_rule = matches!(*instrument.margin, MarginRule::DeribitOption { .. });
        let is_option = instrument.terms.kind() == InstrumentKind::Option;
        if is_option_rule != is_option {
            return Err(check.fail(
                format!("{path}.margin"),
                "options need a deribit_option rule, and only options may use one",
            ));
        }
        Ok(())
    }

    /// Resolves an instrument name: a venue-listed instrument, or a Deribit-style name matched
    /// against the venue's series.
    ///
    /// # Errors
    /// A message when the venue does not list the instrument or the name is malformed.
    pub fn instrument(&self, name: &str) -> Result<Arc<Instrument>, String> {
        if let Some(instrument) = self.instruments.get(name) {
            return Ok(Arc::clone(instrument));
        }
        let parsed = parse_deribit_name(name, self.expiry_time_utc)
            .map_err(|error| {
                format!(
                    "unknown instrument {name:?}{}: {error}",
                    self.instrument_suggestion(name)
                )
            })?
            .ok_or_else(|| {
                format!(
                    "unknown instrument {name:?}{}: the venue does not list it",
                    self.instrument_suggestion(name)
                )
            })?;
        let kind = parsed.terms.kind();
        let series = self
            .series
            .iter()
            .find(|s| s.kind == kind && s.underlying == parsed.underlying && s.settlement == parsed.settlement)
            .ok_or_else(|| {
                format!(
                    "unknown instrument {name:?}{}: the venue lists no {kind:?} series on {} settled in {}",
                    self.instrument_suggestion(name),
                    parsed.underlying,
                    parsed.settlement
                )
            })?;
        Ok(Arc::new(Instrument {
            name: name.to_owned(),
            terms: parsed.terms,
            style: series.style,
            underlying: series.underlying.clone(),
            settlement: series.settlement.clone(),
            contract_size: series.contract_size,
            size_step: series.size_step,
            margin: Arc::clone(&series.margin),
            default_leverage: series.default_leverage,
            tick_size: None,
        }))
    }

    /// ` (did you mean `X`?)` for an instrument name the venue does not know: the closest of
    /// the listed instruments and of the perpetuals its series name (a misspelt dated name
    /// is refused by its date or strike, which the message then names).
    fn instrument_suggestion(&self, name: &str) -> String {
        let perpetuals: Vec<String> = self
            .series
            .iter()
            .filter(|series| series.kind == InstrumentKind::Perpetual)
            .map(|series| {
                if series.settlement == series.underlying {
                    format!("{}-PERPETUAL", series.underlying)
                } else {
                    format!("{}_{}-PERPETUAL", series.underlying, series.settlement)
                }
            })
            .collect();
        crate::names::did_you_mean(
            name,
            self.instruments
                .keys()
                .map(String::as_str)
                .chain(perpetuals.iter().map(String::as_str)),
        )
    }

    /// Instruments listed explicitly in the venue file, in file order.
    pub fn listed_instruments(&self) -> impl Iterator<Item = &Arc<Instrument>> {
        self.instruments.values()
    }

    /// The series that Deribit-style names resolve against, in file order.
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.series.iter()
    }

    /// Problems of a venue's tables that the reader accepts but that no venue publishes, each
    /// with the key it concerns (`margin_rules.NAME.tiers[i].mmr`) and what is wrong: a tiered
    /// rule whose maintenance rate falls or whose maximum leverage rises from one tier to the
    /// next (a larger position would need less), and a collateral schedule whose ratio rises with
    /// value. `solvent venue check` reports them as errors; an empty list means none.
    #[must_use]
    pub fn table_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (key, rule) in &self.rules {
            let Some((tiers, _, _)) = rule.tiers() else {
                continue;
            };
            for (index, pair) in tiers.windows(2).enumerate() {
                let (previous, tier) = (&pair[0], &pair[1]);
                let path = format!("margin_rules.{key}.tiers[{}]", index + 1);
                if tier.maintenance_rate < previous.maintenance_rate {
                    problems.push((
                        format!("{path}.mmr"),
                        format!(
                            "the maintenance rate falls: tier {} has {} after tier {}'s {}",
                            index + 2,
                            tier.maintenance_rate.normalize(),
                            index + 1,
                            previous.maintenance_rate.normalize()
                        ),
                    ));
                }
                if tier.max_leverage > previous.max_leverage {
                    problems.push((
                        format!("{path}.max_leverage"),
                        format!(
                            "the maximum leverage rises: tier {} allows {}x after tier {}'s {}x",
                            index + 2,
                            tier.max_leverage.normalize(),
                            index + 1,
                            previous.max_leverage.normalize()
                        ),
                    ));
                }
            }
        }
        for (symbol, schedule) in &self.collateral {
            for (index, pair) in schedule.tiers.windows(2).enumerate() {
                if pair[1].ratio > pair[0].ratio {
                    problems.push((
                        format!("collateral.{symbol}.tiers[{}].ratio", index + 1),
                        format!(
                            "the collateral ratio rises: tier {} counts at {} after tier {}'s {}",
                            index + 2,
                            pair[1].ratio.normalize(),
                            index + 1,
                            pair[0].ratio.normalize()
                        ),
                    ));
                }
            }
        }
        problems
    }

    /// The asset named `symbol`.
    ///
    /// # Errors
    /// A message when the venue does not list it.
    pub fn asset(&self, symbol: &str) -> Result<&Asset, String> {
        self.assets.get(symbol).ok_or_else(|| {
            format!(
                "unknown asset {symbol:?}{}: the venue does not list it",
                crate::names::did_you_mean(symbol, self.assets.keys().map(String::as_str))
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const MINIMAL: &str = r#"
[venue]
name = "test"
settlement_asset = "USDT"

[assets.USDT]
precision = 6
usd_peg = "1"
cash_like = true

[assets.BTC]
precision = 8

[collateral.BTC]
tiers = [{ up_to_usd = "100000000", ratio = "1" }, { up_to_usd = "120000000", ratio = "0.975" }]

[margin_rules.ladder]
kind = "tiered"
tiers = [
  { up_to = "2000000", max_leverage = 100, mmr = "0.005" },
  { up_to = "2600000", max_leverage = 90, mmr = "0.0056", deduction = "1200" },
  { up_to = "3200000", max_leverage = 80, mmr = "0.0063", deduction = "3020" },
]

[margin_rules.options]
kind = "deribit_option"
initial_base = "0.15"
initial_floor = "0.10"
maintenance = "0.075"

[instruments.BTCUSDT]
kind = "perpetual"
style = "linear"
underlying = "BTC"
settlement = "USDT"
contract_size = "1"
size_step = "0.001"
margin = "ladder"
default_leverage = 10

[[series]]
kind = "option"
underlying = "BTC"
settlement = "BTC"
style = "inverse"
contract_size = "1"
size_step = "0.1"
margin = "options"
"#;

    #[test]
    fn deductions_follow_the_published_bybit_ladder() {
        let venue = Venue::from_toml("v.toml", MINIMAL).unwrap();
        let MarginRule::Tiered { tiers, .. } = venue.rules["ladder"].as_ref() else {
            panic!("tiered rule expected");
        };
        // d_2 = 0 + 2,000,000 * (0.56% - 0.50%) = 1,200; d_3 = 1,200 + 2,600,000 * (0.63% - 0.56%) = 3,020.
        let deductions: Vec<Decimal> = tiers.iter().map(|t| t.deduction).collect();
        assert_eq!(deductions, vec![dec!(0), dec!(1200), dec!(3020)]);
    }

    #[test]
    fn the_fee_to_close_rate_reads_and_defaults_to_none() {
        assert_eq!(
            Venue::from_toml("v.toml", MINIMAL)
                .unwrap()
                .liquidation_fee_rate,
            Decimal::ZERO
        );
        let text = MINIMAL.replace(
            "settlement_asset = \"USDT\"\n",
            "settlement_asset = \"USDT\"\nliquidation_fee_rate = \"0.0005\"\n",
        );
        let venue = Venue::from_toml("v.toml", &text).unwrap();
        assert_eq!(venue.liquidation_fee_rate, dec!(0.0005));
    }

    #[test]
    fn a_negative_or_whole_fee_to_close_rate_is_refused_by_key() {
        for (rate, problem) in [
            ("-0.0005", "must not be negative, found -0.0005"),
            ("1", "must be below 1, found 1"),
            ("1.5", "must be at most 1, found 1.5"),
        ] {
            let text = MINIMAL.replace(
                "settlement_asset = \"USDT\"\n",
                &format!("settlement_asset = \"USDT\"\nliquidation_fee_rate = \"{rate}\"\n"),
            );
            let error = Venue::from_toml("v.toml", &text).unwrap_err();
            assert_eq!(error.path, "venue.liquidation_fee_rate");
            assert_eq!(error.problem, problem);
        }
    }

    #[test]
    fn tiers_in_contracts_with_a_whole_position_rate_read_as_their_own_rule() {
        let okx = MINIMAL.replace(
            "kind = \"tiered\"\n",
            "kind = \"tiered\"\ntier_unit = \"contracts\"\nrate_applies_to = \"whole_position\"\n",
        );
        // The published deductions of the value ladder mean nothing on a whole-position rate:
        // refused by key.
        let error = Venue::from_toml("v.toml", &okx).unwrap_err();
        assert_eq!(error.path, "margin_rules.ladder.tiers[1].deduction");
        assert!(error.problem.contains("whole_position"), "{error}");
        let okx = okx
            .replace(", deduction = \"1200\"", "")
            .replace(", deduction = \"3020\"", "");
        let venue = Venue::from_toml("v.toml", &okx).unwrap();
        let rule = venue.rules["ladder"].as_ref();
        assert!(matches!(rule, MarginRule::TieredBy { .. }), "{rule:?}");
        let (tiers, unit, rates) = rule.tiers().unwrap();
        assert_eq!(unit, TierUnit::Contracts);
        assert_eq!(rates, TierRates::WholePosition);
        // No deduction: each tier's rate applies to the whole position.
        assert!(tiers.iter().all(|tier| tier.deduction.is_zero()));
        assert_eq!(tiers[1].floor, dec!(2000000));
        // Without the keys the rule is the plain tiered one, as before them.
        let plain = Venue::from_toml("v.toml", MINIMAL).unwrap();
        assert!(matches!(
            plain.rules["ladder"].as_ref(),
            MarginRule::Tiered { .. }
        ));
        // An unknown unit is refused by key; the keys belong to tiered rules only.
        let error = Venue::from_toml(
            "v.toml",
            &MINIMAL.replace(
                "kind = \"tiered\"\n",
                "kind = \"tiered\"\ntier_unit = \"lots\"\n",
            ),
        )
        .unwrap_err();
        assert!(error.path.contains("tier_unit"), "{error}");
        let error = Venue::from_toml(
            "v.toml",
            &MINIMAL.replace(
                "maintenance = \"0.075\"\n",
                "maintenance = \"0.075\"\ntier_unit = \"contracts\"\n",
            ),
        )
        .unwrap_err();
        assert_eq!(error.path, "margin_rules.options.tier_unit");
    }

    #[test]
    fn a_default_leverage_above_the_first_tier_is_refused_by_key() {
        let text = MINIMAL.replace("default_leverage = 10", "default_leverage = 125");
        let error = Venue::from_toml("v.toml", &text).unwrap_err();
        assert_eq!(error.path, "instruments.BTCUSDT.default_leverage");
        assert_eq!(
            error.problem,
            "default leverage 125 is above the 100x maximum of tier 1 of margin rule \"ladder\""
        );
    }

    #[test]
    fn a_tick_size_reads_and_one_not_positive_is_refused_by_key() {
        let venue = Venue::from_toml(
            "v.toml",
            &MINIMAL.replace(
                "default_leverage = 10",
                "default_leverage = 10\ntick_size = \"0.1\"",
            ),
        )
        .unwrap();
        assert_eq!(
            venue.instrument("BTCUSDT").unwrap().tick_size,
            Some(Decimal::new(1, 1))
        );
        assert_eq!(
            Venue::from_toml("v.toml", MINIMAL)
                .unwrap()
                .instrument("BTCUSDT")
                .unwrap()
                .tick_size,
            None
        );
        for tick in ["\"0\"", "\"-0.5\""] {
            let text = MINIMAL.replace(
                "default_leverage = 10",
                &format!("default_leverage = 10\ntick_size = {tick}"),
            );
            let error = Venue::from_toml("v.toml", &text).unwrap_err();
            assert_eq!(error.path, "instruments.BTCUSDT.tick_size", "{error}");
        }
    }

    #[test]
    fn a_wrong_published_deduction_is_refused() {
        let text = MINIMAL.replace("deduction = \"3020\"", "deduction = \"3000\"");
        let error = Venue::from_toml("v.toml", &text).unwrap_err();
        assert_eq!(error.path, "margin_rules.ladder.tiers[2].deduction");
        assert!(error.problem.contains("= 3020"), "{error}");
    }

    #[test]
    fn a_tier_that_does_not_start_where_the_previous_ends_is_refused() {
        let text = MINIMAL.replace(
            "{ up_to = \"3200000\", max_leverage = 80",
            "{ from = \"2700000\", up_to = \"3200000\", max_leverage = 80",
        );
        let error = Venue::from_toml("v.toml", &text).unwrap_err();
        assert_eq!(error.path, "margin_rules.ladder.tiers[2].from");
        assert_eq!(
            error.problem,
            "tiers must be contiguous: tier 3 starts at 2700000 but tier 2 ends at 2600000"
        );
        // A floor that matches is accepted and changes nothing.
        let text = MINIMAL.replace(
            "{ up_to = \"3200000\", max_leverage = 80",
            "{ from = \"2600000\", up_to = \"3200000\", max_leverage = 80",
        );
        let venue = Venue::from_toml("v.toml", &text).unwrap();
        assert_eq!(
            venue.rules["ladder"],
            Venue::from_toml("v.toml", MINIMAL).unwrap().rules["ladder"]
        );
    }

    #[test]
    fn falling_rates_rising_leverage_and_rising_ratios_are_named() {
        assert!(
            Venue::from_toml("v.toml", MINIMAL)
                .unwrap()
                .table_problems()
                .is_empty()
        );
        let text = MINIMAL
            .replace(
                "{ up_to = \"2600000\", max_leverage = 90, mmr = \"0.0056\", deduction = \"1200\" }",
                "{ up_to = \"2600000\", max_leverage = 120, mmr = \"0.004\" }",
            )
            .replace(", deduction = \"3020\"", "")
            .replace("ratio = \"1\" }, {", "ratio = \"0.9\" }, {");
        let problems = Venue::from_toml("v.toml", &text).unwrap().table_problems();
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "margin_rules.ladder.tiers[1].mmr",
                "margin_rules.ladder.tiers[1].max_leverage",
                "collateral.BTC.tiers[1].ratio",
            ]
        );
        assert_eq!(
            problems[0].1,
            "the maintenance rate falls: tier 2 has 0.004 after tier 1's 0.005"
        );
        assert_eq!(
            problems[1].1,
            "the maximum leverage rises: tier 2 allows 120x after tier 1's 100x"
        );
    }

    #[test]
    fn floats_unknown_fields_and_unknown_rules_are_named() {
        let float = Venue::from_toml("v.toml", &MINIMAL.replace("mmr = \"0.005\"", "mmr = 0.005"))
            .unwrap_err();
        assert!(
            float.path.contains("margin_rules.ladder.tiers[0].mmr"),
            "{float}"
        );
        assert!(
            float.problem.contains("write decimals as strings"),
            "{float}"
        );

        let unknown = Venue::from_toml(
            "v.toml",
            &MINIMAL.replace("cash_like = true", "cash_like = true\ncolour = 1"),
        )
        .unwrap_err();
        assert!(unknown.path.contains("assets"), "{unknown}");
        assert!(unknown.problem.contains("colour"), "{unknown}");

        let rule = Venue::from_toml(
            "v.toml",
            &MINIMAL.replace("margin = \"ladder\"", "margin = \"nope\""),
        )
        .unwrap_err();
        assert_eq!(rule.path, "instruments.BTCUSDT.margin");
    }

    #[test]
    fn a_rate_step_is_read_checked_and_refused_where_it_means_nothing() {
        let rule = "\n[margin_rules.oi]\nkind = \"open_interest\"\ninitial_base = \"0.2\"\nmaintenance_fraction = \"0.5\"\nopen_interest_lower_usd = \"1000000\"\nopen_interest_upper_usd = \"2000000\"\nrate_step = \"STEP\"\n";
        let with_step = |step: &str| format!("{MINIMAL}{}", rule.replace("STEP", step));
        // dYdX's one ppm is kept as written.
        let venue = Venue::from_toml("v.toml", &with_step("0.000001")).unwrap();
        let MarginRule::OpenInterest { rate_step, .. } = venue.rules["oi"].as_ref() else {
            panic!("open_interest rule expected");
        };
        assert_eq!(*rate_step, Some(dec!(0.000001)));
        // A step must be positive and at most 1; the error names the field.
        for bad in ["0", "-0.0001", "1.5"] {
            let error = Venue::from_toml("v.toml", &with_step(bad)).unwrap_err();
            assert_eq!(error.path, "margin_rules.oi.rate_step", "{bad}: {error}");
        }
        // A tiered rule has no fixed-point step: the field is refused by name.
        let tiered = MINIMAL.replace(
            "kind = \"tiered\"\n",
            "kind = \"tiered\"\nrate_step = \"0.0001\"\n",
        );
        let error = Venue::from_toml("v.toml", &tiered).unwrap_err();
        assert_eq!(error.path, "margin_rules.ladder.rate_step");
        assert!(error.problem.contains("not a field"), "{error}");
    }

    #[test]
    fn deribit_names_resolve_through_series() {
        let venue = Venue::from_toml("v.toml", MINIMAL).unwrap();
        let option = venue.instrument("BTC-27DEC26-70000-C").unwrap();
        assert_eq!(option.settlement, "BTC");
        assert_eq!(option.style, Style::Inverse);
        assert!(
            venue
                .instrument("ETH-27DEC26-70000-C")
                .unwrap_err()
                .contains("no Option series on ETH")
        );
        assert!(
            venue
                .instrument("DOGEUSDT")
                .unwrap_err()
                .contains("does not list it")
        );
        assert_eq!(
            venue.instrument("BTCUSDT").unwrap().default_leverage,
            Some(dec!(10))
        );
    }

    #[test]
    fn sizes_are_checked_against_the_step() {
        let venue = Venue::from_toml("v.toml", MINIMAL).unwrap();
        let perp = venue.instrument("BTCUSDT").unwrap();
        assert!(perp.check_size(dec!(1.234)).is_ok());
        assert!(perp.check_size(dec!(1.2340)).is_ok());
        assert!(
            perp.check_size(dec!(1.2345))
                .unwrap_err()
                .contains("more decimals")
        );
    }
}
