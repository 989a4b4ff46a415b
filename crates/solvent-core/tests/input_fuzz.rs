//! Bad input, finished (issue 9 item 6): the portfolio, market, venue and scenario loaders fed
//! the shipped files mutated at random and random text. Every outcome is a value or an
//! [`InputError`] naming the file, a field (or line) and the problem; never a panic. The bugs a
//! fuzz of the command line found are pinned by the regression tests named after them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation is a failed test"
)]

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::Config;
use solvent_core::InputError;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::shock::read_shocks;
use solvent_core::venue::Venue;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/solvent-core sits two levels below the workspace root")
        .to_path_buf()
}

fn shipped(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).expect("a shipped file")
}

fn default_venue() -> Venue {
    Venue::from_toml("default.toml", &shipped("venues/default.toml")).unwrap()
}

/// The portfolio examples (the market snapshot is a market file, not a portfolio).
const PORTFOLIOS: [&str; 9] = [
    "examples/binance-6000-btc.json",
    "examples/btc-desk.json",
    "examples/deribit-btc-inverse.json",
    "examples/deribit-usdc-perp-25btc.json",
    "examples/drift-borrowed-usdt.json",
    "examples/isolated-btcusdt.json",
    "examples/margin-call.json",
    "examples/reduce-only.json",
    "examples/btc-desk.json",
];

const VENUES: [&str; 11] = [
    "venues/binance-coinm.toml",
    "venues/binance-usdm.toml",
    "venues/bybit-inverse.toml",
    "venues/bybit-linear.toml",
    "venues/default.toml",
    "venues/deribit.toml",
    "venues/drift.toml",
    "venues/dydx-v4.toml",
    "venues/hyperliquid.toml",
    "venues/okx-swap.toml",
    "venues/span-16.toml",
];

/// An error names its file, a place in it and a problem.
fn assert_named(error: &InputError, file: &str) {
    assert_eq!(error.file, file, "{error}");
    assert!(!error.path.trim().is_empty(), "no field named: {error}");
    assert!(
        !error.problem.trim().is_empty(),
        "no problem stated: {error}"
    );
}

/// Values a fuzzer of numbers tries: extremes, degenerate spellings and the ones that broke.
const NUMBERS: [&str; 22] = [
    "0",
    "-0",
    "-1",
    "1_000",
    "+5",
    "1.",
    ".5",
    "1e5",
    "NaN",
    "inf",
    "0.0000000000000000000000000001",
    "0.000000000001",
    "0.0000000000001",
    "1000000000000",
    "1000000000000.1",
    "999999999999999",
    "1000000000000001",
    "79228162514264337593543950335",
    "-79228162514264337593543950335",
    "123456789012.123456789012345",
    "",
    " 12 ",
];

/// A mutation of a text: an edit at a byte, a number swapped for an extreme one, or text after
/// the end.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the `n`-th (modulo their count) quoted number by one of [`NUMBERS`].
    Number(usize, usize),
    /// Replace the byte at a position (modulo the length) by a character.
    Byte(usize, char),
    /// Delete a range of bytes.
    Delete(usize, usize),
    /// Append text.
    Append(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..NUMBERS.len()).prop_map(|(n, v)| Mutation::Number(n, v)),
        2 => (any::<usize>(), any::<char>()).prop_map(|(at, c)| Mutation::Byte(at, c)),
        1 => (any::<usize>(), 1_usize..12).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => "[ -~]{1,12}".prop_map(Mutation::Append),
    ]
}

/// Spans of decimal numbers written in the text (quoted or bare).
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_digit() {
            let start = index;
            while index < bytes.len() && (bytes[index].is_ascii_digit() || bytes[index] == b'.') {
                index += 1;
            }
            spans.push((start, index));
        } else {
            index += 1;
        }
    }
    spans
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut text = text.to_owned();
    for mutation in mutations {
        match mutation {
            Mutation::Number(n, value) => {
                let spans = number_spans(&text);
                if let Some(&(start, end)) = spans.get(n % spans.len().max(1)) {
                    text.replace_range(start..end, NUMBERS[*value]);
                }
            }
            Mutation::Byte(at, c) => {
                if !text.is_empty() {
                    let mut at = at % text.len();
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    let end = text[at..]
                        .chars()
                        .next()
                        .map_or(at, |old| at + old.len_utf8());
                    text.replace_range(at..end, &c.to_string());
                }
            }
            Mutation::Delete(at, n) => {
                if !text.is_empty() {
                    let mut start = at % text.len();
                    while !text.is_char_boundary(start) {
                        start -= 1;
                    }
                    let mut end = (start + n).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(start..end, "");
                }
            }
            Mutation::Append(tail) => text.push_str(tail),
        }
    }
    text
}

