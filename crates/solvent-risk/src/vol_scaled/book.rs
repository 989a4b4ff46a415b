//! Margin models measured on an account's book, options included (issue 15 item 2): each day,
//! the account's positions on one underlying are margined on that day's grid of the model (the
//! static grid, or the grid scaled to the day's range, [`scaled_grid`]) as the venue's portfolio
//! margin margins them (the scan, then its floors and add-ons); the book's realised P&L over the
//! margin period that follows is compared with that requirement.
//!
//! The options are valued as the VaR backtest values them (`crate::backtest`, shared code):
//! on a surface whose level is the day's Deribit DVOL and whose shape is the account's smile,
//! `sigma_d(K) = DVOL_d x sigma_0(K S_0 / S_d, T) / sigma_0(S_0, T)`, the strikes carried to the
//! day's price level (`K_d = K S_d / S_0`, constant moneyness) and each option's time to expiry
//! `T` held at its value in the market. The book is therefore a constant-maturity,
//! constant-moneyness book, rolled every day to the same tenor and moneyness: no option expires
//! during the backtest, and neither the grid (which revalues at the same `T`, as the venue's
//! scan does) nor the realised P&L carries time decay.
//!
//! On day `d` (spot `S_d`, level `DVOL_d`), with `sigma_i` each option's volatility:
//! - each scenario `(m, shock, weight)` of the day's grid ([`crate::portfolio_margin::scenarios`])
//!   gives `P&L = weight x (sum_i [V_i(S_d (1 + m), shocked(sigma_i)) - V_i(S_d, sigma_i)] + q S_d m)`,
//!   `shocked` the venue's volatility shock ([`crate::portfolio_margin::shocked_volatility`],
//!   itself scaled with the range), `q` the linear exposure in coin; the scan risk is
//!   `max(0, -min P&L)` (DESIGN.md 6.5);
//! - the requirement is the scan with the venue's floors and add-ons (minimum delta, short
//!   options, roll, delta shock, liquidity, concentration) on the book's delta at `S_d`, as
//!   portfolio margin counts them (`portfolio_margin::single_underlying_margin`, crate-private),
//!   rounded up to the cent: see [`backtest_book`];
//! - the realised P&L is `sum_i [V_i(S_{d+h}, sigma_i at DVOL_{d+h}) - V_i(S_d, sigma_i)] +
//!   q (S_{d+h} - S_d)`, the strikes those of day `d`;
//! - an exceedance is a day whose realised loss went beyond the requirement.
//!
//! The coverage figures are those of the linear case ([`summarise`]) on the requirement and the
//! P&L expressed in coin of the underlying (divided by `S_d`): the book's USD value scales with
//! the price at constant moneyness, so in coin it is comparable across the years, as the linear
//! case's range is a fraction of the price.

use jiff::civil::Date;
use serde::Serialize;
use solvent_core::instrument::Terms;
use solvent_core::portfolio::Portfolio;
use solvent_core::portfolio_margin::UnderlyingParams;

use super::backtest::{CoverageDay, CoverageParams, MarginModel, ModelBacktest, summarise};
use super::{RangeBound, range_path, scaled_grid};
use crate::backtest::{OptionLeg, history_error, linear_columns, option_legs};
use crate::error::RiskError;
use crate::history::{HistoryError, PriceHistory};
use crate::portfolio_margin::{
    BookPosition, exposure_of, roll_per_unit, scenarios, shocked_volatility,
    single_underlying_margin,
};
use crate::valuation::MarketView;

/// Days in a year of the volatility term structure (the venue's scan counts days to expiry so).
const DAYS_PER_YEAR: f64 = 365.0;

/// One day of the book's backtest, in USD.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BookDay {
    /// The close the requirement was set at.
    pub as_of: Date,
    /// The close the realised P&L runs to.
    pub outcome: Date,
    /// The underlying's close on `as_of` (`S_d`).
    pub spot: f64,
    /// The model's range of the day (a fraction of the price).
    pub range: f64,
    /// The requirement: the book's portfolio margin on the day's grid (scan, floors, add-ons),
    /// rounded up to the cent (USD, >= 0).
    pub requirement: f64,
    /// The book's realised P&L over the margin period (USD).
    pub realised_pnl: f64,
    /// `-realised_pnl > requirement`.
    pub exceeded: bool,
}

