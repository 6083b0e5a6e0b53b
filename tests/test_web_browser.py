"""The Web Manager in real Chromium (Debian's, driven by Playwright; no browser download):
log in, import a rate table, add a customer and a vendor, pay, place a sipp call, and see
it in current calls, then in the CDR list and the revenue figures. Screenshots are kept
in $VOSMEDIA_ARTIFACTS (default test-artifacts/) as test artifacts."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from control import config as configuration
from tests.siputil import Peer, RunningSwitch, free_udp_port, sipp_args
from tests.test_sip_calls import wait_bound

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("VOSMEDIA_ARTIFACTS", "test-artifacts")) / "browser"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (scripts/setup.sh installs it)")


@pytest.fixture
def manager(tmp_path):
    from playwright.sync_api import sync_playwright
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"]},
        "params": {"SS_MEDIAPROXYMODE": 1, "SS_GATEWAY_KEEPALIVE_INTERVAL": 0},
    })
    switch = RunningSwitch(config, tmp_path, web_listen=("127.0.0.1", 0), admin_password="pw-admin")
    host, port = switch.switch.web_address
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15000)
        try:
            yield page, f"http://{host}:{port}/manage/", switch
        finally:
            browser.close()
            switch.stop()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def go(page, name: str) -> None:
    page.click(f'a[data-nav="{name}"]')
    page.wait_for_selector(f'section[data-page="{name}"]:not([hidden])')


def submit(page, form: str, button: str) -> None:
    page.click(button)
    page.wait_for_function("() => { const m = document.querySelector('#message');"
                           " return m && m.textContent.trim() && m.dataset.kind !== 'info'; }")
    kind = page.get_attribute("#message", "data-kind")
    assert kind == "ok", page.inner_text("#message")


def test_operator_sets_up_a_customer_and_a_vendor_and_sees_the_call(manager, tmp_path):
    page, url, switch = manager
    page.goto(url)
    page.fill("#login-name", "admin")
    page.fill("#login-password", "pw-admin")
    page.click("#login-submit")
    page.wait_for_selector('[data-tile="concurrent_calls"]')
    shot(page, "01-dashboard")

    go(page, "rates")
    page.fill('#rate-table-form [name="name"]', "retail")
    submit(page, "#rate-table-form", "#rate-table-submit")
    deck = tmp_path / "retail.csv"
    deck.write_text("prefix,price,first_unit,next_unit,connection_fee\n49,1.20,1,1,0\n")
    page.select_option('#rate-import-form [name="name"]', "retail")
    page.set_input_files("#rate-import-file", str(deck))
    submit(page, "#rate-import-form", "#rate-import-submit")
    page.wait_for_selector('#rate-tables-table tr[data-name="retail"]')

    go(page, "customers")
    form = "#customer-form"
    page.fill(f'{form} [name="id"]', "C1")
    page.fill(f'{form} [name="name"]', "acme")
    page.select_option(f'{form} [name="rate_table"]', "retail")
    page.fill(f'{form} [name="gateway_name"]', "acme-gw")
    page.fill(f'{form} [name="addresses"]', "127.0.0.1")
    submit(page, form, "#customer-submit")
    page.wait_for_selector('#customers-table tr[data-account="C1"]')

    vendor_port = free_udp_port()
    go(page, "vendors")
    form = "#vendor-form"
    page.fill(f'{form} [name="id"]', "V1")
    page.fill(f'{form} [name="name"]', "carrier")
    page.fill(f'{form} [name="gateway_name"]', "carrier-gw")
    page.fill(f'{form} [name="address"]', "127.0.0.1")
    page.fill(f'{form} [name="port"]', str(vendor_port))
    page.fill(f'{form} [name="prefixes"]', "49")
    submit(page, form, "#vendor-submit")
    page.wait_for_selector('#vendors-table tr[data-account="V1"]')
    shot(page, "02-vendors")

    go(page, "payments")
    page.select_option("#payment-account", "C1")
    page.fill('#payment-form [name="amount"]', "10.00")
    page.fill('#payment-form [name="memo"]', "first top-up")
    submit(page, "#payment-form", "#payment-submit")
    page.wait_for_function("() => document.querySelector('#payment-balance').textContent.includes('10')")

    vendor = Peer(sipp_args(["-sn", "uas"], vendor_port, tmp_path, "vendor"), tmp_path, "vendor")
    wait_bound(vendor_port)
    caller = Peer(sipp_args(["-sn", "uac", "-s", "4930123", "-d", "6000", f"127.0.0.1:{switch.port}"],
                            free_udp_port(), tmp_path, "caller"), tmp_path, "caller")
    try:
        go(page, "calls")
        page.wait_for_selector('#calls-table tr[data-state="answered"]')
        assert "4930123" in page.inner_text("#calls-table")
        shot(page, "03-current-calls")
        assert caller.wait(30) == 0, caller.report()
    finally:
        caller.stop()
        vendor.stop()
    switch.wait_records(1)

    go(page, "cdrs")
    page.click("#cdrs-search")
    page.wait_for_function("() => document.querySelector('#cdrs-table tbody').textContent.includes('4930123')")
    assert "Normal" in page.inner_text("#cdrs-table")
    shot(page, "04-cdrs")

    go(page, "revenue")
    page.wait_for_function("() => document.querySelector('#revenue-table tbody').textContent.includes('acme')")
    income = page.inner_text('[data-total="income"] .tile-value')
    assert re.fullmatch(r"0\.(0[1-9]|[1-9]\d)\d*", income.strip()), income     # a few seconds at 1.20/min
    shot(page, "05-revenue")

    page.set_viewport_size({"width": 360, "height": 740})          # a phone
    go(page, "dashboard")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px screen"
    shot(page, "06-dashboard-phone")
