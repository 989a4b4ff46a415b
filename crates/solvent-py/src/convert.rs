//! Values across the border: Python objects into the JSON the core reads (so a dict is read by
//! exactly the code that reads a file), and the core's JSON back into Python objects, with every
//! money figure a `decimal.Decimal`.
//!
//! Money never crosses as a binary float. Going in, a `decimal.Decimal` becomes its exact
//! decimal text and a Python `float` stays a JSON float, which the core refuses wherever it reads
//! money (naming the field) and accepts where the file format has a float (volatilities, rates,
//! leverage). Coming out, decimal text becomes a `Decimal`.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use rust_decimal::Decimal;
use serde_json::{Number, Value};

use crate::errors::{self, Kind, Problem, raise};

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The `decimal.Decimal` class.
pub fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

/// Whether `value` is a `decimal.Decimal`.
pub fn is_decimal(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value.is_instance(decimal_type(value.py())?)
}

/// Deepest nesting read from Python: deeper input is refused, not followed to a stack overflow.
const MAX_DEPTH: usize = 64;

/// The JSON text of a Python object, in the dicts' own key order (the order of a portfolio's
/// collateral is the order of its report's components), refusing what JSON cannot say (a
/// non-finite number, a key that is not a string). `origin` and the path name the place in
/// messages.
///
/// # Errors
/// `InputError` naming the path of the first value that has no JSON form.
pub fn to_json_text(value: &Bound<'_, PyAny>, origin: &str) -> PyResult<String> {
    let mut out = String::new();
    let mut path = String::new();
    write_json(value, origin, &mut path, 0, &mut out)?;
    Ok(out)
}

/// [`to_json_text`] read back as a JSON value (for readers that take one).
///
/// # Errors
/// As [`to_json_text`].
pub fn to_json(value: &Bound<'_, PyAny>, origin: &str) -> PyResult<Value> {
    let text = to_json_text(value, origin)?;
    serde_json::from_str(&text).map_err(errors::internal)
}

fn refuse(origin: &str, path: &str, problem: String) -> PyErr {
    let field = if path.is_empty() { "(top level)" } else { path };
    raise(Kind::Input, Problem::at(origin, field, problem))
}

/// Appends `text` as a JSON string.
fn write_string(text: &str, out: &mut String) -> PyResult<()> {
    out.push_str(&serde_json::to_string(text).map_err(errors::internal)?);
    Ok(())
}

