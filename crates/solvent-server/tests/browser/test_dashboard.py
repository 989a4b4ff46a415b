"""The dashboard in headless Chromium against `solvent serve --demo`: every page opens, the
numbers shown equal the API's, an event posted shows on the overview within a second, an
account key reaches its own account only, pages pass axe-core's WCAG A/AA rules and work from
the keyboard, and every page leaves a screenshot under target/browser/."""

import time
from decimal import Decimal

from conftest import (OTHER_ACCOUNT, OWN_ACCOUNT, context_with_key, run_axe, same_decimal,
                      screenshot, wait_ready)


def close(display, value):
    """The display of a money amount rounds the exact value to cents."""
    return abs(Decimal(display.replace(",", "")) - Decimal(str(value))) <= Decimal("0.005")


def test_the_console_asks_for_a_key_once_and_the_overview_equals_the_api(chromium, demo):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(demo.url + "/")
    dialog = page.locator("#key-dialog")
    dialog.wait_for(state="visible")
    page.fill("#key-input", "sk_00000000_" + "0" * 64)
    page.click("#key-form button[type=submit]")
    page.wait_for_function("document.getElementById('key-error').textContent.length > 0")
    assert "not valid" in page.text_content("#key-error")
    page.fill("#key-input", demo.keys["viewer"])
    page.click("#key-form button[type=submit]")
    wait_ready(page)
    assert not dialog.is_visible()
    assert page.text_content("#scope") == "key: viewer"

    status, book = demo.api("/v1/accounts?limit=20", key="viewer")
    assert status == 200
    for state, count in book["counts"].items():
        shown = page.get_attribute(f"#counts button[data-state={state}] .count", "data-value")
        assert int(shown) == count, state
    for asset, sums in book["totals"].items():
        row = page.locator(f"#totals tr[data-asset={asset}] td")
        assert same_decimal(row.nth(0).get_attribute("data-value"), sums["equity"])
        assert same_decimal(row.nth(1).get_attribute("data-value"), sums["initial_margin"])
        assert same_decimal(row.nth(2).get_attribute("data-value"), sums["maintenance_margin"])
        assert close(row.nth(0).text_content(), sums["equity"])
    shown = page.eval_on_selector_all(
        "#accounts tbody tr[data-account]",
        "rows => rows.slice(0, 20).map(r => [r.dataset.account, r.children[3].dataset.value, r.children[3].textContent])")
    assert [account for account, _, _ in shown] == [row["account"] for row in book["accounts"]]
    for (account, value, text), row in zip(shown, book["accounts"]):
        assert same_decimal(value, row["equity"]), account
        assert close(text, row["equity"]), account
    _, prices = demo.api("/v1/prices", key="viewer")
    for name, price in prices["index"].items():
        assert same_decimal(page.get_attribute(f"#prices dd[data-name={name}]", "data-value"), price)
    _, fund = demo.api("/v1/insurance-fund?limit=1", key="viewer")
    for asset, balance in fund["balances"].items():
        assert same_decimal(page.get_attribute(f"#fund-balances dd[data-asset={asset}]", "data-value"), balance)
    screenshot(page, "overview")

    # Asked once: a reload keeps the key for the session.
    page.reload()
    wait_ready(page)
    assert not dialog.is_visible()
    context.close()


def test_search_filter_and_sort_work_on_the_whole_book(admin_page, demo):
    page = admin_page
    page.goto(demo.url + "/")
    wait_ready(page)
    total = demo.api("/v1/accounts?limit=1")[1]["total"]
    assert page.text_content("#shown").endswith(f"of {total:,} accounts")
    page.fill("#search", "pm-0000")
    page.wait_for_function("document.getElementById('shown').textContent.startsWith('9 of')")
    ids = page.eval_on_selector_all("#accounts tbody tr[data-account]", "rows => rows.map(r => r.dataset.account)")
    assert ids and all("pm-0000" in account for account in ids)
    page.fill("#search", "")
    # A state's count filters the list to it; a second click shows every state again.
    page.click("#counts button[data-state=healthy]")
    assert page.get_attribute("#counts button[data-state=healthy]", "aria-pressed") == "true"
    assert page.input_value("#state-filter") == "healthy"
    page.click("#counts button[data-state=healthy]")
    assert page.input_value("#state-filter") == ""
    page.select_option("#sort", "equity")
    first = page.get_attribute("#accounts tbody tr[data-account]", "data-account")
    _, everything = demo.api("/v1/accounts?limit=10000")
    richest = max(everything["accounts"], key=lambda row: Decimal(row["equity"] or "-1e30"))
    assert first == richest["account"]
    page.select_option("#state-filter", "healthy")
    states = page.eval_on_selector_all("#accounts tbody tr[data-account] td:nth-child(2)", "cells => cells.map(c => c.dataset.value)")
    assert states and set(states) == {"healthy"}
    # The list is virtualised: only the rows in sight are in the document.
    assert page.locator("#accounts tbody tr[data-account]").count() < 80
    page.locator("#accounts-scroll").evaluate("e => e.scrollTop = e.scrollHeight")
    page.wait_for_timeout(100)
    assert page.locator("#accounts tbody tr[data-account]").count() > 0


