//! A seeded generator of CRIF files covering every risk class: interest rate (every tenor and
//! sub-curve, inflation, cross-currency basis, volatility), credit (qualifying with securitisations
//! and base correlation, non-qualifying with groups), equity, commodity and FX: every
//! product class, every equity and qualifying credit bucket (1-12 and Residual), commodity bucket
//! (1-17) and non-qualifying bucket (1, 2, Residual), credit tenors, FX
//! currencies of every volatility group and concentration category (USD, the calculation currency,
//! among them), vega at every tenor, amounts from thousands to billions of USD so that
//! concentration thresholds bind, and repeated rows that must be summed.

use std::fmt::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Currencies of FX concentration categories 1, 2 and 3 and of the high-volatility groups of
/// SIMM 2.6 (BRL, RUB, TRY) and 2.7/2.8 (ARS, EGP, NGN, RUB...).
pub const CURRENCIES: [&str; 16] = [
    "USD", "EUR", "JPY", "GBP", "CHF", "BRL", "CNY", "MXN", "TRY", "RUB", "ZAR", "ARS", "EGP",
    "NGN", "PLN", "THB",
];

pub const TENORS: [&str; 12] = [
    "2w", "1m", "3m", "6m", "1y", "2y", "3y", "5y", "10y", "15y", "20y", "30y",
];

pub const CREDIT_TENORS: [&str; 5] = ["1y", "2y", "3y", "5y", "10y"];

/// Groups of non-qualifying names (`Label2`), the empty one among them.
const GROUPS: [&str; 3] = ["", "CMBX", "ABX"];

const SUB_CURVES: [&str; 7] = [
    "OIS",
    "Libor1m",
    "Libor3m",
    "Libor6m",
    "Libor12m",
    "Prime",
    "Municipal",
];

/// The CRIF bucket of an interest rate currency: its volatility group.
fn ir_bucket(currency: &str) -> &'static str {
    match currency {
        "JPY" => "2",
        "USD" | "EUR" | "GBP" | "CHF" => "1",
        _ => "3",
    }
}

const INDEX_FAMILIES: [&str; 3] = ["CDX.NA.IG", "CDX.NA.HY", "iTraxx Europe"];

const PRODUCT_CLASSES: [&str; 4] = ["RatesFX", "Credit", "Equity", "Commodity"];

/// Equity qualifier `k` lives in bucket `k % 13` (0 is Residual).
fn equity(k: usize) -> (String, String) {
    let bucket = k % 13;
    let label = if bucket == 0 {
        "Residual".to_string()
    } else {
        bucket.to_string()
    };
    (format!("EQ{k}"), label)
}

/// Commodity qualifier `k` lives in bucket `k % 17 + 1`.
fn commodity(k: usize) -> (String, String) {
    (format!("CM{k}"), (k % 17 + 1).to_string())
}

/// Qualifying credit issuer `k` lives in bucket `k % 13` (0 is Residual).
fn qualifying(k: usize) -> (String, String) {
    let (_, bucket) = equity(k);
    (format!("ISSUER{k}"), bucket)
}

/// Non-qualifying credit name `k` lives in bucket `k % 3` (0 is Residual).
fn non_qualifying(k: usize) -> (String, String) {
    let bucket = match k % 3 {
        0 => "Residual".to_string(),
        n => n.to_string(),
    };
    (format!("RMBS{k}"), bucket)
}

/// A signed amount, log-uniform between 10^3 and 10^`max_exponent` USD (at most 1.6 billion: larger
/// sensitivities give margins past 10^13 USD, where one f64 step is a good part of a cent).
fn amount(rng: &mut ChaCha8Rng, max_exponent: f64) -> f64 {
    let magnitude = 10f64.powf(rng.random_range(3.0..max_exponent));
    let signed = if rng.random_bool(0.5) {
        magnitude
    } else {
        -magnitude
    };
    (signed * 100.0).round() / 100.0
}

