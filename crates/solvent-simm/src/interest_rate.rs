//! The interest rate risk class (SIMM section D, with the delta, vega and curvature paragraphs of
//! section B): one bucket per currency.
//!
//! - Delta: `WS = RW(volatility group, tenor) s CR` for each tenor and sub-curve, the inflation
//!   sensitivity weighted alike, the cross-currency basis without concentration;
//!   `K_b = sqrt(sum sum phi rho WS WS)` with the sub-curve correlation `phi`, the tenor correlation
//!   `rho` and the inflation and basis correlations; across currencies
//!   `sqrt(sum K_b^2 + sum sum gamma g S_b S_c)`, `g = min(CR) / max(CR)`.
//! - Vega: the same on `RW s` of the volatility tenors, inflation volatility correlated with them.
//! - Curvature: `CVR = SF(t) s`, inflation volatility summed into one CVR per currency,
//!   `max(sum CVR + lambda sqrt(...), 0)` scaled by `HVR_IR^-2`.
//!
//! The order of the sums is ORE's, so that the figures agree to the cent.

use crate::calibration::{Calibration, curvature_lambda, curvature_scaling};
use crate::crif::Tenor;
use crate::margin::Aggregated;
use crate::report::Side;

/// The volatility group of a currency for the interest rate risk weights (section D.1): regular
/// (1), low (2: JPY) or high (3: every other currency).
fn volatility_group(currency: &str) -> usize {
    const REGULAR: [&str; 14] = [
        "USD", "EUR", "GBP", "AUD", "CAD", "CHF", "DKK", "HKD", "KRW", "NOK", "NZD", "SEK", "SGD",
        "TWD",
    ];
    if REGULAR.contains(&currency) {
        1
    } else if currency == "JPY" {
        2
    } else {
        3
    }
}

fn tenor_index(tenor: Option<Tenor>) -> usize {
    tenor.map_or(0, |t| t as usize)
}

/// The concentration risk `max(1, sqrt(|sum s| / T))`.
fn concentration(net: f64, threshold: f64) -> f64 {
    (net.abs() / threshold).sqrt().max(1.0)
}

/// The sensitivities of one currency in a slice sorted by currency.
fn of<'s, 'a>(sensitivities: &'s [Aggregated<'a>], currency: &str) -> &'s [Aggregated<'a>] {
    let start = sensitivities.partition_point(|s| s.qualifier < currency);
    let end = sensitivities.partition_point(|s| s.qualifier <= currency);
    sensitivities.get(start..end).unwrap_or(&[])
}

/// The currencies of several sorted slices, sorted and unique.
fn currencies<'a>(slices: &[&[Aggregated<'a>]]) -> Vec<&'a str> {
    let mut all: Vec<&'a str> = slices
        .iter()
        .flat_map(|s| s.iter().map(|a| a.qualifier))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Per currency: `K_b`, the sum of its weighted sensitivities, its concentration risk.
struct Currency {
    margin: f64,
    sum: f64,
    concentration: f64,
}

/// `sqrt(sum_b K_b^2 + sum_b sum_c!=b gamma g_bc S_b S_c)` across currencies (section B.8(e)).
fn across_currencies(calibration: &Calibration, currencies: &[Currency]) -> f64 {
    let gamma = calibration.interest_rate.inter_currency;
    let mut total = 0.0;
    for (i, outer) in currencies.iter().enumerate() {
        total += outer.margin * outer.margin;
        let s_outer = outer.sum.min(outer.margin).max(-outer.margin);
        for inner in currencies.iter().take(i) {
            let s_inner = inner.sum.min(inner.margin).max(-inner.margin);
            let g = outer.concentration.min(inner.concentration)
                / outer.concentration.max(inner.concentration);
            total += 2.0 * s_outer * s_inner * gamma * g;
        }
    }
    total.max(0.0).sqrt()
}

