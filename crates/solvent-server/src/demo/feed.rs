//! The live feed: the extract's days replayed minute by minute, with trading flow, as events
//! with historical timestamps. Pure and seeded: no clock (pacing is [`super::run_feed`]'s).
//!
//! # Prices
//! Each day, every underlying follows a path of `steps_per_day` steps from its open through its
//! high and its low to its close. The two extremes are reached at times drawn once per day for
//! every underlying (a crash hits BTC and ETH together), in the order backtesters take for a
//! daily bar (a down day goes open, high, low, close; an up day open, low, high, close) with
//! probability 0.7, the other order otherwise (ASSUMPTION: a seeded order, weighted toward the
//! convention). Between anchors the log price is a Brownian bridge whose daily scale is
//! Parkinson's (1980) estimate from the day's range, `ln(H / L) / (2 sqrt(ln 2))`; the steps of
//! the underlyings are correlated at the default venue's BTC/ETH correlation of daily returns
//! (0.8067, ASSUMPTION: the daily figure holds intraday). The path is clamped to `[low, high]`,
//! so the day's extremes are the extract's. Steps of one minute keep every index within the
//! engine's default staleness limit (60 s): a stale index would freeze liquidation.
//!
//! Every 4 hours the smiles of both option expiries are re-sent around the current index at the
//! DVOL interpolated between the day's open and close (ASSUMPTION: linear within the day).
//!
//! # Flow
//! Per day and per account of the opening, on average (ASSUMPTION: rates chosen so that a
//! 10,000-account book sees a few hundred actions a day besides the prices):
//! - 0.01 arrivals: a new account deposits USDT or USDC and opens a leveraged perpetual at the
//!   current index (leverage Pareto from 2x, tail 1.2, at most the default 20x), long with
//!   probability 0.6 when the index is above the day's open, 0.4 otherwise (trend followers);
//! - 0.05 trades by cross-margined perpetual traders (the population's and the arrivals'): a
//!   reduction of 25-100% of a position, or, for an account last seen with equity above 1.5
//!   times its initial margin, an addition of 10-30%;
//! - 0.005 withdrawals of 5% of an opening stablecoin deposit by an account last seen with
//!   equity above twice its initial margin.
//!
//! Funding is paid on every perpetual at 00:00, 08:00 and 16:00 UTC: Binance's interest
//! component of 0.01% per 8 hours plus a premium proxy, 5% of the index's log return over the
//! last 8 hours, clamped to +-0.3% (ASSUMPTION: the premium of a perpetual follows the market's
//! direction; the data has no perpetual prices). Fees on every flow fill are the 0.05% taker
//! rate.
//!
//! # Reactions
//! The feed cannot see the engine; what the engine did comes back through [`Feed::observe`]:
//! states, equity against initial margin, positions closed by liquidation or ADL, and margin
//! calls, half of which (ASSUMPTION) are answered by a deposit of the amount the call states,
//! 2 to 60 minutes later. Fed the effects of each event as it is applied, the feed is
//! deterministic for a seed.

mod flow;
mod observe;
mod path;

pub use observe::Observation;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::portfolio::MarginMode;
use solvent_core::venue::{MarginRule, Venue};
use solvent_engine::effect::Effect;
use solvent_engine::event::{
    Deposit, Event, Fill, Funding, IndexPrice, Side, VolSurface, Withdraw,
};
use solvent_engine::ledger::{EXTERNAL, INSURANCE_FUND};
use solvent_risk::AccountState;

use super::DemoError;
use super::draw::{decimal, down, float, log_normal, normal, pareto, poisson, smile, up};
use super::extract::Extract;
use super::opening::{EXPIRIES, PERPETUAL_FEE_RATE};
use crate::core::Incoming;

/// Perpetuals the feed pays funding on (those the opening and the arrivals trade).
const PERPETUALS: [&str; 5] = [
    "BTCUSDT",
    "ETHUSDT",
    "BTC-PERPETUAL",
    "ETH-PERPETUAL",
    "BTC_USDC-PERPETUAL",
];

/// What the feed generates.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedParams {
    /// Seed of the feed's ChaCha8 stream.
    pub seed: u64,
    /// Price steps per day (1,440: one a minute; fewer let indices go stale between updates).
    pub steps_per_day: u32,
    /// Days of the extract to replay from its first (`None`: all).
    pub days: Option<usize>,
    /// New accounts per day, per account of the opening.
    pub arrivals_per_account_day: f64,
    /// Trades per day, per account of the opening.
    pub trades_per_account_day: f64,
    /// Withdrawals per day, per account of the opening.
    pub withdrawals_per_account_day: f64,
    /// Share of margin calls answered by a deposit.
    pub margin_call_deposit_share: f64,
}

