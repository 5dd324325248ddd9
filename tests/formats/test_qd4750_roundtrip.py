"""Writers and readers together: what render_* writes, read_* gives back unchanged."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ytehub.core.errors import DomainError
from ytehub.formats.qd4750 import (
    ENVELOPE_TABLES,
    TABLES,
    read_checkin,
    read_envelope,
    read_table,
    render_checkin,
    render_envelope,
    render_table,
)


def _legal(char: str) -> bool:
    """Characters XML 1.0 can carry (everything else is refused by the writer)."""
    code = ord(char)
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or code >= 0x10000
    )


PIECES = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)).filter(_legal), max_size=12),
    st.sampled_from(
        [
            "&",
            "<",
            ">",
            "]]>",
            "&amp;",
            "<![CDATA[x]]>",
            "\r\n",
            "\r",
            "\t",
            "  ",
            "%s",
            "{0}",
            "Nguyễn Thị Hồng Nhung",
            "Đắk Lắk; Thừa Thiên Huế",
            "98/QĐ-TTMS;G1;N1;2024",
        ]
    ),
)
VALUES = st.lists(PIECES, max_size=4).map("".join)


def rows_for(table: str, max_rows: int = 4) -> st.SearchStrategy[list[dict[str, str]]]:
    names = TABLES[table].names
    row = st.fixed_dictionaries({}, optional={name: VALUES for name in names})
    if TABLES[table].single:
        return st.lists(row, min_size=1, max_size=1)
    return st.lists(row, max_size=max_rows)


def complete(table: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """What the reader returns: every element (the writer writes them all), "" when missing."""
    return [{name: row.get(name, "") for name in TABLES[table].names} for row in rows]


SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
PER_TABLE = settings(SETTINGS, max_examples=30)


@pytest.mark.parametrize("table", [name for name in TABLES if name != "XML0"])
@PER_TABLE
@given(data=st.data())
def test_table_round_trip(table: str, data: st.DataObject) -> None:
    rows = data.draw(rows_for(table))
    assert read_table(table, render_table(table, rows)) == complete(table, rows)


@SETTINGS
@given(
    episodes=st.lists(
        st.fixed_dictionaries(
            {"XML1": rows_for("XML1")},
            optional={name: rows_for(name) for name in ("XML2", "XML3", "XML4", "XML5", "XML13")},
        ),
        min_size=1,
        max_size=3,
    ),
    facility=VALUES,
)
def test_envelope_round_trip(
    episodes: list[dict[str, list[dict[str, str]]]], facility: str
) -> None:
    rendered = [
        {table: render_table(table, rows) for table, rows in episode.items()}
        for episode in episodes
    ]
    envelope = read_envelope(render_envelope(facility, date(2025, 7, 1), rendered))
    assert envelope.facility_code == facility
    assert envelope.created == "20250701"
    assert envelope.declared_count == len(episodes)
    assert envelope.episodes == [
        {table: complete(table, rows) for table, rows in episode.items()} for episode in episodes
    ]


@SETTINGS
@given(rows=rows_for("XML0", max_rows=5))
def test_checkin_round_trip(rows: list[dict[str, str]]) -> None:
    document = render_checkin(rows)
    assert read_checkin(document) == complete("XML0", rows)
    root = etree.fromstring(document)
    assert [child.tag for child in root] == ["DSACH_TRANG_THAI_KCB", "CHUKYDONVI"]


def test_xml1_is_a_single_record_under_the_root() -> None:
    document = render_table("XML1", [{"MA_LK": "LK001", "HO_TEN": "Trần Văn Bình"}])
    assert document.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<TONG_HOP ')
    root = etree.fromstring(document)
    assert root.tag == "TONG_HOP"
    assert [child.tag for child in root] == list(TABLES["XML1"].names)
    assert root.nsmap == {
        "xsd": "http://www.w3.org/2001/XMLSchema",
        "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    }
    assert read_table("XML1", document) == complete(
        "XML1", [{"MA_LK": "LK001", "HO_TEN": "Trần Văn Bình"}]
    )


def test_list_table_layout_and_order() -> None:
    rows = [{"STT": "1", "MA_LK": "A"}, {}]
    root = etree.fromstring(render_table("XML2", rows))
    assert root.tag == "CHITIEU_CHITIET_THUOC"
    (listing,) = root
    assert listing.tag == "DSACH_CHI_TIET_THUOC"
    assert [record.tag for record in listing] == ["CHI_TIET_THUOC", "CHI_TIET_THUOC"]
    for record in listing:
        assert [child.tag for child in record] == list(TABLES["XML2"].names)
    assert listing[0].findtext("MA_LK") == "A" and listing[1].findtext("MA_LK") == ""


def test_empty_list_table() -> None:
    assert read_table("XML4", render_table("XML4", [])) == []


def test_missing_and_none_values_are_empty_elements() -> None:
    document = render_table("XML1", [{"MA_LK": "X", "HO_TEN": None}])  # type: ignore[dict-item]
    assert b"<HO_TEN></HO_TEN>" in document and b"<GHI_CHU></GHI_CHU>" in document


def test_escaping() -> None:
    document = render_table("XML1", [{"GHI_CHU": "a & b < c > d ]]> e\r\nf"}])
    assert b"a &amp; b &lt; c &gt; d ]]&gt; e&#13;\nf" in document
    assert read_table("XML1", document)[0]["GHI_CHU"] == "a & b < c > d ]]> e\r\nf"


def _code(call: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def test_unknown_element_names_table_and_element() -> None:
    error = _code(lambda: render_table("XML2", [{"MA_LK": "1"}, {"MA_LK": "2", "TYPO": "x"}]))
    assert error.code == "qd4750.unknown_element"
    assert "XML2" in error.message.vi and "TYPO" in error.message.vi
    assert "XML2" in error.message.en and "TYPO" in error.message.en
    assert error.extra == {"table": "XML2", "row": 2}
    assert error.field == "TYPO"


def test_single_record_tables_take_exactly_one_row() -> None:
    for rows in ([], [{}, {}]):
        assert _code(lambda rows=rows: render_table("XML7", rows)).code == "qd4750.single_record"


def test_unknown_table() -> None:
    assert _code(lambda: render_table("XML16", [])).code == "qd4750.unknown_table"


@pytest.mark.parametrize("char", ["\x00", "\x0b", "\x1f", "\ud800", "\uffff"])
def test_characters_xml_cannot_carry_are_refused(char: str) -> None:
    error = _code(lambda: render_table("XML5", [{"DIEN_BIEN_LS": f"ok{char}"}]))
    assert error.code == "qd4750.invalid_char"
    assert error.field == "DIEN_BIEN_LS"


def test_values_must_be_formatted_text() -> None:
    error = _code(lambda: render_table("XML2", [{"SO_LUONG": 14}]))  # type: ignore[dict-item]
    assert error.code == "qd4750.not_text" and error.field == "SO_LUONG"


def test_envelope_layout() -> None:
    x1 = render_table("XML1", [{"MA_LK": "LK1"}])
    x2 = render_table("XML2", [{"MA_LK": "LK1"}])
    x10 = render_table("XML10", [{"MA_LK": "LK1"}])
    document = render_envelope("79001", date(2025, 1, 2), [{"XML10": x10, "XML2": x2, "XML1": x1}])
    root = etree.fromstring(document)
    assert root.tag == "GIAMDINHHS"
    assert [child.tag for child in root] == ["THONGTINDONVI", "THONGTINHOSO", "CHUKYDONVI"]
    assert root.findtext("THONGTINDONVI/MACSKCB") == "79001"
    assert root.findtext("THONGTINHOSO/NGAYLAP") == "20250102"
    assert root.findtext("THONGTINHOSO/SOLUONGHOSO") == "1"
    assert root.findtext("CHUKYDONVI") == ""
    files = root.findall("THONGTINHOSO/DANHSACHHOSO/HOSO/FILEHOSO")
    assert [file.findtext("LOAIHOSO") for file in files] == ["XML1", "XML2", "XML10"]  # numeric
    assert base64.b64decode(files[1].findtext("NOIDUNGFILE")) == x2


@pytest.mark.parametrize("table", ["XML0", "XML12", "XML16", "xml1"])
def test_envelope_refuses_tables_not_sent_in_files(table: str) -> None:
    error = _code(lambda: render_envelope("79001", date(2025, 1, 2), [{table: b"<x/>"}]))
    assert error.code == "qd4750.unknown_table"
    assert table not in ENVELOPE_TABLES


def test_empty_envelope() -> None:
    envelope = read_envelope(render_envelope("79001", date(2025, 1, 2), []))
    assert (envelope.declared_count, envelope.episodes) == (0, [])