proptest! {
    #![proptest_config(Config { cases: 96, failure_persistence: None, ..Config::default() })]

    #[test]
    fn mutated_portfolios_load_or_name_the_field(
        example in 0..PORTFOLIOS.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let venue = default_venue();
        let text = apply(&shipped(PORTFOLIOS[example]), &mutations);
        if let Err(error) = Portfolio::from_json("p.json", &text, &venue) {
            assert_named(&error, "p.json");
        }
    }

    #[test]
    fn mutated_markets_load_or_name_the_field(
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let text = apply(&shipped("examples/market-2026-01-06.json"), &mutations);
        if let Err(error) = Market::from_json("m.json", &text) {
            assert_named(&error, "m.json");
        }
    }

    #[test]
    fn mutated_venues_load_or_name_the_field(
        venue in 0..VENUES.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let text = apply(&shipped(VENUES[venue]), &mutations);
        if let Err(error) = Venue::from_toml("v.toml", &text) {
            assert_named(&error, "v.toml");
        }
    }

    #[test]
    fn mutated_scenarios_load_or_name_the_field(
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let text = apply(&shipped("scenarios/historical-days.json"), &mutations);
        if let Err(error) = read_shocks("s.json", &text) {
            assert_named(&error, "s.json");
        }
    }

    #[test]
    fn random_text_is_an_error_naming_the_file(text in "\\PC{0,64}") {
        let venue = default_venue();
        if let Err(error) = Portfolio::from_json("p.json", &text, &venue) {
            assert_named(&error, "p.json");
        }
        if let Err(error) = Market::from_json("m.json", &text) {
            assert_named(&error, "m.json");
        }
        if let Err(error) = Venue::from_toml("v.toml", &text) {
            assert_named(&error, "v.toml");
        }
        if let Err(error) = read_shocks("s.json", &text) {
            assert_named(&error, "s.json");
        }
    }
}

// ---- regressions: each named after the bug it pins -------------------------------------------

const MARKET: &str = r#"{"timestamp":"2026-06-01T08:00:00Z","index":{"BTC":"100000","USDT":"1"}}"#;

fn portfolio(positions: &str, market: &str) -> String {
    format!(
        r#"{{"account":"a","mode":"cross","collateral":{{"USDT":"1000"}},"positions":[{positions}],"market":{market}}}"#
    )
}

#[test]
fn text_after_the_json_document_is_refused() {
    let venue = default_venue();
    let text = portfolio("", MARKET) + " garbage";
    let error = Portfolio::from_json("p.json", &text, &venue).unwrap_err();
    assert_named(&error, "p.json");
    assert!(error.path.starts_with("line 1 column"), "{error}");
    assert!(error.problem.contains("after the end"), "{error}");
    let second = Market::from_json("m.json", &format!("{MARKET}\n{MARKET}")).unwrap_err();
    assert_eq!(second.path, "line 2 column 1", "{second}");
    let scenarios = read_shocks(
        "s.json",
        r#"{"scenarios":[{"name":"x","price_moves":{}}]} ]"#,
    )
    .unwrap_err();
    assert!(scenarios.problem.contains("after the end"), "{scenarios}");
}

#[test]
fn numbers_written_with_underscores_are_refused() {
    let venue = default_venue();
    let text = portfolio(
        r#"{"instrument":"BTCUSDT","size":"1_000","entry_price":"60000"}"#,
        MARKET,
    );
    let error = Portfolio::from_json("p.json", &text, &venue).unwrap_err();
    assert_eq!(error.path, "positions[0].size", "{error}");
    assert!(error.problem.contains("1_000"), "{error}");
    for spelling in ["+5", "1.", ".5", "1_0.5", "--1"] {
        assert!(
            spelling.parse::<solvent_core::money::Amount>().is_err(),
            "{spelling} is accepted"
        );
    }
}

