//! Volatility-scaled ranges end to end (issue 15): `solvent backtest --model` on the shared
//! price history (BTC and ETH from 2017), its SVG plot, the margin report of a venue that scales
//! its grids, and bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod support;

use support::{path, root, run, serve_logs};

fn history() -> String {
    root().join("../shared/data/prices").display().to_string()
}

fn model<'a>(
    report: &'a serde_json::Value,
    underlying: &str,
    label: &str,
) -> &'a serde_json::Value {
    report["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["underlying"] == underlying
                && (m["control"] == label || (label == "static" && m["model"] == "static"))
                && (label == "static" || m["model"] != "static")
        })
        .unwrap_or_else(|| panic!("{underlying} {label} missing"))
}

#[test]
fn three_models_on_btc_and_eth_since_2017() {
    let scratch = support::Scratch::new("vol-backtest");
    let plot = scratch.path("margin.svg");
    let (code, stdout, stderr) = run(&[
        "backtest",
        "--model",
        "static,ewma,garch",
        "--history",
        &history(),
        "--plot",
        &plot,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["margin_period_days"], 1);
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 6, "three models on two underlyings");
    // Every model is tested on the same days: GARCH's first fit needs 250 returns
    // (2017-08-17 + 250 days = 2018-04-24), to the last complete day but one (2026-01-04).
    for m in models {
        assert_eq!(m["first_day"], "2018-04-24");
        assert_eq!(m["last_day"], "2026-01-04");
        assert_eq!(m["days"], 2813);
    }
    // BTC: the static 16% is exceeded 5 times (28.1 expected at 99%: too few, Kupiec rejects);
    // EWMA x 3 with a 25% buffer 35 times (Kupiec p 0.21, not rejected); GARCH 13 times.
    let btc_static = model(&report, "BTC", "static");
    assert_eq!(btc_static["exceedances"], 5);
    assert_eq!(btc_static["kupiec"]["reject_at_5pct"], true);
    assert!((btc_static["average_range"].as_f64().unwrap() - 0.16).abs() < 1e-12);
    assert_eq!(btc_static["procyclicality"]["rise"], 0.0);
    let btc_ewma = &models[1];
    assert_eq!(btc_ewma["model"], "ewma");
    assert_eq!(btc_ewma["exceedances"], 35);
    assert_eq!(btc_ewma["kupiec"]["reject_at_5pct"], false);
    assert_eq!(
        btc_ewma["christoffersen"]["reject_independence_at_5pct"],
        false
    );
    let average = btc_ewma["average_range"].as_f64().unwrap();
    assert!((average - 0.1113).abs() < 5e-5, "{average}");
    // The COVID crash: the 30-day rise of the EWMA range peaks on 2020-03-20.
    assert_eq!(btc_ewma["procyclicality"]["to"], "2020-03-20");
    let btc_garch = &models[2];
    assert_eq!(btc_garch["model"], "garch");
    assert_eq!(btc_garch["exceedances"], 13);
    // The big days: 2020-03-12 (-39.50%) beats every model.
    let covid = &btc_static["big_days"][0];
    assert_eq!(covid["date"], "2020-03-12");
    assert!((covid["realised"].as_f64().unwrap() - (4800.0 / 7934.52 - 1.0)).abs() < 1e-12);
    for m in models.iter().filter(|m| m["underlying"] == "BTC") {
        assert_eq!(m["big_days"][0]["exceeded"], true, "{}", m["model"]);
        assert_eq!(m["big_days"].as_array().unwrap().len(), 4);
    }
    // ETH's static 20% is exceeded 7 times.
    assert_eq!(model(&report, "ETH", "static")["exceedances"], 7);
    // The plot: one panel per underlying, the big days marked, every series named.
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    for text in [
        "2020-03-12",
        "2025-10-10",
        "static grid (5 exceedances)",
        "ETH: margin",
    ] {
        assert!(svg.contains(text), "{text} missing from the plot");
    }
}

