//! Implied volatility: round trips and typed errors.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

use proptest::prelude::*;
use solvent_pricing::black76::{Black76, OptionType};
use solvent_pricing::implied::implied_volatility;
use solvent_pricing::{Field, PricingError};

#[test]
fn recovers_a_known_volatility() {
    let b = Black76::new_checked(60_000.0, 65_000.0, 0.1, 0.62, 0.995).expect("valid");
    for kind in [OptionType::Call, OptionType::Put] {
        let price = b.price(kind);
        let vol =
            implied_volatility(price, 60_000.0, 65_000.0, 0.1, 0.995, kind).expect("solvable");
        assert!((vol - 0.62).abs() < 1e-13, "{kind:?}: {vol}");
    }
}

#[test]
fn prices_outside_the_attainable_range_are_typed_errors() {
    let (f, k, t, df) = (100.0, 90.0, 0.5, 0.98);
    // Call intrinsic DF (F - K) = 9.8; upper bound DF F = 98.
    let err = implied_volatility(9.0, f, k, t, df, OptionType::Call).expect_err("below intrinsic");
    assert_eq!(
        err,
        PricingError::PriceBelowIntrinsic {
            price: 9.0,
            intrinsic: 0.98 * 10.0
        }
    );
    let err =
        implied_volatility(98.0, f, k, t, df, OptionType::Call).expect_err("at the upper bound");
    assert_eq!(
        err,
        PricingError::PriceAboveUpperBound {
            price: 98.0,
            upper_bound: 98.0
        }
    );
    let err =
        implied_volatility(150.0, f, k, t, df, OptionType::Put).expect_err("above the put bound");
    assert_eq!(
        err,
        PricingError::PriceAboveUpperBound {
            price: 150.0,
            upper_bound: 0.98 * 90.0
        }
    );
    let err = implied_volatility(f64::NAN, f, k, t, df, OptionType::Put).expect_err("NaN price");
    assert!(matches!(
        err,
        PricingError::NonFinite {
            field: Field::Price,
            ..
        }
    ));
    let err = implied_volatility(-1.0, f, k, t, df, OptionType::Put).expect_err("negative price");
    assert_eq!(
        err,
        PricingError::Negative {
            field: Field::Price,
            value: -1.0
        }
    );
    let err = implied_volatility(1.0, f, 0.0, t, df, OptionType::Put).expect_err("zero strike");
    assert_eq!(
        err,
        PricingError::NotPositive {
            field: Field::Strike,
            value: 0.0
        }
    );
    // At expiry only the intrinsic value is attainable.
    let err = implied_volatility(12.0, f, k, 0.0, 1.0, OptionType::Call).expect_err("at expiry");
    assert_eq!(
        err,
        PricingError::NotAttainableAtExpiry {
            price: 12.0,
            intrinsic: 10.0
        }
    );
    assert_eq!(
        implied_volatility(10.0, f, k, 0.0, 1.0, OptionType::Call),
        Ok(0.0)
    );
    // Exactly intrinsic before expiry: zero volatility.
    assert_eq!(
        implied_volatility(0.0, f, k, t, df, OptionType::Put),
        Ok(0.0)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    /// price -> implied volatility -> price reproduces the price to 1e-12. The volatility
    /// itself is recovered to 1e-9 relative where the price is sensitive to it: a price known to
    /// `1e-16 * V` fixes sigma to `1e-16 * V / (vega sigma)` relative, so the check needs
    /// `vega sigma > 1e-4 V` (deep in-the-money and far-wing prices barely move with sigma).
    #[test]
    fn price_to_implied_volatility_to_price(
        log_forward in -2.0_f64..5.0,
        log_moneyness in -1.0_f64..1.0,
        log_time in -4.0_f64..1.3,
        log_vol in -1.7_f64..0.6,
        df in 0.5_f64..1.02,
        is_call in any::<bool>(),
    ) {
        let f = 10f64.powf(log_forward);
        let k = f * log_moneyness.exp();
        let t = 10f64.powf(log_time);
        let sigma = 10f64.powf(log_vol);
        let kind = if is_call { OptionType::Call } else { OptionType::Put };
        let b = Black76::new_checked(f, k, t, sigma, df).expect("valid");
        let g = b.greeks(kind);
        let time_value = g.price - df * kind.intrinsic(f, k);
        // Skip prices whose time value is lost to rounding next to the intrinsic value.
        prop_assume!(time_value > 1e-10 * g.price.max(1e-300) && g.price > 1e-250 * f);
        // ... and prices within rounding of the upper bound (DF F or DF K), which only an
        // infinite volatility reaches.
        let upper = df * if is_call { f } else { k };
        prop_assume!(upper - g.price > 1e-10 * upper);
        let vol = implied_volatility(g.price, f, k, t, df, kind);
        prop_assert!(vol.is_ok(), "{vol:?}");
        let vol = vol.unwrap_or(f64::NAN);
        let repriced = b.with_volatility(vol).expect("valid").price(kind);
        prop_assert!((repriced - g.price).abs() <= 1e-12 * g.price, "price {} repriced {repriced} (vol {vol} vs {sigma})", g.price);
        if g.vega * sigma > 1e-4 * g.price {
            prop_assert!((vol - sigma).abs() <= 1e-9 * sigma, "vol {vol} vs {sigma}");
        }
    }
}
