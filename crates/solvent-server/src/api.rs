//! The HTTP routes (DESIGN.md 10), named after what users know from Deribit and OKX.
//!
//! Bodies, account ids and query strings are read by [`crate::request`], so that every
//! malformed request gets the one error shape with the field named (axum's own extractors
//! answer in plain text). Writes go through the engine's queue; reads are answered from the
//! latest durable [`View`] on the runtime's blocking pool, never from the engine's thread.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use solvent_core::market::Market;
use solvent_core::money::{Price, Quantity, parse_decimal};
use solvent_core::portfolio::Portfolio;
use solvent_core::shock::read_shocks;
use solvent_engine::event::Event;
use solvent_risk::account::{Detail, build_report};
use solvent_risk::checks;
use solvent_risk::whatif::{Trade, what_if};
use solvent_risk::{AccountState, MarketView, RiskError};

use crate::core::{CoreHandle, Incoming, SubmitError};
use crate::error::ApiError;
use crate::feed::Channel;
use crate::keys::{KeyRing, Scope};
use crate::request::{AccountId, BodyBytes, Params, parse};
use crate::view::View;

/// Events one request may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// The largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The write path.
    pub core: CoreHandle,
    /// The keys.
    pub keys: Arc<RwLock<KeyRing>>,
    /// Requests per second each key may make (a token bucket with a burst of twice that).
    pub rate_limit: f64,
    pub(crate) buckets: Arc<Mutex<std::collections::HashMap<String, Bucket>>>,
    pub(crate) ranking: Arc<Mutex<Option<Ranking>>>,
    /// One cascade at a time (each runs the whole book on a copy of the engine).
    pub(crate) cascades: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// State over `core` with `keys`, limiting each key to `rate_limit` requests per second.
    #[must_use]
    pub fn new(core: CoreHandle, keys: KeyRing, rate_limit: f64) -> Self {
        Self {
            core,
            keys: Arc::new(RwLock::new(keys)),
            rate_limit,
            buckets: Arc::default(),
            ranking: Arc::default(),
            cascades: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// The latest durable view.
    #[must_use]
    pub fn view(&self) -> Arc<View> {
        self.core.shared().view.load_full()
    }
}

pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every route of `/v1`: method, path (axum syntax) and handler. The router and the OpenAPI
/// document's check are both built from this table, so neither can list a route the other lacks.
pub fn route_table() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("POST", "/v1/events", post(post_events)),
        ("GET", "/v1/accounts", get(list_accounts)),
        ("GET", "/v1/accounts/{id}", get(get_account)),
        ("GET", "/v1/accounts/{id}/risk-matrix", get(risk_matrix)),
        ("GET", "/v1/accounts/{id}/history", get(account_history)),
        ("POST", "/v1/margin", post(post_margin)),
        ("POST", "/v1/margin/order", post(post_margin_order)),
        ("POST", "/v1/whatif", post(post_whatif)),
        ("POST", "/v1/allocate", post(post_allocate)),
        ("POST", "/v1/stress", post(post_stress)),
        ("POST", "/v1/cascade", post(post_cascade)),
        ("GET", "/v1/insurance-fund", get(insurance_fund)),
        ("GET", "/v1/liquidations", get(liquidations)),
        ("GET", "/v1/prices", get(prices)),
        ("GET", "/v1/state-hash", get(state_hash)),
        ("GET", "/v1/journal", get(journal)),
        ("GET", "/v1/key", get(key)),
        ("GET", "/v1/ws", get(crate::ws::upgrade)),
    ]
}

/// The routes of `/v1`.
pub fn routes() -> Router<AppState> {
    route_table()
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
}

// ---- keys -------------------------------------------------------------------------------------

/// The caller's scope, from `Authorization: Bearer sk_...` (or `?api_key=` where a browser cannot
/// set headers: the WebSocket), after the key's rate limit.
pub struct Caller(pub Scope);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let from_header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        let secret = from_header.or_else(|| {
            parts.uri.query().and_then(|query| {
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("api_key="))
                    .map(str::to_owned)
            })
        });
        let secret = secret.ok_or_else(ApiError::unauthorized)?;
        let scope = state
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(&secret)
            .cloned()
            .ok_or_else(ApiError::unauthorized)?;
        let id = secret.get(3..11).unwrap_or_default().to_owned();
        let mut buckets = state
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let burst = state.rate_limit * 2.0;
        let bucket = buckets.entry(id).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens
            + now.duration_since(bucket.at).as_secs_f64() * state.rate_limit)
            .min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(ApiError::busy(
                "rate_limited",
                format!("this key may make {} requests per second", state.rate_limit),
            ));
        }
        bucket.tokens -= 1.0;
        Ok(Self(scope))
    }
}

fn require_book(scope: &Scope) -> Result<(), ApiError> {
    if scope.can_read_book() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a key scoped {scope} sees its own account only"
        )))
    }
}

fn require_account(scope: &Scope, id: &str) -> Result<(), ApiError> {
    if scope.can_read_account(id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a key scoped {scope} cannot see account {id:?}"
        )))
    }
}

// ---- bodies -----------------------------------------------------------------------------------

fn json<T: Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

/// A body already written as JSON text.
fn json_written(text: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

/// Runs a computation on the blocking pool (margin reports can take milliseconds).
async fn compute<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::unavailable(format!("the computation failed: {error}")))?
}

fn risk_error(prefix: &str, error: &RiskError) -> ApiError {
    if error.is_about_market() {
        ApiError::unprocessable(Some("market".to_owned()), format!("market: {error}"))
    } else {
        ApiError::unprocessable(Some(prefix.to_owned()), format!("{prefix}: {error}"))
    }
}

fn market_view<'a>(view: &'a View, market: &'a Market) -> Result<MarketView<'a>, ApiError> {
    MarketView::new(&view.venue, market).map_err(|error| risk_error("market", &error))
}

// ---- events -----------------------------------------------------------------------------------

/// The body of a request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsBody {
    /// The events, each an object with `type` and its fields, and optionally `ts` (RFC 3339)
    /// and `client_id`.
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Reads every event of a batch before any is queued: one bad event refuses the whole request
/// and nothing is applied.
fn read_events(body: &Bytes) -> Result<Vec<Incoming>, ApiError> {
    match read_plain_events(body) {
        Some(events) => Ok(events),
        None => read_events_general(body),
    }
}

/// The fast reader of a batch of plain events: each event's keys borrowed from the body, its
/// fields read by the engine's typed line reader (`solvent_engine::event::parse_line`, the
/// reader `solvent replay` uses), with no `serde_json::Value` built; a `client_id` and a `ts`
/// are taken off first. It decides nothing on its own: anything it does not take as it stands
/// (an error of any kind, a `seq` key, a key given twice, an escape, a nested object or array,
/// a `client_id` or `ts` the general reader would refuse or read otherwise) gives `None`, and
/// [`read_events_general`] reads the whole body again and gives its result, success or the
/// error naming the field. What it returns is what the general reader returns for the same
/// body (the engine's tests hold its typed reader to its general one; this module's tests hold
/// the two readers of a batch to each other).
fn read_plain_events(body: &[u8]) -> Option<Vec<Incoming>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let batch: Batch<'_> = serde_json::from_slice(body).ok()?;
    if batch.events.is_empty() || batch.events.len() > MAX_EVENTS_PER_REQUEST {
        return None;
    }
    let mut line = String::with_capacity(256);
    let mut events = Vec::with_capacity(batch.events.len());
    for (index, raw) in batch.events.iter().enumerate() {
        let text = raw.get();
        let fields = text.strip_prefix('{')?.strip_suffix('}')?;
        if fields.contains(['{', '[', '\\']) {
            return None;
        }
        let keys = plain_keys(text)?;
        let client_id = match keys.client_id {
            None => None,
            Some(id) if client_id_ok(id) => Some(id.to_owned()),
            Some(_) => return None,
        };
        let ts = match keys.ts {
            None => None,
            Some(text) => Some(event_time(text)?),
        };
        // A line as `solvent replay` reads it; the number and time are placeholders, dropped.
        line.clear();
        line.push_str(r#"{"seq":1,"ts":"1970-01-01T00:00:00Z""#);
        for (key, value) in &keys.fields {
            line.push_str(",\"");
            line.push_str(key);
            line.push_str("\":");
            line.push_str(value.get());
        }
        line.push('}');
        let envelope = solvent_engine::event::parse_line("(request)", index + 1, &line).ok()?;
        events.push(Incoming {
            client_id,
            ts,
            event: envelope.event,
        });
    }
    Some(events)
}

