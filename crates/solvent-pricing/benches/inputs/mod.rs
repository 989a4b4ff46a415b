//! The deterministic Black-76 benchmark inputs, shared by `benches/black76.rs` and
//! `examples/black76_throughput.rs` (which includes this file by path), identical to those of
//! `bench/peers/black76_peers.py` (same generators, same seeds, same order): a 64-bit linear
//! congruential generator (Knuth's MMIX constants), top 53 bits as a uniform.
//!
//! Two workloads:
//! - [`inputs`], the *mix*: moneyness, time and volatility drawn independently and uniformly.
//!   About 2% of its options go to the batch's careful kernel.
//! - [`chain`], a *crypto option chain*: Deribit-like snapshots (expiry ladder, strike grids in
//!   round steps, a volatility smile), where short expiries hold strikes far from the money.

// Each of the two programs that include this file uses only some of its items.
#![allow(dead_code)]

use solvent_pricing::black76::{OptionType, OwnedColumns};

/// The generator of both workloads: a 64-bit LCG, top 53 bits as a uniform in `[0, 1)`.
pub struct Lcg {
    state: u64,
}

impl Lcg {
    /// A generator at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` options: forward 100, moneyness 0.5 to 2, 1 day to 2 years, volatility 10% to 150%, rate
/// 0 to 5%, calls and puts alike.
pub fn inputs(n: usize) -> OwnedColumns {
    let mut rng = Lcg::new(20_260_101);
    let mut v = OwnedColumns::with_capacity(n);
    for _ in 0..n {
        let forward = 100.0;
        let strike = forward * (0.5 + 1.5 * rng.unit()); // moneyness 0.5 .. 2
        let time = 1.0 / 365.0 + 2.0 * rng.unit(); // 1 day .. 2 years
        let volatility = 0.1 + 1.4 * rng.unit(); // 10% .. 150%
        let rate = 0.05 * rng.unit();
        let is_call = rng.unit() < 0.5;
        v.forward.push(forward);
        v.strike.push(strike);
        v.time.push(time);
        v.volatility.push(volatility);
        v.discount.push((-rate * time).exp());
        v.kind.push(if is_call {
            OptionType::Call
        } else {
            OptionType::Put
        });
    }
    v
}

/// The expiry ladder of one chain snapshot, Deribit-like: `(days to expiry, days before expiry
/// its strikes were listed)`. Three dailies (listed four days ahead), three weeklies (listed
/// four weeks ahead), two monthlies (a quarter ahead), four quarterlies (a year ahead).
pub const LADDER: [(u32, u32); 12] = [
    (1, 4),
    (2, 4),
    (3, 4),
    (7, 28),
    (14, 28),
    (21, 28),
    (28, 91),
    (63, 91),
    (91, 364),
    (182, 364),
    (273, 364),
    (364, 364),
];

/// The volatility at each strike of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smile {
    /// `atm (1 + 0.03 x^2 + 0.01 skew x)` in standardised moneyness `x = ln(K / F) / (atm
    /// sqrt(T))`, within 30% .. 150%: wings richer than the money, as quoted.
    Market,
    /// The at-the-money volatility at every strike (a stress of the careful kernel: far strikes
    /// of short expiries then have small normalised volatility).
    Flat,
}

/// The smallest "round" step (1, 2, 2.5 or 5 times a power of ten) at least `raw`.
fn round_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// `n` options from successive snapshots of a crypto option chain (a call and a put at each
/// strike of each expiry of [`LADDER`]); the last snapshot is cut at `n`.
///
/// Per snapshot: spot `100 e^(u - 1/2)`; at-the-money volatility 35% .. 85%, the front of the
/// term structure up to 20% richer or cheaper (`atm(T) = atm0 (1 + term e^(-8 T))`); rate
/// 0 .. 5%. Per expiry: forward `spot e^(basis T)`, basis 0 .. 10% a year; strikes in round
/// steps (16 to 40 of them across the range) covering 3.5 standard deviations of the listing
/// tenor around both today's forward and the forward at listing (an approximately normal draw
/// away: strikes once listed stay), within 0.3x .. 3x the forward; the smile `smile`, its skew
/// `-0.1 .. 0.1` per expiry.
pub fn chain(n: usize, smile: Smile) -> OwnedColumns {
    let mut rng = Lcg::new(20_260_102);
    let mut v = OwnedColumns::with_capacity(n + 512);
    while v.forward.len() < n {
        let spot = 100.0 * (rng.unit() - 0.5).exp();
        let atm_base = 0.35 + 0.5 * rng.unit();
        let term = 0.4 * (rng.unit() - 0.5);
        let rate = 0.05 * rng.unit();
        for (days, listed_days) in LADDER {
            let time = f64::from(days) / 365.0;
            let atm = atm_base * (1.0 + term * (-time * 8.0).exp());
            let basis = 0.1 * rng.unit();
            let forward = spot * (basis * time).exp();
            // Irwin-Hall of three uniforms, scaled to unit variance.
            let z = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 2.0;
            let elapsed = f64::from(listed_days - days) / 365.0;
            let at_listing = forward * (atm * elapsed.sqrt() * z).exp();
            let width = 3.5 * atm * (f64::from(listed_days) / 365.0).sqrt();
            let low = (0.3 * forward).max(forward.min(at_listing) * (-width).exp());
            let high = (3.0 * forward).min(forward.max(at_listing) * width.exp());
            let strikes = 16.0 + 24.0 * rng.unit();
            let step = round_step((high - low) / strikes);
            let skew = -0.1 + 0.2 * rng.unit();
            let mut strike = (low / step).ceil() * step;
            while strike <= high {
                let x = (strike / forward).ln() / (atm * time.sqrt());
                let volatility = match smile {
                    Smile::Market => (atm * (1.0 + 0.03 * x * x + skew * 0.1 * x)).clamp(0.3, 1.5),
                    Smile::Flat => atm.clamp(0.3, 1.5),
                };
                for kind in [OptionType::Call, OptionType::Put] {
                    v.forward.push(forward);
                    v.strike.push(strike);
                    v.time.push(time);
                    v.volatility.push(volatility);
                    v.discount.push((-rate * time).exp());
                    v.kind.push(kind);
                }
                strike += step;
            }
        }
    }
    for column in [
        &mut v.forward,
        &mut v.strike,
        &mut v.time,
        &mut v.volatility,
        &mut v.discount,
    ] {
        column.truncate(n);
    }
    v.kind.truncate(n);
    v
}

/// The fraction of `v`'s options the batch routes to its careful kernel: the routing of
/// `src/black76/batch/direct.rs` (`routing_excess`) restated, in the normalised coordinates
/// `h = -|ln(F / K)| / s`, `t = s / 2`, `s = sigma sqrt(T)`: careful when `|h| + t > 4 sqrt(2)`
/// or `|h| + 1.26 > 160 t` (or expired). A restatement for the report, not the kernel's code.
pub fn careful_fraction(v: &OwnedColumns) -> f64 {
    let careful = (0..v.forward.len())
        .filter(|&i| {
            let s = v.volatility[i] * v.time[i].sqrt();
            let abs_h = (v.forward[i] / v.strike[i]).ln().abs() / s;
            let t = 0.5 * s;
            v.time[i] <= 0.0
                || abs_h + t > 4.0 * std::f64::consts::SQRT_2
                || abs_h + 1.26 > 160.0 * t
        })
        .count();
    careful as f64 / v.forward.len().max(1) as f64
}
