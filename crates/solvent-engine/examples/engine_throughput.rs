//! Engine events / s on the product path (`Engine::apply`) with a mixed population, next to
//! today's linear-only population in the same run. DESIGN.md 12 asks at least 1 million events
//! / s on one core for "engine, in memory, population with options, portfolio, inverse and
//! linear accounts".
//!
//! For each population (`--populations linear,mixed`; shares of the mixed one with `--shares`,
//! see `benches/support/mixed.rs`): opens `--accounts` accounts through ordinary events, gives
//! the linear perpetuals and `BTC-PERPETUAL` their first mark (timed apart: a first mark
//! re-values every holder), then applies two pre-built streams to the same engine, one after
//! the other, timing `Engine::apply` alone:
//!
//! - `mixed`: 85% index updates, 5% mark updates, 1% vol surface updates, 5% fills, 4% deposits;
//! - `fill-heavy`: 25% index updates, 70% fills, 5% deposits.
//!
//! A stream stops after `--events` events or once `--seconds` of apply time are spent (a large
//! mixed population can take a second per index update), so its prefix is what is measured. It
//! prints events / s, and per event type (and, for fills and deposits, per account kind) the
//! count, mean and max time and share of the stream's time, with the effects and rejections.
//! With `--examined on` (off by default: recording costs a little time) it also prints, per
//! event type, which kinds of account its examinations went to, and how many of them the most
//! examined accounts took (`Engine::record_examined`).
//!
//! Usage: `engine_throughput [--accounts 10000] [--populations linear,mixed]
//! [--shares 60,15,10,10,5] [--events 200000] [--seconds 60] [--hot 0.001] [--seed 7]
//! [--streams mixed,fill-heavy] [--examined off]`.
//! Run it through `bench/engine.sh` (release, pinned to one core).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use compact_str::CompactString;

use solvent_engine::effect::Effect;
use solvent_engine::engine::Evaluations;
use solvent_engine::event::{Envelope, Event};
use support::LEGS;
use support::mixed::{Built, Kind, MARKED, Shares, StreamMix, Streamer, build, count_rejections};

#[path = "../benches/support/mod.rs"]
mod support;