/// Whether `id` is a client id the service takes: not blank, no space around it, at most 128
/// bytes (both readers of a batch ask this).
fn client_id_ok(id: &str) -> bool {
    !id.trim().is_empty() && id.trim() == id && id.len() <= 128
}

/// An event's `ts` as both readers of a batch read it: an RFC 3339 instant.
fn event_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

/// An event object's keys as the fast reader takes them: its `client_id` and `ts` (plain
/// strings) apart, the other fields as they are written.
struct PlainKeys<'a> {
    client_id: Option<&'a str>,
    ts: Option<&'a str>,
    fields: Vec<(&'a str, &'a serde_json::value::RawValue)>,
}

/// The object's keys when each is given once, none is `seq`, and `client_id` and `ts`, if
/// given, are strings (`None` otherwise, or when the text is not an object whose keys can be
/// borrowed).
fn plain_keys(text: &str) -> Option<PlainKeys<'_>> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Option<PlainKeys<'de>>;
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an event object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut keys = PlainKeys {
                client_id: None,
                ts: None,
                fields: Vec::with_capacity(12),
            };
            let mut seen: Vec<&'de str> = Vec::with_capacity(12);
            while let Some(key) = map.next_key::<&'de str>()? {
                if key == "seq" || seen.contains(&key) {
                    return Ok(None);
                }
                seen.push(key);
                match key {
                    // A string borrowed from the text (the body has no escape); a null or any
                    // other value is the general reader's to read or refuse.
                    "client_id" => match map.next_value::<Option<&'de str>>() {
                        Ok(Some(id)) => keys.client_id = Some(id),
                        _ => return Ok(None),
                    },
                    "ts" => match map.next_value::<Option<&'de str>>() {
                        Ok(Some(ts)) => keys.ts = Some(ts),
                        _ => return Ok(None),
                    },
                    _ => keys
                        .fields
                        .push((key, map.next_value::<&'de serde_json::value::RawValue>()?)),
                }
            }
            Ok(Some(keys))
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut deserializer, Keys).ok()?
}

/// The general reader of a batch: through `serde_json::Value` objects, naming the field of any
/// problem.
fn read_events_general(body: &Bytes) -> Result<Vec<Incoming>, ApiError> {
    let batch: EventsBody = parse(body)?;
    if batch.events.is_empty() {
        return Err(ApiError::invalid("events", "no events"));
    }
    if batch.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::invalid(
            "events",
            format!(
                "{} events; a request carries at most {MAX_EVENTS_PER_REQUEST}",
                batch.events.len()
            ),
        ));
    }
    batch
        .events
        .into_iter()
        .enumerate()
        .map(|(index, mut object)| {
            let at = |field: &str| format!("events[{index}].{field}");
            if object.contains_key("seq") {
                return Err(ApiError::invalid(
                    at("seq"),
                    "the service numbers events; send a client_id to make a retry safe",
                ));
            }
            let client_id = match object.remove("client_id") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(id)) if client_id_ok(&id) => Some(id),
                Some(other) => {
                    return Err(ApiError::invalid(
                        at("client_id"),
                        format!("expected a non-blank string of at most 128 bytes, found {other}"),
                    ));
                }
            };
            let ts = match object.remove("ts") {
                None | Some(serde_json::Value::Null) => None,
                Some(value) => Some(value.as_str().and_then(event_time).ok_or_else(|| {
                    ApiError::invalid(
                        at("ts"),
                        format!("expected an RFC 3339 instant, found {value}"),
                    )
                })?),
            };
            let event = Event::from_json_object(object)
                .map_err(|(path, problem)| ApiError::invalid(at(&path), problem))?;
            Ok(Incoming {
                client_id,
                ts,
                event,
            })
        })
        .collect()
}

#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = EventsBody,
    description = "Apply a batch of events in order; answered once they are durable. Each event is a `solvent replay` line without `seq` (the service numbers events) and with optional `ts` and `client_id`.",
    responses((status = 200, description = "Each event's sequence number, status and effects", body = EventsReply), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 429, description = "The engine's queue is full", body = ErrorBody), (status = 503, description = "The journal failed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn post_events(
    State(state): State<AppState>,
    Caller(scope): Caller,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    if !scope.can_write() {
        return Err(ApiError::forbidden(format!(
            "a key scoped {scope} cannot send events"
        )));
    }
    let read = std::time::Instant::now();
    let events = read_events(&body)?;
    let receiver = state.core.submit(events).map_err(submit_error)?;
    let results = receiver
        .await
        .map_err(|_| ApiError::unavailable("the engine stopped before answering"))?
        .map_err(submit_error)?;
    crate::metrics::events_acknowledged(read.elapsed());
    // `{"results": [...]}` written directly: each effect's text is copied as the engine's
    // thread wrote it.
    let size: usize = results
        .iter()
        .map(|reply| {
            64 + reply
                .effects
                .iter()
                .map(|e| e.as_str().len() + 1)
                .sum::<usize>()
        })
        .sum();
    let mut out = String::with_capacity(size + 16);
    out.push_str(r#"{"results":["#);
    for (n, reply) in results.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        reply.write_json(&mut out);
    }
    out.push_str("]}");
    Ok(json_written(out))
}

fn submit_error(error: SubmitError) -> ApiError {
    match error {
        SubmitError::QueueFull => ApiError::busy(
            "queue_full",
            "the engine's queue is full; retry after a moment",
        ),
        SubmitError::JournalFailed(message) => ApiError::unavailable(format!(
            "the journal failed and the service is stopping: {message}"
        )),
        SubmitError::ClientLookup(message) => ApiError::unavailable(format!(
            "nothing applied: a client id could not be checked against the journal ({message})"
        )),
    }
}

#[utoipa::path(get, path = "/v1/state-hash", tag = "book",
    responses((status = 200, description = "The engine's state hash once everything before is durable", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn state_hash(
    State(state): State<AppState>,
    Caller(scope): Caller,
) -> Result<Response, ApiError> {
    require_book(&scope)?;
    let receiver = state.core.state_hash().map_err(submit_error)?;
    let (seq, hash) = receiver
        .await
        .map_err(|_| ApiError::unavailable("the engine stopped before answering"))?;
    Ok(json(&serde_json::json!({ "seq": seq, "state_hash": hash })))
}

// ---- accounts ---------------------------------------------------------------------------------

/// One account in the ranked list.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Ranked {
    /// Account id.
    pub account: String,
    /// The engine's state.
    #[schema(value_type = String, example = "healthy")]
    pub state: AccountState,
    /// Health at the view's market (`null`: no requirement, or it could not be computed).
    pub health: Option<f64>,
    /// Equity, in `settlement_asset`.
    pub equity: Option<Decimal>,
    /// Initial margin.
    pub initial_margin: Option<Decimal>,
    /// Maintenance margin.
    pub maintenance_margin: Option<Decimal>,
    /// The asset of the figures.
    pub settlement_asset: String,
    /// Margin mode.
    #[schema(value_type = String, example = "cross")]
    pub mode: solvent_core::portfolio::MarginMode,
    /// Open positions.
    pub positions: usize,
    /// Why the figures are missing, if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to `POST /v1/events`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventsReply {
    /// One per event, in order.
    pub results: Vec<crate::core::EventReply>,
}

/// The answer to `GET /v1/accounts`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountList {
    /// The view's last sequence number.
    pub seq: Option<u64>,
    /// Accounts matching the filters.
    pub total: usize,
    /// Where the page starts.
    pub offset: usize,
    /// Accounts per state, over the whole book.
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Per settlement asset, the sums over the whole book (accounts whose figures could be
    /// computed).
    pub totals: std::collections::BTreeMap<String, Totals>,
    /// The page.
    pub accounts: Vec<Ranked>,
}

/// Sums of the book's figures in one settlement asset.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Totals {
    /// Accounts settled in the asset.
    pub accounts: usize,
    /// Equity.
    pub equity: Decimal,
    /// Initial margin.
    pub initial_margin: Decimal,
    /// Maintenance margin.
    pub maintenance_margin: Decimal,
}

