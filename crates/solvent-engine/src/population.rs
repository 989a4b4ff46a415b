//! Seeded populations of leveraged accounts for the liquidation-cascade simulation (DESIGN.md
//! 8.4).
//!
//! [`generate`] draws `N` accounts from a ChaCha8 stream seeded with [`PopulationParams::seed`]
//! and writes them as ordinary events: one index price per underlying, then per account its
//! deposits, its leverage settings and its fills against `external`. A population is therefore
//! just an `EVENTS.jsonl` stream that the engine replays; nothing here knows about the cascade.
//!
//! # Calibration
//! Each default, with where it comes from (`../shared/data/prices`, Binance spot daily klines;
//! "2025" is the 365 daily rows 2025-01-01..2025-12-31):
//!
//! | what | default | source |
//! | --- | --- | --- |
//! | prices | BTC 93,859.71, ETH 3,224.99 | close of 2026-01-05, the last complete day in the files |
//! | daily volatility | BTC 2.1805%, ETH 3.8963% | population standard deviation of 2025's daily log returns of the close |
//! | daily volume (ADV) | BTC 1,808,517,626 USD, ETH 1,569,063,906 USD | median over 2025 of `volume x close` |
//! | which underlying | BTC 53.5%, ETH 46.5% | in proportion to the ADVs above |
//! | open interest | 1 x ADV per underlying | ASSUMPTION: the population stands for a venue's liquidatable open interest, set equal to one median day of spot volume; the impact of a cascade scales with open interest / ADV, so this is the knob that matters (see [`PopulationParams::open_interest_adv_ratio`]) |
//! | sizes | log-normal, sigma 1.5, median derived from the open interest | ASSUMPTION: sigma 1.5 gives a heavy right tail (top 1% of positions about 30x the median) |
//! | leverage | Pareto, minimum 2x, tail index 1.2, capped at 50x and at the venue's limit | ASSUMPTION: gives 85% of positions at 2-10x and 6% above 20x |
//! | long share | 60% | ASSUMPTION: the population is skewed long, as leveraged crypto books usually are before a sell-off |
//! | second leg | 15% of USDT accounts also hold the other underlying (cross margin) | ASSUMPTION |
//! | inverse | 20% of BTC accounts trade `BTC-PERPETUAL` with BTC collateral | ASSUMPTION (Deribit-style coin-margined book) |
//! | BTC collateral | 10% of USDT accounts keep 30-70% of their collateral in BTC | ASSUMPTION |
//! | entries | `price x exp(sigma_daily x sqrt(3) x Z)` | a position opened over the last ~3 days (ASSUMPTION: holding horizon) at the daily volatility above |
//! | fees | 0.05% taker on every fill | ASSUMPTION: a common regular-tier taker rate |
//!
//! The account's leverage is its notional over its equity at today's price. Positions that have
//! lost since entry were topped up to that leverage (accounts that would already have been
//! liquidated are not in the book: the population is conditioned on being alive today);
//! positions in profit keep at least half the collateral their leverage asks for, so their
//! equity is higher and their effective leverage lower. Every account starts covering its
//! initial margin under the venue's rule.
//!
//! On another venue than the default, [`market_for`] takes the venue's own perpetuals (its
//! linear one on BTC and ETH settled in its settlement asset, its inverse one on BTC settled in
//! BTC), sizes each position's collateral by the venue's own margin rule (brackets by value or
//! in contracts, size-linear, size premium, open-interest scaled at its base fraction), and
//! gives BTC collateral only where the venue counts BTC, bought to cover after its haircut. A
//! coin-margined venue (no stablecoin-settled perpetual) cannot host the population.
//!
//! Same seed, same parameters, same venue: the same events. (The draws go through `f64`
//! `ln`/`exp`/`cos`; every drawn figure is rounded to a size step or a cent before it becomes an
//! event, so the platform's last-bit differences in those functions do not show in practice.)

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::venue::{MarginRule, Venue};
use thiserror::Error;

use crate::event::{Deposit, Envelope, Event, Fill, IndexPrice, SetLeverage, Side};
use crate::ledger::EXTERNAL;

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 20_251_010;

/// One underlying's market, calibrated from the shared price history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnderlyingMarket {
    /// Index name (`BTC`).
    pub underlying: String,
    /// The current index price, USD.
    pub price: Decimal,
    /// Standard deviation of daily log returns.
    pub daily_volatility: f64,
    /// Median daily traded value, USD.
    pub adv_usd: Decimal,
    /// The linear (USDT-settled) perpetual on it.
    pub linear: String,
    /// The inverse (coin-settled) perpetual on it, when the population trades one.
    pub inverse: Option<String>,
}

