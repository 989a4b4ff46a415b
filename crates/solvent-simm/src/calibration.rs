//! The calibration of one ISDA SIMM version: risk weights, correlations, concentration thresholds
//! and historical volatility ratios, read from the TOML files under `calibration/` (generated from
//! Open Source Risk Engine's transcription of ISDA's published tables by
//! `scripts/simm/extract_calibration.py`; each file names its source).
//!
//! Only the 10-day margin period of risk is carried. The tables are turned once into arrays indexed
//! by bucket, so a margin calculation does no string look-up.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::crif::{Bucket, Tenor};
use crate::error::CalibrationError;

/// A SIMM version whose calibration Solvent ships.
///
/// Each is the version of Open Source Risk Engine's `SimmConfiguration_ISDA_V*` of the same name
/// (its transcription of ISDA's published tables); the names are ORE's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Version {
    /// ISDA SIMM 1.3.38 (ORE's name for the calibration of version 1.3 in force in 2017, its
    /// `SimmConfiguration_ISDA_V1_3_38`, formerly `ISDA_V338`); 10-day margin period only.
    V1_3_38,
    /// ISDA SIMM 2.0 (effective 4 December 2017); 10-day margin period only.
    V2_0,
    /// ISDA SIMM 2.1 (effective 1 December 2018); 10-day margin period only.
    V2_1,
    /// ISDA SIMM 2.2 (effective 2 December 2019).
    V2_2,
    /// ISDA SIMM 2.3 (effective 7 December 2020).
    V2_3,
    /// ISDA SIMM 2.3.8, ORE's name for ISDA SIMM 2.4 (effective 1 December 2021).
    V2_3_8,
    /// ISDA SIMM 2.5 (effective 3 December 2022).
    V2_5,
    /// ISDA SIMM 2.5A (2.5 with its 2023 recalibration).
    V2_5A,
    /// ISDA SIMM 2.6 (effective 2 December 2023).
    V2_6,
    /// ORE's SIMM 2.6.5 (which ORE also reads for "2.7").
    V2_6_5,
    /// ISDA SIMM 2.7 with the December 2024 recalibration (ORE's "2.7+2412").
    V2_7,
    /// ISDA SIMM 2.8 with the June 2025 recalibration (ORE's "2.8+2506").
    V2_8,
    /// ISDA SIMM 2.8 with the December 2025 recalibration (ORE's "2.8+2512").
    V2_8_2512,
}

impl Version {
    /// Every version shipped, oldest first.
    pub const ALL: [Version; 13] = [
        Version::V1_3_38,
        Version::V2_0,
        Version::V2_1,
        Version::V2_2,
        Version::V2_3,
        Version::V2_3_8,
        Version::V2_5,
        Version::V2_5A,
        Version::V2_6,
        Version::V2_6_5,
        Version::V2_7,
        Version::V2_8,
        Version::V2_8_2512,
    ];

    /// Parses a version's name: `1.3.38` (or ORE's alias `ISDA_V338`), `2.0` (or `ISDA_V344`),
    /// `2.1`, `2.2`, `2.3`, `2.3.8` (or `2.4`, which ORE reads as 2.3.8), `2.5`,
    /// `2.5A`, `2.6` (or `2.5.6`, ORE's alias), `2.6.5`, `2.7` (or `2.7+2412`), `2.8` (or
    /// `2.8+2506`), `2.8+2512`.
    ///
    /// Note: `2.7` is the December 2024 recalibration here; ORE reads a bare `2.7` as its 2.6.5.
    ///
    /// # Errors
    /// [`CalibrationError::NotShipped`] for a version ORE ships whose calibration Solvent does not
    /// carry (named, with the reason), [`CalibrationError::UnknownVersion`] for anything else.
    pub fn parse(text: &str) -> Result<Self, CalibrationError> {
        match text.trim() {
            "1.3.38" | "ISDA_V338" => Ok(Version::V1_3_38),
            "2.0" | "ISDA_V344" => Ok(Version::V2_0),
            "2.1" => Ok(Version::V2_1),
            "2.2" => Ok(Version::V2_2),
            "2.3" => Ok(Version::V2_3),
            "2.3.8" | "2.4" => Ok(Version::V2_3_8),
            "2.5" => Ok(Version::V2_5),
            "2.5A" | "2.5a" => Ok(Version::V2_5A),
            "2.6" | "2.5.6" => Ok(Version::V2_6),
            "2.6.5" => Ok(Version::V2_6_5),
            "2.7" | "2.7+2412" => Ok(Version::V2_7),
            "2.8" | "2.8+2506" => Ok(Version::V2_8),
            "2.8+2512" => Ok(Version::V2_8_2512),
            other => match NOT_SHIPPED.iter().find(|(name, _)| *name == other) {
                Some((name, reason)) => Err(CalibrationError::NotShipped(name, reason)),
                None => Err(CalibrationError::UnknownVersion(other.to_string())),
            },
        }
    }

