//! The state machine: `Engine::apply(event) -> effects`, pure and deterministic (no clock, no
//! I/O; hashed maps, with a fixed seed, only for lookups, never iterated: every listing is in a
//! defined order). Each event is checked by a flat ladder of named rejections before anything
//! changes, so a refused event leaves the state exactly as it was.
//!
//! This file holds the engine's state (accounts, positions, the ledger, market, guards' memory)
//! and the dispatch of events; each concern lives in its own file below it:
//!
//! | file | concern |
//! | --- | --- |
//! | `engine/valuation.rs` | an account as a portfolio, and its margin report |
//! | `engine/money.rs` | deposits, withdrawals, transfers, booking cash |
//! | `engine/trading.rs` | fills, open-interest caps, both sides through clearing |
//! | `engine/pretrade.rs` | the pre-trade rule applied to fills and withdrawals |
//! | `engine/settings.rs` | leverage, margin mode, isolated margin, buffer, top-up rules, venue changes |
//! | `engine/top_ups.rs` | automated top-ups and reallocation to isolated positions |
//! | `engine/prices.rs` | index and mark prices and their guards, volatility surfaces |
//! | `engine/scenario_ranges.rs` | volatility-scaled scenario ranges in force, from `scenario_range` events |
//! | `engine/funding.rs` | funding and expiry settlement |
//! | `engine/interest.rs` | interest on loans, by the hour of the events' time |
//! | `engine/holders.rs` | which accounts hold what (the sets a price update looks up) |
//! | `engine/bands.rs` | safe price bands: which accounts a price update can change |
//! | `engine/vol_bands.rs` | which option holders a smile change can change |
//! | `engine/monitoring.rs` | evaluation: state changes, margin calls, liquidation when due |
//! | `engine/liquidation.rs` | partial, gradual liquidation and its guards |
//! | `engine/insurance.rs` | the insurance fund, deficits, auto-deleveraging |
//! | `engine/state_hash.rs` | the whole-state hash |
//! | `engine/snapshot.rs` | the whole state as bytes and back (snapshots) |

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use compact_str::CompactString;
use indexmap::IndexMap;
use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::{Signed, ToPrimitive};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use solvent_core::instrument::{Instrument, Style, Terms};
use solvent_core::market::{Market, Smile};
use solvent_core::money::{Amount, MAX_PRICE, PositionSide, Price, Quantity};
use solvent_core::names::NameMap;
use solvent_core::portfolio::{Balance, MarginMode, Portfolio, Position};
use solvent_core::rounding;
use solvent_core::venue::{Venue, WithdrawalRule};
use solvent_risk::account::{Detail, build_report};
use solvent_risk::allocation::{AllocationPolicy, BufferPolicy};
use solvent_risk::pretrade::{Refusal, TradeLeg, book_trades, decide_trade_at, decide_withdrawal};
use solvent_risk::report::MarginReport;
use solvent_risk::whatif::{TradeOutcome, trade_position};
use solvent_risk::{AccountState, MarketView, RiskError};

use crate::book::AccountBook;
use crate::config::{EngineConfig, GuardParams};
use crate::effect::{
    ClaimedPosition, DeferralReason, DeficitResolution, Effect, GuardReason, InsuranceFundReason,
    LiquidationReason, RejectReason, TransferReason,
};
use crate::event::{Envelope, Event, Side};
use crate::ledger::{Ledger, LedgerAccount};

mod adl_index;
mod bands;
mod books;
mod claims;
mod funding;
mod holders;
mod insurance;
mod interest;
mod liquidation;
mod money;
mod monitoring;
mod portfolio_bands;
mod prepared;
mod pretrade;
mod prices;
mod scenario_ranges;
mod settings;
pub(crate) mod snapshot;
mod state_hash;
mod top_ups;
mod trading;
mod valuation;
mod vol_bands;

pub use claims::{AdlAssignment, ClaimAnswer, SocialisedShare};
pub use insurance::{AdlCandidate, ProfitHolder, share_deficit};
pub use interest::{LoanCover, MAX_INTEREST_HOURS};
pub use scenario_ranges::{ranges_of, scaling_warnings};
pub use snapshot::{SNAPSHOT_FORMAT, SnapshotError};