fn totals(ranked: &[Ranked]) -> std::collections::BTreeMap<String, Totals> {
    let mut totals: std::collections::BTreeMap<String, Totals> = std::collections::BTreeMap::new();
    for account in ranked {
        let entry = totals.entry(account.settlement_asset.clone()).or_default();
        entry.accounts += 1;
        entry.equity += account.equity.unwrap_or_default();
        entry.initial_margin += account.initial_margin.unwrap_or_default();
        entry.maintenance_margin += account.maintenance_margin.unwrap_or_default();
    }
    totals
}

/// The error shape of every 4xx and 5xx answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code (`invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `timeout`, `body_too_large`, `cannot_compute`, `queue_full`,
    /// `rate_limited`, `unavailable`).
    pub code: String,
    /// The request field at fault, as a JSON path.
    pub field: Option<String>,
    /// In words.
    pub message: String,
}

/// The OpenAPI document of `/v1`, generated from the handlers' annotations and the types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Solvent", description = "Real-time margin and collateral allocation for crypto derivatives (DESIGN.md 10). Money is a decimal string; every error is `{\"error\": {\"code\", \"field\", \"message\"}}`. The WebSocket stream is at `/v1/ws`."),
    paths(post_events, list_accounts, get_account, risk_matrix, account_history, post_margin, post_margin_order, post_whatif, post_allocate, post_stress, post_cascade, insurance_fund, liquidations, prices, state_hash, journal, key, crate::ws::upgrade),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

/// Declares the bearer-key scheme the paths refer to.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key `sk_...` (scopes: admin, feeder, viewer, account:<id>)",
                    ))
                    .build(),
            ),
        );
    }
}

pub(crate) struct Ranking {
    seq: Option<u64>,
    at: Instant,
    accounts: Arc<Vec<Ranked>>,
}

/// How long a ranking may be reused while events keep coming: recomputing every account's
/// figures on every query would cost the whole book per request.
const RANKING_REUSE: Duration = Duration::from_millis(500);

fn rank(view: &View) -> Vec<Ranked> {
    let market_view = MarketView::new(&view.venue, &view.market);
    let mut ranked: Vec<Ranked> = view
        .accounts
        .iter()
        .map(|(id, account)| {
            let portfolio = &account.portfolio;
            let figures = match &market_view {
                Ok(market_view) => build_report(portfolio, market_view, Detail::Totals)
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            };
            let (health, equity, initial, maintenance, error) = match figures {
                Ok(report) => (
                    report.health,
                    Some(report.equity.value()),
                    Some(report.initial_margin.value()),
                    Some(report.maintenance_margin.value()),
                    None,
                ),
                Err(error) => (None, None, None, None, Some(error)),
            };
            Ranked {
                account: id.to_string(),
                state: account.state,
                health,
                equity,
                initial_margin: initial,
                maintenance_margin: maintenance,
                settlement_asset: portfolio.settlement_asset.symbol.to_string(),
                mode: portfolio.mode,
                positions: portfolio.positions.len(),
                error,
            }
        })
        .collect();
    // Most dangerous first: by state, then by health (none last within a state), then by id.
    ranked.sort_by(|a, b| {
        b.state
            .cmp(&a.state)
            .then_with(|| match (a.health, b.health) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.account.cmp(&b.account))
    });
    ranked
}

async fn ranking(state: &AppState) -> Result<Arc<Vec<Ranked>>, ApiError> {
    let view = state.view();
    {
        let cached = state
            .ranking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ranking) = cached.as_ref()
            && (ranking.seq == view.seq || ranking.at.elapsed() < RANKING_REUSE)
        {
            return Ok(Arc::clone(&ranking.accounts));
        }
    }
    let seq = view.seq;
    let accounts = Arc::new(compute(move || Ok(rank(&view))).await?);
    *state
        .ranking
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Ranking {
        seq,
        at: Instant::now(),
        accounts: Arc::clone(&accounts),
    });
    Ok(accounts)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    sort: Option<String>,
    state: Option<String>,
    search: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    params(("sort" = Option<String>, Query, description = "`health` (the only order: most dangerous first)"), ("state" = Option<String>, Query, description = "healthy, margin_call, reduce_only, liquidating or bankrupt"), ("search" = Option<String>, Query, description = "Part of the account id"), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1-10,000, default 100")),
    responses((status = 200, description = "Accounts ranked by health, with counts per state", body = AccountList), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_accounts(
    State(state): State<AppState>,
    Caller(scope): Caller,
    Params(query): Params<ListQuery>,
) -> Result<Response, ApiError> {
    require_book(&scope)?;
    match query.sort.as_deref() {
        None | Some("health") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "sort",
                format!("unknown sort {other:?}: accounts sort by health"),
            ));
        }
    }
    let wanted_state = match query.state.as_deref() {
        None => None,
        Some(text) => Some(parse_state(text)?),
    };
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid("limit", "between 1 and 10,000"));
    }
    let ranked = ranking(&state).await?;
    let matching: Vec<&Ranked> = ranked
        .iter()
        .filter(|account| wanted_state.is_none_or(|wanted| account.state == wanted))
        .filter(|account| {
            query
                .search
                .as_deref()
                .is_none_or(|needle| account.account.contains(needle))
        })
        .collect();
    let offset = query.offset.unwrap_or(0);
    let page: Vec<&Ranked> = matching.iter().skip(offset).take(limit).copied().collect();
    let mut counts = std::collections::BTreeMap::new();
    for account in ranked.iter() {
        *counts.entry(account.state.to_string()).or_insert(0usize) += 1;
    }
    Ok(json(&serde_json::json!({
        "seq": state.view().seq,
        "total": matching.len(),
        "offset": offset,
        "counts": counts,
        "totals": totals(&ranked),
        "accounts": page,
    })))
}

fn parse_state(text: &str) -> Result<AccountState, ApiError> {
    Ok(match text {
        "healthy" => AccountState::Healthy,
        "margin_call" => AccountState::MarginCall,
        "reduce_only" => AccountState::ReduceOnly,
        "liquidating" => AccountState::Liquidating,
        "bankrupt" => AccountState::Bankrupt,
        other => {
            return Err(ApiError::invalid(
                "state",
                format!(
                    "unknown state {other:?}: healthy, margin_call, reduce_only, liquidating or bankrupt"
                ),
            ));
        }
    })
}

fn account_of(view: &View, id: &str) -> Result<Arc<Portfolio>, ApiError> {
    view.accounts
        .get(id)
        .map(|account| Arc::clone(&account.portfolio))
        .ok_or_else(|| ApiError::not_found("id", format!("no account {id:?}")))
}

