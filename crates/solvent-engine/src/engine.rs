//! The state machine: `Engine::apply(event) -> effects`, pure and deterministic (no clock, no
//! I/O; hashed maps, with a fixed seed, only for lookups, never iterated: every listing is in a
//! defined order). Each event is checked by a flat ladder of named rejections before anything
//! changes, so a refused event leaves the state exactly as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use compact_str::CompactString;
use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::{Signed, ToPrimitive};
use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::market::{Market, Smile};
use solvent_core::money::{Amount, MAX_PRICE, Price, Quantity};
use solvent_core::names::NameMap;
use solvent_core::portfolio::{Balance, MarginMode, Portfolio, Position};
use solvent_core::rounding;
use solvent_core::venue::Venue;
use solvent_risk::account::{Detail, build_report};
use solvent_risk::allocation::{AllocationPolicy, BufferPolicy};
use solvent_risk::pretrade::{Refusal, TradeLeg, book_trades, decide_trade, decide_withdrawal};
use solvent_risk::report::MarginReport;
use solvent_risk::whatif::{TradeOutcome, trade_position};
use solvent_risk::{AccountState, MarketView, RiskError};

use crate::book::AccountBook;
use crate::config::{EngineConfig, GuardParams};
use crate::effect::{DeficitResolution, Effect, RejectReason, TransferReason};
use crate::event::{Envelope, Event, Side};
use crate::ledger::{Ledger, LedgerAccount};

mod state_hash;

/// A refused event: the named reason and the figures behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// Named reason.
    pub reason: RejectReason,
    /// Details.
    pub detail: String,
}

fn reject(reason: RejectReason, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

fn risk_rejection(error: RiskError) -> Rejection {
    match error {
        RiskError::MissingIndex { .. }
        | RiskError::MissingOptionMark { .. }
        | RiskError::MissingOpenInterest { .. } => {
            reject(RejectReason::MissingMarketData, error.to_string())
        }
        _ => reject(RejectReason::InvalidInput, error.to_string()),
    }
}

/// A position as the engine holds it.
#[derive(Clone, Debug)]
pub struct PositionState {
    /// The instrument.
    pub instrument: Arc<Instrument>,
    /// Signed size.
    pub size: Decimal,
    /// Average entry.
    pub entry: Decimal,
    /// Whether it has its own isolated margin.
    pub isolated: bool,
}

/// An automated top-up rule with its use in the current UTC day.
#[derive(Clone, Debug)]
pub struct TopUpRule {
    /// The rule as set.
    pub rule: crate::event::SetAutoTopUp,
    /// Day (days since the epoch) the usage counts for.
    pub day: i64,
    /// Amount moved that day.
    pub used: Decimal,
}

/// An account as the engine holds it (balances live in the ledger).
#[derive(Clone, Debug)]
pub struct Account {
    /// Id (inline: see [`LedgerAccount`]).
    pub id: CompactString,
    /// Margin mode.
    pub mode: MarginMode,
    /// Positions by instrument.
    pub positions: BTreeMap<CompactString, PositionState>,
    /// Leverage chosen per instrument.
    pub leverage: BTreeMap<CompactString, Decimal>,
    /// Last evaluated state.
    pub state: AccountState,
    /// Whether a margin call was sent in the current episode.
    pub margin_call_sent: bool,
    /// Consecutive evaluations in breach of the liquidation threshold, and since when.
    pub breach: Option<(u32, Timestamp)>,
    /// The equity kept beyond the initial margin.
    pub buffer: BufferPolicy,
    /// Automated top-ups.
    pub top_ups: Vec<TopUpRule>,
    /// The account's number in the engine (order of opening): the bands' compact key.
    slot: u32,
    /// The safe bands registered for it, per underlying.
    bands: Vec<Band>,
    /// Whether it waits, on some underlying, for a price before it can have a band there.
    unbanded: bool,
    /// The contracts with a given mark it holds whose band is not on that mark (inverse,
    /// options, other settlement): examined at each of their mark updates. Sorted.
    mark_watched: Vec<CompactString>,
    /// The underlyings it is indexed under in the engine's holder sets, sorted.
    indexed_underlyings: Vec<CompactString>,
    /// The instruments it is indexed under, sorted.
    indexed_instruments: Vec<CompactString>,
}

impl Account {
    /// The account's slot (see [`AccountBook`]).
    pub(crate) fn slot(&self) -> u32 {
        self.slot
    }

    fn new(id: &str, slot: u32) -> Self {
        Self {
            slot,
            bands: Vec::new(),
            unbanded: false,
            mark_watched: Vec::new(),
            indexed_underlyings: Vec::new(),
            indexed_instruments: Vec::new(),
            id: id.into(),
            mode: MarginMode::Cross,
            positions: BTreeMap::new(),
            leverage: BTreeMap::new(),
            state: AccountState::Healthy,
            margin_call_sent: false,
            breach: None,
            buffer: BufferPolicy::None,
            top_ups: Vec::new(),
        }
    }

    /// A trade at `price` in `instrument`: the position's current size, entry and isolation
    /// (a new position starts flat, at the trade's price, in the cross pool) and the outcome.
    fn trade_outcome(
        &self,
        instrument: &Instrument,
        signed: Decimal,
        price: Decimal,
    ) -> (TradeOutcome, bool) {
        let (size, entry, isolated) = self
            .positions
            .get(instrument.name.as_str())
            .map_or((Decimal::ZERO, price, false), |p| {
                (p.size, p.entry, p.isolated)
            });
        (
            trade_position(instrument, size, entry, signed, price),
            isolated,
        )
    }

    /// Sets a position to a trade's outcome (removed when it is flat).
    fn apply_outcome(
        &mut self,
        instrument: &Arc<Instrument>,
        outcome: &TradeOutcome,
        isolated: bool,
    ) {
        set_position(&mut self.positions, instrument, outcome, isolated);
    }
}

/// Sets the position in `instrument` among `positions` to a trade's outcome (removed when flat).
fn set_position(
    positions: &mut BTreeMap<CompactString, PositionState>,
    instrument: &Arc<Instrument>,
    outcome: &TradeOutcome,
    isolated: bool,
) {
    if outcome.size.is_zero() {
        positions.remove(instrument.name.as_str());
    } else {
        positions.insert(
            instrument.name.as_str().into(),
            PositionState {
                instrument: Arc::clone(instrument),
                size: outcome.size,
                entry: outcome.entry,
                isolated,
            },
        );
    }
}

/// Safe price bands of one price source (an underlying's index, or a contract's given mark):
/// accounts whose state cannot change while that price stays strictly inside `(low, high)`,
/// ordered by each bound so a price update finds the accounts it takes out of their band in
/// `O(log n + crossed)`.
///
/// Bounds are keyed by [`BandKey`] (an `f64` narrowed outward by `BAND_KEY_MARGIN`) and the
/// account's slot, so that ordering them compares two integers instead of a decimal and a name.
#[derive(Clone, Debug, Default)]
struct Bands {
    by_low: BTreeSet<(BandKey, u32)>,
    by_high: BTreeSet<(BandKey, u32)>,
}

impl Bands {
    /// The accounts whose band `price` reaches or leaves. Usually the price stays above every
    /// lower bound and below every upper one: the two extreme bounds say so without searching
    /// the ranges.
    fn crossed(&self, price: Decimal) -> impl Iterator<Item = &u32> {
        let key = band_key(band_f64(price));
        let below = self
            .by_low
            .last()
            .is_some_and(|(highest_low, _)| *highest_low >= key);
        let above = self
            .by_high
            .first()
            .is_some_and(|(lowest_high, _)| *lowest_high <= key);
        let lows = below.then(|| self.by_low.range((key, 0)..));
        let highs = above.then(|| self.by_high.range(..=(key, u32::MAX)));
        lows.into_iter()
            .flatten()
            .chain(highs.into_iter().flatten())
            .map(|(_, slot)| slot)
    }
}

/// The bits of a non-negative `f64`, which order as the values do.
type BandKey = u64;

/// Relative margin by which a band's keys are narrowed. The band is computed in `f64` from
/// exact figures: converting them and the arithmetic after cost a few ulps (1e-16 relative) of
/// the price, far below this margin, so a price at or beyond an exact safe bound is always at or
/// beyond its key; and the margin is far below any band's width.
const BAND_KEY_MARGIN: f64 = 1e-12;

/// Powers of ten as `f64` (exact up to 1e22, within half an ulp beyond).
const POWERS_OF_TEN: [f64; 29] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
];

/// A decimal as `f64` for band arithmetic: mantissa over a power of ten, within two ulps (the
/// key margins cover far more, see `BAND_KEY_MARGIN`). `rust_decimal`'s own conversion is
/// correctly rounded but splits the number with 128-bit divisions, several times slower, and
/// every evaluation converts a handful of figures.
fn band_f64(value: Decimal) -> f64 {
    // A scale is at most 28; the fallback never applies.
    let power = POWERS_OF_TEN
        .get(value.scale() as usize)
        .copied()
        .unwrap_or(f64::INFINITY);
    // The mantissa is below 2^96: exact up to 2^53, rounded to the nearest beyond.
    #[allow(clippy::cast_precision_loss)]
    let mantissa = value.mantissa() as f64;
    mantissa / power
}

/// The key of a non-negative price.
fn band_key(price: f64) -> BandKey {
    price.max(0.0).to_bits()
}

/// The key of a band's lower bound: raised, so it is examined whenever the price reaches `low`.
fn low_key(low: f64) -> BandKey {
    band_key(low * (1.0 + BAND_KEY_MARGIN))
}

/// The key of a band's upper bound: lowered, so it is examined whenever the price reaches `high`.
fn high_key(high: f64) -> BandKey {
    band_key(high * (1.0 - BAND_KEY_MARGIN))
}

/// An account's exposure to one underlying, summed over the positions and collateral on it.
#[derive(Debug)]
struct Exposure<'a> {
    /// The price it moves with: an underlying's index, or a contract's given mark.
    source: Source<'a>,
    /// That price, as `f64` (the bands are computed in it).
    price_f64: f64,
    /// Sum of `|coin exposure|`.
    coins: Decimal,
    /// Sum of `|coin exposure| x r_max` (the largest maintenance rate each can reach).
    coins_at_rate: Decimal,
    /// Whether it stands only so that an account in danger is examined at this index's every
    /// update (its contracts are banded on their marks): no band otherwise.
    companion: bool,
}

impl Exposure<'_> {
    /// `S_u = sum |coin exposure| (1 + h r_max)` (see [`Engine::set_bands`]).
    fn sensitivity(&self, top: Decimal) -> Decimal {
        self.coins + top * self.coins_at_rate
    }
}

/// What moves the value of a position or a balance: an underlying's index, or the given mark of
/// a contract (then its index does not: a linear contract settled in a pegged asset is valued
/// and margined at its mark alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source<'a> {
    /// The index of an underlying (or of a collateral asset).
    Index(&'a str),
    /// The given mark of a contract.
    Mark(&'a str),
}

impl Source<'_> {
    fn owned(self) -> OwnedSource {
        match self {
            Source::Index(name) => OwnedSource::Index(name.into()),
            Source::Mark(name) => OwnedSource::Mark(name.into()),
        }
    }
}

/// A [`Source`] kept with a registered band.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OwnedSource {
    Index(CompactString),
    Mark(CompactString),
}

impl OwnedSource {
    fn borrowed(&self) -> Source<'_> {
        match self {
            OwnedSource::Index(name) => Source::Index(name),
            OwnedSource::Mark(name) => Source::Mark(name),
        }
    }
}

/// A safe band registered for an account on one price source, with its keys in [`Bands`].
#[derive(Clone, Debug)]
struct Band {
    source: OwnedSource,
    low: f64,
    high: f64,
    low_key: BandKey,
    high_key: BandKey,
}

/// The map holding the bands of `source`'s kind (index or mark bands), and its key there.
fn band_map<'m, 's>(
    index_bands: &'m mut BTreeMap<String, Bands>,
    mark_bands: &'m mut BTreeMap<String, Bands>,
    source: &'s OwnedSource,
) -> (&'m mut BTreeMap<String, Bands>, &'s str) {
    match source {
        OwnedSource::Index(name) => (index_bands, name),
        OwnedSource::Mark(name) => (mark_bands, name),
    }
}

/// The slack of `E - h MM` to the nearest of `levels` below and above `health`, and the larger of
/// the two levels (the `h` of the sensitivity bound); `None` when there is none. Each level is
/// given as `f64` (to compare with the health) and as the decimal the slack is computed with.
fn slack_to_levels(
    levels: &[(f64, Decimal)],
    health: Option<f64>,
    equity: Decimal,
    maintenance: Decimal,
) -> Option<(Decimal, Decimal)> {
    let health = health.unwrap_or(f64::INFINITY);
    let below = levels
        .iter()
        .filter(|(level, _)| *level < health)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(Decimal::ZERO, |(_, exact)| *exact);
    let above = levels
        .iter()
        .filter(|(level, _)| *level >= health)
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let slack_down = equity - below * maintenance;
    let (slack_up, top) = match above {
        Some((_, exact)) => (*exact * maintenance - equity, *exact),
        None => (
            Decimal::MAX,
            levels
                .iter()
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map_or(Decimal::ZERO, |(_, exact)| *exact),
        ),
    };
    let slack = slack_down.min(slack_up);
    if slack <= Decimal::ZERO {
        return None;
    }
    Some((slack, top.max(below)))
}

/// The indices of `venue`'s pegged coins.
fn coin_indices(venue: &Venue) -> Vec<String> {
    venue
        .assets
        .values()
        .filter(|asset| asset.usd_peg.is_some())
        .map(|asset| asset.index.to_string())
        .collect()
}

/// Health 0 and `venue`'s state thresholds, as [`slack_to_levels`] takes them.
fn state_levels(venue: &Venue) -> Option<Vec<(f64, Decimal)>> {
    let thresholds = &venue.thresholds;
    [
        0.0,
        thresholds.liquidation,
        thresholds.reduce_only,
        thresholds.margin_call,
    ]
    .into_iter()
    .map(level)
    .collect()
}

/// A health level as [`slack_to_levels`] takes it.
fn level(value: f64) -> Option<(f64, Decimal)> {
    Some((value, Decimal::try_from(value).ok()?))
}

/// One index source's last price.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SourcePrice {
    price: Decimal,
    at: Timestamp,
}

