//! How two engine events scale with the holders of a contract, on the product path
//! (`Engine::apply`), for the engine's authors:
//!
//! 1. the first `mark_price` of a contract, 0.5% above the index: its holders were valued at the
//!    index until then, and banded on the mark with the index standing in (each values nothing
//!    else at the index); those whose band the mark crosses are examined (the count is printed);
//! 2. an auto-deleveraging in a crowded contract: one account long ETHUSDT at 45x is bankrupt
//!    after a 3% fall of the ETH index, with an empty insurance fund, against N opposite (short)
//!    holders, every one in profit: the engine ranks its queue through its ADL index (profit x
//!    leverage; it scores the holders whose group's bound reaches the head of the queue, see
//!    `engine/adl_index.rs`) and takes the position from the first. It prints the candidates
//!    scored, the accounts deleveraged and the state hash after the ADL, so two builds can be
//!    compared on the same stream.
//!
//! For each population size (default 10,000, 100,000 and 1,000,000 holders) it opens the
//! holders through ordinary events (a USDT deposit of 1,000-50,000, a short BTCUSDT and a short
//! ETHUSDT each at 2-5x against `external`), times an ordinary index update as the floor, the
//! first BTCUSDT mark, one later BTCUSDT mark, and the index update that deleverages, and prints
//! each time with its cost per holder. Building the events is not timed.
//!
//! With an isolated share `f` (default 0), a holder in `f` isolates its ETHUSDT short with a
//! third of its deposit: those are ranked by their cross equity (see `engine/adl_index.rs`).
//!
//! With `inverse` as the third argument the crowded contract is the inverse `BTC-PERPETUAL`
//! (settled in BTC): each holder deposits its collateral in BTC and is short `BTC-PERPETUAL` at
//! 2-5x (sizes in USD) and nothing else; the bankrupt account holds 0.25 BTC, long 600,000 USD
//! (40x), and the BTC index falls 3%. The first BTCUSDT mark (held by nobody then) is no
//! measure in that mode; the inverse contract's own first mark is timed after the ADL.
//!
//! Usage: `engine_scaling [holders,holders,... (10000,100000,1000000)] [isolated share (0)]
//! [linear | inverse (linear)]`.
//! Memory: about 3 GiB at 1,000,000 holders. Run it through `bench/engine.sh` (release, pinned to one core).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use solvent_core::money::Quantity;
use solvent_core::money::{Amount, Price};
use solvent_core::venue::Venue;
use solvent_engine::Engine;
use solvent_engine::config::EngineConfig;
use solvent_engine::effect::Effect;
use solvent_engine::event::{
    Event, Fill, IndexPrice, MarkPrice, SetIsolatedMargin, SetLeverage, Side,
};
use solvent_engine::ledger::EXTERNAL;
use support::{LEGS, Stream, account_id, cents, deposit, fill, index};

#[path = "../benches/support/mod.rs"]
mod support;

/// The bankrupt account.
const WHALE: &str = "whale";

fn apply_timed(engine: &mut Engine, stream: &mut Stream, event: Event) -> (Duration, Vec<Effect>) {
    stream.ts_ms += 100;
    let envelope = stream.next(event);
    let start = Instant::now();
    let effects = engine.apply(&envelope);
    (start.elapsed(), effects)
}

fn count(effects: &[Effect], pick: fn(&Effect) -> bool) -> usize {
    effects.iter().filter(|e| pick(e)).count()
}

/// The inverse contract of the `inverse` mode, its size step (USD) and the BTC price it opens at.
const INVERSE: &str = "BTC-PERPETUAL";
const INVERSE_STEP: f64 = 10.0;
const BTC_PRICE: f64 = 60_000.0;

/// A fill of `usd` of the inverse contract at `BTC_PRICE`, with a 0.05% taker fee in BTC.
fn inverse_fill(account: &str, long: bool, usd: Decimal) -> Event {
    let price = cents(BTC_PRICE);
    Event::Fill(Fill {
        account: account.to_owned(),
        instrument: INVERSE.to_owned(),
        side: if long { Side::Buy } else { Side::Sell },
        size: Quantity(usd),
        price: Price(price),
        fee: Amount((usd / price * Decimal::new(5, 4)).round_dp(8)),
        counterparty: EXTERNAL.to_owned(),
    })
}

