"""The personal health record (hồ sơ sức khỏe điện tử): one person's data, read like the form.

Commune health stations and family doctors keep a personal health record on the Ministry of
Health's template, QĐ 831/QĐ-BYT (11/03/2017) "Mẫu hồ sơ quản lý sức khỏe cá nhân phục vụ chăm
sóc sức khỏe ban đầu". The platform holds the same facts as FHIR R4 resources scattered over
many facilities; :func:`build_record` gathers one person's compartment into a summary organised
by the template's parts, so a clinician (or the citizen) reads what the paper form would show,
and :meth:`PersonalRecord.as_document_bundle` hands the same summary on as a FHIR document.

Section layout (QĐ 831 has four parts; the field-level form was not obtained, see
``/work/shared/reference/vn-formats.md`` §4.1):

====================  ==========================================  =============================
section code          title                                       QĐ 831 part
====================  ==========================================  =============================
``administrative``    Thông tin hành chính                        Part 1
``history``           Tiền sử và các yếu tố liên quan đến sức     Part 2 (allergies, illness
                      khỏe                                        history, surgery, family
                                                                  history, risk factors)
``immunizations``     Tiêm chủng                                  Part 3
``encounters``        Khám bệnh, chữa bệnh                        Part 4 (split: **ytehub**)
``medications``       Thuốc đã dùng                               Part 4 (split: **ytehub**)
``results``           Kết quả xét nghiệm, cận lâm sàng            Part 4 (split: **ytehub**)
====================  ==========================================  =============================

Splitting part 4 ("Khám lâm sàng và cận lâm sàng") into encounters, medications and results
follows the data groups of the VNeID health book (QĐ 31/QĐ-BYT 2026, §4.2), not the 831 text.
Other **unconfirmed** choices: blood group shown with the administrative data; procedures as
"tiền sử phẫu thuật"; the chronic-disease ICD-10 list (:data:`CHRONIC_ICD10`).

Inputs: the kinds in :data:`SECTION_TYPES` feed sections; Medication, Organization,
Location, Practitioner and PractitionerRole only name things; every other kind (ServiceRequest:
an order is not a result, Coverage, Basic…) is ignored. Chronic disease: a Condition coded in
:data:`CHRONIC_ICD10` whatever its clinical status (hypertension stays part of the history when
controlled), or an active problem-list item; refuted and entered-in-error records are dropped.

Everything here is pure: no database, no network, no clock unless ``as_of`` is omitted.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Protocol

from ytehub.core.errors import Text
from ytehub.core.units import commune as find_commune
from ytehub.core.units import province as find_province
from ytehub.records.errors import FhirError
from ytehub.records.fhirdate import VIETNAM_TZ, DateRange, parse_fhir_date

__all__ = [
    "CHRONIC_ICD10",
    "DOCUMENT_CODE_SYSTEM",
    "EXT_COMMUNE",
    "SECTION_CODE_SYSTEM",
    "SID_BHYT",
    "SID_CCCD",
    "AddressItem",
    "Administrative",
    "AllergyItem",
    "AppointmentItem",
    "ChronicCondition",
    "Code",
    "ConditionItem",
    "ContactItem",
    "DocumentItem",
    "EncounterItem",
    "Encounters",
    "ExtensionValue",
    "FamilyHistoryItem",
    "History",
    "IdentifierItem",
    "ImmunizationDose",
    "Immunizations",
    "MedicationItem",
    "Medications",
    "PersonalRecord",
    "ProcedureItem",
    "ReportItem",
    "ResultItem",
    "Results",
    "RiskFactorItem",
    "Section",
    "Table",
    "TimelineEvent",
    "VaccineGroup",
    "build_record",
    "display_date",
    "display_period",
]

# --------------------------------------------------------------------------------------
# Systems and codes
# --------------------------------------------------------------------------------------

SID_CCCD = "urn:ytehub:sid:cccd"
SID_BHYT = "urn:ytehub:sid:bhyt"
SID_SITE_PATIENT = "urn:ytehub:sid:site-patient-id"
EXT_COMMUNE = "urn:ytehub:ext:commune-code"
SECTION_CODE_SYSTEM = "urn:ytehub:cs:phr-section"
"""ytehub's code system for the record's sections (codes in the module docstring)."""
DOCUMENT_CODE_SYSTEM = "urn:ytehub:cs:phr-document"
"""ytehub's code system for document types; ``qd831`` is the QĐ 831 personal health record."""

LOINC = "http://loinc.org"
ICD10_OID = "urn:oid:2.16.840.1.113883.6.3"
TCMR_VACCINE_SYSTEM = "urn:ytehub:cs:tcmr-vaccine"
CVX_SYSTEM = "http://hl7.org/fhir/sid/cvx"
_EMPTY_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ytehub:phr")
_NONE = "—"

SECTION_TYPES: frozenset[str] = frozenset(
    {
        "AllergyIntolerance",
        "Appointment",
        "Composition",
        "Condition",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "FamilyMemberHistory",
        "Immunization",
        "MedicationDispense",
        "MedicationRequest",
        "Observation",
        "Procedure",
    }
)
"""Resource types that feed a section."""

_LOOKUP_TYPES: frozenset[str] = frozenset(
    {"Medication", "Organization", "Location", "Practitioner", "PractitionerRole"}
)
"""Resource types used only to name things (a drug, a facility, a doctor)."""

CHRONIC_ICD10: tuple[tuple[str, str, Text], ...] = (
    ("A15", "A19", Text("Lao", "Tuberculosis")),
    ("B18", "B18", Text("Viêm gan virus mạn tính", "Chronic viral hepatitis")),
    ("B20", "B24", Text("Bệnh do HIV", "HIV disease")),
    ("C00", "D48", Text("Khối u", "Neoplasms")),
    ("E10", "E14", Text("Đái tháo đường", "Diabetes mellitus")),
    ("F20", "F29", Text("Tâm thần phân liệt, rối loạn loạn thần", "Schizophrenia, psychoses")),
    ("G40", "G41", Text("Động kinh", "Epilepsy")),
    ("I10", "I15", Text("Tăng huyết áp", "Hypertension")),
    ("I20", "I25", Text("Bệnh tim thiếu máu cục bộ", "Ischaemic heart disease")),
    ("I50", "I50", Text("Suy tim", "Heart failure")),
    ("J44", "J45", Text("Bệnh phổi tắc nghẽn mạn tính, hen", "COPD, asthma")),
    ("K74", "K74", Text("Xơ gan", "Hepatic fibrosis and cirrhosis")),
    ("N18", "N18", Text("Bệnh thận mạn", "Chronic kidney disease")),
)
"""ICD-10 ranges (inclusive, by three-character category) counted as chronic disease.

The ranges named in the platform brief, plus I20–I25, I50 and K74 (ytehub additions, common
long-term conditions managed at primary care). Not taken from an official list
(**unconfirmed**: TT 46/2016/TT-BYT "danh mục bệnh dài ngày" was not read)."""

# --------------------------------------------------------------------------------------
# Small helpers over plain JSON
# --------------------------------------------------------------------------------------


def _s(value: Any) -> str | None:
    """A non-empty stripped string, or None: FHIR JSON from facilities is rarely tidy."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in _list(value) if isinstance(v, dict)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt_number(value: Any) -> str:
    """A quantity's number as written (``45``, ``36.8``), never ``45.0``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _join(parts: Iterable[str | None], sep: str = ", ") -> str:
    return sep.join(p for p in parts if p)


def _dedupe(items: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _code_of(concept: Any) -> str | None:
    """The first coding's code of a CodeableConcept (or of a bare Coding)."""
    concept = _dict(concept)
    if _s(concept.get("code")):
        return _s(concept.get("code"))
    for coding in _dicts(concept.get("coding")):
        if code := _s(coding.get("code")):
            return code
    return None


def _codes_of(concepts: Any) -> set[str]:
    """Every code in a list of CodeableConcepts (categories, mostly)."""
    codes: set[str] = set()
    for concept in _dicts(concepts):
        for coding in _dicts(concept.get("coding")):
            if code := _s(coding.get("code")):
                codes.add(code)
    return codes


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------


def _range(value: Any) -> DateRange | None:
    """The instants a FHIR date value covers; None for missing or malformed values."""
    text = _s(value)
    if text is None:
        return None
    try:
        return parse_fhir_date(text)
    except FhirError:
        return None


def _newest_first_key(value: str | None) -> tuple[int, float, float]:
    """Sort key putting the newest value first and undated ones last.

    A partial date ("2025-08") sorts by its first instant, so within that month it follows
    the fully dated events; ties keep their input order (the sorts are stable)."""
    found = _range(value)
    if found is None:
        return (1, 0.0, 0.0)
    return (0, -found.low.timestamp(), -found.high.timestamp())


def _oldest_first_key(value: str | None) -> tuple[int, float, float]:
    found = _range(value)
    if found is None:
        return (1, 0.0, 0.0)
    return (0, found.low.timestamp(), found.high.timestamp())


def display_date(value: str | None, lang: str = "vi") -> str:
    """A FHIR date for people: ``10/08/2025``, ``08/2025``, ``1990`` (``2025-08-10`` in English).

    Times are shown in Vietnam time. A value that does not parse is shown as written."""
    text = _s(value)
    if text is None:
        return ""
    found = _range(text)
    if found is None:
        return text
    local = found.low.astimezone(VIETNAM_TZ)
    en = lang == "en"
    if found.precision == "year":
        return f"{local.year:04d}"
    if found.precision == "month":
        return (
            f"{local.year:04d}-{local.month:02d}" if en else f"{local.month:02d}/{local.year:04d}"
        )
    day = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        if en
        else f"{local.day:02d}/{local.month:02d}/{local.year:04d}"
    )
    if found.precision == "day":
        return day
    return f"{day} {local.hour:02d}:{local.minute:02d}"


def display_period(start: str | None, end: str | None, lang: str = "vi") -> str:
    """``start – end`` (either side may be missing)."""
    first, last = display_date(start, lang), display_date(end, lang)
    if first and last:
        if first == last:
            return first
        day, _, time = last.partition(" ")
        if time and first.startswith(day + " "):  # same day: "15/03/2024 08:10–08:40"
            return f"{first}–{time}"
        return f"{first} – {last}"
    if first:
        return first
    return f"– {last}" if last else ""


def _local_date(value: str | None) -> date | None:
    found = _range(value)
    return found.low.astimezone(VIETNAM_TZ).date() if found else None


_DURATION_DAYS: dict[str, float] = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1,
    "day": 1,
    "days": 1,
    "ngày": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "tuần": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "tháng": 30,
    "a": 365,
    "year": 365,
    "years": 365,
    "năm": 365,
}


def _duration_days(quantity: Any) -> float | None:
    """A Duration/Quantity in days (``{"value": 7, "code": "d"}`` → 7)."""
    quantity = _dict(quantity)
    value = _number(quantity.get("value"))
    unit = (_s(quantity.get("code")) or _s(quantity.get("unit")) or "d").lower()
    factor = _DURATION_DAYS.get(unit)
    if value is None or factor is None or value <= 0:
        return None
    return value * factor


def _add_days(start: str | None, days: float | None) -> str | None:
    """The last calendar day of a course of ``days`` days starting on ``start``."""
    first = _local_date(start)
    if first is None or days is None or days > 36_600:  # a century: a data error, not a course
        return None
    try:
        return (first + timedelta(days=max(math.ceil(days), 1) - 1)).isoformat()
    except OverflowError:
        return None


# --------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------

_SEX: dict[str, Text] = {
    "male": Text("Nam", "Male"),
    "female": Text("Nữ", "Female"),
    "other": Text("Khác", "Other"),
    "unknown": Text("Không rõ", "Unknown"),
}

_ENCOUNTER_CLASS: dict[str, tuple[Text, Text]] = {
    # code: (class label, event label for the timeline)
    "AMB": (Text("Ngoại trú", "Outpatient"), Text("Khám ngoại trú", "Outpatient visit")),
    "IMP": (Text("Nội trú", "Inpatient"), Text("Điều trị nội trú", "Inpatient stay")),
    "ACUTE": (Text("Nội trú", "Inpatient"), Text("Điều trị nội trú", "Inpatient stay")),
    "NONAC": (
        Text("Nội trú (không cấp tính)", "Inpatient (non-acute)"),
        Text("Điều trị nội trú", "Inpatient stay"),
    ),
    "EMER": (Text("Cấp cứu", "Emergency"), Text("Khám cấp cứu", "Emergency visit")),
    "OBSENC": (Text("Lưu theo dõi", "Observation"), Text("Lưu theo dõi", "Observation stay")),
    "SS": (Text("Điều trị ngắn ngày", "Short stay"), Text("Điều trị ngắn ngày", "Short stay")),
    "HH": (Text("Tại nhà", "Home health"), Text("Khám tại nhà", "Home visit")),
    "VR": (Text("Khám từ xa", "Virtual"), Text("Khám từ xa", "Virtual visit")),
    "FLD": (Text("Ngoài cơ sở", "Field"), Text("Khám ngoài cơ sở", "Field visit")),
    "PRENC": (
        Text("Trước nhập viện", "Pre-admission"),
        Text("Khám trước nhập viện", "Pre-admission"),
    ),
}
_INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
_GENERIC_ENCOUNTER = (Text("Không rõ", "Unspecified"), Text("Lượt khám", "Encounter"))

