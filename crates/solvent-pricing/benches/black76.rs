//! Criterion benchmarks of Black-76: the scalar path (`Black76::greeks`) and the batch path
//! (`price_and_greeks_batch`, validation included) over 1 million options of the mix, and the
//! batch path over 1 million options of the crypto chain (`inputs::chain`), throughput in
//! options. `bench/black76.sh` reports the same figures against the Python peers.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use solvent_pricing::black76::{Black76, Black76Batch, GreeksBatch, price_and_greeks_batch};
use std::hint::black_box;

use inputs::{Smile, chain, inputs};

mod inputs;

const N: usize = 1_000_000;

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
            let columns = v.columns();
            if let Ok(batch) = Black76Batch::new_checked(black_box(columns)) {
                price_and_greeks_batch(&batch, &mut out);
            }
            black_box(out.price()[N / 2])
        });
    });
    let chain = chain(N, Smile::Market);
    group.bench_function("batch_price_delta_gamma_vega_chain_1m", |b| {
        b.iter(|| {
            let columns = chain.columns();
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
