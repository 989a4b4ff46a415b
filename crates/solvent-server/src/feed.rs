//! The WebSocket feed (DESIGN.md 10): every durable effect, numbered, on named channels.
//!
//! Each message is numbered and rendered once, as the WebSocket frame every subscriber of its
//! channel is sent, when it is published. Publishing routes it to the connections subscribed to
//! its channel only (a connection registers its channels here), each through a bounded queue of
//! its own, so the cost of a message is its recipients, not every connection. Publishing never
//! waits for a reader: a connection whose queue holds [`LAG_LIMIT`] messages is dropped with a
//! reason, so a slow subscriber can never hold the engine back. The last [`RETAINED`] messages
//! are also kept for resuming: a client that reconnects with the last sequence number it saw
//! gets every message after it, without a gap, or a `resume_gap` error if they are gone.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::body::Bytes;
use tokio::sync::mpsc;

use crate::json_text::JsonText;

/// Messages kept for resuming.
pub const RETAINED: usize = 100_000;
/// Messages a connection may fall behind before it is dropped.
pub const LAG_LIMIT: usize = 65_536;

/// A channel of the feed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Everything about one account: `account.{id}`.
    Account(String),
    /// State changes and figures of every account.
    Health,
    /// Margin calls.
    MarginCalls,
    /// Liquidations, deferrals, ADL and deficits.
    Liquidations,
    /// The insurance fund's changes.
    InsuranceFund,
    /// Index and mark prices accepted, and guarded ones.
    Prices,
}

impl fmt::Display for Channel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(id) => write!(formatter, "account.{id}"),
            Self::Health => formatter.write_str("health"),
            Self::MarginCalls => formatter.write_str("margin_calls"),
            Self::Liquidations => formatter.write_str("liquidations"),
            Self::InsuranceFund => formatter.write_str("insurance_fund"),
            Self::Prices => formatter.write_str("prices"),
        }
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "health" => Self::Health,
            "margin_calls" => Self::MarginCalls,
            "liquidations" => Self::Liquidations,
            "insurance_fund" => Self::InsuranceFund,
            "prices" => Self::Prices,
            other => match other.strip_prefix("account.") {
                Some(id) if !id.trim().is_empty() => Self::Account(id.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown channel {other:?}: expected account.{{id}}, health, \
                         margin_calls, liquidations, insurance_fund or prices"
                    ));
                }
            },
        })
    }
}

/// What a message carries: JSON text, or an effect as the reply carries it and the time of its
/// event, joined (`{..., "ts": ...}`) only when a subscriber or a resume reads it: most
/// messages have no reader, and the engine thread, which publishes them, is spared the copy.
#[derive(Clone, Debug)]
pub enum FeedData {
    /// JSON text as it is sent.
    Text(Arc<str>),
    /// An effect's JSON object and its event's time, sent as the object with a `ts` field at
    /// its end ([`JsonText::write_with_field`]).
    Stamped {
        /// The effect, as `solvent replay` writes it.
        line: JsonText,
        /// The event's time (RFC 3339), shared by the event's effects.
        ts: Arc<str>,
    },
}

impl FeedData {
    /// Appends the data's JSON text to `out`.
    fn write(&self, out: &mut String) {
        match self {
            Self::Text(text) => out.push_str(text),
            Self::Stamped { line, ts } => line.write_with_field("ts", ts, out),
        }
    }

    /// The data's JSON text.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

impl From<Arc<str>> for FeedData {
    fn from(text: Arc<str>) -> Self {
        Self::Text(text)
    }
}

impl From<String> for FeedData {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for FeedData {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

/// One message of the feed.
#[derive(Clone, Debug)]
pub struct Message {
    /// Its number in the feed: strictly increasing, with no gaps across all channels.
    pub seq: u64,
    /// The channel.
    pub channel: Channel,
    /// The effect or price, as `solvent replay` writes it (with the event's `ts`).
    data: FeedData,
    /// The WebSocket frame `{"seq","channel","data"}`, rendered when a subscriber first needs
    /// it (most messages have none).
    frame: OnceLock<Bytes>,
}

impl Message {
    fn new(seq: u64, channel: Channel, data: FeedData) -> Self {
        Self {
            seq,
            channel,
            data,
            frame: OnceLock::new(),
        }
    }

