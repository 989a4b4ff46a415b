//! `solvent cluster`: Solvent over NATS JetStream (DESIGN.md 10, "Scale-out";
//! `docs/scale.md`). `shard` runs one engine shard (also `solvent serve --cluster URL --shard
//! K/N`); `system` runs the system shard, which holds the insurance fund; `publish` routes an event file into the input stream; `route` prints an account's
//! shard. Everything here is the shell: the routing, the message format and the shard's
//! exactly-once loop live in `solvent-cluster`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use solvent_cluster::publish::Publisher;
use solvent_cluster::routing::{MAX_SHARDS, shard_of};
use solvent_cluster::shard::{self, ShardConfig};
use solvent_engine::config::{EngineConfig, FundAuthority};
use solvent_engine::event::parse_line;

use crate::progress::Feedback;

/// The arguments of `solvent cluster`.
#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Runs one shard: its accounts' events and the market's, in stream order, effects out.
    Shard(ShardArgs),
    /// Runs the system shard: the one insurance fund, answering the account shards' deficit
    /// claims (account shards started with `--fund system`).
    System(SystemArgs),
    /// Publishes an event file (EVENTS.jsonl), each event to its shard's subject or the market
    /// subject, acknowledged once JetStream stored it.
    Publish(PublishArgs),
    /// Prints the effects the shards wrote (one JSON line each, with `shard` and `input_seq`),
    /// in the effect stream's order.
    Effects {
        /// NATS servers, comma-separated.
        #[arg(long = "cluster", value_name = "URLS")]
        servers: String,
        /// Only this shard's.
        #[arg(long)]
        shard: Option<u32>,
    },
    /// The HTTP front of a cluster: events routed and published, an account's queries sent to
    /// its shard, rankings and the insurance fund merged from every shard.
    Gateway(crate::gateway::GatewayArgs),
    /// Prints the shard of each account given.
    Route {
        /// The number of shards.
        #[arg(long, value_parser = shard_count())]
        shards: u32,
        /// Account ids.
        #[arg(required = true)]
        accounts: Vec<String>,
    },
}

/// The arguments of a shard (`solvent cluster shard`, `solvent serve --cluster`).
#[derive(Args, Clone)]
pub struct ShardArgs {
    /// NATS servers, comma-separated (`nats://127.0.0.1:4222,nats://127.0.0.1:4223`).
    #[arg(long = "cluster", value_name = "URLS")]
    pub servers: String,
    /// This shard and the number of shards: `K/N`, K from 0.
    #[arg(long, value_name = "K/N")]
    pub shard: String,
    /// The shard's data directory (its venue and snapshots; created if missing).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The venue of a new data directory: a shipped one by name or a VENUE.toml file.
    #[arg(long, value_name = "VENUE")]
    pub venue: Option<PathBuf>,
    /// Replicas of the streams when this shard creates them.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Input messages between snapshots.
    #[arg(long, default_value_t = 1_000, value_name = "MESSAGES")]
    pub snapshot_every: u64,
    /// Effect messages published and not yet acknowledged by JetStream, at most, before the
    /// shard reads on (0: each acknowledged before the next input).
    #[arg(long, default_value_t = shard::DEFAULT_EFFECTS_IN_FLIGHT, value_name = "MESSAGES")]
    pub effects_in_flight: usize,
    /// Testing: the N-th effect message this run publishes is not sent and its
    /// acknowledgement fails (the messages after it are sent), so the shard stops there.
    #[arg(long, hide = true, value_name = "N")]
    pub fail_effect_message: Option<u64>,
    /// Stop once the stream's content at the start is applied (for replays and tests), and
    /// print the shard's report as JSON.
    #[arg(long)]
    pub stop_at_end: bool,
    /// Who decides what the insurance fund pays: `local`, the shard's own fund (its
    /// liquidation fees), or `system`, the system shard (`solvent cluster system`), to which
    /// the shard claims each deficit.
    #[arg(long, value_enum, default_value_t = Fund::Local)]
    pub fund: Fund,
}

/// Who decides what the insurance fund pays, as `--fund` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fund {
    /// The shard's own fund: its fees, deficits met among its own accounts.
    Local,
    /// The system shard's: deficits claimed and answered.
    System,
}

