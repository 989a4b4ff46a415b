//! Black-76: European options on a forward, their price and greeks.
//!
//! # Model
//! Black (1976), "The pricing of commodity contracts", J. Financial Economics 3, 167-179; in
//! textbook form Hull, *Options, Futures, and Other Derivatives* (10th ed.), section 18.8
//! ("Black's model"). With forward `F`, strike `K`, time to expiry `T` (years), volatility
//! `sigma`, discount factor `DF` and `theta = +1` for a call, `-1` for a put:
//!
//! ```text
//! s  = sigma * sqrt(T)                       (total volatility)
//! d1 = ln(F / K) / s + s / 2,   d2 = d1 - s
//! V  = DF * theta * (F * N(theta * d1) - K * N(theta * d2))
//! ```
//!
//! where `N(x) = erfc(-x / sqrt(2)) / 2` is the standard normal distribution function, computed
//! through the complementary error function so that far-wing probabilities keep their relative
//! accuracy (W. J. Cody, "Rational Chebyshev approximations for the error function", Math.
//! Comp. 23 (1969), as implemented by the `implied-vol` crate).
//!
//! # Greeks (Hull, sections 19.4-19.8, with the forward as the underlying)
//! With `n(x)` the standard normal density:
//! - `delta = dV/dF = theta * DF * N(theta * d1)` (discounted);
//! - `gamma = d2V/dF2 = DF * n(d1) / (F * s)`;
//! - `vega = dV/dsigma = DF * F * n(d1) * sqrt(T)`, per 1.00 of volatility (divide by 100 for
//!   "per vol point");
//! - `theta = -dV/dT`, per year: the change of value as calendar time passes with `F`, `K`,
//!   `sigma` and the continuously compounded rate held fixed. The rate is the one implied by the
//!   inputs, `r = -ln(DF) / T`, so `DF = exp(-r T)` and
//!   `theta = -DF * F * n(d1) * sigma / (2 sqrt(T)) + r * V`.
//!   With `DF = 1` the rate term vanishes. Divide by 365 for "per calendar day".
//!
//! # Accuracy
//! The textbook difference `F N(d1) - K N(d2)` cancels badly for out-of-the-money options
//! when `s` is small: both terms are much larger than their difference. This module evaluates
//! the option in its out-of-the-money form (an in-the-money option is its intrinsic value plus
//! the out-of-the-money option of the other kind, by put-call parity) and, when `s / 2 < 0.1`,
//! replaces the difference by a Taylor series in `s / 2` of the scaled function
//! `Y(z) = N(z) / n(z)` (Jaeckel, "Let's Be Rational", Wilmott 2015, section 3, derives the
//! same expansion; here the derivatives come from the recurrence
//! `Y^(k+1)(h) = h Y^(k)(h) + k Y^(k-1)(h)`, which follows from `Y' = 1 + h Y`).
//! The price then agrees with vollib (Jaeckel's reference implementation) to about `1e-14`
//! relative wherever it exceeds `1e-12 * F`; see `tests/black76_oracles.rs`.
//!
//! # Degenerate inputs
//! When the total volatility `s` is below [`limits::MIN_TOTAL_VOLATILITY`] (`T = 0` or
//! `sigma = 0`) the option is worth its discounted intrinsic value, and the greeks are the
//! limits as `s -> 0`: `delta = theta * DF` in the money, `0` out of the money, `theta * DF / 2`
//! at the money; `gamma = 0` (the limit is a point mass at the strike, which no finite number
//! represents); `vega = DF * F * n(d1) * sqrt(T)`, which is `DF * F * sqrt(T / 2 pi)` at the
//! money and `0` elsewhere; `theta = 0`.

mod batch;
mod vector_math;

pub use batch::{
    BatchColumns, Black76Batch, GreeksBatch, OwnedColumns, price_and_greeks_batch,
    price_and_greeks_checked, prices_checked,
};

