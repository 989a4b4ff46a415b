//! Price history and historical risk: filtered historical simulation, VaR and expected
//! shortfall with tail weights for attribution, Kupiec's backtest and correlation estimates.
//!
//! The flow is one-way and pure (no file reading, no clock; the caller reads the files):
//! 1. [`PriceHistory::from_texts`] parses daily spot closes (Binance kline CSV,
//!    `timestamp,open,high,low,close,volume`, ascending) and, optionally per underlying, Deribit
//!    DVOL (`date,symbol,open,high,low,close`, any order, percent), validates them (header, dates
//!    strictly increasing with no missing day, positive finite closes) and aligns every underlying
//!    on the dates they all share.
//! 2. [`PriceHistory::log_returns`] gives daily log returns; [`ewma_volatility`] the RiskMetrics
//!    EWMA volatility forecast for each of them.
//! 3. [`FilteredHistory`] turns the joint history into [`HistoricalScenario`]s by filtered
//!    historical simulation (Hull and White 1998; DESIGN.md 6.5): scenario `t` moves `S_u` by
//!    `exp(r_t,u * sqrt(h) * sigma_now,u / sigma_t,u)`. Joint dates keep the joint dependence
//!    of the underlyings, so no correlation matrix enters the scenarios.
//! 4. [`value_at_risk`] and [`expected_shortfall`] read a P&L vector; the shortfall carries the
//!    tail scenarios and their weights, so per-position tail losses add up to it.
//! 5. [`kupiec_pof`] tests a VaR model's exception count; [`var_backtest`] produces that count for
//!    a fixed portfolio over the history.
//! 6. [`fit_garch`] fits GARCH(1,1) by maximum likelihood and [`garch_forecasts`] gives its
//!    daily forecasts, refitted as history accrues; [`christoffersen`] tests whether a
//!    backtest's exceptions cluster.
//! 7. [`correlation_matrix`] estimates Pearson or EWMA correlation of daily log returns (for the
//!    cross-underlying offset of DESIGN.md 6.5).
//!
//! Conventions: P&L is positive for a gain; a loss figure (VaR, ES) is positive for a loss and
//! may be negative when even the tail gains. Return `i` is `ln(S[i + 1] / S[i])` and is dated
//! `dates[i + 1]`, the day of the move. Implied volatilities are fractions (DVOL 47.53 -> 0.4753).
//!
//! One concern per file: `load` (parsing and aligning), `ewma`, `filtered` (the scenarios),
//! `tail` (VaR and ES), `backtest`, `correlation`, `error`.

mod backtest;
mod correlation;
mod error;
mod ewma;
mod filtered;
mod garch;
mod independence;
mod load;
mod tail;
pub use self::backtest::{
    BacktestDay, BacktestParams, KupiecResult, VarBacktest, kupiec_pof, var_backtest,
};
pub use self::correlation::{CorrelationMatrix, correlation_matrix};
pub use self::error::HistoryError;
pub use self::ewma::{
    EWMA_SEED_RETURNS, EwmaVolatility, RISKMETRICS_DAILY_LAMBDA, ewma_volatility,
};
pub use self::filtered::{
    FilteredHistoricalParams, FilteredHistory, HistoricalScenario, filtered_historical_scenarios,
};
pub use self::garch::{
    GARCH_MIN_RETURNS, GarchFit, GarchParams, VolForecasts, fit_garch, garch_forecasts,
    garch_log_likelihood, period_variance,
};
pub use self::independence::{ChristoffersenResult, christoffersen};
pub use self::load::{LoadOptions, PriceHistory, SPOT_HEADER, SeriesText, VOL_HEADER};
pub use self::tail::{
    ExpectedShortfall, TailWeight, ValueAtRisk, expected_shortfall, value_at_risk,
};

// Every file of the module reads the others' items and the imports below through `super::*`.
use self::{backtest::*, ewma::*, load::*, tail::*};

use jiff::civil::Date;
use nalgebra::DMatrix;
use statrs::distribution::{ChiSquared, ContinuousCDF};
use thiserror::Error;

#[cfg(test)]
mod tests;
