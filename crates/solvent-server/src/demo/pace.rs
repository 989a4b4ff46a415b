//! The imperative shell of the demo: the feed sent to the engine at an accelerated pace. The
//! only place in the demo with a clock.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::oneshot;

use super::DemoError;
use super::feed::{Feed, Observation};
use crate::core::{CoreHandle, EventReply, Status, SubmitError};

/// How the feed is sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Pace {
    /// Historical seconds per real second (1,440: a day a minute).
    pub speed: f64,
    /// Events per submission at most.
    pub batch_events: usize,
    /// Submissions waiting for their answer at most (beyond, the feed waits for the oldest).
    pub max_in_flight: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            speed: 1_440.0,
            batch_events: 512,
            max_in_flight: 8,
        }
    }
}

/// What a run sent and what became of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedReport {
    /// Events submitted.
    pub events: u64,
    /// Of those answered: accepted.
    pub accepted: u64,
    /// Of those answered: refused by the engine.
    pub rejected: u64,
    /// Submissions made.
    pub batches: u64,
    /// Times the engine's queue was full and the feed waited.
    pub backoffs: u64,
    /// The historical time of the last event sent.
    pub reached: Option<Timestamp>,
    /// Whether the history ran to its end (rather than being stopped).
    pub finished: bool,
}