/// The calibrated default market: BTC and ETH (see the module documentation for the sources).
#[must_use]
pub fn default_market() -> Vec<UnderlyingMarket> {
    vec![
        UnderlyingMarket {
            underlying: "BTC".to_owned(),
            // BTC-USDT.binance.daily.csv, close of 2026-01-05.
            price: Decimal::new(9_385_971, 2),
            // Population standard deviation of the 364 daily log returns of 2025's closes.
            daily_volatility: 0.021_805,
            // Median of volume x close over the 365 rows of 2025.
            adv_usd: Decimal::from(1_808_517_626_u64),
            linear: "BTCUSDT".to_owned(),
            inverse: Some("BTC-PERPETUAL".to_owned()),
        },
        UnderlyingMarket {
            underlying: "ETH".to_owned(),
            // ETH-USDT.binance.daily.csv, close of 2026-01-05.
            price: Decimal::new(322_499, 2),
            daily_volatility: 0.038_963,
            adv_usd: Decimal::from(1_569_063_906_u64),
            linear: "ETHUSDT".to_owned(),
            inverse: None,
        },
    ]
}

/// The calibrated market on `venue`'s own contracts: for BTC and ETH, the venue's linear
/// perpetual settled in its settlement asset (the default's name when the venue lists it, else
/// the first such perpetual it lists) and, for BTC, its inverse perpetual settled in BTC when it
/// lists one. An underlying the venue has no such linear perpetual on is left out.
///
/// # Errors
/// [`PopulationError::Venue`] when the venue has a linear perpetual settled in its settlement
/// asset on neither BTC nor ETH (a coin-margined venue: the population's accounts hold
/// stablecoin collateral).
pub fn market_for(venue: &Venue) -> Result<Vec<UnderlyingMarket>, PopulationError> {
    let perpetual = |underlying: &str, style: Style, settlement: &str, preferred: Option<&str>| {
        let fits = |instrument: &Instrument| {
            instrument.terms == Terms::Perpetual
                && instrument.style == style
                && instrument.underlying == underlying
                && instrument.settlement == settlement
        };
        preferred
            .and_then(|name| venue.instrument(name).ok())
            .filter(|instrument| fits(instrument))
            .map(|instrument| instrument.name.clone())
            .or_else(|| {
                venue
                    .listed_instruments()
                    .find(|instrument| fits(instrument))
                    .map(|instrument| instrument.name.clone())
            })
    };
    let settlement = venue.settlement_asset.as_str();
    let market: Vec<UnderlyingMarket> = default_market()
        .into_iter()
        .filter_map(|spec| {
            let linear = perpetual(
                &spec.underlying,
                Style::Linear,
                settlement,
                Some(&spec.linear),
            )?;
            let inverse = spec.inverse.as_deref().and_then(|name| {
                perpetual(
                    &spec.underlying,
                    Style::Inverse,
                    &spec.underlying,
                    Some(name),
                )
            });
            Some(UnderlyingMarket {
                linear,
                inverse,
                ..spec
            })
        })
        .collect();
    if market.is_empty() {
        return Err(PopulationError::Venue(format!(
            "the venue lists no linear perpetual on BTC or ETH settled in its settlement asset {settlement}"
        )));
    }
    Ok(market)
}

/// What to draw. `Default` is the calibrated population of the module documentation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PopulationParams {
    /// Number of accounts.
    pub accounts: usize,
    /// Seed of the ChaCha8 stream.
    pub seed: u64,
    /// Time of the first event; each further event is one millisecond later.
    #[serde(serialize_with = "timestamp_text")]
    pub start: Timestamp,
    /// The underlyings and their instruments.
    pub market: Vec<UnderlyingMarket>,
    /// Expected total notional per underlying, as a multiple of its ADV.
    pub open_interest_adv_ratio: f64,
    /// Sigma of the log-normal position notional.
    pub size_sigma: f64,
    /// Smallest leverage (Pareto scale).
    pub leverage_min: f64,
    /// Pareto tail index of leverage (smaller: heavier tail).
    pub leverage_tail_index: f64,
    /// Largest leverage drawn (the venue's limit may be lower).
    pub leverage_max: f64,
    /// Probability that a position is long.
    pub long_share: f64,
    /// Probability that a USDT account also holds a position on another underlying.
    pub second_leg_share: f64,
    /// Probability that an account on an underlying with an inverse perpetual trades it.
    pub inverse_share: f64,
    /// Probability that a USDT account keeps part of its collateral in BTC.
    pub btc_collateral_share: f64,
    /// Days over which entries are spread (their log-deviation is `vol x sqrt(days)`).
    pub holding_days: f64,
    /// Taker fee rate on each fill.
    pub taker_fee_rate: Decimal,
}

