//! The portfolio margin of an account as one underlying moves alone (the liquidation-move
//! search): only that underlying's instruments revalued at each step, the rest reused.

use super::*;

/// How one instrument of the moved underlying's book is revalued at a step of a
/// liquidation-move search (as [`ScenarioBook::new`] revalues it in the moved market).
pub(super) enum MovedRow {
    /// A spot balance (`spot:ASSET`): `S x move`.
    Spot,
    /// A perpetual or future: `per unit x move`, per unit its moved mark (linear) or the moved
    /// index (inverse, see `revaluation`); `years` to the roll shock's horizon.
    Linear { inverse: bool, years: f64 },
    /// An option.
    Option(MovedOption),
}

/// What an option's revaluation keeps across moves of its underlying: everything but the
/// forward and the volatility its moved mark implies.
pub(super) struct MovedOption {
    pub(super) kind: solvent_pricing::black76::OptionType,
    pub(super) inverse: bool,
    pub(super) strike: f64,
    pub(super) time: f64,
    /// `exp(r T)`: the forward is the index carried at the market rate.
    pub(super) carry: f64,
    pub(super) discount: f64,
    /// The term-structure factor of the volatility shocks.
    pub(super) scale: f64,
    /// The surface's volatility when the market gives no mark (a price move leaves it as it
    /// is); `None` when the volatility is implied by the moved mark.
    pub(super) surface_volatility: Option<f64>,
}

/// An account's portfolio margin as one underlying moves alone, for the liquidation-move
/// search: the moved underlying's instruments are revalued at each step (the same operations,
/// in the same order, as a [`ScenarioBook`] built on the moved market), while every other
/// underlying's scenario P&L and delta sums, which the move does not change, are summed once.
/// Only their conversion into the report currency, which the move may change, is redone. The
/// figures are [`portfolio_risk`]'s bit for bit; historical expected shortfall is not
/// computed here (the search then takes the full path).
pub struct MovedBook {
    pub(super) book: ScenarioBook,
    /// The moved underlying's index in the book.
    pub(super) moved: usize,
    /// Its instruments' names, in the book's order.
    pub(super) names: Vec<String>,
    pub(super) rows: Vec<MovedRow>,
    /// The account's exposures on the moved underlying, in its order: (row, amount).
    pub(super) held: Vec<(usize, f64)>,
    /// Per book underlying other than the moved one: the account's USD P&L per scenario and
    /// delta sums (`None` where it holds nothing).
    pub(super) others: Vec<Option<(Vec<f64>, DeltaSums)>>,
    pub(super) correlations: Correlations,
    pub(super) max_offset: f64,
    pub(super) im_factor: f64,
    pub(super) scratch: MovedScratch,
}

/// Buffers reused from one step to the next.
#[derive(Default)]
pub(super) struct MovedScratch {
    /// Unit P&L, rows x scenarios.
    pub(super) unit_pnl: Vec<f64>,
    /// Per row: (delta, roll, is an option).
    pub(super) units: Vec<(f64, f64, bool)>,
    pub(super) pnl: Vec<f64>,
    pub(super) charges: Vec<Charges>,
    /// Each option row's scenario volatilities (rows x scenarios), as the last step that
    /// revalued it at the volatility in `shocked_from` computed them.
    pub(super) shocked_vols: Vec<f64>,
    /// Per row: the bits of the volatility `shocked_vols` was computed from (NaN's where none
    /// was).
    pub(super) shocked_from: Vec<u64>,
}

/// The mark of one instrument of the moved book at a step, as [`MovedBook::margin`] reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BookMark {
    /// The mark as `f64`: a perpetual's or future's mark as the report reads it, an option's
    /// mark where the market gives one; `None` for spot balances and options priced by the
    /// surface.
    pub price: Option<f64>,
    /// The volatility an option's moved mark was repriced at, when known: the revaluation
    /// takes it instead of solving it again from `price` (the two differ by the solver's error,
    /// about 1e-15 relative; `None` solves, as the full report does).
    pub volatility: Option<f64>,
}

