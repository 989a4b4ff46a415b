//! The margin report of one account (DESIGN.md 6.6, JSON shape in section 11).

use compact_str::CompactString;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::portfolio::MarginMode;
use solvent_core::venue::HealthThresholds;
use std::fmt;

use crate::standard::Basis;
use crate::valuation::MarkSource;

/// Where an account stands (DESIGN.md 8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Health above the margin-call threshold.
    Healthy,
    /// Health at or below the margin-call threshold: a call states the deposit that restores IM.
    MarginCall,
    /// Health at or below the reduce-only threshold: new risk is refused.
    ReduceOnly,
    /// Health at or below the liquidation threshold.
    Liquidating,
    /// Equity at or below zero.
    Bankrupt,
}

impl fmt::Display for AccountState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Healthy => "healthy",
            Self::MarginCall => "margin_call",
            Self::ReduceOnly => "reduce_only",
            Self::Liquidating => "liquidating",
            Self::Bankrupt => "bankrupt",
        })
    }
}

/// Health, `equity / maintenance margin` (Binance's uniMMR form, DESIGN.md 6.6): `None` without
/// a requirement.
#[must_use]
pub fn health(equity: Decimal, maintenance_margin: Decimal) -> Option<f64> {
    if maintenance_margin <= Decimal::ZERO {
        return None;
    }
    (equity / maintenance_margin)
        .to_f64()
        .filter(|value| value.is_finite())
}

/// A pool's health and state from its exact equity and maintenance margin, as the margin report
/// gives them.
#[must_use]
pub fn standing(
    equity: Decimal,
    maintenance_margin: Decimal,
    thresholds: &HealthThresholds,
) -> (Option<f64>, AccountState) {
    (
        health(equity, maintenance_margin),
        AccountState::classify(
            equity.to_f64().unwrap_or(0.0),
            maintenance_margin.to_f64().unwrap_or(0.0),
            thresholds,
        ),
    )
}

impl AccountState {
    /// The state for a given equity and maintenance margin. An account with no requirement and
    /// non-negative equity is healthy; one with equity at or below zero and something at risk is
    /// bankrupt.
    #[must_use]
    pub fn classify(equity: f64, maintenance_margin: f64, thresholds: &HealthThresholds) -> Self {
        if maintenance_margin <= 0.0 {
            return if equity < 0.0 {
                Self::Bankrupt
            } else {
                Self::Healthy
            };
        }
        if equity <= 0.0 {
            return Self::Bankrupt;
        }
        let health = equity / maintenance_margin;
        if health > thresholds.margin_call {
            Self::Healthy
        } else if health > thresholds.reduce_only {
            Self::MarginCall
        } else if health > thresholds.liquidation {
            Self::ReduceOnly
        } else {
            Self::Liquidating
        }
    }
}

/// One line of the margin waterfall: what it is, how much, and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Component {
    /// `collateral:BTC`, `upnl:BTCUSDT`, `initial_margin:BTCUSDT`, ...
    pub name: String,
    /// In the report's settlement asset, rounded toward the venue.
    pub amount: Amount,
    /// The arithmetic behind the amount, in words.
    pub detail: String,
}

/// What a position's liquidation price is a level of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationLevel {
    /// The instrument's own price, in its quote (a perpetual's or future's mark).
    Mark,
    /// The underlying's index in USD: an option, whose premium is repriced from the index.
    Index,
}

