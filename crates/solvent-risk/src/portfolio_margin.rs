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
use solvent_pricing::black76::{Black76, GreeksBatch, OwnedColumns, price_and_greeks_checked};
use solvent_pricing::implied::implied_volatility;

use crate::error::RiskError;
use crate::valuation::{HistoricalScenarios, MarketView, option_type};

/// Days in the year of times to expiry (ACT/365).
const DAYS_PER_YEAR: f64 = 365.0;
/// A shocked-down volatility never falls below this fraction of the unshocked one.
const MIN_VOL_FRACTION: f64 = 0.01;

/// One scenario of one underlying.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// Relative price move (`-0.16`).
    pub price_move: f64,
    /// Volatility shock.
    pub vol: VolShock,
    /// Weight of the scenario's P&L: 1 on the standard grid, the dampener on extended moves.
    pub weight: f64,
    /// Whether the scenario is an extended move.
    pub extended: bool,
}

impl Scenario {
    /// A readable name: `-16% vol up`, `extended +300% vol up (weight 0.053)`.
    #[must_use]
    pub fn label(&self) -> String {
        let vol = match self.vol {
            VolShock::Up => "vol up",
            VolShock::Unchanged => "vol unchanged",
            VolShock::Down => "vol down",
        };
        let price = format!("{:+}%", (self.price_move * 100.0 * 100.0).round() / 100.0);
        if self.extended {
            format!("extended {price} {vol} (weight {:.3})", self.weight)
        } else {
            format!("{price} {vol}")
        }
    }
}

/// The scenarios of an underlying: every standard move with every configured volatility shock,
/// then the extended moves with their shock, weighted `min(1, dampener / |move|)` (Paradex) or by a
/// fixed weight (SPAN's extreme moves count 35%).
#[must_use]
pub fn scenarios(params: &UnderlyingParams) -> Vec<Scenario> {
    let mut all = Vec::with_capacity(
        params.price_moves.len() * params.vol_shocks.len() + params.extended_moves.len(),
    );
    for &price_move in &params.price_moves {
        for &vol in &params.vol_shocks {
            all.push(Scenario {
                price_move,
                vol,
                weight: 1.0,
                extended: false,
            });
        }
    }
    for &price_move in &params.extended_moves {
        let weight = match params.extended_weight {
            Some(weight) => weight,
            None if price_move == 0.0 => 1.0,
            None => (params.extended_dampener / price_move.abs()).min(1.0),
        };
        all.push(Scenario {
            price_move,
            vol: params.extended_vol,
            weight,
            extended: true,
        });
    }
    all
}

/// Shocked volatility (Deribit's risk matrix, docs/portfolio-margin-sources.md):
/// `sigma * (1 + shock * (30 / max(1, dte))^p)` with `p` the short power below 30 days and the
/// long power after; an up-shocked volatility is at least the absolute level `vol_up_floor`, and a
/// down shock keeps at least 1% of the volatility.
#[must_use]
pub fn shocked_volatility(
    volatility: f64,
    days_to_expiry: f64,
    shock: VolShock,
    params: &UnderlyingParams,
) -> f64 {
    shocked_volatility_scaled(
        volatility,
        vol_shock_scale(days_to_expiry, params),
        shock,
        params,
    )
}

/// The term-structure factor `(30 / max(1, dte))^p` of [`shocked_volatility`], the same for
/// every scenario of one expiry (so computed once per instrument).
fn vol_shock_scale(days_to_expiry: f64, params: &UnderlyingParams) -> f64 {
    let days = days_to_expiry.max(1.0);
    let power = if days < 30.0 {
        params.vol_power_short
    } else {
        params.vol_power_long
    };
    (30.0 / days).powf(power)
}

/// [`shocked_volatility`] given its term-structure factor `scale`.
fn shocked_volatility_scaled(
    volatility: f64,
    scale: f64,
    shock: VolShock,
    params: &UnderlyingParams,
) -> f64 {
    let floor = volatility * MIN_VOL_FRACTION;
    match (params.vol_shock_mode, shock) {
        (_, VolShock::Unchanged) => volatility,
        (VolShockMode::Relative, VolShock::Up) => {
            (volatility * (1.0 + params.vol_shock_up * scale)).max(params.vol_up_floor)
        }
        (VolShockMode::Relative, VolShock::Down) => {
            (volatility * (1.0 - params.vol_shock_down * scale)).max(floor)
        }
        (VolShockMode::Absolute, VolShock::Up) => {
            (volatility + params.vol_shock_up).max(params.vol_up_floor)
        }
        (VolShockMode::Absolute, VolShock::Down) => (volatility - params.vol_shock_down).max(floor),
    }
}

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
    params: UnderlyingParams,
    packed: PackedRows,
}

/// What the charges of one underlying read of its book besides the account's sums: its
/// parameters, scenarios and index price (borrowed from an [`UnderlyingBook`], or the moved
/// price of a liquidation-move search).
#[derive(Clone, Copy, Debug)]
struct Scan<'a> {
    params: &'a UnderlyingParams,
    scenarios: &'a [Scenario],
    price_usd: f64,
}

impl UnderlyingBook {
    fn scan(&self) -> Scan<'_> {
        Scan {
            params: &self.params,
            scenarios: &self.scenarios,
            price_usd: self.price_usd,
        }
    }
}

/// Lanes of a packed row: four `f64`, one AVX2 register. Narrow lanes pad less (35 scenarios
/// take 9 lanes, 36 values, rather than 40), and an account's sums are kept in registers a whole
/// row at a time (see [`sum_rows`]), so wider lanes would buy no more independent sums.
const LANES: usize = 4;
/// One SIMD-width slice of a row of scenarios.
type Lane = [f64; LANES];

/// An underlying's instruments laid out for the lean path: the unit P&L as one row-major matrix
/// (instruments x scenarios, each row padded with zeros to whole lanes) and the per-instrument
/// scalars side by side, so summing an account's rows needs no map lookup and vectorises.
#[derive(Clone, Debug, Default, PartialEq)]
struct PackedRows {
    /// Number of instruments (rows).
    rows: usize,
    /// Lanes per row: `ceil(scenarios / LANES)`.
    lanes: usize,
    /// Unit P&L, `rows x lanes`.
    unit_pnl: Vec<Lane>,
    /// Scenario weights, `lanes` long, NaN in the padding (a NaN never counts as the worst).
    weight: Vec<Lane>,
    /// Per instrument: its scalars.
    units: Vec<Units>,
}

/// An instrument's figures besides its scenario row, side by side (one lookup per exposure).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Units {
    delta: f64,
    roll: f64,
    is_option: bool,
}

impl PackedRows {
    fn new(scenarios: &[Scenario], instruments: &IndexMap<String, InstrumentRisk>) -> Self {
        let count = scenarios.len();
        let lanes = count.div_ceil(LANES);
        let padded = |values: &mut dyn Iterator<Item = f64>, fill: f64| -> Vec<Lane> {
            let mut flat: Vec<f64> = values.take(count).collect();
            flat.resize(lanes * LANES, fill);
            flat.chunks_exact(LANES)
                .map(|chunk| {
                    let mut lane = [fill; LANES];
                    lane.copy_from_slice(chunk);
                    lane
                })
                .collect()
        };
        let mut unit_pnl = Vec::with_capacity(instruments.len() * lanes);
        for risk in instruments.values() {
            // A short row (never built by `ScenarioBook::new`) pads with zeros like the full path.
            unit_pnl.extend(padded(&mut risk.unit_pnl.iter().copied(), 0.0));
        }
        Self {
            rows: instruments.len(),
            lanes,
            unit_pnl,
            weight: padded(&mut scenarios.iter().map(|s| s.weight), f64::NAN),
            units: instruments
                .values()
                .map(|r| Units {
                    delta: r.unit_delta,
                    roll: r.roll_unit,
                    is_option: r.is_option,
                })
                .collect(),
        }
    }
}

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

fn f64_of(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
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
            let name = format!("spot:{symbol}");
            let price = book.price_usd;
            let unit_pnl = book
                .scenarios
                .iter()
                .map(|s| price * s.price_move)
                .collect();
            let historical_pnl = history_column.map_or_else(Vec::new, |(history, index)| {
                history
                    .scenarios
                    .iter()
                    .map(|s| price * (s.price_factor.get(index).copied().unwrap_or(1.0) - 1.0))
                    .collect()
            });
            book.instruments.insert(
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
        let mut options = PendingOptions::for_options(
            instruments
                .iter()
                .filter(|i| matches!(i.terms, Terms::Option { .. }))
                .count(),
        );
        for instrument in instruments {
            let history_column = column(&instrument.underlying)?;
            let book = Self::book_for(&mut underlyings, view, params, &instrument.underlying)?;
            if book.instruments.contains_key(&instrument.name) {
                continue;
            }
            let risk = instrument_risk(view, instrument, book, history_column, &mut options)?;
            book.instruments.insert(instrument.name.clone(), risk);
        }
        options.value(&mut underlyings)?;
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

    fn book_for<'a>(
        underlyings: &'a mut IndexMap<String, UnderlyingBook>,
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        name: &str,
    ) -> Result<&'a mut UnderlyingBook, RiskError> {
        if !underlyings.contains_key(name) {
            let underlying_params =
                params
                    .underlyings
                    .get(name)
                    .ok_or_else(|| RiskError::Unsupported {
                        path: format!("portfolio_margin.underlyings.{name}"),
                        problem: format!("the venue has no portfolio-margin parameters for {name}"),
                    })?;
            let price_usd = f64_of(view.index(name, "portfolio margin")?);
            underlyings.insert(
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
        }
        underlyings
            .get_mut(name)
            .ok_or_else(|| RiskError::Unsupported {
                path: format!("portfolio_margin.underlyings.{name}"),
                problem: "missing after insertion".to_owned(),
            })
    }

    /// Position of an instrument: `(underlying, instrument)` indices.
    #[must_use]
    pub fn locate(&self, underlying: &str, name: &str) -> Option<(usize, usize)> {
        let (u, _, book) = self.underlyings.get_full(underlying)?;
        let i = book.instruments.get_index_of(name)?;
        Some((u, i))
    }
}

