//! Seeded simulation with an auditor (STYLE.md, TigerBeetle): a workload generates random but
//! plausible event streams on the default venue, knows the expected outcome of the commands whose
//! outcome is certain (a deposit is accepted, a withdrawal above the balance is refused with
//! `insufficient_balance`, ...), and an auditor — a small reference model written here, which
//! never calls the engine's internals — checks every reply:
//!
//! 1. conservation: per asset the ledger sums to zero;
//! 2. every `transfer_applied` effect is replayed on the auditor's own balance map, which must
//!    equal the engine's ledger after every event (no money moves without an effect);
//! 3. a `rejected` event changes nothing: the state hash equals the one before the event;
//! 4. `IM >= MM >= 0` in every `account_updated` effect and in the `solvent_risk` report of every
//!    account the event could affect (per position too, under standard margin);
//! 5. no account is left at or below the liquidation threshold (account or isolated health) with
//!    positions and without a `liquidation` / `liquidation_deferred` effect in the event that
//!    last changed its figures;
//! 6. an account without positions never pays an `adl`, `liquidation_pnl` or `insurance_cover`
//!    transfer;
//! 7. the auditor's own position book (from fills, `liquidation` and `adl` effects) equals the
//!    engine's positions after every event;
//! 8. determinism: the journal (events written with `to_line`, read back with `parse_line`)
//!    replayed into a fresh engine gives the identical effects, event by event, and the identical
//!    final `state_hash()`;
//! 9. the insurance fund never holds less than zero of any asset (what it cannot pay is
//!    deleveraged or stays the bankrupt account's debt);
//! 10. every transfer is recomputed: the auditor keeps its own position book (size, average
//!     entry, isolation, per account and for `external`) and computes, by its own formulas and
//!     the rounding of DESIGN.md 4 (a credit rounds down, so a payment rounds up), the transfers
//!     each accepted event must make — deposits, withdrawals and transfers; a fill's realised
//!     P&L (linear `closed x contract size x (price - entry)`, inverse
//!     `closed x (price - entry) / (entry x price)` coin), option premium and fee, for both sides
//!     and `external`; funding (`size x contract size x mark x rate`, inverse
//!     `size x rate / mark`, its rounding residual to `fees`); isolated margin moves and the
//!     release of a closed isolated position; each `liquidation` effect's P&L at its price (which
//!     must be the mark) and size, and its fee (exactly `min(nominal, cash)` for an isolated
//!     position or a zero bound, else bounded by both: the cross pool's gradual-liquidation cap
//!     needs the engine's figures); each `adl` effect's P&L at its price — and compares them,
//!     per ledger account, asset and reason, to the unit of the asset's precision, with the
//!     entries and the account states (`state_changed`) the engine holds. Collateral sales,
//!     insurance cover, top-ups, reallocation and settlement are taken as reported (checked by 1
//!     and 2 only); the run prints how many transfers were recomputed and how many taken.
//!
//! **Predictions.** Every fill, withdrawal and transfer is predicted before the engine sees it,
//! without the engine's report builder:
//! - *certain* (any account): validation refusals (unknown account, asset, instrument, bad size
//!   or precision, self-trade), more than the balance refused (`insufficient_balance`), an
//!   account without positions or loans may withdraw anything it holds, and the first two rules
//!   of the pre-trade ladder (`solvent_risk::pretrade`): a cross-margin trade that increases no
//!   position is accepted, and one that increases a position of an account in `reduce_only` or
//!   worse (its state from its `state_changed` effects) is refused;
//! - *exact* (cross margin, perpetuals only, linear or inverse, cross or isolated): the auditor's
//!   own standard margin model (`Model::pools`: collateral at the index through the venue's
//!   haircut brackets, loans at full value with their initial rate, uPnL at the mark, initial
//!   margin by the tiered or size-linear rule and the chosen or default leverage) decides the
//!   rest of the ladder: an isolated position the trade increases must cover its own initial
//!   margin, the cross pool its initial margin; a withdrawal must leave equity at or above the
//!   initial margin. Parameters are read from the venue file; figures are computed here, in
//!   `f64`, so a band of 0.001 USD + 1e-9 of the figures around each threshold predicts
//!   *either* (counted as ambiguous);
//! - *open*: portfolio-margin accounts and accounts holding or trading options, beyond the
//!   certain rules (the scenario grid and option margin are not modelled).
//!
//! Each run prints the count of each kind for fills and for withdrawals and transfers.
//!
//! The workload: a few dozen accounts (more appear through deposits and transfers), deposits,
//! withdrawals and transfers in USDT / USDC / BTC, fills on BTCUSDT, ETHUSDT (linear),
//! BTC-PERPETUAL (inverse) and BTC_USDC-PERPETUAL against `external` and between accounts, a
//! mean-reverting random-walk index per underlying quoted by 1-3 sources (bad quotes, single-source
//! periods, jumps awaiting confirmation, time gaps that make every source stale), marks near the
//! index and sometimes outside its band, funding, leverage changes, isolated margin changes,
//! crashes and squeezes that trigger liquidations, insurance cover and ADL, and a sprinkling of
//! malformed commands (unknown accounts, assets and instruments, bad sizes and precisions, stale
//! sequence numbers, time going back).
//!
//! Events per seed: `SOLVENT_SIMULATION_EVENTS` (default 3,000 in a debug build, 100,000 with
//! optimisations); seeds: `SOLVENT_SIMULATION_SEEDS` (a count, default 4, one test per seed below
//! plus any extra seeds run by `many_seeds`). CI: `cargo test -p solvent-engine --test simulation`
//! runs the default (4 seeds); the nightly job is meant to run
//! `SOLVENT_SIMULATION_EVENTS=100000 SOLVENT_SIMULATION_SEEDS=32 cargo test --release -p
//! solvent-engine --test simulation`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::portfolio::{Balance, MarginMode, Portfolio, Position};
use solvent_core::rounding;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{
    DeficitResolution, Effect, LiquidationReason, RejectReason, TransferReason,
};
use solvent_engine::event::{
    Deposit, Envelope, Event, Fill, Funding, IndexPrice, MarkPrice, SetIsolatedMargin, SetLeverage,
    SetMarginMode, Side, Transfer, VolSurface, Withdraw, parse_line, to_line,
};
use solvent_engine::ledger::LedgerAccount;
use solvent_pricing::black76::{Black76, OptionType};
use solvent_risk::account::{Detail, build_report};
use solvent_risk::{AccountState, MarginReport, MarketView};

// ---- the venue as the workload sees it ------------------------------------------------------

const UNDERLYINGS: [&str; 2] = ["BTC", "ETH"];
const START_PRICE: [f64; 2] = [60_000.0, 3_000.0];
const SOURCES: [&str; 3] = ["s1", "s2", "s3"];
const ASSETS: [(&str, u32); 3] = [("USDT", 6), ("USDC", 6), ("BTC", 8)];

struct Contract {
    name: &'static str,
    underlying: usize,
    settlement: &'static str,
    inverse: bool,
    /// Size step as (mantissa, scale).
    step: (i64, u32),
    max_leverage: Option<u32>,
    /// Base units per contract (linear), USD per contract (inverse).
    contract_size: i64,
}

const CONTRACTS: [Contract; 4] = [
    Contract {
        name: "BTCUSDT",
        underlying: 0,
        settlement: "USDT",
        inverse: false,
        step: (1, 3),
        max_leverage: Some(100),
        contract_size: 1,
    },
    Contract {
        name: "ETHUSDT",
        underlying: 1,
        settlement: "USDT",
        inverse: false,
        step: (1, 2),
        max_leverage: Some(50),
        contract_size: 1,
    },
    Contract {
        name: "BTC-PERPETUAL",
        underlying: 0,
        settlement: "BTC",
        inverse: true,
        step: (10, 0),
        max_leverage: None,
        contract_size: 10,
    },
    Contract {
        name: "BTC_USDC-PERPETUAL",
        underlying: 0,
        settlement: "USDC",
        inverse: false,
        step: (1, 3),
        max_leverage: None,
        contract_size: 1,
    },
];

fn contract(name: &str) -> Option<&'static Contract> {
    CONTRACTS.iter().find(|c| c.name == name)
}

/// A listed BTC option of the default venue's series (expiry 27DEC26).
struct OptionContract {
    name: &'static str,
    settlement: &'static str,
    /// Premium and settlement in coin (Deribit's BTC options) rather than USDC.
    inverse: bool,
    strike: f64,
    call: bool,
    /// Size step as (mantissa, scale).
    step: (i64, u32),
}

const OPTION_EXPIRY: &str = "27DEC26";
/// 2026-12-25T08:00:00Z, the venue's expiry time of day on that date, in ms.
const OPTION_EXPIRY_MS: i64 = 1_798_185_600_000;

const OPTIONS: [OptionContract; 4] = [
    OptionContract {
        name: "BTC_USDC-27DEC26-65000-C",
        settlement: "USDC",
        inverse: false,
        strike: 65_000.0,
        call: true,
        step: (1, 2),
    },
    OptionContract {
        name: "BTC_USDC-27DEC26-55000-P",
        settlement: "USDC",
        inverse: false,
        strike: 55_000.0,
        call: false,
        step: (1, 2),
    },
    OptionContract {
        name: "BTC-27DEC26-70000-C",
        settlement: "BTC",
        inverse: true,
        strike: 70_000.0,
        call: true,
        step: (1, 1),
    },
    OptionContract {
        name: "BTC-27DEC26-50000-P",
        settlement: "BTC",
        inverse: true,
        strike: 50_000.0,
        call: false,
        step: (1, 1),
    },
];

fn option_contract(name: &str) -> Option<&'static OptionContract> {
    OPTIONS.iter().find(|o| o.name == name)
}

/// The underlying (index into [`UNDERLYINGS`]) of a contract or option the workload trades.
fn underlying_of(name: &str) -> Option<usize> {
    contract(name)
        .map(|c| c.underlying)
        .or_else(|| option_contract(name).map(|_| 0))
}

/// Black-76 premium per unit of underlying, undiscounted, by the project's own pricer (the
/// workload's quotes, not a check: the engine prices options itself). Zero where the pricer
/// refuses the inputs (an expired option).
fn black76(forward: f64, strike: f64, years: f64, vol: f64, call: bool) -> f64 {
    let right = if call {
        OptionType::Call
    } else {
        OptionType::Put
    };
    Black76::new_checked(forward, strike, years, vol, 1.0).map_or(0.0, |b| b.price(right))
}

fn precision(asset: &str) -> u32 {
    ASSETS
        .iter()
        .find(|(symbol, _)| *symbol == asset)
        .map_or(8, |(_, p)| *p)
}

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `value` rounded down to `scale` decimals (never negative).
fn dec(value: f64, scale: u32) -> Decimal {
    let factor = 10f64.powi(i32::try_from(scale).unwrap());
    let units = (value.max(0.0) * factor).floor();
    Decimal::new(units as i64, scale)
}

fn to_f64(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(0.0)
}

// ---- expected outcomes ------------------------------------------------------------------------

/// What the workload knows about a command's outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Certainly accepted.
    Accept,
    /// Certainly refused for this reason.
    Reject(RejectReason),
    /// Depends on margin figures the workload does not compute.
    Either,
}

// ---- the auditor's reference model ------------------------------------------------------------

/// The auditor: balances replayed from `transfer_applied` effects, positions from fills and
/// liquidation / ADL effects, and what it last saw of each account.
#[derive(Default)]
struct Model {
    /// (ledger account name, asset) -> balance.
    balances: BTreeMap<(String, String), Decimal>,
    /// account -> instrument -> signed size.
    positions: BTreeMap<String, BTreeMap<String, Decimal>>,
    /// Accounts the engine knows (created by an accepted deposit or transfer).
    accounts: BTreeSet<String>,
    /// Per account: (equity, MM, isolated healths) when last checked, and whether it was either
    /// above the liquidation threshold or acted upon then.
    last_seen: BTreeMap<String, (String, bool)>,
    /// State hash after the previous event.
    last_hash: String,
    /// When each (underlying, source) last quoted, in ms: the auditor's view of index staleness.
    quotes: BTreeMap<(String, String), i64>,
    /// The engine's index per underlying after the previous event.
    index_seen: BTreeMap<String, Decimal>,
    /// The time of the latest accepted event, in ms.
    now_ms: i64,
    /// The sequence number of the last accepted event (a refused one takes none).
    last_seq: u64,
    /// (account, instrument) -> (average entry, isolated) of each position in `positions`, booked
    /// by the auditor's own formulas ([`book_change`]).
    lots: BTreeMap<(String, String), (Decimal, bool)>,
    /// The outside world's positions (the other side of fills against `external`):
    /// instrument -> (signed size, average entry).
    external: BTreeMap<String, (Decimal, Decimal)>,
    /// Each account's state as its `state_changed` effects left it (`healthy` at opening).
    states: BTreeMap<String, AccountState>,
    /// Accounts switched to portfolio margin by accepted `set_margin_mode` events.
    portfolio: BTreeSet<String>,
    /// (account, instrument) -> leverage set by accepted `set_leverage` events.
    leverage: BTreeMap<(String, String), Decimal>,
    /// The venue's margin parameters as the auditor reads them.
    rules: Rules,
    /// What the auditor recomputed and predicted.
    counts: Counts,
}

impl Model {
    fn balance(&self, account: &str, asset: &str) -> Decimal {
        self.balances
            .get(&(account.to_owned(), asset.to_owned()))
            .copied()
            .unwrap_or(Decimal::ZERO)
    }

    fn position(&self, account: &str, instrument: &str) -> Decimal {
        self.positions
            .get(account)
            .and_then(|p| p.get(instrument))
            .copied()
            .unwrap_or(Decimal::ZERO)
    }

    /// Whether every source of `underlying` is older than the engine's staleness limit (a stale
    /// index freezes liquidation, DESIGN.md 8.3).
    fn stale(&self, underlying: &str) -> bool {
        let limit = EngineConfig::default().guards.index_stale_ms;
        self.quotes
            .iter()
            .filter(|((u, _), _)| u == underlying)
            .all(|(_, at)| self.now_ms - at > limit)
    }

    fn has_positions(&self, account: &str) -> bool {
        self.positions.get(account).is_some_and(|p| !p.is_empty())
    }

