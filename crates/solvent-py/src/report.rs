//! The margin report as Python objects: figures as `decimal.Decimal`, ratios as `float`, the
//! waterfall's components with their details, one object per position; `to_dict()` gives the
//! whole report as `solvent margin --json` prints it (money as `Decimal`), `to_json()` the very
//! text.

use std::sync::Arc;

use pyo3::prelude::*;
use rust_decimal::Decimal;
use solvent_risk::report::{
    Component as CoreComponent, MarginReport as CoreReport, PositionReport as CorePosition,
};
use solvent_risk::whatif::WhatIf as CoreWhatIf;

use crate::convert::serialize_to_python;
use crate::errors;

/// The serde name of a unit enum (`"cross"`, `"index"`).
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The margin report of one account (DESIGN.md 6.6). Account-level figures describe the cross
/// pool; isolated positions carry their own. Amounts are in `settlement_asset`, rounded toward
/// the venue.
#[pyclass(frozen, module = "solvent._solvent")]
pub struct MarginReport {
    pub(crate) inner: Arc<CoreReport>,
}

impl MarginReport {
    pub(crate) fn new(report: CoreReport) -> Self {
        Self {
            inner: Arc::new(report),
        }
    }
}

#[pymethods]
impl MarginReport {
    /// Account id.
    #[getter]
    fn account(&self) -> &str {
        &self.inner.account
    }
    /// `"cross"` or `"portfolio"`.
    #[getter]
    fn mode(&self) -> String {
        serde_name(&self.inner.mode)
    }
    /// The asset every amount is expressed in.
    #[getter]
    fn settlement_asset(&self) -> &str {
        &self.inner.settlement_asset
    }
    /// The market snapshot's instant (RFC 3339).
    #[getter]
    fn timestamp(&self) -> String {
        self.inner.timestamp.to_string()
    }
    /// Collateral value + unrealised P&L + option value (cross pool), rounded down.
    #[getter]
    fn equity(&self) -> Decimal {
        self.inner.equity.value()
    }
    /// Collateral after haircut tiers, loans at full value.
    #[getter]
    fn collateral_value(&self) -> Decimal {
        self.inner.collateral_value.value()
    }
    /// Unrealised P&L of cross perpetuals and futures.
    #[getter]
    fn unrealized_pnl(&self) -> Decimal {
        self.inner.unrealized_pnl.value()
    }
    /// Net market value of cross options.
    #[getter]
    fn option_value(&self) -> Decimal {
        self.inner.option_value.value()
    }
    /// Initial margin of the cross pool, rounded up.
    #[getter]
    fn initial_margin(&self) -> Decimal {
        self.inner.initial_margin.value()
    }
    /// Maintenance margin of the cross pool, rounded up.
    #[getter]
    fn maintenance_margin(&self) -> Decimal {
        self.inner.maintenance_margin.value()
    }
    /// `equity - initial_margin`.
    #[getter]
    fn available(&self) -> Decimal {
        self.inner.available.value()
    }
    /// What may be withdrawn (no buffer policy).
    #[getter]
    fn withdrawable(&self) -> Decimal {
        self.inner.withdrawable.value()
    }
    /// The limit that binds `withdrawable`: `cash_like_collateral`, `wallet_maintenance_margin`
    /// (a venue whose wallet keeps the maintenance margin, Binance), `wallet_unrealised_loss` (a
    /// venue where each coin keeps its positions' unrealised loss, Bybit), `initial_margin` or
    /// `currency_initial_margin` (segregated portfolio margin), as the JSON names it.
    #[getter]
    fn withdrawable_limit(&self) -> &'static str {
        self.inner.withdrawable_limit.name()
    }
    /// `equity / maintenance_margin`; `None` when nothing requires margin.
    #[getter]
    fn health(&self) -> Option<f64> {
        self.inner.health
    }
    /// `healthy`, `margin_call`, `reduce_only`, `liquidating` or `bankrupt`.
    #[getter]
    fn state(&self) -> String {
        self.inner.state.to_string()
    }
    /// The waterfall: every amount that makes up equity and the requirements.
    #[getter]
    fn components(&self) -> Vec<Component> {
        self.inner
            .components
            .iter()
            .map(|component| Component {
                inner: component.clone(),
            })
            .collect()
    }
    /// One report per position, in the portfolio's order.
    #[getter]
    fn positions(&self) -> Vec<PositionReport> {
        self.inner
            .positions
            .iter()
            .map(|position| PositionReport {
                inner: position.clone(),
            })
            .collect()
    }
    /// Things to know that did not stop the computation.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }
    /// The report of the position in `instrument`, or `None`.
    fn position(&self, instrument: &str) -> Option<PositionReport> {
        self.inner
            .positions
            .iter()
            .find(|position| position.instrument == instrument)
            .map(|position| PositionReport {
                inner: position.clone(),
            })
    }
    /// The report as `solvent margin --json` prints it, money as `decimal.Decimal`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_python(py, self.inner.as_ref())
    }
    /// The text `solvent margin --json` prints (without its final newline), less the
    /// `liquidation_moves` the command adds after the report's fields.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(self.inner.as_ref()).map_err(errors::internal)
    }
    fn __repr__(&self) -> String {
        format!(
            "MarginReport(account={:?}, equity={}, initial_margin={}, maintenance_margin={}, health={}, state={})",
            self.inner.account.as_str(),
            self.inner.equity,
            self.inner.initial_margin,
            self.inner.maintenance_margin,
            self.inner
                .health
                .map_or_else(|| "None".to_owned(), |health| format!("{health:.4}")),
            self.inner.state
        )
    }
}

