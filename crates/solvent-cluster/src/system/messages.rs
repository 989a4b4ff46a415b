//! What the system shard and the account shards say to each other about the fund: claims'
//! ids, answers with their auto-deleveraging and socialised shares, requests for candidates
//! or positions in profit, the shards' offers, and the effect lines the system shard reads.

#[allow(clippy::wildcard_imports)]
use super::*;

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
    /// The counterparties auto-deleveraged for this claim, on any shard, each applied by its
    /// own shard (none when the fund covered the claim, or no shard offered a counterparty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adl: Vec<AdlShare>,
    /// Under `deficits = "socialise"`, the positions in profit that bear what the fund did not
    /// cover, on any shard, each applied by its own shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub socialised: Vec<SocialShare>,
    /// The claim was an isolated position's: what the fund (which covers none of it) and
    /// the counterparties do not pay goes back to the account, as one engine's wallet bears
    /// an isolated loss it does not deleverage ([`solvent_engine::engine::ClaimAnswer::returned`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub returned: bool,
    /// With `returned`, the liquidation fee owed if nobody was deleveraged.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub fee: Decimal,
    /// The claim was a deleveraging's remainder, claimed by the counterparty's shard: what is
    /// uncovered is the bankrupt account's debt, taken by the shard that holds it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remainder: bool,
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
            adl_paid: self.adl_paid(),
            socialised_paid: self.socialised_paid(),
            returned: self.returned,
            fee: self.fee,
            remainder: self.remainder,
        }
    }

    /// What neither the fund nor the counterparties nor the accounts in profit pay: the
    /// account's debt, or what goes back to it (`returned`); never negative.
    #[must_use]
    pub fn uncovered(&self) -> Decimal {
        (self.claimed - self.covered - self.adl_paid() - self.socialised_paid()).max(Decimal::ZERO)
    }

    /// What the deleveraged counterparties pay towards the deficit, together.
    #[must_use]
    pub fn adl_paid(&self) -> Decimal {
        self.adl.iter().map(|share| share.paid).sum()
    }

    /// What the accounts in profit pay towards the deficit, together.
    #[must_use]
    pub fn socialised_paid(&self) -> Decimal {
        self.socialised.iter().map(|share| share.paid).sum()
    }
}

/// One position's share of a deficit socialised across shards, as the answer records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialShare {
    /// The shard that holds the account.
    pub shard: u32,
    /// The account.
    pub account: String,
    /// The position in profit.
    pub instrument: String,
    /// Whether it had its own isolated margin.
    pub isolated: bool,
    /// Its share (positive), in the deficit's asset.
    pub paid: Decimal,
}

impl SocialShare {
    /// The share as its shard's engine applies it, for the bankrupt account `bankrupt`'s
    /// deficit in `asset`.
    #[must_use]
    pub fn for_engine(
        &self,
        bankrupt: &str,
        asset: &str,
    ) -> solvent_engine::engine::SocialisedShare {
        solvent_engine::engine::SocialisedShare {
            bankrupt: bankrupt.to_owned(),
            account: self.account.clone(),
            instrument: self.instrument.clone(),
            isolated: self.isolated,
            paid: self.paid,
            asset: asset.to_owned(),
        }
    }
}

/// The system shard's request for the positions in profit, for a claim beyond the fund on a
/// venue with `deficits = "socialise"`: the fund has covered what it holds (`covered`); every
/// account shard answers at the request's stream sequence with its positions in profit in the
/// asset (a `profit_offer` line, see [`profit_line`]), and the system shard shares the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// The claim it is for.
    pub share: ClaimId,
    /// The bankrupt account.
    pub account: String,
    /// The asset of the deficit.
    pub asset: String,
    /// The deficit claimed.
    pub claimed: Decimal,
    /// What the fund covered of it.
    pub covered: Decimal,
    /// What the fund held of the asset before.
    pub fund_before: Decimal,
}

/// A request the system shard publishes before it answers a claim beyond the fund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    /// Candidates to deleverage.
    Adl(AdlRequest),
    /// Positions in profit to share the deficit (`deficits = "socialise"`).
    Share(ShareRequest),
}

