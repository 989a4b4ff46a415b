//! The opening book: the events that set the demo's market and open its accounts, deterministic
//! for a seed.
//!
//! In order: the index of each underlying at the extract's first open, one volatility smile per
//! underlying and option expiry (DVOL at that open, [`super::draw`]'s smile), the insurance
//! fund's seed, then the accounts:
//!
//! | share | accounts | drawn by |
//! | --- | --- | --- |
//! | 80% | `acct-*`: linear and inverse perpetuals, USDT / BTC / ETH collateral, cross | [`solvent_engine::population::generate`], its calibration, prices set to the extract's first open, ETH given its inverse perpetual |
//! | 10% | `pm-*`: portfolio margin, a perpetual with options (covered calls, protective puts, short strangles, hedged short puts) | here |
//! | 10% | `opt-*`: cross, options alone (long calls, puts and strangles; short puts and calls) | here |
//!
//! The portfolio-margin and option accounts trade on one of five books (an underlying, its
//! perpetual, its options and the coins it posts), so every collateral coin of the default venue
//! but SOL and USDe is held: USDT, USDC, BTC and ETH. Option premiums are the engine's own model
//! marks (Black-76 on the smile, `solvent_risk::valuation::MarketView::mark`), rounded to the
//! premium tick against the account. Each account deposits what covers its initial margin after
//! every one of its fills, in the order it makes them, and a drawn cushion on top: its health at
//! the opening is drawn in [1.6, 4], skewed low (ASSUMPTION: `1.6 + 2.4 U^2`, thin cushions
//! being the common case, as the population's Pareto leverage has it).

use std::sync::Arc;

use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::market::{Market, Smile, parse_expiry_key};
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::names::NameMap;
use solvent_core::portfolio::{Balance, MarginMode, Portfolio, Position};
use solvent_core::venue::Venue;
use solvent_engine::event::{Deposit, Event, Fill, IndexPrice, SetMarginMode, Side, VolSurface};
use solvent_engine::ledger::{EXTERNAL, INSURANCE_FUND};
use solvent_engine::population::{PopulationParams, default_market, generate};
use solvent_risk::account::{Detail, build_report};
use solvent_risk::valuation::{MarketView, Surfaces, surfaces};

use super::DemoError;
use super::draw::{decimal, float, log_normal, smile, steps, unit, up};
use super::extract::Extract;
use crate::core::Incoming;

/// Option expiries the demo's accounts hold: Deribit's December 2025 and March 2026 quarterlies
/// (last Fridays, 08:00 UTC), both after the extract's last day, so nothing expires mid-demo.
pub const EXPIRIES: [&str; 2] = ["26DEC25", "27MAR26"];

/// Share of the accounts drawn by `population::generate`.
const GENERATED_SHARE: f64 = 0.8;
/// Share in portfolio margin (the rest hold options in cross).
const PORTFOLIO_SHARE: f64 = 0.1;

/// Taker fee on perpetual fills. ASSUMPTION: 0.05%, the population's rate.
pub(super) const PERPETUAL_FEE_RATE: Decimal = Decimal::from_parts(5, 0, 0, false, 4);
/// Deribit's option fee: 0.03% of the underlying per contract, capped at 12.5% of the premium
/// (Deribit "Fees" page, options taker fee), applied to every option book.
const OPTION_FEE_RATE: Decimal = Decimal::from_parts(3, 0, 0, false, 4);
const OPTION_FEE_CAP: Decimal = Decimal::from_parts(125, 0, 0, false, 3);

/// The insurance fund's seed per account in the book. ASSUMPTION: 100 USDT, 20 USDC, 0.0005 BTC
/// and 0.01 ETH per account (1,000,000 USDT for 10,000 accounts: a fund of about 0.1% of the
/// population's open interest, so that a cascade visibly draws on it).
const FUND_PER_ACCOUNT: [(&str, Decimal); 4] = [
    ("USDT", Decimal::from_parts(100, 0, 0, false, 0)),
    ("USDC", Decimal::from_parts(20, 0, 0, false, 0)),
    ("BTC", Decimal::from_parts(5, 0, 0, false, 4)),
    ("ETH", Decimal::from_parts(1, 0, 0, false, 2)),
];