    /// The version's name as ISDA and ORE write it.
    pub fn name(self) -> &'static str {
        match self {
            Version::V1_3_38 => "1.3.38",
            Version::V2_0 => "2.0",
            Version::V2_1 => "2.1",
            Version::V2_2 => "2.2",
            Version::V2_3 => "2.3",
            Version::V2_3_8 => "2.3.8",
            Version::V2_5 => "2.5",
            Version::V2_5A => "2.5A",
            Version::V2_6 => "2.6",
            Version::V2_6_5 => "2.6.5",
            Version::V2_7 => "2.7+2412",
            Version::V2_8 => "2.8+2506",
            Version::V2_8_2512 => "2.8+2512",
        }
    }

    /// Whether ORE's SIMM of this version has a one-day calibration (from 2.2 on; before, ORE's
    /// configuration takes no margin period and is always for 10 days).
    pub fn has_one_day(self) -> bool {
        !self.before_2_2()
    }

    /// Versions before 2.2 differ in structure (ORE's `SimmCalculator` and
    /// `SimmConfigurationBase` test `SimmVersion::V2_2`): non-qualifying credit names in a
    /// bucket correlate by qualifier, not by group (`Label2`), and equity bucket 12 has a
    /// curvature margin.
    pub(crate) fn before_2_2(self) -> bool {
        matches!(self, Version::V1_3_38 | Version::V2_0 | Version::V2_1)
    }

    fn source(self, period: MarginPeriod) -> Option<&'static str> {
        use MarginPeriod::{OneDay, TenDays};
        Some(match (self, period) {
            (Version::V1_3_38, TenDays) => include_str!("../calibration/v1_3_38.toml"),
            (Version::V2_0, TenDays) => include_str!("../calibration/v2_0.toml"),
            (Version::V2_1, TenDays) => include_str!("../calibration/v2_1.toml"),
            (Version::V1_3_38 | Version::V2_0 | Version::V2_1, OneDay) => return None,
            (Version::V2_2, TenDays) => include_str!("../calibration/v2_2.toml"),
            (Version::V2_3, TenDays) => include_str!("../calibration/v2_3.toml"),
            (Version::V2_3_8, TenDays) => include_str!("../calibration/v2_3_8.toml"),
            (Version::V2_5, TenDays) => include_str!("../calibration/v2_5.toml"),
            (Version::V2_5A, TenDays) => include_str!("../calibration/v2_5a.toml"),
            (Version::V2_6, TenDays) => include_str!("../calibration/v2_6.toml"),
            (Version::V2_6_5, TenDays) => include_str!("../calibration/v2_6_5.toml"),
            (Version::V2_7, TenDays) => include_str!("../calibration/v2_7.toml"),
            (Version::V2_8, TenDays) => include_str!("../calibration/v2_8.toml"),
            (Version::V2_8_2512, TenDays) => include_str!("../calibration/v2_8_2512.toml"),
            (Version::V2_2, OneDay) => include_str!("../calibration/v2_2_1d.toml"),
            (Version::V2_3, OneDay) => include_str!("../calibration/v2_3_1d.toml"),
            (Version::V2_3_8, OneDay) => include_str!("../calibration/v2_3_8_1d.toml"),
            (Version::V2_5, OneDay) => include_str!("../calibration/v2_5_1d.toml"),
            (Version::V2_5A, OneDay) => include_str!("../calibration/v2_5a_1d.toml"),
            (Version::V2_6, OneDay) => include_str!("../calibration/v2_6_1d.toml"),
            (Version::V2_6_5, OneDay) => include_str!("../calibration/v2_6_5_1d.toml"),
            (Version::V2_7, OneDay) => include_str!("../calibration/v2_7_1d.toml"),
            (Version::V2_8, OneDay) => include_str!("../calibration/v2_8_1d.toml"),
            (Version::V2_8_2512, OneDay) => include_str!("../calibration/v2_8_2512_1d.toml"),
        })
    }
}

/// Versions ORE's package accepts whose calibration Solvent does not carry, with the reason.
pub(crate) const NOT_SHIPPED: [(&str, &str); 6] = [
    (
        "1.0",
        "its structure differs (11 equity and 16 commodity buckets, no inflation volatility in curvature) and is not carried",
    ),
    (
        "ISDA_V315",
        "ORE's alias of 1.0, whose structure differs (11 equity and 16 commodity buckets) and is not carried",
    ),
    (
        "1.3",
        "its structure differs (11 equity and 16 commodity buckets) and is not carried",
    ),
    (
        "ISDA_V329",
        "ORE's alias of 1.3, whose structure differs (11 equity and 16 commodity buckets) and is not carried",
    ),
    (
        "1.1",
        "ORE reads the name but builds no configuration for it",
    ),
    (
        "1.2",
        "ORE reads the name but builds no configuration for it",
    ),
];

/// The margin period of risk of a calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum MarginPeriod {
    /// Ten days, SIMM's standard.
    TenDays,
    /// One day (ISDA SIMM Technical Paper, section I): one-day risk weights, curvature weights and
    /// volatility ratios, no concentration thresholds.
    OneDay,
}

impl MarginPeriod {
    /// Parses `10` or `1` (days).
    ///
    /// # Errors
    /// [`CalibrationError::UnknownMarginPeriod`] for anything else.
    pub fn parse(text: &str) -> Result<Self, CalibrationError> {
        match text.trim() {
            "10" => Ok(MarginPeriod::TenDays),
            "1" => Ok(MarginPeriod::OneDay),
            other => Err(CalibrationError::UnknownMarginPeriod(other.to_string())),
        }
    }
}

/// Number of bucket slots: index 0 is the residual bucket, 1..=17 the numbered ones.
pub(crate) const BUCKET_SLOTS: usize = 18;

/// Equity buckets 1..=12 and Residual; commodity buckets 1..=17 (SIMM sections G and H).
pub(crate) const EQUITY_BUCKETS: u8 = 12;
pub(crate) const COMMODITY_BUCKETS: u8 = 17;
/// Qualifying credit buckets 1..=12 and Residual; non-qualifying 1..=2 and Residual (sections E, F).
pub(crate) const CREDIT_QUALIFYING_BUCKETS: u8 = 12;
pub(crate) const CREDIT_NON_QUALIFYING_BUCKETS: u8 = 2;

