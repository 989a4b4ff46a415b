//! GARCH(1,1) volatility: the Gaussian log-likelihood, a maximum-likelihood fit by a documented
//! grid search, and the forecasts of a return series refitted as history accrues.

use super::*;

/// GARCH(1,1) parameters (T. Bollerslev, "Generalized autoregressive conditional
/// heteroskedasticity", Journal of Econometrics 31, 1986):
/// `sigma^2[t] = omega + alpha * r[t - 1]^2 + beta * sigma^2[t - 1]` on zero-mean daily log
/// returns. Stationary when `alpha + beta < 1`, with long-run variance `omega / (1 - alpha - beta)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GarchParams {
    /// Constant of the variance recursion (daily variance units), positive.
    pub omega: f64,
    /// Weight of yesterday's squared return, `>= 0`.
    pub alpha: f64,
    /// Weight of yesterday's variance, `>= 0`, with `alpha + beta < 1`.
    pub beta: f64,
}

/// A GARCH(1,1) fit: the parameters, the variance the recursion starts from and the maximised
/// log-likelihood.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GarchFit {
    /// The fitted parameters.
    pub params: GarchParams,
    /// `sigma^2[0]`, the sample second moment of the fitted returns (mean of `r^2`).
    pub initial_variance: f64,
    /// The Gaussian log-likelihood at the fit ([`garch_log_likelihood`]).
    pub log_likelihood: f64,
}

/// Fewest returns a GARCH fit accepts (a year of daily data: fewer leave `alpha` and `beta`
/// poorly identified).
pub const GARCH_MIN_RETURNS: usize = 250;

/// Largest `alpha + beta` the fit considers: the process stays stationary with a finite
/// long-run variance.
const MAX_PERSISTENCE: f64 = 0.999;

impl GarchParams {
    /// Checks the constraints: `omega > 0`, `alpha >= 0`, `beta >= 0`, `alpha + beta < 1`, all
    /// finite.
    ///
    /// # Errors
    /// [`HistoryError::InvalidParameter`] naming the first parameter that breaks them.
    pub fn validate(&self) -> Result<(), HistoryError> {
        let fail = |name: &'static str, value: f64, requirement: &'static str| {
            Err(HistoryError::InvalidParameter {
                name,
                value: value.to_string(),
                requirement,
            })
        };
        if !(self.omega > 0.0 && self.omega.is_finite()) {
            return fail("omega", self.omega, "must be positive and finite");
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return fail("alpha", self.alpha, "must be >= 0 and finite");
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return fail("beta", self.beta, "must be >= 0 and finite");
        }
        if self.alpha + self.beta >= 1.0 {
            return fail(
                "alpha + beta",
                self.alpha + self.beta,
                "must be below 1 (a stationary process)",
            );
        }
        Ok(())
    }
}

/// Gaussian log-likelihood of zero-mean returns under GARCH(1,1) (Bollerslev 1986, eq. 17;
/// J. Hamilton, "Time Series Analysis", 1994, eq. 21.1.17):
/// `L = -1/2 * sum_t [ln(2 pi) + ln sigma^2[t] + r[t]^2 / sigma^2[t]]`, with the recursion of
/// [`GarchParams`] started at `sigma^2[0] = initial_variance`.
///
/// # Errors
/// Invalid parameters, a non-positive or non-finite `initial_variance`, an empty or non-finite
/// series.
pub fn garch_log_likelihood(
    returns: &[f64],
    params: &GarchParams,
    initial_variance: f64,
) -> Result<f64, HistoryError> {
    params.validate()?;
    check_returns(returns, 1)?;
    if !(initial_variance > 0.0 && initial_variance.is_finite()) {
        return Err(HistoryError::InvalidParameter {
            name: "initial_variance",
            value: initial_variance.to_string(),
            requirement: "must be positive and finite",
        });
    }
    let value = log_likelihood(returns, params, initial_variance);
    if value.is_finite() {
        Ok(value)
    } else {
        Err(HistoryError::NotFinite {
            what: "GARCH log-likelihood".to_owned(),
            value,
        })
    }
}