use crate::error::{Field, PricingError};
use crate::validate;
use implied_vol::{DefaultSpecialFn, SpecialFn};
use std::f64::consts::FRAC_1_SQRT_2;

/// The domain accepted by [`Black76::new_checked`] and [`Black76Batch::new_checked`].
///
/// The bounds are far outside any market, and are chosen so that every price and greek is
/// finite (no overflow in `gamma = DF n(d1) / (F s)` or in `theta`).
pub mod limits {
    /// Smallest accepted forward or strike.
    pub const MIN_PRICE_LEVEL: f64 = 1e-100;
    /// Largest accepted forward or strike.
    pub const MAX_PRICE_LEVEL: f64 = 1e100;
    /// Largest accepted time to expiry, in years.
    pub const MAX_TIME_TO_EXPIRY_YEARS: f64 = 1_000.0;
    /// Largest accepted volatility (per year, 1.00 = 100%).
    pub const MAX_VOLATILITY: f64 = 100.0;
    /// Smallest accepted discount factor.
    pub const MIN_DISCOUNT_FACTOR: f64 = 1e-100;
    /// Largest accepted discount factor (above 1 for negative rates).
    pub const MAX_DISCOUNT_FACTOR: f64 = 1e100;
    /// Total volatility `sigma * sqrt(T)` below which the option is treated as expired
    /// (worth its intrinsic value). Real options have `s > 1e-8`.
    pub const MIN_TOTAL_VOLATILITY: f64 = 1e-50;
}

/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `sqrt(pi / 2)`: `Y(z) = N(z) / n(z) = sqrt(pi / 2) * erfcx(-z / sqrt(2))`.
const SQRT_PI_OVER_2: f64 = 1.253_314_137_315_500_3;
/// Below this half total volatility `t = s / 2` the out-of-the-money value comes from the Taylor
/// series; above it, from the `N(d1)`, `N(d2)` difference, whose cancellation is then at most a
/// factor `|h| / (2 t) < 5 |h|`.
pub(crate) const TAYLOR_MAX_HALF_TOTAL_VOL: f64 = 0.1;
/// Below `h = -40` the scaled density `n(h + t) < 1e-346`: the out-of-the-money value underflows.
pub(crate) const H_FLOOR: f64 = -40.0;

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OptionType {
    /// The right to buy at the strike: pays `max(F - K, 0)` at expiry.
    Call,
    /// The right to sell at the strike: pays `max(K - F, 0)` at expiry.
    Put,
}

impl OptionType {
    /// `+1.0` for a call, `-1.0` for a put (the `theta` of the formulas above).
    #[must_use]
    pub const fn sign(self) -> f64 {
        match self {
            Self::Call => 1.0,
            Self::Put => -1.0,
        }
    }

    /// Undiscounted intrinsic value `max(theta * (F - K), 0)`.
    #[must_use]
    pub fn intrinsic(self, forward: f64, strike: f64) -> f64 {
        (self.sign() * (forward - strike)).max(0.0)
    }
}

/// Price and greeks of one option. All are discounted; see the module documentation for the
/// exact definitions and units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Greeks {
    /// Present value `V`, in units of the forward.
    pub price: f64,
    /// `dV/dF` (discounted).
    pub delta: f64,
    /// `d2V/dF2`.
    pub gamma: f64,
    /// `dV/dsigma` per 1.00 of volatility.
    pub vega: f64,
    /// `-dV/dT` per year, including the rate term `r V` with `r = -ln(DF) / T`.
    pub theta: f64,
}

/// Validated Black-76 inputs for one option (without its type, so a call and a put share one
/// value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Black76 {
    forward: f64,
    strike: f64,
    time_to_expiry_years: f64,
    volatility: f64,
    discount_factor: f64,
}