impl Default for FeedParams {
    fn default() -> Self {
        Self {
            seed: solvent_engine::population::DEFAULT_SEED,
            steps_per_day: 1_440,
            days: None,
            arrivals_per_account_day: 0.01,
            trades_per_account_day: 0.05,
            withdrawals_per_account_day: 0.005,
            margin_call_deposit_share: 0.5,
        }
    }
}

/// What the feed knows of an account it may trade for.
#[derive(Clone, Debug)]
struct Trader {
    id: String,
    /// Opening stablecoin deposits (what withdrawals take a share of).
    stable_deposits: Vec<(String, Decimal)>,
    /// Perpetual positions by instrument.
    positions: BTreeMap<String, Decimal>,
    state: AccountState,
    /// Equity over initial margin when last seen.
    cover: Option<f64>,
}

/// The live stream (see the module documentation). An iterator of events in time order.
#[derive(Debug)]
pub struct Feed {
    params: FeedParams,
    extract: Extract,
    instruments: BTreeMap<String, Arc<Instrument>>,
    precisions: BTreeMap<String, u32>,
    rng: ChaCha8Rng,
    /// Accounts in the opening (the flow rates scale with it).
    population: usize,
    traders: Vec<Trader>,
    by_id: BTreeMap<String, usize>,
    /// Next day and step to generate.
    day: usize,
    step: u32,
    /// The current day's paths, one per underlying, `steps_per_day + 1` points each.
    paths: Vec<Vec<Decimal>>,
    /// The latest index per underlying.
    current: Vec<Decimal>,
    /// The index at the last funding, per underlying.
    at_last_funding: Vec<Decimal>,
    queue: VecDeque<Incoming>,
    /// Reactions waiting for their time, in time order.
    reactions: VecDeque<(Timestamp, Event)>,
    arrivals: u64,
    last_ts: Timestamp,
    finished: bool,
}

impl Feed {
    /// A feed over `extract` for the accounts opened by `opening` (the events of
    /// [`super::population`]).
    ///
    /// # Errors
    /// [`DemoError::InvalidParameter`] for a parameter out of range; [`DemoError::Venue`] when
    /// the venue lacks a perpetual the feed trades.
    pub fn new(
        venue: &Venue,
        extract: &Extract,
        opening: &[Incoming],
        params: FeedParams,
    ) -> Result<Self, DemoError> {
        check(&params)?;
        let mut instruments = BTreeMap::new();
        for name in PERPETUALS {
            instruments.insert(
                name.to_owned(),
                venue.instrument(name).map_err(DemoError::Venue)?,
            );
        }
        let precisions = venue
            .assets
            .iter()
            .map(|(symbol, asset)| (symbol.clone(), asset.precision))
            .collect();
        let mut feed = Self {
            rng: ChaCha8Rng::seed_from_u64(params.seed ^ 0x6665_6564_2d64_656d),
            params,
            extract: extract.clone(),
            instruments,
            precisions,
            population: 0,
            traders: Vec::new(),
            by_id: BTreeMap::new(),
            day: 0,
            step: 0,
            paths: Vec::new(),
            current: extract
                .days
                .first()
                .map(|d| d.bars.iter().map(|b| b.open).collect())
                .unwrap_or_default(),
            at_last_funding: Vec::new(),
            queue: VecDeque::new(),
            reactions: VecDeque::new(),
            arrivals: 0,
            last_ts: extract.start(),
            finished: false,
        };
        feed.at_last_funding = feed.current.clone();
        feed.learn_opening(opening, venue);
        Ok(feed)
    }

    /// The time of the next event, generating it if needed (`None` once the history is over).
    pub fn peek_time(&mut self) -> Option<Timestamp> {
        self.fill_queue();
        self.queue.front().and_then(|e| e.ts)
    }

    /// Accounts the feed may trade for (the population's perpetual traders and the arrivals).
    #[must_use]
    pub fn traders(&self) -> usize {
        self.traders.len()
    }

