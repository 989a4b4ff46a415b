//! Price history and historical risk: filtered historical simulation, VaR and expected
//! shortfall with tail weights for attribution, Kupiec's backtest and correlation estimates.
//!
//! The flow is one-way and pure (no file reading, no clock; the caller reads the files):
//! 1. [`PriceHistory::from_texts`] parses daily spot closes (Binance kline CSV,
//!    `timestamp,open,high,low,close,volume`, ascending) and, optionally per underlying, Deribit
//!    DVOL (`date,symbol,open,high,low,close`, any order, percent), validates them (header, dates
//!    strictly increasing with no missing day, positive finite closes) and aligns every underlying
//!    on the dates they all share.
//! 2. [`PriceHistory::log_returns`] gives daily log returns; [`ewma_volatility`] the RiskMetrics
//!    EWMA volatility forecast for each of them.
//! 3. [`FilteredHistory`] turns the joint history into [`HistoricalScenario`]s by filtered
//!    historical simulation (Hull and White 1998; DESIGN.md 6.5): scenario `t` moves `S_u` by
//!    `exp(r_t,u * sqrt(h) * sigma_now,u / sigma_t,u)`. Joint dates keep the joint dependence
//!    of the underlyings, so no correlation matrix enters the scenarios.
//! 4. [`value_at_risk`] and [`expected_shortfall`] read a P&L vector; the shortfall carries the
//!    tail scenarios and their weights, so per-position tail losses add up to it.
//! 5. [`kupiec_pof`] tests a VaR model's exception count; [`var_backtest`] produces that count for
//!    a fixed portfolio over the history.
//! 6. [`correlation_matrix`] estimates Pearson or EWMA correlation of daily log returns (for the
//!    cross-underlying offset of DESIGN.md 6.5).
//!
//! Conventions: P&L is positive for a gain; a loss figure (VaR, ES) is positive for a loss and
//! may be negative when even the tail gains. Return `i` is `ln(S[i + 1] / S[i])` and is dated
//! `dates[i + 1]`, the day of the move. Implied volatilities are fractions (DVOL 47.53 -> 0.4753).

use jiff::civil::Date;
use nalgebra::DMatrix;
use statrs::distribution::{ChiSquared, ContinuousCDF};
use thiserror::Error;

#[cfg(test)]
mod tests;

/// RiskMetrics decay factor for daily data (J.P. Morgan/Reuters, "RiskMetrics — Technical
/// Document", 4th ed., 1996, section 5.3: lambda = 0.94 for the daily data set).
pub const RISKMETRICS_DAILY_LAMBDA: f64 = 0.94;

/// Number of initial returns whose sample variance seeds the EWMA recursion.
///
/// The recursion needs a starting variance. RiskMetrics leaves the choice open; 30 returns (about
/// one month) is long enough for a stable sample variance, and because the seed uses only the
/// first 30 returns, every forecast from return 30 on is made from earlier returns alone. Filtered
/// scenarios therefore start at return 30, which keeps backtests free of look-ahead.
pub const EWMA_SEED_RETURNS: usize = 30;

/// Header of a spot price file (Binance daily klines).
pub const SPOT_HEADER: [&str; 6] = ["timestamp", "open", "high", "low", "close", "volume"];

/// Header of an implied-volatility index file (Deribit DVOL daily candles, in percent).
pub const VOL_HEADER: [&str; 6] = ["date", "symbol", "open", "high", "low", "close"];

/// Snap distance for the tail size `n * (1 - level)`: within it of an integer, the integer is
/// used, so that `40 * (1 - 0.975)` (1.000000000000001 in binary floating point) is one scenario.
const TAIL_SIZE_SNAP: f64 = 1e-9;

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

/// One CSV text with the underlying it describes and where it came from (a file name, used in
/// error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesText<'a> {
    /// Underlying name, e.g. `BTC`. For a volatility file it must equal the file's `symbol`.
    pub underlying: &'a str,
    /// Where the text came from, e.g. `BTC-USDT.binance.daily.csv`.
    pub origin: &'a str,
    /// The CSV text.
    pub text: &'a str,
}

/// How to read the texts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Drop the last row of every spot text after validating it: the shared Binance files end
    /// with a partial day (2026-01-06, downloaded at about 12:00 UTC; prices README, anomaly A1).
    /// Volatility texts are never truncated.
    pub drop_last_spot_row: bool,
}

/// Daily closes of several underlyings on the dates they all share, with an optional implied
/// volatility index per underlying. Immutable once built; every series is positive and finite,
/// and the dates are consecutive days.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceHistory {
    underlyings: Vec<String>,
    dates: Vec<Date>,
    /// `closes[u][i]`: close of underlying `u` on `dates[i]`.
    closes: Vec<Vec<f64>>,
    /// `returns[u][i] = ln(closes[u][i + 1] / closes[u][i])`.
    returns: Vec<Vec<f64>>,
    /// `vols[u][i]`: implied volatility index (fraction) on `dates[i]`, where known. The known
    /// dates of one underlying form one contiguous run.
    vols: Vec<Vec<Option<f64>>>,
}

/// One validated row: its line, date and close.
#[derive(Clone, Copy, Debug)]
struct Row {
    line: u64,
    date: Date,
    close: f64,
}

