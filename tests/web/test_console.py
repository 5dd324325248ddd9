"""The console over HTTP: sign-in with CSRF protection, sessions, language, redirects."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, add_user, sign_in
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent, RefreshToken


def test_pages_requiresign_in(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/"
    immunization = client.get("/immunization", follow_redirects=False)
    assert immunization.headers["location"] == "/login?next=/immunization"


def test_sign_in_and_out(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    response = sign_in(client, "qt")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie_headers = response.headers.get_list("set-cookie")
    assert all(
        "httponly" in h.lower() and "samesite=strict" in h.lower()
        for h in cookie_headers
        if h.startswith("ytehub_")
    )
    page = client.get("/")
    assert page.status_code == 200 and "Tổng quan" in page.text and "Quản trị hệ thống" in page.text
    assert client.get("/immunization").status_code == 200
    csrf = client.cookies["ytehub_csrf"]
    out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303
    with db.session() as session:
        assert all(row.revoked for row in session.scalars(select(RefreshToken)))
        channels = [
            e.detail["channel"]
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_in"))
        ]
    assert channels == ["console"]


def test_wrong_password_shows_the_reason(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    response = sign_in(client, "qt", "wrong-password-9")
    assert response.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in response.text
    assert 'value="qt"' in response.text, "the username is kept for a second try"


def test_login_without_csrf_is_refused(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    response = client.post(
        "/login", data={"username": "qt", "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 400 and "ytehub_access" not in response.cookies


def test_next_only_goes_to_this_site(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    assert sign_in(client, "qt", next="https://evil.example/").headers["location"] == "/"
    client.cookies.clear()
    assert sign_in(client, "qt", next="//evil.example").headers["location"] == "/"
    client.cookies.clear()
    assert sign_in(client, "qt", next="/surveillance").headers["location"] == "/surveillance"


def test_expired_access_is_renewed_from_the_refresh_cookie(
    client: TestClient, db: Database
) -> None:
    add_user(db, "qt", "admin")
    sign_in(client, "qt")
    client.cookies.delete("ytehub_access")
    page = client.get("/")
    assert page.status_code == 200 and "ytehub_access" in page.cookies


def test_language_switch(client: TestClient, db: Database) -> None:
    add_user(db, "qt", "admin")
    sign_in(client, "qt")
    switched = client.get("/lang/en", params={"next": "/"}, follow_redirects=False)
    assert switched.headers["location"] == "/" and switched.cookies["lang"] == "en"
    page = client.get("/")
    assert '<html lang="en">' in page.text and "Dashboard" in page.text
    client.get("/lang/xx")
    assert '<html lang="vi">' in client.get("/").text, "unknown languages fall back to Vietnamese"


def test_static_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/login").text
    assert "/static/htmx.min.js" in page
    assert "http://" not in page and "https://" not in page, "no CDN or other outside asset"
    assert client.get("/static/htmx.min.js").status_code == 200
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")


def test_language_links_keep_the_whole_address(client: TestClient) -> None:
    page = client.get("/login", params={"next": "/records"}).text
    assert 'href="/lang/en?next=/login%3Fnext%3D%252Frecords"' in page
    switched = client.get(
        "/lang/en", params={"next": "/login?next=/records"}, follow_redirects=False
    )
    assert switched.headers["location"] == "/login?next=/records"
