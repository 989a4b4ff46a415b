//! Loans cost interest (issue 10, item 3): a negative wallet balance in an asset whose venue
//! schedule charges interest pays it by the hour of the events' time, to the fee account, under
//! the venue's rule (`started_hour`: Binance; `hour_snapshot`: Bybit, OKX). Money is conserved
//! and replay gives the same state hash.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::{InterestRule, InterestSchedule, RatePeriod, Venue};
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{Effect, RejectReason, TransferReason};
use solvent_engine::engine::LoanCover;
use solvent_engine::event::parse_line;
use solvent_engine::ledger::LedgerAccount;

/// The default venue with USDT loans paying `rate` per hour under `rule`.
fn venue(rate: Decimal, rule: InterestRule) -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let mut venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    venue.collateral.get_mut("USDT").unwrap().interest = Some(InterestSchedule {
        rate,
        per: RatePeriod::Hour,
        rule,
    });
    venue
}

/// Applies `(time, body)` events in order (`time` is `HH:MM:SS` on 2026-01-01).
fn play(engine: &mut Engine, events: &[(&str, &str)]) -> Vec<Effect> {
    let start = engine.last_seq().unwrap_or(0);
    let mut effects = Vec::new();
    for (number, (time, body)) in events.iter().enumerate() {
        let seq = start + 1 + number as u64;
        let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T{time}Z",{body}}}"#);
        effects.extend(engine.apply(&parse_line("interest", seq as usize, &line).unwrap()));
    }
    effects
}

/// Account `a` holds 1 BTC and borrows 1,000 USDT at 13:20: it buys 1 BTCUSDT at 60,000 and
/// sells it at 59,000, a realised loss of 1,000 USDT it has no USDT to pay (a USDT loan, as
/// Bybit's UTA auto-borrows for a derivatives loss).
const BORROW_AT_13_20: [(&str, &str); 5] = [
    (
        "13:00:00",
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
    ),
    (
        "13:00:01",
        r#""type":"deposit","account":"a","asset":"BTC","amount":"1""#,
    ),
    (
        "13:20:00",
        r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
    ),
    (
        "13:20:01",
        r#""type":"index_price","underlying":"BTC","price":"59000""#,
    ),
    (
        "13:20:02",
        r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"sell","size":"1","price":"59000","counterparty":"external""#,
    ),
];

fn usdt(engine: &Engine, account: &LedgerAccount) -> Decimal {
    engine.ledger().balance(account, "USDT")
}

fn wallet() -> LedgerAccount {
    LedgerAccount::Wallet("a".into())
}

/// Every `interest` transfer: (from, to, amount).
fn interest(effects: &[Effect]) -> Vec<(String, String, Decimal)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::TransferApplied {
                from,
                to,
                amount,
                reason: TransferReason::Interest,
                ..
            } => Some((from.clone(), to.clone(), amount.value())),
            _ => None,
        })
        .collect()
}

fn conserved(engine: &Engine) {
    for (asset, total) in engine.ledger().totals() {
        assert_eq!(total, Decimal::ZERO, "{asset} does not sum to zero");
    }
}

/// Hour snapshot (Bybit, OKX), hand-worked at 0.001% an hour on a loan of 1,000 USDT taken at
/// 13:20: nothing until 14:00; the event at 14:15 charges the 14:00 hour, 1,000 x 0.00001 =
/// 0.01; the event at 16:30 charges 15:00 on 1,000.01 (0.0100001, rounded up to USDT's six
/// decimals: 0.010001) and 16:00 on 1,000.020001 (0.01000020001 -> 0.010001). Loan
/// 1,000.030002; the fee account holds the 0.030002 it paid.
#[test]
fn hour_snapshot_charges_the_loan_held_at_each_whole_hour() {
    let mut engine = Engine::new(
        venue(dec!(0.00001), InterestRule::HourSnapshot),
        EngineConfig::default(),
    );
    let opening = play(&mut engine, &BORROW_AT_13_20);
    assert!(interest(&opening).is_empty(), "no whole hour yet");
    assert_eq!(usdt(&engine, &wallet()), dec!(-1000));
    let fees_before = usdt(&engine, &LedgerAccount::Fees);
    let first = play(
        &mut engine,
        &[(
            "14:15:00",
            r#""type":"index_price","underlying":"BTC","price":"59000""#,
        )],
    );
    assert_eq!(
        interest(&first),
        [("a".to_owned(), "fees".to_owned(), dec!(0.01))]
    );
    let later = play(
        &mut engine,
        &[(
            "16:30:00",
            r#""type":"index_price","underlying":"BTC","price":"59000""#,
        )],
    );
    let amounts: Vec<Decimal> = interest(&later).into_iter().map(|(_, _, a)| a).collect();
    assert_eq!(amounts, [dec!(0.010001), dec!(0.010001)]);
    assert_eq!(usdt(&engine, &wallet()), dec!(-1000.030002));
    assert_eq!(
        usdt(&engine, &LedgerAccount::Fees) - fees_before,
        dec!(0.030002)
    );
    conserved(&engine);
}

