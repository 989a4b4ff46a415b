#!/usr/bin/env bash
# `solvent replay` end to end against the in-memory engine on the same events, in the same run
# (docs/benchmarks.md, section "Replay"). Two streams:
#   - population: `solvent population --accounts N` (index prices, then per account deposits,
#     leverage settings and fills against `external`);
#   - funding: the same, then 20 rounds of funding on BTCUSDT, ETHUSDT and BTC-PERPETUAL, 8
#     hours apart (each payment is one `transfer_applied` per holder).
# For each stream:
#   1. examples/replay_phases (solvent-engine): parsing alone (through serde_json::Value as
#      before, and typed), `Engine::apply` over events parsed beforehand (the in-memory figure),
#      and apply with every effect written into memory (through a Value as before, and
#      directly); best of ROUNDS, wall-clock and CPU time;
#   2. `solvent replay STREAM --out EFFECTS --json`, RUNS times pinned to core 0 (taskset) and
#      RUNS times free on every core (the reader thread then has a core of its own); best
#      wall-clock and best CPU time (user + system, /usr/bin/time) of each;
#   3. the ratios end to end / in memory, on wall-clock and on CPU time.
# With BEFORE=path/to/an/older/solvent, that binary runs too, interleaved with the new one, and
# its effects must be byte for byte the same.
#
# Usage: bench/replay.sh [accounts (50000)] [runs (5)] [dir (a new temporary directory)]
#   ROUNDS   rounds of each phase of replay_phases (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."

accounts="${1:-50000}"
runs="${2:-5}"
dir="${3:-$(mktemp -d "${TMPDIR:-/tmp}/solvent-replay-bench.XXXXXX")}"
rounds="${ROUNDS:-3}"
before="${BEFORE:-}"
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c 0); fi
echo "replay bench on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

cargo build --quiet --release -p solvent-cli --bin solvent
cargo build --quiet --release -p solvent-engine --example replay_phases
solvent=target/release/solvent

"$solvent" population --accounts "$accounts" --out "$dir/population.jsonl" >/dev/null
cp "$dir/population.jsonl" "$dir/funding.jsonl"
last=$(wc -l <"$dir/population.jsonl")
awk -v seq="$last" 'BEGIN {
    for (round = 0; round < 20; round++) {
        day = 6 + int((8 + 8 * round) / 24); hour = (8 + 8 * round) % 24;
        rate = (round % 2 == 0) ? "0.0001" : "-0.00005";
        split("BTCUSDT ETHUSDT BTC-PERPETUAL", perps, " ");
        for (i = 1; i <= 3; i++) {
            printf "{\"seq\":%d,\"ts\":\"2026-01-%02dT%02d:00:00Z\",\"type\":\"funding\",\"instrument\":\"%s\",\"rate\":\"%s\"}\n", ++seq, day, hour, perps[i], rate;
        }
    }
}' >>"$dir/funding.jsonl"

# Best wall-clock and best CPU seconds of RUNS runs of a command, as "wall cpu".
best_of() {
    local times="$dir/times"
    : >"$times"
    for _ in $(seq "$runs"); do
        /usr/bin/time -o "$times" -a -f "%e %U %S" "$@" >/dev/null
    done
    awk 'NR == 1 || $1 < w { w = $1 } NR == 1 || $2 + $3 < c { c = $2 + $3 } END { printf "%.3f %.3f\n", w, c }' "$times"
}

for stream in population funding; do
    file="$dir/$stream.jsonl"
    echo
    echo "== $stream: $(wc -l <"$file") events"
    "${PIN[@]}" target/release/examples/replay_phases "$file" "$rounds" | tee "$dir/phases"
    read -r memory_wall memory_cpu < <(sed -n 's/^in-memory apply: wall_s=\([0-9.]*\) cpu_s=\([0-9.]*\)$/\1 \2/p' "$dir/phases")
    events=$(grep -c . "$file")
    report() {
        local name="$1" wall="$2" cpu="$3"
        awk -v n="$name" -v w="$wall" -v c="$cpu" -v e="$events" -v mw="$memory_wall" -v mc="$memory_cpu" 'BEGIN {
            printf "%-40s wall %7.3f s %9.0f events/s (%.2fx in memory) | cpu %7.3f s %9.0f events/s (%.2fx)\n", n, w, e / w, w / mw, c, e / c, c / mc
        }'
    }
    report "in memory (Engine::apply, pinned)" "$memory_wall" "$memory_cpu"
    for binary in ${before:+"$before"} "$solvent"; do
        label=$([ "$binary" = "$solvent" ] && echo "solvent replay" || echo "before")
        out="$dir/effects-$([ "$binary" = "$solvent" ] && echo after || echo before).jsonl"
        read -r wall cpu < <(best_of "${PIN[@]}" "$binary" replay "$file" --out "$out" --json)
        report "$label --out, pinned to core 0" "$wall" "$cpu"
        read -r wall cpu < <(best_of "$binary" replay "$file" --out "$out" --json)
        report "$label --out, every core" "$wall" "$cpu"
    done
    if [ -n "$before" ]; then
        cmp "$dir/effects-before.jsonl" "$dir/effects-after.jsonl"
        echo "effects of both binaries: byte for byte the same ($(wc -c <"$dir/effects-after.jsonl") bytes)"
    fi
    rm -f "$dir"/effects-*.jsonl
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$dir/population.jsonl" "$dir/funding.jsonl" "$dir/phases" "$dir/times"
