//! Black-76 over numpy arrays: price, delta, gamma and vega by the vectorised batch kernel of
//! `solvent-pricing`, and implied volatility by Jaeckel's "Let's Be Rational".
//!
//! Contiguous `float64` arrays are read in place (read-only views, no copy); a Python number is
//! broadcast to the arrays' length; anything else array-like is converted once by
//! `numpy.asarray(x, dtype=float64)`. The computation runs with the GIL released.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyString};
use solvent_pricing::PricingError;
use solvent_pricing::black76::{BatchColumns, GreeksBatch, OptionType, price_and_greeks_checked};
use solvent_pricing::implied::implied_volatility;

use crate::convert::describe;
use crate::errors::{self, Kind, Problem, raise};

/// One input column as given: an array read in place, or a number to broadcast.
enum Column<'py> {
    Array(PyReadonlyArray1<'py, f64>),
    Number(f64),
}

impl<'py> Column<'py> {
    fn read(value: &Bound<'py, PyAny>, field: &str) -> PyResult<Self> {
        if value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() {
            return Ok(Self::Number(value.extract()?));
        }
        if let Ok(array) = value.extract::<PyReadonlyArray1<'py, f64>>() {
            return Ok(Self::Array(array));
        }
        let py = value.py();
        let converted = py
            .import("numpy")?
            .call_method1("asarray", (value, py.import("numpy")?.getattr("float64")?))
            .map_err(|error| {
                raise(
                    Kind::Pricing,
                    Problem {
                        origin: None,
                        field: Some(field.to_owned()),
                        problem: format!(
                            "expected a float or a 1-D float64 array, found {}: {error}",
                            describe(value)
                        ),
                        index: None,
                    },
                )
            })?;
        converted
            .extract::<PyReadonlyArray1<'py, f64>>()
            .map(Self::Array)
            .map_err(|_| {
                raise(
                    Kind::Pricing,
                    Problem {
                        origin: None,
                        field: Some(field.to_owned()),
                        problem: format!(
                            "expected a float or a 1-D array, found {} of {} dimensions",
                            describe(value),
                            converted
                                .getattr("ndim")
                                .map(|n| n.to_string())
                                .unwrap_or_default()
                        ),
                        index: None,
                    },
                )
            })
    }

    fn len(&self) -> Option<usize> {
        match self {
            Self::Array(array) => Some(array.len()),
            Self::Number(_) => None,
        }
    }
}

/// Options valued per call of the kernel: the inputs, the kernel's outputs and the copies into
/// the result arrays stay in the L2 cache (1 MiB for the ten columns of a chunk).
const CHUNK: usize = 16_384;

/// A column's values: the array's memory when contiguous, an owned copy of a strided view, or a
/// broadcast number (one chunk's worth, reused for every chunk).
enum Values<'a> {
    Borrowed(&'a [f64]),
    Owned(Vec<f64>),
    Broadcast(Vec<f64>),
}

impl Values<'_> {
    /// The values of options `start..end` (`end - start <= CHUNK`).
    fn chunk(&self, start: usize, end: usize) -> &[f64] {
        match self {
            Self::Borrowed(slice) => &slice[start..end],
            Self::Owned(vec) => &vec[start..end],
            Self::Broadcast(vec) => &vec[..end - start],
        }
    }
}

fn values<'a>(column: &'a Column<'_>, n: usize) -> Values<'a> {
    match column {
        Column::Number(number) => Values::Broadcast(vec![*number; n.min(CHUNK)]),
        Column::Array(array) => match array.as_slice() {
            Ok(slice) => Values::Borrowed(slice),
            Err(_) => Values::Owned(array.as_array().iter().copied().collect()),
        },
    }
}

/// An error of the kernel on a chunk, its element's index made an index into the whole batch.
fn offset(error: PricingError, start: usize) -> PricingError {
    match error {
        PricingError::BatchElement { index, source } => PricingError::BatchElement {
            index: index + start,
            source,
        },
        other => other,
    }
}

/// The common length of the array columns (1 when all are numbers), or the error naming the
/// first column whose length differs.
fn common_length(columns: &[(&str, Option<usize>)]) -> PyResult<usize> {
    let mut expected: Option<(&str, usize)> = None;
    for (field, length) in columns {
        let Some(length) = *length else { continue };
        match expected {
            None => expected = Some((field, length)),
            Some((first, n)) if n != length => {
                return Err(raise(
                    Kind::Pricing,
                    Problem {
                        origin: None,
                        field: Some((*field).to_owned()),
                        problem: format!("has {length} elements, {first} has {n}"),
                        index: None,
                    },
                ));
            }
            Some(_) => {}
        }
    }
    Ok(expected.map_or(1, |(_, n)| n))
}

