//! What an accepted event caused, kept in the journal beside the event (issue 12): its effects
//! as the JSON text the API returns, and what the audit filters on (the event's type, its
//! effects' types, the accounts concerned), so that "the events and effects of account X" is an
//! index lookup over the whole journal, not a scan.
//!
//! Effects are the engine's deterministic answer to the events, so they could be recomputed by a
//! replay; they are written anyway because an auditor asks for the effects of any event, old or
//! new, and a replay from the start to answer one question costs minutes on a long journal.

use std::collections::BTreeSet;
use std::sync::Arc;

use solvent_engine::effect::Effect;
use solvent_engine::event::Event;

/// The effects of one accepted event, with what the audit filters on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Each effect as one JSON object, the line `solvent replay --out` writes for it (without
    /// its newline), in the engine's order.
    pub effects: Vec<Arc<str>>,
    /// The effects' types (`account_updated`, `liquidation`, ...), each once.
    pub effect_types: BTreeSet<&'static str>,
    /// The user accounts the event or one of its effects concerns (as the account, the
    /// counterparty, a side of a transfer, the owner of an isolated position), each once; the
    /// venue's own ledger accounts (`external`, `fees`, `insurance_fund`, ...) are left out.
    pub accounts: BTreeSet<String>,
}

impl Outcome {
    /// The outcome of `event`, whose `effects` were rendered as `lines` (one per effect, in the
    /// same order) by the caller: the service renders each effect once for its reply and hands
    /// the same text to the journal.
    #[must_use]
    pub fn of(event: &Event, effects: &[Effect], lines: Vec<Arc<str>>) -> Self {
        let mut accounts = BTreeSet::new();
        event_accounts(event, &mut accounts);
        let mut effect_types = BTreeSet::new();
        for effect in effects {
            effect_types.insert(effect.kind());
            effect_accounts(effect, &mut accounts);
        }
        Self {
            effects: lines,
            effect_types,
            accounts,
        }
    }

    /// The outcome of event `seq`, its effects rendered here (for callers that have no text yet:
    /// `solvent journal import`, a migration, the benchmarks).
    #[must_use]
    pub fn render(seq: u64, event: &Event, effects: &[Effect]) -> Self {
        let mut buffer = Vec::with_capacity(256);
        let lines = effects
            .iter()
            .map(|effect| effect_line(effect, seq, &mut buffer))
            .collect();
        Self::of(event, effects, lines)
    }
}

/// Effect `effect` of event `seq` as one JSON object without a newline: the bytes of
/// `Effect::write_json_line` (what the service's replies carry).
#[must_use]
pub fn effect_line(effect: &Effect, seq: u64, buffer: &mut Vec<u8>) -> Arc<str> {
    buffer.clear();
    effect.write_json_line(seq, buffer);
    while buffer.last() == Some(&b'\n') {
        buffer.pop();
    }
    String::from_utf8_lossy(buffer).into()
}

/// An event's type as its JSON `type` field names it (the same exhaustive list as
/// [`Event`]'s variants: a new event cannot be journaled without a name here).
#[must_use]
pub const fn event_type(event: &Event) -> &'static str {
    match event {
        Event::Deposit(_) => "deposit",
        Event::Withdraw(_) => "withdraw",
        Event::Transfer(_) => "transfer",
        Event::Fill(_) => "fill",
        Event::IndexPrice(_) => "index_price",
        Event::MarkPrice(_) => "mark_price",
        Event::VolSurface(_) => "vol_surface",
        Event::Funding(_) => "funding",
        Event::Settlement(_) => "settlement",
        Event::SetLeverage(_) => "set_leverage",
        Event::SetMarginMode(_) => "set_margin_mode",
        Event::SetIsolatedMargin(_) => "set_isolated_margin",
        Event::SetBufferPolicy(_) => "set_buffer_policy",
        Event::SetAutoTopUp(_) => "set_auto_top_up",
        Event::ListInstrument(_) => "list_instrument",
        Event::UpdateVenue(_) => "update_venue",
        Event::ScenarioRange(_) => "scenario_range",
    }
}

/// The accounts an event names.
fn event_accounts(event: &Event, accounts: &mut BTreeSet<String>) {
    let mut add = |name: &str| {
        if let Some(id) = user_account(name) {
            accounts.insert(id.to_owned());
        }
    };
    match event {
        Event::Deposit(e) => add(&e.account),
        Event::Withdraw(e) => add(&e.account),
        Event::Transfer(e) => {
            add(&e.from);
            add(&e.to);
        }
        Event::Fill(e) => {
            add(&e.account);
            add(&e.counterparty);
        }
        Event::SetLeverage(e) => add(&e.account),
        Event::SetMarginMode(e) => add(&e.account),
        Event::SetIsolatedMargin(e) => add(&e.account),
        Event::SetBufferPolicy(e) => add(&e.account),
        Event::SetAutoTopUp(e) => add(&e.account),
        Event::IndexPrice(_)
        | Event::MarkPrice(_)
        | Event::VolSurface(_)
        | Event::Funding(_)
        | Event::Settlement(_)
        | Event::ListInstrument(_)
        | Event::UpdateVenue(_)
        | Event::ScenarioRange(_) => {}
    }
}

