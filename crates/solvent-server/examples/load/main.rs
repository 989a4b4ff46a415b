//! The service benchmark's load generator (`bench/serve.sh`, issue 11 item 11): against a
//! running `solvent serve` over loopback, in one run,
//!
//! 0. the engine alone, in memory in this process, on the events of steps 1 and 2 (the
//!    reference the end-to-end rate is compared with);
//! 1. the opening of a seeded population, one batch at a time on one connection;
//! 2. HTTP batch ingest end to end: a fixed number of events of the steady mix (index and mark
//!    prices, fills, deposits) in batches, sent back to back on several kept-alive connections
//!    (target >= 100,000 events / s);
//! 3. under an open-loop offered rate of events (default 50,000 / s, in batches paced from a
//!    schedule; latency counted from the scheduled time, so a stall cannot hide its queue):
//!    the acknowledgement latency of each batch (target p99 < 10 ms), the latency of margin
//!    queries `GET /v1/accounts/{id}` paced the same way (target p99 < 2 ms), and WebSocket
//!    subscribers of `margin_calls`, `liquidations` and their own `account.{id}`, each of which
//!    must receive every effect routed to it, in order, with none missing (target 0 gaps).
//!
//! Every body is drawn before its phase starts, so drawing does not compete with the server.
//!
//! Usage: `load --addr 127.0.0.1:PORT --feeder-key sk_... --viewer-key sk_... [options]`
//! (`--help` lists them).

mod expect;
mod http;
mod mix;
mod ws;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use crate::expect::Expected;
use crate::http::Conn;
use crate::mix::{Mix, MixParams};

/// The allocator `solvent serve` runs on, so that "the engine alone" is timed as the product
/// runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The options, with their defaults.
#[derive(Clone, Debug)]
struct Options {
    addr: SocketAddr,
    feeder_key: String,
    viewer_key: String,
    accounts: usize,
    seed: u64,
    ingest_events: usize,
    ingest_batch: usize,
    connections: usize,
    rate: f64,
    paced_batch: usize,
    paced_secs: f64,
    query_rate: f64,
    subscribers: usize,
    swing: f64,
    swing_events: u64,
    shares: [u32; 3],
    client_ids: bool,
    /// Whether to print the paced phase's acknowledgements slot by slot.
    timeline: bool,
}

/// The schedule's slot a timeline line covers.
const TIMELINE_SLOT: Duration = Duration::from_millis(100);

