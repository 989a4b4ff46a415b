//! # solvent-pricing
//!
//! Option pricing for Solvent's margin models: Black-76 on forwards, implied volatility and a
//! volatility surface. Everything is pure `f64` math: no I/O, no clock, no panics on input,
//! and no NaN in any output (inputs are validated into types whose domain guarantees finite
//! results).
//!
//! - [`black76`]: [`Black76`](black76::Black76) holds one validated option (forward, strike,
//!   time to expiry, volatility, discount factor); [`price`](black76::Black76::price) and
//!   [`greeks`](black76::Black76::greeks) value it as a call or a put.
//!   [`price_and_greeks_checked`](black76::price_and_greeks_checked) validates and values many
//!   options at once over structure-of-arrays columns, vectorised, in one pass over the inputs
//!   ([`price_and_greeks_batch`](black76::price_and_greeks_batch) values columns validated
//!   before by [`Black76Batch::new_checked`](black76::Black76Batch::new_checked);
//!   [`prices_checked`](black76::prices_checked) gives the same prices, bit for bit, without
//!   computing the greeks).
//! - [`implied`]: [`implied_volatility`](implied::implied_volatility) inverts the price
//!   (Jaeckel's "Let's Be Rational"), with typed errors for prices no volatility reaches.
//! - [`surface`]: [`VolSurface`](surface::VolSurface) interpolates smiles linearly in strike
//!   and in total variance across expiries.
//! - [`PricingError`] is the one error type; every variant names the offending field.
//!
//! ```
//! use solvent_pricing::black76::{Black76, OptionType};
//! use solvent_pricing::implied::implied_volatility;
//! use solvent_pricing::surface::{SmileInput, VolSurface};
//!
//! // A 3-month at-the-money call on a BTC forward of 60,000, 55% volatility, undiscounted.
//! let option = Black76::new_checked(60_000.0, 60_000.0, 0.25, 0.55, 1.0)?;
//! let greeks = option.greeks(OptionType::Call);
//! // At the money, V = F (2 N(s/2) - 1) with s = 0.55 * 0.5.
//! assert!((greeks.price - 6_561.864_435_308).abs() < 1e-8);
//! assert!((greeks.delta - 0.554_682_203_627_567).abs() < 1e-14);
//!
//! // Put-call parity: C - P = DF (F - K).
//! let put = option.price(OptionType::Put);
//! assert!((greeks.price - put).abs() < 1e-9);
//!
//! // Back from the price to the volatility.
//! let vol = implied_volatility(greeks.price, 60_000.0, 60_000.0, 0.25, 1.0, OptionType::Call)?;
//! assert!((vol - 0.55).abs() < 1e-12);
//!
//! // A one-expiry surface: flat in time, linear in strike.
//! let surface = VolSurface::new_checked(vec![SmileInput {
//!     time_to_expiry_years: 0.25,
//!     strikes: vec![50_000.0, 70_000.0],
//!     volatilities: vec![0.65, 0.55],
//! }])?;
//! assert!((surface.volatility(60_000.0, 0.5) - 0.60).abs() < 1e-15);
//!
//! // Bad input is an error naming the field, never a NaN.
//! let err = Black76::new_checked(60_000.0, -1.0, 0.25, 0.55, 1.0).unwrap_err();
//! assert_eq!(err.to_string(), "strike must be greater than zero, got -1");
//! # Ok::<(), solvent_pricing::PricingError>(())
//! ```
#![deny(missing_docs)]

pub mod black76;
mod error;
pub mod implied;
pub mod surface;
mod validate;

pub use error::{Field, PricingError};
