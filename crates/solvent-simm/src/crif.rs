//! CRIF, ISDA's Common Risk Interchange Format (ISDA SIMM Methodology: Risk Data Standards,
//! section 2): one sensitivity per row, tab- or comma-separated, with a header naming the columns.
//!
//! Read columns (names matched without regard to case): `PortfolioID` (the netting set; empty when
//! absent), `ProductClass`, `RiskType`, `Qualifier`, `Bucket`, `Label1`, `Label2`, `AmountUSD`, and
//! `Amount` for the factors of the add-on rows (`Param_ProductClassMultiplier`,
//! `Param_AddOnNotionalFactor`), and `collect_regulations` / `post_regulations` (the regulations
//! of the row, read for [`crate::simm_under_regulations`]), and for rows whose `im_model` is
//! `Schedule` (a trade's `PV` or `Notional`, for [`crate::schedule_im`]) `TradeID`, the schedule
//! product class and `end_date`. Other columns are ignored. Every error names the row (1 is the
//! header) and the column at fault.

use std::collections::HashMap;

use compact_str::CompactString;

use crate::error::CrifError;
use crate::regulation::Regulations;
use crate::schedule::{ScheduleKind, ScheduleProductClass, ScheduleRow, parse_date};

/// A SIMM product class (SIMM section B.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ProductClass {
    /// Interest rates and FX.
    RatesFX,
    /// Credit.
    Credit,
    /// Equity.
    Equity,
    /// Commodity.
    Commodity,
}

impl ProductClass {
    /// The product classes in the order ORE and ISDA list them.
    pub const ALL: [ProductClass; 4] = [
        ProductClass::RatesFX,
        ProductClass::Credit,
        ProductClass::Equity,
        ProductClass::Commodity,
    ];

    /// The CRIF name.
    pub fn name(self) -> &'static str {
        match self {
            ProductClass::RatesFX => "RatesFX",
            ProductClass::Credit => "Credit",
            ProductClass::Equity => "Equity",
            ProductClass::Commodity => "Commodity",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        ProductClass::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
    }
}

/// A CRIF risk type Solvent computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum RiskType {
    /// `Risk_FX`: FX delta, qualifier a currency.
    Fx,
    /// `Risk_FXVol`: FX vega, qualifier a currency pair.
    FxVol,
    /// `Risk_Equity`: equity delta.
    Equity,
    /// `Risk_EquityVol`: equity vega.
    EquityVol,
    /// `Risk_Commodity`: commodity delta.
    Commodity,
    /// `Risk_CommodityVol`: commodity vega.
    CommodityVol,
    /// `Risk_CreditQ`: credit (qualifying) delta, qualifier an issuer and seniority.
    CreditQ,
    /// `Risk_CreditVol`: credit (qualifying) vega.
    CreditVol,
    /// `Risk_CreditNonQ`: credit (non-qualifying) delta.
    CreditNonQ,
    /// `Risk_CreditVolNonQ`: credit (non-qualifying) vega.
    CreditVolNonQ,
    /// `Risk_BaseCorr`: sensitivity to the base correlation of a credit index family.
    BaseCorr,
    /// `Risk_IRCurve`: interest rate delta, qualifier a currency, Label1 a tenor, Label2 a
    /// sub-curve.
    IrCurve,
    /// `Risk_Inflation`: inflation delta of a currency.
    Inflation,
    /// `Risk_XCcyBasis`: cross-currency basis delta of a currency.
    XccyBasis,
    /// `Risk_IRVol`: interest rate vega.
    IrVol,
    /// `Risk_InflationVol`: inflation vega.
    InflationVol,
}

/// The CRIF risk types SIMM defines that Solvent does not compute yet.
const NOT_COVERED: [&str; 1] = ["PV"];

impl RiskType {
    /// Every risk type computed.
    pub const ALL: [RiskType; 16] = [
        RiskType::Fx,
        RiskType::FxVol,
        RiskType::Equity,
        RiskType::EquityVol,
        RiskType::Commodity,
        RiskType::CommodityVol,
        RiskType::CreditQ,
        RiskType::CreditVol,
        RiskType::CreditNonQ,
        RiskType::CreditVolNonQ,
        RiskType::BaseCorr,
        RiskType::IrCurve,
        RiskType::Inflation,
        RiskType::XccyBasis,
        RiskType::IrVol,
        RiskType::InflationVol,
    ];