    /// The frame a subscriber is sent (rendered once, shared by all of them).
    #[must_use]
    pub fn frame(&self) -> Bytes {
        self.frame
            .get_or_init(|| {
                use std::fmt::Write as _;
                let name = serde_json::to_string(&self.channel.to_string()).unwrap_or_default();
                let mut frame = String::with_capacity(512);
                let _ = write!(frame, r#"{{"seq":{},"channel":{name},"data":"#, self.seq);
                self.data.write(&mut frame);
                frame.push('}');
                Bytes::from(frame)
            })
            .clone()
    }

    /// The data as a JSON value.
    #[must_use]
    pub fn data_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.data.text()).unwrap_or(serde_json::Value::Null)
    }
}

/// The feed: numbered messages routed to their channels' subscribers, with a retained tail.
#[derive(Default)]
pub struct Feed {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    next_seq: u64,
    messages: VecDeque<Arc<Message>>,
    next_id: u64,
    subscribers: HashMap<u64, Subscriber>,
    /// Channel -> the subscribers that listen to it.
    routes: HashMap<Channel, BTreeSet<u64>>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            next_seq: 1,
            messages: VecDeque::new(),
            next_id: 0,
            subscribers: HashMap::new(),
            routes: HashMap::new(),
        }
    }
}

struct Subscriber {
    sender: mpsc::Sender<Arc<Message>>,
    channels: BTreeSet<Channel>,
    lagged: Arc<AtomicBool>,
}

impl Inner {
    fn drop_subscriber(&mut self, id: u64) {
        if let Some(subscriber) = self.subscribers.remove(&id) {
            for channel in &subscriber.channels {
                self.unroute(channel, id);
            }
        }
    }

    fn unroute(&mut self, channel: &Channel, id: u64) {
        if let Some(ids) = self.routes.get_mut(channel) {
            ids.remove(&id);
            if ids.is_empty() {
                self.routes.remove(channel);
            }
        }
    }

    fn publish(&mut self, channel: Channel, data: FeedData) {
        let message = Arc::new(Message::new(self.next_seq, channel, data));
        self.next_seq += 1;
        if self.messages.len() == RETAINED {
            self.messages.pop_front();
        }
        self.messages.push_back(Arc::clone(&message));
        let Some(ids) = self.routes.get(&message.channel) else {
            return;
        };
        let mut gone = Vec::new();
        for id in ids {
            let Some(subscriber) = self.subscribers.get(id) else {
                continue;
            };
            match subscriber.sender.try_send(Arc::clone(&message)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.lagged.store(true, Ordering::Release);
                    gone.push(*id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            self.drop_subscriber(id);
        }
    }
}

/// Why a subscription ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The connection fell [`LAG_LIMIT`] messages behind and was dropped.
    Lagged,
    /// The feed is gone (the service is stopping).
    Closed,
}

/// One connection's subscription: the messages of its channels, in order.
pub struct Subscription {
    id: u64,
    inner: Arc<Mutex<Inner>>,
    receiver: mpsc::Receiver<Arc<Message>>,
    lagged: Arc<AtomicBool>,
}

impl Subscription {
    /// The next message of a subscribed channel.
    ///
    /// # Errors
    /// [`Ended::Lagged`] once the connection fell too far behind (at once, not after the
    /// messages still queued), [`Ended::Closed`] when the feed is gone.
    pub async fn recv(&mut self) -> Result<Arc<Message>, Ended> {
        if self.lagged.load(Ordering::Acquire) {
            return Err(Ended::Lagged);
        }
        match self.receiver.recv().await {
            Some(message) if !self.lagged.load(Ordering::Acquire) => Ok(message),
            Some(_) => Err(Ended::Lagged),
            None if self.lagged.load(Ordering::Acquire) => Err(Ended::Lagged),
            None => Err(Ended::Closed),
        }
    }

    /// The next message if one is queued now (`None`: none queued, or the subscription ended,
    /// which the next [`Self::recv`] reports).
    pub fn try_recv(&mut self) -> Option<Arc<Message>> {
        if self.lagged.load(Ordering::Acquire) {
            return None;
        }
        self.receiver.try_recv().ok()
    }

    /// Listens to `channels` too, from the next message published.
    pub fn add(&self, channels: &[Channel]) {
        let mut inner = lock(&self.inner);
        let Some(subscriber) = inner.subscribers.get_mut(&self.id) else {
            return;
        };
        let added: Vec<Channel> = channels
            .iter()
            .filter(|channel| subscriber.channels.insert((*channel).clone()))
            .cloned()
            .collect();
        for channel in added {
            inner.routes.entry(channel).or_default().insert(self.id);
        }
    }

