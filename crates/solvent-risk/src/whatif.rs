//! What-if: the report before and after a set of trades, and whether the venue would accept them
//! (initial margin check). The portfolio is cloned, the trades applied, the report recomputed:
//! the same code answers the venue's pre-trade check and the trader's question.

use rust_decimal::Decimal;
use serde::Serialize;
use solvent_core::instrument::Terms;
use solvent_core::money::{Amount, Price, Quantity, parse_decimal};
use solvent_core::portfolio::Portfolio;

use crate::account::margin_report;
use crate::error::RiskError;
use crate::pretrade::{Acceptance, TradeLeg, book_trades, decide_trade};
use crate::report::MarginReport;
use crate::standard;
use crate::valuation::MarketView;

/// A trade as written on the command line: `INSTRUMENT:SIZE[@PRICE][,fee=FEE]`, size signed
/// (negative sells), the fee in the instrument's settlement asset (negative: a rebate).
#[derive(Clone, Debug, PartialEq)]
pub struct Trade {
    /// The text as given, for messages.
    pub text: String,
    /// Instrument name.
    pub instrument: String,
    /// Signed size.
    pub size: Decimal,
    /// Execution price; the mark when absent.
    pub price: Option<Decimal>,
    /// Fee the account pays, in the settlement asset (zero when not given).
    pub fee: Decimal,
}

impl Trade {
    /// Parses `INSTRUMENT:SIZE[@PRICE][,fee=FEE]`.
    ///
    /// # Errors
    /// [`RiskError::InvalidTrade`] naming the part that is wrong.
    pub fn parse(text: &str) -> Result<Self, RiskError> {
        let fail = |problem: String| RiskError::InvalidTrade {
            trade: text.to_owned(),
            problem,
        };
        let (trade, fee_text) = match text.split_once(",fee=") {
            Some((trade, fee)) => (trade, Some(fee)),
            None => (text, None),
        };
        let (instrument, rest) = trade.rsplit_once(':').ok_or_else(|| {
            fail(
                "expected INSTRUMENT:SIZE[@PRICE][,fee=FEE], e.g. BTCUSDT:0.5@60000,fee=6"
                    .to_owned(),
            )
        })?;
        if instrument.is_empty() {
            return Err(fail("the instrument is missing".to_owned()));
        }
        let (size_text, price_text) = match rest.split_once('@') {
            Some((size, price)) => (size, Some(price)),
            None => (rest, None),
        };
        let size = parse_decimal(size_text)
            .and_then(|size| Quantity::try_from(size).map(Quantity::value))
            .map_err(|problem| fail(format!("size: {problem}")))?;
        if size.is_zero() {
            return Err(fail("size: a trade must not be zero".to_owned()));
        }
        let price = price_text
            .map(|text| {
                parse_decimal(text)
                    .and_then(|price| Price::try_from(price).map(Price::value))
                    .map_err(|problem| fail(format!("price: {problem}")))
            })
            .transpose()?;
        let fee = fee_text
            .map(|text| {
                parse_decimal(text)
                    .and_then(|fee| Amount::try_from(fee).map(Amount::value))
                    .map_err(|problem| fail(format!("fee: {problem}")))
            })
            .transpose()?
            .unwrap_or(Decimal::ZERO);
        Ok(Self {
            text: text.to_owned(),
            instrument: instrument.to_owned(),
            size,
            price,
            fee,
        })
    }
}

/// Before, after, and the venue's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WhatIf {
    /// The report before the trades.
    pub before: MarginReport,
    /// The report after the trades.
    pub after: MarginReport,
    /// Whether the venue would accept the trades.
    pub accepted: bool,
    /// The named refusal (see [`crate::pretrade::Refusal::name`]), when refused.
    pub refusal: Option<&'static str>,
    /// Why, with the figures.
    pub reason: String,
}

/// Applies `trades` to a copy of `portfolio` as the engine books them
/// ([`crate::pretrade::book_trades`]): positions grow at the size-weighted entry (harmonic for
/// inverse contracts), shrink with realised P&L credited to the position's margin (its isolated
/// margin, or the wallet), flip at the trade price; option premiums move cash at once; the fee
/// leaves the wallet. A trade without a price executes at the mark.
///
/// # Errors
/// [`RiskError::InvalidTrade`] for an unknown instrument or a size the instrument does not allow.
pub fn apply(
    portfolio: &Portfolio,
    trades: &[Trade],
    view: &MarketView<'_>,
) -> Result<Portfolio, RiskError> {
    let legs = legs(portfolio, trades, view)?;
    let leverage_of = |_: &str| None;
    book_trades(portfolio, &legs, view, &leverage_of)
}

