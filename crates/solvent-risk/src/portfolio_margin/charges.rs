//! One underlying's figures for one account: its scenario P&L, worst scenario, scan risk and the
//! contingency charges that floor it or add to it.

use super::*;

/// Which floor set an underlying's risk above its scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Floor {
    MinDelta,
    ShortOption,
}

/// The figures of one underlying for one account, before the cross-underlying offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Charges {
    pub(super) underlying: usize,
    pub(super) worst: usize,
    pub(super) worst_pnl: f64,
    pub(super) scan_risk: f64,
    pub(super) min_delta_charge: f64,
    pub(super) short_option_charge: f64,
    pub(super) floored_risk: f64,
    pub(super) binding_floor: Option<Floor>,
    pub(super) roll_charge: f64,
    pub(super) delta_shock_charge: f64,
    pub(super) additive_charge: f64,
    pub(super) liquidity_charge: f64,
    pub(super) concentration_charge: f64,
    pub(super) net_delta: f64,
    pub(super) direction: f64,
}

impl Charges {
    /// What the cross-underlying offset reads of these charges.
    pub(super) fn leg(&self) -> Leg {
        Leg {
            underlying: self.underlying,
            direction: self.direction,
            floored_risk: self.floored_risk,
        }
    }
}

/// One underlying's input to the cross-underlying offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Leg {
    pub(super) underlying: usize,
    pub(super) direction: f64,
    pub(super) floored_risk: f64,
}

/// What the lean path keeps of one underlying's [`Charges`]: its leg of the offset and the
/// charges added after it, grouped as the full path sums them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct LeanCharges {
    pub(super) leg: Leg,
    /// Roll and delta shocks, and minimums added rather than floored.
    pub(super) additive: f64,
    /// Liquidity and concentration.
    pub(super) liquidity: f64,
}

impl LeanCharges {
    pub(super) fn of(charges: Charges) -> Self {
        Self {
            leg: charges.leg(),
            additive: charges.additive_charge,
            liquidity: charges.liquidity_charge + charges.concentration_charge,
        }
    }
}

/// An account's delta, short option contracts and roll exposure on one underlying, summed in
/// exposure order (the full and lean paths add the same terms in the same order).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DeltaSums {
    pub(super) net_delta: f64,
    pub(super) long_delta: f64,
    pub(super) short_delta: f64,
    pub(super) short_contracts: f64,
    pub(super) roll: f64,
}

impl DeltaSums {
    pub(super) fn add(&mut self, amount: f64, unit_delta: f64, roll_unit: f64, is_option: bool) {
        // Selects rather than branches (signs are random across accounts); adding or taking
        // away zero leaves a sum as it was, so this is the branching form's result exactly.
        let delta = amount * unit_delta;
        self.net_delta += delta;
        let long = delta > 0.0;
        self.long_delta += if long { delta } else { 0.0 };
        self.short_delta -= if long { 0.0 } else { delta };
        self.short_contracts -= if is_option && amount < 0.0 {
            amount
        } else {
            0.0
        };
        self.roll += amount * roll_unit;
    }
}

/// The worst weighted scenario of one underlying: its index and weighted P&L in the report
/// currency (`worst_pnl` stays `+inf` when no scenario is below it, as in a plain `<` scan).
#[derive(Clone, Copy, Debug)]
pub(super) struct Worst {
    pub(super) index: usize,
    pub(super) pnl: f64,
}

impl Worst {
    /// The lowest weighted scenario P&L of underlying `u`, in the report currency, from its
    /// USD P&L per scenario (the first of equal ones).
    pub(super) fn of(
        pnl_usd: &[f64],
        scenarios: &[Scenario],
        currency: &ReportCurrency,
        u: usize,
    ) -> Self {
        let mut worst = Self {
            index: 0,
            pnl: f64::INFINITY,
        };
        for (index, (value, scenario)) in pnl_usd.iter().zip(scenarios).enumerate() {
            let weighted = currency.convert(u, *value, scenario.price_move) * scenario.weight;
            if weighted < worst.pnl {
                worst = Self {
                    index,
                    pnl: weighted,
                };
            }
        }
        worst
    }
}

/// The scan and charges of underlying `u` for the exposures on it (the full path: every
/// exposure's row looked up by name index); `pnl` is scratch space.
pub(super) fn charges(
    book_u: &UnderlyingBook,
    u: usize,
    exposures: &[Exposure],
    currency: &ReportCurrency,
    pnl: &mut Vec<f64>,
) -> Result<Option<Charges>, RiskError> {
    let Some(sums) = scenario_totals(book_u, u, exposures, pnl)? else {
        return Ok(None);
    };
    let worst = Worst::of(pnl, &book_u.scenarios, currency, u);
    let to_report = |usd: f64| currency.convert(u, usd, 0.0);
    settle(book_u.scan(), u, to_report, worst, &sums).map(Some)
}

/// The account's USD P&L in each scenario of underlying `u` (into `pnl`) and its delta sums,
/// every exposure on `u` added in the account's order; `None` when it holds nothing on `u`.
pub(super) fn scenario_totals(
    book_u: &UnderlyingBook,
    u: usize,
    exposures: &[Exposure],
    pnl: &mut Vec<f64>,
) -> Result<Option<DeltaSums>, RiskError> {
    pnl.clear();
    pnl.resize(book_u.scenarios.len(), 0.0);
    let mut held = false;
    let mut sums = DeltaSums::default();
    for exposure in exposures.iter().filter(|e| e.underlying == u) {
        held = true;
        let risk = book_u
            .instruments
            .get_index(exposure.instrument)
            .ok_or_else(outside)?
            .1;
        for (total, unit) in pnl.iter_mut().zip(&risk.unit_pnl) {
            *total += exposure.amount * unit;
        }
        sums.add(
            exposure.amount,
            risk.unit_delta,
            risk.roll_unit,
            risk.is_option,
        );
    }
    Ok(held.then_some(sums))
}

