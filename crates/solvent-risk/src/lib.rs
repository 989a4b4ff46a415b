//! # solvent-risk
//!
//! Margin models over an immutable snapshot: [`valuation`] marks every instrument to market (option
//! marks from Black-76 on the volatility surface), [`collateral`] values balances through
//! progressive haircut tiers, [`standard`] applies each venue's rule to one position (tiered
//! brackets with deductions, Deribit's size-linear rule, Drift's square-root IMF, dYdX's
//! open-interest-scaled IMF, Deribit's option margin), [`account`] assembles the cross pool and
//! isolated positions into a [`report::MarginReport`] whose every figure is explained,
//! [`liquidation`] finds liquidation prices, and [`whatif`] answers "what if I trade this?".
//!
//! Ledger figures are exact decimals; the rounding toward the venue happens in
//! `solvent_core::rounding` and nowhere else.

#![deny(missing_docs)]

pub mod account;
pub mod allocation;
pub mod backtest;
pub mod checks;
pub mod collateral;
pub mod error;
pub mod filtered;
pub mod history;
pub mod liquidation;
mod move_health;
pub mod portfolio_margin;
pub mod portfolio_report;
pub mod prepared;
pub mod pretrade;
pub mod report;
mod segregated;
pub mod standard;
pub mod stress;
pub mod valuation;
pub mod vol_scaled;
pub mod whatif;

pub use account::margin_report;
pub use error::RiskError;
pub use report::{AccountState, CurrencyMargin, MarginReport, WithdrawLimit};
pub use valuation::MarketView;