    fn trade(&mut self, account: &str, instrument: &str, signed: Decimal) {
        let book = self.positions.entry(account.to_owned()).or_default();
        let size = book.entry(instrument.to_owned()).or_insert(Decimal::ZERO);
        *size += signed;
        if size.is_zero() {
            book.remove(instrument);
        }
        if book.is_empty() {
            self.positions.remove(account);
        }
    }

    fn borrowing(&self, account: &str) -> bool {
        ASSETS
            .iter()
            .any(|(asset, _)| self.balance(account, asset) < Decimal::ZERO)
    }

    /// Approximate equity in USD from balances only (the workload's sizing, not a check).
    fn rough_equity(&self, account: &str, prices: &[f64; 2]) -> f64 {
        to_f64(self.balance(account, "USDT"))
            + to_f64(self.balance(account, "USDC"))
            + to_f64(self.balance(account, "BTC")) * prices[0]
    }
}

/// The user account a ledger account belongs to (`id` or `id/isolated/INSTRUMENT`), if any.
fn owner(ledger_account: &str) -> Option<&str> {
    match ledger_account {
        "external" | "insurance_fund" | "fees" | "clearing" => None,
        other => Some(other.split("/isolated/").next().unwrap_or(other)),
    }
}

// ---- the auditor's own money: every transfer recomputed ---------------------------------------

/// A contract's terms as the auditor knows them (the workload's tables above).
#[derive(Clone, Copy)]
struct Terms {
    settlement: &'static str,
    underlying: &'static str,
    /// An inverse perpetual: size in USD, P&L in coin.
    inverse: bool,
    option: bool,
    contract_size: Decimal,
}

fn terms(name: &str) -> Option<Terms> {
    contract(name)
        .map(|c| Terms {
            settlement: c.settlement,
            underlying: UNDERLYINGS[c.underlying],
            inverse: c.inverse,
            option: false,
            contract_size: Decimal::from(c.contract_size),
        })
        .or_else(|| {
            option_contract(name).map(|o| Terms {
                settlement: o.settlement,
                underlying: "BTC",
                inverse: false,
                option: true,
                contract_size: Decimal::ONE,
            })
        })
}

/// What a trade of `signed` at `price` does to a position of `size` at `entry` (DESIGN.md 5, 6.1):
/// (size after, entry after, realised P&L, premium), exact, before rounding. A position grows at
/// the size-weighted entry (harmonic, `total / (old/entry + added/price)`, for inverse
/// perpetuals, so the coin P&L is unchanged), shrinks realising `closed x contract size x
/// (price - entry)` (linear) or `closed x (price - entry) / (entry x price)` coin (inverse,
/// `closed x (1/entry - 1/price)`), flips at the trade price. An option's premium
/// `-signed x contract size x price` changes hands at once; it realises nothing.
fn book_change(
    t: Terms,
    size: Decimal,
    entry: Decimal,
    signed: Decimal,
    price: Decimal,
) -> (Decimal, Decimal, Decimal, Decimal) {
    let after = size + signed;
    let premium = if t.option {
        -signed * t.contract_size * price
    } else {
        Decimal::ZERO
    };
    if size.is_zero() {
        return (after, price, Decimal::ZERO, premium);
    }
    if size.is_sign_positive() == signed.is_sign_positive() {
        let entry = if t.inverse {
            after / (size / entry + signed / price)
        } else {
            (size * entry + signed * price) / after
        };
        return (after, entry, Decimal::ZERO, premium);
    }
    let side = if size.is_sign_negative() {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    };
    let closed = signed.abs().min(size.abs()) * side;
    let realised = if t.option {
        Decimal::ZERO
    } else if t.inverse {
        closed * (price - entry) / (entry * price)
    } else {
        closed * t.contract_size * (price - entry)
    };
    let kept = after.is_zero() || after.is_sign_positive() == size.is_sign_positive();
    (after, if kept { entry } else { price }, realised, premium)
}

/// The ledger account a position's cash goes to: its isolated margin, or the wallet.
fn holder(account: &str, instrument: &str, isolated: bool) -> String {
    if isolated {
        format!("{account}/isolated/{instrument}")
    } else {
        account.to_owned()
    }
}

fn reason_name(reason: TransferReason) -> &'static str {
    use TransferReason as R;
    match reason {
        R::Deposit => "deposit",
        R::Withdrawal => "withdrawal",
        R::Transfer => "transfer",
        R::RealisedPnl => "realised_pnl",
        R::Premium => "premium",
        R::Fee => "fee",
        R::Funding => "funding",
        R::Settlement => "settlement",
        R::IsolatedMargin => "isolated_margin",
        R::LiquidationPnl => "liquidation_pnl",
        R::LiquidationFee => "liquidation_fee",
        R::InsuranceCover => "insurance_cover",
        R::Adl => "adl",
        R::TopUp => "top_up",
        R::Reallocation => "reallocation",
        R::CollateralSale => "collateral_sale",
        R::SocialisedLoss => "socialised_loss",
        R::DeficitClaimed => "deficit_claimed",
        R::ClaimUncovered => "claim_uncovered",
        R::Interest => "interest",
    }
}

/// Reasons whose amounts the auditor computes itself; the others (collateral sales, insurance
/// cover, socialised losses, which the simulated venue never takes, top-ups, reallocation,
/// settlement) it takes as the engine reports them, checked by
/// conservation and the replayed balances only.
fn recomputed(reason: TransferReason) -> bool {
    use TransferReason as R;
    !matches!(
        reason,
        R::CollateralSale
            | R::InsuranceCover
            | R::SocialisedLoss
            | R::DeficitClaimed
            | R::ClaimUncovered
            | R::TopUp
            | R::Reallocation
            | R::Settlement
            | R::Interest
    )
}

/// Net signed flows of one event: (ledger account, asset, reason) -> amount received.
#[derive(Default)]
struct Flows(BTreeMap<(String, &'static str, &'static str), Decimal>);

impl Flows {
    fn add(&mut self, account: &str, asset: &str, reason: TransferReason, amount: Decimal) {
        let asset = ASSETS
            .iter()
            .find(|(a, _)| *a == asset)
            .map_or("?", |(a, _)| *a);
        *self
            .0
            .entry((account.to_owned(), asset, reason_name(reason)))
            .or_insert(Decimal::ZERO) += amount;
    }

    /// Money moved as given.
    fn move_money(
        &mut self,
        from: &str,
        to: &str,
        asset: &str,
        amount: Decimal,
        reason: TransferReason,
    ) {
        self.add(from, asset, reason, -amount);
        self.add(to, asset, reason, amount);
    }

    /// A cash flow `received` by `holder` from `counter`, rounded toward the venue (a credit
    /// rounds down, so a payment rounds up: DESIGN.md 4).
    fn settle(
        &mut self,
        holder: &str,
        counter: &str,
        asset: &str,
        received: Decimal,
        reason: TransferReason,
    ) {
        let rounded = rounding::credit(received, precision(asset));
        if !rounded.is_zero() {
            self.move_money(counter, holder, asset, rounded, reason);
        }
    }

    /// What `account` has received of `asset` so far in the event.
    fn net(&self, account: &str, asset: &str) -> Decimal {
        self.0
            .iter()
            .filter(|((a, s, _), _)| a == account && *s == asset)
            .map(|(_, amount)| *amount)
            .sum()
    }
}

/// What the auditor counted over a run.
#[derive(Debug, Default)]
struct Counts {
    /// Transfer effects whose amount the auditor recomputed, and those it took as reported.
    transfers_recomputed: usize,
    transfers_taken: usize,
    /// Liquidation fees equal to the nominal rate, and below it (capped by cash or by the
    /// gradual-liquidation cap, checked as a bound).
    liquidation_fees_nominal: usize,
    liquidation_fees_capped: usize,
    /// Fills and outflows (withdrawals, transfers) by how their outcome was known.
    fills: Predictions,
    outflows: Predictions,
}

/// How an event's outcome was known before the engine applied it.
#[derive(Debug, Default)]
struct Predictions {
    events: usize,
    /// Certain without margin figures (validation, balances, state, rules 1-2 of the pre-trade
    /// ladder).
    certain: usize,
    /// From the auditor's own margin model, outside the tolerance band.
    exact: usize,
    /// Inside the tolerance band around the threshold: either outcome accepted.
    ambiguous: usize,
    /// Not predicted: portfolio margin or options, beyond the certain rules.
    open: usize,
}

impl Predictions {
    fn count(&mut self, basis: Basis) {
        self.events += 1;
        match basis {
            Basis::Certain => self.certain += 1,
            Basis::Exact => self.exact += 1,
            Basis::Ambiguous => self.ambiguous += 1,
            Basis::Open => self.open += 1,
        }
    }
}

impl Model {
    fn lot(&self, account: &str, instrument: &str) -> Option<(Decimal, bool)> {
        self.lots
            .get(&(account.to_owned(), instrument.to_owned()))
            .copied()
    }

    /// Books a trade on an account's position by [`book_change`]; its cash settles, rounded,
    /// into `flows` (realised P&L under `reason`, premium under `premium`), and a closed isolated
    /// position returns what its margin holds to the wallet.
    #[allow(clippy::too_many_arguments, reason = "a test helper")]
    fn trade_at(
        &mut self,
        flows: &mut Flows,
        account: &str,
        instrument: &str,
        signed: Decimal,
        price: Decimal,
        reason: TransferReason,
    ) -> Result<(), String> {
        let t =
            terms(instrument).ok_or_else(|| format!("the auditor does not know {instrument}"))?;
        let size = self.position(account, instrument);
        let (entry, isolated) = self.lot(account, instrument).unwrap_or((price, false));
        let (after, entry, realised, premium) = book_change(t, size, entry, signed, price);
        self.trade(account, instrument, signed);
        let key = (account.to_owned(), instrument.to_owned());
        if after.is_zero() {
            self.lots.remove(&key);
        } else {
            self.lots.insert(key, (entry, isolated));
        }
        let cash = holder(account, instrument, isolated);
        flows.settle(&cash, "clearing", t.settlement, realised, reason);
        flows.settle(
            &cash,
            "clearing",
            t.settlement,
            premium,
            TransferReason::Premium,
        );
        if isolated && after.is_zero() {
            let left = self.balance(&cash, t.settlement) + flows.net(&cash, t.settlement);
            flows.settle(
                account,
                &cash,
                t.settlement,
                left,
                TransferReason::IsolatedMargin,
            );
        }
        Ok(())
    }

    /// The outside world's side of a trade, through clearing against `external` (its realised
    /// P&L is `realised_pnl` whatever the other side's reason: a liquidation is, for the
    /// outside world, an ordinary trade).
    fn trade_external(
        &mut self,
        flows: &mut Flows,
        instrument: &str,
        signed: Decimal,
        price: Decimal,
    ) -> Result<(), String> {
        let t =
            terms(instrument).ok_or_else(|| format!("the auditor does not know {instrument}"))?;
        let (size, entry) = self
            .external
            .get(instrument)
            .copied()
            .unwrap_or((Decimal::ZERO, price));
        let (after, entry, realised, premium) = book_change(t, size, entry, signed, price);
        if after.is_zero() {
            self.external.remove(instrument);
        } else {
            self.external.insert(instrument.to_owned(), (after, entry));
        }
        flows.settle(
            "external",
            "clearing",
            t.settlement,
            realised,
            TransferReason::RealisedPnl,
        );
        flows.settle(
            "external",
            "clearing",
            t.settlement,
            premium,
            TransferReason::Premium,
        );
        Ok(())
    }

