//! The collect and post regulations of CRIF rows (`collect_regulations`, `post_regulations`) and
//! the winning regulation of a netting set, as Open Source Risk Engine's `SimmCalculator`
//! computes them when it enforces the regulations (`enforceIMRegulations` true;
//! `OREAnalytics/orea/simm/simmcalculator.cpp`, `SimmCalculator::SimmCalculator`,
//! `splitCrifByRegulationsAndPortfolios`, `cleanDuplicateRegulations`, `populateFinalResults`):
//!
//! 1. A row's regulations on a side are the names in its column (split at `,`, `[`, `]` and
//!    spaces, as ORE's `parseRegulationString`); none means `Unspecified`. A row under
//!    `Excluded` is left out. A row under `Unspecified` alone is left out when any row of its
//!    netting set names a regulation on either side.
//! 2. Rows are grouped by their set of regulations (CFTC is split into a group of its own, as
//!    ORE does when no netting set is marked as SEC-segregated); groups sharing a regulation are
//!    then split as ORE's `cleanDuplicateRegulations` splits them, until each regulation is in
//!    one group. A group `{Unspecified}` beside others is dropped.
//! 3. SIMM is computed for each group; the winning regulations are those of the groups whose
//!    SIMM is the largest (equal within `close_enough`), and the winner is the first of them in
//!    ORE's order of regulations (`getWinningRegulation`). The netting set's SIMM is that of the
//!    first group holding the winner.
//!
//! SEC is refused: ORE's treatment of it depends on which netting sets are SEC-segregated,
//! which a CRIF does not say.

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::calibration::Calibration;
use crate::crif::{AddOn, AddOnKind, Crif, Sensitivity};
use crate::report::{NettingSetSimm, Side, netting_set_of_rows};

/// A regulation, in ORE's order (`CrifRecord::Regulation`), which decides ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Regulation {
    /// Australian Prudential Regulation Authority.
    #[serde(rename = "APRA")]
    Apra,
    /// Commodity Futures Trading Commission (US).
    #[serde(rename = "CFTC")]
    Cftc,
    /// European Supervisory Authorities.
    #[serde(rename = "ESA")]
    Esa,
    /// Swiss Financial Market Supervisory Authority.
    #[serde(rename = "FINMA")]
    Finma,
    /// Korean Financial Services Commission.
    #[serde(rename = "KFSC")]
    Kfsc,
    /// Hong Kong Monetary Authority.
    #[serde(rename = "HKMA")]
    Hkma,
    /// Japan Financial Services Agency.
    #[serde(rename = "JFSA")]
    Jfsa,
    /// Monetary Authority of Singapore.
    #[serde(rename = "MAS")]
    Mas,
    /// Office of the Superintendent of Financial Institutions (Canada).
    #[serde(rename = "OSFI")]
    Osfi,
    /// Reserve Bank of India.
    #[serde(rename = "RBI")]
    Rbi,
    /// Securities and Exchange Commission (US).
    #[serde(rename = "SEC")]
    Sec,
    /// SEC, unsegregated.
    #[serde(rename = "SEC-unseg")]
    SecUnseg,
    /// US prudential regulators.
    #[serde(rename = "USPR")]
    Uspr,
    /// Not regulated.
    #[serde(rename = "NONREG")]
    Nonreg,
    /// Banco Central do Brasil.
    #[serde(rename = "BACEN")]
    Bacen,
    /// Superintendencia de Bancos (Chile).
    #[serde(rename = "SANT")]
    Sant,
    /// Securities and Futures Commission (Hong Kong).
    #[serde(rename = "SFC")]
    Sfc,
    /// United Kingdom.
    #[serde(rename = "UK")]
    Uk,
    /// Autorité des marchés financiers (Québec).
    #[serde(rename = "AMFQ")]
    Amfq,
    /// Banco de México.
    #[serde(rename = "BANX")]
    Banx,
    /// Otoritas Jasa Keuangan (Indonesia).
    #[serde(rename = "OJK")]
    Ojk,
    /// Included.
    Included,
    /// No regulation given.
    Unspecified,
    /// The row is left out.
    Excluded,
}

