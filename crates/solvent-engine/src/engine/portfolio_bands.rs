//! Safe bands for portfolio-mode accounts (DESIGN.md 6.5 and 9): bounds on how fast the
//! portfolio requirement can move with each price it reads, with the time that passes, and by
//! what it can jump whatever the move (the drift of option deltas, the direction of the
//! cross-underlying offset).
//!
//! Per underlying `u` (price `S`), the requirement is `combine(R_u) + additive + liquidity`
//! (`solvent_risk::portfolio_margin`), every term in USD:
//! - the scan risk `R_u = max(0, -min_k w_k P_k)`, `P_k = sum_i q_i unit_ik`. A linear contract's
//!   unit is `mark m_k` (Lipschitz `|m_k|` in its mark), a coin's `S m_k`, an option's
//!   `V(S (1 + m_k), sigma_k) - V(S, sigma)`, whose derivative `(1 + m_k) delta_k - delta_0` lies in
//!   `[-1, 1 + m_k]` (both deltas of one sign, at most 1 in size): so `R_u` moves by at most
//!   `max_k w_k sum_i |q_i| c_ik` per unit of each price;
//! - the charges on the net delta `d` (minimum delta, delta shock, liquidity, concentration) are
//!   `g(|d|) S` or `f(|d| S)`: with `|d| <= D_max` (the sum of every `|q|`) they move by at most
//!   their slope at `D_max` per unit of `S`, plus their slope times `S |dd|`; an option's delta
//!   moves with the index by at most its gamma, `phi(d1) / (F s) <= 1 / (sqrt(2 pi) F_min s_min)`
//!   (`F_min` half the index, `s_min` the smile's lowest volatility over half the time to
//!   expiry, the horizon's limit), and with time by `|d delta / ds| <= 1 / (sqrt(2 pi e) s_min) +
//!   1 / sqrt(2 pi)` per unit of its falling deviation; the short option minimum is
//!   `c x short contracts x S`, the roll charge `|sum q_i S roll sqrt(years_i)|`;
//! - the offset `combine` lies in `[(1 - max_offset) sum R_u, sum R_u]` and its correlated value
//!   flips with the direction of an underlying's worst scenario: with more than one underlying
//!   it may jump by `max_offset sum R_u <= max_offset MM / (1 - max_offset)`, and moves by at most
//!   `(1 + max_offset)` times `sum R_u`'s change otherwise. The direction is the side (rising or
//!   not) of the worst weighted scenario; it cannot flip while the worst of each side stay
//!   further apart than twice what any one scenario moves (each bounded by the scan's slopes,
//!   vega and time bounds), so bands within that reach need no allowance for the jump
//!   ([`Engine::portfolio_widths`]).
//!
//! Time moves an option's value through its total deviation `s = sigma sqrt(T)` only (zero
//! rate): `|dV| <= F |ds| / sqrt(2 pi)`. An option with a smile of its own expiry keeps its
//! volatility as time passes (sticky strike), so `|ds_0| = sigma (sqrt(T) - sqrt(T - t))`; a
//! shocked scenario's volatility `sigma_k(t)` is monotone in time (the shock's `(30 / dte)^p`
//! is), so `|ds_k| <= |sigma_k(H) - sigma_k(0)| sqrt(T) + max(sigma_k) (sqrt(T) - sqrt(T - t))`
//! for `t <= H`. A future's roll charge moves by at most `q S roll sqrt(t)`. The bands hold for
//! the longest horizon (at most half way to the first expiry) whose time bound fits in half the
//! slack.

#[allow(clippy::wildcard_imports)]
use super::*;

use solvent_core::portfolio_margin::{
    PortfolioCollateral, PortfolioMarginParams, UnderlyingParams, VolShock, VolShockMode,
};
use solvent_risk::portfolio_margin::{Scenario, ScenarioSides, scenarios, vol_shock_scale};

use super::bands::{BandWidths, Exposure, INV_ROOT_TWO_PI, MS_PER_YEAR, Source, band_f64};

/// Days in the year of the scenario grid's times to expiry.
const DAYS_PER_YEAR: f64 = 365.0;

