"""OAuth2 token endpoint (RFC 6749): password, client-credentials and refresh-token grants."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ytehub.api.context import request_id, source_address
from ytehub.api.deps import get_database, get_session, get_settings
from ytehub.core import audit
from ytehub.core.db import Database
from ytehub.core.errors import DomainError, Text
from ytehub.core.security import parse_scopes, service
from ytehub.core.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])

# RFC 6749 §5.2 error names for our codes.
_OAUTH_ERRORS = {
    "auth.invalid_grant": "invalid_grant",
    "auth.invalid_client": "invalid_client",
    "auth.client_disabled": "invalid_client",
    "auth.invalid_scope": "invalid_scope",
    "scope.invalid": "invalid_scope",
    "auth.unsupported_grant": "unsupported_grant_type",
    "auth.throttled": "slow_down",
}


def _missing(field: str) -> DomainError:
    return DomainError(
        "request.invalid",
        Text(f"Thiếu trường {field}.", f"The field {field} is missing."),
        field=field,
    )


def _required(field: str, value: str | None) -> str:
    if not value:
        raise _missing(field)
    return value


def _client_credentials(
    request: Request, client_id: str | None, client_secret: str | None
) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise DomainError(
                "auth.invalid_client",
                Text("Tiêu đề Basic không hợp lệ.", "Malformed Basic authorization header."),
                status=401,
            ) from None
        return client_id, secret
    return _required("client_id", client_id), _required("client_secret", client_secret)


@router.post("/token", summary="Issue tokens (OAuth2)")
def token(
    request: Request,
    grant_type: str | None = Form(default=None),
    scope: str | None = Form(default=None),
    username: str | None = Form(default=None),
    password: str | None = Form(default=None),
    refresh_token: str | None = Form(default=None),
    client_id: str | None = Form(default=None),
    client_secret: str | None = Form(default=None),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
) -> JSONResponse:
    source, rid = source_address(request), request_id(request)
    try:
        requested = parse_scopes(scope) if scope else None
        if grant_type == "password":
            granted = service.password_sign_in(
                db,
                settings,
                _required("username", username),
                _required("password", password),
                requested,
                source=source,
                request_id=rid,
            )
        elif grant_type == "client_credentials":
            cid, secret = _client_credentials(request, client_id, client_secret)
            client = service.authenticate_client(session, cid, secret)
            principal = service.principal_for_client(client, requested)
            granted = service.grant(session, settings, principal)
        elif grant_type == "refresh_token":
            granted = service.refresh_sign_in(
                db,
                settings,
                _required("refresh_token", refresh_token),
                source=source,
                request_id=rid,
            )
        else:
            raise DomainError(
                "auth.unsupported_grant",
                Text(
                    f"Kiểu cấp quyền không được hỗ trợ: {grant_type!r}.",
                    f"Unsupported grant_type: {grant_type!r}.",
                ),
                field="grant_type",
                value=grant_type,
            )
        if grant_type == "client_credentials":  # people's sign-ins are audited by the service
            principal = granted.principal
            audit.record(
                session,
                audit.AuditEntry(
                    action=f"auth.token.{grant_type}",
                    actor=principal.subject,
                    role=principal.role,
                    client_id=principal.client_id,
                    source=source,
                    detail={"scope": granted.scope, "request_id": rid},
                ),
            )
            session.commit()
    except DomainError as error:
        session.rollback()
        if grant_type == "client_credentials":
            _audit_client_failure(db, client_id or "", source, rid, error)
        raise _oauth_error(error) from None
    return JSONResponse(
        granted.as_response(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


def _audit_client_failure(
    db: Database, client_id: str, source: str | None, rid: str | None, error: DomainError
) -> None:
    with db.session() as failures:
        audit.record(
            failures,
            audit.AuditEntry(
                action="auth.token.client_credentials",
                outcome=f"failure:{error.code}",
                client_id=client_id[:64] or None,
                source=source,
                detail={"request_id": rid},
            ),
        )


def _oauth_error(error: DomainError) -> DomainError:
    """Keep our problem document and add the RFC 6749 ``error`` name clients look for."""
    error.headers = {**error.headers, "Cache-Control": "no-store"}
    error.extra["error"] = _OAUTH_ERRORS.get(error.code, "invalid_request")
    error.extra["error_description"] = error.message.en
    return error


@router.post("/revoke", summary="Revoke a refresh token (RFC 7009)")
def revoke(
    token: str | None = Form(default=None), session: Session = Depends(get_session)
) -> JSONResponse:
    if token:
        service.revoke_refresh_token(session, token)
        session.commit()
    return JSONResponse({})