    /// The CRIF name.
    pub fn name(self) -> &'static str {
        match self {
            RiskType::Fx => "Risk_FX",
            RiskType::FxVol => "Risk_FXVol",
            RiskType::Equity => "Risk_Equity",
            RiskType::EquityVol => "Risk_EquityVol",
            RiskType::Commodity => "Risk_Commodity",
            RiskType::CommodityVol => "Risk_CommodityVol",
            RiskType::CreditQ => "Risk_CreditQ",
            RiskType::CreditVol => "Risk_CreditVol",
            RiskType::CreditNonQ => "Risk_CreditNonQ",
            RiskType::CreditVolNonQ => "Risk_CreditVolNonQ",
            RiskType::BaseCorr => "Risk_BaseCorr",
            RiskType::IrCurve => "Risk_IRCurve",
            RiskType::Inflation => "Risk_Inflation",
            RiskType::XccyBasis => "Risk_XCcyBasis",
            RiskType::IrVol => "Risk_IRVol",
            RiskType::InflationVol => "Risk_InflationVol",
        }
    }

    /// Whether the sensitivity is a vega (the volatility risk types).
    pub fn is_vega(self) -> bool {
        matches!(
            self,
            RiskType::FxVol
                | RiskType::EquityVol
                | RiskType::CommodityVol
                | RiskType::CreditVol
                | RiskType::CreditVolNonQ
                | RiskType::IrVol
                | RiskType::InflationVol
        )
    }

    /// Whether the risk type belongs to the interest rate risk class.
    pub fn is_interest_rate(self) -> bool {
        matches!(
            self,
            RiskType::IrCurve
                | RiskType::Inflation
                | RiskType::XccyBasis
                | RiskType::IrVol
                | RiskType::InflationVol
        )
    }

    /// Whether the risk type is a credit one (its tenors are 1y, 2y, 3y, 5y and 10y).
    pub fn is_credit(self) -> bool {
        matches!(
            self,
            RiskType::CreditQ
                | RiskType::CreditVol
                | RiskType::CreditNonQ
                | RiskType::CreditVolNonQ
        )
    }

    fn parse(text: &str) -> Option<Self> {
        // The names as CRIFs write them first (most comparisons stop at the length), then any
        // other case.
        RiskType::ALL
            .into_iter()
            .find(|r| r.name() == text)
            .or_else(|| {
                RiskType::ALL
                    .into_iter()
                    .find(|r| r.name().eq_ignore_ascii_case(text))
            })
    }
}

/// A bucket: a number or `Residual`; FX rows have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// No bucket (FX).
    None,
    /// The residual bucket (equity).
    Residual,
    /// A numbered bucket.
    Numbered(u8),
}

impl Bucket {
    /// Parses `1`..`99` or `Residual` (any case); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("residual") {
            return Some(Bucket::Residual);
        }
        text.parse::<u8>()
            .ok()
            .filter(|n| *n > 0)
            .map(Bucket::Numbered)
    }

    /// The slot of the bucket in the calibration's tables: 0 residual, else the number.
    pub(crate) fn slot(self) -> usize {
        match self {
            Bucket::None | Bucket::Residual => 0,
            Bucket::Numbered(n) => usize::from(n),
        }
    }

    /// The bucket as the CRIF writes it.
    pub fn label(self) -> String {
        match self {
            Bucket::None => String::new(),
            Bucket::Residual => "Residual".to_string(),
            Bucket::Numbered(n) => n.to_string(),
        }
    }
}

/// A vega or curvature tenor (`Label1` of the volatility risk types, SIMM section C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tenor {
    /// 2 weeks.
    W2,
    /// 1 month.
    M1,
    /// 3 months.
    M3,
    /// 6 months.
    M6,
    /// 1 year.
    Y1,
    /// 2 years.
    Y2,
    /// 3 years.
    Y3,
    /// 5 years.
    Y5,
    /// 10 years.
    Y10,
    /// 15 years.
    Y15,
    /// 20 years.
    Y20,
    /// 30 years.
    Y30,
}

impl Tenor {
    /// The tenors of credit sensitivities (SIMM section C).
    pub const CREDIT: [Tenor; 5] = [Tenor::Y1, Tenor::Y2, Tenor::Y3, Tenor::Y5, Tenor::Y10];

    const NAMES: [(&'static str, Tenor); 12] = [
        ("2w", Tenor::W2),
        ("1m", Tenor::M1),
        ("3m", Tenor::M3),
        ("6m", Tenor::M6),
        ("1y", Tenor::Y1),
        ("2y", Tenor::Y2),
        ("3y", Tenor::Y3),
        ("5y", Tenor::Y5),
        ("10y", Tenor::Y10),
        ("15y", Tenor::Y15),
        ("20y", Tenor::Y20),
        ("30y", Tenor::Y30),
    ];

    fn parse(text: &str) -> Option<Self> {
        Tenor::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, t)| *t)
    }

    /// The tenor as the CRIF writes it.
    pub fn label(self) -> &'static str {
        Tenor::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(name, _)| name)
    }
}

/// The largest sensitivity read, in USD: every margin built on sensitivities below it stays finite
/// (risk weights are below 10^4, concentration factors below 10^5).
const AMOUNT_USD_MAX: f64 = 1e15;

