//! Only one system shard may run: two would each answer the claims from their own view of the
//! fund, and a claim answered twice (within JetStream's duplicate window, the same message id
//! drops the second; beyond it, not) would be paid twice. The system shard holds a lease, a
//! key of a JetStream key-value bucket ([`LEASE_BUCKET`]) whose messages expire after
//! [`LEASE_TTL`]: it creates the key at its start (refused while another holds it), renews it
//! every [`LEASE_RENEW`] with the revision it last wrote (so a renewal after another took the
//! key over fails), and deletes it when it stops. One killed with SIGKILL leaves its lease to
//! expire: a new one waits at most [`LEASE_TTL`] (and a second) for that, then is refused
//! with the holder's name ([`LeaseWait::Refuse`]), or, started as a standby
//! ([`LeaseWait::StandBy`]), waits for as long as the holder renews it and takes it over when
//! it lapses. Replicated as the streams are, so a NATS node's loss keeps it. A standby's ask
//! can be written by JetStream though its answer never arrives (a timeout, a dropped
//! connection, a leader election): the next ask is then refused by the standby's own key, so it
//! keeps the names of such asks and takes a key holding one of them as its own, instead of
//! waiting behind itself until that key lapses.
//!
//! The renewal task alone would let a system shard that stalled past its lease (stopped,
//! swapped out) publish once more when it resumes, before the task's next turn tells it the
//! lease is gone: so each publication is preceded by [`Holder::confirm`], the same write.

use std::sync::Arc;

use async_nats::jetstream::kv;
use tokio::sync::Mutex;

#[allow(clippy::wildcard_imports)]
use super::*;

/// The JetStream key-value bucket holding the system shard's lease.
pub const LEASE_BUCKET: &str = "solvent-system";

/// The key of the lease in [`LEASE_BUCKET`]; its value names the holder.
pub const LEASE_KEY: &str = "lease";

/// How long a lease lasts unrenewed: a system shard that died leaves it this long at most.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// How often the holder renews its lease.
const LEASE_RENEW: Duration = Duration::from_secs(1);

/// How often a starting system shard asks again for a lease another holds: a standby takes a
/// lapsed lease over at most this long after it lapses.
pub const LEASE_RETRY: Duration = Duration::from_millis(250);

/// What a starting system shard does while another holds the lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeaseWait {
    /// Waits one [`LEASE_TTL`] (and a second) for a lease left by a system shard that died,
    /// then is refused ([`ClusterError::SystemShardRunning`]): an operator who starts a second
    /// system shard by mistake learns it at once.
    #[default]
    Refuse,
    /// Stands by: asks again every [`LEASE_RETRY`] for as long as the holder renews the lease
    /// (until stopped), and takes it over once it lapses or is given up. The standby is warm:
    /// while it waits it reads the streams and keeps the fund as the holder does, following
    /// the holder's answers and requests instead of publishing its own, so it takes over from
    /// where the holder was rather than from its last snapshot.
    StandBy,
}

/// What [`Lease::acquire`] came back with.
pub(super) enum Acquisition {
    /// The lease is this system shard's; `stood_by` is how long it waited behind another
    /// holder for it (`None`: it did not stand by).
    Held {
        /// The lease, renewed until dropped or released (boxed: it is many times the size
        /// of the other variant).
        lease: Box<Lease>,
        /// How long a standby waited behind another holder.
        stood_by: Option<Duration>,
    },
    /// A standby stopped (its `stop` watch turned true) before the lease came free.
    Stopped {
        /// How long it stood by.
        stood_by: Duration,
    },
}

/// The lease of the running system shard: renewed in a task of its own (so a long read of the
/// streams does not let it lapse), which stops when the lease is dropped.
pub(super) struct Lease {
    store: kv::Store,
    /// What this holder last wrote; the renewal task and [`Holder::confirm`] share it.
    held: Arc<Mutex<Held>>,
    /// Turns true when the lease is lost (another holder has the key, or it could not be
    /// renewed for a whole [`LEASE_TTL`]).
    lost: watch::Receiver<bool>,
    holder: Holder,
    renewal: tokio::task::JoinHandle<()>,
}

/// The revision this holder last wrote and when: both move together, under one lock, so a
/// renewal and a confirmation never read each other's half-written state (a revision written
/// to the bucket but not yet recorded would look like another holder's).
#[derive(Debug)]
struct Held {
    revision: u64,
    renewed: tokio::time::Instant,
}

/// What the system shard's publications ask of the lease: [`Holder::confirm`], called
/// immediately before each, writes the lease over the revision this holder last wrote.
#[derive(Clone)]
pub(super) struct Holder {
    store: kv::Store,
    name: String,
    held: Arc<Mutex<Held>>,
    lose: Arc<watch::Sender<bool>>,
}

