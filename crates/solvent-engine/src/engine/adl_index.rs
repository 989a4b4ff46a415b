//! The ADL index: the holders of each linear perpetual, and of each inverse perpetual settled in
//! a coin other than the venue's settlement coin (or in that coin itself where the market prices
//! it), filed by a bound on their ADL score, so that
//! ranking a crowded contract's queue scores the few accounts that can lead it instead of every
//! opposite holder in profit.
//!
//! The score (`engine/insurance.rs`) is `P N / E`: the position's unrealised profit `P`, its
//! notional `N` and the account's equity `E`, all at the mark. For a holder of `S` coins of the
//! contract (size times contract size) at entry `e`, at a mark `m` where it is in profit by
//! `x = |m - e|` per coin, `P = S x` and `N = S m`. Its equity is the rest of the account `R`
//! (wallet and other positions) plus `P`, less at most one unit of the report precision per
//! position for the rounding of each contribution. So with `R'` a lower bound of that rest,
//!
//! ```text
//! score = S^2 m x / E <= S^2 m x / (R' + S x) = S m h(x / r),   h(y) = y / (1 + y),
//! r = R' / S
//! ```
//!
//! increasing in `S` and in `x`, decreasing in `r`.
//!
//! The rest is read at the prices of the ranking, through a reference price `p_j` fixed per
//! contract (the first price the index saw it at). For other positions of `c_j` coins (signed)
//! at entries `e_j`, valued at `m_j` now,
//!
//! ```text
//! R = W + sum_j c_j (m_j - e_j) = A + sum_j c_j (m_j - p_j),   A = W + sum_j c_j (p_j - e_j)
//! r = A / S + sum_j (c_j / S) (m_j - p_j)
//! ```
//!
//! with `W` a lower bound of the settlement coin's value in the wallet (the venue's settlement
//! coin, pegged). Every other coin of the wallet is a term of the same form, priced in the
//! settlement coin: a loan at its full value (`c_j` the amount), a holding at its collateral
//! schedule's first ratio (`c_j` the amount times the ratio), which holds while the holding stays
//! inside the first tier: a ranking checks that for each group at the coin's price then, and scores
//! the group first where it may not. `A / S` and each `c_j / S` are fixed while the account does
//! not change; only the moves `m_j - p_j`, one per contract or coin, come from the ranking. Holders
//! are filed in groups by side and by geometric buckets of `S`, entry, `A / S` and each `c_j / S`
//! (with the contracts they stand for, a *profile*); a group's bound at the ranking's prices takes
//! each bucket's edge on the side that raises the score. A ranking takes the groups in order of
//! their bound; each member of a group taken is bounded from its own account (the same bound
//! without the buckets: a few floating-point operations, no margin report) and waits with that
//! bound; a member is scored once its bound is the highest of those left, and a scored candidate is
//! placed once its score beats every group and member not yet scored. That is exactly the order a
//! score for every holder gives, found by scoring those whose own bound reaches the queue's head.
//!
//! An isolated position is ranked by the account's cross equity, of which its own profit is no
//! part (its P&L is its pool's): its score is `S^2 m x / R = S m y`, `y = x / r`, with `R` the
//! cross equity (the wallet and the cross positions; other isolated positions are no terms of
//! it). It is filed in groups of its own (`GroupKey::isolated`), bounded by `y` where a cross
//! position's bound takes `h(y)`.
//!
//! The bound reads only the account's own positions and wallet and the prices of the ranking,
//! so it holds at any prices: nothing about an account's filing changes until the account does.
//! A long option adds at least nothing to the equity (its value is never below zero): it is
//! left out of the rest, which stays a lower bound.
//!
//! A short option takes at most a fixed share of the rest whatever the prices, the volatility
//! and the time (Black-76 values a call at most `S`, a put at most `K e^(-rT)`): a call as a
//! loan of its size in its underlying's coin would (a term of that coin, priced at the ranking),
//! a put its size times the strike (taken off `A`). See `Engine::short_option_floor`; an
//! option with a given mark (any price) is no such bound, and its first mark files its writers
//! again.
//!
//! A portfolio-mode account is filed as a cross one: the score reads the equity, which a margin
//! report sums the same way in either mode.
//!
//! An inverse perpetual of `s` USD at entry `e` gains `P = s (1 / e - 1 / m)` of its coin `C`
//! at a mark `m`, with notional `N = s / m` in `C`; the report converts each contribution into
//! the settlement coin at `q`, `C`'s price in it. In reciprocal prices `u = 1 / p` the position
//! is a linear one of size `s` the other way round (a long gains as `u` falls), so for an
//! account holding nothing but `C` (`W` of it) and inverse perpetuals settled in `C` (and long
//! options), with its rest `R_C` read in `C`,
//!
//! ```text
//! score = P N / E <= s x s u / (q (R_C' + s x)) = (s u / q) h(x / r),   x = |1 / e - u|,
//! r = R_C' / s,   R_C = W ratio + sum_j (-s_j) (u_j - 1 / e_j)
//! ```
//!
//! `R_C'` less a unit of the settlement coin's precision (`unit / q` of `C`) per credited term,
//! taken at the ranking, where `q` is known. A holding of the settlement coin (pegged) worth at
//! least `V` of it adds `V / q` to `R_C`: a term in the reciprocal of `C`'s price. The holding
//! counts at its first collateral ratio while `W` is inside the first tier: a `Held` term the
//! ranking checks at `C`'s price then.
//! Such holders are filed in groups keyed as linear ones (sizes in USD, entries and the other
//! contracts' moves in `u`).
//!
//! On a coin-settled venue (its settlement coin priced by the market, as Binance COIN-M's BTC),
//! an inverse perpetual settled in the settlement coin is such a contract with `q = 1` whatever
//! the prices: its holders are filed so too.
//!
//! What does not fit (short options with a given mark, on a negative rate or settled
//! otherwise; short options beside inverse contracts; an inverse holder with a third coin, a
//! loan or a linear contract, an inverse contract settled in a pegged settlement coin, isolated
//! inverse positions, coins the venue does not list or price, a contract never priced; on a
//! coin-settled venue, linear contracts and an inverse holder that also holds the settlement
//! coin beside another contract coin) is filed as *loose* and scored at every ranking.
//! Every account whose positions were written or whose wallet moved is filed again at the end
//! of each event (`AccountBook::take_changed`; monitoring's own writes, which filing does not
//! read, are not logged), and before a ranking. Top-up rules are no matter: a top-up moves
//! money only when monitoring examines the account, and the transfer logs the account.
//!
//! A cache of the state: never hashed nor snapshotted, rebuilt from the accounts after a
//! restore, a venue change or an update of a pegged settlement coin's index (an unpegged one's
//! price is read at each ranking).

#[allow(clippy::wildcard_imports)]
use super::*;
use std::collections::{BinaryHeap, HashMap};

use solvent_core::instrument::OptionRight;

use foldhash::fast::FixedState;

use super::insurance::{AdlCandidate, adl_order};

/// `ln` of the size buckets' ratio, 2^(1/4): a group's `S` is within 19% of its bound.
const LN_SIZE_STEP: f64 = std::f64::consts::LN_2 / 4.0;
/// `ln` of the buckets' ratio for `A / S` and each `c_j / S`, 2^(1/8) (9%).
const LN_RATIO_STEP: f64 = std::f64::consts::LN_2 / 8.0;
/// `ln` of the entry buckets' ratio, 1.001: a holder 3% in profit has `x` within 3% of its
/// group's bound.
const LN_ENTRY_STEP: f64 = 0.000_999_500_333_083_533_4;
/// Relative margin on every `f64` bound: the figures are converted from exact decimals and
/// combined in a few operations (errors of a few 1e-16), so a margin of 1e-9 keeps each bound
/// above the exact figure it stands for.
const MARGIN: f64 = 1e-9;

/// `exp(step x bucket)`, the lower edge of a geometric bucket.
fn edge(step: f64, bucket: i32) -> f64 {
    (step * f64::from(bucket)).exp()
}

/// The bucket of a positive `value` for buckets of ratio `exp(step)`.
#[allow(clippy::cast_possible_truncation)]
fn bucket(value: f64, step: f64) -> i32 {
    // Saturating: a value out of `i32`'s buckets shares the last one, still bounded by it
    // from the side that matters only if finite, which the filing checks.
    (value.ln() / step).floor() as i32
}

/// A signed ratio's bucket: its sign, and the geometric bucket (ratio 2^(1/8)) of its
/// magnitude.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct SignedBucket {
    sign: i8,
    magnitude: i32,
}

impl SignedBucket {
    /// The bucket of a finite `value`.
    fn of(value: f64) -> Self {
        if value == 0.0 {
            return Self {
                sign: 0,
                magnitude: 0,
            };
        }
        Self {
            sign: if value > 0.0 { 1 } else { -1 },
            magnitude: bucket(value.abs(), LN_RATIO_STEP),
        }
    }

    /// The least value of the bucket, widened by the margin.
    fn lower(self) -> f64 {
        match self.sign {
            0 => 0.0,
            1 => edge(LN_RATIO_STEP, self.magnitude) * (1.0 - MARGIN),
            _ => -edge(LN_RATIO_STEP, self.magnitude.saturating_add(1)) * (1.0 + MARGIN),
        }
    }

    /// The greatest value of the bucket, widened by the margin.
    fn upper(self) -> f64 {
        -Self {
            sign: -self.sign,
            magnitude: self.magnitude,
        }
        .lower()
    }
}