    /// Reads the opening: who trades perpetuals in cross, with what, and what they posted.
    fn learn_opening(&mut self, opening: &[Incoming], venue: &Venue) {
        let mut seen: BTreeMap<String, (Trader, bool)> = BTreeMap::new();
        let mut order = Vec::new();
        let mut entry = |id: &str, seen: &mut BTreeMap<String, (Trader, bool)>| {
            if !seen.contains_key(id) {
                order.push(id.to_owned());
                seen.insert(
                    id.to_owned(),
                    (
                        Trader {
                            id: id.to_owned(),
                            stable_deposits: Vec::new(),
                            positions: BTreeMap::new(),
                            state: AccountState::Healthy,
                            cover: None,
                        },
                        true,
                    ),
                );
            }
        };
        for incoming in opening {
            match &incoming.event {
                Event::Deposit(d) if d.account != INSURANCE_FUND => {
                    entry(&d.account, &mut seen);
                    let cash_like = venue.asset(&d.asset).is_ok_and(|a| a.cash_like);
                    if let Some((trader, _)) = seen.get_mut(&d.account)
                        && cash_like
                    {
                        trader
                            .stable_deposits
                            .push((d.asset.clone(), d.amount.value()));
                    }
                }
                Event::SetMarginMode(m) => {
                    entry(&m.account, &mut seen);
                    if let Some((_, tradable)) = seen.get_mut(&m.account) {
                        *tradable &= m.mode == MarginMode::Cross;
                    }
                }
                Event::Fill(f) => {
                    entry(&f.account, &mut seen);
                    let perpetual = self.instruments.contains_key(&f.instrument);
                    if let Some((trader, tradable)) = seen.get_mut(&f.account) {
                        *tradable &= perpetual;
                        let signed = match f.side {
                            Side::Buy => f.size.value(),
                            Side::Sell => -f.size.value(),
                        };
                        *trader.positions.entry(f.instrument.clone()).or_default() += signed;
                    }
                }
                _ => {}
            }
        }
        self.population = order.len();
        for id in order {
            if let Some((trader, true)) = seen.remove(&id)
                && !trader.positions.is_empty()
            {
                self.by_id.insert(id, self.traders.len());
                self.traders.push(trader);
            }
        }
    }

    /// Generates steps until there is an event or the history is over.
    fn fill_queue(&mut self) {
        while self.queue.is_empty() && !self.finished {
            self.generate_step();
        }
    }

    fn days(&self) -> usize {
        self.params
            .days
            .map_or(self.extract.days.len(), |d| d.min(self.extract.days.len()))
    }

    fn step_duration(&self) -> SignedDuration {
        SignedDuration::from_millis(86_400_000 / i64::from(self.params.steps_per_day))
    }

    fn generate_step(&mut self) {
        if self.day >= self.days() {
            self.close_history();
            return;
        }
        if self.step == 0 {
            self.paths = self.day_paths(self.day);
        }
        let Some(day_start) = self.extract.days.get(self.day).map(|d| d.start) else {
            self.finished = true;
            return;
        };
        let step = self.step_duration();
        let offset = step * i32::try_from(self.step).unwrap_or(i32::MAX);
        let at = day_start.checked_add(offset).unwrap_or(day_start);
        let point = self.step as usize;
        let prices: Vec<Decimal> = self
            .paths
            .iter()
            .map(|path| path.get(point).copied().unwrap_or_default())
            .collect();
        self.emit_prices(at, &prices);
        let since_midnight = offset.as_millis();
        if since_midnight % (4 * 3_600_000) == 0 {
            let fraction = since_midnight as f64 / 86_400_000.0;
            self.emit_smiles(at, fraction);
        }
        if since_midnight % (8 * 3_600_000) == 0 {
            self.emit_funding(at);
        }
        self.emit_flow(at, step);
        self.step += 1;
        if self.step >= self.params.steps_per_day {
            self.step = 0;
            self.day += 1;
        }
    }

    /// After the last day: its closes at 24:00, then nothing.
    fn close_history(&mut self) {
        self.finished = true;
        let Some(last) = self
            .days()
            .checked_sub(1)
            .and_then(|d| self.extract.days.get(d))
        else {
            return;
        };
        let closes: Vec<Decimal> = last.bars.iter().map(|b| b.close).collect();
        let end = last
            .start
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(last.start);
        self.emit_prices(end, &closes);
    }

    fn push(&mut self, at: Timestamp, event: Event) {
        self.last_ts = self.last_ts.max(at);
        self.queue.push_back(Incoming {
            client_id: None,
            ts: Some(at),
            event,
        });
    }

    fn emit_prices(&mut self, at: Timestamp, prices: &[Decimal]) {
        for (slot, price) in prices.iter().enumerate() {
            let Ok(checked) = Price::new_checked(*price) else {
                continue;
            };
            let Some(underlying) = self.extract.underlyings.get(slot).cloned() else {
                continue;
            };
            if let Some(current) = self.current.get_mut(slot) {
                *current = *price;
            }
            self.push(
                at,
                Event::IndexPrice(IndexPrice {
                    underlying,
                    price: checked,
                    source: None,
                }),
            );
        }
    }

    fn emit_smiles(&mut self, at: Timestamp, fraction: f64) {
        let Some(day) = self.extract.days.get(self.day).cloned() else {
            return;
        };
        for (slot, bar) in day.bars.iter().enumerate() {
            let atm = bar.vol_open + (bar.vol_close - bar.vol_open) * fraction;
            let spot = self.current.get(slot).copied().map_or(f64::NAN, float);
            if !spot.is_finite() {
                continue;
            }
            let (strikes, vols) = smile(spot, atm);
            for expiry in EXPIRIES {
                self.push(
                    at,
                    Event::VolSurface(VolSurface {
                        underlying: bar.underlying.clone(),
                        expiry: expiry.to_owned(),
                        strikes: strikes.clone(),
                        vols: vols.clone(),
                    }),
                );
            }
        }
    }

