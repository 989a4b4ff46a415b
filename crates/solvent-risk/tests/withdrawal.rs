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
        decide_withdrawal(&report(&venue, "40"), Decimal::ZERO),
        Ok(())
    );
    let refusal = decide_withdrawal(&report(&venue, "39.99"), Decimal::ZERO).unwrap_err();
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
        decide_withdrawal(&report(&venue, "0"), Decimal::ZERO),
        Ok(())
    );
}
