"""One QĐ 4750 episode (the tables of one HOSO) as FHIR R4 resources: pure, no database.

Nothing here creates a Patient: every resource points at ``Patient/{patient_id}`` through one
shared reference, set once the registry has resolved the person. Ids are UUIDv7-shaped: the
time the episode was first recorded, then a hash of (facility, MA_LK, table, row key, kind),
so a corrected resubmission of an episode (mapped with its first time) rewrites the same
resources (new versions). ``content_hash`` lets the pipeline skip an identical resubmission
without writing anything.

Speed matters (the ingest target is 1,000 episodes/s end to end on two cores, storage
included): plain dicts, no models, the common id prefix hashed once per episode, a cache for
date conversions — about 10 µs per resource. Choices and the element-by-element mapping:
``docs/ingest-mapping.md``.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson

__all__ = [
    "MAPPING_VERSION",
    "NAMESPACE",
    "MappedEpisode",
    "SourceFile",
    "content_hash",
    "map_episode",
    "resource_id",
]

MAPPING_VERSION = "1"
"""Part of the content hash: a new mapping makes every resubmission count as a change."""

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ytehub:ingest:qd4750")
"""uuid5 namespace of every resource id made here (fixed: ids must never change)."""

Resource = dict[str, Any]
Row = dict[str, str]

# Identifier systems (facility-scoped ones get ":" + facility code).
SID_FACILITY = "urn:ytehub:sid:facility"
SID_BHXH = "urn:ytehub:sid:bhxh"
SID_CCHN = "urn:ytehub:sid:cchn"
SID_FILE = "urn:ytehub:sid:file-sha256"
SID_DRUG = "urn:ytehub:sid:drug-code"
SID_SERVICE = "urn:ytehub:sid:service-code"
SID_SUPPLY = "urn:ytehub:sid:supply-code"
SID_INDICATOR = "urn:ytehub:sid:indicator-code"
SID_MA_LK = "urn:ytehub:sid:ma-lk:"
SID_MA_HSBA = "urn:ytehub:sid:ma-hsba:"
SID_MA_KHOA = "urn:ytehub:sid:ma-khoa:"
SID_STAFF = "urn:ytehub:sid:staff:"

# Code systems: international ones, HL7 terminology, and ytehub's for the national code lists.
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
_THO = "http://terminology.hl7.org/CodeSystem/"
V3_ACT = _THO + "v3-ActCode"
CS_TABLE = "urn:ytehub:cs:qd4750-table"
CS_ELEMENT = "urn:ytehub:cs:qd4750-element"
CS_LOAI_KCB = "urn:ytehub:cs:ma-loai-kcb"
CS_KET_QUA = "urn:ytehub:cs:ket-qua-dtri"
CS_LOAI_RV = "urn:ytehub:cs:ma-loai-rv"
CS_DOITUONG = "urn:ytehub:cs:ma-doituong-kcb"
CS_MA_NHOM = "urn:ytehub:cs:ma-nhom"
CS_ROUTE = "urn:ytehub:cs:duong-dung"
CS_LYDO_CT = "urn:ytehub:cs:ma-lydo-ct"
CS_TB = "urn:ytehub:cs:qd4750-xml15:"  # + element name in lower case

# Extensions.
EXT_OUTCOME = "urn:ytehub:ext:ket-qua-dtri"
EXT_DOITUONG = "urn:ytehub:ext:ma-doituong-kcb"
EXT_COST = "urn:ytehub:ext:qd4750-cost"
EXT_RECEIVED = "urn:ytehub:ext:received"
EXT_TB = "urn:ytehub:ext:qd4750-xml15"
EXT_DONE = "urn:ytehub:ext:ngay-th-yl"  # when the order was carried out (NGAY_TH_YL)

_XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">'
_SEP = "\x1f"  # cannot occur in XML 1.0 text, so id names are unambiguous
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


@dataclass(frozen=True, slots=True)
class SourceFile:
    """The file an episode came from, as the Provenance names it."""

    name: str
    sha256: str  # hex digest of the file's bytes
    received: datetime


@dataclass(frozen=True, slots=True)
class MappedEpisode:
    """The FHIR resources of one episode (each with an ``id``) and the hash of its rows.

    ``patient`` is the one reference dict every resource shares: an episode is mapped with
    the file, before the client registry has named the person, and pointed at them with
    :meth:`for_patient`."""

    ma_lk: str
    resources: list[Resource]
    content_hash: str
    patient: dict[str, str]

    def for_patient(self, patient_id: str) -> MappedEpisode:
        self.patient["reference"] = f"Patient/{patient_id}"
        return self


# ---------------------------------------------------------------------------------------------
# Code lists (vn-formats.md §1.6)

_LOAI_KCB: dict[str, tuple[str, str]] = {  # MA_LOAI_KCB → (Encounter.class code, name)
    "01": ("AMB", "Khám bệnh"),
    "02": ("AMB", "Điều trị ngoại trú"),
    "03": ("IMP", "Điều trị nội trú"),
    "04": ("SS", "Điều trị nội trú ban ngày"),
    "05": ("AMB", "Điều trị ngoại trú các bệnh mạn tính dài ngày, có khám bệnh và lĩnh thuốc"),
    "06": ("IMP", "Điều trị lưu tại trạm y tế xã, phòng khám đa khoa khu vực"),
    "07": ("AMB", "Nhận thuốc theo hẹn (không khám bệnh)"),
    "08": ("AMB", "Điều trị ngoại trú các bệnh mạn tính dài ngày, có khám bệnh, chỉ định DVKT"),
    "09": ("IMP", "Điều trị nội trú dưới 04 giờ"),
    "10": ("AMB", "Các trường hợp khác"),
}
_CLASS_DISPLAY = {
    "AMB": "ambulatory",
    "IMP": "inpatient encounter",
    "SS": "short stay",
    "EMER": "emergency",
}
_KET_QUA = {
    "1": "Khỏi",
    "2": "Đỡ",
    "3": "Không thay đổi",
    "4": "Nặng hơn",
    "5": "Tử vong",
    "6": "Tiên lượng nặng xin về",
    "7": "Chưa xác định",
    "8": "Tử vong ngoại viện",
}
_LOAI_RV = {
    "1": "Ra viện",
    "2": "Chuyển tuyến theo yêu cầu chuyên môn",
    "3": "Trốn viện",
    "4": "Xin ra viện",
    "5": "Chuyển tuyến theo yêu cầu người bệnh",
}
_DISPOSITION = {  # code of http://terminology.hl7.org/CodeSystem/discharge-disposition
    "exp": "Expired",
    "other-hcf": "Other healthcare facility",
    "aadvice": "Left against advice",
    "home": "Home",
}
_MA_NHOM = {
    "1": "Xét nghiệm",
    "2": "Chẩn đoán hình ảnh",
    "3": "Thăm dò chức năng",
    "7": "Máu và chế phẩm máu",
    "8": "Phẫu thuật",
    "9": "DVKT thanh toán theo tỷ lệ",
    "17": "Chế phẩm máu",
    "18": "Thủ thuật",
}
_REPORT_GROUPS = frozenset({"1", "2", "3"})  # para-clinical: results come in XML4
_SUPPLY_GROUPS = frozenset({"10", "11"})
# Not clinical facts of their own: examination (the Encounter), bed-days (its period and
# length), transport and other services; their money is in the Encounter's cost totals.
_SKIPPED_GROUPS = frozenset({"12", "13", "14", "15", "16", "19"})
_OBS_CATEGORY = {"1": "laboratory", "2": "imaging", "3": "procedure"}
_REPORT_CATEGORY = {"1": ("LAB", "Laboratory"), "2": ("RAD", "Radiology"), "3": ("OTH", "Other")}
_INTERPRETATION = {  # KET_LUAN written as a single word → v3-ObservationInterpretation
    "tăng": ("H", "High"),
    "cao": ("H", "High"),
    "giảm": ("L", "Low"),
    "thấp": ("L", "Low"),
    "bình thường": ("N", "Normal"),
    "dương tính": ("POS", "Positive"),
    "âm tính": ("NEG", "Negative"),
}
_TB_ELEMENTS = (
    "PHANLOAI_LAO_VITRI",
    "PHANLOAI_LAO_TS",
    "PHANLOAI_LAO_HIV",
    "PHANLOAI_LAO_VK",
    "PHANLOAI_LAO_KT",
    "PHACDO_DTRI_LAO",
    "KET_QUA_DTRI_LAO",
)
_LOAI_DTRI_LAO = {
    "0": "Không điều trị lao",
    "1": "Điều trị lao tiềm ẩn",
    "2": "Điều trị bệnh lao",
}

# Sections of the documents (Composition per row): element, label, kind ("t" text,
# "dt" yyyymmddHHMM, "d" yyyymmdd).
_Section = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class _DocSpec:
    title: str
    loinc: tuple[str, str] | None  # (code, display) when a LOINC document type fits
    identifier: tuple[str, ...]  # elements joined with "/" into the identifier value
    id_system: str  # facility-scoped identifier system prefix
    authors: tuple[tuple[str, str], ...]  # (code element, name element)
    sections: tuple[_Section, ...]


_DOCS: dict[str, _DocSpec] = {
    "XML7": _DocSpec(
        "Giấy ra viện",
        ("18842-5", "Discharge summary"),
        ("SO_LUU_TRU",),
        "urn:ytehub:sid:so-luu-tru:",
        (("MA_BS", "TEN_BS"),),
        (
            ("MA_KHOA_RV", "Khoa ra viện", "t"),
            ("NGAY_VAO", "Vào viện", "dt"),
            ("NGAY_RA", "Ra viện", "dt"),
            ("CHAN_DOAN_RV", "Chẩn đoán", "t"),
            ("PP_DIEUTRI", "Phương pháp điều trị", "t"),
            ("MA_DINH_CHI_THAI", "Đình chỉ thai nghén (1: có)", "t"),
            ("NGUYENNHAN_DINHCHI", "Nguyên nhân đình chỉ thai nghén", "t"),
            ("THOIGIAN_DINHCHI", "Thời điểm đình chỉ thai nghén", "dt"),
            ("TUOI_THAI", "Tuổi thai (tuần)", "t"),
            ("GHI_CHU", "Ghi chú", "t"),
            ("HO_TEN_CHA", "Họ tên cha", "t"),
            ("HO_TEN_ME", "Họ tên mẹ", "t"),
            ("MA_THE_TAM", "Mã thẻ BHYT tạm thời", "t"),
            ("SO_NGAY_NGHI", "Số ngày nghỉ ngoại trú", "t"),
            ("NGOAITRU_TUNGAY", "Nghỉ ngoại trú từ ngày", "d"),
            ("NGOAITRU_DENNGAY", "Nghỉ ngoại trú đến ngày", "d"),
        ),
    ),
    "XML8": _DocSpec(
        "Tóm tắt hồ sơ bệnh án",
        ("34133-9", "Summary of episode note"),
        (),
        "",
        (),
        (
            ("NGAY_VAO", "Vào viện", "dt"),
            ("NGAY_RA", "Ra viện", "dt"),
            ("CHAN_DOAN_VAO", "Chẩn đoán vào viện", "t"),
            ("CHAN_DOAN_RV", "Chẩn đoán ra viện", "t"),
            ("QT_BENHLY", "Quá trình bệnh lý và diễn biến lâm sàng", "t"),
            ("TOMTAT_KQ", "Tóm tắt kết quả cận lâm sàng", "t"),
            ("PP_DIEUTRI", "Phương pháp điều trị", "t"),
            ("KET_QUA_DTRI", "Kết quả điều trị", "t"),
            ("NGAY_SINHCON", "Ngày sinh con", "d"),
            ("NGAY_CONCHET", "Ngày con chết", "d"),
            ("SO_CONCHET", "Số con chết", "t"),
            ("HO_TEN_CHA", "Họ tên cha", "t"),
            ("HO_TEN_ME", "Họ tên mẹ", "t"),
            ("NGUOI_GIAM_HO", "Người giám hộ", "t"),
            ("DON_VI", "Đơn vị công tác", "t"),
            ("GHI_CHU", "Ghi chú", "t"),
        ),
    ),
    "XML9": _DocSpec(
        "Giấy chứng sinh",
        None,
        ("QUYEN_SO", "SO"),
        "urn:ytehub:sid:giay-chung-sinh:",
        (),
        (
            ("HO_TEN_NND", "Họ tên mẹ hoặc người nuôi dưỡng", "t"),
            ("HO_TEN_CHA", "Họ tên cha", "t"),
            ("HO_TEN_CON", "Họ tên con (dự kiến)", "t"),
            ("GIOI_TINH_CON", "Giới tính con (1: nam, 2: nữ, 3: chưa xác định)", "t"),
            ("NGAY_SINH_CON", "Thời điểm sinh", "dt"),
            ("CAN_NANG_CON", "Cân nặng (gram)", "t"),
            ("SO_CON", "Số con trong lần sinh", "t"),
            ("LAN_SINH", "Lần sinh", "t"),
            ("SO_CON_SONG", "Số con hiện sống", "t"),
            ("NOI_SINH_CON", "Nơi sinh", "t"),
            ("TINH_TRANG_CON", "Tình trạng của trẻ", "t"),
            ("SINHCON_PHAUTHUAT", "Sinh con phải phẫu thuật (1: có)", "t"),
            ("SINHCON_DUOI32TUAN", "Sinh con dưới 32 tuần (1: có)", "t"),
            ("MA_THE_TAM", "Mã thẻ BHYT tạm thời của con", "t"),
            ("NGUOI_DO_DE", "Người đỡ đẻ", "t"),
            ("NGUOI_GHI_PHIEU", "Người ghi phiếu", "t"),
            ("GHI_CHU", "Ghi chú", "t"),
        ),
    ),
    "XML10": _DocSpec(
        "Giấy chứng nhận nghỉ dưỡng thai",
        None,
        ("SO_SERI",),
        "urn:ytehub:sid:so-seri:",
        (("MA_BS", "TEN_BS"),),
        (
            ("CHAN_DOAN_RV", "Chẩn đoán", "t"),
            ("SO_NGAY", "Số ngày nghỉ", "t"),
            ("TU_NGAY", "Từ ngày", "d"),
            ("DEN_NGAY", "Đến ngày", "d"),
            ("DON_VI", "Đơn vị công tác", "t"),
        ),
    ),
    "XML11": _DocSpec(
        "Giấy chứng nhận nghỉ việc hưởng bảo hiểm xã hội",
        None,
        ("SO_SERI",),
        "urn:ytehub:sid:so-seri:",
        (("MA_BS", ""),),
        (
            ("CHAN_DOAN_RV", "Chẩn đoán", "t"),
            ("PP_DIEUTRI", "Phương pháp điều trị", "t"),
            ("SO_NGAY_NGHI", "Số ngày nghỉ", "t"),
            ("TU_NGAY", "Từ ngày", "d"),
            ("DEN_NGAY", "Đến ngày", "d"),
            ("MA_DINH_CHI_THAI", "Đình chỉ thai nghén (1: có)", "t"),
            ("NGUYENNHAN_DINHCHI", "Nguyên nhân đình chỉ thai nghén", "t"),
            ("TUOI_THAI", "Tuổi thai (tuần)", "t"),
            ("HO_TEN_CHA", "Họ tên cha", "t"),
            ("HO_TEN_ME", "Họ tên mẹ", "t"),
            ("DON_VI", "Đơn vị công tác", "t"),
            ("MAU_SO", "Mẫu số", "t"),
        ),
    ),
}
_REFERRAL_NOTES = (
    ("DAU_HIEU_LS", "Dấu hiệu lâm sàng"),
    ("QT_BENHLY", "Quá trình bệnh lý và diễn biến lâm sàng"),
    ("TOMTAT_KQ", "Tóm tắt kết quả cận lâm sàng"),
    ("PP_DIEUTRI", "Phương pháp điều trị"),
    ("TEN_DICH_VU", "Dịch vụ kỹ thuật đã dùng"),
    ("TEN_THUOC", "Thuốc đã dùng"),
    ("HUONG_DIEU_TRI", "Hướng điều trị"),
    ("PHUONGTIEN_VC", "Phương tiện vận chuyển"),
    ("HOTEN_NGUOI_HT", "Người hộ tống"),
    ("CHUCDANH_NGUOI_HT", "Chức danh người hộ tống"),
)
_NOTE_PARTS = (
    ("GIAI_DOAN_BENH", "Giai đoạn bệnh"),
    ("HOI_CHAN", "Hội chẩn"),
    ("PHAU_THUAT", "Phẫu thuật, thủ thuật"),
)
_COST_ELEMENTS = ("T_TONGCHI_BV", "T_TONGCHI_BH", "T_BHTT", "T_BNCCT", "T_BNTT", "T_NGUONKHAC")
_DAYS = re.compile(r"\*\s*([1-9]\d{0,3})\s*ngày")  # official LIEU_DUNG: "… * 3 lần/ngày * 7 ngày"
_NUMBER = re.compile(r"\s*(<=|>=|<|>)?\s*(-?\d+(?:\.\d+)?)\s*")


# ---------------------------------------------------------------------------------------------
# Values


_DT_CACHE: dict[str, str | None] = {}
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _fhir_time(text: str) -> str | None:
    """``yyyymmddHHMM`` (Vietnam time) → FHIR dateTime with seconds and offset; ``yyyymmdd``
    → a date. None for anything else, so a malformed value never makes a resource invalid."""
    found = _DT_CACHE.get(text, _DT_CACHE)
    if found is not _DT_CACHE:
        return found  # type: ignore[return-value]
    value = text.strip()
    out: str | None = None
    if (len(value) == 12 or len(value) == 8) and value.isascii() and value.isdigit():
        year, month, day = int(value[:4]), int(value[4:6]), int(value[6:8])
        ok = year >= 1 and 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month]
        if ok and month == 2 and day == 29:
            ok = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if ok and len(value) == 12:
            ok = int(value[8:10]) < 24 and int(value[10:12]) < 60
            date = f"{value[:4]}-{value[4:6]}-{value[6:8]}"
            out = f"{date}T{value[8:10]}:{value[10:12]}:00+07:00" if ok else None
        elif ok:
            out = f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    if len(_DT_CACHE) > 200_000:
        _DT_CACHE.clear()
    _DT_CACHE[text] = out
    return out


def _instant(text: str) -> str | None:
    """An instant needs the time of day: only ``yyyymmddHHMM`` values qualify."""
    out = _fhir_time(text)
    return out if out is not None and len(out) > 10 else None


def _show(value: str, kind: str) -> str:
    """A value for people to read (dates as dd/mm/yyyy HH:MM), as written when malformed."""
    if kind != "t":
        found = _fhir_time(value)
        if found is not None:
            shown = f"{found[8:10]}/{found[5:7]}/{found[:4]}"
            return f"{shown} {found[11:16]}" if len(found) > 10 else shown
    return value.strip()


def _number(text: str) -> int | float | None:
    """A decimal as written ("9.000", "45000.00"): None when it is not a finite number."""
    value = text.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and abs(number) < 1e15 else number


def _duration(days: int) -> dict[str, Any]:
    return {"value": days, "unit": "ngày", "system": UCUM, "code": "d"}


def _split(text: str) -> list[str]:
    """A ';'-separated multi-valued element (MA_BENH_KT, MA_KHOA, MA_BAC_SI …)."""
    return [part for part in (p.strip() for p in text.split(";")) if part] if text else []


def _instant_of(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _div(*paragraphs: str) -> str:
    """Narrative XHTML from plain text paragraphs (escaped)."""
    return _XHTML + "".join(f"<p>{escape(p, quote=False)}</p>" for p in paragraphs) + "</div>"


def content_hash(facility_code: str, episode: dict[str, list[Row]]) -> str:
    """SHA-256 over the episode's rows in canonical form (tables and elements sorted, values
    as written, rows in file order) and the mapping version."""
    canonical = orjson.dumps([MAPPING_VERSION, facility_code, episode], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def resource_id(
    facility_code: str, ma_lk: str, table: str, key: str, kind: str, prefix: str
) -> str:
    """The id of one resource: a UUIDv7 whose 48 time bits are ``prefix`` (see
    :func:`id_prefix`) and whose other bits come from SHA-1 over (NAMESPACE,
    facility␟MA_LK␟table␟key␟kind), as uuid5 takes them."""
    return _id_maker(facility_code, ma_lk, prefix)(table, key, kind)


def id_prefix(recorded: datetime) -> str:
    """The 12 hex digits that lead an episode's ids: when it was first recorded here (UTC
    milliseconds), as UUIDv7 leads with its creation time. New resources then sort after
    every stored one, so their rows append at the right edge of each index instead of
    landing all over it: SQLite spends about a third less per index row than with the
    admission time, whose order follows the files, not the clock."""
    millis = int(recorded.timestamp() * 1000)
    if not 0 <= millis < 1 << 48:
        raise ValueError(f"{recorded} does not fit a UUIDv7 time")
    return f"{millis:012x}"


def prefix_of(resource_id: str) -> str:
    """The :func:`id_prefix` an id was made with."""
    return resource_id[:8] + resource_id[9:13]


def _id_maker(facility_code: str, ma_lk: str, prefix: str) -> Callable[[str, str, str], str]:
    """resource_id with the common part hashed once per episode (same values, faster)."""
    base = hashlib.sha1(NAMESPACE.bytes)
    base.update(f"{facility_code}{_SEP}{ma_lk}{_SEP}".encode())
    lead = f"{prefix[:8]}-{prefix[8:12]}-7"

    def make(table: str, key: str, kind: str) -> str:
        digest = base.copy()
        digest.update(f"{table}{_SEP}{key}{_SEP}{kind}".encode())
        h = digest.hexdigest()  # version 7 in the 13th digit, RFC 4122 variant in the 17th
        return f"{lead}{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"

    return make


def _row_keys(rows: list[Row]) -> list[str]:
    """STT when every row of the table has a distinct one, else the row number (1-based)."""
    keys = [row.get("STT", "").strip() for row in rows]
    if all(keys) and len(set(keys)) == len(keys):
        return keys
    return [str(n) for n in range(1, len(rows) + 1)]


# ---------------------------------------------------------------------------------------------
# The mapper


class _Episode:
    """Builds the resources of one episode; one instance per call of map_episode."""

    __slots__ = (
        "conditions",
        "diagnoses",
        "encounter_ref",
        "facility",
        "ma_lk",
        "make_id",
        "out",
        "patient_reference",
        "principal_ref",
        "tables",
        "x1",
    )

    def __init__(
        self,
        facility: str,
        ma_lk: str,
        tables: dict[str, list[Row]],
        patient_id: str,
        prefix: str,
    ) -> None:
        self.facility = facility
        self.ma_lk = ma_lk
        self.tables = tables
        self.x1 = tables["XML1"][0]
        self.patient_reference = {"reference": f"Patient/{patient_id}"}
        self.make_id = _id_maker(facility, ma_lk, prefix)
        self.out: list[Resource] = []
        self.encounter_ref = ""
        self.principal_ref = ""
        self.conditions: dict[str, str] = {}  # ICD-10 code → "Condition/id"
        self.diagnoses: list[str] = []  # "Condition/id" of XML1's diagnoses, principal first

    # -- references ---------------------------------------------------------------------------

    def patient(self) -> dict[str, str]:
        return self.patient_reference

    def encounter(self) -> dict[str, str]:
        return {"reference": self.encounter_ref}

    def org(self, code: str) -> dict[str, Any]:
        """A facility as a logical reference (no stored Organization needed)."""
        return {"type": "Organization", "identifier": {"system": SID_FACILITY, "value": code}}

    def practitioner(self, code: str, name: str = "") -> dict[str, Any]:
        """Staff by practising certificate (NNNNNNN/XX-CCHN), mã định danh y tế (the 10-digit
        BHXH number) or, failing both, the facility's own code."""
        if code.endswith("CCHN") or "/" in code:
            system = SID_CCHN
        elif len(code) == 10 and code.isdigit():
            system = SID_BHXH
        else:
            system = SID_STAFF + self.facility
        ref: dict[str, Any] = {
            "type": "Practitioner",
            "identifier": {"system": system, "value": code},
        }
        if name:
            ref["display"] = name
        return ref

    def department(self, code: str) -> dict[str, Any]:
        return {
            "type": "Location",
            "identifier": {"system": SID_MA_KHOA + self.facility, "value": code},
            "display": code,
        }

    def add(self, resource: Resource) -> str:
        self.out.append(resource)
        return f"{resource['resourceType']}/{resource['id']}"

    # -- XML1 ---------------------------------------------------------------------------------

    def encounter_id(self) -> str:
        return self.make_id("XML1", "1", "encounter")

    def map_conditions(self) -> None:
        x1 = self.x1
        main = x1.get("MA_BENH_CHINH", "").strip()
        secondary = _split(x1.get("MA_BENH_KT", ""))
        texts = [t.strip() for t in x1.get("CHAN_DOAN_RV", "").split(";")]
        aligned = len(texts) == 1 + len(secondary)
        recorded = _fhir_time(x1.get("NGAY_RA", "")) or _fhir_time(x1.get("NGAY_VAO", ""))
        entries: list[tuple[str, str, str]] = []  # (kind, code, text)
        if main:
            text = texts[0] if aligned else x1.get("CHAN_DOAN_RV", "").strip()
            entries.append(("condition-principal", main, text))
        for n, code in enumerate(secondary, start=1):
            entries.append((f"condition-secondary-{n}", code, texts[n] if aligned else ""))
        for kind, code, text in entries:
            concept: dict[str, Any] = {"coding": [{"system": ICD10, "code": code}]}
            if text:
                concept["text"] = text
            condition: Resource = {
                "resourceType": "Condition",
                "id": self.make_id("XML1", "1", kind),
                "verificationStatus": {
                    "coding": [{"system": _THO + "condition-ver-status", "code": "confirmed"}]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": _THO + "condition-category",
                                "code": "encounter-diagnosis",
                                "display": "Encounter Diagnosis",
                            }
                        ]
                    }
                ],
                "code": concept,
                "subject": self.patient(),
                "encounter": self.encounter(),
            }
            if recorded:
                condition["recordedDate"] = recorded
            ref = self.add(condition)
            self.diagnoses.append(ref)
            self.conditions.setdefault(code, ref)
            if kind == "condition-principal":
                self.principal_ref = ref

    def map_encounter(self, episode_of_care: str | None) -> None:
        x1 = self.x1
        loai = x1.get("MA_LOAI_KCB", "").strip()
        known = _LOAI_KCB.get(loai)
        doituong = x1.get("MA_DOITUONG_KCB", "").strip()
        if known is None:
            klass = {"system": _THO + "v3-NullFlavor", "code": "UNK", "display": "unknown"}
        else:
            code = "EMER" if known[0] == "AMB" and doituong == "2" else known[0]
            klass = {"system": V3_ACT, "code": code, "display": _CLASS_DISPLAY[code]}
        start = _fhir_time(x1.get("NGAY_VAO", ""))
        end = _fhir_time(x1.get("NGAY_RA", ""))
        encounter: Resource = {
            "resourceType": "Encounter",
            "id": self.encounter_ref.partition("/")[2],
            "identifier": [{"system": SID_MA_LK + self.facility, "value": self.ma_lk}],
            "status": "finished" if end else "in-progress",
            "class": klass,
        }
        hsba = x1.get("MA_HSBA", "").strip()
        if hsba:
            encounter["identifier"].append({"system": SID_MA_HSBA + self.facility, "value": hsba})
        if known is not None:
            encounter["type"] = [
                {"coding": [{"system": CS_LOAI_KCB, "code": loai, "display": known[1]}]}
            ]
        service = next(
            (r for r in self.tables.get("XML3", ()) if r.get("MA_NHOM", "").strip() == "13"), None
        )
        if service is not None and service.get("MA_DICH_VU", "").strip():
            encounter["serviceType"] = {
                "coding": [{"system": SID_SERVICE, "code": service["MA_DICH_VU"].strip()}],
                "text": service.get("TEN_DICH_VU", "").strip() or service["MA_DICH_VU"].strip(),
            }
        encounter["subject"] = self.patient()
        if episode_of_care:
            encounter["episodeOfCare"] = [{"reference": episode_of_care}]
        period = {}
        if start:
            period["start"] = start
        if end:
            period["end"] = end
        if period:
            encounter["period"] = period
        days = _number(x1.get("SO_NGAY_DTRI", ""))
        if isinstance(days, int) and days > 0:
            encounter["length"] = {"value": days, "unit": "ngày", "system": UCUM, "code": "d"}
        reason = x1.get("LY_DO_VV", "").strip()
        if reason:
            encounter["reasonCode"] = [{"text": reason}]
        diagnoses = []
        for n, ref in enumerate(self.diagnoses):
            principal = n == 0 and bool(self.principal_ref)
            diagnoses.append(
                {
                    "condition": {"reference": ref},
                    "use": {
                        "coding": [
                            {
                                "system": _THO + "diagnosis-role",
                                "code": "DD" if principal else "CM",
                                "display": "Discharge diagnosis"
                                if principal
                                else "Comorbidity diagnosis",
                            }
                        ]
                    },
                    "rank": n + 1,
                }
            )
        if diagnoses:
            encounter["diagnosis"] = diagnoses
        hospitalization = self.hospitalization(doituong)
        if hospitalization:
            encounter["hospitalization"] = hospitalization
        departments = _split(x1.get("MA_KHOA", ""))
        if departments:
            locations = [{"location": self.department(k)} for k in departments]
            admitted = _fhir_time(x1.get("NGAY_VAO_NOI_TRU", ""))
            if len(locations) == 1 and admitted:
                locations[0]["period"] = {"start": admitted, **({"end": end} if end else {})}
            encounter["location"] = locations
        encounter["serviceProvider"] = self.org(self.facility)
        extensions = self.encounter_extensions(doituong)
        if extensions:
            encounter["extension"] = extensions
        self.out.insert(0, encounter)

    def hospitalization(self, doituong: str) -> dict[str, Any]:
        x1 = self.x1
        out: dict[str, Any] = {}
        if doituong == "2":
            out["admitSource"] = {
                "coding": [
                    {
                        "system": _THO + "admit-source",
                        "code": "emd",
                        "display": "From accident/emergency department",
                    }
                ]
            }
        origin = x1.get("MA_NOI_DI", "").strip()
        if origin:
            out["origin"] = self.org(origin)
        result = x1.get("KET_QUA_DTRI", "").strip()
        leave = x1.get("MA_LOAI_RV", "").strip()
        if result in ("5", "8"):
            disposition = "exp"
        elif leave in ("2", "5"):
            disposition = "other-hcf"
        elif leave in ("3", "4"):
            disposition = "aadvice"
        elif leave == "1":
            disposition = "home"
        else:
            disposition = ""
        if disposition:
            codings = [
                {
                    "system": _THO + "discharge-disposition",
                    "code": disposition,
                    "display": _DISPOSITION[disposition],
                }
            ]
            if leave in _LOAI_RV:
                codings.append({"system": CS_LOAI_RV, "code": leave, "display": _LOAI_RV[leave]})
            concept: dict[str, Any] = {"coding": codings}
            if leave in _LOAI_RV:
                concept["text"] = _LOAI_RV[leave]
            out["dischargeDisposition"] = concept
        return out

    def encounter_extensions(self, doituong: str) -> list[dict[str, Any]]:
        x1 = self.x1
        out: list[dict[str, Any]] = []
        result = x1.get("KET_QUA_DTRI", "").strip()
        if result in _KET_QUA:
            out.append(
                {
                    "url": EXT_OUTCOME,
                    "valueCodeableConcept": {
                        "coding": [
                            {"system": CS_KET_QUA, "code": result, "display": _KET_QUA[result]}
                        ]
                    },
                }
            )
        if doituong:
            out.append(
                {"url": EXT_DOITUONG, "valueCoding": {"system": CS_DOITUONG, "code": doituong}}
            )
        parts = []
        for element in _COST_ELEMENTS:
            amount = _number(x1.get(element, ""))
            if amount is not None:
                parts.append({"url": element, "valueMoney": {"value": amount, "currency": "VND"}})
        if parts:
            out.append({"url": EXT_COST, "extension": parts})
        return out

    # -- XML2: drugs --------------------------------------------------------------------------

    def map_drugs(self, outpatient: bool, dispense_only: bool) -> None:
        """One MedicationRequest per XML2 row; a MedicationDispense instead when the visit is
        a drug pick-up without examination (MA_LOAI_KCB 07): nothing was ordered then."""
        rows = self.tables.get("XML2")
        if not rows:
            return
        category = "outpatient" if outpatient else "inpatient"
        for key, row in zip(_row_keys(rows), rows, strict=True):
            code = row.get("MA_THUOC", "").strip()
            name = row.get("TEN_THUOC", "").strip()
            if not code and not name:
                continue
            medication: dict[str, Any] = {}
            if code:
                medication["coding"] = [{"system": SID_DRUG, "code": code}]
            if name:
                medication["text"] = name
            dose = row.get("LIEU_DUNG", "").strip()
            dosage: dict[str, Any] = {}
            if dose:
                dosage["text"] = dose
            advice = row.get("CACH_DUNG", "").strip()
            if advice:
                dosage["patientInstruction"] = advice
            route = row.get("DUONG_DUNG", "").strip()
            if route:
                dosage["route"] = {"coding": [{"system": CS_ROUTE, "code": route}]}
            days = 0
            if outpatient and dose:
                found = _DAYS.search(dose)
                if found is not None:
                    days = int(found.group(1))
            if days:
                dosage["timing"] = {"repeat": {"boundsDuration": _duration(days)}}
            quantity: dict[str, Any] | None = None
            amount = _number(row.get("SO_LUONG", ""))
            if amount is not None and amount >= 0:
                quantity = {"value": amount}
                unit = row.get("DON_VI_TINH", "").strip()
                if unit:
                    quantity["unit"] = unit
            ordered = _fhir_time(row.get("NGAY_YL", ""))
            done = _fhir_time(row.get("NGAY_TH_YL", ""))
            if dispense_only:
                dispense: Resource = {
                    "resourceType": "MedicationDispense",
                    "id": self.make_id("XML2", key, "medication-dispense"),
                    "status": "completed",
                    "medicationCodeableConcept": medication,
                    "subject": self.patient(),
                    "context": self.encounter(),
                    "performer": [{"actor": self.org(self.facility)}],
                }
                if quantity is not None:
                    dispense["quantity"] = quantity
                if days:
                    dispense["daysSupply"] = _duration(days)
                if done or ordered:
                    dispense["whenHandedOver"] = done or ordered
                if dosage:
                    dispense["dosageInstruction"] = [dosage]
                self.add(dispense)
                continue
            request: Resource = {
                "resourceType": "MedicationRequest",
                "id": self.make_id("XML2", key, "medication-request"),
            }
            if done:
                request["extension"] = [{"url": EXT_DONE, "valueDateTime": done}]
            # An outpatient course goes on after the visit: active, with its length (the PHR
            # ends it by date); a ward order (or one without a length) was carried out.
            request["status"] = "active" if days else "completed"
            request["intent"] = "order"
            request["category"] = [
                {"coding": [{"system": _THO + "medicationrequest-category", "code": category}]}
            ]
            request["medicationCodeableConcept"] = medication
            request["subject"] = self.patient()
            request["encounter"] = self.encounter()
            if ordered:
                request["authoredOn"] = ordered
            doctors = _split(row.get("MA_BAC_SI", ""))
            if doctors:
                request["requester"] = self.practitioner(doctors[0])
            if dosage:
                request["dosageInstruction"] = [dosage]
            if quantity is not None or days:
                supply: dict[str, Any] = {}
                if quantity is not None:
                    supply["quantity"] = quantity
                if days:
                    supply["expectedSupplyDuration"] = _duration(days)
                request["dispenseRequest"] = supply
            self.add(request)

    # -- XML3 and XML4: services, supplies, results --------------------------------------------

    def map_services(self) -> None:
        rows3 = self.tables.get("XML3") or []
        keys3 = _row_keys(rows3)
        para: dict[str, list[tuple[str, Row]]] = {}  # para-clinical (key, row) by service
        procedures: dict[str, Resource] = {}  # service code → first Procedure
        supplies: list[Row] = []
        for key, row in zip(keys3, rows3, strict=True):
            group = row.get("MA_NHOM", "").strip()
            code = row.get("MA_DICH_VU", "").strip()
            if group in _SUPPLY_GROUPS or (row.get("MA_VAT_TU", "").strip() and not group):
                supplies.append(row)
            elif group in _SKIPPED_GROUPS or not code:
                continue
            elif group in _REPORT_GROUPS:
                para.setdefault(code, []).append((key, row))
            else:
                procedure = self.procedure(key, row, group, code)
                procedures.setdefault(code, procedure)
        # Supplies go with the procedure they were used in (XML3 MA_DICH_VU of a supply line).
        for row in supplies:
            target = procedures.get(row.get("MA_DICH_VU", "").strip())
            code = row.get("MA_VAT_TU", "").strip()
            if target is None or not code:
                continue
            concept: dict[str, Any] = {"coding": [{"system": SID_SUPPLY, "code": code}]}
            name = row.get("TEN_VAT_TU", "").strip()
            if name:
                concept["text"] = name
            target.setdefault("usedCode", []).append(concept)
        self.map_results(para)
        # Para-clinical services whose results never came (no XML4 rows): the service was
        # still done, so it is kept as a diagnostic procedure.
        for code, left in para.items():
            for key, row in left:
                self.procedure(key, row, row.get("MA_NHOM", "").strip(), code)

    def procedure(self, key: str, row: Row, group: str, code: str) -> Resource:
        concept: dict[str, Any] = {"coding": [{"system": SID_SERVICE, "code": code}]}
        icd9 = row.get("MA_PTTT_QT", "").strip()
        if icd9:
            concept["coding"].append({"system": ICD9CM, "code": _split(icd9)[0]})
        name = row.get("TEN_DICH_VU", "").strip()
        if name:
            concept["text"] = name
        categories: list[dict[str, str]] = []
        if group == "8":
            categories.append(
                {"system": SNOMED, "code": "387713003", "display": "Surgical procedure"}
            )
        elif group in _REPORT_GROUPS:
            categories.append(
                {"system": SNOMED, "code": "103693007", "display": "Diagnostic procedure"}
            )
        if group in _MA_NHOM:
            categories.append({"system": CS_MA_NHOM, "code": group, "display": _MA_NHOM[group]})
        procedure: Resource = {
            "resourceType": "Procedure",
            "id": self.make_id("XML3", key, "procedure"),
            "status": "completed",
        }
        if categories:
            procedure["category"] = {"coding": categories}
        procedure["code"] = concept
        procedure["subject"] = self.patient()
        procedure["encounter"] = self.encounter()
        done = _fhir_time(row.get("NGAY_TH_YL", ""))
        finished = _fhir_time(row.get("NGAY_KQ", ""))
        if done and finished and finished > done:
            procedure["performedPeriod"] = {"start": done, "end": finished}
        elif done or (performed := _fhir_time(row.get("NGAY_YL", ""))):
            procedure["performedDateTime"] = done or performed
        performers = _split(row.get("NGUOI_THUC_HIEN", ""))
        if performers:
            procedure["performer"] = [{"actor": self.practitioner(p)} for p in performers]
        department = row.get("MA_KHOA", "").strip()
        if department:
            procedure["location"] = self.department(_split(department)[0])
        reasons = [self.conditions.get(c) or c for c in _split(row.get("MA_BENH", ""))]
        references = [r for r in reasons if r.startswith("Condition/")]
        codes = [r for r in reasons if not r.startswith("Condition/")]
        if codes:
            procedure["reasonCode"] = [{"coding": [{"system": ICD10, "code": c}]} for c in codes]
        if references:
            procedure["reasonReference"] = [{"reference": r} for r in dict.fromkeys(references)]
        self.add(procedure)
        return procedure

    def map_results(self, para: dict[str, list[tuple[str, Row]]]) -> None:
        rows = self.tables.get("XML4")
        if not rows:
            return
        keys = _row_keys(rows)
        # One report per service and result time (a test repeated on another day is another
        # report), in file order.
        groups: dict[tuple[str, str], list[int]] = {}
        for n, row in enumerate(rows):
            groups.setdefault(
                (row.get("MA_DICH_VU", "").strip(), row.get("NGAY_KQ", "").strip()), []
            ).append(n)
        for (service, _), members in groups.items():
            ordered = para.get(service)
            x3 = ordered.pop(0)[1] if ordered else None
            group = x3.get("MA_NHOM", "").strip() if x3 is not None else ""
            first = rows[members[0]]
            result_at = _fhir_time(first.get("NGAY_KQ", ""))
            done = _fhir_time(x3.get("NGAY_TH_YL", "")) if x3 is not None else None
            effective = done or result_at
            issued = _instant(first.get("NGAY_KQ", ""))
            obs_category = _OBS_CATEGORY.get(group) or (
                "laboratory" if any(rows[n].get("MA_CHI_SO", "").strip() for n in members) else ""
            )
            results = []
            readers: dict[str, None] = {}
            for n in members:
                row = rows[n]
                for reader in _split(row.get("MA_BS_DOC_KQ", "")):
                    readers[reader] = None
                results.append(
                    self.observation(keys[n], row, service, obs_category, effective, issued)
                )
            name = (x3.get("TEN_DICH_VU", "").strip() if x3 is not None else "") or (
                first.get("TEN_CHI_SO", "").strip() if len(members) == 1 else ""
            )
            code: dict[str, Any] = {}
            if service:
                code["coding"] = [{"system": SID_SERVICE, "code": service}]
            if name or not service:
                code["text"] = name or "Cận lâm sàng"
            report: Resource = {
                "resourceType": "DiagnosticReport",
                "id": self.make_id("XML4", keys[members[0]], "report"),
                "status": "final",
            }
            category = _REPORT_CATEGORY.get(group) or (
                _REPORT_CATEGORY["1"] if obs_category == "laboratory" else None
            )
            if category is not None:
                report["category"] = [
                    {
                        "coding": [
                            {
                                "system": _THO + "v2-0074",
                                "code": category[0],
                                "display": category[1],
                            }
                        ]
                    }
                ]
            report["code"] = code
            report["subject"] = self.patient()
            report["encounter"] = self.encounter()
            if effective:
                report["effectiveDateTime"] = effective
            if issued:
                report["issued"] = issued
            if readers:
                report["resultsInterpreter"] = [self.practitioner(r) for r in readers]
            report["result"] = [{"reference": ref} for ref in results]
            if len(members) == 1:
                conclusion = first.get("KET_LUAN", "").strip()
                if conclusion:
                    report["conclusion"] = conclusion
            self.add(report)

    def observation(
        self,
        key: str,
        row: Row,
        service: str,
        category: str,
        effective: str | None,
        issued: str | None,
    ) -> str:
        indicator = row.get("MA_CHI_SO", "").strip()
        if indicator:
            code: dict[str, Any] = {"coding": [{"system": SID_INDICATOR, "code": indicator}]}
        elif service:
            code = {"coding": [{"system": SID_SERVICE, "code": service}]}
        else:
            code = {}
        name = row.get("TEN_CHI_SO", "").strip()
        if name or not code:
            code["text"] = name or "Chỉ số cận lâm sàng"
        observation: Resource = {
            "resourceType": "Observation",
            "id": self.make_id("XML4", key, "observation"),
            "status": "final",
        }
        if category:
            observation["category"] = [
                {"coding": [{"system": _THO + "observation-category", "code": category}]}
            ]
        observation["code"] = code
        observation["subject"] = self.patient()
        observation["encounter"] = self.encounter()
        if effective:
            observation["effectiveDateTime"] = effective
        if issued:
            observation["issued"] = issued
        readers = _split(row.get("MA_BS_DOC_KQ", ""))
        if readers:
            observation["performer"] = [self.practitioner(r) for r in readers]
        value = row.get("GIA_TRI", "").strip()
        description = row.get("MO_TA", "").strip()
        conclusion = row.get("KET_LUAN", "").strip()
        number = _NUMBER.fullmatch(value) if value else None
        if number is not None:
            quantity: dict[str, Any] = {"value": _number(number.group(2))}
            if number.group(1):
                quantity["comparator"] = number.group(1)
            unit = row.get("DON_VI_DO", "").strip()
            if unit:
                quantity["unit"] = unit
            observation["valueQuantity"] = quantity
        elif value:
            observation["valueString"] = value
        elif description:  # imaging and functional tests: the reader's description
            observation["valueString"] = description
            description = ""
        if conclusion and indicator:
            coded = _INTERPRETATION.get(conclusion.lower())
            interpretation: dict[str, Any] = {"text": conclusion}
            if coded is not None:
                interpretation["coding"] = [
                    {
                        "system": _THO + "v3-ObservationInterpretation",
                        "code": coded[0],
                        "display": coded[1],
                    }
                ]
            observation["interpretation"] = [interpretation]
        if description:
            observation["note"] = [{"text": description}]
        return self.add(observation)

    # -- XML5: progress notes -----------------------------------------------------------------

    def map_notes(self) -> None:
        rows = self.tables.get("XML5")
        if not rows:
            return
        sections = []
        authors: dict[str, None] = {}
        latest = ""
        for row in rows:
            at = _fhir_time(row.get("THOI_DIEM_DBLS", ""))
            if at and at > latest:
                latest = at
            paragraphs = [row.get("DIEN_BIEN_LS", "").strip()]
            for element, label in _NOTE_PARTS:
                text = row.get(element, "").strip()
                if text:
                    paragraphs.append(f"{label}: {text}")
            paragraphs = [p for p in paragraphs if p]
            if not paragraphs:
                continue
            section: dict[str, Any] = {
                "title": _show(row.get("THOI_DIEM_DBLS", ""), "dt") or "Diễn biến",
                "text": {"status": "generated", "div": _div(*paragraphs)},
            }
            writers = _split(row.get("NGUOI_THUC_HIEN", ""))
            if writers:
                section["author"] = [self.practitioner(w) for w in writers]
                for writer in writers:
                    authors[writer] = None
            sections.append(section)
        if not sections:
            return
        date = latest or _fhir_time(self.x1.get("NGAY_RA", "")) or self.fallback_date()
        self.add(
            {
                "resourceType": "Composition",
                "id": self.make_id("XML5", "1", "progress-notes"),
                "status": "final",
                "type": {
                    "coding": [
                        {"system": LOINC, "code": "11506-3", "display": "Progress note"},
                        {"system": CS_TABLE, "code": "XML5", "display": "Diễn biến lâm sàng"},
                    ],
                    "text": "Diễn biến lâm sàng",
                },
                "subject": self.patient(),
                "encounter": self.encounter(),
                "date": date,
                "author": [self.practitioner(a) for a in authors] or [self.org(self.facility)],
                "title": "Diễn biến lâm sàng",
                "custodian": self.org(self.facility),
                "section": sections,
            }
        )

    def fallback_date(self) -> str:
        return _fhir_time(self.x1.get("NGAY_VAO", "")) or "1900-01-01"

    # -- XML7–XML11: documents ----------------------------------------------------------------

    def map_documents(self) -> None:
        for table, spec in _DOCS.items():
            rows = self.tables.get(table)
            if not rows:
                continue
            for key, row in zip(_row_keys(rows), rows, strict=True):
                self.document(table, key, spec, row)

    def document(self, table: str, key: str, spec: _DocSpec, row: Row) -> None:
        sections = []
        for element, label, kind in spec.sections:
            raw = row.get(element, "")
            value = raw.strip()
            if not value:
                continue
            if element == "KET_QUA_DTRI" and value in _KET_QUA:
                value = f"{value} – {_KET_QUA[value]}"
            sections.append(
                {
                    "title": label,
                    "code": {"coding": [{"system": CS_ELEMENT, "code": f"{table}.{element}"}]},
                    "text": {"status": "generated", "div": _div(_show(value, kind))},
                }
            )
        if not sections:
            return
        codings = []
        if spec.loinc is not None:
            codings.append({"system": LOINC, "code": spec.loinc[0], "display": spec.loinc[1]})
        codings.append({"system": CS_TABLE, "code": table, "display": spec.title})
        authors = []
        for code_element, name_element in spec.authors:
            for code in _split(row.get(code_element, "")):
                name = row.get(name_element, "").strip() if name_element else ""
                authors.append(self.practitioner(code, name))
        composition: Resource = {
            "resourceType": "Composition",
            "id": self.make_id(table, key, "document"),
        }
        if spec.identifier:
            parts = [row.get(e, "").strip() for e in spec.identifier]
            if all(parts):
                composition["identifier"] = {
                    "system": spec.id_system + self.facility,
                    "value": "/".join(parts),
                }
        composition.update(
            {
                "status": "final",
                "type": {"coding": codings, "text": spec.title},
                "subject": self.patient(),
                "encounter": self.encounter(),
                "date": _fhir_time(row.get("NGAY_CT", ""))
                or _fhir_time(self.x1.get("NGAY_RA", ""))
                or self.fallback_date(),
                "author": authors or [self.org(self.facility)],
                "title": spec.title,
            }
        )
        head = row.get("MA_TTDV", "").strip()
        if head:
            composition["attester"] = [{"mode": "legal", "party": self.practitioner(head)}]
        composition["custodian"] = self.org(self.facility)
        composition["section"] = sections
        self.add(composition)

    # -- XML13: referral, XML14: follow-up appointment ----------------------------------------

    def reasons(self, row: Row) -> dict[str, Any]:
        """reasonReference to the episode's Conditions when the codes agree, else reasonCode."""
        codes = [row.get("MA_BENH_CHINH", "").strip(), *_split(row.get("MA_BENH_KT", ""))]
        out: dict[str, Any] = {}
        for code in filter(None, codes):
            ref = self.conditions.get(code)
            if ref is not None:
                out.setdefault("reasonReference", []).append({"reference": ref})
            else:
                out.setdefault("reasonCode", []).append(
                    {"coding": [{"system": ICD10, "code": code}]}
                )
        return out

    def map_referral(self) -> None:
        rows = self.tables.get("XML13")
        if not rows:
            return
        row = rows[0]
        request: Resource = {
            "resourceType": "ServiceRequest",
            "id": self.make_id("XML13", "1", "referral"),
        }
        paper = row.get("GIAY_CHUYEN_TUYEN", "").strip()
        if paper:
            request["identifier"] = [
                {"system": "urn:ytehub:sid:giay-chuyen-tuyen:" + self.facility, "value": paper}
            ]
        request.update(
            {
                "status": "active",
                "intent": "order",
                "code": {
                    "coding": [
                        {"system": SNOMED, "code": "3457005", "display": "Patient referral"}
                    ],
                    "text": "Chuyển tuyến khám bệnh, chữa bệnh BHYT",
                },
                "subject": self.patient(),
                "encounter": self.encounter(),
            }
        )
        issued = _fhir_time(row.get("NGAY_RA", "")) or _fhir_time(self.x1.get("NGAY_RA", ""))
        if issued:
            request["authoredOn"] = issued
        doctors = _split(row.get("MA_BAC_SI", ""))
        if doctors:
            request["requester"] = self.practitioner(doctors[0])
        destination = (row.get("MA_NOI_DEN") or row.get("MA_CSKCB_DEN") or "").strip()
        if destination:
            request["performer"] = [self.org(destination)]
        reasons = self.reasons(row)
        why = row.get("MA_LYDO_CT", "").strip()
        if why:
            reasons.setdefault("reasonCode", []).append(
                {"coding": [{"system": CS_LYDO_CT, "code": why}]}
            )
        request.update(reasons)
        notes = []
        for element, label in _REFERRAL_NOTES:
            text = row.get(element, "").strip()
            if text:
                notes.append({"text": f"{label}: {text}"})
        if notes:
            request["note"] = notes
        self.add(request)

    def map_appointments(self) -> None:
        rows = self.tables.get("XML14")
        if rows:
            row = rows[0]
            start = _instant(row.get("NGAY_HEN_KL", ""))
            appointment: Resource = {
                "resourceType": "Appointment",
                "id": self.make_id("XML14", "1", "appointment"),
            }
            number = row.get("SO_GIAYHEN_KL", "").strip()
            if number:
                appointment["identifier"] = [
                    {"system": "urn:ytehub:sid:giay-hen:" + self.facility, "value": number}
                ]
            # No duration is written: start = end keeps the booked time without inventing one.
            appointment["status"] = "booked" if start else "proposed"
            appointment["appointmentType"] = {
                "coding": [
                    {
                        "system": _THO + "v2-0276",
                        "code": "FOLLOWUP",
                        "display": "A follow up visit from a previous appointment",
                    }
                ]
            }
            appointment.update(self.reasons(row))
            diagnosis = row.get("CHAN_DOAN_RV", "").strip()
            appointment["description"] = (
                f"Hẹn khám lại: {diagnosis}" if diagnosis else "Hẹn khám lại"
            )
            if start:
                appointment["start"] = start
                appointment["end"] = start
            created = _fhir_time(row.get("NGAY_CT", ""))
            if created:
                appointment["created"] = created
            participants: list[dict[str, Any]] = [{"actor": self.patient(), "status": "accepted"}]
            for doctor in _split(row.get("MA_BAC_SI", ""))[:1]:
                participants.append({"actor": self.practitioner(doctor), "status": "accepted"})
            appointment["participant"] = participants
            self.add(appointment)
            return
        # No appointment paper: NGAY_TAI_KHAM (dates only) is a proposed re-visit.
        for n, day in enumerate(_split(self.x1.get("NGAY_TAI_KHAM", "")), start=1):
            when = _fhir_time(day)
            if when is None or len(when) != 10:
                continue
            self.add(
                {
                    "resourceType": "Appointment",
                    "id": self.make_id("XML1", "1", f"appointment-{n}"),
                    "status": "proposed",
                    "appointmentType": {
                        "coding": [
                            {
                                "system": _THO + "v2-0276",
                                "code": "FOLLOWUP",
                                "display": "A follow up visit from a previous appointment",
                            }
                        ]
                    },
                    "description": "Hẹn tái khám",
                    "requestedPeriod": [{"start": when, "end": when}],
                    "participant": [{"actor": self.patient(), "status": "needs-action"}],
                }
            )

    # -- XML15: tuberculosis treatment --------------------------------------------------------

    def episode_of_care_id(self) -> str | None:
        rows = self.tables.get("XML15")
        return self.make_id("XML15", "1", "episode-of-care") if rows else None

    def map_tuberculosis(self, episode_id: str) -> None:
        row = self.tables["XML15"][0]
        end = _fhir_time(row.get("NGAYKT_DTRI_LAO", ""))
        kind = row.get("LOAI_DTRI_LAO", "").strip()
        care: Resource = {
            "resourceType": "EpisodeOfCare",
            "id": episode_id,
            "status": "finished" if end else "active",
        }
        extensions = []
        for element in _TB_ELEMENTS:
            value = row.get(element, "").strip()
            if value:
                extensions.append(
                    {
                        "url": element,
                        "valueCoding": {"system": CS_TB + element.lower(), "code": value},
                    }
                )
        if extensions:
            care["extension"] = [{"url": EXT_TB, "extension": extensions}]
        concept: dict[str, Any] = {"text": _LOAI_DTRI_LAO.get(kind, "Quản lý điều trị lao")}
        if kind:
            concept["coding"] = [{"system": CS_TB + "loai_dtri_lao", "code": kind}]
        care["type"] = [concept]
        if self.principal_ref:
            care["diagnosis"] = [{"condition": {"reference": self.principal_ref}, "rank": 1}]
        care["patient"] = self.patient()
        care["managingOrganization"] = self.org(row.get("MA_CSKCB", "").strip() or self.facility)
        start = _fhir_time(row.get("NGAYBD_DTRI_LAO", ""))
        if start or end:
            period = {}
            if start:
                period["start"] = start
            if end:
                period["end"] = end
            care["period"] = period
        self.add(care)

    # -- Provenance ---------------------------------------------------------------------------

    def map_provenance(self, source: SourceFile, recorded: datetime) -> None:
        targets = [{"reference": f"{r['resourceType']}/{r['id']}"} for r in self.out]
        # The Patient too: the registry updated the person from XML1, and a Provenance joins a
        # person's compartment only through its target.
        targets.append(self.patient())
        self.out.append(
            {
                "resourceType": "Provenance",
                "id": self.make_id("HOSO", "1", "provenance"),
                "target": targets,
                "recorded": _instant_of(recorded),
                "activity": {
                    "coding": [
                        {
                            "system": _THO + "iso-21089-lifecycle",
                            "code": "transform",
                            "display": "Transform/Translate Record Lifecycle Event",
                        }
                    ]
                },
                "agent": [
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": _THO + "provenance-participant-type",
                                    "code": "author",
                                    "display": "Author",
                                }
                            ]
                        },
                        "who": self.org(self.facility),
                    }
                ],
                "entity": [
                    {
                        "extension": [
                            {"url": EXT_RECEIVED, "valueDateTime": _instant_of(source.received)}
                        ],
                        "role": "source",
                        "what": {
                            "identifier": {"system": SID_FILE, "value": source.sha256},
                            "display": source.name,
                        },
                    }
                ],
            }
        )