def test_an_event_posted_shows_on_the_overview_within_a_second(admin_page, demo):
    page = admin_page
    page.goto(demo.url + "/")
    wait_ready(page)
    page.fill("#search", OTHER_ACCOUNT)
    page.wait_for_selector(f"#accounts tr[data-account='{OTHER_ACCOUNT}']")
    page.wait_for_function("document.getElementById('live').textContent === 'live'")
    status, reply = demo.api("/v1/events", body={"events": [
        {"type": "deposit", "account": OTHER_ACCOUNT, "asset": "USDT", "amount": "123456.78"}]})
    posted = time.monotonic()
    assert status == 200, reply
    result = reply["results"][0]
    assert result["status"] == "accepted", result
    updated = next(e for e in result["effects"] if e["type"] == "account_updated")
    page.wait_for_function(
        "([id, equity]) => { const row = document.querySelector(`#accounts tr[data-account='${id}']`);"
        " return row && row.children[3].dataset.value === equity; }",
        arg=[OTHER_ACCOUNT, updated["equity"]], timeout=1000, polling=20)
    elapsed = time.monotonic() - posted
    assert elapsed < 1.0, elapsed
    # The audit page shows the event with its effects, each linking to it.
    seq = result["seq"]
    page.goto(f"{demo.url}/audit?seq={seq}")
    wait_ready(page)
    row = page.locator(f"#event-{seq}")
    assert "deposit" in row.text_content()
    links = row.locator("a[data-caused-by]")
    assert links.count() == len(result["effects"])
    assert {links.nth(i).get_attribute("href") for i in range(links.count())} == {f"#event-{seq}"}
    page.fill("#audit-account", OTHER_ACCOUNT)
    page.select_option("#audit-type", "deposit")
    page.fill("#audit-after", "")
    page.click("#audit-form button[type=submit]")
    page.wait_for_selector(f"#event-{seq}")
    types = page.eval_on_selector_all("#journal tbody tr", "rows => rows.map(r => r.dataset.type)")
    assert set(types) == {"deposit"}
    screenshot(page, "audit")
    # The effect-type filter: the events whose effects include the type, each effect listed.
    page.select_option("#audit-type", "")
    page.select_option("#audit-effect", "transfer_applied")
    page.click("#audit-form button[type=submit]")
    page.wait_for_selector(f"#event-{seq} li[data-type=transfer_applied]")
    page.select_option("#audit-effect", "")
    # Unfiltered, the page is read from the durable journal 100 events at a time: "Older events"
    # continues where the page ended, back towards the first event, every event with its effects.
    page.fill("#audit-account", "")
    page.click("#audit-form button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#journal tbody tr').length === 100")
    assert "each with its effects" in page.text_content("#audit-status")
    seqs = lambda: page.eval_on_selector_all("#journal tbody tr", "rows => rows.map(r => Number(r.dataset.seq))")
    first_page = seqs()
    assert first_page == sorted(first_page)
    page.click("#audit-more")
    page.wait_for_function("document.querySelectorAll('#journal tbody tr').length === 200")
    both = seqs()
    assert both == sorted(both) and both[100:] == first_page and both[99] < first_page[0], both[95:105]


def test_the_account_page_equals_the_api(admin_page, demo):
    page = admin_page
    page.goto(f"{demo.url}/accounts/{OWN_ACCOUNT}")
    page.wait_for_selector("body[data-complete=true]", state="attached", timeout=60000)
    _, report = demo.api(f"/v1/accounts/{OWN_ACCOUNT}")
    for name in ["equity", "initial_margin", "maintenance_margin", "available", "withdrawable"]:
        assert same_decimal(page.get_attribute(f"#summary dd[data-name={name}]", "data-value"), report[name]), name
        assert close(page.text_content(f"#summary dd[data-name={name}]"), report[name]), name
        assert same_decimal(page.get_attribute(f"#waterfall g[data-name={name}]", "data-value"), report[name]), name
    assert page.get_attribute("#summary dd[data-name=mode]", "data-value") == "portfolio"
    for position in report["positions"]:
        cells = page.locator(f"#positions tr[data-instrument='{position['instrument']}'] td")
        assert same_decimal(cells.nth(0).get_attribute("data-value"), position["size"])
        assert same_decimal(cells.nth(4).get_attribute("data-value"), position["initial_margin"])
        if position["liquidation_price"] is not None:
            assert same_decimal(cells.nth(6).get_attribute("data-value"), position["liquidation_price"])
            # An option's level is its underlying's index: no axis beside its premium.
            axes = 1 if position["liquidation_price_of"] == "mark" else 0
            assert page.locator(f"#liq-axes svg[data-instrument='{position['instrument']}']").count() == axes
    assert page.locator("#attribution-table tbody tr").count() >= 1
    assert page.get_attribute("#stress-chart", "data-points") == "41"
    assert page.locator("#matrix table.heat").count() >= 1
    _, allocation = demo.api("/v1/allocate", body={"account": OWN_ACCOUNT})
    assert same_decimal(page.get_attribute("#allocation dd[data-name=excess]", "data-value"), allocation["excess"])
    screenshot(page, "account")

    instrument = report["positions"][0]["instrument"]
    page.fill("#whatif-trades", f"{instrument}:1")
    page.click("#whatif-form button[type=submit]")
    page.wait_for_selector("#whatif-verdict")
    _, expected = demo.api("/v1/whatif", body={"account": OWN_ACCOUNT, "trades": [f"{instrument}:1"]})
    assert page.get_attribute("#whatif-verdict", "data-accepted") == str(expected["accepted"]).lower()
    after = page.get_attribute("#whatif-table tr[data-name=initial_margin] td:nth-child(3)", "data-value")
    assert same_decimal(after, expected["after"]["initial_margin"])
    page.fill("#whatif-trades", f"{instrument}:-100000")
    page.click("#whatif-form button[type=submit]")
    page.wait_for_selector("#whatif-verdict[data-accepted=false]")
    _, refused = demo.api("/v1/whatif", body={"account": OWN_ACCOUNT, "trades": [f"{instrument}:-100000"]})
    assert page.get_attribute("#whatif-verdict", "data-refusal") == refused["refusal"]
    screenshot(page, "account-whatif")


