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
//! (`solvent.progress.<K>`, [`watermark`]). The system shard reads the streams from the start
//! at every run and publishes only the answers the input stream does not hold yet, each with
//! its own message id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::ClusterError;
use crate::effects::{self, EffectMessage};
use crate::routing::{
    EFFECT_STREAM, FUND_SUBJECT, INPUT_STREAM, PROGRESS_SUBJECT_PREFIX, SYSTEM_SUBJECT,
};
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::Effect;
use solvent_engine::event::Event;

/// Which claim an answer settles: the shard that claimed, the input message whose effects
/// hold the claim, and the claim's place among that message's claims.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimId {
    /// The account shard that claimed.
    pub shard: u32,
    /// The input stream sequence whose effects hold the claim.
    pub input_seq: u64,
    /// The claim's place among that message's claims, from 0.
    pub index: u32,
}

impl ClaimId {
    /// The JetStream message id of the answer (`answer-<shard>-<input seq>-<index>`): a
    /// re-published answer is dropped within the duplicate window, and the system shard reads
    /// which answers are stored before it publishes any.
    #[must_use]
    pub fn message_id(&self) -> String {
        format!("answer-{}-{}-{}", self.shard, self.input_seq, self.index)
    }
}

/// The system shard's answer to one deficit claim: the JSON payload of a message on
/// [`FUND_SUBJECT`]. Amounts are decimal strings.
///
/// ```json
/// {"claim":{"shard":1,"input_seq":42,"index":0},"account":"a7","asset":"USDT",
///  "claimed":"19000","covered":"19000","fund_before":"30000"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimAnswer {
    /// The claim answered.
    pub claim: ClaimId,
    /// The bankrupt account.
    pub account: String,
    /// The asset of the deficit.
    pub asset: String,
    /// The deficit claimed.
    pub claimed: Decimal,
    /// What the fund pays: the deficit, or all the fund held of the asset when that is less.
    pub covered: Decimal,
    /// What the fund held of the asset before this answer.
    pub fund_before: Decimal,
}

impl ClaimAnswer {
    /// The answer as the claiming shard's engine applies it.
    #[must_use]
    pub fn for_engine(&self) -> solvent_engine::engine::ClaimAnswer {
        solvent_engine::engine::ClaimAnswer {
            account: self.account.clone(),
            asset: self.asset.clone(),
            claimed: self.claimed,
            covered: self.covered,
            fund_before: self.fund_before,
        }
    }
}

/// What the system shard reads in an effect line: what feeds the fund, and claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FundLine {
    /// Money paid into the fund on a shard (the venue's deposit, `funded`, or a liquidation
    /// fee, `liquidation_fee`).
    Paid {
        /// The asset.
        asset: String,
        /// The amount (positive).
        amount: Decimal,
    },
    /// A deficit claimed (`deficit_beyond_fund` with resolution `claimed`).
    Claim {
        /// The bankrupt account.
        account: String,
        /// The asset.
        asset: String,
        /// The deficit.
        deficit: Decimal,
    },
}

/// Why an effect line could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("effect line {line:?}: {problem}")]
pub struct FundLineError {
    /// The line.
    pub line: String,
    /// What is wrong.
    pub problem: String,
}

/// The effect line's meaning for the fund, if it has one; `Ok(None)` for every other effect.
///
/// # Errors
/// [`FundLineError`] for a line that is not JSON, or a fund effect missing a field.
pub fn fund_line(line: &str) -> Result<Option<FundLine>, FundLineError> {
    let bad = |problem: &str| FundLineError {
        line: line.to_owned(),
        problem: problem.to_owned(),
    };
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|error| bad(&error.to_string()))?;
    let text = |field: &str| {
        value
            .get(field)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad(&format!("no {field}")))
    };
    let amount = |field: &str| -> Result<Decimal, FundLineError> {
        text(field)?
            .parse::<Decimal>()
            .map_err(|error| bad(&format!("{field}: {error}")))
    };
    match value.get("type").and_then(serde_json::Value::as_str) {
        Some("insurance_fund_changed") => match text("reason")? {
            "funded" | "liquidation_fee" => Ok(Some(FundLine::Paid {
                asset: text("asset")?.to_owned(),
                amount: amount("change")?,
            })),
            // A cover is the answer's doing: already taken from the fund when answered.
            _ => Ok(None),
        },
        Some("deficit_beyond_fund") if text("resolution")? == "claimed" => {
            Ok(Some(FundLine::Claim {
                account: text("account")?.to_owned(),
                asset: text("asset")?.to_owned(),
                deficit: amount("deficit")?,
            }))
        }
        Some(_) => Ok(None),
        None => Err(bad("no type")),
    }
}

