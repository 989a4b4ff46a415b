//! SIMM against Open Source Risk Engine's `SimmCalculator` (the pip package
//! `open-source-risk-engine`, run by `scripts/oracles/simm_ore.py`), for every version both ship
//! (1.3.38 to 2.8+2512).
//!
//! Seeded CRIFs (`support/generate.rs`) cover every risk class in all four product classes (the
//! test checks that all six appear): interest rate tenors, sub-curves, inflation, cross-currency
//! basis and volatility; every equity, commodity and credit bucket, securitisations, groups of
//! non-qualifying names, base correlation, FX currencies of every volatility group and
//! concentration category, vega at every tenor, amounts that make the concentration thresholds
//! bind, repeated rows. Every figure ORE reports for a netting set must agree to the cent: the total,
//! the totals by margin type and by risk class, and per product class its total, its margin types
//! and each risk class's delta, vega, curvature, base correlation and sum.
//!
//! The same comparison with the regulations enforced (the winning regulation too), with other
//! calculation currencies, in a result currency other than USD, and for Schedule IM (ORE's
//! `IMScheduleCalculator`).
//!
//! Needs the oracle venv: `./scripts/setup-oracles`. Without it the test fails.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/generate.rs"]
mod generate;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use solvent_simm::{
    Calibration, MarginPeriod, MarginTypes, NettingSetSimm, RiskClassSimm, Side, Version, crif,
    parse_date, schedule_im, simm_for_side, simm_under_regulations,
};

/// To the cent.
const CENT: f64 = 0.005;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The name the oracle script takes: 2.6, 2.7 and 2.8 go through the package's configuration
/// classes, the others through ORE's application, which reads ORE's own version names.
fn oracle_name(version: Version) -> &'static str {
    match version {
        Version::V2_6 => "2.6",
        Version::V2_7 => "2.7",
        Version::V2_8 => "2.8",
        other => other.name(),
    }
}

/// Whether ORE's figures for a version come from its application's `simm` report, which leaves
/// out a figure under its output threshold of 0.005 (`ReportWriter::writeSIMMReport`), so an
/// absent figure there means "under half a cent".
fn from_report(version: Version) -> bool {
    !matches!(
        version,
        Version::V2_6 | Version::V2_7 | Version::V2_8 | Version::V2_8_2512
    )
}

/// ORE's report threshold: figures below it are not written.
const REPORT_THRESHOLD: f64 = 0.005;

/// The versions calibrated for a margin period (before 2.2, ORE's SIMM is for 10 days only).
fn versions(period: MarginPeriod) -> Vec<Version> {
    Version::ALL
        .into_iter()
        .filter(|v| period == MarginPeriod::TenDays || v.has_one_day())
        .collect()
}

