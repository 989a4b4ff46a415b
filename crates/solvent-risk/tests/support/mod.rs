//! What the risk crate's integration tests share: the shipped default venue.

#![allow(
    clippy::unwrap_used,
    reason = "test harness: a venue that does not load is a failed test"
)]

use solvent_core::venue::Venue;

/// The shipped default venue, `venues/default.toml`.
pub fn default_venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}
