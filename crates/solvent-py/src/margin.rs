//! What a venue computes for an account: the margin report, liquidation prices, what-if trades,
//! allocation and stress, for one account or many at one market snapshot. Each call reads its
//! inputs (or takes them read), then computes with the GIL released.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use rayon::prelude::*;
use rust_decimal::Decimal;
use solvent_core::shock::{Shock, read_shocks};
use solvent_risk::allocation::{AllocationPolicy, BufferPolicy};
use solvent_risk::whatif::{Trade, what_if};

use crate::convert::{self, describe, serialize_to_python};
use crate::errors::{self, Kind, raise};
use crate::inputs::{Market, Resolved, Venue};
use crate::report::{MarginReport, WhatIf};
use solvent_risk::account::{Detail, build_report};

/// The named historical days (`solvent stress --scenarios historical`), derived from
/// ../shared/data/prices by scripts/extract_historical_days.py.
const HISTORICAL_DAYS: &str = include_str!("../../../scenarios/historical-days.json");

/// How much of a report to compute: `"full"` (everything, as `solvent margin`) or `"figures"`
/// (equity, requirements, health, state and the positions' figures, without the waterfall's
/// components and the liquidation prices: what a backtest checking margin every step needs).
///
/// # Errors
/// `InputError` naming `detail` for any other word.
pub fn detail(word: &str) -> PyResult<Detail> {
    match word {
        "full" => Ok(Detail::Full),
        "figures" => Ok(Detail::Figures),
        other => Err(raise(
            Kind::Input,
            errors::Problem::at(
                "margin",
                "detail",
                format!("expected \"full\" or \"figures\", found {other:?}"),
            ),
        )),
    }
}

/// The report of one resolved account at `detail`.
fn report(
    venue: &Venue,
    resolved: &Resolved,
    detail: Detail,
) -> PyResult<solvent_risk::report::MarginReport> {
    resolved.with_view(&venue.inner, |view| match detail {
        Detail::Full => solvent_risk::margin_report(&resolved.portfolio, view),
        other => build_report(&resolved.portfolio, view, other),
    })
}

/// `venue.margin(portfolio, market=None, detail="full")`.
pub fn margin(
    py: Python<'_>,
    venue: &Venue,
    portfolio: &Bound<'_, PyAny>,
    market: Option<&Bound<'_, PyAny>>,
    detail: Detail,
    allow_far_marks: bool,
) -> PyResult<MarginReport> {
    let resolved = Resolved::new(venue, portfolio, market, "portfolio", allow_far_marks)?;
    let report = py.detach(|| report(venue, &resolved, detail))?;
    Ok(MarginReport::new(report))
}

/// `venue.margin_many(portfolios, market=None)`: every account at one snapshot (each at its own
/// when `market` is `None`), in parallel.
pub fn margin_many(
    py: Python<'_>,
    venue: &Venue,
    portfolios: &Bound<'_, PyAny>,
    market: Option<&Bound<'_, PyAny>>,
    detail: Detail,
    allow_far_marks: bool,
) -> PyResult<Vec<MarginReport>> {
    // The market is read once and shared (with its surfaces) by every account.
    let market = market
        .map(|market| Market::read(market, "market").and_then(|market| Bound::new(py, market)))
        .transpose()?;
    let mut resolved = Vec::new();
    for (index, portfolio) in portfolios.try_iter()?.enumerate() {
        let origin = format!("portfolios[{index}]");
        let market = market.as_ref().map(Bound::as_any);
        resolved.push(Resolved::new(
            venue,
            &portfolio?,
            market,
            &origin,
            allow_far_marks,
        )?);
    }
    let reports = py.detach(|| {
        resolved
            .par_iter()
            .map(|one| report(venue, one, detail))
            .collect::<PyResult<Vec<_>>>()
    })?;
    Ok(reports.into_iter().map(MarginReport::new).collect())
}

/// `venue.liquidation_price(portfolio, instrument, market=None)`.
pub fn liquidation_price(
    py: Python<'_>,
    venue: &Venue,
    portfolio: &Bound<'_, PyAny>,
    instrument: &str,
    market: Option<&Bound<'_, PyAny>>,
    allow_far_marks: bool,
) -> PyResult<Option<Decimal>> {
    let report = margin(py, venue, portfolio, market, Detail::Full, allow_far_marks)?;
    let position = report
        .inner
        .positions
        .iter()
        .find(|position| position.instrument == instrument)
        .ok_or_else(|| {
            raise(
                Kind::Input,
                errors::Problem::at(
                    "liquidation_price",
                    "instrument",
                    format!("the account holds no position in {instrument:?}"),
                ),
            )
        })?;
    Ok(position.liquidation_price.map(|price| price.value()))
}

