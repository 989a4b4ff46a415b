#!/usr/bin/env bash
# Durable journal (DESIGN.md 12): >= 300,000 events / s in batches, acknowledged only when
# durable; ack p99 < 10 ms at 50,000 events / s. Measured in one run, on the same disk and rows:
#   - the disk's own 4 KiB write + fdatasync latency (what every commit pays at least once);
#   - plain SQLite inserts (one prepared insert per row, rows encoded beforehand, the journal's
#     pragmas: WAL, synchronous=FULL) in transactions of 1,000 and 10,000 rows, beside
#     SqliteJournal::append of the same events in the same batch sizes (encoding and checksums
#     included; since schema version 3 a commit writes the events only, their effects go to the
#     audit file afterwards);
#   - the audit writer alone: its fallback (fill_effects: a replica re-applies the journal's events,
#     renders and writes their effects) and its steady state (the rendered effects taken from its
#     queue and written, no replica);
#   - the group committer (Committer) fed batches of 100 and 1,000 back to back, and paced at
#     50,000 events / s in batches of 50, with the acknowledgement latency of each batch; each
#     without, then with the audit writer running beside it, fed by the commit thread through its
#     bounded queue (how long it takes to write every effect, and how many came from the queue
#     and how many from the journal after an overflow);
#   - replay: journal rows read, checked and decoded, then applied, against applying the same
#     events from memory; and a snapshot of the final state, taken and restored.
# Then the CLI end to end on a population stream: `solvent replay` (JSON lines) against
# `solvent journal import` (parse + journal + apply) and `solvent journal replay` (binary
# journal + apply).
#
# Usage: bench/journal.sh [events (1000000)] [dir (a directory on the disk to measure)]
set -euo pipefail
cd "$(dirname "$0")/.."

events="${1:-1000000}"
dir="${2:-$(mktemp -d "${TMPDIR:-/tmp}/solvent-journal-bench.XXXXXX")}"
echo "journal bench on $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "disk of $dir: $(df -h "$dir" | awk 'NR==2 {print $1, $2, "size,", $4, "free"}'); $(findmnt -no FSTYPE,OPTIONS --target "$dir" 2>/dev/null || true)"

cargo build --quiet --release -p solvent-store --example journal_bench
cargo build --quiet --release -p solvent-cli
./target/release/examples/journal_bench "$events" "$dir"

echo
echo "CLI end to end (population of 50,000 accounts):"
./target/release/solvent population --accounts 50000 --out "$dir/population.jsonl" >/dev/null
rm -rf "$dir/data"
/usr/bin/time -f "solvent replay (JSON lines): %e s" ./target/release/solvent replay "$dir/population.jsonl" >/dev/null
./target/release/solvent journal import "$dir/population.jsonl" "$dir/data" --batch 10000
./target/release/solvent journal replay "$dir/data"
./target/release/solvent journal verify "$dir/data"
rm -rf "$dir/data" "$dir"/journal-* "$dir"/plain-* "$dir"/committer-* "$dir"/paced
