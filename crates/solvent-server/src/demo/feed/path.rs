//! The intraday price paths: Brownian bridges through each day's open, high, low and close.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Correlation of the underlyings' steps (default venue, BTC/ETH daily log returns).
const STEP_CORRELATION: f64 = 0.8067;

/// Probability that a day's extremes come in the conventional order.
const CONVENTIONAL_ORDER: f64 = 0.7;

impl Feed {
    /// Every underlying's path through `day` (see the module documentation).
    pub(super) fn day_paths(&mut self, day: usize) -> Vec<Vec<Decimal>> {
        let Some(day) = self.extract.days.get(day).cloned() else {
            return Vec::new();
        };
        let steps = self.params.steps_per_day as usize;
        // Anchor times, shared: in (5%, 95%) of the day, distinct, ordered.
        let lowest = (steps / 20).max(1);
        let highest = (steps - steps / 20).max(lowest + 2);
        let mut first = self.rng.random_range(lowest..highest - 1);
        let mut second = self.rng.random_range(lowest..highest - 1);
        if first == second {
            second += 1;
        }
        if first > second {
            std::mem::swap(&mut first, &mut second);
        }
        let conventional = self.rng.random::<f64>() < CONVENTIONAL_ORDER;
        let shared = STEP_CORRELATION.sqrt();
        let own = (1.0 - STEP_CORRELATION).sqrt();
        let noise: Vec<Vec<f64>> = (0..=steps)
            .map(|_| {
                let common = normal(&mut self.rng);
                day.bars
                    .iter()
                    .map(|_| shared * common + own * normal(&mut self.rng))
                    .collect()
            })
            .collect();
        day.bars
            .iter()
            .enumerate()
            .map(|(slot, bar)| {
                let down_day = bar.close < bar.open;
                // A down day conventionally reaches its high first.
                let high_first = down_day == conventional;
                let (a, b) = if high_first {
                    (bar.high, bar.low)
                } else {
                    (bar.low, bar.high)
                };
                let anchors = [(0, bar.open), (first, a), (second, b), (steps, bar.close)];
                let z: Vec<f64> = noise
                    .iter()
                    .map(|row| row.get(slot).copied().unwrap_or(0.0))
                    .collect();
                bridge(&anchors, &z, bar.low, bar.high, steps)
            })
            .collect()
    }
}

/// A path of `steps + 1` points through `anchors` (step, price): Brownian bridges in log price
/// between consecutive anchors, driven by `z` (one standard normal per step), at Parkinson's daily
/// scale from `[low, high]`, clamped to it and rounded to cents.
fn bridge(
    anchors: &[(usize, Decimal)],
    z: &[f64],
    low: Decimal,
    high: Decimal,
    steps: usize,
) -> Vec<Decimal> {
    let (low_f, high_f) = (float(low), float(high));
    let sigma_day = (high_f / low_f).ln() / (2.0 * std::f64::consts::LN_2.sqrt());
    let sigma_step = sigma_day / (steps as f64).sqrt();
    let mut path = vec![Decimal::ZERO; steps + 1];
    for pair in anchors.windows(2) {
        let [(k0, p0), (k1, p1)] = pair else {
            continue;
        };
        let (x0, x1) = (float(*p0).ln(), float(*p1).ln());
        let span = (k1 - k0).max(1) as f64;
        let mut walk = vec![0.0; k1 - k0 + 1];
        for k in 1..walk.len() {
            walk[k] = walk[k - 1] + sigma_step * z.get(k0 + k).copied().unwrap_or(0.0);
        }
        let end = walk.last().copied().unwrap_or(0.0);
        for (k, w) in walk.iter().enumerate() {
            let t = k as f64 / span;
            let x = x0 + t * (x1 - x0) + w - t * end;
            let price = x.exp().clamp(low_f, high_f);
            if let Some(point) = path.get_mut(k0 + k) {
                *point = decimal(price).map_or(*p0, |p| p.round_dp(2).clamp(low, high));
            }
        }
        if let Some(point) = path.get_mut(*k0) {
            *point = *p0;
        }
        if let Some(point) = path.get_mut(*k1) {
            *point = *p1;
        }
    }
    path
}