/// What a term of a group's rest is priced by: another contract the holders hold, or a coin
/// of their wallets other than the settlement coin; each by its number in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Term {
    /// Another linear perpetual the index files.
    Contract(u16),
    /// A coin of the wallet other than the settlement coin.
    Coin(u16),
    /// An inverse holder's holding of its contracts' coin, counted at its first ratio: its
    /// value in that coin does not move, but it counts so only while inside the coin's first
    /// tier, which a ranking checks at the coin's price then.
    Held(u16),
    /// An inverse holder's holding of the venue's settlement coin, in its contracts' coin:
    /// `W / q`, `W` its value in the settlement coin and `q` that coin's price in it, a term in
    /// the reciprocal of `q`.
    Reciprocal(u16),
}

/// One term of a group's rest: what prices it and the bucket of its coefficient over `S`
/// (`c_j / S`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct OtherTerm {
    source: Term,
    ratio: SignedBucket,
}

/// The terms of a group's holders, in the order of their sources.
type Profile = SmallVec<[OtherTerm; 2]>;

/// Where a contract's or coin's price stands against its reference, at a ranking.
#[derive(Clone, Copy, Debug)]
struct Move {
    /// `m_j - p_j`; NaN when there is no price now.
    change: f64,
    /// `|m_j| + |p_j|`, the scale of the rounding error of `change`.
    scale: f64,
    /// The price now.
    now: f64,
    /// A coin's cap: the largest `c m_j` (settlement coin) of a holding inside its first
    /// collateral tier; infinite for contracts and open-ended tiers.
    cap: f64,
}

/// Every contract's and coin's move at a ranking, by number.
struct Moves {
    /// A linear contract's mark against its reference; an inverse one's reciprocal mark.
    contracts: Vec<Move>,
    coins: Vec<Move>,
    /// Each coin as an inverse holder's holding: no change, its price in the settlement coin
    /// (`now`) and its cap.
    held: Vec<Move>,
    /// Each coin's reciprocal price (settlement coin per coin, inverted) against its
    /// reference's.
    reciprocals: Vec<Move>,
    /// One unit of the settlement coin's precision.
    unit: f64,
}

/// A coin other than the settlement coin, as the index prices its holdings.
#[derive(Clone, Debug)]
struct CoinIndex {
    index: CompactString,
    usd_peg: Option<Decimal>,
    /// Its collateral schedule's first ratio (0 without one).
    first_ratio: f64,
    /// Its first tier's upper bound in USD, `None` when open-ended.
    tier_up_to: Option<f64>,
    /// Its first price in the settlement coin the index saw (`p_j`); NaN until it has one.
    reference: f64,
}

impl CoinIndex {
    /// The largest value, in the settlement coin priced `settlement_usd`, of a holding counted
    /// at the first ratio: the first tier's bound at that ratio (infinite when open-ended).
    fn cap(&self, settlement_usd: f64) -> f64 {
        self.tier_up_to.map_or(f64::INFINITY, |up_to| {
            up_to * self.first_ratio / settlement_usd
        })
    }
}

/// An account's wallet as filing reads it (see [`Engine::fileable_wallet`]).
struct FileableWallet<'a> {
    coin: &'a SettlementCoin,
    /// Its amount of the settlement coin.
    amount: Decimal,
    /// The settlement coin's USD price.
    usd: Decimal,
    others: SmallVec<[OtherCoin<'a>; 2]>,
}

/// A holding of a coin other than the settlement coin.
struct OtherCoin<'a> {
    symbol: &'a str,
    amount: Decimal,
    /// Its USD price.
    usd: Decimal,
}

/// The wallet's part of an account's filings (see [`Engine::adl_wallet_terms`]).
struct WalletTerms {
    /// A lower bound of the settlement coin's value.
    floor: f64,
    /// Each other coin's number, coefficient and reference price.
    coins: SmallVec<[(u16, f64, f64); 2]>,
}

/// A position's filing: its contract's number, and its group with its profile (`None`: loose).
type Filing = (u16, Option<(GroupKey, Profile)>);

/// A group of holders of one contract: their side and buckets, and their profile's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct GroupKey {
    long: bool,
    /// An isolated position: its P&L is its own pool's, not in the equity it is ranked by
    /// (see the module documentation).
    isolated: bool,
    /// An inverse contract's holders: sizes in USD, entries and moves in reciprocal prices,
    /// the rest in `coin` (see the module documentation).
    inverse: bool,
    /// The inverse contracts' settlement coin, by number (0 for a linear group).
    coin: u16,
    size: i32,
    entry: i32,
    rest: SignedBucket,
    profile: u32,
}

impl GroupKey {
    /// The bound of every member's score at `mark` (see the module documentation), given the
    /// group's profile and every contract's and coin's move; `None` when no member can be in
    /// profit there.
    fn bound(self, mark: f64, profile: &[OtherTerm], moves: &Moves) -> Option<f64> {
        // An inverse position is a linear one in reciprocal prices, the other way round: a
        // long gains as `1 / m` falls below `1 / e`.
        let price = if self.inverse { 1.0 / mark } else { mark };
        let gains_as_price_rises = self.long != self.inverse;
        let in_profit = if gains_as_price_rises {
            price - edge(LN_ENTRY_STEP, self.entry) * (1.0 - MARGIN)
        } else {
            edge(LN_ENTRY_STEP, self.entry.saturating_add(1)) * (1.0 + MARGIN) - price
        };
        if in_profit <= 0.0 {
            return None;
        }
        let size = edge(LN_SIZE_STEP, self.size.saturating_add(1)) * (1.0 + MARGIN);
        let mut rest = self.rest.lower();
        // The inverse rest is in the coin; each of its terms (the holding, the other contracts
        // and this one) is credited at the settlement coin's precision, a unit each, worth
        // `unit / q` of the coin. Every size of the group is at least the bucket's edge.
        let coin_price = if self.inverse {
            // A coin the ranking has no move for bounds nothing: the group is scored first.
            let Some(held) = moves.held.get(usize::from(self.coin)) else {
                return Some(f64::INFINITY);
            };
            let price = held.now;
            let least_size = edge(LN_SIZE_STEP, self.size) * (1.0 - MARGIN);
            #[allow(clippy::cast_precision_loss)]
            let units = (profile.len() + 2) as f64;
            rest -= units * moves.unit / (price * least_size) * (1.0 + MARGIN);
            price
        } else {
            1.0
        };
        for other in profile {
            let moved = match other.source {
                Term::Contract(number) => moves.contracts.get(usize::from(number)),
                Term::Coin(number) => moves.coins.get(usize::from(number)),
                Term::Held(number) => moves.held.get(usize::from(number)),
                Term::Reciprocal(number) => moves.reciprocals.get(usize::from(number)),
            };
            let Some(moved) = moved else {
                return Some(f64::INFINITY);
            };
            let (lower, upper) = (other.ratio.lower(), other.ratio.upper());
            // A holding beyond its coin's first tier is not valued at the first ratio.
            let inside = upper * size * moved.now <= moved.cap * (1.0 - MARGIN);
            if upper > 0.0 && !inside {
                return Some(f64::INFINITY);
            }
            let ratio = if moved.change >= 0.0 { lower } else { upper };
            rest += ratio * moved.change - MARGIN * lower.abs().max(upper.abs()) * moved.scale;
        }
        // A rest not known positive (or not known at all: NaN) bounds nothing: the group is
        // scored first.
        if rest.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Some(f64::INFINITY);
        }
        let y = in_profit / rest;
        // The notional is `S m` (settlement coin) for a linear contract, `S / m` (coin) for an
        // inverse one, whose score's equity is `q` times the rest in the coin.
        let widen = if self.inverse {
            (1.0 + MARGIN).powi(2)
        } else {
            1.0 + MARGIN
        };
        let bound = size * price * score_shape(self.isolated, y) / coin_price * widen;
        Some(if bound.is_nan() || bound < 0.0 {
            f64::INFINITY
        } else {
            bound
        })
    }
}

/// Where a holder is filed in one contract's index.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// In the group, at this place of its list.
    Group(GroupKey, usize),
    /// Scored at every ranking.
    Loose,
}

/// One contract's holders, filed.
#[derive(Clone, Debug)]
struct ContractIndex {
    /// The contract, for its price at a ranking.
    instrument: Arc<Instrument>,
    /// The price its holders' P&L as another position is measured from (`p_j`): the first
    /// price the index saw it at (its reciprocal for an inverse contract); NaN until it has one.
    reference: f64,
    places: HashMap<u32, Place, FixedState>,
    groups: HashMap<GroupKey, Vec<u32>, FixedState>,
    loose: BTreeSet<u32>,
}

impl ContractIndex {
    fn new(instrument: Arc<Instrument>) -> Self {
        Self {
            instrument,
            reference: f64::NAN,
            places: HashMap::default(),
            groups: HashMap::default(),
            loose: BTreeSet::new(),
        }
    }

    fn remove(&mut self, slot: u32) {
        match self.places.remove(&slot) {
            Some(Place::Group(key, at)) => {
                let Some(members) = self.groups.get_mut(&key) else {
                    return;
                };
                members.swap_remove(at);
                if let Some(moved) = members.get(at).copied()
                    && let Some(place) = self.places.get_mut(&moved)
                {
                    *place = Place::Group(key, at);
                }
                if members.is_empty() {
                    self.groups.remove(&key);
                }
            }
            Some(Place::Loose) => {
                self.loose.remove(&slot);
            }
            None => {}
        }
    }

