//! SVG plots: P&L against a joint move of the account's underlyings, with the levels at which
//! equity falls to the initial and to the maintenance margin.

use anyhow::{Result, anyhow};
use plotters::prelude::*;

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

/// Draws the curve into an SVG document and returns its text.
///
/// # Errors
/// When plotting fails (an empty or non-finite series).
pub fn stress_svg(title: &str, currency: &str, points: &[Point]) -> Result<String> {
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
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(96)
            .build_cartesian_2d(first..last, (low - pad)..(high + pad))
            .map_err(|e| anyhow!("plot: {e}"))?;
        chart
            .configure_mesh()
            .x_desc("joint move of the account's underlyings (%)")
            .y_desc(format!("P&L ({currency})"))
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        let series = [
            (
                "P&L",
                BLUE,
                points
                    .iter()
                    .map(|p| (p.price_move * 100.0, p.pnl))
                    .collect::<Vec<_>>(),
            ),
            (
                "equity = initial margin",
                RGBColor(230, 140, 0),
                points
                    .iter()
                    .map(|p| (p.price_move * 100.0, p.initial_line))
                    .collect(),
            ),
            (
                "equity = maintenance margin (liquidation)",
                RED,
                points
                    .iter()
                    .map(|p| (p.price_move * 100.0, p.maintenance_line))
                    .collect(),
            ),
        ];
        for (label, colour, data) in series {
            chart
                .draw_series(LineSeries::new(data, colour.stroke_width(2)))
                .map_err(|e| anyhow!("plot: {e}"))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    Ok(text)
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
    let palette = [BLUE, RGBColor(120, 60, 200), RGBColor(0, 140, 120), BLACK];
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
        prices
            .configure_mesh()
            .x_desc("round")
            .y_desc("index vs before the shock (%)")
            .x_label_formatter(&|x| format!("{x:.0}"))
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
            prices
                .draw_series(
                    path.into_iter()
                        .map(|point| Circle::new(point, 3, colour.filled())),
                )
                .map_err(|e| fail(&e))?;
        }
        prices
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        let mut volume = ChartBuilder::on(&lower)
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5..x_end, 0.0..volume_high)
            .map_err(|e| fail(&e))?;
        volume
            .configure_mesh()
            .x_desc("round")
            .y_desc("volume per round (million USD)")
            .x_label_formatter(&|x| format!("{x:.0}"))
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
        volume
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(text)
}
