#!/usr/bin/env bash
# Crash safety of `solvent serve` at scale (DESIGN.md 10): the harness of
# crates/solvent-cli/tests/crash.rs in a release build with 1,000 SIGKILLs (at start-up and
# recovery, mid-batch, mid-snapshot: one snapshot every 200 events), then the count of
# acknowledged events lost (target: 0; the test fails on any), events applied twice (target: 0)
# and the agreement of the live state hash with a replay of the whole journal from scratch.
# ./scripts/test runs the same harness with 50 kills in a debug build.
#
# Usage: bench/crash.sh [kills (1000)] [seed (7)]
set -euo pipefail
cd "$(dirname "$0")/.."

kills="${1:-1000}"
seed="${2:-7}"
echo "crash bench: $kills kills, seed $seed, on $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
SOLVENT_CRASH_KILLS="$kills" SOLVENT_CRASH_SEED="$seed" \
  cargo test --release --locked -p solvent-cli --test crash -- --nocapture 2>&1 |
  grep -E "kills|test result|panicked|lost|more than once"
