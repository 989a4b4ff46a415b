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

use indexmap::IndexMap;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::portfolio::Portfolio;
pub use solvent_core::portfolio_margin::VolShock;
use solvent_core::portfolio_margin::{
    Combine, PortfolioMarginParams, UnderlyingParams, VolShockMode,
};
use solvent_pricing::black76::Black76;
use solvent_pricing::implied::implied_volatility;

use crate::error::RiskError;
use crate::valuation::{MarkSource, MarketView, option_type};

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
    let days = days_to_expiry.max(1.0);
    let power = if days < 30.0 {
        params.vol_power_short
    } else {
        params.vol_power_long
    };
    let scale = (30.0 / days).powf(power);
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
    /// Instruments by name (spot as `spot:ASSET`).
    pub instruments: IndexMap<String, InstrumentRisk>,
    params: UnderlyingParams,
}

/// Instruments revalued once per scenario, shared by every account that holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioBook {
    /// Books by underlying.
    pub underlyings: IndexMap<String, UnderlyingBook>,
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
        for (symbol, index_name) in spot_assets {
            let book = Self::book_for(&mut underlyings, view, params, index_name)?;
            let name = format!("spot:{symbol}");
            let unit_pnl = book
                .scenarios
                .iter()
                .map(|s| book.price_usd * s.price_move)
                .collect();
            book.instruments.insert(
                name.clone(),
                InstrumentRisk {
                    name,
                    unit_pnl,
                    unit_delta: 1.0,
                    roll_unit: 0.0,
                    is_option: false,
                },
            );
        }
        for instrument in instruments {
            let book = Self::book_for(&mut underlyings, view, params, &instrument.underlying)?;
            if book.instruments.contains_key(&instrument.name) {
                continue;
            }
            let risk = instrument_risk(view, instrument, book)?;
            book.instruments.insert(instrument.name.clone(), risk);
        }
        Ok(Self { underlyings })
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

fn instrument_risk(
    view: &MarketView<'_>,
    instrument: &Instrument,
    book: &UnderlyingBook,
) -> Result<InstrumentRisk, RiskError> {
    let spot = book.price_usd;
    let params = &book.params;
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
            let years = instrument
                .terms
                .expiry()
                .map_or(1.0 / DAYS_PER_YEAR, |expiry| {
                    view.years_to(expiry).max(1.0 / DAYS_PER_YEAR)
                });
            Ok(InstrumentRisk {
                name: instrument.name.clone(),
                unit_pnl: book
                    .scenarios
                    .iter()
                    .map(|s| per_unit * s.price_move)
                    .collect(),
                unit_delta: 1.0,
                roll_unit: spot * params.roll_shock * years.sqrt(),
                is_option: false,
            })
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
            let mark = view.mark(instrument)?;
            // Revalue at the volatility the mark implies: the model's and the market's prices then
            // agree at the unshocked scenario, so P&L is only what the scenario changes.
            let volatility = match mark.source {
                MarkSource::Model { volatility, .. } => volatility,
                MarkSource::Given | MarkSource::Index => {
                    let usd = match instrument.style {
                        Style::Linear => f64_of(mark.price),
                        Style::Inverse => f64_of(mark.price) * spot,
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
            let price_at = |forward: f64, volatility: f64| -> Result<f64, RiskError> {
                Black76::new_checked(forward, strike, time, volatility, discount)
                    .map(|model| model.price(kind))
                    .map_err(|error| RiskError::Pricing {
                        path: format!("vol.{}", instrument.underlying),
                        problem: format!("{}: {error}", instrument.name),
                    })
            };
            let base_model = Black76::new_checked(forward, strike, time, volatility, discount)
                .map_err(|error| RiskError::Pricing {
                    path: format!("vol.{}", instrument.underlying),
                    problem: format!("{}: {error}", instrument.name),
                })?;
            let base = base_model.price(kind);
            let days = time * DAYS_PER_YEAR;
            let unit_pnl = book
                .scenarios
                .iter()
                .map(|scenario| {
                    let shocked = shocked_volatility(volatility, days, scenario.vol, params);
                    price_at(forward * (1.0 + scenario.price_move), shocked)
                        .map(|price| price - base)
                })
                .collect::<Result<Vec<_>, _>>()?;
            // dV/dS = dV/dF x F/S.
            let delta = base_model.greeks(kind).delta * forward / spot;
            Ok(InstrumentRisk {
                name: instrument.name.clone(),
                unit_pnl,
                unit_delta: delta,
                roll_unit: 0.0,
                is_option: true,
            })
        }
    }
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
    /// Maintenance margin: `combined + additive + liquidity` (no historical ES here).
    pub maintenance_margin: f64,
    /// `im_factor x maintenance`.
    pub initial_margin: f64,
    /// Maintenance attributed to each exposure (same order as the exposures), summing to the total.
    pub attribution: Vec<f64>,
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

/// Correlations between the book's underlyings, by index; `None` where the venue gives none.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlations {
    matrix: Vec<Vec<Option<f64>>>,
}

impl Correlations {
    /// The venue's correlations between the book's underlyings.
    #[must_use]
    pub fn new(book: &ScenarioBook, params: &PortfolioMarginParams) -> Self {
        let names: Vec<&String> = book.underlyings.keys().collect();
        Self {
            matrix: names
                .iter()
                .map(|first| {
                    names
                        .iter()
                        .map(|second| params.correlation(first, second))
                        .collect()
                })
                .collect(),
        }
    }

    /// The correlation used between two underlyings. A pair the venue does not give counts as
    /// perfectly adverse (`d_u d_v`), so an unknown correlation never lowers margin.
    fn effective(&self, first: &Charges, second: &Charges) -> f64 {
        self.matrix
            .get(first.underlying)
            .and_then(|row| row.get(second.underlying))
            .copied()
            .flatten()
            .unwrap_or(first.direction * second.direction)
    }
}

fn outside() -> RiskError {
    RiskError::Unsupported {
        path: "portfolio margin".to_owned(),
        problem: "an exposure refers to an instrument outside the scenario book".to_owned(),
    }
}

/// The scan and charges of underlying `u` for the exposures on it; `pnl` is scratch space.
fn charges(
    book_u: &UnderlyingBook,
    u: usize,
    exposures: &[Exposure],
    currency: &ReportCurrency,
    pnl: &mut Vec<f64>,
) -> Result<Option<Charges>, RiskError> {
    let params = &book_u.params;
    pnl.clear();
    pnl.resize(book_u.scenarios.len(), 0.0);
    let mut held = false;
    let (mut net_delta, mut long_delta, mut short_delta, mut short_contracts, mut roll) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
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
        let delta = exposure.amount * risk.unit_delta;
        net_delta += delta;
        if delta > 0.0 {
            long_delta += delta;
        } else {
            short_delta -= delta;
        }
        if risk.is_option && exposure.amount < 0.0 {
            short_contracts -= exposure.amount;
        }
        roll += exposure.amount * risk.roll_unit;
    }
    if !held {
        return Ok(None);
    }
    let mut worst = 0;
    let mut worst_pnl = f64::INFINITY;
    for (index, (value, scenario)) in pnl.iter().zip(&book_u.scenarios).enumerate() {
        let weighted = currency.convert(u, *value, scenario.price_move) * scenario.weight;
        if weighted < worst_pnl {
            worst_pnl = weighted;
            worst = index;
        }
    }
    let worst_scenario = book_u.scenarios.get(worst).ok_or_else(outside)?;
    let scan_risk = (-worst_pnl).max(0.0);
    let to_report = |usd: f64| currency.convert(u, usd, 0.0);
    let price = book_u.price_usd;
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
    Ok(Some(Charges {
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
    }))
}

