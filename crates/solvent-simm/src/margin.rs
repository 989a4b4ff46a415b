//! The margin of one risk class in one product class of one netting set: delta and vega margins
//! (SIMM sections B.8 to B.10, with the concentration risk of section B.10 and the parameters of
//! sections G to J) and the curvature margin (section B.11). The figures follow ISDA's
//! formulas in the order Open Source Risk Engine evaluates them, so they agree to the last cent.
//!
//! Sensitivities arrive aggregated (one per qualifier, bucket and tenor) and sorted by bucket,
//! qualifier and tenor.

use crate::calibration::{
    BucketedClass, Calibration, CreditClass, curvature_lambda, curvature_scaling, sigma_multiplier,
};
use crate::crif::{Bucket, RiskType, Tenor};
use crate::report::Side;

/// An aggregated sensitivity: the sum of the CRIF rows with the same qualifier, bucket and tenor.
#[derive(Debug, Clone)]
pub(crate) struct Aggregated<'a> {
    pub qualifier: &'a str,
    pub bucket: Bucket,
    pub tenor: Option<Tenor>,
    pub label2: &'a str,
    pub amount_usd: f64,
}

/// The parameters that turn one sensitivity into a weighted one.
struct Weights {
    risk_weight: f64,
    /// `sigma` of a vega (B.10(b)); 1 for a delta.
    sigma: f64,
}

fn bucketed(calibration: &Calibration, risk_type: RiskType) -> Option<&BucketedClass> {
    match risk_type {
        RiskType::Equity | RiskType::EquityVol => Some(&calibration.equity),
        RiskType::Commodity | RiskType::CommodityVol => Some(&calibration.commodity),
        _ => None,
    }
}

fn credit(calibration: &Calibration, risk_type: RiskType) -> Option<&CreditClass> {
    match risk_type {
        RiskType::CreditQ | RiskType::CreditVol => Some(&calibration.credit_qualifying),
        RiskType::CreditNonQ | RiskType::CreditVolNonQ => Some(&calibration.credit_non_qualifying),
        _ => None,
    }
}

/// The FX delta risk weight of a currency against the calculation currency (section I).
fn fx_weight(calibration: &Calibration, calculation: &str, currency: &str) -> f64 {
    calibration.fx.delta_weight[calibration.fx_group(calculation)][calibration.fx_group(currency)]
}

fn weights(calibration: &Calibration, risk_type: RiskType, s: &Aggregated<'_>) -> Weights {
    let slot = s.bucket.slot();
    match risk_type {
        RiskType::Fx => Weights {
            risk_weight: fx_weight(calibration, &calibration.calculation_currency, s.qualifier),
            sigma: 1.0,
        },
        RiskType::FxVol => {
            // sigma of an FX vega is the FX delta risk weight of the pair's two currencies (section I).
            let (first, second) = s.qualifier.split_at(s.qualifier.len().min(3));
            Weights {
                risk_weight: calibration.fx.vega_weight,
                sigma: sigma_multiplier(calibration.period) * fx_weight(calibration, second, first),
            }
        }
        RiskType::Equity | RiskType::Commodity => Weights {
            risk_weight: bucketed(calibration, risk_type).map_or(0.0, |c| c.delta_weight[slot]),
            sigma: 1.0,
        },
        RiskType::EquityVol | RiskType::CommodityVol => {
            let class = bucketed(calibration, risk_type);
            Weights {
                risk_weight: class.map_or(0.0, |c| c.vega_weight[slot]),
                sigma: sigma_multiplier(calibration.period)
                    * class.map_or(0.0, |c| c.delta_weight[slot]),
            }
        }
        // Credit vega is already a volatility-weighted sensitivity: no sigma (section B.10).
        RiskType::CreditQ | RiskType::CreditNonQ => Weights {
            risk_weight: credit(calibration, risk_type).map_or(0.0, |c| c.delta_weight[slot]),
            sigma: 1.0,
        },
        RiskType::CreditVol | RiskType::CreditVolNonQ => Weights {
            risk_weight: credit(calibration, risk_type).map_or(0.0, |c| c.vega_weight),
            sigma: 1.0,
        },
        RiskType::BaseCorr => Weights {
            risk_weight: calibration.base_correlation_weight,
            sigma: 1.0,
        },
        // Interest rates are weighted in their own module.
        RiskType::IrCurve
        | RiskType::Inflation
        | RiskType::XccyBasis
        | RiskType::IrVol
        | RiskType::InflationVol => Weights {
            risk_weight: 0.0,
            sigma: 1.0,
        },
    }
}

