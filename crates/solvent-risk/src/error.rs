//! Why a margin figure could not be computed.

use solvent_core::rounding::RoundingError;
use thiserror::Error;

/// A margin computation that cannot proceed: missing market data, an input the model cannot
/// price, or a non-finite figure (a bug, reported rather than hidden).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RiskError {
    /// The market gives no index price the computation needs.
    #[error("index.{name}: missing (needed for {needed_for})")]
    MissingIndex {
        /// Index name.
        name: String,
        /// What needed it.
        needed_for: String,
    },
    /// An option has no mark and no volatility to derive one from.
    #[error(
        "mark.{instrument}: missing, and vol.{underlying} has no smile to derive it (give one or the other)"
    )]
    MissingOptionMark {
        /// Instrument name.
        instrument: String,
        /// Its underlying.
        underlying: String,
    },
    /// An open-interest-scaled rule needs the instrument's open interest.
    #[error("open_interest.{instrument}: missing (margin rule {rule} scales with open interest)")]
    MissingOpenInterest {
        /// Instrument name.
        instrument: String,
        /// Rule name.
        rule: String,
    },
    /// A volatility smile or option input the pricer refused (`path` within the market).
    #[error("{path}: {problem}")]
    Pricing {
        /// Where the input came from.
        path: String,
        /// The pricer's complaint.
        problem: String,
    },
    /// A figure that cannot be represented.
    #[error(transparent)]
    Rounding(#[from] RoundingError),
    /// A what-if trade that cannot be applied.
    #[error("--trade {trade:?}: {problem}")]
    InvalidTrade {
        /// The trade as written.
        trade: String,
        /// What is wrong.
        problem: String,
    },
    /// A market figure (a mark, an index) at which the account cannot be valued: `path` is
    /// within the market, so the caller names the market's origin in front of it.
    #[error("{path}: {problem}")]
    Market {
        /// Where in the market (`mark.BTC-PERPETUAL`, `index.BTC`).
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A figure that leaves `Decimal`'s range: reported instead of the panic of an unchecked
    /// operation. Input bounds make it unreachable for accepted files; it remains for figures
    /// built from several accepted inputs at once (a sum over many positions, a conversion at
    /// two extreme prices).
    #[error("{what}: the figure exceeds the range Solvent computes exactly")]
    Overflow {
        /// The figure being computed.
        what: String,
    },
    /// A position the model cannot handle as described.
    #[error("{path}: {problem}")]
    Unsupported {
        /// Where.
        path: String,
        /// What.
        problem: String,
    },
}

impl RiskError {
    /// Whether the error is about the market snapshot (its paths are relative to the market), so
    /// a caller can name the market's origin in front of it.
    #[must_use]
    pub fn is_about_market(&self) -> bool {
        matches!(
            self,
            Self::MissingIndex { .. }
                | Self::MissingOptionMark { .. }
                | Self::Market { .. }
                | Self::MissingOpenInterest { .. }
                | Self::Pricing { .. }
        )
    }
}
