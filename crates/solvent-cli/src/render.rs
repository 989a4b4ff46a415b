//! Readable tables of margin reports.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{CellAlignment, ContentArrangement, Table};
use solvent_core::money::Amount;
use solvent_core::portfolio::MarginMode;
use solvent_core::venue::Venue;
use solvent_risk::report::MarginReport;
use solvent_risk::stress::{ReverseStress, StressRow};
use solvent_risk::whatif::WhatIf;

/// Groups the integer digits of a decimal string in threes (`1234567.5` -> `1,234,567.5`).
pub(crate) fn grouped(text: &str) -> String {
    let (sign, unsigned) = text
        .strip_prefix('-')
        .map_or(("", text), |rest| ("-", rest));
    let (integer, fraction) = unsigned
        .split_once('.')
        .map_or((unsigned, None), |(i, f)| (i, Some(f)));
    let mut out = String::with_capacity(text.len() + integer.len() / 3);
    for (index, digit) in integer.chars().enumerate() {
        if index > 0 && (integer.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{out}.{fraction}"),
        None => format!("{sign}{out}"),
    }
}

fn money(amount: Amount) -> String {
    grouped(&amount.to_string())
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"))
}

/// An empty table in the report style: borders only, never wrapped.
pub(crate) fn table() -> Table {
    let mut table = Table::new();
    // No wrapping: a report is read in a wide terminal or piped to a file, and a wrapped number
    // is easy to misread.
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
    table
}

fn summary(report: &MarginReport) -> Table {
    let mut summary = table();
    summary.set_header(vec!["", report.settlement_asset.as_str()]);
    let rows = [
        ("collateral value", money(report.collateral_value)),
        ("unrealised P&L", money(report.unrealized_pnl)),
        ("option value", money(report.option_value)),
        ("equity", money(report.equity)),
        ("initial margin", money(report.initial_margin)),
        ("maintenance margin", money(report.maintenance_margin)),
        ("available (equity - IM)", money(report.available)),
        ("withdrawable", money(report.withdrawable)),
        (
            // Segregated margin: each currency covers its own requirement alone.
            if report.currencies.is_empty() {
                "health (equity / MM)"
            } else {
                "health (weakest currency)"
            },
            ratio(report.health),
        ),
        ("state", report.state.to_string()),
    ];
    for (label, value) in rows {
        summary.add_row(vec![label.to_owned(), value]);
    }
    if let Some(column) = summary.column_mut(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    summary
}

/// The margin model an account of `mode` is margined by at `venue`, as the report header names
/// it: cross margin, or the venue's portfolio-margin model (cross-collateral or segregated).
#[must_use]
pub fn margin_model(mode: MarginMode, venue: &Venue) -> &'static str {
    match (mode, &venue.portfolio_margin) {
        (MarginMode::Cross, _) => "cross margin",
        (MarginMode::Portfolio, Some(params)) => params.collateral.describe(),
        // A portfolio account at a venue without portfolio margin is refused before a report.
        (MarginMode::Portfolio, None) => "portfolio margin",
    }
}

/// Each settlement currency's figures in its coin and in USD, with the USD total (segregated
/// portfolio margin).
fn currencies(report: &MarginReport) -> String {
    let mut out = "\n\nEach settlement currency apart (in its coin; USD at its index)\n".to_owned();
    let mut table = table();
    table.set_header(vec![
        "currency",
        "equity",
        "IM",
        "MM",
        "available",
        "health",
        "state",
        "index USD",
        "equity USD",
        "IM USD",
        "MM USD",
    ]);
    let mut totals = [Amount::ZERO; 3];
    for currency in &report.currencies {
        totals[0] = Amount(totals[0].value() + currency.equity_usd.value());
        totals[1] = Amount(totals[1].value() + currency.initial_margin_usd.value());
        totals[2] = Amount(totals[2].value() + currency.maintenance_margin_usd.value());
        table.add_row(vec![
            currency.currency.to_string(),
            money(currency.equity),
            money(currency.initial_margin),
            money(currency.maintenance_margin),
            money(currency.available),
            ratio(currency.health),
            currency.state.to_string(),
            money(currency.price_usd),
            money(currency.equity_usd),
            money(currency.initial_margin_usd),
            money(currency.maintenance_margin_usd),
        ]);
    }
    let blank = String::new;
    table.add_row(vec![
        "total (USD)".to_owned(),
        blank(),
        blank(),
        blank(),
        blank(),
        blank(),
        blank(),
        blank(),
        money(totals[0]),
        money(totals[1]),
        money(totals[2]),
    ]);
    for column in 1..=10 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&table.to_string());
    out
}

