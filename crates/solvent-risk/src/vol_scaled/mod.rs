//! Volatility-scaled scenario ranges with anti-procyclicality controls (DESIGN.md 6.5; issue 15).
//!
//! A venue's static grid moves each underlying by up to `R0` (Deribit BTC: 16%). A scaled range
//! follows the market instead, as clearing houses do (CME SPAN 2; EMIR RTS 153/2013 article 24
//! on margin models calibrated to recent volatility):
//!
//! `base[t] = k * sqrt(V_h[t])`, `range[t] = max(floor, control(base)[t])`,
//!
//! with `sigma[t]` the daily volatility forecast for day `t` (EWMA or GARCH(1,1), made from the
//! returns before it), `h` the margin period in days, `V_h[t]` the variance forecast over those
//! `h` days (`h sigma[t]^2` for EWMA, GARCH(1,1)'s term structure for GARCH, which reverts to
//! its long-run variance over the period: [`crate::history::period_variance`]) and `control` one of EMIR's three
//! anti-procyclicality tools (article 28(1)), which bound how fast the requirement may rise in
//! stress:
//! - **buffer** (28(1)(a)): `M[t] = clamp(M[t-1] + b * base[t] / n, base[t], (1 + b) * base[t])`
//!   with `M[first] = (1 + b) base[first]`: in calm markets the range carries a buffer of `b`
//!   (>= 25%) over the forecast; when the forecast rises the buffer is used up first (the range
//!   stays where it was while it still covers the forecast), and it is rebuilt by `b / n` of the
//!   forecast range a day (`n` = `rebuild_days`);
//! - **stressed floor** (28(1)(b)): `M[t] = max(base[t], k * sqrt(h) * s[t])` with `s[t]` the
//!   standard deviation of the daily returns of the last `lookback_days` (ten years);
//! - **stressed weight** (28(1)(c)): `M[t] = k * sqrt((1 - w) V_h[t] + w h v[t])`
//!   with `v[t]` the mean squared return of the most volatile `window_days` window so far
//!   (within the ten-year look-back), `h v[t]` never below `V_h[t]` (so the control never lowers
//!   the range below the forecast), and `w` >= 25%.
//!
//! The grid is then scaled by `range / R0`: every standard price move, both volatility shocks
//! (a relative down-shock capped at 0.99) and the extended scenarios' weight, so a scaled grid has exactly the static grid's
//! scenarios and costs the same to evaluate once the forecast is made.
//!
//! Everything here is pure: the caller reads the history and passes the returns.

pub mod backtest;
pub mod book;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use solvent_core::portfolio_margin::UnderlyingParams;
use solvent_core::vol_scaled::{
    AntiProcyclicality, ControlName, ModelName, VolModel, VolScaledRange,
};

use crate::history::{
    EWMA_SEED_RETURNS, HistoryError, VolForecasts, ewma_volatility, garch_forecasts,
    period_variance,
};

/// Ten years of calendar days: the look-back of the stressed windows (EMIR RTS 153/2013 article
/// 28(1)(b) names ten years; crypto trades every day).
pub const TEN_YEARS_DAYS: usize = 3652;

/// Largest relative volatility down-shock a scaled grid may carry (a shock of 1 would put
/// volatility at zero).
const MAX_VOL_SHOCK_DOWN: f64 = 0.99;

/// What set the day's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeBound {
    /// The floor (`floor >= control(base)`).
    Floor,
    /// The forecast itself (no control, or a buffer used up).
    Forecast,
    /// The forecast plus the full buffer (calm markets).
    BufferFull,
    /// The forecast plus part of the buffer (being used up or rebuilt).
    BufferPartial,
    /// The ten-year stressed floor.
    StressedFloor,
    /// The variance with its weight on stressed observations.
    StressedWeight,
}

impl RangeBound {
    /// The bound's name in a report.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Forecast => "forecast",
            Self::BufferFull => "forecast + full buffer",
            Self::BufferPartial => "forecast + part of the buffer",
            Self::StressedFloor => "ten-year stressed floor",
            Self::StressedWeight => "stressed-weighted forecast",
        }
    }

    /// The bound's name as events and JSON write it (`buffer_partial`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Forecast => "forecast",
            Self::BufferFull => "buffer_full",
            Self::BufferPartial => "buffer_partial",
            Self::StressedFloor => "stressed_floor",
            Self::StressedWeight => "stressed_weight",
        }
    }
}