    /// The transfers an accepted event must produce, recomputed from the auditor's book and the
    /// event (and from the liquidation and ADL effects' own price, size and fee); the book moves
    /// with them. Transfers of reasons the auditor does not recompute are taken as reported, in
    /// their place, so that running balances stay right.
    #[allow(clippy::too_many_lines, reason = "one case per event and effect")]
    fn expected_flows(
        &mut self,
        engine: &Engine,
        event: &Event,
        effects: &[Effect],
    ) -> Result<Flows, String> {
        let mut flows = Flows::default();
        match event {
            Event::Deposit(e) => flows.move_money(
                "external",
                &e.account,
                &e.asset,
                e.amount.value(),
                TransferReason::Deposit,
            ),
            Event::Withdraw(e) => flows.move_money(
                &e.account,
                "external",
                &e.asset,
                e.amount.value(),
                TransferReason::Withdrawal,
            ),
            Event::Transfer(e) => flows.move_money(
                &e.from,
                &e.to,
                &e.asset,
                e.amount.value(),
                TransferReason::Transfer,
            ),
            Event::Fill(fill) => {
                let signed = match fill.side {
                    Side::Buy => fill.size.value(),
                    Side::Sell => -fill.size.value(),
                };
                let price = fill.price.value();
                self.trade_at(
                    &mut flows,
                    &fill.account,
                    &fill.instrument,
                    signed,
                    price,
                    TransferReason::RealisedPnl,
                )?;
                let settlement = terms(&fill.instrument).map_or("?", |t| t.settlement);
                flows.settle(
                    &fill.account,
                    "fees",
                    settlement,
                    -fill.fee.value(),
                    TransferReason::Fee,
                );
                if fill.counterparty == "external" {
                    self.trade_external(&mut flows, &fill.instrument, -signed, price)?;
                } else {
                    self.trade_at(
                        &mut flows,
                        &fill.counterparty,
                        &fill.instrument,
                        -signed,
                        price,
                        TransferReason::RealisedPnl,
                    )?;
                }
            }
            Event::Funding(Funding { instrument, rate }) => {
                let t = terms(instrument).ok_or("funding of an unknown contract")?;
                let mark = mark_of(engine, instrument).ok_or("funding without a mark")?;
                // A long pays `size x contract size x mark x rate` (linear) or
                // `size x rate / mark` coin (inverse); shorts receive it.
                let payment = |size: Decimal| {
                    if t.inverse {
                        size * rate / mark
                    } else {
                        size * t.contract_size * mark * rate
                    }
                };
                let holders: Vec<(String, Decimal)> = self
                    .positions
                    .iter()
                    .filter_map(|(id, book)| book.get(instrument).map(|size| (id.clone(), *size)))
                    .collect();
                let before = flows.net("clearing", t.settlement);
                for (id, size) in holders {
                    let isolated = self.lot(&id, instrument).is_some_and(|(_, i)| i);
                    flows.settle(
                        &holder(&id, instrument, isolated),
                        "clearing",
                        t.settlement,
                        -payment(size),
                        TransferReason::Funding,
                    );
                }
                if let Some((size, _)) = self.external.get(instrument) {
                    flows.settle(
                        "external",
                        "clearing",
                        t.settlement,
                        -payment(*size),
                        TransferReason::Funding,
                    );
                }
                // Payers round up, receivers down: what stays in clearing is the venue's fee.
                let residual = flows.net("clearing", t.settlement) - before;
                if residual > Decimal::ZERO {
                    flows.move_money(
                        "clearing",
                        "fees",
                        t.settlement,
                        residual,
                        TransferReason::Fee,
                    );
                }
            }
            Event::SetIsolatedMargin(e) => {
                let t = terms(&e.instrument).ok_or("isolated margin of an unknown contract")?;
                let key = (e.account.clone(), e.instrument.clone());
                let isolated_account = holder(&e.account, &e.instrument, true);
                let current = match self.lots.get(&key) {
                    Some((_, true)) => self.balance(&isolated_account, t.settlement),
                    _ => Decimal::ZERO,
                };
                let target = e.amount.value();
                flows.settle(
                    &isolated_account,
                    &e.account,
                    t.settlement,
                    target - current,
                    TransferReason::IsolatedMargin,
                );
                if let Some(lot) = self.lots.get_mut(&key) {
                    lot.1 = !target.is_zero();
                }
            }
            Event::SetLeverage(e) => {
                self.leverage
                    .insert((e.account.clone(), e.instrument.clone()), e.leverage);
            }
            Event::SetMarginMode(e) => {
                if e.mode == MarginMode::Portfolio {
                    self.portfolio.insert(e.account.clone());
                } else {
                    self.portfolio.remove(&e.account);
                }
            }
            _ => {}
        }
        let fee_rate = EngineConfig::default().liquidation.fee_rate;
        for effect in effects {
            match effect {
                Effect::TransferApplied {
                    from,
                    to,
                    asset,
                    amount,
                    reason,
                } if !recomputed(*reason) => {
                    flows.move_money(from, to, asset, amount.value(), *reason);
                }
                Effect::Liquidation {
                    account,
                    instrument,
                    size,
                    price,
                    fee,
                    reason,
                } => {
                    let t = terms(instrument).ok_or("liquidation of an unknown contract")?;
                    let (size, price, fee) = (size.value(), price.value(), fee.value());
                    // A step closes at the mark (DESIGN.md 8.2).
                    if !t.option && Some(price) != mark_of(engine, instrument) {
                        return Err(format!(
                            "invariant 10: {account} liquidated {instrument} at {price}, the mark is {:?}",
                            mark_of(engine, instrument)
                        ));
                    }
                    let held = self.position(account, instrument);
                    let isolated = self.lot(account, instrument).is_some_and(|(_, i)| i);
                    if size.is_zero()
                        || size.is_sign_positive() == held.is_sign_positive()
                        || size.abs() > held.abs()
                    {
                        return Err(format!(
                            "invariant 10: a liquidation of {size} {instrument} against {account}'s {held}"
                        ));
                    }
                    self.trade_at(
                        &mut flows,
                        account,
                        instrument,
                        size,
                        price,
                        TransferReason::LiquidationPnl,
                    )?;
                    self.trade_external(&mut flows, instrument, -size, price)?;
                    // The fee: the nominal rate on the step's notional, rounded down, at most what
                    // the paying pool holds (and, in the cross pool, a cap from its figures).
                    let notional = if t.inverse {
                        size.abs() / price
                    } else {
                        size.abs() * t.contract_size * price
                    };
                    let nominal = rounding::credit(notional * fee_rate, precision(t.settlement));
                    let payer = holder(account, instrument, isolated && size.abs() < held.abs());
                    let cash = (self.balance(&payer, t.settlement)
                        + flows.net(&payer, t.settlement))
                    .max(Decimal::ZERO);
                    let bound = match reason {
                        LiquidationReason::BankruptBeyondOppositeInterest => Decimal::ZERO,
                        _ => nominal.min(cash),
                    };
                    let exact = isolated || bound.is_zero();
                    if fee > bound || (exact && fee != bound) || fee.is_sign_negative() {
                        return Err(format!(
                            "invariant 10: {account}'s liquidation fee on {size} {instrument} at {price} is {fee}; the auditor computes {} at most {bound} (nominal {nominal}, cash {cash})",
                            if exact { "exactly" } else { "" }
                        ));
                    }
                    if fee == nominal {
                        self.counts.liquidation_fees_nominal += 1;
                    } else {
                        self.counts.liquidation_fees_capped += 1;
                    }
                    if !fee.is_zero() {
                        flows.move_money(
                            &payer,
                            "insurance_fund",
                            t.settlement,
                            fee,
                            TransferReason::LiquidationFee,
                        );
                    }
                }
                Effect::Adl {
                    account,
                    counterparty,
                    instrument,
                    size,
                    price,
                } => {
                    let (size, price) = (size.value(), price.value());
                    self.trade_at(
                        &mut flows,
                        account,
                        instrument,
                        -size,
                        price,
                        TransferReason::Adl,
                    )?;
                    self.trade_at(
                        &mut flows,
                        counterparty,
                        instrument,
                        size,
                        price,
                        TransferReason::Adl,
                    )?;
                }
                Effect::StateChanged { account, from, to } => {
                    let known = self
                        .states
                        .get(account)
                        .copied()
                        .unwrap_or(AccountState::Healthy);
                    if known != *from {
                        return Err(format!(
                            "invariant 10: {account} changes from {from:?}, the auditor last saw {known:?}"
                        ));
                    }
                    self.states.insert(account.clone(), *to);
                }
                _ => {}
            }
        }
        Ok(flows)
    }
}

/// Compares the engine's transfers of one event with the auditor's recomputation, per ledger
/// account, asset and reason, to the unit of the asset's precision.
fn compare_flows(expected: &Flows, effects: &[Effect], counts: &mut Counts) -> Result<(), String> {
    let mut actual = Flows::default();
    for effect in effects {
        if let Effect::TransferApplied {
            from,
            to,
            asset,
            amount,
            reason,
        } = effect
        {
            actual.move_money(from, to, asset, amount.value(), *reason);
            if recomputed(*reason) {
                counts.transfers_recomputed += 1;
            } else {
                counts.transfers_taken += 1;
            }
        }
    }
    let keys: BTreeSet<&(String, &str, &str)> = expected.0.keys().chain(actual.0.keys()).collect();
    for key in keys {
        let mine = expected.0.get(key).copied().unwrap_or(Decimal::ZERO);
        let theirs = actual.0.get(key).copied().unwrap_or(Decimal::ZERO);
        if mine != theirs {
            let (account, asset, reason) = key;
            return Err(format!(
                "invariant 10: {account} receives {theirs} {asset} as {reason} in the engine's transfers; the auditor computes {mine}"
            ));
        }
    }
    Ok(())
}

/// The mark the engine values a perpetual at: the given (clamped) mark, else the index.
fn mark_of(engine: &Engine, instrument: &str) -> Option<Decimal> {
    let market = engine.market();
    market.mark.get(instrument).map(|p| p.value()).or_else(|| {
        let t = terms(instrument)?;
        market.index.get(t.underlying).map(|p| p.value())
    })
}

// ---- the auditor's own margin model: accept or refuse, predicted ------------------------------

/// A contract's margin rule as the auditor reads it from the venue file (the parameters only;
/// the requirement is computed here).
enum Rule {
    /// Brackets of position value: (upper bound, highest leverage); IM = value / min(leverage,
    /// bracket maximum), the default leverage when none is chosen (DESIGN.md 6.3).
    Tiered {
        brackets: Vec<(f64, f64)>,
        default_leverage: Option<f64>,
    },
    /// IM rate = base + size in coin x per_coin, capped (Deribit, DESIGN.md 6.3).
    SizeLinear { base: f64, per_coin: f64, cap: f64 },
    /// Options: margined by the Deribit formulas, not modelled here.
    Other,
}

/// An asset's haircut brackets (upper bound in USD, ratio) and the initial rate on a loan of it.
type Haircuts = (Vec<(f64, f64)>, f64);

/// The venue's parameters the auditor's margin model needs.
#[derive(Default)]
struct Rules {
    contracts: BTreeMap<&'static str, Rule>,
    /// Per asset: haircut brackets (upper bound in USD, ratio), and the initial rate on a loan.
    collateral: BTreeMap<&'static str, Haircuts>,
}

impl Rules {
    fn of(venue: &Venue) -> Self {
        use solvent_core::venue::MarginRule;
        let f = to_f64;
        let mut contracts = BTreeMap::new();
        for c in &CONTRACTS {
            let instrument = venue.instrument(c.name).unwrap();
            assert_eq!(
                instrument.contract_size,
                Decimal::from(c.contract_size),
                "{}",
                c.name
            );
            let rule = match instrument.margin.as_ref() {
                MarginRule::Tiered { tiers, .. } => Rule::Tiered {
                    brackets: tiers
                        .iter()
                        .map(|t| (t.up_to.map_or(f64::INFINITY, f), f(t.max_leverage)))
                        .collect(),
                    default_leverage: instrument.default_leverage.map(f),
                },
                MarginRule::SizeLinear {
                    initial_base,
                    rate_per_unit,
                    max_rate,
                    ..
                } => Rule::SizeLinear {
                    base: f(*initial_base),
                    per_coin: f(*rate_per_unit),
                    cap: f(*max_rate),
                },
                _ => Rule::Other,
            };
            contracts.insert(c.name, rule);
        }
        let collateral = ASSETS
            .iter()
            .map(|(asset, _)| {
                let schedule = venue.collateral.get(*asset).unwrap();
                let brackets = schedule
                    .tiers
                    .iter()
                    .map(|t| (t.up_to_usd.map_or(f64::INFINITY, f), f(t.ratio)))
                    .collect();
                let loan = schedule.borrow.as_ref().map_or(0.0, |b| f(b.initial_rate));
                (*asset, (brackets, loan))
            })
            .collect();
        Self {
            contracts,
            collateral,
        }
    }
}

/// One position of an account as the auditor values it.
struct Holding {
    name: String,
    size: f64,
    entry: f64,
    /// Its isolated margin, in the settlement asset, when it has one.
    isolated: Option<f64>,
}

/// An account as the auditor values it: wallet balances and positions, in `f64` (risk math).
struct Sheet {
    wallet: BTreeMap<&'static str, f64>,
    holdings: Vec<Holding>,
}

/// The cross pool's equity and initial margin, and each isolated position's, in USD.
struct Pools {
    equity: f64,
    initial: f64,
    /// (instrument, isolated equity, initial margin).
    isolated: Vec<(String, f64, f64)>,
}

/// How a prediction was reached (see [`Predictions`]).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Basis {
    Certain,
    Exact,
    Ambiguous,
    Open,
}

/// Half-width of the band around a margin threshold inside which the auditor predicts nothing:
/// its `f64` figures differ from the engine's exact, rounded ones by far less (each of a few
/// dozen figures is rounded to 1e-6 USD; `f64` carries 15 digits).
fn band(scale: f64) -> f64 {
    1e-3 + 1e-9 * scale
}

fn usd(engine: &Engine, asset: &str) -> Option<f64> {
    match asset {
        "USDT" | "USDC" => Some(1.0),
        other => engine.market().index.get(other).map(|p| to_f64(p.value())),
    }
}

impl Model {
    /// The account as the auditor holds it, or `None` when its margin is beyond the model
    /// (portfolio margin, options).
    fn sheet(&self, id: &str) -> Option<Sheet> {
        if self.portfolio.contains(id) {
            return None;
        }
        let wallet = ASSETS
            .iter()
            .map(|(asset, _)| (*asset, to_f64(self.balance(id, asset))))
            .collect();
        let mut holdings = Vec::new();
        for (name, size) in self.positions.get(id).into_iter().flatten() {
            let t = terms(name)?;
            if t.option {
                return None;
            }
            let (entry, isolated) = self.lot(id, name)?;
            holdings.push(Holding {
                name: name.clone(),
                size: to_f64(*size),
                entry: to_f64(entry),
                isolated: isolated
                    .then(|| to_f64(self.balance(&holder(id, name, true), t.settlement))),
            });
        }
        Some(Sheet { wallet, holdings })
    }

    /// Standard cross margin (DESIGN.md 6.2, 6.3, 6.6) by the auditor's own formulas: collateral
    /// at the index through the haircut brackets, a loan at full value with its own initial
    /// margin; each position's uPnL at the mark; its initial margin by its rule, in the cross
    /// pool or against its own isolated margin.
    fn pools(&self, engine: &Engine, id: &str, sheet: &Sheet) -> Option<Pools> {
        let mut equity = 0.0;
        let mut initial = 0.0;
        for (asset, amount) in &sheet.wallet {
            let value = amount * usd(engine, asset)?;
            let (brackets, loan_rate) = self.rules.collateral.get(asset)?;
            if value < 0.0 {
                equity += value;
                initial += -value * loan_rate;
                continue;
            }
            let (mut floor, mut left) = (0.0, value);
            for (up_to, ratio) in brackets {
                let inside = left.min(up_to - floor);
                equity += inside * ratio;
                left -= inside;
                floor = *up_to;
                if left <= 0.0 {
                    break;
                }
            }
        }
        let mut isolated = Vec::new();
        for h in &sheet.holdings {
            let t = terms(&h.name)?;
            let mark = to_f64(mark_of(engine, &h.name)?);
            let settle_usd = usd(engine, t.settlement)?;
            let cs = to_f64(t.contract_size);
            let (upnl, value, coin) = if t.inverse {
                (
                    h.size * (1.0 / h.entry - 1.0 / mark),
                    h.size.abs() / mark,
                    h.size.abs() / mark,
                )
            } else {
                (
                    h.size * cs * (mark - h.entry),
                    h.size.abs() * cs * mark,
                    h.size.abs() * cs,
                )
            };
            let im = match self.rules.contracts.get(h.name.as_str())? {
                Rule::Tiered {
                    brackets,
                    default_leverage,
                } => {
                    let max = bracket_maximum(brackets, value)?;
                    let chosen = self.chosen_leverage(id, &h.name, *default_leverage);
                    value / chosen.map_or(max, |c| c.min(max))
                }
                Rule::SizeLinear {
                    base,
                    per_coin,
                    cap,
                } => value * (base + coin * per_coin).min(*cap),
                Rule::Other => return None,
            };
            match h.isolated {
                Some(margin) => isolated.push((
                    h.name.clone(),
                    (margin + upnl) * settle_usd,
                    im * settle_usd,
                )),
                None => {
                    equity += upnl * settle_usd;
                    initial += im * settle_usd;
                }
            }
        }
        Some(Pools {
            equity,
            initial,
            isolated,
        })
    }

