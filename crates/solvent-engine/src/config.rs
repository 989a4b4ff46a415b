//! The engine's parameters: liquidation and price guards (DESIGN.md 8.2-8.3). Each guard is a
//! parameter with a test in `tests/guards.rs`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// How liquidation proceeds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiquidationParams {
    /// Fee on the notional closed, paid to the insurance fund (as far as the account's equity goes).
    pub fee_rate: Decimal,
    /// At most this fraction of a large position is closed per step (Hyperliquid 20%, dYdX 10%).
    pub max_step_fraction: Decimal,
    /// Positions whose notional (USD) is at most this are closed whole.
    pub full_close_notional_usd: Decimal,
    /// Steps per event at most (a bound on every loop).
    pub max_steps: usize,
}

impl Default for LiquidationParams {
    fn default() -> Self {
        Self {
            fee_rate: Decimal::new(5, 3),
            max_step_fraction: Decimal::new(2, 1),
            full_close_notional_usd: Decimal::from(10_000),
            max_steps: 64,
        }
    }
}

/// Guards against bad prices (DESIGN.md 8.3).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GuardParams {
    /// Index sources further than this fraction from the median are dropped (Deribit 2019: one
    /// bad source must not move the index).
    pub index_outlier: Decimal,
    /// Index sources older than this are dropped; an index whose every source is older is stale,
    /// and a stale index freezes liquidation (not computation).
    pub index_stale_ms: i64,
    /// A mark is clamped to this fraction around its index.
    pub mark_band: Decimal,
    /// A move above this fraction needs confirmation by the next update before it is used.
    pub jump_confirm: Decimal,
    /// Liquidation starts only after the breach persists for this many evaluations...
    pub liquidation_persist_updates: u32,
    /// ...and for this long.
    pub liquidation_persist_ms: i64,
    /// Open-interest caps per instrument (size), as dYdX should have had for YFI in 2023.
    pub max_open_interest: BTreeMap<String, Decimal>,
}

impl Default for GuardParams {
    fn default() -> Self {
        Self {
            index_outlier: Decimal::new(5, 2),
            index_stale_ms: 60_000,
            mark_band: Decimal::new(5, 2),
            jump_confirm: Decimal::new(2, 1),
            liquidation_persist_updates: 1,
            liquidation_persist_ms: 0,
            max_open_interest: BTreeMap::new(),
        }
    }
}

/// Everything the engine is configured with besides the venue.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EngineConfig {
    /// Liquidation.
    pub liquidation: LiquidationParams,
    /// Price guards.
    pub guards: GuardParams,
    /// Re-examine every holder at every index update instead of only those taken out of their
    /// safe band: the reference the band index is tested against (slow by design).
    pub exhaustive_monitoring: bool,
    /// Who decides what the insurance fund pays: this engine, or a cluster's system shard to
    /// which a bankrupt account's deficit is claimed (docs/scale.md, "Money across shards").
    #[serde(default)]
    pub fund: FundAuthority,
}

/// Who decides what the insurance fund pays for a bankrupt account's deficit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundAuthority {
    /// This engine holds the whole fund: it pays a deficit as far as the fund holds it and
    /// deleverages or socialises the rest at once (one process).
    #[default]
    Local,
    /// An account shard of a cluster: the fund is the system shard's. A deficit is advanced to
    /// the account from the `pending_claims` ledger account and claimed (a
    /// `deficit_beyond_fund` effect with resolution `claimed`); the system shard's answer,
    /// applied by [`crate::Engine::apply_claim_answer`], settles it. The engine neither
    /// deleverages nor socialises on its own: the answer's shares of its accounts do
    /// ([`crate::Engine::apply_adl_assignment`], [`crate::Engine::apply_socialised_share`]).
    SystemShard,
}
