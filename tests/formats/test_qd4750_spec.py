"""The committed QĐ 4750 spec (tables.json) against the official workbook and the reference notes.

The workbooks live outside the repository, in ``shared/data/qd4750`` next to it; CI has them, so
a missing folder is a failure, not a skip. Only the tests read them — never the package.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from ytehub.core.errors import DomainError
from ytehub.formats.qd4750 import ENVELOPE_TABLES, TABLES, Element, TableSpec

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "qd4750"
OFFICIAL = DATA / "phu-luc-qd4750.xlsx"
VENDOR = DATA / "validation-rules-qd4750.xlsx"
NAME = re.compile(r"[A-Z][A-Z0-9_]*")
KINDS = {"Chuỗi": "str", "Số": "num"}

# Every type/size change of the "Đính chính hoặc sửa đổi, bổ sung" column, as interpreted:
# "Đổi kiểu dữ liệu thành chuỗi" → kind "str"; "Tăng kích thước tối đa lên N ký tự" → max N.
# (XML7 MA_TTDV is already "Chuỗi" in the sheet; the change is a no-op there.)
INTERPRETED: dict[tuple[str, str], dict[str, Any]] = {
    ("XML0", "SO_CCCD"): {"kind": "str"},
    ("XML0", "MA_DOITUONG_KCB"): {"kind": "str", "max_len": 4},
    ("XML0", "MA_LOAI_KCB"): {"kind": "str"},
    ("XML1", "SO_CCCD"): {"kind": "str"},
    ("XML1", "MA_QUOCTICH"): {"kind": "str"},
    ("XML1", "MA_DANTOC"): {"kind": "str"},
    ("XML1", "MA_NGHE_NGHIEP"): {"kind": "str"},
    ("XML1", "DIEN_THOAI"): {"kind": "str"},
    ("XML1", "MA_DOITUONG_KCB"): {"max_len": 4},
    ("XML1", "MA_LOAI_KCB"): {"kind": "str"},
    ("XML2", "MA_KHOA"): {"max_len": 50},
    ("XML3", "TT_THAU"): {"max_len": 50},
    ("XML3", "MA_KHOA"): {"max_len": 50},
    ("XML6", "SO_CCCD"): {"kind": "str"},
    ("XML6", "MA_XU_TRI"): {"kind": "str", "max_len": 10},
    ("XML7", "MA_TTDV"): {"kind": "str"},
    ("XML8", "MA_LOAI_KCB"): {"kind": "str"},
    ("XML8", "MA_TTDV"): {"kind": "str"},
    ("XML9", "MA_BHXH_NND"): {"kind": "str"},
    ("XML9", "MA_DANTOC_NND"): {"kind": "str"},
    ("XML9", "SO_CCCD_NND"): {"kind": "str"},
    ("XML9", "MA_QUOCTICH"): {"kind": "str"},
    ("XML9", "MA_TTDV"): {"kind": "str"},
    ("XML10", "MA_TTDV"): {"kind": "str"},
    ("XML11", "MA_BHXH"): {"kind": "str"},
    ("XML11", "MA_TTDV"): {"kind": "str"},
    ("XML12", "SO_CCCD"): {"kind": "str"},
    ("XML12", "MA_BHXH"): {"kind": "str"},
    ("XML12", "DANG_HUONG_CHE_DO"): {"kind": "str", "max_len": 10},
}

# vn-formats.md §1.3 (root, list, record); XML12's root is unconfirmed there.
TAGS: dict[str, tuple[str, str | None, str | None]] = {
    "XML0": ("CHI_TIEU_TRANG_THAI_KCB", "DSACH_TRANG_THAI_KCB", "TRANG_THAI_KCB"),
    "XML1": ("TONG_HOP", None, None),
    "XML2": ("CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC"),
    "XML3": ("CHITIEU_CHITIET_DVKT_VTYT", "DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT"),
    "XML4": ("CHITIEU_CHITIET_DICHVUCANLAMSANG", "DSACH_CHI_TIET_CLS", "CHI_TIET_CLS"),
    "XML5": (
        "CHITIEU_CHITIET_DIENBIENLAMSANG",
        "DSACH_CHI_TIET_DIEN_BIEN_BENH",
        "CHI_TIET_DIEN_BIEN_BENH",
    ),
    "XML6": (
        "CHI_TIEU_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
        "DSACH_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
        "HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
    ),
    "XML7": ("CHI_TIEU_DU_LIEU_GIAY_RA_VIEN", None, None),
    "XML8": ("CHI_TIEU_DU_LIEU_TOM_TAT_HO_SO_BENH_AN", None, None),
    "XML9": (
        "CHI_TIEU_DU_LIEU_GIAY_CHUNG_SINH",
        "DSACH_GIAYCHUNGSINH",
        "DU_LIEU_GIAY_CHUNG_SINH",
    ),
    "XML10": ("CHI_TIEU_DU_LIEU_GIAY_NGHI_DUONG_THAI", None, None),
    "XML11": ("CHI_TIEU_DU_LIEU_GIAY_CHUNG_NHAN_NGHI_VIEC_HUONG_BAO_HIEM_XA_HOI", None, None),
    "XML13": ("CHI_TIEU_GIAYCHUYENTUYEN", None, None),
    "XML14": ("CHI_TIEU_GIAYHEN_KHAMLAI", None, None),
    "XML15": (
        "CHI_TIEU_DIEUTRI_BENHLAO",
        "DSACH_CHITIET_DIEUTRI_BENHLAO",
        "CHITIET_DIEUTRI_BENHLAO",
    ),
}

ALL = [f"XML{number}" for number in range(16)]


def _text(value: Any) -> str:
    return "" if value is None else str(value).replace("\r\n", "\n").strip()


def _workbook(path: Path) -> Any:
    if not path.is_file():
        pytest.fail(
            f"QĐ 4750 workbook not found at {path}: the repository's parent folder must hold "
            "shared/data/qd4750/ (CI provides it)."
        )
    return openpyxl.load_workbook(path, read_only=True)


def _table_of(title: str) -> str:
    if "check-in" in title.lower():
        return "XML0"
    match = re.match(r"(?i)\s*bang\s*(\d+)", title)
    assert match, title
    return f"XML{int(match.group(1))}"


def _sheets(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Table name -> element rows (padded), in sheet order."""
    result = {}
    for sheet in _workbook(path).worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        header = next(i for i, row in enumerate(rows) if row and _text(row[0]) == "STT")
        padded = [(*row, *(None,) * 8) for row in rows[header + 1 :]]
        header_row = [_text(cell) for cell in rows[header]]
        result[_table_of(sheet.title)] = [
            (*row, header_row) for row in padded if NAME.fullmatch(_text(row[1]))
        ]
    return result