_STATUS: dict[str, Text] = {
    "active": Text("Đang hoạt động", "Active"),
    "inactive": Text("Không hoạt động", "Inactive"),
    "resolved": Text("Đã khỏi", "Resolved"),
    "recurrence": Text("Tái phát", "Recurrence"),
    "relapse": Text("Tái phát", "Relapse"),
    "remission": Text("Thuyên giảm", "Remission"),
    "confirmed": Text("Đã xác định", "Confirmed"),
    "unconfirmed": Text("Chưa xác định", "Unconfirmed"),
    "provisional": Text("Tạm thời", "Provisional"),
    "differential": Text("Chẩn đoán phân biệt", "Differential"),
    "completed": Text("Hoàn thành", "Completed"),
    "not-done": Text("Không thực hiện", "Not done"),
    "in-progress": Text("Đang thực hiện", "In progress"),
    "stopped": Text("Đã ngừng", "Stopped"),
    "on-hold": Text("Tạm ngưng", "On hold"),
    "cancelled": Text("Đã hủy", "Cancelled"),
    "draft": Text("Bản nháp", "Draft"),
    "unknown": Text("Không rõ", "Unknown"),
    "planned": Text("Dự kiến", "Planned"),
    "arrived": Text("Đã đến", "Arrived"),
    "triaged": Text("Đã phân loại", "Triaged"),
    "onleave": Text("Tạm nghỉ", "On leave"),
    "finished": Text("Đã kết thúc", "Finished"),
    "final": Text("Chính thức", "Final"),
    "preliminary": Text("Sơ bộ", "Preliminary"),
    "registered": Text("Đã đăng ký", "Registered"),
    "partial": Text("Một phần", "Partial"),
    "amended": Text("Đã sửa đổi", "Amended"),
    "corrected": Text("Đã đính chính", "Corrected"),
    "appended": Text("Đã bổ sung", "Appended"),
    "booked": Text("Đã đặt lịch", "Booked"),
    "pending": Text("Chờ xác nhận", "Pending"),
    "proposed": Text("Đề xuất", "Proposed"),
    "fulfilled": Text("Đã khám", "Fulfilled"),
    "noshow": Text("Không đến", "No-show"),
    "checked-in": Text("Đã tiếp nhận", "Checked in"),
    "waitlist": Text("Danh sách chờ", "Waitlist"),
    "current": Text("Hiện hành", "Current"),
    "superseded": Text("Đã thay thế", "Superseded"),
    "preparation": Text("Đang chuẩn bị", "Preparation"),
    "declined": Text("Từ chối", "Declined"),
    "health-unknown": Text("Không rõ", "Unknown"),
}

_CRITICALITY: dict[str, Text] = {
    "low": Text("Thấp", "Low"),
    "high": Text("Cao", "High"),
    "unable-to-assess": Text("Không đánh giá được", "Unable to assess"),
}

_ALLERGY_CATEGORY: dict[str, Text] = {
    "food": Text("Thực phẩm", "Food"),
    "medication": Text("Thuốc", "Medication"),
    "environment": Text("Môi trường", "Environment"),
    "biologic": Text("Sinh phẩm", "Biologic"),
}

_SEVERITY: dict[str, Text] = {
    "mild": Text("nhẹ", "mild"),
    "moderate": Text("vừa", "moderate"),
    "severe": Text("nặng", "severe"),
}

_INTERPRETATION: dict[str, Text] = {
    "H": Text("Cao", "High"),
    "HH": Text("Rất cao", "Critically high"),
    "HU": Text("Rất cao", "Significantly high"),
    "L": Text("Thấp", "Low"),
    "LL": Text("Rất thấp", "Critically low"),
    "LU": Text("Rất thấp", "Significantly low"),
    "N": Text("Bình thường", "Normal"),
    "A": Text("Bất thường", "Abnormal"),
    "AA": Text("Bất thường nghiêm trọng", "Critically abnormal"),
    "POS": Text("Dương tính", "Positive"),
    "NEG": Text("Âm tính", "Negative"),
    "DET": Text("Phát hiện", "Detected"),
    "ND": Text("Không phát hiện", "Not detected"),
    "IND": Text("Không xác định", "Indeterminate"),
    ">": Text("Vượt ngưỡng đo", "Above measurable range"),
    "<": Text("Dưới ngưỡng đo", "Below measurable range"),
}

_RELATIONSHIP: dict[str, Text] = {
    "MTH": Text("Mẹ", "Mother"),
    "FTH": Text("Bố", "Father"),
    "PRN": Text("Bố/mẹ", "Parent"),
    "NMTH": Text("Mẹ", "Mother"),
    "NFTH": Text("Bố", "Father"),
    "SIS": Text("Chị/em gái", "Sister"),
    "BRO": Text("Anh/em trai", "Brother"),
    "SIB": Text("Anh/chị/em ruột", "Sibling"),
    "NSIS": Text("Chị/em gái ruột", "Sister"),
    "NBRO": Text("Anh/em trai ruột", "Brother"),
    "GRMTH": Text("Bà", "Grandmother"),
    "GRFTH": Text("Ông", "Grandfather"),
    "MGRMTH": Text("Bà ngoại", "Maternal grandmother"),
    "MGRFTH": Text("Ông ngoại", "Maternal grandfather"),
    "PGRMTH": Text("Bà nội", "Paternal grandmother"),
    "PGRFTH": Text("Ông nội", "Paternal grandfather"),
    "CHILD": Text("Con", "Child"),
    "SON": Text("Con trai", "Son"),
    "DAU": Text("Con gái", "Daughter"),
    "SPS": Text("Vợ/chồng", "Spouse"),
    "HUSB": Text("Chồng", "Husband"),
    "WIFE": Text("Vợ", "Wife"),
    "AUNT": Text("Cô/dì/bác", "Aunt"),
    "UNCLE": Text("Chú/cậu/bác", "Uncle"),
}

_ACT_SITE: dict[str, Text] = {
    "LA": Text("Cánh tay trái", "Left arm"),
    "RA": Text("Cánh tay phải", "Right arm"),
    "LD": Text("Cơ delta trái", "Left deltoid"),
    "RD": Text("Cơ delta phải", "Right deltoid"),
    "LT": Text("Đùi trái", "Left thigh"),
    "RT": Text("Đùi phải", "Right thigh"),
    "LVL": Text("Mặt ngoài đùi trái", "Left vastus lateralis"),
    "RVL": Text("Mặt ngoài đùi phải", "Right vastus lateralis"),
    "LG": Text("Mông trái", "Left gluteus medius"),
    "RG": Text("Mông phải", "Right gluteus medius"),
}

_PERIOD_UNIT: dict[str, Text] = {
    "s": Text("giây", "second"),
    "min": Text("phút", "minute"),
    "h": Text("giờ", "hour"),
    "d": Text("ngày", "day"),
    "wk": Text("tuần", "week"),
    "mo": Text("tháng", "month"),
    "a": Text("năm", "year"),
}

_TOBACCO_LOINC = frozenset({"72166-2", "11367-0", "39240-7", "64234-8", "81228-9"})
_ALCOHOL_LOINC = frozenset({"11331-6", "74013-4", "68518-0", "72109-2", "75626-2", "68519-8"})
_BLOOD_GROUP_LOINC = frozenset({"882-1", "883-9", "10331-7"})
_RISK_KINDS: dict[str, Text] = {
    "tobacco": Text("Hút thuốc lá", "Tobacco use"),
    "alcohol": Text("Rượu, bia", "Alcohol use"),
}


_STATUS_BY_KIND: dict[str, dict[str, Text]] = {
    "condition": {"active": Text("Đang mắc", "Active")},
    "allergy": {"active": Text("Đang có", "Active"), "resolved": Text("Đã hết", "Resolved")},
    "medication": {
        "active": Text("Đang dùng", "Active"),
        "completed": Text("Đã dùng xong", "Completed"),
        "in-progress": Text("Đang cấp", "In progress"),
    },
    "dispense": {"completed": Text("Đã cấp", "Dispensed")},
    "encounter": {"in-progress": Text("Đang điều trị", "In progress")},
    "immunization": {
        "completed": Text("Đã tiêm", "Given"),
        "not-done": Text("Không tiêm", "Not given"),
    },
}


def _status(code: str | None, kind: str = "") -> Text | None:
    """A status code in words; the same code reads differently per resource kind."""
    if code is None:
        return None
    return _STATUS_BY_KIND.get(kind, {}).get(code) or _STATUS.get(code, Text(code, code))


def _medication_status(item: MedicationItem) -> Text | None:
    """An "active" prescription whose course is over reads as ended, not as in use."""
    if not item.current and item.status in ("active", "on-hold"):
        return Text("Đã hết đợt", "Course ended")
    return _status(item.status, "medication" if item.kind == "request" else "dispense")


def _wording(lang: str) -> Callable[[str, str], str]:
    """Pick the Vietnamese or the English of a (vi, en) pair: one choice for every renderer."""
    if lang == "en":
        return lambda vi, en: en
    return lambda vi, en: vi


def _label(text: Text | None, lang: str) -> str:
    return text.in_language(lang) if text is not None else ""


def _same(value: str | None) -> Text | None:
    return Text(value, value) if value else None


# --------------------------------------------------------------------------------------
# The record: a dataclass tree
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    """A coded concept reduced to what a reader needs: one system/code and a label."""

    system: str | None
    code: str | None
    text: str


@dataclass(frozen=True, slots=True)
class IdentifierItem:
    """One identifier of the person; ``kind`` is ``cccd``, ``bhyt``, ``facility`` or ``other``."""

    kind: str
    label: Text
    system: str | None
    value: str
    assigner: str | None
    valid_until: str | None


@dataclass(frozen=True, slots=True)
class AddressItem:
    """An address with the commune and province resolved from the GSO commune code."""

    use: str | None
    text: str
    lines: tuple[str, ...]
    commune_code: str | None
    commune_name: str | None
    province_code: str | None
    province_name: str | None


@dataclass(frozen=True, slots=True)
class ContactItem:
    """A contact person (parent, carer, next of kin)."""

    relationship: str
    name: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class ExtensionValue:
    """A Patient extension carried as text (ethnicity, occupation, anything else present)."""

    url: str
    value: str


@dataclass(frozen=True, slots=True)
class Administrative:
    """Part 1, thông tin hành chính."""

    ref: str
    full_name: str
    family_name: str | None
    given_names: tuple[str, ...]
    sex: str | None
    sex_label: Text | None
    birth_date: str | None
    age_years: int | None
    deceased: bool
    deceased_date: str | None
    identifiers: tuple[IdentifierItem, ...]
    addresses: tuple[AddressItem, ...]
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    ethnicity: str | None
    occupation: str | None
    nationality: str | None
    blood_group: str | None
    primary_care: str | None
    contacts: tuple[ContactItem, ...]
    extensions: tuple[ExtensionValue, ...]
    blood_group_ref: str | None = None

    code: str = field(default="administrative", init=False)
    title: Text = field(
        default=Text("Thông tin hành chính", "Administrative information"), init=False
    )
    qd831_part: int = field(default=1, init=False)
    empty_text: Text = field(
        default=Text("Không có thông tin hành chính.", "No administrative information."),
        init=False,
    )

    @property
    def is_empty(self) -> bool:
        return False

    def identifier(self, kind: str) -> str | None:
        """The first identifier of a kind (``cccd``, ``bhyt``)."""
        return next((i.value for i in self.identifiers if i.kind == kind), None)

    def refs(self) -> tuple[str, ...]:
        return _dedupe([self.ref, self.blood_group_ref])

    def tables(self, lang: str = "vi") -> tuple[Table, ...]:
        t = _wording(lang)

        rows: list[tuple[str, str]] = [
            (t("Họ và tên", "Full name"), self.full_name or _NONE),
            (t("Giới tính", "Sex"), _label(self.sex_label, lang) or _NONE),
        ]
        born = display_date(self.birth_date, lang) or _NONE
        if self.age_years is not None:
            born += t(f" ({self.age_years} tuổi)", f" (age {self.age_years})")
        rows.append((t("Ngày sinh", "Date of birth"), born))
        if self.deceased:
            rows.append(
                (t("Đã mất", "Deceased"), display_date(self.deceased_date, lang) or t("Có", "Yes"))
            )
        for ident in self.identifiers:
            value = ident.value
            extra = _join(
                [
                    ident.assigner,
                    (t("hạn đến ", "valid to ") + display_date(ident.valid_until, lang))
                    if ident.valid_until
                    else None,
                ]
            )
            rows.append((ident.label.in_language(lang), f"{value} ({extra})" if extra else value))
        for address in self.addresses:
            rows.append((t("Địa chỉ", "Address"), address.text or _NONE))
        if self.phones:
            rows.append((t("Điện thoại", "Phone"), ", ".join(self.phones)))
        if self.emails:
            rows.append(("Email", ", ".join(self.emails)))
        for vi, en, value in (
            ("Dân tộc", "Ethnicity", self.ethnicity),
            ("Quốc tịch", "Nationality", self.nationality),
            ("Nghề nghiệp", "Occupation", self.occupation),
            ("Nhóm máu", "Blood group", self.blood_group),
            ("Nơi đăng ký KCB ban đầu", "Registered primary care", self.primary_care),
        ):
            if value:
                rows.append((t(vi, en), value))
        for contact in self.contacts:
            rows.append(
                (
                    t("Người liên hệ", "Contact"),
                    _join([contact.name, contact.relationship, contact.phone]),
                )
            )
        return (
            Table(
                caption=self.title.in_language(lang),
                headers=(t("Mục", "Item"), t("Thông tin", "Details")),
                widths=(1, 2.4),
                rows=tuple(rows),
                empty_text=self.empty_text.in_language(lang),
            ),
        )


