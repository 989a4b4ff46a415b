//! Volatility-scaled scenario ranges in the engine (DESIGN.md 6.5; docs/vol-scaled-ranges.md).
//!
//! The forecast enters as data: a `scenario_range` event carries the range the edge computed
//! from the daily closes (`solvent forecast`, the same computation as `solvent margin
//! --history`). The engine reads no history and fits nothing: replaying the journal gives the
//! same ranges whatever files the machine holds, and the journal alone says which range margined
//! each account at each event.
//!
//! The range in force is state: `scenario_ranges` (the event's forecast with the static range
//! it replaced) and `static_grids` (the venue's own grid of each scaled underlying, which the
//! next range is scaled from). The installed venue carries the scaled grid, so everything that
//! values a portfolio account (the report, the shared scenario books, the bands, the service's
//! view) reads it with no other change, and its digest, which keys the books and the surfaces,
//! changes with the range. A venue update keeps a range whose underlying the new venue still
//! scales with the same model and control, under a floor at or below it; any other is dropped
//! (the static grid again, with the report's warning) until the next `scenario_range` event.
//! Listing an instrument installs the venue as it stands (its grids already scaled).
//!
//! An underlying the venue scales without a range in force is margined on the static grid, and
//! the account's report says so in a warning (see [`Engine::margin_report`], [`scaling_warnings`]): refusing would stop
//! a venue from margining anything between its start and its first forecast.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::event::ScenarioRange;
use solvent_core::portfolio_margin::UnderlyingParams;
use solvent_risk::vol_scaled::{
    RangeInForce, scaled_exposures, scaled_grid, static_grid_warning, static_range,
};

