//! Every loss is borne by someone (issue: "the insurance fund goes negative"): the insurance fund
//! pays a bankrupt account's deficit only as far as it holds it; beyond that, opposite positions
//! are deleveraged at the bankruptcy price, for cross accounts holding several coins as for any
//! other, and what nothing can bear stays the account's debt.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{DeficitResolution, Effect};
use solvent_engine::event::parse_line;
use solvent_engine::ledger::LedgerAccount;

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Plays `bodies` (event bodies without `seq` and `ts`), one second apart; returns the engine
/// and every effect.
fn play(bodies: &[&str]) -> (Engine, Vec<Effect>) {
    play_at(venue(), bodies)
}

fn play_at(venue: Venue, bodies: &[&str]) -> (Engine, Vec<Effect>) {
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut effects = Vec::new();
    for (number, body) in bodies.iter().enumerate() {
        let seq = number + 1;
        let line = format!(
            r#"{{"seq":{seq},"ts":"2026-01-01T00:{:02}:{:02}Z",{body}}}"#,
            seq / 60,
            seq % 60
        );
        effects.extend(engine.apply(&parse_line("insurance", seq, &line).unwrap()));
    }
    (engine, effects)
}

fn balance(engine: &Engine, account: &LedgerAccount, asset: &str) -> Decimal {
    engine.ledger().balance(account, asset)
}

