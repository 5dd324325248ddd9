"""Source records as the matcher sees them: names folded and split, dates in parts, identifiers
cleaned, legacy communes converted. Pure functions over plain data.

A facility writes "NGUYEN VAN AN", "Nguyễn Văn  An" or "Nguyen An"; a birth date as
``198503150000``, ``198500000000`` (year only) or with day and month swapped; the CCCD field
may hold a CCCD, the old 9-digit CMND, a passport number or nothing; a commune code may be
pre-2025. Everything here makes those comparable without losing what was written.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from ytehub.core import units
from ytehub.core.errors import Text

_DIGITS = re.compile(r"\D")
_WORD = re.compile(r"[^a-z ]")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One facility's (or the register's) record of a person, normalised.

    ``system`` and ``local_id`` say where it comes from (a facility code and its MA_BN, or
    ``register`` and a CCCD). Name parts are folded (no diacritics, lower case); ``None``
    means unknown, never "disagrees".
    """

    system: str
    local_id: str
    name: str | None = None  # folded full name, parts separated by single spaces
    family: str | None = None  # họ
    middle: str | None = None  # tên đệm (may be several words)
    given: str | None = None  # tên
    birth_year: int | None = None
    birth_month: int | None = None
    birth_day: int | None = None
    sex: str | None = None  # "male", "female"
    cccd: str | None = None  # 12 digits
    cmnd: str | None = None  # 9 digits (legacy)
    passport: str | None = None
    bhxh: str | None = None  # 10 digits: the social-insurance number, also inside the BHYT card
    bhyt_card: str | None = None  # 15 characters as written
    commune: str | None = None  # 2025 commune code
    phone: str | None = None  # 10 digits starting with 0
    display_name: str | None = None  # as written, for people to read
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def birth_date(self) -> str | None:
        """ISO date, or the known part of it (``1985``, ``1985-03``)."""
        if self.birth_year is None:
            return None
        parts = [f"{self.birth_year:04d}"]
        if self.birth_month is not None:
            parts.append(f"{self.birth_month:02d}")
            if self.birth_day is not None:
                parts.append(f"{self.birth_day:02d}")
        return "-".join(parts)

    def identifying_gap(self) -> Text | None:
        """Why this record cannot be matched to anyone, or None when it can."""
        if self.cccd or self.cmnd or self.passport or self.bhxh:
            return None
        if self.given and self.birth_year is not None:
            return None
        return Text(
            "Bản ghi không có gì để nhận diện: cần số CCCD/CMND, hộ chiếu, mã BHXH/thẻ BHYT,"
            " hoặc họ tên cùng năm sinh.",
            "The record has nothing identifying: it needs a CCCD/CMND, passport, BHXH number or"
            " BHYT card, or a name with a birth year.",
        )

    def plain(self) -> dict[str, Any]:
        return asdict(self)


def fold_name(text: str | None) -> str | None:
    """Folded name: no diacritics, lower case, letters and single spaces only."""
    if not text:
        return None
    folded = _WORD.sub(" ", units.fold(text))
    folded = " ".join(folded.split())
    return folded or None


def split_name(folded: str | None) -> tuple[str | None, str | None, str | None]:
    """(family, middle, given) of a folded Vietnamese name: first word, last word, the rest."""
    if not folded:
        return None, None, None
    words = folded.split(" ")
    if len(words) == 1:
        return None, None, words[0]
    middle = " ".join(words[1:-1]) or None
    return words[0], middle, words[-1]


