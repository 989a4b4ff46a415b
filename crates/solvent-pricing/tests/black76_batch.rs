//! The vectorised batch path against the scalar path: same definitions, independent
//! implementations of `exp`, `ln` and `erfcx`, agreement to 1e-12 relative.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use common::relative_error;
use solvent_pricing::PricingError;
use solvent_pricing::black76::{
    Black76, Black76Batch, GreeksBatch, OptionType, OwnedColumns, price_and_greeks_batch,
    price_and_greeks_checked, prices_checked,
};

/// A seeded generator (SplitMix64), so the cases are the same on every run and machine.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }
}

/// The columns validated (every test's first step).
fn checked(columns: &OwnedColumns) -> Result<Black76Batch<'_>, PricingError> {
    Black76Batch::new_checked(columns.columns())
}

/// Wide ranges: moneyness from 1/20 to 20, expiries from a minute to 30 years, volatilities
/// from 1% to 500%, plus exact zeros of time and volatility and the at-the-money point.
fn cases(n: usize, seed: u64) -> OwnedColumns {
    let mut rng = SplitMix(seed);
    let mut c = OwnedColumns::default();
    for i in 0..n {
        let forward = rng.log_uniform(1e-3, 1e6);
        let moneyness = match i % 4 {
            0 => rng.log_uniform(0.05, 20.0),
            1 => rng.log_uniform(0.9, 1.1),
            2 => 1.0 + rng.uniform(-1e-4, 1e-4),
            _ => rng.log_uniform(0.5, 2.0),
        };
        let time = match i % 97 {
            0 => 0.0,
            _ => rng.log_uniform(1.0 / 525_600.0, 30.0),
        };
        let volatility = match i % 89 {
            0 => 0.0,
            _ => rng.log_uniform(0.01, 5.0),
        };
        c.forward.push(forward);
        c.strike.push(if i % 101 == 0 {
            forward
        } else {
            forward * moneyness
        });
        c.time.push(time);
        c.volatility.push(volatility);
        c.discount.push(rng.uniform(0.5, 1.05));
        c.kind.push(if rng.unit() < 0.5 {
            OptionType::Call
        } else {
            OptionType::Put
        });
    }
    c
}

/// `a` within `1e-12` of `b`, relative to `b` or to `scale * 1e-12` when `|b|` is smaller.
fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-12 * scale)
}

#[test]
fn batch_agrees_with_scalar_to_1e_12_relative() {
    let columns = cases(200_000, 7);
    let batch = checked(&columns).expect("valid cases");
    let mut out = GreeksBatch::default();
    price_and_greeks_batch(&batch, &mut out);
    assert_eq!(out.len(), 200_000);
    let mut worst = [0.0_f64; 4];
    for i in 0..out.len() {
        let (f, df) = (columns.forward[i], columns.discount[i]);
        let option = Black76::new_checked(
            f,
            columns.strike[i],
            columns.time[i],
            columns.volatility[i],
            df,
        )
        .expect("valid case");
        let g = option.greeks(columns.kind[i]);
        let s = columns.volatility[i] * columns.time[i].sqrt();
        // Scales below which absolute agreement is asked: the forward for the price, the
        // discount factor for delta, and the at-the-money gamma and vega.
        let gamma_scale = if s > 0.0 { df * 0.4 / (f * s) } else { 0.0 };
        let vega_scale = df * f * 0.4 * columns.time[i].sqrt();
        let pairs = [
            (out.price()[i], g.price, df * f),
            (out.delta()[i], g.delta, df),
            (out.gamma()[i], g.gamma, gamma_scale),
            (out.vega()[i], g.vega, vega_scale),
        ];
        for (j, (ours, scalar, scale)) in pairs.into_iter().enumerate() {
            assert!(ours.is_finite(), "case {i}: non-finite batch output {j}");
            if scalar.abs() > 1e-12 * scale {
                worst[j] = worst[j].max(relative_error(ours, scalar));
            }
            assert!(
                close(ours, scalar, scale),
                "case {i} (F={f}, K={}, T={}, sigma={}, DF={df}, {:?}): output {j} batch {ours:e} vs scalar {scalar:e}",
                columns.strike[i],
                columns.time[i],
                columns.volatility[i],
                columns.kind[i],
            );
        }
    }
    eprintln!("worst relative differences batch vs scalar (price, delta, gamma, vega): {worst:?}");
}

