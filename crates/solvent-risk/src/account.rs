//! The standard (cross + isolated) margin report of one account.
//!
//! Every figure is computed exactly in the instrument's settlement currency, converted to the
//! report's asset at index prices, and rounded once, toward the venue: equity parts down,
//! requirements up. The parts are rounded first and the totals are their sums, so the waterfall
//! adds up to the cent and attribution sums exactly to the account figure.

use compact_str::CompactString;
use rayon::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use solvent_core::instrument::Terms;
use solvent_core::money::{Amount, MAX_AMOUNT, MAX_PRICE, PositionSide, Price};
use solvent_core::portfolio::{MarginMode, Portfolio, Position};
use solvent_core::portfolio_margin::PortfolioMarginParams;
use solvent_core::rounding;
use solvent_core::venue::{Asset, LiquidationMaintenance, Venue, WithdrawalRule};

use crate::collateral;
use crate::error::RiskError;
use crate::liquidation;
use crate::report::{
    Component, CurrencyMargin, LiquidationLevel, MarginReport, PositionReport, WithdrawLimit,
};
use crate::standard::{self, Basis, Exposure, Requirement};
use crate::valuation::{Mark, MarkSource, MarketView};

/// One position evaluated at the snapshot, before rounding.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// The position.
    pub position: &'a Position,
    /// Its mark.
    pub mark: Mark,
    /// Underlying index in USD.
    pub underlying_usd: Decimal,
    /// Open interest in USD, where the market gives it.
    pub open_interest_usd: Option<Decimal>,
    /// The settlement asset.
    pub settlement: &'a Asset,
    /// Whether the instrument expired at or before the snapshot.
    pub expired: bool,
}

impl Line<'_> {
    fn exposure_at(&self, mark: Decimal) -> Exposure<'_> {
        Exposure {
            instrument: &self.position.instrument,
            size: self.position.size.value(),
            mark,
            underlying_usd: self.underlying_usd,
            leverage: self.position.leverage,
            open_interest_usd: self.open_interest_usd,
            expired: self.expired,
        }
    }

    /// Prices between which the position's figures stay bounded (see
    /// [`standard::bounded_exposure`]): the liquidation search does not look beyond them.
    fn price_bounds(&self) -> (Decimal, Decimal) {
        let instrument = &self.position.instrument;
        let size = self.position.size.value().abs();
        let lowest = Decimal::new(1, 12);
        match (instrument.style, &instrument.terms) {
            (solvent_core::instrument::Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => {
                let floor = size
                    .checked_div(MAX_AMOUNT)
                    .unwrap_or(MAX_PRICE)
                    .max(lowest);
                (floor, MAX_PRICE)
            }
            _ => {
                let units = size * instrument.contract_size;
                let ceiling = if units.is_zero() {
                    MAX_PRICE
                } else {
                    (MAX_AMOUNT / units).min(MAX_PRICE)
                };
                (lowest, ceiling)
            }
        }
    }

    /// Requirement in the settlement currency at `mark`.
    ///
    /// # Errors
    /// As [`standard::requirement`].
    pub fn requirement_at(&self, mark: Decimal) -> Result<Requirement, RiskError> {
        standard::requirement(&self.exposure_at(mark))
    }

    /// Equity contribution in the settlement currency at `mark`.
    #[must_use]
    pub fn equity_at(&self, mark: Decimal) -> Decimal {
        standard::equity_contribution(
            &self.position.instrument,
            self.position.size.value(),
            self.position.entry_price.value(),
            mark,
        )
    }

    /// The fee to close the position at `mark` in the settlement currency, at `rate` of its
    /// value there (the venue's `liquidation_fee_rate`). Options carry none: OKX charges them
    /// on the premium under its own cap, which this rate does not describe.
    fn close_fee_at(&self, rate: Decimal, mark: Decimal) -> Decimal {
        if rate.is_zero() || self.is_option() {
            return Decimal::ZERO;
        }
        rate * standard::notional(&self.position.instrument, self.position.size.value(), mark)
    }

    fn is_option(&self) -> bool {
        matches!(self.position.instrument.terms, Terms::Option { .. })
    }
}

/// Evaluates every position of `portfolio` at the snapshot.
///
/// # Errors
/// [`RiskError`] when the market lacks a price a position needs.
pub fn lines<'a>(
    portfolio: &'a Portfolio,
    view: &MarketView<'a>,
) -> Result<Vec<Line<'a>>, RiskError> {
    let venue = view.venue();
    portfolio
        .positions
        .iter()
        .map(|position| {
            let instrument = &position.instrument;
            let settlement = venue.asset(&instrument.settlement).map_err(|problem| RiskError::Unsupported {
                path: format!("instruments.{}.settlement", instrument.name),
                problem,
            })?;
            let mark = view.mark(instrument)?;
            let underlying_usd = view.index_for(&instrument.underlying, || format!("margining {}", instrument.name))?;
            let prices = [mark.price, position.entry_price.value(), underlying_usd];
            let priced = if matches!(instrument.terms, Terms::Option { .. }) { &prices[..] } else { &prices[..2] };
            if standard::bounded_exposure(instrument, position.size.value(), priced).is_none() {
                // Name the file that holds the culprit: the position is within bounds at its entry
                // price, so the market's mark (or index) is what takes it out of range.
                let at_entry = [position.entry_price.value()];
                if standard::bounded_exposure(instrument, position.size.value(), &at_entry).is_some() {
                    let path = match mark.source {
                        MarkSource::Given => format!("mark.{}", instrument.name),
                        MarkSource::Index | MarkSource::Model { .. } => format!("index.{}", instrument.underlying),
                    };
                    return Err(RiskError::Market {
                        path,
                        problem: format!(
                            "{}'s value at this price exceeds 1e15 (size x contract size x price); Solvent refuses figures it cannot compute exactly",
                            instrument.name
                        ),
                    });
                }
                return Err(RiskError::Unsupported {
                    path: format!("positions: {}", instrument.name),
                    problem: "the position's value exceeds 1e15 (size x contract size x price); Solvent refuses figures it cannot compute exactly"
                        .to_owned(),
                });
            }
            Ok(Line {
                position,
                mark,
                underlying_usd,
                open_interest_usd: view.market().open_interest.get(&instrument.name).map(|oi| oi.value()),
                settlement,
                expired: instrument.terms.expiry().is_some_and(|expiry| expiry <= view.now()),
            })
        })
        .collect()
}

/// A bracket as the venues' tables write it: `position value 1,000,000-5,000,000 USDT`,
/// `position value over 5,000,000 USDT` for the last; `3000-6000 contracts` for a rule counting
/// contracts (OKX).
#[must_use]
pub fn bracket_text(
    floor: Decimal,
    up_to: Option<Decimal>,
    unit: solvent_core::venue::TierUnit,
    asset: &str,
) -> String {
    match (unit, up_to) {
        (solvent_core::venue::TierUnit::Value, Some(up_to)) => {
            format!("position value {}-{} {asset}", show(floor), show(up_to))
        }
        (solvent_core::venue::TierUnit::Value, None) => {
            format!("position value over {} {asset}", show(floor))
        }
        (solvent_core::venue::TierUnit::Contracts, Some(up_to)) => {
            format!("{}-{} contracts", show(floor), show(up_to))
        }
        (solvent_core::venue::TierUnit::Contracts, None) => {
            format!("over {} contracts", show(floor))
        }
    }
}

