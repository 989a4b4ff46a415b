//! Where `solvent replay`'s time goes, phase by phase, on one `EVENTS.jsonl` file, in the same
//! run: parsing alone (the general reader through `serde_json::Value`, as every line was read
//! before, and `parse_line`, the typed reader); the in-memory engine (`Engine::apply` over events
//! parsed before timing, effects dropped); and applying with each effect written as a JSON line
//! into memory (no file), through a `serde_json::Value` as before and written directly.
//! `bench/replay.sh` runs it next to `solvent replay` end to end on the same files.
//!
//! Usage: `replay_phases EVENTS.jsonl [rounds (3)]`. Each phase runs `rounds` times, each on a
//! fresh engine; the best wall-clock and the best CPU time (of this thread, from
//! `/proc/thread-self/schedstat`: what it cost, leaving out the time it waited for a core on a
//! shared machine) are printed, as events / s and ns per event and per effect.

use std::time::{Duration, Instant};

use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::EffectLine;
use solvent_engine::event::{Envelope, parse_line, parse_line_general};

/// The allocator the `solvent` binary runs on.
#[path = "../benches/support/alloc.rs"]
mod alloc;

fn engine() -> Engine {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match Venue::from_toml(path, &text) {
        Ok(venue) => Engine::new(venue, EngineConfig::default()),
        Err(error) => panic!("the default venue must load: {error}"),
    }
}

/// CPU time of the calling thread so far (`/proc/thread-self/schedstat`, Linux), or zero: on a
/// shared machine it leaves out the time the thread waited for a core.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Wall-clock and CPU time of one round.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// Runs `run` `rounds` times; the shortest wall and CPU times (each the best of its kind), with
/// what the last round returned.
fn best<T>(rounds: usize, mut run: impl FnMut() -> T) -> (Timing, T) {
    let mut best = Timing {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    };
    let mut value = None;
    for _ in 0..rounds.max(1) {
        // The previous round's value is dropped before the timing starts.
        drop(value.take());
        let (wall, cpu) = (Instant::now(), cpu_time());
        value = Some(run());
        best.wall = best.wall.min(wall.elapsed());
        best.cpu = best.cpu.min(cpu_time().saturating_sub(cpu));
    }
    (
        best,
        value.unwrap_or_else(|| unreachable!("at least one round")),
    )
}

fn report(name: &str, timing: Timing, events: usize, effects: usize) {
    #[allow(clippy::cast_precision_loss)]
    let (events_f, effects_f) = (events as f64, effects.max(1) as f64);
    let (wall, cpu) = (timing.wall.as_secs_f64(), timing.cpu.as_secs_f64());
    println!(
        "{name:<34} wall {wall:>7.3} s {:>9.0} events/s | cpu {cpu:>7.3} s {:>9.0} events/s {:>6.0} ns/event {:>5.0} ns/effect",
        events_f / wall,
        events_f / cpu,
        cpu * 1e9 / events_f,
        cpu * 1e9 / effects_f,
    );
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| (index + 1, line))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: replay_phases EVENTS.jsonl [rounds]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));

    let (general_time, general) = best(rounds, || {
        lines(&text)
            .map(|(n, line)| parse_line_general(&path, n, line).unwrap_or_else(|e| panic!("{e}")))
            .collect::<Vec<Envelope>>()
    });
    let (parse_time, events) = best(rounds, || {
        lines(&text)
            .map(|(n, line)| parse_line(&path, n, line).unwrap_or_else(|e| panic!("{e}")))
            .collect::<Vec<Envelope>>()
    });
    assert!(
        general == events,
        "the two readers must read the same events"
    );
    drop(general);
    let count = events.len();

    let engines = || (0..rounds.max(1)).map(|_| engine()).collect::<Vec<_>>();
    let mut spent = Vec::new();
    let mut fresh = engines();
    let (apply_time, effects) = best(rounds, || {
        let mut engine = fresh.pop().unwrap_or_else(engine);
        let mut effects = 0_usize;
        for envelope in &events {
            effects += engine.apply(envelope).len();
        }
        // Dropped after the timing.
        spent.push(engine);
        effects
    });

    spent.clear();
    let mut fresh = engines();
    let (value_time, value_bytes) = best(rounds, || {
        let mut engine = fresh.pop().unwrap_or_else(engine);
        let mut buffer: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut bytes = 0_usize;
        for envelope in &events {
            for effect in engine.apply(envelope) {
                let line = EffectLine {
                    seq: envelope.seq,
                    effect,
                };
                let value = serde_json::to_value(&line).unwrap_or_default();
                serde_json::to_writer(&mut buffer, &value).unwrap_or_default();
                buffer.push(b'\n');
            }
            if buffer.len() >= 1 << 20 {
                bytes += buffer.len();
                buffer.clear();
            }
        }
        spent.push(engine);
        bytes + buffer.len()
    });

    spent.clear();
    let mut fresh = engines();
    let (direct_time, direct_bytes) = best(rounds, || {
        let mut engine = fresh.pop().unwrap_or_else(engine);
        let mut buffer: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut bytes = 0_usize;
        for envelope in &events {
            for effect in engine.apply(envelope) {
                effect.write_json_line(envelope.seq, &mut buffer);
            }
            if buffer.len() >= 1 << 20 {
                bytes += buffer.len();
                buffer.clear();
            }
        }
        spent.push(engine);
        bytes + buffer.len()
    });
    assert_eq!(
        direct_bytes, value_bytes,
        "the two writers must write as many bytes (the tests compare the bytes)"
    );

    #[allow(clippy::cast_precision_loss)]
    let megabytes = value_bytes as f64 / 1e6;
    println!("{path}: {count} events, {effects} effects ({megabytes:.1} MB of effects)");
    report("parse through Value (before)", general_time, count, effects);
    report("parse typed (parse_line)", parse_time, count, effects);
    report("apply (in memory)", apply_time, count, effects);
    report(
        "apply + effects via Value (before)",
        value_time,
        count,
        effects,
    );
    report(
        "apply + effects written directly",
        direct_time,
        count,
        effects,
    );
    // For bench/replay.sh: the in-memory engine's best wall and CPU seconds.
    println!(
        "in-memory apply: wall_s={:.4} cpu_s={:.4}",
        apply_time.wall.as_secs_f64(),
        apply_time.cpu.as_secs_f64()
    );
}
