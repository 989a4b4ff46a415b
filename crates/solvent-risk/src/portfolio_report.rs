//! Portfolio margin in the margin report: the risk figures of [`crate::portfolio_margin`] rounded
//! toward the venue, attributed to positions so the parts sum exactly to the account figure, and
//! explained component by component.

use rayon::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use solvent_core::instrument::Instrument;
use solvent_core::money::Amount;
use solvent_core::portfolio::Portfolio;
use solvent_core::portfolio_margin::{PortfolioCollateral, PortfolioMarginParams};
use solvent_core::rounding;
use solvent_core::venue::Asset;

use crate::account::{Detail, Line};
use crate::error::RiskError;
use crate::portfolio_margin::{
    Exposure, PortfolioRisk, ReportCurrency, ScenarioBook, ScenarioSides, SharedMargin,
    UnderlyingBook, exposures, portfolio_risk, shared_margin, sides_of,
};
use crate::report::{Component, CurrencyMargin, PositionReport};
use crate::standard::Basis;
use crate::valuation::MarketView;

/// What the report hands over.
pub struct Inputs<'a> {
    /// The account.
    pub portfolio: &'a Portfolio,
    /// The market.
    pub view: &'a MarketView<'a>,
    /// The venue's portfolio-margin parameters.
    pub params: &'a PortfolioMarginParams,
    /// The account's equity in the report currency.
    pub equity: Decimal,
    /// The report currency.
    pub report_asset: &'a Asset,
    /// Whether to attribute the margin to positions and explain it (a full report), or only
    /// compute the account's figures (what a stress search recomputes a hundred times).
    pub detail: Detail,
    /// The account's positions evaluated at the snapshot, in the portfolio's order (their
    /// equity contributions in their settlement coin make each currency's equity under
    /// segregated margin).
    pub lines: &'a [Line<'a>],
}

/// The portfolio-margin requirement of the cross pool, in the report currency, and under
/// segregated margin each currency's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolRequirement {
    /// Initial margin, rounded up.
    pub initial: Decimal,
    /// Maintenance margin, rounded up.
    pub maintenance: Decimal,
    /// Each settlement currency's figures (segregated margin only; empty under cross-collateral
    /// margin).
    pub currencies: Vec<CurrencyMargin>,
    /// Each scanned underlying's worst scenario on either side of its price (cross-collateral
    /// margin only; empty under segregated margin).
    pub scenario_sides: Vec<ScenarioSides>,
}

