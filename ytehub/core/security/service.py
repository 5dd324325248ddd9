"""Accounts and sign-in: users, facility clients, throttling, token issue and refresh.

Functions take an explicit session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ytehub.core import audit
from ytehub.core.db import Database
from ytehub.core.errors import DomainError, Text
from ytehub.core.models import Client, LoginThrottle, RefreshToken, User
from ytehub.core.security.area import AreaScope
from ytehub.core.security.passwords import hash_password, hash_secret, verify_password
from ytehub.core.security.roles import get_role
from ytehub.core.security.scopes import Scope, narrow, parse_scopes
from ytehub.core.security.tokens import (
    Principal,
    issue_access_token,
    new_refresh_token,
    refresh_token_hash,
    utcnow,
)
from ytehub.core.settings import Settings

_BAD_LOGIN = Text("Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.")


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def area_of(account: User | Client) -> AreaScope:
    return AreaScope.from_parts(account.area_kind, account.area_codes)


def _check_role_area(role_name: str, area: AreaScope, person_id: str | None) -> None:
    role = get_role(role_name)
    if area.kind not in role.area_kinds:
        raise DomainError(
            "area.not_for_role",
            Text(
                f"Vai trò {role_name} không dùng phạm vi '{area.kind}'.",
                f"Role {role_name} cannot have a '{area.kind}' area scope.",
            ),
            field="area",
            value=area.kind,
        )
    if role.needs_person and not person_id:
        raise DomainError(
            "user.person_required",
            Text(
                "Tài khoản người dân phải gắn với một người.",
                "A citizen account needs a person id.",
            ),
            field="person_id",
        )


def create_user(
    session: Session,
    *,
    username: str,
    full_name: str,
    password: str,
    role: str,
    area: AreaScope,
    person_id: str | None = None,
    language: str = "vi",
) -> User:
    if get_role(role).machine:
        raise DomainError(
            "user.machine_role",
            Text(
                "Vai trò này dành cho hệ thống máy, hãy tạo client.",
                "This role is for machine clients; create a client instead.",
            ),
            field="role",
            value=role,
        )
    _check_role_area(role, area, person_id)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise DomainError(
            "user.exists",
            Text(f"Tên đăng nhập đã tồn tại: {username}", f"Username already exists: {username}"),
            status=409,
            field="username",
            value=username,
        )
    now = utcnow()
    user = User(
        username=username,
        full_name=full_name,
        password_hash=hash_password(password),
        role=role,
        area_kind=area.kind,
        area_codes=list(area.codes),
        person_id=person_id,
        language=language,
        disabled=False,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise DomainError(
            "user.not_found",
            Text(f"Không có tài khoản {username}.", f"No user {username}."),
            status=404,
            field="username",
            value=username,
        )
    return user


def list_users(session: Session, within: AreaScope | None = None) -> list[User]:
    users = session.scalars(select(User).order_by(User.username)).all()
    if within is None:
        return list(users)
    return [user for user in users if within.contains(area_of(user))]


def set_disabled(session: Session, username: str, disabled: bool) -> User:
    user = find_user(session, username)
    user.disabled = disabled
    if disabled:
        revoke_all_refresh_tokens(session, user.id)
    return user


def reset_password(session: Session, username: str, password: str) -> User:
    user = find_user(session, username)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    revoke_all_refresh_tokens(session, user.id)
    return user


def generate_password() -> str:
    """A readable random password that passes the strength rules."""
    return f"{secrets.token_urlsafe(9)}-{secrets.randbelow(90) + 10}"


def create_client(
    session: Session, *, client_id: str, name: str, facility_code: str
) -> tuple[Client, str]:
    """Register a facility system; returns the client and its secret (shown once)."""
    if session.scalar(select(Client.id).where(Client.client_id == client_id)) is not None:
        raise DomainError(
            "client.exists",
            Text(f"Client đã tồn tại: {client_id}", f"Client already exists: {client_id}"),
            status=409,
            field="client_id",
            value=client_id,
        )
    secret = secrets.token_urlsafe(32)
    client = Client(
        client_id=client_id,
        name=name,
        secret_hash=hash_secret(secret),
        role="facility_system",
        area_kind="facility",
        area_codes=[facility_code],
        disabled=False,
        created_at=utcnow(),
    )
    session.add(client)
    session.flush()
    return client, secret


# --- throttling -------------------------------------------------------------------------------


def _throttle_keys(username: str, source: str | None) -> list[str]:
    keys = [f"user:{username.lower()}"]
    if source:
        keys.append(f"addr:{source}")
    return keys


def check_throttle(session: Session, settings: Settings, username: str, source: str | None) -> None:
    now = utcnow()
    for key in _throttle_keys(username, source):
        row = session.get(LoginThrottle, key)
        if row and row.locked_until and _as_utc(row.locked_until) > now:
            wait = int((_as_utc(row.locked_until) - now).total_seconds()) + 1
            raise DomainError(
                "auth.throttled",
                Text(
                    f"Đăng nhập sai quá nhiều lần; thử lại sau {wait} giây.",
                    f"Too many failed sign-ins; try again in {wait} seconds.",
                ),
                status=429,
                headers={"Retry-After": str(wait)},
            )


def note_failure(session: Session, settings: Settings, username: str, source: str | None) -> None:
    """Count a failed sign-in; past the limit, lock for a doubling period (at most 15 minutes)."""
    now = utcnow()
    window = timedelta(minutes=settings.login_window_minutes)
    for key in _throttle_keys(username, source):
        row = session.get(LoginThrottle, key)
        if row is None or now - _as_utc(row.window_start) > window:
            row = session.merge(
                LoginThrottle(key=key, failures=0, window_start=now, locked_until=None)
            )
        row.failures += 1
        excess = row.failures - settings.login_max_failures
        if excess >= 0:
            seconds = min(settings.login_lock_seconds * 2**excess, 900)
            row.locked_until = now + timedelta(seconds=seconds)


def prune_expired(session: Session, settings: Settings) -> int:
    """Delete refresh tokens past expiry and throttle rows past their window; returns rows gone."""
    now = utcnow()
    window_start = now - timedelta(minutes=settings.login_window_minutes)
    gone = session.execute(delete(RefreshToken).where(RefreshToken.expires_at < now)).rowcount
    gone += session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_start < window_start,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
        )
    ).rowcount
    return gone or 0


def clear_failures(session: Session, username: str) -> None:
    row = session.get(LoginThrottle, f"user:{username.lower()}")
    if row is not None:
        session.delete(row)


# --- sign-in and tokens -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: int
    scope: str
    principal: Principal
    refresh_token: str | None = None

    def as_response(self) -> dict[str, object]:
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        if self.principal.person_id:
            body["patient"] = self.principal.person_id
        return body


def authenticate_user(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        return None
    return user


def authenticate_client(session: Session, client_id: str, secret: str) -> Client:
    client = session.scalar(select(Client).where(Client.client_id == client_id))
    if not verify_password(client.secret_hash if client else None, secret) or client is None:
        raise DomainError(
            "auth.invalid_client",
            Text("Sai mã client hoặc khóa bí mật.", "Wrong client id or secret."),
            status=401,
        )
    if client.disabled:
        raise DomainError(
            "auth.client_disabled",
            Text("Client đã bị khóa.", "The client is disabled."),
            status=401,
        )
    return client


def bad_login() -> DomainError:
    return DomainError("auth.invalid_grant", _BAD_LOGIN, status=400)


def principal_for_user(user: User, requested: Sequence[Scope] | None) -> Principal:
    role = get_role(user.role)
    return Principal(
        subject=user.username,
        role=user.role,
        scopes=tuple(_granted(role.scopes, requested)),
        area=area_of(user),
        person_id=user.person_id,
    )


def principal_for_client(client: Client, requested: Sequence[Scope] | None) -> Principal:
    role = get_role(client.role)
    return Principal(
        subject=client.client_id,
        role=client.role,
        scopes=tuple(_granted(role.scopes, requested)),
        area=area_of(client),
        client_id=client.client_id,
    )


def _granted(allowed: Sequence[Scope], requested: Sequence[Scope] | None) -> list[Scope]:
    granted = narrow(allowed, requested)
    if not granted:
        raise DomainError(
            "auth.invalid_scope",
            Text(
                "Không phạm vi quyền nào được yêu cầu là được phép cho vai trò này.",
                "None of the requested scopes is allowed for this role.",
            ),
            status=400,
            field="scope",
        )
    return granted


def grant(
    session: Session,
    settings: Settings,
    principal: Principal,
    user: User | None = None,
    family: str | None = None,
) -> TokenGrant:
    """Issue an access token; people also get a refresh token (machines re-authenticate)."""
    now = utcnow()
    access = issue_access_token(settings.signing_key, principal, settings.access_token_minutes, now)
    refresh = None
    if user is not None:
        refresh, digest = new_refresh_token()
        session.add(
            RefreshToken(
                token_hash=digest,
                user_id=user.id,
                family=family or uuid.uuid4().hex,
                scope=" ".join(str(s) for s in principal.scopes),
                issued_at=now,
                expires_at=now + timedelta(days=settings.refresh_token_days),
            )
        )
    return TokenGrant(
        access_token=access,
        expires_in=settings.access_token_minutes * 60,
        scope=" ".join(str(s) for s in principal.scopes),
        principal=principal,
        refresh_token=refresh,
    )


def _refresh_rejected(vi: str, en: str) -> DomainError:
    return DomainError("auth.invalid_grant", Text(vi, en), status=400, field="refresh_token")


def refresh(session: Session, settings: Settings, token: str) -> TokenGrant:
    """Rotate a refresh token. Reusing a spent one revokes its whole family (likely theft)."""
    now = utcnow()
    row = session.get(RefreshToken, refresh_token_hash(token))
    if row is None:
        raise _refresh_rejected("Mã làm mới không hợp lệ.", "Unknown refresh token.")
    if row.used_at is not None or row.revoked:
        for sibling in session.scalars(
            select(RefreshToken).where(RefreshToken.family == row.family)
        ):
            sibling.revoked = True
        raise _refresh_rejected(
            "Mã làm mới đã được dùng; mọi phiên liên quan đã bị thu hồi.",
            "The refresh token was already used; its sessions have been revoked.",
        )
    if _as_utc(row.expires_at) <= now:
        raise _refresh_rejected("Mã làm mới đã hết hạn.", "The refresh token has expired.")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise _refresh_rejected("Tài khoản đã bị khóa.", "The account is disabled.")
    row.used_at = now
    principal = principal_for_user(user, parse_scopes(row.scope))
    return grant(session, settings, principal, user=user, family=row.family)


def revoke_refresh_token(session: Session, token: str) -> None:
    row = session.get(RefreshToken, refresh_token_hash(token))
    if row is not None:
        for sibling in session.scalars(
            select(RefreshToken).where(RefreshToken.family == row.family)
        ):
            sibling.revoked = True


def revoke_all_refresh_tokens(session: Session, user_id: int) -> None:
    for row in session.scalars(select(RefreshToken).where(RefreshToken.user_id == user_id)):
        row.revoked = True


def password_sign_in(
    db: Database,
    settings: Settings,
    username: str,
    password: str,
    requested: Sequence[Scope] | None = None,
    *,
    source: str | None = None,
    request_id: str | None = None,
    channel: str = "api",
) -> TokenGrant:
    """Sign a person in, for the token endpoint and the console alike.

    Runs its own transactions: a failure is counted and audited even though the caller
    receives an error, and a success is audited with the refresh token it stores.
    """
    detail = {"channel": channel, "request_id": request_id}
    with db.session() as session:
        check_throttle(session, settings, username, source)
        user = authenticate_user(session, username, password)
        if user is not None:
            clear_failures(session, username)
            granted = grant(session, settings, principal_for_user(user, requested), user=user)
            audit.record(
                session,
                audit.AuditEntry(
                    action="auth.sign_in",
                    actor=user.username,
                    role=user.role,
                    source=source,
                    detail={**detail, "scope": granted.scope},
                ),
            )
            return granted
    with db.session() as session:
        note_failure(session, settings, username, source)
        audit.record(
            session,
            audit.AuditEntry(
                action="auth.sign_in",
                outcome="failure:bad_credentials",
                actor=username,
                source=source,
                detail=detail,
            ),
        )
    raise bad_login()


def refresh_sign_in(
    db: Database,
    settings: Settings,
    token: str,
    *,
    source: str | None = None,
    request_id: str | None = None,
    channel: str = "api",
) -> TokenGrant:
    """Rotate a refresh token in its own transaction, audited; a refused reuse still commits
    the revocation of the token's family."""
    session = db.sessions()
    try:
        granted = refresh(session, settings, token)
        principal = granted.principal
        audit.record(
            session,
            audit.AuditEntry(
                action="auth.refresh",
                actor=principal.subject,
                role=principal.role,
                source=source,
                detail={"channel": channel, "request_id": request_id},
            ),
        )
        session.commit()
        return granted
    except DomainError:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