/// One venue book: an underlying, its perpetual, its option prefix and the coins posted.
struct Book {
    underlying: &'static str,
    perpetual: &'static str,
    options: &'static str,
    /// Premium tick in the option's quote: Deribit's 0.0001 BTC or ETH for inverse options;
    /// ASSUMPTION: 5 USDC for BTC_USDC options (no stored source gives their tick).
    tick: Decimal,
    /// Strike grid, USD.
    strike_grid: f64,
    /// Collateral coins and their shares of the deposit.
    collateral: &'static [(&'static str, f64)],
}

const BTC_INVERSE: Book = Book {
    underlying: "BTC",
    perpetual: "BTC-PERPETUAL",
    options: "BTC",
    tick: Decimal::from_parts(1, 0, 0, false, 4),
    strike_grid: 1_000.0,
    collateral: &[("BTC", 1.0)],
};
const BTC_USDC: Book = Book {
    underlying: "BTC",
    perpetual: "BTC_USDC-PERPETUAL",
    options: "BTC_USDC",
    tick: Decimal::from_parts(5, 0, 0, false, 0),
    strike_grid: 1_000.0,
    collateral: &[("USDC", 1.0)],
};
const BTC_USDT: Book = Book {
    underlying: "BTC",
    perpetual: "BTCUSDT",
    options: "BTC",
    tick: Decimal::from_parts(1, 0, 0, false, 4),
    strike_grid: 1_000.0,
    collateral: &[("USDT", 0.6), ("BTC", 0.4)],
};
const ETH_INVERSE: Book = Book {
    underlying: "ETH",
    perpetual: "ETH-PERPETUAL",
    options: "ETH",
    tick: Decimal::from_parts(1, 0, 0, false, 4),
    strike_grid: 50.0,
    collateral: &[("ETH", 1.0)],
};
const ETH_USDT: Book = Book {
    underlying: "ETH",
    perpetual: "ETHUSDT",
    options: "ETH",
    tick: Decimal::from_parts(1, 0, 0, false, 4),
    strike_grid: 50.0,
    collateral: &[("USDT", 0.5), ("ETH", 0.5)],
};

/// Books of portfolio-margin accounts and their shares. ASSUMPTION: BTC twice as common as ETH.
const PORTFOLIO_BOOKS: [(&Book, f64); 5] = [
    (&BTC_INVERSE, 0.25),
    (&BTC_USDC, 0.2),
    (&BTC_USDT, 0.2),
    (&ETH_INVERSE, 0.2),
    (&ETH_USDT, 0.15),
];
/// Books of option holders in cross. ASSUMPTION.
const OPTION_BOOKS: [(&Book, f64); 3] =
    [(&BTC_INVERSE, 0.4), (&BTC_USDC, 0.3), (&ETH_INVERSE, 0.3)];

/// One leg of a strategy: what, which side, how many coins per coin of the account's size.
#[derive(Clone, Copy)]
enum Contract {
    Perpetual,
    /// A call struck at this fraction of the index.
    Call(f64),
    /// A put struck at this fraction of the index.
    Put(f64),
}

#[derive(Clone, Copy)]
struct Leg {
    contract: Contract,
    long: bool,
    ratio: f64,
}

/// A strategy drawn for a portfolio-margin account (shares: 30 / 25 / 25 / 20, ASSUMPTION).
fn portfolio_strategy(rng: &mut ChaCha8Rng) -> Vec<Leg> {
    let leg = |contract, long, ratio| Leg {
        contract,
        long,
        ratio,
    };
    let draw = rng.random::<f64>();
    if draw < 0.3 {
        // Covered call: long the perpetual, short an out-of-the-money call on part of it.
        vec![
            leg(Contract::Perpetual, true, 1.0),
            leg(
                Contract::Call(rng.random_range(1.1..1.25)),
                false,
                rng.random_range(0.5..1.0),
            ),
        ]
    } else if draw < 0.55 {
        // Protective put.
        vec![
            leg(Contract::Put(rng.random_range(0.8..0.95)), true, 1.0),
            leg(Contract::Perpetual, true, 1.0),
        ]
    } else if draw < 0.8 {
        // Short strangle: premium sellers, the accounts a vol spike hurts.
        vec![
            leg(Contract::Put(rng.random_range(0.75..0.9)), false, 1.0),
            leg(Contract::Call(rng.random_range(1.1..1.3)), false, 1.0),
        ]
    } else {
        // Short put, delta partly hedged with a short perpetual.
        vec![
            leg(Contract::Perpetual, false, 0.3),
            leg(Contract::Put(rng.random_range(0.85..0.95)), false, 1.0),
        ]
    }
}

