//! The measured kernel in the product: a cross pool prepared once (`solvent_risk::prepared`,
//! the path `cargo bench` times) and recomputed at each evaluation from its marks alone, while
//! everything else it fixed holds. It serves the common case of monitoring, the re-examination
//! of an account by a price update (events addressed to the account take the full report and
//! drop the preparation): a cross account
//! without isolated positions or top-up rules, holding perpetuals under rate rules that do not
//! move with time or open interest, with every coin it holds or settles in pegged. Everything
//! else, and every account in liquidation, takes the
//! full margin report. Debug builds check every prepared figure against the full report.

#[allow(clippy::wildcard_imports)]
use super::*;
use solvent_core::venue::MarginRule;
use solvent_risk::prepared::{PoolFigures, PreparedAccount, PreparedMark};

/// A cross pool prepared for recomputation, with what the preparation fixed: the positions, the
/// balances, the leverage chosen, every USD price it read besides the marks, and the venue.
#[derive(Clone, Debug)]
pub(super) struct PreparedPool {
    pool: PreparedAccount,
    /// `(instrument, size, entry, leverage)` in the pool's order (the account's, by name).
    positions: Vec<(Arc<Instrument>, Decimal, Decimal, Option<Decimal>)>,
    /// The wallet's balances, in the ledger's order.
    balances: Vec<(CompactString, Decimal)>,
    /// Every index price the preparation read (collateral and settlement coins, underlyings),
    /// by index name; `None` where a pegged coin had none and its peg was used.
    prices: Vec<(CompactString, Option<Decimal>)>,
    venue_digest: [u8; 32],
}

/// The figures of a prepared pool at the current marks.
pub(super) struct PreparedFigures {
    pub(super) figures: PoolFigures,
    pub(super) health: Option<f64>,
    pub(super) state: AccountState,
    pub(super) settlement_asset: CompactString,
}

impl Engine {
    /// The account's cross-pool figures through the prepared kernel, when it serves the
    /// account (see the module documentation); the preparation is kept and reused while what it
    /// fixed holds, and made again when it does not.
    pub(super) fn prepared_standing(&mut self, id: &str) -> Option<PreparedFigures> {
        let account = self.accounts.get(id)?;
        let reusable = account
            .prepared
            .as_deref()
            .is_some_and(|prepared| self.still_serves(account, prepared));
        if !reusable {
            if !self.preparable(account) {
                return None;
            }
            let prepared = self.prepare(account)?;
            if let Some(account) = self.accounts.monitoring_mut(id) {
                account.prepared = Some(Arc::new(prepared));
            }
        }
        let account = self.accounts.get(id)?;
        let prepared = account.prepared.as_deref()?;
        let marks: SmallVec<[PreparedMark; 8]> = prepared
            .positions
            .iter()
            .map(|(instrument, ..)| self.perpetual_mark(instrument).map(PreparedMark::new))
            .collect::<Option<_>>()?;
        let figures = prepared.pool.figures(&marks).ok()?;
        let (health, state) = solvent_risk::report::standing(
            figures.equity,
            figures.maintenance_margin,
            &self.venue.thresholds,
        );
        let result = PreparedFigures {
            figures,
            health,
            state,
            settlement_asset: self.venue.settlement_asset.as_str().into(),
        };
        #[cfg(debug_assertions)]
        self.check_against_report(id, &result);
        Some(result)
    }

    /// The account's equity from the preparation it keeps, when that preparation still holds
    /// (read only: nothing is prepared here): the margin report's equity without the report.
    /// `None` when the account keeps none, when it no longer holds, or when the kernel cannot
    /// value it at these marks; the caller then takes the report.
    pub(super) fn prepared_equity(&self, account: &Account) -> Option<Decimal> {
        let prepared = account.prepared.as_deref()?;
        if !self.still_serves(account, prepared) {
            return None;
        }
        let marks: SmallVec<[PreparedMark; 8]> = prepared
            .positions
            .iter()
            .map(|(instrument, ..)| self.perpetual_mark(instrument).map(PreparedMark::new))
            .collect::<Option<_>>()?;
        prepared
            .pool
            .figures(&marks)
            .ok()
            .map(|figures| figures.equity)
    }

    /// Whether the prepared kernel serves `account` (see the module documentation). Its coins
    /// (held and settled in) must be pegged: a preparation fixes their USD prices, and a coin
    /// priced by an index that moves with the market would undo it at every tick.
    fn preparable(&self, account: &Account) -> bool {
        let pegged = |symbol: &str| {
            self.venue
                .assets
                .get(symbol)
                .is_some_and(|asset| asset.usd_peg.is_some())
        };
        account.mode == MarginMode::Cross
            && account.top_ups.is_empty()
            && !account.positions.is_empty()
            && pegged(&self.venue.settlement_asset)
            && account.positions.values().all(|p| {
                !p.isolated
                    && p.instrument.terms == Terms::Perpetual
                    && pegged(&p.instrument.settlement)
                    && matches!(
                        p.instrument.margin.as_ref(),
                        MarginRule::Tiered { .. } | MarginRule::SizeLinear { .. }
                    )
            })
            && self
                .ledger
                .wallet(&account.id)
                .all(|(symbol, _)| pegged(symbol))
    }

