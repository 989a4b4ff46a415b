//! Every loss is borne by someone (issue: "the insurance fund goes negative"): the insurance fund
//! pays a bankrupt account's deficit only as far as it holds it; beyond that, opposite positions
//! are deleveraged at the bankruptcy price, for cross accounts holding several coins as for any
//! other, and what nothing can bear stays the account's debt.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::{DeficitResolution, Effect, TransferReason};
use solvent_engine::event::parse_line;
use solvent_engine::ledger::LedgerAccount;

fn venue() -> Venue {
    shipped_venue("venues/default.toml")
}

/// Binance COIN-M as shipped: settled in BTC, which the market prices (no peg).
fn coin_m_venue() -> Venue {
    shipped_venue("venues/binance-coinm.toml")
}

/// A venue file of the repository, by its path from the repository's root.
fn shipped_venue(path: &str) -> Venue {
    let path = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    Venue::from_toml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Plays `bodies` (event bodies without `seq` and `ts`), one second apart; returns the engine
/// and every effect.
fn play(bodies: &[&str]) -> (Engine, Vec<Effect>) {
    play_at(venue(), bodies)
}

fn play_at(venue: Venue, bodies: &[&str]) -> (Engine, Vec<Effect>) {
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut effects = Vec::new();
    for (number, body) in bodies.iter().enumerate() {
        let seq = number + 1;
        let line = format!(
            r#"{{"seq":{seq},"ts":"2026-01-01T{:02}:{:02}:{:02}Z",{body}}}"#,
            seq / 3600,
            seq / 60 % 60,
            seq % 60
        );
        effects.extend(engine.apply(&parse_line("insurance", seq, &line).unwrap()));
    }
    (engine, effects)
}

fn balance(engine: &Engine, account: &LedgerAccount, asset: &str) -> Decimal {
    engine.ledger().balance(account, asset)
}

/// A cross account holding USDT and BTC, long 1 BTCUSDT from 60,000, bought from another account
/// of the venue. BTC falls to 40,000 in one confirmed jump: equity 1,000 + 0.1 x 40,000 +
/// (40,000 - 60,000) = -15,000 USDT with an empty insurance fund. The fund pays nothing; the
/// seller's short is deleveraged at the bankruptcy price p where the account ends at exactly
/// nothing once its BTC is sold at the index: 1,000 + 4,000 + (p - 60,000) = 0, p = 55,000.
#[test]
fn a_bankrupt_multi_coin_cross_account_is_deleveraged_not_paid_by_an_empty_fund() {
    let (engine, effects) = play(&[
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"loser","asset":"USDT","amount":"1000""#,
        r#""type":"deposit","account":"loser","asset":"BTC","amount":"0.1""#,
        r#""type":"deposit","account":"winner","asset":"USDT","amount":"100000""#,
        r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"winner""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
    ]);
    let deficit = effects
        .iter()
        .find_map(|e| match e {
            Effect::DeficitBeyondFund {
                account,
                asset,
                deficit,
                fund,
                resolution,
                ..
            } if account == "loser" => {
                Some((asset.clone(), deficit.value(), fund.value(), *resolution))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no deficit beyond the fund: {effects:#?}"));
    assert_eq!(
        deficit,
        (
            "USDT".to_owned(),
            dec!(15000),
            dec!(0),
            DeficitResolution::Adl
        )
    );
    let adl = effects
        .iter()
        .find_map(|e| match e {
            Effect::Adl {
                counterparty,
                size,
                price,
                ..
            } => Some((counterparty.clone(), size.value(), price.value())),
            _ => None,
        })
        .unwrap();
    assert_eq!(adl.0, "winner");
    assert_eq!(adl.1, dec!(1), "the winner's short of 1 is bought back");
    assert!(
        (adl.2 - dec!(55000)).abs() <= dec!(0.01),
        "bankruptcy price {} (expected 55,000)",
        adl.2
    );
    for asset in ["USDT", "BTC"] {
        assert!(
            balance(&engine, &LedgerAccount::InsuranceFund, asset) >= Decimal::ZERO,
            "the fund went negative in {asset}"
        );
        let left = balance(&engine, &LedgerAccount::Wallet("loser".into()), asset);
        assert!(
            left.abs() <= dec!(0.01),
            "the bankrupt account is left with {left} {asset}"
        );
    }
    // The winner keeps the profit down to the bankruptcy price: 55,000 sold at 60,000.
    let winner = balance(&engine, &LedgerAccount::Wallet("winner".into()), "USDT");
    assert!(
        (winner - dec!(105000)).abs() <= dec!(0.01),
        "winner holds {winner} USDT"
    );
}

/// The same bankruptcy against a seller outside the venue (`external`): nobody inside can be
/// deleveraged, the empty fund pays nothing, and the 15,000 USDT deficit (less the BTC sold at the
/// index) stays the account's debt, reported as such: no money is created.
#[test]
fn a_deficit_nobody_inside_can_bear_stays_the_accounts_debt() {
    let (engine, effects) = play(&[
        r#""type":"index_price","underlying":"BTC","price":"60000""#,
        r#""type":"deposit","account":"loser","asset":"USDT","amount":"1000""#,
        r#""type":"deposit","account":"loser","asset":"BTC","amount":"0.1""#,
        r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
        r#""type":"index_price","underlying":"BTC","price":"40000""#,
    ]);
    assert!(
        effects.iter().any(|e| matches!(e,
            Effect::DeficitBeyondFund { account, deficit, resolution: DeficitResolution::AccountDebt, .. }
                if account == "loser" && deficit.value() == dec!(15000))),
        "no debt recorded: {effects:#?}"
    );
    assert_eq!(
        balance(&engine, &LedgerAccount::InsuranceFund, "USDT"),
        Decimal::ZERO
    );
    assert_eq!(
        balance(&engine, &LedgerAccount::Wallet("loser".into()), "USDT"),
        dec!(-15000)
    );
    for (asset, total) in engine.ledger().totals() {
        assert!(total.is_zero(), "{asset} sums to {total}");
    }
}

/// A venue that socialises deficits (`deficits = "socialise"`): the loser, long 1.5 BTCUSDT from
/// 60,000 against two shorts of the venue (1 and 0.5), is bankrupt at 40,000: 1,000 + 0.1 x
/// 40,000 + 1.5 x (40,000 - 60,000) = -25,000 USDT, the fund empty. Nobody is deleveraged:
/// the loser's position closes at the market and the shorts, in profit by 20,000 and 10,000,
/// pay 25,000 pro rata: 16,666.666666 and 8,333.333333 rounded down to USDT's 6 decimals, the
/// last unit to the larger profit, so 16,666.666667 + 8,333.333333 = 25,000 exactly.
#[test]
fn a_venue_that_socialises_shares_the_deficit_pro_rata_to_profit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap().replacen(
        "[venue]\n",
        "[venue]\ndeficits = \"socialise\"\n",
        1,
    );
    let venue = Venue::from_toml("socialising", &text).unwrap();
    assert_eq!(
        venue.deficits,
        solvent_core::venue::DeficitPolicy::Socialise
    );
    let (engine, effects) = play_at(
        venue,
        &[
            r#""type":"index_price","underlying":"BTC","price":"60000""#,
            r#""type":"deposit","account":"loser","asset":"USDT","amount":"1000""#,
            r#""type":"deposit","account":"loser","asset":"BTC","amount":"0.1""#,
            r#""type":"deposit","account":"big","asset":"USDT","amount":"100000""#,
            r#""type":"deposit","account":"small","asset":"USDT","amount":"100000""#,
            r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"big""#,
            r#""type":"fill","account":"loser","instrument":"BTCUSDT","side":"buy","size":"0.5","price":"60000","counterparty":"small""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
            r#""type":"index_price","underlying":"BTC","price":"40000""#,
        ],
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Adl { .. })),
        "a socialising venue deleverages nobody: {effects:#?}"
    );
    assert!(
        effects.iter().any(|e| matches!(e,
            Effect::DeficitBeyondFund { account, deficit, resolution: DeficitResolution::Socialised, .. }
                if account == "loser" && deficit.value() == dec!(25000))),
        "no socialised deficit: {effects:#?}"
    );
    let wallet = |id: &str| balance(&engine, &LedgerAccount::Wallet(id.into()), "USDT");
    assert_eq!(wallet("big"), dec!(100000) - dec!(16666.666667));
    assert_eq!(wallet("small"), dec!(100000) - dec!(8333.333333));
    assert_eq!(wallet("loser"), Decimal::ZERO);
    assert_eq!(
        balance(&engine, &LedgerAccount::InsuranceFund, "USDT"),
        Decimal::ZERO
    );
    for (asset, total) in engine.ledger().totals() {
        assert!(total.is_zero(), "{asset} sums to {total}");
    }
}

/// The ADL queue's ranking as it was first written: every opposite holder in profit scored by
/// profit x notional / equity, the equity from a full margin report each, then all sorted
/// (highest first, ties by id). The engine now takes the equity of prepared cross pools from
/// their preparation and orders only the head of the queue; its choice must be this one.
fn ranking_by_reports(
    engine: &Engine,
    instrument: &str,
    side: solvent_core::money::PositionSide,
    mark: Decimal,
) -> Vec<(String, f64, Decimal)> {
    use rust_decimal::prelude::{Signed, ToPrimitive};
    use solvent_risk::account::{Detail, build_report};
    let venue = engine.venue();
    let market = engine.market();
    let surfaces = solvent_risk::valuation::SmileSchedule::new(venue, market)
        .unwrap()
        .surfaces_at(market.timestamp)
        .unwrap();
    let view = solvent_risk::MarketView::with_surfaces(venue, market, &surfaces);
    let wanted = match side {
        solvent_core::money::PositionSide::Long => -Decimal::ONE,
        solvent_core::money::PositionSide::Short => Decimal::ONE,
    };
    let mut ranked: Vec<(String, f64, Decimal)> = engine
        .accounts()
        .values()
        .filter_map(|a| {
            let p = a.positions.get(instrument)?;
            if p.size.signum() != wanted {
                return None;
            }
            let profit =
                solvent_risk::standard::unrealized_pnl(&p.instrument, p.size, p.entry, mark);
            if profit <= Decimal::ZERO {
                return None;
            }
            let notional = solvent_risk::standard::notional(&p.instrument, p.size, mark);
            let equity = engine
                .portfolio(&a.id)
                .and_then(|portfolio| build_report(&portfolio, &view, Detail::Figures).ok())
                .map_or(Decimal::ONE, |r| r.equity.value())
                .max(Decimal::new(1, 6));
            let score = (profit * notional / equity).to_f64().unwrap_or(0.0);
            Some((a.id.to_string(), score, p.size.abs()))
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

/// Plays `bodies` (a crowded contract's holders, one of them about to be bankrupt; nothing
/// refused), then the `fall` events: the bankrupt account's deficit is deleveraged against the
/// shorts of `contract` in profit at `price` (more than 1,000 of them), bounding fewer than 1 in
/// 35 of them one by one and scoring at most two per account deleveraged, beside the `loose`
/// holders scored at every ranking. An engine restored from a snapshot taken before the fall
/// (which files its accounts from scratch) takes the same positions from the same accounts.
fn crowded_fall(bodies: &[String], fall: &[&str], contract: &str, price: Decimal, loose: usize) {
    crowded_fall_at(venue(), bodies, fall, contract, price, loose);
}

/// [`crowded_fall`] on `venue`.
fn crowded_fall_at(
    venue: Venue,
    bodies: &[String],
    fall: &[&str],
    contract: &str,
    price: Decimal,
    loose: usize,
) {
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (mut engine, effects) = play_at(venue, &refs);
    let refused: Vec<&Effect> = effects
        .iter()
        .filter(|e| matches!(e, Effect::Rejected { .. }))
        .collect();
    assert!(
        refused.is_empty(),
        "{} refused, the first {:?}",
        refused.len(),
        refused.first()
    );
    let mut restored = Engine::restore(&engine.snapshot().unwrap()).unwrap();
    let seq = bodies.len() + 1;
    let apply_fall = |engine: &mut Engine| {
        let mut effects = Vec::new();
        for (offset, body) in fall.iter().enumerate() {
            let seq = seq + offset;
            let line = format!(r#"{{"seq":{seq},"ts":"2026-01-01T09:00:{offset:02}Z",{body}}}"#);
            effects.extend(engine.apply(&parse_line("fall", seq, &line).unwrap()));
        }
        effects
    };
    let before = engine.adl_candidates_scored();
    let bounded_before = engine.adl_members_bounded();
    let fell = apply_fall(&mut engine);
    let deleveraged = fell
        .iter()
        .filter(|e| matches!(e, Effect::Adl { .. }))
        .count();
    assert!(deleveraged > 0, "the deficit is deleveraged");
    let scored = engine.adl_candidates_scored() - before;
    let bounded = engine.adl_members_bounded() - bounded_before;
    let in_profit = engine
        .accounts()
        .values()
        .filter(|a| {
            a.positions
                .get(contract)
                .is_some_and(|p| p.size < Decimal::ZERO && p.entry > price)
        })
        .count();
    assert!(in_profit > 1_000, "{in_profit} shorts in profit");
    assert!(
        bounded * 35 < in_profit as u64,
        "{bounded} candidates bounded for {deleveraged} deleveraged among {in_profit} shorts in profit"
    );
    assert!(
        scored <= (2 * deleveraged + loose) as u64,
        "{scored} candidates scored for {deleveraged} deleveraged ({loose} loose holders)"
    );
    assert_eq!(
        fell,
        apply_fall(&mut restored),
        "the restored engine deleverages the same way"
    );
    assert_eq!(engine.state_hash(), restored.state_hash());
    // The rankings' counts are diagnostics of one engine's life, not state: a snapshot taken
    // after they counted does not carry them.
    assert!(
        engine.adl_members_bounded() > 0,
        "precondition: candidates bounded"
    );
    let again = Engine::restore(&engine.snapshot().unwrap()).unwrap();
    assert_eq!(
        (again.adl_members_bounded(), again.adl_candidates_scored()),
        (0, 0)
    );
}

/// Compares the engine's ADL queue of each contract of `contracts`, for both sides and at each
/// of its marks, with the one full margin reports give, whole and as its first 1, 3 and 7, over
/// more than 100 candidates in all.
fn assert_ranked_as_reports(engine: &mut Engine, seed: u64, contracts: &[(&str, [Decimal; 3])]) {
    // Filed now, the index ranks each contract at its current mark (one of the marks of each
    // contract here), the others by a score for every holder.
    engine.file_adl_index();
    let engine = &*engine;
    use solvent_core::money::PositionSide;
    let mut compared = 0;
    for (instrument, marks) in contracts {
        for side in [PositionSide::Long, PositionSide::Short] {
            for mark in marks {
                let expected = ranking_by_reports(engine, instrument, side, *mark);
                for limit in [1, 3, 7, usize::MAX] {
                    let got: Vec<(String, f64, Decimal)> = engine
                        .adl_candidates(instrument, side, *mark, limit)
                        .unwrap()
                        .into_iter()
                        .map(|c| (c.account.to_string(), c.score, c.size))
                        .collect();
                    let want: Vec<_> = expected.iter().take(limit).cloned().collect();
                    assert_eq!(
                        got, want,
                        "seed {seed}, {instrument} {side:?} at {mark}, first {limit}"
                    );
                }
                compared += expected.len();
            }
        }
    }
    assert!(
        compared > 100,
        "seed {seed}: only {compared} candidates compared"
    );
}

/// Whether a random population's account `id` holds `instrument` (four in five), and on which
/// side (`buy` or `sell`, even odds); three in ten first set a leverage of 2-19 in it.
fn random_side(
    rng: &mut rand_chacha::ChaCha8Rng,
    id: &str,
    instrument: &str,
    bodies: &mut Vec<String>,
) -> Option<&'static str> {
    use rand::Rng;
    if rng.random_bool(0.2) {
        return None;
    }
    if rng.random_bool(0.3) {
        bodies.push(format!(
            r#""type":"set_leverage","account":"{id}","instrument":"{instrument}","leverage":"{}""#,
            rng.random_range(2..20)
        ));
    }
    Some(if rng.random_bool(0.5) { "buy" } else { "sell" })
}

/// How many automated top-ups moved money in `effects`.
fn topped_up(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::TransferApplied {
                    reason: TransferReason::TopUp,
                    ..
                }
            )
        })
        .count()
}

/// An automated top-up of `id`'s cross pool from outside below health 99 (up to 100, 300 at a
/// time): it moves money whenever monitoring examines the account.
fn top_up_from_outside(id: &str) -> String {
    format!(
        r#""type":"set_auto_top_up","account":"{id}","source":"external","trigger_health":"99","target_health":"100","per_event_cap":"300","per_day_cap":"100000""#
    )
}

/// Short options an account of the random populations may write: linear ones settled in USDC
/// and inverse ones settled in BTC, calls and puts, with their premiums near the opening smile.
const SHORT_OPTIONS: [(&str, &str); 4] = [
    ("BTC_USDC-27DEC26-65000-C", "13000"),
    ("BTC_USDC-27DEC26-55000-P", "12000"),
    ("BTC-27DEC26-70000-C", "0.2"),
    ("BTC-27DEC26-50000-P", "0.17"),
];

/// On random populations (cross accounts in USDT, some also holding BTC, some at a chosen
/// leverage, long or short BTCUSDT and ETHUSDT, one in four also short a BTC call or put,
/// linear or inverse, whose value the ranking bounds by a loan of the coin or the strike; prices
/// moved so monitoring prepares the cross pools it can; one in five with an automated top-up from
/// outside), the engine's ADL ranking is the one full margin reports give, whole and as its
/// first few, for each contract, side and a range of marks. A first given mark of one of the
/// options then files its writers loose, and the ranking is still the reports'.
#[test]
fn the_adl_ranking_is_the_one_full_reports_give_on_random_populations() {
    use rand::{Rng, SeedableRng};
    for seed in 0..4u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut bodies: Vec<String> = vec![
            r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
            r#""type":"index_price","underlying":"ETH","price":"3000""#.to_owned(),
            r#""type":"vol_surface","underlying":"BTC","expiry":"27DEC26","strikes":[30000,45000,60000,75000,90000],"vols":[0.72,0.64,0.60,0.63,0.68]"#.to_owned(),
            r#""type":"deposit","account":"house","asset":"USDT","amount":"100000000""#.to_owned(),
        ];
        let mut writers = 0;
        for i in 0..150 {
            let id = format!("a{i:03}");
            let usdt = rng.random_range(1_000..20_000);
            bodies.push(format!(
                r#""type":"deposit","account":"{id}","asset":"USDT","amount":"{usdt}""#
            ));
            if rng.random_bool(0.2) {
                bodies.push(format!(
                    r#""type":"deposit","account":"{id}","asset":"BTC","amount":"0.0{}""#,
                    rng.random_range(1..9)
                ));
            }
            if i % 5 == 4 {
                bodies.push(top_up_from_outside(&id));
            }
            // Sizes in each contract's steps: 0.001-0.999 BTC, 0.01-0.99 ETH.
            for (instrument, price, scale) in [("BTCUSDT", 60_000, 3), ("ETHUSDT", 3_000, 2)] {
                let Some(side) = random_side(&mut rng, &id, instrument, &mut bodies) else {
                    continue;
                };
                // Entries spread 3% either side, so some holders of each side are in profit.
                let entry = price * rng.random_range(970..1030) / 1000;
                let lot = 10_i64.pow(scale);
                let size = Decimal::new(rng.random_range(1..lot), scale);
                bodies.push(format!(
                    r#""type":"fill","account":"{id}","instrument":"{instrument}","side":"{side}","size":"{size}","price":"{entry}","counterparty":"house""#
                ));
            }
            if rng.random_bool(0.25) {
                let (option, premium) = SHORT_OPTIONS[rng.random_range(0..SHORT_OPTIONS.len())];
                let size = Decimal::new(rng.random_range(1..3), 1);
                bodies.push(format!(
                    r#""type":"fill","account":"{id}","instrument":"{option}","side":"sell","size":"{size}","price":"{premium}","counterparty":"house""#
                ));
                writers += 1;
            }
        }
        assert!(writers > 20, "seed {seed}: {writers} option writers");
        for (btc, eth) in [(61_200, 3_060), (58_800, 2_940), (60_100, 3_005)] {
            bodies.push(format!(
                r#""type":"index_price","underlying":"BTC","price":"{btc}""#
            ));
            bodies.push(format!(
                r#""type":"index_price","underlying":"ETH","price":"{eth}""#
            ));
            bodies.push(format!(
                r#""type":"mark_price","instrument":"BTCUSDT","price":"{btc}""#
            ));
            bodies.push(format!(
                r#""type":"mark_price","instrument":"ETHUSDT","price":"{eth}""#
            ));
        }
        // Prices walking 8% either side, 1% a step (within the jump guard), re-examine the
        // holders whose bands they leave: the prepared kernel's work (a contract's first mark
        // examines only those its gap from the index can change).
        let down_and_up = (92..100).rev().chain(93..=108).chain((100..108).rev());
        for percent in down_and_up {
            let (btc, eth) = (60_100 * percent / 100, 3_005 * percent / 100);
            bodies.push(format!(
                r#""type":"index_price","underlying":"BTC","price":"{btc}""#
            ));
            bodies.push(format!(
                r#""type":"index_price","underlying":"ETH","price":"{eth}""#
            ));
            bodies.push(format!(
                r#""type":"mark_price","instrument":"BTCUSDT","price":"{btc}""#
            ));
            bodies.push(format!(
                r#""type":"mark_price","instrument":"ETHUSDT","price":"{eth}""#
            ));
        }
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let (mut engine, effects) = play(&refs);
        assert!(
            topped_up(&effects) > 0,
            "seed {seed}: no automated top-up moved money"
        );
        assert!(
            engine.evaluations().prepared > 0,
            "seed {seed}: no cross pool was prepared, the prepared equity goes untested"
        );
        let contracts = [
            ("BTCUSDT", [dec!(58500), dec!(60100), dec!(61700)]),
            ("ETHUSDT", [dec!(2920), dec!(3005), dec!(3090)]),
        ];
        assert_ranked_as_reports(&mut engine, seed, &contracts);
        // A first given mark above the index: its writers lose more than the bound of their
        // filing allows (a call is worth at most the index under the model), and are filed
        // again, loose.
        bodies.push(
            r#""type":"mark_price","instrument":"BTC_USDC-27DEC26-65000-C","price":"90000""#
                .to_owned(),
        );
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let (mut engine, _) = play(&refs);
        assert_ranked_as_reports(&mut engine, seed, &contracts);
    }
}

/// The account the ADL tests bankrupt: 20,000 USDT, long 15 BTCUSDT at 60,000 (900,000 notional,
/// 50x), so a 3% fall of the mark takes more than its equity.
const WHALE_LONG_15_BTCUSDT_AT_50X: [&str; 3] = [
    r#""type":"deposit","account":"whale","asset":"USDT","amount":"20000""#,
    r#""type":"set_leverage","account":"whale","instrument":"BTCUSDT","leverage":"50""#,
    r#""type":"fill","account":"whale","instrument":"BTCUSDT","side":"buy","size":"15","price":"60000","counterparty":"external""#,
];

/// Account `id` of a crowded contract: a deposit of 1,000-50,000 USDT and a short of BTCUSDT at
/// 1-4x from an entry 1% below to 3% above 60,000 (the events pushed to `bodies`); returns the
/// deposit and the leverage.
fn short_btcusdt_from_60000(
    rng: &mut rand_chacha::ChaCha8Rng,
    id: &str,
    bodies: &mut Vec<String>,
) -> (u32, u32) {
    use rand::Rng;
    let usdt: u32 = rng.random_range(1_000..50_000);
    let leverage: u32 = rng.random_range(1..=4);
    let entry: u32 = 60_000 * rng.random_range(990..1_030) / 1_000;
    let size = (Decimal::from(usdt * leverage) / Decimal::from(entry))
        .round_dp(3)
        .max(dec!(0.001));
    bodies.push(format!(
        r#""type":"deposit","account":"{id}","asset":"USDT","amount":"{usdt}""#
    ));
    bodies.push(format!(
        r#""type":"fill","account":"{id}","instrument":"BTCUSDT","side":"sell","size":"{size}","price":"{entry}","counterparty":"external""#
    ));
    (usdt, leverage)
}

/// Account `id` of a crowded inverse contract: a deposit of 0.02-0.8 BTC (pushed to `bodies`),
/// and the entry (1% below to 3% above 60,000) and size in USD (1-4x the deposit, in whole
/// contracts of `contract_usd`, at least one) of the short it is to open; returns those two.
fn deposit_for_inverse_short(
    rng: &mut rand_chacha::ChaCha8Rng,
    id: &str,
    contract_usd: Decimal,
    bodies: &mut Vec<String>,
) -> (u32, Decimal) {
    use rand::Rng;
    let btc = Decimal::new(rng.random_range(2..80), 2);
    let leverage: u32 = rng.random_range(1..=4);
    let entry: u32 = 60_000 * rng.random_range(990..1_030) / 1_000;
    let usd = (btc * Decimal::from(entry * leverage) / contract_usd)
        .floor()
        .max(Decimal::ONE)
        * contract_usd;
    bodies.push(format!(
        r#""type":"deposit","account":"{id}","asset":"BTC","amount":"{btc}""#
    ));
    (entry, usd)
}

/// A crowded contract's ADL ranks its queue through the engine's ADL index: it bounds one by one
/// the holders whose group's bound reaches the head of the queue, not every short in profit, and
/// scores exactly only those whose own bound reaches it. 1,500 accounts short BTCUSDT at 1-4x from
/// entries 1% below to 3% above 60,000; four in five also hold ETHUSDT, long or short, at up to
/// twice their deposit (the rest of their equity is bounded at the ranking's ETH price, which has
/// moved 2% from the price the index saw first); one in three isolates its short with half its
/// deposit (ranked by its cross equity, which its profit is no part of); one in five of those
/// with more than 10,000 USDT also holds a long BTC call settled in USDC (counted at nothing in
/// the bound of its rest), and as many write a BTC put settled in USDC or an inverse BTC call
/// (counted at their strike, or as a loan of the coin: none of them loose); one in seven runs in
/// portfolio mode (its equity sums as in cross
/// mode); one in four has an automated top-up from outside, and one in six of the isolated
/// shorts one from its cross pool (filed all the same: a ranking reads the account as it stands);
/// one account long 15 BTCUSDT at 50x is bankrupt
/// when the mark falls 3% with an empty fund. Debug builds check every placed candidate against a
/// score for every holder (`engine/adl_index.rs`); here the count scored is held, and an engine
/// restored from a snapshot taken before the fall (which files its accounts from scratch) takes the
/// same positions from the same accounts.
#[test]
fn a_crowded_contracts_adl_scores_the_head_of_its_queue_not_every_holder() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut bodies: Vec<String> = vec![
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"index_price","underlying":"ETH","price":"3000""#.to_owned(),
        r#""type":"mark_price","instrument":"BTCUSDT","price":"60000""#.to_owned(),
        r#""type":"vol_surface","underlying":"BTC","expiry":"27DEC26","strikes":[30000,45000,60000,75000,90000],"vols":[0.72,0.64,0.60,0.63,0.68]"#.to_owned(),
    ];
    let holders = 1_500;
    for i in 0..holders {
        let id = format!("h{i:04}");
        let (usdt, leverage) = short_btcusdt_from_60000(&mut rng, &id, &mut bodies);
        if i % 5 == 1 && usdt > 10_000 {
            bodies.push(format!(
                r#""type":"deposit","account":"{id}","asset":"USDC","amount":"1500""#
            ));
            bodies.push(format!(
                r#""type":"fill","account":"{id}","instrument":"BTC_USDC-27DEC26-65000-C","side":"buy","size":"0.1","price":"13000","counterparty":"external""#
            ));
        }
        if i % 5 == 3 && usdt > 10_000 {
            // A written option: a USDC put, or an inverse call, bounded by its strike or by a
            // loan of BTC in the holder's rest.
            let (option, premium) = if i % 10 == 3 {
                ("BTC_USDC-27DEC26-55000-P", "12000")
            } else {
                ("BTC-27DEC26-70000-C", "0.2")
            };
            bodies.push(format!(
                r#""type":"fill","account":"{id}","instrument":"{option}","side":"sell","size":"0.1","price":"{premium}","counterparty":"external""#
            ));
        }
        let portfolio_mode = i % 7 == 2 && leverage <= 2;
        if portfolio_mode {
            bodies.push(format!(
                r#""type":"set_margin_mode","account":"{id}","mode":"portfolio""#
            ));
        } else if i % 3 == 0 {
            bodies.push(format!(
                r#""type":"set_isolated_margin","account":"{id}","instrument":"BTCUSDT","amount":"{}""#,
                usdt / 2
            ));
            if i % 2 == 0 {
                bodies.push(format!(
                    r#""type":"set_auto_top_up","account":"{id}","instrument":"BTCUSDT","source":"cross_pool","trigger_health":"1.3","target_health":"1.6","per_event_cap":"1000","per_day_cap":"5000""#
                ));
            }
        }
        if i % 4 == 1 {
            bodies.push(format!(
                r#""type":"set_auto_top_up","account":"{id}","source":"external","trigger_health":"1.3","target_health":"1.6","per_event_cap":"500","per_day_cap":"2000""#
            ));
        }
        if rng.random_bool(0.8) && !portfolio_mode {
            let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
            let eth_leverage: u32 = rng.random_range(1..=20);
            bodies.push(format!(
                r#""type":"fill","account":"{id}","instrument":"ETHUSDT","side":"{side}","size":"{}","price":"3000","counterparty":"external""#,
                (Decimal::from(usdt * eth_leverage) / dec!(30000))
                    .round_dp(2)
                    .max(dec!(0.01))
            ));
        }
    }
    bodies.extend(WHALE_LONG_15_BTCUSDT_AT_50X.map(str::to_owned));
    crowded_fall(
        &bodies,
        &[
            r#""type":"index_price","underlying":"ETH","price":"3060""#,
            r#""type":"index_price","underlying":"BTC","price":"58200""#,
            r#""type":"mark_price","instrument":"BTCUSDT","price":"58200""#,
        ],
        "BTCUSDT",
        dec!(58200),
        0,
    );
}