/// Which file layout a text has.
#[derive(Clone, Copy)]
struct Layout {
    header: [&'static str; 6],
    date_column: usize,
    close_column: usize,
    symbol_column: Option<usize>,
}

const SPOT_LAYOUT: Layout = Layout {
    header: SPOT_HEADER,
    date_column: 0,
    close_column: 4,
    symbol_column: None,
};

const VOL_LAYOUT: Layout = Layout {
    header: VOL_HEADER,
    date_column: 0,
    close_column: 5,
    symbol_column: Some(1),
};

impl PriceHistory {
    /// Parses and aligns spot texts (one per underlying, Binance daily-kline layout, ascending
    /// dates) and volatility texts (at most one per underlying, Deribit DVOL layout, any date
    /// order, in percent). The history covers the dates every spot text has (their
    /// intersection, one contiguous run since no text has gaps); a volatility index is kept on
    /// the dates it covers within that run. Underlyings keep the order of `spot`.
    ///
    /// # Errors
    /// A [`HistoryError`] naming the origin, line and column of the first problem: a missing or
    /// wrong header, a malformed row, a bad date or number, a non-positive close, a spot file out
    /// of order, a repeated date, a missing day, a volatility `symbol` that is not the
    /// underlying; or an underlying given twice, a volatility with no spot, no shared dates, or
    /// fewer than two shared dates.
    pub fn from_texts(
        spot: &[SeriesText<'_>],
        vol: &[SeriesText<'_>],
        options: &LoadOptions,
    ) -> Result<Self, HistoryError> {
        if spot.is_empty() {
            return Err(HistoryError::NoSpot);
        }
        check_distinct(spot, "spot")?;
        check_distinct(vol, "volatility")?;
        let mut spot_rows = Vec::with_capacity(spot.len());
        for input in spot {
            let mut rows = parse_rows(input, SPOT_LAYOUT)?;
            check_spot_order(input.origin, &rows)?;
            if options.drop_last_spot_row {
                rows.pop();
            }
            if rows.is_empty() {
                return Err(HistoryError::NoRows {
                    origin: input.origin.to_owned(),
                });
            }
            spot_rows.push(rows);
        }
        let (first, last) = common_range(&spot_rows)?;
        let underlyings: Vec<String> = spot.iter().map(|s| s.underlying.to_owned()).collect();
        let mut dates = Vec::new();
        let mut closes = Vec::with_capacity(spot.len());
        for rows in &spot_rows {
            let run: Vec<Row> = rows
                .iter()
                .filter(|row| row.date >= first && row.date <= last)
                .copied()
                .collect();
            if dates.is_empty() {
                dates = run.iter().map(|row| row.date).collect();
            }
            closes.push(run.iter().map(|row| row.close).collect::<Vec<f64>>());
        }
        if dates.len() < 2 {
            return Err(HistoryError::TooShort {
                what: "shared dates of the spot histories".to_owned(),
                needed: 2,
                available: dates.len(),
            });
        }
        let mut vols = vec![vec![None; dates.len()]; underlyings.len()];
        for input in vol {
            let Some(u) = underlyings.iter().position(|name| name == input.underlying) else {
                return Err(HistoryError::VolWithoutSpot {
                    origin: input.origin.to_owned(),
                    underlying: input.underlying.to_owned(),
                });
            };
            let mut rows = parse_rows(input, VOL_LAYOUT)?;
            rows.sort_by_key(|row| row.date);
            check_consecutive(input.origin, &rows)?;
            vols[u] = align_vol(&dates, &rows);
        }
        let returns = closes.iter().map(|c| log_returns_of(c)).collect();
        Ok(Self {
            underlyings,
            dates,
            closes,
            returns,
            vols,
        })
    }

    /// The underlyings, in the order given.
    #[must_use]
    pub fn underlyings(&self) -> &[String] {
        &self.underlyings
    }

    /// Index of `underlying` in [`Self::underlyings`].
    ///
    /// # Errors
    /// [`HistoryError::UnknownUnderlying`] when the history does not have it.
    pub fn index_of(&self, underlying: &str) -> Result<usize, HistoryError> {
        self.underlyings
            .iter()
            .position(|name| name == underlying)
            .ok_or_else(|| HistoryError::UnknownUnderlying {
                underlying: underlying.to_owned(),
                known: self.underlyings.join(", "),
            })
    }

    /// The shared dates, consecutive days in ascending order (at least two).
    #[must_use]
    pub fn dates(&self) -> &[Date] {
        &self.dates
    }

    /// Index of `date` in [`Self::dates`], if the history has it.
    #[must_use]
    pub fn date_index(&self, date: Date) -> Option<usize> {
        self.dates.binary_search(&date).ok()
    }

    /// Closes of underlying number `u`, one per date.
    ///
    /// # Panics
    /// If `u` is not below `underlyings().len()` (an index from [`Self::index_of`] never is).
    #[must_use]
    pub fn closes(&self, u: usize) -> &[f64] {
        &self.closes[u]
    }

    /// Close of `underlying` on `date`, if both are in the history.
    #[must_use]
    pub fn close(&self, underlying: &str, date: Date) -> Option<f64> {
        let u = self.index_of(underlying).ok()?;
        Some(self.closes[u][self.date_index(date)?])
    }

    /// Daily log returns of underlying number `u`: element `i` is
    /// `ln(close[i + 1] / close[i])`, dated `dates()[i + 1]`; one fewer than the dates.
    ///
    /// # Panics
    /// If `u` is not below `underlyings().len()`.
    #[must_use]
    pub fn log_returns(&self, u: usize) -> &[f64] {
        &self.returns[u]
    }

    /// Implied volatility index of underlying number `u` (a fraction: DVOL 47.53 is 0.4753), one
    /// entry per date, `None` where the index has no value (or no index was given).
    ///
    /// # Panics
    /// If `u` is not below `underlyings().len()`.
    #[must_use]
    pub fn vol_levels(&self, u: usize) -> &[Option<f64>] {
        &self.vols[u]
    }

    /// The same history restricted to the dates from `first` to `last`, both included.
    ///
    /// # Errors
    /// [`HistoryError::TooShort`] when fewer than two dates remain.
    pub fn window(&self, first: Date, last: Date) -> Result<Self, HistoryError> {
        let start = self.dates.partition_point(|d| *d < first);
        let end = self.dates.partition_point(|d| *d <= last);
        let count = end.saturating_sub(start);
        if count < 2 {
            return Err(HistoryError::TooShort {
                what: format!("dates of the history between {first} and {last}"),
                needed: 2,
                available: count,
            });
        }
        Ok(Self {
            underlyings: self.underlyings.clone(),
            dates: self.dates[start..end].to_vec(),
            closes: self.closes.iter().map(|c| c[start..end].to_vec()).collect(),
            returns: self
                .returns
                .iter()
                .map(|r| r[start..end - 1].to_vec())
                .collect(),
            vols: self.vols.iter().map(|v| v[start..end].to_vec()).collect(),
        })
    }
}

/// Rejects two texts for the same underlying.
fn check_distinct(texts: &[SeriesText<'_>], kind: &'static str) -> Result<(), HistoryError> {
    for (i, text) in texts.iter().enumerate() {
        if let Some(earlier) = texts[..i].iter().find(|t| t.underlying == text.underlying) {
            return Err(HistoryError::DuplicateUnderlying {
                kind,
                underlying: text.underlying.to_owned(),
                first: earlier.origin.to_owned(),
                second: text.origin.to_owned(),
            });
        }
    }
    Ok(())
}

/// Reads every row of `input` in `layout`, checking the header, each date, each close and,
/// for volatility files, the symbol. Volatility closes are converted from percent to fractions.
fn parse_rows(input: &SeriesText<'_>, layout: Layout) -> Result<Vec<Row>, HistoryError> {
    let origin = input.origin;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(input.text.as_bytes());
    let mut record = csv::StringRecord::new();
    let expected = layout.header.join(",");
    if !read_record(&mut reader, &mut record, origin)? {
        return Err(HistoryError::MissingHeader {
            origin: origin.to_owned(),
            expected,
        });
    }
    if !record.iter().eq(layout.header.iter().copied()) {
        return Err(HistoryError::WrongHeader {
            origin: origin.to_owned(),
            line: line_of(&record),
            found: record.iter().collect::<Vec<_>>().join(","),
            expected,
        });
    }
    let mut rows = Vec::new();
    while read_record(&mut reader, &mut record, origin)? {
        let line = line_of(&record);
        let date = parse_date(&record, layout, origin, line)?;
        if let Some(column) = layout.symbol_column {
            let found = field(&record, column, origin, line)?;
            if found != input.underlying {
                return Err(HistoryError::SymbolMismatch {
                    origin: origin.to_owned(),
                    line,
                    column: column + 1,
                    found: found.to_owned(),
                    expected: input.underlying.to_owned(),
                });
            }
        }
        let close = parse_close(&record, layout, origin, line)?;
        // DVOL is quoted in percent (prices README, section 2).
        let close = if layout.symbol_column.is_some() {
            close / 100.0
        } else {
            close
        };
        rows.push(Row { line, date, close });
    }
    if rows.is_empty() {
        return Err(HistoryError::NoRows {
            origin: origin.to_owned(),
        });
    }
    Ok(rows)
}

/// Reads the next record; `false` at the end of the text.
fn read_record(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::StringRecord,
    origin: &str,
) -> Result<bool, HistoryError> {
    reader
        .read_record(record)
        .map_err(|error| HistoryError::Malformed {
            origin: origin.to_owned(),
            line: error.position().map_or(0, csv::Position::line),
            problem: match error.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("{len} fields, expected {expected_len} as in the header"),
                _ => error.to_string(),
            },
        })
}

fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

fn field<'r>(
    record: &'r csv::StringRecord,
    column: usize,
    origin: &str,
    line: u64,
) -> Result<&'r str, HistoryError> {
    record.get(column).ok_or_else(|| HistoryError::Malformed {
        origin: origin.to_owned(),
        line,
        problem: format!("no field {}", column + 1),
    })
}

fn parse_date(
    record: &csv::StringRecord,
    layout: Layout,
    origin: &str,
    line: u64,
) -> Result<Date, HistoryError> {
    let column = layout.date_column;
    let value = field(record, column, origin, line)?;
    // Exactly `YYYY-MM-DD`: jiff alone would also accept a date-time.
    let date = (value.len() == 10)
        .then(|| value.parse::<Date>().ok())
        .flatten();
    date.ok_or_else(|| HistoryError::BadDate {
        origin: origin.to_owned(),
        line,
        column: column + 1,
        name: layout.header[column],
        value: value.to_owned(),
    })
}

fn parse_close(
    record: &csv::StringRecord,
    layout: Layout,
    origin: &str,
    line: u64,
) -> Result<f64, HistoryError> {
    let column = layout.close_column;
    let name = layout.header[column];
    let value = field(record, column, origin, line)?;
    let close = value.parse::<f64>().map_err(|_| HistoryError::BadNumber {
        origin: origin.to_owned(),
        line,
        column: column + 1,
        name,
        value: value.to_owned(),
    })?;
    if close.is_finite() && close > 0.0 {
        Ok(close)
    } else {
        Err(HistoryError::NotPositive {
            origin: origin.to_owned(),
            line,
            column: column + 1,
            name,
            value: close,
        })
    }
}

/// A spot file must be in ascending order as written; then it must have no gaps.
fn check_spot_order(origin: &str, rows: &[Row]) -> Result<(), HistoryError> {
    for pair in rows.windows(2) {
        if pair[1].date < pair[0].date {
            return Err(HistoryError::NotAscending {
                origin: origin.to_owned(),
                line: pair[1].line,
                previous: pair[0].date,
                date: pair[1].date,
            });
        }
    }
    check_consecutive(origin, rows)
}

/// Sorted rows must be one day apart: no repeat, no gap.
fn check_consecutive(origin: &str, rows: &[Row]) -> Result<(), HistoryError> {
    for pair in rows.windows(2) {
        let (previous, next) = (pair[0], pair[1]);
        if next.date == previous.date {
            return Err(HistoryError::DuplicateDate {
                origin: origin.to_owned(),
                line: next.line,
                first_line: previous.line,
                date: next.date,
            });
        }
        if previous.date.tomorrow().ok() != Some(next.date) {
            return Err(HistoryError::Gap {
                origin: origin.to_owned(),
                line: next.line,
                previous: previous.date,
                next: next.date,
                missing: next.date.duration_since(previous.date).as_hours() / 24 - 1,
            });
        }
    }
    Ok(())
}

/// The dates all spot series share: from the latest start to the earliest end.
fn common_range(series: &[Vec<Row>]) -> Result<(Date, Date), HistoryError> {
    let mut first = Date::MIN;
    let mut last = Date::MAX;
    for rows in series {
        if let (Some(head), Some(tail)) = (rows.first(), rows.last()) {
            first = first.max(head.date);
            last = last.min(tail.date);
        }
    }
    if first > last {
        return Err(HistoryError::NoCommonDates {
            latest_first: first,
            earliest_last: last,
        });
    }
    Ok((first, last))
}

/// Volatility levels on `dates` (both sorted), `None` where `rows` has no value.
fn align_vol(dates: &[Date], rows: &[Row]) -> Vec<Option<f64>> {
    let mut out = vec![None; dates.len()];
    let mut j = 0;
    for (slot, date) in out.iter_mut().zip(dates) {
        while j < rows.len() && rows[j].date < *date {
            j += 1;
        }
        if j < rows.len() && rows[j].date == *date {
            *slot = Some(rows[j].close);
        }
    }
    out
}

/// `ln(b / a)` for consecutive positive finite levels; the difference of logarithms when the
/// ratio would overflow, so the result is always finite.
fn log_change(a: f64, b: f64) -> f64 {
    let ratio = (b / a).ln();
    if ratio.is_finite() {
        ratio
    } else {
        b.ln() - a.ln()
    }
}

fn log_returns_of(levels: &[f64]) -> Vec<f64> {
    levels.windows(2).map(|w| log_change(w[0], w[1])).collect()
}

/// EWMA volatility forecasts of a return series (built by [`ewma_volatility`]; never empty,
/// every element positive and finite).
#[derive(Clone, Debug, PartialEq)]
pub struct EwmaVolatility {
    sigma: Vec<f64>,
}

impl EwmaVolatility {
    /// The forecasts: `sigma()[t]` is the volatility forecast for return `t`, made from the
    /// returns before it; `sigma()[returns.len()]` is the forecast for the next, unseen return
    /// ("now"). One more element than the returns.
    #[must_use]
    pub fn sigma(&self) -> &[f64] {
        &self.sigma
    }

