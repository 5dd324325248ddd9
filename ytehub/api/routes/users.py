"""User administration (/api/v1/users) and the caller's own profile (/api/v1/me).

An administrator scoped to some communes manages only accounts inside those communes.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ytehub.api.deps import Access, authorize, current_principal, get_session, out_of_area
from ytehub.core.models import User
from ytehub.core.security import AreaScope, Principal, get_role, service

router = APIRouter(prefix="/api/v1", tags=["users"])


class AreaIn(BaseModel):
    kind: Literal["province", "communes", "facility"]
    codes: list[str] = Field(default_factory=list)


class UserIn(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    full_name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=200)
    role: str
    area: AreaIn
    person_id: str | None = None
    language: Literal["vi", "en"] = "vi"


class UserOut(BaseModel):
    username: str
    full_name: str
    role: str
    area: AreaIn
    person_id: str | None
    language: str
    disabled: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            username=user.username,
            full_name=user.full_name,
            role=user.role,
            area=AreaIn(kind=user.area_kind, codes=user.area_codes),
            person_id=user.person_id,
            language=user.language,
            disabled=user.disabled,
        )


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=200)


def _managed_user(session: Session, access: Access, username: str) -> User:
    user = service.find_user(session, username)
    if not access.principal.area.contains(service.area_of(user)):
        raise out_of_area(username)
    return user


@router.get("/users", response_model=list[UserOut])
def list_users(
    access: Access = Depends(authorize("admin/users.read")),
    session: Session = Depends(get_session),
) -> list[UserOut]:
    users = service.list_users(session, within=access.principal.area)
    access.audit(session, "users.list", resource_type="User", detail={"count": len(users)})
    session.commit()
    return [UserOut.of(user) for user in users]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(
    body: UserIn,
    access: Access = Depends(authorize("admin/users.write")),
    session: Session = Depends(get_session),
) -> UserOut:
    area = AreaScope.from_parts(body.area.kind, body.area.codes)
    if not access.principal.area.contains(area):
        raise out_of_area(",".join(area.codes) or area.kind)
    user = service.create_user(
        session,
        username=body.username,
        full_name=body.full_name,
        password=body.password,
        role=body.role,
        area=area,
        person_id=body.person_id,
        language=body.language,
    )
    access.audit(session, "users.create", resource_type="User", resource_id=user.username)
    session.commit()
    return UserOut.of(user)


@router.get("/users/{username}", response_model=UserOut)
def read_user(
    username: str,
    access: Access = Depends(authorize("admin/users.read")),
    session: Session = Depends(get_session),
) -> UserOut:
    user = _managed_user(session, access, username)
    access.audit(session, "users.read", resource_type="User", resource_id=username)
    session.commit()
    return UserOut.of(user)


@router.post("/users/{username}/disable", response_model=UserOut)
def disable_user(
    username: str,
    access: Access = Depends(authorize("admin/users.write")),
    session: Session = Depends(get_session),
) -> UserOut:
    _managed_user(session, access, username)
    user = service.set_disabled(session, username, True)
    access.audit(session, "users.disable", resource_type="User", resource_id=username)
    session.commit()
    return UserOut.of(user)


@router.post("/users/{username}/enable", response_model=UserOut)
def enable_user(
    username: str,
    access: Access = Depends(authorize("admin/users.write")),
    session: Session = Depends(get_session),
) -> UserOut:
    _managed_user(session, access, username)
    user = service.set_disabled(session, username, False)
    access.audit(session, "users.enable", resource_type="User", resource_id=username)
    session.commit()
    return UserOut.of(user)


@router.post("/users/{username}/password", status_code=204)
def reset_password(
    username: str,
    body: PasswordIn,
    access: Access = Depends(authorize("admin/users.write")),
    session: Session = Depends(get_session),
) -> None:
    _managed_user(session, access, username)
    service.reset_password(session, username, body.password)
    access.audit(session, "users.reset_password", resource_type="User", resource_id=username)
    session.commit()


class MeOut(BaseModel):
    subject: str
    role: str
    role_label: dict[str, str]
    scopes: list[str]
    area: AreaIn
    purposes: list[str]
    person_id: str | None


@router.get("/me", response_model=MeOut, tags=["auth"])
def me(principal: Principal = Depends(current_principal)) -> MeOut:
    role = get_role(principal.role)
    return MeOut(
        subject=principal.subject,
        role=principal.role,
        role_label={"vi": role.label.vi, "en": role.label.en},
        scopes=[str(s) for s in principal.scopes],
        area=AreaIn(kind=principal.area.kind, codes=list(principal.area.codes)),
        purposes=list(role.purposes),
        person_id=principal.person_id,
    )
