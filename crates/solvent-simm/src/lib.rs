//! ISDA SIMM (the Standard Initial Margin Model for non-cleared derivatives) from a CRIF.
//!
//! - [`crif`] reads the Common Risk Interchange Format into validated [`Sensitivity`] rows and
//!   [`AddOn`] rows; every error names its row and column.
//! - [`Calibration`] holds one version's risk weights, correlations, concentration thresholds and
//!   historical volatility ratios, shipped as data under `calibration/` with their source.
//! - [`simm`] computes, per netting set, the delta, vega, curvature and base correlation margins of
//!   each risk class (`margin` for the bucketed classes, `interest_rate` for one bucket per
//!   currency), aggregates them across risk classes and product classes and applies the add-ons
//!   ([`NettingSetSimm`]); [`simm_for_side`] gives the post side.
//!
//! - [`simm_under_regulations`] enforces the CRIF's collect and post regulations and reports each
//!   netting set under its winning regulation; [`schedule_im`] computes Schedule IM on the rows
//!   whose `im_model` is `Schedule`.
//!
//! Covered: every risk class (interest rate, credit qualifying and non-qualifying, equity,
//! commodity, FX: delta, vega, curvature, base correlation, concentration) in the four product
//! classes, for SIMM 1.3.38, 2.0, 2.1, 2.2, 2.3, 2.3.8 (2.4), 2.5, 2.5A, 2.6, 2.6.5, 2.7 (+2412), 2.8
//! (+2506) and 2.8+2512, at a 10-day margin period (and from 2.2 on a 1-day one). The calculation
//! currency is USD unless set ([`Calibration::with_calculation_currency`]); amounts are read from
//! `AmountUSD` and margins are in USD, or in another result currency from `Amount` and
//! `AmountCurrency` at given FX rates ([`crif::parse_in`], [`Calibration::with_thresholds_in`]).
//! The add-on rows (product class multipliers, fixed amounts,
//! notional factors) are applied as ORE applies them. The figures agree with Open Source Risk
//! Engine's `SimmCalculator` and `IMScheduleCalculator` to the cent; see `docs/simm.md`.
//!
//! ```
//! use solvent_simm::{Calibration, Version, crif, simm};
//!
//! let text = "PortfolioID\tProductClass\tRiskType\tQualifier\tBucket\tLabel1\tLabel2\tAmountUSD\n\
//!             desk\tEquity\tRisk_Equity\tBTC\t12\t\t\t1000000\n";
//! let rows = crif::parse(text).expect("a valid CRIF");
//! let calibration = Calibration::load(Version::V2_6).expect("shipped");
//! let result = simm(&rows, &calibration);
//! // One equity delta in bucket 12 below its threshold: RW 19 x 1,000,000 (SIMM 2.6 section G).
//! assert!((result[0].total - 19_000_000.0).abs() < 1e-6);
//! ```

mod calibration;
pub mod crif;
mod error;
mod interest_rate;
mod margin;
mod regulation;
mod report;
mod schedule;

pub use calibration::{Calibration, MarginPeriod, Version};
pub use crif::{AddOn, AddOnKind, Bucket, Crif, ProductClass, RiskType, Sensitivity, Tenor};
pub use error::{CalibrationError, CrifError};
pub use regulation::{
    RegulatedSimm, Regulation, RegulationError, Regulations, simm_under_regulations,
};
pub use report::{
    MarginTypes, NettingSetSimm, ProductClassSimm, RiskClass, RiskClassSimm, Side, simm,
    simm_for_side,
};
pub use schedule::{
    ScheduleError, ScheduleIm, ScheduleKind, ScheduleProductClass, ScheduleRow, parse_date,
    schedule_im, year_fraction,
};
