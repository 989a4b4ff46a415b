//! Hand-worked cases, independent oracles (numpy/scipy) and invariants of the scaled ranges,
//! the GARCH fit and Christoffersen's test.

use super::backtest::{CoverageDay, CoverageParams, largest_rise, summarise};
use super::*;
use crate::history::{
    GarchParams, christoffersen, fit_garch, garch_forecasts, garch_log_likelihood, kupiec_pof,
    period_variance,
};

fn date(text: &str) -> Date {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `n + 1` consecutive days from 2024-01-01.
fn days(n: usize) -> Vec<Date> {
    let first = date("2024-01-01");
    (0..=n)
        .map(|i| {
            first
                .checked_add(jiff::Span::new().days(i as i64))
                .unwrap_or(first)
        })
        .collect()
}

fn ewma_spec(control: AntiProcyclicality) -> VolScaledRange {
    VolScaledRange {
        model: VolModel::Ewma { lambda: 0.94 },
        k: 3.0,
        floor: 0.05,
        margin_period_days: 1,
        control,
    }
}

/// 30 returns of +/-2% (the EWMA seed), then +5% and -10%.
fn seed_then_shock() -> Vec<f64> {
    let mut returns: Vec<f64> = (0..30)
        .map(|i| if i % 2 == 0 { 0.02 } else { -0.02 })
        .collect();
    returns.extend([0.05, -0.10]);
    returns
}

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

#[test]
fn ewma_range_worked_by_hand() {
    let returns = seed_then_shock();
    let path = range_path(&days(32), &returns, &ewma_spec(AntiProcyclicality::None))
        .unwrap_or_else(|e| panic!("{e}"));
    // Seed: the 30 returns have mean 0 and sum of squares 30 x 0.0004, so
    // v0 = 0.012 / 29. Thirty updates with r^2 = 0.0004 give
    // sigma^2[30] = 0.94^30 v0 + (1 - 0.94^30) 0.0004.
    let v0 = 0.012 / 29.0;
    let l30 = 0.94_f64.powi(30);
    let v30 = l30 * v0 + (1.0 - l30) * 0.0004;
    // Then +5%: sigma^2[31] = 0.94 v30 + 0.06 x 0.0025; then -10%: + 0.06 x 0.01.
    let v31 = 0.94 * v30 + 0.06 * 0.0025;
    let v32 = 0.94 * v31 + 0.06 * 0.01;
    assert_eq!(path.len(), 3, "forecasts for returns 30, 31 and 32 (now)");
    for (day, variance) in path.iter().zip([v30, v31, v32]) {
        close(day.sigma_daily, variance.sqrt(), 1e-15);
        // k = 3, h = 1 day: range = max(5%, 3 sigma).
        close(day.base, 3.0 * variance.sqrt(), 1e-15);
        close(day.range, (3.0 * variance.sqrt()).max(0.05), 1e-15);
    }
    // 3 x sqrt(v30) = 3 x 0.0200538 = 6.016%: the forecast, not the 5% floor, binds.
    close(path[0].range, 0.060_161_426_576, 1e-11);
    assert_eq!(path[0].bound, RangeBound::Forecast);
    assert_eq!(
        path[0].as_of,
        date("2024-01-31"),
        "set at the close of return 29's day"
    );
    assert_eq!(
        path[2].as_of,
        date("2024-02-02"),
        "today's range: the last close"
    );
}

#[test]
fn floor_binds_when_the_forecast_is_below_it() {
    let returns = seed_then_shock();
    let mut spec = ewma_spec(AntiProcyclicality::None);
    spec.floor = 0.08;
    let path = range_path(&days(32), &returns, &spec).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(path[0].bound, RangeBound::Floor);
    assert_eq!(path[0].range, 0.08);
}

#[test]
fn buffer_absorbs_a_rise_then_is_exhausted() {
    // Base 10%, 11%, 20%, 20%: 25% buffer rebuilt over 5 days (step 0.25 x base / 5).
    let steps = [0.10, 0.11, 0.20, 0.20];
    let mut previous = None;
    let mut out = Vec::new();
    for base in steps {
        let (value, bound) = buffered(previous, base, 0.25, 5);
        previous = Some(value);
        out.push((value, bound));
    }
    // Day 1: full buffer, 12.5%.
    close(out[0].0, 0.125, 1e-15);
    assert_eq!(out[0].1, RangeBound::BufferFull);
    // Day 2: min(12.5% + 0.25 x 11% / 5, 1.25 x 11%) = min(13.05%, 13.75%) = 13.05%.
    close(out[1].0, 0.125 + 0.25 * 0.11 / 5.0, 1e-15);
    assert_eq!(out[1].1, RangeBound::BufferPartial);
    // Day 3: the forecast jumps to 20%, above 13.05% + 1%: the buffer is used up, range = 20%.
    close(out[2].0, 0.20, 1e-15);
    assert_eq!(out[2].1, RangeBound::Forecast);
    // Day 4: rebuilt by 0.25 x 20% / 5 = 1%: 21%.
    close(out[3].0, 0.21, 1e-15);
}

#[test]
fn stressed_floor_and_weight_worked_by_hand() {
    let returns = seed_then_shock();
    let floor_spec = ewma_spec(AntiProcyclicality::StressedFloor {
        lookback_days: 3652,
    });
    let path = range_path(&days(32), &returns, &floor_spec).unwrap_or_else(|e| panic!("{e}"));
    // Today (t = 32): the sample standard deviation of all 32 returns.
    let n = 32.0;
    let sum: f64 = returns.iter().sum();
    let squares: f64 = returns.iter().map(|r| r * r).sum();
    let deviation = ((squares - sum * sum / n) / (n - 1.0)).sqrt();
    let today = path[2];
    close(today.controlled, (3.0 * deviation).max(today.base), 1e-15);

    let weight_spec = ewma_spec(AntiProcyclicality::StressedWeight {
        weight: 0.25,
        window_days: 10,
    });
    let path = range_path(&days(32), &returns, &weight_spec).unwrap_or_else(|e| panic!("{e}"));
    // Worst 10-day window by mean r^2 ends with the -10% day: (8 x 0.0004 + 0.0025 + 0.01) / 10.
    let worst: f64 = (8.0 * 0.0004 + 0.0025 + 0.01) / 10.0;
    let sigma = path[2].sigma_daily;
    let expected = 3.0 * (0.75 * sigma * sigma + 0.25 * worst.max(sigma * sigma)).sqrt();
    close(path[2].controlled, expected, 1e-15);
    assert_eq!(path[2].bound, RangeBound::StressedWeight);
}

/// Daily log returns of BTC in 2019 from the fixture (Binance closes, `tests/data`).
fn btc_2019_returns() -> Vec<f64> {
    let text = include_str!("../../tests/data/BTC-close.2019.csv");
    let closes: Vec<f64> = text
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1)?.parse().ok())
        .collect();
    closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

