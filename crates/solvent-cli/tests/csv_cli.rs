//! `--csv` end to end (issue 16 item 5): each table a command prints, as RFC 4180 CSV with its
//! units in the header and the exact figures (the JSON's, unrounded), read back with a CSV
//! reader.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod support;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use support::{path, run};

/// The records of a CSV text: the header, then the rows.
fn records(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// The command's stdout, which must succeed.
fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout
}

/// The row whose first cell is `first`.
fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    rows.iter()
        .find(|row| row[0] == first)
        .unwrap_or_else(|| panic!("no row {first} in {rows:?}"))
}

/// Whether `csv` is the JSON's `json` (serde_json's reader may land a unit in the last place away
/// from the shortest text both writers print).
fn same_float(csv: f64, json: Option<f64>) -> bool {
    json.is_some_and(|json| (csv - json).abs() <= 1e-15 * json.abs())
}

fn decimal(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is no decimal"))
}

#[test]
fn margin_summary_is_the_reports_exact_figures() {
    let portfolio = path("examples/deribit-btc-inverse.json");
    let text = ok(&[
        "margin", &portfolio, "--venue", "deribit", "--csv", "summary",
    ]);
    let (header, rows) = records(&text);
    assert_eq!(header, ["figure", "value (BTC)"]);
    // Deribit's published figures (tests/cli.rs derives them): IM 0.53125 + 0.11, MM
    // 0.28125 + 0.085, unrounded.
    assert_eq!(decimal(&row(&rows, "initial margin")[1]), dec!(0.64125));
    assert_eq!(decimal(&row(&rows, "maintenance margin")[1]), dec!(0.36625));
    let json: Value =
        serde_json::from_str(&ok(&["margin", &portfolio, "--venue", "deribit", "--json"])).unwrap();
    assert_eq!(row(&rows, "equity")[1], json["equity"].as_str().unwrap());
    // The health as the JSON's f64, every digit: 3.30578947 / 0.36625.
    let health: f64 = row(&rows, "health (equity / MM)")[1].parse().unwrap();
    assert!(same_float(health, json["health"].as_f64()), "{health}");
    assert!((health - 3.305_789_47 / 0.366_25).abs() < 1e-9);
    assert_eq!(row(&rows, "state")[1], "healthy");
}

#[test]
fn margin_positions_carry_units_and_the_options_index_level() {
    let portfolio = path("examples/deribit-btc-inverse.json");
    let text = ok(&[
        "margin",
        &portfolio,
        "--venue",
        "deribit",
        "--csv",
        "positions",
    ]);
    // A header holding a comma is quoted, as RFC 4180 asks.
    assert!(text.contains("\"liq. price, others fixed\""), "{text}");
    let (header, rows) = records(&text);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let perp = row(&rows, "BTC-PERPETUAL");
    // Sized in USD, marked in USD, liquidated at 89,596.6378 USD (tests/cli.rs derives it).
    assert_eq!(perp[column("size unit")], "USD");
    assert_eq!(decimal(&perp[column("size")]), dec!(2500000));
    let level = decimal(&perp[column("liq. price, others fixed")]);
    assert!((level - dec!(89596.637842)).abs() < dec!(0.001), "{level}");
    assert_eq!(perp[column("liq. price unit")], "USD");
    let call = row(&rows, "BTC-27DEC26-110000-C");
    // Its mark in BTC, exact; its level an index level, and none exists (no call premium
    // reaches the 1.48 BTC it would need).
    assert_eq!(call[column("mark unit")], "BTC");
    assert_eq!(decimal(&call[column("mark")]), dec!(0.01));
    assert_eq!(call[column("liq. price unit")], "USD index");
    assert_eq!(call[column("liq. price, others fixed")], "");
    // IM 0.11 BTC, exact, and its share of the pool's 0.64125 as a fraction.
    assert_eq!(decimal(&call[column("IM (BTC)")]), dec!(0.11));
    let share: f64 = call[column("IM share (fraction)")].parse().unwrap();
    assert!((share - 0.11 / 0.641_25).abs() < 1e-12, "{share}");
}

