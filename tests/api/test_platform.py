"""Health, error translation, request limits, languages, security headers, reference routes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import add_user, bearer, token_for
from ytehub.core.db import Database


def test_health_passes_on_a_current_schema(client: TestClient, backend: str) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "pass" and body["database"] == backend
    assert body["schema"] == body["schema_expected"]


def test_health_fails_when_the_schema_is_behind(client: TestClient, db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    response = client.get("/health")
    assert response.status_code == 503 and "ytehub init" in response.json()["reason"]


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/auth/token" in spec["paths"] and "/api/v1/users" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_oversize_body_is_refused(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    big = b"x" * (settings.max_body_bytes + 1)
    response = client.post(
        "/auth/token", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413 and response.json()["code"] == "request.too_large"


def test_oversize_streamed_body_is_refused(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    chunk = b"y" * 65536
    count = settings.max_body_bytes // len(chunk) + 2
    response = client.post(
        "/auth/token",
        content=(chunk for _ in range(count)),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_unknown_route_is_a_bilingual_problem(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["message"] == {
        "vi": "Không tìm thấy địa chỉ này.",
        "en": "No such address.",
    }


def test_language_choice_and_fallback(client: TestClient) -> None:
    vi = client.get("/api/v1/users").json()["title"]
    en = client.get("/api/v1/users", headers={"accept-language": "en-GB,en;q=0.9"}).json()["title"]
    fallback = client.get("/api/v1/users", params={"lang": "fr"}).json()["title"]
    assert vi.startswith("Cần đăng nhập") and en.startswith("Authentication required")
    assert fallback == vi, "unknown languages fall back to Vietnamese"


def test_security_headers_and_request_id(client: TestClient) -> None:
    response = client.get("/login", headers={"x-request-id": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert client.get("/health").headers["x-request-id"]


def test_units_routes(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    headers = bearer(token_for(client, "bs.an"))
    assert len(client.get("/api/v1/units/provinces", headers=headers).json()) == 34
    hcm = client.get("/api/v1/units/provinces/79/communes", headers=headers).json()
    assert {"code": "26740", "name": "Phường Sài Gòn"}.items() <= next(
        c for c in hcm if c["code"] == "26740"
    ).items()
    found = client.get("/api/v1/units/search", params={"q": "phuong sai gon"}, headers=headers)
    assert found.json()[0]["code"] == "26740"
    assert client.get("/api/v1/units/26740", headers=headers).json()["province_code"] == "79"
    assert client.get("/api/v1/units/legacy/74", headers=headers).json()["province"]["code"] == "79"
    legacy = client.get("/api/v1/units/legacy/26740", headers=headers).json()
    assert legacy["commune"]["code"] == "26740"
    address = client.post(
        "/api/v1/units/convert-address",
        json={"address": "Xã Ngũ Hiệp, Huyện Thanh Trì, Hà Nội"},
        headers=headers,
    ).json()
    assert address["commune"]["code"] == "00640"
    missing = client.get("/api/v1/units/99999", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "unit.not_found"
    assert client.get("/api/v1/units/provinces").status_code == 401


def test_identifier_check_route(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    headers = bearer(token_for(client, "bs.an"))
    ok = client.post(
        "/api/v1/identifiers/check",
        headers=headers,
        json={"kind": "cccd", "value": "079087000123", "sex": "male", "birth_year": 1987},
    )
    assert ok.json()["valid"] and ok.json()["details"]["birth_year"] == 1987
    mismatch = client.post(
        "/api/v1/identifiers/check",
        headers=headers,
        json={"kind": "cccd", "value": "079187000123", "sex": "male"},
    ).json()
    assert not mismatch["valid"] and mismatch["code"] == "cccd.sex_mismatch"
    assert mismatch["reason"]["vi"] and mismatch["reason"]["en"]
    card = client.post(
        "/api/v1/identifiers/check",
        headers=headers,
        json={"kind": "bhyt", "value": "dn4797912345678"},
    ).json()
    assert card["valid"] and card["value"] == "DN4797912345678"


def test_refusals_and_answers_carry_the_request_id(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    """The one edge layer keeps what the three it replaced did: a refused body's 413 carries
    the request id (not the security headers, which belong to the application's answers), a
    caller's odd id is replaced, and the last of repeated ids counts."""
    big = b"x" * (settings.max_body_bytes + 1)
    refused = client.post("/auth/token", content=big, headers={"x-request-id": "big-1"})
    assert refused.status_code == 413 and refused.headers["x-request-id"] == "big-1"
    assert "x-frame-options" not in refused.headers
    made_up = client.get("/health", headers={"x-request-id": "  "}).headers["x-request-id"]
    assert len(made_up) == 32 and made_up.strip()
    repeated = client.get("/health", headers=[("x-request-id", "a"), ("x-request-id", "b")])
    assert repeated.headers["x-request-id"] == "b"
    assert client.get("/health").headers["referrer-policy"] == "same-origin"
