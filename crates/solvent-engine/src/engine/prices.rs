//! Index and mark prices and the guards on them: median of fresh sources, jump confirmation, mark
//! bands, volatility surfaces (DESIGN.md 8.3).

#[allow(clippy::wildcard_imports)]
use super::*;

/// The median of an underlying's `sources` no older than the staleness limit at `now`, after
/// dropping those further than the outlier band from the median of all fresh sources
/// (DESIGN.md 8.3).
pub(super) fn index_from_sources(
    sources: &BTreeMap<String, SourcePrice>,
    now: Timestamp,
    guards: &GuardParams,
) -> Option<Decimal> {
    let is_fresh =
        |s: &SourcePrice| (now.as_millisecond() - s.at.as_millisecond()) <= guards.index_stale_ms;
    // One source (the usual feed): it is its own median and never an outlier.
    if sources.len() == 1 {
        return sources.values().find(|s| is_fresh(s)).map(|s| s.price);
    }
    let fresh: Vec<Decimal> = sources
        .values()
        .filter(|s| is_fresh(s))
        .map(|s| s.price)
        .collect();
    let first = median(fresh.clone())?;
    let kept: Vec<Decimal> = fresh
        .into_iter()
        .filter(|price| ((*price - first) / first).abs() <= guards.index_outlier)
        .collect();
    median(kept)
}

pub(super) fn median(mut values: Vec<Decimal>) -> Option<Decimal> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values.get(middle).copied()
    } else {
        Some((*values.get(middle - 1)? + *values.get(middle)?) / Decimal::TWO)
    }
}

impl Engine {
    pub(super) fn index_price(
        &mut self,
        underlying: &str,
        price: Decimal,
        source: Option<&str>,
    ) -> Result<Vec<Effect>, Rejection> {
        let mut effects = Vec::new();
        let source = source.unwrap_or("default");
        let latest = SourcePrice {
            price,
            at: self.now,
        };
        // Keys are built only the first time an underlying or a source is seen.
        let sources = match self.sources.get_mut(underlying) {
            Some(sources) => sources,
            None => self.sources.entry(underlying.to_owned()).or_default(),
        };
        match sources.get_mut(source) {
            Some(known) => *known = latest,
            None => {
                sources.insert(source.to_owned(), latest);
            }
        }
        let Some(median) = index_from_sources(sources, self.now, &self.config.guards) else {
            effects.push(Effect::PriceGuarded {
                name: underlying.to_owned(),
                received: Price(price),
                used: None,
                reason: GuardReason::NoFreshSource,
                detail: "no fresh source within the outlier band".to_owned(),
            });
            return Ok(effects);
        };
        // Found once: the jump guard does not change the market's indices.
        let known = self.market.index.get_index_of(underlying);
        let previous = known
            .and_then(|slot| self.market.index.get_index(slot))
            .map(|(_, p)| p.value());
        let Some(accepted) = self.confirm_jump(underlying, price, median, previous, &mut effects)
        else {
            return Ok(effects);
        };
        if accepted != price {
            effects.push(Effect::PriceGuarded {
                name: underlying.to_owned(),
                received: Price(price),
                used: Some(Price(accepted)),
                reason: GuardReason::MedianOfFreshSources,
                detail: format!("index {accepted} is the median of the fresh sources"),
            });
        }
        let accepted =
            Price::new_checked(accepted).map_err(|p| reject(RejectReason::OutOfRange, p))?;
        self.price_generation += 1;
        match known.and_then(|slot| self.market.index.get_index_mut(slot)) {
            Some((_, index)) => *index = accepted,
            None => {
                self.market.index.insert(underlying.to_owned(), accepted);
            }
        }
        let reclamped = self.reclamp_marks(underlying, accepted.value(), &mut effects);
        let reclamped: Vec<(&str, Decimal)> = reclamped
            .iter()
            .map(|(name, price)| (name.as_str(), *price))
            .collect();
        self.revalue_crossed(
            Some((underlying, accepted.value())),
            &reclamped,
            &mut effects,
        );
        Ok(effects)
    }

    /// Keeps every given perpetual and future mark on `underlying` inside the band around the new
    /// index: a mark is clamped when it arrives, and again whenever the index moves away from it
    /// (a stale mark must not value a position at a price the index has left).
    pub(super) fn reclamp_marks(
        &mut self,
        underlying: &str,
        index: Decimal,
        effects: &mut Vec<Effect>,
    ) -> Vec<(String, Decimal)> {
        let mut changed = Vec::new();
        if self.market.mark.is_empty() {
            return changed;
        }
        let band = self.config.guards.mark_band;
        let (low, high) = (index * (Decimal::ONE - band), index * (Decimal::ONE + band));
        let outside: Vec<(String, Decimal)> = self
            .market
            .mark
            .iter()
            .filter(|(_, mark)| mark.value() < low || mark.value() > high)
            .map(|(name, mark)| (name.clone(), mark.value()))
            .collect();
        for (name, mark) in outside {
            let Ok(instrument) = self.venue.instrument(&name) else {
                continue;
            };
            if instrument.underlying != underlying
                || !matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            {
                continue;
            }
            let clamped = mark.clamp(low, high);
            if clamped != mark
                && let Ok(price) = Price::new_checked(clamped)
            {
                self.price_generation += 1;
                self.market.mark.insert(name.clone(), price);
                changed.push((name.clone(), clamped));
                effects.push(Effect::PriceGuarded {
                    name,
                    received: Price(mark),
                    used: Some(price),
                    reason: GuardReason::MarkClamped,
                    detail: format!("mark clamped to {band} around the moved index {index}"),
                });
            }
        }
        changed
    }

