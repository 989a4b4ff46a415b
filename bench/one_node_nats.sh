# Sourced, from the repository's root, by the benches that run on one NATS node
# (bench/cluster-snapshot.sh, bench/standby.sh): sets `solvent` (SOLVENT_BIN, else the release
# build made here) and `work` (a scratch directory named after $1), starts a one-node NATS
# (JetStream, sync_interval: always) at `url`, and on exit stops every process in `pids` (the
# node's among them; a bench adds its own) and removes `work`.
#
# Usage: source bench/one_node_nats.sh NAME
nats_server=$(./scripts/setup-nats)
if [ -n "${SOLVENT_BIN:-}" ]; then
  solvent="$SOLVENT_BIN"
else
  cargo build --quiet --release --locked -p solvent-cli
  solvent="${CARGO_TARGET_DIR:-$PWD/target}/release/solvent"
fi
work=$(mktemp -d "/tmp/solvent-bench-$1.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nats"
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s", sync_interval: always }\n' \
  "$port" "$work/nats" > "$work/nats.conf"
"$nats_server" -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
pids+=($!)
url="nats://127.0.0.1:$port"
