//! End-to-end tests of the `solvent` binary: golden reports, bad input, the JSON contract of
//! DESIGN.md 11, and hand-worked figures.
//!
//! Every test runs the built binary (`CARGO_BIN_EXE_solvent`) from the system temp directory, so
//! nothing depends on where `cargo test` was started; inputs are found from `CARGO_MANIFEST_DIR`
//! and scratch files live in a unique directory that is removed when the test ends.
//!
//! Expected figures are written as the arithmetic that produces them, one comment per term.
//! Regression tests named after a defect pin it: each failed before its fix.

// clippy.toml allows `expect` inside `#[test]` functions; the helpers below are test code too.
#![allow(
    clippy::expect_used,
    reason = "test harness: a failed expectation is a failed test"
)]

mod support;

use std::fs;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal_macros::dec;
use serde_json::Value;
use support::{Scratch, root, run, solvent, stderr, stdout};

// ------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

fn venue(name: &str) -> String {
    root().join("venues").join(name).display().to_string()
}

/// Runs a command that must succeed and returns its stdout.
fn ok<S: AsRef<str>>(args: &[S]) -> String {
    let output = solvent(args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "solvent {:?} failed: {}",
        args.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
        stderr(&output)
    );
    only_warnings(&output);
    stdout(&output)
}

/// Asserts that stderr holds nothing but warnings (the defaults a command filled in, named).
fn only_warnings(output: &std::process::Output) {
    let text = stderr(output);
    assert!(
        text.lines().all(|line| line.starts_with("warning: ")),
        "unexpected stderr: {text}"
    );
}

/// Runs a command that must succeed with `--json` and returns the parsed object.
fn ok_json<S: AsRef<str>>(args: &[S]) -> Value {
    let text = ok(args);
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// A money figure: must be a JSON string holding an exact decimal.
fn money(value: &Value, key: &str) -> Decimal {
    let field = &value[key];
    let text = field
        .as_str()
        .unwrap_or_else(|| panic!("{key} must be a decimal string, found {field}"));
    Decimal::from_str_exact(text)
        .unwrap_or_else(|error| panic!("{key} = {text:?} is not a decimal: {error}"))
}

/// A ratio: must be a JSON number (or null where the design allows it).
fn ratio(value: &Value, key: &str) -> Option<f64> {
    let field = &value[key];
    if field.is_null() {
        return None;
    }
    Some(
        field
            .as_f64()
            .unwrap_or_else(|| panic!("{key} must be a number, found {field}")),
    )
}

fn position<'a>(report: &'a Value, instrument: &str) -> &'a Value {
    report["positions"]
        .as_array()
        .expect("positions is an array")
        .iter()
        .find(|p| p["instrument"] == instrument)
        .unwrap_or_else(|| panic!("no position {instrument} in {report}"))
}

fn component(report: &Value, name: &str) -> Decimal {
    let found = report["components"]
        .as_array()
        .expect("components is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}"));
    money(found, "amount")
}

fn close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: expected {expected} (+/- {tolerance}), found {actual}"
    );
}

/// The state DESIGN.md 8.1 gives for a health, with the default thresholds 1.5 / 1.2 / 1.05.
fn expected_state(equity: Decimal, maintenance: Decimal) -> &'static str {
    if maintenance <= Decimal::ZERO {
        return if equity < Decimal::ZERO {
            "bankrupt"
        } else {
            "healthy"
        };
    }
    if equity <= Decimal::ZERO {
        return "bankrupt";
    }
    let health = equity / maintenance;
    if health > dec!(1.5) {
        "healthy"
    } else if health > dec!(1.2) {
        "margin_call"
    } else if health > dec!(1.05) {
        "reduce_only"
    } else {
        "liquidating"
    }
}

/// Every example, with the extra arguments it needs.
fn examples() -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("btc_desk", vec![example("btc-desk.json")]),
        (
            "deribit_btc_inverse",
            vec![example("deribit-btc-inverse.json")],
        ),
        (
            "deribit_usdc_perp_25btc",
            vec![example("deribit-usdc-perp-25btc.json")],
        ),
        ("binance_6000_btc", vec![example("binance-6000-btc.json")]),
        (
            "drift_borrowed_usdt",
            vec![
                example("drift-borrowed-usdt.json"),
                "--venue".into(),
                venue("drift.toml"),
            ],
        ),
        ("margin_call", vec![example("margin-call.json")]),
        ("reduce_only", vec![example("reduce-only.json")]),
        ("isolated_btcusdt", vec![example("isolated-btcusdt.json")]),
        (
            "binance_coinm_btcusd",
            vec![
                example("binance-coinm-btcusd.json"),
                "--venue".into(),
                venue("binance-coinm.toml"),
            ],
        ),
        (
            "deribit_spm",
            vec![
                example("deribit-spm.json"),
                "--venue".into(),
                venue("deribit.toml"),
            ],
        ),
        // docs/published-examples.md 12: 100 contracts (1 BTC) cross, tier 1 by contracts, MM
        // 100,000 x 0.5% = 500, IM 100,000 / 50 = 2,000, liquidation where 5,000 + (p - 95,000)
        // = p x (0.005 + 0.0005): 90,000 / 0.9945 = 90,497.738; ETH 200 contracts (20 ETH) short
        // isolated with 400 USDT: value 70,000, MM 70,000 x 0.4% = 280, IM 70,000 / 20 =
        // 3,500, liquidation (400 + 72,000) / (20 x (1 + 0.004 + 0.0005)) = 3,603.78 (fee to
        // close included).
        (
            "okx_swap",
            vec![
                example("okx-swap.json"),
                "--venue".into(),
                venue("okx-swap.toml"),
            ],
        ),
    ]
}

fn margin_args(inputs: &[String], json: bool) -> Vec<String> {
    let mut args = vec!["margin".to_owned()];
    args.extend(inputs.iter().cloned());
    if json {
        args.push("--json".into());
    }
    args
}

// ------------------------------------------------------------------------------------------------
// 1. Golden files
// ------------------------------------------------------------------------------------------------

// Each snapshot was reviewed by hand; the figures are re-derived in section 4 and checked
// against the invariants in section 3. The btc-desk figures were checked term by term:
// collateral 250,000 + 234,649.275 (2.5 x 93,859.71) + 128,999.6 (40 x 3,224.99) + 60,000
// = 673,648.875; cross upnl 17,346.24 + 3,775.5 + 1,675.293242 + 9,358.695 = 32,155.728242;
// option marks (Black-76, rounded down to the settlement precision): call 0.02890028 BTC
// (exact 0.0289002808362306), put 6,025.319505 USDC (exact 6,025.3195053460); option value
// -12 x 0.02890028 x 93,859.71 = -32,550.862797 plus 6 x 6,025.319505 = 36,151.91703, net
// 3,601.054233; equity = the sum 709,405.657475;
// IM 15,019.392 + 14,517.45 + 2,407.136142 + 8,542.406857 + 145,182.514797 (12 x (0.1 + 0.02890028)
// = 1.54680336 BTC) + 0 = 185,668.899796;
// MM 1,501.9392 + 1,451.745 + 1,207.401884 + 4,318.719907 + 117,024.601797 = 125,504.407788;
// health 709,405.657475 / 125,504.407788 = 5.6524 (healthy); withdrawable = min(cash-like
// USDT 250,000 + USDC 60,000, available 523,736.755797) = 310,000. The isolated SOL position
// (800 x 137.9 = 110,320; IM 4.4% = 4,854.08; MM 2.4% = 2,647.68; equity 12,000 + 800 x 6.5
// = 17,200; health 6.4963; liq 137.9 - 14,552.32 / 800 / 0.976 = 119.2623) stays out of the
// cross totals.

#[test]
fn golden_margin_reports_json() {
    for (name, inputs) in examples() {
        let text = ok(&margin_args(&inputs, true));
        insta::assert_snapshot!(format!("margin_{name}_json"), text);
    }
}

#[test]
fn golden_margin_reports_table() {
    for (name, inputs) in examples() {
        let text = ok(&margin_args(&inputs, false));
        insta::assert_snapshot!(format!("margin_{name}_table"), text);
    }
}

#[test]
fn market_file_gives_the_same_report_as_the_embedded_market() {
    let embedded = ok(&["margin", &example("btc-desk.json"), "--json"]);
    let from_file = ok(&[
        "margin",
        &example("btc-desk.json"),
        "--market",
        &example("market-2026-01-06.json"),
        "--json",
    ]);
    assert_eq!(embedded, from_file);
}