    /// The latest forecast: the volatility for the day after the last return.
    #[must_use]
    pub fn now(&self) -> f64 {
        // Never empty: the constructor pushes the seed.
        self.sigma[self.sigma.len() - 1]
    }
}

/// RiskMetrics EWMA volatility (J.P. Morgan/Reuters, "RiskMetrics — Technical Document", 4th
/// ed., 1996, section 5.2.1):
/// `sigma^2[t + 1] = lambda * sigma^2[t] + (1 - lambda) * r[t]^2` (zero-mean returns), seeded with
/// `sigma^2[0]` = the sample variance (mean removed, `n - 1` denominator) of the first
/// `seed_returns` returns ([`EWMA_SEED_RETURNS`] in the filtered simulation).
///
/// # Errors
/// [`HistoryError::InvalidParameter`] when `lambda` is not in (0, 1) or `seed_returns < 2`;
/// [`HistoryError::TooShort`] when there are fewer returns than `seed_returns`;
/// [`HistoryError::NotFinite`] for a non-finite return (or a variance that leaves the range of
/// `f64`); [`HistoryError::ZeroVariance`] when the seed returns are all equal.
pub fn ewma_volatility(
    returns: &[f64],
    lambda: f64,
    seed_returns: usize,
) -> Result<EwmaVolatility, HistoryError> {
    check_lambda(lambda)?;
    if seed_returns < 2 {
        return Err(HistoryError::InvalidParameter {
            name: "seed_returns",
            value: seed_returns.to_string(),
            requirement: "at least 2 (a sample variance needs two returns)",
        });
    }
    if returns.len() < seed_returns {
        return Err(HistoryError::TooShort {
            what: "returns to seed the EWMA variance".to_owned(),
            needed: seed_returns,
            available: returns.len(),
        });
    }
    if let Some((t, r)) = returns.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(HistoryError::NotFinite {
            what: format!("return {t}"),
            value: *r,
        });
    }
    let seed = &returns[..seed_returns];
    let mean = seed.iter().sum::<f64>() / seed_returns as f64;
    let variance =
        seed.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (seed_returns - 1) as f64;
    if variance <= 0.0 {
        return Err(HistoryError::ZeroVariance {
            what: format!("the first {seed_returns} returns (EWMA seed)"),
        });
    }
    let mut sigma = Vec::with_capacity(returns.len() + 1);
    let mut v = variance;
    sigma.push(v.sqrt());
    for (t, r) in returns.iter().enumerate() {
        v = lambda * v + (1.0 - lambda) * r * r;
        // Positive unless it underflows after thousands of zero returns; finite unless a
        // return near f64::MAX overflows its square.
        if !(v > 0.0 && v.is_finite()) {
            return Err(HistoryError::NotFinite {
                what: format!("EWMA variance after return {t}"),
                value: v,
            });
        }
        sigma.push(v.sqrt());
    }
    Ok(EwmaVolatility { sigma })
}

