//! The pre-trade rule: one place decides whether a trade or a withdrawal is accepted, for
//! `solvent whatif`, the engine's pre-trade check and the service. A trade is booked on a copy of
//! the account exactly as the engine's ledger books it ([`book_trades`]), then judged
//! ([`decide_trade`]); a withdrawal is judged on the account without the money
//! ([`decide_withdrawal`]). Refusals are named ([`Refusal`]), with their figures.
//!
//! The rule (TigerBeetle style, a flat ladder, first failure wins):
//! 1. trades that only reduce positions in cross mode are accepted: standard margin is
//!    non-decreasing in `|size|` (property-tested in `standard`), so they cannot raise the
//!    requirement whatever the account's state;
//! 2. an account in `reduce_only` or worse may not increase a position;
//! 3. a trade set that does not raise the initial margin (portfolio mode: reducing one leg of a
//!    hedge can raise it) is accepted;
//! 4. an account in `reduce_only` or worse may not raise its initial margin;
//! 5. every isolated position the trades increase must cover its own initial margin from its own
//!    margin, whatever the cross pool holds;
//! 6. the account must cover its initial margin afterwards.

use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;
use solvent_core::instrument::Instrument;
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::portfolio::{Balance, MarginMode, Portfolio, Position};
use solvent_core::rounding;

use crate::account::{Detail, build_report};
use crate::error::RiskError;
use crate::report::{AccountState, MarginReport};
use crate::standard::Basis;
use crate::valuation::MarketView;
use crate::whatif::trade_position;

/// One trade to book: a signed size of an instrument at a price, with the fee the account pays.
#[derive(Clone, Debug)]
pub struct TradeLeg {
    /// The instrument.
    pub instrument: Arc<Instrument>,
    /// Signed size (negative sells).
    pub size: Decimal,
    /// Execution price.
    pub price: Decimal,
    /// Fee paid by the account, in the settlement asset (negative: a rebate).
    pub fee: Decimal,
}

/// Why a trade or a withdrawal is refused.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The account is in `reduce_only` or worse and the trades would add risk.
    ReduceOnly {
        /// The account's state before the trades.
        state: AccountState,
    },
    /// An isolated position the trades increase would not cover its own initial margin.
    IsolatedInitialMargin {
        /// The isolated position.
        instrument: String,
        /// Its initial margin after the trades.
        initial_margin: Amount,
        /// Its own equity after the trades.
        isolated_equity: Amount,
    },
    /// The account would not cover its initial margin.
    InitialMargin {
        /// Initial margin after the trades.
        initial_margin: Amount,
        /// Equity after the trades.
        equity: Amount,
        /// The report's settlement asset.
        asset: String,
    },
    /// A position the trades increase would stand at a leverage above the maximum of the
    /// bracket its value falls in (the venue refuses it; Solvent does not cap it silently).
    LeverageAboveBracket {
        /// The position.
        instrument: String,
        /// The leverage chosen for it.
        leverage: Decimal,
        /// The bracket (1-based) its value falls in after the trades.
        tier: usize,
        /// That bracket's maximum leverage.
        max_leverage: Decimal,
        /// The bracket's bounds, as text (`position value 1,000,000-5,000,000 USDT`).
        bracket: String,
    },
    /// A withdrawal would leave equity below the buffer the account keeps.
    BelowBuffer {
        /// Equity after the withdrawal.
        equity: Amount,
        /// The buffer.
        buffer: Amount,
        /// The report's settlement asset.
        asset: String,
    },
    /// A withdrawal would leave the wallet's cash-like collateral below the cross positions'
    /// maintenance margin, where the venue keeps it there (`[venue] withdrawal =
    /// "wallet_above_maintenance_margin"`: unrealised profit does not pay it out).
    WalletBelowMaintenanceMargin {
        /// By how much the wallet would fall short.
        shortfall: Amount,
        /// The cross positions' maintenance margin.
        maintenance_margin: Amount,
        /// The report's settlement asset.
        asset: String,
    },
    /// A withdrawal would leave a coin's wallet below the unrealised loss of the cross positions
    /// settled in it, where the venue keeps that much of the coin (`[venue] withdrawal =
    /// "wallet_less_unrealised_loss"`: the loss is owed in that coin, whatever the other
    /// collateral).
    WalletBelowUnrealisedLoss {
        /// The coin withdrawn.
        coin: String,
        /// By how much its wallet would fall short, in the report's settlement asset.
        shortfall: Amount,
        /// The report's settlement asset.
        asset: String,
    },
    /// A withdrawal would leave equity below the initial margin.
    BelowInitialMargin {
        /// Equity after the withdrawal.
        equity: Amount,
        /// Initial margin.
        initial_margin: Amount,
        /// The report's settlement asset.
        asset: String,
    },
}

