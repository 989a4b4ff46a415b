//! How one instrument is revalued under the scenarios: linear instruments by their move,
//! options by Black-76 at the moved forward and shocked volatility, every option of a book in one
//! batch.

use super::*;

/// How an instrument's USD value per unit of exposure responds to a move of its underlying and a
/// factor on its implied volatility.
pub(super) enum Revaluation {
    /// Perpetuals, futures, spot: `per_unit x move`.
    Linear { per_unit: f64 },
    /// Options: Black-76 at the moved forward, less today's model value.
    Option {
        model: Black76,
        kind: solvent_pricing::black76::OptionType,
    },
}

/// The options of a scenario book awaiting revaluation: every (option, scenario) row of the
/// book in one set of columns, so the batch Black-76 kernel values them in one call.
pub(super) struct PendingOptions {
    /// One row per (option, scenario).
    pub(super) columns: OwnedColumns,
    /// Per option: (underlying, instrument, first row, grid scenarios, rows after the first).
    pub(super) slots: Vec<(String, String, usize, usize, usize)>,
    /// How many options the book holds (to size the columns at the first one).
    pub(super) expected_options: usize,
}

impl PendingOptions {
    /// Columns for `options` options, sized by the first one's rows (books of one venue have
    /// about as many scenarios each), so they rarely grow while the book is built.
    pub(super) fn for_options(options: usize) -> Self {
        Self {
            columns: OwnedColumns::default(),
            slots: Vec::with_capacity(options),
            expected_options: options,
        }
    }

    /// Adds an option's rows: the unshocked option first (so a scenario that changes nothing
    /// has exactly zero P&L), then one per `(price move, volatility)`.
    pub(super) fn push(
        &mut self,
        instrument: &Instrument,
        model: &Black76,
        kind: solvent_pricing::black76::OptionType,
        moves: &[(f64, Option<f64>)],
        grid: usize,
    ) {
        let start = self.columns.forward.len();
        if start == 0 {
            self.columns =
                OwnedColumns::with_capacity(self.expected_options.max(1) * (moves.len() + 1));
        }
        push_option_rows(&mut self.columns, model, kind, moves);
        self.slots.push((
            instrument.underlying.clone(),
            instrument.name.clone(),
            start,
            grid,
            moves.len(),
        ));
    }

    /// Values every row and writes each option's P&L into its book.
    pub(super) fn value(
        self,
        underlyings: &mut IndexMap<String, UnderlyingBook>,
    ) -> Result<(), RiskError> {
        if self.slots.is_empty() {
            return Ok(());
        }
        // Only the prices are read: the kernel computes no greeks.
        let mut prices = Vec::with_capacity(self.columns.forward.len());
        let valued = prices_checked(self.columns.columns(), &mut prices);
        if let Err(error) = valued {
            let row = match &error {
                solvent_pricing::PricingError::BatchElement { index, .. } => *index,
                _ => 0,
            };
            let (underlying, name) = self
                .slots
                .iter()
                .find(|(_, _, start, _, rows)| (*start..=*start + *rows).contains(&row))
                .map_or(("", ""), |(u, n, ..)| (u.as_str(), n.as_str()));
            return Err(RiskError::Pricing {
                path: format!("vol.{underlying}"),
                problem: format!("{name}: {error}"),
            });
        }
        for (underlying, name, start, grid, rows) in self.slots {
            let base = prices[start];
            let mut pnl: Vec<f64> = prices[start + 1..=start + rows]
                .iter()
                .map(|price| price - base)
                .collect();
            let historical = pnl.split_off(grid);
            if let Some(risk) = underlyings
                .get_mut(&underlying)
                .and_then(|book| book.instruments.get_mut(&name))
            {
                risk.unit_pnl = pnl;
                risk.historical_pnl = historical;
            }
        }
        Ok(())
    }
}

