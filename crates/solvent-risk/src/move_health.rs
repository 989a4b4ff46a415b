//! The health of a portfolio-margin account as one underlying moves alone: what the
//! liquidation-move search asks at each step (its outward steps, then about ten interpolation
//! steps where health is smooth, up to forty-one where it is a staircase).
//!
//! The full path shocks the whole market and builds the report again: every mark is repriced,
//! every position re-margined, every instrument of every underlying revalued under every
//! scenario. A move of one underlying changes only its index, the marks of its instruments, and
//! the conversions through assets it prices. [`MoveHealth`] prepares the rest once and, at each
//! step, recomputes what the move changes with the same operations in the same order, so the
//! health is the full path's bit for bit:
//! - the marks of the underlying's instruments, by the shock's own repricing
//!   ([`ShockBase::moved_mark`]);
//! - the equity: collateral at the moved index, and the contribution of each position whose
//!   mark or conversion moved (the others' contributions are reused), summed in the account's
//!   order;
//! - the portfolio margin through [`MovedBook`]: only the moved underlying's instruments are
//!   revalued; the other underlyings' scenario P&L are reused.
//!
//! Where it cannot vouch for the full path's result (a price out of range, a revaluation that
//! fails, a figure that could leave `Decimal`'s range) it answers `None` and the caller takes the
//! full path, which then gives the same figure or the same error as before.

use std::sync::Arc;

use rayon::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use solvent_core::instrument::{Style, Terms};
use solvent_core::money::Price;
use solvent_core::portfolio::{MarginMode, Portfolio, Position};
use solvent_core::portfolio_margin::PortfolioMarginParams;
use solvent_core::rounding;
use solvent_core::venue::{Asset, MarginRule};
use solvent_pricing::black76::{OwnedColumns, prices_checked};

use crate::account::lines;
use crate::collateral;
use crate::error::RiskError;
use crate::portfolio_margin::{BookMark, MovedBook, ReportCurrency, ScenarioBook, exposures};
use crate::standard;
use crate::stress::{ShockBase, moved_index};
use crate::valuation::MarketView;

/// How closely a step of [`MoveHealth`] follows the full path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// The full path's figure bit for bit: each moved option mark's volatility is solved again
    /// from the mark, as the report on the moved market solves it.
    Exact,
    /// Each moved option mark is revalued at the volatility the search repriced it at, without
    /// solving it again: the health differs from the full path's by the solver's error (about
    /// 1e-15 relative). For the search's steps; its answer is then checked with
    /// [`Precision::Exact`].
    Fast,
}

/// Converted figures stay below this (USD amounts and report amounts alike), far inside
/// `Decimal`'s range (about 7.9e28): within it, none of the full path's conversions can overflow.
const FIGURE_LIMIT: f64 = 1e27;

/// A decimal as `f64` for the risk math (NaN where it has none), as the scenario book reads it.
fn f64_of(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// A position as the move sees it.
struct Held<'a> {
    position: &'a Position,
    settlement: &'a Asset,
    /// Whether it is on the moved underlying (its mark and index move).
    on_moved: bool,
    /// Whether its figures change with the move: on the moved underlying, or converted through
    /// an asset the underlying prices.
    affected: bool,
    /// Its mark at the unmoved market.
    mark: Decimal,
    /// Its slot among the market's marks, when the market gives it.
    given: Option<usize>,
    /// Its contribution to the cross pool's equity at the unmoved market (rounded, in the
    /// report asset); `None` for an isolated position (it adds nothing to the pool).
    contribution: Option<Decimal>,
    /// Bound of its figures relative to its exposure (see [`LastRule::factor`]) and its sizes;
    /// known for every affected position.
    factor: Option<(FigureFactor, Sizes)>,
    /// Its underlying's index as `f64` at the unmoved market.
    underlying_f64: f64,
    /// Its size times the contract size, as `f64` (a fast step's option equity is this times
    /// the premium; converted once, not at every step).
    units_f64: f64,
}

/// The last decimal converted to `f64` and its value: positions of one series share their
/// contract size and their underlying's index, and converting them afresh for each of 10,000
/// positions was a fifth of preparing a search. Keyed by the decimal's bits (not its value: `0.1`
/// and `0.10` are equal decimals that need not convert to the same `f64`).
#[derive(Default)]
struct LastF64(Option<([u8; 16], f64)>);

impl LastF64 {
    fn of(&mut self, value: Decimal) -> f64 {
        let bits = value.serialize();
        if let Some((seen, converted)) = self.0
            && seen == bits
        {
            return converted;
        }
        let converted = f64_of(value);
        self.0 = Some((bits, converted));
        converted
    }
}

/// The bound of a position's figures, keeping the rate and deduction of the last rule seen (by
/// its address, and the leverage chosen): every position of a series shares its rule, whose
/// decimals were converted again for each.
#[derive(Default)]
struct LastRule(Option<RuleKey>);

/// A rule's identity, the leverage chosen's bits, and its rate and deduction (`None` when
/// [`rule_rates`] has none).
type RuleKey = (*const MarginRule, Option<[u8; 16]>, Option<(f64, f64)>);

impl LastRule {
    /// The bound of `position`'s figures; `None` for a rule whose requirement is not bounded by
    /// a fixed multiple of the position's exposure (the square-root rule of an inverse contract
    /// grows with `1 / mark`), for which the search takes the full path.
    fn factor(&mut self, position: &Position) -> Option<FigureFactor> {
        let instrument = &position.instrument;
        let rule = Arc::as_ptr(&instrument.margin);
        let chosen = position
            .leverage
            .or(instrument.default_leverage)
            .map(|leverage| leverage.serialize());
        let rates = match self.0 {
            Some((seen, seen_chosen, rates)) if seen == rule && seen_chosen == chosen => rates,
            _ => {
                let rates = rule_rates(position);
                self.0 = Some((rule, chosen, rates));
                rates
            }
        };
        let (rate, absolute) = rates?;
        let isolated = position
            .isolated_margin
            .map_or(Some(0.0), |m| m.value().abs().to_f64())?;
        Some(FigureFactor {
            rate,
            absolute: absolute + isolated,
            contracts: (position.size.value().abs() * instrument.contract_size).to_f64()?,
        })
    }
}

/// `|figure| <= (exposure + contracts) x (1 + rate) + absolute` for every figure the report
/// converts for a position (value, P&L, requirements, isolated equity): its rule's largest rate
/// and deduction, read from the venue file once.
#[derive(Clone, Copy)]
struct FigureFactor {
    rate: f64,
    absolute: f64,
    contracts: f64,
}