/// The trades as legs to book: instruments resolved, sizes checked, prices defaulted to the mark.
fn legs(
    portfolio: &Portfolio,
    trades: &[Trade],
    view: &MarketView<'_>,
) -> Result<Vec<TradeLeg>, RiskError> {
    let venue = view.venue();
    // Sizes as the trades leave them, to bound each resulting position.
    let mut sizes: Vec<(String, Decimal, Decimal)> = portfolio
        .positions
        .iter()
        .map(|p| {
            (
                p.instrument.name.clone(),
                p.size.value(),
                p.entry_price.value(),
            )
        })
        .collect();
    let mut legs = Vec::with_capacity(trades.len());
    for trade in trades {
        let fail = |problem: String| RiskError::InvalidTrade {
            trade: trade.text.clone(),
            problem,
        };
        let instrument = venue.instrument(&trade.instrument).map_err(fail)?;
        instrument.check_size(trade.size).map_err(fail)?;
        let price = match trade.price {
            Some(price) => price,
            None => view.mark(&instrument)?.price,
        };
        let (old_size, old_entry) = sizes
            .iter()
            .find(|(name, _, _)| *name == instrument.name)
            .map_or((Decimal::ZERO, price), |(_, size, entry)| (*size, *entry));
        Quantity::try_from(old_size + trade.size).map_err(fail)?;
        standard::bounded_exposure(&instrument, trade.size, &[price, old_entry]).ok_or_else(
            || fail("the trade's value exceeds 1e15 (size x contract size x price)".to_owned()),
        )?;
        let outcome = trade_position(&instrument, old_size, old_entry, trade.size, price);
        match sizes
            .iter_mut()
            .find(|(name, _, _)| *name == instrument.name)
        {
            Some(entry) => *entry = (entry.0.clone(), outcome.size, outcome.entry),
            None => sizes.push((instrument.name.clone(), outcome.size, outcome.entry)),
        }
        let precision = venue
            .asset(&instrument.settlement)
            .map_err(&fail)?
            .precision;
        if trade.fee.normalize().scale() > precision {
            return Err(fail(format!(
                "fee: {} has more decimals than {}'s {precision}",
                trade.fee, instrument.settlement
            )));
        }
        legs.push(TradeLeg {
            instrument,
            size: trade.size,
            price,
            fee: trade.fee,
        });
    }
    Ok(legs)
}

/// What a trade does to one position: its new size and entry, the P&L it realises (perpetuals and
/// futures) and the premium that changes hands (options), both in the settlement asset, exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeOutcome {
    /// Size after the trade.
    pub size: Decimal,
    /// Average entry after the trade (the trade price for a new or flipped position).
    pub entry: Decimal,
    /// P&L realised by the part closed (zero for options, whose premium settles at once).
    pub realised: Decimal,
    /// Cash from the premium: negative when buying an option, positive when selling.
    pub premium: Decimal,
}

/// Applies a signed trade of `trade_size` at `price` to a position of `old_size` at `old_entry`:
/// positions grow at the size-weighted entry (harmonic for inverse contracts), shrink with the
/// closed part's P&L realised, and flip at the trade price.
#[must_use]
pub fn trade_position(
    instrument: &solvent_core::instrument::Instrument,
    old_size: Decimal,
    old_entry: Decimal,
    trade_size: Decimal,
    price: Decimal,
) -> TradeOutcome {
    let is_option = matches!(instrument.terms, Terms::Option { .. });
    let new_size = old_size + trade_size;
    // Premium changes hands now: paid on a buy, received on a sale.
    let premium = if is_option {
        -trade_size * instrument.contract_size * price
    } else {
        Decimal::ZERO
    };
    let grows = old_size.is_zero() || old_size.is_sign_positive() == trade_size.is_sign_positive();
    if grows {
        return TradeOutcome {
            size: new_size,
            entry: average_entry(
                instrument, old_size, old_entry, trade_size, price, is_option,
            ),
            realised: Decimal::ZERO,
            premium,
        };
    }
    let old_side = if old_size.is_sign_negative() {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    };
    let closed = trade_size.abs().min(old_size.abs()) * old_side;
    let realised = if is_option {
        Decimal::ZERO
    } else {
        standard::unrealized_pnl(instrument, closed, old_entry, price)
    };
    let entry = if new_size.is_zero() || new_size.is_sign_positive() == old_size.is_sign_positive()
    {
        old_entry
    } else {
        price
    };
    TradeOutcome {
        size: new_size,
        entry,
        realised,
        premium,
    }
}

fn average_entry(
    instrument: &solvent_core::instrument::Instrument,
    old_size: Decimal,
    old_entry: Decimal,
    added: Decimal,
    price: Decimal,
    is_option: bool,
) -> Decimal {
    if old_size.is_zero() {
        return price;
    }
    let total = old_size + added;
    match instrument.style {
        // Inverse contracts average in 1/price: the entry that keeps the coin P&L unchanged.
        solvent_core::instrument::Style::Inverse if !is_option => {
            total / (old_size / old_entry + added / price)
        }
        _ => (old_size * old_entry + added * price) / total,
    }
}

/// The report before and after `trades`, and whether the venue accepts them, by the one
/// pre-trade rule the engine applies ([`crate::pretrade::decide_trade`]).
///
/// # Errors
/// [`RiskError`] from applying the trades or computing either report.
pub fn what_if(
    portfolio: &Portfolio,
    trades: &[Trade],
    view: &MarketView<'_>,
) -> Result<WhatIf, RiskError> {
    let before = margin_report(portfolio, view)?;
    let changed = apply(portfolio, trades, view)?;
    let after = margin_report(&changed, view)?;
    let traded: Vec<&str> = trades.iter().map(|t| t.instrument.as_str()).collect();
    let decision = decide_trade(before.state, portfolio, &changed, &traded, view)?;
    let (accepted, refusal, reason) = match decision.verdict {
        Ok(Acceptance::OnlyReduces) => (
            true,
            None,
            format!(
                "accepted: the trades only reduce positions (initial margin {} -> {})",
                before.initial_margin, after.initial_margin
            ),
        ),
        Ok(Acceptance::Covered) => (
            true,
            None,
            format!(
                "accepted: equity {} covers initial margin {} (available {})",
                after.equity, after.initial_margin, after.available
            ),
        ),
        Err(refusal) => (false, Some(refusal.name()), format!("refused: {refusal}")),
    };
    Ok(WhatIf {
        before,
        after,
        accepted,
        refusal,
        reason,
    })
}
