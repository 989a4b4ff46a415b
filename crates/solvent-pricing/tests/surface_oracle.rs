//! The volatility surface against an independent oracle: `scripts/oracles/surface_scipy.py`
//! builds 16 surfaces (the hand-worked one of `tests/surface.rs`, a one-expiry surface, a
//! Deribit-like BTC surface from one day to a year, one-strike smiles, 12 seeded random
//! surfaces) and evaluates them with `scipy.interpolate.interp1d`: linear in strike with flat
//! ends, linear in total variance between expiries, flat volatility outside them. Every query
//! of `tests/data/surface_scipy.csv` (6,080: nodes, between and beyond strikes, time zero,
//! before, at, between and after the expiries) must agree to 4e-15 relative (both sides
//! round differently: scipy takes a slope, then multiplies; Rust a weight; a few ulp apart).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use solvent_pricing::surface::{SmileInput, VolSurface};

/// Nodes and queries of one surface, in file order.
#[derive(Default)]
struct Case {
    smiles: Vec<SmileInput>,
    /// `(line, time, strike, expected volatility)`.
    queries: Vec<(usize, f64, f64, f64)>,
}

fn read_cases() -> BTreeMap<usize, Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/surface_scipy.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().enumerate();
    assert_eq!(
        lines.next().map(|(_, l)| l),
        Some("kind,surface,time_to_expiry_years,strike,volatility")
    );
    let mut cases: BTreeMap<usize, Case> = BTreeMap::new();
    for (index, line) in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 5, "line {}", index + 1);
        let number = |i: usize| -> f64 {
            fields[i]
                .parse()
                .unwrap_or_else(|e| panic!("line {}: {}: {e}", index + 1, fields[i]))
        };
        let case = cases.entry(fields[1].parse().unwrap()).or_default();
        let (time, strike, volatility) = (number(2), number(3), number(4));
        match fields[0] {
            "node" => {
                // Nodes come in ascending expiry, then strike, order: a new time starts a smile.
                if case.smiles.last().map(|s| s.time_to_expiry_years) != Some(time) {
                    case.smiles.push(SmileInput {
                        time_to_expiry_years: time,
                        strikes: Vec::new(),
                        volatilities: Vec::new(),
                    });
                }
                let smile = case.smiles.last_mut().unwrap();
                smile.strikes.push(strike);
                smile.volatilities.push(volatility);
            }
            "query" => case.queries.push((index + 1, time, strike, volatility)),
            other => panic!("line {}: unknown kind {other}", index + 1),
        }
    }
    cases
}

#[test]
fn every_query_agrees_with_scipy() {
    let cases = read_cases();
    assert_eq!(cases.len(), 16);
    let mut checked = 0;
    let mut worst = 0.0_f64;
    for (id, case) in cases {
        let surface =
            VolSurface::new_checked(case.smiles).expect("the oracle's surfaces are valid");
        for (line, time, strike, expected) in case.queries {
            let got = surface.volatility(strike, time);
            let checked_got = surface.volatility_checked(strike, time).unwrap();
            assert_eq!(got.to_bits(), checked_got.to_bits(), "line {line}");
            let error = (got - expected).abs() / expected;
            worst = worst.max(error);
            assert!(
                error <= 4e-15,
                "surface {id}, line {line}: K = {strike}, T = {time}: {got} vs scipy {expected} ({error:e})"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6_080);
    eprintln!("worst relative difference from scipy: {worst:e}");
}