/// The what-if cases: name, portfolio, trades.
fn whatif_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        // Buy 0.5 BTCUSDT below the mark and buy back 5 of the 45 ETHUSDT short: accepted.
        (
            "btc_desk_accepted",
            example("btc-desk.json"),
            vec!["BTCUSDT:0.5@93000", "ETHUSDT:5"],
        ),
        // 200 BTC_USDC more: IM 757,274.53 > equity 709,405.66: refused.
        (
            "btc_desk_refused",
            example("btc-desk.json"),
            vec!["BTC_USDC-PERPETUAL:200"],
        ),
        // Adding risk to a reduce_only account: refused whatever the margin.
        (
            "reduce_only_refused",
            example("reduce-only.json"),
            vec!["BTC_USDC-PERPETUAL:1"],
        ),
        // Cutting a margin_call account's position: accepted, realised P&L credited.
        (
            "margin_call_reduce_accepted",
            example("margin-call.json"),
            vec!["BTC_USDC-PERPETUAL:-10@100500"],
        ),
    ]
}

fn whatif_args(portfolio: &str, trades: &[&str], json: bool) -> Vec<String> {
    let mut args = vec!["whatif".to_owned(), portfolio.to_owned()];
    for trade in trades {
        args.push("--trade".into());
        args.push((*trade).to_owned());
    }
    if json {
        args.push("--json".into());
    }
    args
}

/// A `whatif` run: its exit code (0 accepted, 1 refused; only warnings on stderr) and its output.
fn whatif_run<S: AsRef<str> + std::fmt::Debug>(args: &[S]) -> (i32, String) {
    let output = solvent(args);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "solvent {args:?} failed ({code}): {}",
        stderr(&output)
    );
    only_warnings(&output);
    (code, stdout(&output))
}

#[test]
fn golden_whatif_table() {
    for (name, portfolio, trades) in whatif_cases() {
        let (_, text) = whatif_run(&whatif_args(&portfolio, &trades, false));
        insta::assert_snapshot!(format!("whatif_{name}_table"), text);
    }
}

#[test]
fn golden_whatif_json() {
    for (name, portfolio, trades) in whatif_cases() {
        let (_, text) = whatif_run(&whatif_args(&portfolio, &trades, true));
        insta::assert_snapshot!(format!("whatif_{name}_json"), text);
    }
}

#[test]
fn whatif_verdicts() {
    let expected = [
        ("btc_desk_accepted", true, "accepted: equity"),
        ("btc_desk_refused", false, "refused: initial margin"),
        ("reduce_only_refused", false, "may only reduce risk"),
        ("margin_call_reduce_accepted", true, "only reduce positions"),
    ];
    for ((name, portfolio, trades), (expected_name, accepted, reason)) in
        whatif_cases().into_iter().zip(expected)
    {
        assert_eq!(name, expected_name);
        let (code, text) = whatif_run(&whatif_args(&portfolio, &trades, true));
        // Refused trades exit 1 (a script can branch on the verdict); errors exit 2.
        assert_eq!(code, if accepted { 0 } else { 1 }, "{name}");
        let outcome: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            outcome["accepted"], accepted,
            "{name}: {}",
            outcome["reason"]
        );
        let text = outcome["reason"].as_str().expect("reason is a string");
        assert!(
            text.contains(reason),
            "{name}: reason {text:?} lacks {reason:?}"
        );
        check_report(&format!("{name}.before"), &outcome["before"]);
        check_report(&format!("{name}.after"), &outcome["after"]);
    }
}

// ------------------------------------------------------------------------------------------------
// 2. Bad input: exit code 2, nothing on stdout, stderr names the file, the field and the problem
// ------------------------------------------------------------------------------------------------

const MARKET: &str = r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","USDT":"1"}}"#;

fn one_position(instrument: &str, size: &str, entry: &str) -> String {
    format!(
        r#"{{"account":"t","mode":"cross","collateral":{{"USDT":"10000"}},"positions":[{{"instrument":"{instrument}","size":{size},"entry_price":{entry}}}]}}"#
    )
}

/// A bad-input case: the files to write, the arguments (`{dir}` is the scratch directory), and
/// the fragments stderr must contain (file, field path, problem).
struct BadCase {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    args: Vec<String>,
    expect: Vec<&'static str>,
}