impl Black76 {
    /// Validates the inputs.
    ///
    /// `discount_factor` is the present value of 1 paid at the option's settlement
    /// (`1.0` = undiscounted).
    ///
    /// # Errors
    /// The first failed check, in argument order, naming the field:
    /// [`PricingError::NonFinite`] for NaN or infinity, [`PricingError::NotPositive`] for a
    /// forward, strike or discount factor `<= 0`, [`PricingError::Negative`] for a negative time
    /// or volatility, and [`PricingError::OutOfRange`] outside [`limits`].
    pub fn new_checked(
        forward: f64,
        strike: f64,
        time_to_expiry_years: f64,
        volatility: f64,
        discount_factor: f64,
    ) -> Result<Self, PricingError> {
        use limits::*;
        Ok(Self {
            forward: validate::positive_in(
                Field::Forward,
                forward,
                MIN_PRICE_LEVEL,
                MAX_PRICE_LEVEL,
            )?,
            strike: validate::positive_in(Field::Strike, strike, MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)?,
            time_to_expiry_years: validate::non_negative_up_to(
                Field::TimeToExpiryYears,
                time_to_expiry_years,
                MAX_TIME_TO_EXPIRY_YEARS,
            )?,
            volatility: validate::non_negative_up_to(
                Field::Volatility,
                volatility,
                MAX_VOLATILITY,
            )?,
            discount_factor: validate::positive_in(
                Field::DiscountFactor,
                discount_factor,
                MIN_DISCOUNT_FACTOR,
                MAX_DISCOUNT_FACTOR,
            )?,
        })
    }

    /// The same option with another volatility (for scenario shocks).
    ///
    /// # Errors
    /// As [`Black76::new_checked`] for the volatility.
    pub fn with_volatility(&self, volatility: f64) -> Result<Self, PricingError> {
        Ok(Self {
            volatility: validate::non_negative_up_to(
                Field::Volatility,
                volatility,
                limits::MAX_VOLATILITY,
            )?,
            ..*self
        })
    }

    /// The same option on another forward (for scenario shocks).
    ///
    /// # Errors
    /// As [`Black76::new_checked`] for the forward.
    pub fn with_forward(&self, forward: f64) -> Result<Self, PricingError> {
        Ok(Self {
            forward: validate::positive_in(
                Field::Forward,
                forward,
                limits::MIN_PRICE_LEVEL,
                limits::MAX_PRICE_LEVEL,
            )?,
            ..*self
        })
    }

    /// The forward `F`.
    #[must_use]
    pub const fn forward(&self) -> f64 {
        self.forward
    }

    /// The strike `K`.
    #[must_use]
    pub const fn strike(&self) -> f64 {
        self.strike
    }

    /// The time to expiry `T`, in years.
    #[must_use]
    pub const fn time_to_expiry_years(&self) -> f64 {
        self.time_to_expiry_years
    }

    /// The volatility `sigma`.
    #[must_use]
    pub const fn volatility(&self) -> f64 {
        self.volatility
    }

    /// The discount factor `DF`.
    #[must_use]
    pub const fn discount_factor(&self) -> f64 {
        self.discount_factor
    }

    /// The present value of the option.
    #[must_use]
    pub fn price(&self, option_type: OptionType) -> f64 {
        let forms = self.forms();
        self.discount_factor * (option_type.intrinsic(self.forward, self.strike) + forms.otm_value)
    }

