//! Schedule IM: the standardised initial margin schedule (BCBS-IOSCO, *Margin requirements for
//! non-centrally cleared derivatives*, Appendix A) on the CRIF rows whose `im_model` is
//! `Schedule`, as Open Source Risk Engine's `IMScheduleCalculator` computes it
//! (`OREAnalytics/orea/simm/imschedulecalculator.cpp`):
//!
//! - each trade (`TradeID`) has a `Notional` row (its absolute `AmountUSD`; a trade without one
//!   is left out) and a `PV` row (0 when absent), a schedule product class and an `end_date`;
//! - its gross margin is the notional times the schedule's rate for its product class and
//!   maturity (the year fraction from the as-of date to the end date, Actual/Actual ISDA):
//!   credit 2 % under 2 years, 5 % under 5, 10 % beyond; commodity, equity and other 15 %; FX
//!   6 %; interest rate 1 % under 2 years, 2 % under 5, 4 % beyond (ORE's `multiplierMap_`; a
//!   negative maturity falls in the middle band, as in ORE);
//! - per netting set: the gross margin `G` (the sum), the gross replacement cost (the sum of the
//!   trades' positive PVs to collect, negative to post), the net replacement cost (the positive,
//!   or negative, part of the summed PV), `NGR` = net / gross replacement cost (1 when the gross
//!   is 0; 0 under BANX), and Schedule IM = `G (0.4 + 0.6 NGR)`.
//!
//! The regulations (`collect_regulations`, `post_regulations`) are enforced or not as for SIMM:
//! enforced, each regulation named by a trade's rows computes its own Schedule IM (a trade under
//! `Excluded` or, when its netting set names a regulation anywhere, under none is left out of it)
//! and the largest wins (the first in ORE's order among equals); not enforced, every trade counts
//! under `Unspecified`. Where a netting set has SEC on a side (on any row of the CRIF), its CFTC
//! trades count under SEC too, as ORE's `IMScheduleAnalytic` marks and its calculator does.

use std::collections::{BTreeMap, BTreeSet};

use compact_str::CompactString;
use serde::Serialize;
use thiserror::Error;

use crate::crif::Crif;
use crate::regulation::{Regulation, Regulations, close_enough};
use crate::report::Side;

/// A product class of the schedule (CRIF product classes for `im_model` Schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ScheduleProductClass {
    /// Interest rate (`Rates`).
    Rates,
    /// FX.
    Fx,
    /// Credit.
    Credit,
    /// Equity.
    Equity,
    /// Commodity.
    Commodity,
    /// Other.
    Other,
}

impl ScheduleProductClass {
    /// Parses a CRIF product class name, ignoring case as ORE does.
    pub fn parse(text: &str) -> Option<Self> {
        [
            ("Rates", Self::Rates),
            ("FX", Self::Fx),
            ("Credit", Self::Credit),
            ("Equity", Self::Equity),
            ("Commodity", Self::Commodity),
            ("Other", Self::Other),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(text))
        .map(|(_, c)| c)
    }

    /// The name as ORE writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rates => "Rates",
            Self::Fx => "FX",
            Self::Credit => "Credit",
            Self::Equity => "Equity",
            Self::Commodity => "Commodity",
            Self::Other => "Other",
        }
    }

    /// The schedule's rate on the notional for a maturity in years (ORE's `label` and
    /// `multiplierMap_`).
    pub fn rate(self, maturity: f64) -> f64 {
        let band = |short: f64, middle: f64, long: f64| {
            if (0.0..2.0).contains(&maturity) {
                short
            } else if maturity < 5.0 {
                middle
            } else {
                long
            }
        };
        match self {
            Self::Credit => band(0.02, 0.05, 0.10),
            Self::Rates => band(0.01, 0.02, 0.04),
            Self::Fx => 0.06,
            Self::Commodity | Self::Equity | Self::Other => 0.15,
        }
    }
}

/// What a schedule row gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// The trade's present value.
    Pv,
    /// The trade's notional.
    Notional,
}

