"""The dashboard's first render with a demo book of 10,000 accounts (issue 12, item 7), measured
from outside the page: headless Debian Chromium driven by Playwright (the browser tests' own
launcher and demo fixture, crates/solvent-server/tests/browser/conftest.py).

Each run times, with the client's monotonic clock, navigation to `/` -> the first ranked row of
the accounts table visible (`#accounts tbody tr`): the page, its ES modules, the key check, the
first page of ranked accounts from the API and its rendering. Runs come in two kinds:
  - cold: a new browser context each time (empty cache, new connections);
  - warm: the same context navigating again (cached modules and stylesheet).
Beside each, the page's own marks (performance.now() from its navigation start): the first
render (`data-first-render-ms`) and the whole book loaded for sorting and searching
(`data-loaded-ms`). Not timed: the browser's launch and the demo's opening.

Usage: bench/dashboard.sh [runs (5)]; prints one JSON report and writes it to
target/browser/first-render-bench.json."""

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "crates" / "solvent-server" / "tests" / "browser"))

from conftest import CHROMIUM, SHOTS, Demo, context_with_key, wait_ready  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

ACCOUNTS = int(os.environ.get("SOLVENT_BENCH_ACCOUNTS", "10000"))
FIRST_ROW = "#accounts tbody tr"


def timed_navigation(page, url):
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(FIRST_ROW, state="visible", timeout=60000)
    first_row_ms = (time.perf_counter() - started) * 1000
    wait_ready(page, timeout=120000)
    page.wait_for_selector("body[data-loaded-ms]", state="attached", timeout=120000)
    return {
        "first_row_visible_ms": round(first_row_ms, 1),
        "page_first_render_ms": int(page.get_attribute("body", "data-first-render-ms")),
        "page_whole_book_ms": int(page.get_attribute("body", "data-loaded-ms")),
    }


def summary(samples, key):
    values = [sample[key] for sample in samples]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with open("/proc/loadavg") as loadavg:
        load_before = " ".join(loadavg.read().split()[:3])
    demo = Demo(accounts=ACCOUNTS, speed=1)
    try:
        total = demo.api("/v1/accounts?limit=1")[1]["total"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            cold = []
            for _ in range(runs):
                context = context_with_key(browser, demo, "viewer")
                cold.append(timed_navigation(context.new_page(), demo.url + "/"))
                context.close()
            context = context_with_key(browser, demo, "viewer")
            page = context.new_page()
            timed_navigation(page, demo.url + "/")
            warm = [timed_navigation(page, demo.url + "/") for _ in range(runs)]
            context.close()
            version = browser.version
            browser.close()
    finally:
        demo.stop()
    with open("/proc/loadavg") as loadavg:
        load_after = " ".join(loadavg.read().split()[:3])
    report = {
        "accounts": total,
        "binary": os.environ.get("SOLVENT_BIN"),
        "chromium": version,
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cold": {key: summary(cold, key) for key in cold[0]},
        "warm": {key: summary(warm, key) for key in warm[0]},
        "cold_runs": cold,
        "warm_runs": warm,
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "first-render-bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