impl Default for PopulationParams {
    fn default() -> Self {
        Self {
            accounts: 2_000,
            seed: DEFAULT_SEED,
            // The day after the last complete day of the shared price files.
            start: Timestamp::from_second(1_767_657_600).unwrap_or(Timestamp::UNIX_EPOCH),
            market: default_market(),
            open_interest_adv_ratio: 1.0,
            size_sigma: 1.5,
            leverage_min: 2.0,
            leverage_tail_index: 1.2,
            leverage_max: 50.0,
            long_share: 0.6,
            second_leg_share: 0.15,
            inverse_share: 0.2,
            btc_collateral_share: 0.1,
            holding_days: 3.0,
            taker_fee_rate: Decimal::new(5, 4),
        }
    }
}

fn timestamp_text<S: serde::Serializer>(ts: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(ts)
}

/// Why a population cannot be drawn.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PopulationError {
    /// A parameter outside its range.
    #[error("{name}: {problem}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The venue does not list an instrument or asset the population needs.
    #[error("the venue cannot host the population: {0}")]
    Venue(String),
    /// The instrument's margin rule is not one the generator can size against.
    #[error(
        "{instrument}: margin rule {rule:?} is not supported by the population generator (tiered and size_linear are)"
    )]
    UnsupportedMarginRule {
        /// The instrument.
        instrument: String,
        /// Its rule.
        rule: String,
    },
    /// A drawn figure fell outside the exact range.
    #[error("a drawn figure is out of range: {0}")]
    OutOfRange(String),
}

/// One drawn position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LegSpec {
    /// Instrument.
    pub instrument: String,
    /// Underlying.
    pub underlying: String,
    /// Signed size (instrument units).
    pub size: Decimal,
    /// Entry price.
    pub entry: Decimal,
    /// Notional at today's price, USD.
    pub notional_usd: Decimal,
    /// The drawn leverage (notional over the equity the account holds for this leg).
    pub leverage: f64,
    /// The leverage set on the venue (tiered rules only).
    pub leverage_setting: Option<Decimal>,
}

/// One drawn account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountSpec {
    /// Id.
    pub id: String,
    /// Collateral deposited, by asset.
    pub collateral: BTreeMap<String, Decimal>,
    /// Positions.
    pub legs: Vec<LegSpec>,
}

/// A drawn population: the accounts and the events that create them.
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    /// The accounts, in event order.
    pub accounts: Vec<AccountSpec>,
    /// The events: index prices, then each account's deposits, leverage settings and fills.
    pub events: Vec<Envelope>,
}

impl Population {
    /// The events as `EVENTS.jsonl` text (one line each, newline-terminated).
    #[must_use]
    pub fn to_jsonl(&self) -> String {
        let mut text = String::new();
        for event in &self.events {
            text.push_str(&crate::event::to_line(event));
            text.push('\n');
        }
        text
    }
}

/// Appends events with increasing sequence numbers, one millisecond apart, to the batch being
/// handed out.
struct Writer {
    events: Vec<Envelope>,
    /// Events written before this batch.
    written: u64,
    start: Timestamp,
}

impl Writer {
    fn push(&mut self, event: Event) {
        let n = self.written + self.events.len() as u64;
        let ts = self
            .start
            .checked_add(SignedDuration::from_millis(
                i64::try_from(n).unwrap_or(i64::MAX),
            ))
            .unwrap_or(self.start);
        self.events.push(Envelope {
            seq: n + 1,
            ts,
            event,
        });
    }

    /// Hands out the batch written so far.
    fn take(&mut self) -> Vec<Envelope> {
        let events = std::mem::take(&mut self.events);
        self.written += events.len() as u64;
        events
    }
}