impl Engine {
    /// A `scenario_range` event: the range is checked against the venue's parameters for the
    /// underlying, installed, and every portfolio-mode account exposed to the underlying is
    /// examined under it (a rise can take one into margin call at this event).
    pub(super) fn scenario_range(&mut self, e: &ScenarioRange) -> Result<Vec<Effect>, Rejection> {
        let underlying = e.underlying.as_str();
        let pm = self.venue.portfolio_margin.as_ref().ok_or_else(|| {
            reject(
                RejectReason::InvalidInput,
                "the venue has no portfolio margin to scale",
            )
        })?;
        let spec = pm.vol_scaled.get(underlying).ok_or_else(|| {
            reject(
                RejectReason::InvalidInput,
                format!(
                    "underlying: the venue does not scale {underlying}'s range (no [portfolio_margin.vol_scaled.{underlying}])"
                ),
            )
        })?;
        if spec.model.name() != e.model {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "model: the venue forecasts {underlying} with {}, the event with {}",
                    spec.model.name().as_str(),
                    e.model.as_str()
                ),
            ));
        }
        if spec.control.name() != e.control {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "control: the venue controls {underlying}'s range with {}, the event with {}",
                    spec.control.name().as_str(),
                    e.control.as_str()
                ),
            ));
        }
        if e.range < spec.floor {
            return Err(reject(
                RejectReason::OutOfRange,
                format!(
                    "range: {} is below the venue's floor {} for {underlying}",
                    e.range, spec.floor
                ),
            ));
        }
        if let Some(current) = self.scenario_ranges.get(underlying)
            && e.as_of < current.as_of
        {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "as_of: {} is before the forecast in force for {underlying} ({})",
                    e.as_of, current.as_of
                ),
            ));
        }
        let grid = match self.static_grids.get(underlying) {
            Some(grid) => grid.clone(),
            None => pm.underlyings.get(underlying).cloned().ok_or_else(|| {
                reject(
                    RejectReason::InvalidInput,
                    format!(
                        "underlying: the venue has no grid for {underlying} ([portfolio_margin.underlyings.{underlying}])"
                    ),
                )
            })?,
        };
        let in_force = RangeInForce {
            underlying: underlying.to_owned(),
            as_of: e.as_of,
            model: e.model,
            sigma_daily: e.sigma_daily,
            base: e.base,
            range: e.range,
            static_range: static_range(&grid),
            control: e.control,
            bound: e.bound,
        };
        let mut venue = self.venue.clone();
        if let Some(pm) = venue.portfolio_margin.as_mut() {
            pm.underlyings
                .insert(underlying.to_owned(), scaled_grid(&grid, e.range));
        }
        self.static_grids.insert(underlying.to_owned(), grid);
        self.scenario_ranges.insert(underlying.to_owned(), in_force);
        self.set_installed_venue(venue);
        let mut effects = Vec::new();
        for id in self.portfolio_holders(underlying) {
            self.evaluate(&id, Figures::Unreported, &mut effects);
        }
        Ok(effects)
    }

    /// The ids of the portfolio-mode accounts exposed to `underlying` (by positions or
    /// collateral), in slot order.
    fn portfolio_holders(&self, underlying: &str) -> Vec<String> {
        self.holders
            .get(underlying)
            .into_iter()
            .flatten()
            .filter_map(|slot| self.accounts.by_slot(*slot))
            .filter(|account| account.mode == MarginMode::Portfolio)
            .map(|account| account.id.to_string())
            .collect()
    }

    /// `venue` as given (at start or by `update_venue`), with the ranges in force that it still
    /// admits applied to its grids (see the module documentation); the others are dropped.
    pub(super) fn scale_given_venue(&mut self, mut venue: Venue) -> Venue {
        self.static_grids.clear();
        let ranges = std::mem::take(&mut self.scenario_ranges);
        let Some(pm) = venue.portfolio_margin.as_mut() else {
            return venue;
        };
        for (underlying, mut range) in ranges {
            let admitted = pm.vol_scaled.get(&underlying).is_some_and(|spec| {
                spec.model.name() == range.model
                    && spec.control.name() == range.control
                    && spec.floor <= range.range
            });
            let Some(grid) = pm.underlyings.get(&underlying).cloned() else {
                continue;
            };
            if !admitted {
                continue;
            }
            range.static_range = static_range(&grid);
            pm.underlyings
                .insert(underlying.clone(), scaled_grid(&grid, range.range));
            self.static_grids.insert(underlying.clone(), grid);
            self.scenario_ranges.insert(underlying, range);
        }
        venue
    }

    /// The volatility-scaled ranges in force, by underlying.
    #[must_use]
    pub fn scenario_ranges(&self) -> &BTreeMap<String, RangeInForce> {
        &self.scenario_ranges
    }

    /// The venue's own (static) grid of each underlying whose grid a range in force scales.
    #[must_use]
    pub fn static_grids(&self) -> &BTreeMap<String, UnderlyingParams> {
        &self.static_grids
    }

    /// Account `id`'s margin report, with a warning for each underlying it is exposed to whose
    /// range the venue scales but which has no range in force (margined on the static grid).
    /// `None` for an unknown account or one the model cannot value.
    #[must_use]
    pub fn margin_report(&self, id: &str) -> Option<MarginReport> {
        let account = self.accounts.get(id)?;
        let portfolio = self.portfolio_of(account).ok()?;
        let mut report = self.report_of(&portfolio).ok()?;
        report.warnings.extend(scaling_warnings(
            &self.venue,
            &self.scenario_ranges,
            &portfolio,
        ));
        Some(report)
    }

    /// The ranges in force for the scaled underlyings account `id` is exposed to (a
    /// portfolio-mode account; none for another mode), in the venue's order.
    #[must_use]
    pub fn ranges_of(&self, id: &str) -> Vec<RangeInForce> {
        self.portfolio(id).map_or_else(Vec::new, |portfolio| {
            ranges_of(&self.venue, &self.scenario_ranges, &portfolio)
        })
    }
}

/// The ranges in `in_force` of the scaled underlyings `portfolio` is exposed to (what the
/// engine's and the service's reports show).
#[must_use]
pub fn ranges_of(
    venue: &Venue,
    in_force: &BTreeMap<String, RangeInForce>,
    portfolio: &Portfolio,
) -> Vec<RangeInForce> {
    scaled_exposures(venue, portfolio)
        .into_iter()
        .filter_map(|underlying| in_force.get(&underlying).cloned())
        .collect()
}

/// A warning for each scaled underlying `portfolio` is exposed to that has no range in
/// `in_force` (margined on the static grid).
#[must_use]
pub fn scaling_warnings(
    venue: &Venue,
    in_force: &BTreeMap<String, RangeInForce>,
    portfolio: &Portfolio,
) -> Vec<String> {
    scaled_exposures(venue, portfolio)
        .into_iter()
        .filter(|underlying| !in_force.contains_key(underlying))
        .map(|underlying| {
            let range = venue
                .portfolio_margin
                .as_ref()
                .and_then(|pm| pm.underlyings.get(&underlying))
                .map_or(0.0, static_range);
            static_grid_warning(&underlying, range)
        })
        .collect()
}