    fn insert(&mut self, slot: u32, group: Option<GroupKey>) {
        match group {
            Some(key) => {
                let members = self.groups.entry(key).or_default();
                self.places.insert(slot, Place::Group(key, members.len()));
                members.push(slot);
            }
            None => {
                self.places.insert(slot, Place::Loose);
                self.loose.insert(slot);
            }
        }
    }
}

/// The holders of every linear perpetual, filed (see the module documentation).
#[derive(Clone, Debug, Default)]
pub(super) struct AdlIndex {
    /// Whether every account is filed as it is now, but for those changed since
    /// (`AccountBook::take_changed`). False after a restore, a venue change or an update of a
    /// pegged settlement coin's index: the next ranking files everyone again.
    built: bool,
    /// Contract numbers by name.
    numbers: HashMap<CompactString, u16, FixedState>,
    contracts: Vec<ContractIndex>,
    /// Per account, the contracts it is filed in.
    filed_in: HashMap<u32, SmallVec<[u16; 2]>, FixedState>,
    /// Coin numbers by symbol.
    coin_numbers: HashMap<CompactString, u16, FixedState>,
    coins: Vec<CoinIndex>,
    /// The groups' profiles, by number.
    profiles: Vec<Profile>,
    /// Profile numbers by profile.
    profile_numbers: HashMap<Profile, u32, FixedState>,
    /// What filing reads of the venue's settlement coin, read once per venue.
    settlement: Option<SettlementCoin>,
}

/// The venue's settlement coin as filing reads it (see [`Engine::fileable_wallet`]).
#[derive(Clone, Debug)]
struct SettlementCoin {
    symbol: CompactString,
    index: CompactString,
    /// Its peg, `None` for a coin the market prices (a coin-settled venue's: the holders of
    /// linear contracts are then loose, see [`Engine::fileable_wallet`]).
    usd_peg: Option<Decimal>,
    precision: u32,
    /// One unit of its precision.
    unit: f64,
    /// Its collateral schedule's first tier: its upper bound in USD (`None`: open-ended) and
    /// ratio; `None` when the coin has no schedule (it counts at zero) or an empty one.
    first_tier: Option<(Option<f64>, f64)>,
}

impl AdlIndex {
    /// An index of an engine without accounts on `venue`: complete.
    pub(super) fn empty(venue: &Venue) -> Self {
        let settlement = venue
            .assets
            .get(venue.settlement_asset.as_str())
            .and_then(|asset| {
                Some(SettlementCoin {
                    symbol: asset.symbol.as_str().into(),
                    index: asset.index.as_str().into(),
                    usd_peg: asset.usd_peg,
                    precision: asset.precision,
                    unit: 1.0 / POWERS_OF_TEN.get(asset.precision as usize)?,
                    first_tier: venue
                        .collateral
                        .get(asset.symbol.as_str())
                        .and_then(|schedule| schedule.tiers.first())
                        .map(|tier| (tier.up_to_usd.map(band_f64), band_f64(tier.ratio))),
                })
            });
        Self {
            built: true,
            settlement,
            ..Self::default()
        }
    }

    /// The number of `profile`, numbering it if new; `None` beyond `u32`'s numbers.
    fn profile_number(&mut self, profile: Profile) -> Option<u32> {
        if let Some(number) = self.profile_numbers.get(&profile) {
            return Some(*number);
        }
        let number = u32::try_from(self.profiles.len()).ok()?;
        self.profiles.push(profile.clone());
        self.profile_numbers.insert(profile, number);
        Some(number)
    }

    /// Forgets every filing: the next ranking files every account again.
    pub(super) fn invalidate(&mut self) {
        *self = Self::default();
    }
}

/// An ADL queue being ranked: the candidates placed so far, those scored and waiting, and the
/// groups not scored yet with their bounds. Kept for the rest of the event and brought up to
/// date at each later bankruptcy ([`Engine::resync_adl_queue`]): the accounts changed since are
/// scored again, so the queue is always the ranking of the state at the bankruptcy.
#[derive(Clone, Debug)]
pub(super) struct AdlRanking {
    /// The candidates placed, in the queue's order, with their slots and score versions.
    placed: Vec<Ranked>,
    scored: BinaryHeap<Ranked>,
    /// Groups not scored yet, highest bound first (a bound is never negative: its bits order
    /// as it does, see [`band_key`]).
    groups: BinaryHeap<(BandKey, GroupKey)>,
    /// Members of the groups taken, not scored yet, highest bound first: each bounded from its
    /// own account ([`Engine::adl_member_bound`]), far closer to its score than its group.
    pending: BinaryHeap<(BandKey, u32)>,
    /// The contract's number in the index, when groups are to be scored.
    contract: Option<u16>,
    /// Accounts scored directly: not to be scored again with their group.
    direct: BTreeSet<u32>,
    /// Per account scored again since the queue was made, the version of its latest score:
    /// an older entry is dropped when it reaches the head.
    versions: HashMap<u32, u32, FixedState>,
    /// How much of the engine's log of the event's changed accounts the queue has taken in.
    synced: usize,
    /// The mark the queue was ranked at: a bankruptcy at another ranks afresh.
    pub(super) mark: Decimal,
    /// Candidates scored for this queue (diagnostics).
    pub(super) scorings: u64,
    /// Members bounded for this queue (diagnostics).
    pub(super) bounded: u64,
    /// Debug builds: the ranking a score for every holder gives, which placing must follow.
    #[cfg(debug_assertions)]
    expected: Vec<AdlCandidate>,
}

/// A scored candidate, with its account's slot and the version of its score: in a max-heap
/// ordered by the ADL queue, the greatest is the queue's first.
#[derive(Clone, Debug)]
pub(super) struct Ranked {
    candidate: AdlCandidate,
    slot: u32,
    version: u32,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        adl_order(&other.candidate, &self.candidate)
    }
}

impl AdlRanking {
    /// A ranking of candidates all scored already, each with its account's slot.
    pub(super) fn of_all(candidates: Vec<(u32, AdlCandidate)>) -> Self {
        #[cfg(debug_assertions)]
        let expected = sorted(candidates.iter().map(|(_, c)| c.clone()).collect());
        Self {
            placed: Vec::new(),
            scorings: candidates.len() as u64,
            scored: candidates
                .into_iter()
                .map(|(slot, candidate)| Ranked {
                    candidate,
                    slot,
                    version: 0,
                })
                .collect(),
            groups: BinaryHeap::new(),
            pending: BinaryHeap::new(),
            bounded: 0,
            contract: None,
            direct: BTreeSet::new(),
            versions: HashMap::default(),
            synced: 0,
            mark: Decimal::ZERO,
            #[cfg(debug_assertions)]
            expected,
        }
    }

    fn current(&self, ranked: &Ranked) -> bool {
        self.versions.get(&ranked.slot).copied().unwrap_or(0) == ranked.version
    }

    /// Takes in the accounts changed since the queue was last used (`changed`, from the
    /// event's log): each is scored again through `score` and scored directly from now on;
    /// the candidates placed go back among those waiting, to be placed again.
    pub(super) fn resync(
        &mut self,
        changed: &[u32],
        synced: usize,
        mut score: impl FnMut(u32) -> Option<AdlCandidate>,
    ) {
        self.synced = synced;
        let placed = std::mem::take(&mut self.placed);
        self.scored.extend(placed);
        let mut slots = changed.to_vec();
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            let version = {
                let version = self.versions.entry(slot).or_insert(0);
                *version += 1;
                *version
            };
            self.direct.insert(slot);
            self.scorings += 1;
            if let Some(candidate) = score(slot) {
                self.scored.push(Ranked {
                    candidate,
                    slot,
                    version,
                });
            }
        }
    }

    /// The candidate at `place`, placing candidates up to it: the head of those scored is
    /// placed once it beats every group and member not scored yet (ties go to scoring them,
    /// who could win them by id). Else the higher of the next group's and the next member's
    /// bound is taken: a group's members are each bounded through `bound_members` (given the
    /// accounts already scored directly) and wait with their own bound; a member is scored
    /// through `score`. `None` past the queue's end.
    pub(super) fn place_through(
        &mut self,
        place: usize,
        #[cfg_attr(not(debug_assertions), allow(unused_variables))] contract: &str,
        mut bound_members: impl FnMut(GroupKey, &BTreeSet<u32>) -> Vec<(u32, f64)>,
        mut score: impl FnMut(u32) -> Option<AdlCandidate>,
    ) -> Option<&AdlCandidate> {
        while self.placed.len() <= place {
            let group = self.groups.peek().map(|(bound, _)| *bound);
            let member = self.pending.peek().map(|(bound, _)| *bound);
            let head_beats_the_rest = match (self.scored.peek(), group.max(member)) {
                (Some(head), Some(bound)) => head.candidate.score > f64::from_bits(bound),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if head_beats_the_rest {
                if let Some(head) = self.scored.pop()
                    && self.current(&head)
                {
                    #[cfg(debug_assertions)]
                    assert_eq!(
                        self.expected.get(self.placed.len()),
                        Some(&head.candidate),
                        "the ADL queue of {contract} leaves the order a score for every holder gives"
                    );
                    self.placed.push(head);
                }
                continue;
            }
            if member >= group {
                // An account changed since it was bounded is scored directly already.
                if let Some((_, slot)) = self.pending.pop()
                    && !self.direct.contains(&slot)
                {
                    self.scorings += 1;
                    if let Some(candidate) = score(slot) {
                        self.scored.push(Ranked {
                            candidate,
                            slot,
                            version: 0,
                        });
                    }
                }
            } else if let Some((_, key)) = self.groups.pop() {
                let bounded = bound_members(key, &self.direct);
                self.bounded += bounded.len() as u64;
                self.pending.extend(
                    bounded
                        .into_iter()
                        .map(|(slot, bound)| (band_key(bound), slot)),
                );
            }
        }
        #[cfg(debug_assertions)]
        if self.placed.len() <= place {
            assert_eq!(
                self.placed.len(),
                self.expected.len(),
                "the ADL queue of {contract} ended early"
            );
        }
        self.placed.get(place).map(|ranked| &ranked.candidate)
    }
}

