//! Price, delta, gamma and vega for many options at once, over structure-of-arrays columns.
//!
//! The batch is processed in chunks of `CHUNK` options (their intermediates stay in the L1
//! cache), each by two kernels, both vectorised (8 lanes with AVX-512, 4 with the workspace's
//! x86-64-v3 target):
//!
//! 1. The *direct* kernel (`direct.rs`) values every option of the chunk by the textbook
//!    out-of-the-money difference `min(F, K) N(h + t) - max(F, K) N(h - t)`, in two passes
//!    (inputs, validation and coordinates; then the density, the two tail ratios and the
//!    outputs), with three divisions and a square root per option, and marks the options for
//!    which that difference could lose accuracy: cancellation factor above 80, tail-ratio
//!    arguments beyond its one rational approximation (`|h| + t > 4 sqrt(2)`), expired
//!    options. In market-like batches 98% are direct.
//! 2. The *careful* kernel values the marked options, gathered across chunks into contiguous
//!    columns: the scalar algorithm of [`Black76`](super::Black76) written without branches
//!    (both the Taylor form and the `N(d1)`, `N(d2)` form are computed and the right one
//!    selected per lane), with the branch-free `exp`, `ln` and `erfcx` of `vector_math`. Its
//!    results overwrite the direct kernel's.
//!
//! The choice is made per option from its normalised coordinates and never branches inside a
//! vector loop. Results agree with the scalar path to `1e-12` relative (absolute `1e-12 * F` for
//! values below that), which `tests/black76_batch.rs` checks, on both sides of the routing
//! boundaries too. Every operation is a correctly rounded IEEE operation, a comparison, a
//! selection or an explicit FMA, so the results are the same bits on every machine.
//!
//! The kernels are compiled twice: for the workspace's x86-64-v3 target (AVX2), and for
//! AVX-512, chosen at run time when the processor has it (module `dispatch`, the crate's one
//! `unsafe` call); both give the same bits. The first chunk is shortened so that the others
//! start on cache-line boundaries of the columns (`first_chunk_len`).
//!
//! `bench/black76.sh` measures the throughput against numpy, QuantLib and vollib; `direct.rs`
//! says where the time goes.
//!
//! Every kernel takes `GREEKS`: [`prices_checked`] runs them with `false`, the same code
//! compiled without the greeks' operations and stores (for revaluations that read prices only),
//! so its prices are the bits of [`price_and_greeks_checked`]'s.
//!
//! Theta is not computed here (the scalar [`Black76::greeks`](super::Black76::greeks) has it):
//! the margin models that need speed revalue prices and first/second-order greeks.

use super::vector_math::{erfcx_non_negative, exp_non_positive, fma, ln_ratio, max, min};
use super::{
    H_FLOOR, INV_SQRT_2PI, OptionType, SQRT_PI_OVER_2, TAYLOR_MAX_HALF_TOTAL_VOL, limits,
    taylor_sums,
};
use crate::error::{Field, PricingError};

mod direct;
use std::cell::Cell;
use std::f64::consts::FRAC_1_SQRT_2;

/// The raw columns of a batch, one element per option (named so no two slices can be swapped
/// by position).
#[derive(Debug, Clone, Copy)]
pub struct BatchColumns<'a> {
    /// Forward `F` of each option.
    pub forward: &'a [f64],
    /// Strike `K`.
    pub strike: &'a [f64],
    /// Time to expiry `T`, in years.
    pub time_to_expiry_years: &'a [f64],
    /// Volatility `sigma`.
    pub volatility: &'a [f64],
    /// Discount factor `DF` (`1.0` = undiscounted).
    pub discount_factor: &'a [f64],
    /// Call or put.
    pub option_type: &'a [OptionType],
}

/// The columns of a batch, owned: filled option by option, then lent to the batch functions
/// as [`BatchColumns`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnedColumns {
    /// Forward `F` of each option.
    pub forward: Vec<f64>,
    /// Strike `K`.
    pub strike: Vec<f64>,
    /// Time to expiry `T`, in years.
    pub time: Vec<f64>,
    /// Volatility `sigma`.
    pub volatility: Vec<f64>,
    /// Discount factor `DF`.
    pub discount: Vec<f64>,
    /// Call or put.
    pub kind: Vec<OptionType>,
}

impl OwnedColumns {
    /// Empties every column, keeping their capacity (for batches built again and again).
    pub fn clear(&mut self) {
        for column in [
            &mut self.forward,
            &mut self.strike,
            &mut self.time,
            &mut self.volatility,
            &mut self.discount,
        ] {
            column.clear();
        }
        self.kind.clear();
    }

    /// Empty columns with room for `options` options each.
    #[must_use]
    pub fn with_capacity(options: usize) -> Self {
        Self {
            forward: Vec::with_capacity(options),
            strike: Vec::with_capacity(options),
            time: Vec::with_capacity(options),
            volatility: Vec::with_capacity(options),
            discount: Vec::with_capacity(options),
            kind: Vec::with_capacity(options),
        }
    }

