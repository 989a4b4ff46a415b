//! Black-76 against independent oracles: mpmath at 30 digits and vollib (Jaeckel's
//! LetsBeRational), from the CSV files written by `scripts/oracles/`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use common::{read_csv, relative_error};
use solvent_pricing::black76::Black76;

fn option(row: &common::Row) -> Black76 {
    Black76::new_checked(
        row.get("forward"),
        row.get("strike"),
        row.get("time_to_expiry_years"),
        row.get("volatility"),
        row.get("discount_factor"),
    )
    .unwrap_or_else(|e| panic!("line {}: {e}", row.line))
}

/// mpmath is exact to the digits written, so every number is held to relative accuracy, the
/// price in the far wings too, which the textbook formula cannot do. The bound is 2e-13, five
/// times the worst error seen (3.7e-14), and inside the 1e-12 target.
#[test]
fn price_and_greeks_match_mpmath_to_2e_13_relative() {
    let rows = read_csv("black76_mpmath.csv");
    assert!(rows.len() >= 50);
    let mut worst = [0.0_f64; 5];
    for row in &rows {
        let g = option(row).greeks(row.option_type);
        let ours = [g.price, g.delta, g.gamma, g.vega, g.theta];
        for (i, name) in ["price", "delta", "gamma", "vega", "theta"]
            .iter()
            .enumerate()
        {
            let err = relative_error(ours[i], row.get(name));
            worst[i] = worst[i].max(err);
            assert!(
                err < 2e-13,
                "line {}: {name} {} vs mpmath {} (relative error {err:e})",
                row.line,
                ours[i],
                row.get(name)
            );
        }
    }
    eprintln!("worst relative errors vs mpmath (price, delta, gamma, vega, theta): {worst:?}");
}

/// vollib's price is Jaeckel's LetsBeRational, accurate to a few ulp; it computes
/// `x = ln(F / K)` with one rounding of the ratio (absolute error up to 1.1e-16 in `x`), which
/// this crate avoids near the money. That rounding moves the price by `|F delta / V| * 1.1e-16`
/// relative (`dV/dx = F dV/dF`), so the tolerance is `1e-12` plus twice that conditioning term.
/// Below `1e-12 * F` (times the discount factor) the comparison is absolute.
#[test]
fn price_matches_vollib_to_1e_12_relative() {
    let rows = read_csv("black76_vollib.csv");
    assert_eq!(rows.len(), 3000);
    let mut relative_cases = 0;
    let mut worst: f64 = 0.0;
    for row in &rows {
        let b = option(row);
        let g = b.greeks(row.option_type);
        let reference = row.get("price");
        let floor = 1e-12 * b.forward() * b.discount_factor();
        if reference > floor {
            relative_cases += 1;
            let conditioning = (b.forward() * g.delta / reference).abs() * 1.1e-16;
            let err = relative_error(g.price, reference);
            worst = worst.max(err);
            assert!(
                err <= 1e-12 + 2.0 * conditioning,
                "line {}: price {} vs vollib {reference} (relative {err:e}, conditioning {conditioning:e})",
                row.line,
                g.price
            );
        } else {
            assert!(
                (g.price - reference).abs() <= floor,
                "line {}: price {} vs vollib {reference}",
                row.line,
                g.price
            );
        }
    }
    assert!(
        relative_cases > 2500,
        "the vectors should mostly test relative accuracy"
    );
    eprintln!("{relative_cases} cases compared relatively; worst relative error {worst:e}");
}

/// vollib's greeks are the textbook formulas evaluated naively from its own `d1`
/// (`(ln(F/K) + s^2/2) / s`), so they differ from ours by the rounding of `d1` propagated
/// through `n(d1)` or `N(d1)`: a relative error of about `d1^2 * 1e-16` (at most `1.5e-13`
/// for `|d1| <= 38`, beyond which everything underflows). The tolerance is `1e-11` relative,
/// or absolute against a natural scale: `DF` for delta, and the at-the-money values
/// `DF / (F s)` for gamma, `DF F sqrt(T)` for vega and `DF F sigma / sqrt(T)` for theta.
/// Theta also carries the rate recovered from the discount factor, `r = -ln(DF) / T`: a
/// discount factor near 1 holds `r` only to `1.1e-16 / (r T)` relative (vollib starts from `r`
/// itself), so theta's tolerance adds `2 * 1.1e-16 * |V| / T`.
#[test]
fn greeks_match_vollib() {
    let rows = read_csv("black76_vollib.csv");
    let mut worst = [0.0_f64; 4];
    for row in &rows {
        let b = option(row);
        let g = b.greeks(row.option_type);
        let (f, df, t, sigma) = (
            b.forward(),
            b.discount_factor(),
            b.time_to_expiry_years(),
            b.volatility(),
        );
        let s = sigma * t.sqrt();
        let rate = -df.ln() / t;
        let scales = [
            df,
            df / (f * s),
            df * f * t.sqrt(),
            df * f * sigma / t.sqrt() + rate.abs() * df * f,
        ];
        let ours = [g.delta, g.gamma, g.vega, g.theta];
        for (i, name) in ["delta", "gamma", "vega", "theta"].iter().enumerate() {
            let reference = row.get(name);
            let mut tolerance = 1e-11 * reference.abs().max(1e-3 * scales[i]);
            if *name == "theta" {
                tolerance += 2.0 * 1.1e-16 * g.price.abs() / t;
            }
            let err = (ours[i] - reference).abs();
            if reference.abs() > 1e-3 * scales[i] {
                worst[i] = worst[i].max(err / reference.abs());
            }
            assert!(
                err <= tolerance,
                "line {}: {name} {} vs vollib {reference}",
                row.line,
                ours[i]
            );
        }
    }
    eprintln!("worst relative greek differences vs vollib (delta, gamma, vega, theta): {worst:?}");
}

/// Our implied volatility of vollib's price against vollib's own: both invert with
/// LetsBeRational, so where vollib recovered the input volatility to 1e-12 we must too.
#[test]
fn implied_volatility_matches_vollib() {
    use solvent_pricing::implied::implied_volatility;
    let rows = read_csv("black76_vollib.csv");
    let mut compared = 0;
    for row in &rows {
        let (sigma, vollib_iv) = (row.get("volatility"), row.get("implied_volatility"));
        if !vollib_iv.is_finite() || relative_error(vollib_iv, sigma) > 1e-12 {
            continue; // vollib itself could not recover sigma (flat wing or intrinsic-only price)
        }
        if row.get("price") < 1e-250 * row.get("forward") {
            continue; // subnormal time values: the implied-vol crate treats them as zero
        }
        compared += 1;
        let ours = implied_volatility(
            row.get("price"),
            row.get("forward"),
            row.get("strike"),
            row.get("time_to_expiry_years"),
            row.get("discount_factor"),
            row.option_type,
        )
        .unwrap_or_else(|e| panic!("line {}: {e}", row.line));
        assert!(
            relative_error(ours, sigma) < 1e-10,
            "line {}: implied {ours} vs sigma {sigma}",
            row.line
        );
    }
    assert!(compared > 1500, "only {compared} well-conditioned cases");
}
