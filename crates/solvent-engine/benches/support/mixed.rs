//! A mixed population for the engine's benchmarks (DESIGN.md 12: "population with options,
//! portfolio, inverse and linear accounts"), opened through ordinary events, and the streams
//! that trade on it.
//!
//! Each account is of one [`Kind`], drawn with the [`Shares`] (default 60% linear cross, 15%
//! inverse, 10% options, 10% portfolio mode, 5% isolated) from a ChaCha8 stream of its own, so
//! that with 100% linear cross the accounts are exactly those of [`super::open_account`] (the
//! population the benchmarks used before):
//!
//! | kind | what it holds |
//! | --- | --- |
//! | linear cross | [`super::open_account`] (USDT, BTCUSDT / ETHUSDT, 0.1% of them "hot" at 60-90% of the maximum leverage); in the mixed population 20% also keep 0.01-1 BTC and 15% also trade `BTC_USDC-PERPETUAL` on a USDC deposit |
//! | inverse | BTC (70%) or ETH collateral, 500-100,000 USD; the coin's perpetual (70%) or future (`BTC-27MAR26`, `BTC-27DEC26`, `ETH-27DEC26`) at 1.5-10x |
//! | options | half linear (`BTC_USDC-...` on a USDC deposit), half inverse (`BTC-...` / `ETH-...` on a coin deposit): 1-3 options near the money of one of the listed expiries, each bought or sold (about 1x the collateral in underlying for a short), and in 30% of accounts a perpetual hedge |
//! | portfolio | USDT (and, for half, BTC), `set_margin_mode portfolio`, then 3-6 positions among BTCUSDT, ETHUSDT, `BTC_USDC-PERPETUAL` and `BTC_USDC` options, about 3x the collateral in notional |
//! | isolated | USDT, a BTCUSDT or ETHUSDT position at 2-20x (hot share at 60-85% of the maximum) whose margin is then isolated with 95% of the deposit (leverage set to the venue's maximum first) |
//!
//! Options are priced by the engine from the vol surfaces of [`market_events`]: one
//! `vol_surface` per underlying and expiry (at-the-money 44% BTC, 62% ETH: Deribit's DVOL
//! closes of 2026-01-05 in `../shared/data/prices`, with a smile); fills trade options at the
//! Black-76 premium of those surfaces.

use std::f64::consts::SQRT_2;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::portfolio::MarginMode;
use solvent_engine::event::{
    Event, Fill, IndexPrice, SetIsolatedMargin, SetLeverage, SetMarginMode, Side, VolSurface,
};
use solvent_engine::ledger::EXTERNAL;

use super::{LEGS, START_MS, account_id, cents, deposit, open_account};

/// The kinds of account of the mixed population.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Linear perpetuals in the cross pool.
    LinearCross,
    /// Inverse perpetuals or futures on coin collateral.
    Inverse,
    /// Options (standard margin), linear or inverse.
    Options,
    /// Portfolio margin.
    Portfolio,
    /// One isolated linear position.
    Isolated,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::LinearCross,
        Kind::Inverse,
        Kind::Options,
        Kind::Portfolio,
        Kind::Isolated,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::LinearCross => "linear cross",
            Kind::Inverse => "inverse",
            Kind::Options => "options",
            Kind::Portfolio => "portfolio",
            Kind::Isolated => "isolated",
        }
    }
}

/// The share of each kind, in percent (they sum to 100).
#[derive(Clone, Copy, Debug)]
pub struct Shares {
    /// Linear cross accounts.
    pub linear_pct: u32,
    /// Inverse accounts.
    pub inverse_pct: u32,
    /// Option accounts.
    pub options_pct: u32,
    /// Portfolio-mode accounts.
    pub portfolio_pct: u32,
    /// Isolated accounts.
    pub isolated_pct: u32,
}

impl Shares {
    /// Today's population: every account linear cross.
    pub const LINEAR_ONLY: Shares = Shares {
        linear_pct: 100,
        inverse_pct: 0,
        options_pct: 0,
        portfolio_pct: 0,
        isolated_pct: 0,
    };

    /// The default mix: 60% linear cross, 15% inverse, 10% options, 10% portfolio, 5% isolated.
    pub const MIXED: Shares = Shares {
        linear_pct: 60,
        inverse_pct: 15,
        options_pct: 10,
        portfolio_pct: 10,
        isolated_pct: 5,
    };

