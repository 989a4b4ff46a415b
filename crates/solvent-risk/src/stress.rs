//! Stress tests (DESIGN.md 8.4): the account revalued and re-margined under named shocks of
//! underlying prices and implied volatilities, and reverse stress: the smallest move that takes
//! health to 1.
//!
//! A shock is applied to the market, not to the figures: index prices of the shocked underlyings
//! (and of every asset they price) move, perpetual and future marks move with them, option marks
//! are repriced by Black-76 at the moved forward with their implied volatility scaled by the
//! volatility change, and the whole report (equity, margin in the account's own mode) is computed
//! again. Every figure of a stressed account is therefore one the venue would compute at those
//! prices.

use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::market::Market;
use solvent_core::money::{Amount, MIN_PRICE, Price};
use solvent_core::portfolio::Portfolio;
use solvent_core::portfolio_margin::PortfolioMarginParams;
use solvent_core::shock::Shock;
use solvent_pricing::black76::Black76;
use solvent_pricing::implied::implied_volatility;

use crate::account::{Detail, build_report};
use crate::error::RiskError;
use crate::move_health::{MoveHealth, Precision};
use crate::report::{AccountState, MarginReport};
use crate::valuation::{MarketView, option_type};

/// The account under one shock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StressRow {
    /// The shock's name.
    pub name: String,
    /// Price moves applied (relative).
    pub price_moves: Vec<(String, f64)>,
    /// Volatility changes applied (relative).
    pub vol_changes: Vec<(String, f64)>,
    /// Change of equity.
    pub pnl: Amount,
    /// Equity after the shock.
    pub equity: Amount,
    /// Initial margin after the shock.
    pub initial_margin: Amount,
    /// Maintenance margin after the shock.
    pub maintenance_margin: Amount,
    /// Health after the shock.
    pub health: Option<f64>,
    /// State after the shock.
    pub state: AccountState,
    /// Whether the account's cross pool would be liquidated.
    pub liquidates: bool,
    /// Isolated positions that would be liquidated (their own health at or below 1).
    pub isolated_liquidations: Vec<String>,
}

fn f64_of(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

fn price(value: f64, what: &str) -> Result<Price, RiskError> {
    Decimal::from_f64(value)
        .and_then(|decimal| Price::new_checked(decimal).ok())
        .ok_or_else(|| out_of_range_named(value, what))
}

fn out_of_range_named(value: f64, what: &str) -> RiskError {
    RiskError::Unsupported {
        path: "shock".to_owned(),
        problem: format!("{what} would be {value}, outside the prices Solvent accepts"),
    }
}

fn out_of_range(value: f64, name: &str) -> RiskError {
    out_of_range_named(value, &format!("mark {name}"))
}

/// The market after `shock`.
///
/// # Errors
/// [`RiskError`] when an option's mark has no implied volatility or a price leaves the accepted
/// range.
pub fn shocked_market(view: &MarketView<'_>, shock: &Shock) -> Result<Market, RiskError> {
    ShockBase::new(view).market(shock)
}

/// What shocking a market needs that no shock changes, computed once for many shocks: each
/// mark's instrument, resolved from its name, and each option mark's model inputs and implied
/// volatility at the unshocked market. A reverse-stress search shocks the same market a hundred
/// times; solving every option mark's implied volatility again at each shock made it the slowest
/// part of a margin report. The figures are those of shocking the market afresh: the same
/// values, computed once.
pub struct ShockBase<'v> {
    view: &'v MarketView<'v>,
    /// Per mark of the market, in its order.
    marks: Vec<MarkBase>,
}

/// One mark's unshocked inputs.
enum MarkBase {
    /// The venue cannot resolve the name: nothing uses the mark, so no shock moves it.
    Unresolved,
    /// A perpetual or future on `underlying`: its mark moves with it.
    Linear { underlying: String },
    /// An option on `underlying`; the quote, or why it cannot be repriced (reported only when a
    /// shock moves it, as a fresh repricing would).
    Option {
        underlying: String,
        quote: Result<OptionQuote, RiskError>,
    },
}

/// An option mark's model inputs at the unshocked market.
struct OptionQuote {
    name: String,
    style: Style,
    kind: solvent_pricing::black76::OptionType,
    strike: f64,
    spot: f64,
    time: f64,
    forward: f64,
    discount: f64,
    /// The mark's implied volatility (when the option has not expired).
    volatility: Result<f64, RiskError>,
}

impl<'v> ShockBase<'v> {
    /// Resolves every mark of `view`'s market and solves the option marks' volatilities.
    #[must_use]
    pub fn new(view: &'v MarketView<'v>) -> Self {
        Self::resolving(view, None)
    }

    /// [`ShockBase::new`] for the market of `portfolio`'s report: a held instrument's mark
    /// takes the instrument the portfolio resolved (against the same venue, as every report of
    /// the portfolio assumes) instead of parsing its name again, which for 10,000 option marks
    /// was a third of the account's reading.
    #[must_use]
    pub fn for_portfolio(view: &'v MarketView<'v>, portfolio: &Portfolio) -> Self {
        let held: HashMap<&str, &Arc<Instrument>> = portfolio
            .positions
            .iter()
            .map(|position| (position.instrument.name.as_str(), &position.instrument))
            .collect();
        Self::resolving(view, Some(&held))
    }

    fn resolving(view: &'v MarketView<'v>, held: Option<&HashMap<&str, &Arc<Instrument>>>) -> Self {
        let venue = view.venue();
        let marks = view
            .market()
            .mark
            .iter()
            .map(|(name, mark)| {
                let instrument = match held.and_then(|held| held.get(name.as_str())) {
                    Some(instrument) => Arc::clone(instrument),
                    None => match venue.instrument(name) {
                        Ok(instrument) => instrument,
                        Err(_) => return MarkBase::Unresolved,
                    },
                };
                match &instrument.terms {
                    Terms::Perpetual | Terms::Future { .. } => MarkBase::Linear {
                        underlying: instrument.underlying.clone(),
                    },
                    Terms::Option {
                        expiry,
                        strike,
                        right,
                    } => MarkBase::Option {
                        underlying: instrument.underlying.clone(),
                        quote: OptionQuote::new(
                            view,
                            &instrument,
                            *expiry,
                            strike.to_f64(),
                            *right,
                            mark.value(),
                        ),
                    },
                }
            })
            .collect();
        Self { view, marks }
    }

    /// The market after `shock`.
    ///
    /// # Errors
    /// As [`shocked_market`].
    pub fn market(&self, shock: &Shock) -> Result<Market, RiskError> {
        let mut shocked = self.view.market().clone();
        for (name, index) in &mut shocked.index {
            if let Some(price_move) = shock.price_moves.get(name) {
                *index = moved_index(*index, name, *price_move)?;
            }
        }
        for (underlying, smiles) in &mut shocked.vol {
            if let Some(change) = shock.vol_changes.get(underlying) {
                for smile in smiles.values_mut() {
                    for vol in &mut smile.vols {
                        *vol *= 1.0 + change;
                    }
                }
            }
        }
        for ((name, mark), base) in shocked.mark.iter_mut().zip(&self.marks) {
            let Some(underlying) = base.underlying() else {
                continue;
            };
            let price_move = shock.price_moves.get(underlying).copied().unwrap_or(0.0);
            let vol_change = shock.vol_changes.get(underlying).copied().unwrap_or(0.0);
            if price_move == 0.0 && vol_change == 0.0 {
                continue;
            }
            *mark = base.moved(name, *mark, price_move, vol_change)?;
        }
        Ok(shocked)
    }