/// The insurance fund as the system shard keeps it: a pure state machine over the venue's
/// deposits to the fund (input stream, [`SYSTEM_SUBJECT`]) and the account shards' effect
/// messages (in input order, see [`ready`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fund {
    /// What the fund holds, by asset: everything paid in less everything covered.
    balances: BTreeMap<String, Decimal>,
    /// Deposits read and not yet counted, by input stream sequence: each is counted before
    /// the first claim of a later input, so a claim sees exactly the deposits before it in
    /// the input stream.
    deposits: BTreeMap<u64, Vec<(String, Decimal)>>,
    /// The effect messages applied, by (shard, input sequence): one read twice, or stored twice
    /// beyond JetStream's duplicate window, pays nothing in and claims nothing twice.
    applied: BTreeSet<(u32, u64)>,
}

impl Fund {
    /// What the fund holds, by asset, counting every deposit read (also those of input after
    /// the claims answered so far, which are not counted for those claims).
    #[must_use]
    pub fn balances(&self) -> BTreeMap<String, Decimal> {
        let mut balances = self.balances.clone();
        for (asset, amount) in self.deposits.values().flatten() {
            *balances.entry(asset.clone()).or_default() += *amount;
        }
        balances
    }

    /// A deposit of `amount` of `asset` to the fund, in the input message at `stream_seq`
    /// (a deposit read twice is counted once: it is keyed by its place).
    pub fn deposit(&mut self, stream_seq: u64, index: usize, asset: &str, amount: Decimal) {
        let at = self.deposits.entry(stream_seq).or_default();
        if at.len() == index && amount > Decimal::ZERO {
            at.push((asset.to_owned(), amount));
        }
    }

    /// Makes the fund what it is had `answer` (computed now) been `published` (computed by an
    /// earlier run, and applied by the shards): the difference of their covers goes back.
    pub fn settled_as(&mut self, answer: &ClaimAnswer, published: &ClaimAnswer) {
        let difference = answer.covered - published.covered;
        if !difference.is_zero() {
            *self.balances.entry(answer.asset.clone()).or_default() += difference;
        }
    }

    /// Counts the deposits of input before `input_seq`.
    fn count_deposits_before(&mut self, input_seq: u64) {
        let later = self.deposits.split_off(&input_seq);
        for (asset, amount) in std::mem::replace(&mut self.deposits, later)
            .into_values()
            .flatten()
        {
            *self.balances.entry(asset).or_default() += amount;
        }
    }