/// The rule's part of a position's [`FigureFactor`] (see [`LastRule::factor`]): its largest
/// rate and deduction, which depend on the position only through the leverage chosen.
fn rule_rates(position: &Position) -> Option<(f64, f64)> {
    let instrument = &position.instrument;
    let abs = |value: Decimal| value.abs().to_f64();
    let (rate, absolute) = match instrument.margin.as_ref() {
        MarginRule::Tiered { .. } | MarginRule::TieredBy { .. } => {
            let tiers = instrument
                .margin
                .tiers()
                .map_or(&[][..], |(tiers, _, _)| tiers);
            let chosen = position.leverage.or(instrument.default_leverage);
            let mut rate: f64 = 0.0;
            let mut absolute: f64 = 0.0;
            for tier in tiers {
                let leverage = chosen.map_or(tier.max_leverage, |c| c.min(tier.max_leverage));
                if leverage <= Decimal::ZERO {
                    return None;
                }
                rate = rate
                    .max(1.0 / leverage.to_f64()?)
                    .max(abs(tier.maintenance_rate)?);
                absolute = absolute.max(abs(tier.deduction)?);
            }
            (rate, absolute)
        }
        MarginRule::SizeLinear {
            initial_base,
            maintenance_base,
            rate_per_unit,
            max_rate,
            ..
        } if *rate_per_unit >= Decimal::ZERO => (
            abs(*initial_base)?
                .max(abs(*maintenance_base)?)
                .max(abs(*max_rate)?),
            0.0,
        ),
        MarginRule::SizeLinear { .. } | MarginRule::SizeSqrt { .. } => return None,
        MarginRule::OpenInterest {
            initial_base,
            maintenance_fraction,
            rate_step,
            ..
        } => (
            1.0 + abs(*initial_base)?
                + rate_step.map_or(Some(0.0), abs)?
                + abs(*initial_base * *maintenance_fraction)?,
            0.0,
        ),
        MarginRule::DeribitOption {
            initial_base,
            initial_floor,
            maintenance,
            ..
        } => (
            abs(*initial_base)?.max(abs(*initial_floor)?) + abs(*maintenance)? + 1.0,
            0.0,
        ),
    };
    Some((rate, absolute))
}

/// The health of the account as one underlying moves alone, prepared once for many moves.
pub struct MoveHealth<'a> {
    portfolio: &'a Portfolio,
    view: &'a MarketView<'a>,
    shocks: &'a ShockBase<'a>,
    underlying: &'a str,
    /// The underlying's index at the unmoved market.
    index: Price,
    report_asset: &'a Asset,
    held: Vec<Held<'a>>,
    /// The market's marks on the underlying (each is repriced at each step, as a shock reprices
    /// them: one that cannot be is an error of the full path).
    slots: Vec<usize>,
    /// Per market mark, its place in `slots` (the marks of other underlyings do not move).
    slot_place: Vec<Option<usize>>,
    book: MovedBook,
    /// Per instrument of the moved book: the position that reads its mark.
    book_marks: Vec<Option<usize>>,
    priced_by: Option<usize>,
    /// Step buffers.
    moved_marks: Vec<Decimal>,
    /// In a fast step, an option's moved premium as the repricing gave it (its decimal in
    /// `moved_marks` is then not made): see [`ShockBase::moved_option_premium`].
    moved_premiums: Vec<Option<f64>>,
    /// The volatility each moved mark was repriced at, where known (see [`BookMark`]).
    moved_volatilities: Vec<Option<f64>>,
    marks: Vec<BookMark>,
    position_marks: Vec<(Decimal, f64)>,
    repricing: BatchRepricing,
    /// The moved marks of the last two exact steps, with their moves' bits: the answer of a
    /// search is one of them (the exact check ends at the answer or just past it), and the
    /// report's liquidation prices then read the market there without repricing it again.
    exact_marks: [Option<(u64, Vec<Decimal>)>; 2],
    /// Fast steps taken ahead of the search ([`MoveHealth::speculate`]), by their moves' bits.
    speculated: Vec<(u64, Option<f64>)>,
}

/// Most fast steps [`MoveHealth::speculate`] takes: a few more than fit beside a large
/// account's figures (two on the 10,000-option account of `bench/large_account.sh`). An account
/// that does not search (health at or below 1) pays for the steps taken: usually the one under
/// way when its figures are done, all of them where the preparation ran on the thread whose
/// figures wait for it (rayon may run it there while that thread waits for stolen work).
const SPECULATED_STEPS: usize = 4;

impl<'a> MoveHealth<'a> {
    /// Prepares the moves of `underlying` for a portfolio-margin account. `None` when the
    /// account holds something this path does not recompute (the search then takes the full
    /// path at every step).
    ///
    /// # Errors
    /// [`RiskError`] as the margin report at the unmoved market.
    pub fn new(
        portfolio: &'a Portfolio,
        shocks: &'a ShockBase<'a>,
        params: &PortfolioMarginParams,
        underlying: &'a str,
    ) -> Result<Option<Self>, RiskError> {
        let view = shocks.view();
        let market = view.market();
        // A cross-mode account is margined by its standard rules, which this path does not
        // compute: its health comes from the full report.
        if portfolio.mode != MarginMode::Portfolio {
            return Ok(None);
        }
        // Segregated portfolio margin scans each currency in its coin and takes the weakest
        // currency's health, which the one-book fast path does not compute: the full report.
        if params.collateral == solvent_core::portfolio_margin::PortfolioCollateral::Segregated {
            return Ok(None);
        }
        let Some(index) = market.index.get(underlying).copied() else {
            return Ok(None);
        };
        let report_asset = &portfolio.settlement_asset;
        let report_moves = report_asset.index == underlying;
        let lines = lines(portfolio, view)?;
        let mut held = Vec::with_capacity(lines.len());
        let (mut rules, mut underlyings, mut contract_sizes) =
            (LastRule::default(), LastF64::default(), LastF64::default());
        for line in &lines {
            let position = line.position;
            let instrument = &position.instrument;
            let on_moved = instrument.underlying == underlying;
            let affected = on_moved || report_moves || line.settlement.index == underlying;
            let factor = rules.factor(position).zip(Sizes::of(position));
            if affected && factor.is_none() {
                return Ok(None);
            }
            let contribution = match position.isolated_margin {
                Some(_) => None,
                None => {
                    let settle = view.convert(
                        line.equity_at(line.mark.price),
                        line.settlement,
                        report_asset,
                    )?;
                    Some(rounding::credit(settle, report_asset.precision))
                }
            };
            held.push(Held {
                position,
                settlement: line.settlement,
                on_moved,
                affected,
                mark: line.mark.price,
                underlying_f64: underlyings.of(line.underlying_usd),
                units_f64: f64_of(position.size.value())
                    * contract_sizes.of(instrument.contract_size),
                given: market.mark.get_index_of(&instrument.name),
                contribution,
                factor,
            });
        }
        let (instruments, spot_assets) = crate::portfolio_report::book_inputs(portfolio, params);
        let scenario_book =
            ScenarioBook::new_for_move(view, params, &instruments, &spot_assets, underlying)?;
        let exposures = exposures(portfolio, &scenario_book)?;
        let priced_by = scenario_book
            .underlyings
            .get_index_of(report_asset.index.as_str());
        let Some(book) = MovedBook::new(
            view,
            params,
            scenario_book,
            &exposures,
            underlying,
            &instruments,
        )?
        else {
            return Ok(None);
        };
        // Each instrument of the moved book reads the mark of the first cross position on it
        // (every position on one instrument has the same mark).
        let mut first_reader: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::new();
        for (place, h) in held.iter().enumerate() {
            if h.contribution.is_some() {
                first_reader
                    .entry(h.position.instrument.name.as_str())
                    .or_insert(place);
            }
        }
        let book_marks = book
            .instruments()
            .iter()
            .map(|name| first_reader.get(name.as_str()).copied())
            .collect();
        let slots = shocks.slots_on(underlying);
        let mut slot_place = vec![None; market.mark.len()];
        for (place, &slot) in slots.iter().enumerate() {
            if let Some(entry) = slot_place.get_mut(slot) {
                *entry = Some(place);
            }
        }
        Ok(Some(Self {
            portfolio,
            view,
            shocks,
            underlying,
            index,
            report_asset,
            held,
            slots,
            slot_place,
            book,
            book_marks,
            priced_by,
            moved_marks: Vec::new(),
            exact_marks: [None, None],
            speculated: Vec::new(),
            moved_premiums: Vec::new(),
            moved_volatilities: Vec::new(),
            marks: Vec::new(),
            position_marks: Vec::new(),
            repricing: BatchRepricing::default(),
        }))
    }