    /// The view the base market is seen through.
    #[must_use]
    pub fn view(&self) -> &'v MarketView<'v> {
        self.view
    }

    /// Mark `slot` of the market (in its order) after its underlying moves by `price_move`
    /// (volatility unchanged), as [`ShockBase::market`] moves it; `None` when the slot is not
    /// in the market. A mark whose instrument the venue cannot resolve, or whose underlying is
    /// not `underlying`, does not move.
    ///
    /// # Errors
    /// As [`shocked_market`].
    pub fn moved_mark(
        &self,
        slot: usize,
        underlying: &str,
        price_move: f64,
    ) -> Option<Result<Price, RiskError>> {
        let (name, mark) = self.view.market().mark.get_index(slot)?;
        let base = self.marks.get(slot)?;
        if base.underlying() != Some(underlying) || price_move == 0.0 {
            return Some(Ok(*mark));
        }
        Some(base.moved(name, *mark, price_move, 0.0))
    }

    /// [`ShockBase::moved_mark`] with the volatility an option's mark was repriced at, when the
    /// mark is that repricing's premium (not held at the smallest price, not expired): the
    /// volatility a full report would solve again from the moved mark, known here without the
    /// solve (the two differ by the solver's error, about 1e-15 relative).
    ///
    /// # Errors
    /// As [`shocked_market`].
    pub fn moved_mark_priced(
        &self,
        slot: usize,
        underlying: &str,
        price_move: f64,
    ) -> Option<Result<MovedMark, RiskError>> {
        let (name, mark) = self.view.market().mark.get_index(slot)?;
        let base = self.marks.get(slot)?;
        if base.underlying() != Some(underlying) || price_move == 0.0 {
            return Some(Ok(MovedMark {
                price: *mark,
                volatility: None,
            }));
        }
        Some(base.moved_priced(name, *mark, price_move, 0.0))
    }

    /// An option's moved mark as the repricing gives it, in `f64`, with the volatility it was
    /// priced at: what [`ShockBase::moved_mark_priced`] turns into a decimal price, without the
    /// conversion (a `Decimal` from an `f64` costs about as much as the repricing). For the
    /// search's fast steps, whose answer is then checked on exact marks. `None` for a slot that
    /// is not an option on `underlying`, or whose premium the exact path would hold at the
    /// smallest price or refuse (take the exact mark then).
    ///
    /// # Errors
    /// As [`shocked_market`].
    pub fn moved_option_premium(
        &self,
        slot: usize,
        underlying: &str,
        price_move: f64,
    ) -> Option<Result<(f64, Option<f64>), RiskError>> {
        let base = self.marks.get(slot)?;
        let MarkBase::Option { quote, .. } = base else {
            return None;
        };
        if base.underlying() != Some(underlying) || price_move == 0.0 {
            return None;
        }
        match quote.as_ref().map_err(Clone::clone) {
            Err(error) => Some(Err(error)),
            Ok(quote) => match quote.reprice(price_move, 0.0) {
                Err(error) => Some(Err(error)),
                // Premiums near or below the smallest price, or beyond the accepted range, are
                // left to the exact path, which holds or refuses them.
                Ok((repriced, volatility)) if repriced > 1e-9 && repriced < 1e12 => {
                    Some(Ok((repriced, volatility)))
                }
                Ok(_) => None,
            },
        }
    }

    /// What the repricing of [`ShockBase::moved_option_premium`] would value, for a batch of
    /// them: the option mark `slot` after `underlying` moves by `price_move`, as Black-76
    /// inputs. `None` where that repricing does not price a model (not an option on
    /// `underlying`, no move, an expired option valued at its intrinsic value): take
    /// [`ShockBase::moved_option_premium`] then.
    ///
    /// # Errors
    /// The option's volatility could not be implied from its unmoved mark (as the repricing).
    pub fn moved_option_inputs(
        &self,
        slot: usize,
        underlying: &str,
        price_move: f64,
    ) -> Option<Result<MovedOptionInputs, RiskError>> {
        let base = self.marks.get(slot)?;
        let MarkBase::Option { quote, .. } = base else {
            return None;
        };
        if base.underlying() != Some(underlying) || price_move == 0.0 {
            return None;
        }
        let quote = match quote {
            Err(error) => return Some(Err(error.clone())),
            Ok(quote) => quote,
        };
        if quote.time <= 0.0 {
            return None;
        }
        Some(
            quote
                .volatility
                .clone()
                .map(|volatility| MovedOptionInputs {
                    // The same operations as `OptionQuote::reprice` (with no volatility change: its
                    // factor `1 + 0` leaves the volatility as it is).
                    forward: quote.forward * (1.0 + price_move),
                    strike: quote.strike,
                    time: quote.time,
                    volatility,
                    discount: quote.discount,
                    kind: quote.kind,
                    per_index: match quote.style {
                        Style::Linear => None,
                        Style::Inverse => Some(quote.spot * (1.0 + price_move)),
                    },
                }),
        )
    }

    /// [`ShockBase::market`] of the shock that moves `underlying` alone by `price_move`. With
    /// `moved`, the marks on `underlying` (in the order of [`ShockBase::slots_on`]) as an exact
    /// step of the search already repriced them at that very move: the same decimals the
    /// repricing would give again, which for 10,000 option marks cost as much as the step.
    ///
    /// # Errors
    /// As [`shocked_market`].
    pub(crate) fn market_moved(
        &self,
        underlying: &str,
        price_move: f64,
        moved: Option<&[Decimal]>,
    ) -> Result<Market, RiskError> {
        let shock = Shock::joint("liquidation", &[underlying.to_owned()], price_move);
        let slots = self.slots_on(underlying);
        let Some(moved) = moved.filter(|moved| moved.len() == slots.len()) else {
            return self.market(&shock);
        };
        let mut shocked = self.view.market().clone();
        if let Some(index) = shocked.index.get_mut(underlying) {
            *index = moved_index(*index, underlying, price_move)?;
        }
        for (&slot, &price) in slots.iter().zip(moved) {
            if let Some((_, mark)) = shocked.mark.get_index_mut(slot) {
                *mark = Price(price);
            }
        }
        Ok(shocked)
    }

    /// The slots of the market's marks whose instrument is on `underlying` (the marks a move of
    /// it changes).
    #[must_use]
    pub fn slots_on(&self, underlying: &str) -> Vec<usize> {
        self.marks
            .iter()
            .enumerate()
            .filter(|(_, base)| base.underlying() == Some(underlying))
            .map(|(slot, _)| slot)
            .collect()
    }
}

/// One option's mark as its underlying's index moves, on its own: the repricing
/// [`ShockBase::market`] gives the option's mark (Black-76 at the moved forward, at the
/// volatility the unmoved mark implies, a vanishing premium held at the smallest price), for a
/// caller that moves one option and holds every other price where it is (a position's
/// liquidation level with the others fixed).
pub struct OptionMove {
    name: String,
    mark: Price,
    base: MarkBase,
}

impl OptionMove {
    /// The option `instrument` at its mark `mark` (its premium currency per unit of underlying),
    /// priced at `view`'s index, rate and time.
    ///
    /// # Errors
    /// [`RiskError::Unsupported`] when `instrument` is not an option; [`RiskError`] when its
    /// underlying has no index or its mark implies no volatility.
    pub fn new(
        view: &MarketView<'_>,
        instrument: &solvent_core::instrument::Instrument,
        mark: Price,
    ) -> Result<Self, RiskError> {
        let Terms::Option {
            expiry,
            strike,
            right,
        } = &instrument.terms
        else {
            return Err(RiskError::Unsupported {
                path: format!("instruments.{}", instrument.name),
                problem: "only an option is repriced from its underlying's index".to_owned(),
            });
        };
        let quote = OptionQuote::new(
            view,
            instrument,
            *expiry,
            strike.to_f64(),
            *right,
            mark.value(),
        )?;
        // Surface a mark that implies no volatility now, not at the first move.
        if let Err(error) = &quote.volatility {
            return Err(error.clone());
        }
        Ok(Self {
            name: instrument.name.clone(),
            mark,
            base: MarkBase::Option {
                underlying: instrument.underlying.clone(),
                quote: Ok(quote),
            },
        })
    }

