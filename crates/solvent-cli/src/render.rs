//! Readable tables of margin reports.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use rust_decimal::Decimal;
use solvent_core::money::Amount;
use solvent_core::portfolio::MarginMode;
use solvent_core::venue::Venue;
use solvent_risk::report::{LiquidationLevel, MarginReport};
use solvent_risk::stress::{LiquidatingMove, ReverseStress, StressRow};
use solvent_risk::whatif::WhatIf;

pub(crate) use crate::display::grouped;
use crate::display::{self, Cell, Column, Grid, Kind, Layout, Money, Quote, float, ratio};

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

/// The account's figures: one row per figure, amounts in the report's asset.
fn summary_grid(report: &MarginReport, money: &Money) -> Grid {
    let mut summary = Grid::new(vec![
        Column::new("", Kind::Label).csv_header("figure"),
        Column::new(money.unit.clone(), Kind::Number).csv_header(money.header("value")),
    ]);
    let withdrawable = format!(
        "withdrawable, bound by {}",
        report.withdrawable_limit.describe()
    );
    let amount = |value: Decimal| Cell::decimal(money.show(value), value);
    let rows = [
        ("collateral value", amount(report.collateral_value.value())),
        ("unrealised P&L", amount(report.unrealized_pnl.value())),
        ("option value", amount(report.option_value.value())),
        ("equity", amount(report.equity.value())),
        ("initial margin", amount(report.initial_margin.value())),
        (
            "maintenance margin",
            amount(report.maintenance_margin.value()),
        ),
        ("available (equity - IM)", amount(report.available.value())),
        (withdrawable.as_str(), amount(report.withdrawable.value())),
        (
            // Segregated margin: each currency covers its own requirement alone.
            if report.currencies.is_empty() {
                "health (equity / MM)"
            } else {
                "health (weakest currency)"
            },
            Cell::float(ratio(report.health), report.health),
        ),
        ("state", Cell::text(report.state.to_string())),
    ];
    for (label, value) in rows {
        let after_collateral = label == "collateral value";
        summary.cells(vec![Cell::text(label), value]);
        // Accrued interest is a line only when a loan owes some, under the collateral value
        // that already holds it (the loan at full value, as are the loan's borrow margins):
        // the line names it rather than add it again.
        if after_collateral && !report.accrued_interest.is_zero() {
            summary.cells(vec![
                Cell::text("  of which accrued interest on loans"),
                amount(-report.accrued_interest.value()),
            ]);
        }
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
fn currencies_grid(report: &MarginReport, venue: &Venue) -> Grid {
    let usd = Money::new(venue, "USD");
    let mut table = Grid::new(vec![
        Column::new("currency", Kind::Label),
        Column::new("equity (coin)", Kind::Number),
        Column::new("IM (coin)", Kind::Number),
        Column::new("MM (coin)", Kind::Number),
        Column::new("available (coin)", Kind::Number).optional(1),
        Column::new("health", Kind::Number),
        Column::new("state", Kind::Label),
        Column::new("index (USD)", Kind::Number).optional(0),
        Column::new("equity (USD)", Kind::Number),
        Column::new("IM (USD)", Kind::Number).optional(2),
        Column::new("MM (USD)", Kind::Number),
    ]);
    let mut totals = [Decimal::ZERO; 3];
    for currency in &report.currencies {
        let coin = Money::new(venue, &currency.currency);
        totals[0] += currency.equity_usd.value();
        totals[1] += currency.initial_margin_usd.value();
        totals[2] += currency.maintenance_margin_usd.value();
        let in_coin = |value: Decimal| Cell::decimal(coin.show(value), value);
        let in_usd = |value: Decimal| Cell::decimal(usd.show(value), value);
        table.cells(vec![
            Cell::text(currency.currency.to_string()),
            in_coin(currency.equity.value()),
            in_coin(currency.initial_margin.value()),
            in_coin(currency.maintenance_margin.value()),
            in_coin(currency.available.value()),
            Cell::float(ratio(currency.health), currency.health),
            Cell::text(currency.state.to_string()),
            in_usd(currency.price_usd.value()),
            in_usd(currency.equity_usd.value()),
            in_usd(currency.initial_margin_usd.value()),
            in_usd(currency.maintenance_margin_usd.value()),
        ]);
    }
    let mut total = vec![Cell::text("total (USD)")];
    total.extend(std::iter::repeat_n(Cell::text(""), 7));
    total.extend(
        totals
            .iter()
            .map(|value| Cell::decimal(usd.show(*value), *value)),
    );
    table.cells(total);
    table
}

/// The waterfall: each component of the figures with its arithmetic.
fn components_grid(report: &MarginReport, money: &Money) -> Grid {
    let mut components = Grid::new(vec![
        Column::new("component", Kind::Label),
        Column::new(money.header("amount"), Kind::Number),
        Column::new("detail", Kind::Text),
    ]);
    for component in &report.components {
        components.cells(vec![
            Cell::text(component.name.clone()),
            Cell::decimal(
                money.show(component.amount.value()),
                component.amount.value(),
            ),
            Cell::text(component.detail.clone()),
        ]);
    }
    components
}

/// The unit of an option's liquidation level: its underlying's index, in USD.
const INDEX_UNIT: &str = "USD index";

/// A size with its unit: the coin for linear contracts and options, USD for inverse
/// perpetuals and futures (sized in USD), contracts for a linear perpetual or future whose
/// contract is not one coin (OKX's BTC-USDT-SWAP: 100 contracts of 0.01 BTC).
fn size_unit(venue: &Venue, instrument: &str) -> Option<String> {
    let instrument = venue.instrument(instrument).ok()?;
    Some(
        match (
            instrument.style,
            instrument.terms.kind() == solvent_core::instrument::InstrumentKind::Option,
        ) {
            (solvent_core::instrument::Style::Inverse, false) => "USD".to_owned(),
            (solvent_core::instrument::Style::Linear, false)
                if instrument.contract_size != Decimal::ONE =>
            {
                "contracts".to_owned()
            }
            _ => instrument.underlying.clone(),
        },
    )
}

/// The header of a column whose rows may be in different units: the unit in the header when
/// every row shares it (the cells then carry none), else in every cell (the header then names
/// none: `size` over `3.2 BTC` and `-120,000 USD`).
fn unit_column(label: &str, units: &[Option<String>]) -> (String, bool) {
    let first = units.first().cloned().flatten();
    if units.iter().all(|unit| *unit == first) {
        match first {
            Some(unit) => (format!("{label} ({unit})"), false),
            None => (label.to_owned(), false),
        }
    } else {
        (label.to_owned(), true)
    }
}

/// `text` followed by its unit when the column carries one per cell.
fn with_unit(text: String, unit: Option<&String>, per_cell: bool) -> String {
    match (per_cell, unit) {
        (true, Some(unit)) => format!("{text} {unit}"),
        _ => text,
    }
}

/// The moves that liquidate the account ([`solvent_risk::stress::LiquidationMoves`]: per
/// underlying its index's smallest fall and rise that take the cross pool's health to 1 with
/// every cross position and coin on it moving with the index, and the level each reaches), or
/// why the search could not run.
pub type LiquidationMoves<'a> = Result<&'a [solvent_risk::stress::LiquidationMoves], String>;

/// The margin report as tables: header naming the margin model, summary, each currency under
/// segregated portfolio margin, waterfall, positions, the liquidating moves of
/// [`LiquidationMoves`] where given, warnings.
pub fn margin(
    report: &MarginReport,
    venue: &Venue,
    layout: Layout,
    moves: Option<&LiquidationMoves<'_>>,
) -> String {
    let money = Money::new(venue, &report.settlement_asset);
    let mut out = format!(
        // Two lines: a venue's long model name keeps each under the 120 columns.
        "Account {} - {} on {}\nat {}, amounts in {}\n\n",
        report.account,
        margin_model(report.mode, venue),
        venue.name,
        report.timestamp,
        report.settlement_asset
    );
    out.push_str(&summary_grid(report, &money).render(layout));
    if !report.currencies.is_empty() {
        out.push_str("\n\nEach settlement currency apart (in its coin; USD at its index)\n");
        out.push_str(&currencies_grid(report, venue).render(layout));
    }
    out.push_str("\n\nWhere the figures come from\n");
    out.push_str(&components_grid(report, &money).render(layout));
    if !report.positions.is_empty() {
        out.push_str("\n\nPositions\n");
        let (grid, isolated) = positions_grid(report, venue, &money);
        out.push_str(&grid.select(&HELD_COLUMNS).render(layout));
        for line in isolated {
            out.push('\n');
            out.push_str(&line);
        }
        out.push_str("\n\nMargin and liquidation by position\n");
        out.push_str(&grid.select(&MARGIN_COLUMNS).render(layout));
    }
    if let Some(moves) = moves {
        out.push_str(&liquidation_moves(moves, layout));
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

/// The liquidating moves per underlying (see [`LiquidationMoves`]). The positions table's
/// figure holds every other price and the collateral fixed; this one moves everything on the
/// underlying together, as a market move does.
fn liquidation_moves(moves: &LiquidationMoves<'_>, layout: Layout) -> String {
    let mut out = "\n\nLiquidation by underlying: the index's smallest move that takes the cross \
                   pool's health to 1,\nevery cross position and coin on it moving with it \
                   (an isolated position liquidates at its own liq. price above)\n"
        .to_owned();
    match moves {
        Ok(moves) => out.push_str(&moves_grid(moves).render(layout)),
        Err(why) => out.push_str(&format!("not computed: {why}\n")),
    }
    out
}

/// The liquidating moves as a table: per underlying (then all together) the fall and the rise,
/// each with the index level it reaches (`none`: no move within the searched range).
fn moves_grid(moves: &[solvent_risk::stress::LiquidationMoves]) -> Grid {
    let mut table = Grid::new(vec![
        Column::new("underlyings moved together", Kind::Label),
        Column::new("fall", Kind::Number).csv_header("fall (fraction)"),
        Column::new("index at fall (USD)", Kind::Number),
        Column::new("rise", Kind::Number).csv_header("rise (fraction)"),
        Column::new("index at rise (USD)", Kind::Number),
    ]);
    let percent = |found: Option<&LiquidatingMove>| match found {
        Some(m) => Cell::float(display::signed_percent(m.price_move), Some(m.price_move)),
        // No move within the searched range liquidates: an empty cell in CSV.
        None => Cell::figure("none", ""),
    };
    let level = |found: Option<&LiquidatingMove>| match found.and_then(|m| m.index) {
        Some(index) => Cell::decimal(
            display::fixed(index.value(), display::price_decimals(index.value())),
            index.value(),
        ),
        None => Cell::figure("-", ""),
    };
    for entry in moves {
        table.cells(vec![
            Cell::text(entry.underlyings.join(" + ")),
            percent(entry.fall.as_ref()),
            level(entry.fall.as_ref()),
            percent(entry.rise.as_ref()),
            level(entry.rise.as_ref()),
        ]);
    }
    table
}

/// The columns of [`positions_grid`] in the first positions table: what is held.
const HELD_COLUMNS: [usize; 6] = [0, 1, 2, 3, 4, 5];
/// The columns of [`positions_grid`] in the second: what it requires and where it liquidates.
const MARGIN_COLUMNS: [usize; 7] = [0, 6, 7, 8, 9, 10, 11];

/// The positions as one grid (tables show it as two that each fit the width,
/// [`HELD_COLUMNS`] and [`MARGIN_COLUMNS`]; CSV writes it whole, with each row's units): size,
/// mark, value, P&L, pool, requirements and the liquidation level. Sizes and prices are in
/// their own units, amounts in the report's. With it, a line per isolated position.
fn positions_grid(report: &MarginReport, venue: &Venue, money: &Money) -> (Grid, Vec<String>) {
    let sizes: Vec<Option<String>> = report
        .positions
        .iter()
        .map(|position| size_unit(venue, &position.instrument))
        .collect();
    let quotes: Vec<Option<Quote>> = report
        .positions
        .iter()
        .map(|position| Quote::of(venue, &position.instrument))
        .collect();
    let quote_units: Vec<Option<String>> = quotes
        .iter()
        .map(|quote| quote.as_ref().map(|q| q.unit.clone()))
        .collect();
    let (size_header, size_per_cell) = unit_column("size", &sizes);
    let (mark_header, mark_per_cell) = unit_column("mark", &quote_units);
    // Under standard margin every other price and the collateral are held where they are;
    // under portfolio margin a cross position's level is its underlying's nearest liquidating
    // move with everything on that underlying moving together (the account's requirement is
    // its worst scenario, not a sum of positions). The move of the index that liquidates is in
    // the table of liquidation by underlying. An option's level is its underlying's index (the
    // option repriced from it), in USD.
    let liquidation_units: Vec<Option<String>> = report
        .positions
        .iter()
        .zip(&quote_units)
        .map(|(position, unit)| match position.liquidation_price_of {
            LiquidationLevel::Index => Some(INDEX_UNIT.to_owned()),
            LiquidationLevel::Mark => unit.clone(),
        })
        .collect();
    let (liquidation_header, liquidation_per_cell) =
        unit_column(liquidation_heading(report.mode), &liquidation_units);
    let mut grid = Grid::new(vec![
        Column::new("instrument", Kind::Label),
        Column::new(size_header, Kind::Number),
        Column::new(mark_header, Kind::Number),
        Column::new(money.header("value"), Kind::Number),
        Column::new(money.header("upnl"), Kind::Number),
        Column::new("pool", Kind::Label),
        Column::new(money.header("IM"), Kind::Number),
        Column::new(money.header("MM"), Kind::Number),
        Column::new("IM share (%)", Kind::Number)
            .optional(1)
            .csv_header("IM share (fraction)"),
        Column::new(liquidation_header, Kind::Number),
        Column::new("to liq. (%)", Kind::Number).optional(2),
        Column::new("to liq. (sd)", Kind::Number).optional(0),
        Column::new("size unit", Kind::Label).csv_only(),
        Column::new("mark unit", Kind::Label).csv_only(),
        Column::new("liq. price unit", Kind::Label).csv_only(),
    ]);
    let mut isolated = Vec::new();
    for (index, position) in report.positions.iter().enumerate() {
        let pool = if position.isolated {
            isolated.push(format!(
                "{} has its own isolated margin: equity {}, health {}",
                position.instrument,
                position
                    .isolated_equity
                    .map_or_else(|| "-".to_owned(), |equity| money.labelled(equity.value())),
                ratio(position.isolated_health)
            ));
            "isolated"
        } else {
            "cross"
        };
        let quote = quotes[index].as_ref();
        let quoted =
            |value: Decimal| quote.map_or_else(|| grouped(&value.to_string()), |q| q.show(value));
        let amount = |value: Decimal| Cell::decimal(money.show(value), value);
        let liquidation = position.liquidation_price.map_or_else(
            || Cell::figure("none", ""),
            |level| {
                let shown = match position.liquidation_price_of {
                    LiquidationLevel::Index => {
                        display::fixed(level.value(), display::price_decimals(level.value()))
                    }
                    LiquidationLevel::Mark => quoted(level.value()),
                };
                Cell::decimal(
                    with_unit(
                        shown,
                        liquidation_units[index].as_ref(),
                        liquidation_per_cell,
                    ),
                    level.value(),
                )
            },
        );
        let unit = |unit: &Option<String>| Cell::text(unit.clone().unwrap_or_default());
        grid.cells(vec![
            Cell::text(position.instrument.to_string()),
            Cell::decimal(
                with_unit(
                    grouped(&position.size.value().normalize().to_string()),
                    sizes[index].as_ref(),
                    size_per_cell,
                ),
                position.size.value(),
            ),
            Cell::decimal(
                with_unit(
                    quoted(position.mark_price.value()),
                    quote_units[index].as_ref(),
                    mark_per_cell,
                ),
                position.mark_price.value(),
            ),
            amount(position.value.value()),
            amount(position.upnl.value()),
            Cell::text(pool),
            amount(position.initial_margin.value()),
            amount(position.maintenance_margin.value()),
            Cell::float(float(position.im_share * 100.0, 1), Some(position.im_share)),
            liquidation,
            Cell::float(
                position
                    .distance_to_liquidation_pct
                    .map_or_else(|| "-".to_owned(), |d| float(d, 2)),
                position.distance_to_liquidation_pct,
            ),
            Cell::float(
                position
                    .distance_to_liquidation_sd
                    .map_or_else(|| "-".to_owned(), |d| float(d, 2)),
                position.distance_to_liquidation_sd,
            ),
            unit(&sizes[index]),
            unit(&quote_units[index]),
            unit(&liquidation_units[index]),
        ]);
    }
    (grid, isolated)
}

/// What the per-position liquidation level holds fixed, as its column says.
fn liquidation_heading(mode: MarginMode) -> &'static str {
    match mode {
        MarginMode::Portfolio => "liq. price, underlying moves",
        MarginMode::Cross => "liq. price, others fixed",
    }
}

/// Which table of the margin report `--csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MarginTable {
    /// The account's figures (equity, requirements, health, state).
    Summary,
    /// Each settlement currency apart (segregated portfolio margin).
    Currencies,
    /// Where the figures come from (the waterfall).
    Components,
    /// The positions, held and required, with their liquidation levels.
    Positions,
    /// The liquidating moves per underlying.
    Moves,
}

/// One table of the margin report as CSV (see [`Grid::csv`]).
///
/// # Errors
/// When the moves were asked for and could not be computed, or a record cannot be written.
pub fn margin_csv(
    report: &MarginReport,
    venue: &Venue,
    moves: &LiquidationMoves<'_>,
    table: MarginTable,
) -> anyhow::Result<String> {
    let money = Money::new(venue, &report.settlement_asset);
    let grid = match table {
        MarginTable::Summary => summary_grid(report, &money),
        MarginTable::Currencies => currencies_grid(report, venue),
        MarginTable::Components => components_grid(report, &money),
        MarginTable::Positions => positions_grid(report, venue, &money).0,
        MarginTable::Moves => match moves {
            Ok(moves) => moves_grid(moves),
            Err(why) => anyhow::bail!("the liquidating moves were not computed: {why}"),
        },
    };
    Ok(grid.csv()?)
}

/// Before and after, side by side, with the verdict.
pub fn what_if(outcome: &WhatIf, trades: &[String], venue: &Venue, layout: Layout) -> String {
    let mut out = format!(
        "What if {} traded {}? (fees not included)\n\n",
        outcome.before.account,
        trades.join(", ")
    );
    out.push_str(&what_if_grid(outcome, venue).render(layout));
    out.push_str(&format!("\n\n{}\n", outcome.reason));
    out
}

/// The before and after figures of a what-if as CSV (see [`Grid::csv`]), with the verdict as
/// its last row.
///
/// # Errors
/// When a record cannot be written.
pub fn what_if_csv(outcome: &WhatIf, venue: &Venue) -> Result<String, csv::Error> {
    let mut grid = what_if_grid(outcome, venue);
    let verdict = if outcome.accepted {
        "accepted"
    } else {
        "refused"
    };
    grid.row(vec![
        "verdict".to_owned(),
        verdict.to_owned(),
        outcome.reason.clone(),
    ]);
    grid.csv()
}

/// The figures before and after a what-if, side by side.
fn what_if_grid(outcome: &WhatIf, venue: &Venue) -> Grid {
    let money = Money::new(venue, &outcome.before.settlement_asset);
    let mut table = Grid::new(vec![
        Column::new("", Kind::Label).csv_header("figure"),
        Column::new(money.header("before"), Kind::Number),
        Column::new(money.header("after"), Kind::Number),
    ]);
    let (before, after) = (&outcome.before, &outcome.after);
    let show = |value: Amount| Cell::decimal(money.show(value.value()), value.value());
    let rows = [
        ("equity", show(before.equity), show(after.equity)),
        (
            "initial margin",
            show(before.initial_margin),
            show(after.initial_margin),
        ),
        (
            "maintenance margin",
            show(before.maintenance_margin),
            show(after.maintenance_margin),
        ),
        ("available", show(before.available), show(after.available)),
        (
            "withdrawable",
            show(before.withdrawable),
            show(after.withdrawable),
        ),
        (
            "  bound by",
            Cell::text(before.withdrawable_limit.describe()),
            Cell::text(after.withdrawable_limit.describe()),
        ),
        (
            "health (equity / MM)",
            Cell::float(ratio(before.health), before.health),
            Cell::float(ratio(after.health), after.health),
        ),
        (
            "state",
            Cell::text(before.state.to_string()),
            Cell::text(after.state.to_string()),
        ),
    ];
    for (label, left, right) in rows {
        table.cells(vec![Cell::figure(label, label.trim()), left, right]);
    }
    table
}

fn moves(moves: &[(String, f64)]) -> String {
    if moves.is_empty() {
        return "-".to_owned();
    }
    moves
        .iter()
        .map(|(name, m)| format!("{name} {}", display::signed_percent(*m)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stress rows and reverse stress as tables.
pub fn stress(
    base: &MarginReport,
    rows: &[StressRow],
    reverse: Option<&[ReverseStress]>,
    venue: &Venue,
    layout: Layout,
) -> String {
    let money = Money::new(venue, &base.settlement_asset);
    let mut out = format!(
        "Stress of {} ({} margin), amounts in {}\nequity {}, maintenance margin {}, health {}\n\n",
        base.account,
        match base.mode {
            solvent_core::portfolio::MarginMode::Cross => "cross",
            solvent_core::portfolio::MarginMode::Portfolio => "portfolio",
        },
        base.settlement_asset,
        money.show(base.equity.value()),
        money.show(base.maintenance_margin.value()),
        ratio(base.health)
    );
    out.push_str(&stress_grid(base, rows, venue).render(layout));
    if let Some(reverse) = reverse {
        out.push_str("\n\nReverse stress: the smallest move that takes health to 1\n");
        out.push_str(&reverse_grid(reverse).render(layout));
    }
    out.push('\n');
    out
}

/// Which table of `solvent stress` `--csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StressTable {
    /// The account under each scenario.
    Scenarios,
    /// The reverse stress (needs `--reverse`).
    Reverse,
}

/// The scenarios' table or the reverse stress as CSV (see [`Grid::csv`]).
///
/// # Errors
/// When the reverse stress is asked for without `--reverse`, or a record cannot be written.
pub fn stress_csv(
    base: &MarginReport,
    rows: &[StressRow],
    reverse: Option<&[ReverseStress]>,
    venue: &Venue,
    table: StressTable,
) -> anyhow::Result<String> {
    let grid = match (table, reverse) {
        (StressTable::Scenarios, _) => stress_grid(base, rows, venue),
        (StressTable::Reverse, Some(reverse)) => reverse_grid(reverse),
        (StressTable::Reverse, None) => {
            anyhow::bail!("--csv reverse: the reverse stress needs --reverse")
        }
    };
    Ok(grid.csv()?)
}

/// Moves as CSV writes them: each name with its fraction (`BTC -0.1; ETH -0.12`).
fn exact_moves(moves: &[(String, f64)]) -> String {
    moves
        .iter()
        .map(|(name, m)| format!("{name} {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The account under each scenario.
fn stress_grid(base: &MarginReport, rows: &[StressRow], venue: &Venue) -> Grid {
    let money = Money::new(venue, &base.settlement_asset);
    let mut table = Grid::new(vec![
        Column::new("scenario", Kind::Text),
        Column::new("price moves", Kind::Text).csv_header("price moves (fractions)"),
        Column::new("vol changes", Kind::Text)
            .optional(1)
            .csv_header("vol changes (fractions)"),
        Column::new(money.header("P&L"), Kind::Number),
        Column::new(money.header("equity"), Kind::Number),
        Column::new(money.header("IM"), Kind::Number).optional(0),
        Column::new(money.header("MM"), Kind::Number),
        Column::new("health", Kind::Number),
        Column::new("state", Kind::Label).optional(2),
        Column::new("liquidates", Kind::Text),
    ]);
    let amount = |value: Decimal| Cell::decimal(money.show(value), value);
    for row in rows {
        table.cells(vec![
            Cell::text(row.name.clone()),
            Cell::figure(moves(&row.price_moves), exact_moves(&row.price_moves)),
            Cell::figure(moves(&row.vol_changes), exact_moves(&row.vol_changes)),
            amount(row.pnl.value()),
            amount(row.equity.value()),
            amount(row.initial_margin.value()),
            amount(row.maintenance_margin.value()),
            Cell::float(ratio(row.health), row.health),
            Cell::text(row.state.to_string()),
            Cell::text(
                match (row.liquidates, row.isolated_liquidations.is_empty()) {
                    (true, _) => "YES".to_owned(),
                    (false, false) => format!("isolated: {}", row.isolated_liquidations.join(", ")),
                    (false, true) => "no".to_owned(),
                },
            ),
        ]);
    }
    table
}

/// The reverse stress: per set of underlyings moved together, the smallest fall and rise.
fn reverse_grid(reverse: &[ReverseStress]) -> Grid {
    let mut table = Grid::new(vec![
        Column::new("underlyings moved together", Kind::Label),
        Column::new("fall", Kind::Number).csv_header("fall (fraction)"),
        Column::new("rise", Kind::Number).csv_header("rise (fraction)"),
    ]);
    let show = |m: Option<f64>| match m {
        Some(m) => Cell::float(display::signed_percent(m), Some(m)),
        None => Cell::figure("none", ""),
    };
    for entry in reverse {
        table.cells(vec![
            Cell::text(entry.underlyings.join(" + ")),
            show(entry.down),
            show(entry.up),
        ]);
    }
    table
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
        ("expected", float(kupiec.expected, 1)),
        ("Kupiec likelihood ratio", float(kupiec.likelihood_ratio, 4)),
        ("p-value", float(kupiec.p_value, 4)),
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
        out.push_str("\n\nExceptions\n");
        let mut days = Grid::new(vec![
            Column::new("day", Kind::Label),
            Column::new("VaR (USD)", Kind::Number),
            Column::new("realised P&L (USD)", Kind::Number),
        ]);
        for (day, var, pnl) in &report.exceptions {
            days.row(vec![day.clone(), float(*var, 2), float(*pnl, 2)]);
        }
        out.push_str(&days.render(Layout::Fit));
    }
    out.push('\n');
    out
}

/// Which table of `solvent backtest` `--csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BacktestTable {
    /// Kupiec's test: days, exceptions, expected, likelihood ratio, p-value, verdict.
    Summary,
    /// Each day whose realised loss went beyond the day's VaR.
    Exceptions,
}

/// One table of the VaR backtest as CSV (see [`Grid::csv`]).
///
/// # Errors
/// When a record cannot be written.
pub fn backtest_csv(
    report: &solvent_risk::backtest::BacktestReport,
    table: BacktestTable,
) -> Result<String, csv::Error> {
    let grid = match table {
        BacktestTable::Summary => {
            let kupiec = &report.kupiec;
            let mut grid = Grid::new(vec![
                Column::new("measure", Kind::Label),
                Column::new("value", Kind::Number),
            ]);
            for (label, value) in [
                ("VaR level (fraction)", report.level.to_string()),
                ("first day", report.first_day.clone()),
                ("last day", report.last_day.clone()),
                ("days tested", kupiec.observations.to_string()),
                (
                    "exceptions (loss beyond VaR)",
                    kupiec.exceptions.to_string(),
                ),
                ("expected", kupiec.expected.to_string()),
                (
                    "Kupiec likelihood ratio",
                    kupiec.likelihood_ratio.to_string(),
                ),
                ("p-value", kupiec.p_value.to_string()),
                ("rejected at 5%", kupiec.reject_at_5pct.to_string()),
            ] {
                grid.row(vec![label.to_owned(), value]);
            }
            grid
        }
        BacktestTable::Exceptions => {
            let mut grid = Grid::new(vec![
                Column::new("day", Kind::Label),
                Column::new("VaR (USD)", Kind::Number),
                Column::new("realised P&L (USD)", Kind::Number),
            ]);
            for (day, var, pnl) in &report.exceptions {
                grid.row(vec![day.clone(), var.to_string(), pnl.to_string()]);
            }
            grid
        }
    };
    grid.csv()
}

/// The summary of `solvent replay` as tables: effects by type, refusals by reason, and every
/// ledger balance (accounts as rows, assets as columns) with the per-asset sum, which must be 0.
pub fn replay(summary: &crate::replay::Summary, venue: &Venue, layout: Layout) -> String {
    let total: u64 = summary.effects.values().sum();
    let mut out = format!(
        "Replay of {} on {}: {} events, {total} effects, state hash {}\n\n",
        summary.origin, summary.venue, summary.events, summary.state_hash
    );
    out.push_str("Effects\n");
    out.push_str(&counts_grid("effect", &summary.effects).render(layout));
    if !summary.rejected.is_empty() {
        out.push_str("\n\nRefused events\n");
        out.push_str(&counts_grid("rejected because", &summary.rejected).render(layout));
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
    let mut columns = vec![Column::new("ledger account", Kind::Label)];
    columns.extend(
        assets
            .iter()
            .map(|asset| Column::new((*asset).clone(), Kind::Number)),
    );
    let mut balances = Grid::new(columns);
    for (account, held) in &summary.balances {
        let mut row = vec![account.clone()];
        row.extend(
            assets
                .iter()
                .map(|asset| held.get(*asset).map_or_else(String::new, |v| grouped(v))),
        );
        balances.row(row);
    }
    let mut sums = vec!["sum (must be 0)".to_owned()];
    sums.extend(assets.iter().map(|asset| {
        summary
            .conservation
            .get(*asset)
            .map_or_else(String::new, |v| grouped(v))
    }));
    balances.row(sums);
    out.push_str("\n\nBalances\n");
    out.push_str(&balances.render(Layout::Wide));
    out.push('\n');
    if !summary.accounts.is_empty() {
        out.push_str("\nAccounts at the end, weakest first\n");
        out.push_str(&replay_accounts(&summary.accounts, venue, layout));
        out.push('\n');
    }
    out
}

/// A count per name (effects by type, refusals by reason).
fn counts_grid(label: &str, counts: &std::collections::BTreeMap<String, u64>) -> Grid {
    let mut grid = Grid::new(vec![
        Column::new(label, Kind::Label),
        Column::new("count", Kind::Number),
    ]);
    for (name, count) in counts {
        grid.cells(vec![
            Cell::text(name.clone()),
            Cell::figure(grouped(&count.to_string()), count.to_string()),
        ]);
    }
    grid
}

/// Which table of `solvent replay` `--csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayTable {
    /// Effects by type.
    Effects,
    /// Refused events by reason.
    Refused,
    /// Every ledger balance: one row per ledger account and asset, then each asset's sum.
    Balances,
    /// The accounts at the end, weakest first (needs `--accounts`).
    Accounts,
}

/// One table of a replay's summary as CSV (see [`Grid::csv`]): balances as the ledger holds
/// them, exactly.
///
/// # Errors
/// When a record cannot be written.
pub fn replay_csv(
    summary: &crate::replay::Summary,
    venue: &Venue,
    table: ReplayTable,
) -> Result<String, csv::Error> {
    let grid = match table {
        ReplayTable::Effects => counts_grid("effect", &summary.effects),
        ReplayTable::Refused => counts_grid("rejected because", &summary.rejected),
        ReplayTable::Balances => {
            // Long form: one row per holding (an account holds few of the assets).
            let mut grid = Grid::new(vec![
                Column::new("ledger account", Kind::Label),
                Column::new("asset", Kind::Label),
                Column::new("balance", Kind::Number),
            ]);
            for (account, held) in &summary.balances {
                for (asset, balance) in held {
                    grid.row(vec![account.clone(), asset.clone(), balance.clone()]);
                }
            }
            for (asset, total) in &summary.conservation {
                grid.row(vec![
                    "sum (must be 0)".to_owned(),
                    asset.clone(),
                    total.clone(),
                ]);
            }
            grid
        }
        ReplayTable::Accounts => replay_accounts_grid(&summary.accounts, venue),
    };
    grid.csv()
}

/// The accounts at the end of a replay: risk figures rounded to each account's settlement
/// asset (the ledger balances above stay exact: their sum must be exactly 0).
fn replay_accounts(
    accounts: &[crate::replay::AccountSummary],
    venue: &Venue,
    layout: Layout,
) -> String {
    replay_accounts_grid(accounts, venue).render(layout)
}

/// The accounts at the end of a replay, each figure shown in its account's settlement asset and
/// kept exact for CSV.
fn replay_accounts_grid(accounts: &[crate::replay::AccountSummary], venue: &Venue) -> Grid {
    let units: Vec<Option<String>> = accounts
        .iter()
        .map(|account| Some(account.settlement_asset.clone()))
        .collect();
    let (equity, _) = unit_column("equity", &units);
    let (initial, _) = unit_column("IM", &units);
    let (maintenance, _) = unit_column("MM", &units);
    let mut table = Grid::new(vec![
        Column::new("account", Kind::Label),
        Column::new("in", Kind::Label),
        Column::new(equity, Kind::Number),
        Column::new(initial, Kind::Number),
        Column::new(maintenance, Kind::Number),
        Column::new("health", Kind::Number),
        Column::new("state", Kind::Label),
        Column::new("liquidations", Kind::Number),
    ]);
    for account in accounts {
        let money = Money::new(venue, &account.settlement_asset);
        // The figures are the engine's exact decimals; one that does not parse is shown as is.
        let show = |text: &str| {
            let shown = text
                .parse::<Decimal>()
                .map_or_else(|_| text.to_owned(), |value| money.show(value));
            Cell::figure(shown, text)
        };
        table.cells(vec![
            Cell::text(account.account.clone()),
            Cell::text(account.settlement_asset.clone()),
            show(&account.equity),
            show(&account.initial_margin),
            show(&account.maintenance_margin),
            Cell::float(ratio(account.health), account.health),
            Cell::text(account.state.clone()),
            Cell::text(account.liquidations.to_string()),
        ]);
    }
    table
}

/// The allocation: figures, buffer and moves with their reasons.
pub fn allocation(
    allocation: &solvent_risk::allocation::Allocation,
    venue: &Venue,
    layout: Layout,
) -> String {
    let mut out = format!(
        "Allocation of {}, amounts in {}; buffer policy: {}\n\n",
        allocation.account, allocation.settlement_asset, allocation.policy.buffer
    );
    out.push_str(&allocation_figures(allocation, venue).render(layout));
    out.push_str(&format!("\nbuffer: {}\n", allocation.buffer_detail));
    if allocation.moves.is_empty() {
        out.push_str(&format!(
            "\nNo isolated position is below health {}: nothing to move.\n",
            allocation.policy.trigger_health
        ));
        return out;
    }
    out.push_str("\nRecommended moves from the cross pool\n");
    out.push_str(&allocation_moves(allocation, venue).render(layout));
    out.push('\n');
    out
}

/// Which table of `solvent allocate` `--csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AllocationTable {
    /// Equity, requirements, excess, buffer, pool and withdrawable.
    Figures,
    /// The recommended moves to isolated positions (a header alone when there are none).
    Moves,
}

/// One table of the allocation as CSV (see [`Grid::csv`]).
///
/// # Errors
/// When a record cannot be written.
pub fn allocation_csv(
    allocation: &solvent_risk::allocation::Allocation,
    venue: &Venue,
    table: AllocationTable,
) -> Result<String, csv::Error> {
    match table {
        AllocationTable::Figures => allocation_figures(allocation, venue).csv(),
        AllocationTable::Moves => allocation_moves(allocation, venue).csv(),
    }
}

/// The allocation's figures, in the account's settlement asset.
fn allocation_figures(allocation: &solvent_risk::allocation::Allocation, venue: &Venue) -> Grid {
    let money = Money::new(venue, &allocation.settlement_asset);
    let mut figures = Grid::new(vec![
        Column::new("", Kind::Label).csv_header("figure"),
        Column::new(money.unit.clone(), Kind::Number).csv_header(money.header("value")),
    ]);
    for (label, value) in [
        ("equity", allocation.equity),
        ("initial margin", allocation.initial_margin),
        ("maintenance margin", allocation.maintenance_margin),
        ("excess (equity - IM)", allocation.excess),
        ("buffer (equity to keep)", allocation.buffer),
        ("pool (equity - max(IM, buffer))", allocation.pool),
        ("withdrawable", allocation.withdrawable),
    ] {
        figures.cells(vec![
            Cell::text(label),
            Cell::decimal(money.show(value.value()), value.value()),
        ]);
    }
    figures
}

/// The recommended moves from the cross pool, each amount in its asset.
fn allocation_moves(allocation: &solvent_risk::allocation::Allocation, venue: &Venue) -> Grid {
    let mut moves = Grid::new(vec![
        Column::new("to", Kind::Label),
        Column::new("amount", Kind::Number),
        Column::new("asset", Kind::Label).csv_only(),
        Column::new("health before", Kind::Number),
        Column::new("health after", Kind::Number),
        Column::new("why", Kind::Text),
    ]);
    for item in &allocation.moves {
        let asset = Money::new(venue, &item.asset);
        moves.cells(vec![
            Cell::text(item.instrument.clone()),
            Cell::decimal(
                format!("{} {}", asset.show(item.amount.value()), item.asset),
                item.amount.value(),
            ),
            Cell::text(item.asset.clone()),
            Cell::float(ratio(item.health_before), item.health_before),
            Cell::float(ratio(item.health_after), item.health_after),
            Cell::text(item.reason.clone()),
        ]);
    }
    moves
}
