//! What the load generator sends: a seeded population opened first (`solvent_engine::population`:
//! index prices, deposits, leverage settings, fills), then a steady mix drawn from a ChaCha8
//! stream: index prices and marks that follow a slow swing down and back (so margin calls and
//! liquidations happen), small fills of the population's own traders, and deposits. The default
//! shares (main.rs) make fills the bulk, as on a venue: 1% index prices, 0.1% marks (each mark
//! re-evaluates every holder of its instrument in the engine), 70% fills, 28.9% deposits.

use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use solvent_core::venue::Venue;
use solvent_engine::population::{PopulationParams, generate};

/// The default venue, as `solvent serve` records it for a new data directory.
const DEFAULT_VENUE: &str = include_str!("../../../../venues/default.toml");

/// One underlying the mix moves.
struct Underlying {
    name: &'static str,
    /// The linear perpetual on it and its size step.
    linear: &'static str,
    size_step: f64,
    /// Other perpetuals marked on it.
    marks: &'static [&'static str],
    /// The opening index price.
    base: f64,
    /// The current index price.
    index: f64,
}

/// An account that trades in the steady mix: its id and the underlying of its linear position.
struct Trader {
    id: String,
    underlying: usize,
}

/// The opening and the steady stream after it.
pub struct Mix {
    rng: ChaCha8Rng,
    underlyings: Vec<Underlying>,
    traders: Vec<Trader>,
    /// Every account id of the population (the queries' and the subscribers' pick).
    pub accounts: Vec<String>,
    /// The opening's events, as JSON objects without `seq` and `ts`.
    pub opening: Vec<String>,
    /// Events drawn so far in the steady mix.
    drawn: u64,
    /// The mix's seed (part of each client id).
    seed: u64,
    /// Whether each steady event carries a client id ([`MixParams::client_ids`]).
    client_ids: bool,
    /// Depth of the swing (0.03: the index falls 3% and comes back).
    swing: f64,
    /// Events in one swing down and back.
    period_events: u64,
    /// Shares of index prices, marks and fills, per mille (the rest: deposits).
    shares: [u32; 3],
}

/// How the mix is drawn.
pub struct MixParams {
    /// Accounts in the population.
    pub accounts: usize,
    /// The seed of the population and the mix.
    pub seed: u64,
    /// Depth of the price swing.
    pub swing: f64,
    /// Events in one swing down and back.
    pub period_events: u64,
    /// Shares of index prices, marks and fills, per mille (the rest: deposits).
    pub shares: [u32; 3],
    /// Each event of the steady mix carries a client id of its own (`client_id`, last key):
    /// the service then keeps the id with its reply in memory and journals both.
    pub client_ids: bool,
}

