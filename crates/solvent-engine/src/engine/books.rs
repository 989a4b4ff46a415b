//! Scenario books shared by portfolio-mode accounts (DESIGN.md 6.5, 9): one book per
//! underlying, built at most once per market (time, index prices and marks, smiles, rate and
//! venue) from every instrument held on it, and read by every portfolio-mode account valued at
//! that market after the first few (which take their own books: an event that values one or
//! two accounts does not pay for the whole book). An account's own book revalued every instrument it holds under every scenario
//! at each examination; a price update of an underlying now revalues each held instrument once,
//! whatever the number of accounts.
//!
//! Monitoring reads an account's figures from the shared books (`solvent_risk`'s lean path,
//! `shared_margin`): the same figures as its own book's, to the bit. Where the books cannot
//! serve it (an instrument that cannot be revalued, a book that cannot be built) the report
//! builds the account's own book, which gives the figure or the error it always gave. Debug
//! builds check every report read from shared books against the one built from the account's own
//! book.

#[allow(clippy::wildcard_imports)]
use super::*;
use solvent_risk::portfolio_margin::{SharedBooks, UnderlyingBook};

/// What a shared book was built at: the market's time, the generations of its smiles and of its
/// prices, its rate (bits) and the venue's digest.
type BookKey = (Timestamp, u64, u64, u64, [u8; 32]);

/// The request for a book at one market that builds it: the ones before take their own books.
/// A book holds every instrument held on its underlying (about 30 to 40 times an account's in
/// the benchmarks' mixed population), so it pays from about that many accounts on.
#[cfg(not(debug_assertions))]
const BUILD_AFTER: u32 = 8;
/// Debug builds build the book at the first request, so that every report read from it is
/// checked against the account's own (the figures are the same either way).
#[cfg(debug_assertions)]
const BUILD_AFTER: u32 = 1;

/// A scenario book of one underlying built at `key`, or only asked for there.
#[derive(Clone, Debug)]
pub(super) struct CachedBook {
    key: BookKey,
    /// Whether the book was built at `key`; until it is, the accounts that ask for it take
    /// their own book.
    built: bool,
    /// How many times the book was asked for at `key` before it was built: it is built at the
    /// [`BUILD_AFTER`]th (a fill or a deposit values one or two accounts, which would pay for
    /// revaluing every instrument held on the underlying).
    asked: u32,
    /// Every instrument the build was given, the ones it could not revalue included (an account
    /// holding one of those takes its own book; building again would not help).
    tried: BTreeSet<String>,
    /// `None` when the book could not be built; while not `built`, the book of an earlier
    /// market (or none), never read.
    book: Option<Arc<UnderlyingBook>>,
}

impl Engine {
    /// The shared books a portfolio-mode `portfolio`'s figures are read from, one per underlying
    /// it holds (positions in its cross pool, balances of coins a scanned underlying prices);
    /// `None` for an account of another mode, or when one of them cannot be built.
    pub(super) fn shared_books(&self, portfolio: &Portfolio) -> Option<SharedBooks> {
        if portfolio.mode != MarginMode::Portfolio {
            return None;
        }
        let params = self.venue.portfolio_margin.as_ref()?;
        let mut underlyings: SmallVec<[&str; 4]> = SmallVec::new();
        let scanned = portfolio
            .balances
            .iter()
            .map(|b| b.asset.index.as_str())
            .filter(|index| params.underlyings.contains_key(*index));
        let held = portfolio
            .positions
            .iter()
            .filter(|p| p.isolated_margin.is_none())
            .map(|p| p.instrument.underlying.as_str());
        for underlying in scanned.chain(held) {
            if !underlyings.contains(&underlying) {
                underlyings.push(underlying);
            }
        }
        let books = underlyings
            .iter()
            .map(|underlying| self.underlying_book(underlying, portfolio))
            .collect::<Option<Vec<_>>>()?;
        Some(SharedBooks::new(books))
    }

    /// The book of `underlying` at the current market: the cached one, built again when it was
    /// not given an instrument `portfolio` holds on it; at a market where it was asked for fewer
    /// than [`BUILD_AFTER`] times, none (the account takes its own book).
    fn underlying_book(
        &self,
        underlying: &str,
        portfolio: &Portfolio,
    ) -> Option<Arc<UnderlyingBook>> {
        let key: BookKey = (
            self.market.timestamp,
            self.vol_generation,
            self.price_generation,
            self.market.rate.to_bits(),
            self.venue_digest,
        );
        let on_it = || {
            portfolio
                .positions
                .iter()
                .filter(move |p| {
                    p.isolated_margin.is_none() && p.instrument.underlying == underlying
                })
                .map(|p| &p.instrument)
        };
        {
            let mut books = self.books.borrow_mut();
            let cached = books.get(underlying).filter(|cached| cached.key == key);
            if let Some(cached) = cached
                && cached.built
                && on_it().all(|i| cached.tried.contains(i.name.as_str()))
            {
                return cached.book.clone();
            }
            // Requests at this market so far, this one included.
            let asked = cached.map_or(1, |cached| cached.asked.saturating_add(1));
            if asked < BUILD_AFTER {
                match books.get_mut(underlying) {
                    // The book of an earlier market is kept (never read: it is not `built` at
                    // this key) until the next build replaces it: freeing its rows costs about
                    // what an account's own book does, which a fill or a deposit would pay.
                    Some(cached) => {
                        cached.key = key;
                        cached.built = false;
                        cached.asked = asked;
                    }
                    None => {
                        books.insert(
                            underlying.to_owned(),
                            CachedBook {
                                key,
                                built: false,
                                asked,
                                tried: BTreeSet::new(),
                                book: None,
                            },
                        );
                    }
                }
                return None;
            }
        }
        // Every instrument held on the underlying, by anyone: the next account on it finds its
        // own among them.
        let mut instruments: Vec<Arc<Instrument>> = self
            .instrument_holders
            .keys()
            .filter_map(|name| self.venue.instrument(name).ok())
            .filter(|instrument| instrument.underlying == underlying)
            .collect();
        for instrument in on_it() {
            if !instruments.iter().any(|i| i.name == instrument.name) {
                instruments.push(Arc::clone(instrument));
            }
        }
        let spot: Vec<&str> = self
            .venue
            .assets
            .values()
            .filter(|asset| asset.index == underlying)
            .map(|asset| asset.symbol.as_str())
            .collect();
        let book = self.surfaces().ok().and_then(|surfaces| {
            let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
            let params = self.venue.portfolio_margin.as_ref()?;
            let refs: Vec<&Instrument> = instruments.iter().map(AsRef::as_ref).collect();
            UnderlyingBook::shared(&view, params, underlying, &refs, &spot)
                .ok()
                .map(Arc::new)
        });
        self.books.borrow_mut().insert(
            underlying.to_owned(),
            CachedBook {
                key,
                built: true,
                asked: BUILD_AFTER,
                tried: instruments.iter().map(|i| i.name.clone()).collect(),
                book: book.clone(),
            },
        );
        book
    }
}