@pytest.fixture(scope="module")
def official() -> dict[str, list[tuple[Any, ...]]]:
    return _sheets(OFFICIAL)


@pytest.fixture(scope="module")
def vendor() -> dict[str, list[tuple[Any, ...]]]:
    return _sheets(VENDOR)


def _size(value: Any) -> int | None:
    raw = _text(value)
    return None if raw == "n" else int(raw)


def test_sixteen_tables_in_order(official: dict[str, list[tuple[Any, ...]]]) -> None:
    assert list(official) == ALL
    assert list(TABLES) == ALL
    assert tuple(name for name in ALL if name not in ("XML0", "XML12")) == ENVELOPE_TABLES


@pytest.mark.parametrize("table", ALL)
def test_names_and_order_match_the_official_sheet(
    official: dict[str, list[tuple[Any, ...]]], table: str
) -> None:
    spec = TABLES[table]
    assert spec.names == tuple(_text(row[1]) for row in official[table])
    assert [element.order for element in spec.elements] == list(range(1, len(spec.elements) + 1))


@pytest.mark.parametrize("table", ALL)
def test_types_and_sizes_after_4750(official: dict[str, list[tuple[Any, ...]]], table: str) -> None:
    for row, element in zip(official[table], TABLES[table].elements, strict=True):
        expected = {"kind": KINDS[_text(row[2])], "max_len": _size(row[3])}
        expected |= INTERPRETED.get((table, element.name), {})
        assert (element.kind, element.max_len) == (expected["kind"], expected["max_len"]), (
            f"{table}.{element.name}"
        )