/// The scaled range in force for one underlying: the forecast it was made from, the range, the
/// venue's static range it replaced, the control and what bound it. What `solvent margin
/// --history` computes and shows, what a `scenario_range` event carries into the engine, and what
/// the engine and the service report for the accounts holding the underlying.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeInForce {
    /// The underlying.
    pub underlying: String,
    /// The close the forecast was made at.
    pub as_of: Date,
    /// The forecast model.
    pub model: ModelName,
    /// Daily volatility forecast (a fraction: 0.0158 = 1.58% a day).
    pub sigma_daily: f64,
    /// `k x sqrt(V_h)`, the forecast over the margin period (`k x sigma x sqrt(h)` for EWMA; GARCH's
    /// term structure, [`crate::history::period_variance`]), before the control and the floor
    /// (a fraction).
    pub base: f64,
    /// The range in force: the largest standard move of the scaled grid (a fraction).
    pub range: f64,
    /// The venue's static range it replaces, `R0` (a fraction).
    pub static_range: f64,
    /// The anti-procyclicality control.
    pub control: ControlName,
    /// What bound the range.
    pub bound: RangeBound,
}

impl RangeInForce {
    /// The range of `day` for `underlying`, whose venue grid is `grid` and parameters `spec`.
    #[must_use]
    pub fn of_day(
        underlying: &str,
        day: &RangeDay,
        spec: &VolScaledRange,
        grid: &UnderlyingParams,
    ) -> Self {
        Self {
            underlying: underlying.to_owned(),
            as_of: day.as_of,
            model: spec.model.name(),
            sigma_daily: day.sigma_daily,
            base: day.base,
            range: day.range,
            static_range: static_range(grid),
            control: spec.control.name(),
            bound: day.bound,
        }
    }
}

/// The underlyings a portfolio-mode `portfolio` is exposed to (positions in its cross pool,
/// balances of a coin the venue scans) whose range `venue` scales, in the venue's order of
/// `[portfolio_margin.vol_scaled]`; none for an account of another mode.
#[must_use]
pub fn scaled_exposures(
    venue: &solvent_core::venue::Venue,
    portfolio: &solvent_core::portfolio::Portfolio,
) -> Vec<String> {
    let Some(pm) = venue.portfolio_margin.as_ref() else {
        return Vec::new();
    };
    if portfolio.mode != solvent_core::portfolio::MarginMode::Portfolio {
        return Vec::new();
    }
    pm.vol_scaled
        .keys()
        .filter(|underlying| {
            portfolio
                .positions
                .iter()
                .any(|p| p.isolated_margin.is_none() && p.instrument.underlying == **underlying)
                || portfolio
                    .balances
                    .iter()
                    .any(|b| b.asset.index == **underlying && !b.amount.0.is_zero())
        })
        .cloned()
        .collect()
}

/// The report's warning for an underlying whose range the venue scales but which has no range
/// in force (the engine and the service margin it on the static grid until a `scenario_range`
/// event sets one).
#[must_use]
pub fn static_grid_warning(underlying: &str, static_range: f64) -> String {
    format!(
        "{underlying}: the venue scales its range with forecast volatility, but no scenario_range event has set one: margined on the static grid (±{}%)",
        static_range * 100.0
    )
}

/// One day's range, set at the close of `as_of` for the margin period that follows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RangeDay {
    /// The day whose close the range is set at.
    pub as_of: Date,
    /// The daily volatility forecast `sigma` (a fraction: 0.035 = 3.5% a day).
    pub sigma_daily: f64,
    /// `k * sqrt(V_h)` (see [`RangeInForce::base`]), before the control and the floor.
    pub base: f64,
    /// What the control makes of the base (the base when there is none).
    pub controlled: f64,
    /// The range: `max(floor, controlled)`, a fraction of the price.
    pub range: f64,
    /// What set it.
    pub bound: RangeBound,
}