#[test]
fn garch_log_likelihood_matches_numpy() {
    let returns = btc_2019_returns();
    assert_eq!(returns.len(), 364);
    // numpy (oracle venv): the same recursion and sum, printed with %.17g.
    let p = GarchParams {
        omega: 1e-5,
        alpha: 0.1,
        beta: 0.85,
    };
    let ten = garch_log_likelihood(&returns[..10], &p, 0.001).unwrap_or_else(|e| panic!("{e}"));
    close(ten, 14.161_606_018_379_2, 1e-10);
    let v = returns.iter().map(|r| r * r).sum::<f64>() / 364.0;
    close(v, 0.001_274_571_624_688_773, 1e-15);
    let p = GarchParams {
        omega: 2e-5,
        alpha: 0.1,
        beta: 0.85,
    };
    let year = garch_log_likelihood(&returns, &p, v).unwrap_or_else(|e| panic!("{e}"));
    close(year, 645.309_293_168_313_3, 1e-9);
}

#[test]
fn garch_fit_matches_scipy() {
    // scipy.optimize.minimize (SLSQP, nine starts) on the same variance-targeted likelihood:
    // alpha 0.198755, beta 0.524213, log-likelihood 713.2670656879; a dense 0.01 grid agrees
    // (0.20, 0.52, 713.26632).
    let fit = fit_garch(&btc_2019_returns()).unwrap_or_else(|e| panic!("{e}"));
    close(fit.params.alpha, 0.198_755, 0.002);
    close(fit.params.beta, 0.524_213, 0.002);
    assert!(
        fit.log_likelihood <= 713.267_065_688 + 1e-9,
        "no better than the optimum"
    );
    close(fit.log_likelihood, 713.267_065_688, 1e-3);
    close(
        fit.params.omega,
        fit.initial_variance * (1.0 - fit.params.alpha - fit.params.beta),
        1e-18,
    );
}

