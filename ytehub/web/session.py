"""The console's sign-in session: tokens in HttpOnly, SameSite=Strict cookies.

The access token is the same JWT the API uses, so the console obeys exactly the same
scopes and areas. When it expires, the refresh token renews it transparently.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from ytehub.core.db import Database
from ytehub.core.errors import DomainError
from ytehub.core.security import Principal, read_access_token, service
from ytehub.core.settings import Settings

ACCESS_COOKIE = "ytehub_access"
REFRESH_COOKIE = "ytehub_refresh"
CSRF_COOKIE = "ytehub_csrf"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def store_grant(
    request: Request, response: Response, settings: Settings, grant: service.TokenGrant
) -> None:
    common = {"httponly": True, "samesite": "strict", "secure": _secure(request), "path": "/"}
    response.set_cookie(ACCESS_COOKIE, grant.access_token, max_age=grant.expires_in, **common)
    if grant.refresh_token:
        max_age = settings.refresh_token_days * 86400
        response.set_cookie(REFRESH_COOKIE, grant.refresh_token, max_age=max_age, **common)


def clear(response: Response) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/")


def signed_in(
    request: Request, settings: Settings, db: Database
) -> tuple[Principal | None, service.TokenGrant | None]:
    """The console user, and a renewed grant to store when the access token had expired."""
    token = request.cookies.get(ACCESS_COOKIE)
    if token:
        try:
            return read_access_token(settings.signing_key, token), None
        except DomainError:
            pass
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        return None, None
    try:
        grant = service.refresh_sign_in(
            db,
            settings,
            refresh,
            source=request.client.host if request.client else None,
            channel="console",
        )
    except DomainError:
        return None, None
    return grant.principal, grant


def csrf_token(request: Request) -> str:
    """The double-submit token: the cookie's value if the browser has one, else a new one."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/"
    )


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and submitted and hmac.compare_digest(cookie, submitted))