/// How an instrument's USD value per unit of exposure responds to a move of its underlying and a
/// factor on its implied volatility.
enum Revaluation {
    /// Perpetuals, futures, spot: `per_unit x move`.
    Linear { per_unit: f64 },
    /// Options: Black-76 at the moved forward, less today's model value.
    Option {
        model: Black76,
        kind: solvent_pricing::black76::OptionType,
    },
}

/// The options of a scenario book awaiting revaluation: every (option, scenario) row of the
/// book in one set of columns, so the batch Black-76 kernel values them in one call.
struct PendingOptions {
    /// One row per (option, scenario).
    columns: OwnedColumns,
    /// Per option: (underlying, instrument, first row, grid scenarios, rows after the first).
    slots: Vec<(String, String, usize, usize, usize)>,
    /// How many options the book holds (to size the columns at the first one).
    expected_options: usize,
}

impl PendingOptions {
    /// Columns for `options` options, sized by the first one's rows (books of one venue have
    /// about as many scenarios each), so they rarely grow while the book is built.
    fn for_options(options: usize) -> Self {
        Self {
            columns: OwnedColumns::default(),
            slots: Vec::with_capacity(options),
            expected_options: options,
        }
    }

    /// Adds an option's rows: the unshocked option first (so a scenario that changes nothing
    /// has exactly zero P&L), then one per `(price move, volatility)`.
    fn push(
        &mut self,
        instrument: &Instrument,
        model: &Black76,
        kind: solvent_pricing::black76::OptionType,
        moves: &[(f64, Option<f64>)],
        grid: usize,
    ) {
        let start = self.columns.forward.len();
        if start == 0 {
            self.columns =
                OwnedColumns::with_capacity(self.expected_options.max(1) * (moves.len() + 1));
        }
        push_option_rows(&mut self.columns, model, kind, moves);
        self.slots.push((
            instrument.underlying.clone(),
            instrument.name.clone(),
            start,
            grid,
            moves.len(),
        ));
    }

    /// Values every row and writes each option's P&L into its book.
    fn value(self, underlyings: &mut IndexMap<String, UnderlyingBook>) -> Result<(), RiskError> {
        if self.slots.is_empty() {
            return Ok(());
        }
        let mut out = GreeksBatch::with_capacity(self.columns.forward.len());
        let valued = price_and_greeks_checked(self.columns.columns(), &mut out);
        if let Err(error) = valued {
            let row = match &error {
                solvent_pricing::PricingError::BatchElement { index, .. } => *index,
                _ => 0,
            };
            let (underlying, name) = self
                .slots
                .iter()
                .find(|(_, _, start, _, rows)| (*start..=*start + *rows).contains(&row))
                .map_or(("", ""), |(u, n, ..)| (u.as_str(), n.as_str()));
            return Err(RiskError::Pricing {
                path: format!("vol.{underlying}"),
                problem: format!("{name}: {error}"),
            });
        }
        let prices = out.price();
        for (underlying, name, start, grid, rows) in self.slots {
            let base = prices[start];
            let mut pnl: Vec<f64> = prices[start + 1..=start + rows]
                .iter()
                .map(|price| price - base)
                .collect();
            let historical = pnl.split_off(grid);
            if let Some(risk) = underlyings
                .get_mut(&underlying)
                .and_then(|book| book.instruments.get_mut(&name))
            {
                risk.unit_pnl = pnl;
                risk.historical_pnl = historical;
            }
        }
        Ok(())
    }
}

/// Appends an option's batch rows: the unshocked option first (so a scenario that changes
/// nothing has exactly zero P&L), then one per `(price move, shocked volatility)`.
fn push_option_rows(
    columns: &mut OwnedColumns,
    model: &Black76,
    kind: solvent_pricing::black76::OptionType,
    moves: &[(f64, Option<f64>)],
) {
    // Column by column (one reservation and a straight fill each, rather than six pushes a
    // row); the unshocked row is `(0, None)`.
    let rows = moves.len() + 1;
    let all = || std::iter::once((0.0, None)).chain(moves.iter().copied());
    let forward = model.forward();
    let volatility = model.volatility();
    columns
        .forward
        .extend(all().map(|(price_move, _)| forward * (1.0 + price_move)));
    columns
        .volatility
        .extend(all().map(|(_, shocked)| shocked.unwrap_or(volatility)));
    let repeat = |column: &mut Vec<f64>, value: f64| {
        column.resize(column.len() + rows, value);
    };
    repeat(&mut columns.strike, model.strike());
    repeat(&mut columns.time, model.time_to_expiry_years());
    repeat(&mut columns.discount, model.discount_factor());
    columns.kind.resize(columns.kind.len() + rows, kind);
}

fn revaluation(
    view: &MarketView<'_>,
    instrument: &Instrument,
    spot: f64,
) -> Result<(Revaluation, f64, f64), RiskError> {
    match &instrument.terms {
        Terms::Perpetual | Terms::Future { .. } => {
            let mark = f64_of(view.mark(instrument)?.price);
            // Linear: a unit is one coin marked at the instrument's price. Inverse: a unit is
            // one coin of USD value (see `exposure_of`), moving with the index.
            let per_unit = if instrument.style == Style::Inverse {
                spot
            } else {
                mark
            };
            Ok((Revaluation::Linear { per_unit }, 1.0, 0.0))
        }
        Terms::Option {
            expiry,
            strike,
            right,
            ..
        } => {
            let time = view.years_to(*expiry).max(0.0);
            let kind = option_type(*right);
            let strike = strike.to_f64();
            let rate = view.market().rate;
            let forward = spot * (rate * time).exp();
            let discount = (-rate * time).exp();
            // Revalue at the volatility the mark implies: the model's and the market's prices then
            // agree at the unshocked scenario, so P&L is only what the scenario changes. Without a
            // given mark that is the surface's volatility (no need to price the model mark).
            let volatility = match view.market().mark.get(&instrument.name) {
                None => view.model_volatility(instrument, strike, time)?,
                Some(given) => {
                    let usd = match instrument.style {
                        Style::Linear => f64_of(given.value()),
                        Style::Inverse => f64_of(given.value()) * spot,
                    };
                    if time > 0.0 {
                        implied_volatility(usd, forward, strike, time, discount, kind).map_err(
                            |error| RiskError::Pricing {
                                path: format!("mark.{}", instrument.name),
                                problem: format!("no implied volatility for the mark: {error}"),
                            },
                        )?
                    } else {
                        0.0
                    }
                }
            };
            let model = Black76::new_checked(forward, strike, time, volatility, discount).map_err(
                |error| RiskError::Pricing {
                    path: format!("vol.{}", instrument.underlying),
                    problem: format!("{}: {error}", instrument.name),
                },
            )?;
            // dV/dS = dV/dF x F/S.
            let delta = model.greeks(kind).delta * forward / spot;
            Ok((Revaluation::Option { model, kind }, delta, time))
        }
    }
}

fn instrument_risk(
    view: &MarketView<'_>,
    instrument: &Instrument,
    book: &UnderlyingBook,
    history: Option<(&HistoricalScenarios, usize)>,
    options: &mut PendingOptions,
) -> Result<InstrumentRisk, RiskError> {
    let spot = book.price_usd;
    let params = &book.params;
    let (revaluation, unit_delta, time) = revaluation(view, instrument, spot)?;
    let volatility = match &revaluation {
        Revaluation::Option { model, .. } => Some(model.volatility()),
        Revaluation::Linear { .. } => None,
    };
    let scale = vol_shock_scale(time * DAYS_PER_YEAR, params);
    // Every scenario's (price move, volatility), grid first, then the historical days.
    let mut moves: Vec<(f64, Option<f64>)> = book
        .scenarios
        .iter()
        .map(|scenario| {
            let shocked =
                volatility.map(|vol| shocked_volatility_scaled(vol, scale, scenario.vol, params));
            (scenario.price_move, shocked)
        })
        .collect();
    if let Some((history, column)) = history {
        moves.extend(history.scenarios.iter().map(|scenario| {
            let price_move = scenario.price_factor.get(column).copied().unwrap_or(1.0) - 1.0;
            let vol_factor = scenario
                .vol_factor
                .get(column)
                .copied()
                .flatten()
                .unwrap_or(1.0);
            (price_move, volatility.map(|vol| vol * vol_factor))
        }));
    }
    let (unit_pnl, historical_pnl) = match &revaluation {
        Revaluation::Linear { per_unit } => {
            let mut pnl: Vec<f64> = moves.iter().map(|(m, _)| per_unit * m).collect();
            let historical = pnl.split_off(book.scenarios.len());
            (pnl, historical)
        }
        Revaluation::Option { model, kind } => {
            // Filled in by `PendingOptions::value`, with every other option of the book.
            options.push(instrument, model, *kind, &moves, book.scenarios.len());
            (Vec::new(), Vec::new())
        }
    };
    let roll_unit = match &instrument.terms {
        Terms::Option { .. } => 0.0,
        Terms::Perpetual | Terms::Future { .. } => {
            let years = instrument
                .terms
                .expiry()
                .map_or(1.0 / DAYS_PER_YEAR, |expiry| {
                    view.years_to(expiry).max(1.0 / DAYS_PER_YEAR)
                });
            spot * params.roll_shock * years.sqrt()
        }
    };
    Ok(InstrumentRisk {
        name: instrument.name.clone(),
        unit_pnl,
        historical_pnl,
        unit_delta,
        roll_unit,
        is_option: matches!(instrument.terms, Terms::Option { .. }),
    })
}

/// Why a figure of one underlying is what it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnderlyingRisk {
    /// Underlying name.
    pub underlying: String,
    /// The worst weighted scenario.
    pub worst_scenario: String,
    /// Its weighted P&L in the report currency.
    pub worst_pnl: f64,
    /// `max(0, -worst weighted P&L)`.
    pub scan_risk: f64,
    /// Minimum delta charge `(rate x |net| + hedged rate x hedged) x S`.
    pub min_delta_charge: f64,
    /// Short option minimum.
    pub short_option_charge: f64,
    /// The scan risk after floors (the input of the cross-underlying offset).
    pub floored_risk: f64,
    /// Roll (basis) shock charge.
    pub roll_charge: f64,
    /// Everything added after the cross-underlying offset: roll and delta shocks, and any
    /// minimum the venue adds rather than floors.
    pub additive_charge: f64,
    /// Delta shock charge.
    pub delta_shock_charge: f64,
    /// Liquidity (closing cost) add-on.
    pub liquidity_charge: f64,
    /// Concentration add-on.
    pub concentration_charge: f64,
    /// Net delta in coin.
    pub net_delta: f64,
    /// `+1` when the worst scenario is a fall, `-1` when a rise.
    pub direction: f64,
}