    /// The columns, lent.
    #[must_use]
    pub fn columns(&self) -> BatchColumns<'_> {
        BatchColumns {
            forward: &self.forward,
            strike: &self.strike,
            time_to_expiry_years: &self.time,
            volatility: &self.volatility,
            discount_factor: &self.discount,
            option_type: &self.kind,
        }
    }
}

/// Validated batch columns: all of one length, every element in the domain of
/// [`Black76::new_checked`](super::Black76::new_checked).
#[derive(Debug, Clone, Copy)]
pub struct Black76Batch<'a> {
    columns: BatchColumns<'a>,
}

impl<'a> Black76Batch<'a> {
    /// Checks the lengths, then every element.
    ///
    /// # Errors
    /// [`PricingError::LengthMismatch`] naming the first column whose length differs from
    /// `forward`'s; else [`PricingError::BatchElement`] with the index of the first invalid
    /// element and the error [`Black76::new_checked`](super::Black76::new_checked) gives for it.
    pub fn new_checked(columns: BatchColumns<'a>) -> Result<Self, PricingError> {
        let n = check_lengths(&columns)?;
        // A branch-free pass over each column finds whether anything is wrong; only then is
        // the (slower) element-by-element check run to name it.
        if !all_in_domain(&columns) {
            first_invalid(&columns, 0..n)?;
        }
        Ok(Self { columns })
    }

    /// Number of options.
    #[must_use]
    pub fn len(&self) -> usize {
        self.columns.forward.len()
    }

    /// `true` when the batch has no option.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.columns.forward.is_empty()
    }

    /// The validated columns.
    #[must_use]
    pub fn columns(&self) -> BatchColumns<'a> {
        self.columns
    }
}

/// The common length of the columns.
///
/// # Errors
/// [`PricingError::LengthMismatch`] naming the first column whose length differs from
/// `forward`'s.
fn check_lengths(columns: &BatchColumns<'_>) -> Result<usize, PricingError> {
    let expected = columns.forward.len();
    let lengths = [
        (Field::Strike, columns.strike.len()),
        (Field::TimeToExpiryYears, columns.time_to_expiry_years.len()),
        (Field::Volatility, columns.volatility.len()),
        (Field::DiscountFactor, columns.discount_factor.len()),
        (Field::OptionType, columns.option_type.len()),
    ];
    for (field, actual) in lengths {
        if actual != expected {
            return Err(PricingError::LengthMismatch {
                field,
                expected,
                actual,
            });
        }
    }
    Ok(expected)
}

/// Checks the elements of `range` one by one, as [`Black76::new_checked`](super::Black76::new_checked).
///
/// # Errors
/// [`PricingError::BatchElement`] for the first invalid element.
fn first_invalid(
    columns: &BatchColumns<'_>,
    range: std::ops::Range<usize>,
) -> Result<(), PricingError> {
    for i in range {
        super::Black76::new_checked(
            columns.forward[i],
            columns.strike[i],
            columns.time_to_expiry_years[i],
            columns.volatility[i],
            columns.discount_factor[i],
        )
        .map_err(|error| PricingError::BatchElement {
            index: i,
            source: Box::new(error),
        })?;
    }
    Ok(())
}

/// `true` when every element satisfies the checks of `Black76::new_checked` (written so the
/// comparisons vectorise: no early exit).
fn all_in_domain(columns: &BatchColumns<'_>) -> bool {
    fn all_within(values: &[f64], min: f64, max: f64) -> bool {
        // `min <= v <= max` is false for NaN, so finiteness is included.
        values
            .iter()
            .fold(true, |ok, &v| ok & (v >= min) & (v <= max))
    }
    use limits::*;
    all_within(columns.forward, MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)
        & all_within(columns.strike, MIN_PRICE_LEVEL, MAX_PRICE_LEVEL)
        & all_within(columns.time_to_expiry_years, 0.0, MAX_TIME_TO_EXPIRY_YEARS)
        & all_within(columns.volatility, 0.0, MAX_VOLATILITY)
        & all_within(
            columns.discount_factor,
            MIN_DISCOUNT_FACTOR,
            MAX_DISCOUNT_FACTOR,
        )
}

/// Output columns of [`price_and_greeks_batch`]; reused between calls to avoid allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GreeksBatch {
    price: Vec<f64>,
    delta: Vec<f64>,
    gamma: Vec<f64>,
    vega: Vec<f64>,
}

impl GreeksBatch {
    /// Empty columns with room for `capacity` options.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            price: Vec::with_capacity(capacity),
            delta: Vec::with_capacity(capacity),
            gamma: Vec::with_capacity(capacity),
            vega: Vec::with_capacity(capacity),
        }
    }

    /// Number of options.
    #[must_use]
    pub fn len(&self) -> usize {
        self.price.len()
    }

    /// `true` when there is no option.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.price.is_empty()
    }

    /// Present values.
    #[must_use]
    pub fn price(&self) -> &[f64] {
        &self.price
    }

    /// `dV/dF` (discounted).
    #[must_use]
    pub fn delta(&self) -> &[f64] {
        &self.delta
    }

    /// `d2V/dF2`.
    #[must_use]
    pub fn gamma(&self) -> &[f64] {
        &self.gamma
    }

    /// `dV/dsigma` per 1.00 of volatility.
    #[must_use]
    pub fn vega(&self) -> &[f64] {
        &self.vega
    }

    /// Every column, as the kernels write them.
    fn outputs(&mut self) -> Outputs<'_> {
        Outputs {
            price: &mut self.price,
            greeks: Some((&mut self.delta, &mut self.gamma, &mut self.vega)),
        }
    }
}

