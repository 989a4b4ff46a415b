//! The whole engine as bytes, and back: what a snapshot file holds (the store adds the header,
//! the checksum and the file). A restored engine has the same state hash as the one it was taken
//! from, and answers every later event with the same effects: every field is kept exactly
//! (decimals with their scale, floats by their bits, the safe bands and holder indices as they
//! were), except two caches that the rest of the state determines and that are rebuilt on first
//! use: the shared volatility surfaces and each account's prepared cross pool.
//!
//! Layout (postcard, a compact binary serde format), read in this order:
//! 1. the format version ([`SNAPSHOT_FORMAT`]);
//! 2. the instruments held by positions, each written once (positions of the same contract share
//!    one, as they do in memory), so that a million positions do not repeat a margin rule each;
//! 3. the engine, whose positions name their instrument by its place in that table.
//!
//! The table is needed because a position keeps the instrument it was resolved to, which is not
//! always the venue's current one (an instrument listed under a name a series already produced).

use std::cell::RefCell;

use indexmap::IndexMap;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use solvent_core::instrument::Instrument;
use solvent_core::market::{Market, Smile};
use solvent_core::money::{Amount, Price};
use solvent_core::names::NameMap;
use solvent_risk::AccountState;
use solvent_risk::allocation::BufferPolicy;

use super::{Arc, Engine, state_hash};
use crate::event::{SetAutoTopUp, TopUpSource};
use crate::ledger::LedgerAccount;

/// Version of the snapshot layout; a snapshot of another version is refused, never guessed at.
/// 6: instruments carry their price tick (`tick_size`). 7: the venue carries its withdrawal rule
/// (`withdrawal`). 8: perpetuals held before their first mark are banded on it
/// (`awaiting_mark`). 9: so are inverse perpetuals (on the ratio of their index to their
/// mark, a kind of band format 8 lacks) and futures. 10: the count of ADL candidates bounded,
/// a diagnostic, is no longer written.
pub const SNAPSHOT_FORMAT: u32 = 10;

/// Why a snapshot could not be taken or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes were written by another snapshot format.
    #[error("snapshot format {found} is not this engine's format {expected}")]
    Format {
        /// The version found.
        found: u32,
        /// The version this engine reads.
        expected: u32,
    },
    /// The bytes do not decode (truncated, corrupted, or not a snapshot).
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    /// The state could not be encoded.
    #[error("snapshot could not be encoded: {0}")]
    Encode(String),
    /// The venue decoded differs from the one the engine had installed (its digest is kept in
    /// the snapshot): the encoding lost something, and the state is not taken.
    #[error("the restored venue differs from the one the snapshot was taken with")]
    VenueMismatch,
}

impl Engine {
    /// The whole engine as bytes (see the module documentation). A snapshot is only as good as
    /// the events behind it: the caller takes one of a state whose events are all durable.
    ///
    /// # Errors
    /// [`SnapshotError::Encode`] (no value the engine holds fails to encode; kept rather than
    /// a panic).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let _table = HeldTable::install(HeldTable::default());
        let engine =
            postcard::to_stdvec(self).map_err(|error| SnapshotError::Encode(error.to_string()))?;
        let held = HeldTable::take().instruments;
        let held: Vec<&Instrument> = held.iter().map(AsRef::as_ref).collect();
        let mut bytes = postcard::to_stdvec(&(SNAPSHOT_FORMAT, held))
            .map_err(|error| SnapshotError::Encode(error.to_string()))?;
        bytes.extend_from_slice(&engine);
        Ok(bytes)
    }

    /// An engine from [`Self::snapshot`]'s bytes, in the state it was taken in.
    ///
    /// # Errors
    /// [`SnapshotError`] when the bytes are of another format, do not decode, or decode to a
    /// venue other than the one recorded with it.
    pub fn restore(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let decode = |error: postcard::Error| SnapshotError::Decode(error.to_string());
        let (found, rest): (u32, &[u8]) = postcard::take_from_bytes(bytes).map_err(decode)?;
        if found != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format {
                found,
                expected: SNAPSHOT_FORMAT,
            });
        }
        let (held, rest): (Vec<Instrument>, &[u8]) =
            postcard::take_from_bytes(rest).map_err(decode)?;
        let _table = HeldTable::install(HeldTable {
            instruments: held.into_iter().map(Arc::new).collect(),
            ..HeldTable::default()
        });
        let (engine, rest): (Engine, &[u8]) = postcard::take_from_bytes(rest).map_err(decode)?;
        if !rest.is_empty() {
            return Err(SnapshotError::Decode(format!(
                "{} bytes after the engine",
                rest.len()
            )));
        }
        if state_hash::venue_digest(&engine.venue) != engine.venue_digest {
            return Err(SnapshotError::VenueMismatch);
        }
        let mut engine = engine;
        engine.build_adl_index();
        Ok(engine)
    }
}