/// The interest rate sub-curves (`Label2` of `Risk_IRCurve`, SIMM section C).
const SUB_CURVES: [&str; 7] = [
    "OIS",
    "Libor1m",
    "Libor3m",
    "Libor6m",
    "Libor12m",
    "Prime",
    "Municipal",
];

/// One CRIF sensitivity, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    /// The netting set (`PortfolioID`).
    pub netting_set: CompactString,
    /// The product class.
    pub product_class: ProductClass,
    /// The risk type.
    pub risk_type: RiskType,
    /// The qualifier: a currency, currency pair, issuer or commodity.
    pub qualifier: CompactString,
    /// The bucket.
    pub bucket: Bucket,
    /// The tenor (`Label1`) of a vega or credit sensitivity; `None` otherwise.
    pub tenor: Option<Tenor>,
    /// `Label2`: `Sec` for a qualifying securitisation, the group of a non-qualifying name; empty
    /// otherwise.
    pub label2: CompactString,
    /// The amount in USD.
    pub amount_usd: f64,
    /// The row's regulations: an index into [`Crif::regulations`] (0 where the CRIF has no
    /// regulations columns or the row's are empty).
    pub regulations: u32,
}

/// A SIMM parameter row of a CRIF (ISDA SIMM Methodology: Risk Data Standards, the `Param_`
/// rows): an addition to the netting set's margin. Such rows have no product class.
#[derive(Debug, Clone, PartialEq)]
pub enum AddOnKind {
    /// `Param_ProductClassMultiplier`: the product class's margin is multiplied by `factor`
    /// (the `Amount` column, at least 0); the qualifier names the product class.
    ProductClassMultiplier {
        /// The product class multiplied.
        product_class: ProductClass,
        /// The multiplier.
        factor: f64,
    },
    /// `Param_AddOnFixedAmount`: a fixed amount of margin (`AmountUSD`).
    FixedAmount {
        /// The amount, USD.
        amount_usd: f64,
    },
    /// `Param_AddOnNotionalFactor`: `factor_percent` % (the `Amount` column) of the notional of
    /// the `Notional` row with the same qualifier.
    NotionalFactor {
        /// The product the factor applies to.
        qualifier: CompactString,
        /// The factor, in percent.
        factor_percent: f64,
    },
    /// `Notional`: the notional a `Param_AddOnNotionalFactor` applies to (`AmountUSD`).
    Notional {
        /// The product.
        qualifier: CompactString,
        /// The notional, USD.
        amount_usd: f64,
    },
}

/// One add-on row of a netting set.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOn {
    /// The netting set (`PortfolioID`).
    pub netting_set: CompactString,
    /// What it adds.
    pub kind: AddOnKind,
    /// The row's regulations: an index into [`Crif::regulations`].
    pub regulations: u32,
}

/// A parsed CRIF: its sensitivities and its add-on rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Crif {
    /// The sensitivities.
    pub sensitivities: Vec<Sensitivity>,
    /// The add-on rows.
    pub add_ons: Vec<AddOn>,
    /// The rows with `im_model` Schedule (their `PV` and `Notional`), for [`crate::schedule_im`].
    pub schedule: Vec<ScheduleRow>,
    /// The distinct regulations of the rows (`collect_regulations`, `post_regulations`), each
    /// with the first row (1-based) that has them; a row's index 0 means none (and the list may
    /// be empty).
    pub regulations: Vec<(Regulations, usize)>,
}

/// The columns read, by position in the header.
struct Columns {
    netting_set: Option<usize>,
    product_class: usize,
    risk_type: usize,
    qualifier: usize,
    bucket: usize,
    label1: usize,
    label2: Option<usize>,
    amount: Option<usize>,
    amount_usd: usize,
    collect_regulations: Option<usize>,
    post_regulations: Option<usize>,
    trade_id: Option<usize>,
    im_model: Option<usize>,
    end_date: Option<usize>,
    amount_currency: Option<usize>,
}

fn find(header: &[&str], name: &'static str) -> Option<usize> {
    header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(name))
}

impl Columns {
    fn read(header: &[&str]) -> Result<Self, CrifError> {
        let need = |name: &'static str| find(header, name).ok_or(CrifError::MissingColumn(name));
        Ok(Columns {
            netting_set: find(header, "PortfolioID"),
            product_class: need("ProductClass")?,
            risk_type: need("RiskType")?,
            qualifier: need("Qualifier")?,
            bucket: need("Bucket")?,
            label1: need("Label1")?,
            label2: find(header, "Label2"),
            amount: find(header, "Amount"),
            amount_usd: need("AmountUSD")?,
            collect_regulations: find(header, "collect_regulations"),
            post_regulations: find(header, "post_regulations"),
            trade_id: find(header, "TradeID").or_else(|| find(header, "trade_id")),
            im_model: find(header, "im_model").or_else(|| find(header, "IMModel")),
            end_date: find(header, "end_date").or_else(|| find(header, "EndDate")),
            amount_currency: find(header, "AmountCurrency"),
        })
    }
}