#[allow(clippy::wildcard_imports)]
use bands::*;
#[allow(clippy::wildcard_imports)]
use holders::*;

/// Whether an evaluation reports the account's figures (an `account_updated` effect): after an
/// event addressed to the account, not after a price update that merely re-examines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Figures {
    /// Report them.
    Reported,
    /// Act on them silently.
    Unreported,
}

/// Which pool of an account a position is margined in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    /// The cross pool.
    Cross,
    /// Its own isolated margin.
    Isolated,
}

/// What monitoring acts on: the cross pool's figures and the lines of the account's positions
/// (isolated ones are read). Taken from a full margin report, or from the prepared cross pool
/// (the measured kernel, see `engine/prepared.rs`), whose figures are the report's own.
#[derive(Clone, Debug)]
struct Standing<'r> {
    equity: Amount,
    initial_margin: Amount,
    maintenance_margin: Amount,
    health: Option<f64>,
    state: AccountState,
    settlement_asset: &'r str,
    /// Every position line of the report; empty from the prepared pool, which serves accounts
    /// without isolated positions only.
    positions: &'r [solvent_risk::report::PositionReport],
    /// A portfolio-mode account's scan: each underlying's worst scenario on either side (empty
    /// from the prepared pool, which serves cross accounts only).
    scenario_sides: &'r [solvent_risk::portfolio_margin::ScenarioSides],
}

impl<'r> Standing<'r> {
    fn of(report: &'r MarginReport) -> Self {
        Self {
            equity: report.equity,
            initial_margin: report.initial_margin,
            maintenance_margin: report.maintenance_margin,
            health: report.health,
            state: report.state,
            settlement_asset: &report.settlement_asset,
            positions: &report.positions,
            scenario_sides: &report.scenario_sides,
        }
    }
}

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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PositionState {
    /// The instrument.
    #[serde(with = "snapshot::held_instrument")]
    pub instrument: Arc<Instrument>,
    /// Signed size.
    pub size: Decimal,
    /// Average entry.
    pub entry: Decimal,
    /// Whether it has its own isolated margin.
    pub isolated: bool,
}

/// An automated top-up rule with its use in the current UTC day.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopUpRule {
    /// The rule as set.
    #[serde(with = "snapshot::SetAutoTopUpDef")]
    pub rule: crate::event::SetAutoTopUp,
    /// Day (days since the epoch) the usage counts for.
    pub day: i64,
    /// Amount moved that day.
    pub used: Decimal,
}

/// An account as the engine holds it (balances live in the ledger).
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    #[serde(with = "snapshot::AccountStateDef")]
    pub state: AccountState,
    /// Whether a margin call was sent in the current episode.
    pub margin_call_sent: bool,
    /// Consecutive evaluations in breach of the liquidation threshold, and since when.
    pub breach: Option<(u32, Timestamp)>,
    /// The equity kept beyond the initial margin.
    #[serde(with = "snapshot::BufferPolicyDef")]
    pub buffer: BufferPolicy,
    /// Automated top-ups.
    pub top_ups: Vec<TopUpRule>,
    /// The account's number in the engine (order of opening): the bands' compact key.
    slot: u32,
    /// The safe bands registered for it, per underlying.
    bands: Vec<Band>,
    /// Whether it waits, on some underlying, for a price before it can have a band there.
    unbanded: bool,
    /// Per underlying of its options (sorted): the smiles' epoch it is registered against and
    /// the key of its tolerance there, as registered in `Engine::vol_watch`.
    vol_limits: Vec<(CompactString, u64, bands::BandKey)>,
    /// The contracts with a given mark it holds whose band is not on that mark (inverse,
    /// options, other settlement), and the perpetuals awaiting their first mark it keeps on the
    /// index (see `Engine::band_source`): examined at each of their mark updates. Sorted.
    mark_watched: Vec<CompactString>,
    /// Its cross pool prepared for the measured kernel (see `engine/prepared.rs`), when it
    /// qualifies: a cache of what the rest of the state determines, never hashed. Shared, not
    /// owned: a preparation is replaced whole, never changed, and a copy of the engine (the
    /// service's snapshot copy, taken between two batches on the engine's thread) then counts
    /// a reference instead of copying every account's positions and prices again.
    #[serde(skip)]
    prepared: Option<Arc<prepared::PreparedPool>>,
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
            vol_limits: Vec::new(),
            mark_watched: Vec::new(),
            prepared: None,
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