/// How a portfolio-mode account's requirement can move (see the module documentation).
#[derive(Debug)]
pub(super) struct PortfolioBound<'a> {
    /// Per price source: the requirement's slope bound (USD per USD of the price).
    pub(super) slopes: Vec<(Source<'a>, f64)>,
    /// What the requirement may move by whatever the move and the time (USD): the offset's
    /// jump where its directions may flip, else 0.
    pub(super) allowance: f64,
    /// What a flip of an underlying's direction may move the offset by (USD); 0 with one
    /// underlying.
    pub(super) offset_jump: f64,
    /// Per underlying, how fast any one of its weighted scenario P&L moves (for the gap that
    /// keeps its direction, see [`PortfolioBound::scenario_reach`]).
    reaches: Vec<ScenarioReach<'a>>,
    /// Options and futures whose values or charges decay with time.
    decaying: Vec<Decaying<'a>>,
    /// The offset's slope bound: `1 + max_offset` with more than one underlying (`1 / (1 -
    /// max_offset)` with directions held over three or more), else 1.
    offset_factor: f64,
    /// The first expiry among the account's options and futures (Unix milliseconds).
    pub(super) until_ms: Option<i64>,
    /// How far the volatility of its options may move (summed over smile changes) before it
    /// must be examined again; 0 without options.
    pub(super) vol_tolerance: f64,
}

/// One option held, for the bounds.
#[derive(Clone, Copy, Debug)]
struct HeldOption {
    /// `|size x contract size|`.
    size: f64,
    /// The highest and lowest volatility of its smile.
    highest_volatility: f64,
    lowest_volatility: f64,
    /// Years to expiry now.
    years: f64,
}

impl HeldOption {
    /// The smallest total deviation `sigma sqrt(T)` inside the horizon (at most half the
    /// time to expiry, see [`Engine::portfolio_bound`]).
    fn lowest_deviation(&self) -> f64 {
        self.lowest_volatility * (self.years / 2.0).sqrt()
    }

    /// `sqrt(T) - sqrt(T - t)`: how far the square root of its time to expiry falls in `t`
    /// years (`t / (2 sqrt(T))` for short times, not `sqrt(t)`).
    fn root_fall(&self, years: f64) -> f64 {
        self.years.sqrt() - (self.years - years.max(0.0)).max(0.0).sqrt()
    }

    /// How far its total deviation `sigma sqrt(T)` can fall in `years`.
    fn deviation_fall(&self, years: f64) -> f64 {
        self.highest_volatility * self.root_fall(years)
    }

    /// How far its delta moves per unit of `ds` (at a fixed forward): `d delta / ds =
    /// -phi(d1) d2 / s`, and `phi(d1) |d2| <= phi(d1) |d1| + s phi(d1) <= 1 / sqrt(2 pi e) +
    /// s / sqrt(2 pi)`.
    fn delta_per_deviation(&self) -> f64 {
        let lowest = self.lowest_deviation();
        INV_ROOT_TWO_PI_E / lowest + INV_ROOT_TWO_PI
    }

    /// How far its delta moves per unit of the index inside a band: gamma `phi(d1) / (F s)`
    /// with the forward at least half the index.
    fn delta_per_price(&self, price: f64) -> f64 {
        INV_ROOT_TWO_PI / (0.5 * price * self.lowest_deviation())
    }
}

/// Whether the bands may count on each underlying's direction in the cross-underlying offset
/// holding (the caller checks it against the gap between the scenarios' two sides), or must
/// allow for its flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Directions {
    /// A direction may flip inside the bands: the offset's jump comes off the slack.
    MayFlip,
    /// Every direction holds inside the bands (to be checked by the caller).
    Hold,
}

/// How fast one underlying's weighted scenario P&L can move: each is bounded by the scan's
/// slopes (the same `max_k` over scenarios that bounds the scan risk), its vega bound and its
/// time bound, without the offset, the charges or the equity.
#[derive(Debug)]
struct ScenarioReach<'a> {
    underlying: &'a str,
    /// Per price source (USD per USD).
    slopes: Vec<(Source<'a>, f64)>,
    /// Per unit of every option's volatility (USD).
    per_vol: f64,
    /// Its entry among the decaying underlyings, for the time bound.
    decaying: Option<usize>,
}

/// `1 / sqrt(2 pi e)`, the largest value of `phi(x) |x|`.
const INV_ROOT_TWO_PI_E: f64 = 0.241_970_724_519_143_37;