const HELP: &str = "load --addr HOST:PORT --feeder-key KEY --viewer-key KEY
  --accounts N          population opened first (10000)
  --seed S              population and mix seed (20251010)
  --ingest-events N     events of the back-to-back ingest phase (1000000)
  --ingest-batch N      events per request there (1000)
  --connections N       connections sending there (4)
  --rate R              offered events / s in the paced phase (50000)
  --paced-batch N       events per request there (100)
  --paced-secs S        length of the paced phase (60)
  --query-rate Q        margin queries / s during the paced phase (1000)
  --subscribers N       WebSocket subscribers during the paced phase (1000)
  --swing X             depth of the index swing, down and back (0.03)
  --swing-events N      events of one swing (2000000)
  --mix I,M,F           per mille of index prices, marks, fills; the rest deposits (10,1,700)
  --client-ids on|off   a client id on every event of the steady mix (off)
  --timeline on|off     print, for each 100 ms of the paced phase's schedule, the batches due
                        and their slowest acknowledgement (off): where the tail comes from";

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        feeder_key: String::new(),
        viewer_key: String::new(),
        accounts: 10_000,
        seed: solvent_engine::population::DEFAULT_SEED,
        ingest_events: 1_000_000,
        ingest_batch: 1_000,
        connections: 4,
        rate: 50_000.0,
        paced_batch: 100,
        paced_secs: 60.0,
        query_rate: 1_000.0,
        subscribers: 1_000,
        swing: 0.03,
        swing_events: 2_000_000,
        shares: [10, 1, 700],
        client_ids: false,
        timeline: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(HELP.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag}: missing value\n{HELP}"))?;
        let bad = |_| format!("{flag}: cannot read {value:?}");
        match flag.as_str() {
            "--addr" => options.addr = value.parse().map_err(|_| bad(()))?,
            "--feeder-key" => options.feeder_key = value,
            "--viewer-key" => options.viewer_key = value,
            "--accounts" => options.accounts = value.parse().map_err(|_| bad(()))?,
            "--seed" => options.seed = value.parse().map_err(|_| bad(()))?,
            "--ingest-events" => options.ingest_events = value.parse().map_err(|_| bad(()))?,
            "--ingest-batch" => options.ingest_batch = value.parse().map_err(|_| bad(()))?,
            "--connections" => options.connections = value.parse().map_err(|_| bad(()))?,
            "--rate" => options.rate = value.parse().map_err(|_| bad(()))?,
            "--paced-batch" => options.paced_batch = value.parse().map_err(|_| bad(()))?,
            "--paced-secs" => options.paced_secs = value.parse().map_err(|_| bad(()))?,
            "--query-rate" => options.query_rate = value.parse().map_err(|_| bad(()))?,
            "--subscribers" => options.subscribers = value.parse().map_err(|_| bad(()))?,
            "--swing" => options.swing = value.parse().map_err(|_| bad(()))?,
            "--swing-events" => options.swing_events = value.parse().map_err(|_| bad(()))?,
            "--timeline" => {
                options.timeline = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad(())),
                }
            }
            "--client-ids" => {
                options.client_ids = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad(())),
                }
            }
            "--mix" => {
                let shares: Vec<u32> = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad(()))?;
                match shares[..] {
                    [index, mark, fill] if index + mark + fill <= 1_000 => {
                        options.shares = [index, mark, fill];
                    }
                    _ => {
                        return Err(format!(
                            "--mix: three percentages summing to 100 at most, not {value:?}"
                        ));
                    }
                }
            }
            other => return Err(format!("unknown option {other}\n{HELP}")),
        }
    }
    if options.feeder_key.is_empty() || options.viewer_key.is_empty() {
        return Err(format!(
            "--feeder-key and --viewer-key are required\n{HELP}"
        ));
    }
    if !(options.rate > 0.0 && options.query_rate >= 0.0 && options.paced_secs > 0.0) {
        return Err("--rate and --paced-secs must be positive".to_owned());
    }
    options.connections = options.connections.max(1);
    options.ingest_batch = options.ingest_batch.clamp(1, 10_000);
    options.paced_batch = options.paced_batch.clamp(1, 10_000);
    Ok(options)
}

/// Requests of the paced phase the server may be behind before the next ones are not sent.
const MAX_WAITING: usize = 1_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// Microseconds of `elapsed`, at least 1 (the histogram's lowest value).
fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1_000.0
}

fn count(body: &[u8], needle: &str) -> usize {
    String::from_utf8_lossy(body).matches(needle).count()
}

/// Seconds of CPU this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