/// Appends an option's batch rows: the unshocked option first (so a scenario that changes
/// nothing has exactly zero P&L), then one per `(price move, shocked volatility)`.
pub(super) fn push_option_rows(
    columns: &mut OwnedColumns,
    model: &Black76,
    kind: solvent_pricing::black76::OptionType,
    moves: &[(f64, Option<f64>)],
) {
    push_rows(
        columns,
        OptionRow {
            forward: model.forward(),
            strike: model.strike(),
            time: model.time_to_expiry_years(),
            volatility: model.volatility(),
            discount: model.discount_factor(),
            kind,
        },
        moves,
    );
}

/// An option's unshocked inputs, as [`push_rows`] reads them (not yet validated: the batch
/// kernel's checked entry point refuses what `Black76::new_checked` would).
#[derive(Clone, Copy)]
pub(super) struct OptionRow {
    pub(super) forward: f64,
    pub(super) strike: f64,
    pub(super) time: f64,
    pub(super) volatility: f64,
    pub(super) discount: f64,
    pub(super) kind: solvent_pricing::black76::OptionType,
}

/// [`push_option_rows`] from the option's inputs.
pub(super) fn push_rows(
    columns: &mut OwnedColumns,
    option: OptionRow,
    moves: &[(f64, Option<f64>)],
) {
    // The unshocked row is `(0, None)`.
    push_moved_rows(
        columns,
        option,
        std::iter::once((0.0, option.volatility)).chain(
            moves
                .iter()
                .map(|&(price_move, shocked)| (price_move, shocked.unwrap_or(option.volatility))),
        ),
    );
}

/// Appends one row of `option` per `(price move, volatility)` of `rows`: its forward moved by
/// the price move, at that volatility, the rest of its inputs as they are. Column by column (one
/// reservation and a straight fill each, rather than six pushes a row).
pub(super) fn push_moved_rows(
    columns: &mut OwnedColumns,
    option: OptionRow,
    rows: impl Iterator<Item = (f64, f64)> + Clone,
) {
    let OptionRow {
        forward,
        strike,
        time,
        discount,
        kind,
        ..
    } = option;
    let before = columns.forward.len();
    columns.forward.extend(
        rows.clone()
            .map(|(price_move, _)| forward * (1.0 + price_move)),
    );
    let count = columns.forward.len() - before;
    columns
        .volatility
        .extend(rows.map(|(_, volatility)| volatility));
    let repeat = |column: &mut Vec<f64>, value: f64| {
        column.resize(column.len() + count, value);
    };
    repeat(&mut columns.strike, strike);
    repeat(&mut columns.time, time);
    repeat(&mut columns.discount, discount);
    columns.kind.resize(columns.kind.len() + count, kind);
}

pub(super) fn revaluation(
    view: &MarketView<'_>,
    instrument: &Instrument,
    spot: f64,
) -> Result<(Revaluation, f64, f64), RiskError> {
    match &instrument.terms {
        Terms::Perpetual | Terms::Future { .. } => {
            let mark = f64_of(view.mark(instrument)?.price);
            // Linear: a unit is one coin marked at the instrument's price. Inverse: a unit is
            // one coin of USD value (see `exposure_of`), moving with the index.
            let per_unit = if instrument.style == Style::Inverse {
                spot
            } else {
                mark
            };
            Ok((Revaluation::Linear { per_unit }, 1.0, 0.0))
        }
        Terms::Option {
            expiry,
            strike,
            right,
            ..
        } => {
            let time = view.years_to(*expiry).max(0.0);
            let kind = option_type(*right);
            let strike = strike.to_f64();
            let rate = view.market().rate;
            let forward = spot * (rate * time).exp();
            let discount = (-rate * time).exp();
            // Revalue at the volatility the mark implies: the model's and the market's prices then
            // agree at the unshocked scenario, so P&L is only what the scenario changes. Without a
            // given mark that is the surface's volatility (no need to price the model mark).
            let volatility = match view.market().mark.get(&instrument.name) {
                None => view.model_volatility(instrument, strike, time)?,
                Some(given) => {
                    let usd = match instrument.style {
                        Style::Linear => f64_of(given.value()),
                        Style::Inverse => f64_of(given.value()) * spot,
                    };
                    if time > 0.0 {
                        implied_volatility(usd, forward, strike, time, discount, kind).map_err(
                            |error| RiskError::Pricing {
                                path: format!("mark.{}", instrument.name),
                                problem: format!("no implied volatility for the mark: {error}"),
                            },
                        )?
                    } else {
                        0.0
                    }
                }
            };
            let model = Black76::new_checked(forward, strike, time, volatility, discount).map_err(
                |error| RiskError::Pricing {
                    path: format!("vol.{}", instrument.underlying),
                    problem: format!("{}: {error}", instrument.name),
                },
            )?;
            // dV/dS = dV/dF x F/S.
            let delta = model.greeks(kind).delta * forward / spot;
            Ok((Revaluation::Option { model, kind }, delta, time))
        }
    }
}

