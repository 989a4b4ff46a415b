//! The ADL index: the holders of each linear perpetual filed by a bound on their ADL score, so
//! that ranking a crowded contract's queue scores the few accounts that can lead it instead of
//! every opposite holder in profit.
//!
//! The score (`engine/insurance.rs`) is `P N / E`: the position's unrealised profit `P`, its
//! notional `N` and the account's equity `E`, all at the mark. For a holder of `S` coins of the
//! contract (size times contract size) at entry `e`, at a mark `m` where it is in profit by
//! `x = |m - e|` per coin, `P = S x` and `N = S m`. Its equity is the rest of the account `R`
//! (wallet and other positions) plus `P`, less at most one unit of the report precision per
//! position for the rounding of each contribution. So with `R'` a lower bound of that rest,
//!
//! ```text
//! score = S^2 m x / E <= S^2 m x / (R' + S x) = S m h(lambda x),   h(y) = y / (1 + y),
//! lambda = S / R'
//! ```
//!
//! increasing in `S`, in `lambda` and in `x`. Holders are filed in groups by side and by
//! geometric buckets of `S`, `lambda` and entry; a group's bound at a mark takes the top of
//! each bucket (the entry bucket's far edge for `x`). A ranking scores the groups in order of
//! their bound and places a scored candidate once its score beats every group not yet scored:
//! exactly the order a score for every holder gives, found by scoring those whose group's bound
//! reaches the queue's head.
//!
//! `R'` needs no price of the contract itself: the wallet's value (one coin, the venue's
//! settlement coin, pegged) and, for every other position, its P&L at the far end of the
//! account's safe band on the price it is valued at. Between two events every price sits inside
//! every band registered on it (a price reaching one examines the account, which re-bands it),
//! so the bound holds; within an event, the accounts whose band the event's price crossed and
//! that were not examined yet are scored directly (found through the band sets, as the update
//! finds them). What does not fit (portfolio mode, isolated or inverse positions, options,
//! other coins, top-up rules, a rest not known to be positive, a missing band) is filed as
//! *loose* and scored at every ranking. Every account written or whose wallet moved is filed
//! again at the end of each event (`AccountBook::take_changed`), and before a ranking.
//!
//! A cache of the state: never hashed nor snapshotted, rebuilt from the accounts after a
//! restore, a venue change or an update of the settlement coin's index.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::collections::{BinaryHeap, HashMap};

use foldhash::fast::FixedState;

use super::insurance::{AdlCandidate, adl_order};

/// `ln` of the size buckets' ratio, 2^(1/4): a group's `S` is within 19% of its bound.
const LN_SIZE_STEP: f64 = std::f64::consts::LN_2 / 4.0;
/// `ln` of the `lambda` buckets' ratio, 2^(1/8) (9%).
const LN_LEVERAGE_STEP: f64 = std::f64::consts::LN_2 / 8.0;
/// `ln` of the entry buckets' ratio, 1.001: a holder 3% in profit has `x` within 3% of its
/// group's bound.
const LN_ENTRY_STEP: f64 = 0.000_999_500_333_083_533_4;
/// Relative margin on every `f64` bound: the figures are converted from exact decimals and
/// combined in a few operations (errors of a few 1e-16), so a margin of 1e-9 keeps each bound
/// above the exact figure it stands for.
const MARGIN: f64 = 1e-9;

/// A group of holders of one contract: their side and buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct GroupKey {
    long: bool,
    size: i32,
    leverage: i32,
    entry: i32,
}

impl GroupKey {
    /// The bound of every member's score at `mark` (see the module documentation), `None` when
    /// no member can be in profit there.
    fn bound(self, mark: f64) -> Option<f64> {
        let edge = |step: f64, bucket: i32| (step * f64::from(bucket)).exp();
        let in_profit = if self.long {
            mark - edge(LN_ENTRY_STEP, self.entry) * (1.0 - MARGIN)
        } else {
            edge(LN_ENTRY_STEP, self.entry.saturating_add(1)) * (1.0 + MARGIN) - mark
        };
        if in_profit <= 0.0 {
            return None;
        }
        let size = edge(LN_SIZE_STEP, self.size.saturating_add(1)) * (1.0 + MARGIN);
        let lambda = edge(LN_LEVERAGE_STEP, self.leverage.saturating_add(1)) * (1.0 + MARGIN);
        let y = lambda * in_profit;
        let bound = size * mark * (y / (1.0 + y)) * (1.0 + MARGIN);
        // An infinite factor bounds nothing: the group is scored first.
        Some(if bound.is_nan() { f64::INFINITY } else { bound })
    }
}