/// One underlying's options and futures, for the time bound.
#[derive(Debug)]
struct Decaying<'a> {
    params: &'a UnderlyingParams,
    scenarios: Vec<Scenario>,
    /// The highest the index can reach inside a band (1.5 times itself).
    forward_max: f64,
    /// The options on the underlying.
    options: Vec<HeldOption>,
    /// What the charges on the net delta cost per coin of delta at the index (USD per coin).
    delta_charge: f64,
    /// Sum of `|q| roll` over futures with an expiry.
    futures_roll: f64,
}

impl PortfolioBound<'_> {
    /// How far time alone (at most `years`) moves `E - top MM` (USD).
    pub(super) fn time_bound(&self, years: f64, top: f64) -> f64 {
        let root = years.max(0.0).sqrt();
        let mut total = 0.0;
        for underlying in &self.decaying {
            let forward = underlying.forward_max;
            // Equity: each option's value.
            // Equity: each option's value, its deviation falling by `sigma (sqrt(T) - sqrt(T - t))`.
            let values: f64 = underlying
                .options
                .iter()
                .map(|o| o.size * forward * o.deviation_fall(years) * INV_ROOT_TWO_PI)
                .sum();
            // The charges on the net delta: each option's delta drifts as its deviation falls.
            let drift: f64 = underlying
                .options
                .iter()
                .map(|o| o.size * o.delta_per_deviation() * o.deviation_fall(years))
                .sum::<f64>()
                * underlying.delta_charge;
            // The scan: the worst of the scenarios' bounds.
            let worst = underlying.scenario_time_bound(years);
            let roll = underlying.futures_roll * forward * root;
            total += values + top * self.offset_factor * (worst + roll + drift);
        }
        total
    }

    /// How far any one weighted scenario P&L of `underlying` can move inside bands of
    /// half-widths `half_of` (per source), for at most `years` and a volatility moved by at most
    /// `vol_tolerance` (USD); `None` for an underlying the bound does not hold.
    pub(super) fn scenario_reach(
        &self,
        underlying: &str,
        half_of: impl Fn(Source<'_>) -> Option<f64>,
        years: Option<f64>,
        vol_tolerance: f64,
    ) -> Option<f64> {
        let reach = self.reaches.iter().find(|r| r.underlying == underlying)?;
        let mut total = reach.per_vol * vol_tolerance;
        for (source, slope) in &reach.slopes {
            if *slope > 0.0 {
                total += slope * half_of(*source)?;
            }
        }
        if let Some(decaying) = reach.decaying {
            total += self.decaying.get(decaying)?.scenario_time_bound(years?);
        }
        Some(total)
    }
}

impl Decaying<'_> {
    /// How far time alone (at most `years`) moves any one weighted scenario P&L (USD): its
    /// options' shocked and unshocked values each by their deviation's fall.
    fn scenario_time_bound(&self, years: f64) -> f64 {
        let forward = self.forward_max;
        // The shock's term factors now and `years` later are the same in every scenario (two
        // `powf` each): made once per option, not once per scenario and option.
        let term_factors: Vec<TermFactors> = self
            .options
            .iter()
            .map(|option| TermFactors::of(self.params, option, years))
            .collect();
        let mut worst: f64 = 0.0;
        for scenario in &self.scenarios {
            let mut moved = 0.0;
            for (option, factors) in self.options.iter().zip(&term_factors) {
                let shocked_deviation =
                    shocked_deviation_bound(self.params, scenario.vol, option, years, *factors);
                moved += option.size
                    * forward
                    * ((1.0 + scenario.price_move) * shocked_deviation
                        + option.deviation_fall(years))
                    * INV_ROOT_TWO_PI;
            }
            worst = worst.max(scenario.weight * moved);
        }
        worst
    }
}

/// The shock's term factor `(30 / dte)^p` ([`vol_shock_scale`]) of an option now and `years`
/// later.
#[derive(Clone, Copy, Debug)]
struct TermFactors {
    now: f64,
    later: f64,
}

impl TermFactors {
    fn of(params: &UnderlyingParams, option: &HeldOption, years: f64) -> Self {
        Self {
            now: vol_shock_scale(option.years * DAYS_PER_YEAR, params),
            later: vol_shock_scale((option.years - years) * DAYS_PER_YEAR, params),
        }
    }
}