@dataclass(frozen=True, slots=True)
class ConditionItem:
    """A diagnosis or problem; ``icd10`` is the ICD-10 code when one is coded."""

    ref: str | None
    code: Code
    icd10: str | None
    clinical_status: str | None
    verification_status: str | None
    categories: tuple[str, ...]
    onset: str | None
    abatement: str | None
    recorded: str | None
    encounter_ref: str | None
    chronic: bool
    chronic_group: Text | None

    @property
    def label(self) -> str:
        """``A91 Sốt xuất huyết Dengue``: code then text, as Vietnamese records write it."""
        if self.icd10 and self.code.text and self.code.text != self.icd10:
            return f"{self.icd10} {self.code.text}"
        return self.icd10 or self.code.text or self.code.code or _NONE

    @property
    def date(self) -> str | None:
        return self.onset or self.recorded


@dataclass(frozen=True, slots=True)
class ChronicCondition:
    """A chronic disease, merged over every Condition that records it (one per encounter)."""

    condition: ConditionItem
    since: str | None
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllergyItem:
    """An allergy or intolerance (dị ứng)."""

    ref: str
    substance: Code
    type: str | None
    categories: tuple[str, ...]
    criticality: str | None
    clinical_status: str | None
    verification_status: str | None
    reactions: tuple[Text, ...]
    onset: str | None
    recorded: str | None


@dataclass(frozen=True, slots=True)
class ProcedureItem:
    """A surgery or procedure (tiền sử phẫu thuật, thủ thuật)."""

    ref: str
    code: Code
    date: str | None
    end: str | None
    status: str | None
    facility: str | None
    encounter_ref: str | None


@dataclass(frozen=True, slots=True)
class FamilyHistoryItem:
    """A relative's health history (tiền sử gia đình)."""

    ref: str
    relationship: Code
    relationship_label: Text
    conditions: tuple[str, ...]
    deceased: bool
    date: str | None


@dataclass(frozen=True, slots=True)
class RiskFactorItem:
    """A social-history observation; ``kind`` is ``tobacco``, ``alcohol`` or ``other``."""

    ref: str
    kind: str
    label: Text
    value: str | None
    date: str | None


@dataclass(frozen=True, slots=True)
class History:
    """Part 2, tiền sử và các yếu tố liên quan đến sức khỏe."""

    allergies: tuple[AllergyItem, ...]
    chronic_conditions: tuple[ChronicCondition, ...]
    past_conditions: tuple[ConditionItem, ...]
    procedures: tuple[ProcedureItem, ...]
    family_history: tuple[FamilyHistoryItem, ...]
    risk_factors: tuple[RiskFactorItem, ...]

    code: str = field(default="history", init=False)
    title: Text = field(
        default=Text(
            "Tiền sử và các yếu tố liên quan đến sức khỏe", "History and health risk factors"
        ),
        init=False,
    )
    qd831_part: int = field(default=2, init=False)
    empty_text: Text = field(
        default=Text(
            "Chưa ghi nhận tiền sử, dị ứng hay yếu tố nguy cơ.",
            "No history, allergies or risk factors recorded.",
        ),
        init=False,
    )

    @property
    def is_empty(self) -> bool:
        return not (
            self.allergies
            or self.chronic_conditions
            or self.past_conditions
            or self.procedures
            or self.family_history
            or self.risk_factors
        )

    def refs(self) -> tuple[str, ...]:
        return _dedupe(
            [
                *(a.ref for a in self.allergies),
                *(r for c in self.chronic_conditions for r in c.refs),
                *(c.ref for c in self.past_conditions),
                *(p.ref for p in self.procedures),
                *(f.ref for f in self.family_history),
                *(r.ref for r in self.risk_factors),
            ]
        )

    def tables(self, lang: str = "vi") -> tuple[Table, ...]:
        t = _wording(lang)

        none = t("Không ghi nhận.", "None recorded.")
        allergies = Table(
            caption=t("Dị ứng", "Allergies and intolerances"),
            headers=(
                t("Dị nguyên", "Substance"),
                t("Loại", "Category"),
                t("Phản ứng", "Reactions"),
                t("Mức độ nguy hiểm", "Criticality"),
                t("Trạng thái", "Status"),
                t("Ngày ghi nhận", "Recorded"),
            ),
            widths=(1.6, 1, 1.6, 1, 1.1, 1),
            rows=tuple(
                (
                    a.substance.text or a.substance.code or _NONE,
                    _join(_label(_ALLERGY_CATEGORY.get(c, _same(c)), lang) for c in a.categories),
                    "; ".join(r.in_language(lang) for r in a.reactions),
                    _label(_CRITICALITY.get(a.criticality or ""), lang) or (a.criticality or ""),
                    _join(
                        [
                            _label(_status(a.clinical_status, "allergy"), lang),
                            _label(_status(a.verification_status), lang),
                        ]
                    ),
                    display_date(a.recorded or a.onset, lang),
                )
                for a in self.allergies
            ),
            empty_text=none,
        )
        chronic = Table(
            caption=t("Bệnh mạn tính", "Chronic conditions"),
            headers=(
                t("Mã ICD-10", "ICD-10"),
                t("Bệnh", "Condition"),
                t("Nhóm bệnh", "Group"),
                t("Từ", "Since"),
                t("Trạng thái", "Status"),
            ),
            widths=(0.8, 2.2, 1.6, 0.9, 1),
            rows=tuple(
                (
                    c.condition.icd10 or "",
                    c.condition.code.text or c.condition.code.code or _NONE,
                    _label(c.condition.chronic_group, lang),
                    display_date(c.since, lang),
                    _label(_status(c.condition.clinical_status, "condition"), lang),
                )
                for c in self.chronic_conditions
            ),
            empty_text=none,
        )
        past = Table(
            caption=t("Tiền sử bệnh tật khác", "Other past illnesses"),
            headers=(
                t("Mã ICD-10", "ICD-10"),
                t("Bệnh", "Condition"),
                t("Khởi phát", "Onset"),
                t("Trạng thái", "Status"),
            ),
            widths=(0.8, 2.6, 1, 1),
            rows=tuple(
                (
                    c.icd10 or "",
                    c.code.text or c.code.code or _NONE,
                    display_date(c.date, lang),
                    _label(_status(c.clinical_status, "condition"), lang),
                )
                for c in self.past_conditions
            ),
            empty_text=none,
        )
        procedures = Table(
            caption=t("Tiền sử phẫu thuật, thủ thuật", "Surgery and procedures"),
            headers=(
                t("Phẫu thuật, thủ thuật", "Procedure"),
                t("Ngày", "Date"),
                t("Nơi thực hiện", "Facility"),
                t("Trạng thái", "Status"),
            ),
            widths=(2.4, 1, 1.6, 1),
            rows=tuple(
                (
                    p.code.text or p.code.code or _NONE,
                    display_period(p.date, p.end, lang),
                    p.facility or "",
                    _label(_status(p.status), lang),
                )
                for p in self.procedures
            ),
            empty_text=none,
        )
        family = Table(
            caption=t("Tiền sử gia đình", "Family history"),
            headers=(t("Quan hệ", "Relationship"), t("Bệnh", "Conditions"), t("Ghi chú", "Notes")),
            widths=(1, 3, 1.2),
            rows=tuple(
                (
                    f.relationship_label.in_language(lang),
                    "; ".join(f.conditions) or _NONE,
                    t("Đã mất", "Deceased") if f.deceased else "",
                )
                for f in self.family_history
            ),
            empty_text=none,
        )
        risks = Table(
            caption=t("Yếu tố nguy cơ", "Risk factors"),
            headers=(t("Yếu tố", "Factor"), t("Kết quả", "Value"), t("Ngày", "Date")),
            widths=(1.6, 2.4, 1),
            rows=tuple(
                (r.label.in_language(lang), r.value or _NONE, display_date(r.date, lang))
                for r in self.risk_factors
            ),
            empty_text=none,
        )
        return (allergies, chronic, past, procedures, family, risks)


@dataclass(frozen=True, slots=True)
class ImmunizationDose:
    """One vaccine dose (mũi tiêm)."""

    ref: str
    date: str | None
    dose_number: str | None
    series_doses: str | None
    series: str | None
    site: Text | None
    route: str | None
    lot_number: str | None
    facility: str | None
    status: str | None


@dataclass(frozen=True, slots=True)
class VaccineGroup:
    """Every dose of one vaccine, oldest first (the order of a vaccination card)."""

    key: str
    code: Code
    label: Text
    doses: tuple[ImmunizationDose, ...]


@dataclass(frozen=True, slots=True)
class Immunizations:
    """Part 3, tiêm chủng."""

    groups: tuple[VaccineGroup, ...]

    code: str = field(default="immunizations", init=False)
    title: Text = field(default=Text("Tiêm chủng", "Immunizations"), init=False)
    qd831_part: int = field(default=3, init=False)
    empty_text: Text = field(
        default=Text("Chưa có dữ liệu tiêm chủng.", "No immunizations recorded."), init=False
    )

    @property
    def is_empty(self) -> bool:
        return not self.groups

    def refs(self) -> tuple[str, ...]:
        return _dedupe(d.ref for g in self.groups for d in g.doses)

    def tables(self, lang: str = "vi") -> tuple[Table, ...]:
        t = _wording(lang)

        rows: list[tuple[str, ...]] = []
        for group in self.groups:
            for dose in group.doses:
                number = dose.dose_number or ""
                if number and dose.series_doses:
                    number = f"{number}/{dose.series_doses}"
                if dose.status == "not-done":
                    number = _join([number, t("không tiêm", "not given")], " ")
                rows.append(
                    (
                        group.label.in_language(lang),
                        number,
                        display_date(dose.date, lang),
                        _label(dose.site, lang),
                        dose.facility or "",
                        dose.lot_number or "",
                    )
                )
        return (
            Table(
                caption=self.title.in_language(lang),
                headers=(
                    t("Vắc xin", "Vaccine"),
                    t("Mũi", "Dose"),
                    t("Ngày tiêm", "Date"),
                    t("Vị trí tiêm", "Site"),
                    t("Nơi tiêm", "Given at"),
                    t("Số lô", "Lot"),
                ),
                widths=(2.2, 0.6, 0.9, 1, 1.5, 0.8),
                rows=tuple(rows),
                empty_text=self.empty_text.in_language(lang),
            ),
        )


@dataclass(frozen=True, slots=True)
class EncounterItem:
    """One visit or stay (đợt khám bệnh, chữa bệnh) with its diagnoses, principal first."""

    ref: str
    start: str | None
    end: str | None
    status: str | None
    class_code: str | None
    class_label: Text
    type: str | None
    facility: str | None
    location: str | None
    reasons: tuple[str, ...]
    diagnoses: tuple[ConditionItem, ...]
    length_of_stay_days: int | None
    event_label: Text = field(default=_GENERIC_ENCOUNTER[1], repr=False)

    @property
    def inpatient(self) -> bool:
        return self.class_code in _INPATIENT_CLASSES


@dataclass(frozen=True, slots=True)
class AppointmentItem:
    """A booked visit (lịch hẹn, tái khám); ``upcoming`` is relative to the record's ``as_of``."""

    ref: str
    start: str | None
    end: str | None
    status: str | None
    description: str | None
    facility: str | None
    upcoming: bool


@dataclass(frozen=True, slots=True)
class DocumentItem:
    """A clinical document (discharge summary, referral letter…) filed for the person."""

    ref: str
    resource_type: str
    title: str
    type: str | None
    date: str | None
    status: str | None
    author: str | None
    encounter_ref: str | None


