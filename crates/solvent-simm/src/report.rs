//! SIMM per netting set with its breakdown: each product class's risk classes and their delta,
//! vega and curvature margins; the product class totals aggregated across risk classes with the
//! correlations `psi` (SIMM sections B.6-7 with the psi of section K); the netting set's total, the sum over product
//! classes (sections B.6-7). The totals by margin type and by risk class follow ORE's report: across risk
//! classes with `psi` inside a product class, summed across product classes.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use serde::Serialize;

use crate::calibration::Calibration;
use crate::crif::{AddOn, AddOnKind, Crif, ProductClass, RiskType, Sensitivity};
use crate::interest_rate;
use crate::margin::{Aggregated, curvature, delta_or_vega};

/// The side of the margin: what the calculating party collects (the CRIF's sensitivities as they
/// are) or posts (the same sensitivities negated, which changes only curvature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Side {
    /// Initial margin to collect.
    Collect,
    /// Initial margin to post.
    Post,
}

impl Side {
    pub(crate) fn sign(self) -> f64 {
        match self {
            Side::Collect => 1.0,
            Side::Post => -1.0,
        }
    }
}

/// A SIMM risk class (section B.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum RiskClass {
    /// Interest rate.
    InterestRate,
    /// Credit (qualifying).
    CreditQualifying,
    /// Credit (non-qualifying).
    CreditNonQualifying,
    /// Equity.
    Equity,
    /// Commodity.
    Commodity,
    /// FX.
    Fx,
}

impl RiskClass {
    /// The risk classes in the order of the `psi` table.
    pub const ALL: [RiskClass; 6] = [
        RiskClass::InterestRate,
        RiskClass::CreditQualifying,
        RiskClass::CreditNonQualifying,
        RiskClass::Equity,
        RiskClass::Commodity,
        RiskClass::Fx,
    ];

    /// The name ORE and the calibration tables use.
    pub fn ore_name(self) -> &'static str {
        match self {
            RiskClass::InterestRate => "InterestRate",
            RiskClass::CreditQualifying => "CreditQualifying",
            RiskClass::CreditNonQualifying => "CreditNonQualifying",
            RiskClass::Equity => "Equity",
            RiskClass::Commodity => "Commodity",
            RiskClass::Fx => "FX",
        }
    }

    fn index(self) -> usize {
        RiskClass::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The risk class of a CRIF risk type.
    pub fn of(risk_type: RiskType) -> RiskClass {
        match risk_type {
            RiskType::Fx | RiskType::FxVol => RiskClass::Fx,
            RiskType::Equity | RiskType::EquityVol => RiskClass::Equity,
            RiskType::Commodity | RiskType::CommodityVol => RiskClass::Commodity,
            RiskType::CreditQ | RiskType::CreditVol | RiskType::BaseCorr => {
                RiskClass::CreditQualifying
            }
            RiskType::CreditNonQ | RiskType::CreditVolNonQ => RiskClass::CreditNonQualifying,
            RiskType::IrCurve
            | RiskType::Inflation
            | RiskType::XccyBasis
            | RiskType::IrVol
            | RiskType::InflationVol => RiskClass::InterestRate,
        }
    }
}

/// Margins by margin type; `None` where the CRIF has no sensitivity of that type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MarginTypes {
    /// Delta margin.
    pub delta: Option<f64>,
    /// Vega margin.
    pub vega: Option<f64>,
    /// Curvature margin (present whenever vega is).
    pub curvature: Option<f64>,
    /// Base correlation margin (qualifying credit only).
    pub base_correlation: Option<f64>,
}

impl MarginTypes {
    /// `[delta, vega, curvature, base correlation]`.
    fn values(&self) -> [Option<f64>; 4] {
        [self.delta, self.vega, self.curvature, self.base_correlation]
    }

    fn from_values(values: [Option<f64>; 4]) -> Self {
        MarginTypes {
            delta: values[0],
            vega: values[1],
            curvature: values[2],
            base_correlation: values[3],
        }
    }

    fn plus(&self, other: &MarginTypes) -> MarginTypes {
        let (a, b) = (self.values(), other.values());
        MarginTypes::from_values([
            add(a[0], b[0]),
            add(a[1], b[1]),
            add(a[2], b[2]),
            add(a[3], b[3]),
        ])
    }

