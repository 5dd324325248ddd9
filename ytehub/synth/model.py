"""The synthetic province's data model: the contract between its generators.

Everything here is *ground truth*: the real (synthetic) person behind every record. What a
facility writes down about a person — possibly with defects — is a :class:`PatientIdentity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal

Sex = Literal["male", "female"]
FacilityLevel = Literal[
    "provincial_hospital",
    "regional_hospital",
    "medical_centre",
    "commune_station",
    "private_clinic",
]


@dataclass(slots=True)
class Person:
    """One synthetic resident (ground truth)."""

    person_id: str  # stable ground-truth id, e.g. "P00000042"
    household_id: str
    family_name: str  # họ
    middle_name: str  # tên đệm (may be empty)
    given_name: str  # tên
    sex: Sex
    birth_date: date
    birth_time: time | None  # known for people born during the simulated period
    birth_province_code: str  # old 63-province code of birth registration (drives the CCCD)
    province_code: str  # current (2025) province of residence
    commune_code: str  # current (2025) commune of residence, 5 digits
    street_address: str  # house number and street / hamlet, without commune and province
    cccd: str | None  # 12-digit personal id number (assigned at birth registration)
    cmnd: str | None  # legacy 9-digit id, for some older adults
    bhyt_card: str | None  # 15-character insurance card number, None if uninsured
    bhyt_registered_facility: str | None  # MA_DKBD: facility of initial registration
    bhxh_number: str  # 10-digit social-insurance number
    phone: str | None
    ethnicity_code: str  # MA_DANTOC (2 digits, "01" = Kinh)
    occupation_code: str  # MA_NGHE_NGHIEP
    nationality_code: str = "000"  # MA_QUOCTICH
    death_date: date | None = None
    mother_id: str | None = None  # set for people born during the period
    twin_of: str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(
            part for part in (self.family_name, self.middle_name, self.given_name) if part
        )

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


@dataclass(slots=True)
class Facility:
    """A health facility with its 5-digit code (mã cơ sở KBCB)."""

    code: str
    name: str
    level: FacilityLevel
    province_code: str
    commune_code: str
    latitude: float
    longitude: float
    beds: int = 0


@dataclass(slots=True)
class Practitioner:
    practitioner_id: str
    full_name: str
    sex: Sex
    facility_code: str
    certificate_number: str  # practising certificate (CCHN), e.g. "0012345/HCM-CCHN"
    department_code: str  # MA_KHOA, e.g. "K01"
    bhxh_number: str  # mã định danh y tế (MA_BS / MA_TTDV use it)


@dataclass(slots=True)
class PatientIdentity:
    """What one facility recorded about a person: the administrative part of XML1, possibly
    with defects. ``person_id`` is ground truth and is never written to a facility file."""

    person_id: str
    facility_code: str
    ma_bn: str  # the facility's own patient id
    ho_ten: str
    so_cccd: str  # may be "", a CMND, or a CCCD with a typo
    ngay_sinh: str  # yyyymmddHHMM with 0000 for unknown parts
    gioi_tinh: str  # "1" male, "2" female, "3" unknown
    ma_quoctich: str
    ma_dantoc: str
    ma_nghe_nghiep: str
    dia_chi: str  # free-text address as written
    matinh_cu_tru: str
    mahuyen_cu_tru: str  # empty after 2025; old district code in legacy-address defects
    maxa_cu_tru: str
    dien_thoai: str
    ma_the_bhyt: str  # "" when uninsured
    ma_dkbd: str
    gt_the_tu: str  # yyyymmdd
    gt_the_den: str  # yyyymmdd
    defects: tuple[str, ...] = ()  # names of the defects applied (ground truth)


@dataclass(slots=True)
class Outbreak:
    """An injected local outbreak (ground truth for detection tests)."""

    outbreak_id: str
    icd10: str
    communes: tuple[str, ...]
    start: date
    end: date
    extra_cases: int


@dataclass(slots=True)
class Episode:
    """One treatment episode (MA_LK) with its rows per QĐ 4750 table.

    ``tables`` maps a table name ("XML1" … "XML15") to its rows; each row maps element names
    to already formatted string values (money "123.00", quantities "1.000", dates as
    yyyymmddHHMM). XML1, XML7, XML8, XML13 and XML14 have at most one row.
    """

    ma_lk: str
    facility_code: str
    person_id: str  # ground truth
    admitted: datetime
    discharged: datetime
    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    outbreak_id: str | None = None

    def row_count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())
