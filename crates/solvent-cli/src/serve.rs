//! `solvent serve` and `solvent keys`: the service's shell (DESIGN.md 10). Everything here is
//! I/O: the data directory, the clock for key dates, the runtime, signals and logs; the engine,
//! the journal's format and the API live in their crates.
//!
//! A data directory holds `venue.toml` (the venue its events were accepted under), the journal
//! `journal.sqlite`, `snapshots/` and `keys.json` (SHA-256 digests of the API keys, never a
//! secret). Starting recovers the newest valid snapshot plus the journal's tail and checks
//! nothing was lost: a torn or corrupt journal stops the start with the entry named, unless
//! `--truncate-torn-tail` is given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use solvent_engine::config::EngineConfig;
use solvent_server::core::SnapshotPolicy;
use solvent_server::demo;
use solvent_server::keys::{KeyRing, Scope};
use solvent_store::{RecoverOptions, init_data_dir, read_venue, recover_with};

/// The arguments of `solvent serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// The data directory (created if missing). Required unless `--demo`.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The venue of a new data directory: a shipped one by name or a VENUE.toml file (default:
    /// the built-in default). An existing directory keeps the venue it was created with.
    #[arg(long, value_name = "VENUE")]
    venue: Option<PathBuf>,
    /// Where to listen (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A demo: a temporary data directory, a seeded population and a live replay of history;
    /// BTC's and ETH's portfolio-margin ranges are scaled with a forecast made at each replayed
    /// close (from the demo's own committed history; with `--venue`, those the venue scales).
    #[arg(long)]
    demo: bool,
    /// Daily price history (a folder of `COIN-USDT.binance.daily.csv` files, as
    /// ../shared/data/prices) for the scheduled forecasts: at each 00:00 UTC the engine's time
    /// crosses, the service appends one `scenario_range` event per underlying the venue scales
    /// (`[portfolio_margin.vol_scaled]`), computed as `solvent forecast` computes it from the
    /// history's closes and, after its last day, the last index price taken before each 00:00
    /// (docs/vol-scaled-ranges.md).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["cluster", "demo"])]
    forecast_history: Option<PathBuf>,
    /// With `--forecast-history`: the files' last rows are complete days (by default they are
    /// dropped, as `solvent forecast` drops them: the shared files end with a partial day).
    #[arg(long, requires = "forecast_history")]
    forecast_history_complete: bool,
    /// Accepted events between snapshots.
    #[arg(long, default_value_t = 100_000, value_name = "EVENTS")]
    snapshot_every: u64,
    /// Requests per second allowed per key.
    #[arg(long, default_value_t = 10_000.0)]
    rate_limit: f64,
    /// Client ids kept in memory with their first replies (the most recent; a retry of an older
    /// one is answered from the journal): with a fixed 16 MiB filter, the bound of the service's
    /// memory for deduplication.
    #[arg(long, default_value_t = 100_000, value_name = "IDS")]
    client_window: usize,
    /// Cut a torn or corrupt journal tail at recovery (reported), instead of refusing to start.
    #[arg(long)]
    truncate_torn_tail: bool,
    /// Logs as JSON lines (default: human-readable).
    #[arg(long)]
    log_json: bool,
    /// With `--demo`: the accounts of the seeded opening.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    demo_accounts: usize,
    /// With `--demo`: historical seconds replayed per real second (1,440: a day a minute).
    #[arg(long, default_value_t = 1_440.0, value_name = "X")]
    demo_speed: f64,
    /// With `--demo`: the seed of the opening and of the feed.
    #[arg(long, default_value_t = solvent_engine::population::DEFAULT_SEED, value_name = "SEED")]
    demo_seed: u64,
    /// Runs as one shard of a cluster over these NATS servers (comma-separated), with
    /// `--shard K/N` and `--data`: see `solvent cluster shard`.
    #[arg(long, value_name = "URLS", requires = "shard", conflicts_with = "demo")]
    cluster: Option<String>,
    /// With `--cluster`: this shard and the number of shards, `K/N`.
    #[arg(long, value_name = "K/N", requires = "cluster")]
    shard: Option<String>,
    /// With `--cluster`: who decides what the insurance fund pays (`system`: the system shard,
    /// `solvent cluster system`; see `solvent cluster shard --fund`).
    #[arg(long, value_enum, default_value_t = crate::cluster::Fund::Local, requires = "cluster")]
    fund: crate::cluster::Fund,
    /// Transparent huge pages for the service's memory (Linux). `on` (the default) leaves them
    /// to the allocator, which asks the kernel for 2 MiB pages: fewer TLB misses and about 7%
    /// less CPU, but the first touch of each page stalls whichever thread touches it for the
    /// whole page (up to 6 ms measured on a VM), an acknowledgement's latency with it. `off`
    /// spares those stalls where CPU is to spare (docs/benchmarks.md, "Transparent huge pages").
    #[arg(long, value_enum, default_value_t = HugePages::On, value_name = "on|off")]
    huge_pages: HugePages,
}