/// A CRIF row with `im_model` Schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    /// The netting set (`PortfolioID`).
    pub netting_set: CompactString,
    /// The trade (`TradeID`).
    pub trade_id: CompactString,
    /// The product class.
    pub product_class: ScheduleProductClass,
    /// PV or notional.
    pub kind: ScheduleKind,
    /// `AmountUSD`.
    pub amount_usd: f64,
    /// `end_date` as days since 1970-01-01.
    pub end_date: i64,
    /// The row's regulations: an index into [`Crif::regulations`].
    pub regulations: u32,
    /// The row's line number (1-based).
    pub row: usize,
}

/// Schedule IM that cannot be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScheduleError {
    /// Two rows of a trade disagree, or repeat a PV or notional (ORE refuses these too).
    #[error("row {row}: trade {trade}: {message}")]
    Trade {
        /// 1-based line number.
        row: usize,
        /// The trade.
        trade: String,
        /// What is wrong.
        message: &'static str,
    },
    /// A regulations field that cannot be read (see [`crate::RegulationError`]).
    #[error("row {row}, column {column}: '{value}' is not a regulation")]
    Unknown {
        /// 1-based line number.
        row: usize,
        /// The column.
        column: &'static str,
        /// The name.
        value: String,
    },
}

/// Schedule IM of a netting set on one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleIm {
    /// The netting set.
    pub netting_set: String,
    /// The winning regulation (`Unspecified` when the regulations are not enforced or none
    /// is given).
    pub regulation: Regulation,
    /// Every regulation whose Schedule IM equals the largest.
    pub tied: Vec<Regulation>,
    /// The gross margin per product class, USD.
    pub product_classes: Vec<(ScheduleProductClass, f64)>,
    /// The gross margin, USD.
    pub gross_im: f64,
    /// The gross replacement cost, USD.
    pub gross_replacement_cost: f64,
    /// The net replacement cost, USD.
    pub net_replacement_cost: f64,
    /// The net-to-gross ratio.
    pub net_to_gross: f64,
    /// Schedule IM, USD.
    pub schedule_im: f64,
}

/// A trade's data under one regulation.
#[derive(Clone)]
struct Trade {
    product_class: ScheduleProductClass,
    end_date: i64,
    pv: Option<f64>,
    notional: Option<f64>,
}