/// What one write of the lease over the revision last written found.
enum Renewal {
    /// Written: this holder has the lease for another [`LEASE_TTL`].
    Renewed,
    /// Another holder wrote the key, or it lapsed (the write expects a revision it no longer
    /// has): the lease is lost.
    TakenOver,
    /// NATS did not answer (a leader election, a connection lost): try again.
    Failed,
}

impl Holder {
    /// Writes the lease over the revision this holder last wrote, once.
    async fn renew(&self) -> Renewal {
        let mut held = self.held.lock().await;
        match self
            .store
            .update(LEASE_KEY, self.name.clone().into(), held.revision)
            .await
        {
            Ok(next) => {
                held.revision = next;
                held.renewed = tokio::time::Instant::now();
                Renewal::Renewed
            }
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Renewal::TakenOver
            }
            Err(_) => Renewal::Failed,
        }
    }

    /// Whether no renewal has succeeded for a whole [`LEASE_TTL`]: the lease may have lapsed
    /// and been taken.
    async fn expired(&self) -> bool {
        self.held.lock().await.renewed.elapsed() >= LEASE_TTL
    }

    /// Confirms, immediately before a publication, that this system shard still holds the
    /// lease: it writes the lease over the revision it last wrote, a write JetStream refuses
    /// once another holder has written the key (a read could be answered by a replica behind
    /// the leader). A system shard that stalled (stopped, swapped out, paused) past its lease
    /// while another took over learns it here, before it publishes, rather than at its renewal
    /// task's next turn, which may come after the publication. A confirmed lease lasts another
    /// [`LEASE_TTL`], so no other holder can take it before the publication unless this one
    /// stalls that long in between (which the fence on `solvent.fund` then catches).
    ///
    /// # Errors
    /// [`ClusterError::LeaseLost`] when another holder wrote the key or it lapsed, or when no
    /// write succeeded for a whole [`LEASE_TTL`]; the lease is then reported lost.
    pub(super) async fn confirm(&self) -> Result<(), ClusterError> {
        loop {
            match self.renew().await {
                Renewal::Renewed => return Ok(()),
                Renewal::TakenOver => break,
                Renewal::Failed if self.expired().await => break,
                // A transient failure: asked again shortly, within the lease.
                Renewal::Failed => tokio::time::sleep(LEASE_RETRY).await,
            }
        }
        let _ = self.lose.send(true);
        Err(ClusterError::LeaseLost)
    }
}