/// A bound on how far a shocked scenario's total deviation `sigma_k sqrt(T - t)` moves over
/// `t <= years` (at most half the time to expiry), the option's volatility constant (a smile of
/// its own expiry) and at most its smile's highest. The shock's term factor `scale` only grows
/// as the expiry nears, and a shocked volatility moves with it by at most
/// `volatility x shock x |d scale|` (a floor is 1-Lipschitz); it stays below its value at the
/// larger factor.
fn shocked_deviation_bound(
    params: &UnderlyingParams,
    shock: VolShock,
    option: &HeldOption,
    years: f64,
    TermFactors { now, later }: TermFactors,
) -> f64 {
    let volatility = option.highest_volatility;
    let (per_scale, highest) = match (params.vol_shock_mode, shock) {
        (_, VolShock::Unchanged) => (0.0, volatility),
        (VolShockMode::Relative, VolShock::Up) => (
            volatility * params.vol_shock_up,
            (volatility * (1.0 + params.vol_shock_up * later)).max(params.vol_up_floor),
        ),
        (VolShockMode::Relative, VolShock::Down) => {
            (volatility * params.vol_shock_down, volatility)
        }
        (VolShockMode::Absolute, VolShock::Up) => (
            0.0,
            (volatility + params.vol_shock_up).max(params.vol_up_floor),
        ),
        (VolShockMode::Absolute, VolShock::Down) => (0.0, volatility),
    };
    per_scale * (later - now).abs() * option.years.sqrt() + highest * option.root_fall(years)
}

/// What the charges on the net delta cost per coin of delta per unit of the index, at their
/// steepest inside a band (the liquidity charge's slope at the largest notional, `1.5` times
/// the index times `delta_max`).
fn delta_rates_of(params: &UnderlyingParams, delta_max: f64, price: f64) -> f64 {
    let notional_max = delta_max * price * 1.5;
    let liquidity_slope = params.half_spread
        + if params.adv_usd > 0.0 {
            1.5 * params.impact * (notional_max / params.adv_usd).sqrt()
        } else {
            0.0
        };
    params.min_delta_rate
        + params.hedged_delta_rate
        + params.delta_shock_rate
        + liquidity_slope
        + params.concentration_rate
}