    /// The option's mark after its underlying's index moves by `price_move` (relative),
    /// volatility unchanged.
    ///
    /// # Errors
    /// As [`shocked_market`].
    pub fn moved(&self, price_move: f64) -> Result<Price, RiskError> {
        if price_move == 0.0 {
            return Ok(self.mark);
        }
        self.base.moved(&self.name, self.mark, price_move, 0.0)
    }
}

/// A mark after a shock, with the volatility an option's mark was repriced at (see
/// [`ShockBase::moved_mark_priced`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MovedMark {
    /// The moved mark, as the shocked market holds it.
    pub price: Price,
    /// The volatility it was priced at, when the mark is that repricing's premium: `None` for
    /// linear marks, expired options and premiums held at the smallest price.
    pub volatility: Option<f64>,
}

/// An option mark's repricing under a move, as Black-76 inputs (see
/// [`ShockBase::moved_option_inputs`]): the premium is the model's price, divided by
/// `per_index` for an inverse option (its premium is in coin).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MovedOptionInputs {
    /// The moved forward.
    pub forward: f64,
    /// The strike.
    pub strike: f64,
    /// Years to expiry (positive).
    pub time: f64,
    /// The volatility the unmoved mark implies.
    pub volatility: f64,
    /// The discount factor to expiry.
    pub discount: f64,
    /// Call or put.
    pub kind: solvent_pricing::black76::OptionType,
    /// The moved index, for an inverse option; `None` for a linear one.
    pub per_index: Option<f64>,
}

/// An index price after its underlying moves by `price_move` (through `f64`, as a shock moves
/// it).
///
/// # Errors
/// [`RiskError::Unsupported`] when the moved price leaves the accepted range.
pub fn moved_index(index: Price, name: &str, price_move: f64) -> Result<Price, RiskError> {
    price(
        f64_of(index.value()) * (1.0 + price_move),
        &format!("index {name}"),
    )
}

impl MarkBase {
    /// The underlying whose moves move the mark, if the mark is resolved.
    fn underlying(&self) -> Option<&str> {
        match self {
            Self::Unresolved => None,
            Self::Linear { underlying } | Self::Option { underlying, .. } => Some(underlying),
        }
    }

    /// The mark `mark` of instrument `name` after its underlying moves by `price_move` and its
    /// volatility by `vol_change` (relative).
    fn moved(
        &self,
        name: &str,
        mark: Price,
        price_move: f64,
        vol_change: f64,
    ) -> Result<Price, RiskError> {
        self.moved_priced(name, mark, price_move, vol_change)
            .map(|moved| moved.price)
    }

    /// [`MarkBase::moved`] with the volatility the option was repriced at (see
    /// [`ShockBase::moved_mark_priced`]).
    fn moved_priced(
        &self,
        name: &str,
        mark: Price,
        price_move: f64,
        vol_change: f64,
    ) -> Result<MovedMark, RiskError> {
        let linear = |price| MovedMark {
            price,
            volatility: None,
        };
        match self {
            Self::Unresolved => Ok(linear(mark)),
            Self::Linear { .. } => price(
                f64_of(mark.value()) * (1.0 + price_move),
                &format!("mark {name}"),
            )
            .map(linear),
            Self::Option { quote, .. } => {
                let (repriced, volatility) = quote
                    .as_ref()
                    .map_err(Clone::clone)?
                    .reprice(price_move, vol_change)?;
                // A premium that shrinks to nothing is held at the smallest accepted price
                // (a price of zero is no valid mark); in `Decimal`, as the nearest double to
                // 1e-12 lies just below it. The decimal is converted once: a non-negative
                // premium at or above the smallest price is that decimal, checked for range.
                // A held mark no longer implies the volatility it was priced at.
                match Decimal::from_f64(repriced.max(0.0)) {
                    Some(exact) if exact < MIN_PRICE => Ok(linear(Price(MIN_PRICE))),
                    Some(exact) if repriced >= 0.0 => Price::new_checked(exact)
                        .map(|price| MovedMark { price, volatility })
                        .map_err(|_| out_of_range(repriced, name)),
                    _ => price(repriced, &format!("mark {name}")).map(linear),
                }
            }
        }
    }
}

impl OptionQuote {
    fn new(
        view: &MarketView<'_>,
        instrument: &solvent_core::instrument::Instrument,
        expiry: Timestamp,
        strike: f64,
        right: solvent_core::instrument::OptionRight,
        mark: Decimal,
    ) -> Result<Self, RiskError> {
        let spot = f64_of(view.index(
            &instrument.underlying,
            &format!("shocking {}", instrument.name),
        )?);
        let time = view.years_to(expiry).max(0.0);
        let rate = view.market().rate;
        let forward = spot * (rate * time).exp();
        let discount = (-rate * time).exp();
        let kind = option_type(right);
        let to_usd = |premium: f64, underlying: f64| match instrument.style {
            Style::Linear => premium,
            Style::Inverse => premium * underlying,
        };
        let volatility = if time <= 0.0 {
            Ok(0.0)
        } else {
            implied_volatility(
                to_usd(f64_of(mark), spot),
                forward,
                strike,
                time,
                discount,
                kind,
            )
            .map_err(|error| RiskError::Pricing {
                path: format!("mark.{}", instrument.name),
                problem: format!("no implied volatility to reprice it under the shock: {error}"),
            })
        };
        Ok(Self {
            name: instrument.name.clone(),
            style: instrument.style,
            kind,
            strike,
            spot,
            time,
            forward,
            discount,
            volatility,
        })
    }

    /// The option's mark after the underlying moves by `price_move` and its volatility by
    /// `vol_change` (relative), in its premium currency, and the volatility it was priced at
    /// (`None` when expired: its mark is its intrinsic value).
    fn reprice(&self, price_move: f64, vol_change: f64) -> Result<(f64, Option<f64>), RiskError> {
        let moved_spot = self.spot * (1.0 + price_move);
        if self.time <= 0.0 {
            let intrinsic = self
                .kind
                .intrinsic(self.forward * (1.0 + price_move), self.strike);
            return Ok((
                match self.style {
                    Style::Linear => intrinsic,
                    Style::Inverse => intrinsic / moved_spot,
                },
                None,
            ));
        }
        let volatility = self.volatility.clone()? * (1.0 + vol_change);
        let model = Black76::new_checked(
            self.forward * (1.0 + price_move),
            self.strike,
            self.time,
            volatility,
            self.discount,
        )
        .map_err(|error| RiskError::Pricing {
            path: format!("mark.{}", self.name),
            problem: error.to_string(),
        })?;
        let usd = model.price(self.kind);
        let premium = match self.style {
            Style::Linear => usd,
            Style::Inverse => usd / moved_spot,
        };
        Ok((premium, Some(model.volatility())))
    }
}

/// The report of `portfolio` under `shock`, without liquidation prices.
///
/// # Errors
/// As [`shocked_market`] and the report.
pub fn shocked_report(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    shock: &Shock,
) -> Result<MarginReport, RiskError> {
    report_under(
        portfolio,
        &ShockBase::for_portfolio(view, portfolio),
        shock,
        Detail::Figures,
    )
}