/// One line of the margin waterfall.
#[pyclass(frozen, module = "solvent._solvent")]
pub struct Component {
    inner: CoreComponent,
}

#[pymethods]
impl Component {
    /// `collateral:BTC`, `upnl:BTCUSDT`, `initial_margin:BTCUSDT`, ...
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// In the report's settlement asset, rounded toward the venue.
    #[getter]
    fn amount(&self) -> Decimal {
        self.inner.amount.value()
    }
    /// The arithmetic behind the amount, in words.
    #[getter]
    fn detail(&self) -> &str {
        &self.inner.detail
    }
    /// `{"name", "amount", "detail"}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_python(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Component({:?}, {}, {:?})",
            self.inner.name, self.inner.amount, self.inner.detail
        )
    }
}

/// One position of a margin report.
#[pyclass(frozen, module = "solvent._solvent")]
pub struct PositionReport {
    inner: CorePosition,
}

#[pymethods]
impl PositionReport {
    /// Instrument name.
    #[getter]
    fn instrument(&self) -> &str {
        &self.inner.instrument
    }
    /// Signed size.
    #[getter]
    fn size(&self) -> Decimal {
        self.inner.size.value()
    }
    /// The mark used.
    #[getter]
    fn mark_price(&self) -> Decimal {
        self.inner.mark_price.value()
    }
    /// Where the mark came from (`given`, `index`, `model`, ...).
    #[getter]
    fn mark_source(&self) -> String {
        serde_name(&self.inner.mark_source)
    }
    /// Settlement asset of the instrument.
    #[getter]
    fn settlement(&self) -> &str {
        &self.inner.settlement
    }
    /// Signed notional (perpetuals, futures) or premium value (options).
    #[getter]
    fn value(&self) -> Decimal {
        self.inner.value.value()
    }
    /// Unrealised P&L.
    #[getter]
    fn upnl(&self) -> Decimal {
        self.inner.upnl.value()
    }
    /// Initial margin (rounded up).
    #[getter]
    fn initial_margin(&self) -> Decimal {
        self.inner.initial_margin.value()
    }
    /// Maintenance margin (rounded up).
    #[getter]
    fn maintenance_margin(&self) -> Decimal {
        self.inner.maintenance_margin.value()
    }
    /// Share of its pool's initial margin.
    #[getter]
    fn im_share(&self) -> f64 {
        self.inner.im_share
    }
    /// The level at which the pool's health reaches 1, all else fixed: this instrument's price,
    /// or for an option its underlying's index (see `liquidation_price_of`).
    #[getter]
    fn liquidation_price(&self) -> Option<Decimal> {
        self.inner.liquidation_price.map(|price| price.value())
    }
    /// What `liquidation_price` is a level of: `"mark"` (the instrument's own price) or
    /// `"index"` (an option's underlying index).
    #[getter]
    fn liquidation_price_of(&self) -> &'static str {
        match self.inner.liquidation_price_of {
            solvent_risk::report::LiquidationLevel::Mark => "mark",
            solvent_risk::report::LiquidationLevel::Index => "index",
        }
    }
    /// Distance to the liquidation level, in percent of the level now.
    #[getter]
    fn distance_to_liquidation_pct(&self) -> Option<f64> {
        self.inner.distance_to_liquidation_pct
    }
    /// The same distance in one-day standard deviations of the underlying.
    #[getter]
    fn distance_to_liquidation_sd(&self) -> Option<f64> {
        self.inner.distance_to_liquidation_sd
    }
    /// Whether the position has its own isolated margin.
    #[getter]
    fn isolated(&self) -> bool {
        self.inner.isolated
    }
    /// Isolated positions: margin plus unrealised P&L.
    #[getter]
    fn isolated_equity(&self) -> Option<Decimal> {
        self.inner.isolated_equity.map(|amount| amount.value())
    }
    /// Isolated positions: equity / maintenance margin.
    #[getter]
    fn isolated_health(&self) -> Option<f64> {
        self.inner.isolated_health
    }
    /// How the venue's rule produced the requirement (`{"rule": "tiered", ...}`).
    #[getter]
    fn margin_basis<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_python(py, &self.inner.margin_basis)
    }
    /// The position's part of `solvent margin --json`, money as `decimal.Decimal`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_python(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "PositionReport({:?}, size={}, initial_margin={}, maintenance_margin={}, liquidation_price={})",
            self.inner.instrument.as_str(),
            self.inner.size,
            self.inner.initial_margin,
            self.inner.maintenance_margin,
            self.inner
                .liquidation_price
                .map_or_else(|| "None".to_owned(), |price| price.to_string())
        )
    }
}