/// Draws a population one account at a time, so that a caller writing it out holds one
/// account's events at a time, never the whole population (a million accounts are 3.2 million
/// events). [`Draw::opening`] gives the index prices that come first; each item of the iterator
/// is the next account with the events that create it. Collected, the items are exactly what
/// [`generate`] returns.
pub struct Draw<'a> {
    params: &'a PopulationParams,
    markets: Vec<Resolved<'a>>,
    shares: Vec<f64>,
    medians: Vec<f64>,
    rng: ChaCha8Rng,
    writer: Writer,
    opening: Vec<Envelope>,
    /// The number of the next account (from 1).
    next: usize,
    /// Digits of an account's number (`acct-0001`).
    width: usize,
    /// Set once a draw failed: the iterator ends after reporting it.
    failed: bool,
}

impl<'a> Draw<'a> {
    /// Checks the parameters against the venue and prepares the draw.
    ///
    /// # Errors
    /// [`PopulationError`] for a parameter out of range, a venue without the instruments or
    /// assets needed, or a price out of range.
    pub fn new(venue: &Venue, params: &'a PopulationParams) -> Result<Self, PopulationError> {
        check_params(params)?;
        let markets = resolve(venue, params)?;
        let total_adv: f64 = markets.iter().map(|m| m.adv_usd).sum();
        let shares: Vec<f64> = markets.iter().map(|m| m.adv_usd / total_adv).collect();
        let medians = median_notionals(params, &markets, &shares);
        let mut writer = Writer {
            events: Vec::new(),
            written: 0,
            start: params.start,
        };
        for market in &markets {
            writer.push(Event::IndexPrice(IndexPrice {
                underlying: market.spec.underlying.clone(),
                price: price(market.spec.price)?,
                source: None,
            }));
        }
        let opening = writer.take();
        Ok(Self {
            params,
            markets,
            shares,
            medians,
            rng: ChaCha8Rng::seed_from_u64(params.seed),
            writer,
            opening,
            next: 1,
            width: params.accounts.to_string().len().max(4),
            failed: false,
        })
    }

    /// The events before the first account: one index price per underlying.
    #[must_use]
    pub fn opening(&self) -> &[Envelope] {
        &self.opening
    }

    fn draw_next(&mut self) -> Result<(AccountSpec, Vec<Envelope>), PopulationError> {
        let id = format!("acct-{:0width$}", self.next, width = self.width);
        self.next += 1;
        let account = draw_account(
            &mut self.rng,
            id,
            self.params,
            &self.markets,
            &self.shares,
            &self.medians,
        )?;
        write_account(
            &mut self.writer,
            &account,
            &self.markets,
            self.params.taker_fee_rate,
        )?;
        Ok((account, self.writer.take()))
    }
}

impl Iterator for Draw<'_> {
    /// The next account and its events (deposits, leverage settings, fills), or why it could
    /// not be drawn (then the iterator ends).
    type Item = Result<(AccountSpec, Vec<Envelope>), PopulationError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next > self.params.accounts {
            return None;
        }
        let drawn = self.draw_next();
        self.failed = drawn.is_err();
        Some(drawn)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.failed {
            0
        } else {
            (self.params.accounts + 1).saturating_sub(self.next)
        };
        (0, Some(left))
    }
}

/// Draws the population.
///
/// # Errors
/// [`PopulationError`] for a parameter out of range, a venue without the instruments or assets
/// needed, or a margin rule the generator cannot size against.
pub fn generate(venue: &Venue, params: &PopulationParams) -> Result<Population, PopulationError> {
    let mut draw = Draw::new(venue, params)?;
    let mut events = std::mem::take(&mut draw.opening);
    let mut accounts = Vec::with_capacity(params.accounts);
    for drawn in draw {
        let (account, created) = drawn?;
        events.extend(created);
        accounts.push(account);
    }
    Ok(Population { accounts, events })
}