/// The batch path sends each option to its direct kernel (the textbook `N(d1)`, `N(d2)`
/// difference) or to its careful kernel (the scalar algorithm), by the normalised coordinates
/// `h = -|ln(F / K)| / s` and `t = s / 2` (`s = sigma sqrt(T)`). An option is direct when
/// `|h| + 1.26 <= 160 t` (cancellation factor at most 80) and `|h| + t <= 4 sqrt(2)` (the range
/// of its approximation of `N(z) / n(z)`); `src/black76/batch/direct.rs` documents why. These cases sit on both sides
/// of each boundary, of the earlier cancellation boundary `|h| + 1.26 = 80 t` (factor 40), and
/// of the scalar path's own switch to its Taylor series at `t = 0.1`, at relative distances
/// from `1e-12` to `5%`, mixed in one batch so that every chunk holds both kinds. Both kernels
/// must agree with the scalar path as everywhere else.
fn boundary_cases(seed: u64) -> OwnedColumns {
    let mut rng = SplitMix(seed);
    let mut c = OwnedColumns::default();
    let offsets = [
        -5e-2, -1e-3, -1e-6, -1e-9, -1e-12, 0.0, 1e-12, 1e-9, 1e-6, 1e-3, 5e-2,
    ];
    for i in 0..80_000 {
        let scale = 1.0 + offsets[i % offsets.len()];
        // A point (|h|, t) on one of the boundaries, then moved by the relative offset.
        let (abs_h, t) = match (i / offsets.len()) % 4 {
            // Cancellation boundary |h| + 1.26 = 160 t, for t from 0.008 to 0.0355 (above, the
            // range |h| + t <= 4 sqrt(2) decides).
            3 => {
                let t = rng.uniform(0.008, 0.0355);
                (160.0 * t - 1.26, t)
            }
            // The earlier cancellation boundary |h| + 1.26 = 80 t, for t from 0.016 to 0.065.
            0 => {
                let t = rng.uniform(0.016, 0.065);
                (80.0 * t - 1.26, t)
            }
            // erfcx range boundary |h| + t = 4 sqrt(2), for t from 0.1 to 2.
            1 => {
                let t = rng.uniform(0.1, 2.0);
                (4.0 * std::f64::consts::SQRT_2 - t, t)
            }
            // The scalar path's Taylor switch t = 0.1, near and away from the money.
            _ => (rng.uniform(0.0, 5.0), 0.1),
        };
        let (abs_h, t) = if i % 2 == 0 {
            (abs_h * scale, t)
        } else {
            (abs_h, t / scale)
        };
        let s = 2.0 * t;
        let time = rng.log_uniform(1.0 / 365.0, 10.0);
        let volatility = s / time.sqrt();
        let forward = rng.log_uniform(1e-3, 1e6);
        let x = abs_h * s;
        // Out of the money as a call (K > F) or as a put (K < F).
        let strike = if rng.unit() < 0.5 {
            forward * x.exp()
        } else {
            forward * (-x).exp()
        };
        c.forward.push(forward);
        c.strike.push(strike);
        c.time.push(time);
        c.volatility.push(volatility);
        c.discount.push(rng.uniform(0.5, 1.05));
        c.kind.push(if rng.unit() < 0.5 {
            OptionType::Call
        } else {
            OptionType::Put
        });
    }
    c
}

/// Batch against scalar on `columns`, with the tolerance of
/// `batch_agrees_with_scalar_to_1e_12_relative`; returns the worst relative differences.
fn assert_batch_matches_scalar(columns: &OwnedColumns) -> [f64; 4] {
    let batch = checked(columns).expect("valid cases");
    let mut out = GreeksBatch::default();
    price_and_greeks_batch(&batch, &mut out);
    let mut worst = [0.0_f64; 4];
    for i in 0..out.len() {
        let (f, df, time) = (columns.forward[i], columns.discount[i], columns.time[i]);
        let g = Black76::new_checked(f, columns.strike[i], time, columns.volatility[i], df)
            .expect("valid case")
            .greeks(columns.kind[i]);
        let s = columns.volatility[i] * time.sqrt();
        let gamma_scale = if s > 0.0 { df * 0.4 / (f * s) } else { 0.0 };
        let pairs = [
            (out.price()[i], g.price, df * f),
            (out.delta()[i], g.delta, df),
            (out.gamma()[i], g.gamma, gamma_scale),
            (out.vega()[i], g.vega, df * f * 0.4 * time.sqrt()),
        ];
        for (j, (ours, scalar, scale)) in pairs.into_iter().enumerate() {
            if scalar.abs() > 1e-12 * scale {
                worst[j] = worst[j].max(relative_error(ours, scalar));
            }
            assert!(
                close(ours, scalar, scale),
                "case {i} (F={f}, K={}, T={time}, sigma={}, DF={df}, {:?}): output {j} batch {ours:e} vs scalar {scalar:e}",
                columns.strike[i],
                columns.volatility[i],
                columns.kind[i],
            );
        }
    }
    worst
}

