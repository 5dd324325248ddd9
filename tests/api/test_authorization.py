"""One dependency checks role, scope, area and purpose on every route; refusals are audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import add_user, bearer, token_for
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent, User
from ytehub.core.security import AreaScope, parse_scopes
from ytehub.core.security.tokens import Principal, issue_access_token
from ytehub.core.settings import Settings

NEW_USER = {
    "username": "yt.xa1",
    "full_name": "Nguyễn Thị Bình",
    "password": "another-pass-7",
    "role": "vaccinator",
    "area": {"kind": "communes", "codes": ["26740"]},
}


def test_no_token(client: TestClient) -> None:
    response = client.get("/api/v1/users")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "auth.required"


def test_expired_and_forged_tokens(client: TestClient, settings: Settings) -> None:
    principal = Principal("qt", "admin", tuple(parse_scopes("admin/users.*")), AreaScope.province())
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = issue_access_token(settings.signing_key, principal, 15, past)
    response = client.get("/api/v1/users", headers=bearer(expired))
    assert response.status_code == 401 and response.json()["code"] == "token.expired"
    forged = issue_access_token("x" * 64, principal, 15, datetime.now(UTC))
    response = client.get("/api/v1/users", headers=bearer(forged))
    assert response.status_code == 401 and response.json()["code"] == "token.bad_signature"
    garbage = client.get("/api/v1/users", headers=bearer("abc.def.ghi"))
    assert garbage.status_code == 401 and garbage.json()["code"] == "token.malformed"


def test_missing_scope_is_403_and_audited(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    response = client.get("/api/v1/users", headers=bearer(token_for(client, "bs.an")))
    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "auth.scope_missing" and problem["value"] == "admin/users.read"
    with db.session() as session:
        denied = session.scalars(
            select(AuditEvent).where(AuditEvent.outcome.like("denied:%"))
        ).one()
    assert denied.actor == "bs.an" and denied.outcome == "denied:auth.scope_missing"
    assert denied.detail and denied.detail["path"] == "/api/v1/users"


def test_purpose_of_use(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    token = token_for(client, "qt")
    ok = client.get("/api/v1/users", headers={**bearer(token), "X-Purpose-Of-Use": "hsysadmin"})
    assert ok.status_code == 200
    refused = client.get("/api/v1/users", headers={**bearer(token), "X-Purpose-Of-Use": "TREAT"})
    assert refused.status_code == 403 and refused.json()["code"] == "purpose.not_allowed"
    with db.session() as session:
        purposes = session.scalars(
            select(AuditEvent.purpose).where(AuditEvent.action == "users.list")
        ).all()
    assert purposes == ["HSYSADMIN"]


def test_commune_admin_manages_only_their_communes(client: TestClient, db: Database) -> None:
    add_user(db, "qt.xa", "admin", AreaScope.communes(["26740", "26743"]))
    add_user(db, "bs.khac", "clinician", AreaScope.communes(["00640"]))
    token = token_for(client, "qt.xa")
    created = client.post("/api/v1/users", json=NEW_USER, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.json()["area"] == {"kind": "communes", "codes": ["26740"]}
    outside = {**NEW_USER, "username": "yt.ngoai", "area": {"kind": "communes", "codes": ["00640"]}}
    refused = client.post("/api/v1/users", json=outside, headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["code"] == "auth.out_of_area"
    province_wide = {**NEW_USER, "username": "yt.tinh", "area": {"kind": "province"}}
    assert (
        client.post("/api/v1/users", json=province_wide, headers=bearer(token)).status_code == 403
    )
    listed = {u["username"] for u in client.get("/api/v1/users", headers=bearer(token)).json()}
    assert listed == {"qt.xa", "yt.xa1"}, "accounts of other communes stay hidden"
    assert client.get("/api/v1/users/bs.khac", headers=bearer(token)).status_code == 403
    assert client.post("/api/v1/users/bs.khac/disable", headers=bearer(token)).status_code == 403


def test_user_lifecycle_is_audited_in_the_same_transaction(
    client: TestClient, db: Database
) -> None:
    add_user(db, "qt", "admin")
    token = token_for(client, "qt")
    assert client.post("/api/v1/users", json=NEW_USER, headers=bearer(token)).status_code == 201
    assert client.post("/api/v1/users/yt.xa1/disable", headers=bearer(token)).json()["disabled"]
    assert not client.post("/api/v1/users/yt.xa1/enable", headers=bearer(token)).json()["disabled"]
    reset = client.post(
        "/api/v1/users/yt.xa1/password",
        json={"password": "brand-new-pass-9"},
        headers=bearer(token),
    )
    assert reset.status_code == 204
    assert token_for(client, "yt.xa1", "brand-new-pass-9")
    with db.session() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "qt").order_by(AuditEvent.seq)
        ).all()
    assert [a for a in actions if a.startswith("users.")] == [
        "users.create",
        "users.disable",
        "users.enable",
        "users.reset_password",
    ]


def test_failed_write_leaves_nothing_behind(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    token = token_for(client, "qt")
    weak = {**NEW_USER, "password": "short"}
    response = client.post("/api/v1/users", json=weak, headers=bearer(token))
    assert response.status_code == 400 and response.json()["code"] == "password.too_short"
    add_user(db, "yt.xa1", "vaccinator")
    duplicate = client.post("/api/v1/users", json=NEW_USER, headers=bearer(token))
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "user.exists"
    with db.session() as session:
        assert sorted(session.scalars(select(User.username)).all()) == ["qt", "yt.xa1"]
        assert not session.scalars(
            select(AuditEvent).where(AuditEvent.action == "users.create")
        ).all()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW_USER, "username": "Has Spaces"}, "username"),
        ({**NEW_USER, "area": {"kind": "district"}}, "area.kind"),
        ({k: v for k, v in NEW_USER.items() if k != "role"}, "role"),
    ],
)
def test_invalid_bodies_name_the_field(
    client: TestClient, db: Database, body: dict[str, object], field: str
) -> None:
    add_user(db, "qt", "admin")
    response = client.post("/api/v1/users", json=body, headers=bearer(token_for(client, "qt")))
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_role_area_rules(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    token = token_for(client, "qt")
    machine = {
        **NEW_USER,
        "role": "facility_system",
        "area": {"kind": "facility", "codes": ["79001"]},
    }
    assert client.post("/api/v1/users", json=machine, headers=bearer(token)).json()["code"] == (
        "user.machine_role"
    )
    citizen = {**NEW_USER, "role": "citizen", "area": {"kind": "province"}}
    assert client.post("/api/v1/users", json=citizen, headers=bearer(token)).json()["code"] == (
        "user.person_required"
    )
    admin_at_facility = {
        **NEW_USER,
        "role": "admin",
        "area": {"kind": "facility", "codes": ["79001"]},
    }
    assert (
        client.post("/api/v1/users", json=admin_at_facility, headers=bearer(token)).json()["code"]
        == "area.not_for_role"
    )
