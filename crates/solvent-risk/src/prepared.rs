//! An account prepared for many recomputations: the hot path of monitoring, where only marks
//! change between one computation and the next.
//!
//! [`PreparedAccount::figures`] gives the cross pool's equity, initial and maintenance margin
//! exactly as [`crate::margin_report`] does (same rules, same conversion, same rounding of each
//! part), without explanations, liquidation prices or allocations.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use solvent_core::instrument::{Style, Terms};
use solvent_core::portfolio::{Portfolio, Position};
use solvent_core::rounding;
use solvent_core::venue::{MarginRule, MarginTier};

use crate::account::{Line, lines};
use crate::collateral;
use crate::error::RiskError;
use crate::filtered::{Direction, ERROR_FACTOR, certain_units, power_of_ten};
use crate::standard::{self, Exposure};
use crate::valuation::MarketView;

/// Equity and requirements of a cross pool, in the report asset, rounded as the report rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolFigures {
    /// Collateral value + unrealised P&L + option value.
    pub equity: Decimal,
    /// Initial margin.
    pub initial_margin: Decimal,
    /// Maintenance margin.
    pub maintenance_margin: Decimal,
}

/// USD prices of an amount's asset and of the report asset, for conversion.
#[derive(Clone, Copy, Debug)]
struct Conversion {
    from_usd: Decimal,
    to_usd: Decimal,
}

impl Conversion {
    /// `amount * from / to`, the same arithmetic as [`MarketView::convert`].
    fn apply(self, amount: Decimal) -> Decimal {
        if self.from_usd == self.to_usd || amount.is_zero() {
            amount
        } else {
            amount * self.from_usd / self.to_usd
        }
    }
}

#[derive(Clone, Debug)]
struct PreparedPosition {
    position: Position,
    underlying_usd: Decimal,
    open_interest_usd: Option<Decimal>,
    conversion: Option<Conversion>,
    expired: bool,
    kernel: Option<Kernel>,
}

/// A decimal input as the filter needs it: its value as `f64` and its scale (decimals).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Term {
    value: f64,
    scale: i64,
}

impl Term {
    fn of(decimal: Decimal) -> Option<Self> {
        let normalized = decimal.normalize();
        Some(Self {
            value: normalized.to_f64()?,
            scale: i64::from(normalized.scale()),
        })
    }
}

/// A mark price prepared once per price update and shared by every account holding the
/// instrument: the exact decimal, and its `f64` form for the fast path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreparedMark {
    exact: Decimal,
    term: Option<Term>,
}

impl PreparedMark {
    /// Prepares `mark`.
    #[must_use]
    pub fn new(mark: Decimal) -> Self {
        Self {
            exact: mark,
            term: Term::of(mark),
        }
    }

    /// The exact mark.
    #[must_use]
    pub fn exact(&self) -> Decimal {
        self.exact
    }
}

/// One bracket of a tiered rule in the kernel's form: the same for every position under the rule.
#[derive(Clone, Debug)]
struct KernelTier {
    up_to: f64,
    maintenance_rate: Term,
    deduction: Term,
    /// The bracket's maximum leverage, normalised: the leverage a position naming none, or a
    /// higher one, uses in it.
    max_leverage: Decimal,
    max_leverage_term: Term,
    /// The maximum leverage's decimal mantissa (`12.5` -> 125), a factor of the initial
    /// margin's denominator.
    max_leverage_mantissa: f64,
}

impl KernelTier {
    /// A tiered rule's brackets in the kernel's form; `None` when a figure has no `f64` form.
    fn table(tiers: &[MarginTier]) -> Option<Arc<[Self]>> {
        tiers
            .iter()
            .map(|tier| {
                let max_leverage = tier.max_leverage.normalize();
                Some(Self {
                    up_to: tier
                        .up_to
                        .map_or(Some(f64::INFINITY), |up_to| up_to.to_f64())?,
                    maintenance_rate: Term::of(tier.maintenance_rate)?,
                    deduction: Term::of(tier.deduction)?,
                    max_leverage,
                    max_leverage_term: Term::of(max_leverage)?,
                    max_leverage_mantissa: mantissa(max_leverage)?,
                })
            })
            .collect()
    }
}

/// A normalised decimal's mantissa as `f64` (`12.5` -> 125).
fn mantissa(normalized: Decimal) -> Option<f64> {
    Decimal::from_i128_with_scale(normalized.mantissa(), 0).to_f64()
}

