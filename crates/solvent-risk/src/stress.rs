//! Stress tests (DESIGN.md 8.4): the account revalued and re-margined under named shocks of
//! underlying prices and implied volatilities, and reverse stress: the smallest move that takes
//! health to 1.
//!
//! A shock is applied to the market, not to the figures: index prices of the shocked underlyings
//! (and of every asset they price) move, perpetual and future marks move with them, option marks
//! are repriced by Black-76 at the moved forward with their implied volatility scaled by the
//! volatility change, and the whole report (equity, margin in the account's own mode) is computed
//! again. Every figure of a stressed account is therefore one the venue would compute at those
//! prices.

use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::Serialize;
use solvent_core::instrument::{Style, Terms};
use solvent_core::market::Market;
use solvent_core::money::{Amount, Price};
use solvent_core::portfolio::Portfolio;
use solvent_core::shock::Shock;
use solvent_pricing::black76::Black76;
use solvent_pricing::implied::implied_volatility;

use crate::account::{Detail, build_report};
use crate::error::RiskError;
use crate::report::{AccountState, MarginReport};
use crate::valuation::{MarketView, option_type};

/// The account under one shock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StressRow {
    /// The shock's name.
    pub name: String,
    /// Price moves applied (relative).
    pub price_moves: Vec<(String, f64)>,
    /// Volatility changes applied (relative).
    pub vol_changes: Vec<(String, f64)>,
    /// Change of equity.
    pub pnl: Amount,
    /// Equity after the shock.
    pub equity: Amount,
    /// Initial margin after the shock.
    pub initial_margin: Amount,
    /// Maintenance margin after the shock.
    pub maintenance_margin: Amount,
    /// Health after the shock.
    pub health: Option<f64>,
    /// State after the shock.
    pub state: AccountState,
    /// Whether the account's cross pool would be liquidated.
    pub liquidates: bool,
    /// Isolated positions that would be liquidated (their own health at or below 1).
    pub isolated_liquidations: Vec<String>,
}