/// Formats a decimal for an explanation: at most eight decimals, no trailing zeros.
fn show(value: Decimal) -> String {
    value.round_dp(8).normalize().to_string()
}

fn describe(requirement: &Requirement, value: Decimal, settlement: &str) -> (String, String) {
    let value_text = format!("{} {settlement}", show(value));
    let amount = |figure: Decimal| format!("{} {settlement}", show(figure));
    match &requirement.basis {
        Basis::Tiered {
            tier,
            floor,
            up_to,
            maintenance_rate,
            deduction,
            leverage,
            exceeds_limit,
            unit,
            ..
        } => {
            let limit = if *exceeds_limit {
                " (beyond the largest tier)"
            } else {
                ""
            };
            let maintenance = match unit {
                solvent_core::venue::TierUnit::Value => format!(
                    "tier {tier} ({} to {}){limit}: value {value_text} x mmr {} - deduction {} = {}",
                    show(*floor),
                    up_to.map_or_else(|| "no limit".to_owned(), show),
                    show(*maintenance_rate),
                    show(*deduction),
                    amount(requirement.maintenance)
                ),
                // OKX: the tier's rate on the whole position, the tier by contracts.
                solvent_core::venue::TierUnit::Contracts => format!(
                    "tier {tier} ({}){limit}: value {value_text} x mmr {} = {}",
                    bracket_text(*floor, *up_to, *unit, settlement),
                    show(*maintenance_rate),
                    amount(requirement.maintenance)
                ),
            };
            (
                format!(
                    "value {value_text} / leverage {} = {}",
                    show(*leverage),
                    amount(requirement.initial)
                ),
                maintenance,
            )
        }
        Basis::Rates {
            initial_rate,
            maintenance_rate,
        } => (
            format!(
                "value {value_text} x rate {} = {}",
                show(*initial_rate),
                amount(requirement.initial)
            ),
            format!(
                "value {value_text} x rate {} = {}",
                show(*maintenance_rate),
                amount(requirement.maintenance)
            ),
        ),
        Basis::ShortOption {
            out_of_the_money,
            initial_rate,
        } => (
            format!(
                "short option, OTM {} USD: (max(base - OTM/S, floor) = {} x underlying + mark) x contracts = {}",
                show(*out_of_the_money),
                show(*initial_rate),
                amount(requirement.initial)
            ),
            format!(
                "short option: (maintenance rate x underlying + mark) x contracts = {}",
                amount(requirement.maintenance)
            ),
        ),
        Basis::LongOption => (
            "long option: premium paid, no further margin".to_owned(),
            "long option: premium paid, no further margin".to_owned(),
        ),
        Basis::Expired => (
            "expired: awaiting settlement, no margin".to_owned(),
            "expired: awaiting settlement, no margin".to_owned(),
        ),
        Basis::PortfolioShare {
            underlying,
            worst_scenario,
        } => (
            format!(
                "portfolio margin: share of {underlying} scan (worst: {worst_scenario}) x IM factor"
            ),
            format!("portfolio margin: share of {underlying} scan (worst: {worst_scenario})"),
        ),
    }
}

/// The margin report of `portfolio` at the snapshot seen through `view` (standard margin, cross
/// pool plus isolated positions).
///
/// # Errors
/// [`RiskError`] when a price is missing, a figure cannot be represented, or the account asks
/// for a mode this version does not compute.
pub fn margin_report(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
) -> Result<MarginReport, RiskError> {
    if portfolio.mode != MarginMode::Portfolio {
        return build_report(portfolio, view, Detail::Full);
    }
    // The liquidation-move search reads the report's health; what it prepares does not, and a
    // large account's preparation (its positions' lines, a scenario book listing them, the
    // moved book's rows) runs beside the report on another core.
    let shock_base = std::sync::OnceLock::new();
    let base =
        || shock_base.get_or_init(|| crate::stress::ShockBase::for_portfolio(view, portfolio));
    let underlyings = searched_underlyings(portfolio);
    let params = view.venue().portfolio_margin.as_ref();
    let report_done = std::sync::atomic::AtomicBool::new(false);
    let (report, prepared) = if portfolio.positions.len() >= PREPARED_ALONGSIDE {
        rayon::join(
            || {
                let report = build_report(portfolio, view, Detail::Full);
                report_done.store(true, std::sync::atomic::Ordering::Release);
                report
            },
            || {
                crate::stress::prepare_nearest(
                    portfolio,
                    base(),
                    params,
                    &underlyings,
                    &report_done,
                )
            },
        )
    } else {
        (build_report(portfolio, view, Detail::Full), Vec::new())
    };
    let mut report = report?;
    portfolio_liquidation_prices(portfolio, view, base(), &underlyings, prepared, &mut report)?;
    Ok(report)
}

/// Positions from which a portfolio-mode report prepares its liquidation-move searches beside
/// its figures ([`margin_report`]): below, the preparation takes microseconds, less than
/// handing it to another thread.
const PREPARED_ALONGSIDE: usize = 256;

/// The underlyings a portfolio-mode report searches a liquidating move of, in order of first
/// appearance: those of its cross positions.
fn searched_underlyings(portfolio: &Portfolio) -> Vec<&str> {
    let mut underlyings: Vec<&str> = Vec::new();
    for position in &portfolio.positions {
        let underlying = position.instrument.underlying.as_str();
        if position.isolated_margin.is_none() && !underlyings.contains(&underlying) {
            underlyings.push(underlying);
        }
    }
    underlyings
}

/// How much of the report to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Everything, liquidation prices included.
    Full,
    /// The figures only (what stress tests recompute many times).
    Figures,
    /// The account's figures (equity, requirements, health) without the attribution of a
    /// portfolio-margin requirement to its positions: what a reverse-stress search, which reads
    /// only the account's health, recomputes a hundred times.
    Totals,
}

