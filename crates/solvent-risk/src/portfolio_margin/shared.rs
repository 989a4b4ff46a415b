//! Scenario books shared by a population: one book per underlying, built once for a market and
//! read by every portfolio-mode account valued at it, and an account's margin summed from them
//! by the lean path.
//!
//! An account's own [`ScenarioBook`] revalues only what the account holds; the instrument rows
//! do not depend on the account (each instrument is revalued alone, and the batch Black-76
//! kernel gives every option the same bits wherever it sits in the batch), so a book that holds
//! more instruments gives the account the same rows. The account's underlyings are listed in the
//! order its own book would list them, so the scan, the charges and the cross-underlying
//! combination run in the same order and the margin is its own book's bit for bit.

use std::sync::Arc;

use solvent_core::venue::Asset;

use super::*;

/// Underlying books built for one market (time, prices, volatility and venue) and shared by
/// every account valued at it; attach them to the view with
/// [`MarketView::with_books`](crate::valuation::MarketView::with_books). Books of another market
/// must never be attached: the view cannot tell.
#[derive(Clone, Debug, Default)]
pub struct SharedBooks {
    books: Vec<Arc<UnderlyingBook>>,
}

impl SharedBooks {
    /// The books, one per underlying (a later book of an underlying already given is ignored).
    #[must_use]
    pub fn new(books: Vec<Arc<UnderlyingBook>>) -> Self {
        Self { books }
    }

    /// The book of `underlying`.
    #[must_use]
    pub fn get(&self, underlying: &str) -> Option<&UnderlyingBook> {
        self.books
            .iter()
            .find(|book| book.name == underlying)
            .map(AsRef::as_ref)
    }
}

impl UnderlyingBook {
    /// The book of `underlying` for many accounts: the spot rows of `spot_symbols` (assets priced
    /// by it) and every one of `instruments` on it, each revalued as an account's own book
    /// revalues it. What cannot be revalued (an expired option, a mark without an implied
    /// volatility) and what is not on `underlying` is left out: an account holding it is valued
    /// through its own book, which reports the problem.
    ///
    /// # Errors
    /// [`RiskError`] when the underlying has no parameters or no index, or the batch of option
    /// rows is refused.
    pub fn shared(
        view: &MarketView<'_>,
        params: &PortfolioMarginParams,
        underlying: &str,
        instruments: &[&Instrument],
        spot_symbols: &[&str],
    ) -> Result<Self, RiskError> {
        let mut underlyings: IndexMap<String, UnderlyingBook> = IndexMap::new();
        let book = ScenarioBook::book_for(&mut underlyings, view, params, underlying)?;
        for symbol in spot_symbols {
            book.insert_spot(symbol, None);
        }
        let now = view.now();
        let held: Vec<&Instrument> = instruments
            .iter()
            .copied()
            .filter(|i| {
                i.underlying == underlying && i.terms.expiry().is_none_or(|expiry| expiry > now)
            })
            .collect();
        // Assessed and valued on every core, entered in order (see `Assessed`).
        let mut assessed: Vec<Result<Assessed, RiskError>> = held
            .par_iter()
            .with_min_len(ASSESS_BLOCK)
            .map(|instrument| assess(view, instrument, book, None))
            .collect();
        value_options(&mut assessed, |item| item.as_mut().ok());
        for (instrument, assessed) in held.iter().zip(assessed) {
            if book.instruments.contains_key(&instrument.name) {
                continue;
            }
            // A revaluation that fails leaves the instrument out; the batch kernel's refusal
            // of an option's rows fails the book.
            if let Ok(assessed) = assessed {
                let risk = assessed.enter(instrument)?;
                book.instruments.insert(instrument.name.clone(), risk);
            }
        }
        let mut book =
            underlyings
                .swap_remove(underlying)
                .ok_or_else(|| RiskError::Unsupported {
                    path: format!("portfolio_margin.underlyings.{underlying}"),
                    problem: "missing after insertion".to_owned(),
                })?;
        book.packed = PackedRows::new(&book.scenarios, &book.instruments);
        Ok(book)
    }
}

