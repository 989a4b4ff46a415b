#!/usr/bin/env bash
# A standby system shard's takeover (issue 13; docs/scale.md, "What remains", point 7): a
# seeded population of ACCOUNTS accounts and UPDATES index updates with three account events
# each (bench/cluster_market.py), published to a one-node NATS (JetStream, sync_interval:
# always) for SHARDS shards, applied by the shards to the end; then a system shard (the holder)
# and a standby, neither with a data directory. Once the holder has applied every effect
# message and the standby has stood by for a few seconds, the holder is killed (SIGKILL); the
# standby must wait for the lease to lapse (LEASE_TTL, 5 s) and then answers as the holder.
# Reports, ROUNDS times: the time from the kill until the standby answers with every effect
# message applied, and how many it had read standing by; and the time a system shard started
# afresh takes to read the same streams from their start (`--stop-at-end`): what a standby
# that kept nothing pays on top of the lapse.
#
# Usage: bench/standby.sh [ACCOUNTS] [UPDATES] [SHARDS] [ROUNDS]   (defaults 100000 20000 2 2)
#   SOLVENT_BIN   the solvent binary to time (default: the release build made here)
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-100000}"
updates="${2:-20000}"
shards="${3:-2}"
rounds="${4:-2}"
source bench/one_node_nats.sh standby

"$solvent" population --accounts "$accounts" --out "$work/opening.jsonl" >/dev/null
python3 bench/cluster_market.py "$work/opening.jsonl" "$work/market.jsonl" "$updates"
cat "$work/opening.jsonl" "$work/market.jsonl" > "$work/events.jsonl"
"$solvent" cluster publish --cluster "$url" --shards "$shards" --replicas 1 --batch 1000 \
  "$work/events.jsonl" > "$work/publish.json"
for ((k = 0; k < shards; k++)); do
  "$solvent" cluster shard --cluster "$url" --shard "$k/$shards" --replicas 1 \
    --data "$work/shard-$k" --snapshot-every 100000 --stop-at-end > /dev/null
done
echo "events: $(wc -l < "$work/events.jsonl") ($accounts accounts, $updates index updates, $shards shards)"

# The running system shard's report, as JSON ({} when none answers).
report() { "$solvent" cluster system --cluster "$url" --shards "$shards" --query 2>/dev/null || echo '{}'; }
# Whether the report on stdin has applied at least $1 effect messages and waits for none; with
# a second argument, also that it is a standby that took over.
applied() {
  python3 -c '
import json, sys
r = json.load(sys.stdin)
ok = r.get("effect_messages", 0) >= int(sys.argv[1]) and r.get("effect_messages_waiting", 1) == 0
if len(sys.argv) > 2:
    ok = ok and (r.get("standby") or {}).get("took_over", False)
sys.exit(0 if ok else 1)' "$@"
}
field() { python3 -c 'import json, sys; r = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

for ((round = 1; round <= rounds; round++)); do
  "$solvent" cluster system --cluster "$url" --shards "$shards" --replicas 1 \
    > "$work/holder.json" 2> "$work/holder.err" &
  holder=$!
  pids+=($holder)
  until report | applied 1; do sleep 0.2; done
  total=$(report | field 'r["effect_messages"]')
  "$solvent" cluster system --cluster "$url" --shards "$shards" --replicas 1 --standby \
    > "$work/standby.json" 2> "$work/standby.err" &
  standby=$!
  pids+=($standby)
  sleep 3
  kill -9 "$holder"
  killed=$(date +%s.%N)
  { wait "$holder" || true; } 2>/dev/null
  until report | applied "$total" took_over; do sleep 0.05; done
  answered=$(date +%s.%N)
  read_standing_by=$(report | field 'r["standby"]["read_standing_by"]')
  kill -INT "$standby"
  wait "$standby" 2>/dev/null || true
  start=$(date +%s.%N)
  "$solvent" cluster system --cluster "$url" --shards "$shards" --replicas 1 --stop-at-end \
    > "$work/afresh.json"
  done_reading=$(date +%s.%N)
  python3 -c '
import sys
total, killed, answered, read, start, done, round_ = sys.argv[1:]
print(f"round {round_}: {int(total):,} effect messages; takeover {float(answered) - float(killed):.2f} s "
      f"after the kill ({int(read):,} read standing by); a system shard started afresh reads them in "
      f"{float(done) - float(start):.2f} s")' \
    "$total" "$killed" "$answered" "$read_standing_by" "$start" "$done_reading" "$round"
done
