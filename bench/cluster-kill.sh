#!/usr/bin/env bash
# The cluster's kill test over many seeds (docs/scale.md, "Exactly once"): for each seed, a
# three-node NATS cluster, four shard processes, a NATS node killed with SIGKILL under load and
# every shard killed twelve times after a snapshot; every input's effects must be in the effect
# stream exactly once and equal one engine's. ./scripts/test runs one seed.
#
# Usage: bench/cluster-kill.sh [SEEDS]   (default 20; seeds 1..SEEDS)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-20}"
./scripts/setup-nats >/dev/null
cargo test --quiet --locked -p solvent-cli --test cluster --no-run
failed=0
for ((seed = 1; seed <= seeds; seed++)); do
  if SOLVENT_CLUSTER_SEED=$seed cargo test --quiet --locked -p solvent-cli --test cluster \
      killed_shards >/tmp/solvent-cluster-kill-$seed.log 2>&1; then
    echo "seed $seed: ok"
    rm -f /tmp/solvent-cluster-kill-$seed.log
  else
    echo "seed $seed: FAILED (log: /tmp/solvent-cluster-kill-$seed.log)"
    failed=$((failed + 1))
  fi
done
echo "$failed of $seeds seeds failed"
[ "$failed" -eq 0 ]
