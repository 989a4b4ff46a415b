//! Conservative rounding, decided in one place.
//!
//! Every figure Solvent reports is rounded to the precision of the asset it is expressed in, and
//! the rounding never favours the account over the venue (DESIGN.md 4): a requirement (margin,
//! a debt) rounds **up**, a credit (equity, collateral value, withdrawable) rounds **down**. Risk
//! math done in `f64` re-enters the exact world only through [`requirement_from_f64`] and
//! [`credit_from_f64`], which also refuse NaN and infinity.

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

/// A risk figure that cannot become a ledger amount.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RoundingError {
    /// The figure was NaN or infinite: a bug upstream, reported instead of hidden.
    #[error("{what} is not a finite number ({value})")]
    NotFinite {
        /// What the figure was.
        what: String,
        /// The value.
        value: f64,
    },
    /// The figure does not fit a decimal (beyond about 7.9e28).
    #[error("{what} is too large to represent exactly ({value})")]
    OutOfRange {
        /// What the figure was.
        what: String,
        /// The value.
        value: f64,
    },
}

/// Rounds a requirement up (toward positive infinity) to `decimals`.
#[must_use]
pub fn requirement(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::ToPositiveInfinity)
}

/// Rounds a credit down (toward negative infinity) to `decimals`.
#[must_use]
pub fn credit(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::ToNegativeInfinity)
}

fn exact_from_f64(value: f64, what: &str) -> Result<Decimal, RoundingError> {
    if !value.is_finite() {
        return Err(RoundingError::NotFinite {
            what: what.to_owned(),
            value,
        });
    }
    // `from_f64_retain` keeps the double's exact binary value (as far as 28 digits allow), so the
    // direction of the rounding below is decided on the true figure, not on a printed one.
    Decimal::from_f64_retain(value)
        .or_else(|| Decimal::from_f64(value))
        .ok_or_else(|| RoundingError::OutOfRange {
            what: what.to_owned(),
            value,
        })
}

/// Turns an `f64` risk figure into a requirement rounded up to `decimals`.
///
/// # Errors
/// [`RoundingError`] when the figure is not finite or out of range.
pub fn requirement_from_f64(
    value: f64,
    decimals: u32,
    what: &str,
) -> Result<Decimal, RoundingError> {
    exact_from_f64(value, what).map(|exact| requirement(exact, decimals))
}

/// Turns an `f64` risk figure into a credit rounded down to `decimals`.
///
/// # Errors
/// [`RoundingError`] when the figure is not finite or out of range.
pub fn credit_from_f64(value: f64, decimals: u32, what: &str) -> Result<Decimal, RoundingError> {
    exact_from_f64(value, what).map(|exact| credit(exact, decimals))
}

/// Turns an `f64` into a decimal keeping its nearest short representation (no direction), for
/// prices derived by a model (an option mark from Black-76) that are inputs, not requirements.
///
/// # Errors
/// [`RoundingError`] when the figure is not finite or out of range.
pub fn model_price_from_f64(
    value: f64,
    what: impl std::fmt::Display,
) -> Result<Decimal, RoundingError> {
    // `what` is written out only for an error: a model mark is computed for every option an
    // account holds at every valuation.
    if !value.is_finite() {
        return Err(RoundingError::NotFinite {
            what: what.to_string(),
            value,
        });
    }
    Decimal::from_f64(value).ok_or_else(|| RoundingError::OutOfRange {
        what: what.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn requirements_round_up_and_credits_down_on_both_signs() {
        assert_eq!(requirement(dec!(1.0000001), 6), dec!(1.000001));
        assert_eq!(requirement(dec!(-1.0000009), 6), dec!(-1.000000));
        assert_eq!(credit(dec!(1.0000009), 6), dec!(1.000000));
        assert_eq!(credit(dec!(-1.0000001), 6), dec!(-1.000001));
        assert_eq!(requirement(dec!(28125), 6), dec!(28125));
    }

    #[test]
    fn f64_figures_are_rounded_on_their_exact_binary_value() {
        // 0.1 as a double is 0.1000000000000000055..., so a requirement rounds it up.
        assert_eq!(
            requirement_from_f64(0.1, 18, "x").unwrap(),
            dec!(0.100000000000000006)
        );
        assert_eq!(
            credit_from_f64(0.1, 18, "x").unwrap(),
            dec!(0.100000000000000005)
        );
        assert!(matches!(
            requirement_from_f64(f64::NAN, 6, "margin"),
            Err(RoundingError::NotFinite { .. })
        ));
        assert!(matches!(
            credit_from_f64(f64::INFINITY, 6, "equity"),
            Err(RoundingError::NotFinite { .. })
        ));
    }

    proptest! {
        #[test]
        fn rounding_never_favours_the_account(mantissa in -10_i64.pow(15)..10_i64.pow(15), scale in 0_u32..12, decimals in 0_u32..8) {
            let value = Decimal::new(mantissa, scale);
            let up = requirement(value, decimals);
            let down = credit(value, decimals);
            prop_assert!(up >= value);
            prop_assert!(down <= value);
            prop_assert!(up - down <= Decimal::new(1, decimals));
            prop_assert!(up.scale() <= decimals && down.scale() <= decimals);
        }
    }
}