impl Mix {
    /// Draws the population.
    ///
    /// # Errors
    /// The venue or the population cannot be built.
    pub fn new(params: &MixParams) -> Result<Self, String> {
        let venue = Venue::from_toml("venues/default.toml", DEFAULT_VENUE)
            .map_err(|error| error.to_string())?;
        let population = generate(
            &venue,
            &PopulationParams {
                accounts: params.accounts,
                seed: params.seed,
                ..PopulationParams::default()
            },
        )
        .map_err(|error| error.to_string())?;
        let opening = population
            .events
            .iter()
            .map(|envelope| serde_json::to_string(&envelope.event))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| error.to_string())?;
        let mut underlyings = vec![
            Underlying {
                name: "BTC",
                linear: "BTCUSDT",
                size_step: 0.001,
                marks: &["BTCUSDT", "BTC-PERPETUAL"],
                base: 93_859.71,
                index: 93_859.71,
            },
            Underlying {
                name: "ETH",
                linear: "ETHUSDT",
                size_step: 0.01,
                marks: &["ETHUSDT"],
                base: 3_224.99,
                index: 3_224.99,
            },
        ];
        // The opening's own index prices are the swing's base.
        for envelope in &population.events {
            if let solvent_engine::event::Event::IndexPrice(price) = &envelope.event
                && let Some(underlying) =
                    underlyings.iter_mut().find(|u| u.name == price.underlying)
            {
                let value: f64 = price.price.value().to_string().parse().unwrap_or(0.0);
                underlying.base = value;
                underlying.index = value;
            }
        }
        let traders = population
            .accounts
            .iter()
            .filter_map(|account| {
                let leg = account
                    .legs
                    .iter()
                    .find(|leg| underlyings.iter().any(|u| u.linear == leg.instrument))?;
                let underlying = underlyings
                    .iter()
                    .position(|u| u.linear == leg.instrument)?;
                Some(Trader {
                    id: account.id.clone(),
                    underlying,
                })
            })
            .collect();
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(params.seed ^ 0x5eed),
            underlyings,
            traders,
            accounts: population.accounts.iter().map(|a| a.id.clone()).collect(),
            opening,
            drawn: 0,
            seed: params.seed,
            swing: params.swing,
            period_events: params.period_events.max(1),
            shares: params.shares,
            client_ids: params.client_ids,
        })
    }

    /// The opening as request bodies of at most `batch` events.
    #[must_use]
    pub fn opening_bodies(&self, batch: usize) -> Vec<Vec<u8>> {
        self.opening
            .chunks(batch.max(1))
            .map(|events| body(events.iter().map(String::as_str)))
            .collect()
    }

    /// The next `count` events of the steady mix as one request body.
    pub fn next_body(&mut self, count: usize) -> Vec<u8> {
        let mut out = String::with_capacity(count * 160 + 16);
        out.push_str("{\"events\":[");
        for n in 0..count {
            if n > 0 {
                out.push(',');
            }
            self.next_event(&mut out);
        }
        out.push_str("]}");
        out.into_bytes()
    }

    /// Where the swing puts the index now: down by `swing` at half a period, back at a period.
    fn swing_factor(&self) -> f64 {
        let phase = (self.drawn % self.period_events) as f64 / self.period_events as f64;
        1.0 - self.swing * (1.0 - (std::f64::consts::TAU * phase).cos()) / 2.0
    }

    fn next_event(&mut self, out: &mut String) {
        self.write_event(out);
        if self.client_ids {
            // Unique within a run (the benchmark starts on an empty data directory).
            out.pop();
            let _ = write!(
                out,
                r#","client_id":"load-{:x}-{}"}}"#,
                self.seed, self.drawn
            );
        }
    }

    fn write_event(&mut self, out: &mut String) {
        self.drawn += 1;
        let roll = self.rng.random_range(0..1_000_u32);
        let which = self.rng.random_range(0..self.underlyings.len());
        let [index, mark, fill] = self.shares;
        if roll < index {
            let factor = self.swing_factor();
            let noise = 1.0 + self.rng.random_range(-1e-4..1e-4);
            let underlying = &mut self.underlyings[which];
            underlying.index = underlying.base * factor * noise;
            let _ = write!(
                out,
                r#"{{"type":"index_price","underlying":"{}","price":"{:.2}"}}"#,
                underlying.name, underlying.index
            );
        } else if roll < index + mark {
            let underlying = &self.underlyings[which];
            let instrument = underlying.marks[self.rng.random_range(0..underlying.marks.len())];
            let price = underlying.index * (1.0 + self.rng.random_range(-5e-4..5e-4));
            let _ = write!(
                out,
                r#"{{"type":"mark_price","instrument":"{instrument}","price":"{price:.2}"}}"#
            );
        } else if roll < index + mark + fill && !self.traders.is_empty() {
            let trader = &self.traders[self.rng.random_range(0..self.traders.len())];
            let underlying = &self.underlyings[trader.underlying];
            let steps = self.rng.random_range(1..=5_u32);
            let size = f64::from(steps) * underlying.size_step;
            let price = underlying.index * (1.0 + self.rng.random_range(-2e-4..2e-4));
            let fee = size * price * 0.0005;
            let side = if self.rng.random_bool(0.5) {
                "buy"
            } else {
                "sell"
            };
            let decimals = if underlying.size_step < 0.01 { 3 } else { 2 };
            let _ = write!(
                out,
                r#"{{"type":"fill","account":"{}","instrument":"{}","side":"{side}","size":"{size:.decimals$}","price":"{price:.2}","fee":"{fee:.6}","counterparty":"external"}}"#,
                trader.id, underlying.linear
            );
        } else {
            let account = &self.accounts[self.rng.random_range(0..self.accounts.len())];
            let amount = self.rng.random_range(10.0..1_000.0_f64);
            let _ = write!(
                out,
                r#"{{"type":"deposit","account":"{account}","asset":"USDT","amount":"{amount:.2}"}}"#
            );
        }
    }
}

/// The engine alone on `bodies` (opening and steady mix), in memory: each event parsed by the
/// typed line reader the service uses, then applied, one millisecond apart; only `apply` is
/// timed. The events per second and how many were accepted.
///
/// # Errors
/// A body or an event cannot be read.
pub fn engine_alone(bodies: &[&[u8]]) -> Result<(f64, usize, usize), String> {
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let venue = Venue::from_toml("venues/default.toml", DEFAULT_VENUE)
        .map_err(|error| error.to_string())?;
    let mut engine =
        solvent_engine::Engine::new(venue, solvent_engine::config::EngineConfig::default());
    let start = jiff::Timestamp::now();
    let mut envelopes = Vec::new();
    for body in bodies {
        let batch: Batch<'_> = serde_json::from_slice(body).map_err(|error| error.to_string())?;
        for raw in batch.events {
            let seq = envelopes.len() as u64 + 1;
            let ts = start
                .checked_add(jiff::SignedDuration::from_millis(
                    i64::try_from(seq).unwrap_or(0),
                ))
                .map_err(|error| error.to_string())?;
            // The engine alone has no client ids (the service keeps them): the last key, where
            // the mix puts it, is dropped.
            let text = raw.get();
            let text = match text.rfind(r#","client_id":"#) {
                Some(at) => format!("{}}}", &text[..at]),
                None => text.to_owned(),
            };
            let line = format!(
                r#"{{"seq":{seq},"ts":"{ts}",{}"#,
                text.strip_prefix('{').unwrap_or_default()
            );
            let envelope = solvent_engine::event::parse_line("(load)", envelopes.len() + 1, &line)
                .map_err(|error| error.to_string())?;
            envelopes.push(envelope);
        }
    }
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for envelope in &envelopes {
        let _ = engine.apply(envelope);
        if engine.last_seq() == Some(envelope.seq) {
            accepted += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((envelopes.len() as f64 / secs, envelopes.len(), accepted))
}

/// `{"events":[...]}` of the given JSON objects.
fn body<'a>(events: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = String::from("{\"events\":[");
    for (n, event) in events.enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}");
    out.into_bytes()
}