fn check_params(params: &PopulationParams) -> Result<(), PopulationError> {
    let fail = |name, problem: &str| {
        Err(PopulationError::InvalidParameter {
            name,
            problem: problem.to_owned(),
        })
    };
    let probability = |p: f64| (0.0..=1.0).contains(&p);
    if params.accounts == 0 || params.accounts > 10_000_000 {
        return fail("accounts", "must be between 1 and 10,000,000");
    }
    if params.market.is_empty() {
        return fail("market", "needs at least one underlying");
    }
    if !(params.open_interest_adv_ratio.is_finite() && params.open_interest_adv_ratio > 0.0) {
        return fail("open_interest_adv_ratio", "must be positive");
    }
    if !(params.size_sigma.is_finite() && (0.0..=5.0).contains(&params.size_sigma)) {
        return fail("size_sigma", "must be between 0 and 5");
    }
    if !(params.leverage_min >= 1.0
        && params.leverage_max >= params.leverage_min
        && params.leverage_max.is_finite())
    {
        return fail("leverage_min/leverage_max", "need 1 <= min <= max");
    }
    if !(params.leverage_tail_index.is_finite() && params.leverage_tail_index > 0.0) {
        return fail("leverage_tail_index", "must be positive");
    }
    for (name, p) in [
        ("long_share", params.long_share),
        ("second_leg_share", params.second_leg_share),
        ("inverse_share", params.inverse_share),
        ("btc_collateral_share", params.btc_collateral_share),
    ] {
        if !probability(p) {
            return fail(name, "must be a probability in [0, 1]");
        }
    }
    if !(params.holding_days.is_finite() && params.holding_days >= 0.0) {
        return fail("holding_days", "must be non-negative");
    }
    if params.taker_fee_rate < Decimal::ZERO || params.taker_fee_rate > Decimal::new(1, 2) {
        return fail("taker_fee_rate", "must be between 0 and 0.01");
    }
    for market in &params.market {
        if market.price <= Decimal::ZERO || market.adv_usd <= Decimal::ZERO {
            return fail("market", "prices and ADVs must be positive");
        }
        if !(market.daily_volatility.is_finite() && market.daily_volatility >= 0.0) {
            return fail("market", "daily volatility must be non-negative");
        }
    }
    Ok(())
}

/// An underlying with its instruments looked up in the venue.
struct Resolved<'a> {
    spec: &'a UnderlyingMarket,
    price: f64,
    adv_usd: f64,
    linear: Arc<Instrument>,
    inverse: Option<Arc<Instrument>>,
    /// The share of the coin's value the venue counts as collateral (its first tier's ratio:
    /// an account's coins are far below the next); `None` where the coin is not collateral.
    collateral_ratio: Option<f64>,
}

fn resolve<'a>(
    venue: &Venue,
    params: &'a PopulationParams,
) -> Result<Vec<Resolved<'a>>, PopulationError> {
    let mut markets = Vec::new();
    for spec in &params.market {
        let linear = venue
            .instrument(&spec.linear)
            .map_err(PopulationError::Venue)?;
        let inverse = spec
            .inverse
            .as_deref()
            .map(|name| venue.instrument(name))
            .transpose()
            .map_err(PopulationError::Venue)?;
        for instrument in std::iter::once(&linear).chain(inverse.as_ref()) {
            if instrument.underlying != spec.underlying {
                return Err(PopulationError::Venue(format!(
                    "{} is on {}, not {}",
                    instrument.name, instrument.underlying, spec.underlying
                )));
            }
            venue
                .asset(&instrument.settlement)
                .map_err(PopulationError::Venue)?;
        }
        if linear.style != Style::Linear {
            return Err(PopulationError::Venue(format!(
                "{} is not linear",
                linear.name
            )));
        }
        if let Some(inverse) = &inverse
            && (inverse.style != Style::Inverse || inverse.settlement != spec.underlying)
        {
            return Err(PopulationError::Venue(format!(
                "{} is not an inverse perpetual settled in {}",
                inverse.name, spec.underlying
            )));
        }
        let collateral_ratio = venue
            .collateral
            .get(spec.underlying.as_str())
            .and_then(|schedule| schedule.tiers.first())
            .map(|tier| to_f64(tier.ratio))
            .filter(|ratio| *ratio > 0.0);
        markets.push(Resolved {
            spec,
            price: to_f64(spec.price),
            adv_usd: to_f64(spec.adv_usd),
            linear,
            inverse,
            collateral_ratio,
        });
    }
    let settlement = &venue.settlement_asset;
    if markets.iter().any(|m| &m.linear.settlement != settlement) {
        return Err(PopulationError::Venue(format!(
            "the linear perpetuals must settle in the venue's settlement asset {settlement}"
        )));
    }
    Ok(markets)
}

