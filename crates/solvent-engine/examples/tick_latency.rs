//! Price tick to liquidation effect (DESIGN.md 12: "price event to each liquidation effect, 1
//! million accounts: p99 < 10 ms (index update p99 < 1 ms)").
//!
//! Builds a population through ordinary events (`benches/support`: today's linear-only one by
//! default, or the mixed one of `support/mixed.rs` with options, portfolio-mode, inverse and
//! isolated accounts), then applies index updates of small random moves with an occasional
//! larger one, and records each update's processing time (`Engine::apply` alone; building the
//! event is not timed) in HDR histograms: all updates, small and large moves, and apart the
//! updates that produced liquidation effects (`liquidation`, `adl`, `deficit_beyond_fund`). The
//! engine is synchronous, so a liquidation effect is out when the update that caused it returns:
//! the latency from the price event to each liquidation effect is that update's time, and a
//! histogram weighted by liquidation effects gives it per effect. Each update with liquidation
//! effects is also printed with the minor page faults taken during it (a transparent huge
//! page's first touch can stall an update for milliseconds on a VM; see docs/benchmarks.md).
//!
//! Most accounts run 1.5-12x, far from any threshold; a small share (`hot`, default 0.1%) run
//! at 60-90x (BTC) or 30-45x (ETH), health about 2.2-3.3, a fraction of a percent from the
//! margin-call threshold 1.5: those are what a small move can take out of their safe band.
//!
//! Each update's re-examined accounts are counted by the engine (`Engine::evaluations`, the
//! prepared kernel's and the full report's evaluations); the accounts named in its effects are
//! printed beside them. Then BTCUSDT gets its first mark, at the index (its holders were valued
//! there, and banded on the mark with the index standing in where the contract is all they value
//! at the index: those whose band the mark crosses are examined, with the hedged holders that
//! kept it on the index), and as many BTCUSDT mark updates as index updates are timed the same
//! way.
//!
//! Usage: `tick_latency [accounts (1000000)] [index updates (4000)] [hot share (0.001)]
//! [large move min % (0.5)] [large move max % (1.0)] [population: linear | mixed |
//! l,i,o,p,s shares (linear)] [a large move every N updates (250)]`. Moves above the gap
//! between a hot account's liquidation and bankruptcy prices (about 0.6% at 90x) bankrupt
//! accounts and start auto-deleveraging, whose cost grows with the population. A mixed
//! population of 1 million accounts costs seconds per index update (its option, portfolio and
//! inverse accounts are examined at every update of what they hold): give it tens of updates.
//! Run it through `bench/engine.sh`, which builds in release and pins it to one core.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use solvent_core::instrument::{Style, Terms};
use solvent_core::money::Price;
use solvent_engine::effect::Effect;
use solvent_engine::event::{Event, IndexPrice, MarkPrice};
use support::mixed::{Shares, build};
use support::normal;

#[path = "../benches/support/mod.rs"]
mod support;

/// Starting index prices, in cents (the legs' start prices).
const BTC_START_CENTS: i64 = 6_000_000;
const ETH_START_CENTS: i64 = 300_000;

/// Accounts named in effects, and how many of each kind.
fn effect_accounts(effects: &[Effect], accounts: &mut BTreeSet<String>) -> [usize; 4] {
    let mut counts = [0; 4]; // state changes, margin calls, liquidation steps, rejections
    for effect in effects {
        match effect {
            Effect::StateChanged { account, .. } => {
                counts[0] += 1;
                accounts.insert(account.clone());
            }
            Effect::MarginCall { account, .. } => {
                counts[1] += 1;
                accounts.insert(account.clone());
            }
            Effect::Liquidation { account, .. } => {
                counts[2] += 1;
                accounts.insert(account.clone());
            }
            Effect::AccountUpdated { account, .. }
            | Effect::LiquidationDeferred { account, .. }
            | Effect::Adl { account, .. } => {
                accounts.insert(account.clone());
            }
            Effect::Rejected { .. } => counts[3] += 1,
            _ => {}
        }
    }
    counts
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

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_histogram(name: &str, h: &Histogram<u64>) {
    if h.is_empty() {
        return;
    }
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "{name:<22} n {:>6}  p50 {:>9.1} us  p99 {:>9.1} us  p99.9 {:>9.1} us  max {:>9.1} us  mean {:>8.1} us",
        h.len(),
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        h.mean() / 1e3
    );
}

