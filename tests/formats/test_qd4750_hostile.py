"""Hostile and broken files: each is refused with its stable code; nothing is read from disk or
the network; legitimate variations seen in real exports are still accepted."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ytehub.core.errors import DomainError
from ytehub.formats.qd4750 import (
    read_checkin,
    read_envelope,
    read_table,
    render_envelope,
    render_table,
)

XML1 = render_table("XML1", [{"MA_LK": "LK1", "HO_TEN": "Lê Thị Hoa"}])
XML2 = render_table("XML2", [{"MA_LK": "LK1", "STT": "1"}])


def envelope(*files: tuple[str, str], count: str = "1", hoso: int = 1) -> bytes:
    """A hand-made GIAMDINHHS with raw (LOAIHOSO, NOIDUNGFILE text) pairs in the last HOSO."""
    good = "".join(
        "<HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO>"
        f"<NOIDUNGFILE>{base64.b64encode(XML1).decode()}</NOIDUNGFILE></FILEHOSO></HOSO>"
        for _ in range(hoso - 1)
    )
    last = "".join(
        f"<FILEHOSO><LOAIHOSO>{kind}</LOAIHOSO><NOIDUNGFILE>{content}</NOIDUNGFILE></FILEHOSO>"
        for kind, content in files
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<GIAMDINHHS>'
        "<THONGTINDONVI><MACSKCB>79001</MACSKCB></THONGTINDONVI>"
        f"<THONGTINHOSO><NGAYLAP>20250101</NGAYLAP><SOLUONGHOSO>{count}</SOLUONGHOSO>"
        f"<DANHSACHHOSO>{good}<HOSO>{last}</HOSO></DANHSACHHOSO></THONGTINHOSO>"
        "<CHUKYDONVI/></GIAMDINHHS>"
    ).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def refused(call: Any, code: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert caught.value.message.vi and caught.value.message.en
    return caught.value


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-4750", encoding="utf-8")
    return path


@pytest.fixture
def listener() -> Iterator[tuple[int, socket.socket]]:
    """A local TCP port that records whether anybody connected (external DTD / XXE over HTTP)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    try:
        yield server.getsockname()[1], server
    finally:
        server.close()


def nobody_connected(server: socket.socket) -> bool:
    try:
        server.accept()
    except BlockingIOError:
        return True
    return False


def _all_readers(document: bytes) -> list[Any]:
    """The same hostile document as envelope, as inner table, as check-in."""
    return [
        lambda: read_envelope(document),
        lambda: read_table("XML1", document),
        lambda: read_checkin(document),
        lambda: read_envelope(envelope(("XML1", b64(document)))),
    ]


def test_xxe_file(secret_file: Path) -> None:
    document = (
        f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret_file}">]>'
        "<TONG_HOP><MA_LK>&e;</MA_LK></TONG_HOP>"
    ).encode()
    for call in _all_readers(document):
        error = refused(call, "qd4750.doctype_forbidden")
        assert "TOP-SECRET" not in str(error.as_problem())


def test_xxe_etc_passwd() -> None:
    document = (
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<GIAMDINHHS><THONGTINDONVI><MACSKCB>&e;</MACSKCB></THONGTINDONVI></GIAMDINHHS>"
    )
    refused(lambda: read_envelope(document), "qd4750.doctype_forbidden")


def test_xxe_and_external_dtd_over_the_network(listener: tuple[int, socket.socket]) -> None:
    port, server = listener
    documents = [
        f'<!DOCTYPE TONG_HOP SYSTEM "http://127.0.0.1:{port}/x.dtd"><TONG_HOP/>',
        f'<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:{port}/e">]><TONG_HOP>&e;</TONG_HOP>',
        f'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p"> %p;]><TONG_HOP/>',
        f'<!DOCTYPE TONG_HOP PUBLIC "-//X//Y" "http://127.0.0.1:{port}/x.dtd"><TONG_HOP/>',
    ]
    for document in documents:
        for call in _all_readers(document.encode()):
            refused(call, "qd4750.doctype_forbidden")
    assert nobody_connected(server)


def test_billion_laughs() -> None:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    )
    document = (
        f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>'
        "<TONG_HOP><MA_LK>&lol9;</MA_LK></TONG_HOP>"
    )
    for call in _all_readers(document.encode()):
        refused(call, "qd4750.doctype_forbidden")