@dataclass(frozen=True, slots=True)
class Encounters:
    """Part 4 (visits), khám bệnh, chữa bệnh: newest first."""

    encounters: tuple[EncounterItem, ...]
    appointments: tuple[AppointmentItem, ...]
    documents: tuple[DocumentItem, ...]

    code: str = field(default="encounters", init=False)
    title: Text = field(
        default=Text("Khám bệnh, chữa bệnh", "Examinations and encounters"), init=False
    )
    qd831_part: int = field(default=4, init=False)
    empty_text: Text = field(
        default=Text("Chưa có lượt khám bệnh, chữa bệnh.", "No encounters recorded."),
        init=False,
    )

    @property
    def is_empty(self) -> bool:
        return not (self.encounters or self.appointments or self.documents)

    def refs(self) -> tuple[str, ...]:
        return _dedupe(
            [
                *(r for e in self.encounters for r in (e.ref, *(d.ref for d in e.diagnoses))),
                *(a.ref for a in self.appointments),
                *(d.ref for d in self.documents),
            ]
        )

    def tables(self, lang: str = "vi") -> tuple[Table, ...]:
        t = _wording(lang)

        rows: list[tuple[str, ...]] = []
        for e in self.encounters:
            period = display_period(e.start, e.end, lang)
            if e.length_of_stay_days is not None:
                period += t(f" ({e.length_of_stay_days} ngày)", f" ({e.length_of_stay_days} d)")
            rows.append(
                (
                    period,
                    _join([e.class_label.in_language(lang), e.type]),
                    _join([e.facility, e.location]),
                    "; ".join(d.label for d in e.diagnoses) or "; ".join(e.reasons),
                    _label(_status(e.status, "encounter"), lang),
                )
            )
        tables = [
            Table(
                caption=self.title.in_language(lang),
                headers=(
                    t("Thời gian", "Period"),
                    t("Hình thức", "Class"),
                    t("Cơ sở KCB", "Facility"),
                    t("Chẩn đoán", "Diagnoses"),
                    t("Trạng thái", "Status"),
                ),
                widths=(1.5, 1, 1.6, 2.2, 0.9),
                rows=tuple(rows),
                empty_text=t("Chưa có lượt khám.", "No encounters recorded."),
            )
        ]
        if self.appointments:
            tables.append(
                Table(
                    caption=t("Lịch hẹn, tái khám", "Appointments"),
                    headers=(
                        t("Ngày hẹn", "Date"),
                        t("Nội dung", "Description"),
                        t("Nơi khám", "Where"),
                        t("Trạng thái", "Status"),
                    ),
                    widths=(1.2, 2.4, 1.6, 1),
                    rows=tuple(
                        (
                            display_date(a.start, lang),
                            a.description or "",
                            a.facility or "",
                            _label(_status(a.status), lang),
                        )
                        for a in self.appointments
                    ),
                    empty_text="",
                )
            )
        if self.documents:
            tables.append(
                Table(
                    caption=t("Tài liệu", "Documents"),
                    headers=(
                        t("Tài liệu", "Document"),
                        t("Loại", "Type"),
                        t("Ngày", "Date"),
                        t("Tác giả", "Author"),
                    ),
                    widths=(2.2, 1.6, 1, 1.4),
                    rows=tuple(
                        (d.title, d.type or "", display_date(d.date, lang), d.author or "")
                        for d in self.documents
                    ),
                    empty_text="",
                )
            )
        return tuple(tables)


@dataclass(frozen=True, slots=True)
class MedicationItem:
    """A prescription (or a dispense with no prescription on file), with its dispenses."""

    ref: str
    kind: str
    name: str
    code: Code
    dose: Text | None
    route: str | None
    start: str | None
    end: str | None
    authored: str | None
    status: str | None
    current: bool
    prescriber: str | None
    quantity: str | None
    dispensed: tuple[str, ...]
    dispense_refs: tuple[str, ...]
    medication_ref: str | None
    encounter_ref: str | None


@dataclass(frozen=True, slots=True)
class Medications:
    """Part 4 (drugs), thuốc đã dùng: current and past, each newest first."""

    current: tuple[MedicationItem, ...]
    past: tuple[MedicationItem, ...]

    code: str = field(default="medications", init=False)
    title: Text = field(default=Text("Thuốc đã dùng", "Medications"), init=False)
    qd831_part: int = field(default=4, init=False)
    empty_text: Text = field(
        default=Text("Chưa có dữ liệu dùng thuốc.", "No medications recorded."), init=False
    )

    @property
    def is_empty(self) -> bool:
        return not (self.current or self.past)

    def refs(self) -> tuple[str, ...]:
        return _dedupe(
            r
            for m in (*self.current, *self.past)
            for r in (m.ref, *m.dispense_refs, m.medication_ref)
        )

    def tables(self, lang: str = "vi") -> tuple[Table, ...]:
        t = _wording(lang)

        headers = (
            t("Thuốc", "Drug"),
            t("Liều dùng", "Dose"),
            t("Từ ngày", "From"),
            t("Đến ngày", "To"),
            t("Trạng thái", "Status"),
            t("Cấp phát", "Dispensed"),
        )

        def rows(items: tuple[MedicationItem, ...]) -> tuple[tuple[str, ...], ...]:
            return tuple(
                (
                    m.name,
                    _join([_label(m.dose, lang), m.route]),
                    display_date(m.start, lang),
                    display_date(m.end, lang),
                    _label(_medication_status(m), lang),
                    ", ".join(display_date(d, lang) for d in m.dispensed),
                )
                for m in items
            )

        widths = (2, 2, 0.9, 0.9, 0.9, 1)
        return (
            Table(
                caption=t("Thuốc đang dùng", "Current medications"),
                headers=headers,
                widths=widths,
                rows=rows(self.current),
                empty_text=t("Không có.", "None."),
            ),
            Table(
                caption=t("Thuốc đã dùng trước đây", "Past medications"),
                headers=headers,
                widths=widths,
                rows=rows(self.past),
                empty_text=t("Không có.", "None."),
            ),
        )


@dataclass(frozen=True, slots=True)
class ResultItem:
    """One observation result (lab test, vital sign, other paraclinical measurement)."""

    ref: str
    category: tuple[str, ...]
    name: str
    code: Code
    value: str | None
    numeric: float | None
    unit: str | None
    reference_range: str | None
    low: float | None
    high: float | None
    interpretation: str | None
    interpretation_label: Text | None
    interpretation_derived: bool
    date: str | None
    status: str | None
    report_ref: str | None

    @property
    def value_with_unit(self) -> str:
        if self.value is None:
            return ""
        return f"{self.value} {self.unit}" if self.unit else self.value


@dataclass(frozen=True, slots=True)
class ReportItem:
    """A diagnostic report (phiếu kết quả) and the results it groups."""

    ref: str
    name: str
    code: Code
    date: str | None
    status: str | None
    conclusion: str | None
    result_refs: tuple[str, ...]
    performer: str | None


@dataclass(frozen=True, slots=True)
class Results:
    """Part 4 (paraclinical), kết quả xét nghiệm, cận lâm sàng: newest first."""

    results: tuple[ResultItem, ...]
    reports: tuple[ReportItem, ...]

    code: str = field(default="results", init=False)
    title: Text = field(
        default=Text("Kết quả xét nghiệm, cận lâm sàng", "Laboratory and other diagnostic results"),
        init=False,
    )
    qd831_part: int = field(default=4, init=False)
    empty_text: Text = field(
        default=Text("Chưa có kết quả xét nghiệm, cận lâm sàng.", "No results recorded."),
        init=False,
    )

    @property
    def is_empty(self) -> bool:
        return not (self.results or self.reports)

    def refs(self) -> tuple[str, ...]:
        return _dedupe([*(r.ref for r in self.reports), *(r.ref for r in self.results)])

    def tables(self, lang: str = "vi") -> tuple[Table, ...]:
        t = _wording(lang)

        results = Table(
            caption=t("Kết quả", "Results"),
            headers=(
                t("Xét nghiệm, chỉ số", "Test"),
                t("Kết quả", "Result"),
                t("Khoảng tham chiếu", "Reference range"),
                t("Đánh giá", "Flag"),
                t("Ngày", "Date"),
            ),
            widths=(2, 1.3, 1.4, 1, 1.2),
            rows=tuple(
                (
                    r.name,
                    r.value_with_unit or _NONE,
                    r.reference_range or "",
                    _label(r.interpretation_label, lang)
                    + ("*" if r.interpretation_derived else ""),
                    display_date(r.date, lang),
                )
                for r in self.results
            ),
            empty_text=self.empty_text.in_language(lang),
        )
        if not self.reports:
            return (results,)
        reports = Table(
            caption=t("Phiếu kết quả", "Reports"),
            headers=(
                t("Phiếu", "Report"),
                t("Ngày", "Date"),
                t("Kết luận", "Conclusion"),
                t("Trạng thái", "Status"),
            ),
            widths=(1.8, 1.1, 2.6, 0.9),
            rows=tuple(
                (
                    r.name,
                    display_date(r.date, lang),
                    r.conclusion or "",
                    _label(_status(r.status), lang),
                )
                for r in self.reports
            ),
            empty_text="",
        )
        return (results, reports)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One dated event; ``kind`` is encounter, diagnosis, procedure, lab, medication or
    immunization."""

    date: str
    kind: str
    label: Text
    ref: str | None


@dataclass(frozen=True, slots=True)
class Table:
    """A section's content as rows of text: one shape for the FHIR narrative and the PDF."""

    caption: str
    headers: tuple[str, ...]
    widths: tuple[float, ...]
    rows: tuple[tuple[str, ...], ...]
    empty_text: str


class Section(Protocol):
    """What every section offers the renderers."""

    @property
    def code(self) -> str: ...

    @property
    def title(self) -> Text: ...

    @property
    def qd831_part(self) -> int: ...

    @property
    def empty_text(self) -> Text: ...

    @property
    def is_empty(self) -> bool: ...

    def refs(self) -> tuple[str, ...]: ...

    def tables(self, lang: str = "vi") -> tuple[Table, ...]: ...


_SECTION_LOINC: dict[str, tuple[str, str]] = {
    # Closest LOINC section codes (IPS); history and administrative have no single one.
    "immunizations": ("11369-6", "History of Immunization Narrative"),
    "encounters": ("46240-8", "History of Hospitalizations+Outpatient visits Narrative"),
    "medications": ("10160-0", "History of Medication use Narrative"),
    "results": ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
}