/// The median notional per underlying that makes the expected open interest `ratio x ADV`:
/// expected legs on `u` = N x (share_u + second_leg x (1 - share_u) / (K - 1)), and the mean of a
/// log-normal is `median x exp(sigma^2 / 2)`.
fn median_notionals(
    params: &PopulationParams,
    markets: &[Resolved<'_>],
    shares: &[f64],
) -> Vec<f64> {
    let others = (markets.len().saturating_sub(1)).max(1) as f64;
    let second = if markets.len() > 1 {
        params.second_leg_share
    } else {
        0.0
    };
    markets
        .iter()
        .zip(shares)
        .map(|(market, share)| {
            let legs = params.accounts as f64 * (share + second * (1.0 - share) / others);
            let mean = params.open_interest_adv_ratio * market.adv_usd / legs.max(1.0);
            mean / (params.size_sigma * params.size_sigma / 2.0).exp()
        })
        .collect()
}

/// A uniform draw in (0, 1].
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    1.0 - rng.random::<f64>()
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let radius = (-2.0 * unit(rng).ln()).sqrt();
    radius * (std::f64::consts::TAU * rng.random::<f64>()).cos()
}

fn pick(rng: &mut ChaCha8Rng, shares: &[f64]) -> usize {
    let mut draw = rng.random::<f64>();
    for (index, share) in shares.iter().enumerate() {
        if draw < *share {
            return index;
        }
        draw -= share;
    }
    shares.len() - 1
}