    /// The marks on the underlying (in the order of [`ShockBase::slots_on`]) as one of the last
    /// two exact steps repriced them at exactly `price_move`, if one did.
    pub(crate) fn take_exact_marks(&mut self, price_move: f64) -> Option<Vec<Decimal>> {
        self.exact_marks
            .iter_mut()
            .find(|kept| {
                kept.as_ref()
                    .is_some_and(|(bits, _)| *bits == price_move.to_bits())
            })?
            .take()
            .map(|(_, marks)| marks)
    }

    /// Health when the underlying moves by `price_move` (as the full path's: `0` at or below
    /// zero equity, infinite without a requirement), to `precision`, or `None` when this path
    /// cannot vouch for the full path's figure.
    pub fn health(&mut self, price_move: f64, precision: Precision) -> Option<f64> {
        if precision == Precision::Fast
            && let Some(&(_, known)) = self
                .speculated
                .iter()
                .find(|(bits, _)| *bits == price_move.to_bits())
        {
            return known;
        }
        self.health_now(price_move, precision)
    }

    /// Takes the liquidation-move search's first outward steps (fast) before it is known
    /// whether the search runs, while `report_done` is unset and at most [`SPECULATED_STEPS`]:
    /// [`MoveHealth::health`] then answers them as computed here. The steps are those the
    /// search takes first whatever the account's health at the unmoved market
    /// ([`crate::stress::outward_both`] chooses each from the healths before it alone).
    pub(crate) fn speculate(&mut self, report_done: &std::sync::atomic::AtomicBool) {
        /// The speculation stops (the report is done, the steps are spent, or a step needs the
        /// full path).
        struct Stop;
        let mut taken = 0;
        let _stopped = crate::stress::outward_both(
            &mut |price_move: f64| -> Result<f64, Stop> {
                if taken >= SPECULATED_STEPS
                    || report_done.load(std::sync::atomic::Ordering::Acquire)
                {
                    return Err(Stop);
                }
                taken += 1;
                let health = self.health_now(price_move, Precision::Fast);
                self.speculated.push((price_move.to_bits(), health));
                health.ok_or(Stop)
            },
            f64::NAN,
        );
    }

