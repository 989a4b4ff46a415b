//! One JetStream message of input: a batch of events, each in the journal's binary encoding
//! ([`solvent_store::codec`]), so a shard reads exactly the events that were published, field
//! for field.
//!
//! ```text
//! message := MAGIC event*
//! event   := u32 little-endian length, the encoded event (its time and content)
//! ```
//!
//! A message carries no sequence numbers: the shard gives each event its number from the
//! message's stream sequence ([`event_seq`]), the same in every run and on every shard.

use solvent_engine::event::Envelope;
use solvent_store::codec;

/// The first bytes of every message (format 1).
pub const MAGIC: &[u8; 4] = b"SLV1";

/// Most events one message may carry: the event's place in its message takes the low
/// [`EVENT_INDEX_BITS`] bits of its sequence number.
pub const MAX_EVENTS_PER_MESSAGE: usize = 1 << EVENT_INDEX_BITS;

/// Bits of an event's sequence number that hold its place in its message.
pub const EVENT_INDEX_BITS: u32 = 16;

/// The sequence number of the `index`th event of the message at stream sequence
/// `stream_seq`: strictly increasing in stream order and in message order, as the engine
/// requires, and the same on every shard that reads the message.
#[must_use]
pub fn event_seq(stream_seq: u64, index: usize) -> u64 {
    (stream_seq << EVENT_INDEX_BITS) | index as u64
}

/// The stream sequence of the message that carried the event numbered `seq`.
#[must_use]
pub fn stream_seq_of(seq: u64) -> u64 {
    seq >> EVENT_INDEX_BITS
}

/// Why a message could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The message does not start with [`MAGIC`].
    #[error("message at stream sequence {stream_seq}: not a Solvent event batch (no SLV1 header)")]
    NotABatch {
        /// Its stream sequence.
        stream_seq: u64,
    },
    /// An event is truncated or does not decode.
    #[error("message at stream sequence {stream_seq}, event {index}: {problem}")]
    Event {
        /// Its stream sequence.
        stream_seq: u64,
        /// The event's place in the message.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// A message on the fund subject that is not a claim answer
    /// ([`crate::system::ClaimAnswer`]).
    #[error("message at stream sequence {stream_seq}: not a claim answer: {problem}")]
    NotAnAnswer {
        /// Its stream sequence.
        stream_seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// More events than [`MAX_EVENTS_PER_MESSAGE`].
    #[error("message at stream sequence {stream_seq}: more than {MAX_EVENTS_PER_MESSAGE} events")]
    TooManyEvents {
        /// Its stream sequence.
        stream_seq: u64,
    },
}

/// Encodes `events` (their sequence numbers are not written) as one message.
#[must_use]
pub fn encode<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let mut body = Vec::new();
    for envelope in events {
        body.clear();
        codec::encode(envelope, &mut body);
        // An encoded event is a few hundred bytes at most (a smile of many strikes a few
        // kilobytes): far below 4 GiB.
        let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// Decodes the message at stream sequence `stream_seq`, numbering its events by
/// [`event_seq`].
///
/// # Errors
/// [`MessageError`] naming the message and the event.
pub fn decode(stream_seq: u64, bytes: &[u8]) -> Result<Vec<Envelope>, MessageError> {
    let mut rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(MessageError::NotABatch { stream_seq })?;
    let mut events = Vec::new();
    while !rest.is_empty() {
        let index = events.len();
        if index >= MAX_EVENTS_PER_MESSAGE {
            return Err(MessageError::TooManyEvents { stream_seq });
        }
        let bad = |problem: String| MessageError::Event {
            stream_seq,
            index,
            problem,
        };
        let (length, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated length".to_owned()))?;
        let length = u32::from_le_bytes(*length) as usize;
        if after.len() < length {
            return Err(bad(format!(
                "truncated: {length} bytes announced, {} left",
                after.len()
            )));
        }
        let (body, after) = after.split_at(length);
        events.push(codec::decode(event_seq(stream_seq, index), body).map_err(bad)?);
        rest = after;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use solvent_engine::event::parse_line;

    #[test]
    fn a_batch_reads_back_numbered_by_its_stream_sequence() {
        let lines = [
            r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"deposit","account":"a1","asset":"USDT","amount":"10000.50"}"#,
            r#"{"seq":2,"ts":"2026-01-01T00:00:01Z","type":"index_price","underlying":"BTC","price":"60000"}"#,
        ];
        let events: Vec<Envelope> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| parse_line("t", i + 1, line))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(events.len(), 2);
        let bytes = encode(&events);
        let read = decode(7, &bytes).unwrap_or_default();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].seq, 7 << 16);
        assert_eq!(read[1].seq, (7 << 16) + 1);
        assert_eq!(stream_seq_of(read[1].seq), 7);
        for (read, sent) in read.iter().zip(&events) {
            assert_eq!((&read.event, read.ts), (&sent.event, sent.ts));
        }
        assert_eq!(
            decode(3, b"nope"),
            Err(MessageError::NotABatch { stream_seq: 3 })
        );
        let truncated = &bytes[..bytes.len() - 1];
        assert!(matches!(
            decode(3, truncated),
            Err(MessageError::Event { index: 1, .. })
        ));
        assert_eq!(decode(3, MAGIC), Ok(Vec::new()));
    }
}
