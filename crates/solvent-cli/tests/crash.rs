//! Crash safety of `solvent serve` (issue: SIGKILL at random moments). A loader sends deposits
//! with client ids while the server is killed with SIGKILL at random moments — while it
//! recovers, while batches are being committed, while snapshots are written (one every 200
//! events) — and restarted on the same data directory. After the last restart:
//!
//! - every event the server acknowledged is in the journal exactly once (each deposit's amount
//!   is unique, so the journal's deposits are counted by amount);
//! - events sent but not acknowledged are in it at most once (the loader retries them with the
//!   same client id after each restart, and a retry is answered with the first result);
//! - every journaled event's effects are in the audit file exactly once, once `journal migrate`
//!   wrote those the last kill left unwritten (`journal export --effects`: one transfer of each
//!   deposit's amount, caused by it), and `journal verify` finds them equal to a replay's;
//! - the live server's state hash equals a replay of the whole journal from scratch, and
//!   recovery's (newest snapshot + tail) agrees (`solvent journal replay`).
//!
//! Kills: `SOLVENT_CRASH_KILLS` (default 50: the CI run); `bench/crash.sh` runs 1,000 in release.
//! Seed: `SOLVENT_CRASH_SEED`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test harness: a failed expectation is a failed test"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use support::Scratch;

struct Server {
    child: Child,
    addr: SocketAddr,
    key: Option<String>,
}

/// Starts `solvent serve` on a free port and waits for its address (or its death); with
/// `first`, also for the admin key a new data directory prints (a restart prints none, so it
/// is not waited for). The rest of the output is drained by a thread, so the pipe never fills.
fn start(dir: &str, first: bool) -> Result<Server, String> {
    let mut child = support::serve_command(dir, &["--snapshot-every", "200"])
        .spawn()
        .expect("start solvent serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .next()
        .ok_or_else(|| "the server ended before listening".to_owned())
        .and_then(|line| line.map_err(|e| e.to_string()))
        .and_then(|line| {
            line.strip_prefix("solvent: serving http://")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|addr| addr.parse::<SocketAddr>().ok())
                .ok_or_else(|| format!("unexpected first line {line:?}"))
        });
    let addr = match addr {
        Ok(addr) => addr,
        Err(problem) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(problem);
        }
    };
    let key = if first {
        lines
            .next()
            .and_then(Result::ok)
            .and_then(|line| line.split_whitespace().last().map(str::to_owned))
            .filter(|word| word.starts_with("sk_"))
    } else {
        None
    };
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Server { child, addr, key })
}

/// One HTTP exchange; `None` if the connection failed or was cut (a kill).
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: crash\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, payload) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, payload.to_owned()))
}

fn deposit(n: u64) -> serde_json::Value {
    serde_json::json!({
        "type": "deposit",
        "account": format!("acc{}", n % 37),
        "asset": "USDT",
        // Unique per event: the journal's deposits are counted by amount.
        "amount": n.to_string(),
        "client_id": format!("c{n}"),
    })
}