/// One model's backtest of a book on one underlying.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BookBacktest {
    /// Every tested day, in USD.
    pub days: Vec<BookDay>,
    /// The coverage figures on the same days, requirement and P&L in coin of the underlying
    /// (USD / `S_d`): `range` is the requirement in coin, `realised` the P&L in coin, `exceeded`
    /// a loss beyond the requirement.
    pub coverage: ModelBacktest,
}

/// The book's positions on one underlying: its options and its linear exposure in coin.
struct Book {
    column: usize,
    legs: Vec<OptionLeg>,
    linear_units: f64,
    /// Each linear position (spot balances, perpetuals, futures) apart, for the delta and
    /// roll charges: units held and years to expiry held constant (`None`: spot or perpetual).
    linear: Vec<LinearLeg>,
}

/// One linear position of the book.
#[derive(Clone, Copy, Debug)]
struct LinearLeg {
    units: f64,
    /// How it rolls: not at all (spot), daily (a perpetual), or at its tenor (a future's years
    /// to expiry in the market, held constant as the options' are).
    roll: Roll,
}

#[derive(Clone, Copy, Debug)]
enum Roll {
    Spot,
    Perpetual,
    Future { years: f64 },
}

/// Backtests `model` on the account's book on `underlying`: each day's requirement on the
/// model's grid (`grid`, the venue's static grid of the underlying, scaled to the day's range)
/// against the realised P&L over `params.margin_period_days` (module documentation).
///
/// The requirement is the venue's portfolio margin of the underlying's book alone: the scan on
/// the day's grid, the minimum-delta and short-option floors, the roll and delta shocks and the
/// liquidity and concentration add-ons; with one underlying there is no cross-underlying offset,
/// and the historical ES (backtested as a model of its own) is not added. Positions on other
/// underlyings are not part of the book. Only days with a DVOL print at both ends of the margin
/// period are tested when the book holds options.
///
/// # Errors
/// [`RiskError::Unsupported`] for a book with nothing on `underlying`, options or a future
/// without a market view, no DVOL series for an optioned underlying, too few tested days, the model's forecast
/// errors; the options' valuation errors ([`crate::backtest`]).
pub fn backtest_book(
    portfolio: &Portfolio,
    underlying: &str,
    history: &PriceHistory,
    view: Option<&MarketView<'_>>,
    grid: &UnderlyingParams,
    model: &MarginModel,
    params: &CoverageParams,
) -> Result<BookBacktest, RiskError> {
    let book = book_of(portfolio, underlying, history, view)?;
    let dates = history.dates();
    let closes = history.closes(book.column);
    let vol = history.vol_levels(book.column);
    let h = params.margin_period_days as usize;
    let ranges = model_ranges(history, book.column, model)?;
    let needs_vol = !book.legs.is_empty();
    if needs_vol && vol.iter().all(Option::is_none) {
        return Err(RiskError::Unsupported {
            path: "--history".to_owned(),
            problem: format!(
                "no DVOL series for {underlying} ({underlying}-DVOL.deribit.daily.csv): options are valued on the day's DVOL"
            ),
        });
    }
    let mut days = Vec::new();
    let mut coverage = Vec::new();
    for (d, range, sigma_daily, bound) in ranges {
        if d + h >= dates.len() || params.start.is_some_and(|s| dates[d] < s) {
            continue;
        }
        let (level, level_then) = match (vol[d], vol[d + h]) {
            (Some(a), Some(b)) => (a, b),
            _ if needs_vol => continue,
            _ => (f64::NAN, f64::NAN),
        };
        let spot = closes[d];
        let later = closes[d + h];
        let grid_d = scaled_grid(grid, range);
        let (requirement, realised_pnl) =
            book.day(view, &grid_d, spot, later, level, level_then)?;
        if !(requirement.is_finite() && realised_pnl.is_finite()) {
            return Err(RiskError::Unsupported {
                path: "--history".to_owned(),
                problem: format!(
                    "{underlying}: the book's requirement or P&L as of {} is not a finite number",
                    dates[d]
                ),
            });
        }
        let exceeded = -realised_pnl > requirement;
        days.push(BookDay {
            as_of: dates[d],
            outcome: dates[d + h],
            spot,
            range,
            requirement,
            realised_pnl,
            exceeded,
        });
        coverage.push(CoverageDay {
            as_of: dates[d],
            outcome: dates[d + h],
            range: requirement / spot,
            sigma_daily,
            bound,
            realised: realised_pnl / spot,
            exceeded,
        });
    }
    let coverage = summarise(coverage, params, underlying).map_err(history_error)?;
    Ok(BookBacktest { days, coverage })
}

