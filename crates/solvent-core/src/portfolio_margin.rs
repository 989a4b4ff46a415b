//! Portfolio-margin parameters of a venue (`[portfolio_margin]` in `VENUE.toml`, DESIGN.md 6.5):
//! the scenario grid and volatility shocks per underlying, extended scenarios and their dampener,
//! contingencies, the cross-underlying offset, the liquidity and concentration add-on, and
//! historical expected shortfall. Risk parameters are `f64` (risk math), written in the file as
//! decimal strings like every other number.

use indexmap::IndexMap;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use crate::error::InputError;
use crate::money::{deserialize_decimal, deserialize_optional_decimal};

/// How a contingency charge combines with an underlying's scan risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Added to the scan risk.
    Add,
    /// A floor: the scan risk is at least the charge.
    Floor,
}

/// Direction of a scenario's volatility shock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolShock {
    /// Volatility up.
    Up,
    /// Volatility unchanged.
    Unchanged,
    /// Volatility down.
    Down,
}

/// Whether volatility shocks scale the volatility or add to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolShockMode {
    /// `sigma x (1 +/- shock x (30 / dte)^p)` (Deribit, Paradex).
    Relative,
    /// `sigma +/- shock` volatility points, whatever the tenor (SPAN's volatility scan range).
    Absolute,
}

/// Scenario and add-on parameters of one underlying.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct UnderlyingParams {
    /// Standard price moves as fractions (`-0.16` .. `0.16`), each combined with every volatility
    /// shock; must include 0.
    pub price_moves: Vec<f64>,
    /// The volatility shocks combined with every standard move (Deribit: up, unchanged, down;
    /// SPAN: up and down).
    pub vol_shocks: Vec<VolShock>,
    /// Relative or absolute volatility shocks.
    pub vol_shock_mode: VolShockMode,
    /// Relative up-shock of volatility at 30 days (`+0.5` = vol x 1.5).
    pub vol_shock_up: f64,
    /// Relative down-shock at 30 days, a positive number (`0.25` = vol x 0.75).
    pub vol_shock_down: f64,
    /// Lowest level of an up-shocked volatility (an absolute level: 0.5 = 50%), whatever the
    /// tenor (Deribit's BTC vol-up floor, Paradex's "min vol shock up"); 0 for none.
    pub vol_up_floor: f64,
    /// Exponent of `(30 / dte)` below 30 days.
    pub vol_power_short: f64,
    /// Exponent of `(30 / dte)` from 30 days on.
    pub vol_power_long: f64,
    /// Extended moves (`-0.66`, `5`), revalued with volatility up and weighted by the dampener.
    pub extended_moves: Vec<f64>,
    /// Weight of an extended scenario: `min(1, dampener / |move|)` (Paradex: 0.16).
    pub extended_dampener: f64,
    /// A fixed weight for every extended scenario instead of the dampener (SPAN: 0.35).
    pub extended_weight: Option<f64>,
    /// Volatility shock of the extended scenarios (Deribit, Paradex: up; SPAN: unchanged).
    pub extended_vol: VolShock,
    /// Minimum delta charge on the net delta, as a fraction of its notional (Paradex: 0.02).
    pub min_delta_rate: f64,
    /// Minimum delta charge on the hedged delta (Paradex: 0.01).
    pub hedged_delta_rate: f64,
    /// How the minimum delta charge combines with the scan risk.
    pub min_delta_combine: Combine,
    /// Short option minimum, as a fraction of the underlying price per short contract.
    pub short_option_minimum: f64,
    /// How the short option minimum combines with the scan risk.
    pub short_option_combine: Combine,
    /// Basis (roll) shock on futures and perpetuals: a move of each one's price relative to the
    /// underlying, as a fraction of the underlying price, scaled by `sqrt(years to expiry)`
    /// (perpetuals: one day).
    pub roll_shock: f64,
    /// Net delta (coin) above which the delta shock applies.
    pub delta_shock_threshold: f64,
    /// Extra move applied to the net delta above the threshold, as a fraction of the price.
    pub delta_shock_rate: f64,
    /// Half the bid-ask spread, as a fraction of price, paid to close the net delta.
    pub half_spread: f64,
    /// Square-root market-impact coefficient (SPAN 2 / Almgren): cost fraction at one day's volume.
    pub impact: f64,
    /// Average daily volume in USD (must be positive when `impact` is).
    pub adv_usd: f64,
    /// Net delta notional (USD) above which the concentration charge applies.
    pub concentration_threshold_usd: f64,
    /// Charge on the net delta notional above the threshold.
    pub concentration_rate: f64,
}