/// Price, delta, gamma and vega of every option of `batch`, written to `out` (resized to the
/// batch's length). Definitions as [`Black76::greeks`](super::Black76::greeks).
///
/// For columns not yet validated, [`price_and_greeks_checked`] does both in one pass over the
/// inputs, which is faster for batches larger than the processor's caches.
pub fn price_and_greeks_batch(batch: &Black76Batch<'_>, out: &mut GreeksBatch) {
    let out = out.outputs();
    let valued = dispatch::value_chunks::<true>(batch.columns, out, Inputs::Validated);
    debug_assert!(valued.is_ok(), "a validated batch has no error to report");
}

/// Validates `columns` as [`Black76Batch::new_checked`] and writes the price, delta, gamma and
/// vega of every option to `out` (resized to the columns' length), as
/// [`price_and_greeks_batch`], in one pass: each block of options is checked by the kernel's
/// first pass over it, so every input is read from memory once. Same results, bit for bit, as
/// `new_checked` followed by `price_and_greeks_batch`.
///
/// # Errors
/// The error [`Black76Batch::new_checked`] gives for the same columns (a length mismatch, or
/// the first invalid element). `out` then has the columns' length (when they agree) and
/// unspecified contents.
pub fn price_and_greeks_checked(
    columns: BatchColumns<'_>,
    out: &mut GreeksBatch,
) -> Result<(), PricingError> {
    check_lengths(&columns)?;
    let out = out.outputs();
    dispatch::value_chunks::<true>(columns, out, Inputs::Unchecked)
}

/// Validates `columns` as [`price_and_greeks_checked`] does and writes the price of every
/// option to `prices` (resized to the columns' length), without the greeks.
///
/// For callers that read prices only (scenario revaluations): the kernels are the same code as
/// [`price_and_greeks_checked`]'s, compiled without the greeks' operations and stores, so every
/// price is the same bits as that function's.
///
/// # Errors
/// As [`price_and_greeks_checked`]; `prices` then has the columns' length (when they agree) and
/// unspecified contents.
pub fn prices_checked(
    columns: BatchColumns<'_>,
    prices: &mut Vec<f64>,
) -> Result<(), PricingError> {
    check_lengths(&columns)?;
    let out = Outputs {
        price: prices,
        greeks: None,
    };
    dispatch::value_chunks::<false>(columns, out, Inputs::Unchecked)
}

/// The output columns of one call: the prices, and the delta, gamma and vega columns where the
/// greeks are computed (`GREEKS` of the kernels).
struct Outputs<'a> {
    price: &'a mut Vec<f64>,
    greeks: Option<(&'a mut Vec<f64>, &'a mut Vec<f64>, &'a mut Vec<f64>)>,
}

/// The chunk `range` of an output column, or an empty slice where the greeks are not computed
/// (the kernels then never index it).
#[inline(always)]
fn part<const GREEKS: bool>(column: &mut [f64], range: std::ops::Range<usize>) -> &mut [f64] {
    if GREEKS { &mut column[range] } else { &mut [] }
}

/// The choice of instruction set for [`value_chunks`], made at run time on each call.
///
/// The workspace is built for x86-64-v3 (AVX2 + FMA: 4 lanes, 16 vector registers). On a
/// processor that also has AVX-512, the same kernels, compiled a second time with those features
/// enabled, run 8 lanes per instruction with 32 registers (no constants reloaded from memory):
/// measured 1.35 times the throughput on AMD Zen 4, although its vector units are 256 bits wide
/// (half the instructions for the same arithmetic, so twice the options in flight). The
/// results are the same bits: every operation of the kernels is a
/// correctly rounded IEEE operation, a comparison, a selection or an explicit FMA, which AVX-512
/// computes exactly as AVX2 does (`tests::avx512_gives_the_same_bits_as_avx2`).
mod dispatch {
    use super::{BatchColumns, Inputs, Outputs};
    use crate::error::PricingError;

    /// [`value_chunks`](super::value_chunks) with the widest instruction set the processor has.
    ///
    /// # Errors
    /// As [`value_chunks`](super::value_chunks).
    pub(super) fn value_chunks<const GREEKS: bool>(
        columns: BatchColumns<'_>,
        out: Outputs<'_>,
        inputs: Inputs,
    ) -> Result<(), PricingError> {
        #[cfg(target_arch = "x86_64")]
        let out = match x86::value_chunks_avx512::<GREEKS>(columns, out, inputs) {
            Ok(result) => return result,
            Err(out) => out,
        };
        super::value_chunks::<GREEKS>(columns, out, inputs)
    }