#[test]
fn garch_forecasts_use_only_earlier_returns() {
    let returns = btc_2019_returns();
    let full = garch_forecasts(&returns, 30).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full.first, 250);
    assert_eq!(full.sigma.len(), 364 - 250 + 1);
    // Truncating the future changes no forecast made before it.
    let cut = garch_forecasts(&returns[..300], 30).unwrap_or_else(|e| panic!("{e}"));
    for (a, b) in cut.sigma.iter().zip(&full.sigma) {
        assert_eq!(a, b);
    }
    assert!(full.sigma.iter().all(|s| s.is_finite() && *s > 0.0));
}

/// GARCH's variance over a three-day period, worked by hand (Hull's term structure):
/// `omega = 1e-5`, `alpha = 0.1`, `beta = 0.8`: persistence 0.9, long-run variance
/// `V_L = 1e-5 / 0.1 = 1e-4` (1% a day). From a forecast of 4e-4 (2% a day) for tomorrow:
/// `3 V_L + (4e-4 - 1e-4)(1 + 0.9 + 0.81) = 3e-4 + 3e-4 x 2.71 = 0.001113`, below the
/// square-root-of-time `3 x 4e-4 = 0.0012` (the forecast decays towards 1% over the period);
/// from 1e-4 it is flat (`3e-4`), from 0.25e-4 it rises: `3e-4 - 0.75e-4 x 2.71 = 0.00009675`.
#[test]
fn garch_period_variance_worked_by_hand() {
    let p = GarchParams {
        omega: 1e-5,
        alpha: 0.1,
        beta: 0.8,
    };
    close(period_variance(4e-4, 3, Some(&p)), 0.001_113, 1e-15);
    close(period_variance(1e-4, 3, Some(&p)), 3e-4, 1e-15);
    close(period_variance(0.25e-4, 3, Some(&p)), 0.000_096_75, 1e-15);
    // One day is the forecast itself; EWMA (no fit) is the square-root-of-time rule.
    close(period_variance(4e-4, 1, Some(&p)), 4e-4, 1e-18);
    close(period_variance(4e-4, 3, None), 0.0012, 1e-18);
}

/// A GARCH range over ten days is `k x sqrt(V_10)` from each day's own fit (the closed form of
/// the sum, `10 V_L + (sigma^2 - V_L)(1 - phi^10) / (1 - phi)`), not `k x sigma x sqrt(10)`: on
/// BTC 2019 the forecast sits above the long-run variance on some days (the ten-day range is
/// then the narrower) and below it on others; the one-day range is `k x sigma`.
#[test]
fn garch_ranges_over_ten_days_follow_the_term_structure() {
    let returns = btc_2019_returns();
    let dates = days(returns.len());
    let spec = |h: u32| VolScaledRange {
        model: VolModel::Garch { refit_days: 30 },
        k: 3.0,
        floor: 0.0,
        margin_period_days: h,
        control: AntiProcyclicality::None,
    };
    let one = range_path(&dates, &returns, &spec(1)).unwrap_or_else(|e| panic!("{e}"));
    let ten = range_path(&dates, &returns, &spec(10)).unwrap_or_else(|e| panic!("{e}"));
    let forecasts = garch_forecasts(&returns, 30).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(forecasts.params.len(), forecasts.sigma.len());
    let mut narrower = 0;
    for (i, (a, b)) in one.iter().zip(&ten).enumerate() {
        close(a.base, 3.0 * a.sigma_daily, 1e-15);
        let p = forecasts.params[i];
        let persistence = p.alpha + p.beta;
        let long_run = p.omega / (1.0 - persistence);
        let sigma2 = b.sigma_daily * b.sigma_daily;
        // The closed form of the sum: 10 V_L + (sigma^2 - V_L)(1 - phi^10) / (1 - phi).
        let closed = 10.0 * long_run
            + (sigma2 - long_run) * (1.0 - persistence.powi(10)) / (1.0 - persistence);
        close(b.base, 3.0 * closed.sqrt(), 1e-12);
        if b.base < 3.0 * b.sigma_daily * 10f64.sqrt() {
            narrower += 1;
        }
    }
    let last = ten.last().map(|d| d.base).unwrap_or_default();
    let root_of_time = 3.0 * ten.last().map(|d| d.sigma_daily).unwrap_or_default() * 10f64.sqrt();
    assert!(
        narrower > 0 && narrower < ten.len(),
        "{narrower} of {}",
        ten.len()
    );
    assert!(
        (last - root_of_time).abs() > 1e-4,
        "{last} vs {root_of_time}"
    );
}