/// OKX's published case ("Interest Calculation"): borrowed at 14:55 and repaid at 14:57, no
/// interest; under the hour-snapshot rule a loan that never sees a whole hour pays nothing.
#[test]
fn hour_snapshot_charges_nothing_for_a_loan_repaid_inside_the_hour() {
    let mut engine = Engine::new(
        venue(dec!(0.00001), InterestRule::HourSnapshot),
        EngineConfig::default(),
    );
    let effects = play(
        &mut engine,
        &[
            (
                "14:50:00",
                r#""type":"index_price","underlying":"BTC","price":"60000""#,
            ),
            (
                "14:50:01",
                r#""type":"deposit","account":"a","asset":"BTC","amount":"1""#,
            ),
            (
                "14:55:00",
                r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
            ),
            (
                "14:55:01",
                r#""type":"index_price","underlying":"BTC","price":"59000""#,
            ),
            (
                "14:55:02",
                r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"sell","size":"1","price":"59000","counterparty":"external""#,
            ),
            (
                "14:57:00",
                r#""type":"deposit","account":"a","asset":"USDT","amount":"1000""#,
            ),
            (
                "15:10:00",
                r#""type":"index_price","underlying":"BTC","price":"59000""#,
            ),
        ],
    );
    assert!(interest(&effects).is_empty(), "{effects:?}");
    assert_eq!(usdt(&engine, &wallet()), Decimal::ZERO);
}

/// Started hour (Binance), the FAQ's case at 0.001% an hour ("if User A borrows 1,000 USDT at
/// 13:55, and it's now 14:30, the interest accrued so far is 1,000 x 0.001% x 2 hours = 0.02
/// USDT"): the hour the loan is taken in is charged at once, 1,000 x 0.00001 = 0.01, and the
/// 14:00 hour when an event crosses it, again on the principal (simple interest: the first
/// hour's 0.01 is owed but not charged): 0.01. Total 0.02, the published figure.
#[test]
fn started_hour_charges_the_hour_a_loan_is_taken_in() {
    let mut engine = Engine::new(
        venue(dec!(0.00001), InterestRule::StartedHour),
        EngineConfig::default(),
    );
    let opening = play(&mut engine, &BORROW_AT_13_20);
    assert_eq!(
        interest(&opening),
        [("a".to_owned(), "fees".to_owned(), dec!(0.01))],
        "the started hour 13:00-14:00 is charged when the loan is taken"
    );
    assert_eq!(
        engine
            .interest_covered()
            .get(&("a".into(), "USDT".into()))
            .copied(),
        Some(LoanCover {
            covered: dec!(1000),
            unpaid: dec!(0.01),
            loan: dec!(1000.01),
        })
    );
    // Another event in the same hour charges nothing more: the loan is covered for the hour.
    let same_hour = play(
        &mut engine,
        &[(
            "13:50:00",
            r#""type":"index_price","underlying":"BTC","price":"59000""#,
        )],
    );
    assert!(interest(&same_hour).is_empty());
    let next = play(
        &mut engine,
        &[(
            "14:30:00",
            r#""type":"index_price","underlying":"BTC","price":"59000""#,
        )],
    );
    assert_eq!(
        interest(&next),
        [("a".to_owned(), "fees".to_owned(), dec!(0.01))]
    );
    assert_eq!(usdt(&engine, &wallet()), dec!(-1000.02));
    conserved(&engine);
}