#[test]
fn margin_moves_are_the_reverse_stress() {
    let portfolio = path("examples/deribit-btc-inverse.json");
    let text = ok(&["margin", &portfolio, "--venue", "deribit", "--csv", "moves"]);
    let (header, rows) = records(&text);
    assert_eq!(
        header,
        [
            "underlyings moved together",
            "fall (fraction)",
            "index at fall (USD)",
            "rise (fraction)",
            "index at rise (USD)"
        ]
    );
    let btc = row(&rows, "BTC");
    let fall: f64 = btc[1].parse().unwrap();
    assert!((fall - -0.104_610_373_376).abs() < 1e-9, "{fall}");
    let index: f64 = btc[2].parse().unwrap();
    assert!((index - 100_000.0 * (1.0 + fall)).abs() < 1e-6, "{index}");
    // No rise liquidates the long: empty cells.
    assert_eq!(btc[3..], ["", ""]);
}

#[test]
fn margin_components_and_currencies() {
    let portfolio = path("examples/deribit-btc-inverse.json");
    let text = ok(&[
        "margin",
        &portfolio,
        "--venue",
        "deribit",
        "--csv",
        "components",
    ]);
    let (header, rows) = records(&text);
    assert_eq!(header, ["component", "amount (BTC)", "detail"]);
    assert_eq!(
        decimal(&row(&rows, "maintenance_margin:BTC-27DEC26-110000-C")[1]),
        dec!(0.085)
    );
    // Segregated margin: each currency's figures; the total row sums the USD columns.
    let spm = path("examples/deribit-spm.json");
    let text = ok(&["margin", &spm, "--venue", "deribit", "--csv", "currencies"]);
    let (header, rows) = records(&text);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let usd: Decimal = rows
        .iter()
        .filter(|row| row[0] != "total (USD)")
        .map(|row| decimal(&row[column("equity (USD)")]))
        .sum();
    assert_eq!(
        decimal(&row(&rows, "total (USD)")[column("equity (USD)")]),
        usd
    );
    assert!(usd > Decimal::ZERO);
}