fn draw_account(
    rng: &mut ChaCha8Rng,
    id: String,
    params: &PopulationParams,
    markets: &[Resolved<'_>],
    shares: &[f64],
    medians: &[f64],
) -> Result<AccountSpec, PopulationError> {
    let primary = pick(rng, shares);
    let inverse = markets[primary].inverse.is_some() && rng.random::<f64>() < params.inverse_share;
    let mut picks = vec![(primary, inverse)];
    if !inverse && markets.len() > 1 && rng.random::<f64>() < params.second_leg_share {
        let offset = 1 + rng.random_range(0..markets.len() - 1);
        picks.push(((primary + offset) % markets.len(), false));
    }
    let mut legs = Vec::new();
    let mut collateral_usd = 0.0;
    for (index, inverse) in picks {
        let (leg, needed_usd) = draw_leg(rng, params, &markets[index], medians[index], inverse)?;
        collateral_usd += needed_usd;
        legs.push(leg);
    }
    let mut collateral = BTreeMap::new();
    // BTC collateral only where the venue counts BTC as collateral, bought to cover its share
    // after the venue's haircut.
    let btc = markets
        .iter()
        .find(|m| m.spec.underlying == "BTC")
        .and_then(|m| Some((m, m.collateral_ratio?)));
    if inverse {
        let market = &markets[primary];
        let coin = credit_up(collateral_usd / market.price, 8)?;
        collateral.insert(market.spec.underlying.clone(), coin);
    } else {
        let settlement = markets[primary].linear.settlement.clone();
        let mut usdt_usd = collateral_usd;
        if let Some((btc, ratio)) = btc
            && rng.random::<f64>() < params.btc_collateral_share
        {
            let share = rng.random_range(0.3..0.7);
            let coin = credit_up(collateral_usd * share / (btc.price * ratio), 8)?;
            collateral.insert(btc.spec.underlying.clone(), coin);
            usdt_usd = collateral_usd * (1.0 - share);
        }
        collateral.insert(settlement, credit_up(usdt_usd, 2)?);
    }
    Ok(AccountSpec {
        id,
        collateral,
        legs,
    })
}

/// Draws one position; returns it with the collateral (USD) it needs: enough for its leverage
/// after its unrealised P&L and the fee, and never less than its initial margin.
fn draw_leg(
    rng: &mut ChaCha8Rng,
    params: &PopulationParams,
    market: &Resolved<'_>,
    median_usd: f64,
    inverse: bool,
) -> Result<(LegSpec, f64), PopulationError> {
    let instrument = if inverse {
        market.inverse.as_ref().unwrap_or(&market.linear)
    } else {
        &market.linear
    };
    let long = rng.random::<f64>() < params.long_share;
    let pareto = params.leverage_min * unit(rng).powf(-1.0 / params.leverage_tail_index);
    let drawn_leverage = pareto.min(params.leverage_max);
    let target_usd = median_usd * (params.size_sigma * normal(rng)).exp();
    let deviation = market.spec.daily_volatility * params.holding_days.sqrt() * normal(rng);
    let entry = round_price(market.price * deviation.exp())?;
    // A size is a multiple of the size step, and an inverse perpetual's (USD) a whole number of
    // contracts too. A linear size counts contracts of `contract_size` coins and steps by the
    // size step alone: the larger of the two made every BTCUSDT position a whole bitcoin, so a
    // large population, whose median position is small, overshot its open interest (47 billion
    // USD of BTC at 1,000,000 accounts against the 1.8 billion meant).
    let step = match instrument.style {
        Style::Inverse => instrument.size_step.max(instrument.contract_size),
        Style::Linear => instrument.size_step,
    };
    let units = match instrument.style {
        // Inverse: size is USD, a multiple of the contract size.
        Style::Inverse => decimal(target_usd)?,
        Style::Linear => decimal(target_usd / market.price)? / instrument.contract_size,
    };
    let size = ((units / step).round() * step).max(step);
    let signed = if long { size } else { -size };
    let price = market.spec.price;
    let notional_usd = match instrument.style {
        Style::Inverse => size,
        Style::Linear => size * instrument.contract_size * price,
    };
    let upnl_usd = match instrument.style {
        Style::Inverse => signed * (Decimal::ONE / entry - Decimal::ONE / price) * price,
        Style::Linear => signed * instrument.contract_size * (price - entry),
    };
    let size_coin = match instrument.style {
        Style::Inverse => size / price,
        Style::Linear => size * instrument.contract_size,
    };
    let (rate, setting, leverage) =
        initial_rate(instrument, notional_usd, size_coin, drawn_leverage)?;
    let notional = to_f64(notional_usd);
    // 0.1% above the larger of the leverage's equity and the initial margin: rounding of the
    // fee and the collateral must not leave an account a hair under its initial margin.
    let equity_usd = (notional / leverage).max(notional * rate) * 1.001;
    let leg = LegSpec {
        instrument: instrument.name.clone(),
        underlying: market.spec.underlying.clone(),
        size: signed,
        entry,
        notional_usd,
        leverage,
        leverage_setting: setting,
    };
    // The fee is paid in the settlement asset: coin for inverse, at today's price.
    let fee = fill_fee(instrument, &leg, params.taker_fee_rate);
    let fee_usd = to_f64(match instrument.style {
        Style::Inverse => fee * price,
        Style::Linear => fee,
    });
    let needed_usd = (equity_usd - to_f64(upnl_usd)).max(equity_usd / 2.0) + fee_usd;
    Ok((leg, needed_usd))
}

/// The initial margin rate of a position under the instrument's rule, the leverage setting to
/// send (tiered rules), and the leverage the account may actually run (the drawn one, lowered to
/// what the rule allows).
fn initial_rate(
    instrument: &Instrument,
    notional_usd: Decimal,
    size_coin: Decimal,
    drawn: f64,
) -> Result<(f64, Option<Decimal>, f64), PopulationError> {
    match instrument.margin.as_ref() {
        MarginRule::Tiered { tiers, .. } => {
            let tier = tiers
                .iter()
                .find(|t| t.up_to.is_none_or(|up_to| notional_usd <= up_to))
                .or_else(|| tiers.last())
                .ok_or_else(|| {
                    PopulationError::Venue(format!("{} has no tiers", instrument.name))
                })?;
            let first_max = tiers.first().map_or(tier.max_leverage, |t| t.max_leverage);
            let allowed = to_f64(tier.max_leverage.min(first_max));
            let leverage = drawn.min(allowed);
            let setting = Decimal::from_f64(leverage.ceil().min(allowed))
                .ok_or_else(|| PopulationError::OutOfRange(format!("leverage {leverage}")))?;
            Ok((1.0 / to_f64(setting), Some(setting), leverage))
        }
        MarginRule::SizeLinear {
            initial_base,
            rate_per_unit,
            max_rate,
            ..
        } => {
            let rate = to_f64((*initial_base + *rate_per_unit * size_coin).min(*max_rate));
            Ok((rate, None, drawn.min(1.0 / rate)))
        }
        MarginRule::DeribitOption { .. } => Err(PopulationError::UnsupportedMarginRule {
            instrument: instrument.name.clone(),
            rule: instrument.margin.name().to_owned(),
        }),
        // The other rules (OKX's brackets in contracts, Drift's size premium, dYdX's
        // open-interest scaling) through the margin model itself: the position's initial margin
        // at the drawn leverage, lowered to its bracket's maximum where the rule has brackets.
        // dYdX's open interest is taken at zero (its base fraction): the population is the
        // open interest it would scale with, and is drawn before it exists.
        _ => {
            let price = if size_coin.is_zero() {
                Decimal::ZERO
            } else {
                notional_usd / size_coin
            };
            let setting = |leverage: f64| {
                Decimal::from_f64(leverage.ceil())
                    .ok_or_else(|| PopulationError::OutOfRange(format!("leverage {leverage}")))
            };
            let requirement = |leverage: Option<Decimal>| {
                solvent_risk::standard::requirement(&solvent_risk::standard::Exposure {
                    instrument,
                    size: match instrument.style {
                        Style::Inverse => notional_usd,
                        Style::Linear => size_coin / instrument.contract_size,
                    },
                    mark: price,
                    underlying_usd: price,
                    leverage,
                    open_interest_usd: Some(Decimal::ZERO),
                    expired: false,
                })
                .map_err(|error| PopulationError::Venue(format!("{}: {error}", instrument.name)))
            };
            let bracketed = instrument.margin.tiers().is_some();
            let mut chosen = bracketed.then(|| setting(drawn)).transpose()?;
            let mut found = requirement(chosen)?;
            if let solvent_risk::standard::Basis::Tiered {
                leverage: allowed,
                requested_leverage: Some(_),
                ..
            } = &found.basis
            {
                chosen = Some(*allowed);
                found = requirement(chosen)?;
            }
            // Initial margin in the settlement currency over the value in it: the rate.
            let value = match instrument.style {
                Style::Inverse => size_coin,
                Style::Linear => notional_usd,
            };
            let rate = if value.is_zero() {
                0.0
            } else {
                to_f64(found.initial / value)
            };
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(PopulationError::Venue(format!(
                    "{}: no positive initial margin rate for a position of {notional_usd} USD",
                    instrument.name
                )));
            }
            let leverage = drawn
                .min(chosen.map_or(f64::INFINITY, to_f64))
                .min(1.0 / rate);
            Ok((rate, chosen, leverage))
        }
    }
}

