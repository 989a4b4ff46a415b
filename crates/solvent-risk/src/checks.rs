//! Sanity checks on an account's inputs, before any figure is computed: values that parse but
//! cannot be meant (an inverse option's premium of a coin or more, a mark far from its index)
//! are refused naming where they came from and the field, and every default the computation
//! would fill in silently (a missing mark, a leverage the rule ignores, a coin a scenario does
//! not move) is named as a warning. The command line, the service and the Python package run
//! the same checks; each names its own way of accepting a far mark.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;
use rust_decimal::Decimal;
use solvent_core::instrument::{Instrument, InstrumentKind, OptionRight, Style, Terms};
use solvent_core::market::Market;
use solvent_core::portfolio::{MarginMode, Portfolio};
use solvent_core::shock::Shock;
use solvent_core::text::{fixed, float, grouped};
use solvent_core::venue::{MarginRule, Venue};

use crate::whatif::Trade;

/// How far a perpetual's or future's mark may sit from its index, as a fraction of the index,
/// before it is refused (or, when the caller allows far marks, accepted with a warning). No
/// shipped venue file gives a mark band, so this is Solvent's: 20% is far beyond any
/// perpetual's premium and any listed future's basis (a few percent), and close enough to catch
/// a mark typed ten times too large or small, or in the wrong unit.
pub const DEFAULT_MARK_BAND: Decimal = Decimal::from_parts(2, 0, 0, false, 1);

/// An input value that cannot be meant, refused before anything is computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InputRefused {
    /// Where the value came from: a file, `portfolio`, `market`, or a trade as written.
    pub origin: String,
    /// The field inside it (`market.mark.BTC-PERPETUAL`, `positions[1].entry_price`); empty
    /// when the origin is the value itself (a trade).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for InputRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.origin, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.field, self.problem)
        }
    }
}

/// What the checks accept with a warning: each line names where the value came from and its
/// field (`ORIGIN: FIELD: what was filled in or accepted`).
pub type Warnings = Vec<String>;

/// Where the checked inputs came from, to name them in messages.
#[derive(Clone, Copy, Debug)]
pub struct Origins<'a> {
    /// The portfolio's origin (a file path, or `portfolio`).
    pub portfolio: &'a str,
    /// The market's origin (a file path, `market`, or the portfolio's file when the market is
    /// inside it).
    pub market: &'a str,
    /// What the market's fields are prefixed with inside its origin: `market.` when the market
    /// sits inside the portfolio's file, empty otherwise.
    pub market_field: &'a str,
}

/// Whether marks beyond [`DEFAULT_MARK_BAND`] (or above what an option can be worth) are
/// refused or valued with a warning, and how the caller says "allow them" (a flag, a request
/// field, a keyword argument), so that a refusal can name it.
#[derive(Clone, Copy, Debug)]
pub struct FarMarks<'a> {
    /// Value far marks with a warning instead of refusing them.
    pub allowed: bool,
    /// The caller's switch that allows them (`--allow-far-marks`, `"allow_far_marks": true`).
    pub switch: &'a str,
}

/// Checks the portfolio and market against each other and the venue.
///
/// # Errors
/// The first value that cannot be meant: an inverse option's premium (mark or entry price) no
/// such option can be worth; a market giving a held underlying's index only under a misspelt
/// name; a mark beyond [`DEFAULT_MARK_BAND`] of its index, or an option's mark above the most
/// the option can be worth, unless far marks are allowed.
pub fn inputs(
    venue: &Venue,
    portfolio: &Portfolio,
    market: &Market,
    origins: Origins<'_>,
    far_marks: FarMarks<'_>,
) -> Result<Warnings, InputRefused> {
    let mut warnings = positions(portfolio, market, origins)?;
    warnings.extend(marks(venue, portfolio, market, origins, far_marks)?);
    Ok(warnings)
}

/// The portfolio's half of [`inputs`]: each position's entry price (an inverse option's
/// premium no such option can be worth is refused) and leverage (named when the rule ignores
/// it). For a portfolio checked against a market that was checked before (a service's live
/// market).
///
/// # Errors
/// An inverse option's entry price no such option can be worth.
pub fn positions(
    portfolio: &Portfolio,
    market: &Market,
    origins: Origins<'_>,
) -> Result<Warnings, InputRefused> {
    let mut warnings = Vec::new();
    // Names are written only for what is reported: an account may hold 100,000 positions.
    for (index, position) in portfolio.positions.iter().enumerate() {
        check_premium(&position.instrument, position.entry_price.value(), market).map_err(
            |problem| InputRefused {
                origin: origins.portfolio.to_owned(),
                field: format!("positions[{index}].entry_price"),
                problem,
            },
        )?;
        if let Some(leverage) = position.leverage
            && let Some(why) = ignored_leverage(portfolio.mode, &position.instrument)
        {
            warnings.push(format!(
                "{}: positions[{index}].leverage: {}x is ignored: {why}",
                origins.portfolio,
                leverage.normalize()
            ));
        }
    }
    Ok(warnings)
}

