//! Safe price bands: the accounts a price update can change, found without rescanning every holder
//! (DESIGN.md 9).

#[allow(clippy::wildcard_imports)]
use super::*;

use super::portfolio_bands::PortfolioBound;

/// Safe price bands of one price source (an underlying's index, or a contract's given mark):
/// accounts whose state cannot change while that price stays strictly inside `(low, high)`,
/// ordered by each bound so a price update finds the accounts it takes out of their band in
/// `O(log n + crossed)`.
///
/// Bounds are keyed by [`BandKey`] (an `f64` narrowed outward by `BAND_KEY_MARGIN`) and the
/// account's slot, so that ordering them compares two integers instead of a decimal and a name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Bands {
    pub(super) by_low: BTreeSet<(BandKey, u32)>,
    pub(super) by_high: BTreeSet<(BandKey, u32)>,
    /// Bands that hold only until a time (in Unix milliseconds): those of accounts holding
    /// options, whose values decay with time alone (see [`TimeDecay`]).
    pub(super) by_expiry: BTreeSet<(i64, u32)>,
}

impl Bands {
    /// The accounts whose band `price` reaches or leaves, or whose band has expired by
    /// `now_ms`. Usually the price stays above every lower bound and below every upper one:
    /// the two extreme bounds say so without searching the ranges.
    pub(super) fn crossed(&self, price: Decimal, now_ms: i64) -> impl Iterator<Item = &u32> {
        self.crossed_at(band_f64(price), now_ms)
    }

    /// Whether [`Self::crossed_at`] finds any account, without building its iterator (a price
    /// update checks the ratio bands of every contract on its underlying, and nearly always
    /// finds none).
    pub(super) fn any_crossed_at(&self, price: f64, now_ms: i64) -> bool {
        let (below, above, expired) = self.reached(band_key(price), now_ms);
        below || above || expired
    }

    /// Whether the price at `key` reaches the highest lower bound, reaches the lowest upper
    /// bound, and whether the earliest expiry has passed by `now_ms`: the extreme bounds say
    /// whether any range need be searched.
    fn reached(&self, key: BandKey, now_ms: i64) -> (bool, bool, bool) {
        let below = self
            .by_low
            .last()
            .is_some_and(|(highest_low, _)| *highest_low >= key);
        let above = self
            .by_high
            .first()
            .is_some_and(|(lowest_high, _)| *lowest_high <= key);
        let expired = self
            .by_expiry
            .first()
            .is_some_and(|(earliest, _)| *earliest < now_ms);
        (below, above, expired)
    }

    /// [`Self::crossed`] at a price already in `f64` (within a few ulps of the exact one, far
    /// inside [`BAND_KEY_MARGIN`]).
    pub(super) fn crossed_at(&self, price: f64, now_ms: i64) -> impl Iterator<Item = &u32> {
        let key = band_key(price);
        let (below, above, expired) = self.reached(key, now_ms);
        let lows = below.then(|| self.by_low.range((key, 0)..));
        let highs = above.then(|| self.by_high.range(..=(key, u32::MAX)));
        let expired = expired.then(|| self.by_expiry.range(..(now_ms, 0)));
        lows.into_iter()
            .flatten()
            .chain(highs.into_iter().flatten())
            .map(|(_, slot)| slot)
            .chain(expired.into_iter().flatten().map(|(_, slot)| slot))
    }
}

/// The bits of a non-negative `f64`, which order as the values do.
pub(super) type BandKey = u64;

/// Relative margin by which a band's keys are narrowed. The band is computed in `f64` from
/// exact figures: converting them and the arithmetic after cost a few ulps (1e-16 relative) of
/// the price, far below this margin, so a price at or beyond an exact safe bound is always at or
/// beyond its key; and the margin is far below any band's width.
pub(super) const BAND_KEY_MARGIN: f64 = 1e-12;

/// Powers of ten as `f64` (exact up to 1e22, within half an ulp beyond).
pub(super) const POWERS_OF_TEN: [f64; 29] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
];

/// A decimal as `f64` for band arithmetic: mantissa over a power of ten, within two ulps (the
/// key margins cover far more, see `BAND_KEY_MARGIN`). `rust_decimal`'s own conversion is
/// correctly rounded but splits the number with 128-bit divisions, several times slower, and
/// every evaluation converts a handful of figures.
pub(super) fn band_f64(value: Decimal) -> f64 {
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
pub(super) fn band_key(price: f64) -> BandKey {
    price.max(0.0).to_bits()
}

/// The key of a band's lower bound: raised, so it is examined whenever the price reaches `low`.
pub(super) fn low_key(low: f64) -> BandKey {
    band_key(low * (1.0 + BAND_KEY_MARGIN))
}

/// The key of a band's upper bound: lowered, so it is examined whenever the price reaches `high`.
pub(super) fn high_key(high: f64) -> BandKey {
    band_key(high * (1.0 - BAND_KEY_MARGIN))
}

/// An account's exposure to one underlying, summed over the positions and collateral on it.
#[derive(Debug)]
pub(super) struct Exposure<'a> {
    /// The price it moves with: an underlying's index, or a contract's given mark.
    pub(super) source: Source<'a>,
    /// That price, as `f64` (the bands are computed in it).
    price_f64: f64,
    /// The lowest the equity's slope in this price can be (USD per USD), summed over the
    /// positions and balances it moves: each contributes an interval holding its own slope
    /// everywhere inside the band (see [`Engine::equity_slopes`]).
    pub(super) slope_low: Decimal,
    /// The highest that slope can be.
    pub(super) slope_high: Decimal,
    /// Sum of `|coin exposure| x r_max` (the largest maintenance rate each can reach).
    pub(super) coins_at_rate: Decimal,
    /// Whether it stands only so that an account in danger is examined at this index's every
    /// update (its contracts are banded on their marks): no band otherwise.
    pub(super) companion: bool,
}

/// What a contract's equity and requirement move by with its index and the ratio of that
/// index to its mark, where it is banded on the two apart (see [`Engine::ratio_parts`]):
/// slopes as intervals (USD per unit of the source), requirement slopes as bounds.
#[derive(Debug)]
pub(super) struct RatioParts<'a> {
    /// The ratio of its index to its mark.
    pub(super) ratio: Source<'a>,
    /// The equity's slope in the index, at a fixed ratio.
    pub(super) index_slopes: (Decimal, Decimal),
    /// A bound on the requirement's slope in the index.
    pub(super) index_at_rate: Decimal,
    /// The equity's slope in the ratio, at a fixed index.
    pub(super) ratio_slopes: (Decimal, Decimal),
    /// A bound on the requirement's slope in the ratio.
    pub(super) ratio_at_rate: Decimal,
}

/// The largest half-width of a band, relative to its price, for which the slopes and
/// `coins_at_rate` of an [`Exposure`] bound the moves: no band is wider than half its price.
pub(super) const BAND_REACH: f64 = 0.5;

impl Exposure<'_> {
    /// How many coins the equity moves by at most per dollar of the source: the larger end of
    /// its slope interval in size. Slopes of opposite signs offset each other here (a call
    /// hedged by a short perpetual, a coin held against a short contract), which a sum of
    /// `|coin exposure|` would add up.
    fn coins(&self) -> Decimal {
        self.slope_low.abs().max(self.slope_high.abs())
    }
}

/// What moves the value of a position or a balance: an underlying's index, the given mark of
/// a contract (then its index does not: a linear contract settled in a pegged asset is valued
/// and margined at its mark alone), or the ratio of an inverse contract's index to its mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Source<'a> {
    /// The index of an underlying (or of a collateral asset).
    Index(&'a str),
    /// The given mark of a contract.
    Mark(&'a str),
    /// `S / M`, the index of a contract's underlying over the contract's mark (see
    /// [`Engine::ratio_parts`]); 1 while the contract awaits its first mark.
    Ratio {
        /// The contract.
        contract: &'a str,
        /// Its underlying, whose index is `S`.
        underlying: &'a str,
    },
}

impl Source<'_> {
    pub(super) fn owned(self) -> OwnedSource {
        match self {
            Source::Index(name) => OwnedSource::Index(name.into()),
            Source::Mark(name) => OwnedSource::Mark(name.into()),
            Source::Ratio {
                contract,
                underlying,
            } => OwnedSource::Ratio(contract.into(), underlying.into()),
        }
    }
}

/// A [`Source`] kept with a registered band.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum OwnedSource {
    Index(CompactString),
    Mark(CompactString),
    /// The contract and its underlying.
    Ratio(CompactString, CompactString),
}

impl OwnedSource {
    pub(super) fn borrowed(&self) -> Source<'_> {
        match self {
            OwnedSource::Index(name) => Source::Index(name),
            OwnedSource::Mark(name) => Source::Mark(name),
            OwnedSource::Ratio(contract, underlying) => Source::Ratio {
                contract,
                underlying,
            },
        }
    }
}

/// A safe band registered for an account on one price source, with its keys in [`Bands`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Band {
    pub(super) source: OwnedSource,
    pub(super) low: f64,
    pub(super) high: f64,
    pub(super) low_key: BandKey,
    pub(super) high_key: BandKey,
    /// The last time (Unix milliseconds) the band holds; `None` when time alone changes nothing.
    pub(super) expires_ms: Option<i64>,
}

/// Half-widths of an account's safe bands, in price, one per exposure, and the last time they
/// hold (see [`Engine::band_widths`]).
#[derive(Debug)]
pub(super) struct BandWidths {
    pub(super) halves: Vec<f64>,
    pub(super) expires_ms: Option<i64>,
    /// How far (summed over smile changes) the volatility of the account's options may move
    /// before it must be examined again.
    pub(super) vol_tolerance: f64,
    /// Whether the companion exposures (see [`Exposure::companion`]) get bands too.
    pub(super) companions_banded: bool,
}

/// How far an account's options can move `E - h MM` with time alone: by at most
/// `per_root_year x sqrt(elapsed years)` (USD), up to `until_ms`, the first expiry among them.
///
/// Black-76 at a zero rate prices an option as `C(F, s)`, `s = sigma sqrt(T)` its total
/// standard deviation, and `dC/ds = F phi(d1) <= F / sqrt(2 pi)` (the vega per unit of `s`). The
/// surface is by strike and interpolated in total variance between smiles
/// (`solvent_pricing::surface`), every smile's time shortening as the option's does: at a fixed
/// strike the total variance falls linearly with calendar time, at a rate that is a weighted
/// mean of the smiles' `sigma^2` at the strike (or one smile's, outside them), so at most
/// `sigma_max^2`, the largest volatility of the surface; hence `|ds| <= sigma_max sqrt(elapsed)`
/// (`sqrt(w) - sqrt(w - r t) <= sqrt(r t)`), whatever smile expires meanwhile (the variance stays
/// continuous). A Deribit option rule's requirement moves by at most `1 + rate` times the value
/// (`rate S + C`, `max(rate S, rate C) + C`).
///
/// A change of the smiles moves each option's volatility by at most the largest change of a
/// smile (the surface's volatility at a strike is a weighted root-mean-square of its smiles',
/// 1-Lipschitz in them), and its value by at most its vega, `F sqrt(T) / sqrt(2 pi)` per unit.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimeDecay {
    /// `K`: the decay bound per square root of a year, at the surface's volatilities.
    pub(super) per_root_year: f64,
    /// What `K` grows by per unit of volatility the smiles may gain.
    pub(super) per_root_year_per_vol: f64,
    /// The bound on `|d(E - h MM)|` per unit of volatility change.
    pub(super) per_vol: f64,
    pub(super) until_ms: i64,
}

