//! `solvent stress` and `solvent backtest` end to end: scenarios, reverse stress, the SVG plot,
//! the Kupiec backtest on the shared price history, and bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod support;

use support::{path, root, run};

#[test]
fn historical_stress_flags_the_isolated_liquidations() {
    let (code, stdout, stderr) = run(&[
        "stress",
        &path("examples/btc-desk.json"),
        "--scenarios",
        "historical",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = value["scenarios"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["name"], "2020-03-12 COVID crash");
    // SOL did not trade on Binance in March 2020: the isolated SOL long survives that day and is
    // liquidated on the FTX day (SOL -42.25%).
    assert_eq!(
        rows[0]["isolated_liquidations"].as_array().unwrap().len(),
        0
    );
    assert_eq!(rows[2]["isolated_liquidations"][0], "SOL_USDC-PERPETUAL");
    // Every P&L is the change of equity from the base.
    let base: f64 = value["base"]["equity"].as_str().unwrap().parse().unwrap();
    for row in rows {
        let pnl: f64 = row["pnl"].as_str().unwrap().parse().unwrap();
        let equity: f64 = row["equity"].as_str().unwrap().parse().unwrap();
        assert!((base + pnl - equity).abs() < 1e-6, "{row}");
    }
}

#[test]
fn grid_stress_with_reverse_and_plot() {
    let plot = std::env::temp_dir().join(format!("solvent-stress-{}.svg", std::process::id()));
    let plot_text = plot.display().to_string();
    let (code, stdout, stderr) = run(&[
        "stress",
        &path("examples/btc-desk.json"),
        "--reverse",
        "--plot",
        &plot_text,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Reverse stress"), "{stdout}");
    assert!(stdout.contains("all -50%"), "{stdout}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    std::fs::remove_file(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    assert!(svg.contains("equity = maintenance margin"));
}

#[test]
fn a_scenario_file_is_read_and_its_errors_are_named() {
    let dir = std::env::temp_dir().join(format!("solvent-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(
        &good,
        r#"{"scenarios":[{"name":"BTC -30%, vol x2","price_moves":{"BTC":"-0.3"},"vol_changes":{"BTC":"1"}}]}"#,
    )
    .unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"scenarios":[{"name":"x","price_moves":{"BTC":"-1.5"}}]}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "stress",
        &path("examples/btc-desk.json"),
        "--scenarios",
        &good.display().to_string(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("BTC -30%, vol x2"));
    let (code, stdout, stderr) = run(&[
        "stress",
        &path("examples/btc-desk.json"),
        "--scenarios",
        &bad.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("scenarios[0].price_moves.BTC"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn portfolio_mode_with_history_reports_expected_shortfall() {
    let dir = std::env::temp_dir().join(format!("solvent-pm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let portfolio = dir.join("pm.json");
    std::fs::write(
        &portfolio,
        r#"{"account":"pm","mode":"portfolio","collateral":{"USDT":"100000"},
            "positions":[{"instrument":"BTCUSDT","size":"2","entry_price":"90000"},
                         {"instrument":"ETHUSDT","size":"-20","entry_price":"3000"}],
            "market":{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"93859.71","ETH":"3224.99","USDT":"1"}}}"#,
    )
    .unwrap();
    let history = root().join("../shared/data/prices").display().to_string();
    let (code, stdout, stderr) = run(&[
        "margin",
        &portfolio.display().to_string(),
        "--history",
        &history,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let es = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "portfolio:expected_shortfall")
        .expect("an expected-shortfall component");
    assert!(
        es["detail"]
            .as_str()
            .unwrap()
            .contains("filtered historical scenarios"),
        "{es}"
    );
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{}",
        report["warnings"]
    );
    // Without the history the venue's ES cannot be computed, and the report says so.
    let (code, stdout, _) = run(&["margin", &portfolio.display().to_string(), "--json"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("no price history was given"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn backtest_of_one_btc_is_not_rejected_by_kupiec() {
    let dir = std::env::temp_dir().join(format!("solvent-backtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let portfolio = dir.join("btc.json");
    std::fs::write(
        &portfolio,
        r#"{"account":"hodl","mode":"cross","collateral":{"BTC":"1"}}"#,
    )
    .unwrap();
    let history = root().join("../shared/data/prices").display().to_string();
    let (code, stdout, stderr) = run(&[
        "backtest",
        &portfolio.display().to_string(),
        "--history",
        &history,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // 2,783 days of 1 BTC at 99%: 25 exceptions against 27.8 expected, Kupiec p = 0.58.
    assert_eq!(report["kupiec"]["observations"], 2783);
    assert_eq!(report["kupiec"]["exceptions"], 25);
    assert_eq!(report["kupiec"]["reject_at_5pct"], false);
    // Options are refused with the reason.
    let options = dir.join("options.json");
    std::fs::write(
        &options,
        r#"{"account":"o","mode":"cross","positions":[{"instrument":"BTC-27DEC26-100000-C","size":"1","entry_price":"0.1"}]}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "backtest",
        &options.display().to_string(),
        "--history",
        &history,
    ]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("volatility surface"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
