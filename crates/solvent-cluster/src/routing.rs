//! Which shard an event goes to (DESIGN.md 10, "Scale-out"): an account's events to its shard's
//! subject, chosen by a stable hash of the account id; market-wide events (prices, smiles,
//! funding, settlement, listings, venue updates) to the subject every shard reads.

use solvent_engine::event::Event;
use solvent_engine::ledger::{EXTERNAL, INSURANCE_FUND};

/// The JetStream stream every input goes through.
pub const INPUT_STREAM: &str = "SOLVENT";
/// The subject every shard reads besides its own: market-wide events.
pub const MARKET_SUBJECT: &str = "solvent.market";
/// The subject of the system shard's answers to deficit claims, which every account shard
/// reads besides its own and the market's (see [`crate::system`]).
pub const FUND_SUBJECT: &str = "solvent.fund";
/// The subject only the system shard reads: the venue's deposits to the insurance fund.
pub const SYSTEM_SUBJECT: &str = "solvent.system";
/// The prefix of each shard's subject: `solvent.shard.<K>`.
pub const SHARD_SUBJECT_PREFIX: &str = "solvent.shard.";
/// The JetStream stream the shards write their effects to.
pub const EFFECT_STREAM: &str = "SOLVENT_EFFECTS";
/// The prefix of each shard's effect subject: `solvent.effects.<K>`.
pub const EFFECT_SUBJECT_PREFIX: &str = "solvent.effects.";
/// The prefix of each shard's progress subject in the effect stream: `solvent.progress.<K>`,
/// where a shard records that every effect of its input up to a stream sequence is stored (the
/// system shard's watermark).
pub const PROGRESS_SUBJECT_PREFIX: &str = "solvent.progress.";
/// The stream metadata key that records the number of shards the stream was routed for: a
/// shard started with another count refuses to read it (its accounts would be elsewhere).
pub const SHARDS_METADATA_KEY: &str = "solvent_shards";

/// Most shards a cluster may have (the count is carried in subjects and metadata).
pub const MAX_SHARDS: u32 = 1024;

/// The subject of shard `shard`'s account events.
#[must_use]
pub fn shard_subject(shard: u32) -> String {
    format!("{SHARD_SUBJECT_PREFIX}{shard}")
}

/// The subject shard `shard` writes its effects to.
#[must_use]
pub fn effect_subject(shard: u32) -> String {
    format!("{EFFECT_SUBJECT_PREFIX}{shard}")
}

/// The subject shard `shard` writes its progress to.
#[must_use]
pub fn progress_subject(shard: u32) -> String {
    format!("{PROGRESS_SUBJECT_PREFIX}{shard}")
}

/// The shard that holds `account` among `shards`: the first eight bytes of the account id's
/// BLAKE3 digest, little-endian, modulo the count. Stable across processes, platforms and
/// releases (a cryptographic digest of the id's bytes, not a seeded in-memory hash), and spread
/// evenly whatever the ids look like (`a1`, `a2`, ... land anywhere). `shards` of 0 is taken
/// as 1.
#[must_use]
pub fn shard_of(account: &str, shards: u32) -> u32 {
    let digest = blake3::hash(account.as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    let shards = u64::from(shards.max(1));
    // The remainder is below `shards`, itself a `u32`.
    u32::try_from(u64::from_le_bytes(first) % shards).unwrap_or(0)
}

/// Where one event goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To one shard's subject: the event concerns accounts of that shard only.
    Shard(u32),
    /// To the market subject, which every shard reads.
    Market,
    /// To the system shard's subject: a deposit to the insurance fund, which the system shard
    /// holds.
    System,
}

/// An event that no single subject can carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The event moves money or a position between accounts held by different shards: it
    /// needs a two-phase exchange between the shards, which the cluster does not run yet.
    #[error(
        "{field}: {first:?} is held by shard {first_shard} and {second:?} by shard {second_shard}; money and positions cannot move between shards yet (route both accounts to one shard, or apply the event through one process)"
    )]
    CrossShard {
        /// The field naming the second account (`to`, `counterparty`).
        field: &'static str,
        /// The first account.
        first: String,
        /// Its shard.
        first_shard: u32,
        /// The second account.
        second: String,
        /// Its shard.
        second_shard: u32,
    },
}

/// Where `event` goes in a cluster of `shards`.
///
/// # Errors
/// [`RouteError::CrossShard`] for a transfer, or a fill against another account, between
/// accounts of different shards.
pub fn route(event: &Event, shards: u32) -> Result<Route, RouteError> {
    let between = |field: &'static str, first: &str, second: &str| {
        let (first_shard, second_shard) = (shard_of(first, shards), shard_of(second, shards));
        if first_shard == second_shard {
            Ok(Route::Shard(first_shard))
        } else {
            Err(RouteError::CrossShard {
                field,
                first: first.to_owned(),
                first_shard,
                second: second.to_owned(),
                second_shard,
            })
        }
    };
    let one = |account: &str| Ok(Route::Shard(shard_of(account, shards)));
    match event {
        Event::Deposit(e) if e.account == INSURANCE_FUND => Ok(Route::System),
        Event::Deposit(e) => one(&e.account),
        Event::Withdraw(e) => one(&e.account),
        Event::Transfer(e) => between("to", &e.from, &e.to),
        Event::Fill(e) if e.counterparty == EXTERNAL => one(&e.account),
        Event::Fill(e) => between("counterparty", &e.account, &e.counterparty),
        Event::SetLeverage(e) => one(&e.account),
        Event::SetMarginMode(e) => one(&e.account),
        Event::SetIsolatedMargin(e) => one(&e.account),
        Event::SetBufferPolicy(e) => one(&e.account),
        Event::SetAutoTopUp(e) => one(&e.account),
        Event::IndexPrice(_)
        | Event::MarkPrice(_)
        | Event::VolSurface(_)
        | Event::Funding(_)
        | Event::Settlement(_)
        | Event::ListInstrument(_)
        | Event::UpdateVenue(_)
        | Event::ScenarioRange(_) => Ok(Route::Market),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fixed_and_spreads_accounts_evenly() {
        // Pinned: a change of hash would send every account to another shard.
        assert_eq!(
            (0..8)
                .map(|i| shard_of(&format!("a{i}"), 4))
                .collect::<Vec<_>>(),
            [0, 1, 2, 1, 2, 3, 2, 2]
        );
        assert_eq!(shard_of("acct-0001", 1000), 427);
        assert_eq!(shard_of("desk-7", 1000), 127);
        let digest = blake3::hash(b"a1");
        let expected = u64::from_le_bytes(digest.as_bytes()[..8].try_into().unwrap_or([0; 8]));
        assert_eq!(u64::from(shard_of("a1", 7)), expected % 7);
        let mut counts = [0_u32; 4];
        for i in 0..40_000 {
            counts[shard_of(&format!("acct-{i}"), 4) as usize] += 1;
        }
        // 10,000 expected each; a binomial standard deviation is about 87.
        assert!(
            counts.iter().all(|c| (9_600..=10_400).contains(c)),
            "{counts:?}"
        );
        assert!((0..100).all(|i| shard_of(&format!("x{i}"), 1) == 0));
        assert_eq!(shard_of("a1", 0), 0);
    }
}