/// A CRIF with `netting_sets` netting sets of `rows` rows each (tab-separated, ORE's columns).
#[allow(dead_code)]
pub fn crif(seed: u64, netting_sets: usize, rows: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::from(
        "TradeID\tPortfolioID\tProductClass\tRiskType\tQualifier\tBucket\tLabel1\tLabel2\tAmountCurrency\tAmount\tAmountUSD\n",
    );
    for set in 0..netting_sets {
        let mut previous: Option<String> = None;
        for row in 0..rows {
            let product_class = PRODUCT_CLASSES[rng.random_range(0..PRODUCT_CLASSES.len())];
            let kind = rng.random_range(0..16);
            let big = rng.random_bool(0.15);
            // Credit sensitivities are per basis point against thresholds of a fraction of a
            // million: smaller amounts make them bind.
            let max_exponent = match ((6..=10).contains(&kind), big) {
                (false, true) => 9.2,
                (false, false) => 7.5,
                (true, true) => 6.5,
                (true, false) => 5.0,
            };
            let value = amount(&mut rng, max_exponent);
            let mut label2 = String::new();
            let (risk_type, qualifier, bucket, label1) = match kind {
                0 => {
                    let c = CURRENCIES[rng.random_range(0..CURRENCIES.len())];
                    ("Risk_FX", c.to_string(), String::new(), String::new())
                }
                1 => {
                    let a = rng.random_range(0..CURRENCIES.len());
                    let b = (a + rng.random_range(1..CURRENCIES.len())) % CURRENCIES.len();
                    let tenor = TENORS[rng.random_range(0..TENORS.len())];
                    let pair = format!("{}{}", CURRENCIES[a], CURRENCIES[b]);
                    ("Risk_FXVol", pair, String::new(), tenor.to_string())
                }
                2 => {
                    let (q, b) = equity(rng.random_range(0..39));
                    ("Risk_Equity", q, b, String::new())
                }
                3 => {
                    let (q, b) = equity(rng.random_range(0..39));
                    let tenor = TENORS[rng.random_range(0..TENORS.len())];
                    ("Risk_EquityVol", q, b, tenor.to_string())
                }
                4 => {
                    let (q, b) = commodity(rng.random_range(0..34));
                    ("Risk_Commodity", q, b, String::new())
                }
                5 => {
                    let (q, b) = commodity(rng.random_range(0..34));
                    let tenor = TENORS[rng.random_range(0..TENORS.len())];
                    ("Risk_CommodityVol", q, b, tenor.to_string())
                }
                6 | 7 => {
                    let (q, b) = qualifying(rng.random_range(0..39));
                    let tenor = CREDIT_TENORS[rng.random_range(0..CREDIT_TENORS.len())];
                    if kind == 6 && rng.random_bool(0.2) {
                        label2 = "Sec".to_string();
                    }
                    let risk_type = if kind == 6 {
                        "Risk_CreditQ"
                    } else {
                        "Risk_CreditVol"
                    };
                    (risk_type, q, b, tenor.to_string())
                }
                8 | 9 => {
                    let (q, b) = non_qualifying(rng.random_range(0..12));
                    let tenor = CREDIT_TENORS[rng.random_range(0..CREDIT_TENORS.len())];
                    label2 = GROUPS[rng.random_range(0..GROUPS.len())].to_string();
                    let risk_type = if kind == 8 {
                        "Risk_CreditNonQ"
                    } else {
                        "Risk_CreditVolNonQ"
                    };
                    (risk_type, q, b, tenor.to_string())
                }
                10 => {
                    let q = INDEX_FAMILIES[rng.random_range(0..INDEX_FAMILIES.len())];
                    ("Risk_BaseCorr", q.to_string(), String::new(), String::new())
                }
                _ => {
                    let c = CURRENCIES[rng.random_range(0..CURRENCIES.len())];
                    let tenor = TENORS[rng.random_range(0..TENORS.len())].to_string();
                    match kind {
                        11 | 12 => {
                            label2 = SUB_CURVES[rng.random_range(0..SUB_CURVES.len())].to_string();
                            (
                                "Risk_IRCurve",
                                c.to_string(),
                                ir_bucket(c).to_string(),
                                tenor,
                            )
                        }
                        13 => {
                            let risk_type = if rng.random_bool(0.5) {
                                "Risk_Inflation"
                            } else {
                                "Risk_XCcyBasis"
                            };
                            (risk_type, c.to_string(), String::new(), String::new())
                        }
                        14 => ("Risk_IRVol", c.to_string(), String::new(), tenor),
                        _ => ("Risk_InflationVol", c.to_string(), String::new(), tenor),
                    }
                }
            };
            let line = format!(
                "NS{set}\t{product_class}\t{risk_type}\t{qualifier}\t{bucket}\t{label1}\t{label2}\tUSD\t{value}\t{value}"
            );
            // One row in ten repeats the previous sensitivity with a new amount (rows that ORE and
            // Solvent must sum).
            let line = match &previous {
                Some(p) if rng.random_bool(0.1) => {
                    let repeated = amount(&mut rng, 7.0).to_string();
                    let mut fields: Vec<&str> = p.split('\t').collect();
                    fields[8] = &repeated;
                    fields[9] = &repeated;
                    fields.join("\t")
                }
                _ => line,
            };
            let _ = writeln!(out, "T{set}_{row}\t{line}");
            previous = Some(line);
        }
    }
    out
}

/// Add-on rows for some of the netting sets of [`crif`] (no header): product class multipliers,
/// fixed amounts, notional factors with their notionals.
#[allow(dead_code)]
pub fn add_ons(seed: u64, netting_sets: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::new();
    for set in 0..netting_sets {
        if rng.random_bool(0.4) {
            let pc = PRODUCT_CLASSES[rng.random_range(0..PRODUCT_CLASSES.len())];
            let factor = (rng.random_range(0.5..2.5_f64) * 100.0).round() / 100.0;
            let _ = writeln!(
                out,
                "A{set}m\tNS{set}\t\tParam_ProductClassMultiplier\t{pc}\t\t\t\tUSD\t{factor}\t{factor}"
            );
        }
        if rng.random_bool(0.4) {
            let amount = amount(&mut rng, 7.0).abs();
            let _ = writeln!(
                out,
                "A{set}f\tNS{set}\t\tParam_AddOnFixedAmount\tFixed\t\t\t\tUSD\t{amount}\t{amount}"
            );
        }
        if rng.random_bool(0.4) {
            let product = ["Swaption", "Exotic"][rng.random_range(0..2)];
            let factor = (rng.random_range(0.1..5.0_f64) * 100.0).round() / 100.0;
            let notional = amount(&mut rng, 9.0).abs();
            let _ = writeln!(
                out,
                "A{set}n\tNS{set}\t\tParam_AddOnNotionalFactor\t{product}\t\t\t\tUSD\t{factor}\t{factor}"
            );
            let _ = writeln!(
                out,
                "A{set}N\tNS{set}\t\tNotional\t{product}\t\t\t\tUSD\t{notional}\t{notional}"
            );
        }
    }
    out
}