/// The engine.
#[derive(Clone, Debug)]
pub struct Engine {
    venue: Venue,
    config: EngineConfig,
    market: Market,
    ledger: Ledger,
    accounts: AccountBook,
    /// The outside world's positions (the other side of fills against `external`), so that its
    /// realised P&L also passes through clearing.
    external: BTreeMap<CompactString, PositionState>,
    sources: BTreeMap<String, BTreeMap<String, SourcePrice>>,
    pending_jumps: BTreeMap<String, Decimal>,
    /// Accounts (slots) exposed to each underlying, by positions or collateral.
    holders: BTreeMap<String, BTreeSet<u32>>,
    /// Accounts holding each instrument (mark updates, ADL candidates).
    instrument_holders: BTreeMap<String, BTreeSet<u32>>,
    /// Safe bands on the indices, by underlying.
    bands: BTreeMap<String, Bands>,
    /// Safe bands on the given marks of contracts, by contract.
    mark_bands: BTreeMap<String, Bands>,
    /// Holders of a contract with a given mark who are not banded on it (see
    /// [`Account::mark_watched`]).
    mark_watchers: BTreeMap<String, BTreeSet<u32>>,
    /// Health 0 and the venue's liquidation, reduce-only and margin-call thresholds, in that
    /// order, as the bands compute with them (`None` if one is not a finite number: no bands).
    state_levels: Option<Vec<(f64, Decimal)>>,
    /// The indices of the venue's pegged coins (which the market may price away from par).
    coin_indices: Vec<String>,
    /// Holders of an underlying without a band on it yet (examined at its every update).
    unbanded: BTreeMap<String, BTreeSet<u32>>,
    /// ADL counterparties whose profit was just taken at the bankruptcy price: examined again
    /// before the event ends, since losing that profit can leave them in breach.
    deleveraged: BTreeSet<String>,
    last_seq: Option<u64>,
    now: Timestamp,
    events: u64,
    /// The digest of the installed venue (see [`state_hash`]).
    venue_digest: [u8; 32],
}

/// The fixed point of time before any event.
const EPOCH: Timestamp = Timestamp::UNIX_EPOCH;

impl Engine {
    /// An engine with no accounts and no prices.
    #[must_use]
    pub fn new(venue: Venue, config: EngineConfig) -> Self {
        Self {
            venue_digest: state_hash::venue_digest(&venue),
            state_levels: state_levels(&venue),
            coin_indices: coin_indices(&venue),
            venue,
            config,
            market: Market {
                timestamp: EPOCH,
                index: NameMap::default(),
                mark: NameMap::default(),
                vol: NameMap::default(),
                rate: 0.0,
                open_interest: NameMap::default(),
            },
            ledger: Ledger::default(),
            accounts: AccountBook::default(),
            external: BTreeMap::new(),
            sources: BTreeMap::new(),
            pending_jumps: BTreeMap::new(),
            holders: BTreeMap::new(),
            instrument_holders: BTreeMap::new(),
            bands: BTreeMap::new(),
            mark_bands: BTreeMap::new(),
            mark_watchers: BTreeMap::new(),
            unbanded: BTreeMap::new(),
            deleveraged: BTreeSet::new(),
            last_seq: None,
            now: EPOCH,
            events: 0,
        }
    }

    /// The ledger.
    #[must_use]
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The accounts.
    #[must_use]
    pub fn accounts(&self) -> &AccountBook {
        &self.accounts
    }

    /// The current market.
    #[must_use]
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// The venue.
    #[must_use]
    pub fn venue(&self) -> &Venue {
        &self.venue
    }

    /// Account `id` as a portfolio (balances from the ledger, isolated margins, chosen
    /// leverage): what its margin report and the pre-trade rule read. `None` for an unknown
    /// account, or one whose position left the accepted range.
    #[must_use]
    pub fn portfolio(&self, id: &str) -> Option<Portfolio> {
        let account = self.accounts.get(id)?;
        self.portfolio_of(account).ok()
    }

    /// Events applied (accepted or refused).
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Applies one event. A refused event yields a single `rejected` effect and changes nothing:
    /// not even the last sequence number or the engine's time move (only [`Self::events`]
    /// counts it).
    pub fn apply(&mut self, envelope: &Envelope) -> Vec<Effect> {
        if let Some(last) = self.last_seq
            && envelope.seq <= last
        {
            return vec![rejected(&reject(
                RejectReason::SequenceNotIncreasing,
                format!("sequence {} after {last}", envelope.seq),
            ))];
        }
        if envelope.ts < self.now {
            return vec![rejected(&reject(
                RejectReason::TimestampBeforePrevious,
                format!("{} is before {}", envelope.ts, self.now),
            ))];
        }
        // A refusal takes nothing, not even the sequence number or the time (restored below):
        // a refused event leaves the whole state, and its hash, as they were.
        let taken = (self.last_seq, self.now, self.market.timestamp);
        self.last_seq = Some(envelope.seq);
        self.events += 1;
        self.now = envelope.ts;
        self.market.timestamp = envelope.ts;
        let result = match &envelope.event {
            Event::Deposit(e) => self.deposit(&e.account, &e.asset, e.amount.value()),
            Event::Withdraw(e) => self.withdraw(&e.account, &e.asset, e.amount.value()),
            Event::Transfer(e) => self.transfer(&e.from, &e.to, &e.asset, e.amount.value()),
            Event::Fill(e) => self.fill(e),
            Event::IndexPrice(e) => {
                self.index_price(&e.underlying, e.price.value(), e.source.as_deref())
            }
            Event::MarkPrice(e) => self.mark_price(&e.instrument, e.price.value()),
            Event::VolSurface(e) => self.vol_surface(&e.underlying, &e.expiry, &e.strikes, &e.vols),
            Event::Funding(e) => self.funding(&e.instrument, e.rate),
            Event::Settlement(e) => self.settlement(&e.instrument, e.price.value()),
            Event::SetLeverage(e) => self.set_leverage(&e.account, &e.instrument, e.leverage),
            Event::SetMarginMode(e) => self.set_margin_mode(&e.account, e.mode),
            Event::SetIsolatedMargin(e) => {
                self.set_isolated_margin(&e.account, &e.instrument, e.amount.value())
            }
            Event::SetBufferPolicy(e) => self.set_buffer_policy(&e.account, &e.policy),
            Event::SetAutoTopUp(e) => self.set_auto_top_up(e),
            Event::ListInstrument(e) => self.list_instrument(&e.name, &e.spec),
            Event::UpdateVenue(e) => self.update_venue(&e.venue),
        };
        match result {
            Ok(mut effects) => {
                // Each ADL closes opposite interest, so this ends: open interest only shrinks.
                while let Some(id) = self.deleveraged.pop_first() {
                    self.evaluate(&id, true, &mut effects);
                }
                effects
            }
            Err(rejection) => {
                self.deleveraged.clear();
                (self.last_seq, self.now, self.market.timestamp) = taken;
                vec![rejected(&rejection)]
            }
        }
    }

    // ---- checks shared by the handlers -------------------------------------------------------

    fn known_account(&self, id: &str) -> Result<&Account, Rejection> {
        self.accounts.get(id).ok_or_else(|| {
            reject(
                RejectReason::UnknownAccount,
                format!("account {id:?} does not exist"),
            )
        })
    }

    /// Opens `id` if it does not exist yet, in the next slot (before anything else changes, so
    /// that a refusal leaves the state as it was).
    fn open_account(&mut self, id: &str) -> Result<(), Rejection> {
        if self.accounts.contains_key(id) {
            return Ok(());
        }
        let slot = self.accounts.next_slot().ok_or_else(|| {
            reject(
                RejectReason::OutOfRange,
                format!("no room for account {id:?}: the engine holds 2^32 accounts"),
            )
        })?;
        self.accounts.open(Account::new(id, slot));
        Ok(())
    }

    fn checked_amount(&self, asset: &str, amount: Decimal) -> Result<u32, Rejection> {
        let precision = self
            .venue
            .asset(asset)
            .map_err(|problem| reject(RejectReason::UnknownAsset, problem))?
            .precision;
        if amount <= Decimal::ZERO {
            return Err(reject(
                RejectReason::AmountMustBePositive,
                format!("amount {amount}"),
            ));
        }
        if amount.normalize().scale() > precision {
            return Err(reject(
                RejectReason::PrecisionExceeded,
                format!("{amount} has more than {asset}'s {precision} decimals"),
            ));
        }
        Ok(precision)
    }

    fn instrument(&self, name: &str) -> Result<Arc<Instrument>, Rejection> {
        self.venue
            .instrument(name)
            .map_err(|problem| reject(RejectReason::UnknownInstrument, problem))
    }

    /// Makes `venue` the engine's, with what the bands derive from it.
    fn install_venue(&mut self, venue: Venue) {
        self.state_levels = state_levels(&venue);
        self.coin_indices = coin_indices(&venue);
        self.venue_digest = state_hash::venue_digest(&venue);
        self.venue = venue;
    }

    // ---- valuation ------------------------------------------------------------------------------

    /// The account as a portfolio (balances from the ledger), with `change` applied to a copy.
    fn portfolio_of(&self, account: &Account) -> Result<Portfolio, Rejection> {
        // In the venue's order of assets, as a portfolio file lists them.
        let mut held: Vec<(usize, &solvent_core::venue::Asset, Decimal)> = self
            .ledger
            .wallet(&account.id)
            .filter_map(|(symbol, amount)| {
                let (index, _, asset) = self.venue.assets.get_full(symbol)?;
                Some((index, asset, amount))
            })
            .collect();
        held.sort_unstable_by_key(|(index, _, _)| *index);
        let balances = held
            .into_iter()
            .map(|(_, asset, amount)| Balance {
                asset: asset.clone(),
                amount: Amount(amount),
            })
            .collect();
        let positions = account
            .positions
            .values()
            .map(|p| {
                let isolated_margin = p.isolated.then(|| {
                    Amount(self.ledger.balance(
                        &LedgerAccount::Isolated(
                            account.id.clone(),
                            p.instrument.name.as_str().into(),
                        ),
                        &p.instrument.settlement,
                    ))
                });
                Ok(Position {
                    instrument: Arc::clone(&p.instrument),
                    size: Quantity(p.size),
                    entry_price: Price::new_checked(p.entry)
                        .map_err(|problem| reject(RejectReason::OutOfRange, problem))?,
                    isolated_margin,
                    leverage: account.leverage.get(p.instrument.name.as_str()).copied(),
                })
            })
            .collect::<Result<Vec<_>, Rejection>>()?;
        let settlement_asset = self
            .venue
            .asset(&self.venue.settlement_asset)
            .map_err(|problem| reject(RejectReason::UnknownAsset, problem))?
            .clone();
        Ok(Portfolio {
            account: account.id.clone(),
            mode: account.mode,
            balances,
            positions,
            settlement_asset,
            market: None,
        })
    }

    fn report_of(&self, portfolio: &Portfolio) -> Result<MarginReport, Rejection> {
        let view = MarketView::new(&self.venue, &self.market).map_err(risk_rejection)?;
        build_report(portfolio, &view, Detail::Figures).map_err(risk_rejection)
    }

    fn report(&self, id: &str) -> Result<MarginReport, Rejection> {
        let account = self.known_account(id)?;
        self.report_of(&self.portfolio_of(account)?)
    }

    // ---- money ----------------------------------------------------------------------------------

    fn deposit(
        &mut self,
        id: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        self.checked_amount(asset, amount)?;
        match LedgerAccount::named(id) {
            LedgerAccount::InsuranceFund => {
                // The venue funds its insurance fund from outside.
                let mut effects = Vec::new();
                self.move_money(
                    &LedgerAccount::External,
                    &LedgerAccount::InsuranceFund,
                    asset,
                    amount,
                    TransferReason::Deposit,
                    &mut effects,
                );
                self.insurance_changed(asset, amount, "funded", &mut effects);
                return Ok(effects);
            }
            LedgerAccount::Wallet(_) => {}
            _ => {
                return Err(reject(
                    RejectReason::InvalidInput,
                    format!("{id:?} is a system ledger account, not a user account"),
                ));
            }
        }
        self.open_account(id)?;
        let mut effects = Vec::new();
        self.move_money(
            &LedgerAccount::External,
            &LedgerAccount::Wallet(id.into()),
            asset,
            amount,
            TransferReason::Deposit,
            &mut effects,
        );
        // Pegged assets are never indexed (see `reindex`): more of one changes no index set.
        if self
            .venue
            .assets
            .get(asset)
            .is_none_or(|held| held.usd_peg.is_none())
        {
            self.reindex(id);
        }
        self.evaluate(id, true, &mut effects);
        Ok(effects)
    }

    /// Checks that taking `amount` of `asset` out of `id`'s wallet leaves it covering its initial
    /// margin and holding no negative balance (Hyperliquid 2025: no withdrawal may leave an
    /// account below IM; Mango 2022: unrealised profit is not a balance, so it cannot leave).
    fn check_outflow(&self, id: &str, asset: &str, amount: Decimal) -> Result<(), Rejection> {
        let account = self.known_account(id)?;
        let balance = self.ledger.wallet_balance(id, asset);
        if balance < amount {
            return Err(reject(
                RejectReason::InsufficientBalance,
                format!(
                    "{id} holds {} {asset}, not {}",
                    balance.normalize(),
                    amount.normalize()
                ),
            ));
        }
        let mut after = self.portfolio_of(account)?;
        if let Some(held) = after.balances.iter_mut().find(|b| b.asset.symbol == asset) {
            held.amount = Amount(held.amount.value() - amount);
        }
        let report = self.report_of(&after)?;
        let buffer = self.buffer_of(account, &after, &report)?;
        decide_withdrawal(&report, buffer).map_err(|refusal| refused(id, &refusal))
    }

    fn withdraw(
        &mut self,
        id: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        self.known_account(id)?;
        self.checked_amount(asset, amount)?;
        self.check_outflow(id, asset, amount)?;
        let mut effects = Vec::new();
        self.move_money(
            &LedgerAccount::Wallet(id.into()),
            &LedgerAccount::External,
            asset,
            amount,
            TransferReason::Withdrawal,
            &mut effects,
        );
        self.reindex(id);
        self.evaluate(id, true, &mut effects);
        Ok(effects)
    }

    fn transfer(
        &mut self,
        from: &str,
        to: &str,
        asset: &str,
        amount: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        self.known_account(from)?;
        if from == to {
            return Err(reject(
                RejectReason::AccountsMustBeDifferent,
                format!("{from} to itself"),
            ));
        }
        if LedgerAccount::named(to) != LedgerAccount::Wallet(to.into()) {
            return Err(reject(
                RejectReason::UnknownAccount,
                format!("{to:?} is not a user account"),
            ));
        }
        self.checked_amount(asset, amount)?;
        self.check_outflow(from, asset, amount)?;
        self.open_account(to)?;
        let mut effects = Vec::new();
        self.move_money(
            &LedgerAccount::Wallet(from.into()),
            &LedgerAccount::Wallet(to.into()),
            asset,
            amount,
            TransferReason::Transfer,
            &mut effects,
        );
        self.reindex(from);
        self.reindex(to);
        self.evaluate(from, true, &mut effects);
        self.evaluate(to, true, &mut effects);
        Ok(effects)
    }