    /// Whether one side of a fill passes the pre-trade rule (`solvent_risk::pretrade`, reimplemented):
    /// a cross-margin trade that increases no position is accepted; an account in `reduce_only`
    /// or worse may not increase one; an isolated position the trade increases must cover its own
    /// initial margin, and the cross pool its initial margin.
    #[allow(clippy::too_many_arguments, reason = "a test helper")]
    fn predict_side(
        &self,
        engine: &Engine,
        id: &str,
        instrument: &str,
        signed: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> (Expect, Basis) {
        let before = self.position(id, instrument);
        let after = before + signed;
        let increased = after.abs() > before.abs()
            || (!after.is_zero()
                && !before.is_zero()
                && after.is_sign_positive() != before.is_sign_positive());
        let cross = !self.portfolio.contains(id);
        if !increased && cross {
            return (Expect::Accept, Basis::Certain);
        }
        let state = self
            .states
            .get(id)
            .copied()
            .unwrap_or(AccountState::Healthy);
        if increased && state >= AccountState::ReduceOnly {
            return (Expect::Reject(RejectReason::ReduceOnly), Basis::Certain);
        }
        let Some(t) = terms(instrument) else {
            return (Expect::Either, Basis::Open);
        };
        let Some(mut sheet) = self.sheet(id).filter(|_| !t.option) else {
            return (Expect::Either, Basis::Open);
        };
        // The trade booked on the auditor's copy, as the ledger would book it.
        let (entry, _) = self.lot(id, instrument).unwrap_or((price, false));
        let (size, entry, realised, _) = book_change(t, before, entry, signed, price);
        let realised = to_f64(rounding::credit(realised, precision(t.settlement)));
        *sheet.wallet.entry(t.settlement).or_insert(0.0) +=
            to_f64(rounding::credit(-fee, precision(t.settlement)));
        match sheet.holdings.iter().position(|h| h.name == instrument) {
            Some(at) if size.is_zero() => {
                let gone = sheet.holdings.remove(at);
                *sheet.wallet.entry(t.settlement).or_insert(0.0) +=
                    realised + gone.isolated.unwrap_or(0.0);
            }
            Some(at) => {
                let h = &mut sheet.holdings[at];
                h.size = to_f64(size);
                h.entry = to_f64(entry);
                match h.isolated.as_mut() {
                    Some(margin) => *margin += realised,
                    None => *sheet.wallet.entry(t.settlement).or_insert(0.0) += realised,
                }
            }
            None => sheet.holdings.push(Holding {
                name: instrument.to_owned(),
                size: to_f64(size),
                entry: to_f64(entry),
                isolated: None,
            }),
        }
        let Some(pools) = self.pools(engine, id, &sheet) else {
            return (Expect::Either, Basis::Open);
        };
        // Rule 5 first: an isolated position the trade increases covers its own margin.
        if increased
            && let Some((_, equity, initial)) =
                pools.isolated.iter().find(|(n, _, _)| n == instrument)
        {
            let verdict = judge(
                &[(equity - initial, equity.abs() + initial)],
                RejectReason::InsufficientInitialMargin,
            );
            if verdict.0 != Expect::Accept {
                return verdict;
            }
        }
        // Then the bracket: a position the trade increases may not stand at a leverage above
        // the maximum of the bracket its value falls in.
        if increased && cross {
            match self.bracket_verdict(engine, id, instrument, &sheet) {
                Some((Expect::Accept, _)) => {}
                Some(verdict) => return verdict,
                None => return (Expect::Either, Basis::Open),
            }
        }
        judge(
            &[(
                pools.equity - pools.initial,
                pools.equity.abs() + pools.initial,
            )],
            RejectReason::InsufficientInitialMargin,
        )
    }

    /// The leverage `id` chose for `instrument` by accepted `set_leverage` events, else the
    /// contract's default.
    fn chosen_leverage(&self, id: &str, instrument: &str, default: Option<f64>) -> Option<f64> {
        self.leverage
            .get(&(id.to_owned(), instrument.to_owned()))
            .map(|l| to_f64(*l))
            .or(default)
    }

    /// Whether `instrument`'s position in `sheet` stands at a leverage (chosen, or the default)
    /// above the maximum of the bracket its value falls in: `invalid_leverage` then; ambiguous
    /// at a bracket's bound; `None` beyond the model.
    fn bracket_verdict(
        &self,
        engine: &Engine,
        id: &str,
        instrument: &str,
        sheet: &Sheet,
    ) -> Option<(Expect, Basis)> {
        let Some(h) = sheet.holdings.iter().find(|h| h.name == instrument) else {
            return Some((Expect::Accept, Basis::Certain));
        };
        let Rule::Tiered {
            brackets,
            default_leverage,
        } = self.rules.contracts.get(instrument)?
        else {
            return Some((Expect::Accept, Basis::Certain));
        };
        let t = terms(instrument)?;
        let mark = to_f64(mark_of(engine, instrument)?);
        let value = if t.inverse {
            h.size.abs() / mark
        } else {
            h.size.abs() * to_f64(t.contract_size) * mark
        };
        if brackets
            .iter()
            .any(|(up_to, _)| (value - up_to).abs() <= band(*up_to))
        {
            return Some((Expect::Either, Basis::Ambiguous));
        }
        let max = bracket_maximum(brackets, value)?;
        let chosen = self.chosen_leverage(id, instrument, *default_leverage);
        Some(match chosen {
            Some(chosen) if chosen > max => {
                (Expect::Reject(RejectReason::InvalidLeverage), Basis::Exact)
            }
            _ => (Expect::Accept, Basis::Exact),
        })
    }

    /// Whether taking `amount` of `asset` out of `id`'s wallet passes the pre-trade rule: equity
    /// afterwards at least the initial margin (and not negative) (`None` beyond the model).
    fn predict_outflow(
        &self,
        engine: &Engine,
        id: &str,
        asset: &str,
        amount: Decimal,
    ) -> (Expect, Basis) {
        let Some(mut sheet) = self.sheet(id) else {
            return (Expect::Either, Basis::Open);
        };
        let Some(held) = ASSETS.iter().find(|(a, _)| *a == asset).map(|(a, _)| *a) else {
            return (Expect::Either, Basis::Open);
        };
        *sheet.wallet.entry(held).or_insert(0.0) -= to_f64(amount);
        let Some(pools) = self.pools(engine, id, &sheet) else {
            return (Expect::Either, Basis::Open);
        };
        judge(
            &[(
                pools.equity - pools.initial,
                pools.equity.abs() + pools.initial,
            )],
            RejectReason::ExceedsWithdrawable,
        )
    }

    /// The auditor's prediction for an event the workload could not decide (`Expect::Either`).
    fn predict(&self, engine: &Engine, event: &Event, expect: Expect) -> (Expect, Option<Basis>) {
        let certain = |e: Expect| (e, Some(Basis::Certain));
        match event {
            Event::Fill(fill) => {
                if expect != Expect::Either {
                    return certain(expect);
                }
                // Both sides must be known before the pre-trade rule looks at either.
                if fill.counterparty != "external" && !self.accounts.contains(&fill.counterparty) {
                    return certain(Expect::Reject(RejectReason::UnknownAccount));
                }
                let signed = match fill.side {
                    Side::Buy => fill.size.value(),
                    Side::Sell => -fill.size.value(),
                };
                let price = fill.price.value();
                let (mine, basis) = self.predict_side(
                    engine,
                    &fill.account,
                    &fill.instrument,
                    signed,
                    price,
                    fill.fee.value(),
                );
                if mine != Expect::Accept || fill.counterparty == "external" {
                    return (mine, Some(basis));
                }
                let (theirs, other) = self.predict_side(
                    engine,
                    &fill.counterparty,
                    &fill.instrument,
                    -signed,
                    price,
                    Decimal::ZERO,
                );
                let basis = match (basis, other) {
                    (_, Basis::Open) | (Basis::Open, _) => Basis::Open,
                    (_, Basis::Ambiguous) | (Basis::Ambiguous, _) => Basis::Ambiguous,
                    (Basis::Exact, _) | (_, Basis::Exact) => Basis::Exact,
                    _ => Basis::Certain,
                };
                (theirs, Some(basis))
            }
            Event::Withdraw(Withdraw {
                account,
                asset,
                amount,
            })
            | Event::Transfer(Transfer {
                from: account,
                asset,
                amount,
                ..
            }) => {
                if expect != Expect::Either {
                    return certain(expect);
                }
                let (e, basis) = self.predict_outflow(engine, account, asset, amount.value());
                (e, Some(basis))
            }
            _ => (expect, None),
        }
    }
}

/// Accepted when every (margin, scale) is clearly positive; refused for `reason` at the first
/// clearly negative one (checked in the engine's order); either inside the band.
/// The highest leverage of the bracket `value` falls in (the last bracket beyond them all).
fn bracket_maximum(brackets: &[(f64, f64)], value: f64) -> Option<f64> {
    brackets
        .iter()
        .find(|(up_to, _)| value <= *up_to)
        .or(brackets.last())
        .map(|(_, max)| *max)
}

fn judge(verdicts: &[(f64, f64)], reason: RejectReason) -> (Expect, Basis) {
    for (margin, scale) in verdicts {
        if !margin.is_finite() {
            return (Expect::Either, Basis::Open);
        }
        if margin.abs() <= band(*scale) {
            return (Expect::Either, Basis::Ambiguous);
        }
        if *margin < 0.0 {
            return (Expect::Reject(reason), Basis::Exact);
        }
    }
    (Expect::Accept, Basis::Exact)
}

/// The margin report of one engine account, built here from the engine's public state with
/// `solvent_risk` (the engine's own valuation is private).
fn report_of(engine: &Engine, id: &str) -> Option<MarginReport> {
    use solvent_engine::ledger::LedgerAccount;
    let account = engine.accounts().get(id)?;
    let venue = engine.venue();
    let wallet = LedgerAccount::Wallet(id.into());
    let balances = venue
        .assets
        .iter()
        .filter_map(|(symbol, asset)| {
            let amount = engine.ledger().balance(&wallet, symbol);
            (!amount.is_zero()).then(|| Balance {
                asset: asset.clone(),
                amount: Amount(amount),
            })
        })
        .collect();
    let positions = account
        .positions
        .values()
        .map(|p| Position {
            instrument: Arc::clone(&p.instrument),
            size: Quantity(p.size),
            entry_price: Price(p.entry),
            isolated_margin: p.isolated.then(|| {
                Amount(engine.ledger().balance(
                    &LedgerAccount::Isolated(id.into(), p.instrument.name.as_str().into()),
                    &p.instrument.settlement,
                ))
            }),
            leverage: account.leverage.get(p.instrument.name.as_str()).copied(),
        })
        .collect();
    let portfolio = Portfolio {
        account: id.into(),
        mode: account.mode,
        balances,
        positions,
        settlement_asset: venue.asset(&venue.settlement_asset).ok()?.clone(),
        market: None,
        accrued_interest: Vec::new(),
    };
    let view = MarketView::new(venue, engine.market()).ok()?;
    build_report(&portfolio, &view, Detail::Figures).ok()
}

/// Checks one event's reply; `Err` names the broken invariant.
#[allow(clippy::too_many_lines, reason = "one flat ladder of checks")]
fn audit(
    engine: &Engine,
    model: &mut Model,
    envelope: &Envelope,
    expect: Expect,
    effects: &[Effect],
) -> Result<(), String> {
    let hash = engine.state_hash();
    let rejected = match effects {
        [Effect::Rejected { reason, .. }] => Some(*reason),
        _ => None,
    };
    if effects.len() > 1 && effects.iter().any(|e| matches!(e, Effect::Rejected { .. })) {
        return Err("a rejected effect among others".to_owned());
    }
    // Expected outcome.
    match (expect, rejected) {
        (Expect::Accept, Some(reason)) => {
            return Err(format!("expected acceptance, got rejection {reason:?}"));
        }
        (Expect::Reject(want), got) if got != Some(want) => {
            return Err(format!("expected rejection {want:?}, got {got:?}"));
        }
        _ => {}
    }
    // 3. A refusal changes nothing.
    if rejected.is_some() {
        if hash != model.last_hash {
            return Err("invariant 3: a rejected event changed the state hash".to_owned());
        }
        return Ok(());
    }
    model.now_ms = envelope.ts.as_millisecond();
    model.last_seq = envelope.seq;
    if let Event::IndexPrice(e) = &envelope.event {
        model.quotes.insert(
            (
                e.underlying.clone(),
                e.source.clone().unwrap_or_else(|| "default".to_owned()),
            ),
            model.now_ms,
        );
    }
    // 6. Who held positions during the event (before it, or through its own fill).
    let mut held: BTreeSet<String> = model.positions.keys().cloned().collect();
    if let Event::Fill(fill) = &envelope.event {
        held.insert(fill.account.clone());
        held.insert(fill.counterparty.clone());
    }
    // 7 and 10. Positions and the transfers they make: the event's own, then liquidation and
    // ADL effects, booked and recomputed by the auditor.
    let expected = model.expected_flows(engine, &envelope.event, effects)?;
    let mut acted: BTreeSet<String> = BTreeSet::new();
    let mut adl_counterparties: BTreeSet<String> = BTreeSet::new();
    let mut mentioned: BTreeSet<String> = BTreeSet::new();
    for effect in effects {
        match effect {
            Effect::TransferApplied {
                from,
                to,
                asset,
                amount,
                reason,
            } => {
                // 2. Replay on the auditor's balances.
                if amount.value() <= Decimal::ZERO || from == to {
                    return Err(format!("invariant 2: malformed transfer {effect:?}"));
                }
                *model
                    .balances
                    .entry((from.clone(), asset.clone()))
                    .or_insert(Decimal::ZERO) -= amount.value();
                *model
                    .balances
                    .entry((to.clone(), asset.clone()))
                    .or_insert(Decimal::ZERO) += amount.value();
                // 6. The payer of a loss-sharing transfer holds a position.
                use solvent_engine::effect::TransferReason as R;
                if matches!(reason, R::Adl | R::LiquidationPnl | R::InsuranceCover)
                    && let Some(payer) = owner(from)
                    && !held.contains(payer)
                {
                    return Err(format!(
                        "invariant 6: {payer} holds no position but pays {effect:?}"
                    ));
                }
                for name in [from, to] {
                    if let Some(account) = owner(name) {
                        mentioned.insert(account.to_owned());
                    }
                }
                // Selling an account's collateral to repay what it owes is a liquidation step.
                if matches!(reason, R::CollateralSale)
                    && let Some(account) = owner(from)
                {
                    acted.insert(account.to_owned());
                }
            }
            Effect::AccountUpdated {
                account,
                initial_margin,
                maintenance_margin,
                ..
            } => {
                // 4. IM >= MM >= 0 as reported.
                if initial_margin < maintenance_margin
                    || maintenance_margin.value().is_sign_negative()
                        && !maintenance_margin.is_zero()
                {
                    return Err(format!("invariant 4: {effect:?}"));
                }
                mentioned.insert(account.clone());
            }
            Effect::Liquidation { account, .. } => {
                acted.insert(account.clone());
                mentioned.insert(account.clone());
            }
            Effect::LiquidationDeferred { account, .. } => {
                acted.insert(account.clone());
                mentioned.insert(account.clone());
            }
            Effect::Adl {
                account,
                counterparty,
                ..
            } => {
                adl_counterparties.insert(counterparty.clone());
                acted.insert(account.clone());
                mentioned.insert(account.clone());
                mentioned.insert(counterparty.clone());
            }
            Effect::StateChanged { account, .. }
            | Effect::MarginCall { account, .. }
            | Effect::DeficitBeyondFund { account, .. } => {
                mentioned.insert(account.clone());
            }
            Effect::InsuranceFundChanged { .. }
            | Effect::PriceGuarded { .. }
            | Effect::Rejected { .. } => {}
        }
    }
    // Accounts created by this event.
    match &envelope.event {
        Event::Deposit(e) => {
            model.accounts.insert(e.account.clone());
        }
        Event::Transfer(e) => {
            model.accounts.insert(e.to.clone());
        }
        _ => {}
    }
    // 10. Every transfer as the auditor computes it.
    compare_flows(&expected, effects, &mut model.counts)?;
    // 1. Conservation.
    for (asset, total) in engine.ledger().totals() {
        if !total.is_zero() {
            return Err(format!("invariant 1: {asset} sums to {total}"));
        }
    }
    // 2. The ledger equals the replayed balances.
    let mut nonzero = 0usize;
    for (account, asset, amount) in engine.ledger().balances() {
        nonzero += 1;
        // 9. Every loss is borne by someone: the insurance fund never goes below zero.
        if account.to_string() == "insurance_fund" && amount < Decimal::ZERO {
            return Err(format!(
                "invariant 9: the insurance fund holds {amount} {asset}"
            ));
        }
        let mine = model.balance(&account.to_string(), asset);
        if mine != amount {
            return Err(format!(
                "invariant 2: ledger {account} {asset} = {amount}, transfer effects give {mine}"
            ));
        }
    }
    let mine = model.balances.values().filter(|a| !a.is_zero()).count();
    if mine != nonzero {
        return Err(format!(
            "invariant 2: {nonzero} non-zero ledger balances, transfer effects give {mine}"
        ));
    }
    model.balances.retain(|_, amount| !amount.is_zero());
    // 7. Positions equal the auditor's book.
    for (id, account) in engine.accounts().iter() {
        let engine_sizes: BTreeMap<&str, Decimal> = account
            .positions
            .iter()
            .map(|(name, p)| (name.as_str(), p.size))
            .collect();
        let empty = BTreeMap::new();
        let book = model.positions.get(id).unwrap_or(&empty);
        let mine: BTreeMap<&str, Decimal> = book.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        if engine_sizes != mine {
            return Err(format!(
                "invariant 7: {id} holds {engine_sizes:?} in the engine, {mine:?} by fills and effects"
            ));
        }
        for (name, p) in &account.positions {
            let lot = model.lot(id, name);
            if lot != Some((p.entry, p.isolated)) {
                return Err(format!(
                    "invariant 7: {id}'s {name} has entry {} (isolated {}) in the engine, {lot:?} by the auditor's book",
                    p.entry, p.isolated
                ));
            }
        }
        let state = model
            .states
            .get(id)
            .copied()
            .unwrap_or(AccountState::Healthy);
        if account.state != state {
            return Err(format!(
                "invariant 10: {id} is {:?} in the engine, {state:?} by its state_changed effects",
                account.state
            ));
        }
    }
    for id in model.positions.keys() {
        if !engine.accounts().contains_key(id) {
            return Err(format!(
                "invariant 7: {id} unknown to the engine holds positions"
            ));
        }
    }
    // Accounts whose figures this event could change.
    let mut affected = mentioned;
    match &envelope.event {
        // An index the guards held (a jump awaiting confirmation, no fresh source) moved
        // nothing: only time passed, which an event that changes nothing an account holds need
        // not re-examine it for.
        Event::IndexPrice(IndexPrice { underlying, .. }) => {
            let now = engine
                .market()
                .index
                .get(underlying.as_str())
                .map(|p| p.value());
            if now != model.index_seen.get(underlying).copied() {
                affected.extend(exposed(model, underlying));
            }
            if let Some(now) = now {
                model.index_seen.insert(underlying.clone(), now);
            }
        }
        Event::VolSurface(VolSurface { underlying, .. }) => {
            affected.extend(exposed(model, underlying));
        }
        // A mark moves only its contract's holders (an option's value also moves with time at
        // every event, but an event that concerns nothing it holds need not re-examine it).
        Event::MarkPrice(MarkPrice { instrument, .. })
        | Event::Funding(Funding { instrument, .. }) => {
            affected.extend(
                model
                    .positions
                    .iter()
                    .filter(|(_, book)| book.contains_key(instrument))
                    .map(|(id, _)| id.clone()),
            );
        }
        other => affected.extend(accounts_of(other)),
    }
    let threshold = engine.venue().thresholds.liquidation;
    for id in &affected {
        let Some(account) = engine.accounts().get(id) else {
            continue;
        };
        let Some(report) = report_of(engine, id) else {
            continue;
        };
        // 4. IM >= MM >= 0.
        let im = report.initial_margin.value();
        let mm = report.maintenance_margin.value();
        if mm < Decimal::ZERO || im < mm {
            return Err(format!("invariant 4: {id} has IM {im} and MM {mm}"));
        }
        // Per position under standard margin; under portfolio margin a position's share of
        // the requirement is its loss in the worst scenario (Euler attribution), negative for a
        // hedge, so only the account's figures are bounded.
        for p in report
            .positions
            .iter()
            .filter(|_| report.mode == MarginMode::Cross)
        {
            let (pim, pmm) = (p.initial_margin.value(), p.maintenance_margin.value());
            if pmm < Decimal::ZERO || pim < pmm {
                return Err(format!(
                    "invariant 4: {id} {} has IM {pim} and MM {pmm}",
                    p.instrument
                ));
            }
        }
        // 5. Nobody is left in breach without action. A cross pool with nothing left to
        // liquidate (a bankrupt account's debt beside isolated positions) is not a breach
        // liquidation can act on.
        let breach = (report.health.is_some_and(|h| h <= threshold)
            && report.positions.iter().any(|p| !p.isolated))
            || report
                .positions
                .iter()
                .any(|p| p.isolated && p.isolated_health.is_some_and(|h| h <= threshold));
        let figures = format!(
            "{}|{}|{:?}",
            report.equity,
            report.maintenance_margin,
            report
                .positions
                .iter()
                .map(|p| (p.size, p.isolated_health))
                .collect::<Vec<_>>()
        );
        let unchanged_and_fine = model
            .last_seen
            .get(id)
            .is_some_and(|(seen, fine)| *fine && *seen == figures);
        let frozen = account
            .positions
            .values()
            .any(|p| model.stale(&p.instrument.underlying));
        let fine = !breach
            || account.positions.is_empty()
            || acted.contains(id)
            || unchanged_and_fine
            || frozen;
        if !fine {
            return Err(format!(
                "invariant 5: {id} has health {:?} (isolated {:?}) with positions {:?} and no liquidation effect",
                report.health,
                report
                    .positions
                    .iter()
                    .map(|p| p.isolated_health)
                    .collect::<Vec<_>>(),
                account.positions.keys().collect::<Vec<_>>()
            ));
        }
        model.last_seen.insert(id.clone(), (figures, fine));
    }
    model.last_hash = hash;
    Ok(())
}

/// Accounts exposed to an underlying: positions on it, or a balance of the asset it prices.
fn exposed(model: &Model, underlying: &str) -> Vec<String> {
    let mut ids: Vec<String> = model
        .positions
        .iter()
        .filter(|(_, book)| {
            book.keys()
                .any(|name| underlying_of(name).is_some_and(|u| UNDERLYINGS[u] == underlying))
        })
        .map(|(id, _)| id.clone())
        .collect();
    ids.extend(
        model
            .balances
            .iter()
            .filter(|((account, asset), amount)| {
                asset == underlying && !amount.is_zero() && owner(account) == Some(account)
            })
            .map(|((account, _), _)| account.clone()),
    );
    ids
}

fn accounts_of(event: &Event) -> Vec<String> {
    match event {
        Event::Deposit(e) => vec![e.account.clone()],
        Event::Withdraw(e) => vec![e.account.clone()],
        Event::Transfer(e) => vec![e.from.clone(), e.to.clone()],
        Event::Fill(e) => vec![e.account.clone(), e.counterparty.clone()],
        Event::SetLeverage(e) => vec![e.account.clone()],
        Event::SetMarginMode(e) => vec![e.account.clone()],
        Event::SetIsolatedMargin(e) => vec![e.account.clone()],
        _ => Vec::new(),
    }
}

// ---- the workload -----------------------------------------------------------------------------

struct Workload {
    rng: ChaCha8Rng,
    seq: u64,
    ts_ms: i64,
    /// True price per underlying (what honest sources quote).
    price: [f64; 2],
    /// Sources quoting each underlying.
    sources: [usize; 2],
    accounts: Vec<String>,
    created: usize,
    queue: VecDeque<(Event, Expect)>,
    /// At-the-money volatility of the BTC smile last quoted.
    atm_vol: f64,
}

const START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

impl Workload {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let count = rng.random_range(24..48);
        let accounts = (0..count).map(|i| format!("a{i:02}")).collect();
        let sources = [rng.random_range(1..=3), rng.random_range(1..=3)];
        let mut workload = Self {
            rng,
            seq: 0,
            ts_ms: START_MS,
            price: START_PRICE,
            sources,
            accounts,
            created: 0,
            queue: VecDeque::new(),
            atm_vol: 0.6,
        };
        for u in 0..2 {
            for s in 0..workload.sources[u] {
                let event = workload.index_event(u, s, 1.0);
                workload.queue.push_back((event, Expect::Accept));
            }
        }
        let smile = workload.smile_event();
        workload.queue.push_back((smile, Expect::Accept));
        for i in 0..workload.accounts.len() {
            let account = workload.accounts[i].clone();
            for (asset, scale) in ASSETS {
                if workload.rng.random_bool(0.6) || asset == "USDT" {
                    let amount = match asset {
                        "BTC" => dec(workload.rng.random_range(0.01..3.0), scale),
                        _ => dec(workload.rng.random_range(1_000.0..200_000.0), 2),
                    };
                    workload.queue.push_back((
                        Event::Deposit(Deposit {
                            account: account.clone(),
                            asset: asset.to_owned(),
                            amount: Amount(amount),
                        }),
                        Expect::Accept,
                    ));
                }
            }
        }
        workload
    }

    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn envelope(&mut self, event: Event) -> Envelope {
        self.seq += 1;
        self.ts_ms += self.rng.random_range(20..1_500);
        Envelope {
            seq: self.seq,
            ts: Timestamp::from_millisecond(self.ts_ms).unwrap(),
            event,
        }
    }

