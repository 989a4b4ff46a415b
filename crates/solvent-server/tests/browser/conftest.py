"""Fixtures of the dashboard's browser tests: `solvent serve --demo` instances with keys made
before they start, and headless Debian Chromium driven by Playwright (never a downloaded
browser)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[4]
BIN = os.environ.get("SOLVENT_BIN", str(ROOT / "target" / "debug" / "solvent"))
CHROMIUM = os.environ.get("SOLVENT_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "target" / "browser"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"

# The account the account-scoped key may read (a portfolio-margin account of the demo's opening),
# and one it may not.
OWN_ACCOUNT = "pm-00001"
OTHER_ACCOUNT = "acct-0001"


class Demo:
    """A running `solvent serve --demo` and the keys made for it."""

    def __init__(self, accounts, speed):
        self.dir = Path(tempfile.mkdtemp(prefix="solvent-browser-"))
        self.keys = {}
        for name, scope in [("admin", "admin"), ("viewer", "viewer"), ("own", f"account:{OWN_ACCOUNT}")]:
            out = subprocess.run([BIN, "keys", "add", "--data", str(self.dir), "--scope", scope],
                                 check=True, capture_output=True, text=True).stdout
            self.keys[name] = out.split()[0]
        self.process = subprocess.Popen(
            [BIN, "serve", "--demo", "--data", str(self.dir), "--listen", "127.0.0.1:0",
             "--demo-accounts", str(accounts), "--demo-speed", str(speed)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines = []
        self.opened = threading.Event()
        self.url = None
        started = threading.Event()

        def read():
            for line in self.process.stdout:
                self.lines.append(line)
                found = re.search(r"serving (http://\S+)", line)
                if found:
                    self.url = found.group(1)
                    started.set()
                if line.startswith("demo:") and "accounts opened" in line:
                    self.opened.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(60):
            self.stop()
            raise RuntimeError(f"solvent serve did not start: {self.lines}")
        if not self.opened.wait(600):
            self.stop()
            raise RuntimeError(f"the demo's opening did not load: {self.lines}")

    def api(self, path, key="admin", body=None):
        request = urllib.request.Request(self.url + path, method="POST" if body is not None else "GET")
        request.add_header("Authorization", f"Bearer {self.keys.get(key, key)}")
        data = None
        if body is not None:
            request.add_header("Content-Type", "application/json")
            data = json.dumps(body).encode()
        try:
            with urllib.request.urlopen(request, data, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def demo():
    # A small book replayed at a historical second per second: the figures hold still while a
    # test compares the page with the API, and the test's own events are what moves the book.
    server = Demo(accounts=300, speed=1)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def context_with_key(browser, demo, key):
    """A browser context whose session already holds `key` (as after the key prompt)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(f"sessionStorage.setItem('solvent.api_key', {json.dumps(demo.keys.get(key, key))});")
    return context


@pytest.fixture
def admin_page(chromium, demo):
    context = context_with_key(chromium, demo, "admin")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Nothing is loaded from elsewhere: every request goes to the service itself.
    foreign = []
    local = demo.url.replace("http://", "")
    page.on("request", lambda request: None if local in request.url else foreign.append(request.url))
    yield page
    context.close()
    assert not errors, errors
    assert not foreign, foreign


def screenshot(page, name):
    """Saves a full-page screenshot under target/browser/ and checks that it is not blank."""
    from PIL import Image

    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    image = Image.open(path).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 20, f"{path} looks blank ({len(colours)} colours)"
    low, high = image.convert("L").getextrema()
    assert high - low > 100, f"{path} has no contrast"
    return path


def run_axe(page):
    """The axe-core violations of the page (WCAG 2 A and AA rules)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]


def wait_ready(page, timeout=30000):
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=timeout)


def same_decimal(a, b):
    from decimal import Decimal

    return Decimal(str(a)) == Decimal(str(b))


def money(value):
    """The dashboard's display of a money amount: two decimals, thousands separated."""
    from decimal import ROUND_HALF_EVEN, Decimal

    return f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"


def now():
    return time.monotonic()