/// A table indexed by bucket slot; `None` where the version defines no value.
type SparseTable = [Option<f64>; BUCKET_SLOTS];
/// A table indexed by bucket slot, complete for the buckets of its risk class (others 0).
pub(crate) type BucketTable = [f64; BUCKET_SLOTS];
/// An inter-bucket correlation matrix indexed by bucket slots (residual row and column 0).
pub(crate) type BucketMatrix = [[f64; BUCKET_SLOTS]; BUCKET_SLOTS];

/// The parameters of one risk class that is bucketed (equity, commodity).
#[derive(Debug, Clone)]
pub(crate) struct BucketedClass {
    /// Delta risk weight per bucket.
    pub delta_weight: BucketTable,
    /// Vega risk weight per bucket (equity's depend on the bucket, commodity's are flat).
    pub vega_weight: BucketTable,
    /// Correlation of two qualifiers in one bucket.
    pub intra: BucketTable,
    /// Correlation of two buckets.
    pub inter: BucketMatrix,
    /// Delta concentration threshold per bucket, USD.
    pub delta_threshold: BucketTable,
    /// Vega concentration threshold per bucket, USD.
    pub vega_threshold: BucketTable,
    /// Historical volatility ratio applied to vega.
    pub vega_hvr: f64,
}

/// The parameters of a credit risk class (sections E and F).
#[derive(Debug, Clone)]
pub(crate) struct CreditClass {
    /// Delta risk weight per bucket.
    pub delta_weight: BucketTable,
    /// Flat vega risk weight.
    pub vega_weight: f64,
    /// Correlation of two buckets (qualifying: a matrix; non-qualifying: every pair alike).
    pub inter: BucketMatrix,
    /// Correlation in one bucket: the same issuer (qualifying) or group (non-qualifying).
    pub same: f64,
    /// Correlation in one bucket otherwise.
    pub different: f64,
    /// Correlation of two sensitivities in the residual bucket.
    pub residual: f64,
    /// Delta concentration threshold per bucket, USD.
    pub delta_threshold: BucketTable,
    /// Vega concentration threshold, USD.
    pub vega_threshold: f64,
}

/// The interest rate parameters (section D).
#[derive(Debug, Clone)]
pub(crate) struct InterestRateClass {
    /// Delta risk weight by volatility group (1 regular, 2 low, 3 high) and tenor.
    pub delta_weight: [[f64; 12]; 4],
    /// Correlation of two tenors.
    pub tenor_correlation: [[f64; 12]; 12],
    /// Flat risk weights of inflation, cross-currency basis, volatility and inflation volatility.
    pub inflation_weight: f64,
    pub basis_weight: f64,
    pub vega_weight: f64,
    pub inflation_vega_weight: f64,
    /// Correlations: sub-curves of one currency, two currencies, inflation with the curve,
    /// basis with the curve and inflation, inflation volatility with volatility.
    pub sub_curve: f64,
    pub inter_currency: f64,
    pub inflation: f64,
    pub basis: f64,
    pub inflation_vega: f64,
    /// The scaling of the curvature margin: `HVR_IR^-2` (section B.11(d)) from 2.1 on, 2.3 in
    /// 2.0 (ORE's `curvatureMarginScaling`).
    pub curvature_scaling: f64,
    /// Concentration categories 2, 3 and 4 (the rest are 1), section J.
    pub categories: Vec<(usize, Vec<String>)>,
    /// Delta and vega concentration thresholds per category 1..=4, USD.
    pub delta_threshold: [f64; 5],
    pub vega_threshold: [f64; 5],
}

impl InterestRateClass {
    /// The concentration category of a currency (section J).
    pub(crate) fn category(&self, currency: &str) -> usize {
        self.categories
            .iter()
            .find(|(_, members)| members.iter().any(|c| c == currency))
            .map_or(1, |(k, _)| *k)
    }
}

/// The FX parameters.
#[derive(Debug, Clone)]
pub(crate) struct FxClass {
    pub high_volatility: Vec<String>,
    /// Delta risk weight by (calculation currency group, qualifier group); group 1 is high volatility.
    pub delta_weight: [[f64; 2]; 2],
    /// Delta correlation when the calculation currency is regular / high volatility.
    pub correlation_regular: [[f64; 2]; 2],
    pub correlation_high: [[f64; 2]; 2],
    /// Correlation of two different FX volatility qualifiers.
    pub vega_correlation: f64,
    pub vega_weight: f64,
    pub vega_hvr: f64,
    /// Concentration categories (1, 2, else 3) of currencies.
    pub category_1: Vec<String>,
    pub category_2: Vec<String>,
    /// Delta thresholds per category 1..=3, USD.
    pub delta_threshold: [f64; 3],
    /// Vega thresholds per pair of categories (1-1, 1-2, 1-3, 2-2, 2-3, 3-3), USD.
    pub vega_threshold: [f64; 6],
}