    #[cfg(target_arch = "x86_64")]
    pub(super) mod x86 {
        use super::{BatchColumns, Inputs, Outputs, PricingError};

        /// `true` when the processor and the operating system support the AVX-512 subsets of
        /// x86-64-v4, for which [`value_chunks_compiled_for_avx512`] is compiled.
        fn has_avx512() -> bool {
            // The standard library caches the answer of CPUID (and XGETBV): after the first
            // call this is a load and a test.
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512cd")
        }

        /// The portable kernels, all `#[inline(always)]`, inlined here and so compiled for
        /// AVX-512.
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx512cd")]
        fn value_chunks_compiled_for_avx512<const GREEKS: bool>(
            columns: BatchColumns<'_>,
            out: Outputs<'_>,
            inputs: Inputs,
        ) -> Result<(), PricingError> {
            super::super::value_chunks::<GREEKS>(columns, out, inputs)
        }

        /// [`value_chunks`](super::super::value_chunks) compiled for AVX-512, or the outputs
        /// given back untouched when the processor does not have it.
        #[allow(
            unsafe_code,
            reason = "the one call of a function compiled for AVX-512, right after checking that the processor has it"
        )]
        pub(in super::super) fn value_chunks_avx512<'a, const GREEKS: bool>(
            columns: BatchColumns<'_>,
            out: Outputs<'a>,
            inputs: Inputs,
        ) -> Result<Result<(), PricingError>, Outputs<'a>> {
            if !has_avx512() {
                return Err(out);
            }
            // SAFETY: calling a `#[target_feature]` function is sound when the processor
            // supports every feature it enables; `has_avx512` has just confirmed each of them
            // by run-time detection. The function itself is safe code: no other obligation.
            Ok(unsafe { value_chunks_compiled_for_avx512::<GREEKS>(columns, out, inputs) })
        }
    }
}

/// Whether the columns given to [`value_chunks`] were validated already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inputs {
    /// By [`Black76Batch::new_checked`].
    Validated,
    /// Not yet: each chunk is checked as it is valued.
    Unchecked,
}

/// The chunk loop shared by both entry points. Needs columns of equal length. Everything it
/// calls is `#[inline(always)]`, so that [`dispatch`] compiles all of it for AVX-512 too.
///
/// # Errors
/// For [`Inputs::Unchecked`], [`PricingError::BatchElement`] for the first invalid element.
#[inline(always)]
fn value_chunks<const GREEKS: bool>(
    c: BatchColumns<'_>,
    out: Outputs<'_>,
    inputs: Inputs,
) -> Result<(), PricingError> {
    let n = c.forward.len();
    let Outputs { price, greeks } = out;
    let mut empty = (Vec::new(), Vec::new(), Vec::new());
    let (delta, gamma, vega) = match greeks {
        Some(greeks) => greeks,
        None => (&mut empty.0, &mut empty.1, &mut empty.2),
    };
    for column in [&mut *price, &mut *delta, &mut *gamma, &mut *vega]
        .into_iter()
        .take(if GREEKS { 4 } else { 1 })
    {
        if column.len() != n {
            column.clear();
            column.resize(n, 0.0);
        }
    }
    let out = OutSlices {
        price,
        delta,
        gamma,
        vega,
    };
    // The scratch space (about 80 KB) is the thread's, kept between calls: zeroing it afresh
    // cost more than valuing a batch of a few hundred options (a portfolio-margin book values
    // one small batch per scenario and expiry). Every kernel writes an element before it reads
    // it, within the chunk's length, so what a previous call left is never read.
    let mut scratch = SCRATCHES.with(Cell::take).unwrap_or_default();
    scratch.subset.len = 0;
    let valued = value_chunks_with::<GREEKS>(c, out, inputs, n, &mut scratch);
    SCRATCHES.with(|kept| kept.set(Some(scratch)));
    valued
}

/// A call's output columns, each of the batch's length (the greeks' empty when `GREEKS` is
/// false).
struct OutSlices<'a> {
    price: &'a mut [f64],
    delta: &'a mut [f64],
    gamma: &'a mut [f64],
    vega: &'a mut [f64],
}

thread_local! {
    /// Each thread's scratch space for [`value_chunks`], allocated at its first call.
    static SCRATCHES: Cell<Option<Box<Scratches>>> = const { Cell::new(None) };
}

