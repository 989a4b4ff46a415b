//! Volatility-scaled ranges in the engine (docs/vol-scaled-ranges.md): a `scenario_range` event
//! installs the range the edge forecast, the engine margins portfolio accounts on the scaled
//! grid from that event on, re-examines the accounts holding the underlying, and keeps the range
//! in its state, its snapshot and its hash.
//!
//! One portfolio-mode account on `examples/vol-scaled-venue.toml` (BTC: EWMA, a 25% buffer, floor
//! 4%): 20,000 USDT, long 2 BTCUSDT at 92,000, BTC's index 92,000. Its maintenance margin is the
//! BTC scan, `2 x 92,000 x range` (the worst scenario is the grid's largest fall, which the range
//! is), plus 300.304613 USDT of add-ons the range does not scale (the same on every grid below:
//! measured as `MM - scan` on the static grid and on each scaled one). The range of 2026-01-05 is
//! what `solvent forecast` makes from the shared history (5.6955%).
#![allow(clippy::unwrap_used, reason = "tests")]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{Effect, RejectReason};
use solvent_engine::event::parse_line;
use solvent_risk::AccountState;

const VENUE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/vol-scaled-venue.toml"
);

/// The range of 2026-01-05 (`solvent forecast --venue examples/vol-scaled-venue.toml --history
/// ../shared/data/prices`).
const RANGE_2026_01_05: &str = r#""type":"scenario_range","underlying":"BTC","as_of":"2026-01-05","model":"ewma","control":"buffer","sigma_daily":"0.015819448100447976","base":"0.04745834430134393","range":"0.05695504057259702","bound":"buffer_partial""#;

/// A forecast of 2026-01-06 that doubled: range 8% (the buffer used up).
const RANGE_2026_01_06: &str = r#""type":"scenario_range","underlying":"BTC","as_of":"2026-01-06","model":"ewma","control":"buffer","sigma_daily":"0.026666666666666668","base":"0.08","range":"0.08","bound":"forecast""#;

/// The add-ons the range does not scale.
const ADD_ONS: Decimal = dec!(300.304613);

fn venue() -> Venue {
    Venue::from_toml(VENUE, &std::fs::read_to_string(VENUE).unwrap()).unwrap()
}

fn engine() -> Engine {
    Engine::new(venue(), EngineConfig::default())
}

/// The event `body` as sequence `seq` at `ts`.
fn line(seq: usize, ts: &str, body: &str) -> String {
    format!(r#"{{"seq":{seq},"ts":"{ts}",{body}}}"#)
}

/// The opening: BTC's index, the deposit, portfolio mode (no position yet).
fn opening() -> Vec<String> {
    vec![
        line(
            1,
            "2026-01-05T00:00:00Z",
            r#""type":"index_price","underlying":"BTC","price":"92000""#,
        ),
        line(
            2,
            "2026-01-05T00:00:01Z",
            r#""type":"deposit","account":"pm","asset":"USDT","amount":"20000""#,
        ),
        line(
            3,
            "2026-01-05T00:00:02Z",
            r#""type":"set_margin_mode","account":"pm","mode":"portfolio""#,
        ),
    ]
}

const FILL: &str = r#""type":"fill","account":"pm","instrument":"BTCUSDT","side":"buy","size":"2","price":"92000","counterparty":"external""#;

/// The opening, the range of 2026-01-05, the fill, and the range of 2026-01-06.
fn stream() -> Vec<String> {
    let mut lines = opening();
    lines.push(line(4, "2026-01-06T00:00:00Z", RANGE_2026_01_05));
    lines.push(line(5, "2026-01-06T00:00:03Z", FILL));
    lines.push(line(6, "2026-01-07T00:00:00Z", RANGE_2026_01_06));
    lines
}

fn apply(engine: &mut Engine, number: usize, text: &str) -> Vec<Effect> {
    engine.apply(&parse_line("test", number, text).unwrap())
}

fn apply_all(engine: &mut Engine, lines: &[String]) -> Vec<Vec<Effect>> {
    lines
        .iter()
        .enumerate()
        .map(|(n, text)| apply(engine, n + 1, text))
        .collect()
}

/// Whether pm's report warns that a scaled underlying is margined on the static grid.
fn scaling_warned(engine: &Engine) -> bool {
    engine
        .margin_report("pm")
        .unwrap()
        .warnings
        .iter()
        .any(|w| w.contains("no scenario_range event"))
}

fn maintenance(engine: &Engine) -> Decimal {
    engine
        .margin_report("pm")
        .unwrap()
        .maintenance_margin
        .value()
}

/// `2 x 92,000 x range + add-ons`, the requirement rounded up to USDT's 6 decimals.
fn expected_maintenance(range: f64) -> f64 {
    2.0 * 92_000.0 * range + 300.304613
}

#[test]
fn a_forecast_rise_takes_a_portfolio_account_into_margin_call_at_that_event() {
    let mut engine = engine();
    let effects = apply_all(&mut engine, &stream());
    // On the range of 2026-01-05: MM = 2 x 92,000 x 5.6955% + 300.30 = 10,780.03, health
    // 20,000 / 10,780.03 = 1.855: healthy (margin call at 1.5).
    let at_fill = effects[4]
        .iter()
        .find_map(|e| match e {
            Effect::AccountUpdated {
                maintenance_margin,
                health,
                state,
                ..
            } => Some((maintenance_margin.value(), *health, *state)),
            _ => None,
        })
        .unwrap();
    assert_eq!(at_fill.0, dec!(10780.032079));
    assert!((expected_maintenance(0.056_955_040_572_597_02) - 10_780.032_079).abs() < 1e-6);
    assert_eq!(at_fill.2, AccountState::Healthy);
    // The forecast of 2026-01-06 doubles the range to 8%: MM = 2 x 92,000 x 8% + 300.30 =
    // 15,020.30, health 20,000 / 15,020.30 = 1.3315: margin call, at that event (no price
    // moved); the equity still covers IM, so the call asks for no deposit.
    let rise = &effects[5];
    assert!(
        rise.contains(&Effect::StateChanged {
            account: "pm".to_owned(),
            from: AccountState::Healthy,
            to: AccountState::MarginCall,
        }),
        "{rise:?}"
    );
    let call = rise
        .iter()
        .find_map(|e| match e {
            Effect::MarginCall {
                health, deposit, ..
            } => Some((*health, deposit.value())),
            _ => None,
        })
        .unwrap();
    let health = call.0.unwrap();
    assert!(
        (health - 20_000.0 / 15_020.304_613).abs() < 1e-12,
        "{health}"
    );
    assert_eq!(call.1, dec!(0));
    assert_eq!(maintenance(&engine), dec!(15020.304613));
    assert!((expected_maintenance(0.08) - 15_020.304_613).abs() < 1e-6);
    // The report shows the range in force, and no warning about it.
    let ranges = engine.ranges_of("pm");
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0].range, 0.08);
    assert_eq!(ranges[0].static_range, 0.16);
    assert_eq!(ranges[0].as_of.to_string(), "2026-01-06");
    assert!(!scaling_warned(&engine));
}

