//! # solvent-engine
//!
//! The deterministic state machine that turns a stream of events into account states and
//! effects (DESIGN.md 7-9). Work in progress: the event format.

#![deny(missing_docs)]

pub mod event;
pub mod ledger;
