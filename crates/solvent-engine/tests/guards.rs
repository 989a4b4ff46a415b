//! Each guard of DESIGN.md 8.3 replaying a real incident, and the engine's hand-worked flows:
//! margin calls, reduce-only, funding, liquidation, the insurance fund and ADL.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::{Venue, WithdrawalRule};
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{DeferralReason, Effect, RejectReason};
use solvent_engine::event::parse_line;
use solvent_engine::ledger::LedgerAccount;
use solvent_risk::AccountState;

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Binance USDS-M as shipped, with the withdrawal rule `rule` (the file sets Binance's own).
fn binance_usdm(rule: WithdrawalRule) -> Venue {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../venues/binance-usdm.toml"
    );
    let mut venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    venue.withdrawal = rule;
    venue
}

/// Feeds events written compactly as `(type, fields)`; seq and time are generated, one second apart.
struct Run {
    engine: Engine,
    seq: u64,
}

impl Run {
    fn new(config: EngineConfig) -> Self {
        Self::on(venue(), config)
    }

    fn on(venue: Venue, config: EngineConfig) -> Self {
        Self {
            engine: Engine::new(venue, config),
            seq: 0,
        }
    }

    fn at(&mut self, seconds: u64, kind: &str, fields: &str) -> Vec<Effect> {
        self.seq += 1;
        let line = format!(
            r#"{{"seq":{},"ts":"{}","type":"{kind}",{fields}}}"#,
            self.seq,
            jiff::Timestamp::from_second(1_767_225_600 + i64::try_from(seconds).unwrap()).unwrap()
        );
        let envelope = parse_line("test", usize::try_from(self.seq).unwrap(), &line).unwrap();
        let effects = self.engine.apply(&envelope);
        for total in self.engine.ledger().totals().values() {
            assert_eq!(
                *total,
                Decimal::ZERO,
                "money created or destroyed at {line}"
            );
        }
        effects
    }

    fn next(&mut self, kind: &str, fields: &str) -> Vec<Effect> {
        let seconds = self.seq;
        self.at(seconds, kind, fields)
    }

    fn index_price(&mut self, underlying: &str, price: &str) -> Vec<Effect> {
        self.next(
            "index_price",
            &format!(r#""underlying":"{underlying}","price":"{price}""#),
        )
    }

    fn mark_price(&mut self, instrument: &str, price: &str) -> Vec<Effect> {
        self.next(
            "mark_price",
            &format!(r#""instrument":"{instrument}","price":"{price}""#),
        )
    }

    fn deposit(&mut self, account: &str, asset: &str, amount: &str) -> Vec<Effect> {
        self.next(
            "deposit",
            &format!(r#""account":"{account}","asset":"{asset}","amount":"{amount}""#),
        )
    }

    fn withdraw(&mut self, account: &str, asset: &str, amount: &str) -> Vec<Effect> {
        self.next(
            "withdraw",
            &format!(r#""account":"{account}","asset":"{asset}","amount":"{amount}""#),
        )
    }

    /// A fill of `account` against `counterparty` (`external`: the outside world).
    fn fill(
        &mut self,
        account: &str,
        instrument: &str,
        side: &str,
        size: &str,
        price: &str,
        counterparty: &str,
    ) -> Vec<Effect> {
        self.next(
            "fill",
            &format!(
                r#""account":"{account}","instrument":"{instrument}","side":"{side}","size":"{size}","price":"{price}","counterparty":"{counterparty}""#
            ),
        )
    }

    fn set_leverage(&mut self, account: &str, instrument: &str, leverage: &str) -> Vec<Effect> {
        self.next(
            "set_leverage",
            &format!(
                r#""account":"{account}","instrument":"{instrument}","leverage":"{leverage}""#
            ),
        )
    }

    fn set_isolated_margin(
        &mut self,
        account: &str,
        instrument: &str,
        amount: &str,
    ) -> Vec<Effect> {
        self.next(
            "set_isolated_margin",
            &format!(r#""account":"{account}","instrument":"{instrument}","amount":"{amount}""#),
        )
    }

    fn balance(&self, account: &str, asset: &str) -> Decimal {
        self.engine
            .ledger()
            .balance(&LedgerAccount::named(account), asset)
    }

    fn state(&self, account: &str) -> AccountState {
        self.engine.accounts().get(account).unwrap().state
    }
}

fn rejection(effects: &[Effect]) -> Option<RejectReason> {
    effects.iter().find_map(|e| match e {
        Effect::Rejected { reason, .. } => Some(*reason),
        _ => None,
    })
}

fn index(run: &Run) -> Decimal {
    run.engine.market().index["BTC"].value()
}

#[test]
fn deribit_2019_one_bad_source_does_not_move_the_index() {
    // March 2019: one of Deribit's index sources printed a bad BTC price and mass liquidations
    // followed. The index is the median of fresh sources after dropping outliers (5%).
    let mut run = Run::new(EngineConfig::default());
    run.next(
        "index_price",
        r#""underlying":"BTC","price":"4000","source":"bitstamp""#,
    );
    run.next(
        "index_price",
        r#""underlying":"BTC","price":"4002","source":"coinbase""#,
    );
    run.next(
        "index_price",
        r#""underlying":"BTC","price":"3998","source":"kraken""#,
    );
    assert_eq!(index(&run), dec!(4000));
    let effects = run.next(
        "index_price",
        r#""underlying":"BTC","price":"3000","source":"coinbase""#,
    );
    // Sources 4000, 3000, 3998: median 3998; 3000 is 25% away and dropped; median of the rest 3999.
    assert_eq!(index(&run), dec!(3999));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::PriceGuarded { .. }))
    );
}

#[test]
fn binance_2025_collateral_is_valued_at_the_external_index() {
    // October 2025: collateral (USDe, wBETH, BNSOL) marked on Binance's own thin book de-pegged
    // and liquidated accounts while external markets held. Solvent values collateral at the index,
    // whose sources are external: the venue's own book is one source among several and is dropped.
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "100000");
    run.next(
        "index_price",
        r#""underlying":"USDe","price":"0.9995","source":"curve""#,
    );
    run.next(
        "index_price",
        r#""underlying":"USDe","price":"0.9992","source":"bybit""#,
    );
    run.deposit("u", "USDe", "20000");
    run.deposit("u", "USDT", "1");
    run.fill("u", "BTCUSDT", "buy", "1", "100000", "external");
    assert_eq!(run.state("u"), AccountState::Healthy);
    let effects = run.next(
        "index_price",
        r#""underlying":"USDe","price":"0.65","source":"own_book""#,
    );
    // Median of 0.9995, 0.9992, 0.65 is 0.9992; 0.65 is 35% away and dropped: index 0.99935.
    assert_eq!(run.engine.market().index["USDe"].value(), dec!(0.99935));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Liquidation { .. }))
    );
    assert_eq!(run.state("u"), AccountState::Healthy);
}

