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
    directed(value, decimals, Direction::Up, what)
}

/// Turns an `f64` risk figure into a credit rounded down to `decimals`.
///
/// # Errors
/// [`RoundingError`] when the figure is not finite or out of range.
pub fn credit_from_f64(value: f64, decimals: u32, what: &str) -> Result<Decimal, RoundingError> {
    directed(value, decimals, Direction::Down, what)
}

/// `value` rounded `direction` to `decimals`: by [`directed_from_f64`] where it answers, by
/// [`by_decimal`] otherwise.
fn directed(
    value: f64,
    decimals: u32,
    direction: Direction,
    what: &str,
) -> Result<Decimal, RoundingError> {
    match directed_from_f64(value, decimals, direction) {
        Some(rounded) => Ok(rounded),
        None => by_decimal(value, decimals, direction, what),
    }
}

/// The decimal path: the double's exact value as a decimal ([`exact_from_f64`]), rounded
/// `direction` to `decimals`.
fn by_decimal(
    value: f64,
    decimals: u32,
    direction: Direction,
    what: &str,
) -> Result<Decimal, RoundingError> {
    exact_from_f64(value, what).map(|exact| match direction {
        Direction::Up => requirement(exact, decimals),
        Direction::Down => credit(exact, decimals),
    })
}

/// Which way [`directed_from_f64`] rounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Toward positive infinity (a requirement).
    Up,
    /// Toward negative infinity (a credit).
    Down,
}

