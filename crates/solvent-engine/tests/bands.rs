//! The safe-band index re-examines only the accounts a price update can change: it must act
//! exactly as re-examining every holder would (same state changes, margin calls, liquidations,
//! deleveraging and transfers, such as top-ups, at every event; the same state at the end).

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use proptest::prelude::*;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::Effect;
use solvent_engine::event::parse_line;

fn venue() -> Venue {
    shipped_venue("venues/default.toml")
}

/// A venue file of the repository, by its path from the repository's root.
fn shipped_venue(path: &str) -> Venue {
    let path = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn events(accounts: &[(u32, i32, u32)], path: &[i32]) -> Vec<String> {
    events_with_marks(accounts, path, &[])
}

/// The events of [`events`], with a mark update after each index step of `path` that `marks`
/// gives one for: `(step, BTCUSDT?, offset from the index in tenths of a percent)` (beyond
/// +-50, +-5%, the engine clamps it).
fn events_with_marks(
    accounts: &[(u32, i32, u32)],
    path: &[i32],
    marks: &[(usize, bool, i32)],
) -> Vec<String> {
    events_with_prices(accounts, path, marks, &[])
}

/// The events of [`events_with_marks`], with the market pricing USDT (the venue's settlement
/// coin, pegged at 1 until then) after the index steps `coin` names: `(step, USDT price in
/// thousandths)`.
fn events_with_prices(
    accounts: &[(u32, i32, u32)],
    path: &[i32],
    marks: &[(usize, bool, i32)],
    coin: &[(usize, u32)],
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut seq = 0;
    let mut push = |body: String, lines: &mut Vec<String>| {
        seq += 1;
        lines.push(format!(
            r#"{{"seq":{seq},"ts":"2026-01-01T00:{:02}:{:02}Z",{body}}}"#,
            (seq / 60) % 60,
            seq % 60
        ));
    };
    push(
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        &mut lines,
    );
    push(
        r#""type":"index_price","underlying":"ETH","price":"3000""#.to_owned(),
        &mut lines,
    );
    for (index, (collateral, btc_thousandths, eth_hundredths)) in accounts.iter().enumerate() {
        push(
            format!(
                r#""type":"deposit","account":"a{index}","asset":"USDT","amount":"{collateral}""#
            ),
            &mut lines,
        );
        if *btc_thousandths != 0 {
            let side = if *btc_thousandths > 0 { "buy" } else { "sell" };
            push(
                format!(
                    r#""type":"fill","account":"a{index}","instrument":"BTCUSDT","side":"{side}","size":"{}","price":"60000""#,
                    f64::from(btc_thousandths.unsigned_abs()) / 1000.0
                ),
                &mut lines,
            );
        }
        if index % 3 == 0 && *btc_thousandths != 0 {
            // An isolated position (refused when the wallet cannot cover it: the same in both engines).
            let margin = (f64::from(btc_thousandths.unsigned_abs()) * 60.0 * 0.2).round();
            push(
                format!(
                    r#""type":"set_isolated_margin","account":"a{index}","instrument":"BTCUSDT","amount":"{margin}""#
                ),
                &mut lines,
            );
        }
        if index % 3 == 2 && *btc_thousandths != 0 {
            // An isolated inverse position margined in BTC, whose margin moves with the index
            // too: sometimes thin, sometimes more coins than the position is worth (a long then
            // liquidates near entry / 2.2).
            let side = if *btc_thousandths > 0 { "sell" } else { "buy" };
            let usd = btc_thousandths.unsigned_abs() * 60;
            let margin = f64::from(btc_thousandths.unsigned_abs()) / 1000.0
                * if index % 2 == 0 { 0.05 } else { 1.2 };
            push(
                format!(r#""type":"deposit","account":"a{index}","asset":"BTC","amount":"1""#),
                &mut lines,
            );
            push(
                format!(
                    r#""type":"fill","account":"a{index}","instrument":"BTC-PERPETUAL","side":"{side}","size":"{usd}","price":"60000""#
                ),
                &mut lines,
            );
            push(
                format!(
                    r#""type":"set_isolated_margin","account":"a{index}","instrument":"BTC-PERPETUAL","amount":"{margin:.4}""#
                ),
                &mut lines,
            );
        }
        if index % 3 == 1 && *btc_thousandths != 0 {
            // A cross inverse position on coin collateral, banded on its mark and its index.
            let side = if *btc_thousandths > 0 { "buy" } else { "sell" };
            let usd = btc_thousandths.unsigned_abs() * 30;
            let coins = f64::from(btc_thousandths.unsigned_abs()) / 1000.0
                * if index % 2 == 0 { 0.03 } else { 0.6 };
            push(
                format!(
                    r#""type":"deposit","account":"a{index}","asset":"BTC","amount":"{coins:.4}""#
                ),
                &mut lines,
            );
            push(
                format!(
                    r#""type":"fill","account":"a{index}","instrument":"BTC-PERPETUAL","side":"{side}","size":"{usd}","price":"60000""#
                ),
                &mut lines,
            );
        }
        if index % 4 == 1 {
            push(
                format!(
                    r#""type":"set_auto_top_up","account":"a{index}","source":"external","trigger_health":"2","target_health":"3","per_event_cap":"500","per_day_cap":"2000""#
                ),
                &mut lines,
            );
        }
        if index % 4 == 3 {
            push(
                format!(
                    r#""type":"set_auto_top_up","account":"a{index}","source":"cross_pool","trigger_health":"1.3","target_health":"1.6","per_event_cap":"1000","per_day_cap":"5000""#
                ),
                &mut lines,
            );
        }
        if *eth_hundredths != 0 {
            push(
                format!(
                    r#""type":"fill","account":"a{index}","instrument":"ETHUSDT","side":"buy","size":"{}","price":"3000""#,
                    f64::from(*eth_hundredths) / 100.0
                ),
                &mut lines,
            );
        }
    }
    let (mut btc, mut eth) = (60_000_i64, 3_000_i64);
    for (step, moves) in path.iter().enumerate() {
        // Small steps (at most 2%) so the jump guard never holds a price.
        btc = (btc + i64::from(*moves) * 60).max(20_000);
        eth = (eth - i64::from(*moves) * 2).max(1_000);
        let (name, price) = if step % 3 == 2 {
            ("ETH", eth)
        } else {
            ("BTC", btc)
        };
        push(
            format!(r#""type":"index_price","underlying":"{name}","price":"{price}""#),
            &mut lines,
        );
        for (_, thousandths) in coin.iter().filter(|(at, _)| *at == step) {
            push(
                format!(
                    r#""type":"index_price","underlying":"USDT","price":"{}""#,
                    f64::from(*thousandths) / 1000.0
                ),
                &mut lines,
            );
        }
        for (_, btc_mark, tenths) in marks.iter().filter(|(at, _, _)| *at == step) {
            let (instrument, index) = if *btc_mark {
                ("BTCUSDT", btc)
            } else {
                ("ETHUSDT", eth)
            };
            let mark = index * (1000 + i64::from(*tenths)) / 1000;
            push(
                format!(r#""type":"mark_price","instrument":"{instrument}","price":"{mark}""#),
                &mut lines,
            );
            if *btc_mark {
                // The inverse perpetual's mark, on the other side of the index.
                let mark = index * (1000 - i64::from(*tenths)) / 1000;
                push(
                    format!(r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"{mark}""#),
                    &mut lines,
                );
            }
        }
    }
    lines
}

/// The effects of an event that monitoring decides, as JSON, in order.
fn monitored(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::StateChanged { .. }
                    | Effect::MarginCall { .. }
                    | Effect::Liquidation { .. }
                    | Effect::Adl { .. }
                    | Effect::TransferApplied { .. }
            )
        })
        .map(|e| serde_json::to_string(e).unwrap())
        .collect()
}

/// Applies `lines` to a banded and an exhaustive engine, checks they act alike, and returns the
/// actions taken.
fn assert_same_actions(lines: &[String]) -> Vec<String> {
    assert_same_actions_on(&venue(), lines)
}

/// [`assert_same_actions`] on `venue`.
fn assert_same_actions_on(venue: &Venue, lines: &[String]) -> Vec<String> {
    let mut banded = Engine::new(venue.clone(), EngineConfig::default());
    let mut exhaustive = Engine::new(
        venue.clone(),
        EngineConfig {
            exhaustive_monitoring: true,
            ..EngineConfig::default()
        },
    );
    let mut actions = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let envelope = parse_line("bands", number + 1, line).unwrap();
        let fast = monitored(&banded.apply(&envelope));
        let slow = monitored(&exhaustive.apply(&envelope));
        assert_eq!(fast, slow, "line {line}");
        actions.extend(fast);
    }
    assert_eq!(banded.state_hash(), exhaustive.state_hash());
    actions
}

/// The side of the `n`th of holders taken long and short in turn.
fn long_or_short(n: u32) -> &'static str {
    if n.is_multiple_of(2) { "buy" } else { "sell" }
}

/// The accounts the banded engine examines at the lines of `during` (0-based), every line
/// being taken (none refused).
fn examined_during(lines: &[String], during: std::ops::Range<usize>) -> u64 {
    let mut banded = Engine::new(venue(), EngineConfig::default());
    let mut examined = 0;
    for (number, line) in lines.iter().enumerate() {
        let before = banded.evaluations();
        let effects = banded.apply(&parse_line("bands", number + 1, line).unwrap());
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
            "precondition: {line} is taken"
        );
        if during.contains(&number) {
            examined += banded.evaluations().since(before);
        }
    }
    examined
}

/// Events one second apart from 2026-01-01T00:00:00Z, as JSON lines (`seq` from 1).
#[derive(Default)]
struct Timed {
    lines: Vec<String>,
}

impl Timed {
    /// Appends the event whose fields (after `seq` and `ts`) are `body`.
    fn push(&mut self, body: &str) {
        let seq = self.lines.len() + 1;
        self.lines.push(format!(
            r#"{{"seq":{seq},"ts":"2026-01-01T{:02}:{:02}:{:02}Z",{body}}}"#,
            seq / 3600,
            (seq / 60) % 60,
            seq % 60
        ));
    }

