#!/usr/bin/env bash
# The dashboard's first render (issue 12, item 7): the release `solvent serve --demo` with the
# demo's 10,000 accounts on 127.0.0.1 (port 0, a temporary data directory, stopped at the end),
# and headless Debian Chromium driven by Playwright for Python as the browser tests launch it
# (scripts/setup-browser; never a downloaded browser). Times navigation -> the first ranked rows
# visible, cold and warm; see bench/dashboard_first_render.py for what each figure covers.
# SOLVENT_BIN picks the binary (default: target/release/solvent, built here).
#
# Usage: bench/dashboard.sh [runs (5)]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-browser
if [ -z "${SOLVENT_BIN:-}" ]; then
  cargo build --quiet --release -p solvent-cli
  export SOLVENT_BIN="$PWD/target/release/solvent"
fi
echo "dashboard bench on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); binary $SOLVENT_BIN"
exec target/oracle-venv/bin/python bench/dashboard_first_render.py "$@"
