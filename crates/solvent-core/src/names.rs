//! Maps keyed by a name (an asset, an underlying, an instrument), looked up on every margin
//! computation.

use foldhash::fast::FixedState;
use indexmap::IndexMap;

/// A map by name in insertion order (the order of the file it was read from). Hashed with
/// foldhash rather than SipHash: keys are names from the venue's own files and events, and
/// lookups are on the hot path. The seed is fixed, so that nothing depends on a random state
/// (iteration follows insertion, never the hash).
pub type NameMap<V> = IndexMap<String, V, FixedState>;

/// Similarity (Jaro-Winkler, case folded) above which a known name is offered as the one meant:
/// high enough that `BTC-PERPETUL` suggests `BTC-PERPETUAL` but `ETH` does not suggest `BTC`.
const SUGGESTION_SIMILARITY: f64 = 0.85;

/// Names this short are symbols (`USDC`, `ETH`), where one letter changed is usually another
/// real asset (`USDT`, `ETC`): they are matched only on a slip that keeps the letters.
const SHORT_NAME: usize = 5;

/// Whether `a` and `b` (case folded) differ by a slip that keeps the letters: the same letters
/// in another order (`USTD`), or one letter doubled or dropped (`BTCC`, `BT`).
fn same_letters(a: &str, b: &str) -> bool {
    let mut left: Vec<char> = a.chars().collect();
    let mut right: Vec<char> = b.chars().collect();
    if left.len() == right.len() {
        left.sort_unstable();
        right.sort_unstable();
        return left == right;
    }
    let (short, long) = if left.len() < right.len() {
        (left, right)
    } else {
        (right, left)
    };
    long.len() == short.len() + 1
        && (0..long.len()).any(|skip| {
            long.iter()
                .enumerate()
                .filter(|(index, _)| *index != skip)
                .map(|(_, letter)| letter)
                .eq(short.iter())
        })
}

/// The candidate most like `name`, if one is alike enough to be what was meant (a "did you
/// mean" for an unknown instrument, asset or venue). A short name (a symbol) is matched only
/// on a slip that keeps its letters: `USDC` is a different asset from `USDT`, not a typo.
#[must_use]
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = name.to_uppercase();
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name)
        .filter(|candidate| {
            folded.chars().count() > SHORT_NAME || same_letters(&folded, &candidate.to_uppercase())
        })
        .map(|candidate| {
            let score = strsim::jaro_winkler(&folded, &candidate.to_uppercase());
            (score, candidate)
        })
        .filter(|(score, _)| *score >= SUGGESTION_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean `X`?)` when [`closest`] finds one, else nothing: appended to an error.
#[must_use]
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map_or_else(String::new, |found| format!(" (did you mean `{found}`?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_name_finds_the_one_meant_and_a_different_one_nothing() {
        let names = ["BTC-PERPETUAL", "ETH-PERPETUAL", "BTCUSDT"];
        assert_eq!(closest("BTC-PERPETUL", names), Some("BTC-PERPETUAL"));
        assert_eq!(closest("btcusdt", names), Some("BTCUSDT"));
        assert_eq!(closest("SOL", ["BTC", "ETH", "USDT"]), None);
        // Another real asset one letter away is not a typo.
        assert_eq!(closest("USDC", ["USDT", "BTC"]), None);
        assert_eq!(closest("ETC", ["ETH"]), None);
        assert_eq!(closest("BTCC", ["BTC", "ETH"]), Some("BTC"));
        assert_eq!(closest("eth", ["BTC", "ETH"]), Some("ETH"));
        assert_eq!(
            did_you_mean("USTD", ["USDT", "BTC"]),
            " (did you mean `USDT`?)"
        );
    }
}