/// Parses a CRIF text: tab-separated, or comma-separated when the header holds no tab.
///
/// # Errors
/// [`CrifError`] naming the row and column of the first bad field, a missing column, or a risk
/// type SIMM defines that Solvent does not compute.
pub fn parse(text: &str) -> Result<Crif, CrifError> {
    parse_with(text, None)
}

/// FX rates for a result currency other than USD: `(pair, rate)` with the pair as six letters,
/// `EURUSD` 1.085 meaning one EUR is 1.085 USD.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FxRates {
    rates: Vec<(String, f64)>,
}

impl FxRates {
    /// Reads `PAIR=RATE` items such as `EURUSD=1.085`.
    ///
    /// # Errors
    /// [`CrifError::FxRate`] naming an item that is not six capitals, `=` and a positive finite
    /// number.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, CrifError> {
        let mut rates = Vec::new();
        for item in items {
            let bad = || CrifError::FxRate(item.to_string());
            let (pair, rate) = item.split_once('=').ok_or_else(bad)?;
            let pair = pair.trim();
            let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
            if pair.len() != 6 || !pair.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad());
            }
            if !(rate.is_finite() && rate > 0.0) {
                return Err(bad());
            }
            rates.push((pair.to_string(), rate));
        }
        Ok(FxRates { rates })
    }

    /// The price of one `from` in `to`: 1 for the same currency, a rate given for the pair or
    /// its inverse (`1 / rate`, as ORE's FX triangulation inverts), else through USD.
    pub fn rate(&self, from: &str, to: &str) -> Option<f64> {
        if from == to {
            return Some(1.0);
        }
        let direct = |a: &str, b: &str| {
            self.rates
                .iter()
                .find(|(p, _)| p.get(..3) == Some(a) && p.get(3..) == Some(b))
                .map(|(_, r)| *r)
                .or_else(|| {
                    self.rates
                        .iter()
                        .find(|(p, _)| p.get(..3) == Some(b) && p.get(3..) == Some(a))
                        .map(|(_, r)| 1.0 / r)
                })
        };
        direct(from, to).or_else(|| Some(direct(from, "USD")? * direct("USD", to)?))
    }
}

/// A CRIF's amounts in another result currency: each row's `Amount` in `AmountCurrency` at the
/// given rates (ORE's `SimmCalculator` converts so when the result currency is not USD).
pub struct ResultCurrency<'a> {
    /// The result currency.
    pub currency: &'a str,
    /// The rates.
    pub rates: &'a FxRates,
}

/// Parses a CRIF with its amounts in a result currency other than USD: every amount that SIMM
/// reads from `AmountUSD` (sensitivities, fixed add-ons, notionals; not the multipliers and
/// notional factors) is `Amount` converted from `AmountCurrency` instead, as ORE does. The
/// field `amount_usd` of the rows then holds the result currency's amount.
///
/// # Errors
/// As [`parse`], and [`CrifError::Field`] for a row whose `Amount` is not a number or whose
/// `AmountCurrency` has no rate; [`CrifError::MissingColumn`] without those columns.
pub fn parse_in(text: &str, result: &ResultCurrency<'_>) -> Result<Crif, CrifError> {
    parse_with(text, Some(result))
}