/// One position in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PositionReport {
    /// Instrument name.
    pub instrument: CompactString,
    /// Signed size.
    pub size: Quantity,
    /// Mark price used (zero for a worthless option).
    pub mark_price: Amount,
    /// Where the mark came from.
    pub mark_source: MarkSource,
    /// Settlement asset of the instrument.
    pub settlement: CompactString,
    /// Signed notional (perpetuals, futures) or signed premium value (options), in the report's
    /// settlement asset.
    pub value: Amount,
    /// Unrealised P&L in the report's settlement asset.
    pub upnl: Amount,
    /// Initial margin in the report's settlement asset (rounded up).
    pub initial_margin: Amount,
    /// Maintenance margin in the report's settlement asset (rounded up).
    pub maintenance_margin: Amount,
    /// Share of the initial margin of the pool the position belongs to (cross pool, or 1 for an
    /// isolated position, which bears all of its own).
    pub im_share: f64,
    /// The level at which the pool's health reaches 1, every other price and the collateral
    /// fixed: the instrument's own price for a perpetual or future; for an option its
    /// underlying's index (USD), the option repriced from it (see `liquidation_price_of`).
    /// Under portfolio margin a cross position's level is where its underlying's move (every
    /// position on it moving) liquidates the account.
    pub liquidation_price: Option<Price>,
    /// What `liquidation_price` is a level of.
    pub liquidation_price_of: LiquidationLevel,
    /// Distance to the liquidation level in percent of the level now (the mark, or an option's
    /// underlying index), positive while the position is safe, negative when it is already past.
    pub distance_to_liquidation_pct: Option<f64>,
    /// The same distance in one-day standard deviations of the underlying (from implied volatility).
    pub distance_to_liquidation_sd: Option<f64>,
    /// Whether the position has its own isolated margin.
    pub isolated: bool,
    /// Isolated positions: margin plus unrealised P&L, in the report's settlement asset.
    pub isolated_equity: Option<Amount>,
    /// Isolated positions: equity / maintenance margin.
    pub isolated_health: Option<f64>,
    /// How the venue's rule produced the requirement.
    pub margin_basis: Basis,
}

/// One settlement currency's sub-portfolio under segregated portfolio margin (Deribit S:PM): its
/// figures in its own coin, as the venue shows them, and in USD so the currencies add up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurrencyMargin {
    /// The coin (`BTC`, `USDC`): the settlement asset of the sub-portfolio's positions.
    pub currency: CompactString,
    /// USD price of one coin used for the USD figures (the coin's index).
    pub price_usd: Amount,
    /// The coin's balance plus the unrealised P&L and option value of the positions settled in
    /// it, in the coin, rounded down.
    pub equity: Amount,
    /// Initial margin of the sub-portfolio in the coin, rounded up.
    pub initial_margin: Amount,
    /// Maintenance margin of the sub-portfolio in the coin, rounded up.
    pub maintenance_margin: Amount,
    /// `equity - initial_margin`, in the coin.
    pub available: Amount,
    /// `equity / maintenance_margin` of this currency alone; `None` when it requires nothing.
    pub health: Option<f64>,
    /// The currency's state: under segregated margin one currency's surplus does not cover
    /// another's deficit.
    pub state: AccountState,
    /// `equity` in USD, to the cent, rounded down.
    pub equity_usd: Amount,
    /// `initial_margin` in USD, to the cent, rounded up.
    pub initial_margin_usd: Amount,
    /// `maintenance_margin` in USD, to the cent, rounded up.
    pub maintenance_margin_usd: Amount,
}

/// The limit that binds `withdrawable`: the smallest of the amounts DESIGN.md 7 allows out, so
/// a withdrawable of 0 on a large equity says why (no cash-like collateral, or no equity above
/// the initial margin). On a tie, the cash-like collateral is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawLimit {
    /// The cash-like collateral: coins counted after their haircut and unrealised profit make
    /// equity but are not paid out.
    CashLikeCollateral,
    /// The equity above the cross pool's initial margin (`available`): more out would leave
    /// the pool below its initial margin.
    InitialMargin,
    /// Under segregated portfolio margin, the cash-like currencies' own equity above their own
    /// initial margin: another currency's surplus does not pay out.
    CurrencyInitialMargin,
    /// The cash-like collateral above the cross positions' maintenance margin, where the venue
    /// keeps that much in the wallet whatever the unrealised profit (`[venue] withdrawal =
    /// "wallet_above_maintenance_margin"`, Binance).
    WalletMaintenanceMargin,
    /// The cash-like coins' wallets less the unrealised loss of the cross positions settled in
    /// each, where the venue pays out neither unrealised profit nor a coin its own positions'
    /// losses hold (`[venue] withdrawal = "wallet_less_unrealised_loss"`, Bybit).
    WalletUnrealisedLoss,
}

