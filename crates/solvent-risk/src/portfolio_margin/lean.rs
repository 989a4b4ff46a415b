//! The lean path for populations: an account prepared once (exposures grouped by underlying)
//! and its maintenance margin summed straight from the packed rows, without attribution.

use super::*;

/// The scan and charges of underlying `u` for one group of a prepared account (the lean path):
/// the rows of the packed matrix summed lane by lane, in the group's (exposure) order, so the
/// scenario P&L are the full path's bit for bit, and so are the charges: the conversion to the
/// report currency is the full path's, skipped only where the report asset is worth exactly
/// 1 USD (where it changes nothing). The charges are pushed onto `out`: returned, they would
/// travel through memory in wide pieces the caller reads back in other widths, which stalls.
#[inline]
pub(super) fn lean_charges(
    book_u: &UnderlyingBook,
    u: usize,
    columns: &[Column],
    currency: &ReportCurrency,
    lanes: &mut Vec<Lane>,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let packed = &book_u.packed;
    if packed.rows != book_u.instruments.len() {
        return Err(RiskError::Unsupported {
            path: format!("portfolio margin: {}", book_u.name),
            problem: "the book's instruments changed after it was built".to_owned(),
        });
    }
    // Rows of up to 48 scenarios (Deribit's 27 plus extended moves) in registers, with the row
    // width a constant; longer ones through memory.
    match packed.lanes {
        1 => lean_charges_fixed::<1>(book_u, u, columns, currency, lanes, out),
        2 => lean_charges_fixed::<2>(book_u, u, columns, currency, lanes, out),
        3 => lean_charges_fixed::<3>(book_u, u, columns, currency, lanes, out),
        4 => lean_charges_fixed::<4>(book_u, u, columns, currency, lanes, out),
        5 => lean_charges_fixed::<5>(book_u, u, columns, currency, lanes, out),
        6 => lean_charges_fixed::<6>(book_u, u, columns, currency, lanes, out),
        7 => lean_charges_fixed::<7>(book_u, u, columns, currency, lanes, out),
        8 => lean_charges_fixed::<8>(book_u, u, columns, currency, lanes, out),
        9 => lean_charges_fixed::<9>(book_u, u, columns, currency, lanes, out),
        10 => lean_charges_fixed::<10>(book_u, u, columns, currency, lanes, out),
        11 => lean_charges_fixed::<11>(book_u, u, columns, currency, lanes, out),
        12 => lean_charges_fixed::<12>(book_u, u, columns, currency, lanes, out),
        _ => lean_charges_any(book_u, u, columns, currency, lanes, out),
    }
}

/// [`lean_charges`] for rows of `W` lanes (the packed rows are checked to be `W` lanes wide by the
/// caller), every lane's running sum in its own register (see [`sum_fixed`]). Not inlined: one
/// body per width, called through the dispatch of [`lean_charges`].
#[inline(never)]
pub(super) fn lean_charges_fixed<const W: usize>(
    book_u: &UnderlyingBook,
    u: usize,
    columns: &[Column],
    currency: &ReportCurrency,
    lanes: &mut Vec<Lane>,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let packed = &book_u.packed;
    let sums = delta_sums(packed, columns)?;
    let total = sum_fixed::<W>(&packed.unit_pnl, columns);
    if packed.weight.len() != W {
        return Err(outside());
    }
    if currency.priced_by == Some(u) {
        // Over a copy: `total` stays in registers.
        lanes.clear();
        lanes.extend_from_slice(&total);
        push_charges(book_u, u, currency, lanes, &sums, out)
    } else {
        push_charges(book_u, u, currency, &total, &sums, out)
    }
}

/// The charges of a group from its scenario P&L (`totals`, in USD, lane by lane) and delta sums,
/// pushed onto `out`.
#[inline]
pub(super) fn push_charges(
    book_u: &UnderlyingBook,
    u: usize,
    currency: &ReportCurrency,
    totals: &[Lane],
    sums: &DeltaSums,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let charges = if currency.priced_by == Some(u) || currency.price_usd != 1.0 {
        // Coin-margined in this underlying (the account's equity moves with the price), or a
        // report asset not worth exactly 1 USD (where a multiplication by `1 / price` can be an
        // ulp away from the division): the full path's conversion, scenario by scenario, so
        // the figure is the full path's bit for bit.
        let worst = Worst::of(totals.as_flattened(), &book_u.scenarios, currency, u);
        settle(
            book_u.scan(),
            u,
            |usd: f64| currency.convert(u, usd, 0.0),
            worst,
            sums,
        )?
    } else {
        // Worth exactly 1 USD: `x * 1 == x / 1`, so the branch-free search gives the full path's
        // figure.
        let worst = lowest(totals, &book_u.packed.weight, 1.0);
        settle(book_u.scan(), u, |usd: f64| usd, worst, sums)?
    };
    out.push(LeanCharges::of(charges));
    Ok(())
}