/// Rows of the moved book revalued together: their options' batch columns (37 rows of 48 bytes
/// each per option) then stay in the cache, where one batch of the whole book streamed
/// megabytes through memory at every step.
pub(super) const MOVED_BLOCK: usize = 64;

/// A block's buffers (one set per worker).
#[derive(Default)]
pub(super) struct BlockScratch {
    /// Per option of the block: (row in the block, its place among the block's options,
    /// whether its delta is read from the batch's unshocked row rather than computed beside
    /// it).
    pub(super) options: Vec<(usize, usize, bool)>,
    /// The options' unshocked rows, one each, valued with their greeks (a fast step reads the
    /// delta there).
    pub(super) base: OwnedColumns,
    /// Their scenario rows, scenarios x options, priced alone: nothing else is read of them.
    pub(super) shocked: OwnedColumns,
    pub(super) valued: GreeksBatch,
    pub(super) prices: Vec<f64>,
}

/// The rows' scenario volatilities kept across steps: a search moves only the index, and a
/// fast step revalues each option at the volatility its unmoved mark implies, so the
/// volatilities its scenarios shock are the previous step's (one `shocked_volatility_scaled`
/// per row and scenario cost about as much as all the other column building).
pub(super) struct ShockedVols<'a> {
    /// Rows x scenarios.
    pub(super) vols: &'a mut [f64],
    /// Per row, the bits of the volatility `vols` holds the shocks of.
    pub(super) from: &'a mut [u64],
}

/// What every row of one step reads.
pub(super) struct MovedStep<'a> {
    pub(super) spot: f64,
    pub(super) scenarios: &'a [Scenario],
    pub(super) params: &'a UnderlyingParams,
}

