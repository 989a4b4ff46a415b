//! SVG plots: P&L against a joint move of the account's underlyings, with the levels at which
//! equity falls to the initial and to the maintenance margin.

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::display;

/// The grid's lines: light enough that the series stay in front.
const GRID_MAJOR: RGBColor = RGBColor(225, 225, 225);
/// Ticks per axis, about: a label every tenth of the range reads without crowding.
const TICKS: usize = 10;
/// The initial-margin line's colour (amber).
const AMBER: RGBColor = RGBColor(230, 140, 0);

/// Decimals a tick of an axis spanning `span` needs: none when the ticks are a unit or more
/// apart, else enough to tell two neighbours apart (about [`TICKS`] per axis).
fn tick_decimals(span: f64) -> usize {
    let step = span.abs() / TICKS as f64;
    if !step.is_finite() || step >= 1.0 || step <= 0.0 {
        return 0;
    }
    // A step of 0.05 needs two decimals, 0.5 one.
    usize::try_from((-step.log10()).ceil() as i64)
        .unwrap_or(0)
        .min(8)
}

/// A tick's label: digits grouped in threes, only the decimals the axis needs, never `-0`.
fn tick(value: f64, decimals: usize) -> String {
    display::float(value, decimals)
}

/// One point of the curve: move (fraction), P&L, and the P&L at which equity meets IM and MM.
pub struct Point {
    /// Joint relative move.
    pub price_move: f64,
    /// Change of equity.
    pub pnl: f64,
    /// `IM(move) - equity(0)`: below it the account cannot open risk.
    pub initial_line: f64,
    /// `MM(move) - equity(0)`: below it the account is liquidated.
    pub maintenance_line: f64,
}

/// What the stress plot marks beyond its curves: the joint moves (fractions) at which the
/// account's health reaches 1 (the reverse stress), drawn where the P&L meets the liquidation
/// line.
pub struct Marks {
    /// The liquidating joint moves found, fall and rise.
    pub liquidations: Vec<f64>,
}

/// The curve's value at `price_move`, interpolated between its points.
fn interpolate(points: &[Point], price_move: f64, value: impl Fn(&Point) -> f64) -> Option<f64> {
    points.windows(2).find_map(|pair| {
        let (a, b) = (&pair[0], &pair[1]);
        if price_move < a.price_move || price_move > b.price_move {
            return None;
        }
        let width = b.price_move - a.price_move;
        let share = if width > 0.0 {
            (price_move - a.price_move) / width
        } else {
            0.0
        };
        Some(value(a) + share * (value(b) - value(a)))
    })
}

