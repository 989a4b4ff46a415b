//! VaR backtest of an account's linear exposure over a price history: one-day filtered
//! historical VaR against the realised next-day P&L, and Kupiec's proportion-of-failures test
//! (DESIGN.md 6.5; issue: "so a risk team can see the model is calibrated").
//!
//! The account is held fixed in coin: each underlying's exposure is its spot balance plus the
//! coin-equivalent of its perpetuals and futures (`size x contract size`, or `size / entry` for
//! inverse contracts). Options are refused: their P&L would need each past day's volatility
//! surface, which the history does not hold.

use serde::Serialize;
use solvent_core::instrument::Terms;
use solvent_core::portfolio::Portfolio;

use crate::error::RiskError;
use crate::history::{
    BacktestParams, FilteredHistoricalParams, KupiecResult, PriceHistory, var_backtest,
};
use crate::portfolio_margin::exposure_of;

/// The backtest's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BacktestReport {
    /// Coin exposure per underlying that was tested.
    pub exposures: Vec<(String, f64)>,
    /// VaR confidence level.
    pub level: f64,
    /// First and last tested day.
    pub first_day: String,
    /// Last tested day.
    pub last_day: String,
    /// Kupiec's test.
    pub kupiec: KupiecResult,
    /// The days whose loss exceeded VaR: date, VaR, realised P&L (USD).
    pub exceptions: Vec<(String, f64, f64)>,
}

fn history_error(error: crate::history::HistoryError) -> RiskError {
    RiskError::Unsupported {
        path: "--history".to_owned(),
        problem: error.to_string(),
    }
}

/// Backtests the account's one-day VaR at `level` over `history`.
///
/// # Errors
/// [`RiskError::Unsupported`] for options, for an underlying missing from the history, or when the
/// history is too short for `min_scenarios`.
pub fn run(
    portfolio: &Portfolio,
    history: &PriceHistory,
    params: &FilteredHistoricalParams,
    level: f64,
    min_scenarios: usize,
) -> Result<BacktestReport, RiskError> {
    let mut exposures: Vec<(String, f64)> = Vec::new();
    let mut add = |name: &str, units: f64| match exposures.iter_mut().find(|(n, _)| n == name) {
        Some((_, total)) => *total += units,
        None => exposures.push((name.to_owned(), units)),
    };
    for position in &portfolio.positions {
        let instrument = &position.instrument;
        if matches!(instrument.terms, Terms::Option { .. }) {
            return Err(RiskError::Unsupported {
                path: format!("positions: {}", instrument.name),
                problem: "the backtest covers spot, perpetuals and futures: an option's past P&L needs each day's volatility surface".to_owned(),
            });
        }
        add(
            &instrument.underlying,
            exposure_of(
                instrument,
                position.size.value(),
                position.entry_price.value(),
            ),
        );
    }
    for balance in &portfolio.balances {
        if balance.asset.usd_peg.is_none() {
            add(&balance.asset.index, balance.amount.to_f64());
        }
    }
    let columns = exposures
        .iter()
        .map(|(name, units)| history.index_of(name).map(|index| (index, *units)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(history_error)?;
    let scenario_pnl = |day: usize, scenario: &crate::history::HistoricalScenario| -> f64 {
        columns
            .iter()
            .map(|(index, units)| {
                let price = history.closes(*index).get(day).copied().unwrap_or(0.0);
                let factor = scenario.price_factor.get(*index).copied().unwrap_or(1.0);
                units * price * (factor - 1.0)
            })
            .sum()
    };
    let realised_pnl = |day: usize| -> f64 {
        columns
            .iter()
            .map(|(index, units)| {
                let closes = history.closes(*index);
                let today = closes.get(day).copied().unwrap_or(0.0);
                let tomorrow = closes.get(day + 1).copied().unwrap_or(today);
                units * (tomorrow - today)
            })
            .sum()
    };
    let result = var_backtest(
        history,
        params,
        &BacktestParams {
            var_level: level,
            min_scenarios,
        },
        scenario_pnl,
        realised_pnl,
    )
    .map_err(history_error)?;
    let first_day = result
        .days
        .first()
        .map(|d| d.as_of.to_string())
        .unwrap_or_default();
    let last_day = result
        .days
        .last()
        .map(|d| d.as_of.to_string())
        .unwrap_or_default();
    Ok(BacktestReport {
        exposures,
        level,
        first_day,
        last_day,
        exceptions: result
            .days
            .iter()
            .filter(|day| day.exception)
            .map(|day| (day.outcome.to_string(), day.var, day.realised_pnl))
            .collect(),
        kupiec: result.kupiec,
    })
}