    /// The sum of the margin types present (a risk class's margin, section B.5).
    pub fn total(&self) -> f64 {
        self.values().iter().flatten().sum()
    }
}

/// One risk class's margin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskClassSimm {
    /// The risk class.
    pub risk_class: RiskClass,
    /// Its margins by type.
    pub margins: MarginTypes,
    /// Delta + vega + curvature.
    pub total: f64,
}

/// One product class's margin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductClassSimm {
    /// The product class.
    pub product_class: ProductClass,
    /// Its risk classes, in `psi` order.
    pub risk_classes: Vec<RiskClassSimm>,
    /// Each margin type aggregated across the risk classes with `psi`.
    pub margins: MarginTypes,
    /// `(multiplier - 1) x` the product class's margin, when a `Param_ProductClassMultiplier`
    /// row names it.
    pub additional: Option<f64>,
    /// `sqrt(sum_r sum_s psi_rs IM_r IM_s)` (sections B.6-7, psi of section K), plus `additional`.
    pub total: f64,
}

/// SIMM of one netting set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NettingSetSimm {
    /// The netting set (the CRIF's `PortfolioID`).
    pub netting_set: String,
    /// Its product classes.
    pub product_classes: Vec<ProductClassSimm>,
    /// Each risk class summed across product classes.
    pub risk_classes: Vec<RiskClassSimm>,
    /// Each margin type summed across product classes.
    pub margins: MarginTypes,
    /// The add-ons: product class multipliers, fixed amounts and notional factors.
    pub additional: Option<f64>,
    /// SIMM: the sum of the product classes' margins (sections B.6-7) and of the fixed and
    /// notional add-ons.
    pub total: f64,
}

/// `sqrt(sum_r sum_s psi_rs m_r m_s)` over the risk classes present.
fn psi_aggregate(calibration: &Calibration, values: &[(RiskClass, f64)]) -> f64 {
    let mut total = 0.0;
    for (i, (a, x)) in values.iter().enumerate() {
        total += x * x;
        for (b, y) in values.iter().take(i) {
            total += 2.0 * calibration.risk_class_correlation[a.index()][b.index()] * x * y;
        }
    }
    total.max(0.0).sqrt()
}

