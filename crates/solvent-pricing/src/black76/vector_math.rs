//! Branch-free `exp`, `ln` and `erfcx` for the batch kernel.
//!
//! The standard library calls `libm` for `exp` and `ln`, and Cody's `erfcx` branches on its
//! argument; either stops LLVM from vectorising a loop. These versions use only arithmetic,
//! comparisons turned into selects, and integer operations on the bits of an `f64`, all of
//! which LLVM maps to SIMD lanes. Each is accurate to a few units in the last place over the
//! domain the kernel uses; `tests` below compare them with the scalar functions.
#![allow(
    clippy::excessive_precision,
    reason = "published constants (fdlibm's ln 2 split, Cody's coefficients) are kept digit for digit"
)]

/// `a * b + c` with one rounding (`f64::mul_add`). The workspace is built for x86-64-v3, whose
/// FMA instruction this becomes; the result is correctly rounded on every target, so the batch
/// path gives the same bits on every machine (rustc never fuses a separate `*` and `+`).
#[inline(always)]
pub(crate) fn fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// `c[0] + c[1] x + ... + c[N-1] x^(N-1)` by Estrin's scheme: pairs `c[2i] + c[2i+1] x`, then
/// pairs of those with `x^2`, then `x^4`, ... The dependency chain is `log2(N)` FMAs long instead
/// of Horner's `N - 1`, so more options are in flight at once in the batch kernels (their loops
/// are bound by latency, not by the number of operations). The polynomials used here have terms
/// of one sign or rapidly decreasing terms, where Estrin is as accurate as Horner.
#[inline(always)]
pub(crate) fn estrin<const N: usize>(c: &[f64; N], x: f64) -> f64 {
    let mut terms = *c;
    let mut len = N;
    let mut power = x;
    while len > 1 {
        let half = len.div_ceil(2);
        for i in 0..half {
            terms[i] = if 2 * i + 1 < len {
                fma(terms[2 * i + 1], power, terms[2 * i])
            } else {
                terms[2 * i]
            };
        }
        len = half;
        power *= power;
    }
    terms[0]
}

/// `max(a, b)` as one compare-and-select (`maxpd`); `f64::max` also handles NaN, which costs
/// extra instructions per lane and no input here can be NaN.
#[inline(always)]
pub(crate) fn max(a: f64, b: f64) -> f64 {
    if a > b { a } else { b }
}

/// `min(a, b)`, as [`max`].
#[inline(always)]
pub(crate) fn min(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

/// `2^52`, and `1.5 * 2^52` for round-to-nearest by addition.
const TWO_52: f64 = 4_503_599_627_370_496.0;
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
/// `ln 2` split so that `k * LN2_HI` is exact for `|k| < 2^20` (fdlibm's split).
pub(crate) const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
pub(crate) const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `exp(r) = 1 + r + r^2 q(r)` on `|r| <= ln 2 / 2`: the coefficients of `q`, lowest degree
/// first, by Chebyshev interpolation of `(exp(r) - 1 - r) / r^2` at 10 points in 40-digit
/// arithmetic (relative error of `1 + r + r^2 q(r)` below `1.6e-17` with these f64
/// coefficients).
const EXP_Q: [f64; 10] = [
    0.500_000_000_000_000_1,
    0.166_666_666_666_666_69,
    0.041_666_666_666_624_164,
    0.008_333_333_333_330_065,
    0.001_388_888_891_719_671_9,
    0.000_198_412_698_630_405_45,
    2.480_152_132_236_869_2e-5,
    2.755_726_848_031_002_4e-6,
    2.762_007_587_998_336_7e-7,
    2.510_037_583_256_123_4e-8,
];
/// Below this `exp(y) < 2^-1022`: the result is flushed to zero (no subnormals, which are slow).
const EXP_UNDERFLOW: f64 = -708.0;

/// `exp(y)` for `y <= 0`, with results below `~3e-308` flushed to `0`. About 1 ulp.
///
/// `y = k ln2 + r` with `|r| <= ln2 / 2`; `exp(r)` by a polynomial of degree 11 ([`EXP_Q`]);
/// `2^k` built in the exponent bits.
#[inline(always)]
pub(crate) fn exp_non_positive(y: f64) -> f64 {
    let underflow = y < EXP_UNDERFLOW;
    let y = max(y, EXP_UNDERFLOW);
    let shifted = fma(y, LOG2_E, ROUND_MAGIC);
    let k = shifted - ROUND_MAGIC;
    // The low bits of `shifted` hold k (two's complement, k in [-1022, 0]).
    let k_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    let r = fma(-k, LN2_LO, fma(-k, LN2_HI, y));
    let p = 1.0 + fma(r * r, estrin(&EXP_Q, r), r);
    let scale = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    if underflow { 0.0 } else { p * scale }
}

/// `ln(a / b)` for positive normal `a` and `b`, without forming the (possibly overflowing)
/// ratio, and with relative accuracy when `a / b` is near 1.
///
/// With mantissas `m_a, m_b` in `[1, 2)` and exponents `e_a, e_b`, take `A = m_a 2^j` with
/// `j` in `{-1, 0, 1}` such that `A / m_b` lies in about `[sqrt(1/2), sqrt(2)]`; then
/// `ln(a / b) = (e_a - e_b - j) ln 2 + 2 atanh(u)`, `u = (A - m_b) / (A + m_b)`. `A - m_b` is
/// exact (Sterbenz), so `u` and the result carry about two roundings relative to themselves:
/// when `a / b` is near 1 this is `(a - b) / (a + b)` up to a power of two, with no rounding
/// of the ratio. `2 atanh(u)` (`|u| <= 0.1716`) is a minimax polynomial, [`ATANH_SERIES`].
#[inline(always)]
pub(crate) fn ln_ratio(a: f64, b: f64) -> f64 {
    let parts = ln_mantissa_parts(a, b);
    let u = parts.numerator / parts.denominator;
    fma(
        parts.exponent,
        LN2_HI,
        fma(parts.exponent, LN2_LO, parts.atanh_series(u)),
    )
}

/// The pieces of [`ln_ratio`] before its division: `ln(a / b) = exponent * ln 2 +
/// 2 atanh(numerator / denominator)`, with `numerator` exact and `denominator` in `[2, 4]`.
/// The direct batch kernel folds the division into one it shares with `1 / s` and `1 / F`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LnParts {
    /// `e_a - e_b - j`, an exact integer.
    pub(crate) exponent: f64,
    /// `A - m_b` (exact).
    pub(crate) numerator: f64,
    /// `A + m_b`.
    pub(crate) denominator: f64,
}

