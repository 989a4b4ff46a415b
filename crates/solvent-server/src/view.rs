//! The consistent view every read is answered from (DESIGN.md 10: "reads come from a consistent
//! view and never stall the engine").
//!
//! The engine thread publishes a new [`View`] after each batch it applies; the view is handed to
//! readers only once that batch is durable, so a reader never sees a state a crash could take
//! back. A view is immutable: accounts sit in a persistent map (`imbl`), so publishing one
//! copies only the accounts the batch touched, and a reader holding an old view keeps a
//! consistent picture for as long as it needs it.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use rust_decimal::Decimal;
use solvent_core::market::Market;
use solvent_core::portfolio::Portfolio;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::ledger::LedgerAccount;
use solvent_risk::AccountState;
use solvent_risk::vol_scaled::RangeInForce;

/// One account as readers see it.
#[derive(Clone, Debug)]
pub struct AccountView {
    /// The account as a portfolio (balances, positions, isolated margins, leverage): what a
    /// margin report is computed from.
    pub portfolio: Arc<Portfolio>,
    /// The state the engine last decided for it.
    pub state: AccountState,
}

/// The state readers see: everything as of sequence number `seq`, all of it durable.
#[derive(Clone, Debug)]
pub struct View {
    /// The last event applied (`None` before any).
    pub seq: Option<u64>,
    /// The engine's time.
    pub now: Timestamp,
    /// The market.
    pub market: Arc<Market>,
    /// The venue as the engine installed it (grids scaled to the ranges in force).
    pub venue: Arc<Venue>,
    /// The volatility-scaled ranges in force, by underlying (replaced with the venue).
    pub scenario_ranges: Arc<BTreeMap<String, RangeInForce>>,
    /// Every account, by id. The ids are shared (`Arc<str>`): a batch that changes accounts all
    /// over the map copies most of its leaves away from the views readers still hold, and a
    /// leaf's copy then counts references instead of copying 64 strings.
    pub accounts: imbl::OrdMap<Arc<str>, AccountView>,
    /// The insurance fund's balance per asset.
    pub insurance_fund: BTreeMap<String, Decimal>,
}

impl View {
    /// The view of a freshly started (or recovered) engine: every account read once.
    #[must_use]
    pub fn of(engine: &Engine) -> Self {
        let mut accounts = imbl::OrdMap::new();
        for (id, _) in engine.accounts().iter() {
            if let Some(account) = account_view(engine, id) {
                accounts.insert(Arc::from(id), account);
            }
        }
        Self {
            seq: engine.last_seq(),
            now: engine.now(),
            market: Arc::new(engine.market().clone()),
            venue: Arc::new(engine.venue().clone()),
            scenario_ranges: Arc::new(engine.scenario_ranges().clone()),
            accounts,
            insurance_fund: insurance_fund(engine),
        }
    }

    /// The view after a batch: the accounts in `touched` read again, the market, venue and fund
    /// replaced where they changed.
    #[must_use]
    pub fn next<'a>(
        &self,
        engine: &Engine,
        touched: impl IntoIterator<Item = &'a str>,
        market_changed: bool,
        venue_changed: bool,
    ) -> Self {
        let mut accounts = self.accounts.clone();
        for id in touched {
            match account_view(engine, id) {
                // A known account keeps its key (no new allocation for it).
                Some(account) => match accounts.get_mut(id) {
                    Some(known) => *known = account,
                    None => {
                        accounts.insert(Arc::from(id), account);
                    }
                },
                None => {
                    accounts.remove(id);
                }
            }
        }
        Self {
            seq: engine.last_seq(),
            now: engine.now(),
            market: if market_changed {
                Arc::new(engine.market().clone())
            } else {
                Arc::clone(&self.market)
            },
            venue: if venue_changed {
                Arc::new(engine.venue().clone())
            } else {
                Arc::clone(&self.venue)
            },
            scenario_ranges: if venue_changed {
                Arc::new(engine.scenario_ranges().clone())
            } else {
                Arc::clone(&self.scenario_ranges)
            },
            accounts,
            insurance_fund: insurance_fund(engine),
        }
    }
}

fn account_view(engine: &Engine, id: &str) -> Option<AccountView> {
    let account = engine.accounts().get(id)?;
    let portfolio = engine.portfolio(id)?;
    Some(AccountView {
        portfolio: Arc::new(portfolio),
        state: account.state,
    })
}

fn insurance_fund(engine: &Engine) -> BTreeMap<String, Decimal> {
    // Per venue asset: the ledger's full listing sorts every wallet.
    engine
        .venue()
        .assets
        .keys()
        .map(|asset| {
            let balance = engine
                .ledger()
                .balance(&LedgerAccount::InsuranceFund, asset);
            (asset.to_string(), balance)
        })
        .filter(|(_, balance)| !balance.is_zero())
        .collect()
}
