//! Auto-deleveraging across shards (issue 13 item 3; docs/scale.md, "Money across shards"):
//! each account shard offers its best candidates to take the other side of a bankrupt position,
//! ranked as the engine ranks its ADL queue (profit x leverage, highest first, ties by account
//! id); the system shard merges the offers into the cluster's ranking and assigns the
//! quantity to deleverage down it.
//!
//! Why each shard's top is enough: the accounts of the cluster's first `n` places are each
//! among the first `n` of their own shard, so merging every shard's first `n` gives the
//! cluster's first `n` exactly; and an assignment stops at the first place where the quantity
//! is met, so a shard need offer no more candidates than it takes for its own offers' sizes to
//! reach the quantity.
//!
//! The offer: each shard's engine ranks its own, as far as the quantity
//! ([`solvent_engine::Engine::adl_candidates_reaching`]), written in its effects at the system
//! shard's request ([`crate::system::offer_line`]; also asked over NATS with
//! [`crate::query::Query::AdlCandidates`], for operators); the merge and the assignment
//! ([`merge`], [`assign`]) are the system shard's ([`crate::system::Fund`]), and each shard
//! applies its accounts' shares of the answer ([`solvent_engine::Engine::apply_adl_assignment`]).

use std::cmp::Ordering;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One account a shard offers to take the other side of a bankrupt position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdlCandidate {
    /// The shard that holds the account.
    pub shard: u32,
    /// The account.
    pub account: String,
    /// Its rank key: unrealised profit x notional / equity at the mark, higher first: a ratio,
    /// not money, compared exactly as the engine's ADL queue compares it (JSON carries a
    /// finite `f64` exactly).
    pub score: f64,
    /// What it holds on the opposite side (absolute contracts), the most it can take.
    pub size: Decimal,
}

/// Shard `shard`'s offer, from its engine's ranking.
#[must_use]
pub fn offer(shard: u32, ranked: &[solvent_engine::engine::AdlCandidate]) -> Vec<AdlCandidate> {
    ranked
        .iter()
        .map(|candidate| AdlCandidate {
            shard,
            account: candidate.account.to_string(),
            score: candidate.score,
            size: candidate.size,
        })
        .collect()
}

/// A share of the quantity to deleverage, for one account of one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdlAssignment {
    /// The shard that holds the account.
    pub shard: u32,
    /// The account.
    pub account: String,
    /// The contracts it takes over at the bankruptcy price.
    pub size: Decimal,
}

/// The cluster's order of candidates: score highest first, then account id, then shard (an id
/// is on one shard, so the last only makes the order total).
fn rank(a: &AdlCandidate, b: &AdlCandidate) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.account.cmp(&b.account))
        .then_with(|| a.shard.cmp(&b.shard))
}

/// The first `limit` candidates of the cluster, from each shard's offer (each ranked best
/// first, as the engine ranks; an offer out of order is ranked here): a k-way merge, which
/// reads no further into an offer than the places it fills.
#[must_use]
pub fn merge(offers: &[Vec<AdlCandidate>], limit: usize) -> Vec<AdlCandidate> {
    let mut offers: Vec<Vec<AdlCandidate>> = offers.to_vec();
    for offer in &mut offers {
        if !offer.is_sorted_by(|a, b| rank(a, b) != Ordering::Greater) {
            offer.sort_by(rank);
        }
    }
    let mut heads = vec![0_usize; offers.len()];
    let mut merged = Vec::new();
    while merged.len() < limit {
        let best = offers
            .iter()
            .zip(&heads)
            .enumerate()
            .filter_map(|(shard, (offer, head))| offer.get(*head).map(|c| (shard, c)))
            .min_by(|a, b| rank(a.1, b.1))
            .map(|(shard, candidate)| (shard, candidate.clone()));
        let Some((shard, candidate)) = best else {
            break;
        };
        heads[shard] += 1;
        merged.push(candidate);
    }
    merged
}

