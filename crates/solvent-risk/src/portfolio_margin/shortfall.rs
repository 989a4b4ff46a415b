//! Historical expected shortfall (filtered historical simulation) of an account's exposures,
//! with each exposure's mean tail loss.

use super::*;

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

/// Historical expected shortfall of the exposures (when the book carries historical scenarios),
/// with each exposure's weighted mean tail loss (summing to the ES).
pub(super) fn expected_shortfall(
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