/// Binance's older FAQ ("If user A borrows 1,000 USDT at 13:20 PM, and repays at 14:15 PM, the
/// interest rate is calculated as 1,000 x (0.02%/24) x 2 = 0.01666667 USDT"), in the engine at
/// a daily 0.02% (the shipped binance-usdm.toml USDT rate) and USDT's six decimals: the started
/// hour at 13:20, 1,000 x 0.0002 / 24 = 0.00833333..., rounded up to 0.008334, and 14:00 on the
/// principal again, 0.008334: 0.016668, the published 0.01666667 with each hour rounded up to
/// six decimals. Repaid at 14:15 (principal and interest), the loan is gone: nothing at 15:00.
#[test]
fn started_hour_reproduces_binances_faq_example_at_a_daily_rate() {
    let mut binance = venue(dec!(0.0002), InterestRule::StartedHour);
    binance.collateral.get_mut("USDT").unwrap().interest = Some(InterestSchedule {
        rate: dec!(0.0002),
        per: RatePeriod::Day,
        rule: InterestRule::StartedHour,
    });
    let mut engine = Engine::new(binance, EngineConfig::default());
    let opening = play(&mut engine, &BORROW_AT_13_20);
    assert_eq!(
        interest(&opening),
        [("a".to_owned(), "fees".to_owned(), dec!(0.008334))]
    );
    let repaid = play(
        &mut engine,
        &[
            (
                "14:15:00",
                r#""type":"deposit","account":"a","asset":"USDT","amount":"1000.016668""#,
            ),
            (
                "15:10:00",
                r#""type":"index_price","underlying":"BTC","price":"59000""#,
            ),
        ],
    );
    assert_eq!(
        interest(&repaid),
        [("a".to_owned(), "fees".to_owned(), dec!(0.008334))]
    );
    assert_eq!(usdt(&engine, &wallet()), Decimal::ZERO);
    assert!(engine.interest_covered().is_empty(), "the loan is gone");
    conserved(&engine);
}

/// Under the started-hour rule a loan that grows inside an hour pays the hour on what it grew
/// by: 1,000 at 13:20 (0.01), then 500 more at 13:40: 500 x 0.00001 = 0.005.
#[test]
fn started_hour_charges_a_loan_grown_inside_the_hour_on_the_growth() {
    let mut engine = Engine::new(
        venue(dec!(0.00001), InterestRule::StartedHour),
        EngineConfig::default(),
    );
    play(&mut engine, &BORROW_AT_13_20);
    let grown = play(
        &mut engine,
        &[
            (
                "13:40:00",
                r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"59000","counterparty":"external""#,
            ),
            (
                "13:40:01",
                r#""type":"index_price","underlying":"BTC","price":"58500""#,
            ),
            (
                "13:40:02",
                r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"sell","size":"1","price":"58500","counterparty":"external""#,
            ),
        ],
    );
    assert_eq!(
        interest(&grown),
        [("a".to_owned(), "fees".to_owned(), dec!(0.005))]
    );
    assert_eq!(usdt(&engine, &wallet()), dec!(-1500.015));
    conserved(&engine);
}

/// A refused event takes nothing, not even the interest of the hours it would have crossed:
/// the next accepted event charges them exactly as it would have.
#[test]
fn a_refused_event_books_no_interest_and_the_next_one_charges_the_hours() {
    let build = || {
        let mut engine = Engine::new(
            venue(dec!(0.00001), InterestRule::HourSnapshot),
            EngineConfig::default(),
        );
        play(&mut engine, &BORROW_AT_13_20);
        engine
    };
    let mut refused = build();
    let hash = refused.state_hash();
    let effects = play(
        &mut refused,
        &[(
            "15:00:00",
            r#""type":"withdraw","account":"a","asset":"BTC","amount":"5""#,
        )],
    );
    assert!(
        matches!(effects.as_slice(), [Effect::Rejected { .. }]),
        "{effects:?}"
    );
    assert_eq!(
        refused.state_hash(),
        hash,
        "a refusal leaves the state as it was"
    );
    let tick = (
        "15:30:00",
        r#""type":"index_price","underlying":"BTC","price":"59000""#,
    );
    let after_refusal = play(&mut refused, &[tick]);
    let mut straight = build();
    let direct = play(&mut straight, &[tick]);
    assert_eq!(interest(&after_refusal), interest(&direct));
    assert_eq!(interest(&direct).len(), 2, "14:00 and 15:00");
    assert_eq!(usdt(&refused, &wallet()), usdt(&straight, &wallet()));
}

