//! The liquidation-cascade simulation (DESIGN.md 8.4): events in, report out.
//!
//! [`run`] replays a population (any `EVENTS.jsonl` stream) through a fresh engine, then plays
//! rounds. Round 0 publishes the shocked index prices; every round publishes one index price per
//! underlying (and a mark for each instrument whose mark the stream had set), all at one instant
//! one second after the previous round, and lets the engine liquidate. The market flow of those
//! liquidations per underlying — sells of liquidated longs, buys of liquidated shorts, in USD —
//! moves that underlying's next price by the square-root impact
//!
//! ```text
//! move = -sign(net sells) x impact x sqrt(|net flow| / ADV)      (at most max_impact_move)
//! next price = base price x (1 + move)
//! ```
//!
//! and the rounds go on until one liquidates nothing or `max_rounds` is reached.
//!
//! Two readings of "volume" ([`ImpactModel`]):
//! - `cumulative` (default): the square-root law prices a *metaorder* by its total size, and a
//!   cascade's liquidations are one metaorder sent over several rounds; so round `k + 1`'s price
//!   is the shocked price moved by `impact x sqrt(|net flow of rounds 0..k| / ADV)`. Splitting
//!   the flow into rounds does not change the impact, and the cascade stops when the liquidation
//!   prices run out faster than the impact grows.
//! - `per_round`: each round's flow alone moves the previous round's price. Summing square roots
//!   of slices overstates impact (n equal slices move the price sqrt(n) times as far as the
//!   whole); with a continuum of liquidation prices it creeps on round after round, because
//!   `sqrt` has an infinite slope at zero volume.
//!
//! The engine is run with guards that do not hold a shocked price back (a cascade is the move
//! itself, not a bad tick): the jump confirmation threshold is set out of reach and a breach
//! liquidates at once ([`cascade_config`]). Every other parameter is the caller's.
//!
//! Flow accounting reads the engine's effects and checks them against the positions: for each
//! account named by a `liquidation` or `adl` effect, its position change over the event is the
//! liquidations (market flow), the auto-deleveraging (internal, no market flow: the opposite
//! side is another account at the bankruptcy price) and any remainder the engine closed at the
//! market without a `liquidation` effect (it happens when auto-deleveraging finds too little
//! opposite interest; reported as `unreported_market_usd`).
//!
//! The ledger's conservation (per asset, all balances sum to zero) is checked after the
//! population and at the end of every round (the sum the round reports as `ledger_totals`); a
//! break stops the run with [`CascadeError::ConservationBroken`], naming the round's last event.

use std::collections::{BTreeMap, BTreeSet};

use compact_str::CompactString;
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::Serialize;
use solvent_core::money::Price;
use solvent_core::venue::Venue;
use solvent_risk::MarketView;
use thiserror::Error;

use crate::config::EngineConfig;
use crate::effect::Effect;
use crate::engine::Engine;
use crate::event::{Envelope, Event, IndexPrice, MarkPrice};
use crate::ledger::LedgerAccount;

/// How liquidation flow turns into price impact (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpactModel {
    /// The shocked price moved by the impact of the cumulative net flow.
    #[default]
    Cumulative,
    /// The previous round's price moved by the impact of that round's net flow.
    PerRound,
}

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CascadeParams {
    /// Relative index move per underlying in round 0 (`-0.1`: down 10%).
    pub shocks: BTreeMap<String, Decimal>,
    /// Square-root impact coefficient.
    pub impact: f64,
    /// Which flow the impact is of.
    pub impact_model: ImpactModel,
    /// Average daily traded value per underlying, USD (the impact's depth).
    pub adv_usd: BTreeMap<String, Decimal>,
    /// Rounds at most (round 0 included).
    pub max_rounds: usize,
    /// Largest relative move impact may cause (from the shocked price when cumulative, in one
    /// round when per round); keeps prices positive.
    pub max_impact_move: f64,
}

impl Default for CascadeParams {
    fn default() -> Self {
        Self {
            shocks: BTreeMap::new(),
            impact: 0.1,
            impact_model: ImpactModel::Cumulative,
            adv_usd: crate::population::default_market()
                .into_iter()
                .map(|m| (m.underlying, m.adv_usd))
                .collect(),
            max_rounds: 50,
            max_impact_move: 0.5,
        }
    }
}