#[test]
fn a_stale_index_freezes_liquidation_but_not_computation() {
    let mut run = Run::new(EngineConfig::default());
    run.at(0, "index_price", r#""underlying":"BTC","price":"60000""#);
    run.at(
        1,
        "deposit",
        r#""account":"a","asset":"USDT","amount":"3100""#,
    );
    run.at(
        2,
        "fill",
        r#""account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
    );
    // Ten minutes without an index update: the feed is stale (limit 60 s). A mark fall now shows
    // in the figures (equity 3,100 - 2,900 = 200 against MM 285.5) but must not liquidate.
    let crash = run.at(
        601,
        "mark_price",
        r#""instrument":"BTCUSDT","price":"57100""#,
    );
    assert_eq!(run.state("a"), AccountState::Liquidating);
    assert!(
        !crash
            .iter()
            .any(|e| matches!(e, Effect::Liquidation { .. })),
        "{crash:?}"
    );
    assert!(crash.iter().any(|e| matches!(
        e,
        Effect::LiquidationDeferred {
            reason: DeferralReason::StaleIndex,
            ..
        }
    )));
    // A fresh index confirms the fall and liquidation proceeds.
    let fresh = run.at(602, "index_price", r#""underlying":"BTC","price":"57050""#);
    assert!(
        fresh
            .iter()
            .any(|e| matches!(e, Effect::Liquidation { .. })),
        "{fresh:?}"
    );
}

/// An isolated position whose mark falls through its liquidation threshold while the index is
/// stale waits; the first fresh index must find it, though it moves no price the position is
/// banded on (a linear contract with a given mark is banded on its mark).
#[test]
fn an_isolated_breach_held_by_a_stale_index_is_liquidated_at_the_first_fresh_one() {
    let mut run = Run::new(EngineConfig::default());
    run.at(0, "index_price", r#""underlying":"BTC","price":"60000""#);
    run.at(
        1,
        "deposit",
        r#""account":"i","asset":"USDT","amount":"10000""#,
    );
    run.at(
        2,
        "fill",
        r#""account":"i","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
    );
    // At 100x the position's initial margin is 600 USDT.
    run.at(
        3,
        "set_leverage",
        r#""account":"i","instrument":"BTCUSDT","leverage":"100""#,
    );
    let isolated = run.at(
        3,
        "set_isolated_margin",
        r#""account":"i","instrument":"BTCUSDT","amount":"700""#,
    );
    assert_eq!(rejection(&isolated), None, "{isolated:?}");
    run.at(4, "mark_price", r#""instrument":"BTCUSDT","price":"60000""#);
    // Ten minutes later the index is stale: isolated equity 700 - 450 = 250 against MM
    // 0.5% x 59,550 = 297.75 (health 0.84) waits.
    let held = run.at(
        604,
        "mark_price",
        r#""instrument":"BTCUSDT","price":"59550""#,
    );
    assert!(
        held.iter().any(|e| matches!(
            e,
            Effect::LiquidationDeferred {
                reason: DeferralReason::StaleIndex,
                ..
            }
        )),
        "{held:?}"
    );
    let fresh = run.at(605, "index_price", r#""underlying":"BTC","price":"59560""#);
    assert!(
        fresh.iter().any(
            |e| matches!(e, Effect::Liquidation { account, instrument, .. } if account == "i" && instrument == "BTCUSDT")
        ),
        "{fresh:?}"
    );
}

#[test]
fn mango_2022_pumped_unrealised_profit_cannot_be_withdrawn() {
    // October 2022: a trader pumped MNGO's thin market, marked a huge unrealised profit and
    // borrowed and withdrew against it. Unrealised profit is not a balance: only cash leaves.
    let mut run = Run::new(EngineConfig::default());
    run.index_price("ETH", "3000");
    run.deposit("m", "USDT", "5000");
    run.fill("m", "ETHUSDT", "buy", "10", "3000", "external");
    // The mark is pumped 30%: within a 5% band of the index it is clamped; the index (external
    // sources) moves only 4%.
    let pumped = run.mark_price("ETHUSDT", "3900");
    assert!(
        pumped
            .iter()
            .any(|e| matches!(e, Effect::PriceGuarded { .. }))
    );
    assert_eq!(run.engine.market().mark["ETHUSDT"].value(), dec!(3150));
    // 10 x (3,150 - 3,000) = 1,500 of unrealised profit; the wallet holds 5,000 USDT of cash.
    let greedy = run.withdraw("m", "USDT", "6000");
    assert_eq!(rejection(&greedy), Some(RejectReason::InsufficientBalance));
    assert_eq!(run.balance("m", "USDT"), dec!(5000));
}

/// Account `b` on the Binance USDS-M file under withdrawal `rule`: 1,000 USDT and `more`
/// deposits, long 0.1 BTCUSDT at 50x from 50,000, then BTC's index and BTCUSDT's mark at
/// `to`.
fn long_btcusdt_at_50x(rule: WithdrawalRule, more: &[(&str, &str)], to: &str) -> Run {
    let mut run = Run::on(binance_usdm(rule), EngineConfig::default());
    run.index_price("BTC", "50000");
    run.deposit("b", "USDT", "1000");
    for (asset, amount) in more {
        run.next(
            "deposit",
            &format!(r#""account":"b","asset":"{asset}","amount":"{amount}""#),
        );
    }
    run.set_leverage("b", "BTCUSDT", "50");
    run.fill("b", "BTCUSDT", "buy", "0.1", "50000", "external");
    run.next(
        "index_price",
        &format!(r#""underlying":"BTC","price":"{to}""#),
    );
    run.next(
        "mark_price",
        &format!(r#""instrument":"BTCUSDT","price":"{to}""#),
    );
    run
}

#[test]
fn on_binance_the_wallet_keeps_the_maintenance_margin_whatever_the_unrealised_profit() {
    // Binance's cross withdrawal: at most the wallet above the cross maintenance margin, and
    // no more than equity above the initial margin (`[venue] withdrawal =
    // "wallet_above_maintenance_margin"`). The same account on DESIGN.md 7's default may empty
    // its wallet while its profit covers the initial margin.
    // 0.1 BTC from 50,000 to 52,000: 200 of unrealised profit; notional 5,200, IM 5,200 / 50 =
    // 104, MM 5,200 x 0.4% = 20.8 (bracket 1). Binance: min(1,000 - 20.8, 1,200 - 104) = 979.2;
    // DESIGN.md 7: min(1,000, 1,096) = 1,000.
    let open = |rule: WithdrawalRule| long_btcusdt_at_50x(rule, &[], "52000");
    let mut run = open(WithdrawalRule::WalletAboveMaintenanceMargin);
    let too_much = run.withdraw("b", "USDT", "979.21");
    assert_eq!(
        rejection(&too_much),
        Some(RejectReason::ExceedsWithdrawable)
    );
    assert_eq!(run.balance("b", "USDT"), dec!(1000));
    let most = run.withdraw("b", "USDT", "979.2");
    assert_eq!(rejection(&most), None, "{most:?}");
    assert_eq!(run.balance("b", "USDT"), dec!(20.8));

    let mut run = open(WithdrawalRule::EquityAboveInitialMargin);
    let all = run.withdraw("b", "USDT", "1000");
    assert_eq!(rejection(&all), None, "{all:?}");
}

#[test]
fn under_wallet_less_unrealised_loss_each_coin_keeps_its_positions_unrealised_loss() {
    // Bybit's rule (`[venue] withdrawal = "wallet_less_unrealised_loss"`, API documentation
    // "Get Transferable Amount (Unified)"): a coin pays out no more than its wallet +
    // min(unrealised P&L of the positions settled in it, 0), the account no more than equity
    // above IM. Taken here on the Binance USDS-M file, whose BTC counts as collateral, so that
    // the BTC lifts equity far above IM while the USDT-settled position is in loss.
    // BTC to 48,000: the 0.1 BTC is worth 4,800; the position has lost 0.1 x (48,000 - 50,000)
    // = -200 of USDT; notional 4,800, IM 4,800 / 50 = 96, MM 4,800 x 0.4% = 19.2. Equity 1,000
    // + 4,800 - 200 = 5,600, 5,504 above IM.
    // Bybit's rule: min(1,000 + min(-200, 0), 5,504) = 800.
    // DESIGN.md 7: min(1,000, 5,504) = 1,000. Binance's: min(1,000 - 19.2, 5,504) = 980.8.
    let open = |rule: WithdrawalRule| long_btcusdt_at_50x(rule, &[("BTC", "0.1")], "48000");
    let mut run = open(WithdrawalRule::WalletLessUnrealisedLoss);
    // The report says 800, and names the limit.
    let report = run.engine.margin_report("b").unwrap();
    assert_eq!(report.equity.value(), dec!(5600));
    assert_eq!(report.initial_margin.value(), dec!(96));
    assert_eq!(report.withdrawable.value(), dec!(800));
    assert_eq!(report.withdrawable_limit.name(), "wallet_unrealised_loss");
    // The engine agrees: one cent above the report's figure is refused, the figure is paid.
    let too_much = run.withdraw("b", "USDT", "800.01");
    assert_eq!(
        rejection(&too_much),
        Some(RejectReason::ExceedsWithdrawable),
        "{too_much:?}"
    );
    assert_eq!(run.balance("b", "USDT"), dec!(1000));
    let most = run.withdraw("b", "USDT", "800");
    assert_eq!(rejection(&most), None, "{most:?}");
    assert_eq!(run.balance("b", "USDT"), dec!(200));
    // The USDT wallet now holds exactly the loss: nothing more of it leaves, and the report
    // says 0 (BTC is not cash-like here, so it adds nothing to `withdrawable`).
    let report = run.engine.margin_report("b").unwrap();
    assert_eq!(report.withdrawable.value(), dec!(0));
    let cent = run.withdraw("b", "USDT", "0.01");
    assert_eq!(rejection(&cent), Some(RejectReason::ExceedsWithdrawable));
    // BTC is judged by its own wallet (no position settles in BTC) and by equity above IM:
    // 0.01 BTC (480) leaves equity 5,600 - 800 - 480 = 4,320, far above IM 96.
    let btc = run.withdraw("b", "BTC", "0.01");
    assert_eq!(rejection(&btc), None, "{btc:?}");
    assert_eq!(run.balance("b", "BTC"), dec!(0.09));

    // The same account under DESIGN.md 7 pays the whole USDT wallet; under Binance's rule
    // 980.8 and not a cent more.
    let mut run = open(WithdrawalRule::EquityAboveInitialMargin);
    assert_eq!(
        run.engine.margin_report("b").unwrap().withdrawable.value(),
        dec!(1000)
    );
    let all = run.withdraw("b", "USDT", "1000");
    assert_eq!(rejection(&all), None, "{all:?}");
    let mut run = open(WithdrawalRule::WalletAboveMaintenanceMargin);
    assert_eq!(
        run.engine.margin_report("b").unwrap().withdrawable.value(),
        dec!(980.8)
    );
    let over = run.withdraw("b", "USDT", "980.81");
    assert_eq!(rejection(&over), Some(RejectReason::ExceedsWithdrawable));
}

#[test]
fn on_binance_isolated_margin_moves_keep_each_wallets_maintenance_margin() {
    // Binance's max addable (cross wallet - cross MM) and max removable (isolated wallet -
    // isolated MM, and isolated equity above IM) isolated margin; DESIGN.md 7's default asks
    // only the initial margins.
    let open = |venue: Venue| {
        let mut run = Run::on(venue, EngineConfig::default());
        run.index_price("BTC", "50000");
        run.index_price("ETH", "3000");
        run.deposit("b", "USDT", "1000");
        for instrument in ["BTCUSDT", "ETHUSDT"] {
            run.next(
                "set_leverage",
                &format!(r#""account":"b","instrument":"{instrument}","leverage":"100""#),
            );
        }
        run.fill("b", "BTCUSDT", "buy", "0.1", "50000", "external");
        run.fill("b", "ETHUSDT", "buy", "1", "3000", "external");
        // BTC to 52,000: 200 of unrealised profit on 0.1 BTC; notional 5,200, IM 52, MM 20.8.
        run.index_price("BTC", "52000");
        run.mark_price("BTCUSDT", "52000");
        run
    };
    use WithdrawalRule::{EquityAboveInitialMargin, WalletAboveMaintenanceMargin};

    // Into ETHUSDT isolated: the cross wallet keeps BTCUSDT's MM of 20.8 on Binance.
    let mut run = open(binance_usdm(WalletAboveMaintenanceMargin));
    let too_much = run.set_isolated_margin("b", "ETHUSDT", "979.21");
    assert_eq!(
        rejection(&too_much),
        Some(RejectReason::ExceedsWithdrawable),
        "{too_much:?}"
    );
    assert_eq!(run.balance("b", "USDT"), dec!(1000));
    let most = run.set_isolated_margin("b", "ETHUSDT", "979.2");
    assert_eq!(rejection(&most), None, "{most:?}");
    assert_eq!(run.balance("b", "USDT"), dec!(20.8));
    let mut run = open(binance_usdm(EquityAboveInitialMargin));
    let all = run.set_isolated_margin("b", "ETHUSDT", "990");
    assert_eq!(rejection(&all), None, "{all:?}");

    // Out of BTCUSDT isolated: its wallet keeps its MM of 20.8 on Binance, though its equity
    // (margin + 200 of profit) covers its IM of 52 at any margin.
    let mut run = open(binance_usdm(WalletAboveMaintenanceMargin));
    let isolate = run.set_isolated_margin("b", "BTCUSDT", "100");
    assert_eq!(rejection(&isolate), None, "{isolate:?}");
    let below = run.set_isolated_margin("b", "BTCUSDT", "20.79");
    assert_eq!(
        rejection(&below),
        Some(RejectReason::ExceedsWithdrawable),
        "{below:?}"
    );
    let at = run.set_isolated_margin("b", "BTCUSDT", "20.8");
    assert_eq!(rejection(&at), None, "{at:?}");
    let mut run = open(binance_usdm(EquityAboveInitialMargin));
    run.set_isolated_margin("b", "BTCUSDT", "100");
    let low = run.set_isolated_margin("b", "BTCUSDT", "1");
    assert_eq!(rejection(&low), None, "{low:?}");
}

#[test]
fn hyperliquid_2025_no_withdrawal_leaves_an_account_below_initial_margin() {
    // March 2025: a whale withdrew unrealised profit and left a position at the edge, which the
    // venue's vault had to absorb. A withdrawal that leaves equity below IM is refused.
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "100000");
    run.deposit("w", "USDT", "12000");
    run.set_leverage("w", "BTCUSDT", "10");
    run.fill("w", "BTCUSDT", "buy", "1", "100000", "external");
    // IM = 100,000 / 10 = 10,000; equity 12,000: 2,000 is free, 2,001 is not.
    let too_much = run.withdraw("w", "USDT", "2001");
    assert_eq!(
        rejection(&too_much),
        Some(RejectReason::ExceedsWithdrawable)
    );
    let fine = run.withdraw("w", "USDT", "2000");
    assert_eq!(rejection(&fine), None);
    assert_eq!(run.balance("w", "USDT"), dec!(10000));
}

#[test]
fn dydx_yfi_2023_open_interest_cap() {
    // November 2023: YFI's open interest on dYdX grew far beyond its liquidity, was manipulated
    // and cost the insurance fund about $9M. A cap on open interest refuses new exposure.
    let mut config = EngineConfig::default();
    config
        .guards
        .max_open_interest
        .insert("ETHUSDT".to_owned(), dec!(50));
    let mut run = Run::new(config);
    run.index_price("ETH", "3000");
    run.deposit("y", "USDT", "1000000");
    let within = run.fill("y", "ETHUSDT", "buy", "40", "3000", "external");
    assert_eq!(rejection(&within), None);
    let beyond = run.fill("y", "ETHUSDT", "buy", "20", "3000", "external");
    assert_eq!(rejection(&beyond), Some(RejectReason::OpenInterestCap));
    // Reducing is always allowed.
    let reduce = run.fill("y", "ETHUSDT", "sell", "20", "3000", "external");
    assert_eq!(rejection(&reduce), None);
}

#[test]
fn a_jump_waits_for_confirmation() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "100000");
    let jump = run.index_price("BTC", "70000");
    assert_eq!(index(&run), dec!(100000), "a 30% move is held");
    assert!(
        jump.iter()
            .any(|e| matches!(e, Effect::PriceGuarded { used: None, .. }))
    );
    run.index_price("BTC", "70500");
    assert_eq!(index(&run), dec!(70500), "confirmed by the next update");
}

#[test]
fn liquidation_waits_for_the_breach_to_persist() {
    let mut config = EngineConfig::default();
    config.guards.liquidation_persist_updates = 2;
    let mut run = Run::new(config);
    run.index_price("BTC", "60000");
    run.deposit("p", "USDT", "10000");
    run.fill("p", "BTCUSDT", "buy", "1", "60000", "external");
    let first = run.index_price("BTC", "50150");
    assert!(
        first
            .iter()
            .any(|e| matches!(e, Effect::LiquidationDeferred { .. })),
        "{first:?}"
    );
    assert!(
        !first
            .iter()
            .any(|e| matches!(e, Effect::Liquidation { .. }))
    );
    let second = run.index_price("BTC", "50150");
    assert!(
        second
            .iter()
            .any(|e| matches!(e, Effect::Liquidation { .. })),
        "{second:?}"
    );
}

#[test]
fn margin_call_once_per_episode_and_reduce_only() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    run.deposit("c", "USDT", "10000");
    run.fill("c", "BTCUSDT", "buy", "1", "60000", "external");
    // Equity 10,000 - (60,000 - p); MM 0.5% x p. At 50,350: 350 / 251.75 = 1.39 -> margin call.
    let call = run.index_price("BTC", "50350");
    let calls = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::MarginCall { .. }))
            .count()
    };
    assert_eq!(calls(&call), 1);
    assert_eq!(run.state("c"), AccountState::MarginCall);
    // The call states the deposit restoring IM: IM 50,350 / 20 (the venue's default leverage)
    // = 2,517.5, equity 350 -> 2,167.5.
    assert!(
        call.iter().any(
            |e| matches!(e, Effect::MarginCall { deposit, .. } if deposit.value() == dec!(2167.5))
        ),
        "{call:?}"
    );
    let again = run.index_price("BTC", "50340");
    assert_eq!(calls(&again), 0, "one call per episode");
    // Reduce-only at 50,280: 280 / 251.4 = 1.11. Adding risk is refused, reducing is not.
    run.index_price("BTC", "50280");
    assert_eq!(run.state("c"), AccountState::ReduceOnly);
    let more = run.fill("c", "BTCUSDT", "buy", "0.1", "50280", "external");
    assert_eq!(rejection(&more), Some(RejectReason::ReduceOnly));
    let less = run.fill("c", "BTCUSDT", "sell", "0.5", "50280", "external");
    assert_eq!(rejection(&less), None);
}

#[test]
fn funding_moves_money_from_longs_to_shorts_through_clearing() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "50000");
    run.deposit("long", "USDT", "100000");
    run.deposit("short", "USDT", "100000");
    run.fill("long", "BTCUSDT", "buy", "2", "50000", "short");
    run.next("funding", r#""instrument":"BTCUSDT","rate":"0.0001""#);
    // 2 x 50,000 x 0.01% = 10 USDT from the long, to the short.
    assert_eq!(run.balance("long", "USDT"), dec!(99990));
    assert_eq!(run.balance("short", "USDT"), dec!(100010));
    assert_eq!(run.balance("clearing", "USDT"), dec!(0));
}

#[test]
fn realised_pnl_passes_through_clearing_which_returns_to_zero() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    for id in ["a", "b", "c"] {
        run.next(
            "deposit",
            &format!(r#""account":"{id}","asset":"USDT","amount":"50000""#),
        );
    }
    let fill = |run: &mut Run, account: &str, side: &str, price: &str, counterparty: &str| {
        let effects = run.next(
            "fill",
            &format!(r#""account":"{account}","instrument":"BTCUSDT","side":"{side}","size":"1","price":"{price}","counterparty":"{counterparty}""#),
        );
        assert_eq!(rejection(&effects), None, "{effects:?}");
    };
    fill(&mut run, "a", "buy", "60000", "b"); // a long, b short at 60,000
    fill(&mut run, "a", "sell", "61000", "c"); // a realises +1,000; c long at 61,000
    assert_eq!(run.balance("a", "USDT"), dec!(51000));
    assert_eq!(run.balance("clearing", "USDT"), dec!(-1000));
    fill(&mut run, "b", "buy", "61000", "c"); // b realises -1,000; c closes flat
    assert_eq!(run.balance("b", "USDT"), dec!(49000));
    assert_eq!(run.balance("c", "USDT"), dec!(50000));
    assert_eq!(run.balance("clearing", "USDT"), dec!(0));
}

#[test]
fn a_bankruptcy_the_fund_cannot_cover_is_deleveraged_at_the_bankruptcy_price() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    run.deposit("loser", "USDT", "6100");
    run.deposit("winner", "USDT", "100000");
    run.set_leverage("loser", "BTCUSDT", "10");
    run.fill("loser", "BTCUSDT", "buy", "1", "60000", "winner");
    // A gap far through the liquidation price (confirmed by a second print): the loser's equity
    // is 6,100 - 8,000 = -1,900 at 52,000, and the insurance fund is empty.
    let effects = run.index_price("BTC", "52000");

    let adl = effects.iter().find_map(|e| match e {
        Effect::Adl {
            counterparty,
            price,
            ..
        } => Some((counterparty.clone(), price.value())),
        _ => None,
    });
    let (counterparty, price) = adl.unwrap_or_else(|| panic!("no ADL: {effects:?}"));
    assert_eq!(counterparty, "winner");
    // Bankruptcy price: 6,100 + (p - 60,000) = 0 -> 53,900 (rounded up for a long's liquidation).
    assert!((price - dec!(53900)).abs() < dec!(0.01), "{price}");
    // The loser ends with nothing, not less; the winner gives up part of its profit.
    assert!(
        run.balance("loser", "USDT").abs() < dec!(0.01),
        "{}",
        run.balance("loser", "USDT")
    );
    assert!(
        run.engine
            .accounts()
            .get("loser")
            .unwrap()
            .positions
            .is_empty()
    );
    assert!(run.balance("winner", "USDT") > dec!(100000));
}

#[test]
fn the_same_events_give_the_same_state_hash() {
    let script = |run: &mut Run| {
        run.index_price("BTC", "60000");
        run.deposit("a", "USDT", "10000");
        run.fill("a", "BTCUSDT", "buy", "1", "60000", "external");
        run.index_price("BTC", "50000");
    };
    let mut first = Run::new(EngineConfig::default());
    let mut second = Run::new(EngineConfig::default());
    script(&mut first);
    script(&mut second);
    assert_eq!(first.engine.state_hash(), second.engine.state_hash());
}

/// The service snapshots a copy of the engine taken between two batches while the engine goes
/// on (accounts are shared with the copy until changed): the copy must stay the state at the
/// moment it was taken, whatever the original does next, and the original must go on exactly
/// as an engine that was never copied.
#[test]
fn a_copy_keeps_its_state_while_the_original_goes_on() {
    let opening = |run: &mut Run| {
        run.index_price("BTC", "60000");
        run.deposit("a", "USDT", "10000");
        run.deposit("b", "USDT", "500");
        run.fill("a", "BTCUSDT", "buy", "1", "60000", "external");
    };
    let after = |run: &mut Run| {
        run.deposit("a", "USDT", "250");
        run.fill("b", "BTCUSDT", "sell", "0.05", "60000", "external");
        // Into a margin call for `a`: equity 10,250 - 9,900 = 350 against a maintenance margin
        // of 0.5% x 50,100 = 250.5, health 1.40: a state change the copy must not see.
        let effects = run.index_price("BTC", "50100");
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::MarginCall { account, .. } if account == "a")),
            "{effects:?}"
        );
    };
    let mut run = Run::new(EngineConfig::default());
    opening(&mut run);
    let copy = run.engine.clone();
    let at_copy = copy.state_hash();
    after(&mut run);
    assert_ne!(
        run.engine.state_hash(),
        at_copy,
        "the events after the copy change the state"
    );
    assert_eq!(copy.state_hash(), at_copy, "the copy did not move");
    assert_eq!(
        copy.snapshot().unwrap(),
        {
            let mut fresh = Run::new(EngineConfig::default());
            opening(&mut fresh);
            fresh.engine.snapshot().unwrap()
        },
        "the copy's snapshot is the state at the copy"
    );
    let mut uncopied = Run::new(EngineConfig::default());
    opening(&mut uncopied);
    after(&mut uncopied);
    assert_eq!(run.engine.state_hash(), uncopied.engine.state_hash());
}

