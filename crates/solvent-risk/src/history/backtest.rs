//! Backtesting a VaR model: Kupiec's proportion-of-failures test and the exception count of a
//! fixed portfolio over the history.

use super::*;

/// Kupiec's proportion-of-failures test of a VaR model.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct KupiecResult {
    /// Days the loss exceeded VaR.
    pub exceptions: usize,
    /// Days observed.
    pub observations: usize,
    /// Exceptions expected under the model, `observations * (1 - var_level)`.
    pub expected: f64,
    /// The likelihood ratio `LR_POF`, chi-squared with one degree of freedom under the model.
    pub likelihood_ratio: f64,
    /// `P(chi2(1) >= LR_POF)`.
    pub p_value: f64,
    /// Whether the model is rejected at the 5% significance level (`p_value < 0.05`).
    pub reject_at_5pct: bool,
}

/// `x * ln(x / y)` with the limit `0 * ln(0) = 0`.
pub(super) fn x_ln_x_over_y(x: f64, y: f64) -> f64 {
    if x > 0.0 { x * (x / y).ln() } else { 0.0 }
}

/// Kupiec's proportion-of-failures test (P. Kupiec, "Techniques for verifying the accuracy of
/// risk measurement models", Journal of Derivatives 3(2), 1995): with `p = 1 - var_level`,
/// `x` exceptions in `n` days and `x/n` the observed rate,
/// `LR_POF = -2 ln[(1 - p)^(n - x) p^x] + 2 ln[(1 - x/n)^(n - x) (x/n)^x]`,
/// computed as `2 [x ln(x / (n p)) + (n - x) ln((n - x) / (n (1 - p)))]` with `0 ln 0 = 0`, which
/// covers 0 exceptions (`LR = -2 n ln(1 - p)`) and all exceptions (`LR = -2 n ln p`) without NaN.
/// The p-value is the chi-squared(1) survival function (statrs).
///
/// # Errors
/// [`HistoryError::InvalidParameter`] when `observations` is 0, `exceptions > observations`, or
/// `var_level` is not in (0, 1).
pub fn kupiec_pof(
    exceptions: usize,
    observations: usize,
    var_level: f64,
) -> Result<KupiecResult, HistoryError> {
    check_level("var_level", var_level)?;
    if observations == 0 {
        return Err(HistoryError::InvalidParameter {
            name: "observations",
            value: "0".to_owned(),
            requirement: "must be at least 1",
        });
    }
    if exceptions > observations {
        return Err(HistoryError::InvalidParameter {
            name: "exceptions",
            value: exceptions.to_string(),
            requirement: "must not exceed observations",
        });
    }
    let n = observations as f64;
    let x = exceptions as f64;
    let p = 1.0 - var_level;
    let expected = n * p;
    let lr = 2.0 * (x_ln_x_over_y(x, expected) + x_ln_x_over_y(n - x, n - expected));
    // LR is a Kullback-Leibler divergence times 2n, so >= 0; rounding may leave -1e-16.
    let likelihood_ratio = lr.max(0.0);
    let chi2 = ChiSquared::new(1.0).map_err(|e| HistoryError::Statistics(e.to_string()))?;
    let p_value = chi2.sf(likelihood_ratio).clamp(0.0, 1.0);
    Ok(KupiecResult {
        exceptions,
        observations,
        expected,
        likelihood_ratio,
        p_value,
        reject_at_5pct: p_value < 0.05,
    })
}

/// What a VaR backtest runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BacktestParams {
    /// VaR confidence level, e.g. 0.99 (the Basel backtest level).
    pub var_level: f64,
    /// The first day tested is the first with at least this many scenarios (at least 1).
    pub min_scenarios: usize,
}

impl Default for BacktestParams {
    /// 99% one-day VaR from at least 250 scenarios (one trading year, as the Basel Committee's
    /// "Supervisory framework for the use of backtesting", 1996).
    fn default() -> Self {
        Self {
            var_level: 0.99,
            min_scenarios: 250,
        }
    }
}

/// One day of a backtest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BacktestDay {
    /// The day the VaR was computed at (its close).
    pub as_of: Date,
    /// The next day, whose realised P&L is compared.
    pub outcome: Date,
    /// One-day VaR at `as_of` (a loss).
    pub var: f64,
    /// Realised P&L from `as_of` to `outcome`.
    pub realised_pnl: f64,
    /// Whether the realised loss exceeded VaR (`-realised_pnl > var`).
    pub exception: bool,
}

