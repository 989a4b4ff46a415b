//! Value at risk and expected shortfall of a P&L vector, with the tail scenarios and weights
//! that attribute the shortfall.

use super::*;

/// Snap distance for the tail size `n * (1 - level)`: within it of an integer, the integer is
/// used, so that `40 * (1 - 0.975)` (1.000000000000001 in binary floating point) is one scenario.
pub(super) const TAIL_SIZE_SNAP: f64 = 1e-9;

pub(super) fn check_level(name: &'static str, level: f64) -> Result<(), HistoryError> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(HistoryError::InvalidParameter {
            name,
            value: level.to_string(),
            requirement: "must be in (0, 1), e.g. 0.975",
        })
    }
}

/// Value at risk of a P&L vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueAtRisk {
    /// Confidence level, e.g. 0.99.
    pub level: f64,
    /// The loss (negated P&L) of the quantile scenario.
    pub loss: f64,
    /// Index of the quantile scenario in the P&L vector.
    pub scenario: usize,
}

/// One scenario of the tail and its weight in the expected shortfall.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TailWeight {
    /// Index of the scenario in the P&L vector.
    pub scenario: usize,
    /// Its weight; the weights of a tail sum to 1.
    pub weight: f64,
}

/// Expected shortfall of a P&L vector, with the tail that makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedShortfall {
    /// Confidence level, e.g. 0.975.
    pub level: f64,
    /// `sum(weight_i * loss_i)` over the tail; never below `var.loss`.
    pub loss: f64,
    /// The value at risk at the same level (the tail's boundary).
    pub var: ValueAtRisk,
    /// Tail scenarios, worst first, with their weights. Any P&L split (per position, per
    /// underlying) gives that part's contribution as `sum(weight_i * -pnl_part_i)`, and the
    /// contributions add up to `loss` (to rounding).
    pub tail: Vec<TailWeight>,
}

/// Scenario indices sorted from the worst P&L to the best (ties by index, so deterministic).
pub(super) fn worst_first(pnls: &[f64]) -> Result<Vec<usize>, HistoryError> {
    if pnls.is_empty() {
        return Err(HistoryError::TooShort {
            what: "scenario P&Ls".to_owned(),
            needed: 1,
            available: 0,
        });
    }
    if let Some((i, p)) = pnls.iter().enumerate().find(|(_, p)| !p.is_finite()) {
        return Err(HistoryError::NotFinite {
            what: format!("P&L of scenario {i}"),
            value: *p,
        });
    }
    let mut order: Vec<usize> = (0..pnls.len()).collect();
    order.sort_by(|&a, &b| pnls[a].total_cmp(&pnls[b]).then(a.cmp(&b)));
    Ok(order)
}

/// Tail size `w = n * (1 - level)` split into whole scenarios and the boundary's fraction.
pub(super) fn tail_size(n: usize, level: f64) -> (f64, usize, f64) {
    let w = n as f64 * (1.0 - level);
    let nearest = w.round();
    let w = if (w - nearest).abs() <= TAIL_SIZE_SNAP {
        nearest
    } else {
        w
    };
    let whole = w.floor();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let count = whole as usize;
    (w, count, w - whole)
}

/// Value at risk at `level` of the scenario P&Ls `pnls`: the loss of the `(floor(w) + 1)`-th
/// worst scenario, `w = n * (1 - level)` (`w` within 1e-9 of an integer counts as that integer).
/// This is the lower `level`-quantile of the empirical loss distribution,
/// `inf { x : F_n(x) >= level }`, the VaR of Acerbi and Tasche ("On the coherence of expected
/// shortfall", Journal of Banking & Finance 26, 2002, definition 2.1) applied to the empirical
/// distribution. With 250 scenarios at 99%, `w = 2.5` and VaR is the 3rd worst loss.
///
/// # Errors
/// [`HistoryError::InvalidParameter`] when `level` is not in (0, 1); [`HistoryError::TooShort`]
/// for no P&L; [`HistoryError::NotFinite`] for a non-finite P&L.
pub fn value_at_risk(pnls: &[f64], level: f64) -> Result<ValueAtRisk, HistoryError> {
    check_level("level", level)?;
    let order = worst_first(pnls)?;
    Ok(var_from_order(pnls, &order, level))
}

pub(super) fn var_from_order(pnls: &[f64], order: &[usize], level: f64) -> ValueAtRisk {
    let (_, count, _) = tail_size(pnls.len(), level);
    let scenario = order[count.min(pnls.len() - 1)];
    ValueAtRisk {
        level,
        loss: -pnls[scenario],
        scenario,
    }
}

/// Expected shortfall at `level` (`ES_97.5` for 0.975: the mean loss of the worst 2.5% of
/// scenarios). With `w = n * (1 - level)` and the losses `L(1) >= L(2) >= ...`:
/// `ES = (L(1) + ... + L(floor(w)) + (w - floor(w)) * L(floor(w) + 1)) / w`,
/// the empirical estimator of Acerbi and Tasche ("On the coherence of expected shortfall",
/// Journal of Banking & Finance 26, 2002, proposition 4.1): whole scenarios weigh `1 / w`, the
/// boundary scenario `(w - floor(w)) / w`, so the tail always has probability mass exactly
/// `1 - level` and the estimator is coherent. When `w < 1` the tail is the worst scenario alone.
/// The sum is formed as `VaR + sum(weight_i * (L_i - VaR))`, whose terms are non-negative, so
/// `ES >= VaR` holds exactly in floating point.
///
/// # Errors
/// As [`value_at_risk`].
pub fn expected_shortfall(pnls: &[f64], level: f64) -> Result<ExpectedShortfall, HistoryError> {
    check_level("level", level)?;
    let order = worst_first(pnls)?;
    let var = var_from_order(pnls, &order, level);
    let (w, count, fraction) = tail_size(pnls.len(), level);
    let mut tail: Vec<TailWeight> = order[..count]
        .iter()
        .map(|&scenario| TailWeight {
            scenario,
            weight: 1.0 / w,
        })
        .collect();
    if fraction > 0.0 && count < pnls.len() {
        tail.push(TailWeight {
            scenario: order[count],
            weight: fraction / w,
        });
    }
    let excess: f64 = tail
        .iter()
        .map(|t| t.weight * (-pnls[t.scenario] - var.loss))
        .sum();
    Ok(ExpectedShortfall {
        level,
        loss: var.loss + excess,
        var,
        tail,
    })
}
