//! Volatility surface: hand-worked interpolation cases and validation errors.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

use solvent_pricing::surface::{SmileInput, VolSurface};
use solvent_pricing::{Field, PricingError};

fn smile(time: f64, strikes: &[f64], vols: &[f64]) -> SmileInput {
    SmileInput {
        time_to_expiry_years: time,
        strikes: strikes.to_vec(),
        volatilities: vols.to_vec(),
    }
}

/// Two expiries: T = 0.25 with vols (0.60, 0.50, 0.55) at strikes (80, 100, 120), and T = 1.0
/// with (0.50, 0.40, 0.45).
fn surface() -> VolSurface {
    VolSurface::new_checked(vec![
        smile(0.25, &[80.0, 100.0, 120.0], &[0.60, 0.50, 0.55]),
        smile(1.0, &[80.0, 100.0, 120.0], &[0.50, 0.40, 0.45]),
    ])
    .expect("valid surface")
}

#[test]
fn on_the_nodes_the_input_vols() {
    let s = surface();
    assert_eq!(s.volatility(100.0, 0.25), 0.50);
    assert_eq!(s.volatility(80.0, 1.0), 0.50);
    assert_eq!(s.volatility(120.0, 1.0), 0.45);
}

#[test]
fn linear_in_strike_flat_beyond_the_ends() {
    let s = surface();
    // K = 90 at T = 0.25: halfway between 0.60 and 0.50.
    assert!((s.volatility(90.0, 0.25) - 0.55).abs() < 1e-15);
    // K = 115 at T = 1: 3/4 of the way from 0.40 to 0.45 = 0.4375.
    assert!((s.volatility(115.0, 1.0) - 0.4375).abs() < 1e-15);
    // Beyond the ends: the end vols.
    assert_eq!(s.volatility(50.0, 0.25), 0.60);
    assert_eq!(s.volatility(500.0, 1.0), 0.45);
}

#[test]
fn linear_in_total_variance_across_expiries() {
    let s = surface();
    // K = 100, T = 0.5: w(0.25) = 0.5^2 * 0.25 = 0.0625, w(1) = 0.4^2 * 1 = 0.16.
    // w(0.5) = 0.0625 + (0.16 - 0.0625) * (0.25 / 0.75) = 0.095; sigma = sqrt(0.095 / 0.5).
    let expected = (0.095_f64 / 0.5).sqrt();
    assert!(
        (s.volatility(100.0, 0.5) - expected).abs() < 1e-15,
        "{}",
        s.volatility(100.0, 0.5)
    );
    // K = 90, T = 0.75: smile vols 0.55 (T = 0.25) and 0.45 (T = 1).
    // w0 = 0.3025 * 0.25 = 0.075625, w1 = 0.2025; w = w0 + (w1 - w0) * (0.5 / 0.75) = 0.160208333...
    let w = 0.075_625 + (0.2025 - 0.075_625) * (0.5 / 0.75);
    assert!((s.volatility(90.0, 0.75) - (w / 0.75_f64).sqrt()).abs() < 1e-15);
}

#[test]
fn flat_vol_before_the_first_and_after_the_last_expiry() {
    let s = surface();
    assert_eq!(s.volatility(100.0, 0.1), 0.50);
    assert_eq!(s.volatility(100.0, 0.0), 0.50);
    assert_eq!(s.volatility(90.0, 5.0), 0.45);
    // Total for any input, never NaN.
    assert_eq!(s.volatility(f64::NAN, 0.5), s.volatility(80.0, 0.5));
    assert_eq!(s.volatility(100.0, f64::NAN), 0.50);
    assert!(s.volatility_checked(f64::NAN, 0.5).is_err());
    assert_eq!(s.volatility_checked(100.0, 0.25), Ok(0.50));
}

