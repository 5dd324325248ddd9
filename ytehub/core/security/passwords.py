"""Password and client-secret hashing with Argon2id."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ytehub.core.errors import DomainError, Text

_hasher = PasswordHasher()
# Verified against when the account does not exist, so timing does not reveal which accounts do.
_DUMMY_HASH = _hasher.hash("ytehub-no-such-account")
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise DomainError(
            "password.too_short",
            Text(
                f"Mật khẩu phải có ít nhất {MIN_LENGTH} ký tự.",
                f"The password must have at least {MIN_LENGTH} characters.",
            ),
            field="password",
        )
    if password.isdigit() or password.isalpha():
        raise DomainError(
            "password.too_simple",
            Text(
                "Mật khẩu phải có cả chữ và số hoặc ký tự khác.",
                "The password must mix letters with digits or other characters.",
            ),
            field="password",
        )
