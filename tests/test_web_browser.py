"""The Web Manager in real Chromium (Debian's, driven by Playwright; no browser download):
log in, import a rate table, add a customer and a vendor, pay, place a sipp call, and see
it in current calls, then in the CDR list and the revenue figures. Screenshots are kept
in $VOSMEDIA_ARTIFACTS (default test-artifacts/) as test artifacts."""
from __future__ import annotations

import re

import pytest

from tests.browserutil import act, fill, go, log_in, needs_chromium, open_manager, shot
from tests.siputil import Peer, free_udp_port, sipp_args
from tests.test_sip_calls import wait_bound

pytestmark = needs_chromium


@pytest.fixture
def manager(tmp_path):
    with open_manager(tmp_path) as (page, base, switch):
        yield page, f"{base}/manage/", switch


def test_operator_sets_up_a_customer_and_a_vendor_and_sees_the_call(manager, tmp_path):
    page, url, switch = manager
    log_in(page, url.removesuffix("/manage/"))
    shot(page, "01-dashboard")

    go(page, "rates")
    page.fill('#rate-table-form [name="name"]', "retail")
    act(page, "#rate-table-submit")
    deck = tmp_path / "retail.csv"
    deck.write_text("prefix,price,first_unit,next_unit,connection_fee\n49,1.20,1,1,0\n")
    page.select_option('#rate-import-form [name="name"]', "retail")
    page.set_input_files("#rate-import-file", str(deck))
    act(page, "#rate-import-submit")
    page.wait_for_selector('#rate-tables-table tr[data-name="retail"]')

    go(page, "customers")
    form = "#customer-form"
    fill(page, form, {
        "id": "C1",
        "name": "acme",
        "rate_table": "retail",
        "gateway_name": "acme-gw",
        "addresses": "127.0.0.1",
    })
    act(page, "#customer-submit")
    page.wait_for_selector('#customers-table tr[data-account="C1"]')

    vendor_port = free_udp_port()
    go(page, "vendors")
    form = "#vendor-form"
    fill(page, form, {
        "id": "V1",
        "name": "carrier",
        "gateway_name": "carrier-gw",
        "address": "127.0.0.1",
        "port": str(vendor_port),
        "prefixes": "49",
    })
    act(page, "#vendor-submit")
    page.wait_for_selector('#vendors-table tr[data-account="V1"]')
    shot(page, "02-vendors")

    go(page, "payments")
    page.select_option("#payment-account", "C1")
    page.fill('#payment-form [name="amount"]', "10.00")
    page.fill('#payment-form [name="memo"]', "first top-up")
    act(page, "#payment-submit")
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