/// Under portfolio margin a cross position is liquidated by its underlying's move: the nearest
/// move of the underlying (alone) that takes health to 1, applied to the position's mark.
fn portfolio_liquidation_prices<'a>(
    portfolio: &'a Portfolio,
    view: &MarketView<'_>,
    shock_base: &'a crate::stress::ShockBase<'a>,
    searched: &[&'a str],
    prepared: Vec<Option<crate::stress::Prepared<'a>>>,
    report: &mut MarginReport,
) -> Result<(), RiskError> {
    // Per underlying, in order of first appearance: the nearest liquidating move and the market
    // after it. Every position on the underlying reads its moved mark from that one market: a
    // market shocked and viewed anew for each position made the report quadratic in the
    // positions when the market gives a mark for each (each shock reprices every mark).
    let mut underlyings: Vec<(&str, Option<f64>)> = Vec::with_capacity(searched.len());
    // Per underlying: its marks as the search's exact check repriced them at the answer.
    let mut answered_marks: Vec<Option<Vec<rust_decimal::Decimal>>> = Vec::new();
    let unmoved = crate::stress::search_health(report);
    let mut prepared = prepared.into_iter();
    for &underlying in searched {
        let (crossing, marks) = crate::stress::nearest_crossing_marked(
            portfolio,
            shock_base,
            view.venue().portfolio_margin.as_ref(),
            underlying,
            unmoved,
            prepared.next().flatten(),
        )?;
        underlyings.push((underlying, crossing.map(|crossing| crossing.crossed)));
        answered_marks.push(marks);
    }
    report.nearest_moves = underlyings
        .iter()
        .map(|(underlying, nearest)| ((*underlying).to_owned(), *nearest))
        .collect();
    let moved_markets = underlyings
        .iter()
        .zip(&answered_marks)
        .map(|((underlying, nearest), marks)| {
            nearest
                .map(|price_move| {
                    // The position's own mark in the market where its underlying has moved: a
                    // perpetual's moves with it, an option's is repriced.
                    shock_base.market_moved(underlying, price_move, marks.as_deref())
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, RiskError>>()?;
    let moved_views = moved_markets
        .iter()
        .map(|market| {
            market
                .as_ref()
                .map(|market| {
                    MarketView::new(view.venue(), market)
                        .map(|moved| moved.with_history(view.history()))
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, RiskError>>()?;
    // Per underlying: its moved index and that move in daily standard deviations.
    let mut index_levels: Vec<Option<(Price, Option<f64>)>> = vec![None; underlyings.len()];
    for (position, line) in portfolio.positions.iter().zip(report.positions.iter_mut()) {
        if position.isolated_margin.is_some() {
            continue;
        }
        let underlying = &position.instrument.underlying;
        let Some(slot) = underlyings
            .iter()
            .position(|(u, _)| *u == underlying.as_str())
        else {
            continue;
        };
        let (Some((_, Some(price_move))), Some(Some(moved_view))) =
            (underlyings.get(slot), moved_views.get(slot))
        else {
            continue;
        };
        let price_move = *price_move;
        if line.liquidation_price_of == LiquidationLevel::Index {
            // An option's level is its underlying's index after the liquidating move: the
            // same for every option on it, worked out at the first.
            let level = match index_levels.get_mut(slot) {
                Some(Some(level)) => *level,
                Some(entry) => {
                    let index = view.index_for(underlying, || {
                        format!("the liquidation level of {}", position.instrument.name)
                    })?;
                    let level = (
                        crate::stress::moved_index(Price(index), underlying, price_move)?,
                        view.daily_standard_deviation(underlying)
                            .map(|daily| (1.0 + price_move).ln().abs() / daily),
                    );
                    *entry = Some(level);
                    level
                }
                None => continue,
            };
            let (moved, distance_sd) = level;
            line.liquidation_price = Some(moved);
            line.distance_to_liquidation_pct = Some(price_move.abs() * 100.0);
            line.distance_to_liquidation_sd = distance_sd;
            continue;
        }
        let moved_mark = moved_view.mark(&position.instrument)?.price;
        // A fall hurts the account as it hurts a long: round as for one.
        let side = if moved_mark < line.mark_price.value() {
            PositionSide::Long
        } else {
            PositionSide::Short
        };
        line.liquidation_price =
            Price::new_checked(liquidation::conservative(moved_mark, side)).ok();
        line.distance_to_liquidation_pct = Some(price_move.abs() * 100.0);
        line.distance_to_liquidation_sd = view
            .daily_standard_deviation(underlying)
            .map(|daily| (1.0 + price_move).ln().abs() / daily);
    }
    Ok(())
}

/// The report at the chosen level of detail, in four steps: the collateral, the positions, the
/// requirement, and (in a full report) the liquidation prices.
///
/// # Errors
/// As [`margin_report`].
pub fn build_report(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    detail: Detail,
) -> Result<MarginReport, RiskError> {
    let venue = view.venue();
    let portfolio_params = portfolio_params(portfolio, venue)?;
    let target = ReportAsset::new(portfolio, view)?;
    // A full report has at least a component per balance and per position: sized once rather
    // than doubled into fresh memory a dozen times for a large account (the others have none).
    let mut components = match detail {
        Detail::Full => Vec::with_capacity(portfolio.balances.len() + portfolio.positions.len()),
        Detail::Figures | Detail::Totals => Vec::new(),
    };
    let mut warnings = Vec::new();
    let collateral = collateral_step(portfolio, view, &target, detail, &mut components)?;
    let lines = lines(portfolio, view)?;
    let mut positions = positions_step(
        &lines,
        view,
        &target,
        &collateral,
        portfolio_params.is_some(),
        detail,
        &mut components,
        &mut warnings,
    )?;
    let equity = collateral.value + positions.unrealized_pnl + positions.option_value;
    requirement_step(
        portfolio,
        view,
        portfolio_params,
        equity,
        &target,
        detail,
        &lines,
        &mut positions,
        &mut components,
        &mut warnings,
    )?;
    // Liquidation prices: none in a figures-only report (whose pool figures are then not
    // summed: they could fail only where the requirements above already would have).
    if detail == Detail::Full {
        liquidation_step(
            &lines,
            view,
            &target,
            &collateral,
            portfolio_params.is_some(),
            &mut positions.reports,
            &mut warnings,
        )?;
    }

    let Positions {
        reports,
        unrealized_pnl,
        option_value,
        cross_initial,
        cross_maintenance,
        currencies,
        scenario_sides,
        cross_upnl_by_settlement,
    } = positions;
    let (mut health, mut state) =
        crate::report::standing(equity, cross_maintenance, &venue.thresholds);
    // Segregated margin: one currency's surplus does not cover another's deficit, so the account
    // stands where its weakest currency stands.
    for currency in &currencies {
        state = state.max(currency.state);
        if let Some(own) = currency.health {
            health = Some(health.map_or(own, |h| h.min(own)));
        }
    }
    let available = equity - cross_initial;
    // The cash-like collateral a withdrawal may take: all of it, or, where the venue keeps the
    // cross positions' maintenance margin in the wallet (Binance), what is above it, or, where
    // it keeps each coin's positions' unrealised loss in that coin (Bybit), what is beyond it.
    let mut wallet_less_unrealised_loss = Vec::new();
    let (cash_bound, cash_limit, wallet_above_maintenance) = match venue.withdrawal {
        WithdrawalRule::EquityAboveInitialMargin => (
            collateral.cash_like,
            WithdrawLimit::CashLikeCollateral,
            None,
        ),
        WithdrawalRule::WalletAboveMaintenanceMargin => {
            let above = collateral.cash_like - cross_maintenance;
            (
                above,
                WithdrawLimit::WalletMaintenanceMargin,
                Some(Amount(above)),
            )
        }
        WithdrawalRule::WalletLessUnrealisedLoss => {
            // Each coin keeps the unrealised loss of the cross positions settled in it (Bybit:
            // `asset wallet balance + min(unrealised pnl, 0)`); a coin whose wallet does not
            // cover its loss pays out nothing, and takes nothing from another coin's payout.
            let mut payable = Decimal::ZERO;
            for (coin, wallet, cash) in collateral.wallets {
                let loss = cross_upnl_by_settlement
                    .iter()
                    .find(|(settled, _)| *settled == coin)
                    .map_or(Decimal::ZERO, |(_, upnl)| (*upnl).min(Decimal::ZERO));
                let left = wallet + loss;
                if cash {
                    payable += left.max(Decimal::ZERO);
                }
                wallet_less_unrealised_loss.push((coin, Amount(left)));
            }
            (payable, WithdrawLimit::WalletUnrealisedLoss, None)
        }
    };
    let (bound, mut withdrawable_limit) = if cash_bound <= available {
        (cash_bound, cash_limit)
    } else {
        (available, WithdrawLimit::InitialMargin)
    };
    let mut withdrawable = bound.max(Decimal::ZERO);
    if !currencies.is_empty() {
        // Segregated margin: a cash-like currency pays out only what its own equity leaves above
        // its own initial margin, whatever another currency's surplus.
        let mut own = Decimal::ZERO;
        for currency in &currencies {
            let cash = portfolio.balances.iter().any(|b| {
                b.asset.symbol == currency.currency
                    && (b.asset.cash_like || b.asset.symbol == target.asset.symbol)
            });
            if cash && currency.available.value() > Decimal::ZERO {
                let usd = currency
                    .available
                    .value()
                    .checked_mul(currency.price_usd.value())
                    .ok_or_else(|| RiskError::Overflow {
                        what: format!("{} {} in USD", currency.available, currency.currency),
                    })?;
                own += rounding::credit(target.usd_in_report(usd)?, target.decimals);
            }
        }
        if own < withdrawable {
            withdrawable = own;
            withdrawable_limit = WithdrawLimit::CurrencyInitialMargin;
        }
    }
    Ok(MarginReport {
        account: portfolio.account.clone(),
        mode: portfolio.mode,
        settlement_asset: target.asset.symbol.clone(),
        timestamp: view.now(),
        equity: Amount(equity),
        collateral_value: Amount(collateral.value),
        unrealized_pnl: Amount(unrealized_pnl),
        option_value: Amount(option_value),
        initial_margin: Amount(cross_initial),
        maintenance_margin: Amount(cross_maintenance),
        available: Amount(available),
        withdrawable: Amount(withdrawable),
        withdrawable_limit,
        wallet_above_maintenance,
        wallet_less_unrealised_loss,
        health,
        state,
        currencies,
        scenario_sides,
        accrued_interest: Amount(collateral.accrued_interest),
        components,
        positions: reports,
        warnings,
        nearest_moves: Vec::new(),
    })
}

/// The venue's portfolio-margin parameters for a portfolio-mode account (`None` in cross mode).
///
/// # Errors
/// [`RiskError::Unsupported`] when the account asks for portfolio margin and the venue offers
/// none.
fn portfolio_params<'v>(
    portfolio: &Portfolio,
    venue: &'v Venue,
) -> Result<Option<&'v PortfolioMarginParams>, RiskError> {
    match portfolio.mode {
        MarginMode::Cross => Ok(None),
        MarginMode::Portfolio => {
            venue
                .portfolio_margin
                .as_ref()
                .map(Some)
                .ok_or_else(|| RiskError::Unsupported {
                    path: "mode".to_owned(),
                    problem: format!(
                        "the venue {} offers no portfolio margin (no [portfolio_margin] table)",
                        venue.name
                    ),
                })
        }
    }
}

/// The asset the report is expressed in, with its precision and USD price.
struct ReportAsset<'a> {
    asset: &'a Asset,
    decimals: u32,
    usd: Decimal,
}

impl<'a> ReportAsset<'a> {
    fn new(portfolio: &'a Portfolio, view: &MarketView<'_>) -> Result<Self, RiskError> {
        Self::of(&portfolio.settlement_asset, view)
    }

    /// The report currency `asset`, priced in `view`.
    fn of(asset: &'a Asset, view: &MarketView<'_>) -> Result<Self, RiskError> {
        Ok(Self {
            asset,
            decimals: asset.precision,
            usd: view.asset_usd(asset)?,
        })
    }

    /// A USD figure in the report currency; checked, as a currency priced near the smallest
    /// accepted price multiplies every figure by up to 10^12.
    fn usd_in_report(&self, amount_usd: Decimal) -> Result<Decimal, RiskError> {
        amount_usd
            .checked_div(self.usd)
            .ok_or_else(|| RiskError::Overflow {
                what: format!("{amount_usd} USD in {}", self.asset.symbol),
            })
    }

    /// What a balance valued as `valued` adds to the collateral value: its value after the
    /// haircut tiers in the report currency, rounded down (a credit).
    fn counted(&self, valued: &collateral::CollateralValue) -> Result<Decimal, RiskError> {
        Ok(rounding::credit(
            self.usd_in_report(valued.collateral_value_usd)?,
            self.decimals,
        ))
    }
}

/// One balance's term of a cross pool's collateral value, as [`build_report`] counts it:
/// `amount` of `asset` at its index through the venue's haircut tiers, in `report_asset`,
/// rounded down. The report's `collateral_value` is the sum of these terms over the pool's
/// balances; a caller that changes one balance and nothing else moves the report's equity by
/// the change of that balance's term (the engine's liquidation steps, whose fee is such a
/// change, use it to follow the account's equity between reports).
///
/// # Errors
/// [`RiskError`] when an asset has no price or the figure leaves the report currency's range.
pub fn balance_collateral_value(
    view: &MarketView<'_>,
    report_asset: &Asset,
    asset: &Asset,
    amount: Decimal,
) -> Result<Decimal, RiskError> {
    let target = ReportAsset::of(report_asset, view)?;
    let schedule = view.venue().collateral.get(asset.symbol.as_str());
    target.counted(&collateral::value(schedule, amount, view.asset_usd(asset)?))
}

/// The cross pool's collateral, in the report asset, each part rounded toward the venue.
struct Collateral {
    /// Collateral value after haircut tiers (credits rounded down).
    value: Decimal,
    /// The part a withdrawal can pay out (cash-like assets and the report's own currency).
    cash_like: Decimal,
    /// Initial and maintenance margin of borrowed balances (rounded up).
    borrow_initial: Decimal,
    borrow_maintenance: Decimal,
    /// Interest owed on loans, counted in their balances (rounded up).
    accrued_interest: Decimal,
    /// Under `[venue] withdrawal = "wallet_less_unrealised_loss"` only, each balance's coin and
    /// what its wallet holds in the report asset: its cash-like collateral, or, for a coin that
    /// is not cash, its market value (rounded down), and whether it is cash (counted in
    /// `cash_like`); empty under the other rules.
    wallets: Vec<(CompactString, Decimal, bool)>,
}

/// Step 1, the collateral: every balance valued at its index through the venue's haircut tiers
/// (a borrowed balance at full value, with its own margin), explained in `components` in a full
/// report.
///
/// # Errors
/// [`RiskError`] when an asset has no price or a figure leaves the report currency's range.
fn collateral_step(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    target: &ReportAsset<'_>,
    detail: Detail,
    components: &mut Vec<Component>,
) -> Result<Collateral, RiskError> {
    let venue = view.venue();
    let report_asset = target.asset;
    let decimals = target.decimals;
    let to_report = |amount_usd: Decimal| target.usd_in_report(amount_usd);
    let mut collateral_value = Decimal::ZERO;
    let mut cash_like = Decimal::ZERO;
    let mut borrow_initial = Decimal::ZERO;
    let mut borrow_maintenance = Decimal::ZERO;
    let per_coin = venue.withdrawal == WithdrawalRule::WalletLessUnrealisedLoss;
    let mut wallets = Vec::new();
    for balance in &portfolio.balances {
        let asset = &balance.asset;
        let usd_price = view.asset_usd(asset)?;
        let schedule = venue.collateral.get(asset.symbol.as_str());
        let valued = collateral::value(schedule, balance.amount.value(), usd_price);
        let amount = target.counted(&valued)?;
        collateral_value += amount;
        // The report's own currency is what a withdrawal pays out in, so it counts as cash.
        let cash =
            (asset.cash_like || asset.symbol == report_asset.symbol) && amount > Decimal::ZERO;
        if cash {
            cash_like += amount;
        }
        if per_coin {
            // A coin that is cash pays out what `cash_like` counts of it; another coin's wallet
            // is its market value (only its sign decides whether it may leave).
            let wallet = if cash {
                amount
            } else {
                rounding::credit(to_report(valued.market_value_usd)?, decimals)
            };
            wallets.push((asset.symbol.clone(), wallet, cash));
        }
        if detail == Detail::Full {
            let haircut = if schedule.is_none() {
                " (not accepted as collateral by the venue)".to_owned()
            } else if valued.collateral_value_usd == valued.market_value_usd {
                String::new()
            } else {
                format!(
                    " after haircut tiers = {} USD",
                    show(valued.collateral_value_usd)
                )
            };
            components.push(Component {
                name: format!("collateral:{}", asset.symbol),
                amount: Amount(amount),
                detail: format!(
                    "{} {} x index {} = {} USD{haircut}",
                    show(balance.amount.value()),
                    asset.symbol,
                    show(usd_price),
                    show(valued.market_value_usd)
                ),
            });
        }
        if valued.borrow_maintenance_usd > Decimal::ZERO
            || valued.borrow_initial_usd > Decimal::ZERO
        {
            let initial = rounding::requirement(to_report(valued.borrow_initial_usd)?, decimals);
            let maintenance =
                rounding::requirement(to_report(valued.borrow_maintenance_usd)?, decimals);
            borrow_initial += initial;
            borrow_maintenance += maintenance;
            if detail == Detail::Full {
                components.push(Component {
                    name: format!("borrow_initial_margin:{}", asset.symbol),
                    amount: Amount(initial),
                    detail: format!("loan {} USD x initial rate", show(-valued.market_value_usd)),
                });
            }
            if detail == Detail::Full {
                components.push(Component {
                    name: format!("borrow_maintenance_margin:{}", asset.symbol),
                    amount: Amount(maintenance),
                    detail: format!(
                        "loan {} USD x maintenance rate",
                        show(-valued.market_value_usd)
                    ),
                });
            }
        }
    }
    let accrued_interest = interest_step(portfolio, view, target, detail, components)?;
    Ok(Collateral {
        value: collateral_value,
        cash_like,
        borrow_initial,
        borrow_maintenance,
        accrued_interest,
        wallets,
    })
}

/// The interest owed on loans, in the report asset (rounded up: a debt), each loan's interest a
/// component in a full report. The interest is already inside the loan's balance (the portfolio
/// adds it), so the loan's value and its borrow margins above carry it: this step names it.
///
/// # Errors
/// [`RiskError`] when an asset has no price or a figure leaves the report currency's range.
fn interest_step(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    target: &ReportAsset<'_>,
    detail: Detail,
    components: &mut Vec<Component>,
) -> Result<Decimal, RiskError> {
    let mut total = Decimal::ZERO;
    for owed in &portfolio.accrued_interest {
        let Some(balance) = portfolio
            .balances
            .iter()
            .find(|b| b.asset.symbol == owed.asset)
        else {
            continue;
        };
        let usd_price = view.asset_usd(&balance.asset)?;
        let interest_usd = owed
            .interest
            .value()
            .checked_mul(usd_price)
            .ok_or_else(|| RiskError::Overflow {
                what: format!(
                    "{} {} of interest in USD",
                    owed.interest.value(),
                    owed.asset
                ),
            })?;
        let amount = rounding::requirement(target.usd_in_report(interest_usd)?, target.decimals);
        total += amount;
        if detail == Detail::Full {
            let how = owed.hours.map_or_else(String::new, |hours| {
                format!(" ({hours} h at the venue's rate, rounded up)")
            });
            components.push(Component {
                name: format!("borrow_interest:{}", owed.asset),
                amount: Amount(amount),
                detail: format!(
                    "accrued interest {} {}{how} on a principal of {} {}, inside the loan of {} {} (its value and borrow margins)",
                    show(owed.interest.value()),
                    owed.asset,
                    show(owed.principal.value()),
                    owed.asset,
                    show(-balance.amount.value()),
                    owed.asset,
                ),
            });
        }
    }
    Ok(total)
}

/// The positions' part of the report: each position's figures, and the pool's sums.
struct Positions {
    reports: Vec<PositionReport>,
    unrealized_pnl: Decimal,
    option_value: Decimal,
    /// The pool's requirement so far: borrowing, then each cross position's (standard margin;
    /// portfolio margin adds its own in the requirement step).
    cross_initial: Decimal,
    cross_maintenance: Decimal,
    /// Under segregated portfolio margin, each settlement currency's figures (the requirement
    /// step fills them).
    currencies: Vec<CurrencyMargin>,
    /// Under cross-collateral portfolio margin, each scanned underlying's worst scenario on
    /// either side (the requirement step fills them).
    scenario_sides: Vec<crate::portfolio_margin::ScenarioSides>,
    /// Under `[venue] withdrawal = "wallet_less_unrealised_loss"` only, the unrealised P&L of
    /// the cross perpetuals and futures by settlement coin, in the report asset (each the same
    /// rounded contribution `unrealized_pnl` sums); empty under the other rules.
    cross_upnl_by_settlement: Vec<(CompactString, Decimal)>,
}

/// Step 2, the positions: each one valued at its mark and margined by its own rule (its
/// requirement counts toward the pool in cross mode; under portfolio margin it is replaced by
/// the position's share in the requirement step), isolated positions with their own equity and
/// health. Explained in `components` in a full report; warnings for positions beyond the largest
/// risk-limit tier and expired instruments.
///
/// # Errors
/// [`RiskError`] when a requirement cannot be computed or converted, or an option asks for
/// isolated margin.
#[allow(
    clippy::too_many_arguments,
    reason = "the step's inputs and the report's three accumulators, each named"
)]
fn positions_step(
    lines: &[Line<'_>],
    view: &MarketView<'_>,
    target: &ReportAsset<'_>,
    collateral: &Collateral,
    portfolio_margin: bool,
    detail: Detail,
    components: &mut Vec<Component>,
    warnings: &mut Vec<String>,
) -> Result<Positions, RiskError> {
    let per_coin = view.venue().withdrawal == WithdrawalRule::WalletLessUnrealisedLoss;
    let figures_of = |line: &Line<'_>| line_figures(line, view, target, portfolio_margin, detail);
    // Each line's figures are its own: a large account's are computed on every core, then
    // summed in the account's order (the sums, components and warnings are those of one pass).
    let figures: Vec<Result<LineFigures, RiskError>> = if lines.len() >= PARALLEL_LINES {
        lines
            .par_iter()
            .with_min_len(PARALLEL_LINES / 4)
            .map(figures_of)
            .collect()
    } else {
        lines.iter().map(figures_of).collect()
    };
    let mut unrealized_pnl = Decimal::ZERO;
    let mut option_value = Decimal::ZERO;
    let mut cross_initial = collateral.borrow_initial;
    let mut cross_maintenance = collateral.borrow_maintenance;
    let mut cross_upnl_by_settlement: Vec<(CompactString, Decimal)> = Vec::new();
    let mut position_reports = Vec::with_capacity(lines.len());
    for (line, figures) in lines.iter().zip(figures) {
        let LineFigures {
            report,
            cross,
            warnings: line_warnings,
            components: line_components,
        } = figures?;
        warnings.extend(line_warnings);
        components.extend(line_components);
        if let Some(cross) = cross {
            if line.is_option() {
                option_value += cross.contribution;
            } else {
                unrealized_pnl += cross.contribution;
                if per_coin {
                    let settle = &line.settlement.symbol;
                    match cross_upnl_by_settlement
                        .iter_mut()
                        .find(|(coin, _)| coin == settle)
                    {
                        Some((_, upnl)) => *upnl += cross.contribution,
                        None => cross_upnl_by_settlement.push((settle.clone(), cross.contribution)),
                    }
                }
            }
            if !portfolio_margin {
                cross_initial += cross.initial;
                cross_maintenance += cross.maintenance;
            }
        }
        position_reports.push(report);
    }
    Ok(Positions {
        reports: position_reports,
        unrealized_pnl,
        option_value,
        cross_initial,
        cross_maintenance,
        currencies: Vec::new(),
        scenario_sides: Vec::new(),
        cross_upnl_by_settlement,
    })
}

/// Lines from which the positions step computes its lines' figures on every core: a line
/// takes about a microsecond (its rule, conversions, roundings and explanation), so a few
/// hundred repay the hand-off.
const PARALLEL_LINES: usize = 512;

/// What one line adds to the positions step, computed from the line alone.
struct LineFigures {
    report: PositionReport,
    /// A cross position's part of the pool (`None` for an isolated one).
    cross: Option<CrossFigures>,
    /// Its components, in the order the report lists them.
    components: Vec<Component>,
    warnings: Vec<String>,
}

/// A cross position's part of the pool, in the report asset.
struct CrossFigures {
    /// Its unrealised P&L (perpetuals and futures) or value (options), rounded as credit.
    contribution: Decimal,
    /// Its own rule's requirements (summed under standard margin only).
    initial: Decimal,
    maintenance: Decimal,
}

/// One line of the positions step: the position valued at its mark and margined by its own
/// rule, its components and warnings.
fn line_figures(
    line: &Line<'_>,
    view: &MarketView<'_>,
    target: &ReportAsset<'_>,
    portfolio_margin: bool,
    detail: Detail,
) -> Result<LineFigures, RiskError> {
    let report_asset = target.asset;
    let decimals = target.decimals;
    let mut warnings = Vec::new();
    let mut components = Vec::new();
    let position = line.position;
    let instrument = &position.instrument;
    let settle = line.settlement;
    let size = position.size.value();
    let mark = line.mark.price;
    let requirement = line.requirement_at(mark)?;
    let value_settle = standard::notional(instrument, size, mark);
    let upnl_settle =
        standard::unrealized_pnl(instrument, size, position.entry_price.value(), mark);
    let contribution_settle = line.equity_at(mark);
    let conversion = view.conversion(settle, report_asset);
    let convert = |amount: Decimal| conversion.convert(amount);
    let initial = rounding::requirement(convert(requirement.initial)?, decimals);
    let maintenance = rounding::requirement(convert(requirement.maintenance)?, decimals);
    let signed_value = if line.is_option() {
        contribution_settle
    } else {
        position
            .size
            .side()
            .map_or(Decimal::ZERO, |side| value_settle * side.sign())
    };
    if let Basis::Tiered {
        exceeds_limit: true,
        up_to: Some(up_to),
        unit,
        ..
    } = &requirement.basis
    {
        let held = match unit {
            solvent_core::venue::TierUnit::Value => {
                format!("position value {} {}", show(value_settle), settle.symbol)
            }
            solvent_core::venue::TierUnit::Contracts => {
                format!("{} contracts", show(standard::contracts(instrument, size)))
            }
        };
        warnings.push(format!(
            "{}: {held} exceeds the largest risk-limit tier (up to {}); the venue would refuse to increase it",
            instrument.name,
            show(*up_to)
        ));
    }
    if let Basis::Tiered {
        tier,
        floor,
        up_to,
        leverage,
        requested_leverage: Some(requested),
        unit,
        ..
    } = &requirement.basis
    {
        warnings.push(format!(
            "{}: leverage {}x is above the {}x maximum of tier {tier} ({}); the venue would refuse it, and initial margin is taken at {}x",
            instrument.name,
            show(*requested),
            show(*leverage),
            bracket_text(*floor, *up_to, *unit, &settle.symbol),
            show(*leverage)
        ));
    }
    if line.expired {
        warnings.push(format!(
            "{} expired at {}: valued at its settlement value, not margined, until it is settled",
            instrument.name,
            instrument
                .terms
                .expiry()
                .map_or_else(String::new, |expiry| expiry.to_string())
        ));
    }
    // Explained only where they are shown: under portfolio margin the position's share of
    // the account's requirement replaces them.
    let (initial_detail, maintenance_detail) = if detail == Detail::Full && !portfolio_margin {
        describe(&requirement, value_settle, &settle.symbol)
    } else {
        (String::new(), String::new())
    };
    let mut report = PositionReport {
        instrument: instrument.name.as_str().into(),
        size: position.size,
        mark_price: Amount(mark),
        mark_source: line.mark.source,
        settlement: settle.symbol.clone(),
        value: Amount(rounding::credit(convert(signed_value)?, decimals)),
        upnl: Amount(rounding::credit(convert(upnl_settle)?, decimals)),
        initial_margin: Amount(initial),
        maintenance_margin: Amount(maintenance),
        im_share: 0.0,
        liquidation_price: None,
        liquidation_price_of: if line.is_option() {
            LiquidationLevel::Index
        } else {
            LiquidationLevel::Mark
        },
        distance_to_liquidation_pct: None,
        distance_to_liquidation_sd: None,
        isolated: position.isolated_margin.is_some(),
        isolated_equity: None,
        isolated_health: None,
        margin_basis: requirement.basis.clone(),
    };
    let cross = match position.isolated_margin {
        None => {
            let contribution = rounding::credit(convert(contribution_settle)?, decimals);
            let prefix = if line.is_option() {
                "option_value"
            } else {
                "upnl"
            };
            if detail == Detail::Full {
                components.push(Component {
                    name: format!("{prefix}:{}", instrument.name),
                    amount: Amount(contribution),
                    detail: format!(
                        "{} {} at mark {} (entry {})",
                        show(size),
                        instrument.name,
                        show(mark),
                        show(position.entry_price.value())
                    ),
                });
                if !portfolio_margin {
                    components.push(Component {
                        name: format!("initial_margin:{}", instrument.name),
                        amount: Amount(initial),
                        detail: initial_detail,
                    });
                    components.push(Component {
                        name: format!("maintenance_margin:{}", instrument.name),
                        amount: Amount(maintenance),
                        detail: maintenance_detail,
                    });
                }
            }
            Some(CrossFigures {
                contribution,
                initial,
                maintenance,
            })
        }
        Some(isolated_margin) => {
            if line.is_option() {
                return Err(RiskError::Unsupported {
                    path: format!("positions: {}.isolated_margin", instrument.name),
                    problem: "options are margined in the cross pool; isolated margin applies to perpetuals and futures"
                        .to_owned(),
                });
            }
            let equity_settle = isolated_margin.value() + upnl_settle;
            let equity = rounding::credit(convert(equity_settle)?, decimals);
            report.isolated_equity = Some(Amount(equity));
            report.isolated_health = crate::report::health(equity, maintenance);
            report.im_share = 1.0;
            None
        }
    };
    Ok(LineFigures {
        report,
        cross,
        components,
        warnings,
    })
}

/// Step 3, the requirement: under portfolio margin, the account's risk-based requirement added
/// to the pool and attributed to its positions; then each cross position's share of the pool's
/// initial margin.
///
/// # Errors
/// [`RiskError`] from the portfolio margin.
#[allow(
    clippy::too_many_arguments,
    reason = "the step's inputs and the report's three accumulators, each named"
)]
fn requirement_step(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    portfolio_params: Option<&PortfolioMarginParams>,
    equity: Decimal,
    target: &ReportAsset<'_>,
    detail: Detail,
    lines: &[Line<'_>],
    positions: &mut Positions,
    components: &mut Vec<Component>,
    warnings: &mut Vec<String>,
) -> Result<(), RiskError> {
    let report_asset = target.asset;
    if let Some(params) = portfolio_params {
        let requirement = crate::portfolio_report::apply(
            &crate::portfolio_report::Inputs {
                portfolio,
                view,
                params,
                equity,
                report_asset,
                detail,
                lines,
            },
            &mut positions.reports,
            components,
            warnings,
        )?;
        positions.cross_initial += requirement.initial;
        positions.cross_maintenance += requirement.maintenance;
        positions.currencies = requirement.currencies;
        positions.scenario_sides = requirement.scenario_sides;
    }
    for report in positions.reports.iter_mut().filter(|r| !r.isolated) {
        report.im_share = if positions.cross_initial.is_zero() {
            0.0
        } else {
            (report.initial_margin.value() / positions.cross_initial)
                .to_f64()
                .unwrap_or(0.0)
        };
    }
    Ok(())
}

/// Step 4, the liquidation prices (a full report): each standard-margin position's level at
/// which its pool's health reaches 1, all else fixed, on exact (unrounded) figures in the report
/// currency; where the venue sets a fee to close (`liquidation_fee_rate`), the level where the
/// pool's equity meets its maintenance margin plus that fee. A perpetual's or future's level is
/// its own price; an option's is its underlying's index, the option repriced from it (and its
/// requirement taken at it) while every other price stays where it is (see [`Level`]). Under
/// portfolio margin a cross position is liquidated by its underlying's move instead (see
/// [`portfolio_liquidation_prices`]).
///
/// # Errors
/// [`RiskError`] when a figure of the search cannot be computed.
fn liquidation_step(
    lines: &[Line<'_>],
    view: &MarketView<'_>,
    target: &ReportAsset<'_>,
    collateral: &Collateral,
    portfolio_margin: bool,
    position_reports: &mut [PositionReport],
    warnings: &mut Vec<String>,
) -> Result<(), RiskError> {
    let report_asset = target.asset;
    // The venue's fee to close, added to each position's maintenance margin where the price
    // is solved (0 unless the venue file sets it).
    let fee_rate = view.venue().liquidation_fee_rate;
    // The pool's exact figures, for its positions' own-price searches; none under portfolio
    // margin, where no cross position is searched by its own price (and where summing them could
    // fail only on a conversion the positions step already made).
    let cross_exact = if portfolio_margin {
        None
    } else {
        Some(pool_exact(
            lines,
            view,
            report_asset,
            &collateral.borrow_maintenance,
            collateral.value,
        )?)
    };
    for (index, line) in lines.iter().enumerate() {
        let Some(side) = line.position.size.side() else {
            continue;
        };
        if portfolio_margin && line.position.isolated_margin.is_none() {
            // Under portfolio margin a cross position is liquidated by its underlying's move,
            // not by its own price: see the per-underlying liquidation moves (solvent stress --reverse).
            continue;
        }
        let level = match Level::of(line, side, view) {
            Ok(Some(level)) => level,
            Ok(None) => continue,
            Err(error) => {
                warnings.push(format!(
                    "{}: no liquidation level: {error}",
                    line.position.instrument.name
                ));
                continue;
            }
        };
        let price = match line.position.isolated_margin {
            Some(margin) => {
                // The venue's convention: the maintenance margin at the liquidation price, or
                // fixed on the entry value.
                let at_entry = match view.venue().liquidation_maintenance {
                    LiquidationMaintenance::AtLiquidationPrice => None,
                    LiquidationMaintenance::AtEntryValue => Some(
                        line.requirement_at(line.position.entry_price.value())?
                            .maintenance,
                    ),
                };
                liquidation::solve(level.now, level.side, line.price_bounds(), |p| {
                    let (equity, maintenance, fee) = level.figures_at(line, p, fee_rate)?;
                    // OKX and Gate: the margin must also pay the fee to close at p.
                    Ok(margin.value() + equity - at_entry.unwrap_or(maintenance) - fee)
                })?
            }
            None => {
                let Some(cross_exact) = cross_exact else {
                    continue;
                };
                let (others_equity, others_maintenance) = {
                    let own_equity = view.convert(
                        line.equity_at(line.mark.price),
                        line.settlement,
                        report_asset,
                    )?;
                    let own_maintenance = view.convert(
                        line.requirement_at(line.mark.price)?.maintenance
                            + line.close_fee_at(fee_rate, line.mark.price),
                        line.settlement,
                        report_asset,
                    )?;
                    (cross_exact.0 - own_equity, cross_exact.1 - own_maintenance)
                };
                // A long option with no margin (its premium paid) is worth zero at worst and
                // never requires any: where the rest of the pool covers its own maintenance, no
                // index level liquidates it, and no search is needed (an account of many long
                // options would otherwise reprice each one at every step of its own search).
                if others_equity > others_maintenance
                    && line.requirement_at(line.mark.price)?.basis == Basis::LongOption
                {
                    continue;
                }
                liquidation::solve(level.now, level.side, line.price_bounds(), |p| {
                    let (equity, maintenance, fee) = level.figures_at(line, p, fee_rate)?;
                    let equity = view.convert(equity, line.settlement, report_asset)?;
                    let maintenance =
                        view.convert(maintenance + fee, line.settlement, report_asset)?;
                    Ok(others_equity + equity - others_maintenance - maintenance)
                })?
            }
        };
        // A level on the instrument's own price lies on the venue's price grid, where it has one.
        let price = match (price, line.position.instrument.tick_size, &level.option) {
            (Some(price), Some(tick), None) => Some(liquidation::on_tick(price, level.side, tick)),
            (price, _, _) => price,
        };
        if let (Some(price), Some(report)) = (price, position_reports.get_mut(index)) {
            report.liquidation_price = Price::new_checked(price).ok();
            distances(report, line, &level, price, view);
        }
    }
    Ok(())
}

/// What a position's liquidation level is searched over: its own price (a perpetual or future)
/// or its underlying's index (an option, repriced from the index by the reverse stress's
/// repricing, [`crate::stress::OptionMove`]).
struct Level {
    /// The level now: the mark, or the option's underlying index.
    now: Decimal,
    /// The side the level hurts as it hurts a long (down) or a short (up): the position's own
    /// side, or for an option the side its delta takes (a long call or a short put loses as the
    /// index falls).
    side: PositionSide,
    /// The option's repricing; `None` for a level that is the instrument's own price.
    option: Option<crate::stress::OptionMove>,
}

impl Level {
    /// The level of `line` (of side `side`); `None` for an expired option, valued at its
    /// settlement and not margined.
    ///
    /// # Errors
    /// [`RiskError`] when the option's mark cannot be repriced from the index (no implied
    /// volatility).
    fn of(
        line: &Line<'_>,
        side: PositionSide,
        view: &MarketView<'_>,
    ) -> Result<Option<Self>, RiskError> {
        let instrument = &line.position.instrument;
        let Terms::Option { right, .. } = &instrument.terms else {
            return Ok(Some(Self {
                now: line.mark.price,
                side,
                option: None,
            }));
        };
        if line.expired {
            return Ok(None);
        }
        let Ok(mark) = Price::new_checked(line.mark.price) else {
            // A worthless option (mark 0) has no premium to reprice.
            return Ok(None);
        };
        let option = crate::stress::OptionMove::new(view, instrument, mark)?;
        let side = match (right, side) {
            (solvent_core::instrument::OptionRight::Call, side) => side,
            (solvent_core::instrument::OptionRight::Put, PositionSide::Long) => PositionSide::Short,
            (solvent_core::instrument::OptionRight::Put, PositionSide::Short) => PositionSide::Long,
        };
        Ok(Some(Self {
            now: line.underlying_usd,
            side,
            option: Some(option),
        }))
    }

    /// The line's equity contribution, maintenance margin and fee to close (settlement currency)
    /// at level `level`: at its own price, or, for an option, at the premium repriced from the
    /// index `level` with its requirement taken at that index.
    fn figures_at(
        &self,
        line: &Line<'_>,
        level: Decimal,
        fee_rate: Decimal,
    ) -> Result<(Decimal, Decimal, Decimal), RiskError> {
        let Some(option) = &self.option else {
            return Ok((
                line.equity_at(level),
                line.requirement_at(level)?.maintenance,
                line.close_fee_at(fee_rate, level),
            ));
        };
        let (Some(now), Some(to)) = (self.now.to_f64(), level.to_f64()) else {
            return Err(RiskError::Unsupported {
                path: format!("positions.{}", line.position.instrument.name),
                problem: format!("index level {level} cannot be priced"),
            });
        };
        let premium = option.moved(to / now - 1.0)?.value();
        let moved = Line {
            underlying_usd: level,
            ..line.clone()
        };
        Ok((
            moved.equity_at(premium),
            moved.requirement_at(premium)?.maintenance,
            Decimal::ZERO,
        ))
    }
}

/// Exact equity and maintenance margin of the cross pool in the report currency, the latter with
/// the venue's fee to close each position at its mark (the collateral value is already a rounded
/// credit; position figures are not rounded here).
fn pool_exact(
    lines: &[Line<'_>],
    view: &MarketView<'_>,
    report_asset: &Asset,
    borrow_maintenance: &Decimal,
    collateral_value: Decimal,
) -> Result<(Decimal, Decimal), RiskError> {
    let mut equity = collateral_value;
    let mut maintenance = *borrow_maintenance;
    for line in lines
        .iter()
        .filter(|line| line.position.isolated_margin.is_none())
    {
        equity += view.convert(
            line.equity_at(line.mark.price),
            line.settlement,
            report_asset,
        )?;
        maintenance += view.convert(
            line.requirement_at(line.mark.price)?.maintenance
                + line.close_fee_at(view.venue().liquidation_fee_rate, line.mark.price),
            line.settlement,
            report_asset,
        )?;
    }
    Ok((equity, maintenance))
}

fn distances(
    report: &mut PositionReport,
    line: &Line<'_>,
    level: &Level,
    liquidation_price: Decimal,
    view: &MarketView<'_>,
) {
    let (Some(now), Some(liquidation)) = (level.now.to_f64(), liquidation_price.to_f64()) else {
        return;
    };
    if now <= 0.0 || liquidation <= 0.0 {
        return;
    }
    let direction = match level.side {
        PositionSide::Long => 1.0,
        PositionSide::Short => -1.0,
    };
    report.distance_to_liquidation_pct = Some(direction * (now - liquidation) / now * 100.0);
    // The level is the underlying's price for perpetuals, futures and (their index) options:
    // its distance in the underlying's daily standard deviations.
    if let Some(daily) = view.daily_standard_deviation(&line.position.instrument.underlying) {
        report.distance_to_liquidation_sd = Some(direction * (now / liquidation).ln() / daily);
    }
}
