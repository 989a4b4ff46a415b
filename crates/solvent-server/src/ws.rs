//! The WebSocket stream `/v1/ws` (DESIGN.md 10).
//!
//! Client to server: `{"op":"subscribe","args":["account.a1","health"],"since":123}` (`since`
//! only on the first subscribe of a connection: resume after the last message seen),
//! `{"op":"unsubscribe","args":[...]}`, `{"op":"ping"}`. Server to client: a `subscribed` answer
//! with a snapshot of each new channel, then every message of the subscribed channels as
//! `{"seq","channel","data"}` with `seq` strictly increasing across the connection, `pong`, and
//! `error`. The server pings every 20 s. A connection that falls behind the feed is closed with
//! the reason `slow_subscriber`: the engine never waits for it. The feed routes each message to
//! the connections subscribed to its channel only, as a frame rendered once ([`crate::feed`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;

use crate::api::{AppState, Caller};
use crate::error::ApiError;
use crate::feed::{Channel, Ended, LAG_LIMIT, Message, Subscription};
use crate::keys::Scope;

/// Messages written to a connection before its socket is flushed.
const BURST: usize = 256;

/// The socket's read buffer. The WebSocket library zeroes the whole buffer before every read
/// attempt, one that finds nothing to read included, and the serving loop tries a read each time
/// it wakes to send: at the library's 128 KiB default that zeroing took about 8% of the
/// machine's CPU with 1,000 subscribers (docs/benchmarks.md, "The WebSocket read buffer"). A subscriber sends small requests (a longer one grows
/// the buffer for itself, up to the message limit).
const READ_BUFFER: usize = 4 * 1024;

/// How often the server pings.
pub const PING_EVERY: Duration = Duration::from_secs(20);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    op: String,
    #[serde(default)]
    args: Vec<String>,
    since: Option<u64>,
}

/// Upgrades to the stream once the key is checked.
#[utoipa::path(get, path = "/v1/ws", tag = "stream",
    description = "WebSocket: `{\"op\":\"subscribe\",\"args\":[\"account.ID\",\"health\",\"margin_calls\",\"liquidations\",\"insurance_fund\",\"prices\"],\"since\":N}`; messages `{seq, channel, data}`; the key as `?api_key=` where headers cannot be set.",
    responses((status = 101, description = "Switching to the WebSocket"), (status = 400, description = "Not a WebSocket upgrade (a header missing or wrong)", body = crate::api::ErrorBody), (status = 401, description = "No live key", body = crate::api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn upgrade(
    State(state): State<AppState>,
    Caller(scope): Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| not_an_upgrade(&rejection))?;
    Ok(upgrade
        .max_message_size(64 * 1024)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(socket, state, scope)))
}

/// A request to `/v1/ws` that is no WebSocket upgrade, in the error shape.
fn not_an_upgrade(rejection: &WebSocketUpgradeRejection) -> ApiError {
    let message = format!(
        "{}: a WebSocket upgrade sends Connection: Upgrade, Upgrade: websocket, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
        rejection.body_text()
    );
    if rejection.status() == StatusCode::BAD_REQUEST {
        ApiError::invalid("(headers)", message)
    } else {
        ApiError::from_router(rejection.status(), &Method::GET, &message)
    }
}

fn error(code: &str, message: &str) -> WsMessage {
    WsMessage::Text(
        serde_json::json!({"op": "error", "code": code, "message": message})
            .to_string()
            .into(),
    )
}

fn allowed(scope: &Scope, channel: &Channel) -> bool {
    match channel {
        Channel::Account(id) => scope.can_read_account(id),
        Channel::Prices => true,
        _ => scope.can_read_book(),
    }
}

