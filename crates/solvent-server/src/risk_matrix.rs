//! The risk matrix of an account (`GET /v1/accounts/{id}/risk-matrix`): the P&L of its cross
//! positions and spot balances in every scenario of the portfolio-margin grid, per underlying,
//! as Deribit's portfolio-margin simulator and OKX's position builder show it.

use serde::Serialize;
use solvent_core::portfolio::{MarginMode, Portfolio};
use solvent_risk::MarketView;
use solvent_risk::portfolio_margin::{ScenarioBook, exposures};

use crate::error::ApiError;

/// One underlying's row block.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UnderlyingMatrix {
    /// Underlying.
    pub underlying: String,
    /// The scenarios, labelled (price move and volatility shock).
    pub scenarios: Vec<String>,
    /// The account's P&L (USD) in each scenario, summed over its exposures.
    pub total: Vec<f64>,
    /// Per instrument (or `spot:ASSET`): its P&L (USD) in each scenario.
    pub rows: Vec<MatrixRow>,
}

/// One exposure's P&L across the scenarios.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MatrixRow {
    /// Instrument name, or `spot:ASSET`.
    pub instrument: String,
    /// Units of exposure.
    pub exposure: f64,
    /// P&L (USD) per scenario.
    pub pnl: Vec<f64>,
}

/// The matrix of a portfolio-mode account.
///
/// # Errors
/// 422 when the account is not in portfolio mode or the venue has no portfolio margin, or a
/// price the grid needs is missing.
pub fn of(portfolio: &Portfolio, view: &MarketView<'_>) -> Result<Vec<UnderlyingMatrix>, ApiError> {
    if portfolio.mode != MarginMode::Portfolio {
        return Err(ApiError::unprocessable(
            Some("id".to_owned()),
            format!(
                "account {:?} is in cross margin: a risk matrix belongs to portfolio margin",
                portfolio.account
            ),
        ));
    }
    let params = view.venue().portfolio_margin.as_ref().ok_or_else(|| {
        ApiError::unprocessable(None, "the venue has no portfolio margin".to_owned())
    })?;
    let cannot = |error: solvent_risk::RiskError| ApiError::unprocessable(None, error.to_string());
    let (instruments, spot_assets) = solvent_risk::portfolio_report::book_inputs(portfolio, params);
    let book = ScenarioBook::new(view, params, &instruments, &spot_assets).map_err(cannot)?;
    let exposures = exposures(portfolio, &book).map_err(cannot)?;
    let mut matrices: Vec<UnderlyingMatrix> = book
        .underlyings
        .values()
        .map(|underlying| UnderlyingMatrix {
            underlying: underlying.name.clone(),
            scenarios: underlying.scenarios.iter().map(|s| s.label()).collect(),
            total: vec![0.0; underlying.scenarios.len()],
            rows: Vec::new(),
        })
        .collect();
    for exposure in &exposures {
        let (Some((name, risk)), Some(matrix)) = (
            book.underlyings
                .get_index(exposure.underlying)
                .and_then(|(_, underlying)| underlying.instruments.get_index(exposure.instrument)),
            matrices.get_mut(exposure.underlying),
        ) else {
            continue;
        };
        let pnl: Vec<f64> = risk
            .unit_pnl
            .iter()
            .map(|unit| unit * exposure.amount)
            .collect();
        for (total, value) in matrix.total.iter_mut().zip(&pnl) {
            *total += value;
        }
        matrix.rows.push(MatrixRow {
            instrument: name.clone(),
            exposure: exposure.amount,
            pnl,
        });
    }
    Ok(matrices)
}
