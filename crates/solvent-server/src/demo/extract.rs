//! The demo's history: a committed extract of the shared price data (`demo/prices.csv`,
//! re-derived and checked by `scripts/extract_demo_prices.py`).
//!
//! BTC and ETH, 2025-10-01..2025-11-04: Binance spot daily klines (USDT) and Deribit's DVOL
//! (30-day implied volatility, percent) open and close. The stretch holds the rally to BTC's
//! all-time high (126,199.63 on 2025-10-06), the 2025-10-10 liquidation cascade (intraday lows
//! 16.2% under the open for BTC, 21.4% for ETH) and the slide of early November.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use super::DemoError;

/// The extract as committed.
pub const PRICES_CSV: &str = include_str!("../../demo/prices.csv");

/// The header the extract must have (the script writes it).
const HEADER: &str = "date,underlying,open,high,low,close,dvol_open,dvol_close";

/// One underlying's day.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Underlying (`BTC`).
    pub underlying: String,
    /// First trade of the UTC day, USD (USDT).
    pub open: Decimal,
    /// Highest trade.
    pub high: Decimal,
    /// Lowest trade.
    pub low: Decimal,
    /// Last trade before 24:00 UTC.
    pub close: Decimal,
    /// DVOL at the day's open, as a fraction (0.3661 for 36.61%).
    pub vol_open: f64,
    /// DVOL at the day's close, as a fraction.
    pub vol_close: f64,
}

/// One UTC day of every underlying.
#[derive(Clone, Debug, PartialEq)]
pub struct Day {
    /// The date.
    pub date: Date,
    /// 00:00 UTC of the date.
    pub start: Timestamp,
    /// One bar per underlying, in [`Extract::underlyings`] order.
    pub bars: Vec<Bar>,
}

/// Consecutive days of history for the same underlyings.
#[derive(Clone, Debug, PartialEq)]
pub struct Extract {
    /// The underlyings, in the order of each day's bars.
    pub underlyings: Vec<String>,
    /// The days, consecutive and ascending.
    pub days: Vec<Day>,
}

impl Extract {
    /// The committed extract.
    ///
    /// # Errors
    /// [`DemoError::Extract`] if the committed file does not read (a test keeps it readable).
    pub fn embedded() -> Result<Self, DemoError> {
        Self::parse(PRICES_CSV)
    }

    /// Reads an extract in the committed file's format: one row per day and underlying, the
    /// underlyings of each day in the same order, days consecutive.
    ///
    /// # Errors
    /// [`DemoError::Extract`] naming the line and the problem.
    pub fn parse(text: &str) -> Result<Self, DemoError> {
        let fail = |line: usize, problem: String| DemoError::Extract { line, problem };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim() == HEADER => {}
            _ => return Err(fail(1, format!("the header must be {HEADER:?}"))),
        }
        let mut days: Vec<Day> = Vec::new();
        for (index, line) in lines {
            let number = index + 1;
            if line.trim().is_empty() {
                continue;
            }
            let (date, bar) = parse_row(line).map_err(|problem| fail(number, problem))?;
            match days.last_mut() {
                Some(day) if day.date == date => day.bars.push(bar),
                _ => {
                    let start = date
                        .to_zoned(TimeZone::UTC)
                        .map_err(|error| fail(number, error.to_string()))?
                        .timestamp();
                    days.push(Day {
                        date,
                        start,
                        bars: vec![bar],
                    });
                }
            }
        }
        let Some(first) = days.first() else {
            return Err(fail(2, "no days".to_owned()));
        };
        let underlyings: Vec<String> = first.bars.iter().map(|b| b.underlying.clone()).collect();
        for pair in days.windows(2) {
            if let [before, after] = pair
                && after.start.duration_since(before.start) != SignedDuration::from_hours(24)
            {
                return Err(fail(
                    0,
                    format!("{} does not follow {}", after.date, before.date),
                ));
            }
        }
        for day in &days {
            let names: Vec<&str> = day.bars.iter().map(|b| b.underlying.as_str()).collect();
            if names != underlyings {
                return Err(fail(
                    0,
                    format!("{} lists {names:?}, not {underlyings:?}", day.date),
                ));
            }
        }
        Ok(Self { underlyings, days })
    }

    /// 00:00 UTC of the first day: when the live feed begins.
    #[must_use]
    pub fn start(&self) -> Timestamp {
        self.days.first().map_or(Timestamp::UNIX_EPOCH, |d| d.start)
    }

    /// 24:00 UTC of the last day: when the live feed ends.
    #[must_use]
    pub fn end(&self) -> Timestamp {
        self.days.last().map_or(Timestamp::UNIX_EPOCH, |d| {
            d.start
                .checked_add(SignedDuration::from_hours(24))
                .unwrap_or(d.start)
        })
    }

    /// The time the opening book is written at: one minute before the feed begins, so that the
    /// feed's first prices are no older than the engine's default staleness limit (60 s) asks.
    #[must_use]
    pub fn opening_time(&self) -> Timestamp {
        self.start()
            .checked_sub(SignedDuration::from_mins(1))
            .unwrap_or(self.start())
    }

    /// The first day's bar of `underlying`.
    #[must_use]
    pub fn first_bar(&self, underlying: &str) -> Option<&Bar> {
        let slot = self.underlyings.iter().position(|u| u == underlying)?;
        self.days.first()?.bars.get(slot)
    }
}

fn parse_row(line: &str) -> Result<(Date, Bar), String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [
        date,
        underlying,
        open,
        high,
        low,
        close,
        vol_open,
        vol_close,
    ] = fields.as_slice()
    else {
        return Err(format!("expected 8 fields, found {}", fields.len()));
    };
    let date: Date = date.parse().map_err(|e| format!("date {date:?}: {e}"))?;
    let price = |name: &str, text: &str| -> Result<Decimal, String> {
        let value: Decimal = text.parse().map_err(|e| format!("{name} {text:?}: {e}"))?;
        if value <= Decimal::ZERO {
            return Err(format!("{name} {text:?} must be positive"));
        }
        Ok(value)
    };
    let vol = |name: &str, text: &str| -> Result<f64, String> {
        let percent: f64 = text.parse().map_err(|e| format!("{name} {text:?}: {e}"))?;
        if !(percent.is_finite() && percent > 0.0 && percent < 1_000.0) {
            return Err(format!("{name} {text:?} must be a percentage in (0, 1000)"));
        }
        Ok(percent / 100.0)
    };
    let bar = Bar {
        underlying: (*underlying).to_owned(),
        open: price("open", open)?,
        high: price("high", high)?,
        low: price("low", low)?,
        close: price("close", close)?,
        vol_open: vol("dvol_open", vol_open)?,
        vol_close: vol("dvol_close", vol_close)?,
    };
    // The path generator bridges the open and the close through the high and the low: they
    // must bound both.
    if bar.low > bar.open.min(bar.close) || bar.high < bar.open.max(bar.close) {
        return Err(format!(
            "{underlying}: low/high do not bound open and close"
        ));
    }
    Ok((date, bar))
}