    /// Parses `linear,inverse,options,portfolio,isolated` (percentages summing to 100), or the
    /// names `linear` and `mixed`.
    pub fn parse(text: &str) -> Result<Shares, String> {
        match text {
            "linear" => return Ok(Shares::LINEAR_ONLY),
            "mixed" => return Ok(Shares::MIXED),
            _ => {}
        }
        let parts: Vec<u32> = text
            .split(',')
            .map(|p| p.trim().parse::<u32>().map_err(|e| format!("{p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let [
            linear_pct,
            inverse_pct,
            options_pct,
            portfolio_pct,
            isolated_pct,
        ] = parts[..]
        else {
            return Err(format!("{text:?}: five percentages expected"));
        };
        let shares = Shares {
            linear_pct,
            inverse_pct,
            options_pct,
            portfolio_pct,
            isolated_pct,
        };
        if shares.total() != 100 {
            return Err(format!(
                "{text:?}: the shares sum to {}, not 100",
                shares.total()
            ));
        }
        Ok(shares)
    }

    fn total(&self) -> u32 {
        self.linear_pct
            + self.inverse_pct
            + self.options_pct
            + self.portfolio_pct
            + self.isolated_pct
    }

    /// Whether every account is linear cross (today's population).
    pub fn linear_only(&self) -> bool {
        self.linear_pct == 100
    }

    /// Draws a kind (no draw at all for a linear-only population).
    pub fn pick(&self, rng: &mut ChaCha8Rng) -> Kind {
        if self.linear_only() {
            return Kind::LinearCross;
        }
        let mut roll = rng.random_range(0..100);
        for (kind, pct) in Kind::ALL.into_iter().zip([
            self.linear_pct,
            self.inverse_pct,
            self.options_pct,
            self.portfolio_pct,
            self.isolated_pct,
        ]) {
            if roll < pct {
                return kind;
            }
            roll -= pct;
        }
        Kind::LinearCross
    }

    /// For reports: `60/15/10/10/5 (linear cross/inverse/options/portfolio/isolated)`.
    pub fn describe(&self) -> String {
        format!(
            "{}/{}/{}/{}/{} % (linear cross/inverse/options/portfolio/isolated)",
            self.linear_pct,
            self.inverse_pct,
            self.options_pct,
            self.portfolio_pct,
            self.isolated_pct
        )
    }
}

/// Underlyings: 0 is BTC, 1 is ETH (as [`LEGS`]).
pub const UNDERLYINGS: [&str; 2] = ["BTC", "ETH"];

/// At-the-money volatility per underlying: Deribit DVOL closes of 2026-01-05 (43.94, 61.57).
pub const ATM_VOL: [f64; 2] = [0.44, 0.62];

/// Option expiries per underlying, with their time to expiry (years) from [`START_MS`]:
/// 08:00 UTC on 2026-03-27, 2026-06-26 and 2026-12-27.
pub const EXPIRIES: [(&str, usize, i64); 5] = [
    ("27MAR26", 0, 1_774_598_400_000),
    ("26JUN26", 0, 1_782_460_800_000),
    ("27DEC26", 0, 1_798_358_400_000),
    ("27MAR26", 1, 1_774_598_400_000),
    ("27DEC26", 1, 1_798_358_400_000),
];

/// Years from [`START_MS`] to an expiry's millisecond time.
fn years(expiry_ms: i64) -> f64 {
    (expiry_ms - START_MS) as f64 / (365.0 * 86_400_000.0)
}

/// Strike step per underlying.
const STRIKE_STEP: [f64; 2] = [5_000.0, 250.0];

/// The strikes of an expiry's smile: 0.5x-1.6x the start price in strike steps.
fn smile_strikes(underlying: usize) -> Vec<f64> {
    let spot = LEGS[underlying].price;
    let step = STRIKE_STEP[underlying];
    let mut strikes = Vec::new();
    let mut strike = (spot * 0.5 / step).ceil() * step;
    while strike <= spot * 1.6 {
        strikes.push(strike);
        strike += step;
    }
    strikes
}

/// The smile's volatility at `strike`: `atm (1 + 0.03 x^2 - 0.01 x)` in standardised moneyness
/// `x = ln(K / S) / (atm sqrt(T))`, within 30%-150%.
pub fn smile_vol(atm: f64, spot: f64, strike: f64, years: f64) -> f64 {
    let x = (strike / spot).ln() / (atm * years.sqrt());
    (atm * (1.0 + 0.03 * x * x - 0.01 * x)).clamp(0.3, 1.5)
}

/// The `vol_surface` event of expiry `which` (an index into [`EXPIRIES`]) at `atm`.
pub fn vol_surface(which: usize, atm: f64) -> Event {
    let (expiry, underlying, expiry_ms) = EXPIRIES[which];
    let spot = LEGS[underlying].price;
    let strikes = smile_strikes(underlying);
    let vols = strikes
        .iter()
        .map(|k| (smile_vol(atm, spot, *k, years(expiry_ms)) * 1e4).round() / 1e4)
        .collect();
    Event::VolSurface(VolSurface {
        underlying: UNDERLYINGS[underlying].to_owned(),
        expiry: expiry.to_owned(),
        strikes,
        vols,
    })
}

/// The market before any account: both indices at their start price and every smile.
pub fn market_events() -> Vec<Event> {
    let mut events: Vec<Event> = LEGS
        .iter()
        .map(|leg| {
            Event::IndexPrice(IndexPrice {
                underlying: leg.underlying.to_owned(),
                price: Price(cents(leg.price)),
                source: None,
            })
        })
        .collect();
    for (which, (_, underlying, _)) in EXPIRIES.iter().enumerate() {
        events.push(vol_surface(which, ATM_VOL[*underlying]));
    }
    events
}

/// The standard normal distribution function (Abramowitz and Stegun 7.1.26, error below
/// 1.5e-7: enough for a fill price).
fn norm_cdf(x: f64) -> f64 {
    let z = x.abs() / SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 {
        1.0 - erfc / 2.0
    } else {
        erfc / 2.0
    }
}

/// Black-76 premium in USD at forward `spot` (rate 0).
fn black(spot: f64, strike: f64, years: f64, vol: f64, call: bool) -> f64 {
    let sd = vol * years.sqrt();
    let d1 = ((spot / strike).ln() + sd * sd / 2.0) / sd;
    let d2 = d1 - sd;
    if call {
        spot * norm_cdf(d1) - strike * norm_cdf(d2)
    } else {
        strike * norm_cdf(-d2) - spot * norm_cdf(-d1)
    }
}

/// An option's terms, for its fill price.
#[derive(Clone, Debug)]
pub struct OptionTerms {
    /// Strike, USD.
    pub strike: f64,
    /// Years to expiry from the start.
    pub years: f64,
    /// Call (else put).
    pub call: bool,
}

/// An instrument the population trades, with what its fills need.
#[derive(Clone, Debug)]
pub struct Tradable {
    /// Instrument name.
    pub name: String,
    /// 0 BTC, 1 ETH.
    pub underlying: usize,
    /// Size step (a size is a whole number of steps).
    pub step: Decimal,
    /// Inverse (premium and fee in coin, size in USD for perpetuals and futures).
    pub inverse: bool,
    /// Option terms, for options.
    pub option: Option<OptionTerms>,
}

impl Tradable {
    fn perp(name: &str, underlying: usize, step: Decimal, inverse: bool) -> Self {
        Self {
            name: name.to_owned(),
            underlying,
            step,
            inverse,
            option: None,
        }
    }

    /// An option of expiry `which` at `strike`, linear (`BTC_USDC-`) or inverse.
    pub fn option(which: usize, strike: f64, call: bool, inverse: bool) -> Self {
        let (expiry, underlying, expiry_ms) = EXPIRIES[which];
        let prefix = match (underlying, inverse) {
            (0, true) => "BTC",
            (0, false) => "BTC_USDC",
            _ => "ETH",
        };
        let right = if call { "C" } else { "P" };
        Self {
            name: format!("{prefix}-{expiry}-{strike:.0}-{right}"),
            underlying,
            step: match (underlying, inverse) {
                (0, true) => Decimal::new(1, 1),
                (0, false) => Decimal::new(1, 2),
                _ => Decimal::ONE,
            },
            inverse,
            option: Some(OptionTerms {
                strike,
                years: years(expiry_ms),
                call,
            }),
        }
    }

    /// The fill price at index `spot`: the index for perpetuals and futures (USD per coin), the
    /// Black-76 premium on the start smile for options (USDC per coin, or coin per coin for
    /// inverse ones, at the venue's tick, at least one tick).
    pub fn price(&self, spot: f64) -> Decimal {
        let Some(option) = &self.option else {
            return cents(spot);
        };
        let atm = ATM_VOL[self.underlying];
        let vol = smile_vol(atm, spot, option.strike, option.years);
        let usd = black(spot, option.strike, option.years, vol, option.call);
        if self.inverse {
            Decimal::new(((usd / spot) * 1e4).round().max(1.0) as i64, 4)
        } else {
            Decimal::new((usd * 100.0).round().max(1.0) as i64, 2)
        }
    }

    /// A taker fee for `size` at `price` (index `spot`): 0.05% of the notional for perpetuals
    /// and futures, 0.03% of the underlying for options capped at 12.5% of the premium (Deribit);
    /// in the settlement asset, rounded to 8 (coin) or 6 (stablecoin) decimals.
    pub fn fee(&self, size: Decimal, price: Decimal, spot: f64) -> Decimal {
        let spot = cents(spot);
        let fee = match (&self.option, self.inverse) {
            (None, false) => size * price * Decimal::new(5, 4),
            (None, true) => size / price * Decimal::new(5, 4),
            (Some(_), true) => (size * Decimal::new(3, 4)).min(size * price * Decimal::new(125, 3)),
            (Some(_), false) => {
                (size * spot * Decimal::new(3, 4)).min(size * price * Decimal::new(125, 3))
            }
        };
        fee.round_dp(if self.inverse { 8 } else { 6 })
    }

    /// A fill of `units` steps against `counterparty` at index `spot`.
    pub fn fill(
        &self,
        account: &str,
        counterparty: &str,
        long: bool,
        units: i64,
        spot: f64,
    ) -> Event {
        let size = self.step * Decimal::from(units);
        let price = self.price(spot);
        Event::Fill(Fill {
            account: account.to_owned(),
            instrument: self.name.clone(),
            side: if long { Side::Buy } else { Side::Sell },
            size: Quantity(size),
            price: Price(price),
            fee: Amount(self.fee(size, price, spot)),
            counterparty: counterparty.to_owned(),
        })
    }
}

/// What a stream needs to know of an opened account: its kind, the instruments it trades and
/// the asset it deposits.
#[derive(Clone, Debug)]
pub struct Opened {
    /// Kind.
    pub kind: Kind,
    /// Whether it was opened at high leverage (streams leave those alone).
    pub hot: bool,
    /// The instruments it holds.
    pub holds: Vec<Tradable>,
    /// The asset of its first deposit.
    pub asset: String,
}

/// `log-uniform` draw in `[low, high]`.
fn log_uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    (low.ln() + rng.random::<f64>() * (high.ln() - low.ln())).exp()
}

/// Whole steps of `tradable` for `coins` of underlying (USD for inverse perpetuals and futures).
fn units_for(tradable: &Tradable, coins: f64, spot: f64) -> i64 {
    let size = if tradable.inverse && tradable.option.is_none() {
        coins * spot
    } else {
        coins
    };
    let step: f64 = tradable.step.try_into().unwrap_or(1.0);
    (size / step).floor() as i64
}

fn btc_usdc_perp() -> Tradable {
    Tradable::perp("BTC_USDC-PERPETUAL", 0, Decimal::new(1, 3), false)
}

fn linear_perp(underlying: usize) -> Tradable {
    let leg = &LEGS[underlying];
    Tradable::perp(
        leg.instrument,
        underlying,
        Decimal::new(1, leg.scale),
        false,
    )
}

/// A random listed option near the money: expiry, strike within 3 steps of the start price.
fn near_option(rng: &mut ChaCha8Rng, underlying: usize, inverse: bool) -> Tradable {
    let choices: Vec<usize> = (0..EXPIRIES.len())
        .filter(|w| EXPIRIES[*w].1 == underlying)
        .collect();
    let which = choices[rng.random_range(0..choices.len())];
    let step = STRIKE_STEP[underlying];
    let atm = (LEGS[underlying].price / step).round() * step;
    let strike = atm + step * f64::from(rng.random_range(-3_i32..=3));
    Tradable::option(which, strike, rng.random_bool(0.5), inverse)
}

/// Appends the events opening account `i` of `kind` to `events`, drawing from `rng`
/// (`hot_share` of linear and isolated accounts at high leverage); `mixed` adds BTC collateral
/// and USDC perpetuals to linear cross accounts (not in today's linear-only population).
pub fn open_kind(
    i: usize,
    kind: Kind,
    mixed: bool,
    hot_share: f64,
    rng: &mut ChaCha8Rng,
    events: &mut Vec<Event>,
) -> Opened {
    let id = account_id(i);
    let mut holds = Vec::new();
    let mut hot = false;
    let mut asset = "USDT".to_owned();
    match kind {
        Kind::LinearCross => {
            let start = events.len();
            hot = open_account(i, hot_share, rng, events);
            for event in &events[start..] {
                if let Event::Fill(fill) = event {
                    let underlying = usize::from(fill.instrument != LEGS[0].instrument);
                    holds.push(linear_perp(underlying));
                }
            }
            if mixed && !hot {
                if rng.random_bool(0.2) {
                    let btc = Decimal::new(rng.random_range(1_000_000..100_000_000), 8);
                    events.push(deposit(&id, "BTC", btc));
                }
                if rng.random_bool(0.15) {
                    let usdc = log_uniform(rng, 500.0, 50_000.0);
                    events.push(deposit(&id, "USDC", cents(usdc)));
                    let perp = btc_usdc_perp();
                    let coins = usdc * (1.0 + 4.0 * rng.random::<f64>()) / LEGS[0].price;
                    let units = units_for(&perp, coins, LEGS[0].price);
                    if units > 0 {
                        events.push(perp.fill(
                            &id,
                            EXTERNAL,
                            rng.random_bool(0.6),
                            units,
                            LEGS[0].price,
                        ));
                        holds.push(perp);
                    }
                }
            }
        }
        Kind::Inverse => {
            let underlying = usize::from(!rng.random_bool(0.7));
            let spot = LEGS[underlying].price;
            let usd = log_uniform(rng, 500.0, 100_000.0);
            let coin = UNDERLYINGS[underlying];
            asset = coin.to_owned();
            events.push(deposit(
                &id,
                coin,
                Decimal::new((usd / spot * 1e8) as i64, 8),
            ));
            let (step, name) = if underlying == 0 {
                let name = if rng.random_bool(0.7) {
                    "BTC-PERPETUAL"
                } else if rng.random_bool(0.5) {
                    "BTC-27MAR26"
                } else {
                    "BTC-27DEC26"
                };
                (Decimal::TEN, name)
            } else {
                let name = if rng.random_bool(0.7) {
                    "ETH-PERPETUAL"
                } else {
                    "ETH-27DEC26"
                };
                (Decimal::ONE, name)
            };
            let contract = Tradable::perp(name, underlying, step, true);
            let leverage = 1.5 + 8.5 * rng.random::<f64>();
            let units = units_for(&contract, usd * leverage / spot, spot);
            if units > 0 {
                events.push(contract.fill(&id, EXTERNAL, rng.random_bool(0.6), units, spot));
                holds.push(contract);
            }
        }
        Kind::Options => {
            let inverse = rng.random_bool(0.5);
            let underlying = if inverse {
                usize::from(!rng.random_bool(0.7))
            } else {
                0
            };
            let spot = LEGS[underlying].price;
            let usd = log_uniform(rng, 1_000.0, 100_000.0);
            if inverse {
                asset = UNDERLYINGS[underlying].to_owned();
                events.push(deposit(
                    &id,
                    &asset,
                    Decimal::new((usd / spot * 1e8) as i64, 8),
                ));
            } else {
                asset = "USDC".to_owned();
                events.push(deposit(&id, "USDC", cents(usd)));
            }
            for _ in 0..rng.random_range(1..=3) {
                let option = near_option(rng, underlying, inverse);
                let long = rng.random_bool(0.5);
                let coins = if long {
                    // Premium of at most about 20% of the collateral.
                    let premium = black(
                        spot,
                        option.option.as_ref().map_or(spot, |o| o.strike),
                        option.option.as_ref().map_or(1.0, |o| o.years),
                        ATM_VOL[underlying],
                        option.option.as_ref().is_none_or(|o| o.call),
                    );
                    usd * 0.2 * rng.random::<f64>() / premium.max(spot * 0.01)
                } else {
                    usd * (0.3 + 0.7 * rng.random::<f64>()) / spot
                };
                let units = units_for(&option, coins, spot);
                if units > 0 {
                    events.push(option.fill(&id, EXTERNAL, long, units, spot));
                    holds.push(option);
                }
            }
            if rng.random_bool(0.3) {
                let hedge = if inverse {
                    Tradable::perp(
                        ["BTC-PERPETUAL", "ETH-PERPETUAL"][underlying],
                        underlying,
                        [Decimal::TEN, Decimal::ONE][underlying],
                        true,
                    )
                } else {
                    btc_usdc_perp()
                };
                let units = units_for(&hedge, usd * rng.random::<f64>() / spot, spot);
                if units > 0 {
                    events.push(hedge.fill(&id, EXTERNAL, rng.random_bool(0.5), units, spot));
                    holds.push(hedge);
                }
            }
        }
        Kind::Portfolio => {
            let usd = log_uniform(rng, 2_000.0, 200_000.0);
            events.push(deposit(&id, "USDT", cents(usd)));
            if rng.random_bool(0.5) {
                let btc = usd * (0.2 + 0.5 * rng.random::<f64>()) / LEGS[0].price;
                events.push(deposit(&id, "BTC", Decimal::new((btc * 1e8) as i64, 8)));
            }
            events.push(Event::SetMarginMode(SetMarginMode {
                account: id.clone(),
                mode: MarginMode::Portfolio,
            }));
            let positions = rng.random_range(3..=6);
            for _ in 0..positions {
                let tradable = match rng.random_range(0..4) {
                    0 => linear_perp(0),
                    1 => linear_perp(1),
                    2 => btc_usdc_perp(),
                    _ => near_option(rng, 0, false),
                };
                if holds.iter().any(|h: &Tradable| h.name == tradable.name) {
                    continue;
                }
                let spot = LEGS[tradable.underlying].price;
                let coins = usd * 3.0 / f64::from(positions) * rng.random::<f64>() / spot;
                let units = units_for(&tradable, coins, spot);
                if units > 0 {
                    events.push(tradable.fill(&id, EXTERNAL, rng.random_bool(0.55), units, spot));
                    holds.push(tradable);
                }
            }
        }
        Kind::Isolated => {
            hot = rng.random_bool(hot_share);
            let underlying = usize::from(!rng.random_bool(0.535));
            let leg = &LEGS[underlying];
            let usd = log_uniform(rng, 500.0, 50_000.0);
            events.push(deposit(&id, "USDT", cents(usd)));
            // The venue's maximum, so that the position's initial margin is below what is
            // isolated for it.
            events.push(Event::SetLeverage(SetLeverage {
                account: id.clone(),
                instrument: leg.instrument.to_owned(),
                leverage: Decimal::from(leg.max_leverage),
            }));
            let leverage = if hot {
                leg.max_leverage as f64 * (0.6 + 0.25 * rng.random::<f64>())
            } else {
                2.0 + 18.0 * rng.random::<f64>()
            };
            let perp = linear_perp(underlying);
            let units = units_for(&perp, usd * leverage / leg.price, leg.price);
            if units > 0 {
                events.push(perp.fill(&id, EXTERNAL, rng.random_bool(0.6), units, leg.price));
                events.push(Event::SetIsolatedMargin(SetIsolatedMargin {
                    account: id.clone(),
                    instrument: leg.instrument.to_owned(),
                    amount: Amount(cents(usd * 0.95)),
                }));
                holds.push(perp);
            }
        }
    }
    Opened {
        kind,
        hot,
        holds,
        asset,
    }
}

/// The contracts given a mark before the streams (their first mark re-values every holder, so
/// it is timed apart): the linear perpetuals and the BTC inverse perpetual.
pub const MARKED: [(&str, usize); 4] = [
    ("BTCUSDT", 0),
    ("ETHUSDT", 1),
    ("BTC-PERPETUAL", 0),
    ("BTC_USDC-PERPETUAL", 0),
];

/// A population opened in an engine, with what the streams need.
pub struct Built {
    /// The engine after the population's events.
    pub engine: solvent_engine::Engine,
    /// The stream's position after them.
    pub stream: super::Stream,
    /// Each account as opened (account `i` is `opened[i]`).
    pub opened: Vec<Opened>,
    /// Events applied to open the accounts.
    pub setup_events: usize,
    /// Of which rejected, by reason (`Debug` of the reason) and count.
    pub setup_rejected: std::collections::BTreeMap<String, usize>,
    /// Time spent in `Engine::apply` opening the accounts.
    pub setup_apply: std::time::Duration,
}

/// Rejections among `effects`, counted by reason into `into`.
pub fn count_rejections(
    effects: &[solvent_engine::effect::Effect],
    into: &mut std::collections::BTreeMap<String, usize>,
) -> usize {
    let mut n = 0;
    for effect in effects {
        if let solvent_engine::effect::Effect::Rejected { reason, .. } = effect {
            *into.entry(format!("{reason:?}")).or_default() += 1;
            n += 1;
        }
    }
    n
}

/// Opens `accounts` accounts with `shares` in a fresh engine on the default venue: the market
/// of [`market_events`], then each account's events (kinds drawn from a stream seeded
/// `seed + 1`, everything else from one seeded `seed`), applied one by one.
pub fn build(accounts: usize, shares: Shares, hot_share: f64, seed: u64) -> Built {
    use rand::SeedableRng;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let venue = match solvent_core::venue::Venue::from_toml(path, &text) {
        Ok(venue) => venue,
        Err(error) => panic!("the default venue must load: {error}"),
    };
    let mut engine =
        solvent_engine::Engine::new(venue, solvent_engine::config::EngineConfig::default());
    let mut stream = super::Stream::new();
    let mut setup_rejected = std::collections::BTreeMap::new();
    for event in market_events() {
        count_rejections(&engine.apply(&stream.next(event)), &mut setup_rejected);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut kinds = ChaCha8Rng::seed_from_u64(seed + 1);
    let mut opened = Vec::with_capacity(accounts);
    let mut events = Vec::new();
    let mut setup_events = 0;
    let mut setup_apply = std::time::Duration::ZERO;
    let started = std::time::Instant::now();
    for i in 0..accounts {
        events.clear();
        let kind = shares.pick(&mut kinds);
        opened.push(open_kind(
            i,
            kind,
            !shares.linear_only(),
            hot_share,
            &mut rng,
            &mut events,
        ));
        for event in events.drain(..) {
            let envelope = stream.next(event);
            let start = std::time::Instant::now();
            let effects = engine.apply(&envelope);
            setup_apply += start.elapsed();
            setup_events += 1;
            count_rejections(&effects, &mut setup_rejected);
        }
        if (i + 1) % 200_000 == 0 {
            eprintln!(
                "  setup: {} accounts, {:.1} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Built {
        engine,
        stream,
        opened,
        setup_events,
        setup_rejected,
        setup_apply,
    }
}

/// A mark update of a contract.
pub fn mark(instrument: &str, price: f64) -> Event {
    Event::MarkPrice(solvent_engine::event::MarkPrice {
        instrument: instrument.to_owned(),
        price: Price(cents(price)),
    })
}

/// What a stream is made of, in percent (the rest of 100 is deposits).
#[derive(Clone, Copy, Debug)]
pub struct StreamMix {
    /// Index updates (BTC or ETH, moves N(0, 0.02%)).
    pub index_pct: u32,
    /// Mark updates of the [`MARKED`] contracts (index times a basis walking N(0, 0.002%)).
    pub mark_pct: u32,
    /// Vol surface updates (one expiry's smile, at-the-money walking N(0, 1%) relative).
    pub vol_pct: u32,
    /// Fills of 1-10 size steps of an instrument the account holds (4 in 5 against
    /// `external`, 1 in 5 against another account of the same kind), at the current index.
    pub fill_pct: u32,
}

impl StreamMix {
    /// The mixed stream: 85% index, 5% marks, 1% vol surfaces, 5% fills, 4% deposits.
    pub const MIXED: StreamMix = StreamMix {
        index_pct: 85,
        mark_pct: 5,
        vol_pct: 1,
        fill_pct: 5,
    };
    /// The fill-heavy stream: 25% index, 70% fills, 5% deposits.
    pub const FILL_HEAVY: StreamMix = StreamMix {
        index_pct: 25,
        mark_pct: 0,
        vol_pct: 0,
        fill_pct: 70,
    };

    /// For reports.
    pub fn describe(&self) -> String {
        format!(
            "{}% index, {}% marks, {}% vol surfaces, {}% fills, {}% deposits",
            self.index_pct,
            self.mark_pct,
            self.vol_pct,
            self.fill_pct,
            100 - self.index_pct - self.mark_pct - self.vol_pct - self.fill_pct
        )
    }
}

/// The stream's state: prices and who trades.
pub struct Streamer<'a> {
    opened: &'a [Opened],
    /// Non-hot accounts with something to trade, by kind (in [`Kind::ALL`] order).
    tradable: Vec<Vec<usize>>,
    /// Non-hot accounts with something to trade, any kind.
    any: Vec<usize>,
    stream: super::Stream,
    prices: [f64; 2],
    basis: [f64; MARKED.len()],
    atm: Vec<f64>,
    rng: ChaCha8Rng,
}

impl<'a> Streamer<'a> {
    /// A stream continuing `built`'s, seeded `seed`.
    pub fn new(built: &'a Built, seed: u64) -> Self {
        use rand::SeedableRng;
        let mut tradable = vec![Vec::new(); Kind::ALL.len()];
        let mut any = Vec::new();
        for (i, opened) in built.opened.iter().enumerate() {
            if !opened.hot && !opened.holds.is_empty() {
                tradable[opened.kind as usize].push(i);
                any.push(i);
            }
        }
        Self {
            opened: &built.opened,
            tradable,
            any,
            stream: built.stream.clone(),
            // Where the engine's indices are now (a previous stream may have moved them).
            prices: LEGS.map(|leg| {
                built
                    .engine
                    .market()
                    .index
                    .get(leg.underlying)
                    .and_then(|p| p.value().to_string().parse().ok())
                    .unwrap_or(leg.price)
            }),
            basis: [0.0; MARKED.len()],
            atm: EXPIRIES.iter().map(|(_, u, _)| ATM_VOL[*u]).collect(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The kind of the account an event is addressed to (fills and deposits), if any.
    pub fn kind_of(&self, event: &Event) -> Option<Kind> {
        let account = match event {
            Event::Fill(fill) => &fill.account,
            Event::Deposit(deposit) => &deposit.account,
            _ => return None,
        };
        let i: usize = account.trim_start_matches("acct").parse().ok()?;
        self.opened.get(i).map(|o| o.kind)
    }

    /// The next event of `mix`.
    pub fn next(&mut self, mix: StreamMix) -> solvent_engine::event::Envelope {
        let rng = &mut self.rng;
        self.stream.ts_ms += 1;
        let roll = rng.random_range(0..100);
        let event = if roll < mix.index_pct {
            let which = rng.random_range(0..2);
            self.prices[which] *= 1.0 + 0.0002 * super::normal(rng);
            Event::IndexPrice(IndexPrice {
                underlying: UNDERLYINGS[which].to_owned(),
                price: Price(cents(self.prices[which])),
                source: None,
            })
        } else if roll < mix.index_pct + mix.mark_pct {
            let which = rng.random_range(0..MARKED.len());
            let (name, underlying) = MARKED[which];
            self.basis[which] += 0.00002 * super::normal(rng);
            mark(name, self.prices[underlying] * (1.0 + self.basis[which]))
        } else if roll < mix.index_pct + mix.mark_pct + mix.vol_pct {
            let which = rng.random_range(0..EXPIRIES.len());
            self.atm[which] *= 1.0 + 0.01 * super::normal(rng);
            vol_surface(which, self.atm[which])
        } else if roll < mix.index_pct + mix.mark_pct + mix.vol_pct + mix.fill_pct
            && !self.any.is_empty()
        {
            let i = self.any[rng.random_range(0..self.any.len())];
            let opened = &self.opened[i];
            let tradable = &opened.holds[rng.random_range(0..opened.holds.len())];
            let peers = &self.tradable[opened.kind as usize];
            let counterparty = if rng.random_bool(0.2) && peers.len() > 1 {
                let mut other = peers[rng.random_range(0..peers.len())];
                if other == i {
                    other =
                        peers[(peers.iter().position(|p| *p == i).unwrap_or(0) + 1) % peers.len()];
                }
                account_id(other)
            } else {
                EXTERNAL.to_owned()
            };
            let units = rng.random_range(1..=10);
            let long = rng.random_bool(0.5);
            tradable.fill(
                &account_id(i),
                &counterparty,
                long,
                units,
                self.prices[tradable.underlying],
            )
        } else {
            let i = if self.any.is_empty() {
                0
            } else {
                self.any[rng.random_range(0..self.any.len())]
            };
            let asset = self.opened.get(i).map_or("USDT", |o| o.asset.as_str());
            let amount = match asset {
                "BTC" => Decimal::new(rng.random_range(10_000..1_000_000), 8),
                "ETH" => Decimal::new(rng.random_range(100_000..10_000_000), 8),
                _ => Decimal::from(rng.random_range(10..1_000)),
            };
            deposit(&account_id(i), asset, amount)
        };
        self.stream.next(event)
    }
}