/// Why a cascade cannot run.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CascadeError {
    /// A parameter outside its range.
    #[error("{name}: {problem}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The population gives no index for an underlying the cascade needs.
    #[error("the population has no {0} index price; shocks and impact need one")]
    MissingIndex(String),
    /// A money-creating bug: the ledger's totals are not zero.
    #[error("conservation broken after event {seq}: {asset} sums to {total}")]
    ConservationBroken {
        /// The event after which it was seen.
        seq: u64,
        /// Asset.
        asset: String,
        /// The non-zero total.
        total: Decimal,
    },
    /// A price left the exact range.
    #[error("a price left the accepted range: {0}")]
    OutOfRange(String),
}

/// Why the rounds stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A round liquidated nothing.
    NothingLiquidated,
    /// `max_rounds` was reached while liquidations went on.
    MaxRounds,
}

/// One round.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    /// 0 for the shock.
    pub round: usize,
    /// Index price applied per underlying.
    pub prices: BTreeMap<String, Decimal>,
    /// Accounts with at least one liquidation or auto-deleveraging step in the round.
    pub accounts_liquidated: usize,
    /// Liquidation steps (`liquidation` effects).
    pub liquidation_steps: usize,
    /// Liquidated notional sent to the market, USD (at the liquidation prices).
    pub volume_usd: Decimal,
    /// The same per underlying.
    pub volume_by_underlying_usd: BTreeMap<String, Decimal>,
    /// Net market flow per underlying, USD: positive buys, negative sells.
    pub net_flow_usd: BTreeMap<String, Decimal>,
    /// Part of `volume_usd` closed at the market without a `liquidation` effect.
    pub unreported_market_usd: Decimal,
    /// Auto-deleveraged notional, USD (at the bankruptcy prices).
    pub adl_volume_usd: Decimal,
    /// Bankrupt accounts' deficits beyond what the insurance fund held, USD at the round's
    /// prices (`deficit_beyond_fund` effects): what a larger fund would have paid instead of
    /// auto-deleveraging or leaving a debt.
    pub deficit_beyond_fund_usd: Decimal,
    /// The part of it no opposite position could bear, left as the bankrupt accounts' debt, USD.
    pub account_debt_usd: Decimal,
    /// Insurance fund balance per asset at the end of the round.
    pub insurance_fund: BTreeMap<String, Decimal>,
    /// Its USD value at the round's prices.
    pub insurance_fund_usd: Decimal,
    /// Per asset, the sum of all ledger balances at the end of the round (all zero).
    pub ledger_totals: BTreeMap<String, Decimal>,
    /// Net market flow per underlying from round 0 to this one, USD.
    pub cumulative_net_flow_usd: BTreeMap<String, Decimal>,
    /// Relative impact move per underlying that sets the next round's price: from the shocked
    /// price (cumulative model) or from this round's price (per-round model).
    pub impact_move: BTreeMap<String, f64>,
}

/// The totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Totals {
    /// Rounds played (round 0 included).
    pub rounds: usize,
    /// Why they stopped.
    pub stopped: StopReason,
    /// Liquidated notional sent to the market, USD.
    pub volume_usd: Decimal,
    /// Auto-deleveraged notional, USD.
    pub adl_volume_usd: Decimal,
    /// Distinct accounts liquidated or deleveraged.
    pub accounts_liquidated: usize,
    /// Insurance fund before the shock, USD.
    pub insurance_fund_start_usd: Decimal,
    /// Lowest insurance fund seen (after any effect), USD at that round's prices.
    pub insurance_fund_min_usd: Decimal,
    /// `start - minimum`, never negative.
    pub insurance_fund_drawdown_usd: Decimal,
    /// The fund a venue would have needed to avoid auto-deleveraging (and bankrupt accounts'
    /// debt): the fund before the shock plus every deficit beyond what it held, USD.
    pub insurance_fund_needed_usd: Decimal,
    /// Bankrupt accounts' deficits left as their debt (nothing to deleverage against), USD.
    pub account_debt_usd: Decimal,
    /// Per asset: `start - minimum` of the balance, never negative.
    pub insurance_fund_drawdown: BTreeMap<String, Decimal>,
    /// Index prices before the shock.
    pub start_prices: BTreeMap<String, Decimal>,
    /// Index prices of the last round.
    pub final_prices: BTreeMap<String, Decimal>,
    /// `final / start - 1` per underlying.
    pub price_change: BTreeMap<String, f64>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CascadeReport {
    /// Accounts in the population (user accounts the engine holds).
    pub accounts: usize,
    /// Events in the population.
    pub population_events: usize,
    /// Population events the engine refused.
    pub population_rejected: usize,
    /// Liquidation steps already during the population's replay.
    pub population_liquidations: usize,
    /// The parameters.
    pub params: CascadeParams,
    /// Per round.
    pub rounds: Vec<Round>,
    /// Totals.
    pub totals: Totals,
    /// The engine's state hash at the end.
    pub state_hash: String,
}

