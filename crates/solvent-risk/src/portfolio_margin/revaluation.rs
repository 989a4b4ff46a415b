//! How one instrument is revalued under the scenarios: linear instruments by their move,
//! options by Black-76 at the moved forward and shocked volatility, the options of a book in
//! blocks of the batch kernel on every core.

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

/// Options valued per call of the batch kernel when a book values its options
/// ([`value_options`]): their rows (a few dozen scenarios each) stay in cache between being
/// written and read, and the blocks spread over every core. A book's rows written out whole
/// (15 MB for 10,000 options) cost more in first touches of fresh memory than the kernel took
/// to value them.
const VALUE_BLOCK: usize = 64;

/// Values the options among `items` (each [`Assessed`] that `assessed_of` finds, the others
/// skipped): every option's scenario P&L is written into its risk, or the kernel's refusal kept
/// for [`Assessed::enter`] to report. The batch kernel values each row alone, so the blocks and
/// the threads change no bit of any figure.
pub(super) fn value_options<T: Send>(
    items: &mut [T],
    assessed_of: impl Fn(&mut T) -> Option<&mut Assessed> + Sync,
) {
    items.par_chunks_mut(VALUE_BLOCK).for_each_init(
        || (OwnedColumns::default(), Vec::new(), Vec::new()),
        |(columns, starts, prices), block| {
            columns.clear();
            starts.clear();
            for (place, item) in block.iter_mut().enumerate() {
                if let Some(Assessed {
                    option: Some(option),
                    ..
                }) = assessed_of(item)
                {
                    starts.push((place, columns.forward.len()));
                    push_option_rows(columns, &option.model, option.kind, &option.moves);
                }
            }
            if starts.is_empty() {
                return;
            }
            let refused = prices_checked(columns.columns(), prices).err();
            for &(place, start) in starts.iter() {
                let Some(assessed) = block.get_mut(place).and_then(&assessed_of) else {
                    continue;
                };
                let Some(option) = &assessed.option else {
                    continue;
                };
                let rows = start..=start + option.moves.len();
                if let Some(error) = &refused {
                    // The kernel stops at the block's first refused row: the option holding it
                    // carries the refusal, which fails the book, so the block's other options
                    // are left unvalued.
                    let row = match error {
                        solvent_pricing::PricingError::BatchElement { index, .. } => *index,
                        _ => start,
                    };
                    if *rows.end() < row {
                        continue;
                    }
                    assessed.refused = Some(match error {
                        solvent_pricing::PricingError::BatchElement { source, .. } => {
                            source.to_string()
                        }
                        other => other.to_string(),
                    });
                    return;
                }
                let Some(valued) = prices.get(rows) else {
                    continue;
                };
                let Some((&base, scenarios)) = valued.split_first() else {
                    continue;
                };
                let mut pnl: Vec<f64> = scenarios.iter().map(|price| price - base).collect();
                assessed.risk.historical_pnl = pnl.split_off(option.grid.min(pnl.len()));
                assessed.risk.unit_pnl = pnl;
            }
        },
    );
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

/// Instruments [`assess`] takes per task when a book assesses many on every core: an option's
/// assessment (its implied volatility, model and scenario moves) costs about a microsecond, so a
/// block amortises the hand-off, and a book of a few instruments stays on one thread.
pub(super) const ASSESS_BLOCK: usize = 64;

/// An instrument's risk as [`assess`] works it out, before an option's rows join the book's
/// batch ([`Assessed::enter`]): assessments are independent of each other and of the book's
/// other rows, so a book assesses its instruments on every core and enters them in its own
/// order, which keeps the batch, and every figure read from it, the same bits.
pub(super) struct Assessed {
    risk: InstrumentRisk,
    /// What an option's rows of the batch are made of ([`value_options`] values them).
    option: Option<OptionRows>,
    /// Why the batch kernel refused the option's rows.
    refused: Option<String>,
}

/// An option's rows of the batch: its model at the unshocked market, then one row per
/// scenario.
pub(super) struct OptionRows {
    model: Black76,
    kind: solvent_pricing::black76::OptionType,
    /// Each scenario's `(price move, shocked volatility)`, grid first, then the historical
    /// days.
    moves: Vec<(f64, Option<f64>)>,
    /// How many of `moves` are the grid's.
    grid: usize,
}

impl Assessed {
    /// An instrument listed in a book but not revalued (see
    /// [`ScenarioBook::new_for_move`](super::ScenarioBook::new_for_move)).
    pub(super) fn unvalued(instrument: &Instrument) -> Self {
        Self {
            risk: InstrumentRisk {
                name: instrument.name.clone(),
                unit_pnl: Vec::new(),
                historical_pnl: Vec::new(),
                unit_delta: 0.0,
                roll_unit: 0.0,
                is_option: matches!(instrument.terms, Terms::Option { .. }),
            },
            option: None,
            refused: None,
        }
    }

    /// The row of `instrument` (the one assessed) in the book, its options' P&L filled in by
    /// [`value_options`].
    ///
    /// # Errors
    /// The batch kernel's refusal of the option's rows, named by the instrument.
    pub(super) fn enter(self, instrument: &Instrument) -> Result<InstrumentRisk, RiskError> {
        match self.refused {
            Some(problem) => Err(RiskError::Pricing {
                path: format!("vol.{}", instrument.underlying),
                problem: format!("{}: {problem}", instrument.name),
            }),
            None => Ok(self.risk),
        }
    }
}

/// How `instrument` moves under `book`'s scenarios (and the historical days of `history`, a
/// column of the price history): a linear instrument's P&L per unit now, an option's model and
/// moves for the batch.
///
/// # Errors
/// [`RiskError`] when its mark, volatility or model is missing or refused.
pub(super) fn assess(
    view: &MarketView<'_>,
    instrument: &Instrument,
    book: &UnderlyingBook,
    history: Option<(&HistoricalScenarios, usize)>,
) -> Result<Assessed, RiskError> {
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
    let (unit_pnl, historical_pnl, option) = match revaluation {
        Revaluation::Linear { per_unit } => {
            let mut pnl: Vec<f64> = moves.iter().map(|(m, _)| per_unit * m).collect();
            let historical = pnl.split_off(book.scenarios.len());
            (pnl, historical, None)
        }
        // Filled in by `value_options`, with the other options of the book.
        Revaluation::Option { model, kind } => (
            Vec::new(),
            Vec::new(),
            Some(OptionRows {
                model,
                kind,
                moves,
                grid: book.scenarios.len(),
            }),
        ),
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
    Ok(Assessed {
        risk: InstrumentRisk {
            name: instrument.name.clone(),
            unit_pnl,
            historical_pnl,
            unit_delta,
            roll_unit,
            is_option: matches!(instrument.terms, Terms::Option { .. }),
        },
        option,
        refused: None,
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