/// The cross-underlying combination (beyond Deribit, which margins each currency alone):
/// `R = sqrt(max(0, sum_u sum_v rho_uv d_u d_v R_u R_v))`, never below `(1 - max_offset) sum R_u`
/// nor above `sum R_u`. Returns `(sum R_u, R, the unbounded correlated R)`.
fn combine(charges: &[Charges], correlations: &Correlations, max_offset: f64) -> (f64, f64, f64) {
    let summed: f64 = charges.iter().map(|c| c.floored_risk).sum();
    let mut quadratic = 0.0;
    for first in charges {
        for second in charges {
            quadratic += correlations.effective(first, second)
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

/// Scratch buffers for [`maintenance_margin`], reused across accounts.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    pnl: Vec<f64>,
    charges: Vec<Charges>,
}

/// The maintenance margin of one account: the lean path for populations (no attribution, no
/// explanation, no allocation once `scratch` has grown). Equals
/// [`portfolio_risk`]`.maintenance_margin`.
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
    scratch.charges.clear();
    for (u, book_u) in book.underlyings.values().enumerate() {
        if let Some(charges) = charges(book_u, u, exposures, currency, &mut scratch.pnl)? {
            scratch.charges.push(charges);
        }
    }
    let (_, combined, _) = combine(&scratch.charges, correlations, max_offset);
    let add_ons: f64 = scratch
        .charges
        .iter()
        .map(|c| c.additive_charge + c.liquidity_charge + c.concentration_charge)
        .sum();
    Ok(combined + add_ons)
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
    let (summed_risk, combined_risk, correlated) = combine(&all, &correlations, params.max_offset);
    let floor = (1.0 - params.max_offset) * summed_risk;
    let mut attribution = vec![0.0; exposures.len()];
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
                    correlations.effective(charge, other)
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
        share(
            charge.liquidity_charge + charge.concentration_charge,
            &delta,
            1.0,
        );
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
    let maintenance_margin = combined_risk + additive_contingencies + liquidity;
    Ok(PortfolioRisk {
        underlyings,
        summed_risk,
        combined_risk,
        additive_contingencies,
        liquidity,
        maintenance_margin,
        initial_margin: params.im_factor * maintenance_margin,
        attribution,
    })
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
