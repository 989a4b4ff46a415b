//! A first end-to-end pass: deposit, trade, price falls, partial liquidation, bankruptcy — each
//! effect checked against its hand derivation.
//!
//! One account, 10,000 USDT, buys 1 BTCUSDT at 60,000 (fee 6, so its balance is 9,994). The
//! default venue margins BTCUSDT at tier 1: MM = 0.5% of value, IM = 1/20 of value (default
//! leverage 20). Health = equity / MM; reduce-only at or below 1.2, liquidation at or below 1.05.
//! The engine's default liquidation (`EngineConfig::default`): 20% of a position per step (size
//! rounded up to the 0.001 step) while its notional is above 10,000 USD, at the mark; fee 0.5% of
//! the notional closed, capped at half the share of equity matching the share of MM the step
//! freed (`cap = equity x freed / 2`), rounded down to USDT's 6 decimals.
#![allow(clippy::unwrap_used, reason = "tests")]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{DeficitResolution, Effect, LiquidationReason, RejectReason};
use solvent_engine::event::parse_line;
use solvent_engine::ledger::LedgerAccount;
use solvent_risk::AccountState;

/// The effects of each event, in order (index 0 = seq 1).
fn run() -> (Engine, Vec<Vec<Effect>>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    let mut engine = Engine::new(venue, EngineConfig::default());
    let lines = [
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"index_price","underlying":"BTC","price":"60000"}"#,
        r#"{"seq":2,"ts":"2026-01-01T00:00:01Z","type":"deposit","account":"a1","asset":"USDT","amount":"10000"}"#,
        r#"{"seq":3,"ts":"2026-01-01T00:00:02Z","type":"fill","account":"a1","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","fee":"6","counterparty":"external"}"#,
        r#"{"seq":4,"ts":"2026-01-01T00:00:03Z","type":"index_price","underlying":"BTC","price":"55000"}"#,
        r#"{"seq":5,"ts":"2026-01-01T00:00:04Z","type":"index_price","underlying":"BTC","price":"51000"}"#,
        r#"{"seq":6,"ts":"2026-01-01T00:00:05Z","type":"index_price","underlying":"BTC","price":"50500"}"#,
        r#"{"seq":7,"ts":"2026-01-01T00:00:06Z","type":"index_price","underlying":"BTC","price":"50300"}"#,
        r#"{"seq":8,"ts":"2026-01-01T00:00:07Z","type":"index_price","underlying":"BTC","price":"50150"}"#,
        r#"{"seq":9,"ts":"2026-01-01T00:00:08Z","type":"index_price","underlying":"BTC","price":"49000"}"#,
        r#"{"seq":10,"ts":"2026-01-01T00:00:09Z","type":"withdraw","account":"a1","asset":"USDT","amount":"100000"}"#,
    ];
    let mut all = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let envelope = parse_line("smoke", n + 1, line).unwrap();
        all.push(engine.apply(&envelope));
        // Money is only ever moved, never made: every asset's ledger sums to zero.
        for total in engine.ledger().totals().values() {
            assert!(total.is_zero());
        }
    }
    (engine, all)
}

/// `(size, price, fee)` of each liquidation step among `effects`.
fn liquidations(effects: &[Effect]) -> Vec<(Decimal, Decimal, Decimal)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Liquidation {
                account,
                instrument,
                size,
                price,
                fee,
                reason,
            } => {
                assert_eq!((account.as_str(), instrument.as_str()), ("a1", "BTCUSDT"));
                assert_eq!(*reason, LiquidationReason::HealthBelowThreshold);
                Some((size.value(), price.value(), fee.value()))
            }
            _ => None,
        })
        .collect()
}

fn state_changes(effects: &[Effect]) -> Vec<(AccountState, AccountState)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// The liquidation-fee cap of one step: `equity x (closed / size before) / 2`, rounded down to
/// 6 decimals (the fee, 0.5% of the notional closed, is larger at every step here).
fn fee_cap(equity: Decimal, closed: Decimal, size_before: Decimal) -> Decimal {
    (equity * closed / size_before / dec!(2)).trunc_with_scale(6)
}