/// The bucket of a positive `value` for buckets of ratio `exp(step)`.
#[allow(clippy::cast_possible_truncation)]
fn bucket(value: f64, step: f64) -> i32 {
    // Saturating: a value out of `i32`'s buckets shares the last one, still bounded by it
    // from the side that matters only if finite, which the filing checks.
    (value.ln() / step).floor() as i32
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
#[derive(Clone, Debug, Default)]
struct ContractIndex {
    places: HashMap<u32, Place, FixedState>,
    groups: HashMap<GroupKey, Vec<u32>, FixedState>,
    loose: BTreeSet<u32>,
}

impl ContractIndex {
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
    /// (`AccountBook::take_changed`). False after a restore, a venue change or a settlement
    /// coin's index update: the next ranking files everyone again.
    built: bool,
    /// Contract numbers by name.
    numbers: HashMap<CompactString, u16, FixedState>,
    contracts: Vec<ContractIndex>,
    /// Per account, the contracts it is filed in.
    filed_in: HashMap<u32, SmallVec<[u16; 2]>, FixedState>,
    /// What filing reads of the venue's settlement coin, read once per venue.
    settlement: Option<SettlementCoin>,
}

/// The venue's settlement coin as filing reads it (see [`Engine::fileable_wallet`]).
#[derive(Clone, Debug)]
struct SettlementCoin {
    symbol: CompactString,
    index: CompactString,
    usd_peg: Decimal,
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
                    // Unpegged, its index moves every wallet: nobody is filed in a group.
                    usd_peg: asset.usd_peg?,
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
    /// placed once it beats every group not scored yet (ties go to scoring the group, whose
    /// members could win them by id); else the group with the highest bound is scored through
    /// `score_group`, given the accounts already scored directly. `None` past the queue's end.
    pub(super) fn place_through(
        &mut self,
        place: usize,
        #[cfg_attr(not(debug_assertions), allow(unused_variables))] contract: &str,
        mut score_group: impl FnMut(GroupKey, &BTreeSet<u32>) -> Vec<(u32, AdlCandidate)>,
    ) -> Option<&AdlCandidate> {
        while self.placed.len() <= place {
            let head_beats_groups = match (self.scored.peek(), self.groups.peek()) {
                (Some(head), Some((bound, _))) => head.candidate.score > f64::from_bits(*bound),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if head_beats_groups {
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
            if let Some((_, key)) = self.groups.pop() {
                let scored = score_group(key, &self.direct);
                self.scorings += scored.len() as u64;
                self.scored
                    .extend(scored.into_iter().map(|(slot, candidate)| Ranked {
                        candidate,
                        slot,
                        version: 0,
                    }));
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
        let filings: SmallVec<[(&str, Option<GroupKey>); 2]> = match self.accounts.by_slot(slot) {
            Some(account) => {
                let floor = self.adl_wallet_floor(account);
                account
                    .positions
                    .values()
                    .filter(|p| self.indexed_contract(&p.instrument))
                    .map(|p| {
                        let group = floor.and_then(|floor| self.adl_group(account, p, floor));
                        (p.instrument.name.as_str(), group)
                    })
                    .collect()
            }
            None => SmallVec::new(),
        };
        let index = &mut self.adl_index;
        let mut numbers: SmallVec<[u16; 2]> = SmallVec::new();
        for (name, group) in filings {
            let number = match index.numbers.get(name) {
                Some(number) => *number,
                None => {
                    let Ok(number) = u16::try_from(index.contracts.len()) else {
                        // More contracts than the index numbers: this one is ranked by a
                        // full scan (see `indexed_ranking`).
                        continue;
                    };
                    index.numbers.insert(name.into(), number);
                    index.contracts.push(ContractIndex::default());
                    number
                }
            };
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

    /// Whether the index files the holders of `instrument`: a linear perpetual settled in the
    /// venue's settlement coin.
    fn indexed_contract(&self, instrument: &Instrument) -> bool {
        instrument.terms == Terms::Perpetual
            && instrument.style != Style::Inverse
            && instrument.settlement == self.venue.settlement_asset
    }

    /// The settlement coin, the account's amount of it and the coin's USD price, when the
    /// account can be filed in a group at all: a cross account without top-up rules, holding
    /// only linear perpetuals settled in the venue's settlement coin, not isolated, with only
    /// that coin (pegged, priced above zero) in its wallet.
    fn fileable_wallet(&self, account: &Account) -> Option<(&SettlementCoin, Decimal, Decimal)> {
        let coin = self.adl_index.settlement.as_ref()?;
        if account.mode != MarginMode::Cross
            || !account.top_ups.is_empty()
            || !account
                .positions
                .values()
                .all(|p| !p.isolated && self.indexed_contract(&p.instrument))
        {
            return None;
        }
        let mut amount = Decimal::ZERO;
        for (asset, held) in self.ledger.wallet(&account.id) {
            if asset != coin.symbol {
                return None;
            }
            amount = held;
        }
        let usd = self
            .market
            .index
            .get(coin.index.as_str())
            .map_or(coin.usd_peg, |p| p.value());
        (usd > Decimal::ZERO).then_some((coin, amount, usd))
    }

    /// What `amount` of the settlement coin adds to a report's equity: its collateral value
    /// over its own USD price, credited at its precision.
    fn wallet_value(
        &self,
        coin: &SettlementCoin,
        amount: Decimal,
        usd: Decimal,
    ) -> Option<Decimal> {
        let schedule = self.venue.collateral.get(coin.symbol.as_str());
        let valued = solvent_risk::collateral::value(schedule, amount, usd);
        Some(rounding::credit(
            valued.collateral_value_usd.checked_div(usd)?,
            coin.precision,
        ))
    }

    /// A lower bound of what `account`'s wallet adds to its equity, when the account can be
    /// filed in a group at all ([`Self::fileable_wallet`]): `amount x ratio` inside the
    /// schedule's first tier (the exact figure beyond it), less one unit of the precision.
    fn adl_wallet_floor(&self, account: &Account) -> Option<f64> {
        let (coin, amount, usd) = self.fileable_wallet(account)?;
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

    /// The equity of an account the index can file in a group ([`Self::fileable_wallet`]), as
    /// its margin report gives it: the wallet's value and each perpetual's unrealised P&L at
    /// its mark (else its index), each credited at the coin's precision
    /// (`PreparedAccount::figures_exact` sums the same terms). `None` for any other account.
    pub(super) fn filed_equity(&self, account: &Account) -> Option<Decimal> {
        let (coin, amount, usd) = self.fileable_wallet(account)?;
        let mut equity = self.wallet_value(coin, amount, usd)?;
        for position in account.positions.values() {
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

    /// The group of `account`'s position `own`, given the floor of its wallet
    /// ([`Self::adl_wallet_floor`]); `None` when it is loose (see the module documentation).
    fn adl_group(&self, account: &Account, own: &PositionState, wallet: f64) -> Option<GroupKey> {
        let unit = self.adl_index.settlement.as_ref()?.unit;
        let mut rest = wallet;
        let mut magnitude = wallet.abs();
        for other in account.positions.values() {
            if other.instrument.name == own.instrument.name {
                continue;
            }
            let source = if self
                .market
                .mark
                .contains_key(other.instrument.name.as_str())
            {
                Source::Mark(&other.instrument.name)
            } else {
                Source::Index(&other.instrument.underlying)
            };
            let band = account
                .bands
                .iter()
                .find(|band| band.source.borrowed() == source)?;
            let coins = band_f64(other.size) * band_f64(other.instrument.contract_size);
            let entry = band_f64(other.entry);
            let worst = if coins > 0.0 { band.low } else { band.high };
            rest += coins * (worst - entry) - unit;
            magnitude += coins.abs() * (worst.abs() + entry.abs());
        }
        // The position's own contribution is credited at the precision too.
        rest -= unit + MARGIN * magnitude;
        let coins = (band_f64(own.size) * band_f64(own.instrument.contract_size)).abs();
        let entry = band_f64(own.entry);
        if !(rest > 0.0 && coins > 0.0 && entry > 0.0 && rest.is_finite() && coins.is_finite()) {
            return None;
        }
        Some(GroupKey {
            long: own.size > Decimal::ZERO,
            size: bucket(coins, LN_SIZE_STEP),
            leverage: bucket(coins / rest, LN_LEVERAGE_STEP),
            entry: bucket(entry, LN_ENTRY_STEP),
        })
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
        let mut ranking = self
            .indexed_ranking(instrument, side, mark)
            .unwrap_or_else(|| AdlRanking::of_all(self.adl_scored(instrument, side, mark)));
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
        // The accounts whose bands this event's prices left, not examined yet, with the loose.
        let now_ms = self.now.as_millisecond();
        let mut direct: BTreeSet<u32> = contract.loose.clone();
        for (underlying, bands) in &self.bands {
            if let Some(price) = self.market.index.get(underlying.as_str()) {
                direct.extend(bands.crossed(price.value(), now_ms));
            }
        }
        for (name, bands) in &self.mark_bands {
            if let Some(price) = self.market.mark.get(name.as_str()) {
                direct.extend(bands.crossed(price.value(), now_ms));
            }
        }
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
        let mut ranking = AdlRanking::of_all(candidates);
        ranking.groups = contract
            .groups
            .keys()
            .filter(|key| key.long == long)
            .filter_map(|key| key.bound(mark_f64).map(|bound| (band_key(bound), *key)))
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
        ranking.place_through(place, &instrument.name, |key, direct| {
            contract
                .and_then(|contract| contract.groups.get(&key))
                .into_iter()
                .flatten()
                .filter(|slot| !direct.contains(slot))
                .filter_map(|slot| {
                    let account = self.accounts.by_slot(*slot)?;
                    Some((
                        *slot,
                        self.adl_candidate(account, instrument, wanted_sign, mark)?,
                    ))
                })
                .collect()
        })
    }
}

/// The sign of the positions that take the other side of a bankrupt `side` position.
pub(super) fn opposite_sign(side: PositionSide) -> Decimal {
    match side {
        PositionSide::Long => -Decimal::ONE,
        PositionSide::Short => Decimal::ONE,
    }
}
