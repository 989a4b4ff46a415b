//! Volatility-scaled price-move ranges of a venue (`[portfolio_margin.vol_scaled.UNDERLYING]` in
//! `VENUE.toml`, DESIGN.md 6.5; issue 15): an underlying's scenario range becomes
//! `max(floor, k x sigma_forecast over margin_period_days)`, bounded by one of the
//! anti-procyclicality controls of EMIR (Commission Delegated Regulation (EU) No 153/2013,
//! article 28(1)(a)-(c)). The parameters are checked here; the forecast and the controls are
//! computed in `solvent-risk` (`vol_scaled`), from a price history the caller reads.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use crate::error::InputError;
use crate::money::{deserialize_decimal, deserialize_optional_decimal};

/// The volatility forecast a scaled range is built on.
///
/// Written tagged in JSON (`{"model": "ewma", "lambda": 0.94}`, the backtest's `spec`) and
/// untagged in binary formats (an engine snapshot: postcard cannot read an internally tagged
/// enum back), see [`tagged`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VolModel {
    /// RiskMetrics EWMA of squared daily log returns with decay `lambda` (J.P. Morgan/Reuters,
    /// "RiskMetrics — Technical Document", 1996, section 5.2.1).
    Ewma {
        /// Decay factor in (0, 1) (RiskMetrics daily: 0.94).
        lambda: f64,
    },
    /// GARCH(1,1) (Bollerslev, 1986) fitted by Gaussian maximum likelihood on the history before
    /// each forecast, refitted every `refit_days` days.
    Garch {
        /// Days between two fits (the recursion runs every day with the last fit's parameters).
        refit_days: u32,
    },
}

/// An anti-procyclicality control (EMIR RTS 153/2013 article 28(1)). Written as
/// [`VolModel`] is (see [`tagged`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AntiProcyclicality {
    /// No control: the range follows the forecast (above the floor).
    None,
    /// Article 28(1)(a): a buffer of `share` (at least 25%) of the forecast range, released
    /// when the forecast rises and rebuilt by `share / rebuild_days` of the forecast range a day.
    Buffer {
        /// The buffer as a fraction of the forecast range (EMIR: at least 0.25).
        share: f64,
        /// Days to rebuild an exhausted buffer in full.
        rebuild_days: u32,
    },
    /// Article 28(1)(b): the range is never below `k` times the volatility measured over a
    /// look-back of `lookback_days` (EMIR: ten years).
    StressedFloor {
        /// Days of history behind the floor's volatility (ten years: 3,652).
        lookback_days: u32,
    },
    /// Article 28(1)(c): the forecast variance gives `weight` (EMIR: at least 25%) to the
    /// variance of the most volatile `window_days` window of the history.
    StressedWeight {
        /// Weight of the stressed variance, in [0.25, 1].
        weight: f64,
        /// Length of the stressed window in days (one year: 365).
        window_days: u32,
    },
}

impl AntiProcyclicality {
    /// The control's name as the report and the backtest give it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        self.name().as_str()
    }

    /// The control's name.
    #[must_use]
    pub fn name(self) -> ControlName {
        match self {
            Self::None => ControlName::None,
            Self::Buffer { .. } => ControlName::Buffer,
            Self::StressedFloor { .. } => ControlName::StressedFloor,
            Self::StressedWeight { .. } => ControlName::StressedWeight,
        }
    }
}

/// The serde forms of [`VolModel`] and [`AntiProcyclicality`]: internally tagged where the
/// format is human-readable (JSON), externally tagged otherwise (postcard, whose readers take
/// no self-describing input: an internally tagged enum cannot be read back from it).
pub mod tagged {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{AntiProcyclicality, VolModel};

