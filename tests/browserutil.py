"""The Web Manager in real Chromium for the browser tests: Debian's chromium driven by
Playwright (no browser download) against a running switch, with screenshots kept in
$VOSMEDIA_ARTIFACTS (default test-artifacts/browser/)."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from control import config as configuration
from tests.siputil import RunningSwitch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("VOSMEDIA_ARTIFACTS", "test-artifacts")) / "browser"

needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Debian chromium is not installed (scripts/setup.sh installs it)")


@contextlib.contextmanager
def open_manager(folder: Path):
    """(page, base URL, RunningSwitch): a switch with the Web API and media, no customers
    or vendors yet, its admin password "pw-admin", and a browser page."""
    from playwright.sync_api import sync_playwright
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"]},
        "params": {"SS_MEDIAPROXYMODE": 1, "SS_GATEWAY_KEEPALIVE_INTERVAL": 0},
    })
    switch = RunningSwitch(config, folder, web_listen=("127.0.0.1", 0), admin_password="pw-admin")
    host, port = switch.switch.web_address
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15000)
        try:
            yield page, f"http://{host}:{port}", switch
        finally:
            browser.close()
            switch.stop()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def go(page, name: str) -> None:
    page.click(f'a[data-nav="{name}"]')
    page.wait_for_selector(f'section[data-page="{name}"]:not([hidden])')


def act(page, button: str, kind: str = "ok") -> str:
    """Click, wait for the new #message, check its kind and return its text."""
    page.evaluate("() => { const m = document.querySelector('#message'); m.textContent = ''; m.hidden = true; }")
    page.click(button)
    page.wait_for_function("() => { const m = document.querySelector('#message');"
                           " return m && m.textContent.trim() && m.dataset.kind !== 'info'; }")
    message = page.inner_text("#message")
    assert page.get_attribute("#message", "data-kind") == kind, message
    return message


def log_in(page, base: str) -> None:
    page.goto(f"{base}/manage/")
    page.fill("#login-name", "admin")
    page.fill("#login-password", "pw-admin")
    page.click("#login-submit")
    page.wait_for_selector('[data-tile="concurrent_calls"]')


def fill(page, form: str, values: dict) -> None:
    """Set the named fields of a form: selects by option value, other inputs by text."""
    for name, value in values.items():
        field = f'{form} [name="{name}"]'
        if page.eval_on_selector(field, "e => e.tagName") == "SELECT":
            page.select_option(field, value)
        else:
            page.fill(field, value)