/// The model's range on each day of the history: (day index, range, daily forecast, bound).
type RangeOfDay = (usize, f64, Option<f64>, Option<RangeBound>);

fn model_ranges(
    history: &PriceHistory,
    column: usize,
    model: &MarginModel,
) -> Result<Vec<RangeOfDay>, RiskError> {
    let dates = history.dates();
    match model {
        MarginModel::Static { range } => {
            if !(*range > 0.0 && range.is_finite()) {
                return Err(history_error(HistoryError::InvalidParameter {
                    name: "static range",
                    value: range.to_string(),
                    requirement: "must be positive and finite",
                }));
            }
            Ok((0..dates.len()).map(|d| (d, *range, None, None)).collect())
        }
        MarginModel::Scaled(spec) => {
            let path =
                range_path(dates, history.log_returns(column), spec).map_err(history_error)?;
            let first = dates.len() - path.len();
            Ok(path
                .iter()
                .enumerate()
                .map(|(i, day)| (first + i, day.range, Some(day.sigma_daily), Some(day.bound)))
                .collect())
        }
    }
}

fn book_of(
    portfolio: &Portfolio,
    underlying: &str,
    history: &PriceHistory,
    view: Option<&MarketView<'_>>,
) -> Result<Book, RiskError> {
    let column = history.index_of(underlying).map_err(history_error)?;
    let has_options = portfolio.positions.iter().any(|p| {
        p.instrument.underlying == underlying && matches!(p.instrument.terms, Terms::Option { .. })
    });
    let legs = match (has_options, view) {
        (false, _) => Vec::new(),
        (true, Some(view)) => option_legs(portfolio, history, view, Some(underlying))?,
        (true, None) => {
            return Err(RiskError::Unsupported {
                path: "market".to_owned(),
                problem: format!(
                    "missing; the {underlying} options are valued on the market's volatility surface (its smile shape, levelled by each day's DVOL)"
                ),
            });
        }
    };
    let mut linear = portfolio.clone();
    // The cross pool's linear positions (an isolated position is margined apart).
    linear.positions.retain(|p| {
        p.instrument.underlying == underlying
            && p.isolated_margin.is_none()
            && !matches!(p.instrument.terms, Terms::Option { .. })
    });
    linear.balances.retain(|b| b.asset.index == underlying);
    let linear_units: f64 = linear_columns(&linear, history)?
        .iter()
        .filter(|(c, _)| *c == column)
        .map(|(_, units)| units)
        .sum();
    let mut linear_legs = Vec::new();
    for position in &linear.positions {
        let instrument = &position.instrument;
        let roll = match (&instrument.terms, view) {
            (Terms::Future { expiry }, Some(view)) => Roll::Future {
                years: view.years_to(*expiry),
            },
            (Terms::Future { .. }, None) => {
                return Err(RiskError::Unsupported {
                    path: "market".to_owned(),
                    problem: format!(
                        "missing; the roll charge of {} is counted at its time to expiry in the market (the book is held at that tenor)",
                        instrument.name
                    ),
                });
            }
            _ => Roll::Perpetual,
        };
        linear_legs.push(LinearLeg {
            units: exposure_of(
                instrument,
                position.size.value(),
                position.entry_price.value(),
            ),
            roll,
        });
    }
    linear_legs.extend(
        linear
            .balances
            .iter()
            .filter(|b| b.asset.usd_peg.is_none())
            .map(|b| LinearLeg {
                units: b.amount.to_f64(),
                roll: Roll::Spot,
            }),
    );
    if legs.is_empty() && linear_units == 0.0 {
        return Err(RiskError::Unsupported {
            path: "positions".to_owned(),
            problem: format!("the account holds nothing on {underlying}"),
        });
    }
    Ok(Book {
        column,
        legs,
        linear_units,
        linear: linear_legs,
    })
}

