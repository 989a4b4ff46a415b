//! The display layer and the sanity checks end to end (issue 16, items 2 and 3): tables that fit
//! 120 columns unless `--wide`, figures rounded to their asset or tick, the constraint that binds
//! `withdrawable`; impossible premiums and far marks refused naming the field, every default
//! named on stderr, ambiguous shocks refused, and "did you mean" for misspelt names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod support;

use serde_json::Value;
use support::{Scratch, path, run};

/// An example portfolio as JSON, to change one field of.
fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(path(&format!("examples/{name}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Writes `portfolio` into `scratch` and returns its path.
fn write(scratch: &Scratch, portfolio: &Value) -> String {
    scratch.write("p.json", &serde_json::to_string_pretty(portfolio).unwrap())
}

/// The widest line of a text, in characters.
fn widest(text: &str) -> usize {
    text.lines()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0)
}

/// Lines of stderr that are warnings.
fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("warning: "))
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Item 2: the display layer
// ------------------------------------------------------------------------------------------------

#[test]
fn every_table_fits_120_columns_by_default_and_wide_shows_every_column() {
    let desk = path("examples/btc-desk.json");
    let spm = path("examples/deribit-spm.json");
    let runs: [&[&str]; 6] = [
        &["margin", &desk],
        &["margin", &spm, "--venue", "deribit"],
        &["stress", &desk, "--reverse"],
        &["stress", &desk, "--scenarios", "historical"],
        &["whatif", &desk, "--trade", "BTCUSDT:1"],
        &["allocate", &desk],
    ];
    for args in runs {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(
            widest(&stdout) <= 120,
            "{args:?}: {} wide\n{stdout}",
            widest(&stdout)
        );
    }
    // The segregated currencies' table leaves out its index and USD IM columns to fit, and says
    // so; --wide shows them (the BTC index of examples/deribit-spm.json is 100,000).
    let (_, narrow, _) = run(&["margin", &spm, "--venue", "deribit"]);
    assert!(
        narrow.contains("left out to fit 120 columns: index (USD)"),
        "{narrow}"
    );
    assert!(!narrow.contains("100,000.00   1,000,000.00"), "{narrow}");
    let (code, wide, stderr) = run(&["margin", &spm, "--venue", "deribit", "--wide"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        wide.contains("index (USD)") && !wide.contains("left out"),
        "{wide}"
    );
    assert!(widest(&wide) > 120, "{wide}");
}

#[test]
fn amounts_round_to_their_asset_and_prices_to_their_tick_with_units_on_the_headers() {
    let (code, text, stderr) = run(&["margin", &path("examples/btc-desk.json")]);
    assert_eq!(code, 0, "{stderr}");
    // Equity 709,405.657475 USDT to the cent; the call's mark 0.0289002808... BTC to Deribit's
    // premium tick 0.0001; the BTCUSDT mark 93,871.2 to the cent, in USDT; the inverse
    // perpetual's size in USD, the linear one's in BTC.
    assert!(
        text.lines()
            .any(|line| line.starts_with("│ equity ") && line.ends_with(" 709,405.66 │")),
        "{text}"
    );
    assert!(text.contains("0.0289 BTC"), "{text}");
    assert!(!text.contains("0.02890028083623059"), "{text}");
    assert!(text.contains("93,871.20 USDT"), "{text}");
    assert!(text.contains("-120,000 USD "), "{text}");
    assert!(text.contains("3.2 BTC"), "{text}");
    for header in [
        "value (USDT)",
        "upnl (USDT)",
        "IM (USDT)",
        "MM (USDT)",
        "amount (USDT)",
    ] {
        assert!(text.contains(header), "{header}: {text}");
    }
    // An all-BTC account: amounts to the satoshi.
    let (_, inverse, _) = run(&["margin", &path("examples/deribit-btc-inverse.json")]);
    assert!(
        inverse
            .lines()
            .any(|line| line.starts_with("│ collateral value ") && line.ends_with(" 2.00000000 │")),
        "{inverse}"
    );
    // Marks in USD (the inverse perpetual) and in BTC (the inverse call) in one column: each
    // cell names its unit.
    assert!(
        inverse.contains("100,000.00 USD") && inverse.contains("0.0100 BTC"),
        "{inverse}"
    );
}

#[test]
fn withdrawable_names_the_constraint_that_binds_it() {
    // 6,000 BTC (119,500,000 USDT after haircuts) and no cash: nothing is withdrawable because
    // the collateral is not cash-like, not for want of equity.
    let binance = path("examples/binance-6000-btc.json");
    let (code, text, stderr) = run(&["margin", &binance]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.lines().any(
            |line| line.starts_with("│ withdrawable, bound by cash-like collateral ")
                && line.ends_with(" 0.00 │")
        ),
        "{text}"
    );
    let (_, json, _) = run(&["margin", &binance, "--json"]);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["withdrawable"], "0");
    assert_eq!(report["withdrawable_limit"], "cash_like_collateral");
    // 36,562.5 USDC of equity under 53,125 of initial margin: nothing above IM.
    let (_, json, _) = run(&["margin", &path("examples/margin-call.json"), "--json"]);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["withdrawable_limit"], "initial_margin");
    // 100,000 USDC, IM 53,125 on 25 BTC: 46,875 withdrawable, bound by the IM.
    let (_, json, _) = run(&[
        "margin",
        &path("examples/deribit-usdc-perp-25btc.json"),
        "--json",
    ]);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["withdrawable"], "46875");
    assert_eq!(report["withdrawable_limit"], "initial_margin");
    // Segregated margin: the USDC currency is under its own IM, BTC is not cash.
    let (_, json, _) = run(&[
        "margin",
        &path("examples/deribit-spm.json"),
        "--venue",
        "deribit",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["withdrawable_limit"], "currency_initial_margin");
}