/// The portfolio margin of one account, in the report currency, before rounding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortfolioRisk {
    /// Per underlying.
    pub underlyings: Vec<UnderlyingRisk>,
    /// Sum of floored scan risks.
    pub summed_risk: f64,
    /// After the cross-underlying offset.
    pub combined_risk: f64,
    /// Roll and delta shocks.
    pub additive_contingencies: f64,
    /// Liquidity and concentration.
    pub liquidity: f64,
    /// Historical expected shortfall, when enabled and a history is given.
    pub expected_shortfall: Option<ExpectedShortfallFigures>,
    /// Maintenance margin: `max(combined + additive, ES) + liquidity` (DESIGN.md 6.5).
    pub maintenance_margin: f64,
    /// `im_factor x maintenance`.
    pub initial_margin: f64,
    /// Maintenance attributed to each exposure (same order as the exposures), summing to the total.
    pub attribution: Vec<f64>,
}

/// Expected shortfall of the account over the filtered historical scenarios.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectedShortfallFigures {
    /// Confidence level (0.975).
    pub level: f64,
    /// Expected shortfall (a loss, in the report currency; never below zero).
    pub loss: f64,
    /// Value at risk at 99% over the same scenarios, for information.
    pub value_at_risk_99: f64,
    /// Number of scenarios.
    pub scenarios: usize,
    /// Date of the worst scenario.
    pub worst_date: String,
}

/// Converts a USD P&L of underlying `u` into the report currency. When the report currency is
/// itself priced by `u` (a coin-margined account), the account's whole USD equity is re-expressed
/// at the moved price.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReportCurrency {
    /// USD price of one unit of the report asset.
    pub price_usd: f64,
    /// Underlying index (in the book) that prices the report asset, if any.
    pub priced_by: Option<usize>,
    /// The account's equity in USD (used only when `priced_by` is set).
    pub equity_usd: f64,
}

impl ReportCurrency {
    /// A joint P&L (all underlyings moving, `moves` per book underlying) in the report currency.
    fn convert_joint(&self, pnl_usd: f64, moves: &[Vec<f64>], scenario: usize) -> f64 {
        match self.priced_by {
            Some(underlying) => {
                let price_move = moves
                    .get(underlying)
                    .and_then(|m| m.get(scenario))
                    .copied()
                    .unwrap_or(0.0);
                self.convert(underlying, pnl_usd, price_move)
            }
            None => pnl_usd / self.price_usd,
        }
    }

    fn convert(&self, underlying: usize, pnl_usd: f64, price_move: f64) -> f64 {
        if self.priced_by == Some(underlying) {
            let moved = self.price_usd * (1.0 + price_move);
            (self.equity_usd + pnl_usd) / moved - self.equity_usd / self.price_usd
        } else {
            pnl_usd / self.price_usd
        }
    }
}

/// Which floor set an underlying's risk above its scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Floor {
    MinDelta,
    ShortOption,
}

/// The figures of one underlying for one account, before the cross-underlying offset.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Charges {
    underlying: usize,
    worst: usize,
    worst_pnl: f64,
    scan_risk: f64,
    min_delta_charge: f64,
    short_option_charge: f64,
    floored_risk: f64,
    binding_floor: Option<Floor>,
    roll_charge: f64,
    delta_shock_charge: f64,
    additive_charge: f64,
    liquidity_charge: f64,
    concentration_charge: f64,
    net_delta: f64,
    direction: f64,
}

impl Charges {
    /// What the cross-underlying offset reads of these charges.
    fn leg(&self) -> Leg {
        Leg {
            underlying: self.underlying,
            direction: self.direction,
            floored_risk: self.floored_risk,
        }
    }
}

/// One underlying's input to the cross-underlying offset.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Leg {
    underlying: usize,
    direction: f64,
    floored_risk: f64,
}

/// What the lean path keeps of one underlying's [`Charges`]: its leg of the offset and the
/// charges added after it, grouped as the full path sums them.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LeanCharges {
    leg: Leg,
    /// Roll and delta shocks, and minimums added rather than floored.
    additive: f64,
    /// Liquidity and concentration.
    liquidity: f64,
}

impl LeanCharges {
    fn of(charges: Charges) -> Self {
        Self {
            leg: charges.leg(),
            additive: charges.additive_charge,
            liquidity: charges.liquidity_charge + charges.concentration_charge,
        }
    }
}

/// Correlations between the book's underlyings, by index; `None` where the venue gives none.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlations {
    /// Number of underlyings.
    size: usize,
    /// Row-major `size x size`.
    matrix: Vec<Option<f64>>,
}

impl Correlations {
    /// Correlations between the book's underlyings: the venue's where it gives them, else those
    /// estimated from the view's price history, if any.
    #[must_use]
    pub fn new(book: &ScenarioBook, params: &PortfolioMarginParams) -> Self {
        let names: Vec<&String> = book.underlyings.keys().collect();
        Self {
            size: names.len(),
            matrix: names
                .iter()
                .flat_map(|first| {
                    names.iter().map(|second| {
                        params.correlation(first, second).or_else(|| {
                            book.estimated_correlations
                                .as_ref()
                                .and_then(|c| c.get(first, second))
                        })
                    })
                })
                .collect(),
        }
    }

    /// The correlation used between two underlyings. A pair that neither the venue gives nor the
    /// price history estimates counts as perfectly adverse (`d_u d_v`), so an unknown correlation
    /// never lowers margin.
    fn effective(&self, first: &Leg, second: &Leg) -> f64 {
        let given = if first.underlying < self.size && second.underlying < self.size {
            self.matrix
                .get(first.underlying * self.size + second.underlying)
                .copied()
                .flatten()
        } else {
            None
        };
        given.unwrap_or(first.direction * second.direction)
    }
}

fn outside() -> RiskError {
    RiskError::Unsupported {
        path: "portfolio margin".to_owned(),
        problem: "an exposure refers to an instrument outside the scenario book".to_owned(),
    }
}

/// An account's delta, short option contracts and roll exposure on one underlying, summed in
/// exposure order (the full and lean paths add the same terms in the same order).
#[derive(Clone, Copy, Debug, Default)]
struct DeltaSums {
    net_delta: f64,
    long_delta: f64,
    short_delta: f64,
    short_contracts: f64,
    roll: f64,
}

impl DeltaSums {
    fn add(&mut self, amount: f64, unit_delta: f64, roll_unit: f64, is_option: bool) {
        // Selects rather than branches (signs are random across accounts); adding or taking
        // away zero leaves a sum as it was, so this is the branching form's result exactly.
        let delta = amount * unit_delta;
        self.net_delta += delta;
        let long = delta > 0.0;
        self.long_delta += if long { delta } else { 0.0 };
        self.short_delta -= if long { 0.0 } else { delta };
        self.short_contracts -= if is_option && amount < 0.0 {
            amount
        } else {
            0.0
        };
        self.roll += amount * roll_unit;
    }
}

/// The worst weighted scenario of one underlying: its index and weighted P&L in the report
/// currency (`worst_pnl` stays `+inf` when no scenario is below it, as in a plain `<` scan).
#[derive(Clone, Copy, Debug)]
struct Worst {
    index: usize,
    pnl: f64,
}

impl Worst {
    /// The lowest weighted scenario P&L of underlying `u`, in the report currency, from its
    /// USD P&L per scenario (the first of equal ones).
    fn of(pnl_usd: &[f64], scenarios: &[Scenario], currency: &ReportCurrency, u: usize) -> Self {
        let mut worst = Self {
            index: 0,
            pnl: f64::INFINITY,
        };
        for (index, (value, scenario)) in pnl_usd.iter().zip(scenarios).enumerate() {
            let weighted = currency.convert(u, *value, scenario.price_move) * scenario.weight;
            if weighted < worst.pnl {
                worst = Self {
                    index,
                    pnl: weighted,
                };
            }
        }
        worst
    }
}

/// The scan and charges of underlying `u` for the exposures on it (the full path: every
/// exposure's row looked up by name index); `pnl` is scratch space.
fn charges(
    book_u: &UnderlyingBook,
    u: usize,
    exposures: &[Exposure],
    currency: &ReportCurrency,
    pnl: &mut Vec<f64>,
) -> Result<Option<Charges>, RiskError> {
    let Some(sums) = scenario_totals(book_u, u, exposures, pnl)? else {
        return Ok(None);
    };
    let worst = Worst::of(pnl, &book_u.scenarios, currency, u);
    let to_report = |usd: f64| currency.convert(u, usd, 0.0);
    settle(book_u.scan(), u, to_report, worst, &sums).map(Some)
}

/// The account's USD P&L in each scenario of underlying `u` (into `pnl`) and its delta sums,
/// every exposure on `u` added in the account's order; `None` when it holds nothing on `u`.
fn scenario_totals(
    book_u: &UnderlyingBook,
    u: usize,
    exposures: &[Exposure],
    pnl: &mut Vec<f64>,
) -> Result<Option<DeltaSums>, RiskError> {
    pnl.clear();
    pnl.resize(book_u.scenarios.len(), 0.0);
    let mut held = false;
    let mut sums = DeltaSums::default();
    for exposure in exposures.iter().filter(|e| e.underlying == u) {
        held = true;
        let risk = book_u
            .instruments
            .get_index(exposure.instrument)
            .ok_or_else(outside)?
            .1;
        for (total, unit) in pnl.iter_mut().zip(&risk.unit_pnl) {
            *total += exposure.amount * unit;
        }
        sums.add(
            exposure.amount,
            risk.unit_delta,
            risk.roll_unit,
            risk.is_option,
        );
    }
    Ok(held.then_some(sums))
}