/// The margin of `portfolio`'s cross pool from `books` by the lean path (see [`SharedMargin`]):
/// the figures of [`portfolio_risk`] over the account's own book, bit for bit (see the module
/// documentation). `None` where this path cannot vouch for them: an underlying or an instrument
/// the books lack, a price history attached (historical expected shortfall and estimated
/// correlations read it). The caller then builds the account's own book.
#[must_use]
pub fn shared_margin(
    portfolio: &Portfolio,
    view: &MarketView<'_>,
    books: &SharedBooks,
    params: &PortfolioMarginParams,
    report_asset: &Asset,
    currency: (f64, f64),
) -> Option<SharedMargin> {
    if view.history().is_some() {
        return None;
    }
    let (report_usd, equity_usd) = currency;
    let (order, exposures) = shared_exposures(portfolio, books, params)?;
    let slot = |name: &str| order.iter().position(|book| book.name == name);
    let names: Vec<&str> = order.iter().map(|book| book.name.as_str()).collect();
    let correlations = Correlations::of(&names, params, None);
    let currency = ReportCurrency {
        price_usd: report_usd,
        priced_by: slot(report_asset.index.as_str()),
        equity_usd,
    };
    let prepared = PreparedExposures::new(&exposures);
    let maintenance = lean_margin(
        |u| order.get(u).copied(),
        &correlations,
        params.max_offset,
        &prepared,
        &currency,
        &mut Scratch::default(),
    )
    .ok()?;
    let sides = if currency.priced_by.is_none() {
        sides_of(&order, &exposures)?
    } else {
        // Reported in a coin the scan moves: the conversion reorders the scenarios, and the
        // USD sides would not say which is worst.
        Vec::new()
    };
    // As `portfolio_risk`: no expected shortfall without a history.
    Some(SharedMargin {
        initial: params.im_factor * maintenance,
        maintenance,
        scenario_sides: sides,
    })
}

/// What [`shared_margin`] reads from the shared books for one account.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedMargin {
    /// Initial margin, in the report currency before rounding.
    pub initial: f64,
    /// Maintenance margin, in the report currency before rounding.
    pub maintenance: f64,
    /// Each underlying's [`ScenarioSides`], in the account's own book's order, from the same
    /// rows; empty where the report currency moves with a scenario.
    pub scenario_sides: Vec<ScenarioSides>,
}

/// The account's underlying books in the order its own book would list them (spot balances
/// first, then positions) and its exposures in that book's order (positions, then spot
/// balances); `None` where the books lack an underlying or an instrument it holds.
fn shared_exposures<'b>(
    portfolio: &Portfolio,
    books: &'b SharedBooks,
    params: &PortfolioMarginParams,
) -> Option<(Vec<&'b UnderlyingBook>, Vec<Exposure>)> {
    // The account's underlyings in its own book's order: spot balances first, then positions.
    let mut order: Vec<&UnderlyingBook> = Vec::with_capacity(2);
    let mut add = |name: &str| -> Option<()> {
        if !order.iter().any(|book| book.name == name) {
            order.push(books.get(name)?);
        }
        Some(())
    };
    for balance in &portfolio.balances {
        if params
            .underlyings
            .contains_key(balance.asset.index.as_str())
        {
            add(&balance.asset.index)?;
        }
    }
    for position in portfolio
        .positions
        .iter()
        .filter(|p| p.isolated_margin.is_none())
    {
        add(&position.instrument.underlying)?;
    }
    let slot = |name: &str| order.iter().position(|book| book.name == name);
    // The account's exposures in its own book's order: positions, then spot balances.
    let mut exposures = Vec::with_capacity(portfolio.positions.len() + 1);
    for position in portfolio
        .positions
        .iter()
        .filter(|p| p.isolated_margin.is_none())
    {
        let instrument = &position.instrument;
        let underlying = slot(&instrument.underlying)?;
        exposures.push(Exposure {
            underlying,
            instrument: order
                .get(underlying)?
                .instruments
                .get_index_of(&instrument.name)?,
            amount: exposure_of(
                instrument,
                position.size.value(),
                position.entry_price.value(),
            ),
            position: None,
        });
    }
    for balance in &portfolio.balances {
        if let Some(underlying) = slot(&balance.asset.index) {
            let spot = format!("spot:{}", balance.asset.symbol);
            exposures.push(Exposure {
                underlying,
                instrument: order.get(underlying)?.instruments.get_index_of(&spot)?,
                amount: f64_of(balance.amount.value()),
                position: None,
            });
        }
    }
    Some((order, exposures))
}

