//! The client ids the engine thread answers retries from (issue 11): a bounded window of the
//! most recent ids in memory, and the journal behind it for every older one.
//!
//! Memory is bounded by [`crate::core::Limits::client_window`] ids (each with its first reply)
//! plus the ids of the events still on their way to disk: an id leaves the window only once the
//! entry that carried it is durable, so it is always found in one place or the other. A retry of
//! an id older than the window costs one indexed read of the journal (the `clients` table's key
//! is the client id); the answer is then kept in the window, so a client retrying the same old
//! id again is answered from memory.

use std::collections::{HashMap, VecDeque};

use solvent_store::{ClientRecord, JournalError, JournalReader};

/// Recent client ids in memory, older ones in the journal.
pub struct ClientIds {
    recent: HashMap<String, ClientRecord>,
    /// The window's ids, oldest first, with the sequence number of their entry (eviction
    /// waits for it to be durable).
    order: VecDeque<(String, u64)>,
    capacity: usize,
    journal: Box<dyn JournalReader>,
}

impl ClientIds {
    /// An empty window of `capacity` ids (at least one) over the journal read by `journal`.
    #[must_use]
    pub fn new(capacity: usize, journal: Box<dyn JournalReader>) -> Self {
        Self {
            recent: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            journal,
        }
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
        let mut ids = ClientIds::new(2, MemoryJournal::default().reader().unwrap());
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
}