/// More than a year of whole hours in one step while loans accrue is refused by name, and the
/// state is left as it was.
#[test]
fn a_gap_beyond_a_year_with_loans_outstanding_is_refused() {
    let mut engine = Engine::new(
        venue(dec!(0.00001), InterestRule::HourSnapshot),
        EngineConfig::default(),
    );
    play(&mut engine, &BORROW_AT_13_20);
    let hash = engine.state_hash();
    let line = r#"{"seq":99,"ts":"2028-01-02T00:00:00Z","type":"index_price","underlying":"BTC","price":"59000"}"#;
    let effects = engine.apply(&parse_line("interest", 99, line).unwrap());
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Rejected {
                reason: RejectReason::OutOfRange,
                ..
            }]
        ),
        "{effects:?}"
    );
    assert_eq!(engine.state_hash(), hash);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Money is conserved across accrual (every asset sums to zero, the wallet's loss is the
    /// fee account's gain), and replaying the same events gives the same state hash.
    #[test]
    fn accrual_conserves_money_and_replays_to_the_same_hash(
        rate_ppm in 1u32..2_000,
        started in any::<bool>(),
        steps in proptest::collection::vec((1u32..14_400, 0u32..3), 1..12),
    ) {
        let rule = if started { InterestRule::StartedHour } else { InterestRule::HourSnapshot };
        let rate = Decimal::new(i64::from(rate_ppm), 6);
        let mut events: Vec<(String, String)> = BORROW_AT_13_20
            .iter()
            .map(|(time, body)| ((*time).to_owned(), (*body).to_owned()))
            .collect();
        // Seconds since 13:20:02, each step some minutes to four hours on, then an event: a
        // price tick, a deposit that repays part of the loan, or a fee that adds to it.
        let mut at = 13 * 3_600 + 20 * 60 + 2;
        for (gap, kind) in steps {
            at += gap;
            let time = format!(
                "{:02}:{:02}:{:02}",
                (at / 3_600) % 24,
                (at / 60) % 60,
                at % 60
            );
            if at >= 24 * 3_600 {
                break;
            }
            let body = match kind {
                0 => r#""type":"index_price","underlying":"BTC","price":"59000""#,
                1 => r#""type":"deposit","account":"a","asset":"USDT","amount":"250""#,
                _ => r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"0.001","price":"59000","fee":"3","counterparty":"external""#,
            };
            events.push((time, body.to_owned()));
        }
        let borrowed: Vec<(&str, &str)> = events.iter().map(|(t, b)| (t.as_str(), b.as_str())).collect();
        let run = || {
            let mut engine = Engine::new(venue(rate, rule), EngineConfig::default());
            let effects = play(&mut engine, &borrowed);
            (engine, effects)
        };
        let (engine, effects) = run();
        for (asset, total) in engine.ledger().totals() {
            prop_assert_eq!(total, Decimal::ZERO, "{} does not sum to zero", asset);
        }
        let charged: Decimal = interest(&effects).iter().map(|(_, _, a)| *a).sum();
        let fees: Decimal = effects
            .iter()
            .filter_map(|e| match e {
                Effect::TransferApplied { to, asset, amount, .. } if to == "fees" && asset == "USDT" => {
                    Some(amount.value())
                }
                _ => None,
            })
            .sum();
        prop_assert_eq!(usdt(&engine, &LedgerAccount::Fees), fees);
        prop_assert!(charged >= Decimal::ZERO);
        let (again, _) = run();
        prop_assert_eq!(again.state_hash(), engine.state_hash());
    }
}

/// A snapshot taken inside an hour keeps what each started-hour loan is covered for: the
/// restored engine has the same hash and charges the next hours exactly as the live one.
#[test]
fn a_snapshot_inside_the_hour_restores_the_coverage_and_the_same_charges() {
    let mut live = Engine::new(
        venue(dec!(0.00001), InterestRule::StartedHour),
        EngineConfig::default(),
    );
    play(&mut live, &BORROW_AT_13_20);
    assert!(!live.interest_covered().is_empty());
    let mut restored = Engine::restore(&live.snapshot().unwrap()).unwrap();
    assert_eq!(restored.state_hash(), live.state_hash());
    let later = [
        (
            "13:45:00",
            r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"0.01","price":"59000","fee":"40","counterparty":"external""#,
        ),
        (
            "15:10:00",
            r#""type":"index_price","underlying":"BTC","price":"59000""#,
        ),
    ];
    let from_live = play(&mut live, &later);
    let from_restored = play(&mut restored, &later);
    assert_eq!(interest(&from_live), interest(&from_restored));
    // The fee of 40 grows the loan inside the 13:00 hour (0.0004 at once), then 14:00 and
    // 15:00 are charged when 15:10 crosses them.
    assert_eq!(interest(&from_live).len(), 3, "{from_live:?}");
    assert_eq!(restored.state_hash(), live.state_hash());
}
