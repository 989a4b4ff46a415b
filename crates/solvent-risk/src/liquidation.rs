//! Liquidation prices: the price of one instrument at which a margin pool's equity falls to its
//! maintenance margin (health 1), everything else fixed (DESIGN.md 6.3).
//!
//! The pool's `equity(p) - MM(p)` is continuous in the price `p` (tier deductions make MM
//! continuous across brackets; OKX's tiers count contracts, which a price does not change, so its
//! whole-position rate is one rate along the way) and monotone for every position the standard
//! rules cover, so the
//! root is found by bracketing and bisection; this handles bracket changes on the way, inverse
//! P&L and options alike. For an isolated linear position inside one bracket the closed form
//! (Hyperliquid) `liq = mark - side * (equity - MM) / |size| / (1 - mmr * side)` gives the same
//! price; the tests check one against the other.

use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use solvent_core::money::PositionSide;
use solvent_core::rounding;

use crate::error::RiskError;

/// Bisection steps: each halves the bracket, 200 reach the resolution of a double from any
/// starting bracket the search below builds.
const BISECTION_STEPS: usize = 200;
/// The search for a bracket stops at prices this many times the mark (or this fraction of it).
const SEARCH_SPAN: f64 = 1e6;

/// Finds the price at which `surplus(p) = equity(p) - MM(p)` crosses zero, searching from `mark`
/// in the adverse direction (down for a long, up for a short) when the
/// surplus is positive, and in the favourable direction (where health would be restored) when it
/// is not. `None` when no such price exists within six orders of magnitude of the mark and within
/// `bounds`, the prices at which the position's figures stay representable.
///
/// # Errors
/// [`RiskError`] from evaluating the surplus.
pub fn solve<F>(
    mark: Decimal,
    side: PositionSide,
    bounds: (Decimal, Decimal),
    mut surplus: F,
) -> Result<Option<Decimal>, RiskError>
where
    F: FnMut(Decimal) -> Result<Decimal, RiskError>,
{
    let Some(mark_f64) = mark.to_f64().filter(|m| *m > 0.0) else {
        return Ok(None);
    };
    let at_mark = surplus(mark)?;
    if at_mark.is_zero() {
        return Ok(Some(mark));
    }
    let safe = at_mark > Decimal::ZERO;
    // Prices fall when a long is at risk and rise when a short is; once past, look the other way.
    let goes_down = (side == PositionSide::Long) == safe;
    let (lowest, highest) = bounds;
    let mut evaluate = |price: f64| -> Result<Option<Decimal>, RiskError> {
        match Decimal::from_f64(price) {
            Some(decimal) if decimal > Decimal::ZERO && decimal >= lowest && decimal <= highest => {
                surplus(decimal).map(Some)
            }
            _ => Ok(None),
        }
    };
    // Grow the bracket geometrically until the surplus changes sign.
    let mut near = mark_f64;
    let mut far = mark_f64;
    let mut found = false;
    let mut factor = 1.0625_f64;
    while factor <= SEARCH_SPAN {
        far = if goes_down {
            mark_f64 / factor
        } else {
            mark_f64 * factor
        };
        match evaluate(far)? {
            Some(value) if (value > Decimal::ZERO) != safe || value.is_zero() => {
                found = true;
                break;
            }
            Some(_) => near = far,
            None => break,
        }
        factor *= 2.0;
    }
    if !found {
        return Ok(None);
    }
    for _ in 0..BISECTION_STEPS {
        let middle = 0.5 * (near + far);
        if middle == near || middle == far {
            break;
        }
        match evaluate(middle)? {
            Some(value) if (value > Decimal::ZERO) == safe && !value.is_zero() => near = middle,
            Some(_) => far = middle,
            None => break,
        }
    }
    // Report the side of the bracket where the pool is already at or below health 1, so a
    // liquidation price is never shown beyond where liquidation really starts.
    let boundary = if safe { far } else { near };
    Ok(Decimal::from_f64(boundary).map(|price| conservative(price, side)))
}

/// Rounds a liquidation price to about eight significant digits toward the position's risk:
/// up for a long (liquidated sooner as the price falls), down for a short.
#[must_use]
pub fn conservative(price: Decimal, side: PositionSide) -> Decimal {
    let magnitude = price.to_f64().map_or(0.0, |p| p.abs().log10().floor());
    let decimals = (7.0 - magnitude).clamp(0.0, 18.0);
    let decimals = decimals.to_u32().unwrap_or(8);
    let rounded = if side == PositionSide::Long {
        rounding::requirement(price, decimals)
    } else {
        rounding::credit(price, decimals)
    };
    rounded.normalize()
}