/// The engine configuration of a cascade: the caller's, with the jump guard out of reach and
/// liquidation on the first breach.
#[must_use]
pub fn cascade_config(mut config: EngineConfig) -> EngineConfig {
    config.guards.jump_confirm = Decimal::from(1_000_000);
    config.guards.liquidation_persist_updates = 1;
    config.guards.liquidation_persist_ms = 0;
    config
}

/// Parses `BTC:-0.1,ETH:-12%` (relative moves: fractions below 1 in magnitude, or percentages;
/// each above -100%).
///
/// # Errors
/// A message naming the item that is wrong.
pub fn parse_moves(text: &str) -> Result<BTreeMap<String, Decimal>, String> {
    parse_pairs(text, |name, value| {
        // `-10%` is a percentage; a bare number is a fraction, and one of magnitude 1 or more
        // is refused as ambiguous (`BTC:10` would be +1,000% read as a fraction, +10% as a
        // percentage): such moves are written with `%`.
        let (number, percent) = match value.strip_suffix('%') {
            Some(digits) => (digits.trim(), true),
            None => (value, false),
        };
        // A rise may be written with its sign (`+25%`).
        let number = number.strip_prefix('+').unwrap_or(number);
        let parsed = solvent_core::money::parse_decimal(number)
            .map_err(|problem| format!("{name}: {problem}"))?;
        let fraction = if percent {
            parsed / Decimal::ONE_HUNDRED
        } else if parsed.abs() >= Decimal::ONE {
            return Err(format!(
                "{name}: {parsed} is ambiguous: write a fraction of magnitude below 1 \
                 (-0.1 for a fall of 10%) or a percentage ({parsed}%)"
            ));
        } else {
            parsed
        };
        if fraction <= -Decimal::ONE || fraction > Decimal::from(100) {
            return Err(format!(
                "{name}: a move must be above -100% and at most +10,000%, found {value}"
            ));
        }
        Ok(fraction)
    })
}

/// Parses `BTC:1808517626,ETH:1569063906` (positive USD amounts).
///
/// # Errors
/// A message naming the item that is wrong.
pub fn parse_amounts(text: &str) -> Result<BTreeMap<String, Decimal>, String> {
    parse_pairs(text, |name, value| {
        // Plain decimals only, as in every input file (`1_808_517_626` is refused there too).
        let number = solvent_core::money::parse_decimal(value)
            .map_err(|problem| format!("{name}: {problem}"))?;
        if number <= Decimal::ZERO || number > MAX_ADV_USD {
            return Err(format!(
                "{name}: must be positive and at most 1e18 USD, found {number}"
            ));
        }
        Ok(number)
    })
}

fn parse_pairs(
    text: &str,
    value_of: impl Fn(&str, &str) -> Result<Decimal, String>,
) -> Result<BTreeMap<String, Decimal>, String> {
    let mut pairs = BTreeMap::new();
    for item in text.split(',') {
        let (name, value) = item
            .split_once(':')
            .ok_or_else(|| format!("{item:?} is not NAME:VALUE (e.g. BTC:-0.1)"))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{item:?}: {name:?} is not an underlying name"));
        }
        let value = value_of(name, value)?;
        if pairs.insert(name.to_owned(), value).is_some() {
            return Err(format!("{name} is given twice"));
        }
    }
    if pairs.is_empty() {
        return Err("nothing given".to_owned());
    }
    Ok(pairs)
}

/// Largest average daily volume accepted (10^18 USD).
const MAX_ADV_USD: Decimal = Decimal::from_parts(2_808_348_672, 232_830_643, 0, false, 0);
/// Largest square-root impact coefficient accepted (a cost of 100x the flow at one day's volume
/// is no market).
const MAX_IMPACT: f64 = 100.0;