/// The query of `GET /v1/accounts/{id}`. Other parameters are ignored, as they were before the
/// query had any.
#[derive(Deserialize)]
pub(crate) struct AccountQuery {
    /// Also the moves that liquidate the account (the reverse stress: off by default, as the
    /// account query is the one a book polls).
    liquidation_moves: Option<bool>,
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Account id"), ("liquidation_moves" = Option<bool>, Query, description = "`true`: also the moves that liquidate the account (`liquidation_moves`, the reverse stress: a few dozen reports more)")),
    responses((status = 200, description = "The margin report, as `solvent margin --json` prints it (`liquidation_moves` when asked for; `vol_scaled_ranges`: the volatility-scaled ranges in force for the account's scaled underlyings, from `scenario_range` events)", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 404, description = "No such account", body = ErrorBody), (status = 422, description = "A price it needs is missing", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_account(
    State(state): State<AppState>,
    Caller(scope): Caller,
    AccountId(id): AccountId,
    Params(query): Params<AccountQuery>,
) -> Result<Response, ApiError> {
    require_account(&scope, &id)?;
    let view = state.view();
    let portfolio = account_of(&view, &id)?;
    let small =
        portfolio.positions.len() <= INLINE_POSITIONS && query.liquidation_moves != Some(true);
    let work = move || {
        let market_view = market_view(&view, &view.market)?;
        let mut report = solvent_risk::margin_report(&portfolio, &market_view)
            .map_err(|error| risk_error("account", &error))?;
        // Volatility-scaled ranges (docs/vol-scaled-ranges.md): the ranges in force for the
        // account's scaled underlyings, and a warning for each margined on the static grid.
        report
            .warnings
            .extend(solvent_engine::engine::scaling_warnings(
                &view.venue,
                &view.scenario_ranges,
                &portfolio,
            ));
        let ranges =
            solvent_engine::engine::ranges_of(&view.venue, &view.scenario_ranges, &portfolio);
        let unwritable = |error: serde_json::Error| {
            ApiError::unprocessable(
                None,
                format!("the report cannot be written as JSON: {error}"),
            )
        };
        // Written straight to text (the account query is the one a book polls): no
        // `serde_json::Value` tree built and written again.
        let mut text = if query.liquidation_moves == Some(true) {
            serde_json::to_string(&solvent_risk::stress::ReportWithMoves::new(
                &report,
                &portfolio,
                &market_view,
                |error| error.to_string(),
            ))
        } else {
            serde_json::to_string(&report)
        }
        .map_err(unwritable)?;
        let ranges = serde_json::to_string(&ranges).map_err(unwritable)?;
        crate::json_text::push_raw_field(&mut text, "vol_scaled_ranges", &ranges);
        Ok::<_, ApiError>(text)
    };
    // A small account's report (a few hundred microseconds) is made on the runtime's worker:
    // handed to the blocking pool, it waited for two wake-ups (there and back), each a wait for
    // a core on a busy machine; a large one, or the reverse stress, would hold the worker.
    let report = if small { work()? } else { compute(work).await? };
    Ok(json_written(report))
}

/// Positions up to which an account's report is made on the runtime's worker (see
/// [`get_account`]).
const INLINE_POSITIONS: usize = 16;

#[utoipa::path(get, path = "/v1/accounts/{id}/risk-matrix", tag = "accounts",
    params(("id" = String, Path, description = "Account id (portfolio mode)")),
    responses((status = 200, description = "Per underlying, the P&L of each exposure in each scenario", body = Vec<crate::risk_matrix::UnderlyingMatrix>), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 404, description = "No such account", body = ErrorBody), (status = 422, description = "Not in portfolio mode", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn risk_matrix(
    State(state): State<AppState>,
    Caller(scope): Caller,
    AccountId(id): AccountId,
) -> Result<Response, ApiError> {
    require_account(&scope, &id)?;
    let view = state.view();
    let portfolio = account_of(&view, &id)?;
    let matrix = compute(move || {
        let market_view = market_view(&view, &view.market)?;
        crate::risk_matrix::of(&portfolio, &market_view)
    })
    .await?;
    Ok(json(&matrix))
}

/// The margin report with the moves that liquidate the account (`liquidation_moves`, as
/// `solvent margin --json` gives them), as a JSON value: the report's fields, then the moves (or
/// `null` and `liquidation_moves_error` when the reverse stress could not run).
fn with_moves(
    report: &solvent_risk::MarginReport,
    portfolio: &Portfolio,
    market_view: &solvent_risk::MarketView<'_>,
) -> Result<serde_json::Value, ApiError> {
    let with_moves =
        solvent_risk::stress::ReportWithMoves::new(report, portfolio, market_view, |error| {
            error.to_string()
        });
    serde_json::to_value(&with_moves).map_err(|error| {
        ApiError::unprocessable(
            None,
            format!("the report cannot be written as JSON: {error}"),
        )
    })
}

// ---- computations on a portfolio --------------------------------------------------------------

/// Whose account a computation is on: a live account by id, or a portfolio sent in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    account: Option<String>,
    portfolio: Option<serde_json::Value>,
    market: Option<serde_json::Value>,
    /// Value a mark sent in far from its index with a warning instead of refusing it.
    allow_far_marks: bool,
}

struct Resolved {
    view: Arc<View>,
    portfolio: Arc<Portfolio>,
    market: Arc<Market>,
    /// What the checks of the inputs sent in accepted with a warning (a missing mark, an
    /// ignored leverage): the answer carries them.
    warnings: Vec<String>,
}

/// A refused input as the API names fields: `market.mark.X`, `portfolio.positions[0].…`.
fn refused(error: checks::InputRefused) -> ApiError {
    let field = if error.field.is_empty() {
        error.origin
    } else {
        format!("{}.{}", error.origin, error.field)
    };
    ApiError::invalid(field, error.problem)
}

/// The answer as JSON, with the checks' warnings in `warnings` when there are any (before a
/// margin report's own).
/// The volatility-scaled ranges in force for the scaled underlyings `resolved`'s portfolio is
/// exposed to (docs/vol-scaled-ranges.md), with a warning added to `resolved`'s for each one
/// margined on the static grid: an answer that margins on the live venue shows the ranges it
/// margined on, as `GET /v1/accounts/{id}` does.
fn scaled_ranges(resolved: &mut Resolved) -> Vec<solvent_risk::vol_scaled::RangeInForce> {
    let (venue, in_force) = (&resolved.view.venue, &resolved.view.scenario_ranges);
    resolved
        .warnings
        .extend(solvent_engine::engine::scaling_warnings(
            venue,
            in_force,
            &resolved.portfolio,
        ));
    solvent_engine::engine::ranges_of(venue, in_force, &resolved.portfolio)
}

/// The answer to a request about a resolved portfolio: `work` runs on the blocking pool (see
/// [`compute`]), and what it gives goes out with the warnings the checks of the inputs gave and
/// the volatility-scaled ranges the portfolio is exposed to (see [`with_warnings_and_ranges`]).
async fn answer<T: Serialize + Send + 'static>(
    mut resolved: Resolved,
    work: impl FnOnce(&Resolved) -> Result<T, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let ranges = scaled_ranges(&mut resolved);
    // The answer carries them; the computation takes the rest.
    let warnings = std::mem::take(&mut resolved.warnings);
    let value = compute(move || work(&resolved)).await?;
    with_warnings_and_ranges(&value, &warnings, &ranges)
}

/// `value` as the answer, with the inputs' `warnings` ahead of its own and, when the portfolio
/// is exposed to a volatility-scaled underlying, the `vol_scaled_ranges` it was margined on
/// (an answer otherwise keeps the shape the command line's gives).
fn with_warnings_and_ranges<T: Serialize>(
    value: &T,
    warnings: &[String],
    ranges: &[solvent_risk::vol_scaled::RangeInForce],
) -> Result<Response, ApiError> {
    if warnings.is_empty() && ranges.is_empty() {
        return Ok(json(value));
    }
    let unwritable = |what: &str, error: serde_json::Error| {
        ApiError::unprocessable(
            None,
            format!("the {what} cannot be written as JSON: {error}"),
        )
    };
    let mut value = serde_json::to_value(value).map_err(|error| unwritable("answer", error))?;
    if let Some(object) = value.as_object_mut() {
        if !warnings.is_empty() {
            // A margin report has warnings of its own: the inputs' come first.
            let mut all: Vec<serde_json::Value> =
                warnings.iter().map(|w| serde_json::json!(w)).collect();
            if let Some(serde_json::Value::Array(own)) = object.remove("warnings") {
                all.extend(own);
            }
            object.insert("warnings".to_owned(), serde_json::Value::Array(all));
        }
        if !ranges.is_empty() {
            let ranges =
                serde_json::to_value(ranges).map_err(|error| unwritable("ranges", error))?;
            object.insert("vol_scaled_ranges".to_owned(), ranges);
        }
    }
    Ok(json(&value))
}

/// The account and market a computation reads: a live account (the caller must see it) or a
/// portfolio sent in (any key), at the live market or the one sent in.
fn resolve(state: &AppState, scope: &Scope, subject: Subject) -> Result<Resolved, ApiError> {
    let view = state.view();
    let market_sent = subject.market.is_some();
    let portfolio_sent = subject.portfolio.is_some();
    let market =
        match subject.market {
            None => Arc::clone(&view.market),
            Some(value) => Arc::new(Market::from_json("market", &value.to_string()).map_err(
                |error| ApiError::invalid(format!("market.{}", error.path), error.problem),
            )?),
        };
    let portfolio = match (subject.account, subject.portfolio) {
        (Some(id), None) => {
            require_account(scope, &id)?;
            account_of(&view, &id)?
        }
        (None, Some(value)) => Arc::new(
            Portfolio::from_json("portfolio", &value.to_string(), &view.venue).map_err(
                |error| ApiError::invalid(format!("portfolio.{}", error.path), error.problem),
            )?,
        ),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "portfolio",
                "give an account or a portfolio, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "account",
                "missing: give a live account's id or a portfolio",
            ));
        }
    };
    // What was sent in is checked as the command line checks its files; the live market and
    // accounts passed the engine's own guards.
    let origins = checks::Origins {
        portfolio: "portfolio",
        market: "market",
        market_field: "",
    };
    let mut warnings = Vec::new();
    if portfolio_sent {
        warnings.extend(checks::positions(&portfolio, &market, origins).map_err(refused)?);
    }
    if market_sent {
        let far_marks = checks::FarMarks {
            allowed: subject.allow_far_marks,
            switch: "\"allow_far_marks\": true",
        };
        warnings.extend(
            checks::marks(&view.venue, &portfolio, &market, origins, far_marks).map_err(refused)?,
        );
    }
    Ok(Resolved {
        view,
        portfolio,
        market,
        warnings,
    })
}

