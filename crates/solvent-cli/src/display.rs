//! The display layer the commands' tables share: how a number is written (rounded to its
//! asset's precision or its price's tick, digits grouped in threes, never an unrounded float),
//! which unit a column is in, and how a table is laid out to fit 120 columns (`--wide` for
//! every column).
//!
//! JSON output never passes through here: it carries the exact figures.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
use rust_decimal::Decimal;
use solvent_core::instrument::{InstrumentKind, Style};
use solvent_core::venue::Venue;

/// Width a table is fitted to unless `--wide` asks for every column: a common terminal, and
/// what a report pasted into a ticket or a review keeps without wrapping.
pub const DEFAULT_WIDTH: usize = 120;

/// Decimals an amount of an asset the venue does not list is shown with (the venue's own assets
/// carry their precision).
const FALLBACK_DECIMALS: u32 = 8;

/// Decimals of an amount in a stablecoin pegged to the USD: a cent. The ledger keeps 6, but a
/// millionth of a dollar is noise in a report; JSON keeps every digit.
const PEGGED_DECIMALS: u32 = 2;

/// Significant digits a price below 1 keeps (`0.15234` DOGE, `0.000012345` PEPE): the shipped
/// venues list no tick sizes, so the tick is derived from the price.
const SMALL_PRICE_DIGITS: i32 = 5;

/// The tick an inverse option's premium (in coin) is shown to: Deribit's BTC and ETH option tick
/// (0.0001 coin below 0.005, 0.0005 above, so four decimals show every listed premium).
const COIN_PREMIUM_DECIMALS: u32 = 4;

/// Narrowest a prose column is wrapped to: below it, a column is left out instead (a word a
/// line is unreadable).
const PROSE_MIN_WIDTH: u16 = 16;

/// The longest word a prose column keeps whole when wrapped (an instrument's name).
const PROSE_MAX_WORD: usize = 30;

/// Digits after the point of a ratio (health): enough to tell 1.0499 (liquidating) from 1.05.
const RATIO_DECIMALS: usize = 4;

/// Whether a table may be as wide as its content or must fit [`DEFAULT_WIDTH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Optional columns dropped and text wrapped until the table fits [`DEFAULT_WIDTH`].
    Fit,
    /// Every column, as wide as its content (`--wide`).
    Wide,
}

impl Layout {
    /// `--wide` or not.
    #[must_use]
    pub fn new(wide: bool) -> Self {
        if wide { Self::Wide } else { Self::Fit }
    }
}

pub use solvent_core::text::{fixed, float, grouped};

/// A health (`equity / MM`), or `-` when nothing requires margin.
#[must_use]
pub fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| float(v, RATIO_DECIMALS))
}

/// A fraction as a signed percentage with two decimals (`-0.153` -> `-15.30%`).
#[must_use]
pub fn signed_percent(fraction: f64) -> String {
    let text = float(fraction * 100.0, 2);
    if text.starts_with('-') || text == "0.00" {
        format!("{text}%")
    } else {
        format!("+{text}%")
    }
}

/// Decimals amounts of `asset` are shown with at `venue`: its ledger precision, a cent for a
/// stablecoin pegged to the USD.
#[must_use]
pub fn asset_decimals(venue: &Venue, asset: &str) -> u32 {
    match venue.assets.get(asset) {
        Some(listed) if listed.usd_peg.is_some() => listed.precision.min(PEGGED_DECIMALS),
        Some(listed) => listed.precision,
        // `USD` itself (USD figures of segregated currencies): to the cent.
        None if asset == "USD" => PEGGED_DECIMALS,
        None => FALLBACK_DECIMALS,
    }
}

/// Amounts of one asset as a table shows them.
#[derive(Clone, Debug)]
pub struct Money {
    /// The asset's symbol, the unit a column header names.
    pub unit: String,
    decimals: u32,
}

impl Money {
    /// Amounts of `asset` at `venue`.
    #[must_use]
    pub fn new(venue: &Venue, asset: &str) -> Self {
        Self {
            unit: asset.to_owned(),
            decimals: asset_decimals(venue, asset),
        }
    }

    /// `value` rounded to the asset's display precision, grouped.
    #[must_use]
    pub fn show(&self, value: Decimal) -> String {
        fixed(value, self.decimals)
    }

    /// `value` with its unit: `17,200.00 USDT`.
    #[must_use]
    pub fn labelled(&self, value: Decimal) -> String {
        format!("{} {}", self.show(value), self.unit)
    }