/// [`shocked_report`] from a prepared [`ShockBase`] (many shocks of one market).
fn report_under(
    portfolio: &Portfolio,
    base: &ShockBase<'_>,
    shock: &Shock,
    detail: Detail,
) -> Result<MarginReport, RiskError> {
    let market = base.market(shock)?;
    let view = base.view;
    let shocked_view = MarketView::new(view.venue(), &market)?.with_history(view.history());
    build_report(portfolio, &shocked_view, detail)
}

/// Every shock's row, against the unshocked report `base`.
///
/// # Errors
/// As [`shocked_report`].
pub fn run(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    base: &MarginReport,
    shocks: &[Shock],
) -> Result<Vec<StressRow>, RiskError> {
    let shock_base = ShockBase::for_portfolio(view, portfolio);
    shocks
        .iter()
        .map(|shock| {
            let report = report_under(portfolio, &shock_base, shock, Detail::Figures)?;
            Ok(StressRow {
                name: shock.name.clone(),
                price_moves: shock
                    .price_moves
                    .iter()
                    .map(|(u, m)| (u.clone(), *m))
                    .collect(),
                vol_changes: shock
                    .vol_changes
                    .iter()
                    .map(|(u, m)| (u.clone(), *m))
                    .collect(),
                pnl: Amount(report.equity.value() - base.equity.value()),
                liquidates: report.state >= AccountState::Liquidating,
                isolated_liquidations: report
                    .positions
                    .iter()
                    .filter(|p| p.isolated && p.isolated_health.is_some_and(|health| health <= 1.0))
                    .map(|p| p.instrument.to_string())
                    .collect(),
                equity: report.equity,
                initial_margin: report.initial_margin,
                maintenance_margin: report.maintenance_margin,
                health: report.health,
                state: report.state,
            })
        })
        .collect()
}

/// The underlyings an account is exposed to: those of its positions and of its collateral
/// (stablecoins excluded: an asset with a USD peg is not shocked).
#[must_use]
pub fn underlyings(portfolio: &Portfolio) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    };
    for position in &portfolio.positions {
        add(&position.instrument.underlying);
    }
    for balance in &portfolio.balances {
        if balance.asset.usd_peg.is_none() {
            add(&balance.asset.index);
        }
    }
    names
}

/// Joint moves of all the account's underlyings together, from -50% to +50%.
#[must_use]
pub fn grid(portfolio: &Portfolio) -> Vec<Shock> {
    let names = underlyings(portfolio);
    [
        -0.5, -0.4, -0.3, -0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
    ]
    .iter()
    .map(|m| Shock::joint(format!("all {:+}%", m * 100.0), &names, *m))
    .collect()
}

/// A stress test's answer as `solvent stress --json`, the service's `POST /v1/stress` and the
/// Python package's `stress` all give it: the account's figures before, a row per scenario, and
/// the reverse stress when asked for.
#[derive(Clone, Debug, Serialize)]
pub struct StressAnswer<'a> {
    /// Account id.
    pub account: &'a str,
    /// Asset every amount is expressed in.
    pub settlement_asset: &'a str,
    /// The account's figures before any shock.
    pub base: BaseFigures,
    /// One row per scenario, in the order given.
    pub scenarios: &'a [StressRow],
    /// The reverse stress, when asked for.
    pub reverse: Option<&'a [ReverseStress]>,
}

/// The figures of an account before any shock ([`StressAnswer::base`]).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BaseFigures {
    /// Equity.
    pub equity: Amount,
    /// Initial margin.
    pub initial_margin: Amount,
    /// Maintenance margin.
    pub maintenance_margin: Amount,
    /// Equity / maintenance margin (`None` without a requirement).
    pub health: Option<f64>,
    /// Account state.
    pub state: AccountState,
}

impl<'a> StressAnswer<'a> {
    /// The answer of the stress whose unshocked report is `base`.
    #[must_use]
    pub fn new(
        base: &'a MarginReport,
        scenarios: &'a [StressRow],
        reverse: Option<&'a [ReverseStress]>,
    ) -> Self {
        Self {
            account: &base.account,
            settlement_asset: &base.settlement_asset,
            base: BaseFigures {
                equity: base.equity,
                initial_margin: base.initial_margin,
                maintenance_margin: base.maintenance_margin,
                health: base.health,
                state: base.state,
            },
            scenarios,
            reverse,
        }
    }
}

/// The smallest moves, down and up, of a set of underlyings moving together, at which health
/// reaches 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReverseStress {
    /// The underlyings moved (together).
    pub underlyings: Vec<String>,
    /// Smallest fall (negative) that takes health to 1, if any down to -99%.
    pub down: Option<f64>,
    /// Smallest rise that takes health to 1, if any up to +1000%.
    pub up: Option<f64>,
}

/// One direction of a liquidating move (see [`LiquidationMoves`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiquidatingMove {
    /// The move, as a fraction of the index now (`-0.1046` is a fall of 10.46%).
    #[serde(rename = "move")]
    pub price_move: f64,
    /// The index level (USD) the move reaches, when one underlying moves (several moving
    /// together reach no one level).
    pub index: Option<Price>,
}

/// The moves of an underlying (or of several together) that liquidate the account: its index's
/// smallest fall and rise that take the cross pool's health to 1 with every cross position and
/// coin on it moving with the index (the reverse stress, [`reverse`]), and the index level each
/// reaches; `None` where no move within the searched range (down to -99%, up to +1000%)
/// liquidates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiquidationMoves {
    /// The underlyings moved together.
    pub underlyings: Vec<String>,
    /// The smallest liquidating fall.
    pub fall: Option<LiquidatingMove>,
    /// The smallest liquidating rise.
    pub rise: Option<LiquidatingMove>,
}

/// The reverse stress `reverse` as liquidating moves with the index levels they reach in
/// `market` (moved as a shock moves the index, [`moved_index`]).
#[must_use]
pub fn liquidation_moves(reverse: &[ReverseStress], market: &Market) -> Vec<LiquidationMoves> {
    reverse
        .iter()
        .map(|entry| {
            let index = match entry.underlyings.as_slice() {
                [one] => market.index.get(one).map(|index| (one, *index)),
                _ => None,
            };
            let direction = |price_move: Option<f64>| {
                price_move.map(|price_move| LiquidatingMove {
                    price_move,
                    index: index
                        .and_then(|(name, index)| moved_index(index, name, price_move).ok()),
                })
            };
            LiquidationMoves {
                underlyings: entry.underlyings.clone(),
                fall: direction(entry.down),
                rise: direction(entry.up),
            }
        })
        .collect()
}

/// A margin report with the moves that liquidate the account, as `solvent margin --json` and
/// the service's account report give it: the report's fields, then `liquidation_moves` (or,
/// when the reverse stress could not run, `null` and `liquidation_moves_error` saying why).
#[derive(Clone, Debug, Serialize)]
pub struct ReportWithMoves<'r> {
    /// The report.
    #[serde(flatten)]
    pub report: &'r MarginReport,
    /// Per underlying, then all together: the liquidating moves.
    pub liquidation_moves: Option<Vec<LiquidationMoves>>,
    /// Why the moves are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liquidation_moves_error: Option<String>,
}

impl<'r> ReportWithMoves<'r> {
    /// `report` with the liquidating moves of `portfolio` at `view` (its report), or why they
    /// could not be searched (`describe` words the error as the caller names its inputs).
    pub fn new(
        report: &'r MarginReport,
        portfolio: &Portfolio,
        view: &MarketView<'_>,
        describe: impl FnOnce(RiskError) -> String,
    ) -> Self {
        match reverse_known(portfolio, view, &report.nearest_moves) {
            Ok(found) => Self {
                report,
                liquidation_moves: Some(liquidation_moves(&found, view.market())),
                liquidation_moves_error: None,
            },
            Err(error) => Self {
                report,
                liquidation_moves: None,
                liquidation_moves_error: Some(describe(error)),
            },
        }
    }
}

