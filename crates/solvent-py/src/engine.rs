//! The engine for event-driven backtests: apply events (dicts in `EVENTS.jsonl`'s shape, or its
//! lines), get the effects back as dicts or as columns for pandas.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use solvent_engine::Engine as CoreEngine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{Effect, EffectLine};
use solvent_engine::event::{Envelope, Event, parse_line};
use solvent_risk::MarketView;

use crate::convert::{self, describe, serialize_to_python};
use crate::errors::{self, Kind, Problem, raise};
use crate::inputs::Venue;
use crate::report::MarginReport;

/// The deterministic state machine (DESIGN.md 9): accounts, ledger, monitoring, liquidation,
/// insurance fund and ADL. The same events in the same order give the same effects and state
/// hash as `solvent replay`.
#[pyclass(unsendable, module = "solvent._solvent")]
pub struct Engine {
    inner: CoreEngine,
}

/// Reads one event: a JSON line, or a dict with `seq` (the next number when absent), `ts`,
/// `type` and the type's fields.
fn envelope(engine: &CoreEngine, value: &Bound<'_, PyAny>, index: usize) -> PyResult<Envelope> {
    let origin = format!("events[{index}]");
    if let Ok(line) = value.cast::<PyString>() {
        return parse_line(&origin, 1, line.to_cow()?.as_ref()).map_err(|e| errors::input(&e));
    }
    if !value.is_instance_of::<PyDict>() {
        return Err(raise(
            Kind::Input,
            Problem::at(
                &origin,
                "(top level)",
                format!("expected a dict or a JSON line, found {}", describe(value)),
            ),
        ));
    }
    let fail =
        |field: &str, problem: String| raise(Kind::Input, Problem::at(&origin, field, problem));
    let serde_json::Value::Object(mut object) = convert::to_json(value, &origin)? else {
        return Err(fail("(top level)", "an event is a dict".to_owned()));
    };
    let seq = match object.remove("seq") {
        None => engine.last_seq().map_or(1, |last| last + 1),
        Some(seq) => seq.as_u64().ok_or_else(|| {
            fail(
                "seq",
                format!("must be a non-negative integer, found {seq}"),
            )
        })?,
    };
    let ts = object
        .remove("ts")
        .ok_or_else(|| fail("ts", "missing".to_owned()))?;
    let ts = ts
        .as_str()
        .and_then(|text| text.parse::<jiff::Timestamp>().ok())
        .ok_or_else(|| fail("ts", format!("expected an RFC 3339 instant, found {ts}")))?;
    let event = Event::from_json_object(object).map_err(|(field, problem)| {
        errors::input(&solvent_core::InputError::new(&origin, field, problem))
    })?;
    Ok(Envelope { seq, ts, event })
}

/// The engine's configuration: the defaults with `overrides` (a dict in the shape of
/// `EngineConfig`'s JSON, e.g. `{"liquidation": {"fee_rate": "0.01"}}`) laid over them. A field
/// whose default is a decimal takes a `str`, `int` or `Decimal`, never a float.
fn config(overrides: Option<&Bound<'_, PyAny>>) -> PyResult<EngineConfig> {
    let Some(overrides) = overrides else {
        return Ok(EngineConfig::default());
    };
    let mut merged = serde_json::to_value(EngineConfig::default()).map_err(errors::internal)?;
    let given = convert::to_json(overrides, "config")?;
    overlay(&mut merged, given, &mut String::new())?;
    let text = merged.to_string();
    solvent_core::error::from_json_str::<EngineConfig>("config", &text)
        .map_err(|e| errors::input(&e))
}

/// Lays `given` over `base`: objects field by field (a struct's unknown field refused; an empty
/// default object is a map and takes any key), a decimal (a string by default) never from a
/// float.
fn overlay(
    base: &mut serde_json::Value,
    given: serde_json::Value,
    path: &mut String,
) -> PyResult<()> {
    use serde_json::Value;
    let fail = |kind: Kind, path: &str, problem: String| {
        raise(
            kind,
            Problem::at(
                "config",
                if path.is_empty() { "(top level)" } else { path },
                problem,
            ),
        )
    };
    match (base, given) {
        (Value::Object(base), Value::Object(given)) => {
            let is_map = base.is_empty();
            for (key, value) in given {
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                match base.get_mut(&key) {
                    Some(slot) => overlay(slot, value, path)?,
                    None if is_map => {
                        if value.is_f64() {
                            return Err(fail(
                                Kind::MoneyAsFloat,
                                path,
                                "a decimal must not be a float: pass a str, int or decimal.Decimal"
                                    .to_owned(),
                            ));
                        }
                        base.insert(key, value);
                    }
                    None => {
                        let known: Vec<&str> = base.keys().map(String::as_str).collect();
                        return Err(fail(
                            Kind::Input,
                            path,
                            format!("unknown field; expected one of {}", known.join(", ")),
                        ));
                    }
                }
                path.truncate(length);
            }
            Ok(())
        }
        (Value::String(_), Value::Number(number)) if number.is_f64() => Err(fail(
            Kind::MoneyAsFloat,
            path,
            format!(
                "a decimal must not be a float: pass a str, int or decimal.Decimal (got {number})"
            ),
        )),
        (slot, value) => {
            *slot = value;
            Ok(())
        }
    }
}

impl Engine {
    fn apply_one(
        &mut self,
        value: &Bound<'_, PyAny>,
        index: usize,
    ) -> PyResult<(u64, Vec<Effect>)> {
        let envelope = envelope(&self.inner, value, index)?;
        Ok((envelope.seq, self.inner.apply(&envelope)))
    }
}