fn write_json(
    value: &Bound<'_, PyAny>,
    origin: &str,
    path: &mut String,
    depth: usize,
    out: &mut String,
) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(refuse(
            origin,
            path,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if value.is_none() {
        out.push_str("null");
    } else if let Ok(text) = value.cast::<PyString>() {
        write_string(text.to_cow()?.as_ref(), out)?;
    } else if value.is_instance_of::<PyBool>() {
        out.push_str(if value.extract::<bool>()? {
            "true"
        } else {
            "false"
        });
    } else if value.is_instance_of::<PyInt>() {
        // Python's digits: exact at any size (the core bounds what it accepts).
        out.push_str(value.str()?.to_cow()?.as_ref());
    } else if value.is_instance_of::<PyFloat>() {
        let number = value.extract::<f64>()?;
        let number = Number::from_f64(number)
            .ok_or_else(|| refuse(origin, path, format!("must be finite, got {number}")))?;
        out.push_str(&number.to_string());
    } else if is_decimal(value)? {
        let text = decimal_text(value).map_err(|problem| refuse(origin, path, problem))?;
        write_string(&text, out)?;
    } else if let Ok(dict) = value.cast::<PyDict>() {
        out.push('{');
        for (index, (key, item)) in dict.iter().enumerate() {
            let key = key.cast::<PyString>().map_err(|_| {
                refuse(
                    origin,
                    path,
                    format!("keys must be strings, found {}", describe(&key)),
                )
            })?;
            let key = key.to_cow()?;
            if index > 0 {
                out.push(',');
            }
            write_string(&key, out)?;
            out.push(':');
            let length = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            write_json(&item, origin, path, depth + 1, out)?;
            path.truncate(length);
        }
        out.push('}');
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        out.push('[');
        for (index, item) in value.try_iter()?.enumerate() {
            if index > 0 {
                out.push(',');
            }
            let length = path.len();
            path.push_str(&format!("[{index}]"));
            write_json(&item?, origin, path, depth + 1, out)?;
            path.truncate(length);
        }
        out.push(']');
    } else {
        return Err(refuse(
            origin,
            path,
            format!(
                "expected a dict, list, str, int, decimal.Decimal, float, bool or None, found {}",
                describe(value)
            ),
        ));
    }
    Ok(())
}

/// The exact plain text of a finite `decimal.Decimal` (`format(d, "f")`: never an exponent).
fn decimal_text(value: &Bound<'_, PyAny>) -> Result<String, String> {
    let finite = value
        .call_method0("is_finite")
        .and_then(|finite| finite.extract::<bool>())
        .unwrap_or(false);
    if !finite {
        return Err(format!("must be a finite decimal, got {}", describe(value)));
    }
    let py = value.py();
    py.import("builtins")
        .and_then(|builtins| builtins.getattr("format"))
        .and_then(|format| format.call1((value, "f")))
        .and_then(|text| text.extract::<String>())
        .map_err(|error| format!("cannot be written as a decimal: {error}"))
}

/// A short description of a Python value for messages: its type and repr.
pub fn describe(value: &Bound<'_, PyAny>) -> String {
    let type_name = value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".to_owned());
    let repr = value
        .repr()
        .map(|repr| repr.to_string())
        .unwrap_or_default();
    let mut shown: String = repr.chars().take(60).collect();
    if shown.len() < repr.len() {
        shown.push('…');
    }
    format!("{type_name} {shown}")
}

/// One money figure from Python: a `str` in plain decimal notation, an `int` or a
/// `decimal.Decimal`; a `float` is refused.
///
/// # Errors
/// `MoneyAsFloatError` for a float, `InputError` for anything else that is not a decimal.
pub fn money(value: &Bound<'_, PyAny>, origin: &str, field: &str) -> PyResult<Decimal> {
    if value.is_instance_of::<PyFloat>() {
        return Err(raise(
            Kind::MoneyAsFloat,
            Problem::at(
                origin,
                field,
                format!(
                    "money must not be a float: pass a str, int or decimal.Decimal (got {}), so that no digit is lost to binary floating point",
                    describe(value)
                ),
            ),
        ));
    }
    let text = if value.is_instance_of::<PyBool>() {
        None
    } else if let Ok(text) = value.cast::<PyString>() {
        Some(text.to_cow()?.into_owned())
    } else if value.is_instance_of::<PyInt>() {
        Some(value.str()?.to_cow()?.into_owned())
    } else if is_decimal(value)? {
        Some(
            decimal_text(value)
                .map_err(|problem| raise(Kind::Input, Problem::at(origin, field, problem)))?,
        )
    } else {
        None
    };
    let Some(text) = text else {
        return Err(raise(
            Kind::Input,
            Problem::at(
                origin,
                field,
                format!(
                    "expected a str, int or decimal.Decimal, found {}",
                    describe(value)
                ),
            ),
        ));
    };
    solvent_core::money::parse_decimal(&text)
        .map_err(|problem| raise(Kind::Input, Problem::at(origin, field, problem)))
}

/// Where an input comes from: a path to read, or an object given in Python.
pub enum Source {
    /// A file.
    File(PathBuf),
    /// A Python value (a dict in the file's JSON shape), as JSON text.
    Text(String),
}

/// Reads `value` as a path (`str` or `os.PathLike`) or as a JSON-shaped Python object.
///
/// # Errors
/// `InputError` for a value with no JSON form.
pub fn source(value: &Bound<'_, PyAny>, origin: &str) -> PyResult<Source> {
    if value.is_instance_of::<PyString>() || value.hasattr("__fspath__")? {
        let path: PathBuf = value.extract()?;
        return Ok(Source::File(path));
    }
    if value.is_instance_of::<PyDict>() {
        return Ok(Source::Text(to_json_text(value, origin)?));
    }
    Err(PyTypeError::new_err(format!(
        "{origin}: expected a dict in the file's JSON shape or a path, found {}",
        describe(value)
    )))
}

/// The origin (for messages) and JSON text of an input.
///
/// # Errors
/// `InputError` for a file that cannot be read.
pub fn text_of(source: Source, origin: &str) -> PyResult<(String, String)> {
    match source {
        Source::File(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|error| {
                raise(
                    Kind::Input,
                    Problem {
                        origin: Some(name.clone()),
                        field: None,
                        problem: format!("cannot read the file: {error}"),
                        index: None,
                    },
                )
            })?;
            Ok((name, text))
        }
        Source::Text(text) => Ok((origin.to_owned(), text)),
    }
}

/// Keys whose string values are names or words, never figures, even when they look like
/// numbers (an account called `"1001"`).
const TEXT_KEYS: &[&str] = &[
    "account",
    "asset",
    "counterparty",
    "detail",
    "expiry",
    "from",
    "id",
    "instrument",
    "kind",
    "mark_source",
    "mode",
    "name",
    "reason",
    "refusal",
    "rule",
    "settlement",
    "settlement_asset",
    "side",
    "source",
    "state",
    "state_hash",
    "timestamp",
    "to",
    "trade",
    "ts",
    "type",
    "underlying",
    "warnings",
];

/// The Python value of the core's JSON: objects as dicts (in the JSON's key order), decimal text
/// as `decimal.Decimal` (except under [`TEXT_KEYS`]), other numbers as `int` or `float`.
///
/// # Errors
/// A Python error from building the objects.
pub fn to_python<'py>(
    py: Python<'py>,
    value: &Value,
    key: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(number) => {
            if let Some(small) = number.as_i64() {
                small.into_pyobject(py)?.into_any()
            } else if let Some(large) = number.as_u64() {
                large.into_pyobject(py)?.into_any()
            } else {
                number
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
            }
        }
        Value::String(text) => {
            let figure = key.is_none_or(|key| !TEXT_KEYS.contains(&key));
            match figure
                .then(|| solvent_core::money::parse_decimal(text).ok())
                .flatten()
            {
                Some(decimal) => decimal.into_pyobject(py)?.into_any(),
                None => PyString::new(py, text).into_any(),
            }
        }
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item, key)?)?;
            }
            list.into_any()
        }
        Value::Object(object) => {
            let dict = PyDict::new(py);
            for (name, item) in object {
                dict.set_item(name, to_python(py, item, Some(name))?)?;
            }
            dict.into_any()
        }
    })
}

/// [`to_python`] of anything the core serialises.
///
/// # Errors
/// A figure that cannot be serialised (a bug), or a Python error.
pub fn serialize_to_python<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value).map_err(crate::errors::internal)?;
    to_python(py, &json, None)
}
