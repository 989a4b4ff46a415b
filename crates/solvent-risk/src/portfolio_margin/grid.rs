//! The scenario grid of an underlying: standard and extended moves with their volatility
//! shocks (Deribit's risk matrix, Paradex's dampened extended moves).

use super::*;

/// A shocked-down volatility never falls below this fraction of the unshocked one.
pub(super) const MIN_VOL_FRACTION: f64 = 0.01;

/// One scenario of one underlying.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// Relative price move (`-0.16`).
    pub price_move: f64,
    /// Volatility shock.
    pub vol: VolShock,
    /// Weight of the scenario's P&L: 1 on the standard grid, the dampener on extended moves.
    pub weight: f64,
    /// Whether the scenario is an extended move.
    pub extended: bool,
}

impl Scenario {
    /// A readable name: `-16% vol up`, `extended +300% vol up (weight 0.053)`.
    #[must_use]
    pub fn label(&self) -> String {
        let vol = match self.vol {
            VolShock::Up => "vol up",
            VolShock::Unchanged => "vol unchanged",
            VolShock::Down => "vol down",
        };
        let price = format!("{:+}%", (self.price_move * 100.0 * 100.0).round() / 100.0);
        if self.extended {
            format!("extended {price} {vol} (weight {:.3})", self.weight)
        } else {
            format!("{price} {vol}")
        }
    }
}

/// The scenarios of an underlying: every standard move with every configured volatility shock,
/// then the extended moves with their shock, weighted `min(1, dampener / |move|)` (Paradex) or by a
/// fixed weight (SPAN's extreme moves count 35%).
#[must_use]
pub fn scenarios(params: &UnderlyingParams) -> Vec<Scenario> {
    let mut all = Vec::with_capacity(
        params.price_moves.len() * params.vol_shocks.len() + params.extended_moves.len(),
    );
    for &price_move in &params.price_moves {
        for &vol in &params.vol_shocks {
            all.push(Scenario {
                price_move,
                vol,
                weight: 1.0,
                extended: false,
            });
        }
    }
    for &price_move in &params.extended_moves {
        let weight = match params.extended_weight {
            Some(weight) => weight,
            None if price_move == 0.0 => 1.0,
            None => (params.extended_dampener / price_move.abs()).min(1.0),
        };
        all.push(Scenario {
            price_move,
            vol: params.extended_vol,
            weight,
            extended: true,
        });
    }
    all
}

/// Shocked volatility (Deribit's risk matrix, docs/portfolio-margin-sources.md):
/// `sigma * (1 + shock * (30 / max(1, dte))^p)` with `p` the short power below 30 days and the
/// long power after; an up-shocked volatility is at least the absolute level `vol_up_floor`, and a
/// down shock keeps at least 1% of the volatility.
#[must_use]
pub fn shocked_volatility(
    volatility: f64,
    days_to_expiry: f64,
    shock: VolShock,
    params: &UnderlyingParams,
) -> f64 {
    shocked_volatility_scaled(
        volatility,
        vol_shock_scale(days_to_expiry, params),
        shock,
        params,
    )
}

/// The term-structure factor `(30 / max(1, dte))^p` of [`shocked_volatility`], the same for
/// every scenario of one expiry (so computed once per instrument); it grows as the expiry
/// nears (both powers are at least 0).
pub fn vol_shock_scale(days_to_expiry: f64, params: &UnderlyingParams) -> f64 {
    let days = days_to_expiry.max(1.0);
    let power = if days < 30.0 {
        params.vol_power_short
    } else {
        params.vol_power_long
    };
    (30.0 / days).powf(power)
}

/// [`shocked_volatility`] given its term-structure factor `scale`.
pub(super) fn shocked_volatility_scaled(
    volatility: f64,
    scale: f64,
    shock: VolShock,
    params: &UnderlyingParams,
) -> f64 {
    let floor = volatility * MIN_VOL_FRACTION;
    match (params.vol_shock_mode, shock) {
        (_, VolShock::Unchanged) => volatility,
        (VolShockMode::Relative, VolShock::Up) => {
            (volatility * (1.0 + params.vol_shock_up * scale)).max(params.vol_up_floor)
        }
        (VolShockMode::Relative, VolShock::Down) => {
            (volatility * (1.0 - params.vol_shock_down * scale)).max(floor)
        }
        (VolShockMode::Absolute, VolShock::Up) => {
            (volatility + params.vol_shock_up).max(params.vol_up_floor)
        }
        (VolShockMode::Absolute, VolShock::Down) => (volatility - params.vol_shock_down).max(floor),
    }
}