#[test]
fn refused_events_change_nothing() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    run.deposit("a", "USDT", "100");
    let before = run.engine.state_hash();
    for (kind, fields, reason) in [
        (
            "withdraw",
            r#""account":"a","asset":"USDT","amount":"101""#,
            RejectReason::InsufficientBalance,
        ),
        (
            "withdraw",
            r#""account":"nobody","asset":"USDT","amount":"1""#,
            RejectReason::UnknownAccount,
        ),
        (
            "deposit",
            r#""account":"a","asset":"DOGE","amount":"1""#,
            RejectReason::UnknownAsset,
        ),
        (
            "deposit",
            r#""account":"a","asset":"USDT","amount":"0.0000001""#,
            RejectReason::PrecisionExceeded,
        ),
        (
            "fill",
            r#""account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
            RejectReason::InsufficientInitialMargin,
        ),
        (
            "fill",
            r#""account":"a","instrument":"NOPE","side":"buy","size":"1","price":"1","counterparty":"external""#,
            RejectReason::UnknownInstrument,
        ),
        (
            "fill",
            r#""account":"a","instrument":"BTCUSDT","side":"buy","size":"0.0001","price":"60000""#,
            RejectReason::InvalidSize,
        ),
    ] {
        let effects = run.next(kind, fields);
        assert_eq!(
            rejection(&effects),
            Some(reason),
            "{kind} {fields}: {effects:?}"
        );
        assert_eq!(
            run.engine.state_hash(),
            before,
            "{kind} {fields} changed the state"
        );
    }
}