impl Request {
    /// The claim it is for.
    #[must_use]
    pub fn claim(&self) -> &ClaimId {
        match self {
            Self::Adl(request) => &request.request,
            Self::Share(request) => &request.share,
        }
    }

    /// Its JetStream message id (`adl-K-S-I` or `share-K-S-I`).
    #[must_use]
    pub fn message_id(&self) -> String {
        match self {
            Self::Adl(request) => request.message_id(),
            Self::Share(request) => format!(
                "share-{}-{}-{}",
                request.share.shard, request.share.input_seq, request.share.index
            ),
        }
    }
}

/// One position in profit a shard offers for a [`ShareRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfitOffer {
    /// The shard.
    pub shard: u32,
    /// The account.
    pub account: String,
    /// The instrument.
    pub instrument: String,
    /// Whether the position has its own isolated margin.
    pub isolated: bool,
    /// Its unrealised profit at the shard's marks, rounded down (positive).
    pub profit: Decimal,
}

/// The `type` of a profit offer line in a shard's effect message.
pub const PROFIT_OFFER_TYPE: &str = "profit_offer";

/// The effect line with which shard `shard` offers its positions in profit for `request`
/// (its engine's, at this place in the stream: [`solvent_engine::Engine::profit_holders`]).
///
/// # Errors
/// [`ClusterError::Config`] when the line cannot be encoded.
pub fn profit_line(
    engine: &solvent_engine::Engine,
    shard: u32,
    seq: u64,
    request: &ShareRequest,
) -> Result<String, ClusterError> {
    let holders: Vec<ProfitOffer> = engine
        .profit_holders(&request.account, &request.asset)
        .into_iter()
        .map(|holder| ProfitOffer {
            shard,
            account: holder.account.to_string(),
            instrument: holder.instrument,
            isolated: holder.isolated,
            profit: holder.profit,
        })
        .collect();
    serde_json::to_string(&serde_json::json!({
        "type": PROFIT_OFFER_TYPE,
        "claim": request.share,
        "holders": holders,
        "seq": seq,
    }))
    .map_err(|error| ClusterError::Config(format!("encoding an offer: {error}")))
}

/// One counterparty's share of a claim's auto-deleveraging, as the answer records it: which
/// account of which shard, how many contracts at which price, and what it pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdlShare {
    /// The shard that holds the account.
    pub shard: u32,
    /// The account deleveraged.
    pub account: String,
    /// The instrument.
    pub instrument: String,
    /// Contracts it takes over (positive).
    pub size: Decimal,
    /// The mark the bankrupt position was closed at (its shard's, in the claim).
    pub mark: Decimal,
    /// The bankruptcy price its trade is at, as the claimant's engine solved it (linear or
    /// inverse): paying `paid` and trading at the mark is trading at this price.
    pub price: Decimal,
    /// What it pays towards the deficit: the claim's deficit times `size` over the bankrupt
    /// position's size, rounded down to the asset's precision.
    pub paid: Decimal,
}

impl AdlShare {
    /// The share as its shard's engine applies it, for the bankrupt account `bankrupt`.
    #[must_use]
    pub fn for_engine(&self, bankrupt: &str) -> solvent_engine::engine::AdlAssignment {
        solvent_engine::engine::AdlAssignment {
            bankrupt: bankrupt.to_owned(),
            account: self.account.clone(),
            instrument: self.instrument.clone(),
            size: self.size,
            mark: self.mark,
            price: self.price,
            paid: self.paid,
        }
    }
}

