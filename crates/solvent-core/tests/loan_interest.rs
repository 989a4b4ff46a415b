//! Loans cost interest (issue 10, item 3): the venue file's `[collateral.X] interest` schedule,
//! the venues' published interest examples, and a portfolio's `accrued_interest` /
//! `borrowed_hours`, each bad input refused by its key.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::portfolio::Portfolio;
use solvent_core::rounding;
use solvent_core::venue::{InterestRule, InterestSchedule, RatePeriod, Venue};

fn shipped(name: &str) -> Venue {
    let path = format!("{}/../../venues/{name}", env!("CARGO_MANIFEST_DIR"));
    Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The interest a loan of `asset` pays at `venue` (the test fails where it pays none).
fn interest_of(venue: &Venue, asset: &str) -> InterestSchedule {
    venue.collateral[asset]
        .interest
        .clone()
        .unwrap_or_else(|| panic!("{asset} pays no interest"))
}

/// The default venue with USDT loans allowed and paying Binance's FAQ rate, daily 0.02%.
fn venue_with(interest: &str) -> Result<Venue, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let usdt = "[collateral.USDT]\n";
    let at = text.find(usdt).unwrap() + usdt.len();
    let mut edited = text.clone();
    edited.insert_str(
        at,
        &format!(
            "borrow = {{ initial_rate = \"0.1\", maintenance_rate = \"0.05\" }}\n{interest}\n"
        ),
    );
    Venue::from_toml("test.toml", &edited).map_err(|e| e.to_string())
}

fn binance_day() -> InterestSchedule {
    InterestSchedule {
        rate: dec!(0.0002),
        per: RatePeriod::Day,
        rule: InterestRule::StartedHour,
    }
}

/// Binance FAQ "Daily Interest Rate for Binance Margin Trading" (binance.com support article
/// 360030157812, read 2026-12-05): "If user A borrows 1,000 USDT at 13:20 PM, and repays at
/// 14:15 PM, the interest rate is calculated as 1,000 x (0.02%/24) x 2 = 0.01666667 USDT":
/// two started hours at 0.02% a day, shown to eight decimals (rounded up here; the exact
/// 0.0166666... rounds up to the published figure).
#[test]
fn binance_published_example_two_started_hours_at_0_02_percent_a_day() {
    let exact = binance_day().interest(dec!(1000), 2).unwrap();
    assert_eq!(rounding::requirement(exact, 8), dec!(0.01666667));
}

/// Binance FAQ "Frequently Asked Questions on Binance Margin Trading's New Dynamic Interest Rate
/// System" (same article, updated 2024-10-18): hourly 0.001%, 1,000 USDT borrowed at 13:55, at
/// 14:30 "1,000 x 0.001% x 2 hours = 0.02 USDT".
#[test]
fn binance_published_example_two_hours_at_0_001_percent_an_hour() {
    let hourly = InterestSchedule {
        rate: dec!(0.00001),
        per: RatePeriod::Hour,
        rule: InterestRule::StartedHour,
    };
    assert_eq!(hourly.interest(dec!(1000), 2), Some(dec!(0.02)));
    // Binance Margin announcement "Get a One-Hour Interest Fee Waiver" (2023-12-04): 10 BTC at
    // 0.001% an hour for two hours less the waived one, "0.001% x 10 BTC x (2 - 1) hours =
    // 0.0001 BTC".
    assert_eq!(hourly.interest(dec!(10), 1), Some(dec!(0.0001)));
}

/// A year's rate is charged per hour as 1/8,760 of it: 8.76% a year on 1,000,000 for one hour is
/// 10.
#[test]
fn an_annual_rate_is_charged_as_one_8760th_an_hour() {
    let annual = InterestSchedule {
        rate: dec!(0.0876),
        per: RatePeriod::Year,
        rule: InterestRule::HourSnapshot,
    };
    assert_eq!(annual.hourly_rate(), dec!(0.00001));
    assert_eq!(annual.interest(dec!(1000000), 1), Some(dec!(10)));
}

#[test]
fn the_shipped_binance_file_carries_its_rates_and_rule() {
    let venue = shipped("binance-usdm.toml");
    assert_eq!(interest_of(&venue, "USDT"), binance_day());
    let btc = interest_of(&venue, "BTC");
    assert_eq!(btc.rate, dec!(0.00000571));
    assert_eq!(btc.per, RatePeriod::Hour);
    assert_eq!(btc.rule, InterestRule::StartedHour);
    // Bybit and OKX: their API documentation's example USDT rates (not live rates), each under
    // its venue's `hour_snapshot` rule: Bybit's hourly 0.0000055139 (v3 borrow-rate example), OKX's
    // daily 0.00043728 (interest-rate-loan-quota example, "Daily borrowing rate").
    for (name, rate, per) in [
        ("bybit-linear.toml", dec!(0.0000055139), RatePeriod::Hour),
        ("okx-swap.toml", dec!(0.00043728), RatePeriod::Day),
    ] {
        let venue = shipped(name);
        let usdt = interest_of(&venue, "USDT");
        assert_eq!(usdt.rate, rate, "{name}");
        assert_eq!(usdt.per, per, "{name}");
        assert_eq!(usdt.rule, InterestRule::HourSnapshot, "{name}");
        assert!(
            venue
                .collateral
                .iter()
                .filter(|(asset, _)| asset.as_str() != "USDT")
                .all(|(_, schedule)| schedule.interest.is_none()),
            "{name}: only USDT has a published rate"
        );
    }
}