    /// [`MoveHealth::health`], computed.
    fn health_now(&mut self, price_move: f64, precision: Precision) -> Option<f64> {
        let view = self.view;
        let underlying = self.underlying;
        let index = moved_index(self.index, underlying, price_move).ok()?;
        let index_usd = index.value();
        // Every mark on the underlying, repriced on every core (each on its own).
        let shocks = self.shocks;
        // Each entry is overwritten below (or the step fails).
        self.moved_marks.resize(self.slots.len(), Decimal::ZERO);
        self.moved_premiums.clear();
        self.moved_premiums.resize(self.slots.len(), None);
        self.moved_volatilities.resize(self.slots.len(), None);
        if precision == Precision::Fast {
            self.reprice_options_in_batch(price_move)?;
        }
        self.slots
            .par_iter()
            .zip(
                self.moved_marks.par_iter_mut().zip(
                    self.moved_premiums
                        .par_iter_mut()
                        .zip(self.moved_volatilities.par_iter_mut()),
                ),
            )
            .with_min_len(256)
            .try_for_each(|(&slot, (moved, (premium, volatility)))| {
                // Repriced in the batch above.
                if premium.is_some() {
                    return Some(());
                }
                // A fast step keeps an option's premium as the repricing gives it; the answer
                // it leads to is checked on exact (decimal) marks.
                if precision == Precision::Fast
                    && let Some(repriced) =
                        shocks.moved_option_premium(slot, underlying, price_move)
                {
                    let (repriced, at) = repriced.ok()?;
                    *premium = Some(repriced);
                    *volatility = at;
                    return Some(());
                }
                let priced = shocks
                    .moved_mark_priced(slot, underlying, price_move)?
                    .ok()?;
                *moved = priced.price.value();
                *volatility = match precision {
                    Precision::Fast => priced.volatility,
                    Precision::Exact => None,
                };
                Some(())
            })?;
        if precision == Precision::Exact {
            // Every slot was repriced to its decimal above (no fast premium in an exact step).
            let [older, last] = &mut self.exact_marks;
            let mut kept = older.take().map(|(_, marks)| marks).unwrap_or_default();
            kept.clone_from(&self.moved_marks);
            *older = last.take();
            *last = Some((price_move.to_bits(), kept));
        }
        let asset_usd = |asset: &Asset| -> Option<Decimal> {
            if asset.index == underlying {
                Some(index_usd)
            } else {
                view.asset_usd(asset).ok()
            }
        };
        let report_asset = self.report_asset;
        let decimals = report_asset.precision;
        let report_usd = asset_usd(report_asset)?;

        // Collateral, as the report values it.
        let venue = view.venue();
        let mut collateral_value = Decimal::ZERO;
        let mut borrow_maintenance = Decimal::ZERO;
        for balance in &self.portfolio.balances {
            let usd_price = asset_usd(&balance.asset)?;
            let schedule = venue.collateral.get(balance.asset.symbol.as_str());
            let valued = collateral::value(schedule, balance.amount.value(), usd_price);
            collateral_value += rounding::credit(
                valued.collateral_value_usd.checked_div(report_usd)?,
                decimals,
            );
            if valued.borrow_maintenance_usd > Decimal::ZERO
                || valued.borrow_initial_usd > Decimal::ZERO
            {
                valued.borrow_initial_usd.checked_div(report_usd)?;
                borrow_maintenance += rounding::requirement(
                    valued.borrow_maintenance_usd.checked_div(report_usd)?,
                    decimals,
                );
            }
        }

        // Positions: marks, bounds, and the pool's equity in the account's order.
        let report_f64 = report_usd.to_f64()?;
        let spot = f64_of(index_usd);
        let mut unrealized_pnl = Decimal::ZERO;
        let mut option_value = Decimal::ZERO;
        // Fast steps: the options whose premium stayed in `f64`, summed in `f64` (unrounded,
        // in the report asset).
        let mut option_value_f64 = 0.0;
        let mut fast_equity = false;
        let scale = 10_f64.powi(i32::try_from(decimals).ok()?);
        self.position_marks.clear();
        // Each settlement asset's USD price as `f64`, converted once per step (positions
        // share a few settlement assets; a conversion per position cost more than its use).
        let mut settlement_prices: Vec<(&str, f64)> = Vec::new();
        let mut settlement_usd = |asset: &'a Asset| -> Option<f64> {
            if let Some(&(_, usd)) = settlement_prices
                .iter()
                .find(|(symbol, _)| *symbol == asset.symbol.as_str())
            {
                return Some(usd);
            }
            let usd = f64_of(asset_usd(asset)?);
            settlement_prices.push((asset.symbol.as_str(), usd));
            Some(usd)
        };
        for held in &self.held {
            let position = held.position;
            let instrument = &position.instrument;
            let premium = match (held.on_moved, held.given) {
                (true, Some(slot)) => *self.moved_premiums.get((*self.slot_place.get(slot)?)?)?,
                _ => None,
            };
            if let Some(premium) = premium {
                self.position_marks.push((Decimal::ZERO, premium));
                let from_usd = settlement_usd(held.settlement)?;
                within_figure_limit(held, premium, spot, from_usd, report_f64)?;
                if held.contribution.is_some() {
                    fast_equity = true;
                    // `standard::equity_contribution` of an option, in `f64`.
                    let settle = held.units_f64 * premium;
                    let converted = if held.settlement.symbol == report_asset.symbol {
                        settle
                    } else {
                        settle * from_usd / report_f64
                    };
                    // Rounded down to the report asset's precision as `rounding::credit` rounds
                    // the exact figure: unrounded, ten thousand options' sum strays from the
                    // exact path's by more than the answer's tolerance, and the check fails.
                    option_value_f64 += (converted * scale).floor() / scale;
                }
                continue;
            }
            let mark = if held.on_moved {
                match held.given {
                    Some(slot) => {
                        let place = (*self.slot_place.get(slot)?)?;
                        *self.moved_marks.get(place)?
                    }
                    None => match &instrument.terms {
                        Terms::Perpetual | Terms::Future { .. } => index_usd,
                        Terms::Option { .. } => {
                            view.model_mark_at(instrument, index_usd).ok()??.price
                        }
                    },
                }
            } else {
                held.mark
            };
            if !held.affected {
                self.position_marks.push((mark, f64::NAN));
                if let Some(contribution) = held.contribution {
                    add_to_pool(
                        contribution,
                        instrument,
                        &mut unrealized_pnl,
                        &mut option_value,
                    );
                }
                continue;
            }
            let mark_f64 = f64_of(mark);
            self.position_marks.push((mark, mark_f64));
            let underlying_f64 = if held.on_moved {
                spot
            } else {
                held.underlying_f64
            };
            let from_usd = settlement_usd(held.settlement)?;
            within_figure_limit(held, mark_f64, underlying_f64, from_usd, report_f64)?;
            if held.contribution.is_some() {
                let settle = standard::equity_contribution(
                    instrument,
                    position.size.value(),
                    position.entry_price.value(),
                    mark,
                );
                let converted = if held.settlement.symbol == report_asset.symbol || settle.is_zero()
                {
                    settle
                } else {
                    settle
                        .checked_mul(asset_usd(held.settlement)?)?
                        .checked_div(report_usd)?
                };
                add_to_pool(
                    rounding::credit(converted, decimals),
                    instrument,
                    &mut unrealized_pnl,
                    &mut option_value,
                );
            }
        }
        let equity = collateral_value + unrealized_pnl + option_value;
        let equity_f64 = equity.to_f64().unwrap_or(f64::NAN) + option_value_f64;
        if !equity_f64.is_finite() {
            return None;
        }

        // Portfolio margin.
        self.marks.clear();
        for reader in &self.book_marks {
            let mark = match reader {
                Some(position) => {
                    let held = self.held.get(*position)?;
                    let (_, mark) = *self.position_marks.get(*position)?;
                    // An option priced by the surface has no given mark to imply a volatility.
                    let given = held.given.is_some()
                        || !matches!(held.position.instrument.terms, Terms::Option { .. });
                    // A given mark on the moved underlying was repriced above, maybe at a known
                    // volatility.
                    let volatility = match (held.on_moved, held.given) {
                        (true, Some(slot)) => {
                            let place = (*self.slot_place.get(slot)?)?;
                            *self.moved_volatilities.get(place)?
                        }
                        _ => None,
                    };
                    BookMark {
                        price: given.then_some(mark),
                        volatility,
                    }
                }
                None => BookMark::default(),
            };
            self.marks.push(mark);
        }
        let price_usd = report_usd.to_f64().unwrap_or(f64::NAN);
        let currency = ReportCurrency {
            price_usd,
            priced_by: self.priced_by,
            equity_usd: equity_f64 * price_usd,
        };
        let (maintenance, initial) = self.book.margin(spot, &self.marks, &currency)?;
        let maintenance =
            rounding::requirement_from_f64(maintenance, decimals, "portfolio maintenance margin")
                .ok()?;
        rounding::requirement_from_f64(initial, decimals, "portfolio initial margin").ok()?;
        let cross_maintenance = borrow_maintenance + maintenance;
        if fast_equity {
            // A fast step's equity is in `f64`: its health too.
            if equity_f64 <= 0.0 {
                return Some(0.0);
            }
            if cross_maintenance <= Decimal::ZERO {
                return Some(f64::INFINITY);
            }
            let health = equity_f64 / cross_maintenance.to_f64()?;
            return Some(if health.is_finite() {
                health
            } else {
                f64::INFINITY
            });
        }
        if equity <= Decimal::ZERO {
            return Some(0.0);
        }
        if cross_maintenance <= Decimal::ZERO {
            return Some(f64::INFINITY);
        }
        Some(
            (equity / cross_maintenance)
                .to_f64()
                .filter(|value| value.is_finite())
                .unwrap_or(f64::INFINITY),
        )
    }
}

