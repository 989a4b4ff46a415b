//! Allocation (DESIGN.md 7): excess, the buffer an account keeps, what it may withdraw, and the
//! collateral to move from the cross pool to isolated positions nearing liquidation.
//!
//! - **Buffer policy**: keep equity at least `k x MM`, or enough to survive an `n`-sigma move
//!   of every underlying over `h` days without reaching MM (computed by re-margining the account
//!   at the moved prices, both directions).
//! - **Withdrawable** `= max(0, min(cash-like collateral, equity - max(IM, buffer)))`.
//! - **Reallocation**: an isolated position whose health is below the trigger receives from the
//!   cross pool (never leaving the pool below `max(IM, buffer)`) what restores the target health.
//!   When the pool cannot save every position, it is shared to maximise the smallest distance to
//!   liquidation measured in daily standard deviations (water-filling): each position's distance
//!   grows linearly with the margin it receives, so the level `L` at which
//!   `sum max(0, (L - d_i) / k_i) = pool` equalises the worst distances.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::Serialize;
use solvent_core::instrument::{Style, Terms};
use solvent_core::money::Amount;
use solvent_core::portfolio::Portfolio;
use solvent_core::rounding;
use solvent_core::shock::Shock;

use crate::error::RiskError;
use crate::report::MarginReport;
use crate::stress::{shocked_report, underlyings};
use crate::valuation::MarketView;

/// How much equity an account keeps beyond its maintenance margin.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BufferPolicy {
    /// No buffer beyond the initial margin.
    None,
    /// Keep equity at least `multiple x MM`.
    MaintenanceMultiple {
        /// The multiple (1.5 keeps 50% above MM).
        multiple: f64,
    },
    /// Keep enough to survive an `sigmas`-standard-deviation move of every underlying over
    /// `horizon_days` days without reaching MM.
    Sigma {
        /// Standard deviations.
        sigmas: f64,
        /// Days.
        horizon_days: f64,
    },
}

impl FromStr for BufferPolicy {
    type Err = String;

    /// `none`, `mm:1.5`, `sigma:3:1` (3 daily standard deviations over 1 day). Each number is
    /// bounded (`MULTIPLE` and `N` in (0, 100], `DAYS` in (0, 365]): a buffer of `mm:1e308` or
    /// `sigma:inf:1` is no policy, and its figures would not be finite.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("expected none, mm:MULTIPLE or sigma:N:DAYS, found {text:?}");
        let parts: Vec<&str> = text.split(':').collect();
        let number = |s: &str, name: &str, high: f64| {
            let value = s.parse::<f64>().map_err(|_| bad())?;
            if value.is_finite() && value > 0.0 && value <= high {
                Ok(value)
            } else {
                Err(format!(
                    "{name} must be above 0 and at most {high}, found {s:?} in {text:?}"
                ))
            }
        };
        match parts.as_slice() {
            ["none"] => Ok(Self::None),
            ["mm", multiple] => Ok(Self::MaintenanceMultiple {
                multiple: number(multiple, "MULTIPLE", MAX_POLICY_MULTIPLE)?,
            }),
            ["sigma", sigmas, days] => Ok(Self::Sigma {
                sigmas: number(sigmas, "N", MAX_POLICY_MULTIPLE)?,
                horizon_days: number(days, "DAYS", MAX_POLICY_DAYS)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for BufferPolicy {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => formatter.write_str("none"),
            Self::MaintenanceMultiple { multiple } => {
                write!(formatter, "equity >= {multiple} x MM")
            }
            Self::Sigma {
                sigmas,
                horizon_days,
            } => {
                write!(
                    formatter,
                    "survive a {sigmas}-sigma move over {horizon_days} day(s) above MM"
                )
            }
        }
    }
}

/// The allocation policy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AllocationPolicy {
    /// Buffer kept in the cross pool.
    pub buffer: BufferPolicy,
    /// Isolated positions below this health receive collateral (1.2).
    pub trigger_health: f64,
    /// ...up to this health (1.5).
    pub target_health: f64,
}

/// Largest health target, buffer multiple or number of standard deviations a policy may name.
pub const MAX_POLICY_MULTIPLE: f64 = 100.0;
/// Longest horizon of a sigma buffer, in days.
pub const MAX_POLICY_DAYS: f64 = 365.0;

/// Why an allocation policy was refused: the field and the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PolicyError {
    /// The policy field (`trigger_health`, `target_health`).
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl AllocationPolicy {
    /// A policy whose healths are finite, above zero, at most [`MAX_POLICY_MULTIPLE`], and
    /// ordered `trigger <= target`.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first field out of bounds (an infinite or NaN target
    /// included).
    pub fn new_checked(
        buffer: BufferPolicy,
        trigger_health: f64,
        target_health: f64,
    ) -> Result<Self, PolicyError> {
        for (field, value) in [
            ("trigger_health", trigger_health),
            ("target_health", target_health),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= MAX_POLICY_MULTIPLE) {
                return Err(PolicyError {
                    field,
                    problem: format!(
                        "must be a finite health above 0 and at most {MAX_POLICY_MULTIPLE}, found {value}"
                    ),
                });
            }
        }
        if target_health < trigger_health {
            return Err(PolicyError {
                field: "target_health",
                problem: format!(
                    "must be at least trigger_health {trigger_health}, found {target_health}"
                ),
            });
        }
        Ok(Self {
            buffer,
            trigger_health,
            target_health,
        })
    }
}

