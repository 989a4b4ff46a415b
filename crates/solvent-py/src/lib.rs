//! # solvent-py
//!
//! The `solvent` Python package's native module, `solvent._solvent`: the venue's own margin,
//! liquidation prices, what-if, allocation and stress ([`inputs`], [`margin`], [`report`]),
//! Black-76 over numpy arrays ([`black76`]) and the engine for event-driven backtests
//! ([`engine`]), all by the library crates the `solvent` command uses. Money crosses the border
//! as `decimal.Decimal`, `str` or `int`, never as a float ([`convert`]); errors become the
//! exceptions of `solvent._errors`, naming the field ([`errors`]).
//!
//! Built by maturin (`python/pyproject.toml`) into one abi3 wheel for CPython 3.9 and later;
//! tested from Python on the installed wheel (`scripts/test-python`).

#![deny(missing_docs)]

pub mod black76;
pub mod convert;
pub mod engine;
pub mod errors;
pub mod inputs;
pub mod margin;
pub mod report;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _solvent(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<inputs::Venue>()?;
    module.add_class::<inputs::Portfolio>()?;
    module.add_class::<inputs::Market>()?;
    module.add_class::<report::MarginReport>()?;
    module.add_class::<report::Component>()?;
    module.add_class::<report::PositionReport>()?;
    module.add_class::<report::WhatIf>()?;
    module.add_class::<engine::Engine>()?;
    module.add_function(wrap_pyfunction!(black76::black76_greeks, module)?)?;
    module.add_function(wrap_pyfunction!(black76::black76_implied_vol, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
