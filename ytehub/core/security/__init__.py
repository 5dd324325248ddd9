"""Users, roles, scopes, area scopes and tokens."""

from ytehub.core.security.area import AreaScope
from ytehub.core.security.roles import Role, get_role, roles
from ytehub.core.security.scopes import Scope, allows, parse_scopes
from ytehub.core.security.tokens import Principal, read_access_token

__all__ = [
    "AreaScope",
    "Principal",
    "Role",
    "Scope",
    "allows",
    "get_role",
    "parse_scopes",
    "read_access_token",
    "roles",
]