/// The leverage a position names (or its instrument's default), in the kernel's form: in each
/// bracket whose maximum is higher, the position uses it instead of the maximum.
#[derive(Clone, Copy, Debug)]
struct ChosenLeverage {
    decimal: Decimal,
    term: Term,
    mantissa: f64,
}

/// Tiered rules in the kernel's form, converted once per rule and shared by every preparation
/// that reads them. Converting a table of twenty brackets to `f64` costs about as much as the
/// rest of a two-position account's preparation, and a price update can prepare every holder of
/// a contract again (its first mark): without the cache each of them converts the same tables.
/// Keyed by the rule's allocation, which the cache keeps alive, so a key never stands for another
/// rule. Derived from the rules alone: it changes no figure.
#[derive(Clone, Debug, Default)]
pub struct KernelRules {
    tiered: HashMap<usize, CachedTable>,
}

/// How many rules [`KernelRules`] holds before it starts again.
const MAX_CACHED_RULES: usize = 4096;

/// A rule, kept alive while its table is cached, and its table (`None`: a figure has no `f64`
/// form, so its positions take the exact path).
type CachedTable = (Arc<MarginRule>, Option<Arc<[KernelTier]>>);

impl KernelRules {
    /// A cache holding no rule.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Rules cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tiered.len()
    }

    /// Whether no rule is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tiered.is_empty()
    }

    /// Forgets every rule (a venue replaced: its rules are new allocations).
    pub fn clear(&mut self) {
        self.tiered.clear();
    }

    fn tiered(
        &mut self,
        rule: &Arc<MarginRule>,
        tiers: &[MarginTier],
    ) -> Option<Arc<[KernelTier]>> {
        let key = Arc::as_ptr(rule) as usize;
        if self.tiered.len() >= MAX_CACHED_RULES && !self.tiered.contains_key(&key) {
            // A venue holds tens of rules; rules made afresh for each account (instruments
            // resolved on the fly) must not grow the cache without bound.
            self.tiered.clear();
        }
        self.tiered
            .entry(key)
            .or_insert_with(|| (Arc::clone(rule), KernelTier::table(tiers)))
            .1
            .clone()
    }
}

#[derive(Clone, Debug)]
enum KernelRule {
    Tiered {
        tiers: Arc<[KernelTier]>,
        chosen: Option<ChosenLeverage>,
    },
    /// Rates that depend on size only (linear size-linear): fixed for the position.
    FixedRates { initial: Term, maintenance: Term },
    /// Inverse size-linear: the size in coin, hence the rates, move with the mark.
    InverseSizeLinear {
        initial_base: f64,
        maintenance_base: f64,
        rate_per_unit: f64,
        max_rate: f64,
    },
}

/// The `f64` form of a perpetual or future under a tiered or size-linear rule, for the filtered
/// fast path (crate::filtered). Other positions are computed exactly every time.
#[derive(Clone, Debug)]
struct Kernel {
    inverse: bool,
    /// Signed size x contract size (linear), or signed size in USD (inverse).
    units: Term,
    entry: Term,
    /// `from_usd / to_usd` when the settlement asset is not the report asset.
    conversion: Option<f64>,
    rule: KernelRule,
}

/// Counts of units of the report precision that one position adds to each figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Units {
    equity: i64,
    initial: i64,
    maintenance: i64,
}

