"""The registry's review screen in a real browser: a registrar sees the conflicting records side
by side, links them, and the queue empties. A screenshot is kept under ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, add_user
from tests.server import running_server
from tests.web.test_browser import (
    ARTIFACTS,
    STEP_MS,
    _chromium_page,
    _require_chromium,
    _wait_for_path,
)
from ytehub.core.db import Database
from ytehub.core.settings import Settings
from ytehub.registry import service
from ytehub.registry.normalize import record

pytestmark = pytest.mark.browser
AN = {"name": "Nguyễn Văn An", "birth": "19850315", "sex": "1", "document": "079085001234"}


@pytest.fixture
def seeded_server(settings: Settings, db: Database, tmp_path: Path) -> Iterator[tuple[str, int]]:
    add_user(db, "steward", "registrar")
    with db.session() as session:
        service.register(session, record("79001", "BN1", **AN))
        clash = service.register(session, record("79003", "X9", **{**AN, "sex": "2"}))
    assert clash.review_id is not None
    db.dispose()  # the server process opens its own connections
    with running_server(settings, tmp_path) as base_url:
        yield base_url, clash.review_id


def test_a_registrar_reviews_and_links(seeded_server: tuple[str, int], backend: str) -> None:
    _require_chromium()
    expect.set_options(timeout=STEP_MS)
    base_url, review_id = seeded_server
    with _chromium_page(base_url) as page:
        page.goto("/login?next=/registry/reviews")
        page.fill("#username", "steward")
        page.fill("#password", PASSWORD)
        page.locator("form.form button[type=submit]").click()
        _wait_for_path(page, "/registry/reviews")
        page.locator(f"a[href='/registry/reviews/{review_id}']").click()
        _wait_for_path(page, f"/registry/reviews/{review_id}")
        table = page.get_by_test_id("side-by-side")
        expect(table).to_contain_text("Nguyễn Văn An")
        expect(table.locator("tr.differs")).to_have_count(1)  # only the sex differs
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"registry-review-{backend}.png"
        shot.unlink(missing_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
        page.get_by_test_id("decide-link").click()
        _wait_for_path(page, "/registry/reviews")
        expect(page.get_by_test_id("review-queue")).to_have_count(0)
