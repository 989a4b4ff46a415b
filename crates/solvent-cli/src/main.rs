//! The `solvent` command-line tool.
//!
//! Raw flags are turned into validated, ready-built objects (venue, portfolio, market) before any
//! work is done; every failure is reported on stderr with exit code 2 and nothing on stdout.

mod cascade;
mod cluster;
mod display;
mod gateway;
mod journal;
mod model_backtest;
mod plot;
mod progress;
mod render;
mod replay;
mod scaled;
mod serve;
mod simm;
mod venue_view;
mod venues;

/// The service's threads allocate on one thread and free on another (effects rendered by the
/// engine thread are dropped by the commit thread and the HTTP workers), which glibc's allocator
/// serves through its arenas' locks and consolidation: mimalloc's per-thread heaps with
/// deferred cross-thread frees took that cost off the engine's thread (docs/benchmarks.md,
/// "Service").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::shock::{Shock, read_shocks};
use solvent_core::venue::Venue;
use solvent_risk::checks;
use solvent_risk::history;
use solvent_risk::valuation::HistoricalScenarios;
use solvent_risk::whatif::{Trade, what_if};
use solvent_risk::{MarketView, RiskError};

#[derive(Parser)]
#[command(
    name = "solvent",
    version,
    about = "Real-time margin and collateral allocation for crypto derivatives"
)]
struct Cli {
    /// No progress bars or notes on stderr (errors and warnings still print; stdout is the
    /// same). Bars are drawn only when stderr is a terminal anyway.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The full margin report of one account: equity, requirements, health, per-position detail.
    Margin(MarginArgs),
    /// The report before and after trades, and whether the venue would accept them.
    Whatif(WhatIfArgs),
    /// P&L, equity and margin under shocks; reverse stress; a plot of P&L against the move.
    Stress(StressArgs),
    /// Excess, withdrawable, the buffer and the recommended reallocation to isolated positions.
    Allocate(AllocateArgs),
    /// Backtests one-day filtered-historical VaR of the account's exposure over a price history
    /// and reports Kupiec's test; with `--model`, measures margin models (the static grid,
    /// EWMA- and GARCH-scaled ranges) against the realised moves of one coin, or, given the
    /// account, against its book's realised P&L (options revalued on each day's grid).
    Backtest(BacktestArgs),
    /// The volatility-scaled ranges of the venue's underlyings from a price history, as
    /// `scenario_range` events (EVENTS.jsonl lines) for `replay` and `serve`.
    Forecast(scaled::ForecastArgs),
    /// Replays an event stream (EVENTS.jsonl) through the engine: effects to a file, a summary
    /// of effects, balances and the state hash.
    Replay(replay::ReplayArgs),
    /// Draws a seeded population of leveraged accounts as an event stream (ACCOUNTS.jsonl).
    Population(cascade::PopulationArgs),
    /// Liquidation cascade across a population: shock, liquidations, square-root price impact,
    /// repeated until nothing more is liquidated.
    Cascade(cascade::CascadeArgs),
    /// The operator's tools for a data directory: verify, export, replay, import.
    Journal(journal::JournalArgs),
    /// The service: HTTP API, WebSocket stream, durable journal (`--demo`: a live market and
    /// 10,000 accounts in a temporary directory).
    Serve(serve::ServeArgs),
    /// API keys of a data directory: add (prints the secret once), list, revoke.
    Keys(serve::KeysArgs),
    /// Solvent over NATS JetStream: run a shard, publish events, route accounts.
    Cluster(cluster::ClusterArgs),
    /// ISDA SIMM per netting set from a CRIF file, broken down by product class, risk class and
    /// margin type.
    Simm(simm::SimmArgs),
    /// The shipped venues (`--venue NAME` takes any of them; a path takes a file).
    Venue(VenueArgs),
    /// Shell completions for bash, zsh, fish, elvish or PowerShell, generated from the parser
    /// (`solvent completions bash > /etc/bash_completion.d/solvent`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The man page (roff), generated from the parser (`solvent man > solvent.1`).
    Man,
}

/// The arguments of `solvent venue`.
#[derive(Args)]
struct VenueArgs {
    #[command(subcommand)]
    command: VenueCommand,
}