    /// Applies one effect message of shard `shard` for input `input_seq`: the deposits of
    /// earlier input and what was paid in add to the fund; each claim is covered as far as the
    /// fund holds the asset (never below zero) and answered. Returns the answers, in the order
    /// of the claims; nothing for a message applied before.
    #[must_use]
    pub fn apply(&mut self, shard: u32, input_seq: u64, lines: &[FundLine]) -> Vec<ClaimAnswer> {
        if !self.applied.insert((shard, input_seq)) {
            return Vec::new();
        }
        self.count_deposits_before(input_seq);
        let mut answers = Vec::new();
        let mut index = 0_u32;
        for line in lines {
            match line {
                FundLine::Paid { asset, amount } => {
                    *self.balances.entry(asset.clone()).or_default() += *amount;
                }
                FundLine::Claim {
                    account,
                    asset,
                    deficit,
                } => {
                    let claim = ClaimId {
                        shard,
                        input_seq,
                        index,
                    };
                    index += 1;
                    if *deficit <= Decimal::ZERO {
                        continue;
                    }
                    let held = self.balances.entry(asset.clone()).or_default();
                    let fund_before = *held;
                    let covered = (*deficit).min(fund_before.max(Decimal::ZERO));
                    *held -= covered;
                    answers.push(ClaimAnswer {
                        claim,
                        account: account.clone(),
                        asset: asset.clone(),
                        claimed: *deficit,
                        covered,
                        fund_before,
                    });
                }
            }
        }
        answers
    }
}

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
}

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
/// of the streams, having answered the claims up to the watermark). It holds no state of its
/// own on disk: each run reads the streams from their start, so the fund and every answer are
/// rebuilt the same, and publishes only the answers the input stream lacks.
///
/// # Errors
/// [`ClusterError`]: NATS unreachable or refusing, an effect or answer message that does not
/// read. Restarting it answers what is left, nothing twice.
pub async fn run(
    config: SystemConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<SystemReport, ClusterError> {
    let venue = solvent_core::venue::Venue::from_toml("venue", &config.venue_text)
        .map_err(|error| ClusterError::Config(format!("the system shard's venue: {error}")))?;
    // Deposits to the fund go through an engine of their own, which books them (its ledger
    // holds the fund's deposits) by the rules one engine applies, refusing what it refuses.
    let mut deposits = solvent_engine::Engine::new(venue, EngineConfig::default());
    let js = crate::shard::connect(&config.servers, config.shards, config.replicas).await?;
    let mut queries = js
        .client()
        .subscribe(SYSTEM_QUERY_SUBJECT)
        .await
        .map_err(|error| ClusterError::Nats(format!("queries of the system shard: {error}")))?;
    let published = published_answers(&js).await?;
    let mut fund = Fund::default();
    let mut report = SystemReport::default();
    let mut read_through = 0_u64;
    let mut deposits_through = 0_u64;
    let mut progress_through = 0_u64;
    let mut progress: BTreeMap<u32, u64> = BTreeMap::new();
    let mut waiting: BTreeMap<(u64, u32), EffectMessage> = BTreeMap::new();
    loop {
        // First the shards' progress, then the effects and the deposits: every effect message
        // and deposit of input up to a shard's recorded progress is stored by the time the
        // progress is (the shard had every acknowledgement first).
        for effects::StoredMessage {
            stream_seq,
            subject,
            payload,
            ..
        } in effects::read_stream(
            &js,
            EFFECT_STREAM,
            &format!("{PROGRESS_SUBJECT_PREFIX}*"),
            progress_through,
        )
        .await?
        {
            progress_through = progress_through.max(stream_seq);
            let shard = subject
                .strip_prefix(PROGRESS_SUBJECT_PREFIX)
                .and_then(|k| k.parse::<u32>().ok());
            let through = std::str::from_utf8(&payload)
                .ok()
                .and_then(|text| text.parse::<u64>().ok());
            if let (Some(shard), Some(through)) = (shard, through) {
                let at = progress.entry(shard).or_default();
                *at = (*at).max(through);
            }
        }
        for message in effects::read_after(&js, None, read_through).await? {
            read_through = read_through.max(message.effect_seq);
            report.effect_messages += 1;
            waiting.insert((message.input_seq, message.shard), message);
        }
        for effects::StoredMessage {
            stream_seq,
            payload,
            ..
        } in effects::read_stream(&js, INPUT_STREAM, SYSTEM_SUBJECT, deposits_through).await?
        {
            deposits_through = deposits_through.max(stream_seq);
            for (index, envelope) in crate::message::decode(stream_seq, &payload)?
                .iter()
                .enumerate()
            {
                let refused = deposits
                    .apply(envelope)
                    .iter()
                    .any(|effect| matches!(effect, Effect::Rejected { .. }));
                match &envelope.event {
                    Event::Deposit(deposit) if !refused => {
                        fund.deposit(stream_seq, index, &deposit.asset, deposit.amount.value());
                    }
                    _ => report.deposits_refused += 1,
                }
            }
        }
        report.watermark = watermark(&progress, config.shards);
        for message in ready(&mut waiting, report.watermark) {
            for answer in answers_to(&mut fund, &message)? {
                report.claims += 1;
                if let Some(earlier) = published.get(&answer.claim) {
                    // What was published is what the shards apply: the fund follows it, should
                    // this run have computed otherwise.
                    fund.settled_as(&answer, earlier);
                    report.answers_already_published += 1;
                } else {
                    publish_answer(&js, &answer).await?;
                    report.answers_published += 1;
                }
            }
        }
        report.effect_messages_waiting = waiting.len();
        report.fund = fund.balances();
        if config.stop_at_end {
            break;
        }
        let wake = tokio::time::sleep(config.poll);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = &mut wake => break,
                Some(request) = queries.next() => answer_query(&js, &report, &request).await?,
                _ = stop.changed() => return Ok(report),
            }
        }
    }
    Ok(report)
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
    let request = client.request(SYSTEM_QUERY_SUBJECT, bytes::Bytes::new());
    match tokio::time::timeout(SYSTEM_QUERY_TIMEOUT, request).await {
        Err(_) => Err(ClusterError::Nats(
            "the system shard did not answer in time".to_owned(),
        )),
        Ok(Err(error)) if error.kind() == async_nats::RequestErrorKind::NoResponders => Ok(None),
        Ok(Err(error)) => Err(ClusterError::Nats(format!("the system shard: {error}"))),
        Ok(Ok(reply)) => serde_json::from_slice::<SystemReport>(&reply.payload)
            .map(|report| Some(report.fund))
            .map_err(|error| ClusterError::Nats(format!("the system shard's answer: {error}"))),
    }
}