fn f64_of(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

fn price(value: f64, what: &str) -> Result<Price, RiskError> {
    Decimal::from_f64(value)
        .and_then(|decimal| Price::new_checked(decimal).ok())
        .ok_or_else(|| RiskError::Unsupported {
            path: "shock".to_owned(),
            problem: format!("{what} would be {value}, outside the prices Solvent accepts"),
        })
}

/// The market after `shock`.
///
/// # Errors
/// [`RiskError`] when an option's mark has no implied volatility or a price leaves the accepted
/// range.
pub fn shocked_market(view: &MarketView<'_>, shock: &Shock) -> Result<Market, RiskError> {
    let market = view.market();
    let venue = view.venue();
    let mut shocked = market.clone();
    for (name, index) in &mut shocked.index {
        if let Some(price_move) = shock.price_moves.get(name) {
            *index = price(
                f64_of(index.value()) * (1.0 + price_move),
                &format!("index {name}"),
            )?;
        }
    }
    for (underlying, smiles) in &mut shocked.vol {
        if let Some(change) = shock.vol_changes.get(underlying) {
            for smile in smiles.values_mut() {
                for vol in &mut smile.vols {
                    *vol *= 1.0 + change;
                }
            }
        }
    }
    for (name, mark) in &mut shocked.mark {
        // Marks of instruments the venue cannot resolve are left as they are: nothing uses them.
        let Ok(instrument) = venue.instrument(name) else {
            continue;
        };
        let price_move = shock
            .price_moves
            .get(&instrument.underlying)
            .copied()
            .unwrap_or(0.0);
        let vol_change = shock
            .vol_changes
            .get(&instrument.underlying)
            .copied()
            .unwrap_or(0.0);
        if price_move == 0.0 && vol_change == 0.0 {
            continue;
        }
        match &instrument.terms {
            Terms::Perpetual | Terms::Future { .. } => {
                *mark = price(
                    f64_of(mark.value()) * (1.0 + price_move),
                    &format!("mark {name}"),
                )?;
            }
            Terms::Option {
                expiry,
                strike,
                right,
            } => {
                let repriced = reprice_option(
                    view,
                    &instrument,
                    *expiry,
                    strike.to_f64(),
                    *right,
                    mark.value(),
                    price_move,
                    vol_change,
                )?;
                // A premium that shrinks to nothing leaves the mark to the model (a price of zero
                // is no valid mark).
                *mark = price(repriced.max(1e-12), &format!("mark {name}"))?;
            }
        }
    }
    Ok(shocked)
}

#[allow(clippy::too_many_arguments)]
fn reprice_option(
    view: &MarketView<'_>,
    instrument: &solvent_core::instrument::Instrument,
    expiry: Timestamp,
    strike: f64,
    right: solvent_core::instrument::OptionRight,
    mark: Decimal,
    price_move: f64,
    vol_change: f64,
) -> Result<f64, RiskError> {
    let spot = f64_of(view.index(
        &instrument.underlying,
        &format!("shocking {}", instrument.name),
    )?);
    let time = view.years_to(expiry).max(0.0);
    let rate = view.market().rate;
    let forward = spot * (rate * time).exp();
    let discount = (-rate * time).exp();
    let kind = option_type(right);
    let to_usd = |premium: f64, underlying: f64| match instrument.style {
        Style::Linear => premium,
        Style::Inverse => premium * underlying,
    };
    let moved_spot = spot * (1.0 + price_move);
    if time <= 0.0 {
        let intrinsic = kind.intrinsic(forward * (1.0 + price_move), strike);
        return Ok(match instrument.style {
            Style::Linear => intrinsic,
            Style::Inverse => intrinsic / moved_spot,
        });
    }
    let volatility = implied_volatility(
        to_usd(f64_of(mark), spot),
        forward,
        strike,
        time,
        discount,
        kind,
    )
    .map_err(|error| RiskError::Pricing {
        path: format!("mark.{}", instrument.name),
        problem: format!("no implied volatility to reprice it under the shock: {error}"),
    })?;
    let usd = Black76::new_checked(
        forward * (1.0 + price_move),
        strike,
        time,
        volatility * (1.0 + vol_change),
        discount,
    )
    .map(|model| model.price(kind))
    .map_err(|error| RiskError::Pricing {
        path: format!("mark.{}", instrument.name),
        problem: error.to_string(),
    })?;
    Ok(match instrument.style {
        Style::Linear => usd,
        Style::Inverse => usd / moved_spot,
    })
}

/// The report of `portfolio` under `shock`, without liquidation prices.
///
/// # Errors
/// As [`shocked_market`] and the report.
pub fn shocked_report(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    shock: &Shock,
) -> Result<MarginReport, RiskError> {
    let market = shocked_market(view, shock)?;
    let shocked_view = MarketView::new(view.venue(), &market)?.with_history(view.history());
    build_report(portfolio, &shocked_view, Detail::Figures)
}

/// Every shock's row, against the unshocked report `base`.
///
/// # Errors
/// As [`shocked_report`].
pub fn run(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    base: &MarginReport,
    shocks: &[Shock],
) -> Result<Vec<StressRow>, RiskError> {
    shocks
        .iter()
        .map(|shock| {
            let report = shocked_report(portfolio, view, shock)?;
            Ok(StressRow {
                name: shock.name.clone(),
                price_moves: shock
                    .price_moves
                    .iter()
                    .map(|(u, m)| (u.clone(), *m))
                    .collect(),
                vol_changes: shock
                    .vol_changes
                    .iter()
                    .map(|(u, m)| (u.clone(), *m))
                    .collect(),
                pnl: Amount(report.equity.value() - base.equity.value()),
                liquidates: report.state >= AccountState::Liquidating,
                isolated_liquidations: report
                    .positions
                    .iter()
                    .filter(|p| p.isolated && p.isolated_health.is_some_and(|health| health <= 1.0))
                    .map(|p| p.instrument.to_string())
                    .collect(),
                equity: report.equity,
                initial_margin: report.initial_margin,
                maintenance_margin: report.maintenance_margin,
                health: report.health,
                state: report.state,
            })
        })
        .collect()
}

/// The underlyings an account is exposed to: those of its positions and of its collateral
/// (stablecoins excluded: an asset with a USD peg is not shocked).
#[must_use]
pub fn underlyings(portfolio: &Portfolio) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    };
    for position in &portfolio.positions {
        add(&position.instrument.underlying);
    }
    for balance in &portfolio.balances {
        if balance.asset.usd_peg.is_none() {
            add(&balance.asset.index);
        }
    }
    names
}