#[test]
fn a_buffer_policy_holds_back_withdrawals() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "100000");
    run.deposit("b", "USDT", "20000");
    run.fill("b", "BTCUSDT", "buy", "1", "100000", "external");
    // IM 100,000 / 20 = 5,000; MM 500. A buffer of 12 x MM = 6,000 lets 14,000 out, not 14,001.
    run.next("set_buffer_policy", r#""account":"b","policy":"mm:12""#);
    let too_much = run.withdraw("b", "USDT", "14001");
    assert_eq!(
        rejection(&too_much),
        Some(RejectReason::ExceedsWithdrawable)
    );
    let fine = run.withdraw("b", "USDT", "14000");
    assert_eq!(rejection(&fine), None);
    let bad = run.next("set_buffer_policy", r#""account":"b","policy":"lots""#);
    assert_eq!(rejection(&bad), Some(RejectReason::InvalidInput));
}

#[test]
fn automated_top_ups_respect_their_caps() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    run.deposit("t", "USDT", "5000");
    run.fill("t", "BTCUSDT", "buy", "1", "60000", "external");
    // From the external wallet when the cross health falls below 2, back to 3, at most 500 per
    // event and 800 per day.
    run.next(
        "set_auto_top_up",
        r#""account":"t","source":"external","trigger_health":"2","target_health":"3","per_event_cap":"500","per_day_cap":"800""#,
    );
    // At 55,600: equity 5,000 - 4,400 = 600, MM 278: health 2.16, nothing. At 55,500: 500 / 277.5
    // = 1.80 < 2: top up min(3 x 277.5 - 500 = 332.5, 500) = 332.5.
    let quiet = run.index_price("BTC", "55600");
    assert!(
        !quiet
            .iter()
            .any(|e| matches!(e, Effect::TransferApplied { .. }))
    );
    let first = run.index_price("BTC", "55500");
    let topped = |effects: &[Effect]| -> Decimal {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::TransferApplied {
                    amount,
                    reason: solvent_engine::effect::TransferReason::TopUp,
                    ..
                } => Some(amount.value()),
                _ => None,
            })
            .sum()
    };
    assert_eq!(topped(&first), dec!(332.5));
    // Another fall to 54,800: equity 832.5 - 700 = 132.5, MM 274: need 3 x 274 - 132.5 = 689.5,
    // capped at 500 per event by the rule and at 800 - 332.5 = 467.5 left for the day.
    let second = run.index_price("BTC", "54800");
    assert_eq!(topped(&second), dec!(467.5));
    let third = run.index_price("BTC", "54700");
    assert_eq!(topped(&third), dec!(0), "the day's cap is spent");
}