/// `1 / sqrt(2 pi)`, the largest value of the standard normal density.
pub(super) const INV_ROOT_TWO_PI: f64 = 0.398_942_280_401_432_7;

/// How far past the half-width a band was first given the bounds on options' deltas are
/// taken ([`Engine::option_deltas`]): the band is then widened by what the bounds save, up to
/// this many times its first half-width.
const DELTA_REACH: f64 = 2.0;

/// Where the inputs of an account's options priced at their index may go while its bands
/// hold: what bounds their deltas ([`Engine::option_deltas`]).
#[derive(Debug)]
pub(super) struct OptionReach<'a> {
    /// `(underlying, lowest, highest)`: the range each underlying's index stays in.
    prices: Vec<(&'a str, f64, f64)>,
    /// How far any volatility of the smiles may move (the bands' volatility tolerance).
    vol_tolerance: f64,
    /// When the bands expire: times to expiry shorten until then.
    expires_ms: i64,
}

/// Bounds `[low, high]` on a call's Black-76 delta `N(d1)`, `d1 = ln(F / K) / v + v / 2`, for
/// every forward in `forwards` and total standard deviation `v = sigma sqrt(T)` with `sigma` in
/// `vols` and `sqrt(T)` in `root_years` (a put's delta is the call's less one).
///
/// `d1` rises with `F`, so `high` is at the highest forward and `low` at the lowest. In `v`, for
/// `x = ln(F / K) <= 0`, `d1` rises (`dd1/dv = -x / v^2 + 1/2 > 0`); for `x > 0` it is convex,
/// lowest at `v = sqrt(2 x)`: its largest value is at an end of the range, its smallest at that
/// point clamped into the range. At `v = 0` (an option at expiry, or a volatility that may fall
/// to nothing) `d1` is `+-inf` (0 at the money). Widened by `1e-9` for the arithmetic; `(0, 1)`
/// where an input is not a number or the range of `v` is empty (smiles without a volatility).
pub(super) fn call_delta_range(
    forwards: (f64, f64),
    strike: f64,
    root_years: (f64, f64),
    vols: (f64, f64),
) -> (f64, f64) {
    let d1 = |x: f64, v: f64| {
        if v > 0.0 {
            (x / v + v / 2.0).clamp(-40.0, 40.0)
        } else if x > 0.0 {
            40.0
        } else if x < 0.0 {
            -40.0
        } else {
            0.0
        }
    };
    let (v_low, v_high) = (vols.0 * root_years.0, vols.1 * root_years.1);
    // Checked before the range is used as one (`clamp` below panics on an empty or NaN range).
    if v_low
        .partial_cmp(&v_high)
        .is_none_or(std::cmp::Ordering::is_gt)
    {
        return (0.0, 1.0);
    }
    let x_high = (forwards.1 / strike).ln();
    let highest = if x_high > 0.0 {
        d1(x_high, v_low).max(d1(x_high, v_high))
    } else {
        d1(x_high, v_high)
    };
    let x_low = (forwards.0 / strike).ln();
    let lowest = if x_low > 0.0 {
        d1(x_low, (2.0 * x_low).sqrt().clamp(v_low, v_high))
    } else {
        d1(x_low, v_low)
    };
    if !(highest.is_finite() && lowest.is_finite()) {
        return (0.0, 1.0);
    }
    let low = solvent_pricing::black76::standard_normal_cdf(lowest) - 1e-9;
    let high = solvent_pricing::black76::standard_normal_cdf(highest) + 1e-9;
    (low.max(0.0), high.min(1.0))
}

/// Milliseconds in the year options' times to expiry are counted in.
pub(super) const MS_PER_YEAR: f64 = solvent_risk::valuation::SECONDS_PER_YEAR * 1_000.0;

/// The engine's band maps, by the kind of source they are on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct BandMaps {
    /// Safe bands on the indices, by underlying.
    pub(super) index: BTreeMap<String, Bands>,
    /// Safe bands on the marks of contracts, by contract (a perpetual awaiting its first mark
    /// is banded on it too, its index standing in; see `Engine::awaiting_mark`).
    pub(super) mark: BTreeMap<String, Bands>,
    /// Safe bands on the ratios `S / M` of inverse contracts, by underlying, then contract
    /// (an index update moves the ratio of every contract on it).
    pub(super) ratio: BTreeMap<CompactString, BTreeMap<String, Bands>>,
}

impl BandMaps {
    /// The map holding the bands of `source`'s kind, and its key there.
    pub(super) fn of<'m, 's>(
        &'m mut self,
        source: &'s OwnedSource,
    ) -> (&'m mut BTreeMap<String, Bands>, &'s str) {
        match source {
            OwnedSource::Index(name) => (&mut self.index, name),
            OwnedSource::Mark(name) => (&mut self.mark, name),
            OwnedSource::Ratio(contract, underlying) => {
                (self.ratio.entry(underlying.clone()).or_default(), contract)
            }
        }
    }

    /// Drops every band.
    #[cfg(test)]
    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.mark.clear();
        self.ratio.clear();
    }
}