/// The charges of underlying `u` from its worst scenario and delta sums (shared by both paths);
/// `to_report` converts a USD amount at today's prices into the report currency.
#[inline]
pub(super) fn settle(
    scan: Scan<'_>,
    u: usize,
    to_report: impl Fn(f64) -> f64,
    worst: Worst,
    sums: &DeltaSums,
) -> Result<Charges, RiskError> {
    let params = scan.params;
    let DeltaSums {
        net_delta,
        long_delta,
        short_delta,
        short_contracts,
        roll,
    } = *sums;
    let Worst {
        index: worst,
        pnl: worst_pnl,
    } = worst;
    let worst_scenario = scan.scenarios.get(worst).ok_or_else(outside)?;
    let scan_risk = (-worst_pnl).max(0.0);
    let price = scan.price_usd;
    let hedged_delta = long_delta.min(short_delta);
    let min_delta_charge = to_report(
        (params.min_delta_rate * net_delta.abs() + params.hedged_delta_rate * hedged_delta) * price,
    );
    let short_option_charge = to_report(params.short_option_minimum * short_contracts * price);
    let roll_charge = to_report(roll.abs());
    let delta_shock_charge = to_report(
        (net_delta.abs() - params.delta_shock_threshold).max(0.0) * price * params.delta_shock_rate,
    );
    let notional = (net_delta * price).abs();
    let liquidity_charge = if params.adv_usd > 0.0 {
        to_report(
            notional * (params.half_spread + params.impact * (notional / params.adv_usd).sqrt()),
        )
    } else {
        to_report(notional * params.half_spread)
    };
    let concentration_charge = to_report(
        (notional - params.concentration_threshold_usd).max(0.0) * params.concentration_rate,
    );
    let mut floored_risk = scan_risk;
    let mut additive_charge = roll_charge + delta_shock_charge;
    let mut binding_floor = None;
    for (charge, combine, floor) in [
        (min_delta_charge, params.min_delta_combine, Floor::MinDelta),
        (
            short_option_charge,
            params.short_option_combine,
            Floor::ShortOption,
        ),
    ] {
        match combine {
            Combine::Add => additive_charge += charge,
            Combine::Floor if charge > floored_risk => {
                floored_risk = charge;
                binding_floor = Some(floor);
            }
            Combine::Floor => {}
        }
    }
    Ok(Charges {
        underlying: u,
        worst,
        worst_pnl,
        scan_risk,
        min_delta_charge,
        short_option_charge,
        floored_risk,
        binding_floor,
        roll_charge,
        delta_shock_charge,
        additive_charge,
        liquidity_charge,
        concentration_charge,
        net_delta,
        direction: if worst_scenario.price_move > 0.0 {
            -1.0
        } else {
            1.0
        },
    })
}

/// One position of a book on a single underlying valued outside a [`ScenarioBook`] (the margin
/// models' backtest of a book, `crate::vol_scaled::book`, which revalues a rolled book on each
/// day's grid itself): its amount in units and its delta and roll exposure per unit, as
/// [`InstrumentRisk`] carries them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BookPosition {
    /// Units held (`exposure_of`'s amount): negative when short.
    pub(crate) amount: f64,
    /// Delta per unit, in coin of the underlying (1 for spot and linear contracts).
    pub(crate) unit_delta: f64,
    /// Roll exposure per unit, USD ([`roll_per_unit`]; 0 for spot and options).
    pub(crate) roll_unit: f64,
    /// Whether it is an option (short options count toward the short-option minimum).
    pub(crate) is_option: bool,
}

/// The maintenance margin, in USD, of an account holding `positions` on one underlying and
/// nothing else, from their USD P&L in each of `scenarios` (`pnl_usd`) at index `price_usd`:
/// the worst weighted scenario, the minimum-delta and short-option floors, the roll and delta
/// shocks, the liquidity and concentration add-ons of `params`, summed as
/// [`portfolio_risk`] sums them. With one underlying there is no cross-underlying offset, and
/// historical ES is not part of it (no historical scenarios are given).
///
/// # Errors
/// [`RiskError::Unsupported`] when `scenarios` is empty.
pub(crate) fn single_underlying_margin(
    params: &UnderlyingParams,
    scenarios: &[Scenario],
    price_usd: f64,
    pnl_usd: &[f64],
    positions: &[BookPosition],
) -> Result<f64, RiskError> {
    let usd = ReportCurrency {
        price_usd: 1.0,
        priced_by: None,
        equity_usd: 0.0,
    };
    let worst = Worst::of(pnl_usd, scenarios, &usd, 0);
    let mut sums = DeltaSums::default();
    for position in positions {
        sums.add(
            position.amount,
            position.unit_delta,
            position.roll_unit,
            position.is_option,
        );
    }
    let scan = Scan {
        params,
        scenarios,
        price_usd,
    };
    let charges = settle(scan, 0, |amount| amount, worst, &sums)?;
    Ok(charges.floored_risk
        + charges.additive_charge
        + charges.liquidity_charge
        + charges.concentration_charge)
}
