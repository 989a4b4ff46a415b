//! Market snapshot (`MARKET.json`): index and mark prices, implied-volatility smiles, the rate,
//! and open interest, at one instant.

use indexmap::IndexMap;
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde::{Deserialize, Deserializer};

use crate::error::{InputError, from_json_str, unique_map};
use crate::instrument::{expiry_instant, parse_date_code};
use crate::money::{Amount, MAX_PRICE, MIN_PRICE, Price};
use crate::names::NameMap;
use rust_decimal::prelude::ToPrimitive;

/// One expiry's smile: implied volatility (annualised, 0.55 = 55%) at each strike.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Smile {
    /// Strikes, strictly ascending.
    pub strikes: Vec<f64>,
    /// Implied volatilities at those strikes.
    pub vols: Vec<f64>,
}

/// A market snapshot. Time enters Solvent only here (`timestamp`), never from a clock.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Market {
    /// The instant the snapshot describes.
    #[serde(deserialize_with = "deserialize_timestamp")]
    pub timestamp: Timestamp,
    /// Index price (USD) per underlying or asset index.
    #[serde(deserialize_with = "unique_map")]
    pub index: NameMap<Price>,
    /// Mark price per instrument, where given (otherwise derived, DESIGN.md 5). Option marks are in
    /// the settlement currency per unit of underlying (coin for inverse options).
    #[serde(default, deserialize_with = "unique_map")]
    pub mark: NameMap<Price>,
    /// Implied-volatility smiles: underlying -> expiry (`27DEC26`, `2026-12-27` or RFC 3339) -> smile.
    #[serde(default, deserialize_with = "unique_vol")]
    pub vol: NameMap<IndexMap<String, Smile>>,
    /// Continuously compounded interest rate for discounting and forwards (0 = none).
    #[serde(default)]
    pub rate: f64,
    /// Open interest per instrument as USD notional (for open-interest-scaled margin).
    #[serde(default, deserialize_with = "unique_map")]
    pub open_interest: NameMap<Amount>,
}

/// Smiles by expiry, with distinct keys.
#[derive(Deserialize)]
#[serde(transparent)]
struct Smiles(#[serde(deserialize_with = "unique_map")] IndexMap<String, Smile>);

fn unique_vol<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<NameMap<IndexMap<String, Smile>>, D::Error> {
    let outer: IndexMap<String, Smiles> = unique_map(deserializer)?;
    Ok(outer
        .into_iter()
        .map(|(underlying, smiles)| (underlying, smiles.0))
        .collect())
}

fn deserialize_timestamp<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse::<Timestamp>().map_err(|_| {
        serde::de::Error::custom(format!(
            "expected an RFC 3339 instant like \"2026-01-01T00:00:00Z\", found {text:?}"
        ))
    })
}

/// Parses an expiry key of a volatility smile: a Deribit date code (`27DEC26`) or ISO date
/// (`2026-12-27`), both at the venue's expiry time, or an RFC 3339 instant.
///
/// # Errors
/// A message naming the key.
pub fn parse_expiry_key(key: &str, expiry_time_utc: Time) -> Result<Timestamp, String> {
    if let Ok(instant) = key.parse::<Timestamp>() {
        return Ok(instant);
    }
    if let Ok(date) = key.parse::<Date>() {
        return date
            .to_datetime(expiry_time_utc)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|zoned| zoned.timestamp())
            .map_err(|error| format!("{key:?}: {error}"));
    }
    parse_date_code(key)
        .and_then(|_| expiry_instant(key, expiry_time_utc))
        .map_err(|_| format!("expected an expiry like \"27DEC26\", \"2026-12-27\" or an RFC 3339 instant, found {key:?}"))
}

impl Market {
    /// Reads and validates a market file.
    ///
    /// # Errors
    /// [`InputError`] naming the field of the first problem.
    pub fn from_json(file: &str, text: &str) -> Result<Self, InputError> {
        let market: Self = from_json_str(file, text)?;
        market.validate(file, "")?;
        Ok(market)
    }

    /// Checks what the types cannot: smiles well formed, the rate plausible. `prefix` is the
    /// path of the market inside its file (`market.` when embedded in a portfolio).
    ///
    /// # Errors
    /// [`InputError`] naming the field.
    pub fn validate(&self, file: &str, prefix: &str) -> Result<(), InputError> {
        if !self.rate.is_finite() || self.rate.abs() > 1.0 {
            return Err(InputError::new(
                file,
                format!("{prefix}rate"),
                format!(
                    "must be a finite continuously compounded rate between -1 and 1, found {}",
                    self.rate
                ),
            ));
        }
        for (underlying, smiles) in &self.vol {
            for (expiry, smile) in smiles {
                let path = format!("{prefix}vol.{underlying}.{expiry}");
                validate_smile(smile).map_err(|problem| InputError::new(file, &path, problem))?;
            }
        }
        for (instrument, open_interest) in &self.open_interest {
            if open_interest.value().is_sign_negative() {
                return Err(InputError::new(
                    file,
                    format!("{prefix}open_interest.{instrument}"),
                    "open interest must not be negative",
                ));
            }
        }
        Ok(())
    }
}