    fn emit_funding(&mut self, at: Timestamp) {
        let funded: Vec<(String, String)> = self
            .instruments
            .values()
            .map(|i| (i.name.clone(), i.underlying.clone()))
            .collect();
        for (name, underlying) in funded {
            let Some(slot) = self
                .extract
                .underlyings
                .iter()
                .position(|u| *u == underlying)
            else {
                continue;
            };
            let (now, before) = (
                self.current.get(slot).copied().map_or(f64::NAN, float),
                self.at_last_funding
                    .get(slot)
                    .copied()
                    .map_or(f64::NAN, float),
            );
            let premium = (0.05 * (now / before).ln()).clamp(-0.003, 0.003);
            let rate = 0.0001 + if premium.is_finite() { premium } else { 0.0 };
            let Ok(rate) = decimal(rate) else {
                continue;
            };
            self.push(
                at,
                Event::Funding(Funding {
                    instrument: name,
                    rate: rate.round_dp(6),
                }),
            );
        }
        self.at_last_funding = self.current.clone();
    }

    /// The flow of one step, in time order after its prices, with the reactions now due.
    fn emit_flow(&mut self, at: Timestamp, step: SignedDuration) {
        let per_step = self.population as f64 / f64::from(self.params.steps_per_day);
        let mut flow: Vec<(Timestamp, Event)> = Vec::new();
        let step_ms = step.as_millis().max(2_000) as i64;
        let moment = |rng: &mut ChaCha8Rng| {
            let offset = rng.random_range(1..step_ms - 1_000);
            at.checked_add(SignedDuration::from_millis(offset))
                .unwrap_or(at)
        };
        for _ in 0..poisson(
            &mut self.rng,
            per_step * self.params.arrivals_per_account_day,
        ) {
            let when = moment(&mut self.rng);
            if let Ok(events) = self.arrival() {
                for (n, event) in events.into_iter().enumerate() {
                    let later = SignedDuration::from_millis(i64::try_from(n).unwrap_or(0));
                    flow.push((when.checked_add(later).unwrap_or(when), event));
                }
            }
        }
        for _ in 0..poisson(&mut self.rng, per_step * self.params.trades_per_account_day) {
            let when = moment(&mut self.rng);
            if let Some(event) = self.trade() {
                flow.push((when, event));
            }
        }
        for _ in 0..poisson(
            &mut self.rng,
            per_step * self.params.withdrawals_per_account_day,
        ) {
            let when = moment(&mut self.rng);
            if let Some(event) = self.withdrawal() {
                flow.push((when, event));
            }
        }
        let end = at.checked_add(step).unwrap_or(at);
        while self.reactions.front().is_some_and(|(due, _)| *due < end) {
            if let Some((due, event)) = self.reactions.pop_front() {
                // A reaction observed late (the service answers after the journal) goes out
                // with the first step that can still carry it.
                let when = due.max(at.checked_add(SignedDuration::from_millis(1)).unwrap_or(at));
                flow.push((when, event));
            }
        }
        flow.sort_by_key(|(when, _)| *when);
        for (when, event) in flow {
            self.push(when, event);
        }
    }
}

impl Iterator for Feed {
    type Item = Incoming;

    fn next(&mut self) -> Option<Incoming> {
        self.fill_queue();
        self.queue.pop_front()
    }
}

fn check(params: &FeedParams) -> Result<(), DemoError> {
    let fail = |name, problem: &str| {
        Err(DemoError::InvalidParameter {
            name,
            problem: problem.to_owned(),
        })
    };
    // Whole seconds per step, at least 4 (room for the flow after the prices), and a whole
    // number of steps in 4 hours (the smiles' and the funding's times fall on steps).
    let steps = params.steps_per_day;
    if !(6..=21_600).contains(&steps)
        || !86_400_u32.is_multiple_of(steps)
        || !steps.is_multiple_of(6)
    {
        return fail(
            "steps_per_day",
            "must be a multiple of 6 dividing 86,400, between 6 and 21,600",
        );
    }
    for (name, rate) in [
        ("arrivals_per_account_day", params.arrivals_per_account_day),
        ("trades_per_account_day", params.trades_per_account_day),
        (
            "withdrawals_per_account_day",
            params.withdrawals_per_account_day,
        ),
    ] {
        if !(rate.is_finite() && (0.0..=10.0).contains(&rate)) {
            return fail(name, "must be between 0 and 10");
        }
    }
    if !(0.0..=1.0).contains(&params.margin_call_deposit_share) {
        return fail("margin_call_deposit_share", "must be a probability");
    }
    Ok(())
}