impl Regulation {
    const NAMES: [(&'static str, Regulation); 24] = [
        ("APRA", Regulation::Apra),
        ("CFTC", Regulation::Cftc),
        ("ESA", Regulation::Esa),
        ("FINMA", Regulation::Finma),
        ("KFSC", Regulation::Kfsc),
        ("HKMA", Regulation::Hkma),
        ("JFSA", Regulation::Jfsa),
        ("MAS", Regulation::Mas),
        ("OSFI", Regulation::Osfi),
        ("RBI", Regulation::Rbi),
        ("SEC", Regulation::Sec),
        ("SEC-unseg", Regulation::SecUnseg),
        ("USPR", Regulation::Uspr),
        ("NONREG", Regulation::Nonreg),
        ("BACEN", Regulation::Bacen),
        ("SANT", Regulation::Sant),
        ("SFC", Regulation::Sfc),
        ("UK", Regulation::Uk),
        ("AMFQ", Regulation::Amfq),
        ("BANX", Regulation::Banx),
        ("OJK", Regulation::Ojk),
        ("Included", Regulation::Included),
        ("Unspecified", Regulation::Unspecified),
        ("Excluded", Regulation::Excluded),
    ];

    /// The regulation of a name as ORE writes it (exact case), if any.
    pub fn parse(name: &str) -> Option<Regulation> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
    }

    /// The name as ORE writes it.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("", |(n, _)| n)
    }
}

/// The regulations of a row on both sides, each sorted and without repeats; empty where the
/// column is empty or absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Regulations {
    /// `collect_regulations`.
    pub collect: Vec<Regulation>,
    /// `post_regulations`.
    pub post: Vec<Regulation>,
    /// A name that is no regulation, with its column: refused when the regulations are enforced
    /// (ORE would read it as a regulation named `Invalid`), ignored otherwise.
    pub unknown: Option<(&'static str, String)>,
}

impl Regulations {
    /// Reads the two fields of a row.
    pub(crate) fn read(collect: &str, post: &str) -> Self {
        let mut unknown = None;
        let mut side = |text: &str, column: &'static str| {
            parse_field(text).unwrap_or_else(|name| {
                unknown.get_or_insert((column, name));
                Vec::new()
            })
        };
        let collect = side(collect, "collect_regulations");
        let post = side(post, "post_regulations");
        Regulations {
            collect,
            post,
            unknown,
        }
    }
}

impl Regulations {
    fn side(&self, side: Side) -> &[Regulation] {
        match side {
            Side::Collect => &self.collect,
            Side::Post => &self.post,
        }
    }
}

/// Splits a regulations field as ORE's `parseRegulationString` does: names separated by `,`,
/// `[`, `]` or spaces, blanks dropped. Returns the first name that is not a regulation.
pub(crate) fn parse_field(text: &str) -> Result<Vec<Regulation>, String> {
    let mut out = Vec::new();
    for name in text
        .split([',', '[', ']', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        out.push(Regulation::parse(name).ok_or_else(|| name.to_string())?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// SIMM under the regulations that cannot be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RegulationError {
    /// A name in a regulations column that is no regulation.
    #[error(
        "row {row}, column {column}: '{value}' is not a regulation (expected one of ORE's: {expected})"
    )]
    Unknown {
        /// 1-based line number.
        row: usize,
        /// The column.
        column: &'static str,
        /// The name found.
        value: String,
        /// The names known.
        expected: String,
    },
    /// A row names SEC, whose treatment in ORE depends on SEC segregation the CRIF does not give.
    #[error(
        "row {row}: SEC is not covered (ORE treats it by the netting sets' SEC segregation, which a CRIF does not give)"
    )]
    Sec {
        /// 1-based line number.
        row: usize,
    },
    /// ORE's splitting of the groups did not end (it gives up after 1,000 steps too).
    #[error("netting set {0}: the regulations could not be split into one group each")]
    IterationLimit(String),
}

/// SIMM of a netting set under its winning regulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegulatedSimm {
    /// The winning regulation.
    pub regulation: Regulation,
    /// Every regulation whose SIMM equals the largest (the winner is the first).
    pub tied: Vec<Regulation>,
    /// SIMM of the rows under the winning regulation.
    pub simm: NettingSetSimm,
}

/// The rows of one group of regulations.
#[derive(Default, Clone)]
struct Group<'a> {
    sensitivities: Vec<&'a Sensitivity>,
    add_ons: Vec<&'a AddOn>,
}