/// The accounts an effect names.
fn effect_accounts(effect: &Effect, accounts: &mut BTreeSet<String>) {
    // Most effects name an account already held: no new string for those.
    let mut add = |name: &str| {
        if let Some(id) = user_account(name)
            && !accounts.contains(id)
        {
            accounts.insert(id.to_owned());
        }
    };
    match effect {
        Effect::AccountUpdated { account, .. }
        | Effect::MarginCall { account, .. }
        | Effect::StateChanged { account, .. }
        | Effect::Liquidation { account, .. }
        | Effect::LiquidationDeferred { account, .. }
        | Effect::DeficitBeyondFund { account, .. } => add(account),
        Effect::Adl {
            account,
            counterparty,
            ..
        } => {
            add(account);
            add(counterparty);
        }
        Effect::TransferApplied { from, to, .. } => {
            add(from);
            add(to);
        }
        Effect::InsuranceFundChanged { .. }
        | Effect::PriceGuarded { .. }
        | Effect::Rejected { .. } => {}
    }
}

/// The user account behind a ledger account's name: the owner of an isolated position
/// (`a1/isolated/BTC-PERPETUAL` is `a1`'s), `None` for the venue's own accounts.
#[must_use]
pub fn user_account(ledger_name: &str) -> Option<&str> {
    use solvent_engine::ledger::{CLEARING, EXTERNAL, FEES, INSURANCE_FUND, PENDING_CLAIMS};
    // The first "/isolated/" starts at a '/': found by a byte search from each one, where
    // `split_once` with the word built a substring searcher at every call (the service asks for
    // every effect's accounts on its engine thread).
    let id = ledger_name
        .match_indices('/')
        .find(|(at, _)| ledger_name[*at..].starts_with("/isolated/"))
        .map_or(ledger_name, |(at, _)| &ledger_name[..at]);
    (![EXTERNAL, FEES, INSURANCE_FUND, CLEARING, PENDING_CLAIMS].contains(&id)).then_some(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_fill_concerns_both_sides_and_its_effects_owners_not_the_venue() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "type": "fill", "account": "a1", "instrument": "BTCUSDT", "side": "buy",
            "size": "1", "price": "60000", "fee": "6", "counterparty": "external"
        }))
        .unwrap();
        let effects = [Effect::TransferApplied {
            from: "a2/isolated/BTCUSDT".to_owned(),
            to: "fees".to_owned(),
            asset: "USDT".to_owned(),
            amount: solvent_core::money::Amount(rust_decimal::Decimal::ONE),
            reason: solvent_engine::effect::TransferReason::Fee,
        }];
        let outcome = Outcome::render(7, &event, &effects);
        assert_eq!(event_type(&event), "fill");
        assert_eq!(
            outcome
                .accounts
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["a1", "a2"]
        );
        assert_eq!(
            outcome.effect_types.iter().copied().collect::<Vec<_>>(),
            ["transfer_applied"]
        );
        assert!(outcome.effects[0].starts_with(r#"{"#));
        assert!(outcome.effects[0].contains(r#""seq":7"#));
        assert!(!outcome.effects[0].ends_with('\n'));
    }

    /// The owner of an isolated position's ledger account is the text before the first
    /// `/isolated/`, as `split_once` finds it, on names built from the characters that matter
    /// (every way the word can be cut, doubled or run into its neighbours).
    #[test]
    fn the_owner_of_a_ledger_account_is_the_text_before_the_first_isolated_word() {
        for (name, owner) in [
            ("a1", Some("a1")),
            ("a1/isolated/BTCUSDT", Some("a1")),
            ("a/b/isolated/X", Some("a/b")),
            ("a/isolated/isolated/X", Some("a")),
            ("a//isolated/X", Some("a/")),
            ("x/isolatedX", Some("x/isolatedX")),
            ("/isolated/X", Some("")),
            ("fees", None),
            ("fees/isolated/BTCUSDT", None),
            ("insurance_fund", None),
        ] {
            assert_eq!(user_account(name), owner, "{name}");
        }
        fn reference(name: &str) -> Option<&str> {
            let id = name.split_once("/isolated/").map_or(name, |(id, _)| id);
            user_account(id).map(|_| id)
        }
        // Every name of up to six symbols (a character, the whole word or a piece of it), by
        // counting in base 5.
        let alphabet = ['/', 'i', 's', 'o', 'a'];
        let word = "/isolated/";
        for length in 0..=6_u32 {
            for mut n in 0..5_usize.pow(length) {
                let mut name = String::new();
                for _ in 0..length {
                    match alphabet[n % 5] {
                        // A whole word, so that names hold it, twice, or cut into it.
                        'i' => name.push_str(word),
                        's' => name.push_str("/iso"),
                        other => name.push(other),
                    }
                    n /= 5;
                }
                assert_eq!(user_account(&name), reference(&name), "{name}");
            }
        }
    }
}
