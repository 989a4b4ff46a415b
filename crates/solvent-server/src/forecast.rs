//! Scheduled volatility forecasts (`solvent serve --forecast-history DIR`, docs/vol-scaled-ranges.md).
//!
//! The engine stays pure: a venue that scales an underlying's range
//! (`[portfolio_margin.vol_scaled.U]`) takes the forecast as a `scenario_range` event. The
//! [`Forecaster`] makes those events inside the service, on the engine's time: when an event
//! would carry the engine past 00:00 UTC, the day before is closed first and, for each scaled
//! underlying, the forecast of that close is appended as a `scenario_range` event stamped at
//! 00:00 (the stamp `solvent forecast` gives it), through the same path as any other event
//! (applied, journaled, published). Replay reads the event's numbers; nothing recomputes them.
//! The forecasts come before the event is applied, so one the engine then refuses has still
//! closed the days its time crosses: what the service knows of an event before applying it is
//! its time.
//!
//! The closes are the history file's (one underlying per file, read as `solvent forecast` reads
//! it) up to its last day, then the service's own: a day's close is the last `index_price`
//! the engine accepted for the underlying before 00:00 UTC (the price as sent), carried over a
//! day without one. The forecast of a close is [`venue_ranges`] on those closes up to it, the
//! function `solvent forecast` and `solvent margin --history` call: the same numbers for the
//! same returns.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use solvent_core::venue::Venue;
use solvent_engine::event::{Envelope, Event, ScenarioRange};
use solvent_risk::history::{HistoryError, PriceHistory};
use solvent_risk::vol_scaled::{RangeInForce, venue_ranges};
use solvent_store::Journal;
use thiserror::Error;

/// Why a forecast could not be made or scheduled.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ForecastError {
    /// No history was given for any underlying.
    #[error("no history to forecast from")]
    NoHistory,
    /// A history does not read.
    #[error("{underlying}'s history: {source}")]
    Load {
        /// The underlying.
        underlying: String,
        /// The reader's error.
        #[source]
        source: Box<HistoryError>,
    },
    /// A history holds another underlying than the one it was given for, or several.
    #[error("{underlying}: the history holds {found}, a forecast reads one underlying")]
    NotOneUnderlying {
        /// The underlying it was given for.
        underlying: String,
        /// What it holds.
        found: String,
    },
    /// The venue does not scale the underlying (any longer).
    #[error(
        "{underlying}: the venue does not scale its range ([portfolio_margin.vol_scaled.{underlying}])"
    )]
    NotScaled {
        /// The underlying.
        underlying: String,
    },
    /// No close of the day: the history ends before it and the service took no index price
    /// from the history's end to the day.
    #[error(
        "{underlying} on {day}: no close (the history ends on {history_end}; the service's own closes {taken})"
    )]
    NoClose {
        /// The underlying.
        underlying: String,
        /// The close wanted.
        day: Date,
        /// The history's last day.
        history_end: Date,
        /// The days the service holds closes for.
        taken: String,
    },
    /// The forecast itself failed (too short a history, a gap, parameters).
    #[error("{underlying} on {day}: {source}")]
    History {
        /// The underlying.
        underlying: String,
        /// The close.
        day: Date,
        /// The forecast's error.
        #[source]
        source: Box<HistoryError>,
    },
    /// A date outside the calendar's range.
    #[error("{0}: no next day")]
    Calendar(Date),
    /// The journal could not be read to find the closes taken before a restart.
    #[error("reading the journal: {0}")]
    Journal(String),
}

/// 00:00 UTC of the day after `day`: when the Binance daily candle of `day` closes, and the
/// stamp of its forecast.
///
/// # Errors
/// [`ForecastError::Calendar`] at the end of the calendar.
pub fn close_of(day: Date) -> Result<Timestamp, ForecastError> {
    day.tomorrow()
        .and_then(|next| next.to_zoned(TimeZone::UTC))
        .map(|zoned| zoned.timestamp())
        .map_err(|_| ForecastError::Calendar(day))
}

/// The UTC day of `ts`.
#[must_use]
pub fn day_of(ts: Timestamp) -> Date {
    ts.to_zoned(TimeZone::UTC).date()
}

