//! The inputs of every computation, read once and reused: the venue (shipped by name or from a
//! file), the portfolio (validated against that venue) and the market snapshot.

use std::path::Path;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyType;
use solvent_core::market::Market as CoreMarket;
use solvent_core::portfolio::Portfolio as CorePortfolio;
use solvent_core::venue::Venue as CoreVenue;
use solvent_risk::MarketView;
use solvent_risk::checks;
use solvent_risk::valuation::Surfaces;

use crate::convert;
use crate::errors::{self, Kind, Problem, raise};

use solvent_core::shipped::{SHIPPED, shipped};

/// A venue's parameters: assets and haircuts, instruments and their margin rules, thresholds.
///
/// `Venue.load("bybit-linear")` takes a shipped venue by name (`Venue.shipped()` lists them),
/// `Venue.load("path/to/VENUE.toml")` a file, `Venue.from_toml(text)` a string.
#[pyclass(frozen, module = "solvent._solvent")]
pub struct Venue {
    pub(crate) inner: Arc<CoreVenue>,
    /// Where it came from, for messages.
    pub(crate) origin: String,
}

#[pymethods]
impl Venue {
    /// The shipped venue `name` (`"bybit-linear"`), else the venue file at that path.
    #[classmethod]
    fn load(_class: &Bound<'_, PyType>, name_or_path: &Bound<'_, PyAny>) -> PyResult<Self> {
        let path: std::path::PathBuf = name_or_path.extract()?;
        if path.exists() {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|error| {
                raise(
                    Kind::Input,
                    Problem {
                        origin: Some(origin.clone()),
                        field: None,
                        problem: format!("cannot read the file: {error}"),
                        index: None,
                    },
                )
            })?;
            return Self::parse(&origin, &text);
        }
        let name = path.display().to_string();
        if Path::new(&name).components().count() == 1
            && let Some(text) = shipped(&name)
        {
            return Self::parse(&format!("venues/{name} (built in)"), text);
        }
        Err(raise(
            Kind::VenueNotFound,
            Problem {
                origin: Some(name),
                field: None,
                problem: format!(
                    "no such file and no shipped venue of that name; shipped: {}",
                    shipped_names().join(", ")
                ),
                index: None,
            },
        ))
    }

    /// A venue from the text of a venue file (`origin` names it in messages).
    #[classmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn from_toml(_class: &Bound<'_, PyType>, text: &str, origin: &str) -> PyResult<Self> {
        Self::parse(origin, text)
    }

    /// The names `Venue.load` takes without a path.
    #[staticmethod]
    fn shipped() -> Vec<&'static str> {
        shipped_names()
    }

    /// The venue's own name (its `name` field).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where the venue was read from.
    #[getter]
    fn origin(&self) -> &str {
        &self.origin
    }

    /// The names of the instruments the venue lists.
    fn instruments(&self) -> Vec<String> {
        self.inner
            .listed_instruments()
            .map(|instrument| instrument.name.to_string())
            .collect()
    }

    /// A portfolio (a dict in `PORTFOLIO.json`'s shape, or a path) validated against this
    /// venue, to reuse across calls.
    fn portfolio(&self, portfolio: &Bound<'_, PyAny>) -> PyResult<Portfolio> {
        Portfolio::read(self, portfolio, "portfolio")
    }

    /// The margin report of an account: `portfolio` a dict in `PORTFOLIO.json`'s shape, a path,
    /// or a `Portfolio`; `market` likewise (`MARKET.json`), or `None` for the portfolio's own.
    /// `detail="figures"` leaves out the components and the liquidation prices (faster).
    #[pyo3(signature = (portfolio, market = None, detail = "full", *, allow_far_marks = false))]
    fn margin(
        &self,
        py: Python<'_>,
        portfolio: &Bound<'_, PyAny>,
        market: Option<&Bound<'_, PyAny>>,
        detail: &str,
        allow_far_marks: bool,
    ) -> PyResult<crate::report::MarginReport> {
        let detail = crate::margin::detail(detail)?;
        crate::margin::margin(py, self, portfolio, market, detail, allow_far_marks)
    }

    /// The margin reports of many accounts at one market (each at its own when `market` is
    /// `None`), computed in parallel with the GIL released.
    #[pyo3(signature = (portfolios, market = None, detail = "full", *, allow_far_marks = false))]
    fn margin_many(
        &self,
        py: Python<'_>,
        portfolios: &Bound<'_, PyAny>,
        market: Option<&Bound<'_, PyAny>>,
        detail: &str,
        allow_far_marks: bool,
    ) -> PyResult<Vec<crate::report::MarginReport>> {
        let detail = crate::margin::detail(detail)?;
        crate::margin::margin_many(py, self, portfolios, market, detail, allow_far_marks)
    }

    /// The price of `instrument` at which the position's pool reaches health 1, all else fixed
    /// (`None` when no price does).
    #[pyo3(signature = (portfolio, instrument, market = None, *, allow_far_marks = false))]
    fn liquidation_price(
        &self,
        py: Python<'_>,
        portfolio: &Bound<'_, PyAny>,
        instrument: &str,
        market: Option<&Bound<'_, PyAny>>,
        allow_far_marks: bool,
    ) -> PyResult<Option<rust_decimal::Decimal>> {
        crate::margin::liquidation_price(py, self, portfolio, instrument, market, allow_far_marks)
    }

    /// The report before and after `trades` (`"BTCUSDT:0.5@60000,fee=6"` or
    /// `{"instrument", "size", "price", "fee"}`, or a list of them) and whether the venue
    /// would accept them.
    #[pyo3(signature = (portfolio, trades, market = None, *, allow_far_marks = false))]
    fn whatif(
        &self,
        py: Python<'_>,
        portfolio: &Bound<'_, PyAny>,
        trades: &Bound<'_, PyAny>,
        market: Option<&Bound<'_, PyAny>>,
        allow_far_marks: bool,
    ) -> PyResult<crate::report::WhatIf> {
        crate::margin::whatif(py, self, portfolio, trades, market, allow_far_marks)
    }

    /// Excess, withdrawable, the buffer and the recommended moves to isolated positions, as
    /// `solvent allocate --json` prints them.
    #[pyo3(signature = (portfolio, market = None, buffer = "none", trigger = 1.2, target = 1.5, *, allow_far_marks = false))]
    #[allow(
        clippy::too_many_arguments,
        reason = "each is one of the Python method's keyword arguments"
    )]
    fn allocate<'py>(
        &self,
        py: Python<'py>,
        portfolio: &Bound<'py, PyAny>,
        market: Option<&Bound<'py, PyAny>>,
        buffer: &str,
        trigger: f64,
        target: f64,
        allow_far_marks: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::margin::allocate(
            py,
            self,
            portfolio,
            market,
            (buffer, trigger, target),
            allow_far_marks,
        )
    }

    /// P&L, equity and margin under shocks (`"grid"`, `"historical"`, a SCENARIOS.json path,
    /// or its dict / list of scenarios), and optionally reverse stress, as `solvent stress
    /// --json` prints them.
    #[pyo3(signature = (portfolio, market = None, scenarios = None, reverse = false, *, allow_far_marks = false))]
    fn stress<'py>(
        &self,
        py: Python<'py>,
        portfolio: &Bound<'py, PyAny>,
        market: Option<&Bound<'py, PyAny>>,
        scenarios: Option<&Bound<'py, PyAny>>,
        reverse: bool,
        allow_far_marks: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let grid = pyo3::types::PyString::new(py, "grid");
        let scenarios = scenarios.unwrap_or(grid.as_any());
        crate::margin::stress(
            py,
            self,
            portfolio,
            market,
            (scenarios, reverse),
            allow_far_marks,
        )
    }

    fn __repr__(&self) -> String {
        format!("Venue({:?}, origin={:?})", self.inner.name, self.origin)
    }
}

fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

impl Venue {
    fn parse(origin: &str, text: &str) -> PyResult<Self> {
        let venue = CoreVenue::from_toml(origin, text).map_err(|e| errors::input(&e))?;
        Ok(Self {
            inner: Arc::new(venue),
            origin: origin.to_owned(),
        })
    }
}

/// An account validated against a venue: every asset and instrument known, every size allowed.
/// Read it once with `venue.portfolio(...)` to margin it many times without reading it again.
#[pyclass(frozen, module = "solvent._solvent")]
pub struct Portfolio {
    pub(crate) inner: Arc<CorePortfolio>,
    pub(crate) venue: Arc<CoreVenue>,
    pub(crate) origin: String,
    /// The market inside the portfolio, if any.
    pub(crate) market: Option<Arc<Snapshot>>,
}

#[pymethods]
impl Portfolio {
    /// Account id.
    #[getter]
    fn account(&self) -> &str {
        &self.inner.account
    }

    /// The instruments of its positions, in order.
    fn instruments(&self) -> Vec<String> {
        self.inner
            .positions
            .iter()
            .map(|position| position.instrument.name.to_string())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Portfolio(account={:?}, positions={}, origin={:?})",
            self.inner.account.as_str(),
            self.inner.positions.len(),
            self.origin
        )
    }
}

