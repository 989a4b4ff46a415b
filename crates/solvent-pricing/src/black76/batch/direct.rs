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
//! at most `2 * 80 * (a few ulp) < 3e-13` relative error; the worst seen against the scalar
//! path, near the money at `t = 0.008`, is `8e-14`) and both arguments of `Y`, `-|h + t|` and
//! `h - t`, lie in `[-4 sqrt(2), 0]`, the range of the single rational approximation used
//! here. Every other option (short-dated near the money, far wings, expired) goes to the
//! careful kernel, which has the Taylor series and the far-range `erfcx`. In the benchmark's
//! market-like inputs 98% of options are direct (96% with a limit of 40, where the careful
//! kernel and the gathering of its options took a fifth of the time).
//!
//! # Divisions
//! Division and square root are the slowest vector operations and share one unit, which works
//! alongside the multipliers. The scalar algorithm needs five divisions per option (`ln`,
//! `1 / s`, `1 / F` and two `erfcx`); here there are three:
//! - `ln(F / K)` needs `u = n / d` (its `atanh` argument, `d` in `[2, 4]`) and the greeks
//!   `1 / (F s)`: both come from one reciprocal `r = 1 / (d F s)`, as `u = n (F s r)` and
//!   `1 / (F s) = d r`, which also gives `1 / s = F / (F s)` and `1 / F = s / (F s)` at one
//!   more rounding each. (Measured on an Intel Xeon with AVX-512, where pass 1 waits on the
//!   division unit: 7% faster than a division each; on AMD Zen 4, whose divisions are faster,
//!   it was no faster.)
//! - `Y(-|h + t|)` and `Y(h - t)` take one each. (Sharing one, as `1 / (Q1 Q2)`, costs four
//!   multiplications, and pass 2 is bound by its multiplications; measured slower on both.)
//!
//! # Passes
//! Pass 1 reads and validates the inputs and computes the coordinates and the routing; pass 2
//! the density, the two tail ratios and the outputs. (Moving the choice of `min(F, K)` and the
//! intrinsic value into pass 1 measured slower; moving the reading of the option type there,
//! faster.) Each pass is one loop over the chunk whose
//! iterations are independent, so the processor overlaps the dependency chains of several
//! options.
//!
//! Where the time goes (AMD Zen 4, AVX-512, options in the L2 cache, about 19 cycles per
//! option in all): pass 2 takes about 55%, bound by its 67 multiplications and FMAs per 8
//! options (one 512-bit FMA per cycle) and by waiting on its two divisions; pass 1 about 35%,
//! bound by the division unit (a square root, 16 cycles per 8 options, and two divisions, 9
//! each) and the validation's 15 comparisons; the careful kernel and the gathering of its
//! options about 7%. With a million options (columns in memory) reading the inputs adds about
//! a tenth. Tried and measured no faster or slower: pass 1 as two loops; pass 2 as two or three
//! loops (tail ratios apart, or density apart too); moving the density's range reduction or
//! the second tail ratio into pass 1, or pass 1's division into pass 2; Horner instead of
//! Estrin for the tail ratios; pass 1 of the next chunk fused into the loop of pass 2 (software
//! pipelining: LLVM runs out of registers and reloads constants); one rational approximation
//! of `Y` over `[0, 10]` or `[0, 20]` (a degree more, which costs every option more than the
//! careful kernel saves); software prefetching of the columns.
//!
//! On the benchmark machine of `docs/benchmarks.md` (an Intel Xeon with AVX-512, where a
//! 512-bit division takes about 6 ns and a square root about 7.5 ns per 8 options), the crypto
//! chain in cache, before pass 1 shared its divisions: pass 1 43%, pass 2 44%, the careful
//! kernel, the gathering of its options and the scratch set-up 12%. Pass 1 waits on the
//! division unit (dropping the validation's comparisons changed nothing; sharing its two
//! divisions gained 7%), pass 2 on the multiplier ports (one division for both tail ratios, at
//! four more multiplications, lost 5%; Horner for the tail ratios lost 1%). Also measured
//! there: the x86-64-v3 (AVX2) compilation of the kernels 1.46 times slower than the AVX-512
//! one (16 registers: constants reloaded from memory), AVX-512 at 256 bits
//! (`prefer-256-bit`) 1.16 times slower, and passes 1 and 2 fused in one loop 1.5 times
//! slower. A careful option costs about 12 ns more than a direct one: 0.58 ns per option of
//! the chain (4.9% careful), 2.2 ns of the flat chain (19.3%). In the chain nearly all of them
//! (49,312 of 49,314 per million) fail the cancellation bound (daily expiries, `t` from 0.01
//! to 0.03, `|h|` above `160 t - 1.26`), not the range of `Y`.