/// The delta sums of a group, in its order; checks every row is in the book.
#[inline]
pub(super) fn delta_sums(packed: &PackedRows, columns: &[Column]) -> Result<DeltaSums, RiskError> {
    let mut sums = DeltaSums::default();
    for column in columns {
        let units = packed
            .units
            .get(column.instrument as usize)
            .ok_or_else(outside)?;
        sums.add(column.amount, units.delta, units.roll, units.is_option);
    }
    Ok(sums)
}

/// The group's rows of `unit_pnl` (rows of `W` lanes, each `instrument` checked to be a row by
/// [`delta_sums`]) summed in the group's order. Each scenario's sum is a chain of additions in
/// the account's order (the full path's order, so the same bits), and a chain waits on its
/// previous addition; with the row width a constant, every lane's running sum stays in its own
/// register and the `W` chains run side by side.
#[inline]
pub(super) fn sum_fixed<const W: usize>(unit_pnl: &[Lane], columns: &[Column]) -> [Lane; W] {
    let mut total = [[0.0; LANES]; W];
    for column in columns {
        let start = column.instrument as usize * W;
        let row = &unit_pnl[start..start + W];
        for (total, unit) in total.iter_mut().zip(row) {
            for (total, unit) in total.iter_mut().zip(unit) {
                *total += column.amount * unit;
            }
        }
    }
    total
}

/// [`lean_charges`] for rows of any width: the sums through `lanes`, in blocks of registers.
pub(super) fn lean_charges_any(
    book_u: &UnderlyingBook,
    u: usize,
    columns: &[Column],
    currency: &ReportCurrency,
    lanes: &mut Vec<Lane>,
    out: &mut Vec<LeanCharges>,
) -> Result<(), RiskError> {
    let packed = &book_u.packed;
    let sums = delta_sums(packed, columns)?;
    lanes.clear();
    lanes.resize(packed.lanes, [0.0; LANES]);
    sum_rows(&packed.unit_pnl, packed.lanes, 0, columns, lanes).ok_or_else(outside)?;
    push_charges(book_u, u, currency, lanes, &sums, out)
}

/// Sums the account's rows (`columns`, in their order) of the packed matrix `unit_pnl` (rows of
/// `width` lanes) over lanes `first..first + out.len()` into `out`, a block of up to 12 lanes at a
/// time with every lane's sum in a register (as [`lean_charges_fixed`]). `None` when a row is
/// outside the matrix.
pub(super) fn sum_rows(
    unit_pnl: &[Lane],
    width: usize,
    first: usize,
    columns: &[Column],
    out: &mut [Lane],
) -> Option<()> {
    match out.len() {
        0 => Some(()),
        1 => sum_block::<1>(unit_pnl, width, first, columns, out),
        2 => sum_block::<2>(unit_pnl, width, first, columns, out),
        3 => sum_block::<3>(unit_pnl, width, first, columns, out),
        4 => sum_block::<4>(unit_pnl, width, first, columns, out),
        5 => sum_block::<5>(unit_pnl, width, first, columns, out),
        6 => sum_block::<6>(unit_pnl, width, first, columns, out),
        7 => sum_block::<7>(unit_pnl, width, first, columns, out),
        8 => sum_block::<8>(unit_pnl, width, first, columns, out),
        9 => sum_block::<9>(unit_pnl, width, first, columns, out),
        10 => sum_block::<10>(unit_pnl, width, first, columns, out),
        11 => sum_block::<11>(unit_pnl, width, first, columns, out),
        12 => sum_block::<12>(unit_pnl, width, first, columns, out),
        _ => {
            // Longer rows: blocks of 8 lanes, then the rest.
            let (head, tail) = out.split_at_mut(8);
            sum_block::<8>(unit_pnl, width, first, columns, head)?;
            sum_rows(unit_pnl, width, first + 8, columns, tail)
        }
    }
}

