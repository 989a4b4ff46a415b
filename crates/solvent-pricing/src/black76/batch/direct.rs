//! The direct kernel: the out-of-the-money value as the textbook difference
//! `min(F, K) N(h + t) - max(F, K) N(h - t)`, for the options where that difference is
//! accurate, with as few divisions as possible.
//!
//! # Which options it serves
//! In the normalised coordinates of the scalar path (`h = -|ln(F / K)| / s <= 0`, `t = s / 2`)
//! the out-of-the-money value is `min(F, K) n(h + t) (Y(h + t) - Y(h - t))`, with
//! `Y(z) = N(z) / n(z)`. Each `Y` carries a few ulp of rounding, so the difference carries
//! them multiplied by the cancellation factor `C = Y(h + t) / (Y(h + t) - Y(h - t))`, which is
//! about `Y(h) / (2 t Y'(h))`. `Y / Y'` is `sqrt(pi / 2)` at `h = 0` and grows like `|h| + 1/|h|`
//! as `h -> -inf`; it stays below `|h| + sqrt(pi / 2)`, so
//!
//! ```text
//! C <= (|h| + 1.26) / (2 t).
//! ```
//!
//! An option is *direct* when this bound is at most [`MAX_CANCELLATION`] (so the value carries
//! at most `2 * 40 * (a few ulp) < 2e-13` relative error) and both `erfcx` arguments,
//! `|h + t| / sqrt(2)` and `(|h| + t) / sqrt(2)`, lie in `[0, 4]`, the range of the single
//! rational approximation used here. Every other option (short-dated near the money, far
//! wings, expired) goes to the careful kernel, which has the Taylor series and the far-range
//! `erfcx`. In the benchmark's market-like inputs about 98% of options are direct.
//!
//! # Divisions
//! Division and square root are the slowest vector operations and share one unit. The scalar
//! algorithm needs five divisions per option (`ln`, `1 / s`, `1 / F` and two `erfcx`); here
//! they are two reciprocals of products:
//! - `R = 1 / (D s F)`, with `D` the denominator of `ln`'s `atanh` argument, gives
//!   `1 / D = s F R`, `1 / s = D F R` and `1 / F = D s R`. The product lies in
//!   `[2e-150, 2e103]` over the accepted domain (`s` floored at the minimum total volatility),
//!   so nothing overflows or underflows.
//! - `1 / (Q1 Q2)` gives both `erfcx` quotients `P1 / Q1 = P1 Q2 / (Q1 Q2)`, and `P2 / Q2`
//!   likewise (`Q1, Q2` are in `[1, 2000]` on `[0, 4]`).
//!
//! Each costs two or three roundings instead of one, well inside the error budget above.

use super::super::vector_math::{
    LN2_HI, LN2_LO, LnParts, erfcx_near_parts, exp_non_positive, fma, ln_mantissa_parts, max, min,
};
use super::super::{INV_SQRT_2PI, SQRT_PI_OVER_2, limits};
use super::{CHUNK, Chunk, ChunkOut};
use std::f64::consts::FRAC_1_SQRT_2;

/// Largest accepted bound on the cancellation factor `C` (see the module documentation).
pub(super) const MAX_CANCELLATION: f64 = 40.0;
/// Upper bound of `Y(h) / Y'(h) - |h|` for `h <= 0` (`sqrt(pi / 2) = 1.2533...`, rounded up).
pub(super) const Y_OVER_DERIVATIVE_EXCESS: f64 = 1.26;
/// Largest `|h| + t` served: the `erfcx` arguments stay below `4`, the end of the near-range
/// rational approximation.
pub(super) const MAX_ABS_H_PLUS_T: f64 = 4.0 * std::f64::consts::SQRT_2;

/// `true` when the option at normalised coordinates `h <= 0`, `t >= 0` is served by this kernel.
#[inline(always)]
pub(super) fn is_direct(h: f64, t: f64) -> bool {
    let abs_h = -h;
    (abs_h + t <= MAX_ABS_H_PLUS_T)
        & (abs_h + Y_OVER_DERIVATIVE_EXCESS <= 2.0 * MAX_CANCELLATION * t)
}

/// Per-chunk intermediates of the direct kernel.
#[repr(align(64))] // every array on a cache-line boundary: no load straddles two lines
pub(super) struct DirectScratch {
    h: [f64; CHUNK],
    t: [f64; CHUNK],
    inv_s: [f64; CHUNK],
    inv_f: [f64; CHUNK],
    sqrt_t: [f64; CHUNK],
    /// The parts of `ln(F / K)` and `1 / (D s F)`, between passes 1a and 1b.
    numerator: [f64; CHUNK],
    denominator: [f64; CHUNK],
    exponent: [f64; CHUNK],
    reciprocal: [f64; CHUNK],
    /// `1` where the option needs the careful kernel, else `0`.
    /// (A word per option, so that storing the flags is one vector store, no packing.)
    pub(super) careful: [u64; CHUNK],
}

