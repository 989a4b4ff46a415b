//! `solvent cluster gateway`: the HTTP front of a cluster (issue 13 item 4). Events are routed
//! and published to the input stream, acknowledged once JetStream has stored them; an account's
//! query goes to its shard; cross-shard views are merged from every shard's answer.
//!
//! Not yet the single-process service's API: no API keys (so it listens on loopback only), no
//! effects in the reply to an event (read them from the effect stream: `solvent cluster
//! effects`), no WebSocket, no client ids.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use rust_decimal::Decimal;
use serde::Deserialize;
use solvent_cluster::publish::Publisher;
use solvent_cluster::query::{self, Answer};
use solvent_engine::event::parse_line;

/// The arguments of `solvent cluster gateway`.
#[derive(Args)]
pub struct GatewayArgs {
    /// NATS servers, comma-separated.
    #[arg(long = "cluster", value_name = "URLS")]
    servers: String,
    /// The number of shards the stream is routed for.
    #[arg(long, value_parser = crate::cluster::shard_count())]
    shards: u32,
    /// Where to listen: a loopback address (the gateway checks no API key yet).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Replicas of the streams when the gateway creates them.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
}

#[derive(Clone)]
struct Gateway {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    shards: u32,
    /// Numbers each request's messages, so their ids are unique within the gateway's life.
    requests: Arc<AtomicU64>,
    /// The gateway's start (nanoseconds), in its message ids: a restarted gateway never repeats
    /// an id a previous one used.
    started: i128,
}

/// An error as the service writes one: `{"error": {"code", "field", "message"}}`.
fn error(status: StatusCode, code: &str, field: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({
            "error": {"code": code, "field": field, "message": message.into()}
        })),
    )
        .into_response()
}

fn unavailable(problem: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "cluster",
        problem.to_string(),
    )
}

fn answered(answer: Answer) -> Response {
    match answer {
        Answer::Ok(value) => axum::Json(value).into_response(),
        Answer::Error {
            code,
            field,
            message,
        } => {
            let status = match code.as_str() {
                "not_found" => StatusCode::NOT_FOUND,
                "bad_query" => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            error(status, &code, &field, message)
        }
    }
}

/// The query of `GET /v1/accounts/{id}`, as the single service takes it: other parameters are
/// ignored there, so they are here.
#[derive(Deserialize)]
struct AccountParams {
    /// Also the moves that liquidate the account.
    liquidation_moves: Option<bool>,
}

async fn account(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    params: Result<Query<AccountParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let liquidation_moves = match params {
        Ok(Query(params)) => params.liquidation_moves == Some(true),
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "liquidation_moves",
                rejection.body_text(),
            );
        }
    };
    match query::account(&gateway.client, gateway.shards, &id, liquidation_moves).await {
        Ok(answer) => answered(answer),
        Err(problem) => unavailable(problem),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RankedParams {
    limit: Option<usize>,
}

/// Largest ranking one request may ask for.
const MAX_LIMIT: usize = 10_000;

async fn ranked(
    State(gateway): State<Gateway>,
    params: Result<Query<RankedParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let limit = match params {
        Ok(Query(params)) => params.limit.unwrap_or(100),
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "query",
                rejection.body_text(),
            );
        }
    };
    if limit == 0 || limit > MAX_LIMIT {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "limit",
            format!("must be between 1 and {MAX_LIMIT}, found {limit}"),
        );
    }
    match query::ranked(&gateway.client, gateway.shards, limit).await {
        Ok(accounts) => axum::Json(accounts).into_response(),
        Err(problem) => unavailable(problem),
    }
}

async fn shards(State(gateway): State<Gateway>) -> Response {
    match query::statuses(&gateway.client, gateway.shards).await {
        Ok(statuses) => axum::Json(statuses).into_response(),
        Err(problem) => unavailable(problem),
    }
}