/// The decimal that [`exact_from_f64`] followed by a rounding `direction` to `decimals` gives,
/// in integer arithmetic on the double's exact binary value: `mantissa x 2^exponent x
/// 10^decimals`, split into the whole units and the remainder that decides the rounding. A
/// requirement taken from portfolio margin is rounded once per position at every report (an
/// account of 10,000 options spent a tenth of its report in `Decimal::from_f64_retain`).
///
/// `None` where this path does not vouch for the same answer, and the caller takes the decimal
/// path: a zero, non-finite or huge figure, more than 18 decimals, or a double so near a
/// multiple of `10^-decimals` that `from_f64_retain`'s 96-bit mantissa (it drops bits when a
/// multiplication by 5 would overflow, then rounds to 28 decimals) could land on its other
/// side. Elsewhere the two agree to the scale (the tests compare them over millions of figures).
fn directed_from_f64(value: f64, decimals: u32, direction: Direction) -> Option<Decimal> {
    const MANTISSA_BITS: u32 = 52;
    if !value.is_finite() || value == 0.0 || decimals > 18 {
        return None;
    }
    let bits = value.to_bits();
    let negative = value.is_sign_negative();
    let biased = i32::try_from((bits >> MANTISSA_BITS) & 0x7ff).ok()?;
    let fraction = bits & ((1_u64 << MANTISSA_BITS) - 1);
    // value = mantissa x 2^exponent exactly (subnormals have no implicit bit).
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1_u64 << MANTISSA_BITS), biased - 1075)
    };
    let scale = 10_u128.pow(decimals);
    // mantissa < 2^53 and scale <= 10^18 < 2^60: the product fits 113 bits.
    let scaled = u128::from(mantissa) * scale;
    let (units, remainder, denominator) = if exponent >= 0 {
        // A whole number: no remainder (`units` must still fit a decimal's 96 bits).
        let shift = u32::try_from(exponent).ok()?;
        if shift > 14 {
            return None;
        }
        (scaled << shift, 0_u128, 1_u128)
    } else {
        let shift = u32::try_from(-exponent).ok()?;
        if shift >= 127 {
            return None;
        }
        let denominator = 1_u128 << shift;
        (scaled >> shift, scaled & (denominator - 1), denominator)
    };
    if units >= 1_u128 << 95 {
        return None;
    }
    let magnitude_up = match direction {
        Direction::Up => !negative,
        Direction::Down => negative,
    };
    let rounded = if remainder == 0 {
        units
    } else {
        // How far the exact value lies from the two multiples of 10^-decimals around it,
        // against how far `from_f64_retain` may stray from it (relative 2^-84 covers the bits
        // it drops, 10^-28 its last rounding), with a factor of 2 for this estimate's own
        // rounding.
        let nearest = remainder.min(denominator - remainder);
        #[allow(clippy::cast_precision_loss)]
        let distance = nearest as f64 / denominator as f64 / scale as f64;
        let stray = value.abs() * 2_f64.powi(-84) + 1e-28;
        if distance <= 2.0 * stray {
            return None;
        }
        if magnitude_up { units + 1 } else { units }
    };
    let signed = i128::try_from(rounded).ok()?;
    let decimal = Decimal::from_i128_with_scale(if negative { -signed } else { signed }, decimals);
    // An exact multiple keeps the shortest scale, as the decimal path gives it; any other
    // figure has `decimals` places.
    Some(if remainder == 0 {
        decimal.normalize()
    } else {
        decimal
    })
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

    /// Wherever [`directed_from_f64`] answers, it gives the decimal path's figure.
    fn agree(value: f64, decimals: u32) -> Result<(), TestCaseError> {
        for direction in [Direction::Up, Direction::Down] {
            if let Some(fast) = directed_from_f64(value, decimals, direction) {
                let slow = by_decimal(value, decimals, direction, "x").ok();
                prop_assert_eq!(Some(fast), slow, "{} at {} decimals", value, decimals);
                // The same scale too: reports print it.
                prop_assert_eq!(
                    Some(fast.to_string()),
                    slow.map(|slow| slow.to_string()),
                    "{} at {} decimals",
                    value,
                    decimals
                );
            }
        }
        Ok(())
    }

    #[test]
    fn the_integer_path_answers_for_money_figures_and_keeps_their_scale() {
        for (value, decimals, up, down) in [
            (0.1, 2, dec!(0.11), dec!(0.10)),
            (0.5, 6, dec!(0.5), dec!(0.5)),
            (28125.0, 6, dec!(28125), dec!(28125)),
            (-1234.5678, 2, dec!(-1234.56), dec!(-1234.57)),
            (19.99, 8, dec!(19.99000000), dec!(19.98999999)),
            (
                1e15 + 0.25,
                1,
                dec!(1000000000000000.3),
                dec!(1000000000000000.2),
            ),
        ] {
            let fast_up = directed_from_f64(value, decimals, Direction::Up);
            let fast_down = directed_from_f64(value, decimals, Direction::Down);
            assert_eq!(fast_up, Some(up), "{value} up");
            assert_eq!(fast_down, Some(down), "{value} down");
            assert_eq!(fast_up.map(|d| d.to_string()), Some(up.to_string()));
            assert_eq!(fast_down.map(|d| d.to_string()), Some(down.to_string()));
        }
        // Refused: no figure, too many decimals, beyond a decimal's reach.
        for (value, decimals) in [(0.0, 2), (1.5, 19), (1e30, 2), (f64::NAN, 2)] {
            assert_eq!(directed_from_f64(value, decimals, Direction::Up), None);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn the_integer_path_gives_the_decimal_paths_figure(
            mantissa in 1_u64..(1 << 53),
            exponent in -80_i32..40,
            negative in any::<bool>(),
            decimals in 0_u32..=18,
        ) {
            let value = (mantissa as f64) * 2_f64.powi(exponent - 52);
            let value = if negative { -value } else { value };
            agree(value, decimals)?;
        }

        #[test]
        fn the_integer_path_agrees_on_short_decimals_and_their_neighbours(
            cents in -10_i64.pow(12)..10_i64.pow(12),
            places in 0_u32..=8,
            step in -3_i64..=3,
            decimals in 0_u32..=10,
        ) {
            // A decimal figure as a double, and the doubles a few steps either side of it.
            let value = cents as f64 / 10_f64.powi(places as i32);
            let bits = value.to_bits() as i64 + step;
            let value = f64::from_bits(bits as u64);
            agree(value, decimals)?;
        }
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