/// [`sum_rows`] over a block of `W` lanes (`out.len() == W`).
#[inline]
pub(super) fn sum_block<const W: usize>(
    unit_pnl: &[Lane],
    width: usize,
    first: usize,
    columns: &[Column],
    out: &mut [Lane],
) -> Option<()> {
    let mut total = [[0.0; LANES]; W];
    for column in columns {
        let start = (column.instrument as usize)
            .checked_mul(width)?
            .checked_add(first)?;
        let row: &[Lane; W] = unit_pnl
            .get(start..start.checked_add(W)?)?
            .try_into()
            .ok()?;
        for (total, unit) in total.iter_mut().zip(row) {
            for (total, unit) in total.iter_mut().zip(unit) {
                *total += column.amount * unit;
            }
        }
    }
    out.copy_from_slice(&total);
    Some(())
}

/// The first scenario of least weighted P&L `value x inverse x weight`, branch-free: each lane
/// keeps its own strict minimum and where it was, then the lanes meet (least value, then least
/// index), which is the first minimum a plain `<` scan finds. NaN (the padding's weight) never
/// counts; with no finite minimum the result is scenario 0 at `+inf`, as in the scan.
///
/// Kept out of line: unrolled over a constant width (as it would be inlined into
/// [`lean_charges_fixed`]), a search written like this one was compiled to scalar code (the
/// compiler sees a reduction it may not reorder), which cost more than the call.
#[inline(never)]
pub(super) fn lowest(lanes: &[Lane], weight: &[Lane], inverse: f64) -> Worst {
    let mut low = [f64::INFINITY; LANES];
    let mut at = [0.0_f64; LANES];
    let mut base = 0.0;
    for (lane, weight) in lanes.iter().zip(weight) {
        for k in 0..LANES {
            let value = lane[k] * inverse * weight[k];
            let below = value < low[k];
            low[k] = if below { value } else { low[k] };
            at[k] = if below { base + k as f64 } else { at[k] };
        }
        base += LANES as f64;
    }
    // The lanes meet with selects only (which lane holds the minimum is data, not a pattern a
    // branch predictor learns): the least value, then the least index holding it.
    let least = low.iter().fold(
        f64::INFINITY,
        |least, &value| if value < least { value } else { least },
    );
    let first = low
        .iter()
        .zip(&at)
        .fold(f64::INFINITY, |first, (&value, &index)| {
            let index = if value == least { index } else { f64::INFINITY };
            if index < first { index } else { first }
        });
    if least < f64::INFINITY {
        // Scenario counts are small: the index is exact in an f64.
        Worst {
            index: first as usize,
            pnl: least,
        }
    } else {
        Worst {
            index: 0,
            pnl: f64::INFINITY,
        }
    }
}

/// Scratch buffers for [`maintenance_margin`] and [`maintenance_margin_prepared`], reused across
/// accounts.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    pub(super) lanes: Vec<Lane>,
    pub(super) charges: Vec<LeanCharges>,
    pub(super) prepared: PreparedExposures,
}

/// One exposure of a [`PreparedExposures`]: compact, so an account's exposures share a cache line
/// or two.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Column {
    pub(super) underlying: u32,
    pub(super) instrument: u32,
    pub(super) amount: f64,
}

/// An account's exposures grouped by underlying, in the book's underlying order and, within an
/// underlying, in the exposures' order (so sums run in the full path's order). Built once per
/// account from its [`Exposure`]s and reused across price updates: it holds only indices and
/// amounts, which a price update does not change (a new [`ScenarioBook`] over the same
/// instruments keeps their indices). Rebuild it when the account's positions change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreparedExposures {
    pub(super) columns: Vec<Column>,
    /// The runs of `columns` on one underlying, in order (found once here rather than on every
    /// call).
    pub(super) groups: Vec<Group>,
}

/// A run of a [`PreparedExposures`]' columns on one underlying: it ends (exclusive) at `end`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Group {
    pub(super) underlying: u32,
    pub(super) end: u32,
}

impl PreparedExposures {
    /// Groups `exposures` by underlying.
    #[must_use]
    pub fn new(exposures: &[Exposure]) -> Self {
        let mut prepared = Self::default();
        prepared.fill(exposures);
        prepared
    }