/// Whether the service's memory may be backed by transparent huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HugePages {
    /// As the allocator and the kernel decide.
    On,
    /// Never, for this process (`PR_SET_THP_DISABLE`).
    Off,
}

/// Applies `--huge-pages` to this process before the service allocates its state. The kernel
/// reads the flag at each page fault, so memory mapped earlier follows it too.
fn set_huge_pages(choice: HugePages) -> Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_thp_disable(choice == HugePages::Off)
        .map_err(|error| anyhow!("--huge-pages: the kernel refused the setting: {error}"))?;
    #[cfg(not(target_os = "linux"))]
    let _ = choice;
    Ok(())
}

/// The arguments of `solvent keys`.
#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Makes a key and prints its secret (shown once; only its digest is kept).
    Add {
        /// The data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// admin, feeder, viewer or account:<id>.
        #[arg(long)]
        scope: String,
    },
    /// Lists the keys (ids, scopes, dates; never secrets).
    List {
        /// The data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Revokes a key by its id.
    Revoke {
        /// The data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The key's id (the 8 hex digits after `sk_`).
        id: String,
    },
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// `solvent keys`.
///
/// # Errors
/// The key file cannot be read or written; an unknown scope or id.
pub fn keys(args: &KeysArgs) -> Result<String> {
    match &args.command {
        KeysCommand::Add { data, scope } => {
            let scope: Scope = scope
                .parse()
                .map_err(|problem| anyhow!("--scope: {problem}"))?;
            std::fs::create_dir_all(data)
                .with_context(|| format!("{}: cannot create the directory", data.display()))?;
            let mut ring = KeyRing::open(data)?;
            let secret = ring.add(scope.clone(), &now())?;
            Ok(format!(
                "{secret}\n(scope {scope}; the secret is shown only now)\n"
            ))
        }
        KeysCommand::List { data } => {
            let ring = KeyRing::open(data)?;
            let mut out = String::new();
            for key in ring.list() {
                out.push_str(&format!(
                    "{}  {:<20}  {}{}\n",
                    key.id,
                    key.scope,
                    key.created,
                    if key.revoked { "  revoked" } else { "" }
                ));
            }
            if out.is_empty() {
                out.push_str("no keys\n");
            }
            Ok(out)
        }
        KeysCommand::Revoke { data, id } => {
            let mut ring = KeyRing::open(data)?;
            ring.revoke(id)?;
            Ok(format!("revoked {id}\n"))
        }
    }
}

/// The service's logs on stderr: `info` and above, or under `--quiet` warnings and errors only
/// (what an operator must see); `RUST_LOG` overrides either. The cluster's long-running
/// commands log the same way.
pub(crate) fn logs(json: bool, feedback: crate::progress::Feedback) {
    let default_level = if feedback.quiet() { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Only the first subscriber of a process is installed; a second call is a no-op.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The venue of `dir`: the recorded one, or `venue` (or the default) recorded now. A new demo
/// without `--venue` records the default venue with BTC's and ETH's ranges scaled
/// ([`demo::VOL_SCALED_TOML`]): its forecasts are made at each replayed close.
fn venue_of(dir: &Path, venue: Option<&Path>, demo: bool) -> Result<solvent_core::venue::Venue> {
    // A new directory records the venue (default: the built-in one); an existing one refuses
    // a venue other than the recorded one, since its journal was accepted under it.
    if venue.is_some() || !dir.join(solvent_store::VENUE_FILE).exists() {
        let (_, mut text) = crate::venues::text_of(venue)?;
        if demo && venue.is_none() {
            text.push_str(demo::VOL_SCALED_TOML);
        }
        init_data_dir(dir, &text)?;
    }
    Ok(read_venue(dir)?.0)
}

/// The scheduled forecasts of `venue`'s scaled underlyings, from the files in `history` (each
/// underlying's alone, as `solvent forecast` reads them).
///
/// # Errors
/// A venue that scales nothing; a missing or unreadable file.
fn forecaster(
    venue: &solvent_core::venue::Venue,
    history: &Path,
    drop_last: bool,
) -> Result<solvent_server::forecast::Forecaster> {
    let scaled: Vec<String> = venue
        .portfolio_margin
        .as_ref()
        .map(|pm| pm.vol_scaled.keys().cloned().collect())
        .unwrap_or_default();
    if scaled.is_empty() {
        bail!(
            "--forecast-history: the venue scales no underlying's range ([portfolio_margin.vol_scaled]): there is nothing to forecast"
        );
    }
    let mut histories = std::collections::BTreeMap::new();
    for name in scaled {
        let prices = crate::read_price_history(history, std::slice::from_ref(&name), drop_last)
            .context("--forecast-history")?;
        histories.insert(name, prices);
    }
    Ok(solvent_server::forecast::Forecaster::new(histories)?)
}

/// `solvent serve`.
///
/// # Errors
/// Recovery fails (named), the address cannot be bound, or the journal fails while serving.
pub fn run(args: &ServeArgs, feedback: crate::progress::Feedback) -> Result<String> {
    set_huge_pages(args.huge_pages)?;
    logs(args.log_json, feedback);
    if let (Some(servers), Some(shard)) = (&args.cluster, &args.shard) {
        let data = args
            .data
            .clone()
            .ok_or_else(|| anyhow!("--data: missing; a shard keeps its snapshots there"))?;
        return crate::cluster::run_shard(
            &crate::cluster::ShardArgs {
                servers: servers.clone(),
                shard: shard.clone(),
                data,
                venue: args.venue.clone(),
                replicas: 3,
                snapshot_every: 1_000,
                effects_in_flight: solvent_cluster::shard::DEFAULT_EFFECTS_IN_FLIGHT,
                fail_effect_message: None,
                stop_at_end: false,
                fund: args.fund,
            },
            feedback,
        );
    }
    let dir = match (&args.data, args.demo) {
        (Some(dir), _) => dir.clone(),
        (None, true) => {
            let stamp = jiff::Timestamp::now().as_millisecond();
            std::env::temp_dir().join(format!("solvent-demo-{}-{stamp}", std::process::id()))
        }
        (None, false) => bail!("--data: missing; give a data directory (or --demo)"),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create the data directory", dir.display()))?;
    let venue = venue_of(&dir, args.venue.as_deref(), args.demo)?;
    let demo = if args.demo {
        Some(Demo::prepare(args, &venue)?)
    } else {
        None
    };
    let forecaster = match &args.forecast_history {
        Some(history) => Some(forecaster(
            &venue,
            history,
            !args.forecast_history_complete,
        )?),
        // The demo forecasts from its own committed closes (no shared data at run time).
        None if args.demo => Some(demo::forecaster()?),
        None => None,
    };
    let recovered = recover_with(
        &dir,
        venue.clone(),
        EngineConfig::default(),
        RecoverOptions {
            truncate_torn_tail: args.truncate_torn_tail,
        },
    )
    .with_context(|| format!("{}: recovery failed", dir.display()))?;
    let report = &recovered.report;
    tracing::info!(
        data = %dir.display(),
        snapshot = ?report.snapshot.as_ref().map(|s| s.seq),
        replayed = report.replayed,
        last_seq = ?report.last_seq,
        state_hash = %report.state_hash,
        "recovered"
    );
    if let Some(truncation) = &report.truncated {
        tracing::warn!(?truncation, "a torn journal tail was cut");
    }
    // The events' effects are written to the audit file by their own writer, after the events
    // are durable (off the acknowledgement path): the effects the engine rendered, handed over
    // through a bounded queue; it first writes those a crash left unwritten, from the journal,
    // as it does when the queue overflows. A failure stops it, logged; the service goes on
    // answering (the audit pages say how far the effects reach) and a restart or
    // `solvent journal migrate` writes the rest.
    let audit_writer =
        solvent_store::AuditWriter::start(&dir, venue.clone(), EngineConfig::default())
            .with_context(|| format!("{}: cannot start the audit writer", dir.display()))?;
    let mut ring = KeyRing::open(&dir)?;
    let mut announce = Vec::new();
    if args.demo {
        announce.push(format!(
            "read-only key: {}",
            ring.add(Scope::Viewer, &now())?
        ));
    } else if ring.list().is_empty() {
        announce.push(format!(
            "admin key (shown once; add more with `solvent keys add`): {}",
            ring.add(Scope::Admin, &now())?
        ));
    }
    let config = solvent_server::Config {
        listen: args.listen,
        rate_limit: args.rate_limit,
        limits: solvent_server::core::Limits {
            client_window: args.client_window.max(1),
            ..solvent_server::core::Limits::default()
        },
        snapshots: Some(SnapshotPolicy {
            dir: dir.clone(),
            every_events: args.snapshot_every.max(1),
            keep: 3,
        }),
        // The demo replays 2025: an event posted without a time joins the history's clock.
        clock: if args.demo {
            solvent_server::core::Clock::Engine
        } else {
            solvent_server::core::Clock::Wall
        },
        forecaster,
        audit: Some(audit_writer.sink()),
        ..solvent_server::Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let running =
            solvent_server::start(recovered.engine, Box::new(recovered.journal), ring, &config)
                .await
                .with_context(|| format!("{}: cannot listen", args.listen))?;
        println!(
            "solvent: serving http://{} (data {})",
            running.addr,
            dir.display()
        );
        for line in &announce {
            println!("{line}");
        }
        // Cancelled by the select below (dropping a future stops it).
        let demo_run = async {
            match demo {
                Some(demo) => demo.run(&running.state.core).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            _ = tokio::signal::ctrl_c() => Ok(()),
            failure = running.failed() => Err(anyhow!(
                "the journal failed, the service stopped: {failure}"
            )),
            demo = demo_run => demo,
        };
        running.stop().await.context("stopping")?;
        let audit = audit_writer.stop();
        tracing::info!(
            effects_through = ?audit.effects_through,
            written = audit.written,
            replayed = audit.replayed,
            fallbacks = audit.fallbacks,
            first_overflow = ?audit.first_overflow,
            failure = ?audit.failure,
            "audit writer stopped"
        );
        if args.demo && args.data.is_none() {
            // The demo's temporary directory; a failure to remove it is not worth an error.
            let _ = std::fs::remove_dir_all(&dir);
        }
        outcome.map(|()| "stopped\n".to_owned())
    })
}

/// The demo's content: the opening events and the feed that follows them (DESIGN.md 10).
struct Demo {
    opening: Vec<solvent_server::core::Incoming>,
    feed: demo::Feed,
    pace: demo::Pace,
    accounts: usize,
    history: (jiff::Timestamp, jiff::Timestamp),
}

impl Demo {
    fn prepare(args: &ServeArgs, venue: &solvent_core::venue::Venue) -> Result<Self> {
        if !(args.demo_speed.is_finite() && args.demo_speed > 0.0) {
            bail!("--demo-speed: must be a positive number");
        }
        let extract = demo::Extract::embedded()?;
        let opening = demo::population(
            venue,
            args.demo_seed,
            args.demo_accounts,
            extract.opening_time(),
        )
        .context("--demo-accounts")?;
        let feed = demo::Feed::new(
            venue,
            &extract,
            &opening,
            demo::FeedParams {
                seed: args.demo_seed,
                ..demo::FeedParams::default()
            },
        )?;
        Ok(Self {
            opening,
            feed,
            pace: demo::Pace {
                speed: args.demo_speed,
                ..demo::Pace::default()
            },
            accounts: args.demo_accounts,
            history: (extract.start(), extract.end()),
        })
    }

    /// Loads the opening, then replays the history; the service keeps serving the final state
    /// after the end. Runs until dropped.
    async fn run(mut self, core: &solvent_server::core::CoreHandle) -> Result<()> {
        let opened = demo::load_opening(core, std::mem::take(&mut self.opening), 1_000).await?;
        println!(
            "demo: {} accounts opened ({} events); replaying {} to {} at {}x",
            self.accounts, opened.accepted, self.history.0, self.history.1, self.pace.speed
        );
        let report =
            demo::run_feed(core, &mut self.feed, &self.pace, std::future::pending()).await?;
        if report.finished {
            println!(
                "demo: the history is replayed ({} events, {} refused); still serving",
                report.accepted, report.rejected
            );
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}