/// The instruments held by positions while a snapshot is written or read, on this thread only
/// (serde's derived code takes no context: this is its context, set and cleared by `snapshot`
/// and `restore`).
#[derive(Default)]
struct HeldTable {
    instruments: Vec<Arc<Instrument>>,
    /// Places in `instruments` by name (a name may have had two definitions).
    by_name: std::collections::HashMap<String, Vec<u32>>,
}

thread_local! {
    static HELD: RefCell<Option<HeldTable>> = const { RefCell::new(None) };
}

/// Clears the table when a snapshot ends, however it ends.
struct TableGuard;

impl Drop for TableGuard {
    fn drop(&mut self) {
        HELD.with(|held| held.borrow_mut().take());
    }
}

impl HeldTable {
    fn install(table: HeldTable) -> TableGuard {
        HELD.with(|held| *held.borrow_mut() = Some(table));
        TableGuard
    }

    fn take() -> HeldTable {
        HELD.with(|held| held.borrow_mut().take())
            .unwrap_or_default()
    }

    /// The place of `instrument`, added if new (equal instruments share one place).
    fn place(&mut self, instrument: &Arc<Instrument>) -> Result<u32, String> {
        let places = self.by_name.entry(instrument.name.clone()).or_default();
        for &place in places.iter() {
            let Some(known) = self.instruments.get(place as usize) else {
                continue;
            };
            if Arc::ptr_eq(known, instrument) || **known == **instrument {
                return Ok(place);
            }
        }
        let place = u32::try_from(self.instruments.len())
            .map_err(|_| "more than 2^32 distinct held instruments".to_owned())?;
        self.instruments.push(Arc::clone(instrument));
        places.push(place);
        Ok(place)
    }
}

/// A position's instrument, by its place in the held table.
pub(crate) mod held_instrument {
    use super::{Arc, Deserialize, Deserializer, HELD, Instrument, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        instrument: &Arc<Instrument>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let place = HELD.with(|held| match held.borrow_mut().as_mut() {
            Some(table) => table.place(instrument),
            None => Err("a held instrument is written only through Engine::snapshot".to_owned()),
        });
        place
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Arc<Instrument>, D::Error> {
        let place = u32::deserialize(deserializer)?;
        HELD.with(|held| {
            held.borrow()
                .as_ref()
                .and_then(|table| table.instruments.get(place as usize).cloned())
        })
        .ok_or_else(|| serde::de::Error::custom(format!("no held instrument at place {place}")))
    }
}

/// The market, field by field (its own `Deserialize` reads `MARKET.json`).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Market")]
pub(crate) struct MarketDef {
    timestamp: Timestamp,
    index: NameMap<Price>,
    mark: NameMap<Price>,
    vol: NameMap<IndexMap<String, Smile>>,
    rate: f64,
    open_interest: NameMap<Amount>,
}

/// An account's state.
#[derive(Serialize, Deserialize)]
#[serde(remote = "AccountState")]
pub(crate) enum AccountStateDef {
    Healthy,
    MarginCall,
    ReduceOnly,
    Liquidating,
    Bankrupt,
}

/// A buffer policy (its own `Serialize` is the report's tagged form).
#[derive(Serialize, Deserialize)]
#[serde(remote = "BufferPolicy")]
pub(crate) enum BufferPolicyDef {
    None,
    MaintenanceMultiple { multiple: f64 },
    Sigma { sigmas: f64, horizon_days: f64 },
}

/// A top-up rule as set (its own serde is the event's, which normalises decimals).
#[derive(Serialize, Deserialize)]
#[serde(remote = "SetAutoTopUp")]
pub(crate) struct SetAutoTopUpDef {
    account: String,
    instrument: Option<String>,
    source: TopUpSource,
    trigger_health: Decimal,
    target_health: Decimal,
    per_event_cap: Amount,
    per_day_cap: Amount,
}

/// A ledger account (its own `Serialize` is the display name, which is not unambiguous).
#[derive(Serialize, Deserialize)]
#[serde(remote = "LedgerAccount")]
enum LedgerAccountDef {
    Wallet(compact_str::CompactString),
    Isolated(compact_str::CompactString, compact_str::CompactString),
    InsuranceFund,
    Fees,
    External,
    Clearing,
    PendingClaims,
}

/// The ledger's map keyed by [`LedgerAccount`], as a sequence of pairs.
pub(crate) mod ledger_accounts {
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    use super::{
        Deserialize, Deserializer, LedgerAccount, LedgerAccountDef, Serialize, Serializer,
    };