#[test]
fn christoffersen_worked_by_hand() {
    // 0 0 0 1 1 1 0 0 0 0: n00 = 5, n01 = 1, n10 = 1, n11 = 2.
    let sequence = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0].map(|x| x == 1);
    let result = christoffersen(&sequence, 0.99).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.transitions, [5, 1, 1, 2]);
    // pi01 = 1/6, pi11 = 2/3, pi = 3/9:
    // LR = 2 [5 ln(5/6) + ln(1/6) + ln(1/3) + 2 ln(2/3) - 6 ln(2/3) - 3 ln(1/3)].
    let ln = f64::ln;
    let expected = 2.0
        * (5.0 * ln(5.0 / 6.0) + ln(1.0 / 6.0) + ln(1.0 / 3.0) + 2.0 * ln(2.0 / 3.0)
            - 6.0 * ln(2.0 / 3.0)
            - 3.0 * ln(1.0 / 3.0));
    close(result.lr_independence, expected, 1e-12);
    close(result.lr_independence, 2.231_435_513_142_097, 1e-12);
    // scipy.stats.chi2.sf(LR, 1) and, with Kupiec's LR_pof of 3 in 10 at 99% (15.5544...),
    // chi2.sf(LR_pof + LR_ind, 2).
    close(result.p_independence, 0.135_228_157_687_065_61, 1e-12);
    close(
        result.p_conditional_coverage,
        0.000_137_355_562_851_116_66,
        1e-12,
    );
    assert!(!result.reject_independence_at_5pct);
}

#[test]
fn christoffersen_without_exceptions_has_no_nan() {
    let result = christoffersen(&[false; 50], 0.99).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.lr_independence, 0.0);
    assert!(result.p_conditional_coverage.is_finite());
    let all = christoffersen(&[true; 50], 0.99).unwrap_or_else(|e| panic!("{e}"));
    assert!(all.lr_conditional_coverage.is_finite());
    assert!(christoffersen(&[true], 0.99).is_err());
}

#[test]
fn largest_rise_is_trough_to_later_peak_within_the_window() {
    let values = [0.10, 0.08, 0.12, 0.09, 0.20, 0.05];
    // Within 2 days: 0.09 -> 0.20 (+0.11) beats 0.08 -> 0.12 (+0.04).
    assert_eq!(largest_rise(&values, 2), (3, 4));
    // Within 3 days 0.08 -> 0.20 (+0.12).
    assert_eq!(largest_rise(&values, 3), (1, 4));
    assert_eq!(largest_rise(&[0.3, 0.2, 0.1], 30), (0, 0), "nothing rises");
}

#[test]
fn scaled_grid_scales_moves_and_vol_shocks_alike() {
    let text = solvent_core::shipped::shipped("default").unwrap_or_default();
    let venue = solvent_core::venue::Venue::from_toml("default.toml", text)
        .unwrap_or_else(|e| panic!("{e}"));
    let params = venue
        .portfolio_margin
        .as_ref()
        .and_then(|pm| pm.underlyings.get("BTC"))
        .cloned()
        .unwrap_or_else(|| panic!("the default venue has a BTC grid"));
    let r0 = static_range(&params);
    let same = scaled_grid(&params, r0);
    assert_eq!(same.price_moves, params.price_moves);
    let doubled = scaled_grid(&params, 2.0 * r0);
    for (a, b) in doubled.price_moves.iter().zip(&params.price_moves) {
        close(*a, (2.0 * b).max(-0.99), 1e-15);
    }
    close(doubled.vol_shock_up, 2.0 * params.vol_shock_up, 1e-15);
    close(
        doubled.vol_shock_down,
        (2.0 * params.vol_shock_down).min(0.99),
        1e-15,
    );
    assert_eq!(doubled.price_moves.len(), params.price_moves.len());
    assert_eq!(doubled.extended_moves, params.extended_moves);
    close(
        doubled.extended_dampener,
        2.0 * params.extended_dampener,
        1e-15,
    );
}