/// An account shard's offer for the cluster's ADL (`Engine::adl_candidates_reaching`): the head
/// of the queue full margin reports give, leaving out the bankrupt account, as far as the sizes
/// take to reach the quantity and no further. 1,500 accounts short BTCUSDT at 1-4x from entries
/// 1% below to 3% above 60,000, the mark at 58,200: ranked through the ADL index, the offer of
/// five candidates scores a handful of the shorts in profit, not all of them: after an update of
/// the settlement coin's index, which leaves the ADL index to be filed again, and on an engine
/// restored from a snapshot.
#[test]
fn an_offer_of_adl_candidates_takes_the_head_of_the_queue_as_far_as_the_quantity() {
    use rand::SeedableRng;
    use solvent_core::money::PositionSide;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut bodies: Vec<String> = vec![
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"mark_price","instrument":"BTCUSDT","price":"60000""#.to_owned(),
    ];
    for i in 0..1_500 {
        short_btcusdt_from_60000(&mut rng, &format!("h{i:04}"), &mut bodies);
    }
    bodies.push(r#""type":"index_price","underlying":"BTC","price":"58200""#.to_owned());
    bodies.push(r#""type":"mark_price","instrument":"BTCUSDT","price":"58200""#.to_owned());
    // An update of the settlement coin's index (at its peg, so no figure moves) leaves the ADL
    // index to be filed again.
    bodies.push(r#""type":"index_price","underlying":"USDT","price":"1""#.to_owned());
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (mut engine, effects) = play(&refs);
    assert!(!effects.iter().any(|e| matches!(e, Effect::Rejected { .. })));
    let expected = ranking_by_reports(&engine, "BTCUSDT", PositionSide::Long, dec!(58200));
    assert!(
        expected.len() > 1_000,
        "{} shorts in profit",
        expected.len()
    );
    // The bankrupt account is left out wherever it ranks: here first.
    let excluded = expected[0].0.clone();
    let sizes: Vec<Decimal> = expected.iter().map(|(_, _, size)| *size).collect();
    let quantity = sizes[1..5].iter().sum::<Decimal>() + sizes[5] / dec!(2);
    let offer = |engine: &mut Engine, quantity: Decimal| -> Vec<(String, f64, Decimal)> {
        engine
            .adl_candidates_reaching(
                "BTCUSDT",
                PositionSide::Long,
                dec!(58200),
                quantity,
                &excluded,
            )
            .unwrap()
            .into_iter()
            .map(|c| (c.account.to_string(), c.score, c.size))
            .collect()
    };
    // A shard restarted from a snapshot (whose ADL index is filed again from scratch) offers
    // the same.
    let mut restored = Engine::restore(&engine.snapshot().unwrap()).unwrap();
    for engine in [&mut engine, &mut restored] {
        let before = engine.adl_candidates_scored();
        assert_eq!(offer(engine, quantity), expected[1..=5].to_vec());
        let scored = engine.adl_candidates_scored() - before;
        assert!(scored <= 20, "{scored} scored for an offer of 5");
    }
    // Exactly the sizes of the first four leaves the fifth out; more than every size offers
    // every candidate but the bankrupt account.
    let four = sizes[1..5].iter().sum::<Decimal>();
    assert_eq!(offer(&mut engine, four), expected[1..5].to_vec());
    assert_eq!(offer(&mut engine, dec!(1000000)), expected[1..].to_vec());
    assert!(
        engine
            .adl_candidates_reaching("NOPE", PositionSide::Long, dec!(58200), four, &excluded)
            .is_err()
    );
}

/// On a coin-settled venue (Binance COIN-M, settled in BTC, which the market prices) the holders
/// of an inverse perpetual settled in that coin are filed as on any venue, the contract's coin
/// priced 1 in the settlement coin. 1,500 accounts hold 0.02-0.8 BTC and are short
/// `BTCUSD_PERP` (sizes in USD, whole contracts of 100) at 1-4x from entries 1% below to 3%
/// above 60,000; one in four has an automated top-up rule; one in fifty also holds ETH (a third
/// coin: loose, scored at every ranking). One account holding 1 BTC, long 1,200,000 USD at 25x
/// (the most its tier allows), is bankrupt when BTC falls 6% with an empty fund. Filed loose, as
/// before, the 1,500 would be scored at each ranking.
#[test]
fn a_crowded_contracts_adl_on_a_coin_settled_venue_scores_the_head_of_its_queue() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let mut bodies: Vec<String> = vec![
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"index_price","underlying":"ETH","price":"3000""#.to_owned(),
        r#""type":"mark_price","instrument":"BTCUSD_PERP","price":"60000""#.to_owned(),
    ];
    let mut loose = 0;
    for i in 0..1_500 {
        let id = format!("h{i:04}");
        let (entry, usd) = deposit_for_inverse_short(&mut rng, &id, dec!(100), &mut bodies);
        if i % 50 == 7 {
            loose += 1;
            bodies.push(format!(
                r#""type":"deposit","account":"{id}","asset":"ETH","amount":"0.5""#
            ));
        }
        if i % 4 == 1 {
            bodies.push(format!(
                r#""type":"set_auto_top_up","account":"{id}","source":"external","trigger_health":"1.3","target_health":"1.6","per_event_cap":"0.01","per_day_cap":"0.05""#
            ));
        }
        bodies.push(format!(
            r#""type":"fill","account":"{id}","instrument":"BTCUSD_PERP","side":"sell","size":"{usd}","price":"{entry}","counterparty":"external""#
        ));
    }
    bodies.extend(
        [
            r#""type":"deposit","account":"whale","asset":"BTC","amount":"1""#,
            r#""type":"set_leverage","account":"whale","instrument":"BTCUSD_PERP","leverage":"25""#,
            r#""type":"fill","account":"whale","instrument":"BTCUSD_PERP","side":"buy","size":"1200000","price":"60000","counterparty":"external""#,
        ]
        .map(str::to_owned),
    );
    crowded_fall_at(
        coin_m_venue(),
        &bodies,
        &[
            r#""type":"index_price","underlying":"BTC","price":"56400""#,
            r#""type":"mark_price","instrument":"BTCUSD_PERP","price":"56400""#,
        ],
        "BTCUSD_PERP",
        dec!(56400),
        loose,
    );
}

/// On random populations of a coin-settled venue (Binance COIN-M), the ADL ranking of
/// `BTCUSD_PERP` and of a second BTC inverse perpetual through the index is the one full margin
/// reports give: accounts holding BTC, long or short both contracts (sizes in USD, entries 3%
/// either side of 60,000), some at a chosen leverage; one in five also holds ETH (loose); one in
/// five has an automated top-up from outside. Prices walk 8% either side.
#[test]
fn the_adl_ranking_on_a_coin_settled_venue_is_the_one_full_reports_give() {
    use rand::Rng;
    let population = InversePopulation {
        listing: r#""type":"list_instrument","name":"BTCUSD-SECOND","spec":{"kind":"perpetual","style":"inverse","underlying":"BTC","settlement":"BTC","contract_size":"100","size_step":"100","margin":"binance_btcusd_perp"}"#,
        contracts: ["BTCUSD_PERP", "BTCUSD-SECOND"],
        contract_usd: 100,
        other_index: Some(r#""type":"index_price","underlying":"ETH","price":"3000""#),
        other_coin: |rng, id| {
            format!(
                r#""type":"deposit","account":"{id}","asset":"ETH","amount":"{}""#,
                Decimal::new(rng.random_range(1..200), 2)
            )
        },
        top_up: |id| {
            format!(
                r#""type":"set_auto_top_up","account":"{id}","source":"external","trigger_health":"99","target_health":"100","per_event_cap":"0.005","per_day_cap":"0.05""#
            )
        },
    };
    for seed in 0..3u64 {
        population.assert_ranked_as_reports(coin_m_venue(), seed);
    }
}

/// A coin beyond its first collateral tier is not valued at the first ratio when the ADL index
/// bounds a holder's rest. BTC counts in full up to 10,000 USD and at zero beyond (a venue's
/// schedule, shortened). `rich` holds 1 BTC (60,000 USD, valued 10,000) and 1,000 USDT, short
/// 0.5 BTCUSDT at 60,000; nine others hold only USDT (15,000 to 55,000), short the same. At
/// 58,200 every short gains 900 USDT, and `rich`, with the least equity (11,900 USDT), leads the
/// queue. Valued at the first ratio its BTC would put it last (its rest 59,200 USDT): a ranking
/// that bounded it so would place the others first.
#[test]
fn a_coin_beyond_its_first_tier_is_ranked_at_its_tiered_value() {
    use solvent_core::money::PositionSide;
    use solvent_core::venue::CollateralTier;
    let mut venue = venue();
    let btc = venue.collateral.get_mut("BTC").unwrap();
    btc.tiers = vec![CollateralTier {
        up_to_usd: Some(dec!(10000)),
        ratio: dec!(1),
    }];
    let mut bodies: Vec<String> = vec![
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"mark_price","instrument":"BTCUSDT","price":"60000""#.to_owned(),
        r#""type":"deposit","account":"rich","asset":"BTC","amount":"1""#.to_owned(),
        r#""type":"deposit","account":"rich","asset":"USDT","amount":"1000""#.to_owned(),
    ];
    let mut shorts = vec!["rich".to_owned()];
    for i in 0..9 {
        let id = format!("s{i}");
        bodies.push(format!(
            r#""type":"deposit","account":"{id}","asset":"USDT","amount":"{}""#,
            15_000 + 5_000 * i
        ));
        shorts.push(id);
    }
    for id in &shorts {
        bodies.push(format!(
            r#""type":"fill","account":"{id}","instrument":"BTCUSDT","side":"sell","size":"0.5","price":"60000","counterparty":"external""#
        ));
    }
    bodies.extend(
        [
            r#""type":"index_price","underlying":"BTC","price":"58200""#,
            r#""type":"mark_price","instrument":"BTCUSDT","price":"58200""#,
        ]
        .map(str::to_owned),
    );
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (engine, effects) = play_at(venue, &refs);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
        "nothing refused"
    );
    let expected = ranking_by_reports(&engine, "BTCUSDT", PositionSide::Long, dec!(58200));
    assert_eq!(expected.len(), 10);
    assert_eq!(expected[0].0, "rich");
    // 900 x 29,100 / 11,900.
    assert!((expected[0].1 - 2_200.840_336_134_453_7).abs() < 1e-9);
    for limit in [1, 3, usize::MAX] {
        let got: Vec<(String, f64, Decimal)> = engine
            .adl_candidates("BTCUSDT", PositionSide::Long, dec!(58200), limit)
            .unwrap()
            .into_iter()
            .map(|c| (c.account.to_string(), c.score, c.size))
            .collect();
        let want: Vec<_> = expected.iter().take(limit).cloned().collect();
        assert_eq!(got, want, "first {limit}");
    }
}

/// A long option its report can value only through a smile that expires before it: once the
/// smile has expired the account's report fails, and the ranking scores the account by a
/// fallback equity that no filed bound covers, so the ADL index keeps it loose (debug builds
/// check every placed candidate against a score for every holder, and fail when it is filed).
/// Forty shorts of BTCUSDT, every fourth also long a 27DEC26 call while BTC's only smile expires
/// on 2 January; one account long 15 BTCUSDT at 50x is bankrupt when BTC falls 3% on 3 January.
#[test]
fn an_option_valued_through_a_smile_that_expires_first_keeps_its_holder_loose() {
    let mut bodies: Vec<String> = vec![
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"mark_price","instrument":"BTCUSDT","price":"60000""#.to_owned(),
        r#""type":"vol_surface","underlying":"BTC","expiry":"02JAN26","strikes":[30000,45000,60000,75000,90000],"vols":[0.72,0.64,0.60,0.63,0.68]"#.to_owned(),
    ];
    for i in 0..40_u32 {
        let id = format!("s{i:02}");
        bodies.push(format!(
            r#""type":"deposit","account":"{id}","asset":"USDT","amount":"20000""#
        ));
        bodies.push(format!(
            r#""type":"fill","account":"{id}","instrument":"BTCUSDT","side":"sell","size":"0.5","price":"{}","counterparty":"external""#,
            60_000 + 10 * i
        ));
        if i % 4 == 0 {
            bodies.push(format!(
                r#""type":"deposit","account":"{id}","asset":"USDC","amount":"1500""#
            ));
            bodies.push(format!(
                r#""type":"fill","account":"{id}","instrument":"BTC_USDC-27DEC26-65000-C","side":"buy","size":"0.1","price":"13000","counterparty":"external""#
            ));
        }
    }
    bodies.extend(WHALE_LONG_15_BTCUSDT_AT_50X.map(str::to_owned));
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (mut engine, effects) = play(&refs);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Rejected { .. })),
        "{effects:?}"
    );
    let mut fell = Vec::new();
    for (offset, body) in [
        r#""type":"index_price","underlying":"BTC","price":"58200""#,
        r#""type":"mark_price","instrument":"BTCUSDT","price":"58200""#,
    ]
    .iter()
    .enumerate()
    {
        let seq = bodies.len() + 1 + offset;
        let line = format!(r#"{{"seq":{seq},"ts":"2026-01-03T09:00:{offset:02}Z",{body}}}"#);
        fell.extend(engine.apply(&parse_line("fall", seq, &line).unwrap()));
    }
    let deleveraged: Vec<&str> = fell
        .iter()
        .filter_map(|e| match e {
            Effect::Adl { counterparty, .. } => Some(counterparty.as_str()),
            _ => None,
        })
        .collect();
    // Their reports failing, the option holders rank first (the fallback equity), the highest
    // entry (the largest profit) first.
    let holders: Vec<String> = (0..10).rev().map(|n| format!("s{:02}", 4 * n)).collect();
    assert!(deleveraged.len() > holders.len(), "{deleveraged:?}");
    assert_eq!(deleveraged[..holders.len()], holders, "{deleveraged:?}");
}