    /// A move above the jump threshold is held until the next update confirms it (within the
    /// threshold of the pending price); returns the price to use now, if any. `price` is the
    /// candidate (median of sources, or clamped mark), `received` the raw update reported back.
    pub(super) fn confirm_jump(
        &mut self,
        name: &str,
        received: Decimal,
        price: Decimal,
        previous: Option<Decimal>,
        effects: &mut Vec<Effect>,
    ) -> Option<Decimal> {
        let threshold = self.config.guards.jump_confirm;
        let Some(previous) = previous else {
            return Some(price);
        };
        // |price - previous| <= threshold x previous: the relative move without a division
        // (prices are positive).
        if (price - previous).abs() <= threshold * previous {
            if !self.pending_jumps.is_empty() {
                self.pending_jumps.remove(name);
            }
            return Some(price);
        }
        let jump = ((price - previous) / previous).abs();
        if let Some(pending) = self.pending_jumps.remove(name)
            && ((price - pending) / pending).abs() <= threshold
        {
            return Some(price);
        }
        self.pending_jumps.insert(name.to_owned(), price);
        effects.push(Effect::PriceGuarded {
            name: name.to_owned(),
            received: Price(received),
            used: None,
            reason: GuardReason::JumpAwaitsConfirmation,
            detail: format!(
                "a move of {}% awaits confirmation by the next update",
                (jump * Decimal::ONE_HUNDRED).round_dp(2)
            ),
        });
        None
    }

    pub(super) fn mark_price(
        &mut self,
        name: &str,
        price: Decimal,
    ) -> Result<Vec<Effect>, Rejection> {
        let instrument = self.instrument(name)?;
        let mut effects = Vec::new();
        // Perpetual and future marks are clamped to a band around the index (Binance 2025: a thin
        // book must not mark collateral or positions away from the index).
        let mut used = price;
        if matches!(instrument.terms, Terms::Perpetual | Terms::Future { .. })
            && let Some(index) = self
                .market
                .index
                .get(&instrument.underlying)
                .map(|p| p.value())
        {
            let band = self.config.guards.mark_band;
            let clamped = price.clamp(index * (Decimal::ONE - band), index * (Decimal::ONE + band));
            if clamped != price {
                effects.push(Effect::PriceGuarded {
                    name: name.to_owned(),
                    received: Price(price),
                    used: Some(Price(clamped)),
                    reason: GuardReason::MarkClamped,
                    detail: format!("mark clamped to {band} around the index {index}"),
                });
                used = clamped;
            }
        }
        let Some(used) = self.confirm_jump(
            name,
            price,
            used,
            self.market.mark.get(name).map(|p| p.value()),
            &mut effects,
        ) else {
            return Ok(effects);
        };
        let used = Price::new_checked(used).map_err(|p| reject(RejectReason::OutOfRange, p))?;
        self.price_generation += 1;
        let first = match self.market.mark.get_mut(name) {
            Some(mark) => {
                *mark = used;
                false
            }
            None => {
                self.market.mark.insert(name.to_owned(), used);
                true
            }
        };
        if first {
            if matches!(instrument.terms, Terms::Option { .. }) {
                self.refile_short_holders(name);
            }
            self.first_mark(&instrument, used.value(), &mut effects);
        } else {
            self.revalue_crossed(None, &[(name, used.value())], &mut effects);
        }
        Ok(effects)
    }

    pub(super) fn vol_surface(
        &mut self,
        underlying: &str,
        expiry: &str,
        strikes: &[f64],
        vols: &[f64],
    ) -> Result<Vec<Effect>, Rejection> {
        // Whether a distance bounds the change: not for a new expiry, which re-weights the
        // surface's interpolation in time.
        let known = self
            .market
            .vol
            .get(underlying)
            .is_some_and(|smiles| smiles.contains_key(expiry));
        let mut market = self.market.clone();
        market.vol.entry(underlying.to_owned()).or_default().insert(
            expiry.to_owned(),
            Smile {
                strikes: strikes.to_vec(),
                vols: vols.to_vec(),
            },
        );
        market
            .validate("vol_surface", "")
            .map_err(|error| reject(RejectReason::InvalidInput, error.to_string()))?;
        MarketView::new(&self.venue, &market).map_err(risk_rejection)?;
        self.market = market;
        self.vol_generation += 1;
        let mut effects = Vec::new();
        if known && !self.config.exhaustive_monitoring {
            // Only the option holders whose volatility tolerance the change uses up (see
            // `engine/vol_bands.rs`).
            for id in self.vol_crossed(underlying, expiry) {
                self.evaluate(&id, Figures::Unreported, &mut effects);
            }
            return Ok(effects);
        }
        self.vol_reset(underlying);
        // Volatility moves option values and the option legs of a scenario grid, nothing else:
        // only holders of options on the underlying (any expiry: the surface interpolates
        // between them) are examined, not every holder of the underlying.
        let option_holders: Vec<u32> = self
            .instrument_holders
            .iter()
            .filter(|(name, _)| {
                self.venue.instrument(name).is_ok_and(|instrument| {
                    matches!(instrument.terms, Terms::Option { .. })
                        && instrument.underlying == underlying
                })
            })
            .flat_map(|(_, holders)| holders.iter().copied())
            .collect();
        for id in self.ids_of(option_holders.iter()) {
            self.evaluate(&id, Figures::Unreported, &mut effects);
        }
        Ok(effects)
    }

    pub(super) fn index_is_stale(&self, underlying: &str) -> bool {
        self.sources.get(underlying).is_none_or(|sources| {
            sources.values().all(|s| {
                self.now.as_millisecond() - s.at.as_millisecond()
                    > self.config.guards.index_stale_ms
            })
        })
    }
}