    /// Moves a positive amount and records the effect; amounts here are validated beforehand, so
    /// the ledger cannot refuse them.
    fn move_money(
        &mut self,
        from: &LedgerAccount,
        to: &LedgerAccount,
        asset: &str,
        amount: Decimal,
        reason: TransferReason,
        effects: &mut Vec<Effect>,
    ) {
        if self.ledger.transfer(from, to, asset, amount).is_ok() {
            effects.push(Effect::TransferApplied {
                from: from.to_string(),
                to: to.to_string(),
                asset: asset.to_owned(),
                amount: Amount(amount),
                reason,
            });
        }
    }

    /// Settles a signed cash flow for `holder` (positive: `holder` receives) against `counter`,
    /// rounded toward the venue at the asset's precision.
    fn settle_cash(
        &mut self,
        holder: &LedgerAccount,
        counter: &LedgerAccount,
        asset: &str,
        received: Decimal,
        reason: TransferReason,
        effects: &mut Vec<Effect>,
    ) {
        let precision = self.venue.asset(asset).map_or(8, |a| a.precision);
        let rounded = rounding::credit(received, precision);
        if let Ok(Some((from, to, amount))) = self.ledger.settle(counter, holder, asset, rounded) {
            effects.push(Effect::TransferApplied {
                from: from.to_string(),
                to: to.to_string(),
                asset: asset.to_owned(),
                amount: Amount(amount),
                reason,
            });
        }
    }

    // ---- trading --------------------------------------------------------------------------------

    fn fill(&mut self, event: &crate::event::Fill) -> Result<Vec<Effect>, Rejection> {
        let id = event.account.as_str();
        self.known_account(id)?;
        let instrument = self.instrument(&event.instrument)?;
        let size = event.size.value();
        if size <= Decimal::ZERO {
            return Err(reject(
                RejectReason::InvalidSize,
                "a fill's size must be positive",
            ));
        }
        instrument
            .check_size(size)
            .map_err(|problem| reject(RejectReason::InvalidSize, problem))?;
        let counterparty = LedgerAccount::named(&event.counterparty);
        if counterparty == LedgerAccount::Wallet(id.into()) {
            return Err(reject(
                RejectReason::AccountsMustBeDifferent,
                format!("{id} trades with itself"),
            ));
        }
        if let LedgerAccount::Wallet(other) = &counterparty {
            self.known_account(other)?;
        } else if counterparty != LedgerAccount::External {
            return Err(reject(
                RejectReason::UnknownAccount,
                format!("counterparty {:?}", event.counterparty),
            ));
        }
        let fee = event.fee.value();
        if !fee.is_zero() {
            self.checked_amount(&instrument.settlement, fee.abs())?;
        }
        let signed = match event.side {
            Side::Buy => size,
            Side::Sell => -size,
        };
        let price = event.price.value();
        if solvent_risk::standard::bounded_exposure(&instrument, signed, &[price]).is_none() {
            return Err(reject(
                RejectReason::OutOfRange,
                "the fill's value exceeds 1e15",
            ));
        }
        self.check_open_interest(&instrument, id, &counterparty, signed)?;
        self.check_trade_risk(id, &instrument, signed, price, fee)?;
        if let LedgerAccount::Wallet(other) = &counterparty {
            self.check_trade_risk(other, &instrument, -signed, price, Decimal::ZERO)?;
        }
        // Checked: apply both sides.
        let mut effects = Vec::new();
        self.trade(
            id,
            &instrument,
            signed,
            price,
            TransferReason::RealisedPnl,
            &mut effects,
        );
        if !fee.is_zero() {
            self.settle_cash(
                &LedgerAccount::Wallet(id.into()),
                &LedgerAccount::Fees,
                &instrument.settlement,
                -fee,
                TransferReason::Fee,
                &mut effects,
            );
        }
        match &counterparty {
            LedgerAccount::Wallet(other) => {
                let other = other.clone();
                self.trade(
                    &other,
                    &instrument,
                    -signed,
                    price,
                    TransferReason::RealisedPnl,
                    &mut effects,
                );
                self.reindex(&other);
                self.evaluate(&other, true, &mut effects);
            }
            _ => self.trade_external(&instrument, -signed, price, &mut effects),
        }
        self.reindex(id);
        self.evaluate(id, true, &mut effects);
        Ok(effects)
    }

    fn open_interest(&self, name: &str) -> Decimal {
        self.accounts
            .values()
            .filter_map(|a| a.positions.get(name))
            .chain(self.external.get(name))
            .map(|p| p.size.max(Decimal::ZERO))
            .sum()
    }

    fn check_open_interest(
        &self,
        instrument: &Instrument,
        id: &str,
        counterparty: &LedgerAccount,
        signed: Decimal,
    ) -> Result<(), Rejection> {
        let Some(cap) = self
            .config
            .guards
            .max_open_interest
            .get(instrument.name.as_str())
        else {
            return Ok(());
        };
        let size_of = |account: Option<&Account>| {
            account
                .and_then(|a| a.positions.get(instrument.name.as_str()))
                .map_or(Decimal::ZERO, |p| p.size)
        };
        let mine = size_of(self.accounts.get(id));
        let theirs = match counterparty {
            LedgerAccount::Wallet(other) => size_of(self.accounts.get(other)),
            _ => self
                .external
                .get(instrument.name.as_str())
                .map_or(Decimal::ZERO, |p| p.size),
        };
        let change = (mine + signed).max(Decimal::ZERO) - mine.max(Decimal::ZERO)
            + (theirs - signed).max(Decimal::ZERO)
            - theirs.max(Decimal::ZERO);
        let after = self.open_interest(&instrument.name) + change;
        if change > Decimal::ZERO && after > *cap {
            return Err(reject(
                RejectReason::OpenInterestCap,
                format!(
                    "open interest of {} would be {after}, above its cap {cap}",
                    instrument.name
                ),
            ));
        }
        Ok(())
    }

