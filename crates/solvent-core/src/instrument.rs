//! Instruments: perpetuals, dated futures and European options, linear or inverse, and the
//! parsing of Deribit-style names (`BTC-PERPETUAL`, `BTC_USDC-27DEC26-70000-P`).

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Price, parse_decimal};
use crate::venue::MarginRule;

/// Perpetual, dated future or option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// A perpetual swap.
    Perpetual,
    /// A dated future.
    Future,
    /// A European option on the underlying's forward.
    Option,
}

/// How size and P&L are denominated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Size in base units (times the contract size), P&L in the settlement (quote) currency.
    Linear,
    /// Size in USD (a multiple of the contract size), P&L and premium in the coin.
    Inverse,
}

/// Call or put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionRight {
    /// The right to buy.
    Call,
    /// The right to sell.
    Put,
}

/// The dated part of an instrument: expiry, and for options strike and right.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Terms {
    /// No expiry.
    Perpetual,
    /// A future expiring at `expiry`.
    Future {
        /// Expiry instant.
        expiry: Timestamp,
    },
    /// A European option.
    Option {
        /// Expiry instant.
        expiry: Timestamp,
        /// Strike price in USD per unit of the underlying.
        strike: Price,
        /// Call or put.
        right: OptionRight,
    },
}

impl Terms {
    /// The instrument kind of these terms.
    #[must_use]
    pub fn kind(&self) -> InstrumentKind {
        match self {
            Self::Perpetual => InstrumentKind::Perpetual,
            Self::Future { .. } => InstrumentKind::Future,
            Self::Option { .. } => InstrumentKind::Option,
        }
    }

    /// The expiry, if dated.
    #[must_use]
    pub fn expiry(&self) -> Option<Timestamp> {
        match self {
            Self::Perpetual => None,
            Self::Future { expiry } | Self::Option { expiry, .. } => Some(*expiry),
        }
    }
}

/// A fully resolved instrument: what it is and how the venue margins it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instrument {
    /// The instrument's name as the venue lists it.
    pub name: String,
    /// Perpetual, future or option, with its dated terms.
    pub terms: Terms,
    /// Linear or inverse.
    pub style: Style,
    /// Index name of the underlying (`BTC`).
    pub underlying: String,
    /// Asset the P&L, premium and margin are paid in.
    pub settlement: String,
    /// Linear: base units per unit of size. Inverse: USD per contract (size is a multiple of it).
    pub contract_size: Decimal,
    /// Smallest size increment.
    pub size_step: Decimal,
    /// The margin rule the venue applies.
    pub margin: Arc<MarginRule>,
    /// Leverage used for `tiered` initial margin when the position names none.
    pub default_leverage: Option<Decimal>,
}

impl Instrument {
    /// Checks a position size against the instrument's size step (and, for inverse instruments,
    /// its contract size), returning the problem in words.
    ///
    /// # Errors
    /// A message saying how the size breaks the rule.
    pub fn check_size(&self, size: Decimal) -> Result<(), String> {
        let normalized = size.normalize();
        let step = self.size_step.normalize();
        if normalized.scale() > step.scale() {
            return Err(format!(
                "size {normalized} has more decimals than {} allows (size step {step})",
                self.name
            ));
        }
        if !step.is_zero() && !(normalized % step).is_zero() {
            return Err(format!(
                "size {normalized} is not a multiple of {}'s size step {step}",
                self.name
            ));
        }
        // Inverse perpetuals and futures are sized in USD, a whole number of contracts; inverse
        // options are sized in coin like linear ones.
        if self.style == Style::Inverse
            && self.terms.kind() != InstrumentKind::Option
            && !self.contract_size.is_zero()
            && !(normalized % self.contract_size).is_zero()
        {
            return Err(format!(
                "size {normalized} is not a multiple of {}'s contract size of {} USD",
                self.name,
                self.contract_size.normalize()
            ));
        }
        Ok(())
    }
}

/// What a Deribit-style name says about an instrument.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedName {
    /// Underlying index (`BTC`).
    pub underlying: String,
    /// Settlement asset: the coin itself for `BTC-...`, `USDC` for `BTC_USDC-...`.
    pub settlement: String,
    /// Dated terms.
    pub terms: Terms,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Parses a Deribit date code (`27DEC26`, `5JAN27`) into a date.
///
/// # Errors
/// A message naming the code when it is not a valid date.
pub fn parse_date_code(code: &str) -> Result<Date, String> {
    let bad = || format!("{code:?} is not a date code like 27DEC26");
    let digits_end = code.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    if digits_end == 0 || digits_end > 2 || code.len() != digits_end + 5 {
        return Err(bad());
    }
    let day: i8 = code[..digits_end].parse().map_err(|_| bad())?;
    let month_text = &code[digits_end..digits_end + 3];
    let month = MONTHS
        .iter()
        .position(|m| *m == month_text)
        .ok_or_else(bad)?;
    let year: i16 = code[digits_end + 3..].parse().map_err(|_| bad())?;
    let month = i8::try_from(month + 1).map_err(|_| bad())?;
    Date::new(2000 + year, month, day).map_err(|_| bad())
}

