//! Filtered historical simulation (Hull and White 1998): the joint history turned into
//! scenarios scaled by today's volatility over each day's.

use super::*;

/// Parameters of the filtered historical simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilteredHistoricalParams {
    /// EWMA decay factor, in (0, 1); [`RISKMETRICS_DAILY_LAMBDA`] by default.
    pub lambda: f64,
    /// Horizon `h` in days (at least 1); returns are scaled by `sqrt(h)`.
    pub horizon_days: u32,
    /// Keep only the most recent `N` scenarios (at least 1); `None`: all of them.
    pub window: Option<usize>,
}

impl Default for FilteredHistoricalParams {
    fn default() -> Self {
        Self {
            lambda: RISKMETRICS_DAILY_LAMBDA,
            horizon_days: 1,
            window: None,
        }
    }
}

impl FilteredHistoricalParams {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`HistoryError::InvalidParameter`] naming the first one out of its domain.
    pub fn validate(&self) -> Result<(), HistoryError> {
        check_lambda(self.lambda)?;
        if self.horizon_days == 0 {
            return Err(HistoryError::InvalidParameter {
                name: "horizon_days",
                value: "0".to_owned(),
                requirement: "must be at least 1",
            });
        }
        if self.window == Some(0) {
            return Err(HistoryError::InvalidParameter {
                name: "window",
                value: "0".to_owned(),
                requirement: "must be at least 1 scenario (or none for all)",
            });
        }
        Ok(())
    }
}

/// One filtered historical scenario: the joint move of every underlying, from the returns of one
/// past day rescaled to today's volatility.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoricalScenario {
    /// The historical day the moves come from (the day of the return).
    pub date: Date,
    /// Index of the return in [`PriceHistory::log_returns`] (`date` is `dates()[index + 1]`).
    pub index: usize,
    /// Per underlying (in [`PriceHistory::underlyings`] order): the factor applied to today's
    /// price, `exp(r_t * sqrt(h) * sigma_now / sigma_t)`.
    pub price_factor: Vec<f64>,
    /// Per underlying: the factor applied to every implied volatility of the underlying,
    /// `exp(d_t * sqrt(h) * nu_now / nu_t)` for the index's log change `d_t` filtered by its own
    /// EWMA volatility `nu`; `None` when the index has no filtered change for that day.
    pub vol_factor: Vec<Option<f64>>,
}

/// The volatility index's log changes of one underlying and their EWMA volatility.
#[derive(Clone, Debug)]
pub(super) struct VolFilter {
    /// Return index of the first change.
    pub(super) first: usize,
    /// `changes[k] = ln(vol[first + k + 1] / vol[first + k])`, dated like return `first + k`.
    pub(super) changes: Vec<f64>,
    pub(super) ewma: EwmaVolatility,
}

/// A [`PriceHistory`] prepared for filtered historical simulation (Hull and White, "Incorporating
/// volatility updating into the historical simulation method for value-at-risk", Journal of
/// Risk 1(1), 1998): each past return is rescaled by the ratio of the current EWMA volatility to
/// the volatility forecast for its own day, so that calm and stressed periods both speak at
/// today's volatility while keeping their joint shape.
///
/// Implied volatility (DESIGN.md 6.5 revalues options): Hull and White apply the same updating
/// to every market variable, so the index's daily log change is filtered by the index's own EWMA
/// volatility (its "vol of vol", same lambda, same seed rule), not by the price's: the price
/// ratio measures spot turbulence and would blow up implied-volatility moves taken from calm
/// days. The result scales every implied volatility of the underlying (a parallel relative
/// shift of the surface).
#[derive(Clone, Debug)]
pub struct FilteredHistory<'h> {
    pub(super) history: &'h PriceHistory,
    pub(super) params: FilteredHistoricalParams,
    pub(super) sqrt_horizon: f64,
    pub(super) price: Vec<EwmaVolatility>,
    pub(super) vol: Vec<Option<VolFilter>>,
}

impl<'h> FilteredHistory<'h> {
    /// Computes the EWMA volatilities of every underlying (and volatility index) of `history`.
    ///
    /// # Errors
    /// [`HistoryError::InvalidParameter`] for invalid `params`; [`HistoryError::TooShort`] when
    /// the history has no more than [`EWMA_SEED_RETURNS`] returns (no scenario after the seed);
    /// [`HistoryError::ZeroVariance`] when an underlying did not move in the seed window.
    pub fn new(
        history: &'h PriceHistory,
        params: &FilteredHistoricalParams,
    ) -> Result<Self, HistoryError> {
        params.validate()?;
        let returns = history.dates.len() - 1;
        if returns <= EWMA_SEED_RETURNS {
            return Err(HistoryError::TooShort {
                what: "daily returns for filtered historical simulation (seed + 1)".to_owned(),
                needed: EWMA_SEED_RETURNS + 1,
                available: returns,
            });
        }
        let mut price = Vec::with_capacity(history.underlyings.len());
        for (u, name) in history.underlyings.iter().enumerate() {
            let ewma = ewma_volatility(&history.returns[u], params.lambda, EWMA_SEED_RETURNS)
                .map_err(|error| match error {
                    HistoryError::ZeroVariance { what } => HistoryError::ZeroVariance {
                        what: format!("{name}: {what}"),
                    },
                    other => other,
                })?;
            price.push(ewma);
        }
        let vol = history
            .vols
            .iter()
            .map(|levels| vol_filter(levels, params.lambda))
            .collect();
        Ok(Self {
            history,
            params: *params,
            sqrt_horizon: f64::from(params.horizon_days).sqrt(),
            price,
            vol,
        })
    }