fn historical_volatility_ratio(calibration: &Calibration, risk_type: RiskType) -> f64 {
    match risk_type {
        RiskType::FxVol => calibration.fx.vega_hvr,
        RiskType::EquityVol => calibration.equity.vega_hvr,
        RiskType::CommodityVol => calibration.commodity.vega_hvr,
        _ => 1.0,
    }
}

/// The concentration threshold of a qualifier, USD (section J).
fn threshold(calibration: &Calibration, risk_type: RiskType, s: &Aggregated<'_>) -> f64 {
    let slot = s.bucket.slot();
    match risk_type {
        RiskType::Fx => calibration.fx.delta_threshold[calibration.fx_category(s.qualifier) - 1],
        RiskType::FxVol => calibration.fx_vega_threshold(s.qualifier),
        RiskType::Equity | RiskType::Commodity => {
            bucketed(calibration, risk_type).map_or(f64::MAX, |c| c.delta_threshold[slot])
        }
        RiskType::EquityVol | RiskType::CommodityVol => {
            bucketed(calibration, risk_type).map_or(f64::MAX, |c| c.vega_threshold[slot])
        }
        RiskType::CreditQ | RiskType::CreditNonQ => {
            credit(calibration, risk_type).map_or(f64::MAX, |c| c.delta_threshold[slot])
        }
        RiskType::CreditVol | RiskType::CreditVolNonQ => {
            credit(calibration, risk_type).map_or(f64::MAX, |c| c.vega_threshold)
        }
        // No concentration threshold: CR = 1. (Interest rates are computed in their own module.)
        RiskType::BaseCorr
        | RiskType::IrCurve
        | RiskType::Inflation
        | RiskType::XccyBasis
        | RiskType::IrVol
        | RiskType::InflationVol => f64::MAX,
    }
}

/// The correlation of two sensitivities in one bucket (sections G, H, I).
fn intra_correlation(
    calibration: &Calibration,
    risk_type: RiskType,
    a: &Aggregated<'_>,
    b: &Aggregated<'_>,
) -> f64 {
    match risk_type {
        RiskType::Fx => {
            // Section I: the correlation depends on the volatility groups of the two currencies
            // and of the calculation currency.
            let table = if calibration.fx_group(&calibration.calculation_currency) == 1 {
                &calibration.fx.correlation_high
            } else {
                &calibration.fx.correlation_regular
            };
            table[calibration.fx_group(a.qualifier)][calibration.fx_group(b.qualifier)]
        }
        _ if a.qualifier == b.qualifier
            && a.bucket == b.bucket
            && a.tenor == b.tenor
            && a.label2 == b.label2 =>
        {
            1.0
        }
        RiskType::CreditQ | RiskType::CreditVol => {
            // Section E: residual pairs at the residual correlation; in a bucket, the same issuer
            // and seniority (any tenor or Label2) at `same`, different issuers at `different`.
            let class = &calibration.credit_qualifying;
            if a.bucket == Bucket::Residual {
                class.residual
            } else if a.qualifier == b.qualifier {
                class.same
            } else {
                class.different
            }
        }
        RiskType::CreditNonQ | RiskType::CreditVolNonQ => {
            // Section F (since SIMM 2.2): in a bucket, names of the same group (Label2) at `same`;
            // before 2.2 the same name (qualifier), as ORE's SimmConfigurationBase::correlation.
            let class = &calibration.credit_non_qualifying;
            let same = if calibration.version().before_2_2() {
                a.qualifier == b.qualifier
            } else {
                a.label2 == b.label2
            };
            if a.bucket == Bucket::Residual {
                class.residual
            } else if same {
                class.same
            } else {
                class.different
            }
        }
        RiskType::BaseCorr => calibration.base_correlation_correlation,
        _ if a.qualifier == b.qualifier => 1.0,
        RiskType::FxVol => calibration.fx.vega_correlation,
        _ => bucketed(calibration, risk_type).map_or(0.0, |c| c.intra[a.bucket.slot()]),
    }
}

fn inter_correlation(calibration: &Calibration, risk_type: RiskType, a: Bucket, b: Bucket) -> f64 {
    if let Some(class) = credit(calibration, risk_type) {
        return class.inter[a.slot()][b.slot()];
    }
    bucketed(calibration, risk_type).map_or(0.0, |c| c.inter[a.slot()][b.slot()])
}

/// The bucket sums of one risk type: `K_b` and `sum WS` (or `sum CVR`) per bucket.
struct BucketSums {
    bucket: Bucket,
    margin: f64,
    sum: f64,
    /// Sum over qualifiers of the absolute sum of their CVR (curvature only).
    sum_abs: f64,
}

