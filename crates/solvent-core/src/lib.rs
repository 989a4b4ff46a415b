//! # solvent-core
//!
//! The domain model every other Solvent crate stands on: exact money ([`money`]), conservative
//! rounding decided in one place ([`rounding`]), instruments and their Deribit-style names
//! ([`instrument`]), venue parameters ([`venue`]), market snapshots ([`market`]) and portfolios
//! ([`portfolio`]), with validation that names the file, field and problem of bad input
//! ([`error`]). Nothing here does I/O or reads a clock: callers pass text in.
//!
//! ```
//! use solvent_core::money::Price;
//! let price: Price = "60000.5".parse().unwrap();
//! assert_eq!(price.to_string(), "60000.5");
//! assert!("0".parse::<Price>().is_err());
//! ```

#![deny(missing_docs)]

pub mod error;
pub mod instrument;
pub mod market;
pub mod money;
pub mod names;
pub mod portfolio;
pub mod portfolio_margin;
pub mod rounding;
pub mod shipped;
pub mod shock;
pub mod text;
pub mod venue;
pub mod vol_scaled;

pub use error::InputError;
pub use rust_decimal::Decimal;