/// Schedule IM of every netting set with schedule rows, for one side, in the order of the
/// netting sets' names. `asof` is the valuation date (days since 1970-01-01) the maturities run
/// from.
///
/// # Errors
/// [`ScheduleError`] for a trade whose rows disagree or repeat, or an unknown regulation name
/// when the regulations are enforced.
pub fn schedule_im(
    crif: &Crif,
    asof: i64,
    side: Side,
    enforce_regulations: bool,
) -> Result<Vec<ScheduleIm>, ScheduleError> {
    let none = Regulations::default();
    let of = |index: u32| {
        crif.regulations
            .get(index as usize)
            .map_or(&none, |(r, _)| r)
    };
    let side_of = |r: &Regulations| match side {
        Side::Collect => r.collect.clone(),
        Side::Post => r.post.clone(),
    };
    // ORE's IMScheduleAnalytic: netting sets naming SEC on this side, on any row.
    let mut has_sec: BTreeSet<&str> = BTreeSet::new();
    let all_rows = crif
        .sensitivities
        .iter()
        .map(|s| (s.netting_set.as_str(), s.regulations))
        .chain(
            crif.add_ons
                .iter()
                .map(|a| (a.netting_set.as_str(), a.regulations)),
        )
        .chain(
            crif.schedule
                .iter()
                .map(|r| (r.netting_set.as_str(), r.regulations)),
        );
    for (set, index) in all_rows {
        if enforce_regulations && side_of(of(index)).contains(&Regulation::Sec) {
            has_sec.insert(set);
        }
    }
    // Whether a netting set's schedule rows name any regulation, on either side.
    let mut named: BTreeMap<&str, bool> = BTreeMap::new();
    for r in &crif.schedule {
        let regs = of(r.regulations);
        if enforce_regulations && let Some((column, value)) = &regs.unknown {
            return Err(ScheduleError::Unknown {
                row: r.row,
                column,
                value: value.clone(),
            });
        }
        *named.entry(r.netting_set.as_str()).or_default() |=
            !regs.collect.is_empty() || !regs.post.is_empty();
    }
    // Trades by netting set, regulation and trade ID (collectTradeData).
    type Trades = BTreeMap<CompactString, Trade>;
    let mut sets: BTreeMap<&str, BTreeMap<Regulation, Trades>> = BTreeMap::new();
    for r in &crif.schedule {
        let mut regs = if enforce_regulations {
            side_of(of(r.regulations))
        } else {
            Vec::new()
        };
        if regs.is_empty() {
            regs.push(Regulation::Unspecified);
        }
        let any_named = named.get(r.netting_set.as_str()).copied().unwrap_or(false);
        let amount = match r.kind {
            ScheduleKind::Notional => r.amount_usd.abs(),
            ScheduleKind::Pv => r.amount_usd,
        };
        for regulation in regs {
            if (regulation == Regulation::Unspecified && enforce_regulations && any_named)
                || regulation == Regulation::Excluded
            {
                continue;
            }
            let trades = sets
                .entry(r.netting_set.as_str())
                .or_default()
                .entry(regulation)
                .or_default();
            let bad = |message| ScheduleError::Trade {
                row: r.row,
                trade: r.trade_id.to_string(),
                message,
            };
            match trades.get_mut(&r.trade_id) {
                Some(trade) => {
                    if trade.product_class != r.product_class {
                        return Err(bad("its product class differs from its other row's"));
                    }
                    if trade.end_date != r.end_date {
                        return Err(bad("its end date differs from its other row's"));
                    }
                    let slot = match r.kind {
                        ScheduleKind::Pv => &mut trade.pv,
                        ScheduleKind::Notional => &mut trade.notional,
                    };
                    if slot.is_some() {
                        return Err(bad("a second PV or Notional row"));
                    }
                    *slot = Some(amount);
                }
                None => {
                    let (pv, notional) = match r.kind {
                        ScheduleKind::Pv => (Some(amount), None),
                        ScheduleKind::Notional => (None, Some(amount)),
                    };
                    trades.insert(
                        r.trade_id.clone(),
                        Trade {
                            product_class: r.product_class,
                            end_date: r.end_date,
                            pv,
                            notional,
                        },
                    );
                }
            }
        }
    }
    let mut results = Vec::new();
    for (name, mut by_regulation) in sets {
        // SEC and CFTC (the calculator's "Processing CRIF regulations").
        let sec_local = by_regulation.contains_key(&Regulation::Sec);
        let cftc_local = by_regulation.contains_key(&Regulation::Cftc);
        let mut erase_unspecified = true;
        if (sec_local && cftc_local) || has_sec.contains(name) {
            if !sec_local && !cftc_local {
                // ORE skips the rest of its loop here, the removal of `Unspecified` included.
                erase_unspecified = false;
            } else if let Some(cftc) = by_regulation.get(&Regulation::Cftc).cloned() {
                let sec = by_regulation.entry(Regulation::Sec).or_default();
                for (id, trade) in cftc {
                    sec.entry(id).or_insert(trade);
                }
            }
        }
        if erase_unspecified
            && by_regulation.len() > 1
            && by_regulation.contains_key(&Regulation::Unspecified)
        {
            by_regulation.remove(&Regulation::Unspecified);
        }
        let mut computed: Vec<(Regulation, ScheduleIm)> = Vec::new();
        for (regulation, trades) in &by_regulation {
            computed.push((
                *regulation,
                of_trades(name, *regulation, trades, asof, side),
            ));
        }
        let winning = computed
            .iter()
            .map(|(_, s)| s.schedule_im)
            .fold(f64::MIN_POSITIVE, |a, b| if b > a { b } else { a });
        let tied: Vec<Regulation> = computed
            .iter()
            .filter(|(_, s)| close_enough(s.schedule_im, winning))
            .map(|(r, _)| *r)
            .collect();
        let Some(&winner) = tied.first() else {
            continue;
        };
        if let Some((_, mut im)) = computed.into_iter().find(|(r, _)| *r == winner) {
            im.tied = tied;
            results.push(im);
        }
    }
    Ok(results)
}

