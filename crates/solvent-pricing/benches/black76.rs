//! Criterion benchmarks of Black-76: the scalar path (`Black76::greeks`) and the batch path
//! (`price_and_greeks_batch`, validation included) over 1 million options, throughput in options.
//! `bench/black76.sh` reports the same figures against the Python peers.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use solvent_pricing::black76::{
    BatchColumns, Black76, Black76Batch, GreeksBatch, OptionType, price_and_greeks_batch,
};
use std::hint::black_box;

const N: usize = 1_000_000;

struct Inputs {
    forward: Vec<f64>,
    strike: Vec<f64>,
    time: Vec<f64>,
    volatility: Vec<f64>,
    discount: Vec<f64>,
    kind: Vec<OptionType>,
}

/// The same deterministic inputs as `examples/black76_throughput.rs` and the Python peers.
fn inputs(n: usize) -> Inputs {
    let mut state: u64 = 20_260_101;
    let mut unit = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut v = Inputs {
        forward: Vec::with_capacity(n),
        strike: Vec::with_capacity(n),
        time: Vec::with_capacity(n),
        volatility: Vec::with_capacity(n),
        discount: Vec::with_capacity(n),
        kind: Vec::with_capacity(n),
    };
    for _ in 0..n {
        let strike = 100.0 * (0.5 + 1.5 * unit());
        let time = 1.0 / 365.0 + 2.0 * unit();
        let volatility = 0.1 + 1.4 * unit();
        let rate = 0.05 * unit();
        let is_call = unit() < 0.5;
        v.forward.push(100.0);
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

fn black76(c: &mut Criterion) {
    let v = inputs(N);
    let mut group = c.benchmark_group("black76");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.bench_function("scalar_greeks_1m", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for i in 0..N {
                if let Ok(option) = Black76::new_checked(
                    v.forward[i],
                    v.strike[i],
                    v.time[i],
                    v.volatility[i],
                    v.discount[i],
                ) {
                    let g = option.greeks(v.kind[i]);
                    sum += g.price + g.delta + g.gamma + g.vega;
                }
            }
            black_box(sum)
        });
    });
    let mut out = GreeksBatch::with_capacity(N);
    group.bench_function("batch_price_delta_gamma_vega_1m", |b| {
        b.iter(|| {
            let columns = BatchColumns {
                forward: &v.forward,
                strike: &v.strike,
                time_to_expiry_years: &v.time,
                volatility: &v.volatility,
                discount_factor: &v.discount,
                option_type: &v.kind,
            };
            if let Ok(batch) = Black76Batch::new_checked(black_box(columns)) {
                price_and_greeks_batch(&batch, &mut out);
            }
            black_box(out.price()[N / 2])
        });
    });
    group.finish();
}

criterion_group!(benches, black76);
criterion_main!(benches);