impl CascadeParams {
    /// Checks every parameter's range (the underlyings are checked against the population
    /// when the cascade starts).
    ///
    /// # Errors
    /// [`CascadeError::InvalidParameter`] naming the first parameter out of range.
    pub fn check(&self) -> Result<(), CascadeError> {
        check_params(self)
    }
}

fn check_params(params: &CascadeParams) -> Result<(), CascadeError> {
    let fail = |name, problem: &str| {
        Err(CascadeError::InvalidParameter {
            name,
            problem: problem.to_owned(),
        })
    };
    if params.shocks.is_empty() {
        return fail("shocks", "at least one underlying must be shocked");
    }
    if params.shocks.values().any(|m| *m <= -Decimal::ONE) {
        return fail("shocks", "a move must be above -1");
    }
    if !(params.impact.is_finite() && params.impact >= 0.0 && params.impact <= MAX_IMPACT) {
        return fail("impact", "must be a number between 0 and 100");
    }
    if params.max_rounds == 0 || params.max_rounds > 10_000 {
        return fail("max_rounds", "must be between 1 and 10,000");
    }
    if !(params.max_impact_move.is_finite()
        && params.max_impact_move > 0.0
        && params.max_impact_move < 1.0)
    {
        return fail("max_impact_move", "must be in (0, 1)");
    }
    if params
        .adv_usd
        .values()
        .any(|adv| *adv <= Decimal::ZERO || *adv > MAX_ADV_USD)
    {
        return fail("adv_usd", "every ADV must be positive and at most 1e18 USD");
    }
    Ok(())
}

/// Replays `events` and runs the cascade.
///
/// # Errors
/// [`CascadeError`] for bad parameters, a shocked underlying without an index or ADV, or a
/// broken ledger.
pub fn run(
    venue: Venue,
    config: EngineConfig,
    events: &[Envelope],
    params: &CascadeParams,
) -> Result<CascadeReport, CascadeError> {
    params.check()?;
    let mut replay = Replay::new(venue, config);
    for event in events {
        replay.apply(event);
    }
    replay.shock(params, |_| {}).map(|shocked| shocked.report)
}

/// A population being replayed into a cascade's engine, one event at a time: what [`run`] does
/// with a slice, for a caller that reads the events as it goes (a file of millions of lines
/// need not be held whole) and shows progress between them.
pub struct Replay {
    engine: Engine,
    population: Population,
    /// Sequence number and time of the last event given (the cascade's own events follow it).
    last: Option<(u64, jiff::Timestamp)>,
}

impl Replay {
    /// An empty engine under the cascade's guards ([`cascade_config`] of `config`).
    #[must_use]
    pub fn new(venue: Venue, config: EngineConfig) -> Self {
        Self {
            engine: Engine::new(venue, cascade_config(config)),
            population: Population::default(),
            last: None,
        }
    }

    /// Applies the population's next event, counting refusals and liquidations.
    pub fn apply(&mut self, event: &Envelope) {
        self.population.events += 1;
        self.last = Some((event.seq, event.ts));
        for effect in self.engine.apply(event) {
            match effect {
                Effect::Rejected { .. } => self.population.rejected += 1,
                Effect::Liquidation { .. } => self.population.liquidations += 1,
                _ => {}
            }
        }
    }

    /// User accounts the engine holds so far.
    #[must_use]
    pub fn accounts(&self) -> usize {
        self.engine.accounts().len()
    }

    /// Checks the ledger, then shocks the market and plays the rounds; `on_round` sees each
    /// round as it ends (for progress: a round of a million accounts can take seconds).
    ///
    /// # Errors
    /// As [`run`].
    pub fn shock(
        self,
        params: &CascadeParams,
        on_round: impl FnMut(&Round),
    ) -> Result<Shocked, CascadeError> {
        params.check()?;
        let (seq, ts) = self.last.unwrap_or((0, jiff::Timestamp::UNIX_EPOCH));
        let mut engine = self.engine;
        check_conservation(&engine, seq)?;
        let report = shock(
            &mut engine,
            &self.population,
            Clock { seq, ts },
            params,
            on_round,
        )?;
        Ok(Shocked { report, engine })
    }
}

/// A cascade's report with the engine as the rounds left it (every account after the cascade;
/// and a caller about to exit may leave it unfreed: a million accounts take seconds to free).
pub struct Shocked {
    /// The report.
    pub report: CascadeReport,
    /// The engine after the last round.
    pub engine: Engine,
}

