//! Margin models measured against history (issue 15 item 2): each day's range, set at the close,
//! against the realised move of the underlying over the margin period that follows.
//!
//! For a position of one coin the requirement is `range x price`, so the range is the margin
//! level and an exceedance is a day whose realised move `|S[t + h] / S[t] - 1|` went beyond it.
//! Coverage is tested with Kupiec's proportion of failures and Christoffersen's independence
//! test; procyclicality is the largest rise of the range within any 30 days (from a trough to a
//! later peak at most 30 days on).

use jiff::civil::Date;
use serde::Serialize;
use solvent_core::vol_scaled::VolScaledRange;

use super::{RangeBound, range_path};
use crate::history::{
    ChristoffersenResult, HistoryError, KupiecResult, PriceHistory, christoffersen, kupiec_pof,
};

/// A margin model of one underlying.
#[derive(Clone, Debug, PartialEq)]
pub enum MarginModel {
    /// The venue's static grid: the same range every day (Deribit BTC: 0.16).
    Static {
        /// The range, a fraction of the price.
        range: f64,
    },
    /// A volatility-scaled range.
    Scaled(VolScaledRange),
}

/// What the backtest measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoverageParams {
    /// Coverage the model claims (0.99: 1% of margin periods may exceed the margin).
    pub level: f64,
    /// Margin period in days: the realised move runs from the close the range is set at to the
    /// close `margin_period_days` later.
    pub margin_period_days: u32,
    /// Window of the procyclicality measure in days (30).
    pub rise_window_days: usize,
    /// First day a range is tested (so models with different warm-ups are compared on the same
    /// days); the first day every model has when absent.
    pub start: Option<Date>,
}

/// One day of the backtest.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CoverageDay {
    /// The close the range was set at.
    pub as_of: Date,
    /// The close the realised move runs to.
    pub outcome: Date,
    /// The range (fraction of the price).
    pub range: f64,
    /// The daily volatility forecast behind it (`None` for the static grid).
    pub sigma_daily: Option<f64>,
    /// What set the range (`None` for the static grid).
    pub bound: Option<RangeBound>,
    /// The realised move `S[outcome] / S[as_of] - 1`.
    pub realised: f64,
    /// `|realised| > range`.
    pub exceeded: bool,
}

/// The largest rise of the range within the window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Procyclicality {
    /// Rise in range points (0.05 = five percentage points of the price).
    pub rise: f64,
    /// The rise as a ratio of the trough (`peak / trough - 1`).
    pub rise_ratio: f64,
    /// The trough's day.
    pub from: Date,
    /// The peak's day.
    pub to: Date,
}

/// One model's backtest on one underlying.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelBacktest {
    /// Every tested day, in date order.
    pub days: Vec<CoverageDay>,
    /// Days whose realised move exceeded the range.
    pub exceedances: usize,
    /// Kupiec's test of the exceedance count at the coverage level (see `subsamples`).
    pub kupiec: KupiecResult,
    /// Christoffersen's independence and conditional-coverage tests (see `subsamples`).
    pub christoffersen: ChristoffersenResult,
    /// The interleaved subsamples of non-overlapping margin periods the tests were run on: 1
    /// for a one-day period. Periods of `h > 1` days set on consecutive days overlap, so their
    /// exceedances come in runs whatever the model, and the tests (which assume independent
    /// trials) would reject too often. The days are split into the `h` sequences of every
    /// `h`-th day (offsets `0..h`), whose periods do not overlap; each test's p-value is
    /// Bonferroni's combination, `min(1, h x the smallest subsample p-value)`, its likelihood
    /// ratio that subsample's; the counts (exceptions, observations, expected, transitions)
    /// are over all days. (Basel's backtests of ten-day VaR take one non-overlapping sequence;
    /// the `h` of them together use every day.)
    pub subsamples: usize,
    /// Mean range over the tested days.
    pub average_range: f64,
    /// Largest range.
    pub max_range: f64,
    /// The largest rise within the window.
    pub procyclicality: Procyclicality,
}

