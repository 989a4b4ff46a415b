//! The lean path's layout of a book: each underlying's unit P&L as one row-major matrix padded
//! to whole SIMD lanes, and the per-instrument scalars side by side.

use super::*;

/// Lanes of a packed row: four `f64`, one AVX2 register. Narrow lanes pad less (35 scenarios
/// take 9 lanes, 36 values, rather than 40), and an account's sums are kept in registers a whole
/// row at a time (see [`sum_rows`]), so wider lanes would buy no more independent sums.
pub(super) const LANES: usize = 4;
/// One SIMD-width slice of a row of scenarios.
pub(super) type Lane = [f64; LANES];

/// An underlying's instruments laid out for the lean path: the unit P&L as one row-major matrix
/// (instruments x scenarios, each row padded with zeros to whole lanes) and the per-instrument
/// scalars side by side, so summing an account's rows needs no map lookup and vectorises.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct PackedRows {
    /// Number of instruments (rows).
    pub(super) rows: usize,
    /// Lanes per row: `ceil(scenarios / LANES)`.
    pub(super) lanes: usize,
    /// Unit P&L, `rows x lanes`.
    pub(super) unit_pnl: Vec<Lane>,
    /// Scenario weights, `lanes` long, NaN in the padding (a NaN never counts as the worst).
    pub(super) weight: Vec<Lane>,
    /// Per instrument: its scalars.
    pub(super) units: Vec<Units>,
}

/// An instrument's figures besides its scenario row, side by side (one lookup per exposure).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Units {
    pub(super) delta: f64,
    pub(super) roll: f64,
    pub(super) is_option: bool,
}

impl PackedRows {
    pub(super) fn new(
        scenarios: &[Scenario],
        instruments: &IndexMap<String, InstrumentRisk>,
    ) -> Self {
        let count = scenarios.len();
        let lanes = count.div_ceil(LANES);
        // Each row written in place, padded with `fill` to whole lanes (no row of its own).
        let pad_into =
            |lanes_out: &mut Vec<Lane>, values: &mut dyn Iterator<Item = f64>, fill: f64| {
                let start = lanes_out.len();
                lanes_out.resize(start + lanes, [fill; LANES]);
                let flat = lanes_out[start..].as_flattened_mut();
                for (slot, value) in flat.iter_mut().zip(values.take(count)) {
                    *slot = value;
                }
            };
        let mut unit_pnl = Vec::with_capacity(instruments.len() * lanes);
        for risk in instruments.values() {
            // A short row (never built by `ScenarioBook::new`) pads with zeros like the full path.
            pad_into(&mut unit_pnl, &mut risk.unit_pnl.iter().copied(), 0.0);
        }
        let mut weight = Vec::with_capacity(lanes);
        pad_into(
            &mut weight,
            &mut scenarios.iter().map(|s| s.weight),
            f64::NAN,
        );
        Self {
            rows: instruments.len(),
            lanes,
            unit_pnl,
            weight,
            units: instruments
                .values()
                .map(|r| Units {
                    delta: r.unit_delta,
                    roll: r.roll_unit,
                    is_option: r.is_option,
                })
                .collect(),
        }
    }
}
