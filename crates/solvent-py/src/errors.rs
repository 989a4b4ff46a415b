//! Solvent's errors as Python exceptions. The classes live in `solvent/_errors.py` (so that
//! they can inherit from both `SolventError` and the builtin they refine, such as `ValueError`);
//! this module builds instances of them carrying the field, the problem and the origin.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use solvent_core::InputError;
use solvent_pricing::PricingError;
use solvent_risk::RiskError;

/// The exception classes of `solvent._errors`, by the name Python knows them by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `InputError`: a portfolio, market, venue, event or argument Solvent refuses.
    Input,
    /// `MoneyAsFloatError`: money given as a binary float.
    MoneyAsFloat,
    /// `VenueNotFoundError`: neither a file nor a shipped venue of that name.
    VenueNotFound,
    /// `RiskError`: valid input whose margin cannot be computed (missing market data).
    Risk,
    /// `PricingError`: Black-76 inputs out of the model's domain, or no implied volatility.
    Pricing,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Self::Input => "InputError",
            Self::MoneyAsFloat => "MoneyAsFloatError",
            Self::VenueNotFound => "VenueNotFoundError",
            Self::Risk => "RiskError",
            Self::Pricing => "PricingError",
        }
    }
}

/// What an error says: the whole message, and the parts a program reads.
#[derive(Clone, Debug, Default)]
pub struct Problem {
    /// Where the input came from (a file path, `portfolio`, `market`, `events[3]`).
    pub origin: Option<String>,
    /// The field, as a path inside the input (`positions[0].size`, `index.BTC`, `strike`).
    pub field: Option<String>,
    /// What is wrong, in words.
    pub problem: String,
    /// For batches: the position of the offending element.
    pub index: Option<usize>,
}

impl Problem {
    /// A problem with `field` of the input from `origin`.
    pub fn at(origin: &str, field: &str, problem: impl Into<String>) -> Self {
        Self {
            origin: Some(origin.to_owned()),
            field: Some(field.to_owned()),
            problem: problem.into(),
            index: None,
        }
    }

    fn message(&self) -> String {
        let mut text = String::new();
        if let Some(origin) = &self.origin {
            text.push_str(origin);
            text.push_str(": ");
        }
        if let Some(field) = &self.field {
            text.push_str(field);
            text.push_str(": ");
        }
        text.push_str(&self.problem);
        text
    }
}

/// An instance of `solvent.<kind>` carrying `problem`.
pub fn raise(kind: Kind, problem: Problem) -> PyErr {
    Python::attach(|py| build(py, kind, &problem)).unwrap_or_else(|error| error)
}

fn build(py: Python<'_>, kind: Kind, problem: &Problem) -> Result<PyErr, PyErr> {
    let class = py.import("solvent._errors")?.getattr(kind.class_name())?;
    let keywords = PyDict::new(py);
    keywords.set_item("field", problem.field.as_deref())?;
    keywords.set_item("problem", &problem.problem)?;
    keywords.set_item("origin", problem.origin.as_deref())?;
    keywords.set_item("index", problem.index)?;
    let instance = class.call((problem.message(),), Some(&keywords))?;
    Ok(PyErr::from_value(instance))
}

/// A value the input checks refuse (`solvent_risk::checks`): an `InputError` naming its origin
/// and field.
pub fn refused(error: &solvent_risk::checks::InputRefused) -> PyErr {
    raise(
        Kind::Input,
        Problem {
            origin: Some(error.origin.clone()),
            field: (!error.field.is_empty()).then(|| error.field.clone()),
            problem: error.problem.clone(),
            index: None,
        },
    )
}

/// Each default the input checks filled in, or far mark they accepted, as a
/// `solvent.InputWarning` (Python's `warnings` machinery: shown once per place by default,
/// filtered or raised as the caller configures).
///
/// # Errors
/// When the warnings filter turns the warning into an exception.
pub fn warn(py: Python<'_>, warnings: &[String]) -> PyResult<()> {
    if warnings.is_empty() {
        return Ok(());
    }
    let category = py.import("solvent._errors")?.getattr("InputWarning")?;
    for warning in warnings {
        let text = std::ffi::CString::new(warning.replace('\0', " "))
            .map_err(|error| PyRuntimeError::new_err(error.to_string()))?;
        PyErr::warn(py, &category, &text, 1)?;
    }
    Ok(())
}

