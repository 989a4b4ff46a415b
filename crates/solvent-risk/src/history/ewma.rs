//! The RiskMetrics EWMA volatility forecast of daily log returns.

use super::*;

/// RiskMetrics decay factor for daily data (J.P. Morgan/Reuters, "RiskMetrics — Technical
/// Document", 4th ed., 1996, section 5.3: lambda = 0.94 for the daily data set).
pub const RISKMETRICS_DAILY_LAMBDA: f64 = 0.94;

/// Number of initial returns whose sample variance seeds the EWMA recursion.
///
/// The recursion needs a starting variance. RiskMetrics leaves the choice open; 30 returns (about
/// one month) is long enough for a stable sample variance, and because the seed uses only the
/// first 30 returns, every forecast from return 30 on is made from earlier returns alone. Filtered
/// scenarios therefore start at return 30, which keeps backtests free of look-ahead.
pub const EWMA_SEED_RETURNS: usize = 30;

/// EWMA volatility forecasts of a return series (built by [`ewma_volatility`]; never empty,
/// every element positive and finite).
#[derive(Clone, Debug, PartialEq)]
pub struct EwmaVolatility {
    pub(super) sigma: Vec<f64>,
}

impl EwmaVolatility {
    /// The forecasts: `sigma()[t]` is the volatility forecast for return `t`, made from the
    /// returns before it; `sigma()[returns.len()]` is the forecast for the next, unseen return
    /// ("now"). One more element than the returns.
    #[must_use]
    pub fn sigma(&self) -> &[f64] {
        &self.sigma
    }

    /// The latest forecast: the volatility for the day after the last return.
    #[must_use]
    pub fn now(&self) -> f64 {
        // Never empty: the constructor pushes the seed.
        self.sigma[self.sigma.len() - 1]
    }
}

/// RiskMetrics EWMA volatility (J.P. Morgan/Reuters, "RiskMetrics — Technical Document", 4th
/// ed., 1996, section 5.2.1):
/// `sigma^2[t + 1] = lambda * sigma^2[t] + (1 - lambda) * r[t]^2` (zero-mean returns), seeded with
/// `sigma^2[0]` = the sample variance (mean removed, `n - 1` denominator) of the first
/// `seed_returns` returns ([`EWMA_SEED_RETURNS`] in the filtered simulation).
///
/// # Errors
/// [`HistoryError::InvalidParameter`] when `lambda` is not in (0, 1) or `seed_returns < 2`;
/// [`HistoryError::TooShort`] when there are fewer returns than `seed_returns`;
/// [`HistoryError::NotFinite`] for a non-finite return (or a variance that leaves the range of
/// `f64`); [`HistoryError::ZeroVariance`] when the seed returns are all equal.
pub fn ewma_volatility(
    returns: &[f64],
    lambda: f64,
    seed_returns: usize,
) -> Result<EwmaVolatility, HistoryError> {
    check_lambda(lambda)?;
    if seed_returns < 2 {
        return Err(HistoryError::InvalidParameter {
            name: "seed_returns",
            value: seed_returns.to_string(),
            requirement: "at least 2 (a sample variance needs two returns)",
        });
    }
    if returns.len() < seed_returns {
        return Err(HistoryError::TooShort {
            what: "returns to seed the EWMA variance".to_owned(),
            needed: seed_returns,
            available: returns.len(),
        });
    }
    if let Some((t, r)) = returns.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(HistoryError::NotFinite {
            what: format!("return {t}"),
            value: *r,
        });
    }
    let seed = &returns[..seed_returns];
    let mean = seed.iter().sum::<f64>() / seed_returns as f64;
    let variance =
        seed.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (seed_returns - 1) as f64;
    if variance <= 0.0 {
        return Err(HistoryError::ZeroVariance {
            what: format!("the first {seed_returns} returns (EWMA seed)"),
        });
    }
    let mut sigma = Vec::with_capacity(returns.len() + 1);
    let mut v = variance;
    sigma.push(v.sqrt());
    for (t, r) in returns.iter().enumerate() {
        v = lambda * v + (1.0 - lambda) * r * r;
        // Positive unless it underflows after thousands of zero returns; finite unless a
        // return near f64::MAX overflows its square.
        if !(v > 0.0 && v.is_finite()) {
            return Err(HistoryError::NotFinite {
                what: format!("EWMA variance after return {t}"),
                value: v,
            });
        }
        sigma.push(v.sqrt());
    }
    Ok(EwmaVolatility { sigma })
}

pub(super) fn check_lambda(lambda: f64) -> Result<(), HistoryError> {
    if lambda > 0.0 && lambda < 1.0 {
        Ok(())
    } else {
        Err(HistoryError::InvalidParameter {
            name: "lambda",
            value: lambda.to_string(),
            requirement: "must be in (0, 1)",
        })
    }
}