/// Steps of the outward search, before the bracket it finds is refined.
const SEARCH: [f64; 14] = [
    0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 0.99, 1.0,
];

/// The search's precision, in halvings of the first bracket: it stops when the bracket is at
/// most `width 2^-PRECISION_HALVINGS` wide, the width forty bisection steps left (the search
/// bisected before it took interpolation steps, and the precision is its contract).
const PRECISION_HALVINGS: i32 = 40;

/// Steps the refinement may take beyond the halvings bisection would need (the ITP method's
/// `n0`): with one, it never takes more than one step more than bisection, and in exchange
/// may follow its interpolation anywhere in the bracket at the first step.
const EXTRA_STEPS: usize = 1;

/// ITP's truncation constant, relative to the first bracket's width (`kappa1 = 0.2 / width`,
/// the value its authors recommend).
const TRUNCATION: f64 = 0.2;

/// Health of the account when `names` move by `price_move` (infinite without a requirement).
pub(crate) fn health_at(
    portfolio: &Portfolio,
    base: &ShockBase<'_>,
    names: &[String],
    price_move: f64,
) -> Result<f64, RiskError> {
    let report = report_under(
        portfolio,
        base,
        &Shock::joint("reverse", names, price_move),
        Detail::Totals,
    )?;
    Ok(search_health(&report))
}

/// A report's health as the liquidation-move search reads it: `0` at or below zero equity,
/// infinite without a requirement.
#[must_use]
pub fn search_health(report: &MarginReport) -> f64 {
    match (report.health, report.equity.value() <= Decimal::ZERO) {
        (_, true) => 0.0,
        (Some(health), false) => health,
        (None, false) => f64::INFINITY,
    }
}

/// Where the liquidation-move search found health crossing 1: a move at which health is at or
/// below 1 (`crossed`, the answer), and a move of the same sign, nearer to zero and at most
/// `tolerance` from it, at which it is above 1 (`safe`). The answer is rounded toward
/// liquidation: health at the answer has reached 1, and it lies within `tolerance` of where it
/// crosses. (`safe` is `0.0`, the unmoved market, when every evaluated move up to the first
/// outward step crossed; when health is already at or below 1 there, the answer is no move at
/// all: `crossed`, `safe` and `tolerance` are all `0.0`.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossing {
    /// The move at which health is at or below 1 (the search's answer).
    pub crossed: f64,
    /// A move within `tolerance` of `crossed`, nearer to zero, at which health is above 1.
    pub safe: f64,
    /// The precision: the first bracket's width `2^-40` (the width forty bisection steps leave).
    pub tolerance: f64,
    /// Health evaluations the refinement took after the outward search, the exact checks of a
    /// fast answer included (for the benchmarks and tests that hold the search to its cost).
    pub refinements: usize,
}

/// The smallest move in the direction of `sign` (steps up to `scale`) of `names` together at which
/// health reaches 1, to the search's precision (see [`Crossing`]); `None` if none within the
/// search.
///
/// # Errors
/// As [`shocked_report`].
pub fn search_move(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    names: &[String],
    sign: f64,
    scale: f64,
) -> Result<Option<f64>, RiskError> {
    search_move_from(
        portfolio,
        &ShockBase::for_portfolio(view, portfolio),
        names,
        sign,
        scale,
    )
}

/// [`search_move`] from a prepared [`ShockBase`], for callers that search several directions
/// or underlyings of one market.
///
/// # Errors
/// As [`shocked_report`].
pub fn search_move_from(
    portfolio: &Portfolio,
    base: &ShockBase<'_>,
    names: &[String],
    sign: f64,
    scale: f64,
) -> Result<Option<f64>, RiskError> {
    search_known(portfolio, base, names, sign, scale, f64::NAN)
}

/// [`search_move_from`] when the health at the unmoved market (`unmoved`, above 1; NaN when
/// not evaluated) is known: the first refinement step can then interpolate.
pub(crate) fn search_known(
    portfolio: &Portfolio,
    base: &ShockBase<'_>,
    names: &[String],
    sign: f64,
    scale: f64,
    unmoved: f64,
) -> Result<Option<f64>, RiskError> {
    let mut health = |price_move: f64| health_at(portfolio, base, names, price_move);
    outward(&mut health, sign, scale, unmoved)?
        .map(|bracket| bracket.finish(&mut health).map(|crossing| crossing.crossed))
        .transpose()
}

/// Reverse stress: for each underlying alone, and for all together, the smallest fall and rise
/// that take health to 1 (DESIGN.md 8.4).
///
/// # Errors
/// As [`shocked_report`].
pub fn reverse(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
) -> Result<Vec<ReverseStress>, RiskError> {
    reverse_known(portfolio, view, &[])
}

/// [`reverse`] given the nearest liquidating move of some underlyings alone, as a margin
/// report's search found them ([`MarginReport::nearest_moves`]): that direction's answer is
/// taken as found (the nearest search's answer is the one its direction's search gives, bit for
/// bit: each bracket steps on its own evaluations), and only the other direction is searched.
/// A nearest move of `None` means neither direction liquidates within the search.
///
/// # Errors
/// As [`shocked_report`].
pub fn reverse_known(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    known: &[(String, Option<f64>)],
) -> Result<Vec<ReverseStress>, RiskError> {
    let all = underlyings(portfolio);
    let mut sets: Vec<Vec<String>> = all.iter().map(|name| vec![name.clone()]).collect();
    if all.len() > 1 {
        sets.push(all);
    }
    let shock_base = ShockBase::for_portfolio(view, portfolio);
    let params = view.venue().portfolio_margin.as_ref();
    sets.into_iter()
        .map(|names| {
            let unmoved = health_at(portfolio, &shock_base, &names, 0.0)?;
            if unmoved <= 1.0 {
                return Ok(ReverseStress {
                    underlyings: names,
                    down: Some(0.0),
                    up: Some(0.0),
                });
            }
            let (down, up) = match names.as_slice() {
                _ if unmoved == f64::INFINITY && requires_nothing_anywhere(portfolio, view)? => {
                    (None, None)
                }
                [underlying] => {
                    let nearest = known
                        .iter()
                        .find(|(name, _)| name == underlying)
                        .map(|(_, nearest)| *nearest);
                    alone(
                        portfolio,
                        &shock_base,
                        params,
                        (underlying, nearest),
                        unmoved,
                    )?
                }
                _ => (
                    search_known(portfolio, &shock_base, &names, -1.0, 1.0, unmoved)?,
                    search_known(portfolio, &shock_base, &names, 1.0, 10.0, unmoved)?,
                ),
            };
            Ok(ReverseStress {
                down,
                up,
                underlyings: names,
            })
        })
        .collect()
}

