//! Conversion of an underlying's USD P&L into the report currency (a coin-margined account's
//! equity moves with the coin).

/// Converts a USD P&L of underlying `u` into the report currency. When the report currency is
/// itself priced by `u` (a coin-margined account), the account's whole USD equity is re-expressed
/// at the moved price.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReportCurrency {
    /// USD price of one unit of the report asset.
    pub price_usd: f64,
    /// Underlying index (in the book) that prices the report asset, if any.
    pub priced_by: Option<usize>,
    /// The account's equity in USD (used only when `priced_by` is set).
    pub equity_usd: f64,
}

impl ReportCurrency {
    /// A joint P&L (all underlyings moving, `moves` per book underlying) in the report currency.
    pub(super) fn convert_joint(&self, pnl_usd: f64, moves: &[Vec<f64>], scenario: usize) -> f64 {
        match self.priced_by {
            Some(underlying) => {
                let price_move = moves
                    .get(underlying)
                    .and_then(|m| m.get(scenario))
                    .copied()
                    .unwrap_or(0.0);
                self.convert(underlying, pnl_usd, price_move)
            }
            None => pnl_usd / self.price_usd,
        }
    }

    pub(super) fn convert(&self, underlying: usize, pnl_usd: f64, price_move: f64) -> f64 {
        if self.priced_by == Some(underlying) {
            let moved = self.price_usd * (1.0 + price_move);
            (self.equity_usd + pnl_usd) / moved - self.equity_usd / self.price_usd
        } else {
            pnl_usd / self.price_usd
        }
    }
}
