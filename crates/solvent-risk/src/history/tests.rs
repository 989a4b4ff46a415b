//! Tests of the history module: hand-worked formulas, named input errors, filtered-simulation
//! identities, property tests, a committed extract around the FTX collapse and the full shared
//! price files against the facts their README publishes.

use super::*;
use std::fmt::Write as _;

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

/// A spot CSV with one row per day from `start`.
fn spot_csv(start: &str, closes: &[f64]) -> String {
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    let mut day = date(start);
    for close in closes {
        writeln!(text, "{day},{close},{close},{close},{close},1.5").unwrap();
        day = day.tomorrow().unwrap();
    }
    text
}

/// A DVOL CSV (newest first, percent) with one row per day from `start`.
fn vol_csv(symbol: &str, start: &str, levels_percent: &[f64]) -> String {
    let mut rows = Vec::new();
    let mut day = date(start);
    for level in levels_percent {
        rows.push(format!("{day},{symbol},{level},{level},{level},{level}"));
        day = day.tomorrow().unwrap();
    }
    rows.reverse();
    format!("date,symbol,open,high,low,close\n{}\n", rows.join("\n"))
}

/// Deterministic closes with varying volatility: 45 calm days then turbulent ones. A longer
/// series extends a shorter one.
fn synthetic_closes(days: usize, phase: f64) -> Vec<f64> {
    let mut close = 100.0;
    let mut out = vec![close];
    for t in 1..days {
        let t = t as f64;
        let scale = if t < 45.0 { 0.01 } else { 0.04 };
        let r = scale * (1.7 * t + phase).sin() + 0.3 * scale * (0.31 * t * t).cos();
        close *= f64::exp(r);
        out.push(close);
    }
    out
}

fn spot<'a>(underlying: &'a str, text: &'a str) -> SeriesText<'a> {
    SeriesText {
        underlying,
        origin: underlying,
        text,
    }
}

const KEEP_ALL: LoadOptions = LoadOptions {
    drop_last_spot_row: false,
};

fn close_to(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1.0)
}

mod hand_worked {
    use super::*;

    #[test]
    fn ewma_recursion_on_four_returns() {
        let r = [0.01, -0.02, 0.03, -0.01];
        let l = 0.94;
        let ewma = ewma_volatility(&r, l, 2).unwrap();
        // Seed: sample variance of the first two returns. Mean -0.005, deviations +-0.015,
        // (0.015^2 + 0.015^2) / (2 - 1) = 0.00045.
        let v0 = 0.00045;
        let v1 = l * v0 + (1.0 - l) * 0.01 * 0.01; // forecast for r[1], after r[0]
        let v2 = l * v1 + (1.0 - l) * 0.02 * 0.02; // after r[1]
        let v3 = l * v2 + (1.0 - l) * 0.03 * 0.03; // after r[2]
        let v4 = l * v3 + (1.0 - l) * 0.01 * 0.01; // after r[3]: "now"
        let expected = [v0, v1, v2, v3, v4].map(f64::sqrt);
        assert_eq!(ewma.sigma().len(), 5);
        for (got, want) in ewma.sigma().iter().zip(expected) {
            assert!(close_to(*got, want, 1e-15), "{got} vs {want}");
        }
        assert!(close_to(ewma.now(), 0.020_839_552_202_482_663, 1e-12));
    }

    #[test]
    fn ewma_rejects_what_it_cannot_compute() {
        assert!(matches!(
            ewma_volatility(&[0.01, 0.02], 1.0, 2),
            Err(HistoryError::InvalidParameter { name: "lambda", .. })
        ));
        assert!(matches!(
            ewma_volatility(&[0.01, 0.02], 0.94, 1),
            Err(HistoryError::InvalidParameter {
                name: "seed_returns",
                ..
            })
        ));
        assert!(matches!(
            ewma_volatility(&[0.01], 0.94, 2),
            Err(HistoryError::TooShort { .. })
        ));
        assert!(matches!(
            ewma_volatility(&[0.01, 0.01, 0.02], 0.94, 2),
            Err(HistoryError::ZeroVariance { .. })
        ));
        assert!(matches!(
            ewma_volatility(&[0.01, f64::NAN, 0.02], 0.94, 2),
            Err(HistoryError::NotFinite { .. })
        ));
    }

    /// 40 P&Ls: three losses (-50 at index 7, -30 at index 21, -20 at index 33) and 37 gains
    /// from 1 to 37.
    fn forty_pnls() -> Vec<f64> {
        let mut gains = (1..=37).map(f64::from);
        (0..40)
            .map(|i| match i {
                7 => -50.0,
                21 => -30.0,
                33 => -20.0,
                _ => gains.next().unwrap(),
            })
            .collect()
    }

    #[test]
    fn expected_shortfall_on_forty_pnls() {
        let pnls = forty_pnls();
        // 97.5%: w = 40 * 0.025 = 1 -> the worst loss alone; VaR is the 2nd worst.
        let es = expected_shortfall(&pnls, 0.975).unwrap();
        assert_eq!(es.loss, 50.0);
        assert_eq!(es.var.loss, 30.0);
        assert_eq!(es.var.scenario, 21);
        assert_eq!(
            es.tail,
            vec![TailWeight {
                scenario: 7,
                weight: 1.0
            }]
        );
        // 95%: w = 2 -> (50 + 30) / 2 = 40; VaR is the 3rd worst, 20.
        let es = expected_shortfall(&pnls, 0.95).unwrap();
        assert!(close_to(es.loss, 40.0, 1e-15));
        assert_eq!(es.var.loss, 20.0);
        assert_eq!(es.tail.len(), 2);
        // 97%: w = 1.2 -> (50 + 0.2 * 30) / 1.2 = 46.666...; weights 1/1.2 and 0.2/1.2.
        let es = expected_shortfall(&pnls, 0.97).unwrap();
        assert!(close_to(es.loss, 56.0 / 1.2, 1e-12), "{}", es.loss);
        assert_eq!(es.var.loss, 30.0);
        assert_eq!(es.tail[0].scenario, 7);
        assert!(close_to(es.tail[0].weight, 1.0 / 1.2, 1e-12));
        assert_eq!(es.tail[1].scenario, 21);
        assert!(close_to(es.tail[1].weight, 0.2 / 1.2, 1e-12));
        // 99.5%: w = 0.2 < 1 -> the worst scenario alone with weight 1; VaR the worst loss.
        let es = expected_shortfall(&pnls, 0.995).unwrap();
        assert_eq!(es.loss, 50.0);
        assert_eq!(es.var.loss, 50.0);
        assert_eq!(es.tail.len(), 1);
        assert!(close_to(es.tail[0].weight, 1.0, 1e-12));
    }