    /// A header naming the unit: `equity (BTC)`.
    #[must_use]
    pub fn header(&self, label: &str) -> String {
        format!("{label} ({})", self.unit)
    }
}

/// What an instrument's price is quoted in and how finely, as its mark is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The unit: the coin for an inverse option's premium, USD for an inverse perpetual's or
    /// future's price, the settlement asset for a linear contract.
    pub unit: String,
    /// Decimals of the premium when it is in coin; `None`: derived from the price (a cent at 1
    /// and above, [`SMALL_PRICE_DIGITS`] significant digits below).
    coin_decimals: Option<u32>,
}

impl Quote {
    /// The quote of the instrument `name` at `venue`; `None` when the venue does not resolve it
    /// (a report only holds instruments it resolved).
    #[must_use]
    pub fn of(venue: &Venue, name: &str) -> Option<Self> {
        let instrument = venue.instrument(name).ok()?;
        let kind = instrument.terms.kind();
        Some(match (instrument.style, kind) {
            (Style::Inverse, InstrumentKind::Option) => Self {
                unit: instrument.settlement.clone(),
                coin_decimals: Some(COIN_PREMIUM_DECIMALS),
            },
            (Style::Inverse, _) => Self {
                unit: "USD".to_owned(),
                coin_decimals: None,
            },
            (Style::Linear, _) => Self {
                unit: instrument.settlement.clone(),
                coin_decimals: None,
            },
        })
    }

    /// `price` to the quote's tick, grouped.
    #[must_use]
    pub fn show(&self, price: Decimal) -> String {
        fixed(
            price,
            self.coin_decimals.unwrap_or_else(|| price_decimals(price)),
        )
    }
}

/// Decimals a price in USD (or a stablecoin) is shown with: a cent at 1 and above; below,
/// enough for [`SMALL_PRICE_DIGITS`] significant digits (at most 12).
#[must_use]
pub fn price_decimals(price: Decimal) -> u32 {
    let magnitude = price.abs();
    if magnitude >= Decimal::ONE || magnitude.is_zero() {
        return 2;
    }
    // Leading zeros after the point: 0.15 has none, 0.00001 has four.
    let mut zeros = 0;
    let mut scaled = magnitude;
    while scaled < Decimal::new(1, 1) && zeros < 12 {
        scaled *= Decimal::TEN;
        zeros += 1;
    }
    u32::try_from(zeros + SMALL_PRICE_DIGITS)
        .unwrap_or(12)
        .min(12)
}

/// How a column is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A figure: right-aligned, never wrapped.
    Number,
    /// A name or a state: left-aligned, never wrapped.
    Label,
    /// Prose (a component's arithmetic): left-aligned, wrapped to fit.
    Text,
}

/// One column of a [`Grid`].
#[derive(Clone, Debug)]
pub struct Column {
    header: String,
    kind: Kind,
    /// `Some(rank)`: dropped to fit the width, lowest rank first; `None`: always shown.
    optional: Option<u8>,
    /// The header CSV writes, where the exact figure's unit differs from the shown one (a
    /// fraction under a percentage); `None`: the table's header.
    csv_header: Option<String>,
    /// Written to CSV only (a unit a table carries in its cells).
    csv_only: bool,
    /// Shown in tables only (two figures a table joins in one cell, CSV writes apart).
    table_only: bool,
}

impl Column {
    /// A column always shown.
    #[must_use]
    pub fn new(header: impl Into<String>, kind: Kind) -> Self {
        Self {
            header: header.into(),
            kind,
            optional: None,
            csv_header: None,
            csv_only: false,
            table_only: false,
        }
    }

    /// The header CSV writes in place of the table's (`fall (fraction)` under `fall`, whose
    /// cells a table shows as percentages).
    #[must_use]
    pub fn csv_header(mut self, header: impl Into<String>) -> Self {
        self.csv_header = Some(header.into());
        self
    }

    /// A column CSV writes and tables leave out.
    #[must_use]
    pub fn csv_only(mut self) -> Self {
        self.csv_only = true;
        self
    }

    /// A column tables show and CSV leaves out (it writes the figures the cell joins in
    /// columns of their own).
    #[must_use]
    pub fn table_only(mut self) -> Self {
        self.table_only = true;
        self
    }

    /// A column dropped when the table must fit the width, those of lower `rank` first.
    #[must_use]
    pub fn optional(mut self, rank: u8) -> Self {
        self.optional = Some(rank);
        self
    }
}

