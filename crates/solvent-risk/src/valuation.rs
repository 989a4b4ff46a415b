//! Marking to market: index prices, asset prices, mark prices (given or derived, DESIGN.md 5),
//! option marks from Black-76 on the volatility surface, and conversion between assets.

use indexmap::IndexMap;
use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use solvent_core::instrument::{Instrument, OptionRight, Style, Terms};
use solvent_core::market::{Market, parse_expiry_key};
use solvent_core::rounding::model_price_from_f64;
use solvent_core::venue::{Asset, Venue};
use solvent_pricing::black76::{Black76, OptionType};
use solvent_pricing::surface::{SmileInput, VolSurface};

use crate::error::RiskError;

/// Seconds in the 365-day year used for times to expiry (ACT/365, as Deribit).
/// An annualised volatility is per square root of this year.
pub const SECONDS_PER_YEAR: f64 = 365.0 * 86_400.0;

/// Where a mark price came from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MarkSource {
    /// Given in the market snapshot.
    Given,
    /// The underlying's index (perpetuals and futures without a given mark).
    Index,
    /// Black-76 on the volatility surface.
    Model {
        /// The implied volatility used.
        volatility: f64,
        /// Years to expiry.
        time_to_expiry: f64,
    },
}

/// A mark price in the instrument's quote: USD per coin for perpetuals and futures; the premium
/// per unit of underlying in the settlement currency for options (coin for inverse options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mark {
    /// The price.
    pub price: Decimal,
    /// Its origin.
    pub source: MarkSource,
}

/// Joint historical scenarios (filtered historical simulation) with the correlations of the same
/// history: market data for expected shortfall and for correlations a venue does not give.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoricalScenarios {
    /// Underlyings, in the order of each scenario's factors.
    pub underlyings: Vec<String>,
    /// The scenarios.
    pub scenarios: Vec<crate::history::HistoricalScenario>,
    /// Correlations of daily log returns over the same history.
    pub correlations: crate::history::CorrelationMatrix,
}

/// Volatility surfaces by underlying, as a view builds them from a market's smiles.
pub type Surfaces = IndexMap<String, VolSurface>;

/// A read-only view of one market snapshot through one venue's assets and instruments.
#[derive(Debug)]
pub struct MarketView<'a> {
    venue: &'a Venue,
    market: &'a Market,
    surfaces: std::borrow::Cow<'a, Surfaces>,
    history: Option<&'a HistoricalScenarios>,
    books: Option<&'a crate::portfolio_margin::SharedBooks>,
}

/// Amounts of one asset converted into another at one market's USD prices
/// ([`MarketView::conversion`]): the same figures as [`MarketView::convert`], the prices read once.
#[derive(Clone, Copy, Debug)]
pub struct Conversion<'a> {
    from: &'a Asset,
    to: &'a Asset,
    /// Each asset's USD price (`None` where it has none); `None` from an asset into itself.
    prices: Option<(Option<Decimal>, Option<Decimal>)>,
}

impl Conversion<'_> {
    /// `amount` of the first asset in the second: `amount x from_usd / to_usd`, unchanged into
    /// the same asset or when zero.
    ///
    /// # Errors
    /// As [`MarketView::convert`]: [`RiskError::MissingIndex`] for a missing price (the first
    /// asset's first), [`RiskError::Overflow`] beyond `Decimal`'s range.
    pub fn convert(&self, amount: Decimal) -> Result<Decimal, RiskError> {
        let Some((from_usd, to_usd)) = self.prices else {
            return Ok(amount);
        };
        if amount.is_zero() {
            return Ok(amount);
        }
        let from_usd = from_usd.ok_or_else(|| missing_asset_index(self.from))?;
        let to_usd = to_usd.ok_or_else(|| missing_asset_index(self.to))?;
        amount
            .checked_mul(from_usd)
            .and_then(|usd| usd.checked_div(to_usd))
            .ok_or_else(|| RiskError::Overflow {
                what: format!("{amount} {} in {}", self.from.symbol, self.to.symbol),
            })
    }
}

/// The error of an asset valued without a price: its index missing and no peg.
fn missing_asset_index(asset: &Asset) -> RiskError {
    RiskError::MissingIndex {
        name: asset.index.to_string(),
        needed_for: format!("valuing {}", asset.symbol),
    }
}

/// Each underlying's smiles turned into a volatility surface at the market's time; smiles that
/// expired at or before it are left out.
///
/// # Errors
/// [`RiskError::Pricing`] naming the smile the surface refused.
pub fn surfaces(venue: &Venue, market: &Market) -> Result<Surfaces, RiskError> {
    SmileSchedule::new(venue, market)?.surfaces_at(market.timestamp)
}