    /// The next event and what the workload knows of its outcome.
    fn next(&mut self, model: &Model) -> (Envelope, Expect) {
        if let Some((event, expect)) = self.queue.pop_front() {
            return (self.envelope(event), expect);
        }
        let roll: f64 = self.rng.random();
        // Envelope faults: a repeated sequence number or time going back.
        if roll < 0.002 && model.last_seq > 0 {
            let event = self.index_event(0, 0, 1.0);
            let envelope = Envelope {
                seq: model.last_seq,
                ts: Timestamp::from_millisecond(self.ts_ms).unwrap(),
                event,
            };
            return (
                envelope,
                Expect::Reject(RejectReason::SequenceNotIncreasing),
            );
        }
        if roll < 0.004 {
            let event = self.index_event(1, 0, 1.0);
            // A refused event takes no sequence number and no time: this one goes back before
            // the last accepted event, and the next may reuse its number.
            let envelope = Envelope {
                seq: self.seq + 1,
                ts: Timestamp::from_millisecond(model.now_ms - 1_000).unwrap(),
                event,
            };
            return (
                envelope,
                Expect::Reject(RejectReason::TimestampBeforePrevious),
            );
        }
        // Time gaps: every source goes stale.
        if roll < 0.005 {
            self.ts_ms += self.rng.random_range(61_000..300_000);
        }
        let (event, expect) = match self.rng.random_range(0..1000) {
            0..240 => self.price_move(),
            240..340 => (self.mark_event(), Expect::Accept),
            340..600 => self.fill(model),
            600..650 => self.option_fill(model),
            650..720 => self.deposit(),
            720..790 => self.withdraw(model),
            790..840 => self.transfer(model),
            840..870 => self.funding(),
            870..900 => self.leverage(model),
            900..945 => self.isolated(model),
            945..958 => (self.smile_event(), Expect::Accept),
            958..960 => self.margin_mode(model),
            960..975 => self.source_change(),
            975..980 => self.crash(),
            _ => self.close(model),
        };
        (self.envelope(event), expect)
    }

