//! The system shard (issue 13 item 3; docs/scale.md, "Money across shards"): the one authority
//! over the insurance fund. The venue's deposits to `insurance_fund` are routed to it
//! ([`SYSTEM_SUBJECT`] of the input stream). Account shards run with
//! [`FundAuthority::SystemShard`](solvent_engine::config::FundAuthority::SystemShard): the
//! liquidation fees that feed the fund they book (in their piece of it, their
//! `insurance_fund` ledger account) and report in their effects, and a bankrupt account's
//! deficit they advance from `pending_claims` and claim, in their effects too. The system
//! shard reads every shard's effect messages, applies them in input order, keeps the fund's
//! balance per asset ([`Fund`]), and answers each claim with a [`ClaimAnswer`] on
//! [`FUND_SUBJECT`] of the input stream, which every account shard reads in stream order: the
//! answer is an input at a stream sequence, so a replay applies it at the same place.
//!
//! Two phases, deterministic both: the claim is an effect of an input message (exactly once,
//! as every effect); the answer a function of the deposits and effects of earlier input, taken
//! in input order once every shard has recorded its progress past the claim
//! (`solvent.progress.<K>`, [`watermark`]). The system shard resumes from its newest snapshot
//! ([`crate::system_snapshot`]; without one it reads the streams from their start) and
//! publishes only the answers the input stream does not hold yet, each with its own message id.
//!
//! A claim the fund cannot cover is auto-deleveraged across shards in three phases: the system
//! shard publishes an [`AdlRequest`] on [`FUND_SUBJECT`]; every account shard writes its offer
//! ([`offer_line`]) in its effect message for the request's input; once every shard's progress
//! is past the request, the system shard merges the offers ([`crate::adl`]) and answers with
//! the shares ([`AdlShare`]), which each shard applies to its own accounts. On a venue with
//! `deficits = "socialise"` the same three phases share the rest beyond the fund among the
//! positions in profit ([`ShareRequest`], [`profit_line`], [`SocialShare`]).

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::ClusterError;
use crate::adl::AdlCandidate;
use crate::effects::{self, EffectMessage};
use crate::query::BankruptSide;
use crate::routing::{
    EFFECT_STREAM, FUND_SUBJECT, INPUT_STREAM, PROGRESS_SUBJECT_PREFIX, SYSTEM_SUBJECT,
};
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::Effect;
use solvent_engine::event::Event;

mod fund;
mod lease;
mod messages;

pub use fund::*;
pub use lease::{LEASE_BUCKET, LEASE_KEY, LEASE_RETRY, LEASE_TTL, LeaseWait};
pub use messages::*;

/// What the system shard is.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// NATS server URLs.
    pub servers: Vec<String>,
    /// The venue's text (TOML): a deposit to the fund is checked by its rules, as one engine
    /// checks it (known asset, positive amount, the asset's precision).
    pub venue_text: String,
    /// The number of account shards the input is routed for.
    pub shards: u32,
    /// Replicas of the streams when the system shard creates them.
    pub replicas: usize,
    /// Stop once every effect message stored when it started is read and answered.
    pub stop_at_end: bool,
    /// How often the effect stream is read again for new messages.
    pub poll: Duration,
    /// Where its snapshots are kept (`system-snapshots/`); `None`: none, every start reads
    /// the streams from their start.
    pub data_dir: Option<std::path::PathBuf>,
    /// Effect messages applied between snapshots (a snapshot is also written at the end of a
    /// `stop_at_end` run that applied any).
    pub snapshot_every: u64,
    /// What it does while another system shard holds the lease: refused after one lease
    /// period ([`LeaseWait::Refuse`], the default), or stands by until it can take it over
    /// ([`LeaseWait::StandBy`]).
    pub lease_wait: LeaseWait,
}

/// Effect messages applied between two snapshots of the system shard, by default.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1000;

/// The subject the system shard answers on with its [`SystemReport`] so far (NATS
/// request-reply, any payload): the gateway's view of the fund.
pub const SYSTEM_QUERY_SUBJECT: &str = "solvent.query.system";

/// How long [`fund`] waits for the system shard.
pub const SYSTEM_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the system shard did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SystemReport {
    /// Effect messages read.
    pub effect_messages: u64,
    /// Claims answered (by this run or an earlier one).
    pub claims: u64,
    /// Answers this run published.
    pub answers_published: u64,
    /// Deposits to the fund refused by the venue's rules (not counted), as one engine refuses
    /// them.
    pub deposits_refused: u64,
    /// Answers found on the input stream already (an earlier run's), not published again.
    pub answers_already_published: u64,
    /// What the fund holds at the end, by asset.
    pub fund: BTreeMap<String, Decimal>,
    /// The input stream sequence every shard's effects are stored through (the least of the
    /// shards' recorded progress), if every shard has recorded some.
    pub watermark: Option<u64>,
    /// Effect messages read and not yet applied: of input beyond the watermark.
    pub effect_messages_waiting: usize,
    /// Requests for candidates this run published (claims beyond the fund).
    pub adl_requests_published: u64,
    /// Requests found on the input stream already (an earlier run's).
    pub adl_requests_already_published: u64,
    /// Requests whose offers are not all in yet.
    pub adl_requests_waiting: usize,
    /// Counterparties deleveraged in the answers (this run's or an earlier one's).
    pub adl_shares: u64,
    /// Positions that bore a socialised share in the answers (this run's or an earlier one's).
    pub socialised_shares: u64,
    /// The effect-stream position of the snapshot this run recovered from, if any.
    pub recovered_from: Option<u64>,
    /// Snapshots that could not be used, with the reason.
    pub skipped_snapshots: Vec<String>,
    /// Snapshots this run wrote.
    pub snapshots_written: u64,
    /// The fund's state hash now ([`Fund::state_hash`]): the same for a run recovered from a
    /// snapshot as for one that read the streams from their start.
    pub fund_hash: String,
    /// Publications on [`FUND_SUBJECT`] refused because another system shard (a former holder
    /// of the lease, which stalled past it) had published there first; this one read its
    /// messages and followed them, as on recovery.
    #[serde(default)]
    pub reconciled: u64,
    /// A standby's wait behind another holder of the lease ([`LeaseWait::StandBy`]); `None`
    /// when this run found the lease free (or was not a standby).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbyWait>,
}

/// How a standby system shard waited for the lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyWait {
    /// How long it stood by behind another holder, in milliseconds.
    pub waited_ms: u64,
    /// Whether it took the lease over and ran; `false`: it was stopped while standing by, and
    /// the report holds what it read standing by, with nothing published.
    pub took_over: bool,
    /// Effect messages it read and applied while it stood by (keeping the fund as the holder
    /// kept it, see [`LeaseWait::StandBy`]): what it took over with, rather than read again.
    #[serde(default)]
    pub read_standing_by: u64,
}

impl StandbyWait {
    fn of(waited: Duration, took_over: bool, read_standing_by: u64) -> Self {
        Self {
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            took_over,
            read_standing_by,
        }
    }
}

/// The input stream sequence through which every one of `shards` shards has recorded that its
/// effects are stored; `None` while one has recorded nothing.
#[must_use]
pub fn watermark(progress: &BTreeMap<u32, u64>, shards: u32) -> Option<u64> {
    (0..shards)
        .map(|shard| progress.get(&shard).copied())
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .min()
}

/// The effect messages of input at or below `watermark`, taken from `waiting` in input order
/// (then shard): the order the fund applies them in, whatever order the effect stream holds
/// them in, so a claim sees exactly the fees of earlier input.
#[must_use]
pub fn ready(
    waiting: &mut BTreeMap<(u64, u32), EffectMessage>,
    watermark: Option<u64>,
) -> Vec<EffectMessage> {
    let Some(watermark) = watermark else {
        return Vec::new();
    };
    let later = waiting.split_off(&(watermark.saturating_add(1), 0));
    std::mem::replace(waiting, later).into_values().collect()
}

