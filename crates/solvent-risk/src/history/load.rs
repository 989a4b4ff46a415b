//! Daily price histories: parsing spot closes and DVOL series, validating them and aligning
//! the underlyings on their common dates; daily log returns.

use super::*;

/// Header of a spot price file (Binance daily klines).
pub const SPOT_HEADER: [&str; 6] = ["timestamp", "open", "high", "low", "close", "volume"];

/// Header of an implied-volatility index file (Deribit DVOL daily candles, in percent).
pub const VOL_HEADER: [&str; 6] = ["date", "symbol", "open", "high", "low", "close"];

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
    pub(super) underlyings: Vec<String>,
    pub(super) dates: Vec<Date>,
    /// `closes[u][i]`: close of underlying `u` on `dates[i]`.
    pub(super) closes: Vec<Vec<f64>>,
    /// `returns[u][i] = ln(closes[u][i + 1] / closes[u][i])`.
    pub(super) returns: Vec<Vec<f64>>,
    /// `vols[u][i]`: implied volatility index (fraction) on `dates[i]`, where known. The known
    /// dates of one underlying form one contiguous run.
    pub(super) vols: Vec<Vec<Option<f64>>>,
}

/// One validated row: its line, date and close.
#[derive(Clone, Copy, Debug)]
pub(super) struct Row {
    pub(super) line: u64,
    pub(super) date: Date,
    pub(super) close: f64,
}

/// Which file layout a text has.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub(super) header: [&'static str; 6],
    pub(super) date_column: usize,
    pub(super) close_column: usize,
    pub(super) symbol_column: Option<usize>,
}

pub(super) const SPOT_LAYOUT: Layout = Layout {
    header: SPOT_HEADER,
    date_column: 0,
    close_column: 4,
    symbol_column: None,
};

pub(super) const VOL_LAYOUT: Layout = Layout {
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

    /// The same history followed by `days`: each the day after the one before it (the first the
    /// day after [`Self::dates`]' last), with one close per underlying in [`Self::underlyings`]
    /// order, and no volatility index. For closes taken after the files end (the service's own
    /// index prices): the returns are computed as [`Self::from_texts`] computes them.
    ///
    /// # Errors
    /// [`HistoryError::Gap`] for a day that does not follow the one before it,
    /// [`HistoryError::InvalidParameter`] for a day without one close per underlying,
    /// [`HistoryError::NotPositive`] for a close that is not positive and finite (`origin` names
    /// the closes in the errors).
    pub fn extended(&self, origin: &str, days: &[(Date, Vec<f64>)]) -> Result<Self, HistoryError> {
        let mut out = self.clone();
        for (n, (date, closes)) in days.iter().enumerate() {
            let line = n as u64 + 1;
            let Some(&previous) = out.dates.last() else {
                return Err(HistoryError::NoRows {
                    origin: origin.to_owned(),
                });
            };
            if previous.tomorrow().ok() != Some(*date) {
                return Err(HistoryError::Gap {
                    origin: origin.to_owned(),
                    line,
                    previous,
                    next: *date,
                    missing: date.duration_since(previous).as_hours() / 24 - 1,
                });
            }
            if closes.len() != out.underlyings.len() {
                return Err(HistoryError::InvalidParameter {
                    name: "closes",
                    value: closes.len().to_string(),
                    requirement: "one close per underlying of the history",
                });
            }
            if let Some(&bad) = closes.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
                return Err(HistoryError::NotPositive {
                    origin: origin.to_owned(),
                    line,
                    column: 2,
                    name: "close",
                    value: bad,
                });
            }
            out.dates.push(*date);
            for (u, &close) in closes.iter().enumerate() {
                if let Some(&last) = out.closes[u].last() {
                    out.returns[u].push(log_change(last, close));
                }
                out.closes[u].push(close);
                out.vols[u].push(None);
            }
        }
        Ok(out)
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
pub(super) fn check_distinct(
    texts: &[SeriesText<'_>],
    kind: &'static str,
) -> Result<(), HistoryError> {
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
pub(super) fn parse_rows(input: &SeriesText<'_>, layout: Layout) -> Result<Vec<Row>, HistoryError> {
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
pub(super) fn read_record(
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

pub(super) fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

pub(super) fn field<'r>(
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

pub(super) fn parse_date(
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

pub(super) fn parse_close(
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
pub(super) fn check_spot_order(origin: &str, rows: &[Row]) -> Result<(), HistoryError> {
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
pub(super) fn check_consecutive(origin: &str, rows: &[Row]) -> Result<(), HistoryError> {
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
pub(super) fn common_range(series: &[Vec<Row>]) -> Result<(Date, Date), HistoryError> {
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
pub(super) fn align_vol(dates: &[Date], rows: &[Row]) -> Vec<Option<f64>> {
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
pub(super) fn log_change(a: f64, b: f64) -> f64 {
    let ratio = (b / a).ln();
    if ratio.is_finite() {
        ratio
    } else {
        b.ln() - a.ln()
    }
}

pub(super) fn log_returns_of(levels: &[f64]) -> Vec<f64> {
    levels.windows(2).map(|w| log_change(w[0], w[1])).collect()
}
