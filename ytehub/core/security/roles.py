"""Roles as data: loaded once from ``roles.toml`` and validated at start-up."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from ytehub.core.errors import DomainError, Text
from ytehub.core.security.scopes import Scope

AREA_KINDS = ("province", "communes", "facility")


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    label: Text
    scopes: tuple[Scope, ...]
    purposes: tuple[str, ...]
    area_kinds: tuple[str, ...]
    needs_person: bool
    machine: bool

    @property
    def default_purpose(self) -> str:
        return self.purposes[0]


@cache
def roles() -> dict[str, Role]:
    raw = tomllib.loads(files(__package__).joinpath("roles.toml").read_text(encoding="utf-8"))
    table: dict[str, Role] = {}
    for name, spec in raw["roles"].items():
        area_kinds = tuple(spec["areas"])
        if not area_kinds or set(area_kinds) - set(AREA_KINDS):
            raise ValueError(f"role {name}: areas must be among {AREA_KINDS}")
        if not spec["purposes"]:
            raise ValueError(f"role {name}: needs at least one purpose of use")
        table[name] = Role(
            name=name,
            label=Text(spec["vi"], spec["en"]),
            scopes=tuple(Scope.parse(s) for s in spec["scopes"]),
            purposes=tuple(spec["purposes"]),
            area_kinds=area_kinds,
            needs_person=bool(spec.get("person", False)),
            machine=bool(spec.get("machine", False)),
        )
    return table


def get_role(name: str) -> Role:
    try:
        return roles()[name]
    except KeyError:
        raise DomainError(
            "role.unknown",
            Text(f"Vai trò không tồn tại: {name}", f"Unknown role: {name}"),
            field="role",
            value=name,
        ) from None
