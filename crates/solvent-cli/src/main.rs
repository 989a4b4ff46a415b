//! The `solvent` command-line tool.
//!
//! Raw flags are turned into validated, ready-built objects (venue, portfolio, market) before any
//! work is done; every failure is reported on stderr with exit code 2 and nothing on stdout.

mod render;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand};
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_risk::whatif::{Trade, what_if};
use solvent_risk::{MarketView, RiskError};

/// The venue used when `--venue` is not given: `venues/default.toml`, built into the binary.
const DEFAULT_VENUE: &str = include_str!("../../../venues/default.toml");

#[derive(Parser)]
#[command(
    name = "solvent",
    version,
    about = "Real-time margin and collateral allocation for crypto derivatives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The full margin report of one account: equity, requirements, health, per-position detail.
    Margin(MarginArgs),
    /// The report before and after trades, and whether the venue would accept them.
    Whatif(WhatIfArgs),
}

#[derive(Args)]
struct Inputs {
    /// The account: collateral, positions, and optionally a market snapshot (PORTFOLIO.json).
    portfolio: PathBuf,
    /// Market snapshot (MARKET.json); overrides the one inside the portfolio.
    #[arg(long)]
    market: Option<PathBuf>,
    /// Venue parameters (VENUE.toml); the built-in venues/default.toml when absent.
    #[arg(long)]
    venue: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MarginArgs {
    #[command(flatten)]
    inputs: Inputs,
}

#[derive(Args)]
struct WhatIfArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// A trade INSTRUMENT:SIZE[@PRICE] (negative size sells); repeat for several.
    #[arg(long = "trade", required = true, allow_hyphen_values = true)]
    trades: Vec<String>,
}

struct Loaded {
    venue: Venue,
    portfolio: Portfolio,
    market: Market,
    /// Where the market came from, to name it in errors about market data.
    market_origin: String,
}

impl Loaded {
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

fn load(inputs: &Inputs) -> Result<Loaded> {
    let venue = match &inputs.venue {
        Some(path) => Venue::from_toml(&path.display().to_string(), &read(path)?)?,
        None => Venue::from_toml("venues/default.toml (built in)", DEFAULT_VENUE)?,
    };
    let portfolio_name = inputs.portfolio.display().to_string();
    let portfolio = Portfolio::from_json(&portfolio_name, &read(&inputs.portfolio)?, &venue)?;
    let (market, market_origin) = match &inputs.market {
        Some(path) => {
            let name = path.display().to_string();
            (Market::from_json(&name, &read(path)?)?, format!("{name}: "))
        }
        None => (
            portfolio.market.clone().ok_or_else(|| {
                anyhow!("{portfolio_name}: market: missing; give --market MARKET.json or a \"market\" object in the portfolio")
            })?,
            format!("{portfolio_name}: market."),
        ),
    };
    Ok(Loaded {
        venue,
        portfolio,
        market,
        market_origin,
    })
}

fn run(cli: Cli) -> Result<String> {
    match cli.command {
        Command::Margin(args) => {
            let loaded = load(&args.inputs)?;
            let name = args.inputs.portfolio.display().to_string();
            let view = MarketView::new(&loaded.venue, &loaded.market)
                .map_err(|e| loaded.locate(&name, e))?;
            let report = solvent_risk::margin_report(&loaded.portfolio, &view)
                .map_err(|e| loaded.locate(&name, e))?;
            if args.inputs.json {
                Ok(serde_json::to_string_pretty(&report)? + "\n")
            } else {
                Ok(render::margin(&report, &loaded.venue.name))
            }
        }
        Command::Whatif(args) => {
            let loaded = load(&args.inputs)?;
            let name = args.inputs.portfolio.display().to_string();
            let trades = args
                .trades
                .iter()
                .map(|text| Trade::parse(text))
                .collect::<Result<Vec<_>, _>>()?;
            let view = MarketView::new(&loaded.venue, &loaded.market)
                .map_err(|e| loaded.locate(&name, e))?;
            let outcome =
                what_if(&loaded.portfolio, &trades, &view).map_err(|e| loaded.locate(&name, e))?;
            if args.inputs.json {
                Ok(serde_json::to_string_pretty(&outcome)? + "\n")
            } else {
                Ok(render::what_if(&outcome, &args.trades))
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