fn check_lambda(lambda: f64) -> Result<(), HistoryError> {
    if lambda > 0.0 && lambda < 1.0 {
        Ok(())
    } else {
        Err(HistoryError::InvalidParameter {
            name: "lambda",
            value: lambda.to_string(),
            requirement: "must be in (0, 1)",
        })
    }
}

fn check_level(name: &'static str, level: f64) -> Result<(), HistoryError> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(HistoryError::InvalidParameter {
            name,
            value: level.to_string(),
            requirement: "must be in (0, 1), e.g. 0.975",
        })
    }
}

/// Parameters of the filtered historical simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilteredHistoricalParams {
    /// EWMA decay factor, in (0, 1); [`RISKMETRICS_DAILY_LAMBDA`] by default.
    pub lambda: f64,
    /// Horizon `h` in days (at least 1); returns are scaled by `sqrt(h)`.
    pub horizon_days: u32,
    /// Keep only the most recent `N` scenarios (at least 1); `None`: all of them.
    pub window: Option<usize>,
}

impl Default for FilteredHistoricalParams {
    fn default() -> Self {
        Self {
            lambda: RISKMETRICS_DAILY_LAMBDA,
            horizon_days: 1,
            window: None,
        }
    }
}

impl FilteredHistoricalParams {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`HistoryError::InvalidParameter`] naming the first one out of its domain.
    pub fn validate(&self) -> Result<(), HistoryError> {
        check_lambda(self.lambda)?;
        if self.horizon_days == 0 {
            return Err(HistoryError::InvalidParameter {
                name: "horizon_days",
                value: "0".to_owned(),
                requirement: "must be at least 1",
            });
        }
        if self.window == Some(0) {
            return Err(HistoryError::InvalidParameter {
                name: "window",
                value: "0".to_owned(),
                requirement: "must be at least 1 scenario (or none for all)",
            });
        }
        Ok(())
    }
}

/// One filtered historical scenario: the joint move of every underlying, from the returns of one
/// past day rescaled to today's volatility.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoricalScenario {
    /// The historical day the moves come from (the day of the return).
    pub date: Date,
    /// Index of the return in [`PriceHistory::log_returns`] (`date` is `dates()[index + 1]`).
    pub index: usize,
    /// Per underlying (in [`PriceHistory::underlyings`] order): the factor applied to today's
    /// price, `exp(r_t * sqrt(h) * sigma_now / sigma_t)`.
    pub price_factor: Vec<f64>,
    /// Per underlying: the factor applied to every implied volatility of the underlying,
    /// `exp(d_t * sqrt(h) * nu_now / nu_t)` for the index's log change `d_t` filtered by its own
    /// EWMA volatility `nu`; `None` when the index has no filtered change for that day.
    pub vol_factor: Vec<Option<f64>>,
}

/// The volatility index's log changes of one underlying and their EWMA volatility.
#[derive(Clone, Debug)]
struct VolFilter {
    /// Return index of the first change.
    first: usize,
    /// `changes[k] = ln(vol[first + k + 1] / vol[first + k])`, dated like return `first + k`.
    changes: Vec<f64>,
    ewma: EwmaVolatility,
}