/// Puts a liquidation price on the venue's price grid, rounded toward safety as
/// [`conservative`] rounds it: up to the tick at or above it for a long, down to the tick at or
/// below it for a short. A long is liquidated once the mark is at or below its liquidation
/// price, so the tick shown is the last price of the grid before that (the first one that
/// liquidates is a tick lower): the figure never lies past where liquidation starts. A tick that
/// is not positive, or a price the division by it overflows, leaves the price as it is.
#[must_use]
pub fn on_tick(price: Decimal, side: PositionSide, tick: Decimal) -> Decimal {
    if tick <= Decimal::ZERO {
        return price;
    }
    let Some(ticks) = price.checked_div(tick) else {
        return price;
    };
    let whole = if side == PositionSide::Long {
        ticks.ceil()
    } else {
        ticks.floor()
    };
    whole
        .checked_mul(tick)
        .map_or(price, |on_grid| on_grid.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_liquidation_price_goes_to_the_tick_on_the_side_of_the_risk() {
        // OKX BTC-USDT-SWAP, tick 0.1: a long liquidated at or below 54,271.357 is shown at
        // 54,271.4, the grid's last price before it; a short at 65,346.539 at 65,346.5.
        assert_eq!(
            on_tick(dec!(54271.357), PositionSide::Long, dec!(0.1)),
            dec!(54271.4)
        );
        assert_eq!(
            on_tick(dec!(65346.539), PositionSide::Short, dec!(0.1)),
            dec!(65346.5)
        );
        // On the grid already: unchanged. Deribit's BTC-PERPETUAL, tick 0.5.
        assert_eq!(
            on_tick(dec!(54271.5), PositionSide::Long, dec!(0.5)),
            dec!(54271.5)
        );
        assert_eq!(
            on_tick(dec!(54271.6), PositionSide::Long, dec!(0.5)),
            dec!(54272)
        );
        assert_eq!(
            on_tick(dec!(54271.6), PositionSide::Short, dec!(0.5)),
            dec!(54271.5)
        );
        // A tick that is no tick, or one the price's division by overflows, changes nothing.
        assert_eq!(
            on_tick(dec!(1.23), PositionSide::Long, Decimal::ZERO),
            dec!(1.23)
        );
        let huge = dec!(1000000000000);
        assert_eq!(on_tick(huge, PositionSide::Long, Decimal::new(1, 28)), huge);
    }

    const WIDE: (Decimal, Decimal) = (dec!(0.000000000001), dec!(1000000000000));

    #[test]
    fn a_linear_long_is_liquidated_where_equity_meets_maintenance() {
        // Isolated long 1 BTC from 60,000 with 6,000 margin, MM rate 0.5%:
        // 6,000 + (p - 60,000) = 0.005 p  =>  p = 54,000 / 0.995 = 54,271.3567...
        let root = solve(dec!(60000), PositionSide::Long, WIDE, |p| {
            Ok(dec!(6000) + (p - dec!(60000)) - p * dec!(0.005))
        })
        .unwrap()
        .unwrap();
        assert_eq!(root, dec!(54271.357));
    }

    #[test]
    fn a_short_is_liquidated_above() {
        // Short 2 ETH from 3,000 with 600 margin, MM 1%: 600 - 2 (p - 3,000) = 0.02 p => p = 6,600 / 2.02.
        let root = solve(dec!(3000), PositionSide::Short, WIDE, |p| {
            Ok(dec!(600) - dec!(2) * (p - dec!(3000)) - dec!(0.02) * p)
        })
        .unwrap()
        .unwrap();
        assert_eq!(root, dec!(3267.3267)); // 3267.32673... rounded down for a short
    }

    #[test]
    fn a_fully_collateralised_long_has_no_liquidation_price() {
        assert_eq!(
            solve(dec!(100), PositionSide::Long, WIDE, |p| Ok(
                dec!(100) + (p - dec!(100))
            ))
            .unwrap(),
            None
        );
    }

    #[test]
    fn a_position_already_past_reports_the_price_that_restores_health() {
        // Surplus = p - 110: at mark 100 it is negative; health comes back at 110.
        let root = solve(dec!(100), PositionSide::Long, WIDE, |p| Ok(p - dec!(110)))
            .unwrap()
            .unwrap();
        assert_eq!(root, dec!(110));
    }
}
