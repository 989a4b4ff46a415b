//! Volatility-scaled ranges at the CLI edge: when the venue scales an underlying's grid
//! (`[portfolio_margin.vol_scaled.UNDERLYING]`), the forecast is made from the `--history` the
//! user gives, the grid is replaced by the scaled one before any margin is computed, and the
//! report shows the forecast, the range and what bound it.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use jiff::civil::Date;
use solvent_core::venue::Venue;
use solvent_engine::event::{Envelope, Event, ScenarioRange, to_line};
use solvent_risk::history::PriceHistory;
use solvent_risk::vol_scaled::{RangeDay, RangeInForce, range_path, scaled_grid};

use crate::display::{Column, Grid, Kind, Layout, float};

/// One underlying's scaled range as the report shows it (the type the engine keeps in force).
pub type ScaledRange = RangeInForce;

/// The underlyings of `held` whose grid the venue scales.
#[must_use]
pub fn scaled_underlyings(venue: &Venue, held: &[String]) -> Vec<String> {
    venue.portfolio_margin.as_ref().map_or_else(Vec::new, |pm| {
        held.iter()
            .filter(|u| pm.vol_scaled.contains_key(*u))
            .cloned()
            .collect()
    })
}

/// Every day's range of `name` over `prices` (the venue's parameters and grid for it), or
/// `None` when the venue does not scale it.
///
/// # Errors
/// An underlying missing from the history; the forecast's errors (too short a history).
fn path_of(venue: &Venue, prices: &PriceHistory, name: &str) -> Result<Option<Vec<RangeDay>>> {
    let Some(pm) = venue.portfolio_margin.as_ref() else {
        return Ok(None);
    };
    let (Some(spec), Some(_)) = (pm.vol_scaled.get(name), pm.underlyings.get(name)) else {
        return Ok(None);
    };
    let u = prices.index_of(name)?;
    let path = range_path(prices.dates(), prices.log_returns(u), spec)
        .map_err(|e| anyhow!("--history: portfolio_margin.vol_scaled.{name}: {e}"))?;
    Ok(Some(path))
}

/// The range of `day` for `name` as the report and the event carry it.
fn in_force(venue: &Venue, name: &str, day: &RangeDay) -> Option<RangeInForce> {
    let pm = venue.portfolio_margin.as_ref()?;
    let (spec, grid) = (pm.vol_scaled.get(name)?, pm.underlyings.get(name)?);
    Some(RangeInForce::of_day(name, day, spec, grid))
}

/// Replaces the grid of every underlying of `names` by its scaled grid, from `prices`.
///
/// # Errors
/// An underlying missing from the history; the forecast's errors (too short a history).
pub fn apply(
    venue: &mut Venue,
    prices: &PriceHistory,
    names: &[String],
) -> Result<Vec<ScaledRange>> {
    let mut shown = Vec::new();
    for name in names {
        let Some(path) = path_of(venue, prices, name)? else {
            continue;
        };
        let today = path
            .last()
            .ok_or_else(|| anyhow!("--history: no forecast for {name}"))?;
        let Some(range) = in_force(venue, name, today) else {
            continue;
        };
        if let Some(pm) = venue.portfolio_margin.as_mut()
            && let Some(grid) = pm.underlyings.get(name)
        {
            let scaled = scaled_grid(grid, range.range);
            pm.underlyings.insert(name.clone(), scaled);
        }
        shown.push(range);
    }
    Ok(shown)
}

/// The arguments of `solvent forecast`.
#[derive(Args)]
pub struct ForecastArgs {
    /// Venue file or shipped venue name: its `[portfolio_margin.vol_scaled.UNDERLYING]` blocks
    /// say which underlyings are scaled, and how.
    #[arg(long)]
    pub venue: Option<PathBuf>,
    /// Daily price history (a folder of `COIN-USDT.binance.daily.csv` files, as
    /// ../shared/data/prices).
    #[arg(long, value_name = "DIR")]
    pub history: PathBuf,
    /// The history's last row is a complete day (by default it is dropped: the shared files end
    /// with a partial day).
    #[arg(long)]
    pub history_complete: bool,
    /// Underlyings (comma-separated; by default every one the venue scales).
    #[arg(long, value_delimiter = ',')]
    pub underlying: Vec<String>,
    /// First close to write a range for (`2026-01-01`; by default the last day only).
    #[arg(long, value_name = "DATE")]
    pub from: Option<Date>,
    /// Last close to write a range for (by default the history's last complete day).
    #[arg(long, value_name = "DATE")]
    pub to: Option<Date>,
    /// Sequence number of the first event written.
    #[arg(long, default_value_t = 1)]
    pub seq: u64,
}