/// `"call"`/`"put"` for all, or per option: a bool array (`True` = call) or a sequence of
/// `"call"`/`"put"`.
fn option_types(value: &Bound<'_, PyAny>, n: usize) -> PyResult<(Vec<OptionType>, Option<usize>)> {
    let bad = |problem: String| {
        raise(
            Kind::Pricing,
            Problem {
                origin: None,
                field: Some("option_type".to_owned()),
                problem,
                index: None,
            },
        )
    };
    let one = |text: &str| match text {
        "call" | "c" | "C" => Ok(OptionType::Call),
        "put" | "p" | "P" => Ok(OptionType::Put),
        other => Err(bad(format!(
            "expected \"call\" or \"put\", found {other:?}"
        ))),
    };
    if let Ok(text) = value.cast::<PyString>() {
        return Ok((vec![one(text.to_cow()?.as_ref())?; n], None));
    }
    if let Ok(flags) = value.extract::<PyReadonlyArray1<'_, bool>>() {
        let kind = |call: bool| {
            if call {
                OptionType::Call
            } else {
                OptionType::Put
            }
        };
        let kinds: Vec<OptionType> = match flags.as_slice() {
            // A plain loop over the memory: the strided iterator costs ten times as much.
            Ok(slice) => slice.iter().map(|&call| kind(call)).collect(),
            Err(_) => flags.as_array().iter().map(|&call| kind(call)).collect(),
        };
        let length = kinds.len();
        return Ok((kinds, Some(length)));
    }
    let mut kinds = Vec::new();
    for item in value.try_iter().map_err(|_| {
        bad(format!(
            "expected \"call\", \"put\", a bool array (True = call) or a sequence of them, found {}",
            describe(value)
        ))
    })? {
        let item = item?;
        let text = item
            .cast::<PyString>()
            .map_err(|_| bad(format!("expected \"call\" or \"put\", found {}", describe(&item))))?;
        kinds.push(one(text.to_cow()?.as_ref())?);
    }
    let length = kinds.len();
    Ok((kinds, Some(length)))
}

/// The arrays of price, delta, gamma and vega.
type GreekArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// Price, delta, gamma and vega of every option (see `solvent.black76.greeks`).
#[pyfunction]
#[pyo3(signature = (forward, strike, time_to_expiry_years, volatility, discount_factor = None, option_type = None))]
pub fn black76_greeks<'py>(
    py: Python<'py>,
    forward: &Bound<'py, PyAny>,
    strike: &Bound<'py, PyAny>,
    time_to_expiry_years: &Bound<'py, PyAny>,
    volatility: &Bound<'py, PyAny>,
    discount_factor: Option<&Bound<'py, PyAny>>,
    option_type: Option<&Bound<'py, PyAny>>,
) -> PyResult<GreekArrays<'py>> {
    let forward = Column::read(forward, "forward")?;
    let strike = Column::read(strike, "strike")?;
    let time = Column::read(time_to_expiry_years, "time_to_expiry_years")?;
    let volatility = Column::read(volatility, "volatility")?;
    let discount = match discount_factor {
        Some(value) => Column::read(value, "discount_factor")?,
        None => Column::Number(1.0),
    };
    let mut lengths = vec![
        ("forward", forward.len()),
        ("strike", strike.len()),
        ("time_to_expiry_years", time.len()),
        ("volatility", volatility.len()),
        ("discount_factor", discount.len()),
    ];
    let n = common_length(&lengths)?;
    let (kinds, kinds_length) = match option_type {
        Some(value) => option_types(value, n)?,
        None => (vec![OptionType::Call; n], None),
    };
    lengths.push(("option_type", kinds_length));
    let n = common_length(&lengths)?;
    let kinds = if kinds.len() == n {
        kinds
    } else {
        // A single kind given as a string: one chunk's worth, reused for every chunk.
        vec![kinds.first().copied().unwrap_or(OptionType::Call); n.min(CHUNK)]
    };
    let (f, k, t, v, d) = (
        values(&forward, n),
        values(&strike, n),
        values(&time, n),
        values(&volatility, n),
        values(&discount, n),
    );
    let outputs = [
        PyArray1::<f64>::zeros(py, n, false),
        PyArray1::<f64>::zeros(py, n, false),
        PyArray1::<f64>::zeros(py, n, false),
        PyArray1::<f64>::zeros(py, n, false),
    ];
    {
        let mut writers = [
            outputs[0].readwrite(),
            outputs[1].readwrite(),
            outputs[2].readwrite(),
            outputs[3].readwrite(),
        ];
        let [price, delta, gamma, vega] = &mut writers;
        let (price, delta, gamma, vega) = (
            price.as_slice_mut().map_err(errors::internal)?,
            delta.as_slice_mut().map_err(errors::internal)?,
            gamma.as_slice_mut().map_err(errors::internal)?,
            vega.as_slice_mut().map_err(errors::internal)?,
        );
        py.detach(|| {
            let mut out = GreeksBatch::with_capacity(n.min(CHUNK));
            for start in (0..n).step_by(CHUNK) {
                let end = (start + CHUNK).min(n);
                let kinds = if kinds.len() == n {
                    &kinds[start..end]
                } else {
                    &kinds[..end - start]
                };
                price_and_greeks_checked(
                    BatchColumns {
                        forward: f.chunk(start, end),
                        strike: k.chunk(start, end),
                        time_to_expiry_years: t.chunk(start, end),
                        volatility: v.chunk(start, end),
                        discount_factor: d.chunk(start, end),
                        option_type: kinds,
                    },
                    &mut out,
                )
                .map_err(|error| offset(error, start))?;
                price[start..end].copy_from_slice(out.price());
                delta[start..end].copy_from_slice(out.delta());
                gamma[start..end].copy_from_slice(out.gamma());
                vega[start..end].copy_from_slice(out.vega());
            }
            Ok(())
        })
        .map_err(|error: PricingError| errors::pricing(&error))?;
    }
    let [price, delta, gamma, vega] = outputs;
    Ok((price, delta, gamma, vega))
}