use super::super::vector_math::{
    LN2_HI, LN2_LO, exp_non_positive, fma, ln_mantissa_parts, max, min, normal_tail_ratio,
};
use super::super::{INV_SQRT_2PI, OptionType, limits};
use super::{CHUNK, Chunk, ChunkOut};

/// Largest accepted bound on the cancellation factor `C` (see the module documentation).
pub(super) const MAX_CANCELLATION: f64 = 80.0;
/// Upper bound of `Y(h) / Y'(h) - |h|` for `h <= 0` (`sqrt(pi / 2) = 1.2533...`, rounded up).
pub(super) const Y_OVER_DERIVATIVE_EXCESS: f64 = 1.26;
/// Largest `|h| + t` served: the arguments of `Y` stay in `[-4 sqrt(2), 0]`, the range of its
/// one rational approximation (`vector_math::normal_tail_ratio`).
pub(super) const MAX_ABS_H_PLUS_T: f64 = 4.0 * std::f64::consts::SQRT_2;

/// Positive when the option at normalised coordinates `h <= 0`, `t >= 0` needs the careful
/// kernel, else zero or negative: the larger excess over the two bounds of the module
/// documentation, `|h| + t <= MAX_ABS_H_PLUS_T` and `|h| + 1.26 <= 2 MAX_CANCELLATION t`,
/// each the difference of the two sides (whose sign is exact: the decision is the comparison's).
#[inline(always)]
pub(super) fn routing_excess(h: f64, t: f64) -> f64 {
    let abs_h = -h;
    max(
        (abs_h + t) - MAX_ABS_H_PLUS_T,
        (abs_h + Y_OVER_DERIVATIVE_EXCESS) - 2.0 * MAX_CANCELLATION * t,
    )
}

/// Per-chunk intermediates of the direct kernel.
#[repr(align(64))] // every array on a cache-line boundary: no load straddles two lines
pub(super) struct DirectScratch {
    h: [f64; CHUNK],
    t: [f64; CHUNK],
    /// `1 / (F s)`.
    inv_fs: [f64; CHUNK],
    inv_f: [f64; CHUNK],
    sqrt_t: [f64; CHUNK],
    /// `1.0` for a call, `0.0` for a put.
    call: [f64; CHUNK],
    /// Positive where the option needs the careful kernel ([`routing_excess`]).
    pub(super) careful: [f64; CHUNK],
}

impl Default for DirectScratch {
    fn default() -> Self {
        Self {
            h: [0.0; CHUNK],
            t: [0.0; CHUNK],
            inv_fs: [0.0; CHUNK],
            inv_f: [0.0; CHUNK],
            sqrt_t: [0.0; CHUNK],
            call: [0.0; CHUNK],
            careful: [0.0; CHUNK],
        }
    }
}

/// What [`direct_chunk`] found about its chunk.
pub(super) struct DirectSummary {
    /// `true` when every input of the chunk is in the domain of `Black76::new_checked` (the
    /// check of `Black76Batch::new_checked`, done here while the inputs are loaded anyway).
    pub(super) in_domain: bool,
}

/// Values every option of the chunk by the direct form, and marks in `scratch.careful` the
/// ones whose result must be replaced by the careful kernel's. Their lanes here hold finite or
/// non-finite garbage, never read. Inputs outside the domain give garbage too (and
/// `in_domain == false`), never a panic.
#[inline(always)]
pub(super) fn direct_chunk<const GREEKS: bool>(
    input: &Chunk<'_>,
    scratch: &mut DirectScratch,
    out: ChunkOut<'_>,
) -> DirectSummary {
    let in_domain = coordinates::<GREEKS>(input, scratch);
    values::<GREEKS>(input, scratch, out);
    DirectSummary { in_domain }
}

/// `low <= v <= high`; false for NaN. Bitwise, so that a loop of these vectorises.
#[inline(always)]
fn within(v: f64, low: f64, high: f64) -> bool {
    (v >= low) & (v <= high)
}