/// A strategy drawn for an option holder in cross (shares 25 / 25 / 15 / 20 / 15, ASSUMPTION).
fn option_strategy(rng: &mut ChaCha8Rng) -> Vec<Leg> {
    let leg = |contract, long| Leg {
        contract,
        long,
        ratio: 1.0,
    };
    let draw = rng.random::<f64>();
    if draw < 0.25 {
        vec![leg(Contract::Call(rng.random_range(1.0..1.2)), true)]
    } else if draw < 0.5 {
        vec![leg(Contract::Put(rng.random_range(0.8..1.0)), true)]
    } else if draw < 0.65 {
        vec![
            leg(Contract::Put(rng.random_range(0.8..0.95)), true),
            leg(Contract::Call(rng.random_range(1.05..1.2)), true),
        ]
    } else if draw < 0.85 {
        vec![leg(Contract::Put(rng.random_range(0.8..0.95)), false)]
    } else {
        vec![leg(Contract::Call(rng.random_range(1.1..1.3)), false)]
    }
}

fn pick_book<'b>(rng: &mut ChaCha8Rng, books: &[(&'b Book, f64)]) -> &'b Book {
    let mut draw = rng.random::<f64>();
    for (book, share) in books {
        if draw < *share {
            return book;
        }
        draw -= share;
    }
    books.last().map_or(&BTC_INVERSE, |(book, _)| book)
}

/// A fill the opening makes, priced.
struct Planned {
    instrument: Arc<Instrument>,
    signed: Decimal,
    price: Decimal,
    fee: Decimal,
}

impl Planned {
    /// Cash the fill moves in its settlement asset: the premium (options) and the fee.
    fn cash(&self) -> Decimal {
        let premium = match self.instrument.terms {
            Terms::Option { .. } => -self.signed * self.price * self.instrument.contract_size,
            _ => Decimal::ZERO,
        };
        premium - self.fee
    }
}

/// What the opening knows of the market: the venue, the snapshot and its volatility surfaces
/// (built once: every account is valued at the same snapshot).
pub(super) struct OpeningMarket<'v> {
    venue: &'v Venue,
    market: Market,
    surfaces: Surfaces,
}

impl<'v> OpeningMarket<'v> {
    fn view(&self) -> MarketView<'_> {
        MarketView::with_surfaces(self.venue, &self.market, &self.surfaces)
    }

    fn index(&self, underlying: &str) -> Result<Decimal, DemoError> {
        self.market
            .index
            .get(underlying)
            .map(|p| p.value())
            .ok_or_else(|| DemoError::Venue(format!("no {underlying} price in the extract")))
    }

    fn asset_usd(&self, asset: &str) -> Result<Decimal, DemoError> {
        let held = self.venue.asset(asset).map_err(DemoError::Venue)?;
        self.view()
            .asset_usd(held)
            .map_err(|e| DemoError::Risk(e.to_string()))
    }
}