/// A second inverse perpetual on BTC, settled in BTC, so that inverse holders can carry another
/// contract as a term of their rest.
const LIST_BTCUSD_INVERSE: &str = r#""type":"list_instrument","name":"BTCUSD-INVERSE","spec":{"kind":"perpetual","style":"inverse","underlying":"BTC","settlement":"BTC","contract_size":"10","size_step":"10","margin":"deribit_btc_inverse"}"#;

/// The ADL ranking of inverse perpetuals through the index is the one full margin reports give,
/// on random populations: accounts holding BTC (the contracts' coin), long or short
/// `BTC-PERPETUAL` and `BTCUSD-INVERSE` (sizes in USD, entries 3% either side of 60,000), some
/// at a chosen leverage; one in five also holds USDT (a term in the reciprocal of BTC's price),
/// one in five has an automated top-up from outside.
/// Prices walk 8% either side so the rest's other contract has moved from its reference.
#[test]
fn the_inverse_adl_ranking_is_the_one_full_reports_give_on_random_populations() {
    use rand::Rng;
    let population = InversePopulation {
        listing: LIST_BTCUSD_INVERSE,
        contracts: ["BTC-PERPETUAL", "BTCUSD-INVERSE"],
        contract_usd: 10,
        other_index: None,
        other_coin: |rng, id| {
            format!(
                r#""type":"deposit","account":"{id}","asset":"USDT","amount":"{}""#,
                rng.random_range(100..5_000)
            )
        },
        top_up: top_up_from_outside,
    };
    for seed in 0..4u64 {
        population.assert_ranked_as_reports(venue(), seed);
    }
}