/// The likelihood without checks (the grid search evaluates it hundreds of times).
fn log_likelihood(returns: &[f64], params: &GarchParams, initial_variance: f64) -> f64 {
    let ln_two_pi = (2.0 * std::f64::consts::PI).ln();
    let mut variance = initial_variance;
    let mut sum = 0.0;
    for r in returns {
        sum += ln_two_pi + variance.ln() + r * r / variance;
        variance = params.omega + params.alpha * r * r + params.beta * variance;
    }
    -0.5 * sum
}

fn check_returns(returns: &[f64], needed: usize) -> Result<(), HistoryError> {
    if returns.len() < needed {
        return Err(HistoryError::TooShort {
            what: "returns for a GARCH(1,1) fit".to_owned(),
            needed,
            available: returns.len(),
        });
    }
    if let Some((t, r)) = returns.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(HistoryError::NotFinite {
            what: format!("return {t}"),
            value: *r,
        });
    }
    Ok(())
}

/// Fits GARCH(1,1) by maximum likelihood with variance targeting (R. Engle and J. Mezrich,
/// "GARCH for groups", Risk 9(8), 1996): `omega = v (1 - alpha - beta)` with `v` the sample
/// second moment of `returns` (which also starts the recursion), so the long-run variance is the
/// sample's and only `alpha`, `beta` are searched. The search is a grid refined twice, each
/// stage an 11 x 11 (first 17 x 21) lattice centred on the previous best, with steps 0.025,
/// 0.005 and 0.001, inside `alpha, beta >= 0`, `alpha + beta <= 0.999`. The likelihood of
/// GARCH(1,1) is smooth and, in practice, unimodal in this region, so the grid finds the
/// maximum to within the last step (0.001) without a gradient, and never fails to converge.
///
/// # Errors
/// [`HistoryError::TooShort`] below [`GARCH_MIN_RETURNS`] returns; [`HistoryError::NotFinite`]
/// for a non-finite return; [`HistoryError::ZeroVariance`] when every return is zero.
pub fn fit_garch(returns: &[f64]) -> Result<GarchFit, HistoryError> {
    check_returns(returns, GARCH_MIN_RETURNS)?;
    let variance = returns.iter().map(|r| r * r).sum::<f64>() / returns.len() as f64;
    if !(variance > 0.0 && variance.is_finite()) {
        return Err(HistoryError::ZeroVariance {
            what: "the returns of a GARCH fit".to_owned(),
        });
    }
    let evaluate = |alpha: f64, beta: f64| -> Option<f64> {
        let persistence = alpha + beta;
        if alpha < 0.0 || beta < 0.0 || persistence > MAX_PERSISTENCE {
            return None;
        }
        let params = GarchParams {
            omega: variance * (1.0 - persistence),
            alpha,
            beta,
        };
        let value = log_likelihood(returns, &params, variance);
        value.is_finite().then_some(value)
    };
    // Stage 1: alpha 0..0.40, beta 0.50..1.00 (step 0.025); then two refinements.
    let search = |best: &mut (f64, f64, f64), alphas: &[f64], betas: &[f64]| {
        for &alpha in alphas {
            for &beta in betas {
                if let Some(value) = evaluate(alpha, beta)
                    && value > best.2
                {
                    *best = (alpha, beta, value);
                }
            }
        }
    };
    let mut best = (0.05, 0.90, f64::NEG_INFINITY);
    let alphas: Vec<f64> = (0..=16).map(|i| 0.025 * f64::from(i)).collect();
    let betas: Vec<f64> = (0..=20).map(|i| 0.5 + 0.025 * f64::from(i)).collect();
    search(&mut best, &alphas, &betas);
    for step in [0.005, 0.001] {
        let lattice = |centre: f64| -> Vec<f64> {
            (-5..=5)
                .map(|i| centre + step * f64::from(i))
                .filter(|v| *v >= 0.0)
                .collect()
        };
        let (alphas, betas) = (lattice(best.0), lattice(best.1));
        search(&mut best, &alphas, &betas);
    }
    let (alpha, beta, log_likelihood) = best;
    if !log_likelihood.is_finite() {
        return Err(HistoryError::NotFinite {
            what: "GARCH log-likelihood at every grid point".to_owned(),
            value: log_likelihood,
        });
    }
    Ok(GarchFit {
        params: GarchParams {
            omega: variance * (1.0 - alpha - beta),
            alpha,
            beta,
        },
        initial_variance: variance,
        log_likelihood,
    })
}