#[test]
fn smiles_may_have_different_strikes() {
    let s = VolSurface::new_checked(vec![
        smile(0.5, &[100.0], &[0.3]),
        smile(2.0, &[50.0, 150.0], &[0.5, 0.3]),
    ])
    .expect("valid");
    // K = 100 at T = 1: w0 = 0.09 * 0.5 = 0.045, second smile at 100 is 0.4 -> w1 = 0.32.
    let w = 0.045 + (0.32 - 0.045) * (0.5 / 1.5);
    assert!((s.volatility(100.0, 1.0) - (w / 1.0_f64).sqrt()).abs() < 1e-15);
}

#[test]
fn invalid_surfaces_are_named_errors() {
    let err = VolSurface::new_checked(vec![]).expect_err("empty");
    assert_eq!(err, PricingError::EmptySurface);

    let err = VolSurface::new_checked(vec![smile(0.5, &[], &[])]).expect_err("empty smile");
    assert_eq!(err, PricingError::EmptySmile { expiry_index: 0 });

    let err =
        VolSurface::new_checked(vec![smile(0.5, &[100.0, 110.0], &[0.3])]).expect_err("lengths");
    assert_eq!(
        err,
        PricingError::SurfacePoint {
            expiry_index: 0,
            point_index: None,
            source: Box::new(PricingError::LengthMismatch {
                field: Field::Volatility,
                expected: 2,
                actual: 1
            }),
        }
    );

    let err = VolSurface::new_checked(vec![smile(0.5, &[100.0, 100.0], &[0.3, 0.3])])
        .expect_err("repeated strike");
    assert_eq!(
        err,
        PricingError::StrikesNotAscending {
            expiry_index: 0,
            point_index: 1,
            previous: 100.0,
            strike: 100.0
        }
    );

    let err = VolSurface::new_checked(vec![
        smile(1.0, &[100.0], &[0.3]),
        smile(0.5, &[100.0], &[0.3]),
    ])
    .expect_err("expiries out of order");
    assert_eq!(
        err,
        PricingError::ExpiriesNotAscending {
            expiry_index: 1,
            previous: 1.0,
            time: 0.5
        }
    );

    let err = VolSurface::new_checked(vec![smile(0.5, &[100.0, 110.0], &[0.3, 0.0])])
        .expect_err("zero vol");
    assert_eq!(
        err,
        PricingError::SurfacePoint {
            expiry_index: 0,
            point_index: Some(1),
            source: Box::new(PricingError::NotPositive {
                field: Field::Volatility,
                value: 0.0
            }),
        }
    );
    assert_eq!(
        err.to_string(),
        "expiry 0, point 1: volatility must be greater than zero, got 0"
    );

    let err = VolSurface::new_checked(vec![smile(0.0, &[100.0], &[0.3])]).expect_err("zero expiry");
    assert_eq!(
        err.to_string(),
        "expiry 0: time_to_expiry_years must be greater than zero, got 0"
    );

    let err = VolSurface::new_checked(vec![smile(0.5, &[f64::INFINITY], &[0.3])])
        .expect_err("infinite strike");
    assert_eq!(
        err.to_string(),
        "expiry 0, point 0: strike must be finite, got inf"
    );
}

/// Hand-worked: a two-point smile (0.50 at 100, 0.60 at 200) against a flat 0.55 one-point
/// smile differs by 0.05 at both of the first's strikes and not at all at 150, in between.
#[test]
fn smile_distance_is_reached_at_a_strike_of_either_smile() {
    use solvent_pricing::surface::smile_distance;
    let before = ([100.0, 200.0], [0.50, 0.60]);
    let flat = ([150.0], [0.55]);
    let distance = smile_distance((&before.0, &before.1), (&flat.0, &flat.1));
    assert!((distance - 0.05).abs() < 1e-15, "{distance}");
    // Re-quoted on the same strikes: 0.52 and 0.57, the larger move 0.03 at 200.
    let requoted = ([100.0, 200.0], [0.52, 0.57]);
    let distance = smile_distance((&before.0, &before.1), (&requoted.0, &requoted.1));
    assert!((distance - 0.03).abs() < 1e-15, "{distance}");
    // Anything it cannot bound is infinitely far.
    let unsorted = ([200.0, 100.0], [0.5, 0.6]);
    assert_eq!(
        smile_distance((&before.0, &before.1), (&unsorted.0, &unsorted.1)),
        f64::INFINITY
    );
    assert_eq!(
        smile_distance((&before.0, &before.1), (&[100.0], &[0.5, 0.6])),
        f64::INFINITY
    );
}