/// The scaled range of every day the forecast covers.
///
/// `returns[t]` is the daily log return dated `dates[t + 1]` (the convention of
/// [`crate::history::PriceHistory`]); `dates.len() == returns.len() + 1`. Day `i` of the result is
/// set at the close of `dates[first + i]` from the returns up to that close, so the last day is
/// today's range.
///
/// # Errors
/// [`HistoryError::InvalidParameter`] for `dates` not one longer than `returns` or parameters
/// out of range; the forecast's errors (too short a history, a non-finite return, a zero
/// variance).
pub fn range_path(
    dates: &[Date],
    returns: &[f64],
    spec: &VolScaledRange,
) -> Result<Vec<RangeDay>, HistoryError> {
    if dates.len() != returns.len() + 1 {
        return Err(HistoryError::InvalidParameter {
            name: "dates",
            value: dates.len().to_string(),
            requirement: "one more date than returns",
        });
    }
    check_spec(spec)?;
    let forecasts = forecasts(returns, spec.model)?;
    let scale = spec.k * f64::from(spec.margin_period_days).sqrt();
    let stressed = Stressed::new(returns);
    let mut days = Vec::with_capacity(forecasts.sigma.len());
    let mut previous: Option<f64> = None;
    for (i, &sigma) in forecasts.sigma.iter().enumerate() {
        let t = forecasts.first + i;
        // The variance over the margin period: `h sigma^2` for EWMA, GARCH's term structure
        // for GARCH (`period_variance`); `base = k x sqrt(that)`.
        let period = period_variance(
            sigma * sigma,
            spec.margin_period_days,
            forecasts.params.get(i),
        );
        let base = spec.k * period.sqrt();
        let (controlled, control_bound) = match spec.control {
            AntiProcyclicality::None => (base, RangeBound::Forecast),
            AntiProcyclicality::Buffer {
                share,
                rebuild_days,
            } => buffered(previous, base, share, rebuild_days),
            AntiProcyclicality::StressedFloor { lookback_days } => {
                let floor = scale * stressed.deviation(t, lookback_days as usize);
                if floor > base {
                    (floor, RangeBound::StressedFloor)
                } else {
                    (base, RangeBound::Forecast)
                }
            }
            AntiProcyclicality::StressedWeight {
                weight,
                window_days,
            } => {
                // Over `h` days: `(1 - w) V_h + w max(h v, V_h)`, which is `h` times the daily
                // form when `V_h = h sigma^2`.
                let h = f64::from(spec.margin_period_days);
                let v = stressed.worst_window(t, window_days as usize);
                let variance = (1.0 - weight) * period + weight * (h * v).max(period);
                (spec.k * variance.sqrt(), RangeBound::StressedWeight)
            }
        };
        previous = Some(controlled);
        let (range, bound) = if spec.floor >= controlled {
            (spec.floor, RangeBound::Floor)
        } else {
            (controlled, control_bound)
        };
        if !(range.is_finite() && controlled.is_finite()) {
            return Err(HistoryError::NotFinite {
                what: format!("scaled range as of {}", dates[t]),
                value: range,
            });
        }
        days.push(RangeDay {
            as_of: dates[t],
            sigma_daily: sigma,
            base,
            controlled,
            range,
            bound,
        });
    }
    Ok(days)
}

/// One step of the buffer (EMIR RTS 153/2013 article 28(1)(a)): the range moves from the
/// previous one by at most the rebuild step `share * base / rebuild_days` upward, and stays
/// within `[base, (1 + share) base]`; the first day carries the full buffer.
#[must_use]
pub fn buffered(
    previous: Option<f64>,
    base: f64,
    share: f64,
    rebuild_days: u32,
) -> (f64, RangeBound) {
    let full = (1.0 + share) * base;
    let Some(previous) = previous else {
        return (full, RangeBound::BufferFull);
    };
    let step = share * base / f64::from(rebuild_days.max(1));
    let value = (previous + step).min(full).max(base);
    let bound = if value >= full {
        RangeBound::BufferFull
    } else if value <= base {
        RangeBound::Forecast
    } else {
        RangeBound::BufferPartial
    };
    (value, bound)
}

/// The daily forecasts of the model (EWMA seeded on [`EWMA_SEED_RETURNS`] returns; GARCH fitted
/// on a year and refitted every `refit_days`).
///
/// # Errors
/// The forecast's own errors.
pub fn forecasts(returns: &[f64], model: VolModel) -> Result<VolForecasts, HistoryError> {
    match model {
        VolModel::Ewma { lambda } => {
            let ewma = ewma_volatility(returns, lambda, EWMA_SEED_RETURNS)?;
            Ok(VolForecasts {
                first: EWMA_SEED_RETURNS,
                sigma: ewma.sigma()[EWMA_SEED_RETURNS..].to_vec(),
                params: Vec::new(),
            })
        }
        VolModel::Garch { refit_days } => garch_forecasts(returns, refit_days as usize),
    }
}

