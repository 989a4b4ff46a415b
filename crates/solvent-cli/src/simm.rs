//! `solvent simm`: ISDA SIMM per netting set from a CRIF file, as tables or JSON.

use std::fmt::Write;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use solvent_simm::{
    Calibration, MarginPeriod, MarginTypes, NettingSetSimm, RegulatedSimm, ScheduleIm, Side,
    Version, crif, parse_date, schedule_im, simm_for_side, simm_under_regulations,
};

use crate::display::{Cell, Column, Grid, Kind, Layout};
use crate::render::grouped;

/// The arguments of `solvent simm`.
#[derive(Args)]
pub(crate) struct SimmArgs {
    /// The CRIF file (tab- or comma-separated, ISDA's Common Risk Interchange Format); amounts
    /// are read from `AmountUSD`, netting sets from `PortfolioID`.
    crif: PathBuf,
    /// The SIMM version: 1.3.38, 2.0, 2.1, 2.2, 2.3, 2.3.8 (2.4), 2.5, 2.5A, 2.6, 2.6.5, 2.7 (+2412), 2.8 (+2506) or
    /// 2.8+2512.
    #[arg(long, default_value = "2.8")]
    version: String,
    /// The margin period of risk in days: 10, or 1 (one-day calibration, no concentration).
    #[arg(long, default_value = "10", value_name = "DAYS")]
    mpor: String,
    /// The side: the margin to collect (the sensitivities as given) or to post (negated, which
    /// changes curvature only).
    #[arg(long, value_enum, default_value_t = SideArg::Collect)]
    side: SideArg,
    /// The calculation currency (SIMM section I: its own FX delta is no risk, its volatility
    /// group picks the FX risk weights and correlations); amounts and margins stay in USD.
    #[arg(long, default_value = "USD", value_name = "CCY")]
    calculation_currency: String,
    /// The result currency: margins in it, each amount read from `Amount` converted from
    /// `AmountCurrency` and each concentration threshold converted from USD, at the
    /// `--fx-rate` rates, as ORE converts them.
    #[arg(long, default_value = "USD", value_name = "CCY")]
    result_currency: String,
    /// An FX rate for `--result-currency`: PAIR=RATE, e.g. EURUSD=1.085 (one EUR in USD); repeat
    /// for each currency; a pair's inverse and crosses through USD are derived.
    #[arg(long = "fx-rate", value_name = "PAIR=RATE")]
    fx_rates: Vec<String>,
    /// Enforce the CRIF's `collect_regulations` / `post_regulations`, as ORE's SimmCalculator does
    /// with enforceIMRegulations: SIMM under each regulation of a netting set, reported for the
    /// winning one (the largest; the first in ORE's order among equals). Without it every row
    /// counts.
    #[arg(long)]
    regulations: bool,
    /// The valuation date (YYYY-MM-DD) the maturities of Schedule rows (`im_model` Schedule) run
    /// from; needed when the CRIF has such rows, whose Schedule IM is then reported after SIMM.
    #[arg(long, value_name = "DATE")]
    asof: Option<String>,
    /// JSON instead of tables (every figure at full precision).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Every netting set's breakdown as one CSV table (RFC 4180; a netting set column first,
    /// figures in USD at full precision, an absent margin type empty).
    #[arg(long)]
    csv: bool,
}

/// `--side`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SideArg {
    Collect,
    Post,
}

impl SideArg {
    fn side(self) -> Side {
        match self {
            SideArg::Collect => Side::Collect,
            SideArg::Post => Side::Post,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SideArg::Collect => "collect",
            SideArg::Post => "post",
        }
    }
}