/// Whether no move can take the account's health to 1 because nothing it holds ever requires
/// margin: a cross account of long options under a rule that asks nothing of them at any price
/// (their premium paid, [`Basis::LongOption`](crate::standard::Basis::LongOption)), with no
/// isolated position and no borrowed coin. Its requirement is nil at every move and its equity
/// (collateral, and options each worth at least the smallest price) positive, so its health
/// never falls from infinite; the search would take dozens of full reports to find nothing (an
/// account of 200,000 long calls: 8 s).
///
/// # Errors
/// As the margin report.
fn requires_nothing_anywhere(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
) -> Result<bool, RiskError> {
    if portfolio.mode != solvent_core::portfolio::MarginMode::Cross
        || portfolio
            .balances
            .iter()
            .any(|balance| balance.amount.value() < Decimal::ZERO)
    {
        return Ok(false);
    }
    for line in crate::account::lines(portfolio, view)? {
        if line.position.isolated_margin.is_some()
            || line.requirement_at(line.mark.price)?.basis != crate::standard::Basis::LongOption
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The smallest fall and rise of `underlying` alone that take health to 1: the answers of
/// [`search_known`] (down to -99%, up to +1000%), with a portfolio-margin account's steps taken
/// through `MoveHealth` as [`nearest_crossing`] takes them (fast, each answer then held to the
/// full path's health by [`confirm`], or searched again exactly where that fails). A reverse
/// stress of an account of 10,000 options took the full report at each of its forty-odd steps.
///
/// # Errors
/// As [`shocked_report`].
fn alone(
    portfolio: &Portfolio,
    base: &ShockBase<'_>,
    params: Option<&PortfolioMarginParams>,
    (underlying, nearest): (&str, Option<Option<f64>>),
    unmoved: f64,
) -> Result<(Option<f64>, Option<f64>), RiskError> {
    // The direction a known nearest move lies in is answered; the other is searched (none
    // is, when no move liquidates).
    let (fall_known, rise_known) = match nearest {
        None => (None, None),
        Some(None) => return Ok((None, None)),
        Some(Some(price_move)) if price_move < 0.0 => (Some(Some(price_move)), None),
        Some(Some(price_move)) if price_move > 0.0 => (None, Some(Some(price_move))),
        // No move at all: health is already at 1, both answers are that (see `reverse`).
        Some(Some(_)) => return Ok((Some(0.0), Some(0.0))),
    };
    let names = [underlying.to_owned()];
    let mut lean = match params {
        Some(params) => MoveHealth::new(portfolio, base, params, underlying)?,
        None => None,
    };
    if lean.is_none() {
        return Ok((
            known_or(fall_known, || {
                search_known(portfolio, base, &names, -1.0, 1.0, unmoved)
            })?,
            known_or(rise_known, || {
                search_known(portfolio, base, &names, 1.0, 10.0, unmoved)
            })?,
        ));
    }
    let mut health_to = |price_move: f64, precision: Precision| -> Result<f64, RiskError> {
        if let Some(health) = lean
            .as_mut()
            .and_then(|lean| lean.health(price_move, precision))
        {
            return Ok(health);
        }
        health_at(portfolio, base, &names, price_move)
    };
    let mut direction = |sign: f64, scale: f64| -> Result<Option<f64>, RiskError> {
        let mut fast = |price_move| health_to(price_move, Precision::Fast);
        let Some(bracket) = outward(&mut fast, sign, scale, unmoved)? else {
            return Ok(None);
        };
        let crossing = bracket.finish(&mut fast)?;
        let mut exact = |price_move| health_to(price_move, Precision::Exact);
        if let Some(confirmed) = confirm(crossing, &mut exact) {
            return Ok(Some(confirmed.crossed));
        }
        outward(&mut exact, sign, scale, unmoved)?
            .map(|bracket| bracket.finish(&mut exact).map(|crossing| crossing.crossed))
            .transpose()
    };
    Ok((
        known_or(fall_known, || direction(-1.0, 1.0))?,
        known_or(rise_known, || direction(1.0, 10.0))?,
    ))
}

/// A direction's answer: the one already `known`, or the one `search` finds.
fn known_or(
    known: Option<Option<f64>>,
    search: impl FnOnce() -> Result<Option<f64>, RiskError>,
) -> Result<Option<f64>, RiskError> {
    known.map_or_else(search, Ok)
}

/// A bracket of the liquidation-move search in one direction, refined by the ITP method
/// (Oliveira and Takahashi, "An Enhancement of the Bisection Method Average Performance
/// Preserving Minmax Optimality", ACM TOMS 47(1), 2020) on `health - 1`.
///
/// Why ITP: plain bisection took forty health evaluations per answer, and each evaluation of a
/// large portfolio-margin account revalues every option under every scenario. Interpolation
/// (regula falsi) needs a handful on the smooth stretch where health crosses 1, but alone it can
/// stall, and health is not smooth everywhere (tiers, rounding, the worst scenario changing).
/// ITP interpolates, moves the estimate slightly toward the middle so the root tends to be
/// straddled (both ends close in), and projects it back within a radius of the middle that
/// shrinks as bisection's bracket would: it never takes more than [`EXTRA_STEPS`] steps beyond
/// bisection's, and keeps the bracket (health above 1 at `safe`, at or below at `crossed`) at
/// every step, whatever the function does.
///
/// Ends are magnitudes along `sign` (`0 <= safe < crossed`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bracket {
    sign: f64,
    safe: f64,
    /// `health - 1` at `safe` (positive; NaN when not evaluated, infinite without a
    /// requirement): interpolation needs both ends finite and falls back to the middle.
    safe_excess: f64,
    crossed: f64,
    /// `health - 1` at `crossed` (at most 0).
    crossed_excess: f64,
    /// The width at which the bracket is done.
    tolerance: f64,
    /// `tolerance / 2 x 2^steps_left`: how far from the middle a step may go is this less half
    /// the width (ITP's projection radius).
    budget: f64,
    steps_left: usize,
    /// ITP's `kappa1` (`TRUNCATION` over the first width; `kappa2` is 2).
    kappa: f64,
    refinements: usize,
}

impl Bracket {
    /// A bracket between magnitudes `safe` and `crossed` along `sign`, with `health - 1` there.
    fn new(
        sign: f64,
        (safe, safe_excess): (f64, f64),
        (crossed, crossed_excess): (f64, f64),
    ) -> Self {
        let width = crossed - safe;
        let tolerance = width * 0.5_f64.powi(PRECISION_HALVINGS);
        let steps_left = usize::try_from(PRECISION_HALVINGS).unwrap_or(0) + EXTRA_STEPS;
        Self {
            sign,
            safe,
            safe_excess,
            crossed,
            crossed_excess,
            tolerance,
            budget: tolerance * 0.5 * 2.0_f64.powi(i32::try_from(steps_left).unwrap_or(0)),
            steps_left,
            kappa: TRUNCATION / width,
            refinements: 0,
        }
    }

    /// Whether the bracket is as narrow as the search's precision asks (or has taken every step
    /// ITP allows, which in exact arithmetic leaves it at most that wide).
    fn done(&self) -> bool {
        self.steps_left == 0 || self.crossed - self.safe <= self.tolerance
    }

    /// The next magnitude to evaluate (ITP: interpolate, truncate, project).
    fn next(&self) -> f64 {
        let width = self.crossed - self.safe;
        let middle = self.safe + 0.5 * width;
        let (high, low) = (self.safe_excess, self.crossed_excess);
        // Regula falsi where both ends' values are finite and apart; the middle otherwise.
        let interpolated = if high.is_finite() && low.is_finite() && high > low {
            self.safe + width * (high / (high - low))
        } else {
            middle
        };
        let toward_middle = (middle - interpolated).signum();
        let gap = (middle - interpolated).abs();
        let truncation = self.kappa * width * width;
        let truncated = if truncation <= gap {
            interpolated + toward_middle * truncation
        } else {
            middle
        };
        let radius = self.budget - 0.5 * width;
        let projected = if (truncated - middle).abs() <= radius {
            truncated
        } else {
            middle - toward_middle * radius
        };
        // Strictly inside, or the step would learn nothing (rounding at the last bits).
        if projected > self.safe && projected < self.crossed {
            projected
        } else {
            middle
        }
    }

    /// One step: health at the next magnitude replaces the end on its side.
    fn step(
        &mut self,
        health: &mut impl FnMut(f64) -> Result<f64, RiskError>,
    ) -> Result<(), RiskError> {
        let magnitude = self.next();
        let value = health(self.sign * magnitude)?;
        // As the outward search decides: at or below 1 is crossed, anything else safe.
        if value <= 1.0 {
            self.crossed = magnitude;
            self.crossed_excess = value - 1.0;
        } else {
            self.safe = magnitude;
            self.safe_excess = value - 1.0;
        }
        self.budget *= 0.5;
        self.steps_left = self.steps_left.saturating_sub(1);
        self.refinements += 1;
        Ok(())
    }

    /// The answer's magnitude is at most this (`crossed` only moves toward `safe`).
    fn upper(&self) -> f64 {
        self.crossed
    }

    /// The answer's magnitude is at least this (`safe` only moves toward `crossed`, and the
    /// answer lies beyond it), or the answer once the bracket is done.
    fn lower(&self) -> f64 {
        if self.done() { self.crossed } else { self.safe }
    }

    /// Refines the bracket to the search's precision; the crossing.
    fn finish(
        mut self,
        health: &mut impl FnMut(f64) -> Result<f64, RiskError>,
    ) -> Result<Crossing, RiskError> {
        while !self.done() {
            self.step(health)?;
        }
        Ok(self.crossing())
    }

    fn crossing(&self) -> Crossing {
        Crossing {
            crossed: self.sign * self.crossed,
            safe: self.sign * self.safe,
            tolerance: self.tolerance,
            refinements: self.refinements,
        }
    }
}

/// The outward phase of the search: the first step at which health reaches 1 and the last one
/// before it, as a bracket; `None` when no step reaches it. `unmoved`: the health at the
/// unmoved market, taken to be above 1 (NaN when not evaluated: interpolation then waits for a
/// second value).
fn outward(
    health: &mut impl FnMut(f64) -> Result<f64, RiskError>,
    sign: f64,
    scale: f64,
    unmoved: f64,
) -> Result<Option<Bracket>, RiskError> {
    let mut safe = (0.0, unmoved - 1.0);
    for step in SEARCH {
        let candidate = step * scale;
        if sign < 0.0 && candidate >= 0.99 {
            break;
        }
        let value = health(sign * candidate)?;
        if value <= 1.0 {
            return Ok(Some(Bracket::new(sign, safe, (candidate, value - 1.0))));
        }
        safe = (candidate, value - 1.0);
    }
    Ok(None)
}

/// One direction of [`outward_both`]: the next step to take, or what the direction found.
enum Direction {
    /// Steps from `SEARCH[next]` on remain; health is above 1 at `safe` (magnitude, `health -
    /// 1`).
    Searching { next: usize, safe: (f64, f64) },
    /// The first step at or below 1, and the last before it.
    Crossed(Bracket),
    /// No step reached 1, or the rest cannot be nearer than the other direction's crossing.
    Stopped,
}

impl Direction {
    /// The magnitude of the next step, if the direction still searches (`sign`, `scale` as
    /// [`outward`]: a fall stops before -99%).
    fn pending(&self, sign: f64, scale: f64) -> Option<f64> {
        let Self::Searching { next, .. } = self else {
            return None;
        };
        let candidate = SEARCH.get(*next)? * scale;
        (sign > 0.0 || candidate < 0.99).then_some(candidate)
    }
}

/// The outward phases of the fall (steps of 1) and the rise (steps of 10) together, each step
/// taken in order of magnitude (the fall first on a tie), a direction stopping at its first
/// crossing, at its last step, or once its safe end is as far as the other's crossing: beyond
/// it, its own answer could not be the nearer one (the fall wins only ties, and its answer
/// would lie strictly beyond its safe end). Each direction's steps are those [`outward`] takes,
/// so wherever a direction can still hold the nearer answer, its bracket is the one
/// [`outward`] finds; only steps that cannot change the answer are left out (searching the
/// whole fall before the rise took every fall step down to -80% even when the rise crossed at
/// its second step).
pub(crate) fn outward_both<E>(
    health: &mut impl FnMut(f64) -> Result<f64, E>,
    unmoved: f64,
) -> Result<(Option<Bracket>, Option<Bracket>), E> {
    const FALL: (f64, f64) = (-1.0, 1.0);
    const RISE: (f64, f64) = (1.0, 10.0);
    let start = || Direction::Searching {
        next: 0,
        safe: (0.0, unmoved - 1.0),
    };
    let mut directions = [start(), start()];
    // Bounded: each pass takes one of at most 2 x SEARCH.len() steps or stops a direction.
    for _ in 0..=2 * (SEARCH.len() + 1) {
        let [down, up] = &directions;
        let (down_at, up_at) = (down.pending(FALL.0, FALL.1), up.pending(RISE.0, RISE.1));
        let (which, (sign, _), candidate) = match (down_at, up_at) {
            (Some(d), Some(u)) if d <= u => (0, FALL, d),
            (_, Some(u)) => (1, RISE, u),
            (Some(d), None) => (0, FALL, d),
            (None, None) => break,
        };
        let other_upper = match directions.get(1 - which) {
            Some(Direction::Crossed(bracket)) => Some(bracket.upper()),
            _ => None,
        };
        let Some(direction) = directions.get_mut(which) else {
            break;
        };
        let Direction::Searching { next, safe } = *direction else {
            break;
        };
        if other_upper.is_some_and(|limit| limit <= safe.0) {
            *direction = Direction::Stopped;
            continue;
        }
        let value = health(sign * candidate)?;
        *direction = if value <= 1.0 {
            Direction::Crossed(Bracket::new(sign, safe, (candidate, value - 1.0)))
        } else {
            Direction::Searching {
                next: next + 1,
                safe: (candidate, value - 1.0),
            }
        };
    }
    let [down, up] = directions;
    let found = |direction: Direction| match direction {
        Direction::Crossed(bracket) => Some(bracket),
        Direction::Searching { .. } | Direction::Stopped => None,
    };
    Ok((found(down), found(up)))
}

/// The nearest move of `underlying` alone (down to -99%, up to +1000%) that takes the account's
/// health to 1: the smaller in magnitude of [`search_move_from`]'s fall and rise (the fall on
/// a tie), to the search's precision.
///
/// It evaluates fewer moves than the two searches: the rise is searched outward only while it
/// could still be nearer than the fall's bracket, and the two refinements are run only as far
/// as it takes to tell which is nearer (each answer lies between its bracket's ends), then the
/// nearer one to the end. Each bracket's steps depend only on its own evaluations, so the
/// answer is the one the two searches would give with the same health.
/// A portfolio-margin account's health at each move comes from `MoveHealth` (the moved
/// underlying recomputed, the rest reused), or the full report where that cannot vouch for the
/// figure. Consequence: a move the two searches evaluated but whose health cannot change the
/// answer is no longer evaluated, so an error that only such a move raised is no longer raised.
///
/// # Errors
/// As [`shocked_report`].
pub fn nearest_move(
    portfolio: &Portfolio,
    base: &ShockBase<'_>,
    params: Option<&PortfolioMarginParams>,
    underlying: &str,
    unmoved: f64,
) -> Result<Option<f64>, RiskError> {
    Ok(
        nearest_crossing(portfolio, base, params, underlying, unmoved)?
            .map(|crossing| crossing.crossed),
    )
}

/// [`nearest_move`] with the bracket that vouches for it (see [`Crossing`]). `unmoved`: the
/// account's health at the unmoved market, as [`search_health`] reads it from its report (at
/// or below 1, the nearest move is none at all: the account is already there).
///
/// # Errors
/// As [`shocked_report`].
pub fn nearest_crossing(
    portfolio: &Portfolio,
    base: &ShockBase<'_>,
    params: Option<&PortfolioMarginParams>,
    underlying: &str,
    unmoved: f64,
) -> Result<Option<Crossing>, RiskError> {
    nearest_crossing_marked(portfolio, base, params, underlying, unmoved, None)
        .map(|(crossing, _)| crossing)
}

/// A liquidation-move search's fast path along one underlying, prepared before the health at
/// the unmoved market is known ([`prepare_nearest`]): `MoveHealth::new`'s answer.
pub(crate) type Prepared<'a> = Result<Option<MoveHealth<'a>>, RiskError>;

/// The fast path of [`nearest_crossing_marked`] along each of `underlyings`, in their order,
/// as that function would prepare it (`params` the venue's portfolio-margin parameters, `None`
/// for standard margin, which has none to prepare): a margin report prepares them while it
/// computes the figures the search starts from. A prepared path, or its error, is used only
/// where the search runs (health above 1 at the unmoved market).
///
/// Until `report_done` is set, the first underlying's path then takes the search's first
/// outward steps ahead of time ([`MoveHealth::speculate`]): the report's figures take longer
/// than this preparation, and its core would otherwise wait for them. The search takes those
/// steps' healths as they were computed, so its answer is the same however many were taken
/// (at most `SPECULATED_STEPS`).
pub(crate) fn prepare_nearest<'a>(
    portfolio: &'a Portfolio,
    base: &'a ShockBase<'a>,
    params: Option<&PortfolioMarginParams>,
    underlyings: &[&'a str],
    report_done: &std::sync::atomic::AtomicBool,
) -> Vec<Option<Prepared<'a>>> {
    let mut prepared: Vec<Option<Prepared<'a>>> = underlyings
        .iter()
        .map(|underlying| params.map(|params| MoveHealth::new(portfolio, base, params, underlying)))
        .collect();
    if let Some(Some(Ok(Some(first)))) = prepared.first_mut() {
        first.speculate(report_done);
    }
    prepared
}