/// Runs the system shard until `stop` turns true (or, with `stop_at_end`, after one reading
/// of the streams, having answered the claims up to the watermark). With a data directory it
/// resumes from its newest valid snapshot and reads the streams' tail; without, each run reads
/// the streams from their start, so the fund and every answer are rebuilt the same. It
/// publishes only the answers and requests the input stream lacks. It holds the cluster's
/// one system-shard lease while it runs ([`LEASE_BUCKET`]), and gives it up when it stops.
///
/// While another system shard holds the lease, [`SystemConfig::lease_wait`] decides: refused
/// after one lease period, or, as a standby, waiting until the lease lapses or is given up and
/// then running on from the fund it kept up to date while it waited (`stand_by`), as the
/// holder would have. A standby stopped while it waits returns `Ok` with a report of what it
/// read, whose [`SystemReport::standby`] says it did not take over: it published nothing,
/// which is not an error.
///
/// # Errors
/// [`ClusterError`]: another system shard running ([`ClusterError::SystemShardRunning`], not
/// for a standby), the lease lost while running, NATS unreachable or refusing, an effect or
/// answer message that does not read. Restarting it answers what is left, nothing twice.
pub async fn run(
    config: SystemConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<SystemReport, ClusterError> {
    let venue = solvent_core::venue::Venue::from_toml("venue", &config.venue_text)
        .map_err(|error| ClusterError::Config(format!("the system shard's venue: {error}")))?;
    let js = crate::shard::connect(&config.servers, config.shards, config.replicas).await?;
    let who = format!(
        "pid {} on {}",
        std::process::id(),
        std::fs::read_to_string("/etc/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "this host".to_owned()),
    );
    // Recovered before the lease is asked for: a snapshot that cannot be read stops this
    // start before it holds (and would leave behind) the lease.
    let kept = Kept::recover(&config, venue.clone())?;
    let (acquired, kept) = match config.lease_wait {
        LeaseWait::Refuse => {
            let acquired =
                lease::Lease::acquire(&js, config.replicas, &who, LeaseWait::Refuse, &mut stop)
                    .await?;
            (acquired, kept)
        }
        LeaseWait::StandBy => stand_by(&config, &venue, &js, &who, &stop, kept).await?,
    };
    let (lease, stood_by) = match acquired {
        lease::Acquisition::Held { lease, stood_by } => (lease, stood_by),
        lease::Acquisition::Stopped { stood_by } => {
            let read = kept.report.effect_messages;
            return Ok(SystemReport {
                standby: Some(StandbyWait::of(stood_by, false, read)),
                ..kept.report
            });
        }
    };
    let result = serve(&config, &js, stop, &lease, stood_by, kept).await;
    lease.release().await;
    result
}

/// What [`stand_by`] waits on next.
enum StandbyTurn {
    /// The lease asking came back: held, or stopped.
    Asked(Result<lease::Acquisition, ClusterError>),
    /// A reading of the streams.
    Read(Result<Reading, ClusterError>),
}

/// The lease asking of a standby, in a task of its own (so it asks and renews on time while
/// the standby applies a long reading), aborted when dropped (so a standby whose own task is
/// aborted leaves no task behind that could take the lease for nobody).
struct Asking(tokio::task::JoinHandle<Result<lease::Acquisition, ClusterError>>);

impl Drop for Asking {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Asking {
    /// What the asking came back with.
    async fn answer(&mut self) -> Result<lease::Acquisition, ClusterError> {
        (&mut self.0).await.unwrap_or_else(|error| {
            Err(ClusterError::Config(format!(
                "the system shard's lease: its task ended: {error}"
            )))
        })
    }
}

/// A standby's wait for the lease ([`LeaseWait::StandBy`]): while it asks, it reads the streams
/// every [`SystemConfig::poll`] and keeps `kept` as the holder keeps its own, following the
/// holder's publications instead of publishing ([`Kept::follow`]), so that it takes over with
/// the fund the holder left, not from its last snapshot. A reading NATS fails is tried again
/// at the next poll (it changed nothing): a standby rides out the failures it may be needed
/// for. Should the holder answer a claim the standby asked candidates for (their venues
/// differ, or their funds), the standby cannot follow it: it says so, starts again from its
/// snapshot and reads no more until it takes over, as a standby that kept nothing. Returns
/// what the asking came back with and what it kept.
async fn stand_by(
    config: &SystemConfig,
    venue: &solvent_core::venue::Venue,
    js: &Context,
    who: &str,
    stop: &watch::Receiver<bool>,
    mut kept: Kept,
) -> Result<(lease::Acquisition, Kept), ClusterError> {
    let mut asking = Asking(tokio::spawn({
        let (js, who, mut stop) = (js.clone(), who.to_owned(), stop.clone());
        let replicas = config.replicas;
        async move { lease::Lease::acquire(&js, replicas, &who, LeaseWait::StandBy, &mut stop).await }
    }));
    // Set while readings fail: the first failure of a run of them is logged, not each.
    let mut failing = false;
    let mut following = true;
    loop {
        if following {
            // Biased: once the lease is held, the holder's work comes before another reading.
            let turn = tokio::select! {
                biased;
                asked = asking.answer() => StandbyTurn::Asked(asked),
                reading = read_streams(js, kept.reading_from(true)) => StandbyTurn::Read(reading),
            };
            match turn {
                StandbyTurn::Asked(asked) => return Ok((asked?, kept)),
                StandbyTurn::Read(Ok(reading)) => {
                    failing = false;
                    kept.follow(reading, config.shards)?;
                    if let Some(claim) = kept.diverged() {
                        tracing::error!(
                            claim = %claim.message_id(),
                            "standby system shard: the holder answered a claim this standby asked candidates for (are their venue files the same?); it stops following and will take over from its snapshot"
                        );
                        kept = Kept::recover(config, venue.clone())?;
                        following = false;
                    }
                }
                StandbyTurn::Read(Err(error)) => {
                    if !failing {
                        failing = true;
                        tracing::warn!(%error, "standby system shard cannot read the streams; reading again");
                    }
                }
            }
        }
        let turn = tokio::select! {
            biased;
            asked = asking.answer() => Some(asked),
            () = tokio::time::sleep(config.poll) => None,
        };
        if let Some(asked) = turn {
            return Ok((asked?, kept));
        }
    }
}

/// The system shard's work while it holds the lease (see [`run`]), from what it `kept`
/// (recovered, or kept up to date standing by); it stops with [`ClusterError::LeaseLost`] as
/// soon as the lease is lost, and before any publication the lease does not confirm.
async fn serve(
    config: &SystemConfig,
    js: &Context,
    mut stop: watch::Receiver<bool>,
    lease: &lease::Lease,
    stood_by: Option<Duration>,
    mut kept: Kept,
) -> Result<SystemReport, ClusterError> {
    let mut lost = lease.lost();
    let read_standing_by = kept.report.effect_messages;
    kept.report.standby = stood_by.map(|waited| StandbyWait::of(waited, true, read_standing_by));
    let js = js.clone();
    let mut queries = js
        .client()
        .subscribe(SYSTEM_QUERY_SUBJECT)
        .await
        .map_err(|error| ClusterError::Nats(format!("queries of the system shard: {error}")))?;
    // The fence first: a message stored between the two reads is then above it, and read
    // again when it refuses a publication, rather than below it and never read.
    let mut fence = Fence::read(&js, lease.holder()).await?;
    let messages = read_fund_messages(&js, kept.fund_read_through).await?;
    kept.take_fund_messages(messages);
    // What a standby computed that the former holder had not published when it last read:
    // published now, in order, unless the former holder's last moments published it.
    for output in std::mem::take(&mut kept.pending) {
        publish_output(&js, &mut kept, &mut fence, output).await?;
    }
    loop {
        if *lost.borrow() {
            return Err(ClusterError::LeaseLost);
        }
        let reading = read_streams(&js, kept.reading_from(false)).await?;
        kept.take(reading, config.shards)?;
        for message in kept.ready() {
            kept.applied_since_snapshot += 1;
            for output in outputs_of(&mut kept.fund, &message)? {
                publish_output(&js, &mut kept, &mut fence, output).await?;
            }
        }
        if let Some(through) = kept.report.watermark {
            // The requests whose offers are all in (every shard's progress is past them).
            for answer in kept.fund.resolve_through(through) {
                publish_output(&js, &mut kept, &mut fence, FundOutput::Answer(answer)).await?;
            }
        }
        kept.tally()?;
        let due = kept.applied_since_snapshot >= config.snapshot_every.max(1)
            || (config.stop_at_end && kept.applied_since_snapshot > 0);
        if let Some(dir) = &config.data_dir
            && due
        {
            kept.cursors.fund_subject_through = input_last_sequence(&js).await?;
            let state = kept.cursors.state(&kept.fund, &kept.deposits)?;
            crate::system_snapshot::write(dir, &state)?;
            kept.report.snapshots_written += 1;
            kept.applied_since_snapshot = 0;
        }
        if config.stop_at_end {
            break;
        }
        let wake = tokio::time::sleep(config.poll);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = &mut wake => break,
                Some(request) = queries.next() => answer_query(&js, &kept.report, &request).await?,
                _ = stop.changed() => return Ok(kept.report),
                _ = lost.changed() => return Err(ClusterError::LeaseLost),
            }
        }
    }
    Ok(kept.report)
}

/// What a system shard keeps between two readings of the streams: the fund, the engine that
/// books the deposits to it, where it has read each stream to, the effect messages waiting for
/// the watermark, what the fund subject holds, and its report. The holder of the lease and a
/// standby keep the same ([`stand_by`]).
struct Kept {
    fund: Fund,
    /// Deposits to the fund go through an engine of their own, which books them (its ledger
    /// holds the fund's deposits) by the rules one engine applies, refusing what it refuses.
    deposits: solvent_engine::Engine,
    cursors: Cursors,
    /// The effect stream's last sequence read.
    read_through: u64,
    waiting: BTreeMap<(u64, u32), EffectMessage>,
    /// The answers and requests on [`FUND_SUBJECT`] read so far (after the snapshot's).
    published: Published,
    /// The last sequence of [`FUND_SUBJECT`] read into `published`.
    fund_read_through: u64,
    /// Outputs a standby computed that the holder had not published when the standby last
    /// read [`FUND_SUBJECT`], in order ([`Self::follow`]).
    pending: std::collections::VecDeque<FundOutput>,
    applied_since_snapshot: u64,
    report: SystemReport,
}

/// One reading of the streams, not yet taken in: reading changes nothing, so a reading
/// abandoned midway (a standby's, when the lease comes to it) loses nothing.
struct Reading {
    progress: Vec<effects::StoredMessage>,
    effects: Vec<EffectMessage>,
    deposits: Vec<effects::StoredMessage>,
    /// What [`FUND_SUBJECT`] holds past what was read of it (a standby's reading only).
    fund_messages: Vec<(u64, FundMessage)>,
}

/// Where a reading of the streams starts: the last sequence read of each.
#[derive(Clone, Copy, Debug)]
struct ReadFrom {
    progress: u64,
    effects: u64,
    deposits: u64,
    /// [`FUND_SUBJECT`]'s, for a standby's reading; `None`: it is not read.
    fund_subject: Option<u64>,
}

/// Reads what the streams hold past `from`. First the shards' progress, then the effects and
/// the deposits: every effect message and deposit of input up to a shard's recorded progress
/// is stored by the time the progress is (the shard had every acknowledgement first). For a
/// standby, [`FUND_SUBJECT`] last: a publication not found there is then stored after every
/// input the progress read covers, so no effect message ready now needs it ([`Kept::follow`]).
async fn read_streams(js: &Context, from: ReadFrom) -> Result<Reading, ClusterError> {
    let progress = effects::read_stream(
        js,
        EFFECT_STREAM,
        &format!("{PROGRESS_SUBJECT_PREFIX}*"),
        from.progress,
    )
    .await?;
    let effects = effects::read_after(js, None, from.effects).await?;
    let deposits = effects::read_stream(js, INPUT_STREAM, SYSTEM_SUBJECT, from.deposits).await?;
    let fund_messages = match from.fund_subject {
        Some(after) => read_fund_messages(js, after).await?,
        None => Vec::new(),
    };
    Ok(Reading {
        progress,
        effects,
        deposits,
        fund_messages,
    })
}

impl Kept {
    /// The newest valid snapshot in the data directory, if any (the streams' tail after it is
    /// read next); else an empty fund that reads the streams from their start.
    fn recover(
        config: &SystemConfig,
        venue: solvent_core::venue::Venue,
    ) -> Result<Self, ClusterError> {
        let terms = FundTerms::of(&venue);
        let (recovered, skipped) = match &config.data_dir {
            Some(dir) => crate::system_snapshot::recover(dir)?,
            None => (None, Vec::new()),
        };
        let mut report = SystemReport {
            skipped_snapshots: skipped,
            ..SystemReport::default()
        };
        let (fund, deposits, cursors) = match recovered {
            Some((state, engine)) => {
                report.recovered_from = Some(state.effects_through);
                let cursors = Cursors::of(&state);
                let mut fund = state.fund;
                fund.set_terms(terms);
                (fund, engine, cursors)
            }
            None => (
                Fund::new(terms),
                solvent_engine::Engine::new(venue, EngineConfig::default()),
                Cursors::default(),
            ),
        };
        Ok(Self {
            fund,
            deposits,
            read_through: cursors.effects_through,
            fund_read_through: cursors.fund_subject_through,
            cursors,
            waiting: BTreeMap::new(),
            published: Published::default(),
            pending: std::collections::VecDeque::new(),
            applied_since_snapshot: 0,
            report,
        })
    }

    /// Where the next reading of the streams starts; with `fund_subject` (a standby's
    /// reading), [`FUND_SUBJECT`] too.
    fn reading_from(&self, fund_subject: bool) -> ReadFrom {
        ReadFrom {
            progress: self.cursors.progress_through,
            effects: self.read_through,
            deposits: self.cursors.deposits_through,
            fund_subject: fund_subject.then_some(self.fund_read_through),
        }
    }

    /// Takes a reading in: the shards' progress, the effect messages (waiting for the
    /// watermark), the deposits (booked by the deposits engine and counted by the fund), and
    /// what [`FUND_SUBJECT`] holds; the watermark moves.
    fn take(&mut self, reading: Reading, shards: u32) -> Result<(), ClusterError> {
        for effects::StoredMessage {
            stream_seq,
            subject,
            payload,
            ..
        } in reading.progress
        {
            self.cursors.progress_through = self.cursors.progress_through.max(stream_seq);
            let shard = subject
                .strip_prefix(PROGRESS_SUBJECT_PREFIX)
                .and_then(|k| k.parse::<u32>().ok());
            let through = std::str::from_utf8(&payload)
                .ok()
                .and_then(|text| text.parse::<u64>().ok());
            if let (Some(shard), Some(through)) = (shard, through) {
                let at = self.cursors.progress.entry(shard).or_default();
                *at = (*at).max(through);
            }
        }
        for message in reading.effects {
            self.read_through = self.read_through.max(message.effect_seq);
            self.report.effect_messages += 1;
            self.waiting
                .insert((message.input_seq, message.shard), message);
        }
        for effects::StoredMessage {
            stream_seq,
            payload,
            ..
        } in reading.deposits
        {
            self.cursors.deposits_through = self.cursors.deposits_through.max(stream_seq);
            for (index, envelope) in crate::message::decode(stream_seq, &payload)?
                .iter()
                .enumerate()
            {
                let refused = self
                    .deposits
                    .apply(envelope)
                    .iter()
                    .any(|effect| matches!(effect, Effect::Rejected { .. }));
                match &envelope.event {
                    Event::Deposit(deposit) if !refused => {
                        self.fund.deposit(
                            stream_seq,
                            index,
                            &deposit.asset,
                            deposit.amount.value(),
                        );
                    }
                    _ => self.report.deposits_refused += 1,
                }
            }
        }
        self.take_fund_messages(reading.fund_messages);
        self.report.watermark = watermark(&self.cursors.progress, shards);
        Ok(())
    }

    /// Adds what [`FUND_SUBJECT`] holds past what was read of it (in stream order).
    fn take_fund_messages(&mut self, messages: Vec<(u64, FundMessage)>) {
        if let Some((last, _)) = messages.last() {
            self.fund_read_through = self.fund_read_through.max(*last);
        }
        self.published.add(messages);
    }

    /// The effect messages the watermark has reached, in the order the fund applies them.
    fn ready(&mut self) -> Vec<EffectMessage> {
        ready(&mut self.waiting, self.report.watermark)
    }

    /// A standby's turn ([`stand_by`]): takes `reading` in and applies what is ready as the
    /// holder does, but where the holder publishes an output the standby follows the holder's
    /// publication of it ([`Self::settle`]). An output the holder has not published yet waits
    /// (`pending`), and so does every later one, until a reading finds it: the holder
    /// publishes in the same order. Waiting changes nothing the fund does meanwhile: a request
    /// is answered only once effect messages of input after its publication are applied, and
    /// those are not ready before a reading that finds it ([`read_streams`]); an answer's cover
    /// is the fund's own until then, and the same as the published one unless another holder
    /// computed otherwise, which [`Fund::settled_as`] then follows.
    fn follow(&mut self, reading: Reading, shards: u32) -> Result<(), ClusterError> {
        self.take(reading, shards)?;
        while let Some(output) = self.pending.pop_front() {
            if !self.settle(&output) {
                self.pending.push_front(output);
                break;
            }
        }
        for message in self.ready() {
            self.applied_since_snapshot += 1;
            for output in outputs_of(&mut self.fund, &message)? {
                self.follow_output(output);
            }
        }
        if let Some(through) = self.report.watermark {
            for answer in self.fund.resolve_through(through) {
                self.follow_output(FundOutput::Answer(answer));
            }
        }
        self.tally()
    }

    /// The claim of the first output waiting when it is a request that [`FUND_SUBJECT`]
    /// answers without one (the holder covered what this one asked for): the holder's fund and
    /// this one's differ, and no later reading can settle the request. (The reverse, an answer
    /// computed where the holder asked, settles when the holder's answer to its request comes,
    /// the fund following its cover.)
    fn diverged(&self) -> Option<ClaimId> {
        match self.pending.front()? {
            FundOutput::Request(request)
                if self.published.answers.contains_key(request.claim()) =>
            {
                Some(request.claim().clone())
            }
            _ => None,
        }
    }

    /// Follows the holder's publication of `output`, or keeps it waiting behind those that
    /// wait.
    fn follow_output(&mut self, output: FundOutput) {
        if !self.pending.is_empty() || !self.settle(&output) {
            self.pending.push_back(output);
        }
    }

    /// Follows what [`FUND_SUBJECT`] holds for `output` (an earlier run's publication, or a
    /// former or current holder's): the fund follows a published answer, should this run
    /// have computed otherwise, and awaits offers for a published request at its stream
    /// sequence. Returns whether it holds one.
    fn settle(&mut self, output: &FundOutput) -> bool {
        match output {
            FundOutput::Answer(answer) => {
                let Some(earlier) = self.published.answers.get(&answer.claim) else {
                    return false;
                };
                self.fund.settled_as(answer, earlier);
                self.report.answers_already_published += 1;
                count_claim(&mut self.report, answer);
            }
            FundOutput::Request(request) => {
                let Some((at, earlier)) = self.published.requests.get(request.claim()) else {
                    return false;
                };
                self.fund.asked_as(request, earlier);
                self.fund.await_offers(*at, earlier.clone());
                self.report.adl_requests_already_published += 1;
            }
        }
        true
    }

    /// Brings the report's figures up to date and moves the effect stream's cursor: read
    /// again above the first effect message still waiting (those applied before it are passed
    /// over by the fund), or above everything read.
    fn tally(&mut self) -> Result<(), ClusterError> {
        self.report.adl_requests_waiting = self.fund.awaiting().len();
        self.report.effect_messages_waiting = self.waiting.len();
        self.report.fund = self.fund.balances();
        self.report.fund_hash = self.fund.state_hash()?;
        self.cursors.effects_through = self
            .waiting
            .values()
            .map(|message| message.effect_seq.saturating_sub(1))
            .min()
            .unwrap_or(self.read_through);
        Ok(())
    }
}

/// Counts a claim answered, by this run or an earlier one.
fn count_claim(report: &mut SystemReport, answer: &ClaimAnswer) {
    report.claims += 1;
    report.adl_shares += answer.adl.len() as u64;
    report.socialised_shares += answer.socialised.len() as u64;
}

/// Where the system shard has read each stream to, and each shard's recorded progress.
#[derive(Debug, Default)]
struct Cursors {
    progress: BTreeMap<u32, u64>,
    progress_through: u64,
    effects_through: u64,
    deposits_through: u64,
    fund_subject_through: u64,
}

impl Cursors {
    fn of(state: &crate::system_snapshot::SystemState) -> Self {
        Self {
            progress: state.progress.clone(),
            progress_through: state.progress_through,
            effects_through: state.effects_through,
            deposits_through: state.deposits_through,
            fund_subject_through: state.fund_subject_through,
        }
    }

    fn state(
        &self,
        fund: &Fund,
        deposits: &solvent_engine::Engine,
    ) -> Result<crate::system_snapshot::SystemState, ClusterError> {
        let (deposits_engine, deposits_state_hash) =
            crate::system_snapshot::encode_deposits(deposits)?;
        Ok(crate::system_snapshot::SystemState {
            fund: fund.clone(),
            deposits_engine,
            deposits_state_hash,
            progress: self.progress.clone(),
            progress_through: self.progress_through,
            effects_through: self.effects_through,
            deposits_through: self.deposits_through,
            fund_subject_through: self.fund_subject_through,
        })
    }
}

/// The input stream's last sequence now.
async fn input_last_sequence(js: &Context) -> Result<u64, ClusterError> {
    let nats =
        |error: &dyn std::fmt::Display| ClusterError::Nats(format!("{INPUT_STREAM}: {error}"));
    let mut stream = js.get_stream(INPUT_STREAM).await.map_err(|e| nats(&e))?;
    Ok(stream
        .info()
        .await
        .map_err(|e| nats(&e))?
        .state
        .last_sequence)
}

/// Answers a query with the report so far; one without a reply subject gets none.
async fn answer_query(
    js: &Context,
    report: &SystemReport,
    request: &async_nats::Message,
) -> Result<(), ClusterError> {
    let Some(reply) = request.reply.clone() else {
        return Ok(());
    };
    let payload = serde_json::to_vec(report)
        .map_err(|error| ClusterError::Nats(format!("encoding the report: {error}")))?;
    js.client()
        .publish(reply, payload.into())
        .await
        .map_err(|error| ClusterError::Nats(format!("answering a query: {error}")))
}

/// The fund as the system shard holds it, by asset; `None` when no system shard runs (NATS
/// reports no responder: the cluster's shards keep their own funds).
///
/// # Errors
/// [`ClusterError::Nats`] when the system shard does not answer within
/// [`SYSTEM_QUERY_TIMEOUT`] or its answer does not read.
pub async fn fund(
    client: &async_nats::Client,
) -> Result<Option<BTreeMap<String, Decimal>>, ClusterError> {
    Ok(report(client).await?.map(|report| report.fund))
}

/// The running system shard's report so far; `None` when none runs (NATS reports no
/// responder).
///
/// # Errors
/// [`ClusterError::Nats`] when the system shard does not answer within
/// [`SYSTEM_QUERY_TIMEOUT`] or its answer does not read.
pub async fn report(client: &async_nats::Client) -> Result<Option<SystemReport>, ClusterError> {
    let request = client.request(SYSTEM_QUERY_SUBJECT, bytes::Bytes::new());
    match tokio::time::timeout(SYSTEM_QUERY_TIMEOUT, request).await {
        Err(_) => Err(ClusterError::Nats(
            "the system shard did not answer in time".to_owned(),
        )),
        Ok(Err(error)) if error.kind() == async_nats::RequestErrorKind::NoResponders => Ok(None),
        Ok(Err(error)) => Err(ClusterError::Nats(format!("the system shard: {error}"))),
        Ok(Ok(reply)) => serde_json::from_slice::<SystemReport>(&reply.payload)
            .map(Some)
            .map_err(|error| ClusterError::Nats(format!("the system shard's answer: {error}"))),
    }
}

/// What one effect message asks the system shard to publish.
fn outputs_of(fund: &mut Fund, message: &EffectMessage) -> Result<Vec<FundOutput>, ClusterError> {
    let mut lines = Vec::new();
    for line in &message.lines {
        if let Some(line) = fund_line(line).map_err(|error| {
            ClusterError::Config(format!(
                "effect message {} of shard {}: {error}",
                message.effect_seq, message.shard
            ))
        })? {
            lines.push(line);
        }
    }
    Ok(fund.apply(message.shard, message.input_seq, &lines))
}

/// What the input stream holds on [`FUND_SUBJECT`]: the answers and requests an earlier run
/// published (the first of each, as the shards apply it).
#[derive(Debug, Default)]
pub struct Published {
    /// The answers, by claim.
    pub answers: BTreeMap<ClaimId, ClaimAnswer>,
    /// The requests, by claim, with their stream sequence.
    pub requests: BTreeMap<ClaimId, (u64, Request)>,
}

impl Published {
    /// Adds `messages` (in stream order, with their stream sequence), keeping the first of
    /// each claim already held: the one the shards apply.
    pub fn add(&mut self, messages: Vec<(u64, FundMessage)>) {
        for (stream_seq, message) in messages {
            match message {
                FundMessage::Answer(answer) => {
                    self.answers.entry(answer.claim.clone()).or_insert(answer);
                }
                FundMessage::Request(request) => {
                    self.requests
                        .entry(request.claim().clone())
                        .or_insert((stream_seq, request));
                }
            }
        }
    }
}

/// Publishes what applying the effects asks for, unless it is on [`FUND_SUBJECT`] already (an
/// earlier run's, or a former holder's of the lease): an answer (the fund then follows the
/// published one), or a request, which the fund then awaits offers for at its stream
/// sequence. A publication the fence refuses (another system shard published since this one
/// last read the subject) is followed by a reading of what it published, as on recovery, and
/// published only if that did not settle it.
async fn publish_output(
    js: &Context,
    kept: &mut Kept,
    fence: &mut Fence,
    output: FundOutput,
) -> Result<(), ClusterError> {
    loop {
        // What was published is what the shards apply: the fund follows it.
        if kept.settle(&output) {
            return Ok(());
        }
        let outcome = match &output {
            FundOutput::Answer(answer) => publish_answer(js, answer, fence).await?,
            FundOutput::Request(request) => publish_request(js, request, fence).await?,
        };
        let Stored::At(at) = outcome else {
            // Another system shard published first. A former holder, refused because its
            // replacement published, learns here that its lease is gone and stops. The
            // holder reads the other's messages (the fence moves past them) and publishes
            // this output only if they do not settle it. Each turn moves the fence, or stops:
            // the loop ends.
            fence.lease.confirm().await?;
            fence.reconcile(js, &mut kept.published).await?;
            kept.report.reconciled += 1;
            continue;
        };
        match output {
            FundOutput::Answer(answer) => {
                kept.report.answers_published += 1;
                count_claim(&mut kept.report, &answer);
                kept.published.answers.insert(answer.claim.clone(), answer);
            }
            FundOutput::Request(request) => {
                kept.report.adl_requests_published += 1;
                kept.fund.await_offers(at, request.clone());
                kept.published
                    .requests
                    .insert(request.claim().clone(), (at, request));
            }
        }
        return Ok(());
    }
}

/// What a fenced publication found.
enum Stored {
    /// Stored at this stream sequence.
    At(u64),
    /// Not stored: the subject holds messages this system shard has not read (another system
    /// shard's, which held the lease before it and stalled past it), after the fence or under
    /// the same message id.
    Behind,
}

/// The last stream sequence on [`FUND_SUBJECT`] this system shard knows of: each of its
/// publications there expects it (`Nats-Expected-Last-Subject-Sequence`), so one that follows
/// a message it did not read (another system shard's) is refused by JetStream. Each
/// publication is preceded by a confirmation of the lease: a system shard that lost it stops
/// ([`ClusterError::LeaseLost`]) unpublished; one that holds it and is refused reads what the
/// other published ([`Fence::reconcile`]), which can only be a former holder's that stalled
/// past its lease between its own confirmation and publication.
struct Fence {
    last: u64,
    lease: lease::Holder,
}

impl Fence {
    /// The subject's last sequence now (0 when it holds nothing).
    async fn read(js: &Context, lease: lease::Holder) -> Result<Self, ClusterError> {
        Ok(Self {
            last: fund_subject_last(js).await?,
            lease,
        })
    }

    /// Publishes `payload` with message id `id` on [`FUND_SUBJECT`], expecting the fence,
    /// once the lease is confirmed; the fence moves to its stream sequence.
    async fn publish(
        &mut self,
        js: &Context,
        id: &str,
        payload: Vec<u8>,
        what: &str,
    ) -> Result<Stored, ClusterError> {
        self.lease.confirm().await?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            self.last.to_string().as_str(),
        );
        let ack = js
            .publish_with_headers(FUND_SUBJECT, headers, payload.into())
            .await
            .map_err(|error| ClusterError::Nats(format!("publishing {what}: {error}")))?
            .await;
        match ack {
            // A duplicate: a message of the same id is stored already, which this system
            // shard did not publish, or it would know it: another's, to be read. (JetStream
            // 2.15 checks the expected sequence first, so this is the case of a message of
            // this id stored at or below the fence that the system shard has not read.)
            Ok(ack) if ack.duplicate => Ok(Stored::Behind),
            Ok(ack) => {
                self.last = self.last.max(ack.sequence);
                Ok(Stored::At(ack.sequence))
            }
            Err(error)
                if error.kind()
                    == async_nats::jetstream::context::PublishErrorKind::WrongLastSequence =>
            {
                Ok(Stored::Behind)
            }
            Err(error) => Err(ClusterError::Nats(format!(
                "{what} not acknowledged: {error}"
            ))),
        }
    }

    /// Reads what the subject holds after the fence into `published` (the first message of
    /// each claim stays: the one the shards apply) and moves the fence to the subject's last
    /// sequence, which a publication then expects.
    ///
    /// # Errors
    /// [`ClusterError::Fenced`] when the subject holds nothing after the fence (a publication
    /// refused for a message this system shard cannot find: it stops rather than guess).
    async fn reconcile(
        &mut self,
        js: &Context,
        published: &mut Published,
    ) -> Result<(), ClusterError> {
        let last = fund_subject_last(js).await?;
        if last <= self.last {
            return Err(ClusterError::Fenced {
                expected: self.last,
            });
        }
        published.add(read_fund_messages(js, self.last).await?);
        self.last = last;
        Ok(())
    }
}