@dataclass(frozen=True, slots=True)
class PersonalRecord:
    """One person's health record, by the sections of QĐ 831, plus a timeline."""

    as_of: datetime
    administrative: Administrative
    history: History
    immunizations: Immunizations
    encounters: Encounters
    medications: Medications
    results: Results
    timeline: tuple[TimelineEvent, ...]
    resources: Mapping[str, dict[str, Any]] = field(repr=False, compare=False)

    TITLE: ClassVar[Text] = Text("Hồ sơ sức khỏe cá nhân", "Personal health record")

    def sections(self) -> tuple[Section, ...]:
        """The sections in the template's order."""
        return (
            self.administrative,
            self.history,
            self.immunizations,
            self.encounters,
            self.medications,
            self.results,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO text (partial dates stay partial), labels as {vi, en}."""
        out: dict[str, Any] = {
            "title": _jsonable(self.TITLE),
            "as_of": self.as_of.isoformat(),
        }
        for section in self.sections():
            body = _jsonable(section)
            body["empty"] = section.is_empty
            out[section.code] = body
        out["timeline"] = _jsonable(self.timeline)
        return out

    def as_document_bundle(self, base_url: str, now: datetime) -> dict[str, Any]:
        """A FHIR R4 ``document`` Bundle: the Composition, the Patient, every cited resource.

        Each section's ``entry`` lists exactly the resources summarised in it, so a receiver
        can rebuild the record; the narrative is the same tables the PDF prints. Ids are
        derived from the patient and ``now``, so the same call gives the same bundle.
        """
        base = base_url.rstrip("/")
        when = _instant(now)
        patient_ref = self.administrative.ref
        sections = self.sections()
        cited: list[str] = [patient_ref]
        for section in sections:
            cited.extend(section.refs())
        cited = list(_dedupe(cited))
        seed = f"{patient_ref}|{when}|{'|'.join(cited)}"
        composition_id = str(uuid.uuid5(_NAMESPACE, "composition|" + seed))
        bundle_id = str(uuid.uuid5(_NAMESPACE, "bundle|" + seed))
        composition: dict[str, Any] = {
            "resourceType": "Composition",
            "id": composition_id,
            "language": "vi",
            "text": {
                "status": "generated",
                "div": _xhtml(
                    [
                        f"<p><b>{_esc(self.TITLE.vi)}</b></p>",
                        f"<p>{_esc(self.administrative.full_name or _NONE)}"
                        f" — {_esc(display_date(when))}</p>",
                    ]
                ),
            },
            "status": "final",
            "type": {
                "coding": [
                    {"system": LOINC, "code": "60591-5", "display": "Patient summary Document"},
                    {
                        "system": DOCUMENT_CODE_SYSTEM,
                        "code": "qd831",
                        "display": "Hồ sơ quản lý sức khỏe cá nhân (QĐ 831/QĐ-BYT)",
                    },
                ],
                "text": self.TITLE.vi,
            },
            "subject": {"reference": patient_ref},
            "date": when,
            "author": [{"display": "ytehub"}],
            "title": self.TITLE.vi,
            "section": [_composition_section(s) for s in sections],
        }
        if self.administrative.full_name:
            composition["subject"]["display"] = self.administrative.full_name
        entries: list[dict[str, Any]] = [
            {"fullUrl": f"{base}/Composition/{composition_id}", "resource": composition}
        ]
        for ref in cited:
            resource = self.resources.get(ref)
            if resource is not None:
                entries.append({"fullUrl": f"{base}/{ref}", "resource": copy.deepcopy(resource)})
        return {
            "resourceType": "Bundle",
            "id": bundle_id,
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
            "type": "document",
            "timestamp": when,
            "entry": entries,
        }


def _jsonable(value: Any) -> Any:
    """Dataclass tree → JSON types; Text → {vi, en}; datetimes → ISO."""
    if isinstance(value, Text):
        return {"vi": value.vi, "en": value.en}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "resources"
        }
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------
# Narrative (XHTML) for the Composition
# --------------------------------------------------------------------------------------

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _esc(text: str) -> str:
    """Escaped for XHTML, with characters XML forbids removed (they do occur in exports)."""
    return html.escape(_XML_INVALID.sub("", text), quote=True)


def _xhtml(parts: list[str]) -> str:
    return '<div xmlns="http://www.w3.org/1999/xhtml">' + "".join(parts) + "</div>"


def _table_xhtml(table: Table) -> str:
    if not table.rows:
        return f"<p><b>{_esc(table.caption)}</b>: {_esc(table.empty_text)}</p>"
    head = "".join(f"<th>{_esc(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    )
    return (
        f"<table><caption>{_esc(table.caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _composition_section(section: Section) -> dict[str, Any]:
    coding = [
        {
            "system": SECTION_CODE_SYSTEM,
            "code": section.code,
            "display": section.title.vi,
        }
    ]
    if section.code in _SECTION_LOINC:
        code, display = _SECTION_LOINC[section.code]
        coding.append({"system": LOINC, "code": code, "display": display})
    out: dict[str, Any] = {
        "title": section.title.vi,
        "code": {"coding": coding, "text": section.title.vi},
    }
    refs = section.refs()
    if section.is_empty or not refs:
        out["text"] = {
            "status": "generated",
            "div": _xhtml([f"<p>{_esc(section.empty_text.vi)}</p>"]),
        }
        out["emptyReason"] = {
            "coding": [{"system": _EMPTY_REASON_SYSTEM, "code": "nilknown", "display": "Nil Known"}]
        }
        return out
    out["text"] = {
        "status": "generated",
        "div": _xhtml([_table_xhtml(t) for t in section.tables("vi")]),
    }
    out["entry"] = [{"reference": r} for r in refs]
    return out


def _instant(moment: datetime) -> str:
    """A FHIR instant; a naive datetime is read as Vietnam time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VIETNAM_TZ)
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


# --------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------

_DEAD_STATUSES = frozenset({"entered-in-error"})
_REF_SHAPE = re.compile(r"^[A-Z][A-Za-z]+$")
_ID_SHAPE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ICD_SHAPE = re.compile(r"^([A-Z])(\d{2})(?:\.?[0-9A-Z]{0,4})?$")


def _ref_key(reference: Any) -> str | None:
    """``Type/id`` from a relative, absolute or versioned reference; None when not one."""
    text = _s(reference)
    if text is None or text.startswith("#"):
        return None
    text = re.sub(r"/_history/[^/]*$", "", text)
    parts = text.split("/")
    if len(parts) >= 2 and _REF_SHAPE.match(parts[-2]) and parts[-1]:
        return f"{parts[-2]}/{parts[-1]}"
    return None


def _content_id(resource: Mapping[str, Any]) -> str:
    """A stable id for a resource that has none (the bundle needs ``Type/id`` URLs)."""
    canonical = json.dumps(resource, sort_keys=True, ensure_ascii=False, default=str)
    return str(uuid.uuid5(_NAMESPACE, canonical))


class _Index:
    """The compartment, by ``Type/id``, with reference resolution."""

    def __init__(self, patient: dict[str, Any], resources: Iterable[Any]) -> None:
        if patient.get("resourceType", "Patient") != "Patient":
            raise ValueError(f"expected a Patient, got {patient.get('resourceType')!r}")
        self.patient = copy.deepcopy(patient)
        self.patient["resourceType"] = "Patient"
        if not _s(self.patient.get("id")) or not _ID_SHAPE.match(self.patient["id"]):
            self.patient["id"] = _content_id(self.patient)
        self.patient_ref = f"Patient/{self.patient['id']}"
        self.by_ref: dict[str, dict[str, Any]] = {self.patient_ref: self.patient}
        self.by_id: dict[str, str] = {}
        for raw in resources:
            if not isinstance(raw, dict):
                continue
            kind = _s(raw.get("resourceType"))
            if kind not in SECTION_TYPES and kind not in _LOOKUP_TYPES:
                continue
            if _s(raw.get("status")) in _DEAD_STATUSES:
                continue
            if kind in SECTION_TYPES and self._someone_else(raw):
                continue
            resource = copy.deepcopy(raw)
            if not _s(resource.get("id")) or not _ID_SHAPE.match(resource["id"]):
                resource["id"] = _content_id(resource)
            ref = f"{kind}/{resource['id']}"
            self.by_ref[ref] = resource  # a later copy of the same resource wins
            self.by_id.setdefault(resource["id"], ref)

    def _someone_else(self, resource: Mapping[str, Any]) -> bool:
        """True when the resource names another Patient: a caller's mistake, never shown."""
        for key in ("subject", "patient"):
            target = _ref_key(_dict(resource.get(key)).get("reference"))
            if target and target.startswith("Patient/") and target != self.patient_ref:
                return True
        return False

    def of_type(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(r, res) for r, res in self.by_ref.items() if r.startswith(kind + "/")]

    def key(self, reference: Any) -> str | None:
        """The ``Type/id`` a Reference points at, if that resource is in the compartment."""
        raw = _s(_dict(reference).get("reference"))
        if raw is None:
            return None
        found = _ref_key(raw)
        if found in self.by_ref:
            return found
        if raw.startswith("urn:uuid:"):
            return self.by_id.get(raw.removeprefix("urn:uuid:"))
        return None

    def resolve(self, reference: Any) -> dict[str, Any] | None:
        found = self.key(reference)
        return self.by_ref.get(found) if found else None

    def name(self, reference: Any) -> str | None:
        """What to call a referenced facility, doctor or drug: display, name, identifier."""
        reference = _dict(reference)
        if display := _s(reference.get("display")):
            return display
        target = self.resolve(reference)
        if target is not None:
            name = target.get("name")
            if isinstance(name, str) and name.strip():
                return name.strip()
            if isinstance(name, list) and (human := _human_name(name)):
                return human
            if target.get("resourceType") == "Medication":
                return _code(target.get("code")).text or None
        return _s(_dict(reference.get("identifier")).get("value"))


def _human_name(names: Any) -> str | None:
    """A HumanName in Vietnamese order (family, middle, given), official name preferred."""
    candidates = _dicts(names)
    if not candidates:
        return None
    ranked = sorted(
        candidates, key=lambda n: {"official": 0, "usual": 1}.get(_s(n.get("use")) or "", 2)
    )
    name = ranked[0]
    if text := _s(name.get("text")):
        return text
    return _join([_s(name.get("family")), *(_s(g) for g in _list(name.get("given")))], " ") or None


def _code(concept: Any, prefer: Callable[[Mapping[str, Any]], bool] | None = None) -> Code:
    """A CodeableConcept as one code and the best label (text, then display, then code)."""
    concept = _dict(concept)
    codings = [c for c in _dicts(concept.get("coding")) if _s(c.get("code"))]
    chosen = next((c for c in codings if prefer and prefer(c)), codings[0] if codings else None)
    text = (
        _s(concept.get("text"))
        or (chosen and _s(chosen.get("display")))
        or next((d for c in codings if (d := _s(c.get("display")))), None)
        or (chosen and _s(chosen.get("code")))
        or ""
    )
    if chosen is None:
        return Code(None, None, text)
    return Code(_s(chosen.get("system")), _s(chosen.get("code")), text)


def _is_icd10(coding: Mapping[str, Any]) -> bool:
    """ICD-10 (WHO, or a national edition) by system; a system-less code of ICD shape too,
    because Vietnamese exports often omit the system."""
    system = (_s(coding.get("system")) or "").lower()
    code = (_s(coding.get("code")) or "").upper()
    if "icd-10" in system or "icd10" in system or system == ICD10_OID:
        return True
    return not system and bool(_ICD_SHAPE.match(code))


def _icd10(concept: Any) -> str | None:
    for coding in _dicts(_dict(concept).get("coding")):
        if _is_icd10(coding) and (code := _s(coding.get("code"))):
            return code.upper()
    return None


def _chronic_group(icd10: str | None) -> Text | None:
    if icd10 is None:
        return None
    match = _ICD_SHAPE.match(icd10.upper())
    if match is None:
        return None
    key = (match.group(1), int(match.group(2)))
    for low, high, label in CHRONIC_ICD10:
        if (low[0], int(low[1:])) <= key <= (high[0], int(high[1:])):
            return label
    return None


def _value_text(
    resource: Mapping[str, Any], prefix: str = "value"
) -> tuple[str | None, float | None, str | None]:
    """An Observation (or component) value as (text, number, unit)."""
    quantity = resource.get(f"{prefix}Quantity")
    if isinstance(quantity, dict) and quantity.get("value") is not None:
        unit = _s(quantity.get("unit")) or _s(quantity.get("code"))
        comparator = _s(quantity.get("comparator")) or ""
        return comparator + _fmt_number(quantity["value"]), _number(quantity["value"]), unit
    concept = resource.get(f"{prefix}CodeableConcept")
    if isinstance(concept, dict):
        return _code(concept).text or None, None, None
    for key in ("String", "DateTime", "Time"):
        if text := _s(resource.get(f"{prefix}{key}")):
            return text, None, None
    if isinstance(resource.get(f"{prefix}Integer"), int) and not isinstance(
        resource.get(f"{prefix}Integer"), bool
    ):
        return str(resource[f"{prefix}Integer"]), float(resource[f"{prefix}Integer"]), None
    if isinstance(resource.get(f"{prefix}Boolean"), bool):
        return ("true" if resource[f"{prefix}Boolean"] else "false"), None, None
    value_range = resource.get(f"{prefix}Range")
    if isinstance(value_range, dict):
        text = _range_text(value_range)
        return text or None, None, None
    ratio = resource.get(f"{prefix}Ratio")
    if isinstance(ratio, dict):
        num, den = _dict(ratio.get("numerator")), _dict(ratio.get("denominator"))
        if num.get("value") is not None and den.get("value") is not None:
            return f"{_fmt_number(num['value'])}:{_fmt_number(den['value'])}", None, None
    period = resource.get(f"{prefix}Period")
    if isinstance(period, dict):
        return display_period(period.get("start"), period.get("end"), "en") or None, None, None
    return None, None, None


def _range_text(value: Mapping[str, Any]) -> str:
    low, high = _dict(value.get("low")), _dict(value.get("high"))
    unit = _s(high.get("unit")) or _s(low.get("unit")) or ""
    lo = _fmt_number(low["value"]) if low.get("value") is not None else None
    hi = _fmt_number(high["value"]) if high.get("value") is not None else None
    if lo and hi:
        core = f"{lo}–{hi}"
    elif lo:
        core = f"≥ {lo}"
    elif hi:
        core = f"≤ {hi}"
    else:
        return ""
    return f"{core} {unit}".strip()


def _effective(resource: Mapping[str, Any]) -> str | None:
    return (
        _s(resource.get("effectiveDateTime"))
        or _s(_dict(resource.get("effectivePeriod")).get("start"))
        or _s(resource.get("effectiveInstant"))
        or _s(resource.get("issued"))
    )


def _extension_text(extension: Mapping[str, Any]) -> str | None:
    """Any simple extension value as text; a complex one by its ``text`` sub-extension."""
    for key, value in extension.items():
        if not key.startswith("value"):
            continue
        if isinstance(value, str):
            return _s(value)
        if isinstance(value, bool | int | float):
            return _fmt_number(value)
        if isinstance(value, dict):
            if key == "valueCodeableConcept":
                return _code(value).text or None
            if key == "valueCoding":
                return _code({"coding": [value]}).text or None
            if key == "valueAddress":
                return _s(value.get("text"))
            if key == "valueReference":
                return _s(value.get("display"))
    parts = [
        _extension_text(sub)
        for sub in _dicts(extension.get("extension"))
        if _s(sub.get("url")) in ("text", "ombCategory", "code", "value")
    ]
    return _join(parts) or None