/// One cell of a [`Grid`]: as a table shows it (rounded, grouped, with its unit where the
/// column's rows differ) and as CSV writes it (exact: a decimal as the ledger holds it, a ratio
/// or fraction as the shortest text that reads back to the same `f64`, empty where there is
/// none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    shown: String,
    exact: String,
}

impl Cell {
    /// Text, the same in a table and in CSV (a name, a state).
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            exact: text.clone(),
            shown: text,
        }
    }

    /// A figure shown as `shown`, written exactly as `exact`.
    #[must_use]
    pub fn figure(shown: impl Into<String>, exact: impl Into<String>) -> Self {
        Self {
            shown: shown.into(),
            exact: exact.into(),
        }
    }

    /// A decimal shown as `shown`, written with every digit it holds (trailing zeros dropped).
    #[must_use]
    pub fn decimal(shown: impl Into<String>, value: Decimal) -> Self {
        Self::figure(shown, value.normalize().to_string())
    }

    /// A float shown as `shown`, written as the shortest text that reads back to it; empty when
    /// absent or not finite.
    #[must_use]
    pub fn float(shown: impl Into<String>, value: Option<f64>) -> Self {
        Self::figure(
            shown,
            value
                .filter(|v| v.is_finite())
                .map_or_else(String::new, |v| v.to_string()),
        )
    }
}

/// A table's columns and rows, laid out by [`Grid::render`] or written by [`Grid::csv`].
#[derive(Clone, Debug)]
pub struct Grid {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

impl Grid {
    /// A table of these columns, no rows yet.
    #[must_use]
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row of text cells, the same in a table and in CSV (one per column; missing cells
    /// are blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(Cell::text).collect());
    }

    /// The grid of the columns `indices` (in that order) of this one, with their cells.
    #[must_use]
    pub fn select(&self, indices: &[usize]) -> Self {
        Self {
            columns: indices
                .iter()
                .filter_map(|&index| self.columns.get(index).cloned())
                .collect(),
            rows: self
                .rows
                .iter()
                .map(|row| {
                    indices
                        .iter()
                        .map(|&index| row.get(index).cloned().unwrap_or_else(|| Cell::text("")))
                        .collect()
                })
                .collect(),
        }
    }