/// Each underlying's smiles with their expiry keys read as instants, in order of expiry: the
/// part of [`surfaces`] that does not depend on the market's time. A caller valuing at many
/// times with the same smiles (the engine, whose clock moves with every event) reads the keys
/// once and builds the surfaces at each time from this.
#[derive(Clone, Debug, Default)]
pub struct SmileSchedule {
    underlyings: Vec<(String, Vec<ScheduledSmile>)>,
}

#[derive(Clone, Debug)]
struct ScheduledSmile {
    expiry: Timestamp,
    strikes: Vec<f64>,
    volatilities: Vec<f64>,
}

impl SmileSchedule {
    /// Reads every smile's expiry key under the venue's expiry time of day.
    ///
    /// # Errors
    /// [`RiskError::Pricing`] naming the smile whose key is not an expiry.
    pub fn new(venue: &Venue, market: &Market) -> Result<Self, RiskError> {
        let mut underlyings = Vec::with_capacity(market.vol.len());
        for (underlying, smiles) in &market.vol {
            let mut scheduled = Vec::with_capacity(smiles.len());
            for (key, smile) in smiles {
                let expiry = parse_expiry_key(key, venue.expiry_time_utc).map_err(|problem| {
                    RiskError::Pricing {
                        path: format!("vol.{underlying}.{key}"),
                        problem,
                    }
                })?;
                scheduled.push(ScheduledSmile {
                    expiry,
                    strikes: smile.strikes.clone(),
                    volatilities: smile.vols.clone(),
                });
            }
            // Stable: two keys naming one instant stay in the file's order, and the surface
            // refuses them as it did when sorted by time to expiry.
            scheduled.sort_by_key(|smile| smile.expiry);
            underlyings.push((underlying.clone(), scheduled));
        }
        Ok(Self { underlyings })
    }

    /// The surfaces at `timestamp`: each underlying's smiles that expire after it, their times
    /// to expiry counted from it; an underlying with none has no surface.
    ///
    /// # Errors
    /// [`RiskError::Pricing`] naming the underlying whose surface is refused.
    pub fn surfaces_at(&self, timestamp: Timestamp) -> Result<Surfaces, RiskError> {
        let mut surfaces = IndexMap::with_capacity(self.underlyings.len());
        for (underlying, smiles) in &self.underlyings {
            let expiries: Vec<SmileInput> = smiles
                .iter()
                .map(|smile| (years_between(timestamp, smile.expiry), smile))
                .filter(|(time, _)| *time > 0.0)
                .map(|(time, smile)| SmileInput {
                    time_to_expiry_years: time,
                    strikes: smile.strikes.clone(),
                    volatilities: smile.volatilities.clone(),
                })
                .collect();
            if expiries.is_empty() {
                continue;
            }
            let surface =
                VolSurface::new_checked(expiries).map_err(|error| RiskError::Pricing {
                    path: format!("vol.{underlying}"),
                    problem: error.to_string(),
                })?;
            surfaces.insert(underlying.clone(), surface);
        }
        Ok(surfaces)
    }
}

impl<'a> MarketView<'a> {
    /// Builds the view, turning each underlying's smiles into a volatility surface. Smiles that
    /// expired at or before the snapshot are left out.
    ///
    /// # Errors
    /// [`RiskError::Pricing`] naming the smile the surface refused.
    pub fn new(venue: &'a Venue, market: &'a Market) -> Result<Self, RiskError> {
        Ok(Self {
            venue,
            market,
            surfaces: std::borrow::Cow::Owned(surfaces(venue, market)?),
            history: None,
            books: None,
        })
    }

    /// The view with surfaces already built by [`surfaces`] from the same venue and market (a
    /// caller valuing many accounts at one snapshot builds them once).
    #[must_use]
    pub fn with_surfaces(venue: &'a Venue, market: &'a Market, surfaces: &'a Surfaces) -> Self {
        Self {
            venue,
            market,
            surfaces: std::borrow::Cow::Borrowed(surfaces),
            history: None,
            books: None,
        }
    }

    /// The same view with scenario books built for this very market (time, prices, volatility
    /// and venue) and shared by the accounts valued at it: a figures-only report of a
    /// portfolio-mode account then sums its margin from them (the same figures) rather than
    /// building its own book.
    #[must_use]
    pub fn with_books(mut self, books: &'a crate::portfolio_margin::SharedBooks) -> Self {
        self.books = Some(books);
        self
    }

