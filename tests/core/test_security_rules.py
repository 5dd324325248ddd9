"""Pure rules: scopes, area scopes, roles data, tokens, passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytehub.core.errors import DomainError
from ytehub.core.security import AreaScope, Principal, Scope, allows, parse_scopes, roles
from ytehub.core.security.passwords import check_strength, hash_password, verify_password
from ytehub.core.security.scopes import narrow
from ytehub.core.security.tokens import issue_access_token, read_access_token

KEY = "k" * 64
resources = st.sampled_from(["Patient", "Immunization", "Encounter", "users", "*"])
actions = st.sampled_from(["read", "write", "*"])
contexts = st.sampled_from(["user", "patient", "system", "admin"])


@given(contexts, resources, actions)
def test_scope_round_trips_and_covers_itself(context: str, resource: str, action: str) -> None:
    scope = Scope(context, resource, action)
    assert Scope.parse(str(scope)) == scope
    assert scope.covers(scope)


def test_wildcards() -> None:
    granted = parse_scopes("user/*.read system/Patient.*")
    assert allows(granted, Scope.parse("user/Patient.read"))
    assert not allows(granted, Scope.parse("user/Patient.write"))
    assert allows(granted, Scope.parse("system/Patient.write"))
    assert not allows(granted, Scope.parse("patient/Patient.read")), "contexts never mix"


@pytest.mark.parametrize(
    "bad", ["user/Patient", "user.Patient.read", "root/*.read", "user/*.delete", ""]
)
def test_malformed_scope_is_rejected(bad: str) -> None:
    with pytest.raises(DomainError) as caught:
        Scope.parse(bad)
    assert caught.value.code == "scope.invalid"


def test_narrow_keeps_only_allowed() -> None:
    allowed = parse_scopes("user/*.read")
    requested = parse_scopes("user/Patient.read user/Patient.write")
    assert narrow(allowed, requested) == [Scope.parse("user/Patient.read")]
    assert narrow(allowed, None) == allowed


def test_area_scopes() -> None:
    province = AreaScope.province()
    two = AreaScope.communes(["26740", "26743"])
    one = AreaScope.communes(["26740"])
    facility = AreaScope.facility("79001")
    assert province.covers_commune("00001") and province.contains(two)
    assert two.covers_commune("26740") and not two.covers_commune("00640")
    assert two.contains(one) and not one.contains(two)
    assert not two.contains(province)
    assert facility.covers_facility("79001") and not facility.covers_facility("79002")
    assert not facility.covers_commune("26740")
    assert two.covers_facility("79001", facility_commune="26743")
    assert not two.covers_facility("79001")


@pytest.mark.parametrize(
    ("kind", "codes"), [("province", ["1"]), ("communes", []), ("facility", ["a", "b"]), ("x", [])]
)
def test_area_shape_is_checked(kind: str, codes: list[str]) -> None:
    with pytest.raises(DomainError) as caught:
        AreaScope.from_parts(kind, codes)
    assert caught.value.code == "area.invalid"


def test_roles_data_is_complete() -> None:
    table = roles()
    expected = {
        "admin",
        "clinician",
        "vaccinator",
        "epidemiologist",
        "dispatcher",
        "manager",
        "registrar",
        "facility_system",
        "citizen",
    }
    assert set(table) == expected
    assert table["facility_system"].machine and table["citizen"].needs_person
    for role in table.values():
        assert role.label.vi and role.label.en and role.scopes and role.purposes


def _principal() -> Principal:
    return Principal(
        "an", "clinician", tuple(parse_scopes("user/*.read")), AreaScope.communes(["26740"])
    )


def test_token_round_trip() -> None:
    now = datetime.now(UTC)
    token = issue_access_token(KEY, _principal(), 15, now)
    back = read_access_token(KEY, token)
    assert back.subject == "an" and back.area == AreaScope.communes(["26740"])
    assert back.scopes == (Scope.parse("user/*.read"),)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda: issue_access_token(
                KEY, _principal(), 15, datetime.now(UTC) - timedelta(hours=1)
            ),
            "token.expired",
        ),
        (
            lambda: issue_access_token("other" * 10, _principal(), 15, datetime.now(UTC)),
            "token.bad_signature",
        ),
        (lambda: "not-a-token", "token.malformed"),
        (
            lambda: jwt.encode(
                {"sub": "x", "iss": "ytehub", "iat": 1, "exp": 2**40}, KEY, algorithm="HS256"
            ),
            "token.malformed",
        ),
        (
            lambda: jwt.encode(
                {"sub": "x", "iss": "elsewhere", "iat": 1, "exp": 2**40}, KEY, algorithm="HS256"
            ),
            "token.bad_issuer",
        ),
        (
            lambda: jwt.encode({"sub": "x", "iss": "ytehub", "iat": 1}, KEY, algorithm="HS256"),
            "token.missing_claim",
        ),
        (
            lambda: jwt.encode(
                {"sub": "x", "iss": "ytehub", "iat": 1, "exp": 2**40}, KEY, algorithm="HS512"
            ),
            "token.bad_algorithm",
        ),
    ],
)
def test_bad_tokens_say_why(make, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as caught:
        read_access_token(KEY, make())
    assert caught.value.code == code and caught.value.status == 401
    assert "invalid_token" in caught.value.headers["WWW-Authenticate"]


def test_unsigned_token_is_refused() -> None:
    token = jwt.encode(
        {"sub": "x", "iss": "ytehub", "iat": 1, "exp": 2**40}, None, algorithm="none"
    )
    with pytest.raises(DomainError):
        read_access_token(KEY, token)


def test_passwords() -> None:
    stored = hash_password("correct-horse-42")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct-horse-42")
    assert not verify_password(stored, "correct-horse-43")
    assert not verify_password(None, "anything")
    for weak, code in (
        ("short1", "password.too_short"),
        ("onlyletterslong", "password.too_simple"),
    ):
        with pytest.raises(DomainError) as caught:
            check_strength(weak)
        assert caught.value.code == code
