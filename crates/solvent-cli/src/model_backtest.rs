//! `solvent backtest --model static|ewma|garch`: margin models of one coin, or of an account's
//! book (options included), measured against the price history (issue 15 item 2). The venue's
//! static grid is the baseline; the scaled models take their parameters from the venue's
//! `[portfolio_margin.vol_scaled.UNDERLYING]` block, or Solvent's defaults (k = 3, floor 4%, 25%
//! buffer rebuilt over 20 days) when it has none. A book is revalued each day on the model's
//! grid (`solvent_risk::vol_scaled::book`): its requirement and realised P&L are reported in
//! coin of the underlying (USD / the day's close).

use std::fmt::Write as _;

use anyhow::{Context, Result, anyhow};
use jiff::civil::Date;
use serde::Serialize;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_core::vol_scaled::{AntiProcyclicality, VolModel, VolScaledRange};
use solvent_risk::MarketView;
use solvent_risk::history::{ChristoffersenResult, KupiecResult, PriceHistory};
use solvent_risk::vol_scaled::backtest::{
    CoverageParams, MarginModel, ModelBacktest, Procyclicality, backtest_model, summarise,
};
use solvent_risk::vol_scaled::book::backtest_book;
use solvent_risk::vol_scaled::static_range;

use crate::display::{Cell, Column, Grid, Kind, Layout, float};

/// The days issue 15 calls out: the COVID crash, the May 2021 leverage flush, FTX's collapse
/// and the October 2025 liquidation cascade.
pub const BIG_DAYS: [&str; 4] = ["2020-03-12", "2021-05-19", "2022-11-09", "2025-10-10"];

/// A margin model named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    /// The venue's static grid (the baseline).
    Static,
    /// EWMA-scaled range.
    Ewma,
    /// GARCH(1,1)-scaled range.
    Garch,
}

/// An anti-procyclicality control named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ControlName {
    /// No control.
    None,
    /// 25% buffer released in stress (EMIR RTS 153/2013 art. 28(1)(a)).
    Buffer,
    /// Ten-year stressed floor (art. 28(1)(b)).
    StressedFloor,
    /// 25% weight on stressed observations (art. 28(1)(c)).
    StressedWeight,
}

/// What to backtest.
pub struct Request<'a> {
    /// The models.
    pub models: &'a [ModelName],
    /// The controls of the scaled models (the venue's, or a 25% buffer, when empty).
    pub controls: &'a [ControlName],
    /// The underlyings.
    pub underlyings: &'a [String],
    /// Coverage level of the tests.
    pub level: f64,
    /// Margin period in days (the venue's when absent).
    pub period_days: Option<u32>,
    /// The account whose book is tested instead of one coin, and the market view its options
    /// are valued on (`None` when it holds none).
    pub book: Option<(&'a Portfolio, Option<&'a MarketView<'a>>)>,
}

/// One model's figures on one underlying (the days themselves are left out of the JSON).
#[derive(Serialize)]
pub struct ModelSummary {
    /// The underlying.
    pub underlying: String,
    /// The model.
    pub model: ModelName,
    /// The control (`static` for the baseline).
    pub control: String,
    /// The parameters, as the venue or the defaults set them (`None` for static).
    pub spec: Option<VolScaledRange>,
    /// First and last day a range was set.
    pub first_day: Date,
    /// Last day a range was set.
    pub last_day: Date,
    /// Days tested.
    pub days: usize,
    /// Days the realised move went beyond the range.
    pub exceedances: usize,
    /// Kupiec's proportion-of-failures test.
    pub kupiec: KupiecResult,
    /// Christoffersen's tests.
    pub christoffersen: ChristoffersenResult,
    /// Mean range (fraction of the price).
    pub average_range: f64,
    /// Largest range.
    pub max_range: f64,
    /// Largest 30-day rise.
    pub procyclicality: Procyclicality,
    /// A book's mean requirement in USD (`None` for one coin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_requirement_usd: Option<f64>,
    /// A book's largest requirement in USD (`None` for one coin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requirement_usd: Option<f64>,
    /// The big days: range set the close before, realised move, exceeded.
    pub big_days: Vec<BigDay>,
}

/// A called-out day.
#[derive(Clone, Serialize)]
pub struct BigDay {
    /// The day of the move.
    pub date: Date,
    /// The range in force (set at the previous close).
    pub range: f64,
    /// The realised move over the margin period that started the previous close.
    pub realised: f64,
    /// `|realised| > range`.
    pub exceeded: bool,
}