/// Runs the oracle on a CRIF file for every version, for one side and margin period.
pub fn ore(path: &Path, side: Side, period: MarginPeriod) -> Value {
    let python = root().join("target/oracle-venv/bin/python");
    let mut command = Command::new(&python);
    command.arg(root().join("scripts/oracles/simm_ore.py"));
    if side == Side::Post {
        command.arg("--post");
    }
    if period == MarginPeriod::OneDay {
        command.arg("--one-day");
    }
    command.arg(path);
    for version in versions(period) {
        command.arg(oracle_name(version));
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run ./scripts/setup-oracles)", python.display()));
    assert!(
        output.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("oracle JSON")
}

struct Comparison {
    /// ORE's figures come from its report, which omits those under [`REPORT_THRESHOLD`].
    report: bool,
    figures: usize,
    worst: f64,
    /// The risk classes ORE reported, with a margin type present.
    seen: std::collections::BTreeSet<String>,
}

impl Comparison {
    fn check(&mut self, what: &str, ours: Option<f64>, theirs: &Value) {
        let theirs = theirs.as_f64();
        match (ours, theirs) {
            (Some(a), Some(b)) => {
                let diff = (a - b).abs();
                self.worst = self.worst.max(diff);
                self.figures += 1;
                assert!(diff < CENT, "{what}: solvent {a} vs ORE {b} (diff {diff})");
            }
            (None, None) => {}
            (Some(a), None) if self.report && a.abs() < REPORT_THRESHOLD => {
                self.figures += 1;
                self.worst = self.worst.max(a.abs());
            }
            (a, b) => panic!("{what}: solvent {a:?} vs ORE {b:?}"),
        }
    }

    fn margin_types(&mut self, what: &str, ours: &MarginTypes, theirs: &Value) {
        self.check(&format!("{what} delta"), ours.delta, &theirs["Delta"]);
        self.check(&format!("{what} vega"), ours.vega, &theirs["Vega"]);
        self.check(
            &format!("{what} curvature"),
            ours.curvature,
            &theirs["Curvature"],
        );
    }

    /// Whether ORE's report would leave out a risk class whose every figure is under its
    /// threshold.
    fn omitted(&self, figures: &[Option<f64>]) -> bool {
        self.report
            && figures
                .iter()
                .all(|f| f.is_none_or(|x| x.abs() < REPORT_THRESHOLD))
    }

    fn risk_classes(&mut self, what: &str, ours: &[RiskClassSimm], theirs: &Value) {
        let names = theirs.as_object().expect("risk classes");
        let ours: Vec<&RiskClassSimm> = ours
            .iter()
            .filter(|r| {
                names.contains_key(r.risk_class.ore_name())
                    || !self.omitted(&[
                        Some(r.total),
                        r.margins.delta,
                        r.margins.vega,
                        r.margins.curvature,
                        r.margins.base_correlation,
                    ])
            })
            .collect();
        assert_eq!(
            ours.len(),
            names.len(),
            "{what}: risk classes {ours:?} vs {theirs}"
        );
        for r in ours {
            self.seen.insert(r.risk_class.ore_name().to_string());
            let t = &theirs[r.risk_class.ore_name()];
            let label = format!("{what} {}", r.risk_class.ore_name());
            self.margin_types(&label, &r.margins, t);
            self.check(&format!("{label} total"), Some(r.total), &t["All"]);
        }
    }

    fn netting_set(&mut self, what: &str, ours: &NettingSetSimm, theirs: &Value) {
        self.check(&format!("{what} total"), Some(ours.total), &theirs["total"]);
        self.check(
            &format!("{what} add-ons"),
            ours.additional,
            &theirs["margin_types"]["AdditionalIM"],
        );
        self.margin_types(what, &ours.margins, &theirs["margin_types"]);
        self.risk_classes(what, &ours.risk_classes, &theirs["risk_classes"]);
        let products = theirs["product_classes"]
            .as_object()
            .expect("product classes");
        assert_eq!(
            ours.product_classes.len(),
            products.len(),
            "{what}: product classes"
        );
        for p in &ours.product_classes {
            let t = &theirs["product_classes"][p.product_class.name()];
            let label = format!("{what} {}", p.product_class.name());
            self.check(&format!("{label} total"), Some(p.total), &t["total"]);
            self.check(
                &format!("{label} multiplier"),
                p.additional,
                &t["margin_types"]["AdditionalIM"],
            );
            self.margin_types(&label, &p.margins, &t["margin_types"]);
            self.risk_classes(&label, &p.risk_classes, &t["risk_classes"]);
        }
    }
}

fn compare(name: &str, text: &str, every_risk_class: bool) {
    compare_side(
        name,
        text,
        every_risk_class,
        Side::Collect,
        MarginPeriod::TenDays,
    );
}

fn compare_side(name: &str, text: &str, every_risk_class: bool, side: Side, period: MarginPeriod) {
    let dir = std::env::temp_dir().join(format!("solvent-simm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.tsv"));
    std::fs::write(&path, text).unwrap();
    let expected = ore(&path, side, period);
    let rows = crif::parse(text).expect("generated CRIF");
    for version in versions(period) {
        let calibration = Calibration::load_for(version, period).unwrap();
        let results = simm_for_side(&rows, &calibration, side);
        let theirs = &expected["results"][oracle_name(version)];
        let sets = theirs.as_object().expect("netting sets");
        assert_eq!(
            results.len(),
            sets.len(),
            "{name} {version:?}: netting sets"
        );
        let mut comparison = Comparison {
            report: from_report(version),
            figures: 0,
            worst: 0.0,
            seen: Default::default(),
        };
        for ours in &results {
            let what = format!(
                "{name} SIMM {} {side:?} {}",
                version.name(),
                ours.netting_set
            );
            comparison.netting_set(&what, ours, &theirs[&ours.netting_set]);
        }
        if every_risk_class {
            assert_eq!(comparison.seen.len(), 6, "{name}: {:?}", comparison.seen);
        }
        eprintln!(
            "{name} SIMM {}: {} netting sets, {} figures, largest difference {:.2e} USD",
            version.name(),
            results.len(),
            comparison.figures,
            comparison.worst
        );
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn many_small_netting_sets_agree_with_ore() {
    compare("small", &generate::crif(1, 120, 12), true);
}

#[test]
fn netting_sets_spanning_every_bucket_agree_with_ore() {
    compare("wide", &generate::crif(2, 25, 150), true);
}

#[test]
fn add_ons_agree_with_ore() {
    let mut text = generate::crif(4, 80, 20);
    text.push_str(&generate::add_ons(4, 80));
    compare("add-ons", &text, false);
}

#[test]
fn the_post_side_agrees_with_ore() {
    // Posting negates every sensitivity, which changes curvature only.
    compare_side(
        "post",
        &generate::crif(3, 60, 40),
        true,
        Side::Post,
        MarginPeriod::TenDays,
    );
}

#[test]
fn a_one_day_margin_period_agrees_with_ore() {
    // One-day risk weights, curvature weights and volatility ratios; no concentration.
    compare_side(
        "one-day",
        &generate::crif(6, 60, 40),
        true,
        Side::Collect,
        MarginPeriod::OneDay,
    );
}

#[test]
fn a_crypto_option_desk_agrees_with_ore() {
    let text = std::fs::read_to_string(root().join("examples/simm/crypto-desk.tsv")).unwrap();
    compare("crypto-desk", &text, false);
}

/// With the regulations enforced (ORE's `enforceIMRegulations`), each netting set's winning
/// regulation and every figure under it agree with ORE's, on both sides; netting sets ORE leaves
/// without rows on a side (every row unspecified or excluded there) are absent on both.
#[test]
fn the_winning_regulations_agree_with_ore() {
    let mut text = generate::crif(12, 80, 20);
    text.push_str(&generate::add_ons(12, 80));
    let text = generate::with_regulations(&text, 12);
    let dir = std::env::temp_dir().join(format!("solvent-simm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("regulations.tsv");
    std::fs::write(&path, &text).unwrap();
    let rows = crif::parse(&text).expect("generated CRIF");
    let python = root().join("target/oracle-venv/bin/python");
    for side in [Side::Collect, Side::Post] {
        let mut command = Command::new(&python);
        command.arg(root().join("scripts/oracles/simm_ore.py"));
        command.arg("--regulations");
        if side == Side::Post {
            command.arg("--post");
        }
        command.arg(&path);
        let versions = [Version::V2_6, Version::V2_8];
        for version in versions {
            command.arg(version.name());
        }
        let output = command.output().expect("oracle");
        assert!(
            output.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected: Value = serde_json::from_slice(&output.stdout).expect("oracle JSON");
        for version in versions {
            let calibration = Calibration::load(version).unwrap();
            let results = simm_under_regulations(&rows, &calibration, side).unwrap();
            let theirs = expected["results"][version.name()]
                .as_object()
                .expect("netting sets");
            assert_eq!(
                results
                    .iter()
                    .map(|r| r.simm.netting_set.as_str())
                    .collect::<Vec<_>>(),
                theirs.keys().map(String::as_str).collect::<Vec<_>>(),
                "{side:?} {version:?}: netting sets"
            );
            let mut comparison = Comparison {
                report: true,
                figures: 0,
                worst: 0.0,
                seen: Default::default(),
            };
            let mut winners = std::collections::BTreeSet::new();
            for r in &results {
                let what = format!(
                    "regulations SIMM {} {side:?} {}",
                    version.name(),
                    r.simm.netting_set
                );
                let t = &theirs[&r.simm.netting_set];
                assert_eq!(
                    t["regulation"].as_str(),
                    Some(r.regulation.name()),
                    "{what}: winning regulation (tied: {:?})",
                    r.tied
                );
                winners.insert(r.regulation.name());
                comparison.netting_set(&what, &r.simm, t);
            }
            // The seeded CRIF must make several regulations win, or the test proves little.
            assert!(winners.len() >= 3, "{side:?}: winners {winners:?}");
            eprintln!(
                "regulations SIMM {} {side:?}: {} netting sets, {} figures, winners {winners:?}, largest difference {:.2e} USD",
                version.name(),
                results.len(),
                comparison.figures,
                comparison.worst
            );
        }
    }
    std::fs::remove_file(&path).ok();
}

/// A calculation currency other than USD (amounts and results still in USD): the currency's own
/// FX delta is no risk and its volatility group picks the FX risk weights and correlations. ORE's
/// application with that calculation currency gives the same figures to the cent, for regular
/// (EUR) and high-volatility calculation currencies (BRL in 2.2, TRY in 2.5A and 2.6, ARS in
/// 2.7+2412 and 2.8+2506, by the versions' tables), all of them FX qualifiers of the CRIF too.
#[test]
fn other_calculation_currencies_agree_with_ore() {
    let text = generate::crif(13, 60, 30);
    let dir = std::env::temp_dir().join(format!("solvent-simm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calculation.tsv");
    std::fs::write(&path, &text).unwrap();
    let rows = crif::parse(&text).expect("generated CRIF");
    let python = root().join("target/oracle-venv/bin/python");
    for (currency, versions) in [
        ("EUR", &[Version::V2_0, Version::V2_6, Version::V2_8][..]),
        ("BRL", &[Version::V2_2][..]),
        ("TRY", &[Version::V2_5A, Version::V2_6][..]),
        ("ARS", &[Version::V2_7, Version::V2_8][..]),
    ] {
        assert!(generate::CURRENCIES.contains(&currency));
        let mut command = Command::new(&python);
        command.arg(root().join("scripts/oracles/simm_ore.py"));
        command.args(["--calculation-currency", currency]);
        command.arg(&path);
        for version in versions {
            command.arg(version.name());
        }
        let output = command.output().expect("oracle");
        assert!(
            output.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected: Value = serde_json::from_slice(&output.stdout).expect("oracle JSON");
        for &version in versions {
            let calibration = Calibration::load(version)
                .unwrap()
                .with_calculation_currency(currency)
                .unwrap();
            let results = simm_for_side(&rows, &calibration, Side::Collect);
            let theirs = &expected["results"][version.name()];
            assert_eq!(
                results.len(),
                theirs.as_object().expect("netting sets").len()
            );
            let mut comparison = Comparison {
                report: true,
                figures: 0,
                worst: 0.0,
                seen: Default::default(),
            };
            for ours in &results {
                let what = format!(
                    "calculation currency {currency} SIMM {} {}",
                    version.name(),
                    ours.netting_set
                );
                comparison.netting_set(&what, ours, &theirs[&ours.netting_set]);
            }
            // The calculation currency must change the figures, or the test proves little.
            let usd = simm_for_side(&rows, &Calibration::load(version).unwrap(), Side::Collect);
            let changed = usd
                .iter()
                .zip(&results)
                .filter(|(a, b)| (a.total - b.total).abs() > 1.0)
                .count();
            assert!(
                changed > 0,
                "{currency} {version:?}: no netting set changed"
            );
            eprintln!(
                "calculation currency {currency} SIMM {}: {} figures, {changed} netting sets differ from USD, largest difference {:.2e} USD",
                version.name(),
                comparison.figures,
                comparison.worst
            );
        }
    }
    std::fs::remove_file(&path).ok();
}

/// Schedule IM (ORE's `IMScheduleCalculator`, its application's `imschedule` analytic and
/// `im_schedule` report), with the regulations enforced and not, on both sides: the netting sets,
/// each one's winning regulation, gross margin per product class and in all, gross and net
/// replacement cost, net-to-gross ratio and Schedule IM agree to the cent (the ratio to 1e-12).
#[test]
fn schedule_im_agrees_with_ore() {
    let asof_text = "2024-01-31";
    let asof = parse_date(asof_text).unwrap();
    let text = generate::schedule(14, 60, 6, asof);
    let dir = std::env::temp_dir().join(format!("solvent-simm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("schedule.tsv");
    std::fs::write(&path, &text).unwrap();
    let rows = crif::parse(&text).expect("generated CRIF");
    assert!(rows.sensitivities.is_empty() && rows.schedule.len() > 600);
    let python = root().join("target/oracle-venv/bin/python");
    for enforce in [false, true] {
        for side in [Side::Collect, Side::Post] {
            let mut command = Command::new(&python);
            command.arg(root().join("scripts/oracles/simm_ore.py"));
            if side == Side::Post {
                command.arg("--post");
            }
            let mode = if enforce {
                "--schedule-regulations"
            } else {
                "--schedule"
            };
            command.args([mode, asof_text]);
            command.arg(&path).arg("2.6");
            let output = command.output().expect("oracle");
            assert!(
                output.status.success(),
                "oracle failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let expected: Value = serde_json::from_slice(&output.stdout).expect("oracle JSON");
            let theirs = expected["results"]["2.6"]
                .as_object()
                .expect("netting sets");
            let ours = schedule_im(&rows, asof, side, enforce).unwrap();
            assert_eq!(
                ours.iter()
                    .map(|s| s.netting_set.as_str())
                    .collect::<Vec<_>>(),
                theirs.keys().map(String::as_str).collect::<Vec<_>>(),
                "{side:?} enforced {enforce}: netting sets"
            );
            let (mut figures, mut winners) = (0, std::collections::BTreeSet::new());
            let mut banded = std::collections::BTreeSet::new();
            for s in &ours {
                let t = &theirs[&s.netting_set];
                let what = format!("schedule {side:?} enforced {enforce} {}", s.netting_set);
                assert_eq!(
                    t["regulation"].as_str(),
                    Some(s.regulation.name()),
                    "{what}"
                );
                winners.insert(s.regulation.name());
                let close = |name: &str, ours: f64, tolerance: f64| {
                    let theirs = t[name].as_f64().unwrap();
                    assert!(
                        (ours - theirs).abs() < tolerance,
                        "{what} {name}: solvent {ours} vs ORE {theirs}"
                    );
                };
                close("gross_im", s.gross_im, CENT);
                close("gross_rc", s.gross_replacement_cost, CENT);
                close("net_rc", s.net_replacement_cost, CENT);
                close("ngr", s.net_to_gross, 1e-12);
                close("schedule_im", s.schedule_im, CENT);
                let classes = t["product_classes"].as_object().unwrap();
                assert_eq!(s.product_classes.len(), classes.len(), "{what}");
                for (class, gross) in &s.product_classes {
                    let theirs = classes[class.name()].as_f64().unwrap();
                    assert!((gross - theirs).abs() < CENT, "{what} {class:?}");
                    banded.insert(class.name());
                }
                figures += 5 + classes.len();
            }
            assert_eq!(banded.len(), 6, "every product class");
            if enforce {
                assert!(winners.len() >= 4, "{side:?}: winners {winners:?}");
            }
            eprintln!(
                "schedule {side:?} enforced {enforce}: {} netting sets, {figures} figures, winners {winners:?}",
                ours.len()
            );
        }
    }
    std::fs::remove_file(&path).ok();
}

/// A result currency other than USD (ORE's `resultCurrency` with FX spots in its market): every
/// amount is `Amount` converted from `AmountCurrency` and every concentration threshold is
/// converted from USD. Some rows of the CRIF are given in EUR and GBP (their `Amount` at the
/// rates, `AmountUSD` left as it was), the rest in USD; every figure, in EUR, agrees with ORE's
/// to the cent.
#[test]
fn a_result_currency_other_than_usd_agrees_with_ore() {
    use solvent_simm::crif::{FxRates, ResultCurrency, parse_in};
    let (eur, gbp) = (1.085, 1.27);
    let mut text = generate::crif(15, 60, 30);
    text.push_str(&generate::add_ons(15, 60));
    // Every third row in EUR, every seventh in GBP: Amount = AmountUSD / rate (to the cent).
    let mut lines: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
        let fixed_or_sensitivity =
            !fields[3].starts_with("Param_") || fields[3] == "Param_AddOnFixedAmount";
        if i > 0 && fixed_or_sensitivity && (i % 3 == 0 || i % 7 == 0) {
            let (currency, rate) = if i % 3 == 0 {
                ("EUR", eur)
            } else {
                ("GBP", gbp)
            };
            let usd: f64 = fields[10].parse().unwrap();
            fields[8] = currency.to_string();
            fields[9] = format!("{:.2}", usd / rate);
        }
        lines.push(fields.join("\t"));
    }
    let text = lines.join("\n") + "\n";
    let dir = std::env::temp_dir().join(format!("solvent-simm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("result-currency.tsv");
    std::fs::write(&path, &text).unwrap();
    let rates = FxRates::parse(["EURUSD=1.085", "GBPUSD=1.27"]).unwrap();
    let rows = parse_in(
        &text,
        &ResultCurrency {
            currency: "EUR",
            rates: &rates,
        },
    )
    .expect("generated CRIF");
    let python = root().join("target/oracle-venv/bin/python");
    let versions = [Version::V2_6, Version::V2_8];
    let mut command = Command::new(&python);
    command.arg(root().join("scripts/oracles/simm_ore.py"));
    command.args([
        "--result-currency",
        "EUR",
        "--fx",
        "EURUSD=1.085",
        "--fx",
        "GBPUSD=1.27",
    ]);
    command.arg(&path);
    for version in versions {
        command.arg(version.name());
    }
    let output = command.output().expect("oracle");
    assert!(
        output.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: Value = serde_json::from_slice(&output.stdout).expect("oracle JSON");
    let usd_in_eur = rates.rate("USD", "EUR").unwrap();
    assert_eq!(usd_in_eur, 1.0 / eur);
    for version in versions {
        let calibration = Calibration::load(version)
            .unwrap()
            .with_thresholds_in(usd_in_eur)
            .unwrap();
        let results = simm_for_side(&rows, &calibration, Side::Collect);
        let theirs = &expected["results"][version.name()];
        assert_eq!(results.len(), theirs.as_object().unwrap().len());
        let mut comparison = Comparison {
            report: true,
            figures: 0,
            worst: 0.0,
            seen: Default::default(),
        };
        for ours in &results {
            let what = format!("EUR SIMM {} {}", version.name(), ours.netting_set);
            comparison.netting_set(&what, ours, &theirs[&ours.netting_set]);
        }
        assert_eq!(comparison.seen.len(), 6);
        eprintln!(
            "result currency EUR SIMM {}: {} figures, largest difference {:.2e} EUR",
            version.name(),
            comparison.figures,
            comparison.worst
        );
    }
    std::fs::remove_file(&path).ok();
}