    #[test]
    fn tail_weights_attribute_the_shortfall_to_positions() {
        let total = forty_pnls();
        // Two positions whose P&Ls add up to the total in every scenario.
        let first: Vec<f64> = total
            .iter()
            .enumerate()
            .map(|(i, p)| 0.3 * p + i as f64)
            .collect();
        let second: Vec<f64> = total.iter().zip(&first).map(|(t, f)| t - f).collect();
        let es = expected_shortfall(&total, 0.97).unwrap();
        let contribution =
            |part: &[f64]| -> f64 { es.tail.iter().map(|t| t.weight * -part[t.scenario]).sum() };
        let sum = contribution(&first) + contribution(&second);
        assert!(close_to(sum, es.loss, 1e-12), "{sum} vs {}", es.loss);
        let weights: f64 = es.tail.iter().map(|t| t.weight).sum();
        assert!(close_to(weights, 1.0, 1e-15));
    }

    #[test]
    fn var_at_99_of_250_scenarios_is_the_third_worst() {
        // w = 250 * 0.01 = 2.5 -> floor(w) + 1 = 3rd worst loss.
        let pnls: Vec<f64> = (0..250).map(|i| f64::from(i) - 10.0).collect();
        let var = value_at_risk(&pnls, 0.99).unwrap();
        assert_eq!(var.loss, 8.0);
        assert_eq!(var.scenario, 2);
        // ES = (10 + 9 + 0.5 * 8) / 2.5 = 9.2
        let es = expected_shortfall(&pnls, 0.99).unwrap();
        assert!(close_to(es.loss, 9.2, 1e-14));
    }

    #[test]
    fn tail_statistics_reject_bad_input() {
        assert!(matches!(
            value_at_risk(&[], 0.99),
            Err(HistoryError::TooShort { .. })
        ));
        assert!(matches!(
            expected_shortfall(&[1.0, f64::INFINITY], 0.99),
            Err(HistoryError::NotFinite { .. })
        ));
        assert!(matches!(
            expected_shortfall(&[1.0], 1.0),
            Err(HistoryError::InvalidParameter { name: "level", .. })
        ));
        assert!(matches!(
            value_at_risk(&[1.0], 0.0),
            Err(HistoryError::InvalidParameter { name: "level", .. })
        ));
    }

    #[test]
    fn kupiec_250_days_at_99_with_8_exceptions() {
        // p = 0.01, n = 250, x = 8, x/n = 0.032:
        // LR = -2 [242 ln 0.99 + 8 ln 0.01] + 2 [242 ln 0.968 + 8 ln 0.032]
        //    = -2 [-2.432181 - 36.841361] + 2 [-7.870633 - 27.536155]
        //    = 78.547085 - 70.813577 = 7.733508
        // p-value = P(chi2(1) > 7.7335) = erfc(sqrt(7.7335 / 2)) = 0.005420 -> rejected at 5%
        // (and in the Basel "yellow zone", 5 to 9 exceptions).
        let k = kupiec_pof(8, 250, 0.99).unwrap();
        assert_eq!(k.exceptions, 8);
        assert_eq!(k.observations, 250);
        assert!(close_to(k.expected, 2.5, 1e-12));
        assert!(
            close_to(k.likelihood_ratio, 7.733_550_724_494_52, 1e-10),
            "{k:?}"
        );
        assert!(close_to(k.p_value, 0.005_420_405_194_127_79, 1e-8), "{k:?}");
        assert!(k.reject_at_5pct);
    }

    #[test]
    fn kupiec_edge_cases_have_no_nan() {
        // No exception in 250 days at 99%: LR = -2 * 250 * ln(0.99) = 5.025168, p = 0.02498:
        // too few exceptions is rejected too.
        let none = kupiec_pof(0, 250, 0.99).unwrap();
        assert!(close_to(
            none.likelihood_ratio,
            5.025_167_926_750_726,
            1e-12
        ));
        assert!(close_to(none.p_value, 0.024_981_503_053_443_1, 1e-8));
        assert!(none.reject_at_5pct);
        // Every day an exception: LR = -2 * 10 * ln(0.01) = 92.103404, p ~ 1e-21.
        let all = kupiec_pof(10, 10, 0.99).unwrap();
        assert!(close_to(all.likelihood_ratio, -20.0 * 0.01_f64.ln(), 1e-12));
        assert!(all.p_value.is_finite() && all.p_value < 1e-15);
        assert!(all.reject_at_5pct);
        // Exactly the expected count: LR = 0, p = 1.
        let exact = kupiec_pof(1, 100, 0.99).unwrap();
        assert!(exact.likelihood_ratio.abs() < 1e-12);
        assert!(close_to(exact.p_value, 1.0, 1e-9));
        assert!(!exact.reject_at_5pct);
        assert!(matches!(
            kupiec_pof(3, 2, 0.99),
            Err(HistoryError::InvalidParameter {
                name: "exceptions",
                ..
            })
        ));
        assert!(matches!(
            kupiec_pof(0, 0, 0.99),
            Err(HistoryError::InvalidParameter {
                name: "observations",
                ..
            })
        ));
    }
}

mod parsing {
    use super::*;

    #[test]
    fn reads_spot_and_descending_percent_volatility() {
        let btc = spot_csv("2024-01-01", &[100.0, 110.0, 99.0]);
        let dvol = vol_csv("BTC", "2024-01-01", &[50.0, 55.0, 60.0]);
        let history = PriceHistory::from_texts(
            &[spot("BTC", &btc)],
            &[SeriesText {
                underlying: "BTC",
                origin: "BTC-DVOL",
                text: &dvol,
            }],
            &KEEP_ALL,
        )
        .unwrap();
        assert_eq!(history.underlyings(), ["BTC"]);
        assert_eq!(history.dates()[0], date("2024-01-01"));
        assert_eq!(history.dates().len(), 3);
        assert_eq!(history.closes(0), [100.0, 110.0, 99.0]);
        assert_eq!(history.vol_levels(0), [Some(0.5), Some(0.55), Some(0.6)]);
        let r = history.log_returns(0);
        assert_eq!(r, [(110.0_f64 / 100.0).ln(), (99.0_f64 / 110.0).ln()]);
        assert_eq!(history.close("BTC", date("2024-01-02")), Some(110.0));
        assert_eq!(history.close("ETH", date("2024-01-02")), None);
    }

    #[test]
    fn drops_the_last_spot_row_only_when_told() {
        let btc = spot_csv("2024-01-01", &[100.0, 110.0, 99.0]);
        let dropped = PriceHistory::from_texts(
            &[spot("BTC", &btc)],
            &[],
            &LoadOptions {
                drop_last_spot_row: true,
            },
        )
        .unwrap();
        assert_eq!(dropped.closes(0), [100.0, 110.0]);
        let kept = PriceHistory::from_texts(&[spot("BTC", &btc)], &[], &KEEP_ALL).unwrap();
        assert_eq!(kept.closes(0), [100.0, 110.0, 99.0]);
    }