/// The whole run: summaries and, for the plot, each series' days.
pub struct Outcome {
    /// One per underlying, model and control.
    pub summaries: Vec<ModelSummary>,
    /// The same order: the days (as_of, range, realised, exceeded).
    pub series: Vec<Vec<(Date, f64, f64, bool)>>,
    /// The account whose book was tested (`None`: one coin); its margin and P&L figures are
    /// in coin of the underlying.
    pub account: Option<String>,
    /// Coverage level.
    pub level: f64,
    /// Margin period.
    pub period_days: u32,
}

/// Solvent's defaults when the venue has no block: `k = 3` (the 99.7% two-sided normal
/// quantile, which fat tails bring near 99%), a 4% floor, one day.
fn default_spec(model: VolModel) -> VolScaledRange {
    VolScaledRange {
        model,
        k: 3.0,
        floor: 0.04,
        margin_period_days: 1,
        control: AntiProcyclicality::Buffer {
            share: 0.25,
            rebuild_days: 20,
        },
    }
}

fn control_of(name: ControlName, base: AntiProcyclicality) -> AntiProcyclicality {
    match (name, base) {
        (ControlName::None, _) => AntiProcyclicality::None,
        (ControlName::Buffer, b @ AntiProcyclicality::Buffer { .. }) => b,
        (ControlName::Buffer, _) => AntiProcyclicality::Buffer {
            share: 0.25,
            rebuild_days: 20,
        },
        (ControlName::StressedFloor, b @ AntiProcyclicality::StressedFloor { .. }) => b,
        (ControlName::StressedFloor, _) => AntiProcyclicality::StressedFloor {
            lookback_days: 3652,
        },
        (ControlName::StressedWeight, b @ AntiProcyclicality::StressedWeight { .. }) => b,
        (ControlName::StressedWeight, _) => AntiProcyclicality::StressedWeight {
            weight: 0.25,
            window_days: 365,
        },
    }
}

/// A model to run: its name, the control's label, the model, and the scaled model's parameters.
type Candidate = (ModelName, String, MarginModel, Option<VolScaledRange>);

/// The models to run on `underlying`.
fn models_of(venue: &Venue, underlying: &str, request: &Request<'_>) -> Result<Vec<Candidate>> {
    let pm = venue.portfolio_margin.as_ref();
    let grid = pm
        .and_then(|pm| pm.underlyings.get(underlying))
        .ok_or_else(|| {
            anyhow!("--venue: portfolio_margin.underlyings.{underlying}: missing; the static grid is the baseline")
        })?;
    let configured = pm.and_then(|pm| pm.vol_scaled.get(underlying));
    let mut out = Vec::new();
    for model in request.models {
        let volatility = match model {
            ModelName::Static => {
                out.push((
                    *model,
                    "static".to_owned(),
                    MarginModel::Static {
                        range: static_range(grid),
                    },
                    None,
                ));
                continue;
            }
            ModelName::Ewma => match configured.map(|c| c.model) {
                Some(m @ VolModel::Ewma { .. }) => m,
                _ => VolModel::Ewma { lambda: 0.94 },
            },
            ModelName::Garch => match configured.map(|c| c.model) {
                Some(m @ VolModel::Garch { .. }) => m,
                _ => VolModel::Garch { refit_days: 30 },
            },
        };
        let mut base = configured
            .cloned()
            .unwrap_or_else(|| default_spec(volatility));
        base.model = volatility;
        if let Some(days) = request.period_days {
            base.margin_period_days = days;
        }
        let controls: Vec<AntiProcyclicality> = if request.controls.is_empty() {
            vec![base.control]
        } else {
            request
                .controls
                .iter()
                .map(|c| control_of(*c, base.control))
                .collect()
        };
        for control in controls {
            let spec = VolScaledRange {
                control,
                ..base.clone()
            };
            out.push((
                *model,
                control.describe().to_owned(),
                MarginModel::Scaled(spec.clone()),
                Some(spec),
            ));
        }
    }
    Ok(out)
}