/// The scan and charges of underlying `u` for one group of a prepared account (the lean path):
/// the rows of the packed matrix summed lane by lane, in the group's (exposure) order, so the
/// scenario P&L are the full path's bit for bit. Only the conversion to the report currency
/// differs when the report asset is not priced by `u`: one multiplication by `1 / price`
/// instead of a division per scenario (a relative difference of an ulp or two, none when the
/// report asset is USD-pegged at 1). The charges are pushed onto `out`: returned, they would
/// travel through memory in wide pieces the caller reads back in other widths, which stalls.
#[inline]
fn lean_charges(
    book_u: &UnderlyingBook,
    u: usize,
    columns: &[Column],
    currency: &ReportCurrency,
    lanes: &mut Vec<Lane>,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let packed = &book_u.packed;
    if packed.rows != book_u.instruments.len() {
        return Err(RiskError::Unsupported {
            path: format!("portfolio margin: {}", book_u.name),
            problem: "the book's instruments changed after it was built".to_owned(),
        });
    }
    // Rows of up to 48 scenarios (Deribit's 27 plus extended moves) in registers, with the row
    // width a constant; longer ones through memory.
    match packed.lanes {
        1 => lean_charges_fixed::<1>(book_u, u, columns, currency, lanes, out),
        2 => lean_charges_fixed::<2>(book_u, u, columns, currency, lanes, out),
        3 => lean_charges_fixed::<3>(book_u, u, columns, currency, lanes, out),
        4 => lean_charges_fixed::<4>(book_u, u, columns, currency, lanes, out),
        5 => lean_charges_fixed::<5>(book_u, u, columns, currency, lanes, out),
        6 => lean_charges_fixed::<6>(book_u, u, columns, currency, lanes, out),
        7 => lean_charges_fixed::<7>(book_u, u, columns, currency, lanes, out),
        8 => lean_charges_fixed::<8>(book_u, u, columns, currency, lanes, out),
        9 => lean_charges_fixed::<9>(book_u, u, columns, currency, lanes, out),
        10 => lean_charges_fixed::<10>(book_u, u, columns, currency, lanes, out),
        11 => lean_charges_fixed::<11>(book_u, u, columns, currency, lanes, out),
        12 => lean_charges_fixed::<12>(book_u, u, columns, currency, lanes, out),
        _ => lean_charges_any(book_u, u, columns, currency, lanes, out),
    }
}

/// [`lean_charges`] for rows of `W` lanes (the packed rows are checked to be `W` lanes wide by the
/// caller), every lane's running sum in its own register (see [`sum_fixed`]). Not inlined: one
/// body per width, called through the dispatch of [`lean_charges`].
#[inline(never)]
fn lean_charges_fixed<const W: usize>(
    book_u: &UnderlyingBook,
    u: usize,
    columns: &[Column],
    currency: &ReportCurrency,
    lanes: &mut Vec<Lane>,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let packed = &book_u.packed;
    let sums = delta_sums(packed, columns)?;
    let total = sum_fixed::<W>(&packed.unit_pnl, columns);
    if packed.weight.len() != W {
        return Err(outside());
    }
    if currency.priced_by == Some(u) {
        // Over a copy: `total` stays in registers.
        lanes.clear();
        lanes.extend_from_slice(&total);
        push_charges(book_u, u, currency, lanes, &sums, out)
    } else {
        push_charges(book_u, u, currency, &total, &sums, out)
    }
}

/// The charges of a group from its scenario P&L (`totals`, in USD, lane by lane) and delta sums,
/// pushed onto `out`.
#[inline]
fn push_charges(
    book_u: &UnderlyingBook,
    u: usize,
    currency: &ReportCurrency,
    totals: &[Lane],
    sums: &DeltaSums,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let charges = if currency.priced_by == Some(u) {
        // Coin-margined in this underlying: the account's equity moves with the price; the
        // full path's conversion, scenario by scenario.
        let worst = Worst::of(totals.as_flattened(), &book_u.scenarios, currency, u);
        settle(
            book_u.scan(),
            u,
            |usd: f64| currency.convert(u, usd, 0.0),
            worst,
            sums,
        )?
    } else {
        let inverse = 1.0 / currency.price_usd;
        let worst = lowest(totals, &book_u.packed.weight, inverse);
        settle(book_u.scan(), u, |usd: f64| usd * inverse, worst, sums)?
    };
    out.push(LeanCharges::of(charges));
    Ok(())
}

/// The delta sums of a group, in its order; checks every row is in the book.
#[inline]
fn delta_sums(packed: &PackedRows, columns: &[Column]) -> Result<DeltaSums, RiskError> {
    let mut sums = DeltaSums::default();
    for column in columns {
        let units = packed
            .units
            .get(column.instrument as usize)
            .ok_or_else(outside)?;
        sums.add(column.amount, units.delta, units.roll, units.is_option);
    }
    Ok(sums)
}

/// The group's rows of `unit_pnl` (rows of `W` lanes, each `instrument` checked to be a row by
/// [`delta_sums`]) summed in the group's order. Each scenario's sum is a chain of additions in
/// the account's order (the full path's order, so the same bits), and a chain waits on its
/// previous addition; with the row width a constant, every lane's running sum stays in its own
/// register and the `W` chains run side by side.
#[inline]
fn sum_fixed<const W: usize>(unit_pnl: &[Lane], columns: &[Column]) -> [Lane; W] {
    let mut total = [[0.0; LANES]; W];
    for column in columns {
        let start = column.instrument as usize * W;
        let row = &unit_pnl[start..start + W];
        for (total, unit) in total.iter_mut().zip(row) {
            for (total, unit) in total.iter_mut().zip(unit) {
                *total += column.amount * unit;
            }
        }
    }
    total
}

/// [`lean_charges`] for rows of any width: the sums through `lanes`, in blocks of registers.
fn lean_charges_any(
    book_u: &UnderlyingBook,
    u: usize,
    columns: &[Column],
    currency: &ReportCurrency,
    lanes: &mut Vec<Lane>,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let packed = &book_u.packed;
    let sums = delta_sums(packed, columns)?;
    lanes.clear();
    lanes.resize(packed.lanes, [0.0; LANES]);
    sum_rows(&packed.unit_pnl, packed.lanes, 0, columns, lanes).ok_or_else(outside)?;
    push_charges(book_u, u, currency, lanes, &sums, out)
}

/// Sums the account's rows (`columns`, in their order) of the packed matrix `unit_pnl` (rows of
/// `width` lanes) over lanes `first..first + out.len()` into `out`, a block of up to 12 lanes at a
/// time with every lane's sum in a register (as [`lean_charges_fixed`]). `None` when a row is
/// outside the matrix.
fn sum_rows(
    unit_pnl: &[Lane],
    width: usize,
    first: usize,
    columns: &[Column],
    out: &mut [Lane],
) -> Option<()> {
    match out.len() {
        0 => Some(()),
        1 => sum_block::<1>(unit_pnl, width, first, columns, out),
        2 => sum_block::<2>(unit_pnl, width, first, columns, out),
        3 => sum_block::<3>(unit_pnl, width, first, columns, out),
        4 => sum_block::<4>(unit_pnl, width, first, columns, out),
        5 => sum_block::<5>(unit_pnl, width, first, columns, out),
        6 => sum_block::<6>(unit_pnl, width, first, columns, out),
        7 => sum_block::<7>(unit_pnl, width, first, columns, out),
        8 => sum_block::<8>(unit_pnl, width, first, columns, out),
        9 => sum_block::<9>(unit_pnl, width, first, columns, out),
        10 => sum_block::<10>(unit_pnl, width, first, columns, out),
        11 => sum_block::<11>(unit_pnl, width, first, columns, out),
        12 => sum_block::<12>(unit_pnl, width, first, columns, out),
        _ => {
            // Longer rows: blocks of 8 lanes, then the rest.
            let (head, tail) = out.split_at_mut(8);
            sum_block::<8>(unit_pnl, width, first, columns, head)?;
            sum_rows(unit_pnl, width, first + 8, columns, tail)
        }
    }
}

/// [`sum_rows`] over a block of `W` lanes (`out.len() == W`).
#[inline]
fn sum_block<const W: usize>(
    unit_pnl: &[Lane],
    width: usize,
    first: usize,
    columns: &[Column],
    out: &mut [Lane],
) -> Option<()> {
    let mut total = [[0.0; LANES]; W];
    for column in columns {
        let start = (column.instrument as usize)
            .checked_mul(width)?
            .checked_add(first)?;
        let row: &[Lane; W] = unit_pnl
            .get(start..start.checked_add(W)?)?
            .try_into()
            .ok()?;
        for (total, unit) in total.iter_mut().zip(row) {
            for (total, unit) in total.iter_mut().zip(unit) {
                *total += column.amount * unit;
            }
        }
    }
    out.copy_from_slice(&total);
    Some(())
}

/// The first scenario of least weighted P&L `value x inverse x weight`, branch-free: each lane
/// keeps its own strict minimum and where it was, then the lanes meet (least value, then least
/// index), which is the first minimum a plain `<` scan finds. NaN (the padding's weight) never
/// counts; with no finite minimum the result is scenario 0 at `+inf`, as in the scan.
///
/// Kept out of line: unrolled over a constant width (as it would be inlined into
/// [`lean_charges_fixed`]), a search written like this one was compiled to scalar code (the
/// compiler sees a reduction it may not reorder), which cost more than the call.
#[inline(never)]
fn lowest(lanes: &[Lane], weight: &[Lane], inverse: f64) -> Worst {
    let mut low = [f64::INFINITY; LANES];
    let mut at = [0.0_f64; LANES];
    let mut base = 0.0;
    for (lane, weight) in lanes.iter().zip(weight) {
        for k in 0..LANES {
            let value = lane[k] * inverse * weight[k];
            let below = value < low[k];
            low[k] = if below { value } else { low[k] };
            at[k] = if below { base + k as f64 } else { at[k] };
        }
        base += LANES as f64;
    }
    // The lanes meet with selects only (which lane holds the minimum is data, not a pattern a
    // branch predictor learns): the least value, then the least index holding it.
    let least = low.iter().fold(
        f64::INFINITY,
        |least, &value| if value < least { value } else { least },
    );
    let first = low
        .iter()
        .zip(&at)
        .fold(f64::INFINITY, |first, (&value, &index)| {
            let index = if value == least { index } else { f64::INFINITY };
            if index < first { index } else { first }
        });
    if least < f64::INFINITY {
        // Scenario counts are small: the index is exact in an f64.
        Worst {
            index: first as usize,
            pnl: least,
        }
    } else {
        Worst {
            index: 0,
            pnl: f64::INFINITY,
        }
    }
}