#[test]
fn stress_scenarios_and_reverse_are_the_jsons() {
    let portfolio = path("examples/btc-desk.json");
    let json: Value =
        serde_json::from_str(&ok(&["stress", &portfolio, "--reverse", "--json"])).unwrap();
    let text = ok(&["stress", &portfolio, "--csv", "scenarios"]);
    let (header, rows) = records(&text);
    assert_eq!(header[3], "P&L (USDT)");
    let scenarios = json["scenarios"].as_array().unwrap();
    assert_eq!(rows.len(), scenarios.len());
    for (row, scenario) in rows.iter().zip(scenarios) {
        assert_eq!(row[0], scenario["name"].as_str().unwrap());
        assert_eq!(row[3], scenario["pnl"].as_str().unwrap());
        assert_eq!(row[6], scenario["maintenance_margin"].as_str().unwrap());
    }
    // The first row: every underlying down 50%, as fractions.
    assert_eq!(rows[0][1], "BTC -0.5; ETH -0.5; SOL -0.5");
    let text = ok(&["stress", &portfolio, "--reverse", "--csv", "reverse"]);
    let (_, rows) = records(&text);
    let rise: f64 = row(&rows, "BTC")[2].parse().unwrap();
    assert!(
        same_float(rise, json["reverse"][0]["up"].as_f64()),
        "{rise}"
    );
    // Without --reverse there is no reverse table to write.
    let (code, _, stderr) = run(&["stress", &portfolio, "--csv", "reverse"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--reverse"), "{stderr}");
}

#[test]
fn whatif_before_and_after_with_the_verdict() {
    let portfolio = path("examples/btc-desk.json");
    let args = ["whatif", &portfolio, "--trade", "BTCUSDT:0.5"];
    let json: Value = serde_json::from_str(&ok(&[&args[..], &["--json"]].concat())).unwrap();
    let text = ok(&[&args[..], &["--csv"]].concat());
    let (header, rows) = records(&text);
    assert_eq!(header, ["figure", "before (USDT)", "after (USDT)"]);
    let im = row(&rows, "initial margin");
    assert_eq!(im[1], json["before"]["initial_margin"].as_str().unwrap());
    assert_eq!(im[2], json["after"]["initial_margin"].as_str().unwrap());
    // Half a BTC more at 93,871.2 and 20x: IM up by 46,935.6 / 20 = 2,346.78.
    assert_eq!(decimal(&im[2]) - decimal(&im[1]), dec!(2346.78));
    assert_eq!(row(&rows, "bound by")[1], "cash-like collateral");
    assert_eq!(row(&rows, "verdict")[1], "accepted");
}

#[test]
fn allocate_figures_are_the_jsons() {
    let portfolio = path("examples/isolated-btcusdt.json");
    let json: Value = serde_json::from_str(&ok(&["allocate", &portfolio, "--json"])).unwrap();
    let text = ok(&["allocate", &portfolio, "--csv", "figures"]);
    let (header, rows) = records(&text);
    assert_eq!(header[0], "figure");
    for (label, key) in [
        ("equity", "equity"),
        ("excess (equity - IM)", "excess"),
        ("withdrawable", "withdrawable"),
    ] {
        assert_eq!(row(&rows, label)[1], json[key].as_str().unwrap(), "{label}");
    }
    let text = ok(&["allocate", &portfolio, "--csv", "moves"]);
    let (header, rows) = records(&text);
    assert_eq!(header[..3], ["to", "amount", "asset"]);
    assert_eq!(rows.len(), json["moves"].as_array().unwrap().len());
}

#[test]
fn csv_and_json_are_one_or_the_other() {
    let portfolio = path("examples/btc-desk.json");
    let (code, stdout, _) = run(&["margin", &portfolio, "--json", "--csv", "summary"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    let (code, _, stderr) = run(&["margin", &portfolio, "--csv", "everything"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("summary"), "{stderr}");
}

#[test]
fn cascade_rounds_and_totals_are_the_jsons() {
    let scratch = support::Scratch::new("csv-cascade");
    let accounts = scratch.path("accounts.jsonl");
    ok(&[
        "population",
        "--accounts",
        "300",
        "--seed",
        "11",
        "--out",
        &accounts,
    ]);
    let args = ["cascade", &accounts, "--shock", "BTC:-0.1,ETH:-0.12"];
    let json: Value = serde_json::from_str(&ok(&[&args[..], &["--json"]].concat())).unwrap();
    let text = ok(&[&args[..], &["--csv", "rounds"]].concat());
    let (header, rows) = records(&text);
    assert_eq!(header[..3], ["round", "BTC price (USD)", "ETH price (USD)"]);
    let rounds = json["rounds"].as_array().unwrap();
    assert_eq!(rows.len(), rounds.len());
    // Round 0 is the shock: BTC at 93,859.71 x 0.9, exact.
    assert_eq!(decimal(&rows[0][1]), dec!(93859.71) * dec!(0.9));
    for (row, round) in rows.iter().zip(rounds) {
        assert_eq!(row[1], round["prices"]["BTC"].as_str().unwrap());
        assert_eq!(row[4], round["volume_usd"].as_str().unwrap());
    }
    let text = ok(&[&args[..], &["--csv", "totals"]].concat());
    let (_, rows) = records(&text);
    let totals = &json["totals"];
    assert_eq!(row(&rows, "accounts")[1], "300");
    assert_eq!(
        row(&rows, "volume liquidated (USD)")[1],
        totals["volume_usd"].as_str().unwrap()
    );
    let change: f64 = row(&rows, "BTC price change (fraction)")[1]
        .parse()
        .unwrap();
    assert!(
        same_float(change, totals["price_change"]["BTC"].as_f64()),
        "{change}"
    );
}

#[test]
fn replay_tables_are_the_jsons() {
    let events = path("examples/events-demo.jsonl");
    let json: Value =
        serde_json::from_str(&ok(&["replay", &events, "--accounts", "--json"])).unwrap();
    let (header, rows) = records(&ok(&["replay", &events, "--csv", "balances"]));
    assert_eq!(header, ["ledger account", "asset", "balance"]);
    // Every balance exactly as the ledger holds it, and each asset's sum 0.
    for row in &rows {
        let expected = if row[0] == "sum (must be 0)" {
            &json["conservation"][&row[1]]
        } else {
            &json["balances"][&row[0]][&row[1]]
        };
        assert_eq!(row[2], expected.as_str().unwrap(), "{row:?}");
    }
    let sums: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "sum (must be 0)").collect();
    assert!(!sums.is_empty() && sums.iter().all(|r| r[2] == "0"));
    let (_, rows) = records(&ok(&["replay", &events, "--csv", "effects"]));
    assert_eq!(
        row(&rows, "liquidation")[1],
        json["effects"]["liquidation"].to_string()
    );
    let (header, rows) = records(&ok(&["replay", &events, "--accounts", "--csv", "accounts"]));
    assert_eq!(header[..3], ["account", "in", "equity (USDT)"]);
    let accounts = json["accounts"].as_array().unwrap();
    for (row, account) in rows.iter().zip(accounts) {
        assert_eq!(row[0], account["account"].as_str().unwrap());
        assert_eq!(row[2], account["equity"].as_str().unwrap());
    }
    // The accounts table needs --accounts.
    let (code, _, stderr) = run(&["replay", &events, "--csv", "accounts"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--accounts"), "{stderr}");
}

#[test]
fn population_summary_as_csv() {
    let scratch = support::Scratch::new("csv-population");
    let accounts = scratch.path("accounts.jsonl");
    let text = ok(&[
        "population",
        "--accounts",
        "200",
        "--seed",
        "3",
        "--out",
        &accounts,
        "--csv",
    ]);
    let (header, rows) = records(&text);
    assert_eq!(
        header,
        [
            "underlying",
            "positions",
            "longs",
            "open interest (USD)",
            "index (USD)"
        ]
    );
    // The same draw as the text summary: its rounded open interest is the CSV's exact one.
    let lines = ok(&[
        "population",
        "--accounts",
        "200",
        "--seed",
        "3",
        "--out",
        &accounts,
    ]);
    for row in &rows {
        let rounded = decimal(&row[3]).round_dp(0);
        let grouped = rounded
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect::<Vec<_>>()
            .join(",");
        let expected = format!(
            "{}: {} positions ({} long), open interest {grouped} USD",
            row[0], row[1], row[2]
        );
        assert!(lines.contains(&expected), "{expected} in {lines}");
    }
    // Without --out, stdout is the events: no CSV there.
    let (code, _, _) = run(&["population", "--accounts", "10", "--csv"]);
    assert_eq!(code, 2);
}

#[test]
fn venues_and_their_tiers_as_csv() {
    let (header, rows) = records(&ok(&["venue", "list", "--csv"]));
    assert_eq!(header, ["name", "venue"]);
    assert_eq!(row(&rows, "binance-usdm")[1], "Binance USDS-M");
    let text = ok(&["venue", "show", "binance-usdm", "BTCUSDT", "--csv", "tiers"]);
    let (_, rows) = records(&text);
    // Binance BTCUSDT bracket 2: 300,000 - 800,000 notional, 100x, 0.50%, maintenance amount
    // 300,000 x (0.005 - 0.004) = 300.
    let second = &rows[1];
    assert_eq!(
        second[2..],
        ["2", "300000", "800000", "100", "0.005", "300"]
    );
    // The brackets follow on (each starts where the one before ended), up to 1,800,000,000.
    for pair in rows.windows(2) {
        assert_eq!(pair[1][3], pair[0][4], "{pair:?}");
    }
    assert_eq!(rows.last().unwrap()[4], "1800000000");
    let (header, rows) = records(&ok(&["venue", "show", "default", "--csv", "collateral"]));
    assert_eq!(header[4], "collateral ratio (fraction)");
    assert!(rows.iter().any(|row| row[0] == "BTC"), "{rows:?}");
    let (code, _, stderr) = run(&[
        "venue",
        "show",
        "deribit",
        "BTC-PERPETUAL",
        "--csv",
        "tiers",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not tiered"), "{stderr}");
}

#[test]
fn backtest_summary_and_exceptions() {
    let scratch = support::Scratch::new("csv-backtest");
    let portfolio = scratch.write(
        "btc.json",
        r#"{"account":"hodl","mode":"cross","collateral":{"BTC":"1"}}"#,
    );
    let history = support::root()
        .join("../shared/data/prices")
        .display()
        .to_string();
    let args = ["backtest", &portfolio, "--history", &history];
    let (_, rows) = records(&ok(&[&args[..], &["--csv", "summary"]].concat()));
    // 2,783 days of 1 BTC at 99%: 25 exceptions against 27.83 expected (tests/stress_cli.rs).
    assert_eq!(row(&rows, "days tested")[1], "2783");
    assert_eq!(row(&rows, "exceptions (loss beyond VaR)")[1], "25");
    let expected: f64 = row(&rows, "expected")[1].parse().unwrap();
    assert!((expected - 2783.0 * 0.01).abs() < 1e-9, "{expected}");
    assert_eq!(row(&rows, "rejected at 5%")[1], "false");
    let (header, rows) = records(&ok(&[&args[..], &["--csv", "exceptions"]].concat()));
    assert_eq!(header, ["day", "VaR (USD)", "realised P&L (USD)"]);
    assert_eq!(rows.len(), 25);
    // Each exception is a loss beyond its day's VaR.
    for row in &rows {
        let var: f64 = row[1].parse().unwrap();
        let pnl: f64 = row[2].parse().unwrap();
        assert!(-pnl > var, "{row:?}");
    }
}