#[test]
fn controls_table_on_btc() {
    let (code, stdout, stderr) = run(&[
        "backtest",
        "--model",
        "static,ewma",
        "--control",
        "none,buffer,stressed-floor,stressed-weight",
        "--underlying",
        "BTC",
        "--history",
        &history(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn margin_report_shows_the_forecast_the_range_and_the_bound() {
    let scratch = support::Scratch::new("vol-margin");
    let portfolio = scratch.write(
        "pm.json",
        r#"{"account":"pm-1","mode":"portfolio","collateral":{"USDT":"200000"},
 "positions":[{"instrument":"BTCUSDT","size":"2","entry_price":"90000"},{"instrument":"ETHUSDT","size":"-20","entry_price":"3000"}],
 "market":{"timestamp":"2026-01-06T00:00:00Z","index":{"BTC":"92000","ETH":"3100","USDT":"1"}}}"#,
    );
    let venue = path("examples/vol-scaled-venue.toml");
    let (code, stdout, stderr) = run(&[
        "margin",
        &portfolio,
        "--venue",
        &venue,
        "--history",
        &history(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ranges = report["vol_scaled_ranges"].as_array().unwrap();
    let btc = &ranges[0];
    assert_eq!(btc["underlying"], "BTC");
    assert_eq!(btc["as_of"], "2026-01-05");
    assert_eq!(btc["model"], "ewma");
    assert_eq!(btc["bound"], "buffer_partial");
    let range = btc["range"].as_f64().unwrap();
    assert!((range - 0.05696).abs() < 1e-5, "{range}");
    // The BTC scan: 2 BTC x 92,000 x the range (the worst scenario is the scaled -range move).
    let scan = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "portfolio:scan_risk:BTC")
        .unwrap();
    let amount: f64 = scan["amount"].as_str().unwrap().parse().unwrap();
    assert!((amount - 2.0 * 92_000.0 * range).abs() < 0.01, "{amount}");
    let eth = &ranges[1];
    assert_eq!(eth["model"], "garch");
    assert_eq!(eth["control"], "stressed_floor");
    assert_eq!(eth["bound"], "stressed_floor");
    // The table names the section.
    let (code, table, _) = run(&[
        "margin",
        &portfolio,
        "--venue",
        &venue,
        "--history",
        &history(),
    ]);
    assert_eq!(code, 0);
    assert!(table.contains("Volatility-scaled ranges"), "{table}");
    assert!(table.contains("ten-year stressed floor"), "{table}");
    // Without the history the venue's range cannot be computed: a named error, nothing printed.
    let (code, stdout, stderr) = run(&["margin", &portfolio, "--venue", &venue]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("portfolio_margin.vol_scaled.BTC"),
        "{stderr}"
    );
}

/// The engine margins on the range `solvent forecast` makes, and its requirement is the one
/// `solvent margin --history` gives for the same account on the same day, to the last decimal:
/// the forecast events are replayed with the account's events, and the account's figures after
/// them are compared with the report of the same portfolio.
#[test]
fn the_engine_on_the_forecast_events_margins_as_margin_with_history() {
    let scratch = support::Scratch::new("vol-engine");
    let venue = path("examples/vol-scaled-venue.toml");
    let (code, forecast, stderr) = run(&[
        "forecast",
        "--venue",
        &venue,
        "--history",
        &history(),
        "--seq",
        "5",
    ]);
    assert_eq!(code, 0, "{stderr}");
    // One event per scaled underlying, stamped at the close of 2026-01-05.
    let events: Vec<serde_json::Value> = forecast
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "scenario_range");
    assert_eq!(events[0]["underlying"], "BTC");
    assert_eq!(events[0]["as_of"], "2026-01-05");
    assert_eq!(events[0]["ts"], "2026-01-06T00:00:00Z");
    assert_eq!(events[0]["range"], "0.05695504057259702");
    assert_eq!(events[0]["bound"], "buffer_partial");
    assert_eq!(events[1]["underlying"], "ETH");
    assert_eq!(events[1]["model"], "garch");
    assert_eq!(events[1]["range"], "0.13997056538238406");
    assert_eq!(events[1]["bound"], "stressed_floor");
    let opening = r#"{"seq":1,"ts":"2026-01-05T23:00:00Z","type":"index_price","underlying":"BTC","price":"92000"}
{"seq":2,"ts":"2026-01-05T23:00:00Z","type":"index_price","underlying":"ETH","price":"3100"}
{"seq":3,"ts":"2026-01-05T23:00:01Z","type":"deposit","account":"pm-1","asset":"USDT","amount":"200000"}
{"seq":4,"ts":"2026-01-05T23:00:02Z","type":"set_margin_mode","account":"pm-1","mode":"portfolio"}
"#;
    let trades = r#"{"seq":7,"ts":"2026-01-06T00:00:01Z","type":"fill","account":"pm-1","instrument":"BTCUSDT","side":"buy","size":"2","price":"92000","counterparty":"external"}
{"seq":8,"ts":"2026-01-06T00:00:02Z","type":"fill","account":"pm-1","instrument":"ETHUSDT","side":"sell","size":"20","price":"3100","counterparty":"external"}
{"seq":9,"ts":"2026-01-06T00:00:03Z","type":"deposit","account":"pm-1","asset":"USDT","amount":"1"}
"#;
    let stream = scratch.write("events.jsonl", &format!("{opening}{forecast}{trades}"));
    let effects = scratch.path("effects.jsonl");
    let (code, _, stderr) = run(&["replay", &stream, "--venue", &venue, "--out", &effects]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&effects).unwrap();
    let updated: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|e| e["type"] == "account_updated" && e["seq"] == 9)
        .unwrap();
    // The same account as a portfolio file, on the same day's market.
    let portfolio = scratch.write(
        "pm.json",
        r#"{"account":"pm-1","mode":"portfolio","collateral":{"USDT":"200001"},
 "positions":[{"instrument":"BTCUSDT","size":"2","entry_price":"92000"},{"instrument":"ETHUSDT","size":"-20","entry_price":"3100"}],
 "market":{"timestamp":"2026-01-06T00:00:03Z","index":{"BTC":"92000","ETH":"3100"}}}"#,
    );
    let (code, stdout, stderr) = run(&[
        "margin",
        &portfolio,
        "--venue",
        &venue,
        "--history",
        &history(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for field in ["equity", "initial_margin", "maintenance_margin"] {
        assert_eq!(updated[field], report[field], "{field}");
    }
    // BTC's scan on 5.6955% and ETH's on 13.997% (its ten-year floor), combined with the
    // cross-underlying offset of a long against a short, and the add-ons.
    assert_eq!(updated["maintenance_margin"], "13788.461963");
    assert_eq!(report["vol_scaled_ranges"][0]["range"], 0.05695504057259702);
    // The replay ends with the ranges in force, as the report shows them.
    let (code, summary, stderr) = run(&["replay", &stream, "--venue", &venue, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["vol_scaled_ranges"], report["vol_scaled_ranges"]);
    let (code, table, _) = run(&["replay", &stream, "--venue", &venue]);
    assert_eq!(code, 0);
    assert!(table.contains("Volatility-scaled ranges"), "{table}");
    assert!(table.contains("ten-year stressed floor"), "{table}");
}

#[test]
fn bad_input_is_named() {
    let cases: [(&[&str], &str); 4] = [
        (&["backtest", "--model", "arima", "--history", "."], "arima"),
        (
            &[
                "backtest",
                "--model",
                "ewma",
                "--history",
                ".",
                "--period-days",
                "0",
            ],
            "--period-days",
        ),
        (
            &[
                "backtest",
                "--model",
                "ewma",
                "--history",
                ".",
                "--level",
                "1.5",
            ],
            "--level",
        ),
        (
            &[
                "backtest",
                "--model",
                "ewma",
                "--underlying",
                "DOGE",
                "--history",
                &history(),
            ],
            "DOGE",
        ),
    ];
    let venue = path("examples/vol-scaled-venue.toml");
    let history = history();
    let forecast_cases: [(&[&str], &str); 4] = [
        // The default venue scales nothing.
        (
            &["forecast", "--history", &history],
            "--venue: the venue scales no underlying",
        ),
        (
            &[
                "forecast",
                "--venue",
                &venue,
                "--history",
                &history,
                "--underlying",
                "SOL",
            ],
            "--underlying: the venue does not scale SOL's range",
        ),
        (
            &[
                "forecast",
                "--venue",
                &venue,
                "--history",
                &history,
                "--from",
                "2026-01-05",
                "--to",
                "2026-01-01",
            ],
            "--from: 2026-01-05 is after --to 2026-01-01",
        ),
        (
            &[
                "forecast",
                "--venue",
                &venue,
                "--history",
                &history,
                "--from",
                "2030-01-01",
                "--to",
                "2030-01-02",
            ],
            "--from/--to: no forecast of BTC between 2030-01-01 and 2030-01-02",
        ),
    ];
    for (args, needle) in cases.into_iter().chain(forecast_cases) {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn option_book_is_backtested_on_each_days_dvol() {
    // One BTC call (Deribit inverse, 1 BTC a contract) on a flat 50% smile: the shape is 1, so
    // each day's volatility is that day's DVOL, and the strike is carried to each day's price
    // level (K x S_d / S_0: at the money on every day here).
    let scratch = support::Scratch::new("vol-options");
    let portfolio = scratch.write(
        "opt.json",
        r#"{"account":"opt","mode":"cross","collateral":{"USDT":"100000"},
 "positions":[{"instrument":"BTC-27DEC26-100000-C","size":"1","entry_price":"0.1"}],
 "market":{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","USDT":"1"},
   "vol":{"BTC":{"27DEC26":{"strikes":[50000,100000,200000],"vols":[0.5,0.5,0.5]}}},"rate":0.0}}"#,
    );
    let (code, stdout, stderr) = run(&["backtest", &portfolio, "--history", &history(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // DVOL starts 2021-03-24: + 30 seed returns + 250 scenarios -> 2021-12-29.
    assert_eq!(report["first_day"], "2021-12-29");
    assert_eq!(report["kupiec"]["observations"], 1468);
    assert_eq!(report["kupiec"]["exceptions"], 13);
    // Realised P&L, scipy Black-76 (T = 355 / 365, F = S, r = 0): on 2022-08-19,
    // C(20834.39, K = 23191.2, 81.24%) - C(23191.2, 23191.2, 74.82%); on 2023-11-16 likewise.
    let exceptions = report["exceptions"].as_array().unwrap();
    for (day, scipy) in [
        ("2022-08-19", -943.321_404_160_379_6),
        ("2023-11-16", -1_740.130_268_108_325_3),
    ] {
        let row = exceptions
            .iter()
            .find(|e| e[0] == day)
            .unwrap_or_else(|| panic!("{day} is not an exception"));
        let realised = row[2].as_f64().unwrap();
        assert!((realised - scipy).abs() < 1e-8, "{day}: {realised}");
    }
    // Without a market the options cannot be valued: a named error.
    let bare = scratch.write(
        "bare.json",
        r#"{"account":"o","mode":"cross","positions":[{"instrument":"BTC-27DEC26-100000-C","size":"1","entry_price":"0.1"}]}"#,
    );
    let (code, stdout, stderr) = run(&["backtest", &bare, "--history", &history()]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("market: missing"), "{stderr}");
}

#[test]
fn csv_tables_of_the_model_backtest() {
    // The static grid alone is tested from the first close (2017-08-17): nine daily moves beyond
    // 16%, among them 2020-03-12 (-39.50%, the range set at the 2020-03-11 close).
    let (code, stdout, stderr) = run(&[
        "backtest",
        "--model",
        "static",
        "--underlying",
        "BTC",
        "--history",
        &history(),
        "--csv",
        "exceptions",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "underlying,model,control,as_of,range,realised");
    assert_eq!(lines.len(), 1 + 9, "{stdout}");
    assert!(lines.contains(&"BTC,static,static,2020-03-11,0.16,-0.3950484717412017"));
    let (code, stdout, stderr) = run(&[
        "backtest",
        "--model",
        "static,ewma",
        "--underlying",
        "BTC",
        "--history",
        &history(),
        "--csv",
        "summary",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][6], "exceedances");
    assert_eq!(
        rows[1][..7],
        [
            "BTC",
            "static",
            "static",
            "2017-09-16",
            "2026-01-04",
            "3033",
            "7"
        ]
    );
    assert_eq!(
        rows[2][..7],
        [
            "BTC",
            "ewma",
            "buffer",
            "2017-09-16",
            "2026-01-04",
            "3033",
            "36"
        ]
    );
}

#[test]
fn the_summary_csv_writes_the_tables_rows_with_exact_figures() {
    let args = [
        "backtest",
        "--model",
        "static,ewma",
        "--underlying",
        "BTC",
        "--history",
        &history(),
    ];
    let (code, csv, stderr) = run(&[&args[..], &["--csv", "summary"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let (code, json, stderr) = run(&[&args[..], &["--json"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "underlying,model,control,first_day,last_day,days,exceedances,expected,kupiec_p,christoffersen_independence_p,conditional_coverage_p,average_range,max_range,largest_30_day_rise,rise_from,rise_to"
        )
    );
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
    let models = report["models"].as_array().unwrap();
    assert_eq!(rows.len(), models.len());
    for (row, model) in rows.iter().zip(models) {
        assert_eq!(row[0], "BTC");
        assert_eq!(row[1], model["model"].as_str().unwrap());
        assert_eq!(row[2], model["control"].as_str().unwrap());
        assert_eq!(row[5], model["days"].to_string());
        assert_eq!(row[6], model["exceedances"].to_string());
        // Exact: every digit of the f64, a fraction (not a percent). The JSON's own reader
        // (serde_json without `float_roundtrip`) may land an ulp away.
        for (cell, figure) in [
            (row[8], &model["kupiec"]["p_value"]),
            (row[11], &model["average_range"]),
            (row[12], &model["max_range"]),
            (row[13], &model["procyclicality"]["rise"]),
        ] {
            let (cell, figure) = (cell.parse::<f64>().unwrap(), figure.as_f64().unwrap());
            assert!(
                (cell - figure).abs() <= 1e-15 * figure.abs(),
                "{row:?}: {figure}"
            );
        }
        assert_eq!(row[15], model["procyclicality"]["to"].as_str().unwrap());
    }
    // The static 16% grid, from the first day with a month of history (EWMA's start): exceeded
    // 7 times over 3,033 days (30.3 expected at 99%), at most 16%; the table's percentages are
    // CSV's fractions.
    assert_eq!(
        &rows[0][..8],
        [
            "BTC",
            "static",
            "static",
            "2017-09-16",
            "2026-01-04",
            "3033",
            "7",
            "30.330000000000027"
        ]
    );
    assert_eq!(rows[0][12], "0.16");
    assert_eq!(rows[1][6], "36");
}

#[test]
fn option_book_runs_through_each_models_grid_day_by_day() {
    // examples/btc-option-book.json: 25 short 27MAR26 110,000 calls and 80,000 puts, 10 long
    // 26JUN26 100,000 calls and 90,000 puts, on the smile of 2026-01-06; each day's surface is
    // levelled by BTC's DVOL, so the book is tested from DVOL's first day (2021-03-24).
    let venue = path("examples/vol-scaled-venue.toml");
    let book = path("examples/btc-option-book.json");
    let (code, stdout, stderr) = run(&[
        "backtest",
        &book,
        "--model",
        "static,ewma,garch",
        "--venue",
        &venue,
        "--history",
        &history(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["account"], "btc-vol-desk");
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 3, "the book holds BTC only");
    // (control, average requirement USD, largest requirement USD, average in coin)
    let expected = [
        (
            "static",
            127_384.930_383_295_33,
            286_875.45,
            2.327_420_602_898_816_7,
        ),
        (
            "buffer",
            75_421.374_805_492_09,
            175_257.19,
            1.472_321_416_326_853_9,
        ),
        (
            "buffer",
            90_700.714_216_247_14,
            186_134.21,
            1.744_513_036_598_942,
        ),
    ];
    for (m, (control, average, largest, coin)) in models.iter().zip(expected) {
        assert_eq!(m["underlying"], "BTC");
        assert_eq!(m["control"], control);
        assert_eq!(m["first_day"], "2021-03-24");
        assert_eq!(m["last_day"], "2026-01-04");
        assert_eq!(m["days"], 1748);
        // The venue's volatility shocks (x1.5, and at least 50% volatility, the floor unscaled)
        // cover every day's loss of this short-volatility book, even on the scaled grids.
        assert_eq!(m["exceedances"], 0);
        assert!((m["average_requirement_usd"].as_f64().unwrap() - average).abs() < 1e-6);
        assert_eq!(m["max_requirement_usd"].as_f64().unwrap(), largest);
        assert!((m["average_range"].as_f64().unwrap() - coin).abs() < 1e-12);
    }
    // The scaled grids ask less than the static one on average.
    assert!(
        models[1]["average_requirement_usd"].as_f64()
            < models[0]["average_requirement_usd"].as_f64()
    );

    // The CSV summary carries the USD requirement; the plot and a book without a market are
    // refused with the field named.
    let (code, stdout, stderr) = run(&[
        "backtest",
        &book,
        "--model",
        "static",
        "--venue",
        &venue,
        "--history",
        &history(),
        "--csv",
        "summary",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let header = stdout.lines().next().unwrap();
    assert!(
        header.ends_with("average_requirement_usd,max_requirement_usd"),
        "{header}"
    );
    let scratch = support::Scratch::new("vol-option-book");
    let (code, _, stderr) = run(&[
        "backtest",
        &book,
        "--model",
        "static",
        "--history",
        &history(),
        "--plot",
        &scratch.path("x.svg"),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--plot"), "{stderr}");
    let bare = scratch.write(
        "bare.json",
        r#"{"account":"o","mode":"cross","positions":[{"instrument":"BTC-27DEC26-100000-C","size":"1","entry_price":"0.1"}]}"#,
    );
    let (code, _, stderr) = run(&[
        "backtest",
        &bare,
        "--model",
        "static",
        "--history",
        &history(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("market: missing"), "{stderr}");
}

/// `solvent serve --forecast-history DIR`: refused on a venue that scales nothing and with
/// `--demo` (which forecasts from its own history); on a scaled venue the service starts with
/// the history read (the forecasts themselves: `crates/solvent-server/tests/forecast.rs`).
#[test]
fn serve_forecasts_from_a_history_only_on_a_scaled_venue() {
    let scratch = support::Scratch::new("serve-forecast");
    let history = path("crates/solvent-server/demo/history");
    let plain = scratch.path("plain");
    let (code, _, stderr) = run(&[
        "serve",
        "--data",
        &plain,
        "--listen",
        "127.0.0.1:0",
        "--forecast-history",
        &history,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--forecast-history: the venue scales no underlying's range"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["serve", "--demo", "--forecast-history", &history]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let (code, _, stderr) = run(&["serve", "--data", &plain, "--forecast-history-complete"]);
    assert_eq!(code, 2, "{stderr}");

    let scaled = scratch.path("scaled");
    let logs = serve_logs(&[
        "serve",
        "--data",
        &scaled,
        "--venue",
        &path("examples/vol-scaled-venue.toml"),
        "--listen",
        "127.0.0.1:0",
        "--forecast-history",
        &history,
        "--forecast-history-complete",
    ]);
    assert!(logs.contains("forecaster"), "{logs}");
}