/// Debug builds: `candidates` in the queue's order.
#[cfg(debug_assertions)]
fn sorted(mut candidates: Vec<AdlCandidate>) -> Vec<AdlCandidate> {
    candidates.sort_by(adl_order);
    candidates
}

impl Engine {
    /// Debug builds: the queue a score for every opposite holder in profit gives, in order.
    #[cfg(debug_assertions)]
    fn full_adl_ranking(
        &self,
        instrument: &Instrument,
        side: PositionSide,
        mark: Decimal,
    ) -> Vec<AdlCandidate> {
        sorted(
            self.adl_scored(instrument, side, mark)
                .into_iter()
                .map(|(_, candidate)| candidate)
                .collect(),
        )
    }
}

impl Engine {
    /// Files again every account changed since the last filing (see the module documentation).
    pub(super) fn refile_changed(&mut self) {
        let changed = self.accounts.take_changed();
        // A queue kept for the rest of the event scores these again at its next use.
        if !self.adl_queues.is_empty() {
            self.adl_event_changes.extend_from_slice(&changed);
        }
        if !self.adl_index.built {
            return;
        }
        for slot in changed {
            self.refile(slot);
        }
    }

    /// Files every account in the ADL index now, as the first ranking otherwise does, so that
    /// [`Engine::adl_candidates`] at a contract's current mark ranks through the index instead of
    /// scoring every holder (an account shard about to offer candidates, a test of the index).
    pub fn file_adl_index(&mut self) {
        self.refile_changed();
        if !self.adl_index.built {
            self.build_adl_index();
        }
    }

    /// Files every account.
    pub(super) fn build_adl_index(&mut self) {
        self.accounts.take_changed();
        self.adl_index = AdlIndex::empty(&self.venue);
        let slots = u32::try_from(self.accounts.len()).unwrap_or(u32::MAX);
        for slot in 0..slots {
            self.refile(slot);
        }
    }

    /// Files the account in `slot` again as it is, changing only the filings that differ.
    fn refile(&mut self, slot: u32) {
        let held: SmallVec<[Arc<Instrument>; 2]> = self
            .accounts
            .by_slot(slot)
            .map(|account| {
                account
                    .positions
                    .values()
                    .filter(|p| self.indexed_contract(&p.instrument))
                    .map(|p| Arc::clone(&p.instrument))
                    .collect()
            })
            .unwrap_or_default();
        // Every contract held is numbered and given its reference price before the groups
        // read the references.
        for instrument in &held {
            self.adl_contract_number(instrument);
            if instrument.style == Style::Inverse {
                self.adl_coin_number(instrument.settlement.as_str());
            }
        }
        let settlement = self.venue.settlement_asset.as_str();
        // The wallet's other coins, and the underlying coins short calls are bounded by.
        let coins: SmallVec<[CompactString; 2]> = match self.accounts.by_slot(slot) {
            Some(account) if !held.is_empty() => self
                .ledger
                .wallet(&account.id)
                .filter(|(symbol, _)| *symbol != settlement)
                .map(|(symbol, _)| symbol.into())
                .chain(account.positions.values().filter_map(
                    |p| match self.short_option_floor(p) {
                        Some(ShortOptionFloor::Coin { symbol, .. }) => Some(symbol.into()),
                        _ => None,
                    },
                ))
                .collect(),
            _ => SmallVec::new(),
        };
        for symbol in &coins {
            self.adl_coin_number(symbol);
        }
        let filings: SmallVec<[Filing; 2]> = match self.accounts.by_slot(slot) {
            Some(account) => {
                let wallet = self.adl_wallet_terms(account);
                account
                    .positions
                    .values()
                    .filter(|p| self.indexed_contract(&p.instrument))
                    .filter_map(|p| {
                        // A contract beyond the index's numbers is ranked by a full scan
                        // (see `indexed_ranking`).
                        let number = *self.adl_index.numbers.get(p.instrument.name.as_str())?;
                        let group = if p.instrument.style == Style::Inverse {
                            self.adl_inverse_group(account, p)
                        } else {
                            wallet
                                .as_ref()
                                .and_then(|wallet| self.adl_group(account, p, wallet))
                        };
                        Some((number, group))
                    })
                    .collect()
            }
            None => SmallVec::new(),
        };
        let index = &mut self.adl_index;
        let mut numbers: SmallVec<[u16; 2]> = SmallVec::new();
        for (number, group) in filings {
            let group = group.and_then(|(key, profile)| {
                Some(GroupKey {
                    profile: index.profile_number(profile)?,
                    ..key
                })
            });
            let Some(contract) = index.contracts.get_mut(usize::from(number)) else {
                continue;
            };
            let unchanged = match (contract.places.get(&slot), group) {
                (Some(Place::Group(filed, _)), Some(key)) => *filed == key,
                (Some(Place::Loose), None) => true,
                _ => false,
            };
            if !unchanged {
                contract.remove(slot);
                contract.insert(slot, group);
            }
            numbers.push(number);
        }
        let before = index.filed_in.get(&slot);
        if before.is_some_and(|before| *before == numbers)
            || (before.is_none() && numbers.is_empty())
        {
            return;
        }
        if let Some(before) = index.filed_in.remove(&slot) {
            for number in before
                .into_iter()
                .filter(|number| !numbers.contains(number))
            {
                if let Some(contract) = index.contracts.get_mut(usize::from(number)) {
                    contract.remove(slot);
                }
            }
        }
        if !numbers.is_empty() {
            index.filed_in.insert(slot, numbers);
        }
    }

    /// The number of `instrument` in the index, numbering it if new, and its reference price
    /// set if it has none yet and the contract is priced now; `None` beyond `u16`'s numbers.
    fn adl_contract_number(&mut self, instrument: &Arc<Instrument>) -> Option<u16> {
        let number = match self.adl_index.numbers.get(instrument.name.as_str()) {
            Some(number) => *number,
            None => {
                let number = u16::try_from(self.adl_index.contracts.len()).ok()?;
                self.adl_index
                    .numbers
                    .insert(instrument.name.as_str().into(), number);
                self.adl_index
                    .contracts
                    .push(ContractIndex::new(Arc::clone(instrument)));
                number
            }
        };
        let unpriced = self
            .adl_index
            .contracts
            .get(usize::from(number))
            .is_some_and(|contract| contract.reference.is_nan());
        if unpriced
            && let Some(price) = self
                .perpetual_mark(instrument)
                .map(band_f64)
                .filter(|price| price.is_finite() && *price > 0.0)
            && let Some(contract) = self.adl_index.contracts.get_mut(usize::from(number))
        {
            contract.reference = if instrument.style == Style::Inverse {
                1.0 / price
            } else {
                price
            };
        }
        Some(number)
    }

    /// Whether the index files the holders of `instrument`: a linear perpetual settled in the
    /// venue's settlement coin, or an inverse perpetual settled in another coin.
    fn indexed_contract(&self, instrument: &Instrument) -> bool {
        self.linear_indexed(instrument) || self.inverse_indexed(instrument)
    }

    /// A linear perpetual settled in the venue's settlement coin.
    fn linear_indexed(&self, instrument: &Instrument) -> bool {
        instrument.terms == Terms::Perpetual
            && instrument.style != Style::Inverse
            && instrument.settlement == self.venue.settlement_asset
    }

    /// An inverse perpetual settled in a coin other than the venue's settlement coin (whose
    /// price in the settlement coin a ranking reads), or in the settlement coin itself where the
    /// market prices it (a coin-settled venue's, such as Binance COIN-M's BTC: the contract's
    /// coin is then priced 1 in the settlement coin, whatever the prices).
    fn inverse_indexed(&self, instrument: &Instrument) -> bool {
        instrument.terms == Terms::Perpetual
            && instrument.style == Style::Inverse
            && (instrument.settlement != self.venue.settlement_asset
                || self
                    .adl_index
                    .settlement
                    .as_ref()
                    .is_some_and(|coin| coin.usd_peg.is_none()))
    }

    /// The venue's settlement coin as filing reads it, when it is pegged: filing linear
    /// contracts' holders reads their wallets at its peg (an unpegged one's index moves every
    /// wallet valued in it).
    fn pegged_settlement(&self) -> Option<&SettlementCoin> {
        self.adl_index
            .settlement
            .as_ref()
            .filter(|coin| coin.usd_peg.is_some())
    }

