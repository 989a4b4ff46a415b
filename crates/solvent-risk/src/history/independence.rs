//! Christoffersen's independence test of a backtest's exceptions.

use super::*;

/// Christoffersen's tests of a sequence of exceptions.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ChristoffersenResult {
    /// Transitions from a day without an exception to one without (`n00`), to one with
    /// (`n01`), from a day with one to one without (`n10`) and to one with (`n11`).
    pub transitions: [usize; 4],
    /// The independence likelihood ratio `LR_ind`, chi-squared(1) under independence.
    pub lr_independence: f64,
    /// `P(chi2(1) >= LR_ind)`.
    pub p_independence: f64,
    /// Conditional coverage `LR_cc = LR_pof + LR_ind`, chi-squared(2) under the model.
    pub lr_conditional_coverage: f64,
    /// `P(chi2(2) >= LR_cc)`.
    pub p_conditional_coverage: f64,
    /// Whether independence is rejected at 5% (`p_independence < 0.05`).
    pub reject_independence_at_5pct: bool,
}

/// Christoffersen's independence and conditional-coverage tests (P. Christoffersen,
/// "Evaluating interval forecasts", International Economic Review 39(4), 1998, section 3):
/// with `n_ij` the days in state `j` after a day in state `i` (1 = exception),
/// `pi_01 = n01 / (n00 + n01)`, `pi_11 = n11 / (n10 + n11)`, `pi = (n01 + n11) / n`,
/// `LR_ind = -2 ln[(1 - pi)^(n00 + n10) pi^(n01 + n11)]
///           + 2 ln[(1 - pi_01)^n00 pi_01^n01 (1 - pi_11)^n10 pi_11^n11]`
/// (with `0 ln 0 = 0`), and `LR_cc = LR_pof + LR_ind` with Kupiec's `LR_pof` at `var_level` on
/// the same sequence.
///
/// # Errors
/// Fewer than two days; `var_level` outside (0, 1).
pub fn christoffersen(
    exceptions: &[bool],
    var_level: f64,
) -> Result<ChristoffersenResult, HistoryError> {
    if exceptions.len() < 2 {
        return Err(HistoryError::TooShort {
            what: "days for Christoffersen's test (one transition)".to_owned(),
            needed: 2,
            available: exceptions.len(),
        });
    }
    let mut n = [0usize; 4];
    for pair in exceptions.windows(2) {
        n[usize::from(pair[0]) * 2 + usize::from(pair[1])] += 1;
    }
    let [n00, n01, n10, n11] = n.map(|c| c as f64);
    // ln L = a ln(p) + b ln(1 - p), with 0 ln 0 = 0 (x_ln_x_over_y(x, y) is x ln(x / y)).
    let ln_l = |hits: f64, misses: f64| -> f64 {
        let total = hits + misses;
        if total == 0.0 {
            return 0.0;
        }
        x_ln_x_over_y(hits, total) + x_ln_x_over_y(misses, total)
    };
    let unrestricted = ln_l(n01, n00) + ln_l(n11, n10);
    let restricted = ln_l(n01 + n11, n00 + n10);
    let lr_independence = (2.0 * (unrestricted - restricted)).max(0.0);
    let exception_count = exceptions.iter().filter(|e| **e).count();
    let kupiec = kupiec_pof(exception_count, exceptions.len(), var_level)?;
    let lr_conditional_coverage = kupiec.likelihood_ratio + lr_independence;
    let chi1 = ChiSquared::new(1.0).map_err(|e| HistoryError::Statistics(e.to_string()))?;
    let chi2 = ChiSquared::new(2.0).map_err(|e| HistoryError::Statistics(e.to_string()))?;
    let p_independence = chi1.sf(lr_independence).clamp(0.0, 1.0);
    Ok(ChristoffersenResult {
        transitions: n,
        lr_independence,
        p_independence,
        lr_conditional_coverage,
        p_conditional_coverage: chi2.sf(lr_conditional_coverage).clamp(0.0, 1.0),
        reject_independence_at_5pct: p_independence < 0.05,
    })
}
