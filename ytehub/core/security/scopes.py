"""SMART-on-FHIR style scopes (``user/Patient.read``, ``system/*.write``, ``patient/*.read``).

A required scope is satisfied when any granted scope has the same context and covers its
resource (same or ``*``) and its action (same or ``*``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ytehub.core.errors import DomainError, Text

CONTEXTS = ("user", "patient", "system", "admin", "analytics", "registry")
ACTIONS = ("read", "write", "*")
_GRAMMAR = re.compile(
    r"^(?P<context>[a-z]+)/(?P<resource>\*|[A-Za-z][A-Za-z0-9_]*)\.(?P<action>\*|[a-z]+)$"
)


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    context: str
    resource: str
    action: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        match = _GRAMMAR.match(text)
        if not match or match["context"] not in CONTEXTS or match["action"] not in ACTIONS:
            raise DomainError(
                "scope.invalid",
                Text(f"Phạm vi quyền không hợp lệ: {text!r}", f"Invalid scope: {text!r}"),
                field="scope",
                value=text,
            )
        return cls(match["context"], match["resource"], match["action"])

    def covers(self, required: Scope) -> bool:
        return (
            self.context == required.context
            and self.resource in ("*", required.resource)
            and self.action in ("*", required.action)
        )

    def __str__(self) -> str:
        return f"{self.context}/{self.resource}.{self.action}"


def parse_scopes(text: str) -> list[Scope]:
    return [Scope.parse(part) for part in text.split()]


def allows(granted: Iterable[Scope], required: Scope) -> bool:
    return any(scope.covers(required) for scope in granted)


def narrow(allowed: Iterable[Scope], requested: Iterable[Scope] | None) -> list[Scope]:
    """What a token may carry: the requested scopes that the role allows (all when none asked)."""
    allowed = sorted(set(allowed))
    if requested is None:
        return allowed
    return sorted({scope for scope in requested if allows(allowed, scope)})