/// Implied volatility of every option (see `solvent.black76.implied_vol`). With
/// `on_error="nan"`, an option no volatility prices (below intrinsic, above the bound) gives
/// NaN instead of an error; invalid inputs always raise.
#[pyfunction]
#[pyo3(signature = (price, forward, strike, time_to_expiry_years, discount_factor = None, option_type = None, on_error = "raise"))]
#[allow(
    clippy::too_many_arguments,
    reason = "the Python signature: named keyword arguments"
)]
pub fn black76_implied_vol<'py>(
    py: Python<'py>,
    price: &Bound<'py, PyAny>,
    forward: &Bound<'py, PyAny>,
    strike: &Bound<'py, PyAny>,
    time_to_expiry_years: &Bound<'py, PyAny>,
    discount_factor: Option<&Bound<'py, PyAny>>,
    option_type: Option<&Bound<'py, PyAny>>,
    on_error: &str,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let nan_on_error = match on_error {
        "raise" => false,
        "nan" => true,
        other => {
            return Err(raise(
                Kind::Input,
                Problem {
                    origin: None,
                    field: Some("on_error".to_owned()),
                    problem: format!("expected \"raise\" or \"nan\", found {other:?}"),
                    index: None,
                },
            ));
        }
    };
    let price = Column::read(price, "price")?;
    let forward = Column::read(forward, "forward")?;
    let strike = Column::read(strike, "strike")?;
    let time = Column::read(time_to_expiry_years, "time_to_expiry_years")?;
    let discount = match discount_factor {
        Some(value) => Column::read(value, "discount_factor")?,
        None => Column::Number(1.0),
    };
    let mut lengths = vec![
        ("price", price.len()),
        ("forward", forward.len()),
        ("strike", strike.len()),
        ("time_to_expiry_years", time.len()),
        ("discount_factor", discount.len()),
    ];
    let n = common_length(&lengths)?;
    let (kinds, kinds_length) = match option_type {
        Some(value) => option_types(value, n)?,
        None => (vec![OptionType::Call; n], None),
    };
    lengths.push(("option_type", kinds_length));
    let n = common_length(&lengths)?;
    let kinds = if kinds.len() == n {
        kinds
    } else {
        vec![kinds.first().copied().unwrap_or(OptionType::Call); n]
    };
    let (p, f, k, t, d) = (
        values(&price, n),
        values(&forward, n),
        values(&strike, n),
        values(&time, n),
        values(&discount, n),
    );
    let solved = py
        .detach(|| {
            let mut solved = Vec::with_capacity(n);
            for start in (0..n).step_by(CHUNK) {
                let end = (start + CHUNK).min(n);
                let (p, f, k, t, d) = (
                    p.chunk(start, end),
                    f.chunk(start, end),
                    k.chunk(start, end),
                    t.chunk(start, end),
                    d.chunk(start, end),
                );
                for i in 0..end - start {
                    let kind = kinds[start + i];
                    solved.push(
                        match implied_volatility(p[i], f[i], k[i], t[i], d[i], kind) {
                            Ok(vol) => vol,
                            Err(error) if nan_on_error && unattainable(&error) => f64::NAN,
                            Err(error) => {
                                return Err(PricingError::BatchElement {
                                    index: start + i,
                                    source: Box::new(error),
                                });
                            }
                        },
                    );
                }
            }
            Ok(solved)
        })
        .map_err(|error| errors::pricing(&error))?;
    Ok(PyArray1::from_vec(py, solved))
}

/// Whether an implied-volatility error says that no volatility gives the price (rather than that
/// an input is invalid).
fn unattainable(error: &solvent_pricing::PricingError) -> bool {
    use solvent_pricing::PricingError as E;
    matches!(
        error,
        E::PriceBelowIntrinsic { .. }
            | E::PriceAboveUpperBound { .. }
            | E::NotAttainableAtExpiry { .. }
            | E::NoImpliedVolatility { .. }
    )
}
