//! Collateral value with progressive haircut tiers, and the margin on borrowed balances
//! (DESIGN.md 6.2).

use rust_decimal::Decimal;
use solvent_core::venue::{CollateralSchedule, CollateralTier};

/// The value of one balance as collateral, in USD.
#[derive(Clone, Debug, PartialEq)]
pub struct CollateralValue {
    /// USD value at the index, before haircuts (negative when borrowed).
    pub market_value_usd: Decimal,
    /// USD value after the progressive tiers (a loan counts at full value).
    pub collateral_value_usd: Decimal,
    /// Initial margin on a loan, in USD.
    pub borrow_initial_usd: Decimal,
    /// Maintenance margin on a loan, in USD.
    pub borrow_maintenance_usd: Decimal,
}

/// Value of the part of `market_value` that falls in each tier, times the tier's ratio, like tax
/// brackets (Binance cross-margin collateral ratio tiers, Bybit UTA collateral value ratio).
/// Published Binance example: 6,000 BTC at 20,000 with 100% to 100M and 97.5% from 100M to 120M
/// is worth 100,000,000 + 20,000,000 * 0.975 = 119,500,000.
#[must_use]
pub fn tiered_value(tiers: &[CollateralTier], market_value: Decimal) -> Decimal {
    let mut remaining = market_value;
    let mut floor = Decimal::ZERO;
    let mut value = Decimal::ZERO;
    for tier in tiers {
        if remaining <= Decimal::ZERO {
            break;
        }
        let width = tier.up_to_usd.map(|up_to| up_to - floor);
        let inside = width.map_or(remaining, |width| remaining.min(width));
        value += inside * tier.ratio;
        remaining -= inside;
        if let Some(up_to) = tier.up_to_usd {
            floor = up_to;
        }
    }
    // Whatever lies beyond a bounded last tier counts at zero.
    value
}

/// The collateral value of a balance of `amount` units priced at `usd_price`. An asset with no
/// schedule counts at zero; a negative balance (a loan) counts at full value and carries the
/// schedule's borrow margins (`loan * rate`).
#[must_use]
pub fn value(
    schedule: Option<&CollateralSchedule>,
    amount: Decimal,
    usd_price: Decimal,
) -> CollateralValue {
    let market_value_usd = amount * usd_price;
    if market_value_usd < Decimal::ZERO {
        let loan = -market_value_usd;
        let (initial, maintenance) = schedule
            .and_then(|s| s.borrow.as_ref())
            .map_or((Decimal::ZERO, Decimal::ZERO), |rates| {
                (loan * rates.initial_rate, loan * rates.maintenance_rate)
            });
        return CollateralValue {
            market_value_usd,
            collateral_value_usd: market_value_usd,
            borrow_initial_usd: initial,
            borrow_maintenance_usd: maintenance,
        };
    }
    CollateralValue {
        market_value_usd,
        collateral_value_usd: schedule
            .map_or(Decimal::ZERO, |s| tiered_value(&s.tiers, market_value_usd)),
        borrow_initial_usd: Decimal::ZERO,
        borrow_maintenance_usd: Decimal::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn binance_btc() -> Vec<CollateralTier> {
        vec![
            CollateralTier {
                up_to_usd: Some(dec!(100000000)),
                ratio: dec!(1),
            },
            CollateralTier {
                up_to_usd: Some(dec!(120000000)),
                ratio: dec!(0.975),
            },
        ]
    }

    #[test]
    fn binance_published_example_6000_btc() {
        // 6,000 BTC x 20,000 = 120,000,000: 100,000,000 x 100% + 20,000,000 x 97.5%.
        assert_eq!(
            tiered_value(&binance_btc(), dec!(6000) * dec!(20000)),
            dec!(119500000)
        );
    }

    #[test]
    fn value_beyond_a_bounded_last_tier_counts_at_zero() {
        assert_eq!(
            tiered_value(&binance_btc(), dec!(150000000)),
            dec!(119500000)
        );
        assert_eq!(tiered_value(&binance_btc(), dec!(50)), dec!(50));
    }

    #[test]
    fn an_open_last_tier_continues() {
        let mut tiers = binance_btc();
        tiers.push(CollateralTier {
            up_to_usd: None,
            ratio: dec!(0.5),
        });
        // 100M at 1 + 20M at 0.975 + 30M at 0.5.
        assert_eq!(tiered_value(&tiers, dec!(150000000)), dec!(134500000));
    }
}