impl Default for AllocationPolicy {
    fn default() -> Self {
        Self {
            buffer: BufferPolicy::None,
            trigger_health: 1.2,
            target_health: 1.5,
        }
    }
}

/// One recommended transfer from the cross pool to an isolated position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Move {
    /// The isolated position.
    pub instrument: String,
    /// Amount in the position's settlement asset.
    pub amount: Amount,
    /// The asset.
    pub asset: String,
    /// Health before and after.
    pub health_before: Option<f64>,
    /// After the move.
    pub health_after: Option<f64>,
    /// Why.
    pub reason: String,
}

/// The allocation of one account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Allocation {
    /// Account.
    pub account: String,
    /// Currency of the amounts.
    pub settlement_asset: String,
    /// Equity of the cross pool.
    pub equity: Amount,
    /// Initial margin.
    pub initial_margin: Amount,
    /// Maintenance margin.
    pub maintenance_margin: Amount,
    /// The policy.
    pub policy: AllocationPolicy,
    /// Equity the buffer policy asks to keep.
    pub buffer: Amount,
    /// How the buffer was found.
    pub buffer_detail: String,
    /// `equity - IM`.
    pub excess: Amount,
    /// `max(0, min(cash-like, equity - max(IM, buffer)))`.
    pub withdrawable: Amount,
    /// What the cross pool can give away: `equity - max(IM, buffer)`, at least zero.
    pub pool: Amount,
    /// Recommended moves.
    pub moves: Vec<Move>,
}

/// The buffer (equity to keep) under `policy`, in the report currency, rounded up, with how it
/// was found.
///
/// # Errors
/// [`RiskError`] when the sigma policy lacks an implied volatility for an underlying.
pub fn buffer(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    report: &MarginReport,
    policy: BufferPolicy,
) -> Result<(Decimal, String), RiskError> {
    let decimals = portfolio.settlement_asset.precision;
    match policy {
        BufferPolicy::None => Ok((Decimal::ZERO, "no buffer".to_owned())),
        BufferPolicy::MaintenanceMultiple { multiple } => {
            let value = report.maintenance_margin.to_f64() * multiple;
            Ok((
                rounding::requirement_from_f64(value, decimals, "buffer")?,
                format!("{multiple} x MM {}", report.maintenance_margin),
            ))
        }
        BufferPolicy::Sigma {
            sigmas,
            horizon_days,
        } => {
            let names = underlyings(portfolio);
            let mut moves = Vec::with_capacity(names.len());
            for name in &names {
                let daily = view.daily_standard_deviation(name).ok_or_else(|| {
                    RiskError::Pricing {
                        path: format!("vol.{name}"),
                        problem: format!(
                            "the {sigmas}-sigma buffer needs an implied volatility smile of {name}"
                        ),
                    }
                })?;
                moves.push((name.clone(), sigmas * daily * horizon_days.sqrt()));
            }
            let mut worst = Decimal::ZERO;
            let mut detail = String::from("no exposure");
            for direction in [-1.0, 1.0] {
                let shock = Shock {
                    name: "buffer".to_owned(),
                    price_moves: moves
                        .iter()
                        .map(|(name, size)| (name.clone(), (direction * size).max(-0.99)))
                        .collect(),
                    vol_changes: indexmap::IndexMap::new(),
                };
                let moved = shocked_report(portfolio, view, &shock)?;
                // Equity needed now so that, after the move, equity still covers MM.
                let needed = moved.maintenance_margin.value()
                    + (report.equity.value() - moved.equity.value());
                if needed > worst {
                    worst = needed;
                    detail = format!(
                        "moves {} leave MM {} and cost {}",
                        moves
                            .iter()
                            .map(|(n, s)| format!("{n} {:+.2}%", direction * s * 100.0))
                            .collect::<Vec<_>>()
                            .join(", "),
                        moved.maintenance_margin,
                        report.equity.value() - moved.equity.value()
                    );
                }
            }
            Ok((rounding::requirement(worst, decimals), detail))
        }
    }
}