    /// Stops listening to `channels`.
    pub fn remove(&self, channels: &[Channel]) {
        let mut inner = lock(&self.inner);
        let Some(subscriber) = inner.subscribers.get_mut(&self.id) else {
            return;
        };
        let removed: Vec<Channel> = channels
            .iter()
            .filter(|channel| subscriber.channels.remove(*channel))
            .cloned()
            .collect();
        for channel in removed {
            inner.unroute(&channel, self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.inner).drop_subscriber(self.id);
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A live subscription and the retained messages of its channels a resume must send first.
pub type Subscribed = (Subscription, Vec<Arc<Message>>);

impl Feed {
    /// An empty feed.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Numbers and routes one message (`data`: JSON text). Never waits.
    pub fn publish(&self, channel: Channel, data: impl Into<FeedData>) {
        lock(&self.inner).publish(channel, data.into());
    }

    /// Numbers and routes messages in order, under one lock. Never waits.
    pub fn publish_all(&self, messages: impl IntoIterator<Item = (Channel, FeedData)>) {
        let mut inner = lock(&self.inner);
        for (channel, data) in messages {
            inner.publish(channel, data);
        }
    }

    /// A subscription to `channels` of every message published from now on, with the retained
    /// messages of those channels after `since` (`None`: none). `Err` with the oldest retained
    /// number when messages after `since` are gone.
    ///
    /// # Errors
    /// The oldest sequence number still retained, when `since` is older than the tail.
    pub fn subscribe(&self, since: Option<u64>, channels: &[Channel]) -> Result<Subscribed, u64> {
        let mut inner = lock(&self.inner);
        let backlog = match since {
            None => Vec::new(),
            Some(since) => {
                let oldest = inner
                    .messages
                    .front()
                    .map_or(inner.next_seq, |message| message.seq);
                if since + 1 < oldest {
                    return Err(oldest);
                }
                inner
                    .messages
                    .iter()
                    .filter(|message| message.seq > since && channels.contains(&message.channel))
                    .cloned()
                    .collect()
            }
        };
        let id = inner.next_id;
        inner.next_id += 1;
        let (sender, receiver) = mpsc::channel(LAG_LIMIT);
        let lagged = Arc::new(AtomicBool::new(false));
        let wanted: BTreeSet<Channel> = channels.iter().cloned().collect();
        for channel in &wanted {
            inner.routes.entry(channel.clone()).or_default().insert(id);
        }
        inner.subscribers.insert(
            id,
            Subscriber {
                sender,
                channels: wanted,
                lagged: Arc::clone(&lagged),
            },
        );
        Ok((
            Subscription {
                id,
                inner: Arc::clone(&self.inner),
                receiver,
                lagged,
            },
            backlog,
        ))
    }

    /// The last `limit` retained messages of `channel`, oldest first.
    #[must_use]
    pub fn recent(&self, channel: &Channel, limit: usize) -> Vec<serde_json::Value> {
        let found: Vec<Arc<Message>> = lock(&self.inner)
            .messages
            .iter()
            .rev()
            .filter(|message| message.channel == *channel)
            .take(limit)
            .cloned()
            .collect();
        found
            .iter()
            .rev()
            .map(|message| serde_json::json!({ "feed_seq": message.seq, "data": message.data_value() }))
            .collect()
    }

    /// The number the next message will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        lock(&self.inner).next_seq
    }

    /// Connections subscribed now.
    #[must_use]
    pub fn subscribers(&self) -> usize {
        lock(&self.inner).subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn channels_round_trip_and_bad_names_are_named() {
        for name in [
            "account.a1",
            "health",
            "margin_calls",
            "liquidations",
            "insurance_fund",
            "prices",
        ] {
            assert_eq!(name.parse::<Channel>().unwrap().to_string(), name);
        }
        assert!("account.".parse::<Channel>().is_err());
        assert!("trades".parse::<Channel>().unwrap_err().contains("trades"));
    }

    #[test]
    fn resume_gives_every_message_after_the_last_seen_and_reports_a_gap() {
        let feed = Feed::new();
        for price in 0..5 {
            feed.publish(Channel::Prices, price.to_string());
        }
        let (_, backlog) = feed.subscribe(Some(2), &[Channel::Prices]).unwrap();
        let numbers: Vec<u64> = backlog.iter().map(|message| message.seq).collect();
        assert_eq!(numbers, [3, 4, 5]);
        let (mut subscription, backlog) = feed.subscribe(None, &[Channel::Health]).unwrap();
        assert!(backlog.is_empty());
        feed.publish(Channel::Health, "\"next\"");
        assert_eq!(subscription.receiver.try_recv().unwrap().seq, 6);
        for _ in 0..RETAINED {
            feed.publish(Channel::Prices, "0");
        }
        assert!(feed.subscribe(Some(3), &[Channel::Prices]).is_err());
    }

    #[test]
    fn a_message_goes_to_its_channels_subscribers_only_framed_once() {
        let feed = Feed::new();
        let (mut a1, _) = feed
            .subscribe(None, &[Channel::Account("a1".to_owned())])
            .unwrap();
        let (mut prices, _) = feed.subscribe(None, &[Channel::Prices]).unwrap();
        feed.publish(Channel::Account("a1".to_owned()), r#"{"x":1}"#);
        feed.publish(Channel::Prices, r#"{"p":"1"}"#);
        let message = a1.receiver.try_recv().unwrap();
        assert!(a1.receiver.try_recv().is_err());
        let frame: serde_json::Value = serde_json::from_slice(&message.frame()).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({"seq": 1, "channel": "account.a1", "data": {"x": 1}})
        );
        assert_eq!(prices.receiver.try_recv().unwrap().seq, 2);
        prices.remove(&[Channel::Prices]);
        a1.add(&[Channel::Prices]);
        feed.publish(Channel::Prices, r#"{"p":"2"}"#);
        assert!(prices.receiver.try_recv().is_err());
        assert_eq!(a1.receiver.try_recv().unwrap().seq, 3);
        drop(prices);
        assert_eq!(feed.subscribers(), 1);
    }

    /// An effect published with its event's time is framed, and resumed, as the effect with a
    /// `ts` field at its end: the bytes subscribers received when the time was added at once.
    #[test]
    fn a_stamped_effect_is_framed_and_resumed_with_its_time_at_the_end() {
        let feed = Feed::new();
        let (mut a1, _) = feed
            .subscribe(None, &[Channel::Account("a1".to_owned())])
            .unwrap();
        let ts: Arc<str> = Arc::from("2026-01-01T00:00:01Z");
        for line in [
            r#"{"seq":7,"type":"deposited","account":"a1","amount":"10"}"#,
            r#"{"seq":7,"type":"account_updated","health":null}"#,
        ] {
            feed.publish(
                Channel::Account("a1".to_owned()),
                FeedData::Stamped {
                    line: JsonText::new(line),
                    ts: Arc::clone(&ts),
                },
            );
        }
        let first = a1.receiver.try_recv().unwrap();
        assert_eq!(
            std::str::from_utf8(&first.frame()).unwrap(),
            r#"{"seq":1,"channel":"account.a1","data":{"seq":7,"type":"deposited","account":"a1","amount":"10","ts":"2026-01-01T00:00:01Z"}}"#
        );
        // Rendered once: the same bytes to every subscriber.
        assert_eq!(first.frame(), first.frame());
        let (_, backlog) = feed
            .subscribe(Some(1), &[Channel::Account("a1".to_owned())])
            .unwrap();
        assert_eq!(backlog.len(), 1);
        assert_eq!(
            backlog[0].data_value(),
            serde_json::json!({"seq": 7, "type": "account_updated", "health": null, "ts": "2026-01-01T00:00:01Z"})
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_dropped_at_once_and_the_rest_are_not() {
        let feed = Feed::new();
        let (mut slow, _) = feed.subscribe(None, &[Channel::Prices]).unwrap();
        let (mut other, _) = feed.subscribe(None, &[Channel::Health]).unwrap();
        for _ in 0..=LAG_LIMIT {
            feed.publish(Channel::Prices, "0");
        }
        feed.publish(Channel::Health, "1");
        assert_eq!(slow.recv().await.unwrap_err(), Ended::Lagged);
        assert_eq!(other.recv().await.unwrap().seq, LAG_LIMIT as u64 + 2);
        assert_eq!(feed.subscribers(), 1);
    }
}
