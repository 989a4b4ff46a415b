//! Invariants of Black-76 and its inputs: parity, bounds, degenerate cases, named errors.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

use proptest::prelude::*;
use solvent_pricing::black76::{BatchColumns, Black76, Black76Batch, OptionType};
use solvent_pricing::{Field, PricingError};

fn option(f: f64, k: f64, t: f64, sigma: f64, df: f64) -> Black76 {
    Black76::new_checked(f, k, t, sigma, df).expect("valid inputs")
}

// ---- hand-derived cases --------------------------------------------------------------------

/// At the money, undiscounted: C = P = F (2 N(s/2) - 1), delta_call = N(s/2).
/// F = 100, sigma = 0.2, T = 1: s = 0.2, N(0.1) = 0.539827837277029 (tables / mpmath).
#[test]
fn at_the_money_textbook_values() {
    let b = option(100.0, 100.0, 1.0, 0.2, 1.0);
    let n = 0.539_827_837_277_029;
    let call = b.greeks(OptionType::Call);
    let put = b.greeks(OptionType::Put);
    assert!((call.price - 100.0 * (2.0 * n - 1.0)).abs() < 1e-12);
    assert!((put.price - call.price).abs() < 1e-12);
    assert!((call.delta - n).abs() < 1e-15);
    assert!((put.delta - (n - 1.0)).abs() < 1e-15);
    // gamma = n(0.1) / (F s), vega = F n(0.1) sqrt(T), theta = -F n(0.1) sigma / (2 sqrt(T)).
    let density = (-0.005_f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
    assert!((call.gamma - density / 20.0).abs() < 1e-15);
    assert!((call.vega - 100.0 * density).abs() < 1e-12);
    assert!((call.theta + 100.0 * density * 0.1).abs() < 1e-12);
}

/// Hull, Example 18.6 (10th ed.): a European put on a futures price of 20, strike 20, 4 months
/// (T = 4/12), sigma 25%, r 9%: the put is worth 1.12.
#[test]
fn hull_black_model_example() {
    let t: f64 = 4.0 / 12.0;
    let df = (-0.09 * t).exp();
    let put = option(20.0, 20.0, t, 0.25, df).price(OptionType::Put);
    assert!((put - 1.12).abs() < 0.005, "Hull quotes 1.12, got {put}");
}

// ---- degenerate inputs ------------------------------------------------------------------

#[test]
fn expired_option_is_intrinsic_with_defined_greeks() {
    // In the money call, T = 0.
    let g = option(110.0, 100.0, 0.0, 0.5, 0.99).greeks(OptionType::Call);
    assert_eq!(g.price, 0.99 * 10.0);
    assert_eq!(g.delta, 0.99);
    assert_eq!((g.gamma, g.vega, g.theta), (0.0, 0.0, 0.0));
    // Out of the money put, zero volatility with time left: worth 0, no sensitivity.
    let g = option(110.0, 100.0, 1.0, 0.0, 1.0).greeks(OptionType::Put);
    assert_eq!(
        (g.price, g.delta, g.gamma, g.vega, g.theta),
        (0.0, -0.0, 0.0, 0.0, 0.0)
    );
    // At the money, zero volatility: delta is the limit 1/2, vega the limit F sqrt(T / 2 pi).
    let g = option(100.0, 100.0, 0.25, 0.0, 1.0).greeks(OptionType::Call);
    assert_eq!(g.price, 0.0);
    assert_eq!(g.delta, 0.5);
    assert!((g.vega - 100.0 * (0.25 / (2.0 * std::f64::consts::PI)).sqrt()).abs() < 1e-13);
}

#[test]
fn extreme_inputs_give_finite_results() {
    let levels = [1e-100, 1e-8, 1.0, 6e4, 1e100];
    let times = [0.0, 1e-12, 1e-6, 1.0, 1000.0];
    let vols = [0.0, 1e-9, 0.5, 100.0];
    let dfs = [1e-100, 0.5, 1.0, 1e100];
    for &f in &levels {
        for &k in &levels {
            for &t in &times {
                for &sigma in &vols {
                    for &df in &dfs {
                        for kind in [OptionType::Call, OptionType::Put] {
                            let g = option(f, k, t, sigma, df).greeks(kind);
                            let all = [g.price, g.delta, g.gamma, g.vega, g.theta];
                            assert!(
                                all.iter().all(|v| v.is_finite()),
                                "F={f} K={k} T={t} sigma={sigma} DF={df} {kind:?}: {g:?}"
                            );
                            assert!(g.price >= 0.0 && g.gamma >= 0.0 && g.vega >= 0.0);
                        }
                    }
                }
            }
        }
    }
}

// ---- named errors ---------------------------------------------------------------------------

#[test]
fn bad_inputs_are_named_errors() {
    type Inputs = (f64, f64, f64, f64, f64);
    let cases: [(Inputs, PricingError); 10] = [
        (
            (f64::NAN, 100.0, 1.0, 0.2, 1.0),
            PricingError::NonFinite {
                field: Field::Forward,
                value: f64::NAN,
            },
        ),
        (
            (0.0, 100.0, 1.0, 0.2, 1.0),
            PricingError::NotPositive {
                field: Field::Forward,
                value: 0.0,
            },
        ),
        (
            (100.0, -5.0, 1.0, 0.2, 1.0),
            PricingError::NotPositive {
                field: Field::Strike,
                value: -5.0,
            },
        ),
        (
            (100.0, f64::INFINITY, 1.0, 0.2, 1.0),
            PricingError::NonFinite {
                field: Field::Strike,
                value: f64::INFINITY,
            },
        ),
        (
            (100.0, 100.0, -1.0, 0.2, 1.0),
            PricingError::Negative {
                field: Field::TimeToExpiryYears,
                value: -1.0,
            },
        ),
        (
            (100.0, 100.0, 1.0, -0.2, 1.0),
            PricingError::Negative {
                field: Field::Volatility,
                value: -0.2,
            },
        ),
        (
            (100.0, 100.0, 1.0, 0.2, 0.0),
            PricingError::NotPositive {
                field: Field::DiscountFactor,
                value: 0.0,
            },
        ),
        (
            (100.0, 100.0, 1.0, 0.2, f64::NAN),
            PricingError::NonFinite {
                field: Field::DiscountFactor,
                value: f64::NAN,
            },
        ),
        (
            (1e-200, 100.0, 1.0, 0.2, 1.0),
            PricingError::OutOfRange {
                field: Field::Forward,
                value: 1e-200,
                min: 1e-100,
                max: 1e100,
            },
        ),
        (
            (100.0, 100.0, 1.0, 1e3, 1.0),
            PricingError::OutOfRange {
                field: Field::Volatility,
                value: 1e3,
                min: 0.0,
                max: 100.0,
            },
        ),
    ];
    for ((f, k, t, sigma, df), expected) in cases {
        let err = Black76::new_checked(f, k, t, sigma, df).expect_err("must be rejected");
        // NaN != NaN, so compare the debug forms, which name the variant, field and value.
        assert_eq!(format!("{err:?}"), format!("{expected:?}"));
    }
    let err = Black76::new_checked(100.0, 100.0, f64::NAN, 0.2, 1.0).expect_err("NaN time");
    assert_eq!(
        err.to_string(),
        "time_to_expiry_years must be finite, got NaN"
    );
}

#[test]
fn batch_errors_name_the_column_and_the_element() {
    let columns = |strike: &'static [f64], time: &'static [f64]| BatchColumns {
        forward: &[100.0, 100.0, 100.0],
        strike,
        time_to_expiry_years: time,
        volatility: &[0.2, 0.2, 0.2],
        discount_factor: &[1.0, 1.0, 1.0],
        option_type: &[OptionType::Call; 3],
    };
    assert!(Black76Batch::new_checked(columns(&[100.0, 100.0, 100.0], &[1.0, 1.0, 1.0])).is_ok());
    let err = Black76Batch::new_checked(columns(&[100.0, 100.0], &[1.0, 1.0, 1.0]))
        .expect_err("short strike column");
    assert_eq!(
        err,
        PricingError::LengthMismatch {
            field: Field::Strike,
            expected: 3,
            actual: 2
        }
    );
    let err = Black76Batch::new_checked(columns(&[100.0, 100.0, 100.0], &[1.0, -2.0, 1.0]))
        .expect_err("negative time");
    assert_eq!(
        err,
        PricingError::BatchElement {
            index: 1,
            source: Box::new(PricingError::Negative {
                field: Field::TimeToExpiryYears,
                value: -2.0
            }),
        }
    );
    assert_eq!(
        err.to_string(),
        "batch element 1: time_to_expiry_years must not be negative, got -2"
    );
}

// ---- properties ---------------------------------------------------------------------------

fn inputs() -> impl Strategy<Value = (f64, f64, f64, f64, f64)> {
    (
        -3.0_f64..6.0, // log10 forward
        -1.5_f64..1.5, // ln moneyness
        -5.0_f64..1.5, // log10 T (5 minutes .. 30 years)
        -2.0_f64..0.7, // log10 sigma (1% .. 500%)
        0.3_f64..1.05, // discount factor
    )
        .prop_map(|(lf, lm, lt, ls, df)| {
            let f = 10f64.powf(lf);
            (f, f * lm.exp(), 10f64.powf(lt), 10f64.powf(ls), df)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// C - P = DF (F - K), to rounding of the larger of the two prices.
    #[test]
    fn put_call_parity((f, k, t, sigma, df) in inputs()) {
        let b = option(f, k, t, sigma, df);
        let (c, p) = (b.price(OptionType::Call), b.price(OptionType::Put));
        let scale = c.max(p).max(df * (f - k).abs());
        prop_assert!((c - p - df * (f - k)).abs() <= 4e-15 * scale, "C={c} P={p} DF(F-K)={}", df * (f - k));
        // Greek parity: delta_C - delta_P = DF; gamma, vega equal.
        let (gc, gp) = (b.greeks(OptionType::Call), b.greeks(OptionType::Put));
        prop_assert!((gc.delta - gp.delta - df).abs() <= 4e-16 * df.max(1.0));
        prop_assert_eq!(gc.gamma, gp.gamma);
        prop_assert_eq!(gc.vega, gp.vega);
    }

    /// No-arbitrage bounds: DF max(theta (F - K), 0) <= V <= DF F (call) or DF K (put).
    #[test]
    fn price_within_bounds((f, k, t, sigma, df) in inputs()) {
        let b = option(f, k, t, sigma, df);
        for kind in [OptionType::Call, OptionType::Put] {
            let v = b.price(kind);
            let upper = df * if kind == OptionType::Call { f } else { k };
            prop_assert!(v >= df * kind.intrinsic(f, k) * (1.0 - 1e-15));
            prop_assert!(v <= upper * (1.0 + 1e-15));
        }
    }

    /// The price increases with volatility (vega >= 0), checked by finite difference.
    #[test]
    fn price_increases_with_volatility((f, k, t, sigma, df) in inputs()) {
        let b = option(f, k, t, sigma, df);
        let bumped = b.with_volatility(sigma * 1.01).expect("valid volatility");
        prop_assert!(bumped.price(OptionType::Call) >= b.price(OptionType::Call));
    }

    /// Delta and vega agree with central finite differences of the price.
    #[test]
    fn greeks_are_derivatives_of_the_price((f, k, t, sigma, df) in inputs()) {
        let b = option(f, k, t, sigma, df);
        let g = b.greeks(OptionType::Call);
        // A step small against the distribution width F s, so the O(h^2) error stays below 1e-8.
        let hf = f * sigma * t.sqrt() * 1e-4;
        let up = b.with_forward(f + hf).expect("valid").price(OptionType::Call);
        let down = b.with_forward(f - hf).expect("valid").price(OptionType::Call);
        let fd_delta = (up - down) / (2.0 * hf);
        prop_assert!((fd_delta - g.delta).abs() <= 1e-6 * df + 1e-7 * g.delta.abs(), "delta {} fd {fd_delta}", g.delta);
        let hs = sigma * 1e-5;
        let up = b.with_volatility(sigma + hs).expect("valid").price(OptionType::Call);
        let down = b.with_volatility(sigma - hs).expect("valid").price(OptionType::Call);
        let fd_vega = (up - down) / (2.0 * hs);
        let vega_scale = df * f * t.sqrt();
        prop_assert!((fd_vega - g.vega).abs() <= 1e-6 * vega_scale, "vega {} fd {fd_vega}", g.vega);
    }
}