    /// The most short option `position` can take from its holder's equity in the settlement
    /// coin, whatever the prices, the volatility and the time; `None` for any other position,
    /// and for a short option no such bound is known for (given a mark, which may be any
    /// price; valued through a smile that expires first; a negative rate; settled otherwise
    /// than in a pegged coin or its underlying's coin). Black-76 with `F = S e^(rT)` and the
    /// discount `e^(-rT)` (`solvent_risk::valuation`) values a call at most `S` and a put at
    /// most `K e^(-rT)`, at most `K` for `r >= 0`:
    /// - a linear one, premium in its settlement coin `X` (priced `x` USD): `q S x / s` and
    ///   `q K x / s` of the settlement coin (priced `s`), `q` its size in coins; `S / s` is the
    ///   price of the underlying's coin in the settlement coin, so the call takes at most `q x`
    ///   such coins;
    /// - an inverse one, premium in its underlying's coin (`usd / S`, at most 1 and `K / S` a
    ///   coin): the call at most `q` coins, the put `q K / s` of the settlement coin.
    ///
    /// A given mark replaces the model's value: an option's first mark files its short holders
    /// again, loose (`Engine::mark_price`).
    fn short_option_floor<'a>(&'a self, position: &PositionState) -> Option<ShortOptionFloor<'a>> {
        let instrument = &position.instrument;
        let Terms::Option { strike, right, .. } = &instrument.terms else {
            return None;
        };
        if position.size >= Decimal::ZERO
            || position.isolated
            || self.market.rate < 0.0
            || !self.valued_while_held(instrument)
            || self.market.mark.contains_key(instrument.name.as_str())
        {
            return None;
        }
        let settlement = self.pegged_settlement()?;
        let settlement_usd = band_f64(self.asset_usd(&settlement.index, settlement.usd_peg)?);
        let coins = (band_f64(position.size) * band_f64(instrument.contract_size)).abs();
        let strike = band_f64(strike.value());
        let premium_in = self.venue.assets.get(instrument.settlement.as_str())?;
        let underlying = instrument.underlying.as_str();
        let widen = 1.0 + MARGIN;
        // A linear premium's coin in USD (an inverse one's is the underlying's price).
        let premium_usd = band_f64(self.asset_usd(&premium_in.index, premium_in.usd_peg)?);
        let floor = match (instrument.style, right) {
            (Style::Linear, _) if premium_in.usd_peg.is_none() => return None,
            (Style::Linear, OptionRight::Call) => {
                // The coin the index of the underlying prices.
                let coin = self
                    .venue
                    .assets
                    .values()
                    .find(|asset| asset.index == underlying && asset.usd_peg.is_none())?;
                ShortOptionFloor::Coin {
                    symbol: coin.symbol.as_str(),
                    coins: coins * premium_usd * widen,
                }
            }
            (Style::Linear, OptionRight::Put) => {
                ShortOptionFloor::Settlement(coins * strike * premium_usd / settlement_usd * widen)
            }
            (Style::Inverse, _)
                if premium_in.index != underlying || premium_in.usd_peg.is_some() =>
            {
                return None;
            }
            (Style::Inverse, OptionRight::Call) => ShortOptionFloor::Coin {
                symbol: premium_in.symbol.as_str(),
                coins: coins * widen,
            },
            (Style::Inverse, OptionRight::Put) => {
                ShortOptionFloor::Settlement(coins * strike / settlement_usd * widen)
            }
        };
        match floor {
            ShortOptionFloor::Coin { coins, .. } | ShortOptionFloor::Settlement(coins)
                if !coins.is_finite() =>
            {
                None
            }
            _ => Some(floor),
        }
    }

    /// Files the short holders of `option` again at the end of the event: its first given
    /// mark replaces the model's value their filings bound ([`Self::short_option_floor`]), and
    /// they are filed loose from now on.
    pub(super) fn refile_short_holders(&mut self, option: &str) {
        let slots: Vec<u32> = self
            .instrument_holders
            .get(option)
            .into_iter()
            .flatten()
            .copied()
            .filter(|slot| {
                self.accounts
                    .by_slot(*slot)
                    .and_then(|account| account.positions.get(option))
                    .is_some_and(|position| position.size < Decimal::ZERO)
            })
            .collect();
        for slot in slots {
            self.accounts.touch_slot(slot);
        }
    }

    /// Whether a margin report can value option `instrument` until it expires, whatever time
    /// passes: it has a given mark, or its underlying has an index (which is never taken away)
    /// and a smile expiring no earlier than the option (smiles are replaced, never removed, and
    /// the surface keeps every smile not yet expired). Otherwise its account's report may fail
    /// once the last smile expires, and the ranking then scores it by a fallback equity that no
    /// filed bound covers: it stays loose.
    fn valued_while_held(&self, instrument: &Instrument) -> bool {
        let Terms::Option { expiry, .. } = &instrument.terms else {
            return false;
        };
        if self.market.mark.contains_key(instrument.name.as_str()) {
            return true;
        }
        let underlying = instrument.underlying.as_str();
        self.market.index.contains_key(underlying)
            && self
                .smile_summary(underlying)
                .and_then(|summary| summary.latest_expiry)
                .is_some_and(|latest| latest >= *expiry)
    }

    /// The account's wallet, when the account can be filed in a group at all: an account
    /// holding only linear perpetuals settled in the venue's settlement coin (cross or
    /// isolated), long options its report can value for as long as they are held
    /// ([`Self::valued_while_held`]) and short ones whose value is bounded
    /// ([`Self::short_option_floor`]), whose coins are all the venue's and priced (the
    /// settlement coin pegged and above zero). In portfolio mode too: the score reads the
    /// equity, which a margin report sums the same way in either mode (the modes differ in the
    /// requirement). With top-up rules too: a top-up moves money only when monitoring examines
    /// the account, and the transfer logs the account (it is filed again before the next
    /// ranking); a ranking reads the account as it stands.
    fn fileable_wallet(&self, account: &Account) -> Option<FileableWallet<'_>> {
        let coin = self.pegged_settlement()?;
        if !account.positions.values().all(|p| {
            self.linear_indexed(&p.instrument)
                || (worth_at_least_nothing(p) && self.valued_while_held(&p.instrument))
                || self.short_option_floor(p).is_some()
        }) {
            return None;
        }
        let usd = self.asset_usd(&coin.index, coin.usd_peg)?;
        if usd <= Decimal::ZERO {
            return None;
        }
        let mut wallet = FileableWallet {
            coin,
            amount: Decimal::ZERO,
            usd,
            others: SmallVec::new(),
        };
        for (symbol, held) in self.ledger.wallet(&account.id) {
            if symbol == coin.symbol {
                wallet.amount = held;
                continue;
            }
            let asset = self.venue.assets.get(symbol)?;
            let price = self.asset_usd(&asset.index, asset.usd_peg)?;
            wallet.others.push(OtherCoin {
                symbol: asset.symbol.as_str(),
                amount: held,
                usd: price,
            });
        }
        Some(wallet)
    }

    /// What `amount` of the settlement coin adds to a report's equity: its collateral value
    /// over its own USD price, credited at its precision.
    fn wallet_value(
        &self,
        coin: &SettlementCoin,
        amount: Decimal,
        usd: Decimal,
    ) -> Option<Decimal> {
        self.coin_value(coin, coin.symbol.as_str(), amount, usd, usd)
    }

    /// What `amount` of the coin `symbol`, priced `coin_usd`, adds to a report's equity in the
    /// settlement coin (priced `usd`): its collateral value converted, credited at the
    /// settlement coin's precision (`PreparedAccount::with_rules` sums the same terms).
    fn coin_value(
        &self,
        coin: &SettlementCoin,
        symbol: &str,
        amount: Decimal,
        coin_usd: Decimal,
        usd: Decimal,
    ) -> Option<Decimal> {
        let schedule = self.venue.collateral.get(symbol);
        let valued = solvent_risk::collateral::value(schedule, amount, coin_usd);
        Some(rounding::credit(
            valued.collateral_value_usd.checked_div(usd)?,
            coin.precision,
        ))
    }

    /// A lower bound of what the settlement coin in `wallet` adds to the account's equity:
    /// `amount x ratio` inside the schedule's first tier (the exact figure beyond it), less one
    /// unit of the precision.
    fn adl_wallet_floor(&self, wallet: &FileableWallet<'_>) -> Option<f64> {
        let FileableWallet {
            coin, amount, usd, ..
        } = *wallet;
        let amount_f64 = band_f64(amount);
        let value = match coin.first_tier {
            // A loan counts at its full value.
            _ if amount < Decimal::ZERO => amount_f64 * (1.0 + MARGIN),
            None => 0.0,
            Some((up_to, ratio))
                if up_to
                    .is_none_or(|up_to| amount_f64 * band_f64(usd) <= up_to * (1.0 - MARGIN)) =>
            {
                amount_f64 * ratio.max(0.0) * (1.0 - MARGIN)
            }
            Some(_) => band_f64(self.wallet_value(coin, amount, usd)?) * (1.0 - MARGIN),
        };
        Some(value - coin.unit)
    }

    /// The wallet's part of every filing of the account: the settlement coin's floor, and each
    /// other coin as a term `c pi` of the rest, `pi` its price in the settlement coin. A loan
    /// counts at its full value (`c` = the amount, negative); a holding at its schedule's
    /// first ratio (`c` = amount x ratio) for as long as it stays inside the first tier, which
    /// a ranking checks against the coin's cap; a holding without a positive first ratio adds
    /// at least nothing, and takes no term. `None` when the account is not fileable or a coin
    /// is beyond the index's numbers.
    fn adl_wallet_terms(&self, account: &Account) -> Option<WalletTerms> {
        let wallet = self.fileable_wallet(account)?;
        let mut terms = WalletTerms {
            floor: self.adl_wallet_floor(&wallet)?,
            coins: SmallVec::new(),
        };
        for other in &wallet.others {
            let number = *self.adl_index.coin_numbers.get(other.symbol)?;
            let coin = self.adl_index.coins.get(usize::from(number))?;
            let amount = band_f64(other.amount);
            let coefficient = if amount < 0.0 {
                amount
            } else {
                amount * coin.first_ratio
            };
            if coefficient != 0.0 {
                terms.coins.push((number, coefficient, coin.reference));
            }
        }
        Some(terms)
    }

    /// The number of the coin `symbol` in the index, numbering it if new, with its reference
    /// price (its USD price over the settlement coin's) set if it has none yet and both are
    /// priced now; `None` for a coin the venue does not list or beyond `u16`'s numbers.
    fn adl_coin_number(&mut self, symbol: &str) -> Option<u16> {
        let asset = self.venue.assets.get(symbol)?;
        let number = match self.adl_index.coin_numbers.get(symbol) {
            Some(number) => *number,
            None => {
                let (ratio, tier_up_to) = self
                    .venue
                    .collateral
                    .get(symbol)
                    .and_then(|schedule| schedule.tiers.first())
                    .map_or((0.0, None), |tier| {
                        (band_f64(tier.ratio).max(0.0), tier.up_to_usd.map(band_f64))
                    });
                let number = u16::try_from(self.adl_index.coins.len()).ok()?;
                self.adl_index.coin_numbers.insert(symbol.into(), number);
                self.adl_index.coins.push(CoinIndex {
                    index: asset.index.as_str().into(),
                    usd_peg: asset.usd_peg,
                    first_ratio: ratio,
                    tier_up_to,
                    reference: f64::NAN,
                });
                number
            }
        };
        let unpriced = self
            .adl_index
            .coins
            .get(usize::from(number))
            .is_some_and(|coin| coin.reference.is_nan());
        if unpriced
            && let Some(price) = self.adl_coin_price(usize::from(number))
            && price.is_finite()
            && price > 0.0
            && let Some(coin) = self.adl_index.coins.get_mut(usize::from(number))
        {
            coin.reference = price;
        }
        Some(number)
    }

    /// The coin numbered `number` priced in the settlement coin now, `None` when either has
    /// no price.
    fn adl_coin_price(&self, number: usize) -> Option<f64> {
        let coin = self.adl_index.coins.get(number)?;
        let settlement = self.adl_index.settlement.as_ref()?;
        Some(
            band_f64(self.asset_usd(&coin.index, coin.usd_peg)?)
                / band_f64(self.asset_usd(&settlement.index, settlement.usd_peg)?),
        )
    }

    /// The equity of an account the index can file in a group ([`Self::fileable_wallet`]), as
    /// its margin report gives it: each coin's collateral value in the settlement coin and each
    /// perpetual's unrealised P&L at its mark (else its index), each credited at the settlement
    /// coin's precision (`PreparedAccount::figures_exact` sums the same terms). `None` for any
    /// other account.
    pub(super) fn filed_equity(&self, account: &Account) -> Option<Decimal> {
        // An option's value needs its model: the report gives it.
        if account
            .positions
            .values()
            .any(|p| matches!(p.instrument.terms, Terms::Option { .. }))
        {
            return None;
        }
        let wallet = self.fileable_wallet(account)?;
        let coin = wallet.coin;
        let mut equity = self.wallet_value(coin, wallet.amount, wallet.usd)?;
        for other in &wallet.others {
            equity = equity.checked_add(self.coin_value(
                coin,
                other.symbol,
                other.amount,
                other.usd,
                wallet.usd,
            )?)?;
        }
        for position in account.positions.values().filter(|p| !p.isolated) {
            let mark = self.perpetual_mark(&position.instrument)?;
            let pnl = solvent_risk::standard::unrealized_pnl(
                &position.instrument,
                position.size,
                position.entry,
                mark,
            );
            equity = equity.checked_add(rounding::credit(pnl, coin.precision))?;
        }
        Some(equity)
    }

    /// The group of `account`'s position `own`, but for its profile's number, and that
    /// profile, given the wallet's terms ([`Self::adl_wallet_terms`]); `None` when it is loose
    /// (see the module documentation).
    fn adl_group(
        &self,
        account: &Account,
        own: &PositionState,
        wallet: &WalletTerms,
    ) -> Option<(GroupKey, Profile)> {
        let unit = self.adl_index.settlement.as_ref()?.unit;
        let coins = (band_f64(own.size) * band_f64(own.instrument.contract_size)).abs();
        let entry = band_f64(own.entry);
        if !(coins > 0.0 && entry > 0.0 && coins.is_finite() && entry.is_finite()) {
            return None;
        }
        // `A`: the wallet, and every other position's P&L and coin's value at the reference
        // prices, each credited at the precision.
        let mut rest = Rest::new(wallet.floor, coins);
        for other in account.positions.values() {
            // An isolated position's P&L is its own pool's: no term of the cross equity. A long
            // option adds at least nothing to it: left out, the rest is still a lower bound.
            if other.instrument.name == own.instrument.name
                || other.isolated
                || worth_at_least_nothing(other)
            {
                continue;
            }
            // A short option takes at most a loan's worth of its underlying's coin (a call) or
            // a fixed amount (a put).
            match self.short_option_floor(other) {
                Some(ShortOptionFloor::Coin { symbol, coins }) => {
                    let number = *self.adl_index.coin_numbers.get(symbol)?;
                    let reference = self.adl_index.coins.get(usize::from(number))?.reference;
                    rest.add(Term::Coin(number), -coins, reference, 0.0, unit)?;
                    continue;
                }
                Some(ShortOptionFloor::Settlement(amount)) => {
                    rest.subtract(amount, unit);
                    continue;
                }
                None => {}
            }
            let number = *self.adl_index.numbers.get(other.instrument.name.as_str())?;
            let reference = self.adl_index.contracts.get(usize::from(number))?.reference;
            rest.add(
                Term::Contract(number),
                band_f64(other.size) * band_f64(other.instrument.contract_size),
                reference,
                band_f64(other.entry),
                unit,
            )?;
        }
        for &(number, coefficient, reference) in &wallet.coins {
            rest.add(Term::Coin(number), coefficient, reference, 0.0, unit)?;
        }
        // The position's own contribution is credited at the precision too.
        let key = GroupKey {
            long: own.size > Decimal::ZERO,
            isolated: own.isolated,
            inverse: false,
            coin: 0,
            size: bucket(coins, LN_SIZE_STEP),
            entry: bucket(entry, LN_ENTRY_STEP),
            rest: SignedBucket::of(0.0),
            profile: 0,
        };
        rest.filed(key, unit)
    }

    /// What an inverse holder's filing reads of its account (see the module documentation):
    /// the coin `C` its contract settles in, by number, its holding of it, and its holding of
    /// the venue's settlement coin; `None` unless the account holds only cross inverse
    /// perpetuals settled in `C` and long options its report can value while held, and its
    /// wallet holds nothing but `C` and the settlement coin (none owed; a holding of the
    /// settlement coin beside another `C` only where it is pegged, see [`Self::settled_floor`]).
    /// Top-up rules are no matter (see [`Self::fileable_wallet`]).
    fn inverse_wallet(
        &self,
        account: &Account,
        own: &PositionState,
    ) -> Option<(u16, Decimal, Decimal)> {
        let coin = own.instrument.settlement.as_str();
        self.adl_index.settlement.as_ref()?;
        if own.isolated
            || !account.positions.values().all(|p| {
                (self.inverse_indexed(&p.instrument)
                    && p.instrument.settlement == coin
                    && !p.isolated)
                    || (worth_at_least_nothing(p) && self.valued_while_held(&p.instrument))
            })
        {
            return None;
        }
        let settlement = self.adl_index.settlement.as_ref()?;
        let (mut held, mut settled) = (Decimal::ZERO, Decimal::ZERO);
        for (symbol, amount) in self.ledger.wallet(&account.id) {
            if amount < Decimal::ZERO {
                return None;
            }
            if symbol == coin {
                held = amount;
            } else if symbol == settlement.symbol {
                settled = amount;
            } else {
                return None;
            }
        }
        Some((*self.adl_index.coin_numbers.get(coin)?, held, settled))
    }

    /// A lower bound of what `amount` of the settlement coin (not owed) adds to a report's
    /// equity before its crediting ([`Self::adl_wallet_floor`] without its unit); fixed while
    /// the account and the settlement coin's price stand.
    fn settled_floor(&self, amount: Decimal) -> Option<f64> {
        if amount.is_zero() {
            return Some(0.0);
        }
        let coin = self.pegged_settlement()?;
        let usd = self.asset_usd(&coin.index, coin.usd_peg)?;
        let floor = self.adl_wallet_floor(&FileableWallet {
            coin,
            amount,
            usd,
            others: SmallVec::new(),
        })?;
        Some(floor + coin.unit)
    }

    /// The group of `account`'s inverse position `own`, but for its profile's number, and that
    /// profile; `None` when it is loose. In reciprocal prices `u = 1 / p` an inverse position
    /// of `s` USD at entry `e` gains `s (1 / e - u)` of its coin `C`: the rest is read in `C`,
    /// `A = W r + sum_j (-s_j) (u_ref_j - 1 / e_j)` with each other contract a term
    /// `(-s_j) (u_j - u_ref_j)`, and the holding `W` of `C` counted at its first ratio `r` (a
    /// `Held` term, which a ranking checks against the coin's first tier). A holding of the
    /// settlement coin worth at least `V` of it adds `V / q` of `C`, `q` the price of `C` in
    /// it: `V / q_ref` in `A` and the term `V (1 / q - 1 / q_ref)` (`Reciprocal`).
    fn adl_inverse_group(
        &self,
        account: &Account,
        own: &PositionState,
    ) -> Option<(GroupKey, Profile)> {
        let (coin, held, settled) = self.inverse_wallet(account, own)?;
        let first_ratio = self.adl_index.coins.get(usize::from(coin))?.first_ratio;
        let size = band_f64(own.size).abs();
        let entry = band_f64(own.entry);
        if !(size > 0.0 && entry > 0.0 && size.is_finite() && entry.is_finite()) {
            return None;
        }
        // The rounding units are taken at the ranking, where `q` is known (`GroupKey::bound`).
        let counted = band_f64(held) * first_ratio;
        let mut rest = Rest::new(counted, size);
        if counted > 0.0 {
            // In `A` already: the term only carries the first tier's check.
            rest.add(Term::Held(coin), counted, 0.0, 0.0, 0.0)?;
        }
        let settled = self.settled_floor(settled)?;
        if settled > 0.0 {
            let reference = self.adl_index.coins.get(usize::from(coin))?.reference;
            rest.add(Term::Reciprocal(coin), settled, 1.0 / reference, 0.0, 0.0)?;
        }
        for other in account.positions.values() {
            if other.instrument.name == own.instrument.name || worth_at_least_nothing(other) {
                continue;
            }
            let number = *self.adl_index.numbers.get(other.instrument.name.as_str())?;
            let reference = self.adl_index.contracts.get(usize::from(number))?.reference;
            rest.add(
                Term::Contract(number),
                -band_f64(other.size),
                reference,
                1.0 / band_f64(other.entry),
                0.0,
            )?;
        }
        let key = GroupKey {
            long: own.size > Decimal::ZERO,
            isolated: false,
            inverse: true,
            coin,
            size: bucket(size, LN_SIZE_STEP),
            entry: bucket(1.0 / entry, LN_ENTRY_STEP),
            rest: SignedBucket::of(0.0),
            profile: 0,
        };
        rest.filed(key, 0.0)
    }

    /// [`Self::adl_member_bound`] of an inverse position `own` at `mark`, at the prices now:
    /// the score `P N / E` with `P = s x` and `N = s u` in the coin and `E` the report's equity
    /// in the settlement coin, at least the holding's credited value, each other contract's P&L
    /// at `q` (the coin's price in the settlement coin) less a unit, and `P q` less a unit.
    /// `None` when the position is not in profit at `mark`; infinite when the rest is not known
    /// positive.
    fn adl_inverse_member_bound(
        &self,
        account: &Account,
        own: &PositionState,
        mark: f64,
    ) -> Option<f64> {
        let size = band_f64(own.size).abs();
        let reciprocal = 1.0 / mark;
        let entry_reciprocal = 1.0 / band_f64(own.entry);
        let in_profit = if own.size > Decimal::ZERO {
            entry_reciprocal * (1.0 + MARGIN) - reciprocal
        } else {
            reciprocal - entry_reciprocal * (1.0 - MARGIN)
        };
        // NaN (a mark of zero) is no profit either.
        if own.size.is_zero() || in_profit.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let bounded = || -> Option<f64> {
            let settlement = self.adl_index.settlement.as_ref()?;
            let (coin, held, settled) = self.inverse_wallet(account, own)?;
            let coin_price = self.adl_coin_price(usize::from(coin))?;
            let settlement_usd = self.asset_usd(&settlement.index, settlement.usd_peg)?;
            let coin_usd = {
                let coin = self.adl_index.coins.get(usize::from(coin))?;
                self.asset_usd(&coin.index, coin.usd_peg)?
            };
            let symbol = own.instrument.settlement.as_str();
            let wallet =
                band_f64(self.coin_value(settlement, symbol, held, coin_usd, settlement_usd)?);
            // The holding's term, and this position's own, each credited at the precision; the
            // settlement coin's (worth at least `settled`), credited too.
            let settled = self.settled_floor(settled)?;
            let mut rest = wallet - 2.0 * settlement.unit;
            let mut magnitude = wallet.abs();
            if settled > 0.0 {
                rest += settled - settlement.unit;
                magnitude += settled;
            }
            for other in account.positions.values() {
                if other.instrument.name == own.instrument.name || worth_at_least_nothing(other) {
                    continue;
                }
                let other_reciprocal = 1.0 / band_f64(self.perpetual_mark(&other.instrument)?);
                let other_size = band_f64(other.size);
                let other_entry = 1.0 / band_f64(other.entry);
                rest +=
                    other_size * (other_entry - other_reciprocal) * coin_price - settlement.unit;
                magnitude += other_size.abs() * (other_entry + other_reciprocal) * coin_price;
            }
            rest -= MARGIN * magnitude;
            if rest.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return None;
            }
            let size = size * (1.0 + MARGIN);
            let profit = size * in_profit;
            let bound =
                profit * size * reciprocal / (rest + profit * coin_price) * (1.0 + MARGIN).powi(2);
            (bound.is_finite() && bound >= 0.0).then_some(bound)
        };
        Some(bounded().unwrap_or(f64::INFINITY))
    }

    /// A bound of the ADL score of `account`'s position in `instrument` at `mark` (as `f64`),
    /// from its wallet and positions at the prices now: the group's bound (see the module
    /// documentation) without the buckets, each figure widened by the margin and each
    /// contribution's rounding by a unit. `None` when the position is not there or not in
    /// profit at `mark` (no candidate); infinite when the rest is not known positive.
    fn adl_member_bound(
        &self,
        account: &Account,
        instrument: &Instrument,
        mark: f64,
    ) -> Option<f64> {
        let own = account.positions.get(instrument.name.as_str())?;
        if own.instrument.style == Style::Inverse {
            return self.adl_inverse_member_bound(account, own, mark);
        }
        let coins = (band_f64(own.size) * band_f64(own.instrument.contract_size)).abs();
        let entry = band_f64(own.entry);
        let in_profit = if own.size > Decimal::ZERO {
            mark - entry * (1.0 - MARGIN)
        } else {
            entry * (1.0 + MARGIN) - mark
        };
        if own.size.is_zero() || in_profit <= 0.0 {
            return None;
        }
        let bounded = || -> Option<f64> {
            let settlement = self.adl_index.settlement.as_ref()?;
            let wallet = self.adl_wallet_terms(account)?;
            // The position's own contribution is credited at the precision too.
            let mut rest = wallet.floor - settlement.unit;
            let mut magnitude = wallet.floor.abs();
            for other in account.positions.values() {
                if other.instrument.name == instrument.name
                    || other.isolated
                    || worth_at_least_nothing(other)
                {
                    continue;
                }
                let taken = match self.short_option_floor(other) {
                    Some(ShortOptionFloor::Coin { symbol, coins }) => Some(
                        coins
                            * self.adl_coin_price(usize::from(
                                *self.adl_index.coin_numbers.get(symbol)?,
                            ))?,
                    ),
                    Some(ShortOptionFloor::Settlement(amount)) => Some(amount),
                    None => None,
                };
                if let Some(taken) = taken {
                    rest -= taken + settlement.unit;
                    magnitude += taken.abs();
                    continue;
                }
                let price = band_f64(self.perpetual_mark(&other.instrument)?);
                let other_coins = band_f64(other.size) * band_f64(other.instrument.contract_size);
                let other_entry = band_f64(other.entry);
                rest += other_coins * (price - other_entry) - settlement.unit;
                magnitude += other_coins.abs() * (price.abs() + other_entry.abs());
            }
            let settlement_usd = band_f64(self.asset_usd(&settlement.index, settlement.usd_peg)?);
            for &(number, coefficient, _) in &wallet.coins {
                let coin = self.adl_index.coins.get(usize::from(number))?;
                let value = coefficient * self.adl_coin_price(usize::from(number))?;
                // A holding beyond its first tier counts at least nothing.
                let inside = value <= coin.cap(settlement_usd) * (1.0 - MARGIN);
                let counted = if coefficient > 0.0 && !inside {
                    0.0
                } else {
                    value
                };
                rest += counted - settlement.unit;
                magnitude += counted.abs();
            }
            rest -= MARGIN * magnitude;
            // A rest not known positive bounds nothing.
            if rest.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return None;
            }
            let size = coins * (1.0 + MARGIN);
            let y = size * in_profit / rest;
            let bound = size * mark * score_shape(own.isolated, y) * (1.0 + MARGIN);
            (!bound.is_nan()).then_some(bound)
        };
        Some(bounded().unwrap_or(f64::INFINITY))
    }

    /// The ADL queue of a bankrupt `side` position in `instrument` at `mark`: ranked through
    /// the index where it files the contract's holders, else every opposite holder in profit
    /// scored.
    pub(super) fn adl_ranking(
        &mut self,
        instrument: &Instrument,
        side: PositionSide,
        mark: Decimal,
    ) -> AdlRanking {
        self.refile_changed();
        if !self.adl_index.built {
            self.build_adl_index();
        }
        let mut ranking = self.queue_ranking(instrument, side, mark);
        ranking.synced = self.adl_event_changes.len();
        ranking.mark = mark;
        ranking
    }

    /// Brings `ranking`, made earlier in this event, up to date for a bankruptcy now: the
    /// accounts changed since are scored again (see [`AdlRanking::resync`]).
    pub(super) fn resync_adl_queue(
        &mut self,
        ranking: &mut AdlRanking,
        instrument: &Instrument,
        side: PositionSide,
        mark: Decimal,
    ) {
        self.refile_changed();
        let wanted_sign = opposite_sign(side);
        let synced = self.adl_event_changes.len();
        let changed = self
            .adl_event_changes
            .get(ranking.synced..)
            .unwrap_or_default();
        ranking.resync(changed, synced, |slot| {
            self.accounts
                .by_slot(slot)
                .and_then(|a| self.adl_candidate(a, instrument, wanted_sign, mark))
        });
        #[cfg(debug_assertions)]
        {
            ranking.expected = self.full_adl_ranking(instrument, side, mark);
        }
    }

    /// The ADL queue's ranking of a bankrupt `side` position in `instrument` at `mark`, as the
    /// index stands: through it where it serves the contract ([`Self::indexed_ranking`]), else
    /// every opposite holder in profit scored.
    pub(super) fn queue_ranking(
        &self,
        instrument: &Instrument,
        side: PositionSide,
        mark: Decimal,
    ) -> AdlRanking {
        self.indexed_ranking(instrument, side, mark)
            .unwrap_or_else(|| AdlRanking::of_all(self.adl_scored(instrument, side, mark)))
    }

    /// The ranking through the index, `None` when it does not serve the contract (or the mark
    /// is not the one its holders are valued at).
    pub(super) fn indexed_ranking(
        &self,
        instrument: &Instrument,
        side: PositionSide,
        mark: Decimal,
    ) -> Option<AdlRanking> {
        if !self.adl_index.built
            || self.accounts.any_changed()
            || !self.indexed_contract(instrument)
            || self.perpetual_mark(instrument) != Some(mark)
        {
            return None;
        }
        let number = *self.adl_index.numbers.get(instrument.name.as_str())?;
        let contract = self.adl_index.contracts.get(usize::from(number))?;
        let direct: BTreeSet<u32> = contract.loose.clone();
        let wanted_sign = opposite_sign(side);
        let candidates: Vec<(u32, AdlCandidate)> = direct
            .iter()
            .filter(|slot| contract.places.contains_key(slot))
            .filter_map(|slot| {
                let account = self.accounts.by_slot(*slot)?;
                Some((
                    *slot,
                    self.adl_candidate(account, instrument, wanted_sign, mark)?,
                ))
            })
            .collect();
        let mark_f64 = band_f64(mark);
        let long = side == PositionSide::Short;
        let moved = |now: Option<f64>, reference: f64, cap: f64| {
            let now = now.unwrap_or(f64::NAN);
            Move {
                change: now - reference,
                scale: now.abs() + reference.abs(),
                now,
                cap,
            }
        };
        let settlement_usd = self
            .adl_index
            .settlement
            .as_ref()
            .and_then(|coin| self.asset_usd(&coin.index, coin.usd_peg))
            .map_or(f64::NAN, band_f64);
        let coins: Vec<Move> = (0..self.adl_index.coins.len())
            .zip(&self.adl_index.coins)
            .map(|(number, coin)| {
                moved(
                    self.adl_coin_price(number),
                    coin.reference,
                    coin.cap(settlement_usd),
                )
            })
            .collect();
        let moves = Moves {
            contracts: self
                .adl_index
                .contracts
                .iter()
                .map(|other| {
                    let now = self.perpetual_mark(&other.instrument).map(band_f64);
                    let now = if other.instrument.style == Style::Inverse {
                        now.map(|price| 1.0 / price)
                    } else {
                        now
                    };
                    moved(now, other.reference, f64::INFINITY)
                })
                .collect(),
            reciprocals: (0..self.adl_index.coins.len())
                .zip(&self.adl_index.coins)
                .map(|(number, coin)| {
                    moved(
                        self.adl_coin_price(number).map(|price| 1.0 / price),
                        1.0 / coin.reference,
                        f64::INFINITY,
                    )
                })
                .collect(),
            // A holding's value in its own coin does not move: each coin's price and cap as
            // above, without a change.
            held: coins
                .iter()
                .map(|coin| Move {
                    change: 0.0,
                    scale: 0.0,
                    ..*coin
                })
                .collect(),
            coins,
            unit: self
                .adl_index
                .settlement
                .as_ref()
                .map_or(f64::NAN, |coin| coin.unit),
        };
        let mut ranking = AdlRanking::of_all(candidates);
        ranking.groups = contract
            .groups
            .keys()
            .filter(|key| key.long == long)
            .filter_map(|key| {
                let bound = match self.adl_index.profiles.get(key.profile as usize) {
                    Some(profile) => key.bound(mark_f64, profile, &moves)?,
                    None => f64::INFINITY,
                };
                Some((band_key(bound), *key))
            })
            .collect();
        ranking.contract = Some(number);
        ranking.direct = direct;
        #[cfg(debug_assertions)]
        {
            ranking.expected = self.full_adl_ranking(instrument, side, mark);
        }
        Some(ranking)
    }

    /// The candidate at `place` of `ranking`'s queue, ranking it that far; `None` past its end.
    pub(super) fn adl_candidate_at<'r>(
        &self,
        ranking: &'r mut AdlRanking,
        instrument: &Instrument,
        side: PositionSide,
        mark: Decimal,
        place: usize,
    ) -> Option<&'r AdlCandidate> {
        let contract = ranking
            .contract
            .and_then(|number| self.adl_index.contracts.get(usize::from(number)));
        let wanted_sign = opposite_sign(side);
        let mark_f64 = band_f64(mark);
        ranking.place_through(
            place,
            &instrument.name,
            |key, direct| {
                contract
                    .and_then(|contract| contract.groups.get(&key))
                    .into_iter()
                    .flatten()
                    .filter(|slot| !direct.contains(slot))
                    .filter_map(|slot| {
                        let account = self.accounts.by_slot(*slot)?;
                        Some((*slot, self.adl_member_bound(account, instrument, mark_f64)?))
                    })
                    .collect()
            },
            |slot| {
                let account = self.accounts.by_slot(slot)?;
                self.adl_candidate(account, instrument, wanted_sign, mark)
            },
        )
    }
}

