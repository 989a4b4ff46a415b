//! VaR backtest of an account's linear exposure over a price history: one-day filtered
//! historical VaR against the realised next-day P&L, and Kupiec's proportion-of-failures test
//! (DESIGN.md 6.5; issue: "so a risk team can see the model is calibrated").
//!
//! The account is held fixed in coin: each underlying's exposure is its spot balance plus the
//! coin-equivalent of its perpetuals and futures (`size x contract size`, or `size / entry` for
//! inverse contracts). Options are refused by [`run`]; [`run_with_options`] values them each day
//! on a surface whose level is that day's DVOL and whose shape is the account's smile (issue 15):
//! `sigma_d(K) = DVOL_d x sigma_0(K x S_0 / S_d, T) / sigma_0(S_0, T)`, with `sigma_0` the
//! market's surface, `S_0` its index and `T` each option's time to expiry in the market, held
//! constant (a constant-maturity book), the strikes carried to each day's price level
//! (`K x S_d / S_0`); the scenario moves the level by the filtered DVOL change of the history
//! (`vol_factor`). Only the days with a DVOL print are tested (from 2021-03-24 in
//! the shared data).

use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use solvent_core::instrument::Terms;
use solvent_core::portfolio::Portfolio;

use crate::error::RiskError;
use crate::history::{
    BacktestParams, FilteredHistoricalParams, KupiecResult, PriceHistory, var_backtest,
};
use crate::portfolio_margin::exposure_of;
use crate::valuation::{MarketView, option_type};
use solvent_core::instrument::Instrument;
use solvent_pricing::black76::Black76;

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