impl Kernel {
    fn new(
        position: &Position,
        conversion: Option<Conversion>,
        rules: &mut KernelRules,
    ) -> Option<Self> {
        let instrument = &position.instrument;
        if !matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. }) {
            return None;
        }
        let inverse = instrument.style == Style::Inverse;
        let units = if inverse {
            position.size.value()
        } else {
            position.size.value() * instrument.contract_size
        };
        let rule = match instrument.margin.as_ref() {
            MarginRule::Tiered { tiers, .. } => KernelRule::Tiered {
                tiers: rules.tiered(&instrument.margin, tiers)?,
                chosen: match position.leverage.or(instrument.default_leverage) {
                    Some(chosen) => {
                        let decimal = chosen.normalize();
                        Some(ChosenLeverage {
                            decimal,
                            term: Term::of(decimal)?,
                            mantissa: mantissa(decimal)?,
                        })
                    }
                    None => None,
                },
            },
            MarginRule::SizeLinear {
                initial_base,
                maintenance_base,
                rate_per_unit,
                max_rate,
                ..
            } if !inverse => {
                let growth = units.abs() * rate_per_unit;
                KernelRule::FixedRates {
                    initial: Term::of((initial_base + growth).min(*max_rate))?,
                    maintenance: Term::of((maintenance_base + growth).min(*max_rate))?,
                }
            }
            MarginRule::SizeLinear {
                initial_base,
                maintenance_base,
                rate_per_unit,
                max_rate,
                ..
            } => KernelRule::InverseSizeLinear {
                initial_base: initial_base.to_f64()?,
                maintenance_base: maintenance_base.to_f64()?,
                rate_per_unit: rate_per_unit.to_f64()?,
                max_rate: max_rate.to_f64()?,
            },
            _ => return None,
        };
        // Equal prices convert nothing (as `Conversion::apply`), and keep the figure exact.
        let conversion = match conversion {
            Some(c) if c.from_usd != c.to_usd => Some(c.from_usd.to_f64()? / c.to_usd.to_f64()?),
            _ => None,
        };
        Some(Self {
            inverse,
            units: Term::of(units)?,
            entry: Term::of(position.entry_price.value())?,
            conversion,
            rule,
        })
    }

    /// The position's contribution at `mark`, or `None` when the filter cannot decide.
    fn units(&self, mark: &PreparedMark, decimals: i64, scale: f64) -> Option<Units> {
        let mark = mark.term?;
        let price = mark.value;
        let size = self.units.value.abs();
        // Exact denominators (in report units) are known only for linear positions settled in the
        // report asset: products of decimals. Inverse P&L divides by the mark; conversion by an index.
        let exact = !self.inverse && self.conversion.is_none();
        let denominator = |decimal_places: i64| {
            if exact {
                power_of_ten(decimal_places - decimals)
            } else {
                None
            }
        };
        let value_scale = self.units.scale + mark.scale;
        let value = if self.inverse {
            size / price
        } else {
            size * price
        };
        let value_error = ERROR_FACTOR * value;

        let (
            initial,
            initial_magnitude,
            initial_denominator,
            maintenance,
            maintenance_magnitude,
            maintenance_denominator,
        ) = match &self.rule {
            KernelRule::Tiered { tiers, chosen } => {
                let index = tiers
                    .iter()
                    .position(|tier| value <= tier.up_to)
                    .unwrap_or(tiers.len().checked_sub(1)?);
                let tier = tiers.get(index)?;
                // A value within the error of a bracket bound could belong to either bracket.
                if (value - tier.up_to).abs() <= value_error {
                    return None;
                }
                if let Some(below) = index.checked_sub(1).and_then(|i| tiers.get(i))
                    && (value - below.up_to).abs() <= value_error
                {
                    return None;
                }
                let product = value * tier.maintenance_rate.value;
                let maintenance = product - tier.deduction.value;
                // The exact rule's `chosen.min(max_leverage)`.
                let (leverage, leverage_mantissa) = match chosen {
                    Some(chosen) if chosen.decimal < tier.max_leverage => {
                        (chosen.term, chosen.mantissa)
                    }
                    _ => (tier.max_leverage_term, tier.max_leverage_mantissa),
                };
                let initial = value / leverage.value;
                let leverage_places = value_scale - leverage.scale - decimals;
                (
                    initial,
                    initial,
                    if exact {
                        power_of_ten(leverage_places).map(|power| power * leverage_mantissa)
                    } else {
                        None
                    },
                    maintenance,
                    product + tier.deduction.value,
                    denominator(
                        (value_scale + tier.maintenance_rate.scale).max(tier.deduction.scale),
                    ),
                )
            }
            KernelRule::FixedRates {
                initial,
                maintenance,
            } => {
                let initial_margin = value * initial.value;
                let maintenance_margin = value * maintenance.value;
                (
                    initial_margin,
                    initial_margin,
                    denominator(value_scale + initial.scale),
                    maintenance_margin,
                    maintenance_margin,
                    denominator(value_scale + maintenance.scale),
                )
            }
            KernelRule::InverseSizeLinear {
                initial_base,
                maintenance_base,
                rate_per_unit,
                max_rate,
            } => {
                let growth = value * rate_per_unit;
                let initial_rate = (initial_base + growth).min(*max_rate);
                let maintenance_rate = (maintenance_base + growth).min(*max_rate);
                // A rate within the error of its cap could be on either side of it.
                let rate_error = ERROR_FACTOR * (initial_base + growth);
                if (initial_base + growth - max_rate).abs() <= rate_error
                    || (maintenance_base + growth - max_rate).abs() <= rate_error
                {
                    return None;
                }
                (
                    value * initial_rate,
                    value * (initial_base + growth),
                    None,
                    value * maintenance_rate,
                    value * (maintenance_base + growth),
                    None,
                )
            }
        };
        // MM is clamped at zero in the exact rule; near zero, leave it to the exact path.
        if maintenance <= ERROR_FACTOR * maintenance_magnitude {
            return None;
        }
        let entry = self.entry.value;
        let (pnl, pnl_magnitude) = if self.inverse {
            let denominator = entry * price;
            (
                self.units.value * (price - entry) / denominator,
                size * (price + entry) / denominator,
            )
        } else {
            (self.units.value * (price - entry), size * (price + entry))
        };
        let pnl_denominator = denominator(self.units.scale + mark.scale.max(self.entry.scale));
        let ratio = self.conversion.unwrap_or(1.0);
        let round =
            |estimate: f64, magnitude: f64, denominator: Option<f64>, direction: Direction| {
                certain_units(
                    estimate * ratio,
                    ERROR_FACTOR * magnitude * ratio,
                    scale,
                    denominator,
                    direction,
                )
            };
        Some(Units {
            equity: round(pnl, pnl_magnitude, pnl_denominator, Direction::Down)?,
            initial: round(
                initial,
                initial_magnitude,
                initial_denominator,
                Direction::Up,
            )?,
            maintenance: round(
                maintenance,
                maintenance_magnitude,
                maintenance_denominator,
                Direction::Up,
            )?,
        })
    }
}

