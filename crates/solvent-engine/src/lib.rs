//! # solvent-engine
//!
//! The deterministic state machine that turns a stream of events into account states and
//! effects (DESIGN.md 7-9): [`event`] is what happens, [`engine::Engine::apply`] decides, and
//! [`effect`] is what it did. Money lives in a double-entry [`ledger`] whose every asset sums to
//! zero after every event. Nothing here reads a clock or does I/O: time is a field of each event,
//! and the same events in the same order give the same state hash on any machine.

#![deny(missing_docs)]

pub mod book;
pub mod cascade;
pub mod config;
pub mod effect;
pub mod engine;
pub mod event;
pub mod ledger;
pub mod population;

pub use engine::Engine;
