//! The venue files shipped with Solvent (`venues/*.toml`), built into every binary that links
//! this crate and chosen by name (`--venue bybit-linear` on the command line,
//! `Venue.load("bybit-linear")` in Python).

/// Each shipped venue: its name (the file's stem under `venues/`) and its text.
pub const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../../venues/default.toml")),
    (
        "binance-usdm",
        include_str!("../../../venues/binance-usdm.toml"),
    ),
    (
        "binance-coinm",
        include_str!("../../../venues/binance-coinm.toml"),
    ),
    (
        "bybit-linear",
        include_str!("../../../venues/bybit-linear.toml"),
    ),
    (
        "bybit-inverse",
        include_str!("../../../venues/bybit-inverse.toml"),
    ),
    ("deribit", include_str!("../../../venues/deribit.toml")),
    ("drift", include_str!("../../../venues/drift.toml")),
    ("dydx-v4", include_str!("../../../venues/dydx-v4.toml")),
    (
        "hyperliquid",
        include_str!("../../../venues/hyperliquid.toml"),
    ),
    ("okx-swap", include_str!("../../../venues/okx-swap.toml")),
    ("span-16", include_str!("../../../venues/span-16.toml")),
];

/// The text of the shipped venue `name` (with or without `.toml`).
#[must_use]
pub fn shipped(name: &str) -> Option<&'static str> {
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    SHIPPED
        .iter()
        .find(|(shipped, _)| *shipped == stem)
        .map(|(_, text)| *text)
}