proptest::proptest! {
    /// A re-quote on the same strikes (the distance's quick path) measures what the general
    /// search measures: the same smile with one more strike past its last, at its last
    /// volatility, is the same function (flat beyond), and its distance is taken by the search.
    #[test]
    fn a_requote_on_the_same_strikes_is_measured_as_the_search_measures_it(
        points in proptest::collection::vec((50.0_f64..150.0, 0.2_f64..1.5, 0.2_f64..1.5), 1..8),
    ) {
        use solvent_pricing::surface::smile_distance;
        let mut points = points;
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-6);
        let strikes: Vec<f64> = points.iter().map(|p| p.0).collect();
        let before: Vec<f64> = points.iter().map(|p| p.1).collect();
        let after: Vec<f64> = points.iter().map(|p| p.2).collect();
        let quick = smile_distance((&strikes, &before), (&strikes, &after));
        let mut longer_strikes = strikes.clone();
        longer_strikes.push(200.0);
        let mut longer_after = after.clone();
        longer_after.push(*after.last().unwrap());
        let searched = smile_distance((&strikes, &before), (&longer_strikes, &longer_after));
        proptest::prop_assert_eq!(quick.to_bits(), searched.to_bits());
        let largest = before
            .iter()
            .zip(&after)
            .map(|(b, a)| (a - b).abs())
            .fold(0.0_f64, f64::max);
        proptest::prop_assert_eq!(quick.to_bits(), largest.to_bits());
    }
}

proptest::proptest! {
    /// The distance of two smiles bounds the change of the surface's volatility at every strike
    /// and every time, between and beyond the expiries (the engine's volatility bands rest on
    /// it): two expiries, each re-quoted on strikes of its own.
    #[test]
    fn smile_distance_bounds_the_surface_everywhere(
        near in proptest::collection::vec((50.0_f64..150.0, 0.2_f64..1.5), 1..6),
        near_after in proptest::collection::vec((50.0_f64..150.0, 0.2_f64..1.5), 1..6),
        far in proptest::collection::vec((50.0_f64..150.0, 0.2_f64..1.5), 1..6),
        far_after in proptest::collection::vec((50.0_f64..150.0, 0.2_f64..1.5), 1..6),
        strike in 30.0_f64..200.0,
        time in 0.01_f64..2.0,
    ) {
        use solvent_pricing::surface::smile_distance;
        let points = |mut points: Vec<(f64, f64)>| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-6);
            points.into_iter().unzip::<f64, f64, Vec<f64>, Vec<f64>>()
        };
        let (near, near_after, far, far_after) =
            (points(near), points(near_after), points(far), points(far_after));
        let distance = smile_distance((&near.0, &near.1), (&near_after.0, &near_after.1)).max(
            smile_distance((&far.0, &far.1), (&far_after.0, &far_after.1)),
        );
        let before = VolSurface::new_checked(vec![
            smile(0.1, &near.0, &near.1),
            smile(1.0, &far.0, &far.1),
        ])
        .unwrap();
        let after = VolSurface::new_checked(vec![
            smile(0.1, &near_after.0, &near_after.1),
            smile(1.0, &far_after.0, &far_after.1),
        ])
        .unwrap();
        let moved = (after.volatility(strike, time) - before.volatility(strike, time)).abs();
        proptest::prop_assert!(moved <= distance * (1.0 + 1e-12) + 1e-15, "{moved} > {distance}");
    }
}
