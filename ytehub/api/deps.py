"""Authorisation and audit as dependencies: one place checks role, scope, area and purpose.

A route declares what it needs::

    access: Access = Depends(authorize("admin/users.read"))

and gets back who is calling and why. A refusal is audited (in its own transaction, since
nothing else happens) and answered 401/403 with the precise reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ytehub.api.context import request_id, source_address
from ytehub.core import audit
from ytehub.core.db import Database
from ytehub.core.errors import DomainError, Text
from ytehub.core.security import Principal, Scope, allows, get_role, read_access_token
from ytehub.core.settings import Settings

PURPOSE_HEADER = "x-purpose-of-use"


# Dependencies are `async def` although they do no awaiting: FastAPI runs a plain `def`
# dependency in a worker thread, and the thread hops cost more than the work itself.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.db


@contextmanager
def request_session(db: Database) -> Iterator[Session]:
    """A session for one request: routes commit their own work, anything else rolls back."""
    session = db.sessions()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """:func:`request_session` as a dependency."""
    # The database straight from the app, not through `get_database`: every dependency
    # FastAPI resolves costs on every request.
    with request_session(request.app.state.db) as session:
        yield session


@dataclass(frozen=True, slots=True)
class Access:
    """The authorised caller of this request, and the declared purpose of use."""

    principal: Principal
    purpose: str
    source: str | None
    request_id: str | None
    # Set when only patient/ scopes allow the access: the one person whose data it may touch.
    compartment: str | None = None

    def audit(self, session: Session, action: str, outcome: str = "success", **fields: Any) -> None:
        """Record what this caller did, in the same transaction as the work (at its commit)."""
        detail = fields.pop("detail", None) or {}
        if self.request_id:
            detail["request_id"] = self.request_id
        audit.defer(
            session,
            audit.AuditEntry(
                action=action,
                outcome=outcome,
                actor=self.principal.subject,
                role=self.principal.role,
                client_id=self.principal.client_id,
                purpose=self.purpose,
                source=self.source,
                detail=detail or None,
                **fields,
            ),
        )


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _unauthenticated() -> DomainError:
    return DomainError(
        "auth.required",
        Text(
            "Cần đăng nhập: gửi mã truy cập trong tiêu đề Authorization: Bearer.",
            "Authentication required: send an access token as Authorization: Bearer.",
        ),
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="ytehub"'},
    )


async def current_principal(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise _unauthenticated()
    return read_access_token(request.app.state.settings.signing_key, token)


def _deny(
    request: Request,
    principal: Principal,
    purpose: str | None,
    action: str,
    error: DomainError,
) -> DomainError:
    db: Database = request.app.state.db
    with db.session() as session:
        audit.record(
            session,
            audit.AuditEntry(
                action=action,
                outcome=f"denied:{error.code}",
                actor=principal.subject,
                role=principal.role,
                client_id=principal.client_id,
                purpose=purpose,
                source=source_address(request),
                detail={"path": request.url.path, "request_id": request_id(request)},
            ),
        )
    return error


def _resolve_purpose(request: Request, principal: Principal) -> str:
    role = get_role(principal.role)
    declared = request.headers.get(PURPOSE_HEADER)
    if declared is None:
        return role.default_purpose
    declared = declared.strip().upper()
    if declared not in role.purposes:
        raise DomainError(
            "purpose.not_allowed",
            Text(
                f"Mục đích sử dụng {declared} không được phép cho vai trò {principal.role}"
                f" (được phép: {', '.join(role.purposes)}).",
                f"Purpose of use {declared} is not allowed for role {principal.role}"
                f" (allowed: {', '.join(role.purposes)}).",
            ),
            status=403,
            field=PURPOSE_HEADER,
            value=declared,
        )
    return declared


def authorize(
    scope: str, *, commune_param: str | None = None, facility_param: str | None = None
) -> Callable[..., Any]:
    """A dependency requiring ``scope`` and, when named, that the commune or facility given in
    the path or query parameter lies inside the caller's area."""
    required = Scope.parse(scope)

    async def dependency(
        request: Request, principal: Principal = Depends(current_principal)
    ) -> Access:
        return check_scope(request, principal, required, commune_param, facility_param)

    return dependency


def check_scope(
    request: Request,
    principal: Principal,
    required: Scope,
    commune_param: str | None = None,
    facility_param: str | None = None,
) -> Access:
    """Authorise ``principal`` for ``required`` (and the area named in the request); a refusal
    is audited and raised. The console calls it with its signed-in principal."""
    purpose: str | None = None
    try:
        purpose = _resolve_purpose(request, principal)
        if not allows(principal.scopes, required):
            raise DomainError(
                "auth.scope_missing",
                Text(
                    f"Mã truy cập thiếu phạm vi quyền {required}.",
                    f"The access token lacks the scope {required}.",
                ),
                status=403,
                field="scope",
                value=str(required),
            )
        _check_area(request, principal, commune_param, facility_param)
    except DomainError as error:
        raise _deny(request, principal, purpose, f"access:{required}", error) from None
    return Access(principal, purpose, source_address(request), request_id(request))


def _param(request: Request, name: str) -> str | None:
    return request.path_params.get(name) or request.query_params.get(name)


def _check_area(
    request: Request, principal: Principal, commune_param: str | None, facility_param: str | None
) -> None:
    area = principal.area
    if commune_param and (code := _param(request, commune_param)) and not area.covers_commune(code):
        raise out_of_area(code)
    if (
        facility_param
        and (code := _param(request, facility_param))
        and not area.covers_facility(code)
    ):
        raise out_of_area(code)


def out_of_area(code: str) -> DomainError:
    return DomainError(
        "auth.out_of_area",
        Text(
            f"{code} nằm ngoài phạm vi địa bàn được giao.",
            f"{code} is outside the area you are assigned to.",
        ),
        status=403,
        field="area",
        value=code,
    )


FHIR_CONTEXTS = ("user", "system", "patient")


def authorize_resource(
    request: Request, principal: Principal, resource_type: str, action: str
) -> Access:
    """Authorise a FHIR interaction on ``resource_type`` (read or write) for any scope context;
    a caller allowed only through patient/ scopes is confined to their own compartment."""
    purpose: str | None = None
    try:
        purpose = _resolve_purpose(request, principal)
        allowed = [
            context
            for context in FHIR_CONTEXTS
            if allows(principal.scopes, Scope(context, resource_type, action))
        ]
        if not allowed:
            raise DomainError(
                "auth.scope_missing",
                Text(
                    f"Mã truy cập thiếu phạm vi quyền user/{resource_type}.{action}.",
                    f"The access token lacks the scope user/{resource_type}.{action}.",
                ),
                status=403,
                field="scope",
                value=f"user/{resource_type}.{action}",
            )
        compartment = None
        if allowed == ["patient"]:
            if not principal.person_id:
                raise DomainError(
                    "auth.no_patient_context",
                    Text(
                        "Mã truy cập không gắn với người nào.",
                        "The access token carries no patient context.",
                    ),
                    status=403,
                )
            compartment = principal.person_id
    except DomainError as error:
        raise _deny(request, principal, purpose, f"fhir:{resource_type}.{action}", error) from None
    return Access(principal, purpose, source_address(request), request_id(request), compartment)