#[test]
fn dynamic_reallocation_moves_cross_collateral_to_an_isolated_position() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    run.deposit("r", "USDT", "20000");
    run.fill("r", "BTCUSDT", "buy", "1", "60000", "external");
    run.set_isolated_margin("r", "BTCUSDT", "3100");
    run.next(
        "set_auto_top_up",
        r#""account":"r","source":"cross_pool","trigger_health":"1.2","target_health":"1.5","per_event_cap":"10000","per_day_cap":"10000""#,
    );
    // At 57,250 the isolated equity is 3,100 - 2,750 = 350 against MM 286.25: health 1.22. At
    // 57,200: 300 / 286 = 1.049, below the trigger: move 1.5 x 286 - 300 = 129 from the pool.
    let effects = run.index_price("BTC", "57200");
    let moved: Decimal = effects
        .iter()
        .filter_map(|e| match e {
            Effect::TransferApplied {
                amount,
                reason: solvent_engine::effect::TransferReason::Reallocation,
                ..
            } => Some(amount.value()),
            _ => None,
        })
        .sum();
    assert_eq!(moved, dec!(129));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Liquidation { .. })),
        "saved, not liquidated: {effects:?}"
    );
}

#[test]
fn a_listed_instrument_trades_and_a_venue_update_re_margins_every_account() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("SOL", "150");
    run.deposit("s", "USDT", "1000");
    let missing = run.fill("s", "SOLUSDT", "buy", "10", "150", "external");
    assert_eq!(rejection(&missing), Some(RejectReason::UnknownInstrument));
    let listed = run.next(
        "list_instrument",
        r#""name":"SOLUSDT","spec":{"kind":"perpetual","style":"linear","underlying":"SOL","settlement":"USDT","contract_size":"1","size_step":"0.1","margin":"bybit_ethusdt","default_leverage":10}"#,
    );
    assert_eq!(rejection(&listed), None);
    let bad = run.next("list_instrument", r#""name":"X","spec":{"kind":"perpetual","style":"linear","underlying":"X","settlement":"USDT","contract_size":"1","size_step":"0.1","margin":"nope"}"#);
    assert_eq!(rejection(&bad), Some(RejectReason::InvalidInput));
    let fill = run.fill("s", "SOLUSDT", "buy", "10", "150", "external");
    assert_eq!(rejection(&fill), None, "{fill:?}");
    // A venue update that no longer lists SOLUSDT is refused: the account holds it.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../venues/default.toml"
    ))
    .unwrap();
    let escaped = serde_json::to_string(&text).unwrap();
    let refused = run.next("update_venue", &format!(r#""venue":{escaped}"#));
    assert_eq!(rejection(&refused), Some(RejectReason::InvalidInput));
}

#[test]
fn a_bankrupt_account_pays_with_its_other_collateral_before_the_fund() {
    // 1,000 USDT and 0.01 BTC; long 0.1 BTCUSDT at 100,000; BTC gaps to 70,000 (confirmed): the
    // close loses 3,000 USDT, so USDT is -2,000; the 0.01 BTC (700 at 70,000) is sold first and
    // the fund covers only the remaining 1,300.
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "100000");
    run.deposit("insurance_fund", "USDT", "5000");
    assert_eq!(run.balance("insurance_fund", "USDT"), dec!(5000));
    run.deposit("a", "USDT", "1000");
    run.deposit("a", "BTC", "0.01");
    run.fill("a", "BTCUSDT", "buy", "0.1", "100000", "external");
    run.index_price("BTC", "70000");
    run.index_price("BTC", "70000");
    assert!(run.engine.accounts().get("a").unwrap().positions.is_empty());
    assert_eq!(run.balance("a", "BTC"), dec!(0));
    assert_eq!(run.balance("a", "USDT"), dec!(0));
    assert_eq!(run.balance("insurance_fund", "USDT"), dec!(3700));
    let system = run.deposit("clearing", "USDT", "1");
    assert_eq!(rejection(&system), Some(RejectReason::InvalidInput));
}