    /// One mean-reverting step of an underlying's true price, quoted by one of its sources.
    fn step_price(&mut self, u: usize, sigma: f64) {
        let pull = -0.002 * (self.price[u] / START_PRICE[u]).ln();
        let shock = sigma * self.normal();
        self.price[u] *= (pull + shock).exp();
    }

    fn index_event(&mut self, u: usize, source: usize, factor: f64) -> Event {
        let noise = 1.0 + self.rng.random_range(-0.0005..0.0005);
        Event::IndexPrice(IndexPrice {
            underlying: UNDERLYINGS[u].to_owned(),
            price: Price(dec(self.price[u] * noise * factor, 2).max(Decimal::ONE)),
            source: Some(SOURCES[source].to_owned()),
        })
    }

    fn mark_event(&mut self) -> Event {
        let c = &CONTRACTS[self.rng.random_range(0..CONTRACTS.len())];
        let mut factor = 1.0 + 0.002 * self.normal();
        if self.rng.random_bool(0.04) {
            // Outside the band: the engine clamps it.
            let outside: f64 = self.rng.random_range(0.06..0.2);
            factor = if self.rng.random_bool(0.5) {
                1.0 + outside
            } else {
                1.0 - outside
            };
        }
        Event::MarkPrice(MarkPrice {
            instrument: c.name.to_owned(),
            price: Price(dec(self.price[c.underlying] * factor, 2)),
        })
    }

    fn price_move(&mut self) -> (Event, Expect) {
        let u = usize::from(self.rng.random_bool(0.35));
        self.step_price(u, 0.0015);
        let source = self.rng.random_range(0..self.sources[u]);
        let roll: f64 = self.rng.random();
        let factor = if roll < 0.02 {
            // A bad quote from one source.
            self.rng.random_range(0.5..1.5)
        } else {
            1.0
        };
        if roll > 0.997 {
            // A jump above the confirmation threshold, quoted by every source.
            let jump = self.rng.random_range(0.21..0.35);
            self.price[u] *= if self.rng.random_bool(0.5) {
                1.0 + jump
            } else {
                1.0 / (1.0 + jump)
            };
            for s in 1..self.sources[u] {
                let event = self.index_event(u, s, 1.0);
                self.queue.push_back((event, Expect::Accept));
            }
            let event = self.index_event(u, 0, 1.0);
            self.queue.push_back((event, Expect::Accept));
        }
        (self.index_event(u, source, factor), Expect::Accept)
    }

    /// A crash or squeeze: several steps of 2-6%, every source quoting, marks following.
    fn crash(&mut self) -> (Event, Expect) {
        let u = usize::from(self.rng.random_bool(0.3));
        let down = self.rng.random_bool(0.75);
        let steps = self.rng.random_range(3..10);
        for _ in 0..steps {
            let size = self.rng.random_range(0.02..0.06);
            self.price[u] *= if down { 1.0 - size } else { 1.0 + size };
            for s in 0..self.sources[u] {
                let event = self.index_event(u, s, 1.0);
                self.queue.push_back((event, Expect::Accept));
            }
            for c in CONTRACTS.iter().filter(|c| c.underlying == u) {
                let price = dec(self.price[u] * (1.0 + 0.001 * self.normal()), 2);
                self.queue.push_back((
                    Event::MarkPrice(MarkPrice {
                        instrument: c.name.to_owned(),
                        price: Price(price),
                    }),
                    Expect::Accept,
                ));
            }
        }
        self.queue.pop_front().unwrap_or_else(|| self.price_move())
    }

    fn source_change(&mut self) -> (Event, Expect) {
        let u = usize::from(self.rng.random_bool(0.5));
        self.sources[u] = self.rng.random_range(1..=3);
        let source = self.sources[u] - 1;
        (self.index_event(u, source, 1.0), Expect::Accept)
    }

    fn account(&mut self) -> String {
        let roll: f64 = self.rng.random();
        if roll < 0.01 {
            return "ghost".to_owned();
        }
        self.accounts[self.rng.random_range(0..self.accounts.len())].clone()
    }

    fn asset(&mut self) -> &'static str {
        ASSETS[self.rng.random_range(0..ASSETS.len())].0
    }

    fn deposit(&mut self) -> (Event, Expect) {
        let mut account = self.account();
        if account == "ghost" || self.rng.random_bool(0.02) {
            self.created += 1;
            account = format!("n{:03}", self.created);
            self.accounts.push(account.clone());
        }
        let asset = self.asset();
        let scale = precision(asset);
        let roll: f64 = self.rng.random();
        let (asset, amount, expect) = if roll < 0.01 {
            (
                "DOGE",
                Decimal::ONE,
                Expect::Reject(RejectReason::UnknownAsset),
            )
        } else if roll < 0.02 {
            (
                asset,
                Decimal::ZERO,
                Expect::Reject(RejectReason::AmountMustBePositive),
            )
        } else if roll < 0.03 {
            (
                asset,
                Decimal::new(123, scale + 2),
                Expect::Reject(RejectReason::PrecisionExceeded),
            )
        } else {
            let amount = match asset {
                "BTC" => dec(self.rng.random_range(0.001..1.0), scale),
                _ => dec(self.rng.random_range(50.0..50_000.0), 2),
            };
            (asset, amount.max(Decimal::ONE), Expect::Accept)
        };
        (
            Event::Deposit(Deposit {
                account,
                asset: asset.to_owned(),
                amount: Amount(amount),
            }),
            expect,
        )
    }

    /// An amount of `asset` around a fraction of `account`'s balance, sometimes above it.
    fn outflow(&mut self, model: &Model, account: &str, asset: &str) -> Decimal {
        let balance = to_f64(model.balance(account, asset)).max(0.0);
        let fraction = if self.rng.random_bool(0.1) {
            self.rng.random_range(1.0..1.5)
        } else {
            self.rng.random_range(0.0..1.0)
        };
        dec(balance * fraction, precision(asset)).max(Decimal::new(1, 2))
    }

    /// What the workload knows of an outflow of `amount` from `account`.
    fn outflow_expect(model: &Model, account: &str, asset: &str, amount: Decimal) -> Expect {
        if !model.accounts.contains(account) {
            return Expect::Reject(RejectReason::UnknownAccount);
        }
        if amount > model.balance(account, asset) {
            return Expect::Reject(RejectReason::InsufficientBalance);
        }
        if model.has_positions(account) || model.borrowing(account) {
            Expect::Either
        } else {
            Expect::Accept
        }
    }

    fn withdraw(&mut self, model: &Model) -> (Event, Expect) {
        let account = self.account();
        let asset = self.asset();
        let amount = self.outflow(model, &account, asset);
        let expect = Self::outflow_expect(model, &account, asset, amount);
        (
            Event::Withdraw(Withdraw {
                account,
                asset: asset.to_owned(),
                amount: Amount(amount),
            }),
            expect,
        )
    }

    fn transfer(&mut self, model: &Model) -> (Event, Expect) {
        let from = self.account();
        let asset = self.asset();
        let amount = self.outflow(model, &from, asset);
        let roll: f64 = self.rng.random();
        let to = if roll < 0.03 {
            from.clone()
        } else if roll < 0.05 {
            "insurance_fund".to_owned()
        } else if roll < 0.08 {
            self.created += 1;
            let id = format!("n{:03}", self.created);
            self.accounts.push(id.clone());
            id
        } else {
            self.account()
        };
        let expect = if !model.accounts.contains(&from) {
            Expect::Reject(RejectReason::UnknownAccount)
        } else if from == to {
            Expect::Reject(RejectReason::AccountsMustBeDifferent)
        } else if to == "insurance_fund" {
            Expect::Reject(RejectReason::UnknownAccount)
        } else {
            Self::outflow_expect(model, &from, asset, amount)
        };
        (
            Event::Transfer(Transfer {
                from,
                to,
                asset: asset.to_owned(),
                amount: Amount(amount),
            }),
            expect,
        )
    }

    fn size_of(c: &Contract, notional_usd: f64, price: f64) -> Decimal {
        let (mantissa, scale) = c.step;
        let step = Decimal::new(mantissa, scale);
        let raw = if c.inverse {
            notional_usd
        } else {
            notional_usd / price
        };
        let size = (dec(raw, scale) / step).floor() * step;
        size.max(step)
    }

    fn fill(&mut self, model: &Model) -> (Event, Expect) {
        let account = self.account();
        let c = &CONTRACTS[self.rng.random_range(0..CONTRACTS.len())];
        let price = self.price[c.underlying] * (1.0 + 0.001 * self.normal());
        let equity = model.rough_equity(&account, &self.price).max(100.0);
        let leverage = if self.rng.random_bool(0.1) {
            self.rng.random_range(10.0..80.0)
        } else {
            self.rng.random_range(0.2..12.0)
        };
        let notional = equity * leverage * self.rng.random_range(0.05..0.6);
        let mut size = Self::size_of(c, notional, price);
        let mut expect = Expect::Either;
        let roll: f64 = self.rng.random();
        if roll < 0.01 {
            size += Decimal::new(c.step.0, c.step.1) / Decimal::TWO;
            expect = Expect::Reject(RejectReason::InvalidSize);
        }
        let side = if self.rng.random_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        };
        let counterparty = if roll > 0.99 {
            expect = Expect::Reject(RejectReason::AccountsMustBeDifferent);
            account.clone()
        } else if self.rng.random_bool(0.3) {
            self.account()
        } else {
            "external".to_owned()
        };
        if counterparty == account && expect == Expect::Either {
            expect = Expect::Reject(RejectReason::AccountsMustBeDifferent);
        }
        if !model.accounts.contains(&account) {
            expect = Expect::Reject(RejectReason::UnknownAccount);
        }
        let (instrument, expect) = if self.rng.random_bool(0.005)
            && expect != Expect::Reject(RejectReason::UnknownAccount)
        {
            ("DOGEUSDT", Expect::Reject(RejectReason::UnknownInstrument))
        } else {
            (c.name, expect)
        };
        let fill = self.fill_event(&account, c, instrument, side, size, price, &counterparty);
        (Event::Fill(fill), expect)
    }

    #[allow(clippy::too_many_arguments, reason = "a test helper")]
    fn fill_event(
        &mut self,
        account: &str,
        c: &Contract,
        instrument: &str,
        side: Side,
        size: Decimal,
        price: f64,
        counterparty: &str,
    ) -> Fill {
        let price = dec(price, 2);
        let notional = if c.inverse {
            size / price
        } else {
            size * price
        };
        let rate = if self.rng.random_bool(0.1) {
            Decimal::new(-1, 4)
        } else {
            Decimal::new(5, 4)
        };
        let scale = precision(c.settlement);
        let fee =
            (notional * rate).round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::ToZero);
        Fill {
            account: account.to_owned(),
            instrument: instrument.to_owned(),
            side,
            size: Quantity(size),
            price: Price(price),
            fee: Amount(fee),
            counterparty: counterparty.to_owned(),
        }
    }

    /// Reduces (or flips) a held position.
    fn close(&mut self, model: &Model) -> (Event, Expect) {
        let holders: Vec<(&String, &BTreeMap<String, Decimal>)> = model.positions.iter().collect();
        if holders.is_empty() {
            return self.fill(model);
        }
        let (account, book) = holders[self.rng.random_range(0..holders.len())];
        let books: Vec<(&String, &Decimal)> = book.iter().collect();
        let (name, held) = books[self.rng.random_range(0..books.len())];
        let Some(c) = contract(name) else {
            // An option: closed through its own quoting.
            return self.option_fill(model);
        };
        let fraction = if self.rng.random_bool(0.5) {
            Decimal::ONE
        } else {
            Decimal::from_f64(self.rng.random_range(0.1..1.6)).unwrap_or(Decimal::ONE)
        };
        let step = Decimal::new(c.step.0, c.step.1);
        let size = ((held.abs() * fraction) / step).floor() * step;
        let size = size.max(step);
        let side = if held.is_sign_positive() {
            Side::Sell
        } else {
            Side::Buy
        };
        let price = self.price[c.underlying] * (1.0 + 0.001 * self.normal());
        let counterparty = if self.rng.random_bool(0.2) {
            self.account()
        } else {
            "external".to_owned()
        };
        let expect = if &counterparty == account {
            Expect::Reject(RejectReason::AccountsMustBeDifferent)
        } else {
            Expect::Either
        };
        let account = account.clone();
        let fill = self.fill_event(&account, c, c.name, side, size, price, &counterparty);
        (Event::Fill(fill), expect)
    }

    /// A re-quote of the BTC smile: the at-the-money volatility wanders (30%-150%), with a
    /// skew and a smile around it.
    fn smile_event(&mut self) -> Event {
        self.atm_vol = (self.atm_vol * (1.0 + 0.1 * self.normal())).clamp(0.3, 1.5);
        let atm = self.atm_vol;
        let strikes = vec![30_000.0, 45_000.0, 60_000.0, 75_000.0, 90_000.0];
        let vols = [0.2, 0.07, 0.0, 0.05, 0.12]
            .iter()
            .map(|wing| ((atm + wing) * 10_000.0).round() / 10_000.0)
            .collect();
        Event::VolSurface(VolSurface {
            underlying: "BTC".to_owned(),
            expiry: OPTION_EXPIRY.to_owned(),
            strikes,
            vols,
        })
    }

    /// A fill of one of the listed BTC options near its value on the last smile.
    fn option_fill(&mut self, model: &Model) -> (Event, Expect) {
        let account = self.account();
        let o = &OPTIONS[self.rng.random_range(0..OPTIONS.len())];
        let forward = self.price[0];
        let years = (OPTION_EXPIRY_MS - self.ts_ms) as f64 / (365.0 * 86_400_000.0);
        let usd =
            black76(forward, o.strike, years, self.atm_vol, o.call) * (1.0 + 0.02 * self.normal());
        let (premium, fee_scale) = if o.inverse {
            (dec(usd / forward, 4), 8)
        } else {
            (dec(usd, 2), 6)
        };
        let premium = premium.max(Decimal::new(1, 4));
        let (mantissa, scale) = o.step;
        let step = Decimal::new(mantissa, scale);
        let units = self.rng.random_range(1..40);
        let size = step * Decimal::from(units);
        let side = if self.rng.random_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        };
        let counterparty = if self.rng.random_bool(0.3) {
            self.account()
        } else {
            "external".to_owned()
        };
        let expect = if !model.accounts.contains(&account) {
            Expect::Reject(RejectReason::UnknownAccount)
        } else if counterparty == account {
            Expect::Reject(RejectReason::AccountsMustBeDifferent)
        } else {
            Expect::Either
        };
        // Deribit's option fee: 0.03% of the underlying per contract, at most 12.5% of the
        // premium (here in the settlement coin).
        let per_unit = if o.inverse { 0.0003 } else { 0.0003 * forward };
        let fee = dec(
            (per_unit * to_f64(size)).min(0.125 * to_f64(premium * size)),
            fee_scale,
        );
        let _ = o.settlement;
        (
            Event::Fill(Fill {
                account,
                instrument: o.name.to_owned(),
                side,
                size: Quantity(size),
                price: Price(premium),
                fee: Amount(fee),
                counterparty,
            }),
            expect,
        )
    }

    /// An account switches between cross and portfolio margin.
    fn margin_mode(&mut self, model: &Model) -> (Event, Expect) {
        let account = self.account();
        let mode = if self.rng.random_bool(0.5) {
            MarginMode::Portfolio
        } else {
            MarginMode::Cross
        };
        let expect = if model.accounts.contains(&account) {
            Expect::Either
        } else {
            Expect::Reject(RejectReason::UnknownAccount)
        };
        (
            Event::SetMarginMode(SetMarginMode { account, mode }),
            expect,
        )
    }

    fn funding(&mut self) -> (Event, Expect) {
        let c = &CONTRACTS[self.rng.random_range(0..CONTRACTS.len())];
        let (rate, expect) = if self.rng.random_bool(0.01) {
            (
                Decimal::new(15, 1),
                Expect::Reject(RejectReason::OutOfRange),
            )
        } else if self.rng.random_bool(0.05) {
            (
                Decimal::new(self.rng.random_range(-300..300), 4),
                Expect::Accept,
            )
        } else {
            (
                Decimal::new(self.rng.random_range(-100..100), 6),
                Expect::Accept,
            )
        };
        (
            Event::Funding(Funding {
                instrument: c.name.to_owned(),
                rate,
            }),
            expect,
        )
    }

    fn leverage(&mut self, model: &Model) -> (Event, Expect) {
        let account = self.account();
        let c = &CONTRACTS[self.rng.random_range(0..CONTRACTS.len())];
        let roll: f64 = self.rng.random();
        let leverage = if roll < 0.05 {
            Decimal::ZERO
        } else if roll < 0.1 {
            Decimal::from(150)
        } else {
            Decimal::from(self.rng.random_range(1..=100))
        };
        let expect = if !model.accounts.contains(&account) {
            Expect::Reject(RejectReason::UnknownAccount)
        } else if leverage <= Decimal::ZERO
            || c.max_leverage
                .is_some_and(|max| leverage > Decimal::from(max))
        {
            Expect::Reject(RejectReason::InvalidLeverage)
        } else if model.has_positions(&account) || model.borrowing(&account) {
            Expect::Either
        } else {
            Expect::Accept
        };
        (
            Event::SetLeverage(SetLeverage {
                account,
                instrument: c.name.to_owned(),
                leverage,
            }),
            expect,
        )
    }

    fn isolated(&mut self, model: &Model) -> (Event, Expect) {
        let account = self.account();
        let c = &CONTRACTS[self.rng.random_range(0..CONTRACTS.len())];
        let held = model.position(&account, c.name);
        let price = self.price[c.underlying];
        let notional_settlement = if c.inverse {
            to_f64(held.abs()) / price
        } else {
            to_f64(held.abs()) * price
        };
        let target = if self.rng.random_bool(0.25) {
            Decimal::ZERO
        } else {
            let leverage = self.rng.random_range(2.0..60.0);
            let scale = if c.settlement == "BTC" { 8 } else { 2 };
            dec(notional_settlement / leverage, scale)
        };
        let expect = if !model.accounts.contains(&account) {
            Expect::Reject(RejectReason::UnknownAccount)
        } else if held.is_zero() {
            Expect::Reject(RejectReason::InvalidInput)
        } else {
            Expect::Either
        };
        (
            Event::SetIsolatedMargin(SetIsolatedMargin {
                account,
                instrument: c.name.to_owned(),
                amount: Amount(target),
            }),
            expect,
        )
    }
}

