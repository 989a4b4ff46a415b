//! The plots (issue 16 item 6): a golden SVG per plot, and what each must show: ticks grouped
//! with no spurious decimals, titles naming the account, its margin model and the venue, today's
//! point and the liquidation point marked, a cascade's rounds labelled once each.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod support;

use support::{Scratch, path, run};

/// The texts of an SVG document, in order.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|part| {
            let body = part.split_once('>')?.1;
            Some(body.split_once("</text>")?.0.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_stress_plot_marks_today_and_the_liquidating_move() {
    let scratch = Scratch::new("plot-stress");
    let plot = scratch.path("stress.svg");
    let portfolio = path("examples/deribit-btc-inverse.json");
    let (code, _, stderr) = run(&["stress", &portfolio, "--venue", "deribit", "--plot", &plot]);
    assert_eq!(code, 0, "{stderr}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    let texts = texts(&svg);
    assert_eq!(
        texts[0],
        "deribit-btc-1 (cross margin on Deribit): P&amp;L against a joint move of BTC"
    );
    // The x ticks every 20%, whole; the y ticks in BTC every 5, whole.
    for tick in ["-40%", "-20%", "0%", "20%", "40%", "-25", "-10", "5"] {
        assert!(
            texts.iter().any(|t| t == tick),
            "no tick {tick} in {texts:?}"
        );
    }
    assert!(!texts.iter().any(|t| t.ends_with(".0")), "{texts:?}");
    // Today, and the reverse stress's fall, -10.46% (tests/display_and_checks.rs).
    assert!(texts.iter().any(|t| t == "today"));
    assert!(
        texts.iter().any(|t| t == "liquidation -10.46%"),
        "{texts:?}"
    );
    // The margin lines dashed, the P&L solid.
    assert!(svg.contains("stroke=\"#FF0000\""));
    insta::assert_snapshot!("stress_plot_deribit_btc_inverse", svg);
}

#[test]
fn the_cascade_plot_labels_each_round_once() {
    let scratch = Scratch::new("plot-cascade");
    let accounts = scratch.path("accounts.jsonl");
    let plot = scratch.path("cascade.svg");
    let (code, _, stderr) = run(&[
        "population",
        "--accounts",
        "200",
        "--seed",
        "3",
        "--out",
        &accounts,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(&[
        "cascade",
        &accounts,
        "--shock",
        "BTC:-0.2,ETH:-0.1",
        "--plot",
        &plot,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    let texts = texts(&svg);
    assert_eq!(
        texts[0],
        "Liquidation cascade: 200 accounts on Solvent default, shock BTC -20%, ETH -10%"
    );
    // Rounds 0 to 5 on each panel's axis, each once: no -0, no repeated or fractional round
    // (between the two panels' rounds, the volume axis's 0).
    let rounds: Vec<&String> = texts
        .iter()
        .filter(|t| t.len() == 1 && t.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(
        rounds,
        [
            "0", "1", "2", "3", "4", "5", "0", "0", "1", "2", "3", "4", "5"
        ]
    );
    assert!(!texts.iter().any(|t| t == "-0"), "{texts:?}");
    // Price ticks in whole percent, volume ticks grouped in million USD.
    for tick in ["-20%", "-10%", "0%", "100", "400"] {
        assert!(
            texts.iter().any(|t| t == tick),
            "no tick {tick} in {texts:?}"
        );
    }
    insta::assert_snapshot!("cascade_plot_two_underlyings", svg);
}
