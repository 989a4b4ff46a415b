//! The scenario book: every listed instrument (and spot asset) of an underlying revalued once
//! per scenario, shared by every account that holds it, and an account's exposures located in it.

use super::*;

/// How one listed instrument (or the spot asset) moves with its underlying, per unit of exposure.
#[derive(Clone, Debug, PartialEq)]
pub struct InstrumentRisk {
    /// Instrument name, or `spot:ASSET`.
    pub name: String,
    /// USD P&L per unit of exposure in each scenario of the underlying.
    pub unit_pnl: Vec<f64>,
    /// USD P&L per unit of exposure in each historical scenario (empty without a history).
    pub historical_pnl: Vec<f64>,
    /// Delta in coin per unit of exposure.
    pub unit_delta: f64,
    /// USD moved per unit of exposure by the roll (basis) shock: `S x roll x sqrt(T)`.
    pub roll_unit: f64,
    /// Whether a short exposure counts toward the short option minimum.
    pub is_option: bool,
}

/// One underlying's scenarios and its instruments revalued under them.
#[derive(Clone, Debug, PartialEq)]
pub struct UnderlyingBook {
    /// Underlying name.
    pub name: String,
    /// Index price (USD).
    pub price_usd: f64,
    /// The scenarios.
    pub scenarios: Vec<Scenario>,
    /// Instruments by name (spot as `spot:ASSET`). Read-only once the book is built: the lean
    /// path reads a packed copy of these rows.
    pub instruments: IndexMap<String, InstrumentRisk>,
    pub(super) params: UnderlyingParams,
    pub(super) packed: PackedRows,
}

/// What the charges of one underlying read of its book besides the account's sums: its
/// parameters, scenarios and index price (borrowed from an [`UnderlyingBook`], or the moved
/// price of a liquidation-move search).
#[derive(Clone, Copy, Debug)]
pub(super) struct Scan<'a> {
    pub(super) params: &'a UnderlyingParams,
    pub(super) scenarios: &'a [Scenario],
    pub(super) price_usd: f64,
}

impl UnderlyingBook {
    /// Adds the row of the spot asset `symbol` (priced by this underlying): one coin moves by
    /// the index's move.
    pub(super) fn insert_spot(
        &mut self,
        symbol: &str,
        history: Option<(&HistoricalScenarios, usize)>,
    ) {
        let name = format!("spot:{symbol}");
        let price = self.price_usd;
        let unit_pnl = self
            .scenarios
            .iter()
            .map(|s| price * s.price_move)
            .collect();
        let historical_pnl = history.map_or_else(Vec::new, |(history, index)| {
            history
                .scenarios
                .iter()
                .map(|s| price * (s.price_factor.get(index).copied().unwrap_or(1.0) - 1.0))
                .collect()
        });
        self.instruments.insert(
            name.clone(),
            InstrumentRisk {
                name,
                unit_pnl,
                historical_pnl,
                unit_delta: 1.0,
                roll_unit: 0.0,
                is_option: false,
            },
        );
    }

    pub(super) fn scan(&self) -> Scan<'_> {
        Scan {
            params: &self.params,
            scenarios: &self.scenarios,
            price_usd: self.price_usd,
        }
    }
}

/// An instrument's book (its place among the underlyings) and its assessment, or why it has
/// no book.
type PlacedAssessment = Result<(usize, Result<Assessed, RiskError>), RiskError>;

/// Instruments revalued once per scenario, shared by every account that holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioBook {
    /// Books by underlying.
    pub underlyings: IndexMap<String, UnderlyingBook>,
    /// Per book underlying, its relative move in each historical scenario (when ES is enabled
    /// and a history is given).
    pub historical_moves: Option<Vec<Vec<f64>>>,
    /// The historical scenarios' dates.
    pub historical_dates: Vec<String>,
    /// Correlations estimated from the view's price history, for pairs the venue does not give.
    pub estimated_correlations: Option<crate::history::CorrelationMatrix>,
}

/// What an account holds of one instrument, as a multiple of its unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposure {
    /// Underlying index in the book.
    pub underlying: usize,
    /// Instrument index in the underlying's book.
    pub instrument: usize,
    /// Units of exposure (see [`exposure_of`]).
    pub amount: f64,
    /// The position's index in the portfolio, `None` for a spot balance.
    pub position: Option<usize>,
}