/// The charges of underlying `u` from its worst scenario and delta sums (shared by both paths);
/// `to_report` converts a USD amount at today's prices into the report currency.
#[inline]
fn settle(
    scan: Scan<'_>,
    u: usize,
    to_report: impl Fn(f64) -> f64,
    worst: Worst,
    sums: &DeltaSums,
) -> Result<Charges, RiskError> {
    let params = scan.params;
    let DeltaSums {
        net_delta,
        long_delta,
        short_delta,
        short_contracts,
        roll,
    } = *sums;
    let Worst {
        index: worst,
        pnl: worst_pnl,
    } = worst;
    let worst_scenario = scan.scenarios.get(worst).ok_or_else(outside)?;
    let scan_risk = (-worst_pnl).max(0.0);
    let price = scan.price_usd;
    let hedged_delta = long_delta.min(short_delta);
    let min_delta_charge = to_report(
        (params.min_delta_rate * net_delta.abs() + params.hedged_delta_rate * hedged_delta) * price,
    );
    let short_option_charge = to_report(params.short_option_minimum * short_contracts * price);
    let roll_charge = to_report(roll.abs());
    let delta_shock_charge = to_report(
        (net_delta.abs() - params.delta_shock_threshold).max(0.0) * price * params.delta_shock_rate,
    );
    let notional = (net_delta * price).abs();
    let liquidity_charge = if params.adv_usd > 0.0 {
        to_report(
            notional * (params.half_spread + params.impact * (notional / params.adv_usd).sqrt()),
        )
    } else {
        to_report(notional * params.half_spread)
    };
    let concentration_charge = to_report(
        (notional - params.concentration_threshold_usd).max(0.0) * params.concentration_rate,
    );
    let mut floored_risk = scan_risk;
    let mut additive_charge = roll_charge + delta_shock_charge;
    let mut binding_floor = None;
    for (charge, combine, floor) in [
        (min_delta_charge, params.min_delta_combine, Floor::MinDelta),
        (
            short_option_charge,
            params.short_option_combine,
            Floor::ShortOption,
        ),
    ] {
        match combine {
            Combine::Add => additive_charge += charge,
            Combine::Floor if charge > floored_risk => {
                floored_risk = charge;
                binding_floor = Some(floor);
            }
            Combine::Floor => {}
        }
    }
    Ok(Charges {
        underlying: u,
        worst,
        worst_pnl,
        scan_risk,
        min_delta_charge,
        short_option_charge,
        floored_risk,
        binding_floor,
        roll_charge,
        delta_shock_charge,
        additive_charge,
        liquidity_charge,
        concentration_charge,
        net_delta,
        direction: if worst_scenario.price_move > 0.0 {
            -1.0
        } else {
            1.0
        },
    })
}

/// The cross-underlying combination (beyond Deribit, which margins each currency alone):
/// `R = sqrt(max(0, sum_u sum_v rho_uv d_u d_v R_u R_v))`, never below `(1 - max_offset) sum R_u`
/// nor above `sum R_u`. Returns `(sum R_u, R, the unbounded correlated R)`.
fn combine<T>(
    charges: &[T],
    leg: impl Fn(&T) -> Leg,
    correlations: &Correlations,
    max_offset: f64,
) -> (f64, f64, f64) {
    let summed: f64 = charges.iter().map(|c| leg(c).floored_risk).sum();
    let mut quadratic = 0.0;
    for first in charges {
        let first = leg(first);
        for second in charges {
            let second = leg(second);
            quadratic += correlations.effective(&first, &second)
                * first.direction
                * second.direction
                * first.floored_risk
                * second.floored_risk;
        }
    }
    let correlated = quadratic.max(0.0).sqrt();
    let combined = correlated.max((1.0 - max_offset) * summed).min(summed);
    (summed, combined, correlated)
}

/// Scratch buffers for [`maintenance_margin`] and [`maintenance_margin_prepared`], reused across
/// accounts.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    lanes: Vec<Lane>,
    charges: Vec<LeanCharges>,
    prepared: PreparedExposures,
}

/// One exposure of a [`PreparedExposures`]: compact, so an account's exposures share a cache line
/// or two.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Column {
    underlying: u32,
    instrument: u32,
    amount: f64,
}

/// An account's exposures grouped by underlying, in the book's underlying order and, within an
/// underlying, in the exposures' order (so sums run in the full path's order). Built once per
/// account from its [`Exposure`]s and reused across price updates: it holds only indices and
/// amounts, which a price update does not change (a new [`ScenarioBook`] over the same
/// instruments keeps their indices). Rebuild it when the account's positions change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreparedExposures {
    columns: Vec<Column>,
    /// The runs of `columns` on one underlying, in order (found once here rather than on every
    /// call).
    groups: Vec<Group>,
}

/// A run of a [`PreparedExposures`]' columns on one underlying: it ends (exclusive) at `end`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Group {
    underlying: u32,
    end: u32,
}

impl PreparedExposures {
    /// Groups `exposures` by underlying.
    #[must_use]
    pub fn new(exposures: &[Exposure]) -> Self {
        let mut prepared = Self::default();
        prepared.fill(exposures);
        prepared
    }

    /// Regroups in place, reusing the buffer.
    fn fill(&mut self, exposures: &[Exposure]) {
        // An index past `u32::MAX` cannot be in a book: it becomes one that is outside it.
        let narrow = |index: usize| u32::try_from(index).unwrap_or(u32::MAX);
        self.columns.clear();
        self.columns.extend(exposures.iter().map(|e| Column {
            underlying: narrow(e.underlying),
            instrument: narrow(e.instrument),
            amount: e.amount,
        }));
        // Stable: within an underlying, the account's order.
        self.columns.sort_by_key(|c| c.underlying);
        self.groups.clear();
        let mut end = 0;
        for run in self.columns.chunk_by(|a, b| a.underlying == b.underlying) {
            end += run.len();
            self.groups.push(Group {
                underlying: run.first().map_or(u32::MAX, |c| c.underlying),
                // Past `u32::MAX` exposures, a run that ends outside the columns (an error).
                end: narrow(end),
            });
        }
    }