#[derive(Subcommand)]
enum VenueCommand {
    /// Names the venues built into the binary.
    List {
        /// As CSV (RFC 4180): the name `--venue` takes and the venue's own name.
        #[arg(long)]
        csv: bool,
    },
    /// Prints a venue's rules as the venue's own pages lay them out: a table per margin rule
    /// (tier, position value range, maximum leverage, maintenance rate, maintenance amount),
    /// collateral haircuts, contracts and the sources the file cites.
    Show {
        /// A shipped venue by name (`solvent venue list`) or a VENUE.toml file.
        venue: PathBuf,
        /// Only this contract: its terms and its table (a listed name, or a Deribit-style name
        /// of one of the venue's series).
        instrument: Option<String>,
        /// Print one table as CSV (RFC 4180, rates as fractions, bounds exact): tiers (every
        /// tiered rule's, or the contract's) or collateral.
        #[arg(long, value_name = "TABLE", value_enum)]
        csv: Option<venue_view::VenueTable>,
    },
    /// Validates a venue file: every key the reader checks, then the tables (tiers that do not
    /// start where the previous ended, deductions that do not follow from the rates,
    /// maintenance rates that fall, leverage that rises, collateral ratios that rise), each
    /// error naming the key. Exit 0 when valid, 2 with the errors otherwise.
    Check {
        /// The venue file (or a shipped venue's name).
        file: PathBuf,
    },
}

#[derive(Args)]
struct BacktestArgs {
    /// The account (PORTFOLIO.json): spot, perpetuals, futures and options (valued on each
    /// day's DVOL with the market's smile shape). With `--model`, its book on each underlying
    /// it holds is run through each model's grid day by day (without it, `--model` tests one
    /// coin of each `--underlying`).
    #[arg(required_unless_present = "model")]
    portfolio: Option<PathBuf>,
    /// Margin models to measure (comma-separated): `static` (the venue's grid, the baseline),
    /// `ewma`, `garch` (ranges scaled with the forecast; the venue's
    /// `[portfolio_margin.vol_scaled.UNDERLYING]` or Solvent's defaults).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "MODEL")]
    model: Vec<model_backtest::ModelName>,
    /// Anti-procyclicality controls of the scaled models (comma-separated; the venue's, or a 25%
    /// buffer, when absent).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        requires = "model",
        value_name = "CONTROL"
    )]
    control: Vec<model_backtest::ControlName>,
    /// Underlyings of `--model` without a portfolio (comma-separated); with one, those of its
    /// positions.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "BTC,ETH",
        requires = "model"
    )]
    underlying: Vec<String>,
    /// Margin period of `--model` in days (the venue's, else 1).
    #[arg(long, requires = "model")]
    period_days: Option<u32>,
    /// Draw the margin of each model against the realised moves over time (`--model`).
    #[arg(long, value_name = "FILE.svg", requires = "model")]
    plot: Option<PathBuf>,
    /// Daily price history (the layout of ../shared/data/prices).
    #[arg(long, value_name = "DIR")]
    history: PathBuf,
    /// Market snapshot (MARKET.json) whose smiles give the shape of the options' surface (its
    /// level is each day's DVOL); overrides the one inside the portfolio.
    #[arg(long)]
    market: Option<PathBuf>,
    /// The history's last row is a complete day (by default it is dropped).
    #[arg(long)]
    history_complete: bool,
    /// VaR confidence level.
    #[arg(long, default_value_t = 0.99)]
    level: f64,
    /// Use only the most recent N scenarios for each day's VaR (all available when absent).
    #[arg(long)]
    window: Option<usize>,
    /// The venue: a shipped one by name (`solvent venue list`) or a VENUE.toml file; the built-in default when absent.
    #[arg(long)]
    venue: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Print one table as CSV (RFC 4180, exact figures): summary (Kupiec's test; with
    /// `--model`, one row per underlying and model) or exceptions (each day whose loss went
    /// beyond VaR; with `--model`, each move beyond the margin).
    #[arg(long, value_name = "TABLE", value_enum, conflicts_with = "json")]
    csv: Option<render::BacktestTable>,
}

