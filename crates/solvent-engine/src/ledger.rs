//! The double-entry ledger's account names.

/// The ledger account for money entering and leaving the system, and for counterparties outside it.
pub const EXTERNAL: &str = "external";