/// The calibration of one SIMM version, ready for calculation.
#[derive(Debug, Clone)]
pub struct Calibration {
    version: Version,
    pub(crate) period: MarginPeriod,
    pub(crate) equity: BucketedClass,
    pub(crate) commodity: BucketedClass,
    pub(crate) fx: FxClass,
    pub(crate) interest_rate: InterestRateClass,
    pub(crate) credit_qualifying: CreditClass,
    pub(crate) credit_non_qualifying: CreditClass,
    /// Base correlation: flat risk weight and the correlation of two index families.
    pub(crate) base_correlation_weight: f64,
    pub(crate) base_correlation_correlation: f64,
    /// Correlation between risk classes, indexed by [`crate::RiskClass`] order.
    pub(crate) risk_class_correlation: [[f64; 6]; 6],
    /// The calculation currency (USD unless set): its own FX delta is no risk, and its FX
    /// volatility group picks the FX risk weights and correlations (section I).
    pub(crate) calculation_currency: compact_str::CompactString,
}

#[derive(Deserialize)]
struct RawFx {
    high_volatility_currencies: Vec<String>,
    risk_weight: [[f64; 2]; 2],
    correlation_regular_calculation_currency: [[f64; 2]; 2],
    correlation_high_calculation_currency: [[f64; 2]; 2],
}

#[derive(Deserialize)]
struct RawConcentration {
    ir_categories: BTreeMap<String, Vec<String>>,
    fx_categories: BTreeMap<String, Vec<String>>,
    flat: BTreeMap<String, f64>,
    bucket: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
struct Raw {
    /// The interest rate curvature scaling where it is not `HVR_IR^-2` (2.0: 2.3).
    curvature_margin_scaling: Option<f64>,
    fx: RawFx,
    risk_weight_flat: BTreeMap<String, f64>,
    risk_weight_bucket: BTreeMap<String, BTreeMap<String, f64>>,
    risk_weight_label1: BTreeMap<String, BTreeMap<String, f64>>,
    historical_volatility_ratio: BTreeMap<String, f64>,
    risk_class_correlation: BTreeMap<String, f64>,
    inter_bucket_correlation: BTreeMap<String, BTreeMap<String, f64>>,
    intra_bucket_correlation: BTreeMap<String, BTreeMap<String, f64>>,
    scalar_correlation: BTreeMap<String, f64>,
    concentration: RawConcentration,
}

/// USD per unit of the thresholds' tables (they are in USD millions).
const THRESHOLD_UNIT_USD: f64 = 1_000_000.0;

impl Calibration {
    /// Loads the calibration shipped for `version`, 10-day margin period of risk.
    ///
    /// # Errors
    /// [`CalibrationError`] when the embedded table is malformed (a build defect, never input).
    pub fn load(version: Version) -> Result<Self, CalibrationError> {
        Self::load_for(version, MarginPeriod::TenDays)
    }

