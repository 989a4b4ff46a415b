//! Implied volatility: the `sigma` at which Black-76 reproduces a given price.
//!
//! The inversion is Jaeckel's "Let's Be Rational" (Wilmott, January 2015), as implemented by the
//! `implied-vol` crate, which reaches full double precision in at most two iterations. This
//! module adds the discounting and turns every case without an answer into a typed error
//! instead of NaN or a silent zero.

use crate::black76::{OptionType, limits};
use crate::error::{Field, PricingError};
use crate::validate;
use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility};

/// The Black-76 volatility at which an option on `forward` struck at `strike`, expiring in
/// `time_to_expiry_years` and discounted by `discount_factor`, is worth `price`.
///
/// A price exactly at the discounted intrinsic value gives `Ok(0.0)`; so may a time value in the
/// subnormal range (below about `1e-300` of the forward), which the solver cannot tell from zero.
///
/// # Errors
/// - the inputs as [`Black76::new_checked`](crate::black76::Black76::new_checked) checks them,
///   and [`PricingError::NonFinite`] or [`PricingError::Negative`] for the price;
/// - [`PricingError::PriceBelowIntrinsic`] when `price < DF * max(theta (F - K), 0)`;
/// - [`PricingError::PriceAboveUpperBound`] when `price >= DF * F` (call) or `DF * K` (put);
/// - [`PricingError::NotAttainableAtExpiry`] when `T = 0` and the price is not the intrinsic
///   value;
/// - [`PricingError::NoImpliedVolatility`] if the solver fails inside the attainable range.
pub fn implied_volatility(
    price: f64,
    forward: f64,
    strike: f64,
    time_to_expiry_years: f64,
    discount_factor: f64,
    option_type: OptionType,
) -> Result<f64, PricingError> {
    use limits::*;
    if !price.is_finite() {
        return Err(PricingError::NonFinite {
            field: Field::Price,
            value: price,
        });
    }
    if price < 0.0 {
        return Err(PricingError::Negative {
            field: Field::Price,
            value: price,
        });
    }
    let forward = validate::positive_in(Field::Forward, forward, MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)?;
    let strike = validate::positive_in(Field::Strike, strike, MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)?;
    let time = validate::non_negative_up_to(
        Field::TimeToExpiryYears,
        time_to_expiry_years,
        MAX_TIME_TO_EXPIRY_YEARS,
    )?;
    let df = validate::positive_in(
        Field::DiscountFactor,
        discount_factor,
        MIN_DISCOUNT_FACTOR,
        MAX_DISCOUNT_FACTOR,
    )?;

    let intrinsic = option_type.intrinsic(forward, strike);
    let upper = match option_type {
        OptionType::Call => forward,
        OptionType::Put => strike,
    };
    let undiscounted = price / df;
    if undiscounted < intrinsic {
        return Err(PricingError::PriceBelowIntrinsic {
            price,
            intrinsic: df * intrinsic,
        });
    }
    if undiscounted >= upper {
        return Err(PricingError::PriceAboveUpperBound {
            price,
            upper_bound: df * upper,
        });
    }
    if undiscounted == intrinsic {
        return Ok(0.0);
    }
    if time == 0.0 {
        return Err(PricingError::NotAttainableAtExpiry {
            price,
            intrinsic: df * intrinsic,
        });
    }
    let solver = ImpliedBlackVolatility::builder()
        .option_price(undiscounted)
        .forward(forward)
        .strike(strike)
        .expiry(time)
        .is_call(option_type == OptionType::Call)
        .build()
        .ok_or(PricingError::NoImpliedVolatility { price })?;
    match solver.calculate::<DefaultSpecialFn>() {
        Some(volatility) if volatility.is_finite() && volatility >= 0.0 => Ok(volatility),
        // The solver answers +infinity at the upper bound, which the checks above exclude;
        // report it as such should rounding put a price there.
        Some(volatility) if volatility == f64::INFINITY => {
            Err(PricingError::PriceAboveUpperBound {
                price,
                upper_bound: df * upper,
            })
        }
        _ => Err(PricingError::NoImpliedVolatility { price }),
    }
}
