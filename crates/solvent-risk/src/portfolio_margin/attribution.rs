//! The full path: an account's portfolio margin with every component explained and the Euler
//! attribution of the requirement to its exposures.

use super::*;

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