/// The interest rate margins of one product class (section D): the curve, inflation and basis
/// deltas together, the volatility and inflation volatility vegas and curvature together.
fn interest_rate_margins(
    calibration: &Calibration,
    by_risk_type: &[(RiskType, &[Aggregated<'_>])],
    side: Side,
) -> MarginTypes {
    let slice = |wanted: RiskType| -> &[Aggregated<'_>] {
        by_risk_type
            .iter()
            .find(|(r, _)| *r == wanted)
            .map_or(&[], |(_, s)| s)
    };
    let (curve, inflation, basis) = (
        slice(RiskType::IrCurve),
        slice(RiskType::Inflation),
        slice(RiskType::XccyBasis),
    );
    let (volatility, inflation_volatility) =
        (slice(RiskType::IrVol), slice(RiskType::InflationVol));
    let has_delta = !(curve.is_empty() && inflation.is_empty() && basis.is_empty());
    let has_vega = !(volatility.is_empty() && inflation_volatility.is_empty());
    MarginTypes {
        delta: has_delta.then(|| interest_rate::delta(calibration, curve, inflation, basis)),
        vega: has_vega.then(|| interest_rate::vega(calibration, volatility, inflation_volatility)),
        curvature: has_vega
            .then(|| interest_rate::curvature(calibration, volatility, inflation_volatility, side)),
        base_correlation: None,
    }
}

/// The margins of one product class from its sensitivities grouped by risk type.
fn product_class(
    calibration: &Calibration,
    product_class: ProductClass,
    by_risk_type: &[(RiskType, &[Aggregated<'_>])],
    side: Side,
) -> ProductClassSimm {
    let mut risk_classes = Vec::new();
    for class in RiskClass::ALL {
        let mut margins = MarginTypes::default();
        if class == RiskClass::InterestRate {
            margins = interest_rate_margins(calibration, by_risk_type, side);
        }
        for (risk_type, sensitivities) in by_risk_type {
            if risk_type.is_interest_rate() {
                continue;
            }
            if RiskClass::of(*risk_type) != class {
                continue;
            }
            if *risk_type == RiskType::BaseCorr {
                margins.base_correlation =
                    Some(delta_or_vega(calibration, *risk_type, sensitivities));
            } else if risk_type.is_vega() {
                margins.vega = Some(delta_or_vega(calibration, *risk_type, sensitivities));
                margins.curvature = Some(curvature(calibration, *risk_type, sensitivities, side));
            } else {
                margins.delta = Some(delta_or_vega(calibration, *risk_type, sensitivities));
            }
        }
        if margins.values().iter().any(Option::is_some) {
            risk_classes.push(RiskClassSimm {
                risk_class: class,
                total: margins.total(),
                margins,
            });
        }
    }
    let by_type = |k: usize| -> Option<f64> {
        let present: Vec<(RiskClass, f64)> = risk_classes
            .iter()
            .filter_map(|r| r.margins.values()[k].map(|m| (r.risk_class, m)))
            .collect();
        (!present.is_empty()).then(|| psi_aggregate(calibration, &present))
    };
    let margins = MarginTypes::from_values([by_type(0), by_type(1), by_type(2), by_type(3)]);
    let totals: Vec<(RiskClass, f64)> = risk_classes
        .iter()
        .map(|r| (r.risk_class, r.total))
        .collect();
    ProductClassSimm {
        product_class,
        total: psi_aggregate(calibration, &totals),
        risk_classes,
        margins,
        additional: None,
    }
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, None) => x,
        (None, y) => y,
    }
}

fn netting_set(
    calibration: &Calibration,
    name: &str,
    groups: &[(ProductClass, RiskType, Vec<Aggregated<'_>>)],
    add_ons: &[&AddOn],
    side: Side,
) -> NettingSetSimm {
    let mut product_classes = Vec::new();
    for class in ProductClass::ALL {
        let by_risk_type: Vec<(RiskType, &[Aggregated<'_>])> = groups
            .iter()
            .filter(|(p, _, _)| *p == class)
            .map(|(_, r, s)| (*r, s.as_slice()))
            .collect();
        if !by_risk_type.is_empty() {
            product_classes.push(product_class(calibration, class, &by_risk_type, side));
        }
    }
    let mut risk_classes: Vec<RiskClassSimm> = Vec::new();
    for class in RiskClass::ALL {
        let mut margins = MarginTypes::default();
        let mut present = false;
        for p in &product_classes {
            if let Some(r) = p.risk_classes.iter().find(|r| r.risk_class == class) {
                present = true;
                margins = margins.plus(&r.margins);
            }
        }
        if present {
            risk_classes.push(RiskClassSimm {
                risk_class: class,
                total: margins.total(),
                margins,
            });
        }
    }
    let mut margins = MarginTypes::default();
    for p in &product_classes {
        margins = margins.plus(&p.margins);
    }
    let mut total: f64 = product_classes.iter().map(|p| p.total).sum();
    let additional = apply_add_ons(&mut product_classes, add_ons);
    if let Some(a) = additional {
        total += a;
    }
    NettingSetSimm {
        netting_set: name.to_string(),
        total,
        product_classes,
        risk_classes,
        margins,
        additional,
    }
}

/// Applies a netting set's add-on rows as ORE does: a product class multiplier adds
/// `(factor - 1) x` the product class's margin (to that product class and to SIMM), a fixed amount
/// adds itself, a notional factor adds `notional x factor / 100` for the notional of its qualifier.
/// Rows of the same kind and qualifier are summed first. Returns the sum of the add-ons, `None`
/// when there are none.
fn apply_add_ons(product_classes: &mut [ProductClassSimm], add_ons: &[&AddOn]) -> Option<f64> {
    if add_ons.is_empty() {
        return None;
    }
    let mut additional = 0.0;
    for p in product_classes.iter_mut() {
        let factors: Vec<f64> = add_ons
            .iter()
            .filter_map(|a| match a.kind {
                AddOnKind::ProductClassMultiplier {
                    product_class,
                    factor,
                } if product_class == p.product_class => Some(factor),
                _ => None,
            })
            .collect();
        if !factors.is_empty() {
            let factor: f64 = factors.iter().sum();
            let extra = (factor - 1.0) * p.total;
            p.additional = Some(extra);
            p.total += extra;
            additional += extra;
        }
    }
    for a in add_ons {
        match &a.kind {
            AddOnKind::FixedAmount { amount_usd } => additional += amount_usd,
            AddOnKind::NotionalFactor {
                qualifier,
                factor_percent,
            } => {
                let notionals: Vec<f64> = add_ons
                    .iter()
                    .filter_map(|n| match &n.kind {
                        AddOnKind::Notional {
                            qualifier: q,
                            amount_usd,
                        } if q == qualifier => Some(*amount_usd),
                        _ => None,
                    })
                    .collect();
                if !notionals.is_empty() {
                    let notional: f64 = notionals.iter().sum();
                    additional += notional * factor_percent / 100.0;
                }
            }
            AddOnKind::ProductClassMultiplier { .. } | AddOnKind::Notional { .. } => {}
        }
    }
    Some(additional)
}

/// SIMM of every netting set in the sensitivities, in the order of their names.
///
/// Rows with the same netting set, product class, risk type, qualifier, bucket, tenor and Label2
/// are summed first, as ORE aggregates its CRIF.
pub fn simm(crif: &Crif, calibration: &Calibration) -> Vec<NettingSetSimm> {
    simm_for_side(crif, calibration, Side::Collect)
}

/// SIMM of every netting set for one side: [`simm`] is the collect side.
pub fn simm_for_side(crif: &Crif, calibration: &Calibration, side: Side) -> Vec<NettingSetSimm> {
    // Group by netting set first (a hash map, then the names sorted), so that the sort that
    // aggregates runs over one netting set's rows at a time.
    // A fixed hasher seed: the same input takes the same path on every run.
    let mut by_set: HashMap<&str, Vec<&Sensitivity>, FixedState> =
        HashMap::with_hasher(FixedState::with_seed(0));
    for s in &crif.sensitivities {
        by_set.entry(s.netting_set.as_str()).or_default().push(s);
    }
    let mut add_ons: HashMap<&str, Vec<&AddOn>, FixedState> =
        HashMap::with_hasher(FixedState::with_seed(0));
    for a in &crif.add_ons {
        add_ons.entry(a.netting_set.as_str()).or_default().push(a);
    }
    let mut names: Vec<&str> = by_set.keys().chain(add_ons.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        let set = by_set.remove(name).unwrap_or_default();
        let set_add_ons = add_ons.remove(name).unwrap_or_default();
        results.push(netting_set_of_rows(
            calibration,
            name,
            set,
            &set_add_ons,
            side,
        ));
    }
    results
}

/// SIMM of one netting set's rows, in any order.
pub(crate) fn netting_set_of_rows(
    calibration: &Calibration,
    name: &str,
    mut set: Vec<&Sensitivity>,
    add_ons: &[&AddOn],
    side: Side,
) -> NettingSetSimm {
    set.sort_by(|a, b| {
        (
            a.product_class,
            a.risk_type,
            a.bucket,
            &a.qualifier,
            a.tenor,
            &a.label2,
        )
            .cmp(&(
                b.product_class,
                b.risk_type,
                b.bucket,
                &b.qualifier,
                b.tenor,
                &b.label2,
            ))
    });
    netting_set_of(calibration, name, &set, add_ons, side)
}

/// SIMM of one netting set's rows, sorted by product class, risk type, bucket, qualifier, tenor
/// and Label2.
fn netting_set_of(
    calibration: &Calibration,
    name: &str,
    set: &[&Sensitivity],
    add_ons: &[&AddOn],
    side: Side,
) -> NettingSetSimm {
    let mut groups: Vec<(ProductClass, RiskType, Vec<Aggregated<'_>>)> = Vec::new();
    for group in
        set.chunk_by(|a, b| a.product_class == b.product_class && a.risk_type == b.risk_type)
    {
        let mut aggregated: Vec<Aggregated<'_>> = Vec::with_capacity(group.len());
        for s in group {
            match aggregated.last_mut() {
                Some(last)
                    if last.qualifier == s.qualifier
                        && last.bucket == s.bucket
                        && last.tenor == s.tenor
                        && last.label2 == s.label2 =>
                {
                    last.amount_usd += s.amount_usd;
                }
                _ => aggregated.push(Aggregated {
                    qualifier: &s.qualifier,
                    bucket: s.bucket,
                    tenor: s.tenor,
                    label2: &s.label2,
                    amount_usd: s.amount_usd,
                }),
            }
        }
        groups.push((group[0].product_class, group[0].risk_type, aggregated));
    }
    netting_set(calibration, name, &groups, add_ons, side)
}