/// Pass 1: `h`, `t`, `1 / (F s)`, `1 / F`, `sqrt(T)`, the option type and the routing; one
/// square root and one division per option (without `GREEKS`, `1 / (F s)`, `1 / F` and
/// `sqrt(T)`, which only the greeks read, are not stored). Returns whether every input
/// (forward, strike, time, volatility, discount factor) is in the domain of
/// `Black76::new_checked`.
#[inline(always)]
fn coordinates<const GREEKS: bool>(input: &Chunk<'_>, scratch: &mut DirectScratch) -> bool {
    use limits::{
        MAX_DISCOUNT_FACTOR, MAX_PRICE_LEVEL, MAX_TIME_TO_EXPIRY_YEARS, MAX_VOLATILITY,
        MIN_DISCOUNT_FACTOR, MIN_PRICE_LEVEL,
    };
    let n = input.forward.len();
    let (forward, strike) = (&input.forward[..n], &input.strike[..n]);
    let (time, volatility) = (&input.time[..n], &input.volatility[..n]);
    let (discount, kind) = (&input.discount[..n], &input.kind[..n]);
    let call_out = &mut scratch.call[..n];
    let (h_out, t_out) = (&mut scratch.h[..n], &mut scratch.t[..n]);
    let (inv_fs_out, inv_f_out) = (&mut scratch.inv_fs[..n], &mut scratch.inv_f[..n]);
    let (sqrt_t_out, careful_out) = (&mut scratch.sqrt_t[..n], &mut scratch.careful[..n]);
    let mut in_domain = true;
    for i in 0..n {
        let f = forward[i];
        in_domain &= within(f, MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)
            & within(strike[i], MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)
            & within(time[i], 0.0, MAX_TIME_TO_EXPIRY_YEARS)
            & within(volatility[i], 0.0, MAX_VOLATILITY)
            & within(discount[i], MIN_DISCOUNT_FACTOR, MAX_DISCOUNT_FACTOR);
        let sqrt_t = time[i].sqrt();
        let s = max(volatility[i] * sqrt_t, limits::MIN_TOTAL_VOLATILITY);
        // ln(F / K) = e ln 2 + 2 atanh(n / d) and 1 / (F s) from one reciprocal
        // (module documentation, "Divisions").
        let parts = ln_mantissa_parts(f, strike[i]);
        let fs = s * f;
        let r = 1.0 / (parts.denominator * fs);
        let inv_fs = parts.denominator * r;
        let u = parts.numerator * (fs * r);
        let x = fma(
            parts.exponent,
            LN2_HI,
            fma(parts.exponent, LN2_LO, parts.atanh_series(u)),
        );
        let t = 0.5 * s;
        t_out[i] = t;
        let inv_s = inv_fs * f;
        let h = -x.abs() * inv_s;
        h_out[i] = h;
        if GREEKS {
            sqrt_t_out[i] = sqrt_t;
            inv_fs_out[i] = inv_fs;
            inv_f_out[i] = inv_fs * s;
        }
        careful_out[i] = routing_excess(h, t);
        // The option type as a number, read here with the other inputs: pass 2 then reads no
        // byte column and makes no mask from bytes (measured 2% to 5% faster).
        call_out[i] = if kind[i] == OptionType::Call {
            1.0
        } else {
            0.0
        };
    }
    in_domain
}