impl WithdrawLimit {
    /// The limit's name as the JSON writes it (`cash_like_collateral`, `initial_margin`,
    /// `currency_initial_margin`, `wallet_maintenance_margin`, `wallet_unrealised_loss`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::CashLikeCollateral => "cash_like_collateral",
            Self::InitialMargin => "initial_margin",
            Self::CurrencyInitialMargin => "currency_initial_margin",
            Self::WalletMaintenanceMargin => "wallet_maintenance_margin",
            Self::WalletUnrealisedLoss => "wallet_unrealised_loss",
        }
    }

    /// The limit in words, as the tables name it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::CashLikeCollateral => "cash-like collateral",
            Self::InitialMargin => "equity above IM",
            Self::CurrencyInitialMargin => "each currency's equity above its IM",
            Self::WalletMaintenanceMargin => "cash-like collateral above MM",
            Self::WalletUnrealisedLoss => "cash-like collateral less unrealised losses",
        }
    }
}

/// The full margin report of one account. Account-level figures describe the cross pool, the
/// margin the positions without isolated margin share; isolated positions carry their own figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MarginReport {
    /// Account id.
    pub account: CompactString,
    /// Margin mode.
    pub mode: MarginMode,
    /// Asset every amount is expressed in.
    pub settlement_asset: CompactString,
    /// The market snapshot's instant (written as RFC 3339 text; formatted only when written,
    /// since monitoring builds many reports that are never printed).
    #[serde(serialize_with = "serialize_instant")]
    pub timestamp: jiff::Timestamp,
    /// Collateral value + unrealised P&L + option value (cross pool), rounded down.
    pub equity: Amount,
    /// Collateral after haircut tiers, loans at full value.
    pub collateral_value: Amount,
    /// Sum of unrealised P&L of cross perpetuals and futures.
    pub unrealized_pnl: Amount,
    /// Net market value of cross options (long minus short).
    pub option_value: Amount,
    /// Initial margin of the cross pool, rounded up.
    pub initial_margin: Amount,
    /// Maintenance margin of the cross pool, rounded up.
    pub maintenance_margin: Amount,
    /// `equity - initial_margin`.
    pub available: Amount,
    /// `max(0, min(cash-like collateral, equity - initial_margin))` (DESIGN.md 7, no buffer policy),
    /// the cash-like collateral first lowered by the venue's rule (`[venue] withdrawal`: less the
    /// cross maintenance margin, or each coin less its positions' unrealised loss); under
    /// segregated portfolio margin, no more than the cash-like currencies' own `available`, each
    /// currency paying out only above its own initial margin.
    pub withdrawable: Amount,
    /// Which of the limits on `withdrawable` binds it (added after the first release of the
    /// JSON: readers that do not know the field may ignore it).
    pub withdrawable_limit: WithdrawLimit,
    /// Where the venue keeps the cross positions' maintenance margin in the wallet (`[venue]
    /// withdrawal = "wallet_above_maintenance_margin"`): the cash-like collateral above that
    /// margin, negative when the wallet holds less; `None` under the default rule. What a
    /// withdrawal is judged by (`pretrade::decide_withdrawal`); not in the JSON, where
    /// `withdrawable` and `withdrawable_limit` say it.
    #[serde(skip)]
    pub wallet_above_maintenance: Option<Amount>,
    /// Where the venue pays a coin out only beyond the unrealised loss of the cross positions
    /// settled in it (`[venue] withdrawal = "wallet_less_unrealised_loss"`): each held coin's
    /// wallet (its cash-like collateral, or its market value for a coin that is not cash) plus
    /// `min(0, unrealised P&L of the cross perpetuals and futures settled in it)`, in the report
    /// asset, in the order of the balances; negative where the wallet does not cover that loss.
    /// Empty under the other rules. What a withdrawal of that coin is judged by
    /// (`pretrade::decide_withdrawal`); not in the JSON.
    #[serde(skip)]
    pub wallet_less_unrealised_loss: Vec<(CompactString, Amount)>,
    /// `equity / maintenance_margin`; `None` when nothing requires margin. Under segregated
    /// portfolio margin, the health of the weakest currency (see `currencies`).
    pub health: Option<f64>,
    /// State from health (DESIGN.md 8.1); under segregated portfolio margin, the worst
    /// currency's state.
    pub state: AccountState,
    /// Under segregated portfolio margin (Deribit S:PM), each settlement currency's figures in
    /// its coin and in USD, in order of first appearance (balances, then positions); empty
    /// otherwise (and then left out of the JSON).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub currencies: Vec<CurrencyMargin>,
    /// Under cross-collateral portfolio margin, reported in a currency no scenario moves, each
    /// scanned underlying's worst weighted scenario P&L on either side of its price (USD):
    /// which is worse sets the underlying's direction in the cross-underlying offset, and the
    /// gap between them (a P&L, closed by prices, time and volatility) how far the scenarios
    /// must move before it can turn. Read by monitoring; not part of the printed report.
    #[serde(skip)]
    pub scenario_sides: Vec<crate::portfolio_margin::ScenarioSides>,
    /// Interest accrued and not yet paid on the account's loans, in the report asset (rounded
    /// up): already inside the loans' balances, so inside `collateral_value` (a loan at full
    /// value) and the loans' borrow margins; each loan's part is a `borrow_interest:ASSET`
    /// component. Zero (and left out of the JSON) when no loan owes interest.
    #[serde(skip_serializing_if = "no_amount")]
    pub accrued_interest: Amount,
    /// The waterfall: every amount that makes up equity and the requirements.
    pub components: Vec<Component>,
    /// Per position.
    pub positions: Vec<PositionReport>,
    /// Things the user should know that do not stop the computation.
    pub warnings: Vec<String>,
    /// Under portfolio margin, each underlying's nearest liquidating move as the report's own
    /// search found it for the positions' liquidation levels (`None`: no move within -99% ..
    /// +1000% liquidates): the reverse stress reuses it rather than search that direction
    /// again. Not part of the report's JSON (the moves are, through the reverse stress).
    #[serde(skip)]
    pub nearest_moves: Vec<(String, Option<f64>)>,
}

