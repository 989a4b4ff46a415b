//! Segregated portfolio margin (Deribit S:PM): each settlement currency scanned in its coin, the
//! coin's own balance no risk in itself, each currency's equity covering only its own
//! requirement. Hand-worked on `examples/deribit-spm.json` against `venues/deribit.toml`.
//!
//! The account: 10 BTC and 90,000 USDC; short 1,000,000 USD of BTC-PERPETUAL (inverse, settled in
//! BTC) and long 5 BTC_USDC-PERPETUAL (linear, settled in USDC), both entered at the index,
//! 100,000, and marked there. Deribit's BTC grid: moves 0, +/-4..16% (volatility does not move a
//! perpetual), extended -66%, -33%, +50%, +100%..+500% weighted `0.16 / |move|`; roll shock 1% of
//! the index per coin, scaled by `sqrt(1 / 365)` for a perpetual; no other charge binds (the net
//! delta stays under the 100 BTC delta-shock threshold, no liquidity parameters).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::portfolio_margin::PortfolioCollateral;
use solvent_core::venue::Venue;
use solvent_risk::report::{AccountState, CurrencyMargin, MarginReport};
use solvent_risk::{MarketView, margin_report};

const DERIBIT: &str = include_str!("../../../venues/deribit.toml");
const EXAMPLE: &str = include_str!("../../../examples/deribit-spm.json");

fn deribit(collateral: &str) -> Venue {
    let text = DERIBIT.replace(
        r#"collateral = "segregated""#,
        &format!(r#"collateral = "{collateral}""#),
    );
    Venue::from_toml("deribit.toml", &text).unwrap()
}

/// The example's report at `venue`, with the USDC balance set to `usdc`.
fn report(venue: &Venue, usdc: &str) -> MarginReport {
    let mut file: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    file["collateral"]["USDC"] = serde_json::Value::from(usdc);
    let portfolio = Portfolio::from_json("p.json", &file.to_string(), venue).unwrap();
    let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
    margin_report(&portfolio, &MarketView::new(venue, &market).unwrap()).unwrap()
}

fn currency<'r>(report: &'r MarginReport, coin: &str) -> &'r CurrencyMargin {
    report
        .currencies
        .iter()
        .find(|c| c.currency == coin)
        .unwrap_or_else(|| panic!("no currency {coin}: {:?}", report.currencies))
}