/// The margin report as tables: header naming the margin model, summary, each currency under
/// segregated portfolio margin, waterfall, positions, warnings.
pub fn margin(report: &MarginReport, venue: &Venue) -> String {
    let mut out = format!(
        "Account {} - {} on {}, at {}, amounts in {}\n\n",
        report.account,
        margin_model(report.mode, venue),
        venue.name,
        report.timestamp,
        report.settlement_asset
    );
    out.push_str(&summary(report).to_string());
    if !report.currencies.is_empty() {
        out.push_str(&currencies(report));
    }
    out.push_str("\n\nWhere the figures come from\n");
    let mut components = table();
    components.set_header(vec!["component", "amount", "detail"]);
    for component in &report.components {
        components.add_row(vec![
            component.name.clone(),
            money(component.amount),
            component.detail.clone(),
        ]);
    }
    if let Some(column) = components.column_mut(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    out.push_str(&components.to_string());
    if !report.positions.is_empty() {
        out.push_str("\n\nPositions\n");
        let mut positions = table();
        positions.set_header(vec![
            "instrument",
            "size",
            "mark",
            "value",
            "upnl",
            "IM",
            "MM",
            "IM share",
            "liq. price",
            "to liq. %",
            "to liq. sd",
            "pool",
        ]);
        for position in &report.positions {
            let pool = match (position.isolated, position.isolated_health) {
                (false, _) => "cross".to_owned(),
                (true, health) => format!(
                    "isolated: equity {}, health {}",
                    position
                        .isolated_equity
                        .map_or_else(|| "-".to_owned(), money),
                    ratio(health)
                ),
            };
            positions.add_row(vec![
                position.instrument.to_string(),
                position.size.to_string(),
                grouped(&position.mark_price.to_string()),
                money(position.value),
                money(position.upnl),
                money(position.initial_margin),
                money(position.maintenance_margin),
                format!("{:.1}%", position.im_share * 100.0),
                position
                    .liquidation_price
                    .map_or_else(|| "none".to_owned(), |p| grouped(&p.to_string())),
                position
                    .distance_to_liquidation_pct
                    .map_or_else(|| "-".to_owned(), |d| format!("{d:.2}")),
                position
                    .distance_to_liquidation_sd
                    .map_or_else(|| "-".to_owned(), |d| format!("{d:.2}")),
                pool,
            ]);
        }
        out.push_str(&positions.to_string());
    }
    if !report.warnings.is_empty() {
        out.push_str("\n\nWarnings\n");
        for warning in &report.warnings {
            out.push_str(&format!("- {warning}\n"));
        }
    }
    out.push('\n');
    out
}

/// Before and after, side by side, with the verdict.
pub fn what_if(outcome: &WhatIf, trades: &[String]) -> String {
    let mut out = format!(
        "What if {} traded {}? (fees not included)\n\n",
        outcome.before.account,
        trades.join(", ")
    );
    let mut table = table();
    table.set_header(vec!["", "before", "after"]);
    let (before, after) = (&outcome.before, &outcome.after);
    let rows = [
        ("equity", money(before.equity), money(after.equity)),
        (
            "initial margin",
            money(before.initial_margin),
            money(after.initial_margin),
        ),
        (
            "maintenance margin",
            money(before.maintenance_margin),
            money(after.maintenance_margin),
        ),
        ("available", money(before.available), money(after.available)),
        (
            "withdrawable",
            money(before.withdrawable),
            money(after.withdrawable),
        ),
        ("health", ratio(before.health), ratio(after.health)),
        ("state", before.state.to_string(), after.state.to_string()),
    ];
    for (label, left, right) in rows {
        table.add_row(vec![label.to_owned(), left, right]);
    }
    for column in 1..3 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&table.to_string());
    out.push_str(&format!("\n\n{}\n", outcome.reason));
    out
}

