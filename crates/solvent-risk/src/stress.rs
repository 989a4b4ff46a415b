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
use solvent_core::instrument::{Style, Terms};
use solvent_core::market::Market;
use solvent_core::money::{Amount, MIN_PRICE, Price};
use solvent_core::portfolio::Portfolio;
use solvent_core::portfolio_margin::PortfolioMarginParams;
use solvent_core::shock::Shock;
use solvent_pricing::black76::Black76;
use solvent_pricing::implied::implied_volatility;

use crate::account::{Detail, build_report};
use crate::error::RiskError;
use crate::move_health::MoveHealth;
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
        let venue = view.venue();
        let marks = view
            .market()
            .mark
            .iter()
            .map(|(name, mark)| match venue.instrument(name) {
                Err(_) => MarkBase::Unresolved,
                Ok(instrument) => match &instrument.terms {
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
                },
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
        match self {
            Self::Unresolved => Ok(mark),
            Self::Linear { .. } => price(
                f64_of(mark.value()) * (1.0 + price_move),
                &format!("mark {name}"),
            ),
            Self::Option { quote, .. } => {
                let repriced = quote
                    .as_ref()
                    .map_err(Clone::clone)?
                    .reprice(price_move, vol_change)?;
                // A premium that shrinks to nothing is held at the smallest accepted price
                // (a price of zero is no valid mark); in `Decimal`, as the nearest double to
                // 1e-12 lies just below it. The decimal is converted once: a non-negative
                // premium at or above the smallest price is that decimal, checked for range.
                match Decimal::from_f64(repriced.max(0.0)) {
                    Some(exact) if exact < MIN_PRICE => Ok(Price(MIN_PRICE)),
                    Some(exact) if repriced >= 0.0 => {
                        Price::new_checked(exact).map_err(|_| out_of_range(repriced, name))
                    }
                    _ => price(repriced, &format!("mark {name}")),
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
    /// `vol_change` (relative), in its premium currency.
    fn reprice(&self, price_move: f64, vol_change: f64) -> Result<f64, RiskError> {
        let moved_spot = self.spot * (1.0 + price_move);
        if self.time <= 0.0 {
            let intrinsic = self
                .kind
                .intrinsic(self.forward * (1.0 + price_move), self.strike);
            return Ok(match self.style {
                Style::Linear => intrinsic,
                Style::Inverse => intrinsic / moved_spot,
            });
        }
        let volatility = self.volatility.clone()?;
        let usd = Black76::new_checked(
            self.forward * (1.0 + price_move),
            self.strike,
            self.time,
            volatility * (1.0 + vol_change),
            self.discount,
        )
        .map(|model| model.price(self.kind))
        .map_err(|error| RiskError::Pricing {
            path: format!("mark.{}", self.name),
            problem: error.to_string(),
        })?;
        Ok(match self.style {
            Style::Linear => usd,
            Style::Inverse => usd / moved_spot,
        })
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
    report_under(portfolio, &ShockBase::new(view), shock, Detail::Figures)
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
    let shock_base = ShockBase::new(view);
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

/// Steps of the outward search before bisection; bisection steps.
const SEARCH: [f64; 14] = [
    0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 0.99, 1.0,
];
const BISECTION_STEPS: usize = 40;

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
    Ok(
        match (report.health, report.equity.value() <= Decimal::ZERO) {
            (_, true) => 0.0,
            (Some(health), false) => health,
            (None, false) => f64::INFINITY,
        },
    )
}

/// The smallest move in the direction of `sign` (steps up to `scale`) of `names` together at which
/// health reaches 1, to bisection precision; `None` if none within the search.
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
    search_move_from(portfolio, &ShockBase::new(view), names, sign, scale)
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
    let mut safe = 0.0;
    for step in SEARCH {
        let candidate = sign * step * scale;
        if sign < 0.0 && candidate <= -0.99 {
            break;
        }
        if health_at(portfolio, base, names, candidate)? <= 1.0 {
            let (mut low, mut high) = (safe, candidate);
            for _ in 0..BISECTION_STEPS {
                let middle = 0.5 * (low + high);
                if health_at(portfolio, base, names, middle)? <= 1.0 {
                    high = middle;
                } else {
                    low = middle;
                }
            }
            return Ok(Some(high));
        }
        safe = candidate;
    }
    Ok(None)
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
    let all = underlyings(portfolio);
    let mut sets: Vec<Vec<String>> = all.iter().map(|name| vec![name.clone()]).collect();
    if all.len() > 1 {
        sets.push(all);
    }
    let shock_base = ShockBase::new(view);
    sets.into_iter()
        .map(|names| {
            if health_at(portfolio, &shock_base, &names, 0.0)? <= 1.0 {
                return Ok(ReverseStress {
                    underlyings: names,
                    down: Some(0.0),
                    up: Some(0.0),
                });
            }
            Ok(ReverseStress {
                down: search_move_from(portfolio, &shock_base, &names, -1.0, 1.0)?,
                up: search_move_from(portfolio, &shock_base, &names, 1.0, 10.0)?,
                underlyings: names,
            })
        })
        .collect()
}

/// A bracket of the liquidation-move search: health is above 1 at `low` and at or below 1 at
/// `high`; bisection moves one end to the middle at each step, and the search's answer is
/// `high` once `steps_left` reaches zero.
#[derive(Clone, Copy, Debug)]
struct Bracket {
    low: f64,
    high: f64,
    steps_left: usize,
}

impl Bracket {
    /// One bisection step, exactly as [`search_move_from`] takes it.
    fn step(
        &mut self,
        health: &mut impl FnMut(f64) -> Result<f64, RiskError>,
    ) -> Result<(), RiskError> {
        let middle = 0.5 * (self.low + self.high);
        if health(middle)? <= 1.0 {
            self.high = middle;
        } else {
            self.low = middle;
        }
        self.steps_left -= 1;
        Ok(())
    }

    /// The answer's magnitude is at most this (bisection only brings `high` toward `low`).
    fn upper(&self) -> f64 {
        self.high.abs()
    }

    /// The answer's magnitude is at least this: `|low|` plus the width the remaining steps
    /// leave. Each step halves the width up to the rounding of `low + high` (at most
    /// `max(|low|, |high|) 2^-53`, halved again at each later step), so after `n` steps the
    /// width is at least `width 2^-n - max 2^-52`.
    fn lower(&self) -> f64 {
        if self.steps_left == 0 {
            return self.upper();
        }
        let width = (self.high - self.low).abs() * (1.0 - 1e-15);
        let scale = self.low.abs().max(self.high.abs());
        let steps = i32::try_from(self.steps_left).unwrap_or(i32::MAX);
        let remaining = width * 0.5_f64.powi(steps) - scale * f64::EPSILON;
        self.low.abs() + remaining.max(0.0)
    }

    /// Runs the remaining steps; the answer.
    fn finish(
        mut self,
        health: &mut impl FnMut(f64) -> Result<f64, RiskError>,
    ) -> Result<f64, RiskError> {
        while self.steps_left > 0 {
            self.step(health)?;
        }
        Ok(self.high)
    }
}

/// The outward phase of [`search_move_from`]: the first step at which health reaches 1 and the
/// last one before it, as a bracket; `None` when no step reaches it. `stop_beyond`: a magnitude
/// past which the caller needs no answer (the search then stops before evaluating a step whose
/// safe end is already beyond it, and answers `None`).
fn outward(
    health: &mut impl FnMut(f64) -> Result<f64, RiskError>,
    sign: f64,
    scale: f64,
    stop_beyond: Option<f64>,
) -> Result<Option<Bracket>, RiskError> {
    let mut safe = 0.0;
    for step in SEARCH {
        let candidate = sign * step * scale;
        if sign < 0.0 && candidate <= -0.99 {
            break;
        }
        if stop_beyond.is_some_and(|limit| limit <= f64::abs(safe)) {
            return Ok(None);
        }
        if health(candidate)? <= 1.0 {
            return Ok(Some(Bracket {
                low: safe,
                high: candidate,
                steps_left: BISECTION_STEPS,
            }));
        }
        safe = candidate;
    }
    Ok(None)
}

/// The nearest move of `underlying` alone (down to -99%, up to +1000%) that takes the account's
/// health to 1: the smaller in magnitude of [`search_move_from`]'s fall and rise (the fall on
/// a tie), the same `f64` to the last bit.
///
/// It evaluates fewer moves than the two searches: the rise is searched outward only while it
/// could still be nearer than the fall's bracket, and the two bisections are run only as far as
/// it takes to tell which is nearer (from rigorous bounds on where each can still end), then the
/// nearer one to the end.
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
) -> Result<Option<f64>, RiskError> {
    let mut lean = match params {
        Some(params) => MoveHealth::new(portfolio, base, params, underlying)?,
        None => None,
    };
    let names = [underlying.to_owned()];
    let mut health = |price_move: f64| -> Result<f64, RiskError> {
        if let Some(health) = lean.as_mut().and_then(|lean| lean.health(price_move)) {
            return Ok(health);
        }
        health_at(portfolio, base, &names, price_move)
    };
    let down = outward(&mut health, -1.0, 1.0, None)?;
    let up = outward(&mut health, 1.0, 10.0, down.map(|d| d.upper()))?;
    let (mut down, mut up) = match (down, up) {
        (None, None) => return Ok(None),
        (Some(down), None) => return down.finish(&mut health).map(Some),
        (None, Some(up)) => return up.finish(&mut health).map(Some),
        (Some(down), Some(up)) => (down, up),
    };
    loop {
        // The fall wins ties (`|down| <= up`).
        if down.upper() <= up.lower() {
            return down.finish(&mut health).map(Some);
        }
        if up.upper() < down.lower() {
            return up.finish(&mut health).map(Some);
        }
        // Undecided: refine the bracket that may hold the nearer answer.
        if down.steps_left > 0 && (up.steps_left == 0 || down.lower() <= up.lower()) {
            down.step(&mut health)?;
        } else {
            up.step(&mut health)?;
        }
    }
}