/// Runs the cascade on a copy of a live engine: its book as it stands, under the cascade's
/// guards ([`cascade_config`]). The report's population figures are zero (nothing replayed).
///
/// # Errors
/// As [`run`].
pub fn run_on(engine: Engine, params: &CascadeParams) -> Result<CascadeReport, CascadeError> {
    params.check()?;
    let config = cascade_config(engine.config().clone());
    let engine = engine.reconfigured(config);
    check_conservation(&engine, engine.last_seq().unwrap_or(0))?;
    let clock = Clock {
        seq: engine.last_seq().unwrap_or(0),
        ts: engine.now(),
    };
    let mut engine = engine;
    shock(&mut engine, &Population::default(), clock, params, |_| {})
}

/// What a replay before the shock counted.
#[derive(Default)]
struct Population {
    events: usize,
    rejected: usize,
    liquidations: usize,
}

/// The shock and its rounds, from `engine` as it stands.
fn shock(
    engine: &mut Engine,
    population: &Population,
    mut clock: Clock,
    params: &CascadeParams,
    mut on_round: impl FnMut(&Round),
) -> Result<CascadeReport, CascadeError> {
    let start_prices: BTreeMap<String, Decimal> = engine
        .market()
        .index
        .iter()
        .map(|(name, price)| (name.clone(), price.value()))
        .collect();
    for name in params.shocks.keys() {
        if !start_prices.contains_key(name) {
            return Err(CascadeError::MissingIndex(name.clone()));
        }
    }
    // Only a held underlying's liquidations move its price (and need its ADV): an index set for
    // an underlying nobody holds (a feed that quotes more than the book trades) is no reason to
    // refuse the cascade.
    for name in held_underlyings(engine) {
        if !params.adv_usd.contains_key(&name) {
            return Err(CascadeError::InvalidParameter {
                name: "adv_usd",
                problem: format!("no ADV for {name}, which the population holds positions on"),
            });
        }
    }
    let fund_start = insurance_fund(engine);
    let fund_start_usd = usd_value(engine, &fund_start);
    let mut fund_min = fund_start.clone();
    let mut fund_min_usd = fund_start_usd;
    let mut prices = start_prices.clone();
    for (name, shock) in &params.shocks {
        if let Some(price) = prices.get_mut(name) {
            *price = (*price * (Decimal::ONE + shock)).round_dp(8);
        }
    }
    let shocked = prices.clone();
    let mut sizes = PositionSizes::of(engine);
    let mut cumulative: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut rounds = Vec::new();
    let mut liquidated_ever = BTreeSet::new();
    let mut stopped = StopReason::MaxRounds;
    for number in 0..params.max_rounds {
        let mut tally = Tally::default();
        clock.tick();
        for (name, price) in &prices {
            let price = Price::new_checked(*price).map_err(CascadeError::OutOfRange)?;
            let mut updates = vec![Event::IndexPrice(IndexPrice {
                underlying: name.clone(),
                price,
                source: None,
            })];
            updates.extend(
                marked_instruments(engine, name)
                    .into_iter()
                    .map(|instrument| Event::MarkPrice(MarkPrice { instrument, price })),
            );
            for event in updates {
                let envelope = clock.envelope(event);
                let effects = engine.apply(&envelope);
                tally.add(engine, &mut sizes, &effects);
                for effect in &effects {
                    if let Effect::InsuranceFundChanged { asset, balance, .. } = effect {
                        let low = fund_min.entry(asset.clone()).or_insert(balance.value());
                        *low = (*low).min(balance.value());
                    }
                }
                let now = insurance_fund(engine);
                fund_min_usd = fund_min_usd.min(usd_value(engine, &now));
            }
        }
        // The ledger's conservation, checked once a round: it sums every balance, and taken after
        // each of the round's events as well it was 3% of a million-account cascade's time.
        let ledger_totals = engine.ledger().totals();
        if let Some((asset, total)) = ledger_totals.iter().find(|(_, t)| !t.is_zero()) {
            return Err(CascadeError::ConservationBroken {
                seq: clock.seq,
                asset: asset.clone(),
                total: *total,
            });
        }
        let fund = insurance_fund(engine);
        for (asset, balance) in &fund {
            let low = fund_min.entry(asset.clone()).or_insert(*balance);
            *low = (*low).min(*balance);
        }
        for (name, flow) in &tally.net_flow_usd {
            *cumulative.entry(name.clone()).or_default() += *flow;
        }
        let impact_move = match params.impact_model {
            ImpactModel::Cumulative => impact_moves(params, &cumulative),
            ImpactModel::PerRound => impact_moves(params, &tally.net_flow_usd),
        };
        liquidated_ever.extend(tally.accounts.iter().cloned());
        let nothing = tally.accounts.is_empty() && tally.volume_usd.is_zero();
        rounds.push(Round {
            round: number,
            prices: prices.clone(),
            accounts_liquidated: tally.accounts.len(),
            liquidation_steps: tally.steps,
            volume_usd: tally.volume_usd,
            volume_by_underlying_usd: tally.volume_by_underlying_usd,
            net_flow_usd: tally.net_flow_usd,
            unreported_market_usd: tally.unreported_usd,
            adl_volume_usd: tally.adl_usd,
            deficit_beyond_fund_usd: tally.beyond_fund_usd,
            account_debt_usd: tally.debt_usd,
            insurance_fund_usd: usd_value(engine, &fund),
            insurance_fund: fund,
            ledger_totals,
            cumulative_net_flow_usd: cumulative.clone(),
            impact_move: impact_move.clone(),
        });
        if let Some(round) = rounds.last() {
            on_round(round);
        }
        if nothing {
            stopped = StopReason::NothingLiquidated;
            break;
        }
        for (name, change) in &impact_move {
            let base = match params.impact_model {
                ImpactModel::Cumulative => shocked.get(name),
                ImpactModel::PerRound => prices.get(name),
            };
            let Some(base) = base.copied() else {
                continue;
            };
            let factor = Decimal::from_f64(1.0 + change)
                .ok_or_else(|| CascadeError::OutOfRange(format!("move {change}")))?
                .round_dp(12);
            prices.insert(name.clone(), (base * factor).round_dp(8));
        }
    }
    let final_prices = rounds
        .last()
        .map_or_else(|| start_prices.clone(), |r| r.prices.clone());
    let price_change = final_prices
        .iter()
        .filter_map(|(name, last)| {
            let first = start_prices.get(name)?;
            Some((name.clone(), to_f64(*last / *first) - 1.0))
        })
        .collect();
    let insurance_fund_drawdown = fund_start
        .keys()
        .chain(fund_min.keys())
        .map(|asset| {
            let start = fund_start.get(asset).copied().unwrap_or(Decimal::ZERO);
            let low = fund_min.get(asset).copied().unwrap_or(start).min(start);
            (asset.clone(), start - low)
        })
        .collect();
    let totals = Totals {
        rounds: rounds.len(),
        stopped,
        volume_usd: rounds.iter().map(|r| r.volume_usd).sum(),
        adl_volume_usd: rounds.iter().map(|r| r.adl_volume_usd).sum(),
        accounts_liquidated: liquidated_ever.len(),
        insurance_fund_start_usd: fund_start_usd,
        insurance_fund_min_usd: fund_min_usd,
        insurance_fund_drawdown_usd: (fund_start_usd - fund_min_usd).max(Decimal::ZERO),
        insurance_fund_needed_usd: fund_start_usd
            + rounds
                .iter()
                .map(|r| r.deficit_beyond_fund_usd)
                .sum::<Decimal>(),
        account_debt_usd: rounds.iter().map(|r| r.account_debt_usd).sum(),
        insurance_fund_drawdown,
        start_prices,
        final_prices,
        price_change,
    };
    Ok(CascadeReport {
        accounts: engine.accounts().len(),
        population_events: population.events,
        population_rejected: population.rejected,
        population_liquidations: population.liquidations,
        params: params.clone(),
        rounds,
        totals,
        state_hash: engine.state_hash(),
    })
}