    macro_rules! mirror {
        ($name:ident, $tag:literal, $tagged:ident, $plain:ident, { $($variant:ident $({ $($field:ident : $ty:ty),* })?),* }) => {
            #[derive(Serialize, Deserialize)]
            #[serde(rename_all = "snake_case", tag = $tag)]
            enum $tagged { $($variant $({ $($field: $ty),* })?),* }

            #[derive(Serialize, Deserialize)]
            #[serde(rename_all = "snake_case")]
            enum $plain { $($variant $({ $($field: $ty),* })?),* }

            impl From<$name> for $tagged {
                fn from(value: $name) -> Self {
                    match value { $($name::$variant $({ $($field),* })? => Self::$variant $({ $($field),* })?),* }
                }
            }
            impl From<$tagged> for $name {
                fn from(value: $tagged) -> Self {
                    match value { $($tagged::$variant $({ $($field),* })? => Self::$variant $({ $($field),* })?),* }
                }
            }
            impl From<$name> for $plain {
                fn from(value: $name) -> Self {
                    match value { $($name::$variant $({ $($field),* })? => Self::$variant $({ $($field),* })?),* }
                }
            }
            impl From<$plain> for $name {
                fn from(value: $plain) -> Self {
                    match value { $($plain::$variant $({ $($field),* })? => Self::$variant $({ $($field),* })?),* }
                }
            }
            impl Serialize for $name {
                fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    if serializer.is_human_readable() {
                        $tagged::from(*self).serialize(serializer)
                    } else {
                        $plain::from(*self).serialize(serializer)
                    }
                }
            }
            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    if deserializer.is_human_readable() {
                        $tagged::deserialize(deserializer).map(Self::from)
                    } else {
                        $plain::deserialize(deserializer).map(Self::from)
                    }
                }
            }
        };
    }

    mirror!(VolModel, "model", TaggedModel, PlainModel, {
        Ewma { lambda: f64 },
        Garch { refit_days: u32 }
    });
    mirror!(AntiProcyclicality, "control", TaggedControl, PlainControl, {
        None,
        Buffer { share: f64, rebuild_days: u32 },
        StressedFloor { lookback_days: u32 },
        StressedWeight { weight: f64, window_days: u32 }
    });
}

/// The volatility-scaled range of one underlying.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct VolScaledRange {
    /// The forecast model.
    pub model: VolModel,
    /// Multiplier of the forecast volatility over the margin period (3 is about a 99.7% normal
    /// two-sided quantile; crypto's fat tails need it).
    pub k: f64,
    /// Lowest range, a fraction of the price (0.08 = 8%).
    pub floor: f64,
    /// Margin period of risk in days: EWMA's daily forecast is scaled by its square root,
    /// GARCH's summed over its term structure (`solvent_risk::history::period_variance`).
    pub margin_period_days: u32,
    /// The anti-procyclicality control.
    pub control: AntiProcyclicality,
}

/// Default decay when `lambda` is absent (RiskMetrics daily).
const DEFAULT_LAMBDA: f64 = 0.94;
/// Default refit interval of GARCH (a month).
const DEFAULT_REFIT_DAYS: u32 = 30;
/// EMIR's smallest buffer and stressed weight (article 28(1)(a) and (c): "at least 25%").
const EMIR_MINIMUM_SHARE: f64 = 0.25;
/// Ten years of calendar days (crypto trades every day).
const TEN_YEARS_DAYS: u32 = 3652;

/// The name of a forecast model (`model = "ewma"` in the venue file, `"model": "ewma"` in a
/// `scenario_range` event and in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    /// RiskMetrics EWMA.
    Ewma,
    /// GARCH(1,1).
    Garch,
}

impl ModelName {
    /// The name as written (`ewma`, `garch`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ewma => "ewma",
            Self::Garch => "garch",
        }
    }
}

/// The name of an anti-procyclicality control (`anti_procyclicality = "buffer"` in the venue
/// file, `"control": "buffer"` in a `scenario_range` event and in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlName {
    /// No control.
    None,
    /// EMIR article 28(1)(a).
    Buffer,
    /// EMIR article 28(1)(b).
    StressedFloor,
    /// EMIR article 28(1)(c).
    StressedWeight,
}

impl ControlName {
    /// The name as written (`none`, `buffer`, `stressed_floor`, `stressed_weight`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Buffer => "buffer",
            Self::StressedFloor => "stressed_floor",
            Self::StressedWeight => "stressed_weight",
        }
    }
}

impl VolModel {
    /// The model's name.
    #[must_use]
    pub fn name(self) -> ModelName {
        match self {
            Self::Ewma { .. } => ModelName::Ewma,
            Self::Garch { .. } => ModelName::Garch,
        }
    }
}

