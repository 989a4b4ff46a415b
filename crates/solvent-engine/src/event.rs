//! Events (DESIGN.md 9, file format in section 11): what happens to the engine, each with a
//! sequence number and a timestamp. Time enters the engine only here.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use solvent_core::error::InputError;
use solvent_core::money::{
    Amount, MAX_LEVERAGE, Price, Quantity, check_leverage, deserialize_decimal,
};
use solvent_core::portfolio::MarginMode;
use solvent_core::vol_scaled::{ControlName, ModelName};
use solvent_risk::vol_scaled::RangeBound;

mod typed;

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy: the position grows (or a short shrinks).
    Buy,
    /// Sell.
    Sell,
}

fn external() -> String {
    crate::ledger::EXTERNAL.to_owned()
}

fn serialize_decimal<S: serde::Serializer>(
    value: &Decimal,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&value.normalize())
}

/// Money in from outside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deposit {
    /// Account.
    pub account: String,
    /// Asset.
    pub asset: String,
    /// Amount, positive.
    pub amount: Amount,
}

/// Money out, up to what is withdrawable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    /// Account.
    pub account: String,
    /// Asset.
    pub asset: String,
    /// Amount, positive.
    pub amount: Amount,
}

/// Money between two of the engine's accounts (a sub-account, a desk).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Paying account.
    pub from: String,
    /// Receiving account.
    pub to: String,
    /// Asset.
    pub asset: String,
    /// Amount, positive.
    pub amount: Amount,
}

/// A trade: the account's position changes at `price`; the counterparty (another account or
/// `external`) takes the other side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    /// Account.
    pub account: String,
    /// Instrument.
    pub instrument: String,
    /// Buy or sell.
    pub side: Side,
    /// Size, positive.
    pub size: Quantity,
    /// Price (USD per coin; option premium in the settlement currency).
    pub price: Price,
    /// Fee paid by the account (negative: a rebate), in the settlement asset.
    #[serde(default)]
    pub fee: Amount,
    /// The other side: an account or `external`.
    #[serde(default = "external")]
    pub counterparty: String,
}

/// An index price from one source (the engine takes the median of its fresh sources).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexPrice {
    /// Underlying or asset index.
    pub underlying: String,
    /// Price.
    pub price: Price,
    /// Source name (default: the only source).
    #[serde(default)]
    pub source: Option<String>,
}

/// A mark price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkPrice {
    /// Instrument.
    pub instrument: String,
    /// Price.
    pub price: Price,
}

/// One expiry's implied-volatility smile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolSurface {
    /// Underlying.
    pub underlying: String,
    /// Expiry (`27DEC26`, `2026-12-27` or RFC 3339).
    pub expiry: String,
    /// Strikes, ascending.
    pub strikes: Vec<f64>,
    /// Volatilities.
    pub vols: Vec<f64>,
}

/// A funding payment: every position pays `size x contract size x mark x rate` (longs pay
/// shorts when positive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Funding {
    /// Perpetual.
    pub instrument: String,
    /// Funding rate for the period.
    #[serde(
        deserialize_with = "deserialize_decimal",
        serialize_with = "serialize_decimal"
    )]
    pub rate: Decimal,
}

/// Expiry: every position in the instrument is closed at `price`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    /// Future or option.
    pub instrument: String,
    /// Settlement price (USD per coin for futures; the option's settlement value per unit).
    pub price: Price,
}

/// Leverage chosen for an instrument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLeverage {
    /// Account.
    pub account: String,
    /// Instrument.
    pub instrument: String,
    /// Leverage.
    #[serde(
        deserialize_with = "deserialize_decimal",
        serialize_with = "serialize_decimal"
    )]
    pub leverage: Decimal,
}

/// Cross or portfolio margin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMarginMode {
    /// Account.
    pub account: String,
    /// Mode.
    pub mode: MarginMode,
}

/// Isolated margin of a position: moved from or to the cross wallet so the position holds
/// `amount` (zero returns it to cross).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetIsolatedMargin {
    /// Account.
    pub account: String,
    /// Instrument.
    pub instrument: String,
    /// Target isolated margin, in the settlement asset.
    pub amount: Amount,
}