async fn insurance_fund(State(gateway): State<Gateway>) -> Response {
    // The system shard's fund when one runs (shards with `--fund system`); else each shard's
    // own, added up.
    match solvent_cluster::system::fund(&gateway.client).await {
        Ok(Some(fund)) => {
            let fund: BTreeMap<String, String> = fund
                .into_iter()
                .filter(|(_, amount)| !amount.is_zero())
                .map(|(asset, amount)| (asset, amount.normalize().to_string()))
                .collect();
            return axum::Json(fund).into_response();
        }
        Ok(None) => {}
        Err(problem) => return unavailable(problem),
    }
    let statuses = match query::statuses(&gateway.client, gateway.shards).await {
        Ok(statuses) => statuses,
        Err(problem) => return unavailable(problem),
    };
    let mut total: BTreeMap<String, Decimal> = BTreeMap::new();
    for status in statuses {
        for (asset, amount) in status.insurance_fund {
            match amount.parse::<Decimal>() {
                Ok(amount) => *total.entry(asset).or_default() += amount,
                Err(problem) => return unavailable(problem),
            }
        }
    }
    let total: BTreeMap<String, String> = total
        .into_iter()
        .map(|(asset, amount)| (asset, amount.normalize().to_string()))
        .collect();
    axum::Json(total).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsBody {
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Events in: each needs its time (`ts`), which every shard must read alike; routed, published,
/// acknowledged once JetStream has stored them. Nothing is published if one is invalid.
async fn events(State(gateway): State<Gateway>, body: axum::body::Bytes) -> Response {
    let body: EventsBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(problem) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "events",
                problem.to_string(),
            );
        }
    };
    let mut envelopes = Vec::with_capacity(body.events.len());
    for (index, mut fields) in body.events.into_iter().enumerate() {
        fields.insert("seq".to_owned(), (index as u64 + 1).into());
        let line = serde_json::Value::Object(fields).to_string();
        let envelope = match parse_line("events", index + 1, &line) {
            Ok(envelope) => envelope,
            Err(problem) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    &format!("events[{index}]"),
                    problem.to_string(),
                );
            }
        };
        if let Err(problem) = solvent_cluster::routing::route(&envelope.event, gateway.shards) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "cross_shard",
                &format!("events[{index}]"),
                problem.to_string(),
            );
        }
        envelopes.push(envelope);
    }
    let request = gateway.requests.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("gateway-{}-{request}", gateway.started);
    let mut publisher = Publisher::new(&gateway.js, gateway.shards, 1_000, &prefix);
    let count = envelopes.len();
    for envelope in envelopes {
        if let Err(problem) = publisher.push(envelope).await {
            return unavailable(problem);
        }
    }
    match publisher.finish().await {
        Ok(report) => axum::Json(serde_json::json!({
            "accepted": count,
            "last_stream_seq": report.last_stream_seq,
        }))
        .into_response(),
        Err(problem) => unavailable(problem),
    }
}

/// Runs the gateway until Ctrl-C.
///
/// # Errors
/// A non-loopback address, NATS unreachable, or the address taken.
pub fn run(args: &GatewayArgs) -> Result<String> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen {}: the gateway checks no API key yet, so it listens on a loopback address only",
            args.listen
        );
    }
    let servers = crate::cluster::servers(&args.servers);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let js = solvent_cluster::shard::connect(&servers, args.shards, args.replicas).await?;
        let gateway = Gateway {
            client: js.client(),
            js,
            shards: args.shards,
            requests: Arc::new(AtomicU64::new(0)),
            started: jiff::Timestamp::now().as_nanosecond(),
        };
        let app = Router::new()
            .route("/v1/accounts", get(ranked))
            .route("/v1/accounts/{id}", get(account))
            .route("/v1/shards", get(shards))
            .route("/v1/insurance-fund", get(insurance_fund))
            .route("/v1/events", post(events))
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(gateway);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("--listen {}: cannot listen", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "solvent: gateway on http://{addr} for {} shards",
            args.shards
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the gateway stopped")?;
        Ok::<_, anyhow::Error>(String::new())
    })
}
