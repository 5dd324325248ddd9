"""Safe readers for QĐ 130 / QĐ 4750 XML files coming from facilities (untrusted input).

Defences, in order, for the envelope and for every inner document:

1. size limit before anything is parsed (``qd4750.too_large``);
2. encoding: QĐ 130 mandates UTF-8 — a UTF-16/32 byte-order mark, a NUL byte, a declared
   encoding other than UTF-8 or bytes that are not valid UTF-8 give ``qd4750.bad_encoding``;
3. any ``<!DOCTYPE`` is refused outright (``qd4750.doctype_forbidden``) — checked in the prolog
   before parsing and again on the parsed document — so no DTD, entity or external resource is
   ever processed (XXE, billion laughs, external DTDs);
4. lxml with ``resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False``.

Tolerance (real exports vary, vn-formats.md §1.3): root attributes are ignored (any namespace
declarations, even malformed URIs such as ``…XMLSchema instance``); element names are compared by
local name, so a default namespace is harmless; empty and self-closing elements read as ``""``;
CDATA reads as its text; values are returned exactly as written (no stripping). A record's dict
holds the elements present in the file — missing ones are absent, unknown ones are kept — so the
ingest validation can tell "absent", "empty" and "unexpected" apart. ``CHUKYDONVI`` (signature)
under a root is ignored.

Every error names its place in both languages ("HOSO thứ 2, bảng XML3" / "HOSO no. 2, table
XML3") and carries it in ``DomainError.extra`` as ``{"hoso": 2, "table": "XML3"}``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import threading
from dataclasses import dataclass
from typing import Any

from lxml import etree

from ytehub.formats.qd4750._errors import Where
from ytehub.formats.qd4750.spec import ENVELOPE_TABLES, TABLES, TableSpec

__all__ = ["DEFAULT_MAX_BYTES", "Envelope", "read_checkin", "read_envelope", "read_table"]

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
_SIGNATURE = "CHUKYDONVI"
_CHUNK = 1 << 20

_DECLARED = re.compile(rb"""^<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"

_local = threading.local()


@dataclass(frozen=True, slots=True)
class Envelope:
    """A GIAMDINHHS file as written: nothing is validated beyond structure and encoding."""

    facility_code: str  # MACSKCB ("" if absent)
    created: str  # NGAYLAP as written
    declared_count: int | None  # SOLUONGHOSO; None when absent or empty
    episodes: list[dict[str, list[dict[str, str]]]]  # per HOSO: table -> rows


