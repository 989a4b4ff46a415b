//! End-to-end tests of `solvent venue show` and `solvent venue check`: a venue's tables printed
//! as the venue lays them out (the published figures must appear as published), and a user's
//! venue file validated with errors that name the key.

#![allow(
    clippy::expect_used,
    reason = "test harness: a failed expectation is a failed test"
)]

mod support;

use support::{Scratch, run};

/// The row of `table` whose first cell is `first`, its cells (set apart by two spaces or more)
/// trimmed.
fn row(table: &str, first: &str) -> Vec<String> {
    table
        .lines()
        .map(|line| {
            line.trim_matches(|c: char| c == '│' || c.is_whitespace())
                .split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().is_some_and(|cell| cell == first))
        .unwrap_or_else(|| panic!("no row {first} in:\n{table}"))
}

#[test]
fn show_lays_out_a_contracts_brackets_as_the_venue_does() {
    let (code, text, error) = run(&["venue", "show", "binance-usdm", "BTCUSDT"]);
    assert_eq!(code, 0, "{error}");
    // Binance BTCUSDT bracket 2: 300,000 - 800,000 notional, 100x, 0.50%, maintenance amount
    // (cum) 300 = 300,000 x (0.50% - 0.40%).
    assert_eq!(
        row(&text, "2"),
        ["2", "300,000 - 800,000", "100x", "0.50%", "300"]
    );
    // Bracket 12, the last: 1,200,000,000 - 1,800,000,000 at 1x, 50%, cum 421,482,000.
    assert_eq!(
        row(&text, "12"),
        [
            "12",
            "1,200,000,000 - 1,800,000,000",
            "1x",
            "50.00%",
            "421,482,000"
        ]
    );
    assert!(text.contains("freqtrade"), "the source is cited:\n{text}");
    insta::assert_snapshot!("venue_show_binance_btcusdt", text);
}

#[test]
fn show_lays_out_an_inverse_contracts_brackets_in_coin() {
    let (code, text, error) = run(&["venue", "show", "binance-coinm", "BTCUSD_PERP"]);
    assert_eq!(code, 0, "{error}");
    // Binance COIN-M brackets are in BTC: bracket 5, 150 - 400 BTC at 10x, 5%, cum 4.18
    // = 0.43 + 150 x (5% - 2.5%).
    assert!(text.contains("Position value (BTC)"), "{text}");
    assert_eq!(row(&text, "5"), ["5", "150 - 400", "10x", "5.00%", "4.18"]);
    assert_eq!(
        row(&text, "10"),
        ["10", "2,400 - 3,500", "1x", "50.00%", "837.93"]
    );
    assert!(text.contains("contract size 100 USD"), "{text}");
    assert!(
        text.contains("komekome898-web/trade"),
        "the source is cited:\n{text}"
    );
    // Bybit inverse: the table that stops at its first tier says so beside it.
    let (code, text, error) = run(&["venue", "show", "bybit-inverse", "BTCUSD"]);
    assert_eq!(code, 0, "{error}");
    assert_eq!(row(&text, "1"), ["1", "0 - 150", "100x", "0.50%", "0"]);
    assert_eq!(
        row(&text, "2"),
        ["2", "150 - 300", "66.67x", "1.00%", "0.75"]
    );
    assert!(text.contains("TABLE STOPS at tier 2"), "{text}");
    assert!(
        text.contains("maintenance margin on the entry value"),
        "{text}"
    );
}

#[test]
fn show_without_an_instrument_prints_collateral_contracts_and_every_rule() {
    let (code, text, error) = run(&["venue", "show", "bybit-linear"]);
    assert_eq!(code, 0, "{error}");
    // Bybit BTCUSDT tier 20: 75,000,000 - 80,000,000, 14x, 4.5%, deduction 1,482,000.
    assert_eq!(
        row(&text, "20"),
        ["20", "75,000,000 - 80,000,000", "14x", "4.50%", "1,482,000"]
    );
    assert!(
        text.contains("BTCUSDT (margin rule bybit_btcusdt, tiered)"),
        "{text}"
    );
    assert!(
        text.contains("ETHUSDT (margin rule bybit_ethusdt, tiered)"),
        "{text}"
    );
    assert!(text.contains("Margin Parameters"), "{text}");
    // Collateral: USDT counts at 100%; BTC and ETH carry no collateral table on this venue.
    assert_eq!(row(&text, "USDT"), ["USDT", "1", "> 0", "100.00%", "0.00%"]);
    assert!(text.contains("BTC, ETH"), "{text}");
    assert!(
        text.contains("maintenance margin on the entry value"),
        "{text}"
    );
    // Bybit's withdrawal rule (`withdrawal = "wallet_less_unrealised_loss"`) is named.
    assert!(
        text.contains("withdrawals keep in each coin's wallet the unrealised loss of the cross positions settled in it, and never pay out unrealised profit"),
        "{text}"
    );
}

#[test]
fn show_prints_open_ended_tiers_shared_tables_and_formula_rules() {
    let (code, text, error) = run(&["venue", "show", "hyperliquid", "BTC"]);
    assert_eq!(code, 0, "{error}");
    // Hyperliquid margin table 56: 40x to 150,000,000, then 20x without limit; mmr = 1 / (2 x
    // leverage), so the maintenance amount at the boundary is 150,000,000 x 1.25% = 1,875,000.
    assert_eq!(
        row(&text, "1"),
        ["1", "0 - 150,000,000", "40x", "1.25%", "0"]
    );
    assert_eq!(
        row(&text, "2"),
        ["2", "> 150,000,000", "20x", "2.50%", "1,875,000"]
    );

    let (code, text, error) = run(&["venue", "show", "deribit", "BTC-27DEC26-70000-C"]);
    assert_eq!(code, 0, "{error}");
    assert!(text.contains("call strike 70000"), "{text}");
    assert_eq!(row(&text, "initial base"), ["initial base", "15.00%"]);
    assert_eq!(row(&text, "initial floor"), ["initial floor", "10.00%"]);
    assert_eq!(row(&text, "maintenance"), ["maintenance", "7.50%"]);

    let (code, text, error) = run(&["venue", "show", "dydx-v4", "BTC-USD"]);
    assert_eq!(code, 0, "{error}");
    // dYdX Large-Cap: IMF 2%, maintenance fraction 60% -> MMF 1.2%, one-ppm step.
    assert_eq!(
        row(&text, "maintenance margin fraction"),
        ["maintenance margin fraction", "1.20%"]
    );
    assert_eq!(row(&text, "rate step"), ["rate step", "0.000001"]);
}

#[test]
fn show_refuses_an_unknown_instrument_naming_the_listed_ones() {
    let (code, text, error) = run(&["venue", "show", "binance-usdm", "BTCUSDC"]);
    assert_eq!(code, 2);
    assert!(text.is_empty(), "{text}");
    assert!(error.contains("unknown instrument \"BTCUSDC\""), "{error}");
    assert!(
        error.contains("listed: BNBUSDT, BTCUSDT, DOGEUSDT, ETHUSDT, SOLUSDT, XRPUSDT"),
        "{error}"
    );
}

#[test]
fn check_accepts_every_shipped_venue() {
    for name in [
        "default",
        "binance-usdm",
        "binance-coinm",
        "bybit-linear",
        "bybit-inverse",
        "deribit",
        "drift",
        "dydx-v4",
        "hyperliquid",
        "okx-swap",
        "span-16",
    ] {
        let file = support::path(&format!("venues/{name}.toml"));
        let (code, text, error) = run(&["venue", "check", &file]);
        assert_eq!(code, 0, "{name}: {error}");
        assert!(text.contains(": ok ("), "{name}: {text}");
    }
    let (_, text, _) = run(&["venue", "check", "binance-coinm"]);
    assert!(
        text.contains("13 margin rules with 112 tiers, 13 instruments"),
        "{text}"
    );
    let (_, text, _) = run(&["venue", "check", "binance-usdm"]);
    assert!(
        text.contains("6 margin rules with 65 tiers, 6 instruments"),
        "{text}"
    );
}

const LADDER: &str = r#"[venue]
name = "mine"
settlement_asset = "USDT"

[assets.USDT]
precision = 6
usd_peg = "1"

[margin_rules.ladder]
kind = "tiered"
tiers = [
  { up_to = "2000000", max_leverage = 100, mmr = "0.005" },
  { from = "2000000", up_to = "2600000", max_leverage = 90, mmr = "0.0056", deduction = "1200" },
  { from = "2600000", up_to = "3200000", max_leverage = 80, mmr = "0.0063", deduction = "3020" },
]

[instruments.BTCUSDT]
kind = "perpetual"
style = "linear"
underlying = "BTC"
settlement = "USDT"
contract_size = "1"
size_step = "0.001"
margin = "ladder"
"#;

/// `solvent venue check` on `text`: exit code, stdout, stderr.
fn check(scratch: &Scratch, text: &str) -> (i32, String, String) {
    let file = scratch.write("mine.toml", text);
    run(&["venue", "check", &file])
}

#[test]
fn show_states_the_fee_to_close_a_venue_adds_to_the_liquidation_price() {
    let scratch = Scratch::new("venue-fee");
    let with_fee = LADDER.replacen(
        "[venue]\n",
        "[venue]\nliquidation_fee_rate = \"0.00075\"\n",
        1,
    );
    assert_ne!(with_fee, LADDER, "the [venue] table must be found");
    let file = scratch.write("fee.toml", &with_fee);
    let (code, text, error) = run(&["venue", "show", &file]);
    assert_eq!(code, 0, "{error}");
    assert!(
        text.contains(
            "liquidation price of an isolated position: maintenance margin at the liquidation \
             price plus a fee to close of 0.075% of the value at that price;"
        ),
        "{text}"
    );
    // Without the key, no fee is named.
    let file = scratch.write("plain.toml", LADDER);
    let (code, text, error) = run(&["venue", "show", &file]);
    assert_eq!(code, 0, "{error}");
    assert!(!text.contains("fee to close"), "{text}");
}

#[test]
fn check_names_the_table_and_tier_of_each_problem() {
    let scratch = Scratch::new("venue-check");
    let (code, text, error) = check(&scratch, LADDER);
    assert_eq!(code, 0, "{error}");
    assert!(
        text.ends_with(
            "mine.toml: ok (mine: 1 assets, 0 collateral schedules, 1 margin rules with 3 tiers, 1 instruments, 0 series)\n"
        ),
        "{text}"
    );

    // A gap: tier 3 starts at 2,700,000 where tier 2 ended at 2,600,000.
    let (code, _, error) = check(
        &scratch,
        &LADDER.replace("from = \"2600000\"", "from = \"2700000\""),
    );
    assert_eq!(code, 2);
    assert!(
        error.contains(
            "margin_rules.ladder.tiers[2].from: tiers must be contiguous: tier 3 starts at 2700000 but tier 2 ends at 2600000"
        ),
        "{error}"
    );

    // A published deduction that does not follow from the rates: 1,200 + 2,600,000 x 0.07% = 3,020.
    let (code, _, error) = check(
        &scratch,
        &LADDER.replace("deduction = \"3020\"", "deduction = \"3000\""),
    );
    assert_eq!(code, 2);
    assert!(
        error.contains("margin_rules.ladder.tiers[2].deduction: published deduction 3000 differs"),
        "{error}"
    );
    assert!(error.contains("= 3020"), "{error}");

    // A falling rate: tier 3 at 0.55% after tier 2's 0.56% (its deduction left to the reader).
    let (code, _, error) = check(
        &scratch,
        &LADDER.replace("mmr = \"0.0063\", deduction = \"3020\"", "mmr = \"0.0055\""),
    );
    assert_eq!(code, 2);
    assert!(
        error.contains(
            "margin_rules.ladder.tiers[2].mmr: the maintenance rate falls: tier 3 has 0.0055 after tier 2's 0.0056"
        ),
        "{error}"
    );

    // Tiers that do not ascend, and a key the format does not know.
    let (code, _, error) = check(
        &scratch,
        &LADDER.replace("up_to = \"3200000\"", "up_to = \"2500000\""),
    );
    assert_eq!(code, 2);
    assert!(
        error.contains("margin_rules.ladder.tiers[2].up_to: tiers must ascend"),
        "{error}"
    );
    let (code, _, error) = check(
        &scratch,
        &LADDER.replace("mmr = \"0.005\"", "mmr = \"0.005\", cap = 1"),
    );
    assert_eq!(code, 2);
    assert!(error.contains("margin_rules.ladder.tiers[0]"), "{error}");
    assert!(error.contains("cap"), "{error}");

    // A file that does not exist.
    let (code, _, error) = run(&["venue", "check", &scratch.path("nowhere/venue.toml")]);
    assert_eq!(code, 2);
    assert!(error.contains("does not exist"), "{error}");
}

/// OKX's tiers count contracts and rate the whole position: `venue show` lays them out in OKX's
/// columns (amount in contracts, no maintenance amount) and names both conventions; the ETHUSDT
/// rows as OKX's announcement effective 2021-06-11 publishes them ("1 | 0 | 3,000 | 0.40% | 0.80%
/// | 125", "3 | 6,001 | 12,000 | 1.00% | 1.50% | 66.66").
#[test]
fn show_lays_out_okx_tiers_in_contracts_with_the_conventions_named() {
    let (code, text, error) = run(&["venue", "show", "okx-swap", "ETH-USDT-SWAP"]);
    assert_eq!(code, 0, "{error}");
    assert_eq!(row(&text, "1"), ["1", "0 - 3,000", "125x", "0.40%"]);
    assert_eq!(row(&text, "3"), ["3", "6,000 - 12,000", "66.66x", "1.00%"]);
    assert!(
        text.contains("tier by the number of contracts; maintenance margin = position value x the rate of the tier the position reaches (on the whole position, no maintenance amount)"),
        "{text}"
    );
    assert!(
        text.contains("maintenance margin at the liquidation price plus a fee to close of 0.05% of the value at that price"),
        "{text}"
    );
    assert!(
        text.contains("4402607424781"),
        "the source is cited:\n{text}"
    );
    // OKX keeps DESIGN.md 7's withdrawal rule, which the summary does not name.
    assert!(!text.contains("withdrawals keep"), "{text}");
    insta::assert_snapshot!("venue_show_okx_eth_usdt_swap", text);
    // Each contract's price tick is shown with its terms.
    assert!(text.contains(", price tick 0.01"), "{text}");
    let (code, btc, error) = run(&["venue", "show", "okx-swap", "BTC-USDT-SWAP"]);
    assert_eq!(code, 0, "{error}");
    assert!(btc.contains(", price tick 0.1"), "{btc}");
    // Bounds in contracts are not written under a position-value column.
    let (code, _, error) = run(&["venue", "show", "okx-swap", "--csv", "tiers"]);
    assert_ne!(code, 0);
    assert!(error.contains("tiers counted in contracts"), "{error}");
}