#[derive(Args)]
struct Inputs {
    /// The account: collateral, positions, and optionally a market snapshot (PORTFOLIO.json).
    portfolio: PathBuf,
    /// Market snapshot (MARKET.json); overrides the one inside the portfolio.
    #[arg(long)]
    market: Option<PathBuf>,
    /// The venue: a shipped one by name (`solvent venue list`) or a VENUE.toml file; the built-in default when absent.
    #[arg(long)]
    venue: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Every column of every table, however wide (by default optional columns are left out
    /// and prose wrapped to fit 120 columns, and a line under the table names what was left out).
    #[arg(long)]
    wide: bool,
    /// Value marks far from their index (a perpetual's or future's beyond 20% of it, an
    /// option's above the most it can be worth) with a warning, rather than refusing them.
    #[arg(long)]
    allow_far_marks: bool,
    /// Daily price history (a folder of `COIN-USDT.binance.daily.csv` and optional
    /// `COIN-DVOL.deribit.daily.csv` files, as ../shared/data/prices) for historical expected
    /// shortfall and for correlations the venue does not give.
    #[arg(long, value_name = "DIR")]
    history: Option<PathBuf>,
    /// The history's last row is a complete day (by default it is dropped: the shared files end
    /// with a partial day).
    #[arg(long, requires = "history")]
    history_complete: bool,
}

#[derive(Args)]
struct MarginArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// Print one table as CSV (RFC 4180: a header row naming each column's unit, then the
    /// exact figures, unrounded): summary, currencies, components, positions or moves.
    #[arg(long, value_name = "TABLE", value_enum, conflicts_with = "json")]
    csv: Option<render::MarginTable>,
}

#[derive(Args)]
struct WhatIfArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// A trade INSTRUMENT:SIZE[@PRICE][,fee=FEE] (negative size sells; the fee in the settlement
    /// asset, as the engine books it); repeat for several.
    #[arg(long = "trade", required = true, allow_hyphen_values = true)]
    trades: Vec<String>,
    /// Print the before and after figures as CSV (RFC 4180: a header row naming each column's
    /// unit, then the exact figures, unrounded; the verdict last).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
}

#[derive(Args)]
struct StressArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// `grid` (joint moves -50%..+50%), `historical` (the largest days in the shared price
    /// history: 2020-03-12, 2021-05-19, 2022-11-09, 2025-10-10), or a SCENARIOS.json file.
    #[arg(long, default_value = "grid")]
    scenarios: String,
    /// Also find the smallest moves (per underlying and joint) that take health to 1.
    #[arg(long)]
    reverse: bool,
    /// Write an SVG plot of P&L against the joint move, with the IM and MM lines.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print one table as CSV (RFC 4180: a header row naming each column's unit, then the
    /// exact figures, unrounded): scenarios, or reverse (with --reverse).
    #[arg(long, value_name = "TABLE", value_enum, conflicts_with = "json")]
    csv: Option<render::StressTable>,
}

#[derive(Args)]
struct AllocateArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// Buffer kept in the cross pool: `none`, `mm:MULTIPLE` (equity >= k x MM) or
    /// `sigma:N:DAYS` (survive an N-sigma move over DAYS days above MM).
    #[arg(long, default_value = "none")]
    buffer: String,
    /// Isolated positions below this health receive collateral.
    #[arg(long, default_value_t = 1.2)]
    trigger: f64,
    /// ...up to this health.
    #[arg(long, default_value_t = 1.5)]
    target: f64,
    /// Print one table as CSV (RFC 4180: a header row naming each column's unit, then the
    /// exact figures, unrounded): figures or moves.
    #[arg(long, value_name = "TABLE", value_enum, conflicts_with = "json")]
    csv: Option<render::AllocationTable>,
}

fn allocate(args: &AllocateArgs) -> Result<Printed> {
    let buffer: solvent_risk::allocation::BufferPolicy = args
        .buffer
        .parse()
        .map_err(|problem| anyhow!("--buffer: {problem}"))?;
    let policy =
        solvent_risk::allocation::AllocationPolicy::new_checked(buffer, args.trigger, args.target)
            .map_err(|error| {
                let flag = if error.field == "trigger_health" {
                    "--trigger"
                } else {
                    "--target"
                };
                anyhow!("{flag}: {}", error.problem)
            })?;
    let loaded = load(&args.inputs)?;
    let name = args.inputs.portfolio.display().to_string();
    let view = loaded.view(&name)?;
    let allocation = solvent_risk::allocation::allocate(&loaded.portfolio, &view, policy)
        .map_err(|e| loaded.locate(&name, e))?;
    let text = if let Some(table) = args.csv {
        render::allocation_csv(&allocation, &loaded.venue, table)?
    } else if args.inputs.json {
        serde_json::to_string_pretty(&allocation)? + "\n"
    } else {
        render::allocation(
            &allocation,
            &loaded.venue,
            display::Layout::new(args.inputs.wide),
        )
    };
    Ok(Printed::warned(text, loaded.warnings))
}