/// Runs every model on every underlying over the same days (from the first day every scaled
/// model has a forecast, and, for a book with options, the first day with a DVOL print).
///
/// # Errors
/// A missing grid, too short a history, the forecasts' errors; a book's valuation errors.
pub fn run(history: &PriceHistory, venue: &Venue, request: &Request<'_>) -> Result<Outcome> {
    let mut summaries = Vec::new();
    let mut series = Vec::new();
    let mut period_days = request.period_days.unwrap_or(1);
    for underlying in request.underlyings {
        let models = models_of(venue, underlying, request)?;
        if let Some(spec) = models.iter().find_map(|m| m.3.as_ref()) {
            period_days = spec.margin_period_days;
        }
        let mut params = CoverageParams {
            level: request.level,
            margin_period_days: period_days,
            rise_window_days: 30,
            start: None,
        };
        let grid = venue
            .portfolio_margin
            .as_ref()
            .and_then(|pm| pm.underlyings.get(underlying))
            .ok_or_else(|| {
                anyhow!("--venue: portfolio_margin.underlyings.{underlying}: missing")
            })?;
        let mut runs = Vec::new();
        for (name, control, model, spec) in models {
            let (result, usd) = match request.book {
                None => (
                    backtest_model(history, underlying, &model, &params)
                        .with_context(|| format!("{underlying}, model {control}"))?,
                    Vec::new(),
                ),
                Some((portfolio, view)) => {
                    let book =
                        backtest_book(portfolio, underlying, history, view, grid, &model, &params)
                            .map_err(|e| {
                                anyhow!("{}: {underlying}, model {control}: {e}", portfolio.account)
                            })?;
                    let usd = book
                        .days
                        .iter()
                        .map(|d| (d.as_of, d.requirement))
                        .collect::<Vec<_>>();
                    (book.coverage, usd)
                }
            };
            runs.push((name, control, spec, result, usd));
        }
        // Compare on the same days: start where the last model's forecasts start.
        let start = runs
            .iter()
            .filter_map(|r| r.3.days.first())
            .map(|d| d.as_of)
            .max();
        params.start = start;
        for (name, control, spec, result, usd) in runs {
            let result = summarise(result.days, &params, underlying)
                .with_context(|| format!("{underlying}, model {control}"))?;
            series.push(
                result
                    .days
                    .iter()
                    .map(|d| (d.as_of, d.range, d.realised, d.exceeded))
                    .collect(),
            );
            let mut row = summary(underlying, name, control, spec, &result);
            if request.book.is_some() {
                let kept: Vec<f64> = usd
                    .iter()
                    .filter(|(as_of, _)| start.is_none_or(|s| *as_of >= s))
                    .map(|(_, requirement)| *requirement)
                    .collect();
                #[allow(clippy::cast_precision_loss)]
                let mean = kept.iter().sum::<f64>() / kept.len().max(1) as f64;
                row.average_requirement_usd = Some(mean);
                row.max_requirement_usd = Some(kept.iter().copied().fold(0.0, f64::max));
            }
            summaries.push(row);
        }
    }
    Ok(Outcome {
        summaries,
        series,
        level: request.level,
        period_days,
        account: request
            .book
            .map(|(portfolio, _)| portfolio.account.to_string()),
    })
}

fn summary(
    underlying: &str,
    model: ModelName,
    control: String,
    spec: Option<VolScaledRange>,
    result: &ModelBacktest,
) -> ModelSummary {
    let big_days = BIG_DAYS
        .iter()
        .filter_map(|text| {
            let date: Date = text.parse().ok()?;
            // The margin period that ends on the big day's close (set the close before).
            let day = result.days.iter().find(|d| d.outcome == date)?;
            Some(BigDay {
                date,
                range: day.range,
                realised: day.realised,
                exceeded: day.exceeded,
            })
        })
        .collect();
    ModelSummary {
        underlying: underlying.to_owned(),
        model,
        control,
        spec,
        first_day: result.days[0].as_of,
        last_day: result.days[result.days.len() - 1].as_of,
        days: result.days.len(),
        exceedances: result.exceedances,
        kupiec: result.kupiec,
        christoffersen: result.christoffersen,
        average_range: result.average_range,
        max_range: result.max_range,
        procyclicality: result.procyclicality,
        average_requirement_usd: None,
        max_requirement_usd: None,
        big_days,
    }
}

fn percent(fraction: f64) -> String {
    format!("{}%", float(fraction * 100.0, 2))
}

/// The model's name as the command line and the JSON write it.
fn model_name(model: ModelName) -> &'static str {
    match model {
        ModelName::Static => "static",
        ModelName::Ewma => "ewma",
        ModelName::Garch => "garch",
    }
}

