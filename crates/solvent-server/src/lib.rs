//! # solvent-server
//!
//! Solvent as a service (DESIGN.md 10): the engine on its own thread behind a bounded queue
//! ([`core`]), every accepted event made durable by a [`solvent_store::Journal`] before anything
//! about it leaves the process, reads from a consistent [`view::View`], an HTTP API ([`api`]),
//! a WebSocket stream ([`ws`]) of numbered effects ([`feed`]), scoped keys ([`keys`]),
//! Prometheus metrics ([`metrics`]) and the browser dashboard at `/` ([`dashboard`]), whose audit
//! page reads the journaled events with their effects ([`audit`]), and the scheduled volatility
//! forecasts of a venue that scales its ranges ([`forecast`]).

#![deny(missing_docs)]

pub mod api;
pub mod audit;
pub mod client_ids;
pub mod core;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod feed;
pub mod forecast;
pub mod health;
pub mod json_text;
pub mod keys;
pub mod metrics;
pub mod request;
pub mod risk_matrix;
pub mod view;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use solvent_engine::Engine;
use solvent_store::Journal;
use tokio::sync::oneshot;

use crate::api::AppState;
use crate::core::{Core, Limits};
use crate::error::ApiError;
use crate::keys::KeyRing;

/// The named historical days (built from ../shared/data/prices, checked by ./scripts/test).
pub const HISTORICAL_DAYS: &str = include_str!("../../../scenarios/historical-days.json");

/// How the service runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// The write path's limits.
    pub limits: Limits,
    /// Requests per second per key.
    pub rate_limit: f64,
    /// A request not answered in this time gets 408 (slow clients cannot hold a connection).
    pub request_timeout: Duration,
    /// Periodic snapshots (none: recovery replays the whole journal).
    pub snapshots: Option<core::SnapshotPolicy>,
    /// What stamps an event sent without a time.
    pub clock: core::Clock,
    /// Makes the `scenario_range` event of each close the engine's time crosses, for the
    /// underlyings the venue scales (none: the events come from outside, as any other).
    pub forecaster: Option<forecast::Forecaster>,
    /// The audit writer's queue (`solvent_store::AuditWriter::sink`): each durable event's
    /// effects are handed to it. None: the effects are not written by this service (a writer
    /// started later, or `solvent journal migrate`, writes them from the journal).
    pub audit: Option<solvent_store::AuditSink>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            rate_limit: 10_000.0,
            request_timeout: Duration::from_secs(30),
            snapshots: None,
            clock: core::Clock::Wall,
            forecaster: None,
            audit: None,
        }
    }
}

/// A running service.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The shared state of its handlers (for in-process callers such as the demo feed).
    pub state: AppState,
    core: Core,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops listening, lets requests in flight finish, and waits until every event taken is
    /// durable.
    ///
    /// # Errors
    /// The listener's error, if it failed.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        let served = self
            .server
            .await
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        let core = self.core;
        tokio::task::spawn_blocking(move || core.shutdown())
            .await
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        served
    }

    /// Resolves when the journal has failed (the service must stop) — never otherwise.
    pub async fn failed(&self) -> String {
        loop {
            if let Some(failure) = self.state.core.shared().failure.get() {
                return failure.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The service's router over `state`.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    api::routes()
        .merge(dashboard::routes())
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(scrape))
        .fallback(|| async {
            ApiError::not_found(
                "(path)",
                "no such route; the API lives under /v1, the dashboard at /",
            )
        })
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // Outermost, so that the router's own answers and the timeout's are shaped too.
        .layer(axum::middleware::from_fn(error::error_shape))
        .with_state(state)
}

async fn openapi() -> Response {
    use utoipa::OpenApi as _;
    axum::Json(api::ApiDoc::openapi()).into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.core.shared().failure.get() {
        None => "ready".into_response(),
        Some(failure) => ApiError::unavailable(failure.clone()).into_response(),
    }
}

async fn scrape(State(state): State<AppState>) -> String {
    metrics::render(state.core.shared())
}

/// Starts the service over `engine` (new or recovered) and `journal` (holding every event the
/// engine has applied, and the replies given to client ids).
///
/// # Errors
/// The listener cannot bind, the threads cannot start, or the journal's reader cannot open.
pub async fn start(
    engine: Engine,
    journal: Box<dyn Journal>,
    keys: KeyRing,
    config: &Config,
) -> std::io::Result<Running> {
    metrics::install();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let core = Core::start(
        engine,
        journal,
        config.limits,
        config.clock,
        config.snapshots.clone(),
        config.forecaster.clone(),
        config.audit.clone(),
    )?;
    let state = AppState::new(core.handle(), keys, config.rate_limit);
    let app = router(state.clone(), config.request_timeout);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        state,
        core,
        stop,
        server,
    })
}