/// Units of exposure of a position, in the unit its [`InstrumentRisk`] is quoted per:
/// `size x contract size` (linear instruments, options), `size / entry` coin (inverse perpetuals
/// and futures: their USD value moves as `size x S x move / entry`, the entry being where the coin
/// P&L started to accrue).
#[must_use]
pub fn exposure_of(instrument: &Instrument, size: Decimal, entry: Decimal) -> f64 {
    let units = match (instrument.style, &instrument.terms) {
        (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => size / entry,
        _ => size * instrument.contract_size,
    };
    units.to_f64().unwrap_or(0.0)
}

impl ScenarioBook {
    /// Revalues `instruments` (and the spot assets `spot_assets`, by symbol) under each
    /// underlying's scenarios. Underlyings without parameters in the venue are an error: a
    /// portfolio-margin account may hold only what the venue can scan.
    ///
    /// # Errors
    /// [`RiskError`] when parameters, prices or volatilities are missing.
    pub fn new(
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        instruments: &[&Instrument],
        spot_assets: &[(String, String)],
    ) -> Result<Self, RiskError> {
        Self::build(view, params, instruments, spot_assets, None)
    }

    /// [`ScenarioBook::new`] for a liquidation-move search along `moved`
    /// ([`MovedBook`](super::MovedBook)), which revalues that underlying's instruments itself at
    /// every step: they are listed, in the same order, but not revalued (no P&L, no delta), which
    /// spares the search a copy of the report's own revaluation of them (for an account of
    /// options on one underlying, almost all of it). Every other underlying is as
    /// [`ScenarioBook::new`] gives it.
    ///
    /// # Errors
    /// As [`ScenarioBook::new`] for the other underlyings' instruments.
    pub fn new_for_move(
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        instruments: &[&Instrument],
        spot_assets: &[(String, String)],
        moved: &str,
    ) -> Result<Self, RiskError> {
        Self::build(view, params, instruments, spot_assets, Some(moved))
    }

    fn build(
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        instruments: &[&Instrument],
        spot_assets: &[(String, String)],
        unvalued: Option<&str>,
    ) -> Result<Self, RiskError> {
        let mut underlyings: IndexMap<String, UnderlyingBook> = IndexMap::new();
        let history = if params.historical.is_some() {
            view.history()
        } else {
            None
        };
        let column = |name: &str| -> Result<Option<(&HistoricalScenarios, usize)>, RiskError> {
            match history {
                None => Ok(None),
                Some(history) => history
                    .underlyings
                    .iter()
                    .position(|u| u == name)
                    .map(|index| Some((history, index)))
                    .ok_or_else(|| RiskError::Unsupported {
                        path: "--history".to_owned(),
                        problem: format!(
                            "historical expected shortfall needs a price history of {name}"
                        ),
                    }),
            }
        };
        for (symbol, index_name) in spot_assets {
            let history_column = column(index_name)?;
            let book = Self::book_for(&mut underlyings, view, params, index_name)?;
            book.insert_spot(symbol, history_column);
        }
        // Each instrument's book (and history column), in order; an error is kept in its
        // place, so the first one met in the instruments' order is the one returned.
        let mut places = Vec::with_capacity(instruments.len());
        for instrument in instruments {
            let place = column(&instrument.underlying).and_then(|history_column| {
                let book =
                    Self::book_index(&mut underlyings, view, params, &instrument.underlying)?;
                Ok((book, history_column))
            });
            places.push(place);
        }
        // Assessed on every core, entered in order (see `Assessed`).
        let mut assessed: Vec<PlacedAssessment> = places
            .into_par_iter()
            .zip(instruments.par_iter())
            .with_min_len(ASSESS_BLOCK)
            .map(|(place, instrument)| {
                let (book, history_column) = place?;
                let (_, underlying_book) = underlyings.get_index(book).ok_or_else(unplaced)?;
                let assessed = if unvalued == Some(instrument.underlying.as_str()) {
                    Ok(Assessed::unvalued(instrument))
                } else {
                    assess(view, instrument, underlying_book, history_column)
                };
                Ok((book, assessed))
            })
            .collect();
        value_options(&mut assessed, |item| {
            item.as_mut()
                .ok()
                .and_then(|(_, assessed)| assessed.as_mut().ok())
        });
        // Each book's map sized once for its instruments (grown by doubling, a book of ten
        // thousand options moved its rows into fresh memory a dozen times).
        let mut counts = vec![0_usize; underlyings.len()];
        for (book, _) in assessed.iter().flatten() {
            if let Some(count) = counts.get_mut(*book) {
                *count += 1;
            }
        }
        for (book, count) in underlyings.values_mut().zip(counts) {
            book.instruments.reserve(count);
        }
        // An instrument that cannot be assessed is reported before any refusal of the batch
        // kernel (the first one in the book's order).
        let mut refused = None;
        for (instrument, assessed) in instruments.iter().zip(assessed) {
            let (book, assessed) = assessed?;
            let (_, book) = underlyings.get_index_mut(book).ok_or_else(unplaced)?;
            // A second listing of an instrument is the first one's row.
            if book.instruments.contains_key(&instrument.name) {
                continue;
            }
            match assessed?.enter(instrument) {
                Ok(risk) => {
                    book.instruments.insert(instrument.name.clone(), risk);
                }
                Err(error) => {
                    refused.get_or_insert(error);
                }
            }
        }
        if let Some(error) = refused {
            return Err(error);
        }
        for book in underlyings.values_mut() {
            book.packed = PackedRows::new(&book.scenarios, &book.instruments);
        }
        let historical_moves = history.map(|history| {
            underlyings
                .keys()
                .map(|name| {
                    let index = history.underlyings.iter().position(|u| u == name);
                    history
                        .scenarios
                        .iter()
                        .map(|s| {
                            index
                                .and_then(|i| s.price_factor.get(i))
                                .copied()
                                .unwrap_or(1.0)
                                - 1.0
                        })
                        .collect()
                })
                .collect()
        });
        Ok(Self {
            underlyings,
            estimated_correlations: view.history().map(|h| h.correlations.clone()),
            historical_moves,
            historical_dates: history
                .map(|h| h.scenarios.iter().map(|s| s.date.to_string()).collect())
                .unwrap_or_default(),
        })
    }

    pub(super) fn book_for<'a>(
        underlyings: &'a mut IndexMap<String, UnderlyingBook>,
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        name: &str,
    ) -> Result<&'a mut UnderlyingBook, RiskError> {
        let index = Self::book_index(underlyings, view, params, name)?;
        underlyings
            .get_index_mut(index)
            .map(|(_, book)| book)
            .ok_or_else(|| RiskError::Unsupported {
                path: format!("portfolio_margin.underlyings.{name}"),
                problem: "missing after insertion".to_owned(),
            })
    }

    /// The place of `name`'s book in `underlyings`, added (empty) if it is not there yet.
    fn book_index(
        underlyings: &mut IndexMap<String, UnderlyingBook>,
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        name: &str,
    ) -> Result<usize, RiskError> {
        if let Some(index) = underlyings.get_index_of(name) {
            return Ok(index);
        }
        let underlying_params =
            params
                .underlyings
                .get(name)
                .ok_or_else(|| RiskError::Unsupported {
                    path: format!("portfolio_margin.underlyings.{name}"),
                    problem: format!("the venue has no portfolio-margin parameters for {name}"),
                })?;
        let price_usd = f64_of(view.index(name, "portfolio margin")?);
        let (index, _) = underlyings.insert_full(
            name.to_owned(),
            UnderlyingBook {
                name: name.to_owned(),
                price_usd,
                scenarios: scenarios(underlying_params),
                instruments: IndexMap::new(),
                params: underlying_params.clone(),
                packed: PackedRows::default(),
            },
        );
        Ok(index)
    }

    /// Position of an instrument: `(underlying, instrument)` indices.
    #[must_use]
    pub fn locate(&self, underlying: &str, name: &str) -> Option<(usize, usize)> {
        let (u, _, book) = self.underlyings.get_full(underlying)?;
        let i = book.instruments.get_index_of(name)?;
        Some((u, i))
    }
}