/// The model and its control (`static` alone: the baseline has none).
fn model_label(s: &ModelSummary) -> String {
    match s.model {
        ModelName::Static => "static".to_owned(),
        model => format!("{} / {}", model_name(model), s.control),
    }
}

/// The tables: one row per model, then the big days.
pub fn render(outcome: &Outcome) -> String {
    let mut out = String::new();
    match &outcome.account {
        None => {
            let _ = writeln!(
                out,
                "Margin models against history: one coin, range set at each close, realised move over {} day(s), coverage {}%\n",
                outcome.period_days,
                float(outcome.level * 100.0, 1)
            );
        }
        Some(account) => {
            let _ = writeln!(
                out,
                "Margin models against history: the book of {account} on each underlying (options on the day's DVOL with the account's smile, constant tenor and moneyness), requirement = the venue's portfolio margin of the book on the day's grid of the model (scan, floors, add-ons), set at each close, against the realised P&L over {} day(s), coverage {}%\nMargin and P&L in coin of the underlying (USD / the day's close), shown as % of one coin; an exceedance is a loss beyond the requirement.\n",
                outcome.period_days,
                float(outcome.level * 100.0, 1)
            );
        }
    }
    if outcome.period_days > 1 {
        let _ = writeln!(
            out,
            "Periods set on consecutive days overlap: Kupiec's and Christoffersen's p-values are over the {0} interleaved sequences of non-overlapping periods (every {0}th day), Bonferroni-combined: {0} x the smallest, at most 1.\n",
            outcome.period_days
        );
    }
    let mut underlyings: Vec<&str> = outcome
        .summaries
        .iter()
        .map(|s| s.underlying.as_str())
        .collect();
    underlyings.dedup();
    for underlying in underlyings {
        let rows: Vec<&ModelSummary> = outcome
            .summaries
            .iter()
            .filter(|s| s.underlying == underlying)
            .collect();
        let Some(first) = rows.first() else { continue };
        let _ = writeln!(
            out,
            "{underlying}, {} to {} ({} days)",
            first.first_day, first.last_day, first.days
        );
        // The underlying and its days are in the heading above: CSV writes them per row.
        let grid = summary_grid(&rows);
        out.push_str(&grid.render(Layout::Wide));
        out.push('\n');
        let mut big = Grid::new(vec![
            Column::new("day", Kind::Label),
            Column::new(
                if outcome.account.is_some() {
                    "realised P&L"
                } else {
                    "realised move"
                },
                Kind::Number,
            ),
            Column::new("model / control", Kind::Label),
            Column::new("margin in force", Kind::Number),
            Column::new("covered", Kind::Label),
        ]);
        for date in BIG_DAYS {
            for s in &rows {
                if let Some(day) = s.big_days.iter().find(|d| d.date.to_string() == date) {
                    big.row(vec![
                        date.to_owned(),
                        percent(day.realised),
                        model_label(s),
                        percent(day.range),
                        if day.exceeded { "EXCEEDED" } else { "yes" }.to_owned(),
                    ]);
                }
            }
        }
        out.push_str("\nThe big days\n");
        out.push_str(&big.render(Layout::Wide));
        out.push_str("\n\n");
    }
    out
}