def map_episode(
    facility_code: str,
    episode: dict[str, list[Row]],
    patient_id: str,
    source: SourceFile,
    recorded: datetime,
    prefix: str | None = None,
) -> MappedEpisode:
    """The FHIR resources of one episode (tables as read by ``read_envelope``): Encounter,
    Conditions, drugs, procedures, results, notes, documents, referral, appointment, TB
    treatment, and one Provenance naming the source file. Tables not mapped are skipped.

    ``prefix`` leads every id (default :func:`id_prefix` of ``recorded``): a resubmission
    passes the one its episode was first stored with, so its resources keep their ids.

    Raises ValueError when XML1, its MA_LK, the facility code or the patient id is missing:
    the ingest validation refuses such episodes before they get here."""
    if not facility_code.strip() or not patient_id.strip():
        raise ValueError("a facility code and a patient id are needed")
    rows = episode.get("XML1")
    if not rows:
        raise ValueError("the episode has no XML1 row")
    ma_lk = rows[0].get("MA_LK", "").strip()
    if not ma_lk:
        raise ValueError("XML1 has no MA_LK")
    if prefix is None:
        prefix = id_prefix(recorded)
    built = _Episode(facility_code, ma_lk, episode, patient_id, prefix)
    built.encounter_ref = f"Encounter/{built.encounter_id()}"
    built.map_conditions()
    episode_of_care = built.episode_of_care_id()
    loai = built.x1.get("MA_LOAI_KCB", "").strip()
    built.map_drugs(
        outpatient=_LOAI_KCB.get(loai, ("AMB", ""))[0] == "AMB", dispense_only=loai == "07"
    )
    built.map_services()
    built.map_notes()
    built.map_documents()
    built.map_referral()
    built.map_appointments()
    if episode_of_care is not None:
        built.map_tuberculosis(episode_of_care)
    built.map_encounter(f"EpisodeOfCare/{episode_of_care}" if episode_of_care else None)
    built.map_provenance(source, recorded)
    return MappedEpisode(
        ma_lk=ma_lk,
        resources=built.out,
        content_hash=content_hash(facility_code, episode),
        patient=built.patient_reference,
    )