#[test]
fn bad_input_is_a_named_error() {
    let returns = seed_then_shock();
    let mut spec = ewma_spec(AntiProcyclicality::None);
    spec.k = 0.0;
    let error = range_path(&days(32), &returns, &spec).err();
    assert!(matches!(
        error,
        Some(HistoryError::InvalidParameter { name: "k", .. })
    ));
    let error = range_path(&days(10), &returns, &ewma_spec(AntiProcyclicality::None)).err();
    assert!(matches!(
        error,
        Some(HistoryError::InvalidParameter { name: "dates", .. })
    ));
    let mut nan = returns.clone();
    nan[31] = f64::NAN;
    let error = range_path(&days(32), &nan, &ewma_spec(AntiProcyclicality::None)).err();
    assert!(matches!(error, Some(HistoryError::NotFinite { .. })));
    let short = &returns[..20];
    let error = range_path(&days(20), short, &ewma_spec(AntiProcyclicality::None)).err();
    assert!(matches!(error, Some(HistoryError::TooShort { .. })));
}

mod property_tests {
    use super::*;
    use proptest::prelude::*;

    fn controls() -> impl Strategy<Value = AntiProcyclicality> {
        prop_oneof![
            Just(AntiProcyclicality::None),
            (0.25..1.0f64, 1u32..60).prop_map(|(share, rebuild_days)| {
                AntiProcyclicality::Buffer {
                    share,
                    rebuild_days,
                }
            }),
            (2u32..4000)
                .prop_map(|lookback_days| AntiProcyclicality::StressedFloor { lookback_days }),
            (0.25..1.0f64, 1u32..400).prop_map(|(weight, window_days)| {
                AntiProcyclicality::StressedWeight {
                    weight,
                    window_days,
                }
            }),
        ]
    }

    proptest! {
        /// range >= floor, range >= the controlled value >= the forecast's base, all finite.
        #[test]
        fn range_is_never_below_floor_or_forecast(
            returns in prop::collection::vec(-0.5..0.5f64, 32..300),
            floor in 0.0..0.5f64,
            k in 0.5..6.0f64,
            lambda in 0.5..0.999f64,
            garch in any::<bool>(),
            period in 1u32..10,
            control in controls(),
        ) {
            prop_assume!(returns[..30].iter().any(|r| (r - returns[0]).abs() > 1e-9));
            let garch = garch && returns.len() > 250;
            let spec = VolScaledRange {
                model: if garch {
                    VolModel::Garch { refit_days: 20 }
                } else {
                    VolModel::Ewma { lambda }
                },
                k,
                floor,
                margin_period_days: period,
                control,
            };
            let path = range_path(&days(returns.len()), &returns, &spec)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for day in &path {
                prop_assert!(day.range.is_finite());
                prop_assert!(day.range >= floor);
                prop_assert!(day.range >= day.controlled);
                prop_assert!(day.controlled >= day.base * (1.0 - 1e-12));
            }
        }

        /// The buffer keeps the range within [base, (1 + b) base] and never lets it rise by
        /// more than the forecast itself rose, beyond the rebuild step `b x base / n`.
        #[test]
        fn buffer_never_lets_margin_rise_more_than_the_control_allows(
            bases in prop::collection::vec(0.01..1.0f64, 2..200),
            share in 0.25..1.0f64,
            rebuild_days in 1u32..60,
        ) {
            let mut previous: Option<(f64, f64)> = None;
            for base in bases {
                let (value, _) = buffered(previous.map(|p| p.1), base, share, rebuild_days);
                prop_assert!(value >= base && value <= (1.0 + share) * base * (1.0 + 1e-12));
                if let Some((previous_base, previous_value)) = previous {
                    let rise = value - previous_value;
                    let allowed = (base - previous_base).max(share * base / f64::from(rebuild_days));
                    prop_assert!(rise <= allowed + 1e-12, "rise {rise} above {allowed}");
                }
                previous = Some((base, value));
            }
        }
    }
}