fn moves(moves: &[(String, f64)]) -> String {
    if moves.is_empty() {
        return "-".to_owned();
    }
    moves
        .iter()
        .map(|(name, m)| format!("{name} {:+.2}%", m * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stress rows and reverse stress as tables.
pub fn stress(
    base: &MarginReport,
    rows: &[StressRow],
    reverse: Option<&[ReverseStress]>,
) -> String {
    let mut out = format!(
        "Stress of {} ({} margin), amounts in {}: equity {}, maintenance margin {}, health {}\n\n",
        base.account,
        match base.mode {
            solvent_core::portfolio::MarginMode::Cross => "cross",
            solvent_core::portfolio::MarginMode::Portfolio => "portfolio",
        },
        base.settlement_asset,
        money(base.equity),
        money(base.maintenance_margin),
        ratio(base.health)
    );
    let mut table = table();
    table.set_header(vec![
        "scenario",
        "price moves",
        "vol changes",
        "P&L",
        "equity",
        "IM",
        "MM",
        "health",
        "state",
        "liquidates",
    ]);
    for row in rows {
        table.add_row(vec![
            row.name.clone(),
            moves(&row.price_moves),
            moves(&row.vol_changes),
            money(row.pnl),
            money(row.equity),
            money(row.initial_margin),
            money(row.maintenance_margin),
            ratio(row.health),
            row.state.to_string(),
            match (row.liquidates, row.isolated_liquidations.is_empty()) {
                (true, _) => "YES".to_owned(),
                (false, false) => format!("isolated: {}", row.isolated_liquidations.join(", ")),
                (false, true) => "no".to_owned(),
            },
        ]);
    }
    for column in 3..8 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&table.to_string());
    if let Some(reverse) = reverse {
        out.push_str("\n\nReverse stress: the smallest move that takes health to 1\n");
        let mut reverse_table = self::table();
        reverse_table.set_header(vec!["underlyings moved together", "fall", "rise"]);
        let show =
            |m: Option<f64>| m.map_or_else(|| "none".to_owned(), |m| format!("{:+.2}%", m * 100.0));
        for entry in reverse {
            reverse_table.add_row(vec![
                entry.underlyings.join(" + "),
                show(entry.down),
                show(entry.up),
            ]);
        }
        out.push_str(&reverse_table.to_string());
    }
    out.push('\n');
    out
}

/// The VaR backtest: Kupiec's verdict and the exceptions.
pub fn backtest(account: &str, report: &solvent_risk::backtest::BacktestReport) -> String {
    let kupiec = &report.kupiec;
    let exposure = report
        .exposures
        .iter()
        .map(|(name, units)| format!("{units} {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!(
        "VaR backtest of {account} ({exposure}), one day at {:.1}%, {} to {}\n\n",
        report.level * 100.0,
        report.first_day,
        report.last_day
    );
    let mut summary = table();
    summary.set_header(vec!["measure", "value"]);
    for (label, value) in [
        ("days tested", kupiec.observations.to_string()),
        (
            "exceptions (loss beyond VaR)",
            kupiec.exceptions.to_string(),
        ),
        ("expected", format!("{:.1}", kupiec.expected)),
        (
            "Kupiec likelihood ratio",
            format!("{:.4}", kupiec.likelihood_ratio),
        ),
        ("p-value", format!("{:.4}", kupiec.p_value)),
        (
            "verdict at 5%",
            if kupiec.reject_at_5pct {
                "REJECTED: the exception rate is not the model's".to_owned()
            } else {
                "not rejected: the exception rate is consistent with the model".to_owned()
            },
        ),
    ] {
        summary.add_row(vec![label.to_owned(), value]);
    }
    out.push_str(&summary.to_string());
    if !report.exceptions.is_empty() {
        out.push_str("\n\nExceptions (USD)\n");
        let mut days = table();
        days.set_header(vec!["day", "VaR", "realised P&L"]);
        for (day, var, pnl) in &report.exceptions {
            days.add_row(vec![day.clone(), format!("{var:.2}"), format!("{pnl:.2}")]);
        }
        out.push_str(&days.to_string());
    }
    out.push('\n');
    out
}

/// The summary of `solvent replay` as tables: effects by type, refusals by reason, and every
/// ledger balance (accounts as rows, assets as columns) with the per-asset sum, which must be 0.
pub fn replay(summary: &crate::replay::Summary) -> String {
    let total: u64 = summary.effects.values().sum();
    let mut out = format!(
        "Replay of {} on {}: {} events, {total} effects, state hash {}\n\n",
        summary.origin, summary.venue, summary.events, summary.state_hash
    );
    let mut effects = table();
    effects.set_header(vec!["effect", "count"]);
    for (kind, count) in &summary.effects {
        effects.add_row(vec![kind.clone(), count.to_string()]);
    }
    if let Some(column) = effects.column_mut(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    out.push_str("Effects\n");
    out.push_str(&effects.to_string());
    if !summary.rejected.is_empty() {
        let mut rejected = table();
        rejected.set_header(vec!["rejected because", "count"]);
        for (reason, count) in &summary.rejected {
            rejected.add_row(vec![reason.clone(), count.to_string()]);
        }
        if let Some(column) = rejected.column_mut(1) {
            column.set_cell_alignment(CellAlignment::Right);
        }
        out.push_str("\n\nRefused events\n");
        out.push_str(&rejected.to_string());
    }
    // Columns only for the assets some ledger account holds (the JSON lists every asset).
    let assets: Vec<&String> = summary
        .conservation
        .keys()
        .filter(|asset| {
            summary
                .balances
                .values()
                .any(|held| held.contains_key(*asset))
        })
        .collect();
    let mut balances = table();
    let mut header = vec!["ledger account".to_owned()];
    header.extend(assets.iter().map(|asset| (*asset).clone()));
    balances.set_header(header);
    for (account, held) in &summary.balances {
        let mut row = vec![account.clone()];
        row.extend(
            assets
                .iter()
                .map(|asset| held.get(*asset).map_or_else(String::new, |v| grouped(v))),
        );
        balances.add_row(row);
    }
    let mut sums = vec!["sum (must be 0)".to_owned()];
    sums.extend(assets.iter().map(|asset| {
        summary
            .conservation
            .get(*asset)
            .map_or_else(String::new, |v| grouped(v))
    }));
    balances.add_row(sums);
    for index in 1..=assets.len() {
        if let Some(column) = balances.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str("\n\nBalances\n");
    out.push_str(&balances.to_string());
    out.push('\n');
    if !summary.accounts.is_empty() {
        let mut accounts = table();
        accounts.set_header(vec![
            "account",
            "in",
            "equity",
            "initial margin",
            "maintenance margin",
            "health",
            "state",
            "liquidations",
        ]);
        for account in &summary.accounts {
            accounts.add_row(vec![
                account.account.clone(),
                account.settlement_asset.clone(),
                grouped(&account.equity),
                grouped(&account.initial_margin),
                grouped(&account.maintenance_margin),
                ratio(account.health),
                account.state.clone(),
                account.liquidations.to_string(),
            ]);
        }
        for index in [2, 3, 4, 5, 7] {
            if let Some(column) = accounts.column_mut(index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str("\nAccounts at the end, weakest first\n");
        out.push_str(&accounts.to_string());
        out.push('\n');
    }
    out
}

/// The allocation: figures, buffer and moves with their reasons.
pub fn allocation(allocation: &solvent_risk::allocation::Allocation) -> String {
    let mut out = format!(
        "Allocation of {}, amounts in {}; buffer policy: {}\n\n",
        allocation.account, allocation.settlement_asset, allocation.policy.buffer
    );
    let mut figures = table();
    figures.set_header(vec!["", allocation.settlement_asset.as_str()]);
    for (label, value) in [
        ("equity", allocation.equity),
        ("initial margin", allocation.initial_margin),
        ("maintenance margin", allocation.maintenance_margin),
        ("excess (equity - IM)", allocation.excess),
        ("buffer (equity to keep)", allocation.buffer),
        ("pool (equity - max(IM, buffer))", allocation.pool),
        ("withdrawable", allocation.withdrawable),
    ] {
        figures.add_row(vec![label.to_owned(), money(value)]);
    }
    if let Some(column) = figures.column_mut(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    out.push_str(&figures.to_string());
    out.push_str(&format!("\nbuffer: {}\n", allocation.buffer_detail));
    if allocation.moves.is_empty() {
        out.push_str(&format!(
            "\nNo isolated position is below health {}: nothing to move.\n",
            allocation.policy.trigger_health
        ));
        return out;
    }
    out.push_str("\nRecommended moves from the cross pool\n");
    let mut moves = table();
    moves.set_header(vec!["to", "amount", "health before", "health after", "why"]);
    for item in &allocation.moves {
        moves.add_row(vec![
            item.instrument.clone(),
            format!("{} {}", money(item.amount), item.asset),
            ratio(item.health_before),
            ratio(item.health_after),
            item.reason.clone(),
        ]);
    }
    out.push_str(&moves.to_string());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped("1234567.5"), "1,234,567.5");
        assert_eq!(grouped("-1000"), "-1,000");
        assert_eq!(grouped("999"), "999");
        assert_eq!(grouped("0.000001"), "0.000001");
    }
}