impl MarginReport {
    /// By how much the wallet's cash-like collateral falls short of the cross positions'
    /// maintenance margin, where the venue keeps that margin in the wallet (`[venue] withdrawal
    /// = "wallet_above_maintenance_margin"`) and the pool has one; `None` otherwise. What a
    /// withdrawal and a move of isolated margin are refused for.
    #[must_use]
    pub fn wallet_shortfall(&self) -> Option<Decimal> {
        let above = self.wallet_above_maintenance?.value();
        (above < Decimal::ZERO && !self.maintenance_margin.is_zero()).then_some(-above)
    }

    /// By how much `asset`'s wallet falls short of the unrealised loss of the cross positions
    /// settled in it, where the venue keeps that much of the coin (`[venue] withdrawal =
    /// "wallet_less_unrealised_loss"`); `None` when it covers the loss, the coin is not held,
    /// or the rule is another. What a withdrawal of `asset` is refused by.
    #[must_use]
    pub fn unrealised_loss_shortfall(&self, asset: &str) -> Option<Decimal> {
        let (_, left) = self
            .wallet_less_unrealised_loss
            .iter()
            .find(|(coin, _)| coin == asset)?;
        (left.value() < Decimal::ZERO).then_some(-left.value())
    }
}

/// Whether an optional figure of the JSON is zero (and so left out).
fn no_amount(amount: &Amount) -> bool {
    amount.is_zero()
}

/// An instant as its RFC 3339 text.
fn serialize_instant<S: serde::Serializer>(
    instant: &jiff::Timestamp,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_thresholds() {
        let thresholds = HealthThresholds::default();
        let cases = [
            (100.0, 0.0, AccountState::Healthy),
            (0.0, 0.0, AccountState::Healthy),
            (-1.0, 0.0, AccountState::Bankrupt),
            (151.0, 100.0, AccountState::Healthy),
            (150.0, 100.0, AccountState::MarginCall),
            (120.0, 100.0, AccountState::ReduceOnly),
            (105.0, 100.0, AccountState::Liquidating),
            (0.0, 100.0, AccountState::Bankrupt),
        ];
        for (equity, maintenance, expected) in cases {
            assert_eq!(
                AccountState::classify(equity, maintenance, &thresholds),
                expected,
                "{equity}/{maintenance}"
            );
        }
    }
}
