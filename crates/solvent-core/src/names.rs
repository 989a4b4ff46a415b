//! Maps keyed by a name (an asset, an underlying, an instrument), looked up on every margin
//! computation.

use foldhash::fast::FixedState;
use indexmap::IndexMap;

/// A map by name in insertion order (the order of the file it was read from). Hashed with
/// foldhash rather than SipHash: keys are names from the venue's own files and events, and
/// lookups are on the hot path. The seed is fixed, so that nothing depends on a random state
/// (iteration follows insertion, never the hash).
pub type NameMap<V> = IndexMap<String, V, FixedState>;