#[test]
fn batch_agrees_with_scalar_on_both_sides_of_the_kernel_routing() {
    let worst = assert_batch_matches_scalar(&boundary_cases(11));
    eprintln!(
        "worst relative differences at the routing boundaries (price, delta, gamma, vega): {worst:?}"
    );
}

/// The mpmath vectors (30 digits) through the batch path, all in one batch: both kernels are
/// held to the bound the scalar path meets, `2e-13` relative, in every output.
#[test]
fn batch_matches_mpmath_to_2e_13_relative() {
    let rows = common::read_csv("black76_mpmath.csv");
    let columns = OwnedColumns {
        forward: rows.iter().map(|r| r.get("forward")).collect(),
        strike: rows.iter().map(|r| r.get("strike")).collect(),
        time: rows.iter().map(|r| r.get("time_to_expiry_years")).collect(),
        volatility: rows.iter().map(|r| r.get("volatility")).collect(),
        discount: rows.iter().map(|r| r.get("discount_factor")).collect(),
        kind: rows.iter().map(|r| r.option_type).collect(),
    };
    let batch = checked(&columns).expect("valid oracle rows");
    let mut out = GreeksBatch::default();
    price_and_greeks_batch(&batch, &mut out);
    let mut worst = [0.0_f64; 4];
    for (i, row) in rows.iter().enumerate() {
        let ours = [
            out.price()[i],
            out.delta()[i],
            out.gamma()[i],
            out.vega()[i],
        ];
        for (j, name) in ["price", "delta", "gamma", "vega"].iter().enumerate() {
            let err = relative_error(ours[j], row.get(name));
            worst[j] = worst[j].max(err);
            assert!(
                err < 2e-13,
                "line {}: batch {name} {} vs mpmath {} (relative error {err:e})",
                row.line,
                ours[j],
                row.get(name)
            );
        }
    }
    eprintln!(
        "worst relative errors of the batch vs mpmath (price, delta, gamma, vega): {worst:?}"
    );
}

