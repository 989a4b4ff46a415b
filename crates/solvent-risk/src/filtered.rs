//! Exact rounding from floating-point estimates: the fast path of standard margin.
//!
//! A margin figure is an exact rational `r` (decimal inputs, a few multiplications, perhaps one
//! division); the report needs `r` rounded to the asset's precision, up for a requirement and
//! down for a credit. Computing `r` in `Decimal` costs a few hundred nanoseconds per position.
//! Here `r` is estimated in `f64` as `x` with a proven bound `|x - r| <= error`, scaled to units of
//! the precision (`t = x * 10^p`), and:
//! - when no integer lies in `[t - error, t + error]`, both `ceil` and `floor` of `r` are known;
//! - when an integer `n` lies in it and the exact denominator `D` of `r * 10^p` is known with
//!   `2 * error < 1 / D`, then `r == n` (any other multiple of `1/D` is farther than `2 * error`);
//! - otherwise the answer is uncertain and the caller falls back to exact `Decimal` arithmetic.
//!
//! This is the "floating-point filter" of exact geometric computation (Shewchuk, "Adaptive
//! Precision Floating-Point Arithmetic and Fast Robust Geometric Predicates", 1997): the result
//! is always the exact one; the filter only decides how cheaply it is found.

/// Unit roundoff of `f64` (2^-53).
const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// Relative error bound applied to the magnitude of every estimate. Each estimate here takes at
/// most ten roundings (decimal-to-double conversions of inputs included, each within 2 ulp), so
/// 64 unit roundoffs is a generous, safe bound.
pub const ERROR_FACTOR: f64 = 64.0 * UNIT_ROUNDOFF;

/// Largest unit count handled (2^62); beyond it the exact path is used.
const MAX_UNITS: f64 = 4.611_686_018_427_388e18;

/// Which way a figure rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A requirement: toward positive infinity.
    Up,
    /// A credit: toward negative infinity.
    Down,
}

/// Rounds the exact value estimated by `estimate` (within `error`, both in the figure's unit,
/// e.g. USDT) to a whole number of `10^-decimals` units in `direction`. `denominator` bounds the
/// exact denominator of the value expressed in those units (`None`: unknown). Returns `None` when
/// the estimate cannot decide, and the caller must compute exactly.
#[must_use]
pub fn certain_units(
    estimate: f64,
    error: f64,
    scale: f64,
    denominator: Option<f64>,
    direction: Direction,
) -> Option<i64> {
    let units = estimate * scale;
    let error = error * scale + units.abs() * 2.0 * UNIT_ROUNDOFF;
    if !units.is_finite() || !error.is_finite() || units.abs() + error >= MAX_UNITS || error >= 0.25
    {
        return None;
    }
    let low = units - error;
    let high = units + error;
    let nearest_below_high = floor(high);
    #[allow(clippy::cast_precision_loss)]
    let rounded = if nearest_below_high as f64 >= low {
        // An integer lies within the bound: the value is it exactly, if the denominator says so.
        match denominator {
            Some(denominator) if 2.0 * error * denominator < 1.0 => nearest_below_high,
            _ => return None,
        }
    } else {
        match direction {
            // No integer in [low, high]: ceil(high) = floor(high) + 1 = floor(low) + 1.
            Direction::Up => nearest_below_high + 1,
            Direction::Down => nearest_below_high,
        }
    };
    Some(rounded)
}

/// `floor` of a finite `x` with `|x| < 2^62`, by truncation: a call to libm's `floor` costs more
/// than the whole estimate on CPUs without SSE4.1's `roundsd`.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn floor(x: f64) -> i64 {
    let truncated = x as i64;
    if (truncated as f64) > x {
        truncated - 1
    } else {
        truncated
    }
}

/// `10^exponent` as `f64` when it is a useful denominator bound (`None` past 10^15, where the
/// exactness test could never pass at the precisions in use).
#[must_use]
pub fn power_of_ten(exponent: i64) -> Option<f64> {
    match exponent {
        i64::MIN..=0 => Some(1.0),
        1..=15 => i32::try_from(exponent).ok().map(|e| 10f64.powi(e)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_from_a_boundary_both_directions_are_known() {
        // 1501.93925 USDT to 6 decimals... estimate 1501.9392503 with a tiny error.
        assert_eq!(
            certain_units(1_501.939_250_3, 1e-12, 1e6, None, Direction::Up),
            Some(1_501_939_251)
        );
        assert_eq!(
            certain_units(1_501.939_250_3, 1e-12, 1e6, None, Direction::Down),
            Some(1_501_939_250)
        );
    }

    #[test]
    fn on_a_boundary_the_denominator_decides() {
        // 300387.84 x 0.005 = 1501.9392 exactly; in f64 it is a hair off.
        let estimate = 300_387.84_f64 * 0.005;
        let error = ERROR_FACTOR * estimate;
        // Exact scale 2 + 3 = 5 <= 6 decimals: the value is a whole number of units.
        assert_eq!(
            certain_units(estimate, error, 1e6, Some(1.0), Direction::Up),
            Some(1_501_939_200)
        );
        assert_eq!(
            certain_units(estimate, error, 1e6, Some(1.0), Direction::Down),
            Some(1_501_939_200)
        );
        // Unknown denominator: undecidable, the caller computes exactly.
        assert_eq!(
            certain_units(estimate, error, 1e6, None, Direction::Up),
            None
        );
    }

    #[test]
    fn non_finite_and_huge_estimates_are_left_to_the_exact_path() {
        assert_eq!(
            certain_units(f64::NAN, 0.0, 1e6, Some(1.0), Direction::Up),
            None
        );
        assert_eq!(
            certain_units(1e15, 1e-3, 1e6, Some(1.0), Direction::Up),
            None
        );
    }
}