/// The longest wait after a full queue.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Sends `feed` to the engine behind `core` at `pace.speed` historical seconds per real second,
/// in batches, until the history ends or `stop` resolves. The engine's answers are fed back to
/// the feed ([`Feed::observe`]) as they arrive. A full queue is waited out (doubling waits from
/// 10 ms up to 0.5 s); a run that falls behind sends what is due in full batches without
/// sleeping.
///
/// # Errors
/// [`DemoError::InvalidParameter`] for a pace out of range; [`DemoError::Service`] when the
/// journal has failed (the service is stopping).
pub async fn run_feed(
    core: &CoreHandle,
    feed: &mut Feed,
    pace: &Pace,
    stop: impl Future<Output = ()>,
) -> Result<FeedReport, DemoError> {
    if !(pace.speed.is_finite() && pace.speed > 0.0) || pace.batch_events == 0 {
        return Err(DemoError::InvalidParameter {
            name: "pace",
            problem: "speed must be positive and finite, batches non-empty".to_owned(),
        });
    }
    let mut report = FeedReport::default();
    let Some(origin) = feed.peek_time() else {
        report.finished = true;
        return Ok(report);
    };
    let started = Instant::now();
    let mut in_flight: VecDeque<oneshot::Receiver<Result<Vec<EventReply>, SubmitError>>> =
        VecDeque::new();
    tokio::pin!(stop);
    loop {
        // Looked at every round: a run that is behind never sleeps, and must still stop.
        if stop.as_mut().now_or_never().is_some() {
            return Ok(report);
        }
        let full = in_flight.len() >= pace.max_in_flight.max(1);
        harvest(&mut in_flight, feed, &mut report, full).await?;
        let Some(next) = feed.peek_time() else {
            while !in_flight.is_empty() {
                harvest(&mut in_flight, feed, &mut report, true).await?;
            }
            report.finished = true;
            return Ok(report);
        };
        let due = historical_now(origin, started.elapsed(), pace.speed);
        if next > due {
            let wait = real_wait(next.duration_since(due), pace.speed);
            tokio::select! {
                () = &mut stop => return Ok(report),
                () = tokio::time::sleep(wait) => continue,
            }
        }
        let mut batch = Vec::new();
        while batch.len() < pace.batch_events && feed.peek_time().is_some_and(|t| t <= due) {
            if let Some(event) = feed.next() {
                report.reached = event.ts;
                batch.push(event);
            }
        }
        let mut backoff = Duration::from_millis(10);
        loop {
            match core.submit(batch.clone()) {
                Ok(receiver) => {
                    report.events += batch.len() as u64;
                    report.batches += 1;
                    in_flight.push_back(receiver);
                    break;
                }
                Err(SubmitError::QueueFull) => {
                    report.backoffs += 1;
                    tokio::select! {
                        () = &mut stop => return Ok(report),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(SubmitError::JournalFailed(message) | SubmitError::ClientLookup(message)) => {
                    return Err(DemoError::Service(message));
                }
            }
        }
    }
}

/// The historical instant `elapsed` real time after `origin` at `speed`.
fn historical_now(origin: Timestamp, elapsed: Duration, speed: f64) -> Timestamp {
    // Capped at a century: a huge speed means "as fast as the engine takes it".
    let seconds = (elapsed.as_secs_f64() * speed).min(3.2e9);
    origin
        .checked_add(SignedDuration::from_secs_f64(seconds))
        .unwrap_or(origin)
}

/// The real time `ahead` of historical time takes at `speed` (at least a millisecond, at most a
/// second: the stop signal and the answers are looked at in between).
fn real_wait(ahead: SignedDuration, speed: f64) -> Duration {
    let seconds = (ahead.as_secs_f64() / speed).clamp(0.001, 1.0);
    Duration::from_secs_f64(seconds)
}

/// Takes the answers that have arrived (in submission order), waiting for the oldest when
/// `wait`, and tells the feed what the engine did.
async fn harvest(
    in_flight: &mut VecDeque<oneshot::Receiver<Result<Vec<EventReply>, SubmitError>>>,
    feed: &mut Feed,
    report: &mut FeedReport,
    wait: bool,
) -> Result<(), DemoError> {
    let mut wait = wait;
    while let Some(front) = in_flight.front_mut() {
        let stopped = || DemoError::Service("the engine stopped".to_owned());
        let answer = if wait {
            wait = false;
            front.await.map_err(|_| stopped())?
        } else {
            match front.try_recv() {
                Ok(answer) => answer,
                Err(oneshot::error::TryRecvError::Empty) => return Ok(()),
                Err(oneshot::error::TryRecvError::Closed) => return Err(stopped()),
            }
        };
        in_flight.pop_front();
        let replies = answer.map_err(|error| DemoError::Service(error.to_string()))?;
        for reply in replies {
            match reply.status {
                Status::Rejected => report.rejected += 1,
                Status::Accepted | Status::Duplicate => report.accepted += 1,
            }
            for line in &reply.effects {
                for observation in Observation::from_json(&line.value()) {
                    feed.observe(observation);
                }
            }
        }
    }
    Ok(())
}

/// What loading the opening did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpeningReport {
    /// Events accepted.
    pub accepted: u64,
    /// Events the engine refused (none for a population built by [`super::population`]).
    pub rejected: u64,
}

/// Submits the opening `events` to the engine behind `core` in batches of `batch_events`, each
/// answered (durable) before the next is sent, waiting out a full queue.
///
/// # Errors
/// [`DemoError::InvalidParameter`] for an empty batch size; [`DemoError::Service`] when the
/// journal has failed or the engine stopped.
pub async fn load_opening(
    core: &CoreHandle,
    events: Vec<crate::core::Incoming>,
    batch_events: usize,
) -> Result<OpeningReport, DemoError> {
    if batch_events == 0 {
        return Err(DemoError::InvalidParameter {
            name: "batch_events",
            problem: "must be at least 1".to_owned(),
        });
    }
    let mut report = OpeningReport::default();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let batch: Vec<_> = events.by_ref().take(batch_events).collect();
        let mut backoff = Duration::from_millis(10);
        let receiver = loop {
            match core.submit(batch.clone()) {
                Ok(receiver) => break receiver,
                Err(SubmitError::QueueFull) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(SubmitError::JournalFailed(message) | SubmitError::ClientLookup(message)) => {
                    return Err(DemoError::Service(message));
                }
            }
        };
        let replies = receiver
            .await
            .map_err(|_| DemoError::Service("the engine stopped".to_owned()))?
            .map_err(|error| DemoError::Service(error.to_string()))?;
        for reply in replies {
            match reply.status {
                Status::Rejected => report.rejected += 1,
                Status::Accepted | Status::Duplicate => report.accepted += 1,
            }
        }
    }
    Ok(report)
}