/// The core refuses a JSON float where it reads money with this phrase
/// (`solvent_core::money::DecimalVisitor`).
const FLOAT_MONEY: &str = "write decimals as strings";

/// A bad input, as the core names it. A float given for money becomes `MoneyAsFloatError`.
pub fn input(error: &InputError) -> PyErr {
    let float = error.problem.starts_with(FLOAT_MONEY);
    let problem = if float {
        format!(
            "money must not be a float: pass a str, int or decimal.Decimal ({})",
            error.problem
        )
    } else {
        error.problem.clone()
    };
    raise(
        if float {
            Kind::MoneyAsFloat
        } else {
            Kind::Input
        },
        Problem {
            origin: Some(error.file.clone()),
            field: Some(error.path.clone()),
            problem,
            index: None,
        },
    )
}

/// A margin that cannot be computed. Errors about market data are placed under `market_prefix`
/// (`market.` for the market inside a portfolio) and attributed to `market_origin`; others to
/// `portfolio_origin`.
pub fn risk(error: &RiskError, portfolio_origin: &str, market: (&str, &str)) -> PyErr {
    let (market_origin, market_prefix) = market;
    let (field, problem) = match error {
        RiskError::MissingIndex { name, needed_for } => (
            format!("index.{name}"),
            format!("missing (needed for {needed_for})"),
        ),
        RiskError::MissingOptionMark {
            instrument,
            underlying,
        } => (
            format!("mark.{instrument}"),
            format!(
                "missing, and vol.{underlying} has no smile to derive it (give one or the other)"
            ),
        ),
        RiskError::MissingOpenInterest { instrument, rule } => (
            format!("open_interest.{instrument}"),
            format!("missing (margin rule {rule} scales with open interest)"),
        ),
        RiskError::Pricing { path, problem }
        | RiskError::Market { path, problem }
        | RiskError::Unsupported { path, problem } => (path.clone(), problem.clone()),
        RiskError::InvalidTrade { trade, problem } => {
            (format!("trades[{trade:?}]"), problem.clone())
        }
        RiskError::Overflow { what } => (
            what.clone(),
            "the figure exceeds the range Solvent computes exactly".to_owned(),
        ),
        RiskError::Rounding(inner) => (String::new(), inner.to_string()),
    };
    let (origin, field) = if error.is_about_market() {
        (market_origin, format!("{market_prefix}{field}"))
    } else {
        (portfolio_origin, field)
    };
    let kind = if matches!(error, RiskError::InvalidTrade { .. }) {
        Kind::Input
    } else {
        Kind::Risk
    };
    raise(
        kind,
        Problem {
            origin: Some(origin.to_owned()),
            field: (!field.is_empty()).then_some(field),
            problem,
            index: None,
        },
    )
}

/// A Black-76 input or result the pricer refuses, naming the argument (and the element of a
/// batch).
pub fn pricing(error: &PricingError) -> PyErr {
    let (index, inner) = match error {
        PricingError::BatchElement { index, source } => (Some(*index), source.as_ref()),
        other => (None, other),
    };
    let field = match inner {
        PricingError::NonFinite { field, .. }
        | PricingError::NotPositive { field, .. }
        | PricingError::Negative { field, .. }
        | PricingError::OutOfRange { field, .. }
        | PricingError::LengthMismatch { field, .. } => Some(field.name().to_owned()),
        PricingError::PriceBelowIntrinsic { .. }
        | PricingError::PriceAboveUpperBound { .. }
        | PricingError::NotAttainableAtExpiry { .. } => Some("price".to_owned()),
        _ => None,
    };
    raise(
        Kind::Pricing,
        Problem {
            origin: index.map(|index| format!("element {index}")),
            field,
            problem: inner.to_string(),
            index,
        },
    )
}

/// A broken promise inside Solvent (a figure that cannot be written): reported, not hidden.
pub fn internal(what: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(format!("solvent: internal error: {what}"))
}
