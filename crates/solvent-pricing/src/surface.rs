//! A volatility surface for one underlying: smiles at a set of expiries.
//!
//! # Interpolation
//! - **In strike**, within one smile: linear in strike between points; flat (the end point's
//!   volatility) below the first and above the last strike.
//! - **In time**, at a fixed strike: linear in total variance `w(T) = sigma(K, T)^2 T` between
//!   the two expiries around `T`, so `sigma = sqrt(w(T) / T)`; flat volatility (the nearest
//!   smile's, at that strike) before the first and after the last expiry.
//!
//! Interpolating total variance rather than volatility keeps the forward variance between two
//! expiries equal to the one the two smiles imply (Gatheral, *The Volatility Surface*, 2006,
//! chapter 1), which is the usual market practice.

use crate::error::{Field, PricingError};
use crate::validate;

/// One expiry of the input to [`VolSurface::new_checked`].
#[derive(Debug, Clone, PartialEq)]
pub struct SmileInput {
    /// Time to expiry in years, `> 0`.
    pub time_to_expiry_years: f64,
    /// Strikes, strictly ascending, `> 0`.
    pub strikes: Vec<f64>,
    /// Volatility at each strike, `> 0` (1.00 = 100%).
    pub volatilities: Vec<f64>,
}

/// One validated smile.
#[derive(Debug, Clone, PartialEq)]
struct Smile {
    time_to_expiry_years: f64,
    strikes: Vec<f64>,
    volatilities: Vec<f64>,
}

impl Smile {
    /// Linear in strike, flat beyond the ends. `strikes` is non-empty and ascending.
    fn volatility(&self, strike: f64) -> f64 {
        smile_volatility(&self.strikes, &self.volatilities, strike)
    }

    fn total_variance(&self, strike: f64) -> f64 {
        let v = self.volatility(strike);
        v * v * self.time_to_expiry_years
    }
}

/// The volatility of a smile at `strike`: linear in strike between points, flat beyond the
/// ends. `strikes` is non-empty, ascending and as long as `vols`.
fn smile_volatility(strikes: &[f64], vols: &[f64], strike: f64) -> f64 {
    // Index of the first strike above `strike` (NaN counts as below every strike).
    let upper = strikes.partition_point(|&k| k <= strike);
    match (upper.checked_sub(1), vols.get(upper)) {
        (None, _) => vols[0],
        (Some(i), None) => vols[i],
        (Some(i), Some(&v_hi)) => {
            let (k_lo, k_hi, v_lo) = (strikes[i], strikes[upper], vols[i]);
            let weight = (strike - k_lo) / (k_hi - k_lo);
            v_lo + weight * (v_hi - v_lo)
        }
    }
}

/// The largest difference, over every strike, between the volatilities two smiles of one expiry
/// give under this module's interpolation (`(strikes, vols)` each).
///
/// Both smiles are linear between their strikes and flat beyond, so their difference is
/// piecewise linear with its kinks at their strikes: the largest is reached at one of them.
/// A smile that is empty, whose lengths differ, or whose strikes do not strictly ascend, and a
/// non-finite difference, give `f64::INFINITY` (no bound).
///
/// With the interpolation in time above, a volatility anywhere on a surface moves by at most the
/// largest of its smiles' distances: `sigma = sqrt(a s0^2 + b s1^2)` with `a + b = 1`, a norm of
/// the two smiles' volatilities, which is 1-Lipschitz in them.
#[must_use]
pub fn smile_distance(before: (&[f64], &[f64]), after: (&[f64], &[f64])) -> f64 {
    let valid = |(strikes, vols): (&[f64], &[f64])| {
        !strikes.is_empty()
            && strikes.len() == vols.len()
            && strikes.windows(2).all(|pair| pair[0] < pair[1])
    };
    if !valid(before) || !valid(after) {
        return f64::INFINITY;
    }
    let mut largest = 0.0_f64;
    if before.0 == after.0 {
        // A re-quote on the same strikes (the usual change): at its own strike a smile gives
        // its own volatility exactly (the weight is 0), so the kinks' differences are the
        // volatilities' own, the same figure as the search below without its look-ups.
        for (after, before) in after.1.iter().zip(before.1) {
            let difference = (after - before).abs();
            if !difference.is_finite() {
                return f64::INFINITY;
            }
            largest = largest.max(difference);
        }
        return largest;
    }
    for &strike in before.0.iter().chain(after.0) {
        let difference = (smile_volatility(after.0, after.1, strike)
            - smile_volatility(before.0, before.1, strike))
        .abs();
        if !difference.is_finite() {
            return f64::INFINITY;
        }
        largest = largest.max(difference);
    }
    largest
}

/// Implied volatilities of one underlying by strike and time to expiry (see the module
/// documentation for the interpolation).
#[derive(Debug, Clone, PartialEq)]
pub struct VolSurface {
    smiles: Vec<Smile>,
}