/// Sends one body until it is taken: a 429 (queue full) is retried after a millisecond.
async fn send_events(
    conn: &mut Conn,
    key: &str,
    body: &[u8],
    busy: &AtomicU64,
) -> Result<http::Response, String> {
    loop {
        let response = conn
            .request("POST", "/v1/events", key, body)
            .await
            .map_err(|error| error.to_string())?;
        if response.status == 429 {
            busy.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        if response.status != 200 {
            return Err(format!(
                "POST /v1/events: {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        return Ok(response);
    }
}

struct Row {
    what: String,
    figure: String,
    target: String,
    met: String,
}

fn row(what: impl Into<String>, figure: impl Into<String>, target: &str, met: Option<bool>) -> Row {
    Row {
        what: what.into(),
        figure: figure.into(),
        target: target.to_owned(),
        met: match met {
            Some(true) => "met".to_owned(),
            Some(false) => "MISSED".to_owned(),
            None => String::new(),
        },
    }
}

fn print_table(rows: &[Row]) {
    let width = |f: fn(&Row) -> &str, title: &str| {
        rows.iter()
            .map(|r| f(r).len())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let w = [
        width(|r| &r.what, "what"),
        width(|r| &r.figure, "measured"),
        width(|r| &r.target, "target"),
        width(|r| &r.met, ""),
    ];
    println!(
        "| {:<a$} | {:<b$} | {:<c$} | {:<d$} |",
        "what",
        "measured",
        "target",
        "",
        a = w[0],
        b = w[1],
        c = w[2],
        d = w[3]
    );
    println!(
        "| {} | {} | {} | {} |",
        "-".repeat(w[0]),
        "-".repeat(w[1]),
        "-".repeat(w[2]),
        "-".repeat(w[3])
    );
    for r in rows {
        println!(
            "| {:<a$} | {:<b$} | {:<c$} | {:<d$} |",
            r.what,
            r.figure,
            r.target,
            r.met,
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3]
        );
    }
}

/// A pool of kept-alive connections: taken by a request, given back after its answer; a new
/// one is opened when none is idle.
#[derive(Clone)]
struct Pool {
    addr: SocketAddr,
    idle: Arc<Mutex<Vec<Conn>>>,
    opened: Arc<AtomicUsize>,
}

impl Pool {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Arc::default(),
            opened: Arc::default(),
        }
    }

    async fn take(&self) -> std::io::Result<Conn> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                Conn::connect(self.addr).await
            }
        }
    }

    fn give(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
    }
}

/// Ticks at `interval` from `start` for `ticks` times, each carrying its scheduled instant,
/// from a thread of its own (std sleeps are finer than the runtime's millisecond timer).
fn pacer(start: Instant, interval: Duration, ticks: usize) -> mpsc::UnboundedReceiver<Instant> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for n in 0..ticks {
            let due = start + interval.mul_f64(n as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if sender.send(due).is_err() {
                return;
            }
        }
    });
    receiver
}

#[derive(Default)]
struct PacedOutcome {
    ack: Option<Histogram<u64>>,
    /// Per [`TIMELINE_SLOT`] of the schedule: the batches due in it and their slowest
    /// acknowledgement, microseconds.
    timeline: Vec<(u32, u64)>,
    /// Events not sent because the server was too far behind.
    skipped: u64,
    events: u64,
    accepted: u64,
    busy: u64,
    errors: u64,
    elapsed: Duration,
    connections: usize,
}