/// A filing's rest `A` at the reference prices as it is summed, with the magnitude of its
/// figures (for the margin of its `f64` error) and the profile of its terms, for a holder of
/// `size` (coins, or USD for an inverse contract).
struct Rest {
    value: f64,
    magnitude: f64,
    size: f64,
    profile: Profile,
}

impl Rest {
    /// A rest of `floor` (the wallet's part).
    fn new(floor: f64, size: f64) -> Self {
        Self {
            value: floor,
            magnitude: floor.abs(),
            size,
            profile: Profile::new(),
        }
    }

    /// Adds the term `c (p_j - offset)` of `source` (coefficient `c`, reference `p_j`), less
    /// `unit` for its crediting, and files `c / size` in the profile; `None` (loose) when that
    /// ratio is not finite.
    fn add(
        &mut self,
        source: Term,
        coefficient: f64,
        reference: f64,
        offset: f64,
        unit: f64,
    ) -> Option<()> {
        self.value += coefficient * (reference - offset) - unit;
        self.magnitude += coefficient.abs() * (reference.abs() + offset.abs());
        let ratio = coefficient / self.size;
        ratio.is_finite().then(|| {
            self.profile.push(OtherTerm {
                source,
                ratio: SignedBucket::of(ratio),
            });
        })
    }