    /// Opens `account`: deposits `(asset, amount)`, then fills `(instrument, side, size)` at
    /// 60,000.
    fn open(&mut self, account: &str, (asset, amount): (&str, &str), fill: (&str, &str, &str)) {
        let (instrument, side, size) = fill;
        self.push(&format!(
            r#""type":"deposit","account":"{account}","asset":"{asset}","amount":"{amount}""#
        ));
        self.push(&format!(
            r#""type":"fill","account":"{account}","instrument":"{instrument}","side":"{side}","size":"{size}","price":"60000""#
        ));
    }

    /// Forty longs and shorts of 1 BTCUSDT at 100x leverage (`prefix` and their number), with
    /// 800 to 362,000 USDT; with `hedged`, the first two of every four also hold 0.2 BTC, the
    /// others a quarter of the size in BTC_USDC-PERPETUAL the other way.
    fn open_btcusdt_crowd(&mut self, prefix: &str, hedged: bool) {
        for n in 0..40_u32 {
            let account = format!("{prefix}{n:02}");
            let collateral = 800 + 1_000 * (n / 2) * (n / 2);
            self.push(&format!(
                r#""type":"deposit","account":"{account}","asset":"USDT","amount":"{collateral}""#
            ));
            let mut contracts = vec![("BTCUSDT", long_or_short(n), "1")];
            if hedged && n % 4 < 2 {
                self.push(&format!(
                    r#""type":"deposit","account":"{account}","asset":"BTC","amount":"0.2""#
                ));
            } else if hedged {
                contracts.push(("BTC_USDC-PERPETUAL", long_or_short(n + 1), "0.25"));
            }
            for (contract, side, size) in contracts {
                self.fill_at_100x(&account, contract, side, size);
            }
        }
    }

    /// `account`'s leverage on `contract` set to 100, then a fill of `size` at 60,000 on `side`.
    fn fill_at_100x(&mut self, account: &str, contract: &str, side: &str, size: &str) {
        self.push(&format!(
            r#""type":"set_leverage","account":"{account}","instrument":"{contract}","leverage":"100""#
        ));
        self.push(&format!(
            r#""type":"fill","account":"{account}","instrument":"{contract}","side":"{side}","size":"{size}","price":"60000""#
        ));
    }

    /// Opens `count` holders of 60,000 USD of the inverse `contract`, long and short in turn,
    /// each pair on `first x growth^k` BTC (`(first, growth)` = `coins`, `k` the pair).
    fn open_pairs(&mut self, prefix: &str, count: u32, coins: (f64, f64), contract: &str) {
        let (first, growth) = coins;
        for n in 0..count {
            let coins = first * growth.powi((n / 2) as i32);
            self.open(
                &format!("{prefix}{n:02}"),
                ("BTC", &format!("{coins:.4}")),
                (contract, long_or_short(n), "60000"),
            );
        }
    }

    /// BTC's index moved from 60,000 by `before` tenths of a percent, then `contract`'s first
    /// mark `gap` tenths of a percent from it (clamped at 5% by the engine), then the mark and
    /// the index walked by `path` (tenths of a percent each, the index every other step).
    fn first_mark_after(&mut self, contract: &str, before: i32, gap: i32, path: &[i32]) {
        let mut index = 60_000.0 * (1.0 + f64::from(before) / 1000.0);
        self.push(&format!(
            r#""type":"index_price","underlying":"BTC","price":"{index:.2}""#
        ));
        let mut mark = index * (1.0 + f64::from(gap) / 1000.0);
        self.push(&format!(
            r#""type":"mark_price","instrument":"{contract}","price":"{mark:.2}""#
        ));
        for (step, tenths) in path.iter().enumerate() {
            let factor = 1.0 + f64::from(*tenths) / 1000.0;
            mark *= factor;
            self.push(&format!(
                r#""type":"mark_price","instrument":"{contract}","price":"{mark:.2}""#
            ));
            if step % 2 == 1 {
                index *= factor;
                self.push(&format!(
                    r#""type":"index_price","underlying":"BTC","price":"{index:.2}""#
                ));
            }
        }
    }