// ---- running ----------------------------------------------------------------------------------

/// FNV-1a over the `Debug` text of each event's effects: the determinism fingerprint.
struct Fnv(u64);

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        for byte in text.bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(())
    }
}

fn digest(effects: &[Effect]) -> u64 {
    let mut fnv = Fnv(0xcbf2_9ce4_8422_2325);
    write!(fnv, "{effects:?}").unwrap();
    fnv.0
}

fn events_per_seed() -> usize {
    std::env::var("SOLVENT_SIMULATION_EVENTS")
        .ok()
        .and_then(|text| text.replace('_', "").parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            3_000
        } else {
            100_000
        })
}

/// What one seeded run did.
#[derive(Debug, Default)]
struct Summary {
    events: usize,
    rejected: usize,
    effects: BTreeMap<&'static str, usize>,
    audit_seconds: f64,
    replay_seconds: f64,
    /// What the auditor recomputed and predicted.
    counts: Counts,
}

fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::AccountUpdated { .. } => "account_updated",
        Effect::MarginCall { .. } => "margin_call",
        Effect::StateChanged { .. } => "state_changed",
        Effect::TransferApplied { .. } => "transfer_applied",
        Effect::Liquidation { .. } => "liquidation",
        Effect::LiquidationDeferred { .. } => "liquidation_deferred",
        Effect::InsuranceFundChanged { .. } => "insurance_fund_changed",
        Effect::Adl { .. } => "adl",
        Effect::PriceGuarded { .. } => "price_guarded",
        Effect::Rejected { .. } => "rejected",
        Effect::DeficitBeyondFund { .. } => "deficit_beyond_fund",
    }
}

/// An invariant the auditor found broken.
#[derive(Debug)]
struct Failure {
    /// `invariant N` or `expected outcome`.
    tag: String,
    message: String,
    /// The events up to and including the failing one, as journal lines.
    journal: Vec<String>,
}

fn tag_of(problem: &str) -> String {
    problem
        .split(':')
        .next()
        .filter(|head| head.starts_with("invariant"))
        .unwrap_or("expected outcome")
        .to_owned()
}

/// Everything the engine holds for one account: ledger balances, positions, report figures.
fn dump(engine: &Engine, id: &str) -> String {
    let mut text = format!("account {id}:");
    for (account, asset, amount) in engine.ledger().balances() {
        if owner(&account.to_string()) == Some(id) {
            let _ = write!(text, " {account} {asset} {amount};");
        }
    }
    if let Some(account) = engine.accounts().get(id) {
        for (name, p) in &account.positions {
            let _ = write!(
                text,
                " {name} size {} entry {} isolated {};",
                p.size, p.entry, p.isolated
            );
        }
        let _ = write!(
            text,
            " leverage {:?}; state {}",
            account.leverage, account.state
        );
    }
    if let Some(r) = report_of(engine, id) {
        let _ = write!(
            text,
            "; equity {} IM {} MM {} health {:?}",
            r.equity, r.initial_margin, r.maintenance_margin, r.health
        );
    }
    text
}

/// Runs `events` events of seed `seed` through the engine and the auditor, then replays the
/// journal into a fresh engine.
fn simulate(seed: u64, events: usize) -> Result<Summary, Failure> {
    let started = Instant::now();
    let mut engine = Engine::new(venue(), EngineConfig::default());
    let mut model = Model {
        last_hash: engine.state_hash(),
        rules: Rules::of(engine.venue()),
        ..Model::default()
    };
    let mut workload = Workload::new(seed);
    let mut journal: Vec<String> = Vec::with_capacity(events);
    let mut digests: Vec<u64> = Vec::with_capacity(events);
    let mut summary = Summary::default();
    while journal.len() < events {
        let (generated, expect) = workload.next(&model);
        // The engine sees the event as the journal will hold it (decimals normalised), so the
        // replay below reads exactly what was applied.
        let envelope = parse_line("simulation", journal.len() + 1, &to_line(&generated)).unwrap();
        let (expect, basis) = model.predict(&engine, &envelope.event, expect);
        match (&envelope.event, basis) {
            (Event::Fill(_), Some(basis)) => model.counts.fills.count(basis),
            (Event::Withdraw(_) | Event::Transfer(_), Some(basis)) => {
                model.counts.outflows.count(basis);
            }
            _ => {}
        }
        let effects = engine.apply(&envelope);
        let line = to_line(&envelope);
        journal.push(line.clone());
        if let Err(problem) = audit(&engine, &mut model, &envelope, expect, &effects) {
            let mut accounts = accounts_of(&envelope.event);
            accounts.extend(
                problem
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|word| engine.accounts().contains_key(word))
                    .map(str::to_owned),
            );
            accounts.sort();
            accounts.dedup();
            let dumps: Vec<String> = accounts.iter().map(|id| dump(&engine, id)).collect();
            return Err(Failure {
                tag: tag_of(&problem),
                message: format!(
                    "seed {seed}, event {} (seq {}): {problem}\nevent: {line}\neffects: {}\n{}\nlast events:\n{}",
                    journal.len(),
                    envelope.seq,
                    serde_json::to_string(&effects).unwrap_or_default(),
                    dumps.join("\n"),
                    journal[journal.len().saturating_sub(30)..].join("\n")
                ),
                journal,
            });
        }
        for effect in &effects {
            *summary.effects.entry(kind(effect)).or_default() += 1;
        }
        if matches!(effects.as_slice(), [Effect::Rejected { .. }]) {
            summary.rejected += 1;
        }
        digests.push(digest(&effects));
    }
    summary.events = journal.len();
    summary.counts = std::mem::take(&mut model.counts);
    summary.audit_seconds = started.elapsed().as_secs_f64();
    let final_hash = engine.state_hash();
    // 8. Determinism: the journal, read back, into a fresh engine.
    let replay_started = Instant::now();
    let mut replay = Engine::new(venue(), EngineConfig::default());
    for (n, line) in journal.iter().enumerate() {
        let envelope = parse_line("simulation", n + 1, line).unwrap();
        let effects = replay.apply(&envelope);
        if digest(&effects) != digests[n] {
            return Err(Failure {
                tag: "invariant 8".to_owned(),
                message: format!(
                    "invariant 8: seed {seed}, event {} gives other effects on replay: {line}",
                    n + 1
                ),
                journal: journal[..=n].to_vec(),
            });
        }
    }
    summary.replay_seconds = replay_started.elapsed().as_secs_f64();
    if replay.state_hash() != final_hash {
        return Err(Failure {
            tag: "invariant 8".to_owned(),
            message: format!("invariant 8: seed {seed}: the replayed state hash differs"),
            journal,
        });
    }
    Ok(summary)
}

/// Replays journal lines through a fresh engine and the auditor (outcomes not predicted);
/// returns the first broken invariant.
fn check_lines(lines: &[String]) -> Option<(String, String)> {
    let mut engine = Engine::new(venue(), EngineConfig::default());
    let mut model = Model {
        last_hash: engine.state_hash(),
        rules: Rules::of(engine.venue()),
        ..Model::default()
    };
    for (n, line) in lines.iter().enumerate() {
        let envelope = parse_line("repro", n + 1, line).unwrap();
        let (expect, _) = model.predict(&engine, &envelope.event, Expect::Either);
        let effects = engine.apply(&envelope);
        if let Err(problem) = audit(&engine, &mut model, &envelope, expect, &effects) {
            let mut accounts = accounts_of(&envelope.event);
            accounts.extend(
                problem
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|word| engine.accounts().contains_key(word))
                    .map(str::to_owned),
            );
            accounts.sort();
            accounts.dedup();
            let dumps: Vec<String> = accounts.iter().map(|id| dump(&engine, id)).collect();
            return Some((
                tag_of(&problem),
                format!(
                    "{problem}\neffects: {}\n{}",
                    serde_json::to_string(&effects).unwrap_or_default(),
                    dumps.join("\n")
                ),
            ));
        }
    }
    None
}

/// Delta debugging (Zeller's ddmin): the smallest sub-sequence that still breaks `tag`.
fn shrink(mut lines: Vec<String>, tag: &str) -> Vec<String> {
    let fails = |candidate: &[String]| check_lines(candidate).is_some_and(|(t, _)| t == tag);
    let mut chunks = 2usize;
    while lines.len() >= 2 {
        let size = lines.len().div_ceil(chunks);
        let mut reduced = false;
        let mut start = 0;
        while start < lines.len() {
            let end = (start + size).min(lines.len());
            let candidate: Vec<String> = lines[..start]
                .iter()
                .chain(&lines[end..])
                .cloned()
                .collect();
            if !candidate.is_empty() && fails(&candidate) {
                lines = candidate;
                reduced = true;
            } else {
                start = end;
            }
        }
        if reduced {
            chunks = chunks.saturating_sub(1).max(2);
        } else if size == 1 {
            break;
        } else {
            chunks = (chunks * 2).min(lines.len());
        }
    }
    lines
}

fn run(seed: u64) {
    let events = events_per_seed();
    let summary = match simulate(seed, events) {
        Ok(summary) => summary,
        Err(failure) => panic!("{}", failure.message),
    };
    let seconds = summary.audit_seconds + summary.replay_seconds;
    println!(
        "seed {seed}: {} events ({} rejected); engine + audit {:.2} s, replay (engine alone) {:.2} s = {:.0} events/s; effects {:?}",
        summary.events,
        summary.rejected,
        summary.audit_seconds,
        summary.replay_seconds,
        summary.events as f64 / summary.replay_seconds,
        summary.effects
    );
    let _ = seconds;
    let c = &summary.counts;
    println!(
        "seed {seed}: transfers recomputed {} (taken as reported {}); liquidation fees nominal {} capped {}; fills {:?}; withdrawals and transfers {:?}",
        c.transfers_recomputed,
        c.transfers_taken,
        c.liquidation_fees_nominal,
        c.liquidation_fees_capped,
        c.fills,
        c.outflows
    );
    assert!(summary.effects.get("liquidation").copied().unwrap_or(0) > 0 || events < 2_000);
}

