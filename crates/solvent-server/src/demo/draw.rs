//! Seeded draws, the demo's volatility smile and rounding of drawn figures: what the opening and
//! the feed share. Everything here is pure.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use super::DemoError;

/// A uniform draw in (0, 1].
pub(super) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    1.0 - rng.random::<f64>()
}

/// A standard normal draw (Box-Muller).
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let radius = (-2.0 * unit(rng).ln()).sqrt();
    radius * (std::f64::consts::TAU * rng.random::<f64>()).cos()
}

/// A log-normal draw with the given median and sigma.
pub(super) fn log_normal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// A Poisson draw with mean `mean` (Knuth's product of uniforms; the feed's means per step are
/// far below the 700 where `exp(-mean)` would underflow, and they are capped there).
pub(super) fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    if !(mean.is_finite() && mean > 0.0) {
        return 0;
    }
    let limit = (-mean.min(700.0)).exp();
    let mut count = 0_u32;
    let mut product = unit(rng);
    while product > limit && count < 10_000 {
        count += 1;
        product *= unit(rng);
    }
    count
}

/// A Pareto draw: `minimum x U^(-1/tail)`, capped at `maximum`.
pub(super) fn pareto(rng: &mut ChaCha8Rng, minimum: f64, tail: f64, maximum: f64) -> f64 {
    (minimum * unit(rng).powf(-1.0 / tail)).min(maximum)
}

/// Log-moneyness `ln(K / S)` of the smile's strikes.
const SMILE_MONEYNESS: [f64; 9] = [-0.5, -0.35, -0.2, -0.1, 0.0, 0.1, 0.2, 0.35, 0.5];

/// Slope of the smile in log-moneyness, as a multiple of the at-the-money volatility.
/// ASSUMPTION: -0.3, a put skew: at 50 vol, a 25-delta risk reversal about 3 vol points wide,
/// the order of BTC's in the calm weeks of 2025 (the shared data has no smile, only DVOL).
const SMILE_SKEW: f64 = -0.3;

/// Curvature of the smile, as a multiple of the at-the-money volatility. ASSUMPTION: 0.8, wings
/// 20% out of the money about 3 vol points above the line of the skew at 50 vol.
const SMILE_CURVATURE: f64 = 0.8;

/// The demo's smile around `spot` for an at-the-money volatility `atm` (DVOL, a fraction):
/// `vol(K) = atm x (1 + skew x k + curvature x k^2)`, `k = ln(K / spot)`, on whole-dollar strikes.
/// Every expiry gets the same smile. ASSUMPTION: a flat term structure: DVOL is a 30-day
/// volatility and the demo's options expire in 2 to 6 months; no term structure is in the data.
pub(super) fn smile(spot: f64, atm: f64) -> (Vec<f64>, Vec<f64>) {
    SMILE_MONEYNESS
        .iter()
        .map(|k| {
            let strike = (spot * k.exp()).round().max(1.0);
            let vol = atm * (1.0 + SMILE_SKEW * k + SMILE_CURVATURE * k * k);
            (strike, vol.max(0.01))
        })
        .unzip()
}

/// `value` as a decimal.
pub(super) fn decimal(value: f64) -> Result<Decimal, DemoError> {
    Decimal::from_f64(value).ok_or_else(|| DemoError::OutOfRange(format!("{value}")))
}

/// `value` as a float (NaN if it cannot be: every caller checks finiteness where it matters).
pub(super) fn float(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Rounded up to `decimals`: a charge or a deposit never falls short by a rounding.
pub(super) fn up(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::AwayFromZero)
}

/// Rounded down to `decimals`.
pub(super) fn down(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::ToZero)
}

/// `size` as a whole number of `step`s, at least one, rounded to the nearest.
pub(super) fn steps(size: Decimal, step: Decimal) -> Decimal {
    if step <= Decimal::ZERO {
        return size;
    }
    ((size / step).round() * step).max(step)
}