/// The last stream sequence on [`FUND_SUBJECT`] (0 when it holds nothing).
async fn fund_subject_last(js: &Context) -> Result<u64, ClusterError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let nats =
        |error: &dyn std::fmt::Display| ClusterError::Nats(format!("{FUND_SUBJECT}: {error}"));
    let stream = js.get_stream(INPUT_STREAM).await.map_err(|e| nats(&e))?;
    match stream.get_last_raw_message_by_subject(FUND_SUBJECT).await {
        Ok(message) => Ok(message.sequence),
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(error) => Err(nats(&error)),
    }
}

/// Publishes a request for candidates.
async fn publish_request(
    js: &Context,
    request: &Request,
    fence: &mut Fence,
) -> Result<Stored, ClusterError> {
    let payload = serde_json::to_vec(request)
        .map_err(|error| ClusterError::Nats(format!("encoding a request: {error}")))?;
    fence
        .publish(js, &request.message_id(), payload, "a request")
        .await
}

/// Publishes an answer.
async fn publish_answer(
    js: &Context,
    answer: &ClaimAnswer,
    fence: &mut Fence,
) -> Result<Stored, ClusterError> {
    let payload = serde_json::to_vec(answer)
        .map_err(|error| ClusterError::Nats(format!("encoding an answer: {error}")))?;
    fence
        .publish(js, &answer.claim.message_id(), payload, "an answer")
        .await
}