/// The result of a VaR backtest.
#[derive(Clone, Debug, PartialEq)]
pub struct VarBacktest {
    /// One entry per tested day, in date order.
    pub days: Vec<BacktestDay>,
    /// Kupiec's test of the exception count.
    pub kupiec: KupiecResult,
}

/// Backtests one-day filtered-historical VaR of a fixed portfolio over `history`: for each date
/// index `d` with at least `backtest.min_scenarios` scenarios and a next day, VaR is computed
/// from the scenarios as of `d` ([`FilteredHistory::scenarios_as_of`], rolling `params.window`,
/// no look-ahead) and compared with `realised_pnl(d)`, the portfolio's P&L from `dates()[d]` to
/// `dates()[d + 1]`. `scenario_pnl(d, scenario)` is the portfolio's P&L under `scenario` applied
/// to the prices at `dates()[d]`. The exception count is tested with [`kupiec_pof`].
///
/// Only one-day horizons are backtested: with `h > 1` consecutive days' outcomes overlap, and
/// Kupiec's binomial count assumes independent days.
///
/// # Errors
/// Invalid parameters (including `horizon_days != 1`, or a `window` below `min_scenarios`);
/// [`HistoryError::TooShort`] when no day has enough scenarios; [`HistoryError::NotFinite`] when
/// a callback returns a non-finite P&L.
pub fn var_backtest(
    history: &PriceHistory,
    params: &FilteredHistoricalParams,
    backtest: &BacktestParams,
    mut scenario_pnl: impl FnMut(usize, &HistoricalScenario) -> f64,
    mut realised_pnl: impl FnMut(usize) -> f64,
) -> Result<VarBacktest, HistoryError> {
    check_backtest(params, backtest)?;
    let filtered = FilteredHistory::new(history, params)?;
    let first = EWMA_SEED_RETURNS + backtest.min_scenarios;
    let last = history.dates.len() - 1;
    if first >= last {
        return Err(HistoryError::TooShort {
            what: "dates for a backtest (seed + min_scenarios + 1)".to_owned(),
            needed: first + 1,
            available: history.dates.len(),
        });
    }
    let underlyings = history.underlyings.len();
    let mut scenario = HistoricalScenario {
        date: history.dates[0],
        index: 0,
        price_factor: vec![0.0; underlyings],
        vol_factor: vec![None; underlyings],
    };
    let mut pnls = Vec::new();
    let mut days = Vec::with_capacity(last - first);
    for d in first..last {
        pnls.clear();
        for s in filtered.range_as_of(d) {
            filtered.fill(d, s, &mut scenario);
            pnls.push(scenario_pnl(d, &scenario));
        }
        let var = value_at_risk(&pnls, backtest.var_level)?;
        let realised = realised_pnl(d);
        if !realised.is_finite() {
            return Err(HistoryError::NotFinite {
                what: format!("realised P&L as of {}", history.dates[d]),
                value: realised,
            });
        }
        days.push(BacktestDay {
            as_of: history.dates[d],
            outcome: history.dates[d + 1],
            var: var.loss,
            realised_pnl: realised,
            exception: -realised > var.loss,
        });
    }
    let exceptions = days.iter().filter(|day| day.exception).count();
    let kupiec = kupiec_pof(exceptions, days.len(), backtest.var_level)?;
    Ok(VarBacktest { days, kupiec })
}

pub(super) fn check_backtest(
    params: &FilteredHistoricalParams,
    backtest: &BacktestParams,
) -> Result<(), HistoryError> {
    params.validate()?;
    check_level("var_level", backtest.var_level)?;
    if params.horizon_days != 1 {
        return Err(HistoryError::InvalidParameter {
            name: "horizon_days",
            value: params.horizon_days.to_string(),
            requirement: "a backtest compares one-day VaR with the next day's P&L: use 1",
        });
    }
    if backtest.min_scenarios == 0 {
        return Err(HistoryError::InvalidParameter {
            name: "min_scenarios",
            value: "0".to_owned(),
            requirement: "must be at least 1",
        });
    }
    if let Some(window) = params.window
        && window < backtest.min_scenarios
    {
        return Err(HistoryError::InvalidParameter {
            name: "window",
            value: window.to_string(),
            requirement: "must be at least min_scenarios, or no day is ever tested",
        });
    }
    Ok(())
}