/// Sequence numbers and time of the cascade's own events.
struct Clock {
    seq: u64,
    ts: jiff::Timestamp,
}

impl Clock {
    /// Moves to the next round's instant, one second on.
    fn tick(&mut self) {
        self.ts = self
            .ts
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap_or(self.ts);
    }

    fn envelope(&mut self, event: Event) -> Envelope {
        self.seq += 1;
        Envelope {
            seq: self.seq,
            ts: self.ts,
            event,
        }
    }
}

/// Instruments on `underlying` whose mark the stream set (the others derive it from the index).
fn marked_instruments(engine: &Engine, underlying: &str) -> Vec<String> {
    engine
        .market()
        .mark
        .keys()
        .filter(|name| {
            engine
                .venue()
                .instrument(name)
                .is_ok_and(|i| i.underlying == underlying)
        })
        .cloned()
        .collect()
}

fn check_conservation(engine: &Engine, seq: u64) -> Result<(), CascadeError> {
    match engine
        .ledger()
        .totals()
        .into_iter()
        .find(|(_, t)| !t.is_zero())
    {
        Some((asset, total)) => Err(CascadeError::ConservationBroken { seq, asset, total }),
        None => Ok(()),
    }
}

fn insurance_fund(engine: &Engine) -> BTreeMap<String, Decimal> {
    engine
        .ledger()
        .balances_of(&LedgerAccount::InsuranceFund)
        .map(|(asset, amount)| (asset.to_owned(), amount))
        .collect()
}