/// A random population of inverse holders (see the tests that use it): 150 accounts holding
/// 0.02-0.8 BTC, long or short each of `contracts` (sizes in USD, in whole contracts of
/// `contract_usd`, up to twice the deposit's value; entries 3% either side of 60,000), some at
/// a chosen leverage; one in five also holds `other_coin`, one in five has the `top_up` rule.
/// Then BTC walks 8% down, 8% up and back, the second contract 0.2% above the first (its
/// reciprocal moves apart).
struct InversePopulation {
    /// The listing of the second contract.
    listing: &'static str,
    contracts: [&'static str; 2],
    contract_usd: u32,
    /// An index the other coin needs, opened with the rest.
    other_index: Option<&'static str>,
    other_coin: fn(&mut rand_chacha::ChaCha8Rng, &str) -> String,
    top_up: fn(&str) -> String,
}

impl InversePopulation {
    /// Plays the population of `seed` on `venue` (some automated top-up moves money, fewer
    /// than 30 events refused) and compares the engine's ADL queues of both contracts with
    /// those full margin reports give, at three marks each.
    fn assert_ranked_as_reports(&self, venue: Venue, seed: u64) {
        use rand::{Rng, SeedableRng};
        let [first, second] = self.contracts;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut bodies: Vec<String> = vec![
            self.listing.to_owned(),
            r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        ];
        bodies.extend(self.other_index.map(str::to_owned));
        for contract in self.contracts {
            bodies.push(format!(
                r#""type":"mark_price","instrument":"{contract}","price":"60000""#
            ));
        }
        let step = Decimal::from(self.contract_usd);
        for i in 0..150 {
            let id = format!("a{i:03}");
            let btc = Decimal::new(rng.random_range(2..80), 2);
            bodies.push(format!(
                r#""type":"deposit","account":"{id}","asset":"BTC","amount":"{btc}""#
            ));
            if rng.random_bool(0.2) {
                bodies.push((self.other_coin)(&mut rng, &id));
            }
            if i % 5 == 4 {
                bodies.push((self.top_up)(&id));
            }
            for instrument in self.contracts {
                let Some(side) = random_side(&mut rng, &id, instrument, &mut bodies) else {
                    continue;
                };
                let entry = 60_000 * rng.random_range(970..1030) / 1000;
                let usd = (btc * dec!(60000) * Decimal::new(rng.random_range(5..200), 2) / step)
                    .floor()
                    .max(Decimal::ONE)
                    * step;
                bodies.push(format!(
                    r#""type":"fill","account":"{id}","instrument":"{instrument}","side":"{side}","size":"{usd}","price":"{entry}","counterparty":"external""#
                ));
            }
        }
        let down_and_up = (92..100).rev().chain(93..=108).chain((100..108).rev());
        for percent in down_and_up {
            let btc = 60_000 * percent / 100;
            let moved = 60_120 * percent / 100;
            bodies.push(format!(
                r#""type":"index_price","underlying":"BTC","price":"{btc}""#
            ));
            bodies.push(format!(
                r#""type":"mark_price","instrument":"{first}","price":"{btc}""#
            ));
            bodies.push(format!(
                r#""type":"mark_price","instrument":"{second}","price":"{moved}""#
            ));
        }
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let (mut engine, effects) = play_at(venue, &refs);
        assert!(
            topped_up(&effects) > 0,
            "seed {seed}: no automated top-up moved money"
        );
        let refused = effects
            .iter()
            .filter(|e| matches!(e, Effect::Rejected { .. }))
            .count();
        assert!(refused < 30, "seed {seed}: {refused} events refused");
        assert_ranked_as_reports(
            &mut engine,
            seed,
            &[
                (first, [dec!(58500), dec!(60000), dec!(61700)]),
                (second, [dec!(58600), dec!(60120), dec!(61800)]),
            ],
        );
    }
}

/// A crowded inverse contract's ADL ranks its queue through the index as a linear one does.
/// 1,500 accounts hold 0.02-0.8 BTC and are short `BTC-PERPETUAL` (sizes in USD) at 1-4x from
/// entries 1% below to 3% above 60,000; half of them also hold `BTCUSD-INVERSE`, long or short
/// (a term of their rest in BTC); one in fifty also holds USDT (a term in the reciprocal of
/// BTC's price, none of them loose: scored at every ranking, the 30 made 44 scorings of 14
/// deleveraged); one in four has an automated top-up rule.
/// One account holding 1 BTC, long 2,400,000 USD of `BTC-PERPETUAL` (40x), is bankrupt when BTC
/// falls 3% with an empty fund. Debug builds check every placed candidate against a score for
/// every holder; here the count bounded and scored is held, and an engine restored from a
/// snapshot before the fall deleverages the same way.
#[test]
fn a_crowded_inverse_contracts_adl_scores_the_head_of_its_queue_not_every_holder() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut bodies: Vec<String> = vec![
        LIST_BTCUSD_INVERSE.to_owned(),
        r#""type":"index_price","underlying":"BTC","price":"60000""#.to_owned(),
        r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"60000""#.to_owned(),
        r#""type":"mark_price","instrument":"BTCUSD-INVERSE","price":"60000""#.to_owned(),
    ];
    let holders = 1_500;
    for i in 0..holders {
        let id = format!("h{i:04}");
        let (entry, usd) = deposit_for_inverse_short(&mut rng, &id, dec!(10), &mut bodies);
        if i % 50 == 7 {
            bodies.push(format!(
                r#""type":"deposit","account":"{id}","asset":"USDT","amount":"500""#
            ));
        }
        if i % 4 == 1 {
            bodies.push(format!(
                r#""type":"set_auto_top_up","account":"{id}","source":"external","trigger_health":"1.3","target_health":"1.6","per_event_cap":"500","per_day_cap":"2000""#
            ));
        }
        bodies.push(format!(
            r#""type":"fill","account":"{id}","instrument":"BTC-PERPETUAL","side":"sell","size":"{usd}","price":"{entry}","counterparty":"external""#
        ));
        if rng.random_bool(0.5) {
            let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
            bodies.push(format!(
                r#""type":"fill","account":"{id}","instrument":"BTCUSD-INVERSE","side":"{side}","size":"{}","price":"60000","counterparty":"external""#,
                (usd / dec!(20)).floor().max(Decimal::ONE) * dec!(10)
            ));
        }
    }
    bodies.extend(
        [
            r#""type":"deposit","account":"whale","asset":"BTC","amount":"1""#,
            r#""type":"set_leverage","account":"whale","instrument":"BTC-PERPETUAL","leverage":"45""#,
            r#""type":"fill","account":"whale","instrument":"BTC-PERPETUAL","side":"buy","size":"2400000","price":"60000","counterparty":"external""#,
        ]
        .map(str::to_owned),
    );
    crowded_fall(
        &bodies,
        &[
            r#""type":"index_price","underlying":"BTC","price":"58200""#,
            r#""type":"mark_price","instrument":"BTCUSD-INVERSE","price":"58230""#,
            r#""type":"mark_price","instrument":"BTC-PERPETUAL","price":"58200""#,
        ],
        "BTC-PERPETUAL",
        dec!(58200),
        0,
    );
}