fn parse_with(text: &str, result: Option<&ResultCurrency<'_>>) -> Result<Crif, CrifError> {
    let mut lines = text.lines().enumerate();
    let (_, header_line) = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or(CrifError::Empty)?;
    let delimiter = if header_line.contains('\t') {
        '\t'
    } else {
        ','
    };
    let header: Vec<&str> = header_line.split(delimiter).collect();
    let columns = Columns::read(&header)?;
    let mut crif = Crif::default();
    // One buffer of fields for every row: no allocation per row beyond the row's own strings.
    let mut fields: Vec<&str> = Vec::with_capacity(header.len());
    let regulated = columns.collect_regulations.is_some() || columns.post_regulations.is_some();
    // The distinct pairs of regulations fields seen, by text: most CRIFs repeat a few.
    let mut seen: HashMap<(String, String), u32> = HashMap::new();
    for (index, line) in lines {
        if line.trim_ascii().is_empty() {
            continue;
        }
        fields.clear();
        fields.extend(line.split(delimiter));
        let regulations = if regulated {
            let field = |c: Option<usize>| c.and_then(|i| fields.get(i)).map_or("", |f| f.trim());
            let (collect, post) = (
                field(columns.collect_regulations),
                field(columns.post_regulations),
            );
            if collect.is_empty() && post.is_empty() {
                0
            } else if let Some(i) = seen.get(&(collect.to_string(), post.to_string())) {
                *i
            } else {
                if crif.regulations.is_empty() {
                    crif.regulations.push((Regulations::default(), 0));
                }
                let i = u32::try_from(crif.regulations.len()).unwrap_or(u32::MAX);
                crif.regulations
                    .push((Regulations::read(collect, post), index + 1));
                seen.insert((collect.to_string(), post.to_string()), i);
                i
            }
        } else {
            0
        };
        let risk_type = fields.get(columns.risk_type).map_or("", |f| f.trim_ascii());
        let schedule = columns
            .im_model
            .and_then(|i| fields.get(i))
            .is_some_and(|f| f.trim_ascii().eq_ignore_ascii_case("Schedule"));
        let converted = || -> Result<Option<f64>, CrifError> {
            let Some(result) = result else {
                return Ok(None);
            };
            converted_amount(&fields, &columns, &header, index + 1, result).map(Some)
        };
        if schedule {
            let mut row = parse_schedule_row(&fields, &columns, &header, index + 1)?;
            row.regulations = regulations;
            crif.schedule.push(row);
        } else if risk_type.starts_with("Param_") || risk_type.eq_ignore_ascii_case("Notional") {
            let mut add_on = parse_add_on(&fields, &columns, &header, index + 1)?;
            add_on.regulations = regulations;
            match &mut add_on.kind {
                AddOnKind::FixedAmount { amount_usd } | AddOnKind::Notional { amount_usd, .. } => {
                    if let Some(amount) = converted()? {
                        *amount_usd = amount;
                    }
                }
                AddOnKind::ProductClassMultiplier { .. } | AddOnKind::NotionalFactor { .. } => {}
            }
            crif.add_ons.push(add_on);
        } else {
            let mut row = parse_row(&fields, &columns, &header, index + 1)?;
            row.regulations = regulations;
            if let Some(amount) = converted()? {
                row.amount_usd = amount;
            }
            crif.sensitivities.push(row);
        }
    }
    Ok(crif)
}

/// One CRIF row as the row readers read it: a field trimmed of ASCII blanks, and the error
/// naming the row, the column and the value.
struct RowFields<'a, 'f> {
    fields: &'a [&'f str],
    header: &'a [&'a str],
    row: usize,
}

impl<'f> RowFields<'_, 'f> {
    /// Field `index`, trimmed (empty where the row is short).
    fn field(&self, index: usize) -> &'f str {
        self.fields.get(index).map_or("", |f| f.trim_ascii())
    }

    /// The error for field `index`: `message` with the row, the column and the value.
    fn bad(&self, index: usize, message: impl Into<String>) -> CrifError {
        CrifError::Field {
            row: self.row,
            column: self.header.get(index).map_or("", |h| h.trim()).to_string(),
            value: self.field(index).to_string(),
            message: message.into(),
        }
    }
}

/// `Amount` converted from `AmountCurrency` into the result currency.
fn converted_amount(
    fields: &[&str],
    columns: &Columns,
    header: &[&str],
    row: usize,
    result: &ResultCurrency<'_>,
) -> Result<f64, CrifError> {
    let line = RowFields {
        fields,
        header,
        row,
    };
    let field = |index: usize| line.field(index);
    let bad = |index: usize, message: String| line.bad(index, message);
    let amount_column = columns.amount.ok_or(CrifError::MissingColumn("Amount"))?;
    let currency_column = columns
        .amount_currency
        .ok_or(CrifError::MissingColumn("AmountCurrency"))?;
    let amount = field(amount_column)
        .parse::<f64>()
        .ok()
        .filter(|a| a.is_finite() && a.abs() <= AMOUNT_USD_MAX)
        .ok_or_else(|| {
            bad(
                amount_column,
                "expected a finite number within 10^15".into(),
            )
        })?;
    let currency = field(currency_column);
    let rate = result
        .rates
        .rate(currency, result.currency)
        .ok_or_else(|| {
            bad(
                currency_column,
                format!("no FX rate from it to {} (give --fx-rate)", result.currency),
            )
        })?;
    // ORE: fxRate(AmountCurrency + result currency) * Amount.
    let converted = rate * amount;
    if converted.is_finite() && converted.abs() <= AMOUNT_USD_MAX {
        Ok(converted)
    } else {
        Err(bad(amount_column, "beyond 10^15 once converted".into()))
    }
}