/// One trade: `"INSTRUMENT:SIZE[@PRICE][,fee=FEE]"` or a dict with `instrument`, `size` and
/// optional `price` and `fee` (money as str, int or Decimal).
fn trade(value: &Bound<'_, PyAny>, index: usize) -> PyResult<Trade> {
    let origin = format!("trades[{index}]");
    if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_cow()?;
        let text = text.as_ref();
        return Trade::parse(text).map_err(|error| match error {
            solvent_risk::RiskError::InvalidTrade { problem, .. } => {
                let (field, problem) = problem
                    .split_once(": ")
                    .filter(|(field, _)| ["size", "price", "fee"].contains(field))
                    .map_or(("(trade)".to_owned(), problem.clone()), |(field, rest)| {
                        (field.to_owned(), rest.to_owned())
                    });
                raise(Kind::Input, errors::Problem::at(&origin, &field, problem))
            }
            other => errors::internal(other),
        });
    }
    let dict = value.cast::<PyDict>().map_err(|_| {
        raise(
            Kind::Input,
            errors::Problem::at(
                &origin,
                "(trade)",
                format!(
                    "expected \"INSTRUMENT:SIZE[@PRICE][,fee=FEE]\" or a dict, found {}",
                    describe(value)
                ),
            ),
        )
    })?;
    for key in dict.keys() {
        let key: String = key.extract()?;
        if !["instrument", "size", "price", "fee"].contains(&key.as_str()) {
            return Err(raise(
                Kind::Input,
                errors::Problem::at(
                    &origin,
                    &key,
                    "unknown field; expected instrument, size, price, fee",
                ),
            ));
        }
    }
    let field = |name: &str| dict.get_item(name);
    let instrument: String = field("instrument")?
        .ok_or_else(|| {
            raise(
                Kind::Input,
                errors::Problem::at(&origin, "instrument", "missing"),
            )
        })?
        .extract()
        .map_err(|_| {
            raise(
                Kind::Input,
                errors::Problem::at(&origin, "instrument", "expected a str"),
            )
        })?;
    let size = field("size")?
        .ok_or_else(|| raise(Kind::Input, errors::Problem::at(&origin, "size", "missing")))
        .and_then(|size| convert::money(&size, &origin, "size"))?;
    let price = field("price")?
        .filter(|price| !price.is_none())
        .map(|price| convert::money(&price, &origin, "price"))
        .transpose()?;
    let fee = field("fee")?
        .filter(|fee| !fee.is_none())
        .map(|fee| convert::money(&fee, &origin, "fee"))
        .transpose()?;
    // The text form, parsed by the one parser, so a dict is checked exactly as the command's
    // --trade is.
    let mut text = format!("{instrument}:{size}");
    if let Some(price) = price {
        text.push_str(&format!("@{price}"));
    }
    if let Some(fee) = fee {
        text.push_str(&format!(",fee={fee}"));
    }
    let parsed = PyString::new(value.py(), &text);
    trade(parsed.as_any(), index)
}

/// `venue.whatif(portfolio, trades, market=None)`.
pub fn whatif(
    py: Python<'_>,
    venue: &Venue,
    portfolio: &Bound<'_, PyAny>,
    trades: &Bound<'_, PyAny>,
    market: Option<&Bound<'_, PyAny>>,
    allow_far_marks: bool,
) -> PyResult<WhatIf> {
    let trades: Vec<Trade> =
        if trades.is_instance_of::<PyString>() || trades.is_instance_of::<PyDict>() {
            vec![trade(trades, 0)?]
        } else {
            trades
                .try_iter()?
                .enumerate()
                .map(|(index, item)| trade(&item?, index))
                .collect::<PyResult<_>>()?
        };
    if trades.is_empty() {
        return Err(raise(
            Kind::Input,
            errors::Problem::at("whatif", "trades", "at least one trade is needed"),
        ));
    }
    let resolved = Resolved::new(venue, portfolio, market, "portfolio", allow_far_marks)?;
    for (index, trade) in trades.iter().enumerate() {
        solvent_risk::checks::trade_price(
            &venue.inner,
            &resolved.market.market,
            trade,
            &format!("trades[{index}]"),
        )
        .map_err(|refused| errors::refused(&refused))?;
    }
    let outcome = py.detach(|| {
        resolved.with_view(&venue.inner, |view| {
            what_if(&resolved.portfolio, &trades, view)
        })
    })?;
    Ok(WhatIf::new(outcome))
}