/// `[portfolio_margin.vol_scaled.UNDERLYING]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VolScaledFile {
    model: ModelName,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    lambda: Option<Decimal>,
    #[serde(default)]
    refit_days: Option<u32>,
    #[serde(deserialize_with = "deserialize_decimal")]
    k: Decimal,
    #[serde(deserialize_with = "deserialize_decimal")]
    floor: Decimal,
    #[serde(default)]
    margin_period_days: Option<u32>,
    anti_procyclicality: ControlName,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    buffer: Option<Decimal>,
    #[serde(default)]
    buffer_rebuild_days: Option<u32>,
    #[serde(default)]
    stressed_lookback_days: Option<u32>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    stressed_weight: Option<Decimal>,
    #[serde(default)]
    stressed_window_days: Option<u32>,
}

struct Field<'a> {
    file: &'a str,
    path: &'a str,
}

impl Field<'_> {
    fn error(&self, field: &str, problem: impl Into<String>) -> InputError {
        InputError::new(self.file, format!("{}.{field}", self.path), problem)
    }

    fn number(
        &self,
        field: &str,
        value: Option<Decimal>,
        default: f64,
        low: f64,
        high: f64,
    ) -> Result<f64, InputError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let number = value.to_f64().unwrap_or(f64::NAN);
        if number >= low && number <= high {
            Ok(number)
        } else {
            Err(self.error(
                field,
                format!("must be between {low} and {high}, found {value}"),
            ))
        }
    }

    fn days(
        &self,
        field: &str,
        value: Option<u32>,
        default: u32,
        high: u32,
    ) -> Result<u32, InputError> {
        let days = value.unwrap_or(default);
        if (1..=high).contains(&days) {
            Ok(days)
        } else {
            Err(self.error(field, format!("must be between 1 and {high}, found {days}")))
        }
    }

    /// A key that only another model or control reads is refused, so a typo'd choice is seen.
    fn unused<T>(&self, field: &str, value: Option<T>, reason: &str) -> Result<(), InputError> {
        match value {
            Some(_) => Err(self.error(field, format!("not read {reason}"))),
            None => Ok(()),
        }
    }
}