/// Joint moves of all the account's underlyings together, from -50% to +50%.
#[must_use]
pub fn grid(portfolio: &Portfolio) -> Vec<Shock> {
    let names = underlyings(portfolio);
    [
        -0.5, -0.4, -0.3, -0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
    ]
    .iter()
    .map(|m| Shock::joint(format!("all {:+}%", m * 100.0), &names, *m))
    .collect()
}

/// The smallest moves, down and up, of a set of underlyings moving together, at which health
/// reaches 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReverseStress {
    /// The underlyings moved (together).
    pub underlyings: Vec<String>,
    /// Smallest fall (negative) that takes health to 1, if any down to -99%.
    pub down: Option<f64>,
    /// Smallest rise that takes health to 1, if any up to +1000%.
    pub up: Option<f64>,
}

/// Steps of the outward search before bisection; bisection steps.
const SEARCH: [f64; 14] = [
    0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 0.99, 1.0,
];
const BISECTION_STEPS: usize = 40;

/// Health of the account when `names` move by `price_move` (infinite without a requirement).
fn health_at(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    names: &[String],
    price_move: f64,
) -> Result<f64, RiskError> {
    let report = shocked_report(portfolio, view, &Shock::joint("reverse", names, price_move))?;
    Ok(
        match (report.health, report.equity.value() <= Decimal::ZERO) {
            (_, true) => 0.0,
            (Some(health), false) => health,
            (None, false) => f64::INFINITY,
        },
    )
}

/// The smallest move in the direction of `sign` (steps up to `scale`) of `names` together at which
/// health reaches 1, to bisection precision; `None` if none within the search.
///
/// # Errors
/// As [`shocked_report`].
pub fn search_move(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    names: &[String],
    sign: f64,
    scale: f64,
) -> Result<Option<f64>, RiskError> {
    let mut safe = 0.0;
    for step in SEARCH {
        let candidate = sign * step * scale;
        if sign < 0.0 && candidate <= -0.99 {
            break;
        }
        if health_at(portfolio, view, names, candidate)? <= 1.0 {
            let (mut low, mut high) = (safe, candidate);
            for _ in 0..BISECTION_STEPS {
                let middle = 0.5 * (low + high);
                if health_at(portfolio, view, names, middle)? <= 1.0 {
                    high = middle;
                } else {
                    low = middle;
                }
            }
            return Ok(Some(high));
        }
        safe = candidate;
    }
    Ok(None)
}

/// Reverse stress: for each underlying alone, and for all together, the smallest fall and rise
/// that take health to 1 (DESIGN.md 8.4).
///
/// # Errors
/// As [`shocked_report`].
pub fn reverse(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
) -> Result<Vec<ReverseStress>, RiskError> {
    let all = underlyings(portfolio);
    let mut sets: Vec<Vec<String>> = all.iter().map(|name| vec![name.clone()]).collect();
    if all.len() > 1 {
        sets.push(all);
    }
    sets.into_iter()
        .map(|names| {
            if health_at(portfolio, view, &names, 0.0)? <= 1.0 {
                return Ok(ReverseStress {
                    underlyings: names,
                    down: Some(0.0),
                    up: Some(0.0),
                });
            }
            Ok(ReverseStress {
                down: search_move(portfolio, view, &names, -1.0, 1.0)?,
                up: search_move(portfolio, view, &names, 1.0, 10.0)?,
                underlyings: names,
            })
        })
        .collect()
}