/// Runs `solvent simm`.
pub(crate) fn run(args: &SimmArgs) -> Result<String> {
    let version = Version::parse(&args.version)?;
    let text = fs::read_to_string(&args.crif)
        .with_context(|| format!("cannot read {}", args.crif.display()))?;
    let period = MarginPeriod::parse(&args.mpor)?;
    let mut calibration = Calibration::load_for(version, period)?
        .with_calculation_currency(&args.calculation_currency)?;
    let currency = args.result_currency.trim().to_string();
    let sensitivities = if currency == "USD" {
        anyhow::ensure!(
            args.fx_rates.is_empty(),
            "--fx-rate is for a --result-currency other than USD"
        );
        crif::parse(&text)
    } else {
        anyhow::ensure!(
            currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()),
            "result currency '{currency}': expected an ISO code such as EUR"
        );
        let rates = crif::FxRates::parse(args.fx_rates.iter().map(String::as_str))?;
        let usd = rates.rate("USD", &currency).ok_or_else(|| {
            anyhow::anyhow!(
                "no FX rate between USD and {currency}: give --fx-rate, e.g. {currency}USD=RATE"
            )
        })?;
        calibration = calibration.with_thresholds_in(usd)?;
        crif::parse_in(
            &text,
            &crif::ResultCurrency {
                currency: &currency,
                rates: &rates,
            },
        )
    }
    .with_context(|| format!("{}", args.crif.display()))?;
    let (results, winners): (Vec<NettingSetSimm>, Vec<Option<RegulatedWinner>>) =
        if args.regulations {
            simm_under_regulations(&sensitivities, &calibration, args.side.side())
                .with_context(|| format!("{}", args.crif.display()))?
                .into_iter()
                .map(|r: RegulatedSimm| {
                    let winner = RegulatedWinner {
                        regulation: r.regulation.name(),
                        tied: r.tied.iter().map(|t| t.name()).collect(),
                    };
                    (r.simm, Some(winner))
                })
                .unzip()
        } else {
            let results = simm_for_side(&sensitivities, &calibration, args.side.side());
            let none = vec![None; results.len()];
            (results, none)
        };
    let schedule = if sensitivities.schedule.is_empty() {
        Vec::new()
    } else {
        let text = args.asof.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the CRIF has Schedule rows (im_model Schedule): give --asof DATE for their maturities",
                args.crif.display()
            )
        })?;
        let asof = parse_date(text)
            .ok_or_else(|| anyhow::anyhow!("--asof '{text}': expected a date, YYYY-MM-DD"))?;
        anyhow::ensure!(
            calibration.calculation_currency() == "USD" && currency == "USD",
            "Schedule IM is computed in USD only: --calculation-currency {} and --result-currency {currency} are not taken with Schedule rows",
            calibration.calculation_currency()
        );
        schedule_im(&sensitivities, asof, args.side.side(), args.regulations)
            .with_context(|| format!("{}", args.crif.display()))?
    };
    if args.json {
        let mut sets = serde_json::to_value(&results)?;
        if let Some(array) = sets.as_array_mut() {
            for (set, winner) in array.iter_mut().zip(&winners) {
                if let (Some(object), Some(w)) = (set.as_object_mut(), winner) {
                    object.insert("regulation".into(), json!(w.regulation));
                    object.insert("tied_regulations".into(), json!(w.tied));
                }
            }
        }
        let value = json!({
            "version": version.name(),
            "side": args.side.name(),
            "margin_period_days": if period == MarginPeriod::OneDay { 1 } else { 10 },
            "currency": currency,
            "calculation_currency": calibration.calculation_currency(),
            "regulations_enforced": args.regulations,
            "netting_sets": sets,
            "schedule": schedule,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&value)?));
    }
    if args.csv {
        anyhow::ensure!(
            schedule.is_empty(),
            "Schedule IM is not written as CSV: use the table or --json"
        );
        return csv(&results, &winners, &currency);
    }
    let mut out = tables(version, args.side, period, &results, &winners, &currency);
    out.push_str(&schedule_tables(&schedule));
    Ok(out)
}

