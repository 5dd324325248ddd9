"""The console in a real browser: Debian's Chromium, driven by Playwright, against the server.

The server runs as a separate process (`python -m ytehub.cli serve`) on a free loopback port,
configured only through ``YTEHUB_*`` environment variables; the browser is the system
Chromium (``apt-get install chromium``), never a downloaded one. A screenshot of the
dashboard is kept under ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import PASSWORD, add_user
from tests.server import REPO_ROOT, running_server
from ytehub.core.db import Database
from ytehub.core.settings import Settings

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_MS = 15_000  # each browser step (navigation, assertion) gets at most this long

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(db: Database) -> str:
    username = add_user(db, "admin", "admin")
    db.dispose()  # the server process opens its own connections
    return username


@pytest.fixture
def live_server(settings: Settings, admin: str, tmp_path: Path) -> Iterator[str]:
    """The real server in its own process; yields its base URL and always stops it."""
    with running_server(settings, tmp_path) as base_url:
        yield base_url


def _require_chromium() -> None:
    """Called in the test body, so a missing browser is a test failure, never a skip."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is missing ({CHROMIUM} not found): install it with "
            "`apt-get install chromium` (Debian package) to run the browser tests.",
            pytrace=False,
        )


@contextmanager
def _chromium_page(base_url: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=STEP_MS * 2
        )
        try:
            # A Vietnamese browser (Accept-Language: vi-VN); the console honours the header,
            # and Chromium's own default (en-US) would select English.
            context = browser.new_context(
                base_url=base_url, locale="vi-VN", viewport={"width": 1280, "height": 900}
            )
            context.set_default_timeout(STEP_MS)
            context.set_default_navigation_timeout(STEP_MS)
            try:
                yield context.new_page()
            finally:
                context.close()
        finally:
            browser.close()


def _path(page: Page) -> str:
    return urlsplit(page.url).path


def _wait_for_path(page: Page, path: str) -> None:
    page.wait_for_url(lambda url: urlsplit(url).path == path)


def _assert_skip_link_first(page: Page) -> None:
    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_text("Bỏ qua đến nội dung")
    expect(focused).to_have_attribute("href", "#main")


def test_console_sign_in_language_and_sign_out(live_server: str, backend: str) -> None:
    _require_chromium()
    expect.set_options(timeout=STEP_MS)
    with _chromium_page(live_server) as page:
        _sign_in_switch_language_sign_out(page, backend)


def _sign_in_switch_language_sign_out(page: Page, backend: str) -> None:
    html = page.locator("html")

    # Not signed in: the dashboard sends the browser to the sign-in page, in Vietnamese.
    page.goto("/")
    _wait_for_path(page, "/login")
    assert urlsplit(page.url).query == "next=/"
    expect(html).to_have_attribute("lang", "vi")
    sign_in = page.locator("form.form button[type=submit]")
    expect(sign_in).to_have_text("Đăng nhập")

    # A wrong password: an error, and still the sign-in page (answered with 401).
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password")
    with page.expect_response(lambda r: r.request.method == "POST" and "/login" in r.url) as wrong:
        sign_in.click()
    assert wrong.value.status == 401
    expect(page.get_by_test_id("login-error")).to_have_text("Sai tên đăng nhập hoặc mật khẩu.")
    expect(page.get_by_test_id("login-error")).to_be_visible()
    assert _path(page) == "/login"
    expect(page.get_by_test_id("dashboard-title")).to_have_count(0)

    # The right password: the dashboard, with the signed-in user's name.
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    sign_in.click()
    _wait_for_path(page, "/")
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Tổng quan")
    expect(page.get_by_test_id("user-name")).to_have_text("admin")
    expect(page.get_by_test_id("user-name")).to_be_visible()

    # Keyboard: the first Tab on a freshly loaded page reaches the skip link.
    page.reload()
    expect(page.get_by_test_id("dashboard-title")).to_be_visible()
    _assert_skip_link_first(page)

    # Switch to English: same page, English heading and <html lang>.
    page.locator("a.lang", has_text="EN").click()
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Dashboard")
    expect(html).to_have_attribute("lang", "en")
    assert _path(page) == "/"
    expect(page.locator(".lang.current")).to_have_text("EN")

    # The artifact: a full-page screenshot of the English dashboard.
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"console-dashboard-{backend}.png"
    shot.unlink(missing_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.is_file()
    assert shot.stat().st_size > 0

    # Sign out: back on the sign-in page, the session cookies are gone.
    page.get_by_test_id("logout").click()
    _wait_for_path(page, "/login")
    expect(page.locator("#username")).to_be_visible()
    names = {cookie["name"] for cookie in page.context.cookies()}
    assert not names & {"ytehub_access", "ytehub_refresh"}, names

    # And the dashboard is closed again.
    page.goto("/")
    _wait_for_path(page, "/login")
    assert urlsplit(page.url).query == "next=/"
    expect(page.locator("#username")).to_be_visible()