/// An isolated position that needs collateral.
struct Need {
    index: usize,
    amount: f64,
    distance: f64,
    slope: f64,
}

/// The allocation of `portfolio` under `policy`.
///
/// # Errors
/// [`RiskError`] from the report or the buffer.
pub fn allocate(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    policy: AllocationPolicy,
) -> Result<Allocation, RiskError> {
    let report = crate::margin_report(portfolio, view)?;
    let decimals = portfolio.settlement_asset.precision;
    let (buffer, buffer_detail) = buffer(portfolio, view, &report, policy.buffer)?;
    let equity = report.equity.value();
    let keep = report.initial_margin.value().max(buffer);
    let free = (equity - keep).max(Decimal::ZERO);
    let cash_like = (report.withdrawable.value().max(Decimal::ZERO)).max(Decimal::ZERO);
    // The report's withdrawable is min(cash-like, equity - IM); the buffer may lower it further.
    let withdrawable = cash_like.min(free);
    let mut needs = Vec::new();
    for (index, (position, line)) in portfolio
        .positions
        .iter()
        .zip(&report.positions)
        .enumerate()
    {
        let (Some(health), Some(isolated_equity)) = (line.isolated_health, line.isolated_equity)
        else {
            continue;
        };
        if health >= policy.trigger_health || line.maintenance_margin.is_zero() {
            continue;
        }
        let needed =
            policy.target_health * line.maintenance_margin.to_f64() - isolated_equity.to_f64();
        if needed <= 0.0 {
            continue;
        }
        // Each unit of margin moves a linear position's liquidation price by 1 / (|q| (1 -/+ mmr))
        // (the isolated closed form); in daily standard deviations of the underlying:
        let instrument = &position.instrument;
        let daily = view
            .daily_standard_deviation(&instrument.underlying)
            .unwrap_or(0.0);
        let mark = line.mark_price.to_f64();
        let units = (position.size.abs() * instrument.contract_size)
            .to_f64()
            .unwrap_or(0.0);
        let slope = match (instrument.style, &instrument.terms) {
            (Style::Linear, Terms::Perpetual | Terms::Future { .. })
                if daily > 0.0 && mark > 0.0 && units > 0.0 =>
            {
                1.0 / (units * mark * daily)
            }
            _ => 0.0,
        };
        needs.push(Need {
            index,
            amount: needed,
            distance: line.distance_to_liquidation_sd.unwrap_or(0.0),
            slope,
        });
    }
    let pool = free.to_f64().unwrap_or(0.0);
    let total: f64 = needs.iter().map(|n| n.amount).sum();
    let grants: Vec<f64> = if total <= pool {
        needs.iter().map(|n| n.amount).collect()
    } else if needs.iter().all(|n| n.slope > 0.0) {
        water_fill(&needs, pool)
    } else {
        // Without a volatility to measure distance, share in proportion to need.
        needs
            .iter()
            .map(|n| {
                if total > 0.0 {
                    pool * n.amount / total
                } else {
                    0.0
                }
            })
            .collect()
    };
    let mut moves = Vec::new();
    for (need, grant) in needs.iter().zip(grants) {
        let (Some(position), Some(line)) = (
            portfolio.positions.get(need.index),
            report.positions.get(need.index),
        ) else {
            continue;
        };
        let asset = &position.instrument.settlement;
        let precision = view.venue().asset(asset).map_or(decimals, |a| a.precision);
        // A move needs the asset in the wallet, whatever the pool is worth in other assets.
        let held = portfolio
            .balances
            .iter()
            .find(|b| b.asset.symbol == asset)
            .map_or(Decimal::ZERO, |b| b.amount.value().max(Decimal::ZERO));
        let amount = Decimal::from_f64(grant)
            .map_or(Decimal::ZERO, |g| rounding::credit(g, precision).min(held));
        if amount <= Decimal::ZERO {
            continue;
        }
        let health_after = line
            .isolated_equity
            .map(|e| (e.to_f64() + grant) / line.maintenance_margin.to_f64());
        let reason = if total <= pool {
            format!(
                "isolated health {:.3} below the trigger {}: restores the target {}",
                line.isolated_health.unwrap_or(0.0),
                policy.trigger_health,
                policy.target_health
            )
        } else if need.slope > 0.0 {
            format!(
                "the pool ({pool:.2}) cannot restore every position: shared to lift the nearest to liquidation first (water-filling on daily standard deviations, from {:.2})",
                need.distance
            )
        } else {
            format!(
                "the pool ({pool:.2}) cannot restore every position: shared in proportion to need"
            )
        };
        moves.push(Move {
            instrument: position.instrument.name.clone(),
            amount: Amount(amount),
            asset: asset.clone(),
            health_before: line.isolated_health,
            health_after,
            reason,
        });
    }
    Ok(Allocation {
        account: report.account.to_string(),
        settlement_asset: report.settlement_asset.to_string(),
        equity: report.equity,
        initial_margin: report.initial_margin,
        maintenance_margin: report.maintenance_margin,
        policy,
        buffer: Amount(buffer),
        buffer_detail,
        excess: report.available,
        withdrawable: Amount(rounding::credit(withdrawable, decimals)),
        pool: Amount(rounding::credit(free, decimals)),
        moves,
    })
}

