#!/usr/bin/env bash
# The service end to end (issue 11 item 11, DESIGN.md 12): the release `solvent serve` on
# 127.0.0.1 (a free port, a data directory under a temporary directory, a feeder and a viewer key
# made with `solvent keys add`), driven over loopback by the load generator
# crates/solvent-server/examples/load, which measures in one run:
#   - the opening of a seeded population (default 10,000 accounts), in order, one connection;
#   - HTTP batch ingest end to end: a fixed number of events of a steady mix (1% index prices,
#     0.1% marks, 70% fills of the population's traders, 28.9% deposits; the index swings 3% down
#     and back over 2 million events) in batches of 1,000 on 4 kept-alive connections, back to
#     back (target >= 100,000 events / s);
#   - then, for --paced-secs, an open-loop offered rate (default 50,000 events / s in batches of
#     100, latency counted from each batch's scheduled time): the acknowledgement latency
#     (target p99 < 10 ms), margin queries GET /v1/accounts/{id} at 1,000 / s (target p99 < 2 ms),
#     and 1,000 WebSocket subscribers of margin_calls, liquidations and their own account.{id},
#     each checked against every effect the replies say was routed to it (target: 0 gaps, in
#     order), with the delivery lag from the event's time stamp to arrival.
# At the end: the server's CPU in all and per thread, with each thread's waits and preemptions.
# The journal alone (SQLite, group commit) is measured by bench/journal.sh.
#
# Usage: bench/serve.sh [--paced-secs S (60)] [--rate EVENTS_PER_S (50000)]
#          [--ingest-events N (1000000)] [--query-rate Q (1000)] [--subscribers N (1000)]
#          [--accounts N (10000)] [--server-cpus LIST] [--client-cpus LIST] [--nice N]
#          [--huge-pages on|off (the server's default, on)] [load options...]
# SOLVENT=path times that build of `solvent` instead of target/release/solvent (to alternate two
# builds on one machine; the load generator is built from the working tree either way).
# --server-cpus / --client-cpus pin either side with taskset (e.g. --server-cpus 1
# --client-cpus 0); by default both float over the machine's cores. --nice N runs both with
# `nice -n N` (a negative N needs root: on a shared machine, it measures the code with less
# waiting behind other processes' threads; say so when quoting such figures).
set -euo pipefail
cd "$(dirname "$0")/.."

server_cpus=""
client_cpus=""
niceness=""
huge_pages=()
load_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --server-cpus) server_cpus="$2"; shift 2 ;;
    --client-cpus) client_cpus="$2"; shift 2 ;;
    --nice) niceness="$2"; shift 2 ;;
    --huge-pages) huge_pages=(--huge-pages "$2"); shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) load_args+=("$1" "$2"); shift 2 ;;
  esac
done

cargo build --quiet --release -p solvent-cli
cargo build --quiet --release -p solvent-server --example load

work="$(mktemp -d "${TMPDIR:-/tmp}/solvent-serve-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -INT "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# 1,000 subscribers and the HTTP connections on both ends of the loopback.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "serve bench on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data under $work: $(df -h "$work" | awk 'NR==2 {print $1, $4, "free"}'); $(findmnt -no FSTYPE --target "$work" 2>/dev/null || true)"

# SOLVENT names another build of `solvent` to measure (alternating two builds on one machine).
solvent="${SOLVENT:-./target/release/solvent}"
feeder="$($solvent keys add --data "$work/data" --scope feeder | head -n1)"
viewer="$($solvent keys add --data "$work/data" --scope viewer | head -n1)"

pin() {
  if [ -n "$niceness" ]; then echo "nice -n $niceness"; fi
  if [ -n "$1" ]; then echo "taskset -c $1"; fi
}
# shellcheck disable=SC2046
$(pin "$server_cpus") "$solvent" serve --data "$work/data" --listen 127.0.0.1:0 "${huge_pages[@]}" \
  >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
addr=""
for _ in $(seq 1 600); do
  addr="$(sed -n 's|^solvent: serving http://\([^ ]*\).*|\1|p' "$work/serve.out" | head -n1)"
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
echo "solvent serve (pid $server_pid${server_cpus:+, cpus $server_cpus}${huge_pages[1]:+, --huge-pages ${huge_pages[1]}}) on $addr; load generator${client_cpus:+ on cpus $client_cpus}${niceness:+; both at nice $niceness}"
grep -s '^THP_enabled' "/proc/$server_pid/status" | sed 's/^/  server /' || true

cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
# shellcheck disable=SC2046
$(pin "$client_cpus") ./target/release/examples/load --addr "$addr" \
  --feeder-key "$feeder" --viewer-key "$viewer" "${load_args[@]}"

echo "solvent serve used $(cpu_of "$server_pid") s of CPU in all; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Per thread (summed by name): its CPU, and how often it waited for work (voluntary switches)
# against how often it was switched out while it could run (involuntary): on a machine whose
# cores are all busy, the engine thread's involuntary switches say that CPU saved on any other
# thread speeds it up.
for task in /proc/"$server_pid"/task/*; do
  printf '%s %s %s %s\n' "$(tr ' ' '_' <"$task/comm")" "$(cpu_of "${task#/proc/}")" \
    "$(awk '/^voluntary_ctxt_switches/ {print $2}' "$task/status")" \
    "$(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$task/status")"
done | awk '{cpu[$1] += $2; waited[$1] += $3; preempted[$1] += $4}
  END {for (name in cpu) printf "  thread %-16s %7.2f s CPU, waited %7d times, switched out %7d times\n", name, cpu[name], waited[name], preempted[name]}' | sort
curl -s --max-time 5 "http://$addr/metrics" 2>/dev/null |
  grep -E '^solvent_(events_(applied|durable)_total|events_ack_seconds|journal_commit_(events|seconds)_(sum|count)|effects_total|accounts)' || true
