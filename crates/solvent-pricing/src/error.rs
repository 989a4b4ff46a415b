//! The one error type of the crate, [`PricingError`], and the [`Field`] it names.

use std::fmt;

/// The input a [`PricingError`] is about.
///
/// Displayed as the field's name in the public API (`forward`, `strike`, ...), so an error
/// message says exactly which argument was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The forward price `F` of the underlying.
    Forward,
    /// The strike `K`.
    Strike,
    /// The time to expiry `T`, in years.
    TimeToExpiryYears,
    /// The Black-76 volatility `sigma` (per year, 1.00 = 100%).
    Volatility,
    /// The discount factor from expiry (or premium settlement) to today.
    DiscountFactor,
    /// An option price (the input of an implied-volatility solve).
    Price,
    /// The option type column of a batch.
    OptionType,
}

impl Field {
    /// The field's name as it appears in the public API.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Strike => "strike",
            Self::TimeToExpiryYears => "time_to_expiry_years",
            Self::Volatility => "volatility",
            Self::DiscountFactor => "discount_factor",
            Self::Price => "price",
            Self::OptionType => "option_type",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in `solvent-pricing`.
///
/// Every variant names the offending field (and, for batches and surfaces, where it is), so a
/// caller can report the bad input precisely. No function of this crate returns NaN instead of
/// an error, and none panics on input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// The value is NaN or infinite.
    #[error("{field} must be finite, got {value}")]
    NonFinite {
        /// The offending input.
        field: Field,
        /// The value received.
        value: f64,
    },
    /// The value must be strictly positive (forward, strike, discount factor, surface vols and
    /// expiries).
    #[error("{field} must be greater than zero, got {value}")]
    NotPositive {
        /// The offending input.
        field: Field,
        /// The value received.
        value: f64,
    },
    /// The value must not be negative (time to expiry, volatility, price).
    #[error("{field} must not be negative, got {value}")]
    Negative {
        /// The offending input.
        field: Field,
        /// The value received.
        value: f64,
    },
    /// The value lies outside the domain this crate accepts for the field. The bounds are
    /// wide (see [`crate::black76::limits`]) and chosen so that every output is finite.
    #[error("{field} must be between {min:e} and {max:e}, got {value:e}")]
    OutOfRange {
        /// The offending input.
        field: Field,
        /// The value received.
        value: f64,
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// One column of a batch (or one smile of a surface) has a different length from the
    /// others.
    #[error("{field} has {actual} elements, expected {expected}")]
    LengthMismatch {
        /// The column whose length is wrong.
        field: Field,
        /// The length of the reference column (the forwards, or the smile's strikes).
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// One element of a batch is invalid; `source` says which field and why.
    #[error("batch element {index}: {source}")]
    BatchElement {
        /// Position of the element in the batch.
        index: usize,
        /// What is wrong with it.
        source: Box<PricingError>,
    },
    /// The option price is below the discounted intrinsic value: no volatility gives it.
    #[error("price {price} is below the discounted intrinsic value {intrinsic}")]
    PriceBelowIntrinsic {
        /// The (discounted) price received.
        price: f64,
        /// The discounted intrinsic value `DF * max(theta * (F - K), 0)`.
        intrinsic: f64,
    },
    /// The option price is at or above the discounted upper bound (`DF * F` for a call,
    /// `DF * K` for a put), which only an infinite volatility reaches.
    #[error("price {price} is at or above the upper bound {upper_bound}")]
    PriceAboveUpperBound {
        /// The (discounted) price received.
        price: f64,
        /// The discounted upper bound.
        upper_bound: f64,
    },
    /// At expiry (`T = 0`) only the intrinsic value is attainable, and the price differs from it.
    #[error("at expiry only the intrinsic value {intrinsic} is attainable, got price {price}")]
    NotAttainableAtExpiry {
        /// The (discounted) price received.
        price: f64,
        /// The discounted intrinsic value.
        intrinsic: f64,
    },
    /// The implied-volatility solver found no volatility although the price is inside the
    /// attainable range (it should not happen; reported rather than hidden).
    #[error("no implied volatility found for price {price}")]
    NoImpliedVolatility {
        /// The (discounted) price received.
        price: f64,
    },
    /// A volatility surface needs at least one expiry.
    #[error("a volatility surface needs at least one expiry")]
    EmptySurface,
    /// A smile needs at least one (strike, volatility) point.
    #[error("smile {expiry_index} has no points")]
    EmptySmile {
        /// Position of the smile in the surface input.
        expiry_index: usize,
    },
    /// Expiries must be strictly ascending.
    #[error(
        "expiry {expiry_index}: time_to_expiry_years {time} is not after the previous expiry {previous}"
    )]
    ExpiriesNotAscending {
        /// Position of the smile in the surface input.
        expiry_index: usize,
        /// The previous expiry, in years.
        previous: f64,
        /// This expiry, in years.
        time: f64,
    },
    /// Strikes within a smile must be strictly ascending.
    #[error(
        "expiry {expiry_index}, point {point_index}: strike {strike} is not above the previous strike {previous}"
    )]
    StrikesNotAscending {
        /// Position of the smile in the surface input.
        expiry_index: usize,
        /// Position of the point in the smile.
        point_index: usize,
        /// The previous strike.
        previous: f64,
        /// This strike.
        strike: f64,
    },
    /// A value of a surface is invalid; `source` names the field and the problem.
    #[error("expiry {expiry_index}{}: {source}", point_index.map(|i| format!(", point {i}")).unwrap_or_default())]
    SurfacePoint {
        /// Position of the smile in the surface input.
        expiry_index: usize,
        /// Position of the point in the smile (`None` for the smile's expiry itself).
        point_index: Option<usize>,
        /// What is wrong with it.
        source: Box<PricingError>,
    },
}