    /// Pre-trade checks of one side: an account in reduce-only or worse may only reduce; any
    /// account must cover its initial margin after a trade that raises it.
    fn check_trade_risk(
        &self,
        id: &str,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> Result<(), Rejection> {
        let account = self.known_account(id)?;
        let (outcome, _) = account.trade_outcome(instrument, signed, price);
        if Quantity::try_from(outcome.size).is_err() || outcome.entry > MAX_PRICE {
            return Err(reject(
                RejectReason::OutOfRange,
                "the position would leave the accepted range",
            ));
        }
        let view = MarketView::new(&self.venue, &self.market).map_err(risk_rejection)?;
        let before = self.portfolio_of(account)?;
        let leg = TradeLeg {
            instrument: Arc::clone(instrument),
            size: signed,
            price,
            fee,
        };
        let leverage_of = |name: &str| account.leverage.get(name).copied();
        let after = book_trades(&before, &[leg], &view, &leverage_of).map_err(risk_rejection)?;
        let decision = decide_trade(
            account.state,
            &before,
            &after,
            &[instrument.name.as_str()],
            &view,
        )
        .map_err(risk_rejection)?;
        decision
            .verdict
            .map(|_| ())
            .map_err(|refusal| refused(id, &refusal))
    }

    /// Applies a signed trade to an account's position; realised P&L and premium pass through
    /// clearing (into the isolated margin of an isolated position).
    fn trade(
        &mut self,
        id: &str,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        price: Decimal,
        reason: TransferReason,
        effects: &mut Vec<Effect>,
    ) {
        let Some(account) = self.accounts.get_mut(id) else {
            return;
        };
        let (outcome, isolated) = account.trade_outcome(instrument, signed, price);
        account.apply_outcome(instrument, &outcome, isolated);
        let holder = LedgerAccount::of_position(id, &instrument.name, isolated);
        self.settle_cash(
            &holder,
            &LedgerAccount::Clearing,
            &instrument.settlement,
            outcome.realised,
            reason,
            effects,
        );
        self.settle_cash(
            &holder,
            &LedgerAccount::Clearing,
            &instrument.settlement,
            outcome.premium,
            TransferReason::Premium,
            effects,
        );
        if isolated && outcome.size.is_zero() {
            self.release_isolated(id, instrument, effects);
        }
    }

    /// The outside world's side of a fill: its realised P&L passes through clearing against
    /// `external`, so clearing returns to zero once everything is closed.
    fn trade_external(
        &mut self,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        price: Decimal,
        effects: &mut Vec<Effect>,
    ) {
        let old = self.external.get(instrument.name.as_str()).cloned();
        let (old_size, old_entry) = old
            .as_ref()
            .map_or((Decimal::ZERO, price), |p| (p.size, p.entry));
        let outcome = trade_position(instrument, old_size, old_entry, signed, price);
        set_position(&mut self.external, instrument, &outcome, false);
        for (amount, reason) in [
            (outcome.realised, TransferReason::RealisedPnl),
            (outcome.premium, TransferReason::Premium),
        ] {
            self.settle_cash(
                &LedgerAccount::External,
                &LedgerAccount::Clearing,
                &instrument.settlement,
                amount,
                reason,
                effects,
            );
        }
    }

    /// Returns what is left of an isolated position's margin to the wallet.
    fn release_isolated(&mut self, id: &str, instrument: &Instrument, effects: &mut Vec<Effect>) {
        let isolated = LedgerAccount::Isolated(id.into(), instrument.name.as_str().into());
        let left = self.ledger.balance(&isolated, &instrument.settlement);
        self.settle_cash(
            &LedgerAccount::Wallet(id.into()),
            &isolated,
            &instrument.settlement,
            left,
            TransferReason::IsolatedMargin,
            effects,
        );
    }

    // ---- settings -------------------------------------------------------------------------------

    fn set_leverage(
        &mut self,
        id: &str,
        name: &str,
        leverage: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        let instrument = self.instrument(name)?;
        let maximum = match instrument.margin.as_ref() {
            solvent_core::venue::MarginRule::Tiered { tiers, .. } => {
                tiers.first().map(|t| t.max_leverage)
            }
            _ => None,
        };
        if leverage <= Decimal::ZERO || maximum.is_some_and(|max| leverage > max) {
            return Err(reject(
                RejectReason::InvalidLeverage,
                format!("leverage {leverage} for {name} (maximum {maximum:?})"),
            ));
        }
        let mut after = account.clone();
        after.leverage.insert(name.into(), leverage);
        self.replace_account_if_margined(id, after, &format!("at {leverage}x"))
    }

    /// Replaces an account by `after` (a settings change) when its initial margin stays covered,
    /// then evaluates it; `setting` names the change in the rejection.
    fn replace_account_if_margined(
        &mut self,
        id: &str,
        after: Account,
        setting: &str,
    ) -> Result<Vec<Effect>, Rejection> {
        let report = self.report_of(&self.portfolio_of(&after)?)?;
        if report.available.value() < Decimal::ZERO && !report.initial_margin.is_zero() {
            return Err(reject(
                RejectReason::InsufficientInitialMargin,
                format!(
                    "{setting} the initial margin {} exceeds equity {}",
                    report.initial_margin, report.equity
                ),
            ));
        }
        self.accounts.replace(after);
        let mut effects = Vec::new();
        self.evaluate(id, true, &mut effects);
        Ok(effects)
    }

    fn set_margin_mode(&mut self, id: &str, mode: MarginMode) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        if mode == MarginMode::Portfolio && self.venue.portfolio_margin.is_none() {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{} offers no portfolio margin", self.venue.name),
            ));
        }
        let mut after = account;
        after.mode = mode;
        self.replace_account_if_margined(id, after, &format!("in {mode:?} mode"))
    }

    fn set_isolated_margin(
        &mut self,
        id: &str,
        name: &str,
        target: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        let instrument = self.instrument(name)?;
        let Some(position) = account.positions.get(name).cloned() else {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{id} holds no {name} position"),
            ));
        };
        if matches!(instrument.terms, Terms::Option { .. }) {
            return Err(reject(
                RejectReason::InvalidInput,
                "options are margined in the cross pool",
            ));
        }
        if target < Decimal::ZERO {
            return Err(reject(
                RejectReason::AmountMustBePositive,
                format!("target {target}"),
            ));
        }
        let asset = instrument.settlement.clone();
        let precision = self.venue.asset(&asset).map_or(8, |a| a.precision);
        if target.normalize().scale() > precision {
            return Err(reject(
                RejectReason::PrecisionExceeded,
                format!("{target} has more than {precision} decimals"),
            ));
        }
        let isolated = LedgerAccount::Isolated(id.into(), name.into());
        let current = if position.isolated {
            self.ledger.balance(&isolated, &asset)
        } else {
            Decimal::ZERO
        };
        let delta = target - current;
        let mut after = account.clone();
        if let Some(p) = after.positions.get_mut(name) {
            p.isolated = !target.is_zero();
        }
        // Check the result: the wallet must cover the cross pool's IM, and an isolated position
        // its own initial margin.
        let mut portfolio = self.portfolio_of(&after)?;
        if let Some(balance) = portfolio
            .balances
            .iter_mut()
            .find(|b| b.asset.symbol == asset)
        {
            balance.amount = Amount(balance.amount.value() - delta);
        } else if delta < Decimal::ZERO {
            let held = self
                .venue
                .asset(&asset)
                .map_err(|p| reject(RejectReason::UnknownAsset, p))?
                .clone();
            portfolio.balances.push(Balance {
                asset: held,
                amount: Amount(-delta),
            });
        }
        if let Some(p) = portfolio
            .positions
            .iter_mut()
            .find(|p| p.instrument.name == name)
        {
            p.isolated_margin = (!target.is_zero()).then_some(Amount(target));
        }
        if delta > self.ledger.wallet_balance(id, &asset) {
            return Err(reject(
                RejectReason::InsufficientBalance,
                format!("{id} lacks {delta} {asset} for the isolated margin"),
            ));
        }
        let report = self.report_of(&portfolio)?;
        let isolated_short = report.positions.iter().any(|p| {
            p.instrument == name
                && p.isolated
                && p.isolated_equity.is_some_and(|e| e < p.initial_margin)
        });
        if (report.available.value() < Decimal::ZERO && !report.initial_margin.is_zero())
            || isolated_short
        {
            return Err(reject(
                RejectReason::InsufficientInitialMargin,
                format!(
                    "an isolated margin of {target} {asset} leaves the cross pool or the position below its initial margin"
                ),
            ));
        }
        self.accounts.replace(after);
        let mut effects = Vec::new();
        if delta > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::Wallet(id.into()),
                &isolated,
                &asset,
                delta,
                TransferReason::IsolatedMargin,
                &mut effects,
            );
        } else if delta < Decimal::ZERO {
            self.move_money(
                &isolated,
                &LedgerAccount::Wallet(id.into()),
                &asset,
                -delta,
                TransferReason::IsolatedMargin,
                &mut effects,
            );
        }
        self.reindex(id);
        self.evaluate(id, true, &mut effects);
        Ok(effects)
    }

    /// The equity the account's buffer policy keeps (zero without one).
    fn buffer_of(
        &self,
        account: &Account,
        portfolio: &Portfolio,
        report: &MarginReport,
    ) -> Result<Decimal, Rejection> {
        if account.buffer == BufferPolicy::None {
            return Ok(Decimal::ZERO);
        }
        let view = MarketView::new(&self.venue, &self.market).map_err(risk_rejection)?;
        solvent_risk::allocation::buffer(portfolio, &view, report, account.buffer)
            .map(|(buffer, _)| buffer)
            .map_err(risk_rejection)
    }

    fn set_buffer_policy(&mut self, id: &str, policy: &str) -> Result<Vec<Effect>, Rejection> {
        let account = self.known_account(id)?.clone();
        let buffer: BufferPolicy = policy.parse().map_err(|problem: String| {
            reject(RejectReason::InvalidInput, format!("policy: {problem}"))
        })?;
        let mut after = account;
        after.buffer = buffer;
        // The policy must be computable now (a sigma policy needs volatility for every underlying).
        let portfolio = self.portfolio_of(&after)?;
        let report = self.report_of(&portfolio)?;
        self.buffer_of(&after, &portfolio, &report)?;
        self.accounts.replace(after);
        let mut effects = Vec::new();
        self.evaluate(id, true, &mut effects);
        Ok(effects)
    }

    fn set_auto_top_up(
        &mut self,
        rule: &crate::event::SetAutoTopUp,
    ) -> Result<Vec<Effect>, Rejection> {
        let id = rule.account.as_str();
        self.known_account(id)?;
        if rule.trigger_health <= Decimal::ZERO || rule.target_health < rule.trigger_health {
            return Err(reject(
                RejectReason::InvalidInput,
                format!(
                    "need 0 < trigger_health <= target_health, found {} and {}",
                    rule.trigger_health, rule.target_health
                ),
            ));
        }
        let asset = match &rule.instrument {
            Some(name) => self.instrument(name)?.settlement.clone(),
            None => self.venue.settlement_asset.clone(),
        };
        for cap in [rule.per_event_cap.value(), rule.per_day_cap.value()] {
            self.checked_amount(&asset, cap)?;
        }
        if let Some(account) = self.accounts.get_mut(id) {
            account.top_ups.retain(|r| {
                !(r.rule.instrument == rule.instrument && r.rule.source == rule.source)
            });
            account.top_ups.push(TopUpRule {
                rule: rule.clone(),
                day: i64::MIN,
                used: Decimal::ZERO,
            });
        }
        let mut effects = Vec::new();
        self.evaluate(id, true, &mut effects);
        Ok(effects)
    }

    /// Applies the account's automated top-ups and dynamic reallocation to the figures of
    /// `report`; returns whether money moved (the caller then recomputes the figures).
    fn apply_top_ups(
        &mut self,
        id: &str,
        report: &MarginReport,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let Some(account) = self.accounts.get(id) else {
            return false;
        };
        if account.top_ups.is_empty() {
            return false;
        }
        let day = self.now.as_second().div_euclid(86_400);
        let rules: Vec<(usize, crate::event::SetAutoTopUp, Decimal)> = account
            .top_ups
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let used = if r.day == day { r.used } else { Decimal::ZERO };
                let room = r
                    .rule
                    .per_event_cap
                    .value()
                    .min(r.rule.per_day_cap.value() - used)
                    .max(Decimal::ZERO);
                (index, r.rule.clone(), room)
            })
            .collect();
        let mut moved_any = false;
        for (index, rule, room) in rules {
            if room.is_zero() {
                continue;
            }
            let trigger = rule.trigger_health.to_f64().unwrap_or(0.0);
            let target = rule.target_health.to_f64().unwrap_or(0.0);
            let mut grants: Vec<(
                LedgerAccount,
                LedgerAccount,
                String,
                Decimal,
                TransferReason,
            )> = Vec::new();
            match (&rule.instrument, rule.source) {
                (None, crate::event::TopUpSource::External) => {
                    if report.health.is_some_and(|h| h < trigger) {
                        let need = Decimal::try_from(target).unwrap_or(Decimal::ZERO)
                            * report.maintenance_margin.value()
                            - report.equity.value();
                        grants.push((
                            LedgerAccount::External,
                            LedgerAccount::Wallet(id.into()),
                            report.settlement_asset.to_string(),
                            need.min(room),
                            TransferReason::TopUp,
                        ));
                    }
                }
                (Some(name), source) => {
                    let Some(line) = report
                        .positions
                        .iter()
                        .find(|p| p.instrument == name && p.isolated)
                    else {
                        continue;
                    };
                    if !line.isolated_health.is_some_and(|h| h < trigger) {
                        continue;
                    }
                    let equity = line.isolated_equity.map_or(Decimal::ZERO, |e| e.value());
                    let need = Decimal::try_from(target).unwrap_or(Decimal::ZERO)
                        * line.maintenance_margin.value()
                        - equity;
                    let from = match source {
                        crate::event::TopUpSource::External => LedgerAccount::External,
                        crate::event::TopUpSource::CrossPool => LedgerAccount::Wallet(id.into()),
                    };
                    let mut amount = need.min(room);
                    if source == crate::event::TopUpSource::CrossPool {
                        // Never below the pool's own initial margin.
                        let free = report.available.value().max(Decimal::ZERO);
                        let held = self
                            .ledger
                            .balance(&from, &line.settlement)
                            .max(Decimal::ZERO);
                        amount = amount.min(free).min(held);
                    }
                    grants.push((
                        from,
                        LedgerAccount::Isolated(id.into(), name.as_str().into()),
                        line.settlement.to_string(),
                        amount,
                        if source == crate::event::TopUpSource::External {
                            TransferReason::TopUp
                        } else {
                            TransferReason::Reallocation
                        },
                    ));
                }
                (None, crate::event::TopUpSource::CrossPool) => {
                    let below = report
                        .positions
                        .iter()
                        .any(|p| p.isolated && p.isolated_health.is_some_and(|h| h < trigger));
                    if !below {
                        continue;
                    }
                    let Some(account) = self.accounts.get(id) else {
                        continue;
                    };
                    let buffer = account.buffer;
                    let Ok(portfolio) = self.portfolio_of(account) else {
                        continue;
                    };
                    let Ok(view) = MarketView::new(&self.venue, &self.market) else {
                        continue;
                    };
                    let policy = AllocationPolicy {
                        buffer,
                        trigger_health: trigger,
                        target_health: target,
                    };
                    let Ok(allocation) =
                        solvent_risk::allocation::allocate(&portfolio, &view, policy)
                    else {
                        continue;
                    };
                    let mut left = room;
                    for recommended in allocation.moves {
                        let amount = recommended.amount.value().min(left);
                        left -= amount;
                        grants.push((
                            LedgerAccount::Wallet(id.into()),
                            LedgerAccount::Isolated(
                                id.into(),
                                recommended.instrument.as_str().into(),
                            ),
                            recommended.asset.clone(),
                            amount,
                            TransferReason::Reallocation,
                        ));
                    }
                }
            }
            let mut used = Decimal::ZERO;
            for (from, to, asset, amount, reason) in grants {
                let precision = self.venue.asset(&asset).map_or(8, |a| a.precision);
                let amount = rounding::credit(amount, precision);
                if amount <= Decimal::ZERO {
                    continue;
                }
                self.move_money(&from, &to, &asset, amount, reason, effects);
                used += amount;
            }
            if used > Decimal::ZERO {
                moved_any = true;
                if let Some(rule) = self
                    .accounts
                    .get_mut(id)
                    .and_then(|a| a.top_ups.get_mut(index))
                {
                    if rule.day != day {
                        rule.day = day;
                        rule.used = Decimal::ZERO;
                    }
                    rule.used += used;
                }
            }
        }
        moved_any
    }

    fn list_instrument(
        &mut self,
        name: &str,
        spec: &serde_json::Value,
    ) -> Result<Vec<Effect>, Rejection> {
        let mut venue = self.venue.clone();
        venue
            .list_instrument("list_instrument", name, spec)
            .map_err(|error| reject(RejectReason::InvalidInput, error.to_string()))?;
        self.install_venue(venue);
        Ok(Vec::new())
    }

    fn update_venue(&mut self, text: &str) -> Result<Vec<Effect>, Rejection> {
        let venue = Venue::from_toml("update_venue", text)
            .map_err(|error| reject(RejectReason::InvalidInput, error.to_string()))?;
        // Every instrument held must still be listed; positions take the new rules.
        let mut resolved: Vec<(CompactString, CompactString, Arc<Instrument>)> = Vec::new();
        for account in self.accounts.values() {
            for name in account.positions.keys() {
                let instrument = venue.instrument(name).map_err(|problem| {
                    reject(
                        RejectReason::InvalidInput,
                        format!("{} holds {name}: {problem}", account.id),
                    )
                })?;
                resolved.push((account.id.clone(), name.clone(), instrument));
            }
        }
        for name in self.external.keys() {
            venue.instrument(name).map_err(|problem| {
                reject(
                    RejectReason::InvalidInput,
                    format!("external holds {name}: {problem}"),
                )
            })?;
        }
        self.install_venue(venue);
        for (id, name, instrument) in resolved {
            if let Some(position) = self
                .accounts
                .get_mut(&id)
                .and_then(|a| a.positions.get_mut(&name))
            {
                position.instrument = instrument;
            }
        }
        let external: Vec<CompactString> = self.external.keys().cloned().collect();
        for name in external {
            if let (Ok(instrument), Some(position)) =
                (self.venue.instrument(&name), self.external.get_mut(&name))
            {
                position.instrument = instrument;
            }
        }
        let mut effects = Vec::new();
        let ids: Vec<String> = self.accounts.keys().map(str::to_owned).collect();
        for id in ids {
            self.reindex(&id);
            self.evaluate(&id, false, &mut effects);
        }
        Ok(effects)
    }

    // ---- market data ----------------------------------------------------------------------------

    fn index_price(
        &mut self,
        underlying: &str,
        price: Decimal,
        source: Option<&str>,
    ) -> Result<Vec<Effect>, Rejection> {
        let mut effects = Vec::new();
        let source = source.unwrap_or("default");
        let latest = SourcePrice {
            price,
            at: self.now,
        };
        // Keys are built only the first time an underlying or a source is seen.
        let sources = match self.sources.get_mut(underlying) {
            Some(sources) => sources,
            None => self.sources.entry(underlying.to_owned()).or_default(),
        };
        match sources.get_mut(source) {
            Some(known) => *known = latest,
            None => {
                sources.insert(source.to_owned(), latest);
            }
        }
        let Some(median) = index_from_sources(sources, self.now, &self.config.guards) else {
            effects.push(Effect::PriceGuarded {
                name: underlying.to_owned(),
                received: Price(price),
                used: None,
                reason: "no fresh source within the outlier band".to_owned(),
            });
            return Ok(effects);
        };
        // Found once: the jump guard does not change the market's indices.
        let known = self.market.index.get_index_of(underlying);
        let previous = known
            .and_then(|slot| self.market.index.get_index(slot))
            .map(|(_, p)| p.value());
        let Some(accepted) = self.confirm_jump(underlying, price, median, previous, &mut effects)
        else {
            return Ok(effects);
        };
        if accepted != price {
            effects.push(Effect::PriceGuarded {
                name: underlying.to_owned(),
                received: Price(price),
                used: Some(Price(accepted)),
                reason: "index is the median of fresh sources".to_owned(),
            });
        }
        let accepted =
            Price::new_checked(accepted).map_err(|p| reject(RejectReason::OutOfRange, p))?;
        match known.and_then(|slot| self.market.index.get_index_mut(slot)) {
            Some((_, index)) => *index = accepted,
            None => {
                self.market.index.insert(underlying.to_owned(), accepted);
            }
        }
        let reclamped = self.reclamp_marks(underlying, accepted.value(), &mut effects);
        let reclamped: Vec<(&str, Decimal)> = reclamped
            .iter()
            .map(|(name, price)| (name.as_str(), *price))
            .collect();
        self.revalue_crossed(
            Some((underlying, accepted.value())),
            &reclamped,
            &mut effects,
        );
        Ok(effects)
    }

    /// Keeps every given perpetual and future mark on `underlying` inside the band around the new
    /// index: a mark is clamped when it arrives, and again whenever the index moves away from it
    /// (a stale mark must not value a position at a price the index has left).
    fn reclamp_marks(
        &mut self,
        underlying: &str,
        index: Decimal,
        effects: &mut Vec<Effect>,
    ) -> Vec<(String, Decimal)> {
        let mut changed = Vec::new();
        if self.market.mark.is_empty() {
            return changed;
        }
        let band = self.config.guards.mark_band;
        let (low, high) = (index * (Decimal::ONE - band), index * (Decimal::ONE + band));
        let outside: Vec<(String, Decimal)> = self
            .market
            .mark
            .iter()
            .filter(|(_, mark)| mark.value() < low || mark.value() > high)
            .map(|(name, mark)| (name.clone(), mark.value()))
            .collect();
        for (name, mark) in outside {
            let Ok(instrument) = self.venue.instrument(&name) else {
                continue;
            };
            if instrument.underlying != underlying
                || !matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            {
                continue;
            }
            let clamped = mark.clamp(low, high);
            if clamped != mark
                && let Ok(price) = Price::new_checked(clamped)
            {
                self.market.mark.insert(name.clone(), price);
                changed.push((name.clone(), clamped));
                effects.push(Effect::PriceGuarded {
                    name,
                    received: Price(mark),
                    used: Some(price),
                    reason: format!("mark clamped to {band} around the moved index {index}"),
                });
            }
        }
        changed
    }

    /// A move above the jump threshold is held until the next update confirms it (within the
    /// threshold of the pending price); returns the price to use now, if any. `price` is the
    /// candidate (median of sources, or clamped mark), `received` the raw update reported back.
    fn confirm_jump(
        &mut self,
        name: &str,
        received: Decimal,
        price: Decimal,
        previous: Option<Decimal>,
        effects: &mut Vec<Effect>,
    ) -> Option<Decimal> {
        let threshold = self.config.guards.jump_confirm;
        let Some(previous) = previous else {
            return Some(price);
        };
        // |price - previous| <= threshold x previous: the relative move without a division
        // (prices are positive).
        if (price - previous).abs() <= threshold * previous {
            if !self.pending_jumps.is_empty() {
                self.pending_jumps.remove(name);
            }
            return Some(price);
        }
        let jump = ((price - previous) / previous).abs();
        if let Some(pending) = self.pending_jumps.remove(name)
            && ((price - pending) / pending).abs() <= threshold
        {
            return Some(price);
        }
        self.pending_jumps.insert(name.to_owned(), price);
        effects.push(Effect::PriceGuarded {
            name: name.to_owned(),
            received: Price(received),
            used: None,
            reason: format!(
                "a move of {:.2}% awaits confirmation by the next update",
                jump.to_f64().unwrap_or(0.0) * 100.0
            ),
        });
        None
    }

    fn mark_price(&mut self, name: &str, price: Decimal) -> Result<Vec<Effect>, Rejection> {
        let instrument = self.instrument(name)?;
        let mut effects = Vec::new();
        // Perpetual and future marks are clamped to a band around the index (Binance 2025: a thin
        // book must not mark collateral or positions away from the index).
        let mut used = price;
        if matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            && let Some(index) = self
                .market
                .index
                .get(&instrument.underlying)
                .map(|p| p.value())
        {
            let band = self.config.guards.mark_band;
            let clamped = price.clamp(index * (Decimal::ONE - band), index * (Decimal::ONE + band));
            if clamped != price {
                effects.push(Effect::PriceGuarded {
                    name: name.to_owned(),
                    received: Price(price),
                    used: Some(Price(clamped)),
                    reason: format!("mark clamped to {band} around the index {index}"),
                });
                used = clamped;
            }
        }
        let Some(used) = self.confirm_jump(
            name,
            price,
            used,
            self.market.mark.get(name).map(|p| p.value()),
            &mut effects,
        ) else {
            return Ok(effects);
        };
        let used = Price::new_checked(used).map_err(|p| reject(RejectReason::OutOfRange, p))?;
        let first = match self.market.mark.get_mut(name) {
            Some(mark) => {
                *mark = used;
                false
            }
            None => {
                self.market.mark.insert(name.to_owned(), used);
                true
            }
        };
        if first {
            // Its holders were valued at the index until now: every one is examined (and
            // banded on the mark from now on where that applies).
            self.revalue_holders(Source::Mark(&instrument.name), &mut effects);
        } else {
            self.revalue_crossed(None, &[(name, used.value())], &mut effects);
        }
        Ok(effects)
    }

    fn vol_surface(
        &mut self,
        underlying: &str,
        expiry: &str,
        strikes: &[f64],
        vols: &[f64],
    ) -> Result<Vec<Effect>, Rejection> {
        let mut market = self.market.clone();
        market.vol.entry(underlying.to_owned()).or_default().insert(
            expiry.to_owned(),
            Smile {
                strikes: strikes.to_vec(),
                vols: vols.to_vec(),
            },
        );
        market
            .validate("vol_surface", "")
            .map_err(|error| reject(RejectReason::InvalidInput, error.to_string()))?;
        MarketView::new(&self.venue, &market).map_err(risk_rejection)?;
        self.market = market;
        let mut effects = Vec::new();
        self.revalue_holders(Source::Index(underlying), &mut effects);
        Ok(effects)
    }

    fn funding(&mut self, name: &str, rate: Decimal) -> Result<Vec<Effect>, Rejection> {
        let instrument = self.instrument(name)?;
        if !matches!(instrument.terms, Terms::Perpetual) {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{name} is not a perpetual"),
            ));
        }
        if rate.abs() > Decimal::ONE {
            return Err(reject(
                RejectReason::OutOfRange,
                format!("funding rate {rate}"),
            ));
        }
        let view = MarketView::new(&self.venue, &self.market).map_err(risk_rejection)?;
        let mark = view.mark(&instrument).map_err(risk_rejection)?.price;
        // A long pays `size x contract size x mark x rate` (linear) or `size_usd x rate / mark`
        // coin (inverse) when the rate is positive; shorts receive it.
        let payment = |size: Decimal| match instrument.style {
            Style::Linear => size * instrument.contract_size * mark * rate,
            Style::Inverse => size * rate / mark,
        };
        let mut effects = Vec::new();
        let holders: Vec<(CompactString, Decimal, bool)> = self
            .accounts
            .values()
            .filter_map(|a| {
                a.positions
                    .get(name)
                    .map(|p| (a.id.clone(), p.size, p.isolated))
            })
            .collect();
        let clearing_before = self
            .ledger
            .balance(&LedgerAccount::Clearing, &instrument.settlement);
        for (id, size, isolated) in &holders {
            let holder = LedgerAccount::of_position(id, name, *isolated);
            self.settle_cash(
                &holder,
                &LedgerAccount::Clearing,
                &instrument.settlement,
                -payment(*size),
                TransferReason::Funding,
                &mut effects,
            );
        }
        if let Some(size) = self.external.get(name).map(|p| p.size) {
            self.settle_cash(
                &LedgerAccount::External,
                &LedgerAccount::Clearing,
                &instrument.settlement,
                -payment(size),
                TransferReason::Funding,
                &mut effects,
            );
        }
        // Payers round up and receivers down: what that leaves in clearing is the venue's, and
        // goes to the fee account so that funding itself nets to zero in clearing.
        let residual = self
            .ledger
            .balance(&LedgerAccount::Clearing, &instrument.settlement)
            - clearing_before;
        if residual > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::Clearing,
                &LedgerAccount::Fees,
                &instrument.settlement,
                residual,
                TransferReason::Fee,
                &mut effects,
            );
        }
        for (id, _, _) in &holders {
            // A payment in an unpegged settlement asset can open or empty a balance on its index.
            self.reindex(id);
            self.evaluate(id, false, &mut effects);
        }
        Ok(effects)
    }

    fn settlement(&mut self, name: &str, price: Decimal) -> Result<Vec<Effect>, Rejection> {
        let instrument = self.instrument(name)?;
        if matches!(instrument.terms, Terms::Perpetual) {
            return Err(reject(
                RejectReason::InvalidInput,
                format!("{name} is a perpetual: it never settles"),
            ));
        }
        let mut effects = Vec::new();
        let holders: Vec<(CompactString, Decimal)> = self
            .accounts
            .values()
            .filter_map(|a| a.positions.get(name).map(|p| (a.id.clone(), p.size)))
            .collect();
        let is_option = matches!(instrument.terms, Terms::Option { .. });
        for (id, size) in &holders {
            if is_option {
                // The option is exercised for its settlement value, paid through clearing.
                let (holder, isolated) = self.holder_of(id, name);
                let value = *size * instrument.contract_size * price;
                if let Some(account) = self.accounts.get_mut(id) {
                    account.positions.remove(name);
                }
                self.settle_cash(
                    &holder,
                    &LedgerAccount::Clearing,
                    &instrument.settlement,
                    value,
                    TransferReason::Settlement,
                    &mut effects,
                );
                if isolated {
                    self.release_isolated(id, &instrument, &mut effects);
                }
            } else {
                self.trade(
                    id,
                    &instrument,
                    -*size,
                    price,
                    TransferReason::Settlement,
                    &mut effects,
                );
            }
            self.reindex(id);
        }
        if let Some(size) = self.external.get(name).map(|p| p.size) {
            if is_option {
                self.external.remove(name);
                self.settle_cash(
                    &LedgerAccount::External,
                    &LedgerAccount::Clearing,
                    &instrument.settlement,
                    size * instrument.contract_size * price,
                    TransferReason::Settlement,
                    &mut effects,
                );
            } else {
                self.trade_external(&instrument, -size, price, &mut effects);
            }
        }
        for (id, _) in &holders {
            self.evaluate(id, true, &mut effects);
        }
        Ok(effects)
    }

    fn holder_of(&self, id: &str, name: &str) -> (LedgerAccount, bool) {
        let isolated = self
            .accounts
            .get(id)
            .and_then(|a| a.positions.get(name))
            .is_some_and(|p| p.isolated);
        (LedgerAccount::of_position(id, name, isolated), isolated)
    }

    // ---- monitoring -----------------------------------------------------------------------------

    /// The indices an account's figures move with, sorted: its positions' underlyings, the
    /// third coins they settle in (see [`Self::third_coin_index`]), and its unpegged coins.
    fn indices_of<'a>(&'a self, account: &'a Account) -> Vec<&'a str> {
        let mut indices: Vec<&str> = account
            .positions
            .values()
            .map(|p| p.instrument.underlying.as_str())
            .chain(
                account
                    .positions
                    .values()
                    .filter_map(|p| self.third_coin_index(p)),
            )
            .collect();
        for (symbol, _) in self.ledger.wallet(&account.id) {
            if let Some(asset) = self.venue.assets.get(symbol)
                && asset.usd_peg.is_none()
            {
                indices.push(&asset.index);
            }
        }
        indices.sort_unstable();
        indices.dedup();
        indices
    }

    /// Re-indexes which underlyings an account is exposed to (positions and collateral) and
    /// which instruments it holds, changing only the entries that differ from its last indexing.
    fn reindex(&mut self, id: &str) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        let underlyings = self.indices_of(account);
        // Positions are keyed by instrument name: already sorted and distinct.
        if account
            .indexed_underlyings
            .iter()
            .eq(underlyings.iter().copied())
            && account
                .indexed_instruments
                .iter()
                .eq(account.positions.keys())
        {
            return;
        }
        let underlyings: Vec<CompactString> =
            underlyings.into_iter().map(CompactString::from).collect();
        let instruments: Vec<CompactString> = account.positions.keys().cloned().collect();
        let Some(account) = self.accounts.get_mut(id) else {
            return;
        };
        let old_underlyings = std::mem::replace(&mut account.indexed_underlyings, underlyings);
        let old_instruments = std::mem::replace(&mut account.indexed_instruments, instruments);
        let slot = account.slot;
        reindex_sets(
            &mut self.holders,
            slot,
            &old_underlyings,
            &account.indexed_underlyings,
        );
        reindex_sets(
            &mut self.instrument_holders,
            slot,
            &old_instruments,
            &account.indexed_instruments,
        );
    }

    /// Examines every account `source` can move: the holders of an underlying (which hold every
    /// contract on it), or of the contract whose mark it is.
    fn revalue_holders(&mut self, source: Source<'_>, effects: &mut Vec<Effect>) {
        let holders = match source {
            Source::Index(underlying) => self.holders.get(underlying),
            Source::Mark(name) => self.instrument_holders.get(name),
        };
        let holders = self.ids_of(holders.into_iter().flatten());
        for id in holders {
            self.evaluate(&id, false, effects);
        }
    }

    /// The ids of account `slots`, in the order of the ids (the order accounts are examined in).
    fn ids_of<'a>(&self, slots: impl Iterator<Item = &'a u32>) -> Vec<CompactString> {
        let mut ids: Vec<CompactString> = slots
            .filter_map(|slot| self.accounts.by_slot(*slot).map(|a| a.id.clone()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn index_is_stale(&self, underlying: &str) -> bool {
        self.sources.get(underlying).is_none_or(|sources| {
            sources.values().all(|s| {
                self.now.as_millisecond() - s.at.as_millisecond()
                    > self.config.guards.index_stale_ms
            })
        })
    }

    /// The account's margin report; `None`, with empty bands, for an account that cannot be
    /// valued (a venue update left it holding what the market does not price): it is examined at
    /// every update of what it holds until it can be.
    fn report_or_unband(&mut self, id: &str) -> Option<MarginReport> {
        let report = self.report(id).ok();
        if report.is_none() {
            self.set_bands(id, None);
        }
        report
    }

    /// Recomputes an account's figures and acts on them: state changes, one margin call per
    /// episode, liquidation when due and allowed by the guards.
    fn evaluate(&mut self, id: &str, report_figures: bool, effects: &mut Vec<Effect>) {
        let Some(mut report) = self.report_or_unband(id) else {
            return;
        };
        if self.apply_top_ups(id, &report, effects) {
            // Money moved in (or between pools) may be an unpegged asset the account did not hold.
            self.reindex(id);
            match self.report_or_unband(id) {
                Some(after) => report = after,
                None => return,
            }
        }
        if report_figures {
            effects.push(Effect::AccountUpdated {
                account: id.to_owned(),
                equity: report.equity,
                initial_margin: report.initial_margin,
                maintenance_margin: report.maintenance_margin,
                health: report.health,
                state: report.state,
            });
        }
        self.track_state(id, &report, effects);
        let isolated_due: Vec<String> = report
            .positions
            .iter()
            .filter(|p| {
                p.isolated
                    && p.isolated_health
                        .is_some_and(|h| h <= self.venue.thresholds.liquidation)
            })
            .map(|p| p.instrument.to_string())
            .collect();
        if report.state >= AccountState::Liquidating || !isolated_due.is_empty() {
            self.maybe_liquidate(id, &report, &isolated_due, effects);
            // Until it is out of danger, an account is re-examined at every price update.
            let after = self.report(id).ok();
            self.set_bands(id, after.as_ref());
        } else {
            if let Some(account) = self.accounts.get_mut(id) {
                account.breach = None;
            }
            self.set_bands(id, Some(&report));
        }
    }

    /// Recomputes an account's safe bands (see [`Bands`]). With health `h` between the state
    /// thresholds `h_lo < h <= h_hi`, the state holds while `E - h_lo MM > 0` and
    /// `h_hi MM - E >= 0`. A move `dP` of price source `u` (see [`Source`]) changes `E - h MM` by
    /// at most `S_u |dP|`, with `S_u = sum |coin exposure| (1 + h_hi r_max)` over the positions
    /// and collateral it moves (`r_max` the largest maintenance rate the position's rule can
    /// reach; an option's value and margin move by at most one coin per coin, its rule's rate at
    /// most 1.2). The smaller slack is shared between sources in proportion to `S_u P_u`, so
    /// every source staying inside its band keeps the state. An account in danger (liquidating,
    /// bankrupt, or with no slack) gets empty bands: it is re-examined at every update, of the
    /// marks it is banded on and of their underlyings' indices too.
    fn set_bands(&mut self, id: &str, report: Option<&MarginReport>) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        let exposures = self.coin_exposures(account);
        let widths = report.and_then(|r| self.band_widths(account, r, &exposures));
        let entries: Vec<(Source<'_>, f64, f64, f64)> = exposures
            .iter()
            .enumerate()
            .filter(|(_, exposure)| widths.is_none() || !exposure.companion)
            .map(|(index, exposure)| {
                let half = widths
                    .as_ref()
                    .and_then(|w| w.get(index).copied())
                    .unwrap_or(0.0);
                let price = exposure.price_f64;
                (exposure.source, price, price - half, price + half)
            })
            .collect();
        // Contracts with a given mark whose band is not on it: watched at their every mark.
        let watched: Vec<&str> = account
            .positions
            .values()
            .filter(|p| {
                self.market.mark.contains_key(p.instrument.name.as_str())
                    && self.band_source(p) != Source::Mark(&p.instrument.name)
            })
            .map(|p| p.instrument.name.as_str())
            .collect();
        let watched_changed = !account.mark_watched.iter().eq(watched.iter().copied());
        // Held underlyings without a price yet cannot have a band: they are examined at their
        // every update until they do.
        // Usually every held underlying has a price and nobody waits unbanded: both scans are
        // skipped then (they look the account up in every underlying's holder set).
        let any_unpriced = self
            .holders
            .keys()
            .any(|underlying| !self.market.index.contains_key(underlying));
        let unpriced: Vec<String> = if any_unpriced {
            self.holders
                .iter()
                .filter(|(underlying, holders)| {
                    !self.market.index.contains_key(*underlying)
                        && holders.contains(&account.slot)
                        && !entries
                            .iter()
                            .any(|(source, _, _, _)| *source == Source::Index(underlying))
                })
                .map(|(underlying, _)| underlying.clone())
                .collect()
        } else {
            Vec::new()
        };
        let (slot, was_unbanded) = (account.slot, account.unbanded);
        // A registered band inside the new one is still safe (staying inside it keeps the price
        // inside the new band), only narrower: it is kept, sparing the re-indexing, as long as
        // the price is strictly inside it (else it would be examined at every update). So are
        // the bands a deposit or a reducing trade widens without a price move.
        let still_safe = account.bands.len() == entries.len()
            && account
                .bands
                .iter()
                .zip(&entries)
                .all(|(band, (source, price, low, high))| {
                    band.source.borrowed() == *source
                        && *low <= band.low
                        && band.high <= *high
                        && band.low < *price
                        && *price < band.high
                });
        let unchanged = unpriced.is_empty() && !was_unbanded && still_safe;
        let entries: Option<Vec<Band>> = (!unchanged).then(|| {
            entries
                .into_iter()
                .map(|(source, _, low, high)| Band {
                    source: source.owned(),
                    low,
                    high,
                    low_key: low_key(low),
                    high_key: high_key(high),
                })
                .collect()
        });
        let watched: Option<Vec<CompactString>> =
            watched_changed.then(|| watched.into_iter().map(CompactString::from).collect());
        if let Some(watched) = watched
            && let Some(account) = self.accounts.get_mut(id)
        {
            let old = std::mem::replace(&mut account.mark_watched, watched);
            reindex_sets(&mut self.mark_watchers, slot, &old, &account.mark_watched);
        }
        // Most evaluations leave the bands as they were (or keep them, see above).
        let Some(entries) = entries else {
            return;
        };
        let Some(account) = self.accounts.get_mut(id) else {
            return;
        };
        let old = std::mem::take(&mut account.bands);
        account.unbanded = !unpriced.is_empty();
        for band in old {
            let (map, name) = band_map(&mut self.bands, &mut self.mark_bands, &band.source);
            if let Some(bands) = map.get_mut(name) {
                bands.by_low.remove(&(band.low_key, slot));
                bands.by_high.remove(&(band.high_key, slot));
            }
        }
        if was_unbanded {
            for holders in self.unbanded.values_mut() {
                holders.remove(&slot);
            }
        }
        for underlying in unpriced {
            self.unbanded.entry(underlying).or_default().insert(slot);
        }
        for band in &entries {
            let (map, name) = band_map(&mut self.bands, &mut self.mark_bands, &band.source);
            let bands = match map.get_mut(name) {
                Some(bands) => bands,
                None => map.entry(name.to_owned()).or_default(),
            };
            bands.by_low.insert((band.low_key, slot));
            bands.by_high.insert((band.high_key, slot));
        }
        account.bands = entries;
    }

    /// Per price source an account is exposed to: its price and the bound `S_u` of how fast
    /// `E - h MM` moves with it (the sums `S_u` is made of, with the `h r_max` term added in
    /// [`Self::band_widths`]).
    fn coin_exposures<'a>(&'a self, account: &'a Account) -> Vec<Exposure<'a>> {
        let mut exposures: Vec<Exposure<'a>> = Vec::new();
        let mut add =
            |source: Source<'a>, coins: Decimal, rate: Decimal, companion: bool| match exposures
                .iter_mut()
                .find(|e| e.source == source)
            {
                Some(exposure) => {
                    exposure.coins += coins;
                    exposure.coins_at_rate += coins * rate;
                    exposure.companion &= companion;
                }
                None => exposures.push(Exposure {
                    source,
                    price_f64: 0.0,
                    coins,
                    coins_at_rate: coins * rate,
                    companion,
                }),
            };
        for position in account.positions.values() {
            let instrument = &position.instrument;
            let source = self.band_source(position);
            let price = self.source_price(source).unwrap_or(Decimal::ZERO);
            let (coins, rate) = self.position_sensitivity(position, price);
            add(source, coins, rate, false);
            if let Some(coin) = self.third_coin_index(position) {
                // Settled in a third coin, its figures move with that coin's index too, by an
                // amount no band on either bounds: it is examined at the updates of both (empty
                // bands, see `band_widths`).
                add(Source::Index(coin), Decimal::ZERO, Decimal::ZERO, true);
            }
            if source != Source::Index(&instrument.underlying) {
                // Its underlying's index moves nothing here, but an account in danger must be
                // examined at each of its updates too (a stale index may have held its
                // liquidation back): an empty band then, none otherwise.
                add(
                    Source::Index(&instrument.underlying),
                    Decimal::ZERO,
                    Decimal::ZERO,
                    true,
                );
            }
        }
        for (symbol, amount) in self.ledger.wallet(&account.id) {
            let Some(asset) = self.venue.assets.get(symbol) else {
                continue;
            };
            if asset.usd_peg.is_some() {
                continue;
            }
            let rate = self
                .venue
                .collateral
                .get(symbol)
                .and_then(|c| c.borrow.as_ref())
                .map_or(Decimal::ZERO, |b| b.maintenance_rate);
            add(Source::Index(&asset.index), amount.abs(), rate, false);
        }
        exposures.retain_mut(|exposure| match self.source_price(exposure.source) {
            Some(price) => {
                exposure.price_f64 = band_f64(price);
                true
            }
            None => false,
        });
        exposures.sort_unstable_by(|a, b| a.source.cmp(&b.source));
        exposures
    }

    /// The price a position's band is on: its given mark for a linear perpetual or future settled
    /// in a pegged asset (valued and margined at the mark alone), else its underlying's index.
    fn band_source<'a>(&self, position: &'a PositionState) -> Source<'a> {
        let instrument = &position.instrument;
        let on_mark = instrument.style == Style::Linear
            && matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            && self.market.mark.contains_key(instrument.name.as_str())
            && self
                .venue
                .assets
                .get(&instrument.settlement)
                .is_some_and(|asset| asset.usd_peg.is_some());
        if on_mark {
            Source::Mark(&instrument.name)
        } else {
            Source::Index(&instrument.underlying)
        }
    }

    /// The current price of a band's source.
    fn source_price(&self, source: Source<'_>) -> Option<Decimal> {
        match source {
            Source::Index(name) => self.market.index.get(name),
            Source::Mark(name) => self.market.mark.get(name),
        }
        .map(|price| price.value())
    }

    /// Half-widths of the safe bands, in price, one per exposure (in its order); `None` when the account must be
    /// re-examined at every update.
    fn band_widths(
        &self,
        account: &Account,
        report: &MarginReport,
        exposures: &[Exposure],
    ) -> Option<Vec<f64>> {
        // In danger: the cross pool liquidating or worse, a breach being counted, or an isolated
        // position at its liquidation threshold (whose liquidation a stale index may be holding
        // back: it must be examined again as soon as a fresh index comes). Or a contract settled
        // in a third coin, which no band bounds (see `coin_exposures`).
        let isolated_in_breach = report.positions.iter().any(|p| {
            p.isolated
                && p.isolated_health
                    .is_some_and(|h| h <= self.venue.thresholds.liquidation)
        });
        if report.state >= AccountState::Liquidating
            || account.breach.is_some()
            || isolated_in_breach
            || account
                .positions
                .values()
                .any(|p| self.third_coin_index(p).is_some())
        {
            return None;
        }
        // No sound bound is known (yet) for a requirement that is not a rate times the value:
        // portfolio margin moves with the worst scenario of its grid (and offsets, add-ons,
        // expected shortfall), an option's value and margin with gamma, vega and time. Such an
        // account is examined at every update of what it holds: correctness before speed.
        if account.mode == MarginMode::Portfolio
            || account
                .positions
                .values()
                .any(|p| matches!(p.instrument.terms, Terms::Option { .. }))
        {
            return None;
        }
        let settlement = self.venue.asset(&report.settlement_asset).ok()?;
        // A coin-margined report currency moves with its own underlying: no simple bound.
        if exposures
            .iter()
            .any(|e| e.source == Source::Index(&settlement.index))
        {
            return None;
        }
        let report_usd = self
            .market
            .index
            .get(settlement.index.as_str())
            .map(|p| p.value())
            .or(settlement.usd_peg)?;
        let trigger_levels =
            |applies: &dyn Fn(&crate::event::SetAutoTopUp) -> bool| -> Vec<(f64, Decimal)> {
                account
                    .top_ups
                    .iter()
                    .filter(|r| applies(&r.rule))
                    .filter_map(|r| Some((r.rule.trigger_health.to_f64()?, r.rule.trigger_health)))
                    .collect()
            };
        // The cross pool: the state thresholds and the cross top-up triggers.
        let mut levels = self.state_levels.clone()?;
        levels.extend(trigger_levels(&|r| {
            r.instrument.is_none() && r.source == crate::event::TopUpSource::External
        }));
        // Slack in USD at the report currency's price, shared out below over coin sensitivities
        // that take every pegged coin at par. A coin priced above par by the market makes what is
        // settled in it move faster than that: dividing by the highest such price keeps every
        // band inside its exact bound (a coin's own index moving re-examines everyone, see
        // `revalue_crossed`).
        let usd_per_report_unit = report_usd / self.highest_coin_price();
        let (slack, top) = slack_to_levels(
            &levels,
            report.health,
            report.equity.value() * usd_per_report_unit,
            report.maintenance_margin.value() * usd_per_report_unit,
        )?;
        // From here in f64: the slack is exact (a difference of exact figures), and what follows
        // only shares it out; the key margins cover the rounding (see `BAND_KEY_MARGIN`).
        let slack = band_f64(slack);
        let sensitivities: Vec<f64> = exposures
            .iter()
            .map(|e| band_f64(e.sensitivity(top)))
            .collect();
        let weight_total: f64 = exposures
            .iter()
            .zip(&sensitivities)
            .map(|(e, sensitivity)| e.price_f64 * sensitivity)
            .sum();
        let mut widths: Vec<f64> = exposures
            .iter()
            .zip(&sensitivities)
            .map(|(exposure, sensitivity)| {
                let half = if *sensitivity == 0.0 || weight_total <= 0.0 {
                    exposure.price_f64
                } else {
                    // Share of the slack: S_u P_u / total; in price: / S_u.
                    slack * exposure.price_f64 / weight_total
                };
                half.min(exposure.price_f64 / 2.0)
            })
            .collect();
        // Each isolated position: its own health against the liquidation threshold and its
        // top-up triggers, over its own sensitivity.
        for position in account.positions.values().filter(|p| p.isolated) {
            let name = &position.instrument.name;
            let line = report
                .positions
                .iter()
                .find(|l| l.instrument == name && l.isolated)?;
            let mut levels = self.state_levels.as_ref()?[..2].to_vec();
            levels.extend(trigger_levels(&|r| {
                r.instrument.as_deref() == Some(name.as_str())
                    || (r.instrument.is_none() && r.source == crate::event::TopUpSource::CrossPool)
            }));
            let equity =
                line.isolated_equity.map_or(Decimal::ZERO, |e| e.value()) * usd_per_report_unit;
            let (slack, top) = slack_to_levels(
                &levels,
                line.isolated_health,
                equity,
                line.maintenance_margin.value() * usd_per_report_unit,
            )?;
            let source = self.band_source(position);
            let price = self.source_price(source)?;
            let (coins, rate) = self.position_sensitivity(position, price);
            // A coin held as the position's own margin (an inverse contract's) moves its equity
            // too: one coin per coin.
            let settlement = self.venue.asset(&position.instrument.settlement).ok()?;
            let margin_coins = if settlement.usd_peg.is_some() {
                Decimal::ZERO
            } else if settlement.index == position.instrument.underlying {
                self.ledger
                    .balance(
                        &LedgerAccount::Isolated(account.id.clone(), name.as_str().into()),
                        &settlement.symbol,
                    )
                    .abs()
            } else {
                // Margin that moves with another underlying: no band on this one bounds it.
                return None;
            };
            let sensitivity = coins * (Decimal::ONE + top * rate) + margin_coins;
            if sensitivity.is_zero() {
                continue;
            }
            let half = band_f64(slack) / band_f64(sensitivity);
            if let Some(width) = exposures
                .iter()
                .position(|e| e.source == source)
                .and_then(|index| widths.get_mut(index))
            {
                *width = (*width).min(half);
            }
        }
        Some(widths)
    }

    /// The highest market price of a pegged coin (one with `usd_peg`), and at least 1.
    fn highest_coin_price(&self) -> Decimal {
        self.coin_indices
            .iter()
            .filter_map(|index| self.market.index.get(index.as_str()))
            .map(|price| price.value())
            .fold(Decimal::ONE, Decimal::max)
    }

    /// The index of `position`'s settlement coin when it moves the position's figures apart
    /// from its underlying: a coin that is neither pegged nor the underlying (a quanto-style
    /// contract settled in a third coin).
    fn third_coin_index<'a>(&'a self, position: &PositionState) -> Option<&'a str> {
        let settlement = self
            .venue
            .assets
            .get(position.instrument.settlement.as_str())?;
        (settlement.usd_peg.is_none() && settlement.index != position.instrument.underlying)
            .then_some(settlement.index.as_str())
    }

    /// A position's coin exposure and the largest maintenance rate its rule can reach (see
    /// [`Self::set_bands`]).
    fn position_sensitivity(&self, position: &PositionState, price: Decimal) -> (Decimal, Decimal) {
        let instrument = &position.instrument;
        let coins = match (instrument.style, &instrument.terms) {
            // An inverse contract's USD value moves like size / entry coins; bounded for prices
            // down to half the entry.
            (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => {
                let floor = position.entry.min(price).max(Decimal::new(1, 8));
                position.size.abs() / floor * Decimal::TWO
            }
            _ => position.size.abs() * instrument.contract_size,
        };
        let rate = match instrument.margin.as_ref() {
            solvent_core::venue::MarginRule::Tiered { tiers, .. } => {
                // MM = value x rate - deduction moves at the rate of the bracket the value is in.
                // Inside a band the index stays within half of itself and the mark within the
                // mark band of the index, so the value stays below three times its value now
                // (linear: 1.5 x (1 + band); inverse: 2 / (1 - band), band <= 1/3): brackets
                // starting beyond that cannot be reached.
                let reach = if self.config.guards.mark_band <= Decimal::ONE / Decimal::from(3) {
                    solvent_risk::standard::notional(
                        instrument,
                        position.size,
                        price.max(Decimal::new(1, 8)),
                    )
                    .checked_mul(Decimal::from(3))
                } else {
                    None
                };
                tiers
                    .iter()
                    .filter(|t| reach.is_none_or(|reach| t.floor <= reach))
                    .map(|t| t.maintenance_rate)
                    .max()
                    .unwrap_or(Decimal::ONE)
            }
            solvent_core::venue::MarginRule::SizeLinear { max_rate, .. } => *max_rate,
            solvent_core::venue::MarginRule::DeribitOption { .. } => Decimal::new(12, 1),
            _ => Decimal::ONE,
        };
        (coins, rate)
    }

    /// After an index update (and the marks it clamped) or a mark update, re-examines only the
    /// accounts the new prices take out of their band, with those not banded on them yet.
    fn revalue_crossed(
        &mut self,
        index: Option<(&str, Decimal)>,
        marks: &[(&str, Decimal)],
        effects: &mut Vec<Effect>,
    ) {
        if let Some((underlying, _)) = index
            && self.coin_indices.iter().any(|coin| coin == underlying)
        {
            // A pegged coin's index re-values every balance in the coin and everything settled
            // in it, and converts every figure of a report in it: every account is examined.
            // Venues that value their coins at par never send one; one that streams it pays a
            // full pass per update.
            let everyone = self.ids_of(self.accounts.values().map(|a| &a.slot));
            for id in everyone {
                self.evaluate(&id, false, effects);
            }
            return;
        }
        if self.config.exhaustive_monitoring {
            // Every holder of the underlying (which holds every contract on it), or of the
            // contracts whose mark moved.
            match index {
                Some((underlying, _)) => self.revalue_holders(Source::Index(underlying), effects),
                None => {
                    for (name, _) in marks {
                        self.revalue_holders(Source::Mark(name), effects);
                    }
                }
            }
            return;
        }
        let mut crossed: Vec<&u32> = Vec::new();
        if let Some((underlying, price)) = index {
            if let Some(bands) = self.bands.get(underlying) {
                crossed.extend(bands.crossed(price));
            }
            // Holders without a band on this underlying yet are examined too.
            crossed.extend(self.unbanded.get(underlying).into_iter().flatten());
        }
        for (name, price) in marks {
            if let Some(bands) = self.mark_bands.get(*name) {
                crossed.extend(bands.crossed(*price));
            }
            // So are the holders banded elsewhere than on this mark.
            crossed.extend(self.mark_watchers.get(*name).into_iter().flatten());
        }
        let crossed = self.ids_of(crossed.into_iter());
        for id in crossed {
            self.evaluate(&id, false, effects);
        }
    }

    fn track_state(&mut self, id: &str, report: &MarginReport, effects: &mut Vec<Effect>) {
        let Some(account) = self.accounts.get_mut(id) else {
            return;
        };
        let previous = account.state;
        if report.state != previous {
            effects.push(Effect::StateChanged {
                account: id.to_owned(),
                from: previous,
                to: report.state,
            });
            account.state = report.state;
        }
        if report.state == AccountState::Healthy {
            account.margin_call_sent = false;
        } else if report.state >= AccountState::MarginCall && !account.margin_call_sent {
            account.margin_call_sent = true;
            effects.push(Effect::MarginCall {
                account: id.to_owned(),
                health: report.health,
                deposit: Amount(
                    (report.initial_margin.value() - report.equity.value()).max(Decimal::ZERO),
                ),
                asset: report.settlement_asset.to_string(),
            });
        }
    }

    fn maybe_liquidate(
        &mut self,
        id: &str,
        report: &MarginReport,
        isolated_due: &[String],
        effects: &mut Vec<Effect>,
    ) {
        // Any index its figures move with (collateral and settlement coins as well as the
        // positions' underlyings): a stale one would liquidate on an old price.
        let stale = self.accounts.get(id).and_then(|account| {
            self.indices_of(account)
                .into_iter()
                .find(|index| self.index_is_stale(index))
                .map(str::to_owned)
        });
        if let Some(stale) = stale {
            effects.push(Effect::LiquidationDeferred {
                account: id.to_owned(),
                reason: format!(
                    "stale_index: no fresh {stale} index source; liquidation waits for one"
                ),
            });
            return;
        }
        let guards = &self.config.guards;
        let now = self.now;
        let Some(account) = self.accounts.get_mut(id) else {
            return;
        };
        let (count, since) = match account.breach {
            Some((count, since)) => (count + 1, since),
            None => (1, now),
        };
        account.breach = Some((count, since));
        let persisted = count >= guards.liquidation_persist_updates
            && now.as_millisecond() - since.as_millisecond() >= guards.liquidation_persist_ms;
        if !persisted {
            effects.push(Effect::LiquidationDeferred {
                account: id.to_owned(),
                reason: format!("breach_not_persistent: {count} evaluation(s) since {since}"),
            });
            return;
        }
        for name in isolated_due {
            self.liquidate_position(id, name, true, effects);
        }
        if report.state >= AccountState::Liquidating {
            self.liquidate_cross(id, effects);
        }
        if let Some(account) = self.accounts.get_mut(id) {
            account.breach = None;
        }
        self.reindex(id);
        if let Ok(after) = self.report(id) {
            self.track_state(id, &after, effects);
        }
    }

    /// Partial and gradual liquidation of the cross pool (DESIGN.md 8.2): close the position that
    /// frees the most maintenance margin per unit of notional, at most a fraction of a large one
    /// per step, until the account is back above the liquidation threshold.
    fn liquidate_cross(&mut self, id: &str, effects: &mut Vec<Effect>) {
        for _ in 0..self.config.liquidation.max_steps {
            let Ok(report) = self.report(id) else {
                return;
            };
            if report.state < AccountState::Liquidating {
                return;
            }
            if report.equity.value() <= Decimal::ZERO {
                // Bankrupt: partial steps at the mark would only realise the loss into a negative
                // balance. Close everything, the largest position last, which the insurance fund
                // covers or, beyond it, is deleveraged at the bankruptcy price.
                self.close_bankrupt(id, &report, effects);
                break;
            }
            let choice = report
                .positions
                .iter()
                .filter(|p| !p.isolated && !p.value.is_zero())
                .max_by(|a, b| {
                    let rate = |p: &solvent_risk::report::PositionReport| {
                        (p.maintenance_margin.value() / p.value.value().abs())
                            .to_f64()
                            .unwrap_or(0.0)
                    };
                    rate(a)
                        .total_cmp(&rate(b))
                        .then_with(|| b.instrument.cmp(&a.instrument))
                })
                .map(|p| p.instrument.clone());
            let Some(name) = choice else {
                break;
            };
            self.liquidate_position(id, &name, false, effects);
        }
        self.cover_deficit(id, effects);
    }

    fn close_bankrupt(&mut self, id: &str, report: &MarginReport, effects: &mut Vec<Effect>) {
        let mut order: Vec<(String, Decimal)> = report
            .positions
            .iter()
            .filter(|p| !p.isolated)
            .map(|p| (p.instrument.to_string(), p.value.value().abs()))
            .collect();
        order.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        for (name, _) in order {
            // Each position closes whole (`liquidate_position` closes whole when bankrupt).
            for _ in 0..self.config.liquidation.max_steps {
                let held = self
                    .accounts
                    .get(id)
                    .is_some_and(|a| a.positions.contains_key(name.as_str()));
                if !held {
                    break;
                }
                self.liquidate_position(id, &name, false, effects);
            }
        }
    }

    /// One liquidation step of one position: at the mark, vs the market, with the fee to the
    /// insurance fund. A position the insurance fund cannot make whole is deleveraged instead.
    fn liquidate_position(
        &mut self,
        id: &str,
        name: &str,
        isolated: bool,
        effects: &mut Vec<Effect>,
    ) {
        let Some(position) = self
            .accounts
            .get(id)
            .and_then(|a| a.positions.get(name))
            .cloned()
        else {
            return;
        };
        let instrument = Arc::clone(&position.instrument);
        let Ok(view) = MarketView::new(&self.venue, &self.market) else {
            return;
        };
        let Ok(mark) = view.mark(&instrument) else {
            return;
        };
        let mark = mark.price;
        let notional_usd = solvent_risk::standard::notional(&instrument, position.size, mark)
            * view
                .index(&instrument.settlement, "liquidation")
                .unwrap_or(Decimal::ONE);
        let params = &self.config.liquidation;
        let bankrupt = !isolated
            && self
                .report(id)
                .is_ok_and(|r| r.equity.value() <= Decimal::ZERO);
        let whole = isolated || bankrupt || notional_usd <= params.full_close_notional_usd;
        let step = instrument.size_step;
        let mut quantity = if whole {
            position.size.abs()
        } else {
            ((position.size.abs() * params.max_step_fraction) / step).ceil() * step
        };
        if instrument.style == Style::Inverse && !matches!(instrument.terms, Terms::Option { .. }) {
            quantity = (quantity / instrument.contract_size).ceil() * instrument.contract_size;
        }
        let quantity = quantity.min(position.size.abs());
        let signed = if position.size > Decimal::ZERO {
            -quantity
        } else {
            quantity
        };
        let fee = rounding::credit(
            solvent_risk::standard::notional(&instrument, quantity, mark) * params.fee_rate,
            self.venue
                .asset(&instrument.settlement)
                .map_or(8, |a| a.precision),
        );
        let last = quantity == position.size.abs()
            && self.accounts.get(id).is_some_and(|a| {
                a.positions
                    .values()
                    .filter(|p| p.isolated == isolated)
                    .count()
                    <= 1
                    || isolated
            });
        if last && self.deleverage_if_bankrupt(id, &instrument, signed, mark, isolated, effects) {
            return;
        }
        let maintenance_before = self
            .report(id)
            .map_or(Decimal::ZERO, |r| r.maintenance_margin.value());
        self.trade(
            id,
            &instrument,
            signed,
            mark,
            TransferReason::LiquidationPnl,
            effects,
        );
        self.trade_external(&instrument, -signed, mark, effects);
        let holder =
            LedgerAccount::of_position(id, name, isolated && quantity < position.size.abs());
        // The fee comes out of what the account still has: never beyond its cash, and never so
        // much that it turns the account's equity negative (the fee must not cause a bankruptcy).
        // Nor so much that the step cannot raise health: at most half the share of equity matching
        // the share of maintenance margin the step freed (health then grows by the factor
        // (1 - freed/2) / (1 - freed) per step), so liquidation stays partial and gradual.
        let cash = self
            .ledger
            .balance(&holder, &instrument.settlement)
            .max(Decimal::ZERO);
        let cap = if isolated {
            cash
        } else {
            self.report(id).map_or(Decimal::ZERO, |r| {
                if r.settlement_asset != instrument.settlement || maintenance_before.is_zero() {
                    return Decimal::ZERO;
                }
                let freed = (Decimal::ONE - r.maintenance_margin.value() / maintenance_before)
                    .max(Decimal::ZERO);
                r.equity.value().max(Decimal::ZERO) * freed / Decimal::TWO
            })
        };
        let precision = self
            .venue
            .asset(&instrument.settlement)
            .map_or(8, |a| a.precision);
        let charged = rounding::credit(fee.min(cash).min(cap), precision);
        if charged > Decimal::ZERO {
            self.move_money(
                &holder,
                &LedgerAccount::InsuranceFund,
                &instrument.settlement,
                charged,
                TransferReason::LiquidationFee,
                effects,
            );
            self.insurance_changed(&instrument.settlement, charged, "liquidation fee", effects);
        }
        effects.push(Effect::Liquidation {
            account: id.to_owned(),
            instrument: name.to_owned(),
            size: Quantity(signed),
            price: Price(mark),
            fee: Amount(charged),
            reason: if isolated {
                "isolated_health_below_threshold".to_owned()
            } else {
                "health_below_threshold".to_owned()
            },
        });
    }

    fn insurance_changed(
        &self,
        asset: &str,
        change: Decimal,
        reason: &str,
        effects: &mut Vec<Effect>,
    ) {
        effects.push(Effect::InsuranceFundChanged {
            asset: asset.to_owned(),
            balance: Amount(self.ledger.balance(&LedgerAccount::InsuranceFund, asset)),
            change: Amount(change),
            reason: reason.to_owned(),
        });
    }

    /// When closing the last position at the mark would leave the account with negative equity
    /// that the insurance fund cannot cover, the position is closed at the bankruptcy price
    /// against the opposite positions ranked by profit x leverage (Hyperliquid, dYdX v4), so the
    /// account ends at exactly nothing and no account without a position pays. Returns whether it
    /// deleveraged.
    fn deleverage_if_bankrupt(
        &mut self,
        id: &str,
        instrument: &Arc<Instrument>,
        signed: Decimal,
        mark: Decimal,
        isolated: bool,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let holder = LedgerAccount::of_position(id, &instrument.name, isolated);
        let asset = instrument.settlement.clone();
        let Some(position) = self
            .accounts
            .get(id)
            .and_then(|a| a.positions.get(instrument.name.as_str()))
            .cloned()
        else {
            return false;
        };
        // What the cross pool's other coins will pay once sold (`cover_deficit`): the deficit
        // is what is left after them.
        let balance = self.ledger.balance(&holder, &asset)
            + if isolated {
                Decimal::ZERO
            } else {
                self.other_coins_value(id, &asset)
            };
        let outcome = |price: Decimal| {
            trade_position(instrument, position.size, position.entry, signed, price)
        };
        let at_mark = balance + outcome(mark).realised + outcome(mark).premium;
        let deficit = -at_mark;
        let fund = self
            .ledger
            .balance(&LedgerAccount::InsuranceFund, &asset)
            .max(Decimal::ZERO);
        if deficit <= Decimal::ZERO || fund >= deficit {
            return false;
        }
        // Bankruptcy price: the price at which closing leaves the holder with exactly zero.
        let bankruptcy = solvent_risk::liquidation::solve(
            mark,
            position.size.signum().to_i8().unwrap_or(1),
            (Decimal::new(1, 12), MAX_PRICE),
            |p| Ok(balance + outcome(p).realised + outcome(p).premium),
        );
        let Ok(Some(bankruptcy)) = bankruptcy else {
            return false;
        };
        let mut remaining = signed.abs();
        let candidates: Vec<&Account> = self
            .instrument_holders
            .get(instrument.name.as_str())
            .map(|slots| {
                slots
                    .iter()
                    .filter_map(|slot| self.accounts.by_slot(*slot))
                    .filter(|other| other.id != id)
                    .collect()
            })
            .unwrap_or_default();
        let mut ranked: Vec<(CompactString, f64, Decimal)> = candidates
            .into_iter()
            .filter_map(|a| {
                let p = a.positions.get(instrument.name.as_str())?;
                if p.size.signum() == position.size.signum() {
                    return None;
                }
                let profit =
                    solvent_risk::standard::unrealized_pnl(instrument, p.size, p.entry, mark);
                if profit <= Decimal::ZERO {
                    return None;
                }
                let notional = solvent_risk::standard::notional(instrument, p.size, mark);
                // Leverage from the candidate's equity now (profitable opposite holders of this
                // instrument only, so the count is bounded by its open interest holders).
                let equity = self
                    .report(&a.id)
                    .map(|r| r.equity.value())
                    .unwrap_or(Decimal::ONE)
                    .max(Decimal::new(1, 6));
                let score = (profit * notional / equity).to_f64().unwrap_or(0.0);
                Some((a.id.clone(), score, p.size.abs()))
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if ranked.is_empty() {
            return false;
        }
        let precision = self.venue.asset(&asset).map_or(8, |a| a.precision);
        effects.push(Effect::DeficitBeyondFund {
            account: id.to_owned(),
            asset: asset.to_string(),
            deficit: Amount(rounding::requirement(deficit, precision)),
            fund: Amount(fund),
            resolution: DeficitResolution::Adl,
        });
        for (other, _, available) in ranked {
            if remaining.is_zero() {
                break;
            }
            let take = remaining.min(available);
            let sign = signed.signum();
            self.trade(
                id,
                instrument,
                take * sign,
                bankruptcy,
                TransferReason::Adl,
                effects,
            );
            self.trade(
                &other,
                instrument,
                -take * sign,
                bankruptcy,
                TransferReason::Adl,
                effects,
            );
            effects.push(Effect::Adl {
                account: id.to_owned(),
                counterparty: other.to_string(),
                instrument: instrument.name.clone(),
                size: Quantity(-take * sign),
                price: Price(bankruptcy),
            });
            self.reindex(&other);
            self.deleveraged.insert(other.to_string());
            remaining -= take;
        }
        if !remaining.is_zero() {
            // Not enough opposite interest inside: the rest closes at the market.
            let rest = remaining * signed.signum();
            self.trade(
                id,
                instrument,
                rest,
                mark,
                TransferReason::LiquidationPnl,
                effects,
            );
            self.trade_external(instrument, -rest, mark, effects);
            effects.push(Effect::Liquidation {
                account: id.to_owned(),
                instrument: instrument.name.clone(),
                size: Quantity(rest),
                price: Price(mark),
                fee: Amount(Decimal::ZERO),
                reason:
                    "bankrupt: too little opposite interest to deleverage, closed at the market"
                        .to_owned(),
            });
        }
        true
    }

    /// The net worth in `asset` of the account's wallet balances of other coins, at the index:
    /// holdings count at what selling them raises (rounded down, as [`Self::sell_collateral_for`]
    /// credits them), loans at what repaying them costs (rounded up). A coin without a price
    /// counts for nothing when held (so the deficit is never understated) and is not subtracted
    /// when owed (its loan stays open, as `cover_deficit` leaves it).
    fn other_coins_value(&self, id: &str, asset: &str) -> Decimal {
        let Ok(target) = self.venue.asset(asset) else {
            return Decimal::ZERO;
        };
        let Ok(view) = MarketView::new(&self.venue, &self.market) else {
            return Decimal::ZERO;
        };
        let Ok(target_usd) = view.asset_usd(target) else {
            return Decimal::ZERO;
        };
        if target_usd <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        let mut total = Decimal::ZERO;
        for (symbol, held) in self.ledger.wallet(id) {
            if symbol == asset || held.is_zero() {
                continue;
            }
            let Ok(other) = self.venue.asset(symbol) else {
                continue;
            };
            let Ok(other_usd) = view.asset_usd(other) else {
                continue;
            };
            let Some(in_target) = held
                .abs()
                .checked_mul(other_usd)
                .and_then(|usd| usd.checked_div(target_usd))
            else {
                continue;
            };
            if held > Decimal::ZERO {
                total += rounding::credit(in_target, target.precision);
            } else {
                total -= rounding::requirement(in_target, target.precision);
            }
        }
        total
    }

    /// Once no cross position is left, a negative balance is repaid from the account's other
    /// collateral, sold at the index; what that cannot pay is covered by the insurance fund
    /// (which may go negative: the venue's own loss, never another account's). A loan of a
    /// borrowable asset is left open unless the pool is in breach or its equity is negative.
    fn cover_deficit(&mut self, id: &str, effects: &mut Vec<Effect>) {
        let Some(account) = self.accounts.get(id) else {
            return;
        };
        if !account.positions.values().all(|p| p.isolated) {
            return;
        }
        let wallet = LedgerAccount::Wallet(id.into());
        let assets: Vec<String> = self.venue.assets.keys().cloned().collect();
        for asset in &assets {
            let balance = self.ledger.balance(&wallet, asset);
            if balance >= Decimal::ZERO {
                continue;
            }
            let borrowable = self
                .venue
                .collateral
                .get(asset)
                .is_some_and(|s| s.borrow.is_some());
            // A loan may stay open while the pool can carry it; once the pool is in breach with
            // no cross position left to close, the loan itself is what must shrink.
            if borrowable
                && self.report(id).is_ok_and(|r| {
                    r.equity.value() >= Decimal::ZERO && r.state < AccountState::Liquidating
                })
            {
                continue;
            }
            // The account's other collateral pays first: sold to the market at the index (the
            // insurance fund is for what the account cannot pay, not for what it still holds).
            self.sell_collateral_for(id, asset, -balance, &assets, effects);
            let left = self.ledger.balance(&wallet, asset);
            if left < Decimal::ZERO {
                self.cover_from_fund(id, asset, -left, effects);
            }
        }
    }

    /// The insurance fund pays `deficit` of `asset` into the account's wallet as far as it
    /// holds it, never below zero (a negative fund is a loss nobody bears); what it cannot pay
    /// stays the account's debt, reported as such.
    fn cover_from_fund(
        &mut self,
        id: &str,
        asset: &str,
        deficit: Decimal,
        effects: &mut Vec<Effect>,
    ) {
        let fund = self
            .ledger
            .balance(&LedgerAccount::InsuranceFund, asset)
            .max(Decimal::ZERO);
        let paid = deficit.min(fund);
        if paid > Decimal::ZERO {
            self.move_money(
                &LedgerAccount::InsuranceFund,
                &LedgerAccount::Wallet(id.into()),
                asset,
                paid,
                TransferReason::InsuranceCover,
                effects,
            );
            self.insurance_changed(asset, -paid, "bankrupt account's deficit covered", effects);
        }
        if paid < deficit {
            effects.push(Effect::DeficitBeyondFund {
                account: id.to_owned(),
                asset: asset.to_owned(),
                deficit: Amount(deficit),
                fund: Amount(fund),
                resolution: DeficitResolution::AccountDebt,
            });
        }
    }

    /// Sells the account's other positive balances to the market at the index until `needed` of
    /// `asset` is raised (or nothing is left to sell).
    fn sell_collateral_for(
        &mut self,
        id: &str,
        asset: &str,
        needed: Decimal,
        assets: &[String],
        effects: &mut Vec<Effect>,
    ) {
        let wallet = LedgerAccount::Wallet(id.into());
        let mut sales: Vec<(String, Decimal, Decimal)> = Vec::new();
        {
            let Ok(target) = self.venue.asset(asset) else {
                return;
            };
            let Ok(view) = MarketView::new(&self.venue, &self.market) else {
                return;
            };
            let Ok(target_usd) = view.asset_usd(target) else {
                return;
            };
            let mut needed = needed;
            for other in assets.iter().filter(|a| a.as_str() != asset) {
                if needed <= Decimal::ZERO {
                    break;
                }
                let held = self.ledger.balance(&wallet, other);
                let Ok(held_asset) = self.venue.asset(other) else {
                    continue;
                };
                let Ok(other_usd) = view.asset_usd(held_asset) else {
                    continue;
                };
                if held <= Decimal::ZERO || other_usd <= Decimal::ZERO {
                    continue;
                }
                // Sell just enough (rounded up in the sold asset), or all of it.
                let wanted =
                    rounding::requirement(needed * target_usd / other_usd, held_asset.precision);
                let sold = wanted.min(held);
                let raised = rounding::credit(sold * other_usd / target_usd, target.precision);
                if sold <= Decimal::ZERO || raised <= Decimal::ZERO {
                    continue;
                }
                sales.push((other.clone(), sold, raised));
                needed -= raised;
            }
        }
        for (other, sold, raised) in sales {
            self.move_money(
                &wallet,
                &LedgerAccount::External,
                &other,
                sold,
                TransferReason::CollateralSale,
                effects,
            );
            self.move_money(
                &LedgerAccount::External,
                &wallet,
                asset,
                raised,
                TransferReason::CollateralSale,
                effects,
            );
        }
    }
}

/// Moves account `slot` from the sets of `old` names it left to the sets of `new` names it joined.
fn reindex_sets(
    sets: &mut BTreeMap<String, BTreeSet<u32>>,
    slot: u32,
    old: &[CompactString],
    new: &[CompactString],
) {
    for name in old.iter().filter(|name| !new.contains(name)) {
        if let Some(holders) = sets.get_mut(name.as_str()) {
            holders.remove(&slot);
        }
    }
    for name in new.iter().filter(|name| !old.contains(name)) {
        sets.entry(name.to_string()).or_default().insert(slot);
    }
}

/// The median of an underlying's `sources` no older than the staleness limit at `now`, after
/// dropping those further than the outlier band from the median of all fresh sources
/// (DESIGN.md 8.3).
fn index_from_sources(
    sources: &BTreeMap<String, SourcePrice>,
    now: Timestamp,
    guards: &GuardParams,
) -> Option<Decimal> {
    let is_fresh =
        |s: &SourcePrice| (now.as_millisecond() - s.at.as_millisecond()) <= guards.index_stale_ms;
    // One source (the usual feed): it is its own median and never an outlier.
    if sources.len() == 1 {
        return sources.values().find(|s| is_fresh(s)).map(|s| s.price);
    }
    let fresh: Vec<Decimal> = sources
        .values()
        .filter(|s| is_fresh(s))
        .map(|s| s.price)
        .collect();
    let first = median(fresh.clone())?;
    let kept: Vec<Decimal> = fresh
        .into_iter()
        .filter(|price| ((*price - first) / first).abs() <= guards.index_outlier)
        .collect();
    median(kept)
}

fn median(mut values: Vec<Decimal>) -> Option<Decimal> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values.get(middle).copied()
    } else {
        Some((*values.get(middle - 1)? + *values.get(middle)?) / Decimal::TWO)
    }
}

