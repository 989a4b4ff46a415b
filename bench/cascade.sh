#!/usr/bin/env bash
# `solvent population` and `solvent cascade` at growing population sizes, one core each
# (docs/benchmarks.md, section "Population and cascade").
#
# For each size N: `solvent population --accounts N --out FILE`, then `solvent cascade FILE
# --shock BTC:-15% --json` (default impact, depth and rounds), each pinned to core 0 (taskset)
# with RAYON_NUM_THREADS=1, timed by /usr/bin/time -v: wall-clock, CPU time (user + system) and
# peak resident memory. Prints one line per command with the cascade's rounds, accounts
# liquidated and the volume sent to the market, so a faster run can be seen to do the same work.
# With BEFORE=path/to/an/older/solvent, that binary draws its own population and runs its own
# cascade at each size too (a binary whose generator differs draws a different population).
#
# Usage: bench/cascade.sh [sizes (10000 100000 1000000)]
#   SHOCK   the cascade's --shock (default BTC:-15%)
#   DIR     where the populations go (default a new temporary directory, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
if [ ${#sizes[@]} -eq 0 ]; then sizes=(10000 100000 1000000); fi
shock="${SHOCK:-BTC:-15%}"
before="${BEFORE:-}"
dir="${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/solvent-cascade-bench.XXXXXX")}"
PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c 0); fi
export RAYON_NUM_THREADS=1
echo "cascade bench on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

cargo build --quiet --release -p solvent-cli --bin solvent
solvent=target/release/solvent

# Runs a command under /usr/bin/time -v, its stdout to the file $1; prints "wall_s cpu_s
# peak_rss_mb".
timed() {
    local log="$dir/time.log" out="$1"
    shift
    /usr/bin/time -v -o "$log" "$@" >"$out"
    awk -F': ' '
        /Elapsed \(wall clock\)/ { n = split($2, t, ":"); wall = (n == 3) ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2] }
        /User time/ { cpu += $2 } /System time/ { cpu += $2 }
        /Maximum resident set size/ { rss = $2 / 1024 }
        END { printf "%.2f %.2f %.0f\n", wall, cpu, rss }' "$log"
}

# The first number after `"key":` in a JSON file (the report's totals come after its rounds).
total() { grep -o "\"$1\": *\"\?[0-9.]*" "$2" | tail -1 | sed 's/.*: *"\?//'; }

printf '%-8s %9s %-10s %8s %8s %9s %7s %11s %16s\n' binary accounts command wall_s cpu_s rss_mb rounds liquidated volume_usd
for n in "${sizes[@]}"; do
    for binary in ${before:+"$before"} "$solvent"; do
        label=$([ "$binary" = "$solvent" ] && echo now || echo before)
        file="$dir/population-$label-$n.jsonl"
        report="$dir/report-$label-$n.json"
        read -r wall cpu rss < <(timed /dev/null "${PIN[@]}" "$binary" population --accounts "$n" --out "$file")
        printf '%-8s %9d %-10s %8s %8s %9s\n' "$label" "$n" population "$wall" "$cpu" "$rss"
        read -r wall cpu rss < <(timed "$report" "${PIN[@]}" "$binary" cascade "$file" --shock "$shock" --json)
        printf '%-8s %9d %-10s %8s %8s %9s %7s %11s %16s\n' "$label" "$n" cascade "$wall" "$cpu" "$rss" \
            "$(total rounds "$report")" "$(total accounts_liquidated "$report")" "$(total volume_usd "$report" | cut -d. -f1)"
        rm -f "$file" "$report"
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${DIR:-}" ]; then rm -rf "$dir"; fi