/// The report before and after trades, and whether the venue would accept them (the one
/// pre-trade rule the engine applies). True in a boolean context when accepted.
#[pyclass(frozen, module = "solvent._solvent")]
pub struct WhatIf {
    inner: CoreWhatIf,
}

impl WhatIf {
    pub(crate) fn new(inner: CoreWhatIf) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl WhatIf {
    /// The report before the trades.
    #[getter]
    fn before(&self) -> MarginReport {
        MarginReport::new(self.inner.before.clone())
    }
    /// The report after the trades.
    #[getter]
    fn after(&self) -> MarginReport {
        MarginReport::new(self.inner.after.clone())
    }
    /// Whether the venue would accept the trades.
    #[getter]
    fn accepted(&self) -> bool {
        self.inner.accepted
    }
    /// The named refusal (`insufficient_initial_margin`, ...), `None` when accepted.
    #[getter]
    fn refusal(&self) -> Option<&'static str> {
        self.inner.refusal
    }
    /// Why, with the figures.
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }
    fn __bool__(&self) -> bool {
        self.inner.accepted
    }
    /// As `solvent whatif --json` prints it, money as `decimal.Decimal`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_python(py, &self.inner)
    }
    /// The text `solvent whatif --json` prints (without its final newline).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.inner).map_err(errors::internal)
    }
    fn __repr__(&self) -> String {
        format!(
            "WhatIf(accepted={}, refusal={:?}, reason={:?})",
            if self.inner.accepted { "True" } else { "False" },
            self.inner.refusal,
            self.inner.reason
        )
    }
}