/// Draws the curve into an SVG document and returns its text: the P&L (solid blue, dots), the
/// P&L at which equity meets the initial margin (dashed amber) and the maintenance margin
/// (dashed red), today's point (no move) and each liquidating move of `marks`, on a light grid
/// whose ticks are grouped and carry only the decimals they need.
///
/// # Errors
/// When plotting fails (an empty or non-finite series).
pub fn stress_svg(title: &str, currency: &str, points: &[Point], marks: &Marks) -> Result<String> {
    let finite = points
        .iter()
        .flat_map(|p| [p.pnl, p.initial_line, p.maintenance_line])
        .filter(|v| v.is_finite());
    let (low, high) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() || points.is_empty() {
        return Err(anyhow!("nothing to plot: no finite P&L"));
    }
    let pad = ((high - low) * 0.05).max(1.0);
    let (first, last) = (
        points[0].price_move * 100.0,
        points[points.len() - 1].price_move * 100.0,
    );
    let (y_low, y_high) = (low - pad, high + pad);
    let x_decimals = tick_decimals(last - first);
    let y_decimals = tick_decimals(y_high - y_low);
    let fail = |e: &dyn std::fmt::Display| anyhow!("plot: {e}");
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(110)
            .build_cartesian_2d(first..last, y_low..y_high)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_labels(TICKS)
            .y_labels(TICKS)
            .bold_line_style(GRID_MAJOR)
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|x| format!("{}%", tick(*x, x_decimals)))
            .y_label_formatter(&|y| tick(*y, y_decimals))
            .x_desc("joint move of the account's underlyings (%)")
            .y_desc(format!("P&L ({currency})"))
            .draw()
            .map_err(|e| fail(&e))?;
        let along = |value: fn(&Point) -> f64| -> Vec<(f64, f64)> {
            points
                .iter()
                .map(|p| (p.price_move * 100.0, value(p)))
                .collect()
        };
        chart
            .draw_series(LineSeries::new(along(|p| p.pnl), BLUE.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label("P&L")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(
                along(|p| p.pnl)
                    .into_iter()
                    .map(|point| Circle::new(point, 2, BLUE.filled())),
            )
            .map_err(|e| fail(&e))?;
        for (label, colour, value, dash) in [
            (
                "equity = initial margin",
                AMBER,
                (|p: &Point| p.initial_line) as fn(&Point) -> f64,
                4,
            ),
            (
                "equity = maintenance margin (liquidation)",
                RED,
                |p: &Point| p.maintenance_line,
                10,
            ),
        ] {
            chart
                .draw_series(DashedLineSeries::new(
                    along(value),
                    dash,
                    5,
                    colour.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?
                .label(label)
                .legend(move |(x, y)| {
                    plotters::element::DashedPathElement::new(
                        vec![(x, y), (x + 20, y)],
                        dash,
                        5,
                        colour.stroke_width(2),
                    )
                });
        }
        // Today: no move, no P&L.
        chart
            .draw_series([Circle::new((0.0, 0.0), 6, BLACK.filled())])
            .map_err(|e| fail(&e))?
            .label("today")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.filled()));
        // Labels set off the point they name, so that neither hides the other.
        chart
            .draw_series([EmptyElement::at((0.0, 0.0))
                + Text::new(
                    "today".to_owned(),
                    (10, -20),
                    ("sans-serif", 14).into_font().color(&BLACK),
                )])
            .map_err(|e| fail(&e))?;
        // Where the P&L meets the liquidation line: a red cross and the move.
        let inside: Vec<(f64, f64)> = marks
            .liquidations
            .iter()
            .filter_map(|m| {
                let pnl = interpolate(points, *m, |p| p.pnl)?;
                Some((m * 100.0, pnl))
            })
            .collect();
        if !inside.is_empty() {
            chart
                .draw_series(
                    inside
                        .iter()
                        .map(|point| Cross::new(*point, 8, RED.stroke_width(3))),
                )
                .map_err(|e| fail(&e))?
                .label("liquidation (health 1)")
                .legend(|(x, y)| Cross::new((x + 10, y), 6, RED.stroke_width(3)));
            chart
                .draw_series(inside.iter().map(|(x, y)| {
                    EmptyElement::at((*x, *y))
                        + Text::new(
                            format!("liquidation {}", display::signed_percent(x / 100.0)),
                            (10, 8),
                            ("sans-serif", 14).into_font().color(&RED),
                        )
                }))
                .map_err(|e| fail(&e))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(text)
}

/// A round's tick: the round's number on a whole round, nothing between two (the axis reaches
/// half a round either side so that the bars fit).
fn round_label(x: &f64) -> String {
    let nearest = x.round();
    if (x - nearest).abs() > 1e-9 || nearest < 0.0 {
        return String::new();
    }
    tick(nearest, 0)
}

/// One round of a liquidation cascade, as plotted.
pub struct CascadeRound {
    /// Round number (0: the shock).
    pub round: usize,
    /// Per underlying: index change from before the shock, in percent.
    pub price_change: Vec<(String, f64)>,
    /// Liquidated notional sent to the market, USD.
    pub volume_usd: f64,
    /// Auto-deleveraged notional, USD.
    pub adl_volume_usd: f64,
}

/// Draws a cascade in two panels: the price path of each underlying per round (top) and the
/// liquidated and auto-deleveraged volume per round (bottom). Returns the SVG text.
///
/// # Errors
/// When there is nothing to plot or plotting fails.
pub fn cascade_svg(title: &str, rounds: &[CascadeRound]) -> Result<String> {
    let Some(last) = rounds.last() else {
        return Err(anyhow!("nothing to plot: no rounds"));
    };
    let fail = |e: &dyn std::fmt::Display| anyhow!("plot: {e}");
    let x_end = last.round as f64 + 0.5;
    let changes: Vec<f64> = rounds
        .iter()
        .flat_map(|r| r.price_change.iter().map(|(_, c)| *c))
        .chain([0.0])
        .filter(|v| v.is_finite())
        .collect();
    let low = changes.iter().copied().fold(f64::INFINITY, f64::min);
    let high = changes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((high - low) * 0.08).max(0.5);
    let volume_high = rounds
        .iter()
        .map(|r| (r.volume_usd + r.adl_volume_usd) / 1e6)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.1;
    let mut names: Vec<&str> = rounds
        .iter()
        .flat_map(|r| r.price_change.iter().map(|(n, _)| n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    // Colours apart in hue and lightness, and a marker shape per series beside them.
    let palette = [BLUE, RGBColor(0, 150, 110), RGBColor(200, 60, 160), BLACK];
    // A label per round at most: the axis runs from -0.5 to the last round + 0.5.
    let x_ticks = (last.round + 2).min(TICKS + 2);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (960, 720)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| fail(&e))?;
        let (upper, lower) = root.split_vertically(400);
        let mut prices = ChartBuilder::on(&upper)
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5..x_end, (low - pad)..(high + pad))
            .map_err(|e| fail(&e))?;
        let price_decimals = tick_decimals(high - low + 2.0 * pad);
        prices
            .configure_mesh()
            .x_labels(x_ticks)
            .y_labels(TICKS)
            .bold_line_style(GRID_MAJOR)
            .light_line_style(TRANSPARENT)
            .x_desc("round")
            .y_desc("index vs before the shock (%)")
            .x_label_formatter(&round_label)
            .y_label_formatter(&|y| format!("{}%", tick(*y, price_decimals)))
            .draw()
            .map_err(|e| fail(&e))?;
        for (index, name) in names.iter().enumerate() {
            let colour = palette[index % palette.len()];
            let path: Vec<(f64, f64)> = rounds
                .iter()
                .filter_map(|r| {
                    let change = r.price_change.iter().find(|(n, _)| n == name)?.1;
                    Some((r.round as f64, change))
                })
                .collect();
            prices
                .draw_series(LineSeries::new(path.clone(), colour.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            if index % 2 == 0 {
                prices
                    .draw_series(
                        path.into_iter()
                            .map(|point| Circle::new(point, 4, colour.filled())),
                    )
                    .map_err(|e| fail(&e))?;
            } else {
                prices
                    .draw_series(
                        path.into_iter()
                            .map(|point| TriangleMarker::new(point, 6, colour.filled())),
                    )
                    .map_err(|e| fail(&e))?;
            }
        }
        legend(&mut prices, SeriesLabelPosition::MiddleRight)?;
        let mut volume = ChartBuilder::on(&lower)
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5..x_end, 0.0..volume_high)
            .map_err(|e| fail(&e))?;
        let volume_decimals = tick_decimals(volume_high);
        volume
            .configure_mesh()
            .x_labels(x_ticks)
            .y_labels(TICKS)
            .bold_line_style(GRID_MAJOR)
            .light_line_style(TRANSPARENT)
            .x_desc("round")
            .y_desc("volume per round (million USD)")
            .x_label_formatter(&round_label)
            .y_label_formatter(&|y| tick(*y, volume_decimals))
            .draw()
            .map_err(|e| fail(&e))?;
        let liquidated = RED.mix(0.75);
        let adl = RGBColor(230, 140, 0).mix(0.85);
        volume
            .draw_series(rounds.iter().map(|r| {
                let x = r.round as f64;
                Rectangle::new(
                    [(x - 0.35, 0.0), (x + 0.35, r.volume_usd / 1e6)],
                    liquidated.filled(),
                )
            }))
            .map_err(|e| fail(&e))?
            .label("liquidated (sent to the market)")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 20, y + 5)], liquidated.filled())
            });
        volume
            .draw_series(rounds.iter().map(|r| {
                let x = r.round as f64;
                let base = r.volume_usd / 1e6;
                Rectangle::new(
                    [(x - 0.35, base), (x + 0.35, base + r.adl_volume_usd / 1e6)],
                    adl.filled(),
                )
            }))
            .map_err(|e| fail(&e))?
            .label("auto-deleveraged")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], adl.filled()));
        legend(&mut volume, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(text)
}