/// Every answer the input stream holds, with its stream sequence, in stream order.
///
/// # Errors
/// [`ClusterError`] when the stream cannot be read or a message does not read.
pub async fn read_answers(js: &Context) -> Result<Vec<(u64, ClaimAnswer)>, ClusterError> {
    Ok(read_fund_messages(js, 0)
        .await?
        .into_iter()
        .filter_map(|(seq, message)| match message {
            FundMessage::Answer(answer) => Some((seq, answer)),
            FundMessage::Request(_) => None,
        })
        .collect())
}

/// Every message the input stream holds on [`FUND_SUBJECT`], with its stream sequence, in
/// stream order; a message that is neither an answer nor a request is passed over (every
/// shard refuses it too).
///
/// # Errors
/// [`ClusterError`] when the stream cannot be read.
pub async fn read_fund_messages(
    js: &Context,
    after: u64,
) -> Result<Vec<(u64, FundMessage)>, ClusterError> {
    Ok(effects::read_stream(js, INPUT_STREAM, FUND_SUBJECT, after)
        .await?
        .into_iter()
        .filter_map(|stored| {
            decode_fund_message(stored.stream_seq, &stored.payload)
                .ok()
                .map(|message| (stored.stream_seq, message))
        })
        .collect())
}

/// Reads the answer or request carried by the input message at `stream_seq`.
///
/// # Errors
/// [`crate::message::MessageError::NotAnAnswer`] naming the message.
pub fn decode_fund_message(stream_seq: u64, payload: &[u8]) -> Result<FundMessage, ClusterError> {
    serde_json::from_slice(payload).map_err(|error| {
        ClusterError::Message(crate::message::MessageError::NotAnAnswer {
            stream_seq,
            problem: error.to_string(),
        })
    })
}

