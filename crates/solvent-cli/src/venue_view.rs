//! `solvent venue show` lays a venue's rules out as the venue's own pages do (a table per
//! margin rule: tier, position value range, maximum leverage, maintenance rate, maintenance
//! amount), with its collateral haircuts, contracts and the sources its file cites, so a user
//! can hold it against the venue. `solvent venue check` validates a venue file: the reader's
//! checks, then the tables' shape (rates that fall, leverage that rises), each error naming its
//! key.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use comfy_table::{CellAlignment, Table};
use rust_decimal::Decimal;
use solvent_core::instrument::{Instrument, InstrumentKind, OptionRight, Style, Terms};
use solvent_core::venue::{
    CollateralSchedule, DeficitPolicy, InterestRule, LiquidationMaintenance, MarginRule,
    MarginTier, RatePeriod, Series, TierRates, TierUnit, Venue, WithdrawalRule,
};

use crate::display::{Column, Grid, Kind};
use crate::render::{grouped, table};
use crate::venues;

/// The comments of a venue file, by the table (`[section]`) they document.
struct Comments {
    /// Comment lines before the first table: the file's own sources and method.
    preamble: Vec<String>,
    /// Per table header (`margin_rules.binance_btcusdt`): the comments inside it, full lines as
    /// they are and end-of-line comments after their key (`size_step: ...`), and the comment
    /// blocks set apart below the previous table that belong to it (see [`Comments::of`]).
    sections: Vec<(String, Vec<String>)>,
}

/// The header key of a TOML table line (`[margin_rules.x]` -> `margin_rules.x`,
/// `[[series]]` -> `series`), or `None` for any other line.
fn header(line: &str) -> Option<String> {
    let line = line.split('#').next().unwrap_or_default().trim();
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(inner);
    let key_like = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"'));
    key_like.then(|| inner.replace('"', ""))
}

/// The text of a full-line comment (`# text` -> `text`).
fn comment(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix('#')
        .map(|text| text.strip_prefix(' ').unwrap_or(text))
}

/// An end-of-line comment after a `key = value` line, as `key: comment`. Lines of an array
/// (`{ up_to = ... }  # tier 1`) are left out: the table shows them.
fn trailing(line: &str) -> Option<String> {
    let trimmed = line.trim();
    let key = trimmed.split('=').next()?.trim();
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return None;
    }
    // A '#' inside a quoted value is not a comment: look after the value's last quote.
    let after_value = trimmed.rfind('"').map_or(trimmed, |at| &trimmed[at..]);
    let text = after_value.split_once('#')?.1.trim();
    (!text.is_empty()).then(|| format!("{key}: {text}"))
}

impl Comments {
    /// The comments of `text`. A comment block set apart by a blank line after a table's last
    /// value documents the next table when it touches that table's header or names it (one of
    /// `names(key)`: the rule's name or its contracts'); otherwise it stays with the table above
    /// it (a note on that table, or a banner).
    fn of(text: &str, names: &dyn Fn(&str) -> Vec<String>) -> Self {
        let lines: Vec<&str> = text.lines().collect();
        let headers: Vec<(usize, String)> = lines
            .iter()
            .enumerate()
            .filter_map(|(at, line)| header(line).map(|key| (at, key)))
            .collect();
        let first = headers.first().map_or(lines.len(), |(at, _)| *at);
        let preamble = lines[..first]
            .iter()
            .filter_map(|line| comment(line))
            .map(str::to_owned)
            .collect();
        let mut sections: Vec<(String, Vec<String>)> = Vec::with_capacity(headers.len());
        let mut leading: Vec<String> = Vec::new();
        for (index, (at, key)) in headers.iter().enumerate() {
            let end = headers
                .get(index + 1)
                .map_or(lines.len(), |(next, _)| *next);
            let body = &lines[at + 1..end];
            // The last line of the table's own content: blocks after it may document the next.
            let last = body
                .iter()
                .rposition(|line| !line.trim().is_empty() && comment(line).is_none());
            let split = match last {
                Some(last) => body[last + 1..]
                    .iter()
                    .position(|line| line.trim().is_empty())
                    .map_or(body.len(), |blank| last + 1 + blank),
                None => body.len(),
            };
            let mut own = std::mem::take(&mut leading);
            for line in &body[..split] {
                if let Some(text) = comment(line) {
                    own.push(text.to_owned());
                } else if let Some(text) = trailing(line) {
                    own.push(text);
                }
            }
            // The blocks after it, each with whether it touches the next header.
            let mut blocks: Vec<(Vec<String>, bool)> = Vec::new();
            let mut block: Vec<String> = Vec::new();
            for line in &body[split..] {
                match comment(line) {
                    Some(text) => block.push(text.to_owned()),
                    None if !block.is_empty() => blocks.push((std::mem::take(&mut block), false)),
                    None => {}
                }
            }
            if !block.is_empty() {
                blocks.push((block, true));
            }
            let next_names = headers
                .get(index + 1)
                .map(|(_, next)| names(next))
                .unwrap_or_default();
            for (block, touches) in blocks {
                let named = block
                    .iter()
                    .any(|line| next_names.iter().any(|name| line.contains(name.as_str())));
                if (touches || named) && index + 1 < headers.len() {
                    leading.extend(block);
                } else {
                    own.extend(block);
                }
            }
            sections.push((key.clone(), own));
        }
        Self { preamble, sections }
    }