/// [`value_chunks`] on a given scratch space.
#[inline(always)]
fn value_chunks_with<const GREEKS: bool>(
    c: BatchColumns<'_>,
    mut out: OutSlices<'_>,
    inputs: Inputs,
    n: usize,
    scratch: &mut Scratches,
) -> Result<(), PricingError> {
    let mut start = 0;
    while start < n {
        let end = if start == 0 {
            first_chunk_len(c.forward)
        } else {
            start + CHUNK
        }
        .min(n);
        let input = Chunk {
            forward: &c.forward[start..end],
            strike: &c.strike[start..end],
            time: &c.time_to_expiry_years[start..end],
            volatility: &c.volatility[start..end],
            discount: &c.discount_factor[start..end],
            kind: &c.option_type[start..end],
        };
        let output = ChunkOut {
            price: &mut out.price[start..end],
            delta: part::<GREEKS>(out.delta, start..end),
            gamma: part::<GREEKS>(out.gamma, start..end),
            vega: part::<GREEKS>(out.vega, start..end),
        };
        let direct = direct::direct_chunk::<GREEKS>(&input, &mut scratch.direct, output);
        if inputs == Inputs::Unchecked && !direct.in_domain {
            // Earlier chunks are valid, so the first invalid element of this chunk is the
            // first of the batch. (The kernel's results for this chunk are garbage, unused.)
            first_invalid(&c, start..end)?;
            debug_assert!(false, "the kernel's domain check agrees with new_checked");
        }
        scratch
            .subset
            .collect(&input, start, &scratch.direct.careful[..end - start]);
        if scratch.subset.len >= CHUNK {
            scratch
                .subset
                .flush::<GREEKS>(&mut scratch.careful, &mut out);
        }
        start = end;
    }
    scratch
        .subset
        .flush::<GREEKS>(&mut scratch.careful, &mut out);
    Ok(())
}

/// The length of the first chunk: shortened (by up to 7 options) so that every later chunk
/// starts on a 64-byte boundary of the forward column, a cache line and one AVX-512 vector.
///
/// Columns allocated alike share their offset from such a boundary (8 MB vectors from the system
/// allocator all start 16 bytes past a page boundary), so then every vector load and store of
/// the kernels' loops is aligned: none straddles two cache lines. Measured on AMD Zen 4 with a
/// million options (columns beyond the caches), straddling loads cost about a tenth of the
/// throughput, and the kernels' scratch arrays are aligned for the same reason.
fn first_chunk_len(forward: &[f64]) -> usize {
    const LINE_BYTES: usize = 64;
    let offset = forward.as_ptr().addr() % LINE_BYTES / std::mem::size_of::<f64>();
    CHUNK - offset
}

/// All the scratch space of a call, reused per chunk (and by the thread's next call).
#[derive(Default)]
struct Scratches {
    direct: direct::DirectScratch,
    careful: Scratch,
    subset: Subset,
}

/// The options routed to the careful kernel, gathered across chunks into contiguous columns
/// until there are enough for a full vectorised chunk (a few per chunk is the usual case).
#[repr(align(64))] // see `first_chunk_len`
struct Subset {
    len: usize,
    /// Index of each gathered option in the batch.
    index: [usize; SUBSET_CAPACITY],
    forward: [f64; SUBSET_CAPACITY],
    strike: [f64; SUBSET_CAPACITY],
    time: [f64; SUBSET_CAPACITY],
    volatility: [f64; SUBSET_CAPACITY],
    discount: [f64; SUBSET_CAPACITY],
    kind: [OptionType; SUBSET_CAPACITY],
    price: [f64; CHUNK],
    delta: [f64; CHUNK],
    gamma: [f64; CHUNK],
    vega: [f64; CHUNK],
}

/// Room for one chunk below the flush threshold plus one whole chunk.
const SUBSET_CAPACITY: usize = 2 * CHUNK;

impl Default for Subset {
    fn default() -> Self {
        Self {
            len: 0,
            index: [0; SUBSET_CAPACITY],
            forward: [0.0; SUBSET_CAPACITY],
            strike: [0.0; SUBSET_CAPACITY],
            time: [0.0; SUBSET_CAPACITY],
            volatility: [0.0; SUBSET_CAPACITY],
            discount: [0.0; SUBSET_CAPACITY],
            kind: [OptionType::Call; SUBSET_CAPACITY],
            price: [0.0; CHUNK],
            delta: [0.0; CHUNK],
            gamma: [0.0; CHUNK],
            vega: [0.0; CHUNK],
        }
    }
}

impl Subset {
    /// Appends the options of a chunk (starting at batch index `offset`) whose routing excess
    /// (`flags`, from the direct kernel's pass 1) is positive.
    /// Needs `self.len < CHUNK` on entry, so that a whole chunk fits.
    #[inline(always)]
    fn collect(&mut self, input: &Chunk<'_>, offset: usize, flags: &[f64]) {
        debug_assert!(self.len < CHUNK && flags.len() <= CHUNK);
        // Marked options are few: the flags (positive routing excesses) of 64 options become
        // the bits of one word (a vectorised compare, shift and or), and only the set bits are
        // visited.
        let mut m = self.len;
        for (word, group) in flags.chunks(64).enumerate() {
            let mut bits = group.iter().enumerate().fold(0_u64, |bits, (j, &flag)| {
                bits | (u64::from(flag > 0.0) << j)
            });
            while bits != 0 {
                let i = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.index[m] = offset + i;
                self.forward[m] = input.forward[i];
                self.strike[m] = input.strike[i];
                self.time[m] = input.time[i];
                self.volatility[m] = input.volatility[i];
                self.discount[m] = input.discount[i];
                self.kind[m] = input.kind[i];
                m += 1;
            }
        }
        self.len = m;
    }

