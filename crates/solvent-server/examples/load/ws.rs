//! WebSocket subscribers of `/v1/ws`: each subscribes to `margin_calls`, `liquidations` and its
//! own `account.{id}`, records every message it receives (event, effect type, channel), checks
//! that the feed's sequence numbers only increase, and times each message from the event's
//! time stamp (set by the service's clock when the engine took the event) to its arrival.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::expect::{Chan, Item};

/// What one subscriber saw.
pub struct Seen {
    /// Messages of the subscribed channels, in arrival order.
    pub items: Vec<Item>,
    /// Feed sequence numbers that did not increase.
    pub seq_regressions: usize,
    /// From the event's time stamp to the message's arrival, microseconds.
    pub lag_us: Histogram<u64>,
    /// The close reason, if the server closed the connection.
    pub closed: Option<String>,
}

#[derive(Deserialize)]
struct Frame<'a> {
    seq: Option<u64>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    seq: Option<u64>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ts: Option<Cow<'a, str>>,
}

/// A connected, subscribed subscriber.
pub struct Subscriber {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Subscriber {
    /// Connects and subscribes; returns once the `subscribed` answer came.
    ///
    /// # Errors
    /// The connection or the subscription failed.
    pub async fn connect(addr: SocketAddr, key: &str, account: &str) -> Result<Self, String> {
        let url = format!("ws://{addr}/v1/ws?api_key={key}");
        // The library zeroes its whole read buffer before every read attempt; at its 128 KiB
        // default, 1,000 subscribers spent the client's share of the machine on that (the
        // server measured beside it).
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(16 * 1024);
        let (mut stream, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), false)
                .await
                .map_err(|error| error.to_string())?;
        let subscribe = serde_json::json!({
            "op": "subscribe",
            "args": ["margin_calls", "liquidations", format!("account.{account}")],
        })
        .to_string();
        stream
            .send(Message::Text(subscribe.into()))
            .await
            .map_err(|error| error.to_string())?;
        while let Some(message) = stream.next().await {
            let message = message.map_err(|error| error.to_string())?;
            if let Message::Text(text) = message {
                let frame: Frame<'_> =
                    serde_json::from_str(text.as_str()).map_err(|error| error.to_string())?;
                match frame.op.as_deref() {
                    Some("subscribed") => return Ok(Self { stream }),
                    Some("error") => {
                        return Err(frame.message.unwrap_or_default().into_owned());
                    }
                    _ => {}
                }
            }
        }
        Err("closed before the subscription was answered".to_owned())
    }

    /// Records every message until `stop` turns true; counts them in `received`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>, received: Arc<AtomicU64>) -> Seen {
        let mut seen = Seen {
            items: Vec::new(),
            seq_regressions: 0,
            lag_us: Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| {
                Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures"))
            }),
            closed: None,
        };
        let mut last_seq = 0_u64;
        loop {
            let message = tokio::select! {
                message = self.stream.next() => message,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let Some(message) = message else {
                seen.closed.get_or_insert_with(|| "stream ended".to_owned());
                break;
            };
            let text = match message {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(frame)) => {
                    seen.closed = Some(frame.map_or_else(
                        || "closed without a reason".to_owned(),
                        |frame| frame.reason.to_string(),
                    ));
                    break;
                }
                Ok(_) => continue,
                Err(error) => {
                    seen.closed = Some(error.to_string());
                    break;
                }
            };
            let arrived = jiff::Timestamp::now();
            let Ok(frame) = serde_json::from_str::<Frame<'_>>(text.as_str()) else {
                continue;
            };
            let (Some(seq), Some(channel), Some(data)) = (frame.seq, frame.channel, frame.data)
            else {
                continue;
            };
            if seq <= last_seq {
                seen.seq_regressions += 1;
            }
            last_seq = seq;
            let Some(chan) = Chan::of_name(&channel) else {
                continue;
            };
            if let Some(ts) = data
                .ts
                .as_deref()
                .and_then(|ts| ts.parse::<jiff::Timestamp>().ok())
            {
                let lag = arrived.duration_since(ts).as_micros().max(1);
                let _ = seen
                    .lag_us
                    .record(u64::try_from(lag).unwrap_or(u64::MAX).min(600_000_000));
            }
            seen.items.push((
                data.seq.unwrap_or(0),
                data.kind.unwrap_or_default().as_ref().into(),
                chan,
            ));
            received.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.stream.close(None).await;
        seen
    }
}