/// Options of the run.
struct Options {
    accounts: usize,
    populations: Vec<String>,
    shares: Shares,
    events: usize,
    seconds: f64,
    hot_share: f64,
    seed: u64,
    streams: Vec<String>,
    examined: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        accounts: 10_000,
        populations: vec!["linear".to_owned(), "mixed".to_owned()],
        shares: Shares::MIXED,
        events: 200_000,
        seconds: 60.0,
        hot_share: 0.001,
        seed: 7,
        streams: vec!["mixed".to_owned(), "fill-heavy".to_owned()],
        examined: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--accounts" => options.accounts = value.parse().map_err(|e| bad(&e))?,
            "--populations" => {
                options.populations = value.split(',').map(str::to_owned).collect();
            }
            "--shares" => options.shares = Shares::parse(&value)?,
            "--events" => options.events = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => options.seconds = value.parse().map_err(|e| bad(&e))?,
            "--hot" => options.hot_share = value.parse().map_err(|e| bad(&e))?,
            "--seed" => options.seed = value.parse().map_err(|e| bad(&e))?,
            "--examined" => {
                options.examined = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--examined: {other} is neither on nor off")),
                }
            }
            "--streams" => {
                options.streams = value.split(',').map(str::to_owned).collect();
                if let Some(unknown) = options
                    .streams
                    .iter()
                    .find(|s| !["mixed", "fill-heavy"].contains(&s.as_str()))
                {
                    return Err(format!(
                        "--streams: unknown stream {unknown} (mixed or fill-heavy)"
                    ));
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

/// Peak and current resident memory, in MiB, from `/proc/self/status`.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Time spent on one class of events.
#[derive(Default)]
struct Tally {
    count: usize,
    total: Duration,
    max: Duration,
    /// Accounts evaluated through the prepared kernel and through the full report.
    prepared: u64,
    reported: u64,
}

impl Tally {
    fn add(&mut self, elapsed: Duration, before: Evaluations, after: Evaluations) {
        self.count += 1;
        self.total += elapsed;
        self.max = self.max.max(elapsed);
        self.prepared += after.prepared - before.prepared;
        self.reported += after.reported - before.reported;
    }
}

/// The class of an event for the per-type table: its type, and the account kind for fills and
/// deposits.
fn class(streamer: &Streamer<'_>, event: &Event) -> String {
    let kind = streamer
        .kind_of(event)
        .map_or(String::new(), |k| format!(" ({})", k.name()));
    let name = match event {
        Event::IndexPrice(e) if e.underlying == "BTC" => "index_price BTC",
        Event::IndexPrice(_) => "index_price ETH",
        Event::MarkPrice(_) => "mark_price",
        Event::VolSurface(_) => "vol_surface",
        Event::Fill(_) => "fill",
        Event::Deposit(_) => "deposit",
        _ => "other",
    };
    format!("{name}{kind}")
}

fn run_stream(built: &mut Built, name: &str, mix: StreamMix, options: &Options, seed: u64) {
    let mut streamer = Streamer::new(built, seed);
    // Built before timing (no parsing, no drawing inside the timed loop).
    let events: Vec<(Envelope, String)> = (0..options.events)
        .map(|_| {
            let envelope = streamer.next(mix);
            let class = class(&streamer, &envelope.event);
            (envelope, class)
        })
        .collect();
    let budget = Duration::from_secs_f64(options.seconds);
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Duration::ZERO;
    let (mut effects, mut liquidations) = (0usize, 0usize);
    let mut rejected = BTreeMap::new();
    let mut applied = 0usize;
    // Per event class: examinations by account kind; and per account, examinations overall.
    let mut by_kind: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut by_account: BTreeMap<CompactString, u64> = BTreeMap::new();
    built.engine.record_examined(options.examined);
    for (envelope, class) in &events {
        let before = built.engine.evaluations();
        let start = Instant::now();
        let out = built.engine.apply(envelope);
        let elapsed = start.elapsed();
        total += elapsed;
        applied += 1;
        tallies
            .entry(class.clone())
            .or_default()
            .add(elapsed, before, built.engine.evaluations());
        for id in built.engine.take_examined() {
            let kind = account_kind(built, &id);
            *by_kind
                .entry(class.clone())
                .or_default()
                .entry(kind)
                .or_default() += 1;
            *by_account.entry(id).or_default() += 1;
        }
        effects += out.len();
        liquidations += out
            .iter()
            .filter(|e| matches!(e, Effect::Liquidation { .. }))
            .count();
        count_rejections(&out, &mut rejected);
        if total >= budget {
            break;
        }
    }
    built.engine.record_examined(false);
    // The stream has moved the engine on: the next stream continues from it.
    if let Some((last, _)) = events.get(applied.saturating_sub(1)) {
        built.stream.seq = last.seq;
        built.stream.ts_ms = last.ts.as_millisecond();
    }
    println!(
        "  stream {name:<11} {}: {applied} of {} events in {:.3} s of apply: {:.0} events/s \
         ({:.2} us/event); {effects} effects, {liquidations} liquidations, rejected {rejected:?}",
        mix.describe(),
        events.len(),
        total.as_secs_f64(),
        applied as f64 / total.as_secs_f64().max(1e-12),
        total.as_secs_f64() * 1e6 / applied.max(1) as f64,
    );
    println!(
        "    {:<28} {:>8} {:>11} {:>11} {:>7} {:>14} {:>12}",
        "event (account kind)",
        "count",
        "mean us",
        "max us",
        "time %",
        "examined/event",
        "full report"
    );
    for (class, tally) in &tallies {
        let examined = tally.prepared + tally.reported;
        println!(
            "    {class:<28} {:>8} {:>11.2} {:>11.1} {:>6.1}% {:>14.2} {:>11.0}%",
            tally.count,
            tally.total.as_secs_f64() * 1e6 / tally.count.max(1) as f64,
            tally.max.as_secs_f64() * 1e6,
            100.0 * tally.total.as_secs_f64() / total.as_secs_f64().max(1e-12),
            examined as f64 / tally.count.max(1) as f64,
            100.0 * tally.reported as f64 / examined.max(1) as f64,
        );
    }
    if options.examined {
        print_examined(&by_kind, &by_account);
    }
}

/// The kind of account `id` (`acct` and its index in `built.opened`), `hot` when opened at
/// high leverage.
fn account_kind(built: &Built, id: &str) -> String {
    id.trim_start_matches("acct")
        .parse::<usize>()
        .ok()
        .and_then(|i| built.opened.get(i))
        .map_or_else(
            || "other".to_owned(),
            |o| format!("{}{}", o.kind.name(), if o.hot { " (hot)" } else { "" }),
        )
}

/// Where the stream's examinations went: per event class, by account kind; then how many
/// distinct accounts took them and the share of the twenty most examined.
fn print_examined(
    by_kind: &BTreeMap<String, BTreeMap<String, u64>>,
    by_account: &BTreeMap<CompactString, u64>,
) {
    println!("    examinations by account kind:");
    for (class, kinds) in by_kind {
        let line: Vec<String> = kinds
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        println!("      {class:<26} {}", line.join(", "));
    }
    let mut counts: Vec<u64> = by_account.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = counts.iter().sum();
    let top: u64 = counts.iter().take(20).sum();
    println!(
        "    {total} examinations of {} distinct accounts; the 20 most examined took {:.1}%",
        counts.len(),
        100.0 * top as f64 / total.max(1) as f64
    );
}

/// Accounts of each kind holding something on each underlying.
fn holders_by_kind(built: &Built) -> BTreeMap<(Kind, usize), usize> {
    let mut counts = BTreeMap::new();
    for opened in &built.opened {
        for underlying in 0..LEGS.len() {
            if opened.holds.iter().any(|h| h.underlying == underlying) {
                *counts.entry((opened.kind, underlying)).or_default() += 1;
            }
        }
    }
    counts
}

fn population(name: &str, shares: Shares, options: &Options) {
    println!(
        "population {name}: {} accounts, {}, hot share {}, seed {}",
        options.accounts,
        shares.describe(),
        options.hot_share,
        options.seed
    );
    let started = Instant::now();
    let mut built = build(options.accounts, shares, options.hot_share, options.seed);
    let (peak, rss) = memory_mib();
    println!(
        "  setup {:.1} s wall, {:.1} s in Engine::apply for {} events ({:.1} us/event); \
         rejected {:?}; VmRSS {rss:.0} MiB, VmHWM {peak:.0} MiB",
        started.elapsed().as_secs_f64(),
        built.setup_apply.as_secs_f64(),
        built.setup_events,
        built.setup_apply.as_secs_f64() * 1e6 / built.setup_events.max(1) as f64,
        built.setup_rejected
    );
    let counts = holders_by_kind(&built);
    let line: Vec<String> = Kind::ALL
        .iter()
        .map(|kind| {
            format!(
                "{} {} (BTC {}, ETH {})",
                kind.name(),
                built.opened.iter().filter(|o| o.kind == *kind).count(),
                counts.get(&(*kind, 0)).copied().unwrap_or(0),
                counts.get(&(*kind, 1)).copied().unwrap_or(0)
            )
        })
        .collect();
    println!(
        "  accounts by kind (holding BTC / ETH): {}",
        line.join(", ")
    );
    // First marks: every holder re-valued.
    for (instrument, underlying) in MARKED {
        let holders = built
            .opened
            .iter()
            .filter(|o| o.holds.iter().any(|h| h.name == instrument))
            .count();
        let envelope = built
            .stream
            .next(support::mixed::mark(instrument, LEGS[underlying].price));
        let start = Instant::now();
        let effects = built.engine.apply(&envelope);
        let elapsed = start.elapsed();
        println!(
            "  first mark_price {instrument:<19} {:>10.2} ms for {holders:>7} holders ({:.2} us/holder), {} effects",
            elapsed.as_secs_f64() * 1e3,
            elapsed.as_secs_f64() * 1e6 / holders.max(1) as f64,
            effects.len()
        );
    }
    // Each stream keeps its own seed whichever others run, so a stream run alone sees the events
    // it sees in the full run (the engine state it starts from differs when the other ran first).
    if options.streams.iter().any(|s| s == "mixed") {
        run_stream(&mut built, "mixed", StreamMix::MIXED, options, 101);
    }
    if options.streams.iter().any(|s| s == "fill-heavy") {
        run_stream(
            &mut built,
            "fill-heavy",
            StreamMix::FILL_HEAVY,
            options,
            102,
        );
    }
    let (peak, rss) = memory_mib();
    println!("  memory at end VmRSS {rss:.0} MiB, VmHWM {peak:.0} MiB");
}

fn main() -> Result<(), String> {
    let options = options()?;
    for name in &options.populations {
        let shares = match name.as_str() {
            "linear" => Shares::LINEAR_ONLY,
            "mixed" => options.shares,
            other => return Err(format!("unknown population {other} (linear or mixed)")),
        };
        population(name, shares, &options);
        println!();
    }
    Ok(())
}