    /// The shared scenario books attached with [`Self::with_books`], if any.
    #[must_use]
    pub fn books(&self) -> Option<&'a crate::portfolio_margin::SharedBooks> {
        self.books
    }

    /// The same view with historical scenarios attached.
    #[must_use]
    pub fn with_history(mut self, history: Option<&'a HistoricalScenarios>) -> Self {
        self.history = history;
        self
    }

    /// Historical scenarios, when given.
    #[must_use]
    pub fn history(&self) -> Option<&'a HistoricalScenarios> {
        self.history
    }

    /// The venue.
    #[must_use]
    pub fn venue(&self) -> &'a Venue {
        self.venue
    }

    /// The snapshot.
    #[must_use]
    pub fn market(&self) -> &'a Market {
        self.market
    }

    /// The instant of the snapshot.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.market.timestamp
    }

    /// Index price of `name` in USD, with what needed it described only when it is missing (the
    /// hot path formats nothing).
    ///
    /// # Errors
    /// [`RiskError::MissingIndex`] when the market does not give it.
    pub fn index_for(
        &self,
        name: &str,
        needed_for: impl FnOnce() -> String,
    ) -> Result<Decimal, RiskError> {
        match self.market.index.get(name) {
            Some(price) => Ok(price.value()),
            None => Err(RiskError::MissingIndex {
                name: name.to_owned(),
                needed_for: needed_for(),
            }),
        }
    }

    /// Index price of `name` in USD.
    ///
    /// # Errors
    /// [`RiskError::MissingIndex`] when the market does not give it.
    pub fn index(&self, name: &str, needed_for: &str) -> Result<Decimal, RiskError> {
        self.market
            .index
            .get(name)
            .map(|price| price.value())
            .ok_or_else(|| RiskError::MissingIndex {
                name: name.to_owned(),
                needed_for: needed_for.to_owned(),
            })
    }

    /// USD price of one unit of `asset`: its index, or its declared peg when the market gives
    /// no index. Collateral is valued at the index, never at a venue's own order book.
    ///
    /// # Errors
    /// [`RiskError::MissingIndex`] when neither exists.
    pub fn asset_usd(&self, asset: &Asset) -> Result<Decimal, RiskError> {
        self.asset_usd_if_priced(asset)
            .ok_or_else(|| missing_asset_index(asset))
    }

    /// [`Self::asset_usd`], `None` where the asset has neither an index price nor a peg.
    fn asset_usd_if_priced(&self, asset: &Asset) -> Option<Decimal> {
        match self.market.index.get(asset.index.as_str()) {
            Some(price) => Some(price.value()),
            None => asset.usd_peg,
        }
    }

    /// Converts an amount of `from` into `to` at their USD prices (exact up to decimal division).
    ///
    /// # Errors
    /// [`RiskError::MissingIndex`] when a price is missing; [`RiskError::Overflow`] when the
    /// converted amount leaves `Decimal`'s range (an amount in a coin priced near the largest
    /// accepted price, converted into one priced near the smallest).
    pub fn convert(&self, amount: Decimal, from: &Asset, to: &Asset) -> Result<Decimal, RiskError> {
        self.conversion(from, to).convert(amount)
    }

    /// The conversion from `from` into `to` at this market, both USD prices read once: a
    /// position's figures (its requirement, value, P&L, equity) are all converted between the
    /// same two assets, and each [`Self::convert`] would look both up again.
    #[must_use]
    pub fn conversion<'b>(&self, from: &'b Asset, to: &'b Asset) -> Conversion<'b> {
        let prices = (from.symbol != to.symbol)
            .then(|| (self.asset_usd_if_priced(from), self.asset_usd_if_priced(to)));
        Conversion { from, to, prices }
    }

    /// Years from the snapshot to `expiry` (negative once expired).
    #[must_use]
    pub fn years_to(&self, expiry: Timestamp) -> f64 {
        years_between(self.market.timestamp, expiry)
    }

    /// The instrument's mark price: given, or derived (DESIGN.md 5).
    ///
    /// # Errors
    /// [`RiskError`] when the market lacks what the derivation needs.
    pub fn mark(&self, instrument: &Instrument) -> Result<Mark, RiskError> {
        if let Some(price) = self.market.mark.get(&instrument.name) {
            return Ok(Mark {
                price: price.value(),
                source: MarkSource::Given,
            });
        }
        match &instrument.terms {
            Terms::Perpetual | Terms::Future { .. } => Ok(Mark {
                price: self.index_for(&instrument.underlying, || {
                    format!("the mark of {}", instrument.name)
                })?,
                source: MarkSource::Index,
            }),
            Terms::Option {
                expiry,
                strike,
                right,
            } => self.option_mark(instrument, *expiry, strike.to_f64(), *right),
        }
    }

    /// The volatility an option without a given mark is priced at: the underlying's surface at
    /// its strike and time to expiry (`0` once expired).
    ///
    /// # Errors
    /// [`RiskError::MissingOptionMark`] when the underlying has no surface.
    pub fn model_volatility(
        &self,
        instrument: &Instrument,
        strike: f64,
        time_to_expiry: f64,
    ) -> Result<f64, RiskError> {
        if time_to_expiry <= 0.0 {
            return Ok(0.0);
        }
        let surface = self.surfaces.get(&instrument.underlying).ok_or_else(|| {
            RiskError::MissingOptionMark {
                instrument: instrument.name.clone(),
                underlying: instrument.underlying.clone(),
            }
        })?;
        Ok(surface.volatility(strike, time_to_expiry))
    }

    fn option_mark(
        &self,
        instrument: &Instrument,
        expiry: Timestamp,
        strike: f64,
        right: OptionRight,
    ) -> Result<Mark, RiskError> {
        let underlying = self.index_for(&instrument.underlying, || {
            format!("pricing {}", instrument.name)
        })?;
        self.option_mark_at(instrument, expiry, strike, right, underlying)
    }

    /// The model mark of an option (no given mark) with its underlying's index at
    /// `underlying` (USD) rather than the market's: what the mark becomes when the underlying
    /// alone moves (the surface is by strike and time, so a price move leaves it as it is).
    ///
    /// # Errors
    /// As [`MarketView::mark`].
    pub fn model_mark_at(
        &self,
        instrument: &Instrument,
        underlying: Decimal,
    ) -> Result<Option<Mark>, RiskError> {
        match &instrument.terms {
            Terms::Option {
                expiry,
                strike,
                right,
            } => self
                .option_mark_at(instrument, *expiry, strike.to_f64(), *right, underlying)
                .map(Some),
            Terms::Perpetual | Terms::Future { .. } => Ok(None),
        }
    }

    fn option_mark_at(
        &self,
        instrument: &Instrument,
        expiry: Timestamp,
        strike: f64,
        right: OptionRight,
        underlying: Decimal,
    ) -> Result<Mark, RiskError> {
        let spot = underlying.to_f64().unwrap_or(f64::NAN);
        let time = self.years_to(expiry).max(0.0);
        let volatility = self.model_volatility(instrument, strike, time)?;
        // Crypto options are priced on the forward; without a quoted future of the same expiry
        // the forward is the index carried at the market rate, F = S * exp(r T) (Black 1976).
        let rate = self.market.rate;
        let forward = spot * (rate * time).exp();
        let discount_factor = (-rate * time).exp();
        let model = Black76::new_checked(forward, strike, time, volatility, discount_factor)
            .map_err(|error| RiskError::Pricing {
                path: format!("vol.{}", instrument.underlying),
                problem: error.to_string(),
            })?;
        let usd = model.price(option_type(right));
        let premium = match instrument.style {
            Style::Linear => usd,
            // Inverse options are quoted in coin: the USD premium divided by the underlying price.
            Style::Inverse => usd / spot,
        };
        // Kept at the model's full precision: rounding it either way would favour one side of
        // the option; the figures built on it are rounded toward the venue where they are made.
        let price = model_price_from_f64(
            premium,
            format_args!("the model mark of {}", instrument.name),
        )?;
        Ok(Mark {
            price,
            source: MarkSource::Model {
                volatility,
                time_to_expiry: time,
            },
        })
    }

    /// One-day standard deviation of the underlying's log price, from the at-the-money implied
    /// volatility of the nearest smile (`sigma / sqrt(365)`); `None` without a surface.
    #[must_use]
    pub fn daily_standard_deviation(&self, underlying: &str) -> Option<f64> {
        let surface = self.surfaces.get(underlying)?;
        let spot = self.market.index.get(underlying)?.to_f64();
        let thirty_days = 30.0 / 365.0;
        let volatility = surface.volatility(spot, thirty_days);
        (volatility.is_finite() && volatility > 0.0).then(|| volatility / 365.0_f64.sqrt())
    }
}

/// Maps the domain's option right onto the pricer's option type.
#[must_use]
pub fn option_type(right: OptionRight) -> OptionType {
    match right {
        OptionRight::Call => OptionType::Call,
        OptionRight::Put => OptionType::Put,
    }
}

fn years_between(from: Timestamp, to: Timestamp) -> f64 {
    let seconds = to.as_second() - from.as_second();
    let nanos = f64::from(to.subsec_nanosecond() - from.subsec_nanosecond());
    (seconds as f64 + nanos * 1e-9) / SECONDS_PER_YEAR
}
