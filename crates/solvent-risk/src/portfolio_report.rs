//! Portfolio margin in the margin report: the risk figures of [`crate::portfolio_margin`] rounded
//! toward the venue, attributed to positions so the parts sum exactly to the account figure, and
//! explained component by component.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use solvent_core::instrument::Instrument;
use solvent_core::money::Amount;
use solvent_core::portfolio::Portfolio;
use solvent_core::portfolio_margin::PortfolioMarginParams;
use solvent_core::rounding;
use solvent_core::venue::Asset;

use crate::account::Detail;
use crate::error::RiskError;
use crate::portfolio_margin::{
    PortfolioRisk, ReportCurrency, ScenarioBook, exposures, portfolio_risk, shared_margin,
};
use crate::report::{Component, PositionReport};
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
/// explanation. Returns the pool's `(initial, maintenance)` margin from portfolio margin.
///
/// # Errors
/// [`RiskError`] from building the book or rounding.
pub fn apply(
    inputs: &Inputs<'_>,
    positions: &mut [PositionReport],
    components: &mut Vec<Component>,
    warnings: &mut Vec<String>,
) -> Result<(Decimal, Decimal), RiskError> {
    let Inputs {
        portfolio,
        view,
        params,
        equity,
        report_asset,
        detail,
    } = inputs;
    let decimals = report_asset.precision;
    if params.historical.is_some() && view.history().is_none() {
        warnings.push(
            "historical expected shortfall is enabled by the venue but was not computed: no price history was given (--history DIR)"
                .to_owned(),
        );
    }
    let report_usd = view.asset_usd(report_asset)?.to_f64().unwrap_or(f64::NAN);
    let equity_usd = equity.to_f64().unwrap_or(0.0) * report_usd;
    if *detail == Detail::Totals
        && let Some(books) = view.books()
        && let Some((initial, maintenance)) = shared_margin(
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
        return Ok((initial, maintenance));
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
    if *detail == Detail::Totals {
        // The apportionment and the explanation change no account figure; they cost a decimal
        // rounding and a formatted line per position.
        return Ok((initial, maintenance));
    }

    // By position (and spot balance): the Euler attribution, apportioned exactly.
    let maintenance_parts = apportion(maintenance, &risk.attribution, decimals)?;
    let initial_parts = apportion(initial, &risk.attribution, decimals)?;
    for (index, exposure) in exposures.iter().enumerate() {
        let (Some(mm), Some(im)) = (maintenance_parts.get(index), initial_parts.get(index)) else {
            continue;
        };
        let underlying = book
            .underlyings
            .get_index(exposure.underlying)
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        let worst = risk
            .underlyings
            .iter()
            .find(|u| u.underlying == underlying)
            .map(|u| u.worst_scenario.clone())
            .unwrap_or_default();
        let label = match exposure.position.and_then(|p| portfolio.positions.get(p)) {
            Some(position) => position.instrument.name.clone(),
            None => book
                .underlyings
                .get_index(exposure.underlying)
                .and_then(|(_, b)| b.instruments.get_index(exposure.instrument))
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
        };
        if let Some(report) = exposure.position.and_then(|p| positions.get_mut(p)) {
            report.maintenance_margin = Amount(*mm);
            report.initial_margin = Amount(*im);
            report.margin_basis = Basis::PortfolioShare {
                underlying: underlying.clone(),
                worst_scenario: worst.clone(),
            };
        }
        components.push(Component {
            name: format!("initial_margin:{label}"),
            amount: Amount(*im),
            detail: format!("{} x its share of the {underlying} scan", params.im_factor),
        });
        components.push(Component {
            name: format!("maintenance_margin:{label}"),
            amount: Amount(*mm),
            detail: format!(
                "its loss in {underlying}'s worst scenario ({worst}), after offsets and add-ons"
            ),
        });
    }
    explain(&risk, maintenance, decimals, components)?;
    Ok((initial, maintenance))
}

/// The same maintenance margin decomposed by source (`portfolio:` components): floored scan risk
/// per underlying, the cross-underlying offset, contingencies and liquidity, apportioned so they
/// also sum exactly to the maintenance margin.
fn explain(
    risk: &PortfolioRisk,
    maintenance: Decimal,
    decimals: u32,
    components: &mut Vec<Component>,
) -> Result<(), RiskError> {
    let mut named: Vec<(String, f64, String)> = Vec::new();
    for underlying in &risk.underlyings {
        let name = &underlying.underlying;
        named.push((
            format!("portfolio:scan_risk:{name}"),
            underlying.scan_risk,
            format!(
                "worst scenario {}: P&L {:.2}",
                underlying.worst_scenario, underlying.worst_pnl
            ),
        ));
        if underlying.floored_risk > underlying.scan_risk {
            named.push((
                format!("portfolio:minimum_charge:{name}"),
                underlying.floored_risk - underlying.scan_risk,
                format!(
                    "floor above the scan: minimum delta charge {:.2} (net delta {:.6}), short option minimum {:.2}",
                    underlying.min_delta_charge, underlying.net_delta, underlying.short_option_charge
                ),
            ));
        }
        if underlying.additive_charge > 0.0 {
            named.push((
                format!("portfolio:contingencies:{name}"),
                underlying.additive_charge,
                format!(
                    "roll (basis) shock {:.2}, delta shock {:.2}",
                    underlying.roll_charge, underlying.delta_shock_charge
                ),
            ));
        }
        let liquidity = underlying.liquidity_charge + underlying.concentration_charge;
        if liquidity > 0.0 {
            named.push((
                format!("portfolio:liquidity:{name}"),
                liquidity,
                format!(
                    "closing cost of net delta {:.6}: spread and square-root impact {:.2}, concentration {:.2}",
                    underlying.net_delta, underlying.liquidity_charge, underlying.concentration_charge
                ),
            ));
        }
    }
    if let Some(shortfall) = &risk.expected_shortfall {
        let scan = risk.combined_risk + risk.additive_contingencies;
        named.push((
            "portfolio:expected_shortfall".to_owned(),
            (shortfall.loss - scan).max(0.0),
            format!(
                "ES {:.1}% over {} filtered historical scenarios = {:.2} (worst day {}; VaR 99% {:.2}); {} the scan with contingencies {:.2}",
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
            "portfolio:cross_underlying_offset".to_owned(),
            offset,
            format!(
                "correlated combination of {:.2} of scan risk gives {:.2} (credit capped by max_offset)",
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
