//! The deterministic Black-76 benchmark inputs, shared by `benches/black76.rs` and
//! `examples/black76_throughput.rs` (which includes this file by path), identical to those of
//! `bench/peers/black76_peers.py`: a 64-bit linear congruential generator (Knuth's MMIX
//! constants), top 53 bits as a uniform.

use solvent_pricing::black76::{OptionType, OwnedColumns};

/// `n` options: forward 100, moneyness 0.5 to 2, 1 day to 2 years, volatility 10% to 150%, rate
/// 0 to 5%, calls and puts alike.
pub fn inputs(n: usize) -> OwnedColumns {
    let mut state: u64 = 20_260_101;
    let mut unit = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut v = OwnedColumns::with_capacity(n);
    for _ in 0..n {
        let forward = 100.0;
        let strike = forward * (0.5 + 1.5 * unit()); // moneyness 0.5 .. 2
        let time = 1.0 / 365.0 + 2.0 * unit(); // 1 day .. 2 years
        let volatility = 0.1 + 1.4 * unit(); // 10% .. 150%
        let rate = 0.05 * unit();
        let is_call = unit() < 0.5;
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