/// `venue.allocate(portfolio, market=None, buffer="none", trigger=1.2, target=1.5)`.
pub fn allocate<'py>(
    py: Python<'py>,
    venue: &Venue,
    portfolio: &Bound<'py, PyAny>,
    market: Option<&Bound<'py, PyAny>>,
    policy: (&str, f64, f64),
    allow_far_marks: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let (buffer, trigger, target) = policy;
    let buffer: BufferPolicy = buffer.parse().map_err(|problem: String| {
        raise(
            Kind::Input,
            errors::Problem::at("allocate", "buffer", problem),
        )
    })?;
    let policy = AllocationPolicy::new_checked(buffer, trigger, target).map_err(|error| {
        let field = if error.field == "trigger_health" {
            "trigger"
        } else {
            "target"
        };
        raise(
            Kind::Input,
            errors::Problem::at("allocate", field, error.problem),
        )
    })?;
    let resolved = Resolved::new(venue, portfolio, market, "portfolio", allow_far_marks)?;
    let allocation = py.detach(|| {
        resolved.with_view(&venue.inner, |view| {
            solvent_risk::allocation::allocate(&resolved.portfolio, view, policy)
        })
    })?;
    serialize_to_python(py, &allocation)
}

/// The shocks `scenarios` names: `"grid"`, `"historical"`, a path to a SCENARIOS.json file, or a
/// dict / list in that file's shape.
fn shocks(
    scenarios: &Bound<'_, PyAny>,
    portfolio: &solvent_core::portfolio::Portfolio,
) -> PyResult<Vec<Shock>> {
    let read = |origin: &str, text: &str| read_shocks(origin, text).map_err(|e| errors::input(&e));
    if let Ok(name) = scenarios.cast::<PyString>() {
        match name.to_cow()?.as_ref() {
            "grid" => return Ok(solvent_risk::stress::grid(portfolio)),
            "historical" => {
                return read("scenarios/historical-days.json (built in)", HISTORICAL_DAYS);
            }
            _ => {}
        }
    }
    if scenarios.is_instance_of::<PyList>() {
        let wrapped = PyDict::new(scenarios.py());
        wrapped.set_item("scenarios", scenarios)?;
        let text = convert::to_json_text(wrapped.as_any(), "scenarios")?;
        return read("scenarios", &text);
    }
    let source = convert::source(scenarios, "scenarios")?;
    let (origin, text) = convert::text_of(source, "scenarios")?;
    read(&origin, &text)
}

/// `venue.stress(portfolio, market=None, scenarios="grid", reverse=False)`: the dict
/// `solvent stress --json` prints.
pub fn stress<'py>(
    py: Python<'py>,
    venue: &Venue,
    portfolio: &Bound<'py, PyAny>,
    market: Option<&Bound<'py, PyAny>>,
    (scenarios, reverse): (&Bound<'py, PyAny>, bool),
    allow_far_marks: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let resolved = Resolved::new(venue, portfolio, market, "portfolio", allow_far_marks)?;
    let shocks = shocks(scenarios, &resolved.portfolio)?;
    let value = py.detach(|| {
        resolved.with_view(&venue.inner, |view| {
            let portfolio = &resolved.portfolio;
            let base = solvent_risk::stress::shocked_report(
                portfolio,
                view,
                &Shock::joint("base", &[], 0.0),
            )?;
            let rows = solvent_risk::stress::run(portfolio, view, &base, &shocks)?;
            let reverse = if reverse {
                Some(solvent_risk::stress::reverse(portfolio, view)?)
            } else {
                None
            };
            Ok((base, rows, reverse))
        })
    })?;
    let (base, rows, reverse) = value;
    let value = serde_json::to_value(solvent_risk::stress::StressAnswer::new(
        &base,
        &rows,
        reverse.as_deref(),
    ))
    .map_err(crate::errors::internal)?;
    convert::to_python(py, &value, None)
}
