//! Only one system shard may run: two would each answer the claims from their own view of the
//! fund, and a claim answered twice (within JetStream's duplicate window, the same message id
//! drops the second; beyond it, not) would be paid twice. The system shard holds a lease, a
//! key of a JetStream key-value bucket ([`LEASE_BUCKET`]) whose messages expire after
//! [`LEASE_TTL`]: it creates the key at its start (refused while another holds it), renews it
//! every [`LEASE_RENEW`] with the revision it last wrote (so a renewal after another took the
//! key over fails), and deletes it when it stops. One killed with SIGKILL leaves its lease to
//! expire: a new one waits at most [`LEASE_TTL`] (and a second) for that, then is refused
//! with the holder's name. Replicated as the streams are, so a NATS node's loss keeps it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::jetstream::kv;

#[allow(clippy::wildcard_imports)]
use super::*;

/// The JetStream key-value bucket holding the system shard's lease.
pub const LEASE_BUCKET: &str = "solvent-system";

/// The key of the lease in [`LEASE_BUCKET`]; its value names the holder.
const LEASE_KEY: &str = "lease";

/// How long a lease lasts unrenewed: a system shard that died leaves it this long at most.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// How often the holder renews its lease.
const LEASE_RENEW: Duration = Duration::from_secs(1);

/// How often a starting system shard asks again for a lease another holds.
const LEASE_RETRY: Duration = Duration::from_millis(250);

/// The lease of the running system shard: renewed in a task of its own (so a long read of the
/// streams does not let it lapse), which stops when the lease is dropped.
pub(super) struct Lease {
    store: kv::Store,
    /// The revision last written by this holder.
    revision: Arc<AtomicU64>,
    /// Turns true when the lease is lost (another holder has the key, or it could not be
    /// renewed for a whole [`LEASE_TTL`]).
    lost: watch::Receiver<bool>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Takes the lease for `holder` (a name for the error another start reports), waiting at
    /// most one [`LEASE_TTL`] (and a second) for a lease held by a system shard that died.
    ///
    /// # Errors
    /// [`ClusterError::SystemShardRunning`] when another system shard holds it and renews it;
    /// [`ClusterError::Nats`] when the bucket cannot be made or read.
    pub(super) async fn acquire(
        js: &Context,
        replicas: usize,
        holder: &str,
    ) -> Result<Self, ClusterError> {
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
        let deadline = tokio::time::Instant::now() + LEASE_TTL + Duration::from_secs(1);
        let revision = loop {
            match store.create(LEASE_KEY, holder.to_owned().into()).await {
                Ok(revision) => break revision,
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if tokio::time::Instant::now() >= deadline {
                        let current = store
                            .get(LEASE_KEY)
                            .await
                            .ok()
                            .flatten()
                            .map(|value| String::from_utf8_lossy(&value).into_owned())
                            .unwrap_or_else(|| "unknown".to_owned());
                        return Err(ClusterError::SystemShardRunning {
                            holder: current,
                            waited: LEASE_TTL + Duration::from_secs(1),
                        });
                    }
                    tokio::time::sleep(LEASE_RETRY).await;
                }
                Err(error) => return Err(nats(&error)),
            }
        };
        let revision = Arc::new(AtomicU64::new(revision));
        let (lose, lost) = watch::channel(false);
        let renewal = tokio::spawn(renew(
            store.clone(),
            holder.to_owned(),
            Arc::clone(&revision),
            lose,
        ));
        Ok(Self {
            store,
            revision,
            lost,
            renewal,
        })
    }

    /// Turns true when the lease is lost.
    pub(super) fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Gives the lease up (deletes the key, if it is still this holder's), so the next system
    /// shard starts at once.
    pub(super) async fn release(&self) {
        self.renewal.abort();
        if !*self.lost.borrow() {
            let revision = self.revision.load(Ordering::SeqCst);
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

/// Renews the lease every [`LEASE_RENEW`] with the revision last written; reports it lost when
/// another holder has written the key, or when no renewal succeeded for a whole [`LEASE_TTL`]
/// (it may have expired and been taken).
async fn renew(
    store: kv::Store,
    holder: String,
    revision: Arc<AtomicU64>,
    lose: watch::Sender<bool>,
) {
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(LEASE_RENEW).await;
        let last = revision.load(Ordering::SeqCst);
        match store.update(LEASE_KEY, holder.clone().into(), last).await {
            Ok(next) => {
                revision.store(next, Ordering::SeqCst);
                renewed = tokio::time::Instant::now();
            }
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                let _ = lose.send(true);
                return;
            }
            Err(_) if renewed.elapsed() >= LEASE_TTL => {
                let _ = lose.send(true);
                return;
            }
            // A transient failure (a leader election): renewed at the next turn.
            Err(_) => {}
        }
    }
}
