//! Stress scenarios as files (`SCENARIOS.json`): named joint shocks of underlying prices and
//! implied volatilities.
//!
//! ```json
//! {"scenarios": [{"name": "FTX", "price_moves": {"BTC": "-0.14", "SOL": "-0.42"},
//!                 "vol_changes": {"BTC": "0.5"}}]}
//! ```
//! A price move is relative (`-0.14` = -14%); a volatility change is relative too (`0.5` = every
//! implied volatility of the underlying x 1.5). Underlyings not named do not move.

use indexmap::IndexMap;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use crate::error::{InputError, from_json_str, unique_map};
use crate::money::deserialize_decimal;

/// One named joint shock.
#[derive(Clone, Debug, PartialEq)]
pub struct Shock {
    /// Name shown in reports.
    pub name: String,
    /// Relative price move per underlying.
    pub price_moves: IndexMap<String, f64>,
    /// Relative implied-volatility change per underlying.
    pub vol_changes: IndexMap<String, f64>,
}

impl Shock {
    /// A shock moving every listed underlying by the same `price_move`, volatility unchanged.
    #[must_use]
    pub fn joint(name: impl Into<String>, underlyings: &[String], price_move: f64) -> Self {
        Self {
            name: name.into(),
            price_moves: underlyings
                .iter()
                .map(|u| (u.clone(), price_move))
                .collect(),
            vol_changes: IndexMap::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    #[allow(dead_code, reason = "provenance, for the reader of the file")]
    source: Option<String>,
    scenarios: Vec<ShockFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShockFile {
    name: String,
    #[serde(deserialize_with = "unique_map")]
    price_moves: IndexMap<String, DecimalText>,
    #[serde(default, deserialize_with = "unique_map")]
    vol_changes: IndexMap<String, DecimalText>,
}

#[derive(Deserialize)]
#[serde(transparent)]
struct DecimalText(#[serde(deserialize_with = "deserialize_decimal")] Decimal);

fn relative(file: &str, path: String, value: Decimal, high: f64) -> Result<f64, InputError> {
    let number = value.to_f64().unwrap_or(f64::NAN);
    if !(number > -1.0 && number <= high) {
        return Err(InputError::new(
            file,
            path,
            format!(
                "a relative change must be above -1 (a fall of 100%) and at most {high}, found {value}"
            ),
        ));
    }
    Ok(number)
}

/// Reads a scenario file.
///
/// # Errors
/// [`InputError`] naming the scenario and field of the first problem.
pub fn read_shocks(file: &str, text: &str) -> Result<Vec<Shock>, InputError> {
    let raw: ScenarioFile = from_json_str(file, text)?;
    if raw.scenarios.is_empty() {
        return Err(InputError::new(
            file,
            "scenarios",
            "at least one scenario is needed",
        ));
    }
    raw.scenarios
        .into_iter()
        .enumerate()
        .map(|(index, shock)| {
            let path = format!("scenarios[{index}]");
            if shock.name.trim().is_empty() {
                return Err(InputError::new(
                    file,
                    format!("{path}.name"),
                    "must not be empty",
                ));
            }
            let price_moves = shock
                .price_moves
                .into_iter()
                .map(|(u, v)| {
                    relative(file, format!("{path}.price_moves.{u}"), v.0, 100.0).map(|m| (u, m))
                })
                .collect::<Result<_, _>>()?;
            let vol_changes = shock
                .vol_changes
                .into_iter()
                .map(|(u, v)| {
                    relative(file, format!("{path}.vol_changes.{u}"), v.0, 20.0).map(|m| (u, m))
                })
                .collect::<Result<_, _>>()?;
            Ok(Shock {
                name: shock.name,
                price_moves,
                vol_changes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shocks_read_and_bad_ones_are_named() {
        let shocks = read_shocks(
            "s.json",
            r#"{"scenarios":[{"name":"x","price_moves":{"BTC":"-0.5"},"vol_changes":{"BTC":"1"}}]}"#,
        )
        .unwrap();
        assert_eq!(shocks[0].price_moves["BTC"], -0.5);
        assert_eq!(shocks[0].vol_changes["BTC"], 1.0);
        let error = read_shocks(
            "s.json",
            r#"{"scenarios":[{"name":"x","price_moves":{"BTC":"-1"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.path, "scenarios[0].price_moves.BTC");
        let empty = read_shocks("s.json", r#"{"scenarios":[]}"#).unwrap_err();
        assert_eq!(empty.path, "scenarios");
    }
}