#[test]
fn near_zero_and_huge_prices_are_refused_with_the_field() {
    for (price, field) in [
        ("0.0000000000000000000000000001", "market.index.BTC"),
        ("0.0000000000001", "market.index.BTC"),
        ("1000000000001", "market.index.BTC"),
    ] {
        let market =
            format!(r#"{{"timestamp":"2026-06-01T08:00:00Z","index":{{"BTC":"{price}"}}}}"#);
        let error =
            Portfolio::from_json("p.json", &portfolio("", &market), &default_venue()).unwrap_err();
        assert_eq!(error.path, field, "{error}");
    }
    // The smallest accepted price is accepted.
    assert!(
        "0.000000000001"
            .parse::<solvent_core::money::Price>()
            .is_ok()
    );
}

#[test]
fn leverage_without_bounds_is_refused() {
    for leverage in [
        "\"0.00000000000000000001\"",
        "0",
        "\"0.5\"",
        "1001",
        "\"1e3\"",
    ] {
        let text = portfolio(
            &format!(
                r#"{{"instrument":"BTCUSDT","size":"1","entry_price":"60000","leverage":{leverage}}}"#
            ),
            MARKET,
        );
        let error = Portfolio::from_json("p.json", &text, &default_venue()).unwrap_err();
        assert_eq!(error.path, "positions[0].leverage", "{leverage}: {error}");
    }
}

#[test]
fn pegs_leverage_bounds_and_thresholds_of_a_venue_are_bounded() {
    let base = shipped("venues/default.toml");
    let cases = [
        (
            base.replacen(
                "usd_peg = \"1\"",
                "usd_peg = \"0.0000000000000000000001\"",
                1,
            ),
            ".usd_peg",
        ),
        (
            base.replacen("usd_peg = \"1\"", "usd_peg = \"10000000000000\"", 1),
            ".usd_peg",
        ),
        (
            base.replacen(
                "name = \"",
                "margin_call_health = \"1000\"\nreduce_only_health = \"2\"\nname = \"",
                1,
            ),
            "venue.margin_call_health",
        ),
    ];
    for (text, field) in cases {
        let error = Venue::from_toml("v.toml", &text).unwrap_err();
        assert!(error.path.ends_with(field), "{field}: {error}");
    }
}

#[test]
fn near_zero_volatility_is_refused() {
    let market = r#"{"timestamp":"2026-06-01T08:00:00Z","index":{"BTC":"1"},
        "vol":{"BTC":{"27DEC26":{"strikes":[100000],"vols":[1e-300]}}}}"#;
    let error = Market::from_json("m.json", market).unwrap_err();
    assert_eq!(error.path, "vol.BTC.27DEC26", "{error}");
    assert!(error.problem.starts_with("vols[0]"), "{error}");
    let strike = market
        .replace("[100000]", "[1e300]")
        .replace("1e-300", "0.5");
    let error = Market::from_json("m.json", &strike).unwrap_err();
    assert!(error.problem.starts_with("strikes[0]"), "{error}");
}

#[test]
fn a_position_listed_twice_names_both_entries() {
    let position = r#"{"instrument":"BTCUSDT","size":"1","entry_price":"60000"}"#;
    let other = r#"{"instrument":"ETHUSDT","size":"1","entry_price":"3000"}"#;
    let text = portfolio(&format!("{position},{other},{position}"), MARKET);
    let error = Portfolio::from_json("p.json", &text, &default_venue()).unwrap_err();
    assert_eq!(error.path, "positions[2].instrument", "{error}");
    assert!(error.problem.contains("positions[0]"), "{error}");
}

/// Validation used to scan every earlier position for each one (200,000 positions: 107 s). Not a
/// timing test: it checks that a large portfolio of distinct positions validates, which the
/// linear check does in well under a second even in debug.
#[test]
fn validating_a_portfolio_is_linear_in_its_positions() {
    let positions: Vec<String> = (0..20_000)
        .map(|index| {
            format!(
                r#"{{"instrument":"BTC-27DEC26-{}-C","size":"1","entry_price":"0.01"}}"#,
                1000 + index * 5
            )
        })
        .collect();
    let text = portfolio(&positions.join(","), MARKET);
    let portfolio = Portfolio::from_json("p.json", &text, &default_venue()).unwrap();
    assert_eq!(portfolio.positions.len(), 20_000);
}

/// Found by the scenario fuzz: a blank key at the top level (`{" ": 1}`) was reported with a
/// blank path; the path now quotes it.
#[test]
fn a_blank_key_is_named_quoted() {
    let Err(error) = read_shocks("s.json", r#"{" ": 1}"#) else {
        panic!("a blank key must be refused");
    };
    assert_named(&error, "s.json");
    assert_eq!(error.path, r#"" ""#, "{error}");
}