/// A [`PriceHistory`] prepared for filtered historical simulation (Hull and White, "Incorporating
/// volatility updating into the historical simulation method for value-at-risk", Journal of
/// Risk 1(1), 1998): each past return is rescaled by the ratio of the current EWMA volatility to
/// the volatility forecast for its own day, so that calm and stressed periods both speak at
/// today's volatility while keeping their joint shape.
///
/// Implied volatility (DESIGN.md 6.5 revalues options): Hull and White apply the same updating
/// to every market variable, so the index's daily log change is filtered by the index's own EWMA
/// volatility (its "vol of vol", same lambda, same seed rule), not by the price's: the price
/// ratio measures spot turbulence and would blow up implied-volatility moves taken from calm
/// days. The result scales every implied volatility of the underlying (a parallel relative
/// shift of the surface).
#[derive(Clone, Debug)]
pub struct FilteredHistory<'h> {
    history: &'h PriceHistory,
    params: FilteredHistoricalParams,
    sqrt_horizon: f64,
    price: Vec<EwmaVolatility>,
    vol: Vec<Option<VolFilter>>,
}

impl<'h> FilteredHistory<'h> {
    /// Computes the EWMA volatilities of every underlying (and volatility index) of `history`.
    ///
    /// # Errors
    /// [`HistoryError::InvalidParameter`] for invalid `params`; [`HistoryError::TooShort`] when
    /// the history has no more than [`EWMA_SEED_RETURNS`] returns (no scenario after the seed);
    /// [`HistoryError::ZeroVariance`] when an underlying did not move in the seed window.
    pub fn new(
        history: &'h PriceHistory,
        params: &FilteredHistoricalParams,
    ) -> Result<Self, HistoryError> {
        params.validate()?;
        let returns = history.dates.len() - 1;
        if returns <= EWMA_SEED_RETURNS {
            return Err(HistoryError::TooShort {
                what: "daily returns for filtered historical simulation (seed + 1)".to_owned(),
                needed: EWMA_SEED_RETURNS + 1,
                available: returns,
            });
        }
        let mut price = Vec::with_capacity(history.underlyings.len());
        for (u, name) in history.underlyings.iter().enumerate() {
            let ewma = ewma_volatility(&history.returns[u], params.lambda, EWMA_SEED_RETURNS)
                .map_err(|error| match error {
                    HistoryError::ZeroVariance { what } => HistoryError::ZeroVariance {
                        what: format!("{name}: {what}"),
                    },
                    other => other,
                })?;
            price.push(ewma);
        }
        let vol = history
            .vols
            .iter()
            .map(|levels| vol_filter(levels, params.lambda))
            .collect();
        Ok(Self {
            history,
            params: *params,
            sqrt_horizon: f64::from(params.horizon_days).sqrt(),
            price,
            vol,
        })
    }

    /// The history the scenarios come from.
    #[must_use]
    pub fn history(&self) -> &'h PriceHistory {
        self.history
    }

    /// EWMA volatility forecasts of underlying number `u`'s returns.
    ///
    /// # Panics
    /// If `u` is not below `history().underlyings().len()`.
    #[must_use]
    pub fn price_volatility(&self, u: usize) -> &EwmaVolatility {
        &self.price[u]
    }

    /// Number of scenarios available at the end of `dates()[date_index]` (before the window
    /// applies): the returns up to that date after the seed.
    #[must_use]
    pub fn available_scenarios(&self, date_index: usize) -> usize {
        date_index.saturating_sub(EWMA_SEED_RETURNS)
    }

    /// The scenarios as of the last date of the history.
    #[must_use]
    pub fn scenarios(&self) -> Vec<HistoricalScenario> {
        let last = self.history.dates.len() - 1;
        self.range_as_of(last)
            .map(|s| self.scenario(last, s))
            .collect()
    }

    /// The scenarios as of the end of `dates()[date_index]`: only returns up to that date, and
    /// volatilities forecast from them (no look-ahead), most recent `window` of them.
    ///
    /// # Errors
    /// [`HistoryError::TooShort`] when no scenario is available by then (within the seed) or
    /// `date_index` is beyond the history.
    pub fn scenarios_as_of(
        &self,
        date_index: usize,
    ) -> Result<Vec<HistoricalScenario>, HistoryError> {
        self.check_as_of(date_index)?;
        Ok(self
            .range_as_of(date_index)
            .map(|s| self.scenario(date_index, s))
            .collect())
    }

    fn check_as_of(&self, date_index: usize) -> Result<(), HistoryError> {
        if date_index >= self.history.dates.len() || self.available_scenarios(date_index) == 0 {
            return Err(HistoryError::TooShort {
                what: format!("dates before the as-of date index {date_index}"),
                needed: EWMA_SEED_RETURNS + 1,
                available: date_index.min(self.history.dates.len() - 1),
            });
        }
        Ok(())
    }

    /// Return indices of the scenarios as of `date_index` (returns `0..date_index` are known).
    fn range_as_of(&self, date_index: usize) -> std::ops::Range<usize> {
        let end = date_index;
        let start = match self.params.window {
            Some(window) => end.saturating_sub(window).max(EWMA_SEED_RETURNS),
            None => EWMA_SEED_RETURNS,
        };
        start..end.max(start)
    }

    fn scenario(&self, date_index: usize, s: usize) -> HistoricalScenario {
        let mut scenario = HistoricalScenario {
            date: self.history.dates[s + 1],
            index: s,
            price_factor: vec![0.0; self.price.len()],
            vol_factor: vec![None; self.price.len()],
        };
        self.fill(date_index, s, &mut scenario);
        scenario
    }

    /// Writes scenario `s` (a return index) as of the end of `dates()[date_index]` into `out`.
    fn fill(&self, date_index: usize, s: usize, out: &mut HistoricalScenario) {
        out.date = self.history.dates[s + 1];
        out.index = s;
        for (u, ewma) in self.price.iter().enumerate() {
            // sigma[date_index] is the forecast made at the end of dates[date_index].
            let ratio = ewma.sigma[date_index] / ewma.sigma[s];
            out.price_factor[u] = (self.history.returns[u][s] * self.sqrt_horizon * ratio).exp();
            out.vol_factor[u] = self.vol[u]
                .as_ref()
                .and_then(|filter| filter.factor(date_index, s, self.sqrt_horizon));
        }
    }
}

impl VolFilter {
    /// The filtered factor of return `s` as of `dates[date_index]`, if the index has a seeded
    /// change that day; `nu_now` is the latest forecast available by then.
    fn factor(&self, date_index: usize, s: usize, sqrt_horizon: f64) -> Option<f64> {
        let k = s.checked_sub(self.first)?;
        if k < EWMA_SEED_RETURNS || k >= self.changes.len() {
            return None;
        }
        let now = (date_index - self.first).min(self.changes.len());
        let ratio = self.ewma.sigma[now] / self.ewma.sigma[k];
        let factor = (self.changes[k] * sqrt_horizon * ratio).exp();
        factor.is_finite().then_some(factor)
    }
}

