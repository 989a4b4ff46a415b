//! Deficits claimed from a cluster's system shard (`FundAuthority::SystemShard`, docs/scale.md
//! "Money across shards"): an account shard advances a bankrupt account's deficit from
//! `pending_claims` and claims it; the system shard's answer settles it. Once answered, the
//! shard's books, together with the shard that holds the fund's deposit, are one engine's.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::{EngineConfig, FundAuthority};
use solvent_engine::effect::{DeficitResolution, Effect, InsuranceFundReason};
use solvent_engine::engine::{AdlAssignment, ClaimAnswer, SocialisedShare};
use solvent_engine::event::parse_line;
use solvent_engine::ledger::LedgerAccount;

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Plays `bodies` one second apart (seq 1, 2, ...) on an engine with `fund`.
fn play(fund: FundAuthority, bodies: &[&str]) -> (Engine, Vec<Effect>) {
    let mut engine = Engine::new(
        venue(),
        EngineConfig {
            fund,
            ..EngineConfig::default()
        },
    );
    let mut effects = Vec::new();
    for (number, body) in bodies.iter().enumerate() {
        let seq = number + 1;
        let line = format!(
            r#"{{"seq":{seq},"ts":"2026-01-01T00:{:02}:{:02}Z",{body}}}"#,
            seq / 60,
            seq % 60
        );
        effects.extend(engine.apply(&parse_line("claims", seq, &line).unwrap()));
    }
    (engine, effects)
}

const FUND_DEPOSIT: &str =
    r#""type":"deposit","account":"insurance_fund","asset":"USDT","amount":"30000""#;

/// Long 1 BTCUSDT from 60,000 on 4,000 USDT (15x; the initial margin at 20x is 3,000), bought
/// outside the venue; BTC falls to 40,000 in one confirmed jump: 4,000 + (40,000 - 60,000) =
/// -16,000 USDT, a deficit of 16,000.
const CRASH: [&str; 7] = [
    r#""type":"index_price","underlying":"BTC","price":"60000""#,
    r#""type":"deposit","account":"loser","asset":"USDT","amount":"4000""#,
    r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
];

fn balance(engine: &Engine, account: &LedgerAccount) -> Decimal {
    engine.ledger().balance(account, "USDT")
}

fn loser(engine: &Engine) -> Decimal {
    balance(engine, &LedgerAccount::Wallet("loser".into()))
}

fn answer(claimed: Decimal, covered: Decimal, fund_before: Decimal) -> ClaimAnswer {
    ClaimAnswer {
        account: "loser".to_owned(),
        asset: "USDT".to_owned(),
        claimed,
        covered,
        fund_before,
        adl_paid: Decimal::ZERO,
        socialised_paid: Decimal::ZERO,
        returned: false,
        fee: Decimal::ZERO,
        remainder: false,
    }
}

fn assert_books_balance(engine: &Engine) {
    for (asset, total) in engine.ledger().totals() {
        assert!(total.is_zero(), "{asset} sums to {total}");
    }
}