    /// Loads the calibration shipped for `version` and a margin period of risk.
    ///
    /// # Errors
    /// [`CalibrationError`] when the embedded table is malformed (a build defect, never input).
    pub fn load_for(version: Version, period: MarginPeriod) -> Result<Self, CalibrationError> {
        let source = version
            .source(period)
            .ok_or(CalibrationError::NoOneDay(version.name()))?;
        let raw: Raw = toml::from_str(source)
            .map_err(|e| CalibrationError::Malformed(version.name(), e.to_string()))?;
        let missing = |what: String| CalibrationError::Missing(version.name(), what);
        let sparse = |map: &BTreeMap<String, BTreeMap<String, f64>>, name: &str| {
            map.get(name)
                .ok_or_else(|| missing(name.to_string()))
                .map(sparse_table)
        };
        let flat = |name: &str| {
            raw.risk_weight_flat
                .get(name)
                .copied()
                .ok_or_else(|| missing(format!("risk_weight_flat.{name}")))
        };
        let hvr = |name: &str| {
            raw.historical_volatility_ratio
                .get(name)
                .copied()
                .ok_or_else(|| missing(format!("historical_volatility_ratio.{name}")))
        };
        let thresholds = &raw.concentration.bucket;
        let equity_slots: Vec<usize> = (0..=usize::from(EQUITY_BUCKETS)).collect();
        let commodity_slots: Vec<usize> = (1..=usize::from(COMMODITY_BUCKETS)).collect();
        let complete = |t: SparseTable,
                        slots: &[usize],
                        what: &str|
         -> Result<BucketTable, CalibrationError> {
            let mut out = [0.0; BUCKET_SLOTS];
            for &slot in slots {
                out[slot] = t[slot].ok_or_else(|| missing(format!("{what} bucket {slot}")))?;
            }
            Ok(out)
        };
        let matrix = |name: &str, slots: &[usize]| -> Result<BucketMatrix, CalibrationError> {
            let map = raw
                .inter_bucket_correlation
                .get(name)
                .ok_or_else(|| missing(format!("inter_bucket_correlation.{name}")))?;
            let sparse = sparse_matrix(map);
            let mut out = [[0.0; BUCKET_SLOTS]; BUCKET_SLOTS];
            for &i in slots.iter().filter(|s| **s > 0) {
                for &j in slots.iter().filter(|s| **s > 0 && **s != i) {
                    // The published matrix is symmetric (section B.8). ORE's transcription of
                    // 2.3.8 is not (commodity 9-10 is 0.14, 10-9 0.40; equity 1-2 is absent, 2-1
                    // 0.20); ORE's SimmCalculator::margin reads the entry whose row is the bucket
                    // whose name sorts later as text ("9" after "10", "2" after "1"), for both
                    // orders, so that entry is taken here too.
                    let (row, column) = if i.to_string() > j.to_string() {
                        (i, j)
                    } else {
                        (j, i)
                    };
                    out[i][j] = sparse[row][column].or(sparse[column][row]).ok_or_else(|| {
                        missing(format!("{name} correlation of buckets {i} and {j}"))
                    })?;
                }
            }
            Ok(out)
        };
        let scaled = |t: BucketTable| t.map(|x| x * THRESHOLD_UNIT_USD);
        // Residual equity buckets have an intra-bucket correlation of 0 (SIMM section G).
        let mut equity_intra = sparse(&raw.intra_bucket_correlation, "Equity")?;
        equity_intra[0] = Some(0.0);
        let equity = BucketedClass {
            delta_weight: complete(
                sparse(&raw.risk_weight_bucket, "Equity")?,
                &equity_slots,
                "equity weight",
            )?,
            vega_weight: complete(
                sparse(&raw.risk_weight_bucket, "EquityVol")?,
                &equity_slots,
                "equity vega weight",
            )?,
            intra: complete(equity_intra, &equity_slots, "equity correlation")?,
            inter: matrix("Equity", &equity_slots)?,
            delta_threshold: scaled(complete(
                sparse(thresholds, "Equity")?,
                &equity_slots,
                "equity threshold",
            )?),
            vega_threshold: scaled(complete(
                sparse(thresholds, "EquityVol")?,
                &equity_slots,
                "equity vega threshold",
            )?),
            vega_hvr: hvr("EquityVol")?,
        };
        let commodity_vega_weight = flat("CommodityVol")?;
        let commodity = BucketedClass {
            delta_weight: complete(
                sparse(&raw.risk_weight_bucket, "Commodity")?,
                &commodity_slots,
                "commodity weight",
            )?,
            vega_weight: [commodity_vega_weight; BUCKET_SLOTS],
            intra: complete(
                sparse(&raw.intra_bucket_correlation, "Commodity")?,
                &commodity_slots,
                "commodity correlation",
            )?,
            inter: matrix("Commodity", &commodity_slots)?,
            delta_threshold: scaled(complete(
                sparse(thresholds, "Commodity")?,
                &commodity_slots,
                "commodity threshold",
            )?),
            vega_threshold: scaled(complete(
                sparse(thresholds, "CommodityVol")?,
                &commodity_slots,
                "commodity vega threshold",
            )?),
            vega_hvr: hvr("CommodityVol")?,
        };
        let scalar = |name: &str| {
            raw.scalar_correlation
                .get(name)
                .copied()
                .ok_or_else(|| missing(format!("scalar_correlation.{name}")))
        };
        let flat_threshold = |name: &str| {
            raw.concentration
                .flat
                .get(name)
                .map(|t| t * THRESHOLD_UNIT_USD)
                .ok_or_else(|| missing(format!("concentration.flat.{name}")))
        };
        let qualifying_slots: Vec<usize> = (0..=usize::from(CREDIT_QUALIFYING_BUCKETS)).collect();
        let non_qualifying_slots: Vec<usize> =
            (0..=usize::from(CREDIT_NON_QUALIFYING_BUCKETS)).collect();
        let credit_qualifying = CreditClass {
            delta_weight: complete(
                sparse(&raw.risk_weight_bucket, "CreditQ")?,
                &qualifying_slots,
                "qualifying credit weight",
            )?,
            vega_weight: flat("CreditVol")?,
            inter: matrix("CreditQ", &qualifying_slots)?,
            same: scalar("crqSameIntraCorr")?,
            different: scalar("crqDiffIntraCorr")?,
            residual: scalar("crqResidualIntraCorr")?,
            delta_threshold: scaled(complete(
                sparse(thresholds, "CreditQ")?,
                &qualifying_slots,
                "qualifying credit threshold",
            )?),
            vega_threshold: flat_threshold("CreditVol")?,
        };
        let non_qualifying_inter = scalar("crnqInterCorr")?;
        // Section F: every pair of different non-qualifying buckets correlates alike.
        let mut inter = [[0.0; BUCKET_SLOTS]; BUCKET_SLOTS];
        let buckets = 1..=usize::from(CREDIT_NON_QUALIFYING_BUCKETS);
        for (i, row) in inter
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| buckets.contains(i))
        {
            for (j, cell) in row.iter_mut().enumerate() {
                if j != i && buckets.contains(&j) {
                    *cell = non_qualifying_inter;
                }
            }
        }
        let credit_non_qualifying = CreditClass {
            delta_weight: complete(
                sparse(&raw.risk_weight_bucket, "CreditNonQ")?,
                &non_qualifying_slots,
                "non-qualifying credit weight",
            )?,
            vega_weight: flat("CreditVolNonQ")?,
            inter,
            same: scalar("crnqSameIntraCorr")?,
            different: scalar("crnqDiffIntraCorr")?,
            residual: scalar("crnqResidualIntraCorr")?,
            delta_threshold: scaled(complete(
                sparse(thresholds, "CreditNonQ")?,
                &non_qualifying_slots,
                "non-qualifying credit threshold",
            )?),
            vega_threshold: flat_threshold("CreditVolNonQ")?,
        };
        let interest_rate = interest_rate(&raw, &missing)?;
        let base_correlation_weight = flat("BaseCorr")?;
        let base_correlation_correlation = scalar("basecorrCorr")?;
        let fx_threshold = |name: &str, n: usize| -> Result<Vec<f64>, CalibrationError> {
            let t = thresholds.get(name).ok_or_else(|| missing(name.into()))?;
            (1..=n)
                .map(|k| {
                    t.get(&k.to_string())
                        .map(|v| v * THRESHOLD_UNIT_USD)
                        .ok_or_else(|| missing(format!("concentration.bucket.{name}.{k}")))
                })
                .collect()
        };
        let delta_threshold = fx_threshold("FX", 3)?;
        let vega_threshold = fx_threshold("FXVol", 6)?;
        let category = |k: &str| {
            raw.concentration
                .fx_categories
                .get(k)
                .cloned()
                .unwrap_or_default()
        };
        let fx = FxClass {
            high_volatility: raw.fx.high_volatility_currencies.clone(),
            delta_weight: raw.fx.risk_weight,
            correlation_regular: raw.fx.correlation_regular_calculation_currency,
            correlation_high: raw.fx.correlation_high_calculation_currency,
            vega_correlation: scalar("fxCorr")?,
            vega_weight: flat("FXVol")?,
            vega_hvr: hvr("FXVol")?,
            category_1: category("1"),
            category_2: category("2"),
            delta_threshold: [delta_threshold[0], delta_threshold[1], delta_threshold[2]],
            vega_threshold: [
                vega_threshold[0],
                vega_threshold[1],
                vega_threshold[2],
                vega_threshold[3],
                vega_threshold[4],
                vega_threshold[5],
            ],
        };
        let mut risk_class_correlation = [[1.0; 6]; 6];
        for (i, a) in crate::RiskClass::ALL.iter().enumerate() {
            for (j, b) in crate::RiskClass::ALL.iter().enumerate() {
                if i != j {
                    let key = format!("{}:{}", a.ore_name(), b.ore_name());
                    risk_class_correlation[i][j] = raw
                        .risk_class_correlation
                        .get(&key)
                        .copied()
                        .ok_or_else(|| missing(format!("risk_class_correlation.{key}")))?;
                }
            }
        }
        let mut calibration = Calibration {
            version,
            period,
            equity,
            commodity,
            fx,
            interest_rate,
            credit_qualifying,
            credit_non_qualifying,
            base_correlation_weight,
            base_correlation_correlation,
            risk_class_correlation,
            calculation_currency: "USD".into(),
        };
        if period == MarginPeriod::OneDay {
            calibration.without_concentration();
        }
        Ok(calibration)
    }