/// The named historical days, derived from ../shared/data/prices by
/// scripts/extract_historical_days.py (checked against the data by ./scripts/test).
const HISTORICAL_DAYS: &str = include_str!("../../../scenarios/historical-days.json");

struct Loaded {
    venue: Venue,
    portfolio: Portfolio,
    market: Market,
    history: Option<HistoricalScenarios>,
    /// The volatility-scaled ranges that replaced the venue's grids (issue 15).
    scaled: Vec<scaled::ScaledRange>,
    /// Where the market came from, to name it in errors about market data.
    market_origin: String,
    /// The defaults filled in and the far marks accepted, printed if the command succeeds.
    warnings: checks::Warnings,
}

impl Loaded {
    /// The market as the risk code sees it, with the price history attached.
    fn view(&self, portfolio_name: &str) -> Result<MarketView<'_>> {
        Ok(MarketView::new(&self.venue, &self.market)
            .map_err(|e| self.locate(portfolio_name, e))?
            .with_history(self.history.as_ref()))
    }

    /// Names the market's origin in front of an error about market data (whose paths are
    /// relative to the market), and the portfolio's in front of any other.
    fn locate(&self, portfolio_name: &str, error: RiskError) -> anyhow::Error {
        if error.is_about_market() {
            anyhow!("{}{error}", self.market_origin)
        } else {
            anyhow!("{portfolio_name}: {error}")
        }
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("{}: cannot read the file", path.display()))
}

/// Reads the daily price history of `names` from `directory` (the layout of ../shared/data/prices).
pub(crate) fn read_price_history(
    directory: &Path,
    names: &[String],
    drop_last: bool,
) -> Result<history::PriceHistory> {
    if names.is_empty() {
        return Err(anyhow!(
            "--history: the account holds nothing whose price history would matter"
        ));
    }
    let mut spot_texts = Vec::new();
    let mut vol_texts = Vec::new();
    for name in names {
        let spot = directory.join(format!("{name}-USDT.binance.daily.csv"));
        spot_texts.push((name.clone(), spot.display().to_string(), read(&spot)?));
        let vol = directory.join(format!("{name}-DVOL.deribit.daily.csv"));
        if vol.exists() {
            vol_texts.push((name.clone(), vol.display().to_string(), read(&vol)?));
        }
    }
    let spot_series = series(&spot_texts);
    let vol_series = series(&vol_texts);
    Ok(history::PriceHistory::from_texts(
        &spot_series,
        &vol_series,
        &history::LoadOptions {
            drop_last_spot_row: drop_last,
        },
    )?)
}

/// The venue's filtered-historical parameters (RiskMetrics defaults without them).
fn filtered_params(venue: &Venue) -> history::FilteredHistoricalParams {
    let historical = venue
        .portfolio_margin
        .as_ref()
        .and_then(|pm| pm.historical.as_ref());
    history::FilteredHistoricalParams {
        lambda: historical.map_or(history::RISKMETRICS_DAILY_LAMBDA, |h| h.lambda),
        horizon_days: historical.map_or(1, |h| h.horizon_days),
        window: None,
    }
}

/// Turns the price history of the account's underlyings into filtered historical scenarios
/// (with the venue's EWMA decay and horizon) and correlations.
fn load_history(
    prices: &history::PriceHistory,
    venue: &Venue,
    names: &[String],
) -> Result<HistoricalScenarios> {
    let scenarios = history::FilteredHistory::new(prices, &filtered_params(venue))?.scenarios();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let correlations = history::correlation_matrix(prices, &refs, None)?;
    Ok(HistoricalScenarios {
        underlyings: prices.underlyings().to_vec(),
        scenarios,
        correlations,
    })
}

/// Borrows read history files as the parser's series.
fn series(texts: &[(String, String, String)]) -> Vec<history::SeriesText<'_>> {
    texts
        .iter()
        .map(|(underlying, origin, text)| history::SeriesText {
            underlying,
            origin,
            text,
        })
        .collect()
}

