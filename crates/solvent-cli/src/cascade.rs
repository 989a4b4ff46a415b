//! `solvent population` and `solvent cascade` (DESIGN.md 2, 8.4).
//!
//! - `solvent population [--accounts N] [--seed S] [--out ACCOUNTS.jsonl]` draws a seeded,
//!   calibrated population of leveraged accounts (`solvent_engine::population`) and writes it as
//!   an `EVENTS.jsonl` stream.
//! - `solvent cascade ACCOUNTS.jsonl --shock BTC:-0.1[,ETH:-0.12] [--impact 0.1]
//!   [--adv-usd BTC:...,ETH:...] [--max-rounds 50] [--plot FILE.svg] [--json] [--venue ...]`
//!   replays it and runs the liquidation cascade (`solvent_engine::cascade`): rounds, volume
//!   liquidated, insurance fund drawdown, ADL volume, and an SVG of the price path and volume.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use solvent_core::Decimal;
use solvent_core::venue::Venue;
use solvent_engine::cascade::{self, CascadeParams, CascadeReport};
use solvent_engine::config::EngineConfig;
use solvent_engine::event::{Envelope, write_line};
use solvent_engine::population::{self, PopulationParams};

use crate::display::{Cell, Column, Grid, Kind, Layout};
use crate::progress::{Feedback, count};
use crate::render::grouped;
use crate::replay::{PendingFile, QUEUE_BATCHES, read_events};

/// The arguments of `solvent population`.
#[derive(Args)]
pub struct PopulationArgs {
    /// Number of accounts.
    #[arg(long, default_value_t = 2_000)]
    accounts: usize,
    /// Seed of the generator (the same seed gives the same file).
    #[arg(long, default_value_t = population::DEFAULT_SEED)]
    seed: u64,
    /// The population's expected open interest per underlying, as a multiple of its median daily
    /// traded value (2025, shared price history).
    #[arg(long, default_value_t = 1.0)]
    oi_to_adv: f64,
    /// Write the events here (stdout when absent).
    #[arg(long, value_name = "ACCOUNTS.jsonl")]
    out: Option<PathBuf>,
    /// Print the population's summary per underlying as CSV (RFC 4180: positions, longs, open
    /// interest in USD, exact; the index price) in place of the lines (with --out: without it
    /// stdout is the events).
    #[arg(long, requires = "out")]
    csv: bool,
    /// The venue: a shipped one by name (`solvent venue list`) or a VENUE.toml file; the built-in default when absent.
    #[arg(long)]
    venue: Option<PathBuf>,
}

/// The arguments of `solvent cascade`.
#[derive(Args)]
pub struct CascadeArgs {
    /// The population: an event stream (ACCOUNTS.jsonl, as `solvent population` writes).
    accounts: PathBuf,
    /// Round-0 index moves, e.g. `BTC:-0.1,ETH:-12%`: fractions (magnitude below 1) or
    /// percentages; a bare `BTC:10` is refused as ambiguous.
    #[arg(long, allow_hyphen_values = true)]
    shock: String,
    /// Square-root impact coefficient: a round's net liquidation flow V moves the price by
    /// impact x sqrt(V / ADV).
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    impact: f64,
    /// `cumulative`: V is the net flow since the shock, applied to the shocked price (the
    /// square-root law of one metaorder); `per-round`: V is the last round's flow, applied to
    /// the last round's price.
    #[arg(long, value_enum, default_value_t = ImpactArg::Cumulative)]
    impact_model: ImpactArg,
    /// Daily traded value per underlying, USD, e.g. `BTC:1808517626,ETH:1569063906` (default:
    /// the 2025 medians of the shared Binance history; given underlyings replace those).
    #[arg(long, value_name = "NAME:USD,...")]
    adv_usd: Option<String>,
    /// Rounds at most (the shock round included).
    #[arg(long, default_value_t = 50)]
    max_rounds: usize,
    /// Write an SVG of the price path and the liquidated volume per round.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Print one table as CSV (RFC 4180: a header row naming each column's unit, then the
    /// exact figures, unrounded): rounds or totals.
    #[arg(long, value_name = "TABLE", value_enum, conflicts_with = "json")]
    csv: Option<CascadeTable>,
    /// The venue: a shipped one by name (`solvent venue list`) or a VENUE.toml file; the built-in default when absent.
    #[arg(long)]
    venue: Option<PathBuf>,
}