/// Splits `total` (already rounded) into parts proportional to `weights`, each rounded up, then
/// moves the difference to the largest part so the parts sum exactly to `total` (largest-remainder
/// apportionment).
fn apportion(total: Decimal, weights: &[f64], decimals: u32) -> Result<Vec<Decimal>, RiskError> {
    let weight_sum: f64 = weights.iter().sum();
    let total_f64 = total.to_f64().unwrap_or(0.0);
    let mut parts = weights
        .iter()
        .map(|weight| {
            let share = if weight_sum.abs() > 0.0 {
                total_f64 * weight / weight_sum
            } else {
                0.0
            };
            rounding::requirement_from_f64(share, decimals, "a portfolio-margin share")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let residual = total - parts.iter().copied().sum::<Decimal>();
    if let Some(largest) = parts.iter_mut().max_by(|a, b| a.cmp(b)) {
        *largest += residual;
    }
    Ok(parts)
}

/// What the account's scenario book revalues: the cross pool's instruments, and the spot balances
/// (symbol, index) of assets priced by a scanned underlying.
#[must_use]
pub fn book_inputs<'a>(
    portfolio: &'a Portfolio,
    params: &PortfolioMarginParams,
) -> (Vec<&'a Instrument>, Vec<(String, String)>) {
    let instruments = portfolio
        .positions
        .iter()
        .filter(|p| p.isolated_margin.is_none())
        .map(|p| p.instrument.as_ref())
        .collect();
    let spot_assets = portfolio
        .balances
        .iter()
        .filter(|b| params.underlyings.contains_key(b.asset.index.as_str()))
        .map(|b| (b.asset.symbol.to_string(), b.asset.index.to_string()))
        .collect();
    (instruments, spot_assets)
}

/// Builds the book, computes the risk, sets each cross position's requirement and appends the
/// explanation. Returns the pool's initial and maintenance margin from portfolio margin (and,
/// under segregated margin, each currency's figures).
///
/// # Errors
/// [`RiskError`] from building the book or rounding.
pub fn apply(
    inputs: &Inputs<'_>,
    positions: &mut [PositionReport],
    components: &mut Vec<Component>,
    warnings: &mut Vec<String>,
) -> Result<PoolRequirement, RiskError> {
    let Inputs {
        portfolio,
        view,
        params,
        equity,
        report_asset,
        detail,
        ..
    } = inputs;
    let decimals = report_asset.precision;
    if params.historical.is_some() && view.history().is_none() {
        warnings.push(
            "historical expected shortfall is enabled by the venue but was not computed: no price history was given (--history DIR)"
                .to_owned(),
        );
    }
    if params.collateral == PortfolioCollateral::Segregated {
        return crate::segregated::apply(inputs, positions, components);
    }
    let report_usd = view.asset_usd(report_asset)?.to_f64().unwrap_or(f64::NAN);
    let equity_usd = equity.to_f64().unwrap_or(0.0) * report_usd;
    if *detail == Detail::Totals
        && let Some(books) = view.books()
        && let Some(SharedMargin {
            initial,
            maintenance,
            scenario_sides,
        }) = shared_margin(
            portfolio,
            view,
            books,
            params,
            report_asset,
            (report_usd, equity_usd),
        )
    {
        // The account's figures from books shared with the other accounts valued at this
        // market: the same figures as from its own book (see `shared_margin`), rounded alike.
        let maintenance =
            rounding::requirement_from_f64(maintenance, decimals, "portfolio maintenance margin")?;
        let initial =
            rounding::requirement_from_f64(initial, decimals, "portfolio initial margin")?;
        return Ok(PoolRequirement {
            initial,
            maintenance,
            currencies: Vec::new(),
            scenario_sides,
        });
    }
    let (instruments, spot_assets) = book_inputs(portfolio, params);
    let book = ScenarioBook::new(view, params, &instruments, &spot_assets)?;
    let exposures = exposures(portfolio, &book)?;
    let currency = ReportCurrency {
        price_usd: report_usd,
        priced_by: book.underlyings.get_index_of(report_asset.index.as_str()),
        equity_usd,
    };
    let risk = portfolio_risk(&book, params, &exposures, &currency)?;
    let maintenance = rounding::requirement_from_f64(
        risk.maintenance_margin,
        decimals,
        "portfolio maintenance margin",
    )?;
    let initial =
        rounding::requirement_from_f64(risk.initial_margin, decimals, "portfolio initial margin")?;
    if *detail != Detail::Totals {
        // The apportionment and the explanation change no account figure; they cost a decimal
        // rounding and a formatted line per position.
        let scan = Scan {
            book: &book,
            risk: &risk,
            exposures: &exposures,
            positions_of: &|index| Some(index),
            scope: "",
            digits: 2,
        };
        attribute(
            portfolio,
            params,
            &scan,
            (initial, maintenance),
            decimals,
            positions,
            components,
        )?;
    }
    // Sides in USD say which scenario is worst only where the report currency does not move
    // with a scenario (see `shared_margin_and_sides`).
    let scenario_sides = if currency.priced_by.is_none() {
        let order: Vec<&UnderlyingBook> = book.underlyings.values().collect();
        sides_of(&order, &exposures).unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(PoolRequirement {
        initial,
        maintenance,
        currencies: Vec::new(),
        scenario_sides,
    })
}

/// Exposures from which [`attribute`] writes their shares' components on every core (two
/// formatted names and their words each).
const PARALLEL_SHARES: usize = 1024;

/// One scan's results as [`attribute`] reads them.
pub(crate) struct Scan<'a> {
    /// The book scanned.
    pub(crate) book: &'a ScenarioBook,
    /// Its risk.
    pub(crate) risk: &'a PortfolioRisk,
    /// The exposures scanned, in the order of `risk.attribution`.
    pub(crate) exposures: &'a [Exposure],
    /// The portfolio's index of an exposure's position (a sub-portfolio numbers its own).
    pub(crate) positions_of: &'a (dyn Fn(usize) -> Option<usize> + Sync),
    /// Inserted after `portfolio` in the explanation's names (`[BTC]` for a currency's scan), so
    /// two currencies' scans of one underlying keep apart.
    pub(crate) scope: &'a str,
    /// Decimals of the P&L figures in the explanation's words.
    pub(crate) digits: usize,
}

/// Attributes `(initial, maintenance)` (the scan's requirement in the report currency, rounded)
/// to the scan's positions and spot balances, exactly, and explains it by source.
///
/// # Errors
/// [`RiskError`] from rounding.
pub(crate) fn attribute(
    portfolio: &Portfolio,
    params: &PortfolioMarginParams,
    scan: &Scan<'_>,
    (initial, maintenance): (Decimal, Decimal),
    decimals: u32,
    positions: &mut [PositionReport],
    components: &mut Vec<Component>,
) -> Result<(), RiskError> {
    let Scan {
        book,
        risk,
        exposures,
        positions_of,
        ..
    } = scan;
    // By position (and spot balance): the Euler attribution, apportioned exactly.
    let maintenance_parts = apportion(maintenance, &risk.attribution, decimals)?;
    let initial_parts = apportion(initial, &risk.attribution, decimals)?;
    // Per underlying of the book: its name, its worst scenario and the two components' words,
    // written once (an account holds thousands of positions on a few underlyings, and
    // formatting the same words for each took a third of the attribution).
    let slots = exposures
        .iter()
        .map(|exposure| exposure.underlying + 1)
        .fold(book.underlyings.len(), usize::max);
    let mut words: Vec<Option<UnderlyingWords>> = Vec::new();
    words.resize_with(slots, || None);
    for (index, exposure) in exposures.iter().enumerate() {
        if index < maintenance_parts.len().min(initial_parts.len())
            && let Some(slot) = words.get_mut(exposure.underlying)
            && slot.is_none()
        {
            *slot = Some(UnderlyingWords::new(
                book,
                risk,
                params,
                exposure.underlying,
            ));
        }
    }
    // Each exposure's share and components, on every core for a large account, then set in
    // the account's order.
    let share = |(index, exposure): (usize, &Exposure)| {
        let (mm, im) = (maintenance_parts.get(index)?, initial_parts.get(index)?);
        let words = words.get(exposure.underlying)?.as_ref()?;
        let position = exposure.position.and_then(positions_of);
        let label = match position.and_then(|p| portfolio.positions.get(p)) {
            Some(position) => position.instrument.name.clone(),
            None => book
                .underlyings
                .get_index(exposure.underlying)
                .and_then(|(_, b)| b.instruments.get_index(exposure.instrument))
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
        };
        let parts = [
            Component {
                name: format!("initial_margin:{label}"),
                amount: Amount(*im),
                detail: words.initial_detail.clone(),
            },
            Component {
                name: format!("maintenance_margin:{label}"),
                amount: Amount(*mm),
                detail: words.maintenance_detail.clone(),
            },
        ];
        Some((position, *mm, *im, words, parts))
    };
    let shares: Vec<_> = if exposures.len() >= PARALLEL_SHARES {
        exposures
            .par_iter()
            .enumerate()
            .with_min_len(PARALLEL_SHARES / 4)
            .map(share)
            .collect()
    } else {
        exposures.iter().enumerate().map(share).collect()
    };
    for (position, mm, im, words, parts) in shares.into_iter().flatten() {
        if let Some(report) = position.and_then(|p| positions.get_mut(p)) {
            report.maintenance_margin = Amount(mm);
            report.initial_margin = Amount(im);
            report.margin_basis = Basis::PortfolioShare {
                underlying: words.underlying.clone(),
                worst_scenario: words.worst.clone(),
            };
        }
        components.extend(parts);
    }
    explain(scan, maintenance, decimals, components)
}

/// What [`attribute`] writes of an underlying for each of its positions.
struct UnderlyingWords {
    underlying: String,
    worst: String,
    initial_detail: String,
    maintenance_detail: String,
}

impl UnderlyingWords {
    /// The words of the book's underlying at `index` (empty names where there is none, as
    /// the attribution always wrote them).
    fn new(
        book: &ScenarioBook,
        risk: &PortfolioRisk,
        params: &PortfolioMarginParams,
        index: usize,
    ) -> Self {
        let underlying = book
            .underlyings
            .get_index(index)
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        let worst = risk
            .underlyings
            .iter()
            .find(|u| u.underlying == underlying)
            .map(|u| u.worst_scenario.clone())
            .unwrap_or_default();
        Self {
            initial_detail: format!("{} x its share of the {underlying} scan", params.im_factor),
            maintenance_detail: format!(
                "its loss in {underlying}'s worst scenario ({worst}), after offsets and add-ons"
            ),
            underlying,
            worst,
        }
    }
}

/// The same maintenance margin decomposed by source (`portfolio:` components): floored scan risk
/// per underlying, the cross-underlying offset, contingencies and liquidity, apportioned so they
/// also sum exactly to the maintenance margin.
fn explain(
    scan: &Scan<'_>,
    maintenance: Decimal,
    decimals: u32,
    components: &mut Vec<Component>,
) -> Result<(), RiskError> {
    let Scan {
        risk,
        scope,
        digits,
        ..
    } = scan;
    let digits = *digits;
    let mut named: Vec<(String, f64, String)> = Vec::new();
    for underlying in &risk.underlyings {
        let name = &underlying.underlying;
        named.push((
            format!("portfolio{scope}:scan_risk:{name}"),
            underlying.scan_risk,
            format!(
                "worst scenario {}: P&L {:.digits$}",
                underlying.worst_scenario, underlying.worst_pnl
            ),
        ));
        if underlying.floored_risk > underlying.scan_risk {
            named.push((
                format!("portfolio{scope}:minimum_charge:{name}"),
                underlying.floored_risk - underlying.scan_risk,
                format!(
                    "floor above the scan: minimum delta charge {:.digits$} (net delta {:.6}), short option minimum {:.digits$}",
                    underlying.min_delta_charge, underlying.net_delta, underlying.short_option_charge
                ),
            ));
        }
        if underlying.additive_charge > 0.0 {
            named.push((
                format!("portfolio{scope}:contingencies:{name}"),
                underlying.additive_charge,
                format!(
                    "roll (basis) shock {:.digits$}, delta shock {:.digits$}",
                    underlying.roll_charge, underlying.delta_shock_charge
                ),
            ));
        }
        let liquidity = underlying.liquidity_charge + underlying.concentration_charge;
        if liquidity > 0.0 {
            named.push((
                format!("portfolio{scope}:liquidity:{name}"),
                liquidity,
                format!(
                    "closing cost of net delta {:.6}: spread and square-root impact {:.digits$}, concentration {:.digits$}",
                    underlying.net_delta, underlying.liquidity_charge, underlying.concentration_charge
                ),
            ));
        }
    }
    if let Some(shortfall) = &risk.expected_shortfall {
        let scan = risk.combined_risk + risk.additive_contingencies;
        named.push((
            format!("portfolio{scope}:expected_shortfall"),
            (shortfall.loss - scan).max(0.0),
            format!(
                "ES {:.1}% over {} filtered historical scenarios = {:.digits$} (worst day {}; VaR 99% {:.digits$}); {} the scan with contingencies {:.digits$}",
                shortfall.level * 100.0,
                shortfall.scenarios,
                shortfall.loss,
                shortfall.worst_date,
                shortfall.value_at_risk_99,
                if shortfall.loss > scan { "above" } else { "below" },
                scan
            ),
        ));
    }
    let offset = risk.combined_risk - risk.summed_risk;
    if offset < 0.0 {
        named.push((
            format!("portfolio{scope}:cross_underlying_offset"),
            offset,
            format!(
                "correlated combination of {:.digits$} of scan risk gives {:.digits$} (credit capped by max_offset)",
                risk.summed_risk, risk.combined_risk
            ),
        ));
    }
    let weights: Vec<f64> = named.iter().map(|(_, amount, _)| *amount).collect();
    let amounts = apportion(maintenance, &weights, decimals)?;
    for ((name, _, detail), amount) in named.into_iter().zip(amounts) {
        components.push(Component {
            name,
            amount: Amount(amount),
            detail,
        });
    }
    Ok(())
}