    /// The comments documenting table `key`.
    fn of_section(&self, key: &str) -> &[String] {
        self.sections
            .iter()
            .find(|(section, _)| section == key)
            .map_or(&[], |(_, lines)| lines.as_slice())
    }
}

/// A decimal as the venue pages write it: no trailing zeros, digits grouped in threes.
fn number(value: Decimal) -> String {
    grouped(&value.normalize().to_string())
}

/// A rate as a percentage with at least two decimals (`0.004` -> `0.40%`); a rate with more
/// than six decimals of percent (Hyperliquid's 1/30) is shown to six, marked `≈`.
fn percent(rate: Decimal) -> String {
    let value = (rate * Decimal::ONE_HUNDRED).normalize();
    let (value, approximate) = if value.scale() > 6 {
        (value.round_dp(6).normalize(), true)
    } else {
        (value, false)
    };
    let decimals = value.scale().max(2) as usize;
    format!("{}{value:.decimals$}%", if approximate { "≈" } else { "" })
}

fn leverage(value: Decimal) -> String {
    format!("{}x", value.normalize())
}

fn kind_name(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Perpetual => "perpetual",
        InstrumentKind::Future => "future",
        InstrumentKind::Option => "option",
    }
}

fn style_name(style: Style) -> &'static str {
    match style {
        Style::Linear => "linear",
        Style::Inverse => "inverse",
    }
}

fn rule_kind(rule: &MarginRule) -> &'static str {
    match rule {
        MarginRule::Tiered { .. } | MarginRule::TieredBy { .. } => "tiered",
        MarginRule::SizeLinear { .. } => "size_linear",
        MarginRule::SizeSqrt { .. } => "size_sqrt",
        MarginRule::OpenInterest { .. } => "open_interest",
        MarginRule::DeribitOption { .. } => "deribit_option",
    }
}

