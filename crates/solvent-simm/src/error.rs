//! The errors of CRIF parsing and of loading a calibration.

use thiserror::Error;

/// A CRIF that cannot be read.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CrifError {
    /// The text has no header line.
    #[error("the CRIF is empty: expected a header line")]
    Empty,
    /// The header lacks a column SIMM needs.
    #[error("the CRIF header has no column {0}")]
    MissingColumn(&'static str),
    /// A field cannot be read.
    #[error("row {row}, column {column}: {message} (found '{value}')")]
    Field {
        /// 1-based line number (the header is row 1).
        row: usize,
        /// The column's name as the header writes it.
        column: String,
        /// The field as found.
        value: String,
        /// What was expected.
        message: String,
    },
    /// A SIMM risk type Solvent does not compute yet.
    #[error(
        "row {row}: risk type {risk_type} is not covered yet (covered: the six risk classes; not add-ons)"
    )]
    NotCovered {
        /// 1-based line number.
        row: usize,
        /// The risk type as found.
        risk_type: String,
    },
    /// An FX rate that cannot be read.
    #[error(
        "FX rate '{0}': expected PAIR=RATE, e.g. EURUSD=1.085 (one EUR in USD), the rate positive"
    )]
    FxRate(String),
}

/// A calibration that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CalibrationError {
    /// No calibration is shipped for this version.
    #[error(
        "unknown SIMM version '{0}': expected 1.3.38, 2.0, 2.1, 2.2, 2.3, 2.3.8 (2.4), 2.5, 2.5A, 2.6, 2.6.5, 2.7 (2.7+2412), 2.8 (2.8+2506) or 2.8+2512"
    )]
    UnknownVersion(String),
    /// An FX rate that is not positive and finite.
    #[error("FX rate {0}: expected a positive finite number")]
    FxRate(f64),
    /// A calculation currency that is not an ISO code's three capitals.
    #[error("calculation currency '{0}': expected an ISO code such as USD or EUR")]
    CalculationCurrency(String),
    /// A version with no one-day calibration (before 2.2).
    #[error("SIMM version {0} has no one-day calibration: only --mpor 10")]
    NoOneDay(&'static str),
    /// A version ORE ships whose calibration Solvent does not carry.
    #[error("SIMM version {0} is not supported: {1}")]
    NotShipped(&'static str, &'static str),
    /// No calibration is shipped for this margin period of risk.
    #[error("unknown margin period of risk '{0}': expected 10 or 1 (days)")]
    UnknownMarginPeriod(String),
    /// The embedded table does not parse (a build defect).
    #[error("SIMM {0} calibration is malformed: {1}")]
    Malformed(&'static str, String),
    /// The embedded table lacks a parameter (a build defect).
    #[error("SIMM {0} calibration lacks {1}")]
    Missing(&'static str, String),
}