/// The filter of one volatility index: its contiguous run of levels, their log changes and
/// EWMA volatility; `None` when too short to seed (or flat over the seed).
fn vol_filter(levels: &[Option<f64>], lambda: f64) -> Option<VolFilter> {
    let start = levels.iter().position(Option::is_some)?;
    let run: Vec<f64> = levels[start..].iter().map_while(|v| *v).collect();
    let changes = log_returns_of(&run);
    if changes.len() <= EWMA_SEED_RETURNS {
        return None;
    }
    let ewma = ewma_volatility(&changes, lambda, EWMA_SEED_RETURNS).ok()?;
    Some(VolFilter {
        first: start,
        changes,
        ewma,
    })
}

/// Filtered historical scenarios as of the last date of `history` (DESIGN.md 6.5, "Historical
/// ES"); see [`FilteredHistory`].
///
/// # Errors
/// As [`FilteredHistory::new`].
pub fn filtered_historical_scenarios(
    history: &PriceHistory,
    params: &FilteredHistoricalParams,
) -> Result<Vec<HistoricalScenario>, HistoryError> {
    Ok(FilteredHistory::new(history, params)?.scenarios())
}

/// Value at risk of a P&L vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueAtRisk {
    /// Confidence level, e.g. 0.99.
    pub level: f64,
    /// The loss (negated P&L) of the quantile scenario.
    pub loss: f64,
    /// Index of the quantile scenario in the P&L vector.
    pub scenario: usize,
}

/// One scenario of the tail and its weight in the expected shortfall.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TailWeight {
    /// Index of the scenario in the P&L vector.
    pub scenario: usize,
    /// Its weight; the weights of a tail sum to 1.
    pub weight: f64,
}

/// Expected shortfall of a P&L vector, with the tail that makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedShortfall {
    /// Confidence level, e.g. 0.975.
    pub level: f64,
    /// `sum(weight_i * loss_i)` over the tail; never below `var.loss`.
    pub loss: f64,
    /// The value at risk at the same level (the tail's boundary).
    pub var: ValueAtRisk,
    /// Tail scenarios, worst first, with their weights. Any P&L split (per position, per
    /// underlying) gives that part's contribution as `sum(weight_i * -pnl_part_i)`, and the
    /// contributions add up to `loss` (to rounding).
    pub tail: Vec<TailWeight>,
}

/// Scenario indices sorted from the worst P&L to the best (ties by index, so deterministic).
fn worst_first(pnls: &[f64]) -> Result<Vec<usize>, HistoryError> {
    if pnls.is_empty() {
        return Err(HistoryError::TooShort {
            what: "scenario P&Ls".to_owned(),
            needed: 1,
            available: 0,
        });
    }
    if let Some((i, p)) = pnls.iter().enumerate().find(|(_, p)| !p.is_finite()) {
        return Err(HistoryError::NotFinite {
            what: format!("P&L of scenario {i}"),
            value: *p,
        });
    }
    let mut order: Vec<usize> = (0..pnls.len()).collect();
    order.sort_by(|&a, &b| pnls[a].total_cmp(&pnls[b]).then(a.cmp(&b)));
    Ok(order)
}

/// Tail size `w = n * (1 - level)` split into whole scenarios and the boundary's fraction.
fn tail_size(n: usize, level: f64) -> (f64, usize, f64) {
    let w = n as f64 * (1.0 - level);
    let nearest = w.round();
    let w = if (w - nearest).abs() <= TAIL_SIZE_SNAP {
        nearest
    } else {
        w
    };
    let whole = w.floor();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let count = whole as usize;
    (w, count, w - whole)
}

/// Value at risk at `level` of the scenario P&Ls `pnls`: the loss of the `(floor(w) + 1)`-th
/// worst scenario, `w = n * (1 - level)` (`w` within 1e-9 of an integer counts as that integer).
/// This is the lower `level`-quantile of the empirical loss distribution,
/// `inf { x : F_n(x) >= level }`, the VaR of Acerbi and Tasche ("On the coherence of expected
/// shortfall", Journal of Banking & Finance 26, 2002, definition 2.1) applied to the empirical
/// distribution. With 250 scenarios at 99%, `w = 2.5` and VaR is the 3rd worst loss.
///
/// # Errors
/// [`HistoryError::InvalidParameter`] when `level` is not in (0, 1); [`HistoryError::TooShort`]
/// for no P&L; [`HistoryError::NotFinite`] for a non-finite P&L.
pub fn value_at_risk(pnls: &[f64], level: f64) -> Result<ValueAtRisk, HistoryError> {
    check_level("level", level)?;
    let order = worst_first(pnls)?;
    Ok(var_from_order(pnls, &order, level))
}

fn var_from_order(pnls: &[f64], order: &[usize], level: f64) -> ValueAtRisk {
    let (_, count, _) = tail_size(pnls.len(), level);
    let scenario = order[count.min(pnls.len() - 1)];
    ValueAtRisk {
        level,
        loss: -pnls[scenario],
        scenario,
    }
}

/// Expected shortfall at `level` (`ES_97.5` for 0.975: the mean loss of the worst 2.5% of
/// scenarios). With `w = n * (1 - level)` and the losses `L(1) >= L(2) >= ...`:
/// `ES = (L(1) + ... + L(floor(w)) + (w - floor(w)) * L(floor(w) + 1)) / w`,
/// the empirical estimator of Acerbi and Tasche ("On the coherence of expected shortfall",
/// Journal of Banking & Finance 26, 2002, proposition 4.1): whole scenarios weigh `1 / w`, the
/// boundary scenario `(w - floor(w)) / w`, so the tail always has probability mass exactly
/// `1 - level` and the estimator is coherent. When `w < 1` the tail is the worst scenario alone.
/// The sum is formed as `VaR + sum(weight_i * (L_i - VaR))`, whose terms are non-negative, so
/// `ES >= VaR` holds exactly in floating point.
///
/// # Errors
/// As [`value_at_risk`].
pub fn expected_shortfall(pnls: &[f64], level: f64) -> Result<ExpectedShortfall, HistoryError> {
    check_level("level", level)?;
    let order = worst_first(pnls)?;
    let var = var_from_order(pnls, &order, level);
    let (w, count, fraction) = tail_size(pnls.len(), level);
    let mut tail: Vec<TailWeight> = order[..count]
        .iter()
        .map(|&scenario| TailWeight {
            scenario,
            weight: 1.0 / w,
        })
        .collect();
    if fraction > 0.0 && count < pnls.len() {
        tail.push(TailWeight {
            scenario: order[count],
            weight: fraction / w,
        });
    }
    let excess: f64 = tail
        .iter()
        .map(|t| t.weight * (-pnls[t.scenario] - var.loss))
        .sum();
    Ok(ExpectedShortfall {
        level,
        loss: var.loss + excess,
        var,
        tail,
    })
}

