"""Administrative units in force since 1 July 2025, and conversion of legacy codes and addresses."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ytehub.api.deps import current_principal
from ytehub.core import units
from ytehub.core.errors import DomainError, Text
from ytehub.core.security import Principal

router = APIRouter(
    prefix="/api/v1/units", tags=["administrative units"], dependencies=[Depends(current_principal)]
)


def _unit(unit: units.Province | units.Commune) -> dict[str, Any]:
    level = "province" if isinstance(unit, units.Province) else "commune"
    return {"level": level, **asdict(unit)}


def _not_found(code: str) -> DomainError:
    return DomainError(
        "unit.not_found",
        Text(f"Không có đơn vị hành chính mã {code}.", f"No administrative unit with code {code}."),
        status=404,
        field="code",
        value=code,
    )


@router.get("/provinces")
def list_provinces() -> list[dict[str, Any]]:
    return [_unit(p) for p in units.provinces()]


@router.get("/provinces/{code}/communes")
def list_communes(code: str) -> list[dict[str, Any]]:
    if units.province(code) is None:
        raise _not_found(code)
    return [_unit(c) for c in units.communes(code)]


@router.get("/search")
def search(
    q: str = Query(min_length=1, max_length=100),
    province: str | None = Query(default=None, max_length=2),
    limit: int = Query(default=20, ge=1, le=100),
) -> list[dict[str, Any]]:
    return [_unit(u) for u in units.search(q, province_code=province, limit=limit)]


@router.get("/legacy/{old_code}")
def convert_legacy(old_code: str) -> dict[str, Any]:
    """An old (pre-2025) commune code, or a 2-digit old province code, to the units in force."""
    if len(old_code) <= 2:
        new_province = units.convert_legacy_province(old_code)
        if new_province is None:
            raise _not_found(old_code)
        return {"old_code": old_code, "province": _unit(new_province)}
    converted = units.convert_legacy_commune(old_code)
    if converted is None:
        raise _not_found(old_code)
    return asdict(converted)


class AddressIn(BaseModel):
    address: str = Field(min_length=3, max_length=500)


@router.post("/convert-address")
def convert_address(body: AddressIn, _: Principal = Depends(current_principal)) -> dict[str, Any]:
    """A legacy free-text address (before 2025) to the current province and commune."""
    converted = units.convert_address(body.address)
    if converted is None:
        raise DomainError(
            "unit.address_unrecognised",
            Text(
                "Không nhận ra tỉnh/thành trong địa chỉ.", "No province recognised in the address."
            ),
            status=422,
            field="address",
        )
    return asdict(converted)


@router.get("/{code}")
def read_unit(code: str) -> dict[str, Any]:
    found = units.province(code) if len(code) <= 2 else units.commune(code)
    if found is None:
        raise _not_found(code)
    return _unit(found)