fn check_spec(spec: &VolScaledRange) -> Result<(), HistoryError> {
    let fail = |name: &'static str, value: f64, requirement: &'static str| {
        Err(HistoryError::InvalidParameter {
            name,
            value: value.to_string(),
            requirement,
        })
    };
    if !(spec.k > 0.0 && spec.k.is_finite()) {
        return fail("k", spec.k, "must be positive and finite");
    }
    if !(spec.floor >= 0.0 && spec.floor < 1.0) {
        return fail("floor", spec.floor, "must be in [0, 1)");
    }
    if spec.margin_period_days == 0 {
        return fail("margin_period_days", 0.0, "must be at least 1");
    }
    match spec.control {
        AntiProcyclicality::Buffer {
            share,
            rebuild_days,
        } => {
            if !(share >= 0.0 && share.is_finite()) {
                return fail("buffer", share, "must be >= 0 and finite");
            }
            if rebuild_days == 0 {
                return fail("buffer_rebuild_days", 0.0, "must be at least 1");
            }
        }
        AntiProcyclicality::StressedFloor { lookback_days: 0 } => {
            return fail("stressed_lookback_days", 0.0, "must be at least 1");
        }
        AntiProcyclicality::StressedWeight {
            weight,
            window_days,
        } => {
            if !(0.0..=1.0).contains(&weight) {
                return fail("stressed_weight", weight, "must be in [0, 1]");
            }
            if window_days == 0 {
                return fail("stressed_window_days", 0.0, "must be at least 1");
            }
        }
        _ => {}
    }
    Ok(())
}

/// Prefix sums of the returns and their squares: the look-back statistics in O(1) a day.
struct Stressed {
    sum: Vec<f64>,
    squares: Vec<f64>,
}

impl Stressed {
    fn new(returns: &[f64]) -> Self {
        let mut sum = Vec::with_capacity(returns.len() + 1);
        let mut squares = Vec::with_capacity(returns.len() + 1);
        let (mut s, mut q) = (0.0, 0.0);
        sum.push(s);
        squares.push(q);
        for r in returns {
            s += r;
            q += r * r;
            sum.push(s);
            squares.push(q);
        }
        Self { sum, squares }
    }

    /// Sample standard deviation (`n - 1`) of the returns before `t`, at most `lookback` of
    /// them; 0 with fewer than two.
    fn deviation(&self, t: usize, lookback: usize) -> f64 {
        let from = t.saturating_sub(lookback);
        let n = (t - from) as f64;
        if n < 2.0 {
            return 0.0;
        }
        let s = self.sum[t] - self.sum[from];
        let q = self.squares[t] - self.squares[from];
        ((q - s * s / n) / (n - 1.0)).max(0.0).sqrt()
    }

    /// The largest mean squared return of a `window`-day window ending at or before `t` and
    /// starting within the ten-year look-back (the whole history so far when it is shorter
    /// than a window).
    fn worst_window(&self, t: usize, window: usize) -> f64 {
        let mean =
            |from: usize, to: usize| (self.squares[to] - self.squares[from]) / (to - from) as f64;
        if t == 0 {
            return 0.0;
        }
        if t <= window {
            return mean(0, t);
        }
        let earliest = t.saturating_sub(TEN_YEARS_DAYS);
        (earliest + window..=t)
            .map(|end| mean(end - window, end))
            .fold(0.0, f64::max)
    }
}

/// The largest standard price move of a grid, `R0` (a fraction).
#[must_use]
pub fn static_range(params: &UnderlyingParams) -> f64 {
    params.price_moves.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// The grid scaled to `range`: standard moves times `range / R0` (a fall capped at 99%), the
/// volatility shocks alike (relative or absolute; the down-shock capped at 0.99), and the
/// extended scenarios' dampener and fixed weight alike (a weight capped at 1). The extended
/// moves themselves are kept: they are the venue's tail scenarios. A grid with `R0 = 0` is
/// returned as it is.
#[must_use]
pub fn scaled_grid(params: &UnderlyingParams, range: f64) -> UnderlyingParams {
    let r0 = static_range(params);
    let mut scaled = params.clone();
    if r0 <= 0.0 || !range.is_finite() {
        return scaled;
    }
    let factor = range / r0;
    for m in &mut scaled.price_moves {
        // A fall beyond 99% is outside the reader's bounds for a grid (a price stays positive).
        *m = (*m * factor).max(-MAX_VOL_SHOCK_DOWN);
    }
    scaled.vol_shock_up *= factor;
    scaled.vol_shock_down = (scaled.vol_shock_down * factor).min(MAX_VOL_SHOCK_DOWN);
    // The extended scenarios' weight is what ties them to the range (Paradex's dampener is the
    // standard range itself: a -66% move weighted 0.16 / 0.66 loses what -16% does), so it
    // scales too; otherwise a linear book's margin could never fall below the static range.
    scaled.extended_dampener *= factor;
    scaled.extended_weight = scaled.extended_weight.map(|w| (w * factor).min(1.0));
    scaled
}

#[cfg(test)]
mod tests;
