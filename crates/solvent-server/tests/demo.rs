//! The live demo's content: the opening book is accepted whole by the engine, the same seed gives
//! the same events, the replayed 2025-10-10 cascade calls margin, liquidates and moves the
//! insurance fund, the feed drives a running service, and the demo's venue margins its
//! portfolio accounts on the ranges forecast at each replayed close.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use solvent_core::portfolio::MarginMode;
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::Effect;
use solvent_engine::event::{Envelope, Event};
use solvent_engine::ledger::LedgerAccount;
use solvent_server::Config;
use solvent_server::core::{Incoming, Status};
use solvent_server::demo::{self, Extract, Feed, FeedParams, Pace};
use solvent_server::keys::{KeyRing, Scope};
use solvent_store::MemoryJournal;

const SEED: u64 = 20_251_010;

/// The build the figures printed come from.
fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    }
}

fn venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    Venue::from_toml(path, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Applies events in order, numbering them; returns each event's effects.
struct Applier {
    engine: Engine,
    seq: u64,
}

impl Applier {
    fn new(venue: Venue) -> Self {
        Self::with(venue, EngineConfig::default())
    }

    fn with(venue: Venue, config: EngineConfig) -> Self {
        Self {
            engine: Engine::new(venue, config),
            seq: 0,
        }
    }

    fn apply(&mut self, incoming: &Incoming) -> Vec<Effect> {
        self.seq += 1;
        let envelope = Envelope {
            seq: self.seq,
            ts: incoming.ts.expect("demo events carry their time"),
            event: incoming.event.clone(),
        };
        let effects = self.engine.apply(&envelope);
        if self.engine.last_seq() != Some(self.seq) {
            // A refusal takes no sequence number.
            self.seq -= 1;
        }
        effects
    }
}

fn rejection(effects: &[Effect]) -> Option<String> {
    effects.iter().find_map(|e| match e {
        Effect::Rejected { reason, detail } => Some(format!("{reason:?}: {detail}")),
        _ => None,
    })
}

fn account_of(event: &Event) -> Option<&str> {
    match event {
        Event::Deposit(d) => Some(&d.account),
        Event::Fill(f) => Some(&f.account),
        Event::SetMarginMode(m) => Some(&m.account),
        Event::SetLeverage(l) => Some(&l.account),
        _ => None,
    }
}

#[test]
fn the_opening_book_is_accepted_whole_and_holds_the_promised_mix() {
    let venue = venue();
    let extract = Extract::embedded().unwrap();
    let started = Instant::now();
    let opening = demo::population(&venue, SEED, 300, extract.opening_time()).unwrap();
    let generated_in = started.elapsed();
    let mut applier = Applier::new(venue);
    let started = Instant::now();
    let refused: Vec<String> = opening
        .iter()
        .filter_map(|incoming| rejection(&applier.apply(incoming)))
        .collect();
    eprintln!(
        "opening of 300 accounts: {} events, generated in {generated_in:?}, applied in {:?} ({})",
        opening.len(),
        started.elapsed(),
        build()
    );
    assert!(
        refused.is_empty(),
        "{} refused, first: {:?}",
        refused.len(),
        refused.first()
    );

    // Prices first: the indices, then the smiles of both expiries on both underlyings.
    let kinds: Vec<&str> = opening
        .iter()
        .take(6)
        .map(|i| match i.event {
            Event::IndexPrice(_) => "index",
            Event::VolSurface(_) => "smile",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["index", "index", "smile", "smile", "smile", "smile"]
    );

    let ids: BTreeSet<&str> = opening
        .iter()
        .filter_map(|i| account_of(&i.event))
        .collect();
    let count = |prefix: &str| ids.iter().filter(|id| id.starts_with(prefix)).count();
    // 80% / 10% / 10% of 300.
    assert_eq!((count("acct-"), count("pm-"), count("opt-")), (240, 30, 30));
    let engine = &applier.engine;
    let portfolio_mode = engine
        .accounts()
        .values()
        .filter(|a| a.mode == MarginMode::Portfolio)
        .count();
    assert_eq!(portfolio_mode, 30);
    // Every portfolio-margin account holds a perpetual or an option, every option account an
    // option (names with an expiry and a strike).
    let option = |name: &str| name.ends_with("-C") || name.ends_with("-P");
    for account in engine.accounts().values() {
        let names: Vec<&str> = account.positions.keys().map(|k| k.as_str()).collect();
        if account.id.starts_with("opt-") {
            assert!(names.iter().any(|n| option(n)), "{}: {names:?}", account.id);
        }
        if account.id.starts_with("pm-") {
            assert!(!names.is_empty(), "{}", account.id);
        }
    }
    let options_held = engine
        .accounts()
        .values()
        .filter(|a| a.positions.keys().any(|k| option(k)))
        .count();
    assert!(options_held >= 50, "{options_held} accounts hold options");
    // Several collateral coins.
    let assets: BTreeSet<&str> = opening
        .iter()
        .filter_map(|i| match &i.event {
            Event::Deposit(d) if d.account != "insurance_fund" => Some(d.asset.as_str()),
            _ => None,
        })
        .collect();
    for asset in ["USDT", "USDC", "BTC", "ETH"] {
        assert!(assets.contains(asset), "{assets:?}");
    }
    // Nobody opens in danger: the opening is a healthy book.
    let in_danger = engine
        .accounts()
        .values()
        .filter(|a| a.state >= solvent_risk::AccountState::ReduceOnly)
        .count();
    assert_eq!(in_danger, 0);
}

#[test]
fn the_same_seed_gives_the_same_opening_and_feed() {
    let venue = venue();
    let extract = Extract::embedded().unwrap();
    let at = extract.opening_time();
    let events = |opening: &[Incoming]| -> Vec<(Option<jiff::Timestamp>, Event)> {
        opening.iter().map(|i| (i.ts, i.event.clone())).collect()
    };
    let first = demo::population(&venue, SEED, 200, at).unwrap();
    let second = demo::population(&venue, SEED, 200, at).unwrap();
    let other = demo::population(&venue, SEED + 1, 200, at).unwrap();
    assert_eq!(events(&first), events(&second));
    assert_ne!(events(&first), events(&other));

    let params = FeedParams {
        days: Some(2),
        ..FeedParams::default()
    };
    let feed = |seed: u64| {
        Feed::new(
            &venue,
            &extract,
            &first,
            FeedParams {
                seed,
                ..params.clone()
            },
        )
        .unwrap()
        .map(|i| (i.ts, i.event))
        .collect::<Vec<_>>()
    };
    let (a, b, c) = (feed(1), feed(1), feed(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Two days of minutes for two underlyings, and the last day's closes at its end.
    let prices = a
        .iter()
        .filter(|(_, e)| matches!(e, Event::IndexPrice(_)))
        .count();
    assert_eq!(prices, 2 * 1_440 * 2 + 2);
    // In time order.
    assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn every_day_runs_from_its_open_through_its_high_and_low_to_its_close() {
    let venue = venue();
    let extract = Extract::embedded().unwrap();
    let opening = demo::population(&venue, SEED, 10, extract.opening_time()).unwrap();
    let params = FeedParams {
        days: Some(extract.days.len()),
        ..FeedParams::default()
    };
    let mut by_day: BTreeMap<(jiff::civil::Date, String), Vec<Decimal>> = BTreeMap::new();
    for incoming in Feed::new(&venue, &extract, &opening, params).unwrap() {
        if let Event::IndexPrice(p) = incoming.event {
            let date = incoming
                .ts
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date();
            by_day
                .entry((date, p.underlying))
                .or_default()
                .push(p.price.value());
        }
    }
    for day in &extract.days {
        for bar in &day.bars {
            let path = &by_day[&(day.date, bar.underlying.clone())];
            assert_eq!(
                path.first(),
                Some(&bar.open),
                "{} {}",
                day.date,
                bar.underlying
            );
            assert_eq!(
                path.iter().max(),
                Some(&bar.high),
                "{} {}",
                day.date,
                bar.underlying
            );
            assert_eq!(
                path.iter().min(),
                Some(&bar.low),
                "{} {}",
                day.date,
                bar.underlying
            );
        }
    }
    // The history ends on the last day's closes, at midnight after it.
    let last = extract.days.last().unwrap();
    let after = last.date.tomorrow().unwrap();
    for bar in &last.bars {
        assert_eq!(by_day[&(after, bar.underlying.clone())], [bar.close]);
    }
}

/// The demo's venue: the default one with BTC's and ETH's ranges scaled, as `solvent serve
/// --demo` records it.
fn scaled_venue() -> Venue {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let text = std::fs::read_to_string(path).unwrap() + demo::VOL_SCALED_TOML;
    Venue::from_toml("demo venue", &text).unwrap()
}

/// `solvent serve --demo`'s forecasts, made as the service's engine loop makes them: before an
/// event whose time crosses 00:00 UTC, the closes' `scenario_range` events; the first (the
/// close of 2025-09-30, before the replay's first minute) from the committed year alone, the
/// next ones from it and the replayed closes. Portfolio accounts report the ranges.
#[test]
fn the_demo_margins_its_portfolio_accounts_on_the_range_forecast_at_each_replayed_close() {
    let venue = scaled_venue();
    let extract = Extract::embedded().unwrap();
    let opening = demo::population(&venue, SEED, 50, extract.opening_time()).unwrap();
    let params = FeedParams {
        days: Some(3),
        ..FeedParams::default()
    };
    let feed = Feed::new(&venue, &extract, &opening, params).unwrap();
    let mut forecaster = demo::forecaster().unwrap();
    let mut applier = Applier::new(venue.clone());
    let mut scheduled = Vec::new();
    let observe = |applier: &Applier,
                   forecaster: &mut solvent_server::forecast::Forecaster,
                   incoming: &Incoming| {
        forecaster.observe(&Envelope {
            seq: applier.seq,
            ts: incoming.ts.unwrap(),
            event: incoming.event.clone(),
        });
    };
    for incoming in opening.iter().cloned().chain(feed) {
        for (at, event) in forecaster.due(incoming.ts.unwrap(), applier.engine.venue()) {
            let forecast = Incoming {
                client_id: None,
                ts: Some(at),
                event,
            };
            let effects = applier.apply(&forecast);
            assert_eq!(rejection(&effects), None, "{forecast:?}");
            observe(&applier, &mut forecaster, &forecast);
            scheduled.push(forecast);
        }
        let effects = applier.apply(&incoming);
        if rejection(&effects).is_none() {
            observe(&applier, &mut forecaster, &incoming);
        }
    }
    let days: Vec<(String, String, String)> = scheduled
        .iter()
        .map(|forecast| {
            let Event::ScenarioRange(range) = &forecast.event else {
                unreachable!()
            };
            eprintln!(
                "{} {} range {:.4} ({:?}, sigma {:.4})",
                range.as_of, range.underlying, range.range, range.bound, range.sigma_daily
            );
            (
                forecast.ts.unwrap().to_string(),
                range.as_of.to_string(),
                range.underlying.clone(),
            )
        })
        .collect();
    let mut want = Vec::new();
    for (close, day) in [
        ("2025-10-01", "2025-09-30"),
        ("2025-10-02", "2025-10-01"),
        ("2025-10-03", "2025-10-02"),
        ("2025-10-04", "2025-10-03"),
    ] {
        for underlying in ["BTC", "ETH"] {
            want.push((
                format!("{close}T00:00:00Z"),
                day.to_owned(),
                underlying.to_owned(),
            ));
        }
    }
    assert_eq!(days, want);
    // The first close is the committed history's own: what `solvent forecast --history
    // crates/solvent-server/demo/history --history-complete` writes.
    for (forecast, (underlying, text)) in scheduled.iter().zip(demo::HISTORY) {
        let history = solvent_risk::history::PriceHistory::from_texts(
            &[solvent_risk::history::SeriesText {
                underlying,
                origin: underlying,
                text,
            }],
            &[],
            &solvent_risk::history::LoadOptions::default(),
        )
        .unwrap();
        let ranges = solvent_risk::vol_scaled::venue_ranges(
            &venue,
            underlying,
            history.dates(),
            history.log_returns(0),
        )
        .unwrap()
        .unwrap();
        let (_, event) =
            solvent_server::forecast::scenario_range_event(ranges.last().unwrap()).unwrap();
        assert_eq!(forecast.event, event);
    }
    // Every portfolio account exposed to BTC or ETH reports the last close's ranges.
    let portfolio_accounts: Vec<String> = opening
        .iter()
        .filter_map(|incoming| match &incoming.event {
            Event::SetMarginMode(m) if m.mode == MarginMode::Portfolio => Some(m.account.clone()),
            _ => None,
        })
        .collect();
    assert!(!portfolio_accounts.is_empty());
    let mut shown = 0;
    for account in &portfolio_accounts {
        for range in applier.engine.ranges_of(account) {
            assert_eq!(range.as_of.to_string(), "2025-10-03", "{account}");
            assert!(range.range < range.static_range, "{account}: {range:?}");
            shown += 1;
        }
    }
    assert!(shown > 0);
}

/// What a run of the feed did, day by day.
#[derive(Default, Debug)]
struct DayTally {
    events: usize,
    flow: usize,
    flow_refused: usize,
    margin_calls: usize,
    liquidations: usize,
    fund_changes: usize,
}

#[test]
fn the_replayed_cascade_calls_margin_liquidates_and_moves_the_insurance_fund() {
    let venue = venue();
    let extract = Extract::embedded().unwrap();
    let opening = demo::population(&venue, SEED, 200, extract.opening_time()).unwrap();
    // Five-minute steps keep a debug run short; the engine's staleness limit is widened to
    // match, as a service fed at that pace would configure it (at the default one-minute steps
    // the default limit holds).
    let mut config = EngineConfig::default();
    config.guards.index_stale_ms = 300_000;
    let mut applier = Applier::with(venue.clone(), config);
    for incoming in &opening {
        assert_eq!(rejection(&applier.apply(incoming)), None);
    }
    // Through 2025-10-11: the rally, the crash on the 10th and the day after.
    let params = FeedParams {
        seed: SEED,
        steps_per_day: 288,
        days: Some(11),
        ..FeedParams::default()
    };
    let mut feed = Feed::new(&venue, &extract, &opening, params).unwrap();
    let crash = jiff::civil::date(2025, 10, 10);
    let fund = |engine: &Engine| {
        engine
            .ledger()
            .balance(&LedgerAccount::InsuranceFund, "USDT")
    };
    let mut fund_before_crash = None;
    let mut fund_after_crash = None;
    let mut tally: BTreeMap<jiff::civil::Date, DayTally> = BTreeMap::new();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    let mut applied = 0usize;
    while let Some(incoming) = feed.next() {
        let date = incoming
            .ts
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        if date == crash && fund_before_crash.is_none() {
            fund_before_crash = Some(fund(&applier.engine));
        }
        if date > crash && fund_after_crash.is_none() {
            fund_after_crash = Some(fund(&applier.engine));
        }
        let flow =
            account_of(&incoming.event).is_some() || matches!(incoming.event, Event::Withdraw(_));
        let effects = applier.apply(&incoming);
        applied += 1;
        feed.observe_effects(&effects);
        let day = tally.entry(date).or_default();
        day.events += 1;
        if flow {
            day.flow += 1;
        }
        if let Some(reason) = rejection(&effects) {
            assert!(flow, "a price, smile or funding was refused: {reason}");
            day.flow_refused += 1;
            *refusals
                .entry(reason.split(':').next().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        for effect in &effects {
            match effect {
                Effect::MarginCall { .. } => day.margin_calls += 1,
                Effect::Liquidation { .. } => day.liquidations += 1,
                Effect::InsuranceFundChanged { .. } => day.fund_changes += 1,
                _ => {}
            }
        }
    }
    let elapsed = started.elapsed();
    for (date, day) in &tally {
        eprintln!("{date}: {day:?}");
    }
    eprintln!(
        "feed: {applied} events in {elapsed:?} ({:.0} events/s, {}); refusals {refusals:?}",
        applied as f64 / elapsed.as_secs_f64(),
        build()
    );
    let day = &tally[&crash];
    assert!(day.margin_calls > 0, "{day:?}");
    assert!(day.liquidations > 0, "{day:?}");
    assert!(day.fund_changes > 0, "{day:?}");
    let (before, after) = (fund_before_crash.unwrap(), fund_after_crash.unwrap());
    eprintln!("insurance fund USDT: {before} before the crash, {after} after");
    assert_ne!(before, after);
    // Flow the engine refuses (a trade by an account the feed last saw healthy that has since
    // fallen, a withdrawal beyond what is withdrawable) stays rare.
    let (flow, refused) = tally
        .values()
        .fold((0, 0), |(f, r), d| (f + d.flow, r + d.flow_refused));
    assert!(flow > 0);
    assert!(
        refused * 20 <= flow,
        "{refused} of {flow} flow events refused: {refusals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_drives_a_running_service_into_more_than_one_state() {
    let venue = venue();
    let extract = Extract::embedded().unwrap();
    let opening = demo::population(&venue, SEED, 200, extract.opening_time()).unwrap();
    let mut ring = KeyRing::in_memory();
    let viewer = ring.add(Scope::Viewer, "2025-10-01T00:00:00Z").unwrap();
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    let running = solvent_server::start(
        Engine::new(venue.clone(), EngineConfig::default()),
        Box::new(MemoryJournal::default()),
        ring,
        &config,
    )
    .await
    .unwrap();
    let core = &running.state.core;
    for chunk in opening.chunks(1_000) {
        let replies = core.submit(chunk.to_vec()).unwrap().await.unwrap().unwrap();
        assert!(replies.iter().all(|r| r.status == Status::Accepted));
    }
    let mut feed = Feed::new(&venue, &extract, &opening, FeedParams::default()).unwrap();
    // As fast as the engine takes it, until the view shows an account out of `healthy` (a
    // debug build on a loaded machine takes a few thousand events a second, so a fixed time
    // says nothing of how far the feed got), for at most two minutes.
    let pace = Pace {
        speed: 1e9,
        ..Pace::default()
    };
    // The counts the view showed when it first held more than one state: what the test
    // asserts (an account that went into margin call may be healthy again by the time the
    // feed's last answers are in, so the view after the run says nothing).
    let addr = running.addr;
    let seen: Arc<Mutex<Option<serde_json::Map<String, serde_json::Value>>>> =
        Arc::new(Mutex::new(None));
    let states_seen = |viewer: String, seen: Arc<Mutex<_>>| async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let (status, body) =
                support::call(addr, "GET", "/v1/accounts?limit=1", Some(&viewer), None).await;
            if let Some(counts) = body["counts"].as_object()
                && status == 200
                && counts.len() > 1
            {
                if let Ok(mut seen) = seen.lock() {
                    *seen = Some(counts.clone());
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let started = Instant::now();
    let report = demo::run_feed(
        core,
        &mut feed,
        &pace,
        states_seen(viewer.clone(), Arc::clone(&seen)),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "service: {report:?} in {elapsed:?} ({:.0} events/s sent, {})",
        report.events as f64 / elapsed.as_secs_f64(),
        build()
    );
    assert!(report.events > 0 && report.accepted > 0);
    // The stop is honoured: the run ends after it, once the answers in flight are in (not a
    // speed check: a loaded machine may take long over those answers).
    assert!(elapsed < Duration::from_secs(240), "{elapsed:?}");
    // Let the last answers reach the view.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, body) = support::call(
        running.addr,
        "GET",
        "/v1/accounts?limit=20",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let counts = body["counts"].as_object().unwrap();
    let seen = seen.lock().unwrap().take();
    eprintln!("states while the feed ran: {seen:?}; after it: {counts:?}");
    let seen = seen.expect("the view held one state only for two minutes of feed");
    assert!(seen.len() > 1, "{seen:?}");
    // No account lost, whatever its state now (the feed's flow may open accounts after the
    // first look, so the view can count more, never fewer).
    let total = |counts: &serde_json::Map<String, serde_json::Value>| {
        counts
            .values()
            .map(|n| n.as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert!(total(&seen) <= total(counts), "{seen:?} against {counts:?}");
    running.stop().await.unwrap();
}

/// The full demo's figures: generating and applying the 10,000-account opening, then the feed's
/// first `SOLVENT_DEMO_EVENTS` events (default 20,000) applied to the engine. Run with
/// `cargo test -p solvent-server --test demo -- --ignored --nocapture` (add `--release` for the
/// product's figures).
#[test]
#[ignore = "a measurement, minutes long in a debug build"]
fn measure_the_ten_thousand_account_demo() {
    let venue = venue();
    let extract = Extract::embedded().unwrap();
    let started = Instant::now();
    let opening = demo::population(&venue, SEED, 10_000, extract.opening_time()).unwrap();
    let generated_in = started.elapsed();
    let mut applier = Applier::new(venue.clone());
    let started = Instant::now();
    let refused = opening
        .iter()
        .filter(|incoming| rejection(&applier.apply(incoming)).is_some())
        .count();
    let applied_in = started.elapsed();
    eprintln!(
        "opening: {} events for 10,000 accounts, generated in {generated_in:?}, applied in {applied_in:?} ({}), {refused} refused",
        opening.len(),
        build()
    );
    assert_eq!(refused, 0);
    let limit: usize = std::env::var("SOLVENT_DEMO_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut feed = Feed::new(&venue, &extract, &opening, FeedParams::default()).unwrap();
    let started = Instant::now();
    let (mut events, mut flow, mut generating) = (0usize, 0usize, Duration::ZERO);
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let mut effects_seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut reached = None;
    loop {
        let before = Instant::now();
        let Some(incoming) = feed.next() else {
            break;
        };
        generating += before.elapsed();
        reached = incoming.ts;
        if account_of(&incoming.event).is_some() || matches!(incoming.event, Event::Withdraw(_)) {
            flow += 1;
        }
        let effects = applier.apply(&incoming);
        if let Some(reason) = rejection(&effects) {
            *refusals
                .entry(reason.split(':').next().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        for effect in &effects {
            let kind = match effect {
                Effect::MarginCall { .. } => "margin_call",
                Effect::Liquidation { .. } => "liquidation",
                Effect::InsuranceFundChanged { .. } => "insurance_fund_changed",
                Effect::Adl { .. } => "adl",
                _ => continue,
            };
            *effects_seen.entry(kind).or_default() += 1;
        }
        feed.observe_effects(&effects);
        events += 1;
        if events >= limit {
            break;
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "feed: {events} events to {reached:?} in {elapsed:?}: {:.0} events/s applied ({generating:?} generating, {}); {flow} flow events, refused {refusals:?}; effects {effects_seen:?}",
        events as f64 / elapsed.as_secs_f64(),
        build()
    );
}
