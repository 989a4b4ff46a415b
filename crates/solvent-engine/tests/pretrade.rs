//! One pre-trade rule (`solvent_risk::pretrade`): `solvent whatif`, the engine and the service
//! decide alike. Each case replays one of the differences the what-if and the engine used to
//! have (fees, a new position's leverage, rounding of realised cash, when isolated equity is
//! checked): the rule's verdict, booked on the account as the engine holds it, equals the
//! engine's, and when the trade is accepted the booked account equals the engine's afterwards,
//! to the last unit of each balance.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{Effect, RejectReason};
use solvent_engine::event::parse_line;
use solvent_risk::MarketView;
use solvent_risk::pretrade::{TradeLeg, book_trades, decide_trade};

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

fn engine_after(bodies: &[&str]) -> Engine {
    let mut engine = Engine::new(venue(), EngineConfig::default());
    for (number, body) in bodies.iter().enumerate() {
        let seq = number + 1;
        let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T00:00:{seq:02}Z",{body}}}"#);
        let effects = engine.apply(&parse_line("pretrade", seq, &line).unwrap());
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
            "setup {line}: {effects:?}"
        );
    }
    engine
}

/// The fill `(instrument, signed size, price, fee)` by account `a` against `external`: the rule's
/// verdict and the engine's, which must agree; returns the engine's refusal, if any.
fn both_decide(
    setup: &[&str],
    (instrument, size, price, fee): (&str, Decimal, Decimal, Decimal),
) -> Option<RejectReason> {
    let mut engine = engine_after(setup);
    let before = engine.portfolio("a").unwrap();
    let state = engine.accounts().get("a").unwrap().state;
    let leverage = engine.accounts().get("a").unwrap().leverage.clone();
    let leg = TradeLeg {
        instrument: Arc::new(
            engine
                .venue()
                .instrument(instrument)
                .unwrap()
                .as_ref()
                .clone(),
        ),
        size,
        price,
        fee,
    };
    let (booked, verdict) = {
        let view = MarketView::new(engine.venue(), engine.market()).unwrap();
        let leverage_of = |name: &str| leverage.get(name).copied();
        let booked = book_trades(&before, &[leg], &view, &leverage_of).unwrap();
        let verdict = decide_trade(state, &before, &booked, &[instrument], &view)
            .unwrap()
            .verdict;
        (booked, verdict)
    };
    let seq = setup.len() + 1;
    let side = if size > Decimal::ZERO { "buy" } else { "sell" };
    let line = format!(
        r#"{{"seq":{seq},"ts":"2026-01-01T00:00:{seq:02}Z","type":"fill","account":"a","instrument":"{instrument}","side":"{side}","size":"{}","price":"{price}","fee":"{fee}","counterparty":"external"}}"#,
        size.abs()
    );
    let effects = engine.apply(&parse_line("pretrade", seq, &line).unwrap());
    let refused = effects.iter().find_map(|e| match e {
        Effect::Rejected { reason, .. } => Some(*reason),
        _ => None,
    });
    match (&verdict, refused) {
        (Ok(_), None) => {
            let after = engine.portfolio("a").unwrap();
            let held = |p: &solvent_core::portfolio::Portfolio| {
                let mut balances: Vec<(String, Decimal)> = p
                    .balances
                    .iter()
                    .filter(|b| !b.amount.value().is_zero())
                    .map(|b| (b.asset.symbol.to_string(), b.amount.value().normalize()))
                    .collect();
                balances.sort();
                let positions: Vec<(String, Decimal, Decimal, Option<Decimal>)> = p
                    .positions
                    .iter()
                    .map(|q| {
                        (
                            q.instrument.name.clone(),
                            q.size.value().normalize(),
                            q.entry_price.value().normalize(),
                            q.isolated_margin.map(|m| m.value().normalize()),
                        )
                    })
                    .collect();
                (balances, positions)
            };
            assert_eq!(
                held(&booked),
                held(&after),
                "the rule booked the fill otherwise than the ledger"
            );
        }
        (Err(refusal), Some(reason)) => {
            let expected = match refusal.name() {
                "reduce_only" => RejectReason::ReduceOnly,
                "leverage_above_bracket" => RejectReason::InvalidLeverage,
                _ => RejectReason::InsufficientInitialMargin,
            };
            assert_eq!(reason, expected, "{refusal}");
        }
        (verdict, refused) => {
            panic!("the rule says {verdict:?}, the engine {refused:?}: {effects:?}")
        }
    }
    refused
}