/// One index source's last price.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct SourcePrice {
    price: Decimal,
    at: Timestamp,
}

/// The engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Engine {
    venue: Venue,
    config: EngineConfig,
    #[serde(with = "snapshot::MarketDef")]
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
    /// Safe bands, by the kind of price source they are on.
    bands: BandMaps,
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
    /// Perpetuals and futures held before their first mark (linear ones settled in a pegged
    /// coin, and inverse ones), with the underlying whose index values them until it comes:
    /// their holders are banded on the contract's mark (or on the ratio of the index to it: an
    /// inverse one, or a linear one held beside something else valued at the index) from the
    /// start, the index standing in for it (see [`Engine::band_source`] and
    /// [`Engine::ratio_parts`]), so the first mark examines only the holders whose band it
    /// crosses.
    awaiting_mark: BTreeMap<CompactString, CompactString>,
    /// Per underlying, its option holders registered against snapshots of its smiles with
    /// their volatility tolerance (see `engine/vol_bands.rs`): a smile change examines those
    /// whose tolerance today's distance from their snapshot reaches.
    vol_watch: BTreeMap<String, vol_bands::VolWatch>,
    /// ADL counterparties whose profit was just taken at the bankruptcy price: examined again
    /// before the event ends, since losing that profit can leave them in breach.
    deleveraged: BTreeSet<String>,
    last_seq: Option<u64>,
    now: Timestamp,
    events: u64,
    /// Under the started-hour interest rule, what each wallet's loan has been charged for in
    /// the current hour, by (account, asset): see `engine/interest.rs`.
    interest_covered: BTreeMap<(CompactString, CompactString), interest::LoanCover>,
    /// The digest of the installed venue (see [`state_hash`]).
    venue_digest: [u8; 32],
    /// Counts changes of the volatility smiles (the key of `surfaces`).
    vol_generation: u64,
    /// The volatility-scaled range in force per underlying, from `scenario_range` events; the
    /// installed venue's grid of each is the static one scaled to it (see
    /// `engine/scenario_ranges.rs`).
    scenario_ranges: BTreeMap<String, solvent_risk::vol_scaled::RangeInForce>,
    /// The venue's own grid of each underlying in `scenario_ranges`: what the next range is
    /// scaled from.
    static_grids: BTreeMap<String, solvent_core::portfolio_margin::UnderlyingParams>,
    /// How many times accounts were evaluated, and how: what the bands spare is read here
    /// (diagnostics only, never hashed nor snapshotted).
    #[serde(skip)]
    evaluations: Evaluations,
    /// The accounts examined since the last [`Engine::take_examined`], in order, while
    /// [`Engine::record_examined`] asks for them (diagnostics only, never hashed nor
    /// snapshotted; `None`, and free, otherwise).
    #[serde(skip)]
    examined: Option<Vec<CompactString>>,
    /// The volatility surfaces at the current time, smiles and venue, built once and shared by
    /// every account valued before any of them changes: a cache, never hashed.
    #[serde(skip)]
    surfaces: std::cell::RefCell<Option<CachedSurfaces>>,
    /// Per underlying, its smiles' highest volatility and latest expiry, at the smiles'
    /// generation: a cache, never hashed.
    #[serde(skip)]
    smile_summaries: std::cell::RefCell<Option<SmileSummaries>>,
    /// Counts changes of index prices and marks (with the time, the smiles' generation, the
    /// rate and the venue, the key of `books`): every change of `market.index` or
    /// `market.mark` must count here.
    price_generation: u64,
    /// Per underlying, the scenario book every portfolio-mode account valued at the current
    /// market reads (see `engine/books.rs`): a cache, never hashed nor snapshotted.
    #[serde(skip)]
    books: std::cell::RefCell<BTreeMap<String, books::CachedBook>>,
    /// The venue's tiered rules in the prepared kernel's `f64` form, converted once per rule
    /// (see `engine/prepared.rs`): a cache, never hashed nor snapshotted.
    #[serde(skip)]
    kernel_rules: std::cell::RefCell<solvent_risk::prepared::KernelRules>,
    /// Per contract, its ADL queues as ranked at the event's first bankruptcy in it (see
    /// `engine/insurance.rs`): a cache of one event, never hashed nor snapshotted.
    #[serde(skip)]
    adl_queues: BTreeMap<String, insurance::AdlQueues>,
    /// The holders of each linear perpetual filed by a bound on their ADL score (see
    /// `engine/adl_index.rs`): a cache, never hashed nor snapshotted (a restored engine files
    /// its accounts again).
    #[serde(skip)]
    adl_index: adl_index::AdlIndex,
    /// The accounts changed since the event's first ADL queue was made, in order (with
    /// repeats): what a kept queue scores again at its next use. A log of one event, never
    /// hashed nor snapshotted.
    #[serde(skip)]
    adl_event_changes: Vec<u32>,
    /// How many ADL candidates rankings have scored since the engine was built (diagnostics
    /// only, never hashed nor snapshotted).
    #[serde(skip)]
    adl_ranked: u64,
    /// ADL candidates bounded one by one from their accounts, in the groups the rankings took
    /// (diagnostics, see [`Engine::adl_members_bounded`]; never hashed nor snapshotted).
    #[serde(skip)]
    adl_bounded: u64,
    /// Per account, the bankrupt position its deficit claim will carry, found when that
    /// position closed at the mark earlier in the same event (see `engine/claims.rs`): a
    /// cache of one event, never hashed nor snapshotted.
    #[serde(skip)]
    claimed_positions: BTreeMap<String, ClaimedPosition>,
}