/// The opening book (see the module documentation).
pub(super) fn opening(
    venue: &Venue,
    extract: &Extract,
    seed: u64,
    accounts: usize,
    start: Timestamp,
) -> Result<Vec<Incoming>, DemoError> {
    if accounts == 0 || accounts > 1_000_000 {
        return Err(DemoError::InvalidParameter {
            name: "accounts",
            problem: format!("{accounts}: must be between 1 and 1,000,000"),
        });
    }
    if start > extract.start() {
        return Err(DemoError::StartTooLate {
            start,
            history: extract.start(),
        });
    }
    for expiry in EXPIRIES {
        let instant = parse_expiry_key(expiry, venue.expiry_time_utc).map_err(DemoError::Venue)?;
        if instant <= extract.end() {
            return Err(DemoError::Venue(format!(
                "option expiry {expiry} is not after the history's end {}",
                extract.end()
            )));
        }
    }
    let mut events = Vec::new();
    let mut push = |event: Event| {
        events.push(Incoming {
            client_id: None,
            ts: Some(start),
            event,
        });
    };
    let market = opening_market(venue, extract, start)?;
    for (underlying, price) in &market.market.index {
        push(Event::IndexPrice(IndexPrice {
            underlying: underlying.clone(),
            price: *price,
            source: None,
        }));
    }
    for (underlying, smiles) in &market.market.vol {
        for (expiry, smile) in smiles {
            push(Event::VolSurface(VolSurface {
                underlying: underlying.clone(),
                expiry: expiry.clone(),
                strikes: smile.strikes.clone(),
                vols: smile.vols.clone(),
            }));
        }
    }
    let scale = Decimal::from(accounts);
    for (asset, per_account) in FUND_PER_ACCOUNT {
        push(Event::Deposit(Deposit {
            account: INSURANCE_FUND.to_owned(),
            asset: asset.to_owned(),
            amount: Amount(per_account * scale),
        }));
    }
    let generated = share(accounts, GENERATED_SHARE);
    let portfolio = share(accounts, PORTFOLIO_SHARE);
    let holders = accounts - generated - portfolio;
    if generated > 0 {
        let params = PopulationParams {
            accounts: generated,
            seed,
            start,
            market: generated_market(extract)?,
            ..PopulationParams::default()
        };
        for envelope in generate(venue, &params)?.events {
            // The opening wrote the indices already, at the same prices.
            if !matches!(envelope.event, Event::IndexPrice(_)) {
                push(envelope.event);
            }
        }
    }
    // A stream of its own, so that changing the generated share leaves these draws alone.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6f70_7469_6f6e_7321);
    for number in 1..=portfolio {
        let book = pick_book(&mut rng, &PORTFOLIO_BOOKS);
        let legs = portfolio_strategy(&mut rng);
        let id = format!("pm-{number:05}");
        // ASSUMPTION: a median position of 60,000 USD, log-normal sigma 1.
        let notional = log_normal(&mut rng, 60_000.0, 1.0);
        for event in account(
            &mut rng,
            &market,
            &id,
            MarginMode::Portfolio,
            book,
            &legs,
            notional,
        )? {
            push(event);
        }
    }
    for number in 1..=holders {
        let book = pick_book(&mut rng, &OPTION_BOOKS);
        let legs = option_strategy(&mut rng);
        let id = format!("opt-{number:05}");
        // ASSUMPTION: a median option position of 25,000 USD of underlying, sigma 1.
        let notional = log_normal(&mut rng, 25_000.0, 1.0);
        for event in account(
            &mut rng,
            &market,
            &id,
            MarginMode::Cross,
            book,
            &legs,
            notional,
        )? {
            push(event);
        }
    }
    Ok(events)
}

/// `accounts x share`, rounded to the nearest.
fn share(accounts: usize, share: f64) -> usize {
    ((accounts as f64) * share).round() as usize
}

/// The market at the opening: each underlying's first open, the smiles at its first DVOL open.
fn opening_market<'v>(
    venue: &'v Venue,
    extract: &Extract,
    start: Timestamp,
) -> Result<OpeningMarket<'v>, DemoError> {
    let mut index = NameMap::default();
    let mut vol = NameMap::default();
    for (underlying, bar) in extract.underlyings.iter().zip(
        extract
            .days
            .first()
            .map(|d| d.bars.as_slice())
            .unwrap_or(&[]),
    ) {
        let price = Price::new_checked(bar.open).map_err(DemoError::OutOfRange)?;
        index.insert(underlying.clone(), price);
        let (strikes, vols) = smile(float(bar.open), bar.vol_open);
        let smiles = EXPIRIES
            .iter()
            .map(|expiry| {
                (
                    (*expiry).to_owned(),
                    Smile {
                        strikes: strikes.clone(),
                        vols: vols.clone(),
                    },
                )
            })
            .collect();
        vol.insert(underlying.clone(), smiles);
    }
    let market = Market {
        timestamp: start,
        index,
        mark: NameMap::default(),
        vol,
        rate: 0.0,
        open_interest: NameMap::default(),
    };
    market
        .validate("demo", "")
        .map_err(|e| DemoError::Risk(e.to_string()))?;
    let surfaces = surfaces(venue, &market).map_err(|e| DemoError::Risk(e.to_string()))?;
    Ok(OpeningMarket {
        venue,
        market,
        surfaces,
    })
}