const OPEN: &[&str] = &[
    r#""type":"index_price","underlying":"BTC","price":"60000""#,
    r#""type":"deposit","account":"a","asset":"USDT","amount":"3030""#,
];

/// Fees: 3,030 USDT covers the 3,000 initial margin of 1 BTCUSDT at 20x (the venue's default
/// leverage) with 30 to spare; a 31 USDT fee leaves 2,999 against 3,000: refused. A 29 USDT
/// fee: accepted.
#[test]
fn a_fee_that_takes_the_account_below_its_initial_margin_refuses_the_trade() {
    let trade = |fee| ("BTCUSDT", dec!(1), dec!(60000), fee);
    assert_eq!(
        both_decide(OPEN, trade(dec!(31))),
        Some(RejectReason::InsufficientInitialMargin)
    );
    assert_eq!(both_decide(OPEN, trade(dec!(29))), None);
}

/// A new position's leverage: chosen at 5x before the position exists, its initial margin is
/// 60,000 / 5 = 12,000 (not 3,000 at the default 20x): refused with 3,030 USDT, accepted without
/// the choice.
#[test]
fn a_new_position_takes_the_leverage_the_account_chose() {
    assert_eq!(
        both_decide(OPEN, ("BTCUSDT", dec!(1), dec!(60000), dec!(0))),
        None
    );
    let mut setup = OPEN.to_vec();
    setup.push(r#""type":"set_leverage","account":"a","instrument":"BTCUSDT","leverage":"5""#);
    assert_eq!(
        both_decide(&setup, ("BTCUSDT", dec!(1), dec!(60000), dec!(0))),
        Some(RejectReason::InsufficientInitialMargin)
    );
}

/// Rounding of realised cash: closing 0.333 of 1 BTC bought at 60,000.01 at 61,234.567891
/// realises 0.333 x 1,234.557891 = 411.107177703 USDT, credited rounded down to USDT's six
/// decimals (411.107177), less a fee of 0.000001: the booked balance equals the ledger's to the
/// unit.
#[test]
fn realised_cash_and_fees_are_rounded_as_the_ledger_rounds_them() {
    let mut setup = OPEN.to_vec();
    setup.push(r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000.01","counterparty":"external""#);
    assert_eq!(
        both_decide(
            &setup,
            ("BTCUSDT", dec!(-0.333), dec!(61234.567891), dec!(0.000001))
        ),
        None
    );
}

/// When isolated equity is checked: an isolated position answers for itself only when the trade
/// increases it. Isolated 1 BTCUSDT with 3,100 USDT of its own margin (IM 3,000 at 20x): adding
/// 0.5 BTC needs 4,500 and is refused though the cross pool holds 20,000; reducing by 0.5 is
/// accepted, its realised P&L settling into the isolated margin and the fee leaving the wallet.
#[test]
fn isolated_equity_is_checked_when_the_trade_increases_the_position() {
    let setup = [
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"a","asset":"USDT","amount":"23100""#,
        r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
        r#""type":"set_isolated_margin","account":"a","instrument":"BTCUSDT","amount":"3100""#,
    ];
    assert_eq!(
        both_decide(&setup, ("BTCUSDT", dec!(0.5), dec!(60000), dec!(0))),
        Some(RejectReason::InsufficientInitialMargin)
    );
    assert_eq!(
        both_decide(&setup, ("BTCUSDT", dec!(-0.5), dec!(60500), dec!(1))),
        None
    );
}

/// An account in reduce-only may reduce but not add: both decide alike.
#[test]
fn reduce_only_accounts_may_only_reduce() {
    let setup = [
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"a","asset":"USDT","amount":"6500""#,
        r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
        // At 53,820: equity 6,500 - 6,180 = 320 against MM 0.5% x 53,820 = 269.1, health 1.19
        // (reduce-only lies between 1.05 and 1.2); reached in steps the jump guard lets through.
        r#""type":"index_price","underlying":"BTC","price":"57000""#,
        r#""type":"index_price","underlying":"BTC","price":"55000""#,
        r#""type":"index_price","underlying":"BTC","price":"53820""#,
    ];
    let engine = engine_after(&setup);
    assert_eq!(
        engine.accounts().get("a").unwrap().state.to_string(),
        "reduce_only",
        "precondition"
    );
    assert_eq!(
        both_decide(&setup, ("BTCUSDT", dec!(0.1), dec!(53820), dec!(0))),
        Some(RejectReason::ReduceOnly)
    );
    assert_eq!(
        both_decide(&setup, ("BTCUSDT", dec!(-0.5), dec!(53820), dec!(0))),
        None
    );
}

/// A leverage above the bracket's maximum is refused, not capped: BTCUSDT's tier 1 (up to
/// 2,000,000 USDT) allows 100x, tier 2 (to 2,600,000) 90x. At 100x, 33 BTC at 60,000
/// (1,980,000 USDT) stands in tier 1 and is accepted; 40 BTC (2,400,000) would stand in tier 2:
/// refused with the bracket named, though 1,000,000 USDT covers its initial margin at 90x. And
/// the leverage of a position already in tier 2 may not be raised to 100x.
#[test]
fn a_leverage_above_the_bracket_maximum_is_refused_with_the_bracket_named() {
    let setup = [
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"a","asset":"USDT","amount":"1000000""#,
        r#""type":"set_leverage","account":"a","instrument":"BTCUSDT","leverage":"100""#,
    ];
    assert_eq!(
        both_decide(&setup, ("BTCUSDT", dec!(33), dec!(60000), dec!(0))),
        None
    );
    assert_eq!(
        both_decide(&setup, ("BTCUSDT", dec!(40), dec!(60000), dec!(0))),
        Some(RejectReason::InvalidLeverage)
    );
    let mut engine = engine_after(&setup[..2]);
    let apply = |engine: &mut Engine, seq: usize, body: &str| {
        let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T00:00:{seq:02}Z",{body}}}"#);
        engine.apply(&parse_line("pretrade", seq, &line).unwrap())
    };
    let filled = apply(
        &mut engine,
        3,
        r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"40","price":"60000","fee":"0","counterparty":"external""#,
    );
    assert!(
        !filled.iter().any(|e| matches!(e, Effect::Rejected { .. })),
        "40 BTC at the default 20x: {filled:?}"
    );
    let raised = apply(
        &mut engine,
        4,
        r#""type":"set_leverage","account":"a","instrument":"BTCUSDT","leverage":"100""#,
    );
    match raised.as_slice() {
        [Effect::Rejected { reason, detail }] => {
            assert_eq!(*reason, RejectReason::InvalidLeverage);
            assert_eq!(
                detail,
                "leverage 100 for BTCUSDT: above the 90x maximum of tier 2 (position value 2000000-2600000 USDT)"
            );
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
}

/// With no position held, a leverage above the first tier's maximum (the most any bracket
/// allows) is refused with that tier named, not only its number.
#[test]
fn a_leverage_above_every_tier_is_refused_naming_tier_one() {
    let mut engine = engine_after(&[
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"a","asset":"USDT","amount":"1000""#,
    ]);
    let line = r#"{"seq":3,"ts":"2026-01-01T00:00:03Z","type":"set_leverage","account":"a","instrument":"BTCUSDT","leverage":"125"}"#;
    match engine
        .apply(&parse_line("pretrade", 3, line).unwrap())
        .as_slice()
    {
        [Effect::Rejected { reason, detail }] => {
            assert_eq!(*reason, RejectReason::InvalidLeverage);
            assert_eq!(
                detail,
                "leverage 125 for BTCUSDT: above the 100x maximum of tier 1 (position value 0-2000000 USDT)"
            );
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
}
