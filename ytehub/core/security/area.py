"""Area scope (phạm vi địa bàn): the whole province, a list of communes, or one facility."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ytehub.core.errors import DomainError, Text


@dataclass(frozen=True, slots=True)
class AreaScope:
    kind: str  # "province" | "communes" | "facility"
    codes: tuple[str, ...] = ()

    @classmethod
    def province(cls) -> AreaScope:
        return cls("province")

    @classmethod
    def communes(cls, codes: Iterable[str]) -> AreaScope:
        return cls("communes", tuple(sorted(set(codes))))

    @classmethod
    def facility(cls, code: str) -> AreaScope:
        return cls("facility", (code,))

    @classmethod
    def from_parts(cls, kind: str, codes: Iterable[str]) -> AreaScope:
        codes = tuple(codes)
        if kind == "province" and not codes:
            return cls.province()
        if kind == "communes" and codes:
            return cls.communes(codes)
        if kind == "facility" and len(codes) == 1:
            return cls.facility(codes[0])
        raise DomainError(
            "area.invalid",
            Text(
                "Phạm vi địa bàn không hợp lệ: toàn tỉnh (không mã), danh sách xã (ít nhất một mã)"
                " hoặc một cơ sở (đúng một mã).",
                "Invalid area scope: province (no codes), communes (at least one code) or"
                " facility (exactly one code).",
            ),
            field="area",
            value={"kind": kind, "codes": list(codes)},
        )

    def covers_commune(self, commune_code: str) -> bool:
        return self.kind == "province" or (self.kind == "communes" and commune_code in self.codes)

    def covers_facility(self, facility_code: str, facility_commune: str | None = None) -> bool:
        if self.kind == "facility":
            return facility_code in self.codes
        return self.kind == "province" or (
            facility_commune is not None and self.covers_commune(facility_commune)
        )

    def contains(self, other: AreaScope) -> bool:
        """Whether everything ``other`` reaches is inside this scope (for delegating access)."""
        if self.kind == "province":
            return True
        if self.kind == "communes":
            return other.kind == "communes" and set(other.codes) <= set(self.codes)
        return other == self

    def as_claim(self) -> dict[str, object]:
        return {"kind": self.kind, "codes": list(self.codes)}

    def describe(self) -> Text:
        if self.kind == "province":
            return Text("Toàn tỉnh", "Whole province")
        joined = ", ".join(self.codes)
        if self.kind == "communes":
            return Text(f"Xã/phường: {joined}", f"Communes: {joined}")
        return Text(f"Cơ sở: {joined}", f"Facility: {joined}")