def parse_birth(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(year, month, day) from ``yyyymmdd[HHMM]`` or ISO ``yyyy[-mm[-dd]]``; ``00`` is unknown.

    A day and month that make no date (31 February) keep the year only."""
    if not value:
        return None, None, None
    digits = _DIGITS.sub("", value)
    if len(digits) < 4:
        return None, None, None
    year = int(digits[:4])
    if not 1880 <= year <= 2100:
        return None, None, None
    month = int(digits[4:6]) if len(digits) >= 6 else 0
    day = int(digits[6:8]) if len(digits) >= 8 else 0
    if not 1 <= month <= 12:
        return year, None, None
    if not 1 <= day <= _days_in(year, month):
        return year, month, None
    return year, month, day


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_sex(value: str | None) -> str | None:
    text = (value or "").strip().lower()
    if text in ("1", "male", "nam", "m"):
        return "male"
    if text in ("2", "female", "nu", "nữ", "f"):
        return "female"
    return None


def split_document(value: str | None) -> tuple[str | None, str | None, str | None]:
    """(cccd, cmnd, passport) from what a CCCD field holds: 12 digits, 9 digits, or else."""
    text = (value or "").strip().upper().replace(" ", "")
    if not text:
        return None, None, None
    if text.isdigit():
        if len(text) == 12:
            return text, None, None
        if len(text) == 9:
            return None, text, None
        return None, None, None  # a number of no known kind: not evidence either way
    if text.isalnum() and 6 <= len(text) <= 12:
        return None, None, text
    return None, None, None


def bhxh_of(card: str | None) -> str | None:
    """The 10-digit social-insurance number: the card's last ten characters, or the number."""
    text = (card or "").strip().upper()
    tail = text[-10:]
    if len(text) in (10, 15) and tail.isdigit() and tail != "0" * 10:
        return tail
    return None


def clean_phone(value: str | None) -> str | None:
    digits = _DIGITS.sub("", value or "")
    if digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    return digits if len(digits) == 10 and digits.startswith("0") else None


@lru_cache(maxsize=20_000)
def current_commune(code: str | None) -> str | None:
    """The 2025 commune for a current or pre-2025 five-digit code; None when unknown."""
    text = (code or "").strip()
    if not text.isdigit():
        return None
    text = text.zfill(5)
    if units.commune(text) is not None:
        return text
    converted = units.convert_legacy_commune(text)
    if converted is not None and converted.commune is not None:
        return converted.commune.code
    return None


def record(
    system: str,
    local_id: str,
    *,
    name: str | None = None,
    birth: str | None = None,
    sex: str | None = None,
    document: str | None = None,
    cccd: str | None = None,
    cmnd: str | None = None,
    passport: str | None = None,
    bhyt_card: str | None = None,
    bhxh: str | None = None,
    commune: str | None = None,
    phone: str | None = None,
    extra: dict[str, Any] | None = None,
) -> SourceRecord:
    """Normalise one record from its written fields (any may be missing)."""
    folded = fold_name(name)
    family, middle, given = split_name(folded)
    year, month, day = parse_birth(birth)
    doc_cccd, doc_cmnd, doc_passport = split_document(document)
    clean_cccd = split_document(cccd)[0] if cccd else doc_cccd
    clean_cmnd = split_document(cmnd)[1] if cmnd else doc_cmnd
    return SourceRecord(
        system=system,
        local_id=local_id,
        name=folded,
        family=family,
        middle=middle,
        given=given,
        birth_year=year,
        birth_month=month,
        birth_day=day,
        sex=parse_sex(sex),
        cccd=clean_cccd,
        cmnd=clean_cmnd,
        passport=(passport or "").strip().upper() or doc_passport,
        bhxh=bhxh_of(bhxh) or bhxh_of(bhyt_card),
        bhyt_card=(bhyt_card or "").strip().upper() or None,
        commune=current_commune(commune),
        phone=clean_phone(phone),
        display_name=" ".join((name or "").split()) or None,
        extra=extra or {},
    )


def from_xml1(facility_code: str, fields: dict[str, str]) -> SourceRecord:
    """A QĐ 4750 XML1 row (HO_TEN, NGAY_SINH, GIOI_TINH, SO_CCCD, MA_THE_BHYT, MAXA_CU_TRU,
    DIEN_THOAI, MA_BN)."""
    return record(
        facility_code,
        fields.get("MA_BN", ""),
        name=fields.get("HO_TEN"),
        birth=fields.get("NGAY_SINH"),
        sex=fields.get("GIOI_TINH"),
        document=fields.get("SO_CCCD"),
        bhyt_card=(fields.get("MA_THE_BHYT") or "").split(";")[0],
        commune=fields.get("MAXA_CU_TRU"),
        phone=fields.get("DIEN_THOAI"),
    )


SID_CCCD = "urn:ytehub:sid:cccd"
SID_CMND = "urn:ytehub:sid:cmnd"
SID_BHYT = "urn:ytehub:sid:bhyt"
SID_BHXH = "urn:ytehub:sid:bhxh"
SID_PASSPORT = "urn:ytehub:sid:passport"
SID_FACILITY_PREFIX = "urn:ytehub:sid:ma-bn:"  # + facility code
COMMUNE_EXTENSION = "urn:ytehub:ext:commune-code"


def from_patient(patient: dict[str, Any], system: str = "fhir") -> SourceRecord:
    """A FHIR Patient (as sent to $match, or stored): identifiers by our system URIs."""
    identifiers: dict[str, str] = {}
    local_id, local_system = str(patient.get("id") or ""), system
    for identifier in patient.get("identifier") or []:
        if not isinstance(identifier, dict):
            continue
        sid, value = str(identifier.get("system") or ""), str(identifier.get("value") or "")
        identifiers.setdefault(sid, value)
        if sid.startswith(SID_FACILITY_PREFIX) and value:
            local_system, local_id = sid.removeprefix(SID_FACILITY_PREFIX), value
    name = None
    for entry in patient.get("name") or []:
        if isinstance(entry, dict):
            name = entry.get("text") or " ".join(
                [entry.get("family") or "", *(entry.get("given") or [])]
            )
            break
    commune = phone = None
    for address in patient.get("address") or []:
        for extension in (address.get("extension") or []) if isinstance(address, dict) else []:
            if isinstance(extension, dict) and extension.get("url") == COMMUNE_EXTENSION:
                commune = extension.get("valueCode") or extension.get("valueString")
    for telecom in patient.get("telecom") or []:
        if isinstance(telecom, dict) and telecom.get("system") == "phone":
            phone = telecom.get("value")
            break
    gender = patient.get("gender")
    return record(
        local_system,
        local_id,
        name=name,
        birth=patient.get("birthDate"),
        sex={"male": "1", "female": "2"}.get(str(gender)),
        cccd=identifiers.get(SID_CCCD),
        cmnd=identifiers.get(SID_CMND),
        passport=identifiers.get(SID_PASSPORT),
        bhyt_card=identifiers.get(SID_BHYT),
        bhxh=identifiers.get(SID_BHXH),
        commune=commune,
        phone=phone,
    )


def from_identity(identity: Any) -> SourceRecord:
    """A facility's record as the synthetic province writes it (``PatientIdentity``): the XML1
    administrative fields, so the registry sees exactly what ingest will see."""
    return from_xml1(
        identity.facility_code,
        {
            "MA_BN": identity.ma_bn,
            "HO_TEN": identity.ho_ten,
            "NGAY_SINH": identity.ngay_sinh,
            "GIOI_TINH": identity.gioi_tinh,
            "SO_CCCD": identity.so_cccd,
            "MA_THE_BHYT": identity.ma_the_bhyt,
            "MAXA_CU_TRU": identity.maxa_cu_tru,
            "DIEN_THOAI": identity.dien_thoai,
        },
    )