impl Default for DirectScratch {
    fn default() -> Self {
        Self {
            h: [0.0; CHUNK],
            t: [0.0; CHUNK],
            inv_s: [0.0; CHUNK],
            inv_f: [0.0; CHUNK],
            sqrt_t: [0.0; CHUNK],
            numerator: [0.0; CHUNK],
            denominator: [0.0; CHUNK],
            exponent: [0.0; CHUNK],
            reciprocal: [0.0; CHUNK],
            careful: [0; CHUNK],
        }
    }
}

/// What [`direct_chunk`] found about its chunk.
pub(super) struct DirectSummary {
    /// How many options are marked for the careful kernel.
    pub(super) careful: usize,
    /// `true` when every input of the chunk is in the domain of `Black76::new_checked` (the
    /// check of `Black76Batch::new_checked`, done here while the inputs are loaded anyway).
    pub(super) in_domain: bool,
}

/// Values every option of the chunk by the direct form, and marks in `scratch.careful` the
/// ones whose result must be replaced by the careful kernel's. Their lanes here hold finite or
/// non-finite garbage, never read. Inputs outside the domain give garbage too (and
/// `in_domain == false`), never a panic.
#[inline(always)]
pub(super) fn direct_chunk(
    input: &Chunk<'_>,
    scratch: &mut DirectScratch,
    out: ChunkOut<'_>,
) -> DirectSummary {
    let (careful, coordinates_in_domain) = coordinates(input, scratch);
    let discount_in_domain = values(input, scratch, out);
    DirectSummary {
        careful,
        in_domain: coordinates_in_domain & discount_in_domain,
    }
}

/// `low <= v <= high`; false for NaN. Bitwise, so that a loop of these vectorises.
#[inline(always)]
fn within(v: f64, low: f64, high: f64) -> bool {
    (v >= low) & (v <= high)
}

/// Pass 1: `h`, `t`, `1 / s`, `1 / F`, `sqrt(T)` and the routing, one division per option.
/// Returns the number of options marked careful, and whether the forwards, strikes, times and
/// volatilities are all in the domain of `Black76::new_checked`.
#[inline(always)]
fn coordinates(input: &Chunk<'_>, scratch: &mut DirectScratch) -> (usize, bool) {
    use limits::{MAX_PRICE_LEVEL, MAX_TIME_TO_EXPIRY_YEARS, MAX_VOLATILITY, MIN_PRICE_LEVEL};
    let n = input.forward.len();
    let (forward, strike) = (&input.forward[..n], &input.strike[..n]);
    let (time, volatility) = (&input.time[..n], &input.volatility[..n]);
    let (h_out, t_out) = (&mut scratch.h[..n], &mut scratch.t[..n]);
    let (inv_s_out, inv_f_out) = (&mut scratch.inv_s[..n], &mut scratch.inv_f[..n]);
    let (sqrt_t_out, careful_out) = (&mut scratch.sqrt_t[..n], &mut scratch.careful[..n]);
    // Pass 1a: the square root and the one division (their latencies overlap across options).
    let (num_out, den_out) = (&mut scratch.numerator[..n], &mut scratch.denominator[..n]);
    let (exp_out, r_out) = (&mut scratch.exponent[..n], &mut scratch.reciprocal[..n]);
    let mut in_domain = true;
    for i in 0..n {
        let f = forward[i];
        in_domain &= within(f, MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)
            & within(strike[i], MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)
            & within(time[i], 0.0, MAX_TIME_TO_EXPIRY_YEARS)
            & within(volatility[i], 0.0, MAX_VOLATILITY);
        let sqrt_t = time[i].sqrt();
        let s = max(volatility[i] * sqrt_t, limits::MIN_TOTAL_VOLATILITY);
        let ln = ln_mantissa_parts(f, strike[i]);
        num_out[i] = ln.numerator;
        den_out[i] = ln.denominator;
        exp_out[i] = ln.exponent;
        r_out[i] = 1.0 / (ln.denominator * (s * f));
        sqrt_t_out[i] = sqrt_t;
        t_out[i] = 0.5 * s;
    }
    // Pass 1b: ln(F / K), h, 1 / s, 1 / F and the routing.
    let (num, den) = (&scratch.numerator[..n], &scratch.denominator[..n]);
    let (exponent, reciprocal) = (&scratch.exponent[..n], &scratch.reciprocal[..n]);
    let mut careful_count = 0_u64;
    for i in 0..n {
        let f = forward[i];
        let t = t_out[i];
        let s = 2.0 * t;
        let r = reciprocal[i];
        let ln = LnParts {
            exponent: exponent[i],
            numerator: num[i],
            denominator: den[i],
        };
        let u = ln.numerator * ((s * f) * r);
        let inv_s = ln.denominator * f * r;
        let x = fma(
            ln.exponent,
            LN2_HI,
            fma(ln.exponent, LN2_LO, ln.atanh_series(u)),
        );
        let h = -x.abs() * inv_s;
        h_out[i] = h;
        inv_s_out[i] = inv_s;
        inv_f_out[i] = ln.denominator * s * r;
        let route = u64::from(!is_direct(h, t));
        careful_out[i] = route;
        careful_count += route;
    }
    (
        usize::try_from(careful_count).unwrap_or(usize::MAX),
        in_domain,
    )
}

