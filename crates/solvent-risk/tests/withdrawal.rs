//! What a withdrawal from the cross pool may take, by the venue's rule (`[venue] withdrawal`):
//! hand-worked on Binance USDS-M, whose wallet keeps the cross positions' maintenance margin
//! (FAQ "How to Adjust Margin Balance in Cross/Isolated Margin Mode"), against DESIGN.md 7's
//! default on the same account.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::{Venue, WithdrawalRule};
use solvent_risk::pretrade::{Refusal, decide_withdrawal};
use solvent_risk::report::WithdrawLimit;
use solvent_risk::{MarginReport, MarketView, margin_report};

fn binance(rule: WithdrawalRule) -> Venue {
    let path = format!(
        "{}/../../venues/binance-usdm.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut venue = Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        venue.withdrawal,
        WithdrawalRule::WalletAboveMaintenanceMargin,
        "the shipped file sets Binance's rule"
    );
    venue.withdrawal = rule;
    venue
}

/// 1,000 USDT and 0.1 BTCUSDT long at 10x, bought at 50,000, marked at 100,000: notional
/// 10,000, unrealised profit 5,000, IM 10,000 / 10 = 1,000, MM 10,000 x 0.4% - 0 = 40
/// (bracket 1).
fn report(venue: &Venue, usdt: &str) -> MarginReport {
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000"},"mark":{"BTCUSDT":"100000"}}"#,
    )
    .unwrap();
    let portfolio = Portfolio::from_json(
        "p.json",
        &format!(
            r#"{{"account":"w","mode":"cross","collateral":{{"USDT":"{usdt}"}},"positions":[{{"instrument":"BTCUSDT","size":"0.1","entry_price":"50000","leverage":10}}]}}"#
        ),
        venue,
    )
    .unwrap();
    let view = MarketView::new(venue, &market).unwrap();
    margin_report(&portfolio, &view).unwrap()
}

#[test]
fn binances_wallet_keeps_the_maintenance_margin_whatever_the_unrealised_profit() {
    let venue = binance(WithdrawalRule::WalletAboveMaintenanceMargin);
    let full = report(&venue, "1000");
    assert_eq!(full.equity.value(), dec!(6000));
    assert_eq!(full.initial_margin.value(), dec!(1000));
    assert_eq!(full.maintenance_margin.value(), dec!(40));
    // min(crossWalletBalance - cross MM, crossWalletBalance + uPnL - cross IM)
    // = min(1,000 - 40, 1,000 + 5,000 - 1,000) = 960.
    assert_eq!(full.withdrawable.value(), dec!(960));
    assert_eq!(
        full.withdrawable_limit,
        WithdrawLimit::WalletMaintenanceMargin
    );
    assert_eq!(full.wallet_above_maintenance.unwrap().value(), dec!(960));
    // Taking the 960 leaves the wallet at its maintenance margin: accepted; one cent more is
    // refused, named, with the shortfall.
    assert_eq!(
        decide_withdrawal(&report(&venue, "40"), Decimal::ZERO, "USDT"),
        Ok(())
    );
    let refusal = decide_withdrawal(&report(&venue, "39.99"), Decimal::ZERO, "USDT").unwrap_err();
    assert_eq!(refusal.name(), "wallet_below_maintenance_margin");
    assert!(matches!(
        refusal,
        Refusal::WalletBelowMaintenanceMargin { shortfall, .. } if shortfall.value() == dec!(0.01)
    ));
    assert!(refusal.to_string().contains("0.01"), "{refusal}");
}

#[test]
fn by_design_md_7_the_whole_cash_like_wallet_may_leave_while_equity_covers_the_initial_margin() {
    let venue = binance(WithdrawalRule::EquityAboveInitialMargin);
    let full = report(&venue, "1000");
    // min(cash-like 1,000, equity - IM 5,000) = 1,000.
    assert_eq!(full.withdrawable.value(), dec!(1000));
    assert_eq!(full.withdrawable_limit, WithdrawLimit::CashLikeCollateral);
    assert_eq!(full.wallet_above_maintenance, None);
    // An empty wallet: equity 5,000 still covers the initial margin.
    assert_eq!(
        decide_withdrawal(&report(&venue, "0"), Decimal::ZERO, "USDT"),
        Ok(())
    );
}

/// 1,000 USDT and 0.1 BTC of collateral (Binance USDS-M counts BTC at 100% to 100,000,000
/// USD), 0.1 BTCUSDT long at 50x bought at 50,000, BTC index and mark at 48,000: the BTC is
/// worth 0.1 x 48,000 = 4,800, the position has lost 0.1 x (48,000 - 50,000) = -200 (settled
/// in USDT), notional 4,800, IM 4,800 / 50 = 96, MM 4,800 x 0.4% - 0 = 19.2 (bracket 1).
/// Equity 1,000 + 4,800 - 200 = 5,600; equity above IM 5,504.
fn two_coin_report(venue: &Venue, usdt: &str) -> MarginReport {
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"48000"},"mark":{"BTCUSDT":"48000"}}"#,
    )
    .unwrap();
    let portfolio = Portfolio::from_json(
        "p.json",
        &format!(
            r#"{{"account":"w","mode":"cross","collateral":{{"USDT":"{usdt}","BTC":"0.1"}},"positions":[{{"instrument":"BTCUSDT","size":"0.1","entry_price":"50000","leverage":50}}]}}"#
        ),
        venue,
    )
    .unwrap();
    let view = MarketView::new(venue, &market).unwrap();
    margin_report(&portfolio, &view).unwrap()
}

