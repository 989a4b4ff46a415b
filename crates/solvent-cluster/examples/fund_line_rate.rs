//! How fast the system shard reads effect lines for the fund (`fund_line`): every line of an
//! effects file (`solvent replay --out`), several passes, best pass reported.
//!
//! Usage: cargo run --release -p solvent-cluster --example fund_line_rate -- EFFECTS.jsonl [PASSES]

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: fund_line_rate EFFECTS.jsonl [PASSES]")?;
    let passes: usize = args.next().map_or(Ok(5), |p| p.parse())?;
    let text = std::fs::read_to_string(&path)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut best = f64::INFINITY;
    let mut fund = 0;
    for _ in 0..passes {
        let started = Instant::now();
        fund = 0;
        for line in &lines {
            if solvent_cluster::system::fund_line(line)?.is_some() {
                fund += 1;
            }
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{} lines ({fund} for the fund): best of {passes} passes {:.3} s, {:.0} ns per line",
        lines.len(),
        best,
        best * 1e9 / lines.len() as f64
    );
    Ok(())
}