    /// Technical Paper I.4: with a one-day margin period the concentration risk feature is
    /// disabled. Infinite thresholds make every concentration factor 1.
    fn without_concentration(&mut self) {
        let none = f64::INFINITY;
        for class in [&mut self.equity, &mut self.commodity] {
            class.delta_threshold = [none; BUCKET_SLOTS];
            class.vega_threshold = [none; BUCKET_SLOTS];
        }
        for class in [&mut self.credit_qualifying, &mut self.credit_non_qualifying] {
            class.delta_threshold = [none; BUCKET_SLOTS];
            class.vega_threshold = none;
        }
        self.fx.delta_threshold = [none; 3];
        self.fx.vega_threshold = [none; 6];
        self.interest_rate.delta_threshold = [none; 5];
        self.interest_rate.vega_threshold = [none; 5];
    }

    /// The same calibration for another calculation currency (USD by default). Amounts are still
    /// read in USD (`AmountUSD`) and margins are in USD; what changes is SIMM section I: the
    /// calculation currency's own FX delta is no risk, and its volatility group picks the FX risk
    /// weights and correlations.
    ///
    /// # Errors
    /// [`CalibrationError::CalculationCurrency`] unless `currency` is three ASCII capitals.
    pub fn with_calculation_currency(mut self, currency: &str) -> Result<Self, CalibrationError> {
        let currency = currency.trim();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CalibrationError::CalculationCurrency(currency.to_string()));
        }
        self.calculation_currency = currency.into();
        Ok(self)
    }

    /// The same calibration for margins in a result currency other than USD: every
    /// concentration threshold (in USD) times `usd_rate`, the price of one USD in that currency,
    /// as ORE's `SimmCalculator` converts them (`concThreshold *= fxRate("USD" + resultCcy)`).
    /// The amounts must be in that currency too ([`crate::crif::parse_in`]).
    ///
    /// # Errors
    /// [`CalibrationError::FxRate`] unless `usd_rate` is positive and finite.
    pub fn with_thresholds_in(mut self, usd_rate: f64) -> Result<Self, CalibrationError> {
        if !(usd_rate.is_finite() && usd_rate > 0.0) {
            return Err(CalibrationError::FxRate(usd_rate));
        }
        for class in [&mut self.equity, &mut self.commodity] {
            class.delta_threshold = class.delta_threshold.map(|t| t * usd_rate);
            class.vega_threshold = class.vega_threshold.map(|t| t * usd_rate);
        }
        for class in [&mut self.credit_qualifying, &mut self.credit_non_qualifying] {
            class.delta_threshold = class.delta_threshold.map(|t| t * usd_rate);
            class.vega_threshold *= usd_rate;
        }
        self.fx.delta_threshold = self.fx.delta_threshold.map(|t| t * usd_rate);
        self.fx.vega_threshold = self.fx.vega_threshold.map(|t| t * usd_rate);
        let ir = &mut self.interest_rate;
        ir.delta_threshold = ir.delta_threshold.map(|t| t * usd_rate);
        ir.vega_threshold = ir.vega_threshold.map(|t| t * usd_rate);
        Ok(self)
    }

    /// The calculation currency.
    pub fn calculation_currency(&self) -> &str {
        &self.calculation_currency
    }

    /// The margin period of risk.
    pub fn margin_period(&self) -> MarginPeriod {
        self.period
    }

    /// The version this calibration belongs to.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The FX group of a currency: 1 for the high-volatility group, else 0 (SIMM section I).
    pub(crate) fn fx_group(&self, currency: &str) -> usize {
        usize::from(self.fx.high_volatility.iter().any(|c| c == currency))
    }

    /// The concentration category of a currency: 1, 2 or 3 (SIMM section J).
    pub(crate) fn fx_category(&self, currency: &str) -> usize {
        if self.fx.category_1.iter().any(|c| c == currency) {
            1
        } else if self.fx.category_2.iter().any(|c| c == currency) {
            2
        } else {
            3
        }
    }

    /// The FX vega concentration threshold of a currency pair (SIMM section J, FX vega table).
    pub(crate) fn fx_vega_threshold(&self, pair: &str) -> f64 {
        let (a, b) = pair.split_at(pair.len().min(3));
        let (low, high) = {
            let (x, y) = (self.fx_category(a), self.fx_category(b));
            (x.min(y), x.max(y))
        };
        let index = match (low, high) {
            (1, 1) => 0,
            (1, 2) => 1,
            (1, 3) => 2,
            (2, 2) => 3,
            (2, 3) => 4,
            _ => 5,
        };
        self.fx.vega_threshold[index]
    }
}

