#!/usr/bin/env bash
# Scale-out throughput (issue 13 item 6; docs/scale.md): the same events through 1, 2 and 4
# shard processes over a three-node NATS cluster on this machine (JetStream, sync_interval:
# always, streams R3). For each shard count, on a fresh cluster: publish a seeded population and
# a market of index updates with fills and deposits between them (publisher rate, acknowledged by
# JetStream), then run every shard to the end of the stream at once (`--stop-at-end`) and report
# the wall time, the aggregate events applied per second, and each shard's CPU time and peak
# memory (GNU time); then the system shard, which reads every shard's effect messages, over the
# same streams to their end (`--stop-at-end`): its wall time, effect messages read per second,
# CPU, peak memory and snapshot size. Two cores cap everything here: NATS's three nodes, the
# publisher and the shards share them.
#
# Usage: bench/cluster.sh [ACCOUNTS] [UPDATES]   (defaults 100000 accounts, 20000 index updates)
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-100000}"
updates="${2:-20000}"
nats_server=$(./scripts/setup-nats)
cargo build --quiet --release --locked -p solvent-cli
solvent="${CARGO_TARGET_DIR:-$PWD/target}/release/solvent"
work=$(mktemp -d /tmp/solvent-bench-cluster.XXXXXX)
pids=()
stop_nats() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_nats; rm -rf "$work"' EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$solvent" population --accounts "$accounts" --out "$work/opening.jsonl" >/dev/null
python3 bench/cluster_market.py "$work/opening.jsonl" "$work/market.jsonl" "$updates"
cat "$work/opening.jsonl" "$work/market.jsonl" > "$work/events.jsonl"
total=$(wc -l < "$work/events.jsonl")
echo "events: $total ($accounts accounts; $updates index updates with 3 account events each)"
printf '%-7s %-14s %-10s %-16s %s\n' shards publish_ev/s apply_s applied_ev/s "per shard: events, CPU s, peak RSS MiB"

for shards in 1 2 4; do
  run="$work/run-$shards"; mkdir -p "$run"
  client=() route=()
  for n in 0 1 2; do client+=("$(free_port)"); route+=("$(free_port)"); done
  routes="nats-route://127.0.0.1:${route[0]}, nats-route://127.0.0.1:${route[1]}, nats-route://127.0.0.1:${route[2]}"
  for n in 0 1 2; do
    mkdir -p "$run/nats-$n"
    printf 'server_name: n%s\nlisten: 127.0.0.1:%s\njetstream { store_dir: "%s", sync_interval: always }\ncluster { name: solvent, listen: 127.0.0.1:%s, routes: [%s] }\n' \
      "$n" "${client[$n]}" "$run/nats-$n" "${route[$n]}" "$routes" > "$run/nats-$n.conf"
    "$nats_server" -c "$run/nats-$n.conf" >"$run/nats-$n.log" 2>&1 &
    pids+=($!)
  done
  urls="nats://127.0.0.1:${client[0]},nats://127.0.0.1:${client[1]},nats://127.0.0.1:${client[2]}"
  start=$(date +%s.%N)
  "$solvent" cluster publish --cluster "$urls" --shards "$shards" --batch 1000 "$work/events.jsonl" > "$run/publish.json"
  published=$(date +%s.%N)
  shard_pids=()
  for ((k = 0; k < shards; k++)); do
    /usr/bin/time -f '%U %S %M' -o "$run/time-$k" \
      "$solvent" cluster shard --cluster "$urls" --shard "$k/$shards" --data "$run/shard-$k" \
      --snapshot-every 100000 --stop-at-end > "$run/report-$k.json" &
    shard_pids+=($!)
  done
  for pid in "${shard_pids[@]}"; do wait "$pid"; done
  applied=$(date +%s.%N)
  /usr/bin/time -f '%U %S %M' -o "$run/time-system" \
    "$solvent" cluster system --cluster "$urls" --shards "$shards" --data "$run/system" \
    --stop-at-end > "$run/report-system.json"
  answered=$(date +%s.%N)
  python3 - "$run" "$shards" "$total" "$start" "$published" "$applied" "$answered" <<'PY'
import glob, json, os, sys
run, shards, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start, published, applied, answered = map(float, sys.argv[4:8])
per, events = [], 0
for k in range(shards):
    report = json.load(open(f"{run}/report-{k}.json"))
    user, system, rss_kib = open(f"{run}/time-{k}").read().split()
    events += report["events"]
    per.append(f'{report["events"]:,} ev, {float(user) + float(system):.1f} s, {int(rss_kib) / 1024:.0f} MiB')
print(f"{shards:<7} {total / (published - start):<14,.0f} {applied - published:<10.1f} "
      f"{events / (applied - published):<16,.0f} {'; '.join(per)}")
system = json.load(open(f"{run}/report-system.json"))
user, sys_cpu, rss_kib = open(f"{run}/time-system").read().split()
snapshots = glob.glob(f"{run}/system/system-snapshots/*.json")
size = max((os.path.getsize(path) for path in snapshots), default=0)
wall = answered - applied
print(f"        system shard: {system['effect_messages']:,} effect messages in {wall:.1f} s "
      f"({system['effect_messages'] / wall:,.0f} / s), {float(user) + float(sys_cpu):.2f} s CPU, "
      f"{int(rss_kib) / 1024:.0f} MiB, {system['claims']} claims, snapshot {size:,} bytes")
PY
  stop_nats
done