/// Which balances a portfolio-margin scan covers, and in what currency (Deribit's two
/// portfolio-margin models, support article "Margin types and usage").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortfolioCollateral {
    /// Cross-collateral portfolio margin (Deribit X:PM, OKX, Binance): every position and
    /// balance of the account in one scan, valued in USD; a coin balance is a spot position.
    #[default]
    Cross,
    /// Segregated portfolio margin (Deribit S:PM, "each of the settlement currencies is treated
    /// separately"): the positions settled in a coin and that coin's balance form one
    /// sub-portfolio scanned in the coin, so the coin's own balance is no risk in itself; each
    /// currency's equity covers its own requirement.
    Segregated,
}

impl PortfolioCollateral {
    /// The model's name as a report header gives it, with the venue's code.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Cross => "cross-collateral portfolio margin (X:PM)",
            Self::Segregated => {
                "segregated portfolio margin (S:PM, each settlement currency apart)"
            }
        }
    }
}

/// Historical expected shortfall by filtered historical simulation.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct HistoricalParams {
    /// Holding period in days.
    pub horizon_days: u32,
    /// EWMA decay (RiskMetrics: 0.94).
    pub lambda: f64,
    /// Expected-shortfall confidence level (0.975).
    pub level: f64,
}

/// A venue's portfolio-margin parameters.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct PortfolioMarginParams {
    /// Cross-collateral (one scan in USD) or segregated (one scan per settlement currency, in
    /// that currency).
    pub collateral: PortfolioCollateral,
    /// `IM = im_factor x MM`.
    pub im_factor: f64,
    /// Largest credit the cross-underlying offset may give, as a fraction of the summed scan risk.
    pub max_offset: f64,
    /// Correlations between underlyings' returns (pairs; the diagonal is 1). A pair missing here
    /// is filled by a correlation estimated from the price history when one is given; otherwise
    /// it counts as perfectly adverse (`rho_uv = d_u d_v`, so the two scan risks add), so an
    /// unknown correlation never lowers margin.
    pub correlations: Vec<(String, String, f64)>,
    /// Historical ES, when enabled.
    pub historical: Option<HistoricalParams>,
    /// Parameters per underlying.
    pub underlyings: IndexMap<String, UnderlyingParams>,
    /// Volatility-scaled ranges (issue 15), per underlying of `underlyings`; empty when the
    /// venue keeps its static grid.
    #[serde(default)]
    pub vol_scaled: IndexMap<String, crate::vol_scaled::VolScaledRange>,
}

impl PortfolioMarginParams {
    /// The correlation between two underlyings, if the venue gives it.
    #[must_use]
    pub fn correlation(&self, first: &str, second: &str) -> Option<f64> {
        if first == second {
            return Some(1.0);
        }
        self.correlations
            .iter()
            .find(|(a, b, _)| (a == first && b == second) || (a == second && b == first))
            .map(|(_, _, rho)| *rho)
    }
}