impl Lease {
    /// Takes the lease for the system shard `who` (`pid P on HOST`: the holder's name, with
    /// the time it took the lease, is what another start reports). While another holds it,
    /// `wait` decides: [`LeaseWait::Refuse`] waits at most one [`LEASE_TTL`] (and a second)
    /// for a lease held by a system shard that died; [`LeaseWait::StandBy`] waits for as long
    /// as it takes, logging once that it stands by and behind whom, and gives up when `stop`
    /// turns true (or its sender is dropped, as a running system shard stops then too).
    ///
    /// # Errors
    /// [`ClusterError::SystemShardRunning`] when another system shard holds it and renews it
    /// (with [`LeaseWait::Refuse`]); [`ClusterError::Nats`] when the bucket cannot be made or
    /// read.
    pub(super) async fn acquire(
        js: &Context,
        replicas: usize,
        who: &str,
        wait: LeaseWait,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Acquisition, ClusterError> {
        let nats = |error: &dyn std::fmt::Display| {
            ClusterError::Nats(format!(
                "the system shard's lease ({LEASE_BUCKET}): {error}"
            ))
        };
        let store = match js.get_key_value(LEASE_BUCKET).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: LEASE_BUCKET.to_owned(),
                    description: "the running system shard (solvent-cluster)".to_owned(),
                    history: 1,
                    max_age: LEASE_TTL,
                    storage: async_nats::jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..kv::Config::default()
                })
                .await
                .map_err(|error| nats(&error))?,
        };
        let started = tokio::time::Instant::now();
        let deadline = started + LEASE_TTL + Duration::from_secs(1);
        // Set when a standby first finds the lease held: it logs that once, not every retry.
        let mut standing_by = false;
        // Set while a standby's asks fail: it logs the first failure of a run of them, not each.
        let mut failing = false;
        // A standby's asks that failed in transit: the server may have written one of them.
        let mut unanswered = UnansweredAsks::default();
        // The time in the name is when this one took the lease, not when it started to wait:
        // a standby's name then tells since when it answers.
        let (holder, revision) = loop {
            let holder = format!("{who}, since {}", jiff::Timestamp::now());
            let asked = store.create(LEASE_KEY, holder.clone().into());
            // A standby's stop is honoured while NATS is slow to answer, too (an outage is when
            // it waits longest). A create abandoned midway at worst leaves a key nobody renews,
            // which lapses.
            let created = match wait {
                LeaseWait::Refuse => asked.await,
                LeaseWait::StandBy => match until_stopped(stop, asked).await {
                    Some(created) => created,
                    None => {
                        return Ok(Acquisition::Stopped {
                            stood_by: started.elapsed(),
                        });
                    }
                },
            };
            match created {
                Ok(revision) => break (holder, revision),
                // A standby waits through NATS's failures (a leader election, a node lost):
                // they are when it may be needed, and it has nothing to lose by asking again.
                Err(error)
                    if wait == LeaseWait::StandBy
                        && error.kind() != kv::CreateErrorKind::AlreadyExists =>
                {
                    unanswered.remember(holder, tokio::time::Instant::now());
                    if !failing {
                        failing = true;
                        tracing::warn!(%error, bucket = LEASE_BUCKET, "standby system shard cannot ask for the lease; asking again");
                    }
                    // One LEASE_RETRY between two asks, cut short by a stop.
                    if until_stopped(stop, tokio::time::sleep(LEASE_RETRY))
                        .await
                        .is_none()
                    {
                        return Ok(Acquisition::Stopped {
                            stood_by: started.elapsed(),
                        });
                    }
                }
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => match wait {
                    LeaseWait::Refuse if tokio::time::Instant::now() >= deadline => {
                        return Err(ClusterError::SystemShardRunning {
                            holder: current_holder(&store).await,
                            waited: LEASE_TTL + Duration::from_secs(1),
                        });
                    }
                    LeaseWait::Refuse => tokio::time::sleep(LEASE_RETRY).await,
                    LeaseWait::StandBy => {
                        // The key may be this standby's own: an earlier ask written by the
                        // server whose answer was lost. Without this it would wait behind
                        // itself until its own unrenewed key lapsed (up to LEASE_TTL).
                        if unanswered.any_since(tokio::time::Instant::now()) {
                            let Some(read) = until_stopped(stop, store.entry(LEASE_KEY)).await
                            else {
                                return Ok(Acquisition::Stopped {
                                    stood_by: started.elapsed(),
                                });
                            };
                            if let Ok(Some(entry)) = read
                                && let Some(name) = unanswered.own(&entry.value)
                            {
                                tracing::info!(
                                    holder = %name,
                                    bucket = LEASE_BUCKET,
                                    "the lease is this system shard's own ask, written though its answer was lost"
                                );
                                break (name, entry.revision);
                            }
                        }
                        if !standing_by {
                            standing_by = true;
                            // Read before the macro: its arguments are not Send across an
                            // await.
                            let Some(current) = until_stopped(stop, current_holder(&store)).await
                            else {
                                return Ok(Acquisition::Stopped {
                                    stood_by: started.elapsed(),
                                });
                            };
                            tracing::info!(
                                holder = %current,
                                bucket = LEASE_BUCKET,
                                "system shard standing by: another holds the lease; taking it over when it lapses"
                            );
                        }
                        failing = false;
                        if until_stopped(stop, tokio::time::sleep(LEASE_RETRY))
                            .await
                            .is_none()
                        {
                            return Ok(Acquisition::Stopped {
                                stood_by: started.elapsed(),
                            });
                        }
                    }
                },
                Err(error) => return Err(nats(&error)),
            }
        };
        let held = Arc::new(Mutex::new(Held {
            revision,
            renewed: tokio::time::Instant::now(),
        }));
        let (lose, lost) = watch::channel(false);
        let holder = Holder {
            store: store.clone(),
            name: holder,
            held: Arc::clone(&held),
            lose: Arc::new(lose),
        };
        let renewal = tokio::spawn(renew(holder.clone()));
        if standing_by {
            tracing::info!(
                holder = %holder.name,
                stood_by_ms = started.elapsed().as_millis(),
                "system shard took the lease over: answering from the fund it kept standing by"
            );
        }
        Ok(Acquisition::Held {
            lease: Box::new(Self {
                store,
                held,
                lost,
                holder,
                renewal,
            }),
            stood_by: standing_by.then(|| started.elapsed()),
        })
    }

    /// Turns true when the lease is lost.
    pub(super) fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// What the publications confirm the lease with.
    pub(super) fn holder(&self) -> Holder {
        self.holder.clone()
    }

    /// Gives the lease up (deletes the key, if it is still this holder's), so the next system
    /// shard starts at once.
    pub(super) async fn release(&self) {
        self.renewal.abort();
        if !*self.lost.borrow() {
            let revision = self.held.lock().await.revision;
            let _ = self
                .store
                .delete_expect_revision(LEASE_KEY, Some(revision))
                .await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A system shard stopped without `release` (its task aborted) stops renewing: its
        // lease expires.
        self.renewal.abort();
    }
}