/// How many account evaluations an engine has made since it was built, by the path that gave
/// the figures: what monitoring costs is the count times the path's price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evaluations {
    /// Figures from the prepared standard-margin kernel (`engine/prepared.rs`).
    pub prepared: u64,
    /// Figures from the full margin report.
    pub reported: u64,
}

impl Evaluations {
    /// Accounts evaluated, by either path, since the reading `earlier` (of the same engine).
    #[must_use]
    pub fn since(self, earlier: Evaluations) -> u64 {
        (self.prepared + self.reported).saturating_sub(earlier.prepared + earlier.reported)
    }
}

/// Surfaces built at `(time, smiles generation, venue)`, and the smiles' expiries read at
/// `(smiles generation, venue)`: the engine's clock moves with every event, its smiles far less
/// often, so the surfaces are rebuilt at a new time from the schedule without reading the keys.
#[derive(Clone, Debug)]
struct CachedSurfaces {
    key: (Timestamp, u64, [u8; 32]),
    surfaces: Arc<solvent_risk::valuation::Surfaces>,
    schedule: Arc<solvent_risk::valuation::SmileSchedule>,
}

/// Per underlying, what monitoring and the ADL index read of its smiles as a whole, read at
/// `(smiles generation, venue)` (the venue's expiry time of day dates the smiles' keys).
type SmileSummaries = ((u64, [u8; 32]), Vec<(String, SmileSummary)>);

/// What the engine reads of an underlying's smiles as a whole.
#[derive(Clone, Copy, Debug)]
struct SmileSummary {
    /// The highest volatility of any of its smiles (the bound of options' time decay, see
    /// `engine/bands.rs`).
    highest_volatility: f64,
    /// The lowest volatility of any of its smiles (with the highest, the range every
    /// volatility of the surface lies in: options' delta bounds, see `engine/bands.rs`).
    lowest_volatility: f64,
    /// The latest expiry among its smiles (whether an option can be valued until it expires,
    /// see `engine/adl_index.rs`); `None` if no key reads as an expiry.
    latest_expiry: Option<Timestamp>,
}

