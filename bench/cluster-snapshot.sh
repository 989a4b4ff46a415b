#!/usr/bin/env bash
# A shard's snapshot at scale (issue 13 item 6; docs/scale.md, "Snapshot size"): a seeded
# population of ACCOUNTS linear accounts published to a one-node NATS (JetStream,
# sync_interval: always) routed for SHARDS shards, then shard 0 run to the end of the stream
# (`--stop-at-end`, which writes its snapshot there). Reports the accounts the shard holds, its
# snapshot's size on disk, the bytes per account, and the same compressed with gzip -6 (what a
# copy shipped elsewhere would take). The size does not depend on the build, so SOLVENT_BIN
# may name a debug binary (slower to apply the events) instead of the release one built here.
#
# Usage: bench/cluster-snapshot.sh [ACCOUNTS] [SHARDS]   (defaults 100000 accounts, 1 shard)
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-100000}"
shards="${2:-1}"
source bench/one_node_nats.sh snapshot

"$solvent" population --accounts "$accounts" --out "$work/opening.jsonl" >/dev/null
events=$(wc -l < "$work/opening.jsonl")
"$solvent" cluster publish --cluster "$url" --shards "$shards" --replicas 1 --batch 1000 \
  "$work/opening.jsonl" > "$work/publish.json"
started=$(date +%s.%N)
"$solvent" cluster shard --cluster "$url" --shard "0/$shards" --replicas 1 \
  --data "$work/shard-0" --snapshot-every 100000000 --stop-at-end > "$work/report.json"
finished=$(date +%s.%N)
snapshot=$(ls -t "$work"/shard-0/snapshots/* | head -n 1)
python3 - "$work/report.json" "$snapshot" "$events" "$accounts" "$shards" "$started" "$finished" <<'PY'
import gzip, json, os, sys
report = json.load(open(sys.argv[1]))
path, events, population, shards = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
seconds = float(sys.argv[7]) - float(sys.argv[6])
size = os.path.getsize(path)
packed = len(gzip.compress(open(path, "rb").read(), compresslevel=6))
held = report["accounts"]
print(f"population {population:,} accounts, {events:,} opening events, {shards} shard(s); shard 0:")
print(f"  accounts held      {held:,} ({report['events']:,} events applied in {seconds:.1f} s)")
print(f"  snapshot           {size:,} bytes ({size / 2**20:.1f} MiB)")
print(f"  per account        {size / held:,.0f} bytes")
print(f"  gzip -6            {packed:,} bytes ({packed / held:,.0f} bytes per account)")
PY