/// Lowest implied volatility a smile may give (0.01%): a volatility of `1e-300` is zero in all but
/// name, and an option priced at it is its intrinsic value divided by nothing in the greeks.
pub const MIN_VOLATILITY: f64 = 1e-4;
/// Highest implied volatility a smile may give (2,000%).
pub const MAX_VOLATILITY: f64 = 20.0;

/// Checks one smile: strikes within the accepted prices and strictly ascending, as many
/// volatilities as strikes, each within [`MIN_VOLATILITY`, `MAX_VOLATILITY`]. The event parser
/// applies the same check to a `vol_surface` event.
///
/// # Errors
/// A message starting with the field (`strikes[2]: ...`).
pub fn validate_smile(smile: &Smile) -> Result<(), String> {
    let (min_strike, max_strike) = (
        MIN_PRICE.to_f64().unwrap_or(f64::MIN_POSITIVE),
        MAX_PRICE.to_f64().unwrap_or(f64::MAX),
    );
    if smile.strikes.is_empty() {
        return Err("strikes: at least one strike is needed".to_owned());
    }
    if smile.strikes.len() != smile.vols.len() {
        return Err(format!(
            "strikes and vols differ in length ({} and {})",
            smile.strikes.len(),
            smile.vols.len()
        ));
    }
    for (position, strike) in smile.strikes.iter().enumerate() {
        if !(strike.is_finite() && *strike >= min_strike && *strike <= max_strike) {
            return Err(format!(
                "strikes[{position}]: must be a price between 1e-12 and 1e12, found {strike}"
            ));
        }
        if position > 0 && *strike <= smile.strikes[position - 1] {
            return Err(format!("strikes[{position}]: strikes must ascend strictly"));
        }
    }
    for (position, vol) in smile.vols.iter().enumerate() {
        if !(vol.is_finite() && *vol >= MIN_VOLATILITY && *vol <= MAX_VOLATILITY) {
            return Err(format!(
                "vols[{position}]: must be an annualised volatility in [{MIN_VOLATILITY}, {MAX_VOLATILITY}] (0.55 = 55%), found {vol}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_market_file_reads() {
        let market = Market::from_json(
            "m.json",
            r#"{"timestamp":"2026-06-01T08:00:00Z","index":{"BTC":"100000"},
                "vol":{"BTC":{"27DEC26":{"strikes":[60000,100000],"vols":[0.6,0.5]}}}}"#,
        )
        .unwrap();
        assert_eq!(market.index["BTC"].to_string(), "100000");
        assert_eq!(market.rate, 0.0);
    }

    #[test]
    fn bad_markets_name_the_field() {
        let cases = [
            (r#"{"timestamp":"yesterday","index":{}}"#, "timestamp"),
            (
                r#"{"timestamp":"2026-06-01T08:00:00Z","index":{"BTC":"-1"}}"#,
                "index.BTC",
            ),
            (
                r#"{"timestamp":"2026-06-01T08:00:00Z","index":{"BTC":"NaN"}}"#,
                "index.BTC",
            ),
            (
                r#"{"timestamp":"2026-06-01T08:00:00Z","index":{},"colour":1}"#,
                "colour",
            ),
            (
                r#"{"timestamp":"2026-06-01T08:00:00Z","index":{},"vol":{"BTC":{"27DEC26":{"strikes":[2,1],"vols":[0.5,0.5]}}}}"#,
                "vol.BTC.27DEC26",
            ),
        ];
        for (text, path) in cases {
            let error = Market::from_json("m.json", text).unwrap_err();
            assert_eq!(error.path, path, "{error}");
        }
    }

    #[test]
    fn expiry_keys() {
        let eight = Time::constant(8, 0, 0, 0);
        let expected: Timestamp = "2026-12-27T08:00:00Z".parse().unwrap();
        assert_eq!(parse_expiry_key("27DEC26", eight).unwrap(), expected);
        assert_eq!(parse_expiry_key("2026-12-27", eight).unwrap(), expected);
        assert_eq!(
            parse_expiry_key("2026-12-27T08:00:00Z", eight).unwrap(),
            expected
        );
        assert!(parse_expiry_key("soon", eight).is_err());
    }
}