/// Interest rate delta margin from the yield curve, inflation and cross-currency basis
/// sensitivities, each sorted by currency (section B.8, parameters of section D).
pub(crate) fn delta(
    calibration: &Calibration,
    curve: &[Aggregated<'_>],
    inflation: &[Aggregated<'_>],
    basis: &[Aggregated<'_>],
) -> f64 {
    let ir = &calibration.interest_rate;
    let mut per_currency = Vec::new();
    for currency in currencies(&[curve, inflation, basis]) {
        let group = volatility_group(currency);
        let curve = of(curve, currency);
        let inflation = of(inflation, currency).first();
        let basis = of(basis, currency);
        // Concentration (section B.8(c)): the curve and inflation sensitivities, not the basis.
        let mut net = 0.0;
        for s in curve {
            net += s.amount_usd;
        }
        if let Some(i) = inflation {
            net += i.amount_usd;
        }
        let cr = concentration(net, ir.delta_threshold[ir.category(currency)]);
        let weighted: Vec<f64> = curve
            .iter()
            .map(|s| ir.delta_weight[group][tenor_index(s.tenor)] * s.amount_usd * cr)
            .collect();
        let mut squared = 0.0;
        let mut sum = 0.0;
        for (k, (ws_k, s_k)) in weighted.iter().zip(curve).enumerate() {
            sum += ws_k;
            squared += ws_k * ws_k;
            for (ws_l, s_l) in weighted.iter().zip(curve).take(k) {
                // phi: sub-curves (Label2); rho: tenors (Label1).
                let phi = if s_k.label2 == s_l.label2 {
                    1.0
                } else {
                    ir.sub_curve
                };
                let rho = if s_k.tenor == s_l.tenor {
                    1.0
                } else {
                    ir.tenor_correlation[tenor_index(s_k.tenor)][tenor_index(s_l.tenor)]
                };
                squared += 2.0 * phi * rho * ws_k * ws_l;
            }
        }
        let mut ws_inflation = 0.0;
        if let Some(i) = inflation {
            ws_inflation = ir.inflation_weight * i.amount_usd * cr;
            sum += ws_inflation;
            squared += ws_inflation * ws_inflation;
            for ws in &weighted {
                squared += 2.0 * ir.inflation * ws * ws_inflation;
            }
        }
        if !basis.is_empty() {
            // The basis is weighted without concentration risk.
            let amount: f64 = basis.iter().map(|s| s.amount_usd).sum();
            let ws_basis = ir.basis_weight * amount;
            sum += ws_basis;
            squared += ws_basis * ws_basis;
            for ws in &weighted {
                squared += 2.0 * ir.basis * ws * ws_basis;
            }
            if inflation.is_some() {
                squared += 2.0 * ir.basis * ws_inflation * ws_basis;
            }
        }
        per_currency.push(Currency {
            margin: squared.max(0.0).sqrt(),
            sum,
            concentration: cr,
        });
    }
    across_currencies(calibration, &per_currency)
}

/// Interest rate vega margin from the swaption and inflation volatility sensitivities, each sorted
/// by currency (section B.10, parameters of section D).
pub(crate) fn vega(
    calibration: &Calibration,
    volatility: &[Aggregated<'_>],
    inflation: &[Aggregated<'_>],
) -> f64 {
    let ir = &calibration.interest_rate;
    let mut per_currency = Vec::new();
    for currency in currencies(&[volatility, inflation]) {
        let volatility = of(volatility, currency);
        let inflation = of(inflation, currency);
        let mut net = 0.0;
        for s in volatility.iter().chain(inflation) {
            net += s.amount_usd;
        }
        let cr = concentration(net, ir.vega_threshold[ir.category(currency)]);
        let weighted: Vec<f64> = volatility
            .iter()
            .map(|s| ir.vega_weight * s.amount_usd * cr)
            .collect();
        let mut squared = 0.0;
        let mut sum = 0.0;
        for (k, (ws_k, s_k)) in weighted.iter().zip(volatility).enumerate() {
            sum += ws_k;
            squared += ws_k * ws_k;
            for (ws_l, s_l) in weighted.iter().zip(volatility).take(k) {
                let rho = if s_k.tenor == s_l.tenor {
                    1.0
                } else {
                    ir.tenor_correlation[tenor_index(s_k.tenor)][tenor_index(s_l.tenor)]
                };
                squared += 2.0 * rho * ws_k * ws_l;
            }
        }
        let inflation_weighted: Vec<f64> = inflation
            .iter()
            .map(|s| ir.inflation_vega_weight * s.amount_usd * cr)
            .collect();
        for (k, ws_k) in inflation_weighted.iter().enumerate() {
            sum += ws_k;
            squared += ws_k * ws_k;
            for ws in &weighted {
                squared += 2.0 * ir.inflation_vega * ws_k * ws;
            }
            // Inflation volatilities of one currency correlate fully with each other.
            for ws_l in inflation_weighted.iter().take(k) {
                squared += 2.0 * ws_k * ws_l;
            }
        }
        per_currency.push(Currency {
            margin: squared.max(0.0).sqrt(),
            sum,
            concentration: cr,
        });
    }
    across_currencies(calibration, &per_currency)
}

/// Interest rate curvature margin (section B.11): `CVR = SF(t) s` of each volatility tenor and one
/// CVR per currency for inflation volatility, aggregated with squared correlations and scaled by
/// `HVR_IR^-2` (section B.11(d)).
pub(crate) fn curvature(
    calibration: &Calibration,
    volatility: &[Aggregated<'_>],
    inflation: &[Aggregated<'_>],
    side: Side,
) -> f64 {
    let sign = side.sign();
    let ir = &calibration.interest_rate;
    let mut per_currency = Vec::new();
    let mut sum_all = 0.0;
    let mut sum_abs = 0.0;
    for currency in currencies(&[volatility, inflation]) {
        let volatility = of(volatility, currency);
        let cvr: Vec<f64> = volatility
            .iter()
            .map(|s| {
                s.tenor
                    .map_or(0.0, |t| curvature_scaling(calibration.period, t))
                    * (s.amount_usd * sign)
            })
            .collect();
        let mut squared = 0.0;
        let mut sum = 0.0;
        for (k, (cvr_k, s_k)) in cvr.iter().zip(volatility).enumerate() {
            sum += cvr_k;
            sum_all += cvr_k;
            sum_abs += cvr_k.abs();
            squared += cvr_k * cvr_k;
            for (cvr_l, s_l) in cvr.iter().zip(volatility).take(k) {
                let rho = if s_k.tenor == s_l.tenor {
                    1.0
                } else {
                    ir.tenor_correlation[tenor_index(s_k.tenor)][tenor_index(s_l.tenor)]
                };
                squared += 2.0 * rho * rho * cvr_k * cvr_l;
            }
        }
        let mut inflation_cvr = 0.0;
        for s in of(inflation, currency) {
            inflation_cvr += s
                .tenor
                .map_or(0.0, |t| curvature_scaling(calibration.period, t))
                * (s.amount_usd * sign);
        }
        sum += inflation_cvr;
        sum_all += inflation_cvr;
        sum_abs += inflation_cvr.abs();
        squared += inflation_cvr * inflation_cvr;
        for c in &cvr {
            squared += 2.0 * ir.inflation_vega * ir.inflation_vega * inflation_cvr * c;
        }
        per_currency.push(Currency {
            margin: squared.max(0.0).sqrt(),
            sum,
            concentration: 1.0,
        });
    }
    let tolerance = 42.0 * f64::EPSILON;
    if sum_abs.abs() < tolerance * tolerance {
        return 0.0;
    }
    let theta = (sum_all / sum_abs).min(0.0);
    let gamma = ir.inter_currency;
    let mut total = 0.0;
    for (i, outer) in per_currency.iter().enumerate() {
        total += outer.margin * outer.margin;
        let s_outer = outer.sum.min(outer.margin).max(-outer.margin);
        for inner in per_currency.iter().take(i) {
            let s_inner = inner.sum.min(inner.margin).max(-inner.margin);
            total += 2.0 * s_outer * s_inner * gamma * gamma;
        }
    }
    let margin = sum_all + curvature_lambda(theta) * total.max(0.0).sqrt();
    ir.curvature_scaling * margin.max(0.0)
}