impl MovedStep<'_> {
    /// Revalues a block of rows: their unit P&L (`unit_pnl`, rows x scenarios) and units.
    pub(super) fn revalue(
        &self,
        rows: &[MovedRow],
        marks: &[BookMark],
        unit_pnl: &mut [f64],
        units: &mut [(f64, f64, bool)],
        kept: ShockedVols<'_>,
        scratch: &mut BlockScratch,
    ) -> Option<()> {
        let Self {
            spot,
            scenarios,
            params,
        } = *self;
        let count = scenarios.len();
        scratch.options.clear();
        scratch.base.clear();
        scratch.shocked.clear();
        for (row, ((kind, mark), unit)) in rows
            .iter()
            .zip(marks)
            .zip(unit_pnl.chunks_mut(count))
            .enumerate()
        {
            let slot = units.get_mut(row)?;
            match kind {
                MovedRow::Spot => {
                    for (value, scenario) in unit.iter_mut().zip(scenarios) {
                        *value = spot * scenario.price_move;
                    }
                    *slot = (1.0, 0.0, false);
                }
                MovedRow::Linear { inverse, years } => {
                    let per_unit = if *inverse { spot } else { mark.price? };
                    for (value, scenario) in unit.iter_mut().zip(scenarios) {
                        *value = per_unit * scenario.price_move;
                    }
                    *slot = (1.0, spot * params.roll_shock * years.sqrt(), false);
                }
                MovedRow::Option(option) => {
                    let forward = spot * option.carry;
                    // A fast step (the search repriced the mark at a volatility it knows): the
                    // batch values the unshocked row anyway, so its delta is read from there
                    // instead of a scalar Black-76 beside it (the two differ by the kernels'
                    // rounding, about 1e-16 relative, which the search's exact check absorbs).
                    let (inputs, delta_from_batch) = if option.surface_volatility.is_none()
                        && mark.price.is_some()
                        && option.time > 0.0
                        && let Some(volatility) = mark.volatility
                    {
                        *slot = (0.0, 0.0, true);
                        let inputs = OptionRow {
                            forward,
                            strike: option.strike,
                            time: option.time,
                            volatility,
                            discount: option.discount,
                            kind: option.kind,
                        };
                        (inputs, true)
                    } else {
                        let volatility = match (option.surface_volatility, mark.price) {
                            (Some(volatility), _) => volatility,
                            (None, Some(mark)) if option.time > 0.0 => {
                                let usd = if option.inverse { mark * spot } else { mark };
                                implied_volatility(
                                    usd,
                                    forward,
                                    option.strike,
                                    option.time,
                                    option.discount,
                                    option.kind,
                                )
                                .ok()?
                            }
                            (None, Some(_)) => 0.0,
                            (None, None) => return None,
                        };
                        let model = Black76::new_checked(
                            forward,
                            option.strike,
                            option.time,
                            volatility,
                            option.discount,
                        )
                        .ok()?;
                        // dV/dS = dV/dF x F/S, as `revaluation`.
                        *slot = (model.greeks(option.kind).delta * forward / spot, 0.0, true);
                        let inputs = OptionRow {
                            forward: model.forward(),
                            strike: model.strike(),
                            time: model.time_to_expiry_years(),
                            volatility: model.volatility(),
                            discount: model.discount_factor(),
                            kind: option.kind,
                        };
                        (inputs, false)
                    };
                    // The scenarios' volatilities, shocked again only when the row's
                    // volatility moved since they were (`ShockedVols`).
                    let vols = kept.vols.get_mut(row * count..(row + 1) * count)?;
                    let from = kept.from.get_mut(row)?;
                    if *from != inputs.volatility.to_bits() {
                        for (vol, scenario) in vols.iter_mut().zip(scenarios) {
                            *vol = shocked_volatility_scaled(
                                inputs.volatility,
                                option.scale,
                                scenario.vol,
                                params,
                            );
                        }
                        *from = inputs.volatility.to_bits();
                    }
                    let place = scratch.base.forward.len();
                    scratch.options.push((row, place, delta_from_batch));
                    push_split_rows(
                        &mut scratch.base,
                        &mut scratch.shocked,
                        inputs,
                        scenarios,
                        vols,
                    );
                }
            }
        }
        if scratch.options.is_empty() {
            return Some(());
        }
        price_and_greeks_checked(scratch.base.columns(), &mut scratch.valued).ok()?;
        prices_checked(scratch.shocked.columns(), &mut scratch.prices).ok()?;
        let bases = scratch.valued.price();
        let deltas = scratch.valued.delta();
        for &(row, place, delta_from_batch) in &scratch.options {
            if delta_from_batch {
                // dV/dS = dV/dF x F/S, as `revaluation`.
                let forward = *scratch.base.forward.get(place)?;
                units.get_mut(row)?.0 = *deltas.get(place)? * forward / spot;
            }
            let base = *bases.get(place)?;
            let shocked = scratch.prices.get(place * count..(place + 1) * count)?;
            let unit = unit_pnl.get_mut(row * count..(row + 1) * count)?;
            for (value, price) in unit.iter_mut().zip(shocked) {
                *value = price - base;
            }
        }
        Some(())
    }
}

/// Appends an option's unshocked row to `base` and its scenario rows (at the scenarios'
/// volatilities `vols`) to `shocked`: the rows [`push_rows`] writes, split in two so that the
/// scenario rows are priced without greeks. The same values, bit for bit.
fn push_split_rows(
    base: &mut OwnedColumns,
    shocked: &mut OwnedColumns,
    option: OptionRow,
    scenarios: &[Scenario],
    vols: &[f64],
) {
    push_moved_rows(base, option, std::iter::once((0.0, option.volatility)));
    push_moved_rows(
        shocked,
        option,
        scenarios
            .iter()
            .map(|scenario| scenario.price_move)
            .zip(vols.iter().copied()),
    );
}