    /// Price and all greeks at once (cheaper than computing them one by one).
    #[must_use]
    pub fn greeks(&self, option_type: OptionType) -> Greeks {
        let forms = self.forms();
        let df = self.discount_factor;
        let price = df * (option_type.intrinsic(self.forward, self.strike) + forms.otm_value);
        // N(d1) and N(-d1) are each computed directly (not as 1 - the other) so that a put's
        // delta keeps its relative accuracy deep out of the money, and a call's likewise.
        let delta = match option_type {
            OptionType::Call => df * forms.n_d1,
            OptionType::Put => -df * forms.n_minus_d1,
        };
        let sqrt_t = self.time_to_expiry_years.sqrt();
        let s = forms.total_volatility;
        let (gamma, theta) = if forms.expired {
            (0.0, 0.0)
        } else {
            let t = self.time_to_expiry_years;
            let gamma = df * (forms.forward_density / self.forward) / (self.forward * s);
            let decay = -df * forms.forward_density * self.volatility / (2.0 * sqrt_t);
            let rate = -df.ln() / t;
            (gamma, decay + rate * price)
        };
        let vega = df * forms.forward_density * sqrt_t;
        Greeks {
            price,
            delta,
            gamma,
            vega,
            theta,
        }
    }

    /// The undiscounted out-of-the-money value, `N(d1)` and `F n(d1)`: everything the price
    /// and greeks need.
    fn forms(&self) -> Forms {
        let (f, k) = (self.forward, self.strike);
        let s = self.volatility * self.time_to_expiry_years.sqrt();
        let x = ln_ratio(f, k);
        let (low, high) = if f <= k { (f, k) } else { (k, f) };
        if s < limits::MIN_TOTAL_VOLATILITY {
            // Expired (or zero volatility): the limits as s -> 0.
            let n_d1 = if x > 0.0 {
                1.0
            } else if x < 0.0 {
                0.0
            } else {
                0.5
            };
            let forward_density = if x == 0.0 { f * INV_SQRT_2PI } else { 0.0 };
            return Forms {
                otm_value: 0.0,
                n_d1,
                n_minus_d1: 1.0 - n_d1,
                forward_density,
                total_volatility: s,
                expired: true,
            };
        }
        // The out-of-the-money option in normalised coordinates: h = -|x| / s <= 0, t = s / 2,
        // its two arguments `h + t` (d1 of an OTM call, -d2 of an OTM put) and `h - t`.
        let h = -x.abs() / s;
        let t = 0.5 * s;
        let (hi, lo) = (h + t, h - t);
        let density_hi = normal_density(hi);
        // F n(d1) = K n(d2) = min(F, K) n(h + t).
        let forward_density = low * density_hi;
        // N(h + t), N(-(h + t)) and N(h - t); h - t <= 0, so 1 - N(h - t) has no cancellation.
        let (otm_value, n_hi, n_minus_hi, n_lo) = if t < TAYLOR_MAX_HALF_TOTAL_VOL {
            if h < H_FLOOR {
                (0.0, 0.0, 1.0, 0.0)
            } else {
                let y0 = SQRT_PI_OVER_2 * DefaultSpecialFn::erfcx(-h * FRAC_1_SQRT_2);
                let (odd, even) = taylor_sums(h, t, y0);
                // h + t < 0.1 here, so N(h + t) < 0.54 and 1 - N(h + t) is accurate.
                let n_hi = density_hi * (even + odd);
                let n_lo = normal_density(lo) * (even - odd);
                (forward_density * 2.0 * odd, n_hi, 1.0 - n_hi, n_lo)
            }
        } else {
            let n_hi = norm_cdf(hi);
            let n_lo = norm_cdf(lo);
            (low * n_hi - high * n_lo, n_hi, norm_cdf(-hi), n_lo)
        };
        // d1 = h + t when F <= K (the call is out of the money), else -d1 = h - t.
        let (n_d1, n_minus_d1) = if f <= k {
            (n_hi, n_minus_hi)
        } else {
            (1.0 - n_lo, n_lo)
        };
        Forms {
            otm_value: otm_value.max(0.0),
            n_d1,
            n_minus_d1,
            forward_density,
            total_volatility: s,
            expired: false,
        }
    }
}