// ---- the file as written -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PortfolioMarginFile {
    #[serde(default)]
    collateral: PortfolioCollateral,
    #[serde(deserialize_with = "deserialize_decimal")]
    im_factor: Decimal,
    #[serde(deserialize_with = "deserialize_decimal")]
    max_offset: Decimal,
    #[serde(default)]
    correlations: Vec<CorrelationFile>,
    #[serde(default)]
    historical: Option<HistoricalFile>,
    underlyings: IndexMap<String, UnderlyingFile>,
    #[serde(default)]
    vol_scaled: IndexMap<String, crate::vol_scaled::VolScaledFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorrelationFile {
    pair: [String; 2],
    #[serde(deserialize_with = "deserialize_decimal")]
    rho: Decimal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoricalFile {
    #[serde(deserialize_with = "deserialize_decimal")]
    horizon_days: Decimal,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    lambda: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    level: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnderlyingFile {
    price_moves: Vec<DecimalText>,
    #[serde(default)]
    vol_shocks: Option<Vec<VolShock>>,
    #[serde(default)]
    vol_shock_mode: Option<VolShockMode>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    extended_weight: Option<Decimal>,
    #[serde(default)]
    extended_vol: Option<VolShock>,
    #[serde(deserialize_with = "deserialize_decimal")]
    vol_shock_up: Decimal,
    #[serde(deserialize_with = "deserialize_decimal")]
    vol_shock_down: Decimal,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    vol_up_floor: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    vol_power_short: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    vol_power_long: Option<Decimal>,
    #[serde(default)]
    extended_moves: Vec<DecimalText>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    extended_dampener: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    min_delta_rate: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    hedged_delta_rate: Option<Decimal>,
    #[serde(default)]
    min_delta_combine: Option<Combine>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    short_option_minimum: Option<Decimal>,
    #[serde(default)]
    short_option_combine: Option<Combine>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    roll_shock: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    delta_shock_threshold: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    delta_shock_rate: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    half_spread: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    impact: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    adv_usd: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    concentration_threshold_usd: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    concentration_rate: Option<Decimal>,
}

/// A decimal inside an array (serde's `deserialize_with` does not reach array elements).
#[derive(Deserialize)]
#[serde(transparent)]
struct DecimalText(#[serde(deserialize_with = "deserialize_decimal")] Decimal);

struct Check<'a> {
    file: &'a str,
    path: String,
}

impl Check<'_> {
    fn number(&self, field: &str, value: Decimal, low: f64, high: f64) -> Result<f64, InputError> {
        let number = value.to_f64().unwrap_or(f64::NAN);
        if !(number >= low && number <= high) {
            return Err(InputError::new(
                self.file,
                format!("{}.{field}", self.path),
                format!("must be between {low} and {high}, found {value}"),
            ));
        }
        Ok(number)
    }

    fn optional(
        &self,
        field: &str,
        value: Option<Decimal>,
        default: f64,
        low: f64,
        high: f64,
    ) -> Result<f64, InputError> {
        value.map_or(Ok(default), |value| self.number(field, value, low, high))
    }

    fn moves(
        &self,
        field: &str,
        values: &[DecimalText],
        low: f64,
        high: f64,
    ) -> Result<Vec<f64>, InputError> {
        values
            .iter()
            .enumerate()
            .map(|(index, value)| self.number(&format!("{field}[{index}]"), value.0, low, high))
            .collect()
    }
}

pub(crate) fn validate(
    file: &str,
    raw: PortfolioMarginFile,
) -> Result<PortfolioMarginParams, InputError> {
    let top = Check {
        file,
        path: "portfolio_margin".to_owned(),
    };
    let im_factor = top.number("im_factor", raw.im_factor, 1.0, 10.0)?;
    let max_offset = top.number("max_offset", raw.max_offset, 0.0, 1.0)?;
    let mut correlations = Vec::with_capacity(raw.correlations.len());
    for (index, correlation) in raw.correlations.into_iter().enumerate() {
        let check = Check {
            file,
            path: format!("portfolio_margin.correlations[{index}]"),
        };
        let rho = check.number("rho", correlation.rho, -1.0, 1.0)?;
        let [first, second] = correlation.pair;
        if first == second {
            return Err(InputError::new(
                file,
                format!("{}.pair", check.path),
                "a correlation pairs two different underlyings",
            ));
        }
        correlations.push((first, second, rho));
    }
    let historical = match raw.historical {
        None => None,
        Some(historical) => {
            let check = Check {
                file,
                path: "portfolio_margin.historical".to_owned(),
            };
            Some(HistoricalParams {
                horizon_days: {
                    let days = check.number("horizon_days", historical.horizon_days, 1.0, 30.0)?;
                    if days.fract() != 0.0 {
                        return Err(InputError::new(
                            file,
                            "portfolio_margin.historical.horizon_days",
                            "must be a whole number of days",
                        ));
                    }
                    days as u32
                },
                lambda: check.optional("lambda", historical.lambda, 0.94, 0.5, 0.9999)?,
                level: check.optional("level", historical.level, 0.975, 0.9, 0.9999)?,
            })
        }
    };
    let mut underlyings = IndexMap::new();
    for (name, underlying) in raw.underlyings {
        let check = Check {
            file,
            path: format!("portfolio_margin.underlyings.{name}"),
        };
        let price_moves = check.moves("price_moves", &underlying.price_moves, -0.99, 10.0)?;
        if !price_moves.contains(&0.0) {
            return Err(InputError::new(
                file,
                format!("{}.price_moves", check.path),
                "must include the unchanged price, 0",
            ));
        }
        let adv_usd = check.optional("adv_usd", underlying.adv_usd, 0.0, 0.0, 1e15)?;
        let vol_shocks = underlying
            .vol_shocks
            .unwrap_or_else(|| vec![VolShock::Up, VolShock::Unchanged, VolShock::Down]);
        if vol_shocks.is_empty() {
            return Err(InputError::new(
                file,
                format!("{}.vol_shocks", check.path),
                "at least one volatility shock is needed",
            ));
        }
        let extended_weight = underlying
            .extended_weight
            .map(|weight| check.number("extended_weight", weight, 0.0, 1.0))
            .transpose()?;
        let params = UnderlyingParams {
            price_moves,
            vol_shocks,
            vol_shock_mode: underlying.vol_shock_mode.unwrap_or(VolShockMode::Relative),
            extended_weight,
            extended_vol: underlying.extended_vol.unwrap_or(VolShock::Up),
            vol_shock_up: check.number("vol_shock_up", underlying.vol_shock_up, 0.0, 10.0)?,
            vol_shock_down: check.number("vol_shock_down", underlying.vol_shock_down, 0.0, 0.99)?,
            vol_up_floor: check.optional("vol_up_floor", underlying.vol_up_floor, 0.0, 0.0, 5.0)?,
            vol_power_short: check.optional(
                "vol_power_short",
                underlying.vol_power_short,
                0.30,
                0.0,
                2.0,
            )?,
            vol_power_long: check.optional(
                "vol_power_long",
                underlying.vol_power_long,
                0.13,
                0.0,
                2.0,
            )?,
            extended_moves: check.moves(
                "extended_moves",
                &underlying.extended_moves,
                -0.99,
                100.0,
            )?,
            extended_dampener: check.optional(
                "extended_dampener",
                underlying.extended_dampener,
                0.16,
                0.0,
                100.0,
            )?,
            min_delta_rate: check.optional(
                "min_delta_rate",
                underlying.min_delta_rate,
                0.0,
                0.0,
                1.0,
            )?,
            hedged_delta_rate: check.optional(
                "hedged_delta_rate",
                underlying.hedged_delta_rate,
                0.0,
                0.0,
                1.0,
            )?,
            min_delta_combine: underlying.min_delta_combine.unwrap_or(Combine::Floor),
            short_option_minimum: check.optional(
                "short_option_minimum",
                underlying.short_option_minimum,
                0.0,
                0.0,
                1.0,
            )?,
            short_option_combine: underlying.short_option_combine.unwrap_or(Combine::Floor),
            roll_shock: check.optional("roll_shock", underlying.roll_shock, 0.0, 0.0, 1.0)?,
            delta_shock_threshold: check.optional(
                "delta_shock_threshold",
                underlying.delta_shock_threshold,
                0.0,
                0.0,
                1e15,
            )?,
            delta_shock_rate: check.optional(
                "delta_shock_rate",
                underlying.delta_shock_rate,
                0.0,
                0.0,
                1.0,
            )?,
            half_spread: check.optional("half_spread", underlying.half_spread, 0.0, 0.0, 0.5)?,
            impact: check.optional("impact", underlying.impact, 0.0, 0.0, 10.0)?,
            adv_usd,
            concentration_threshold_usd: check.optional(
                "concentration_threshold_usd",
                underlying.concentration_threshold_usd,
                0.0,
                0.0,
                1e15,
            )?,
            concentration_rate: check.optional(
                "concentration_rate",
                underlying.concentration_rate,
                0.0,
                0.0,
                1.0,
            )?,
        };
        if params.impact > 0.0 && params.adv_usd <= 0.0 {
            return Err(InputError::new(
                file,
                format!("{}.adv_usd", check.path),
                "a positive average daily volume is needed when impact is charged",
            ));
        }
        underlyings.insert(name, params);
    }
    let mut vol_scaled = IndexMap::new();
    for (name, block) in raw.vol_scaled {
        let path = format!("portfolio_margin.vol_scaled.{name}");
        if !underlyings.contains_key(&name) {
            return Err(InputError::new(
                file,
                path,
                "scales the grid of an underlying, but [portfolio_margin.underlyings] has none by this name",
            ));
        }
        let range = crate::vol_scaled::validate(file, &path, block)?;
        vol_scaled.insert(name, range);
    }
    Ok(PortfolioMarginParams {
        collateral: raw.collateral,
        im_factor,
        max_offset,
        correlations,
        historical,
        underlyings,
        vol_scaled,
    })
}