def _parser() -> etree.XMLParser:
    """One parser per thread (lxml parsers must not be shared between threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=True,
            remove_comments=True,
            remove_pis=True,
            recover=True,  # see _fatal: only namespace errors are tolerated
        )
        _local.parser = parser
    return parser


def _fatal(entry: Any) -> bool:
    """A parse error that matters: namespace complaints (invalid URIs, unbound prefixes on
    ignored root attributes) are the only errors we accept, so the parser runs in recover mode
    and every other error is turned back into a failure here."""
    return bool(
        entry.level >= etree.ErrorLevels.ERROR and entry.domain != etree.ErrorDomains.NAMESPACE
    )


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2] if tag[:1] == "{" else tag


def _check_size(data: bytes, max_bytes: int, where: Where) -> None:
    if len(data) > max_bytes:
        raise where.error(
            "qd4750.too_large",
            f"kích thước {len(data)} byte vượt giới hạn {max_bytes} byte",
            f"size {len(data)} bytes exceeds the limit of {max_bytes} bytes",
        )


def _check_encoding(data: bytes, where: Where) -> None:
    def bad(vi: str, en: str) -> Exception:
        return where.error(
            "qd4750.bad_encoding",
            f"{vi}; QĐ 130 yêu cầu UTF-8",
            f"{en}; QĐ 130 requires UTF-8",
        )

    if data.startswith(_WIDE_BOMS) or b"\x00" in data:
        raise bad("tệp mã hóa UTF-16/UTF-32", "the document is UTF-16/UTF-32 encoded")
    head = data[3:] if data.startswith(_UTF8_BOM) else data
    declared = _DECLARED.match(head[:512])
    if declared and declared.group(1).strip().lower() not in (b"utf-8", b"utf8"):
        name = declared.group(1).decode("ascii", "replace")
        raise bad(f"khai báo mã hóa {name}", f"declared encoding {name}")
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    view = memoryview(data)
    start = 0
    try:
        for start in range(0, len(view), _CHUNK):
            decoder.decode(view[start : start + _CHUNK])
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        raise bad(
            f"có byte không hợp lệ theo UTF-8 (gần byte thứ {offset})",
            f"it contains bytes that are not valid UTF-8 (near byte {offset})",
        ) from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:  # cut inside a multi-byte character: a truncated file
        raise where.error(
            "qd4750.malformed_xml",
            "tài liệu bị cắt cụt giữa một ký tự",
            "the document is truncated in the middle of a character",
        ) from None


def _check_prolog(data: bytes, where: Where) -> None:
    position = 3 if data.startswith(_UTF8_BOM) else 0
    while True:
        item = _PROLOG_ITEM.match(data, position)
        if not item or item.end() == position:
            break
        position = item.end()
    if data.startswith(b"<!DOCTYPE", position):
        raise _doctype(where)


def _doctype(where: Where) -> Exception:
    return where.error(
        "qd4750.doctype_forbidden",
        "không chấp nhận khai báo DOCTYPE (DTD, thực thể)",
        "DOCTYPE declarations (DTDs, entities) are not accepted",
    )


def _parse(data: bytes, max_bytes: int, where: Where) -> Any:
    """Checks 1–4 of the module docstring, then the root element."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("expected bytes")
    data = bytes(data)
    _check_size(data, max_bytes, where)
    if not data or data.isspace():
        raise where.error("qd4750.malformed_xml", "tài liệu rỗng", "the document is empty")
    _check_encoding(data, where)
    _check_prolog(data, where)
    parser = _parser()
    line, column, message, limit = 1, 0, "no root element", False
    try:
        root = etree.fromstring(data, parser)
        failure = next((entry for entry in parser.error_log if _fatal(entry)), None)
        if failure is not None:
            root, line, column, message = None, failure.line, failure.column, failure.message
            limit = failure.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT
    except etree.XMLSyntaxError as exc:
        root, message = None, exc.msg
        line, column = exc.position if exc.position else (1, 0)
        limit = exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT
    if limit:  # huge_tree=False: one text over 10 MB (NOIDUNGFILE!) or nesting deeper than 256
        raise where.error(
            "qd4750.too_large",
            f"vượt giới hạn an toàn của bộ phân tích XML (một phần tử hơn 10 MB hoặc lồng "
            f"sâu hơn 256 cấp; dòng {line}): {message}",
            f"exceeds the XML parser's safety limits (one element over 10 MB or nesting "
            f"deeper than 256 levels; line {line}): {message}",
        )
    if root is None:
        raise where.error(
            "qd4750.malformed_xml",
            f"XML không hợp lệ hoặc bị cắt cụt (dòng {line}, cột {column}): {message}",
            f"malformed or truncated XML (line {line}, column {column}): {message}",
        )
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise _doctype(where)
    return root


def _expect_root(root: Any, expected: str, where: Where) -> None:
    actual = _local_name(root.tag)
    if actual != expected:
        raise where.error(
            "qd4750.wrong_root",
            f"thẻ gốc là <{actual}>, cần <{expected}>",
            f"root element is <{actual}>, expected <{expected}>",
            value=actual,
        )


def _elements(parent: Any) -> list[Any]:
    return [child for child in parent if isinstance(child.tag, str)]


def _structure(where: Where, vi: str, en: str) -> Exception:
    return where.error("qd4750.wrong_structure", vi, en)


def _fields(children: list[Any], where: Where, number: int | None) -> dict[str, str]:
    """Element → text for one record; ``number`` is the record's 1-based position, if listed."""
    label_vi = "" if number is None else f"bản ghi {number}: "
    label_en = "" if number is None else f"record {number}: "
    row: dict[str, str] = {}
    for child in children:
        name = _local_name(child.tag)
        if len(child):
            raise _structure(
                where,
                f"{label_vi}<{name}> chứa thẻ con",
                f"{label_en}<{name}> contains child elements",
            )
        if name in row:
            raise _structure(
                where,
                f"{label_vi}<{name}> xuất hiện hai lần",
                f"{label_en}<{name}> appears twice",
            )
        row[name] = child.text or ""
    return row


