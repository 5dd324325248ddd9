"""Synthetic health facilities and health workers for one province.

Every commune has a commune health station (trạm y tế); groups of communes share a medical
centre (trung tâm y tế); each former province (before the 2025 merger) has a regional general
hospital; the province has a few provincial hospitals; private clinics sit in the wards.
Names are invented and generic — never those of real facilities.

Facility codes are five digits: the old province code (what codes issued before the merger
carry) and a three-digit serial, as in the observed ``01929`` or ``94170`` — a convention the
reference notes mark unconfirmed.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from ytehub.core import units
from ytehub.core.units import fold
from ytehub.synth.model import Facility, Practitioner, Sex

COMMUNES_PER_CENTRE = 8
COMMUNES_PER_CLINIC = 4
STAFF = {  # practitioners per facility level (min, max)
    "provincial_hospital": (30, 45),
    "regional_hospital": (15, 25),
    "medical_centre": (8, 14),
    "commune_station": (2, 4),
    "private_clinic": (2, 4),
}
BEDS = {
    "provincial_hospital": (500, 1200),
    "regional_hospital": (150, 400),
    "medical_centre": (50, 150),
    "commune_station": (3, 8),
    "private_clinic": (0, 5),
}
# Department codes (MA_KHOA, QĐ 5937 Phụ lục 5 style) by level: a plausible subset.
DEPARTMENTS = {
    "provincial_hospital": ("K01", "K02", "K03", "K19", "K26", "K27", "K35", "K48"),
    "regional_hospital": ("K01", "K02", "K03", "K19", "K26", "K35"),
    "medical_centre": ("K01", "K02", "K03", "K26"),
    "commune_station": ("K01",),
    "private_clinic": ("K01",),
}
PROVINCIAL = (
    "Bệnh viện Đa khoa Trung tâm {p}",
    "Bệnh viện Nhi đồng {p}",
    "Bệnh viện Sản – Nhi {p}",
    "Bệnh viện Bệnh Nhiệt đới {p}",
)
FAMILY = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Huỳnh",
    "Hoàng",
    "Phan",
    "Võ",
    "Vũ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
)
MIDDLE = {
    "male": ("Văn", "Minh", "Quốc", "Đức", "Thanh", "Hữu"),
    "female": ("Thị", "Ngọc", "Thanh", "Minh", "Thu", "Kim"),
}
GIVEN = {
    "male": (
        "An",
        "Bình",
        "Dũng",
        "Hải",
        "Hùng",
        "Khoa",
        "Long",
        "Nam",
        "Phúc",
        "Quân",
        "Sơn",
        "Tâm",
        "Thành",
        "Trung",
        "Tuấn",
        "Việt",
    ),
    "female": (
        "Anh",
        "Châu",
        "Hà",
        "Hạnh",
        "Hương",
        "Lan",
        "Linh",
        "Mai",
        "My",
        "Ngân",
        "Nhung",
        "Phương",
        "Thảo",
        "Trang",
        "Vy",
        "Yến",
    ),
}


@dataclass(slots=True)
class Workforce:
    facilities: list[Facility]
    practitioners: list[Practitioner]

    def by_facility(self) -> dict[str, list[Practitioner]]:
        grouped: dict[str, list[Practitioner]] = defaultdict(list)
        for practitioner in self.practitioners:
            grouped[practitioner.facility_code].append(practitioner)
        return grouped


def issuer_code(province_name: str) -> str:
    """Short code of the issuing health department in a CCHN number ("HCM", "HN", "TQ")."""
    words = fold(province_name).replace("thanh pho ", "").replace("tinh ", "").split()
    return "".join(word[0] for word in words).upper()


def _short(name: str) -> str:
    return name.replace("Thành phố ", "").replace("Tỉnh ", "")


def _position(rng: random.Random, commune_code: str) -> tuple[float, float]:
    geo = units.commune_geo(commune_code)
    if geo is None:
        raise ValueError(f"no position known for commune {commune_code}")
    radius = math.sqrt(max(geo.area_km2, 0.5)) / 2 / 111.0  # degrees, about half the side
    return (
        round(geo.latitude + rng.uniform(-radius, radius) * 0.6, 6),
        round(geo.longitude + rng.uniform(-radius, radius) * 0.6, 6),
    )


class _CodeBook:
    """Hands out unique five-digit codes per old-province prefix."""

    def __init__(self) -> None:
        self.next: dict[str, int] = defaultdict(lambda: 1)

    def take(self, prefix: str) -> str:
        serial = self.next[prefix]
        if serial > 999:
            raise ValueError(f"more than 999 facilities under prefix {prefix}")
        self.next[prefix] = serial + 1
        return f"{prefix}{serial:03d}"


def generate_facilities(province_code: str, seed: int) -> Workforce:
    """Facilities and practitioners of one province, deterministic from ``seed``."""
    province = units.province(province_code)
    if province is None:
        raise ValueError(f"unknown province {province_code}")
    rng = random.Random(f"facilities:{province_code}:{seed}")
    communes = units.communes(province_code)
    codes = _CodeBook()
    facilities: list[Facility] = []

    def add(level: str, name: str, commune: units.Commune) -> None:
        prefix = units.origin_province(commune.code) or province_code
        latitude, longitude = _position(rng, commune.code)
        low, high = BEDS[level]
        facilities.append(
            Facility(
                code=codes.take(prefix),
                name=name,
                level=level,  # type: ignore[arg-type]
                province_code=province_code,
                commune_code=commune.code,
                latitude=latitude,
                longitude=longitude,
                beds=rng.randint(low, high),
            )
        )

    by_origin: dict[str, list[units.Commune]] = defaultdict(list)
    for commune in communes:
        by_origin[units.origin_province(commune.code) or province_code].append(commune)
    wards = [c for c in communes if c.kind == "phường"] or communes
    central = wards[len(wards) // 2]
    for template in PROVINCIAL[: 2 + (len(communes) > 60) + (len(communes) > 120)]:
        add(
            "provincial_hospital",
            template.format(p=province.name.replace("Thành phố ", "")),
            central,
        )
    for origin, members in sorted(by_origin.items()):
        label = _short(units.legacy_province_name(origin) or province.name)
        add("regional_hospital", f"Bệnh viện Đa khoa khu vực {label}", members[len(members) // 3])
        for start in range(0, len(members), COMMUNES_PER_CENTRE):
            group = members[start : start + COMMUNES_PER_CENTRE]
            add("medical_centre", f"Trung tâm Y tế khu vực {group[0].name}", group[0])
    for commune in communes:
        add("commune_station", f"Trạm Y tế {commune.name}", commune)
    for index, commune in enumerate(wards[::COMMUNES_PER_CLINIC]):
        add(
            "private_clinic", f"Phòng khám Đa khoa Tư nhân số {index + 1} – {commune.name}", commune
        )

    issuer = issuer_code(province.name)
    practitioners = list(_practitioners(rng, facilities, issuer))
    return Workforce(facilities, practitioners)


def _practitioners(
    rng: random.Random, facilities: list[Facility], issuer: str
) -> Iterator[Practitioner]:
    serial = 0
    for facility in facilities:
        low, high = STAFF[facility.level]
        departments = DEPARTMENTS[facility.level]
        for n in range(rng.randint(low, high)):
            serial += 1
            sex: Sex = "female" if rng.random() < 0.55 else "male"
            name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE[sex])} {rng.choice(GIVEN[sex])}"
            yield Practitioner(
                practitioner_id=f"D{serial:06d}",
                full_name=name,
                sex=sex,
                facility_code=facility.code,
                certificate_number=f"{rng.randint(1, 99999):07d}/{issuer}-CCHN",
                department_code=departments[n % len(departments)],
                bhxh_number=f"{facility.code[:2]}{rng.randint(0, 99_999_999):08d}",
            )