/// One underlying's worst weighted scenario P&L on each side of its price, in USD (weights
/// applied, no conversion to the report currency): which side is worse sets the underlying's
/// direction in the cross-underlying offset (`direction` in the charges), so the gap between the
/// two is how far the scenarios must move apart before that direction can flip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioSides {
    /// The underlying.
    pub underlying: String,
    /// The lowest weighted P&L among the scenarios that move the price up; `+inf` without one.
    pub rising: f64,
    /// The lowest weighted P&L among the scenarios that move it down or leave it; `+inf`
    /// without one.
    pub not_rising: f64,
}

/// Each of `order`'s underlyings' [`ScenarioSides`] for `exposures` (whose `underlying` indexes
/// `order`): the scenario P&L summed as the scan sums them; `None` where one is not a number.
pub(crate) fn sides_of(
    order: &[&UnderlyingBook],
    exposures: &[Exposure],
) -> Option<Vec<ScenarioSides>> {
    let mut pnl = Vec::new();
    let mut sides = Vec::with_capacity(order.len());
    for (u, book_u) in order.iter().enumerate() {
        scenario_totals(book_u, u, exposures, &mut pnl).ok()?;
        let mut rising = f64::INFINITY;
        let mut not_rising = f64::INFINITY;
        for (value, scenario) in pnl.iter().zip(&book_u.scenarios) {
            let weighted = value * scenario.weight;
            // `min` would pass over a NaN: no sides rather than a side without it.
            if weighted.is_nan() {
                return None;
            }
            // The charges' rule: an up move sets the direction -1, any other +1.
            let side = if scenario.price_move > 0.0 {
                &mut rising
            } else {
                &mut not_rising
            };
            *side = side.min(weighted);
        }
        sides.push(ScenarioSides {
            underlying: book_u.name.clone(),
            rising,
            not_rising,
        });
    }
    Some(sides)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Value;
    use solvent_core::market::Market;
    use solvent_core::venue::Venue;

    use super::*;
    use crate::account::{Detail, build_report};

    fn venue() -> Venue {
        let path = format!("{}/../../venues/default.toml", env!("CARGO_MANIFEST_DIR"));
        Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// The desk example in portfolio mode, changed by `edit`.
    fn desk(edit: impl Fn(&mut Value)) -> Value {
        let path = format!(
            "{}/../../examples/btc-desk.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut file: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        file["mode"] = Value::from("portfolio");
        edit(&mut file);
        file
    }

    /// Books of every underlying for the desk's market, holding `instruments` (in an order of
    /// their own) and the spot rows of every asset.
    fn books(view: &MarketView<'_>, instruments: &[&Instrument]) -> SharedBooks {
        let venue = view.venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        let mut books = Vec::new();
        for underlying in params.underlyings.keys().rev() {
            let spot: Vec<&str> = venue
                .assets
                .values()
                .filter(|a| a.index == *underlying)
                .map(|a| a.symbol.as_str())
                .collect();
            if let Ok(book) = UnderlyingBook::shared(view, params, underlying, instruments, &spot) {
                books.push(Arc::new(book));
            }
        }
        SharedBooks::new(books)
    }

    /// `portfolio`'s risk over its own book, in the currency `currency` makes of that book.
    fn own_risk(
        view: &MarketView<'_>,
        portfolio: &Portfolio,
        currency: impl Fn(&ScenarioBook) -> ReportCurrency,
    ) -> PortfolioRisk {
        let params = view.venue().portfolio_margin.as_ref().unwrap();
        let (instruments, spot) = crate::portfolio_report::book_inputs(portfolio, params);
        let book = ScenarioBook::new(view, params, &instruments, &spot).unwrap();
        let exposures = exposures(portfolio, &book).unwrap();
        portfolio_risk(&book, params, &exposures, &currency(&book)).unwrap()
    }

    /// Every listed instrument and every position of `portfolio`, last first.
    fn everything<'v>(venue: &'v Venue, portfolio: &'v Portfolio) -> Vec<&'v Instrument> {
        let mut instruments: Vec<&Instrument> =
            venue.listed_instruments().map(AsRef::as_ref).collect();
        instruments.extend(portfolio.positions.iter().map(|p| p.instrument.as_ref()));
        instruments.reverse();
        instruments
    }

    #[test]
    fn shared_books_give_each_accounts_own_figures_bit_for_bit() {
        let venue = venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        let files = [
            desk(|_| {}),
            // Coin-margined: the report asset is priced by a scanned underlying.
            desk(|file| file["settlement_asset"] = Value::from("BTC")),
            // Reported in a coin not worth exactly 1 USD and priced by no scanned underlying.
            desk(|file| {
                file["settlement_asset"] = Value::from("USDC");
                file["market"]["index"]["USDC"] = Value::from("0.9997");
            }),
            // Options priced by the surface (no given marks).
            desk(|file| {
                let marks = file["market"]["mark"].as_object_mut().unwrap();
                marks.retain(|name, _| !name.ends_with("-C") && !name.ends_with("-P"));
            }),
            // An isolated perpetual, left out of the scan.
            desk(|file| {
                file["positions"][0]["isolated_margin"] = Value::from("5000");
                file["positions"][0]["leverage"] = Value::from(10);
            }),
        ];
        let mut served = 0;
        for file in &files {
            let portfolio = Portfolio::from_json("p.json", &file.to_string(), &venue).unwrap();
            let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
            let view = MarketView::new(&venue, &market).unwrap();
            let books = books(&view, &everything(&venue, &portfolio));
            let shared_view = MarketView::new(&venue, &market).unwrap().with_books(&books);
            let own = build_report(&portfolio, &view, Detail::Totals).unwrap();
            let shared = build_report(&portfolio, &shared_view, Detail::Totals).unwrap();
            let figures = |r: &crate::report::MarginReport| {
                (
                    r.equity,
                    r.initial_margin,
                    r.maintenance_margin,
                    r.health.map(f64::to_bits),
                    r.state,
                )
            };
            assert_eq!(
                figures(&own),
                figures(&shared),
                "{}",
                file["settlement_asset"]
            );
            let report_asset = &portfolio.settlement_asset;
            let report_usd = view.asset_usd(report_asset).unwrap().to_f64().unwrap();
            let equity_usd = own.equity.value().to_f64().unwrap() * report_usd;
            let lean = shared_margin(
                &portfolio,
                &shared_view,
                &books,
                params,
                report_asset,
                (report_usd, equity_usd),
            );
            // The account's own book, unrounded.
            let risk = own_risk(&view, &portfolio, |book| ReportCurrency {
                price_usd: report_usd,
                priced_by: book.underlyings.get_index_of(report_asset.index.as_str()),
                equity_usd,
            });
            let lean = lean.unwrap();
            assert_eq!(
                lean.maintenance.to_bits(),
                risk.maintenance_margin.to_bits()
            );
            assert_eq!(lean.initial.to_bits(), risk.initial_margin.to_bits());
            served += 1;
        }
        assert_eq!(served, files.len());
    }

    #[test]
    fn scenario_sides_hold_the_worst_scenario_and_its_direction() {
        let venue = venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        // The desk in USDT (BTC and ETH scanned), and its mirror image: every worst
        // scenario changes side.
        let mirrored = desk(|file| {
            for position in file["positions"].as_array_mut().unwrap() {
                let size = position["size"].as_str().unwrap().to_owned();
                position["size"] = Value::from(match size.strip_prefix('-') {
                    Some(positive) => positive.to_owned(),
                    None => format!("-{size}"),
                });
            }
        });
        let mut directions = Vec::new();
        for file in [desk(|_| {}), mirrored] {
            let portfolio = Portfolio::from_json("p.json", &file.to_string(), &venue).unwrap();
            let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
            let view = MarketView::new(&venue, &market).unwrap();
            let books = books(&view, &everything(&venue, &portfolio));
            let shared_view = MarketView::new(&venue, &market).unwrap().with_books(&books);
            let report_usd = view
                .asset_usd(&portfolio.settlement_asset)
                .unwrap()
                .to_f64()
                .unwrap();
            let sides = shared_margin(
                &portfolio,
                &shared_view,
                &books,
                params,
                &portfolio.settlement_asset,
                (report_usd, 0.0),
            )
            .unwrap()
            .scenario_sides;
            // The report carries the same sides, from its own book and from the shared ones.
            let own = build_report(&portfolio, &view, Detail::Totals).unwrap();
            assert_eq!(own.scenario_sides, sides);
            let shared = build_report(&portfolio, &shared_view, Detail::Totals).unwrap();
            assert_eq!(shared.scenario_sides, sides);
            let risk = own_risk(&view, &portfolio, |_| ReportCurrency {
                price_usd: report_usd,
                priced_by: None,
                equity_usd: 0.0,
            });
            assert_eq!(
                sides
                    .iter()
                    .map(|s| s.underlying.as_str())
                    .collect::<Vec<_>>(),
                ["BTC", "ETH"]
            );
            assert_eq!(sides.len(), risk.underlyings.len());
            for (side, underlying) in sides.iter().zip(&risk.underlyings) {
                assert_eq!(side.underlying, underlying.underlying);
                let worst_usd = side.rising.min(side.not_rising);
                assert!(
                    (worst_usd / report_usd - underlying.worst_pnl).abs() <= 1e-9 * worst_usd.abs(),
                    "{}: {worst_usd} USD against {} in the report currency",
                    side.underlying,
                    underlying.worst_pnl
                );
                let direction = if side.rising < side.not_rising {
                    -1.0
                } else {
                    1.0
                };
                assert_eq!(direction, underlying.direction, "{}", side.underlying);
                assert!(side.rising.is_finite() && side.not_rising.is_finite());
            }
            directions.push(
                risk.underlyings
                    .iter()
                    .map(|u| u.direction)
                    .collect::<Vec<_>>(),
            );
        }
        // The mirror turns ETH's worst scenario over (BTC's options keep its own a fall): the
        // test sees both sides.
        assert_eq!(directions, [[1.0, -1.0], [1.0, 1.0]]);
    }

    #[test]
    fn an_account_holding_what_the_books_lack_takes_its_own_book() {
        let venue = venue();
        let params = venue.portfolio_margin.as_ref().unwrap();
        let file = desk(|_| {});
        let portfolio = Portfolio::from_json("p.json", &file.to_string(), &venue).unwrap();
        let market = Market::from_json("m.json", &file["market"].to_string()).unwrap();
        let view = MarketView::new(&venue, &market).unwrap();
        // Books of spot rows only: the desk's positions are not among them.
        let books = books(&view, &[]);
        let shared_view = MarketView::new(&venue, &market).unwrap().with_books(&books);
        assert_eq!(
            shared_margin(
                &portfolio,
                &shared_view,
                &books,
                params,
                &portfolio.settlement_asset,
                (1.0, 0.0)
            ),
            None
        );
        let own = build_report(&portfolio, &view, Detail::Totals).unwrap();
        let shared = build_report(&portfolio, &shared_view, Detail::Totals).unwrap();
        assert_eq!(own.maintenance_margin, shared.maintenance_margin);
        assert_eq!(own.initial_margin, shared.initial_margin);
    }
}