fn case(
    name: &'static str,
    files: Vec<(&'static str, String)>,
    args: &[&str],
    expect: &[&'static str],
) -> BadCase {
    BadCase {
        name,
        files,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        expect: expect.to_vec(),
    }
}

/// The default venue with one textual change (the change must apply).
fn default_venue_with(from: &str, to: &str) -> String {
    let text =
        fs::read_to_string(root().join("venues/default.toml")).expect("read venues/default.toml");
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in venues/default.toml"
    );
    text.replacen(from, to, 1)
}

fn bad_cases() -> Vec<BadCase> {
    let good = one_position("BTCUSDT", r#""1""#, r#""90000""#);
    vec![
        case(
            "NaN price",
            vec![("nan.json", one_position("BTCUSDT", r#""1""#, r#""NaN""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/nan.json", "--market", "{dir}/m.json"],
            &["nan.json", "positions[0].entry_price", "expected a decimal number", "\"NaN\""],
        ),
        case(
            "inf price",
            vec![("inf.json", one_position("BTCUSDT", r#""1""#, r#""inf""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/inf.json", "--market", "{dir}/m.json"],
            &["inf.json", "positions[0].entry_price", "expected a decimal number", "\"inf\""],
        ),
        case(
            "negative price",
            vec![("neg.json", one_position("BTCUSDT", r#""1""#, r#""-5""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/neg.json", "--market", "{dir}/m.json"],
            &["neg.json", "positions[0].entry_price", "greater than zero", "-5"],
        ),
        case(
            "zero price",
            vec![("zero.json", one_position("BTCUSDT", r#""1""#, r#""0""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/zero.json", "--market", "{dir}/m.json"],
            &["zero.json", "positions[0].entry_price", "greater than zero"],
        ),
        case(
            "NaN index in a market file",
            vec![
                ("p.json", good.clone()),
                ("mnan.json", r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"NaN"}}"#.into()),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/mnan.json"],
            &["mnan.json", "index.BTC", "expected a decimal number", "\"NaN\""],
        ),
        case(
            "inf mark in a market file",
            vec![
                ("p.json", good.clone()),
                (
                    "minf.json",
                    r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000"},"mark":{"BTCUSDT":"inf"}}"#.into(),
                ),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/minf.json"],
            &["minf.json", "mark.BTCUSDT", "expected a decimal number", "\"inf\""],
        ),
        case(
            "negative index in a market file",
            vec![
                ("p.json", good.clone()),
                ("mneg.json", r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"-100000"}}"#.into()),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/mneg.json"],
            &["mneg.json", "index.BTC", "greater than zero"],
        ),
        case(
            "zero mark in a market file",
            vec![
                ("p.json", good.clone()),
                (
                    "mzero.json",
                    r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000"},"mark":{"BTCUSDT":"0"}}"#.into(),
                ),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/mzero.json"],
            &["mzero.json", "mark.BTCUSDT", "greater than zero"],
        ),
        case(
            "NaN index in an embedded market",
            vec![(
                "emb.json",
                r#"{"account":"t","mode":"cross","collateral":{"USDT":"1"},"positions":[],"market":{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"NaN"}}}"#.into(),
            )],
            &["margin", "{dir}/emb.json"],
            &["emb.json", "market.index.BTC", "expected a decimal number"],
        ),
        case(
            "JSON float size",
            vec![("float.json", one_position("BTCUSDT", "1.5", r#""90000""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/float.json", "--market", "{dir}/m.json"],
            &["float.json", "positions[0].size", "write decimals as strings"],
        ),
        case(
            "JSON float index",
            vec![
                ("p.json", good.clone()),
                ("mfloat.json", r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":100000.5}}"#.into()),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/mfloat.json"],
            &["mfloat.json", "index.BTC", "write decimals as strings"],
        ),
        case(
            "JSON float collateral",
            vec![
                (
                    "cfloat.json",
                    r#"{"account":"t","mode":"cross","collateral":{"USDT":100.25},"positions":[]}"#.into(),
                ),
                ("m.json", MARKET.into()),
            ],
            &["margin", "{dir}/cfloat.json", "--market", "{dir}/m.json"],
            &["cfloat.json", "collateral.USDT", "write decimals as strings"],
        ),
        case(
            "unknown instrument",
            vec![("unk.json", one_position("FOOUSDT", r#""1""#, r#""90000""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/unk.json", "--market", "{dir}/m.json"],
            &["unk.json", "positions[0].instrument", "unknown instrument", "FOOUSDT"],
        ),
        case(
            "unknown field in the portfolio",
            vec![
                (
                    "ufp.json",
                    r#"{"account":"t","mode":"cross","collateral":{"USDT":"1"},"positions":[{"instrument":"BTCUSDT","size":"1","entry_price":"1","side":"buy"}]}"#.into(),
                ),
                ("m.json", MARKET.into()),
            ],
            &["margin", "{dir}/ufp.json", "--market", "{dir}/m.json"],
            &["ufp.json", "positions[0].side", "unknown field `side`"],
        ),
        case(
            "unknown top-level field in the portfolio",
            vec![
                ("uft.json", r#"{"account":"t","mode":"cross","colour":"red"}"#.into()),
                ("m.json", MARKET.into()),
            ],
            &["margin", "{dir}/uft.json", "--market", "{dir}/m.json"],
            &["uft.json", "colour", "unknown field `colour`"],
        ),
        case(
            "unknown field in the market",
            vec![
                ("p.json", good.clone()),
                ("ufm.json", r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"1"},"marks":{}}"#.into()),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/ufm.json"],
            &["ufm.json", "marks", "unknown field `marks`"],
        ),
        case(
            "unknown field in the venue",
            vec![
                ("p.json", good.clone()),
                ("m.json", MARKET.into()),
                (
                    "ufv.toml",
                    default_venue_with("[assets.BTC]\nprecision = 8", "[assets.BTC]\nfoo = 1\nprecision = 8"),
                ),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/m.json", "--venue", "{dir}/ufv.toml"],
            &["ufv.toml", "assets.BTC.foo", "unknown field `foo`"],
        ),
        case(
            "size with more decimals than the size step",
            vec![("step.json", one_position("BTCUSDT", r#""1.0005""#, r#""90000""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/step.json", "--market", "{dir}/m.json"],
            &["step.json", "positions[0].size", "more decimals", "0.001"],
        ),
        case(
            "inverse size not a multiple of the contract size",
            vec![("inv.json", one_position("BTC-PERPETUAL", r#""105""#, r#""90000""#)), ("m.json", MARKET.into())],
            &["margin", "{dir}/inv.json", "--market", "{dir}/m.json"],
            &["inv.json", "positions[0].size", "not a multiple", "10"],
        ),
        case(
            "empty file",
            vec![("empty.json", String::new()), ("m.json", MARKET.into())],
            &["margin", "{dir}/empty.json", "--market", "{dir}/m.json"],
            &["empty.json", "the file is empty"],
        ),
        case(
            "empty market file",
            vec![("p.json", good.clone()), ("mempty.json", "  \n".into())],
            &["margin", "{dir}/p.json", "--market", "{dir}/mempty.json"],
            &["mempty.json", "the file is empty"],
        ),
        case(
            "missing file",
            vec![("m.json", MARKET.into())],
            &["margin", "{dir}/missing.json", "--market", "{dir}/m.json"],
            &["missing.json", "cannot read"],
        ),
        case(
            "missing venue file",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["margin", "{dir}/p.json", "--market", "{dir}/m.json", "--venue", "{dir}/nowhere.toml"],
            &["nowhere.toml", "cannot read"],
        ),
        case(
            "malformed JSON",
            vec![("bad.json", "{\"account\": \"t\",\n".into()), ("m.json", MARKET.into())],
            &["margin", "{dir}/bad.json", "--market", "{dir}/m.json"],
            &["bad.json", "line 2", "EOF while parsing"],
        ),
        case(
            "no market at all",
            vec![("nomkt.json", good.clone())],
            &["margin", "{dir}/nomkt.json"],
            &["nomkt.json", "market", "missing", "--market"],
        ),
        case(
            "venue TOML with a float",
            vec![
                ("p.json", good.clone()),
                ("m.json", MARKET.into()),
                (
                    "vfloat.toml",
                    default_venue_with("rate_per_unit = \"0.000005\"", "rate_per_unit = 0.000005"),
                ),
            ],
            &["margin", "{dir}/p.json", "--market", "{dir}/m.json", "--venue", "{dir}/vfloat.toml"],
            &["vfloat.toml", "margin_rules.deribit_sol_usdc_linear.rate_per_unit", "write decimals as strings"],
        ),
        case(
            "bad --trade: no size",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "BTCUSDT"],
            &["--trade \"BTCUSDT\"", "expected INSTRUMENT:SIZE[@PRICE]"],
        ),
        case(
            "bad --trade: size not a number",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "BTCUSDT:abc"],
            &["--trade \"BTCUSDT:abc\"", "size", "expected a decimal number"],
        ),
        case(
            "bad --trade: NaN price",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "BTCUSDT:1@NaN"],
            &["--trade \"BTCUSDT:1@NaN\"", "price", "expected a decimal number"],
        ),
        case(
            "bad --trade: negative price",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "BTCUSDT:1@-5"],
            &["--trade \"BTCUSDT:1@-5\"", "price", "greater than zero"],
        ),
        case(
            "bad --trade: zero size",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "BTCUSDT:0"],
            &["--trade \"BTCUSDT:0\"", "size", "must not be zero"],
        ),
        case(
            "bad --trade: no instrument",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", ":1"],
            &["--trade \":1\"", "instrument is missing"],
        ),
        case(
            "bad --trade: unknown instrument",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "FOO:1"],
            &["--trade \"FOO:1\"", "unknown instrument", "FOO"],
        ),
        case(
            "bad --trade: size finer than the step",
            vec![("p.json", good.clone()), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "BTCUSDT:0.0001"],
            &["--trade \"BTCUSDT:0.0001\"", "more decimals", "0.001"],
        ),
        case(
            "bad --trade: inverse size not a multiple",
            vec![("p.json", good), ("m.json", MARKET.into())],
            &["whatif", "{dir}/p.json", "--market", "{dir}/m.json", "--trade", "BTC-PERPETUAL:15"],
            &["--trade \"BTC-PERPETUAL:15\"", "not a multiple"],
        ),
    ]
}

fn run_bad_case(bad: &BadCase) {
    let scratch = Scratch::new("bad");
    for (name, text) in &bad.files {
        scratch.write(name, text);
    }
    let dir = scratch.dir().display().to_string();
    let args: Vec<String> = bad.args.iter().map(|a| a.replace("{dir}", &dir)).collect();
    let output = solvent(&args);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}: exit code; stderr: {err}",
        bad.name
    );
    assert!(
        output.stdout.is_empty(),
        "{}: stdout must be empty, found {}",
        bad.name,
        stdout(&output)
    );
    assert!(err.starts_with("error: "), "{}: stderr {err:?}", bad.name);
    assert!(!err.contains("panicked"), "{}: panic: {err}", bad.name);
    assert_eq!(
        err.lines().count(),
        1,
        "{}: one line of error, found {err:?}",
        bad.name
    );
    for fragment in &bad.expect {
        assert!(
            err.contains(fragment),
            "{}: stderr {err:?} lacks {fragment:?}",
            bad.name
        );
    }
}

#[test]
fn bad_input_is_refused_with_exit_2_naming_file_field_and_problem() {
    for bad in bad_cases() {
        run_bad_case(&bad);
    }
}

/// The same trade refused the same way whether given alone or after a valid one: nothing is
/// printed for the valid one either.
#[test]
fn one_bad_trade_refuses_the_whole_whatif() {
    let output = solvent(&[
        "whatif",
        &example("btc-desk.json"),
        "--trade",
        "BTCUSDT:0.5",
        "--trade",
        "BTCUSDT:x",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("--trade \"BTCUSDT:x\""));
}

#[test]
fn bug_missing_index_error_names_the_market_file() {
    // Repro: solvent margin p.json --market m.json, where m.json has no BTC index and p.json holds
    // BTCUSDT. stderr: `error: market.index.BTC: missing (needed for the mark of BTCUSDT)` - no file,
    // and a path that does not exist in a stand-alone market file.
    run_bad_case(&case(
        "missing index",
        vec![
            ("p.json", one_position("BTCUSDT", r#""1""#, r#""90000""#)),
            (
                "mnobtc.json",
                r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"ETH":"3000"}}"#.into(),
            ),
        ],
        &["margin", "{dir}/p.json", "--market", "{dir}/mnobtc.json"],
        &["mnobtc.json", "index.BTC", "missing"],
    ));
}

#[test]
fn bug_huge_size_panics() {
    // Repro: positions[0].size = "79228162514264337593543950335" (Decimal::MAX) on BTCUSDT ->
    // `thread 'main' panicked at rust_decimal ... Multiplication overflowed`
    // (solvent_risk::standard::notional), exit 101. DESIGN.md 3: never panic on input.
    run_bad_case(&case(
        "huge size",
        vec![
            (
                "huge.json",
                one_position(
                    "BTCUSDT",
                    r#""79228162514264337593543950335""#,
                    r#""90000""#,
                ),
            ),
            ("m.json", MARKET.into()),
        ],
        &["margin", "{dir}/huge.json", "--market", "{dir}/m.json"],
        &["huge.json", "positions[0]"],
    ));
}

#[test]
fn bug_duplicate_collateral_key_is_silently_overwritten() {
    // Repro: {"collateral":{"USDT":"10000","USDT":"5"}} -> report with collateral 5, exit 0.
    // A repeated struct field (`positions` twice) is refused ("duplicate field"), a repeated map
    // key is not: 9,995 USDT vanish without a word.
    run_bad_case(&case(
        "duplicate collateral key",
        vec![
            (
                "dup.json",
                r#"{"account":"t","mode":"cross","collateral":{"USDT":"10000","USDT":"5"},"positions":[]}"#.into(),
            ),
            ("m.json", MARKET.into()),
        ],
        &["margin", "{dir}/dup.json", "--market", "{dir}/m.json"],
        &["dup.json", "collateral", "USDT"],
    ));
}

#[test]
fn bug_expired_option_is_still_margined() {
    // Repro: examples/market-2026-01-06.json (timestamp 2026-01-06) and a portfolio short 1
    // BTC-27DEC25-110000-C (expired 2025-12-27 08:00). Output: mark_price "0" (a Price must be
    // > 0), mark_source model with volatility 0, IM 9,385.971 = 0.1 x 93,859.71, MM 7,039.47825,
    // and the account shown in margin_call (health 1.42) because of a contract that no longer
    // exists. Either refuse the position (expired) or settle it; never charge margin on it.
    let scratch = Scratch::new("expired");
    let portfolio = scratch.write(
        "expired.json",
        &one_position("BTC-27DEC25-110000-C", r#""-1""#, r#""0.01""#),
    );
    let output = solvent(&[
        "margin",
        &portfolio,
        "--market",
        &example("market-2026-01-06.json"),
        "--json",
    ]);
    if output.status.code() == Some(2) {
        let err = stderr(&output);
        assert!(
            err.contains("positions[0]") && err.contains("expired"),
            "{err}"
        );
    } else {
        let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
        assert_eq!(
            money(&report, "initial_margin"),
            Decimal::ZERO,
            "an expired option needs no margin"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// 3. The JSON contract (DESIGN.md 11) and the report's invariants
// ------------------------------------------------------------------------------------------------

const MONEY_KEYS: [&str; 6] = [
    "equity",
    "collateral_value",
    "initial_margin",
    "maintenance_margin",
    "available",
    "withdrawable",
];
const POSITION_MONEY_KEYS: [&str; 6] = [
    "size",
    "mark_price",
    "value",
    "upnl",
    "initial_margin",
    "maintenance_margin",
];

/// Checks the shape of DESIGN.md 11 and the invariants every report must satisfy (an auditor).
fn check_report(label: &str, report: &Value) {
    for key in ["account", "settlement_asset", "state"] {
        assert!(
            report[key].is_string(),
            "{label}: {key} must be a string, found {}",
            report[key]
        );
    }
    for key in MONEY_KEYS {
        let _ = money(report, key);
    }
    // health: a number, or null when nothing requires margin.
    assert!(report.get("health").is_some(), "{label}: health missing");
    let health = ratio(report, "health");
    let components = report["components"]
        .as_array()
        .expect("components is an array");
    let positions = report["positions"]
        .as_array()
        .expect("positions is an array");

    let equity = money(report, "equity");
    let collateral = money(report, "collateral_value");
    let upnl = money(report, "unrealized_pnl");
    let options = money(report, "option_value");
    let initial = money(report, "initial_margin");
    let maintenance = money(report, "maintenance_margin");
    let available = money(report, "available");
    let withdrawable = money(report, "withdrawable");

    // equity = collateral value + upnl + option value (DESIGN.md 6.6).
    assert_eq!(equity, collateral + upnl + options, "{label}: equity");
    assert_eq!(
        available,
        equity - initial,
        "{label}: available = equity - IM"
    );
    assert!(
        initial >= maintenance,
        "{label}: IM {initial} < MM {maintenance}"
    );
    assert!(withdrawable >= Decimal::ZERO, "{label}: withdrawable < 0");
    assert!(
        withdrawable <= available.max(Decimal::ZERO),
        "{label}: withdrawable {withdrawable} > available {available}"
    );
    // Segregated portfolio margin: each currency's equity covers only its own requirement, so
    // the account stands at the lowest of its own and its currencies' health (each currency's
    // figures hold to the same rules, in its coin).
    let currencies = report["currencies"].as_array().cloned().unwrap_or_default();
    let mut standings = vec![(equity, maintenance)];
    for currency in &currencies {
        let coin = currency["currency"].as_str().unwrap_or_default();
        let (equity, initial) = (money(currency, "equity"), money(currency, "initial_margin"));
        assert_eq!(
            money(currency, "available"),
            equity - initial,
            "{label} {coin}: available = equity - IM"
        );
        assert!(
            initial >= money(currency, "maintenance_margin"),
            "{label} {coin}: IM < MM"
        );
        standings.push((equity, money(currency, "maintenance_margin")));
    }
    let weakest = standings
        .iter()
        .filter(|(_, maintenance)| !maintenance.is_zero())
        .min_by(|a, b| (a.0 / a.1).cmp(&(b.0 / b.1)))
        .copied();
    match health {
        Some(health) => {
            let (equity, maintenance) = weakest.expect("a requirement behind the health");
            let exact = (equity / maintenance).to_f64().expect("finite");
            close(
                health,
                exact,
                1e-9 * exact.abs().max(1.0),
                &format!("{label}: health = equity / MM"),
            );
        }
        None => assert!(
            maintenance.is_zero(),
            "{label}: health null with MM {maintenance}"
        ),
    }
    let (state_equity, state_maintenance) = weakest.unwrap_or((equity, maintenance));
    assert_eq!(
        report["state"],
        expected_state(state_equity, state_maintenance),
        "{label}: state for health {health:?}"
    );

    // The waterfall adds up to the totals, to the last unit; a portfolio-margin explanation
    // (`portfolio...` components) decomposes the scanned maintenance margin a second time.
    let mut sums = [Decimal::ZERO; 5];
    let mut explained = Decimal::ZERO;
    let mut borrow_maintenance = Decimal::ZERO;
    for entry in components {
        for key in ["name", "detail"] {
            assert!(
                entry[key].is_string(),
                "{label}: component {key} must be a string"
            );
        }
        let name = entry["name"].as_str().unwrap_or_default();
        let amount = money(entry, "amount");
        if name.starts_with("portfolio") {
            explained += amount;
            continue;
        }
        if name.starts_with("borrow_maintenance_margin:") {
            borrow_maintenance += amount;
        }
        let slot = match name.split_once(':').map(|(kind, _)| kind) {
            Some("collateral") => 0,
            Some("upnl") => 1,
            Some("option_value") => 2,
            Some("initial_margin" | "borrow_initial_margin") => 3,
            Some("maintenance_margin" | "borrow_maintenance_margin") => 4,
            _ => panic!("{label}: unexpected component {name}"),
        };
        sums[slot] += amount;
    }
    assert_eq!(
        sums,
        [collateral, upnl, options, initial, maintenance],
        "{label}: components sum to the totals"
    );
    if !explained.is_zero() {
        assert_eq!(
            explained,
            maintenance - borrow_maintenance,
            "{label}: the portfolio explanation sums to the scanned maintenance margin"
        );
    }

    // Per position.
    let mut cross_share = 0.0;
    let mut cross_initial = Decimal::ZERO;
    for entry in positions {
        let name = entry["instrument"]
            .as_str()
            .expect("instrument is a string");
        for key in POSITION_MONEY_KEYS {
            let _ = money(entry, key);
        }
        let share = ratio(entry, "im_share").expect("im_share is a number");
        let isolated = entry["isolated"].as_bool().expect("isolated is a bool");
        let liquidation = &entry["liquidation_price"];
        assert!(
            liquidation.is_null() || liquidation.is_string(),
            "{label}: {name} liquidation_price"
        );
        if liquidation.is_string() {
            assert!(money(entry, "liquidation_price") > Decimal::ZERO);
        }
        let position_initial = money(entry, "initial_margin");
        assert!(
            position_initial >= money(entry, "maintenance_margin"),
            "{label}: {name} IM < MM"
        );
        if isolated {
            close(
                share,
                1.0,
                0.0,
                &format!("{label}: {name} isolated im_share"),
            );
        } else {
            cross_share += share;
            cross_initial += position_initial;
        }
    }
    // Attribution: the cross positions' shares are their part of the cross IM (borrow IM is the
    // rest).
    if !initial.is_zero() {
        let expected = (cross_initial / initial).to_f64().expect("finite");
        close(
            cross_share,
            expected,
            1e-9,
            &format!("{label}: im_share sum"),
        );
    }
}

#[test]
fn json_reports_have_the_documented_keys_and_invariants() {
    for (name, inputs) in examples() {
        let report = ok_json(&margin_args(&inputs, true));
        check_report(name, &report);
    }
}

#[test]
fn json_report_key_list_of_design_11() {
    let report = ok_json(&["margin", &example("btc-desk.json"), "--json"]);
    for key in [
        "account",
        "settlement_asset",
        "equity",
        "collateral_value",
        "initial_margin",
        "maintenance_margin",
        "available",
        "withdrawable",
        "health",
        "state",
        "components",
        "positions",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    for entry in report["components"].as_array().expect("array") {
        for key in ["name", "amount", "detail"] {
            assert!(entry.get(key).is_some(), "component missing {key}");
        }
    }
    let positions = report["positions"].as_array().expect("array");
    assert_eq!(positions.len(), 7);
    for entry in positions {
        for key in [
            "instrument",
            "size",
            "mark_price",
            "value",
            "upnl",
            "initial_margin",
            "maintenance_margin",
            "im_share",
            "liquidation_price",
            "isolated",
        ] {
            assert!(entry.get(key).is_some(), "position missing {key}");
        }
        assert!(entry["im_share"].is_number());
        assert!(entry["isolated"].is_boolean());
    }
    assert!(report["health"].is_number());
    assert_eq!(report["account"], "desk-1");
    assert_eq!(report["settlement_asset"], "USDT");
    assert_eq!(report["state"], "healthy");
}

#[test]
fn whatif_json_has_before_after_and_verdict() {
    let outcome = ok_json(&[
        "whatif",
        &example("btc-desk.json"),
        "--trade",
        "BTCUSDT:0.5",
        "--json",
    ]);
    assert!(outcome["accepted"].is_boolean());
    assert!(outcome["reason"].is_string());
    check_report("before", &outcome["before"]);
    check_report("after", &outcome["after"]);
    // The before report is the margin report (which also carries the liquidating moves).
    let mut report = ok_json(&["margin", &example("btc-desk.json"), "--json"]);
    let moves = report
        .as_object_mut()
        .and_then(|fields| fields.remove("liquidation_moves"));
    assert!(moves.is_some_and(|moves| moves.is_array()));
    assert_eq!(outcome["before"], report);
}

#[test]
fn reports_are_deterministic() {
    let first = ok(&["margin", &example("btc-desk.json"), "--json"]);
    let second = ok(&["margin", &example("btc-desk.json"), "--json"]);
    assert_eq!(first, second);
}

// ------------------------------------------------------------------------------------------------
// 4. Hand-worked cases
// ------------------------------------------------------------------------------------------------

#[test]
fn deribit_linear_perpetual_published_example() {
    // examples/deribit-usdc-perp-25btc.json: 25 BTC_USDC-PERPETUAL at mark = index 100,000,
    // entry 100,000, 100,000 USDC, report in USDC. docs/published-examples.md 2.1.
    let report = ok_json(&["margin", &example("deribit-usdc-perp-25btc.json"), "--json"]);
    let perp = position(&report, "BTC_USDC-PERPETUAL");
    // value = 25 x 100,000
    assert_eq!(money(perp, "value"), dec!(2_500_000));
    // IM = 2,500,000 x (0.02 + 25 x 0.00005 = 0.02125) = 53,125 (published)
    assert_eq!(money(&report, "initial_margin"), dec!(53_125));
    // MM = 2,500,000 x (0.01 + 25 x 0.00005 = 0.01125) = 28,125 (published)
    assert_eq!(money(&report, "maintenance_margin"), dec!(28_125));
    // equity = 100,000 USDC + upnl 25 x (100,000 - 100,000) = 100,000
    assert_eq!(money(&report, "equity"), dec!(100_000));
    // available = 100,000 - 53,125; withdrawable = min(cash-like 100,000, available)
    assert_eq!(money(&report, "available"), dec!(46_875));
    assert_eq!(money(&report, "withdrawable"), dec!(46_875));
    // health = equity / MM = 100,000 / 28,125 = 3.5556 -> healthy (> 1.5)
    close(
        ratio(&report, "health").expect("health"),
        100_000.0 / 28_125.0,
        1e-12,
        "health",
    );
    assert_eq!(report["state"], "healthy");
    // Liquidation (cross, all else fixed): 100,000 + 25 (p - 100,000) = 0.01125 x 25 p
    // -> p = 2,400,000 / 24.71875 = 97,092.2882...; shown rounded against the trader (up for a long).
    let liquidation = money(perp, "liquidation_price");
    let exact = dec!(2_400_000) / dec!(24.71875);
    assert!(
        liquidation >= exact && liquidation - exact < dec!(0.001),
        "liq {liquidation} vs {exact}"
    );
    close(
        ratio(perp, "distance_to_liquidation_pct").expect("distance"),
        (100_000.0 - 97_092.288_242_730_72) / 100_000.0 * 100.0,
        1e-3,
        "distance %",
    );
}

#[test]
fn binance_collateral_tiers_published_example() {
    // examples/binance-6000-btc.json: 6,000 BTC at 20,000 = 120,000,000 USD.
    // Tier 1: 100,000,000 x 100%; tier 2: 20,000,000 x 97.5% = 19,500,000; total 119,500,000.
    let report = ok_json(&["margin", &example("binance-6000-btc.json"), "--json"]);
    assert_eq!(money(&report, "collateral_value"), dec!(119_500_000));
    assert_eq!(
        component(&report, "collateral:BTC"),
        dec!(100_000_000) + dec!(20_000_000) * dec!(0.975)
    );
    assert_eq!(money(&report, "equity"), dec!(119_500_000));
    assert_eq!(money(&report, "initial_margin"), Decimal::ZERO);
    assert_eq!(money(&report, "maintenance_margin"), Decimal::ZERO);
    // Nothing requires margin: health null, state healthy. BTC is not cash-like: withdrawable 0.
    assert!(report["health"].is_null());
    assert_eq!(report["state"], "healthy");
    assert_eq!(money(&report, "withdrawable"), Decimal::ZERO);
}

/// Regression: the Deribit profile's header read "portfolio margin on Deribit (standard
/// margin)", the venue's name carrying a model it did not compute; the header now names the
/// account's margin model and the venue apart.
#[test]
fn the_margin_header_names_the_margin_model() {
    let deribit = venue("deribit.toml");
    let header = |args: &[&str]| ok(args).lines().next().unwrap_or_default().to_owned();
    let cross = header(&[
        "margin",
        &example("deribit-btc-inverse.json"),
        "--venue",
        &deribit,
    ]);
    assert!(
        cross == "Account deribit-btc-1 - cross margin on Deribit",
        "{cross}"
    );
    let segregated = header(&["margin", &example("deribit-spm.json"), "--venue", &deribit]);
    assert!(
        segregated
            == "Account deribit-spm-1 - segregated portfolio margin (S:PM, each settlement currency apart) on Deribit",
        "{segregated}"
    );
    // The same account at a cross-collateral venue.
    let cross_collateral = header(&["margin", &example("deribit-spm.json")]);
    assert!(
        cross_collateral.contains("- cross-collateral portfolio margin (X:PM) on "),
        "{cross_collateral}"
    );
}

#[test]
fn deribit_inverse_account_reported_in_btc() {
    // examples/deribit-btc-inverse.json, report in BTC, index = mark = 100,000.
    let report = ok_json(&["margin", &example("deribit-btc-inverse.json"), "--json"]);
    assert_eq!(report["settlement_asset"], "BTC");
    // Collateral 2 BTC.
    assert_eq!(money(&report, "collateral_value"), dec!(2));
    // upnl = 2,500,000 x (1/95,000 - 1/100,000) = 1.315789473684... -> 1.31578947 (credit, down)
    assert_eq!(money(&report, "unrealized_pnl"), dec!(1.31578947));
    // short 1 call at 0.01 BTC: option value -0.01
    assert_eq!(money(&report, "option_value"), dec!(-0.01));
    // equity = 2 + 1.31578947 - 0.01
    assert_eq!(money(&report, "equity"), dec!(3.30578947));
    let perp = position(&report, "BTC-PERPETUAL");
    // size in coin 2,500,000 / 100,000 = 25 BTC; IM 25 x 0.02125 = 0.53125 (published 2.2)
    assert_eq!(money(perp, "value"), dec!(25));
    assert_eq!(money(perp, "initial_margin"), dec!(0.53125));
    // MM 25 x 0.01125 = 0.28125
    assert_eq!(money(perp, "maintenance_margin"), dec!(0.28125));
    let call = position(&report, "BTC-27DEC26-110000-C");
    // OTM = 10,000, OTM/S = 0.1; IM = max(0.15 - 0.1, 0.10) + 0.01 = 0.11 BTC (published 7)
    assert_eq!(money(call, "initial_margin"), dec!(0.11));
    // MM = 0.075 + 0.01 = 0.085
    assert_eq!(money(call, "maintenance_margin"), dec!(0.085));
    // option upnl = -1 x (0.01 - 0.012) = 0.002
    assert_eq!(money(call, "upnl"), dec!(0.002));
    // Account: IM 0.53125 + 0.11, MM 0.28125 + 0.085, health 3.30578947 / 0.36625 = 9.026
    assert_eq!(money(&report, "initial_margin"), dec!(0.64125));
    assert_eq!(money(&report, "maintenance_margin"), dec!(0.36625));
    assert_eq!(money(&report, "available"), dec!(2.66453947));
    close(
        ratio(&report, "health").expect("health"),
        3.305_789_47 / 0.366_25,
        1e-9,
        "health",
    );
    assert_eq!(report["state"], "healthy");
    // Perp liquidation (all else fixed): 2 + 2,500,000 (1/95,000 - 1/p) - 0.01 - 0.085
    // = (2,500,000 / p) x (0.01 + 0.00005 x 2,500,000 / p) -> p = 89,596.6378 (bisection).
    close(
        money(perp, "liquidation_price").to_f64().expect("f64"),
        89_596.637_842,
        0.001,
        "perp liquidation",
    );
    // The call's liquidation level is an index level (its premium repriced from the index,
    // the perpetual and the collateral fixed): 3.31578947 - m = 0.28125 + 0.075 + m needs a
    // premium m = 1.47976973 BTC, beyond the most a call's coin premium can be (1 BTC, the
    // underlying itself): no index level liquidates the account.
    assert_eq!(call["liquidation_price_of"], "index");
    assert!(call["liquidation_price"].is_null(), "{call}");
    assert_eq!(perp["liquidation_price_of"], "mark");
}

#[test]
fn binance_coinm_inverse_account_reported_in_btc() {
    // examples/binance-coinm-btcusd.json on venues/binance-coinm.toml: a 2 BTC COIN-M wallet, long
    // 1,000,000 USD of BTCUSD_PERP (10,000 contracts of 100 USD) from 95,000 at 20x, mark 100,000.
    let report = ok_json(&[
        "margin",
        &example("binance-coinm-btcusd.json"),
        "--venue",
        &venue("binance-coinm.toml"),
        "--json",
    ]);
    assert_eq!(report["settlement_asset"], "BTC");
    // upnl = 1,000,000 x (1/95,000 - 1/100,000) = 0.526315789... -> 0.52631578 (credit, down).
    assert_eq!(money(&report, "equity"), dec!(2.52631578));
    let perp = position(&report, "BTCUSD_PERP");
    // Notional 1,000,000 / 100,000 = 10 BTC: bracket 2 (5-10 BTC, 0.5%, cum 0.005).
    assert_eq!(money(perp, "value"), dec!(10));
    // MM = 10 x 0.5% - 0.005 = 0.045 BTC; IM = 10 / 20 = 0.5 BTC.
    assert_eq!(money(perp, "maintenance_margin"), dec!(0.045));
    assert_eq!(money(perp, "initial_margin"), dec!(0.5));
    // Cross liquidation by Binance's formula, LP = Q (1 + MMR) / (WB + cum + Q / EP), in the
    // bracket the price lands in (bracket 3 at 12.46 BTC: 1%, cum 0.055):
    // 1,010,000 / (2 + 10.526315789... + 0.055) = 80,277.77197, rounded up for a long to the
    // contract's tick (0.1): 80,277.8, the last price before liquidation starts.
    assert_eq!(money(perp, "liquidation_price"), dec!(80277.8));
}

#[test]
fn borrowed_usdt_on_drift() {
    // examples/drift-borrowed-usdt.json with venues/drift.toml (settlement USDC):
    let report = ok_json(&[
        "margin",
        &example("drift-borrowed-usdt.json"),
        "--venue",
        &venue("drift.toml"),
        "--json",
    ]);
    // BTC 0.5 x 100,000 x 0.8 = 40,000
    assert_eq!(component(&report, "collateral:BTC"), dec!(40_000));
    // USDT -20,000 at full value (a loan is not haircut)
    assert_eq!(component(&report, "collateral:USDT"), dec!(-20_000));
    // loan 20,000 x 0.1 initial, x 0.05 maintenance
    assert_eq!(
        component(&report, "borrow_initial_margin:USDT"),
        dec!(2_000)
    );
    assert_eq!(
        component(&report, "borrow_maintenance_margin:USDT"),
        dec!(1_000)
    );
    // collateral value = 40,000 - 20,000 + 5,000 USDC
    assert_eq!(money(&report, "collateral_value"), dec!(25_000));
    // SOL-PERP 100 at 150: upnl 100 x (150 - 140) = 1,000; value 15,000;
    // IM rate max(0.05, 0.8 x 0.05 + 0.00005 x sqrt(100) = 0.0405) = 0.05 -> 750;
    // MM rate max(0.025, 0.02 + 0.0005 = 0.0205) = 0.025 -> 375
    let sol = position(&report, "SOL-PERP");
    assert_eq!(money(sol, "upnl"), dec!(1_000));
    assert_eq!(money(sol, "initial_margin"), dec!(750));
    assert_eq!(money(sol, "maintenance_margin"), dec!(375));
    // equity 26,000; IM 2,000 + 750; MM 1,000 + 375; health 26,000 / 1,375 = 18.909
    assert_eq!(money(&report, "equity"), dec!(26_000));
    assert_eq!(money(&report, "initial_margin"), dec!(2_750));
    assert_eq!(money(&report, "maintenance_margin"), dec!(1_375));
    close(
        ratio(&report, "health").expect("health"),
        26_000.0 / 1_375.0,
        1e-9,
        "health",
    );
    // withdrawable = min(cash-like 5,000 USDC (the negative USDT is not cash), available 23,250)
    assert_eq!(money(&report, "available"), dec!(23_250));
    assert_eq!(money(&report, "withdrawable"), dec!(5_000));
    // SOL share of the cross IM: 750 / 2,750 (the rest is the loan's).
    close(
        ratio(sol, "im_share").expect("share"),
        750.0 / 2_750.0,
        1e-12,
        "im_share",
    );
}

#[test]
fn states_follow_health_thresholds() {
    // 25 BTC_USDC-PERPETUAL at 100,000, entry 100,000: MM 28,125, IM 53,125.
    let cases = [
        // 36,562.5 / 28,125 = 1.3 -> margin_call (1.2 < h <= 1.5)
        (
            "margin-call.json",
            dec!(36_562.5),
            1.3,
            "margin_call",
            dec!(-16_562.5),
        ),
        // 30,937.5 / 28,125 = 1.1 -> reduce_only (1.05 < h <= 1.2)
        (
            "reduce-only.json",
            dec!(30_937.5),
            1.1,
            "reduce_only",
            dec!(-22_187.5),
        ),
        // 100,000 / 28,125 = 3.56 -> healthy
        (
            "deribit-usdc-perp-25btc.json",
            dec!(100_000),
            100_000.0 / 28_125.0,
            "healthy",
            dec!(46_875),
        ),
    ];
    for (file, equity, health, state, available) in cases {
        let report = ok_json(&["margin", &example(file), "--json"]);
        assert_eq!(money(&report, "equity"), equity, "{file}");
        assert_eq!(money(&report, "maintenance_margin"), dec!(28_125), "{file}");
        close(
            ratio(&report, "health").expect("health"),
            health,
            1e-12,
            file,
        );
        assert_eq!(report["state"], state, "{file}");
        assert_eq!(money(&report, "available"), available, "{file}");
        // available < 0 -> nothing to withdraw
        assert_eq!(
            money(&report, "withdrawable"),
            available.max(Decimal::ZERO),
            "{file}"
        );
    }
    // Boundaries, with a temporary portfolio: equity exactly 1.5 x MM = 42,187.5 is margin_call
    // (healthy needs > 1.5); exactly 1.05 x MM = 29,531.25 is liquidating.
    let scratch = Scratch::new("thresholds");
    for (collateral, state) in [
        ("42187.5", "margin_call"),
        ("42187.500001", "healthy"),
        ("29531.25", "liquidating"),
    ] {
        let text = fs::read_to_string(example("margin-call.json"))
            .expect("read")
            .replace("36562.5", collateral);
        let path = scratch.write(&format!("b{collateral}.json"), &text);
        let report = ok_json(&["margin", &path, "--json"]);
        assert_eq!(report["state"], state, "collateral {collateral}");
    }
}

#[test]
fn isolated_position_has_its_own_pool() {
    // examples/isolated-btcusdt.json: 10,000 USDT cross; 1 BTCUSDT isolated with 5,000, leverage 20.
    let report = ok_json(&["margin", &example("isolated-btcusdt.json"), "--json"]);
    // The cross pool holds nothing at risk.
    assert_eq!(money(&report, "equity"), dec!(10_000));
    assert_eq!(money(&report, "initial_margin"), Decimal::ZERO);
    assert!(report["health"].is_null());
    let perp = position(&report, "BTCUSDT");
    assert_eq!(perp["isolated"], true);
    // IM = 100,000 / 20 = 5,000; MM = 100,000 x 0.005 - 0 = 500
    assert_eq!(money(perp, "initial_margin"), dec!(5_000));
    assert_eq!(money(perp, "maintenance_margin"), dec!(500));
    // isolated equity = 5,000 + 0 upnl; health = 5,000 / 500 = 10
    assert_eq!(money(perp, "isolated_equity"), dec!(5_000));
    close(
        ratio(perp, "isolated_health").expect("health"),
        10.0,
        1e-12,
        "isolated health",
    );
    // Hyperliquid form: liq = 100,000 - (5,000 - 500) / 1 / (1 - 0.005) = 95,477.386935
    let liquidation = money(perp, "liquidation_price");
    let exact = dec!(100_000) - dec!(4_500) / dec!(0.995);
    assert!(
        liquidation >= exact && liquidation - exact < dec!(0.001),
        "liq {liquidation} vs {exact}"
    );
}

fn flat_usdc_account(scratch: &Scratch, positions: &str) -> String {
    let text = format!(
        r#"{{"account":"hand","mode":"cross","settlement_asset":"USDC","collateral":{{"USDC":"100000"}},
            "positions":[{positions}],
            "market":{{"timestamp":"2026-01-06T08:00:00Z","index":{{"BTC":"100000","USDC":"1"}}}}}}"#
    );
    scratch.write("account.json", &text)
}

#[test]
fn whatif_opens_a_position() {
    let scratch = Scratch::new("open");
    let account = flat_usdc_account(&scratch, "");
    // Buy 25 BTC_USDC-PERPETUAL at the mark (100,000).
    let outcome = ok_json(&[
        "whatif",
        &account,
        "--trade",
        "BTC_USDC-PERPETUAL:25",
        "--json",
    ]);
    let (before, after) = (&outcome["before"], &outcome["after"]);
    assert_eq!(money(before, "initial_margin"), Decimal::ZERO);
    // A trade at the mark moves no equity: 100,000.
    assert_eq!(money(after, "equity"), dec!(100_000));
    // IM 2,500,000 x 0.02125 = 53,125; MM 2,500,000 x 0.01125 = 28,125
    assert_eq!(money(after, "initial_margin"), dec!(53_125));
    assert_eq!(money(after, "maintenance_margin"), dec!(28_125));
    // available 100,000 - 53,125 = 46,875 >= 0: accepted
    assert_eq!(money(after, "available"), dec!(46_875));
    assert_eq!(outcome["accepted"], true);
    assert_eq!(position(after, "BTC_USDC-PERPETUAL")["size"], "25");

    // Buying below the mark: entry 99,000, upnl 25 x (100,000 - 99,000) = 25,000 at once.
    let outcome = ok_json(&[
        "whatif",
        &account,
        "--trade",
        "BTC_USDC-PERPETUAL:25@99000",
        "--json",
    ]);
    assert_eq!(money(&outcome["after"], "equity"), dec!(125_000));
    assert_eq!(money(&outcome["after"], "unrealized_pnl"), dec!(25_000));
    assert_eq!(money(&outcome["after"], "collateral_value"), dec!(100_000));

    // 100 BTC: rate 0.02 + 100 x 0.00005 = 0.025; IM 10,000,000 x 0.025 = 250,000 > 100,000.
    let (code, text) = whatif_run(&[
        "whatif",
        &account,
        "--trade",
        "BTC_USDC-PERPETUAL:100",
        "--json",
    ]);
    assert_eq!(code, 1, "a refused what-if exits 1");
    let outcome: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(money(&outcome["after"], "initial_margin"), dec!(250_000));
    assert_eq!(outcome["accepted"], false);
    assert!(
        outcome["reason"]
            .as_str()
            .expect("reason")
            .contains("150000"),
        "the shortfall 250,000 - 100,000 is stated: {}",
        outcome["reason"]
    );
}

#[test]
fn whatif_closes_a_position_and_credits_realised_pnl() {
    let scratch = Scratch::new("close");
    // Long 25 from 96,000; mark 100,000: upnl 25 x 4,000 = 100,000; equity 200,000.
    let account = flat_usdc_account(
        &scratch,
        r#"{"instrument":"BTC_USDC-PERPETUAL","size":"25","entry_price":"96000"}"#,
    );
    let outcome = ok_json(&[
        "whatif",
        &account,
        "--trade",
        "BTC_USDC-PERPETUAL:-25@100000",
        "--json",
    ]);
    let (before, after) = (&outcome["before"], &outcome["after"]);
    assert_eq!(money(before, "equity"), dec!(200_000));
    // Closed at the mark: realised 25 x (100,000 - 96,000) = 100,000 credited to USDC.
    assert_eq!(money(after, "collateral_value"), dec!(200_000));
    assert_eq!(money(after, "unrealized_pnl"), Decimal::ZERO);
    assert_eq!(money(after, "equity"), dec!(200_000));
    assert_eq!(money(after, "initial_margin"), Decimal::ZERO);
    assert!(after["positions"].as_array().expect("array").is_empty());
    // All cash now: withdrawable 200,000.
    assert_eq!(money(after, "withdrawable"), dec!(200_000));
    assert_eq!(outcome["accepted"], true);

    // Partial close above the mark: sell 10 at 101,000.
    // realised 10 x (101,000 - 96,000) = 50,000 -> USDC 150,000;
    // remaining 15 from 96,000: upnl 15 x 4,000 = 60,000; equity 210,000
    // (= 200,000 + 10 x (101,000 - 100,000) sold above the mark);
    // IM 1,500,000 x (0.02 + 15 x 0.00005 = 0.02075) = 31,125.
    let outcome = ok_json(&[
        "whatif",
        &account,
        "--trade",
        "BTC_USDC-PERPETUAL:-10@101000",
        "--json",
    ]);
    let after = &outcome["after"];
    assert_eq!(money(after, "collateral_value"), dec!(150_000));
    assert_eq!(money(after, "unrealized_pnl"), dec!(60_000));
    assert_eq!(money(after, "equity"), dec!(210_000));
    assert_eq!(money(after, "initial_margin"), dec!(31_125));
    let remaining = position(after, "BTC_USDC-PERPETUAL");
    assert_eq!(remaining["size"], "15");
    assert_eq!(outcome["accepted"], true);

    // Flip: sell 35 at 100,000 -> realised 100,000 on the 25, short 10 from 100,000.
    let outcome = ok_json(&[
        "whatif",
        &account,
        "--trade",
        "BTC_USDC-PERPETUAL:-35",
        "--json",
    ]);
    let after = &outcome["after"];
    assert_eq!(money(after, "collateral_value"), dec!(200_000));
    assert_eq!(position(after, "BTC_USDC-PERPETUAL")["size"], "-10");
    assert_eq!(money(after, "unrealized_pnl"), Decimal::ZERO);
    // IM 1,000,000 x (0.02 + 10 x 0.00005) = 20,500
    assert_eq!(money(after, "initial_margin"), dec!(20_500));
}

#[test]
fn whatif_closes_an_inverse_position_in_coin() {
    // examples/deribit-btc-inverse.json: close the 2,500,000 USD BTC-PERPETUAL at 100,000.
    let outcome = ok_json(&[
        "whatif",
        &example("deribit-btc-inverse.json"),
        "--trade",
        "BTC-PERPETUAL:-2500000@100000",
        "--json",
    ]);
    let after = &outcome["after"];
    // realised 2,500,000 x (1/95,000 - 1/100,000) = 1.31578947 BTC (credit, rounded down)
    assert_eq!(money(after, "collateral_value"), dec!(2) + dec!(1.31578947));
    // equity unchanged: the P&L moved from unrealised to the balance.
    assert_eq!(money(after, "equity"), dec!(3.30578947));
    // Only the short call is left: IM 0.11, MM 0.085.
    assert_eq!(money(after, "initial_margin"), dec!(0.11));
    assert_eq!(money(after, "maintenance_margin"), dec!(0.085));
    assert_eq!(outcome["accepted"], true);
}

#[test]
fn whatif_option_premium_moves_cash() {
    // Sell 1 BTC-27DEC26-110000-C at 0.01 (the mark) more: premium 0.01 BTC received.
    let outcome = ok_json(&[
        "whatif",
        &example("deribit-btc-inverse.json"),
        "--trade",
        "BTC-27DEC26-110000-C:-1@0.01",
        "--json",
    ]);
    let after = &outcome["after"];
    // collateral 2 + 0.01; option value -2 x 0.01; equity unchanged 3.30578947
    assert_eq!(money(after, "collateral_value"), dec!(2.01));
    assert_eq!(money(after, "option_value"), dec!(-0.02));
    assert_eq!(money(after, "equity"), dec!(3.30578947));
    // IM 0.53125 + 2 x 0.11; MM 0.28125 + 2 x 0.085
    assert_eq!(money(after, "initial_margin"), dec!(0.75125));
    assert_eq!(money(after, "maintenance_margin"), dec!(0.45125));
}

#[test]
fn bug_closing_an_isolated_position_frees_its_margin() {
    // Repro: solvent whatif examples/isolated-btcusdt.json --trade BTCUSDT:-1 --json
    // Before: cross equity 10,000, withdrawable 10,000, plus 5,000 isolated margin on BTCUSDT.
    // After closing at the mark (no P&L, no fee): equity 10,000, withdrawable 10,000; the 5,000
    // isolated margin has disappeared. Either the isolated margin is outside `collateral` (then it
    // must come back to the cross balance on close: withdrawable 15,000) or it is inside it (then
    // it must not count as withdrawable before: 5,000). Either way the close must raise withdrawable.
    let outcome = ok_json(&[
        "whatif",
        &example("isolated-btcusdt.json"),
        "--trade",
        "BTCUSDT:-1",
        "--json",
    ]);
    let before = money(&outcome["before"], "withdrawable");
    let after = money(&outcome["after"], "withdrawable");
    assert!(
        after > before,
        "closing frees 5,000 of isolated margin: withdrawable {before} -> {after}"
    );
}

#[test]
fn short_option_detail_states_the_position_total() {
    // Regression: the detail used to say "per contract = 1.54680337" for the 12-contract total
    // (found by this suite; fixed in solvent-risk while it was being written).
    let scratch = Scratch::new("option-detail");
    let text = fs::read_to_string(example("deribit-btc-inverse.json"))
        .expect("read")
        .replace(r#""size": "-1","#, r#""size": "-2","#);
    let path = scratch.write("two-calls.json", &text);
    let report = ok_json(&["margin", &path, "--json"]);
    let entry = report["components"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["name"] == "initial_margin:BTC-27DEC26-110000-C")
        .expect("component");
    // 2 contracts x (max(0.15 - 0.1, 0.10) + 0.01) = 0.22 BTC is the position's IM.
    assert_eq!(money(entry, "amount"), dec!(0.22));
    let detail = entry["detail"].as_str().expect("string");
    assert!(detail.contains("0.22"), "{detail}");
    assert!(!detail.contains("per contract = 0.22"), "{detail}");
}

#[test]
fn runs_from_any_directory_with_relative_paths() {
    // A relative path is resolved against the working directory, not the repository.
    let output = support::solvent_in(&root(), &["margin", "examples/btc-desk.json", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let scratch = Scratch::new("cwd");
    let output = support::solvent_in(scratch.dir(), &["margin", "examples/btc-desk.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("examples/btc-desk.json: cannot read the file"));
}

/// The what-if books a trade's fee as the engine does (one pre-trade rule): on the accepted desk
/// case, a fee one unit above what the account had available leaves equity below the initial
/// margin, and the trade is refused as `initial_margin`; the fee comes out of equity exactly.
#[test]
fn whatif_books_the_fee_as_the_engine_does() {
    let portfolio = example("btc-desk.json");
    let free = ok_json(&whatif_args(
        &portfolio,
        &["BTCUSDT:0.5@93000", "ETHUSDT:5"],
        true,
    ));
    assert_eq!(free["accepted"], true, "precondition");
    let decimal = |value: &Value| {
        value
            .as_str()
            .expect("money is a string")
            .parse::<rust_decimal::Decimal>()
            .expect("a decimal")
    };
    let available = decimal(&free["after"]["available"]);
    let fee = available.floor() + rust_decimal::Decimal::ONE;
    let trade = format!("BTCUSDT:0.5@93000,fee={fee}");
    let (code, text) = whatif_run(&whatif_args(&portfolio, &[&trade, "ETHUSDT:5"], true));
    assert_eq!(code, 1, "a refused what-if exits 1");
    let charged: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(charged["accepted"], false, "{}", charged["reason"]);
    assert_eq!(charged["refusal"], "initial_margin");
    assert_eq!(
        decimal(&free["after"]["equity"]) - decimal(&charged["after"]["equity"]),
        fee
    );
    let (code, _, stderr) = support::run(&whatif_args(
        &portfolio,
        &["BTCUSDT:0.5@93000,fee=0.0000001"],
        false,
    ));
    assert_eq!(code, 2);
    assert!(stderr.contains("fee"), "{stderr}");
}

#[test]
fn completions_and_the_man_page_come_from_the_parser() {
    let (code, bash, _) = support::run(&["completions", "bash"]);
    assert_eq!(code, 0);
    let (_, man, _) = support::run(&["man"]);
    assert!(man.contains(".TH solvent 1"), "{man}");
    for command in [
        "margin",
        "whatif",
        "stress",
        "allocate",
        "backtest",
        "replay",
        "population",
        "cascade",
        "journal",
        "serve",
        "keys",
        "venue",
        "cluster",
        "completions",
        "man",
    ] {
        assert!(
            bash.contains(&format!("solvent__subcmd__{command}")),
            "bash: {command}"
        );
        assert!(man.contains(command), "man: {command}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (code, text, _) = support::run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(text.contains("cluster"), "{shell}");
    }
    let (code, _, error) = support::run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(error.contains("possible values: bash"), "{error}");
}

/// Starts `solvent [-q] serve` on a new data directory, waits until it listens, stops it and
/// returns what it logged on stderr.
fn serve_logs(quiet: bool) -> String {
    let scratch = Scratch::new("serve-logs");
    let data = scratch.path("data");
    let mut args = vec!["serve", "--data", &data, "--listen", "127.0.0.1:0"];
    if quiet {
        args.insert(0, "-q");
    }
    support::serve_logs(&args)
}

/// Issue 16 item 4: `--quiet` holds for the service too. Its recovery line is information, so
/// it is logged by default and not under `--quiet`, where only warnings and errors would be.
#[test]
fn serve_logs_information_unless_quiet() {
    let talkative = serve_logs(false);
    assert!(
        talkative.contains("INFO") && talkative.contains("recovered"),
        "{talkative}"
    );
    let quiet = serve_logs(true);
    assert!(!quiet.contains("INFO"), "{quiet}");
    assert!(!quiet.contains("recovered"), "{quiet}");
}

/// `solvent serve --huge-pages`: with `off`, the kernel's flag for the server process says
/// transparent huge pages are disabled (`THP_enabled: 0` in `/proc/PID/status`); `on`, the
/// default, leaves them as the system decides (1 where the kernel offers them at all).
#[cfg(target_os = "linux")]
#[test]
fn serve_disables_transparent_huge_pages_when_asked() {
    use std::io::{BufRead, BufReader};
    let thp_enabled = |extra: &[&str]| -> String {
        let scratch = Scratch::new("serve-thp");
        let data = scratch.path("data");
        let mut child = support::serve_command(&data, extra)
            .spawn()
            .expect("start solvent serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let first = BufReader::new(stdout).lines().next();
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
        child.kill().expect("stop the server");
        child.wait().expect("the server's end");
        let first = first.expect("a line").expect("text");
        assert!(first.starts_with("solvent: serving http://"), "{first}");
        let status = status.expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .map(|value| value.trim().to_owned())
            .expect("THP_enabled in /proc/PID/status (Linux 5.0 and later)")
    };
    assert_eq!(thp_enabled(&["--huge-pages", "off"]), "0");
    let system =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let expected = if system.contains("[never]") { "0" } else { "1" };
    assert_eq!(thp_enabled(&["--huge-pages", "on"]), expected, "{system}");
    assert_eq!(thp_enabled(&[]), expected, "by default: {system}");
}

/// `solvent margin` with a loan owing interest (issue 10, item 3): 200,000 USDT and 1 BTC
/// borrowed at 100,000 owing 0.01 BTC on the default venue (BTC borrow maintenance 4%). The
/// loan is 1.01 BTC at full value: collateral 99,000, maintenance 101,000 x 4% = 4,040 (4,000
/// on the principal), accrued interest 1,000 USDT in the JSON and on its own table line; hours
/// of interest on a venue that publishes no rate for the coin are refused naming the field.
#[test]
fn margin_shows_accrued_interest_inside_the_loan() {
    let scratch = Scratch::new("interest");
    let write = |name: &str, extra: &str| {
        let path = scratch.path(name);
        fs::write(
            &path,
            format!(
                r#"{{"account":"loan","mode":"cross","collateral":{{"USDT":"200000","BTC":"-1"}}{extra},
                   "market":{{"timestamp":"2026-01-06T08:00:00Z","index":{{"BTC":"100000","USDT":"1"}}}}}}"#
            ),
        )
        .expect("write the portfolio");
        path
    };
    let owed = write("owed.json", r#","accrued_interest":{"BTC":"0.01"}"#);
    let report = ok_json(&["margin", &owed, "--json"]);
    assert_eq!(money(&report, "collateral_value"), Decimal::from(99_000));
    assert_eq!(money(&report, "maintenance_margin"), Decimal::from(4_040));
    assert_eq!(money(&report, "accrued_interest"), Decimal::from(1_000));
    assert_eq!(
        component(&report, "borrow_interest:BTC"),
        Decimal::from(1_000)
    );
    let table = ok(&["margin", &owed]);
    assert!(
        table
            .lines()
            .any(|line| line.contains("of which accrued interest on loans")
                && line.contains("-1,000")),
        "{table}"
    );
    let plain = write("plain.json", "");
    let report = ok_json(&["margin", &plain, "--json"]);
    assert_eq!(money(&report, "maintenance_margin"), Decimal::from(4_000));
    assert!(report.get("accrued_interest").is_none());
    assert!(!ok(&["margin", &plain]).contains("accrued interest"));

    let hours = write("hours.json", r#","borrowed_hours":{"BTC":3}"#);
    let (code, _, errors) = run(&["margin", &hours]);
    assert_eq!(code, 2, "{errors}");
    assert!(
        errors.contains("borrowed_hours.BTC") && errors.contains("no interest rate"),
        "{errors}"
    );
    let negative = write("negative.json", r#","accrued_interest":{"BTC":"-0.01"}"#);
    let (code, _, errors) = run(&["margin", &negative]);
    assert_eq!(code, 2, "{errors}");
    assert!(errors.contains("accrued_interest.BTC"), "{errors}");
}