def test_doctype_hidden_after_comments_and_instructions() -> None:
    document = (
        b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<!-- a\n comment -->\n'
        b"<?pi data?>\n  <!DOCTYPE TONG_HOP><TONG_HOP/>"
    )
    refused(lambda: read_table("XML1", document), "qd4750.doctype_forbidden")


def test_oversize_is_refused_before_parsing() -> None:
    document = render_envelope("79001", date(2025, 1, 1), [{"XML1": XML1}])
    error = refused(lambda: read_envelope(document, max_bytes=100), "qd4750.too_large")
    assert error.status == 413
    refused(lambda: read_checkin(b"<" * 101, max_bytes=100), "qd4750.too_large")
    assert read_envelope(document, max_bytes=len(document)).episodes


def test_truncated_envelope() -> None:
    document = render_envelope("79001", date(2025, 1, 1), [{"XML1": XML1, "XML2": XML2}])
    for cut in (len(document) // 3, len(document) - 20, 10):
        refused(lambda cut=cut: read_envelope(document[:cut]), "qd4750.malformed_xml")
    refused(lambda: read_envelope(b""), "qd4750.malformed_xml")
    refused(lambda: read_envelope(b"  \n "), "qd4750.malformed_xml")


def test_truncated_inside_a_vietnamese_character_is_truncation_not_encoding() -> None:
    cut = XML1.index("Lê".encode()) + 2  # the second byte of the two-byte "ê"
    assert XML1[cut - 1 : cut] != b"e"
    refused(lambda: read_table("XML1", XML1[:cut]), "qd4750.malformed_xml")


def test_truncated_inner_document_names_hoso_and_table() -> None:
    document = envelope(("XML1", b64(XML1)), ("XML2", b64(XML2[:-30])), hoso=2)
    error = refused(lambda: read_envelope(document), "qd4750.malformed_xml")
    assert error.extra == {"hoso": 2, "table": "XML2"}
    assert "HOSO thứ 2, bảng XML2" in error.message.vi
    assert "HOSO no. 2, table XML2" in error.message.en


@pytest.mark.parametrize(
    "content", ["!!!notbase64!!!", b64(XML1)[:-1], "QUJD=QUJD", "Zm9v\u00e9", ""]
)
def test_malformed_base64(content: str) -> None:
    error = refused(lambda: read_envelope(envelope(("XML1", content))), "qd4750.bad_base64")
    assert error.extra == {"hoso": 1, "table": "XML1"}
    assert "NOIDUNGFILE" in error.message.en


@pytest.mark.parametrize(
    "inner",
    [
        '<?xml version="1.0" encoding="utf-16"?><TONG_HOP><HO_TEN>Việt</HO_TEN></TONG_HOP>'.encode(
            "utf-16"
        ),
        '<?xml version="1.0" encoding="utf-16"?><TONG_HOP><HO_TEN>Việt</HO_TEN></TONG_HOP>'.encode(
            "utf-16-le"
        ),  # no byte-order mark
        (
            '<?xml version="1.0" encoding="ISO-8859-1"?>'
            "<TONG_HOP><HO_TEN>Hà Nam café</HO_TEN></TONG_HOP>"
        ).encode("latin-1"),
        "<TONG_HOP><HO_TEN>café</HO_TEN></TONG_HOP>".encode("latin-1"),  # undeclared latin-1
        '<?xml version="1.0" encoding="windows-1258"?><TONG_HOP/>'.encode("ascii"),
    ],
)
def test_inner_document_not_in_utf8(inner: bytes) -> None:
    error = refused(lambda: read_envelope(envelope(("XML1", b64(inner)))), "qd4750.bad_encoding")
    assert error.extra == {"hoso": 1, "table": "XML1"}
    refused(lambda: read_table("XML1", inner), "qd4750.bad_encoding")


def test_envelope_not_in_utf8() -> None:
    document = envelope(("XML1", b64(XML1))).decode().replace("utf-8", "utf-16").encode("utf-16")
    refused(lambda: read_envelope(document), "qd4750.bad_encoding")


@pytest.mark.parametrize("kind", ["XML16", "XML0", "XML12", "xml1", "", "BANG1"])
def test_unknown_loaihoso(kind: str) -> None:
    error = refused(lambda: read_envelope(envelope((kind, b64(XML1)))), "qd4750.unknown_table")
    assert error.extra["hoso"] == 1
    assert error.value == kind


def test_wrong_inner_root() -> None:
    error = refused(lambda: read_envelope(envelope(("XML2", b64(XML1)))), "qd4750.wrong_root")
    assert error.extra == {"hoso": 1, "table": "XML2"}
    assert "TONG_HOP" in error.message.en and "CHITIEU_CHITIET_THUOC" in error.message.en
    refused(lambda: read_table("XML1", XML2), "qd4750.wrong_root")
    refused(lambda: read_checkin(XML1), "qd4750.wrong_root")
    refused(lambda: read_envelope(XML1), "qd4750.wrong_root")


def test_wrong_structure() -> None:
    flat = b"<CHITIEU_CHITIET_THUOC><CHI_TIET_THUOC/></CHITIEU_CHITIET_THUOC>"
    refused(lambda: read_table("XML2", flat), "qd4750.wrong_structure")
    nested = b"<TONG_HOP><MA_LK><X>1</X></MA_LK></TONG_HOP>"
    refused(lambda: read_table("XML1", nested), "qd4750.wrong_structure")
    twice = b"<TONG_HOP><MA_LK>1</MA_LK><MA_LK>2</MA_LK></TONG_HOP>"
    refused(lambda: read_table("XML1", twice), "qd4750.wrong_structure")
    refused(
        lambda: read_envelope(envelope(("XML1", b64(XML1)), count="two")), "qd4750.wrong_structure"
    )


def test_duplicate_table_in_one_hoso() -> None:
    document = envelope(("XML1", b64(XML1)), ("XML1", b64(XML1)))
    refused(lambda: read_envelope(document), "qd4750.duplicate_table")


def test_tolerated_variations() -> None:
    """Attributes with malformed namespace URIs, default namespaces, self-closing elements,
    CDATA, wrapped base64 and indentation all read fine."""
    inner = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<TONG_HOP xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema instance" foo:bar="1">\n'
        "  <MA_LK>LK1</MA_LK>\n  <HO_TEN><![CDATA[Phạm & <Minh>]]></HO_TEN>\n"
        "  <MAHUYEN_CU_TRU/>\n  <GHI_CHU>   </GHI_CHU>\n  <EXTRA_FIELD>x</EXTRA_FIELD>\n"
        "</TONG_HOP>\n"
    ).encode()
    wrapped = "\n".join(b64(inner)[i : i + 76] for i in range(0, len(b64(inner)), 76))
    namespaced = render_table("XML2", [{"MA_LK": "LK1"}]).replace(
        b"<CHITIEU_CHITIET_THUOC ", b'<CHITIEU_CHITIET_THUOC xmlns="urn:bhxh" '
    )
    result = read_envelope(envelope(("XML1", wrapped), ("XML2", b64(namespaced)), count=" 7 "))
    (episode,) = result.episodes
    assert episode["XML1"] == [
        {
            "MA_LK": "LK1",
            "HO_TEN": "Phạm & <Minh>",
            "MAHUYEN_CU_TRU": "",
            "GHI_CHU": "   ",
            "EXTRA_FIELD": "x",
        }
    ]
    assert episode["XML2"][0]["MA_LK"] == "LK1"
    assert result.declared_count == 7  # as written; comparing with the HOSO count is ingest's job
    assert (result.facility_code, result.created) == ("79001", "20250101")


def test_signature_element_in_checkin_is_ignored() -> None:
    document = (
        b"<CHI_TIEU_TRANG_THAI_KCB><DSACH_TRANG_THAI_KCB><TRANG_THAI_KCB><MA_LK>1</MA_LK>"
        b"</TRANG_THAI_KCB></DSACH_TRANG_THAI_KCB><CHUKYDONVI>sig</CHUKYDONVI>"
        b"</CHI_TIEU_TRANG_THAI_KCB>"
    )
    assert read_checkin(document) == [{"MA_LK": "1"}]


def test_parser_resource_limits_are_reported_as_too_large() -> None:
    deep = b"<TONG_HOP>" + b"<X>" * 300 + b"</X>" * 300 + b"</TONG_HOP>"
    refused(lambda: read_table("XML1", deep), "qd4750.too_large")
    huge = b"<TONG_HOP><GHI_CHU>" + b"x" * 10_000_001 + b"</GHI_CHU></TONG_HOP>"
    error = refused(lambda: read_table("XML1", huge), "qd4750.too_large")
    assert "10 MB" in error.message.en