/// The summary table, one row per model: as a table shows it (percentages, the rise and its
/// days joined) and as CSV writes it (fractions, the underlying and the days tested on each
/// row, the rise's days apart).
fn summary_grid(rows: &[&ModelSummary]) -> Grid {
    // A book's rows carry its requirement in USD as well.
    let book = rows.iter().any(|s| s.average_requirement_usd.is_some());
    let mut columns = vec![
        Column::new("underlying", Kind::Label).csv_only(),
        Column::new("model", Kind::Label).csv_only(),
        Column::new("control", Kind::Label).csv_only(),
        Column::new("first_day", Kind::Label).csv_only(),
        Column::new("last_day", Kind::Label).csv_only(),
        Column::new("days", Kind::Number).csv_only(),
        Column::new("model / control", Kind::Label).table_only(),
        Column::new("exceedances", Kind::Number),
        Column::new("expected", Kind::Number),
        Column::new("Kupiec p", Kind::Number).csv_header("kupiec_p"),
        Column::new("Christoffersen p (ind.)", Kind::Number)
            .csv_header("christoffersen_independence_p"),
        Column::new("cond. coverage p", Kind::Number).csv_header("conditional_coverage_p"),
        Column::new("average margin", Kind::Number).csv_header("average_range"),
        Column::new("largest margin", Kind::Number).csv_header("max_range"),
        Column::new("largest 30-day rise", Kind::Number).csv_header("largest_30_day_rise"),
        Column::new("rise from / to", Kind::Label).table_only(),
        Column::new("rise_from", Kind::Label).csv_only(),
        Column::new("rise_to", Kind::Label).csv_only(),
    ];
    if book {
        columns.push(
            Column::new("average requirement (USD)", Kind::Number)
                .csv_header("average_requirement_usd"),
        );
        columns.push(
            Column::new("largest requirement (USD)", Kind::Number)
                .csv_header("max_requirement_usd"),
        );
    }
    let mut grid = Grid::new(columns);
    for s in rows {
        let rise = &s.procyclicality;
        let mut cells = vec![
            Cell::text(s.underlying.clone()),
            Cell::text(model_name(s.model)),
            Cell::text(s.control.clone()),
            Cell::text(s.first_day.to_string()),
            Cell::text(s.last_day.to_string()),
            Cell::text(s.days.to_string()),
            Cell::text(model_label(s)),
            Cell::text(s.exceedances.to_string()),
            Cell::float(float(s.kupiec.expected, 1), Some(s.kupiec.expected)),
            Cell::float(float(s.kupiec.p_value, 4), Some(s.kupiec.p_value)),
            Cell::float(
                float(s.christoffersen.p_independence, 4),
                Some(s.christoffersen.p_independence),
            ),
            Cell::float(
                float(s.christoffersen.p_conditional_coverage, 4),
                Some(s.christoffersen.p_conditional_coverage),
            ),
            Cell::float(percent(s.average_range), Some(s.average_range)),
            Cell::float(percent(s.max_range), Some(s.max_range)),
            Cell::float(
                format!(
                    "+{} pts (x{})",
                    float(rise.rise * 100.0, 2),
                    float(1.0 + rise.rise_ratio, 2)
                ),
                Some(rise.rise),
            ),
            Cell::text(if rise.rise > 0.0 {
                format!("{} / {}", rise.from, rise.to)
            } else {
                "-".to_owned()
            }),
            Cell::text(rise.from.to_string()),
            Cell::text(rise.to.to_string()),
        ];
        if book {
            for usd in [s.average_requirement_usd, s.max_requirement_usd] {
                cells.push(Cell::float(
                    usd.map_or_else(|| "-".to_owned(), |v| float(v, 0)),
                    usd,
                ));
            }
        }
        grid.cells(cells);
    }
    grid
}

/// The JSON: the summaries (the days are in the plot, not here).
///
/// # Errors
/// When serialisation fails.
pub fn json(outcome: &Outcome) -> Result<String> {
    #[derive(Serialize)]
    struct Whole<'a> {
        level: f64,
        margin_period_days: u32,
        /// The account whose book was tested (absent for one coin).
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<&'a str>,
        models: &'a [ModelSummary],
    }
    Ok(serde_json::to_string_pretty(&Whole {
        account: outcome.account.as_deref(),
        level: outcome.level,
        margin_period_days: outcome.period_days,
        models: &outcome.summaries,
    })? + "\n")
}

/// One table as CSV (RFC 4180, exact figures, fractions not percents): `summary`, one row per
/// underlying and model; `exceptions`, each margin period whose realised move went beyond the
/// range, per underlying and model.
///
/// # Errors
/// When a record cannot be written.
pub fn csv(outcome: &Outcome, table: crate::render::BacktestTable) -> Result<String> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    match table {
        crate::render::BacktestTable::Summary => {
            let all: Vec<&ModelSummary> = outcome.summaries.iter().collect();
            return Ok(summary_grid(&all).csv()?);
        }
        crate::render::BacktestTable::Exceptions => {
            writer.write_record([
                "underlying",
                "model",
                "control",
                "as_of",
                "range",
                "realised",
            ])?;
            for (s, days) in outcome.summaries.iter().zip(&outcome.series) {
                for (as_of, range, realised, _) in days.iter().filter(|d| d.3) {
                    writer.write_record([
                        s.underlying.clone(),
                        model_name(s.model).to_owned(),
                        s.control.clone(),
                        as_of.to_string(),
                        range.to_string(),
                        realised.to_string(),
                    ])?;
                }
            }
        }
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow!("csv: {}", e.error()))?;
    Ok(String::from_utf8(bytes)?)
}