/// A refusal of the pre-trade rule as the engine's rejection.
fn refused(id: &str, refusal: &Refusal) -> Rejection {
    let reason = match refusal {
        Refusal::ReduceOnly { .. } => RejectReason::ReduceOnly,
        Refusal::IsolatedInitialMargin { .. } | Refusal::InitialMargin { .. } => {
            RejectReason::InsufficientInitialMargin
        }
        Refusal::BelowBuffer { .. } | Refusal::BelowInitialMargin { .. } => {
            RejectReason::ExceedsWithdrawable
        }
    };
    reject(reason, format!("{id}: {refusal}"))
}

fn rejected(rejection: &Rejection) -> Effect {
    Effect::Rejected {
        reason: rejection.reason,
        detail: rejection.detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The band conversion stays within a few ulps of the correctly rounded one, for every
        /// mantissa and scale a decimal can have: far inside the key margin.
        #[test]
        fn band_conversion_is_within_ulps_of_the_exact_one(
            low in any::<u32>(),
            mid in any::<u32>(),
            high in any::<u32>(),
            negative in any::<bool>(),
            scale in 0u32..=28,
        ) {
            let value = Decimal::from_parts(low, mid, high, negative, scale);
            let exact = value.to_f64().unwrap_or(f64::NAN);
            let fast = band_f64(value);
            let tolerance = exact.abs() * 4.0 * f64::EPSILON;
            prop_assert!((fast - exact).abs() <= tolerance, "{value}: {fast} vs {exact}");
        }
    }

    /// A position settled in an unpegged third coin moves with that coin's index, and funding
    /// paid in it opens a balance on it: the account is indexed under the coin at once (not at
    /// its next deposit), so that the coin's index updates reach it.
    #[test]
    fn a_position_or_funding_in_an_unpegged_coin_indexes_the_account_under_that_coin() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let Ok(venue) = Venue::from_toml(path, &text) else {
            panic!("the default venue must load");
        };
        let mut engine = Engine::new(venue, EngineConfig::default());
        let events = [
            r#""type":"index_price","underlying":"BTC","price":"60000""#,
            r#""type":"index_price","underlying":"USDe","price":"1""#,
            r#""type":"list_instrument","name":"BTCUSDE","spec":{"kind":"perpetual","style":"linear","underlying":"BTC","settlement":"USDe","contract_size":"1","size_step":"0.001","margin":"bybit_ethusdt","default_leverage":10}"#,
            r#""type":"deposit","account":"a","asset":"USDT","amount":"10000""#,
            r#""type":"fill","account":"a","instrument":"BTCUSDE","side":"buy","size":"0.1","price":"60000","counterparty":"external""#,
        ];
        let apply = |engine: &mut Engine, seq: usize, fields: &str| {
            let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T00:00:{seq:02}Z",{fields}}}"#);
            let envelope = match crate::event::parse_line("test", seq, &line) {
                Ok(envelope) => envelope,
                Err(error) => panic!("{line}: {error}"),
            };
            let effects = engine.apply(&envelope);
            assert!(
                !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
                "{line}: {effects:?}"
            );
        };
        for (seq, fields) in events.iter().enumerate() {
            apply(&mut engine, seq + 1, fields);
        }
        let indexed = |engine: &Engine| {
            engine
                .accounts
                .get("a")
                .map(|a| a.indexed_underlyings.clone())
                .unwrap_or_default()
        };
        // Settled in USDe, the position moves with USDe's index too.
        assert_eq!(indexed(&engine), ["BTC", "USDe"]);
        let sell = r#""type":"fill","account":"a","instrument":"BTCUSDE","side":"sell","size":"0.1","price":"60000","counterparty":"external""#;
        let buy = r#""type":"fill","account":"a","instrument":"BTCUSDE","side":"buy","size":"0.1","price":"60000","counterparty":"external""#;
        apply(&mut engine, 6, sell);
        assert!(
            indexed(&engine).is_empty(),
            "USDT is pegged: nothing to index"
        );
        apply(&mut engine, 7, buy);
        // The long pays 0.1 x 60,000 x 0.001 = 6 USDe it does not hold: a USDe loan, which keeps
        // the account on USDe's index once the position is gone.
        apply(
            &mut engine,
            8,
            r#""type":"funding","instrument":"BTCUSDE","rate":"0.001""#,
        );
        assert_eq!(
            engine.ledger.wallet_balance("a", "USDe"),
            Decimal::new(-6, 0)
        );
        apply(&mut engine, 9, sell);
        assert_eq!(indexed(&engine), ["USDe"]);
    }

    #[test]
    fn band_conversion_of_prices_and_zero() {
        assert_eq!(band_f64(Decimal::ZERO), 0.0);
        assert_eq!(band_f64(Decimal::new(5_949_103, 2)), 59_491.03);
        assert_eq!(band_f64(Decimal::new(-125, 1)), -12.5);
        // 1e28 is not a double: one ulp off.
        assert!((band_f64(Decimal::new(1, 28)) - 1e-28).abs() <= 1e-28 * f64::EPSILON);
    }
}