fn load(inputs: &Inputs) -> Result<Loaded> {
    let mut venue = venues::load(inputs.venue.as_deref())?;
    let portfolio_name = inputs.portfolio.display().to_string();
    let portfolio = Portfolio::from_json(&portfolio_name, &read(&inputs.portfolio)?, &venue)?;
    let (market, market_file, market_field) = match &inputs.market {
        Some(path) => {
            let name = path.display().to_string();
            (Market::from_json(&name, &read(path)?)?, name, "")
        }
        None => (
            portfolio.market.clone().ok_or_else(|| {
                anyhow!("{portfolio_name}: market: missing; give --market MARKET.json or a \"market\" object in the portfolio")
            })?,
            portfolio_name.clone(),
            "market.",
        ),
    };
    let market_origin = format!("{market_file}: {market_field}");
    let origins = checks::Origins {
        portfolio: &portfolio_name,
        market: &market_file,
        market_field,
    };
    let far_marks = checks::FarMarks {
        allowed: inputs.allow_far_marks,
        switch: "--allow-far-marks",
    };
    let warnings = checks::inputs(&venue, &portfolio, &market, origins, far_marks)?;
    let names = solvent_risk::stress::underlyings(&portfolio);
    let to_scale = scaled::scaled_underlyings(&venue, &names);
    let (history, scaled) = match &inputs.history {
        None => {
            if let Some(first) = to_scale.first() {
                bail!(
                    "--history: the venue scales {first}'s range with forecast volatility (portfolio_margin.vol_scaled.{first}); give --history DIR"
                );
            }
            (None, Vec::new())
        }
        Some(directory) => {
            let prices = read_price_history(directory, &names, !inputs.history_complete)?;
            let scaled = scaled::apply(&mut venue, &prices, &to_scale)?;
            (Some(load_history(&prices, &venue, &names)?), scaled)
        }
    };
    Ok(Loaded {
        venue,
        portfolio,
        market,
        history,
        scaled,
        market_origin,
        warnings,
    })
}

fn stress(args: &StressArgs) -> Result<Printed> {
    let loaded = load(&args.inputs)?;
    let mut warnings = loaded.warnings.clone();
    let name = args.inputs.portfolio.display().to_string();
    let locate = |e| loaded.locate(&name, e);
    let view = loaded.view(&name)?;
    let base = solvent_risk::stress::shocked_report(
        &loaded.portfolio,
        &view,
        &Shock::joint("base", &[], 0.0),
    )
    .map_err(locate)?;
    let (shocks, origin) = match args.scenarios.as_str() {
        "grid" => (solvent_risk::stress::grid(&loaded.portfolio), None),
        "historical" => {
            let origin = "scenarios/historical-days.json (built in)";
            (read_shocks(origin, HISTORICAL_DAYS)?, Some(origin))
        }
        path => {
            let suggestion = solvent_core::names::did_you_mean(path, ["grid", "historical"]);
            if !suggestion.is_empty() && !Path::new(path).exists() {
                bail!("--scenarios {path}: no such file{suggestion}");
            }
            (read_shocks(path, &read(Path::new(path))?)?, Some(path))
        }
    };
    // The grid moves every underlying; a scenario file may leave a held coin where it is.
    if let Some(origin) = origin {
        let held = solvent_risk::stress::underlyings(&loaded.portfolio);
        warnings.extend(checks::unmoved(origin, &shocks, &held));
    }
    let rows =
        solvent_risk::stress::run(&loaded.portfolio, &view, &base, &shocks).map_err(locate)?;
    let reverse = if args.reverse {
        Some(solvent_risk::stress::reverse(&loaded.portfolio, &view).map_err(locate)?)
    } else {
        None
    };
    if let Some(path) = &args.plot {
        let names = solvent_risk::stress::underlyings(&loaded.portfolio);
        let equity = base.equity.value();
        let points = (-20..=20)
            .map(|step| {
                let price_move = f64::from(step) * 0.025;
                let shocked = solvent_risk::stress::shocked_report(
                    &loaded.portfolio,
                    &view,
                    &Shock::joint("plot", &names, price_move),
                )?;
                let number = |value: solvent_core::Decimal| {
                    value.to_string().parse::<f64>().unwrap_or(f64::NAN)
                };
                Ok(plot::Point {
                    price_move,
                    pnl: number(shocked.equity.value() - equity),
                    initial_line: number(shocked.initial_margin.value() - equity),
                    maintenance_line: number(shocked.maintenance_margin.value() - equity),
                })
            })
            .collect::<Result<Vec<_>, RiskError>>()
            .map_err(locate)?;
        let title = format!(
            "{} ({} on {}): P&L against a joint move of {}",
            base.account,
            render::margin_model(base.mode, &loaded.venue),
            loaded.venue.name,
            names.join(", ")
        );
        // The joint liquidating moves: the reverse stress's entry moving every underlying.
        let joint = match &reverse {
            Some(found) => found.clone(),
            None => solvent_risk::stress::reverse(&loaded.portfolio, &view).map_err(locate)?,
        };
        let liquidations = joint
            .iter()
            .find(|entry| entry.underlyings.len() == names.len())
            .map(|entry| entry.down.into_iter().chain(entry.up).collect())
            .unwrap_or_default();
        let svg = plot::stress_svg(
            &title,
            &base.settlement_asset,
            &points,
            &plot::Marks { liquidations },
        )?;
        fs::write(path, svg)
            .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    }
    let text = if let Some(table) = args.csv {
        render::stress_csv(&base, &rows, reverse.as_deref(), &loaded.venue, table)?
    } else if args.inputs.json {
        let answer = solvent_risk::stress::StressAnswer::new(&base, &rows, reverse.as_deref());
        serde_json::to_string_pretty(&answer)? + "\n"
    } else {
        render::stress(
            &base,
            &rows,
            reverse.as_deref(),
            &loaded.venue,
            display::Layout::new(args.inputs.wide),
        )
    };
    Ok(Printed::warned(text, warnings))
}

