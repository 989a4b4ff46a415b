//! # solvent-cluster
//!
//! Solvent scaled out over NATS JetStream (DESIGN.md 10, "Scale-out"; `docs/scale.md`):
//! accounts sharded by a stable hash of their id over engine processes, each reading its own
//! subject and the market subject of one replicated stream, in stream order, through one
//! ordered consumer.
//!
//! - [`routing`]: which subject an event goes to ([`routing::shard_of`], [`routing::route`]).
//! - [`message`]: a batch of events as one message, numbered by its stream sequence.
//! - [`publish`]: the publisher; an event is acknowledged once JetStream has stored it.
//! - [`shard`]: the shard: recovery from its snapshot and the stream, exactly-once effects.
//! - [`query`]: queries each shard answers for its accounts, and the merged views.
//! - [`system`]: the system shard, the one authority over the insurance fund: it answers the
//!   account shards' deficit claims (two phases, both on the streams), auto-deleveraging across
//!   shards a deficit the fund cannot cover (a request, each shard's offer, the answer's shares).
//!   Only one runs: it holds a lease in a JetStream key-value bucket
//!   ([`system::LEASE_BUCKET`]), and a second is refused.
//! - [`system_snapshot`]: the system shard's snapshots, with a state hash.
//! - [`adl`]: auto-deleveraging candidates merged from each shard's best.
//!
//! Not yet built (issue 13): money between shards (a transfer or a fill between accounts of two
//! shards is refused by the router); see docs/scale.md, "What remains", for the limits of
//! auto-deleveraging and socialising across shards.

pub mod adl;
pub mod effects;
pub mod message;
pub mod publish;
pub mod query;
pub mod routing;
pub mod shard;
pub mod system;
pub mod system_snapshot;

/// Why the cluster could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS could not be reached, or JetStream refused or failed a request.
    #[error("NATS: {0}")]
    Nats(String),
    /// The input stream was made for another number of shards.
    #[error(
        "the input stream is routed for {recorded:?} shards, not {expected}: its accounts' events are on other subjects (reshard as docs/scale.md describes)"
    )]
    ShardCount {
        /// The count this process was started with.
        expected: u32,
        /// The count recorded in the stream's metadata.
        recorded: Option<String>,
    },
    /// The shard's snapshot includes input the stream no longer holds: the stream lost
    /// acknowledged messages (deleted and made again, or cut).
    #[error(
        "the shard's snapshot includes input up to stream sequence {snapshot}, but the input stream ends at {stream_last}: the stream lost messages"
    )]
    StreamBehind {
        /// The snapshot's last input sequence.
        snapshot: u64,
        /// The stream's last sequence.
        stream_last: u64,
    },
    /// The stream no longer holds the next message the shard needs.
    #[error(
        "the shard needs input from stream sequence {next}, but the input stream starts at {stream_first}: messages were removed before the shard applied them"
    )]
    StreamCut {
        /// The next sequence the shard needs.
        next: u64,
        /// The stream's first sequence.
        stream_first: u64,
    },
    /// A file of the shard's data directory (an effect floor) could not be written.
    #[error("{}: {problem}", path.display())]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// Another system shard holds the lease (only one may run: see
    /// [`system::LEASE_BUCKET`]).
    #[error(
        "another system shard is running ({holder}): only one may run. It renews its lease in the JetStream key-value bucket {bucket:?}; this one waited {waited:?} for it to lapse (a system shard that died leaves it at most {ttl:?})",
        bucket = system::LEASE_BUCKET,
        ttl = system::LEASE_TTL
    )]
    SystemShardRunning {
        /// Who holds the lease, as it wrote it.
        holder: String,
        /// How long this one waited.
        waited: std::time::Duration,
    },
    /// The system shard lost its lease while running (another took it over after it could not
    /// renew it for a whole lease period): it stops rather than answer beside another.
    #[error(
        "the system shard lost its lease in {bucket:?} (not renewed for {ttl:?}, or taken over): it stops, another system shard answers now",
        bucket = system::LEASE_BUCKET,
        ttl = system::LEASE_TTL
    )]
    LeaseLost,
    /// The system shard's publication on `solvent.fund` was refused (a message of the same id
    /// stored, or one after the last it knew) and it found no message there to follow: it
    /// stops rather than guess. A refusal for another system shard's messages is not this:
    /// the system shard reads them and follows them.
    #[error(
        "a publication on solvent.fund was refused (a message of its id, or after stream sequence {expected}, that this system shard did not publish), and the subject holds nothing after {expected} to follow: it stops"
    )]
    Fenced {
        /// The last sequence on the subject this system shard knew of.
        expected: u64,
    },
    /// The shard's configuration is wrong.
    #[error("{0}")]
    Config(String),
    /// An event no single subject can carry.
    #[error(transparent)]
    Route(#[from] routing::RouteError),
    /// A message that does not decode.
    #[error(transparent)]
    Message(#[from] message::MessageError),
    /// The shard's data directory (venue, snapshots) failed.
    #[error(transparent)]
    Store(#[from] solvent_store::StoreError),
}