/// Kupiec's proportion-of-failures test of a VaR model.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct KupiecResult {
    /// Days the loss exceeded VaR.
    pub exceptions: usize,
    /// Days observed.
    pub observations: usize,
    /// Exceptions expected under the model, `observations * (1 - var_level)`.
    pub expected: f64,
    /// The likelihood ratio `LR_POF`, chi-squared with one degree of freedom under the model.
    pub likelihood_ratio: f64,
    /// `P(chi2(1) >= LR_POF)`.
    pub p_value: f64,
    /// Whether the model is rejected at the 5% significance level (`p_value < 0.05`).
    pub reject_at_5pct: bool,
}

/// `x * ln(x / y)` with the limit `0 * ln(0) = 0`.
fn x_ln_x_over_y(x: f64, y: f64) -> f64 {
    if x > 0.0 { x * (x / y).ln() } else { 0.0 }
}

/// Kupiec's proportion-of-failures test (P. Kupiec, "Techniques for verifying the accuracy of
/// risk measurement models", Journal of Derivatives 3(2), 1995): with `p = 1 - var_level`,
/// `x` exceptions in `n` days and `x/n` the observed rate,
/// `LR_POF = -2 ln[(1 - p)^(n - x) p^x] + 2 ln[(1 - x/n)^(n - x) (x/n)^x]`,
/// computed as `2 [x ln(x / (n p)) + (n - x) ln((n - x) / (n (1 - p)))]` with `0 ln 0 = 0`, which
/// covers 0 exceptions (`LR = -2 n ln(1 - p)`) and all exceptions (`LR = -2 n ln p`) without NaN.
/// The p-value is the chi-squared(1) survival function (statrs).
///
/// # Errors
/// [`HistoryError::InvalidParameter`] when `observations` is 0, `exceptions > observations`, or
/// `var_level` is not in (0, 1).
pub fn kupiec_pof(
    exceptions: usize,
    observations: usize,
    var_level: f64,
) -> Result<KupiecResult, HistoryError> {
    check_level("var_level", var_level)?;
    if observations == 0 {
        return Err(HistoryError::InvalidParameter {
            name: "observations",
            value: "0".to_owned(),
            requirement: "must be at least 1",
        });
    }
    if exceptions > observations {
        return Err(HistoryError::InvalidParameter {
            name: "exceptions",
            value: exceptions.to_string(),
            requirement: "must not exceed observations",
        });
    }
    let n = observations as f64;
    let x = exceptions as f64;
    let p = 1.0 - var_level;
    let expected = n * p;
    let lr = 2.0 * (x_ln_x_over_y(x, expected) + x_ln_x_over_y(n - x, n - expected));
    // LR is a Kullback-Leibler divergence times 2n, so >= 0; rounding may leave -1e-16.
    let likelihood_ratio = lr.max(0.0);
    let chi2 = ChiSquared::new(1.0).map_err(|e| HistoryError::Statistics(e.to_string()))?;
    let p_value = chi2.sf(likelihood_ratio).clamp(0.0, 1.0);
    Ok(KupiecResult {
        exceptions,
        observations,
        expected,
        likelihood_ratio,
        p_value,
        reject_at_5pct: p_value < 0.05,
    })
}

/// What a VaR backtest runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BacktestParams {
    /// VaR confidence level, e.g. 0.99 (the Basel backtest level).
    pub var_level: f64,
    /// The first day tested is the first with at least this many scenarios (at least 1).
    pub min_scenarios: usize,
}

impl Default for BacktestParams {
    /// 99% one-day VaR from at least 250 scenarios (one trading year, as the Basel Committee's
    /// "Supervisory framework for the use of backtesting", 1996).
    fn default() -> Self {
        Self {
            var_level: 0.99,
            min_scenarios: 250,
        }
    }
}

/// One day of a backtest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BacktestDay {
    /// The day the VaR was computed at (its close).
    pub as_of: Date,
    /// The next day, whose realised P&L is compared.
    pub outcome: Date,
    /// One-day VaR at `as_of` (a loss).
    pub var: f64,
    /// Realised P&L from `as_of` to `outcome`.
    pub realised_pnl: f64,
    /// Whether the realised loss exceeded VaR (`-realised_pnl > var`).
    pub exception: bool,
}

/// The result of a VaR backtest.
#[derive(Clone, Debug, PartialEq)]
pub struct VarBacktest {
    /// One entry per tested day, in date order.
    pub days: Vec<BacktestDay>,
    /// Kupiec's test of the exception count.
    pub kupiec: KupiecResult,
}

/// Backtests one-day filtered-historical VaR of a fixed portfolio over `history`: for each date
/// index `d` with at least `backtest.min_scenarios` scenarios and a next day, VaR is computed
/// from the scenarios as of `d` ([`FilteredHistory::scenarios_as_of`], rolling `params.window`,
/// no look-ahead) and compared with `realised_pnl(d)`, the portfolio's P&L from `dates()[d]` to
/// `dates()[d + 1]`. `scenario_pnl(d, scenario)` is the portfolio's P&L under `scenario` applied
/// to the prices at `dates()[d]`. The exception count is tested with [`kupiec_pof`].
///
/// Only one-day horizons are backtested: with `h > 1` consecutive days' outcomes overlap, and
/// Kupiec's binomial count assumes independent days.
///
/// # Errors
/// Invalid parameters (including `horizon_days != 1`, or a `window` below `min_scenarios`);
/// [`HistoryError::TooShort`] when no day has enough scenarios; [`HistoryError::NotFinite`] when
/// a callback returns a non-finite P&L.
pub fn var_backtest(
    history: &PriceHistory,
    params: &FilteredHistoricalParams,
    backtest: &BacktestParams,
    mut scenario_pnl: impl FnMut(usize, &HistoricalScenario) -> f64,
    mut realised_pnl: impl FnMut(usize) -> f64,
) -> Result<VarBacktest, HistoryError> {
    check_backtest(params, backtest)?;
    let filtered = FilteredHistory::new(history, params)?;
    let first = EWMA_SEED_RETURNS + backtest.min_scenarios;
    let last = history.dates.len() - 1;
    if first >= last {
        return Err(HistoryError::TooShort {
            what: "dates for a backtest (seed + min_scenarios + 1)".to_owned(),
            needed: first + 1,
            available: history.dates.len(),
        });
    }
    let underlyings = history.underlyings.len();
    let mut scenario = HistoricalScenario {
        date: history.dates[0],
        index: 0,
        price_factor: vec![0.0; underlyings],
        vol_factor: vec![None; underlyings],
    };
    let mut pnls = Vec::new();
    let mut days = Vec::with_capacity(last - first);
    for d in first..last {
        pnls.clear();
        for s in filtered.range_as_of(d) {
            filtered.fill(d, s, &mut scenario);
            pnls.push(scenario_pnl(d, &scenario));
        }
        let var = value_at_risk(&pnls, backtest.var_level)?;
        let realised = realised_pnl(d);
        if !realised.is_finite() {
            return Err(HistoryError::NotFinite {
                what: format!("realised P&L as of {}", history.dates[d]),
                value: realised,
            });
        }
        days.push(BacktestDay {
            as_of: history.dates[d],
            outcome: history.dates[d + 1],
            var: var.loss,
            realised_pnl: realised,
            exception: -realised > var.loss,
        });
    }
    let exceptions = days.iter().filter(|day| day.exception).count();
    let kupiec = kupiec_pof(exceptions, days.len(), backtest.var_level)?;
    Ok(VarBacktest { days, kupiec })
}