/// USD value of amounts by asset at the engine's index prices (pegs when no index).
fn usd_value(engine: &Engine, amounts: &BTreeMap<String, Decimal>) -> Decimal {
    let Ok(view) = MarketView::new(engine.venue(), engine.market()) else {
        return Decimal::ZERO;
    };
    amounts
        .iter()
        .map(|(symbol, amount)| {
            let usd = engine
                .venue()
                .asset(symbol)
                .ok()
                .and_then(|asset| view.asset_usd(asset).ok())
                .unwrap_or(Decimal::ZERO);
            *amount * usd
        })
        .sum::<Decimal>()
        .round_dp(6)
}

/// The underlyings of every position an account holds (an instrument the venue no longer
/// resolves counts by nothing: it cannot be liquidated into a price move).
fn held_underlyings(engine: &Engine) -> BTreeSet<String> {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for account in engine.accounts().values() {
        for instrument in account.positions.keys() {
            names.insert(instrument.as_str());
        }
    }
    names
        .into_iter()
        .filter_map(|name| engine.venue().instrument(name).ok())
        .map(|instrument| instrument.underlying.clone())
        .collect()
}

fn impact_moves(
    params: &CascadeParams,
    net_flow_usd: &BTreeMap<String, Decimal>,
) -> BTreeMap<String, f64> {
    net_flow_usd
        .iter()
        .filter(|(_, flow)| !flow.is_zero())
        .filter_map(|(name, flow)| {
            let adv = to_f64(*params.adv_usd.get(name)?);
            let size = to_f64(flow.abs()) / adv;
            let magnitude = (params.impact * size.sqrt()).min(params.max_impact_move);
            let signed = if *flow < Decimal::ZERO {
                -magnitude
            } else {
                magnitude
            };
            Some((name.clone(), signed))
        })
        .collect()
}