/// Backtests `model` on `underlying` of `history`.
///
/// # Errors
/// An unknown underlying, invalid parameters, too short a history (the forecast's warm-up, or
/// fewer than two tested days), and the forecast's own errors.
pub fn backtest_model(
    history: &PriceHistory,
    underlying: &str,
    model: &MarginModel,
    params: &CoverageParams,
) -> Result<ModelBacktest, HistoryError> {
    check(params)?;
    let u = history.index_of(underlying)?;
    let closes = history.closes(u);
    let dates = history.dates();
    let h = params.margin_period_days as usize;
    // (index of the as_of date, range, sigma, bound)
    let ranges: Vec<(usize, f64, Option<f64>, Option<RangeBound>)> = match model {
        MarginModel::Static { range } => {
            if !(*range > 0.0 && range.is_finite()) {
                return Err(HistoryError::InvalidParameter {
                    name: "static range",
                    value: range.to_string(),
                    requirement: "must be positive and finite",
                });
            }
            (0..dates.len()).map(|d| (d, *range, None, None)).collect()
        }
        MarginModel::Scaled(spec) => {
            let path = range_path(dates, history.log_returns(u), spec)?;
            let first = dates.len() - path.len();
            path.iter()
                .enumerate()
                .map(|(i, day)| (first + i, day.range, Some(day.sigma_daily), Some(day.bound)))
                .collect()
        }
    };
    let days: Vec<CoverageDay> = ranges
        .into_iter()
        .filter(|(d, ..)| d + h < dates.len() && params.start.is_none_or(|s| dates[*d] >= s))
        .map(|(d, range, sigma_daily, bound)| {
            let realised = closes[d + h] / closes[d] - 1.0;
            CoverageDay {
                as_of: dates[d],
                outcome: dates[d + h],
                range,
                sigma_daily,
                bound,
                realised,
                exceeded: realised.abs() > range,
            }
        })
        .collect();
    summarise(days, params, underlying)
}

/// The figures of a backtest from its days (those before `params.start` left out): the
/// exceedances, Kupiec's and Christoffersen's tests, the average and largest range and the
/// largest rise within `params.rise_window_days`.
///
/// # Errors
/// Fewer than two days; a coverage level outside (0, 1).
pub fn summarise(
    days: Vec<CoverageDay>,
    params: &CoverageParams,
    underlying: &str,
) -> Result<ModelBacktest, HistoryError> {
    check(params)?;
    let days: Vec<CoverageDay> = days
        .into_iter()
        .filter(|d| params.start.is_none_or(|s| d.as_of >= s))
        .collect();
    if days.len() < 2 {
        return Err(HistoryError::TooShort {
            what: format!("tested days of {underlying}"),
            needed: 2,
            available: days.len(),
        });
    }
    let flags: Vec<bool> = days.iter().map(|d| d.exceeded).collect();
    let exceedances = flags.iter().filter(|e| **e).count();
    let subsamples = (params.margin_period_days as usize).max(1);
    if days.len() < 2 * subsamples {
        return Err(HistoryError::TooShort {
            what: format!(
                "tested days of {underlying} (two per non-overlapping subsample of {subsamples}-day periods)"
            ),
            needed: 2 * subsamples,
            available: days.len(),
        });
    }
    let (kupiec, christoffersen) = coverage_tests(&flags, subsamples, params.level)?;
    let ranges: Vec<f64> = days.iter().map(|d| d.range).collect();
    let average_range = ranges.iter().sum::<f64>() / ranges.len() as f64;
    let max_range = ranges.iter().copied().fold(0.0, f64::max);
    let (trough, peak) = largest_rise(&ranges, params.rise_window_days);
    let rise = ranges[peak] - ranges[trough];
    let procyclicality = Procyclicality {
        rise,
        rise_ratio: if ranges[trough] > 0.0 {
            rise / ranges[trough]
        } else {
            0.0
        },
        from: days[trough].as_of,
        to: days[peak].as_of,
    };
    Ok(ModelBacktest {
        days,
        exceedances,
        kupiec,
        christoffersen,
        subsamples,
        average_range,
        max_range,
        procyclicality,
    })
}