/// Splits sensitivities sorted by bucket into runs of one bucket.
fn bucket_runs<'s, 'a>(
    sensitivities: &'s [Aggregated<'a>],
) -> impl Iterator<Item = &'s [Aggregated<'a>]> {
    sensitivities.chunk_by(|a, b| a.bucket == b.bucket)
}

/// Splits sensitivities sorted by qualifier within a bucket into runs of one qualifier.
fn qualifier_runs<'s, 'a>(
    bucket: &'s [Aggregated<'a>],
) -> impl Iterator<Item = &'s [Aggregated<'a>]> {
    bucket.chunk_by(|a, b| a.qualifier == b.qualifier)
}

/// Delta or vega margin of one risk class (sections B.8(b)-(e), B.10(c)-(f)):
/// `WS_k = RW_k s_k CR_k` (vega: `VR_k = HVR sigma_k s_k`, then `RW_k VR_k VCR_k`),
/// `K_b = sqrt(sum_k sum_l rho_kl f_kl WS_k WS_l)` with `f_kl = min(CR_k, CR_l) / max(CR_k, CR_l)`,
/// then `sqrt(sum_b K_b^2 + sum_b sum_c!=b gamma_bc S_b S_c) + K_residual`, `S_b` the bucket's
/// sum of WS bounded by `K_b`.
pub(crate) fn delta_or_vega(
    calibration: &Calibration,
    risk_type: RiskType,
    sensitivities: &[Aggregated<'_>],
) -> f64 {
    let hvr = historical_volatility_ratio(calibration, risk_type);
    let mut sums = Vec::new();
    let mut weighted: Vec<(f64, f64)> = Vec::new();
    for bucket in bucket_runs(sensitivities) {
        // The calculation currency's own FX delta is no risk (section I).
        let kept: Vec<&Aggregated<'_>> = bucket
            .iter()
            .filter(|s| {
                !(risk_type == RiskType::Fx && s.qualifier == calibration.calculation_currency)
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        weighted.clear();
        for qualifier in kept.chunk_by(|a, b| a.qualifier == b.qualifier) {
            // Concentration risk (B.10 (a), (c)): CR = max(1, sqrt(|sum_k s_k sigma_k HVR| / T)).
            let mut net = 0.0;
            for s in qualifier {
                net += s.amount_usd * weights(calibration, risk_type, s).sigma * hvr;
            }
            let concentration = (net.abs() / threshold(calibration, risk_type, qualifier[0]))
                .sqrt()
                .max(1.0);
            for s in qualifier {
                let w = weights(calibration, risk_type, s);
                let ws = w.risk_weight * (s.amount_usd * w.sigma * hvr) * concentration;
                weighted.push((ws, concentration));
            }
        }
        let mut squared = 0.0;
        let mut sum = 0.0;
        for (k, (ws_k, cr_k)) in weighted.iter().enumerate() {
            sum += ws_k;
            squared += ws_k * ws_k;
            for (l, (ws_l, cr_l)) in weighted.iter().enumerate().take(k) {
                let rho = intra_correlation(calibration, risk_type, kept[k], kept[l]);
                let f = cr_k.min(*cr_l) / cr_k.max(*cr_l);
                squared += 2.0 * rho * f * ws_k * ws_l;
            }
        }
        sums.push(BucketSums {
            bucket: bucket[0].bucket,
            margin: squared.max(0.0).sqrt(),
            sum,
            sum_abs: 0.0,
        });
    }
    across_buckets(calibration, risk_type, &sums, false)
}

/// `sqrt(sum_b K_b^2 + sum_b sum_c!=b g_bc S_b S_c)` over the non-residual buckets, where `g` is the
/// inter-bucket correlation (squared for curvature), `S_b = max(min(sum_b, K_b), -K_b)`.
fn non_residual_root(
    calibration: &Calibration,
    risk_type: RiskType,
    sums: &[&BucketSums],
    squared_correlation: bool,
) -> f64 {
    let mut total = 0.0;
    for (i, outer) in sums.iter().enumerate() {
        total += outer.margin * outer.margin;
        let s_outer = outer.sum.min(outer.margin).max(-outer.margin);
        for inner in sums.iter().take(i) {
            let s_inner = inner.sum.min(inner.margin).max(-inner.margin);
            let gamma = inter_correlation(calibration, risk_type, outer.bucket, inner.bucket);
            let gamma = if squared_correlation {
                gamma * gamma
            } else {
                gamma
            };
            total += 2.0 * s_outer * s_inner * gamma;
        }
    }
    total.max(0.0).sqrt()
}

fn across_buckets(
    calibration: &Calibration,
    risk_type: RiskType,
    sums: &[BucketSums],
    squared_correlation: bool,
) -> f64 {
    let regular: Vec<&BucketSums> = sums
        .iter()
        .filter(|b| b.bucket != Bucket::Residual)
        .collect();
    let residual = sums
        .iter()
        .find(|b| b.bucket == Bucket::Residual)
        .map_or(0.0, |b| b.margin);
    non_residual_root(calibration, risk_type, &regular, squared_correlation) + residual
}

/// ORE's test for a zero sum of absolute curvature risks: QuantLib's `close_enough(x, 0)`,
/// `|x| < (42 epsilon)^2`.
fn is_zero(x: f64) -> bool {
    let tolerance = 42.0 * f64::EPSILON;
    x.abs() < tolerance * tolerance
}

/// Curvature margin of one risk class from its vega sensitivities (section B.11):
/// `CVR_k = SF(t_k) sigma_k s_k` (zero in equity bucket 12 since SIMM 2.2, section B.11(b)),
/// `K_b = sqrt(sum_k sum_l rho_kl^2 CVR_k CVR_l)`, `theta = min(sum CVR / sum |CVR_q|, 0)`,
/// `lambda = (N^-1(0.995)^2 - 1)(1 + theta) - theta`, and
/// `max(sum CVR + lambda sqrt(sum_b K_b^2 + sum gamma_bc^2 S_b S_c), 0)` over the non-residual
/// buckets plus the same form for the residual bucket alone.
pub(crate) fn curvature(
    calibration: &Calibration,
    risk_type: RiskType,
    sensitivities: &[Aggregated<'_>],
    side: Side,
) -> f64 {
    let sign = side.sign();
    let mut sums = Vec::new();
    let mut cvr: Vec<f64> = Vec::new();
    for bucket in bucket_runs(sensitivities) {
        cvr.clear();
        let zero = risk_type == RiskType::EquityVol
            && bucket[0].bucket == Bucket::Numbered(12)
            && !calibration.version().before_2_2();
        // The denominator of theta: the absolute CVR of each qualifier (net over its tenors), of
        // each sensitivity for credit (ORE's risk-factor labels).
        let per_sensitivity = risk_type.is_credit();
        let mut sum_abs = 0.0;
        for qualifier in qualifier_runs(bucket) {
            let mut net = 0.0;
            for s in qualifier {
                let scaling = s
                    .tenor
                    .map_or(0.0, |t| curvature_scaling(calibration.period, t));
                let sigma = weights(calibration, risk_type, s).sigma;
                let value = if zero {
                    0.0
                } else {
                    scaling * ((s.amount_usd * sign) * sigma)
                };
                if per_sensitivity {
                    sum_abs += value.abs();
                } else {
                    net += value;
                }
                cvr.push(value);
            }
            sum_abs += net.abs();
        }
        let mut squared = 0.0;
        let mut sum = 0.0;
        for (k, cvr_k) in cvr.iter().enumerate() {
            sum += cvr_k;
            squared += cvr_k * cvr_k;
            for (l, cvr_l) in cvr.iter().enumerate().take(k) {
                let rho = intra_correlation(calibration, risk_type, &bucket[k], &bucket[l]);
                squared += 2.0 * rho * rho * cvr_k * cvr_l;
            }
        }
        sums.push(BucketSums {
            bucket: bucket[0].bucket,
            margin: squared.max(0.0).sqrt(),
            sum,
            sum_abs,
        });
    }
    let regular: Vec<&BucketSums> = sums
        .iter()
        .filter(|b| b.bucket != Bucket::Residual)
        .collect();
    let mut margin = 0.0;
    let total: f64 = regular.iter().map(|b| b.sum).sum();
    let total_abs: f64 = regular.iter().map(|b| b.sum_abs).sum();
    if !is_zero(total_abs) {
        let theta = (total / total_abs).min(0.0);
        let root = non_residual_root(calibration, risk_type, &regular, true);
        margin = (total + curvature_lambda(theta) * root).max(0.0);
    }
    if let Some(residual) = sums.iter().find(|b| b.bucket == Bucket::Residual)
        && !is_zero(residual.sum_abs)
    {
        let theta = (residual.sum / residual.sum_abs).min(0.0);
        margin += (residual.sum + curvature_lambda(theta) * residual.margin).max(0.0);
    }
    margin
}
