//! Correlation of daily log returns (Pearson or EWMA), for the cross-underlying offset.

use super::*;

/// A correlation matrix of daily log returns.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationMatrix {
    /// Row and column names.
    pub underlyings: Vec<String>,
    /// Symmetric, unit diagonal, entries in [-1, 1].
    pub matrix: DMatrix<f64>,
    /// Number of joint returns used.
    pub observations: usize,
}

impl CorrelationMatrix {
    /// Correlation of `a` and `b`, if both are in the matrix.
    #[must_use]
    pub fn get(&self, a: &str, b: &str) -> Option<f64> {
        let i = self.underlyings.iter().position(|u| u == a)?;
        let j = self.underlyings.iter().position(|u| u == b)?;
        Some(self.matrix[(i, j)])
    }
}

/// Correlation matrix of the daily log returns of `underlyings` over the whole of `history`
/// (its dates are already the joint ones; use [`PriceHistory::window`] for a sub-period).
///
/// - `lambda = None`: Pearson's sample correlation (means removed).
/// - `lambda = Some(l)`: RiskMetrics EWMA correlation ("RiskMetrics — Technical Document", 1996,
///   section 5.3): zero-mean covariances with weights `(1 - l) l^(n - 1 - t)`, normalised to sum
///   to 1 over the `n` returns, divided by the matching EWMA standard deviations.
///
/// Entries are clamped to [-1, 1] (rounding can exceed it by an ulp), the diagonal is exactly 1
/// and the matrix exactly symmetric.
///
/// # Errors
/// [`HistoryError::UnknownUnderlying`]; [`HistoryError::InvalidParameter`] for no or repeated
/// underlyings or `lambda` outside (0, 1); [`HistoryError::ZeroVariance`] for an underlying
/// whose price never moved (its correlation is undefined).
pub fn correlation_matrix(
    history: &PriceHistory,
    underlyings: &[&str],
    lambda: Option<f64>,
) -> Result<CorrelationMatrix, HistoryError> {
    if underlyings.is_empty() {
        return Err(HistoryError::InvalidParameter {
            name: "underlyings",
            value: "[]".to_owned(),
            requirement: "at least one underlying",
        });
    }
    let mut columns = Vec::with_capacity(underlyings.len());
    for (i, name) in underlyings.iter().enumerate() {
        if underlyings[..i].contains(name) {
            return Err(HistoryError::InvalidParameter {
                name: "underlyings",
                value: (*name).to_owned(),
                requirement: "each underlying at most once",
            });
        }
        columns.push(history.index_of(name)?);
    }
    if let Some(lambda) = lambda {
        check_lambda(lambda)?;
    }
    let n = history.dates.len() - 1;
    let k = columns.len();
    let means: Vec<f64> = columns
        .iter()
        .map(|&u| match lambda {
            None => history.returns[u].iter().sum::<f64>() / n as f64,
            Some(_) => 0.0,
        })
        .collect();
    let weights = return_weights(n, lambda);
    // Row t, column j: sqrt(w_t) * (r_t - mean); then X^T X is the weighted covariance.
    let x = DMatrix::from_fn(n, k, |t, j| {
        weights[t].sqrt() * (history.returns[columns[j]][t] - means[j])
    });
    let covariance = x.tr_mul(&x);
    for (j, name) in underlyings.iter().enumerate() {
        if covariance[(j, j)] <= 0.0 {
            return Err(HistoryError::ZeroVariance {
                what: format!("{name}: daily log returns"),
            });
        }
    }
    let mut matrix = DMatrix::identity(k, k);
    for i in 0..k {
        for j in (i + 1)..k {
            let rho = covariance[(i, j)] / (covariance[(i, i)] * covariance[(j, j)]).sqrt();
            if !rho.is_finite() {
                return Err(HistoryError::NotFinite {
                    what: format!("correlation of {} and {}", underlyings[i], underlyings[j]),
                    value: rho,
                });
            }
            let rho = rho.clamp(-1.0, 1.0);
            matrix[(i, j)] = rho;
            matrix[(j, i)] = rho;
        }
    }
    Ok(CorrelationMatrix {
        underlyings: underlyings.iter().map(|u| (*u).to_owned()).collect(),
        matrix,
        observations: n,
    })
}

/// Observation weights summing to 1: equal, or RiskMetrics EWMA (newest weighs most).
pub(super) fn return_weights(n: usize, lambda: Option<f64>) -> Vec<f64> {
    let raw: Vec<f64> = match lambda {
        None => vec![1.0; n],
        Some(l) => {
            let mut w = vec![0.0; n];
            let mut weight = 1.0 - l;
            for slot in w.iter_mut().rev() {
                *slot = weight;
                weight *= l;
            }
            w
        }
    };
    let total: f64 = raw.iter().sum();
    raw.iter().map(|w| w / total).collect()
}