/// Kupiec's and Christoffersen's tests of `flags` (one per tested day) over `subsamples`
/// interleaved sequences of non-overlapping periods, combined as [`ModelBacktest::subsamples`]
/// describes; with one subsample, the tests of the whole sequence.
fn coverage_tests(
    flags: &[bool],
    subsamples: usize,
    level: f64,
) -> Result<(KupiecResult, ChristoffersenResult), HistoryError> {
    if subsamples <= 1 {
        let exceedances = flags.iter().filter(|e| **e).count();
        return Ok((
            kupiec_pof(exceedances, flags.len(), level)?,
            christoffersen(flags, level)?,
        ));
    }
    let mut tests = Vec::with_capacity(subsamples);
    for offset in 0..subsamples {
        let sequence: Vec<bool> = flags
            .iter()
            .skip(offset)
            .step_by(subsamples)
            .copied()
            .collect();
        let exceedances = sequence.iter().filter(|e| **e).count();
        tests.push((
            kupiec_pof(exceedances, sequence.len(), level)?,
            christoffersen(&sequence, level)?,
        ));
    }
    #[allow(clippy::cast_precision_loss)]
    let bonferroni = |p: f64| (p * subsamples as f64).min(1.0);
    // The subsample of the smallest p-value of each statistic (the first of equals).
    let least = |p: &dyn Fn(&(KupiecResult, ChristoffersenResult)) -> f64| {
        tests
            .iter()
            .min_by(|a, b| p(a).total_cmp(&p(b)))
            .copied()
            .ok_or_else(|| HistoryError::Statistics("no subsample".to_owned()))
    };
    let (pof, _) = least(&|t| t.0.p_value)?;
    let (_, independence) = least(&|t| t.1.p_independence)?;
    let (_, conditional) = least(&|t| t.1.p_conditional_coverage)?;
    let exceedances = flags.iter().filter(|e| **e).count();
    let all = kupiec_pof(exceedances, flags.len(), level)?;
    let p_value = bonferroni(pof.p_value);
    let kupiec = KupiecResult {
        likelihood_ratio: pof.likelihood_ratio,
        p_value,
        reject_at_5pct: p_value < 0.05,
        ..all
    };
    let mut transitions = [0usize; 4];
    for (_, test) in &tests {
        for (sum, count) in transitions.iter_mut().zip(test.transitions) {
            *sum += count;
        }
    }
    let p_independence = bonferroni(independence.p_independence);
    let christoffersen = ChristoffersenResult {
        transitions,
        lr_independence: independence.lr_independence,
        p_independence,
        lr_conditional_coverage: conditional.lr_conditional_coverage,
        p_conditional_coverage: bonferroni(conditional.p_conditional_coverage),
        reject_independence_at_5pct: p_independence < 0.05,
    };
    Ok((kupiec, christoffersen))
}

/// The pair `(i, j)`, `i <= j <= i + window`, with the largest `values[j] - values[i]` (the
/// first such pair; `(0, 0)` when nothing rises).
#[must_use]
pub fn largest_rise(values: &[f64], window: usize) -> (usize, usize) {
    let mut best = (0, 0, 0.0);
    for i in 0..values.len() {
        for j in i + 1..values.len().min(i + window + 1) {
            let rise = values[j] - values[i];
            if rise > best.2 {
                best = (i, j, rise);
            }
        }
    }
    (best.0, best.1)
}

fn check(params: &CoverageParams) -> Result<(), HistoryError> {
    if !(params.level > 0.0 && params.level < 1.0) {
        return Err(HistoryError::InvalidParameter {
            name: "level",
            value: params.level.to_string(),
            requirement: "must be in (0, 1)",
        });
    }
    if params.margin_period_days == 0 {
        return Err(HistoryError::InvalidParameter {
            name: "margin_period_days",
            value: "0".to_owned(),
            requirement: "must be at least 1",
        });
    }
    if params.rise_window_days == 0 {
        return Err(HistoryError::InvalidParameter {
            name: "rise_window_days",
            value: "0".to_owned(),
            requirement: "must be at least 1",
        });
    }
    Ok(())
}