/// Schedule IM of a netting set's trades under one regulation (ORE's `populateResults`).
fn of_trades(
    name: &str,
    regulation: Regulation,
    trades: &BTreeMap<CompactString, Trade>,
    asof: i64,
    side: Side,
) -> ScheduleIm {
    let mut by_class: BTreeMap<ScheduleProductClass, f64> = BTreeMap::new();
    let (mut gross, mut gross_rc, mut pv) = (0.0, 0.0, 0.0);
    for trade in trades.values() {
        // A trade without a notional is left out; one without a PV has PV 0.
        let Some(notional) = trade.notional else {
            continue;
        };
        let present = trade.pv.unwrap_or(0.0);
        let margin = trade
            .product_class
            .rate(year_fraction(asof, trade.end_date))
            * notional;
        *by_class.entry(trade.product_class).or_default() += margin;
        gross += margin;
        gross_rc += match side {
            Side::Collect => present.max(0.0),
            Side::Post => present.min(0.0),
        };
        pv += present;
    }
    let net_rc = match side {
        Side::Collect => pv.max(0.0),
        Side::Post => pv.min(0.0),
    };
    let default = if regulation == Regulation::Banx {
        0.0
    } else {
        1.0
    };
    let ngr = if close_enough(gross_rc, 0.0) {
        default
    } else {
        net_rc / gross_rc
    };
    ScheduleIm {
        netting_set: name.to_string(),
        regulation,
        tied: vec![regulation],
        product_classes: by_class.into_iter().collect(),
        gross_im: gross,
        gross_replacement_cost: gross_rc,
        net_replacement_cost: net_rc,
        net_to_gross: if close_enough(ngr, 0.0) { 0.0 } else { ngr },
        schedule_im: gross * (0.4 + 0.6 * ngr),
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let d = i64::from(day);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_year(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

fn leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Actual/Actual (ISDA) year fraction from `start` to `end`, written as QuantLib's
/// `ActualActual(ISDA)` writes it so that the maturity bands agree with ORE's.
pub fn year_fraction(start: i64, end: i64) -> f64 {
    if start == end {
        return 0.0;
    }
    if start > end {
        return -year_fraction(end, start);
    }
    let (y1, y2) = (civil_year(start), civil_year(end));
    let days_in = |y: i64| if leap(y) { 366.0 } else { 365.0 };
    let mut sum = (y2 - y1 - 1) as f64;
    sum += (days_from_civil(y1 + 1, 1, 1) - start) as f64 / days_in(y1);
    sum += (end - days_from_civil(y2, 1, 1)) as f64 / days_in(y2);
    sum
}

/// Parses a date as `YYYY-MM-DD` or `YYYYMMDD` into days since 1970-01-01.
pub fn parse_date(text: &str) -> Option<i64> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.contains('-') && text.len() != 10 {
        return None;
    }
    let year: i64 = digits[0..4].parse().ok()?;
    let month: u32 = digits[4..6].parse().ok()?;
    let day: u32 = digits[6..8].parse().ok()?;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap(year) => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days_in_month)
        .contains(&day)
        .then(|| days_from_civil(year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_fractions_are_actual_actual_isda() {
        let d = |s| parse_date(s).unwrap();
        // 2024-01-31 to 2026-01-31: 336/366 (2024, leap) + 1 + 30/365.
        let expected = 336.0 / 366.0 + 1.0 + 30.0 / 365.0;
        assert_eq!(year_fraction(d("2024-01-31"), d("2026-01-31")), expected);
        assert_eq!(year_fraction(d("2023-01-01"), d("2024-01-01")), 1.0);
        assert_eq!(year_fraction(d("2024-03-01"), d("2024-03-01")), 0.0);
        assert!(year_fraction(d("2025-01-01"), d("2024-01-01")) < 0.0);
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date("20240229"), Some(d("2024-02-29")));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn the_rates_are_the_schedules() {
        use ScheduleProductClass::*;
        assert_eq!(Credit.rate(1.9), 0.02);
        assert_eq!(Credit.rate(2.0), 0.05);
        assert_eq!(Credit.rate(5.0), 0.10);
        // ORE's bands: a negative maturity is not under 2 years.
        assert_eq!(Rates.rate(-0.1), 0.02);
        assert_eq!(Fx.rate(10.0), 0.06);
        assert_eq!(Other.rate(0.5), 0.15);
    }
}