/// Reads a row with `im_model` Schedule: a trade's `PV` or `Notional` (ORE's
/// `IMScheduleCalculator::collectTradeData`).
fn parse_schedule_row(
    fields: &[&str],
    columns: &Columns,
    header: &[&str],
    row: usize,
) -> Result<ScheduleRow, CrifError> {
    let line = RowFields {
        fields,
        header,
        row,
    };
    let field = |index: usize| line.field(index);
    let bad = |index: usize, message: &str| line.bad(index, message);
    let kind = match field(columns.risk_type) {
        t if t.eq_ignore_ascii_case("PV") => ScheduleKind::Pv,
        t if t.eq_ignore_ascii_case("Notional") => ScheduleKind::Notional,
        _ => {
            return Err(bad(
                columns.risk_type,
                "a Schedule row is a PV or a Notional",
            ));
        }
    };
    let product_class =
        ScheduleProductClass::parse(field(columns.product_class)).ok_or_else(|| {
            bad(
                columns.product_class,
                "expected a schedule product class: Rates, FX, Credit, Equity, Commodity or Other",
            )
        })?;
    let trade = columns
        .trade_id
        .ok_or(CrifError::MissingColumn("TradeID"))?;
    let end = columns
        .end_date
        .ok_or(CrifError::MissingColumn("end_date"))?;
    let end_date = parse_date(field(end)).ok_or_else(|| bad(end, "expected a date, YYYY-MM-DD"))?;
    let amount_usd = field(columns.amount_usd)
        .parse::<f64>()
        .ok()
        .filter(|a| a.is_finite() && a.abs() <= AMOUNT_USD_MAX)
        .ok_or_else(|| bad(columns.amount_usd, "expected a finite number within 10^15"))?;
    Ok(ScheduleRow {
        netting_set: columns
            .netting_set
            .map(|i| CompactString::from(field(i)))
            .unwrap_or_default(),
        trade_id: CompactString::from(field(trade)),
        product_class,
        kind,
        amount_usd,
        end_date,
        regulations: 0,
        row,
    })
}

/// Reads an add-on row (`Param_*` or `Notional`).
fn parse_add_on(
    fields: &[&str],
    columns: &Columns,
    header: &[&str],
    row: usize,
) -> Result<AddOn, CrifError> {
    let line = RowFields {
        fields,
        header,
        row,
    };
    let field = |index: usize| line.field(index);
    let bad = |index: usize, message: String| line.bad(index, message);
    if !field(columns.product_class).is_empty() {
        return Err(bad(
            columns.product_class,
            "an add-on row has no product class".into(),
        ));
    }
    let number = |index: usize| -> Result<f64, CrifError> {
        field(index)
            .parse::<f64>()
            .ok()
            .filter(|a| a.is_finite() && a.abs() <= AMOUNT_USD_MAX)
            .ok_or_else(|| bad(index, "expected a finite number within 10^15".into()))
    };
    let amount = || -> Result<f64, CrifError> {
        let index = columns.amount.ok_or(CrifError::MissingColumn("Amount"))?;
        number(index)
    };
    let qualifier = CompactString::from(field(columns.qualifier));
    let risk_type = field(columns.risk_type);
    let kind = if risk_type.eq_ignore_ascii_case("Param_ProductClassMultiplier") {
        let product_class = ProductClass::parse(&qualifier).ok_or_else(|| {
            bad(
                columns.qualifier,
                "expected the product class multiplied: RatesFX, Credit, Equity or Commodity"
                    .into(),
            )
        })?;
        let factor = amount()?;
        if factor < 0.0 {
            return Err(bad(
                columns.amount.unwrap_or(columns.amount_usd),
                "a multiplier is at least 0".into(),
            ));
        }
        AddOnKind::ProductClassMultiplier {
            product_class,
            factor,
        }
    } else if risk_type.eq_ignore_ascii_case("Param_AddOnFixedAmount") {
        AddOnKind::FixedAmount {
            amount_usd: number(columns.amount_usd)?,
        }
    } else if risk_type.eq_ignore_ascii_case("Param_AddOnNotionalFactor") {
        AddOnKind::NotionalFactor {
            qualifier,
            factor_percent: amount()?,
        }
    } else if risk_type.eq_ignore_ascii_case("Notional") {
        AddOnKind::Notional {
            qualifier,
            amount_usd: number(columns.amount_usd)?,
        }
    } else {
        return Err(bad(columns.risk_type, "not a SIMM parameter".into()));
    };
    Ok(AddOn {
        netting_set: columns
            .netting_set
            .map(|i| CompactString::from(field(i)))
            .unwrap_or_default(),
        kind,
        regulations: 0,
    })
}

/// An FX volatility qualifier as one risk factor: upper case, delimiters (`/.,-_|;: `) removed,
/// the two currencies in alphabetical order (`USDEUR` and `EUR/USD` are both `EURUSD`: the
/// volatility of a pair is the volatility of its inverse), as ORE files them.
fn fx_pair(text: &str) -> String {
    let joined: String = text
        .chars()
        .filter(|c| !"/.,-_|;: ".contains(*c))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if joined.len() != 6 || !joined.is_ascii() {
        return joined;
    }
    let (first, second) = joined.split_at(3);
    if first > second {
        format!("{second}{first}")
    } else {
        joined
    }
}