/// Pass 2: the density, both tail ratios `Y` (a division each) and the outputs (the price
/// alone without `GREEKS`: the same operations for it, so the same bits).
#[inline(always)]
fn values<const GREEKS: bool>(input: &Chunk<'_>, scratch: &DirectScratch, out: ChunkOut<'_>) {
    let n = input.forward.len();
    let (forward, strike) = (&input.forward[..n], &input.strike[..n]);
    let (discount, calls) = (&input.discount[..n], &scratch.call[..n]);
    let (h, t) = (&scratch.h[..n], &scratch.t[..n]);
    let (inv_fs, inv_f, sqrt_t) = (
        &scratch.inv_fs[..n],
        &scratch.inv_f[..n],
        &scratch.sqrt_t[..n],
    );
    let ChunkOut {
        price,
        delta,
        gamma,
        vega,
    } = out;
    let price = &mut price[..n];
    let (delta, gamma, vega) = if GREEKS {
        (&mut delta[..n], &mut gamma[..n], &mut vega[..n])
    } else {
        (delta, gamma, vega)
    };
    for i in 0..n {
        let (f, k, df) = (forward[i], strike[i], discount[i]);
        let call = calls[i] > 0.0;
        let (hi, lo) = (h[i] + t[i], h[i] - t[i]);
        let density_hi = INV_SQRT_2PI * exp_non_positive(-0.5 * hi * hi); // n(h + t)
        // Y(-|h + t|) and Y(h - t); clamped so that careful lanes stay finite.
        let y1 = normal_tail_ratio(min(hi.abs(), MAX_ABS_H_PLUS_T));
        let y2 = normal_tail_ratio(min(-lo, MAX_ABS_H_PLUS_T));

        let low = min(f, k);
        let forward_density = low * density_hi; // F n(d1) = min(F, K) n(h + t)
        let tail_hi = density_hi * y1; // N(-|h + t|)
        let upper_hi = 1.0 - tail_hi; // N(|h + t|)
        let (n_hi, n_minus_hi) = if hi <= 0.0 {
            (tail_hi, upper_hi)
        } else {
            (upper_hi, tail_hi)
        };
        // max(F, K) N(h - t) = max(F, K) n(h - t) Y(h - t) = F n(d1) Y(h - t).
        let high_tail = forward_density * y2;
        let otm = max(fma(low, n_hi, -high_tail), 0.0);
        let intrinsic = max(if call { f - k } else { k - f }, 0.0);
        price[i] = df * (intrinsic + otm);
        // The greeks (without `GREEKS`, `1 / (F s)`, `1 / F` and `sqrt(T)` were not stored).
        if GREEKS {
            // N(h - t), used only when F > K, where max(F, K) = F.
            let n_lo = high_tail * inv_f[i];
            // d1 = h + t when F <= K, else -d1 = h - t.
            let f_le_k = f <= k;
            let n_d1 = if f_le_k { n_hi } else { 1.0 - n_lo };
            let n_minus_d1 = if f_le_k { n_minus_hi } else { n_lo };
            delta[i] = df * if call { n_d1 } else { -n_minus_d1 };
            let discounted_density = df * forward_density; // DF F n(d1)
            gamma[i] = discounted_density * inv_f[i] * inv_fs[i]; // DF n(d1) / (F s)
            vega[i] = discounted_density * sqrt_t[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_direct(h: f64, t: f64) -> bool {
        routing_excess(h, t) <= 0.0
    }

    #[test]
    fn routing_follows_both_boundaries() {
        // Cancellation bound |h| + 1.26 <= 160 t (where |h| + t stays below 4 sqrt(2)).
        for t in [0.01, 0.02, 0.035] {
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

    /// The two bounds as comparisons, as the module documentation states them.
    fn is_direct_by_comparison(h: f64, t: f64) -> bool {
        let abs_h = -h;
        (abs_h + t <= MAX_ABS_H_PLUS_T)
            & (abs_h + Y_OVER_DERIVATIVE_EXCESS <= 2.0 * MAX_CANCELLATION * t)
    }

    #[test]
    fn routing_excess_decides_as_the_comparisons() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut unit = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1_u64 << 53) as f64
        };
        for _ in 0..200_000 {
            let t = (unit() * 12.0 - 9.0).exp();
            let h = -(unit() * 2.0 * MAX_ABS_H_PLUS_T) * unit();
            assert_eq!(
                is_direct(h, t),
                is_direct_by_comparison(h, t),
                "h {h}, t {t}"
            );
        }
        // On the boundaries, to the last bit.
        for t in [0.01, 0.02, 0.035] {
            let abs_h = 2.0 * MAX_CANCELLATION * t - Y_OVER_DERIVATIVE_EXCESS;
            for h in [-abs_h, -abs_h.next_down(), -abs_h.next_up()] {
                assert_eq!(
                    is_direct(h, t),
                    is_direct_by_comparison(h, t),
                    "h {h}, t {t}"
                );
            }
        }
        for t in [0.2, 1.0, 3.0] {
            let abs_h = MAX_ABS_H_PLUS_T - t;
            for h in [-abs_h, -abs_h.next_down(), -abs_h.next_up()] {
                assert_eq!(
                    is_direct(h, t),
                    is_direct_by_comparison(h, t),
                    "h {h}, t {t}"
                );
            }
        }
    }
}