impl LnParts {
    /// `2 atanh(u)` for `|u| <= 0.1716` ([`ATANH_SERIES`]).
    #[inline(always)]
    pub(crate) fn atanh_series(self, u: f64) -> f64 {
        let u2 = u * u;
        let p = estrin(&ATANH_SERIES, u2);
        fma(u * u2, p, 2.0 * u)
    }
}

/// `2 atanh(u) = 2u + u^3 p(u^2)` for `|u| <= 0.1716`: the coefficients of `p`, lowest degree
/// first (fdlibm's `Lg1`..`Lg7` from `e_log.c`, a minimax fit; relative error of the sum below
/// `1.3e-18`, checked in 40-digit arithmetic).
const ATANH_SERIES: [f64; 7] = [
    6.666_666_666_666_735_130e-1,
    3.999_999_999_940_941_908e-1,
    2.857_142_874_366_239_149e-1,
    2.222_219_843_214_978_396e-1,
    1.818_357_216_161_805_012e-1,
    1.531_383_769_920_937_332e-1,
    1.479_819_860_511_658_591e-1,
];

/// Splits `ln(a / b)` as described at [`ln_ratio`], for positive normal `a` and `b`.
#[inline(always)]
pub(crate) fn ln_mantissa_parts(a: f64, b: f64) -> LnParts {
    const MANTISSA: u64 = (1 << 52) - 1;
    const ONE: u64 = 0x3ff0_0000_0000_0000;
    const INT_BIAS: u64 = 0x4330_0000_0000_0000;
    let (bits_a, bits_b) = (a.to_bits(), b.to_bits());
    // Exponent fields as exact f64 integers: 2^52 + e, minus 2^52.
    let exp_a = f64::from_bits((bits_a >> 52) | INT_BIAS) - TWO_52;
    let exp_b = f64::from_bits((bits_b >> 52) | INT_BIAS) - TWO_52;
    let mant_a = f64::from_bits((bits_a & MANTISSA) | ONE);
    let mant_b = f64::from_bits((bits_b & MANTISSA) | ONE);
    let high = mant_a > mant_b * std::f64::consts::SQRT_2;
    let low = mant_a < mant_b * std::f64::consts::FRAC_1_SQRT_2;
    let scaled_a = if high {
        mant_a * 0.5
    } else if low {
        mant_a * 2.0
    } else {
        mant_a
    };
    let exponent = exp_a - exp_b
        + if high {
            1.0
        } else if low {
            -1.0
        } else {
            0.0
        };
    LnParts {
        exponent,
        numerator: scaled_a - mant_b,
        denominator: scaled_a + mant_b,
    }
}