/// The market's half of [`inputs`]: a held underlying's index given under a misspelt name,
/// marks that cannot be meant, and marks missing for held positions (named with what stands in
/// for them).
///
/// # Errors
/// As [`inputs`], for the market's values.
pub fn marks(
    venue: &Venue,
    portfolio: &Portfolio,
    market: &Market,
    origins: Origins<'_>,
    far_marks: FarMarks<'_>,
) -> Result<Warnings, InputRefused> {
    let mut warnings = Vec::new();
    misspelt_index(portfolio, market, origins)?;
    // A held instrument's mark is checked against the instrument the portfolio resolved from
    // this venue: parsing each of 10,000 option names again was a third of reading an account.
    let held: HashMap<&str, &Arc<Instrument>> = portfolio
        .positions
        .iter()
        .map(|position| (position.instrument.name.as_str(), &position.instrument))
        .collect();
    // Each mark is checked alone (on every core for a large snapshot); the first refusal and
    // the warnings come in the market's order.
    let marks: Vec<_> = market.mark.iter().collect();
    let checked: Vec<Result<Option<String>, InputRefused>> = marks
        .par_iter()
        .with_min_len(MARKS_PER_TASK)
        .map(|&(name, mark)| {
            // A snapshot may quote instruments of other venues: a name this venue does not know
            // is left alone here (a misspelt held one is named where its mark is found missing).
            let instrument = match held.get(name.as_str()) {
                Some(instrument) => Arc::clone(instrument),
                None => match venue.instrument(name) {
                    Ok(instrument) => instrument,
                    Err(_) => return Ok(None),
                },
            };
            let field = || format!("{}mark.{name}", origins.market_field);
            let refused = |problem: String| InputRefused {
                origin: origins.market.to_owned(),
                field: field(),
                problem,
            };
            check_premium(&instrument, mark.value(), market).map_err(refused)?;
            let Some(problem) = far_mark(&instrument, mark.value(), market) else {
                return Ok(None);
            };
            if !far_marks.allowed {
                return Err(refused(format!(
                    "{problem}; check the mark, or pass {} to value it anyway",
                    far_marks.switch
                )));
            }
            Ok(Some(format!(
                "{}: {}: {problem}; valued anyway ({})",
                origins.market,
                field(),
                far_marks.switch
            )))
        })
        .collect();
    for checked in checked {
        warnings.extend(checked?);
    }
    warnings.extend(missing_marks(venue, portfolio, market, origins));
    Ok(warnings)
}

/// Marks [`marks`] checks per task on every core: a mark's checks take about a microsecond
/// (an option name the portfolio does not hold is parsed), so a snapshot of a few hundred stays
/// on one thread.
const MARKS_PER_TASK: usize = 256;

/// Refuses a market without the index of a held underlying when it gives one under a name that
/// looks misspelt (`btc` or `BCT` for `BTC`): the valuation would refuse it anyway, without the
/// hint. A missing index with no look-alike is left to the valuation, which says what needed it.
fn misspelt_index(
    portfolio: &Portfolio,
    market: &Market,
    origins: Origins<'_>,
) -> Result<(), InputRefused> {
    for underlying in crate::stress::underlyings(portfolio) {
        if market.index.contains_key(&underlying) {
            continue;
        }
        if let Some(found) =
            solvent_core::names::closest(&underlying, market.index.keys().map(String::as_str))
        {
            return Err(InputRefused {
                origin: origins.market.to_owned(),
                field: format!("{}index.{underlying}", origins.market_field),
                problem: format!(
                    "missing (the market gives `{found}`: did you mean {underlying}?)"
                ),
            });
        }
    }
    Ok(())
}

/// Refuses a what-if trade at an inverse option premium no such option can be worth (the price
/// is in coin, as the mark is). `origin` names the trade as the caller wrote it.
///
/// # Errors
/// The trade, named by `origin`, and the problem.
pub fn trade_price(
    venue: &Venue,
    market: &Market,
    trade: &Trade,
    origin: &str,
) -> Result<(), InputRefused> {
    match (trade.price, venue.instrument(&trade.instrument)) {
        (Some(price), Ok(instrument)) => {
            check_premium(&instrument, price, market).map_err(|problem| InputRefused {
                origin: origin.to_owned(),
                field: String::new(),
                problem,
            })
        }
        // An unknown instrument is refused by the what-if itself, naming it.
        _ => Ok(()),
    }
}