/// The system shard's request for auto-deleveraging candidates, for a claim the fund cannot
/// cover: a message on [`FUND_SUBJECT`] that every account shard answers, at the request's
/// stream sequence, with its offer (an `adl_offer` line in its effect message, see
/// [`offer_line`]). The system shard answers the claim once every shard's progress has
/// passed the request.
///
/// ```json
/// {"request":{"shard":0,"input_seq":9,"index":0},"account":"a7","asset":"USDT",
///  "claimed":"16000","instrument":"BTCUSDT","side":"long","quantity":"2","mark":"40000"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdlRequest {
    /// The claim it is for.
    pub request: ClaimId,
    /// The bankrupt account.
    pub account: String,
    /// The asset of the deficit.
    pub asset: String,
    /// The deficit claimed.
    pub claimed: Decimal,
    /// The instrument of the bankrupt position (the last it closed).
    pub instrument: String,
    /// The bankrupt position's side: the candidates hold the other.
    pub side: BankruptSide,
    /// The contracts closed (positive): what the counterparties take over.
    pub quantity: Decimal,
    /// The mark they were closed at.
    pub mark: Decimal,
    /// The bankruptcy price the claimant's engine solved for the position (0 in a request of
    /// an earlier version: then derived from the mark for a linear contract).
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub price: Decimal,
    /// The claim is an isolated position's: the fund covers none of it (see
    /// [`ClaimAnswer::returned`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolated: bool,
    /// The liquidation fee the claim carries (see [`ClaimAnswer::fee`]).
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub fee: Decimal,
    /// The claim is a deleveraging's remainder (see [`ClaimAnswer::remainder`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remainder: bool,
}

impl AdlRequest {
    /// The JetStream message id of the request (`adl-<shard>-<input seq>-<index>`).
    #[must_use]
    pub fn message_id(&self) -> String {
        format!(
            "adl-{}-{}-{}",
            self.request.shard, self.request.input_seq, self.request.index
        )
    }
}

/// A message on [`FUND_SUBJECT`]: the system shard's answer to a claim, or its request for
/// candidates before it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FundMessage {
    /// An answer, which settles a claim.
    Answer(ClaimAnswer),
    /// A request for candidates or for positions in profit.
    Request(Request),
}

/// The effect line with which shard `shard` offers its candidates for `request`: its first
/// candidates, ranked by its engine, enough for their sizes to reach the quantity
/// ([`solvent_engine::Engine::adl_candidates_reaching`], which ranks through the engine's ADL
/// index instead of scoring every holder of the contract).
///
/// # Errors
/// [`ClusterError::Config`] when the line cannot be encoded.
pub fn offer_line(
    engine: &mut solvent_engine::Engine,
    shard: u32,
    seq: u64,
    request: &AdlRequest,
) -> Result<String, ClusterError> {
    // An instrument this shard's venue does not list has no holders here: no candidates.
    let ranked = engine
        .adl_candidates_reaching(
            &request.instrument,
            request.side.into(),
            request.mark,
            request.quantity,
            &request.account,
        )
        .unwrap_or_default();
    serde_json::to_string(&serde_json::json!({
        "type": OFFER_TYPE,
        "claim": request.request,
        "candidates": crate::adl::offer(shard, &ranked),
        "seq": seq,
    }))
    .map_err(|error| ClusterError::Config(format!("encoding an offer: {error}")))
}

/// The `type` of an offer line in a shard's effect message.
pub const OFFER_TYPE: &str = "adl_offer";

/// What the system shard reads in an effect line: what feeds the fund, claims with the
/// positions they carry, and offers of candidates.
#[derive(Clone, Debug, PartialEq)]
pub enum FundLine {
    /// Money paid into the fund on a shard (the venue's deposit, `funded`, or a liquidation
    /// fee, `liquidation_fee`), or taken from it (`adl_shortfall`, negative: in the streams of
    /// earlier versions only, whose counterparties' shortfalls the fund bore).
    Paid {
        /// The asset.
        asset: String,
        /// The amount (negative for a shortfall).
        amount: Decimal,
    },
    /// A deficit claimed (`deficit_beyond_fund` with resolution `claimed`, or
    /// `remainder_claimed` for a deleveraging's remainder).
    Claim {
        /// The bankrupt account.
        account: String,
        /// The asset.
        asset: String,
        /// The deficit.
        deficit: Decimal,
        /// The bankrupt position the claim carries, to deleverage if the fund falls short.
        position: Option<ClaimedPosition>,
        /// A deleveraging's remainder, claimed by the counterparty's shard.
        remainder: bool,
    },
    /// A shard's positions in profit for a share request (see [`profit_line`]).
    Profits {
        /// The claim of the request.
        claim: ClaimId,
        /// The positions.
        holders: Vec<ProfitOffer>,
    },
    /// A shard's offer of candidates for a request (see [`offer_line`]).
    Offer {
        /// The claim of the request.
        claim: ClaimId,
        /// The candidates, ranked.
        candidates: Vec<AdlCandidate>,
    },
}

