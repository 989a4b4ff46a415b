//! Reading the shards' effects back from the effect stream (for operators, the API's merged
//! views and the tests).

use async_nats::jetstream::Context;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures_util::StreamExt;

use crate::ClusterError;
use crate::routing::{EFFECT_STREAM, EFFECT_SUBJECT_PREFIX, effect_subject};
use crate::shard::INPUT_SEQ_HEADER;

/// One effect message: the effects of one input message on one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectMessage {
    /// The shard that wrote it.
    pub shard: u32,
    /// The input stream sequence whose effects it holds.
    pub input_seq: u64,
    /// Its own sequence in the effect stream.
    pub effect_seq: u64,
    /// The effects, one JSON line each (as `solvent replay` writes them).
    pub lines: Vec<String>,
}

/// Every effect message of shard `shard` (all shards if `None`) the effect stream holds now, in
/// input order (by input sequence, then shard). Not stream order: a shard publishes its effect
/// messages pipelined, and one lost in flight is published again by the shard's next run,
/// after later ones that were stored.
///
/// # Errors
/// [`ClusterError::Nats`] when the stream cannot be read, or a message is not an effect message
/// of a shard.
pub async fn read_all(
    js: &Context,
    shard: Option<u32>,
) -> Result<Vec<EffectMessage>, ClusterError> {
    let mut messages = read(js, shard, 0).await?;
    messages.sort_by_key(|message| (message.input_seq, message.shard, message.effect_seq));
    Ok(messages)
}

/// The effect messages of shard `shard` (all shards if `None`) stored at effect-stream
/// sequences above `after`, in stream order: what a recovering shard reads to learn which
/// inputs' effects are stored since its snapshot.
///
/// # Errors
/// As [`read_all`].
pub async fn read_after(
    js: &Context,
    shard: Option<u32>,
    after: u64,
) -> Result<Vec<EffectMessage>, ClusterError> {
    read(js, shard, after).await
}

async fn read(
    js: &Context,
    shard: Option<u32>,
    after: u64,
) -> Result<Vec<EffectMessage>, ClusterError> {
    let nats =
        |error: &dyn std::fmt::Display| ClusterError::Nats(format!("{EFFECT_STREAM}: {error}"));
    let filter = shard.map_or_else(|| format!("{EFFECT_SUBJECT_PREFIX}*"), effect_subject);
    read_stream(js, EFFECT_STREAM, &filter, after)
        .await?
        .into_iter()
        .map(|stored| {
            let shard = stored
                .subject
                .strip_prefix(EFFECT_SUBJECT_PREFIX)
                .and_then(|k| k.parse::<u32>().ok())
                .ok_or_else(|| nats(&format!("subject {} is not a shard's", stored.subject)))?;
            let input_seq = stored
                .headers
                .as_ref()
                .and_then(|h| h.get(INPUT_SEQ_HEADER))
                .and_then(|v| v.as_str().parse::<u64>().ok())
                .ok_or_else(|| {
                    nats(&format!(
                        "message {} has no {INPUT_SEQ_HEADER}",
                        stored.stream_seq
                    ))
                })?;
            let text = std::str::from_utf8(&stored.payload)
                .map_err(|_| nats(&format!("message {} is not UTF-8", stored.stream_seq)))?;
            Ok(EffectMessage {
                shard,
                input_seq,
                effect_seq: stored.stream_seq,
                lines: text.lines().map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// A message as a stream stores it.
pub(crate) struct StoredMessage {
    /// Its sequence in the stream.
    pub(crate) stream_seq: u64,
    /// The subject it was published on.
    pub(crate) subject: String,
    /// Its headers, if any.
    pub(crate) headers: Option<async_nats::HeaderMap>,
    /// Its payload.
    pub(crate) payload: bytes::Bytes,
}

/// The messages of `subject` (a filter, wildcards allowed) that stream `stream` holds above
/// sequence `after`, in stream order, read through one ordered consumer.
///
/// # Errors
/// [`ClusterError::Nats`] naming the stream when it cannot be read.
pub(crate) async fn read_stream(
    js: &Context,
    stream: &str,
    subject: &str,
    after: u64,
) -> Result<Vec<StoredMessage>, ClusterError> {
    let nats = |error: &dyn std::fmt::Display| ClusterError::Nats(format!("{stream}: {error}"));
    let stream = js.get_stream(stream).await.map_err(|e| nats(&e))?;
    let deliver_policy = if after == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    };
    let mut consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy,
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| nats(&e))?;
    let mut pending = consumer.info().await.map_err(|e| nats(&e))?.num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(|e| nats(&e))?;
    while pending > 0 {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message.map_err(|e| nats(&e))?;
        let info = message.info().map_err(|e| nats(&e))?;
        pending = info.pending;
        out.push(StoredMessage {
            stream_seq: info.stream_sequence,
            subject: message.subject.to_string(),
            headers: message.headers.clone(),
            payload: message.payload.clone(),
        });
    }
    Ok(out)
}