/// The answers one effect message gives.
fn answers_to(fund: &mut Fund, message: &EffectMessage) -> Result<Vec<ClaimAnswer>, ClusterError> {
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

async fn publish_answer(js: &Context, answer: &ClaimAnswer) -> Result<(), ClusterError> {
    let payload = serde_json::to_vec(answer)
        .map_err(|error| ClusterError::Nats(format!("encoding an answer: {error}")))?;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", answer.claim.message_id().as_str());
    js.publish_with_headers(FUND_SUBJECT, headers, payload.into())
        .await
        .map_err(|error| ClusterError::Nats(format!("publishing an answer: {error}")))?
        .await
        .map_err(|error| ClusterError::Nats(format!("answer not acknowledged: {error}")))?;
    Ok(())
}

/// The answers the input stream holds, by claim (the first of each, as the shards apply it).
///
/// # Errors
/// [`ClusterError`] when the stream cannot be read or an answer does not read.
pub async fn published_answers(
    js: &Context,
) -> Result<BTreeMap<ClaimId, ClaimAnswer>, ClusterError> {
    let mut published = BTreeMap::new();
    for (_, answer) in read_answers(js).await? {
        published.entry(answer.claim.clone()).or_insert(answer);
    }
    Ok(published)
}

/// Every answer the input stream holds, with its stream sequence, in stream order.
///
/// # Errors
/// [`ClusterError`] when the stream cannot be read or an answer does not read.
pub async fn read_answers(js: &Context) -> Result<Vec<(u64, ClaimAnswer)>, ClusterError> {
    effects::read_stream(js, INPUT_STREAM, FUND_SUBJECT, 0)
        .await?
        .into_iter()
        .map(|stored| {
            Ok((
                stored.stream_seq,
                decode_answer(stored.stream_seq, &stored.payload)?,
            ))
        })
        .collect()
}

/// Reads the answer carried by the input message at `stream_seq`.
///
/// # Errors
/// [`crate::message::MessageError::NotAnAnswer`] naming the message.
pub fn decode_answer(stream_seq: u64, payload: &[u8]) -> Result<ClaimAnswer, ClusterError> {
    serde_json::from_slice(payload).map_err(|error| {
        ClusterError::Message(crate::message::MessageError::NotAnAnswer {
            stream_seq,
            problem: error.to_string(),
        })
    })
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
        }
    }

    fn paid(amount: Decimal) -> FundLine {
        FundLine::Paid {
            asset: "USDT".to_owned(),
            amount,
        }
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
        assert!(fund.apply(2, 5, &[paid(dec!(12.5))]).is_empty());
        let first = fund.apply(1, 7, &[claim("a", dec!(19000))]);
        assert_eq!(
            first
                .iter()
                .map(|a| (a.covered, a.fund_before))
                .collect::<Vec<_>>(),
            [(dec!(19000), dec!(30012.5))]
        );
        let second = fund.apply(3, 9, &[claim("b", dec!(19000))]);
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
        assert!(fund.apply(3, 9, &[claim("b", dec!(19000))]).is_empty());
        assert!(fund.apply(2, 5, &[paid(dec!(12.5))]).is_empty());
        // The balance shown counts the deposit of input 20 already read...
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(100)));
        // ...but a claim of input 11 does not see it: a fee paid later refills the fund, and
        // the claim gets that alone.
        let third = fund.apply(2, 11, &[paid(dec!(5)), claim("c", dec!(10))]);
        assert_eq!(
            third
                .iter()
                .map(|a| (a.covered, a.fund_before))
                .collect::<Vec<_>>(),
            [(dec!(5), dec!(5))]
        );
        assert_eq!(fund.balances().get("USDT"), Some(&dec!(100)));
        // Counted for a claim of later input.
        let fourth = fund.apply(1, 21, &[claim("d", dec!(150))]);
        assert_eq!(
            fourth
                .iter()
                .map(|a| (a.covered, a.fund_before))
                .collect::<Vec<_>>(),
            [(dec!(100), dec!(100))]
        );
    }

    /// An earlier run answered a claim covered 600 of 1,000 (say, its view of the fees was
    /// different); this run computes 1,000: the fund follows what was published, which the
    /// shards applied.
    #[test]
    fn the_fund_follows_the_answers_published_before() {
        let mut fund = Fund::default();
        fund.deposit(1, 0, "USDT", dec!(1500));
        let computed = fund.apply(0, 4, &[claim("a", dec!(1000))]);
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
        assert_eq!(fund_line(debt), Ok(None));
        assert_eq!(fund_line(r#"{"type":"margin_call"}"#), Ok(None));
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
