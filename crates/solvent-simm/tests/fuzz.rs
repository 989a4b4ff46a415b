//! Malformed CRIFs never panic and never give a NaN or infinite margin: seeded mutations of the
//! generated CRIFs (fields replaced by empty, non-numeric, huge, non-ASCII or misplaced values,
//! rows cut short) are either refused with an error naming a row, or give finite margins, for
//! every version and both sides; the same for CRIFs with regulations (SIMM under the winning
//! regulation) and for Schedule rows (Schedule IM), whose refusals name a row too.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/generate.rs"]
mod generate;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use solvent_simm::{
    Calibration, CrifError, Side, Version, crif, parse_date, schedule_im, simm_for_side,
    simm_under_regulations,
};

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

/// Mutates the fields of `text`'s rows (not the header) with `palette`.
fn mutate(text: &str, rng: &mut ChaCha8Rng, palette: &[&str]) -> String {
    let mut lines = text.lines();
    let mut out = String::from(lines.next().unwrap_or(""));
    out.push('\n');
    for line in lines {
        let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
        if rng.random_bool(0.004) {
            let column = rng.random_range(0..fields.len());
            fields[column] = palette[rng.random_range(0..palette.len())].to_string();
        }
        if rng.random_bool(0.0005) {
            fields.truncate(rng.random_range(0..fields.len()));
        }
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

#[test]
fn mutated_regulations_and_schedule_rows_are_refused_or_give_finite_margins() {
    let extra: Vec<&str> = PALETTE
        .iter()
        .copied()
        .chain([
            "ESA,USPR",
            "[SEC]",
            "Excluded",
            "Schedule",
            "SIMM",
            "PV",
            "Notional",
            "2024-02-30",
            "2031-12-31",
            "Rates",
            "Other",
            "BANX",
        ])
        .collect();
    let asof = parse_date("2024-01-31").unwrap();
    let mut base = generate::with_regulations(&generate::crif(21, 20, 20), 21);
    base.push_str(
        generate::schedule(21, 20, 5, asof)
            .lines()
            .skip(1)
            .map(|l| {
                // The schedule rows' columns follow the regulated CRIF's: im_model and end_date
                // become two more columns after the regulations.
                let f: Vec<&str> = l.split('\t').collect();
                format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    f[..11].join("\t"),
                    f[13],
                    f[14],
                    f[11],
                    f[12]
                )
            })
            .collect::<String>()
            .as_str(),
    );
    let base = base.replacen(
        "post_regulations\n",
        "post_regulations\tim_model\tend_date\n",
        1,
    );
    let calibrations: Vec<Calibration> = [Version::V2_0, Version::V2_6, Version::V2_8]
        .iter()
        .map(|v| Calibration::load(*v).unwrap())
        .collect();
    let unmutated = crif::parse(&base).expect("the base CRIF");
    assert!(!unmutated.schedule.is_empty() && unmutated.regulations.len() > 3);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (mut refused, mut computed) = (0, 0);
    for _ in 0..200 {
        let text = mutate(&base, &mut rng, &extra);
        let rows = match crif::parse(&text) {
            Err(CrifError::Field { row, .. } | CrifError::NotCovered { row, .. }) => {
                assert!(row >= 2);
                refused += 1;
                continue;
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(rows) => rows,
        };
        computed += 1;
        for side in [Side::Collect, Side::Post] {
            for calibration in &calibrations {
                if let Ok(results) = simm_under_regulations(&rows, calibration, side) {
                    for r in results {
                        assert!(r.simm.total.is_finite() && r.simm.total >= 0.0);
                    }
                }
            }
            for enforce in [false, true] {
                if let Ok(results) = schedule_im(&rows, asof, side, enforce) {
                    for s in results {
                        assert!(s.schedule_im.is_finite() && s.gross_im >= 0.0, "{s:?}");
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
