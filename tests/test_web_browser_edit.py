"""The Web Manager's edit pages in real Chromium (Debian's, driven by Playwright; no browser
download), against a running switch: edit a customer's account and mapping gateway, add
and lock a phone, change a system parameter, try a Web access list that would shut out
loopback, and change a vendor's routing gateway. Each change is checked through the API
or in the switch itself. Screenshots named edit-* are kept in $VOSMEDIA_ARTIFACTS
(default test-artifacts/) next to those of tests/test_web_browser.py."""
from __future__ import annotations

import pytest

from tests.browserutil import act, fill, go, log_in, needs_chromium, open_manager
from tests.browserutil import shot as _shot

pytestmark = needs_chromium


@pytest.fixture
def manager(tmp_path):
    with open_manager(tmp_path) as opened:
        yield opened


def shot(page, name: str) -> None:
    _shot(page, f"edit-{name}")


class Api:
    """The Web API with the admin's token, to check what the browser changed."""

    def __init__(self, page, base: str):
        self.request = page.request
        self.base = base
        answer = self.request.post(f"{base}/api/login", data={"name": "admin", "password": "pw-admin"})
        assert answer.ok, answer.text()
        self.headers = {"Authorization": f"Bearer {answer.json()['token']}"}

    def get(self, path: str):
        answer = self.request.get(f"{self.base}/api{path}", headers=self.headers)
        assert answer.ok, answer.text()
        return answer.json()


def fits_phone(page, name: str) -> None:
    go(page, name)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the {name} page is {width}px wide on a 360px screen"


def test_operator_edits_gateways_phones_and_settings(manager):
    page, base, switch = manager
    api = Api(page, base)
    log_in(page, base)

    # a customer, added with the existing form, then edited: account and mapping gateway
    go(page, "customers")
    form = "#customer-form"
    fill(page, form, {
        "id": "C1",
        "name": "acme",
        "gateway_name": "acme-gw",
        "addresses": "127.0.0.1",
    })
    act(page, "#customer-submit")
    page.click('#customers-table tr[data-account="C1"] button[data-action="edit"]')
    edit = "#customer-edit-form"
    page.wait_for_selector(f"{edit}:not([hidden])")
    assert page.input_value(f'{edit} [name="gateway_name"]') == "acme-gw"
    assert page.input_value(f'{edit} [name="addresses"]') == "127.0.0.1"
    page.fill(f'{edit} [name="name"]', "acme ltd")
    page.fill(f'{edit} [name="credit_limit"]', "25.50")
    page.fill(f'{edit} [name="concurrent_limit"]', "8")
    page.fill(f'{edit} [name="addresses"]', "127.0.0.1, 192.0.2.7")
    page.fill(f'{edit} [name="rate_limit"]', "3")
    shot(page, "01-customer-edit")
    message = act(page, "#customer-edit-submit")
    assert "credit limit 25.50" in message, message
    account = api.get("/accounts/C1")
    assert (account["name"], account["credit_limit"], account["concurrent_limit"]) == ("acme ltd", "25.50", 8)
    gateway = api.get("/mapping-gateways/acme-gw")
    assert gateway["addresses"] == ["127.0.0.1", "192.0.2.7"] and gateway["rate_limit"] == 3
    page.wait_for_function("() => document.querySelector('#customers-table tbody').textContent.includes('acme ltd')")

    # a phone: added, listed, locked
    go(page, "phones")
    form = "#phone-form"
    fill(page, form, {
        "number": "1001",
        "password": "secret-1001",
        "account_id": "C1",
        "line_limit": "2",
    })
    act(page, "#phone-submit")
    row = '#phones-table tr[data-number="1001"]'
    page.wait_for_selector(row)
    assert "C1" in page.inner_text(row)
    page.click(f'{row} button[data-action="lock"]')
    page.wait_for_selector(f'{row}[data-locked="true"]')
    assert api.get("/phones/1001")["locked"] is True
    page.wait_for_function("() => document.querySelector('#online-phones-count').textContent.includes('registered')")
    shot(page, "02-phones")

    # a system parameter that applies at once
    go(page, "settings")
    row = 'tr[data-param="SS_SIP_TIMEOUT_INVITE"]'
    page.wait_for_selector(row)
    page.fill(f"{row} input", "999")                               # out of range: refused, named
    message = act(page, f'{row} button[data-action="save"]', kind="error")
    assert message.startswith("value: "), message
    assert switch.call(switch.switch.params.get, "SS_SIP_TIMEOUT_INVITE") == 10
    page.fill(f"{row} input", "7")
    message = act(page, f'{row} button[data-action="save"]')
    assert "at once" in message, message
    assert switch.call(switch.switch.params.get, "SS_SIP_TIMEOUT_INVITE") == 7
    assert page.input_value(f"{row} input") == "7"

    # a Web access list without loopback needs confirmation; declined, nothing changes
    seen = []

    def decline(dialog):
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", decline)
    page.fill('#web-access-form [name="allow"]', "10.0.0.0/8")
    page.evaluate("() => { const m = document.querySelector('#message'); m.textContent = ''; m.hidden = true; }")
    page.click("#web-access-submit")
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('not changed')")
    page.remove_listener("dialog", decline)
    assert seen and "confirm" in seen[0], seen
    assert api.get("/web-access")["allow"] == []
    page.fill('#web-access-form [name="allow"]', "127.0.0.1")
    assert "127.0.0.1" in act(page, "#web-access-submit")
    assert api.get("/web-access")["allow"] == ["127.0.0.1/32"]
    page.fill('#web-access-form [name="allow"]', "")
    assert "every address" in act(page, "#web-access-submit")
    shot(page, "03-settings")

    # a vendor, added with the existing form, then its routing gateway's line limit
    go(page, "vendors")
    form = "#vendor-form"
    fill(page, form, {
        "id": "V1",
        "name": "carrier",
        "gateway_name": "carrier-gw",
        "address": "127.0.0.1",
        "prefixes": "49",
    })
    act(page, "#vendor-submit")
    page.click('#vendors-table tr[data-account="V1"] button[data-action="edit"]')
    edit = "#vendor-edit-form"
    page.wait_for_selector(f"{edit}:not([hidden])")
    assert page.input_value(f'{edit} [name="prefixes"]') == "49"
    page.fill(f'{edit} [name="line_limit"]', "5")
    page.check(f'{edit} [name="switch_until_connect"]')
    shot(page, "04-vendor-edit")
    act(page, "#vendor-edit-submit")
    gateway = api.get("/routing-gateways/carrier-gw")
    assert (gateway["line_limit"], gateway["switch_until_connect"], gateway["prefixes"]) == (5, True, ["49"])
    live = switch.call(lambda: {g.name: g.line_limit for g in switch.switch.services.gateways.table.gateways.values()})
    assert live["carrier-gw"] == 5
    page.wait_for_selector(f"{edit}[hidden]", state="attached")

    page.set_viewport_size({"width": 360, "height": 740})          # a phone
    for name in ("phones", "settings", "customers", "vendors"):
        fits_phone(page, name)
    page.click('#vendors-table tr[data-account="V1"] button[data-action="edit"]')
    page.wait_for_selector(f"{edit}:not([hidden])")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the vendor edit form is {width}px wide on a 360px screen"
    shot(page, "05-vendor-edit-phone")