/// Which table of `solvent cascade` `--csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CascadeTable {
    /// Each round: prices, accounts liquidated, volumes, insurance fund.
    Rounds,
    /// The cascade's totals, one figure a row.
    Totals,
}

/// `--impact-model`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ImpactArg {
    Cumulative,
    PerRound,
}

fn venue(path: Option<&PathBuf>) -> Result<Venue> {
    crate::venues::load(path.map(PathBuf::as_path))
}

/// Runs `solvent population`: draws the accounts one at a time and writes each one's events as
/// it is drawn (a million accounts never sit in memory), with a bar counting accounts.
///
/// # Errors
/// Bad parameters, a venue without the population's instruments, an unwritable file. With
/// `--out`, the file is written beside its target and renamed over it at the end: a failure
/// leaves nothing behind. On stdout the lines go out as they are drawn.
pub fn population(args: &PopulationArgs, feedback: Feedback) -> Result<String> {
    let venue = venue(args.venue.as_ref())?;
    let params = PopulationParams {
        // The venue's own contracts on BTC and ETH (the default venue's are the defaults).
        market: population::market_for(&venue)?,
        accounts: args.accounts,
        seed: args.seed,
        open_interest_adv_ratio: args.oi_to_adv,
        ..PopulationParams::default()
    };
    let flag_error = |e| match e {
        population::PopulationError::InvalidParameter { name, problem } => {
            anyhow!("--{}: {problem}", flag_of(name))
        }
        other => anyhow!(other),
    };
    let draw = population::Draw::new(&venue, &params).map_err(flag_error)?;
    let mut sink = match &args.out {
        Some(path) => Sink::File(PendingFile::create(path)?),
        None => Sink::Stdout(std::io::stdout().lock()),
    };
    let progress = feedback.bar(
        args.accounts as u64,
        "population {wide_bar} {pos}/{len} accounts [{elapsed}<{eta}]",
    );
    let mut buffer: Vec<u8> = Vec::with_capacity(2 * WRITE_BUFFER_BYTES);
    let mut summary = DrawSummary::default();
    write_events(&mut buffer, draw.opening());
    summary.events += draw.opening().len();
    for (index, drawn) in draw.enumerate() {
        let (account, events) = drawn.map_err(flag_error)?;
        write_events(&mut buffer, &events);
        summary.add(&account, events.len());
        if buffer.len() >= WRITE_BUFFER_BYTES {
            sink.write(&buffer)?;
            buffer.clear();
        }
        // A draw takes about a microsecond: the bar moves once per thousand accounts.
        if index % 1024 == 0 {
            progress.set_position(index as u64);
        }
    }
    sink.write(&buffer)?;
    progress.finish_and_clear();
    let Sink::File(file) = sink else {
        return Ok(String::new());
    };
    file.commit()?;
    let path = args
        .out
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    if args.csv {
        let mut grid = Grid::new(vec![
            Column::new("underlying", Kind::Label),
            Column::new("positions", Kind::Number),
            Column::new("longs", Kind::Number),
            Column::new("open interest (USD)", Kind::Number),
            Column::new("index (USD)", Kind::Number),
        ]);
        for market in &params.market {
            let tally = summary
                .by_underlying
                .get(&market.underlying)
                .cloned()
                .unwrap_or_default();
            grid.row(vec![
                market.underlying.to_string(),
                tally.positions.to_string(),
                tally.longs.to_string(),
                tally.open_interest_usd.normalize().to_string(),
                market.price.to_string(),
            ]);
        }
        return Ok(grid.csv()?);
    }
    let mut text = format!(
        "wrote {} events for {} accounts (seed {}) to {path}\n",
        summary.events, summary.accounts, args.seed,
    );
    for market in &params.market {
        let tally = summary
            .by_underlying
            .get(&market.underlying)
            .cloned()
            .unwrap_or_default();
        text.push_str(&format!(
            "  {}: {} positions ({} long), open interest {} USD at {}\n",
            market.underlying,
            tally.positions,
            tally.longs,
            grouped(&tally.open_interest_usd.round_dp(0).to_string()),
            market.price
        ));
    }
    Ok(text)
}