/// Daily volatility forecasts of a return series, each made from earlier returns only.
#[derive(Clone, Debug, PartialEq)]
pub struct VolForecasts {
    /// Index of the first return forecast (the ones before it lack the history a forecast
    /// needs).
    pub first: usize,
    /// `sigma[i]` is the forecast for return `first + i`; the last element is the forecast for
    /// the day after the last return ("now"). Every element positive and finite.
    pub sigma: Vec<f64>,
    /// `params[i]`: the GARCH fit behind `sigma[i]`, whose mean reversion sets the variance of
    /// a period of several days ([`period_variance`]); empty for a model without one (EWMA).
    pub params: Vec<GarchParams>,
}

/// The variance of the return over the next `days` days, from the daily variance forecast for
/// the first of them, `variance` (`sigma^2[t+1]`).
///
/// Without a GARCH fit (EWMA, whose forecast is flat: RiskMetrics' square-root-of-time rule,
/// J.P. Morgan/Reuters 1996, section 5.2.1) it is `days x variance`. With a fit, the expected
/// daily variances revert to the long-run variance `V_L = omega / (1 - alpha - beta)` at the
/// rate `alpha + beta` (J. C. Hull, "Options, Futures, and Other Derivatives", chapter
/// "Estimating volatilities and correlations", section "Using GARCH(1,1) to forecast future
/// volatility": `E[sigma^2[t+k]] = V_L + (alpha + beta)^(k-1) (sigma^2[t+1] - V_L)`), and the
/// returns are uncorrelated, so the period's variance is their sum:
///
/// `sum over k = 1..days of V_L + (alpha + beta)^(k-1) (sigma^2[t+1] - V_L)`.
///
/// Above the long-run variance the period's variance is less than `days x variance` (the
/// forecast decays over the period); below it, more.
#[must_use]
pub fn period_variance(variance: f64, days: u32, params: Option<&GarchParams>) -> f64 {
    let Some(p) = params else {
        return f64::from(days) * variance;
    };
    let persistence = p.alpha + p.beta;
    let long_run = p.omega / (1.0 - persistence);
    let mut total = 0.0;
    let mut decay = 1.0;
    for _ in 0..days {
        total += long_run + decay * (variance - long_run);
        decay *= persistence;
    }
    total
}

/// GARCH(1,1) forecasts: the model is fitted ([`fit_garch`]) on the first
/// [`GARCH_MIN_RETURNS`] returns, then refitted every `refit_days` on all returns to date; between
/// fits the recursion runs daily with the last fit's parameters, started from
/// `sigma^2[0]` of that fit. No forecast uses a return on or after the day it forecasts.
///
/// # Errors
/// `refit_days` of 0; the errors of [`fit_garch`].
pub fn garch_forecasts(returns: &[f64], refit_days: usize) -> Result<VolForecasts, HistoryError> {
    if refit_days == 0 {
        return Err(HistoryError::InvalidParameter {
            name: "refit_days",
            value: "0".to_owned(),
            requirement: "must be at least 1",
        });
    }
    check_returns(returns, GARCH_MIN_RETURNS)?;
    let first = GARCH_MIN_RETURNS;
    let mut sigma = Vec::with_capacity(returns.len() - first + 1);
    let mut params = Vec::with_capacity(returns.len() - first + 1);
    let mut fit_at = first;
    while fit_at <= returns.len() {
        let fit = fit_garch(&returns[..fit_at])?;
        let p = fit.params;
        // Variance forecast for return `fit_at`, from the recursion over every return before it.
        let mut variance = fit.initial_variance;
        for r in &returns[..fit_at] {
            variance = p.omega + p.alpha * r * r + p.beta * variance;
        }
        let until = (fit_at + refit_days).min(returns.len() + 1);
        for t in fit_at..until {
            if !(variance > 0.0 && variance.is_finite()) {
                return Err(HistoryError::NotFinite {
                    what: format!("GARCH variance forecast for return {t}"),
                    value: variance,
                });
            }
            sigma.push(variance.sqrt());
            params.push(p);
            if let Some(r) = returns.get(t) {
                variance = p.omega + p.alpha * r * r + p.beta * variance;
            }
        }
        fit_at = until;
        if until == returns.len() + 1 {
            break;
        }
    }
    Ok(VolForecasts {
        first,
        sigma,
        params,
    })
}