// ------------------------------------------------------------------------------------------------
// Item 3: sanity checks
// ------------------------------------------------------------------------------------------------

#[test]
fn an_inverse_option_premium_of_a_coin_or_more_is_refused_naming_the_field() {
    let scratch = Scratch::new("premium");
    // The call's mark written in USD (950 = 0.0095 BTC at 100,000) instead of BTC.
    let mut portfolio = example("deribit-btc-inverse.json");
    portfolio["market"]["mark"]["BTC-27DEC26-110000-C"] = "950".into();
    let file = write(&scratch, &portfolio);
    let (code, stdout, stderr) = run(&["margin", &file]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with(&format!(
            "error: {file}: market.mark.BTC-27DEC26-110000-C: 950 is not a premium of BTC-27DEC26-110000-C"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("below 1 BTC"), "{stderr}");
    // Exactly one coin is refused too; the entry price is checked the same way.
    portfolio["market"]["mark"]["BTC-27DEC26-110000-C"] = "1".into();
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 2, "{stderr}");
    portfolio["market"]["mark"]["BTC-27DEC26-110000-C"] = "0.01".into();
    portfolio["positions"][1]["entry_price"] = "1200".into();
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("positions[1].entry_price: 1200 is not a premium"),
        "{stderr}"
    );
    // A deep in-the-money inverse put may be worth more than a coin: the 200,000 put at an index
    // of 100,000 pays up to 2 BTC, so 1.05 BTC is a premium and 950 is not.
    portfolio["positions"][1] = serde_json::json!(
        {"instrument": "BTC-27DEC26-200000-P", "size": "-1", "entry_price": "1.02"}
    );
    portfolio["market"]["mark"] = serde_json::json!(
        {"BTC-PERPETUAL": "100000", "BTC-27DEC26-200000-P": "1.05"}
    );
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 0, "{stderr}");
    portfolio["market"]["mark"]["BTC-27DEC26-200000-P"] = "950".into();
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "market.mark.BTC-27DEC26-200000-P: 950 is not a premium of BTC-27DEC26-200000-P: an inverse option's premium is in BTC and below 2 BTC"
        ),
        "{stderr}"
    );
    // A what-if trade at a USD premium: refused naming the trade.
    let (code, stdout, stderr) = run(&[
        "whatif",
        &path("examples/deribit-btc-inverse.json"),
        "--trade",
        "BTC-27DEC26-110000-C:1@1000",
    ]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.starts_with(
            "error: --trade BTC-27DEC26-110000-C:1@1000: 1000 is not a premium of BTC-27DEC26-110000-C"
        ),
        "{stderr}"
    );
}