/// The equity an account keeps beyond its initial margin (DESIGN.md 7): `none`, `mm:1.5`
/// (equity at least 1.5 x MM) or `sigma:3:1` (survive a 3-sigma move over 1 day above MM).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBufferPolicy {
    /// Account.
    pub account: String,
    /// The policy, as `solvent allocate --buffer` writes it.
    pub policy: String,
}

/// Where an automated top-up takes the money from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpSource {
    /// The account's external wallet: a deposit made on its behalf.
    External,
    /// The account's own cross pool (dynamic reallocation to isolated positions), never below
    /// `max(IM, buffer)`.
    CrossPool,
}

/// An automated top-up: when health falls below `trigger_health`, move collateral from
/// `source` to restore `target_health`, within caps per event and per UTC day. With an
/// `instrument`, the rule serves that isolated position; without, an external source tops up
/// the cross pool and the cross pool source serves every isolated position (water-filling when
/// it cannot save them all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAutoTopUp {
    /// Account.
    pub account: String,
    /// The isolated position served, if only one.
    #[serde(default)]
    pub instrument: Option<String>,
    /// Where the money comes from.
    pub source: TopUpSource,
    /// Health below which the rule acts.
    #[serde(
        deserialize_with = "deserialize_decimal",
        serialize_with = "serialize_decimal"
    )]
    pub trigger_health: Decimal,
    /// Health it restores.
    #[serde(
        deserialize_with = "deserialize_decimal",
        serialize_with = "serialize_decimal"
    )]
    pub target_health: Decimal,
    /// At most this much per event (settlement asset).
    pub per_event_cap: Amount,
    /// At most this much per UTC day.
    pub per_day_cap: Amount,
}

/// A new instrument, written as one `[instruments.NAME]` table of the venue file would be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListInstrument {
    /// Instrument name.
    pub name: String,
    /// Its specification (`kind`, `style`, `underlying`, `settlement`, `contract_size`,
    /// `size_step`, `margin`, ...; docs/venue-format.md).
    pub spec: serde_json::Value,
}

/// New venue parameters: a whole `VENUE.toml` text. Every account is re-examined under them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateVenue {
    /// The venue file's text.
    pub venue: String,
}

/// The volatility-scaled range of an underlying (docs/vol-scaled-ranges.md): the forecast made
/// at the edge from the daily closes (`solvent forecast`, the same computation as `solvent
/// margin --history`), and the range it sets. From this event on, the engine margins portfolio
/// accounts on the underlying's grid scaled to `range` and re-examines those holding it.
/// Numbers are decimal strings (read exactly: `range` is the grid's factor, and the engine's
/// requirement must be the CLI's to the bit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRange {
    /// Underlying whose grid the venue scales (`[portfolio_margin.vol_scaled.UNDERLYING]`).
    pub underlying: String,
    /// The close the forecast was made at (`2026-01-05`).
    pub as_of: jiff::civil::Date,
    /// The forecast model; must be the venue's.
    pub model: ModelName,
    /// The anti-procyclicality control; must be the venue's.
    pub control: ControlName,
    /// Daily volatility forecast, a fraction (`"0.0158"`).
    #[serde(with = "float_text")]
    pub sigma_daily: f64,
    /// `k x sigma x sqrt(margin period)`, before the control and the floor.
    #[serde(with = "float_text")]
    pub base: f64,
    /// The range: the largest standard move of the scaled grid, in `[floor, 1)`.
    #[serde(with = "float_text")]
    pub range: f64,
    /// What bound the range.
    pub bound: RangeBound,
}