/// One engine with a 30,000 fund covers the 16,000 at once (14,000 left). The account shard,
/// which holds no part of the fund, advances the 16,000 and claims it: between claim and
/// answer the account is at zero and `pending_claims` at -16,000 (money neither made nor
/// lost); the answer (covered whole, the fund held 30,000 on another shard) moves 16,000 out
/// of the shard's piece of the fund: with the other shard's 30,000, 14,000, as one engine.
#[test]
fn a_claimed_deficit_is_advanced_and_the_answer_settles_it_as_one_engine_covers_it() {
    let mut with_fund = vec![FUND_DEPOSIT];
    with_fund.extend(CRASH);
    let (one, _) = play(FundAuthority::Local, &with_fund);
    assert_eq!(loser(&one), dec!(0));
    assert_eq!(balance(&one, &LedgerAccount::InsuranceFund), dec!(14000));

    let (mut shard, effects) = play(FundAuthority::SystemShard, &CRASH);
    let claims: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::DeficitBeyondFund {
                account,
                deficit,
                fund,
                resolution,
                ..
            } => Some((account.as_str(), deficit.value(), fund.value(), *resolution)),
            _ => None,
        })
        .collect();
    assert_eq!(
        claims,
        [("loser", dec!(16000), dec!(0), DeficitResolution::Claimed)]
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Adl { .. })),
        "an account shard deleverages nobody itself"
    );
    // Between claim and answer.
    assert_eq!(loser(&shard), dec!(0));
    assert_eq!(balance(&shard, &LedgerAccount::PendingClaims), dec!(-16000));
    assert_eq!(balance(&shard, &LedgerAccount::InsuranceFund), dec!(0));
    assert_books_balance(&shard);

    let effects = shard.apply_claim_answer(100, &answer(dec!(16000), dec!(16000), dec!(30000)));
    assert!(
        effects.iter().any(|e| matches!(e,
            Effect::InsuranceFundChanged { change, .. } if change.value() == dec!(-16000))),
        "{effects:#?}"
    );
    assert_eq!(loser(&shard), dec!(0));
    assert_eq!(balance(&shard, &LedgerAccount::PendingClaims), dec!(0));
    // The fund in pieces: 30,000 deposited on the fund's shard, -16,000 drawn through this one.
    assert_eq!(
        dec!(30000) + balance(&shard, &LedgerAccount::InsuranceFund),
        balance(&one, &LedgerAccount::InsuranceFund)
    );
    assert_books_balance(&shard);

    // Nothing is pending any more: the same answer again is refused and changes nothing.
    let again = shard.apply_claim_answer(101, &answer(dec!(16000), dec!(16000), dec!(30000)));
    assert!(
        matches!(again.as_slice(), [Effect::Rejected { .. }]),
        "{again:#?}"
    );
    assert_eq!(balance(&shard, &LedgerAccount::PendingClaims), dec!(0));
}

/// A fund of 1,000 against the 16,000: one engine pays 1,000 and leaves 15,000 as the
/// account's debt (nobody inside holds the other side). The shard's answer, covered 1,000 of
/// 16,000, takes the 15,000 back from the account: the same debt, reported the same way.
#[test]
fn an_answer_the_fund_cannot_cover_leaves_the_rest_the_accounts_debt_as_one_engine() {
    let small_fund =
        r#""type":"deposit","account":"insurance_fund","asset":"USDT","amount":"1000""#;
    let mut with_fund = vec![small_fund];
    with_fund.extend(CRASH);
    let (one, one_effects) = play(FundAuthority::Local, &with_fund);
    assert_eq!(loser(&one), dec!(-15000));
    assert_eq!(balance(&one, &LedgerAccount::InsuranceFund), dec!(0));
    let debt = |effects: &[Effect]| {
        effects.iter().find_map(|e| match e {
            Effect::DeficitBeyondFund {
                deficit,
                fund,
                resolution: DeficitResolution::AccountDebt,
                ..
            } => Some((deficit.value(), fund.value())),
            _ => None,
        })
    };
    assert_eq!(debt(&one_effects), Some((dec!(16000), dec!(1000))));

    let (mut shard, _) = play(FundAuthority::SystemShard, &CRASH);
    let effects = shard.apply_claim_answer(100, &answer(dec!(16000), dec!(1000), dec!(1000)));
    assert_eq!(debt(&effects), Some((dec!(16000), dec!(1000))));
    assert_eq!(loser(&shard), dec!(-15000));
    assert_eq!(balance(&shard, &LedgerAccount::PendingClaims), dec!(0));
    assert_eq!(
        dec!(1000) + balance(&shard, &LedgerAccount::InsuranceFund),
        balance(&one, &LedgerAccount::InsuranceFund)
    );
    assert_books_balance(&shard);
}