/// Effects and events are handed to the output once this many bytes are buffered.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

fn write_events(buffer: &mut Vec<u8>, events: &[Envelope]) {
    for event in events {
        write_line(event, buffer);
    }
}

/// Where `solvent population` writes.
enum Sink {
    File(PendingFile),
    Stdout(std::io::StdoutLock<'static>),
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Self::File(file) => file.write(bytes),
            Self::Stdout(out) => out.write_all(bytes).context("stdout: cannot write"),
        }
    }
}

/// What the population summary reports, gathered as the accounts are drawn.
#[derive(Default)]
struct DrawSummary {
    events: usize,
    accounts: usize,
    by_underlying: BTreeMap<String, UnderlyingTally>,
}

/// Positions on one underlying.
#[derive(Clone, Default)]
struct UnderlyingTally {
    positions: usize,
    longs: usize,
    open_interest_usd: Decimal,
}

impl DrawSummary {
    fn add(&mut self, account: &population::AccountSpec, events: usize) {
        self.accounts += 1;
        self.events += events;
        for leg in &account.legs {
            let tally = self
                .by_underlying
                .entry(leg.underlying.clone())
                .or_default();
            tally.positions += 1;
            if leg.size > Decimal::ZERO {
                tally.longs += 1;
            }
            tally.open_interest_usd += leg.notional_usd;
        }
    }
}

fn flag_of(name: &str) -> &str {
    match name {
        "open_interest_adv_ratio" => "oi-to-adv",
        other => other,
    }
}

