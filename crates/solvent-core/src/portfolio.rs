//! Accounts as a trader describes them (`PORTFOLIO.json`), validated against a venue.

use compact_str::CompactString;
use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{InputError, from_json_str, unique_map};
use crate::instrument::Instrument;
use crate::market::Market;
use crate::money::{Amount, Price, Quantity, check_leverage, deserialize_optional_decimal};
use crate::venue::{Asset, Venue};

/// How the account's positions share margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginMode {
    /// Standard margin per position, one shared collateral pool.
    Cross,
    /// Risk-based margin over the whole portfolio (DESIGN.md 6.5).
    Portfolio,
}

/// A position as written in a portfolio file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionFile {
    /// Instrument name.
    pub instrument: String,
    /// Signed size: base units (linear), USD (inverse) or contracts (options).
    pub size: Quantity,
    /// Average entry price (USD per coin; option premium in the settlement currency).
    pub entry_price: Price,
    /// Margin set aside for this position alone (isolated), in its settlement asset.
    #[serde(default)]
    pub isolated_margin: Option<Amount>,
    /// Chosen leverage (tiered rules).
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    pub leverage: Option<Decimal>,
}

/// A portfolio file as written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioFile {
    /// Account id.
    pub account: String,
    /// Margin mode.
    pub mode: MarginMode,
    /// Collateral balances by asset (negative = borrowed): the cross wallet, not counting margin
    /// set aside for isolated positions.
    #[serde(default, deserialize_with = "unique_map")]
    pub collateral: IndexMap<String, Amount>,
    /// Open positions.
    #[serde(default)]
    pub positions: Vec<PositionFile>,
    /// Currency of the report (default: the venue's settlement asset).
    #[serde(default)]
    pub settlement_asset: Option<String>,
    /// A market snapshot shipped with the portfolio (used unless `--market` is given).
    #[serde(default)]
    pub market: Option<Market>,
    /// Interest accrued and not yet paid on a loan, by asset (a positive amount of the borrowed
    /// asset, as the venue shows it: Binance "Interest", Bybit `accruedInterest`): owed on top
    /// of the negative balance in `collateral`.
    #[serde(default, deserialize_with = "unique_map")]
    pub accrued_interest: IndexMap<String, Amount>,
    /// Hours a loan has been outstanding, by asset: its interest is computed from the venue's
    /// rate (`[collateral.X] interest`), `principal x hourly rate x hours`, rounded up. An
    /// asset takes `accrued_interest` or `borrowed_hours`, not both.
    #[serde(default, deserialize_with = "unique_map")]
    pub borrowed_hours: IndexMap<String, u32>,
}

/// Interest owed on a loan and not yet paid, counted in the loan.
#[derive(Clone, Debug, PartialEq)]
pub struct AccruedInterest {
    /// The borrowed asset.
    pub asset: CompactString,
    /// The principal borrowed (positive), before the interest.
    pub principal: Amount,
    /// The interest owed (positive), rounded up to the asset's precision; already included in
    /// the asset's balance in [`Portfolio::balances`].
    pub interest: Amount,
    /// The hours it was computed for, when the portfolio gave `borrowed_hours`.
    pub hours: Option<u32>,
}

/// A validated position.
#[derive(Clone, Debug)]
pub struct Position {
    /// The resolved instrument.
    pub instrument: Arc<Instrument>,
    /// Signed size.
    pub size: Quantity,
    /// Average entry price.
    pub entry_price: Price,
    /// Isolated margin, if the position is isolated.
    pub isolated_margin: Option<Amount>,
    /// Chosen leverage, if any.
    pub leverage: Option<Decimal>,
}

/// A validated collateral balance.
#[derive(Clone, Debug)]
pub struct Balance {
    /// The asset.
    pub asset: Asset,
    /// The amount (negative = borrowed).
    pub amount: Amount,
}

