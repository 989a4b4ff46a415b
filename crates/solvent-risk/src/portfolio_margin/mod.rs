//! Portfolio (risk-based) margin (DESIGN.md 6.5).
//!
//! For each underlying, every position on it (spot balances, perpetuals, futures, options) is
//! revalued under a grid of price moves and volatility shocks (Deribit's risk matrix) plus extended
//! moves weighted by a dampener (Paradex). The worst weighted loss is the underlying's scan risk;
//! contingency charges floor it or add to it; a correlation matrix gives a bounded offset between
//! underlyings; a liquidity and concentration add-on prices closing the net delta (SPAN 2).
//!
//! The work is split so that a population of accounts is cheap: a [`ScenarioBook`] revalues each
//! listed instrument once per scenario (`unit P&L`, per unit of exposure); an account's scenario
//! P&L is then a sum of `exposure x unit P&L` over its positions.
//!
//! For the lean path the book also keeps each underlying's unit P&L as one contiguous matrix
//! (instruments x scenarios, rows padded to whole SIMD lanes), and an account can be prepared once
//! ([`PreparedExposures`]: grouped by underlying, in book order) and reused across price updates,
//! so [`maintenance_margin_prepared`] is a straight sum of rows per underlying.
//!
//! One concern per file: `grid` (the scenarios), `book` and `revaluation` (the scenario book and
//! how an instrument is revalued), `charges` (one underlying's scan and contingencies),
//! `currency` (conversion to the report currency), `combine` (the cross-underlying offset),
//! `attribution` (the full path, explained and attributed), `shortfall` (historical ES),
//! `packed` and `lean` (the lean path for populations), `shared` (books shared by the accounts
//! valued at one market), `moved` (one underlying moved alone, for the liquidation-move search).

mod attribution;
mod book;
mod charges;
mod combine;
mod currency;
mod grid;
mod lean;
mod moved;
mod packed;
mod revaluation;
mod shared;
mod shortfall;
#[cfg(test)]
mod tests;

pub use self::attribution::{PortfolioRisk, UnderlyingRisk, portfolio_risk};
pub use self::book::{
    Exposure, InstrumentRisk, ScenarioBook, UnderlyingBook, exposure_of, exposures,
};
pub(crate) use self::charges::{BookPosition, single_underlying_margin};
pub use self::combine::Correlations;
pub use self::currency::ReportCurrency;
pub use self::grid::{Scenario, scenarios, shocked_volatility, vol_shock_scale};
pub use self::lean::{PreparedExposures, Scratch, maintenance_margin, maintenance_margin_prepared};
pub use self::moved::{BookMark, MovedBook};
pub(crate) use self::revaluation::roll_per_unit;
pub(crate) use self::shared::sides_of;
pub use self::shared::{ScenarioSides, SharedBooks, SharedMargin, shared_margin};
pub use self::shortfall::ExpectedShortfallFigures;

// Every file of the module reads the others' items and the imports below through `super::*`.
use self::{
    book::*, charges::*, combine::*, grid::*, lean::*, packed::*, revaluation::*, shortfall::*,
};

use indexmap::IndexMap;
use rayon::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::portfolio::Portfolio;
pub use solvent_core::portfolio_margin::VolShock;
use solvent_core::portfolio_margin::{
    Combine, PortfolioMarginParams, UnderlyingParams, VolShockMode,
};
use solvent_pricing::black76::{
    Black76, GreeksBatch, OwnedColumns, price_and_greeks_checked, prices_checked,
};
use solvent_pricing::implied::implied_volatility;

use crate::error::RiskError;
use crate::valuation::{HistoricalScenarios, MarketView, option_type};

/// Days in the year of times to expiry (ACT/365).
const DAYS_PER_YEAR: f64 = 365.0;

/// A decimal as `f64` for the risk math; NaN where it has none, so a figure built on it fails
/// loudly rather than counting as zero.
fn f64_of(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// The error of an exposure that points outside the book (an account prepared against another
/// book).
fn outside() -> RiskError {
    RiskError::Unsupported {
        path: "portfolio margin".to_owned(),
        problem: "an exposure refers to an instrument outside the scenario book".to_owned(),
    }
}