/// The slack of `E - h MM` to the nearest of `levels` below and above `health`, and the larger of
/// the two levels (the `h` of the sensitivity bound); `None` when there is none. Each level is
/// given as `f64` (to compare with the health) and as the decimal the slack is computed with.
pub(super) fn slack_to_levels(
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

/// What a report's rounding can take from a slack in USD: a unit of the report currency's
/// `precision` (worth `usd_per_unit` USD per whole unit) on each of `lines` figures of the equity
/// and, weighted by the level `top`, of the requirement, both ways.
pub(super) fn rounding_allowance(
    lines: usize,
    precision: u32,
    usd_per_unit: Decimal,
    top: f64,
) -> f64 {
    let unit = POWERS_OF_TEN
        .get(precision as usize)
        .map_or(1.0, |power| 1.0 / power);
    #[allow(clippy::cast_precision_loss)]
    let lines = lines as f64;
    2.0 * lines * unit * band_f64(usd_per_unit) * (1.0 + top)
}

/// The indices of `venue`'s pegged coins.
pub(super) fn coin_indices(venue: &Venue) -> Vec<String> {
    venue
        .assets
        .values()
        .filter(|asset| asset.usd_peg.is_some())
        .map(|asset| asset.index.to_string())
        .collect()
}

/// Health 0 and `venue`'s state thresholds, as [`slack_to_levels`] takes them.
pub(super) fn state_levels(venue: &Venue) -> Option<Vec<(f64, Decimal)>> {
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
pub(super) fn level(value: f64) -> Option<(f64, Decimal)> {
    Some((value, Decimal::try_from(value).ok()?))
}

impl Engine {
    /// Recomputes an account's safe bands (see [`Bands`]). With health `h` between the state
    /// thresholds `h_lo < h <= h_hi`, the state holds while `E - h_lo MM > 0` and
    /// `h_hi MM - E >= 0`. A move `dP` of price source `u` (see [`Source`]) changes `E - h MM` by
    /// at most `S_u |dP|`, with `S_u = sum |coin exposure| (1 + h_hi r_max)` over the positions
    /// and collateral it moves (`r_max` the largest maintenance rate the position's rule can
    /// reach; an option's value and margin move by at most one coin per coin, its rule's rate at
    /// most 1.2). The smaller slack is shared between sources in proportion to `S_u P_u`, so
    /// every source staying inside its band keeps the state. An account in danger (liquidating,
    /// bankrupt, or with no slack), or with a pool below one of its top-up triggers (topped up
    /// again at each examination), gets empty bands: it is re-examined at every update, of the
    /// marks it is banded on and of their underlyings' indices too.
    pub(super) fn set_bands(&mut self, id: &str, report: Option<&Standing<'_>>) {
        let vol_tolerance = self.set_price_bands(id, report);
        self.set_vol_limits(id, vol_tolerance);
    }

    /// The price bands and their expiry of [`Self::set_bands`]; returns how far the account's
    /// options' volatility may travel (0 where it has no bands).
    fn set_price_bands(&mut self, id: &str, report: Option<&Standing<'_>>) -> f64 {
        let Some(account) = self.accounts.get(id) else {
            return 0.0;
        };
        let exposures = self.coin_exposures(account);
        let widths = report.and_then(|r| self.band_widths(account, r, &exposures));
        let vol_tolerance = widths.as_ref().map_or(0.0, |w| w.vol_tolerance);
        let expires_ms = widths.as_ref().and_then(|w| w.expires_ms);
        let entries: Vec<(Source<'_>, f64, f64, f64)> = exposures
            .iter()
            .enumerate()
            .filter(|(_, exposure)| {
                widths
                    .as_ref()
                    .is_none_or(|w| w.companions_banded || !exposure.companion)
            })
            .map(|(index, exposure)| {
                let half = widths
                    .as_ref()
                    .and_then(|w| w.halves.get(index).copied())
                    .unwrap_or(0.0);
                let price = exposure.price_f64;
                (exposure.source, price, price - half, price + half)
            })
            .collect();
        // Contracts with a given mark whose band is not on it, or perpetuals awaiting their
        // first mark kept on the index (see `band_source`): watched at their every mark.
        let watched: Vec<&str> = account
            .positions
            .values()
            .filter(|p| {
                let name = p.instrument.name.as_str();
                (self.market.mark.contains_key(name) || self.awaiting_mark.contains_key(name))
                    && self.band_source(account, p) != Source::Mark(name)
                    && self.ratio_parts(account, p).is_none()
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
        // the bands a deposit or a reducing trade widens without a price move. A band that
        // expires is kept only if it expires no later than the new one.
        let expires_no_later = |kept: Option<i64>| match (kept, expires_ms) {
            (_, None) => true,
            (Some(kept), Some(new)) => kept <= new,
            (None, Some(_)) => false,
        };
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
                        && expires_no_later(band.expires_ms)
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
                    expires_ms,
                })
                .collect()
        });
        let watched: Option<Vec<CompactString>> =
            watched_changed.then(|| watched.into_iter().map(CompactString::from).collect());
        if let Some(watched) = watched
            && let Some(account) = self.accounts.monitoring_mut(id)
        {
            let old = std::mem::replace(&mut account.mark_watched, watched);
            reindex_sets(&mut self.mark_watchers, slot, &old, &account.mark_watched);
        }
        // Most evaluations leave the bands as they were (or keep them, see above).
        let Some(entries) = entries else {
            return vol_tolerance;
        };
        let Some(account) = self.accounts.monitoring_mut(id) else {
            return vol_tolerance;
        };
        let old = std::mem::take(&mut account.bands);
        account.unbanded = !unpriced.is_empty();
        for band in old {
            let (map, name) = self.bands.of(&band.source);
            if let Some(bands) = map.get_mut(name) {
                bands.by_low.remove(&(band.low_key, slot));
                bands.by_high.remove(&(band.high_key, slot));
                if let Some(expires) = band.expires_ms {
                    bands.by_expiry.remove(&(expires, slot));
                }
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
            let (map, name) = self.bands.of(&band.source);
            let bands = match map.get_mut(name) {
                Some(bands) => bands,
                None => map.entry(name.to_owned()).or_default(),
            };
            bands.by_low.insert((band.low_key, slot));
            bands.by_high.insert((band.high_key, slot));
            if let Some(expires) = band.expires_ms {
                bands.by_expiry.insert((expires, slot));
            }
        }
        account.bands = entries;
        vol_tolerance
    }

    /// What a cross position banded on `source` alone (no ratio to its mark) adds to its
    /// exposure there: the interval of its equity slope and the bound of its requirement's
    /// ([`Self::coin_exposures_within`]).
    fn position_slopes(
        &self,
        position: &PositionState,
        source: Source<'_>,
        reach: Option<&OptionReach<'_>>,
    ) -> ((Decimal, Decimal), Decimal) {
        let instrument = &position.instrument;
        let price = self.source_price(source).unwrap_or(Decimal::ZERO);
        let (coins, rate) = self.position_sensitivity(position, price);
        let on_index = self.equity_coins(position);
        let deltas = reach.and_then(|reach| self.option_deltas(position, source, reach));
        // A short option's requirement (`rate S + C`, `max(rate S, rate C) + C`) moves by at
        // most `rate` plus the size of its delta per coin.
        let rate = match (deltas, instrument.margin.as_ref(), &instrument.terms) {
            (
                Some((low, high)),
                solvent_core::venue::MarginRule::DeribitOption { maintenance, .. },
                Terms::Option { right, .. },
            ) if position.size.is_sign_negative() => {
                *maintenance
                    + match right {
                        solvent_core::instrument::OptionRight::Call => high,
                        solvent_core::instrument::OptionRight::Put => Decimal::ONE - low,
                    }
            }
            _ => rate,
        };
        (
            self.equity_slopes(position, source, coins, on_index, deltas),
            self.requirement_coins(position, coins, rate, on_index.is_some()),
        )
    }

    /// Per price source an account is exposed to: its price and the bound `S_u` of how fast
    /// `E - h MM` moves with it (the sums `S_u` is made of, with the `h r_max` term added in
    /// [`Self::band_widths`]).
    pub(super) fn coin_exposures<'a>(&'a self, account: &'a Account) -> Vec<Exposure<'a>> {
        self.coin_exposures_within(account, None)
    }

    /// [`Self::coin_exposures`], with the slopes of the options priced at an index bounded by
    /// their deltas where `reach` says how far their inputs may go ([`Self::option_deltas`]);
    /// by their largest possible delta, one, without it. The same sources in the same order
    /// either way.
    fn coin_exposures_within<'a>(
        &'a self,
        account: &'a Account,
        reach: Option<&OptionReach<'_>>,
    ) -> Vec<Exposure<'a>> {
        let mut exposures: Vec<Exposure<'a>> = Vec::new();
        // `(low, high)`: an interval holding the equity's slope in the source (USD per dollar);
        // `at_rate`: a bound on the maintenance margin's.
        let mut add =
            |source: Source<'a>,
             (low, high): (Decimal, Decimal),
             at_rate: Decimal,
             companion: bool| match exposures.iter_mut().find(|e| e.source == source) {
                Some(exposure) => {
                    exposure.slope_low += low;
                    exposure.slope_high += high;
                    exposure.coins_at_rate += at_rate;
                    exposure.companion &= companion;
                }
                None => exposures.push(Exposure {
                    source,
                    price_f64: 0.0,
                    slope_low: low,
                    slope_high: high,
                    coins_at_rate: at_rate,
                    companion,
                }),
            };
        let zero = (Decimal::ZERO, Decimal::ZERO);
        for position in account.positions.values() {
            let instrument = &position.instrument;
            let source = self.band_source(account, position);
            match self.ratio_parts(account, position) {
                // An isolated position moves neither the cross pool's equity nor its
                // requirement (its P&L and margin are its own pool's): its sources stand here
                // so that they get bands, which its own health sizes (`band_widths`), and take
                // no share of the cross pool's slack.
                parts if position.isolated => {
                    add(source, zero, Decimal::ZERO, false);
                    if let Some(parts) = parts {
                        add(parts.ratio, zero, Decimal::ZERO, false);
                    }
                }
                Some(parts) => {
                    add(source, parts.index_slopes, parts.index_at_rate, false);
                    add(parts.ratio, parts.ratio_slopes, parts.ratio_at_rate, false);
                }
                None => {
                    let (slopes, at_rate) = self.position_slopes(position, source, reach);
                    add(source, slopes, at_rate, false);
                }
            }
            if let Some(coin) = self.third_coin_index(position) {
                // Settled in a third coin, its figures move with that coin's index too, by an
                // amount no band on either bounds: it is examined at the updates of both (empty
                // bands, see `band_widths`).
                add(Source::Index(coin), zero, Decimal::ZERO, true);
            }
            if source != Source::Index(&instrument.underlying) {
                // Its underlying's index moves nothing here, but an account in danger must be
                // examined at each of its updates too (a stale index may have held its
                // liquidation back): an empty band then, none otherwise.
                add(
                    Source::Index(&instrument.underlying),
                    zero,
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
            // A holding's value rises with the price by between nothing and its coins per
            // dollar (a haircut, tiered or not, only flattens it); a loan's cost by exactly its
            // coins, inside the interval given.
            let slopes = if amount.is_sign_negative() {
                (amount, Decimal::ZERO)
            } else {
                (Decimal::ZERO, amount)
            };
            add(
                Source::Index(&asset.index),
                slopes,
                amount.abs() * rate,
                false,
            );
        }
        // Reported in a coin the market prices: a rounding unit of the report is worth that
        // coin's price, which `band_widths` keeps back at today's price (twice). A band on the
        // coin's index (at most `BAND_REACH` either side, as nothing else moves here) keeps the
        // price within that.
        if let Ok(report) = self.venue.asset(&self.venue.settlement_asset)
            && report.usd_peg.is_none()
        {
            add(Source::Index(&report.index), zero, Decimal::ZERO, false);
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

    /// The price a position of `account` is banded on: the given mark of a linear perpetual or
    /// future settled in a pegged asset (valued and margined at the mark alone), else its
    /// underlying's index.
    ///
    /// A perpetual or future held before its first mark is valued at its underlying's index
    /// until then.
    /// When it is all the account values at that index, it is banded on its mark from the start
    /// ([`Engine::awaiting_mark`]): the index stands in for the mark ([`Self::source_price`]),
    /// and its updates cross the contract's mark bands as well as the index's
    /// ([`Self::revalue_crossed`]). The first mark is then an ordinary move of the contract's
    /// price, from the index to the mark, that examines only the holders whose band it crosses
    /// ([`Self::first_mark`]). An account that also values something else at the index (an
    /// option, another contract, a coin) keeps the perpetual on the index until the mark
    /// comes: the band there is sized by the slopes summed, where opposite ones offset (see
    /// [`Exposure::coins`]), and the gap between mark and index, a move nothing offsets, is
    /// banded on the ratio of the index to the mark ([`Self::awaiting_linear_parts`]); in
    /// portfolio mode it watches the mark ([`Account::mark_watched`]), whose first update
    /// examines it. A future awaiting its first mark is banded the same way.
    pub(super) fn band_source<'a>(
        &self,
        account: &Account,
        position: &'a PositionState,
    ) -> Source<'a> {
        let instrument = &position.instrument;
        if !self.valued_at_mark(instrument) {
            return Source::Index(&instrument.underlying);
        }
        let name = instrument.name.as_str();
        if self.market.mark.contains_key(name)
            || (self.awaiting_mark.contains_key(name) && self.alone_on_index(account, instrument))
        {
            Source::Mark(&instrument.name)
        } else {
            Source::Index(&instrument.underlying)
        }
    }

    /// Whether `instrument`, a contract awaiting its first mark, is all `account` values at
    /// its underlying's index: every other position on that underlying is a contract with a
    /// given mark, and no coin of the wallet is priced by that index.
    fn alone_on_index(&self, account: &Account, instrument: &Instrument) -> bool {
        let underlying = instrument.underlying.as_str();
        account.positions.values().all(|other| {
            other.instrument.name == instrument.name
                || other.instrument.underlying != underlying
                || (self.valued_at_mark(&other.instrument)
                    && self
                        .market
                        .mark
                        .contains_key(other.instrument.name.as_str()))
        }) && self.ledger.wallet(&account.id).all(|(symbol, _)| {
            self.venue
                .assets
                .get(symbol)
                .is_none_or(|asset| asset.index != underlying)
        })
    }

    /// Whether the holders of `instrument`, a perpetual or a future, are banded on its mark
    /// before it has one, its underlying's index standing in ([`Engine::awaiting_mark`]): a
    /// linear one valued at its mark alone ([`Self::band_source`]), or an inverse one, whose
    /// cross holders are banded on its index and on the ratio of its index to its mark
    /// ([`Self::inverse_parts`]). Until its first mark a future is valued at the index, as a
    /// perpetual is (`solvent_risk::valuation::MarketView::mark`; a portfolio's scan carries it
    /// at the market rate, and a non-zero rate leaves a portfolio without bands).
    pub(super) fn banded_on_awaited_mark(&self, instrument: &Instrument) -> bool {
        matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            && (instrument.style == Style::Inverse || self.valued_at_mark(instrument))
    }

    /// Whether `instrument`, once it has a mark, is valued and margined at it alone: a linear
    /// perpetual or future settled in a pegged asset.
    pub(super) fn valued_at_mark(&self, instrument: &Instrument) -> bool {
        instrument.style == Style::Linear
            && matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            && self
                .venue
                .assets
                .get(&instrument.settlement)
                .is_some_and(|asset| asset.usd_peg.is_some())
    }

    /// The current price of a band's source: an index, a contract's given mark, or, for a
    /// contract awaiting its first mark, its underlying's index, which values it until then;
    /// for a ratio, the index over the mark (1 while the contract awaits its first mark).
    pub(super) fn source_price(&self, source: Source<'_>) -> Option<Decimal> {
        match source {
            Source::Index(name) => self.market.index.get(name),
            Source::Mark(name) => self.market.mark.get(name).or_else(|| {
                self.awaiting_mark
                    .get(name)
                    .and_then(|underlying| self.market.index.get(underlying.as_str()))
            }),
            Source::Ratio {
                contract,
                underlying,
            } => {
                let index = self.market.index.get(underlying)?.value();
                return match self.market.mark.get(contract) {
                    Some(mark) => index.checked_div(mark.value()),
                    None => self
                        .awaiting_mark
                        .contains_key(contract)
                        .then_some(Decimal::ONE),
                };
            }
        }
        .map(|price| price.value())
    }

    /// The range a ratio source cannot leave (see [`Source::Ratio`]): marks are clamped to
    /// the guard's band around the index when they arrive and whenever the index moves
    /// (`Engine::reclamp_marks`), so `S / M` stays within `[1 / (1 + b), 1 / (1 - b)]`; taken a
    /// millionth wider, which covers the rounding of the ratio and of these bounds. `None` for
    /// any other source, or a band of 1 or more (no upper bound then). The range decides only
    /// how much of the slack a ratio's band need take ([`Self::share_slack`]): a band covering
    /// it is never left, and any band is sound, since leaving it examines the account.
    pub(super) fn ratio_range(&self, source: Source<'_>) -> Option<(f64, f64)> {
        if !matches!(source, Source::Ratio { .. }) {
            return None;
        }
        let band = band_f64(self.config.guards.mark_band);
        if !(0.0..1.0).contains(&band) {
            return None;
        }
        Some(((1.0 - 1e-6) / (1.0 + band), (1.0 + 1e-6) / (1.0 - band)))
    }

    /// The half-width of a band on `source` at `price` covering the whole range it cannot leave
    /// ([`Self::ratio_range`]), where it has one.
    fn range_cover(&self, source: Source<'_>, price: f64) -> Option<f64> {
        let (low, high) = self.ratio_range(source)?;
        Some((price - low).max(high - price))
    }

    /// What a source's share of the slack is in proportion to, with its sensitivity: its
    /// `price`, or, for the ratio of a contract awaiting its first mark, which only that mark
    /// moves and only within its range, the price that range (`cover`) stands for: the band
    /// then spans the same fraction of the range as a price's band of half the price
    /// ([`Self::share_slack`]).
    fn share_scale(&self, source: Source<'_>, price: f64, cover: Option<f64>) -> f64 {
        match (source, cover) {
            (Source::Ratio { contract, .. }, Some(cover))
                if self.awaiting_mark.contains_key(contract) =>
            {
                cover / BAND_REACH
            }
            _ => price,
        }
    }

    /// Half-widths of the safe bands, in price, one per exposure (in its order), and the time
    /// they hold until when the account holds options; `None` when the account must be
    /// re-examined at every update.
    pub(super) fn band_widths(
        &self,
        account: &Account,
        report: &Standing<'_>,
        exposures: &[Exposure],
    ) -> Option<BandWidths> {
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
        let settlement = self.venue.asset(report.settlement_asset).ok()?;
        let report_usd = self.asset_usd(&settlement.index, settlement.usd_peg)?;
        let trigger_levels =
            |applies: &dyn Fn(&crate::event::SetAutoTopUp) -> bool| -> Vec<(f64, Decimal)> {
                account
                    .top_ups
                    .iter()
                    .filter(|r| applies(&r.rule))
                    .filter_map(|r| Some((r.rule.trigger_health.to_f64()?, r.rule.trigger_health)))
                    .collect()
            };
        // Below one of its top-up triggers, a pool is topped up again at its next examination,
        // whatever the price does (a per-event cap may have held the last top-up short, and a
        // per-day cap opens again at midnight): examined at every update, as one in danger.
        let below_trigger =
            |health: Option<f64>, applies: &dyn Fn(&crate::event::SetAutoTopUp) -> bool| {
                health.is_some_and(|health| {
                    account
                        .top_ups
                        .iter()
                        .filter(|r| applies(&r.rule))
                        .any(|r| r.rule.trigger_health.to_f64().is_some_and(|t| health < t))
                })
            };
        let cross_rule = |r: &crate::event::SetAutoTopUp| {
            r.instrument.is_none() && r.source == crate::event::TopUpSource::External
        };
        if below_trigger(report.health, &cross_rule) {
            return None;
        }
        // The cross pool: the state thresholds and the cross top-up triggers.
        let mut levels = self.state_levels.clone()?;
        levels.extend(trigger_levels(&cross_rule));
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
        let top = band_f64(top);
        // A report rounds each of its lines (a position's P&L and requirement, a coin's value)
        // at the report currency's precision, by up to a unit each, against the account, and
        // differently at each price: that much of the slack is kept back (twice, for a report
        // currency whose price may rise by half inside its band, see `coin_exposures`), so a
        // state the rounding alone decides is still seen where it changes. A unit of a
        // coin-settled report (1e-8 BTC) is worth far more than one of a stablecoin's (1e-6
        // USDT).
        let lines = account.positions.len() + self.ledger.wallet(&account.id).count() + 1;
        let slack =
            slack - rounding_allowance(lines, settlement.precision, usd_per_report_unit, top);
        if slack.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        // A portfolio-mode account: its requirement's own bounds (`portfolio_bands`), where
        // one is known; examined at every update otherwise (correctness before speed).
        if account.mode == MarginMode::Portfolio {
            // The rounding of the requirement to the report currency's precision (and the f64
            // arithmetic of the scan) comes off the slack first, then the offset's jump.
            let precision = POWERS_OF_TEN
                .get(settlement.precision as usize)
                .map_or(1.0, |power| 1.0 / power);
            let maintenance_usd = band_f64(report.maintenance_margin.value() * report_usd);
            let rounding = 2.0 * precision * band_f64(report_usd) + 1e-9 * maintenance_usd;
            let slack = slack - top * rounding;
            return self.portfolio_widths(
                account,
                exposures,
                report.scenario_sides,
                maintenance_usd,
                slack,
                top,
            );
        }
        // Options decay with time alone and move with their volatility: a quarter of the slack
        // is kept for each. The volatility may move (summed over smile changes) by
        // `slack / 4 / per_vol`; the bands hold as long as the decay bound, at the surface's
        // highest volatility raised by that much, stays under its quarter (`K sqrt(t) <=
        // slack / 4`), at most until the first option expires.
        let (slack, expires_ms, vol_tolerance) = match self.time_decay(account, top)? {
            None => (slack, None, 0.0),
            Some(decay) => {
                let vol_tolerance = (slack / 4.0 / decay.per_vol).min(1.0);
                let per_root_year =
                    decay.per_root_year + vol_tolerance * decay.per_root_year_per_vol;
                let root_years = slack / 4.0 / per_root_year;
                let held_ms = (root_years * root_years * MS_PER_YEAR).floor();
                // Beyond a year of milliseconds the first expiry binds anyway.
                #[allow(clippy::cast_possible_truncation)]
                let held_ms = held_ms.min(MS_PER_YEAR) as i64;
                let until = self
                    .now
                    .as_millisecond()
                    .saturating_add(held_ms)
                    .min(decay.until_ms);
                (slack / 2.0, Some(until), vol_tolerance)
            }
        };
        let BandWidths {
            halves: mut widths, ..
        } = self.share_slack(exposures, slack, top, expires_ms, None);
        if let Some(expires_ms) = expires_ms {
            widths = self.widths_by_option_deltas(
                account,
                exposures,
                widths,
                (slack, top),
                expires_ms,
                vol_tolerance,
            );
        }
        // Each isolated position: its own health against the liquidation threshold and its
        // top-up triggers, over its own sensitivity (an isolated option's time decay is not
        // bounded here: `time_decay` refuses it).
        for position in account.positions.values().filter(|p| p.isolated) {
            let name = &position.instrument.name;
            let line = report
                .positions
                .iter()
                .find(|l| l.instrument == name && l.isolated)?;
            let isolated_rule = |r: &crate::event::SetAutoTopUp| {
                r.instrument.as_deref() == Some(name.as_str())
                    || (r.instrument.is_none() && r.source == crate::event::TopUpSource::CrossPool)
            };
            if below_trigger(line.isolated_health, &isolated_rule) {
                return None;
            }
            let mut levels = self.state_levels.as_ref()?[..2].to_vec();
            levels.extend(trigger_levels(&isolated_rule));
            let equity =
                line.isolated_equity.map_or(Decimal::ZERO, |e| e.value()) * usd_per_report_unit;
            let (slack, top) = slack_to_levels(
                &levels,
                line.isolated_health,
                equity,
                line.maintenance_margin.value() * usd_per_report_unit,
            )?;
            // The pool's lines: the position's, and its margin coin's.
            let slack = band_f64(slack)
                - rounding_allowance(2, settlement.precision, usd_per_report_unit, band_f64(top));
            if slack.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return None;
            }
            let source = self.band_source(account, position);
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
            let mut narrow = |source: Source<'_>, half: f64| {
                if let Some(width) = exposures
                    .iter()
                    .position(|e| e.source == source)
                    .and_then(|index| widths.get_mut(index))
                {
                    *width = (*width).min(half);
                }
            };
            if let Some(parts) = self.ratio_parts(account, position) {
                // Its pool's equity (an inverse one's `S m + N S / e - N rho`, `m` its margin
                // coins) and its requirement move with the index and the ratio apart
                // (`ratio_parts`): the slack is shared between them as `share_slack` shares it.
                let index_sensitivity = band_f64(
                    parts.index_slopes.0.abs().max(parts.index_slopes.1.abs())
                        + margin_coins
                        + top * parts.index_at_rate,
                );
                let ratio_sensitivity = band_f64(
                    parts.ratio_slopes.0.abs().max(parts.ratio_slopes.1.abs())
                        + top * parts.ratio_at_rate,
                );
                let index_price = band_f64(price);
                let ratio_price = band_f64(self.source_price(parts.ratio)?);
                let ratio_scale = self.share_scale(
                    parts.ratio,
                    ratio_price,
                    self.range_cover(parts.ratio, ratio_price),
                );
                let weight = index_sensitivity * index_price + ratio_sensitivity * ratio_scale;
                if weight <= 0.0 {
                    continue;
                }
                narrow(source, slack * index_price / weight);
                narrow(parts.ratio, slack * ratio_scale / weight);
                continue;
            }
            let sensitivity = coins * (Decimal::ONE + top * rate) + margin_coins;
            if sensitivity.is_zero() {
                continue;
            }
            narrow(source, slack / band_f64(sensitivity));
        }
        Some(BandWidths {
            halves: widths,
            expires_ms,
            vol_tolerance,
            companions_banded: false,
        })
    }

    /// Shares `slack` (USD) out over the exposures in proportion to `S_u P_u`, `S_u` each
    /// one's sensitivity (with a portfolio requirement's slope on top), so that each band spans
    /// the same fraction of its price; every half-width at most half the price
    /// ([`BAND_REACH`]). A ratio of an index to its contract's mark gets that same fraction:
    /// when the mark lags, the ratio moves with the index. But it cannot leave the range the
    /// mark band leaves it ([`Engine::ratio_range`]): it takes no more than a band covering
    /// that range, and what its share held beyond that is shared out again over the others, so
    /// a holder of an inverse contract with slack to spare keeps a wide index band. Until the
    /// contract's first mark the ratio is 1, and only that mark moves it, by no more than the
    /// range: its band spans the same fraction of the range as a price's of half the price
    /// (about a tenth of the slack), so a contract that waits long for its mark costs its
    /// holders little room on the index, and its first mark examines the thinnest only.
    pub(super) fn share_slack(
        &self,
        exposures: &[Exposure],
        slack: f64,
        top: f64,
        expires_ms: Option<i64>,
        portfolio: Option<&PortfolioBound<'_>>,
    ) -> BandWidths {
        let sensitivities: Vec<f64> = exposures
            .iter()
            .map(|e| {
                let slope = portfolio.map_or(0.0, |p| {
                    p.slopes
                        .iter()
                        .filter(|(source, _)| *source == e.source)
                        .map(|(_, slope)| slope)
                        .sum()
                });
                band_f64(e.coins()) + top * (band_f64(e.coins_at_rate) + slope)
            })
            .collect();
        let covers: Vec<Option<f64>> = exposures
            .iter()
            .map(|e| self.range_cover(e.source, e.price_f64))
            .collect();
        let scales: Vec<f64> = exposures
            .iter()
            .zip(&covers)
            .map(|(e, cover)| self.share_scale(e.source, e.price_f64, *cover))
            .collect();
        let mut capped = vec![false; exposures.len()];
        let mut halves = vec![0.0; exposures.len()];
        // Each pass caps the bounded sources whose share covers their range; the slack they
        // leave goes to the others, whose shares only grow: at most one pass per source.
        for _ in 0..=exposures.len() {
            let mut left = slack;
            let mut weight_total = 0.0;
            for (index, (scale, sensitivity)) in scales.iter().zip(&sensitivities).enumerate() {
                match (capped.get(index), covers.get(index)) {
                    (Some(true), Some(Some(cover))) => left -= cover * sensitivity,
                    _ => weight_total += scale * sensitivity,
                }
            }
            let mut newly_capped = false;
            for (index, (((exposure, scale), sensitivity), cover)) in exposures
                .iter()
                .zip(&scales)
                .zip(&sensitivities)
                .zip(&covers)
                .enumerate()
            {
                let Some(half) = halves.get_mut(index) else {
                    continue;
                };
                let is_capped = capped.get(index).copied().unwrap_or(false);
                *half = match cover {
                    Some(cover) if is_capped => *cover,
                    _ if *sensitivity == 0.0 || weight_total <= 0.0 => exposure.price_f64,
                    // Share of the slack: S_u P_u / total; in price: / S_u.
                    _ => left * scale / weight_total,
                };
                if let Some(cover) = cover
                    && !is_capped
                    && *half >= *cover
                    && let Some(flag) = capped.get_mut(index)
                {
                    *flag = true;
                    newly_capped = true;
                }
            }
            if !newly_capped {
                break;
            }
        }
        let halves = halves
            .into_iter()
            .zip(exposures)
            .map(|(half, exposure)| half.min(exposure.price_f64 * BAND_REACH))
            .collect();
        BandWidths {
            halves,
            expires_ms,
            vol_tolerance: 0.0,
            // A portfolio's charges read the index of an underlying whose contracts are banded
            // on their marks: that index gets a band of its own.
            companions_banded: portfolio.is_some(),
        }
    }

    /// The slack left for prices and the time the bands hold until, for a portfolio-mode
    /// account whose options or futures decay: a quarter of the slack for time (another is the
    /// volatility's, see [`Engine::portfolio_bound`]), half for prices, and the longest horizon
    /// (up to its limit, quartered until it fits) whose time bound stays under its share.
    pub(super) fn portfolio_horizon(
        &self,
        portfolio: &PortfolioBound<'_>,
        slack: f64,
        top: f64,
    ) -> (f64, Option<i64>) {
        let Some(until_ms) = portfolio.until_ms else {
            // Neither options nor futures: nothing decays, nor moves with volatility.
            return (slack, None);
        };
        let now_ms = self.now.as_millisecond();
        #[allow(clippy::cast_precision_loss)]
        let mut years = ((until_ms - now_ms) as f64 / MS_PER_YEAR).min(1.0);
        let mut fits = false;
        for _ in 0..32 {
            if portfolio.time_bound(years, top) <= slack / 4.0 {
                fits = true;
                break;
            }
            years /= 4.0;
        }
        let held_ms = if fits {
            (years * MS_PER_YEAR).floor()
        } else {
            0.0
        };
        #[allow(clippy::cast_possible_truncation)]
        let held_ms = held_ms as i64;
        (
            slack / 2.0,
            Some(now_ms.saturating_add(held_ms).min(until_ms)),
        )
    }

    /// The bound on how fast time alone moves `E - h MM` through the account's options, `h`
    /// the highest health level of its slack (see [`TimeDecay`]); `Some(None)` without options,
    /// `None` where no bound is known: an option with a given mark (its implied volatility
    /// follows the index), held isolated, under another rule than Deribit's, at a non-zero
    /// rate (forward and discounting drift with time), expired, or on an underlying without a
    /// surface.
    pub(super) fn time_decay(&self, account: &Account, top: f64) -> Option<Option<TimeDecay>> {
        let mut decay: Option<TimeDecay> = None;
        for position in account.positions.values() {
            let instrument = &position.instrument;
            let Terms::Option { expiry, .. } = &instrument.terms else {
                continue;
            };
            let solvent_core::venue::MarginRule::DeribitOption { maintenance, .. } =
                instrument.margin.as_ref()
            else {
                return None;
            };
            if !self.valued_by_smiles(position) {
                return None;
            }
            let until_ms = expiry.as_millisecond();
            if until_ms <= self.now.as_millisecond() {
                return None;
            }
            let highest_volatility = self.highest_volatility(&instrument.underlying)?;
            let underlying = band_f64(
                self.market
                    .index
                    .get(instrument.underlying.as_str())?
                    .value(),
            );
            let coins = band_f64((position.size * instrument.contract_size).abs());
            let rate = if position.size.is_sign_negative() {
                1.0 + band_f64(*maintenance)
            } else {
                0.0
            };
            // Inside a band the index stays below 1.5 times itself (half-widths are at most
            // half the price): the forward's bound.
            let per_root_year_per_vol =
                coins * (1.0 + top * rate) * 1.5 * underlying * INV_ROOT_TWO_PI;
            #[allow(clippy::cast_precision_loss)]
            let years = (until_ms - self.now.as_millisecond()) as f64 / MS_PER_YEAR;
            let per_vol = per_root_year_per_vol * years.sqrt();
            if !per_root_year_per_vol.is_finite() || !per_vol.is_finite() {
                return None;
            }
            let entry = decay.get_or_insert(TimeDecay {
                per_root_year: 0.0,
                per_root_year_per_vol: 0.0,
                per_vol: 0.0,
                until_ms,
            });
            entry.per_root_year += per_root_year_per_vol * highest_volatility;
            entry.per_root_year_per_vol += per_root_year_per_vol;
            entry.per_vol += per_vol;
            entry.until_ms = entry.until_ms.min(until_ms);
        }
        Some(decay.filter(|d| d.per_root_year > 0.0))
    }

    /// Half-widths `widths` (given to `exposures` by [`Self::share_slack`] with every option's
    /// delta taken as one) widened by bounds on the deltas of the account's options priced at
    /// their index: each such index may move up to [`DELTA_REACH`] times its half-width, and over
    /// that range, the smiles within `vol_tolerance` and the time until `expires_ms`, an
    /// option's value moves by at most its largest delta per coin ([`call_delta_range`]), a short
    /// one's requirement by its rate plus that delta. The slack (`slack_top`: the slack and
    /// its highest level) is shared out again over those tighter slopes, and each band
    /// on such an index kept inside the range its deltas were bounded over, so the moves the
    /// bands allow still add up to no more than the slack. A near-the-money option's delta is
    /// about a half: its holder's band about doubles, which spares it most re-examinations.
    fn widths_by_option_deltas(
        &self,
        account: &Account,
        exposures: &[Exposure<'_>],
        widths: Vec<f64>,
        (slack, top): (f64, f64),
        expires_ms: i64,
        vol_tolerance: f64,
    ) -> Vec<f64> {
        let prices: Vec<(&str, f64, f64)> = exposures
            .iter()
            .zip(&widths)
            .filter_map(|(exposure, half)| {
                let Source::Index(underlying) = exposure.source else {
                    return None;
                };
                account
                    .positions
                    .values()
                    .any(|p| {
                        matches!(p.instrument.terms, Terms::Option { .. })
                            && p.instrument.underlying == underlying
                    })
                    .then(|| {
                        let price = exposure.price_f64;
                        (
                            underlying,
                            (price - DELTA_REACH * half).max(price * (1.0 - BAND_REACH)),
                            (price + DELTA_REACH * half).min(price * (1.0 + BAND_REACH)),
                        )
                    })
            })
            .collect();
        if prices.is_empty() {
            return widths;
        }
        let reach = OptionReach {
            prices,
            vol_tolerance,
            expires_ms,
        };
        let refined = self.coin_exposures_within(account, Some(&reach));
        if refined.len() != exposures.len()
            || refined
                .iter()
                .zip(exposures)
                .any(|(refined, exposure)| refined.source != exposure.source)
        {
            return widths;
        }
        let BandWidths { halves, .. } =
            self.share_slack(&refined, slack, top, Some(expires_ms), None);
        halves
            .into_iter()
            .zip(&refined)
            .map(|(half, exposure)| {
                let range = reach
                    .prices
                    .iter()
                    .find(|(underlying, ..)| exposure.source == Source::Index(underlying));
                match range {
                    Some((_, low, high)) => half
                        .min(high - exposure.price_f64)
                        .min(exposure.price_f64 - low),
                    None => half,
                }
            })
            .collect()
    }

    /// Whether an option `position` is one the bands bound by the smiles (its time decay, its
    /// delta): held in the cross pool, with no given mark (whose implied volatility follows the
    /// index), at a zero rate (the forward is the index, and neither it nor discounting drifts
    /// with time).
    fn valued_by_smiles(&self, position: &PositionState) -> bool {
        !position.isolated
            && self.market.rate == 0.0
            && !self
                .market
                .mark
                .contains_key(position.instrument.name.as_str())
    }

    /// Bounds on the delta of `position`'s option as a call ([`call_delta_range`]) while its
    /// index stays in `reach` (rounded outward to a millionth), for an option priced at its index
    /// by the smiles ([`Self::valued_by_smiles`]) and banded on that index (`source`). `None`
    /// for anything else, or an underlying `reach` does not cover.
    fn option_deltas(
        &self,
        position: &PositionState,
        source: Source<'_>,
        reach: &OptionReach<'_>,
    ) -> Option<(Decimal, Decimal)> {
        let instrument = &position.instrument;
        let Terms::Option { expiry, strike, .. } = &instrument.terms else {
            return None;
        };
        if !self.valued_by_smiles(position) || source != Source::Index(&instrument.underlying) {
            return None;
        }
        let &(_, lowest, highest) = reach
            .prices
            .iter()
            .find(|(underlying, ..)| *underlying == instrument.underlying)?;
        let summary = self.smile_summary(&instrument.underlying)?;
        // Every volatility of the surface lies between its smiles' lowest and highest (linear in
        // strike, flat beyond, a weighted root-mean-square between expiries); the smiles move by
        // at most the tolerance while the bands hold.
        let vols = (
            (summary.lowest_volatility - reach.vol_tolerance).max(0.0),
            summary.highest_volatility + reach.vol_tolerance,
        );
        let expiry_ms = expiry.as_millisecond();
        #[allow(clippy::cast_precision_loss)]
        let root_years = |at_ms: i64| ((expiry_ms - at_ms) as f64 / MS_PER_YEAR).max(0.0).sqrt();
        let (low, high) = call_delta_range(
            (lowest, highest),
            band_f64(strike.value()),
            (
                root_years(reach.expires_ms),
                root_years(self.now.as_millisecond()),
            ),
            vols,
        );
        #[allow(clippy::cast_possible_truncation)]
        let millionths = |value: f64| Decimal::new(value as i64, 6);
        Some((
            millionths((low * 1e6).floor()),
            millionths((high * 1e6).ceil()),
        ))
    }

    /// The highest volatility of `underlying`'s smiles; `None` without any. Read once per
    /// generation of the smiles for every underlying: each examination of an option holder
    /// asks it for each option held.
    fn highest_volatility(&self, underlying: &str) -> Option<f64> {
        self.smile_summary(underlying)
            .map(|summary| summary.highest_volatility)
    }

    /// What the engine reads of `underlying`'s smiles as a whole, read once per generation of
    /// the smiles and venue for every underlying; `None` for an underlying without smiles.
    pub(super) fn smile_summary(&self, underlying: &str) -> Option<SmileSummary> {
        let key = (self.vol_generation, self.venue_digest);
        let mut cache = self.smile_summaries.borrow_mut();
        if cache.as_ref().is_none_or(|(read_at, _)| *read_at != key) {
            let summaries = self
                .market
                .vol
                .iter()
                .map(|(name, smiles)| {
                    let (lowest_volatility, highest_volatility) = smiles
                        .values()
                        .flat_map(|smile| smile.vols.iter().copied())
                        .fold((f64::INFINITY, 0.0_f64), |(lowest, highest), vol| {
                            (lowest.min(vol), highest.max(vol))
                        });
                    let latest_expiry = smiles
                        .keys()
                        .filter_map(|key| {
                            solvent_core::market::parse_expiry_key(key, self.venue.expiry_time_utc)
                                .ok()
                        })
                        .max();
                    let summary = SmileSummary {
                        highest_volatility,
                        lowest_volatility,
                        latest_expiry,
                    };
                    (name.clone(), summary)
                })
                .collect();
            *cache = Some((key, summaries));
        }
        cache
            .as_ref()?
            .1
            .iter()
            .find(|(name, _)| name == underlying)
            .map(|(_, summary)| *summary)
    }

    /// The highest market price of a pegged coin (one with `usd_peg`), and at least 1.
    pub(super) fn highest_coin_price(&self) -> Decimal {
        self.coin_indices
            .iter()
            .filter_map(|index| self.market.index.get(index.as_str()))
            .map(|price| price.value())
            .fold(Decimal::ONE, Decimal::max)
    }

    /// The index of `position`'s settlement coin when it moves the position's figures apart
    /// from its underlying: a coin that is neither pegged nor the underlying (a quanto-style
    /// contract settled in a third coin).
    pub(super) fn third_coin_index<'a>(&'a self, position: &PositionState) -> Option<&'a str> {
        let settlement = self
            .venue
            .assets
            .get(position.instrument.settlement.as_str())?;
        (settlement.usd_peg.is_none() && settlement.index != position.instrument.underlying)
            .then_some(settlement.index.as_str())
    }

    /// A bound on how far a contract's mark `M = S / rho` moves per unit of the ratio `rho` of
    /// its underlying's index `S` to it, inside bands no wider than half their price
    /// ([`BAND_REACH`]: `S <= (3/2) S0`, `S0` the index now) with the mark clamped within the
    /// band `b` of the index (`rho >= 1 / (1 + b)`): `S / rho^2 <= S0 (3/2) (1 + b)^2`. `None`
    /// without an index, or for a band outside `[0, 1)` (no bound on the ratio then).
    pub(super) fn mark_per_ratio(&self, underlying: &str) -> Option<Decimal> {
        let band = self.config.guards.mark_band;
        if band.is_sign_negative() || band >= Decimal::ONE {
            return None;
        }
        let widest = Decimal::ONE + band;
        self.market
            .index
            .get(underlying)?
            .value()
            .checked_mul(widest)?
            .checked_mul(widest)?
            .checked_mul(Decimal::new(15, 1))
    }

    /// A contract banded on its index and on the ratio of that index to its mark
    /// ([`Source::Ratio`]): a cross or isolated inverse perpetual or future settled in its
    /// underlying's coin ([`Self::inverse_parts`]), or a linear one awaiting its first mark in
    /// an account that values something else at its index ([`Self::awaiting_linear_parts`]).
    /// `None` for any other position.
    pub(super) fn ratio_parts<'a>(
        &self,
        account: &Account,
        position: &'a PositionState,
    ) -> Option<RatioParts<'a>> {
        match position.instrument.style {
            Style::Inverse => self.inverse_parts(position),
            Style::Linear => self.awaiting_linear_parts(account, position),
        }
    }

    /// A linear perpetual or future settled in a pegged asset, awaiting its first mark, in an
    /// account that values something else at its underlying's index (an option, a coin,
    /// another contract awaiting its mark): [`Self::band_source`] keeps it on the index,
    /// where its slope offsets the others'. Valued at the mark `M = S / rho` once it has one,
    /// its P&L `q (M - e)` (`q` its signed size in coins) is `q (S / rho - e)`. From prices
    /// `(S0, rho0)` to `(S1, rho1)` inside the bands, the index first (at `rho0`), then the
    /// ratio (at `S1`):
    /// - the index moves it by `q / rho0` per dollar, exactly `q` while the contract awaits its
    ///   mark (`rho0 = 1`), as the index moved it until now: it offsets the others' slopes as
    ///   it did;
    /// - the ratio moves it by `-q S1 / rho^2` per unit, with `S1` within half of `S0` either
    ///   way ([`BAND_REACH`]) and `rho` within the range the mark band leaves it
    ///   ([`Self::ratio_range`]): `|q| S0 (3/2) (1 + b)^2` at most, `b` the mark band.
    ///
    /// Its requirement is a function of `M` whose slope is bounded by `R`, the rule's bound
    /// for a move of its mark ([`Self::requirement_coins`], [`Self::position_sensitivity`]:
    /// `M` stays below three times `S0`); `dM / dS = 1 / rho0 = 1` and `|dM / d rho| <=
    /// S0 (3/2) (1 + b)^2` ([`Self::mark_per_ratio`]). In portfolio mode the scan values the
    /// contract at `M` too (its index part with the index's, its ratio part apart: see
    /// `portfolio_bound`). The first mark is then an ordinary move of the ratio from 1, which
    /// examines only the holders whose ratio band it leaves ([`Self::first_mark`]); after it
    /// the bands hold until the holder is next examined and banded on the mark.
    pub(super) fn awaiting_linear_parts<'a>(
        &self,
        account: &Account,
        position: &'a PositionState,
    ) -> Option<RatioParts<'a>> {
        let instrument = &position.instrument;
        let name = instrument.name.as_str();
        // Most contracts have their mark: the first test settles it.
        if !self.awaiting_mark.contains_key(name)
            || !self.valued_at_mark(instrument)
            || self.market.mark.contains_key(name)
            || self.band_source(account, position) != Source::Index(&instrument.underlying)
        {
            return None;
        }
        let highest = self.mark_per_ratio(&instrument.underlying)?;
        let index = self
            .market
            .index
            .get(instrument.underlying.as_str())?
            .value();
        let (coins, rate) = self.position_sensitivity(position, index);
        let requirement = self.requirement_coins(position, coins, rate, false);
        let size = position.size.checked_mul(instrument.contract_size)?;
        // `S1 / rho^2` at least `S0 (1/2) (1 - b)^2`, the mark clamped within the band `b`
        // (the lower end of the slope interval only narrows it; `1 - b > 0`, see
        // `mark_per_ratio`).
        let narrowest = Decimal::ONE - self.config.guards.mark_band;
        let lowest = index
            .checked_mul(narrowest)?
            .checked_mul(narrowest)?
            .checked_mul(Decimal::new(5, 1))?;
        let (steep, shallow) = (size.checked_mul(highest)?, size.checked_mul(lowest)?);
        // `-q S1 / rho^2`: between `-q highest` and `-q lowest`, ordered by the side.
        let ratio_slopes = if size.is_sign_negative() {
            (-shallow, -steep)
        } else {
            (-steep, -shallow)
        };
        Some(RatioParts {
            ratio: Source::Ratio {
                contract: name,
                underlying: instrument.underlying.as_str(),
            },
            index_slopes: (size, size),
            index_at_rate: requirement,
            ratio_slopes,
            ratio_at_rate: requirement.checked_mul(highest)?,
        })
    }

    /// A cross inverse perpetual or future settled in its underlying's coin, with a given mark
    /// or awaiting its first one: what its equity and requirement move by with its index and
    /// with the ratio of its index to its mark, the two sources it is banded on.
    ///
    /// With `N` its USD size (signed), `e` its entry, `S` the index and `M` the mark, its
    /// unrealised P&L is `N (1 / e - 1 / M)` coins (`solvent_risk::standard::unrealized_pnl`),
    /// worth `N S / e - N rho` USD at the index, `rho = S / M`: linear in `S` at fixed `rho`,
    /// with the exact slope `N / e` (the side's sign kept, so that it offsets the coin held
    /// against it), and linear in `rho` at fixed `S`, with the exact slope `-N`. Its
    /// requirement is `S m(q)` USD, `m` the rule's maintenance margin in coins at the coin size
    /// `q = |N| / M = |N| rho / S`: `dMM / d rho = |N| m'(q)` and `dMM / dS = m(q) - q m'(q)`.
    /// Inside bands of half their price (`BAND_REACH`) `S >= S0 / 2` and `rho <= 3/2 rho0`, so
    /// `M >= M0 / 3` and `q <= 3 |N| / M0 = q_max`. Deribit's rate `min(base + k q, cap)`
    /// gives `m' = base + 2 k q` below the cap and `cap` at it, `m - q m' = -k q^2` below it and
    /// nothing at it: `m' <= base + 2 k q_max`, `|m - q m'| <= k q_max^2`. A rule of brackets
    /// gives `m' = r`, the bracket's rate, and `m - q m' = -d`, its deduction, at most `r q`:
    /// both bounded by the highest rate `r` reachable up to `q_max`
    /// ([`Self::position_sensitivity`]), and any other rule's by twice that rate.
    ///
    /// Until the first mark `M` is `S` and `rho` 1: the holder is banded on the ratio from the
    /// start, and the first mark is an ordinary move of `rho` from 1 ([`Self::first_mark`]).
    /// An isolated one moves its own pool the same way, its margin coins counted apart
    /// (`band_widths`). `None` for any other position (one settled otherwise is watched at its
    /// every mark, see `set_bands`).
    pub(super) fn inverse_parts<'a>(&self, position: &'a PositionState) -> Option<RatioParts<'a>> {
        let instrument = &position.instrument;
        if instrument.style != Style::Inverse
            || !matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
        {
            return None;
        }
        let settlement = self.venue.assets.get(instrument.settlement.as_str())?;
        if settlement.usd_peg.is_some() || settlement.index != instrument.underlying {
            return None;
        }
        let mark = self.source_price(Source::Mark(instrument.name.as_str()))?;
        let floor = Decimal::new(1, 8);
        let (_, rate) = self.position_sensitivity(position, mark);
        let size = position.size.abs();
        let index_coins = size.checked_div(position.entry.max(floor))?;
        let coin_size_bound = size
            .checked_mul(Decimal::from(3))?
            .checked_div(mark.max(floor))?;
        let (index_at_rate, ratio_at_rate) = match instrument.margin.as_ref() {
            solvent_core::venue::MarginRule::SizeLinear {
                maintenance_base,
                rate_per_unit,
                ..
            } => {
                let growth = rate_per_unit.abs();
                (
                    growth
                        .checked_mul(coin_size_bound)?
                        .checked_mul(coin_size_bound)?,
                    size.checked_mul(
                        maintenance_base.abs()
                            + growth.checked_mul(coin_size_bound)? * Decimal::TWO,
                    )?,
                )
            }
            solvent_core::venue::MarginRule::Tiered { .. } => {
                (coin_size_bound.checked_mul(rate)?, size.checked_mul(rate)?)
            }
            _ => (
                coin_size_bound.checked_mul(rate)?,
                size.checked_mul(rate)?.checked_mul(Decimal::TWO)?,
            ),
        };
        let (index_slope, ratio_slope) = if position.size.is_sign_negative() {
            (-index_coins, size)
        } else {
            (index_coins, -size)
        };
        Some(RatioParts {
            ratio: Source::Ratio {
                contract: instrument.name.as_str(),
                underlying: instrument.underlying.as_str(),
            },
            index_slopes: (index_slope, index_slope),
            index_at_rate,
            ratio_slopes: (ratio_slope, ratio_slope),
            ratio_at_rate,
        })
    }

    /// An interval holding the slope of a cross position's value (USD per dollar of its band's
    /// `source`) everywhere inside a band, `coins` ([`Self::position_sensitivity`]) its size
    /// bound. Where the sign is known:
    /// - a linear perpetual or future settled in a pegged asset and valued at its band's price
    ///   (its given mark, or the index without one): `q (P - entry)` moves by exactly `q` coins;
    /// - an inverse contract priced by the index (`on_index`, see [`Self::equity_coins`]): by
    ///   exactly `N / E` coins, with the sign of its side;
    /// - an option valued by the model (no given mark) and settled in a pegged asset or in its
    ///   underlying's coin (converted at the same index): by its Black-76 delta, `N(d1)` for a
    ///   call and `-N(-d1)` for a put per coin (Black 1976, with `F = S e^(rT)` and the
    ///   discount `e^(-rT)` cancelling), whatever the volatility and the time; the surface is
    ///   sticky in strike (`VolSurface::volatility` reads the strike and the time, not the
    ///   index), so the volatility adds nothing to it. `q` coins then move by between 0 and
    ///   `q` (a call) or `-q` (a put).
    ///
    /// Anything else may move either way by `coins`. Slopes of opposite signs offset each
    /// other in [`Exposure::coins`]; the requirement's slope is still bounded by sizes
    /// (`coins_at_rate`).
    fn equity_slopes(
        &self,
        position: &PositionState,
        source: Source<'_>,
        coins: Decimal,
        on_index: Option<Decimal>,
        call_deltas: Option<(Decimal, Decimal)>,
    ) -> (Decimal, Decimal) {
        let instrument = &position.instrument;
        let either_way = (-coins, coins);
        let side = |slope: Decimal| {
            if position.size.is_sign_negative() {
                (-slope, -slope)
            } else {
                (slope, slope)
            }
        };
        let settlement = self.venue.assets.get(&instrument.settlement);
        let pegged = settlement.is_some_and(|asset| asset.usd_peg.is_some());
        let given_mark = self.market.mark.contains_key(instrument.name.as_str());
        match (instrument.style, &instrument.terms) {
            (Style::Linear, Terms::Perpetual | Terms::Future { .. }) => {
                // Valued at its band's price: its given mark, or the index until it has one
                // (which stands in for the mark of a perpetual awaiting it, see `band_source`).
                let valued_at_source = if given_mark {
                    source == Source::Mark(&instrument.name)
                } else {
                    source == Source::Index(&instrument.underlying)
                        || source == Source::Mark(&instrument.name)
                };
                if pegged && valued_at_source {
                    side(coins)
                } else {
                    either_way
                }
            }
            (Style::Inverse, Terms::Perpetual | Terms::Future { .. }) => {
                on_index.map_or(either_way, side)
            }
            (_, Terms::Option { right, .. }) => {
                let own_coin = settlement.is_some_and(|asset| asset.index == instrument.underlying);
                if given_mark
                    || !(pegged || own_coin)
                    || source != Source::Index(&instrument.underlying)
                {
                    return either_way;
                }
                // Per coin held, a call's value moves by its delta `N(d1)` in `[0, 1]`, a
                // put's by `N(d1) - 1`: inside `[low, high]` and `[low - 1, high - 1]` where
                // the deltas are bounded, else anywhere in those unit intervals.
                let (low, high) = call_deltas.unwrap_or((Decimal::ZERO, Decimal::ONE));
                let (low, high) = match right {
                    solvent_core::instrument::OptionRight::Call => (low, high),
                    solvent_core::instrument::OptionRight::Put => {
                        (low - Decimal::ONE, high - Decimal::ONE)
                    }
                };
                if position.size.is_sign_negative() {
                    (-coins * high, -coins * low)
                } else {
                    (coins * low, coins * high)
                }
            }
        }
    }

    /// How many coins a cross inverse perpetual or future priced by its underlying's index
    /// moves the account's equity by per dollar of that index, exactly: its P&L in the coin,
    /// `N (1 / E - 1 / S)` at the index `S`, converted at `S` (the coin's index is the
    /// underlying's: a third coin has no bands), is `N S / E - N` in USD, linear with slope
    /// `N / E` (a future's mark `S e^(rT)` leaves it so). `None` for anything else, whose
    /// [`Self::position_sensitivity`] bounds it. The requirement's slope is bounded apart.
    fn equity_coins(&self, position: &PositionState) -> Option<Decimal> {
        let instrument = &position.instrument;
        if instrument.style != Style::Inverse
            || !matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            || position.isolated
            || self.market.mark.contains_key(instrument.name.as_str())
            || self.third_coin_index(position).is_some()
        {
            return None;
        }
        position
            .size
            .abs()
            .checked_div(position.entry.max(Decimal::new(1, 8)))
    }

    /// How many coins (USD per dollar of its band's source) a cross position's maintenance
    /// margin moves by at most inside its band: `coins x rate` of
    /// [`Self::position_sensitivity`], except where a size-linear rule (Deribit's `rate = base
    /// + k q`, capped) gives an exact figure:
    /// - on a linear contract the size in coin `q` is fixed, so is the rate: the requirement
    ///   `min(base + k q, cap) q S` moves by exactly `min(base + k q, cap) q`;
    /// - on an inverse perpetual priced by the index (`on_index`, as [`Self::equity_coins`]
    ///   found it), `q = N / S` and the requirement in USD is `min(base + k q, cap) N`, which
    ///   moves by `k q^2` per dollar below the cap and not at all at it; inside a band `S` stays
    ///   above half of the lower of entry and price, so `q <= coins` (`2 N / floor`) and
    ///   `k coins^2` bounds it.
    fn requirement_coins(
        &self,
        position: &PositionState,
        coins: Decimal,
        rate: Decimal,
        on_index: bool,
    ) -> Decimal {
        let instrument = &position.instrument;
        let solvent_core::venue::MarginRule::SizeLinear {
            maintenance_base,
            rate_per_unit,
            max_rate,
            ..
        } = instrument.margin.as_ref()
        else {
            return coins * rate;
        };
        match (instrument.style, &instrument.terms) {
            (Style::Linear, Terms::Perpetual | Terms::Future { .. }) => {
                let size = position.size.abs() * instrument.contract_size;
                let exact = (*maintenance_base + size * *rate_per_unit).min(*max_rate);
                size * exact.abs()
            }
            (Style::Inverse, Terms::Perpetual) if on_index => coins
                .checked_mul(coins)
                .and_then(|square| square.checked_mul(rate_per_unit.abs()))
                .unwrap_or(coins * rate),
            _ => coins * rate,
        }
    }

    /// A position's coin exposure and the largest maintenance rate its rule can reach (see
    /// [`Self::set_bands`]).
    pub(super) fn position_sensitivity(
        &self,
        position: &PositionState,
        price: Decimal,
    ) -> (Decimal, Decimal) {
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
                // Brackets ascend (the venue reader refuses others), so the reachable ones are
                // a prefix, found by bisection: most positions reach one or two of twenty.
                let reachable = match reach {
                    Some(reach) => tiers.partition_point(|t| t.floor <= reach),
                    None => tiers.len(),
                };
                tiers
                    .iter()
                    .take(reachable)
                    .map(|t| t.maintenance_rate)
                    .max()
                    .unwrap_or(Decimal::ONE)
            }
            solvent_core::venue::MarginRule::SizeLinear { max_rate, .. } => *max_rate,
            // A short option's requirement (`rate S + C`, `max(rate S, rate C) + C`, in USD)
            // moves by at most `1 + rate` per coin, its value by at most one; a long one has
            // none.
            solvent_core::venue::MarginRule::DeribitOption { maintenance, .. } => {
                if position.size.is_sign_negative() {
                    Decimal::ONE + *maintenance
                } else {
                    Decimal::ZERO
                }
            }
            _ => Decimal::ONE,
        };
        (coins, rate)
    }

    /// After an index update (and the marks it clamped) or a mark update, re-examines only the
    /// accounts the new prices take out of their band, with those not banded on them yet.
    pub(super) fn revalue_crossed(
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
            // The ADL index values wallets at the coin's price too: it is filed again.
            self.adl_index.invalidate();
            let everyone = self.ids_of(self.accounts.values().map(|a| &a.slot));
            for id in everyone {
                self.evaluate(&id, Figures::Unreported, effects);
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
        let now_ms = self.now.as_millisecond();
        let mut crossed: Vec<&u32> = Vec::new();
        if let Some((underlying, price)) = index {
            if let Some(bands) = self.bands.index.get(underlying) {
                crossed.extend(bands.crossed(price, now_ms));
            }
            // Holders without a band on this underlying yet are examined too.
            crossed.extend(self.unbanded.get(underlying).into_iter().flatten());
            // The index stands in for the mark of a perpetual awaiting its first one: its
            // holders are banded on that mark (see `band_source`).
            for (contract, valued_at) in &self.awaiting_mark {
                if valued_at == underlying
                    && let Some(bands) = self.bands.mark.get(contract.as_str())
                {
                    crossed.extend(bands.crossed(price, now_ms));
                }
            }
            // The index moves the ratio of every inverse contract on it to its mark.
            crossed.extend(self.ratios_crossed(underlying, None, now_ms));
        }
        for (name, price) in marks {
            if let Some(bands) = self.bands.mark.get(*name) {
                crossed.extend(bands.crossed(*price, now_ms));
            }
            for underlying in self.bands.ratio.keys() {
                crossed.extend(self.ratios_crossed(underlying, Some(name), now_ms));
            }
            // So are the holders banded elsewhere than on this mark.
            crossed.extend(self.mark_watchers.get(*name).into_iter().flatten());
        }
        let crossed = self.ids_of(crossed.into_iter());
        for id in crossed {
            self.evaluate(&id, Figures::Unreported, effects);
        }
    }

    /// The accounts whose band on the ratio of an inverse contract on `underlying` to its mark
    /// (of `contract` alone, if given) the current prices reach or leave, or whose band there
    /// has expired. The ratio is taken in `f64` (a few ulps from the exact one, far inside
    /// [`BAND_KEY_MARGIN`]): an index update checks every inverse contract on it, and a
    /// decimal division each would cost more than the check.
    fn ratios_crossed<'s>(
        &'s self,
        underlying: &'s str,
        contract: Option<&'s str>,
        now_ms: i64,
    ) -> impl Iterator<Item = &'s u32> {
        let index = self
            .market
            .index
            .get(underlying)
            .map(|price| band_f64(price.value()));
        self.bands
            .ratio
            .get(underlying)
            .into_iter()
            .flatten()
            .filter(move |(name, _)| contract.is_none_or(|only| only == name.as_str()))
            .filter_map(move |(name, bands)| {
                let index = index?;
                // Without a mark the contract awaits its first one: the ratio is 1.
                let ratio = match self.market.mark.get(name.as_str()) {
                    Some(mark) => index / band_f64(mark.value()),
                    None => 1.0,
                };
                bands
                    .any_crossed_at(ratio, now_ms)
                    .then(|| bands.crossed_at(ratio, now_ms))
            })
            .flatten()
    }

    /// The first mark of `instrument`, at `mark` (already in the market). A perpetual held
    /// while awaiting it was valued at its underlying's index and banded on its own mark, the
    /// index standing in (see [`Self::band_source`]), or on the ratio of its index to its mark,
    /// 1 until now (an inverse one, or a linear one beside something else valued at the index:
    /// [`Self::ratio_parts`]): its price moves from the index to the mark, and the holders
    /// whose band that move crosses are examined, with those waiting for a price and those
    /// watching the mark (in portfolio mode); the others keep their bands, which hold on the
    /// mark as they held on the index. So the first mark of a crowded contract
    /// costs what the accounts it can change cost. Any other contract's holders (a future, a
    /// linear contract settled in an unpegged coin) valued it otherwise until now and are all
    /// examined.
    pub(super) fn first_mark(
        &mut self,
        instrument: &Instrument,
        mark: Decimal,
        effects: &mut Vec<Effect>,
    ) {
        let name = instrument.name.as_str();
        let awaited =
            self.awaiting_mark.remove(name).is_some() && self.banded_on_awaited_mark(instrument);
        if self.config.exhaustive_monitoring || !awaited {
            self.revalue_holders(Source::Mark(name), effects);
            return;
        }
        let now_ms = self.now.as_millisecond();
        let mut examined: Vec<&u32> = self
            .bands
            .mark
            .get(name)
            .into_iter()
            .flat_map(|bands| bands.crossed(mark, now_ms))
            .collect();
        examined.extend(self.ratios_crossed(&instrument.underlying, Some(name), now_ms));
        if let Some(holders) = self.instrument_holders.get(name) {
            examined.extend(
                self.unbanded
                    .values()
                    .flatten()
                    .filter(|slot| holders.contains(slot)),
            );
        }
        // So are the holders that kept it on the index, beside what it offsets there.
        examined.extend(self.mark_watchers.get(name).into_iter().flatten());
        let examined = self.ids_of(examined.into_iter());
        for id in examined {
            self.evaluate(&id, Figures::Unreported, effects);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use solvent_pricing::black76::{Black76, OptionType};

    /// Black-76's call delta at a zero rate, from the pricer itself (an oracle apart from the
    /// bound's own arithmetic).
    fn call_delta(forward: f64, strike: f64, years: f64, vol: f64) -> f64 {
        Black76::new_checked(forward, strike, years, vol, 1.0)
            .map(|model| model.greeks(OptionType::Call).delta)
            .unwrap_or(f64::NAN)
    }

    /// A near-the-money call a week out, the index free to move 2% either way, the smiles
    /// between 40% and 80%, the bands holding for a day: the deltas at the corners the bound
    /// names, worked out by the pricer, are its ends.
    #[test]
    fn a_calls_delta_bounds_are_its_deltas_at_the_corners() {
        let (day, week): (f64, f64) = (1.0 / 365.0, 7.0 / 365.0);
        let root_years = ((week - day).sqrt(), week.sqrt());
        let (low, high) = call_delta_range((58_800.0, 61_200.0), 60_000.0, root_years, (0.4, 0.8));
        // Out of the money at the lowest forward: d1 rises with v, lowest at the least.
        let expected_low = call_delta(58_800.0, 60_000.0, week - day, 0.4);
        // In the money at the highest forward: d1 is convex in v, highest at an end.
        let expected_high = call_delta(61_200.0, 60_000.0, week - day, 0.4)
            .max(call_delta(61_200.0, 60_000.0, week, 0.8));
        assert!((low - expected_low).abs() < 1e-8, "{low} vs {expected_low}");
        assert!(
            (high - expected_high).abs() < 1e-8,
            "{high} vs {expected_high}"
        );
        assert!(low > 0.25 && high < 0.75, "({low}, {high})");
    }

    /// Deep in the money at the lowest forward, the lowest `d1` is inside the range of `v`
    /// (at `sqrt(2 ln(F / K))`), not at an end.
    #[test]
    fn a_deep_calls_lowest_delta_can_be_inside_the_volatility_range() {
        let x = (2.0_f64).ln();
        let inside = (2.0 * x).sqrt();
        let (low, _) = call_delta_range((2.0, 2.5), 1.0, (1.0, 1.0), (0.5, 1.5));
        let at_inside = call_delta(2.0, 1.0, 1.0, inside);
        assert!((low - at_inside).abs() < 1e-8, "{low} vs {at_inside}");
        assert!(at_inside < call_delta(2.0, 1.0, 1.0, 0.5));
        assert!(at_inside < call_delta(2.0, 1.0, 1.0, 1.5));
    }

    /// A volatility that may fall to nothing, or an option at expiry, leaves the delta
    /// anywhere an option's can be on that side of the strike.
    #[test]
    fn without_volatility_the_bounds_open_to_the_ends() {
        assert_eq!(
            call_delta_range((90.0, 110.0), 100.0, (0.0, 0.5), (0.3, 0.6)),
            (0.0, 1.0)
        );
        let (low, high) = call_delta_range((80.0, 90.0), 100.0, (0.0, 0.5), (0.3, 0.6));
        assert_eq!(low, 0.0);
        assert!(high < 0.5);
        assert_eq!(
            call_delta_range((90.0, f64::NAN), 100.0, (0.1, 0.5), (0.3, 0.6)),
            (0.0, 1.0)
        );
        // Smiles without a volatility summarise as lowest infinite, highest zero: an empty
        // range, at expiry a NaN one; in the money at the lowest forward, where the range is
        // clamped into.
        for root_years in [(0.1, 0.5), (0.0, 0.5)] {
            assert_eq!(
                call_delta_range((110.0, 120.0), 100.0, root_years, (f64::INFINITY, 0.0)),
                (0.0, 1.0)
            );
        }
    }

    proptest! {
        /// Every delta inside the box (forward, time, volatility) lies within the bounds.
        #[test]
        fn every_delta_in_the_box_lies_within_the_bounds(
            price in 1.0f64..100_000.0,
            reach in 0.0f64..0.5,
            moneyness in 0.3f64..3.0,
            years in (1.0 / 365.0)..2.0f64,
            elapsed in 0.0f64..1.0,
            vols in (0.05f64..2.0, 0.0f64..1.0),
            draws in proptest::collection::vec((0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0), 1..40),
        ) {
            let forwards = (price * (1.0 - reach), price * (1.0 + reach));
            let strike = price * moneyness;
            let earliest = years * (1.0 - elapsed);
            let vols = (vols.0, vols.0 + vols.1);
            let (low, high) =
                call_delta_range(forwards, strike, (earliest.sqrt(), years.sqrt()), vols);
            for (f, t, v) in draws {
                let forward = forwards.0 + f * (forwards.1 - forwards.0);
                let time = earliest + t * (years - earliest);
                let vol = vols.0 + v * (vols.1 - vols.0);
                let delta = call_delta(forward, strike, time, vol);
                prop_assert!(
                    low <= delta && delta <= high,
                    "delta {delta} at ({forward}, {time}, {vol}) outside ({low}, {high})"
                );
            }
        }
    }
}