/// The `scenario_range` event of `range` and its stamp (the close): what `solvent forecast`
/// writes and the service appends.
///
/// # Errors
/// [`ForecastError::Calendar`] at the end of the calendar.
pub fn scenario_range_event(range: &RangeInForce) -> Result<(Timestamp, Event), ForecastError> {
    Ok((
        close_of(range.as_of)?,
        Event::ScenarioRange(ScenarioRange {
            underlying: range.underlying.clone(),
            as_of: range.as_of,
            model: range.model,
            control: range.control,
            sigma_daily: range.sigma_daily,
            base: range.base,
            range: range.range,
            bound: range.bound,
        }),
    ))
}

/// One underlying's closes: the history's, then the service's.
#[derive(Clone, Debug)]
struct Series {
    /// The history file, this underlying alone.
    history: PriceHistory,
    /// The last index price the engine accepted for it (as sent).
    last: Option<f64>,
    /// The service's closes of the days after the history's last, ascending.
    taken: Vec<(Date, f64)>,
}

impl Series {
    fn history_end(&self) -> Option<Date> {
        self.history.dates().last().copied()
    }
}

/// The service's forecaster: the closes it has seen and the engine's day. Fed every accepted
/// event ([`Self::observe`]); asked before each event what forecasts its time makes due
/// ([`Self::due`]).
#[derive(Clone, Debug)]
pub struct Forecaster {
    series: BTreeMap<String, Series>,
    /// The UTC day of the engine's time (`None` before the first event).
    day: Option<Date>,
}

impl Forecaster {
    /// A forecaster over `histories`: per underlying, its daily closes (a history holding that
    /// underlying alone, as `solvent forecast` reads each file).
    ///
    /// # Errors
    /// [`ForecastError::NoHistory`] for none, [`ForecastError::NotOneUnderlying`] for a history
    /// of another underlying or of several.
    pub fn new(histories: BTreeMap<String, PriceHistory>) -> Result<Self, ForecastError> {
        if histories.is_empty() {
            return Err(ForecastError::NoHistory);
        }
        let mut series = BTreeMap::new();
        for (underlying, history) in histories {
            if history.underlyings() != std::slice::from_ref(&underlying) {
                return Err(ForecastError::NotOneUnderlying {
                    found: history.underlyings().join(", "),
                    underlying,
                });
            }
            series.insert(
                underlying,
                Series {
                    history,
                    last: None,
                    taken: Vec::new(),
                },
            );
        }
        Ok(Self { series, day: None })
    }