/// The bankrupt position a claim carries (the engine's
/// [`solvent_engine::effect::ClaimedPosition`], as its effect line writes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimedPosition {
    /// The instrument.
    pub instrument: String,
    /// The bankrupt account's closing trade (signed: negative closes a long).
    pub size: Decimal,
    /// The mark it was closed at.
    pub mark: Decimal,
    /// The price at which closing it leaves the account with exactly nothing.
    pub bankruptcy_price: Decimal,
    /// Whether it was an isolated position.
    pub isolated: bool,
    /// The liquidation fee of a close at the mark.
    pub fee: Decimal,
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

/// The effect types [`fund_line`] reads a meaning for the fund from.
const FUND_EFFECT_TYPES: [&str; 4] = [
    "insurance_fund_changed",
    OFFER_TYPE,
    PROFIT_OFFER_TYPE,
    "deficit_beyond_fund",
];

/// An effect line's type, read without the rest of the line.
#[derive(Deserialize)]
struct EffectType<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// The effect line's meaning for the fund, if it has one; `Ok(None)` for every other effect.
/// A line of another type is checked for JSON syntax only (its fields' values are not built).
///
/// # Errors
/// [`FundLineError`] for a line that is not a JSON object, or has no type, or a fund effect
/// missing a field.
pub fn fund_line(line: &str) -> Result<Option<FundLine>, FundLineError> {
    // The system shard reads every effect of every shard, and few concern the fund: an
    // object's type is read first (its other fields checked for syntax only, no values
    // built), and only a fund effect, or a line that reading cannot judge, is read whole.
    if line.trim_start().starts_with('{')
        && let Ok(EffectType { kind: Some(kind) }) = serde_json::from_str::<EffectType<'_>>(line)
        && !FUND_EFFECT_TYPES.contains(&kind.as_ref())
    {
        return Ok(None);
    }
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
            // A shortfall of a deleveraged counterparty (an earlier version's effect) is paid
            // with a negative amount.
            "funded" | "liquidation_fee" | "adl_shortfall" => Ok(Some(FundLine::Paid {
                asset: text("asset")?.to_owned(),
                amount: amount("change")?,
            })),
            // A cover is the answer's doing: already taken from the fund when answered.
            _ => Ok(None),
        },
        Some(OFFER_TYPE) => {
            let field = |name: &str| {
                value
                    .get(name)
                    .cloned()
                    .ok_or_else(|| bad(&format!("no {name}")))
            };
            Ok(Some(FundLine::Offer {
                claim: serde_json::from_value(field("claim")?)
                    .map_err(|error| bad(&format!("claim: {error}")))?,
                candidates: serde_json::from_value(field("candidates")?)
                    .map_err(|error| bad(&format!("candidates: {error}")))?,
            }))
        }
        Some(PROFIT_OFFER_TYPE) => {
            let field = |name: &str| {
                value
                    .get(name)
                    .cloned()
                    .ok_or_else(|| bad(&format!("no {name}")))
            };
            Ok(Some(FundLine::Profits {
                claim: serde_json::from_value(field("claim")?)
                    .map_err(|error| bad(&format!("claim: {error}")))?,
                holders: serde_json::from_value(field("holders")?)
                    .map_err(|error| bad(&format!("holders: {error}")))?,
            }))
        }
        Some("deficit_beyond_fund")
            if matches!(text("resolution")?, "claimed" | "remainder_claimed") =>
        {
            let position = value
                .get("position")
                .cloned()
                .map(serde_json::from_value::<ClaimedPosition>)
                .transpose()
                .map_err(|error| bad(&format!("position: {error}")))?;
            Ok(Some(FundLine::Claim {
                account: text("account")?.to_owned(),
                asset: text("asset")?.to_owned(),
                deficit: amount("deficit")?,
                position,
                remainder: text("resolution")? == "remainder_claimed",
            }))
        }
        Some(_) => Ok(None),
        None => Err(bad("no type")),
    }
}
