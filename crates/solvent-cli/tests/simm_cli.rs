//! End-to-end tests of `solvent simm`: the crypto option desk's CRIF (`examples/simm/`) gives
//! ORE's figures (`scripts/oracles/simm_ore.py`, pip `open-source-risk-engine` 1.8.17.0) to the
//! cent in the table and in JSON, and a bad CRIF is refused naming its row and column.

#![allow(
    clippy::expect_used,
    reason = "test harness: a failed expectation is a failed test"
)]

mod support;

use support::{Scratch, path, run};

#[test]
fn the_crypto_desk_gives_ores_figures_in_the_table() {
    let crif = path("examples/simm/crypto-desk.tsv");
    let (code, text, error) = run(&["simm", crif.as_str(), "--version", "2.6"]);
    assert_eq!(code, 0, "{error}");
    // ORE SimmCalculator, SIMM 2.6, collect side: cpty-A 14,103,294.223194186; cpty-B
    // 16,325,504.447036883 (delta 7,628,133.192334807, vega 8,697,371.254702076).
    assert!(
        text.contains("SIMM 2.6 netting set cpty-A: 14,103,294.22 USD"),
        "{text}"
    );
    assert!(
        text.contains("SIMM 2.6 netting set cpty-B: 16,325,504.45 USD"),
        "{text}"
    );
    assert!(text.contains("7,628,133.19"), "{text}");
    assert!(text.contains("8,697,371.25"), "{text}");
}

#[test]
fn the_crypto_desk_gives_ores_figures_in_json() {
    let crif = path("examples/simm/crypto-desk.tsv");
    let (code, text, error) = run(&["simm", crif.as_str(), "--json"]);
    assert_eq!(code, 0, "{error}");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value["version"], "2.8+2506");
    // ORE SimmCalculator, SIMM 2.8+2506, collect side.
    let expected = [
        ("cpty-A", 11_799_204.276_130_11),
        ("cpty-B", 13_802_444.430_590_916),
    ];
    for (set, (name, total)) in value["netting_sets"]
        .as_array()
        .expect("netting sets")
        .iter()
        .zip(expected)
    {
        assert_eq!(set["netting_set"], name);
        let ours = set["total"].as_f64().expect("total");
        assert!((ours - total).abs() < 0.005, "{name}: {ours} vs {total}");
    }
}

#[test]
fn a_bad_row_is_refused_naming_row_and_column() {
    let scratch = Scratch::new("simm");
    let crif = scratch.write(
        "bad.tsv",
        "PortfolioID\tProductClass\tRiskType\tQualifier\tBucket\tLabel1\tLabel2\tAmountUSD\n\
         A\tEquity\tRisk_EquityVol\tBTC\t12\t7y\t\t1000\n",
    );
    let (code, _, error) = run(&["simm", crif.as_str()]);
    assert_eq!(code, 2);
    assert!(error.contains("row 2, column Label1"), "{error}");
}

#[test]
fn an_unknown_version_is_refused() {
    let crif = path("examples/simm/crypto-desk.tsv");
    let (code, _, error) = run(&["simm", crif.as_str(), "--version", "3.1"]);
    assert_eq!(code, 2);
    assert!(error.contains("unknown SIMM version '3.1'"), "{error}");
    // A version ORE ships whose calibration is not carried is refused by name, with the reason.
    let (code, _, error) = run(&["simm", crif.as_str(), "--version", "1.3"]);
    assert_eq!(code, 2);
    assert!(
        error.contains("SIMM version 1.3 is not supported: its structure differs"),
        "{error}"
    );
    // Before 2.2 ORE's SIMM has no one-day calibration.
    let (code, _, error) = run(&["simm", crif.as_str(), "--version", "2.1", "--mpor", "1"]);
    assert_eq!(code, 2);
    assert!(
        error.contains("SIMM version 2.1 has no one-day calibration"),
        "{error}"
    );
}

