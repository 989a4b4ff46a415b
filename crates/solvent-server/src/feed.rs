//! The WebSocket feed (DESIGN.md 10): every durable effect, numbered, on named channels.
//!
//! One broadcast ring carries every message to every connection; each connection keeps the
//! channels it subscribed to. Publishing never waits for a reader: a connection that falls more
//! than the ring's capacity behind is dropped with a reason, so a slow subscriber can never hold
//! the engine back. The last [`RETAINED`] messages are also kept for resuming: a client that
//! reconnects with the last sequence number it saw gets every message after it, without a gap,
//! or a `resume_gap` error if they are gone.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

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

/// A live receiver and the retained messages a resume must send first.
pub type Subscription = (broadcast::Receiver<Arc<Message>>, Vec<Arc<Message>>);

/// One message of the feed.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    /// Its number in the feed: strictly increasing, with no gaps across all channels.
    pub seq: u64,
    /// The channel.
    #[serde(serialize_with = "serialize_channel")]
    pub channel: Channel,
    /// The effect or price, as `solvent replay` writes it.
    pub data: serde_json::Value,
}

fn serialize_channel<S: serde::Serializer>(channel: &Channel, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(channel)
}

/// The feed: a numbered broadcast with a retained tail.
pub struct Feed {
    sender: broadcast::Sender<Arc<Message>>,
    retained: Mutex<Retained>,
}

struct Retained {
    next_seq: u64,
    messages: VecDeque<Arc<Message>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    /// An empty feed.
    #[must_use]
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(LAG_LIMIT);
        Self {
            sender,
            retained: Mutex::new(Retained {
                next_seq: 1,
                messages: VecDeque::new(),
            }),
        }
    }

    /// Numbers and sends one message. Never waits.
    pub fn publish(&self, channel: Channel, data: serde_json::Value) {
        // The lock orders numbering and sending together, so receivers see numbers in order.
        let mut retained = self
            .retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let message = Arc::new(Message {
            seq: retained.next_seq,
            channel,
            data,
        });
        retained.next_seq += 1;
        if retained.messages.len() == RETAINED {
            retained.messages.pop_front();
        }
        retained.messages.push_back(Arc::clone(&message));
        // No receiver is not an error: nobody is listening.
        let _ = self.sender.send(message);
    }

    /// A receiver of every message published from now on, with the retained messages after
    /// `since` (`None`: none). `Err` with the oldest retained number when messages after `since`
    /// are gone.
    ///
    /// # Errors
    /// The oldest sequence number still retained, when `since` is older than the tail.
    pub fn subscribe(&self, since: Option<u64>) -> Result<Subscription, u64> {
        let retained = self
            .retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let receiver = self.sender.subscribe();
        let Some(since) = since else {
            return Ok((receiver, Vec::new()));
        };
        let oldest = retained
            .messages
            .front()
            .map_or(retained.next_seq, |message| message.seq);
        if since + 1 < oldest {
            return Err(oldest);
        }
        let backlog = retained
            .messages
            .iter()
            .filter(|message| message.seq > since)
            .cloned()
            .collect();
        Ok((receiver, backlog))
    }

    /// The last `limit` retained messages of `channel`, oldest first.
    #[must_use]
    pub fn recent(&self, channel: &Channel, limit: usize) -> Vec<serde_json::Value> {
        let retained = self
            .retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut messages: Vec<serde_json::Value> = retained
            .messages
            .iter()
            .rev()
            .filter(|message| message.channel == *channel)
            .take(limit)
            .map(|message| serde_json::json!({ "feed_seq": message.seq, "data": message.data }))
            .collect();
        messages.reverse();
        messages
    }

    /// The number the next message will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_seq
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
            feed.publish(Channel::Prices, serde_json::json!(price));
        }
        let (_, backlog) = feed.subscribe(Some(2)).unwrap();
        let numbers: Vec<u64> = backlog.iter().map(|message| message.seq).collect();
        assert_eq!(numbers, [3, 4, 5]);
        let (mut receiver, backlog) = feed.subscribe(None).unwrap();
        assert!(backlog.is_empty());
        feed.publish(Channel::Health, serde_json::json!("next"));
        assert_eq!(receiver.try_recv().unwrap().seq, 6);
        for _ in 0..RETAINED {
            feed.publish(Channel::Prices, serde_json::json!(0));
        }
        assert_eq!(feed.subscribe(Some(3)).unwrap_err(), 7);
    }
}