    #[test]
    fn aligns_underlyings_on_their_shared_dates() {
        let btc = spot_csv("2024-01-01", &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let eth = spot_csv("2024-01-03", &[30.0, 40.0, 50.0, 60.0]);
        // Volatility for ETH covers only 2024-01-05 onwards within the shared run.
        let dvol = vol_csv("ETH", "2024-01-05", &[80.0, 81.0]);
        let history = PriceHistory::from_texts(
            &[spot("BTC", &btc), spot("ETH", &eth)],
            &[SeriesText {
                underlying: "ETH",
                origin: "ETH-DVOL",
                text: &dvol,
            }],
            &KEEP_ALL,
        )
        .unwrap();
        assert_eq!(
            history.dates(),
            [date("2024-01-03"), date("2024-01-04"), date("2024-01-05")]
        );
        assert_eq!(history.closes(0), [3.0, 4.0, 5.0]);
        assert_eq!(history.closes(1), [30.0, 40.0, 50.0]);
        assert_eq!(history.vol_levels(0), [None, None, None]);
        assert_eq!(history.vol_levels(1), [None, None, Some(0.8)]);
        let window = history
            .window(date("2024-01-04"), date("2024-02-01"))
            .unwrap();
        assert_eq!(window.dates(), [date("2024-01-04"), date("2024-01-05")]);
        assert_eq!(window.log_returns(1), [(50.0_f64 / 40.0).ln()]);
        assert!(matches!(
            history.window(date("2024-01-05"), date("2024-01-09")),
            Err(HistoryError::TooShort { .. })
        ));
    }

    fn load_one(text: &str) -> Result<PriceHistory, HistoryError> {
        PriceHistory::from_texts(&[spot("BTC", text)], &[], &KEEP_ALL)
    }

    #[test]
    fn missing_header_is_named() {
        assert!(matches!(
            load_one(""),
            Err(HistoryError::MissingHeader { ref origin, .. }) if origin == "BTC"
        ));
        let error = load_one("2024-01-01,1,1,1,1,1\n2024-01-02,1,1,1,1,1\n").unwrap_err();
        assert!(
            matches!(error, HistoryError::WrongHeader { line: 1, .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "BTC:1: header is `2024-01-01,1,1,1,1,1`, expected `timestamp,open,high,low,close,volume`"
        );
    }

    #[test]
    fn non_numeric_close_names_line_and_column() {
        let text =
            "timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n2024-01-02,1,1,1,abc,1\n";
        let error = load_one(text).unwrap_err();
        assert_eq!(
            error,
            HistoryError::BadNumber {
                origin: "BTC".to_owned(),
                line: 3,
                column: 5,
                name: "close",
                value: "abc".to_owned(),
            }
        );
        assert_eq!(error.to_string(), "BTC:3:5 (close): `abc` is not a number");
    }

    #[test]
    fn non_positive_and_non_finite_closes_are_named() {
        for bad in ["0", "-3", "NaN", "inf"] {
            let text = format!(
                "timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n2024-01-02,1,1,1,{bad},1\n"
            );
            assert!(
                matches!(
                    load_one(&text),
                    Err(HistoryError::NotPositive {
                        line: 3,
                        column: 5,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn gap_in_dates_names_both_dates() {
        let text = "timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n2024-01-02,1,1,1,1,1\n2024-01-05,1,1,1,1,1\n";
        let error = load_one(text).unwrap_err();
        assert_eq!(
            error,
            HistoryError::Gap {
                origin: "BTC".to_owned(),
                line: 4,
                previous: date("2024-01-02"),
                next: date("2024-01-05"),
                missing: 2,
            }
        );
        assert_eq!(
            error.to_string(),
            "BTC:4: gap in dates: 2024-01-02 is followed by 2024-01-05 (2 days missing)"
        );
    }

    #[test]
    fn descending_spot_file_is_rejected() {
        let text =
            "timestamp,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n2024-01-01,1,1,1,1,1\n";
        assert_eq!(
            load_one(text).unwrap_err(),
            HistoryError::NotAscending {
                origin: "BTC".to_owned(),
                line: 3,
                previous: date("2024-01-02"),
                date: date("2024-01-01"),
            }
        );
    }

    #[test]
    fn repeated_date_is_rejected_in_spot_and_volatility() {
        let text =
            "timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n2024-01-01,1,1,1,1,1\n";
        assert!(matches!(
            load_one(text),
            Err(HistoryError::DuplicateDate {
                line: 3,
                first_line: 2,
                ..
            })
        ));
        let btc = spot_csv("2024-01-01", &[1.0, 2.0]);
        let dvol =
            "date,symbol,open,high,low,close\n2024-01-02,BTC,1,1,1,50\n2024-01-02,BTC,1,1,1,50\n";
        let error = PriceHistory::from_texts(&[spot("BTC", &btc)], &[spot("BTC", dvol)], &KEEP_ALL)
            .unwrap_err();
        assert!(
            matches!(error, HistoryError::DuplicateDate { .. }),
            "{error}"
        );
    }

    #[test]
    fn malformed_rows_and_dates_are_named() {
        let short = "timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1\n";
        assert!(matches!(
            load_one(short),
            Err(HistoryError::Malformed { line: 2, .. })
        ));
        let bad_date = "timestamp,open,high,low,close,volume\n2024-1-01,1,1,1,1,1\n";
        assert!(matches!(
            load_one(bad_date),
            Err(HistoryError::BadDate {
                line: 2,
                column: 1,
                name: "timestamp",
                ..
            })
        ));
        let datetime = "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,1,1,1,1\n";
        assert!(matches!(
            load_one(datetime),
            Err(HistoryError::BadDate { .. })
        ));
        let header_only = "timestamp,open,high,low,close,volume\n";
        assert!(matches!(
            load_one(header_only),
            Err(HistoryError::NoRows { .. })
        ));
        let one_row = "timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n";
        assert!(matches!(
            load_one(one_row),
            Err(HistoryError::TooShort { .. })
        ));
    }

    #[test]
    fn volatility_file_checks() {
        let btc = spot_csv("2024-01-01", &[1.0, 2.0]);
        let eth_vol = vol_csv("ETH", "2024-01-01", &[50.0, 51.0]);
        let mismatch =
            PriceHistory::from_texts(&[spot("BTC", &btc)], &[spot("BTC", &eth_vol)], &KEEP_ALL);
        assert!(matches!(
            mismatch,
            Err(HistoryError::SymbolMismatch { line: 2, column: 2, ref found, .. }) if found == "ETH"
        ));
        let orphan =
            PriceHistory::from_texts(&[spot("BTC", &btc)], &[spot("ETH", &eth_vol)], &KEEP_ALL);
        assert!(matches!(orphan, Err(HistoryError::VolWithoutSpot { .. })));
        let vol_gap =
            "date,symbol,open,high,low,close\n2024-01-04,BTC,1,1,1,50\n2024-01-01,BTC,1,1,1,50\n";
        let gap =
            PriceHistory::from_texts(&[spot("BTC", &btc)], &[spot("BTC", vol_gap)], &KEEP_ALL);
        assert!(matches!(gap, Err(HistoryError::Gap { missing: 2, .. })));
    }

    #[test]
    fn inconsistent_sets_of_texts_are_rejected() {
        let a = spot_csv("2024-01-01", &[1.0, 2.0]);
        let b = spot_csv("2024-02-01", &[1.0, 2.0]);
        assert!(matches!(
            PriceHistory::from_texts(&[], &[], &KEEP_ALL),
            Err(HistoryError::NoSpot)
        ));
        assert!(matches!(
            PriceHistory::from_texts(&[spot("BTC", &a), spot("BTC", &b)], &[], &KEEP_ALL),
            Err(HistoryError::DuplicateUnderlying { kind: "spot", .. })
        ));
        assert!(matches!(
            PriceHistory::from_texts(&[spot("BTC", &a), spot("ETH", &b)], &[], &KEEP_ALL),
            Err(HistoryError::NoCommonDates { .. })
        ));
    }
}

mod filtered {
    use super::*;

    fn two_underlyings(days: usize) -> PriceHistory {
        let btc = spot_csv("2024-01-01", &synthetic_closes(days, 0.0));
        let eth = spot_csv("2024-01-01", &synthetic_closes(days, 1.0));
        let levels: Vec<f64> = (0..days)
            .map(|t| 50.0 + 10.0 * (0.9 * t as f64).sin())
            .collect();
        let dvol = vol_csv("BTC", "2024-01-01", &levels);
        PriceHistory::from_texts(
            &[spot("BTC", &btc), spot("ETH", &eth)],
            &[spot("BTC", &dvol)],
            &KEEP_ALL,
        )
        .unwrap()
    }

    #[test]
    fn price_factor_is_the_design_formula() {
        let history = two_underlyings(80);
        let params = FilteredHistoricalParams {
            horizon_days: 10,
            ..FilteredHistoricalParams::default()
        };
        let scenarios = filtered_historical_scenarios(&history, &params).unwrap();
        // 79 returns, the first 30 seed the EWMA: 49 scenarios, the oldest dated 2024-02-01.
        assert_eq!(scenarios.len(), 79 - EWMA_SEED_RETURNS);
        assert_eq!(scenarios[0].date, date("2024-02-01"));
        assert_eq!(scenarios[0].index, 30);
        for u in 0..2 {
            let r = history.log_returns(u);
            let sigma = ewma_volatility(r, 0.94, 30).unwrap().sigma().to_vec();
            let now = sigma[79];
            for scenario in &scenarios {
                let t = scenario.index;
                assert_eq!(scenario.date, history.dates()[t + 1]);
                let want = (r[t] * 10.0_f64.sqrt() * now / sigma[t]).exp();
                assert!(close_to(scenario.price_factor[u], want, 1e-14));
            }
        }
    }

    #[test]
    fn vol_factor_filters_the_index_by_its_own_ewma() {
        let history = two_underlyings(80);
        let params = FilteredHistoricalParams::default();
        let scenarios = filtered_historical_scenarios(&history, &params).unwrap();
        let levels: Vec<f64> = history.vol_levels(0).iter().map(|v| v.unwrap()).collect();
        let d: Vec<f64> = levels.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let nu = ewma_volatility(&d, 0.94, 30).unwrap().sigma().to_vec();
        for scenario in &scenarios {
            let t = scenario.index;
            let want = (d[t] * nu[79] / nu[t]).exp();
            assert!(close_to(scenario.vol_factor[0].unwrap(), want, 1e-14));
            assert_eq!(scenario.vol_factor[1], None, "no index for ETH");
        }
    }

    #[test]
    fn window_keeps_the_most_recent_scenarios() {
        let history = two_underlyings(80);
        let all =
            filtered_historical_scenarios(&history, &FilteredHistoricalParams::default()).unwrap();
        let params = FilteredHistoricalParams {
            window: Some(10),
            ..FilteredHistoricalParams::default()
        };
        let recent = filtered_historical_scenarios(&history, &params).unwrap();
        assert_eq!(recent.len(), 10);
        assert_eq!(recent[..], all[all.len() - 10..]);
        let long = FilteredHistoricalParams {
            window: Some(1000),
            ..FilteredHistoricalParams::default()
        };
        assert_eq!(filtered_historical_scenarios(&history, &long).unwrap(), all);
    }

    #[test]
    fn scenarios_as_of_a_date_ignore_later_data() {
        let short = two_underlyings(60);
        let long = two_underlyings(90);
        let params = FilteredHistoricalParams::default();
        let from_short = FilteredHistory::new(&short, &params).unwrap().scenarios();
        let as_of = FilteredHistory::new(&long, &params)
            .unwrap()
            .scenarios_as_of(59)
            .unwrap();
        assert_eq!(from_short, as_of);
        let filtered = FilteredHistory::new(&long, &params).unwrap();
        assert!(matches!(
            filtered.scenarios_as_of(30),
            Err(HistoryError::TooShort { .. })
        ));
        assert_eq!(filtered.scenarios_as_of(31).unwrap().len(), 1);
        assert!(filtered.scenarios_as_of(90).is_err());
    }

    #[test]
    fn parameters_are_validated() {
        let history = two_underlyings(80);
        for (params, name) in [
            (
                FilteredHistoricalParams {
                    lambda: 0.0,
                    ..FilteredHistoricalParams::default()
                },
                "lambda",
            ),
            (
                FilteredHistoricalParams {
                    horizon_days: 0,
                    ..FilteredHistoricalParams::default()
                },
                "horizon_days",
            ),
            (
                FilteredHistoricalParams {
                    window: Some(0),
                    ..FilteredHistoricalParams::default()
                },
                "window",
            ),
        ] {
            let error = filtered_historical_scenarios(&history, &params).unwrap_err();
            assert!(
                matches!(error, HistoryError::InvalidParameter { name: n, .. } if n == name),
                "{error}"
            );
        }
        let short = two_underlyings(31);
        assert!(matches!(
            filtered_historical_scenarios(&short, &FilteredHistoricalParams::default()),
            Err(HistoryError::TooShort { .. })
        ));
    }

    #[test]
    fn backtest_counts_exceptions_against_the_next_day() {
        let history = two_underlyings(120);
        let params = FilteredHistoricalParams::default();
        let backtest = BacktestParams {
            var_level: 0.95,
            min_scenarios: 40,
        };
        // Long one BTC: P&L = S_d * (factor - 1) and S_{d+1} - S_d.
        let closes = history.closes(0).to_vec();
        let report = var_backtest(
            &history,
            &params,
            &backtest,
            |d, scenario| closes[d] * (scenario.price_factor[0] - 1.0),
            |d| closes[d + 1] - closes[d],
        )
        .unwrap();
        // Days 70..119 are tested (30 seed + 40 scenarios).
        assert_eq!(report.days.len(), 119 - 70);
        assert_eq!(report.days[0].as_of, history.dates()[70]);
        assert_eq!(report.days[0].outcome, history.dates()[71]);
        let filtered = FilteredHistory::new(&history, &params).unwrap();
        for (offset, day) in report.days.iter().enumerate() {
            let d = 70 + offset;
            let pnls: Vec<f64> = filtered
                .scenarios_as_of(d)
                .unwrap()
                .iter()
                .map(|s| closes[d] * (s.price_factor[0] - 1.0))
                .collect();
            assert_eq!(day.var, value_at_risk(&pnls, 0.95).unwrap().loss);
            assert_eq!(day.exception, closes[d] - closes[d + 1] > day.var);
        }
        let exceptions = report.days.iter().filter(|d| d.exception).count();
        assert_eq!(report.kupiec, kupiec_pof(exceptions, 49, 0.95).unwrap());
    }

    #[test]
    fn backtest_rejects_what_it_cannot_test() {
        let history = two_underlyings(120);
        let run = |params: FilteredHistoricalParams, backtest: BacktestParams| {
            var_backtest(&history, &params, &backtest, |_, _| 0.0, |_| 0.0)
        };
        let ten_days = FilteredHistoricalParams {
            horizon_days: 10,
            ..FilteredHistoricalParams::default()
        };
        assert!(matches!(
            run(ten_days, BacktestParams::default()),
            Err(HistoryError::InvalidParameter {
                name: "horizon_days",
                ..
            })
        ));
        let small_window = FilteredHistoricalParams {
            window: Some(20),
            ..FilteredHistoricalParams::default()
        };
        assert!(matches!(
            run(small_window, BacktestParams::default()),
            Err(HistoryError::InvalidParameter { name: "window", .. })
        ));
        assert!(matches!(
            run(
                FilteredHistoricalParams::default(),
                BacktestParams::default()
            ),
            Err(HistoryError::TooShort { .. })
        ));
        let nan = var_backtest(
            &history,
            &FilteredHistoricalParams::default(),
            &BacktestParams {
                var_level: 0.99,
                min_scenarios: 10,
            },
            |_, _| 0.0,
            |_| f64::NAN,
        );
        assert!(matches!(nan, Err(HistoryError::NotFinite { .. })));
    }
}

mod correlation {
    use super::*;

    #[test]
    fn pearson_matches_the_textbook_formula() {
        // Returns of A: ln 2, ln 0.5, ln 3; of B the same doubled (B = A^2): correlation 1.
        // C = 1 / A: correlation -1. D moves otherwise.
        let a = spot_csv("2024-01-01", &[1.0, 2.0, 1.0, 3.0]);
        let b = spot_csv("2024-01-01", &[1.0, 4.0, 1.0, 9.0]);
        let c = spot_csv("2024-01-01", &[1.0, 0.5, 1.0, 1.0 / 3.0]);
        let d = spot_csv("2024-01-01", &[1.0, 1.1, 1.3, 1.2]);
        let history = PriceHistory::from_texts(
            &[spot("A", &a), spot("B", &b), spot("C", &c), spot("D", &d)],
            &[],
            &KEEP_ALL,
        )
        .unwrap();
        let m = correlation_matrix(&history, &["A", "B", "C", "D"], None).unwrap();
        assert_eq!(m.observations, 3);
        assert_eq!(m.get("A", "B"), Some(1.0));
        assert_eq!(m.get("A", "C"), Some(-1.0));
        let x = history.log_returns(0);
        let y = history.log_returns(3);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / 3.0;
        let (mx, my) = (mean(x), mean(y));
        let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
        let syy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
        assert!(close_to(
            m.get("A", "D").unwrap(),
            sxy / (sxx * syy).sqrt(),
            1e-12
        ));
        assert_eq!(m.get("D", "A"), m.get("A", "D"));
        assert_eq!(m.get("D", "D"), Some(1.0));
        assert_eq!(m.get("A", "Z"), None);
    }

    #[test]
    fn ewma_weights_recent_returns() {
        // A and B move together in the first two returns and oppositely in the last one;
        // with a small lambda the last return dominates and the correlation is negative.
        let a = spot_csv("2024-01-01", &[1.0, 1.1, 1.2, 1.3]);
        let b = spot_csv("2024-01-01", &[1.0, 1.1, 1.2, 1.1]);
        let history =
            PriceHistory::from_texts(&[spot("A", &a), spot("B", &b)], &[], &KEEP_ALL).unwrap();
        let l = 0.1;
        let m = correlation_matrix(&history, &["A", "B"], Some(l)).unwrap();
        let (x, y) = (history.log_returns(0), history.log_returns(1));
        // Zero-mean weighted moments, weights l^2, l, 1 (normalisation cancels in the ratio).
        let w = [l * l, l, 1.0];
        let s = |p: &[f64], q: &[f64]| -> f64 { (0..3).map(|t| w[t] * p[t] * q[t]).sum() };
        let want = s(x, y) / (s(x, x) * s(y, y)).sqrt();
        assert!(close_to(m.get("A", "B").unwrap(), want, 1e-12));
        assert!(want < 0.0);
    }

    #[test]
    fn bad_requests_are_named() {
        let a = spot_csv("2024-01-01", &[1.0, 1.1, 1.2]);
        let flat = spot_csv("2024-01-01", &[1.0, 1.0, 1.0]);
        let history =
            PriceHistory::from_texts(&[spot("A", &a), spot("F", &flat)], &[], &KEEP_ALL).unwrap();
        assert!(matches!(
            correlation_matrix(&history, &["A", "X"], None),
            Err(HistoryError::UnknownUnderlying { .. })
        ));
        assert!(matches!(
            correlation_matrix(&history, &["A", "A"], None),
            Err(HistoryError::InvalidParameter { .. })
        ));
        assert!(matches!(
            correlation_matrix(&history, &[], None),
            Err(HistoryError::InvalidParameter { .. })
        ));
        assert!(matches!(
            correlation_matrix(&history, &["A", "F"], None),
            Err(HistoryError::ZeroVariance { .. })
        ));
        assert!(matches!(
            correlation_matrix(&history, &["A"], Some(1.5)),
            Err(HistoryError::InvalidParameter { name: "lambda", .. })
        ));
    }
}

mod property_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn shortfall_is_at_least_var(
            pnls in prop::collection::vec(-1e6..1e6_f64, 1..300),
            level in 0.5..0.999_f64,
        ) {
            let es = expected_shortfall(&pnls, level).unwrap();
            let var = value_at_risk(&pnls, level).unwrap();
            prop_assert_eq!(es.var, var);
            prop_assert!(es.loss >= var.loss);
            let weights: f64 = es.tail.iter().map(|t| t.weight).sum();
            prop_assert!((weights - 1.0).abs() < 1e-12);
            prop_assert!(es.tail.iter().all(|t| -pnls[t.scenario] >= var.loss));
        }

        #[test]
        fn tail_statistics_scale_with_the_portfolio(
            pnls in prop::collection::vec(-1e6..1e6_f64, 1..300),
            level in 0.5..0.999_f64,
            k in 0.001..1000.0_f64,
        ) {
            let scaled: Vec<f64> = pnls.iter().map(|p| k * p).collect();
            let var = value_at_risk(&pnls, level).unwrap().loss;
            let var_k = value_at_risk(&scaled, level).unwrap().loss;
            prop_assert!((var_k - k * var).abs() <= 1e-12 * (k * var).abs().max(1e-9));
            let es = expected_shortfall(&pnls, level).unwrap().loss;
            let es_k = expected_shortfall(&scaled, level).unwrap().loss;
            let tolerance = 1e-9 * k * pnls.iter().fold(1.0_f64, |m, p| m.max(p.abs()));
            prop_assert!((es_k - k * es).abs() <= tolerance, "{} vs {}", es_k, k * es);
        }

        #[test]
        fn correlation_is_symmetric_with_unit_diagonal(
            returns in prop::collection::vec(prop::collection::vec(-0.2..0.2_f64, 3), 3..40),
            lambda in prop::option::of(0.5..0.99_f64),
        ) {
            let names = ["A", "B", "C"];
            let texts: Vec<String> = (0..3)
                .map(|u| {
                    let mut close = 100.0;
                    let mut closes = vec![close];
                    for r in &returns {
                        // Never flat: a zero-variance column has no correlation.
                        close *= (r[u] + 1e-3 * (closes.len() % 3) as f64 * (u + 1) as f64).exp();
                        closes.push(close);
                    }
                    spot_csv("2024-01-01", &closes)
                })
                .collect();
            let inputs: Vec<SeriesText<'_>> =
                names.iter().zip(&texts).map(|(n, t)| spot(n, t)).collect();
            let history = PriceHistory::from_texts(&inputs, &[], &KEEP_ALL).unwrap();
            match correlation_matrix(&history, &names, lambda) {
                Ok(m) => {
                    for i in 0..3 {
                        prop_assert_eq!(m.matrix[(i, i)], 1.0);
                        for j in 0..3 {
                            prop_assert_eq!(m.matrix[(i, j)], m.matrix[(j, i)]);
                            prop_assert!((-1.0..=1.0).contains(&m.matrix[(i, j)]));
                        }
                    }
                }
                Err(HistoryError::ZeroVariance { .. }) => {}
                Err(other) => prop_assert!(false, "{}", other),
            }
        }
    }
}

/// The committed extract around the FTX collapse and the full shared files.
mod data {
    use super::*;
    use std::path::PathBuf;

    fn read(path: PathBuf) -> String {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn extract_history() -> PriceHistory {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let name =
            |coin: &str, kind: &str| format!("{coin}-{kind}.daily.2022-10-01_2023-01-31.csv");
        let texts: Vec<(String, String)> = [
            ("BTC", "USDT.binance"),
            ("ETH", "USDT.binance"),
            ("BTC", "DVOL.deribit"),
            ("ETH", "DVOL.deribit"),
        ]
        .iter()
        .map(|(coin, kind)| (name(coin, kind), read(dir.join(name(coin, kind)))))
        .collect();
        let input = |i: usize, coin: &'static str| SeriesText {
            underlying: coin,
            origin: &texts[i].0,
            text: &texts[i].1,
        };
        PriceHistory::from_texts(
            &[input(0, "BTC"), input(1, "ETH")],
            &[input(2, "BTC"), input(3, "ETH")],
            &KEEP_ALL,
        )
        .unwrap()
    }

    #[test]
    fn extract_around_ftx() {
        let history = extract_history();
        assert_eq!(history.dates().len(), 123);
        assert_eq!(history.dates()[0], date("2022-10-01"));
        let ftx = history.date_index(date("2022-11-09")).unwrap();
        // Prices README: BTC 18547.23 -> 15922.81 (-14.15%), ETH 1334.77 -> 1102.73 (-17.38%);
        // DVOL closes 114.72 / 153.93.
        let simple = |u: usize| history.log_returns(u)[ftx - 1].exp_m1();
        assert!((simple(0) - -0.1415).abs() < 5e-5, "{}", simple(0));
        assert!((simple(1) - -0.1738).abs() < 5e-5, "{}", simple(1));
        assert!(close_to(history.vol_levels(0)[ftx].unwrap(), 1.1472, 1e-15));
        assert!(close_to(history.vol_levels(1)[ftx].unwrap(), 1.5393, 1e-15));

        // Filtered scenarios as of 2023-01-31: 122 returns - 30 seed = 92.
        let params = FilteredHistoricalParams::default();
        let filtered = FilteredHistory::new(&history, &params).unwrap();
        let scenarios = filtered.scenarios();
        assert_eq!(scenarios.len(), 92);
        // Raw, 2022-11-09 is BTC's worst day (log -0.1526, after -0.1045 on 2022-11-08). Filtered,
        // 2022-11-08 is worse: it struck a calm market (EWMA sigma 1.83%/day), while the 9th's
        // forecast (3.12%) already held the 8th's shock. With sigma_now = 2.43% (2023-01-31):
        //   2022-11-08: -0.10454 * 2.4295 / 1.8309 = -0.13872
        //   2022-11-09: -0.15257 * 2.4295 / 3.1158 = -0.11896
        // (sigmas from the recursion written out in Python over the extract).
        let worst = scenarios
            .iter()
            .min_by(|a, b| a.price_factor[0].total_cmp(&b.price_factor[0]))
            .unwrap();
        assert_eq!(worst.date, date("2022-11-08"));
        assert!((worst.price_factor[0].ln() - -0.138_721_910_262_209).abs() < 1e-12);
        let sigma = filtered.price_volatility(0).sigma();
        assert!((sigma[122] - 0.024_294_930_897_756_372).abs() < 1e-15);
        let day9 = &scenarios[ftx - 1 - EWMA_SEED_RETURNS];
        assert_eq!(day9.date, date("2022-11-09"));
        let r = (15922.81_f64 / 18547.23).ln();
        let want = (r * sigma[122] / sigma[ftx - 1]).exp();
        assert!(close_to(day9.price_factor[0], want, 1e-14));
        assert!((day9.price_factor[0].ln() - -0.118_963_139_062_168).abs() < 1e-12);
        // DVOL jumped 76.66 -> 114.72 on the 9th: its vol factor is above 1.
        assert!(day9.vol_factor[0].unwrap() > 1.0);

        // ES 97.5% of long 1 BTC + 10 ETH at the last closes: w = 92 * 0.025 = 2.3.
        let last = history.dates().len() - 1;
        let (btc, eth) = (history.closes(0)[last], history.closes(1)[last]);
        let pnls: Vec<f64> = scenarios
            .iter()
            .map(|s| btc * (s.price_factor[0] - 1.0) + 10.0 * eth * (s.price_factor[1] - 1.0))
            .collect();
        let es = expected_shortfall(&pnls, 0.975).unwrap();
        assert_eq!(es.tail.len(), 3);
        assert_eq!(scenarios[es.tail[0].scenario].date, date("2022-11-08"));
        assert!(es.loss >= es.var.loss && es.var.loss > 0.0);
        // BTC-ETH Pearson correlation of the extract's 122 daily log returns; numpy over the
        // two committed CSVs' `close` columns:
        //   np.corrcoef(np.diff(np.log(btc)), np.diff(np.log(eth)))[0, 1] -> 0.934659674810183
        let m = correlation_matrix(&history, &["BTC", "ETH"], None).unwrap();
        assert_eq!(m.observations, 122);
        let rho = m.get("BTC", "ETH").unwrap();
        assert!((rho - 0.934_659_674_810_183).abs() < 1e-12, "{rho}");
    }

    fn shared_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/prices")
    }

    const COINS: [&str; 6] = ["BTC", "ETH", "SOL", "XRP", "BNB", "DOGE"];

    /// The shared files: every coin alone (its own full range), BTC and ETH with DVOL.
    struct Shared {
        files: Vec<(String, String)>,
    }

    impl Shared {
        fn load() -> Self {
            let dir = shared_dir();
            let mut files = Vec::new();
            for coin in COINS {
                let name = format!("{coin}-USDT.binance.daily.csv");
                files.push((name.clone(), read(dir.join(&name))));
            }
            for coin in ["BTC", "ETH"] {
                let name = format!("{coin}-DVOL.deribit.daily.csv");
                files.push((name.clone(), read(dir.join(&name))));
            }
            Self { files }
        }

        fn spot(&self, coin: &'static str) -> SeriesText<'_> {
            let i = COINS.iter().position(|c| *c == coin).unwrap();
            SeriesText {
                underlying: coin,
                origin: &self.files[i].0,
                text: &self.files[i].1,
            }
        }

        fn vol(&self, coin: &'static str) -> SeriesText<'_> {
            let i = 6 + usize::from(coin == "ETH");
            SeriesText {
                underlying: coin,
                origin: &self.files[i].0,
                text: &self.files[i].1,
            }
        }

        fn history(&self, coins: &[&'static str], vols: &[&'static str]) -> PriceHistory {
            let spot: Vec<_> = coins.iter().map(|c| self.spot(c)).collect();
            let vol: Vec<_> = vols.iter().map(|c| self.vol(c)).collect();
            let options = LoadOptions {
                drop_last_spot_row: true,
            };
            PriceHistory::from_texts(&spot, &vol, &options).unwrap()
        }
    }

    /// Simple close-to-close return of `coin` on `day`, in percent.
    fn move_pct(history: &PriceHistory, day: &str) -> f64 {
        let i = history.date_index(date(day)).unwrap();
        100.0 * history.log_returns(0)[i - 1].exp_m1()
    }

    #[test]
    fn shared_files_match_their_readme() {
        let shared = Shared::load();
        // Anomaly A1 dropped: the last complete day is 2026-01-05 (3064 of 3065 rows).
        let btc = shared.history(&["BTC"], &["BTC"]);
        assert_eq!(btc.dates().len(), 3064);
        assert_eq!(*btc.dates().last().unwrap(), date("2026-01-05"));
        assert_eq!(btc.close("BTC", date("2020-03-11")), Some(7934.52));
        assert_eq!(btc.close("BTC", date("2020-03-12")), Some(4800.0));
        assert_eq!(btc.close("BTC", date("2025-10-10")), Some(112_774.5));
        assert_eq!(format!("{:.2}", move_pct(&btc, "2020-03-12")), "-39.50");
        let since_2019 = btc.window(date("2019-01-01"), date("2026-01-05")).unwrap();
        assert_eq!(since_2019.dates().len(), 2562);
        // DVOL: percent to fraction, on stress dates; no DVOL before 2021-03-24.
        let dvol = |day: &str| btc.vol_levels(0)[btc.date_index(date(day)).unwrap()];
        for (day, level) in [
            ("2022-11-09", 1.1472),
            ("2024-08-05", 0.6308),
            ("2025-10-10", 0.4411),
            ("2021-03-24", 0.9504),
        ] {
            assert!(close_to(dvol(day).unwrap(), level, 1e-15), "{day}");
        }
        assert_eq!(dvol("2021-03-23"), None);

        // The window shared by all six coins: 2020-08-11 to 2026-01-05, 1974 days.
        let all = shared.history(&COINS, &[]);
        assert_eq!(all.dates().len(), 1974);
        assert_eq!(all.dates()[0], date("2020-08-11"));
    }

    #[test]
    fn shared_files_top_five_drops_and_joint_days() {
        let shared = Shared::load();
        // Prices README, "top 5 daily close-to-close drops per coin", 2019-01-01 to 2026-01-05.
        let table: [(&'static str, [(&str, &str); 5]); 6] = [
            (
                "BTC",
                [
                    ("2020-03-12", "-39.50"),
                    ("2022-06-13", "-15.38"),
                    ("2021-05-19", "-14.38"),
                    ("2022-11-09", "-14.15"),
                    ("2019-06-27", "-13.47"),
                ],
            ),
            (
                "ETH",
                [
                    ("2020-03-12", "-44.60"),
                    ("2021-05-19", "-27.74"),
                    ("2021-01-21", "-19.32"),
                    ("2019-09-24", "-17.63"),
                    ("2022-11-09", "-17.38"),
                ],
            ),
            (
                "SOL",
                [
                    ("2022-11-09", "-42.25"),
                    ("2021-05-19", "-37.50"),
                    ("2020-09-05", "-26.20"),
                    ("2021-06-21", "-24.58"),
                    ("2022-05-11", "-23.92"),
                ],
            ),
            (
                "XRP",
                [
                    ("2020-12-23", "-41.65"),
                    ("2020-03-12", "-34.90"),
                    ("2021-05-19", "-33.49"),
                    ("2021-02-01", "-25.05"),
                    ("2021-06-21", "-21.63"),
                ],
            ),
            (
                "BNB",
                [
                    ("2020-03-12", "-44.14"),
                    ("2021-05-19", "-34.08"),
                    ("2021-02-20", "-24.05"),
                    ("2021-06-21", "-20.15"),
                    ("2022-11-09", "-18.36"),
                ],
            ),
            (
                "DOGE",
                [
                    ("2021-01-30", "-38.44"),
                    ("2021-06-21", "-36.29"),
                    ("2021-05-19", "-30.75"),
                    ("2020-03-12", "-26.34"),
                    ("2021-04-17", "-22.76"),
                ],
            ),
        ];
        for (coin, top) in table {
            let history = shared
                .history(&[coin], &[])
                .window(date("2018-12-31"), date("2026-01-05"))
                .unwrap();
            let r = history.log_returns(0);
            let mut order: Vec<usize> = (0..r.len()).collect();
            order.sort_by(|&a, &b| r[a].total_cmp(&r[b]));
            for (rank, (day, pct)) in top.iter().enumerate() {
                let i = order[rank];
                assert_eq!(history.dates()[i + 1], date(day), "{coin} #{}", rank + 1);
                assert_eq!(
                    format!("{:.2}", 100.0 * r[i].exp_m1()),
                    *pct,
                    "{coin} {day}"
                );
            }
        }
        // 2025-10-10 close-to-close, all six coins.
        for (coin, pct) in [
            ("BTC", "-7.31"),
            ("ETH", "-12.33"),
            ("SOL", "-14.71"),
            ("XRP", "-15.41"),
            ("BNB", "-12.18"),
            ("DOGE", "-22.13"),
        ] {
            let history = shared.history(&[coin], &[]);
            assert_eq!(
                format!("{:.2}", move_pct(&history, "2025-10-10")),
                pct,
                "{coin}"
            );
        }
    }

    #[test]
    fn shared_files_correlation_and_filtered_es() {
        let shared = Shared::load();
        let both = shared.history(&["BTC", "ETH"], &["BTC", "ETH"]);
        // BTC-ETH daily log-return correlation over 2019-2025: closes 2018-12-31 to 2025-12-31,
        // 2,557 returns. The expected values are numpy's over the shared CSVs' `close` columns,
        // independently of this crate's parser and of nalgebra:
        //   x, y = np.diff(np.log(btc)), np.diff(np.log(eth))
        //   np.corrcoef(x, y)[0, 1]                                  -> 0.8279342139546635
        //   w = 0.94 ** (n - 1 - np.arange(n))
        //   (w*x*y).sum() / np.sqrt((w*x*x).sum() * (w*y*y).sum())   -> 0.8620104137745438
        // (RiskMetrics EWMA: zero means; the factor (1 - l) and the normalisation cancel.)
        // Both to 1e-12: the two sums differ only in the order of their roundings.
        let years = both.window(date("2018-12-31"), date("2025-12-31")).unwrap();
        let m = correlation_matrix(&years, &["BTC", "ETH"], None).unwrap();
        assert_eq!(m.observations, 2_557);
        let rho = m.get("BTC", "ETH").unwrap();
        assert!((rho - 0.827_934_213_954_663_5).abs() < 1e-12, "{rho}");
        let ewma = correlation_matrix(&years, &["BTC", "ETH"], Some(0.94)).unwrap();
        let rho = ewma.get("BTC", "ETH").unwrap();
        assert!((rho - 0.862_010_413_774_543_8).abs() < 1e-12, "{rho}");

        // Filtered ES 97.5% of long 1 BTC, 1-day and 10-day, as of 2026-01-05.
        let params = FilteredHistoricalParams::default();
        let scenarios = filtered_historical_scenarios(&both, &params).unwrap();
        assert_eq!(scenarios.len(), 3063 - EWMA_SEED_RETURNS);
        let spot = both.closes(0)[both.dates().len() - 1];
        let pnl = |s: &HistoricalScenario| spot * (s.price_factor[0] - 1.0);
        let pnls: Vec<f64> = scenarios.iter().map(pnl).collect();
        let es_1d = expected_shortfall(&pnls, 0.975).unwrap();
        // A sane one-day ES for BTC: between 3% and 20% of the position.
        assert!(
            es_1d.loss > 0.03 * spot && es_1d.loss < 0.20 * spot,
            "{}",
            es_1d.loss
        );
        let ten = FilteredHistoricalParams {
            horizon_days: 10,
            ..params
        };
        let pnls_10d: Vec<f64> = filtered_historical_scenarios(&both, &ten)
            .unwrap()
            .iter()
            .map(pnl)
            .collect();
        let es_10d = expected_shortfall(&pnls_10d, 0.975).unwrap();
        assert!(es_10d.loss > es_1d.loss);
        // Vol factors exist from 2021-03-24 + 31 days on, and only then.
        let with_vol = scenarios
            .iter()
            .filter(|s| s.vol_factor[0].is_some())
            .count();
        let first_vol = scenarios
            .iter()
            .find(|s| s.vol_factor[0].is_some())
            .unwrap();
        assert_eq!(first_vol.date, date("2021-04-24"));
        assert_eq!(
            with_vol,
            scenarios
                .iter()
                .filter(|s| s.date >= date("2021-04-24"))
                .count()
        );
    }

    #[test]
    fn shared_files_backtest_of_long_btc() {
        let shared = Shared::load();
        let btc = shared.history(&["BTC"], &[]);
        let closes = btc.closes(0).to_vec();
        let report = var_backtest(
            &btc,
            &FilteredHistoricalParams {
                window: Some(500),
                ..FilteredHistoricalParams::default()
            },
            &BacktestParams {
                var_level: 0.99,
                min_scenarios: 250,
            },
            |d, s| closes[d] * (s.price_factor[0] - 1.0),
            |d| closes[d + 1] - closes[d],
        )
        .unwrap();
        let k = report.kupiec;
        assert_eq!(k.observations, 3064 - 1 - EWMA_SEED_RETURNS - 250);
        let rate = k.exceptions as f64 / k.observations as f64;
        // Filtered HS at 99% should see roughly 1% exceptions on BTC.
        assert!((0.005..0.02).contains(&rate), "{k:?}");
        assert!(k.likelihood_ratio.is_finite() && k.p_value.is_finite());
    }
}

mod extended {
    use super::*;

    /// Closes appended to a history give the history a file with those rows would give.
    #[test]
    fn days_appended_read_as_rows_of_the_file() {
        let closes = synthetic_closes(40, 0.3);
        let short = spot_csv("2025-01-01", &closes[..38]);
        let whole = spot_csv("2025-01-01", &closes);
        let from_file = PriceHistory::from_texts(&[spot("BTC", &whole)], &[], &KEEP_ALL).unwrap();
        let appended = PriceHistory::from_texts(&[spot("BTC", &short)], &[], &KEEP_ALL)
            .unwrap()
            .extended(
                "taken",
                &[
                    (date("2025-02-08"), vec![closes[38]]),
                    (date("2025-02-09"), vec![closes[39]]),
                ],
            )
            .unwrap();
        assert_eq!(appended, from_file);
    }

    #[test]
    fn a_gap_a_missing_close_and_a_bad_price_are_refused_by_name() {
        let history = PriceHistory::from_texts(
            &[spot("BTC", &spot_csv("2025-01-01", &[100.0, 101.0]))],
            &[],
            &KEEP_ALL,
        )
        .unwrap();
        let gap = history
            .extended("taken", &[(date("2025-01-04"), vec![102.0])])
            .unwrap_err();
        assert!(matches!(gap, HistoryError::Gap { missing: 1, .. }), "{gap}");
        let count = history
            .extended("taken", &[(date("2025-01-03"), vec![])])
            .unwrap_err();
        assert!(count.to_string().contains("closes"), "{count}");
        let bad = history
            .extended("taken", &[(date("2025-01-03"), vec![f64::NAN])])
            .unwrap_err();
        assert!(bad.to_string().starts_with("taken:1:2 (close)"), "{bad}");
    }
}