/// The regulations a row may carry (`collect_regulations`, `post_regulations`): none, one,
/// several (in ORE's bracketed and plain lists), CFTC (which ORE groups apart), `Excluded`
/// and an explicit `Unspecified`.
const REGULATIONS: [&str; 12] = [
    "",
    "ESA",
    "USPR",
    "ESA,USPR",
    "[ESA, JFSA]",
    "JFSA",
    "USPR,APRA,ESA",
    "Excluded",
    "CFTC",
    "ESA,CFTC",
    "Unspecified",
    "UK",
];

/// [`crif`]'s text with `collect_regulations` and `post_regulations` columns: per netting set,
/// none at all (every row counts), collect only (nothing left to post), or both, row by row
/// from [`REGULATIONS`].
#[allow(dead_code)]
pub fn with_regulations(text: &str, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut profiles: std::collections::BTreeMap<String, u8> = Default::default();
    let mut out = String::new();
    let mut lines = text.lines();
    if let Some(header) = lines.next() {
        let _ = writeln!(out, "{header}\tcollect_regulations\tpost_regulations");
    }
    for line in lines {
        let set = line.split('\t').nth(1).unwrap_or("").to_string();
        let profile = *profiles
            .entry(set)
            .or_insert_with(|| rng.random_range(0..4u8));
        let pick = |rng: &mut ChaCha8Rng| REGULATIONS[rng.random_range(0..REGULATIONS.len())];
        let (collect, post) = match profile {
            0 => ("", ""),
            1 => (pick(&mut rng), ""),
            _ => (pick(&mut rng), pick(&mut rng)),
        };
        let _ = writeln!(out, "{line}\t{collect}\t{post}");
    }
    out
}

/// The regulations of schedule rows: [`REGULATIONS`]' kinds plus SEC (with and without CFTC,
/// which ORE's schedule adds to SEC) and BANX (whose net-to-gross ratio defaults to 0).
const SCHEDULE_REGULATIONS: [&str; 10] = [
    "",
    "ESA",
    "USPR",
    "ESA,USPR",
    "[CFTC, SEC]",
    "CFTC",
    "SEC",
    "BANX",
    "Excluded",
    "UK,Unspecified",
];

/// A CRIF of Schedule rows only (`im_model` Schedule): per netting set a few trades of every
/// schedule product class, ending from 100 days before `asof` (days since 1970-01-01) to 12
/// years after, each with a notional and a PV (either sometimes missing), PVs of both signs,
/// and regulations from [`SCHEDULE_REGULATIONS`] (a netting set in four without any).
#[allow(dead_code)]
pub fn schedule(seed: u64, netting_sets: usize, trades: usize, asof: i64) -> String {
    const CLASSES: [&str; 6] = ["Rates", "FX", "Credit", "Equity", "Commodity", "Other"];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::from(
        "TradeID\tPortfolioID\tProductClass\tRiskType\tQualifier\tBucket\tLabel1\tLabel2\tAmountCurrency\tAmount\tAmountUSD\tim_model\tend_date\tcollect_regulations\tpost_regulations\n",
    );
    for set in 0..netting_sets {
        let regulated = rng.random_range(0..4) != 0;
        for trade in 0..trades {
            let class = CLASSES[rng.random_range(0..CLASSES.len())];
            let end = asof + rng.random_range(-100..12 * 365);
            let (y, m, d) = civil(end);
            let date = format!("{y:04}-{m:02}-{d:02}");
            let (collect, post) = if regulated {
                let pick = |rng: &mut ChaCha8Rng| {
                    SCHEDULE_REGULATIONS[rng.random_range(0..SCHEDULE_REGULATIONS.len())]
                };
                (pick(&mut rng), pick(&mut rng))
            } else {
                ("", "")
            };
            let notional = amount(&mut rng, 8.0);
            let pv = amount(&mut rng, 6.0);
            let missing = rng.random_range(0..10);
            for (kind, value) in [("Notional", notional), ("PV", pv)] {
                if (missing == 0 && kind == "Notional") || (missing == 1 && kind == "PV") {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "S{set}-{trade}\tNS{set}\t{class}\t{kind}\t\t\t\t\tUSD\t{value}\t{value}\tSchedule\t{date}\t{collect}\t{post}"
                );
            }
        }
    }
    out
}

/// The civil date of days since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