/// [`nearest_crossing`] with the marks on `underlying` (see [`ShockBase::market_moved`]) an
/// exact step computed at the answer, when one did: the report's liquidation prices read the
/// market at the answer, which the exact check has just repriced.
///
/// # Errors
/// As [`shocked_report`].
pub(crate) fn nearest_crossing_marked<'a>(
    portfolio: &'a Portfolio,
    base: &'a ShockBase<'a>,
    params: Option<&PortfolioMarginParams>,
    underlying: &'a str,
    unmoved: f64,
    prepared: Option<Prepared<'a>>,
) -> Result<(Option<Crossing>, Option<Vec<Decimal>>), RiskError> {
    if unmoved <= 1.0 {
        return Ok((
            Some(Crossing {
                crossed: 0.0,
                safe: 0.0,
                tolerance: 0.0,
                refinements: 0,
            }),
            None,
        ));
    }
    let mut lean = match (prepared, params) {
        (Some(prepared), _) => prepared?,
        (None, Some(params)) => MoveHealth::new(portfolio, base, params, underlying)?,
        (None, None) => None,
    };
    // Without the lean path every step is the full report: nothing to confirm.
    let steps_fast = lean.is_some();
    let names = [underlying.to_owned()];
    let mut health_to = |price_move: f64, precision: Precision| -> Result<f64, RiskError> {
        if let Some(health) = lean
            .as_mut()
            .and_then(|lean| lean.health(price_move, precision))
        {
            return Ok(health);
        }
        health_at(portfolio, base, &names, price_move)
    };
    // The steps run fast; the answer is then held to the full path's health (`confirm`), and
    // where that cannot be done within a few tolerances, the search runs again exactly.
    let fast = search_nearest(
        &mut |price_move| health_to(price_move, Precision::Fast),
        unmoved,
    )?;
    let mut exact = |price_move| health_to(price_move, Precision::Exact);
    let found = match fast {
        None => None,
        Some(crossing) if !steps_fast => Some(crossing),
        Some(crossing) => match confirm(crossing, &mut exact) {
            Some(confirmed) => Some(confirmed),
            None => search_nearest(&mut exact, unmoved)?,
        },
    };
    let marks = found.and_then(|crossing| lean.as_mut()?.take_exact_marks(crossing.crossed));
    Ok((found, marks))
}