def test_an_account_key_reaches_its_own_account_only(chromium, demo):
    context = context_with_key(chromium, demo, "own")
    page = context.new_page()
    page.goto(demo.url + "/")
    page.wait_for_url(f"**/accounts/{OWN_ACCOUNT}")
    page.wait_for_selector("body[data-complete=true]", state="attached", timeout=60000)
    page.goto(f"{demo.url}/accounts/{OTHER_ACCOUNT}")
    page.wait_for_selector("body[data-ready=refused]", state="attached")
    assert "cannot see account" in page.text_content("#notice")
    assert page.locator("#summary dd").count() == 0
    screenshot(page, "account-forbidden")
    assert demo.api(f"/v1/accounts/{OTHER_ACCOUNT}", key="own")[0] == 403
    assert demo.api("/v1/accounts", key="own")[0] == 403
    assert demo.api(f"/v1/journal?account={OTHER_ACCOUNT}", key="own")[0] == 403
    assert demo.api("/v1/cascade", key="own", body={"shocks": {"BTC": "-0.1"}})[0] == 403
    # The WebSocket refuses the other account's channel too.
    answer = page.evaluate("""(key) => new Promise((resolve) => {
        const socket = new WebSocket(`ws://${location.host}/v1/ws?api_key=${key}`);
        socket.onopen = () => socket.send(JSON.stringify({op: 'subscribe', args: ['account.%s']}));
        socket.onmessage = (event) => { resolve(JSON.parse(event.data)); socket.close(); };
    })""" % OTHER_ACCOUNT, demo.keys["own"])
    assert answer["op"] == "error" and answer["code"] == "forbidden"
    # The audit page shows the key's own account's events only.
    page.goto(f"{demo.url}/audit")
    wait_ready(page)
    assert page.input_value("#audit-account") == OWN_ACCOUNT
    context.close()


def test_the_stress_page_runs_a_cascade_equal_to_the_api(admin_page, demo):
    page = admin_page
    page.goto(demo.url + "/stress")
    wait_ready(page)
    page.fill("#shock-BTC", "-30")
    page.fill("#shock-ETH", "-30")
    page.fill("#rounds", "10")
    page.click("#cascade-form button[type=submit]")
    page.wait_for_selector("body[data-cascade=done]", state="attached", timeout=120000)
    _, report = demo.api("/v1/cascade", body={"shocks": {"BTC": "-0.3", "ETH": "-0.3"}, "impact": 0.1, "max_rounds": 10})
    assert page.locator("#rounds-table tbody tr").count() == len(report["rounds"])
    shown = page.get_attribute("#cascade-totals dd[data-name=accounts_liquidated]", "data-value")
    assert int(shown) == report["totals"]["accounts_liquidated"]
    assert same_decimal(page.get_attribute("#cascade-totals dd[data-name=volume_usd]", "data-value"),
                        report["totals"]["volume_usd"])
    screenshot(page, "stress")


def test_pages_pass_axe_and_work_from_the_keyboard(admin_page, demo):
    page = admin_page
    for path, ready in [("/", "body[data-ready=true]"), (f"/accounts/{OWN_ACCOUNT}", "body[data-complete=true]"),
                        ("/stress", "body[data-ready=true]"), ("/audit", "body[data-ready=true]")]:
        page.goto(demo.url + path)
        page.wait_for_selector(ready, state="attached", timeout=60000)
        violations = run_axe(page)
        assert not violations, (path, violations)
    # Keyboard: the skip link first, then the pages; the search box and an account link are
    # reachable with Tab, and Enter opens the account.
    page.goto(demo.url + "/")
    wait_ready(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    focused = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.getAttribute('href') || ''"))
        if focused[-1].startswith("/accounts/"):
            break
    assert "search" in focused and "sort" in focused, focused
    assert focused[-1].startswith("/accounts/"), focused
    page.keyboard.press("Enter")
    page.wait_for_url("**/accounts/**")