#[test]
fn acknowledged_events_survive_sigkill_exactly_once_and_the_state_replays() {
    let kills: u64 = std::env::var("SOLVENT_CRASH_KILLS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("SOLVENT_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(7);
    let mut random = ChaCha8Rng::seed_from_u64(seed);
    let scratch = Scratch::new("crash");
    let dir = scratch.path("data");
    let mut key = None;
    let mut next: u64 = 1;
    let mut acknowledged: BTreeSet<u64> = BTreeSet::new();
    let mut unanswered: BTreeSet<u64> = BTreeSet::new();
    let mut kills_during_start = 0;
    let started = Instant::now();
    for _ in 0..kills {
        let mut server = match start(&dir, key.is_none()) {
            Ok(server) => server,
            Err(problem) => panic!("restart failed: {problem}"),
        };
        if key.is_none() {
            key = server.key.clone();
        }
        let key = key.clone().expect("the first start prints the admin key");
        // A kill right away lands in recovery or before the first request.
        if random.random_bool(0.1) {
            kills_during_start += 1;
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            continue;
        }
        let deadline = Instant::now() + Duration::from_millis(random.random_range(5..150));
        // The loader sends in a thread, so the kill can land mid-request.
        let addr = server.addr;
        let retry: Vec<u64> = unanswered.iter().copied().collect();
        let first_new = next;
        let loader = std::thread::spawn(move || {
            let mut answered = Vec::new();
            let mut sent = Vec::new();
            let mut pending: Vec<u64> = retry;
            let mut n = first_new;
            while Instant::now() < deadline + Duration::from_millis(200) {
                let batch: Vec<u64> = if pending.is_empty() {
                    let size = 1 + (n % 20);
                    let batch = (n..n + size).collect();
                    n += size;
                    batch
                } else {
                    std::mem::take(&mut pending)
                };
                sent.extend(&batch);
                let body = serde_json::json!({
                    "events": batch.iter().map(|&n| deposit(n)).collect::<Vec<_>>()
                })
                .to_string();
                match call(addr, "POST", "/v1/events", &key, &body) {
                    Some((200, reply)) => {
                        let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
                        for (n, result) in batch.iter().zip(reply["results"].as_array().unwrap()) {
                            assert!(
                                result["status"] == "accepted" || result["status"] == "duplicate",
                                "{result}"
                            );
                            answered.push(*n);
                        }
                    }
                    Some((429, _)) => std::thread::sleep(Duration::from_millis(5)),
                    Some((status, reply)) => panic!("{status}: {reply}"),
                    None => break,
                }
            }
            (answered, sent, n)
        });
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let (answered, sent, n) = loader.join().unwrap();
        next = next.max(n);
        for n in sent {
            unanswered.insert(n);
        }
        for n in answered {
            unanswered.remove(&n);
            acknowledged.insert(n);
        }
    }

    // The last start: the state the journal holds, through the API.
    let server = start(&dir, false).expect("the final start");
    let key = key.expect("a key");
    let (status, hash) = call(server.addr, "GET", "/v1/state-hash", &key, "").unwrap();
    assert_eq!(status, 200, "{hash}");
    let live: serde_json::Value = serde_json::from_str(&hash).unwrap();
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // The effects are written after the events, by the audit writer: the last kill may have
    // left some unwritten. `journal migrate` writes them from the journal (the repair; a
    // restart's writer would do the same), once.
    let (code, stdout, stderr) = support::run(&["journal", "migrate", &dir]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("already schema version 3"), "{stdout}");

    // Every acknowledged deposit exactly once; the others at most once.
    let exported = scratch.path("events.jsonl");
    let effects = scratch.path("effects.jsonl");
    let (code, _, stderr) = support::run(&[
        "journal",
        "export",
        &dir,
        "--out",
        &exported,
        "--effects",
        &effects,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    let mut amount_of_seq: BTreeMap<u64, u64> = BTreeMap::new();
    for line in std::fs::read_to_string(&exported).unwrap().lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let amount: u64 = event["amount"].as_str().unwrap().parse().unwrap();
        *counts.entry(amount).or_default() += 1;
        amount_of_seq.insert(event["seq"].as_u64().unwrap(), amount);
    }
    // Issue 12: each journaled deposit's effects are journaled with it, exactly once: one
    // transfer of its amount, caused by it, whatever the kills interrupted.
    let mut transfers: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for line in std::fs::read_to_string(&effects).unwrap().lines() {
        let effect: serde_json::Value = serde_json::from_str(line).unwrap();
        if effect["type"] == "transfer_applied" {
            let seq = effect["seq"].as_u64().unwrap();
            let amount: u64 = effect["amount"].as_str().unwrap().parse().unwrap();
            transfers.entry(seq).or_default().push(amount);
        }
    }
    let without: Vec<(&u64, &u64)> = amount_of_seq
        .iter()
        .filter(|(seq, amount)| transfers.get(seq) != Some(&vec![**amount]))
        .collect();
    assert!(
        without.is_empty(),
        "events without their effects exactly once: {without:?}"
    );
    assert_eq!(transfers.len(), amount_of_seq.len(), "effects of no event");
    let lost: Vec<u64> = acknowledged
        .iter()
        .filter(|n| !counts.contains_key(n))
        .copied()
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let repeated: Vec<(&u64, &u32)> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(repeated.is_empty(), "applied more than once: {repeated:?}");

    // The journal replayed from scratch, recovery and the live server agree.
    let (code, stdout, stderr) = support::run(&["journal", "replay", &dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("equal"), "{stdout}");
    let scratch_hash = stdout
        .lines()
        .find_map(|line| line.strip_prefix("from scratch"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    assert_eq!(live["state_hash"].as_str(), Some(scratch_hash));
    let (code, stdout, stderr) = support::run(&["journal", "verify", &dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    eprintln!(
        "{kills} kills ({kills_during_start} during start), {} events acknowledged, {} in the journal, 0 lost, {:.1} s",
        acknowledged.len(),
        counts.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        acknowledged.len() as u64 > kills,
        "the load reached the server"
    );
}
