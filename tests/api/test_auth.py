"""Sign-in over real HTTP through the ASGI app: grants, refresh rotation, throttling, errors."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, add_user, bearer, token_for
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent
from ytehub.core.security import service
from ytehub.core.settings import Settings


def _password_grant(client: TestClient, username: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **extra},
    )


def test_password_grant_issues_scoped_tokens(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    response = _password_grant(client, "bs.an")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    assert set(body["scope"].split()) == {"user/*.read", "user/*.write"}
    assert body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    me = client.get("/api/v1/me", headers=bearer(body["access_token"])).json()
    assert me["role"] == "clinician" and me["area"] == {"kind": "province", "codes": []}


def test_requested_scopes_are_narrowed_to_the_role(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    body = _password_grant(client, "bs.an", scope="user/Patient.read admin/users.read").json()
    assert body["scope"] == "user/Patient.read"
    refused = _password_grant(client, "bs.an", scope="admin/users.read")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"


def test_wrong_password_is_refused_and_audited(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    response = _password_grant(client, "bs.an", "not-the-password-1")
    assert response.status_code == 400
    problem = response.json()
    assert problem["error"] == "invalid_grant" and problem["code"] == "auth.invalid_grant"
    assert problem["message"]["vi"] and problem["message"]["en"]
    with db.session() as session:
        outcomes = session.scalars(
            select(AuditEvent.outcome).where(AuditEvent.action == "auth.sign_in")
        ).all()
    assert outcomes == ["failure:bad_credentials"]


def test_unknown_user_gets_the_same_answer(client: TestClient) -> None:
    response = _password_grant(client, "nobody", "whatever-123")
    assert response.status_code == 400 and response.json()["code"] == "auth.invalid_grant"


def test_repeated_failures_are_throttled(
    client: TestClient, db: Database, settings: Settings
) -> None:
    add_user(db, "bs.an", "clinician")
    for _ in range(settings.login_max_failures):
        assert _password_grant(client, "bs.an", "wrong-password-1").status_code == 400
    locked = _password_grant(client, "bs.an")  # even the right password waits
    assert locked.status_code == 429
    assert locked.json()["code"] == "auth.throttled"
    assert int(locked.headers["retry-after"]) >= 1


def test_disabled_user_cannot_sign_in(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    with db.session() as session:
        service.set_disabled(session, "bs.an", True)
    assert _password_grant(client, "bs.an").status_code == 400


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    first = _password_grant(client, "bs.an").json()["refresh_token"]
    rotated = client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first}
    )
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    replay = client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first}
    )
    assert replay.status_code == 400 and replay.json()["field"] == "refresh_token"
    # the theft response revoked the whole family, including the newest token
    after = client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": second}
    )
    assert after.status_code == 400


def test_revoked_refresh_token_is_dead(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    refresh = _password_grant(client, "bs.an").json()["refresh_token"]
    assert client.post("/auth/revoke", data={"token": refresh}).status_code == 200
    again = client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert again.status_code == 400


def test_client_credentials_for_a_facility_system(client: TestClient, db: Database) -> None:
    with db.session() as session:
        _client, secret = service.create_client(
            session, client_id="bv-79001", name="Bệnh viện A", facility_code="79001"
        )
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": "bv-79001", "client_secret": secret},
    )
    assert response.status_code == 200
    body = response.json()
    assert "refresh_token" not in body
    me = client.get("/api/v1/me", headers=bearer(body["access_token"])).json()
    assert me["role"] == "facility_system"
    assert me["area"] == {"kind": "facility", "codes": ["79001"]}
    basic = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, auth=("bv-79001", "wrong")
    )
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"


def test_unsupported_grant_and_missing_fields(client: TestClient) -> None:
    assert client.post("/auth/token", data={"grant_type": "implicit"}).json()["error"] == (
        "unsupported_grant_type"
    )
    missing = client.post("/auth/token", data={"grant_type": "password", "username": "x"})
    assert missing.status_code == 400 and missing.json()["field"] == "password"


def test_citizen_token_carries_the_person(client: TestClient, db: Database) -> None:
    add_user(db, "dan.01", "citizen", person_id="person-123")
    body = _password_grant(client, "dan.01").json()
    assert body["patient"] == "person-123"
    assert client.get("/api/v1/me", headers=bearer(body["access_token"])).json()["person_id"] == (
        "person-123"
    )


def test_token_helper_signs_in(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    assert client.get("/api/v1/users", headers=bearer(token_for(client, "qt"))).status_code == 200


def test_failed_client_sign_in_is_audited(client: TestClient, db: Database) -> None:
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
    )
    assert response.status_code == 401
    with db.session() as session:
        event = session.scalars(select(AuditEvent)).one()
    assert event.client_id == "nobody" and event.outcome == "failure:auth.invalid_client"


def test_expired_rows_are_pruned(client: TestClient, db: Database, settings: Settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from ytehub.core.models import LoginThrottle, RefreshToken

    add_user(db, "bs.an", "clinician")
    _password_grant(client, "bs.an")
    _password_grant(client, "bs.an", "wrong-password-1")
    long_ago = service.utcnow() - timedelta(days=400)
    with db.session() as session:
        session.execute(update(RefreshToken).values(expires_at=long_ago))
        session.execute(update(LoginThrottle).values(window_start=long_ago))
    with db.session() as session:
        assert service.prune_expired(session, settings) == 3  # 1 token, 2 throttle keys
    with db.session() as session:
        assert session.scalars(select(RefreshToken)).all() == []
        assert session.scalars(select(LoginThrottle)).all() == []
