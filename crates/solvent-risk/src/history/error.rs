//! Why a price history or a historical-risk computation was refused.

use super::*;

/// Why a history could not be loaded or a statistic computed. Every file error names the
/// origin given by the caller, the line (1-based, as an editor shows it) and, where one field is
/// at fault, its column (1-based) and name.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HistoryError {
    /// The text has no header line.
    #[error("{origin}: empty file, expected the header `{expected}`")]
    MissingHeader {
        /// Where the text came from.
        origin: String,
        /// The header expected.
        expected: String,
    },
    /// The first line is not the expected header.
    #[error("{origin}:{line}: header is `{found}`, expected `{expected}`")]
    WrongHeader {
        /// Where the text came from.
        origin: String,
        /// Line number.
        line: u64,
        /// The header found.
        found: String,
        /// The header expected.
        expected: String,
    },
    /// The CSV itself is malformed (for example a row with a different number of fields).
    #[error("{origin}:{line}: malformed CSV: {problem}")]
    Malformed {
        /// Where the text came from.
        origin: String,
        /// Line number.
        line: u64,
        /// The CSV reader's complaint.
        problem: String,
    },
    /// A date field is not `YYYY-MM-DD`.
    #[error("{origin}:{line}:{column} ({name}): `{value}` is not a date (YYYY-MM-DD)")]
    BadDate {
        /// Where the text came from.
        origin: String,
        /// Line number.
        line: u64,
        /// Column number.
        column: usize,
        /// Column name.
        name: &'static str,
        /// The field as written.
        value: String,
    },
    /// A price field is not a number.
    #[error("{origin}:{line}:{column} ({name}): `{value}` is not a number")]
    BadNumber {
        /// Where the text came from.
        origin: String,
        /// Line number.
        line: u64,
        /// Column number.
        column: usize,
        /// Column name.
        name: &'static str,
        /// The field as written.
        value: String,
    },
    /// A price is zero, negative, infinite or NaN.
    #[error("{origin}:{line}:{column} ({name}): {value} is not a positive finite price")]
    NotPositive {
        /// Where the text came from.
        origin: String,
        /// Line number.
        line: u64,
        /// Column number.
        column: usize,
        /// Column name.
        name: &'static str,
        /// The value read.
        value: f64,
    },
    /// A volatility file's `symbol` is not the underlying it was given for.
    #[error(
        "{origin}:{line}:{column} (symbol): `{found}`, but the file was given for `{expected}`"
    )]
    SymbolMismatch {
        /// Where the text came from.
        origin: String,
        /// Line number.
        line: u64,
        /// Column number.
        column: usize,
        /// The symbol found.
        found: String,
        /// The underlying the caller named.
        expected: String,
    },
    /// A spot file's dates go backwards (spot files are in ascending date order).
    #[error(
        "{origin}:{line}: date {date} comes after {previous}: spot files must be in ascending date order"
    )]
    NotAscending {
        /// Where the text came from.
        origin: String,
        /// Line number.
        line: u64,
        /// The previous row's date.
        previous: Date,
        /// This row's date.
        date: Date,
    },
    /// The same date appears on two rows.
    #[error("{origin}:{line}: date {date} repeats line {first_line}")]
    DuplicateDate {
        /// Where the text came from.
        origin: String,
        /// Line number of the repeat.
        line: u64,
        /// Line number of the first occurrence.
        first_line: u64,
        /// The date.
        date: Date,
    },
    /// Consecutive rows are more than one day apart.
    #[error(
        "{origin}:{line}: gap in dates: {previous} is followed by {next} ({missing} days missing)"
    )]
    Gap {
        /// Where the text came from.
        origin: String,
        /// Line number of the row after the gap.
        line: u64,
        /// Last date before the gap.
        previous: Date,
        /// First date after the gap.
        next: Date,
        /// Number of missing days.
        missing: i64,
    },
    /// The text has a header but no data row (after dropping the last row, when asked).
    #[error("{origin}: no data rows")]
    NoRows {
        /// Where the text came from.
        origin: String,
    },
    /// No spot history was given.
    #[error("no spot history given")]
    NoSpot,
    /// Two texts were given for the same underlying and kind.
    #[error("{kind} history for `{underlying}` given twice ({first} and {second})")]
    DuplicateUnderlying {
        /// `spot` or `volatility`.
        kind: &'static str,
        /// The underlying.
        underlying: String,
        /// Origin of the first text.
        first: String,
        /// Origin of the second text.
        second: String,
    },
    /// A volatility text names an underlying with no spot text.
    #[error("{origin}: volatility for `{underlying}`, which has no spot history")]
    VolWithoutSpot {
        /// Where the text came from.
        origin: String,
        /// The underlying.
        underlying: String,
    },
    /// The spot histories share no date.
    #[error(
        "the spot histories share no date: the latest start is {latest_first}, the earliest end {earliest_last}"
    )]
    NoCommonDates {
        /// Latest first date among the histories.
        latest_first: Date,
        /// Earliest last date among the histories.
        earliest_last: Date,
    },
    /// Too little data for the computation.
    #[error("{what}: needs at least {needed}, has {available}")]
    TooShort {
        /// What is short, and of what.
        what: String,
        /// The minimum needed.
        needed: usize,
        /// What there is.
        available: usize,
    },
    /// A parameter outside its domain.
    #[error("{name} = {value}: {requirement}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// What it must satisfy.
        requirement: &'static str,
    },
    /// An underlying the history does not have.
    #[error("unknown underlying `{underlying}` (the history has {known})")]
    UnknownUnderlying {
        /// The name asked for.
        underlying: String,
        /// The names the history has, comma-separated.
        known: String,
    },
    /// A series whose variance is zero, so no volatility ratio or correlation exists.
    #[error("{what}: zero variance")]
    ZeroVariance {
        /// Which series, over which window.
        what: String,
    },
    /// A P&L, return or scenario figure that is not finite.
    #[error("{what} is {value}: must be finite")]
    NotFinite {
        /// Which figure.
        what: String,
        /// Its value.
        value: f64,
    },
    /// A statistical distribution could not be built (a bug: its parameter is a constant).
    #[error("statistics: {0}")]
    Statistics(String),
}
