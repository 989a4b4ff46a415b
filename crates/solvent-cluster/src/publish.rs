//! Publishing events into the cluster: each routed to its subject, batched per message, and
//! acknowledged only once JetStream has stored the message on a majority of its replicas (with
//! `sync_interval: always`, on disk).
//!
//! Order: every shard must see its accounts' events and the market events in the order they were
//! given. Batches of different shards commute (no shard reads another's subject), so the
//! publisher keeps one open batch per shard while account events come, and closes them all
//! before a market event; and closes the market batch before the next account event.

use std::collections::{BTreeMap, VecDeque};

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use async_nats::jetstream::context::PublishAckFuture;
use solvent_engine::event::Envelope;

use crate::ClusterError;
use crate::message::{self, MAX_EVENTS_PER_MESSAGE};
use crate::routing::{MARKET_SUBJECT, Route, SYSTEM_SUBJECT, route, shard_subject};

/// Messages published and not yet acknowledged, at most.
const IN_FLIGHT: usize = 256;

/// What a publication did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PublishReport {
    /// Events published.
    pub events: u64,
    /// Messages published.
    pub messages: u64,
    /// Messages JetStream reported as duplicates of ones it held (same message id within its
    /// duplicate window): a retried publication, not stored twice.
    pub duplicates: u64,
    /// The stream sequence of the last message.
    pub last_stream_seq: Option<u64>,
}

/// Publishes events to a cluster of `shards`, at most `batch` events per message.
pub struct Publisher<'a> {
    js: &'a Context,
    shards: u32,
    batch: usize,
    /// Prefix of the message ids (`<prefix>-<n>`): JetStream drops a message whose id it has
    /// seen within its duplicate window, so a publication retried with the same prefix is not
    /// stored twice.
    id_prefix: String,
    shard_batches: BTreeMap<u32, Vec<Envelope>>,
    market_batch: Vec<Envelope>,
    in_flight: VecDeque<PublishAckFuture>,
    report: PublishReport,
}

impl<'a> Publisher<'a> {
    /// A publisher to `js` for `shards` shards, batching up to `batch` events per message
    /// (clamped to `1..=MAX_EVENTS_PER_MESSAGE`), naming its messages `<id_prefix>-<n>`.
    #[must_use]
    pub fn new(js: &'a Context, shards: u32, batch: usize, id_prefix: &str) -> Self {
        Self {
            js,
            shards,
            batch: batch.clamp(1, MAX_EVENTS_PER_MESSAGE),
            id_prefix: id_prefix.to_owned(),
            shard_batches: BTreeMap::new(),
            market_batch: Vec::new(),
            in_flight: VecDeque::new(),
            report: PublishReport::default(),
        }
    }

    /// Routes and queues one event (publishing the batches it closes).
    ///
    /// # Errors
    /// [`ClusterError::Route`] for an event no single subject carries (nothing is published for
    /// it); [`ClusterError::Nats`] when JetStream refuses or does not acknowledge a message.
    pub async fn push(&mut self, envelope: Envelope) -> Result<(), ClusterError> {
        match route(&envelope.event, self.shards)? {
            Route::Shard(shard) => {
                if !self.market_batch.is_empty() {
                    self.flush_market().await?;
                }
                let batch = self.shard_batches.entry(shard).or_default();
                batch.push(envelope);
                if batch.len() >= self.batch {
                    let events = std::mem::take(batch);
                    self.send(&shard_subject(shard), &events).await?;
                }
            }
            Route::System => {
                // Alone, after everything queued before it: the system shard sees it in its
                // place among the accounts' events.
                self.flush_shards().await?;
                self.flush_market().await?;
                self.send(SYSTEM_SUBJECT, std::slice::from_ref(&envelope))
                    .await?;
            }
            Route::Market => {
                self.flush_shards().await?;
                self.market_batch.push(envelope);
                if self.market_batch.len() >= self.batch {
                    self.flush_market().await?;
                }
            }
        }
        Ok(())
    }

    /// Publishes what is queued and waits for every acknowledgement.
    ///
    /// # Errors
    /// [`ClusterError::Nats`] when JetStream refuses or does not acknowledge a message.
    pub async fn finish(mut self) -> Result<PublishReport, ClusterError> {
        self.flush_shards().await?;
        self.flush_market().await?;
        while let Some(ack) = self.in_flight.pop_front() {
            self.acknowledged(ack).await?;
        }
        Ok(self.report)
    }

    async fn flush_shards(&mut self) -> Result<(), ClusterError> {
        let batches = std::mem::take(&mut self.shard_batches);
        for (shard, events) in batches {
            if !events.is_empty() {
                self.send(&shard_subject(shard), &events).await?;
            }
        }
        Ok(())
    }

    async fn flush_market(&mut self) -> Result<(), ClusterError> {
        let events = std::mem::take(&mut self.market_batch);
        if !events.is_empty() {
            self.send(MARKET_SUBJECT, &events).await?;
        }
        Ok(())
    }

    async fn send(&mut self, subject: &str, events: &[Envelope]) -> Result<(), ClusterError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}-{}", self.id_prefix, self.report.messages).as_str(),
        );
        let ack = self
            .js
            .publish_with_headers(subject.to_owned(), headers, message::encode(events).into())
            .await
            .map_err(|error| ClusterError::Nats(format!("publishing to {subject}: {error}")))?;
        self.report.messages += 1;
        self.report.events += events.len() as u64;
        self.in_flight.push_back(ack);
        while self.in_flight.len() > IN_FLIGHT {
            if let Some(ack) = self.in_flight.pop_front() {
                self.acknowledged(ack).await?;
            }
        }
        Ok(())
    }

    async fn acknowledged(&mut self, ack: PublishAckFuture) -> Result<(), ClusterError> {
        let ack = ack
            .await
            .map_err(|error| ClusterError::Nats(format!("message not acknowledged: {error}")))?;
        if ack.duplicate {
            self.report.duplicates += 1;
        }
        self.report.last_stream_seq = Some(
            self.report
                .last_stream_seq
                .map_or(ack.sequence, |last| last.max(ack.sequence)),
        );
        Ok(())
    }
}
