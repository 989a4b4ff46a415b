//! Volatility-scaled ranges at the CLI edge: when the venue scales an underlying's grid
//! (`[portfolio_margin.vol_scaled.UNDERLYING]`), the forecast is made from the `--history` the
//! user gives, the grid is replaced by the scaled one before any margin is computed, and the
//! report shows the forecast, the range and what bound it.

use anyhow::{Result, anyhow};
use jiff::civil::Date;
use serde::Serialize;
use solvent_core::venue::Venue;
use solvent_risk::history::PriceHistory;
use solvent_risk::vol_scaled::{RangeBound, range_path, scaled_grid, static_range};

use crate::display::{Column, Grid, Kind, Layout, float};

/// One underlying's scaled range as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ScaledRange {
    /// The underlying.
    pub underlying: String,
    /// The close the forecast was made at (the history's last complete day).
    pub as_of: Date,
    /// The model (`ewma` or `garch`).
    pub model: &'static str,
    /// Daily volatility forecast (fraction).
    pub sigma_daily: f64,
    /// `k x sigma x sqrt(margin period)`.
    pub base: f64,
    /// The range in force (fraction of the price).
    pub range: f64,
    /// The venue's static range it replaces.
    pub static_range: f64,
    /// The anti-procyclicality control.
    pub control: &'static str,
    /// What bound the range.
    pub bound: RangeBound,
}

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

/// Replaces the grid of every underlying of `names` by its scaled grid, from `prices`.
///
/// # Errors
/// An underlying missing from the history; the forecast's errors (too short a history).
pub fn apply(
    venue: &mut Venue,
    prices: &PriceHistory,
    names: &[String],
) -> Result<Vec<ScaledRange>> {
    let Some(pm) = venue.portfolio_margin.as_mut() else {
        return Ok(Vec::new());
    };
    let mut shown = Vec::new();
    for name in names {
        let (Some(spec), Some(grid)) = (pm.vol_scaled.get(name), pm.underlyings.get(name)) else {
            continue;
        };
        let u = prices.index_of(name)?;
        let path = range_path(prices.dates(), prices.log_returns(u), spec)
            .map_err(|e| anyhow!("--history: portfolio_margin.vol_scaled.{name}: {e}"))?;
        let today = path
            .last()
            .ok_or_else(|| anyhow!("--history: no forecast for {name}"))?;
        let model = match spec.model {
            solvent_core::vol_scaled::VolModel::Ewma { .. } => "ewma",
            solvent_core::vol_scaled::VolModel::Garch { .. } => "garch",
        };
        shown.push(ScaledRange {
            underlying: name.clone(),
            as_of: today.as_of,
            model,
            sigma_daily: today.sigma_daily,
            base: today.base,
            range: today.range,
            static_range: static_range(grid),
            control: spec.control.describe(),
            bound: today.bound,
        });
        let scaled = scaled_grid(grid, today.range);
        pm.underlyings.insert(name.clone(), scaled);
    }
    Ok(shown)
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
        Column::new("k x vol x sqrt(period)", Kind::Number),
        Column::new("range", Kind::Number),
        Column::new("static range", Kind::Number),
        Column::new("control", Kind::Label),
        Column::new("bound by", Kind::Label),
    ]);
    for r in ranges {
        grid.row(vec![
            r.underlying.clone(),
            r.as_of.to_string(),
            r.model.to_owned(),
            format!("{}%", float(r.sigma_daily * 100.0, 2)),
            format!("{}%", float(r.base * 100.0, 2)),
            format!("{}%", float(r.range * 100.0, 2)),
            format!("{}%", float(r.static_range * 100.0, 2)),
            r.control.to_owned(),
            r.bound.describe().to_owned(),
        ]);
    }
    format!(
        "\nVolatility-scaled ranges (the grid's moves and volatility shocks scaled by range / static range)\n{}\n",
        grid.render(layout)
    )
}