/// The opening events of holder `id` with `collateral` USD: linear (a USDT deposit, short
/// BTCUSDT and ETHUSDT, ETHUSDT isolated in `isolated_share`) or inverse (a BTC deposit, short
/// the inverse contract).
fn holder_events(
    id: &str,
    collateral: f64,
    rng: &mut ChaCha8Rng,
    isolated_share: f64,
    inverse: bool,
) -> Vec<Event> {
    if inverse {
        let leverage = 2.0 + 3.0 * rng.random::<f64>();
        let steps = (collateral * leverage / INVERSE_STEP).floor().max(1.0) as i64;
        return vec![
            deposit(
                id,
                "BTC",
                Decimal::new((collateral / BTC_PRICE * 1e8).round() as i64, 8),
            ),
            inverse_fill(id, false, Decimal::from(steps) * Decimal::from(10)),
        ];
    }
    let mut events = vec![deposit(id, "USDT", cents(collateral))];
    for leg in &LEGS {
        let leverage = 2.0 + 3.0 * rng.random::<f64>();
        let units =
            (collateral * leverage / 2.0 / leg.price * 10f64.powi(leg.scale as i32)).floor() as i64;
        if units > 0 {
            events.push(fill(id, EXTERNAL, leg, false, units));
        }
    }
    if isolated_share > 0.0 && rng.random::<f64>() < isolated_share {
        events.push(Event::SetIsolatedMargin(SetIsolatedMargin {
            account: id.to_owned(),
            instrument: LEGS[1].instrument.to_owned(),
            amount: Amount(cents(collateral / 3.0)),
        }));
    }
    events
}