    /// Values every gathered option with the careful kernel, a chunk at a time, writes the
    /// results to their places in `out`, and empties the subset.
    #[inline(always)]
    fn flush<const GREEKS: bool>(&mut self, scratch: &mut Scratch, out: &mut OutSlices<'_>) {
        let mut start = 0;
        while start < self.len {
            let end = (start + CHUNK).min(self.len);
            let m = end - start;
            let input = Chunk {
                forward: &self.forward[start..end],
                strike: &self.strike[start..end],
                time: &self.time[start..end],
                volatility: &self.volatility[start..end],
                discount: &self.discount[start..end],
                kind: &self.kind[start..end],
            };
            let output = ChunkOut {
                price: &mut self.price[..m],
                delta: &mut self.delta[..m],
                gamma: &mut self.gamma[..m],
                vega: &mut self.vega[..m],
            };
            compute_chunk::<GREEKS>(&input, scratch, output);
            for j in 0..m {
                let i = self.index[start + j];
                out.price[i] = self.price[j];
                if GREEKS {
                    out.delta[i] = self.delta[j];
                    out.gamma[i] = self.gamma[j];
                    out.vega[i] = self.vega[j];
                }
            }
            start = end;
        }
        self.len = 0;
    }
}

/// Options per chunk. Each kernel runs in several passes over a chunk (the careful one:
/// coordinates; `exp` and `erfcx`; the series; outputs) so that each pass is a short loop whose
/// iterations are independent: the processor overlaps them, where one long pass per option
/// would wait on its chain of dependent operations (`ln`, then `exp`, then the series). The
/// intermediates of a chunk stay in the L1 cache. (256 measured faster than 128 or 512.)
const CHUNK: usize = 256;

struct Chunk<'a> {
    forward: &'a [f64],
    strike: &'a [f64],
    time: &'a [f64],
    volatility: &'a [f64],
    discount: &'a [f64],
    kind: &'a [OptionType],
}

struct ChunkOut<'a> {
    price: &'a mut [f64],
    delta: &'a mut [f64],
    gamma: &'a mut [f64],
    vega: &'a mut [f64],
}

/// Per-chunk intermediates.
#[repr(align(64))] // see `first_chunk_len`
struct Scratch {
    /// `h = -|ln(F/K)| / s`.
    h: [f64; CHUNK],
    /// `t = s / 2`.
    t: [f64; CHUNK],
    /// `1 / s` (with `s` floored at the minimum total volatility).
    inv_s: [f64; CHUNK],
    /// `+1` for a call, `-1` for a put.
    sign: [f64; CHUNK],
    /// `sqrt(T)`.
    sqrt_t: [f64; CHUNK],
    /// `1 / F`.
    inv_f: [f64; CHUNK],
    /// `1.0` where the total volatility is below the minimum (expired), else `0.0`.
    expired: [f64; CHUNK],
    /// `n(h + t)`.
    density_hi: [f64; CHUNK],
    /// `Y` at the first erfcx argument: `Y(h)` in the Taylor form, `Y(-|h + t|)` otherwise.
    y1: [f64; CHUNK],
    /// `Y(h - t)`.
    y2: [f64; CHUNK],
    /// Odd and even parts of the Taylor series (computed for every option, used where
    /// `t < 0.1`; stored so that LLVM cannot turn the choice of form into a branch).
    odd: [f64; CHUNK],
    even: [f64; CHUNK],
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            h: [0.0; CHUNK],
            t: [0.0; CHUNK],
            inv_s: [0.0; CHUNK],
            sign: [0.0; CHUNK],
            sqrt_t: [0.0; CHUNK],
            inv_f: [0.0; CHUNK],
            expired: [0.0; CHUNK],
            density_hi: [0.0; CHUNK],
            y1: [0.0; CHUNK],
            y2: [0.0; CHUNK],
            odd: [0.0; CHUNK],
            even: [0.0; CHUNK],
        }
    }
}

