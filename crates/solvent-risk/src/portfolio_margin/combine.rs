//! The cross-underlying offset: correlations between the book's underlyings and the bounded
//! correlated combination of their scan risks.

use super::*;

/// Correlations between the book's underlyings, by index; `None` where the venue gives none.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlations {
    /// Number of underlyings.
    pub(super) size: usize,
    /// Row-major `size x size`.
    pub(super) matrix: Vec<Option<f64>>,
}

impl Correlations {
    /// Correlations between the book's underlyings: the venue's where it gives them, else those
    /// estimated from the view's price history, if any.
    #[must_use]
    pub fn new(book: &ScenarioBook, params: &PortfolioMarginParams) -> Self {
        let names: Vec<&str> = book.underlyings.keys().map(String::as_str).collect();
        Self::of(&names, params, book.estimated_correlations.as_ref())
    }

    /// Correlations between the underlyings `names` (in book order): the venue's where it gives
    /// them, else those of `estimated`, if any.
    pub(super) fn of(
        names: &[&str],
        params: &PortfolioMarginParams,
        estimated: Option<&crate::history::CorrelationMatrix>,
    ) -> Self {
        Self {
            size: names.len(),
            matrix: names
                .iter()
                .flat_map(|first| {
                    names.iter().map(|second| {
                        params
                            .correlation(first, second)
                            .or_else(|| estimated.and_then(|c| c.get(first, second)))
                    })
                })
                .collect(),
        }
    }

    /// The correlation used between two underlyings. A pair that neither the venue gives nor the
    /// price history estimates counts as perfectly adverse (`d_u d_v`), so an unknown correlation
    /// never lowers margin.
    pub(super) fn effective(&self, first: &Leg, second: &Leg) -> f64 {
        let given = if first.underlying < self.size && second.underlying < self.size {
            self.matrix
                .get(first.underlying * self.size + second.underlying)
                .copied()
                .flatten()
        } else {
            None
        };
        given.unwrap_or(first.direction * second.direction)
    }
}

/// The cross-underlying combination (beyond Deribit, which margins each currency alone):
/// `R = sqrt(max(0, sum_u sum_v rho_uv d_u d_v R_u R_v))`, never below `(1 - max_offset) sum R_u`
/// nor above `sum R_u`. Returns `(sum R_u, R, the unbounded correlated R)`.
pub(super) fn combine<T>(
    charges: &[T],
    leg: impl Fn(&T) -> Leg,
    correlations: &Correlations,
    max_offset: f64,
) -> (f64, f64, f64) {
    let summed: f64 = charges.iter().map(|c| leg(c).floored_risk).sum();
    let mut quadratic = 0.0;
    for first in charges {
        let first = leg(first);
        for second in charges {
            let second = leg(second);
            quadratic += correlations.effective(&first, &second)
                * first.direction
                * second.direction
                * first.floored_risk
                * second.floored_risk;
        }
    }
    let correlated = quadratic.max(0.0).sqrt();
    let combined = correlated.max((1.0 - max_offset) * summed).min(summed);
    (summed, combined, correlated)
}