    /// The history the scenarios come from.
    #[must_use]
    pub fn history(&self) -> &'h PriceHistory {
        self.history
    }

    /// EWMA volatility forecasts of underlying number `u`'s returns.
    ///
    /// # Panics
    /// If `u` is not below `history().underlyings().len()`.
    #[must_use]
    pub fn price_volatility(&self, u: usize) -> &EwmaVolatility {
        &self.price[u]
    }

    /// Number of scenarios available at the end of `dates()[date_index]` (before the window
    /// applies): the returns up to that date after the seed.
    #[must_use]
    pub fn available_scenarios(&self, date_index: usize) -> usize {
        date_index.saturating_sub(EWMA_SEED_RETURNS)
    }

    /// The scenarios as of the last date of the history.
    #[must_use]
    pub fn scenarios(&self) -> Vec<HistoricalScenario> {
        let last = self.history.dates.len() - 1;
        self.range_as_of(last)
            .map(|s| self.scenario(last, s))
            .collect()
    }

    /// The scenarios as of the end of `dates()[date_index]`: only returns up to that date, and
    /// volatilities forecast from them (no look-ahead), most recent `window` of them.
    ///
    /// # Errors
    /// [`HistoryError::TooShort`] when no scenario is available by then (within the seed) or
    /// `date_index` is beyond the history.
    pub fn scenarios_as_of(
        &self,
        date_index: usize,
    ) -> Result<Vec<HistoricalScenario>, HistoryError> {
        self.check_as_of(date_index)?;
        Ok(self
            .range_as_of(date_index)
            .map(|s| self.scenario(date_index, s))
            .collect())
    }

    pub(super) fn check_as_of(&self, date_index: usize) -> Result<(), HistoryError> {
        if date_index >= self.history.dates.len() || self.available_scenarios(date_index) == 0 {
            return Err(HistoryError::TooShort {
                what: format!("dates before the as-of date index {date_index}"),
                needed: EWMA_SEED_RETURNS + 1,
                available: date_index.min(self.history.dates.len() - 1),
            });
        }
        Ok(())
    }

    /// Return indices of the scenarios as of `date_index` (returns `0..date_index` are known).
    pub(super) fn range_as_of(&self, date_index: usize) -> std::ops::Range<usize> {
        let end = date_index;
        let start = match self.params.window {
            Some(window) => end.saturating_sub(window).max(EWMA_SEED_RETURNS),
            None => EWMA_SEED_RETURNS,
        };
        start..end.max(start)
    }

    pub(super) fn scenario(&self, date_index: usize, s: usize) -> HistoricalScenario {
        let mut scenario = HistoricalScenario {
            date: self.history.dates[s + 1],
            index: s,
            price_factor: vec![0.0; self.price.len()],
            vol_factor: vec![None; self.price.len()],
        };
        self.fill(date_index, s, &mut scenario);
        scenario
    }

    /// Writes scenario `s` (a return index) as of the end of `dates()[date_index]` into `out`.
    pub(super) fn fill(&self, date_index: usize, s: usize, out: &mut HistoricalScenario) {
        out.date = self.history.dates[s + 1];
        out.index = s;
        for (u, ewma) in self.price.iter().enumerate() {
            // sigma[date_index] is the forecast made at the end of dates[date_index].
            let ratio = ewma.sigma[date_index] / ewma.sigma[s];
            out.price_factor[u] = (self.history.returns[u][s] * self.sqrt_horizon * ratio).exp();
            out.vol_factor[u] = self.vol[u]
                .as_ref()
                .and_then(|filter| filter.factor(date_index, s, self.sqrt_horizon));
        }
    }
}

impl VolFilter {
    /// The filtered factor of return `s` as of `dates[date_index]`, if the index has a seeded
    /// change that day; `nu_now` is the latest forecast available by then.
    pub(super) fn factor(&self, date_index: usize, s: usize, sqrt_horizon: f64) -> Option<f64> {
        let k = s.checked_sub(self.first)?;
        if k < EWMA_SEED_RETURNS || k >= self.changes.len() {
            return None;
        }
        let now = (date_index - self.first).min(self.changes.len());
        let ratio = self.ewma.sigma[now] / self.ewma.sigma[k];
        let factor = (self.changes[k] * sqrt_horizon * ratio).exp();
        factor.is_finite().then_some(factor)
    }
}

/// The filter of one volatility index: its contiguous run of levels, their log changes and
/// EWMA volatility; `None` when too short to seed (or flat over the seed).
pub(super) fn vol_filter(levels: &[Option<f64>], lambda: f64) -> Option<VolFilter> {
    let start = levels.iter().position(Option::is_some)?;
    let run: Vec<f64> = levels[start..].iter().map_while(|v| *v).collect();
    let changes = log_returns_of(&run);
    if changes.len() <= EWMA_SEED_RETURNS {
        return None;
    }
    let ewma = ewma_volatility(&changes, lambda, EWMA_SEED_RETURNS).ok()?;
    Some(VolFilter {
        first: start,
        changes,
        ewma,
    })
}

/// Filtered historical scenarios as of the last date of `history` (DESIGN.md 6.5, "Historical
/// ES"); see [`FilteredHistory`].
///
/// # Errors
/// As [`FilteredHistory::new`].
pub fn filtered_historical_scenarios(
    history: &PriceHistory,
    params: &FilteredHistoricalParams,
) -> Result<Vec<HistoricalScenario>, HistoryError> {
    Ok(FilteredHistory::new(history, params)?.scenarios())
}