/// Answers that do not fit what is pending are refused, in order, and change nothing.
#[test]
fn an_answer_that_does_not_fit_is_refused_and_changes_nothing() {
    let (mut shard, _) = play(FundAuthority::SystemShard, &CRASH);
    let hash = shard.state_hash();
    for (seq, bad) in [
        (7, answer(dec!(16000), dec!(16000), dec!(30000))), // not after the last event (7)
        (100, answer(dec!(16000), dec!(16001), dec!(30000))), // covers more than claimed
        (100, answer(dec!(16000), dec!(-1), dec!(30000))),  // negative cover
        (100, answer(dec!(0), dec!(0), dec!(30000))),       // nothing claimed
        (100, answer(dec!(16000.01), dec!(0), dec!(30000))), // more than is pending
        (
            100,
            ClaimAnswer {
                asset: "XYZ".to_owned(),
                ..answer(dec!(1), dec!(1), dec!(1))
            },
        ),
    ] {
        let effects = shard.apply_claim_answer(seq, &bad);
        assert!(
            matches!(effects.as_slice(), [Effect::Rejected { .. }]),
            "{bad:?}: {effects:#?}"
        );
        assert_eq!(shard.state_hash(), hash, "{bad:?} changed the state");
    }
}

/// A short of 0.6 BTCUSDT sold at 60,000 on 10,000 USDT, with BTC at 40,000: 12,000 in profit.
const SHORT: [&str; 7] = [
    r#""type":"index_price","underlying":"BTC","price":"60000""#,
    r#""type":"deposit","account":"short","asset":"USDT","amount":"10000""#,
    r#""type":"fill","account":"short","instrument":"BTCUSDT","side":"sell","size":"0.6","price":"60000","counterparty":"external""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
    r#""type":"index_price","underlying":"BTC","price":"40000""#,
];

/// The short's share of a bankrupt long's 16,000 deficit over 1 contract: 0.6 at 40,000 and
/// 9,600 paid, i.e. 0.6 at the bankruptcy price 56,000.
fn share(size: Decimal, paid: Decimal) -> AdlAssignment {
    AdlAssignment {
        bankrupt: "loser".to_owned(),
        account: "short".to_owned(),
        instrument: "BTCUSDT".to_owned(),
        size,
        mark: dec!(40000),
        price: dec!(56000),
        paid,
    }
}