/// The instant a date code expires at, given the venue's expiry time of day (UTC).
///
/// # Errors
/// A message when the date code is invalid.
pub fn expiry_instant(code: &str, time_utc: Time) -> Result<Timestamp, String> {
    let date = parse_date_code(code)?;
    // UTC has no transitions: the offset's own conversion, without a zoned date time.
    jiff::tz::Offset::UTC
        .to_timestamp(date.to_datetime(time_utc))
        .map_err(|error| format!("{code:?}: {error}"))
}

/// Parses a Deribit-style instrument name. Returns `None` when the name is not of that form (a
/// venue may define names such as `BTCUSDT` explicitly); an error when it is of that form but
/// malformed (a bad date or strike).
///
/// # Errors
/// A message naming the bad part.
pub fn parse_deribit_name(name: &str, expiry_time_utc: Time) -> Result<Option<ParsedName>, String> {
    // At most four parts, without allocating (a market of ten thousand option marks parses a
    // name per mark).
    let mut split = name.split('-');
    let mut parts = [""; 4];
    let mut count = 0;
    for part in split.by_ref().take(4) {
        parts[count] = part;
        count += 1;
    }
    if split.next().is_some() || (count != 2 && count != 4) {
        return Ok(None);
    }
    let parts = &parts[..count];
    let (underlying, settlement) = match parts[0].split_once('_') {
        Some((coin, quote)) => (coin, quote),
        None => (parts[0], parts[0]),
    };
    let is_symbol = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if !is_symbol(underlying) || !is_symbol(settlement) {
        return Ok(None);
    }
    let terms = if parts.len() == 2 {
        if parts[1] == "PERPETUAL" {
            Terms::Perpetual
        } else {
            Terms::Future {
                expiry: expiry_instant(parts[1], expiry_time_utc)
                    .map_err(|error| format!("instrument {name:?}: {error}"))?,
            }
        }
    } else {
        let expiry = expiry_instant(parts[1], expiry_time_utc)
            .map_err(|error| format!("instrument {name:?}: {error}"))?;
        // Deribit writes fractional strikes with a `d` for the decimal point (`0d625`).
        let strike_text = if parts[2].contains('d') {
            std::borrow::Cow::Owned(parts[2].replace('d', "."))
        } else {
            std::borrow::Cow::Borrowed(parts[2])
        };
        let strike = parse_decimal(&strike_text)
            .and_then(Price::try_from)
            .map_err(|error| format!("instrument {name:?}: strike: {error}"))?;
        let right = match parts[3] {
            "C" => OptionRight::Call,
            "P" => OptionRight::Put,
            other => {
                return Err(format!(
                    "instrument {name:?}: option right must be C or P, found {other:?}"
                ));
            }
        };
        Terms::Option {
            expiry,
            strike,
            right,
        }
    };
    Ok(Some(ParsedName {
        underlying: underlying.to_owned(),
        settlement: settlement.to_owned(),
        terms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eight() -> Time {
        Time::constant(8, 0, 0, 0)
    }

    #[test]
    fn deribit_names_parse() {
        let perp = parse_deribit_name("BTC-PERPETUAL", eight())
            .unwrap()
            .unwrap();
        assert_eq!(
            (perp.underlying.as_str(), perp.settlement.as_str()),
            ("BTC", "BTC")
        );
        assert_eq!(perp.terms, Terms::Perpetual);

        let linear = parse_deribit_name("BTC_USDC-PERPETUAL", eight())
            .unwrap()
            .unwrap();
        assert_eq!(linear.settlement, "USDC");

        let future = parse_deribit_name("BTC-27DEC26", eight()).unwrap().unwrap();
        assert_eq!(
            future.terms,
            Terms::Future {
                expiry: "2026-12-27T08:00:00Z".parse().unwrap()
            }
        );

        let put = parse_deribit_name("BTC_USDC-27DEC26-70000-P", eight())
            .unwrap()
            .unwrap();
        assert_eq!(
            put.terms,
            Terms::Option {
                expiry: "2026-12-27T08:00:00Z".parse().unwrap(),
                strike: "70000".parse().unwrap(),
                right: OptionRight::Put
            }
        );
        let fractional = parse_deribit_name("XRP_USDC-5JAN27-0d625-C", eight())
            .unwrap()
            .unwrap();
        assert!(
            matches!(fractional.terms, Terms::Option { strike, .. } if strike.to_string() == "0.625")
        );
    }

    #[test]
    fn venue_names_are_not_deribit_names() {
        assert_eq!(parse_deribit_name("BTCUSDT", eight()).unwrap(), None);
        assert_eq!(parse_deribit_name("btc-perpetual", eight()).unwrap(), None);
    }

    #[test]
    fn malformed_deribit_names_are_errors() {
        for name in [
            "BTC-32DEC26",
            "BTC-27XYZ26",
            "BTC-27DEC26-0-C",
            "BTC-27DEC26-70000-X",
        ] {
            assert!(parse_deribit_name(name, eight()).is_err(), "{name}");
        }
    }
}