fn write_account(
    writer: &mut Writer,
    account: &AccountSpec,
    markets: &[Resolved<'_>],
    fee_rate: Decimal,
) -> Result<(), PopulationError> {
    for (asset, amount) in &account.collateral {
        writer.push(Event::Deposit(Deposit {
            account: account.id.clone(),
            asset: asset.clone(),
            amount: Amount(*amount),
        }));
    }
    for leg in &account.legs {
        if let Some(leverage) = leg.leverage_setting {
            writer.push(Event::SetLeverage(SetLeverage {
                account: account.id.clone(),
                instrument: leg.instrument.clone(),
                leverage,
            }));
        }
    }
    for leg in &account.legs {
        let market = markets
            .iter()
            .find(|m| m.spec.underlying == leg.underlying)
            .ok_or_else(|| PopulationError::Venue(format!("no market for {}", leg.underlying)))?;
        let instrument = market
            .inverse
            .as_ref()
            .filter(|i| i.name == leg.instrument)
            .unwrap_or(&market.linear);
        writer.push(Event::Fill(Fill {
            account: account.id.clone(),
            instrument: leg.instrument.clone(),
            side: if leg.size > Decimal::ZERO {
                Side::Buy
            } else {
                Side::Sell
            },
            size: Quantity(leg.size.abs()),
            price: price(leg.entry)?,
            fee: Amount(fill_fee(instrument, leg, fee_rate)),
            counterparty: EXTERNAL.to_owned(),
        }));
    }
    Ok(())
}

/// The taker fee of the opening fill, in the settlement asset, rounded up to its precision (a
/// charge never favours the account).
fn fill_fee(instrument: &Instrument, leg: &LegSpec, rate: Decimal) -> Decimal {
    let notional = match instrument.style {
        Style::Inverse => leg.size.abs() / leg.entry,
        Style::Linear => leg.size.abs() * instrument.contract_size * leg.entry,
    };
    let decimals = if instrument.style == Style::Inverse {
        8
    } else {
        2
    };
    (notional * rate).round_dp_with_strategy(decimals, RoundingStrategy::AwayFromZero)
}

fn to_f64(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

fn decimal(value: f64) -> Result<Decimal, PopulationError> {
    Decimal::from_f64(value).ok_or_else(|| PopulationError::OutOfRange(format!("{value}")))
}

fn round_price(value: f64) -> Result<Decimal, PopulationError> {
    Ok(decimal(value)?.round_dp(2))
}

fn credit_up(value: f64, decimals: u32) -> Result<Decimal, PopulationError> {
    Ok(decimal(value)?
        .round_dp_with_strategy(decimals, RoundingStrategy::AwayFromZero)
        .max(Decimal::new(1, decimals)))
}

fn price(value: Decimal) -> Result<Price, PopulationError> {
    Price::new_checked(value).map_err(PopulationError::OutOfRange)
}