/// A `perf record --control fifo:PATH` session sampling the large moves only: with
/// `SOLVENT_PERF_CONTROL=PATH` set, the run writes `enable` before each large move's
/// `Engine::apply` and `disable` after it, so a profile of a million accounts is not drowned in
/// their opening (`perf record -D -1 --control fifo:PATH ...` starts disabled).
struct Profiler(Option<std::fs::File>);

impl Profiler {
    fn from_env() -> std::io::Result<Self> {
        match std::env::var_os("SOLVENT_PERF_CONTROL") {
            Some(path) => Ok(Self(Some(
                std::fs::OpenOptions::new().write(true).open(path)?,
            ))),
            None => Ok(Self(None)),
        }
    }

    fn enable(&mut self) -> std::io::Result<()> {
        self.send(b"enable\n")
    }

    fn disable(&mut self) -> std::io::Result<()> {
        self.send(b"disable\n")
    }

    fn send(&mut self, command: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        match &mut self.0 {
            Some(fifo) => fifo.write_all(command),
            None => Ok(()),
        }
    }
}

/// The process's minor page faults so far (`/proc/self/stat`, field 10); 0 where it cannot be
/// read. A fault of a transparent huge page zeroes 2 MiB, which on a VM can take milliseconds:
/// counted per update, it tells such a stall from the engine's own work.
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let (_, fields) = stat.rsplit_once(')')?;
            fields.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let ticks: usize = args.next().map_or(Ok(4_000), |a| a.parse())?;
    let hot_share: f64 = args.next().map_or(Ok(0.001), |a| a.parse())?;
    let large_min_pct: f64 = args.next().map_or(Ok(0.5), |a| a.parse())?;
    let large_max_pct: f64 = args.next().map_or(Ok(1.0), |a| a.parse())?;
    let population: String = args.next().unwrap_or_else(|| "linear".to_owned());
    let large_every: usize = args.next().map_or(Ok(250), |a| a.parse())?;
    let shares = Shares::parse(&population)?;
    let seed = 20_260_101;
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 2);
    let mut prices = [
        (String::from("BTC"), BTC_START_CENTS),
        (String::from("ETH"), ETH_START_CENTS),
    ];

    // ---- setup: ordinary events, applied one by one ---------------------------------------------
    let setup_start = Instant::now();
    let built = build(accounts, shares, hot_share, seed);
    let (mut engine, mut stream) = (built.engine, built.stream);
    let setup = setup_start.elapsed();
    let (peak_setup, rss_setup) = memory_mib();
    println!(
        "accounts               {accounts} ({}, hot share {hot_share}, seed {seed})",
        shares.describe()
    );
    println!(
        "setup                  {:.1} s wall, {:.1} s in Engine::apply for {} events \
         ({:.1} us/event, rejected {:?})",
        setup.as_secs_f64(),
        built.setup_apply.as_secs_f64(),
        built.setup_events,
        micros(built.setup_apply) / built.setup_events.max(1) as f64,
        built.setup_rejected
    );
    println!(
        "memory after setup     VmRSS {rss_setup:.0} MiB, VmHWM {peak_setup:.0} MiB ({:.2} KiB/account)",
        rss_setup * 1024.0 / accounts as f64
    );

    // ---- index updates ----------------------------------------------------------------------------
    let bound_ns = 600_000_000_000;
    let mut all = Histogram::<u64>::new_with_bounds(1, bound_ns, 3)?;
    let mut small = Histogram::<u64>::new_with_bounds(1, bound_ns, 3)?;
    let mut large = Histogram::<u64>::new_with_bounds(1, bound_ns, 3)?;
    // Updates that produced liquidation effects, those that did not, and the latency of each
    // liquidation effect (its update's time, once per effect).
    let mut liquidating = Histogram::<u64>::new_with_bounds(1, bound_ns, 3)?;
    let mut quiet = Histogram::<u64>::new_with_bounds(1, bound_ns, 3)?;
    let mut per_effect = Histogram::<u64>::new_with_bounds(1, bound_ns, 3)?;
    let mut liquidating_updates = Vec::new();
    let mut records = Vec::with_capacity(ticks);
    let mut totals = [0usize; 4];
    let mut profiler = Profiler::from_env()?;
    engine.record_examined(true);
    for tick in 0..ticks {
        stream.ts_ms += 100;
        let which = rng.random_range(0..2);
        let is_large = large_every > 0 && tick % large_every == large_every - 1;
        let change = if is_large {
            let size =
                (large_min_pct + (large_max_pct - large_min_pct) * rng.random::<f64>()) / 100.0;
            if rng.random_bool(0.5) { size } else { -size }
        } else {
            0.0002 * normal(&mut rng)
        };
        let (underlying, price) = &mut prices[which];
        *price = ((*price as f64) * (1.0 + change)).round() as i64;
        let envelope = stream.next(Event::IndexPrice(IndexPrice {
            underlying: underlying.clone(),
            price: Price(Decimal::new(*price, 2)),
            source: None,
        }));
        let before = engine.evaluations();
        let scored_before = engine.adl_candidates_scored();
        let bounded_before = engine.adl_members_bounded();
        if is_large {
            profiler.enable()?;
        }
        let faults_before = minor_faults();
        let start = Instant::now();
        let effects = engine.apply(&envelope);
        let elapsed = start.elapsed();
        let faults = minor_faults().saturating_sub(faults_before);
        if is_large {
            profiler.disable()?;
        }
        let scored = engine.adl_candidates_scored() - scored_before;
        let bounded = engine.adl_members_bounded() - bounded_before;
        let examined = engine.evaluations().since(before);
        let examined_ids = engine.take_examined();
        let kinds = examined_kinds(&engine, &examined_ids);
        let ns = elapsed.as_nanos().max(1) as u64;
        all.record(ns)?;
        if is_large {
            large.record(ns)?
        } else {
            small.record(ns)?
        }
        let liquidation_effects = effects
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Effect::Liquidation { .. }
                        | Effect::Adl { .. }
                        | Effect::DeficitBeyondFund { .. }
                )
            })
            .count();
        if liquidation_effects > 0 {
            liquidating.record(ns)?;
            per_effect.record_n(ns, liquidation_effects as u64)?;
            liquidating_updates.push((
                tick,
                change,
                elapsed,
                liquidation_effects,
                bounded,
                scored,
                faults,
            ));
        } else {
            quiet.record(ns)?;
        }
        let mut named = BTreeSet::new();
        let counts = effect_accounts(&effects, &mut named);
        for (total, count) in totals.iter_mut().zip(counts) {
            *total += count;
        }
        records.push((
            underlying.clone(),
            change,
            is_large,
            elapsed,
            effects.len(),
            named.len(),
            examined,
            kinds,
        ));
    }
    engine.record_examined(false);

    // ---- BTCUSDT's first mark, at the index ---------------------------------------------------
    let btc_price = prices[0].1;
    let holders = engine
        .accounts()
        .values()
        .filter(|a| {
            a.positions
                .values()
                .any(|p| p.instrument.underlying == "BTC")
                || !engine
                    .ledger()
                    .balance(
                        &solvent_engine::ledger::LedgerAccount::Wallet(a.id.clone()),
                        "BTC",
                    )
                    .is_zero()
        })
        .count();
    stream.ts_ms += 100;
    let envelope = stream.next(Event::MarkPrice(MarkPrice {
        instrument: "BTCUSDT".to_owned(),
        price: Price(Decimal::new(btc_price, 2)),
    }));
    let before = engine.evaluations();
    let start = Instant::now();
    let mark_effects = engine.apply(&envelope);
    let mark_time = start.elapsed();
    let mark_examined = engine.evaluations().since(before);

    println!();
    println!(
        "index updates          {ticks}: small moves N(0, 0.02%), every {large_every}th a \
         {large_min_pct}-{large_max_pct}% move; timed Engine::apply only"
    );
    print_histogram("all updates", &all);
    print_histogram("small moves", &small);
    print_histogram("large moves", &large);
    print_histogram("without liquidation", &quiet);
    print_histogram("with liquidation", &liquidating);
    print_histogram("per liquidation effect", &per_effect);
    println!(
        "updates with liquidation effects (liquidation, adl, deficit_beyond_fund), one by one:"
    );
    for (tick, change, elapsed, count, bounded, scored, faults) in &liquidating_updates {
        println!(
            "  update {tick:>5} {:+.3}%  {:>10.1} us  liquidation effects {count:>5}  ADL bounded {bounded:>6}, scored {scored:>6}  page faults {faults:>5}",
            change * 100.0,
            micros(*elapsed)
        );
    }
    println!(
        "effects of the updates state changes {}, margin calls {}, liquidation steps {}, rejections {}",
        totals[0], totals[1], totals[2], totals[3]
    );
    let mut counts: Vec<u64> = records.iter().filter(|r| !r.2).map(|r| r.6).collect();
    counts.sort_unstable();
    let pick = |q: f64| {
        counts
            .get(((counts.len().saturating_sub(1)) as f64 * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "re-examined, small moves: p50 {}, p99 {}, max {} accounts per update",
        pick(0.5),
        pick(0.99),
        pick(1.0),
    );
    println!("large moves, one by one:");
    for (underlying, change, _, elapsed, effects, named, examined, kinds) in
        records.iter().filter(|r| r.2)
    {
        println!(
            "  {underlying} {:+.2}%  {:>10.1} us  effects {effects:>5}  accounts in effects {named:>5}  \
             re-examined {examined:>8}  ({})",
            change * 100.0,
            micros(*elapsed),
            kinds.describe(),
        );
    }
    println!();
    println!(
        "mark_price BTCUSDT     {:.1} ms for {holders} BTC holders ({:.2} us per holder; \
         the first mark, at the index: {mark_examined} examined), {} effects",
        mark_time.as_secs_f64() * 1e3,
        micros(mark_time) / holders.max(1) as f64,
        mark_effects.len()
    );

    // ---- later marks: BTCUSDT is banded on its mark now -------------------------------------------
    let mut marks = Histogram::<u64>::new_with_bounds(1, bound_ns, 3)?;
    let mut mark_totals = [0usize; 4];
    let mut basis = 0.0_f64;
    let mut named = BTreeSet::new();
    for _ in 0..ticks {
        stream.ts_ms += 100;
        // The index where it was left, times a basis walking N(0, 0.02%) a step.
        basis += 0.0002 * normal(&mut rng);
        let price = ((btc_price as f64) * (1.0 + basis)).round() as i64;
        let envelope = stream.next(Event::MarkPrice(MarkPrice {
            instrument: "BTCUSDT".to_owned(),
            price: Price(Decimal::new(price, 2)),
        }));
        let start = Instant::now();
        let effects = engine.apply(&envelope);
        marks.record(start.elapsed().as_nanos().max(1) as u64)?;
        for (total, count) in mark_totals
            .iter_mut()
            .zip(effect_accounts(&effects, &mut named))
        {
            *total += count;
        }
    }
    println!();
    println!(
        "mark updates           {ticks} of BTCUSDT after its first: basis moves N(0, 0.02%); \
         timed Engine::apply only"
    );
    print_histogram("later marks", &marks);
    println!(
        "effects of the marks   state changes {}, margin calls {}, liquidation steps {}, rejections {}",
        mark_totals[0], mark_totals[1], mark_totals[2], mark_totals[3]
    );
    let (peak, rss) = memory_mib();
    println!("memory at end          VmRSS {rss:.0} MiB, VmHWM {peak:.0} MiB");
    // Two builds given the same arguments must end in the same state.
    println!("state hash at end      {}", engine.state_hash());
    Ok(())
}

/// The accounts an update examined, by what they hold (an account counts under the first kind
/// it has, in the order of the fields).
#[derive(Debug, Default)]
struct ExaminedKinds {
    portfolio: usize,
    options: usize,
    inverse: usize,
    isolated: usize,
    linear_cross: usize,
}

impl ExaminedKinds {
    fn describe(&self) -> String {
        format!(
            "portfolio {}, options {}, inverse {}, isolated {}, linear cross {}",
            self.portfolio, self.options, self.inverse, self.isolated, self.linear_cross
        )
    }
}

fn examined_kinds(
    engine: &solvent_engine::Engine,
    examined: &[compact_str::CompactString],
) -> ExaminedKinds {
    let mut kinds = ExaminedKinds::default();
    for id in examined {
        let Some(account) = engine.accounts().get(id.as_str()) else {
            continue;
        };
        let positions = || account.positions.values();
        if account.mode == solvent_core::portfolio::MarginMode::Portfolio {
            kinds.portfolio += 1;
        } else if positions().any(|p| matches!(p.instrument.terms, Terms::Option { .. })) {
            kinds.options += 1;
        } else if positions().any(|p| p.instrument.style == Style::Inverse) {
            kinds.inverse += 1;
        } else if positions().any(|p| p.isolated) {
            kinds.isolated += 1;
        } else {
            kinds.linear_cross += 1;
        }
    }
    kinds
}