impl Engine {
    /// The bounds of a portfolio-mode account's requirement; `None` where none is known: an
    /// isolated or inverse contract, a venue of segregated portfolio margin, an underlying
    /// without portfolio parameters, an option with a given mark (its volatility then follows
    /// the index) or without a smile of its own expiry, a non-zero rate, an expired contract.
    ///
    /// `slack` (USD) is what the price moves, time and volatility share: a quarter of it (after
    /// the offset's jump) is the volatility's, the bounds of time and price then taking each
    /// option's volatility that far from its smile's range.
    pub(super) fn portfolio_bound<'a>(
        &'a self,
        account: &'a Account,
        maintenance_usd: f64,
        slack: f64,
        top: f64,
        directions: Directions,
    ) -> Option<PortfolioBound<'a>> {
        let params: &PortfolioMarginParams = self.venue.portfolio_margin.as_ref()?;
        // The bounds are of one USD scan; segregated margin scans each currency in its coin and
        // stands at its weakest currency: no band, the account is recomputed at every price.
        if self.market.rate != 0.0 || params.collateral == PortfolioCollateral::Segregated {
            return None;
        }
        let now_ms = self.now.as_millisecond();
        // Per underlying: linear exposures by source, option sizes, and the delta sums.
        struct Underlying<'a> {
            name: &'a str,
            // Each contract's source and size: what its scan P&L moves by per unit of that
            // source in a scenario of move `s`, over `|s|`. A contract awaiting its first mark
            // beside other exposures to the index stands twice: on the index with its size,
            // and on the ratio of the index to its mark with `size x mark_per_ratio`.
            linear: Vec<(Source<'a>, f64)>,
            options: Vec<HeldOption>,
            option_size: f64,
            short_contracts: f64,
            delta_max: f64,
            roll_slope: f64,
            futures_roll: f64,
        }
        let mut underlyings: Vec<Underlying<'a>> = Vec::new();
        let mut until_ms: Option<i64> = None;
        let entry = |name: &'a str, underlyings: &mut Vec<Underlying<'a>>| -> usize {
            match underlyings.iter().position(|u| u.name == name) {
                Some(index) => index,
                None => {
                    underlyings.push(Underlying {
                        name,
                        linear: Vec::new(),
                        options: Vec::new(),
                        option_size: 0.0,
                        short_contracts: 0.0,
                        delta_max: 0.0,
                        roll_slope: 0.0,
                        futures_roll: 0.0,
                    });
                    underlyings.len() - 1
                }
            }
        };
        for position in account.positions.values() {
            let instrument = &position.instrument;
            let underlying_params = params.underlyings.get(instrument.underlying.as_str())?;
            if position.isolated
                || underlying_params.vol_power_short < 0.0
                || underlying_params.vol_power_long < 0.0
                || underlying_params.vol_shock_up < 0.0
                || underlying_params.vol_shock_down < 0.0
            {
                return None;
            }
            let size = band_f64((position.size * instrument.contract_size).abs());
            let index = entry(instrument.underlying.as_str(), &mut underlyings);
            let slot = underlyings.get_mut(index)?;
            slot.delta_max += size;
            match &instrument.terms {
                Terms::Option { expiry, .. } => {
                    let expiry_ms = expiry.as_millisecond();
                    if expiry_ms <= now_ms
                        || self.market.mark.contains_key(instrument.name.as_str())
                    {
                        return None;
                    }
                    let (lowest_volatility, highest_volatility) =
                        self.own_smile_volatilities(instrument, *expiry)?;
                    let years = (expiry_ms - now_ms) as f64 / MS_PER_YEAR;
                    slot.options.push(HeldOption {
                        size,
                        highest_volatility,
                        lowest_volatility,
                        years,
                    });
                    slot.option_size += size;
                    if position.size.is_sign_negative() {
                        slot.short_contracts += size;
                    }
                    // At most half the time to expiry, so an option's deviation (its gamma's
                    // bound) stays away from zero.
                    let half_way = now_ms + (expiry_ms - now_ms) / 2;
                    until_ms = Some(until_ms.map_or(half_way, |u| u.min(half_way)));
                }
                Terms::Perpetual | Terms::Future { .. } => {
                    if instrument.style != Style::Linear {
                        return None;
                    }
                    slot.linear
                        .push((self.band_source(account, position), size));
                    // Awaiting its first mark beside other exposures to the index: valued at
                    // the index until the mark, its part there is the index's; the gap to the
                    // mark is a move of the ratio (`awaiting_linear_parts`).
                    if let Some(parts) = self.awaiting_linear_parts(account, position) {
                        let per_ratio =
                            band_f64(self.mark_per_ratio(instrument.underlying.as_str())?);
                        slot.linear.push((parts.ratio, size * per_ratio));
                    }
                    let years = match instrument.terms.expiry() {
                        Some(expiry) => {
                            let expiry_ms = expiry.as_millisecond();
                            if expiry_ms <= now_ms {
                                return None;
                            }
                            until_ms = Some(until_ms.map_or(expiry_ms, |u| u.min(expiry_ms)));
                            slot.futures_roll += size * underlying_params.roll_shock;
                            ((expiry_ms - now_ms) as f64 / MS_PER_YEAR).max(1.0 / DAYS_PER_YEAR)
                        }
                        None => 1.0 / DAYS_PER_YEAR,
                    };
                    slot.roll_slope += size * underlying_params.roll_shock * years.sqrt();
                }
            }
        }
        // Coins priced by a scanned underlying are spot exposures of its scan.
        let mut coins: Vec<(&'a str, f64)> = Vec::new();
        for (symbol, amount) in self.ledger.wallet(&account.id) {
            let Some(asset) = self.venue.assets.get(symbol) else {
                continue;
            };
            let Some((name, _)) = params.underlyings.get_key_value(asset.index.as_str()) else {
                continue;
            };
            let amount = band_f64(amount.abs());
            let index = entry(name.as_str(), &mut underlyings);
            underlyings.get_mut(index)?.delta_max += amount;
            coins.push((name.as_str(), amount));
        }
        let held = underlyings.len();
        let max_offset = params.max_offset;
        let (offset_factor, offset_jump) = if held > 1 {
            if !(0.0..1.0).contains(&max_offset) {
                return None;
            }
            // The offset's slope in the summed changes of the `R_u`, directions fixed: `(M R)_u /
            // sqrt(R' M R)` on its correlated branch (`M_uv = rho_uv d_u d_v`, `|M_uv| <= 1`),
            // at most 1 where `M` is positive semidefinite (Cauchy-Schwarz), as any 2 x 2 one
            // is; with three or more underlyings a partial or inconsistent set of correlations
            // may not be, and the branch's floor `(1 - max_offset) sum R_u` bounds it by
            // `1 / (1 - max_offset)`. A direction that may flip is covered by the allowance,
            // the whole range the offset can swing in, over the slope `1 + max_offset`.
            let factor = match directions {
                Directions::Hold if held > 2 => 1.0 / (1.0 - max_offset),
                Directions::Hold | Directions::MayFlip => 1.0 + max_offset,
            };
            (factor, max_offset * maintenance_usd / (1.0 - max_offset))
        } else {
            (1.0, 0.0)
        };
        let allowance = match directions {
            Directions::MayFlip => offset_jump,
            Directions::Hold => 0.0,
        };
        // The volatility's share: the requirement moves with a volatility change `dv` by at
        // most the options' vegas (`F sqrt(T) / sqrt(2 pi)` per unit, more in a scenario whose
        // shock scales the volatility) and the delta charges' drift.
        // Each underlying's parameters, scenario grid, index and delta-charge rate, read once
        // for the volatility's share and for the slopes below.
        let mut priced = Vec::with_capacity(underlyings.len());
        for underlying in &underlyings {
            let underlying_params = params.underlyings.get(underlying.name)?;
            let price = band_f64(self.market.index.get(underlying.name)?.value());
            let delta_rates = delta_rates_of(underlying_params, underlying.delta_max, price);
            priced.push((
                underlying_params,
                scenarios(underlying_params),
                price,
                delta_rates,
            ));
        }
        let mut vol_slope = 0.0;
        let mut scenario_per_vol = Vec::with_capacity(underlyings.len());
        let mut lowest_volatility = f64::INFINITY;
        for (underlying, (underlying_params, grid, price, delta_rates)) in
            underlyings.iter().zip(&priced)
        {
            let (underlying_params, price) = (*underlying_params, *price);
            let forward = 1.5 * price;
            let delta_charge = delta_rates * price;
            let mut worst: f64 = 0.0;
            for scenario in grid {
                let mut moved = 0.0;
                for option in &underlying.options {
                    let scale =
                        vol_shock_scale(option.years / 2.0 * DAYS_PER_YEAR, underlying_params);
                    let shocked_slope = match (underlying_params.vol_shock_mode, scenario.vol) {
                        (VolShockMode::Relative, VolShock::Up) => {
                            1.0 + underlying_params.vol_shock_up * scale
                        }
                        _ => 1.0,
                    };
                    moved += option.size
                        * forward
                        * ((1.0 + scenario.price_move) * shocked_slope + 1.0)
                        * option.years.sqrt()
                        * INV_ROOT_TWO_PI;
                }
                worst = worst.max(scenario.weight * moved);
            }
            scenario_per_vol.push(worst);
            let values: f64 = underlying
                .options
                .iter()
                .map(|o| o.size * forward * o.years.sqrt() * INV_ROOT_TWO_PI)
                .sum();
            let drift: f64 = underlying
                .options
                .iter()
                .map(|o| {
                    let halved = HeldOption {
                        lowest_volatility: o.lowest_volatility / 2.0,
                        ..*o
                    };
                    o.size * halved.delta_per_deviation() * o.years.sqrt()
                })
                .sum::<f64>()
                * delta_charge;
            vol_slope += values + top * offset_factor * (worst + drift);
            for option in &underlying.options {
                lowest_volatility = lowest_volatility.min(option.lowest_volatility);
            }
        }
        let vol_tolerance = if vol_slope > 0.0 {
            ((slack - top * allowance) / 4.0 / vol_slope)
                .min(lowest_volatility / 2.0)
                .max(0.0)
        } else {
            0.0
        };
        // Every option's volatility may now be that far from its smile's range.
        for underlying in &mut underlyings {
            for option in &mut underlying.options {
                option.highest_volatility += vol_tolerance;
                option.lowest_volatility -= vol_tolerance;
            }
        }
        let mut slopes: Vec<(Source<'a>, f64)> = Vec::new();
        let mut add_slope =
            |source: Source<'a>, slope: f64| match slopes.iter_mut().find(|(s, _)| *s == source) {
                Some((_, total)) => *total += slope,
                None => slopes.push((source, slope)),
            };
        let mut decaying = Vec::new();
        let mut reaches = Vec::with_capacity(underlyings.len());
        for ((underlying, (underlying_params, grid, price, delta_rates)), per_vol) in
            underlyings.into_iter().zip(priced).zip(scenario_per_vol)
        {
            let mut reach = ScenarioReach {
                underlying: underlying.name,
                slopes: Vec::new(),
                per_vol,
                decaying: None,
            };
            let coin: f64 = coins
                .iter()
                .filter(|(name, _)| *name == underlying.name)
                .map(|(_, amount)| amount)
                .sum();
            // The scan's slope per source: the index (options, coins, contracts marked at it)
            // and each contract's own mark.
            let on_index: f64 = coin
                + underlying
                    .linear
                    .iter()
                    .filter(|(source, _)| *source == Source::Index(underlying.name))
                    .map(|(_, size)| size)
                    .sum::<f64>();
            let index_scan = grid
                .iter()
                .map(|s| {
                    s.weight
                        * (underlying.option_size * (1.0 + s.price_move.max(0.0))
                            + on_index * s.price_move.abs())
                })
                .fold(0.0, f64::max);
            for (source, size) in &underlying.linear {
                if *source != Source::Index(underlying.name) {
                    let scan = grid
                        .iter()
                        .map(|s| s.weight * size * s.price_move.abs())
                        .fold(0.0, f64::max);
                    add_slope(*source, offset_factor * scan);
                    reach.slopes.push((*source, scan));
                }
            }
            reach
                .slopes
                .push((Source::Index(underlying.name), index_scan));
            // The charges on the net delta, at the largest delta and notional the band allows.
            let p = underlying_params;
            let delta_max = underlying.delta_max;
            let charges = delta_rates * delta_max
                + p.short_option_minimum * underlying.short_contracts
                + underlying.roll_slope;
            add_slope(
                Source::Index(underlying.name),
                offset_factor * (index_scan + charges),
            );
            // Each option's delta moves with the index by at most its gamma bound: the charges
            // on the net delta by that much more per unit of the index.
            let gamma: f64 = underlying
                .options
                .iter()
                .map(|o| o.size * o.delta_per_price(price))
                .sum();
            add_slope(
                Source::Index(underlying.name),
                offset_factor * delta_rates * price * gamma,
            );
            if !underlying.options.is_empty() || underlying.futures_roll > 0.0 {
                reach.decaying = Some(decaying.len());
                decaying.push(Decaying {
                    params: underlying_params,
                    scenarios: grid,
                    forward_max: 1.5 * price,
                    options: underlying.options,
                    delta_charge: delta_rates * price,
                    futures_roll: underlying.futures_roll,
                });
            }
            reaches.push(reach);
        }
        if !offset_jump.is_finite() || slopes.iter().any(|(_, slope)| !slope.is_finite()) {
            return None;
        }
        Some(PortfolioBound {
            slopes,
            allowance,
            offset_jump,
            reaches,
            decaying,
            offset_factor,
            until_ms,
            vol_tolerance,
        })
    }

    /// The bands of a portfolio-mode account with `slack` (USD, after rounding) to its nearest
    /// level; `None` where the account must be examined at every update.
    ///
    /// With several underlyings, the cross-underlying offset reads each underlying's direction
    /// (the side of its worst scenario) and jumps when one flips. Either the bands hold the
    /// directions (each underlying's worst rising and worst other scenario are further apart
    /// than twice what any one scenario can move inside them, checked on the scan itself), or
    /// the jump comes off the slack. The jump, `max_offset MM / (1 - max_offset)`, exceeds the
    /// slack of any account below a health of about `1 + 1 / (1 - max_offset)`, where the
    /// held directions still leave bands. Where the jump takes half the slack or more, held
    /// directions over the whole slack are tried; where the gaps do not bear them, held
    /// directions over the share of the slack the gaps bear, if more than the jump leaves.
    pub(super) fn portfolio_widths(
        &self,
        account: &Account,
        exposures: &[Exposure],
        sides: &[ScenarioSides],
        maintenance_usd: f64,
        slack: f64,
        top: f64,
    ) -> Option<BandWidths> {
        // The jump's allowance first: with one underlying there is none, and where it takes
        // less than half the slack the gaps' check (two more bounds) is not worth its cost.
        let flipping =
            self.portfolio_bound(account, maintenance_usd, slack, top, Directions::MayFlip)?;
        let left = slack - top * flipping.allowance;
        if flipping.offset_jump == 0.0 || left >= slack / 2.0 {
            return self.portfolio_bands_of(&flipping, exposures, left, top);
        }
        let flipped = || self.portfolio_bands_of(&flipping, exposures, left, top);
        if sides.is_empty() {
            return flipped();
        }
        // Held directions over the whole slack leave wider bands than the jump's allowance
        // does: when the gaps bear them, nothing else need be tried.
        let held = self.portfolio_bound(account, maintenance_usd, slack, top, Directions::Hold)?;
        let widths = self.portfolio_bands_of(&held, exposures, slack, top)?;
        let room = self.direction_room(&held, sides, exposures, &widths);
        if room > 1.0 {
            return Some(widths);
        }
        // Once more over the share of the slack the gaps bear, where that is more than the
        // jump leaves: the price bands and the volatility's tolerance scale with the slack, the
        // horizon only shrinks with it, and the directions are checked again all the same.
        let trial = 0.9 * room * slack;
        if trial > left.max(0.0)
            && let Some(bound) =
                self.portfolio_bound(account, maintenance_usd, trial, top, Directions::Hold)
            && let Some(widths) = self.portfolio_bands_of(&bound, exposures, trial, top)
            && self.direction_room(&bound, sides, exposures, &widths) > 1.0
        {
            return Some(widths);
        }
        flipped()
    }

    /// The bands of `bound` over `slack` (USD, after any allowance): the horizon's share for
    /// time, the rest shared over the exposures.
    fn portfolio_bands_of(
        &self,
        bound: &PortfolioBound<'_>,
        exposures: &[Exposure],
        slack: f64,
        top: f64,
    ) -> Option<BandWidths> {
        if slack.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let (slack, expires_ms) = self.portfolio_horizon(bound, slack, top);
        let mut widths = self.share_slack(exposures, slack, top, expires_ms, Some(bound));
        widths.vol_tolerance = bound.vol_tolerance;
        Some(widths)
    }

    /// How many times over the gap between each underlying's two sides covers twice what one
    /// scenario can move inside `widths` (the least over the underlyings): above 1, no
    /// direction can flip inside the bands. A margin of `1e-9` of the sides covers the f64
    /// rounding between these USD sides and the report currency the scan divides them into,
    /// and the scan's first-of-equals rule (a tie is a gap of 0).
    fn direction_room(
        &self,
        bound: &PortfolioBound<'_>,
        sides: &[ScenarioSides],
        exposures: &[Exposure],
        widths: &BandWidths,
    ) -> f64 {
        let half_of = |source: Source<'_>| {
            exposures
                .iter()
                .position(|e| e.source == source)
                .and_then(|index| widths.halves.get(index).copied())
        };
        #[allow(clippy::cast_precision_loss)]
        let years = widths
            .expires_ms
            .map(|until| (until - self.now.as_millisecond()).max(0) as f64 / MS_PER_YEAR);
        let mut room = f64::INFINITY;
        for side in sides {
            if side.rising == f64::INFINITY || side.not_rising == f64::INFINITY {
                // No scenario on one side: the direction cannot change.
                continue;
            }
            let Some(reach) =
                bound.scenario_reach(&side.underlying, half_of, years, widths.vol_tolerance)
            else {
                return 0.0;
            };
            let margin = 1e-9 * (side.rising.abs() + side.not_rising.abs() + 1.0);
            let gap = (side.rising - side.not_rising).abs();
            let share = gap / (2.0 * reach + margin);
            if share.is_nan() {
                return 0.0;
            }
            room = room.min(share);
        }
        room
    }

    /// The lowest and highest volatility of the smile of an option's own expiry (the option's
    /// volatility lies between, and time leaves it as it is); `None` without such a smile.
    fn own_smile_volatilities(
        &self,
        instrument: &Instrument,
        expiry: Timestamp,
    ) -> Option<(f64, f64)> {
        let smiles = self.market.vol.get(instrument.underlying.as_str())?;
        let smile = smiles.iter().find_map(|(key, smile)| {
            solvent_core::market::parse_expiry_key(key, self.venue.expiry_time_utc)
                .ok()
                .filter(|instant| *instant == expiry)
                .map(|_| smile)
        })?;
        let highest = smile.vols.iter().copied().fold(0.0_f64, f64::max);
        let lowest = smile.vols.iter().copied().fold(f64::INFINITY, f64::min);
        (lowest.is_finite() && lowest > 0.0 && highest.is_finite()).then_some((lowest, highest))
    }
}
