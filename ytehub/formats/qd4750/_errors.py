"""Error construction shared by the spec, writer and reader (one place for codes and statuses)."""

from __future__ import annotations

from typing import Any

from ytehub.core.errors import DomainError, Text

#: Stable codes raised by this package (the ingest layer matches on them).
CODES = (
    "qd4750.unknown_element",
    "qd4750.unknown_table",
    "qd4750.single_record",
    "qd4750.invalid_char",
    "qd4750.not_text",
    "qd4750.bad_number",
    "qd4750.bad_date",
    "qd4750.too_large",
    "qd4750.malformed_xml",
    "qd4750.doctype_forbidden",
    "qd4750.bad_base64",
    "qd4750.bad_encoding",
    "qd4750.wrong_root",
    "qd4750.wrong_structure",
    "qd4750.duplicate_table",
)

_STATUS = {"qd4750.too_large": 413}


def error(
    code: str,
    vi: str,
    en: str,
    *,
    field: str | None = None,
    value: Any = None,
    **extra: Any,
) -> DomainError:
    """A :class:`DomainError` with this package's status convention (413 for size, else 400)."""
    assert code in CODES, code
    return DomainError(
        code,
        Text(vi, en),
        status=_STATUS.get(code, 400),
        field=field,
        value=value,
        extra={key: item for key, item in extra.items() if item is not None},
    )


class Where:
    """Where in a file a problem is, phrased in both languages ("HOSO thứ 2, bảng XML3")."""

    __slots__ = ("en", "extra", "vi")

    def __init__(self, vi: str, en: str, **extra: Any) -> None:
        self.vi = vi
        self.en = en
        self.extra = extra

    @classmethod
    def document(cls, table: str | None = None) -> Where:
        if table is None:
            return cls("Tệp GIAMDINHHS", "GIAMDINHHS file")
        if table == "XML0":
            return cls("Tệp check-in (XML0)", "Check-in document (XML0)", table=table)
        return cls(f"Bảng {table}", f"Table {table}", table=table)

    @classmethod
    def hoso(cls, number: int, table: str | None = None) -> Where:
        if table is None:
            return cls(f"HOSO thứ {number}", f"HOSO no. {number}", hoso=number)
        return cls(
            f"HOSO thứ {number}, bảng {table}",
            f"HOSO no. {number}, table {table}",
            hoso=number,
            table=table,
        )

    def error(self, code: str, vi: str, en: str, *, value: Any = None) -> DomainError:
        return error(code, f"{self.vi}: {vi}", f"{self.en}: {en}", value=value, **self.extra)