/// A float written as a decimal string, read exactly (`str::parse`, correctly rounded; Rust's
/// `Display` writes the shortest text that reads back to the same bits).
mod float_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse::<f64>().map_err(|_| {
            serde::de::Error::custom(format!("expected a decimal string, found {text:?}"))
        })
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Money in from outside.
    Deposit(Deposit),
    /// Money out, up to what is withdrawable.
    Withdraw(Withdraw),
    /// Money between two of the engine's accounts (a sub-account, a desk).
    Transfer(Transfer),
    /// A trade: the account's position changes at `price`; the counterparty (another account or
    Fill(Fill),
    /// An index price from one source (the engine takes the median of its fresh sources).
    IndexPrice(IndexPrice),
    /// A mark price.
    MarkPrice(MarkPrice),
    /// One expiry's implied-volatility smile.
    VolSurface(VolSurface),
    /// A funding payment: every position pays `size x contract size x mark x rate` (longs pay
    Funding(Funding),
    /// Expiry: every position in the instrument is closed at `price`.
    Settlement(Settlement),
    /// Leverage chosen for an instrument.
    SetLeverage(SetLeverage),
    /// Cross or portfolio margin.
    SetMarginMode(SetMarginMode),
    /// Isolated margin of a position: moved from or to the cross wallet so the position holds
    SetIsolatedMargin(SetIsolatedMargin),
    /// The equity an account keeps beyond its initial margin.
    SetBufferPolicy(SetBufferPolicy),
    /// An automated top-up.
    SetAutoTopUp(SetAutoTopUp),
    /// A new instrument.
    ListInstrument(ListInstrument),
    /// New venue parameters.
    UpdateVenue(UpdateVenue),
    /// A volatility-scaled range of an underlying.
    ScenarioRange(ScenarioRange),
}

/// Largest health an automated top-up may name as trigger or target (equity 100 times the
/// maintenance margin): beyond it a top-up is a deposit of everything allowed, not a rule.
const MAX_TOP_UP_HEALTH: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

/// Largest funding rate (in magnitude) the parser passes on to the engine.
const MAX_FUNDING_RATE: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

/// A field problem: `(field path, what is wrong)`.
type FieldProblem = (String, String);

/// An id or name that must say something: empty or blank ids would open accounts nobody can
/// name again and instruments no venue lists.
fn named(field: &str, value: &str) -> Result<(), FieldProblem> {
    if value.trim().is_empty() {
        return Err((field.to_owned(), "must not be empty or blank".to_owned()));
    }
    Ok(())
}

/// Longest id an event may give something the engine keeps (an account, an index source, an
/// instrument it lists), in bytes: the bound of a client id in the service.
pub const MAX_ID_BYTES: usize = 128;

/// An id the engine keeps once an event names it (an account, a source, a listed instrument):
/// [`named`], and no spaces around it or control characters in it (no account key could be
/// scoped to ` a1`, no log line shows `a\u{0}1` as it is), at most [`MAX_ID_BYTES`].
fn id(field: &str, value: &str) -> Result<(), FieldProblem> {
    named(field, value)?;
    let problem = if value.trim() != value {
        "must not begin or end with a space".to_owned()
    } else if value.chars().any(char::is_control) {
        "must not hold control characters".to_owned()
    } else if value.len() > MAX_ID_BYTES {
        format!(
            "must be at most {MAX_ID_BYTES} bytes, found {}",
            value.len()
        )
    } else {
        return Ok(());
    };
    Err((field.to_owned(), problem))
}

/// A health threshold of a top-up rule: above zero and at most [`MAX_TOP_UP_HEALTH`].
fn health(field: &str, value: Decimal) -> Result<(), FieldProblem> {
    if value <= Decimal::ZERO || value > MAX_TOP_UP_HEALTH {
        return Err((
            field.to_owned(),
            format!("must be above 0 and at most {MAX_TOP_UP_HEALTH}, found {value}"),
        ));
    }
    Ok(())
}