/// A portfolio validated against a venue: every asset and instrument known, every size allowed.
#[derive(Clone, Debug)]
pub struct Portfolio {
    /// Account id.
    pub account: CompactString,
    /// Margin mode.
    pub mode: MarginMode,
    /// Collateral balances.
    pub balances: Vec<Balance>,
    /// Positions.
    pub positions: Vec<Position>,
    /// Currency of the report.
    pub settlement_asset: Asset,
    /// Market shipped with the portfolio.
    pub market: Option<Market>,
    /// Interest owed on loans (already counted in `balances`: a loan's balance is its principal
    /// plus this interest, negative), shown apart in the margin report.
    pub accrued_interest: Vec<AccruedInterest>,
}

fn check_precision(amount: Decimal, precision: u32) -> Result<(), String> {
    let normalized = amount.normalize();
    if normalized.scale() > precision {
        return Err(format!(
            "{normalized} has more than the asset's {precision} decimals"
        ));
    }
    Ok(())
}

impl Portfolio {
    /// Reads a portfolio file and validates it against `venue`.
    ///
    /// # Errors
    /// [`InputError`] naming the field of the first problem.
    pub fn from_json(file: &str, text: &str, venue: &Venue) -> Result<Self, InputError> {
        let raw: PortfolioFile = from_json_str(file, text)?;
        Self::validate(file, raw, venue)
    }

    /// Validates a parsed portfolio against `venue`.
    ///
    /// # Errors
    /// [`InputError`] naming the field of the first problem.
    pub fn validate(file: &str, raw: PortfolioFile, venue: &Venue) -> Result<Self, InputError> {
        let fail = |path: String, problem: String| InputError::new(file, path, problem);
        if raw.account.trim().is_empty() {
            return Err(fail("account".into(), "must not be empty".into()));
        }
        let settlement_symbol = raw
            .settlement_asset
            .as_deref()
            .unwrap_or(&venue.settlement_asset);
        let settlement_asset = venue
            .asset(settlement_symbol)
            .map_err(|problem| fail("settlement_asset".into(), problem))?
            .clone();

        let mut balances = Vec::with_capacity(raw.collateral.len());
        for (symbol, amount) in raw.collateral {
            let path = format!("collateral.{symbol}");
            let asset = venue
                .asset(&symbol)
                .map_err(|problem| fail(path.clone(), problem))?
                .clone();
            check_precision(amount.value(), asset.precision)
                .map_err(|problem| fail(path.clone(), problem))?;
            if amount.value().is_sign_negative() && !amount.is_zero() {
                let borrowable = venue
                    .collateral
                    .get(&symbol)
                    .is_some_and(|schedule| schedule.borrow.is_some());
                if !borrowable {
                    return Err(fail(
                        path,
                        format!("the venue does not allow borrowing {symbol} (negative balance)"),
                    ));
                }
            }
            balances.push(Balance { asset, amount });
        }

        let accrued_interest = Self::validate_interest(
            file,
            &raw.accrued_interest,
            &raw.borrowed_hours,
            &mut balances,
            venue,
        )?;

        let mut positions: Vec<Position> = Vec::with_capacity(raw.positions.len());
        // Names seen so far, with the index that listed them: a map, so that validating a
        // portfolio stays linear in its positions (a scan of the list before each one made
        // 200,000 positions take minutes).
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(raw.positions.len());
        for (index, position) in raw.positions.iter().enumerate() {
            let path = format!("positions[{index}]");
            let instrument = venue
                .instrument(&position.instrument)
                .map_err(|problem| fail(format!("{path}.instrument"), problem))?;
            if let Some(first) = seen.insert(position.instrument.as_str(), index) {
                return Err(fail(
                    format!("{path}.instrument"),
                    format!(
                        "{} is listed twice (first at positions[{first}]): combine the positions into one",
                        instrument.name
                    ),
                ));
            }
            if position.size.is_zero() {
                return Err(fail(
                    format!("{path}.size"),
                    "a position must not be zero".into(),
                ));
            }
            instrument
                .check_size(position.size.value())
                .map_err(|problem| fail(format!("{path}.size"), problem))?;
            if let Some(margin) = position.isolated_margin {
                let precision = venue
                    .asset(&instrument.settlement)
                    .map_err(|problem| fail(format!("{path}.instrument"), problem))?
                    .precision;
                if margin.value().is_sign_negative() && !margin.is_zero() {
                    return Err(fail(
                        format!("{path}.isolated_margin"),
                        "must not be negative".into(),
                    ));
                }
                check_precision(margin.value(), precision)
                    .map_err(|problem| fail(format!("{path}.isolated_margin"), problem))?;
            }
            if let Some(leverage) = position.leverage {
                check_leverage(leverage)
                    .map_err(|problem| fail(format!("{path}.leverage"), problem))?;
            }
            positions.push(Position {
                instrument,
                size: position.size,
                entry_price: position.entry_price,
                isolated_margin: position.isolated_margin,
                leverage: position.leverage,
            });
        }
        if let Some(market) = &raw.market {
            market.validate(file, "market.")?;
        }
        Ok(Self {
            account: raw.account.into(),
            mode: raw.mode,
            balances,
            positions,
            settlement_asset,
            market: raw.market,
            accrued_interest,
        })
    }