#[test]
fn the_post_side_negates_the_sensitivities_for_curvature() {
    let crif = path("examples/simm/crypto-desk.tsv");
    let (code, text, error) = run(&[
        "simm",
        crif.as_str(),
        "--version",
        "2.6",
        "--side",
        "post",
        "--json",
    ]);
    assert_eq!(code, 0, "{error}");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value["side"], "post");
    // ORE SimmCalculator, SIMM 2.6, post side: cpty-A 11,764,369.169533279 (its long vega has no
    // curvature to post); cpty-B 60,678,197.04395413 (curvature 44,352,692.59691724).
    let sets = value["netting_sets"].as_array().expect("netting sets");
    let total = |i: usize| sets[i]["total"].as_f64().expect("total");
    assert!((total(0) - 11_764_369.169_533_279).abs() < 0.005);
    assert!((total(1) - 60_678_197.043_954_13).abs() < 0.005);
    let curvature = sets[1]["margins"]["curvature"].as_f64().expect("curvature");
    assert!((curvature - 44_352_692.596_917_24).abs() < 0.005);
}

#[test]
fn a_one_day_margin_period_gives_ores_one_day_figures() {
    let crif = path("examples/simm/crypto-desk.tsv");
    let (code, text, error) = run(&[
        "simm",
        crif.as_str(),
        "--version",
        "2.6",
        "--mpor",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{error}");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value["margin_period_days"], 1);
    // ORE SimmCalculator, SIMM 2.6, one-day margin period: cpty-A 2,886,174.859987664,
    // cpty-B 3,872,388.9228040315.
    let sets = value["netting_sets"].as_array().expect("netting sets");
    let total = |i: usize| sets[i]["total"].as_f64().expect("total");
    assert!((total(0) - 2_886_174.859_987_664).abs() < 0.005);
    assert!((total(1) - 3_872_388.922_804_031_5).abs() < 0.005);
    let (code, _, error) = run(&["simm", crif.as_str(), "--mpor", "5"]);
    assert_eq!(code, 2);
    assert!(
        error.contains("unknown margin period of risk '5'"),
        "{error}"
    );
}

#[test]
fn the_csv_holds_every_netting_sets_breakdown_at_full_precision() {
    let crif = path("examples/simm/crypto-desk.tsv");
    let (code, text, error) = run(&["simm", crif.as_str(), "--version", "2.6", "--csv"]);
    assert_eq!(code, 0, "{error}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "netting set",
            "product class",
            "risk class",
            "delta (USD)",
            "vega (USD)",
            "curvature (USD)",
            "base corr. (USD)",
            "total (USD)"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    let figure = |set: &str, product: &str, risk: &str, column: usize| -> Option<f64> {
        let record = rows
            .iter()
            .find(|r| &r[0] == set && &r[1] == product && &r[2] == risk)
            .expect("row");
        (!record[column].is_empty()).then(|| record[column].parse().expect("number"))
    };
    // ORE SimmCalculator, SIMM 2.6, collect side (as in the table test above), here exact.
    let total_a = figure("cpty-A", "all", "all", 7).expect("total");
    assert!((total_a - 14_103_294.223_194_186).abs() < 1e-6, "{total_a}");
    let delta_b = figure("cpty-B", "all", "all", 3).expect("delta");
    assert!((delta_b - 7_628_133.192_334_807).abs() < 1e-6, "{delta_b}");
    // The CSV and the JSON are the same figures (to serde_json's reading of a float, which is
    // not always the nearest one).
    let (_, json, _) = run(&["simm", crif.as_str(), "--version", "2.6", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let from_json = value["netting_sets"][1]["total"].as_f64().expect("total");
    let from_csv = figure("cpty-B", "all", "all", 7).expect("total");
    assert!((from_csv - from_json).abs() <= 4.0 * f64::EPSILON * from_json);
    let (code, _, _) = run(&["simm", crif.as_str(), "--csv", "--json"]);
    assert_eq!(code, 2);
}

#[test]
fn enforced_regulations_report_each_netting_sets_winner_as_ore_does() {
    // ORE (simm_ore.py --regulations, SIMM 2.6): NS1 collects under USPR, 44,800,000 (t1's equity
    // delta, RW 30 x 1,000,000, plus t3's FX delta, RW 7.4 x 2,000,000, in two product classes),
    // above ESA (t1 and t2); it posts under JFSA, 30,000,000 (t1 alone). NS2's single row is
    // under UK and ESA alike: a tie, won by ESA, first in ORE's order; it is excluded on the post
    // side, so NS2 posts nothing.
    let crif = path("examples/simm/regulations.tsv");
    let (code, text, error) = run(&["simm", crif.as_str(), "--version", "2.6", "--regulations"]);
    assert_eq!(code, 0, "{error}");
    assert!(
        text.contains("SIMM 2.6 netting set NS1 under USPR: 44,800,000.00 USD"),
        "{text}"
    );
    assert!(
        text.contains("SIMM 2.6 netting set NS2 under ESA (tied: ESA, UK): 30,000,000.00 USD"),
        "{text}"
    );
    let (code, json, error) = run(&[
        "simm",
        crif.as_str(),
        "--version",
        "2.6",
        "--regulations",
        "--side",
        "post",
        "--json",
    ]);
    assert_eq!(code, 0, "{error}");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sets = value["netting_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{json}");
    assert_eq!(sets[0]["netting_set"], "NS1");
    assert_eq!(sets[0]["regulation"], "JFSA");
    assert!((sets[0]["total"].as_f64().unwrap() - 30_000_000.0).abs() < 0.005);
    // Without the flag every row counts: NS1's three rows together.
    let (_, text, _) = run(&["simm", crif.as_str(), "--version", "2.6"]);
    assert!(!text.contains("under"), "{text}");
}

#[test]
fn a_calculation_currency_other_than_usd_is_taken_and_a_bad_one_refused() {
    // The regulations example without regulations: NS1 holds equity deltas and an FX delta of
    // EUR 2,000,000. With EUR as the calculation currency that FX delta is no risk, and SIMM is
    // the equity margin alone: ORE (simm_ore.py --calculation-currency EUR, SIMM 2.6) gives
    // 31,528,558.482747033 USD, as for the equity rows without the FX row (30,000,000 and
    // -14,000,000 across buckets 1 and 2).
    let crif = path("examples/simm/regulations.tsv");
    let (code, json, error) = run(&[
        "simm",
        crif.as_str(),
        "--version",
        "2.6",
        "--calculation-currency",
        "EUR",
        "--json",
    ]);
    assert_eq!(code, 0, "{error}");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["calculation_currency"], "EUR");
    let ns1 = &value["netting_sets"][0];
    assert_eq!(ns1["netting_set"], "NS1");
    assert!((ns1["total"].as_f64().unwrap() - 31_528_558.482_747_033).abs() < 0.005);
    // In USD the FX delta counts: 7.4 x 2,000,000 more in the RatesFX product class.
    let (_, json, _) = run(&["simm", crif.as_str(), "--version", "2.6", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let total = value["netting_sets"][0]["total"].as_f64().unwrap();
    assert!(
        (total - (31_528_558.482_747_033 + 14_800_000.0)).abs() < 0.005,
        "{total}"
    );
    let (code, _, error) = run(&["simm", crif.as_str(), "--calculation-currency", "eur"]);
    assert_eq!(code, 2);
    assert!(error.contains("calculation currency 'eur'"), "{error}");
}

#[test]
fn schedule_rows_give_schedule_im_as_ore_does() {
    // examples/simm/schedule.tsv as of 2024-01-31, worked by hand and equal to ORE's im_schedule
    // report (simm_ore.py --schedule 2024-01-31): NS1 holds a rates trade of 10,000,000 ending
    // 2027-06-30 (3.4 years: 2 %, 200,000, PV 250,000) and a credit trade of 5,000,000 ending
    // 2025-01-15 (under 2 years: 2 %, 100,000, PV -120,000). Gross IM 300,000, gross replacement
    // cost 250,000, net 130,000, NGR 0.52: 300,000 x (0.4 + 0.6 x 0.52) = 213,600. NS2: an FX
    // trade of 3,000,000 at 6 %, PV positive, NGR 1: 180,000.
    let crif = path("examples/simm/schedule.tsv");
    let (code, text, error) = run(&["simm", crif.as_str(), "--asof", "2024-01-31"]);
    assert_eq!(code, 0, "{error}");
    assert!(
        text.contains("Schedule IM netting set NS1 under Unspecified: 213,600.00 USD"),
        "{text}"
    );
    assert!(
        text.contains("Schedule IM netting set NS2 under Unspecified: 180,000.00 USD"),
        "{text}"
    );
    // Enforced, NS1 collects under ESA (both trades; USPR has the credit trade alone) and posts
    // under ESA too (the rates trade, 200,000 x (0.4 + 0.6 x 1); USPR's credit trade gives
    // 100,000 x (0.4 + 0.6 x 1)).
    let (code, json, error) = run(&[
        "simm",
        crif.as_str(),
        "--asof",
        "2024-01-31",
        "--regulations",
        "--side",
        "post",
        "--json",
    ]);
    assert_eq!(code, 0, "{error}");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ns1 = &value["schedule"][0];
    assert_eq!(ns1["netting_set"], "NS1");
    assert_eq!(ns1["regulation"], "ESA");
    assert!((ns1["schedule_im"].as_f64().unwrap() - 200_000.0).abs() < 0.005);
    // ORE's Schedule IM in another calculation currency converts with FX rates: refused.
    let (code, _, error) = run(&[
        "simm",
        crif.as_str(),
        "--asof",
        "2024-01-31",
        "--calculation-currency",
        "EUR",
    ]);
    assert_eq!(code, 2);
    assert!(
        error.contains("Schedule IM is computed in USD only"),
        "{error}"
    );
    // Without --asof the maturities are unknown: refused by name.
    let (code, _, error) = run(&["simm", crif.as_str()]);
    assert_eq!(code, 2);
    assert!(error.contains("give --asof DATE"), "{error}");
}

#[test]
fn a_result_currency_converts_amounts_and_thresholds_as_ore_does() {
    // The regulations example in EUR at EURUSD 1.085 (its amounts are in USD): ORE (simm_ore.py
    // --result-currency EUR --fx EURUSD=1.085, SIMM 2.6) gives NS1 42,699,132.24216317 EUR and
    // NS2 27,649,769.585253455 EUR, the USD figures over 1.085.
    let crif = path("examples/simm/regulations.tsv");
    let (code, text, error) = run(&[
        "simm",
        crif.as_str(),
        "--version",
        "2.6",
        "--result-currency",
        "EUR",
        "--fx-rate",
        "EURUSD=1.085",
    ]);
    assert_eq!(code, 0, "{error}");
    assert!(
        text.contains("SIMM 2.6 netting set NS1: 42,699,132.24 EUR"),
        "{text}"
    );
    assert!(
        text.contains("SIMM 2.6 netting set NS2: 27,649,769.59 EUR"),
        "{text}"
    );
    assert!(text.contains("total (EUR)"), "{text}");
    // Without a rate to EUR, refused by name.
    let (code, _, error) = run(&["simm", crif.as_str(), "--result-currency", "EUR"]);
    assert_eq!(code, 2);
    assert!(error.contains("no FX rate between USD and EUR"), "{error}");
    let (code, _, error) = run(&[
        "simm",
        crif.as_str(),
        "--result-currency",
        "EUR",
        "--fx-rate",
        "EURUSD=-1",
    ]);
    assert_eq!(code, 2);
    assert!(error.contains("FX rate 'EURUSD=-1'"), "{error}");
}