    /// Takes a fixed `amount` off the rest, less `unit` for its crediting.
    fn subtract(&mut self, amount: f64, unit: f64) {
        self.value -= amount + unit;
        self.magnitude += amount.abs();
    }

    /// `key` with the bucket of the rest per size, less `unit` (the holder's own term credited)
    /// and the margin, and the profile in the order of its sources; `None` (loose) when the ratio
    /// is not finite: a contract or coin never priced.
    fn filed(mut self, key: GroupKey, unit: f64) -> Option<(GroupKey, Profile)> {
        let rest_ratio = (self.value - (unit + MARGIN * self.magnitude)) / self.size;
        if !rest_ratio.is_finite() {
            return None;
        }
        self.profile.sort_unstable_by_key(|other| other.source);
        Some((
            GroupKey {
                rest: SignedBucket::of(rest_ratio),
                ..key
            },
            self.profile,
        ))
    }
}

/// The most a short option can take from its holder's equity, whatever the prices, the
/// volatility and the time (see [`Engine::short_option_floor`]).
#[derive(Clone, Copy, Debug)]
enum ShortOptionFloor<'a> {
    /// A call: the value of `coins` of its underlying's coin `symbol`, at that coin's price in
    /// the settlement coin: a term of the rest, as a loan of them would be.
    Coin { symbol: &'a str, coins: f64 },
    /// A put: this much of the settlement coin, whatever the prices.
    Settlement(f64),
}

/// Whether `position` is a long option: its value, and its contribution to the equity
/// credited at the report's precision, are never below zero, so a rest that leaves it out is
/// still a lower bound.
fn worth_at_least_nothing(position: &PositionState) -> bool {
    matches!(position.instrument.terms, Terms::Option { .. }) && position.size > Decimal::ZERO
}

/// How a score bound grows with `y = x / r` (profit per coin over the rest per coin): `S m`
/// times `h(y) = y / (1 + y)` for a cross position, whose profit is in the equity it is ranked
/// by; `S m` times `y` for an isolated one, whose profit is its own pool's (`P N / R`).
fn score_shape(isolated: bool, y: f64) -> f64 {
    if isolated { y } else { y / (1.0 + y) }
}

/// The sign of the positions that take the other side of a bankrupt `side` position.
pub(super) fn opposite_sign(side: PositionSide) -> Decimal {
    match side {
        PositionSide::Long => -Decimal::ONE,
        PositionSide::Short => Decimal::ONE,
    }
}