fn backtest(args: &BacktestArgs) -> Result<String> {
    let venue = venues::load(args.venue.as_deref())?;
    if !args.model.is_empty() {
        return model_backtest(args, &venue);
    }
    let Some(portfolio_path) = &args.portfolio else {
        bail!("PORTFOLIO: missing (or give --model)");
    };
    let name = portfolio_path.display().to_string();
    let portfolio = Portfolio::from_json(&name, &read(portfolio_path)?, &venue)?;
    let names = solvent_risk::stress::underlyings(&portfolio);
    let prices = read_price_history(&args.history, &names, !args.history_complete)?;
    let mut params = filtered_params(&venue);
    params.horizon_days = 1;
    params.window = args.window;
    let min_scenarios = args.window.unwrap_or(250).min(250);
    let holds_options = portfolio.positions.iter().any(|p| {
        matches!(
            p.instrument.terms,
            solvent_core::instrument::Terms::Option { .. }
        )
    });
    let report = if holds_options {
        // Options are valued on each day's DVOL level with the market's smile shape.
        let market = match &args.market {
            Some(path) => Market::from_json(&path.display().to_string(), &read(path)?)?,
            None => portfolio.market.clone().ok_or_else(|| {
                anyhow!("{name}: market: missing; the options are valued on the market's volatility surface (its smile shape, levelled by each day's DVOL): give --market MARKET.json or a \"market\" object in the portfolio")
            })?,
        };
        let view = MarketView::new(&venue, &market).map_err(|e| anyhow!("{name}: {e}"))?;
        solvent_risk::backtest::run_with_options(
            &portfolio,
            &prices,
            &view,
            &params,
            args.level,
            min_scenarios,
        )
        .map_err(|e| anyhow!("{name}: {e}"))?
    } else {
        solvent_risk::backtest::run(&portfolio, &prices, &params, args.level, min_scenarios)
            .map_err(|e| anyhow!("{name}: {e}"))?
    };
    if let Some(table) = args.csv {
        return Ok(render::backtest_csv(&report, table)?);
    }
    if args.json {
        return Ok(serde_json::to_string_pretty(&report)? + "\n");
    }
    Ok(render::backtest(&portfolio.account, &report))
}