pub(super) fn instrument_risk(
    view: &MarketView<'_>,
    instrument: &Instrument,
    book: &UnderlyingBook,
    history: Option<(&HistoricalScenarios, usize)>,
    options: &mut PendingOptions,
) -> Result<InstrumentRisk, RiskError> {
    let spot = book.price_usd;
    let params = &book.params;
    let (revaluation, unit_delta, time) = revaluation(view, instrument, spot)?;
    let volatility = match &revaluation {
        Revaluation::Option { model, .. } => Some(model.volatility()),
        Revaluation::Linear { .. } => None,
    };
    let scale = vol_shock_scale(time * DAYS_PER_YEAR, params);
    // Every scenario's (price move, volatility), grid first, then the historical days.
    let mut moves: Vec<(f64, Option<f64>)> = book
        .scenarios
        .iter()
        .map(|scenario| {
            let shocked =
                volatility.map(|vol| shocked_volatility_scaled(vol, scale, scenario.vol, params));
            (scenario.price_move, shocked)
        })
        .collect();
    if let Some((history, column)) = history {
        moves.extend(history.scenarios.iter().map(|scenario| {
            let price_move = scenario.price_factor.get(column).copied().unwrap_or(1.0) - 1.0;
            let vol_factor = scenario
                .vol_factor
                .get(column)
                .copied()
                .flatten()
                .unwrap_or(1.0);
            (price_move, volatility.map(|vol| vol * vol_factor))
        }));
    }
    let (unit_pnl, historical_pnl) = match &revaluation {
        Revaluation::Linear { per_unit } => {
            let mut pnl: Vec<f64> = moves.iter().map(|(m, _)| per_unit * m).collect();
            let historical = pnl.split_off(book.scenarios.len());
            (pnl, historical)
        }
        Revaluation::Option { model, kind } => {
            // Filled in by `PendingOptions::value`, with every other option of the book.
            options.push(instrument, model, *kind, &moves, book.scenarios.len());
            (Vec::new(), Vec::new())
        }
    };
    let roll_unit = match &instrument.terms {
        Terms::Option { .. } => 0.0,
        Terms::Perpetual | Terms::Future { .. } => roll_per_unit(
            spot,
            params,
            instrument
                .terms
                .expiry()
                .map(|expiry| view.years_to(expiry)),
        ),
    };
    Ok(InstrumentRisk {
        name: instrument.name.clone(),
        unit_pnl,
        historical_pnl,
        unit_delta,
        roll_unit,
        is_option: matches!(instrument.terms, Terms::Option { .. }),
    })
}

/// The roll exposure of one unit of a future (`years_to_expiry`) or a perpetual (`None`), USD:
/// `spot x roll_shock x sqrt(years to expiry)`, counted at one day at least (a perpetual is
/// rolled every day).
pub(crate) fn roll_per_unit(
    spot: f64,
    params: &UnderlyingParams,
    years_to_expiry: Option<f64>,
) -> f64 {
    let years = years_to_expiry.map_or(1.0 / DAYS_PER_YEAR, |years| years.max(1.0 / DAYS_PER_YEAR));
    spot * params.roll_shock * years.sqrt()
}