/// `solvent forecast`: the `scenario_range` events of the venue's scaled underlyings, one per
/// underlying and close, as EVENTS.jsonl lines stamped at the close (00:00 UTC of the next
/// day: the Binance daily candle closes then). The same computation as `solvent margin
/// --history`: an engine fed these events margins as that report does.
///
/// # Errors
/// A venue that scales nothing (or not a named underlying), an unreadable or too short history,
/// dates outside it.
pub fn forecast(args: &ForecastArgs, venue: &Venue) -> Result<String> {
    let scaled: Vec<String> = venue
        .portfolio_margin
        .as_ref()
        .map(|pm| pm.vol_scaled.keys().cloned().collect())
        .unwrap_or_default();
    let names = if args.underlying.is_empty() {
        scaled.clone()
    } else {
        args.underlying.clone()
    };
    if names.is_empty() {
        bail!("--venue: the venue scales no underlying's range ([portfolio_margin.vol_scaled])");
    }
    if let Some(name) = names.iter().find(|n| !scaled.contains(n)) {
        bail!(
            "--underlying: the venue does not scale {name}'s range (no [portfolio_margin.vol_scaled.{name}])"
        );
    }
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        bail!("--from: {from} is after --to {to}");
    }
    let mut days: Vec<RangeInForce> = Vec::new();
    for name in &names {
        // Each underlying from its own file, as `margin --history` reads an account holding it
        // alone.
        let prices = crate::read_price_history(
            &args.history,
            std::slice::from_ref(name),
            !args.history_complete,
        )?;
        let Some(path) = path_of(venue, &prices, name)? else {
            continue;
        };
        let last = path
            .last()
            .map(|d| d.as_of)
            .ok_or_else(|| anyhow!("--history: no forecast for {name}"))?;
        let to = args.to.unwrap_or(last);
        let from = args.from.unwrap_or(to);
        let chosen: Vec<RangeInForce> = path
            .iter()
            .filter(|d| d.as_of >= from && d.as_of <= to)
            .filter_map(|d| in_force(venue, name, d))
            .collect();
        if chosen.is_empty() {
            bail!(
                "--from/--to: no forecast of {name} between {from} and {to} (the history's forecasts run from {} to {last})",
                path.first().map_or(last, |d| d.as_of)
            );
        }
        days.extend(chosen);
    }
    // By close, then in the venue's order of underlyings.
    days.sort_by_key(|d| d.as_of);
    let mut out = String::new();
    for (number, day) in days.into_iter().enumerate() {
        let close = day
            .as_of
            .tomorrow()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
            .map_err(|e| anyhow!("{}: {e}", day.as_of))?
            .timestamp();
        let envelope = Envelope {
            seq: args.seq + number as u64,
            ts: close,
            event: Event::ScenarioRange(ScenarioRange {
                underlying: day.underlying,
                as_of: day.as_of,
                model: day.model,
                control: day.control,
                sigma_daily: day.sigma_daily,
                base: day.base,
                range: day.range,
                bound: day.bound,
            }),
        };
        out.push_str(&to_line(&envelope));
        out.push('\n');
    }
    Ok(out)
}

/// The report's section: one row per scaled underlying.
#[must_use]
pub fn render(ranges: &[ScaledRange], layout: Layout) -> String {
    if ranges.is_empty() {
        return String::new();
    }
    let mut grid = Grid::new(vec![
        Column::new("underlying", Kind::Label),
        Column::new("as of", Kind::Label),
        Column::new("model", Kind::Label),
        Column::new("daily vol forecast", Kind::Number),
        Column::new("k x vol over period", Kind::Number),
        Column::new("range", Kind::Number),
        Column::new("static range", Kind::Number),
        Column::new("control", Kind::Label),
        Column::new("bound by", Kind::Label),
    ]);
    for r in ranges {
        grid.row(vec![
            r.underlying.clone(),
            r.as_of.to_string(),
            r.model.as_str().to_owned(),
            format!("{}%", float(r.sigma_daily * 100.0, 2)),
            format!("{}%", float(r.base * 100.0, 2)),
            format!("{}%", float(r.range * 100.0, 2)),
            format!("{}%", float(r.static_range * 100.0, 2)),
            r.control.as_str().to_owned(),
            r.bound.describe().to_owned(),
        ]);
    }
    format!(
        "\nVolatility-scaled ranges (the grid's moves and volatility shocks scaled by range / static range)\n{}\n",
        grid.render(layout)
    )
}