#[test]
fn smoke_liquidates_partially_then_covers_the_bankrupt_remainder() {
    let (engine, effects) = run();

    // Seq 4-6 (55,000, 51,000, 50,500): equity 9,994 - 9,500 = 494 against MM 252.5 at 50,500:
    // health 1.956, healthy; nothing happens to the state.
    for seq in 4..=6 {
        assert!(state_changes(&effects[seq - 1]).is_empty(), "seq {seq}");
    }

    // Seq 7, 50,300: equity = 9,994 + (50,300 - 60,000) = 294; MM = 0.005 x 50,300 = 251.5;
    // health = 294 / 251.5 = 1.16899 <= 1.2: reduce-only, and a margin call for the deposit that
    // restores IM: 50,300 / 20 - 294 = 2,515 - 294 = 2,221.
    assert_eq!(
        state_changes(&effects[6]),
        [(AccountState::Healthy, AccountState::ReduceOnly)]
    );
    let call = effects[6]
        .iter()
        .find_map(|e| match e {
            Effect::MarginCall {
                health, deposit, ..
            } => Some((health.unwrap(), deposit.value())),
            _ => None,
        })
        .unwrap();
    assert!((call.0 - 294.0 / 251.5).abs() < 1e-12, "{call:?}");
    assert_eq!(call.1, dec!(2221));

    // Seq 8, 50,150: equity = 9,994 - 9,850 = 144; MM = 250.75; health 0.574 <= 1.05:
    // liquidation, six partial steps at the mark. Each step closes ceil(20% x size, 0.001) and
    // realises (60,000 - 50,150) x closed, which equity already counted; only the fee lowers
    // equity. The step stops when health > 1.05.
    //   step  size before  closed                  fee cap (equity x freed / 2)
    //   1     1            0.2                     144 x 0.2 / 2            = 14.4
    //   2     0.8          0.16                    129.6 x 0.2 / 2          = 12.96
    //   3     0.64         0.128                   116.64 x 0.2 / 2         = 11.664
    //   4     0.512        0.1024 -> 0.103         104.976 x 0.103/0.512/2  = 10.559109 (.375 cut)
    //   5     0.409        0.0818 -> 0.082         94.416891 x 0.082/0.409/2 = 9.464773
    //   6     0.327        0.0654 -> 0.066         84.952118 x 0.066/0.327/2 = 8.573149
    // After step 5 health = 84.952118 / (0.005 x 0.327 x 50,150 = 81.99525) = 1.036 <= 1.05;
    // after step 6 health = 76.378969 / (0.005 x 0.261 x 50,150 = 65.44575) = 1.167 > 1.05:
    // back to reduce-only with 0.261 BTC. Each fee is below 0.5% of its notional (0.2 x 50,150 x
    // 0.005 = 50.15 for the first), so the cap decides.
    let mut equity = dec!(144);
    let mut size = dec!(1);
    let mut expected = Vec::new();
    for closed in [
        dec!(0.2),
        dec!(0.16),
        dec!(0.128),
        dec!(0.103),
        dec!(0.082),
        dec!(0.066),
    ] {
        let fee = fee_cap(equity, closed, size);
        assert!(fee < closed * dec!(50150) * dec!(0.005));
        expected.push((-closed, dec!(50150), fee));
        equity -= fee;
        size -= closed;
    }
    assert_eq!(liquidations(&effects[7]), expected);
    assert_eq!(
        expected.iter().map(|s| s.2).collect::<Vec<_>>(),
        [
            dec!(14.4),
            dec!(12.96),
            dec!(11.664),
            dec!(10.559109),
            dec!(9.464773),
            dec!(8.573149)
        ]
    );
    assert_eq!(size, dec!(0.261));
    assert_eq!(equity, dec!(76.378969));
    assert_eq!(
        state_changes(&effects[7]),
        [
            (AccountState::ReduceOnly, AccountState::Liquidating),
            (AccountState::Liquidating, AccountState::ReduceOnly)
        ]
    );
    // The insurance fund received the six fees: 14.4 + 12.96 + 11.664 + 10.559109 + 9.464773 +
    // 8.573149 = 67.621031.
    let fees: Decimal = expected.iter().map(|s| s.2).sum();
    assert_eq!(fees, dec!(67.621031));

    // Seq 9, 49,000: equity = 76.378969 + 0.261 x (49,000 - 50,150) = 76.378969 - 300.15
    // = -223.771031 < 0: bankrupt. The remaining 0.261 closes whole at the mark, without fee,
    // realising 0.261 x 11,000 = 2,871. The seller was outside the venue: nobody inside can be
    // deleveraged. The insurance fund pays what it holds, 67.621031, and no more (it never goes
    // below zero); the rest, 223.771031 - 67.621031 = 156.15, stays the account's debt, reported
    // as a deficit beyond the fund. Flat with a negative balance, the account stays bankrupt.
    assert_eq!(
        liquidations(&effects[8]),
        [(dec!(-0.261), dec!(49000), dec!(0))]
    );
    let cover = effects[8]
        .iter()
        .find_map(|e| match e {
            Effect::InsuranceFundChanged {
                balance, change, ..
            } => Some((balance.value(), change.value())),
            _ => None,
        })
        .unwrap();
    assert_eq!(cover, (dec!(0), dec!(-67.621031)));
    let beyond = effects[8]
        .iter()
        .find_map(|e| match e {
            Effect::DeficitBeyondFund {
                deficit,
                fund,
                resolution,
                ..
            } => Some((deficit.value(), fund.value(), *resolution)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        beyond,
        (
            dec!(223.771031),
            dec!(67.621031),
            DeficitResolution::AccountDebt
        )
    );
    assert_eq!(
        state_changes(&effects[8]),
        [(AccountState::ReduceOnly, AccountState::Bankrupt)]
    );

    // Seq 10: nothing to withdraw. The wallet: 10,000 - 6 (fee) - 10,150.15 (losses:
    // 9,850 x 0.739 + 2,871) - 67.621031 (liquidation fees) + 67.621031 (cover) = -156.15.
    assert!(matches!(
        effects[9].as_slice(),
        [Effect::Rejected {
            reason: RejectReason::InsufficientBalance,
            ..
        }]
    ));
    let wallet = LedgerAccount::Wallet("a1".into());
    assert_eq!(engine.ledger().balance(&wallet, "USDT"), dec!(-156.15));
    assert_eq!(
        engine
            .ledger()
            .balance(&LedgerAccount::InsuranceFund, "USDT"),
        Decimal::ZERO
    );
}
