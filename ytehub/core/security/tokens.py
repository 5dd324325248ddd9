"""Short-lived signed access tokens (JWT, HS256) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from ytehub.core.errors import DomainError, Text
from ytehub.core.security.area import AreaScope
from ytehub.core.security.scopes import Scope, parse_scopes

ISSUER = "ytehub"
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in person or a facility system, with what it may do and where."""

    subject: str  # username, or client id for machine clients
    role: str
    scopes: tuple[Scope, ...]
    area: AreaScope
    client_id: str | None = None
    person_id: str | None = None  # for citizens: the person whose record they may read
    token_id: str | None = None

    @property
    def is_machine(self) -> bool:
        return self.client_id is not None


def issue_access_token(key: str, principal: Principal, minutes: int, now: datetime) -> str:
    claims = {
        "iss": ISSUER,
        "sub": principal.subject,
        "role": principal.role,
        "scope": " ".join(str(s) for s in principal.scopes),
        "area": principal.area.as_claim(),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if principal.client_id:
        claims["cid"] = principal.client_id
    if principal.person_id:
        claims["pid"] = principal.person_id
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def _invalid(code: str, vi: str, en: str) -> DomainError:
    return DomainError(
        f"token.{code}",
        Text(vi, en),
        status=401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{en}"'},
    )


class _VerifiedTokens:
    """Tokens whose signature and claims were already checked, until they expire.

    A client sends the same bearer token with every request; checking its HMAC and rebuilding
    the principal each time cost a tenth of a simple read. Keyed by signing key and the whole
    token, so a changed key or a single altered byte misses and is verified afresh.
    """

    def __init__(self, size: int = 4_096) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, str], tuple[Principal, float]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, token: str) -> Principal | None:
        with self.lock:
            hit = self.entries.get((key, token))
            if hit is None:
                return None
            principal, expires = hit
            if time.time() >= expires:
                del self.entries[(key, token)]
                return None
            self.entries.move_to_end((key, token))
            return principal

    def put(self, key: str, token: str, principal: Principal, expires: float) -> None:
        with self.lock:
            self.entries[(key, token)] = (principal, expires)
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)


_verified = _VerifiedTokens()


def read_access_token(key: str, token: str, now: datetime | None = None) -> Principal:
    """Verify signature, issuer and expiry; every failure says precisely why."""
    if now is None and (principal := _verified.get(key, token)) is not None:
        return principal
    principal, expires = _verify(key, token, now)
    if now is None:
        _verified.put(key, token, principal, expires)
    return principal


def _verify(key: str, token: str, now: datetime | None) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise _invalid(
            "expired", "Mã truy cập đã hết hạn.", "The access token has expired."
        ) from None
    except jwt.InvalidSignatureError:
        raise _invalid(
            "bad_signature",
            "Chữ ký mã truy cập không đúng.",
            "The access token signature is wrong.",
        ) from None
    except jwt.InvalidIssuerError:
        raise _invalid(
            "bad_issuer",
            "Mã truy cập không do ytehub cấp.",
            "The access token was not issued here.",
        ) from None
    except jwt.InvalidAlgorithmError:
        raise _invalid(
            "bad_algorithm",
            "Thuật toán ký không được chấp nhận.",
            "The signing algorithm is not accepted.",
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid(
            "missing_claim",
            f"Mã truy cập thiếu trường {exc.claim}.",
            f"The access token lacks the {exc.claim} claim.",
        ) from None
    except jwt.InvalidTokenError:
        raise _invalid(
            "malformed", "Mã truy cập không đúng định dạng.", "The access token is malformed."
        ) from None
    try:
        area = claims["area"]
        principal = Principal(
            subject=claims["sub"],
            role=claims["role"],
            scopes=tuple(parse_scopes(claims.get("scope", ""))),
            area=AreaScope.from_parts(area["kind"], area["codes"]),
            client_id=claims.get("cid"),
            person_id=claims.get("pid"),
            token_id=claims.get("jti"),
        )
        return principal, float(claims["exp"])
    except (KeyError, TypeError, DomainError):
        raise _invalid(
            "malformed", "Mã truy cập không đúng định dạng.", "The access token is malformed."
        ) from None


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and the SHA-256 under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_hash(token)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)