/// The population generator's market at the extract's first open, ETH with its inverse
/// perpetual (so that some accounts post ETH).
fn generated_market(
    extract: &Extract,
) -> Result<Vec<solvent_engine::population::UnderlyingMarket>, DemoError> {
    let mut market = default_market();
    for underlying in &mut market {
        let bar = extract.first_bar(&underlying.underlying).ok_or_else(|| {
            DemoError::Venue(format!("no {} in the extract", underlying.underlying))
        })?;
        underlying.price = bar.open;
        if underlying.underlying == "ETH" {
            underlying.inverse = Some("ETH-PERPETUAL".to_owned());
        }
    }
    Ok(market)
}

/// One account's events: deposits, the margin mode, the fills (long options first, then the
/// perpetual, then short options: the order whose every prefix is covered).
fn account(
    rng: &mut ChaCha8Rng,
    market: &OpeningMarket<'_>,
    id: &str,
    mode: MarginMode,
    book: &Book,
    legs: &[Leg],
    notional_usd: f64,
) -> Result<Vec<Event>, DemoError> {
    let spot = market.index(book.underlying)?;
    let coins = notional_usd / float(spot);
    let expiry = if rng.random::<f64>() < 0.6 {
        EXPIRIES[0]
    } else {
        EXPIRIES[1]
    };
    let mut fills = Vec::new();
    let order = |leg: &Leg| match (leg.contract, leg.long) {
        (Contract::Perpetual, _) => 1,
        (_, true) => 0,
        (_, false) => 2,
    };
    let mut ordered: Vec<&Leg> = legs.iter().collect();
    ordered.sort_by_key(|leg| order(leg));
    for leg in ordered {
        fills.push(plan_fill(
            market,
            book,
            expiry,
            leg,
            coins * leg.ratio,
            spot,
        )?);
    }
    let target_health = 1.6 + 2.4 * unit(rng).powi(2);
    let deposits = fund(market, id, mode, book, &fills, target_health)?;
    let mut events: Vec<Event> = deposits
        .into_iter()
        .map(|(asset, amount)| {
            Event::Deposit(Deposit {
                account: id.to_owned(),
                asset,
                amount: Amount(amount),
            })
        })
        .collect();
    if mode == MarginMode::Portfolio {
        events.push(Event::SetMarginMode(SetMarginMode {
            account: id.to_owned(),
            mode,
        }));
    }
    for fill in fills {
        let price = Price::new_checked(fill.price).map_err(DemoError::OutOfRange)?;
        events.push(Event::Fill(Fill {
            account: id.to_owned(),
            instrument: fill.instrument.name.clone(),
            side: if fill.signed > Decimal::ZERO {
                Side::Buy
            } else {
                Side::Sell
            },
            size: Quantity(fill.signed.abs()),
            price,
            fee: Amount(fill.fee),
            counterparty: EXTERNAL.to_owned(),
        }));
    }
    Ok(events)
}