fn check_backtest(
    params: &FilteredHistoricalParams,
    backtest: &BacktestParams,
) -> Result<(), HistoryError> {
    params.validate()?;
    check_level("var_level", backtest.var_level)?;
    if params.horizon_days != 1 {
        return Err(HistoryError::InvalidParameter {
            name: "horizon_days",
            value: params.horizon_days.to_string(),
            requirement: "a backtest compares one-day VaR with the next day's P&L: use 1",
        });
    }
    if backtest.min_scenarios == 0 {
        return Err(HistoryError::InvalidParameter {
            name: "min_scenarios",
            value: "0".to_owned(),
            requirement: "must be at least 1",
        });
    }
    if let Some(window) = params.window
        && window < backtest.min_scenarios
    {
        return Err(HistoryError::InvalidParameter {
            name: "window",
            value: window.to_string(),
            requirement: "must be at least min_scenarios, or no day is ever tested",
        });
    }
    Ok(())
}

/// A correlation matrix of daily log returns.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationMatrix {
    /// Row and column names.
    pub underlyings: Vec<String>,
    /// Symmetric, unit diagonal, entries in [-1, 1].
    pub matrix: DMatrix<f64>,
    /// Number of joint returns used.
    pub observations: usize,
}

impl CorrelationMatrix {
    /// Correlation of `a` and `b`, if both are in the matrix.
    #[must_use]
    pub fn get(&self, a: &str, b: &str) -> Option<f64> {
        let i = self.underlyings.iter().position(|u| u == a)?;
        let j = self.underlyings.iter().position(|u| u == b)?;
        Some(self.matrix[(i, j)])
    }
}

/// Correlation matrix of the daily log returns of `underlyings` over the whole of `history`
/// (its dates are already the joint ones; use [`PriceHistory::window`] for a sub-period).
///
/// - `lambda = None`: Pearson's sample correlation (means removed).
/// - `lambda = Some(l)`: RiskMetrics EWMA correlation ("RiskMetrics — Technical Document", 1996,
///   section 5.3): zero-mean covariances with weights `(1 - l) l^(n - 1 - t)`, normalised to sum
///   to 1 over the `n` returns, divided by the matching EWMA standard deviations.
///
/// Entries are clamped to [-1, 1] (rounding can exceed it by an ulp), the diagonal is exactly 1
/// and the matrix exactly symmetric.
///
/// # Errors
/// [`HistoryError::UnknownUnderlying`]; [`HistoryError::InvalidParameter`] for no or repeated
/// underlyings or `lambda` outside (0, 1); [`HistoryError::ZeroVariance`] for an underlying
/// whose price never moved (its correlation is undefined).
pub fn correlation_matrix(
    history: &PriceHistory,
    underlyings: &[&str],
    lambda: Option<f64>,
) -> Result<CorrelationMatrix, HistoryError> {
    if underlyings.is_empty() {
        return Err(HistoryError::InvalidParameter {
            name: "underlyings",
            value: "[]".to_owned(),
            requirement: "at least one underlying",
        });
    }
    let mut columns = Vec::with_capacity(underlyings.len());
    for (i, name) in underlyings.iter().enumerate() {
        if underlyings[..i].contains(name) {
            return Err(HistoryError::InvalidParameter {
                name: "underlyings",
                value: (*name).to_owned(),
                requirement: "each underlying at most once",
            });
        }
        columns.push(history.index_of(name)?);
    }
    if let Some(lambda) = lambda {
        check_lambda(lambda)?;
    }
    let n = history.dates.len() - 1;
    let k = columns.len();
    let means: Vec<f64> = columns
        .iter()
        .map(|&u| match lambda {
            None => history.returns[u].iter().sum::<f64>() / n as f64,
            Some(_) => 0.0,
        })
        .collect();
    let weights = return_weights(n, lambda);
    // Row t, column j: sqrt(w_t) * (r_t - mean); then X^T X is the weighted covariance.
    let x = DMatrix::from_fn(n, k, |t, j| {
        weights[t].sqrt() * (history.returns[columns[j]][t] - means[j])
    });
    let covariance = x.tr_mul(&x);
    for (j, name) in underlyings.iter().enumerate() {
        if covariance[(j, j)] <= 0.0 {
            return Err(HistoryError::ZeroVariance {
                what: format!("{name}: daily log returns"),
            });
        }
    }
    let mut matrix = DMatrix::identity(k, k);
    for i in 0..k {
        for j in (i + 1)..k {
            let rho = covariance[(i, j)] / (covariance[(i, i)] * covariance[(j, j)]).sqrt();
            if !rho.is_finite() {
                return Err(HistoryError::NotFinite {
                    what: format!("correlation of {} and {}", underlyings[i], underlyings[j]),
                    value: rho,
                });
            }
            let rho = rho.clamp(-1.0, 1.0);
            matrix[(i, j)] = rho;
            matrix[(j, i)] = rho;
        }
    }
    Ok(CorrelationMatrix {
        underlyings: underlyings.iter().map(|u| (*u).to_owned()).collect(),
        matrix,
        observations: n,
    })
}

/// Observation weights summing to 1: equal, or RiskMetrics EWMA (newest weighs most).
fn return_weights(n: usize, lambda: Option<f64>) -> Vec<f64> {
    let raw: Vec<f64> = match lambda {
        None => vec![1.0; n],
        Some(l) => {
            let mut w = vec![0.0; n];
            let mut weight = 1.0 - l;
            for slot in w.iter_mut().rev() {
                *slot = weight;
                weight *= l;
            }
            w
        }
    };
    let total: f64 = raw.iter().sum();
    raw.iter().map(|w| w / total).collect()
}