/// A cross account holding USDT and BTC, long 1 BTCUSDT from 60,000, bought from another account
/// of the venue. BTC falls to 40,000 in one confirmed jump: equity 1,000 + 0.1 x 40,000 +
/// (40,000 - 60,000) = -15,000 USDT with an empty insurance fund. The fund pays nothing; the
/// seller's short is deleveraged at the bankruptcy price p where the account ends at exactly
/// nothing once its BTC is sold at the index: 1,000 + 4,000 + (p - 60,000) = 0, p = 55,000.
#[test]
fn a_bankrupt_multi_coin_cross_account_is_deleveraged_not_paid_by_an_empty_fund() {
    let (engine, effects) = play(&[
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"loser","asset":"USDT","amount":"1000""#,
        r#""type":"deposit","account":"loser","asset":"BTC","amount":"0.1""#,
        r#""type":"deposit","account":"winner","asset":"USDT","amount":"100000""#,
        r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"winner""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
    ]);
    let deficit = effects
        .iter()
        .find_map(|e| match e {
            Effect::DeficitBeyondFund {
                account,
                asset,
                deficit,
                fund,
                resolution,
                ..
            } if account == "loser" => {
                Some((asset.clone(), deficit.value(), fund.value(), *resolution))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no deficit beyond the fund: {effects:#?}"));
    assert_eq!(
        deficit,
        (
            "USDT".to_owned(),
            dec!(15000),
            dec!(0),
            DeficitResolution::Adl
        )
    );
    let adl = effects
        .iter()
        .find_map(|e| match e {
            Effect::Adl {
                counterparty,
                size,
                price,
                ..
            } => Some((counterparty.clone(), size.value(), price.value())),
            _ => None,
        })
        .unwrap();
    assert_eq!(adl.0, "winner");
    assert_eq!(adl.1, dec!(1), "the winner's short of 1 is bought back");
    assert!(
        (adl.2 - dec!(55000)).abs() <= dec!(0.01),
        "bankruptcy price {} (expected 55,000)",
        adl.2
    );
    for asset in ["USDT", "BTC"] {
        assert!(
            balance(&engine, &LedgerAccount::InsuranceFund, asset) >= Decimal::ZERO,
            "the fund went negative in {asset}"
        );
        let left = balance(&engine, &LedgerAccount::Wallet("loser".into()), asset);
        assert!(
            left.abs() <= dec!(0.01),
            "the bankrupt account is left with {left} {asset}"
        );
    }
    // The winner keeps the profit down to the bankruptcy price: 55,000 sold at 60,000.
    let winner = balance(&engine, &LedgerAccount::Wallet("winner".into()), "USDT");
    assert!(
        (winner - dec!(105000)).abs() <= dec!(0.01),
        "winner holds {winner} USDT"
    );
}

/// The same bankruptcy against a seller outside the venue (`external`): nobody inside can be
/// deleveraged, the empty fund pays nothing, and the 15,000 USDT deficit (less the BTC sold at the
/// index) stays the account's debt, reported as such: no money is created.
#[test]
fn a_deficit_nobody_inside_can_bear_stays_the_accounts_debt() {
    let (engine, effects) = play(&[
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"loser","asset":"USDT","amount":"1000""#,
        r#""type":"deposit","account":"loser","asset":"BTC","amount":"0.1""#,
        r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
    ]);
    assert!(
        effects.iter().any(|e| matches!(e,
            Effect::DeficitBeyondFund { account, deficit, resolution: DeficitResolution::AccountDebt, .. }
                if account == "loser" && deficit.value() == dec!(15000))),
        "no debt recorded: {effects:#?}"
    );
    assert_eq!(
        balance(&engine, &LedgerAccount::InsuranceFund, "USDT"),
        Decimal::ZERO
    );
    assert_eq!(
        balance(&engine, &LedgerAccount::Wallet("loser".into()), "USDT"),
        dec!(-15000)
    );
    for (asset, total) in engine.ledger().totals() {
        assert!(total.is_zero(), "{asset} sums to {total}");
    }
}

/// A venue that socialises deficits (`deficits = "socialise"`): the loser, long 1.5 BTCUSDT from
/// 60,000 against two shorts of the venue (1 and 0.5), is bankrupt at 40,000: 1,000 + 0.1 x
/// 40,000 + 1.5 x (40,000 - 60,000) = -25,000 USDT, the fund empty. Nobody is deleveraged:
/// the loser's position closes at the market and the shorts, in profit by 20,000 and 10,000,
/// pay 25,000 pro rata: 16,666.666666 and 8,333.333333 rounded down to USDT's 6 decimals, the
/// last unit to the larger profit, so 16,666.666667 + 8,333.333333 = 25,000 exactly.
#[test]
fn a_venue_that_socialises_shares_the_deficit_pro_rata_to_profit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap().replacen(
        "[venue]\n",
        "[venue]\ndeficits = \"socialise\"\n",
        1,
    );
    let venue = Venue::from_toml("socialising", &text).unwrap();
    assert_eq!(
        venue.deficits,
        solvent_core::venue::DeficitPolicy::Socialise
    );
    let (engine, effects) = play_at(
        venue,
        &[
            r#""type":"index_price","underlying":"BTC","price":"60000""#,
            r#""type":"deposit","account":"loser","asset":"USDT","amount":"1000""#,
            r#""type":"deposit","account":"loser","asset":"BTC","amount":"0.1""#,
            r#""type":"deposit","account":"big","asset":"USDT","amount":"100000""#,
            r#""type":"deposit","account":"small","asset":"USDT","amount":"100000""#,
            r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"big""#,
            r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"0.5","price":"60000","counterparty":"small""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
        ],
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Adl { .. })),
        "a socialising venue deleverages nobody: {effects:#?}"
    );
    assert!(
        effects.iter().any(|e| matches!(e,
            Effect::DeficitBeyondFund { account, deficit, resolution: DeficitResolution::Socialised, .. }
                if account == "loser" && deficit.value() == dec!(25000))),
        "no socialised deficit: {effects:#?}"
    );
    let wallet = |id: &str| balance(&engine, &LedgerAccount::Wallet(id.into()), "USDT");
    assert_eq!(wallet("big"), dec!(100000) - dec!(16666.666667));
    assert_eq!(wallet("small"), dec!(100000) - dec!(8333.333333));
    assert_eq!(wallet("loser"), Decimal::ZERO);
    assert_eq!(
        balance(&engine, &LedgerAccount::InsuranceFund, "USDT"),
        Decimal::ZERO
    );
    for (asset, total) in engine.ledger().totals() {
        assert!(total.is_zero(), "{asset} sums to {total}");
    }
}