/// The body of a request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarginBody {
    #[schema(value_type = Object)]
    portfolio: serde_json::Value,
    #[schema(value_type = Object)]
    market: Option<serde_json::Value>,
    /// Value a mark sent in beyond 20% of its index (or above what an option can be worth)
    /// with a warning instead of refusing it.
    #[serde(default)]
    allow_far_marks: bool,
}

#[utoipa::path(post, path = "/v1/margin", tag = "margin", request_body = MarginBody,
    responses((status = 200, description = "The margin report of the portfolio sent in (`vol_scaled_ranges`: the volatility-scaled ranges it was margined on, when exposed to a scaled underlying)", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 422, description = "Cannot be computed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn post_margin(
    State(state): State<AppState>,
    Caller(scope): Caller,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let body: MarginBody = parse(&body)?;
    let resolved = resolve(
        &state,
        &scope,
        Subject {
            account: None,
            portfolio: Some(body.portfolio),
            market: body.market,
            allow_far_marks: body.allow_far_marks,
        },
    )?;
    answer(resolved, |resolved| {
        let market_view = market_view(&resolved.view, &resolved.market)?;
        let report = solvent_risk::margin_report(&resolved.portfolio, &market_view)
            .map_err(|error| risk_error("portfolio", &error))?;
        with_moves(&report, &resolved.portfolio, &market_view)
    })
    .await
}

/// The body of a request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderBody {
    account: Option<String>,
    #[schema(value_type = Object)]
    portfolio: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    market: Option<serde_json::Value>,
    /// Value a mark sent in beyond 20% of its index (or above what an option can be worth)
    /// with a warning instead of refusing it.
    #[serde(default)]
    allow_far_marks: bool,
    instrument: String,
    amount: String,
    price: Option<String>,
}

/// Initial margin of a hypothetical buy and sell of `amount` (Deribit's `get_margins`): the
/// account's initial margin after each, less before.
#[utoipa::path(post, path = "/v1/margin/order", tag = "margin", request_body = OrderBody,
    description = "Initial margin a buy and a sell of `amount` would add (Deribit's get_margins).",
    responses((status = 200, description = "The change of initial margin for a buy and a sell (`vol_scaled_ranges` when exposed to a scaled underlying)", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 422, description = "Cannot be computed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn post_margin_order(
    State(state): State<AppState>,
    Caller(scope): Caller,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let body: OrderBody = parse(&body)?;
    // Read as every decimal of the API is (plain digits, within the bounds of a size and a
    // price), not by `Decimal::from_str`, which takes `1_000` and sizes no position may have.
    let amount = parse_decimal(&body.amount)
        .and_then(|amount| Quantity::try_from(amount).map(Quantity::value))
        .map_err(|problem| ApiError::invalid("amount", problem))?;
    if amount <= Decimal::ZERO {
        return Err(ApiError::invalid("amount", "must be positive"));
    }
    let price = body
        .price
        .as_deref()
        .map(|text| {
            parse_decimal(text)
                .and_then(|price| Price::try_from(price).map(Price::value))
                .map_err(|problem| ApiError::invalid("price", problem))
        })
        .transpose()?;
    if body.instrument.trim().is_empty() {
        return Err(ApiError::invalid(
            "instrument",
            "must not be empty or blank",
        ));
    }
    let resolved = resolve(
        &state,
        &scope,
        Subject {
            account: body.account,
            portfolio: body.portfolio,
            market: body.market,
            allow_far_marks: body.allow_far_marks,
        },
    )?;
    let instrument = body.instrument;
    let priced = Trade {
        text: instrument.clone(),
        instrument: instrument.clone(),
        size: amount,
        price,
        fee: Decimal::ZERO,
    };
    checks::trade_price(&resolved.view.venue, &resolved.market, &priced, "price")
        .map_err(refused)?;
    answer(resolved, move |resolved| {
        let market_view = market_view(&resolved.view, &resolved.market)?;
        let trade = |size: Decimal| Trade {
            text: format!("{instrument}:{size}"),
            instrument: instrument.clone(),
            size,
            price,
            fee: Decimal::ZERO,
        };
        let buy = what_if(&resolved.portfolio, &[trade(amount)], &market_view)
            .map_err(|error| risk_error("instrument", &error))?;
        let sell = what_if(&resolved.portfolio, &[trade(-amount)], &market_view)
            .map_err(|error| risk_error("instrument", &error))?;
        let increase = |outcome: &solvent_risk::whatif::WhatIf| {
            outcome.after.initial_margin.value() - outcome.before.initial_margin.value()
        };
        Ok(serde_json::json!({
            "instrument": instrument,
            "amount": amount,
            "settlement_asset": buy.before.settlement_asset,
            "buy": increase(&buy),
            "sell": increase(&sell),
            "buy_accepted": buy.accepted,
            "sell_accepted": sell.accepted,
            "initial_margin": buy.before.initial_margin,
        }))
    })
    .await
}

/// The body of a request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WhatIfBody {
    account: Option<String>,
    #[schema(value_type = Object)]
    portfolio: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    market: Option<serde_json::Value>,
    /// Value a mark sent in beyond 20% of its index (or above what an option can be worth)
    /// with a warning instead of refusing it.
    #[serde(default)]
    allow_far_marks: bool,
    trades: Vec<String>,
}