impl MovedBook {
    /// Prepares the search along `underlying` from the account's `book` and `exposures` at the
    /// unmoved market (`instruments` are the cross pool's, as given to [`ScenarioBook::new`]).
    /// `None` when the venue's margin includes historical expected shortfall, or the book holds
    /// an instrument this path does not revalue: the search then rebuilds the full book.
    ///
    /// # Errors
    /// [`RiskError`] as [`ScenarioBook::new`] on the unmoved market.
    pub fn new(
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        book: ScenarioBook,
        exposures: &[Exposure],
        underlying: &str,
        instruments: &[&Instrument],
    ) -> Result<Option<Self>, RiskError> {
        if params.historical.is_some() && view.history().is_some() {
            return Ok(None);
        }
        let Some((moved, _, book_u)) = book.underlyings.get_full(underlying) else {
            return Ok(None);
        };
        let by_name: std::collections::HashMap<&str, &Instrument> = instruments
            .iter()
            .rev()
            .map(|instrument| (instrument.name.as_str(), *instrument))
            .collect();
        let mut rows = Vec::with_capacity(book_u.instruments.len());
        for name in book_u.instruments.keys() {
            let Some(instrument) = by_name.get(name.as_str()) else {
                if name.starts_with("spot:") {
                    rows.push(MovedRow::Spot);
                    continue;
                }
                return Ok(None);
            };
            rows.push(match &instrument.terms {
                Terms::Perpetual | Terms::Future { .. } => MovedRow::Linear {
                    inverse: instrument.style == Style::Inverse,
                    years: instrument
                        .terms
                        .expiry()
                        .map_or(1.0 / DAYS_PER_YEAR, |expiry| {
                            view.years_to(expiry).max(1.0 / DAYS_PER_YEAR)
                        }),
                },
                Terms::Option {
                    expiry,
                    strike,
                    right,
                } => {
                    let time = view.years_to(*expiry).max(0.0);
                    let strike = strike.to_f64();
                    let rate = view.market().rate;
                    let given = view.market().mark.contains_key(&instrument.name);
                    MovedRow::Option(MovedOption {
                        kind: option_type(*right),
                        inverse: instrument.style == Style::Inverse,
                        strike,
                        time,
                        carry: (rate * time).exp(),
                        discount: (-rate * time).exp(),
                        scale: vol_shock_scale(time * DAYS_PER_YEAR, &book_u.params),
                        surface_volatility: if given {
                            None
                        } else {
                            Some(view.model_volatility(instrument, strike, time)?)
                        },
                    })
                }
            });
        }
        let mut held = Vec::new();
        for exposure in exposures.iter().filter(|e| e.underlying == moved) {
            if exposure.instrument >= rows.len() {
                return Err(outside());
            }
            held.push((exposure.instrument, exposure.amount));
        }
        let mut others = Vec::with_capacity(book.underlyings.len());
        for (u, book_v) in book.underlyings.values().enumerate() {
            let mut pnl = Vec::new();
            let sums = if u == moved {
                None
            } else {
                scenario_totals(book_v, u, exposures, &mut pnl)?
            };
            others.push(sums.map(|sums| (pnl, sums)));
        }
        Ok(Some(Self {
            names: book_u.instruments.keys().cloned().collect(),
            correlations: Correlations::new(&book, params),
            max_offset: params.max_offset,
            im_factor: params.im_factor,
            book,
            moved,
            rows,
            held,
            others,
            scratch: MovedScratch::default(),
        }))
    }

    /// The moved underlying's instruments (spot balances as `spot:ASSET`), in the order
    /// [`MovedBook::margin`] takes their marks.
    #[must_use]
    pub fn instruments(&self) -> &[String] {
        &self.names
    }