/// Runs `solvent cascade`: reads and replays the population as it parses it (a bar over the
/// file's bytes), then plays the rounds (a spinner naming the round and what it liquidated).
///
/// # Errors
/// An unreadable or malformed population (naming file, line and field), bad `--shock` or
/// `--adv-usd` text, an unwritable plot, or a cascade the engine cannot run.
pub fn run(args: &CascadeArgs, feedback: Feedback) -> Result<String> {
    let shocks = cascade::parse_moves(&args.shock).map_err(|p| anyhow!("--shock: {p}"))?;
    let mut params = CascadeParams {
        shocks,
        impact: args.impact,
        impact_model: match args.impact_model {
            ImpactArg::Cumulative => cascade::ImpactModel::Cumulative,
            ImpactArg::PerRound => cascade::ImpactModel::PerRound,
        },
        max_rounds: args.max_rounds,
        ..CascadeParams::default()
    };
    if let Some(text) = &args.adv_usd {
        let given = cascade::parse_amounts(text).map_err(|p| anyhow!("--adv-usd: {p}"))?;
        params.adv_usd.extend(given);
    }
    let origin = args.accounts.display().to_string();
    let cascade_error = |e| match e {
        cascade::CascadeError::InvalidParameter { name, problem } => {
            anyhow!("--{}: {problem}", name.replace('_', "-"))
        }
        cascade::CascadeError::MissingIndex(name) => {
            anyhow!("--shock: {origin} sets no {name} index price")
        }
        other => anyhow!("{origin}: {other}"),
    };
    // Parameters first: a bad flag is refused before a large file is read.
    params.check().map_err(cascade_error)?;
    let venue = venue(args.venue.as_ref())?;
    let venue_name = venue.name.clone();
    let file =
        File::open(&args.accounts).with_context(|| format!("{origin}: cannot read the file"))?;
    let size_bytes = file.metadata().map_or(0, |m| m.len());
    let mut replay = cascade::Replay::new(venue, EngineConfig::default());
    let progress = feedback.bar(
        size_bytes,
        "population {wide_bar} {percent:>3}% {msg} [{elapsed}<{eta}]",
    );
    // One thread reads and parses, this one applies (the reader of `solvent replay`).
    std::thread::scope(|scope| {
        let (batches_in, batches) = sync_channel(QUEUE_BATCHES);
        let origin = origin.as_str();
        scope.spawn(move || read_events(origin, file, &batches_in));
        for batch in batches {
            let batch = batch?;
            for event in &batch.events {
                replay.apply(event);
            }
            progress.set_position(batch.bytes_read);
            progress.set_message(format!("{} accounts", count(replay.accounts())));
        }
        Ok::<(), anyhow::Error>(())
    })?;
    progress.finish_and_clear();
    let rounds = feedback.spinner("cascade {spinner} {msg} [{elapsed}]");
    rounds.set_message("round 0: the shock");
    let shocked = replay
        .shock(&params, |round| {
            rounds.set_message(format!(
                "round {} liquidated {} accounts; round {} next",
                round.round,
                count(round.accounts_liquidated),
                round.round + 1
            ));
        })
        .map_err(cascade_error)?;
    rounds.finish_and_clear();
    // The process ends once the report is printed: freeing the engine's millions of small
    // allocations one by one would only delay the exit (about 2 s at 1,000,000 accounts).
    std::mem::forget(shocked.engine);
    let report = shocked.report;
    if let Some(path) = &args.plot {
        let svg =
            crate::plot::cascade_svg(&plot_title(&report, &venue_name), &plot_rounds(&report))?;
        fs::write(path, svg)
            .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    }
    match (args.csv, args.json) {
        (Some(CascadeTable::Rounds), _) => Ok(rounds_grid(&report).csv()?),
        (Some(CascadeTable::Totals), _) => Ok(totals_grid(&report).csv()?),
        (None, true) => Ok(serde_json::to_string_pretty(&report)? + "\n"),
        (None, false) => Ok(render(&report)),
    }
}

/// The rounds: each underlying's price (USD), the accounts liquidated, the volumes and the
/// insurance fund after the round.
fn rounds_grid(report: &CascadeReport) -> Grid {
    let names: Vec<&String> = report.totals.start_prices.keys().collect();
    let mut columns = vec![Column::new("round", Kind::Number)];
    columns.extend(names.iter().map(|n| {
        Column::new(format!("{n} price"), Kind::Number).csv_header(format!("{n} price (USD)"))
    }));
    columns.extend([
        Column::new("accounts liquidated", Kind::Number),
        Column::new("volume (USD)", Kind::Number),
        Column::new("ADL (USD)", Kind::Number),
        Column::new("insurance fund (USD)", Kind::Number),
    ]);
    let mut rounds = Grid::new(columns);
    for round in &report.rounds {
        let mut row = vec![Cell::text(round.round.to_string())];
        row.extend(names.iter().map(|n| {
            round.prices.get(*n).map_or_else(
                || Cell::figure("-", ""),
                |p| Cell::decimal(grouped(&p.round_dp(2).to_string()), *p),
            )
        }));
        row.push(Cell::text(round.accounts_liquidated.to_string()));
        row.push(Cell::decimal(usd(round.volume_usd), round.volume_usd));
        row.push(Cell::decimal(
            usd(round.adl_volume_usd),
            round.adl_volume_usd,
        ));
        row.push(Cell::decimal(
            grouped(&round.insurance_fund_usd.round_dp(2).to_string()),
            round.insurance_fund_usd,
        ));
        rounds.cells(row);
    }
    rounds
}

