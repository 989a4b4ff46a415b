//! Segregated portfolio margin (Deribit S:PM, DESIGN.md 6.5 "Settlement currencies"): "each of
//! the settlement currencies is treated separately" (Deribit support, "Portfolio Margin").
//!
//! The positions settled in a coin and that coin's balance form one sub-portfolio. Its positions
//! are scanned as a coin-margined account: each scenario's USD P&L `P` is re-expressed in the
//! coin at the moved price, `(E + P) / (S (1 + m)) - E / S` for the positions' USD equity `E`
//! (their unrealised P&L and option value), so a BTC-margined sub-portfolio's risk matrix is in
//! BTC. The coin's own balance is no risk in itself (a coin is worth one coin in every
//! scenario): it is not scanned, only counted in the currency's equity. A coin priced by no scanned
//! underlying (USDC) is scanned in USD over its price. Each currency's equity covers only its
//! own requirement: the account's health is its weakest currency's. The currencies' figures are
//! given in their coins and in USD; the account's requirement is their sum in the report
//! currency, each rounded up.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use solvent_core::money::Amount;
use solvent_core::portfolio::Portfolio;
use solvent_core::rounding;
use solvent_core::venue::Asset;

use crate::error::RiskError;
use crate::portfolio_margin::{ReportCurrency, ScenarioBook, exposures, portfolio_risk};
use crate::portfolio_report::{Inputs, PoolRequirement, Scan, attribute, book_inputs};
use crate::report::{Component, CurrencyMargin, PositionReport, standing};

/// USD figures of the currencies are given to the cent.
const USD_DECIMALS: u32 = 2;

/// The segregated requirement: one scan per settlement currency (see the module documentation).
///
/// # Errors
/// [`RiskError`] when a currency has no price, a scan fails or a figure cannot be rounded.
pub(crate) fn apply(
    inputs: &Inputs<'_>,
    positions: &mut [PositionReport],
    components: &mut Vec<Component>,
) -> Result<PoolRequirement, RiskError> {
    let Inputs {
        portfolio, lines, ..
    } = inputs;
    // Every currency the account holds or settles a cross position in, in order of first
    // appearance: a currency with a balance and no position has equity and no requirement.
    let mut currencies: Vec<&Asset> = Vec::new();
    let held = portfolio.balances.iter().map(|b| &b.asset).chain(
        lines
            .iter()
            .filter(|line| line.position.isolated_margin.is_none())
            .map(|line| line.settlement),
    );
    for asset in held {
        if !currencies.iter().any(|a| a.symbol == asset.symbol) {
            currencies.push(asset);
        }
    }
    let mut requirement = PoolRequirement {
        initial: Decimal::ZERO,
        maintenance: Decimal::ZERO,
        currencies: Vec::with_capacity(currencies.len()),
        scenario_sides: Vec::new(),
    };
    for coin in currencies {
        let (figures, initial, maintenance) = currency(inputs, coin, positions, components)?;
        requirement.initial += initial;
        requirement.maintenance += maintenance;
        requirement.currencies.push(figures);
    }
    Ok(requirement)
}