/// The fixed point of time before any event.
const EPOCH: Timestamp = Timestamp::UNIX_EPOCH;

impl Engine {
    /// An engine with no accounts and no prices.
    #[must_use]
    pub fn new(venue: Venue, config: EngineConfig) -> Self {
        Self {
            vol_generation: 0,
            scenario_ranges: BTreeMap::new(),
            static_grids: BTreeMap::new(),
            evaluations: Evaluations::default(),
            examined: None,
            surfaces: std::cell::RefCell::new(None),
            smile_summaries: std::cell::RefCell::new(None),
            price_generation: 0,
            books: std::cell::RefCell::new(BTreeMap::new()),
            kernel_rules: std::cell::RefCell::default(),
            adl_queues: BTreeMap::new(),
            adl_index: adl_index::AdlIndex::empty(&venue),
            adl_event_changes: Vec::new(),
            adl_ranked: 0,
            adl_bounded: 0,
            claimed_positions: BTreeMap::new(),
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
            bands: BandMaps::default(),
            mark_watchers: BTreeMap::new(),
            unbanded: BTreeMap::new(),
            awaiting_mark: BTreeMap::new(),
            vol_watch: BTreeMap::new(),
            deleveraged: BTreeSet::new(),
            last_seq: None,
            now: EPOCH,
            events: 0,
            interest_covered: BTreeMap::new(),
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The same engine under another configuration: a copy of a live engine run through a
    /// simulation with guards of its own (the liquidation cascade of a live book).
    #[must_use]
    pub fn reconfigured(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
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

    /// How many account evaluations the engine has made since it was built or restored, by
    /// path (diagnostics for benchmarks and metrics; not part of the state).
    #[must_use]
    pub fn evaluations(&self) -> Evaluations {
        self.evaluations
    }

    /// How many ADL candidates the engine's rankings have scored since it was built or
    /// restored: what an ADL's ranking cost, in accounts (diagnostics for benchmarks; not part
    /// of the state).
    #[must_use]
    pub fn adl_candidates_scored(&self) -> u64 {
        self.adl_ranked
    }

    /// How many holders the engine's ADL rankings have bounded one by one (a few
    /// floating-point operations each, from the account's wallet and positions) before scoring
    /// those whose bound reached the head of the queue (diagnostics, not part of the state).
    #[must_use]
    pub fn adl_members_bounded(&self) -> u64 {
        self.adl_bounded
    }

    /// Starts (`true`) or stops recording which accounts each event examines, for a benchmark
    /// to tell where monitoring's work goes (see [`Engine::take_examined`]).
    pub fn record_examined(&mut self, on: bool) {
        self.examined = on.then(Vec::new);
    }

    /// The accounts examined since the last call, one entry per examination, in order; empty
    /// unless [`Engine::record_examined`] is on.
    pub fn take_examined(&mut self) -> Vec<CompactString> {
        self.examined
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The current market.
    #[must_use]
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// The venue as installed: the grid of each underlying with a scenario range in force is
    /// the venue's own scaled to it (the own grids: [`Self::static_grids`]).
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

    /// The sequence number of the last accepted event (`None` before any).
    #[must_use]
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The engine's time: the timestamp of the last accepted event.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.now
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
        // The whole hours the event's time crosses owe their interest first (computed at the
        // previous time, before anything moves).
        let plan = self.interest_plan(envelope.ts);
        // A refusal takes nothing, not even the sequence number or the time (restored below):
        // a refused event leaves the whole state, and its hash, as they were.
        let taken = (self.last_seq, self.now, self.market.timestamp);
        self.last_seq = Some(envelope.seq);
        self.events += 1;
        self.now = envelope.ts;
        self.market.timestamp = envelope.ts;
        let mut interest_effects = Vec::new();
        let (result, booked) = match plan {
            Ok(plan) => {
                let booked = self.book_interest(plan, &mut interest_effects);
                (self.dispatch(&envelope.event), Some(booked))
            }
            Err(rejection) => (Err(rejection), None),
        };
        match result {
            Ok(effects) => {
                // Interest comes first. Most events book none: their effects are taken as they
                // are, not copied (a large move's thousands of effects would be moved into fresh
                // memory again).
                let mut all = if interest_effects.is_empty() {
                    effects
                } else {
                    interest_effects.extend(effects);
                    interest_effects
                };
                if let Some(booked) = &booked {
                    self.settle_interest(booked, &mut all);
                }
                // Each ADL closes opposite interest, so this ends: open interest only shrinks.
                while let Some(id) = self.deleveraged.pop_first() {
                    self.evaluate(&id, Figures::Reported, &mut all);
                }
                self.end_event();
                all
            }
            Err(rejection) => {
                if let Some(booked) = booked {
                    self.unbook_interest(booked);
                }
                self.deleveraged.clear();
                self.end_event();
                (self.last_seq, self.now, self.market.timestamp) = taken;
                vec![rejected(&rejection)]
            }
        }
    }

    /// The event's own changes (the interest of the hours it crosses is booked before).
    fn dispatch(&mut self, event: &Event) -> Result<Vec<Effect>, Rejection> {
        match event {
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
            Event::ScenarioRange(e) => self.scenario_range(e),
        }
    }

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

    /// Drops the caches of one event (ADL queues, claimed positions, the log of changed
    /// accounts) and files the accounts the event changed in the ADL index.
    fn end_event(&mut self) {
        self.adl_queues.clear();
        self.claimed_positions.clear();
        self.refile_changed();
        self.adl_event_changes.clear();
    }

    /// Makes `venue`, as given, the engine's, with the scenario ranges in force that it still
    /// admits applied to its grids (`engine/scenario_ranges.rs`).
    fn install_venue(&mut self, venue: Venue) {
        let venue = self.scale_given_venue(venue);
        self.set_installed_venue(venue);
    }

    /// Makes `venue` (its grids already scaled) the engine's, with what the bands derive from it.
    fn set_installed_venue(&mut self, venue: Venue) {
        self.state_levels = state_levels(&venue);
        self.coin_indices = coin_indices(&venue);
        self.venue_digest = state_hash::venue_digest(&venue);
        self.venue = venue;
        self.kernel_rules.get_mut().clear();
        // Collateral schedules and instruments may have changed: every filing is redone.
        self.adl_index.invalidate();
    }
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

    /// An engine on the shipped default venue, for the unit tests here and in `engine/`.
    pub(super) fn default_engine() -> Engine {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let Ok(venue) = Venue::from_toml(path, &text) else {
            panic!("the default venue must load");
        };
        Engine::new(venue, EngineConfig::default())
    }

    /// An engine on `examples/vol-scaled-venue.toml` (the default venue, BTC's and ETH's ranges
    /// scaled with forecast volatility).
    pub(super) fn vol_scaled_engine() -> Engine {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/vol-scaled-venue.toml"
        );
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let Ok(venue) = Venue::from_toml(path, &text) else {
            panic!("the vol-scaled venue must load");
        };
        Engine::new(venue, EngineConfig::default())
    }

    /// Applies the event `fields` as sequence `seq`, `seq` seconds into 2026, and returns its
    /// effects.
    pub(super) fn apply_at(engine: &mut Engine, seq: usize, fields: &str) -> Vec<Effect> {
        let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T00:00:{seq:02}Z",{fields}}}"#);
        match crate::event::parse_line("test", seq, &line) {
            Ok(envelope) => engine.apply(&envelope),
            Err(error) => panic!("{line}: {error}"),
        }
    }

    /// [`apply_at`], for an event that must be accepted.
    pub(super) fn apply_accepted(engine: &mut Engine, seq: usize, fields: &str) {
        let effects = apply_at(engine, seq, fields);
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
            "{fields}: {effects:?}"
        );
    }

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
        let mut engine = default_engine();
        let events = [
            r#""type":"index_price","underlying":"BTC","price":"60000""#,
            r#""type":"index_price","underlying":"USDe","price":"1""#,
            r#""type":"list_instrument","name":"BTCUSDE","spec":{"kind":"perpetual","style":"linear","underlying":"BTC","settlement":"USDe","contract_size":"1","size_step":"0.001","margin":"bybit_ethusdt","default_leverage":10}"#,
            r#""type":"deposit","account":"a","asset":"USDT","amount":"10000""#,
            r#""type":"fill","account":"a","instrument":"BTCUSDE","side":"buy","size":"0.1","price":"60000","counterparty":"external""#,
        ];
        for (seq, fields) in events.iter().enumerate() {
            apply_accepted(&mut engine, seq + 1, fields);
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
        apply_accepted(&mut engine, 6, sell);
        assert!(
            indexed(&engine).is_empty(),
            "USDT is pegged: nothing to index"
        );
        apply_accepted(&mut engine, 7, buy);
        // The long pays 0.1 x 60,000 x 0.001 = 6 USDe it does not hold: a USDe loan, which keeps
        // the account on USDe's index once the position is gone.
        apply_accepted(
            &mut engine,
            8,
            r#""type":"funding","instrument":"BTCUSDE","rate":"0.001""#,
        );
        assert_eq!(
            engine.ledger.wallet_balance("a", "USDe"),
            Decimal::new(-6, 0)
        );
        apply_accepted(&mut engine, 9, sell);
        assert_eq!(indexed(&engine), ["USDe"]);
    }

    /// A cross account holding perpetuals is evaluated through the prepared kernel, kept across
    /// price updates and remade when its balances change (debug builds check every prepared
    /// figure against the full report); an account with an isolated position is not.
    #[test]
    fn cross_perpetual_accounts_are_evaluated_through_the_prepared_kernel() {
        let mut engine = default_engine();
        let mut seq = 0;
        let mut apply = |engine: &mut Engine, fields: &str| {
            seq += 1;
            apply_at(engine, seq, fields)
        };
        apply(
            &mut engine,
            r#""type":"index_price","underlying":"BTC","price":"60000""#,
        );
        apply(
            &mut engine,
            r#""type":"deposit","account":"a","asset":"USDT","amount":"5000""#,
        );
        apply(
            &mut engine,
            r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
        );
        let prepared = |engine: &Engine| {
            engine
                .accounts
                .get("a")
                .and_then(|a| a.prepared.as_deref().cloned())
        };
        assert!(
            prepared(&engine).is_none(),
            "an event addressed to the account takes the full report"
        );
        // After a fall of 2% (inside the jump guard), a re-examination by a price update goes
        // through the kernel, prepared then (its figures checked against the report in debug).
        let effects = apply(
            &mut engine,
            r#""type":"index_price","underlying":"BTC","price":"58800""#,
        );
        assert!(!effects.iter().any(|e| matches!(e, Effect::Rejected { .. })));
        assert!(
            engine.prepared_standing("a").is_some(),
            "a price update prepares the pool"
        );
        let updated = apply(
            &mut engine,
            r#""type":"deposit","account":"a","asset":"USDT","amount":"1""#,
        );
        let equity = updated.iter().find_map(|e| match e {
            Effect::AccountUpdated { equity, .. } => Some(equity.value()),
            _ => None,
        });
        // 5,001 - 1,200 of loss.
        assert_eq!(equity, Some(Decimal::from(3801)));
        assert!(
            prepared(&engine).is_none(),
            "the deposit dropped the preparation"
        );
        let isolated = apply(
            &mut engine,
            r#""type":"set_isolated_margin","account":"a","instrument":"BTCUSDT","amount":"4500""#,
        );
        assert!(
            !isolated
                .iter()
                .any(|e| matches!(e, Effect::Rejected { .. })),
            "{isolated:?}"
        );
        apply(
            &mut engine,
            r#""type":"index_price","underlying":"BTC","price":"58000""#,
        );
        assert!(
            engine.prepared_standing("a").is_none(),
            "an isolated position takes the full report"
        );
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
