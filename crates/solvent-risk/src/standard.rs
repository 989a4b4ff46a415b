//! Standard (non-portfolio) margin of one position, as the venues compute it (DESIGN.md 6.1,
//! 6.3, 6.4). Everything here is exact decimal arithmetic in the instrument's settlement
//! currency; rounding to the asset's precision happens once, in the report.

use rust_decimal::{Decimal, MathematicalOps};
use serde::Serialize;
use solvent_core::instrument::{Instrument, OptionRight, Style, Terms};
use solvent_core::money::MAX_AMOUNT;
use solvent_core::venue::{MarginRule, MarginTier, TierUnit};

use crate::error::RiskError;

/// What a margin rule needs to know about one position at one mark.
#[derive(Clone, Copy, Debug)]
pub struct Exposure<'a> {
    /// The instrument.
    pub instrument: &'a Instrument,
    /// Signed size (base units, USD for inverse, contracts for options).
    pub size: Decimal,
    /// Mark price (USD per coin; option premium in the settlement currency).
    pub mark: Decimal,
    /// Underlying index price in USD (`S` of the option rule).
    pub underlying_usd: Decimal,
    /// Leverage chosen for the position, if any.
    pub leverage: Option<Decimal>,
    /// Open interest of the instrument in USD, if the market gives it.
    pub open_interest_usd: Option<Decimal>,
    /// Whether the instrument has expired (it awaits settlement and needs no margin).
    pub expired: bool,
}

/// How a requirement was reached, for the report's explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Basis {
    /// A bracket of a tiered rule.
    Tiered {
        /// 1-based bracket number.
        tier: usize,
        /// Lower bound of the bracket, in `unit`.
        floor: Decimal,
        /// Upper bound (`None`: open-ended).
        up_to: Option<Decimal>,
        /// Maintenance rate of the bracket.
        maintenance_rate: Decimal,
        /// Deduction of the bracket.
        deduction: Decimal,
        /// Leverage applied to initial margin: `min(chosen, bracket maximum)`.
        leverage: Decimal,
        /// Whether the position exceeds the largest bracket (the venue would refuse to grow it).
        exceeds_limit: bool,
        /// The leverage chosen for the position when it is above the bracket's maximum (the
        /// venue would refuse it; initial margin is taken at the bracket's maximum).
        #[serde(skip_serializing_if = "Option::is_none")]
        requested_leverage: Option<Decimal>,
        /// What the bounds count: position value (left out of the JSON) or contracts (OKX).
        #[serde(skip_serializing_if = "is_value")]
        unit: TierUnit,
    },
    /// Rates from size (Deribit size-linear, Drift square root, dYdX open interest).
    Rates {
        /// Initial margin rate applied to position value.
        initial_rate: Decimal,
        /// Maintenance margin rate applied to position value.
        maintenance_rate: Decimal,
    },
    /// Deribit's option formula for a short option.
    ShortOption {
        /// Out-of-the-money amount in USD per unit of underlying.
        out_of_the_money: Decimal,
        /// `max(initial_base - OTM/S, initial_floor)`.
        initial_rate: Decimal,
    },
    /// A long option: no margin beyond the premium already paid.
    LongOption,
    /// An expired future or option awaiting settlement: valued, not margined.
    Expired,
    /// Portfolio margin: the position's share of the account's risk-based requirement.
    PortfolioShare {
        /// The underlying whose scan the position belongs to.
        underlying: String,
        /// That underlying's worst scenario.
        worst_scenario: String,
    },
}

fn is_value(unit: &TierUnit) -> bool {
    *unit == TierUnit::Value
}

/// The standard requirement of one position, in its settlement currency.
#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    /// Initial margin.
    pub initial: Decimal,
    /// Maintenance margin.
    pub maintenance: Decimal,
    /// How it was reached.
    pub basis: Basis,
}