/// The tenors in the order of [`Tenor`].
const TENOR_LABELS: [&str; 12] = [
    "2w", "1m", "3m", "6m", "1y", "2y", "3y", "5y", "10y", "15y", "20y", "30y",
];

fn interest_rate(
    raw: &Raw,
    missing: &dyn Fn(String) -> CalibrationError,
) -> Result<InterestRateClass, CalibrationError> {
    let get = |map: Option<&BTreeMap<String, f64>>, key: &str, what: &str| {
        map.and_then(|m| m.get(key))
            .copied()
            .ok_or_else(|| missing(format!("{what} {key}")))
    };
    let weights = raw.risk_weight_label1.get("IRCurve");
    let mut delta_weight = [[0.0; 12]; 4];
    for (group, row) in delta_weight.iter_mut().enumerate().skip(1) {
        for (cell, tenor) in row.iter_mut().zip(TENOR_LABELS) {
            *cell = get(weights, &format!("{group}:{tenor}"), "IRCurve risk weight")?;
        }
    }
    let correlations = raw.intra_bucket_correlation.get("IRCurve");
    let mut tenor_correlation = [[1.0; 12]; 12];
    for (i, row) in tenor_correlation.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            if i != j {
                let key = format!("{}:{}", TENOR_LABELS[i], TENOR_LABELS[j]);
                *cell = get(correlations, &key, "IRCurve tenor correlation")?;
            }
        }
    }
    let flat = Some(&raw.risk_weight_flat);
    let scalar = Some(&raw.scalar_correlation);
    let thresholds = |name: &str| -> Result<[f64; 5], CalibrationError> {
        let table = raw.concentration.bucket.get(name);
        let mut out = [0.0; 5];
        for (k, cell) in out.iter_mut().enumerate().skip(1) {
            *cell = get(table, &k.to_string(), name)? * THRESHOLD_UNIT_USD;
        }
        Ok(out)
    };
    let mut categories = Vec::new();
    for (key, members) in &raw.concentration.ir_categories {
        if let Ok(k) = key.parse::<usize>()
            && !members.is_empty()
        {
            categories.push((k, members.clone()));
        }
    }
    Ok(InterestRateClass {
        delta_weight,
        tenor_correlation,
        inflation_weight: get(flat, "Inflation", "risk weight")?,
        basis_weight: get(flat, "XCcyBasis", "risk weight")?,
        vega_weight: get(flat, "IRVol", "risk weight")?,
        inflation_vega_weight: get(flat, "InflationVol", "risk weight")?,
        sub_curve: get(scalar, "irSubCurveCorr", "correlation")?,
        inter_currency: get(scalar, "irInterCurrencyCorr", "correlation")?,
        inflation: get(scalar, "infCorr", "correlation")?,
        basis: get(scalar, "xccyCorr", "correlation")?,
        inflation_vega: get(scalar, "infVolCorr", "correlation")?,
        curvature_scaling: match raw.curvature_margin_scaling {
            Some(scaling) => scaling,
            None => get(
                Some(&raw.historical_volatility_ratio),
                "InterestRate",
                "historical volatility ratio",
            )?
            .powf(-2.0),
        },
        categories,
        delta_threshold: thresholds("IRCurve")?,
        vega_threshold: thresholds("IRVol")?,
    })
}

fn slot_of(key: &str) -> Option<usize> {
    match Bucket::parse(key) {
        Some(Bucket::Residual) => Some(0),
        Some(Bucket::Numbered(n)) if usize::from(n) < BUCKET_SLOTS => Some(usize::from(n)),
        _ => None,
    }
}

fn sparse_table(map: &BTreeMap<String, f64>) -> SparseTable {
    let mut table = [None; BUCKET_SLOTS];
    for (key, value) in map {
        if let Some(slot) = slot_of(key) {
            table[slot] = Some(*value);
        }
    }
    table
}

fn sparse_matrix(map: &BTreeMap<String, f64>) -> [[Option<f64>; BUCKET_SLOTS]; BUCKET_SLOTS] {
    let mut matrix = [[None; BUCKET_SLOTS]; BUCKET_SLOTS];
    for (key, value) in map {
        if let Some((a, b)) = key.split_once(':')
            && let (Some(i), Some(j)) = (slot_of(a), slot_of(b))
        {
            matrix[i][j] = Some(*value);
        }
    }
    matrix
}