/// Intermediate results of [`Black76::forms`].
struct Forms {
    /// Undiscounted value of the out-of-the-money option (the call if `F <= K`, else the put).
    otm_value: f64,
    /// `N(d1)`.
    n_d1: f64,
    /// `N(-d1)`.
    n_minus_d1: f64,
    /// `F n(d1)`.
    forward_density: f64,
    /// `s = sigma sqrt(T)`.
    total_volatility: f64,
    /// `s` below [`limits::MIN_TOTAL_VOLATILITY`].
    expired: bool,
}

/// `ln(F / K)` with relative accuracy near the money.
///
/// For `F / K` in `[1/2, 2]`, `F - K` is exact (Sterbenz), so `ln_1p((F - K) / K)` carries one
/// rounding relative to `x` itself. `ln(F / K)` would carry one rounding of the ratio, an
/// absolute error of `1e-16` in `x`, which for short-dated options (where `d1` is `x / s` with a
/// small `s`) becomes a relative error of up to `1e-12` in the price. Elsewhere the ratio is
/// used when it is a normal number, else `ln F - ln K`.
pub(crate) fn ln_ratio(forward: f64, strike: f64) -> f64 {
    let ratio = forward / strike;
    if (0.5..=2.0).contains(&ratio) {
        ((forward - strike) / strike).ln_1p()
    } else if ratio.is_normal() {
        ratio.ln()
    } else {
        forward.ln() - strike.ln()
    }
}

/// `n(z) = exp(-z^2 / 2) / sqrt(2 pi)`.
fn normal_density(z: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// `N(z) = erfc(-z / sqrt(2)) / 2`.
fn norm_cdf(z: f64) -> f64 {
    0.5 * DefaultSpecialFn::erfc(-z * FRAC_1_SQRT_2)
}

/// The standard normal distribution function `N(z) = erfc(-z / sqrt(2)) / 2`, the one the
/// pricer's deltas are made of (`N(d1)`), for callers that bound a delta over a range of inputs
/// without pricing; `N(-inf) = 0`, `N(inf) = 1`.
#[must_use]
pub fn standard_normal_cdf(z: f64) -> f64 {
    norm_cdf(z)
}

/// `(odd, even)` parts of the Taylor series of `Y(h + t) = sum_k Y^(k)(h) t^k / k!`, so that
/// `Y(h + t) = even + odd` and `Y(h - t) = even - odd`, from `y0 = Y(h)` and the recurrence
/// `Y^(1) = 1 + h Y`, `Y^(k+1) = h Y^(k) + k Y^(k-1)`. Eleven derivatives: for `t < 0.1` the
/// first omitted term is below `1e-17` of the sum.
#[inline(always)]
pub(crate) fn taylor_sums(h: f64, t: f64, y0: f64) -> (f64, f64) {
    let y1 = 1.0 + h * y0;
    let y2 = h * y1 + y0;
    let y3 = h * y2 + 2.0 * y1;
    let y4 = h * y3 + 3.0 * y2;
    let y5 = h * y4 + 4.0 * y3;
    let y6 = h * y5 + 5.0 * y4;
    let y7 = h * y6 + 6.0 * y5;
    let y8 = h * y7 + 7.0 * y6;
    let y9 = h * y8 + 8.0 * y7;
    let y10 = h * y9 + 9.0 * y8;
    let y11 = h * y10 + 10.0 * y9;
    let t2 = t * t;
    let odd = t
        * (y1
            + t2 * (y3 * (1.0 / 6.0)
                + t2 * (y5 * (1.0 / 120.0)
                    + t2 * (y7 * (1.0 / 5_040.0)
                        + t2 * (y9 * (1.0 / 362_880.0) + t2 * (y11 * (1.0 / 39_916_800.0)))))));
    let even = y0
        + t2 * (y2 * 0.5
            + t2 * (y4 * (1.0 / 24.0)
                + t2 * (y6 * (1.0 / 720.0)
                    + t2 * (y8 * (1.0 / 40_320.0) + t2 * (y10 * (1.0 / 3_628_800.0))))));
    (odd, even)
}