fn to_f64(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Every position's size as of the last event looked at, so an event's position changes are
/// found without copying every account before it: built once, then refreshed for the accounts
/// an event's liquidations and ADL name (the only positions a price event changes).
struct PositionSizes(std::collections::HashMap<(CompactString, CompactString), Decimal>);

impl PositionSizes {
    fn of(engine: &Engine) -> Self {
        Self(
            engine
                .accounts()
                .values()
                .flat_map(|account| {
                    account.positions.iter().map(|(instrument, position)| {
                        ((account.id.clone(), instrument.clone()), position.size)
                    })
                })
                .collect(),
        )
    }

    fn size(&self, account: &str, instrument: &str) -> Decimal {
        self.0
            .get(&(
                CompactString::from(account),
                CompactString::from(instrument),
            ))
            .copied()
            .unwrap_or(Decimal::ZERO)
    }

    fn refresh(&mut self, engine: &Engine, effects: &[Effect]) {
        for effect in effects {
            let (named, instrument) = match effect {
                Effect::Liquidation {
                    account,
                    instrument,
                    ..
                } => ([Some(account), None], instrument),
                Effect::Adl {
                    account,
                    counterparty,
                    instrument,
                    ..
                } => ([Some(account), Some(counterparty)], instrument),
                _ => continue,
            };
            for account in named.into_iter().flatten() {
                let key = (
                    CompactString::from(account.as_str()),
                    CompactString::from(instrument.as_str()),
                );
                match engine
                    .accounts()
                    .get(account)
                    .and_then(|a| a.positions.get(instrument.as_str()))
                {
                    Some(position) => {
                        self.0.insert(key, position.size);
                    }
                    None => {
                        self.0.remove(&key);
                    }
                }
            }
        }
    }
}

/// One round's flows.
#[derive(Default)]
struct Tally {
    accounts: BTreeSet<String>,
    steps: usize,
    volume_usd: Decimal,
    volume_by_underlying_usd: BTreeMap<String, Decimal>,
    net_flow_usd: BTreeMap<String, Decimal>,
    unreported_usd: Decimal,
    adl_usd: Decimal,
    beyond_fund_usd: Decimal,
    debt_usd: Decimal,
}

impl Tally {
    /// Adds one event's flows: market flow per (account, instrument) is the position change
    /// less the auto-deleveraged part; what exceeds the `liquidation` effects was closed at the
    /// market without one.
    fn add(&mut self, engine: &Engine, sizes: &mut PositionSizes, effects: &[Effect]) {
        let Ok(view) = MarketView::new(engine.venue(), engine.market()) else {
            return;
        };
        // (account, instrument) -> (reported market size, deleveraged size), signed as trades.
        let mut reported: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
        for effect in effects {
            match effect {
                Effect::Liquidation {
                    account,
                    instrument,
                    size,
                    price,
                    ..
                } => {
                    self.steps += 1;
                    self.accounts.insert(account.clone());
                    reported
                        .entry((account.clone(), instrument.clone()))
                        .or_default()
                        .0 += size.value();
                    self.market(engine, &view, instrument, size.value(), price.value());
                }
                Effect::Adl {
                    account,
                    instrument,
                    size,
                    price,
                    ..
                } => {
                    self.accounts.insert(account.clone());
                    // `size` is the counterparty's trade; the bankrupt account did the opposite.
                    reported
                        .entry((account.clone(), instrument.clone()))
                        .or_default()
                        .1 -= size.value();
                    self.adl_usd +=
                        usd_notional(engine, &view, instrument, size.value(), price.value());
                }
                Effect::DeficitBeyondFund {
                    asset,
                    deficit,
                    fund,
                    resolution,
                    ..
                } => {
                    let usd = engine
                        .venue()
                        .asset(asset)
                        .ok()
                        .and_then(|a| view.asset_usd(a).ok())
                        .unwrap_or(Decimal::ZERO);
                    let beyond = ((deficit.value() - fund.value()) * usd).round_dp(6);
                    self.beyond_fund_usd += beyond;
                    if *resolution == crate::effect::DeficitResolution::AccountDebt {
                        self.debt_usd += beyond;
                    }
                }
                _ => {}
            }
        }
        for ((account, instrument), (market, adl)) in reported {
            let old = sizes.size(&account, &instrument);
            let new = engine
                .accounts()
                .get(&account)
                .and_then(|a| a.positions.get(instrument.as_str()))
                .map_or(Decimal::ZERO, |p| p.size);
            let rest = new - old - adl - market;
            if !rest.is_zero()
                && let Ok(resolved) = engine.venue().instrument(&instrument)
                && let Ok(mark) = view.mark(&resolved)
            {
                let usd = self.market(engine, &view, &instrument, rest, mark.price);
                self.unreported_usd += usd;
            }
        }
        sizes.refresh(engine, effects);
    }

    /// Records a signed market trade; returns its USD notional.
    fn market(
        &mut self,
        engine: &Engine,
        view: &MarketView<'_>,
        instrument: &str,
        size: Decimal,
        price: Decimal,
    ) -> Decimal {
        let Ok(resolved) = engine.venue().instrument(instrument) else {
            return Decimal::ZERO;
        };
        let usd = usd_notional(engine, view, instrument, size, price);
        self.volume_usd += usd;
        *self
            .volume_by_underlying_usd
            .entry(resolved.underlying.clone())
            .or_default() += usd;
        let signed = if size < Decimal::ZERO { -usd } else { usd };
        *self
            .net_flow_usd
            .entry(resolved.underlying.clone())
            .or_default() += signed;
        usd
    }
}

/// USD notional of a trade of `size` at `price`.
fn usd_notional(
    engine: &Engine,
    view: &MarketView<'_>,
    instrument: &str,
    size: Decimal,
    price: Decimal,
) -> Decimal {
    let Ok(resolved) = engine.venue().instrument(instrument) else {
        return Decimal::ZERO;
    };
    let settlement_usd = engine
        .venue()
        .asset(&resolved.settlement)
        .ok()
        .and_then(|asset| view.asset_usd(asset).ok())
        .unwrap_or(Decimal::ONE);
    (solvent_risk::standard::notional(&resolved, size, price) * settlement_usd).round_dp(6)
}