#[test]
fn the_deribit_venue_is_segregated() {
    let venue = deribit("segregated");
    assert_eq!(
        venue.portfolio_margin.as_ref().unwrap().collateral,
        PortfolioCollateral::Segregated
    );
    // Any other word is refused.
    let refused = Venue::from_toml(
        "deribit.toml",
        &DERIBIT.replace(r#"collateral = "segregated""#, r#"collateral = "split""#),
    );
    assert!(refused.is_err());
}

#[test]
fn a_btc_balance_hedged_by_a_short_inverse_perpetual_is_margined_in_btc() {
    let report = report(&deribit("segregated"), "90000");
    let btc = currency(&report, "BTC");
    // BTC sub-portfolio, in BTC. The balance's BTC P&L is zero in every scenario (a coin is worth
    // one coin); the short inverse perpetual's is
    //   -1,000,000 x (1/100,000 - 1/(100,000 (1 + m))) = -10 m / (1 + m) BTC.
    // Worst: +16%, -10 x 0.16 / 1.16 = -1.3793103448 BTC (extended +50%: -3.3333 x 0.32 =
    // -1.0667; +100%: -5 x 0.16 = -0.8; the falls gain).
    // Roll: 10 coins x 100,000 x 1% x sqrt(1/365) = 523.4239226 USD = 0.0052342392 BTC.
    // MM = 1.3793103448 + 0.0052342392 = 1.3845445841 -> 1.38454459 BTC (rounded up);
    // IM = 1.25 x 1.3845445841 = 1.7306807301 -> 1.73068074 BTC.
    assert_eq!(btc.maintenance_margin.value(), dec!(1.38454459));
    assert_eq!(btc.initial_margin.value(), dec!(1.73068074));
    // Equity: 10 BTC + the perpetual's P&L at its entry (0).
    assert_eq!(btc.equity.value(), dec!(10));
    assert_eq!(btc.available.value(), dec!(10) - dec!(1.73068074));
    // In USD at the index: 138,454.459 -> 138,454.46 (up, to the cent); equity 1,000,000.
    assert_eq!(btc.maintenance_margin_usd.value(), dec!(138454.46));
    assert_eq!(btc.initial_margin_usd.value(), dec!(173068.08));
    assert_eq!(btc.equity_usd.value(), dec!(1000000));
    // Health 10 / 1.38454459 = 7.2226.
    assert!(
        (btc.health.unwrap() - 7.222592).abs() < 1e-5,
        "{:?}",
        btc.health
    );
    assert_eq!(btc.state, AccountState::Healthy);
}

#[test]
fn a_usdc_sub_portfolio_is_margined_in_usdc_without_the_btc_balance() {
    let report = report(&deribit("segregated"), "90000");
    let usdc = currency(&report, "USDC");
    // USDC sub-portfolio: long 5 BTC_USDC-PERPETUAL, P&L 5 x 100,000 x m USD = USDC. The BTC
    // balance is not in it. Worst: -16% (-80,000; the extended -66% weighs 0.16 / 0.66 and gives
    // the same -80,000). Roll: 5 x 100,000 x 1% x sqrt(1/365) = 261.7119613.
    // MM = 80,261.7119613 -> 80,261.711962; IM = 1.25 x MM = 100,327.1399516 -> 100,327.139952.
    assert_eq!(usdc.maintenance_margin.value(), dec!(80261.711962));
    assert_eq!(usdc.initial_margin.value(), dec!(100327.139952));
    assert_eq!(usdc.equity.value(), dec!(90000));
    // Health 90,000 / 80,261.711962 = 1.12133: reduce-only (1.05 < health <= 1.2).
    assert!(
        (usdc.health.unwrap() - 1.121331).abs() < 1e-5,
        "{:?}",
        usdc.health
    );
    assert_eq!(usdc.state, AccountState::ReduceOnly);
}

#[test]
fn the_account_requirement_is_the_sum_of_the_currencies_and_stands_at_the_weakest() {
    let report = report(&deribit("segregated"), "90000");
    // In the report currency (USDC at par): 1.38454459 BTC x 100,000 = 138,454.459 plus
    // 80,261.711962 = 218,716.170962; IM 173,068.074 + 100,327.139952 = 273,395.213952.
    assert_eq!(report.maintenance_margin.value(), dec!(218716.170962));
    assert_eq!(report.initial_margin.value(), dec!(273395.213952));
    assert_eq!(report.equity.value(), dec!(1090000));
    // The whole account's equity covers its requirement 4.98 times, but BTC's surplus does not
    // cover USDC's deficit: the account stands where USDC stands.
    assert_eq!(report.state, AccountState::ReduceOnly);
    assert_eq!(report.health, currency(&report, "USDC").health);
    // The currencies' USD equity adds up to the account's.
    let equity_usd: Decimal = report.currencies.iter().map(|c| c.equity_usd.value()).sum();
    assert_eq!(equity_usd, dec!(1090000));
    // Each currency's requirement falls on its positions alone (the balances are not scanned):
    // the BTC-PERPETUAL bears all of BTC's, 1.38454459 x 100,000 = 138,454.459 USDC, the linear
    // perpetual all of USDC's, and nothing is left to a balance.
    let mm = |name: &str| {
        report
            .positions
            .iter()
            .find(|p| p.instrument == name)
            .map(|p| p.maintenance_margin.value())
            .unwrap()
    };
    assert_eq!(mm("BTC-PERPETUAL"), dec!(138454.459));
    assert_eq!(mm("BTC_USDC-PERPETUAL"), dec!(80261.711962));
    assert!(
        !report
            .components
            .iter()
            .any(|c| c.name.starts_with("maintenance_margin:spot:")),
        "{:?}",
        report.components
    );
    // USDC, the only cash-like currency, has nothing above its own IM: nothing can be withdrawn
    // (the whole account's available, 816,604.786048, is BTC's surplus).
    assert_eq!(report.withdrawable.value(), Decimal::ZERO);
    // With enough USDC the account is healthy again: 200,000 / 80,261.711962 = 2.49, and USDC
    // pays out what it holds above its own IM, 200,000 - 100,327.139952 = 99,672.860048.
    let funded = self::report(&deribit("segregated"), "200000");
    assert_eq!(funded.state, AccountState::Healthy);
    assert_eq!(funded.withdrawable.value(), dec!(99672.860048));
    assert_eq!(
        funded.maintenance_margin.value(),
        report.maintenance_margin.value()
    );
}

#[test]
fn cross_collateral_portfolio_margin_values_everything_in_usd() {
    // X:PM: one BTC scan in USD over the BTC balance (10 coins, as spot), the short inverse
    // perpetual (-10 coins) and the long linear one (+5): net +5 coins, P&L 500,000 m USD.
    // Worst -16%: -80,000 (the extended -66% gives the same). Roll |(-10 + 5) x 52.3423923| =
    // 261.7119613. MM = 80,261.711962 USDC: the hedge of the BTC balance costs nothing in USD,
    // where S:PM charges 1.3845 BTC for it in BTC.
    let report = report(&deribit("cross"), "90000");
    assert!(report.currencies.is_empty());
    assert_eq!(report.maintenance_margin.value(), dec!(80261.711962));
    assert_eq!(report.initial_margin.value(), dec!(100327.139952));
    assert_eq!(report.state, AccountState::Healthy);
}

#[test]
fn btc_options_futures_and_balance_are_scanned_in_btc() {
    // 2 BTC; short 5 BTC-27DEC26-110000-C (inverse, 1 BTC each) and long 300,000 USD of
    // BTC-27DEC26 entered and marked at the index, 100,000; flat volatility 55% at the expiry
    // (2026-12-27 08:00, 355 days, T = 355 / 365); rate 0.
    //
    // Independent oracle (scripts/oracles/spm_oracle.py: Python, math.erfc for the normal CDF):
    // - call mark: Black-76 17,782.5493043 USD = 0.177825493043 BTC (a model mark is kept at full
    //   precision); the positions' USD equity E = -5 x 17,782.5493043 = -88,912.7465214 (the
    //   future's P&L at its entry is 0);
    // - shocks at 355 days: scale (30 / 355)^0.13 = 0.72526393; vol up max(0.55 x (1 + 0.5 x
    //   0.72526393), 0.5) = 0.74944758; down 0.55 x (1 - 0.25 x 0.72526393) = 0.45027621;
    // - scenario USD P&L P = -5 (C(S (1 + m), sigma_s) - C(S, 0.55)) + 3 x 100,000 m, in BTC
    //   (E + P) / (100,000 (1 + m)) - E / 100,000 (the balance, worth 2 BTC in every scenario,
    //   is not scanned), times its weight (1; extended moves 0.16 / |m|, vol up);
    // - worst: extended -66% vol up: the call's USD P&L -5 x (C(34,000, 0.74944758) - 17,782.5493)
    //   = +83,780.6984, the future's 3 x 100,000 x -0.66 = -198,000, so (E + P) / 34,000 - E /
    //   100,000 = -5.08534454 BTC, weighted 0.16 / 0.66: -1.23281080 (-1.2328107968);
    // - roll: 3 coins x 100,000 x 1% x sqrt(355 / 365) = 2,958.6187 USD = 0.0295861871 BTC;
    // MM = 1.2328107968 + 0.0295861871 = 1.2623969839 -> 1.26239699 (up); IM = 1.25 x MM =
    // 1.5779962299 -> 1.57799623 BTC.
    let venue = deribit("segregated");
    let portfolio = Portfolio::from_json(
        "p.json",
        r#"{"account":"spm-options","mode":"portfolio","settlement_asset":"USDC",
            "collateral":{"BTC":"2"},
            "positions":[
              {"instrument":"BTC-27DEC26-110000-C","size":"-5","entry_price":"0.2"},
              {"instrument":"BTC-27DEC26","size":"300000","entry_price":"100000"}]}"#,
        &venue,
    )
    .unwrap();
    let market = Market::from_json(
        "m.json",
        r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","USDC":"1"},
            "mark":{"BTC-27DEC26":"100000"},
            "vol":{"BTC":{"27DEC26":{"strikes":[110000],"vols":[0.55]}}}}"#,
    )
    .unwrap();
    let report = margin_report(&portfolio, &MarketView::new(&venue, &market).unwrap()).unwrap();
    let btc = currency(&report, "BTC");
    assert_eq!(btc.maintenance_margin.value(), dec!(1.26239699));
    assert_eq!(btc.initial_margin.value(), dec!(1.57799623));
    // Equity 2 - 5 x 0.177825493043 = 1.11087253479 -> 1.11087253 BTC (rounded down).
    assert_eq!(btc.equity.value(), dec!(1.11087253));
    let worst = report
        .components
        .iter()
        .find(|c| c.name == "portfolio[BTC]:scan_risk:BTC")
        .unwrap();
    assert!(worst.detail.contains("extended -66%"), "{}", worst.detail);
}