/// How long an ask that failed in transit is kept as possibly written: the server may apply it
/// after the client gave up on it, and the key it wrote then lives [`LEASE_TTL`] from there; two
/// lease periods leave room for that delay.
const UNANSWERED_KEPT: Duration = Duration::from_secs(2 * LEASE_TTL.as_secs());

/// The names a standby asked the lease under whose answers were lost (a timeout, a connection
/// dropped), with when it asked: JetStream may have written any of them. Each name carries the
/// time it was made, so none is ever another system shard's.
#[derive(Debug, Default)]
struct UnansweredAsks {
    asks: Vec<(String, tokio::time::Instant)>,
}

impl UnansweredAsks {
    /// Keeps `name`, asked at `at`, and forgets asks too old to hold the key still.
    fn remember(&mut self, name: String, at: tokio::time::Instant) {
        self.asks
            .retain(|(_, asked)| at.saturating_duration_since(*asked) < UNANSWERED_KEPT);
        self.asks.push((name, at));
    }

    /// Whether an ask recent enough to hold the key at `now` is kept.
    fn any_since(&self, now: tokio::time::Instant) -> bool {
        self.asks
            .iter()
            .any(|(_, asked)| now.saturating_duration_since(*asked) < UNANSWERED_KEPT)
    }

    /// The kept name `value` (the lease's value as read) is, if any.
    fn own(&self, value: &[u8]) -> Option<String> {
        self.asks
            .iter()
            .find(|(name, _)| name.as_bytes() == value)
            .map(|(name, _)| name.clone())
    }
}

/// `work`'s result, or `None` as soon as `stop` turns true (or its sender is dropped) first.
async fn until_stopped<T>(
    stop: &mut watch::Receiver<bool>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    if *stop.borrow() {
        return None;
    }
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return None;
                }
            }
        }
    }
}

/// The holder's name as the lease holds it, or `unknown` when it cannot be read (it lapsed
/// between the refused create and this read, or NATS did not answer): only for a message.
async fn current_holder(store: &kv::Store) -> String {
    store
        .get(LEASE_KEY)
        .await
        .ok()
        .flatten()
        .map(|value| String::from_utf8_lossy(&value).into_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Renews the lease every [`LEASE_RENEW`] with the revision last written; reports it lost when
/// another holder has written the key, or when no renewal succeeded for a whole [`LEASE_TTL`]
/// (it may have expired and been taken).
async fn renew(holder: Holder) {
    loop {
        tokio::time::sleep(LEASE_RENEW).await;
        let lost = match holder.renew().await {
            Renewal::Renewed => false,
            Renewal::TakenOver => true,
            Renewal::Failed => holder.expired().await,
        };
        if lost {
            let _ = holder.lose.send(true);
            return;
        }
        // Otherwise a transient failure (a leader election) is renewed at the next turn.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_ask_is_recognised_as_the_lease_it_wrote() {
        let start = tokio::time::Instant::now();
        let mut asks = UnansweredAsks::default();
        assert!(!asks.any_since(start), "nothing asked yet");
        asks.remember("pid 7 on a, since 2026-12-06T00:00:00Z".to_owned(), start);
        asks.remember(
            "pid 7 on a, since 2026-12-06T00:00:00.25Z".to_owned(),
            start + LEASE_RETRY,
        );
        assert!(asks.any_since(start + LEASE_TTL));
        assert_eq!(
            asks.own(b"pid 7 on a, since 2026-12-06T00:00:00.25Z")
                .as_deref(),
            Some("pid 7 on a, since 2026-12-06T00:00:00.25Z")
        );
        // Another system shard's name, or the same process's under another time, is not ours.
        assert_eq!(asks.own(b"pid 9 on b, since 2026-12-06T00:00:00Z"), None);
        assert_eq!(asks.own(b"pid 7 on a, since 2026-12-06T00:00:01Z"), None);
        // Two lease periods on, no ask can hold the key any longer: none is read for.
        assert!(!asks.any_since(start + LEASE_RETRY + UNANSWERED_KEPT));
        asks.remember(
            "pid 7 on a, since 2026-12-06T00:00:12Z".to_owned(),
            start + 3 * LEASE_TTL,
        );
        assert_eq!(
            asks.own(b"pid 7 on a, since 2026-12-06T00:00:00Z"),
            None,
            "forgotten"
        );
        assert_eq!(asks.asks.len(), 1);
    }
}