impl Portfolio {
    /// Reads `value` (a `Portfolio` read for the same venue, a dict or a path); `origin` names
    /// a dict in messages.
    pub(crate) fn read(venue: &Venue, value: &Bound<'_, PyAny>, origin: &str) -> PyResult<Self> {
        if let Ok(read) = value.cast::<Portfolio>() {
            let read = read.get();
            if !Arc::ptr_eq(&read.venue, &venue.inner) {
                return Err(raise(
                    Kind::Input,
                    Problem {
                        origin: Some(read.origin.clone()),
                        field: None,
                        problem: format!(
                            "this portfolio was validated against venue {:?}; read it with venue.portfolio(...) of venue {:?}",
                            read.venue.name, venue.inner.name
                        ),
                        index: None,
                    },
                ));
            }
            return Ok(Self {
                inner: Arc::clone(&read.inner),
                venue: Arc::clone(&read.venue),
                origin: read.origin.clone(),
                market: read.market.clone(),
            });
        }
        let source = convert::source(value, origin)?;
        let (origin, text) = convert::text_of(source, origin)?;
        let portfolio = CorePortfolio::from_json(&origin, &text, &venue.inner)
            .map_err(|e| errors::input(&e))?;
        let market = portfolio
            .market
            .clone()
            .map(|market| Arc::new(Snapshot::new(market)));
        Ok(Self {
            inner: Arc::new(portfolio),
            venue: Arc::clone(&venue.inner),
            origin,
            market,
        })
    }
}

/// A market snapshot (`MARKET.json`'s shape): index and mark prices, volatility smiles, the
/// rate, open interest, and the instant they describe.
#[pyclass(frozen, module = "solvent._solvent")]
pub struct Market {
    pub(crate) inner: Arc<Snapshot>,
    pub(crate) origin: String,
}

/// A market snapshot with the volatility surfaces its smiles give under the venue last used with
/// it, built on first use: many calls at one snapshot build them once.
pub struct Snapshot {
    /// The market.
    pub market: CoreMarket,
    surfaces: Mutex<Option<(Arc<CoreVenue>, Arc<Surfaces>)>>,
}

impl Snapshot {
    /// A snapshot with no surfaces built yet.
    pub fn new(market: CoreMarket) -> Self {
        Self {
            market,
            surfaces: Mutex::new(None),
        }
    }

    /// The surfaces of this market under `venue` (built now unless they were for this venue).
    ///
    /// # Errors
    /// The smile the surface refuses.
    pub fn surfaces(
        &self,
        venue: &Arc<CoreVenue>,
    ) -> Result<Arc<Surfaces>, solvent_risk::RiskError> {
        let mut cached = self
            .surfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built_for, surfaces)) = cached.as_ref()
            && Arc::ptr_eq(built_for, venue)
        {
            return Ok(Arc::clone(surfaces));
        }
        let surfaces = Arc::new(solvent_risk::valuation::surfaces(venue, &self.market)?);
        *cached = Some((Arc::clone(venue), Arc::clone(&surfaces)));
        Ok(surfaces)
    }
}