/// Numerator and denominator of a rational approximation of `erfcx` on `[0, 4]`, fitted for
/// this crate (weighted least squares with Lawson's minimax reweighting, 50-digit arithmetic,
/// `scripts/oracles/rational_fit.py erfcx 8 8 4.0`): relative error `1.2e-17` in exact
/// arithmetic, about 3 ulp when evaluated in `f64`.
const NEAR_P: [f64; 9] = [
    1.0,
    1.606_613_986_587_142,
    1.300_555_475_156_989_7,
    0.648_514_021_665_246_7,
    0.211_909_586_698_980_5,
    0.045_041_661_508_256_09,
    0.005_765_346_151_535_241,
    0.000_344_573_535_749_088_2,
    4.550_663_254_822_247_5e-11,
];
const NEAR_Q: [f64; 9] = [
    1.0,
    2.734_993_153_682_651,
    3.386_664_771_921_529,
    2.487_215_620_615_284_5,
    1.189_173_303_033_306_7,
    0.380_696_939_306_062_8,
    0.080_140_826_145_456_28,
    0.010_218_727_372_209_866,
    0.000_610_744_400_725_714_2,
];
/// Cody (1969), `erfc` for `x > 4`: `erfcx(x) = (1/sqrt(pi) - v P(v) / Q(v)) / x`, `v = 1/x^2`
/// (coefficients as in Jaeckel's and the `implied-vol` crate's `erf_cody`). Here multiplied
/// through by `x^12` so that one division serves: with `w = x^2`,
/// `erfcx = (w D(w) / sqrt(pi) - N(w)) / (x w D(w))`, where `N`, `D` are `P`, `Q` reversed.
const FAR_P: [f64; 6] = [
    3.053_266_349_612_323_44e-1,
    3.603_448_999_498_044_39e-1,
    1.257_817_261_112_292_46e-1,
    1.608_378_514_874_227_66e-2,
    6.587_491_615_298_378_03e-4,
    1.631_538_713_730_209_78e-2,
];
const FAR_Q: [f64; 5] = [
    2.568_520_192_289_822_42,
    1.872_952_849_923_460_47,
    5.279_051_029_514_284_12e-1,
    6.051_834_131_244_131_91e-2,
    2.335_204_976_268_691_85e-3,
];
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
const NEAR_FAR_SPLIT: f64 = 4.0;

/// Numerator and denominator `(P(z), Q(z))` of the near-range rational approximation:
/// `erfcx(z) = P(z) / Q(z)` for `0 <= z <= 4`. `Q(z)` is in `[1, 2000]` there.
#[inline(always)]
pub(crate) fn erfcx_near_parts(z: f64) -> (f64, f64) {
    (estrin(&NEAR_P, z), estrin(&NEAR_Q, z))
}

/// `Y(-w) = P(w) / Q(w)` on `[0, 4 sqrt(2)]`, `P` of degree 7 and `Q` of degree 8, lowest
/// degree first: relative error `7.1e-17` in exact arithmetic, about 3 ulp when evaluated in
/// `f64` (every coefficient is positive, so nothing cancels). Fitted for this crate by
/// `scripts/oracles/rational_fit.py tail_ratio 7 8 5.656854249492381` (weighted least
/// squares with Lawson's minimax reweighting, in 40-digit arithmetic). A degree less in `P` than
/// [`NEAR_P`] / [`NEAR_Q`] (8 and 8, in the variable `z = w / sqrt(2)`) for the same accuracy.
const TAIL_P: [f64; 8] = [
    1.2533141373155001,
    1.470753981290725,
    0.86345373046207,
    0.3124766009714212,
    0.07419229003398647,
    0.011488034956086272,
    0.0010750582018352237,
    4.7231608442440225e-5,
];
const TAIL_Q: [f64; 9] = [
    1.0,
    1.9713764552140671,
    1.7618672376493738,
    0.9353602152867376,
    0.3238830175791148,
    0.07526641333541324,
    0.011535315790688736,
    0.0010750565325697333,
    4.723163578464977e-5,
];

/// The scaled normal tail `Y(-w) = N(-w) / n(w) = sqrt(pi / 2) erfcx(w / sqrt(2))` for
/// `0 <= w <= 4 sqrt(2)`: [`TAIL_P`] / [`TAIL_Q`], one division. About 3 ulp.
#[inline(always)]
pub(crate) fn normal_tail_ratio(w: f64) -> f64 {
    estrin(&TAIL_P, w) / estrin(&TAIL_Q, w)
}