def _age(birth: str | None, as_of: datetime) -> int | None:
    found = _range(birth)
    if found is None:
        return None
    born = found.low.astimezone(VIETNAM_TZ).date()
    today = as_of.astimezone(VIETNAM_TZ).date()
    years = today.year - born.year
    if found.precision == "year":
        return max(years, 0)
    if found.precision == "month":
        before = today.month < born.month
    else:
        before = (today.month, today.day) < (born.month, born.day)
    return max(years - (1 if before else 0), 0)


def _administrative(index: _Index, as_of: datetime) -> Administrative:
    patient = index.patient
    names = _dicts(patient.get("name"))
    official = sorted(
        names, key=lambda n: {"official": 0, "usual": 1}.get(_s(n.get("use")) or "", 2)
    )
    first_name = official[0] if official else {}
    identifiers: list[IdentifierItem] = []
    for ident in _dicts(patient.get("identifier")):
        value = _s(ident.get("value"))
        if value is None:
            continue
        system = _s(ident.get("system"))
        type_codes = _codes_of([ident.get("type")])
        assigner = index.name(ident.get("assigner"))
        if system == SID_CCCD:
            kind, label = "cccd", Text("Số định danh cá nhân (CCCD)", "Personal ID number (CCCD)")
        elif system == SID_BHYT:
            kind, label = "bhyt", Text("Số thẻ BHYT", "Health insurance card (BHYT)")
        elif system == SID_SITE_PATIENT or "MR" in type_codes or "PI" in type_codes:
            kind, label = "facility", Text("Mã người bệnh tại cơ sở", "Facility patient ID")
        else:
            kind = "other"
            type_text = _code(ident.get("type")).text
            label = _same(type_text) or Text("Mã định danh khác", "Other identifier")
        identifiers.append(
            IdentifierItem(
                kind=kind,
                label=label,
                system=system,
                value=value,
                assigner=assigner,
                valid_until=_s(_dict(ident.get("period")).get("end")),
            )
        )
    order = {"cccd": 0, "bhyt": 1, "facility": 2, "other": 3}
    identifiers.sort(key=lambda i: order[i.kind])

    addresses: list[AddressItem] = []
    raw_addresses = sorted(
        _dicts(patient.get("address")),
        key=lambda a: {"home": 0, "temp": 1}.get(_s(a.get("use")) or "", 2),
    )
    for address in raw_addresses:
        code = next(
            (
                _s(e.get("valueCode")) or _s(e.get("valueString"))
                for e in _dicts(address.get("extension"))
                if e.get("url") == EXT_COMMUNE
            ),
            None,
        )
        unit = find_commune(code) if code else None
        prov = find_province(unit.province_code) if unit else None
        lines = tuple(line for raw in _list(address.get("line")) if (line := _s(raw)))
        commune_name = unit.name if unit else _s(address.get("city"))
        province_name = prov.name if prov else _s(address.get("state"))
        text = _join([*lines, commune_name, province_name])
        if not text:
            text = _s(address.get("text")) or _join(
                [_s(address.get("district")), _s(address.get("country"))]
            )
        addresses.append(
            AddressItem(
                use=_s(address.get("use")),
                text=text,
                lines=lines,
                commune_code=code,
                commune_name=commune_name,
                province_code=unit.province_code if unit else None,
                province_name=province_name,
            )
        )

    telecom = _dicts(patient.get("telecom"))
    phones = _dedupe(_s(t.get("value")) for t in telecom if _s(t.get("system")) in ("phone", "sms"))
    emails = _dedupe(_s(t.get("value")) for t in telecom if _s(t.get("system")) == "email")

    ethnicity = occupation = nationality = None
    extensions: list[ExtensionValue] = []
    for extension in _dicts(patient.get("extension")):
        url = _s(extension.get("url")) or ""
        value = _extension_text(extension)
        if value is None:
            continue
        lowered = url.lower()
        if "ethnic" in lowered or "dan-toc" in lowered:
            ethnicity = ethnicity or value
        elif "occupation" in lowered or "nghe-nghiep" in lowered:
            occupation = occupation or value
        elif "nationality" in lowered or "citizenship" in lowered:
            nationality = nationality or value
        else:
            extensions.append(ExtensionValue(url, value))

    contacts = tuple(
        ContactItem(
            relationship=next(
                (_code(r).text for r in _dicts(c.get("relationship")) if _code(r).text), ""
            ),
            name=_human_name([c.get("name")]) if isinstance(c.get("name"), dict) else "",
            phone=next(
                (_s(t.get("value")) for t in _dicts(c.get("telecom")) if _s(t.get("value"))), None
            ),
        )
        for c in _dicts(patient.get("contact"))
    )

    blood_group, blood_ref = _blood_group(index)
    gender = _s(patient.get("gender"))
    deceased_date = _s(patient.get("deceasedDateTime"))
    return Administrative(
        ref=index.patient_ref,
        full_name=_human_name(names) or "",
        family_name=_s(first_name.get("family")),
        given_names=tuple(g for raw in _list(first_name.get("given")) if (g := _s(raw))),
        sex=gender,
        sex_label=_SEX.get(gender or ""),
        birth_date=_s(patient.get("birthDate")),
        age_years=None if deceased_date else _age(_s(patient.get("birthDate")), as_of),
        deceased=bool(patient.get("deceasedBoolean")) or deceased_date is not None,
        deceased_date=deceased_date,
        identifiers=tuple(identifiers),
        addresses=tuple(addresses),
        phones=phones,
        emails=emails,
        ethnicity=ethnicity,
        occupation=occupation,
        nationality=nationality,
        blood_group=blood_group,
        primary_care=next(
            (n for g in _dicts(patient.get("generalPractitioner")) if (n := index.name(g))), None
        ),
        contacts=contacts,
        extensions=tuple(extensions),
        blood_group_ref=blood_ref,
    )


def _loinc_codes(concept: Any) -> set[str]:
    return {
        code
        for c in _dicts(_dict(concept).get("coding"))
        if _s(c.get("system")) == LOINC and (code := _s(c.get("code")))
    }


def _blood_group(index: _Index) -> tuple[str | None, str | None]:
    """The newest ABO/Rh result (**unconfirmed** that QĐ 831 asks for it in part 1)."""
    found = [
        (ref, obs)
        for ref, obs in index.of_type("Observation")
        if _loinc_codes(obs.get("code")) & _BLOOD_GROUP_LOINC
    ]
    if not found:
        return None, None
    found.sort(key=lambda item: _newest_first_key(_effective(item[1])))
    by_code: dict[str, tuple[str, str]] = {}
    for ref, obs in found:
        value = _value_text(obs)[0]
        for code in _loinc_codes(obs.get("code")) & _BLOOD_GROUP_LOINC:
            if value and code not in by_code:
                by_code[code] = (value, ref)
    if "882-1" in by_code:
        return by_code["882-1"]
    parts = [by_code[c] for c in ("883-9", "10331-7") if c in by_code]
    if not parts:
        return None, None
    return " ".join(p[0] for p in parts), parts[0][1]


def _condition(index: _Index, ref: str, resource: Mapping[str, Any]) -> ConditionItem | None:
    verification = _code_of(resource.get("verificationStatus"))
    if verification in ("refuted", "entered-in-error"):
        return None
    clinical = _code_of(resource.get("clinicalStatus"))
    categories = tuple(sorted(_codes_of(resource.get("category"))))
    icd10 = _icd10(resource.get("code"))
    group = _chronic_group(icd10)
    problem = "problem-list-item" in categories and clinical in ("active", "recurrence", "relapse")
    return ConditionItem(
        ref=ref,
        code=_code(resource.get("code"), prefer=_is_icd10),
        icd10=icd10,
        clinical_status=clinical,
        verification_status=verification,
        categories=categories,
        onset=_s(resource.get("onsetDateTime"))
        or _s(_dict(resource.get("onsetPeriod")).get("start")),
        abatement=_s(resource.get("abatementDateTime"))
        or _s(_dict(resource.get("abatementPeriod")).get("end")),
        recorded=_s(resource.get("recordedDate")),
        encounter_ref=index.key(resource.get("encounter")),
        chronic=group is not None or problem,
        chronic_group=group,
    )


def _encounter_class(resource: Mapping[str, Any]) -> str | None:
    raw = resource.get("class")
    if isinstance(raw, list):  # R5 shape, tolerated
        raw = raw[0] if raw else None
    return _code_of(raw)


def _encounters(
    index: _Index, conditions: dict[str, ConditionItem]
) -> tuple[list[EncounterItem], set[str]]:
    """Encounters newest first, each with its diagnoses; also the conditions so attached."""
    attached: set[str] = set()
    by_encounter: dict[str, list[ConditionItem]] = {}
    for condition in conditions.values():
        if condition.encounter_ref:
            by_encounter.setdefault(condition.encounter_ref, []).append(condition)
    items: list[EncounterItem] = []
    for ref, resource in index.of_type("Encounter"):
        diagnoses: list[tuple[int, ConditionItem]] = []
        seen: set[str] = set()
        for position, diagnosis in enumerate(_dicts(resource.get("diagnosis"))):
            rank = diagnosis.get("rank") if isinstance(diagnosis.get("rank"), int) else 1000
            target = index.key(diagnosis.get("condition"))
            if target in conditions:
                if target not in seen:
                    seen.add(target)
                    diagnoses.append((rank * 1000 + position, conditions[target]))
                continue
            if target is not None:  # refuted or not a Condition
                continue
            display = _s(_dict(diagnosis.get("condition")).get("display"))
            if display:
                diagnoses.append(
                    (
                        rank * 1000 + position,
                        ConditionItem(
                            ref=None,  # named by the encounter only, no Condition on file
                            code=Code(None, None, display),
                            icd10=None,
                            clinical_status=None,
                            verification_status=None,
                            categories=(),
                            onset=None,
                            abatement=None,
                            recorded=None,
                            encounter_ref=ref,
                            chronic=False,
                            chronic_group=None,
                        ),
                    )
                )
        for position, condition in enumerate(by_encounter.get(ref, [])):
            if condition.ref not in seen and condition.ref is not None:
                seen.add(condition.ref)
                diagnoses.append((10**9 + position, condition))
        attached |= seen
        period = _dict(resource.get("period"))
        start, end = _s(period.get("start")), _s(period.get("end"))
        class_code = _encounter_class(resource)
        class_label, event_label = _ENCOUNTER_CLASS.get(class_code or "", _GENERIC_ENCOUNTER)
        if class_code and class_code not in _ENCOUNTER_CLASS:
            display = _code(resource.get("class")).text
            class_label = Text(display or class_code, display or class_code)
        stay = None
        first, last = _local_date(start), _local_date(end)
        if class_code in _INPATIENT_CLASSES and first and last and last >= first:
            stay = (last - first).days
        facility = index.name(resource.get("serviceProvider"))
        location = next(
            (
                n
                for loc in _dicts(resource.get("location"))
                if (n := index.name(loc.get("location")))
            ),
            None,
        )
        items.append(
            EncounterItem(
                ref=ref,
                start=start,
                end=end,
                status=_s(resource.get("status")),
                class_code=class_code,
                class_label=class_label,
                type=next((t for c in _dicts(resource.get("type")) if (t := _code(c).text)), None),
                facility=facility or location,
                location=location if facility else None,
                reasons=_dedupe(_code(c).text for c in _dicts(resource.get("reasonCode"))),
                diagnoses=tuple(c for _, c in sorted(diagnoses, key=lambda d: d[0])),
                length_of_stay_days=stay,
                event_label=event_label,
            )
        )
    items.sort(key=lambda e: _newest_first_key(e.start or e.end))
    return items, attached


def _appointments(index: _Index, as_of: datetime) -> list[AppointmentItem]:
    items: list[AppointmentItem] = []
    for ref, resource in index.of_type("Appointment"):
        start = _s(resource.get("start"))
        found = _range(start)
        status = _s(resource.get("status"))
        upcoming = (
            found is not None
            and found.high >= as_of
            and status in ("proposed", "pending", "booked", "waitlist")
        )
        facility = next(
            (
                n
                for p in _dicts(resource.get("participant"))
                if (_ref_key(_dict(p.get("actor")).get("reference")) or "").split("/")[0]
                not in ("Patient", "RelatedPerson")
                and (n := index.name(p.get("actor")))
            ),
            None,
        )
        items.append(
            AppointmentItem(
                ref=ref,
                start=start,
                end=_s(resource.get("end")),
                status=status,
                description=_s(resource.get("description"))
                or _join(_code(c).text for c in _dicts(resource.get("serviceType")))
                or None,
                facility=facility,
                upcoming=upcoming,
            )
        )
    items.sort(key=lambda a: _newest_first_key(a.start))
    return items