#[test]
fn a_far_mark_is_refused_and_valued_with_a_warning_under_the_flag() {
    let scratch = Scratch::new("far-mark");
    // The perpetual's mark ten times its index of 100,000.
    let mut portfolio = example("deribit-btc-inverse.json");
    portfolio["market"]["mark"]["BTC-PERPETUAL"] = "1000000".into();
    let file = write(&scratch, &portfolio);
    let (code, stdout, stderr) = run(&["margin", &file]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {file}: market.mark.BTC-PERPETUAL: 1,000,000.00 is 900.0% from the BTC index 100,000.00, beyond the 20% mark band"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-far-marks"), "{stderr}");
    let (code, stdout, stderr) = run(&["margin", &file, "--allow-far-marks"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        warnings(&stderr),
        [format!(
            "warning: {file}: market.mark.BTC-PERPETUAL: 1,000,000.00 is 900.0% from the BTC index 100,000.00, beyond the 20% mark band; valued anyway (--allow-far-marks)"
        )]
    );
    assert!(stdout.contains("1,000,000.00 USD"), "{stdout}");
    // 15% from the index is within the band: no word.
    portfolio["market"]["mark"]["BTC-PERPETUAL"] = "115000".into();
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    // A call worth more than its underlying (0.5 BTC is fine; a linear call at 150,000 USDC on
    // an index of 100,000 is not).
    let mut linear = example("deribit-usdc-perp-25btc.json");
    linear["positions"] = serde_json::json!([
        {"instrument": "BTC_USDC-27DEC26-110000-C", "size": "1", "entry_price": "5000"}
    ]);
    linear["market"]["mark"] = serde_json::json!({"BTC_USDC-27DEC26-110000-C": "150000"});
    let (code, _, stderr) = run(&["margin", &write(&scratch, &linear)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("market.mark.BTC_USDC-27DEC26-110000-C: a premium of 150,000.00 USD is above the BTC index (100,000.00 USD)"),
        "{stderr}"
    );
}

#[test]
fn every_default_filled_in_is_named_on_stderr() {
    let scratch = Scratch::new("defaults");
    // No mark for the linear perpetual: the index stands in for it.
    let (code, _, stderr) = run(&["margin", &path("examples/margin-call.json")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        warnings(&stderr),
        [format!(
            "warning: {}: market.mark.BTC_USDC-PERPETUAL: missing; the BTC index 100,000.00 stands in for it",
            path("examples/margin-call.json")
        )]
    );
    // A leverage on a size-linear rule (Deribit's inverse perpetual) changes nothing.
    let mut portfolio = example("deribit-btc-inverse.json");
    portfolio["positions"][0]["leverage"] = 10.into();
    let file = write(&scratch, &portfolio);
    let (code, _, stderr) = run(&["margin", &file]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        warnings(&stderr),
        [format!(
            "warning: {file}: positions[0].leverage: 10x is ignored: BTC-PERPETUAL's margin rule `deribit_btc_inverse` does not depend on leverage (only tiered rules do)"
        )]
    );
    // The 2020-03-12 day has no SOL data: the desk's SOL perpetual stays at its index there.
    let (code, _, stderr) = run(&[
        "stress",
        &path("examples/btc-desk.json"),
        "--scenarios",
        "historical",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "warning: scenarios/historical-days.json (built in): SOL is held but not moved by 2020-03-12 COVID crash: it stays at its index there"
        ),
        "{stderr}"
    );
    // Warnings go with the figures they qualify: a failed command prints its error alone.
    let (code, _, stderr) = run(&[
        "whatif",
        &path("examples/margin-call.json"),
        "--trade",
        "BTCUSDT",
    ]);
    assert_eq!(code, 2);
    assert!(warnings(&stderr).is_empty(), "{stderr}");
}

/// Many missing marks: five named one by one, the rest counted by what stands in for them in
/// one line (an account of 200,000 options priced from their surface printed 200,000 lines).
#[test]
fn many_missing_marks_are_counted_after_the_first_five() {
    let scratch = Scratch::new("many-missing");
    let mut linear = example("deribit-usdc-perp-25btc.json");
    let strikes = [
        90_000, 95_000, 100_000, 105_000, 110_000, 115_000, 120_000, 125_000,
    ];
    let positions: Vec<Value> = strikes
        .iter()
        .map(|strike| {
            serde_json::json!({"instrument": format!("BTC_USDC-27DEC26-{strike}-C"),
                               "size": "0.1", "entry_price": "5000"})
        })
        .collect();
    linear["positions"] = Value::from(positions);
    linear["market"]["mark"] = serde_json::json!({});
    linear["market"]["vol"] = serde_json::json!(
        {"BTC": {"27DEC26": {"strikes": [50000, 150000], "vols": [0.6, 0.6]}}}
    );
    let file = write(&scratch, &linear);
    let (code, _, stderr) = run(&["margin", &file]);
    assert_eq!(code, 0, "{stderr}");
    let mut expected: Vec<String> = strikes[..5]
        .iter()
        .map(|strike| {
            format!(
                "warning: {file}: market.mark.BTC_USDC-27DEC26-{strike}-C: missing; priced from the BTC volatility surface"
            )
        })
        .collect();
    expected.push(format!(
        "warning: {file}: market.mark: 3 more held instruments missing: 3 options priced from their volatility surface"
    ));
    assert_eq!(warnings(&stderr), expected);
}

#[test]
fn a_bare_shock_of_magnitude_one_or_more_is_refused_as_ambiguous() {
    let scratch = Scratch::new("shock");
    let accounts = scratch.path("accounts.jsonl");
    let (code, _, stderr) = run(&[
        "population",
        "--accounts",
        "20",
        "--seed",
        "1",
        "--out",
        &accounts,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run(&["cascade", &accounts, "--shock", "BTC:10"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.starts_with("error: --shock: BTC: 10 is ambiguous") && stderr.contains("(10%)"),
        "{stderr}"
    );
    for unambiguous in ["BTC:-10%", "BTC:-0.1"] {
        let (code, _, stderr) = run(&["cascade", &accounts, "--shock", unambiguous, "--json"]);
        assert_eq!(code, 0, "{unambiguous}: {stderr}");
    }
}

#[test]
fn misspelt_instrument_asset_and_venue_names_get_a_suggestion() {
    let scratch = Scratch::new("did-you-mean");
    let mut portfolio = example("deribit-btc-inverse.json");
    portfolio["positions"][0]["instrument"] = "BTC-PERPETUL".into();
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("(did you mean `BTC-PERPETUAL`?)"),
        "{stderr}"
    );

    // A misspelt mark is not an error (a snapshot may quote other venues' instruments), but the
    // held instrument's mark then falls back to the index, and the warning names the misspelling.
    let mut portfolio = example("deribit-btc-inverse.json");
    portfolio["market"]["mark"] = serde_json::json!({
        "BTC-PERPETUL": "100000",
        "BTC-27DEC26-110000-C": "0.01"
    });
    let file = write(&scratch, &portfolio);
    let (code, _, stderr) = run(&["margin", &file]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        warnings(&stderr),
        [format!(
            "warning: {file}: market.mark.BTC-PERPETUAL: missing; the BTC index 100,000.00 stands in for it (the market marks `BTC-PERPETUL`, which the venue does not list: misspelt?)"
        )]
    );

    // An index under a misspelt name: refused naming the field, with the look-alike.
    let mut portfolio = example("isolated-btcusdt.json");
    portfolio["market"]["index"] = serde_json::json!({"btc": "100000", "USDT": "1"});
    let file = write(&scratch, &portfolio);
    let (code, _, stderr) = run(&["margin", &file]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: {file}: market.index.BTC: missing (the market gives `btc`: did you mean BTC?)\n"
        )
    );

    let mut portfolio = example("isolated-btcusdt.json");
    portfolio["positions"][0]["instrument"] = "BTCUSTD".into();
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("(did you mean `BTCUSDT`?)"), "{stderr}");

    let mut portfolio = example("isolated-btcusdt.json");
    portfolio["collateral"] = serde_json::json!({"USTD": "10000"});
    let (code, _, stderr) = run(&["margin", &write(&scratch, &portfolio)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("(did you mean `USDT`?)"), "{stderr}");
    // USDC is another asset, not a misspelt USDT: no suggestion.
    portfolio["collateral"] = serde_json::json!({"USDC": "10000"});
    let (code, _, stderr) = run(&[
        "margin",
        &write(&scratch, &portfolio),
        "--venue",
        "bybit-linear",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(!stderr.contains("did you mean"), "{stderr}");

    let (code, _, stderr) = run(&[
        "stress",
        &path("examples/btc-desk.json"),
        "--scenarios",
        "histroical",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "error: --scenarios histroical: no such file (did you mean `historical`?)\n"
    );

    let (code, _, stderr) = run(&[
        "margin",
        &path("examples/btc-desk.json"),
        "--venue",
        "bybit-linaer",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("did you mean `bybit-linear`"), "{stderr}");
}

/// Issue 16 item 1: the positions table's liquidation price says that it holds everything else
/// fixed, and the report adds each underlying's liquidating move with everything on it moving
/// together: the reverse stress's own figure (`stress --reverse`), and the index level it gives.
#[test]
fn the_margin_table_gives_each_underlyings_liquidating_move_as_the_reverse_stress_does() {
    let portfolio = path("examples/deribit-btc-inverse.json");
    let (code, text, stderr) = run(&["margin", &portfolio, "--venue", "deribit"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("liq. price, others fixed"), "{text}");
    let (code, json, stderr) = run(&[
        "stress",
        &portfolio,
        "--venue",
        "deribit",
        "--reverse",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let reverse: Value = serde_json::from_str(&json).unwrap();
    let down = reverse["reverse"][0]["down"].as_f64().unwrap();
    assert!((down - -0.104_610_373_376).abs() < 1e-9, "{down}");
    let row = text
        .lines()
        .skip_while(|line| !line.starts_with("Liquidation by underlying"))
        .find(|line| line.contains("│ BTC "))
        .unwrap();
    // -10.46% of the index 100,000.00 (the example's): 89,538.96.
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2..6], ["-10.46%", "89,538.96", "none", "-"], "{row}");
}

#[test]
fn the_margin_json_gives_each_underlyings_liquidating_move_as_the_reverse_stress_does() {
    let portfolio = path("examples/deribit-btc-inverse.json");
    let (code, json, stderr) = run(&["margin", &portfolio, "--venue", "deribit", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json).unwrap();
    // The report's own fields are still there, the moves beside them.
    assert_eq!(report["account"], "deribit-btc-1");
    let moves = report["liquidation_moves"].as_array().unwrap();
    assert_eq!(moves[0]["underlyings"], serde_json::json!(["BTC"]));
    // The reverse stress's fall, -10.461037...%, reaches the index 100,000 x (1 - 0.104610...)
    // = 89,538.96...; no rise up to +1000% liquidates the long.
    let fall = &moves[0]["fall"];
    let price_move = fall["move"].as_f64().unwrap();
    assert!((price_move - -0.104_610_373_376).abs() < 1e-9, "{fall}");
    let index: f64 = fall["index"].as_str().unwrap().parse().unwrap();
    assert!(
        (index - 100_000.0 * (1.0 + price_move)).abs() < 1e-6,
        "{index}"
    );
    assert!((index - 89_538.96).abs() < 0.01, "{index}");
    assert!(moves[0]["rise"].is_null(), "{}", moves[0]);
    assert!(report.get("liquidation_moves_error").is_none());
}

/// Under portfolio margin a position's level is its underlying's nearest liquidating move with
/// everything on that underlying moving together, not a price with the others held: the column
/// says so, and its move is the one the table by underlying gives.
#[test]
fn a_portfolio_accounts_position_level_says_its_underlying_moves() {
    let portfolio = path("examples/deribit-spm.json");
    let (code, text, stderr) = run(&["margin", &portfolio, "--venue", "deribit", "--wide"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("liq. price, underlying moves"), "{text}");
    assert!(!text.contains("others fixed"), "{text}");
    let cells = |start: &str, find: &str| -> Vec<String> {
        text.lines()
            .skip_while(|line| !line.starts_with(start))
            .find(|line| line.contains(find))
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    // BTC -2.32% reaches the index 97,679.91; the inverse perpetual's mark moves with it (its
    // level rounded up for the short, 97,679.92).
    let by_underlying = cells("Liquidation by underlying", "│ BTC ");
    assert_eq!(by_underlying[2..4], ["-2.32%", "97,679.91"]);
    let perp = cells("Margin and liquidation by position", "│ BTC-PERPETUAL ");
    assert_eq!(perp[5..8], ["97,679.92", "USD", "2.32"]);
}