#[test]
fn static_model_backtest_on_the_ftx_extract() {
    use super::backtest::{CoverageParams, MarginModel, backtest_model};
    use crate::history::{LoadOptions, PriceHistory, SeriesText};
    let text = include_str!("../../tests/data/BTC-USDT.binance.daily.2022-10-01_2023-01-31.csv");
    let history = PriceHistory::from_texts(
        &[SeriesText {
            underlying: "BTC",
            origin: "btc.csv",
            text,
        }],
        &[],
        &LoadOptions {
            drop_last_spot_row: false,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let params = CoverageParams {
        level: 0.99,
        margin_period_days: 1,
        rise_window_days: 30,
        start: None,
    };
    let result = backtest_model(
        &history,
        "BTC",
        &MarginModel::Static { range: 0.03 },
        &params,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Counted in Python from the same file: 122 daily moves, 19 beyond 3%, among them
    // 2022-11-08 -9.93%, 2022-11-09 -14.15%, 2022-11-10 +10.54%; transitions [91, 11, 11, 8].
    assert_eq!(result.days.len(), 122);
    assert_eq!(result.exceedances, 19);
    assert_eq!(result.christoffersen.transitions, [91, 11, 11, 8]);
    let ftx = result
        .days
        .iter()
        .find(|d| d.outcome == date("2022-11-09"))
        .unwrap_or_else(|| panic!("no 2022-11-09"));
    close(ftx.realised, 15_922.81 / 18_547.23 - 1.0, 1e-15);
    assert!(ftx.exceeded);
    assert_eq!(
        result.procyclicality.rise, 0.0,
        "a static range never rises"
    );
    // Eight exceedances follow an exceedance: clustering, which Christoffersen rejects.
    assert!(result.christoffersen.reject_independence_at_5pct);
}

#[test]
fn overlapping_periods_are_tested_on_non_overlapping_subsamples() {
    // Two-day periods set every day: a two-day move beyond the range shows in the period set
    // the day before it and the one set on its first day, so exceedances come in pairs. 1,000
    // days, a pair every 100 days starting at day 50 (20 exceedances, 20 expected at 99%).
    let start = jiff::civil::date(2020, 1, 1);
    let days: Vec<CoverageDay> = (0..1000_i64)
        .map(|i| {
            let exceeded = i % 100 == 50 || i % 100 == 51;
            CoverageDay {
                as_of: start + jiff::Span::new().days(i),
                outcome: start + jiff::Span::new().days(i + 2),
                range: 0.1,
                sigma_daily: None,
                bound: None,
                realised: if exceeded { 0.2 } else { 0.0 },
                exceeded,
            }
        })
        .collect();
    let params = |margin_period_days| CoverageParams {
        level: 0.99,
        margin_period_days,
        rise_window_days: 30,
        start: None,
    };
    // Taken as independent trials, the pairs reject independence outright.
    let naive = summarise(days.clone(), &params(1), "BTC").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(naive.subsamples, 1);
    assert!(
        naive.christoffersen.p_independence < 1e-6,
        "{:?}",
        naive.christoffersen
    );
    // Every other day: each subsample holds one of each pair (10 in 500, 5 expected) and no
    // run of exceedances.
    let split = summarise(days, &params(2), "BTC").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(split.subsamples, 2);
    assert_eq!(split.exceedances, 20);
    assert_eq!(
        (split.kupiec.exceptions, split.kupiec.observations),
        (20, 1000)
    );
    close(split.kupiec.expected, 10.0, 1e-9);
    // Both subsamples alike: 10 in 500, 499 transitions: n00 = 479, n01 = n10 = 10, n11 = 0.
    let one = kupiec_pof(10, 500, 0.99).unwrap_or_else(|e| panic!("{e}"));
    close(split.kupiec.likelihood_ratio, one.likelihood_ratio, 1e-12);
    close(split.kupiec.p_value, (2.0 * one.p_value).min(1.0), 1e-12);
    let sequence: Vec<bool> = (0..500).map(|i| i % 50 == 25).collect();
    let alone = christoffersen(&sequence, 0.99).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(alone.transitions, [479, 10, 10, 0]);
    assert_eq!(split.christoffersen.transitions, [958, 20, 20, 0]);
    close(
        split.christoffersen.p_independence,
        (2.0 * alone.p_independence).min(1.0),
        1e-12,
    );
    assert!(!split.christoffersen.reject_independence_at_5pct);
    // Too few days for two per subsample.
    let short: Vec<CoverageDay> = Vec::new();
    assert!(summarise(short, &params(2), "BTC").is_err());
}