/// The kernel over one chunk (at most [`CHUNK`] options), branch-free within each pass.
#[inline(always)]
fn compute_chunk<const GREEKS: bool>(input: &Chunk<'_>, scratch: &mut Scratch, out: ChunkOut<'_>) {
    let n = input.forward.len();
    // Equal-length slices let LLVM drop the bounds checks and vectorise each pass.
    let (forward, strike, time) = (&input.forward[..n], &input.strike[..n], &input.time[..n]);
    let (volatility, kind) = (&input.volatility[..n], &input.kind[..n]);
    let (h_out, t_out, inv_s_out) = (
        &mut scratch.h[..n],
        &mut scratch.t[..n],
        &mut scratch.inv_s[..n],
    );
    let sign_out = &mut scratch.sign[..n];
    for i in 0..n {
        sign_out[i] = kind[i].sign();
    }
    let (sqrt_t_out, inv_f_out) = (&mut scratch.sqrt_t[..n], &mut scratch.inv_f[..n]);
    let expired_out = &mut scratch.expired[..n];

    // Pass 1: normalised out-of-the-money coordinates, as in the scalar path.
    for i in 0..n {
        let x = ln_ratio(forward[i], strike[i]);
        let sqrt_t = time[i].sqrt();
        let s = volatility[i] * sqrt_t;
        expired_out[i] = if s < limits::MIN_TOTAL_VOLATILITY {
            1.0
        } else {
            0.0
        };
        let s = max(s, limits::MIN_TOTAL_VOLATILITY);
        let inv_s = 1.0 / s;
        // Read only by the greeks.
        if GREEKS {
            sqrt_t_out[i] = sqrt_t;
            inv_f_out[i] = 1.0 / forward[i];
        }
        h_out[i] = -x.abs() * inv_s;
        t_out[i] = 0.5 * s;
        inv_s_out[i] = inv_s;
    }

    // Pass 2: the density n(h + t) and the two erfcx values. The Taylor form needs Y(h), the
    // direct form Y(-|h + t|) and Y(h - t).
    let (h, t) = (&scratch.h[..n], &scratch.t[..n]);
    let density_out = &mut scratch.density_hi[..n];
    let (y1_out, y2_out) = (&mut scratch.y1[..n], &mut scratch.y2[..n]);
    for i in 0..n {
        let hi = h[i] + t[i];
        let lo = h[i] - t[i];
        density_out[i] = INV_SQRT_2PI * exp_non_positive(-0.5 * hi * hi);
        let taylor = t[i] < TAYLOR_MAX_HALF_TOTAL_VOL;
        let z1 = if taylor {
            -max(h[i], H_FLOOR)
        } else {
            min(hi.abs(), -H_FLOOR)
        } * FRAC_1_SQRT_2;
        let z2 = min(-lo, -H_FLOOR) * FRAC_1_SQRT_2;
        y1_out[i] = SQRT_PI_OVER_2 * erfcx_non_negative(z1);
        y2_out[i] = SQRT_PI_OVER_2 * erfcx_non_negative(z2);
    }

    // Pass 3: the Taylor series.
    let (odd_out, even_out) = (&mut scratch.odd[..n], &mut scratch.even[..n]);
    for i in 0..n {
        let (odd, even) = taylor_sums(max(h[i], H_FLOOR), t[i], scratch.y1[i]);
        odd_out[i] = odd;
        // The even part serves the greeks only.
        if GREEKS {
            even_out[i] = even;
        }
    }

    // Pass 4: the choice of form, and the outputs.
    finish_chunk::<GREEKS>(input, scratch, out.price, out.delta, out.gamma, out.vega);
}

/// Pass 4 over a chunk. The outputs are separate `&mut` parameters so that LLVM knows they
/// alias neither the inputs nor each other, and vectorises without run-time overlap checks.
#[inline(always)]
fn finish_chunk<const GREEKS: bool>(
    input: &Chunk<'_>,
    scratch: &Scratch,
    price: &mut [f64],
    delta: &mut [f64],
    gamma: &mut [f64],
    vega: &mut [f64],
) {
    let n = input.forward.len();
    let (forward, strike, discount) = (
        &input.forward[..n],
        &input.strike[..n],
        &input.discount[..n],
    );
    let (h, t, inv_s) = (&scratch.h[..n], &scratch.t[..n], &scratch.inv_s[..n]);
    let (density, y1, y2) = (&scratch.density_hi[..n], &scratch.y1[..n], &scratch.y2[..n]);
    let (odd, even, sign) = (&scratch.odd[..n], &scratch.even[..n], &scratch.sign[..n]);
    let (sqrt_t, inv_f, expired) = (
        &scratch.sqrt_t[..n],
        &scratch.inv_f[..n],
        &scratch.expired[..n],
    );
    let price = &mut price[..n];
    let (delta, gamma, vega) = if GREEKS {
        (&mut delta[..n], &mut gamma[..n], &mut vega[..n])
    } else {
        (delta, gamma, vega)
    };
    for i in 0..n {
        let g = finish(
            Option1 {
                f: forward[i],
                k: strike[i],
                df: discount[i],
                sign: sign[i],
                sqrt_t: sqrt_t[i],
                inv_f: inv_f[i],
                expired: expired[i],
            },
            Intermediates {
                h: h[i],
                t: t[i],
                inv_s: inv_s[i],
                density_hi: density[i],
                y1: y1[i],
                y2: y2[i],
                odd: odd[i],
                even: even[i],
            },
        );
        price[i] = g[0];
        if GREEKS {
            delta[i] = g[1];
            gamma[i] = g[2];
            vega[i] = g[3];
        }
    }
}

/// One option's inputs.
struct Option1 {
    f: f64,
    k: f64,
    df: f64,
    /// `sqrt(T)`.
    sqrt_t: f64,
    /// `1 / F`.
    inv_f: f64,
    /// `1.0` when expired, else `0.0`.
    expired: f64,
    /// `+1` call, `-1` put.
    sign: f64,
}

/// One option's results from passes 1 to 3.
struct Intermediates {
    h: f64,
    t: f64,
    inv_s: f64,
    density_hi: f64,
    y1: f64,
    y2: f64,
    odd: f64,
    even: f64,
}