impl<'a> Group<'a> {
    fn extend(&mut self, other: &Group<'a>) {
        self.sensitivities.extend_from_slice(&other.sensitivities);
        self.add_ons.extend_from_slice(&other.add_ons);
    }

    /// ORE computes a group that has a sensitivity, a notional or a fixed add-on
    /// (`Crif::hasCrifRecords` or an `AddOnFixedAmount`).
    fn computed(&self) -> bool {
        !self.sensitivities.is_empty()
            || self.add_ons.iter().any(|a| {
                matches!(
                    a.kind,
                    AddOnKind::Notional { .. } | AddOnKind::FixedAmount { .. }
                )
            })
    }
}

type Groups<'a> = BTreeMap<Vec<Regulation>, Group<'a>>;

/// SIMM of every netting set under its winning regulation for one side, in the order of the
/// netting sets' names. A netting set with no row left under the regulations of the side is
/// absent, as in ORE.
///
/// # Errors
/// [`RegulationError`] for a row under SEC, or groups that cannot be split.
pub fn simm_under_regulations(
    crif: &Crif,
    calibration: &Calibration,
    side: Side,
) -> Result<Vec<RegulatedSimm>, RegulationError> {
    let none = Regulations::default();
    let of = |index: u32| {
        crif.regulations
            .get(index as usize)
            .map_or(&none, |(r, _)| r)
    };
    let row_of = |index: u32| {
        crif.regulations
            .get(index as usize)
            .map_or(0, |(_, row)| *row)
    };
    // Rows by netting set.
    let mut sets: BTreeMap<&str, (Vec<&Sensitivity>, Vec<&AddOn>)> = BTreeMap::new();
    for s in &crif.sensitivities {
        sets.entry(s.netting_set.as_str()).or_default().0.push(s);
    }
    for a in &crif.add_ons {
        sets.entry(a.netting_set.as_str()).or_default().1.push(a);
    }
    let mut results = Vec::new();
    for (name, (sensitivities, add_ons)) in sets {
        let indices = sensitivities
            .iter()
            .map(|s| s.regulations)
            .chain(add_ons.iter().map(|a| a.regulations));
        let mut any_named = false;
        for index in indices {
            let regs = of(index);
            if let Some((column, value)) = &regs.unknown {
                return Err(RegulationError::Unknown {
                    row: row_of(index),
                    column,
                    value: value.clone(),
                    expected: Regulation::NAMES.map(|(n, _)| n).join(", "),
                });
            }
            if regs.collect.contains(&Regulation::Sec) || regs.post.contains(&Regulation::Sec) {
                return Err(RegulationError::Sec { row: row_of(index) });
            }
            any_named |= !regs.collect.is_empty() || !regs.post.is_empty();
        }
        // Step 1 and the first grouping (splitCrifByRegulationsAndPortfolios).
        let mut groups: Groups<'_> = BTreeMap::new();
        // The groups a row goes to on this side: none, or its regulations (CFTC apart).
        let keys = |index: u32| -> Vec<Vec<Regulation>> {
            let mut regs = of(index).side(side).to_vec();
            if regs.is_empty() {
                regs.push(Regulation::Unspecified);
            }
            if regs.contains(&Regulation::Excluded)
                || (regs == [Regulation::Unspecified] && any_named)
            {
                return Vec::new();
            }
            let (cftc, rest): (Vec<Regulation>, Vec<Regulation>) =
                regs.into_iter().partition(|r| *r == Regulation::Cftc);
            [rest, cftc].into_iter().filter(|k| !k.is_empty()).collect()
        };
        for s in &sensitivities {
            for key in keys(s.regulations) {
                groups.entry(key).or_default().sensitivities.push(s);
            }
        }
        for a in &add_ons {
            for key in keys(a.regulations) {
                groups.entry(key).or_default().add_ons.push(a);
            }
        }
        clean_duplicates(&mut groups).map_err(|()| RegulationError::IterationLimit(name.into()))?;
        if groups.len() > 1 {
            groups.remove([Regulation::Unspecified].as_slice());
        }
        // Step 3: SIMM per group, the winner.
        let mut computed: Vec<(&Vec<Regulation>, NettingSetSimm)> = Vec::new();
        for (key, group) in &groups {
            if group.computed() {
                let simm = netting_set_of_rows(
                    calibration,
                    name,
                    group.sensitivities.clone(),
                    &group.add_ons,
                    side,
                );
                computed.push((key, simm));
            }
        }
        // ORE starts from the smallest positive double, not zero.
        let winning = computed
            .iter()
            .map(|(_, s)| s.total)
            .fold(f64::MIN_POSITIVE, |a, b| if b > a { b } else { a });
        let mut tied: Vec<Regulation> = computed
            .iter()
            .filter(|(_, s)| close_enough(s.total, winning))
            .flat_map(|(key, _)| key.iter().copied())
            .collect();
        tied.sort_unstable();
        tied.dedup();
        let Some(&regulation) = tied.first() else {
            continue;
        };
        if let Some((_, simm)) = computed.into_iter().find(|(k, _)| k.contains(&regulation)) {
            results.push(RegulatedSimm {
                regulation,
                tied,
                simm,
            });
        }
    }
    Ok(results)
}

