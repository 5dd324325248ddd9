"""Writers for QĐ 130 / QĐ 4750 XML: inner table documents, the GIAMDINHHS envelope, check-in.

Plain string building (one precompiled ``%``-template per table), not lxml trees: the synthetic
generator writes millions of rows. Conventions (vn-formats.md §1.2, §1.3):

* UTF-8, ``<?xml version="1.0" encoding="utf-8"?>``, roots carry the usual ``xmlns:xsd`` and
  ``xmlns:xsi`` attributes; no indentation inside a record, one record per line.
* Every element of the table is written, in official order. A missing key, ``None`` or ``""``
  gives an empty element written as ``<X></X>`` (equivalent to ``<X/>`` for any XML parser).
* Values are written as given — no length/type checks here, so deliberate defects stay possible;
  validation belongs to the ingest side. ``&``, ``<``, ``>`` are escaped and ``\\r`` is written as
  ``&#13;`` so it survives parsing; characters XML 1.0 cannot carry (C0 controls other than tab
  and newline, lone surrogates, U+FFFE/U+FFFF) raise ``qd4750.invalid_char``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ytehub.formats.qd4750._errors import error
from ytehub.formats.qd4750.fmt import fmt_date
from ytehub.formats.qd4750.spec import ENVELOPE_TABLES, TABLES, TableSpec

__all__ = ["render_checkin", "render_envelope", "render_table"]

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
XMLNS = (
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)

# Anything that needs escaping or cannot be written at all.
_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


class _Template:
    """Everything render_table needs for one table, computed once."""

    __slots__ = ("fill", "head", "name_set", "names", "record", "spec", "tail")

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.names = spec.names
        self.name_set = frozenset(self.names)
        self.fill = ("",) * len(self.names)
        fields = "".join(f"<{name}>%s</{name}>" for name in self.names)
        head = f"{DECLARATION}<{spec.root}{XMLNS}>"
        if spec.single:
            self.head, self.record, self.tail = head + "\n", fields + "\n", f"</{spec.root}>\n"
        else:
            self.head = f"{head}\n<{spec.list_tag}>\n"
            self.record = f"<{spec.record_tag}>{fields}</{spec.record_tag}>\n"
            tail = f"</{spec.list_tag}>\n"
            if spec.name == "XML0":
                tail += "<CHUKYDONVI></CHUKYDONVI>\n"
            self.tail = f"{tail}</{spec.root}>\n"


_TEMPLATES = {name: _Template(spec) for name, spec in TABLES.items()}


def _unknown_table(table: object, allowed: Sequence[str]) -> Exception:
    return error(
        "qd4750.unknown_table",
        f"Không có bảng {table!r} (dùng một trong: {', '.join(allowed)})",
        f"No table {table!r} (use one of: {', '.join(allowed)})",
        value=str(table),
    )


def _slow_values(template: _Template, row: Mapping[str, Any], number: int) -> tuple[str, ...]:
    """Per-value path: None → "", non-text and unwritable characters → DomainError."""
    table = template.spec.name
    values = []
    for name in template.names:
        value = row.get(name)
        if value is None:
            value = ""
        elif not isinstance(value, str):
            raise error(
                "qd4750.not_text",
                f"Bảng {table}, dòng {number}, {name}: giá trị phải là chuỗi đã định dạng "
                f"(dùng fmt_money/fmt_qty/fmt_date…), nhận được {type(value).__name__}",
                f"Table {table}, row {number}, {name}: values must be formatted strings "
                f"(use fmt_money/fmt_qty/fmt_date…), got {type(value).__name__}",
                field=name,
                table=table,
                row=number,
            )
        bad = _INVALID.search(value)
        if bad:
            raise error(
                "qd4750.invalid_char",
                f"Bảng {table}, dòng {number}, {name}: ký tự U+{ord(bad.group()):04X} "
                "không được phép trong XML",
                f"Table {table}, row {number}, {name}: character U+{ord(bad.group()):04X} "
                "is not allowed in XML",
                field=name,
                table=table,
                row=number,
            )
        values.append(_escape(value) if _SPECIAL.search(value) else value)
    return tuple(values)


def _records(template: _Template, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names, fill, name_set, record = (
        template.names,
        template.fill,
        template.name_set,
        template.record,
    )
    search, invalid = _SPECIAL.search, _INVALID.search
    out = []
    append = out.append
    for row in rows:
        if not name_set.issuperset(row):
            unknown = sorted(set(row) - name_set)
            table = template.spec.name
            raise error(
                "qd4750.unknown_element",
                f"Bảng {table} không có chỉ tiêu {', '.join(unknown)}",
                f"Table {table} has no element {', '.join(unknown)}",
                field=unknown[0],
                table=table,
                row=len(out) + 1,
            )
        values = tuple(map(row.get, names, fill))
        try:
            joined = "".join(values)
        except TypeError:  # a None or a non-string value
            values = _slow_values(template, row, len(out) + 1)
        else:
            if search(joined):
                if invalid(joined):
                    values = _slow_values(template, row, len(out) + 1)  # raises, naming it
                else:
                    values = tuple(map(_escape, values))
        append(record % values)
    return out


def _render(table: str, rows: Sequence[Mapping[str, Any]]) -> str:
    template = _TEMPLATES.get(table)
    if template is None:
        raise _unknown_table(table, list(TABLES))
    if template.spec.single and len(rows) != 1:
        raise error(
            "qd4750.single_record",
            f"Bảng {table} chỉ có đúng một bản ghi, nhận được {len(rows)}",
            f"Table {table} takes exactly one record, got {len(rows)}",
            table=table,
        )
    return template.head + "".join(_records(template, rows)) + template.tail


def render_table(table: str, rows: Sequence[Mapping[str, str]]) -> bytes:
    """UTF-8 inner XML of one table of one episode (the content base64-encoded in NOIDUNGFILE)."""
    return _render(table, rows).encode("utf-8")


def render_checkin(rows: Sequence[Mapping[str, str]]) -> bytes:
    """The separate check-in document CHI_TIEU_TRANG_THAI_KCB (rows of XML0), unsigned."""
    return _render("XML0", rows).encode("utf-8")


def _table_number(name: str) -> int:
    return int(name[3:])


def render_envelope(
    facility_code: str, created: date, episodes: Sequence[Mapping[str, bytes]]
) -> bytes:
    """GIAMDINHHS with one HOSO per episode, one FILEHOSO per table in numeric order, unsigned.

    Each episode maps "XML1" … "XML15" (not XML0 or XML12) to the bytes from render_table.
    """
    if not isinstance(facility_code, str) or _INVALID.search(facility_code):
        raise error(
            "qd4750.invalid_char",
            "MACSKCB phải là chuỗi ký tự hợp lệ",
            "MACSKCB must be a string of valid characters",
            field="MACSKCB",
        )
    parts = [
        f"{DECLARATION}<GIAMDINHHS{XMLNS}>\n",
        f"<THONGTINDONVI><MACSKCB>{_escape(facility_code)}</MACSKCB></THONGTINDONVI>\n",
        f"<THONGTINHOSO><NGAYLAP>{fmt_date(created)}</NGAYLAP>",
        f"<SOLUONGHOSO>{len(episodes)}</SOLUONGHOSO>\n<DANHSACHHOSO>\n",
    ]
    allowed = set(ENVELOPE_TABLES)
    for episode in episodes:
        unknown = [name for name in episode if name not in allowed]
        if unknown:
            raise _unknown_table(unknown[0], ENVELOPE_TABLES)
        parts.append("<HOSO>\n")
        for name in sorted(episode, key=_table_number):
            content = base64.b64encode(episode[name]).decode("ascii")
            parts.append(
                f"<FILEHOSO><LOAIHOSO>{name}</LOAIHOSO>"
                f"<NOIDUNGFILE>{content}</NOIDUNGFILE></FILEHOSO>\n"
            )
        parts.append("</HOSO>\n")
    parts.append("</DANHSACHHOSO>\n</THONGTINHOSO>\n<CHUKYDONVI></CHUKYDONVI>\n</GIAMDINHHS>\n")
    return "".join(parts).encode("utf-8")