/// Pass 4 for one option, branch-free: `[price, delta, gamma, vega]`.
#[inline(always)]
fn finish(o: Option1, m: Intermediates) -> [f64; 4] {
    let Intermediates {
        h,
        t,
        inv_s,
        density_hi,
        y1,
        y2,
        odd,
        even,
    } = m;
    let sign = o.sign;
    let (f, k, df) = (o.f, o.k, o.df);
    let (sqrt_t, inv_f) = (o.sqrt_t, o.inv_f);
    let expired = o.expired > 0.0;
    let f_le_k = f <= k;
    let hi = h + t;
    let forward_density = min(f, k) * density_hi; // F n(d1) = min(F, K) n(h + t)
    let density_d1 = forward_density * inv_f; // n(d1)
    let taylor = t < TAYLOR_MAX_HALF_TOTAL_VOL;

    // Taylor form (t < 0.1), from y1 = Y(max(h, -40)).
    let taylor_otm = 2.0 * forward_density * odd;
    let taylor_n_hi = density_hi * (even + odd);
    // N(h - t) is needed only when F > K, where n(h - t) = n(-d1) = n(d1).
    let taylor_n_lo = density_d1 * (even - odd);

    // Direct form: N(z) = n(z) Y(z) for z <= 0.
    let tail_hi = density_hi * y1; // N(-|h + t|)
    let direct_n_hi = if hi <= 0.0 { tail_hi } else { 1.0 - tail_hi };
    // max(F, K) N(h - t) = max(F, K) n(h - t) Y(h - t) = F n(d1) Y(h - t).
    let direct_otm = fma(min(f, k), direct_n_hi, -forward_density * y2);
    let direct_n_lo = density_d1 * y2; // used only when F > K, as above

    let otm = max(if taylor { taylor_otm } else { direct_otm }, 0.0);
    // N(h + t) and N(-(h + t)), each without cancellation, and N(h - t).
    let n_hi = if taylor { taylor_n_hi } else { direct_n_hi };
    let direct_n_minus_hi = if hi <= 0.0 { 1.0 - tail_hi } else { tail_hi };
    let n_minus_hi = if taylor {
        1.0 - taylor_n_hi
    } else {
        direct_n_minus_hi
    };
    let n_lo = if taylor { taylor_n_lo } else { direct_n_lo };
    // d1 = h + t when F <= K, else -d1 = h - t.
    let n_d1 = if f_le_k { n_hi } else { 1.0 - n_lo };
    let n_minus_d1 = if f_le_k { n_minus_hi } else { n_lo };

    let intrinsic = max(sign * (f - k), 0.0);
    let price = df * if expired { intrinsic } else { intrinsic + otm };
    let delta = df * if sign > 0.0 { n_d1 } else { -n_minus_d1 };
    let gamma = if expired {
        0.0
    } else {
        df * density_d1 * inv_s * inv_f
    };
    let vega = df * forward_density * sqrt_t;
    [price, delta, gamma, vega]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded columns: market-like options, far wings, short and long expiries, zeros of time
    /// and volatility, so that both kernels and every branch of the careful one are used.
    fn columns(n: usize) -> [Vec<f64>; 5] {
        let mut state = 0x0123_4567_89ab_cdef_u64;
        let mut unit = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1_u64 << 53) as f64
        };
        let mut c: [Vec<f64>; 5] = Default::default();
        for i in 0..n {
            let forward = (unit() * 20.0 - 5.0).exp();
            let moneyness = (unit() * 6.0 - 3.0).exp();
            let time = if i % 53 == 0 {
                0.0
            } else {
                (unit() * 14.0 - 11.0).exp()
            };
            let volatility = if i % 59 == 0 {
                0.0
            } else {
                0.01 + 2.0 * unit()
            };
            c[0].push(forward);
            c[1].push(forward * moneyness);
            c[2].push(time);
            c[3].push(volatility);
            c[4].push(0.5 + 0.6 * unit());
        }
        c
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_gives_the_same_bits_as_avx2() {
        let n = 20_011;
        let [forward, strike, time, volatility, discount] = columns(n);
        let kind: Vec<OptionType> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    OptionType::Put
                } else {
                    OptionType::Call
                }
            })
            .collect();
        let columns = BatchColumns {
            forward: &forward,
            strike: &strike,
            time_to_expiry_years: &time,
            volatility: &volatility,
            discount_factor: &discount,
            option_type: &kind,
        };
        let mut portable = GreeksBatch::default();
        let mut avx512 = GreeksBatch::default();
        assert!(value_chunks::<true>(columns, portable.outputs(), Inputs::Unchecked).is_ok());
        let Ok(result) = dispatch::x86::value_chunks_avx512::<true>(
            columns,
            avx512.outputs(),
            Inputs::Unchecked,
        ) else {
            eprintln!("no AVX-512 on this processor: nothing to compare");
            return;
        };
        assert!(result.is_ok());
        for (a, b) in [
            (portable.price(), avx512.price()),
            (portable.delta(), avx512.delta()),
            (portable.gamma(), avx512.gamma()),
            (portable.vega(), avx512.vega()),
        ] {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_eq!(x.to_bits(), y.to_bits(), "option {i}: {x:e} vs {y:e}");
            }
        }
    }
}
