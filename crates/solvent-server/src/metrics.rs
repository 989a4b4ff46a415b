//! `/metrics` in Prometheus' text format (DESIGN.md 10): counters and histograms of the write
//! path through the `metrics` facade, and the gauges of the book (accounts per state, the
//! insurance fund) read from the current view when scraped.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use solvent_risk::AccountState;

use crate::core::Shared;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later servers in the same process share it).
pub fn install() {
    RECORDER.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("solvent_journal_commit_seconds".to_owned()),
                &[
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 1.0,
                ],
            )
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full("solvent_events_ack_seconds".to_owned()),
                    &[
                        0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.015, 0.025, 0.05,
                        0.1, 0.25, 1.0,
                    ],
                )
            })
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full("solvent_journal_commit_events".to_owned()),
                    &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 65_536.0],
                )
            });
        match builder {
            Ok(builder) => builder.install_recorder().ok(),
            Err(_) => None,
        }
    });
}

/// One durable commit of `events` entries that took `elapsed` (append and sync).
pub fn committed(events: usize, elapsed: Duration) {
    metrics::histogram!("solvent_journal_commit_seconds").record(elapsed.as_secs_f64());
    #[allow(clippy::cast_precision_loss, reason = "a count of events as a sample")]
    metrics::histogram!("solvent_journal_commit_events").record(events as f64);
    metrics::counter!("solvent_events_durable_total").increment(events as u64);
}

/// A snapshot written in `elapsed`.
pub fn snapshot(elapsed: Duration) {
    metrics::histogram!("solvent_snapshot_seconds").record(elapsed.as_secs_f64());
}

/// A batch of events acknowledged `elapsed` after its body was read (parsing, the engine's
/// queue, the batch, its durable commit): the acknowledgement latency as the service sees it,
/// without the network and the client.
pub fn events_acknowledged(elapsed: Duration) {
    metrics::histogram!("solvent_events_ack_seconds").record(elapsed.as_secs_f64());
}

/// The engine thread's pause to copy the state for a snapshot (no event is applied meanwhile).
pub fn snapshot_copy(elapsed: Duration) {
    metrics::histogram!("solvent_snapshot_copy_seconds").record(elapsed.as_secs_f64());
}

/// A batch of `events` applied and released (accepted, refused and duplicates).
pub fn applied(events: usize) {
    metrics::counter!("solvent_events_applied_total").increment(events as u64);
}

/// A durable effect of `kind` (margin calls, liquidations, ADL, deficits beyond the fund).
pub fn effect(kind: &str) {
    metrics::counter!("solvent_effects_total", "type" => kind.to_owned()).increment(1);
}

/// The scrape: the recorder's metrics and the gauges of the book.
#[must_use]
pub fn render(shared: &Shared) -> String {
    let mut text = RECORDER
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    let view = shared.view.load();
    let _ = writeln!(
        text,
        "# HELP solvent_queue_depth Submissions waiting in the engine's queue.\n\
         # TYPE solvent_queue_depth gauge\nsolvent_queue_depth {}",
        shared
            .queue_depth
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        text,
        "# HELP solvent_accounts Accounts per state.\n# TYPE solvent_accounts gauge"
    );
    for state in [
        AccountState::Healthy,
        AccountState::MarginCall,
        AccountState::ReduceOnly,
        AccountState::Liquidating,
        AccountState::Bankrupt,
    ] {
        let count = view
            .accounts
            .values()
            .filter(|account| account.state == state)
            .count();
        let _ = writeln!(text, "solvent_accounts{{state=\"{state}\"}} {count}");
    }
    let _ = writeln!(
        text,
        "# HELP solvent_insurance_fund The insurance fund's balance per asset.\n\
         # TYPE solvent_insurance_fund gauge"
    );
    for (asset, balance) in &view.insurance_fund {
        let _ = writeln!(
            text,
            "solvent_insurance_fund{{asset=\"{asset}\"}} {balance}"
        );
    }
    let _ = writeln!(
        text,
        "# HELP solvent_last_seq The last durable sequence number.\n\
         # TYPE solvent_last_seq gauge\nsolvent_last_seq {}",
        view.seq.unwrap_or(0)
    );
    text
}