/// The fused call validates and values in one pass; it must give the same bits as validating
/// first and valuing after, on market-like cases, wide cases and the routing boundaries.
#[test]
fn checked_call_gives_the_same_bits_as_validate_then_value() {
    for columns in [cases(50_000, 11), boundary_cases(13)] {
        let mut two_step = GreeksBatch::default();
        price_and_greeks_batch(&checked(&columns).unwrap(), &mut two_step);
        // Stale contents of another length must not matter.
        let mut fused = GreeksBatch::default();
        price_and_greeks_checked(cases(7, 1).columns(), &mut fused).unwrap();
        price_and_greeks_checked(columns.columns(), &mut fused).unwrap();
        assert_eq!(fused.len(), two_step.len());
        for (a, b) in [
            (fused.price(), two_step.price()),
            (fused.delta(), two_step.delta()),
            (fused.gamma(), two_step.gamma()),
            (fused.vega(), two_step.vega()),
        ] {
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
    let mut out = GreeksBatch::default();
    price_and_greeks_checked(cases(0, 1).columns(), &mut out).unwrap();
    assert!(out.is_empty());
}

/// A crypto chain as a margin engine revalues it: forwards around 90,000, strikes 0.3x to 3x
/// the forward, expiries from a day to a year, volatilities 30% to 150%, each option also
/// moved by a scenario's price move (-30% to +30%).
fn crypto_chain(n: usize, seed: u64) -> OwnedColumns {
    let mut rng = SplitMix(seed);
    let mut c = OwnedColumns::default();
    for _ in 0..n {
        let forward = 90_000.0 * (1.0 + rng.uniform(-0.3, 0.3));
        c.forward.push(forward);
        c.strike.push(forward * rng.log_uniform(0.3, 3.0));
        c.time.push(rng.log_uniform(1.0 / 365.0, 1.0));
        c.volatility.push(rng.uniform(0.3, 1.5));
        c.discount.push(1.0);
        c.kind.push(if rng.unit() < 0.5 {
            OptionType::Call
        } else {
            OptionType::Put
        });
    }
    c
}

/// The price-only call computes each price with the operations of the call with greeks: the
/// same bits, on a crypto chain (where some options take the careful kernel: daily expiries
/// away from the money) and on the wide and boundary cases, and the same error for bad input.
#[test]
fn prices_alone_are_the_bits_of_the_prices_with_greeks() {
    let chain = crypto_chain(100_000, 31);
    let mut prices = Vec::new();
    for columns in [chain, cases(50_000, 33), boundary_cases(35)] {
        let mut greeks = GreeksBatch::default();
        price_and_greeks_checked(columns.columns(), &mut greeks).unwrap();
        prices_checked(columns.columns(), &mut prices).unwrap();
        assert_eq!(prices.len(), greeks.len());
        for (i, (alone, with_greeks)) in prices.iter().zip(greeks.price()).enumerate() {
            assert_eq!(
                alone.to_bits(),
                with_greeks.to_bits(),
                "option {i}: {alone:e} vs {with_greeks:e}"
            );
        }
    }
    let mut bad = crypto_chain(1_000, 37);
    bad.time[700] = -1.0;
    let mut greeks = GreeksBatch::default();
    let expected = price_and_greeks_checked(bad.columns(), &mut greeks).unwrap_err();
    let error = prices_checked(bad.columns(), &mut prices).unwrap_err();
    assert_eq!(format!("{error:?}"), format!("{expected:?}"));
}

/// A thread keeps its scratch space between calls: batches valued after others of every size
/// (a large one with careful options, one that fails validation part-way, tiny ones) give the
/// same bits as on a thread that values nothing else.
#[test]
fn a_threads_earlier_batches_change_no_bit_of_a_later_one() {
    let batches = [
        cases(1_000, 21),
        boundary_cases(23),
        cases(3, 25),
        cases(300, 27),
    ];
    let fresh: Vec<GreeksBatch> = batches
        .iter()
        .map(|columns| {
            let columns = columns.clone();
            std::thread::spawn(move || {
                let mut out = GreeksBatch::default();
                price_and_greeks_checked(columns.columns(), &mut out).unwrap();
                out
            })
            .join()
            .unwrap()
        })
        .collect();
    let mut bad = cases(600, 29);
    bad.volatility[400] = -1.0;
    let mut out = GreeksBatch::default();
    for _ in 0..2 {
        for (columns, alone) in batches.iter().zip(&fresh) {
            assert!(price_and_greeks_checked(bad.columns(), &mut out).is_err());
            price_and_greeks_checked(columns.columns(), &mut out).unwrap();
            for (a, b) in [
                (out.price(), alone.price()),
                (out.delta(), alone.delta()),
                (out.gamma(), alone.gamma()),
                (out.vega(), alone.vega()),
            ] {
                assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
            }
        }
    }
}

/// The fused call reports the error `Black76Batch::new_checked` reports, whichever column holds
/// the bad value and wherever it is: first element, inside a later block, last element, and with
/// a second bad value further on (the first is named).
#[test]
fn checked_call_names_the_first_invalid_element_like_new_checked() {
    type Spoil = fn(&mut OwnedColumns, usize);
    let spoils: [(&str, Spoil); 8] = [
        ("negative forward", |c, i| c.forward[i] = -1.0),
        ("NaN strike", |c, i| c.strike[i] = f64::NAN),
        ("huge strike", |c, i| c.strike[i] = 1e101),
        ("negative time", |c, i| c.time[i] = -1e-9),
        ("infinite time", |c, i| c.time[i] = f64::INFINITY),
        ("volatility above the limit", |c, i| c.volatility[i] = 100.5),
        ("zero discount factor", |c, i| c.discount[i] = 0.0),
        ("NaN discount factor", |c, i| c.discount[i] = f64::NAN),
    ];
    let n = 3_000;
    for (name, spoil) in spoils {
        for index in [0, 255, 256, 1_000, n - 1] {
            let mut columns = cases(n, 5);
            spoil(&mut columns, index);
            if index + 700 < n {
                spoil(&mut columns, index + 700);
            }
            let expected = checked(&columns).unwrap_err();
            let mut out = GreeksBatch::default();
            let error = price_and_greeks_checked(columns.columns(), &mut out).unwrap_err();
            // Compared as text: a NaN in the error is not equal to itself.
            assert_eq!(
                format!("{error:?}"),
                format!("{expected:?}"),
                "{name} at {index}"
            );
            assert!(
                matches!(error, PricingError::BatchElement { index: i, .. } if i == index),
                "{name} at {index}: {error}"
            );
        }
    }
    let mut columns = cases(10, 5);
    columns.kind.pop();
    let mut out = GreeksBatch::default();
    assert_eq!(
        price_and_greeks_checked(columns.columns(), &mut out).unwrap_err(),
        checked(&columns).unwrap_err()
    );
}