/// Schedule IM per netting set: the gross margin of each product class, then the netting set's
/// gross margin, replacement costs, net-to-gross ratio and Schedule IM.
fn schedule_tables(schedule: &[ScheduleIm]) -> String {
    let mut out = String::new();
    for s in schedule {
        let tied = if s.tied.len() > 1 {
            format!(
                " (tied: {})",
                s.tied
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\nSchedule IM netting set {} under {}{tied}: {} USD",
            s.netting_set,
            s.regulation.name(),
            grouped(&format!("{:.2}", s.schedule_im))
        );
        let mut grid = Grid::new(vec![
            Column::new("product class", Kind::Label),
            Column::new("gross IM (USD)", Kind::Number),
        ]);
        for (class, gross) in &s.product_classes {
            grid.cells(vec![Cell::text(class.name()), usd(Some(*gross))]);
        }
        grid.cells(vec![Cell::text("all"), usd(Some(s.gross_im))]);
        let _ = writeln!(out, "{}", grid.render(Layout::Wide));
        let _ = writeln!(
            out,
            "gross replacement cost {} USD, net {} USD, net-to-gross ratio {:.6}: Schedule IM = gross IM x (0.4 + 0.6 x NGR)",
            grouped(&format!("{:.2}", s.gross_replacement_cost)),
            grouped(&format!("{:.2}", s.net_replacement_cost)),
            s.net_to_gross
        );
    }
    out
}

/// The winning regulation of a netting set, when the regulations are enforced.
#[derive(Clone)]
struct RegulatedWinner {
    regulation: &'static str,
    tied: Vec<&'static str>,
}

/// USD to the cent with thousands separators, written exactly in CSV; an absent margin type
/// shows as `-` and writes empty.
fn usd(value: Option<f64>) -> Cell {
    let shown = value.map_or_else(|| "-".to_string(), |v| grouped(&format!("{v:.2}")));
    Cell::float(shown, value)
}

/// The columns of a netting set's breakdown; CSV leads with the netting set, so one file holds
/// them all.
fn columns(currency: &str) -> Vec<Column> {
    vec![
        Column::new("netting set", Kind::Label).csv_only(),
        Column::new("product class", Kind::Label),
        Column::new("risk class", Kind::Label),
        Column::new(format!("delta ({currency})"), Kind::Number),
        Column::new(format!("vega ({currency})"), Kind::Number),
        Column::new(format!("curvature ({currency})"), Kind::Number),
        Column::new(format!("base corr. ({currency})"), Kind::Number),
        Column::new(format!("total ({currency})"), Kind::Number),
    ]
}

fn row(set: &str, product: &str, risk: &str, margins: &MarginTypes, total: f64) -> Vec<Cell> {
    vec![
        Cell::text(set),
        Cell::text(product),
        Cell::text(risk),
        usd(margins.delta),
        usd(margins.vega),
        usd(margins.curvature),
        usd(margins.base_correlation),
        usd(Some(total)),
    ]
}

/// A row of an add-on: only its total.
fn add_on_row(set: &str, product: &str, what: &str, amount: f64) -> Vec<Cell> {
    let mut cells = vec![Cell::text(set), Cell::text(product), Cell::text(what)];
    cells.extend(std::iter::repeat_n(Cell::text(""), 4));
    cells.push(usd(Some(amount)));
    cells
}

/// The rows of one netting set: each product class's risk classes and their aggregate (with
/// the product class multiplier as its own row), the risk classes across product classes, the
/// add-ons, and SIMM.
fn add_rows(grid: &mut Grid, set: &NettingSetSimm) {
    let name = set.netting_set.as_str();
    for product in &set.product_classes {
        let class = product.product_class.name();
        for risk in &product.risk_classes {
            grid.cells(row(
                name,
                class,
                risk.risk_class.ore_name(),
                &risk.margins,
                risk.total,
            ));
        }
        match product.additional {
            Some(extra) => {
                grid.cells(row(
                    name,
                    class,
                    "all (psi)",
                    &product.margins,
                    product.total - extra,
                ));
                grid.cells(add_on_row(name, class, "x multiplier", extra));
            }
            None => grid.cells(row(
                name,
                class,
                "all (psi)",
                &product.margins,
                product.total,
            )),
        }
    }
    for risk in &set.risk_classes {
        grid.cells(row(
            name,
            "all",
            risk.risk_class.ore_name(),
            &risk.margins,
            risk.total,
        ));
    }
    if let Some(additional) = set.additional {
        grid.cells(add_on_row(name, "all", "add-ons", additional));
    }
    grid.cells(row(name, "all", "all", &set.margins, set.total));
}

/// Every netting set's breakdown in one CSV (see [`Grid::csv`]); with the regulations
/// enforced, the netting set column names the winning regulation too (`NS1 [ESA]`).
fn csv(
    results: &[NettingSetSimm],
    winners: &[Option<RegulatedWinner>],
    currency: &str,
) -> Result<String> {
    let mut grid = Grid::new(columns(currency));
    for (set, winner) in results.iter().zip(winners) {
        match winner {
            Some(w) => {
                let mut named = set.clone();
                named.netting_set = format!("{} [{}]", set.netting_set, w.regulation);
                add_rows(&mut grid, &named);
            }
            None => add_rows(&mut grid, set),
        }
    }
    Ok(grid.csv()?)
}

fn tables(
    version: Version,
    side: SideArg,
    period: MarginPeriod,
    results: &[NettingSetSimm],
    winners: &[Option<RegulatedWinner>],
    currency: &str,
) -> String {
    let mut out = String::new();
    for (set, winner) in results.iter().zip(winners) {
        let name = if set.netting_set.is_empty() {
            "(none)"
        } else {
            set.netting_set.as_str()
        };
        let under = winner.as_ref().map_or(String::new(), |w| {
            if w.tied.len() > 1 {
                format!(" under {} (tied: {})", w.regulation, w.tied.join(", "))
            } else {
                format!(" under {}", w.regulation)
            }
        });
        let _ = writeln!(
            out,
            "SIMM {} netting set {name}{under}: {} {currency}",
            version.name(),
            grouped(&format!("{:.2}", set.total))
        );
        let mut grid = Grid::new(columns(currency));
        add_rows(&mut grid, set);
        let _ = writeln!(out, "{}\n", grid.render(Layout::Wide));
    }
    let _ = writeln!(
        out,
        "{} side, {currency}, {}-day margin period. A risk class's total is the sum of its margin types;\n\
         a product class's aggregates its risk classes with psi (SIMM B.6-7, K); SIMM is the sum of\n\
         the product classes (B.6-7) and of the add-ons.",
        if matches!(side, SideArg::Post) {
            "Post"
        } else {
            "Collect"
        },
        if period == MarginPeriod::OneDay {
            1
        } else {
            10
        }
    );
    out
}