#[utoipa::path(post, path = "/v1/whatif", tag = "margin", request_body = WhatIfBody,
    responses((status = 200, description = "Before and after, accepted or the named refusal (`vol_scaled_ranges` when exposed to a scaled underlying)", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 422, description = "Cannot be computed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn post_whatif(
    State(state): State<AppState>,
    Caller(scope): Caller,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let body: WhatIfBody = parse(&body)?;
    if body.trades.is_empty() {
        return Err(ApiError::invalid("trades", "no trades"));
    }
    let trades = body
        .trades
        .iter()
        .enumerate()
        .map(|(index, text)| {
            Trade::parse(text)
                .map_err(|error| ApiError::invalid(format!("trades[{index}]"), error.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let resolved = resolve(
        &state,
        &scope,
        Subject {
            account: body.account,
            portfolio: body.portfolio,
            market: body.market,
            allow_far_marks: body.allow_far_marks,
        },
    )?;
    for (index, trade) in trades.iter().enumerate() {
        checks::trade_price(
            &resolved.view.venue,
            &resolved.market,
            trade,
            &format!("trades[{index}]"),
        )
        .map_err(refused)?;
    }
    answer(resolved, move |resolved| {
        let market_view = market_view(&resolved.view, &resolved.market)?;
        what_if(&resolved.portfolio, &trades, &market_view)
            .map_err(|error| risk_error("trades", &error))
    })
    .await
}

/// The body of a request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllocateBody {
    account: Option<String>,
    #[schema(value_type = Object)]
    portfolio: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    market: Option<serde_json::Value>,
    /// Value a mark sent in beyond 20% of its index (or above what an option can be worth)
    /// with a warning instead of refusing it.
    #[serde(default)]
    allow_far_marks: bool,
    buffer: Option<String>,
    trigger_health: Option<f64>,
    target_health: Option<f64>,
}

#[utoipa::path(post, path = "/v1/allocate", tag = "margin", request_body = AllocateBody,
    responses((status = 200, description = "Excess, withdrawable, buffer and the suggested reallocation (`vol_scaled_ranges` when exposed to a scaled underlying)", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 422, description = "Cannot be computed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn post_allocate(
    State(state): State<AppState>,
    Caller(scope): Caller,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let body: AllocateBody = parse(&body)?;
    let buffer: solvent_risk::allocation::BufferPolicy = body
        .buffer
        .as_deref()
        .unwrap_or("none")
        .parse()
        .map_err(|problem: String| ApiError::invalid("buffer", problem))?;
    let policy = solvent_risk::allocation::AllocationPolicy::new_checked(
        buffer,
        body.trigger_health.unwrap_or(1.2),
        body.target_health.unwrap_or(1.5),
    )
    .map_err(|error| ApiError::invalid(error.field, error.problem))?;
    let resolved = resolve(
        &state,
        &scope,
        Subject {
            account: body.account,
            portfolio: body.portfolio,
            market: body.market,
            allow_far_marks: body.allow_far_marks,
        },
    )?;
    answer(resolved, move |resolved| {
        let market_view = market_view(&resolved.view, &resolved.market)?;
        solvent_risk::allocation::allocate(&resolved.portfolio, &market_view, policy)
            .map_err(|error| risk_error("account", &error))
    })
    .await
}

/// The body of a request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StressBody {
    account: Option<String>,
    #[schema(value_type = Object)]
    portfolio: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    market: Option<serde_json::Value>,
    /// Value a mark sent in beyond 20% of its index (or above what an option can be worth)
    /// with a warning instead of refusing it.
    #[serde(default)]
    allow_far_marks: bool,
    /// `grid` (default), `curve` (joint moves of every underlying from -50% to +50% by 2.5%, as
    /// `solvent stress --plot` draws them), `historical`, or a scenario file's object.
    #[schema(value_type = Object)]
    scenarios: Option<serde_json::Value>,
    #[serde(default)]
    reverse: bool,
}

#[utoipa::path(post, path = "/v1/stress", tag = "margin", request_body = StressBody,
    responses((status = 200, description = "P&L and margin under each scenario; the reverse stress (`vol_scaled_ranges` when exposed to a scaled underlying)", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 422, description = "Cannot be computed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn post_stress(
    State(state): State<AppState>,
    Caller(scope): Caller,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let body: StressBody = parse(&body)?;
    let scenarios = body.scenarios;
    let reverse = body.reverse;
    let resolved = resolve(
        &state,
        &scope,
        Subject {
            account: body.account,
            portfolio: body.portfolio,
            market: body.market,
            allow_far_marks: body.allow_far_marks,
        },
    )?;
    answer(resolved, move |resolved| {
        let portfolio = &resolved.portfolio;
        let shocks = match &scenarios {
            None => solvent_risk::stress::grid(portfolio),
            Some(serde_json::Value::String(name)) if name == "grid" => {
                solvent_risk::stress::grid(portfolio)
            }
            Some(serde_json::Value::String(name)) if name == "curve" => curve(portfolio),
            Some(serde_json::Value::String(name)) if name == "historical" => read_shocks(
                "scenarios/historical-days.json (built in)",
                crate::HISTORICAL_DAYS,
            )
            .map_err(|error| ApiError::unavailable(error.to_string()))?,
            Some(value @ serde_json::Value::Object(_)) => {
                read_shocks("scenarios", &value.to_string()).map_err(|error| {
                    ApiError::invalid(format!("scenarios.{}", error.path), error.problem)
                })?
            }
            Some(other) => {
                return Err(ApiError::invalid(
                    "scenarios",
                    format!(
                        "expected \"grid\", \"curve\", \"historical\" or a scenario object, found {other}"
                    ),
                ));
            }
        };
        let market_view = market_view(&resolved.view, &resolved.market)?;
        let base = solvent_risk::stress::shocked_report(
            portfolio,
            &market_view,
            &solvent_core::shock::Shock::joint("base", &[], 0.0),
        )
        .map_err(|error| risk_error("account", &error))?;
        let rows = solvent_risk::stress::run(portfolio, &market_view, &base, &shocks)
            .map_err(|error| risk_error("scenarios", &error))?;
        let reverse = if reverse {
            Some(
                solvent_risk::stress::reverse(portfolio, &market_view)
                    .map_err(|error| risk_error("account", &error))?,
            )
        } else {
            None
        };
        serde_json::to_value(solvent_risk::stress::StressAnswer::new(
            &base,
            &rows,
            reverse.as_deref(),
        ))
        .map_err(|error| {
            ApiError::unprocessable(None, format!("the answer cannot be written as JSON: {error}"))
        })
    })
    .await
}

/// The joint moves `solvent stress --plot` draws: every underlying of the account together, from
/// -50% to +50% in steps of 2.5%.
fn curve(portfolio: &Portfolio) -> Vec<solvent_core::shock::Shock> {
    let names = solvent_risk::stress::underlyings(portfolio);
    (-20..=20_i32)
        .map(|step| {
            let price_move = f64::from(step) * 0.025;
            solvent_core::shock::Shock::joint(
                format!("joint {:+.1}%", price_move * 100.0),
                &names,
                price_move,
            )
        })
        .collect()
}

// ---- the book ---------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    limit: Option<usize>,
}

fn recent(
    state: &AppState,
    channel: &Channel,
    limit: Option<usize>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid("limit", "between 1 and 10,000"));
    }
    Ok(state.core.shared().feed.recent(channel, limit))
}

#[utoipa::path(get, path = "/v1/insurance-fund", tag = "book",
    params(("limit" = Option<usize>, Query, description = "Recent changes to return, 1-10,000")),
    responses((status = 200, description = "Balances per asset and recent changes", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn insurance_fund(
    State(state): State<AppState>,
    Caller(scope): Caller,
    Params(query): Params<FeedQuery>,
) -> Result<Response, ApiError> {
    require_book(&scope)?;
    let view = state.view();
    let history = recent(&state, &Channel::InsuranceFund, query.limit)?;
    Ok(json(&serde_json::json!({
        "seq": view.seq,
        "balances": view.insurance_fund,
        "changes": history,
    })))
}

#[utoipa::path(get, path = "/v1/liquidations", tag = "book",
    params(("limit" = Option<usize>, Query, description = "1-10,000")),
    responses((status = 200, description = "Recent liquidations, deferrals, ADL and deficits", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn liquidations(
    State(state): State<AppState>,
    Caller(scope): Caller,
    Params(query): Params<FeedQuery>,
) -> Result<Response, ApiError> {
    require_book(&scope)?;
    let recent = recent(&state, &Channel::Liquidations, query.limit)?;
    Ok(json(
        &serde_json::json!({ "seq": state.view().seq, "liquidations": recent }),
    ))
}

#[utoipa::path(get, path = "/v1/prices", tag = "book",
    responses((status = 200, description = "Index and mark prices", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn prices(
    State(state): State<AppState>,
    Caller(_): Caller,
) -> Result<Response, ApiError> {
    let view = state.view();
    let index: std::collections::BTreeMap<&str, String> = view
        .market
        .index
        .iter()
        .map(|(name, price)| (name.as_ref(), price.value().normalize().to_string()))
        .collect();
    let mark: std::collections::BTreeMap<&str, String> = view
        .market
        .mark
        .iter()
        .map(|(name, price)| (name.as_ref(), price.value().normalize().to_string()))
        .collect();
    Ok(json(&serde_json::json!({
        "seq": view.seq,
        "timestamp": view.market.timestamp.to_string(),
        "index": index,
        "mark": mark,
    })))
}

#[utoipa::path(get, path = "/v1/key", tag = "book",
    responses((status = 200, description = "The caller's key: its scope (what the dashboard may show)", body = Object), (status = 401, description = "No live key", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn key(Caller(scope): Caller) -> Response {
    let account = match &scope {
        Scope::Account(id) => Some(id.clone()),
        _ => None,
    };
    json(&serde_json::json!({
        "scope": scope.to_string(),
        "account": account,
        "can_read_book": scope.can_read_book(),
        "can_write": scope.can_write(),
    }))
}

#[utoipa::path(get, path = "/v1/accounts/{id}/history", tag = "accounts",
    params(("id" = String, Path, description = "Account id"), ("limit" = Option<usize>, Query, description = "Points to return, 1-10,000 (the latest)")),
    responses((status = 200, description = "The account's figures after its updates (health, equity, IM, MM, state), oldest first: at most `kept_per_account` points, every recent update and a thinning sample of older ones", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 404, description = "No such account", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn account_history(
    State(state): State<AppState>,
    Caller(scope): Caller,
    AccountId(id): AccountId,
    Params(query): Params<FeedQuery>,
) -> Result<Response, ApiError> {
    require_account(&scope, &id)?;
    let view = state.view();
    account_of(&view, &id)?;
    let limit = query.limit.unwrap_or(1_000);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid("limit", "between 1 and 10,000"));
    }
    let points = state.core.shared().health.points(&id, limit);
    Ok(json(&serde_json::json!({
        "account": id,
        "seq": view.seq,
        "points": points,
        "kept_per_account": crate::health::POINTS_PER_ACCOUNT,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JournalQuery {
    after: Option<u64>,
    before: Option<u64>,
    limit: Option<usize>,
    account: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    effect_type: Option<String>,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
}

/// A type filter's value, checked to be a type's shape (`snake_case`), named by its field.
fn type_name(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(name)
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
        {
            Err(ApiError::invalid(
                field,
                format!("not a type name: {name:?}"),
            ))
        }
        other => Ok(other),
    }
}

#[utoipa::path(get, path = "/v1/journal", tag = "book",
    params(("after" = Option<u64>, Query, description = "Events after this sequence number, oldest first"), ("before" = Option<u64>, Query, description = "Events before this sequence number (the latest of them)"), ("limit" = Option<usize>, Query, description = "1-1,000, default 100"), ("account" = Option<String>, Query, description = "Only events that concern this account (or whose effects do)"), ("type" = Option<String>, Query, description = "Only events of this type (deposit, fill, index_price, ...)"), ("effect_type" = Option<String>, Query, description = "Only events that caused an effect of this type (liquidation, margin_call, ...)"), ("from_seq" = Option<u64>, Query, description = "Only events from this sequence number on (inclusive)"), ("to_seq" = Option<u64>, Query, description = "Only events up to this sequence number (inclusive)")),
    responses((status = 200, description = "A page of the durable journal's accepted events, oldest first, each with the effects it caused (each effect carries its event's `seq`). The effects are written after the event by the audit writer: `effects_through` is the last sequence number whose effects are written, an event beyond it has `effects_pending: true` and no effects yet, and the account and effect-type filters reach only up to it. Filters apply to the whole journal through its indexes; pages are keyed by sequence number: `next` is where to continue (as `after` paging forward, as `before` paging back), null when no further event matches", body = Object), (status = 503, description = "The journal cannot be read", body = ErrorBody), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn journal(
    State(state): State<AppState>,
    Caller(scope): Caller,
    Params(query): Params<JournalQuery>,
) -> Result<Response, ApiError> {
    // An account key reads the events of its own account only.
    let account = match (&scope, query.account) {
        (Scope::Account(own), Some(asked)) if *own != asked => {
            return Err(ApiError::forbidden(format!(
                "a key scoped {scope} cannot see account {asked:?}"
            )));
        }
        (Scope::Account(own), _) => Some(own.clone()),
        (_, asked) => asked,
    };
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > crate::audit::MAX_LIMIT {
        return Err(ApiError::invalid("limit", "between 1 and 1,000"));
    }
    let cursor = match (query.after, query.before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "before",
                "give after or before, not both",
            ));
        }
        (Some(after), None) => solvent_store::Cursor::After(after),
        (None, Some(before)) => solvent_store::Cursor::Before(before),
        (None, None) => solvent_store::Cursor::Latest,
    };
    if let (Some(from), Some(to)) = (query.from_seq, query.to_seq)
        && from > to
    {
        return Err(ApiError::invalid(
            "to_seq",
            format!("must not be below from_seq ({from})"),
        ));
    }
    let wanted = solvent_store::AuditQuery {
        cursor,
        limit,
        from_seq: query.from_seq,
        to_seq: query.to_seq,
        account,
        event_type: type_name("type", query.kind)?,
        effect_type: type_name("effect_type", query.effect_type)?,
    };
    let shared = Arc::clone(state.core.shared());
    let page = compute(move || {
        let reader = shared
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::audit::page(reader.as_ref(), &wanted)
            .map_err(|error| ApiError::unavailable(format!("the journal cannot be read: {error}")))
    })
    .await?;
    Ok(json(&serde_json::json!({
        "seq": state.view().seq,
        "events": page.events,
        "next": page.next,
        "effects_through": page.effects_through,
    })))
}

/// The body of a request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CascadeBody {
    /// Relative index move per underlying in round 0, as decimal strings (`"-0.1"`: down 10%);
    /// several underlyings move jointly.
    shocks: std::collections::BTreeMap<String, String>,
    /// Square-root impact coefficient (default 0.1).
    impact: Option<f64>,
    /// `cumulative` (default) or `per_round`.
    impact_model: Option<String>,
    /// Rounds at most, round 0 included (default 50, at most 200).
    max_rounds: Option<usize>,
    /// Average daily traded value per underlying, USD, as decimal strings: the impact's depth.
    /// Given underlyings replace the defaults (the 2025 medians of BTC and ETH); every
    /// underlying with an index in the book needs one.
    adv_usd: Option<std::collections::BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/v1/cascade", tag = "book", request_body = CascadeBody,
    description = "Shocks the whole book and plays the liquidation cascade with market impact (as `solvent cascade` does), on a copy of the engine: the live book is not changed. One at a time.",
    responses((status = 200, description = "Each round (prices, accounts liquidated, liquidated notional, ADL, insurance fund) and the totals", body = Object), (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No live key", body = ErrorBody), (status = 403, description = "The key's scope does not allow it", body = ErrorBody), (status = 422, description = "Cannot be computed (an underlying without an index)", body = ErrorBody), (status = 429, description = "A cascade is already running", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn post_cascade(
    State(state): State<AppState>,
    Caller(scope): Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    use solvent_engine::cascade::{CascadeError, CascadeParams, ImpactModel};
    require_book(&scope)?;
    let body: CascadeBody = parse(&body)?;
    if body.shocks.is_empty() {
        return Err(ApiError::invalid(
            "shocks",
            "no shocks: give a move per underlying",
        ));
    }
    let mut params = CascadeParams::default();
    for (name, text) in &body.shocks {
        let shock: Decimal = solvent_core::money::parse_decimal(text)
            .ok()
            .filter(|shock: &Decimal| *shock > -Decimal::ONE && *shock <= Decimal::from(10))
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("shocks.{name}"),
                    format!("expected a relative move above -1 and at most 10, found {text:?}"),
                )
            })?;
        params.shocks.insert(name.clone(), shock);
    }
    for (name, text) in body.adv_usd.iter().flatten() {
        let adv = solvent_core::money::parse_decimal(text)
            .ok()
            .filter(|adv: &Decimal| {
                *adv > Decimal::ZERO && *adv <= Decimal::from(1_000_000_000_000_000_000_u64)
            })
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("adv_usd.{name}"),
                    format!("expected a positive USD amount of at most 1e18, found {text:?}"),
                )
            })?;
        params.adv_usd.insert(name.clone(), adv);
    }
    if let Some(impact) = body.impact {
        params.impact = impact;
    }
    params.impact_model = match body.impact_model.as_deref() {
        None | Some("cumulative") => ImpactModel::Cumulative,
        Some("per_round") => ImpactModel::PerRound,
        Some(other) => {
            return Err(ApiError::invalid(
                "impact_model",
                format!("unknown {other:?}: cumulative or per_round"),
            ));
        }
    };
    if let Some(rounds) = body.max_rounds {
        if rounds == 0 || rounds > 200 {
            return Err(ApiError::invalid("max_rounds", "between 1 and 200"));
        }
        params.max_rounds = rounds;
    }
    let permit = Arc::clone(&state.cascades)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::busy(
                "cascade_running",
                "a cascade is running; retry when it ends",
            )
        })?;
    let copy = state
        .core
        .copy()
        .map_err(submit_error)?
        .await
        .map_err(|_| ApiError::unavailable("the engine stopped before answering"))?;
    let report = compute(move || {
        let _permit = permit;
        solvent_engine::cascade::run_on(*copy, &params).map_err(|error| match error {
            CascadeError::InvalidParameter { name, problem } => ApiError::invalid(name, problem),
            CascadeError::MissingIndex(_) => {
                ApiError::unprocessable(Some("shocks".to_owned()), error.to_string())
            }
            other => ApiError::unprocessable(None, other.to_string()),
        })
    })
    .await?;
    Ok(json(&report))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn events(incoming: &[Incoming]) -> Vec<(Option<String>, Option<jiff::Timestamp>, Event)> {
        incoming
            .iter()
            .map(|i| (i.client_id.clone(), i.ts, i.event.clone()))
            .collect()
    }

    #[test]
    fn the_fast_reader_takes_plain_batches_as_the_general_one_does_and_leaves_the_rest_to_it() {
        let plain = Bytes::from(
            r#"{"events":[
                {"type":"index_price","underlying":"BTC","price":"60000.5"},
                {"type":"mark_price","instrument":"BTCUSDT","price":"59990"},
                {"account":"a1","type":"deposit","asset":"USDT","amount":"10000"},
                {"type":"fill","account":"a1","instrument":"BTCUSDT","side":"buy","size":"0.001","price":"60000","fee":"0.03","counterparty":"external"},
                {"type":"index_price","underlying":"ETH","price":"3000","source":"s1"}
            ]}"#,
        );
        let fast = read_plain_events(&plain).unwrap();
        let general = read_events_general(&plain).unwrap();
        assert_eq!(events(&fast), events(&general));
        assert_eq!(fast.len(), 5);
        // Times and client ids, anywhere among the keys, are the fast reader's too.
        let stamped = Bytes::from(
            r#"{"events":[
                {"client_id":"dep-1","type":"deposit","account":"a1","asset":"USDT","amount":"10"},
                {"type":"index_price","ts":"2026-01-01T00:00:01Z","underlying":"BTC","price":"60000"},
                {"type":"fill","account":"a1","instrument":"BTCUSDT","side":"sell","size":"0.001","price":"60000","fee":"0.03","counterparty":"external","ts":"2026-01-01T00:00:02.5+01:00","client_id":"fill 2"}
            ]}"#,
        );
        let fast = read_plain_events(&stamped).unwrap();
        let general = read_events_general(&stamped).unwrap();
        assert_eq!(events(&fast), events(&general));
        assert_eq!(fast[0].client_id.as_deref(), Some("dep-1"));
        assert_eq!(fast[0].ts, None);
        assert_eq!(
            fast[1].ts,
            Some("2026-01-01T00:00:01Z".parse::<jiff::Timestamp>().unwrap())
        );
        assert_eq!(fast[2].client_id.as_deref(), Some("fill 2"));
        assert_eq!(
            fast[2].ts,
            Some("2025-12-31T23:00:02.5Z".parse::<jiff::Timestamp>().unwrap())
        );
        // What the fast reader leaves to the general one: a time or client id it would read
        // otherwise or refuse (null, not a string, not an instant, blank, padded, too long), a
        // repeated key, a key it does not know, an escape, a wrong value, an empty or
        // oversized batch.
        let long_id = "x".repeat(129);
        let too_long = format!(
            r#"{{"events":[{{"type":"deposit","account":"a1","asset":"USDT","amount":"1","client_id":"{long_id}"}}]}}"#
        );
        for body in [
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","ts":null}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","ts":"yesterday"}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","ts":1767225600}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","client_id":null}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","client_id":7}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","client_id":" "}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","client_id":" c1"}]}"#,
            too_long.as_str(),
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","client_id":"c1","client_id":"c2"}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","amount":"2"}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","seq":3}]}"#,
            r#"{"events":[{"type":"deposit","account":"a\u0031","asset":"USDT","amount":"1"}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","extra":1}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT"}]}"#,
            r#"{"events":[]}"#,
            r#"{"events":[{}]}"#,
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1"}],"more":1}"#,
        ] {
            assert!(read_plain_events(body.as_bytes()).is_none(), "{body}");
        }
        // A value the readers take and the engine refuses when it applies it: the same event.
        let negative = Bytes::from(
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"-1"}]}"#,
        );
        match (read_plain_events(&negative), read_events_general(&negative)) {
            (Some(fast), Ok(general)) => assert_eq!(events(&fast), events(&general)),
            (None, _) => {}
            (Some(_), Err(_)) => panic!("the fast reader took what the general one refuses"),
        }
        // Those the general reader takes come out the same through `read_events`.
        let with_time = Bytes::from(
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","ts":"2026-01-01T00:00:00Z","client_id":"c1"}]}"#,
        );
        let read = read_events(&with_time).unwrap();
        assert_eq!(read[0].client_id.as_deref(), Some("c1"));
        assert!(read[0].ts.is_some());
        let repeated = Bytes::from(
            r#"{"events":[{"type":"deposit","account":"a1","asset":"USDT","amount":"1","amount":"2"}]}"#,
        );
        assert!(read_events(&repeated).is_err());
    }
}