def _documents(index: _Index) -> list[DocumentItem]:
    items: list[DocumentItem] = []
    for ref, resource in index.of_type("DocumentReference"):
        attachment = next((_dict(c.get("attachment")) for c in _dicts(resource.get("content"))), {})
        kind = _code(resource.get("type")).text or None
        context = _dict(resource.get("context"))
        items.append(
            DocumentItem(
                ref=ref,
                resource_type="DocumentReference",
                title=_s(resource.get("description")) or _s(attachment.get("title")) or kind or ref,
                type=kind,
                date=_s(resource.get("date")) or _s(attachment.get("creation")),
                status=_s(resource.get("docStatus")) or _s(resource.get("status")),
                author=next(
                    (n for a in _dicts(resource.get("author")) if (n := index.name(a))), None
                )
                or index.name(resource.get("custodian")),
                encounter_ref=next(
                    (k for e in _dicts(context.get("encounter")) if (k := index.key(e))), None
                ),
            )
        )
    for ref, resource in index.of_type("Composition"):
        kind = _code(resource.get("type")).text or None
        items.append(
            DocumentItem(
                ref=ref,
                resource_type="Composition",
                title=_s(resource.get("title")) or kind or ref,
                type=kind,
                date=_s(resource.get("date")),
                status=_s(resource.get("status")),
                author=next(
                    (n for a in _dicts(resource.get("author")) if (n := index.name(a))), None
                ),
                encounter_ref=index.key(resource.get("encounter")),
            )
        )
    items.sort(key=lambda d: _newest_first_key(d.date))
    return items


def _allergies(index: _Index) -> list[AllergyItem]:
    items: list[AllergyItem] = []
    for ref, resource in index.of_type("AllergyIntolerance"):
        verification = _code_of(resource.get("verificationStatus"))
        if verification in ("refuted", "entered-in-error"):
            continue
        reactions: list[Text] = []
        for reaction in _dicts(resource.get("reaction")):
            shown = _join(_code(m).text for m in _dicts(reaction.get("manifestation")))
            severity = _SEVERITY.get(_s(reaction.get("severity")) or "")
            if not shown:
                shown = _s(reaction.get("description")) or ""
            if not shown and severity is None:
                continue
            if severity is None:
                reactions.append(Text(shown, shown))
            else:
                reactions.append(
                    Text(
                        _join([shown, f"({severity.vi})"], " "),
                        _join([shown, f"({severity.en})"], " "),
                    )
                )
        items.append(
            AllergyItem(
                ref=ref,
                substance=_code(resource.get("code")),
                type=_s(resource.get("type")),
                categories=tuple(c for raw in _list(resource.get("category")) if (c := _s(raw))),
                criticality=_s(resource.get("criticality")),
                clinical_status=_code_of(resource.get("clinicalStatus")),
                verification_status=verification,
                reactions=tuple(reactions),
                onset=_s(resource.get("onsetDateTime"))
                or _s(_dict(resource.get("onsetPeriod")).get("start")),
                recorded=_s(resource.get("recordedDate")),
            )
        )
    # Active allergies first, then newest.
    items.sort(key=lambda a: _newest_first_key(a.recorded or a.onset))
    items.sort(key=lambda a: a.clinical_status not in (None, "active"))
    return items


def _chronic(conditions: Iterable[ConditionItem]) -> list[ChronicCondition]:
    """Merge repeated records of one chronic disease (hypertension recorded at every visit)."""
    groups: dict[str, list[ConditionItem]] = {}
    for condition in conditions:
        if not condition.chronic:
            continue
        key = (
            condition.icd10
            or f"{condition.code.system}|{condition.code.code}|{condition.code.text}"
        )
        groups.setdefault(key, []).append(condition)
    merged: list[ChronicCondition] = []
    for items in groups.values():
        newest = sorted(items, key=lambda c: _newest_first_key(c.recorded or c.onset))
        oldest = sorted(items, key=lambda c: _oldest_first_key(c.onset or c.recorded))
        merged.append(
            ChronicCondition(
                condition=newest[0],
                since=oldest[0].onset or oldest[0].recorded,
                refs=_dedupe(c.ref for c in oldest),
            )
        )
    merged.sort(key=lambda c: (c.condition.icd10 or "~", c.condition.code.text))
    return merged


def _procedures(index: _Index) -> list[ProcedureItem]:
    items: list[ProcedureItem] = []
    for ref, resource in index.of_type("Procedure"):
        status = _s(resource.get("status"))
        if status == "not-done":
            continue
        period = _dict(resource.get("performedPeriod"))
        items.append(
            ProcedureItem(
                ref=ref,
                code=_code(resource.get("code")),
                date=_s(resource.get("performedDateTime")) or _s(period.get("start")),
                end=_s(period.get("end")),
                status=status,
                facility=index.name(resource.get("location"))
                or next(
                    (
                        n
                        for p in _dicts(resource.get("performer"))
                        if (n := index.name(p.get("onBehalfOf")))
                    ),
                    None,
                ),
                encounter_ref=index.key(resource.get("encounter")),
            )
        )
    items.sort(key=lambda p: _newest_first_key(p.date))
    return items


def _family(index: _Index) -> list[FamilyHistoryItem]:
    items: list[FamilyHistoryItem] = []
    for ref, resource in index.of_type("FamilyMemberHistory"):
        if _s(resource.get("status")) in ("entered-in-error", "health-unknown"):
            continue
        relationship = _code(resource.get("relationship"))
        label = _RELATIONSHIP.get(relationship.code or "") or _same(relationship.text)
        conditions: list[str] = []
        for condition in _dicts(resource.get("condition")):
            text = _code(condition.get("code")).text
            icd = _icd10(condition.get("code"))
            if icd and text and text != icd:
                text = f"{icd} {text}"
            if text:
                onset = condition.get("onsetAge")
                if isinstance(onset, dict) and onset.get("value") is not None:
                    text += (
                        f" ({_fmt_number(onset['value'])} {_s(onset.get('unit')) or ''})".rstrip()
                    )
                conditions.append(text.replace(" )", ")"))
        deceased = bool(resource.get("deceasedBoolean")) or any(
            resource.get(k) is not None
            for k in ("deceasedAge", "deceasedRange", "deceasedDate", "deceasedString")
        )
        items.append(
            FamilyHistoryItem(
                ref=ref,
                relationship=relationship,
                relationship_label=label or Text("Người thân", "Relative"),
                conditions=tuple(conditions),
                deceased=deceased,
                date=_s(resource.get("date")),
            )
        )
    return items


def _risk_kind(obs: Mapping[str, Any], name: str) -> str:
    codes = _loinc_codes(obs.get("code"))
    lowered = name.lower()
    if codes & _TOBACCO_LOINC or any(w in lowered for w in ("thuốc lá", "tobacco", "smok")):
        return "tobacco"
    if codes & _ALCOHOL_LOINC or any(w in lowered for w in ("rượu", "alcohol", "bia")):
        return "alcohol"
    return "other"


def _observations(
    index: _Index,
) -> tuple[list[ResultItem], list[ReportItem], list[RiskFactorItem]]:
    report_of: dict[str, str] = {}
    reports: list[ReportItem] = []
    for ref, resource in index.of_type("DiagnosticReport"):
        results = _dedupe(index.key(r) for r in _dicts(resource.get("result")))
        for result in results:
            report_of.setdefault(result, ref)
        code = _code(resource.get("code"))
        conclusion = _s(resource.get("conclusion")) or _join(
            _code(c).text for c in _dicts(resource.get("conclusionCode"))
        )
        reports.append(
            ReportItem(
                ref=ref,
                name=code.text or code.code or _NONE,
                code=code,
                date=_effective(resource),
                status=_s(resource.get("status")),
                conclusion=conclusion or None,
                result_refs=results,
                performer=next(
                    (n for p in _dicts(resource.get("performer")) if (n := index.name(p))), None
                ),
            )
        )
    reports.sort(key=lambda r: _newest_first_key(r.date))

    results_out: list[ResultItem] = []
    risks: list[RiskFactorItem] = []
    for ref, resource in index.of_type("Observation"):
        if _s(resource.get("status")) == "cancelled":
            continue
        code = _code(resource.get("code"))
        name = code.text or code.code or _NONE
        categories = tuple(sorted(_codes_of(resource.get("category"))))
        value, numeric, unit = _value_text(resource)
        if value is None:
            value, unit = _components_text(resource)
        if value is None and isinstance(resource.get("dataAbsentReason"), dict):
            value = f"({_code(resource['dataAbsentReason']).text})"
        when = _effective(resource)
        if "social-history" in categories:
            kind = _risk_kind(resource, name)
            risks.append(
                RiskFactorItem(
                    ref=ref,
                    kind=kind,
                    label=_RISK_KINDS.get(kind) or Text(name, name),
                    value=f"{value} {unit}" if value and unit else value,
                    date=when,
                )
            )
            continue
        ranges = _dicts(resource.get("referenceRange"))
        reference = ranges[0] if ranges else {}
        low = _number(_dict(reference.get("low")).get("value"))
        high = _number(_dict(reference.get("high")).get("value"))
        range_text = _s(reference.get("text")) or _range_text(reference) or None
        interpretation = None
        label: Text | None = None
        for concept in _dicts(resource.get("interpretation")):
            interpretation = _code_of(concept) or _s(concept.get("text"))
            label = _INTERPRETATION.get(interpretation or "") or _same(_code(concept).text)
            break
        derived = False
        if interpretation is None and numeric is not None and (low is not None or high is not None):
            range_unit = _s(_dict(reference.get("low")).get("unit")) or _s(
                _dict(reference.get("high")).get("unit")
            )
            if range_unit is None or unit is None or range_unit == unit:
                interpretation = (
                    "L"
                    if low is not None and numeric < low
                    else "H"
                    if high is not None and numeric > high
                    else "N"
                )
                label, derived = _INTERPRETATION[interpretation], True
        results_out.append(
            ResultItem(
                ref=ref,
                category=categories,
                name=name,
                code=code,
                value=value,
                numeric=numeric,
                unit=unit,
                reference_range=range_text,
                low=low,
                high=high,
                interpretation=interpretation,
                interpretation_label=label,
                interpretation_derived=derived,
                date=when,
                status=_s(resource.get("status")),
                report_ref=report_of.get(ref),
            )
        )
    results_out.sort(key=lambda r: _newest_first_key(r.date))
    risks.sort(key=lambda r: _newest_first_key(r.date))
    return results_out, reports, risks