/// The share applied: the short buys its 0.6 back at the mark, realising 0.6 x 20,000 =
/// 12,000, and pays 9,600 into the shard's `insurance_fund` account: 10,000 + 12,000 - 9,600 =
/// 12,400, what 0.6 bought back at 56,000 leaves (10,000 + 0.6 x 4,000). A share of 1 contract
/// paying 16,000 for an account holding 0.6 takes 0.6 and pays 0.6 / 1 of it: the same.
#[test]
fn an_adl_share_is_a_trade_at_the_bankruptcy_price_and_takes_no_more_than_is_held() {
    for (size, paid) in [(dec!(0.6), dec!(9600)), (dec!(1), dec!(16000))] {
        let (mut shard, _) = play(FundAuthority::SystemShard, &SHORT);
        let effects = shard.apply_adl_assignment(100, &share(size, paid));
        let adl: Vec<_> = effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Adl {
                    account,
                    counterparty,
                    size,
                    price,
                    ..
                } => Some((
                    account.as_str(),
                    counterparty.as_str(),
                    size.value(),
                    price.value(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(adl, [("loser", "short", dec!(0.6), dec!(56000))]);
        // Held less than its share: the 6,400 it did not pay is advanced into the shard's
        // piece of the fund (the claimant's shard received it) and claimed again, with the
        // 0.4 contracts not taken, the bankrupt long's sale at the same bankruptcy price.
        let remainder: Vec<_> = effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::DeficitBeyondFund {
                    account,
                    deficit,
                    resolution: DeficitResolution::RemainderClaimed,
                    position: Some(position),
                    ..
                } => Some((
                    account.as_str(),
                    deficit.value(),
                    position.size.value(),
                    position.bankruptcy_price.value(),
                )),
                _ => None,
            })
            .collect();
        let unpaid = if size == dec!(1) { dec!(6400) } else { dec!(0) };
        let expected: &[(&str, Decimal, Decimal, Decimal)] = if unpaid.is_zero() {
            &[]
        } else {
            &[("loser", dec!(6400), dec!(-0.4), dec!(56000))]
        };
        assert_eq!(remainder, expected);
        assert!(!effects.iter().any(|effect| matches!(
            effect,
            Effect::InsuranceFundChanged {
                reason: InsuranceFundReason::AdlShortfall,
                ..
            }
        )));
        assert_eq!(
            balance(&shard, &LedgerAccount::Wallet("short".into())),
            dec!(12400)
        );
        assert_eq!(
            balance(&shard, &LedgerAccount::InsuranceFund),
            dec!(9600) + unpaid
        );
        assert_eq!(balance(&shard, &LedgerAccount::PendingClaims), -unpaid);
        assert!(
            shard
                .accounts()
                .get("short")
                .is_some_and(|a| a.positions.is_empty())
        );
        assert_books_balance(&shard);
    }
}

/// Refused without a change: a sequence not after the last, an unknown account or instrument,
/// amounts out of range.
#[test]
fn an_adl_share_that_does_not_fit_is_refused_and_changes_nothing() {
    let (mut shard, _) = play(FundAuthority::SystemShard, &SHORT);
    let hash = shard.state_hash();
    for (seq, bad) in [
        (7, share(dec!(0.6), dec!(9600))),
        (100, share(dec!(0), dec!(0))),
        (100, share(dec!(0.6), dec!(-1))),
        (
            100,
            AdlAssignment {
                instrument: "NOPE".to_owned(),
                ..share(dec!(0.6), dec!(9600))
            },
        ),
        (
            100,
            AdlAssignment {
                account: "nobody".to_owned(),
                ..share(dec!(0.6), dec!(9600))
            },
        ),
    ] {
        let effects = shard.apply_adl_assignment(seq, &bad);
        assert!(
            matches!(effects.as_slice(), [Effect::Rejected { .. }]),
            "{bad:?}: {effects:#?}"
        );
        assert_eq!(shard.state_hash(), hash, "{bad:?} changed the state");
    }
    // An account that holds no such position any more (closed, or turned to the other side)
    // takes nothing: the whole share is claimed again, with its contracts.
    let effects = shard.apply_adl_assignment(
        100,
        &AdlAssignment {
            instrument: "ETHUSDT".to_owned(),
            ..share(dec!(0.6), dec!(9600))
        },
    );
    let claimed: Vec<_> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::DeficitBeyondFund {
                deficit,
                resolution: DeficitResolution::RemainderClaimed,
                position: Some(position),
                ..
            } => Some((deficit.value(), position.size.value())),
            _ => None,
        })
        .collect();
    assert_eq!(claimed, [(dec!(9600), dec!(-0.6))]);
    assert!(!effects.iter().any(|e| matches!(e, Effect::Adl { .. })));
    assert_books_balance(&shard);
}