/// Most steps [`confirm`] takes before it gives up on a fast answer (each moves the bracket by
/// one tolerance; the fast and exact healths differ by about 1e-15 relative, so one step is
/// already more than their difference ever moves the crossing on a smooth stretch).
const CONFIRM_STEPS: usize = 4;

/// A crossing found with [`Precision::Fast`] steps, held to `exact` health: at or below 1 at
/// `crossed`, above 1 at `safe` (the unmoved market's health, above 1, is taken as known). Where
/// the exact health disagrees at an end, the bracket steps by one tolerance toward where it
/// crosses and is checked again. `None` when it does not settle within [`CONFIRM_STEPS`] steps
/// or an exact evaluation fails: the caller then searches again exactly.
fn confirm(
    crossing: Crossing,
    exact: &mut impl FnMut(f64) -> Result<f64, RiskError>,
) -> Option<Crossing> {
    let Crossing {
        mut crossed,
        mut safe,
        tolerance,
        refinements,
    } = crossing;
    if crossed == 0.0 {
        return Some(crossing);
    }
    let sign = crossed.signum();
    let mut crossed_known = false;
    let mut safe_known = safe == 0.0;
    let mut checks = 0;
    for _ in 0..=2 * CONFIRM_STEPS {
        if !crossed_known {
            checks += 1;
            if exact(crossed).ok()? > 1.0 {
                // Not crossed yet: the crossing lies further out.
                safe = crossed;
                safe_known = true;
                crossed += sign * tolerance;
                continue;
            }
        }
        if !safe_known {
            checks += 1;
            if exact(safe).ok()? <= 1.0 {
                // Already crossed: the crossing lies nearer to zero.
                crossed = safe;
                crossed_known = true;
                safe = if safe.abs() > tolerance {
                    safe - sign * tolerance
                } else {
                    0.0
                };
                safe_known = safe == 0.0;
                continue;
            }
        }
        // Both ends hold by the exact health.
        return Some(Crossing {
            crossed,
            safe,
            tolerance,
            refinements: refinements + checks,
        });
    }
    None
}

/// The nearest crossing of [`nearest_crossing`] with the health `health`, for an account above
/// health 1 at the unmoved market (`unmoved`).
fn search_nearest(
    health: &mut impl FnMut(f64) -> Result<f64, RiskError>,
    unmoved: f64,
) -> Result<Option<Crossing>, RiskError> {
    let (down, up) = outward_both(health, unmoved)?;
    let (mut down, mut up) = match (down, up) {
        (None, None) => return Ok(None),
        (Some(down), None) => return down.finish(health).map(Some),
        (None, Some(up)) => return up.finish(health).map(Some),
        (Some(down), Some(up)) => (down, up),
    };
    loop {
        // The fall wins ties (`|down| <= up`).
        if down.upper() <= up.lower() {
            return down.finish(health).map(Some);
        }
        if up.upper() < down.lower() {
            return up.finish(health).map(Some);
        }
        // Undecided: refine the bracket that may hold the nearer answer.
        if !down.done() && (up.done() || down.lower() <= up.lower()) {
            down.step(health)?;
        } else {
            up.step(health)?;
        }
    }
}