def _components_text(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Blood pressure and friends: ``120/80 mmHg`` when units agree, else named parts."""
    parts: list[tuple[str, str, str | None]] = []
    for component in _dicts(resource.get("component")):
        value, _, unit = _value_text(component)
        if value is not None:
            parts.append((_code(component.get("code")).text, value, unit))
    if not parts:
        return None, None
    units = {p[2] for p in parts}
    if len(units) == 1:
        return "/".join(p[1] for p in parts), next(iter(units))
    return "; ".join(_join([f"{p[0]}:" if p[0] else None, p[1], p[2]], " ") for p in parts), None


def _vaccine_names() -> Mapping[str, tuple[str, str]]:
    """TCMR vaccine names from the schedule; empty if the schedule cannot be read."""
    try:
        from ytehub.immunization.schedule import national_schedule

        return {c: (v.name_vi, v.name_en) for c, v in national_schedule().vaccines.items()}
    except (ImportError, OSError, KeyError, ValueError, AttributeError):
        return {}


def _immunizations(index: _Index) -> list[VaccineGroup]:
    names = _vaccine_names()
    groups: dict[str, tuple[Code, Text, list[ImmunizationDose]]] = {}
    for ref, resource in index.of_type("Immunization"):
        concept = _dict(resource.get("vaccineCode"))
        codings = [c for c in _dicts(concept.get("coding")) if _s(c.get("code"))]
        tcmr = next((c for c in codings if c.get("system") == TCMR_VACCINE_SYSTEM), None)
        cvx = next((c for c in codings if c.get("system") == CVX_SYSTEM), None)
        code = _code(concept, prefer=lambda c: c.get("system") == TCMR_VACCINE_SYSTEM)
        chosen = tcmr or cvx or (codings[0] if codings else None)
        key = (
            f"{chosen.get('system')}|{chosen.get('code')}" if chosen else f"text|{code.text or ref}"
        )
        if tcmr and (known := names.get(_s(tcmr.get("code")) or "")):
            label = Text(_s(concept.get("text")) or known[0], known[1])
        else:
            english = _s((cvx or {}).get("display")) or code.text or code.code or _NONE
            label = Text(code.text or english, english)
        protocol = next(iter(_dicts(resource.get("protocolApplied"))), {})
        dose_number = protocol.get("doseNumberPositiveInt") or protocol.get("doseNumberString")
        series_doses = protocol.get("seriesDosesPositiveInt") or protocol.get("seriesDosesString")
        site_code = _code(resource.get("site"))
        site = (
            _ACT_SITE.get(site_code.code or "")
            if not _s(_dict(resource.get("site")).get("text"))
            else None
        )
        dose = ImmunizationDose(
            ref=ref,
            date=_s(resource.get("occurrenceDateTime")) or _s(resource.get("recorded")),
            dose_number=str(dose_number) if dose_number is not None else None,
            series_doses=str(series_doses) if series_doses is not None else None,
            series=_s(protocol.get("series")),
            site=site or _same(site_code.text),
            route=_code(resource.get("route")).text or None,
            lot_number=_s(resource.get("lotNumber")),
            facility=index.name(resource.get("location"))
            or next(
                (n for p in _dicts(resource.get("performer")) if (n := index.name(p.get("actor")))),
                None,
            ),
            status=_s(resource.get("status")),
        )
        groups.setdefault(key, (code, label, []))[2].append(dose)
    out: list[VaccineGroup] = []
    for key, (code, label, doses) in groups.items():
        doses.sort(key=lambda d: _oldest_first_key(d.date))
        out.append(VaccineGroup(key=key, code=code, label=label, doses=tuple(doses)))
    out.sort(key=lambda g: _oldest_first_key(g.doses[0].date))
    return out


def _dose_text(dosage: Mapping[str, Any]) -> Text | None:
    """A dosage instruction as text: its own ``text``, else built from dose and timing."""
    if text := _s(dosage.get("text")):
        return Text(text, text)
    dose = next((_dict(d.get("doseQuantity")) for d in _dicts(dosage.get("doseAndRate"))), {})
    amount = (
        _join([_fmt_number(dose["value"]), _s(dose.get("unit")) or _s(dose.get("code"))], " ")
        if dose.get("value") is not None
        else ""
    )
    repeat = _dict(_dict(dosage.get("timing")).get("repeat"))
    frequency, period = repeat.get("frequency"), repeat.get("period")
    unit = _PERIOD_UNIT.get(_s(repeat.get("periodUnit")) or "")
    vi = en = amount
    if isinstance(frequency, int) and _number(period) is not None and unit is not None:
        every_vi = unit.vi if period == 1 else f"{_fmt_number(period)} {unit.vi}"
        every_en = unit.en if period == 1 else f"{_fmt_number(period)} {unit.en}s"
        vi = _join([amount, f"{frequency} lần/{every_vi}"], " × ")
        en = _join([amount, f"{frequency} times per {every_en}"], " × ")
    return Text(vi, en) if vi else None


def _medications(index: _Index, as_of: datetime) -> list[MedicationItem]:
    dispenses_of: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    unlinked: list[tuple[str, Mapping[str, Any]]] = []
    request_refs = {ref for ref, _ in index.of_type("MedicationRequest")}
    for ref, resource in index.of_type("MedicationDispense"):
        if _s(resource.get("status")) in ("cancelled", "declined"):
            continue
        linked = next(
            (
                k
                for p in _dicts(resource.get("authorizingPrescription"))
                if (k := index.key(p)) in request_refs
            ),
            None,
        )
        if linked:
            dispenses_of.setdefault(linked, []).append((ref, resource))
        else:
            unlinked.append((ref, resource))

    def drug(resource: Mapping[str, Any]) -> tuple[str, Code, str | None]:
        medication_ref = index.key(resource.get("medicationReference"))
        if isinstance(resource.get("medicationCodeableConcept"), dict):
            code = _code(resource["medicationCodeableConcept"])
        elif medication_ref:
            code = _code(index.by_ref[medication_ref].get("code"))
        else:
            code = Code(None, None, "")
        name = code.text or index.name(resource.get("medicationReference")) or code.code or _NONE
        return name, code, medication_ref

    def handed(resource: Mapping[str, Any]) -> str | None:
        return _s(resource.get("whenHandedOver")) or _s(resource.get("whenPrepared"))

    def in_force(start: str | None, end: str | None) -> bool:
        first, last = _range(start), _range(end)
        return (first is None or first.low <= as_of) and (last is None or last.high >= as_of)

    items: list[MedicationItem] = []
    for ref, resource in index.of_type("MedicationRequest"):
        name, code, medication_ref = drug(resource)
        dosage = next(iter(_dicts(resource.get("dosageInstruction"))), {})
        repeat = _dict(_dict(dosage.get("timing")).get("repeat"))
        bounds = _dict(repeat.get("boundsPeriod"))
        authored = _s(resource.get("authoredOn"))
        start = _s(bounds.get("start")) or authored
        end = (
            _s(bounds.get("end"))
            or _add_days(start, _duration_days(repeat.get("boundsDuration")))
            or _add_days(
                start,
                _duration_days(
                    _dict(resource.get("dispenseRequest")).get("expectedSupplyDuration")
                ),
            )
        )
        status = _s(resource.get("status"))
        linked = sorted(dispenses_of.get(ref, []), key=lambda d: _oldest_first_key(handed(d[1])))
        if status in ("active", "on-hold"):
            last = _range(end)
            current = last is None or last.high >= as_of
        elif status in (None, "unknown"):
            current = end is not None and in_force(start, end)
        else:
            current = False
        quantity = _dict(_dict(resource.get("dispenseRequest")).get("quantity"))
        items.append(
            MedicationItem(
                ref=ref,
                kind="request",
                name=name,
                code=code,
                dose=_dose_text(dosage),
                route=_code(dosage.get("route")).text or None,
                start=start,
                end=end,
                authored=authored,
                status=status,
                current=current,
                prescriber=index.name(resource.get("requester")),
                quantity=_join(
                    [
                        _fmt_number(quantity["value"])
                        if quantity.get("value") is not None
                        else None,
                        _s(quantity.get("unit")),
                    ],
                    " ",
                )
                or None,
                dispensed=_dedupe(handed(d) for _, d in linked),
                dispense_refs=_dedupe(r for r, _ in linked),
                medication_ref=medication_ref,
                encounter_ref=index.key(resource.get("encounter")),
            )
        )
    for ref, resource in unlinked:
        name, code, medication_ref = drug(resource)
        dosage = next(iter(_dicts(resource.get("dosageInstruction"))), {})
        start = handed(resource)
        end = _add_days(start, _duration_days(resource.get("daysSupply")))
        status = _s(resource.get("status"))
        quantity = _dict(resource.get("quantity"))
        items.append(
            MedicationItem(
                ref=ref,
                kind="dispense",
                name=name,
                code=code,
                dose=_dose_text(dosage),
                route=_code(dosage.get("route")).text or None,
                start=start,
                end=end,
                authored=None,
                status=status,
                current=status in ("completed", "in-progress")
                and end is not None
                and in_force(start, end),
                prescriber=None,
                quantity=_join(
                    [
                        _fmt_number(quantity["value"])
                        if quantity.get("value") is not None
                        else None,
                        _s(quantity.get("unit")),
                    ],
                    " ",
                )
                or None,
                dispensed=_dedupe([start]),
                dispense_refs=(),
                medication_ref=medication_ref,
                encounter_ref=index.key(resource.get("context")),
            )
        )
    items.sort(key=lambda m: _newest_first_key(m.start or m.authored))
    return items


_TIMELINE_ORDER = {
    "encounter": 0,
    "diagnosis": 1,
    "procedure": 2,
    "lab": 3,
    "medication": 4,
    "immunization": 5,
}


def _timeline(
    encounters: list[EncounterItem],
    conditions: dict[str, ConditionItem],
    procedures: list[ProcedureItem],
    results: list[ResultItem],
    reports: list[ReportItem],
    medications: list[MedicationItem],
    immunizations: list[VaccineGroup],
) -> tuple[TimelineEvent, ...]:
    events: list[TimelineEvent] = []
    starts = {e.ref: e.start for e in encounters}

    def add(when: str | None, kind: str, vi: str, en: str, ref: str | None) -> None:
        if _range(when) is not None:
            events.append(TimelineEvent(when or "", kind, Text(vi, en), ref))

    for e in encounters:
        if e.status == "cancelled":  # it never happened
            continue
        where = f" — {e.facility}" if e.facility else ""
        add(
            e.start or e.end, "encounter", e.event_label.vi + where, e.event_label.en + where, e.ref
        )
    for c in conditions.values():
        when = c.date or (starts.get(c.encounter_ref) if c.encounter_ref else None)
        add(when, "diagnosis", f"Chẩn đoán: {c.label}", f"Diagnosis: {c.label}", c.ref)
    for p in procedures:
        name = p.code.text or p.code.code or _NONE
        add(p.date, "procedure", f"Phẫu thuật, thủ thuật: {name}", f"Procedure: {name}", p.ref)
    for r in results:
        flag = r.interpretation_label
        vi = _join(
            [f"{r.name}: {r.value_with_unit or _NONE}", f"({flag.vi})" if flag else None], " "
        )
        en = _join(
            [f"{r.name}: {r.value_with_unit or _NONE}", f"({flag.en})" if flag else None], " "
        )
        if "vital-signs" in r.category:
            add(r.date, "lab", f"Chỉ số sinh tồn: {vi}", f"Vital sign: {en}", r.ref)
        else:
            add(r.date, "lab", f"Xét nghiệm, cận lâm sàng: {vi}", f"Result: {en}", r.ref)
    for report in reports:
        add(
            report.date,
            "lab",
            f"Phiếu kết quả: {report.name}",
            f"Report: {report.name}",
            report.ref,
        )
    for m in medications:
        if m.status in ("cancelled", "draft"):
            continue
        if m.kind == "request":
            add(
                m.authored or m.start,
                "medication",
                f"Kê đơn: {m.name}",
                f"Prescribed: {m.name}",
                m.ref,
            )
            for when, ref in zip(m.dispensed, m.dispense_refs, strict=False):
                add(when, "medication", f"Cấp thuốc: {m.name}", f"Dispensed: {m.name}", ref)
        else:
            add(m.start, "medication", f"Cấp thuốc: {m.name}", f"Dispensed: {m.name}", m.ref)
    for group in immunizations:
        for dose in group.doses:
            if dose.status == "not-done":
                continue
            number_vi = f", mũi {dose.dose_number}" if dose.dose_number else ""
            number_en = f", dose {dose.dose_number}" if dose.dose_number else ""
            add(
                dose.date,
                "immunization",
                f"Tiêm chủng: {group.label.vi}{number_vi}",
                f"Immunization: {group.label.en}{number_en}",
                dose.ref,
            )
    events.sort(key=lambda e: (_newest_first_key(e.date), _TIMELINE_ORDER[e.kind]))
    return tuple(events)


def build_record(
    patient: dict[str, Any], resources: Iterable[dict[str, Any]], *, as_of: datetime | None = None
) -> PersonalRecord:
    """Summarise one person's compartment by the sections of QĐ 831.

    ``resources`` are FHIR R4 resources as plain JSON; kinds that feed no section are
    ignored, ``entered-in-error``/refuted ones are dropped, and a resource whose subject is
    another Patient is skipped. ``as_of`` (default: now) decides what is *current*
    (medications, upcoming appointments, age); a naive value is read as Vietnam time.
    """
    if as_of is None:
        as_of = datetime.now(UTC)
    elif as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=VIETNAM_TZ)
    index = _Index(patient, resources)

    conditions: dict[str, ConditionItem] = {}
    for ref, resource in index.of_type("Condition"):
        item = _condition(index, ref, resource)
        if item is not None:
            conditions[ref] = item
    encounters, attached = _encounters(index, conditions)
    chronic = _chronic(conditions.values())
    past = sorted(
        (
            c
            for c in conditions.values()
            if not c.chronic and c.ref not in attached and not c.encounter_ref
        ),
        key=lambda c: _newest_first_key(c.date),
    )
    procedures = _procedures(index)
    results, reports, risks = _observations(index)
    vaccines = _immunizations(index)
    medications = _medications(index, as_of)
    timeline = _timeline(
        encounters, conditions, procedures, results, reports, medications, vaccines
    )
    return PersonalRecord(
        as_of=as_of,
        administrative=_administrative(index, as_of),
        history=History(
            allergies=tuple(_allergies(index)),
            chronic_conditions=tuple(chronic),
            past_conditions=tuple(past),
            procedures=tuple(procedures),
            family_history=tuple(_family(index)),
            risk_factors=tuple(risks),
        ),
        immunizations=Immunizations(groups=tuple(vaccines)),
        encounters=Encounters(
            encounters=tuple(encounters),
            appointments=tuple(_appointments(index, as_of)),
            documents=tuple(_documents(index)),
        ),
        medications=Medications(
            current=tuple(m for m in medications if m.current),
            past=tuple(m for m in medications if not m.current),
        ),
        results=Results(results=tuple(results), reports=tuple(reports)),
        timeline=timeline,
        resources=dict(index.by_ref),
    )
