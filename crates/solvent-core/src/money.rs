//! Exact money: `Amount`, `Price` and `Quantity` newtypes over [`Decimal`].
//!
//! Ledger figures never pass through `f64`. In input files they are decimal strings (`"0.5"`) or
//! integers; a JSON or TOML float is refused, because a binary float can silently change a digit
//! of a published figure. The conversion to `f64` for risk math is explicit (`to_f64`), and the
//! way back goes through [`crate::rounding`], which decides which side a rounding favours.

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub};
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parses a decimal from a string in plain notation (`"123.45"`, `"-1"`), as input files write it.
///
/// # Errors
/// A message naming the offending text when it is not a plain decimal number (this refuses
/// `"NaN"`, `"inf"`, exponents and empty strings).
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("expected a decimal number, found an empty string".to_owned());
    }
    // `Decimal::from_str_exact` also takes `1_000`, `+5` and `1.`: a published figure is written
    // in none of those ways, and a digit group separator is as likely a typo as a thousand.
    if !is_plain_decimal(trimmed) {
        return Err(format!(
            "expected a decimal number like \"1.5\" (digits, one optional leading minus and one decimal point), found {text:?}"
        ));
    }
    Decimal::from_str_exact(trimmed)
        .map_err(|_| format!("expected a decimal number like \"1.5\", found {text:?}"))
}

/// `-?DIGITS(.DIGITS)?`: the only spelling of a number input files use.
fn is_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

/// Serde visitor for a decimal written as a string or an integer, never as a float.
struct DecimalVisitor;

impl Visitor<'_> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a decimal number written as a string (e.g. \"0.005\") or an integer")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Decimal, E> {
        parse_decimal(text).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Decimal, E> {
        Err(E::custom(format!(
            "write decimals as strings (\"{value}\"), so that no digit is lost to binary floating point"
        )))
    }
}

/// Deserializes a [`Decimal`] from a string or an integer (see [`DecimalVisitor`]).
///
/// # Errors
/// The deserializer's error when the value is a float or not a decimal number.
pub fn deserialize_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Decimal, D::Error> {
    deserializer.deserialize_any(DecimalVisitor)
}

/// Deserializes an optional [`Decimal`] (see [`deserialize_decimal`]).
///
/// # Errors
/// As [`deserialize_decimal`].
pub fn deserialize_optional_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    deserialize_decimal(deserializer).map(Some)
}

macro_rules! decimal_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Decimal);

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self(Decimal::ZERO);

            /// The exact decimal value.
            #[must_use]
            pub const fn value(self) -> Decimal {
                self.0
            }

            /// The value as `f64` for risk math (nearest double; exactness ends here).
            #[must_use]
            pub fn to_f64(self) -> f64 {
                self.0.to_f64().unwrap_or(f64::NAN)
            }

            /// Whether the value is zero.
            #[must_use]
            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.normalize(), formatter)
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                let value = parse_decimal(text)?;
                Self::try_from(value)
            }
        }

        /// Text formats (JSON, TOML) carry the normalised figure people read; binary formats
        /// (engine snapshots) carry the exact decimal, scale included, since a restored state
        /// must compute digit for digit as the one it was taken from.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(&self.0.normalize())
                } else {
                    Serialize::serialize(&self.0, serializer)
                }
            }
        }

        /// Text formats are input and are checked as such; a binary format holds a value the
        /// engine once held (a snapshot, checksummed), taken back as it was.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if !deserializer.is_human_readable() {
                    return <Decimal as Deserialize>::deserialize(deserializer).map(Self);
                }
                let value = deserialize_decimal(deserializer)?;
                Self::try_from(value).map_err(de::Error::custom)
            }
        }
    };
}

decimal_newtype!(
    /// An exact amount of an asset (a balance, a fee, a margin figure); may be negative.
    Amount
);
decimal_newtype!(
    /// An exact price, always strictly positive.
    Price
);
decimal_newtype!(
    /// An exact signed position size: positive long, negative short.
    Quantity
);

/// Largest absolute amount accepted from input (10^15 units). Together with [`MAX_PRICE`] and
/// [`MAX_QUANTITY`] it bounds every product Solvent computes well inside `Decimal`'s range
/// (about 7.9 x 10^28), so no arithmetic on accepted input can overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);
/// Largest price accepted from input (10^12).
pub const MAX_PRICE: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);
/// Smallest price accepted from input (10^-12). A size divided by a price (an inverse
/// contract's coin exposure) then stays within `MAX_QUANTITY / MIN_PRICE = 10^27`, inside
/// `Decimal`'s range, and a price of `1e-28` (zero in all but name) is refused as the degenerate
/// input it is.
pub const MIN_PRICE: Decimal = Decimal::from_parts(1, 0, 0, false, 12);
/// Smallest leverage accepted from input: below 1 the initial margin would exceed the position's
/// value, and a leverage of `1e-20` would multiply a requirement out of `Decimal`'s range.
pub const MIN_LEVERAGE: Decimal = Decimal::ONE;
/// Largest leverage accepted from input (1000x: above any venue's published maximum).
pub const MAX_LEVERAGE: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// Checks a leverage (a position's, a venue's default or a tier's maximum) against
/// [`MIN_LEVERAGE`] and [`MAX_LEVERAGE`].
///
/// # Errors
/// A message naming the value when it is outside the range.
pub fn check_leverage(value: Decimal) -> Result<Decimal, String> {
    if value < MIN_LEVERAGE || value > MAX_LEVERAGE {
        return Err(format!(
            "a leverage must be between {MIN_LEVERAGE} and {MAX_LEVERAGE}, found {value}"
        ));
    }
    Ok(value)
}
/// Largest absolute position size accepted from input (10^15 units).
pub const MAX_QUANTITY: Decimal = MAX_AMOUNT;