impl Refusal {
    /// The refusal's snake_case name, as effects and the API give it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReduceOnly { .. } => "reduce_only",
            Self::IsolatedInitialMargin { .. } => "isolated_initial_margin",
            Self::LeverageAboveBracket { .. } => "leverage_above_bracket",
            Self::InitialMargin { .. } => "initial_margin",
            Self::BelowBuffer { .. } => "below_buffer",
            Self::BelowInitialMargin { .. } => "below_initial_margin",
            Self::WalletBelowMaintenanceMargin { .. } => "wallet_below_maintenance_margin",
            Self::WalletBelowUnrealisedLoss { .. } => "wallet_below_unrealised_loss",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReduceOnly { state } => {
                write!(f, "the account is {state} and may only reduce risk")
            }
            Self::IsolatedInitialMargin {
                instrument,
                initial_margin,
                isolated_equity,
            } => write!(
                f,
                "isolated {instrument} would hold {isolated_equity} against an initial margin of {initial_margin}, short by {}",
                Amount(initial_margin.value() - isolated_equity.value())
            ),
            Self::LeverageAboveBracket {
                instrument,
                leverage,
                tier,
                max_leverage,
                bracket,
            } => write!(
                f,
                "{instrument} at {}x would stand in tier {tier} ({bracket}), whose maximum leverage is {}x",
                leverage.normalize(),
                max_leverage.normalize()
            ),
            Self::InitialMargin {
                initial_margin,
                equity,
                asset,
            } => write!(
                f,
                "initial margin {initial_margin} would exceed equity {equity} by {} {asset}",
                Amount(initial_margin.value() - equity.value())
            ),
            Self::BelowBuffer {
                equity,
                buffer,
                asset,
            } => write!(
                f,
                "equity {equity} would fall below the buffer of {buffer} {asset} the account keeps"
            ),
            Self::BelowInitialMargin {
                equity,
                initial_margin,
                asset,
            } => write!(
                f,
                "equity {equity} would fall below the initial margin {initial_margin} {asset}"
            ),
            Self::WalletBelowMaintenanceMargin {
                shortfall,
                maintenance_margin,
                asset,
            } => write!(
                f,
                "the wallet would hold {shortfall} {asset} less than the maintenance margin {maintenance_margin} {asset} the venue keeps in it (unrealised profit does not pay it out)"
            ),
            Self::WalletBelowUnrealisedLoss {
                coin,
                shortfall,
                asset,
            } => write!(
                f,
                "the {coin} wallet would fall {shortfall} {asset} short of the unrealised loss of the cross positions settled in {coin}, which the venue keeps in it"
            ),
        }
    }
}

/// Why a trade set is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// The trades only reduce risk (rules 1 and 3).
    OnlyReduces,
    /// The account covers its initial margin afterwards (rule 6).
    Covered,
}

/// The verdict on a trade set: accepted (and why) or the named refusal; with the report after
/// the trades when the rule had to compute it.
#[derive(Clone, Debug)]
pub struct TradeDecision {
    /// Accepted, or the refusal.
    pub verdict: Result<Acceptance, Refusal>,
    /// The figures after the trades, when the rule computed them.
    pub after: Option<MarginReport>,
}