    /// Adds a row of cells with their exact figures (one per column; missing cells are blank).
    pub fn cells(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The table as RFC 4180 CSV: a header row (each column's unit in its name), then every
    /// row's exact cells, every column but those shown in tables only (none is left out to fit
    /// a width).
    ///
    /// # Errors
    /// When a record cannot be written (never for text in memory, but the writer reports it).
    pub fn csv(&self) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let written: Vec<usize> = (0..self.columns.len())
            .filter(|&index| !self.columns[index].table_only)
            .collect();
        writer.write_record(written.iter().map(|&index| {
            let column = &self.columns[index];
            column.csv_header.as_deref().unwrap_or(&column.header)
        }))?;
        for row in &self.rows {
            writer.write_record(
                written
                    .iter()
                    .map(|&index| row.get(index).map_or("", |cell| cell.exact.as_str())),
            )?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|error| csv::Error::from(error.into_error()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The table, fitted to the layout: under [`Layout::Fit`] prose is wrapped and, while that
    /// is not enough, optional columns are dropped (lowest rank first) until it is at most
    /// [`DEFAULT_WIDTH`] wide; a line under it names the columns left out.
    #[must_use]
    pub fn render(&self, layout: Layout) -> String {
        let mut shown: Vec<usize> = (0..self.columns.len())
            .filter(|&index| !self.columns[index].csv_only)
            .collect();
        if layout == Layout::Wide {
            return self.table(&shown, None).to_string();
        }
        let mut dropped = Vec::new();
        let mut table = self.fitted(&shown);
        while width(&table) > DEFAULT_WIDTH {
            let next = shown
                .iter()
                .enumerate()
                .filter_map(|(place, &index)| {
                    self.columns[index].optional.map(|rank| (rank, place))
                })
                .min();
            let Some((_, place)) = next else { break };
            dropped.push(self.columns[shown.remove(place)].header.clone());
            table = self.fitted(&shown);
        }
        let mut out = table.to_string();
        if !dropped.is_empty() {
            out.push_str(&format!(
                "\n(left out to fit {DEFAULT_WIDTH} columns: {}; --wide shows them)",
                dropped.join(", ")
            ));
        }
        out
    }

    /// The table of the `shown` columns as wide as its content, or with its prose wrapped when
    /// that is wider than [`DEFAULT_WIDTH`].
    fn fitted(&self, shown: &[usize]) -> Table {
        let table = self.table(shown, None);
        if width(&table) <= DEFAULT_WIDTH {
            return table;
        }
        self.table(shown, Some(DEFAULT_WIDTH))
    }

    /// The comfy table of the `shown` columns; with a width, prose columns wrap to fit it.
    fn table(&self, shown: &[usize], fit: Option<usize>) -> Table {
        let mut table = Table::new();
        table.load_style(UTF8_BORDERS_ONLY);
        match fit.and_then(|width| u16::try_from(width).ok()) {
            Some(width) => {
                table
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(width);
            }
            // No wrapping unless needed: a wrapped number is easy to misread.
            None => {
                table.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        table.set_header(
            shown
                .iter()
                .map(|&index| self.columns[index].header.clone())
                .collect::<Vec<_>>(),
        );
        for row in &self.rows {
            table.add_row(
                shown
                    .iter()
                    .map(|&index| {
                        row.get(index)
                            .map(|cell| cell.shown.clone())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>(),
            );
        }
        for (place, &index) in shown.iter().enumerate() {
            let kind = self.columns[index].kind;
            if let Some(column) = table.column_mut(place) {
                if kind == Kind::Number {
                    column.set_cell_alignment(CellAlignment::Right);
                }
                column.set_constraint(if kind == Kind::Text {
                    ColumnConstraint::LowerBoundary(Width::Fixed(self.prose_floor(index)))
                } else {
                    ColumnConstraint::ContentWidth
                });
            }
        }
        table
    }
}

impl Grid {
    /// The narrowest a prose column may be wrapped to: [`PROSE_MIN_WIDTH`], or its longest word
    /// when that is wider (up to [`PROSE_MAX_WORD`]: a name is not split mid-word), or its
    /// content's width when that is less (a short column keeps its own width).
    fn prose_floor(&self, index: usize) -> u16 {
        let cells = || {
            self.rows
                .iter()
                .filter_map(|row| row.get(index).map(|cell| &cell.shown))
                .chain(std::iter::once(&self.columns[index].header))
        };
        let widest = cells().map(|cell| text_width(cell)).max().unwrap_or(0);
        let longest_word = cells()
            .flat_map(|cell| cell.split_whitespace())
            .map(|word| word.chars().count())
            .max()
            .unwrap_or(0);
        let floor = longest_word
            .min(PROSE_MAX_WORD)
            .max(usize::from(PROSE_MIN_WIDTH))
            .min(widest);
        // comfy-table's boundary counts the cell's padding, one space each side.
        u16::try_from(floor + 2).unwrap_or(PROSE_MIN_WIDTH)
    }
}

/// The widest line of a table, in characters (its borders are one column each).
#[must_use]
pub fn width(table: &Table) -> usize {
    text_width(&table.to_string())
}

/// The widest line of a text, in characters.
#[must_use]
pub fn text_width(text: &str) -> usize {
    text.lines()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn percentages_carry_their_sign() {
        assert_eq!(signed_percent(-0.153), "-15.30%");
        assert_eq!(signed_percent(0.25), "+25.00%");
    }

    #[test]
    fn prices_keep_a_cent_or_five_significant_digits() {
        assert_eq!(price_decimals(dec!(89596.638)), 2);
        assert_eq!(price_decimals(dec!(0.15234)), 5);
        assert_eq!(price_decimals(dec!(0.000012345)), 9);
        assert_eq!(
            fixed(dec!(0.000012345), price_decimals(dec!(0.000012345))),
            "0.000012345"
        );
    }

    #[test]
    fn a_wide_grid_drops_optional_columns_to_fit() {
        let mut grid = Grid::new(vec![
            Column::new("name", Kind::Label),
            Column::new("a", Kind::Number).optional(1),
            Column::new("b", Kind::Number).optional(0),
            Column::new("prose", Kind::Text),
        ]);
        grid.row(vec![
            "x".to_owned(),
            "1".repeat(60),
            "2".repeat(60),
            "word ".repeat(30),
        ]);
        let fitted = grid.render(Layout::Fit);
        assert!(text_width(&fitted) <= DEFAULT_WIDTH, "{fitted}");
        assert!(fitted.contains(&"1".repeat(60)), "{fitted}");
        assert!(!fitted.contains(&"2".repeat(60)), "{fitted}");
        assert!(
            fitted.contains("left out to fit 120 columns: b;"),
            "{fitted}"
        );
        let wide = grid.render(Layout::Wide);
        assert!(wide.contains(&"2".repeat(60)) && text_width(&wide) > DEFAULT_WIDTH);
    }
}
