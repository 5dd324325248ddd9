"""Console pages of the client registry: verified share per commune, review queue, decision."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import add_user, sign_in
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent
from ytehub.registry import service
from ytehub.registry.models import RegistryPerson, RegistryReview
from ytehub.registry.normalize import record
from ytehub.registry.verification import verify_persons

AN = {
    "name": "Nguyễn Văn An",
    "birth": "19850315",
    "sex": "1",
    "document": "079085001234",
    "commune": "26734",
}


def _seed(db: Database) -> int:
    with db.session() as session:
        service.register(session, record("79001", "BN1", **AN))
        clash = service.register(session, record("79003", "X9", **{**AN, "sex": "2"}))
    assert clash.review_id is not None
    verify_persons(db)  # nothing loaded from the register: every person is "not found"
    return clash.review_id


def test_overview_shows_the_share_per_commune(client: TestClient, db: Database) -> None:
    _seed(db)
    add_user(db, "steward", "registrar")
    sign_in(client, "steward")
    page = client.get("/registry")
    assert page.status_code == 200
    assert 'data-testid="commune-shares"' in page.text
    assert "0.0%" in page.text  # nobody verified
    assert 'data-testid="persons-total">2<' in page.text


def test_review_side_by_side_and_link(client: TestClient, db: Database) -> None:
    review_id = _seed(db)
    add_user(db, "steward", "registrar")
    sign_in(client, "steward")
    queue = client.get("/registry/reviews")
    assert f"/registry/reviews/{review_id}" in queue.text
    detail = client.get(f"/registry/reviews/{review_id}")
    assert 'data-testid="side-by-side"' in detail.text
    assert "Nguyễn Văn An" in detail.text
    assert 'class="differs"' in detail.text  # the sexes differ
    decided = client.post(
        f"/registry/reviews/{review_id}",
        data={"decision": "link", "csrf": client.cookies["ytehub_csrf"]},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    with db.session() as session:
        assert session.get(RegistryReview, review_id).status == "linked"  # type: ignore[union-attr]
        merged = session.scalars(
            select(RegistryPerson).where(RegistryPerson.status == "merged")
        ).all()
        assert len(merged) == 1
        assert session.scalar(
            select(AuditEvent).where(AuditEvent.action == "console.registry_review")
        )


def test_a_forged_decision_is_ignored_and_readers_cannot_decide(
    client: TestClient, db: Database
) -> None:
    review_id = _seed(db)
    add_user(db, "steward", "registrar")
    sign_in(client, "steward")
    forged = client.post(
        f"/registry/reviews/{review_id}",
        data={"decision": "link", "csrf": "not-the-cookie"},
        follow_redirects=False,
    )
    assert forged.status_code == 303
    add_user(db, "boss", "admin")  # may read the registry, not decide
    client.cookies.clear()
    sign_in(client, "boss")
    refused = client.post(
        f"/registry/reviews/{review_id}",
        data={"decision": "link", "csrf": client.cookies["ytehub_csrf"]},
    )
    assert "registry/persons.write" in refused.text
    with db.session() as session:
        assert session.get(RegistryReview, review_id).status == "open"  # type: ignore[union-attr]