    /// The underlyings it has a history for.
    pub fn underlyings(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    /// The UTC day of the engine's time, as far as the events seen say.
    #[must_use]
    pub fn day(&self) -> Option<Date> {
        self.day
    }

    /// How many daily closes an event stamped `ts` would cross (none for a time on the engine's
    /// day or before it).
    #[must_use]
    pub fn closes_crossed(&self, ts: Timestamp) -> i64 {
        match self.day {
            Some(day) => day
                .until(day_of(ts))
                .map_or(0, |span| i64::from(span.get_days()).max(0)),
            None => 0,
        }
    }

    /// Moves the engine's day forward to that of `ts`; the days it closes, ascending (the
    /// service's close of each recorded for the days after each history's end). The day never
    /// moves back: an event stamped before it (refused by the engine, or a forecast stamped at
    /// a close already crossed) closes nothing and leaves it, so no close is taken twice.
    fn advance(&mut self, ts: Timestamp) -> Vec<Date> {
        let today = day_of(ts);
        let Some(mut day) = self.day else {
            self.day = Some(today);
            return Vec::new();
        };
        if today <= day {
            return Vec::new();
        }
        let mut closed = Vec::new();
        while day < today {
            for series in self.series.values_mut() {
                if let (Some(price), Some(end)) = (series.last, series.history_end())
                    && day > end
                {
                    series.taken.push((day, price));
                }
            }
            closed.push(day);
            let Ok(next) = day.tomorrow() else {
                break;
            };
            day = next;
        }
        self.day = Some(today);
        closed
    }

    /// Takes an accepted event: its time, and its price if it is an index price of an
    /// underlying forecast.
    pub fn observe(&mut self, envelope: &Envelope) {
        self.advance(envelope.ts);
        if let Event::IndexPrice(index) = &envelope.event
            && let Some(series) = self.series.get_mut(&index.underlying)
            // The decimal's text read as the history file's text is read (correctly rounded).
            && let Ok(price) = index.price.value().to_string().parse::<f64>()
        {
            series.last = Some(price);
        }
    }

    /// Reads `journal` from its start, as [`Self::observe`] would have: after a restart, the
    /// closes the service took before it. Returns the events read.
    ///
    /// # Errors
    /// [`ForecastError::Journal`] when the journal cannot be read.
    pub fn catch_up(&mut self, journal: &dyn Journal) -> Result<u64, ForecastError> {
        const PAGE: usize = 10_000;
        let mut after = None;
        let mut read = 0;
        loop {
            let entries = journal
                .read_after(after, PAGE)
                .map_err(|error| ForecastError::Journal(error.to_string()))?;
            let Some(last) = entries.last() else {
                return Ok(read);
            };
            after = Some(last.envelope.seq);
            for entry in &entries {
                self.observe(&entry.envelope);
                read += 1;
            }
        }
    }

    /// The range of `underlying` at the close of `day`, as `venue` sets it: [`venue_ranges`] on
    /// the closes up to `day`.
    ///
    /// # Errors
    /// [`ForecastError`]: no history or no close of the day, a venue that does not scale the
    /// underlying, the forecast's errors (too short a history).
    pub fn forecast(
        &self,
        venue: &Venue,
        underlying: &str,
        day: Date,
    ) -> Result<RangeInForce, ForecastError> {
        let not_scaled = || ForecastError::NotScaled {
            underlying: underlying.to_owned(),
        };
        let series = self.series.get(underlying).ok_or_else(not_scaled)?;
        let history_error = |source| ForecastError::History {
            underlying: underlying.to_owned(),
            day,
            source: Box::new(source),
        };
        let dates = series.history.dates();
        let (Some(&first), Some(&end)) = (dates.first(), dates.last()) else {
            return Err(history_error(HistoryError::NoSpot));
        };
        let closes = if day <= end {
            series.history.window(first, day).map_err(history_error)?
        } else {
            let taken: Vec<(Date, Vec<f64>)> = series
                .taken
                .iter()
                .filter(|(d, _)| *d <= day)
                .map(|(d, close)| (*d, vec![*close]))
                .collect();
            if taken.last().map(|(d, _)| *d) != Some(day)
                || taken.first().map(|(d, _)| *d) != end.tomorrow().ok()
            {
                return Err(ForecastError::NoClose {
                    underlying: underlying.to_owned(),
                    day,
                    history_end: end,
                    taken: match (series.taken.first(), series.taken.last()) {
                        (Some((first, _)), Some((last, _))) => {
                            format!("run from {first} to {last}")
                        }
                        _ => "are none".to_owned(),
                    },
                });
            }
            series
                .history
                .extended(&format!("{underlying} closes taken by the service"), &taken)
                .map_err(history_error)?
        };
        let ranges = venue_ranges(venue, underlying, closes.dates(), closes.log_returns(0))
            .map_err(history_error)?
            .ok_or_else(not_scaled)?;
        ranges
            .into_iter()
            .next_back()
            .filter(|range| range.as_of == day)
            .ok_or_else(|| {
                history_error(HistoryError::TooShort {
                    what: format!("forecasts of {underlying} up to {day}"),
                    needed: 1,
                    available: 0,
                })
            })
    }

    /// Before an event stamped `ts`: the `scenario_range` events of the closes it crosses, one
    /// per close and underlying the venue scales (in the venue's order), each with its stamp.
    /// A forecast that cannot be made is logged and skipped: the range in force stays (or the
    /// static grid, before the first), as when no one sends the event.
    pub fn due(&mut self, ts: Timestamp, venue: &Venue) -> Vec<(Timestamp, Event)> {
        let closed = self.advance(ts);
        if closed.is_empty() {
            return Vec::new();
        }
        let scaled: Vec<String> = venue
            .portfolio_margin
            .as_ref()
            .map(|pm| {
                pm.vol_scaled
                    .keys()
                    .filter(|u| self.series.contains_key(*u))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut events = Vec::new();
        for day in closed {
            for underlying in &scaled {
                match self
                    .forecast(venue, underlying, day)
                    .and_then(|range| scenario_range_event(&range))
                {
                    Ok(event) => events.push(event),
                    Err(error) => {
                        tracing::warn!(%underlying, %day, %error, "no scheduled forecast");
                    }
                }
            }
        }
        events
    }
}