/// The arguments of `solvent cluster system`.
#[derive(Args)]
pub struct SystemArgs {
    /// NATS servers, comma-separated.
    #[arg(long = "cluster", value_name = "URLS")]
    servers: String,
    /// The number of account shards the stream is routed for.
    #[arg(long, value_parser = shard_count())]
    shards: u32,
    /// Replicas of the streams when this command creates them.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// The venue, whose rules a deposit to the fund must meet: a shipped one by name or a
    /// VENUE.toml file (default: the shipped default).
    #[arg(long, value_name = "VENUE")]
    venue: Option<PathBuf>,
    /// Stop after one reading of the streams (the claims answered up to every shard's
    /// progress), and print the report.
    #[arg(long)]
    stop_at_end: bool,
    /// Where the system shard keeps its snapshots (recovery = the newest valid one + the
    /// streams' tail); without it, every start reads the streams from their start.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Effect messages applied between two snapshots.
    #[arg(long, default_value_t = solvent_cluster::system::DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// Print the running system shard's report (asked over NATS) instead of running one:
    /// only one system shard may run, so a second is refused.
    #[arg(long, conflicts_with_all = ["stop_at_end", "data"])]
    query: bool,
    /// Stand by while another system shard runs: wait (for as long as it takes) until its
    /// lease lapses or is given up, keeping the fund as it does meanwhile (starting from this
    /// one's --data snapshots, if any, then reading the streams and following its answers),
    /// then take over from there. Without it, a second system shard is refused after one
    /// lease period.
    #[arg(long, conflicts_with_all = ["query", "stop_at_end"])]
    standby: bool,
}

/// The arguments of `solvent cluster publish`.
#[derive(Args)]
pub struct PublishArgs {
    /// NATS servers, comma-separated.
    #[arg(long = "cluster", value_name = "URLS")]
    servers: String,
    /// The number of shards the stream is routed for.
    #[arg(long, value_parser = shard_count())]
    shards: u32,
    /// Replicas of the streams when this command creates them.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Events per message, at most.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Prefix of the message ids: a publication retried with the same prefix within
    /// JetStream's duplicate window (two minutes) is not stored twice. Default: the file's
    /// BLAKE3 digest.
    #[arg(long)]
    id_prefix: Option<String>,
    /// The event file.
    events: PathBuf,
}

/// The parser of `--shards`: a whole number from 1 to [`MAX_SHARDS`].
pub fn shard_count() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_SHARDS))
}

/// `K/N` as `(K, N)`.
fn shard_and_count(text: &str) -> Result<(u32, u32)> {
    let (shard, shards) = text
        .split_once('/')
        .ok_or_else(|| anyhow!("--shard {text:?}: expected K/N, e.g. 0/4"))?;
    let shard: u32 = shard
        .trim()
        .parse()
        .map_err(|_| anyhow!("--shard {text:?}: K must be a whole number"))?;
    let shards: u32 = shards
        .trim()
        .parse()
        .map_err(|_| anyhow!("--shard {text:?}: N must be a whole number"))?;
    if shards == 0 || shards > MAX_SHARDS {
        bail!("--shard {text:?}: N must be between 1 and {MAX_SHARDS}");
    }
    if shard >= shards {
        bail!("--shard {text:?}: K must be below N (shards are numbered from 0)");
    }
    Ok((shard, shards))
}

/// The NATS server URLs of a `--cluster` list.
pub fn servers(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// `solvent cluster ...`.
///
/// # Errors
/// As each subcommand.
pub fn run(args: &ClusterArgs, feedback: Feedback) -> Result<String> {
    match &args.command {
        ClusterCommand::Shard(args) => run_shard(args, feedback),
        ClusterCommand::System(args) => run_system(args, feedback),
        ClusterCommand::Publish(args) => publish(args, feedback),
        ClusterCommand::Gateway(args) => crate::gateway::run(args),
        ClusterCommand::Effects {
            servers: urls,
            shard,
        } => {
            let urls = servers(urls);
            let messages = runtime()?.block_on(async move {
                let js = async_nats::jetstream::new(shard::client(&urls).await?);
                Ok::<_, anyhow::Error>(solvent_cluster::effects::read_all(&js, *shard).await?)
            })?;
            let mut out = String::new();
            for message in messages {
                for line in message.lines {
                    // Spliced rather than parsed and written again: a float read back by
                    // serde_json may move by an ulp, and these lines are the record.
                    let fields = line.strip_prefix('{').ok_or_else(|| {
                        anyhow!(
                            "shard {}: an effect line is not an object: {line}",
                            message.shard
                        )
                    })?;
                    out.push_str(&format!(
                        "{{\"shard\":{},\"input_seq\":{},\"effect_message\":{},{fields}\n",
                        message.shard, message.input_seq, message.effect_seq
                    ));
                }
            }
            Ok(out)
        }
        ClusterCommand::Route { shards, accounts } => Ok(accounts
            .iter()
            .map(|account| format!("{account}\t{}\n", shard_of(account, *shards)))
            .collect()),
    }
}

/// Runs one shard until Ctrl-C (or, with `--stop-at-end`, until it has caught up).
///
/// # Errors
/// A bad `--shard`, the data directory or venue unusable, NATS unreachable, or the shard's
/// loop failing (named).
pub fn run_shard(args: &ShardArgs, feedback: Feedback) -> Result<String> {
    let (shard, shards) = shard_and_count(&args.shard)?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("{}: cannot create the data directory", args.data.display()))?;
    let venue_text = if args.venue.is_some() || !args.data.join(solvent_store::VENUE_FILE).exists()
    {
        crate::venues::text_of(args.venue.as_deref())?.1
    } else {
        solvent_store::read_venue(&args.data)?.1
    };
    let config = ShardConfig {
        servers: servers(&args.servers),
        shard,
        shards,
        data_dir: args.data.clone(),
        venue_text,
        engine: EngineConfig {
            fund: match args.fund {
                Fund::Local => FundAuthority::Local,
                Fund::System => FundAuthority::SystemShard,
            },
            ..EngineConfig::default()
        },
        replicas: args.replicas,
        snapshot_every: args.snapshot_every.max(1),
        effects_in_flight: args.effects_in_flight,
        fail_effect_message: args.fail_effect_message,
        stop_at_end: args.stop_at_end,
    };
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let report = runtime()?.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_sender.send(true);
            }
        });
        if !config.stop_at_end {
            feedback.note(&format!(
                "solvent: shard {shard}/{shards} reading {} (data {})",
                config.servers.join(","),
                config.data_dir.display()
            ));
        }
        shard::run(config, stop).await
    })?;
    Ok(format!("{}\n", serde_json::to_string(&report)?))
}