    struct Key<'a>(&'a LedgerAccount);

    impl Serialize for Key<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            LedgerAccountDef::serialize(self.0, serializer)
        }
    }

    #[derive(Deserialize)]
    struct OwnedKey(#[serde(with = "LedgerAccountDef")] LedgerAccount);

    /// Written in key order, whatever order the map holds them in (as `sorted_map`).
    pub(crate) fn serialize<V: Serialize, H, S: Serializer>(
        map: &HashMap<LedgerAccount, V, H>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            super::sorted_entries(map)
                .into_iter()
                .map(|(key, value)| (Key(key), value)),
        )
    }

    pub(crate) fn deserialize<
        'de,
        V: Deserialize<'de>,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    >(
        deserializer: D,
    ) -> Result<HashMap<LedgerAccount, V, H>, D::Error> {
        let pairs: Vec<(OwnedKey, V)> = Vec::deserialize(deserializer)?;
        let mut map = HashMap::with_capacity_and_hasher(pairs.len(), H::default());
        map.extend(pairs.into_iter().map(|(key, value)| (key.0, value)));
        Ok(map)
    }
}

/// A hashed map's entries in key order: how every listing, snapshot and hash of one is made,
/// whatever order it was filled in.
pub(crate) fn sorted_entries<K: Ord, V, H>(
    map: &std::collections::HashMap<K, V, H>,
) -> Vec<(&K, &V)> {
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

/// A hashed map written in key order: its own order depends on the order of insertion, and the
/// same state must give the same bytes however it was reached.
pub(crate) mod sorted_map {
    use std::collections::HashMap;
    use std::hash::{BuildHasher, Hash};

    use super::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<K, V, H, S>(
        map: &HashMap<K, V, H>,
        serializer: S,
    ) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord,
        V: Serialize,
        S: Serializer,
    {
        serializer.collect_seq(super::sorted_entries(map))
    }

    pub(crate) fn deserialize<'de, K, V, H, D>(
        deserializer: D,
    ) -> Result<HashMap<K, V, H>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        let mut map = HashMap::with_capacity_and_hasher(pairs.len(), H::default());
        map.extend(pairs);
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effect::Effect;
    use crate::engine::tests::{apply_at, default_engine};

    /// The unit test's short workload: prices, deposits, fills in both directions, an isolated
    /// position, a top-up rule, a buffer policy, a liquidation-prone account.
    const EVENTS: &[&str] = &[
        r#""type":"index_price","underlying":"BTC","price":"60000.00""#,
        r#""type":"index_price","underlying":"ETH","price":"3000""#,
        r#""type":"deposit","account":"a","asset":"USDT","amount":"10000.50""#,
        r#""type":"deposit","account":"b","asset":"USDT","amount":"2000""#,
        r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","fee":"6","counterparty":"external""#,
        r#""type":"fill","account":"b","instrument":"ETHUSDT","side":"sell","size":"5","price":"3000","counterparty":"a""#,
        r#""type":"set_buffer_policy","account":"a","policy":"mm:1.5""#,
        r#""type":"set_auto_top_up","account":"b","source":"external","trigger_health":"1.30","target_health":"2","per_event_cap":"500","per_day_cap":"1000""#,
        r#""type":"set_isolated_margin","account":"a","instrument":"BTCUSDT","amount":"3000""#,
        r#""type":"index_price","underlying":"ETH","price":"3200""#,
        r#""type":"index_price","underlying":"BTC","price":"58000""#,
        r#""type":"index_price","underlying":"ETH","price":"3350""#,
        r#""type":"withdraw","account":"a","asset":"USDT","amount":"100""#,
        r#""type":"index_price","underlying":"ETH","price":"3500""#,
        r#""type":"index_price","underlying":"BTC","price":"56000""#,
        r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"sell","size":"0.5","price":"56000","counterparty":"external""#,
    ];

    #[test]
    fn a_restored_engine_hashes_and_answers_alike_at_every_point() {
        for cut in 0..=EVENTS.len() {
            let mut original = default_engine();
            for (index, fields) in EVENTS.iter().take(cut).enumerate() {
                apply_at(&mut original, index + 1, fields);
            }
            let bytes = match original.snapshot() {
                Ok(bytes) => bytes,
                Err(error) => panic!("cut {cut}: {error}"),
            };
            let mut restored = match Engine::restore(&bytes) {
                Ok(engine) => engine,
                Err(error) => panic!("cut {cut}: {error}"),
            };
            assert_eq!(restored.state_hash(), original.state_hash(), "cut {cut}");
            // Taken again, the restored engine writes the same bytes.
            assert_eq!(restored.snapshot().ok(), Some(bytes), "cut {cut}");
            for (index, fields) in EVENTS.iter().enumerate().skip(cut) {
                let first: Vec<Effect> = apply_at(&mut original, index + 1, fields);
                let second = apply_at(&mut restored, index + 1, fields);
                assert_eq!(first, second, "cut {cut}, event {}", index + 1);
            }
            assert_eq!(restored.state_hash(), original.state_hash(), "cut {cut}");
        }
    }

    /// An instrument's price tick (`tick_size`, OKX BTC-USDT-SWAP 0.1) is part of the
    /// snapshot: the restored engine's report puts the liquidation price on the same tick.
    #[test]
    fn a_restored_engine_keeps_the_instruments_price_tick() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/okx-swap.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let Ok(venue) = solvent_core::venue::Venue::from_toml(path, &text) else {
            panic!("the OKX venue must load");
        };
        let mut original = Engine::new(venue, crate::config::EngineConfig::default());
        for (index, fields) in [
            r#""type":"index_price","underlying":"BTC","price":"100000""#,
            r#""type":"deposit","account":"a","asset":"USDT","amount":"20000""#,
            r#""type":"fill","account":"a","instrument":"BTC-USDT-SWAP","side":"buy","size":"100","price":"100000","counterparty":"external""#,
        ]
        .iter()
        .enumerate()
        {
            let effects = apply_at(&mut original, index + 1, fields);
            assert!(
                !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
                "{effects:?}"
            );
        }
        let Ok(bytes) = original.snapshot() else {
            panic!("the snapshot encodes");
        };
        let Ok(restored) = Engine::restore(&bytes) else {
            panic!("the snapshot restores");
        };
        assert_eq!(restored.state_hash(), original.state_hash());
        // The full report of the account's portfolio (the engine's own monitoring reports leave
        // liquidation prices out).
        let liquidation = |engine: &Engine| {
            let portfolio = engine.portfolio("a")?;
            let view = solvent_risk::MarketView::new(engine.venue(), engine.market()).ok()?;
            let report = solvent_risk::margin_report(&portfolio, &view).ok()?;
            report
                .positions
                .first()?
                .liquidation_price
                .map(|price| price.value())
        };
        let before = liquidation(&original);
        assert!(
            before.is_some_and(|price| (price * rust_decimal::Decimal::TEN).fract().is_zero()),
            "{before:?}"
        );
        assert_eq!(liquidation(&restored), before);
    }

    #[test]
    fn damaged_or_foreign_bytes_are_refused() {
        let mut engine = default_engine();
        for (index, fields) in EVENTS.iter().enumerate() {
            apply_at(&mut engine, index + 1, fields);
        }
        let Ok(bytes) = engine.snapshot() else {
            panic!("the snapshot encodes");
        };
        let cut = bytes.get(..bytes.len() / 2).unwrap_or_default();
        assert!(matches!(
            Engine::restore(cut),
            Err(SnapshotError::Decode(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Engine::restore(&longer),
            Err(SnapshotError::Decode(_))
        ));
        // The previous format (8: inverse holders banded without their ratio) is refused.
        let mut other = bytes;
        if let Some(version) = other.first_mut() {
            *version = 8;
        }
        assert!(matches!(
            Engine::restore(&other),
            Err(SnapshotError::Format { found: 8, .. })
        ));
        assert!(Engine::restore(&[]).is_err());
    }
}
