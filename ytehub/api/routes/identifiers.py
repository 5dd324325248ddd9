"""Identifier checks for clerks and facility systems: CCCD/CMND, BHYT card, BHXH, facility code.

POST, not GET, so that citizen numbers never land in URLs and access logs.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ytehub.api.deps import current_principal
from ytehub.core import ids
from ytehub.core.security import Principal

router = APIRouter(prefix="/api/v1/identifiers", tags=["identifiers"])


class CheckIn(BaseModel):
    kind: Literal["cccd", "bhyt", "bhxh", "facility"]
    value: str = Field(max_length=64)
    sex: Literal["male", "female"] | None = None
    birth_year: int | None = Field(default=None, ge=1850, le=2400)


class CheckOut(BaseModel):
    kind: str
    value: str
    valid: bool
    legacy: bool
    code: str | None
    reason: dict[str, str] | None
    details: dict[str, Any]


@router.post("/check", response_model=CheckOut)
def check(body: CheckIn, _: Principal = Depends(current_principal)) -> CheckOut:
    if body.kind == "cccd":
        result = ids.check_cccd(body.value, sex=body.sex, birth_year=body.birth_year)
    elif body.kind == "bhyt":
        result = ids.check_bhyt(body.value)
    elif body.kind == "bhxh":
        result = ids.check_bhxh(body.value)
    else:
        result = ids.check_facility_code(body.value)
    return CheckOut(
        kind=result.kind,
        value=result.value,
        valid=result.valid,
        legacy=result.legacy,
        code=result.code,
        reason={"vi": result.reason.vi, "en": result.reason.en} if result.reason else None,
        details=result.details,
    )