/// The error of a book looked up at the place [`ScenarioBook::build`] has just given it (the
/// places come from the same map, so it is never raised; `outside()` would blame an exposure).
fn unplaced() -> RiskError {
    RiskError::Unsupported {
        path: "portfolio margin".to_owned(),
        problem: "an underlying's scenario book is missing right after it was added".to_owned(),
    }
}

/// The exposures of a portfolio's cross pool (positions without isolated margin, and spot
/// balances of assets priced by a scanned underlying), located in `book`.
///
/// # Errors
/// [`RiskError::Unsupported`] when a position's instrument is not in the book.
pub fn exposures(portfolio: &Portfolio, book: &ScenarioBook) -> Result<Vec<Exposure>, RiskError> {
    let mut result = Vec::with_capacity(portfolio.positions.len() + portfolio.balances.len());
    for (index, position) in portfolio.positions.iter().enumerate() {
        if position.isolated_margin.is_some() {
            continue;
        }
        let instrument = &position.instrument;
        let (underlying, slot) = book
            .locate(&instrument.underlying, &instrument.name)
            .ok_or_else(|| RiskError::Unsupported {
                path: format!("positions: {}", instrument.name),
                problem: "not in the scenario book".to_owned(),
            })?;
        result.push(Exposure {
            underlying,
            instrument: slot,
            amount: exposure_of(
                instrument,
                position.size.value(),
                position.entry_price.value(),
            ),
            position: Some(index),
        });
    }
    for balance in &portfolio.balances {
        if let Some((underlying, slot)) = book.locate(
            &balance.asset.index,
            &format!("spot:{}", balance.asset.symbol),
        ) {
            result.push(Exposure {
                underlying,
                instrument: slot,
                amount: f64_of(balance.amount.value()),
                position: None,
            });
        }
    }
    Ok(result)
}
