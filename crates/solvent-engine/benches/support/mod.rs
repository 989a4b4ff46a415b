//! The population and event streams the engine's benchmarks share (`benches/engine.rs` and
//! `examples/tick_latency.rs`, which includes this file by path): accounts opened through
//! ordinary events (USDT deposits, some BTC collateral, fills on BTCUSDT / ETHUSDT against
//! `external`), most at 1.5-12x, a small "hot" share at 60-90% of the maximum leverage; and, in
//! [`mixed`], the mixed population (options, portfolio mode, inverse, isolated) built on it.

// Each benchmark uses a part of it.
#![allow(dead_code, reason = "shared by two benchmarks, each using a part")]

mod alloc;
pub mod mixed;

use jiff::Timestamp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use solvent_core::money::{Amount, Price, Quantity};
use solvent_engine::event::{Deposit, Envelope, Event, Fill, IndexPrice, SetLeverage, Side};
use solvent_engine::ledger::EXTERNAL;

/// 2026-01-01T00:00:00Z in milliseconds.
pub const START_MS: i64 = 1_767_225_600_000;

/// Builds envelopes with increasing sequence numbers and times.
#[derive(Clone)]
pub struct Stream {
    /// The last sequence number given.
    pub seq: u64,
    /// The time of the next envelope, in milliseconds since the epoch.
    pub ts_ms: i64,
}

impl Stream {
    /// A stream starting at [`START_MS`].
    pub fn new() -> Self {
        Self {
            seq: 0,
            ts_ms: START_MS,
        }
    }

    /// `event` in the next envelope.
    pub fn next(&mut self, event: Event) -> Envelope {
        self.seq += 1;
        Envelope {
            seq: self.seq,
            ts: Timestamp::from_millisecond(self.ts_ms).unwrap_or(Timestamp::UNIX_EPOCH),
            event,
        }
    }
}

/// `value` rounded to cents.
pub fn cents(value: f64) -> Decimal {
    Decimal::new((value * 100.0).round() as i64, 2)
}

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A tradable leg: instrument, underlying, start price, size scale (3 for 0.001), maximum
/// leverage.
pub struct Leg {
    pub instrument: &'static str,
    pub underlying: &'static str,
    pub price: f64,
    pub scale: u32,
    pub max_leverage: i64,
}

/// BTCUSDT and ETHUSDT of the default venue.
pub const LEGS: [Leg; 2] = [
    Leg {
        instrument: "BTCUSDT",
        underlying: "BTC",
        price: 60_000.0,
        scale: 3,
        max_leverage: 100,
    },
    Leg {
        instrument: "ETHUSDT",
        underlying: "ETH",
        price: 3_000.0,
        scale: 2,
        max_leverage: 50,
    },
];

/// The id of account `i`.
pub fn account_id(i: usize) -> String {
    format!("acct{i:07}")
}

/// A deposit of `amount` of `asset` into `account`.
pub fn deposit(account: &str, asset: &str, amount: Decimal) -> Event {
    Event::Deposit(Deposit {
        account: account.to_owned(),
        asset: asset.to_owned(),
        amount: Amount(amount),
    })
}

/// A fill of `units` size steps of `leg` at its start price, with a 0.05% taker fee.
pub fn fill(account: &str, counterparty: &str, leg: &Leg, long: bool, units: i64) -> Event {
    let size = Decimal::new(units, leg.scale);
    let price = cents(leg.price);
    Event::Fill(Fill {
        account: account.to_owned(),
        instrument: leg.instrument.to_owned(),
        side: if long { Side::Buy } else { Side::Sell },
        size: Quantity(size),
        price: Price(price),
        // 0.05% taker fee at USDT's 6 decimals.
        fee: Amount((size * price * Decimal::new(5, 4)).round_dp(6)),
        counterparty: counterparty.to_owned(),
    })
}

/// An index update of `leg`'s underlying.
pub fn index(leg: &Leg, price: f64) -> Event {
    Event::IndexPrice(IndexPrice {
        underlying: leg.underlying.to_owned(),
        price: Price(cents(price)),
        source: None,
    })
}

/// Appends the events that open account `i` to `events`; returns whether it is one of the
/// `hot_share` at high leverage.
pub fn open_account(
    i: usize,
    hot_share: f64,
    rng: &mut ChaCha8Rng,
    events: &mut Vec<Event>,
) -> bool {
    let id = account_id(i);
    let hot = rng.random_bool(hot_share);
    let leg = &LEGS[usize::from(!rng.random_bool(0.535))];
    let (low, high) = if hot {
        (500.0_f64, 20_000.0_f64)
    } else {
        (500.0, 100_000.0)
    };
    let collateral = (low.ln() + rng.random::<f64>() * (high.ln() - low.ln())).exp();
    events.push(Event::Deposit(Deposit {
        account: id.clone(),
        asset: "USDT".to_owned(),
        amount: Amount(cents(collateral)),
    }));
    let leverage = if hot {
        events.push(Event::SetLeverage(SetLeverage {
            account: id.clone(),
            instrument: leg.instrument.to_owned(),
            leverage: Decimal::from(leg.max_leverage),
        }));
        leg.max_leverage as f64 * (0.6 + 0.3 * rng.random::<f64>())
    } else {
        1.5 + 10.5 * rng.random::<f64>()
    };
    if !hot && rng.random_bool(0.05) {
        // Some BTC collateral: 0.01-1 BTC.
        events.push(Event::Deposit(Deposit {
            account: id.clone(),
            asset: "BTC".to_owned(),
            amount: Amount(Decimal::new(rng.random_range(1_000_000..100_000_000), 8)),
        }));
    }
    let units = |notional: f64, leg: &Leg| {
        (notional / leg.price * 10f64.powi(leg.scale as i32)).floor() as i64
    };
    let long = rng.random_bool(0.6);
    let first = units(collateral * leverage, leg);
    if first > 0 {
        events.push(fill(&id, EXTERNAL, leg, long, first));
    }
    if !hot && rng.random_bool(0.15) {
        // A second leg on the other underlying, cross margin.
        let other = &LEGS[usize::from(leg.underlying == "BTC")];
        let leverage = 1.0 + 3.0 * rng.random::<f64>();
        let second = units(collateral * leverage, other);
        if second > 0 {
            events.push(fill(&id, EXTERNAL, other, !long, second));
        }
    }
    hot
}
