//! Allocation worked by hand: buffers, withdrawable, restoring an isolated position, and
//! water-filling when the pool cannot save every position.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use rust_decimal_macros::dec;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::MarketView;
use solvent_risk::allocation::{AllocationPolicy, BufferPolicy, allocate};

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

const MARKET: &str = r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","ETH":"4000","USDT":"1"},
  "vol":{"BTC":{"27DEC26":{"strikes":[100000],"vols":[0.5]}},"ETH":{"27DEC26":{"strikes":[4000],"vols":[0.5]}}}}"#;

fn run(portfolio: &str, policy: AllocationPolicy) -> solvent_risk::allocation::Allocation {
    let venue = venue();
    let portfolio = Portfolio::from_json("p.json", portfolio, &venue).unwrap();
    let market = Market::from_json("m.json", MARKET).unwrap();
    allocate(
        &portfolio,
        &MarketView::new(&venue, &market).unwrap(),
        policy,
    )
    .unwrap()
}

#[test]
fn a_maintenance_multiple_buffer_lowers_withdrawable() {
    // 1 BTC long at 100,000 (cross, 20x): IM 5,000, MM 500; 20,000 USDT. Buffer 12 x MM = 6,000
    // is above IM: withdrawable = 20,000 - 6,000 = 14,000 (cash 20,000).
    let allocation = run(
        r#"{"account":"b","mode":"cross","collateral":{"USDT":"20000"},"positions":[{"instrument":"BTCUSDT","size":"1","entry_price":"100000"}]}"#,
        AllocationPolicy {
            buffer: BufferPolicy::MaintenanceMultiple { multiple: 12.0 },
            ..AllocationPolicy::default()
        },
    );
    assert_eq!(allocation.initial_margin.value(), dec!(5000));
    assert_eq!(allocation.buffer.value(), dec!(6000));
    assert_eq!(allocation.withdrawable.value(), dec!(14000));
    assert_eq!(allocation.excess.value(), dec!(15000));
}

#[test]
fn a_sigma_buffer_survives_the_move() {
    // 3 daily SDs at 50% vol: 3 x 0.5 / sqrt(365) = 7.851%. A 1 BTC long loses 7,851.4 at the fall;
    // MM after = 0.5% x 92,148.6 = 460.743; buffer = 460.743 + 7,851.4 = 8,312.1...
    let allocation = run(
        r#"{"account":"s","mode":"cross","collateral":{"USDT":"20000"},"positions":[{"instrument":"BTCUSDT","size":"1","entry_price":"100000"}]}"#,
        AllocationPolicy {
            buffer: BufferPolicy::Sigma {
                sigmas: 3.0,
                horizon_days: 1.0,
            },
            ..AllocationPolicy::default()
        },
    );
    let fall = 3.0 * 0.5 / 365.0_f64.sqrt();
    let expected = 100_000.0 * fall + 0.005 * 100_000.0 * (1.0 - fall);
    let buffer = allocation.buffer.to_f64();
    assert!((buffer - expected).abs() < 0.01, "{buffer} vs {expected}");
}

#[test]
fn an_isolated_position_below_its_trigger_is_restored_to_target() {
    // Isolated 1 BTC long, margin 520, at mark 100,000: MM 500, health 1.04 < 1.2. Target 1.5
    // needs 750 of equity: move 230 from a pool of 10,000.
    let allocation = run(
        r#"{"account":"i","mode":"cross","collateral":{"USDT":"10000"},"positions":[
            {"instrument":"BTCUSDT","size":"1","entry_price":"100000","isolated_margin":"520"}]}"#,
        AllocationPolicy::default(),
    );
    assert_eq!(allocation.moves.len(), 1);
    assert_eq!(allocation.moves[0].amount.value(), dec!(230));
    assert!((allocation.moves[0].health_after.unwrap() - 1.5).abs() < 1e-9);
}

#[test]
fn a_short_pool_is_water_filled_on_distance_to_liquidation() {
    // Two isolated longs of 100,000 notional: 1 BTC (MM 0.5% = 500, margin 510, health 1.02) and
    // 25 ETH (MM 1% = 1,000, margin 1,150, health 1.15); they need 240 + 350 to reach 1.5 and the
    // pool holds 100. Distances to liquidation (daily SD 0.5 / sqrt(365) = 2.617%): BTC
    // 10 / 0.995 / 100,000 = 0.0100% = 0.0038 SD; ETH 150 / 24.75 / 4,000 = 0.1515% = 0.0579 SD.
    // 100 USDT lift BTC by 100 / (100,000 x 2.617%) = 0.0382 SD, still below ETH: all go to BTC.
    let allocation = run(
        r#"{"account":"w","mode":"cross","collateral":{"USDT":"100"},"positions":[
            {"instrument":"BTCUSDT","size":"1","entry_price":"100000","isolated_margin":"510"},
            {"instrument":"ETHUSDT","size":"25","entry_price":"4000","isolated_margin":"1150"}]}"#,
        AllocationPolicy::default(),
    );
    let total: f64 = allocation.moves.iter().map(|m| m.amount.to_f64()).sum();
    assert!((total - 100.0).abs() < 1e-3, "{total}");
    assert_eq!(allocation.moves.len(), 1, "{:?}", allocation.moves);
    assert_eq!(allocation.moves[0].instrument, "BTCUSDT");
    assert!(allocation.moves[0].reason.contains("water-filling"));
}
