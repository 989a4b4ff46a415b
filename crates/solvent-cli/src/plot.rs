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
