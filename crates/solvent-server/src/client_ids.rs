//! The client ids the engine thread answers retries from (issue 11): a bounded window of the
//! most recent ids in memory, and the journal behind it for every older one.
//!
//! Memory is bounded by [`crate::core::Limits::client_window`] ids (each with its first reply)
//! plus the ids of the events still on their way to disk, plus a Bloom filter of fixed size
//! ([`FILTER_BYTES`]): an id leaves the window only once the entry that carried it is durable, so
//! it is always found in one place or the other. A retry of an id older than the window costs
//! one indexed read of the journal (the `clients` table's key is the client id); the answer is
//! then kept in the window, so a client retrying the same old id again is answered from memory.
//!
//! A new id would cost the same read only to learn it is absent (about 5 µs, the engine thread's
//! time): the filter, which holds every id the journal has (read at start) and every id accepted
//! since, answers "never seen" for most new ids without the read. It never forgets an id (no
//! false "never seen"); as ids accumulate beyond tens of millions its "maybe" grows common and
//! more new ids take the read, which is always exact.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher as _;

use solvent_store::{ClientRecord, JournalError, JournalReader};

/// The Bloom filter's size: 16 MiB, 2^27 bits, probed 4 times per id. Under 1% of new ids take
/// a journal read up to about 12 million ids held, a third at 50 million.
pub const FILTER_BYTES: usize = 1 << 24;

const FILTER_PROBES: usize = 4;

/// Recent client ids in memory, older ones in the journal.
pub struct ClientIds {
    recent: HashMap<String, ClientRecord>,
    /// The window's ids, oldest first, with the sequence number of their entry (eviction
    /// waits for it to be durable).
    order: VecDeque<(String, u64)>,
    capacity: usize,
    journal: Box<dyn JournalReader>,
    seen: Filter,
}

impl ClientIds {
    /// An empty window of `capacity` ids (at least one) over the journal read by `journal`,
    /// whose ids it reads once into its filter.
    ///
    /// # Errors
    /// The journal's client ids could not be read.
    pub fn new(capacity: usize, journal: Box<dyn JournalReader>) -> Result<Self, JournalError> {
        let mut seen = Filter::new();
        journal.each_client_id(&mut |id| seen.insert(id))?;
        Ok(Self {
            recent: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            journal,
            seen,
        })
    }

    /// Ids held in memory now.
    #[must_use]
    pub fn len_in_memory(&self) -> usize {
        self.recent.len()
    }

    /// The first answer given to `client_id`, from the window or else from the journal (an
    /// answer read from the journal joins the window).
    ///
    /// # Errors
    /// The journal could not be read: whether the id is a retry is unknown.
    pub fn find(&mut self, client_id: &str) -> Result<Option<&ClientRecord>, JournalError> {
        if !self.recent.contains_key(client_id) {
            if !self.seen.may_hold(client_id) {
                return Ok(None);
            }
            match self.journal.client(client_id)? {
                Some(record) => self.insert(client_id.to_owned(), record),
                None => return Ok(None),
            }
        }
        Ok(self.recent.get(client_id))
    }

    /// The first answer given to `client_id` if it is in the window (no read).
    #[must_use]
    pub fn recent(&self, client_id: &str) -> Option<&ClientRecord> {
        self.recent.get(client_id)
    }

    /// Keeps the first answer given to `client_id`.
    pub fn insert(&mut self, client_id: String, record: ClientRecord) {
        self.seen.insert(&client_id);
        self.order.push_back((client_id.clone(), record.seq));
        self.recent.insert(client_id, record);
    }

    /// Forgets the oldest ids beyond the capacity whose entries are durable (`durable`: the
    /// last durable sequence number); the others wait for their entries' commits.
    pub fn evict(&mut self, durable: Option<u64>) {
        while self.order.len() > self.capacity {
            let Some((_, seq)) = self.order.front() else {
                break;
            };
            if durable.is_none_or(|durable| *seq > durable) {
                break;
            }
            if let Some((id, _)) = self.order.pop_front() {
                self.recent.remove(&id);
            }
        }
    }
}

/// A Bloom filter of [`FILTER_BYTES`]: "maybe held" or "certainly never inserted".
struct Filter {
    words: Vec<u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl Filter {
    fn new() -> Self {
        Self {
            words: vec![0; FILTER_BYTES / 8],
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The bit positions of `id` (double hashing from one 64-bit hash).
    fn bits(&self, id: &str) -> [usize; FILTER_PROBES] {
        let hash = self.hasher.hash_one(id);
        let step = hash.rotate_left(32) | 1;
        let mask = (FILTER_BYTES as u64) * 8 - 1;
        let mut bits = [0; FILTER_PROBES];
        for (probe, bit) in (0_u64..).zip(&mut bits) {
            // `mask` keeps the position below the filter's bit count, which fits in usize.
            *bit = usize::try_from(hash.wrapping_add(probe.wrapping_mul(step)) & mask).unwrap_or(0);
        }
        bits
    }

    fn insert(&mut self, id: &str) {
        for bit in self.bits(id) {
            self.words[bit / 64] |= 1 << (bit % 64);
        }
    }

    fn may_hold(&self, id: &str) -> bool {
        self.bits(id)
            .into_iter()
            .all(|bit| self.words[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solvent_store::{Journal as _, MemoryJournal};

    fn record(seq: u64) -> ClientRecord {
        ClientRecord {
            seq,
            reply: Some(format!(r#"{{"seq":{seq}}}"#)),
        }
    }

    #[test]
    fn the_window_keeps_its_capacity_and_never_drops_an_id_not_yet_durable() {
        let mut ids = ClientIds::new(2, MemoryJournal::default().reader().unwrap()).unwrap();
        for seq in 1..=5 {
            ids.insert(format!("id-{seq}"), record(seq));
        }
        // Nothing is durable yet: all five stay.
        ids.evict(None);
        assert_eq!(ids.len_in_memory(), 5);
        // Up to 2 durable: 1 and 2 go, 3 waits for its commit though beyond the capacity.
        ids.evict(Some(2));
        assert_eq!(ids.len_in_memory(), 3);
        assert!(ids.recent("id-3").is_some());
        ids.evict(Some(5));
        assert_eq!(ids.len_in_memory(), 2);
        assert!(ids.recent("id-4").is_some() && ids.recent("id-5").is_some());
    }

    #[test]
    fn the_filter_never_forgets_and_rarely_claims_an_id_it_never_saw() {
        let mut filter = Filter::new();
        for n in 0..100_000 {
            filter.insert(&format!("seen-{n}"));
        }
        assert!((0..100_000).all(|n| filter.may_hold(&format!("seen-{n}"))));
        let claimed = (0..100_000)
            .filter(|n| filter.may_hold(&format!("new-{n}")))
            .count();
        assert!(claimed < 10, "{claimed} false positives in 100,000");
    }
}
