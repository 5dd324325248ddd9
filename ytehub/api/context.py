"""Per-request context: language, request id, source address."""

from __future__ import annotations

from fastapi import Request

from ytehub.core.i18n import from_accept_language, normalise
from ytehub.core.settings import Settings


def request_language(request: Request) -> str:
    """?lang=, then the console's cookie, then Accept-Language, then the configured default."""
    settings: Settings = request.app.state.settings
    chosen = (
        request.query_params.get("lang")
        or request.cookies.get("lang")
        or from_accept_language(request.headers.get("accept-language"))
        or settings.default_language
    )
    return normalise(chosen)


def source_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)