impl MoveHealth<'_> {
    /// A fast step's repricing of the moved underlying's option marks, all in one call of the
    /// batch Black-76 kernel (a scalar repricing per mark cost about as much as the step's whole
    /// scenario revaluation of it): each premium and the volatility it was priced at go to
    /// `moved_premiums` and `moved_volatilities`. Marks it does not price (linear ones, expired
    /// options, premiums the exact path would hold at the smallest price or refuse) are left
    /// `None` for the per-mark path. `None` when a repricing fails (the full path then reports
    /// why).
    fn reprice_options_in_batch(&mut self, price_move: f64) -> Option<()> {
        let batch = &mut self.repricing;
        batch.columns.clear();
        batch.places.clear();
        for (place, &slot) in self.slots.iter().enumerate() {
            let Some(inputs) = self
                .shocks
                .moved_option_inputs(slot, self.underlying, price_move)
            else {
                continue;
            };
            let inputs = inputs.ok()?;
            batch.columns.forward.push(inputs.forward);
            batch.columns.strike.push(inputs.strike);
            batch.columns.time.push(inputs.time);
            batch.columns.volatility.push(inputs.volatility);
            batch.columns.discount.push(inputs.discount);
            batch.columns.kind.push(inputs.kind);
            batch
                .places
                .push((place, inputs.per_index, inputs.volatility));
        }
        if batch.places.is_empty() {
            return Some(());
        }
        // Only the premiums are read: the kernel computes no greeks.
        prices_checked(batch.columns.columns(), &mut batch.prices).ok()?;
        for (&(place, per_index, volatility), &usd) in batch.places.iter().zip(&batch.prices) {
            let premium = per_index.map_or(usd, |index| usd / index);
            // As `ShockBase::moved_option_premium`: premiums near or below the smallest price,
            // or beyond the accepted range, are left to the exact path.
            if premium > 1e-9 && premium < 1e12 {
                *self.moved_premiums.get_mut(place)? = Some(premium);
                *self.moved_volatilities.get_mut(place)? = Some(volatility);
            }
        }
        Some(())
    }
}

/// The buffers of [`MoveHealth::reprice_options_in_batch`], reused from step to step.
#[derive(Default)]
struct BatchRepricing {
    columns: OwnedColumns,
    /// Per batch row: the mark's place in `slots`, the moved index of an inverse option, the
    /// volatility it is priced at.
    places: Vec<(usize, Option<f64>, f64)>,
    prices: Vec<f64>,
}

/// `Some` when every figure the full path converts for `held` at `mark` (its underlying at
/// `underlying`) stays below [`FIGURE_LIMIT`] in USD and in the report asset; `None` when it may
/// not (the caller takes the full path).
fn within_figure_limit(
    held: &Held<'_>,
    mark: f64,
    underlying: f64,
    from_usd: f64,
    report_usd: f64,
) -> Option<()> {
    let (factor, sizes) = held.factor?;
    let exposure = exposure_within_bounds(sizes, mark, underlying)?;
    let bound = (exposure + factor.contracts) * (1.0 + factor.rate) + factor.absolute;
    (bound * from_usd.max(1.0) < FIGURE_LIMIT && bound * from_usd / report_usd < FIGURE_LIMIT)
        .then_some(())
}

/// Adds a position's rounded contribution to the pool's option value or unrealised P&L, as the
/// report adds it.
fn add_to_pool(
    contribution: Decimal,
    instrument: &solvent_core::instrument::Instrument,
    unrealized_pnl: &mut Decimal,
    option_value: &mut Decimal,
) {
    if matches!(instrument.terms, Terms::Option { .. }) {
        *option_value += contribution;
    } else {
        *unrealized_pnl += contribution;
    }
}

/// A position's size, contract size and entry price as `f64`, for [`exposure_within_bounds`].
#[derive(Clone, Copy)]
struct Sizes {
    size: f64,
    contract_size: f64,
    entry: f64,
    /// Whether its exposure is `size / price` (inverse perpetuals and futures).
    inverse: bool,
    /// Whether the underlying's index is among its prices (options).
    option: bool,
}

impl Sizes {
    fn of(position: &Position) -> Option<Self> {
        let instrument = &position.instrument;
        Some(Self {
            size: position.size.value().abs().to_f64()?,
            contract_size: instrument.contract_size.to_f64()?,
            entry: position.entry_price.value().to_f64()?,
            inverse: instrument.style == Style::Inverse
                && matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. }),
            option: matches!(instrument.terms, Terms::Option { .. }),
        })
    }
}

/// The position's exposure as [`standard::bounded_exposure`] measures it (at its mark and
/// entry, and the underlying's index for an option), in `f64`; `None` when it is not clearly
/// within the bound the report enforces (the full path then refuses it, or decides exactly).
fn exposure_within_bounds(sizes: Sizes, mark: f64, underlying_usd: f64) -> Option<f64> {
    let Sizes {
        size,
        contract_size,
        entry,
        inverse,
        option,
    } = sizes;
    let exposure = if inverse {
        size / mark.min(entry)
    } else if option {
        size * contract_size * mark.max(entry).max(underlying_usd)
    } else {
        size * contract_size * mark.max(entry)
    };
    // A relative margin far above the error of the few `f64` operations above (NaN fails).
    (exposure < MAX_AMOUNT_F64 * (1.0 - 1e-9)).then_some(exposure)
}