    /// Regroups in place, reusing the buffer.
    pub(super) fn fill(&mut self, exposures: &[Exposure]) {
        // An index past `u32::MAX` cannot be in a book: it becomes one that is outside it.
        let narrow = |index: usize| u32::try_from(index).unwrap_or(u32::MAX);
        self.columns.clear();
        self.columns.extend(exposures.iter().map(|e| Column {
            underlying: narrow(e.underlying),
            instrument: narrow(e.instrument),
            amount: e.amount,
        }));
        // Stable: within an underlying, the account's order.
        self.columns.sort_by_key(|c| c.underlying);
        self.groups.clear();
        let mut end = 0;
        for run in self.columns.chunk_by(|a, b| a.underlying == b.underlying) {
            end += run.len();
            self.groups.push(Group {
                underlying: run.first().map_or(u32::MAX, |c| c.underlying),
                // Past `u32::MAX` exposures, a run that ends outside the columns (an error).
                end: narrow(end),
            });
        }
    }

    /// Number of exposures.
    #[must_use]
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the account has no exposure.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// The maintenance margin of one account: the lean path for populations (no attribution, no
/// explanation, no allocation once `scratch` has grown). It leaves out historical expected
/// shortfall: it equals [`portfolio_risk`]`.maintenance_margin` (to rounding, see
/// [`maintenance_margin_prepared`]) when ES is disabled or does not bind. Groups `exposures` by
/// underlying on each call; an account margined at many prices should be prepared once with
/// [`PreparedExposures::new`] and go through [`maintenance_margin_prepared`].
///
/// # Errors
/// [`RiskError::Unsupported`] when an exposure points outside the book.
pub fn maintenance_margin(
    book: &ScenarioBook,
    correlations: &Correlations,
    max_offset: f64,
    exposures: &[Exposure],
    currency: &ReportCurrency,
    scratch: &mut Scratch,
) -> Result<f64, RiskError> {
    let mut prepared = std::mem::take(&mut scratch.prepared);
    prepared.fill(exposures);
    let result =
        maintenance_margin_prepared(book, correlations, max_offset, &prepared, currency, scratch);
    scratch.prepared = prepared;
    result
}

/// [`maintenance_margin`] of a prepared account: per underlying, the account's rows of the packed
/// unit P&L matrix summed lane by lane, then the charges and the cross-underlying offset. Leaves
/// out historical ES. The scenario P&L, charges and combination use the full path's operations in
/// its order, so the result is the full path's bit for bit (tested); where the report asset is
/// worth exactly 1 USD the conversion, which would change nothing, is skipped.
///
/// # Errors
/// [`RiskError::Unsupported`] when an exposure points outside the book, or the book's instruments
/// were changed after it was built.
pub fn maintenance_margin_prepared(
    book: &ScenarioBook,
    correlations: &Correlations,
    max_offset: f64,
    account: &PreparedExposures,
    currency: &ReportCurrency,
    scratch: &mut Scratch,
) -> Result<f64, RiskError> {
    lean_margin(
        |u| book.underlyings.get_index(u).map(|(_, book_u)| book_u),
        correlations,
        max_offset,
        account,
        currency,
        scratch,
    )
}

/// [`maintenance_margin_prepared`] over the underlying books `book_of` gives by index (a
/// [`ScenarioBook`]'s, or books shared by many accounts and listed in one account's order).
pub(super) fn lean_margin<'b>(
    book_of: impl Fn(usize) -> Option<&'b UnderlyingBook>,
    correlations: &Correlations,
    max_offset: f64,
    account: &PreparedExposures,
    currency: &ReportCurrency,
    scratch: &mut Scratch,
) -> Result<f64, RiskError> {
    scratch.charges.clear();
    let mut start = 0;
    for group in &account.groups {
        let end = group.end as usize;
        let columns = account.columns.get(start..end).ok_or_else(outside)?;
        start = end;
        let u = group.underlying as usize;
        let book_u = book_of(u).ok_or_else(outside)?;
        lean_charges(
            book_u,
            u,
            columns,
            currency,
            &mut scratch.lanes,
            &mut scratch.charges,
        )?;
    }
    let (_, combined, _) = combine(&scratch.charges, |c| c.leg, correlations, max_offset);
    // Summed as `portfolio_risk` sums them (`combined + additive`, then liquidity).
    let additive: f64 = scratch.charges.iter().map(|c| c.additive).sum();
    let liquidity: f64 = scratch.charges.iter().map(|c| c.liquidity).sum();
    Ok(combined + additive + liquidity)
}