/// `solvent backtest [PORTFOLIO] --model ...`: margin models of one coin, or of the account's
/// book, against the history.
fn model_backtest(args: &BacktestArgs, venue: &Venue) -> Result<String> {
    if args.window.is_some() {
        bail!("--window belongs to the VaR backtest of a portfolio, not to --model");
    }
    if !(args.level > 0.0 && args.level < 1.0) {
        bail!("--level: must be in (0, 1), found {}", args.level);
    }
    if args.period_days == Some(0) || args.period_days.is_some_and(|d| d > 30) {
        bail!("--period-days: must be between 1 and 30");
    }
    let book = match &args.portfolio {
        None => None,
        Some(path) => {
            let name = path.display().to_string();
            let portfolio = Portfolio::from_json(&name, &read(path)?, venue)?;
            let holds_options = portfolio.positions.iter().any(|p| {
                matches!(
                    p.instrument.terms,
                    solvent_core::instrument::Terms::Option { .. }
                )
            });
            let market = if holds_options {
                Some(match &args.market {
                    Some(path) => Market::from_json(&path.display().to_string(), &read(path)?)?,
                    None => portfolio.market.clone().ok_or_else(|| {
                        anyhow!("{name}: market: missing; the options are valued on the market's volatility surface (its smile shape, levelled by each day's DVOL): give --market MARKET.json or a \"market\" object in the portfolio")
                    })?,
                })
            } else {
                None
            };
            Some((name, portfolio, market))
        }
    };
    if book.is_some() && args.plot.is_some() {
        bail!(
            "--plot: draws the ranges of one coin; not with a PORTFOLIO (use --csv exceptions for the book's days)"
        );
    }
    // The book's underlyings: those of its cross-pool positions (an isolated one is margined
    // apart).
    let underlyings: Vec<String> = match &book {
        None => args.underlying.clone(),
        Some((name, portfolio, _)) => {
            let mut names: Vec<String> = Vec::new();
            for p in portfolio
                .positions
                .iter()
                .filter(|p| p.isolated_margin.is_none())
            {
                if !names.contains(&p.instrument.underlying) {
                    names.push(p.instrument.underlying.clone());
                }
            }
            if names.is_empty() {
                bail!(
                    "{name}: positions: none in the cross pool; --model tests a book of positions"
                );
            }
            names
        }
    };
    let prices = read_price_history(&args.history, &underlyings, !args.history_complete)?;
    let view = match &book {
        Some((name, _, Some(market))) => {
            Some(MarketView::new(venue, market).map_err(|e| anyhow!("{name}: {e}"))?)
        }
        _ => None,
    };
    let outcome = model_backtest::run(
        &prices,
        venue,
        &model_backtest::Request {
            models: &args.model,
            controls: &args.control,
            underlyings: &underlyings,
            level: args.level,
            period_days: args.period_days,
            book: book
                .as_ref()
                .map(|(_, portfolio, _)| (portfolio, view.as_ref())),
        },
    )?;
    if let Some(path) = &args.plot {
        let svg = plot::margin_history_svg(&outcome)?;
        fs::write(path, svg)
            .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    }
    if let Some(table) = args.csv {
        return model_backtest::csv(&outcome, table);
    }
    if args.json {
        return model_backtest::json(&outcome);
    }
    Ok(model_backtest::render(&outcome))
}

/// Exit code of a `whatif` whose trades the venue would refuse (the report is printed; errors
/// exit 2).
const EXIT_REFUSED: u8 = 1;

/// What a command prints, and whether it reports a refusal (`whatif`).
struct Printed {
    text: String,
    refused: bool,
    /// The defaults filled in and the far marks accepted: printed on stderr before the text,
    /// only when the command succeeds (a failure prints its error alone), and even with
    /// `--quiet` (a warning qualifies the figures; it is not progress).
    warnings: checks::Warnings,
}

impl Printed {
    /// A command's output with the warnings that qualify it.
    fn warned(text: String, warnings: checks::Warnings) -> Self {
        Self {
            text,
            refused: false,
            warnings,
        }
    }
}

fn run(cli: Cli) -> Result<Printed> {
    let feedback = progress::Feedback::new(cli.quiet);
    let text = match cli.command {
        Command::Backtest(args) => backtest(&args),
        Command::Replay(args) => replay::run(&args, feedback),
        Command::Forecast(args) => {
            let venue = venues::load(args.venue.as_deref())?;
            scaled::forecast(&args, &venue)
        }
        Command::Population(args) => cascade::population(&args, feedback),
        Command::Cascade(args) => cascade::run(&args, feedback),
        Command::Journal(args) => journal::run(&args, feedback),
        Command::Serve(args) => serve::run(&args, feedback),
        Command::Keys(args) => serve::keys(&args),
        Command::Cluster(args) => cluster::run(&args, feedback),
        Command::Simm(args) => simm::run(&args),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "solvent",
                &mut out,
            );
            String::from_utf8(out).map_err(|_| anyhow!("the completions are not UTF-8"))
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .context("cannot render the man page")?;
            String::from_utf8(out).map_err(|_| anyhow!("the man page is not UTF-8"))
        }
        Command::Venue(args) => match args.command {
            VenueCommand::List { csv: false } => venues::list(),
            VenueCommand::List { csv: true } => venues::list_csv(),
            VenueCommand::Show {
                venue,
                instrument,
                csv: None,
            } => venue_view::show(&venue, instrument.as_deref()),
            VenueCommand::Show {
                venue,
                instrument,
                csv: Some(table),
            } => venue_view::show_csv(&venue, instrument.as_deref(), table),
            VenueCommand::Check { file } => venue_view::check(&file),
        },
        Command::Stress(args) => return stress(&args),
        Command::Allocate(args) => return allocate(&args),
        Command::Margin(args) => return margin(&args),
        Command::Whatif(args) => return whatif(&args),
    }?;
    Ok(Printed::warned(text, Vec::new()))
}