impl Event {
    /// Checks what the types cannot: ids not blank, leverage, funding rates, top-up healths and
    /// volatility smiles within their bounds, so that nothing the engine computes from an
    /// accepted event can overflow or divide by nothing.
    fn check(&self) -> Result<(), FieldProblem> {
        match self {
            Self::Deposit(Deposit { account, asset, .. })
            | Self::Withdraw(Withdraw { account, asset, .. }) => {
                id("account", account)?;
                named("asset", asset)
            }
            Self::Transfer(e) => {
                id("from", &e.from)?;
                id("to", &e.to)?;
                named("asset", &e.asset)
            }
            Self::Fill(e) => {
                id("account", &e.account)?;
                named("instrument", &e.instrument)?;
                id("counterparty", &e.counterparty)
            }
            Self::IndexPrice(e) => {
                named("underlying", &e.underlying)?;
                e.source
                    .as_deref()
                    .map_or(Ok(()), |source| id("source", source))
            }
            Self::MarkPrice(MarkPrice { instrument, .. })
            | Self::Settlement(Settlement { instrument, .. }) => named("instrument", instrument),
            Self::VolSurface(e) => {
                named("underlying", &e.underlying)?;
                named("expiry", &e.expiry)?;
                let smile = solvent_core::market::Smile {
                    strikes: e.strikes.clone(),
                    vols: e.vols.clone(),
                };
                solvent_core::market::validate_smile(&smile).map_err(|problem| {
                    // The smile's message starts with its field (`vols[2]: ...`).
                    match problem.split_once(": ") {
                        Some((field, rest)) if !field.contains(' ') => {
                            (field.to_owned(), rest.to_owned())
                        }
                        _ => ("strikes".to_owned(), problem),
                    }
                })
            }
            Self::Funding(e) => {
                named("instrument", &e.instrument)?;
                // The engine refuses a rate above 1 in magnitude by name (`out_of_range`), as an
                // event of the audited stream; beyond 100 it is no rate at all.
                if e.rate.abs() > MAX_FUNDING_RATE {
                    return Err((
                        "rate".to_owned(),
                        format!(
                            "a funding rate must be between -{MAX_FUNDING_RATE} and {MAX_FUNDING_RATE}, found {}",
                            e.rate
                        ),
                    ));
                }
                Ok(())
            }
            Self::SetLeverage(e) => {
                id("account", &e.account)?;
                named("instrument", &e.instrument)?;
                // Zero and negative leverage reach the engine, which refuses them by name
                // (`invalid_leverage`); a positive leverage below 1 (`1e-20` would multiply a
                // requirement out of range) or one beyond the maximum is refused here.
                if e.leverage > Decimal::ZERO || e.leverage < -MAX_LEVERAGE {
                    check_leverage(e.leverage)
                        .map_err(|problem| ("leverage".to_owned(), problem))?;
                }
                Ok(())
            }
            Self::SetMarginMode(SetMarginMode { account, .. }) => id("account", account),
            Self::SetIsolatedMargin(e) => {
                id("account", &e.account)?;
                named("instrument", &e.instrument)
            }
            Self::SetBufferPolicy(e) => {
                id("account", &e.account)?;
                named("policy", &e.policy)
            }
            Self::SetAutoTopUp(e) => {
                id("account", &e.account)?;
                if let Some(instrument) = &e.instrument {
                    named("instrument", instrument)?;
                }
                health("trigger_health", e.trigger_health)?;
                health("target_health", e.target_health)
            }
            Self::ListInstrument(e) => id("name", &e.name),
            Self::UpdateVenue(e) => named("venue", &e.venue),
            Self::ScenarioRange(e) => {
                named("underlying", &e.underlying)?;
                for (field, value) in [("sigma_daily", e.sigma_daily), ("base", e.base)] {
                    if !(value.is_finite() && value >= 0.0) {
                        return Err((
                            field.to_owned(),
                            format!("must be finite and at least 0, found {value}"),
                        ));
                    }
                }
                if !(e.range > 0.0 && e.range < 1.0) {
                    return Err((
                        "range".to_owned(),
                        format!("must be above 0 and below 1, found {}", e.range),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Reads an event from a JSON object holding its `type` and fields (no `seq` or `ts`: a
    /// service numbers and stamps what it receives), and checks it as a journal line is
    /// checked.
    ///
    /// # Errors
    /// `(field path, problem)`.
    pub fn from_json_object(
        mut object: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, (String, String)> {
        let kind = object
            .remove("type")
            .ok_or_else(|| ("type".to_owned(), "missing".to_owned()))?;
        let kind = kind
            .as_str()
            .ok_or_else(|| {
                (
                    "type".to_owned(),
                    format!("expected a string, found {kind}"),
                )
            })?
            .to_owned();
        let event = Self::from_fields(&kind, serde_json::Value::Object(object))?;
        event.check()?;
        Ok(event)
    }

    /// Reads an event of type `kind` from its fields, naming the field of a problem.
    fn from_fields(kind: &str, fields: serde_json::Value) -> Result<Self, (String, String)> {
        fn read<T: serde::de::DeserializeOwned>(
            fields: serde_json::Value,
        ) -> Result<T, (String, String)> {
            serde_path_to_error::deserialize(fields).map_err(|error| {
                let path = error.path().to_string();
                let problem = error.into_inner().to_string();
                // serde reports a missing field at its parent: name the field itself.
                match problem
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.strip_suffix('`'))
                {
                    Some(field) if path == "." => (field.to_owned(), "missing".to_owned()),
                    _ => (path, problem),
                }
            })
        }
        Ok(match kind {
            "deposit" => Self::Deposit(read(fields)?),
            "withdraw" => Self::Withdraw(read(fields)?),
            "transfer" => Self::Transfer(read(fields)?),
            "fill" => Self::Fill(read(fields)?),
            "index_price" => Self::IndexPrice(read(fields)?),
            "mark_price" => Self::MarkPrice(read(fields)?),
            "vol_surface" => Self::VolSurface(read(fields)?),
            "funding" => Self::Funding(read(fields)?),
            "settlement" => Self::Settlement(read(fields)?),
            "set_leverage" => Self::SetLeverage(read(fields)?),
            "set_margin_mode" => Self::SetMarginMode(read(fields)?),
            "set_isolated_margin" => Self::SetIsolatedMargin(read(fields)?),
            "set_buffer_policy" => Self::SetBufferPolicy(read(fields)?),
            "set_auto_top_up" => Self::SetAutoTopUp(read(fields)?),
            "list_instrument" => Self::ListInstrument(read(fields)?),
            "update_venue" => Self::UpdateVenue(read(fields)?),
            "scenario_range" => Self::ScenarioRange(read(fields)?),
            other => {
                return Err(("type".to_owned(), format!("unknown event type {other:?}")));
            }
        })
    }
}

/// An event with its sequence number and time.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Strictly increasing sequence number.
    pub seq: u64,
    /// When it happened.
    pub ts: Timestamp,
    /// What happened.
    pub event: Event,
}

/// Reads one line of `EVENTS.jsonl`.
///
/// A well-formed line of a common event type is read by a typed reader that borrows its keys
/// from the text (`typed.rs`); anything else, and every error, is read by the general reader,
/// which names the field of a problem. Both give the same event for the same line.
///
/// # Errors
/// [`InputError`] naming the line and field.
pub fn parse_line(origin: &str, line_number: usize, text: &str) -> Result<Envelope, InputError> {
    match typed::parse(text) {
        Some(envelope) => Ok(envelope),
        None => parse_line_general(origin, line_number, text),
    }
}

/// The general reader of a line: through a `serde_json::Value`, naming the line and field of
/// any problem. [`parse_line`] gives the same result faster; this is what it falls back on.
///
/// # Errors
/// [`InputError`] naming the line and field.
pub fn parse_line_general(
    origin: &str,
    line_number: usize,
    text: &str,
) -> Result<Envelope, InputError> {
    let fail = |path: &str, problem: String| {
        InputError::new(origin, format!("line {line_number}: {path}"), problem)
    };
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| fail("(json)", error.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| fail("(top level)", "an event is a JSON object".to_owned()))?;
    let seq = object
        .remove("seq")
        .ok_or_else(|| fail("seq", "missing".to_owned()))?
        .as_u64()
        .ok_or_else(|| fail("seq", "must be a non-negative integer".to_owned()))?;
    let ts_value = object
        .remove("ts")
        .ok_or_else(|| fail("ts", "missing".to_owned()))?;
    let ts = ts_value
        .as_str()
        .and_then(|text| text.parse::<Timestamp>().ok())
        .ok_or_else(|| {
            fail(
                "ts",
                format!("expected an RFC 3339 instant, found {ts_value}"),
            )
        })?;
    let kind = object
        .remove("type")
        .ok_or_else(|| fail("type", "missing".to_owned()))?;
    let kind = kind
        .as_str()
        .ok_or_else(|| fail("type", format!("expected a string, found {kind}")))?
        .to_owned();
    let event = Event::from_fields(&kind, value).map_err(|(path, problem)| fail(&path, problem))?;
    event
        .check()
        .map_err(|(path, problem)| fail(&path, problem))?;
    Ok(Envelope { seq, ts, event })
}

/// Writes an event as one JSON line.
#[must_use]
pub fn to_line(envelope: &Envelope) -> String {
    let mut value = serde_json::to_value(&envelope.event).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("seq".to_owned(), envelope.seq.into());
        object.insert("ts".to_owned(), envelope.ts.to_string().into());
    }
    value.to_string()
}

/// Appends `envelope` as one JSON line (newline included) to `out`: the bytes of [`to_line`],
/// written field by field for the events a population is made of (index prices, deposits,
/// leverage settings, fills) instead of through a `serde_json::Value` (a map of owned keys per
/// event, four times slower: `solvent population` writes millions); other events go through
/// [`to_line`]. Keys in alphabetical order, strings escaped by `serde_json`, decimals
/// normalised, as `to_line` writes them.
pub fn write_line(envelope: &Envelope, out: &mut Vec<u8>) {
    let mut fields = Fields { out, first: true };
    match &envelope.event {
        Event::IndexPrice(e) => {
            fields.decimal("price", e.price.value());
            fields.seq_source_ts_type(envelope, e.source.as_deref(), "index_price");
            fields.text("underlying", &e.underlying);
        }
        Event::Deposit(e) => {
            fields.text("account", &e.account);
            fields.decimal("amount", e.amount.value());
            fields.text("asset", &e.asset);
            fields.seq_ts_type(envelope, "deposit");
        }
        Event::SetLeverage(e) => {
            fields.text("account", &e.account);
            fields.text("instrument", &e.instrument);
            fields.decimal("leverage", e.leverage);
            fields.seq_ts_type(envelope, "set_leverage");
        }
        Event::Fill(e) => {
            fields.text("account", &e.account);
            fields.text("counterparty", &e.counterparty);
            fields.decimal("fee", e.fee.value());
            fields.text("instrument", &e.instrument);
            fields.decimal("price", e.price.value());
            fields.raw("seq", &envelope.seq.to_string());
            fields.text(
                "side",
                match e.side {
                    Side::Buy => "buy",
                    Side::Sell => "sell",
                },
            );
            fields.decimal("size", e.size.value());
            fields.text("ts", &envelope.ts.to_string());
            fields.text("type", "fill");
        }
        _ => {
            fields.out.extend_from_slice(to_line(envelope).as_bytes());
            fields.out.push(b'\n');
            return;
        }
    }
    fields.out.extend_from_slice(b"}\n");
}

/// One JSON object being written by [`write_line`].
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Fields<'_> {
    fn key(&mut self, key: &str) {
        self.out.push(if self.first { b'{' } else { b',' });
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
    }

    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        // serde_json's own escaping; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    fn decimal(&mut self, key: &str, value: Decimal) {
        self.text(key, &value.normalize().to_string());
    }

    fn seq_ts_type(&mut self, envelope: &Envelope, kind: &str) {
        self.raw("seq", &envelope.seq.to_string());
        self.text("ts", &envelope.ts.to_string());
        self.text("type", kind);
    }

    fn seq_source_ts_type(&mut self, envelope: &Envelope, source: Option<&str>, kind: &str) {
        self.raw("seq", &envelope.seq.to_string());
        match source {
            Some(source) => self.text("source", source),
            None => self.raw("source", "null"),
        }
        self.text("ts", &envelope.ts.to_string());
        self.text("type", kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `write_line` writes the bytes of `to_line` (and its newline): every event of two
    /// populations, and the fields a population does not exercise (a named source, strings
    /// that need escaping, a sell with a rebate, an event it hands to `to_line`).
    #[test]
    fn write_line_writes_what_to_line_writes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let venue =
            solvent_core::venue::Venue::from_toml(path, &text).unwrap_or_else(|e| panic!("{e}"));
        let mut events = Vec::new();
        for seed in [1, 2] {
            let params = crate::population::PopulationParams {
                accounts: 300,
                seed,
                ..crate::population::PopulationParams::default()
            };
            let population =
                crate::population::generate(&venue, &params).unwrap_or_else(|e| panic!("{e}"));
            events.extend(population.events);
        }
        for line in [
            r#"{"seq":1,"ts":"2026-01-01T00:00:00.5Z","type":"index_price","underlying":"BTC","price":"100000.50","source":"bin\"ance"}"#,
            r#"{"seq":2,"ts":"2026-01-01T00:00:01Z","type":"deposit","account":"a\\b\u00e9\"c","asset":"USDT","amount":"10.000"}"#,
            r#"{"seq":3,"ts":"2026-01-01T00:00:02Z","type":"fill","account":"a","instrument":"BTCUSDT","side":"sell","size":"0.100","price":"100000","fee":"-1.5","counterparty":"b"}"#,
            r#"{"seq":4,"ts":"2026-01-01T00:00:03Z","type":"set_leverage","account":"a","instrument":"BTCUSDT","leverage":"12.50"}"#,
            r#"{"seq":5,"ts":"2026-01-01T00:00:04Z","type":"withdraw","account":"a","asset":"USDT","amount":"1"}"#,
        ] {
            events.push(parse_line("w.jsonl", 1, line).unwrap_or_else(|e| panic!("{e}")));
        }
        let mut written = Vec::new();
        for event in &events {
            written.clear();
            write_line(event, &mut written);
            let expected = to_line(event) + "\n";
            assert_eq!(String::from_utf8_lossy(&written), expected);
        }
    }

    #[test]
    fn design_examples_parse() {
        let deposit = parse_line(
            "e.jsonl",
            1,
            r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"deposit","account":"a1","asset":"USDT","amount":"10000"}"#,
        )
        .unwrap();
        assert_eq!(deposit.seq, 1);
        assert!(matches!(deposit.event, Event::Deposit(ref d) if d.account == "a1"));
        let fill = parse_line(
            "e.jsonl",
            3,
            r#"{"seq":3,"ts":"2026-01-01T00:00:02Z","type":"fill","account":"a1","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","fee":"6","counterparty":"external"}"#,
        )
        .unwrap();
        assert!(matches!(fill.event, Event::Fill(ref f) if f.side == Side::Buy));
        let round_trip = parse_line("e.jsonl", 3, &to_line(&fill)).unwrap();
        assert_eq!(round_trip, fill);
    }

    #[test]
    fn bad_lines_name_the_line_and_field() {
        let cases = [
            (
                r#"{"ts":"2026-01-01T00:00:00Z","type":"deposit"}"#,
                "line 7: seq",
            ),
            (
                r#"{"seq":1,"ts":"yesterday","type":"deposit"}"#,
                "line 7: ts",
            ),
            (
                r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"teleport"}"#,
                "line 7: type",
            ),
            (
                r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"deposit","account":"a","asset":"USDT","amount":"1","colour":1}"#,
                "line 7: colour",
            ),
            (
                r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"mark_price","instrument":"X","price":"-1"}"#,
                "line 7: price",
            ),
            ("not json", "line 7: (json)"),
        ];
        for (text, path) in cases {
            let error = parse_line("e.jsonl", 7, text).unwrap_err();
            assert!(error.path.starts_with(path), "{text}: {error}");
        }
    }
}