/// [`MAX_AMOUNT`] as `f64` (`1e15`, exact).
const MAX_AMOUNT_F64: f64 = 1e15;

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test helpers: a failed unwrap is a failed test"
    )]

    use serde_json::Value;
    use solvent_core::market::Market;
    use solvent_core::portfolio::Portfolio;
    use solvent_core::venue::Venue;

    use super::{MoveHealth, Precision};
    use crate::portfolio_margin::{BookMark, ReportCurrency};
    use crate::stress::{ShockBase, health_at, nearest_crossing, search_known};
    use crate::valuation::MarketView;

    fn venue() -> Venue {
        let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
        Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// The account and the market of a test file, read as `solvent margin` reads them.
    fn parsed(venue: &Venue, file: &Value) -> (Portfolio, Market) {
        let portfolio = Portfolio::from_json("p.json", &file.to_string(), venue).unwrap();
        let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
        (portfolio, market)
    }

    /// The desk example in portfolio mode, changed by `edit`.
    fn desk(edit: impl Fn(&mut Value)) -> Value {
        let path = format!(
            "{}/../../examples/btc-desk.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut file: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        file["mode"] = Value::from("portfolio");
        edit(&mut file);
        file
    }

    fn accounts() -> Vec<Value> {
        vec![
            desk(|_| {}),
            // Coin-margined: the report asset moves with BTC, so every conversion does.
            desk(|file| file["settlement_asset"] = Value::from("BTC")),
            // Options priced by the surface (no given marks).
            desk(|file| {
                let marks = file["market"]["mark"].as_object_mut().unwrap();
                marks.retain(|name, _| !name.ends_with("-C") && !name.ends_with("-P"));
            }),
            // An isolated perpetual on the moved underlying.
            desk(|file| {
                file["positions"][0]["isolated_margin"] = Value::from("5000");
                file["positions"][0]["leverage"] = Value::from(10);
            }),
        ]
    }

    const MOVES: [f64; 14] = [
        -0.9, -0.5, -0.16, -0.03, -1e-9, 0.0, 1e-12, 0.004, 0.08, 0.3, 1.0, 2.5, 6.0, 9.9,
    ];

    #[test]
    fn lean_health_is_the_full_reports_bit_for_bit() {
        let venue = venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        let mut lean_steps = 0;
        for file in accounts() {
            let (portfolio, market) = parsed(&venue, &file);
            let view = MarketView::new(&venue, &market).unwrap();
            let shocks = ShockBase::new(&view);
            for underlying in ["BTC", "ETH", "SOL"] {
                // The desk's SOL perpetual is isolated: no cross position moves with SOL.
                let Some(mut lean) =
                    MoveHealth::new(&portfolio, &shocks, params, underlying).unwrap()
                else {
                    assert_eq!(underlying, "SOL");
                    continue;
                };
                let names = [underlying.to_owned()];
                for price_move in MOVES {
                    let full = health_at(&portfolio, &shocks, &names, price_move);
                    let full = full.unwrap();
                    if let Some(health) = lean.health(price_move, Precision::Exact) {
                        lean_steps += 1;
                        assert_eq!(
                            health.to_bits(),
                            full.to_bits(),
                            "{underlying} {price_move}: {health}"
                        );
                    }
                    // The fast path within the solver's error of the full one (about 1e-15
                    // relative in the requirement), which may tip the requirement's rounding
                    // to the settlement asset's precision by one unit: 1e-6 USDT, under 1e-8 of
                    // these accounts' requirements.
                    if let Some(health) = lean.health(price_move, Precision::Fast) {
                        let slack = 1e-8 * full.abs().max(1.0);
                        assert!(
                            (health - full).abs() <= slack || health == full,
                            "{underlying} {price_move}: {health} against {full}"
                        );
                    }
                }
            }
        }
        // The lean path answers (nearly) everywhere, not only where it is easy.
        assert!(lean_steps >= 4 * 2 * (MOVES.len() - 2), "{lean_steps}");
    }

    /// A search's fast steps reuse what the previous step computed (each option row's shocked
    /// volatilities): each step's health is the bits of a fresh `MoveHealth`'s at the same move,
    /// in any order of moves, exact steps between them or not.
    #[test]
    fn a_fast_step_is_the_same_after_other_steps_as_alone() {
        let venue = venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        let mut compared = 0;
        for file in accounts().into_iter().chain([marked_desk()]) {
            let (portfolio, market) = parsed(&venue, &file);
            let view = MarketView::new(&venue, &market).unwrap();
            let shocks = ShockBase::new(&view);
            for underlying in ["BTC", "ETH"] {
                let fresh = |price_move: f64| {
                    MoveHealth::new(&portfolio, &shocks, params, underlying)
                        .unwrap()
                        .and_then(|mut lean| lean.health(price_move, Precision::Fast))
                };
                let Some(mut reused) =
                    MoveHealth::new(&portfolio, &shocks, params, underlying).unwrap()
                else {
                    continue;
                };
                for (step, price_move) in MOVES.iter().rev().chain(&MOVES).enumerate() {
                    if step % 5 == 4 {
                        reused.health(*price_move, Precision::Exact);
                    }
                    let again = reused.health(*price_move, Precision::Fast);
                    assert_eq!(
                        again.map(f64::to_bits),
                        fresh(*price_move).map(f64::to_bits),
                        "{underlying} {price_move}"
                    );
                    compared += usize::from(again.is_some());
                }
            }
        }
        assert!(compared >= 2 * MOVES.len(), "{compared}");

        // The same at the book's unrounded margin, where a volatility moved far (health, rounded
        // to the settlement asset's precision, would hide a stale shock of 1e-16): a book that
        // revalued its rows at one volatility revalues them at another as a fresh book does.
        let file = marked_desk();
        let (portfolio, market) = parsed(&venue, &file);
        let view = MarketView::new(&venue, &market).unwrap();
        let shocks = ShockBase::new(&view);
        let prepared = || {
            let mut lean = MoveHealth::new(&portfolio, &shocks, params, "BTC")
                .unwrap()
                .unwrap();
            lean.health(0.05, Precision::Fast).unwrap();
            lean
        };
        let mut used = prepared();
        let marks = used.marks.clone();
        assert!(marks.iter().any(|mark| mark.volatility.is_some()));
        let moved: Vec<BookMark> = marks
            .iter()
            .map(|mark| BookMark {
                price: mark.price,
                volatility: mark.volatility.map(|volatility| volatility * 1.3),
            })
            .collect();
        let currency = ReportCurrency {
            price_usd: 1.0,
            priced_by: None,
            equity_usd: 0.0,
        };
        let spot = 95_000.0;
        let before = used.book.margin(spot, &marks, &currency).unwrap();
        let after = used.book.margin(spot, &moved, &currency).unwrap();
        let mut fresh = MoveHealth::new(&portfolio, &shocks, params, "BTC")
            .unwrap()
            .unwrap();
        let alone = fresh.book.margin(spot, &moved, &currency).unwrap();
        assert_ne!(before.0.to_bits(), after.0.to_bits());
        assert_eq!(after.0.to_bits(), alone.0.to_bits());
        assert_eq!(after.1.to_bits(), alone.1.to_bits());
    }

    /// Steps taken ahead of the search are the search's first outward steps, in its order,
    /// answered as a fresh path computes them; none are taken once the report is done; the
    /// search answers them from what was kept (a kept health changed changes its answer); and
    /// it finds the same crossing, to the bit, with them as without.
    #[test]
    fn speculated_steps_are_the_searchs_first_steps_bit_for_bit() {
        use std::sync::atomic::AtomicBool;
        let venue = venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        let bits = |crossing: Option<crate::stress::Crossing>| {
            crossing.map(|c| {
                (
                    c.crossed.to_bits(),
                    c.safe.to_bits(),
                    c.tolerance.to_bits(),
                    c.refinements,
                )
            })
        };
        let mut searched = 0;
        for file in accounts().into_iter().chain([marked_desk()]) {
            let (portfolio, market) = parsed(&venue, &file);
            let view = MarketView::new(&venue, &market).unwrap();
            let shocks = ShockBase::new(&view);
            let fresh = || {
                MoveHealth::new(&portfolio, &shocks, params, "BTC")
                    .unwrap()
                    .unwrap()
            };
            let mut ahead = fresh();
            ahead.speculate(&AtomicBool::new(false));
            let taken: Vec<(u64, Option<f64>)> = ahead.speculated.clone();
            assert_eq!(taken.len(), super::SPECULATED_STEPS);
            assert!(taken.iter().all(|(_, health)| health.is_some()));
            // The moves the search itself takes first, in its order.
            let mut alone = fresh();
            let mut moves = Vec::new();
            let _first = crate::stress::outward_both(
                &mut |price_move: f64| -> Result<f64, ()> {
                    moves.push(price_move);
                    alone.health(price_move, Precision::Fast).ok_or(())
                },
                f64::NAN,
            );
            let speculated_moves: Vec<f64> = taken
                .iter()
                .map(|(bits, _)| f64::from_bits(*bits))
                .collect();
            assert_eq!(speculated_moves, moves[..taken.len()]);
            for &(bits, health) in &taken {
                let price_move = f64::from_bits(bits);
                assert_eq!(
                    health.map(f64::to_bits),
                    fresh()
                        .health(price_move, Precision::Fast)
                        .map(f64::to_bits),
                    "{price_move}"
                );
            }
            let mut finished = fresh();
            finished.speculate(&AtomicBool::new(true));
            assert!(finished.speculated.is_empty());

            let unmoved = crate::stress::search_health(
                &crate::account::build_report(&portfolio, &view, crate::account::Detail::Totals)
                    .unwrap(),
            );
            if unmoved <= 1.0 {
                continue;
            }
            let search = |prepared: MoveHealth<'_>| {
                crate::stress::nearest_crossing_marked(
                    &portfolio,
                    &shocks,
                    Some(params),
                    "BTC",
                    unmoved,
                    Some(Ok(Some(prepared))),
                )
                .unwrap()
                .0
            };
            let mut tampered = fresh();
            tampered.speculate(&AtomicBool::new(false));
            for (_, health) in &mut tampered.speculated {
                *health = Some(0.5);
            }
            let without =
                nearest_crossing(&portfolio, &shocks, Some(params), "BTC", unmoved).unwrap();
            assert_eq!(bits(search(ahead)), bits(without));
            assert_ne!(bits(search(tampered)), bits(without));
            searched += usize::from(without.is_some());
        }
        assert!(searched >= 2, "{searched}");
    }

    /// A report large enough to prepare its search beside its figures (300 options) gives the
    /// nearest move the search alone finds; so does its preparation with every step it may take
    /// ahead taken (whether the figures leave it time to take them depends on the machine).
    #[test]
    fn a_large_accounts_report_finds_the_searchs_own_nearest_move() {
        let venue = venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        let file = desk(|file| {
            let mut positions = Vec::new();
            for strike in (0..150).map(|i| 60_000 + 200 * i) {
                for right in ["C", "P"] {
                    positions.push(serde_json::json!({
                        "instrument": format!("BTC-27MAR26-{strike}-{right}"),
                        // Short the calls, long the puts.
                        "size": if right == "P" { "0.1" } else { "-0.1" },
                        "entry_price": "0.01",
                    }));
                }
            }
            file["positions"] = Value::from(positions);
            file["collateral"] = serde_json::json!({"USDT": "560000"});
        });
        let (portfolio, market) = parsed(&venue, &file);
        assert!(portfolio.positions.len() >= 256);
        let view = MarketView::new(&venue, &market).unwrap();
        let report = crate::account::margin_report(&portfolio, &view).unwrap();
        let health = report.health.unwrap();
        assert!(health > 1.1 && health < 1.3, "{health}");
        let shocks = ShockBase::for_portfolio(&view, &portfolio);
        let alone = nearest_crossing(&portfolio, &shocks, Some(params), "BTC", health)
            .unwrap()
            .unwrap();
        assert!(
            alone.crossed > 0.01 && alone.crossed < 0.1,
            "{}",
            alone.crossed
        );
        assert_eq!(
            report.nearest_moves,
            vec![("BTC".to_owned(), Some(alone.crossed))]
        );
        let report_pending = std::sync::atomic::AtomicBool::new(false);
        let mut prepared = crate::stress::prepare_nearest(
            &portfolio,
            &shocks,
            Some(params),
            &["BTC"],
            &report_pending,
        );
        let Some(Some(Ok(Some(first)))) = prepared.pop() else {
            panic!("no fast path prepared for BTC");
        };
        assert_eq!(first.speculated.len(), super::SPECULATED_STEPS);
        let ahead = crate::stress::nearest_crossing_marked(
            &portfolio,
            &shocks,
            Some(params),
            "BTC",
            health,
            Some(Ok(Some(first))),
        )
        .unwrap()
        .0
        .unwrap();
        assert_eq!(
            (
                ahead.crossed.to_bits(),
                ahead.safe.to_bits(),
                ahead.refinements
            ),
            (
                alone.crossed.to_bits(),
                alone.safe.to_bits(),
                alone.refinements
            )
        );
    }

    /// The desk with its options marked by the market (the search's fast steps then revalue
    /// them at the volatility their marks imply).
    fn marked_desk() -> Value {
        desk(|file| {
            let marks = file["market"]["mark"].as_object_mut().unwrap();
            marks.insert("BTC-27MAR26-110000-C".to_owned(), Value::from("0.03"));
            marks.insert("BTC_USDC-26JUN26-80000-P".to_owned(), Value::from("5000"));
        })
    }

    /// The reverse stress of one underlying takes its steps through the lean path (confirmed
    /// exactly), where the joint moves take the full report at each: per direction, the same
    /// answer as the full path's search, within the search's precision (a first bracket's width
    /// times 2^-40 is below 2e-12 for either direction, at most 2 of them apart).
    #[test]
    fn the_reverse_stress_of_one_underlying_is_the_full_paths_search() {
        let venue = venue();
        for file in accounts() {
            let (portfolio, market) = parsed(&venue, &file);
            let view = MarketView::new(&venue, &market).unwrap();
            let shocks = ShockBase::new(&view);
            let reverse = crate::stress::reverse(&portfolio, &view).unwrap();
            let mut alone = 0;
            for entry in &reverse {
                let [underlying] = entry.underlyings.as_slice() else {
                    continue;
                };
                alone += 1;
                let names = [underlying.clone()];
                let unmoved = health_at(&portfolio, &shocks, &names, 0.0).unwrap();
                let down = search_known(&portfolio, &shocks, &names, -1.0, 1.0, unmoved).unwrap();
                let up = search_known(&portfolio, &shocks, &names, 1.0, 10.0, unmoved).unwrap();
                for (found, full) in [(entry.down, down), (entry.up, up)] {
                    match (found, full) {
                        (Some(found), Some(full)) => assert!(
                            (found - full).abs() <= 4e-12,
                            "{underlying}: {found} against {full}"
                        ),
                        (found, full) => assert_eq!(found, full, "{underlying}"),
                    }
                }
            }
            assert_eq!(alone, 3, "BTC, ETH and SOL each alone");
            assert!(
                reverse.iter().any(|e| e.down.is_some() || e.up.is_some()),
                "precondition: some move liquidates"
            );
        }
    }

    /// The report's own nearest moves (its positions' liquidation levels) answer their
    /// direction of the reverse stress `--json` adds: the reverse given them is the reverse
    /// searched afresh, bit for bit.
    #[test]
    fn the_reports_nearest_moves_answer_their_direction_of_the_reverse_stress() {
        let venue = venue();
        for file in accounts() {
            let (portfolio, market) = parsed(&venue, &file);
            let view = MarketView::new(&venue, &market).unwrap();
            let report = crate::margin_report(&portfolio, &view).unwrap();
            let mut known: Vec<&str> = report
                .nearest_moves
                .iter()
                .map(|(name, _)| name.as_str())
                .collect();
            known.sort_unstable();
            // The underlyings of its cross positions (SOL is held as a coin only).
            assert_eq!(known, ["BTC", "ETH"]);
            assert!(report.nearest_moves.iter().any(|(_, m)| m.is_some()));
            let afresh = crate::stress::reverse(&portfolio, &view).unwrap();
            let reused =
                crate::stress::reverse_known(&portfolio, &view, &report.nearest_moves).unwrap();
            assert_eq!(reused, afresh);
        }
    }

    /// A cross account of long options asks for no margin at any price: its reverse stress is
    /// nil both ways without a search, as the full path's search finds it. Borrowing a coin
    /// makes it liquidatable (3 BTC owed against 2 long calls: a rise takes it there): then the
    /// search runs and finds the full path's crossing.
    #[test]
    fn long_options_that_never_require_margin_never_liquidate() {
        let venue = venue();
        let long_options = |usdc: &str, borrowed: &str| {
            desk(|file| {
                file["mode"] = Value::from("cross");
                file["collateral"] = serde_json::json!({"USDC": usdc, "BTC": borrowed});
                file["positions"] = serde_json::json!([
                    {"instrument": "BTC_USDC-26JUN26-80000-P", "size": "6", "entry_price": "4000"},
                    {"instrument": "BTC-27MAR26-110000-C", "size": "2", "entry_price": "0.02"},
                ]);
            })
        };
        for (usdc, borrowed, liquidates) in [("20000", "0", false), ("400000", "-3", true)] {
            let file = long_options(usdc, borrowed);
            let (portfolio, market) = parsed(&venue, &file);
            let view = MarketView::new(&venue, &market).unwrap();
            let shocks = ShockBase::new(&view);
            let reverse = crate::stress::reverse(&portfolio, &view).unwrap();
            let [entry] = reverse.as_slice() else {
                panic!("one underlying: {reverse:?}");
            };
            let names = [String::from("BTC")];
            let unmoved = health_at(&portfolio, &shocks, &names, 0.0).unwrap();
            let up = search_known(&portfolio, &shocks, &names, 1.0, 10.0, unmoved).unwrap();
            let down = search_known(&portfolio, &shocks, &names, -1.0, 1.0, unmoved).unwrap();
            assert_eq!((entry.down, entry.up), (down, up), "borrowed {borrowed}");
            assert_eq!(up.is_some(), liquidates, "borrowed {borrowed}: {up:?}");
        }
    }

    #[test]
    fn the_nearest_move_is_the_nearer_of_the_two_searches() {
        let venue = venue();
        let params = venue.portfolio_margin.as_ref();
        for file in accounts() {
            let (portfolio, market) = parsed(&venue, &file);
            let view = MarketView::new(&venue, &market).unwrap();
            let shocks = ShockBase::new(&view);
            for underlying in ["BTC", "ETH", "SOL"] {
                let names = [underlying.to_owned()];
                let unmoved = health_at(&portfolio, &shocks, &names, 0.0).unwrap();
                assert!(unmoved > 1.0, "{underlying}: {unmoved}");
                let down = search_known(&portfolio, &shocks, &names, -1.0, 1.0, unmoved).unwrap();
                let up = search_known(&portfolio, &shocks, &names, 1.0, 10.0, unmoved).unwrap();
                let expected = match (down, up) {
                    (Some(d), Some(u)) => Some(if d.abs() <= u { d } else { u }),
                    (Some(d), None) => Some(d),
                    (None, up) => up,
                };
                let nearest =
                    nearest_crossing(&portfolio, &shocks, params, underlying, unmoved).unwrap();
                // The steps run fast (within the solver's error of the full path), so the
                // answers are not the same bits: both lie within a tolerance beyond the
                // crossing, and a confirmation may step one tolerance further.
                match (nearest, expected) {
                    (Some(nearest), Some(expected)) => assert!(
                        (nearest.crossed - expected).abs()
                            <= 2.0 * nearest.tolerance + 4.0 * f64::EPSILON * expected.abs(),
                        "{underlying}: {nearest:?} against {expected}"
                    ),
                    (nearest, expected) => {
                        assert_eq!(nearest.map(|c| c.crossed), expected, "{underlying}");
                    }
                }
            }
        }
    }
}