#[allow(
    clippy::too_many_lines,
    reason = "the phases read best in order, one after another"
)]
async fn run(options: Options) -> Result<(), String> {
    let cpu_start = cpu_seconds();
    let mut rows = Vec::new();
    let mut mix = Mix::new(&MixParams {
        accounts: options.accounts,
        seed: options.seed,
        swing: options.swing,
        period_events: options.swing_events,
        shares: options.shares,
        client_ids: options.client_ids,
    })?;
    let busy = Arc::new(AtomicU64::new(0));

    // The events of the opening and of the ingest phase, drawn now.
    let opening = mix.opening_bodies(1_000);
    let batches = options.ingest_events.div_ceil(options.ingest_batch);
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|_| mix.next_body(options.ingest_batch))
        .collect();

    // 0. The engine alone, in memory, on the same events (the server idle meanwhile).
    let same: Vec<&[u8]> = opening.iter().chain(&bodies).map(Vec::as_slice).collect();
    let (alone_rate, alone_events, alone_accepted) = mix::engine_alone(&same)?;
    drop(same);
    println!(
        "engine alone, in memory, on the opening and ingest events: {alone_events} events ({alone_accepted} accepted) at {alone_rate:.0} events/s"
    );

    // 1. The opening, in order on one connection.
    let opening_events = mix.opening.len();
    let mut conn = Conn::connect(options.addr)
        .await
        .map_err(|error| format!("{}: {error}", options.addr))?;
    let started = Instant::now();
    let mut opening_accepted = 0;
    for body in &opening {
        let response = send_events(&mut conn, &options.feeder_key, body, &busy).await?;
        opening_accepted += count(&response.body, "\"status\":\"accepted\"");
    }
    let opening_secs = started.elapsed().as_secs_f64();
    println!(
        "mix: {:.1}% index prices, {:.1}% marks, {:.1}% fills, {:.1}% deposits; the index swings {:.1}% down and back over {} events",
        f64::from(options.shares[0]) / 10.0,
        f64::from(options.shares[1]) / 10.0,
        f64::from(options.shares[2]) / 10.0,
        f64::from(1_000 - options.shares.iter().sum::<u32>()) / 10.0,
        options.swing * 100.0,
        options.swing_events
    );
    println!(
        "opening: {opening_events} events ({opening_accepted} accepted) of {} accounts in {opening_secs:.2} s on one connection",
        options.accounts
    );
    rows.push(row(
        format!("opening, {opening_events} events in batches of 1,000, one connection"),
        format!("{:.0} events/s", opening_events as f64 / opening_secs),
        "",
        None,
    ));

    // 2. Ingest, back to back.
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let queue = Arc::new(Mutex::new(bodies.into_iter()));
    let accepted = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(histogram()));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..options.connections {
        let queue = Arc::clone(&queue);
        let accepted = Arc::clone(&accepted);
        let sent = Arc::clone(&sent);
        let latency = Arc::clone(&latency);
        let busy = Arc::clone(&busy);
        let key = options.feeder_key.clone();
        let batch = options.ingest_batch as u64;
        let mut conn = Conn::connect(options.addr)
            .await
            .map_err(|error| error.to_string())?;
        senders.push(tokio::spawn(async move {
            loop {
                let body = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .next();
                let Some(body) = body else { return Ok(()) };
                let at = Instant::now();
                let response = send_events(&mut conn, &key, &body, &busy).await?;
                let _ = latency
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .record(micros(at.elapsed()));
                sent.fetch_add(batch, Ordering::Relaxed);
                accepted.fetch_add(
                    count(&response.body, "\"status\":\"accepted\"") as u64,
                    Ordering::Relaxed,
                );
            }
        }));
    }
    for sender in senders {
        sender
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error: String| error)?;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let ingest_cpu = cpu_seconds() - cpu_before;
    let ingest_events = sent.load(Ordering::Relaxed);
    let ingest_rate = ingest_events as f64 / ingest_secs;
    let latency = latency
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    println!(
        "ingest: {ingest_events} events ({} accepted, {:.1} MB of JSON) in {ingest_secs:.2} s on {} connections: {ingest_rate:.0} events/s; per request p50 {:.1} ms, p99 {:.1} ms; 429s {}; this client's CPU {ingest_cpu:.1} s",
        accepted.load(Ordering::Relaxed),
        bytes as f64 / 1e6,
        options.connections,
        ms(&latency, 0.5),
        ms(&latency, 0.99),
        busy.load(Ordering::Relaxed),
    );
    rows.push(row(
        format!(
            "HTTP batch ingest, {} events in batches of {}, {} connections",
            ingest_events, options.ingest_batch, options.connections
        ),
        format!(
            "{ingest_rate:.0} events/s ({:.1}% accepted)",
            100.0 * accepted.load(Ordering::Relaxed) as f64 / ingest_events.max(1) as f64
        ),
        ">= 100,000 events/s",
        Some(ingest_rate >= 100_000.0),
    ));
    rows.push(row(
        "the engine alone on the same events, in memory, this process",
        format!(
            "{alone_rate:.0} events/s (end to end / alone: {:.2}x the time)",
            alone_rate / ingest_rate
        ),
        "",
        None,
    ));

    // 3. The paced phase: subscribers first.
    let watched: Vec<String> = (0..options.subscribers)
        .map(|n| mix.accounts[n * mix.accounts.len() / options.subscribers.max(1)].clone())
        .collect();
    let connect_started = Instant::now();
    let mut subscribers = Vec::with_capacity(watched.len());
    for chunk in watched.chunks(50) {
        let connecting: Vec<_> = chunk
            .iter()
            .map(|account| {
                let key = options.viewer_key.clone();
                let account = account.clone();
                let addr = options.addr;
                tokio::spawn(async move { ws::Subscriber::connect(addr, &key, &account).await })
            })
            .collect();
        for connecting in connecting {
            subscribers.push(connecting.await.map_err(|error| error.to_string())??);
        }
    }
    println!(
        "{} WebSocket subscribers connected and subscribed in {:.2} s",
        subscribers.len(),
        connect_started.elapsed().as_secs_f64()
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let received = Arc::new(AtomicU64::new(0));
    let listening: Vec<_> = subscribers
        .into_iter()
        .map(|subscriber| tokio::spawn(subscriber.run(stopped.clone(), Arc::clone(&received))))
        .collect();

    let ticks = (options.rate * options.paced_secs / options.paced_batch as f64).ceil() as usize;
    let bodies: Vec<Vec<u8>> = (0..ticks)
        .map(|_| mix.next_body(options.paced_batch))
        .collect();
    let expected = Arc::new(Mutex::new(Expected::new(&watched)));
    let interval = Duration::from_secs_f64(options.paced_batch as f64 / options.rate);
    let query_ticks = (options.query_rate * options.paced_secs) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let cpu_before = cpu_seconds();

    let events = {
        let pool = Pool::new(options.addr);
        let key = options.feeder_key.clone();
        let expected = Arc::clone(&expected);
        let busy = Arc::clone(&busy);
        let batch = options.paced_batch as u64;
        tokio::spawn(async move {
            let mut ticks = pacer(start, interval, bodies.len());
            let ack = Arc::new(Mutex::new(histogram()));
            let timeline = Arc::new(Mutex::new(Vec::<(u32, u64)>::new()));
            let accepted = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            let busy_before = busy.load(Ordering::Relaxed);
            let mut inflight = Vec::with_capacity(bodies.len());
            let mut bodies = bodies.into_iter();
            let waiting = Arc::new(AtomicUsize::new(0));
            let mut skipped = 0_u64;
            while let Some(due) = ticks.recv().await {
                let Some(body) = bodies.next() else { break };
                // Overload: the server is MAX_WAITING requests behind. Offering more would only
                // lengthen the run; the batch is counted as not sent.
                if waiting.load(Ordering::Relaxed) >= MAX_WAITING {
                    skipped += 1;
                    continue;
                }
                waiting.fetch_add(1, Ordering::Relaxed);
                let waiting = Arc::clone(&waiting);
                let pool = pool.clone();
                let key = key.clone();
                let ack = Arc::clone(&ack);
                let timeline = Arc::clone(&timeline);
                let accepted = Arc::clone(&accepted);
                let errors = Arc::clone(&errors);
                let expected = Arc::clone(&expected);
                let busy = Arc::clone(&busy);
                inflight.push(tokio::spawn(async move {
                    let Ok(mut conn) = pool.take().await else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    match send_events(&mut conn, &key, &body, &busy).await {
                        Ok(response) => {
                            let latency = micros(due.elapsed());
                            let _ = ack
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .record(latency);
                            let slot = (due.saturating_duration_since(start).as_nanos()
                                / TIMELINE_SLOT.as_nanos())
                                as usize;
                            let mut timeline = timeline
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            if timeline.len() <= slot {
                                timeline.resize(slot + 1, (0, 0));
                            }
                            timeline[slot].0 += 1;
                            timeline[slot].1 = timeline[slot].1.max(latency);
                            pool.give(conn);
                            let taken = expected
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .take(&response.body);
                            match taken {
                                Ok(n) => {
                                    accepted.fetch_add(n as u64, Ordering::Relaxed);
                                }
                                Err(problem) => {
                                    eprintln!("a reply could not be read: {problem}");
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Err(problem) => {
                            eprintln!("{problem}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    waiting.fetch_sub(1, Ordering::Relaxed);
                }));
            }
            for task in inflight {
                let _ = task.await;
            }
            let ack = ack
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let timeline = std::mem::take(
                &mut *timeline
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            PacedOutcome {
                timeline,
                events: ack.len() * batch,
                skipped: skipped * batch,
                ack: Some(ack),
                accepted: accepted.load(Ordering::Relaxed),
                busy: busy.load(Ordering::Relaxed) - busy_before,
                errors: errors.load(Ordering::Relaxed),
                elapsed: start.elapsed(),
                connections: pool.opened.load(Ordering::Relaxed),
            }
        })
    };
    let queries = {
        let pool = Pool::new(options.addr);
        let key = options.viewer_key.clone();
        let accounts = mix.accounts.clone();
        tokio::spawn(async move {
            let interval = Duration::from_secs_f64(1.0 / options.query_rate.max(1e-9));
            let mut ticks = pacer(start, interval, query_ticks);
            let latency = Arc::new(Mutex::new(histogram()));
            let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, u64>::new()));
            let mut inflight = Vec::with_capacity(query_ticks);
            let mut n = 0_usize;
            while let Some(due) = ticks.recv().await {
                // A fixed stride through the population (coprime with its size in practice).
                n = (n + 7_919) % accounts.len().max(1);
                let path = format!("/v1/accounts/{}", accounts[n]);
                let pool = pool.clone();
                let key = key.clone();
                let latency = Arc::clone(&latency);
                let statuses = Arc::clone(&statuses);
                inflight.push(tokio::spawn(async move {
                    let status = match pool.take().await {
                        Ok(mut conn) => match conn.request("GET", &path, &key, b"").await {
                            Ok(response) => {
                                let _ = latency
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .record(micros(due.elapsed()));
                                pool.give(conn);
                                response.status
                            }
                            Err(_) => 0,
                        },
                        Err(_) => 0,
                    };
                    *statuses
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(status)
                        .or_default() += 1;
                }));
            }
            for task in inflight {
                let _ = task.await;
            }
            let latency = latency
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let statuses = statuses
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            (latency, statuses, pool.opened.load(Ordering::Relaxed))
        })
    };
    let paced = events.await.map_err(|error| error.to_string())?;
    let (query_latency, query_statuses, query_connections) =
        queries.await.map_err(|error| error.to_string())?;
    let paced_cpu = cpu_seconds() - cpu_before;
    let ack = paced.ack.clone().unwrap_or_else(histogram);
    let offered = paced.events as f64 / paced.elapsed.as_secs_f64();
    println!(
        "paced: {} events offered at {:.0} events/s ({} accepted) in batches of {} from {} connections; ack p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms; 429s {}; errors {}; this client's CPU {paced_cpu:.1} s",
        paced.events,
        offered,
        paced.accepted,
        options.paced_batch,
        paced.connections,
        ms(&ack, 0.5),
        ms(&ack, 0.99),
        ms(&ack, 0.999),
        ack.max() as f64 / 1_000.0,
        paced.busy,
        paced.errors,
    );
    if options.timeline {
        // Only the slots that broke the target: a steady run prints nothing more.
        let slow: Vec<_> = paced
            .timeline
            .iter()
            .enumerate()
            .filter(|(_, (_, slowest))| *slowest >= 10_000)
            .collect();
        println!(
            "timeline: {} of {} slots of {} ms had an acknowledgement of 10 ms or more",
            slow.len(),
            paced.timeline.len(),
            TIMELINE_SLOT.as_millis()
        );
        for (slot, (batches, slowest)) in slow {
            println!(
                "timeline: due at {:.1} s: {batches} batches, slowest {:.1} ms",
                (slot as f64) * TIMELINE_SLOT.as_secs_f64(),
                *slowest as f64 / 1_000.0
            );
        }
    }
    println!(
        "queries: {} at {:.0}/s from {} connections, statuses {:?}; p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms",
        query_latency.len(),
        options.query_rate,
        query_connections,
        query_statuses,
        ms(&query_latency, 0.5),
        ms(&query_latency, 0.99),
        ms(&query_latency, 0.999),
        query_latency.max() as f64 / 1_000.0,
    );
    if paced.skipped > 0 {
        println!(
            "paced: OVERLOADED: {} events not sent ({MAX_WAITING} requests were waiting); the latencies are of those sent",
            paced.skipped
        );
    }
    let ack_ok =
        ms(&ack, 0.99) < 10.0 && paced.busy == 0 && paced.errors == 0 && paced.skipped == 0;
    rows.push(row(
        format!(
            "ack latency at {:.0} events/s offered (batches of {}, open loop)",
            options.rate, options.paced_batch
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} events/s taken{}",
            ms(&ack, 0.5),
            ms(&ack, 0.99),
            ack.max() as f64 / 1_000.0,
            offered,
            if paced.skipped > 0 || paced.errors > 0 {
                format!(
                    ", {} not sent (overload), {} failed",
                    paced.skipped, paced.errors
                )
            } else {
                String::new()
            }
        ),
        "p99 < 10 ms",
        Some(ack_ok),
    ));
    let query_ok = ms(&query_latency, 0.99) < 2.0
        && query_statuses.keys().all(|status| *status == 200)
        && !query_latency.is_empty();
    rows.push(row(
        format!(
            "GET /v1/accounts/{{id}} at {:.0}/s under that load",
            options.query_rate
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(&query_latency, 0.5),
            ms(&query_latency, 0.99),
            query_latency.max() as f64 / 1_000.0
        ),
        "p99 < 2 ms",
        Some(query_ok),
    ));

    // The subscribers: wait until everything expected has arrived (or 15 s), then compare.
    let (total, shared, own) = {
        let expected = expected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let shared = expected.shared_len();
        let own = expected.own_len();
        ((shared * watched.len() + own) as u64, shared, own)
    };
    let waited = Instant::now();
    while received.load(Ordering::Relaxed) < total && waited.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    let mut lag = histogram();
    let mut missing = 0;
    let mut unexpected = 0;
    let mut out_of_order = 0;
    let mut regressions = 0;
    let mut closed = Vec::new();
    let mut complete = 0;
    let mut matched = 0;
    for (n, listening) in listening.into_iter().enumerate() {
        let seen = listening.await.map_err(|error| error.to_string())?;
        let wanted = expected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .of(n);
        let comparison = expect::compare(&wanted, &seen.items);
        matched += comparison.matched;
        missing += comparison.missing;
        unexpected += comparison.unexpected;
        out_of_order += comparison.out_of_order;
        regressions += seen.seq_regressions;
        if comparison.missing == 0 && comparison.unexpected == 0 && comparison.out_of_order == 0 {
            complete += 1;
        }
        let _ = lag.add(&seen.lag_us);
        if let Some(reason) = seen.closed {
            closed.push(reason);
        }
    }
    println!(
        "subscribers: {} expected messages ({shared} on margin_calls + liquidations to each, {own} on the watched accounts' own channels), {} received ({matched} as expected); missing {missing}, unexpected {unexpected}, out of order {out_of_order}, feed seq regressions {regressions}; {complete} of {} complete; closed by the server: {}; lag p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        total,
        received.load(Ordering::Relaxed),
        watched.len(),
        closed.len(),
        ms(&lag, 0.5),
        ms(&lag, 0.99),
        lag.max() as f64 / 1_000.0,
    );
    if let Some(reason) = closed.first() {
        println!("first close reason: {reason}");
    }
    rows.push(row(
        format!(
            "{} WebSocket subscribers, {} messages expected in all",
            watched.len(),
            total
        ),
        format!(
            "{} gaps, {} unexpected, {} out of order, {} dropped; lag p50 {:.2} ms, p99 {:.2} ms",
            missing,
            unexpected,
            out_of_order + regressions,
            closed.len(),
            ms(&lag, 0.5),
            ms(&lag, 0.99)
        ),
        "0 gaps, in order",
        Some(
            missing == 0
                && unexpected == 0
                && out_of_order == 0
                && regressions == 0
                && closed.is_empty()
                && total > 0,
        ),
    ));
    println!();
    print_table(&rows);
    println!(
        "\nthis client used {:.1} s of CPU in all",
        cpu_seconds() - cpu_start
    );
    Ok(())
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run(options)) {
        eprintln!("load: {error}");
        std::process::exit(1);
    }
}