impl TryFrom<Decimal> for Amount {
    type Error = String;

    fn try_from(value: Decimal) -> Result<Self, String> {
        if value.abs() > MAX_AMOUNT {
            return Err(format!(
                "an amount must be at most 1e15 in magnitude, found {value}"
            ));
        }
        Ok(Self(value))
    }
}

impl TryFrom<Decimal> for Quantity {
    type Error = String;

    fn try_from(value: Decimal) -> Result<Self, String> {
        if value.abs() > MAX_QUANTITY {
            return Err(format!(
                "a size must be at most 1e15 in magnitude, found {value}"
            ));
        }
        Ok(Self(value))
    }
}

impl TryFrom<Decimal> for Price {
    type Error = String;

    fn try_from(value: Decimal) -> Result<Self, String> {
        if value <= Decimal::ZERO {
            return Err(format!("a price must be greater than zero, found {value}"));
        }
        if value > MAX_PRICE {
            return Err(format!("a price must be at most 1e12, found {value}"));
        }
        if value < MIN_PRICE {
            return Err(format!(
                "a price must be at least 1e-12 (smaller is zero in all but name), found {value}"
            ));
        }
        Ok(Self(value))
    }
}

impl Price {
    /// A price from a decimal known to be positive (trusted input).
    ///
    /// # Errors
    /// When the value is zero or negative.
    pub fn new_checked(value: Decimal) -> Result<Self, String> {
        Self::try_from(value)
    }
}

impl Quantity {
    /// The absolute size.
    #[must_use]
    pub fn abs(self) -> Decimal {
        self.0.abs()
    }

    /// Long or short; `None` when flat.
    #[must_use]
    pub fn side(self) -> Option<PositionSide> {
        PositionSide::of(self.0)
    }
}

impl Add for Amount {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self(self.0 + other.0)
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, other: Self) {
        self.0 += other.0;
    }
}

impl Sub for Amount {
    type Output = Self;

    fn sub(self, other: Self) -> Self {
        Self(self.0 - other.0)
    }
}

impl Neg for Amount {
    type Output = Self;

    fn neg(self) -> Self {
        Self(-self.0)
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_from_strings_and_integers_but_not_floats() {
        let from_string: Amount = serde_json::from_str("\"12.50\"").unwrap();
        assert_eq!(from_string.value(), Decimal::new(1250, 2));
        let from_integer: Amount = serde_json::from_str("7").unwrap();
        assert_eq!(from_integer.value(), Decimal::from(7));
        let float = serde_json::from_str::<Amount>("0.1")
            .unwrap_err()
            .to_string();
        assert!(float.contains("write decimals as strings"), "{float}");
    }

    #[test]
    fn non_numbers_are_refused_with_the_text() {
        for text in ["\"NaN\"", "\"inf\"", "\"\"", "\"1e5\"", "\"12,5\""] {
            let error = serde_json::from_str::<Amount>(text)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("expected a decimal number"),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn prices_must_be_positive() {
        assert!(serde_json::from_str::<Price>("\"0\"").is_err());
        assert!(serde_json::from_str::<Price>("\"-3\"").is_err());
        assert_eq!(
            serde_json::from_str::<Price>("\"60000.5\"")
                .unwrap()
                .value(),
            Decimal::new(600005, 1)
        );
    }

    #[test]
    fn amounts_serialise_as_normalised_strings() {
        let amount = Amount(Decimal::new(125000, 4));
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"12.5\"");
    }

    #[test]
    fn limits_are_powers_of_ten_and_enforced() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_000_i64));
        assert_eq!(MAX_PRICE, Decimal::from(1_000_000_000_000_i64));
        assert!("1000000000000.5".parse::<Price>().is_err());
        assert!("-1000000000000001".parse::<Amount>().is_err());
        let error =
            serde_json::from_str::<Quantity>("\"79228162514264337593543950335\"").unwrap_err();
        assert!(error.to_string().contains("at most 1e15"), "{error}");
    }

    #[test]
    fn quantity_side() {
        assert_eq!(
            Quantity(Decimal::from(-2)).side(),
            Some(PositionSide::Short)
        );
        assert_eq!(Quantity(Decimal::ZERO).side(), None);
        assert_eq!(
            Quantity(Decimal::new(1, 3)).side(),
            Some(PositionSide::Long)
        );
    }
}

/// The side of a position, which says which way its risk lies: a long loses as the price falls,
/// a short as it rises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionSide {
    /// Positive size.
    Long,
    /// Negative size.
    Short,
}

impl PositionSide {
    /// The side of a signed size; `None` when it is zero.
    #[must_use]
    pub fn of(size: Decimal) -> Option<Self> {
        if size.is_zero() {
            None
        } else if size.is_sign_positive() {
            Some(Self::Long)
        } else {
            Some(Self::Short)
        }
    }

    /// `+1` for a long, `-1` for a short: the sign a move against the position carries.
    #[must_use]
    pub fn sign(self) -> Decimal {
        match self {
            Self::Long => Decimal::ONE,
            Self::Short => Decimal::NEGATIVE_ONE,
        }
    }
}
