//! Malformed CRIFs never panic and never give a NaN or infinite margin: seeded mutations of the
//! generated CRIFs (fields replaced by empty, non-numeric, huge, non-ASCII or misplaced values,
//! rows cut short) are either refused with an error naming a row, or give finite margins, for
//! every version and both sides.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/generate.rs"]
mod generate;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use solvent_simm::{Calibration, CrifError, Side, Version, crif, simm_for_side};

const PALETTE: [&str; 20] = [
    "",
    "x",
    "NaN",
    "inf",
    "-1e309",
    "1e300",
    "-1e14",
    "0",
    "Residual",
    "residual",
    "13",
    "0",
    "99",
    "é€",
    "EURUSD",
    "usd",
    "1y",
    "30y",
    "Libor3m",
    "Risk_IRCurve",
];

#[test]
fn mutated_crifs_are_refused_or_give_finite_margins() {
    let base = generate::crif(11, 20, 30);
    let lines: Vec<&str> = base.lines().collect();
    let calibrations: Vec<Calibration> = Version::ALL
        .iter()
        .map(|v| Calibration::load(*v).unwrap())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut refused, mut computed) = (0, 0);
    for _ in 0..300 {
        let mut text = String::from(lines[0]);
        text.push('\n');
        for line in &lines[1..] {
            let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            if rng.random_bool(0.02) {
                let column = rng.random_range(0..fields.len());
                fields[column] = PALETTE[rng.random_range(0..PALETTE.len())].to_string();
            }
            if rng.random_bool(0.005) {
                fields.truncate(rng.random_range(0..fields.len()));
            }
            text.push_str(&fields.join("\t"));
            text.push('\n');
        }
        match crif::parse(&text) {
            Err(CrifError::Field { row, .. } | CrifError::NotCovered { row, .. }) => {
                assert!(row >= 2);
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(rows) => {
                computed += 1;
                for calibration in &calibrations {
                    for side in [Side::Collect, Side::Post] {
                        for set in simm_for_side(&rows, calibration, side) {
                            assert!(
                                set.total.is_finite() && set.total >= 0.0,
                                "{}: {}",
                                set.netting_set,
                                set.total
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(
        refused > 0 && computed > 0,
        "{refused} refused, {computed} computed"
    );
}