async fn serve(socket: WebSocket, state: AppState, scope: Scope) {
    let (mut sink, mut stream) = socket.split();
    let mut channels: BTreeSet<Channel> = BTreeSet::new();
    let mut subscription: Option<Subscription> = None;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let live = async {
            match subscription.as_mut() {
                Some(subscription) => subscription.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(incoming)) = incoming else { return };
                let text = match incoming {
                    WsMessage::Text(text) => text,
                    WsMessage::Close(_) => return,
                    _ => continue,
                };
                let request: Request = match serde_json::from_str(&text) {
                    Ok(request) => request,
                    Err(problem) => {
                        if sink.send(error("invalid_request", &problem.to_string())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                let replies = handle(&state, &scope, request, &mut channels, &mut subscription).await;
                for reply in replies {
                    if sink.send(reply).await.is_err() {
                        return;
                    }
                }
            }
            message = live => {
                match message {
                    Ok(message) => {
                        // What is queued goes out in one write (a burst of liquidations reaches
                        // every subscriber of the channel at once).
                        let mut queued = vec![message];
                        if let Some(subscription) = subscription.as_mut() {
                            while queued.len() < BURST {
                                let Some(more) = subscription.try_recv() else { break };
                                queued.push(more);
                            }
                        }
                        for message in queued {
                            // A channel dropped while its messages were queued.
                            if channels.contains(&message.channel)
                                && sink.feed(frame(&message)).await.is_err()
                            {
                                return;
                            }
                        }
                        if sink.flush().await.is_err() {
                            return;
                        }
                    }
                    Err(Ended::Lagged) => {
                        let reason = format!("slow_subscriber: {LAG_LIMIT} messages behind; reconnect with since");
                        let _ = sink.send(WsMessage::Close(Some(CloseFrame {
                            code: 1008,
                            reason: reason.into(),
                        }))).await;
                        return;
                    }
                    Err(Ended::Closed) => return,
                }
            }
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The message's frame, rendered once when it was published.
fn frame(message: &Message) -> WsMessage {
    match Utf8Bytes::try_from(message.frame()) {
        Ok(text) => WsMessage::Text(text),
        // Rendered from a `String`: always UTF-8.
        Err(_) => WsMessage::Text(Utf8Bytes::from_static("{}")),
    }
}

async fn handle(
    state: &AppState,
    scope: &Scope,
    request: Request,
    channels: &mut BTreeSet<Channel>,
    subscription: &mut Option<Subscription>,
) -> Vec<WsMessage> {
    match request.op.as_str() {
        "ping" => vec![WsMessage::Text(r#"{"op":"pong"}"#.into())],
        "unsubscribe" => {
            let gone: Vec<Channel> = request
                .args
                .iter()
                .filter_map(|name| name.parse::<Channel>().ok())
                .filter(|channel| channels.remove(channel))
                .collect();
            if let Some(subscription) = subscription.as_ref() {
                subscription.remove(&gone);
            }
            vec![WsMessage::Text(
                serde_json::json!({"op": "unsubscribed", "args": request.args})
                    .to_string()
                    .into(),
            )]
        }
        "subscribe" => {
            let mut wanted = Vec::new();
            for name in &request.args {
                match name.parse::<Channel>() {
                    Ok(channel) if allowed(scope, &channel) => wanted.push(channel),
                    Ok(_) => {
                        return vec![error(
                            "forbidden",
                            &format!("a key scoped {scope} cannot subscribe to {name}"),
                        )];
                    }
                    Err(problem) => return vec![error("invalid_request", &problem)],
                }
            }
            if wanted.is_empty() {
                return vec![error("invalid_request", "args: no channels")];
            }
            if request.since.is_some() && subscription.is_some() {
                return vec![error(
                    "invalid_request",
                    "since: only on the first subscribe of a connection",
                )];
            }
            let mut out = Vec::new();
            let mut snapshots = serde_json::Map::new();
            for channel in &wanted {
                snapshots.insert(channel.to_string(), snapshot(state, channel).await);
            }
            channels.extend(wanted.iter().cloned());
            let feed = &state.core.shared().feed;
            let backlog = match subscription.as_ref() {
                Some(live) => {
                    live.add(&wanted);
                    Vec::new()
                }
                None => match feed.subscribe(request.since, &wanted) {
                    Ok((live, backlog)) => {
                        *subscription = Some(live);
                        backlog
                    }
                    Err(oldest) => {
                        let Ok((live, _)) = feed.subscribe(None, &wanted) else {
                            return vec![error("unavailable", "the feed refused")];
                        };
                        *subscription = Some(live);
                        out.push(error(
                            "resume_gap",
                            &format!(
                                "messages after {} are gone (oldest kept: {oldest}); the snapshots below are current",
                                request.since.unwrap_or(0)
                            ),
                        ));
                        Vec::new()
                    }
                },
            };
            out.insert(
                0,
                WsMessage::Text(
                    serde_json::json!({
                        "op": "subscribed",
                        "args": wanted.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "next_seq": state.core.shared().feed.next_seq(),
                        "snapshots": snapshots,
                    })
                    .to_string()
                    .into(),
                ),
            );
            out.extend(
                backlog
                    .iter()
                    .filter(|message| channels.contains(&message.channel))
                    .map(|message| frame(message)),
            );
            out
        }
        other => vec![error(
            "invalid_request",
            &format!("op: unknown {other:?}: subscribe, unsubscribe or ping"),
        )],
    }
}

/// The current picture of a channel, sent when it is subscribed.
async fn snapshot(state: &AppState, channel: &Channel) -> serde_json::Value {
    let view = state.view();
    match channel {
        Channel::Account(id) => {
            let Some(account) = view.accounts.get(id.as_str()) else {
                return serde_json::json!({"error": format!("no account {id:?} yet")});
            };
            let portfolio = Arc::clone(&account.portfolio);
            let report = tokio::task::spawn_blocking(move || {
                solvent_risk::MarketView::new(&view.venue, &view.market)
                    .and_then(|market_view| solvent_risk::margin_report(&portfolio, &market_view))
                    .map_err(|error| error.to_string())
            })
            .await;
            match report {
                Ok(Ok(report)) => serde_json::to_value(report).unwrap_or_default(),
                Ok(Err(problem)) => serde_json::json!({ "error": problem }),
                Err(problem) => serde_json::json!({ "error": problem.to_string() }),
            }
        }
        Channel::InsuranceFund => serde_json::json!({ "balances": view.insurance_fund }),
        Channel::Prices => serde_json::json!({
            "index": view.market.index.iter().map(|(name, price)| (name.to_string(), price.value().normalize().to_string())).collect::<std::collections::BTreeMap<_, _>>(),
            "mark": view.market.mark.iter().map(|(name, price)| (name.to_string(), price.value().normalize().to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        }),
        Channel::Health | Channel::MarginCalls | Channel::Liquidations => {
            let recent = state.core.shared().feed.recent(channel, 100);
            serde_json::json!({ "recent": recent })
        }
    }
}
