//! The insurance fund as the system shard keeps it: a pure state machine, from the effect
//! messages in input order to the answers and requests to publish.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The insurance fund as the system shard keeps it: a pure state machine over the venue's
/// deposits to the fund (input stream, [`SYSTEM_SUBJECT`]) and the account shards' effect
/// messages (in input order, see [`ready`]), with the auto-deleveraging requests it awaits
/// offers for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fund {
    /// What the fund holds, by asset: everything paid in less everything covered.
    balances: BTreeMap<String, Decimal>,
    /// Deposits read and not yet counted, by input stream sequence: each is counted before
    /// the first claim of a later input, so a claim sees exactly the deposits before it in
    /// the input stream.
    deposits: BTreeMap<u64, Vec<(String, Decimal)>>,
    /// The last input sequence applied of each shard's effect messages. The fund applies them
    /// in input order, each shard's only once all of its effects up to the watermark are
    /// stored, so a shard's effect messages are applied in increasing input order: one at or
    /// below its shard's mark was applied before (read twice, or stored twice beyond
    /// JetStream's duplicate window) and pays nothing in and claims nothing twice. A mark per
    /// shard keeps the state (and the snapshot) as small as the number of shards.
    applied_through: BTreeMap<u32, u64>,
    /// The venue's terms the answers need: each asset's precision, each linear contract's size.
    terms: FundTerms,
    /// Requests for candidates published, by their input stream sequence: each is answered
    /// once the effect messages of its input are applied (every shard's offer).
    awaiting: BTreeMap<u64, Request>,
    /// The offers read, by claim (its [`ClaimId::message_id`]).
    offers: BTreeMap<String, Vec<Vec<AdlCandidate>>>,
    /// The positions in profit offered, by claim (its [`ClaimId::message_id`]).
    #[serde(default)]
    profits: BTreeMap<String, Vec<ProfitOffer>>,
}

/// What the fund needs of the venue to answer a claim by auto-deleveraging.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundTerms {
    /// Each asset's precision (decimal places); 8 for one not listed.
    pub precisions: BTreeMap<String, u32>,
    /// Each linear contract's size (a bankruptcy price is reported for these).
    pub linear_contract_sizes: BTreeMap<String, Decimal>,
    /// Whether the venue shares a deficit beyond the fund among the accounts in profit
    /// (`deficits = "socialise"`) rather than deleveraging.
    #[serde(default)]
    pub socialise: bool,
}

impl FundTerms {
    /// The terms of `venue`.
    #[must_use]
    pub fn of(venue: &solvent_core::venue::Venue) -> Self {
        Self {
            precisions: venue
                .assets
                .iter()
                .map(|(symbol, asset)| (symbol.clone(), asset.precision))
                .collect(),
            linear_contract_sizes: venue
                .listed_instruments()
                .filter(|i| i.style == solvent_core::instrument::Style::Linear)
                .map(|i| (i.name.clone(), i.contract_size))
                .collect(),
            socialise: venue.deficits == solvent_core::venue::DeficitPolicy::Socialise,
        }
    }
}

/// One claim read from an effect message, as [`Fund::apply`] hands it on.
struct Claimed<'a> {
    claim: ClaimId,
    account: &'a str,
    asset: &'a str,
    deficit: Decimal,
    position: Option<&'a ClaimedPosition>,
    remainder: bool,
}

/// What applying an effect message asks the system shard to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FundOutput {
    /// An answer to a claim.
    Answer(ClaimAnswer),
    /// A request for candidates or positions in profit: published, then given to
    /// [`Fund::await_offers`] with its stream sequence.
    Request(Request),
}

impl Fund {
    /// The fund's state hash: BLAKE3 of its JSON (maps ordered), hex.
    ///
    /// # Errors
    /// [`ClusterError::Config`] when it cannot be encoded.
    pub fn state_hash(&self) -> Result<String, ClusterError> {
        let text = serde_json::to_vec(self)
            .map_err(|error| ClusterError::Config(format!("encoding the fund: {error}")))?;
        Ok(blake3::hash(&text).to_hex().to_string())
    }