/// A cross pool ready to be recomputed at new marks.
#[derive(Clone, Debug)]
pub struct PreparedAccount {
    /// Report precision (decimals) and `10^decimals`, for the fast path.
    scale: f64,
    fixed_equity: Decimal,
    fixed_initial: Decimal,
    fixed_maintenance: Decimal,
    decimals: u32,
    positions: Vec<PreparedPosition>,
}

impl PreparedAccount {
    /// Prepares the cross pool of `portfolio` (isolated positions are left out) at the prices of
    /// `view`; collateral and loans are valued once.
    ///
    /// # Errors
    /// [`RiskError`] when a price is missing.
    pub fn new(portfolio: &Portfolio, view: &MarketView<'_>) -> Result<Self, RiskError> {
        Self::with_rules(portfolio, view, &mut KernelRules::new())
    }

    /// [`Self::new`], its tiered rules' `f64` tables taken from (and added to) `rules`, shared
    /// with the other preparations that read them.
    ///
    /// # Errors
    /// [`RiskError`] when a price is missing.
    pub fn with_rules(
        portfolio: &Portfolio,
        view: &MarketView<'_>,
        rules: &mut KernelRules,
    ) -> Result<Self, RiskError> {
        let report_asset = &portfolio.settlement_asset;
        let decimals = report_asset.precision;
        let report_usd = view.asset_usd(report_asset)?;
        let mut fixed_equity = Decimal::ZERO;
        let mut fixed_initial = Decimal::ZERO;
        let mut fixed_maintenance = Decimal::ZERO;
        for balance in &portfolio.balances {
            let usd = view.asset_usd(&balance.asset)?;
            let valued = collateral::value(
                view.venue().collateral.get(balance.asset.symbol.as_str()),
                balance.amount.value(),
                usd,
            );
            fixed_equity += rounding::credit(valued.collateral_value_usd / report_usd, decimals);
            if valued.borrow_maintenance_usd > Decimal::ZERO
                || valued.borrow_initial_usd > Decimal::ZERO
            {
                fixed_initial +=
                    rounding::requirement(valued.borrow_initial_usd / report_usd, decimals);
                fixed_maintenance +=
                    rounding::requirement(valued.borrow_maintenance_usd / report_usd, decimals);
            }
        }
        let positions = lines(portfolio, view)?
            .into_iter()
            .filter(|line| line.position.isolated_margin.is_none())
            .map(|line: Line<'_>| {
                let conversion = if line.settlement.symbol == report_asset.symbol {
                    None
                } else {
                    Some(Conversion {
                        from_usd: view.asset_usd(line.settlement)?,
                        to_usd: report_usd,
                    })
                };
                Ok(PreparedPosition {
                    kernel: if line.expired {
                        None
                    } else {
                        Kernel::new(line.position, conversion, rules)
                    },
                    expired: line.expired,
                    position: line.position.clone(),
                    underlying_usd: line.underlying_usd,
                    open_interest_usd: line.open_interest_usd,
                    conversion,
                })
            })
            .collect::<Result<Vec<_>, RiskError>>()?;
        Ok(Self {
            scale: 10f64.powi(i32::try_from(decimals).unwrap_or(i32::MAX)),
            fixed_equity,
            fixed_initial,
            fixed_maintenance,
            decimals,
            positions,
        })
    }

    /// Number of cross positions, the length [`Self::figures`] expects of `marks`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether the pool has no positions.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The pool's figures at `marks`, one per cross position in portfolio order. Perpetuals and
    /// futures under tiered and size-linear rules take the filtered `f64` path when it can decide
    /// the exact rounded result (almost always); everything else, and every undecided figure, is
    /// computed in `Decimal`. Either way the result equals [`crate::margin_report`]'s.
    ///
    /// # Errors
    /// [`RiskError::Unsupported`] when `marks` has the wrong length; otherwise as
    /// [`standard::requirement`].
    pub fn figures(&self, marks: &[PreparedMark]) -> Result<PoolFigures, RiskError> {
        if marks.len() != self.positions.len() {
            return Err(RiskError::Unsupported {
                path: "marks".to_owned(),
                problem: format!(
                    "expected {} marks, found {}",
                    self.positions.len(),
                    marks.len()
                ),
            });
        }
        let decimals = i64::from(self.decimals);
        let mut fast = Units {
            equity: 0,
            initial: 0,
            maintenance: 0,
        };
        let mut figures = PoolFigures {
            equity: self.fixed_equity,
            initial_margin: self.fixed_initial,
            maintenance_margin: self.fixed_maintenance,
        };
        for (prepared, mark) in self.positions.iter().zip(marks) {
            let filtered = prepared
                .kernel
                .as_ref()
                .and_then(|kernel| kernel.units(mark, decimals, self.scale));
            match filtered.and_then(|units| fast.checked_add(units)) {
                Some(sum) => fast = sum,
                None => self.add_exact(prepared, mark.exact, &mut figures)?,
            }
        }
        figures.equity += Decimal::new(fast.equity, self.decimals);
        figures.initial_margin += Decimal::new(fast.initial, self.decimals);
        figures.maintenance_margin += Decimal::new(fast.maintenance, self.decimals);
        Ok(figures)
    }

    /// The same figures computed in `Decimal` only (the reference the fast path must equal).
    ///
    /// # Errors
    /// As [`Self::figures`].
    pub fn figures_exact(&self, marks: &[PreparedMark]) -> Result<PoolFigures, RiskError> {
        if marks.len() != self.positions.len() {
            return Err(RiskError::Unsupported {
                path: "marks".to_owned(),
                problem: format!(
                    "expected {} marks, found {}",
                    self.positions.len(),
                    marks.len()
                ),
            });
        }
        let mut figures = PoolFigures {
            equity: self.fixed_equity,
            initial_margin: self.fixed_initial,
            maintenance_margin: self.fixed_maintenance,
        };
        for (prepared, mark) in self.positions.iter().zip(marks) {
            self.add_exact(prepared, mark.exact, &mut figures)?;
        }
        Ok(figures)
    }

    fn add_exact(
        &self,
        prepared: &PreparedPosition,
        mark: Decimal,
        figures: &mut PoolFigures,
    ) -> Result<(), RiskError> {
        let position = &prepared.position;
        let requirement = standard::requirement(&Exposure {
            instrument: &position.instrument,
            size: position.size.value(),
            mark,
            underlying_usd: prepared.underlying_usd,
            leverage: position.leverage,
            open_interest_usd: prepared.open_interest_usd,
            expired: prepared.expired,
        })?;
        let contribution = standard::equity_contribution(
            &position.instrument,
            position.size.value(),
            position.entry_price.value(),
            mark,
        );
        let convert = |amount: Decimal| prepared.conversion.map_or(amount, |c| c.apply(amount));
        figures.equity += rounding::credit(convert(contribution), self.decimals);
        figures.initial_margin +=
            rounding::requirement(convert(requirement.initial), self.decimals);
        figures.maintenance_margin +=
            rounding::requirement(convert(requirement.maintenance), self.decimals);
        Ok(())
    }
}

impl Units {
    fn checked_add(self, other: Self) -> Option<Self> {
        Some(Self {
            equity: self.equity.checked_add(other.equity)?,
            initial: self.initial.checked_add(other.initial)?,
            maintenance: self.maintenance.checked_add(other.maintenance)?,
        })
    }
}