#[test]
fn a_bad_interest_schedule_is_refused_by_key() {
    let cases = [
        (
            r#"interest = { rate = "1.5", per = "day", rule = "started_hour" }"#,
            "collateral.USDT.interest.rate",
        ),
        (
            r#"interest = { rate = "-0.1", per = "day", rule = "started_hour" }"#,
            "collateral.USDT.interest.rate",
        ),
        (
            r#"interest = { rate = "0.0002", per = "week", rule = "started_hour" }"#,
            "per",
        ),
        (
            r#"interest = { rate = "0.0002", per = "day", rule = "whole_day" }"#,
            "rule",
        ),
        (r#"interest = { rate = "0.0002", per = "day" }"#, "rule"),
        (
            r#"interest = { rate = 0.0002, per = "day", rule = "started_hour" }"#,
            "rate",
        ),
    ];
    for (line, key) in cases {
        let error = venue_with(line).unwrap_err();
        assert!(error.contains(key), "{line}: {error}");
    }
    assert!(
        venue_with(r#"interest = { rate = "0.0002", per = "day", rule = "started_hour" }"#).is_ok()
    );
}

fn portfolio(venue: &Venue, extra: &str) -> Result<Portfolio, String> {
    let text = format!(
        r#"{{"account":"a","mode":"cross","collateral":{{"BTC":"1","USDT":"-1000"}}{extra}}}"#
    );
    Portfolio::from_json("p.json", &text, venue).map_err(|e| e.to_string())
}

fn usdt_balance(portfolio: &Portfolio) -> Decimal {
    portfolio
        .balances
        .iter()
        .find(|b| b.asset.symbol == "USDT")
        .unwrap()
        .amount
        .value()
}

/// `borrowed_hours` takes the venue's rate: 1,000 USDT for two hours at 0.02% a day is
/// 0.016666..., rounded up to USDT's six decimals, 0.016667, added to the loan.
#[test]
fn borrowed_hours_take_the_venues_rate_rounded_up_and_join_the_loan() {
    let venue = venue_with(r#"interest = { rate = "0.0002", per = "day", rule = "started_hour" }"#)
        .unwrap();
    let with_hours = portfolio(&venue, r#","borrowed_hours":{"USDT":2}"#).unwrap();
    assert_eq!(usdt_balance(&with_hours), dec!(-1000.016667));
    let owed = &with_hours.accrued_interest[0];
    assert_eq!(owed.asset, "USDT");
    assert_eq!(owed.principal.value(), dec!(1000));
    assert_eq!(owed.interest.value(), dec!(0.016667));
    assert_eq!(owed.hours, Some(2));
    let stated = portfolio(&venue, r#","accrued_interest":{"USDT":"0.5"}"#).unwrap();
    assert_eq!(usdt_balance(&stated), dec!(-1000.5));
    assert_eq!(stated.accrued_interest[0].hours, None);
}

#[test]
fn bad_interest_in_a_portfolio_is_refused_by_key() {
    let venue = venue_with(r#"interest = { rate = "0.0002", per = "day", rule = "started_hour" }"#)
        .unwrap();
    let cases = [
        (
            r#","accrued_interest":{"USDT":"-1"}"#,
            "accrued_interest.USDT",
        ),
        (
            r#","accrued_interest":{"USDT":"0.0000001"}"#,
            "accrued_interest.USDT",
        ),
        (
            r#","accrued_interest":{"BTC":"0.1"}"#,
            "accrued_interest.BTC",
        ),
        (
            r#","accrued_interest":{"DOGE":"1"}"#,
            "accrued_interest.DOGE",
        ),
        (r#","borrowed_hours":{"USDT":-1}"#, "borrowed_hours"),
        (
            r#","accrued_interest":{"USDT":"1"},"borrowed_hours":{"USDT":2}"#,
            "borrowed_hours.USDT",
        ),
        (
            r#","accrued_interest":{"USDT":"1","USDT":"2"}"#,
            "accrued_interest",
        ),
    ];
    for (extra, key) in cases {
        let error = portfolio(&venue, extra).unwrap_err();
        assert!(error.contains(key), "{extra}: {error}");
    }
    // A venue that publishes no rate for the asset cannot turn hours into interest.
    let no_rate = venue_with("").unwrap();
    let error = portfolio(&no_rate, r#","borrowed_hours":{"USDT":2}"#).unwrap_err();
    assert!(
        error.contains("borrowed_hours.USDT") && error.contains("no interest rate"),
        "{error}"
    );
}