    /// `(maintenance, initial)` margin in the report currency, before rounding, with the moved
    /// underlying's index at `spot` (USD) and its instruments' marks at `marks` (in the order of
    /// [`MovedBook::instruments`], see [`BookMark`]). `None` when a revaluation fails: the full
    /// path then reports why.
    pub fn margin(
        &mut self,
        spot: f64,
        marks: &[BookMark],
        currency: &ReportCurrency,
    ) -> Option<(f64, f64)> {
        let (_, book_u) = self.book.underlyings.get_index(self.moved)?;
        let scenarios = &book_u.scenarios;
        let params = &book_u.params;
        let count = scenarios.len();
        if marks.len() != self.rows.len() || count == 0 {
            return None;
        }
        let scratch = &mut self.scratch;
        // Every row is written below (or the step fails): no need to clear them first.
        scratch.unit_pnl.resize(self.rows.len() * count, 0.0);
        scratch.units.resize(self.rows.len(), (0.0, 0.0, false));
        // Kept from step to step (their rows' scenarios do not change).
        scratch.shocked_vols.resize(self.rows.len() * count, 0.0);
        scratch
            .shocked_from
            .resize(self.rows.len(), f64::NAN.to_bits());
        let step = MovedStep {
            spot,
            scenarios,
            params,
        };
        // Blocks of rows revalued apart, on every core: each row's figures are its own whatever
        // the block or the thread (the batch kernel values each option alone), and the sums
        // below run in the account's order, so the result does not depend on the scheduling.
        self.rows
            .par_chunks(MOVED_BLOCK)
            .zip(marks.par_chunks(MOVED_BLOCK))
            .zip(scratch.unit_pnl.par_chunks_mut(MOVED_BLOCK * count))
            .zip(scratch.units.par_chunks_mut(MOVED_BLOCK))
            .zip(scratch.shocked_vols.par_chunks_mut(MOVED_BLOCK * count))
            .zip(scratch.shocked_from.par_chunks_mut(MOVED_BLOCK))
            .try_for_each_init(
                BlockScratch::default,
                |block, (((((rows, marks), unit_pnl), units), vols), from)| {
                    let kept = ShockedVols { vols, from };
                    step.revalue(rows, marks, unit_pnl, units, kept, block)
                },
            )?;
        // The account's sums, in its order (as `scenario_totals`).
        scratch.pnl.clear();
        scratch.pnl.resize(count, 0.0);
        let mut sums = DeltaSums::default();
        for &(row, amount) in &self.held {
            let unit = scratch.unit_pnl.get(row * count..(row + 1) * count)?;
            for (total, unit) in scratch.pnl.iter_mut().zip(unit) {
                *total += amount * unit;
            }
            let &(delta, roll, is_option) = scratch.units.get(row)?;
            sums.add(amount, delta, roll, is_option);
        }
        scratch.charges.clear();
        for (u, book_v) in self.book.underlyings.values().enumerate() {
            let (pnl, sums, scan) = if u == self.moved {
                if self.held.is_empty() {
                    continue;
                }
                let scan = Scan {
                    params,
                    scenarios,
                    price_usd: spot,
                };
                (&scratch.pnl, &sums, scan)
            } else {
                let Some((pnl, sums)) = self.others.get(u)?.as_ref() else {
                    continue;
                };
                (pnl, sums, book_v.scan())
            };
            let worst = Worst::of(pnl, scan.scenarios, currency, u);
            let to_report = |usd: f64| currency.convert(u, usd, 0.0);
            scratch
                .charges
                .push(settle(scan, u, to_report, worst, sums).ok()?);
        }
        // Summed as `portfolio_risk` sums them.
        let (_, combined, _) = combine(
            &scratch.charges,
            Charges::leg,
            &self.correlations,
            self.max_offset,
        );
        let mut additive = 0.0;
        let mut liquidity = 0.0;
        for charge in &scratch.charges {
            additive += charge.additive_charge;
            liquidity += charge.liquidity_charge + charge.concentration_charge;
        }
        // No expected shortfall here: `max(scan, 0)`, as `portfolio_risk` takes it without one.
        let maintenance = (combined + additive).max(0.0) + liquidity;
        Some((maintenance, self.im_factor * maintenance))
    }
}