def test_every_type_or_size_change_is_listed(official: dict[str, list[tuple[Any, ...]]]) -> None:
    """The explicit list above is exactly the rows whose 4750 text touches type or size."""
    mentioned = {
        (table, _text(row[1]))
        for table, rows in official.items()
        for row in rows
        if re.search(r"kiểu dữ liệu|kích thước tối đa", _text(row[5]), re.IGNORECASE)
        and "Đính chính hoặc sửa đổi, bổ sung" in row[-1]
    }
    assert mentioned == set(INTERPRETED)


@pytest.mark.parametrize("table", ALL)
def test_change_text_is_the_official_one(
    official: dict[str, list[tuple[Any, ...]]], table: str
) -> None:
    for row, element in zip(official[table], TABLES[table].elements, strict=True):
        header = row[-1]
        change = _text(row[5]) if "Đính chính hoặc sửa đổi, bổ sung" in header else ""
        assert element.change_4750 == (change or None), f"{table}.{element.name}"
        assert element.description_vi, f"{table}.{element.name}"
        assert len(element.description_vi) <= 201


@pytest.mark.parametrize("table", ALL)
def test_required_flags_are_the_vendor_x(
    vendor: dict[str, list[tuple[Any, ...]]], table: str
) -> None:
    rows = vendor[table]
    assert tuple(_text(row[1]) for row in rows) == TABLES[table].names
    for row, element in zip(rows, TABLES[table].elements, strict=True):
        column = row[-1].index("Bắt buộc")
        mark = _text(row[column])
        assert element.required is (mark.lower() == "x"), f"{table}.{element.name}"
        assert element.required_note == (None if element.required or not mark else mark)


def test_4750_inserted_rows_keep_their_sheet_position() -> None:
    assert TABLES["XML1"].element("NHOM_MAU").order == 8
    assert TABLES["XML1"].element("MA_QUOCTICH").order == 9
    assert TABLES["XML2"].element("NGAY_TH_YL").order == 35
    assert TABLES["XML2"].element("DU_PHONG").order == 39
    # Sheet 14 skips STT 14; order still counts positions.
    assert TABLES["XML14"].element("CHAN_DOAN_RV").order == 14


@pytest.mark.parametrize("table", sorted(TAGS))
def test_inner_tags_match_the_reference_notes(table: str) -> None:
    spec = TABLES[table]
    assert (spec.root, spec.list_tag, spec.record_tag) == TAGS[table]
    assert spec.root_confirmed
    assert spec.single is (spec.list_tag is None)


def test_xml12_is_present_but_unconfirmed() -> None:
    spec = TABLES["XML12"]
    assert not spec.root_confirmed
    assert spec.names[0] == "NGUOI_CHU_TRI"
    assert len(spec.elements) == 35


def test_element_lookup() -> None:
    spec = TABLES["XML2"]
    assert isinstance(spec, TableSpec)
    element = spec.element("MA_KHOA")
    assert isinstance(element, Element)
    assert (element.kind, element.max_len) == ("str", 50)
    assert TABLES["XML1"].element("MA_THE_BHYT").max_len is None
    assert "MA_KHOA" in spec
    with pytest.raises(DomainError) as caught:
        spec.element("NOT_THERE")
    assert caught.value.code == "qd4750.unknown_element"
    assert "XML2" in caught.value.message.vi and "NOT_THERE" in caught.value.message.en


def test_titles() -> None:
    assert TABLES["XML2"].title_vi == "Bảng 2. Chỉ tiêu chi tiết thuốc"
    assert TABLES["XML0"].title_vi.startswith("Bảng chỉ tiêu dữ liệu về trạng thái")


def test_package_never_reads_shared_data() -> None:
    package = Path(__file__).resolve().parents[2] / "ytehub" / "formats"
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "shared/data" not in text and "openpyxl" not in text, source


def test_committed_json_is_what_the_generator_produces() -> None:
    """tables.json is exactly scripts/gen_qd4750_spec.py's output for the current workbooks."""
    _workbook(OFFICIAL)
    repo = Path(__file__).resolve().parents[2]
    loader = importlib.util.spec_from_file_location(
        "gen_qd4750_spec", repo / "scripts" / "gen_qd4750_spec.py"
    )
    assert loader is not None and loader.loader is not None
    generator = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(generator)
    committed = json.loads(
        (repo / "ytehub" / "formats" / "qd4750" / "tables.json").read_text(encoding="utf-8")
    )
    assert generator.build(DATA) == committed