/// The cascade's totals, one figure a row: rounded in the table, exact in CSV.
fn totals_grid(report: &CascadeReport) -> Grid {
    let totals = &report.totals;
    let mut grid = Grid::new(vec![
        Column::new("figure", Kind::Label),
        Column::new("value", Kind::Number),
    ]);
    let stopped = match totals.stopped {
        cascade::StopReason::NothingLiquidated => "a round liquidated nothing",
        cascade::StopReason::MaxRounds => "--max-rounds reached",
    };
    let exact = |label: String, value: Decimal, decimals: u32| {
        vec![
            Cell::text(label),
            Cell::decimal(grouped(&value.round_dp(decimals).to_string()), value),
        ]
    };
    let count = |label: &str, value: usize| {
        vec![
            Cell::text(label),
            Cell::figure(grouped(&value.to_string()), value.to_string()),
        ]
    };
    grid.cells(count("rounds", totals.rounds));
    grid.row(vec!["stopped because".to_owned(), stopped.to_owned()]);
    grid.cells(count("accounts", report.accounts));
    grid.cells(count("accounts liquidated", totals.accounts_liquidated));
    for (label, value, decimals) in [
        ("volume liquidated (USD)", totals.volume_usd, 0),
        ("ADL volume (USD)", totals.adl_volume_usd, 0),
        (
            "insurance fund drawdown (USD)",
            totals.insurance_fund_drawdown_usd,
            2,
        ),
        (
            "insurance fund needed to avoid ADL (USD)",
            totals.insurance_fund_needed_usd,
            0,
        ),
        ("deficits left as debt (USD)", totals.account_debt_usd, 0),
    ] {
        grid.cells(exact(label.to_owned(), value, decimals));
    }
    for (name, price) in &totals.final_prices {
        grid.cells(exact(format!("{name} final price (USD)"), *price, 2));
    }
    for (name, change) in &totals.price_change {
        grid.cells(vec![
            // Shown as a percentage, written as a fraction: the label says which.
            Cell::figure(
                format!("{name} price change"),
                format!("{name} price change (fraction)"),
            ),
            Cell::float(format!("{:+.2}%", change * 100.0), Some(*change)),
        ]);
    }
    grid
}

/// The cascade plot's title: the population, the venue and the shock.
fn plot_title(report: &CascadeReport, venue: &str) -> String {
    let shocks: Vec<String> = report
        .params
        .shocks
        .iter()
        .map(|(name, shock)| format!("{name} {}%", (shock * Decimal::ONE_HUNDRED).normalize()))
        .collect();
    format!(
        "Liquidation cascade: {} accounts on {venue}, shock {}",
        report.accounts,
        shocks.join(", ")
    )
}

fn number(value: Decimal) -> f64 {
    value.to_string().parse().unwrap_or(f64::NAN)
}

fn plot_rounds(report: &CascadeReport) -> Vec<crate::plot::CascadeRound> {
    report
        .rounds
        .iter()
        .map(|round| crate::plot::CascadeRound {
            round: round.round,
            price_change: round
                .prices
                .iter()
                .filter_map(|(name, price)| {
                    let start = report.totals.start_prices.get(name)?;
                    Some((
                        name.clone(),
                        (number(*price) / number(*start) - 1.0) * 100.0,
                    ))
                })
                .collect(),
            volume_usd: number(round.volume_usd),
            adl_volume_usd: number(round.adl_volume_usd),
        })
        .collect()
}

fn usd(value: Decimal) -> String {
    grouped(&value.round_dp(0).to_string())
}

fn render(report: &CascadeReport) -> String {
    let rounds = rounds_grid(report).render(Layout::Wide);
    let summary = totals_grid(report).render(Layout::Wide);
    let mut out = format!("{rounds}\n{summary}\n");
    if report.population_rejected > 0 {
        out.push_str(&format!(
            "note: the engine refused {} of the population's {} events\n",
            report.population_rejected, report.population_events
        ));
    }
    out
}