/// `erfcx(z) = exp(z^2) erfc(z)` for `0 <= z <= 30`; one division.
#[inline(always)]
pub(crate) fn erfcx_non_negative(z: f64) -> f64 {
    // Near: P(z) / Q(z), both of degree 8.
    let (pn, qn) = erfcx_near_parts(z);
    // Far, at max(z, 4) so the unused lanes stay finite.
    let zf = max(z, NEAR_FAR_SPLIT);
    let w = zf * zf;
    // N(w) = P5 + P0 w + P1 w^2 + P2 w^3 + P3 w^4 + P4 w^5.
    let mut nf = FAR_P[4];
    nf = fma(nf, w, FAR_P[3]);
    nf = fma(nf, w, FAR_P[2]);
    nf = fma(nf, w, FAR_P[1]);
    nf = fma(nf, w, FAR_P[0]);
    nf = fma(nf, w, FAR_P[5]);
    // D(w) = 1 + Q0 w + Q1 w^2 + Q2 w^3 + Q3 w^4 + Q4 w^5.
    let mut df = FAR_Q[4];
    df = fma(df, w, FAR_Q[3]);
    df = fma(df, w, FAR_Q[2]);
    df = fma(df, w, FAR_Q[1]);
    df = fma(df, w, FAR_Q[0]);
    df = fma(df, w, 1.0);
    let wd = w * df;
    let far_num = fma(wd, FRAC_1_SQRT_PI, -nf);
    let far_den = zf * wd;
    let near = z <= NEAR_FAR_SPLIT;
    let num = if near { pn } else { far_num };
    let den = if near { qn } else { far_den };
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;
    use implied_vol::{DefaultSpecialFn, SpecialFn};

    fn rel(a: f64, b: f64) -> f64 {
        if a == b { 0.0 } else { ((a - b) / b).abs() }
    }

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let y = -708.0 * f64::from(i) / 200_000.0;
            worst = worst.max(rel(exp_non_positive(y), y.exp()));
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(exp_non_positive(-709.0), 0.0);
        assert_eq!(exp_non_positive(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_non_positive(0.0), 1.0);
    }

    #[test]
    fn ln_ratio_matches_the_scalar_path() {
        let mut worst: f64 = 0.0;
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state
        };
        for i in 0..300_000 {
            let a = f64::from_bits((next() >> 12) | 0x3ff0_0000_0000_0000)
                * 2f64.powi((next() % 200) as i32 - 100);
            // A third of the pairs within 1% of each other, where relative accuracy matters.
            let b = if i % 3 == 0 {
                a * (1.0 + 0.02 * (f64::from_bits((next() >> 12) | 0x3ff0_0000_0000_0000) - 1.5))
            } else {
                f64::from_bits((next() >> 12) | 0x3ff0_0000_0000_0000)
                    * 2f64.powi((next() % 200) as i32 - 100)
            };
            let reference = crate::black76::ln_ratio(a, b);
            worst = worst.max(rel(ln_ratio(a, b), reference));
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(ln_ratio(3.0, 3.0), 0.0);
        assert!(rel(ln_ratio(1e300, 1e-300), 1e300f64.ln() - 1e-300f64.ln()) < 1e-15);
        assert!(
            rel(ln_ratio(1.0 + 1e-15, 1.0), 1e-15f64.ln_1p()) < 0.2,
            "one ulp of 1 + 1e-15 is 11%"
        );
    }

    #[test]
    fn normal_tail_ratio_matches_cody_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        for i in 0..=300_000 {
            let w = 4.0 * std::f64::consts::SQRT_2 * f64::from(i) / 300_000.0;
            let cody = 1.253_314_137_315_500_3
                * DefaultSpecialFn::erfcx(w * std::f64::consts::FRAC_1_SQRT_2);
            worst = worst.max(rel(normal_tail_ratio(w), cody));
        }
        assert!(worst < 1.5e-15, "worst relative error {worst:e}");
    }

    #[test]
    fn erfcx_matches_cody_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        for i in 0..=300_000 {
            let z = 30.0 * f64::from(i) / 300_000.0;
            worst = worst.max(rel(erfcx_non_negative(z), DefaultSpecialFn::erfcx(z)));
        }
        assert!(worst < 1.5e-15, "worst relative error {worst:e}");
    }
}