fn run(
    holders: usize,
    isolated_share: f64,
    inverse: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues/default.toml");
    let venue = Venue::from_toml(path, &std::fs::read_to_string(path)?)?;
    let mut engine = Engine::new(venue, EngineConfig::default());
    let mut stream = Stream::new();
    for leg in &LEGS {
        engine.apply(&stream.next(index(leg, leg.price)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(holders as u64);
    let setup = Instant::now();
    let mut rejected = 0;
    for i in 0..holders {
        let id = account_id(i);
        let collateral = (1_000f64.ln() + rng.random::<f64>() * (50f64.ln())).exp();
        for event in holder_events(&id, collateral, &mut rng, isolated_share, inverse) {
            rejected += count(&engine.apply(&stream.next(event)), |e| {
                matches!(e, Effect::Rejected { .. })
            });
        }
    }
    // The whale: 10,000 USDT, 150 ETH long at 3,000 (450,000 notional, 45x); or 0.25 BTC, long
    // 600,000 USD of the inverse contract (40x).
    let eth = &LEGS[1];
    let whale = if inverse {
        vec![
            deposit(WHALE, "BTC", Decimal::new(25, 2)),
            Event::SetLeverage(SetLeverage {
                account: WHALE.to_owned(),
                instrument: INVERSE.to_owned(),
                leverage: Decimal::from(45),
            }),
            inverse_fill(WHALE, true, Decimal::from(600_000)),
        ]
    } else {
        vec![
            deposit(WHALE, "USDT", Decimal::from(10_000)),
            Event::SetLeverage(SetLeverage {
                account: WHALE.to_owned(),
                instrument: eth.instrument.to_owned(),
                leverage: Decimal::from(eth.max_leverage),
            }),
            fill(WHALE, EXTERNAL, eth, true, 15_000),
        ]
    };
    for event in whale {
        rejected += count(&engine.apply(&stream.next(event)), |e| {
            matches!(e, Effect::Rejected { .. })
        });
    }
    println!(
        "holders {holders}: opened in {:.1} s ({rejected} events rejected)",
        setup.elapsed().as_secs_f64()
    );
    let per = |d: Duration| d.as_secs_f64() * 1e6 / holders as f64;
    // Floor: an ordinary BTC index update (nobody leaves a band).
    let (floor, _) = apply_timed(
        &mut engine,
        &mut stream,
        Event::IndexPrice(IndexPrice {
            underlying: "BTC".to_owned(),
            price: Price(cents(60_006.0)),
            source: None,
        }),
    );
    println!(
        "  ordinary index update       {:>12.1} us",
        floor.as_secs_f64() * 1e6
    );
    let mark = |price: f64| {
        Event::MarkPrice(MarkPrice {
            instrument: "BTCUSDT".to_owned(),
            price: Price(cents(price)),
        })
    };
    let examined_before = engine.evaluations();
    let (first, effects) = apply_timed(&mut engine, &mut stream, mark(60_306.0));
    let examined_after = engine.evaluations();
    println!(
        "  first mark_price BTCUSDT    {:>12.1} us  {:>6.2} us/holder  ({} effects, {} holders examined)",
        first.as_secs_f64() * 1e6,
        per(first),
        effects.len(),
        examined_after.since(examined_before)
    );
    let (later, _) = apply_timed(&mut engine, &mut stream, mark(60_312.0));
    println!(
        "  later mark_price BTCUSDT    {:>12.1} us",
        later.as_secs_f64() * 1e6
    );
    // ETH (or BTC) falls 3%: the whale is bankrupt; the fund is empty; N shorts are in profit.
    let scored_before = engine.adl_candidates_scored();
    let bounded_before = engine.adl_members_bounded();
    let fall = if inverse {
        index(&LEGS[0], BTC_PRICE * 0.97)
    } else {
        index(eth, eth.price * 0.97)
    };
    let (adl, effects) = apply_timed(&mut engine, &mut stream, fall);
    let scored = engine.adl_candidates_scored() - scored_before;
    let bounded = engine.adl_members_bounded() - bounded_before;
    let adls = count(&effects, |e| matches!(e, Effect::Adl { .. }));
    let deficits = count(&effects, |e| matches!(e, Effect::DeficitBeyondFund { .. }));
    let liquidations = count(&effects, |e| matches!(e, Effect::Liquidation { .. }));
    println!(
        "  index update with ADL       {:>12.1} us  {:>6.2} us/holder  ({adls} adl, \
         {deficits} deficit_beyond_fund, {liquidations} liquidation, {} effects, \
         {bounded} bounded, {scored} candidates scored)",
        adl.as_secs_f64() * 1e6,
        per(adl),
        effects.len()
    );
    if adls == 0 {
        println!("  (no ADL happened: the figure above is not an ADL's cost)");
    }
    // What the ADL chose and the state it left, to compare two builds on the same stream.
    for effect in &effects {
        if let Effect::Adl {
            counterparty,
            size,
            price,
            ..
        } = effect
        {
            println!(
                "    adl {counterparty} {} at {}",
                size.value(),
                price.value()
            );
        }
    }
    println!("  state hash after the ADL      {}", engine.state_hash());
    if inverse {
        // The inverse contract's first mark, 0.5% above the index its holders were valued at:
        // each also holds BTC, which it values at the index, so each watches the mark and is
        // examined (see `engine/bands.rs`, `first_mark`).
        let examined_before = engine.evaluations();
        let (first, effects) = apply_timed(
            &mut engine,
            &mut stream,
            Event::MarkPrice(MarkPrice {
                instrument: INVERSE.to_owned(),
                price: Price(cents(BTC_PRICE * 0.97 * 1.005)),
            }),
        );
        println!(
            "  first mark_price {INVERSE} {:>9.1} us  {:>6.2} us/holder  ({} effects, {} holders examined)",
            first.as_secs_f64() * 1e6,
            per(first),
            effects.len(),
            engine.evaluations().since(examined_before)
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "10000,100000,1000000".to_owned())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let isolated_share: f64 = std::env::args().nth(2).map_or(Ok(0.0), |a| a.parse())?;
    let inverse = match std::env::args().nth(3).as_deref() {
        None | Some("linear") => false,
        Some("inverse") => true,
        Some(other) => return Err(format!("contract: linear or inverse, not {other:?}").into()),
    };
    for holders in sizes {
        run(holders, isolated_share, inverse)?;
    }
    Ok(())
}