#[test]
fn the_same_events_give_the_same_state_hash() {
    let lines = stream();
    let mut first = engine();
    let mut second = engine();
    apply_all(&mut first, &lines);
    apply_all(&mut second, &lines);
    assert_eq!(first.state_hash(), second.state_hash());
    // A snapshot restores the range in force, its static grid and the scaled venue.
    let restored = Engine::restore(&first.snapshot().unwrap()).unwrap();
    assert_eq!(restored.state_hash(), first.state_hash());
    assert_eq!(restored.scenario_ranges(), first.scenario_ranges());
    assert_eq!(maintenance(&restored), dec!(15020.304613));
    // Another range on the last event gives another hash.
    let mut other = engine();
    let mut changed = lines.clone();
    changed[5] = changed[5].replace(r#""range":"0.08""#, r#""range":"0.0801""#);
    apply_all(&mut other, &changed);
    assert_ne!(other.state_hash(), first.state_hash());
}

#[test]
fn without_a_range_the_static_grid_margins_with_a_warning() {
    let mut engine = engine();
    let mut lines = opening();
    // Enough collateral for the static grid's requirement.
    lines.push(line(
        4,
        "2026-01-05T00:00:03Z",
        r#""type":"deposit","account":"pm","asset":"USDT","amount":"30000""#,
    ));
    lines.push(line(5, "2026-01-05T00:00:04Z", FILL));
    apply_all(&mut engine, &lines);
    let report = engine.margin_report("pm").unwrap();
    // The static grid's 16%: 2 x 92,000 x 16% + 300.304613.
    assert_eq!(report.maintenance_margin.value(), dec!(29440) + ADD_ONS);
    assert!(report.warnings.iter().any(|w| w
        == "BTC: the venue scales its range with forecast volatility, but no scenario_range event has set one: margined on the static grid (±16%)"));
    assert!(scaling_warned(&engine));
    assert!(engine.ranges_of("pm").is_empty());
    let effects = apply(
        &mut engine,
        6,
        &line(6, "2026-01-06T00:00:00Z", RANGE_2026_01_05),
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
        "{effects:?}"
    );
    assert_eq!(maintenance(&engine), dec!(10780.032079));
    assert!(!scaling_warned(&engine));
    // The scan moved from 29,440 to 10,479.727465...; the add-ons stayed (the requirement is
    // rounded up to 6 decimals once, so the difference is within a micro-dollar).
    let scan: f64 = 2.0 * 92_000.0 * 0.056_955_040_572_597_02;
    assert!((expected_maintenance(0.056_955_040_572_597_02) - 10_780.032_079).abs() < 1e-6);
    assert!((10_780.032_079 - scan - 300.304_613).abs() < 1e-6, "{scan}");
}

#[test]
fn a_range_the_venue_does_not_admit_is_refused_by_name() {
    let mut engine = engine();
    apply_all(&mut engine, &opening());
    apply(
        &mut engine,
        4,
        &line(4, "2026-01-06T00:00:00Z", RANGE_2026_01_05),
    );
    let hash = engine.state_hash();
    let cases = [
        (
            RANGE_2026_01_06.replace(r#""underlying":"BTC""#, r#""underlying":"SOL""#),
            RejectReason::InvalidInput,
            "underlying: the venue does not scale SOL's range",
        ),
        (
            RANGE_2026_01_06.replace(r#""model":"ewma""#, r#""model":"garch""#),
            RejectReason::InvalidInput,
            "model: the venue forecasts BTC with ewma, the event with garch",
        ),
        (
            RANGE_2026_01_06.replace(r#""control":"buffer""#, r#""control":"stressed_floor""#),
            RejectReason::InvalidInput,
            "control: the venue controls BTC's range with buffer, the event with stressed_floor",
        ),
        (
            RANGE_2026_01_06.replace(r#""range":"0.08""#, r#""range":"0.03""#),
            RejectReason::OutOfRange,
            "range: 0.03 is below the venue's floor 0.04 for BTC",
        ),
        (
            RANGE_2026_01_06.replace("2026-01-06", "2026-01-04"),
            RejectReason::InvalidInput,
            "as_of: 2026-01-04 is before the forecast in force for BTC (2026-01-05)",
        ),
    ];
    for (n, (body, reason, detail)) in cases.iter().enumerate() {
        let effects = apply(
            &mut engine,
            5 + n,
            &line(5 + n, "2026-01-07T00:00:00Z", body),
        );
        match effects.as_slice() {
            [
                Effect::Rejected {
                    reason: r,
                    detail: d,
                },
            ] => {
                assert_eq!(r, reason, "{body}");
                assert!(d.starts_with(detail), "{d}");
            }
            other => panic!("{body}: {other:?}"),
        }
        assert_eq!(engine.state_hash(), hash, "a refusal changes nothing");
    }
    // The reader names the field of a bad number.
    let error = parse_line(
        "e.jsonl",
        9,
        &line(
            9,
            "2026-01-07T00:00:00Z",
            &RANGE_2026_01_06.replace(r#""range":"0.08""#, r#""range":"1.5""#),
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("range") && error.contains("below 1"),
        "{error}"
    );
}

/// Regression: listing an instrument installs the venue as it stands, its grids already scaled.
/// Taken for a venue given, its scaled BTC grid (8%) was recorded as the venue's own: the static
/// range read 8% instead of 16%, and every later range would have been scaled from the 8% grid.
#[test]
fn listing_an_instrument_keeps_the_scaled_grid_as_it_is() {
    let mut engine = engine();
    apply_all(&mut engine, &stream());
    let listing = line(
        7,
        "2026-01-07T00:00:01Z",
        r#""type":"list_instrument","name":"SOLUSDT2","spec":{"kind":"perpetual","style":"linear","underlying":"SOL","settlement":"USDT","contract_size":"1","size_step":"0.1","margin":"bybit_ethusdt"}"#,
    );
    let effects = apply(&mut engine, 7, &listing);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
        "{effects:?}"
    );
    assert_eq!(maintenance(&engine), dec!(15020.304613));
    assert_eq!(
        engine.static_grids()["BTC"]
            .price_moves
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs())),
        0.16
    );
}

#[test]
fn a_venue_update_keeps_the_range_it_admits_and_drops_the_others() {
    let mut engine = engine();
    apply_all(&mut engine, &stream());
    let text = std::fs::read_to_string(VENUE).unwrap();
    let update = serde_json::json!({
        "seq": 7, "ts": "2026-01-07T00:00:01Z", "type": "update_venue", "venue": text,
    });
    apply(&mut engine, 7, &update.to_string());
    assert_eq!(
        maintenance(&engine),
        dec!(15020.304613),
        "the same venue keeps the 8%"
    );
    // A venue that no longer scales BTC: the static grid again (and no warning: nothing is
    // scaled).
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let update = serde_json::json!({
        "seq": 8, "ts": "2026-01-07T00:00:02Z", "type": "update_venue",
        "venue": std::fs::read_to_string(default).unwrap(),
    });
    apply(&mut engine, 8, &update.to_string());
    assert!(engine.scenario_ranges().is_empty());
    assert!(engine.static_grids().is_empty());
    assert_eq!(maintenance(&engine), dec!(29740.304613));
}