/// `sqrt(365 / 14) / N^-1(0.99)`: turns a delta risk weight into the volatility `sigma` of a vega
/// sensitivity for a 10-day margin period (SIMM section B.10(b); Technical Paper I.2).
pub(crate) fn sigma_multiplier(period: MarginPeriod) -> f64 {
    // sqrt(365 / (1.4 x days)): 365 / 14 for ten days (Technical Paper I.2 for one day).
    let days = match period {
        MarginPeriod::TenDays => 14.0,
        MarginPeriod::OneDay => 1.4,
    };
    (365.0_f64 / days).sqrt() / NORMAL_QUANTILE_99
}

/// `N^-1(0.99)`.
const NORMAL_QUANTILE_99: f64 = 2.326_347_874_040_840_8;

/// `N^-1(0.995)`, the quantile behind the curvature lambda (SIMM section B.11(d)).
const NORMAL_QUANTILE_995: f64 = 2.575_829_303_548_9;

/// `lambda(theta) = (N^-1(0.995)^2 - 1)(1 + theta) - theta` (SIMM section B.11(d)).
pub(crate) fn curvature_lambda(theta: f64) -> f64 {
    (NORMAL_QUANTILE_995 * NORMAL_QUANTILE_995 - 1.0) * (1.0 + theta) - theta
}

/// The curvature scaling function `SF(t) = 0.5 * min(1, 14 / t)` with `t` in calendar days
/// (SIMM section B.11(b)); for one day `0.5 * min(1, 1.4 / t)` (Technical Paper I.3), written as
/// ORE writes them so the figures agree to the last bit.
pub(crate) fn curvature_scaling(period: MarginPeriod, tenor: Tenor) -> f64 {
    let horizon = match period {
        MarginPeriod::TenDays => 14.0,
        MarginPeriod::OneDay => 1.40,
    };
    let days = match tenor {
        Tenor::W2 => {
            return match period {
                MarginPeriod::TenDays => 0.5,
                MarginPeriod::OneDay => 0.5 / 10.0,
            };
        }
        Tenor::M1 => 365.0 / 12.0,
        Tenor::M3 => 3.0 * 365.0 / 12.0,
        Tenor::M6 => 6.0 * 365.0 / 12.0,
        Tenor::Y1 => 365.0,
        Tenor::Y2 => 2.0 * 365.0,
        Tenor::Y3 => 3.0 * 365.0,
        Tenor::Y5 => 5.0 * 365.0,
        Tenor::Y10 => 10.0 * 365.0,
        Tenor::Y15 => 15.0 * 365.0,
        Tenor::Y20 => 20.0 * 365.0,
        Tenor::Y30 => 30.0 * 365.0,
    };
    0.5 * horizon / days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_loads() {
        for version in Version::ALL {
            for period in [MarginPeriod::TenDays, MarginPeriod::OneDay] {
                let calibration = Calibration::load_for(version, period);
                if period == MarginPeriod::OneDay && !version.has_one_day() {
                    assert_eq!(
                        calibration.err(),
                        Some(CalibrationError::NoOneDay(version.name()))
                    );
                } else {
                    assert!(
                        calibration.is_ok(),
                        "{version:?} {period:?}: {calibration:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_interest_rate_curvature_scaling_follows_the_version() {
        // 2.0: SimmConfigurationBase's fixed 2.3; 2.1: 0.62^-2; 2.6: HVR_IR = 0.47 (ORE's sources).
        let scaling = |v| {
            Calibration::load(v)
                .unwrap()
                .interest_rate
                .curvature_scaling
        };
        assert_eq!(scaling(Version::V2_0), 2.3);
        assert_eq!(scaling(Version::V2_1), 0.62_f64.powf(-2.0));
        assert_eq!(scaling(Version::V2_6), 0.47_f64.powf(-2.0));
    }

    #[test]
    fn versions_ore_ships_but_solvent_does_not_carry_are_refused_by_name() {
        assert_eq!(
            Version::parse("1.3"),
            Err(CalibrationError::NotShipped(
                "1.3",
                "its structure differs (11 equity and 16 commodity buckets) and is not carried"
            ))
        );
        assert_eq!(Version::parse("ISDA_V338"), Ok(Version::V1_3_38));
        assert_eq!(
            Version::parse("9.9"),
            Err(CalibrationError::UnknownVersion("9.9".into()))
        );
        assert_eq!(Version::parse("2.4"), Ok(Version::V2_3_8));
        assert_eq!(Version::parse("2.8+2512"), Ok(Version::V2_8_2512));
    }

    #[test]
    fn sigma_multiplier_is_the_published_expression() {
        // sqrt(365 / 14) / N^-1(0.99) = 5.10603... / 2.32635... = 2.19486...
        assert!((sigma_multiplier(MarginPeriod::TenDays) - 2.194_864_712_328_153_7).abs() < 1e-14);
        // sqrt(365 / 1.4) / N^-1(0.99) = 16.1467... / 2.32635...
        assert!((sigma_multiplier(MarginPeriod::OneDay) - 6.940_771_646_887_217).abs() < 1e-12);
    }

    #[test]
    fn lambda_at_zero_is_the_quantile_squared_minus_one() {
        // 2.5758293035489^2 - 1 = 5.634896601...
        assert!((curvature_lambda(0.0) - 5.634_896_601_021_211).abs() < 1e-12);
    }
}