#[test]
fn under_wallet_less_unrealised_loss_a_coin_keeps_the_loss_of_the_positions_settled_in_it() {
    // Bybit's rule ("Get Transferable Amount (Unified)"): each coin pays out no more than its
    // wallet + min(its positions' unrealised P&L, 0), and the account no more than equity
    // above IM. The USDT wallet holds 1,000 and the USDT-settled position has lost 200:
    // min(1,000 - 200, 5,504) = 800, although the BTC collateral leaves equity far above IM.
    let venue = binance(WithdrawalRule::WalletLessUnrealisedLoss);
    let full = two_coin_report(&venue, "1000");
    assert_eq!(full.equity.value(), dec!(5600));
    assert_eq!(full.unrealized_pnl.value(), dec!(-200));
    assert_eq!(full.initial_margin.value(), dec!(96));
    assert_eq!(full.maintenance_margin.value(), dec!(19.2));
    assert_eq!(full.available.value(), dec!(5504));
    assert_eq!(full.withdrawable.value(), dec!(800));
    assert_eq!(full.withdrawable_limit, WithdrawLimit::WalletUnrealisedLoss);
    assert_eq!(full.withdrawable_limit.name(), "wallet_unrealised_loss");
    assert_eq!(full.wallet_above_maintenance, None);
    // USDT: 1,000 - 200 = 800; BTC (not cash, its market value): 4,800 + min(0, 0) = 4,800.
    let left = |coin: &str| {
        full.wallet_less_unrealised_loss
            .iter()
            .find(|(c, _)| c == coin)
            .map(|(_, left)| left.value())
    };
    assert_eq!(left("USDT"), Some(dec!(800)));
    assert_eq!(left("BTC"), Some(dec!(4800)));

    // Taking the 800 leaves 200 USDT, the loss: accepted; one cent more is refused, named,
    // with the shortfall. A BTC withdrawal is not judged by the USDT wallet.
    assert_eq!(
        decide_withdrawal(&two_coin_report(&venue, "200"), Decimal::ZERO, "USDT"),
        Ok(())
    );
    let short = two_coin_report(&venue, "199.99");
    assert_eq!(short.unrealised_loss_shortfall("USDT"), Some(dec!(0.01)));
    assert_eq!(short.unrealised_loss_shortfall("BTC"), None);
    // 199.99 - 200 < 0: this coin pays out nothing, and the others' payout is unchanged.
    assert_eq!(short.withdrawable.value(), dec!(0));
    let refusal = decide_withdrawal(&short, Decimal::ZERO, "USDT").unwrap_err();
    assert_eq!(refusal.name(), "wallet_below_unrealised_loss");
    assert!(matches!(
        &refusal,
        Refusal::WalletBelowUnrealisedLoss { coin, shortfall, .. }
            if coin == "USDT" && shortfall.value() == dec!(0.01)
    ));
    assert!(refusal.to_string().contains("0.01"), "{refusal}");
    assert_eq!(decide_withdrawal(&short, Decimal::ZERO, "BTC"), Ok(()));

    // The same account under the other rules: DESIGN.md 7 pays the whole cash-like wallet,
    // min(1,000, 5,504) = 1,000; Binance's keeps the MM, min(1,000 - 19.2, 5,504) = 980.8.
    let default = two_coin_report(&binance(WithdrawalRule::EquityAboveInitialMargin), "1000");
    assert_eq!(default.withdrawable.value(), dec!(1000));
    assert!(default.wallet_less_unrealised_loss.is_empty());
    assert_eq!(
        decide_withdrawal(
            &two_coin_report(&binance(WithdrawalRule::EquityAboveInitialMargin), "0"),
            Decimal::ZERO,
            "USDT"
        ),
        Ok(())
    );
    let kept_mm = two_coin_report(
        &binance(WithdrawalRule::WalletAboveMaintenanceMargin),
        "1000",
    );
    assert_eq!(kept_mm.withdrawable.value(), dec!(980.8));
}

#[test]
fn under_wallet_less_unrealised_loss_unrealised_profit_never_pays_out() {
    // The one-coin account of `report` (1,000 USDT, 5,000 of unrealised profit, IM 1,000):
    // min(1,000 + min(5,000, 0), 6,000 - 1,000) = 1,000, the wallet, not the profit; with 100
    // USDT, min(100, 5,100 - 1,000) = 100.
    let venue = binance(WithdrawalRule::WalletLessUnrealisedLoss);
    let full = report(&venue, "1000");
    assert_eq!(full.withdrawable.value(), dec!(1000));
    assert_eq!(full.withdrawable_limit, WithdrawLimit::WalletUnrealisedLoss);
    assert_eq!(report(&venue, "100").withdrawable.value(), dec!(100));
    assert_eq!(
        decide_withdrawal(&report(&venue, "0"), Decimal::ZERO, "USDT"),
        Ok(())
    );
}
