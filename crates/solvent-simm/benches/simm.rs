//! SIMM 2.8 for 10,000 netting sets of 50 CRIF rows (tests/support/generate.rs, seed 7): reading
//! the CRIF text, and computing SIMM from the parsed rows. ORE's time on the same CRIF is measured
//! by `bench/simm.sh` (examples/simm_vs_ore.rs).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/generate.rs"]
mod generate;

use criterion::{Criterion, criterion_group, criterion_main};
use solvent_simm::{Calibration, Version, crif, simm};

fn bench(c: &mut Criterion) {
    let text = generate::crif(7, 10_000, 50);
    let calibration = Calibration::load(Version::V2_8).expect("calibration");
    let rows = crif::parse(&text).expect("CRIF");
    let mut group = c.benchmark_group("simm_10000_netting_sets_x_50_rows");
    group.sample_size(10);
    group.bench_function("parse", |b| b.iter(|| crif::parse(&text).expect("CRIF")));
    group.bench_function("simm", |b| {
        b.iter(|| simm(&rows, &calibration).expect("buckets the version has"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