/// Position value in the settlement currency, unsigned: `|size| * contract_size * mark` for
/// linear instruments and options, `|size| / mark` coin for inverse perpetuals and futures.
#[must_use]
pub fn notional(instrument: &Instrument, size: Decimal, mark: Decimal) -> Decimal {
    match (instrument.style, &instrument.terms) {
        (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => size.abs() / mark,
        _ => size.abs() * instrument.contract_size * mark,
    }
}

/// Size in units of the underlying coin, as size-scaled rules measure it.
#[must_use]
pub fn size_in_coin(instrument: &Instrument, size: Decimal, mark: Decimal) -> Decimal {
    match (instrument.style, &instrument.terms) {
        (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => size.abs() / mark,
        _ => size.abs() * instrument.contract_size,
    }
}

/// Size in contracts, as a rule with `tier_unit = "contracts"` counts it (OKX "Max. amount
/// (Cont)"): the size itself for linear instruments and options (counted in contracts of
/// `contract_size` coin), `|size| / contract_size` for inverse perpetuals and futures (size in
/// USD, `contract_size` USD per contract).
#[must_use]
pub fn contracts(instrument: &Instrument, size: Decimal) -> Decimal {
    match (instrument.style, &instrument.terms) {
        (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => {
            size.abs() / instrument.contract_size
        }
        _ => size.abs(),
    }
}

/// Unrealised P&L in the settlement currency (DESIGN.md 6.1): linear
/// `size * contract_size * (mark - entry)`; inverse `size * (1/entry - 1/mark)`, written as
/// `size * (mark - entry) / (entry * mark)` so that only one division rounds.
#[must_use]
pub fn unrealized_pnl(
    instrument: &Instrument,
    size: Decimal,
    entry: Decimal,
    mark: Decimal,
) -> Decimal {
    match (instrument.style, &instrument.terms) {
        (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => {
            size * (mark - entry) / (entry * mark)
        }
        _ => size * instrument.contract_size * (mark - entry),
    }
}

/// What the position adds to equity: unrealised P&L for perpetuals and futures, the signed market
/// value for options (long counts toward equity, short against it; DESIGN.md 6.1).
#[must_use]
pub fn equity_contribution(
    instrument: &Instrument,
    size: Decimal,
    entry: Decimal,
    mark: Decimal,
) -> Decimal {
    match &instrument.terms {
        Terms::Option { .. } => size * instrument.contract_size * mark,
        _ => unrealized_pnl(instrument, size, entry, mark),
    }
}

/// The standard initial and maintenance margin of one position (DESIGN.md 6.3-6.4).
///
/// # Errors
/// [`RiskError`] when the rule needs market data the exposure lacks (open interest) or the rule
/// does not fit the instrument.
pub fn requirement(exposure: &Exposure<'_>) -> Result<Requirement, RiskError> {
    let instrument = exposure.instrument;
    if exposure.expired {
        return Ok(Requirement {
            initial: Decimal::ZERO,
            maintenance: Decimal::ZERO,
            basis: Basis::Expired,
        });
    }
    let value = notional(instrument, exposure.size, exposure.mark);
    let coin_size = size_in_coin(instrument, exposure.size, exposure.mark);
    match instrument.margin.as_ref() {
        MarginRule::Tiered { name, tiers } => tiered(
            tiers,
            Bracketing {
                measure: value,
                unit: TierUnit::Value,
            },
            value,
            exposure.leverage.or(instrument.default_leverage),
        )
        .ok_or_else(|| no_tiers(name)),
        // A rate on the whole position is a deduction of zero in every bracket (the reader
        // sets them so): the same formula serves both.
        MarginRule::TieredBy {
            name, tiers, unit, ..
        } => tiered(
            tiers,
            Bracketing {
                measure: match unit {
                    TierUnit::Value => value,
                    TierUnit::Contracts => contracts(instrument, exposure.size),
                },
                unit: *unit,
            },
            value,
            exposure.leverage.or(instrument.default_leverage),
        )
        .ok_or_else(|| no_tiers(name)),
        MarginRule::SizeLinear {
            initial_base,
            maintenance_base,
            rate_per_unit,
            max_rate,
            ..
        } => {
            // Deribit: "initial margin = 2% + (position size in BTC) * 0.005%", likewise maintenance.
            let growth = coin_size * rate_per_unit;
            let initial_rate = (initial_base + growth).min(*max_rate);
            let maintenance_rate = (maintenance_base + growth).min(*max_rate);
            Ok(rated(value, initial_rate, maintenance_rate))
        }
        MarginRule::SizeSqrt {
            initial_base,
            maintenance_base,
            imf_factor,
            rate_step,
            ..
        } => {
            let rate = |base: Decimal| size_premium_rate(base, *imf_factor, coin_size, *rate_step);
            Ok(rated(value, rate(*initial_base), rate(*maintenance_base)))
        }
        MarginRule::OpenInterest {
            name,
            initial_base,
            maintenance_fraction,
            open_interest_lower_usd,
            open_interest_upper_usd,
            rate_step,
        } => {
            // An upper cap of zero disables the scaling (dYdX's Large-Cap tier): the open
            // interest is then not read, as `GetAdjustedInitialMarginPpm` does not read it.
            let open_interest = match exposure.open_interest_usd {
                Some(open_interest) => open_interest,
                None if open_interest_upper_usd.is_zero() => Decimal::ZERO,
                None => {
                    return Err(RiskError::MissingOpenInterest {
                        instrument: instrument.name.clone(),
                        rule: name.clone(),
                    });
                }
            };
            let initial_rate = open_interest_initial_rate(
                *initial_base,
                *open_interest_lower_usd,
                *open_interest_upper_usd,
                open_interest,
                *rate_step,
            );
            // MMF = base IMF * maintenance fraction: dYdX's `GetMarginRequirementsInQuoteQuantums`
            // takes the maintenance margin from the base IMR (open interest 0), not the scaled one.
            Ok(rated(
                value,
                initial_rate,
                initial_base * maintenance_fraction,
            ))
        }
        MarginRule::DeribitOption {
            initial_base,
            initial_floor,
            maintenance,
            ..
        } => deribit_option(exposure, *initial_base, *initial_floor, *maintenance),
    }
}

fn no_tiers(name: &str) -> RiskError {
    RiskError::Unsupported {
        path: format!("margin_rules.{name}"),
        problem: "a tiered rule needs at least one tier".to_owned(),
    }
}

/// Drift's size-premium margin ratio (`calculate_size_premium_liability_weight`, drift-labs
/// protocol-v2 `math/margin.rs`): `max(base, 0.8 * base + imf * sqrt(size))`, size in coin,
/// floored to `step` when the venue's fixed-point arithmetic does (Drift: 0.0001).
#[must_use]
pub fn size_premium_rate(
    base: Decimal,
    imf_factor: Decimal,
    size_in_coin: Decimal,
    step: Option<Decimal>,
) -> Decimal {
    let root = size_in_coin.sqrt().unwrap_or(Decimal::ZERO);
    let premium = floor_to_step(base * Decimal::new(8, 1) + imf_factor * root, step);
    base.max(premium)
}

/// dYdX v4's open-interest-scaled initial margin fraction (`GetAdjustedInitialMarginPpm`):
/// the base below the lower cap, 1 at and above the upper cap, linear in between, floored to
/// `step` (dYdX: one ppm). Both caps zero disables the scaling.
#[must_use]
pub fn open_interest_initial_rate(
    base: Decimal,
    lower_usd: Decimal,
    upper_usd: Decimal,
    open_interest_usd: Decimal,
    step: Option<Decimal>,
) -> Decimal {
    if upper_usd.is_zero() || open_interest_usd <= lower_usd {
        return base;
    }
    if open_interest_usd >= upper_usd {
        return Decimal::ONE;
    }
    let scale = (open_interest_usd - lower_usd) / (upper_usd - lower_usd);
    (base + floor_to_step(scale * (Decimal::ONE - base), step)).min(Decimal::ONE)
}

fn floor_to_step(value: Decimal, step: Option<Decimal>) -> Decimal {
    match step {
        Some(step) if step > Decimal::ZERO => (value / step).floor() * step,
        _ => value,
    }
}

fn rated(value: Decimal, initial_rate: Decimal, maintenance_rate: Decimal) -> Requirement {
    Requirement {
        initial: value * initial_rate,
        maintenance: value * maintenance_rate,
        basis: Basis::Rates {
            initial_rate: initial_rate.normalize(),
            maintenance_rate: maintenance_rate.normalize(),
        },
    }
}

/// The largest amount a position's figures involve at the given prices: `|size| x contract size x
/// max(price)` (linear instruments and options, whose prices include the underlying's), or
/// `|size| / min(price)` coin (inverse perpetuals and futures). `None` when it exceeds
/// [`MAX_AMOUNT`]: such a position is refused rather than risk an arithmetic overflow.
#[must_use]
pub fn bounded_exposure(
    instrument: &Instrument,
    size: Decimal,
    prices: &[Decimal],
) -> Option<Decimal> {
    let exposure = match (instrument.style, &instrument.terms) {
        (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => {
            let lowest = prices.iter().copied().min()?;
            size.abs().checked_div(lowest)?
        }
        _ => {
            let highest = prices.iter().copied().max()?;
            size.abs()
                .checked_mul(instrument.contract_size)?
                .checked_mul(highest)?
        }
    };
    (exposure <= MAX_AMOUNT).then_some(exposure)
}

/// The bracket a position value falls in: the first whose `up_to` is at least the value; the
/// last when the value exceeds every bracket.
#[must_use]
pub fn bracket(tiers: &[MarginTier], value: Decimal) -> (usize, bool) {
    match tiers
        .iter()
        .position(|tier| tier.up_to.is_none_or(|up_to| value <= up_to))
    {
        Some(index) => (index, false),
        None => (tiers.len().saturating_sub(1), true),
    }
}

/// Where a position stands in a tiered rule: the figure its brackets count.
#[derive(Clone, Copy, Debug)]
struct Bracketing {
    /// Position value, or contracts (`unit`).
    measure: Decimal,
    unit: TierUnit,
}

/// Tiered rule. Binance, Bybit: `MM = value * mmr_n - d_n`; OKX ("Tiered maintenance margin
/// ratio rules"): the bracket by contracts and `MM = face value x contracts x mark x mmr_n`
/// (every deduction 0). Both: `IM = value / min(leverage, max_n)`.
fn tiered(
    tiers: &[MarginTier],
    bracketing: Bracketing,
    value: Decimal,
    chosen_leverage: Option<Decimal>,
) -> Option<Requirement> {
    let (index, exceeds_limit) = bracket(tiers, bracketing.measure);
    let tier = tiers.get(index)?;
    let leverage =
        chosen_leverage.map_or(tier.max_leverage, |chosen| chosen.min(tier.max_leverage));
    let requested_leverage = chosen_leverage.filter(|chosen| *chosen > tier.max_leverage);
    // The deduction keeps MM continuous across brackets; it can never make MM negative because
    // d_n <= floor_n * mmr_n <= value * mmr_n.
    let maintenance = (value * tier.maintenance_rate - tier.deduction).max(Decimal::ZERO);
    Some(Requirement {
        initial: value / leverage,
        maintenance,
        basis: Basis::Tiered {
            tier: index + 1,
            floor: tier.floor,
            up_to: tier.up_to,
            maintenance_rate: tier.maintenance_rate,
            deduction: tier.deduction,
            leverage,
            exceeds_limit,
            requested_leverage,
            unit: bracketing.unit,
        },
    })
}

/// Deribit standard option margin, per contract, with `S` the underlying price and `OTM` the
/// out-of-the-money amount (Deribit "Margin requirements", options):
/// short call `IM = max(0.15 - OTM/S, 0.1) * S + mark`, `MM = 0.075 * S + mark`;
/// short put `IM = max(max(0.15 - OTM/S, 0.1) * S + mark, MM)`,
/// `MM = max(0.075 * S, 0.075 * mark) + mark`; long options need nothing beyond the premium.
/// Inverse options express the same in coin: `S` becomes 1 and the mark is in coin.
fn deribit_option(
    exposure: &Exposure<'_>,
    initial_base: Decimal,
    initial_floor: Decimal,
    maintenance_rate: Decimal,
) -> Result<Requirement, RiskError> {
    let instrument = exposure.instrument;
    let Terms::Option { strike, right, .. } = &instrument.terms else {
        return Err(RiskError::Unsupported {
            path: instrument.name.clone(),
            problem: "the deribit_option rule applies to options only".to_owned(),
        });
    };
    if exposure.size >= Decimal::ZERO {
        return Ok(Requirement {
            initial: Decimal::ZERO,
            maintenance: Decimal::ZERO,
            basis: Basis::LongOption,
        });
    }
    let underlying = exposure.underlying_usd;
    let strike = strike.value();
    let out_of_the_money = match right {
        OptionRight::Call => (strike - underlying).max(Decimal::ZERO),
        OptionRight::Put => (underlying - strike).max(Decimal::ZERO),
    };
    // Underlying price expressed in the settlement currency: S (USD) for linear, 1 coin for inverse.
    let underlying_settle = match instrument.style {
        Style::Linear => underlying,
        Style::Inverse => Decimal::ONE,
    };
    let mark = exposure.mark;
    let initial_rate = (initial_base - out_of_the_money / underlying).max(initial_floor);
    let contracts = exposure.size.abs() * instrument.contract_size;
    let (initial, maintenance) = match right {
        OptionRight::Call => {
            let maintenance = maintenance_rate * underlying_settle + mark;
            (initial_rate * underlying_settle + mark, maintenance)
        }
        OptionRight::Put => {
            let maintenance =
                (maintenance_rate * underlying_settle).max(maintenance_rate * mark) + mark;
            (
                (initial_rate * underlying_settle + mark).max(maintenance),
                maintenance,
            )
        }
    };
    Ok(Requirement {
        initial: initial * contracts,
        maintenance: maintenance * contracts,
        basis: Basis::ShortOption {
            out_of_the_money,
            initial_rate,
        },
    })
}