/// QuantLib's `close_enough(x, y)` with its 42 machine epsilons.
pub(crate) fn close_enough(x: f64, y: f64) -> bool {
    if x == y {
        return true;
    }
    let diff = (x - y).abs();
    let tolerance = 42.0 * f64::EPSILON;
    if x * y == 0.0 {
        return diff < tolerance * tolerance;
    }
    diff <= tolerance * x.abs() || diff <= tolerance * y.abs()
}

/// ORE's `SimmCalculator::cleanDuplicateRegulations`: while a regulation is in more than one
/// group, take the group with most shared regulations (the first such in the groups' order, as
/// ORE's priority queue gives it) and, from the largest subsets of it down, find the first that
/// is a group already: move the rows there and relabel the group to its other regulations (or
/// move them to that group, if it exists). After 250 rounds without such a subset ORE relabels
/// to the complement of the first subset tried; after 1,000 it fails.
fn clean_duplicates(groups: &mut Groups<'_>) -> Result<(), ()> {
    let mut iteration = 0usize;
    while let Some((duplicates, regs)) = top_of_queue(groups) {
        if iteration == 1000 {
            return Err(());
        }
        iteration += 1;
        let Some(rows) = groups.get(&regs).cloned() else {
            return Err(());
        };
        'sizes: for size in (1..=duplicates).rev() {
            if size == regs.len() {
                continue;
            }
            for comb in combinations(&regs, size) {
                let exists = groups.contains_key(&comb);
                if !exists && iteration <= 250 {
                    continue;
                }
                if let Some(target) = groups.get_mut(&comb) {
                    target.extend(&rows);
                }
                let rest: Vec<Regulation> =
                    regs.iter().copied().filter(|r| !comb.contains(r)).collect();
                groups.remove(&regs);
                groups.entry(rest).or_default().extend(&rows);
                break 'sizes;
            }
        }
    }
    Ok(())
}

/// The group ORE's priority queue puts first: the most regulations shared with other groups,
/// the first in the groups' order among equals (a max-heap filled in that order keeps the
/// first of equal elements on top). Groups of one regulation are not queued.
fn top_of_queue(groups: &Groups<'_>) -> Option<(usize, Vec<Regulation>)> {
    let mut counts: BTreeMap<Regulation, usize> = BTreeMap::new();
    for key in groups.keys() {
        for r in key {
            *counts.entry(*r).or_default() += 1;
        }
    }
    let mut best: Option<(usize, &Vec<Regulation>)> = None;
    for key in groups.keys() {
        let duplicates = key
            .iter()
            .filter(|r| counts.get(r).copied().unwrap_or(0) > 1)
            .count();
        if duplicates > 0 && key.len() > 1 && best.is_none_or(|(d, _)| duplicates > d) {
            best = Some((duplicates, key));
        }
    }
    best.map(|(d, k)| (d, k.clone()))
}