impl Book {
    /// The requirement on `grid` (rounded up to the cent) and the realised P&L from `spot` at
    /// DVOL `level` to `later` at `level_then`.
    fn day(
        &self,
        view: Option<&MarketView<'_>>,
        grid: &UnderlyingParams,
        spot: f64,
        later: f64,
        level: f64,
        level_then: f64,
    ) -> Result<(f64, f64), RiskError> {
        let scenarios = scenarios(grid);
        let mut scenario_pnl: Vec<f64> = scenarios
            .iter()
            .map(|s| self.linear_units * spot * s.price_move)
            .collect();
        let mut realised = self.linear_units * (later - spot);
        let mut positions: Vec<BookPosition> = self
            .linear
            .iter()
            .map(|leg| BookPosition {
                amount: leg.units,
                unit_delta: 1.0,
                roll_unit: match leg.roll {
                    Roll::Spot => 0.0,
                    Roll::Perpetual => roll_per_unit(spot, grid, None),
                    Roll::Future { years } => roll_per_unit(spot, grid, Some(years)),
                },
                is_option: false,
            })
            .collect();
        if let Some(view) = view {
            for leg in &self.legs {
                let strike = leg.strike_on(spot);
                let sigma = leg.volatility(view, spot, strike, level)?;
                let today = leg.price(view, spot, strike, sigma)?;
                for (pnl, s) in scenario_pnl.iter_mut().zip(&scenarios) {
                    let shocked = shocked_volatility(sigma, leg.time * DAYS_PER_YEAR, s.vol, grid);
                    *pnl += leg.price(view, spot * (1.0 + s.price_move), strike, shocked)? - today;
                }
                realised += leg.value(view, later, strike, level_then)? - today;
                positions.push(BookPosition {
                    amount: leg.units,
                    unit_delta: leg.unit_delta(view, spot, strike, sigma)?,
                    roll_unit: 0.0,
                    is_option: true,
                });
            }
        }
        let margin = single_underlying_margin(grid, &scenarios, spot, &scenario_pnl, &positions)?;
        // Rounded up to the cent: toward safety.
        let requirement = (margin * 100.0).ceil() / 100.0;
        Ok((requirement.max(0.0), realised))
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "tests: a failed unwrap is a failed test"
    )]

    use super::*;
    use crate::history::{LoadOptions, SeriesText};
    use solvent_core::market::Market;
    use solvent_core::portfolio_margin::{VolShock, VolShockMode};
    use solvent_core::venue::Venue;

    use crate::portfolio_margin::{ReportCurrency, ScenarioBook, exposures, portfolio_risk};
    use crate::portfolio_report::book_inputs;

    fn venue() -> Venue {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A grid small enough to check by hand: moves of +/-10%, volatility x1.5 or x0.7 whatever
    /// the tenor (powers 0), no floor, no extended moves.
    fn small_grid(venue: &Venue) -> UnderlyingParams {
        let mut grid = venue.portfolio_margin.as_ref().unwrap().underlyings["BTC"].clone();
        grid.price_moves = vec![-0.1, 0.0, 0.1];
        grid.vol_shocks = vec![VolShock::Up, VolShock::Down];
        grid.vol_shock_mode = VolShockMode::Relative;
        grid.vol_shock_up = 0.5;
        grid.vol_shock_down = 0.3;
        grid.vol_up_floor = 0.0;
        grid.vol_power_short = 0.0;
        grid.vol_power_long = 0.0;
        grid.extended_moves = Vec::new();
        grid
    }

    /// 99% coverage over a one-day margin period, from the first day.
    fn one_day_at_99() -> CoverageParams {
        CoverageParams {
            level: 0.99,
            margin_period_days: 1,
            rise_window_days: 30,
            start: None,
        }
    }

    const CLOSES: [f64; 5] = [100_000.0, 112_000.0, 110_000.0, 104_000.0, 106_000.0];
    const DVOL_PERCENT: [f64; 5] = [50.0, 70.0, 55.0, 60.0, 50.0];

    fn history() -> PriceHistory {
        let mut spot = String::from("timestamp,open,high,low,close,volume\n");
        let mut vol = Vec::new();
        for (i, (close, level)) in CLOSES.iter().zip(DVOL_PERCENT).enumerate() {
            let day = format!("2024-01-0{}", i + 1);
            spot.push_str(&format!("{day},{close},{close},{close},{close},1\n"));
            vol.push(format!("{day},BTC,{level},{level},{level},{level}"));
        }
        vol.reverse();
        let vol = format!("date,symbol,open,high,low,close\n{}\n", vol.join("\n"));
        PriceHistory::from_texts(
            &[SeriesText {
                underlying: "BTC",
                origin: "BTC",
                text: &spot,
            }],
            &[SeriesText {
                underlying: "BTC",
                origin: "BTC-DVOL",
                text: &vol,
            }],
            &LoadOptions {
                drop_last_spot_row: false,
            },
        )
        .unwrap()
    }

    /// The standard normal distribution by Simpson's rule on its density (independent of the
    /// pricing crate).
    fn normal_cdf(x: f64) -> f64 {
        let n = 4000;
        let step = x / f64::from(n);
        let density = |t: f64| (-t * t / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut sum = density(0.0) + density(x);
        for i in 1..n {
            let weight = if i % 2 == 1 { 4.0 } else { 2.0 };
            sum += weight * density(step * f64::from(i));
        }
        0.5 + sum * step / 3.0
    }

    /// Black's call at rate 0 (`F = S`, discount 1).
    fn call(forward: f64, strike: f64, years: f64, sigma: f64) -> f64 {
        let d1 = ((forward / strike).ln() + sigma * sigma * years / 2.0) / (sigma * years.sqrt());
        let d2 = d1 - sigma * years.sqrt();
        forward * normal_cdf(d1) - strike * normal_cdf(d2)
    }

    #[test]
    fn short_call_requirement_and_pnl_on_the_scaled_grid_of_each_day() {
        let venue = venue();
        // Flat 50% smile: the shape is 1, so each day's volatility is its DVOL; the strike is
        // the index, so carried to each day's level the call is at the money every day.
        let market = Market::from_json(
            "m.json",
            r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","USDT":"1"},
              "vol":{"BTC":{"27DEC26":{"strikes":[50000,100000,200000],"vols":[0.5,0.5,0.5]}}},"rate":0.0}"#,
        )
        .unwrap();
        let view = MarketView::new(&venue, &market).unwrap();
        let portfolio = Portfolio::from_json(
            "p.json",
            r#"{"account":"o","mode":"cross","collateral":{"USDT":"100000"},
              "positions":[{"instrument":"BTC-27DEC26-100000-C","size":"-1","entry_price":"0.1"}]}"#,
            &venue,
        )
        .unwrap();
        let history = history();
        let grid = small_grid(&venue);
        let params = one_day_at_99();
        // Half the grid's 10%: moves of +/-5%, volatility x1.25 or x0.85.
        let model = MarginModel::Static { range: 0.05 };
        let result = backtest_book(
            &portfolio,
            "BTC",
            &history,
            Some(&view),
            &grid,
            &model,
            &params,
        )
        .unwrap();
        assert_eq!(result.days.len(), 4);
        // 27 Dec 2026 08:00 is 355 days after the market's 6 Jan 2026 08:00.
        let years = 355.0 / 365.0;
        for (d, day) in result.days.iter().enumerate() {
            let (spot, sigma) = (CLOSES[d], DVOL_PERCENT[d] / 100.0);
            let today = -call(spot, spot, years, sigma);
            let mut worst = 0.0_f64;
            for m in [-0.05, 0.0, 0.05] {
                for shock in [1.25, 0.85] {
                    worst = worst.min(-call(spot * (1.0 + m), spot, years, sigma * shock) - today);
                }
            }
            // The venue's add-ons on top of the scan: the short call's delta is -N(d1) (rate
            // 0), its notional prices the liquidity charge (1 bp half spread + 0.1 x
            // sqrt(notional / ADV) impact, ADV 1,808,517,626 USD); the minimum-delta (2% of
            // the delta notional) and short-option (1% of the index) floors stay below the
            // scan, and delta shock and concentration start far above one coin.
            let d1 = sigma * years.sqrt() / 2.0;
            let notional = normal_cdf(d1) * spot;
            assert!(0.02 * notional < -worst && 0.01 * spot < -worst, "day {d}");
            let liquidity = notional * (0.0001 + 0.1 * (notional / 1_808_517_626.0).sqrt());
            let requirement = ((-worst + liquidity) * 100.0).ceil() / 100.0;
            let realised = -call(CLOSES[d + 1], spot, years, DVOL_PERCENT[d + 1] / 100.0) - today;
            assert_eq!(day.requirement, requirement, "day {d}");
            assert!((day.realised_pnl - realised).abs() < 1e-6, "day {d}");
            assert_eq!(day.exceeded, -realised > requirement);
            assert_eq!(result.coverage.days[d].range, requirement / spot);
        }
        // The same figures from Python's math.erf: 2024-01-01, the short call's worst scenario
        // is +5% with volatility up (loss 7,912.108...), its delta -0.597372 adds 40.306 of
        // liquidity, and the next day's +12% with DVOL from 50 to 70 loses 15,518.54: the one
        // exceedance.
        let first = &result.days[0];
        assert_eq!(first.requirement, 7_952.42);
        assert!((first.realised_pnl - -15_518.542_482_021_81).abs() < 1e-6);
        assert_eq!(
            result
                .days
                .iter()
                .map(|d| d.requirement)
                .collect::<Vec<_>>(),
            [7_952.42, 10_993.58, 9_280.73, 9_264.26]
        );
        assert_eq!(result.coverage.exceedances, 1);
        assert!(first.exceeded);
        // Average requirement in coin: the mean of requirement / S_d.
        let mean = (7_952.42 / 100_000.0
            + 10_993.58 / 112_000.0
            + 9_280.73 / 110_000.0
            + 9_264.26 / 104_000.0)
            / 4.0;
        assert!((result.coverage.average_range - mean).abs() < 1e-15);

        // The static grid itself (10%) asks more than the half-range grid every day.
        let full = backtest_book(
            &portfolio,
            "BTC",
            &history,
            Some(&view),
            &grid,
            &MarginModel::Static { range: 0.1 },
            &params,
        )
        .unwrap();
        for (half, whole) in result.days.iter().zip(&full.days) {
            assert!(whole.requirement > half.requirement, "{}", half.as_of);
        }

        // Options without a market view cannot be valued; a book with nothing on ETH is refused.
        let error =
            backtest_book(&portfolio, "BTC", &history, None, &grid, &model, &params).unwrap_err();
        assert!(error.to_string().contains("market"), "{error}");
        let error = backtest_book(
            &portfolio,
            "ETH",
            &history,
            Some(&view),
            &grid,
            &model,
            &params,
        )
        .unwrap_err();
        assert!(error.to_string().contains("ETH"), "{error}");
    }

    /// On a day whose close is the market's index and whose DVOL is the market's flat
    /// volatility, the rolled book is the account itself: its requirement on the venue's own
    /// grid is the portfolio-margin model's maintenance margin of the account (the same scan,
    /// floors and add-ons, computed by `portfolio_risk`), to the cent it is rounded up to.
    #[test]
    fn a_book_at_the_market_is_margined_as_portfolio_margin_margins_it() {
        let venue = venue();
        let grid = small_grid(&venue);
        let mut params = venue.portfolio_margin.clone().unwrap();
        params.underlyings.insert("BTC".to_owned(), grid.clone());
        let market = Market::from_json(
            "m.json",
            r#"{"timestamp":"2026-01-06T08:00:00Z","index":{"BTC":"100000","USDT":"1"},
              "mark":{"BTC-27DEC26":"101500"},
              "vol":{"BTC":{"27DEC26":{"strikes":[50000,100000,200000],"vols":[0.5,0.5,0.5]}}},"rate":0.0}"#,
        )
        .unwrap();
        let view = MarketView::new(&venue, &market).unwrap();
        // A short call, a long put, a perpetual and a future, and BTC held: every charge of
        // the model has something to count (delta both ways, short options, roll at two
        // tenors).
        let portfolio = Portfolio::from_json(
            "p.json",
            r#"{"account":"o","mode":"portfolio","collateral":{"USDT":"100000","BTC":"0.4"},
              "positions":[{"instrument":"BTC-27DEC26-100000-C","size":"-3","entry_price":"0.1"},
                           {"instrument":"BTC-27DEC26-80000-P","size":"2","entry_price":"0.05"},
                           {"instrument":"BTC-PERPETUAL","size":"50000","entry_price":"100000"},
                           {"instrument":"BTC-27DEC26","size":"-20000","entry_price":"100000"}]}"#,
            &venue,
        )
        .unwrap();
        let history = history();
        let coverage = one_day_at_99();
        let result = backtest_book(
            &portfolio,
            "BTC",
            &history,
            Some(&view),
            &grid,
            &MarginModel::Static { range: 0.1 },
            &coverage,
        )
        .unwrap();
        let (instruments, spot_assets) = book_inputs(&portfolio, &params);
        let book = ScenarioBook::new(&view, &params, &instruments, &spot_assets).unwrap();
        let exposures = exposures(&portfolio, &book).unwrap();
        let usd = ReportCurrency {
            price_usd: 1.0,
            priced_by: None,
            equity_usd: 0.0,
        };
        let risk = portfolio_risk(&book, &params, &exposures, &usd).unwrap();
        let btc = &risk.underlyings[0];
        assert!(
            btc.short_option_charge > 0.0 && btc.roll_charge > 0.0 && btc.liquidity_charge > 0.0,
            "{btc:?}"
        );
        let day = &result.days[0];
        assert_eq!(day.spot, 100_000.0);
        assert!(
            (day.requirement - risk.maintenance_margin).abs() <= 0.01
                && day.requirement >= risk.maintenance_margin,
            "book {} against the model's {}",
            day.requirement,
            risk.maintenance_margin
        );
    }
}