/// `solvent margin`: the report as tables or JSON.
fn margin(args: &MarginArgs) -> Result<Printed> {
    let loaded = load(&args.inputs)?;
    let name = args.inputs.portfolio.display().to_string();
    let view = loaded.view(&name)?;
    let report = solvent_risk::margin_report(&loaded.portfolio, &view)
        .map_err(|e| loaded.locate(&name, e))?;
    if let Some(table) = args.csv {
        // The reverse stress only for the table of moves: the others do not read it.
        let found = match table {
            render::MarginTable::Moves => solvent_risk::stress::reverse(&loaded.portfolio, &view)
                .map(|reverse| solvent_risk::stress::liquidation_moves(&reverse, &loaded.market))
                .map_err(|error| loaded.locate(&name, error).to_string()),
            _ => Ok(Vec::new()),
        };
        let moves = found.as_deref().map_err(Clone::clone);
        let text = render::margin_csv(&report, &loaded.venue, &moves, table)?;
        return Ok(Printed::warned(text, loaded.warnings));
    }
    // The reverse stress beside the report: the moves that liquidate the account.
    let with_moves =
        solvent_risk::stress::ReportWithMoves::new(&report, &loaded.portfolio, &view, |error| {
            loaded.locate(&name, error).to_string()
        });
    let text = if args.inputs.json && loaded.scaled.is_empty() {
        serde_json::to_string_pretty(&with_moves)? + "\n"
    } else if args.inputs.json {
        /// The report with the scaled ranges beside it (only when the venue scales a grid).
        #[derive(serde::Serialize)]
        struct WithScaled<'a, T: serde::Serialize> {
            #[serde(flatten)]
            report: &'a T,
            vol_scaled_ranges: &'a [scaled::ScaledRange],
        }
        let value = WithScaled {
            report: &with_moves,
            vol_scaled_ranges: &loaded.scaled,
        };
        serde_json::to_string_pretty(&value)? + "\n"
    } else {
        let moves = match (
            &with_moves.liquidation_moves,
            &with_moves.liquidation_moves_error,
        ) {
            (Some(moves), _) => Ok(moves.as_slice()),
            (None, why) => Err(why.clone().unwrap_or_default()),
        };
        render::margin(
            &report,
            &loaded.venue,
            display::Layout::new(args.inputs.wide),
            Some(&moves),
        ) + &scaled::render(&loaded.scaled, display::Layout::new(args.inputs.wide))
    };
    Ok(Printed::warned(text, loaded.warnings))
}

/// `solvent whatif`: the report before and after; refused trades exit with [`EXIT_REFUSED`].
fn whatif(args: &WhatIfArgs) -> Result<Printed> {
    // The flags first: a malformed trade is refused before any file is read.
    let trades = args
        .trades
        .iter()
        .map(|text| Trade::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let loaded = load(&args.inputs)?;
    for trade in &trades {
        checks::trade_price(
            &loaded.venue,
            &loaded.market,
            trade,
            &format!("--trade {}", trade.text),
        )?;
    }
    let name = args.inputs.portfolio.display().to_string();
    let view = loaded.view(&name)?;
    let outcome =
        what_if(&loaded.portfolio, &trades, &view).map_err(|e| loaded.locate(&name, e))?;
    let text = if args.csv {
        render::what_if_csv(&outcome, &loaded.venue)?
    } else if args.inputs.json {
        serde_json::to_string_pretty(&outcome)? + "\n"
    } else {
        render::what_if(
            &outcome,
            &args.trades,
            &loaded.venue,
            display::Layout::new(args.inputs.wide),
        )
    };
    Ok(Printed {
        text,
        refused: !outcome.accepted,
        warnings: loaded.warnings,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(printed) => {
            for warning in &printed.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{}", printed.text);
            if printed.refused {
                ExitCode::from(EXIT_REFUSED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