/// Pass 2: the density, both `erfcx` (one division) and the outputs. Returns whether the
/// discount factors are all in the domain of `Black76::new_checked`.
#[inline(always)]
fn values(input: &Chunk<'_>, scratch: &DirectScratch, out: ChunkOut<'_>) -> bool {
    use limits::{MAX_DISCOUNT_FACTOR, MIN_DISCOUNT_FACTOR};
    let n = input.forward.len();
    let (forward, strike) = (&input.forward[..n], &input.strike[..n]);
    let (discount, kind) = (&input.discount[..n], &input.kind[..n]);
    let (h, t) = (&scratch.h[..n], &scratch.t[..n]);
    let (inv_s, inv_f, sqrt_t) = (
        &scratch.inv_s[..n],
        &scratch.inv_f[..n],
        &scratch.sqrt_t[..n],
    );
    let ChunkOut {
        price,
        delta,
        gamma,
        vega,
    } = out;
    let (price, delta) = (&mut price[..n], &mut delta[..n]);
    let (gamma, vega) = (&mut gamma[..n], &mut vega[..n]);
    let mut in_domain = true;
    for i in 0..n {
        let (f, k, df) = (forward[i], strike[i], discount[i]);
        in_domain &= within(df, MIN_DISCOUNT_FACTOR, MAX_DISCOUNT_FACTOR);
        let sign = kind[i].sign();
        let (hi, lo) = (h[i] + t[i], h[i] - t[i]);
        let density_hi = INV_SQRT_2PI * exp_non_positive(-0.5 * hi * hi); // n(h + t)
        // Y(-|h + t|) and Y(h - t) from erfcx; clamped so that careful lanes stay finite.
        let z1 = min(hi.abs() * FRAC_1_SQRT_2, 4.0);
        let z2 = min(-lo * FRAC_1_SQRT_2, 4.0);
        let (p1, q1) = erfcx_near_parts(z1);
        let (p2, q2) = erfcx_near_parts(z2);
        let r = SQRT_PI_OVER_2 / (q1 * q2);
        let y1 = p1 * q2 * r;
        let y2 = p2 * q1 * r;

        let low = min(f, k);
        let forward_density = low * density_hi; // F n(d1) = min(F, K) n(h + t)
        let density_d1 = forward_density * inv_f[i]; // n(d1)
        let tail_hi = density_hi * y1; // N(-|h + t|)
        let upper_hi = 1.0 - tail_hi; // N(|h + t|)
        let (n_hi, n_minus_hi) = if hi <= 0.0 {
            (tail_hi, upper_hi)
        } else {
            (upper_hi, tail_hi)
        };
        // max(F, K) N(h - t) = max(F, K) n(h - t) Y(h - t) = F n(d1) Y(h - t).
        let otm = max(fma(low, n_hi, -forward_density * y2), 0.0);
        // N(h - t) = n(h - t) Y(h - t), used only when F > K, where n(h - t) = n(d1).
        let n_lo = density_d1 * y2;
        // d1 = h + t when F <= K, else -d1 = h - t.
        let f_le_k = f <= k;
        let n_d1 = if f_le_k { n_hi } else { 1.0 - n_lo };
        let n_minus_d1 = if f_le_k { n_minus_hi } else { n_lo };

        let intrinsic = max(sign * (f - k), 0.0);
        price[i] = df * (intrinsic + otm);
        delta[i] = df * if sign > 0.0 { n_d1 } else { -n_minus_d1 };
        gamma[i] = df * density_d1 * inv_s[i] * inv_f[i];
        vega[i] = df * forward_density * sqrt_t[i];
    }
    in_domain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_follows_both_boundaries() {
        // Cancellation bound |h| + 1.26 <= 80 t.
        for t in [0.02, 0.05, 0.07] {
            let abs_h = 2.0 * MAX_CANCELLATION * t - Y_OVER_DERIVATIVE_EXCESS;
            assert!(is_direct(-abs_h * (1.0 - 1e-12), t));
            assert!(!is_direct(-abs_h * (1.0 + 1e-12), t));
        }
        // erfcx range |h| + t <= 4 sqrt(2).
        for t in [0.2, 1.0, 3.0] {
            let abs_h = MAX_ABS_H_PLUS_T - t;
            assert!(is_direct(-abs_h * (1.0 - 1e-12), t));
            assert!(!is_direct(-abs_h * (1.0 + 1e-12), t));
        }
        // Expired and far wings.
        assert!(!is_direct(0.0, 0.5 * limits::MIN_TOTAL_VOLATILITY));
        assert!(!is_direct(-40.0, 0.5));
        assert!(is_direct(0.0, 0.5));
    }
}