fn parse_row(
    fields: &[&str],
    columns: &Columns,
    header: &[&str],
    row: usize,
) -> Result<Sensitivity, CrifError> {
    let line = RowFields {
        fields,
        header,
        row,
    };
    let field = |index: usize| line.field(index);
    let bad = |index: usize, message: String| line.bad(index, message);
    let risk_text = field(columns.risk_type);
    let risk_type = RiskType::parse(risk_text).ok_or_else(|| {
        if NOT_COVERED
            .iter()
            .any(|n| n.eq_ignore_ascii_case(risk_text))
        {
            CrifError::NotCovered {
                row,
                risk_type: risk_text.to_string(),
            }
        } else {
            bad(columns.risk_type, "not a SIMM risk type".into())
        }
    })?;
    let product_class = ProductClass::parse(field(columns.product_class)).ok_or_else(|| {
        bad(
            columns.product_class,
            "expected RatesFX, Credit, Equity or Commodity".into(),
        )
    })?;
    let qualifier: CompactString = match risk_type {
        RiskType::Fx
        | RiskType::IrCurve
        | RiskType::Inflation
        | RiskType::XccyBasis
        | RiskType::IrVol
        | RiskType::InflationVol => field(columns.qualifier).to_ascii_uppercase().into(),
        RiskType::FxVol => fx_pair(field(columns.qualifier)).into(),
        _ => CompactString::from(field(columns.qualifier)),
    };
    let currency = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase());
    let bucket_text = field(columns.bucket);
    let numbered = |max: u8, residual: bool, what: &str| {
        Bucket::parse(bucket_text)
            .filter(|b| match b {
                Bucket::Numbered(n) => *n <= max,
                Bucket::Residual => residual,
                Bucket::None => false,
            })
            .ok_or_else(|| bad(columns.bucket, format!("expected {what}")))
    };
    let bucket = match risk_type {
        // Interest rate buckets are the currency's volatility group, found from the qualifier.
        RiskType::Fx
        | RiskType::FxVol
        | RiskType::BaseCorr
        | RiskType::IrCurve
        | RiskType::Inflation
        | RiskType::XccyBasis
        | RiskType::IrVol
        | RiskType::InflationVol => Bucket::None,
        RiskType::Equity | RiskType::EquityVol => numbered(
            crate::calibration::EQUITY_BUCKETS,
            true,
            "an equity bucket 1-12 or Residual",
        )?,
        RiskType::Commodity | RiskType::CommodityVol => numbered(
            crate::calibration::COMMODITY_BUCKETS,
            false,
            "a commodity bucket 1-17",
        )?,
        RiskType::CreditQ | RiskType::CreditVol => numbered(
            crate::calibration::CREDIT_QUALIFYING_BUCKETS,
            true,
            "a qualifying credit bucket 1-12 or Residual",
        )?,
        RiskType::CreditNonQ | RiskType::CreditVolNonQ => numbered(
            crate::calibration::CREDIT_NON_QUALIFYING_BUCKETS,
            true,
            "a non-qualifying credit bucket 1-2 or Residual",
        )?,
    };
    match risk_type {
        RiskType::Fx
        | RiskType::IrCurve
        | RiskType::Inflation
        | RiskType::XccyBasis
        | RiskType::IrVol
        | RiskType::InflationVol
            if !currency(&qualifier) =>
        {
            return Err(bad(
                columns.qualifier,
                "expected a three-letter currency code".into(),
            ));
        }
        RiskType::FxVol
            if !(qualifier.len() == 6
                && qualifier.is_ascii()
                && currency(&qualifier[..3])
                && currency(&qualifier[3..])) =>
        {
            return Err(bad(
                columns.qualifier,
                "expected a currency pair such as EURUSD".into(),
            ));
        }
        _ if qualifier.is_empty() => {
            return Err(bad(columns.qualifier, "a qualifier is required".into()));
        }
        _ => {}
    }
    let tenor = if risk_type.is_credit() {
        Some(
            Tenor::parse(field(columns.label1))
                .filter(|t| Tenor::CREDIT.contains(t))
                .ok_or_else(|| {
                    bad(
                        columns.label1,
                        "expected a credit tenor: 1y, 2y, 3y, 5y or 10y".into(),
                    )
                })?,
        )
    } else if risk_type.is_vega() || risk_type == RiskType::IrCurve {
        Some(Tenor::parse(field(columns.label1)).ok_or_else(|| {
            bad(
                columns.label1,
                "expected a tenor: 2w, 1m, 3m, 6m, 1y, 2y, 3y, 5y, 10y, 15y, 20y or 30y".into(),
            )
        })?)
    } else {
        None
    };
    let label2: CompactString = if risk_type.is_credit() {
        columns
            .label2
            .map(|i| CompactString::from(field(i)))
            .unwrap_or_default()
    } else if risk_type == RiskType::IrCurve {
        let text = columns.label2.map_or("", field);
        SUB_CURVES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(text))
            .map(|c| CompactString::from(*c))
            .ok_or_else(|| {
                bad(
                    columns.label2.unwrap_or(columns.label1),
                    format!("expected a sub-curve: {}", SUB_CURVES.join(", ")),
                )
            })?
    } else {
        CompactString::default()
    };
    let amount_usd = field(columns.amount_usd)
        .parse::<f64>()
        .ok()
        .filter(|a| a.is_finite())
        .ok_or_else(|| bad(columns.amount_usd, "expected a finite number".into()))?;
    if amount_usd.abs() > AMOUNT_USD_MAX {
        return Err(bad(
            columns.amount_usd,
            "beyond 10^15 USD: no sensitivity is that large, and margins built on it would \
             overflow"
                .into(),
        ));
    }
    Ok(Sensitivity {
        netting_set: columns
            .netting_set
            .map(|i| CompactString::from(field(i)))
            .unwrap_or_default(),
        product_class,
        risk_type,
        qualifier,
        bucket,
        tenor,
        label2,
        amount_usd,
        regulations: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fx_rates_invert_and_cross_through_usd() {
        let rates = FxRates::parse(["EURUSD=1.085", "GBPUSD=1.27"]).unwrap();
        assert_eq!(rates.rate("EUR", "USD"), Some(1.085));
        assert_eq!(rates.rate("USD", "EUR"), Some(1.0 / 1.085));
        assert_eq!(rates.rate("GBP", "EUR"), Some(1.27 * (1.0 / 1.085)));
        assert_eq!(rates.rate("EUR", "EUR"), Some(1.0));
        assert_eq!(rates.rate("JPY", "EUR"), None);
        assert_eq!(
            FxRates::parse(["EUR/USD=1.1"]),
            Err(CrifError::FxRate("EUR/USD=1.1".into()))
        );
    }

    const HEADER: &str = "TradeID\tPortfolioID\tProductClass\tRiskType\tQualifier\tBucket\tLabel1\tLabel2\tAmountUSD";

    #[test]
    fn reads_a_vega_row() {
        let text = format!("{HEADER}\nt1\tNS\tEquity\tRisk_EquityVol\tBTC\t12\t1y\t\t1000\n");
        let rows = parse(&text).map(|c| c.sensitivities);
        assert_eq!(
            rows,
            Ok(vec![Sensitivity {
                netting_set: "NS".into(),
                product_class: ProductClass::Equity,
                risk_type: RiskType::EquityVol,
                qualifier: "BTC".into(),
                bucket: Bucket::Numbered(12),
                tenor: Some(Tenor::Y1),
                label2: CompactString::default(),
                amount_usd: 1000.0,
                regulations: 0,
            }])
        );
    }

    #[test]
    fn an_fx_volatility_pair_is_one_risk_factor_whichever_way_written() {
        assert_eq!(fx_pair("USDEUR"), "EURUSD");
        assert_eq!(fx_pair("eur/usd"), "EURUSD");
        assert_eq!(fx_pair("CHFGBP"), "CHFGBP");
    }

    #[test]
    fn a_non_ascii_fx_volatility_pair_is_refused_not_sliced() {
        let text = format!("{HEADER}\nt1\tNS\tRatesFX\tRisk_FXVol\tAé€\t\t1y\t\t1\n");
        assert!(
            matches!(parse(&text), Err(CrifError::Field { row: 2, column, .. }) if column == "Qualifier")
        );
    }

    #[test]
    fn a_bad_amount_names_row_and_column() {
        let text = format!("{HEADER}\nt1\tNS\tEquity\tRisk_Equity\tBTC\t12\t\t\tlots\n");
        assert_eq!(
            parse(&text),
            Err(CrifError::Field {
                row: 2,
                column: "AmountUSD".into(),
                value: "lots".into(),
                message: "expected a finite number".into(),
            })
        );
    }

    #[test]
    fn an_equity_bucket_past_twelve_is_refused() {
        let text = format!("{HEADER}\nt1\tNS\tEquity\tRisk_Equity\tBTC\t13\t\t\t1\n");
        assert!(
            matches!(parse(&text), Err(CrifError::Field { row: 2, column, .. }) if column == "Bucket")
        );
    }

    #[test]
    fn schedule_rows_are_named_as_not_covered() {
        let text = format!("{HEADER}\n\nt1\tNS\tRatesFX\tPV\tSwap\t\t\t\t1\n");
        assert_eq!(
            parse(&text),
            Err(CrifError::NotCovered {
                row: 3,
                risk_type: "PV".into()
            })
        );
    }

    #[test]
    fn an_add_on_with_a_product_class_is_refused() {
        let text = format!("{HEADER}\nt1\tNS\tEquity\tParam_AddOnFixedAmount\t\t\t\t\t1\n");
        assert!(
            matches!(parse(&text), Err(CrifError::Field { row: 2, column, .. }) if column == "ProductClass")
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        assert_eq!(
            parse("ProductClass,RiskType,Qualifier,Bucket,Label1\n"),
            Err(CrifError::MissingColumn("AmountUSD"))
        );
    }
}
