//! An account as the margin model sees it: its portfolio (balances from the ledger) and its report.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    /// The account as a portfolio (balances from the ledger), with `change` applied to a copy.
    pub(super) fn portfolio_of(&self, account: &Account) -> Result<Portfolio, Rejection> {
        // In the venue's order of assets, as a portfolio file lists them.
        let mut held: Vec<(usize, &solvent_core::venue::Asset, Decimal)> = self
            .ledger
            .wallet(&account.id)
            .filter_map(|(symbol, amount)| {
                let (index, _, asset) = self.venue.assets.get_full(symbol)?;
                Some((index, asset, amount))
            })
            .collect();
        held.sort_unstable_by_key(|(index, _, _)| *index);
        let balances = held
            .into_iter()
            .map(|(_, asset, amount)| Balance {
                asset: asset.clone(),
                amount: Amount(amount),
            })
            .collect();
        let positions = account
            .positions
            .values()
            .map(|p| {
                let isolated_margin = p.isolated.then(|| {
                    Amount(self.ledger.balance(
                        &LedgerAccount::Isolated(
                            account.id.clone(),
                            p.instrument.name.as_str().into(),
                        ),
                        &p.instrument.settlement,
                    ))
                });
                Ok(Position {
                    instrument: Arc::clone(&p.instrument),
                    size: Quantity(p.size),
                    entry_price: Price::new_checked(p.entry)
                        .map_err(|problem| reject(RejectReason::OutOfRange, problem))?,
                    isolated_margin,
                    leverage: account.leverage.get(p.instrument.name.as_str()).copied(),
                })
            })
            .collect::<Result<Vec<_>, Rejection>>()?;
        let settlement_asset = self
            .venue
            .asset(&self.venue.settlement_asset)
            .map_err(|problem| reject(RejectReason::UnknownAsset, problem))?
            .clone();
        Ok(Portfolio {
            account: account.id.clone(),
            mode: account.mode,
            balances,
            positions,
            settlement_asset,
            market: None,
            accrued_interest: Vec::new(),
        })
    }

    pub(super) fn report_of(&self, portfolio: &Portfolio) -> Result<MarginReport, Rejection> {
        let surfaces = self.surfaces()?;
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        build_report(portfolio, &view, Detail::Figures).map_err(risk_rejection)
    }

    /// The volatility surfaces of the current market, built at most once per time, smiles and
    /// venue: every account valued in between shares them.
    pub(super) fn surfaces(&self) -> Result<Arc<solvent_risk::valuation::Surfaces>, Rejection> {
        let key = (
            self.market.timestamp,
            self.vol_generation,
            self.venue_digest,
        );
        let schedule = {
            let cached = self.surfaces.borrow();
            match cached.as_ref() {
                Some(cached) if cached.key == key => return Ok(Arc::clone(&cached.surfaces)),
                Some(cached) if (cached.key.1, cached.key.2) == (key.1, key.2) => {
                    Arc::clone(&cached.schedule)
                }
                _ => Arc::new(
                    solvent_risk::valuation::SmileSchedule::new(&self.venue, &self.market)
                        .map_err(risk_rejection)?,
                ),
            }
        };
        let surfaces = Arc::new(
            schedule
                .surfaces_at(self.market.timestamp)
                .map_err(risk_rejection)?,
        );
        *self.surfaces.borrow_mut() = Some(CachedSurfaces {
            key,
            surfaces: Arc::clone(&surfaces),
            schedule,
        });
        Ok(surfaces)
    }

    /// The surfaces the figures of positions in `instruments` read: the market's when one of
    /// them is an option, else none. Outside a full report (whose distances to liquidation in
    /// daily standard deviations read the surface of every underlying, see [`Self::report_of`]),
    /// only an option's model mark reads a surface; building them at every new time for the
    /// monitoring and the pre-trade checks of accounts without options was a tenth of the
    /// engine's work.
    pub(super) fn surfaces_for<'i>(
        &self,
        mut instruments: impl Iterator<Item = &'i solvent_core::instrument::Instrument>,
    ) -> Result<Arc<solvent_risk::valuation::Surfaces>, Rejection> {
        static NONE: std::sync::LazyLock<Arc<solvent_risk::valuation::Surfaces>> =
            std::sync::LazyLock::new(Arc::default);
        if instruments.any(|instrument| matches!(instrument.terms, Terms::Option { .. })) {
            self.surfaces()
        } else {
            Ok(Arc::clone(&NONE))
        }
    }

    pub(super) fn report(&self, id: &str) -> Result<MarginReport, Rejection> {
        let account = self.known_account(id)?;
        self.report_of(&self.portfolio_of(account)?)
    }

    /// What monitoring reads: the account's figures and its isolated positions' lines, without
    /// the attribution of a portfolio-margin requirement to its cross positions (identical
    /// account figures; liquidation, which chooses among positions, takes [`Self::report`]).
    /// A portfolio-mode account's margin is summed from the scenario books shared by every
    /// account valued at this market (`engine/books.rs`): the same report.
    pub(super) fn monitoring_report(&self, id: &str) -> Result<MarginReport, Rejection> {
        let account = self.known_account(id)?;
        let portfolio = self.portfolio_of(account)?;
        let surfaces =
            self.surfaces_for(portfolio.positions.iter().map(|p| p.instrument.as_ref()))?;
        let view = || MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        let Some(books) = self.shared_books(&portfolio) else {
            return build_report(&portfolio, &view(), Detail::Totals).map_err(risk_rejection);
        };
        let report = build_report(&portfolio, &view().with_books(&books), Detail::Totals);
        // Debug builds: the report from the shared books is the one from the account's own.
        #[cfg(debug_assertions)]
        {
            let own = build_report(&portfolio, &view(), Detail::Totals);
            match (&report, &own) {
                (Ok(shared), Ok(own)) => assert_eq!(
                    shared, own,
                    "{id}: the shared scenario books disagree with the account's own"
                ),
                (shared, own) => assert_eq!(
                    shared.as_ref().err().map(ToString::to_string),
                    own.as_ref().err().map(ToString::to_string),
                    "{id}: the shared scenario books and the account's own disagree"
                ),
            }
        }
        report.map_err(risk_rejection)
    }
}
