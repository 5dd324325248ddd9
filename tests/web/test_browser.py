"""The console in a real browser: Debian's Chromium, driven by Playwright, against the server.

The server runs as a separate process (`python -m ytehub.cli serve`) on a free loopback port,
configured only through ``YTEHUB_*`` environment variables; the browser is the system
Chromium (``apt-get install chromium``), never a downloaded one. A screenshot of the
dashboard is kept under ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import PASSWORD, add_user
from ytehub.core.db import Database
from ytehub.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
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
STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTEHUB_")}
    assert settings.secret_key is not None
    env.update(
        YTEHUB_DATA_DIR=str(settings.data_dir),
        YTEHUB_DATABASE_URL=settings.resolved_database_url,
        YTEHUB_SECRET_KEY=settings.secret_key.get_secret_value(),
        YTEHUB_CONFIG=str(tmp_path / "no-such-ytehub.toml"),  # never read a stray ytehub.toml
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited with code {process.returncode} before answering /health:\n"
                + log.read_text(errors="replace")
            )
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}: {error.read()[:500]!r}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.2)
    pytest.fail(
        f"the server did not answer GET /health with 200 within {STARTUP_SECONDS:.0f} s "
        f"(last: {last}); its output:\n" + log.read_text(errors="replace")
    )


@pytest.fixture
def admin(db: Database) -> str:
    username = add_user(db, "admin", "admin")
    db.dispose()  # the server process opens its own connections
    return username


@pytest.fixture
def live_server(settings: Settings, admin: str, tmp_path: Path) -> Iterator[str]:
    """The real server in its own process; yields its base URL and always stops it."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ytehub.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=_server_env(settings, tmp_path),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, base_url, log)
        yield base_url
    finally:
        _stop(process)


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