/// One currency's sub-portfolio: its figures, and its initial and maintenance margin in the
/// report currency (rounded up).
fn currency(
    inputs: &Inputs<'_>,
    coin: &Asset,
    positions: &mut [PositionReport],
    components: &mut Vec<Component>,
) -> Result<(CurrencyMargin, Decimal, Decimal), RiskError> {
    let Inputs {
        portfolio,
        view,
        params,
        report_asset,
        detail,
        lines,
        ..
    } = inputs;
    let decimals = report_asset.precision;
    let coin_decimals = coin.precision;
    let coin_usd = view.asset_usd(coin)?;
    // The portfolio's indices of the cross positions settled in the coin.
    let settled: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            line.position.isolated_margin.is_none() && line.settlement.symbol == coin.symbol
        })
        .map(|(index, _)| index)
        .collect();
    let balance: Decimal = portfolio
        .balances
        .iter()
        .filter(|b| b.asset.symbol == coin.symbol)
        .map(|b| b.amount.value())
        .sum();
    let mut equity_exact = balance;
    for line in settled.iter().filter_map(|&index| lines.get(index)) {
        equity_exact += line.equity_at(line.mark.price);
    }
    let equity = rounding::credit(equity_exact, coin_decimals);
    let (initial, maintenance) = if settled.is_empty() {
        (Decimal::ZERO, Decimal::ZERO)
    } else {
        // The coin's own balance is left out of the scan: a coin is worth one coin in every
        // scenario. The scan converts the positions' USD P&L at the moved price with their own
        // USD equity, `(E + P) / (S (1 + m)) - E / S`, which is their P&L in the coin.
        let sub = Portfolio {
            account: portfolio.account.clone(),
            mode: portfolio.mode,
            balances: Vec::new(),
            positions: settled
                .iter()
                .filter_map(|&index| portfolio.positions.get(index).cloned())
                .collect(),
            settlement_asset: coin.clone(),
            market: None,
            accrued_interest: Vec::new(),
        };
        let (instruments, spot_assets) = book_inputs(&sub, params);
        let book = ScenarioBook::new(view, params, &instruments, &spot_assets)?;
        let exposures = exposures(&sub, &book)?;
        let coin_usd_f64 = coin_usd.to_f64().unwrap_or(f64::NAN);
        let scanned_in = ReportCurrency {
            price_usd: coin_usd_f64,
            priced_by: book.underlyings.get_index_of(coin.index.as_str()),
            equity_usd: (equity_exact - balance).to_f64().unwrap_or(f64::NAN) * coin_usd_f64,
        };
        let risk = portfolio_risk(&book, params, &exposures, &scanned_in)?;
        let what = format!("{} portfolio maintenance margin", coin.symbol);
        let maintenance =
            rounding::requirement_from_f64(risk.maintenance_margin, coin_decimals, &what)?;
        let what = format!("{} portfolio initial margin", coin.symbol);
        let initial = rounding::requirement_from_f64(risk.initial_margin, coin_decimals, &what)?;
        if *detail != crate::account::Detail::Totals {
            let in_report = (
                rounding::requirement(view.convert(initial, coin, report_asset)?, decimals),
                rounding::requirement(view.convert(maintenance, coin, report_asset)?, decimals),
            );
            let scope = format!("[{}]", coin.symbol);
            let scan = Scan {
                book: &book,
                risk: &risk,
                exposures: &exposures,
                positions_of: &|index| settled.get(index).copied(),
                scope: &scope,
                digits: coin_decimals as usize,
            };
            attribute(
                portfolio, params, &scan, in_report, decimals, positions, components,
            )?;
        }
        (initial, maintenance)
    };
    let (health, state) = standing(equity, maintenance, &view.venue().thresholds);
    let usd = |amount: Decimal| {
        amount
            .checked_mul(coin_usd)
            .ok_or_else(|| RiskError::Overflow {
                what: format!("{amount} {} in USD", coin.symbol),
            })
    };
    let figures = CurrencyMargin {
        currency: coin.symbol.clone(),
        price_usd: Amount(coin_usd),
        equity: Amount(equity),
        initial_margin: Amount(initial),
        maintenance_margin: Amount(maintenance),
        available: Amount(equity - initial),
        health,
        state,
        equity_usd: Amount(rounding::credit(usd(equity)?, USD_DECIMALS)),
        initial_margin_usd: Amount(rounding::requirement(usd(initial)?, USD_DECIMALS)),
        maintenance_margin_usd: Amount(rounding::requirement(usd(maintenance)?, USD_DECIMALS)),
    };
    Ok((
        figures,
        rounding::requirement(view.convert(initial, coin, report_asset)?, decimals),
        rounding::requirement(view.convert(maintenance, coin, report_asset)?, decimals),
    ))
}