pub(crate) fn history_error(error: crate::history::HistoryError) -> RiskError {
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
    if let Some(option) = portfolio
        .positions
        .iter()
        .find(|p| matches!(p.instrument.terms, Terms::Option { .. }))
    {
        return Err(RiskError::Unsupported {
            path: format!("positions: {}", option.instrument.name),
            problem: "the backtest covers spot, perpetuals and futures: an option's past P&L needs each day's volatility surface".to_owned(),
        });
    }
    let exposures = linear_exposures(portfolio);
    let columns = columns_of(&exposures, history)?;
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

/// One option of the book, valued on each day's DVOL-levelled surface (shared by the VaR
/// backtest and the margin-model backtest of a book, `vol_scaled::book`).
pub(crate) struct OptionLeg {
    /// Column of the underlying in the history.
    pub(crate) column: usize,
    /// Size in units of the underlying (`size x contract size`; USD per unit move of the premium).
    pub(crate) units: f64,
    /// The account's strike `K`.
    pub(crate) strike: f64,
    /// Years to expiry in the market, held constant (a constant-maturity book).
    pub(crate) time: f64,
    right: solvent_core::instrument::OptionRight,
    /// The market's index of the underlying (`S_0`).
    spot_0: f64,
    /// The market's at-the-money volatility at the option's expiry (`sigma_0(S_0, T)`).
    atm_0: f64,
    /// The instrument.
    pub(crate) instrument: std::sync::Arc<Instrument>,
}

impl OptionLeg {
    /// The strike on base day `spot_d`: the account's strike carried to the day's price level,
    /// `K x S_d / S_0` (the book is held at constant moneyness, as the linear part is held in
    /// coin).
    pub(crate) fn strike_on(&self, spot_d: f64) -> f64 {
        self.strike * spot_d / self.spot_0
    }

    /// The volatility of strike `strike` at spot `spot` with the surface at DVOL level `level`
    /// (a fraction): `sigma = level x sigma_0(strike x S_0 / spot, T) / sigma_0(S_0, T)`.
    pub(crate) fn volatility(
        &self,
        view: &MarketView<'_>,
        spot: f64,
        strike: f64,
        level: f64,
    ) -> Result<f64, RiskError> {
        let moneyness_strike = strike * self.spot_0 / spot;
        let shape =
            view.model_volatility(&self.instrument, moneyness_strike, self.time)? / self.atm_0;
        Ok(level * shape)
    }

    /// USD value (Black-76 at the market's rate) at spot `spot`, strike `strike` and volatility
    /// `sigma`.
    pub(crate) fn price(
        &self,
        view: &MarketView<'_>,
        spot: f64,
        strike: f64,
        sigma: f64,
    ) -> Result<f64, RiskError> {
        let (model, _) = self.model(view, spot, strike, sigma)?;
        Ok(self.units * model.price(option_type(self.right)))
    }

    /// Delta of one unit at spot `spot`, strike `strike` and volatility `sigma`, in coin of the
    /// underlying: `dV/dS = dV/dF x F / S`, as portfolio margin counts an option's delta
    /// (`portfolio_margin::revaluation`).
    pub(crate) fn unit_delta(
        &self,
        view: &MarketView<'_>,
        spot: f64,
        strike: f64,
        sigma: f64,
    ) -> Result<f64, RiskError> {
        let (model, forward) = self.model(view, spot, strike, sigma)?;
        Ok(model.greeks(option_type(self.right)).delta * forward / spot)
    }

    /// Black-76 at the market's rate for spot `spot`, and the forward it prices on.
    fn model(
        &self,
        view: &MarketView<'_>,
        spot: f64,
        strike: f64,
        sigma: f64,
    ) -> Result<(Black76, f64), RiskError> {
        let rate = view.market().rate;
        let forward = spot * (rate * self.time).exp();
        let model =
            Black76::new_checked(forward, strike, self.time, sigma, (-rate * self.time).exp())
                .map_err(|error| RiskError::Pricing {
                    path: format!("positions: {}", self.instrument.name),
                    problem: error.to_string(),
                })?;
        Ok((model, forward))
    }

    /// USD value at spot `spot` and strike `strike` with the surface at DVOL level `level` (a
    /// fraction): [`Self::price`] at [`Self::volatility`].
    pub(crate) fn value(
        &self,
        view: &MarketView<'_>,
        spot: f64,
        strike: f64,
        level: f64,
    ) -> Result<f64, RiskError> {
        let sigma = self.volatility(view, spot, strike, level)?;
        self.price(view, spot, strike, sigma)
    }
}

/// The options of `portfolio` (only those on `only` when given) as legs valued on the
/// DVOL-levelled surface of `view`; `history` gives each one's column.
///
/// # Errors
/// An option expired in the market, an underlying missing from the history or the market's
/// index, a surface that cannot value the option.
pub(crate) fn option_legs(
    portfolio: &Portfolio,
    history: &PriceHistory,
    view: &MarketView<'_>,
    only: Option<&str>,
) -> Result<Vec<OptionLeg>, RiskError> {
    let mut legs = Vec::new();
    for position in &portfolio.positions {
        let instrument = &position.instrument;
        let Terms::Option {
            expiry,
            strike,
            right,
        } = &instrument.terms
        else {
            continue;
        };
        if only.is_some_and(|u| u != instrument.underlying) {
            continue;
        }
        let time = view.years_to(*expiry);
        let unsupported = |problem: String| RiskError::Unsupported {
            path: format!("positions: {}", instrument.name),
            problem,
        };
        if time <= 0.0 || time.is_nan() {
            return Err(unsupported(
                "the option has expired in the market".to_owned(),
            ));
        }
        let column = history
            .index_of(&instrument.underlying)
            .map_err(history_error)?;
        let spot_0 = view
            .market()
            .index
            .get(&instrument.underlying)
            .map(|p| p.to_f64())
            .ok_or_else(|| unsupported(format!("no index for {}", instrument.underlying)))?;
        let atm_0 = view.model_volatility(instrument, spot_0, time)?;
        legs.push(OptionLeg {
            column,
            units: position.size.value().to_f64().unwrap_or(f64::NAN)
                * instrument.contract_size.to_f64().unwrap_or(f64::NAN),
            strike: strike.to_f64(),
            time,
            right: *right,
            spot_0,
            atm_0,
            instrument: instrument.clone(),
        });
    }
    if let Some(leg) = legs.iter().find(|l| !l.units.is_finite()) {
        return Err(RiskError::Unsupported {
            path: format!("positions: {}", leg.instrument.name),
            problem: "its size in units is not a finite number".to_owned(),
        });
    }
    Ok(legs)
}

/// Backtests the one-day VaR of an account that may hold options: [`run`]'s linear exposure plus
/// each option valued on a surface levelled by the day's DVOL with the account's smile shape
/// (module documentation). The book is carried to each day's price level: on day `d` an option
/// of strike `K` is valued at strike `K x S_d / S_0` (constant moneyness), so, like the linear
/// part held in coin, its USD P&L scales with the price; the realised P&L is that option's value
/// at the next close (spot and DVOL) less its value at `d`. The history is cut to the days every optioned underlying has a DVOL
/// print.
///
/// # Errors
/// As [`run`]; an option whose underlying has no DVOL series or no surface in the market; an
/// expired option; a valuation that fails.
pub fn run_with_options(
    portfolio: &Portfolio,
    history: &PriceHistory,
    view: &MarketView<'_>,
    params: &FilteredHistoricalParams,
    level: f64,
    min_scenarios: usize,
) -> Result<BacktestReport, RiskError> {
    let mut linear = portfolio.clone();
    linear
        .positions
        .retain(|p| !matches!(p.instrument.terms, Terms::Option { .. }));
    let legs = option_legs(portfolio, history, view, None)?;
    if legs.is_empty() {
        return run(portfolio, history, params, level, min_scenarios);
    }
    // The days every optioned underlying has a DVOL print.
    let dates = history.dates();
    let covered = |d: usize| {
        legs.iter()
            .all(|l| history.vol_levels(l.column)[d].is_some())
    };
    let first = (0..dates.len()).find(|d| covered(*d));
    let last = (0..dates.len()).rev().find(|d| covered(*d));
    let (Some(first), Some(last)) = (first, last) else {
        return Err(RiskError::Unsupported {
            path: "--history".to_owned(),
            problem: format!(
                "no DVOL series for {} (COIN-DVOL.deribit.daily.csv): options are valued on the day's DVOL",
                legs[0].instrument.underlying
            ),
        });
    };
    let window = history
        .window(dates[first], dates[last])
        .map_err(history_error)?;
    if let Some(d) = (0..window.dates().len()).find(|d| {
        legs.iter()
            .any(|l| window.vol_levels(l.column)[*d].is_none())
    }) {
        return Err(RiskError::Unsupported {
            path: "--history".to_owned(),
            problem: format!("the DVOL series has a gap on {}", window.dates()[d]),
        });
    }
    let linear_report_columns = linear_columns(&linear, &window)?;
    let level_of = |column: usize, day: usize| window.vol_levels(column)[day].unwrap_or(f64::NAN);
    let mut failure: Option<RiskError> = None;
    // The book's value on each day d at its own level (spot S_d, strikes K x S_d / S_0, DVOL_d).
    let mut today = vec![f64::NAN; window.dates().len()];
    for (d, slot) in today.iter_mut().enumerate() {
        let mut total = 0.0;
        for leg in &legs {
            let spot = window.closes(leg.column)[d];
            match leg.value(view, spot, leg.strike_on(spot), level_of(leg.column, d)) {
                Ok(v) => total += v,
                Err(e) => {
                    failure.get_or_insert(e);
                    total = f64::NAN;
                }
            }
        }
        *slot = total;
    }
    if let Some(error) = failure {
        return Err(error);
    }
    // The options' value with day d's strikes, at moved spots and DVOL levels.
    let options_at =
        |day: usize, spot_of: &dyn Fn(usize) -> f64, level_of_leg: &dyn Fn(usize) -> f64| {
            legs.iter().try_fold(0.0, |total, leg| {
                let strike = leg.strike_on(window.closes(leg.column)[day]);
                leg.value(view, spot_of(leg.column), strike, level_of_leg(leg.column))
                    .map(|v| total + v)
            })
        };
    let failure = std::cell::RefCell::new(None);
    let record = |result: Result<f64, RiskError>| match result {
        Ok(v) => v,
        Err(e) => {
            failure.borrow_mut().get_or_insert(e);
            f64::NAN
        }
    };
    let scenario_pnl = |day: usize, scenario: &crate::history::HistoricalScenario| -> f64 {
        let linear_pnl: f64 = linear_report_columns
            .iter()
            .map(|(index, units)| {
                let price = window.closes(*index)[day];
                units * price * (scenario.price_factor[*index] - 1.0)
            })
            .sum();
        // A scenario without a filtered DVOL change leaves the level where it is.
        let options = record(options_at(
            day,
            &|c| window.closes(c)[day] * scenario.price_factor[c],
            &|c| level_of(c, day) * scenario.vol_factor[c].unwrap_or(1.0),
        ));
        linear_pnl + options - today[day]
    };
    let realised_pnl = |day: usize| -> f64 {
        let linear_pnl: f64 = linear_report_columns
            .iter()
            .map(|(index, units)| {
                let closes = window.closes(*index);
                units * (closes[day + 1] - closes[day])
            })
            .sum();
        let options = record(options_at(day, &|c| window.closes(c)[day + 1], &|c| {
            level_of(c, day + 1)
        }));
        linear_pnl + options - today[day]
    };
    let result = var_backtest(
        &window,
        params,
        &BacktestParams {
            var_level: level,
            min_scenarios,
        },
        scenario_pnl,
        realised_pnl,
    );
    if let Some(error) = failure.into_inner() {
        return Err(error);
    }
    let result = result.map_err(history_error)?;
    let mut exposures = linear_report_columns
        .iter()
        .map(|(index, units)| (window.underlyings()[*index].clone(), *units))
        .collect::<Vec<_>>();
    for leg in &legs {
        exposures.push((format!("{} (option)", leg.instrument.name), leg.units));
    }
    Ok(BacktestReport {
        exposures,
        level,
        first_day: result
            .days
            .first()
            .map(|d| d.as_of.to_string())
            .unwrap_or_default(),
        last_day: result
            .days
            .last()
            .map(|d| d.as_of.to_string())
            .unwrap_or_default(),
        exceptions: result
            .days
            .iter()
            .filter(|day| day.exception)
            .map(|day| (day.outcome.to_string(), day.var, day.realised_pnl))
            .collect(),
        kupiec: result.kupiec,
    })
}

/// The linear exposure of an account without options: (history column, units).
pub(crate) fn linear_columns(
    portfolio: &Portfolio,
    history: &PriceHistory,
) -> Result<Vec<(usize, f64)>, RiskError> {
    columns_of(&linear_exposures(portfolio), history)
}

/// Units held per underlying, in the order first met: each position's `exposure_of` (an
/// option's contracts as units of its underlying) and each balance of an unpegged coin.
fn linear_exposures(portfolio: &Portfolio) -> Vec<(String, f64)> {
    let mut exposures: Vec<(String, f64)> = Vec::new();
    let mut add = |name: &str, units: f64| match exposures.iter_mut().find(|(n, _)| n == name) {
        Some((_, total)) => *total += units,
        None => exposures.push((name.to_owned(), units)),
    };
    for position in &portfolio.positions {
        let instrument = &position.instrument;
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
    exposures
}

/// Each underlying's history column beside its units.
fn columns_of(
    exposures: &[(String, f64)],
    history: &PriceHistory,
) -> Result<Vec<(usize, f64)>, RiskError> {
    exposures
        .iter()
        .map(|(name, units)| history.index_of(name).map(|index| (index, *units)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(history_error)
}