/// Reads the answer carried by the input message at `stream_seq`.
///
/// # Errors
/// [`crate::message::MessageError::NotAnAnswer`] naming the message, also for a request.
pub fn decode_answer(stream_seq: u64, payload: &[u8]) -> Result<ClaimAnswer, ClusterError> {
    match decode_fund_message(stream_seq, payload)? {
        FundMessage::Answer(answer) => Ok(answer),
        FundMessage::Request(_) => Err(ClusterError::Message(
            crate::message::MessageError::NotAnAnswer {
                stream_seq,
                problem: "a request for candidates".to_owned(),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn claim(account: &str, deficit: Decimal) -> FundLine {
        FundLine::Claim {
            account: account.to_owned(),
            asset: "USDT".to_owned(),
            deficit,
            position: None,
            remainder: false,
        }
    }

    /// The answers applying an effect message gives (its claims have no position closed: no
    /// request).
    fn answers(
        fund: &mut Fund,
        shard: u32,
        input_seq: u64,
        lines: &[FundLine],
    ) -> Vec<ClaimAnswer> {
        fund.apply(shard, input_seq, lines)
            .into_iter()
            .filter_map(|output| match output {
                FundOutput::Answer(answer) => Some(answer),
                FundOutput::Request(_) => None,
            })
            .collect()
    }

    fn paid(amount: Decimal) -> FundLine {
        FundLine::Paid {
            asset: "USDT".to_owned(),
            amount,
        }
    }

    fn candidate(shard: u32, account: &str, score: f64, size: Decimal) -> AdlCandidate {
        AdlCandidate {
            shard,
            account: account.to_owned(),
            score,
            size,
        }
    }

    /// A claim of 10,000 beyond a fund of 1,000, its account's long of 2 BTCUSDT closed at
    /// 40,000: a request (the fund untouched), not an answer. Two shards offer 1.5 and 2
    /// contracts; the merged ranking takes 1.5 from `b` (score 9) and 0.5 from `c` (score 5),
    /// paying 10,000 x 1.5 / 2 = 7,500 and 2,500 at 40,000 + 10,000 / 2 = 45,000; the fund
    /// covers nothing. The answer is given before the effect message of later input is
    /// applied, whose fee it does not see.
    #[test]
    fn a_claim_beyond_the_fund_is_answered_with_the_merged_offers() {
        let mut fund = Fund::new(FundTerms {
            precisions: BTreeMap::from([("USDT".to_owned(), 6)]),
            linear_contract_sizes: BTreeMap::from([("BTCUSDT".to_owned(), Decimal::ONE)]),
            socialise: false,
        });
        fund.deposit(1, 0, "USDT", dec!(1000));
        let claimed = FundLine::Claim {
            account: "a".to_owned(),
            asset: "USDT".to_owned(),
            deficit: dec!(10000),
            remainder: false,
            position: Some(ClaimedPosition {
                instrument: "BTCUSDT".to_owned(),
                size: dec!(-2),
                mark: dec!(40000),
                bankruptcy_price: dec!(45000),
                isolated: false,
                fee: dec!(0),
            }),
        };
        let outputs = fund.apply(0, 5, &[claimed]);
        let [FundOutput::Request(Request::Adl(request))] = outputs.as_slice() else {
            panic!("one request: {outputs:?}");
        };
        assert_eq!(
            (request.side, request.quantity, request.mark),
            (BankruptSide::Long, dec!(2), dec!(40000))
        );
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(1000)));
        fund.await_offers(9, Request::Adl(request.clone()));
        let offer = |candidates| FundLine::Offer {
            claim: request.request.clone(),
            candidates,
        };
        assert!(
            answers(
                &mut fund,
                0,
                9,
                &[offer(vec![candidate(0, "c", 5.0, dec!(2))])]
            )
            .is_empty()
        );
        assert!(
            answers(
                &mut fund,
                1,
                9,
                &[offer(vec![candidate(1, "b", 9.0, dec!(1.5))])]
            )
            .is_empty()
        );
        // Input 12 comes with a fee: the answer to the request of input 9 comes first.
        let later = answers(&mut fund, 1, 12, &[paid(dec!(50))]);
        let [answer] = later.as_slice() else {
            panic!("one answer: {later:?}");
        };
        let shares: Vec<(u32, &str, Decimal, Decimal, Decimal)> = answer
            .adl
            .iter()
            .map(|s| (s.shard, s.account.as_str(), s.size, s.price, s.paid))
            .collect();
        assert_eq!(
            shares,
            [
                (1, "b", dec!(1.5), dec!(45000), dec!(7500)),
                (0, "c", dec!(0.5), dec!(45000), dec!(2500)),
            ]
        );
        assert_eq!((answer.covered, answer.fund_before), (dec!(0), dec!(1000)));
        assert_eq!(answer.for_engine().adl_paid, dec!(10000));
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(1050)));
        assert!(fund.awaiting().is_empty());
    }

    /// Funded with 30,000 at input 3 and a 12.5 fee on shard 2; shard 1 claims 19,000 then
    /// shard 3 claims 19,000: the first is covered whole (30,012.5 - 19,000 = 11,012.5 left),
    /// the second as far as the fund goes (11,012.5; 7,987.5 uncovered), and the fund ends at
    /// zero, not below. A deposit of later input (20) is not there for a claim of input 11.
    #[test]
    fn claims_are_covered_in_order_as_far_as_the_one_fund_goes() {
        let mut fund = Fund::default();
        fund.deposit(3, 0, "USDT", dec!(30000));
        fund.deposit(3, 0, "USDT", dec!(30000)); // read twice, counted once
        fund.deposit(20, 0, "USDT", dec!(100));
        assert!(answers(&mut fund, 2, 5, &[paid(dec!(12.5))]).is_empty());
        let first = answers(&mut fund, 1, 7, &[claim("a", dec!(19000))]);
        assert_eq!(
            first
                .iter()
                .map(|a| (a.covered, a.fund_before))
                .collect::<Vec<_>>(),
            [(dec!(19000), dec!(30012.5))]
        );
        let second = answers(&mut fund, 3, 9, &[claim("b", dec!(19000))]);
        assert_eq!(
            second
                .iter()
                .map(|a| (a.claim.clone(), a.covered, a.fund_before))
                .collect::<Vec<_>>(),
            [(
                ClaimId {
                    shard: 3,
                    input_seq: 9,
                    index: 0
                },
                dec!(11012.5),
                dec!(11012.5)
            )]
        );
        // The same effect message read again answers nothing twice and pays nothing twice.
        assert!(answers(&mut fund, 3, 9, &[claim("b", dec!(19000))]).is_empty());
        assert!(answers(&mut fund, 2, 5, &[paid(dec!(12.5))]).is_empty());
        // The balance shown counts the deposit of input 20 already read...
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(100)));
        // ...but a claim of input 11 does not see it: a fee paid later refills the fund, and
        // the claim gets that alone.
        let third = answers(&mut fund, 2, 11, &[paid(dec!(5)), claim("c", dec!(10))]);
        assert_eq!(
            third
                .iter()
                .map(|a| (a.covered, a.fund_before))
                .collect::<Vec<_>>(),
            [(dec!(5), dec!(5))]
        );
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(100)));
        // Counted for a claim of later input.
        let fourth = answers(&mut fund, 1, 21, &[claim("d", dec!(150))]);
        assert_eq!(
            fourth
                .iter()
                .map(|a| (a.covered, a.fund_before))
                .collect::<Vec<_>>(),
            [(dec!(100), dec!(100))]
        );
    }

    /// An earlier run shared a claim of 1,000 beyond a fund of 600 having taken 400 from the
    /// fund (say, its view of the deposits was different); this run takes 600: the fund
    /// follows what was published, 200 left, and a request for candidates takes nothing.
    #[test]
    fn the_fund_follows_the_share_requests_published_before() {
        let mut fund = Fund::new(FundTerms {
            socialise: true,
            ..FundTerms::default()
        });
        fund.deposit(1, 0, "USDT", dec!(600));
        let outputs = fund.apply(0, 4, &[claim("a", dec!(1000))]);
        let [FundOutput::Request(computed @ Request::Share(share))] = outputs.as_slice() else {
            panic!("a share request: {outputs:?}");
        };
        assert_eq!(share.covered, dec!(600));
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(0)));
        let published = Request::Share(ShareRequest {
            covered: dec!(400),
            ..share.clone()
        });
        fund.asked_as(computed, &published);
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(200)));
        // The same request published as computed changes nothing.
        fund.asked_as(&published, &published);
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(200)));
    }

    /// An earlier run answered a claim covered 600 of 1,000 (say, its view of the fees was
    /// different); this run computes 1,000: the fund follows what was published, which the
    /// shards applied.
    #[test]
    fn the_fund_follows_the_answers_published_before() {
        let mut fund = Fund::default();
        fund.deposit(1, 0, "USDT", dec!(1500));
        let computed = answers(&mut fund, 0, 4, &[claim("a", dec!(1000))]);
        assert_eq!(computed.first().map(|a| a.covered), Some(dec!(1000)));
        let published = ClaimAnswer {
            covered: dec!(600),
            fund_before: dec!(1100),
            ..computed[0].clone()
        };
        fund.settled_as(&computed[0], &published);
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(900)));
    }

    fn message(shard: u32, input_seq: u64) -> EffectMessage {
        EffectMessage {
            shard,
            input_seq,
            effect_seq: 100 - input_seq,
            lines: Vec::new(),
        }
    }

    /// A standby's turns ([`Kept::follow`]). A claim beyond the fund (100), with its account's
    /// short of 2 BTCUSDT closed, computes a request the holder has not published yet: it
    /// waits, and so does the answer to a later claim of 50 behind it (covered 50 by the
    /// standby's reckoning), nothing awaited. The next reading finds both published, the
    /// request at stream sequence 40 and the answer with a cover of 30 (a holder that
    /// computed otherwise): the request is awaited at 40 and the fund follows the published
    /// cover, 100 - 30 = 70. A standby that found both at once ends in the same state.
    #[test]
    fn a_standby_waits_for_the_holders_publications_and_then_follows_them() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../venues/default.toml"
        ))
        .expect("the default venue");
        let config = SystemConfig {
            servers: Vec::new(),
            venue_text: text.clone(),
            shards: 2,
            replicas: 1,
            stop_at_end: false,
            poll: Duration::from_millis(50),
            data_dir: None,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            lease_wait: LeaseWait::StandBy,
        };
        let kept = || {
            let venue = solvent_core::venue::Venue::from_toml("default", &text).expect("the venue");
            let mut kept = Kept::recover(&config, venue).expect("an empty fund");
            kept.fund.deposit(1, 0, "USDT", dec!(100));
            kept
        };
        let progress = |shard: u32, through: u64| effects::StoredMessage {
            stream_seq: u64::from(shard) + 1,
            subject: format!("{PROGRESS_SUBJECT_PREFIX}{shard}"),
            headers: None,
            payload: through.to_string().into(),
        };
        let bankrupt = r#"{"account":"a","asset":"USDT","deficit":"1000","fund":"0","position":{"bankruptcy_price":"40500","fee":"0","instrument":"BTCUSDT","isolated":false,"mark":"40000","size":"2"},"resolution":"claimed","seq":1,"type":"deficit_beyond_fund"}"#;
        let covered = r#"{"account":"b","asset":"USDT","deficit":"50","fund":"0","resolution":"claimed","seq":2,"type":"deficit_beyond_fund"}"#;
        let reading = |fund_messages: Vec<(u64, FundMessage)>| Reading {
            progress: vec![progress(0, 6), progress(1, 6)],
            effects: vec![
                EffectMessage {
                    shard: 0,
                    input_seq: 5,
                    effect_seq: 3,
                    lines: vec![bankrupt.to_owned()],
                },
                EffectMessage {
                    shard: 1,
                    input_seq: 6,
                    effect_seq: 4,
                    lines: vec![covered.to_owned()],
                },
            ],
            deposits: Vec::new(),
            fund_messages,
        };
        let nothing_new = || Reading {
            progress: Vec::new(),
            effects: Vec::new(),
            deposits: Vec::new(),
            fund_messages: Vec::new(),
        };

        let mut standby = kept();
        standby.follow(reading(Vec::new()), 2).expect("a turn");
        assert_eq!(standby.report.watermark, Some(6));
        let waiting: Vec<FundOutput> = standby.pending.iter().cloned().collect();
        let [FundOutput::Request(request), FundOutput::Answer(answer)] = waiting.as_slice() else {
            panic!("a request, then an answer: {:?}", standby.pending);
        };
        assert_eq!(request.claim().input_seq, 5);
        assert_eq!((answer.claim.input_seq, answer.covered), (6, dec!(50)));
        assert!(standby.fund.awaiting().is_empty());
        assert_eq!(standby.report.claims, 0);

        let published = vec![
            (40, FundMessage::Request(request.clone())),
            (
                41,
                FundMessage::Answer(ClaimAnswer {
                    covered: dec!(30),
                    ..answer.clone()
                }),
            ),
        ];
        standby
            .follow(
                Reading {
                    fund_messages: published.clone(),
                    ..nothing_new()
                },
                2,
            )
            .expect("a turn");
        assert!(standby.pending.is_empty());
        assert_eq!(standby.fund.awaiting().keys().collect::<Vec<_>>(), [&40]);
        assert_eq!(standby.fund.balances().get("USDT"), Some(&dec!(70)));
        assert_eq!(
            (
                standby.report.adl_requests_already_published,
                standby.report.answers_already_published,
                standby.report.claims,
                standby.fund_read_through,
            ),
            (1, 1, 1, 41)
        );

        let mut at_once = kept();
        at_once.follow(reading(published), 2).expect("a turn");
        at_once.follow(nothing_new(), 2).expect("a turn");
        assert!(at_once.pending.is_empty());
        assert_eq!(at_once.fund, standby.fund);
        assert_eq!(at_once.report.fund_hash, standby.report.fund_hash);
        assert_eq!(standby.diverged(), None);

        // A holder that answered the first claim where this standby asked: it cannot follow.
        let mut diverging = kept();
        diverging.follow(reading(Vec::new()), 2).expect("a turn");
        assert_eq!(diverging.diverged(), None, "nothing published yet");
        let answered = ClaimAnswer {
            claim: request.claim().clone(),
            ..answer.clone()
        };
        diverging
            .follow(
                Reading {
                    fund_messages: vec![(40, FundMessage::Answer(answered))],
                    ..nothing_new()
                },
                2,
            )
            .expect("a turn");
        assert_eq!(diverging.pending.len(), 2);
        assert_eq!(diverging.diverged(), Some(request.claim().clone()));
    }

    /// Effect messages stored out of input order (shard 1's input 9 before shard 0's input 5)
    /// are applied in input order, and only up to the least progress every shard recorded.
    #[test]
    fn effect_messages_wait_for_every_shards_progress_and_go_in_input_order() {
        let mut waiting = BTreeMap::new();
        for (shard, input_seq) in [(1, 9), (0, 5), (1, 12), (0, 9)] {
            waiting.insert((input_seq, shard), message(shard, input_seq));
        }
        let mut progress = BTreeMap::from([(0, 10)]);
        // Shard 1 has recorded nothing: nothing is ready.
        assert_eq!(watermark(&progress, 2), None);
        assert!(ready(&mut waiting, watermark(&progress, 2)).is_empty());
        progress.insert(1, 9);
        assert_eq!(watermark(&progress, 2), Some(9));
        let order: Vec<(u64, u32)> = ready(&mut waiting, watermark(&progress, 2))
            .iter()
            .map(|m| (m.input_seq, m.shard))
            .collect();
        assert_eq!(order, [(5, 0), (9, 0), (9, 1)]);
        assert_eq!(waiting.len(), 1);
        progress.insert(1, 20);
        progress.insert(0, 20);
        assert_eq!(ready(&mut waiting, watermark(&progress, 2)).len(), 1);
        assert!(waiting.is_empty());
    }

    #[test]
    fn fund_lines_are_read_from_effect_lines() {
        let fee = r#"{"asset":"USDT","balance":"12.5","change":"12.5","reason":"liquidation_fee","seq":65536,"type":"insurance_fund_changed"}"#;
        let cover = r#"{"asset":"USDT","balance":"-100","change":"-100","reason":"deficit_covered","seq":65536,"type":"insurance_fund_changed"}"#;
        let claimed = r#"{"account":"a7","asset":"USDT","deficit":"19000","fund":"0","resolution":"claimed","seq":65537,"type":"deficit_beyond_fund"}"#;
        let debt = r#"{"account":"a7","asset":"USDT","deficit":"19000","fund":"0","resolution":"account_debt","seq":65537,"type":"deficit_beyond_fund"}"#;
        assert_eq!(fund_line(fee), Ok(Some(paid(dec!(12.5)))));
        assert_eq!(fund_line(cover), Ok(None));
        assert_eq!(fund_line(claimed), Ok(Some(claim("a7", dec!(19000)))));
        let with_position = r#"{"account":"a7","asset":"BTC","deficit":"0.5","fund":"0","position":{"bankruptcy_price":"41000","fee":"0.001","instrument":"BTC-PERPETUAL","isolated":true,"mark":"40000","size":"-20000"},"resolution":"remainder_claimed","seq":65537,"type":"deficit_beyond_fund"}"#;
        assert_eq!(
            fund_line(with_position),
            Ok(Some(FundLine::Claim {
                account: "a7".to_owned(),
                asset: "BTC".to_owned(),
                deficit: dec!(0.5),
                position: Some(ClaimedPosition {
                    instrument: "BTC-PERPETUAL".to_owned(),
                    size: dec!(-20000),
                    mark: dec!(40000),
                    bankruptcy_price: dec!(41000),
                    isolated: true,
                    fee: dec!(0.001),
                }),
                remainder: true,
            }))
        );
        assert_eq!(fund_line(debt), Ok(None));
        assert_eq!(fund_line(r#"{"type":"margin_call"}"#), Ok(None));
        // Another effect is passed over whatever else it holds; a line without a type, or
        // whose type is not text, or that is not one JSON document, is an error.
        assert_eq!(
            fund_line(r#"{"account":"a7","reason":"funded","type":"deposit\u0020x"}"#),
            Ok(None)
        );
        assert!(fund_line(r#"{"asset":"USDT","reason":"funded"}"#).is_err());
        assert!(fund_line(r#"{"type":7}"#).is_err());
        assert!(fund_line(r#"["margin_call"]"#).is_err());
        assert_eq!(fund_line(r#" {"type":"margin_call"}"#), Ok(None));
        assert!(fund_line(r#"{"type":"margin_call"} {}"#).is_err());
        assert!(fund_line("nope").is_err());
        assert!(fund_line(r#"{"type":"insurance_fund_changed","reason":"funded"}"#).is_err());
    }

    #[test]
    fn an_answer_reads_back_and_rejects_unknown_fields() {
        let answer = ClaimAnswer {
            claim: ClaimId {
                shard: 1,
                input_seq: 42,
                index: 0,
            },
            account: "a7".to_owned(),
            asset: "USDT".to_owned(),
            claimed: dec!(19000),
            covered: dec!(19000),
            fund_before: dec!(30000),
            adl: Vec::new(),
            socialised: Vec::new(),
            returned: false,
            fee: Decimal::ZERO,
            remainder: false,
        };
        let text = serde_json::to_string(&answer).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"claim":{"shard":1,"input_seq":42,"index":0},"account":"a7","asset":"USDT","claimed":"19000","covered":"19000","fund_before":"30000"}"#
        );
        assert_eq!(decode_answer(5, text.as_bytes()).ok(), Some(answer));
        assert!(
            decode_answer(
                5,
                br#"{"claim":{"shard":1,"input_seq":42,"index":0},"extra":1}"#
            )
            .is_err()
        );
        assert_eq!(answer_id(), "answer-1-42-0");
    }

    fn answer_id() -> String {
        ClaimId {
            shard: 1,
            input_seq: 42,
            index: 0,
        }
        .message_id()
    }
}