    /// Checks `accrued_interest` and `borrowed_hours` against the balances and the venue, and
    /// adds each loan's interest to its balance (a loan owes its interest as it owes its
    /// principal: Binance adds accrued interest "to their total margin debt", Bybit counts it in
    /// the liability), so that every margin path values the loan with it.
    fn validate_interest(
        file: &str,
        accrued: &IndexMap<String, Amount>,
        hours: &IndexMap<String, u32>,
        balances: &mut [Balance],
        venue: &Venue,
    ) -> Result<Vec<AccruedInterest>, InputError> {
        let fail = |path: String, problem: String| InputError::new(file, path, problem);
        let mut owed = Vec::with_capacity(accrued.len() + hours.len());
        let given = accrued
            .iter()
            .map(|(symbol, amount)| (symbol, Some(*amount), None))
            .chain(hours.iter().map(|(symbol, h)| (symbol, None, Some(*h))));
        for (symbol, amount, hours) in given {
            let path = if hours.is_some() {
                format!("borrowed_hours.{symbol}")
            } else {
                format!("accrued_interest.{symbol}")
            };
            if hours.is_some() && accrued.contains_key(symbol) {
                return Err(fail(
                    path,
                    format!("{symbol} has accrued_interest already: give one or the other"),
                ));
            }
            let asset = venue
                .asset(symbol)
                .map_err(|problem| fail(path.clone(), problem))?;
            let Some(balance) = balances
                .iter_mut()
                .find(|b| b.asset.symbol == asset.symbol)
                .filter(|b| b.amount.value() < Decimal::ZERO)
            else {
                return Err(fail(
                    path,
                    format!(
                        "collateral holds no {symbol} loan (a negative balance) to owe interest on"
                    ),
                ));
            };
            let principal = -balance.amount.value();
            let interest = match (amount, hours) {
                (Some(amount), _) => {
                    if amount.value() < Decimal::ZERO {
                        return Err(fail(path, "must not be negative".into()));
                    }
                    check_precision(amount.value(), asset.precision)
                        .map_err(|problem| fail(path.clone(), problem))?;
                    amount.value()
                }
                (None, Some(hours)) => {
                    let schedule = venue
                        .collateral
                        .get(symbol)
                        .and_then(|schedule| schedule.interest.as_ref())
                        .ok_or_else(|| {
                            fail(
                                path.clone(),
                                format!("the venue publishes no interest rate for {symbol} ([collateral.{symbol}] interest)"),
                            )
                        })?;
                    let exact = schedule.interest(principal, hours).ok_or_else(|| {
                        fail(
                            path.clone(),
                            format!(
                                "{hours} hours of interest on {principal} {symbol} is out of range"
                            ),
                        )
                    })?;
                    // The venue rounds the interest it charges up, never in the borrower's favour.
                    crate::rounding::requirement(exact, asset.precision)
                }
                (None, None) => continue,
            };
            let owed_total = balance
                .amount
                .value()
                .checked_sub(interest)
                .ok_or_else(|| {
                    fail(
                        path.clone(),
                        format!("{interest} {symbol} of interest is out of range"),
                    )
                })?;
            balance.amount = Amount(owed_total);
            owed.push(AccruedInterest {
                asset: asset.symbol.clone(),
                principal: Amount(principal),
                interest: Amount(interest),
                hours,
            });
        }
        Ok(owed)
    }
}