    /// Number of exposures.
    #[must_use]
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the account has no exposure.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// The maintenance margin of one account: the lean path for populations (no attribution, no
/// explanation, no allocation once `scratch` has grown). It leaves out historical expected
/// shortfall: it equals [`portfolio_risk`]`.maintenance_margin` (to rounding, see
/// [`maintenance_margin_prepared`]) when ES is disabled or does not bind. Groups `exposures` by
/// underlying on each call; an account margined at many prices should be prepared once with
/// [`PreparedExposures::new`] and go through [`maintenance_margin_prepared`].
///
/// # Errors
/// [`RiskError::Unsupported`] when an exposure points outside the book.
pub fn maintenance_margin(
    book: &ScenarioBook,
    correlations: &Correlations,
    max_offset: f64,
    exposures: &[Exposure],
    currency: &ReportCurrency,
    scratch: &mut Scratch,
) -> Result<f64, RiskError> {
    let mut prepared = std::mem::take(&mut scratch.prepared);
    prepared.fill(exposures);
    let result =
        maintenance_margin_prepared(book, correlations, max_offset, &prepared, currency, scratch);
    scratch.prepared = prepared;
    result
}

/// [`maintenance_margin`] of a prepared account: per underlying, the account's rows of the packed
/// unit P&L matrix summed lane by lane, then the charges and the cross-underlying offset. Leaves
/// out historical ES. The scenario P&L, charges and combination use the full path's operations in
/// its order, except one: converting to a report asset not priced by the underlying multiplies by
/// `1 / price` (computed once) instead of dividing each amount, which can move the result by an
/// ulp or two. When the report asset is worth exactly 1 USD the result is the full path's bit for
/// bit (tested).
///
/// # Errors
/// [`RiskError::Unsupported`] when an exposure points outside the book, or the book's instruments
/// were changed after it was built.
pub fn maintenance_margin_prepared(
    book: &ScenarioBook,
    correlations: &Correlations,
    max_offset: f64,
    account: &PreparedExposures,
    currency: &ReportCurrency,
    scratch: &mut Scratch,
) -> Result<f64, RiskError> {
    scratch.charges.clear();
    let mut start = 0;
    for group in &account.groups {
        let end = group.end as usize;
        let columns = account.columns.get(start..end).ok_or_else(outside)?;
        start = end;
        let u = group.underlying as usize;
        let (_, book_u) = book.underlyings.get_index(u).ok_or_else(outside)?;
        lean_charges(
            book_u,
            u,
            columns,
            currency,
            &mut scratch.lanes,
            &mut scratch.charges,
        )?;
    }
    let (_, combined, _) = combine(&scratch.charges, |c| c.leg, correlations, max_offset);
    // Summed as `portfolio_risk` sums them (`combined + additive`, then liquidity).
    let additive: f64 = scratch.charges.iter().map(|c| c.additive).sum();
    let liquidity: f64 = scratch.charges.iter().map(|c| c.liquidity).sum();
    Ok(combined + additive + liquidity)
}

/// Computes the portfolio margin of an account's `exposures` against `book`, with the Euler
/// attribution of the maintenance margin to each exposure.
///
/// # Errors
/// [`RiskError::Unsupported`] when an exposure points outside the book.
pub fn portfolio_risk(
    book: &ScenarioBook,
    params: &PortfolioMarginParams,
    exposures: &[Exposure],
    currency: &ReportCurrency,
) -> Result<PortfolioRisk, RiskError> {
    let correlations = Correlations::new(book, params);
    let mut pnl = Vec::new();
    let mut all = Vec::new();
    for (u, book_u) in book.underlyings.values().enumerate() {
        if let Some(charges) = charges(book_u, u, exposures, currency, &mut pnl)? {
            all.push(charges);
        }
    }
    let (summed_risk, combined_risk, correlated) =
        combine(&all, Charges::leg, &correlations, params.max_offset);
    let floor = (1.0 - params.max_offset) * summed_risk;
    let mut attribution = vec![0.0; exposures.len()];
    let mut liquidity_attribution = vec![0.0; exposures.len()];
    let mut additive_contingencies = 0.0;
    let mut liquidity = 0.0;
    let mut underlyings = Vec::with_capacity(all.len());
    for charge in &all {
        let (name, book_u) = book
            .underlyings
            .get_index(charge.underlying)
            .ok_or_else(outside)?;
        let members: Vec<usize> = exposures
            .iter()
            .enumerate()
            .filter(|(_, e)| e.underlying == charge.underlying)
            .map(|(index, _)| index)
            .collect();
        let unit = |index: usize| -> Option<(&Exposure, &InstrumentRisk)> {
            let exposure = exposures.get(index)?;
            Some((
                exposure,
                book_u.instruments.get_index(exposure.instrument)?.1,
            ))
        };
        let worst_weight = book_u.scenarios.get(charge.worst).map_or(1.0, |s| s.weight);
        let loss = |index: usize| {
            unit(index).map_or(0.0, |(e, r)| {
                -currency.convert(
                    charge.underlying,
                    e.amount * r.unit_pnl.get(charge.worst).copied().unwrap_or(0.0),
                    0.0,
                ) * worst_weight
            })
        };
        let delta =
            |index: usize| unit(index).map_or(0.0, |(e, r)| (e.amount * r.unit_delta).abs());
        let short = |index: usize| {
            unit(index).map_or(0.0, |(e, r)| {
                if r.is_option && e.amount < 0.0 {
                    -e.amount
                } else {
                    0.0
                }
            })
        };
        let roll = |index: usize| unit(index).map_or(0.0, |(e, r)| (e.amount * r.roll_unit).abs());
        let mut share = |total: f64, driver: &dyn Fn(usize) -> f64, scale: f64| {
            let weights: Vec<f64> = members.iter().map(|&i| driver(i)).collect();
            let sum: f64 = weights.iter().sum();
            for (&index, weight) in members.iter().zip(&weights) {
                let part = if sum.abs() > 0.0 {
                    total * weight / sum
                } else {
                    total / members.len() as f64
                };
                if let Some(slot) = attribution.get_mut(index) {
                    *slot += part * scale;
                }
            }
        };
        // Euler shares of the combination: c_u = R_u dR/dR_u = R_u sum_v rho d_u d_v R_v / R,
        // which sum to R; when a bound binds, every underlying scales alike.
        let scale = if charge.floored_risk <= 0.0 || combined_risk <= 0.0 {
            0.0
        } else if correlated > floor && correlated < summed_risk {
            all.iter()
                .map(|other| {
                    correlations.effective(&charge.leg(), &other.leg())
                        * charge.direction
                        * other.direction
                        * other.floored_risk
                })
                .sum::<f64>()
                / combined_risk
        } else {
            combined_risk / summed_risk
        };
        // The floored risk by its driver: each exposure's loss in the worst scenario (Euler: the
        // losses sum to the scan risk), or the binding floor's own driver.
        match charge.binding_floor {
            Some(Floor::MinDelta) => share(charge.floored_risk, &delta, scale),
            Some(Floor::ShortOption) => share(charge.floored_risk, &short, scale),
            None => share(charge.floored_risk, &loss, scale),
        }
        let params_u = &book_u.params;
        share(charge.roll_charge, &roll, 1.0);
        share(charge.delta_shock_charge, &delta, 1.0);
        if params_u.min_delta_combine == Combine::Add {
            share(charge.min_delta_charge, &delta, 1.0);
        }
        if params_u.short_option_combine == Combine::Add {
            share(charge.short_option_charge, &short, 1.0);
        }
        let liquidity_total = charge.liquidity_charge + charge.concentration_charge;
        {
            let weights: Vec<f64> = members.iter().map(|&i| delta(i)).collect();
            let sum: f64 = weights.iter().sum();
            for (&index, weight) in members.iter().zip(&weights) {
                let part = if sum > 0.0 {
                    liquidity_total * weight / sum
                } else {
                    liquidity_total / members.len() as f64
                };
                if let Some(slot) = liquidity_attribution.get_mut(index) {
                    *slot += part;
                }
            }
        }
        share(liquidity_total, &delta, 1.0);
        additive_contingencies += charge.additive_charge;
        liquidity += charge.liquidity_charge + charge.concentration_charge;
        underlyings.push(UnderlyingRisk {
            underlying: name.clone(),
            worst_scenario: book_u
                .scenarios
                .get(charge.worst)
                .map(Scenario::label)
                .unwrap_or_default(),
            worst_pnl: charge.worst_pnl,
            scan_risk: charge.scan_risk,
            min_delta_charge: charge.min_delta_charge,
            short_option_charge: charge.short_option_charge,
            floored_risk: charge.floored_risk,
            roll_charge: charge.roll_charge,
            additive_charge: charge.additive_charge,
            delta_shock_charge: charge.delta_shock_charge,
            liquidity_charge: charge.liquidity_charge,
            concentration_charge: charge.concentration_charge,
            net_delta: charge.net_delta,
            direction: charge.direction,
        });
    }
    let expected_shortfall = expected_shortfall(book, params, exposures, currency)?;
    let scan_total = combined_risk + additive_contingencies;
    if let Some((figures, tail_parts)) = &expected_shortfall
        && figures.loss > scan_total
    {
        // ES binds: the scan's and contingencies' attribution gives way to each exposure's mean
        // loss over the tail scenarios (the tail weights sum to one, so the parts sum to ES).
        for (index, slot) in attribution.iter_mut().enumerate() {
            let liquidity_part = liquidity_attribution.get(index).copied().unwrap_or(0.0);
            *slot = tail_parts.get(index).copied().unwrap_or(0.0) + liquidity_part;
        }
    }
    let expected_shortfall = expected_shortfall.map(|(figures, _)| figures);
    let binding_es = expected_shortfall.as_ref().map_or(0.0, |es| es.loss);
    let maintenance_margin = scan_total.max(binding_es) + liquidity;
    Ok(PortfolioRisk {
        underlyings,
        summed_risk,
        combined_risk,
        additive_contingencies,
        liquidity,
        expected_shortfall,
        maintenance_margin,
        initial_margin: params.im_factor * maintenance_margin,
        attribution,
    })
}

/// Historical expected shortfall of the exposures (when the book carries historical scenarios),
/// with each exposure's weighted mean tail loss (summing to the ES).
fn expected_shortfall(
    book: &ScenarioBook,
    params: &PortfolioMarginParams,
    exposures: &[Exposure],
    currency: &ReportCurrency,
) -> Result<Option<(ExpectedShortfallFigures, Vec<f64>)>, RiskError> {
    let (Some(historical), Some(moves)) = (&params.historical, &book.historical_moves) else {
        return Ok(None);
    };
    let count = book.historical_dates.len();
    if count == 0 {
        return Ok(None);
    }
    let mut usd = vec![0.0; count];
    let mut per_exposure: Vec<&[f64]> = Vec::with_capacity(exposures.len());
    for exposure in exposures {
        let risk = book
            .underlyings
            .get_index(exposure.underlying)
            .and_then(|(_, b)| b.instruments.get_index(exposure.instrument))
            .ok_or_else(outside)?
            .1;
        for (total, unit) in usd.iter_mut().zip(&risk.historical_pnl) {
            *total += exposure.amount * unit;
        }
        per_exposure.push(&risk.historical_pnl);
    }
    let pnls: Vec<f64> = usd
        .iter()
        .enumerate()
        .map(|(t, value)| currency.convert_joint(*value, moves, t))
        .collect();
    let statistics = |error: crate::history::HistoryError| RiskError::Unsupported {
        path: "portfolio_margin.historical".to_owned(),
        problem: error.to_string(),
    };
    let shortfall =
        crate::history::expected_shortfall(&pnls, historical.level).map_err(statistics)?;
    let var_99 = crate::history::value_at_risk(&pnls, 0.99).map_err(statistics)?;
    let loss = shortfall.loss.max(0.0);
    let mut parts: Vec<f64> = per_exposure
        .iter()
        .zip(exposures)
        .map(|(units, exposure)| {
            shortfall
                .tail
                .iter()
                .map(|tail| {
                    let value = exposure.amount * units.get(tail.scenario).copied().unwrap_or(0.0);
                    -currency.convert_joint(value, moves, tail.scenario) * tail.weight
                })
                .sum()
        })
        .collect();
    // Re-expressing the rest of a coin-margined account's equity is not any one exposure's: scale
    // the parts so they sum to the ES exactly.
    let sum: f64 = parts.iter().sum();
    if sum.abs() > 0.0 {
        for part in &mut parts {
            *part *= loss / sum;
        }
    }
    let worst = pnls
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(index, _)| index);
    Ok(Some((
        ExpectedShortfallFigures {
            level: historical.level,
            loss,
            value_at_risk_99: var_99.loss,
            scenarios: count,
            worst_date: book
                .historical_dates
                .get(worst)
                .cloned()
                .unwrap_or_default(),
        },
        parts,
    )))
}

