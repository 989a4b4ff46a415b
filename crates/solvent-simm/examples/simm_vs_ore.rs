//! SIMM for many netting sets, Solvent against ORE's `SimmCalculator` in the same run
//! (`bench/simm.sh` builds and runs this).
//!
//! Writes a seeded CRIF of `SETS` netting sets of `ROWS` rows (tests/support/generate.rs: FX,
//! equity and commodity deltas and vegas in every bucket), then times, for SIMM 2.8+2506:
//! Solvent reading the CRIF text and computing every netting set (best of 5), and ORE
//! (`scripts/oracles/simm_ore.py`, pip open-source-risk-engine) loading the same CRIF and computing
//! every netting set (ORE's own timer around `Crif.fromCSVString` and `SimmCalculator`, so Python's
//! start-up and result extraction are not counted). Every netting set's SIMM must agree to the cent.
//!
//! Usage: simm_vs_ore [SETS] [ROWS] [CRIF_PATH]   (defaults 10000 50 target/simm-bench.tsv);
//! `SIMM_BENCH_SOLVENT_ONLY=1` skips ORE.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/generate.rs"]
mod generate;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use solvent_simm::{Calibration, Version, crif, simm};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sets: usize = args.get(1).map_or(10_000, |a| a.parse().expect("SETS"));
    let rows: usize = args.get(2).map_or(50, |a| a.parse().expect("ROWS"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = args
        .get(3)
        .map_or_else(|| root.join("target/simm-bench.tsv"), PathBuf::from);
    let text = generate::crif(7, sets, rows);
    std::fs::write(&path, &text).expect("write the CRIF");
    println!(
        "CRIF: {sets} netting sets x {rows} rows = {} rows",
        sets * rows
    );

    let calibration = Calibration::load(Version::V2_8).expect("calibration");
    let mut best = f64::INFINITY;
    let mut best_parse = f64::INFINITY;
    let mut results = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let sensitivities = crif::parse(&text).expect("CRIF");
        let parsed = start.elapsed().as_secs_f64();
        results = simm(&sensitivities, &calibration).expect("buckets the version has");
        best = best.min(start.elapsed().as_secs_f64());
        best_parse = best_parse.min(parsed);
    }
    println!(
        "solvent: {:.1} ms (parse + SIMM, best of 5, one core; reading the CRIF {:.1} ms)",
        best * 1e3,
        best_parse * 1e3
    );

    if std::env::var_os("SIMM_BENCH_SOLVENT_ONLY").is_some() {
        return;
    }
    let python = root.join("target/oracle-venv/bin/python");
    let output = Command::new(&python)
        .arg(root.join("scripts/oracles/simm_ore.py"))
        .arg(&path)
        .arg("2.8")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run ./scripts/setup-oracles)", python.display()));
    assert!(
        output.status.success(),
        "ORE failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ore: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ORE JSON");
    let ore_seconds = ore["seconds"]["2.8"].as_f64().expect("ORE time");
    println!(
        "ORE:     {:.1} ms (load CRIF + SimmCalculator)",
        ore_seconds * 1e3
    );

    let theirs = &ore["results"]["2.8"];
    let mut worst: f64 = 0.0;
    for ours in &results {
        let expected = theirs[&ours.netting_set]["total"]
            .as_f64()
            .expect("ORE total");
        let diff = (ours.total - expected).abs();
        assert!(
            diff < 0.005,
            "{}: solvent {} vs ORE {expected}",
            ours.netting_set,
            ours.total
        );
        worst = worst.max(diff);
    }
    println!(
        "agreement: {} netting sets, largest difference {worst:.2e} USD",
        results.len()
    );
    println!(
        "ratio: solvent is {:.0}x faster than ORE",
        ore_seconds / best
    );
}