#[test]
fn an_isolated_position_grows_only_as_far_as_its_own_margin_allows() {
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    run.deposit("i", "USDT", "100000");
    run.fill("i", "BTCUSDT", "buy", "1", "60000", "external");
    run.set_isolated_margin("i", "BTCUSDT", "3100");
    // At BTCUSDT's default leverage of 20 a position needs 5% initial margin: 1.5 BTC at 60,000
    // need 4,500 of the position's own 3,100, however much the cross pool (96,900 USDT) holds.
    let effects = run.fill("i", "BTCUSDT", "buy", "0.5", "60000", "external");
    assert_eq!(
        rejection(&effects),
        Some(RejectReason::InsufficientInitialMargin),
        "{effects:?}"
    );
    assert_eq!(
        run.engine.accounts().get("i").unwrap().positions["BTCUSDT"].size,
        dec!(1)
    );
    // 1.03 BTC need 3,090: accepted.
    let effects = run.fill("i", "BTCUSDT", "buy", "0.03", "60000", "external");
    assert_eq!(rejection(&effects), None, "{effects:?}");
    assert_eq!(
        run.engine.accounts().get("i").unwrap().positions["BTCUSDT"].size,
        dec!(1.03)
    );
}

/// A stablecoin the venue values at par until its market prices it (USDC, October 2025 style
/// de-peg on the collateral side): the first USDC index below par re-values every account's USDC
/// collateral at once. 3,000 USDC behind 5 BTCUSDT at 60,000 and 100x: maintenance margin
/// 0.5% x 300,000 = 1,500, health 3,000 / 1,500 = 2. USDC at 0.70: collateral 2,100, health 1.4,
/// a margin call (at or below 1.5) asking for IM 3,000 - 2,100 = 900 USDT.
#[test]
fn a_stablecoin_priced_below_par_re_values_its_holders_at_once() {
    for exhaustive_monitoring in [false, true] {
        let mut run = Run::new(EngineConfig {
            exhaustive_monitoring,
            ..EngineConfig::default()
        });
        run.index_price("BTC", "60000");
        run.deposit("u", "USDC", "3000");
        run.set_leverage("u", "BTCUSDT", "100");
        let fill = run.fill("u", "BTCUSDT", "buy", "5", "60000", "external");
        assert_eq!(rejection(&fill), None, "{fill:?}");
        let effects = run.index_price("USDC", "0.70");
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::StateChanged { account, to, .. }
                if account == "u" && *to == AccountState::MarginCall)),
            "exhaustive {exhaustive_monitoring}: {effects:?}"
        );
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::MarginCall { account, deposit, .. }
                if account == "u" && deposit.value() == Decimal::new(900, 0))),
            "exhaustive {exhaustive_monitoring}: {effects:?}"
        );
    }
}