/// The exposures of a portfolio's cross pool (positions without isolated margin, and spot
/// balances of assets priced by a scanned underlying), located in `book`.
///
/// # Errors
/// [`RiskError::Unsupported`] when a position's instrument is not in the book.
pub fn exposures(portfolio: &Portfolio, book: &ScenarioBook) -> Result<Vec<Exposure>, RiskError> {
    let mut result = Vec::new();
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

/// How one instrument of the moved underlying's book is revalued at a step of a
/// liquidation-move search (as [`ScenarioBook::new`] revalues it in the moved market).
enum MovedRow {
    /// A spot balance (`spot:ASSET`): `S x move`.
    Spot,
    /// A perpetual or future: `per unit x move`, per unit its moved mark (linear) or the moved
    /// index (inverse, see `revaluation`); `years` to the roll shock's horizon.
    Linear { inverse: bool, years: f64 },
    /// An option.
    Option(MovedOption),
}

/// What an option's revaluation keeps across moves of its underlying: everything but the
/// forward and the volatility its moved mark implies.
struct MovedOption {
    kind: solvent_pricing::black76::OptionType,
    inverse: bool,
    strike: f64,
    time: f64,
    /// `exp(r T)`: the forward is the index carried at the market rate.
    carry: f64,
    discount: f64,
    /// The term-structure factor of the volatility shocks.
    scale: f64,
    /// The surface's volatility when the market gives no mark (a price move leaves it as it
    /// is); `None` when the volatility is implied by the moved mark.
    surface_volatility: Option<f64>,
}

/// An account's portfolio margin as one underlying moves alone, for the liquidation-move
/// search: the moved underlying's instruments are revalued at each step (the same operations,
/// in the same order, as a [`ScenarioBook`] built on the moved market), while every other
/// underlying's scenario P&L and delta sums, which the move does not change, are summed once.
/// Only their conversion into the report currency, which the move may change, is redone. The
/// figures are [`portfolio_risk`]'s bit for bit; historical expected shortfall is not
/// computed here (the search then takes the full path).
pub struct MovedBook {
    book: ScenarioBook,
    /// The moved underlying's index in the book.
    moved: usize,
    /// Its instruments' names, in the book's order.
    names: Vec<String>,
    rows: Vec<MovedRow>,
    /// The account's exposures on the moved underlying, in its order: (row, amount).
    held: Vec<(usize, f64)>,
    /// Per book underlying other than the moved one: the account's USD P&L per scenario and
    /// delta sums (`None` where it holds nothing).
    others: Vec<Option<(Vec<f64>, DeltaSums)>>,
    correlations: Correlations,
    max_offset: f64,
    im_factor: f64,
    scratch: MovedScratch,
}

/// Buffers reused from one step to the next.
#[derive(Default)]
struct MovedScratch {
    /// Unit P&L, rows x scenarios.
    unit_pnl: Vec<f64>,
    /// Per row: (delta, roll, is an option).
    units: Vec<(f64, f64, bool)>,
    pnl: Vec<f64>,
    charges: Vec<Charges>,
}

/// Rows of the moved book revalued together: their options' batch columns (37 rows of 48 bytes
/// each per option) then stay in the cache, where one batch of the whole book streamed
/// megabytes through memory at every step.
const MOVED_BLOCK: usize = 64;

/// A block's buffers (one set per worker).
#[derive(Default)]
struct BlockScratch {
    /// Per option of the block: (row in the block, first batch row).
    options: Vec<(usize, usize)>,
    moves: Vec<(f64, Option<f64>)>,
    columns: OwnedColumns,
    valued: GreeksBatch,
}

/// What every row of one step reads.
struct MovedStep<'a> {
    spot: f64,
    scenarios: &'a [Scenario],
    params: &'a UnderlyingParams,
}

impl MovedStep<'_> {
    /// Revalues a block of rows: their unit P&L (`unit_pnl`, rows x scenarios) and units.
    fn revalue(
        &self,
        rows: &[MovedRow],
        marks: &[Option<f64>],
        unit_pnl: &mut [f64],
        units: &mut [(f64, f64, bool)],
        scratch: &mut BlockScratch,
    ) -> Option<()> {
        let Self {
            spot,
            scenarios,
            params,
        } = *self;
        let count = scenarios.len();
        scratch.options.clear();
        let columns = &mut scratch.columns;
        for column in [
            &mut columns.forward,
            &mut columns.strike,
            &mut columns.time,
            &mut columns.volatility,
            &mut columns.discount,
        ] {
            column.clear();
        }
        columns.kind.clear();
        for (row, ((kind, mark), unit)) in rows
            .iter()
            .zip(marks)
            .zip(unit_pnl.chunks_mut(count))
            .enumerate()
        {
            let slot = units.get_mut(row)?;
            match kind {
                MovedRow::Spot => {
                    for (value, scenario) in unit.iter_mut().zip(scenarios) {
                        *value = spot * scenario.price_move;
                    }
                    *slot = (1.0, 0.0, false);
                }
                MovedRow::Linear { inverse, years } => {
                    let per_unit = if *inverse { spot } else { (*mark)? };
                    for (value, scenario) in unit.iter_mut().zip(scenarios) {
                        *value = per_unit * scenario.price_move;
                    }
                    *slot = (1.0, spot * params.roll_shock * years.sqrt(), false);
                }
                MovedRow::Option(option) => {
                    let forward = spot * option.carry;
                    let volatility = match (option.surface_volatility, mark) {
                        (Some(volatility), _) => volatility,
                        (None, Some(mark)) if option.time > 0.0 => {
                            let usd = if option.inverse { mark * spot } else { *mark };
                            implied_volatility(
                                usd,
                                forward,
                                option.strike,
                                option.time,
                                option.discount,
                                option.kind,
                            )
                            .ok()?
                        }
                        (None, Some(_)) => 0.0,
                        (None, None) => return None,
                    };
                    let model = Black76::new_checked(
                        forward,
                        option.strike,
                        option.time,
                        volatility,
                        option.discount,
                    )
                    .ok()?;
                    // dV/dS = dV/dF x F/S, as `revaluation`.
                    *slot = (model.greeks(option.kind).delta * forward / spot, 0.0, true);
                    let unshocked = model.volatility();
                    scratch.moves.clear();
                    scratch.moves.extend(scenarios.iter().map(|scenario| {
                        let shocked = shocked_volatility_scaled(
                            unshocked,
                            option.scale,
                            scenario.vol,
                            params,
                        );
                        (scenario.price_move, Some(shocked))
                    }));
                    scratch.options.push((row, columns.forward.len()));
                    push_option_rows(columns, &model, option.kind, &scratch.moves);
                }
            }
        }
        if scratch.options.is_empty() {
            return Some(());
        }
        price_and_greeks_checked(columns.columns(), &mut scratch.valued).ok()?;
        let prices = scratch.valued.price();
        for &(row, start) in &scratch.options {
            let base = *prices.get(start)?;
            let shocked = prices.get(start + 1..=start + count)?;
            let unit = unit_pnl.get_mut(row * count..(row + 1) * count)?;
            for (value, price) in unit.iter_mut().zip(shocked) {
                *value = price - base;
            }
        }
        Some(())
    }
}

impl MovedBook {
    /// Prepares the search along `underlying` from the account's `book` and `exposures` at the
    /// unmoved market (`instruments` are the cross pool's, as given to [`ScenarioBook::new`]).
    /// `None` when the venue's margin includes historical expected shortfall, or the book holds
    /// an instrument this path does not revalue: the search then rebuilds the full book.
    ///
    /// # Errors
    /// [`RiskError`] as [`ScenarioBook::new`] on the unmoved market.
    pub fn new(
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        book: ScenarioBook,
        exposures: &[Exposure],
        underlying: &str,
        instruments: &[&Instrument],
    ) -> Result<Option<Self>, RiskError> {
        if params.historical.is_some() && view.history().is_some() {
            return Ok(None);
        }
        let Some((moved, _, book_u)) = book.underlyings.get_full(underlying) else {
            return Ok(None);
        };
        let by_name: std::collections::HashMap<&str, &Instrument> = instruments
            .iter()
            .rev()
            .map(|instrument| (instrument.name.as_str(), *instrument))
            .collect();
        let mut rows = Vec::with_capacity(book_u.instruments.len());
        for name in book_u.instruments.keys() {
            let Some(instrument) = by_name.get(name.as_str()) else {
                if name.starts_with("spot:") {
                    rows.push(MovedRow::Spot);
                    continue;
                }
                return Ok(None);
            };
            rows.push(match &instrument.terms {
                Terms::Perpetual | Terms::Future { .. } => MovedRow::Linear {
                    inverse: instrument.style == Style::Inverse,
                    years: instrument
                        .terms
                        .expiry()
                        .map_or(1.0 / DAYS_PER_YEAR, |expiry| {
                            view.years_to(expiry).max(1.0 / DAYS_PER_YEAR)
                        }),
                },
                Terms::Option {
                    expiry,
                    strike,
                    right,
                } => {
                    let time = view.years_to(*expiry).max(0.0);
                    let strike = strike.to_f64();
                    let rate = view.market().rate;
                    let given = view.market().mark.contains_key(&instrument.name);
                    MovedRow::Option(MovedOption {
                        kind: option_type(*right),
                        inverse: instrument.style == Style::Inverse,
                        strike,
                        time,
                        carry: (rate * time).exp(),
                        discount: (-rate * time).exp(),
                        scale: vol_shock_scale(time * DAYS_PER_YEAR, &book_u.params),
                        surface_volatility: if given {
                            None
                        } else {
                            Some(view.model_volatility(instrument, strike, time)?)
                        },
                    })
                }
            });
        }
        let mut held = Vec::new();
        for exposure in exposures.iter().filter(|e| e.underlying == moved) {
            if exposure.instrument >= rows.len() {
                return Err(outside());
            }
            held.push((exposure.instrument, exposure.amount));
        }
        let mut others = Vec::with_capacity(book.underlyings.len());
        for (u, book_v) in book.underlyings.values().enumerate() {
            let mut pnl = Vec::new();
            let sums = if u == moved {
                None
            } else {
                scenario_totals(book_v, u, exposures, &mut pnl)?
            };
            others.push(sums.map(|sums| (pnl, sums)));
        }
        Ok(Some(Self {
            names: book_u.instruments.keys().cloned().collect(),
            correlations: Correlations::new(&book, params),
            max_offset: params.max_offset,
            im_factor: params.im_factor,
            book,
            moved,
            rows,
            held,
            others,
            scratch: MovedScratch::default(),
        }))
    }

    /// The moved underlying's instruments (spot balances as `spot:ASSET`), in the order
    /// [`MovedBook::margin`] takes their marks.
    #[must_use]
    pub fn instruments(&self) -> &[String] {
        &self.names
    }