/// Prices one leg of `coins` of underlying at the opening market.
fn plan_fill(
    market: &OpeningMarket<'_>,
    book: &Book,
    expiry: &str,
    leg: &Leg,
    coins: f64,
    spot: Decimal,
) -> Result<Planned, DemoError> {
    let spot_f64 = float(spot);
    let option = |fraction: f64, right: &str| {
        let strike = ((spot_f64 * fraction / book.strike_grid).round() * book.strike_grid)
            .max(book.strike_grid);
        format!("{}-{expiry}-{strike:.0}-{right}", book.options)
    };
    let name = match leg.contract {
        Contract::Perpetual => book.perpetual.to_owned(),
        Contract::Call(fraction) => option(fraction, "C"),
        Contract::Put(fraction) => option(fraction, "P"),
    };
    let instrument = market.venue.instrument(&name).map_err(DemoError::Venue)?;
    let step = instrument.size_step.max(Decimal::ZERO);
    let size = match (instrument.style, &instrument.terms) {
        // Inverse perpetuals are sized in USD, whole contracts.
        (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => {
            steps(decimal(coins)? * spot, step.max(instrument.contract_size))
        }
        _ => steps(decimal(coins)? / instrument.contract_size, step),
    };
    let signed = if leg.long { size } else { -size };
    let (price, fee) = match instrument.terms {
        Terms::Option { .. } => {
            let mark = market
                .view()
                .mark(&instrument)
                .map_err(|e| DemoError::Risk(e.to_string()))?
                .price;
            // The account crosses the spread: a buyer pays the tick above, a seller gets the
            // tick below (never less than one tick).
            let ticks = mark / book.tick;
            let ticks = if leg.long {
                ticks.ceil()
            } else {
                ticks.floor()
            };
            let price = (ticks.max(Decimal::ONE)) * book.tick;
            let underlying = match instrument.style {
                Style::Inverse => size * instrument.contract_size,
                Style::Linear => size * instrument.contract_size * spot,
            };
            let fee = (underlying * OPTION_FEE_RATE).min(OPTION_FEE_CAP * price * size);
            (price, fee)
        }
        _ => {
            let fee = match instrument.style {
                Style::Inverse => size / spot * PERPETUAL_FEE_RATE,
                Style::Linear => size * instrument.contract_size * spot * PERPETUAL_FEE_RATE,
            };
            (spot, fee)
        }
    };
    let decimals = market
        .venue
        .asset(&instrument.settlement)
        .map_or(8, |a| a.precision)
        .min(8);
    Ok(Planned {
        instrument,
        signed,
        price: price.normalize(),
        fee: up(fee, decimals),
    })
}

/// The deposits (asset, amount) that cover the initial margin after every prefix of `fills` and
/// reach `target_health` after all of them: cash for the premiums and fees in each settlement
/// asset, and collateral in the book's coins found by a few fixed-point steps (equity moves one
/// for one with collateral; the requirement hardly does).
fn fund(
    market: &OpeningMarket<'_>,
    id: &str,
    mode: MarginMode,
    book: &Book,
    fills: &[Planned],
    target_health: f64,
) -> Result<Vec<(String, Decimal)>, DemoError> {
    let mut cash: Vec<(String, Decimal)> = Vec::new();
    for fill in fills {
        let owed = (-fill.cash()).max(Decimal::ZERO);
        match cash
            .iter_mut()
            .find(|(a, _)| *a == fill.instrument.settlement)
        {
            Some((_, amount)) => *amount += owed,
            None => cash.push((fill.instrument.settlement.clone(), owed)),
        }
    }
    let spot = float(market.index(book.underlying)?);
    let gross_usd: f64 = fills
        .iter()
        .map(|f| match (f.instrument.style, &f.instrument.terms) {
            // Inverse perpetuals are sized in USD.
            (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => float(f.signed.abs()),
            _ => float(f.signed.abs() * f.instrument.contract_size) * spot,
        })
        .sum();
    let mut collateral_usd = (gross_usd * 0.05).max(100.0);
    let mut health = target_health;
    let cushion = Decimal::new(102, 2);
    let mut previous: Option<(f64, f64)> = None;
    for _ in 0..32 {
        let deposits = deposits(market, book, &cash, collateral_usd)?;
        let mut shortfall = Decimal::MIN;
        for filled in 1..=fills.len() {
            let portfolio = portfolio(market, id, mode, &deposits, &fills[..filled])?;
            let report = build_report(&portfolio, &market.view(), Detail::Totals)
                .map_err(|e| DemoError::Risk(format!("{id}: {e}")))?;
            let mut need = report.initial_margin.value() * cushion;
            if filled == fills.len() {
                need = need.max(report.maintenance_margin.value() * decimal(health)?);
            }
            shortfall = shortfall.max(need - report.equity.value());
        }
        if shortfall <= Decimal::ZERO {
            return Ok(deposits);
        }
        let shortfall = float(shortfall);
        // Secant steps: equity grows one for one with collateral, but a coin posted in
        // portfolio margin also adds to the risk the requirement scans, so the shortfall falls
        // by less than the deposit. A health the coin's own risk keeps out of reach (the
        // shortfall hardly falls) is lowered toward the initial margin.
        let slope = match previous {
            Some((before, short_before)) if collateral_usd > before => {
                (shortfall - short_before) / (collateral_usd - before)
            }
            _ => -1.0,
        };
        if slope > -0.05 {
            health = (health * 0.8).max(1.0);
            previous = None;
            continue;
        }
        previous = Some((collateral_usd, shortfall));
        collateral_usd += shortfall / -slope * 1.02 + 1.0;
    }
    Err(DemoError::Risk(format!(
        "{id}: no deposit covers the initial margin of its fills"
    )))
}

/// The deposits for `collateral_usd` spread over the book's coins, plus `cash`.
fn deposits(
    market: &OpeningMarket<'_>,
    book: &Book,
    cash: &[(String, Decimal)],
    collateral_usd: f64,
) -> Result<Vec<(String, Decimal)>, DemoError> {
    let mut out: Vec<(String, Decimal)> = Vec::new();
    for (asset, share) in book.collateral {
        let usd = market.asset_usd(asset)?;
        let amount = decimal(collateral_usd * share)? / usd;
        out.push(((*asset).to_owned(), amount));
    }
    for (asset, amount) in cash {
        match out.iter_mut().find(|(a, _)| a == asset) {
            Some((_, held)) => *held += *amount,
            None => out.push((asset.clone(), *amount)),
        }
    }
    // Coins to six decimals, dollars to cents, rounded up: a deposit never falls short.
    Ok(out
        .into_iter()
        .map(|(asset, amount)| {
            let decimals = if market
                .asset_usd(&asset)
                .is_ok_and(|p| p > Decimal::from(100))
            {
                6
            } else {
                2
            };
            let amount = up(amount, decimals);
            (asset, amount)
        })
        .filter(|(_, amount)| *amount > Decimal::ZERO)
        .collect())
}

/// The account as a portfolio after `deposits` and `fills`, for its margin report.
fn portfolio(
    market: &OpeningMarket<'_>,
    id: &str,
    mode: MarginMode,
    deposits: &[(String, Decimal)],
    fills: &[Planned],
) -> Result<Portfolio, DemoError> {
    let mut balances: Vec<(String, Decimal)> = deposits.to_vec();
    for fill in fills {
        match balances
            .iter_mut()
            .find(|(a, _)| *a == fill.instrument.settlement)
        {
            Some((_, held)) => *held += fill.cash(),
            None => balances.push((fill.instrument.settlement.clone(), fill.cash())),
        }
    }
    let balances = balances
        .into_iter()
        .map(|(asset, amount)| {
            Ok(Balance {
                asset: market
                    .venue
                    .asset(&asset)
                    .map_err(DemoError::Venue)?
                    .clone(),
                amount: Amount(amount),
            })
        })
        .collect::<Result<Vec<_>, DemoError>>()?;
    let positions = fills
        .iter()
        .map(|fill| {
            Ok(Position {
                instrument: Arc::clone(&fill.instrument),
                size: Quantity(fill.signed),
                entry_price: Price::new_checked(fill.price).map_err(DemoError::OutOfRange)?,
                isolated_margin: None,
                leverage: None,
            })
        })
        .collect::<Result<Vec<_>, DemoError>>()?;
    let settlement = market
        .venue
        .asset(&market.venue.settlement_asset)
        .map_err(DemoError::Venue)?
        .clone();
    Ok(Portfolio {
        account: id.into(),
        mode,
        balances,
        positions,
        settlement_asset: settlement,
        market: None,
        accrued_interest: Vec::new(),
    })
}
