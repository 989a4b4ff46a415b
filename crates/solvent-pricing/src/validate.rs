//! Input checks shared by the modules: each returns the value or a [`PricingError`] naming the
//! field. The checks run in a fixed order: finite, then sign, then range.

use crate::error::{Field, PricingError};

/// `value` must be finite and strictly positive, and within `[min, max]`.
pub(crate) fn positive_in(
    field: Field,
    value: f64,
    min: f64,
    max: f64,
) -> Result<f64, PricingError> {
    if !value.is_finite() {
        return Err(PricingError::NonFinite { field, value });
    }
    if value <= 0.0 {
        return Err(PricingError::NotPositive { field, value });
    }
    if value < min || value > max {
        return Err(PricingError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(value)
}

/// `value` must be finite and not negative, and at most `max`.
pub(crate) fn non_negative_up_to(field: Field, value: f64, max: f64) -> Result<f64, PricingError> {
    if !value.is_finite() {
        return Err(PricingError::NonFinite { field, value });
    }
    if value < 0.0 {
        return Err(PricingError::Negative { field, value });
    }
    if value > max {
        return Err(PricingError::OutOfRange {
            field,
            value,
            min: 0.0,
            max,
        });
    }
    // `-0.0` passes `value < 0.0`; normalise it so no computation sees a negative zero.
    Ok(value + 0.0)
}

/// `value` must be finite and strictly positive (no range limit).
pub(crate) fn positive(field: Field, value: f64) -> Result<f64, PricingError> {
    positive_in(field, value, f64::MIN_POSITIVE, f64::MAX)
}