/// The effects as a dict of equal-length lists, one per field seen (`None` where an effect has
/// no such field), in order of first appearance: `pandas.DataFrame(columns)`.
fn columns<'py>(py: Python<'py>, rows: &[Bound<'py, PyAny>]) -> PyResult<Bound<'py, PyDict>> {
    let table = PyDict::new(py);
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        let row = row.cast::<PyDict>()?;
        for key in row.keys() {
            let key: String = key.extract()?;
            if !names.contains(&key) {
                names.push(key);
            }
        }
    }
    for name in &names {
        let column = PyList::empty(py);
        for row in rows {
            let row = row.cast::<PyDict>()?;
            column.append(
                row.get_item(name)?
                    .unwrap_or_else(|| py.None().into_bound(py)),
            )?;
        }
        table.set_item(name, column)?;
    }
    Ok(table)
}

#[pymethods]
impl Engine {
    /// An engine with no accounts and no prices, under `venue`, configured by the defaults with
    /// `config` laid over them (`{"liquidation": {...}, "guards": {...}}`, as `EngineConfig`).
    #[new]
    #[pyo3(signature = (venue, config = None))]
    fn new(venue: &Venue, config: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Self {
            inner: CoreEngine::new((*venue.inner).clone(), self::config(config)?),
        })
    }

    /// The configuration in force, as a dict (decimals as `decimal.Decimal`).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_python(py, self.inner.config())
    }

    /// Applies one event (a dict or a JSON line) and returns its effects as dicts, each with
    /// the event's `seq` (money as `decimal.Decimal`). A refused event gives one `rejected`
    /// effect and changes nothing; an unreadable one raises `InputError`.
    fn apply<'py>(
        &mut self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (seq, effects) = self.apply_one(event, 0)?;
        let list = PyList::empty(py);
        for effect in effects {
            list.append(serialize_to_python(py, &EffectLine { seq, effect })?)?;
        }
        Ok(list)
    }

    /// Applies every event of `events` (an iterable of dicts or JSON lines, or the path of an
    /// `EVENTS.jsonl` file) in order. Returns the effects as a list of dicts, or with
    /// `columns=True` as a dict of lists for `pandas.DataFrame`.
    #[pyo3(signature = (events, columns = false))]
    fn apply_many<'py>(
        &mut self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
        columns: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut rows = Vec::new();
        // A str is a path here (one JSON line goes to `apply`); so is an `os.PathLike`.
        if events.is_instance_of::<PyString>() || events.hasattr("__fspath__")? {
            let path: std::path::PathBuf = events.extract()?;
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|error| {
                raise(
                    Kind::Input,
                    Problem {
                        origin: Some(origin.clone()),
                        field: None,
                        problem: format!("cannot read the file: {error}"),
                        index: None,
                    },
                )
            })?;
            for (number, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let envelope =
                    parse_line(&origin, number + 1, line).map_err(|e| errors::input(&e))?;
                for effect in self.inner.apply(&envelope) {
                    rows.push(serialize_to_python(
                        py,
                        &EffectLine {
                            seq: envelope.seq,
                            effect,
                        },
                    )?);
                }
            }
        } else {
            for (index, event) in events.try_iter()?.enumerate() {
                let (seq, effects) = self.apply_one(&event?, index)?;
                for effect in effects {
                    rows.push(serialize_to_python(py, &EffectLine { seq, effect })?);
                }
            }
        }
        if columns {
            Ok(self::columns(py, &rows)?.into_any())
        } else {
            Ok(PyList::new(py, rows)?.into_any())
        }
    }

    /// The margin report of `account` at the engine's market (as the engine sees the account:
    /// balances from the ledger, isolated margins, chosen leverage).
    fn margin(&self, account: &str) -> PyResult<MarginReport> {
        let portfolio = self.inner.portfolio(account).ok_or_else(|| {
            raise(
                Kind::Input,
                Problem::at("engine", "account", format!("no account {account:?}")),
            )
        })?;
        let engine = &self.inner;
        let report = MarketView::new(engine.venue(), engine.market())
            .and_then(|view| solvent_risk::margin_report(&portfolio, &view))
            .map_err(|error| errors::risk(&error, "engine", ("engine market", "")))?;
        Ok(MarginReport::new(report))
    }

    /// Every ledger balance: account -> asset -> `Decimal`, with the system accounts
    /// (`insurance_fund`, `fees`, `external`, ...).
    fn balances<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut table: BTreeMap<String, BTreeMap<String, rust_decimal::Decimal>> = BTreeMap::new();
        for (account, asset, amount) in self.inner.ledger().balances() {
            table
                .entry(account.to_string())
                .or_default()
                .insert(asset.to_owned(), amount.normalize());
        }
        let dict = PyDict::new(py);
        for (account, assets) in table {
            let inner = PyDict::new(py);
            for (asset, amount) in assets {
                inner.set_item(asset, amount)?;
            }
            dict.set_item(account, inner)?;
        }
        Ok(dict)
    }

    /// The whole-state hash (64 hex digits), as `solvent replay --json` reports it.
    fn state_hash(&self) -> String {
        self.inner.state_hash()
    }

    /// The ids of the accounts the engine holds.
    fn accounts(&self) -> Vec<String> {
        self.inner
            .accounts()
            .iter()
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// Events applied (accepted or refused).
    #[getter]
    fn events(&self) -> u64 {
        self.inner.events()
    }

    /// The sequence number of the last accepted event, `None` before any.
    #[getter]
    fn last_seq(&self) -> Option<u64> {
        self.inner.last_seq()
    }

    /// The engine's time: the timestamp of the last accepted event (RFC 3339).
    #[getter]
    fn now(&self) -> String {
        self.inner.now().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(venue={:?}, events={}, last_seq={:?})",
            self.inner.venue().name,
            self.inner.events(),
            self.inner.last_seq()
        )
    }
}