/// Finds, shrinks and prints the first failure of seed `SOLVENT_SIMULATION_SHRINK` (a tool, not a
/// check: `SOLVENT_SIMULATION_SHRINK=7 cargo test --release -p solvent-engine --test simulation
/// shrink_failure -- --ignored --nocapture`).
#[test]
#[ignore = "a tool for shrinking a failing seed"]
fn shrink_failure() {
    let seed: u64 = std::env::var("SOLVENT_SIMULATION_SHRINK")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1);
    let Err(failure) = simulate(seed, events_per_seed()) else {
        println!("seed {seed} passes");
        return;
    };
    println!("{}\n", failure.message);
    let minimal = shrink(failure.journal, &failure.tag);
    println!("minimal sequence ({} events):", minimal.len());
    for line in &minimal {
        println!("{line}");
    }
    if let Some((_, detail)) = check_lines(&minimal) {
        println!("{detail}");
    }
}

#[test]
fn seed_1() {
    run(1);
}

#[test]
fn seed_2() {
    run(2);
}

#[test]
fn seed_3() {
    run(3);
}

#[test]
fn seed_4() {
    run(4);
}

/// Seeds beyond the four above, when `SOLVENT_SIMULATION_SEEDS` asks for more; from
/// `SOLVENT_SIMULATION_FIRST_SEED` on when given (`bench/simulate.sh` splits a long campaign into
/// ranges run side by side).
#[test]
fn many_seeds() {
    let number = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let seeds = number("SOLVENT_SIMULATION_SEEDS", 4);
    let first = number("SOLVENT_SIMULATION_FIRST_SEED", 5).max(5);
    for seed in first..=seeds {
        run(seed);
    }
}

/// Prints every effect of the journal lines in `SOLVENT_SIMULATION_REPRO` (a file), for reading a
/// shrunk sequence.
#[test]
#[ignore = "a tool for reading a repro"]
fn print_repro() {
    let Ok(path) = std::env::var("SOLVENT_SIMULATION_REPRO") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let mut engine = Engine::new(venue(), EngineConfig::default());
    for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let envelope = parse_line("repro", n + 1, line).unwrap();
        let effects = engine.apply(&envelope);
        println!("{line}\n  -> {}", serde_json::to_string(&effects).unwrap());
    }
    for id in engine.accounts().keys() {
        println!("{}", dump(&engine, id));
    }
}

// ---- engine bugs the simulation found, each shrunk to its smallest sequence ------------------

/// Applies journal lines to a fresh engine; returns it and each event's effects.
fn replay_lines(lines: &[&str]) -> (Engine, Vec<Vec<Effect>>) {
    let mut engine = Engine::new(venue(), EngineConfig::default());
    let effects = lines
        .iter()
        .enumerate()
        .map(|(n, line)| engine.apply(&parse_line("repro", n + 1, line).unwrap()))
        .collect();
    (engine, effects)
}

fn acted_on(effects: &[Effect], id: &str) -> bool {
    effects.iter().any(|e| {
        matches!(e, Effect::Liquidation { account, .. } | Effect::LiquidationDeferred { account, .. } | Effect::Adl { account, .. } if account == id)
    })
}

/// Found by seed 3 (shrunk from 1,381 events). An isolated short whose loss exceeds its isolated
/// margin after an 8.3% index rise is neither liquidated nor deferred: the index update yields no
/// effect at all, though the position's isolated health is -5.2 (isolated equity negative).
/// Fixed by a0e08d4: the position, bankrupt in its isolated pool, is deleveraged against a05 at
/// its bankruptcy price in the same update.
#[test]
fn isolated_breach_not_examined() {
    let (engine, effects) = replay_lines(&[
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"deposit","account":"a22","asset":"USDT","amount":"113870.87"}"#,
        r#"{"seq":2,"ts":"2026-01-01T00:00:01Z","type":"deposit","account":"a22","asset":"USDC","amount":"145722.8"}"#,
        r#"{"seq":3,"ts":"2026-01-01T00:00:02Z","type":"deposit","account":"a05","asset":"BTC","amount":"1"}"#,
        r#"{"seq":4,"ts":"2026-01-01T00:00:03Z","type":"index_price","underlying":"BTC","price":"49654.92","source":"s1"}"#,
        r#"{"seq":5,"ts":"2026-01-01T00:00:04Z","type":"fill","account":"a05","instrument":"BTC_USDC-PERPETUAL","side":"buy","size":"17.816","price":"49720.66","fee":"442.911639","counterparty":"a22"}"#,
        r#"{"seq":6,"ts":"2026-01-01T00:00:05Z","type":"set_isolated_margin","account":"a22","instrument":"BTC_USDC-PERPETUAL","amount":"18221.04"}"#,
        r#"{"seq":7,"ts":"2026-01-01T00:00:06Z","type":"index_price","underlying":"BTC","price":"53790.91","source":"s1"}"#,
    ]);
    assert!(
        acted_on(&effects[6], "a22"),
        "a22's isolated position is in breach and the index update did: {:?}",
        effects[6]
    );
    let report = report_of(&engine, "a22").unwrap();
    assert!(
        report.positions.is_empty(),
        "a22's isolated short is still open: {:?}",
        report.positions
    );
}

/// Regression (found by seed 2 at commit 45f5148, shrunk from 3,901 events; fixed by a0e08d4).
/// A bankrupt long is deleveraged against the only opposite position (a10, 53,730 USD) and the
/// remaining 1,648,300 USD was closed at the mark with `liquidation_pnl` transfers but no
/// `liquidation` effect, so the position change was invisible in the effects. Liquidation and ADL
/// effects must account for the whole position.
#[test]
fn adl_remainder_closed_without_effect() {
    let (engine, effects) = replay_lines(&[
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"index_price","underlying":"BTC","price":"56085.81","source":"s1"}"#,
        r#"{"seq":2,"ts":"2026-01-01T00:00:01Z","type":"deposit","account":"a02","asset":"BTC","amount":"1"}"#,
        r#"{"seq":3,"ts":"2026-01-01T00:00:02Z","type":"deposit","account":"a10","asset":"USDT","amount":"44147.88"}"#,
        r#"{"seq":4,"ts":"2026-01-01T00:00:03Z","type":"fill","account":"a02","instrument":"BTC-PERPETUAL","side":"buy","size":"1702030","price":"55416.47","fee":"-0.00307134","counterparty":"external"}"#,
        r#"{"seq":5,"ts":"2026-01-01T00:00:04Z","type":"fill","account":"a10","instrument":"BTC-PERPETUAL","side":"sell","size":"53730","price":"55401.66","fee":"0.00048491","counterparty":"external"}"#,
        r#"{"seq":6,"ts":"2026-01-01T00:00:05Z","type":"index_price","underlying":"BTC","price":"46000","source":"s1"}"#,
        r#"{"seq":7,"ts":"2026-01-01T00:00:06Z","type":"index_price","underlying":"BTC","price":"43004.69","source":"s1"}"#,
    ]);
    assert!(
        engine.accounts().get("a02").unwrap().positions.is_empty(),
        "precondition: a02 closed"
    );
    let mut seen = Decimal::ZERO;
    for effect in effects.iter().flatten() {
        match effect {
            Effect::Liquidation { account, size, .. } if account == "a02" => seen += size.value(),
            Effect::Adl { account, size, .. } if account == "a02" => seen -= size.value(),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        Decimal::from(-1_702_030),
        "liquidation and adl effects must account for a02's whole long"
    );
}

/// Found by seed 1. A cross pool whose only debt is a borrowed BTC balance (from a realised loss
/// on the BTC-settled inverse perpetual) and whose only position is isolated: as BTC rises the
/// account health fell below 1.05 and the engine neither liquidated nor deferred, and the loan
/// kept growing with BTC. Fixed: with no cross position left to close, the pool in breach repays
/// the loan by selling its other collateral at the index.
#[test]
fn cross_breach_with_only_isolated() {
    let (engine, effects) = replay_lines(&[
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"index_price","underlying":"BTC","price":"60000","source":"s1"}"#,
        r#"{"seq":2,"ts":"2026-01-01T00:00:00Z","type":"index_price","underlying":"ETH","price":"3000","source":"s1"}"#,
        r#"{"seq":3,"ts":"2026-01-01T00:00:01Z","type":"deposit","account":"a1","asset":"USDT","amount":"10000"}"#,
        r#"{"seq":4,"ts":"2026-01-01T00:00:02Z","type":"fill","account":"a1","instrument":"ETHUSDT","side":"buy","size":"10","price":"3000","counterparty":"external"}"#,
        r#"{"seq":5,"ts":"2026-01-01T00:00:03Z","type":"set_isolated_margin","account":"a1","instrument":"ETHUSDT","amount":"2000"}"#,
        r#"{"seq":6,"ts":"2026-01-01T00:00:04Z","type":"fill","account":"a1","instrument":"BTC-PERPETUAL","side":"sell","size":"60000","price":"60000","counterparty":"external"}"#,
        r#"{"seq":7,"ts":"2026-01-01T00:00:05Z","type":"index_price","underlying":"BTC","price":"66000","source":"s1"}"#,
        r#"{"seq":8,"ts":"2026-01-01T00:00:06Z","type":"fill","account":"a1","instrument":"BTC-PERPETUAL","side":"buy","size":"60000","price":"66000","counterparty":"external"}"#,
        r#"{"seq":9,"ts":"2026-01-01T00:00:07Z","type":"index_price","underlying":"BTC","price":"76000","source":"s1"}"#,
        r#"{"seq":10,"ts":"2026-01-01T00:00:08Z","type":"index_price","underlying":"BTC","price":"85000","source":"s1"}"#,
    ]);
    assert!(
        effects[9].iter().any(|e| matches!(e,
            Effect::TransferApplied { from, asset, reason: TransferReason::CollateralSale, .. }
                if from == "a1" && asset == "USDT")),
        "a1's loan is not repaid from its USDT: {:?}",
        effects[9]
    );
    let btc = engine
        .ledger()
        .balance(&LedgerAccount::Wallet("a1".into()), "BTC");
    assert!(btc >= Decimal::ZERO, "a1 still owes {btc} BTC");
    let report = report_of(&engine, "a1").unwrap();
    assert!(
        report.health.is_none_or(|h| h > 1.05),
        "a1 is still in breach: {:?}",
        report.health
    );
}

/// Found by seed 2 (shrunk from 18,135 events). n043's short BTC-PERPETUAL goes bankrupt when
/// BTC rises 42% (held, then confirmed) and is deleveraged against a02's long at the bankruptcy
/// price. a02 was evaluated earlier in the same event with that long's profit (health 1.09,
/// `reduce_only`); the ADL takes the profit away, leaving a02 with equity -182,133 and health
/// -29.6 on its BTCUSDT short, and the engine does not look at a02 again (`reindex`, no
/// `evaluate`, after ADL). Fixed: after an ADL the counterparty is evaluated and liquidated
/// when due (a `liquidation` of a02's BTCUSDT in the same event). The repro's first index
/// source is the same as the later ones, so the multi-source guard does not hold the move.
/// a02's short was sold to `external`: nobody inside is left to deleverage, and the empty
/// insurance fund pays nothing (it used to go negative), so a02 ends flat with its deficit
/// recorded as its debt.
#[test]
fn adl_counterparty_not_reevaluated() {
    let (engine, effects) = replay_lines(&[
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"deposit","account":"a02","asset":"BTC","amount":"1"}"#,
        r#"{"seq":2,"ts":"2026-01-01T00:00:01Z","type":"deposit","account":"a02","asset":"USDT","amount":"40426.68"}"#,
        r#"{"seq":3,"ts":"2026-01-01T00:00:02Z","type":"index_price","underlying":"BTC","price":"13715.33","source":"s1"}"#,
        r#"{"seq":4,"ts":"2026-01-01T00:00:03Z","type":"deposit","account":"n043","asset":"BTC","amount":"1"}"#,
        r#"{"seq":5,"ts":"2026-01-01T00:00:04Z","type":"fill","account":"a02","instrument":"BTCUSDT","side":"sell","size":"70.967","price":"13705.08","fee":"486.304206","counterparty":"external"}"#,
        r#"{"seq":6,"ts":"2026-01-01T00:00:05Z","type":"index_price","underlying":"BTC","price":"12119.4","source":"s1"}"#,
        r#"{"seq":7,"ts":"2026-01-01T00:00:06Z","type":"fill","account":"a02","instrument":"BTC-PERPETUAL","side":"buy","size":"491100","price":"12091.84","fee":"0.02030708","counterparty":"n043"}"#,
        r#"{"seq":8,"ts":"2026-01-01T00:00:07Z","type":"index_price","underlying":"BTC","price":"17262.74","source":"s1"}"#,
        r#"{"seq":9,"ts":"2026-01-01T00:00:08Z","type":"index_price","underlying":"BTC","price":"17317.42","source":"s1"}"#,
    ]);
    assert!(
        effects[8]
            .iter()
            .any(|e| matches!(e, Effect::Adl { counterparty, .. } if counterparty == "a02")),
        "precondition: a02 is deleveraged"
    );
    assert!(
        effects[8].iter().any(|e| matches!(e,
            Effect::Liquidation { account, instrument, .. }
                if account == "a02" && instrument == "BTCUSDT")),
        "a02 is not liquidated after the ADL: {:?}",
        effects[8]
    );
    assert!(
        effects[8].iter().any(|e| matches!(e,
            Effect::DeficitBeyondFund { account, resolution: DeficitResolution::AccountDebt, fund, .. }
                if account == "a02" && fund.value().is_zero())),
        "a02's deficit is not recorded as its debt: {:?}",
        effects[8]
    );
    let fund = engine
        .ledger()
        .balance(&LedgerAccount::InsuranceFund, "USDT");
    assert_eq!(
        fund,
        Decimal::ZERO,
        "the insurance fund paid what it did not hold"
    );
    let report = report_of(&engine, "a02").unwrap();
    assert!(report.positions.is_empty(), "a02 still holds positions");
}