/// The subsets of `size` of sorted `items`, in ORE's order (lexicographic by position).
fn combinations(items: &[Regulation], size: usize) -> Vec<Vec<Regulation>> {
    fn go(
        items: &[Regulation],
        size: usize,
        start: usize,
        current: &mut Vec<Regulation>,
        out: &mut Vec<Vec<Regulation>>,
    ) {
        if current.len() == size {
            out.push(current.clone());
            return;
        }
        for i in start..items.len() {
            current.push(items[i]);
            go(items, size, i + 1, current, out);
            current.pop();
        }
    }
    let mut out = Vec::new();
    go(items, size, 0, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_as_ore_splits_them() {
        assert_eq!(
            parse_field("[ESA, USPR]"),
            Ok(vec![Regulation::Esa, Regulation::Uspr])
        );
        assert_eq!(
            parse_field("USPR,ESA,ESA"),
            Ok(vec![Regulation::Esa, Regulation::Uspr])
        );
        assert_eq!(parse_field(" [] "), Ok(vec![]));
        assert_eq!(parse_field("ESA,esa"), Err("esa".to_string()));
        assert_eq!(parse_field("SEC-unseg"), Ok(vec![Regulation::SecUnseg]));
    }

    fn group_keys(keys: &[&[Regulation]]) -> Groups<'static> {
        keys.iter()
            .map(|k| (k.to_vec(), Group::default()))
            .collect()
    }

    #[test]
    fn shared_regulations_are_split_into_one_group_each() {
        use Regulation::{Apra as A, Esa as E, Uspr as U};
        // {ESA,USPR} beside {ESA}: the pair's rows join {ESA} and it becomes {USPR}.
        let mut groups = group_keys(&[&[E, U], &[E]]);
        assert_eq!(clean_duplicates(&mut groups), Ok(()));
        assert_eq!(
            groups.keys().cloned().collect::<Vec<_>>(),
            vec![vec![E], vec![U]]
        );
        // {APRA,ESA,USPR}, {APRA,ESA}, {APRA}: split down to one regulation each.
        let mut groups = group_keys(&[&[A, E, U], &[A, E], &[A]]);
        assert_eq!(clean_duplicates(&mut groups), Ok(()));
        assert_eq!(
            groups.keys().cloned().collect::<Vec<_>>(),
            vec![vec![A], vec![E], vec![U]]
        );
        // {APRA,ESA} and {ESA,USPR} with no single group: after 250 rounds ORE relabels the first
        // to {ESA} (dropping APRA), then splits the second into it and {USPR}.
        let mut groups = group_keys(&[&[A, E], &[E, U]]);
        assert_eq!(clean_duplicates(&mut groups), Ok(()));
        assert_eq!(
            groups.keys().cloned().collect::<Vec<_>>(),
            vec![vec![E], vec![U]]
        );
    }

    const HEADER: &str = "PortfolioID\tProductClass\tRiskType\tQualifier\tBucket\tLabel1\tAmountUSD\tcollect_regulations\tpost_regulations";

    fn calibration() -> Calibration {
        Calibration::load(crate::Version::V2_6).unwrap()
    }

    #[test]
    fn sec_and_unknown_names_are_refused_by_row_only_when_enforced() {
        let text = format!(
            "{HEADER}\nNS\tEquity\tRisk_Equity\tA\t1\t\t100\tESA\t\nNS\tEquity\tRisk_Equity\tB\t1\t\t100\t\tSEC\n"
        );
        let crif = crate::crif::parse(&text).unwrap();
        assert_eq!(
            simm_under_regulations(&crif, &calibration(), Side::Collect),
            Err(RegulationError::Sec { row: 3 })
        );
        let text = format!("{HEADER}\nNS\tEquity\tRisk_Equity\tA\t1\t\t100\tESA,EAS\t\n");
        let crif = crate::crif::parse(&text).unwrap();
        assert!(matches!(
            simm_under_regulations(&crif, &calibration(), Side::Collect),
            Err(RegulationError::Unknown { row: 2, column: "collect_regulations", ref value, .. })
                if value == "EAS"
        ));
        // Not enforced, the columns are not read at all.
        assert_eq!(crate::simm(&crif, &calibration()).len(), 1);
    }

    #[test]
    fn close_enough_is_quantlibs() {
        assert!(close_enough(1.0, 1.0 + 10.0 * f64::EPSILON));
        assert!(!close_enough(1.0, 1.0 + 100.0 * f64::EPSILON));
        assert!(close_enough(0.0, f64::MIN_POSITIVE));
    }
}