/// Books `legs` on a copy of `portfolio` as the engine's ledger books a fill: the position moves
/// to the trade's outcome (a new position takes `leverage_of` its instrument, the account's
/// chosen leverage); realised P&L and premium settle, each rounded toward the venue, into the
/// position's isolated margin when it has one and the wallet otherwise; the fee leaves the wallet
/// (rounded toward the venue); a closed isolated position returns its margin to the wallet.
///
/// # Errors
/// [`RiskError::InvalidTrade`] when a position or price would leave the accepted range, or the
/// settlement asset is not the venue's.
pub fn book_trades(
    portfolio: &Portfolio,
    legs: &[TradeLeg],
    view: &MarketView<'_>,
    leverage_of: &dyn Fn(&str) -> Option<Decimal>,
) -> Result<Portfolio, RiskError> {
    let venue = view.venue();
    let mut after = portfolio.clone();
    for leg in legs {
        let instrument = &leg.instrument;
        let fail = |problem: String| RiskError::InvalidTrade {
            trade: format!("{} {} @ {}", instrument.name, leg.size, leg.price),
            problem,
        };
        let settlement = venue.asset(&instrument.settlement).map_err(&fail)?.clone();
        let found = after
            .positions
            .iter()
            .position(|p| p.instrument.name == instrument.name);
        let (old_size, old_entry) = found
            .and_then(|index| after.positions.get(index))
            .map_or((Decimal::ZERO, leg.price), |p| {
                (p.size.value(), p.entry_price.value())
            });
        let outcome = trade_position(instrument, old_size, old_entry, leg.size, leg.price);
        let size = Quantity::try_from(outcome.size).map_err(&fail)?;
        let realised = rounding::credit(outcome.realised, settlement.precision)
            + rounding::credit(outcome.premium, settlement.precision);
        let fee = rounding::credit(-leg.fee, settlement.precision);
        let mut wallet_cash = fee;
        match found {
            Some(index) => {
                let Some(position) = after.positions.get_mut(index) else {
                    continue;
                };
                match position.isolated_margin.as_mut() {
                    Some(margin) => *margin = Amount(margin.value() + realised),
                    None => wallet_cash += realised,
                }
                if size.value().is_zero() {
                    let released = after
                        .positions
                        .remove(index)
                        .isolated_margin
                        .map_or(Decimal::ZERO, Amount::value);
                    wallet_cash += released;
                } else {
                    position.size = size;
                    position.entry_price = Price::new_checked(outcome.entry).map_err(&fail)?;
                }
            }
            None => {
                wallet_cash += realised;
                if !size.value().is_zero() {
                    // Positions stay listed by instrument name, as the engine lists them.
                    let at = after
                        .positions
                        .partition_point(|p| p.instrument.name < instrument.name);
                    after.positions.insert(
                        at,
                        Position {
                            instrument: Arc::clone(instrument),
                            size,
                            entry_price: Price::new_checked(outcome.entry).map_err(&fail)?,
                            isolated_margin: None,
                            leverage: leverage_of(&instrument.name),
                        },
                    );
                }
            }
        }
        add_to_balance(&mut after, &settlement, wallet_cash);
    }
    Ok(after)
}

fn add_to_balance(portfolio: &mut Portfolio, asset: &solvent_core::venue::Asset, amount: Decimal) {
    if amount.is_zero() {
        return;
    }
    match portfolio
        .balances
        .iter_mut()
        .find(|b| b.asset.symbol == asset.symbol)
    {
        Some(balance) => balance.amount = Amount(balance.amount.value() + amount),
        None => portfolio.balances.push(Balance {
            asset: asset.clone(),
            amount: Amount(amount),
        }),
    }
}

fn size_in(portfolio: &Portfolio, name: &str) -> Decimal {
    portfolio
        .positions
        .iter()
        .find(|p| p.instrument.name == name)
        .map_or(Decimal::ZERO, |p| p.size.value())
}

/// Whether a position going from `old` to `new` grows (or flips side).
fn grows(old: Decimal, new: Decimal) -> bool {
    new.abs() > old.abs()
        || (!new.is_zero() && new.is_sign_positive() != old.is_sign_positive() && !old.is_zero())
}

/// Judges trades in `traded` (instrument names) that took `before` to `after` (see
/// [`book_trades`]) for an account in `state` (its state before the trades, as its last
/// evaluation found it), by the rule in the module documentation; the report in the decision
/// has every figure (see [`decide_trade_at`]).
///
/// # Errors
/// [`RiskError`] from computing a report.
pub fn decide_trade(
    state: AccountState,
    before: &Portfolio,
    after: &Portfolio,
    traded: &[&str],
    view: &MarketView<'_>,
) -> Result<TradeDecision, RiskError> {
    decide_trade_at(Detail::Figures, state, before, after, traded, view)
}

