//! Scenario books shared by portfolio-mode accounts (DESIGN.md 6.5, 9): one book per
//! underlying, built at most once per market (time, index prices and marks, smiles, rate and
//! venue) from every instrument held on it, and read by every portfolio-mode account valued at
//! that market. An account's own book revalued every instrument it holds under every scenario
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

/// A scenario book of one underlying built at `key`.
#[derive(Clone, Debug)]
pub(super) struct CachedBook {
    key: BookKey,
    /// Every instrument the build was given, the ones it could not revalue included (an account
    /// holding one of those takes its own book; building again would not help).
    tried: BTreeSet<String>,
    /// `None` when the book could not be built.
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

    /// The book of `underlying` at the current market, built now if the cached one is of
    /// another market or was not given an instrument `portfolio` holds on it.
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
            let cached = self.books.borrow();
            if let Some(cached) = cached.get(underlying)
                && cached.key == key
                && on_it().all(|i| cached.tried.contains(i.name.as_str()))
            {
                return cached.book.clone();
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
                tried: instruments.iter().map(|i| i.name.clone()).collect(),
                book: book.clone(),
            },
        );
        book
    }
}