impl VolSurface {
    /// Validates and builds a surface from its smiles, given in ascending expiry order.
    ///
    /// # Errors
    /// In this order: [`PricingError::EmptySurface`] with no smile; for each smile in turn,
    /// [`PricingError::SurfacePoint`] (point `None`) for a non-finite or non-positive expiry,
    /// [`PricingError::ExpiriesNotAscending`], [`PricingError::EmptySmile`],
    /// [`PricingError::SurfacePoint`] wrapping [`PricingError::LengthMismatch`] when there are
    /// not as many volatilities as strikes, then for each point [`PricingError::SurfacePoint`]
    /// naming the bad strike or volatility, and [`PricingError::StrikesNotAscending`].
    pub fn new_checked(smiles: Vec<SmileInput>) -> Result<Self, PricingError> {
        if smiles.is_empty() {
            return Err(PricingError::EmptySurface);
        }
        let mut checked: Vec<Smile> = Vec::with_capacity(smiles.len());
        for (expiry_index, input) in smiles.into_iter().enumerate() {
            let at = |point_index: Option<usize>| {
                move |error: PricingError| PricingError::SurfacePoint {
                    expiry_index,
                    point_index,
                    source: Box::new(error),
                }
            };
            let time = validate::positive(Field::TimeToExpiryYears, input.time_to_expiry_years)
                .map_err(at(None))?;
            if let Some(previous) = checked.last().map(|s| s.time_to_expiry_years)
                && time <= previous
            {
                return Err(PricingError::ExpiriesNotAscending {
                    expiry_index,
                    previous,
                    time,
                });
            }
            if input.strikes.is_empty() {
                return Err(PricingError::EmptySmile { expiry_index });
            }
            if input.volatilities.len() != input.strikes.len() {
                return Err(at(None)(PricingError::LengthMismatch {
                    field: Field::Volatility,
                    expected: input.strikes.len(),
                    actual: input.volatilities.len(),
                }));
            }
            for (point_index, (&strike, &vol)) in
                input.strikes.iter().zip(&input.volatilities).enumerate()
            {
                validate::positive(Field::Strike, strike).map_err(at(Some(point_index)))?;
                validate::positive(Field::Volatility, vol).map_err(at(Some(point_index)))?;
                if let Some(&previous) = point_index
                    .checked_sub(1)
                    .and_then(|i| input.strikes.get(i))
                    && strike <= previous
                {
                    return Err(PricingError::StrikesNotAscending {
                        expiry_index,
                        point_index,
                        previous,
                        strike,
                    });
                }
            }
            checked.push(Smile {
                time_to_expiry_years: time,
                strikes: input.strikes,
                volatilities: input.volatilities,
            });
        }
        Ok(Self { smiles: checked })
    }

    /// The expiries, ascending, in years.
    pub fn expiries(&self) -> impl Iterator<Item = f64> + '_ {
        self.smiles.iter().map(|s| s.time_to_expiry_years)
    }

    /// The interpolated volatility at `strike` and `time_to_expiry_years`.
    ///
    /// Total for every input, so it never fails: a NaN or non-positive strike reads the
    /// smiles' lowest strikes, a NaN or non-positive time the first smile (as the flat
    /// extrapolation does). Use [`VolSurface::volatility_checked`] to reject such inputs.
    #[must_use]
    pub fn volatility(&self, strike: f64, time_to_expiry_years: f64) -> f64 {
        let smiles = &self.smiles;
        let time = time_to_expiry_years;
        // Index of the first expiry after `time` (NaN counts as before every expiry).
        let upper = smiles.partition_point(|s| s.time_to_expiry_years <= time);
        match (upper.checked_sub(1), smiles.get(upper)) {
            (None, _) => smiles[0].volatility(strike),
            (Some(i), None) => smiles[i].volatility(strike),
            (Some(i), Some(after)) => {
                let before = &smiles[i];
                let (t0, t1) = (before.time_to_expiry_years, after.time_to_expiry_years);
                let (w0, w1) = (before.total_variance(strike), after.total_variance(strike));
                let w = w0 + (w1 - w0) * ((time - t0) / (t1 - t0));
                // t0 <= time < t1 and w0, w1 > 0, so w > 0 and time > 0.
                (w / time).sqrt()
            }
        }
    }

    /// As [`VolSurface::volatility`], rejecting a non-finite or non-positive strike and a
    /// non-finite or negative time.
    ///
    /// # Errors
    /// [`PricingError::NonFinite`], [`PricingError::NotPositive`] or [`PricingError::Negative`]
    /// naming the field.
    pub fn volatility_checked(
        &self,
        strike: f64,
        time_to_expiry_years: f64,
    ) -> Result<f64, PricingError> {
        let strike = validate::positive(Field::Strike, strike)?;
        let time =
            validate::non_negative_up_to(Field::TimeToExpiryYears, time_to_expiry_years, f64::MAX)?;
        Ok(self.volatility(strike, time))
    }
}