fn right_aligned(mut table: Table, columns: &[usize]) -> Table {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// The tier table of a tiered rule, in the venue pages' columns.
fn tier_table(tiers: &[MarginTier], currency: &str) -> Table {
    let mut out = table();
    out.set_header(vec![
        "Tier".to_owned(),
        format!("Position value ({currency})"),
        "Max leverage".to_owned(),
        "Maintenance margin rate".to_owned(),
        format!("Maintenance amount ({currency})"),
    ]);
    for (index, tier) in tiers.iter().enumerate() {
        let range = match tier.up_to {
            Some(up_to) => format!("{} - {}", number(tier.floor), number(up_to)),
            None => format!("> {}", number(tier.floor)),
        };
        out.add_row(vec![
            (index + 1).to_string(),
            range,
            leverage(tier.max_leverage),
            percent(tier.maintenance_rate),
            number(tier.deduction),
        ]);
    }
    right_aligned(out, &[0, 1, 2, 3, 4])
}

/// The tier table of a rule counting contracts with its rate on the whole position, in the
/// columns of OKX's position-tier tables ("Min. amount (Cont)", "Max. amount (Cont)",
/// "Maintenance margin ratio", "Max. leverage").
fn contract_tier_table(tiers: &[MarginTier], rates: TierRates) -> Table {
    let mut out = table();
    let mut header = vec![
        "Tier".to_owned(),
        "Amount (Cont)".to_owned(),
        "Max leverage".to_owned(),
        "Maintenance margin rate".to_owned(),
    ];
    if rates == TierRates::EachBracket {
        header.push("Maintenance amount".to_owned());
    }
    out.set_header(header);
    for (index, tier) in tiers.iter().enumerate() {
        let range = match tier.up_to {
            Some(up_to) => format!("{} - {}", number(tier.floor), number(up_to)),
            None => format!("> {}", number(tier.floor)),
        };
        let mut row = vec![
            (index + 1).to_string(),
            range,
            leverage(tier.max_leverage),
            percent(tier.maintenance_rate),
        ];
        if rates == TierRates::EachBracket {
            row.push(number(tier.deduction));
        }
        out.add_row(row);
    }
    right_aligned(out, &[0, 1, 2, 3, 4])
}

/// The parameters of a rule that is not tiered, with its formula.
fn formula_table(rule: &MarginRule) -> (String, Table) {
    let mut out = table();
    out.set_header(vec!["parameter", "value"]);
    let (formula, rows): (&str, Vec<(&str, String)>) = match rule {
        MarginRule::Tiered { .. } | MarginRule::TieredBy { .. } => ("", Vec::new()),
        MarginRule::SizeLinear {
            initial_base,
            maintenance_base,
            rate_per_unit,
            max_rate,
            ..
        } => (
            "IM rate = initial base + size in coin x rate per unit; MM rate = maintenance base + size x rate per unit; both capped at the maximum rate",
            vec![
                ("initial base", percent(*initial_base)),
                ("maintenance base", percent(*maintenance_base)),
                ("rate per unit of size", percent(*rate_per_unit)),
                ("maximum rate", percent(*max_rate)),
            ],
        ),
        MarginRule::SizeSqrt {
            initial_base,
            maintenance_base,
            imf_factor,
            rate_step,
            ..
        } => (
            "rate = max(base, 0.8 x base + imf x sqrt(size in coin)), the size premium floored to the rate step; for the initial and the maintenance base alike",
            vec![
                ("initial base", percent(*initial_base)),
                ("maintenance base", percent(*maintenance_base)),
                ("imf factor", imf_factor.normalize().to_string()),
                (
                    "rate step",
                    rate_step.map_or_else(|| "exact".to_owned(), |s| s.normalize().to_string()),
                ),
            ],
        ),
        MarginRule::OpenInterest {
            initial_base,
            maintenance_fraction,
            open_interest_lower_usd,
            open_interest_upper_usd,
            rate_step,
            ..
        } => (
            "IMF = min(base + floor_step((OI - lower) / (upper - lower) x (1 - base)), 1), base below the lower cap; MMF = base x maintenance fraction; caps 0 / 0: no scaling",
            vec![
                ("initial margin fraction (base)", percent(*initial_base)),
                ("maintenance fraction", percent(*maintenance_fraction)),
                (
                    "maintenance margin fraction",
                    percent(*initial_base * *maintenance_fraction),
                ),
                (
                    "open interest lower cap (USD)",
                    number(*open_interest_lower_usd),
                ),
                (
                    "open interest upper cap (USD)",
                    number(*open_interest_upper_usd),
                ),
                (
                    "rate step",
                    rate_step.map_or_else(|| "exact".to_owned(), |s| s.normalize().to_string()),
                ),
            ],
        ),
        MarginRule::DeribitOption {
            initial_base,
            initial_floor,
            maintenance,
            ..
        } => (
            "short call IM = max(initial base - OTM/S, floor) x S + mark, MM = maintenance x S + mark; short put IM = max(max(initial base - OTM/S, floor) x S + mark, MM), MM = max(maintenance x S, maintenance x mark) + mark; long: none",
            vec![
                ("initial base", percent(*initial_base)),
                ("initial floor", percent(*initial_floor)),
                ("maintenance", percent(*maintenance)),
            ],
        ),
    };
    for (label, value) in rows {
        out.add_row(vec![label.to_owned(), value]);
    }
    (formula.to_owned(), right_aligned(out, &[1]))
}

fn collateral_table(venue: &Venue, schedules: &[(&String, &CollateralSchedule)]) -> Table {
    let mut out = table();
    out.set_header(vec![
        "Asset",
        "Tier",
        "Value (USD)",
        "Collateral ratio",
        "Haircut",
    ]);
    for (symbol, schedule) in schedules {
        let mut floor = Decimal::ZERO;
        for (index, tier) in schedule.tiers.iter().enumerate() {
            let range = match tier.up_to_usd {
                Some(up_to) => format!("{} - {}", number(floor), number(up_to)),
                None => format!("> {}", number(floor)),
            };
            out.add_row(vec![
                (*symbol).clone(),
                (index + 1).to_string(),
                range,
                percent(tier.ratio),
                percent(Decimal::ONE - tier.ratio),
            ]);
            floor = tier.up_to_usd.unwrap_or(floor);
        }
        if let Some(up_to) = schedule.tiers.last().and_then(|tier| tier.up_to_usd) {
            out.add_row(vec![
                (*symbol).clone(),
                "-".to_owned(),
                format!("> {}", number(up_to)),
                percent(Decimal::ZERO),
                percent(Decimal::ONE),
            ]);
        }
    }
    let uncounted: Vec<&str> = venue
        .assets
        .keys()
        .filter(|symbol| !venue.collateral.contains_key(*symbol))
        .map(String::as_str)
        .collect();
    if !uncounted.is_empty() {
        out.add_row(vec![
            uncounted.join(", "),
            "-".to_owned(),
            "any".to_owned(),
            percent(Decimal::ZERO),
            "no collateral value".to_owned(),
        ]);
    }
    right_aligned(out, &[1, 2, 3, 4])
}

fn borrow_lines(schedules: &[(&String, &CollateralSchedule)]) -> String {
    let mut out = String::new();
    for (symbol, schedule) in schedules {
        if let Some(borrow) = &schedule.borrow {
            let _ = writeln!(
                out,
                "{symbol} may be borrowed: initial margin {} and maintenance margin {} of the loan value",
                percent(borrow.initial_rate),
                percent(borrow.maintenance_rate)
            );
        }
        // The rate as the venue publishes it, and the rule that says which hours it charges.
        if let Some(interest) = &schedule.interest {
            let (period, rule) = (
                match interest.per {
                    RatePeriod::Hour => "an hour",
                    RatePeriod::Day => "a day",
                    RatePeriod::Year => "a year",
                },
                match interest.rule {
                    InterestRule::StartedHour => {
                        "each started hour (the hour it is taken in, then each hh:00 it is outstanding)"
                    }
                    InterestRule::HourSnapshot => "each hh:00 it is outstanding at",
                },
            );
            let _ = writeln!(
                out,
                "{symbol} loans pay interest of {} {period}, charged for {rule}",
                percent(interest.rate)
            );
        }
    }
    out
}

/// A contract's terms on one line.
fn terms(instrument: &Instrument) -> String {
    let mut line = format!(
        "{} {}, underlying {}, settled in {}, contract size {}{}, size step {}",
        style_name(instrument.style),
        kind_name(instrument.terms.kind()),
        instrument.underlying,
        instrument.settlement,
        instrument.contract_size.normalize(),
        match (instrument.style, instrument.terms.kind()) {
            (Style::Inverse, InstrumentKind::Perpetual | InstrumentKind::Future) => " USD",
            _ => "",
        },
        instrument.size_step.normalize(),
    );
    if let Some(default) = instrument.default_leverage {
        let _ = write!(line, ", default leverage {}", leverage(default));
    }
    if let Some(tick) = instrument.tick_size {
        let _ = write!(line, ", price tick {}", tick.normalize());
    }
    match &instrument.terms {
        Terms::Perpetual => {}
        Terms::Future { expiry } => {
            let _ = write!(line, ", expiry {expiry}");
        }
        Terms::Option {
            expiry,
            strike,
            right,
        } => {
            let right = match right {
                OptionRight::Call => "call",
                OptionRight::Put => "put",
            };
            let _ = write!(line, ", {right} strike {strike}, expiry {expiry}");
        }
    }
    line
}

fn series_line(series: &Series) -> String {
    let mut line = format!(
        "{} {} {} series settled in {}, contract size {}, size step {}",
        series.underlying,
        style_name(series.style),
        kind_name(series.kind),
        series.settlement,
        series.contract_size.normalize(),
        series.size_step.normalize(),
    );
    if let Some(default) = series.default_leverage {
        let _ = write!(line, ", default leverage {}", leverage(default));
    }
    line
}

fn header_lines(venue: &Venue, origin: &str) -> String {
    let mut liquidation = match venue.liquidation_maintenance {
        LiquidationMaintenance::AtLiquidationPrice => {
            "maintenance margin at the liquidation price".to_owned()
        }
        LiquidationMaintenance::AtEntryValue => "maintenance margin on the entry value".to_owned(),
    };
    // Only a venue that adds a fee to close says so: the others' line stays as it was.
    if !venue.liquidation_fee_rate.is_zero() {
        let _ = write!(
            liquidation,
            " plus a fee to close of {}% of the value at that price",
            (venue.liquidation_fee_rate * Decimal::ONE_HUNDRED).normalize()
        );
    }
    let mut deficits = match venue.deficits {
        DeficitPolicy::Adl => "auto-deleveraging",
        DeficitPolicy::Socialise => "socialised",
    }
    .to_owned();
    // Only a venue with a withdrawal rule of its own says so (DESIGN.md 7's is the default).
    match venue.withdrawal {
        WithdrawalRule::EquityAboveInitialMargin => {}
        WithdrawalRule::WalletAboveMaintenanceMargin => deficits
            .push_str("; withdrawals keep the cross positions' maintenance margin in the wallet"),
        WithdrawalRule::WalletLessUnrealisedLoss => deficits.push_str(
            "; withdrawals keep in each coin's wallet the unrealised loss of the cross positions settled in it, and never pay out unrealised profit",
        ),
    }
    let thresholds = venue.thresholds;
    format!(
        "{} ({origin})\n\
         settlement asset {}; liquidation price of an isolated position: {liquidation}; \
         deficits beyond the insurance fund: {deficits}\n\
         account states by health (equity / MM): margin call at or below {}, reduce-only at or \
         below {}, liquidation at or below {}\n",
        venue.name,
        venue.settlement_asset,
        thresholds.margin_call,
        thresholds.reduce_only,
        thresholds.liquidation
    )
}

fn sources(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}");
    for line in lines {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// One margin rule: the contracts on it, its table and its sources.
fn rule_block(
    out: &mut String,
    venue: &Venue,
    comments: &Comments,
    key: &str,
    rule: &MarginRule,
    contracts: &[String],
) {
    let title = match contracts {
        [one] => format!("{one} (margin rule {key}, {})", rule_kind(rule)),
        [] => format!(
            "margin rule {key} ({}; no contract uses it)",
            rule_kind(rule)
        ),
        many => format!(
            "margin rule {key} ({}): {}",
            rule_kind(rule),
            many.join(", ")
        ),
    };
    let _ = writeln!(out, "\n{title}");
    match rule {
        MarginRule::Tiered { tiers, .. } => {
            let _ = writeln!(
                out,
                "maintenance margin = position value x rate - maintenance amount; initial margin = position value / leverage"
            );
            let _ = writeln!(out, "{}", tier_table(tiers, &venue.settlement_asset));
        }
        MarginRule::TieredBy {
            tiers, unit, rates, ..
        } => {
            let bracket = match unit {
                TierUnit::Value => "the position value",
                TierUnit::Contracts => "the number of contracts",
            };
            let maintenance = match rates {
                TierRates::WholePosition => {
                    "maintenance margin = position value x the rate of the tier the position reaches (on the whole position, no maintenance amount)"
                }
                TierRates::EachBracket => {
                    "maintenance margin = position value x rate - maintenance amount"
                }
            };
            let _ = writeln!(
                out,
                "tier by {bracket}; {maintenance}; initial margin = position value / leverage"
            );
            let table = match unit {
                TierUnit::Value => tier_table(tiers, &venue.settlement_asset),
                TierUnit::Contracts => contract_tier_table(tiers, *rates),
            };
            let _ = writeln!(out, "{table}");
        }
        _ => {
            let (formula, parameters) = formula_table(rule);
            let _ = writeln!(out, "{formula}\n{parameters}");
        }
    }
    sources(
        out,
        "source:",
        comments.of_section(&format!("margin_rules.{key}")),
    );
}

/// The names of the contracts on the rule `rule`: listed instruments and series.
fn contracts_of(venue: &Venue, rule: &Arc<MarginRule>) -> Vec<String> {
    let listed = venue
        .listed_instruments()
        .filter(|instrument| Arc::ptr_eq(&instrument.margin, rule))
        .map(|instrument| instrument.name.clone());
    let series = venue
        .series()
        .filter(|series| Arc::ptr_eq(&series.margin, rule))
        .map(|series| {
            format!(
                "{} {} series ({})",
                series.underlying,
                kind_name(series.kind),
                series.settlement
            )
        });
    listed.chain(series).collect()
}

/// `solvent venue show VENUE [INSTRUMENT]`: the venue's rules laid out as its pages lay them
/// out; with an instrument, that contract's terms and its table only.
///
/// # Errors
/// A venue that cannot be read or does not validate, or an instrument it does not list.
pub fn show(venue_arg: &Path, instrument: Option<&str>) -> Result<String> {
    let (origin, text) = venues::text_of(Some(venue_arg))?;
    let venue = Venue::from_toml(&origin, &text)?;
    let names = |key: &str| -> Vec<String> {
        let mut names = Vec::new();
        if let Some(rule) = key.strip_prefix("margin_rules.") {
            names.push(rule.to_owned());
            if let Some(rule) = venue.rules.get(rule) {
                names.extend(
                    contracts_of(&venue, rule)
                        .into_iter()
                        .filter(|name| !name.contains(' ')),
                );
            }
        } else if let Some(name) = key.rsplit('.').next() {
            names.push(name.to_owned());
        }
        names
    };
    let comments = Comments::of(&text, &names);
    let mut out = header_lines(&venue, &origin);

    if let Some(name) = instrument {
        let contract = venue.instrument(name).map_err(|problem| {
            let known: Vec<&str> = venue
                .listed_instruments()
                .map(|listed| listed.name.as_str())
                .collect();
            anyhow::anyhow!(
                "{origin}: {problem}; listed: {}{}",
                known.join(", "),
                if venue.series().next().is_some() {
                    " (and Deribit-style names of its series)"
                } else {
                    ""
                }
            )
        })?;
        let _ = writeln!(out, "\n{}: {}", contract.name, terms(&contract));
        sources(
            &mut out,
            "notes:",
            comments.of_section(&format!("instruments.{}", contract.name)),
        );
        let key = contract.margin.name().to_owned();
        rule_block(
            &mut out,
            &venue,
            &comments,
            &key,
            &contract.margin,
            std::slice::from_ref(&contract.name),
        );
        return Ok(out);
    }

    out.push('\n');
    sources(&mut out, "sources and method:", &comments.preamble);

    let schedules: Vec<(&String, &CollateralSchedule)> = venue.collateral.iter().collect();
    let _ = writeln!(out, "\ncollateral (progressive tiers by USD value)");
    let _ = writeln!(out, "{}", collateral_table(&venue, &schedules));
    out.push_str(&borrow_lines(&schedules));

    let listed: Vec<&Arc<Instrument>> = venue.listed_instruments().collect();
    if !listed.is_empty() || venue.series().next().is_some() {
        let _ = writeln!(out, "\ncontracts");
        for instrument in &listed {
            let _ = writeln!(out, "  {}: {}", instrument.name, terms(instrument));
        }
        for series in venue.series() {
            let _ = writeln!(
                out,
                "  {} (margin rule {})",
                series_line(series),
                series.margin.name()
            );
        }
    }
    for (key, rule) in &venue.rules {
        let contracts = contracts_of(&venue, rule);
        rule_block(&mut out, &venue, &comments, key, rule, &contracts);
    }
    Ok(out)
}

/// Which table of `solvent venue show` `--csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VenueTable {
    /// Every tiered rule's brackets (with an instrument, its rule's), one row per tier.
    Tiers,
    /// The collateral haircut tiers, one row per asset and tier.
    Collateral,
}

/// `solvent venue show VENUE [INSTRUMENT] --csv TABLE`: the tiers or the collateral tiers as
/// RFC 4180 CSV, rates as fractions and bounds as the file writes them (an empty `up to` for an
/// open-ended tier).
///
/// # Errors
/// As [`show`]; a rule that is not tiered when an instrument's tiers are asked for.
pub fn show_csv(venue_arg: &Path, instrument: Option<&str>, table: VenueTable) -> Result<String> {
    let (origin, text) = venues::text_of(Some(venue_arg))?;
    let venue = Venue::from_toml(&origin, &text)?;
    let currency = &venue.settlement_asset;
    let grid = match table {
        VenueTable::Tiers => {
            let mut grid = Grid::new(vec![
                Column::new("rule", Kind::Label),
                Column::new("contracts", Kind::Label),
                Column::new("tier", Kind::Number),
                Column::new(format!("position value from ({currency})"), Kind::Number),
                Column::new(format!("position value up to ({currency})"), Kind::Number),
                Column::new("max leverage", Kind::Number),
                Column::new("maintenance rate (fraction)", Kind::Number),
                Column::new(format!("maintenance amount ({currency})"), Kind::Number),
            ]);
            let rules: Vec<(String, Arc<MarginRule>, Vec<String>)> = match instrument {
                Some(name) => {
                    let contract = venue
                        .instrument(name)
                        .map_err(|problem| anyhow::anyhow!("{origin}: {problem}"))?;
                    if contract.margin.tiers().is_none() {
                        bail!(
                            "{origin}: {name}'s margin rule {} is {}, not tiered: no tiers to write",
                            contract.margin.name(),
                            rule_kind(&contract.margin)
                        );
                    }
                    vec![(
                        contract.margin.name().to_owned(),
                        Arc::clone(&contract.margin),
                        vec![contract.name.clone()],
                    )]
                }
                None => venue
                    .rules
                    .iter()
                    .map(|(key, rule)| (key.clone(), Arc::clone(rule), contracts_of(&venue, rule)))
                    .collect(),
            };
            // Bounds in contracts would be misread under a column of position value.
            if rules
                .iter()
                .any(|(_, rule, _)| matches!(rule.tiers(), Some((_, TierUnit::Contracts, _))))
            {
                bail!(
                    "{origin}: tiers counted in contracts (tier_unit = \"contracts\") have no position value bounds to write as CSV; see the table of solvent venue show"
                );
            }
            for (key, rule, contracts) in rules {
                let Some((tiers, _, _)) = rule.tiers() else {
                    continue;
                };
                for (index, tier) in tiers.iter().enumerate() {
                    grid.row(vec![
                        key.clone(),
                        contracts.join("; "),
                        (index + 1).to_string(),
                        tier.floor.normalize().to_string(),
                        tier.up_to
                            .map_or_else(String::new, |up_to| up_to.normalize().to_string()),
                        tier.max_leverage.normalize().to_string(),
                        tier.maintenance_rate.normalize().to_string(),
                        tier.deduction.normalize().to_string(),
                    ]);
                }
            }
            grid
        }
        VenueTable::Collateral => {
            let mut grid = Grid::new(vec![
                Column::new("asset", Kind::Label),
                Column::new("tier", Kind::Number),
                Column::new("value from (USD)", Kind::Number),
                Column::new("value up to (USD)", Kind::Number),
                Column::new("collateral ratio (fraction)", Kind::Number),
            ]);
            for (symbol, schedule) in &venue.collateral {
                let mut floor = Decimal::ZERO;
                for (index, tier) in schedule.tiers.iter().enumerate() {
                    grid.row(vec![
                        symbol.clone(),
                        (index + 1).to_string(),
                        floor.normalize().to_string(),
                        tier.up_to_usd
                            .map_or_else(String::new, |up_to| up_to.normalize().to_string()),
                        tier.ratio.normalize().to_string(),
                    ]);
                    floor = tier.up_to_usd.unwrap_or(floor);
                }
            }
            grid
        }
    };
    Ok(grid.csv()?)
}

/// `solvent venue check FILE`: the reader's validation, then the tables' shape. On success a
/// one-line summary; otherwise an error naming every key at fault.
///
/// # Errors
/// The first problem the reader finds (file, key and problem), or every table problem of a
/// file the reader accepts.
pub fn check(file: &Path) -> Result<String> {
    let (origin, text) = venues::text_of(Some(file))?;
    let venue = Venue::from_toml(&origin, &text)?;
    let problems = venue.table_problems();
    if !problems.is_empty() {
        let listed: Vec<String> = problems
            .iter()
            .map(|(path, problem)| format!("{origin}: {path}: {problem}"))
            .collect();
        bail!(
            "{} problem{} in the tables:\n{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            listed.join("\n")
        );
    }
    let tiers: usize = venue
        .rules
        .values()
        .map(|rule| rule.tiers().map_or(0, |(tiers, _, _)| tiers.len()))
        .sum();
    Ok(format!(
        "{origin}: ok ({}: {} assets, {} collateral schedules, {} margin rules with {tiers} tiers, {} instruments, {} series)\n",
        venue.name,
        venue.assets.len(),
        venue.collateral.len(),
        venue.rules.len(),
        venue.listed_instruments().count(),
        venue.series().count(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_comments_and_trailing_comments_are_told_apart() {
        assert_eq!(
            header("[margin_rules.a]  # x").as_deref(),
            Some("margin_rules.a")
        );
        assert_eq!(header("[[series]]").as_deref(), Some("series"));
        assert_eq!(header("tiers = [{ ratio = \"1\" }]"), None);
        assert_eq!(header("  { up_to = \"1\" },"), None);
        assert_eq!(
            trailing("size_step = \"0.001\"  # ASSUMPTION: not found").as_deref(),
            Some("size_step: ASSUMPTION: not found")
        );
        assert_eq!(
            trailing("  { up_to = \"1\", mmr = \"0.1\" }, # tier 1"),
            None
        );
        assert_eq!(trailing("name = \"a # b\""), None);
    }

    #[test]
    fn a_block_set_apart_above_a_table_documents_that_table() {
        let names = |key: &str| vec![key.to_owned()];
        let comments = Comments::of(
            "# file\n\n[a]\n# in a\nx = 1 # x note\n\n# about b\n[b]\ny = 2\n\n# on b\n\n# banner\n\n[c]\nz = 3\n\n# about d\n\n[d]\n",
            &names,
        );
        assert_eq!(comments.preamble, ["file"]);
        assert_eq!(comments.of_section("a"), ["in a", "x: x note"]);
        // Touching b's header: b's. Set apart and not naming c: b's, not c's. Naming c: c's.
        assert_eq!(comments.of_section("b"), ["about b", "on b", "banner"]);
        assert_eq!(comments.of_section("c"), [] as [&str; 0]);
        assert_eq!(comments.of_section("d"), ["about d"]);
    }

    #[test]
    fn rates_read_as_the_venues_write_them() {
        assert_eq!(percent(Decimal::new(4, 3)), "0.40%");
        assert_eq!(percent(Decimal::new(56, 4)), "0.56%");
        assert_eq!(percent(Decimal::new(125, 3)), "12.50%");
        assert_eq!(percent(Decimal::ONE / Decimal::from(30)), "≈3.333333%");
        assert_eq!(number(Decimal::new(1_482_000, 0)), "1,482,000");
    }
}