/// Water-filling: the level `L` with `sum min(need_i, max(0, (L - d_i) / k_i)) = pool`, found by
/// bisection; returns each position's grant.
fn water_fill(needs: &[Need], pool: f64) -> Vec<f64> {
    let grant = |level: f64| -> Vec<f64> {
        needs
            .iter()
            .map(|n| ((level - n.distance) / n.slope).clamp(0.0, n.amount))
            .collect()
    };
    let given = |level: f64| grant(level).iter().sum::<f64>();
    let mut low = needs
        .iter()
        .map(|n| n.distance)
        .fold(f64::INFINITY, f64::min);
    let mut high = needs
        .iter()
        .map(|n| n.distance + n.amount * n.slope)
        .fold(f64::NEG_INFINITY, f64::max);
    if !(low.is_finite() && high.is_finite()) {
        return vec![0.0; needs.len()];
    }
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if given(middle) > pool {
            high = middle;
        } else {
            low = middle;
        }
    }
    grant(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!("none".parse::<BufferPolicy>().unwrap(), BufferPolicy::None);
        assert_eq!(
            "mm:1.5".parse::<BufferPolicy>().unwrap(),
            BufferPolicy::MaintenanceMultiple { multiple: 1.5 }
        );
        assert_eq!(
            "sigma:3:2".parse::<BufferPolicy>().unwrap(),
            BufferPolicy::Sigma {
                sigmas: 3.0,
                horizon_days: 2.0
            }
        );
        for bad in ["mm", "mm:-1", "sigma:3", "x:1", "mm:nan"] {
            assert!(bad.parse::<BufferPolicy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn water_filling_lifts_the_nearest_first() {
        // Two positions 1 and 3 SD from liquidation, each SD costs 100 (slope 0.01): a pool of 300
        // lifts the first to 3 (200) then both by 0.5 (50 each): level 3.5.
        let needs = [
            Need {
                index: 0,
                amount: 1000.0,
                distance: 1.0,
                slope: 0.01,
            },
            Need {
                index: 1,
                amount: 1000.0,
                distance: 3.0,
                slope: 0.01,
            },
        ];
        let grants = water_fill(&needs, 300.0);
        assert!(
            (grants[0] - 250.0).abs() < 1e-6 && (grants[1] - 50.0).abs() < 1e-6,
            "{grants:?}"
        );
    }
}