/// Assigns `quantity` contracts down the merged ranking: each candidate takes what it holds,
/// or what is left; the rest, if the candidates hold too little, is returned unassigned (closed
/// at the market, as one engine does beyond the opposite interest).
#[must_use]
pub fn assign(merged: &[AdlCandidate], quantity: Decimal) -> (Vec<AdlAssignment>, Decimal) {
    let mut left = quantity.max(Decimal::ZERO);
    let mut assignments = Vec::new();
    for candidate in merged {
        if left.is_zero() {
            break;
        }
        let take = left.min(candidate.size.max(Decimal::ZERO));
        if take > Decimal::ZERO {
            left -= take;
            assignments.push(AdlAssignment {
                shard: candidate.shard,
                account: candidate.account.clone(),
                size: take,
            });
        }
    }
    (assignments, left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn candidate(shard: u32, account: &str, score: f64, size: Decimal) -> AdlCandidate {
        AdlCandidate {
            shard,
            account: account.to_owned(),
            score,
            size,
        }
    }

    /// Three shards' offers, each ranked: merged, the first five are the cluster's first five
    /// (ties by id: `b2` before `c1` at 40), and 2.5 contracts go to `a1` (1), `b1` (0.5) and
    /// `b2` (the last 1 of its 3).
    #[test]
    fn offers_merge_into_the_clusters_ranking_and_the_quantity_goes_down_it() {
        let offers = vec![
            vec![
                candidate(0, "a1", 90.0, dec!(1)),
                candidate(0, "a2", 10.0, dec!(5)),
            ],
            vec![
                candidate(1, "b1", 70.0, dec!(0.5)),
                candidate(1, "b2", 40.0, dec!(3)),
                candidate(1, "b3", 5.0, dec!(1)),
            ],
            vec![
                candidate(2, "c1", 40.0, dec!(2)),
                candidate(2, "c2", 20.0, dec!(2)),
            ],
        ];
        let merged = merge(&offers, 5);
        assert_eq!(
            merged
                .iter()
                .map(|c| c.account.as_str())
                .collect::<Vec<_>>(),
            ["a1", "b1", "b2", "c1", "c2"]
        );
        let (assigned, left) = assign(&merged, dec!(2.5));
        assert_eq!(
            assigned
                .iter()
                .map(|a| (a.shard, a.account.as_str(), a.size))
                .collect::<Vec<_>>(),
            [(0, "a1", dec!(1)), (1, "b1", dec!(0.5)), (1, "b2", dec!(1))]
        );
        assert_eq!(left, dec!(0));
        // More than the candidates hold: the rest is returned.
        let (assigned, left) = assign(&merged, dec!(20));
        assert_eq!(assigned.iter().map(|a| a.size).sum::<Decimal>(), dec!(8.5));
        assert_eq!(left, dec!(11.5));
    }

    /// Against the reference, ranking the union of every shard's whole population: for seeded
    /// populations split over four shards, merging each shard's first `n` gives the union's
    /// first `n`, and so the same assignment.
    #[test]
    fn merging_each_shards_top_equals_ranking_every_candidate() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            // xorshift64: a fixed sequence, the same on every run.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..50 {
            let mut population = Vec::new();
            for i in 0..40 {
                let shard = u32::try_from(next(4)).unwrap_or(0);
                // Few distinct scores, so ties by id are exercised.
                let score = f64::from(u32::try_from(next(12)).unwrap_or(0));
                let size = Decimal::new(i64::try_from(1 + next(300)).unwrap_or(1), 2);
                population.push(candidate(shard, &format!("acct-{i:02}"), score, size));
            }
            let n = usize::try_from(1 + next(12)).unwrap_or(1);
            let mut offers = vec![Vec::new(); 4];
            for c in &population {
                offers[c.shard as usize].push(c.clone());
            }
            for offer in &mut offers {
                offer.sort_by(rank);
                offer.truncate(n);
            }
            let mut everyone = population.clone();
            everyone.sort_by(rank);
            everyone.truncate(n);
            let merged = merge(&offers, n);
            assert_eq!(merged, everyone);
            let quantity = Decimal::new(i64::try_from(next(1000)).unwrap_or(0), 2);
            assert_eq!(assign(&merged, quantity), assign(&everyone, quantity));
        }
    }
}