    /// BTC's index and `BTC-PERPETUAL`'s mark at 60,000.
    fn marked_at_60000() -> Timed {
        let mut stream = Timed::default();
        stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
        stream.push(r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"60000""#);
        stream
    }

    /// `contract`'s first mark at `first`, then 30 steps of its mark by `step` (relative to
    /// `first`), BTC's index following every third step at the same gap from it.
    fn first_mark_walk(&mut self, contract: &str, first: f64, step: f64) {
        let gap = first / 60_000.0;
        self.push(&format!(
            r#""type":"mark_price","instrument":"{contract}","price":"{first:.2}""#
        ));
        for n in 1..=30_i32 {
            let price = first * (1.0 + step * f64::from(n));
            self.push(&format!(
                r#""type":"mark_price","instrument":"{contract}","price":"{price:.2}""#
            ));
            if n % 3 == 0 {
                self.push(&format!(
                    r#""type":"index_price","underlying":"BTC","price":"{:.2}""#,
                    price / gap
                ));
            }
        }
    }

    /// BTC's index from 60,000, multiplied by each factor in turn (to the cent).
    fn walk_btc(&mut self, factors: impl IntoIterator<Item = f64>) {
        let mut price = 60_000.0_f64;
        for factor in factors {
            price *= factor;
            self.push(&format!(
                r#""type":"index_price","underlying":"BTC","price":"{price:.2}""#
            ));
        }
    }
}

/// Precondition of a test: the actions take some account to each of `states` (`path` says
/// what should have).
fn assert_reached(actions: &[String], states: &[&str], path: &str) {
    for state in states {
        assert!(
            actions
                .iter()
                .any(|a| a.contains("state_changed") && a.contains(&format!(r#""to":"{state}""#))),
            "precondition: {path} takes an account to {state}: {actions:?}"
        );
    }
}

/// Precondition of a test: the actions move each of `accounts` between states.
fn assert_moved(actions: &[String], accounts: &[&str]) {
    for account in accounts {
        assert!(
            actions
                .iter()
                .any(|a| a.contains("state_changed")
                    && a.contains(&format!(r#""account":"{account}""#))),
            "precondition: the path moves {account} between states: {actions:?}"
        );
    }
}

/// An isolated inverse long holding more coins as margin than it is worth: its equity moves by
/// margin + size / entry coins per dollar, more than the position alone. The bands must still
/// catch its liquidation on a slide from 60,000 to 20,000.
#[test]
fn an_over_margined_inverse_isolated_long_is_caught_on_a_slide() {
    let accounts = [(20_000, 0, 0); 5]
        .into_iter()
        .chain([(20_000, -400, 0)])
        .collect::<Vec<_>>();
    let lines = events(&accounts, &[-20; 60]);
    assert!(
        lines.iter().any(|l| l.contains(r#""account":"a5","instrument":"BTC-PERPETUAL","amount":"0.4800""#)),
        "precondition: a5 holds the over-margined isolated long"
    );
    let mut engine = Engine::new(venue(), EngineConfig::default());
    let liquidated = lines.iter().enumerate().any(|(number, line)| {
        let envelope = parse_line("bands", number + 1, line).unwrap();
        engine.apply(&envelope).iter().any(|e| {
            matches!(e, Effect::Liquidation { account, instrument, .. }
                if account == "a5" && instrument == "BTC-PERPETUAL")
        })
    });
    assert!(
        liquidated,
        "precondition: the slide liquidates a5's isolated long"
    );
    assert_same_actions(&lines);
}

/// Isolated inverse positions, banded on the index and on the ratio of the index to their
/// contract's mark like cross ones (their own pool's equity `S m + N S / e - N rho`): marks that
/// wander around the index examine few of them, where each mark used to examine every one; a
/// walk of the index and a mark drifting 2% below it catch every state change at the same event
/// as when every holder is examined.
#[test]
fn isolated_inverse_positions_are_banded_on_the_ratio_of_index_to_mark() {
    let mut stream = Timed::marked_at_60000();
    // Twenty longs and shorts of 60,000 USD, isolated with 0.03 to 0.6 BTC of margin.
    for n in 0..20_u32 {
        let account = format!("s{n:02}");
        let margin = 0.03 * 1.37_f64.powi((n / 2) as i32);
        let side = long_or_short(n);
        stream.open(&account, ("BTC", "2"), ("BTC-PERPETUAL", side, "60000"));
        stream.push(&format!(
            r#""type":"set_isolated_margin","account":"{account}","instrument":"BTC-PERPETUAL","amount":"{margin:.4}""#
        ));
    }
    let opened = stream.lines.len();
    // Marks 0.05% either side of the index, forty times.
    for step in 0..40_i32 {
        let mark = if step % 2 == 0 { 60_030 } else { 59_970 };
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"{mark}""#
        ));
    }
    let wandered = stream.lines.len();
    // Then the index falls 0.3% a step and the mark drifts to 2% below it.
    for step in 1..=40_i32 {
        let index = 60_000.0 * (1.0 - 0.003 * f64::from(step));
        let gap = 0.0005 * f64::from(step.min(40));
        stream.push(&format!(
            r#""type":"index_price","underlying":"BTC","price":"{index:.2}""#
        ));
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"{:.2}""#,
            index * (1.0 - gap)
        ));
    }
    let examined_by_marks = examined_during(&stream.lines, opened..wandered);
    assert!(
        examined_by_marks <= 40,
        "forty marks within 0.05% of the index examined {examined_by_marks} accounts (800 if \
         each examined every holder)"
    );
    let actions = assert_same_actions(&stream.lines);
    let liquidated = actions
        .iter()
        .filter(|a| a.contains(r#""reason":"isolated_health_below_threshold""#))
        .count();
    assert!(
        liquidated >= 4,
        "precondition: the fall liquidates isolated longs one after another ({liquidated})"
    );
}

/// Positions near the first bracket boundary of BTCUSDT (2,000,000 USDT): a rise takes them into
/// the next bracket, whose higher rate the band must already count. Bands act as examining every
/// holder would, up and down through the boundary.
#[test]
fn bands_hold_across_a_tier_boundary() {
    let accounts: Vec<(u32, i32, u32)> = (0..12)
        .map(|i| {
            // 31.0 to 34.3 BTC at 60,000 (1.86 M to 2.06 M USDT), 55x to 95x.
            let thousandths = 31_000 + 300 * i;
            let collateral = 2_000_000 / (55 + 4 * i as u32);
            let side = if i % 2 == 0 { 1 } else { -1 };
            (collateral, side * thousandths, 0)
        })
        .collect();
    let mut path = vec![2; 12];
    path.extend([-3; 20]);
    path.extend([4; 12]);
    let lines = events(&accounts, &path);
    let actions = assert_same_actions(&lines);
    let state_changes = actions
        .iter()
        .filter(|a| a.contains("state_changed"))
        .count();
    assert!(
        state_changes >= 10,
        "precondition: the path moves accounts between states ({state_changes} changes)"
    );
    assert!(
        actions.iter().any(|a| a.contains("liquidation")),
        "precondition: the path liquidates"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bands_act_exactly_as_examining_every_holder(
        accounts in proptest::collection::vec((2_000u32..40_000, -400i32..400, 0u32..300), 1..12),
        path in proptest::collection::vec(-20i32..20, 1..80),
    ) {
        let lines = events(&accounts, &path);
        assert_same_actions(&lines);
    }

    /// With given marks, linear contracts are banded on their mark: mark updates, and index
    /// moves that clamp a mark, act as examining every holder would.
    #[test]
    fn mark_bands_act_exactly_as_examining_every_holder(
        accounts in proptest::collection::vec((2_000u32..40_000, -400i32..400, 0u32..300), 1..12),
        path in proptest::collection::vec(-20i32..20, 1..80),
        marks in proptest::collection::vec((0usize..80, any::<bool>(), -70i32..70), 0..60),
    ) {
        let lines = events_with_marks(&accounts, &path, &marks);
        assert_same_actions(&lines);
    }

    /// With the market pricing the settlement coin off par (above it, everything settled in it
    /// moves faster in USD than at par), bands still act as examining every holder would.
    #[test]
    fn bands_hold_with_the_settlement_coin_priced_off_par(
        accounts in proptest::collection::vec((2_000u32..40_000, -400i32..400, 0u32..300), 1..12),
        path in proptest::collection::vec(-20i32..20, 1..80),
        coin in proptest::collection::vec((0usize..80, 900u32..1_150), 1..4),
    ) {
        let lines = events_with_prices(&accounts, &path, &[], &coin);
        assert_same_actions(&lines);
    }
}

/// Events for accounts the standard-margin bands were never sized for: portfolio mode, options
/// (linear and inverse), inverse contracts and collateral in several coins. Each account is
/// `(USDT collateral, BTC collateral in hundredths, BTCUSDT size in thousandths, option kind,
/// portfolio mode?)`; option kind 0 holds none, 1 sells a BTC_USDC call, 2 sells a BTC_USDC
/// put, 3 buys an inverse BTC call, 4 sells an inverse BTC put, 7 sells a BTC_USDC strangle and
/// buys ETHUSDT, 8 sells ETHUSDT. `path` moves BTC by 0.1% steps
/// (and ETH the other way on every third step); `vols` re-quotes the BTC smile at the steps it
/// names, as `(step, ATM vol in percent)`.
fn mixed_events(
    accounts: &[(u32, u32, i32, u8, bool)],
    path: &[i32],
    vols: &[(usize, u32)],
) -> Vec<String> {
    mixed_events_timed(accounts, path, vols, 1, 1_000)
}

/// The events of [`mixed_events`], `seconds` apart (from 2026-01-01T00:00:00Z); option kinds 5
/// and 6 are a short BTC_USDC call and 12 long inverse BTC puts expiring 2026-01-09, whose
/// values decay fast over hours. `path` moves BTC in `1 / unit` steps (`mixed_events`: 1,000).
fn mixed_events_timed(
    accounts: &[(u32, u32, i32, u8, bool)],
    path: &[i32],
    vols: &[(usize, u32)],
    seconds: i64,
    unit: i64,
) -> Vec<String> {
    let start = "2026-01-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap();
    let mut lines = Vec::new();
    let mut seq = 0;
    let mut push = |body: String, lines: &mut Vec<String>| {
        seq += 1;
        let ts = start
            .checked_add(jiff::SignedDuration::from_secs(seq * seconds))
            .unwrap();
        lines.push(format!(r#"{{"seq":{seq},"ts":"{ts}",{body}}}"#));
    };
    let smile = |atm: u32, expiry: &str| {
        let atm = f64::from(atm) / 100.0;
        format!(
            r#""type":"vol_surface","underlying":"BTC","expiry":"{expiry}","strikes":[30000,45000,60000,75000,90000],"vols":[{:.4},{:.4},{atm:.4},{:.4},{:.4}]"#,
            atm + 0.12,
            atm + 0.04,
            atm + 0.03,
            atm + 0.08
        )
    };
    for body in [
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"index_price","underlying":"ETH","price":"3000""#.to_owned(),
        smile(60, "27DEC26"),
        smile(55, "09JAN26"),
    ] {
        push(body, &mut lines);
    }
    for (index, (usdt, btc_hundredths, btc_thousandths, option, portfolio)) in
        accounts.iter().enumerate()
    {
        let account = format!("m{index}");
        push(
            format!(r#""type":"deposit","account":"{account}","asset":"USDT","amount":"{usdt}""#),
            &mut lines,
        );
        if *btc_hundredths > 0 {
            push(
                format!(
                    r#""type":"deposit","account":"{account}","asset":"BTC","amount":"{}""#,
                    f64::from(*btc_hundredths) / 100.0
                ),
                &mut lines,
            );
        }
        if *portfolio {
            push(
                format!(r#""type":"set_margin_mode","account":"{account}","mode":"portfolio""#),
                &mut lines,
            );
        }
        if *btc_thousandths != 0 {
            let side = if *btc_thousandths > 0 { "buy" } else { "sell" };
            push(
                format!(
                    r#""type":"fill","account":"{account}","instrument":"BTCUSDT","side":"{side}","size":"{}","price":"60000""#,
                    f64::from(btc_thousandths.unsigned_abs()) / 1000.0
                ),
                &mut lines,
            );
        }
        let option_fills: &[(&str, &str, &str, &str)] = match option {
            // Near their Black-76 value on the opening smile (about 0.99 years, 60% ATM).
            1 => &[("BTC_USDC-27DEC26-65000-C", "sell", "1", "13000")],
            2 => &[("BTC_USDC-27DEC26-55000-P", "sell", "1", "12000")],
            3 => &[("BTC-27DEC26-70000-C", "buy", "1", "0.2")],
            4 => &[("BTC-27DEC26-50000-P", "sell", "1", "0.17")],
            5 => &[("BTC_USDC-09JAN26-60000-C", "sell", "1", "2200")],
            6 => &[("BTC-09JAN26-58000-P", "buy", "12", "0.025")],
            // A short strangle whose worst scenario changes side near 59,000, and ETH: the
            // cross-underlying offset's direction turns (portfolio mode).
            7 => &[
                ("BTC_USDC-27DEC26-65000-C", "sell", "1", "13000"),
                ("BTC_USDC-27DEC26-55000-P", "sell", "1.9", "12000"),
                ("ETHUSDT", "buy", "20", "3000"),
            ],
            8 => &[("ETHUSDT", "sell", "15", "3000")],
            _ => &[],
        };
        for (instrument, side, size, price) in option_fills {
            push(
                format!(
                    r#""type":"fill","account":"{account}","instrument":"{instrument}","side":"{side}","size":"{size}","price":"{price}""#
                ),
                &mut lines,
            );
        }
    }
    let (mut btc, mut eth) = (60_000_000_i64, 3_000_i64);
    for (step, moves) in path.iter().enumerate() {
        // BTC in thousandths of a dollar, moved by `moves` tenths of a percent.
        btc = (btc + btc * i64::from(*moves) / unit).max(20_000_000);
        eth = (eth - i64::from(*moves) * 2).max(1_000);
        if step % 3 == 2 {
            push(
                format!(r#""type":"index_price","underlying":"ETH","price":"{eth}""#),
                &mut lines,
            );
        } else {
            push(
                format!(
                    r#""type":"index_price","underlying":"BTC","price":"{}.{:03}""#,
                    btc / 1000,
                    btc % 1000
                ),
                &mut lines,
            );
        }
        for (_, atm) in vols.iter().filter(|(at, _)| *at == step) {
            push(smile(*atm, "27DEC26"), &mut lines);
        }
    }
    lines
}

/// The venue of `examples/vol-scaled-venue.toml`: the default venue with BTC's range scaled by an
/// EWMA forecast (25% buffer, floor 4%) and ETH's by GARCH (ten-year stressed floor, floor 5%).
fn vol_scaled_venue() -> Venue {
    shipped_venue("examples/vol-scaled-venue.toml")
}

/// `lines` with the events `insert` gives for each line (its number and its event) put before
/// it, every sequence number renumbered.
fn inserting(
    lines: &[String],
    mut insert: impl FnMut(usize, &serde_json::Value) -> Vec<serde_json::Value>,
) -> Vec<String> {
    let mut out: Vec<serde_json::Value> = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        out.extend(insert(at, &value));
        out.push(value);
    }
    out.into_iter()
        .enumerate()
        .map(|(n, mut value)| {
            value["seq"] = (n + 1).into();
            value.to_string()
        })
        .collect()
}

/// `lines` with a `scenario_range` event inserted before each line `at` of `ranges`
/// (`(at, range in tenths of a percent, ETH rather than BTC)`), at that line's time, every
/// sequence number renumbered.
fn with_ranges(lines: &[String], ranges: &[(usize, u32, bool)]) -> Vec<String> {
    inserting(lines, |at, value| {
        ranges
            .iter()
            .filter(|(r, _, _)| *r == at)
            .map(|(_, range, eth)| {
                let range = f64::from(*range) / 1000.0;
                let (underlying, model, control) = if *eth {
                    ("ETH", "garch", "stressed_floor")
                } else {
                    ("BTC", "ewma", "buffer")
                };
                serde_json::json!({
                    "ts": value["ts"], "type": "scenario_range", "underlying": underlying,
                    "as_of": "2026-01-01", "model": model, "control": control,
                    "sigma_daily": (range / 3.0).to_string(), "base": range.to_string(),
                    "range": range.to_string(), "bound": "forecast",
                })
            })
            .collect()
    })
}

/// `lines` with a `mark_price` event inserted before each line `at` of `marks` (`(at, contract,
/// offset from its underlying's last index in tenths of a percent)`, contract 0 BTCUSDT, 1
/// ETHUSDT, 2 BTC-PERPETUAL; beyond +-50, +-5%, the engine clamps it), at that line's time,
/// every sequence number renumbered. A mark before its underlying's first index is left out.
fn with_marks(lines: &[String], marks: &[(usize, u8, i32)]) -> Vec<String> {
    let mut index: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    inserting(lines, |at, value| {
        let inserted = marks
            .iter()
            .filter(|(m, _, _)| *m == at)
            .filter_map(|(_, contract, tenths)| {
                let (instrument, underlying) = match contract {
                    0 => ("BTCUSDT", "BTC"),
                    1 => ("ETHUSDT", "ETH"),
                    _ => ("BTC-PERPETUAL", "BTC"),
                };
                let mark = index.get(underlying)? * (1.0 + f64::from(*tenths) / 1000.0);
                Some(serde_json::json!({
                    "ts": value["ts"], "type": "mark_price", "instrument": instrument,
                    "price": format!("{mark:.2}"),
                }))
            })
            .collect();
        if value["type"] == "index_price" {
            let price: f64 = value["price"].as_str().unwrap().parse().unwrap();
            index.insert(value["underlying"].as_str().unwrap().to_owned(), price);
        }
        inserted
    })
}

/// The first mark of a contract its holders valued at the index. Holders that value nothing
/// else at the index were banded on the contract's mark from the start, the index standing in
/// for it. Holders that value something else there (coins, or the opposite side of
/// `BTC_USDC-PERPETUAL`, awaiting its mark too) were banded on the index, where the slopes
/// offset, and on the ratio of the index to the contract's mark, 1 until it comes. Those whose
/// band the move from the index to the mark leaves are examined at once, the others are not
/// (all 40 hedged holders were, when they watched the mark); later marks and index updates
/// catch every state change at the same event as when every holder is examined.
#[test]
fn the_first_mark_of_a_crowded_contract_examines_the_holders_its_gap_can_change() {
    // The most leveraged shorts lose 2% of their notional at once: theirs are the bands the gap
    // leaves (and the longs' whose slack to the next state up is as thin); the low-leverage
    // holders' bands hold it. A ratio's band takes about a tenth of the slack while the mark is
    // awaited: the gap leaves a few more of the hedged ones.
    for (hedged, most) in [(false, 4), (true, 8)] {
        let mut stream = Timed::default();
        stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
        stream.open_btcusdt_crowd("h", hedged);
        let opened = stream.lines.len();
        // The first mark 2% above the index, then the mark and the index walk up 0.5% a step.
        stream.first_mark_walk("BTCUSDT", 61_200.0, 0.005);
        assert_crowded_first_mark(&stream.lines, opened, most, "BTCUSDT");
    }
}

/// Holders of BTCUSDT that also hold BTC, banded on the index and on the ratio of the index to
/// the contract's mark while it awaits its first mark. The first mark comes at the index (the
/// ratio stays 1: nobody is examined), then the index falls 0.05% a step and the mark 0.055%, so
/// that the ratio (0.005% a step) reaches the edge of its band (about a tenth of the slack)
/// about when the index reaches the edge of its own, whatever the holder's slack: a ratio band
/// that held more than its share misses a state (a ratio slope, or an index slope, taken 4
/// times too small fails here). Every state must be reached at the update that crosses it, as
/// when every holder is examined.
#[test]
fn hedged_holders_are_caught_as_the_index_and_the_mark_fall_apart_after_the_first_mark() {
    // Longs of 1 BTCUSDT at 100x on 0.002 BTC and 700 to 17,300 USDT.
    hedged_holders_fall_apart(false, "0.002", (700.0, 1.15), 120);
}

/// The same in portfolio mode: the scan values BTCUSDT at its mark, the index standing in until
/// it comes, so its requirement moves with the ratio as well as with the index. The first mark at
/// the index examines none of the 24 holders (all of them when portfolio accounts watched the
/// mark). The scan's bounds leave room: slopes 4 times too small on the ratio, in the equity or
/// in the requirement, still pass here (the proptests over every kind of account compare the
/// rest).
#[test]
fn portfolio_holders_are_caught_as_the_index_and_the_mark_fall_apart_after_the_first_mark() {
    // Longs of 1 BTCUSDT on 0.01 BTC and 9,000 to 27,000 USDT.
    hedged_holders_fall_apart(true, "0.01", (13_000.0, 1.04), 160);
}

/// 24 longs of 1 BTCUSDT (at 100x outside `portfolio` mode) on `coin` BTC and `first x
/// growth^n` USDT (`usdt`), opened while BTCUSDT awaits its mark; its first mark at the index,
/// then `steps` falls of the index by 0.05% and of the mark by 0.055%.
fn hedged_holders_fall_apart(portfolio: bool, coin: &str, usdt: (f64, f64), steps: i32) {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    let (first, growth) = usdt;
    for n in 0..24_i32 {
        let account = format!("e{n:02}");
        let collateral = first * growth.powi(n);
        for asset in [
            ("BTC", coin.to_owned()),
            ("USDT", format!("{collateral:.0}")),
        ] {
            stream.push(&format!(
                r#""type":"deposit","account":"{account}","asset":"{}","amount":"{}""#,
                asset.0, asset.1
            ));
        }
        if portfolio {
            stream.push(&format!(
                r#""type":"set_margin_mode","account":"{account}","mode":"portfolio""#
            ));
            stream.push(&format!(
                r#""type":"fill","account":"{account}","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000""#
            ));
        } else {
            stream.fill_at_100x(&account, "BTCUSDT", "buy", "1");
        }
    }
    let opened = stream.lines.len();
    stream.push(r#""type":"mark_price","instrument":"BTCUSDT","price":"60000""#);
    for step in 1..=steps {
        let index = 60_000.0 * (1.0 - 0.0005 * f64::from(step));
        let mark = 60_000.0 * (1.0 - 0.00055 * f64::from(step));
        stream.push(&format!(
            r#""type":"index_price","underlying":"BTC","price":"{index:.2}""#
        ));
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTCUSDT","price":"{mark:.2}""#
        ));
    }
    assert_eq!(
        examined_during(&stream.lines, opened..opened + 1),
        0,
        "the first mark at the index examined holders"
    );
    let actions = assert_same_actions(&stream.lines);
    assert_reached(
        &actions,
        &["margin_call", "reduce_only", "liquidating"],
        "the fall",
    );
}

/// The first mark at line `first_mark` (0-based) of `lines`, whose contract 40 accounts hold,
/// examines between 1 and `most` of them; the walk after it liquidates, with the same actions
/// as when every holder is examined.
fn assert_crowded_first_mark(lines: &[String], first_mark: usize, most: u64, contract: &str) {
    let examined = examined_during(lines, first_mark..first_mark + 1);
    assert!(
        (1..=most).contains(&examined),
        "the first mark of {contract} examined {examined} of 40 holders"
    );
    let actions = assert_same_actions(lines);
    assert!(
        actions
            .iter()
            .any(|a| a.contains(r#""type":"liquidation""#)),
        "precondition: the walk after the first mark of {contract} liquidates: {actions:?}"
    );
}

/// A hedged holder at a contract's first mark: long 10 BTCUSDT against short 10
/// BTC_USDC-PERPETUAL with 20,000 USDT, both valued at the BTC index until BTCUSDT has a mark.
/// Their equity slopes cancel on the index, so the band there is as wide as the requirement
/// alone allows (2.6% either side once the index has moved it); valued at its mark, BTCUSDT
/// moves alone. A first mark 3% below the index takes 18,270 USDT: the account must change
/// state at that mark, as when every holder is examined (a holder that took its index band as
/// its band on the mark was not examined, and kept its state).
#[test]
fn a_hedged_holder_is_examined_at_its_contracts_first_mark() {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    stream.push(r#""type":"deposit","account":"hedge","asset":"USDT","amount":"20000""#);
    for (instrument, side) in [("BTCUSDT", "buy"), ("BTC_USDC-PERPETUAL", "sell")] {
        stream.fill_at_100x("hedge", instrument, side, "10");
    }
    // The index leaves the band of the first fill's account: it is banded again, hedged.
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60900""#);
    stream.push(r#""type":"mark_price","instrument":"BTCUSDT","price":"59073""#);
    let mut opened = Engine::new(venue(), EngineConfig::default());
    for (number, line) in stream.lines.iter().enumerate().take(stream.lines.len() - 1) {
        let effects = opened.apply(&parse_line("bands", number + 1, line).unwrap());
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
            "precondition: {line} is taken"
        );
    }
    let actions = assert_same_actions(&stream.lines);
    assert!(
        actions
            .iter()
            .any(|a| a.contains(r#""type":"state_changed","account":"hedge""#)),
        "precondition: the first mark changes the hedged account's state: {actions:?}"
    );
}

/// The first mark of a crowded inverse contract, the perpetual or a quarterly future: holders on
/// BTC collateral were banded from the start on the index and on the ratio of the index to the
/// contract's mark,
/// 1 until the mark comes. A first mark 0.5% below the index moves the ratio by 0.5%: only the
/// holders whose ratio band that leaves are examined (the thinnest longs and shorts), not the
/// others; later marks and index updates catch every state change at the same event as when
/// every holder is examined.
#[test]
fn the_first_mark_of_a_crowded_inverse_contract_examines_the_holders_its_gap_can_change() {
    for contract in ["BTC-PERPETUAL", "BTC-27MAR26"] {
        crowded_inverse_first_mark(contract);
    }
}

fn crowded_inverse_first_mark(contract: &str) {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    // Forty longs and shorts of 60,000 USD (one coin at the index), with 0.025 to 1.73 BTC
    // (40x to 0.6x).
    stream.open_pairs("v", 40, (0.025, 1.25), contract);
    let opened = stream.lines.len();
    // The first mark 0.5% below the index, then the mark and the index walk down 0.5% a step.
    stream.first_mark_walk(contract, 59_700.0, -0.005);
    // While the contract awaits its first mark, the ratio's band spans the same fraction of its
    // range (5.3%, the mark band) as the index's of half the index, about a tenth of the slack:
    // the gap leaves the bands of the holders at 14x and more only.
    assert_crowded_first_mark(&stream.lines, opened, 12, contract);
}

/// Accounts `(BTC in thousandths, size of the inverse `contract` in hundreds of USD, USDT)`
/// opened at 60,000 on the index alone, the index moved by `before` tenths of a percent, then the
/// contract's first mark `gap` tenths of a percent from the index (clamped at 5%), then the
/// mark and the index walked by `path` (tenths of a percent each, the index every other step).
fn inverse_first_mark_events(
    contract: &str,
    accounts: &[(u32, i32, u32)],
    before: i32,
    gap: i32,
    path: &[i32],
) -> Vec<String> {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    for (n, (thousandths, hundreds, usdt)) in accounts.iter().enumerate() {
        if *hundreds == 0 {
            continue;
        }
        let account = format!("w{n}");
        let coins = f64::from(*thousandths) / 1000.0;
        stream.push(&format!(
            r#""type":"deposit","account":"{account}","asset":"BTC","amount":"{coins:.3}""#
        ));
        if *usdt > 0 {
            stream.push(&format!(
                r#""type":"deposit","account":"{account}","asset":"USDT","amount":"{usdt}""#
            ));
        }
        let side = if *hundreds > 0 { "buy" } else { "sell" };
        stream.push(&format!(
            r#""type":"fill","account":"{account}","instrument":"{contract}","side":"{side}","size":"{}","price":"60000""#,
            hundreds.unsigned_abs() * 100
        ));
    }
    stream.first_mark_after(contract, before, gap, path);
    stream.lines
}

/// Accounts `(USDT, BTCUSDT size in thousandths, leverage, hedge in percent, BTC in
/// thousandths)` opened at 60,000 on the index alone, the hedge an opposite BTC_USDC-PERPETUAL
/// position of that share of the BTCUSDT one (negative: the same side) at the same leverage, the
/// index moved by `before` tenths of a percent, then BTCUSDT's first mark `gap` tenths of a
/// percent from the index (clamped at 5%), then the mark and the index walked by `path` (tenths
/// of a percent each, the index every other step).
fn first_mark_events(
    accounts: &[(u32, i32, u32, i32, u32)],
    before: i32,
    gap: i32,
    path: &[i32],
) -> Vec<String> {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    for (n, (usdt, thousandths, leverage, hedge, coin)) in accounts.iter().enumerate() {
        if *thousandths == 0 {
            continue;
        }
        stream.push(&format!(
            r#""type":"deposit","account":"f{n}","asset":"USDT","amount":"{usdt}""#
        ));
        if *coin > 0 {
            stream.push(&format!(
                r#""type":"deposit","account":"f{n}","asset":"BTC","amount":"{}""#,
                f64::from(*coin) / 1000.0
            ));
        }
        let hedged = -thousandths * hedge / 100;
        for (instrument, thousandths) in [("BTCUSDT", *thousandths), ("BTC_USDC-PERPETUAL", hedged)]
        {
            if thousandths == 0 {
                continue;
            }
            let side = if thousandths > 0 { "buy" } else { "sell" };
            let size = f64::from(thousandths.unsigned_abs()) / 1000.0;
            stream.push(&format!(
                r#""type":"set_leverage","account":"f{n}","instrument":"{instrument}","leverage":"{leverage}""#
            ));
            stream.push(&format!(
                r#""type":"fill","account":"f{n}","instrument":"{instrument}","side":"{side}","size":"{size}","price":"60000""#
            ));
        }
    }
    stream.first_mark_after("BTCUSDT", before, gap, path);
    stream.lines
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Leveraged holders of a contract valued at the index, some hedged (or doubled) by
    /// another contract on the same index or holding BTC, then its first mark up to 5% away:
    /// the holders whose band (on the mark, or on the ratio of the index to it) the gap leaves
    /// are examined at once, the others keep their bands; every state change, margin call,
    /// liquidation and ADL then comes at the same event as when every holder is examined.
    #[test]
    fn a_first_mark_far_from_the_index_acts_as_examining_every_holder(
        accounts in proptest::collection::vec(
            (
                300u32..4_000,
                -200i32..200,
                20u32..100,
                prop_oneof![Just(0i32), Just(100i32), -100i32..=100],
                prop_oneof![Just(0u32), 1u32..100],
            ),
            1..16,
        ),
        before in -20i32..20,
        gap in -60i32..60,
        path in proptest::collection::vec(-10i32..10, 0..40),
    ) {
        assert_same_actions(&first_mark_events(&accounts, before, gap, &path));
    }

    /// Holders of an inverse contract on BTC, the perpetual or a quarterly future (some also
    /// holding USDT), short ones hedged by the coins they hold or not, then the contract's
    /// first mark up to 5% from the index: every state change, margin call, liquidation and
    /// ADL comes at the same event as when every holder is examined.
    #[test]
    fn a_first_inverse_mark_far_from_the_index_acts_as_examining_every_holder(
        future in any::<bool>(),
        accounts in proptest::collection::vec(
            (10u32..2_000, -300i32..300, prop_oneof![Just(0u32), 100u32..3_000]),
            1..16,
        ),
        before in -20i32..20,
        gap in -60i32..60,
        path in proptest::collection::vec(-10i32..10, 0..40),
    ) {
        let contract = if future { "BTC-27MAR26" } else { "BTC-PERPETUAL" };
        assert_same_actions(&inverse_first_mark_events(contract, &accounts, before, gap, &path));
    }
}

/// A portfolio short of 1 BTCUSDT with 14,000 USDT while BTC's range steps up from 4% at every
/// tenth update, the index still: each state is reached at the range event that crosses it, as
/// when every holder is examined.
#[test]
fn a_rising_range_moves_a_portfolio_account_at_the_event_that_raises_it() {
    let accounts = [(14_000, 0, -1_000, 0, true)];
    let lines = mixed_events(&accounts, &[0; 80], &[]);
    let ranges: Vec<(usize, u32, bool)> = (0..8)
        .map(|n| (8 + 10 * n, 40 + 25 * n as u32, false))
        .collect();
    let actions = assert_same_actions_on(&vol_scaled_venue(), &with_ranges(&lines, &ranges));
    assert_reached(
        &actions,
        &["margin_call", "reduce_only"],
        "the rising range",
    );
}

/// The case that showed the bands unsound for portfolio mode: a short BTCUSDT in portfolio mode,
/// BTC rising 0.1% per update. Its requirement moves with the worst scenario of the grid, not
/// with a maintenance rate of the standard rule: it must reach margin call, reduce-only and
/// liquidation at the same update as an engine that examines every holder.
#[test]
fn a_portfolio_short_reaches_each_state_at_the_update_that_crosses_it() {
    let accounts = [(14_000, 0, -1_000, 0, true)];
    let lines = mixed_events(&accounts, &[1; 400], &[]);
    let actions = assert_same_actions(&lines);
    for state in ["margin_call", "reduce_only", "liquidating"] {
        assert!(
            actions
                .iter()
                .any(|a| a.contains("state_changed") && a.contains(&format!(r#""to":"{state}""#))),
            "precondition: the rise takes the account to {state}: {actions:?}"
        );
    }
}

/// Short options in standard margin: their requirement is not linear in the price (gamma) and
/// moves with volatility (vega); the account acts as when every holder is examined.
#[test]
fn short_options_are_caught_on_a_rally_and_a_volatility_rise() {
    let accounts = [
        (19_500, 0, 0, 1, false),
        (9_000, 0, 0, 1, true),
        (500, 15, 0, 4, false),
        (500, 25, 0, 4, true),
    ];
    let mut path = vec![2; 60];
    path.extend([-3; 80]);
    let lines = mixed_events(&accounts, &path, &[(30, 90), (90, 120)]);
    let actions = assert_same_actions(&lines);
    assert!(
        actions.iter().any(|a| a.contains("state_changed")),
        "precondition: the path moves an option account between states: {actions:?}"
    );
}

/// Short-dated options held while hours pass between updates: time alone moves their value and
/// requirement (theta), so the bands that spare their holders an examination must expire; the
/// run goes past the options' expiry.
#[test]
fn options_decaying_over_hours_are_caught_as_when_every_holder_is_examined() {
    // Long puts whose premium carries the equity of a leveraged long perpetual, and short
    // calls that theta makes healthier.
    let accounts = [
        (0, 33, 5_000, 6, false),
        (300, 33, 5_000, 6, false),
        (600, 34, 5_000, 6, false),
        (2_600, 0, 0, 5, false),
        (20_000, 0, 300, 5, false),
    ];
    let path: Vec<i32> = (0..200)
        .map(|step| if step % 2 == 0 { 1 } else { -1 })
        .collect();
    let lines = mixed_events_timed(&accounts, &path, &[], 3_600, 1_000);
    let actions = assert_same_actions(&lines);
    assert!(
        actions.iter().any(|a| a.contains("state_changed")),
        "precondition: time alone moves an option account between states: {actions:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random populations of option accounts over hours and days: the banded engine takes
    /// every state change at the same event as the exhaustive one, though no price moves
    /// between some of them.
    #[test]
    fn bands_expire_as_options_decay(
        accounts in proptest::collection::vec(
            (500u32..30_000, 0u32..60, -400i32..400, 0u8..9, any::<bool>()),
            1..10,
        ),
        path in proptest::collection::vec(-4i32..4, 1..120),
        seconds in 60i64..14_400,
    ) {
        let lines = mixed_events_timed(&accounts, &path, &[], seconds, 1_000);
        assert_same_actions(&lines);
    }

    /// Random populations of portfolio-mode, option, inverse and multi-coin accounts: the banded
    /// engine takes every state change, margin call, liquidation and ADL at the same event as
    /// the exhaustive one.
    #[test]
    fn bands_act_exactly_as_examining_every_holder_for_every_kind_of_account(
        accounts in proptest::collection::vec(
            (500u32..30_000, 0u32..60, -400i32..400, 0u8..9, any::<bool>()),
            1..10,
        ),
        path in proptest::collection::vec(-8i32..8, 1..120),
        vols in proptest::collection::vec((0usize..120, 30u32..150), 0..4),
    ) {
        let lines = mixed_events(&accounts, &path, &vols);
        assert_same_actions(&lines);
    }

    /// The same populations on a venue that scales BTC's and ETH's ranges, the ranges moving
    /// up and down between price updates: every account a range changes is re-examined at that
    /// event, as when every holder is examined.
    #[test]
    fn bands_act_exactly_as_examining_every_holder_when_ranges_move(
        accounts in proptest::collection::vec(
            (500u32..30_000, 0u32..60, -400i32..400, 0u8..9, any::<bool>()),
            1..10,
        ),
        path in proptest::collection::vec(-8i32..8, 1..120),
        ranges in proptest::collection::vec((4usize..130, 50u32..300, any::<bool>()), 0..6),
    ) {
        let lines = mixed_events(&accounts, &path, &[]);
        assert_same_actions_on(&vol_scaled_venue(), &with_ranges(&lines, &ranges));
    }

    /// The same populations with marks given at random moments, the first of each contract
    /// often after its holders opened (valued at the index until then): every state change,
    /// margin call, liquidation and ADL at the same event as when every holder is examined.
    #[test]
    fn first_and_later_marks_act_exactly_as_examining_every_holder_for_every_kind_of_account(
        // Less collateral than the populations above: a first mark up to 5% from the index
        // must be able to change a state.
        accounts in proptest::collection::vec(
            (500u32..6_000, 0u32..60, -400i32..400, 0u8..9, any::<bool>()),
            1..10,
        ),
        path in proptest::collection::vec(-8i32..8, 1..120),
        marks in proptest::collection::vec((4usize..150, 0u8..3, -70i32..70), 0..24),
    ) {
        let lines = mixed_events(&accounts, &path, &[]);
        assert_same_actions(&with_marks(&lines, &marks));
    }
}

/// Portfolio-mode accounts holding short-dated options while hours pass: the scan's option legs
/// and the options' values decay with time, the charges on the net delta drift with it; the
/// portfolio bands must expire in time to catch each margin call at the update that brings it.
#[test]
fn portfolio_options_decaying_over_hours_are_caught_as_when_every_holder_is_examined() {
    let accounts = [
        (0, 33, 1_000, 6, true),
        (2_000, 33, 2_000, 6, true),
        (4_000, 33, 2_000, 6, true),
        (2_000, 33, -1_000, 5, true),
        (4_000, 33, -1_000, 5, true),
    ];
    let path: Vec<i32> = (0..200)
        .map(|step| if step % 2 == 0 { 1 } else { -1 })
        .collect();
    let lines = mixed_events_timed(&accounts, &path, &[], 3_600, 100_000);
    let actions = assert_same_actions(&lines);
    let calls = actions.iter().filter(|a| a.contains("margin_call")).count();
    assert!(
        calls >= 5,
        "precondition: time takes portfolio accounts in and out of margin call: {actions:?}"
    );
}

/// Cross inverse longs on thin coin collateral while their contract's mark slides below an
/// unmoving index: the mark alone moves their equity (`N / M` coins) and requirement, so they
/// are banded on it and must reach each state at the mark update that crosses it.
#[test]
fn cross_inverse_longs_are_caught_as_their_mark_slides() {
    let mut stream = Timed::marked_at_60000();
    for (index, coins) in ["0.056", "0.058", "0.06", "0.062", "0.065", "0.07"]
        .iter()
        .enumerate()
    {
        stream.open(
            &format!("i{index}"),
            ("BTC", coins),
            ("BTC-PERPETUAL", "buy", "60000"),
        );
    }
    for step in 1..=48_i64 {
        let mark = 60_000 - step * 60;
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"{mark}""#
        ));
        if step % 8 == 0 {
            stream.push(r#""type":"index_price","underlying":"BTC","price":"60000.5""#);
            stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
        }
    }
    let actions = assert_same_actions(&stream.lines);
    assert_reached(&actions, &["margin_call", "reduce_only"], "the slide");
}

/// Cross inverse longs and shorts on coin collateral while the index and their contract's
/// mark fall apart: each holder's slack is shared between its index and the ratio of the index
/// to the mark, and both move toward the longs' losses here. The index falls 0.1% a step and
/// the mark 0.2% (clamped at 5% below the index), so that the ratio (up 0.1% a step, worth 60
/// USD a step on 60,000 USD against the index's 62) reaches the edge of its band (its share of
/// the slack, about half) at about the step the index reaches the edge of its own, whatever the
/// holder's slack: a ratio band that held more than its share then misses a state (a ratio
/// slope taken 4 times too small fails here). Every state must be reached at the update that
/// crosses it, as when every holder is examined.
#[test]
fn inverse_holders_are_caught_as_the_index_and_the_mark_move_together_and_apart() {
    let mut stream = Timed::marked_at_60000();
    stream.open_pairs("t", 24, (0.04, 1.15), "BTC-PERPETUAL");
    for step in 1..=90_i32 {
        let index = 60_000.0 * (1.0 - 0.001 * f64::from(step));
        let mark = 60_000.0 * (1.0 - 0.002 * f64::from(step));
        stream.push(&format!(
            r#""type":"index_price","underlying":"BTC","price":"{index:.2}""#
        ));
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"{mark:.2}""#
        ));
    }
    let actions = assert_same_actions(&stream.lines);
    assert_reached(
        &actions,
        &["margin_call", "reduce_only", "liquidating"],
        "the fall",
    );
}

/// Bands sized by what moves each pool. An isolated BTCUSDT long with little cash left in its
/// cross pool (whose equity the position does not move: it used to take the cross pool's
/// 500 USDT of slack, a band of 0.4%), and a cross inverse long on thin coin collateral banded on
/// its mark and its index (whose slopes were bounded over bands of half the price, eight times
/// the slope at the price, a band of about 0.5%; over bands of an eighth, 1.2%). Marks wiggling
/// 0.35% either way (0.7% from one extreme to the other) examine neither (40 examinations
/// before); a slide then takes both to liquidation, each at the update that crosses it, as an
/// engine examining every holder does.
#[test]
fn marks_wiggling_inside_each_pools_own_slack_examine_nobody() {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    stream.push(r#""type":"mark_price","instrument":"BTCUSDT","price":"60000""#);
    stream.push(r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"60000""#);
    stream.open("iso", ("USDT", "12500"), ("BTCUSDT", "buy", "2"));
    stream.push(
        r#""type":"set_isolated_margin","account":"iso","instrument":"BTCUSDT","amount":"12000""#,
    );
    stream.open("inv", ("BTC", "0.03"), ("BTC-PERPETUAL", "buy", "30000"));
    let opened = stream.lines.len();
    let marks = |stream: &mut Timed, btcusdt: f64, perpetual: f64| {
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTCUSDT","price":"{btcusdt:.2}""#
        ));
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"{perpetual:.2}""#
        ));
    };
    for step in 0..40 {
        let factor = if step % 2 == 0 { 1.0035 } else { 0.9965 };
        marks(&mut stream, 60_000.0 * factor, 60_000.0 * (2.0 - factor));
    }
    let wiggled = stream.lines.len();
    for step in 1..=100_i32 {
        let price = 60_000.0 * (1.0 - 0.004 * f64::from(step));
        stream.push(&format!(
            r#""type":"index_price","underlying":"BTC","price":"{price:.2}""#
        ));
        marks(&mut stream, price, price);
    }
    let mut banded = Engine::new(venue(), EngineConfig::default());
    let mut examined_in_wiggle = 0;
    for (number, line) in stream.lines.iter().enumerate() {
        let before = banded.evaluations();
        banded.apply(&parse_line("bands", number + 1, line).unwrap());
        let after = banded.evaluations();
        if (opened..wiggled).contains(&number) {
            examined_in_wiggle += after.since(before);
        }
    }
    assert_eq!(
        examined_in_wiggle, 0,
        "a wiggle within the slack examined an account"
    );
    let actions = assert_same_actions(&stream.lines);
    for account in ["iso", "inv"] {
        assert!(
            actions.iter().any(|a| a.contains(r#""type":"liquidation""#)
                && a.contains(&format!(r#""account":"{account}""#))),
            "precondition: the slide liquidates {account}: {actions:?}"
        );
    }
}

/// Smiles re-quoted up and down: an option holder is examined when today's smiles have moved
/// from those it was last examined at by more than its tolerance, not when the re-quotes' sizes
/// add up to it. One point up and down 200 times (400 points of moves, never more than one
/// from where they started) never examine a short put whose tolerance is about 1.5 points (a
/// 30-point rise moves it), and the banded engine acts as the exhaustive one throughout.
#[test]
fn smiles_requoted_up_and_down_examine_no_holder_they_cannot_change() {
    let accounts = [(30_000, 0, 0, 2, false)];
    let mut vols: Vec<(usize, u32)> = (0..400)
        .map(|step| (step, if step % 2 == 0 { 61 } else { 60 }))
        .collect();
    vols.push((400, 90));
    let lines = mixed_events(&accounts, &[0; 401], &vols);
    let actions = assert_same_actions(&lines);
    assert!(
        actions.iter().any(|a| a.contains("state_changed")),
        "precondition: the 30-point rise moves the account: {actions:?}"
    );
    let mut engine = Engine::new(venue(), EngineConfig::default());
    let mut examined_in_requotes = 0;
    for (number, line) in lines.iter().enumerate() {
        let envelope = parse_line("bands", number + 1, line).unwrap();
        let before = engine.evaluations();
        engine.apply(&envelope);
        let after = engine.evaluations();
        // The opening smiles (the first four lines) and the rise apart.
        if number >= 4 && line.contains("vol_surface") && !line.contains(r#""vols":[1.0200"#) {
            examined_in_requotes += after.since(before);
        }
    }
    assert_eq!(
        examined_in_requotes, 0,
        "re-quotes within the holder's tolerance examined it"
    );
}

/// Many option holders while the smile walks at random for 600 re-quotes and the index with
/// it: holders are registered against many snapshots of the smiles, the oldest merged into
/// newer ones as their number passes the limit, and every action still comes at the update an
/// engine examining every holder takes it.
#[test]
fn option_holders_follow_a_smile_walking_at_random() {
    let accounts: Vec<(u32, u32, i32, u8, bool)> = (0..24)
        .map(|i: u32| {
            let kind = [1, 2, 4, 5][(i % 4) as usize];
            let btc = if kind == 4 { 15 + i % 5 * 5 } else { 0 };
            (12_000 + i * 1_500, btc, 0, kind, i % 6 == 5)
        })
        .collect();
    // A fixed pseudo-random walk (a 64-bit LCG): at-the-money between 40 and 90 points.
    let mut state: u64 = 0x5eed;
    let mut draw = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % 5
    };
    let mut atm: u32 = 60;
    let mut path = Vec::new();
    let mut vols = Vec::new();
    for step in 0..600 {
        path.push(i32::try_from(draw()).unwrap() - 2);
        atm = (atm + u32::try_from(draw()).unwrap())
            .saturating_sub(2)
            .clamp(40, 90);
        vols.push((step, atm));
    }
    let lines = mixed_events(&accounts, &path, &vols);
    let actions = assert_same_actions(&lines);
    assert!(
        actions.iter().any(|a| a.contains("state_changed")),
        "precondition: the walk moves some account between states: {actions:?}"
    );
}

/// A short inverse perpetual hedged by its collateral (its equity in USD stands still) under a
/// size-linear rule whose rate grows fast with the size in coin (`k` = 5% per BTC, a
/// thousand times Deribit's, in an edited default venue): as the index falls the size in coin
/// `N / S` grows, and with it the requirement in USD (`k q^2` per dollar). Only that term
/// moves the account toward its thresholds, and the bands must see it coming (here the
/// collateral's and the position's own coins, which the bands add up without netting, already
/// bound it: the test holds the path sound, it does not isolate the term).
#[test]
fn a_hedged_inverse_short_is_caught_as_its_size_in_coin_grows() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let rule = "[margin_rules.deribit_btc_inverse]";
    let at = text.find(rule).unwrap();
    let edited = format!(
        "{}{}",
        &text[..at],
        text[at..].replacen(
            r#"rate_per_unit = "0.00005""#,
            r#"rate_per_unit = "0.05""#,
            1
        )
    );
    let venue = Venue::from_toml(path, &edited).unwrap();
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    for (index, coins) in ["10", "10.5", "11"].iter().enumerate() {
        stream.open(
            &format!("h{index}"),
            ("BTC", coins),
            ("BTC-PERPETUAL", "sell", "600000"),
        );
    }
    stream.walk_btc(std::iter::repeat_n(0.999, 600));
    let actions = assert_same_actions_on(&venue, &stream.lines);
    assert_reached(&actions, &["margin_call", "reduce_only"], "the fall");
}

/// Cross inverse perpetuals on coin collateral, priced by the index alone: a long's equity in
/// USD moves by `C + N / E` coins per dollar, a short's by `C - N / E` (its collateral hedged
/// by the position). Longs slide into margin call and beyond on the way down, shorts on the
/// way back up, each at the update an engine examining every holder acts on.
#[test]
fn cross_inverse_perpetuals_on_the_index_are_caught_both_ways() {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    let accounts = [
        ("0.08", "buy", "60000"),
        ("0.1", "buy", "60000"),
        ("0.14", "buy", "60000"),
        ("0.03", "sell", "60000"),
        ("0.04", "sell", "60000"),
        ("1", "sell", "60000"),
        ("0.05", "sell", "30000"),
    ];
    for (index, (coins, side, size)) in accounts.iter().enumerate() {
        stream.open(
            &format!("v{index}"),
            ("BTC", coins),
            ("BTC-PERPETUAL", side, size),
        );
    }
    stream.walk_btc(std::iter::repeat_n(0.999, 300).chain(std::iter::repeat_n(1.0015, 600)));
    let actions = assert_same_actions(&stream.lines);
    assert_moved(&actions, &["v0", "v3"]);
}

/// Linear perpetuals under Deribit's size-linear rule (`BTC_USDC-PERPETUAL`: the rate grows
/// with the size in coin, fixed for a linear contract), longs and shorts of several sizes on
/// USDC: the requirement moves by exactly its rate times the size, and every state change
/// comes at the update an engine examining every holder takes it, down and back up.
#[test]
fn size_linear_perpetuals_are_caught_both_ways() {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    let accounts = [
        ("6000", "buy", "1"),
        ("9000", "buy", "1.5"),
        ("60000", "buy", "12"),
        ("5000", "sell", "1"),
        ("70000", "sell", "15"),
    ];
    for (index, (usdc, side, size)) in accounts.iter().enumerate() {
        stream.open(
            &format!("u{index}"),
            ("USDC", usdc),
            ("BTC_USDC-PERPETUAL", side, size),
        );
    }
    stream.walk_btc(std::iter::repeat_n(0.999, 150).chain(std::iter::repeat_n(1.0015, 250)));
    let actions = assert_same_actions(&stream.lines);
    assert_moved(&actions, &["u0", "u3"]);
}

/// Portfolio accounts short a BTC strangle (1 call, 1.9 puts) and long ETH: BTC's worst scenario
/// changes side (+16% vol up to -16% vol up, near 59,000) as BTC walks down and back, and with
/// it the sign of the BTC-ETH correlation term in the cross-underlying offset, so the
/// requirement jumps at the update that turns it. Bands that count on BTC's direction must end
/// where the gap between its worst rising and worst falling scenario can close: every state
/// change at the same update as when every holder is examined.
#[test]
fn a_flip_of_the_offsets_direction_is_caught_at_the_update_that_turns_it() {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    stream.push(r#""type":"index_price","underlying":"ETH","price":"3000""#);
    stream.push(
        r#""type":"vol_surface","underlying":"BTC","expiry":"27DEC26","strikes":[30000,45000,60000,75000,90000],"vols":[0.72,0.64,0.60,0.63,0.68]"#,
    );
    let accounts: Vec<String> = (0..24).map(|index| format!("f{index}")).collect();
    for (index, account) in accounts.iter().enumerate() {
        let collateral = 16_000 + 1_500 * index;
        stream.push(&format!(
            r#""type":"deposit","account":"{account}","asset":"USDT","amount":"{collateral}""#
        ));
        stream.push(&format!(
            r#""type":"set_margin_mode","account":"{account}","mode":"portfolio""#
        ));
        for (instrument, side, size, price) in [
            ("BTC_USDC-27DEC26-65000-C", "sell", "1", "13000"),
            ("BTC_USDC-27DEC26-55000-P", "sell", "1.9", "12000"),
            ("ETHUSDT", "buy", "20", "3000"),
        ] {
            stream.push(&format!(
                r#""type":"fill","account":"{account}","instrument":"{instrument}","side":"{side}","size":"{size}","price":"{price}""#
            ));
        }
    }
    // Down to 57,000, up to 63,000 and back, by 0.05% per update: the flip jumps the
    // maintenance margin of every account by about a third (18,800 to 25,500 USDT).
    let down = std::iter::repeat_n(0.9995, 100);
    let up = std::iter::repeat_n(1.0005, 200);
    let back = std::iter::repeat_n(0.9995, 100);
    stream.walk_btc(down.chain(up).chain(back));
    let actions = assert_same_actions(&stream.lines);
    let changes = actions
        .iter()
        .filter(|a| a.contains("state_changed"))
        .count();
    assert!(
        changes >= 4,
        "precondition: the walk moves accounts between states: {actions:?}"
    );
    // The bands do hold directions here (checked to fail, with the gap's check removed, at
    // the flip): with the jump always reserved the banded engine made 6,831 evaluations; with
    // the equity's slopes summed by size (the short call and put offsetting nothing), 5,516.
    let mut banded = Engine::new(venue(), EngineConfig::default());
    for (number, line) in stream.lines.iter().enumerate() {
        banded.apply(&parse_line("bands", number + 1, line).unwrap());
    }
    let evaluations = banded.evaluations();
    assert_eq!(evaluations.prepared + evaluations.reported, 5_410);
}

/// A top-up held short by its per-event cap leaves the account below its trigger: the next
/// update of what it holds tops it up again, whatever that update's size, as when every holder
/// is examined (a band between the levels around its health missed these, a proptest case).
/// 3,000 USDT on 1 BTCUSDT bought at 60,000 (maintenance 0.5%: 300, health 10); BTC to 58,000:
/// equity 1,000, health 3.45, under the trigger of 5; each update then tops up at most 100,
/// and small index moves (0.01%) follow: five top-ups take the equity to 1,500 against a
/// maintenance margin of 290 (health 5.17), over the trigger.
#[test]
fn an_account_its_per_event_cap_leaves_below_its_trigger_is_topped_up_at_each_update() {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    stream.open("capped", ("USDT", "3000"), ("BTCUSDT", "buy", "1"));
    stream.push(
        r#""type":"set_auto_top_up","account":"capped","source":"external","trigger_health":"5","target_health":"10","per_event_cap":"100","per_day_cap":"1000""#,
    );
    for step in 0..15_u32 {
        let price = 58_000.0 + f64::from(step % 2) * 5.8;
        stream.push(&format!(
            r#""type":"index_price","underlying":"BTC","price":"{price:.2}""#
        ));
    }
    assert_same_actions(&stream.lines);
    let mut exhaustive = Engine::new(
        venue(),
        EngineConfig {
            exhaustive_monitoring: true,
            ..EngineConfig::default()
        },
    );
    let top_ups: Vec<String> = stream
        .lines
        .iter()
        .enumerate()
        .flat_map(|(number, line)| {
            exhaustive.apply(&parse_line("bands", number + 1, line).unwrap())
        })
        .filter(|effect| matches!(effect, Effect::TransferApplied { .. }))
        .map(|effect| serde_json::to_string(&effect).unwrap())
        .filter(|effect| effect.contains("top_up"))
        .collect();
    // Precondition: one top-up per update while under the trigger.
    assert_eq!(top_ups.len(), 5, "{top_ups:#?}");
}

/// A short call held against a long perpetual (a covered call of half a coin): the two values
/// move in opposite directions, so the account's equity moves by at most half a coin per dollar
/// of BTC (the call's delta lies in [-1, 0], the perpetual's is 0.5), not the 1.5 a sum of
/// sizes gives. BTC wiggling 2.4% from one extreme to the other examines it at most twice (34
/// times with slopes summed by size); a rally then takes it through its states, each at the
/// update that crosses it, as an engine examining every holder does.
#[test]
fn a_call_covered_by_a_perpetual_is_banded_on_its_net_slope() {
    let accounts = [(30_000, 0, 500, 1, false)];
    let mut path: Vec<i32> = (0..120)
        .map(|step| if (step / 3) % 2 == 0 { 12 } else { -12 })
        .collect();
    let wiggled = path.len();
    path.extend([10; 150]);
    let lines = mixed_events(&accounts, &path, &[]);
    let actions = assert_same_actions(&lines);
    assert_reached(&actions, &["margin_call", "liquidating"], "the rally");
    let mut engine = Engine::new(venue(), EngineConfig::default());
    // The four market lines and the account's three (deposit and two fills) first.
    let opened = 7;
    let mut examined_in_wiggle = 0;
    for (number, line) in lines.iter().enumerate() {
        let envelope = parse_line("bands", number + 1, line).unwrap();
        let before = engine.evaluations();
        engine.apply(&envelope);
        if (opened..opened + wiggled).contains(&number) {
            examined_in_wiggle += engine.evaluations().since(before);
        }
    }
    assert!(
        examined_in_wiggle <= 2,
        "the wiggle examined the hedged account {examined_in_wiggle} times"
    );
}

/// The record of examined accounts a benchmark reads (`Engine::record_examined`): off, it
/// keeps nothing; on, each examination names its account, in order. A fall of 8% in ten steps
/// examines the account at 15x (its band is narrower) and never the one at 2x; a deposit
/// examines its account.
#[test]
fn the_record_of_examinations_names_each_account_examined() {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    stream.open("near", ("USDT", "4000"), ("BTCUSDT", "buy", "1"));
    stream.open("far", ("USDT", "30000"), ("BTCUSDT", "buy", "1"));
    stream.walk_btc([0.992; 10]);
    stream.push(r#""type":"deposit","account":"far","asset":"USDT","amount":"10""#);
    let mut engine = Engine::new(venue(), EngineConfig::default());
    let opened = 5;
    let mut recorded = Vec::new();
    for (number, line) in stream.lines.iter().enumerate() {
        engine.record_examined(number >= opened);
        engine.apply(&parse_line("bands", number + 1, line).unwrap());
        recorded.push(engine.take_examined());
    }
    assert!(recorded[..opened].iter().all(Vec::is_empty), "{recorded:?}");
    let fall: Vec<_> = recorded[opened..opened + 10].concat();
    assert!(
        !fall.is_empty() && fall.iter().all(|id| id == "near"),
        "{fall:?}"
    );
    assert_eq!(recorded[opened + 10], ["far"], "the deposit");
}

/// Binance COIN-M as shipped: settled in BTC, which the market prices (no peg), so every report
/// is in a coin whose price moves with the index the bands watch.
fn coin_m_venue() -> Venue {
    shipped_venue("venues/binance-coinm.toml")
}

/// Events on the coin-settled venue: each account `(BTC in hundredths, BTCUSD_PERP contracts of
/// 100 USD, ETH in tenths, ETHUSD_PERP contracts of 10 USD, isolated?)` deposits its coins and
/// fills both contracts at 60,000 and 3,000 (signed: long or short), the BTC one isolated with
/// half a tenth of a coin when asked; then `path` moves BTC by 0.1% steps (ETH the other way on
/// every third), each step followed by BTCUSD_PERP's mark at the offset `marks` gives it
/// (tenths of a percent), else at the index.
fn coin_settled_events(
    accounts: &[(u32, i32, u32, i32, bool)],
    path: &[i32],
    marks: &[(usize, i32)],
) -> Vec<String> {
    let mut stream = Timed::default();
    stream.push(r#""type":"index_price","underlying":"BTC","price":"60000""#);
    stream.push(r#""type":"index_price","underlying":"ETH","price":"3000""#);
    stream.push(r#""type":"mark_price","instrument":"BTCUSD_PERP","price":"60000""#);
    for (n, (btc, btc_contracts, eth, eth_contracts, isolated)) in accounts.iter().enumerate() {
        let account = format!("c{n}");
        stream.push(&format!(
            r#""type":"deposit","account":"{account}","asset":"BTC","amount":"{}""#,
            f64::from(*btc) / 100.0
        ));
        if *eth > 0 {
            stream.push(&format!(
                r#""type":"deposit","account":"{account}","asset":"ETH","amount":"{}""#,
                f64::from(*eth) / 10.0
            ));
        }
        for (instrument, contracts, usd, price) in [
            ("BTCUSD_PERP", *btc_contracts, 100, 60_000),
            ("ETHUSD_PERP", *eth_contracts, 10, 3_000),
        ] {
            if contracts == 0 {
                continue;
            }
            let side = if contracts > 0 { "buy" } else { "sell" };
            stream.push(&format!(
                r#""type":"fill","account":"{account}","instrument":"{instrument}","side":"{side}","size":"{}","price":"{price}""#,
                contracts.unsigned_abs() * usd
            ));
        }
        if *isolated && *btc_contracts != 0 {
            stream.push(&format!(
                r#""type":"set_isolated_margin","account":"{account}","instrument":"BTCUSD_PERP","amount":"0.05""#
            ));
        }
    }
    let (mut btc, mut eth) = (60_000.0_f64, 3_000.0_f64);
    for (step, tenths) in path.iter().enumerate() {
        btc *= 1.0 + f64::from(*tenths) / 1000.0;
        stream.push(&format!(
            r#""type":"index_price","underlying":"BTC","price":"{btc:.1}""#
        ));
        if step % 3 == 0 {
            eth *= 1.0 - f64::from(*tenths) / 1000.0;
            stream.push(&format!(
                r#""type":"index_price","underlying":"ETH","price":"{eth:.2}""#
            ));
        }
        let offset = marks
            .iter()
            .find(|(at, _)| *at == step)
            .map_or(0, |(_, offset)| *offset);
        stream.push(&format!(
            r#""type":"mark_price","instrument":"BTCUSD_PERP","price":"{:.1}""#,
            btc * (1.0 + f64::from(offset) / 1000.0)
        ));
    }
    stream.lines
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// On a coin-settled venue (Binance COIN-M: reports in BTC, which moves with the index),
    /// accounts on BTC and ETH collateral, cross and isolated, long and short both inverse
    /// perpetuals: the banded engine acts exactly as one examining every holder.
    #[test]
    fn bands_act_exactly_as_examining_every_holder_on_a_coin_settled_venue(
        accounts in proptest::collection::vec(
            (2u32..100, -300i32..300, 0u32..50, -300i32..300, any::<bool>()),
            1..12,
        ),
        path in proptest::collection::vec(-25i32..25, 1..80),
        marks in proptest::collection::vec((0usize..80, -30i32..30), 0..40),
    ) {
        let lines = coin_settled_events(&accounts, &path, &marks);
        assert_same_actions_on(&coin_m_venue(), &lines);
    }
}

/// Twelve accounts of [`coin_settled_events`]: 0.05-0.82 BTC, long and short 150-450
/// `BTCUSD_PERP` contracts in turn, a third as many `ETHUSD_PERP` the other way on 0-1.5 ETH,
/// every fifth isolated.
fn twelve_coin_settled_accounts() -> Vec<(u32, i32, u32, i32, bool)> {
    (0..12)
        .map(|n: i32| {
            let btc = 5 + 7 * n.unsigned_abs();
            let contracts = if n % 2 == 0 { 150 } else { -150 } * (1 + n % 3);
            let eth = (n % 4).unsigned_abs() * 5;
            (btc, contracts, eth, -contracts / 3, n % 5 == 0)
        })
        .collect()
}

/// A precondition of the proptest above: such paths do move accounts between states and
/// liquidate on the coin-settled venue.
#[test]
fn coin_settled_paths_change_states_and_liquidate() {
    let accounts = twelve_coin_settled_accounts();
    let path: Vec<i32> = (0..30).map(|_| -20).chain((0..60).map(|_| 20)).collect();
    let lines = coin_settled_events(&accounts, &path, &[(10, 25), (40, -25)]);
    let actions = assert_same_actions_on(&coin_m_venue(), &lines);
    assert!(
        actions
            .iter()
            .filter(|a| a.contains("state_changed"))
            .count()
            > 5,
        "precondition: the path moves accounts between states: {actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.contains(r#""type":"liquidation""#)),
        "precondition: the path liquidates: {actions:?}"
    );
}

/// On a coin-settled venue the bands work as on any other: twelve accounts (the fixed path's)
/// while BTC wiggles 0.1% up and down (ETH the other way), its mark at the index, 140 price
/// updates in all. Examining every holder at each takes 1,680 examinations; the bands keep
/// every account inside its band (none examined), and act as the exhaustive engine does.
#[test]
fn small_moves_on_a_coin_settled_venue_examine_few_accounts() {
    let accounts = twelve_coin_settled_accounts();
    let opening = coin_settled_events(&accounts, &[], &[]).len();
    let wiggle: Vec<i32> = (0..60).map(|i| if i % 2 == 0 { 1 } else { -1 }).collect();
    let lines = coin_settled_events(&accounts, &wiggle, &[]);
    assert_same_actions_on(&coin_m_venue(), &lines);
    let examined = examinations_after(&coin_m_venue(), &lines, opening);
    assert!(
        examined <= 12,
        "{examined} examinations over {} price updates",
        lines.len() - opening
    );
}

/// The examinations a banded engine on `venue` makes over `lines` after the first `opening`
/// (which it takes before counting); every line after them must be taken.
fn examinations_after(venue: &Venue, lines: &[String], opening: usize) -> u64 {
    let mut engine = Engine::new(venue.clone(), EngineConfig::default());
    let mut before = engine.evaluations();
    for (number, line) in lines.iter().enumerate() {
        if number == opening {
            before = engine.evaluations();
        }
        let effects = engine.apply(&parse_line("bands", number + 1, line).unwrap());
        assert!(
            number < opening || !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
            "{line} is taken: {effects:?}"
        );
    }
    engine.evaluations().since(before)
}

/// Option holders under Deribit's rule (short calls and puts on USDC, a long and a short
/// inverse option on BTC), BTC walking up 3% and back in 0.1% steps: the banded engine acts
/// as the exhaustive one, and it examines them at fewer updates than a band that takes each
/// option's delta as one would (an option near the money moves by about half the index per
/// coin: the bounds on its delta over the band widen the band).
#[test]
fn option_holders_are_examined_at_few_small_moves() {
    let accounts: Vec<(u32, u32, i32, u8, bool)> = [
        (21_000, 0, 0, 1),
        (30_000, 0, 0, 1),
        (21_000, 0, 0, 2),
        (30_000, 0, 0, 2),
        (100, 30, 0, 3),
        (100, 25, 0, 4),
        (100, 40, 0, 4),
        (60_000, 0, 0, 7),
    ]
    .into_iter()
    .map(|(usdt, btc, perp, option)| (usdt, btc, perp, option, false))
    .collect();
    let opening = mixed_events(&accounts, &[], &[]).len();
    let path: Vec<i32> = (0..60).map(|step| if step < 30 { 1 } else { -1 }).collect();
    let lines = mixed_events(&accounts, &path, &[]);
    assert_same_actions(&lines);
    let examined = examinations_after(&venue(), &lines, opening);
    // 43 here; 67 with every option's delta taken as one.
    assert!(
        examined <= 48,
        "{examined} examinations over {} price updates",
        lines.len() - opening
    );
}