def _rows(spec: TableSpec, root: Any, where: Where) -> list[dict[str, str]]:
    _expect_root(root, spec.root, where)
    children = [child for child in _elements(root) if _local_name(child.tag) != _SIGNATURE]
    if spec.single:
        return [_fields(children, where, None)]
    rows = []
    for child in children:
        name = _local_name(child.tag)
        if name != spec.list_tag:
            raise _structure(
                where,
                f"<{name}> không thuộc <{spec.root}> (cần <{spec.list_tag}>)",
                f"<{name}> does not belong in <{spec.root}> (expected <{spec.list_tag}>)",
            )
        for record in _elements(child):
            record_name = _local_name(record.tag)
            if record_name != spec.record_tag:
                raise _structure(
                    where,
                    f"<{record_name}> không thuộc <{spec.list_tag}> (cần <{spec.record_tag}>)",
                    f"<{record_name}> does not belong in <{spec.list_tag}> "
                    f"(expected <{spec.record_tag}>)",
                )
            rows.append(_fields(_elements(record), where, len(rows) + 1))
    return rows


def _spec(table: str, where: Where, allowed: tuple[str, ...]) -> TableSpec:
    if table not in allowed:
        raise where.error(
            "qd4750.unknown_table",
            f"loại hồ sơ {table!r} không hợp lệ (dùng một trong: {', '.join(allowed)})",
            f"unknown table type {table!r} (expected one of: {', '.join(allowed)})",
            value=table,
        )
    return TABLES[table]


def read_table(
    table: str, inner: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[dict[str, str]]:
    """Rows of one inner table document (already base64-decoded): element → text."""
    where = Where.document(str(table))
    spec = _spec(table, where, tuple(TABLES))
    return _rows(spec, _parse(inner, max_bytes, where), where)


def read_checkin(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[dict[str, str]]:
    """Rows of a check-in document (CHI_TIEU_TRANG_THAI_KCB); the signature is ignored."""
    where = Where.document("XML0")
    return _rows(TABLES["XML0"], _parse(data, max_bytes, where), where)


def _child(parent: Any, name: str) -> Any:
    for child in parent:
        if isinstance(child.tag, str) and _local_name(child.tag) == name:
            return child
    return None


def _text(parent: Any, name: str) -> str | None:
    child = _child(parent, name) if parent is not None else None
    return None if child is None else (child.text or "")


def _decode(content: str, where: Where) -> bytes:
    compact = "".join(content.split())
    if not compact:
        raise where.error("qd4750.bad_base64", "NOIDUNGFILE rỗng", "NOIDUNGFILE is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise where.error(
            "qd4750.bad_base64",
            f"NOIDUNGFILE không phải base64 hợp lệ ({exc})",
            f"NOIDUNGFILE is not valid base64 ({exc})",
        ) from None


def read_envelope(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Envelope:
    """Parse a GIAMDINHHS file and every inner document it carries."""
    where = Where.document()
    root = _parse(data, max_bytes, where)
    _expect_root(root, "GIAMDINHHS", where)
    info = _child(root, "THONGTINHOSO")
    if info is None:
        raise _structure(where, "thiếu <THONGTINHOSO>", "<THONGTINHOSO> is missing")
    count_text = (_text(info, "SOLUONGHOSO") or "").strip()
    if count_text and not (count_text.isascii() and count_text.isdigit()):
        raise _structure(
            where,
            f"SOLUONGHOSO không phải số nguyên: {count_text!r}",
            f"SOLUONGHOSO is not an integer: {count_text!r}",
        )
    episodes = []
    listing = _child(info, "DANHSACHHOSO")
    for number, hoso in enumerate(
        (el for el in _elements(listing) if _local_name(el.tag) == "HOSO")
        if listing is not None
        else (),
        start=1,
    ):
        episode: dict[str, list[dict[str, str]]] = {}
        for file in _elements(hoso):
            if _local_name(file.tag) != "FILEHOSO":
                continue
            table = (_text(file, "LOAIHOSO") or "").strip()
            here = Where.hoso(number, table or None)
            spec = _spec(table, here, ENVELOPE_TABLES)
            if table in episode:
                raise here.error(
                    "qd4750.duplicate_table",
                    "bảng xuất hiện hai lần trong cùng một HOSO",
                    "the table appears twice in the same HOSO",
                    value=table,
                )
            content = _text(file, "NOIDUNGFILE")
            if content is None:
                raise _structure(here, "thiếu <NOIDUNGFILE>", "<NOIDUNGFILE> is missing")
            inner = _decode(content, here)
            episode[table] = _rows(spec, _parse(inner, max_bytes, here), here)
        episodes.append(episode)
    return Envelope(
        facility_code=_text(_child(root, "THONGTINDONVI"), "MACSKCB") or "",
        created=_text(info, "NGAYLAP") or "",
        declared_count=int(count_text) if count_text else None,
        episodes=episodes,
    )