    /// `(maintenance, initial)` margin in the report currency, before rounding, with the moved
    /// underlying's index at `spot` (USD) and its instruments' marks at `marks` (in the order of
    /// [`MovedBook::instruments`], as `f64`: a perpetual's or future's mark as the report reads
    /// it, an option's mark where the market gives one, `None` for spot balances and options
    /// priced by the surface). `None` when a revaluation fails: the full path then reports why.
    pub fn margin(
        &mut self,
        spot: f64,
        marks: &[Option<f64>],
        currency: &ReportCurrency,
    ) -> Option<(f64, f64)> {
        let (_, book_u) = self.book.underlyings.get_index(self.moved)?;
        let scenarios = &book_u.scenarios;
        let params = &book_u.params;
        let count = scenarios.len();
        if marks.len() != self.rows.len() || count == 0 {
            return None;
        }
        let scratch = &mut self.scratch;
        // Every row is written below (or the step fails): no need to clear them first.
        scratch.unit_pnl.resize(self.rows.len() * count, 0.0);
        scratch.units.resize(self.rows.len(), (0.0, 0.0, false));
        let step = MovedStep {
            spot,
            scenarios,
            params,
        };
        // Blocks of rows revalued apart, on every core: each row's figures are its own whatever
        // the block or the thread (the batch kernel values each option alone), and the sums
        // below run in the account's order, so the result does not depend on the scheduling.
        self.rows
            .par_chunks(MOVED_BLOCK)
            .zip(marks.par_chunks(MOVED_BLOCK))
            .zip(scratch.unit_pnl.par_chunks_mut(MOVED_BLOCK * count))
            .zip(scratch.units.par_chunks_mut(MOVED_BLOCK))
            .try_for_each_init(
                BlockScratch::default,
                |block, (((rows, marks), unit_pnl), units)| {
                    step.revalue(rows, marks, unit_pnl, units, block)
                },
            )?;
        // The account's sums, in its order (as `scenario_totals`).
        scratch.pnl.clear();
        scratch.pnl.resize(count, 0.0);
        let mut sums = DeltaSums::default();
        for &(row, amount) in &self.held {
            let unit = scratch.unit_pnl.get(row * count..(row + 1) * count)?;
            for (total, unit) in scratch.pnl.iter_mut().zip(unit) {
                *total += amount * unit;
            }
            let &(delta, roll, is_option) = scratch.units.get(row)?;
            sums.add(amount, delta, roll, is_option);
        }
        scratch.charges.clear();
        for (u, book_v) in self.book.underlyings.values().enumerate() {
            let (pnl, sums, scan) = if u == self.moved {
                if self.held.is_empty() {
                    continue;
                }
                let scan = Scan {
                    params,
                    scenarios,
                    price_usd: spot,
                };
                (&scratch.pnl, &sums, scan)
            } else {
                let Some((pnl, sums)) = self.others.get(u)?.as_ref() else {
                    continue;
                };
                (pnl, sums, book_v.scan())
            };
            let worst = Worst::of(pnl, scan.scenarios, currency, u);
            let to_report = |usd: f64| currency.convert(u, usd, 0.0);
            scratch
                .charges
                .push(settle(scan, u, to_report, worst, sums).ok()?);
        }
        // Summed as `portfolio_risk` sums them.
        let (_, combined, _) = combine(
            &scratch.charges,
            Charges::leg,
            &self.correlations,
            self.max_offset,
        );
        let mut additive = 0.0;
        let mut liquidity = 0.0;
        for charge in &scratch.charges {
            additive += charge.additive_charge;
            liquidity += charge.liquidity_charge + charge.concentration_charge;
        }
        // No expected shortfall here: `max(scan, 0)`, as `portfolio_risk` takes it without one.
        let maintenance = (combined + additive).max(0.0) + liquidity;
        Some((maintenance, self.im_factor * maintenance))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use solvent_core::market::Market;
    use solvent_core::venue::Venue;

    use super::*;

    /// The full path's scan, written plainly: the first scenario strictly below all before it.
    fn strict_scan(values: &[f64], weights: &[f64], inverse: f64) -> Worst {
        let mut worst = Worst {
            index: 0,
            pnl: f64::INFINITY,
        };
        for (index, (value, weight)) in values.iter().zip(weights).enumerate() {
            let weighted = value * inverse * weight;
            if weighted < worst.pnl {
                worst = Worst {
                    index,
                    pnl: weighted,
                };
            }
        }
        worst
    }

    fn to_lanes(values: &[f64], fill: f64) -> Vec<Lane> {
        let mut flat = values.to_vec();
        flat.resize(values.len().div_ceil(LANES) * LANES, fill);
        flat.chunks_exact(LANES)
            .map(|chunk| {
                let mut lane = [fill; LANES];
                lane.copy_from_slice(chunk);
                lane
            })
            .collect()
    }

    #[test]
    fn lowest_finds_the_first_minimum_a_strict_scan_finds() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Few distinct values, so ties across lanes are common; NaN, signed zeros, infinities.
        let pool = [
            -3.0,
            -1.0,
            -0.0,
            0.0,
            2.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for case in 0..20_000 {
            let count = rng.random_range(1..=40);
            let values: Vec<f64> = (0..count)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect();
            let weights: Vec<f64> = (0..count)
                .map(|_| if rng.random_bool(0.8) { 1.0 } else { 0.5 })
                .collect();
            let expected = strict_scan(&values, &weights, 1.0);
            let got = lowest(&to_lanes(&values, 0.0), &to_lanes(&weights, f64::NAN), 1.0);
            assert_eq!(got.index, expected.index, "case {case}: {values:?}");
            assert!(
                got.pnl == expected.pnl || (got.pnl.is_nan() && expected.pnl.is_nan()),
                "case {case}: {} != {}",
                got.pnl,
                expected.pnl
            );
        }
    }

    const MARKET: &str = r#"{"timestamp":"2026-01-06T08:00:00Z",
        "index":{"BTC":"93859.71","ETH":"3224.99","SOL":"137.9","USDT":"1","USDC":"1"},
        "vol":{"BTC":{"30JAN26":{"strikes":[80000,94000,110000],"vols":[0.55,0.48,0.5]}}},
        "rate":0.03}"#;

    #[test]
    fn prepared_lean_path_is_the_full_paths_maintenance_margin_in_every_report_currency() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
        let params = venue.portfolio_margin.clone().unwrap();
        lean_path_matches_the_full_path(&venue, &params);
    }

    #[test]
    fn prepared_lean_path_is_the_full_paths_for_grids_of_every_width() {
        // 35 scenarios take the register path for 9 lanes; these widths take others: 5 scenarios
        // (2 lanes), 27 + 22 = 49 (13 lanes, past the widest in registers) and 27 + 45 = 72.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
        for extended in [0, 22, 45] {
            let mut params = venue.portfolio_margin.clone().unwrap();
            for underlying in params.underlyings.values_mut() {
                if extended == 0 {
                    underlying.price_moves = vec![-0.1, 0.0, 0.1];
                    underlying.vol_shocks.truncate(1);
                    underlying.extended_moves = vec![-0.5, 2.0];
                } else {
                    underlying.extended_moves = (0..extended)
                        .map(|i| {
                            if i % 2 == 0 {
                                -0.02 * f64::from(i + 1)
                            } else {
                                0.1 * f64::from(i)
                            }
                        })
                        .collect();
                }
            }
            lean_path_matches_the_full_path(&venue, &params);
        }
    }

    fn lean_path_matches_the_full_path(venue: &Venue, params: &PortfolioMarginParams) {
        let params = params.clone();
        let market = Market::from_json("m.json", MARKET).unwrap();
        let view = MarketView::new(venue, &market).unwrap();
        let instruments: Vec<_> = [
            "BTC-PERPETUAL",
            "ETH-PERPETUAL",
            "SOL_USDC-PERPETUAL",
            "BTC-30JAN26-94000-C",
            "BTC-30JAN26-80000-P",
            "BTC-30JAN26-110000-C",
        ]
        .iter()
        .map(|name| venue.instrument(name).unwrap())
        .collect();
        let refs: Vec<&Instrument> = instruments.iter().map(AsRef::as_ref).collect();
        let spot = [("BTC".to_owned(), "BTC".to_owned())];
        let book = ScenarioBook::new(&view, &params, &refs, &spot).unwrap();
        let correlations = Correlations::new(&book, &params);
        let btc = book.underlyings.get_index_of("BTC").unwrap();
        let currencies = [
            ReportCurrency {
                price_usd: 1.0,
                priced_by: None,
                equity_usd: 0.0,
            },
            ReportCurrency {
                price_usd: 0.9997,
                priced_by: None,
                equity_usd: 0.0,
            },
            ReportCurrency {
                price_usd: book.underlyings[btc].price_usd,
                priced_by: Some(btc),
                equity_usd: 250_000.0,
            },
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut scratch = Scratch::default();
        for account in 0..2_000 {
            let count = rng.random_range(1..=8);
            let exposures: Vec<Exposure> = (0..count)
                .map(|_| {
                    let underlying = rng.random_range(0..book.underlyings.len());
                    let rows = book.underlyings[underlying].instruments.len();
                    Exposure {
                        underlying,
                        instrument: rng.random_range(0..rows),
                        amount: rng.random_range(-5.0..5.0),
                        position: None,
                    }
                })
                .collect();
            let prepared = PreparedExposures::new(&exposures);
            assert_eq!(prepared.len(), exposures.len());
            for currency in &currencies {
                let full = portfolio_risk(&book, &params, &exposures, currency)
                    .unwrap()
                    .maintenance_margin;
                let lean = maintenance_margin_prepared(
                    &book,
                    &correlations,
                    params.max_offset,
                    &prepared,
                    currency,
                    &mut scratch,
                )
                .unwrap();
                let unprepared = maintenance_margin(
                    &book,
                    &correlations,
                    params.max_offset,
                    &exposures,
                    currency,
                    &mut scratch,
                )
                .unwrap();
                assert_eq!(lean.to_bits(), unprepared.to_bits());
                assert!(
                    (lean - full).abs() <= 1e-12 * full.abs().max(1.0),
                    "account {account} in {currency:?}: lean {lean} != full {full}"
                );
                if currency.price_usd == 1.0 {
                    // Multiplying by 1 / 1 is dividing by 1: the same operations in the same
                    // order, so the same bits.
                    assert_eq!(lean.to_bits(), full.to_bits(), "account {account}");
                }
            }
        }
    }

    #[test]
    fn an_exposure_outside_the_book_is_an_error_not_a_panic() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        let venue = Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
        let params = venue.portfolio_margin.clone().unwrap();
        let market = Market::from_json("m.json", MARKET).unwrap();
        let view = MarketView::new(&venue, &market).unwrap();
        let perpetual = venue.instrument("BTC-PERPETUAL").unwrap();
        let book = ScenarioBook::new(&view, &params, &[perpetual.as_ref()], &[]).unwrap();
        let correlations = Correlations::new(&book, &params);
        let currency = ReportCurrency {
            price_usd: 1.0,
            priced_by: None,
            equity_usd: 0.0,
        };
        for (underlying, instrument) in [(0, 1), (1, 0), (usize::MAX, 0), (0, usize::MAX)] {
            let exposures = [Exposure {
                underlying,
                instrument,
                amount: 1.0,
                position: None,
            }];
            let result = maintenance_margin(
                &book,
                &correlations,
                params.max_offset,
                &exposures,
                &currency,
                &mut Scratch::default(),
            );
            assert!(matches!(result, Err(RiskError::Unsupported { .. })));
        }
    }
}