/// Runs the system shard until Ctrl-C (or, with `--stop-at-end`, until it has answered what
/// was stored), printing its report; with `--query`, prints the running one's report.
///
/// # Errors
/// NATS unreachable, another system shard running, or an effect or answer message that does
/// not read (named).
fn run_system(args: &SystemArgs, feedback: Feedback) -> Result<String> {
    if args.query {
        let servers = servers(&args.servers);
        let report = runtime()?.block_on(async {
            let client = shard::client(&servers).await?;
            solvent_cluster::system::report(&client).await
        })?;
        let Some(report) = report else {
            bail!("no system shard is running on {}", servers.join(","));
        };
        return Ok(format!("{}\n", serde_json::to_string(&report)?));
    }
    let config = solvent_cluster::system::SystemConfig {
        servers: servers(&args.servers),
        venue_text: crate::venues::text_of(args.venue.as_deref())?.1,
        shards: args.shards,
        replicas: args.replicas,
        stop_at_end: args.stop_at_end,
        poll: std::time::Duration::from_millis(100),
        data_dir: args.data.clone(),
        snapshot_every: args.snapshot_every.max(1),
        lease_wait: if args.standby {
            solvent_cluster::system::LeaseWait::StandBy
        } else {
            solvent_cluster::system::LeaseWait::Refuse
        },
    };
    if !config.stop_at_end {
        // A standby says whom it stands behind, and when it takes over, in its logs.
        crate::serve::logs(false, feedback);
    }
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let report = runtime()?.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_sender.send(true);
            }
        });
        if !config.stop_at_end {
            let role = match config.lease_wait {
                solvent_cluster::system::LeaseWait::Refuse => "system shard",
                solvent_cluster::system::LeaseWait::StandBy => "standby system shard",
            };
            feedback.note(&format!(
                "solvent: {role} of {} reading {}",
                config.shards,
                config.servers.join(",")
            ));
        }
        solvent_cluster::system::run(config, stop).await
    })?;
    Ok(format!("{}\n", serde_json::to_string(&report)?))
}

fn publish(args: &PublishArgs, feedback: Feedback) -> Result<String> {
    let origin = args.events.display().to_string();
    let bytes = std::fs::read(&args.events).with_context(|| format!("{origin}: cannot read"))?;
    let id_prefix = args
        .id_prefix
        .clone()
        .unwrap_or_else(|| blake3::hash(&bytes).to_hex()[..16].to_owned());
    // Every line is parsed before anything is published: a bad line publishes nothing.
    let mut events = Vec::new();
    for (index, line) in bytes.lines().enumerate() {
        let line = line.with_context(|| format!("{origin}: line {}: not UTF-8", index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let envelope = parse_line(&origin, index + 1, line.trim_end_matches('\r'))?;
        solvent_cluster::routing::route(&envelope.event, args.shards)
            .map_err(|error| anyhow!("{origin}: line {}: {error}", index + 1))?;
        events.push(envelope);
    }
    let servers = servers(&args.servers);
    let progress = feedback.bar(
        events.len() as u64,
        "publish {wide_bar} {pos}/{len} events [{elapsed}<{eta}]",
    );
    let report = runtime()?.block_on(async {
        let js = shard::connect(&servers, args.shards, args.replicas).await?;
        let mut publisher = Publisher::new(&js, args.shards, args.batch, &id_prefix);
        for (index, envelope) in events.into_iter().enumerate() {
            publisher.push(envelope).await?;
            if index % 1024 == 0 {
                progress.set_position(index as u64);
            }
        }
        publisher.finish().await
    })?;
    progress.finish_and_clear();
    Ok(format!("{}\n", serde_json::to_string(&report)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_arguments_are_checked() {
        assert_eq!(shard_and_count("1/4").ok(), Some((1, 4)));
        for (text, problem) in [
            ("4/4", "K must be below N"),
            ("0/0", "N must be between 1"),
            ("a/4", "K must be a whole number"),
            ("1-4", "expected K/N"),
        ] {
            let error = shard_and_count(text).err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.contains(problem)),
                "{text}: {error:?}"
            );
        }
    }
}
