//! The live demo's content (`solvent serve --demo`): a seeded book of accounts and a live feed
//! replaying a real stretch of history, the 2025-10-10 liquidation cascade among it.
//!
//! - [`extract`]: the committed history (BTC and ETH daily OHLC and DVOL, 2025-10-01..11-04).
//! - [`population`]: the opening events: prices, smiles, the insurance fund's seed, accounts.
//! - [`feed::Feed`]: the stream that follows, minute by minute, with trading flow.
//! - [`run_feed`]: the stream sent to a running service at an accelerated pace.
//! - [`VOL_SCALED_TOML`] and [`forecaster`]: BTC's and ETH's portfolio-margin ranges scaled
//!   with a forecast made at each replayed close, from [`HISTORY`] (the year before the
//!   extract) and the closes replayed since ([`crate::forecast`]).
//!
//! Everything but [`run_feed`] is pure and deterministic for a seed: no clock, no I/O. Events
//! carry historical timestamps (the engine's time is the history's), so nothing else may write
//! to the demo's engine with a later clock.
//!
//! ```no_run
//! # async fn demo(running: solvent_server::Running, venue: solvent_core::venue::Venue)
//! # -> Result<(), solvent_server::demo::DemoError> {
//! use solvent_server::demo::{self, Extract, Feed, FeedParams, Pace};
//! let extract = Extract::embedded()?;
//! let opening = demo::population(&venue, 7, 10_000, extract.opening_time())?;
//! let mut feed = Feed::new(&venue, &extract, &opening, FeedParams::default())?;
//! // ... submit `opening` to running.state.core, then:
//! demo::run_feed(&running.state.core, &mut feed, &Pace::default(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod extract;
pub mod feed;

mod draw;
mod opening;
mod pace;

use jiff::Timestamp;
use solvent_core::venue::Venue;
use solvent_engine::population::PopulationError;
use thiserror::Error;

pub use extract::Extract;
pub use feed::{Feed, FeedParams, Observation};
pub use opening::EXPIRIES;
pub use pace::{FeedReport, OpeningReport, Pace, load_opening, run_feed};

use crate::core::Incoming;
use crate::forecast::{ForecastError, Forecaster};

/// The tables `solvent serve --demo` appends to the default venue: BTC's and ETH's ranges
/// scaled with forecast volatility (the parameters of `examples/vol-scaled-venue.toml`).
pub const VOL_SCALED_TOML: &str = include_str!("../demo/vol-scaled.toml");

/// The daily closes the demo's forecasts start from: the Binance files of BTC and ETH from
/// 2024-10-01 to 2025-09-30, the day before the extract (`demo/history/`, copied and checked by
/// `scripts/extract_demo_prices.py`). A year: GARCH's first fit needs 250 returns.
pub const HISTORY: [(&str, &str); 2] = [
    (
        "BTC",
        include_str!("../demo/history/BTC-USDT.binance.daily.csv"),
    ),
    (
        "ETH",
        include_str!("../demo/history/ETH-USDT.binance.daily.csv"),
    ),
];

/// The forecaster of the demo: [`HISTORY`], each file read alone and whole (its last row is a
/// complete day).
///
/// # Errors
/// [`DemoError::Forecast`] if a committed file does not read (a test keeps them readable).
pub fn forecaster() -> Result<Forecaster, DemoError> {
    let mut histories = std::collections::BTreeMap::new();
    for (underlying, text) in HISTORY {
        let origin = format!("demo/history/{underlying}-USDT.binance.daily.csv");
        let history = solvent_risk::history::PriceHistory::from_texts(
            &[solvent_risk::history::SeriesText {
                underlying,
                origin: &origin,
                text,
            }],
            &[],
            &solvent_risk::history::LoadOptions::default(),
        )
        .map_err(|source| {
            DemoError::Forecast(ForecastError::Load {
                underlying: underlying.to_owned(),
                source: Box::new(source),
            })
        })?;
        histories.insert(underlying.to_owned(), history);
    }
    Ok(Forecaster::new(histories)?)
}

/// Why the demo cannot be built or run.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DemoError {
    /// The price extract does not read.
    #[error("demo/prices.csv, line {line}: {problem}")]
    Extract {
        /// Line (1-based; 0 when the problem spans lines).
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A parameter outside its range.
    #[error("{name}: {problem}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The population generator refused.
    #[error("population: {0}")]
    Population(#[from] PopulationError),
    /// The venue lacks an instrument or asset the demo needs.
    #[error("the venue cannot host the demo: {0}")]
    Venue(String),
    /// Valuing the opening market or an account failed.
    #[error("valuing the opening: {0}")]
    Risk(String),
    /// A drawn figure fell outside the exact range.
    #[error("a drawn figure is out of range: {0}")]
    OutOfRange(String),
    /// The opening would be written after the history begins.
    #[error("the opening at {start} must not be after the history's start {history}")]
    StartTooLate {
        /// The opening's time.
        start: Timestamp,
        /// The feed's first instant.
        history: Timestamp,
    },
    /// The forecasts' history does not read.
    #[error("forecasts: {0}")]
    Forecast(#[from] ForecastError),
    /// The service stopped taking events.
    #[error("the service stopped: {0}")]
    Service(String),
}

/// The opening events of the demo, deterministic for `seed`: the index of each underlying at
/// the extract's first open, a volatility smile per underlying and option expiry (DVOL at that
/// open), the insurance fund's seed, then `accounts` accounts (80% drawn by
/// `solvent_engine::population::generate`, 10% in portfolio margin holding perpetuals and
/// options, 10% holding options in cross). Every event is stamped `start`, which must not be
/// after the history begins ([`Extract::opening_time`] is a good choice).
///
/// # Errors
/// [`DemoError`] for an account count out of range (1..=1,000,000), a late `start`, or a venue
/// without the instruments and assets the demo trades (the default venue has them all).
pub fn population(
    venue: &Venue,
    seed: u64,
    accounts: usize,
    start: Timestamp,
) -> Result<Vec<Incoming>, DemoError> {
    let extract = Extract::embedded()?;
    opening::opening(venue, &extract, seed, accounts, start)
}