/// Colours of the margin models, in the order they are given (static first).
const MODEL_COLOURS: [RGBColor; 6] = [
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

/// A model's name in a legend: `static grid`, or `ewma / buffer`.
fn model_label(summary: &crate::model_backtest::ModelSummary) -> String {
    match summary.model {
        crate::model_backtest::ModelName::Static => "static grid".to_owned(),
        crate::model_backtest::ModelName::Ewma => format!("ewma / {}", summary.control),
        crate::model_backtest::ModelName::Garch => format!("garch / {}", summary.control),
    }
}

/// A date as a fractional year (2020-07-02 -> 2020.5), the x axis of history plots.
fn year_fraction(date: jiff::civil::Date) -> f64 {
    f64::from(date.year()) + (f64::from(date.day_of_year()) - 1.0) / 365.25
}

/// Draws the margin backtest (`solvent backtest --model ... --plot`): one panel per underlying,
/// the realised move over each margin period (absolute, grey dots) and each model's range set
/// the close before (lines, percent of the price), with the called-out days marked. Returns the
/// SVG text.
///
/// # Errors
/// When there is nothing to plot or plotting fails.
pub fn margin_history_svg(outcome: &crate::model_backtest::Outcome) -> Result<String> {
    let fail = |e: &dyn std::fmt::Display| anyhow!("plot: {e}");
    let mut underlyings: Vec<&str> = outcome
        .summaries
        .iter()
        .map(|s| s.underlying.as_str())
        .collect();
    underlyings.dedup();
    if underlyings.is_empty() {
        return Err(anyhow!("nothing to plot: no model was run"));
    }
    let mut text = String::new();
    {
        let height = 420 * u32::try_from(underlyings.len()).unwrap_or(1);
        let root = SVGBackend::with_string(&mut text, (1200, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let panels = root.split_evenly((underlyings.len(), 1));
        for (panel, underlying) in panels.iter().zip(&underlyings) {
            let members: Vec<usize> = (0..outcome.summaries.len())
                .filter(|i| outcome.summaries[*i].underlying == *underlying)
                .collect();
            let Some(&first) = members.first() else {
                continue;
            };
            let days = &outcome.series[first];
            let (Some(start), Some(end)) = (days.first(), days.last()) else {
                continue;
            };
            let (x0, x1) = (year_fraction(start.0), year_fraction(end.0));
            let top = members
                .iter()
                .flat_map(|i| outcome.series[*i].iter().map(|d| d.1.max(d.2.abs())))
                .fold(0.0, f64::max)
                * 100.0;
            let y_high = (top * 1.05).max(1.0);
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!(
                        "{underlying}: margin (range set at the close) against the realised {}-day move",
                        outcome.period_days
                    ),
                    ("sans-serif", 18),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, 0.0..y_high)
                .map_err(|e| fail(&e))?;
            chart
                .configure_mesh()
                .x_labels(((x1 - x0).ceil() as usize + 1) * 2)
                .y_labels(TICKS)
                .bold_line_style(GRID_MAJOR)
                .light_line_style(TRANSPARENT)
                .x_label_formatter(&|x| {
                    // A label on each new year only (the axis is in fractional years).
                    if (x - x.round()).abs() < 0.02 {
                        format!("{}", x.round() as i64)
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|y| format!("{}%", tick(*y, 0)))
                .y_desc("% of the price")
                .draw()
                .map_err(|e| fail(&e))?;
            chart
                .draw_series(days.iter().map(|d| {
                    Circle::new(
                        (year_fraction(d.0), d.2.abs() * 100.0),
                        1,
                        RGBColor(150, 150, 150).filled(),
                    )
                }))
                .map_err(|e| fail(&e))?
                .label("|realised move|")
                .legend(|(x, y)| Circle::new((x + 10, y), 3, RGBColor(150, 150, 150).filled()));
            // The moves beyond the first scaled model's margin (or the static grid's), larger.
            let marked = members
                .iter()
                .find(|i| outcome.summaries[**i].model != crate::model_backtest::ModelName::Static)
                .or(members.first())
                .copied()
                .unwrap_or(first);
            let beyond: Vec<(f64, f64)> = outcome.series[marked]
                .iter()
                .filter(|d| d.2.abs() > d.1)
                .map(|d| (year_fraction(d.0), d.2.abs() * 100.0))
                .collect();
            chart
                .draw_series(
                    beyond
                        .iter()
                        .map(|p| Cross::new(*p, 4, RED.stroke_width(2))),
                )
                .map_err(|e| fail(&e))?
                .label(format!(
                    "move beyond the {} margin",
                    model_label(&outcome.summaries[marked])
                ))
                .legend(|(x, y)| Cross::new((x + 10, y), 4, RED.stroke_width(2)));
            for (n, i) in members.iter().enumerate() {
                let summary = &outcome.summaries[*i];
                let colour = MODEL_COLOURS[n % MODEL_COLOURS.len()];
                let label = format!(
                    "{} ({} exceedances)",
                    model_label(summary),
                    summary.exceedances
                );
                chart
                    .draw_series(LineSeries::new(
                        outcome.series[*i]
                            .iter()
                            .map(|d| (year_fraction(d.0), d.1 * 100.0)),
                        colour.stroke_width(1),
                    ))
                    .map_err(|e| fail(&e))?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
            for big in crate::model_backtest::BIG_DAYS {
                let Ok(date) = big.parse::<jiff::civil::Date>() else {
                    continue;
                };
                let x = year_fraction(date);
                if x < x0 || x > x1 {
                    continue;
                }
                chart
                    .draw_series(DashedLineSeries::new(
                        [(x, 0.0), (x, y_high)],
                        3,
                        3,
                        AMBER.stroke_width(1),
                    ))
                    .map_err(|e| fail(&e))?;
                chart
                    .draw_series([EmptyElement::at((x, y_high))
                        + Text::new(
                            big.to_owned(),
                            // Left of the line near the right edge, so the label stays inside.
                            (if (x - x0) / (x1 - x0) > 0.85 { -70 } else { 4 }, 4),
                            ("sans-serif", 12).into_font().color(&AMBER),
                        )])
                    .map_err(|e| fail(&e))?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(text)
}

/// Draws the chart's legend at `position`: every series named, in a bordered box the plot shows
/// through.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))
}