/// Refuses an inverse option's premium (in coin) that no such option can be worth, the mark of
/// a USD premium (or a typo) that would be valued thousands of times too high: a call pays at
/// most one coin per unit (`(S - K) / S`), so one coin or more is refused; a put pays at most
/// `K / S` coins, more than one when deep in the money, so its bound is the larger of one coin
/// and the strike over the index (one coin when the market gives no index).
fn check_premium(instrument: &Instrument, premium: Decimal, market: &Market) -> Result<(), String> {
    let Terms::Option { strike, right, .. } = &instrument.terms else {
        return Ok(());
    };
    if instrument.style != Style::Inverse {
        return Ok(());
    }
    let bound = match right {
        OptionRight::Call => Decimal::ONE,
        OptionRight::Put => market
            .index
            .get(&instrument.underlying)
            .and_then(|index| strike.value().checked_div(index.value()))
            .unwrap_or(Decimal::ONE)
            .max(Decimal::ONE),
    };
    if premium >= bound {
        let why = match right {
            OptionRight::Call => {
                format!("a call on one {} pays at most one", instrument.underlying)
            }
            OptionRight::Put => format!(
                "a put on one {} pays at most its strike over the index, or one when that is less",
                instrument.underlying
            ),
        };
        return Err(format!(
            "{} is not a premium of {}: an inverse option's premium is in {coin} and \
             below {} {coin} ({why}); a premium in USD must be divided by the {underlying} index",
            premium.normalize(),
            instrument.name,
            bound.round_dp(8).normalize(),
            coin = instrument.settlement,
            underlying = instrument.underlying,
        ));
    }
    Ok(())
}

/// Why a position's leverage changes nothing, if it does not: only tiered rules take initial
/// margin from leverage, and portfolio margin takes it from scenarios.
fn ignored_leverage(mode: MarginMode, instrument: &Instrument) -> Option<String> {
    if mode == MarginMode::Portfolio {
        return Some("portfolio margin takes the requirement from its scenarios".to_owned());
    }
    match instrument.margin.as_ref() {
        MarginRule::Tiered { .. } | MarginRule::TieredBy { .. } => None,
        rule => Some(format!(
            "{}'s margin rule `{}` does not depend on leverage (only tiered rules do)",
            instrument.name,
            rule.name()
        )),
    }
}

/// What is wrong with a mark far from its index, if it is: a perpetual's or future's beyond
/// [`DEFAULT_MARK_BAND`], an option's above the most it can be worth (a call its underlying, a
/// put its strike). `None` when the index is missing (refused where it is needed).
fn far_mark(instrument: &Instrument, mark: Decimal, market: &Market) -> Option<String> {
    let index = market.index.get(&instrument.underlying)?.value();
    if index.is_zero() {
        return None;
    }
    let underlying = &instrument.underlying;
    match &instrument.terms {
        Terms::Perpetual | Terms::Future { .. } => {
            let distance = (mark - index).abs() / index;
            (distance > DEFAULT_MARK_BAND).then(|| {
                format!(
                    "{} is {}% from the {underlying} index {}, beyond the {}% mark band",
                    fixed(mark, 2),
                    float(
                        rust_decimal::prelude::ToPrimitive::to_f64(
                            &(distance * Decimal::ONE_HUNDRED)
                        )
                        .unwrap_or(f64::NAN),
                        1
                    ),
                    fixed(index, 2),
                    (DEFAULT_MARK_BAND * Decimal::ONE_HUNDRED).normalize()
                )
            })
        }
        Terms::Option { strike, right, .. } => {
            // The premium in USD: an inverse option's mark is in coin.
            let usd = match instrument.style {
                Style::Inverse => mark * index,
                Style::Linear => mark,
            };
            let (bound, what) = match right {
                OptionRight::Call => (index, format!("the {underlying} index")),
                OptionRight::Put => (strike.value(), "the strike".to_owned()),
            };
            (usd > bound).then(|| {
                format!(
                    "a premium of {} USD is above {what} ({} USD), the most the option can be worth",
                    fixed(usd, 2),
                    fixed(bound, 2)
                )
            })
        }
    }
}

/// Missing marks named one by one: beyond this many, the others (none of them a likely
/// misspelling, each of which is always named) are counted in one line. An account of thousands
/// of options priced from their surface printed a line for each.
const NAMED_MISSING_MARKS: usize = 5;