/// A linear contract settled in a third coin (BTC margined in USDe, listed by the venue) moves
/// with that coin's index as well as with BTC's: 5 BTCUSDE at 60,000 at 100x behind 3,000 USDT
/// need 1,500 USDe maintenance margin (0.5% x 300,000), health 2 at USDe = 1. USDe at 1.15:
/// 1,725 USDT, health 1.74, still healthy; at 1.35: 2,025 USDT, health 1.48, a margin call for
/// IM 3,000 x 1.35 - 3,000 = 1,050 USDT. Banded or examining every holder, the USDe update finds it.
#[test]
fn a_contract_settled_in_a_third_coin_is_re_examined_when_that_coin_moves() {
    for exhaustive_monitoring in [false, true] {
        let mut run = Run::new(EngineConfig {
            exhaustive_monitoring,
            ..EngineConfig::default()
        });
        run.index_price("BTC", "60000");
        run.index_price("USDe", "1");
        let listed = run.next(
            "list_instrument",
            r#""name":"BTCUSDE","spec":{"kind":"perpetual","style":"linear","underlying":"BTC","settlement":"USDe","contract_size":"1","size_step":"0.001","margin":"bybit_btcusdt"}"#,
        );
        assert_eq!(rejection(&listed), None, "{listed:?}");
        run.deposit("q", "USDT", "3000");
        run.set_leverage("q", "BTCUSDE", "100");
        let fill = run.fill("q", "BTCUSDE", "buy", "5", "60000", "external");
        assert_eq!(rejection(&fill), None, "{fill:?}");
        let calls = |effects: &[Effect]| {
            effects
                .iter()
                .filter_map(|e| match e {
                    Effect::MarginCall {
                        account, deposit, ..
                    } if account == "q" => Some(deposit.value()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let up = run.index_price("USDe", "1.15");
        assert!(calls(&up).is_empty(), "health 1.74: {up:?}");
        let further = run.index_price("USDe", "1.35");
        assert_eq!(
            calls(&further),
            [dec!(1050)],
            "exhaustive {exhaustive_monitoring}: {further:?}"
        );
    }
}

/// A stale index of a coin held as collateral freezes liquidation too: the account's equity is
/// valued at that coin's old price. 0.05 BTC at 60,000 (3,000 USD) behind 10 ETHUSDT bought at
/// 3,000; ten minutes later ETH alone is quoted, at 2,720: equity 3,000 - 2,800 = 200 against
/// MM 1% x 27,200 = 272 (health 0.74): liquidating, but BTC's index is stale. The first fresh BTC
/// index lets the liquidation proceed.
#[test]
fn a_stale_collateral_index_freezes_liquidation() {
    let mut run = Run::new(EngineConfig::default());
    run.at(0, "index_price", r#""underlying":"BTC","price":"60000""#);
    run.at(0, "index_price", r#""underlying":"ETH","price":"3000""#);
    run.at(
        1,
        "deposit",
        r#""account":"c","asset":"BTC","amount":"0.05""#,
    );
    let fill = run.at(
        2,
        "fill",
        r#""account":"c","instrument":"ETHUSDT","side":"buy","size":"10","price":"3000","counterparty":"external""#,
    );
    assert_eq!(rejection(&fill), None, "{fill:?}");
    let fall = run.at(601, "index_price", r#""underlying":"ETH","price":"2720""#);
    assert_eq!(run.state("c"), AccountState::Liquidating);
    assert!(
        !fall.iter().any(|e| matches!(e, Effect::Liquidation { .. })),
        "{fall:?}"
    );
    assert!(
        fall.iter()
            .any(|e| matches!(e, Effect::LiquidationDeferred { reason: DeferralReason::StaleIndex, detail, .. }
            if detail.starts_with("no fresh BTC"))),
        "{fall:?}"
    );
    let fresh = run.at(602, "index_price", r#""underlying":"BTC","price":"60000""#);
    assert!(
        fresh
            .iter()
            .any(|e| matches!(e, Effect::Liquidation { account, .. } if account == "c")),
        "{fresh:?}"
    );
}

/// An account the engine cannot value is examined at every update of what it holds until it
/// can be: a venue update settles BTCUSDT in USDe, which the market does not price yet, so the
/// holder's report fails. The first USDe index (1.35) values it: 5 BTC at 60,000 and 100x need
/// 1,500 USDe maintenance margin, 2,025 USDT, against 3,000 USDT (health 1.48): a margin call
/// for IM 3,000 x 1.35 - 3,000 = 1,050 USDT, at that very update.
#[test]
fn an_account_that_cannot_be_valued_is_examined_when_its_price_comes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let listing = "[instruments.BTCUSDT]";
    let at = text.find(listing).unwrap();
    let (head, tail) = text.split_at(at);
    let moved = format!(
        "{head}{}",
        tail.replacen(r#"settlement = "USDT""#, r#"settlement = "USDe""#, 1)
    );
    let mut run = Run::new(EngineConfig::default());
    run.index_price("BTC", "60000");
    run.deposit("v", "USDT", "3000");
    run.set_leverage("v", "BTCUSDT", "100");
    let fill = run.fill("v", "BTCUSDT", "buy", "5", "60000", "external");
    assert_eq!(rejection(&fill), None, "{fill:?}");
    let update = run.next(
        "update_venue",
        &format!(r#""venue":{}"#, serde_json::to_string(&moved).unwrap()),
    );
    assert_eq!(rejection(&update), None, "{update:?}");
    let priced = run.index_price("USDe", "1.35");
    assert!(
        priced
            .iter()
            .any(|e| matches!(e, Effect::MarginCall { account, deposit, .. }
            if account == "v" && deposit.value() == dec!(1050))),
        "{priced:?}"
    );
}