#[pymethods]
impl Market {
    /// Reads a market from a dict in `MARKET.json`'s shape or from a path.
    #[new]
    fn new(market: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::read(market, "market")
    }

    /// The instant the snapshot describes (RFC 3339).
    #[getter]
    fn timestamp(&self) -> String {
        self.inner.market.timestamp.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Market(timestamp={:?}, origin={:?})",
            self.inner.market.timestamp.to_string(),
            self.origin
        )
    }
}

impl Market {
    pub(crate) fn read(value: &Bound<'_, PyAny>, origin: &str) -> PyResult<Self> {
        if let Ok(read) = value.cast::<Market>() {
            let read = read.get();
            return Ok(Self {
                inner: Arc::clone(&read.inner),
                origin: read.origin.clone(),
            });
        }
        let source = convert::source(value, origin)?;
        let (origin, text) = convert::text_of(source, origin)?;
        let market = CoreMarket::from_json(&origin, &text).map_err(|e| errors::input(&e))?;
        Ok(Self {
            inner: Arc::new(Snapshot::new(market)),
            origin,
        })
    }
}

/// A portfolio and the market to value it at, resolved: the given market, else the one inside
/// the portfolio.
pub(crate) struct Resolved {
    pub portfolio: Arc<CorePortfolio>,
    pub market: Arc<Snapshot>,
    pub portfolio_origin: String,
    /// Where market errors point: the origin and the prefix of paths inside it.
    pub market_origin: String,
    pub market_prefix: &'static str,
}

impl Resolved {
    /// Resolves `portfolio` and `market` (optional) against `venue`.
    pub(crate) fn new(
        venue: &Venue,
        portfolio: &Bound<'_, PyAny>,
        market: Option<&Bound<'_, PyAny>>,
        origin: &str,
        allow_far_marks: bool,
    ) -> PyResult<Self> {
        let py = portfolio.py();
        let portfolio = Portfolio::read(venue, portfolio, origin)?;
        let (market, market_origin, market_prefix) = match market {
            Some(market) => {
                let market = Market::read(market, "market")?;
                (market.inner, market.origin, "")
            }
            None => match &portfolio.market {
                Some(market) => (Arc::clone(market), portfolio.origin.clone(), "market."),
                None => {
                    return Err(raise(
                        Kind::Input,
                        Problem::at(
                            &portfolio.origin,
                            "market",
                            "missing; pass market=... or give the portfolio a \"market\" object",
                        ),
                    ));
                }
            },
        };
        // The checks the command line runs on its files: a value that cannot be meant is
        // refused, a default filled in is named as a `solvent.InputWarning`.
        let origins = checks::Origins {
            portfolio: &portfolio.origin,
            market: &market_origin,
            market_field: market_prefix,
        };
        let far_marks = checks::FarMarks {
            allowed: allow_far_marks,
            switch: "allow_far_marks=True",
        };
        let warnings = checks::inputs(
            &venue.inner,
            &portfolio.inner,
            &market.market,
            origins,
            far_marks,
        )
        .map_err(|refused| errors::refused(&refused))?;
        errors::warn(py, &warnings)?;
        Ok(Self {
            portfolio: portfolio.inner,
            market,
            portfolio_origin: portfolio.origin,
            market_origin,
            market_prefix,
        })
    }

    /// `compute` on the view of the market through `venue` (surfaces built once per market and
    /// venue), its error placed in the right input.
    pub(crate) fn with_view<T>(
        &self,
        venue: &Arc<CoreVenue>,
        compute: impl FnOnce(&MarketView<'_>) -> Result<T, solvent_risk::RiskError>,
    ) -> PyResult<T> {
        let surfaces = self
            .market
            .surfaces(venue)
            .map_err(|error| self.risk_error(&error))?;
        let view = MarketView::with_surfaces(venue, &self.market.market, &surfaces);
        compute(&view).map_err(|error| self.risk_error(&error))
    }

    /// A risk error placed in the right input.
    pub(crate) fn risk_error(&self, error: &solvent_risk::RiskError) -> PyErr {
        errors::risk(
            error,
            &self.portfolio_origin,
            (&self.market_origin, self.market_prefix),
        )
    }
}