/// A socialised share applied: the short pays 3,103.448276 from its wallet into the shard's
/// `insurance_fund` account and keeps its position; refused (no change of state hash) for an
/// unknown account or asset, a share not positive, a sequence not after the last.
#[test]
fn a_socialised_share_is_paid_into_the_shards_piece_of_the_fund() {
    let (mut shard, _) = play(FundAuthority::SystemShard, &SHORT);
    let share = |account: &str, asset: &str, paid: Decimal| SocialisedShare {
        bankrupt: "loser".to_owned(),
        account: account.to_owned(),
        instrument: "BTCUSDT".to_owned(),
        isolated: false,
        paid,
        asset: asset.to_owned(),
    };
    let hash = shard.state_hash();
    for (seq, bad) in [
        (7, share("short", "USDT", dec!(1))),
        (100, share("nobody", "USDT", dec!(1))),
        (100, share("short", "XYZ", dec!(1))),
        (100, share("short", "USDT", dec!(0))),
    ] {
        let effects = shard.apply_socialised_share(seq, &bad);
        assert!(
            matches!(effects.as_slice(), [Effect::Rejected { .. }]),
            "{bad:?}: {effects:#?}"
        );
        assert_eq!(shard.state_hash(), hash, "{bad:?} changed the state");
    }
    shard.apply_socialised_share(100, &share("short", "USDT", dec!(3103.448276)));
    assert_eq!(
        balance(&shard, &LedgerAccount::Wallet("short".into())),
        dec!(10000) - dec!(3103.448276)
    );
    assert_eq!(
        balance(&shard, &LedgerAccount::InsuranceFund),
        dec!(3103.448276)
    );
    assert!(
        shard
            .accounts()
            .get("short")
            .is_some_and(|a| a.positions.len() == 1)
    );
    assert_books_balance(&shard);
}

/// The crash on an isolated position: the loser deposits 26,000 and isolates 4,000 on its long,
/// so at 40,000 the position's margin is short by 16,000 and the wallet holds 22,000 beside
/// it. One engine with a 30,000 fund does not deleverage: it closes at the mark, the wallet
/// bears the 16,000 (6,000 left) and pays the liquidation fee from it. The account shard
/// closes at the mark too, but claims the margin's 16,000 at once with the position (isolated,
/// its bankruptcy price 56,000, the fee); the system shard, whose fund could cover it,
/// returns it (covered 0): the wallet takes it back and pays the fee, as one engine's.
#[test]
fn a_returned_isolated_claim_is_borne_by_the_wallet_with_the_fee_as_one_engine() {
    let isolated = [
        CRASH[0],
        r#""type":"deposit","account":"loser","asset":"USDT","amount":"26000""#,
        CRASH[2],
        r#""type":"set_isolated_margin","account":"loser","instrument":"BTCUSDT","amount":"4000""#,
        CRASH[3],
        CRASH[4],
        CRASH[5],
        CRASH[6],
    ];
    let mut with_fund = vec![FUND_DEPOSIT];
    with_fund.extend(isolated);
    let (one, one_effects) = play(FundAuthority::Local, &with_fund);
    assert!(!one_effects.iter().any(|e| matches!(e, Effect::Adl { .. })));
    let fee: Decimal = one_effects
        .iter()
        .filter_map(|e| match e {
            Effect::Liquidation { fee, .. } => Some(fee.value()),
            _ => None,
        })
        .sum();
    assert!(fee > Decimal::ZERO, "one engine charges a fee");
    assert_eq!(loser(&one), dec!(6000) - fee);

    let (mut shard, effects) = play(FundAuthority::SystemShard, &isolated);
    let claimed: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::DeficitBeyondFund {
                deficit,
                resolution: DeficitResolution::Claimed,
                position: Some(position),
                ..
            } => Some((
                deficit.value(),
                position.isolated,
                position.size.value(),
                position.bankruptcy_price.value(),
                position.fee.value(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        claimed,
        [(dec!(16000), true, dec!(-1), dec!(56000), fee)],
        "the claim carries the isolated position"
    );
    assert_eq!(loser(&shard), dec!(22000), "the wallet beside it untouched");
    let effects = shard.apply_claim_answer(
        100,
        &ClaimAnswer {
            returned: true,
            fee,
            ..answer(dec!(16000), dec!(0), dec!(30000))
        },
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::DeficitBeyondFund { .. })),
        "not the account's debt: {effects:#?}"
    );
    assert_eq!(loser(&shard), loser(&one));
    assert_eq!(balance(&shard, &LedgerAccount::PendingClaims), dec!(0));
    assert_eq!(balance(&shard, &LedgerAccount::InsuranceFund), fee);
    assert_books_balance(&shard);
}
