//! `solvent population` and `solvent cascade` end to end: the file, the JSON report, the plot,
//! and bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod support;

use std::path::PathBuf;

use support::run;

fn scratch(name: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("solvent-cascade-cli-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    directory.join(name)
}

fn population(name: &str, accounts: &str, seed: &str) -> String {
    let path = scratch(name);
    let (code, stdout, stderr) = run(&[
        "population",
        "--accounts",
        accounts,
        "--seed",
        seed,
        "--out",
        &path.display().to_string(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("for {accounts} accounts")),
        "{stdout}"
    );
    path.display().to_string()
}

#[test]
fn population_then_cascade_with_json_and_plot() {
    let accounts = population("accounts.jsonl", "300", "11");
    let again = population("again.jsonl", "300", "11");
    assert_eq!(
        std::fs::read_to_string(&accounts).unwrap(),
        std::fs::read_to_string(&again).unwrap(),
        "same seed, same file"
    );
    let plot = scratch("cascade.svg");
    let _ = std::fs::remove_file(&plot);
    let (code, stdout, stderr) = run(&[
        "cascade",
        &accounts,
        "--shock",
        "BTC:-0.1,ETH:-0.12",
        "--impact",
        "0.1",
        "--max-rounds",
        "50",
        "--plot",
        &plot.display().to_string(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "accounts",
        "population_rejected",
        "params",
        "rounds",
        "totals",
        "state_hash",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["accounts"], 300);
    assert_eq!(report["population_rejected"], 0);
    let totals = &report["totals"];
    for key in [
        "rounds",
        "stopped",
        "volume_usd",
        "adl_volume_usd",
        "accounts_liquidated",
        "insurance_fund_drawdown_usd",
        "final_prices",
        "price_change",
    ] {
        assert!(totals.get(key).is_some(), "missing totals.{key}");
    }
    let rounds = report["rounds"].as_array().unwrap();
    assert_eq!(totals["rounds"].as_u64().unwrap() as usize, rounds.len());
    for key in [
        "prices",
        "accounts_liquidated",
        "volume_usd",
        "insurance_fund",
        "adl_volume_usd",
    ] {
        assert!(rounds[0].get(key).is_some(), "missing rounds[0].{key}");
    }
    // The shock itself is round 0's price.
    let shocked: f64 = rounds[0]["prices"]["BTC"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((shocked - 93_859.71 * 0.9).abs() < 1e-6);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Liquidation cascade"));

    // The table form names the totals.
    let (code, stdout, stderr) = run(&["cascade", &accounts, "--shock", "BTC:-0.1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("insurance fund drawdown (USD)"), "{stdout}");
    assert!(stdout.contains("ADL volume (USD)"), "{stdout}");
}

#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    let accounts = population("bad.jsonl", "20", "5");
    for (args, named) in [
        (vec!["--shock", "BTC=-0.1"], "--shock"),
        (vec!["--shock", "BTC:-1.5"], "--shock"),
        (vec!["--shock", "DOGE:-0.1"], "--shock"),
        (
            vec!["--shock", "BTC:-0.1", "--adv-usd", "BTC:-5"],
            "--adv-usd",
        ),
        (
            vec!["--shock", "BTC:-0.1", "--max-rounds", "0"],
            "--max-rounds",
        ),
        (vec!["--shock", "BTC:-0.1", "--impact", "-1"], "--impact"),
    ] {
        let mut full = vec!["cascade", accounts.as_str()];
        full.extend(args.iter().copied());
        let (code, stdout, stderr) = run(&full);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let broken = scratch("broken.jsonl");
    std::fs::write(&broken, "{\"seq\":1}\n").unwrap();
    let (code, _, stderr) = run(&[
        "cascade",
        &broken.display().to_string(),
        "--shock",
        "BTC:-0.1",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("line 1"), "{stderr}");
    let (code, _, stderr) = run(&["population", "--accounts", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--accounts"), "{stderr}");
}

/// Without `--out` the population goes to stdout as it is drawn: the same bytes as the file.
/// `--quiet`, before or after the subcommand, changes nothing on stdout and leaves stderr empty
/// (no bar is drawn off a terminal anyway).
#[test]
fn population_on_stdout_is_the_file_and_quiet_changes_nothing_there() {
    let file = population("stdout.jsonl", "150", "3");
    let (code, stdout, stderr) = run(&["population", "--accounts", "150", "--seed", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, std::fs::read_to_string(&file).unwrap());
    // Two index prices, then each of the 150 accounts' deposits, leverage settings and fills.
    assert_eq!(stdout.matches("\"index_price\"").count(), 2);
    assert!(stdout.matches("\"acct-0150\"").count() >= 2, "{stdout}");
    for args in [
        vec!["--quiet", "cascade", file.as_str(), "--shock", "BTC:-15%"],
        vec!["cascade", file.as_str(), "--shock", "BTC:-15%", "-q"],
    ] {
        let (code, quiet, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
        let (_, loud, _) = run(&["cascade", &file, "--shock", "BTC:-15%"]);
        assert_eq!(quiet, loud);
        assert!(quiet.contains("accounts liquidated"), "{quiet}");
    }
}

/// A population that cannot be written leaves no file behind, and nothing on stdout.
#[test]
fn an_unwritable_population_leaves_nothing() {
    let missing = scratch("no-such-directory").join("accounts.jsonl");
    let (code, stdout, stderr) = run(&[
        "population",
        "--accounts",
        "10",
        "--out",
        &missing.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("--out"), "{stderr}");
    assert!(!missing.exists());
}

#[test]
fn a_population_is_drawn_on_each_venues_own_contracts_and_accepted_whole() {
    // Each venue's linear perpetuals on BTC and ETH (Deribit lists a USDC one on BTC only), its
    // own margin rule sizing the collateral (OKX's brackets in contracts, Drift's size premium,
    // dYdX's open-interest scaling at its base), BTC collateral only where the venue takes BTC.
    for (venue, instruments) in [
        ("bybit-linear", &["BTCUSDT", "ETHUSDT"][..]),
        ("hyperliquid", &["BTC", "ETH"][..]),
        ("okx-swap", &["BTC-USDT-SWAP", "ETH-USDT-SWAP"][..]),
        ("drift", &["BTC-PERP", "ETH-PERP"][..]),
        ("dydx-v4", &["BTC-USD", "ETH-USD"][..]),
        ("deribit", &["BTC_USDC-PERPETUAL"][..]),
    ] {
        let path = scratch(&format!("population-{venue}.jsonl"));
        let path = path.display().to_string();
        let (code, _, stderr) = run(&[
            "population",
            "--accounts",
            "400",
            "--venue",
            venue,
            "--out",
            &path,
            "-q",
        ]);
        assert_eq!(code, 0, "{venue}: {stderr}");
        let text = std::fs::read_to_string(&path).unwrap();
        for instrument in instruments {
            assert!(
                text.contains(&format!(r#""instrument":"{instrument}""#)),
                "{venue}: no {instrument}"
            );
        }
        // The venue's own engine takes every event: no refused fill, no collateral short.
        let (code, stdout, stderr) =
            run(&["cascade", &path, "--venue", venue, "--shock", "BTC:-15%"]);
        assert_eq!(code, 0, "{venue}: {stderr}");
        assert!(!stderr.contains("refused"), "{venue}: {stderr}");
        assert!(stdout.contains("accounts liquidated"), "{venue}: {stdout}");
    }
    // A coin-margined venue has no stablecoin-settled perpetual for the population's accounts.
    let path = scratch("population-coinm.jsonl").display().to_string();
    let (code, _, stderr) = run(&[
        "population",
        "--accounts",
        "10",
        "--venue",
        "binance-coinm",
        "--out",
        &path,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "the venue lists no linear perpetual on BTC or ETH settled in its settlement asset BTC"
        ),
        "{stderr}"
    );
}