/// [`decide_trade`] with its reports built at `detail`. The verdict is the same at every
/// detail: the rule reads the account's figures and its isolated positions' lines, which every
/// detail computes. [`Detail::Totals`] leaves a portfolio account's requirement unattributed to
/// its positions in the decision's report, sparing a decimal apportionment and two formatted
/// lines per position: what the engine's pre-trade check, which keeps only the verdict, asks.
///
/// # Errors
/// [`RiskError`] from computing a report.
pub fn decide_trade_at(
    detail: Detail,
    state: AccountState,
    before: &Portfolio,
    after: &Portfolio,
    traded: &[&str],
    view: &MarketView<'_>,
) -> Result<TradeDecision, RiskError> {
    let increased: Vec<&str> = traded
        .iter()
        .copied()
        .filter(|name| grows(size_in(before, name), size_in(after, name)))
        .collect();
    let reduce_only = state >= AccountState::ReduceOnly;
    let decision = |verdict, after| Ok(TradeDecision { verdict, after });
    if increased.is_empty() && before.mode == MarginMode::Cross {
        return decision(Ok(Acceptance::OnlyReduces), None);
    }
    if !increased.is_empty() && reduce_only {
        return decision(Err(Refusal::ReduceOnly { state }), None);
    }
    let report = build_report(after, view, detail)?;
    if increased.is_empty() {
        let before_report = build_report(before, view, detail)?;
        if report.initial_margin <= before_report.initial_margin {
            return decision(Ok(Acceptance::OnlyReduces), Some(report));
        }
        if reduce_only {
            return decision(Err(Refusal::ReduceOnly { state }), Some(report));
        }
    }
    let short_isolated = report.positions.iter().find_map(|p| {
        let equity = p.isolated_equity?;
        (p.isolated && increased.contains(&p.instrument.as_str()) && equity < p.initial_margin)
            .then(|| Refusal::IsolatedInitialMargin {
                instrument: p.instrument.to_string(),
                initial_margin: p.initial_margin,
                isolated_equity: equity,
            })
    });
    if let Some(refusal) = short_isolated {
        return decision(Err(refusal), Some(report));
    }
    if let Some(refusal) = bracket_refusal(&report, &increased) {
        return decision(Err(refusal), Some(report));
    }
    if report.available.value() < Decimal::ZERO {
        let refusal = Refusal::InitialMargin {
            initial_margin: report.initial_margin,
            equity: report.equity,
            asset: report.settlement_asset.to_string(),
        };
        return decision(Err(refusal), Some(report));
    }
    decision(Ok(Acceptance::Covered), Some(report))
}

/// The refusal of a position the trades increase to a value whose bracket allows less than the
/// leverage chosen for it. (Growing beyond the largest bracket is reported as a warning, not
/// refused: several shipped tables stop before the venue's last bracket.)
fn bracket_refusal(report: &MarginReport, increased: &[&str]) -> Option<Refusal> {
    // Under portfolio margin a cross position's requirement is its share of the scan, not its
    // bracket's (a report with every figure names its basis so; one of totals keeps the
    // standard rule's basis it did not use).
    let bracketed =
        |line: &crate::report::PositionReport| report.mode == MarginMode::Cross || line.isolated;
    report
        .positions
        .iter()
        .filter(|line| increased.contains(&line.instrument.as_str()) && bracketed(line))
        .find_map(|line| match &line.margin_basis {
            Basis::Tiered {
                tier,
                floor,
                up_to,
                leverage,
                requested_leverage: Some(requested),
                unit,
                ..
            } => Some(Refusal::LeverageAboveBracket {
                instrument: line.instrument.to_string(),
                leverage: *requested,
                tier: *tier,
                max_leverage: *leverage,
                bracket: crate::account::bracket_text(*floor, *up_to, *unit, &line.settlement),
            }),
            _ => None,
        })
}

/// Judges a withdrawal from the report of the account without the money: equity must stay at
/// or above the `buffer` the account keeps and, while it has a requirement, its initial margin;
/// where the venue keeps the maintenance margin in the wallet, the cash-like collateral must
/// stay at or above it; where it keeps each coin's unrealised loss, the wallet of the coin
/// withdrawn (`coin`) must stay at or above the loss of the cross positions settled in it.
///
/// # Errors
/// The named [`Refusal`].
pub fn decide_withdrawal(after: &MarginReport, buffer: Decimal, coin: &str) -> Result<(), Refusal> {
    let asset = after.settlement_asset.to_string();
    if after.equity.value() < buffer {
        return Err(Refusal::BelowBuffer {
            equity: after.equity,
            buffer: Amount(buffer),
            asset,
        });
    }
    if after.available.value() < Decimal::ZERO && !after.initial_margin.is_zero() {
        return Err(Refusal::BelowInitialMargin {
            equity: after.equity,
            initial_margin: after.initial_margin,
            asset,
        });
    }
    if let Some(shortfall) = after.wallet_shortfall() {
        return Err(Refusal::WalletBelowMaintenanceMargin {
            shortfall: Amount(shortfall),
            maintenance_margin: after.maintenance_margin,
            asset,
        });
    }
    if let Some(shortfall) = after.unrealised_loss_shortfall(coin) {
        return Err(Refusal::WalletBelowUnrealisedLoss {
            coin: coin.to_owned(),
            shortfall: Amount(shortfall),
            asset,
        });
    }
    Ok(())
}