    /// Answers from now on with `terms` (the venue's, after a recovery).
    pub fn set_terms(&mut self, terms: FundTerms) {
        self.terms = terms;
    }

    /// A fund with nothing in it, answering with `terms`.
    #[must_use]
    pub fn new(terms: FundTerms) -> Self {
        Self {
            terms,
            ..Self::default()
        }
    }

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

    /// Makes the fund what it is had the request it computed (`request`) been `published`
    /// (by an earlier run, or another holder): a share request takes what the fund held from
    /// it, so the difference of the two takings goes back; a request for candidates takes
    /// nothing.
    pub fn asked_as(&mut self, request: &Request, published: &Request) {
        if let (Request::Share(computed), Request::Share(published)) = (request, published) {
            let difference = computed.covered - published.covered;
            if !difference.is_zero() {
                *self.balances.entry(computed.asset.clone()).or_default() += difference;
            }
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

    /// The request published at input stream sequence `stream_seq`: answered once the effect
    /// messages of that input are applied (before any of later input, or by
    /// [`Self::resolve_through`]). A request already awaited is not awaited twice.
    pub fn await_offers(&mut self, stream_seq: u64, request: Request) {
        if !self.awaiting.values().any(|r| r.claim() == request.claim()) {
            self.awaiting.insert(stream_seq, request);
        }
    }

    /// The requests the fund awaits offers for, by their stream sequence.
    #[must_use]
    pub fn awaiting(&self) -> &BTreeMap<u64, Request> {
        &self.awaiting
    }

    /// Answers every request published at or below `input_seq` (every shard's offer for it
    /// having been applied), in stream order.
    #[must_use]
    pub fn resolve_through(&mut self, input_seq: u64) -> Vec<ClaimAnswer> {
        let later = self.awaiting.split_off(&(input_seq.saturating_add(1)));
        let due = std::mem::replace(&mut self.awaiting, later);
        due.into_iter()
            .map(|(at, request)| match request {
                Request::Adl(request) => self.resolve(at, &request),
                Request::Share(request) => self.resolve_share(at, &request),
            })
            .collect()
    }

    /// Answers a share request, published at `at`: the positions every shard offered share
    /// what the fund did not cover, by one engine's rule ([`solvent_engine::engine::share_deficit`]),
    /// in a fixed order (account, then instrument); the rest is the account's debt.
    fn resolve_share(&mut self, at: u64, request: &ShareRequest) -> ClaimAnswer {
        self.count_deposits_before(at);
        let mut holders = self
            .profits
            .remove(&Request::Share(request.clone()).claim().message_id())
            .unwrap_or_default();
        holders.sort_by(|a, b| {
            a.account
                .cmp(&b.account)
                .then_with(|| a.instrument.cmp(&b.instrument))
        });
        let precision = self
            .terms
            .precisions
            .get(&request.asset)
            .copied()
            .unwrap_or(8);
        let profits: Vec<(&str, Decimal)> = holders
            .iter()
            .map(|holder| (holder.account.as_str(), holder.profit))
            .collect();
        let rest = request.claimed - request.covered;
        let shares = solvent_engine::engine::share_deficit(&profits, rest, precision);
        let socialised = holders
            .iter()
            .zip(shares)
            .filter(|(_, paid)| *paid > Decimal::ZERO)
            .map(|(holder, paid)| SocialShare {
                shard: holder.shard,
                account: holder.account.clone(),
                instrument: holder.instrument.clone(),
                isolated: holder.isolated,
                paid,
            })
            .collect();
        ClaimAnswer {
            claim: request.share.clone(),
            account: request.account.clone(),
            asset: request.asset.clone(),
            claimed: request.claimed,
            covered: request.covered,
            fund_before: request.fund_before,
            adl: Vec::new(),
            socialised,
            returned: false,
            fee: Decimal::ZERO,
            remainder: false,
        }
    }

    /// Answers `request`, published at `at`: the offers merged into the cluster's ranking and
    /// the quantity assigned down it (each share paying the deficit pro rata to its
    /// contracts, rounded down), then the fund covers what is left as far as it holds the
    /// asset; the rest is the account's debt.
    fn resolve(&mut self, at: u64, request: &AdlRequest) -> ClaimAnswer {
        self.count_deposits_before(at);
        let offers = self
            .offers
            .remove(&request.request.message_id())
            .unwrap_or_default();
        let total = offers.iter().map(Vec::len).sum();
        let merged = crate::adl::merge(&offers, total);
        let (assigned, _unassigned) = crate::adl::assign(&merged, request.quantity);
        let precision = self
            .terms
            .precisions
            .get(&request.asset)
            .copied()
            .unwrap_or(8);
        let per_contract = self
            .terms
            .linear_contract_sizes
            .get(&request.instrument)
            .filter(|size| !size.is_zero())
            .map(|size| request.claimed / (request.quantity * *size));
        let direction = match request.side {
            // A bankrupt long closes above the mark (its counterparties, short, buy higher).
            BankruptSide::Long => Decimal::ONE,
            BankruptSide::Short => Decimal::NEGATIVE_ONE,
        };
        let adl: Vec<AdlShare> = if request.quantity > Decimal::ZERO {
            assigned
                .into_iter()
                .map(|assignment| AdlShare {
                    shard: assignment.shard,
                    account: assignment.account,
                    instrument: request.instrument.clone(),
                    size: assignment.size,
                    mark: request.mark,
                    price: if request.price.is_zero() {
                        per_contract.map_or(request.mark, |d| request.mark + direction * d)
                    } else {
                        request.price
                    },
                    paid: (request.claimed * assignment.size / request.quantity)
                        .round_dp_with_strategy(precision, rust_decimal::RoundingStrategy::ToZero),
                })
                .collect()
        } else {
            Vec::new()
        };
        let paid: Decimal = adl.iter().map(|share| share.paid).sum();
        let held = self.balances.entry(request.asset.clone()).or_default();
        let fund_before = *held;
        // What is not deleveraged of an isolated position's claim goes back to the account
        // (one engine closes that part at the mark into the wallet); of any other, the fund
        // covers it as far as it holds.
        let covered = if request.isolated {
            Decimal::ZERO
        } else {
            (request.claimed - paid)
                .max(Decimal::ZERO)
                .min(fund_before.max(Decimal::ZERO))
        };
        *held -= covered;
        ClaimAnswer {
            claim: request.request.clone(),
            account: request.account.clone(),
            asset: request.asset.clone(),
            claimed: request.claimed,
            covered,
            fund_before,
            fee: if request.isolated && adl.is_empty() {
                request.fee
            } else {
                Decimal::ZERO
            },
            adl,
            socialised: Vec::new(),
            returned: request.isolated,
            remainder: request.remainder,
        }
    }

    /// What a claim asks for, by one engine's rules in one engine's order:
    /// - under `deficits = "socialise"`, beyond the fund: the fund pays what it holds and the
    ///   positions in profit are asked for (a share request);
    /// - beyond the fund, with a bankrupt position: candidates to deleverage it are asked for
    ///   (the fund pays nothing yet: one engine deleverages before it draws on the fund);
    /// - an isolated position's claim the fund could cover goes back to the account (one
    ///   engine's wallet bears it), the fund paying none of it;
    /// - otherwise the fund covers it as far as it holds the asset, never below zero.
    fn answer_or_ask(&mut self, claimed: &Claimed<'_>) -> FundOutput {
        let deficit = claimed.deficit;
        let held = self.balances.entry(claimed.asset.to_owned()).or_default();
        let fund_before = *held;
        if fund_before < deficit && self.terms.socialise {
            let covered = fund_before.max(Decimal::ZERO);
            *held -= covered;
            return FundOutput::Request(Request::Share(ShareRequest {
                share: claimed.claim.clone(),
                account: claimed.account.to_owned(),
                asset: claimed.asset.to_owned(),
                claimed: deficit,
                covered,
                fund_before,
            }));
        }
        let position = claimed
            .position
            .filter(|position| !position.size.is_zero() && !self.terms.socialise);
        if fund_before < deficit
            && let Some(position) = position
        {
            return FundOutput::Request(Request::Adl(AdlRequest {
                request: claimed.claim.clone(),
                account: claimed.account.to_owned(),
                asset: claimed.asset.to_owned(),
                claimed: deficit,
                instrument: position.instrument.clone(),
                // The account's trade closed it: a sale closed a long.
                side: if position.size.is_sign_negative() {
                    BankruptSide::Long
                } else {
                    BankruptSide::Short
                },
                quantity: position.size.abs(),
                mark: position.mark,
                price: position.bankruptcy_price,
                isolated: position.isolated,
                fee: position.fee,
                remainder: claimed.remainder,
            }));
        }
        let returned = position.is_some_and(|position| position.isolated);
        let covered = if returned {
            Decimal::ZERO
        } else {
            deficit.min(fund_before.max(Decimal::ZERO))
        };
        *held -= covered;
        FundOutput::Answer(ClaimAnswer {
            claim: claimed.claim.clone(),
            account: claimed.account.to_owned(),
            asset: claimed.asset.to_owned(),
            claimed: deficit,
            covered,
            fund_before,
            adl: Vec::new(),
            socialised: Vec::new(),
            returned,
            fee: if returned {
                position.map_or(Decimal::ZERO, |position| position.fee)
            } else {
                Decimal::ZERO
            },
            remainder: claimed.remainder,
        })
    }

    /// Applies one effect message of shard `shard` for input `input_seq`: first the requests
    /// published before that input are answered (their offers are all in); then the deposits
    /// of earlier input and what was paid in add to the fund; each claim is answered, or
    /// candidates or positions in profit asked for, by one engine's rules (see
    /// `answer_or_ask`; the fund never goes below zero). Offers are kept for their
    /// request. Returns what to publish, in order; nothing
    /// for a message applied before.
    #[must_use]
    pub fn apply(&mut self, shard: u32, input_seq: u64, lines: &[FundLine]) -> Vec<FundOutput> {
        if self
            .applied_through
            .get(&shard)
            .is_some_and(|through| input_seq <= *through)
        {
            return Vec::new();
        }
        self.applied_through.insert(shard, input_seq);
        let mut outputs: Vec<FundOutput> = self
            .resolve_through(input_seq.saturating_sub(1))
            .into_iter()
            .map(FundOutput::Answer)
            .collect();
        self.count_deposits_before(input_seq);
        let mut index = 0_u32;
        for line in lines {
            match line {
                FundLine::Paid { asset, amount } => {
                    *self.balances.entry(asset.clone()).or_default() += *amount;
                }
                FundLine::Profits { claim, holders } => {
                    self.profits
                        .entry(claim.message_id())
                        .or_default()
                        .extend(holders.iter().cloned());
                }
                FundLine::Offer { claim, candidates } => {
                    self.offers
                        .entry(claim.message_id())
                        .or_default()
                        .push(candidates.clone());
                }
                FundLine::Claim {
                    account,
                    asset,
                    deficit,
                    position,
                    remainder,
                } => {
                    let claim = ClaimId {
                        shard,
                        input_seq,
                        index,
                    };
                    index += 1;
                    if *deficit > Decimal::ZERO {
                        let claimed = Claimed {
                            claim,
                            account,
                            asset,
                            deficit: *deficit,
                            position: position.as_ref(),
                            remainder: *remainder,
                        };
                        outputs.push(self.answer_or_ask(&claimed));
                    }
                }
            }
        }
        outputs
    }
}