/// Checks one `[portfolio_margin.vol_scaled.UNDERLYING]` block; `path` is its key path.
pub(crate) fn validate(
    file: &str,
    path: &str,
    raw: VolScaledFile,
) -> Result<VolScaledRange, InputError> {
    let field = Field { file, path };
    let model = match raw.model {
        ModelName::Ewma => {
            field.unused("refit_days", raw.refit_days, "by model = \"ewma\"")?;
            VolModel::Ewma {
                lambda: field.number("lambda", raw.lambda, DEFAULT_LAMBDA, 0.5, 0.9999)?,
            }
        }
        ModelName::Garch => {
            field.unused("lambda", raw.lambda, "by model = \"garch\"")?;
            VolModel::Garch {
                refit_days: field.days("refit_days", raw.refit_days, DEFAULT_REFIT_DAYS, 3652)?,
            }
        }
    };
    let k = field.number("k", Some(raw.k), 0.0, 0.1, 20.0)?;
    let floor = field.number("floor", Some(raw.floor), 0.0, 0.0, 0.99)?;
    let margin_period_days = field.days("margin_period_days", raw.margin_period_days, 1, 30)?;
    let buffer_keys = raw.buffer.is_some() || raw.buffer_rebuild_days.is_some();
    let floor_keys = raw.stressed_lookback_days.is_some();
    let weight_keys = raw.stressed_weight.is_some() || raw.stressed_window_days.is_some();
    let control = match raw.anti_procyclicality {
        ControlName::None => AntiProcyclicality::None,
        ControlName::Buffer => AntiProcyclicality::Buffer {
            share: field.number(
                "buffer",
                raw.buffer,
                EMIR_MINIMUM_SHARE,
                EMIR_MINIMUM_SHARE,
                2.0,
            )?,
            rebuild_days: field.days("buffer_rebuild_days", raw.buffer_rebuild_days, 20, 365)?,
        },
        ControlName::StressedFloor => AntiProcyclicality::StressedFloor {
            lookback_days: field.days(
                "stressed_lookback_days",
                raw.stressed_lookback_days,
                TEN_YEARS_DAYS,
                36_525,
            )?,
        },
        ControlName::StressedWeight => AntiProcyclicality::StressedWeight {
            weight: field.number(
                "stressed_weight",
                raw.stressed_weight,
                EMIR_MINIMUM_SHARE,
                EMIR_MINIMUM_SHARE,
                1.0,
            )?,
            window_days: field.days("stressed_window_days", raw.stressed_window_days, 365, 3652)?,
        },
    };
    let reason = "by this anti_procyclicality";
    if !matches!(control, AntiProcyclicality::Buffer { .. }) && buffer_keys {
        field.unused("buffer", Some(()), reason)?;
    }
    if !matches!(control, AntiProcyclicality::StressedFloor { .. }) && floor_keys {
        field.unused("stressed_lookback_days", Some(()), reason)?;
    }
    if !matches!(control, AntiProcyclicality::StressedWeight { .. }) && weight_keys {
        field.unused("stressed_weight", Some(()), reason)?;
    }
    Ok(VolScaledRange {
        model,
        k,
        floor,
        margin_period_days,
        control,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::Venue;

    fn venue_with(block: &str) -> Result<Venue, InputError> {
        let base = crate::shipped::shipped("default").unwrap_or_default();
        Venue::from_toml("v.toml", &format!("{base}\n{block}\n"))
    }

    fn scaled(venue: &Venue) -> Option<&VolScaledRange> {
        venue.portfolio_margin.as_ref()?.vol_scaled.get("BTC")
    }

    #[test]
    fn reads_every_model_and_control_with_defaults() {
        let venue = venue_with(
            "[portfolio_margin.vol_scaled.BTC]\nmodel = \"ewma\"\nk = \"3\"\nfloor = \"0.08\"\nanti_procyclicality = \"buffer\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            scaled(&venue),
            Some(&VolScaledRange {
                model: VolModel::Ewma { lambda: 0.94 },
                k: 3.0,
                floor: 0.08,
                margin_period_days: 1,
                control: AntiProcyclicality::Buffer {
                    share: 0.25,
                    rebuild_days: 20
                },
            })
        );
        let venue = venue_with(
            "[portfolio_margin.vol_scaled.BTC]\nmodel = \"garch\"\nrefit_days = 90\nk = \"3.5\"\nfloor = \"0.1\"\nmargin_period_days = 2\nanti_procyclicality = \"stressed_weight\"\nstressed_weight = \"0.3\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let range = scaled(&venue).cloned();
        assert_eq!(
            range.map(|r| (r.model, r.margin_period_days, r.control)),
            Some((
                VolModel::Garch { refit_days: 90 },
                2,
                AntiProcyclicality::StressedWeight {
                    weight: 0.3,
                    window_days: 365
                }
            ))
        );
    }

    #[test]
    fn bad_keys_are_named() {
        let cases = [
            (
                "model = \"ewma\"\nk = \"3\"\nfloor = \"0.08\"\nanti_procyclicality = \"buffer\"\nbuffer = \"0.1\"",
                "portfolio_margin.vol_scaled.BTC.buffer",
            ),
            (
                "model = \"ewma\"\nk = \"0\"\nfloor = \"0.08\"\nanti_procyclicality = \"none\"",
                "portfolio_margin.vol_scaled.BTC.k",
            ),
            (
                "model = \"garch\"\nlambda = \"0.9\"\nk = \"3\"\nfloor = \"0.08\"\nanti_procyclicality = \"none\"",
                "portfolio_margin.vol_scaled.BTC.lambda",
            ),
            (
                "model = \"ewma\"\nk = \"3\"\nfloor = \"0.08\"\nanti_procyclicality = \"none\"\nstressed_weight = \"0.3\"",
                "portfolio_margin.vol_scaled.BTC.stressed_weight",
            ),
        ];
        for (body, path) in cases {
            let error = venue_with(&format!("[portfolio_margin.vol_scaled.BTC]\n{body}"))
                .err()
                .unwrap_or_else(|| panic!("{body} accepted"));
            assert_eq!(error.path, path, "{body}");
        }
        let error = venue_with(
            "[portfolio_margin.vol_scaled.DOGE]\nmodel = \"ewma\"\nk = \"3\"\nfloor = \"0.08\"\nanti_procyclicality = \"none\"",
        )
        .err()
        .unwrap_or_else(|| panic!("an underlying without a grid accepted"));
        assert_eq!(error.path, "portfolio_margin.vol_scaled.DOGE");
        let error = venue_with(
            "[portfolio_margin.vol_scaled.BTC]\nmodel = \"ewma\"\nk = \"3\"\nfloor = \"0.08\"\nanti_procyclicality = \"none\"\nfloors = \"1\"",
        )
        .err()
        .unwrap_or_else(|| panic!("an unknown key accepted"));
        assert!(error.to_string().contains("floors"), "{error}");
    }
}
