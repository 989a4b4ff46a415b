//! Options per second of the Black-76 batch path (price, delta, gamma, vega) on one thread.
//!
//! Inputs are the deterministic workloads of `bench/peers/black76_peers.py` (same generators,
//! same seeds; `benches/inputs/mod.rs`), so the figures compare with the Python peers: the
//! *mix* (independent uniform draws) and the *crypto chain* with a market smile and with a flat
//! one. Run pinned to one core:
//!
//! ```text
//! taskset -c 0 cargo run --release -p solvent-pricing --example black76_throughput -- 1000000
//! ```
//!
//! Prints one line per path as `name options_per_second`, the best of several repetitions:
//! `batch` is the fused call [`price_and_greeks_checked`] (validation included: it is what a
//! caller with raw columns pays), `two_step` is [`Black76Batch::new_checked`] followed by
//! [`price_and_greeks_batch`] on the same columns, `scalar` is `Black76::greeks` per option.
//! `chain_batch` and `chain_flat_batch` are the fused call on the two chains, and
//! `careful_mix`, `careful_chain`, `careful_chain_flat` the fraction of each workload's options
//! the batch routes to its careful kernel. Also a `features` line naming the SIMD features the binary was compiled for, a `runtime`
//! line naming the instruction set the batch kernels choose on this processor (they switch to
//! AVX-512 when it is there, whatever the build target), and (to stderr) a checksum so the work
//! cannot be optimised away.

use solvent_pricing::black76::{
    Black76, Black76Batch, GreeksBatch, OwnedColumns, price_and_greeks_batch,
    price_and_greeks_checked,
};
use std::hint::black_box;
use std::time::Instant;

use inputs::{Smile, careful_fraction, chain, inputs};

#[path = "../benches/inputs/mod.rs"]
mod inputs;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let repetitions: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let v = inputs(n);
    let columns = v.columns();
    let mut out = GreeksBatch::with_capacity(n);
    let mut checksum = 0.0;
    // The two batch paths alternate, so that a change of load on the machine hits both.
    let (mut best_fused, mut best_two_step) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repetitions {
        let start = Instant::now();
        // Validation is part of the measured work: it is what a caller pays.
        if let Err(error) = price_and_greeks_checked(black_box(columns), &mut out) {
            eprintln!("invalid inputs: {error}");
            std::process::exit(2);
        }
        best_fused = best_fused.min(start.elapsed().as_secs_f64());
        checksum += out.price().iter().sum::<f64>() + out.vega()[n / 2];

        let start = Instant::now();
        let batch = match Black76Batch::new_checked(black_box(columns)) {
            Ok(batch) => batch,
            Err(error) => {
                eprintln!("invalid inputs: {error}");
                std::process::exit(2);
            }
        };
        price_and_greeks_batch(&batch, &mut out);
        best_two_step = best_two_step.min(start.elapsed().as_secs_f64());
        checksum += out.price().iter().sum::<f64>() + out.vega()[n / 2];
    }
    let chains = [
        ("chain", chain(n, Smile::Market)),
        ("chain_flat", chain(n, Smile::Flat)),
    ];
    let mut best_chain = [f64::INFINITY; 2];
    for _ in 0..repetitions {
        // The chains alternate too.
        for ((_, columns), best) in chains.iter().zip(&mut best_chain) {
            *best = best.min(time_fused(columns, &mut out, &mut checksum));
        }
    }
    let mut best_scalar = f64::INFINITY;
    let scalar_n = n.min(200_000);
    for _ in 0..repetitions.min(5) {
        let start = Instant::now();
        let mut sum = 0.0;
        for i in 0..scalar_n {
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
        best_scalar = best_scalar.min(start.elapsed().as_secs_f64());
        checksum += black_box(sum);
    }
    println!("batch {:.0}", n as f64 / best_fused);
    println!("two_step {:.0}", n as f64 / best_two_step);
    for ((name, columns), best) in chains.iter().zip(best_chain) {
        println!("{name}_batch {:.0}", n as f64 / best);
        println!("careful_{name} {:.4}", careful_fraction(columns));
    }
    println!("careful_mix {:.4}", careful_fraction(&v));
    // The SIMD features this binary was compiled for (the workspace ships x86-64-v3).
    let features = [
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("avx512f", cfg!(target_feature = "avx512f")),
    ];
    let enabled: Vec<&str> = features
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    println!("features {}", enabled.join(" "));
    // The batch kernels' own run-time choice (src/black76/batch.rs, module `dispatch`).
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512cd");
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    println!("runtime {}", if avx512 { "avx512" } else { "as compiled" });
    println!("scalar {:.0}", scalar_n as f64 / best_scalar);
    eprintln!("checksum {checksum:e}");
}

/// Seconds for one fused call [`price_and_greeks_checked`] over `v`, added to `checksum`.
fn time_fused(v: &OwnedColumns, out: &mut GreeksBatch, checksum: &mut f64) -> f64 {
    let n = v.forward.len();
    let start = Instant::now();
    if let Err(error) = price_and_greeks_checked(black_box(v.columns()), out) {
        eprintln!("invalid inputs: {error}");
        std::process::exit(2);
    }
    let seconds = start.elapsed().as_secs_f64();
    *checksum += out.price().iter().sum::<f64>() + out.vega()[n / 2];
    seconds
}