    /// An asset's USD price as the margin report reads it (`MarketView::asset_usd`): its
    /// index, else its peg; `None` with neither.
    pub(super) fn asset_usd(&self, index: &str, usd_peg: Option<Decimal>) -> Option<Decimal> {
        self.market
            .index
            .get(index)
            .map(|price| price.value())
            .or(usd_peg)
    }

    /// The mark of a perpetual as the margin report reads it: the given mark, else the index.
    pub(super) fn perpetual_mark(&self, instrument: &Instrument) -> Option<Decimal> {
        self.market
            .mark
            .get(instrument.name.as_str())
            .or_else(|| self.market.index.get(instrument.underlying.as_str()))
            .map(|price| price.value())
    }

    fn prepare(&self, account: &Account) -> Option<PreparedPool> {
        let portfolio = self.portfolio_of(account).ok()?;
        let surfaces = self.surfaces().ok()?;
        let view = MarketView::with_surfaces(&self.venue, &self.market, &surfaces);
        let pool =
            PreparedAccount::with_rules(&portfolio, &view, &mut self.kernel_rules.borrow_mut())
                .ok()?;
        Some(PreparedPool {
            pool,
            positions: position_terms(account)
                .map(|(instrument, size, entry, leverage)| {
                    (Arc::clone(instrument), size, entry, leverage)
                })
                .collect(),
            balances: self
                .ledger
                .wallet(&account.id)
                .map(|(asset, amount)| (CompactString::from(asset), amount))
                .collect(),
            prices: self.fixed_prices(account).collect(),
            venue_digest: self.venue_digest,
        })
    }

    /// Whether `prepared`, made when the account was [`Self::preparable`], still serves it:
    /// what the preparation fixed holds ([`Self::still_holds`]), and so does everything else
    /// `preparable` asked of the account. Its other conditions read the positions' instruments,
    /// the wallet's coins and the venue, which `still_holds` finds unchanged; so only the
    /// account's own mode, top-up rules and isolated flags are read again here, sparing the
    /// venue look-ups of `preparable` at every evaluation (and every ADL candidate).
    fn still_serves(&self, account: &Account, prepared: &PreparedPool) -> bool {
        let serves = account.mode == MarginMode::Cross
            && account.top_ups.is_empty()
            && account.positions.values().all(|p| !p.isolated)
            && self.still_holds(account, prepared);
        debug_assert!(
            !serves || self.preparable(account),
            "{}: a preparation that still holds serves an account the kernel does not",
            account.id
        );
        serves
    }

    fn still_holds(&self, account: &Account, prepared: &PreparedPool) -> bool {
        prepared.venue_digest == self.venue_digest
            && prepared
                .positions
                .iter()
                .map(|(i, size, entry, leverage)| (i.name.as_str(), *size, *entry, *leverage))
                .eq(position_terms(account)
                    .map(|(i, size, entry, leverage)| (i.name.as_str(), size, entry, leverage)))
            && prepared
                .balances
                .iter()
                .map(|(asset, amount)| (asset.as_str(), *amount))
                .eq(self.ledger.wallet(&account.id))
            // With the wallet's coins and the positions as they were, the prices read are those
            // of the same indices: each is looked up again, not named again.
            && prepared.prices.iter().all(|(index, price)| {
                self.market.index.get(index.as_str()).map(|p| p.value()) == *price
            })
    }

    /// The index prices a preparation reads besides the marks: the wallet's coins, the report
    /// coin and each position's settlement coin (all pegged, but the market may price them off
    /// par). Underlyings are not among them: a perpetual's rate rule reads only its mark.
    fn fixed_prices<'a>(
        &'a self,
        account: &'a Account,
    ) -> impl Iterator<Item = (CompactString, Option<Decimal>)> + 'a {
        let coin_index = |symbol: &str| {
            self.venue
                .assets
                .get(symbol)
                .map_or_else(|| CompactString::from(symbol), |a| a.index.clone())
        };
        let wallet = self
            .ledger
            .wallet(&account.id)
            .map(move |(asset, _)| coin_index(asset));
        let report = std::iter::once(coin_index(&self.venue.settlement_asset));
        let positions = account
            .positions
            .values()
            .map(move |p| coin_index(&p.instrument.settlement));
        wallet.chain(report).chain(positions).map(|index| {
            let price = self.market.index.get(index.as_str()).map(|p| p.value());
            (index, price)
        })
    }

    /// Debug builds: the prepared figures equal the full report's, to the unit.
    #[cfg(debug_assertions)]
    fn check_against_report(&self, id: &str, prepared: &PreparedFigures) {
        let Ok(report) = self.report(id) else {
            return;
        };
        assert_eq!(
            (
                report.equity.value(),
                report.initial_margin.value(),
                report.maintenance_margin.value(),
                report.health,
                report.state,
            ),
            (
                prepared.figures.equity,
                prepared.figures.initial_margin,
                prepared.figures.maintenance_margin,
                prepared.health,
                prepared.state,
            ),
            "{id}: the prepared cross pool disagrees with the margin report"
        );
    }
}

/// Each position's instrument, size, entry and chosen leverage, in the account's order.
fn position_terms(
    account: &Account,
) -> impl Iterator<Item = (&Arc<Instrument>, Decimal, Decimal, Option<Decimal>)> {
    account.positions.values().map(|p| {
        (
            &p.instrument,
            p.size,
            p.entry,
            account.leverage.get(p.instrument.name.as_str()).copied(),
        )
    })
}