/// The marks the market does not give for held positions, each with what stands in for it, and
/// the market's mark of an unknown instrument it may be misspelt as; past
/// [`NAMED_MISSING_MARKS`], the rest counted by what stands in for them.
fn missing_marks(
    venue: &Venue,
    portfolio: &Portfolio,
    market: &Market,
    origins: Origins<'_>,
) -> Warnings {
    // The market's names the venue does not list, resolved only when a held position lacks a
    // mark (each costs a parse: a market of thousands of option marks, every one held, needs
    // none of them).
    let any_missing = portfolio
        .positions
        .iter()
        .any(|position| !market.mark.contains_key(&position.instrument.name));
    let unknown: Vec<&str> = if any_missing {
        market
            .mark
            .keys()
            .filter(|name| venue.instrument(name).is_err())
            .map(String::as_str)
            .collect()
    } else {
        Vec::new()
    };
    let mut warnings = Vec::new();
    // Missing marks not named, by what stands in: (options, perpetuals and futures).
    let mut unnamed = (0_usize, 0_usize);
    let mut plain_named = 0;
    for position in &portfolio.positions {
        let instrument = &position.instrument;
        if market.mark.contains_key(&instrument.name) {
            continue;
        }
        // Without an index the valuation is refused, naming what is missing.
        let Some(index) = market.index.get(&instrument.underlying) else {
            continue;
        };
        let stand_in = match instrument.terms.kind() {
            InstrumentKind::Option => format!(
                "priced from the {} volatility surface",
                instrument.underlying
            ),
            InstrumentKind::Perpetual | InstrumentKind::Future => format!(
                "the {} index {} stands in for it",
                instrument.underlying,
                fixed(index.value(), 2)
            ),
        };
        let misspelt = solvent_core::names::closest(&instrument.name, unknown.iter().copied())
            .map(|quoted| {
                format!(" (the market marks `{quoted}`, which the venue does not list: misspelt?)")
            })
            .unwrap_or_default();
        if misspelt.is_empty() {
            if plain_named == NAMED_MISSING_MARKS {
                match instrument.terms.kind() {
                    InstrumentKind::Option => unnamed.0 += 1,
                    InstrumentKind::Perpetual | InstrumentKind::Future => unnamed.1 += 1,
                }
                continue;
            }
            plain_named += 1;
        }
        warnings.push(format!(
            "{}: {}mark.{}: missing; {stand_in}{misspelt}",
            origins.market, origins.market_field, instrument.name
        ));
    }
    let (options, linear) = unnamed;
    if options + linear > 0 {
        let count = |n: usize| grouped(&n.to_string());
        let mut kinds = Vec::new();
        if options > 0 {
            kinds.push(format!(
                "{} option{} priced from {} volatility surface",
                count(options),
                if options == 1 { "" } else { "s" },
                if options == 1 { "its" } else { "their" }
            ));
        }
        if linear > 0 {
            kinds.push(format!(
                "{} perpetual{} or future{} at {} index",
                count(linear),
                if linear == 1 { "" } else { "s" },
                if linear == 1 { "" } else { "s" },
                if linear == 1 { "its" } else { "their" }
            ));
        }
        warnings.push(format!(
            "{}: {}mark: {} more held instrument{} missing: {}",
            origins.market,
            origins.market_field,
            count(options + linear),
            if options + linear == 1 { "" } else { "s" },
            kinds.join(", ")
        ));
    }
    warnings
}

/// Each held underlying a scenario does not move (left at its index, which a file's author
/// may not mean: a historical day without data for the coin), one warning per underlying, with
/// the name a scenario moves instead when it looks like a misspelling of it.
#[must_use]
pub fn unmoved(origin: &str, shocks: &[Shock], underlyings: &[String]) -> Warnings {
    underlyings
        .iter()
        .filter_map(|underlying| {
            let unmoving: Vec<&Shock> = shocks
                .iter()
                .filter(|shock| !shock.price_moves.contains_key(underlying))
                .collect();
            if unmoving.is_empty() {
                return None;
            }
            let names: Vec<&str> = unmoving.iter().map(|shock| shock.name.as_str()).collect();
            let misspelt = unmoving
                .iter()
                .flat_map(|shock| shock.price_moves.keys())
                .filter(|moved| !underlyings.contains(moved))
                .find(|moved| {
                    solvent_core::names::closest(moved, [underlying.as_str()]).is_some()
                })
                .map(|moved| format!(" (it moves {moved}: did you mean {underlying}?)"))
                .unwrap_or_default();
            Some(format!(
                "{origin}: {underlying} is held but not moved by {}: it stays at its index there{misspelt}",
                names.join(", ")
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmoved_coin_is_named_with_the_misspelling_that_left_it() {
        let shock = Shock {
            name: "crash".to_owned(),
            price_moves: [("ETHH".to_owned(), -0.3), ("BTC".to_owned(), -0.2)]
                .into_iter()
                .collect(),
            vol_changes: Default::default(),
        };
        let held = ["BTC".to_owned(), "ETH".to_owned()];
        assert_eq!(
            unmoved("s.json", &[shock], &held),
            [
                "s.json: ETH is held but not moved by crash: it stays at its index there (it moves ETHH: did you mean ETH?)"
            ]
        );
    }
}
