"""Generate ``ytehub/formats/qd4750/tables.json`` from the official QĐ 4750 appendix workbook.

Run once by hand (and again only if the workbook changes); the JSON is committed so the
application never reads ``../shared`` at run time::

    python scripts/gen_qd4750_spec.py [--data-dir ../shared/data/qd4750]

Sources:

* ``phu-luc-qd4750.xlsx`` — the appendix of QĐ 4750/QĐ-BYT (29/12/2023) amending QĐ 130/QĐ-BYT
  (18/01/2023): one sheet per table, row 2 is the header (STT, Chỉ tiêu, type and maximum size
  under QĐ 130, description, the 4750 correction). Rows without an STT were inserted by 4750.
* ``validation-rules-qd4750.xlsx`` — a vendor's validation workbook: only its "Bắt buộc"
  (required) column is used, and only an exact ``x`` counts; it is a second opinion, not law.
* Inner XML root / list / record tags are not in either workbook: they come from BHXH's XSDs as
  observed in independent implementations, see ``vn-formats.md`` §1.3 (copied below).

The only interpretation of the 4750 column is mechanical and deliberately narrow:
"Đổi kiểu dữ liệu thành chuỗi" turns the type into a string, "Tăng kích thước tối đa lên N ký
tự" sets the maximum size to N. Any other mention of the type or size aborts the run, so a new
kind of amendment cannot slip through unnoticed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import openpyxl

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "qd4750"
OUTPUT = REPO / "ytehub" / "formats" / "qd4750" / "tables.json"

OFFICIAL = "phu-luc-qd4750.xlsx"
VENDOR = "validation-rules-qd4750.xlsx"

# (root, list_tag, record_tag, root_confirmed) per table — vn-formats.md §1.3.
STRUCTURE: dict[str, tuple[str, str | None, str | None, bool]] = {
    "XML0": ("CHI_TIEU_TRANG_THAI_KCB", "DSACH_TRANG_THAI_KCB", "TRANG_THAI_KCB", True),
    "XML1": ("TONG_HOP", None, None, True),
    "XML2": ("CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC", True),
    "XML3": ("CHITIEU_CHITIET_DVKT_VTYT", "DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT", True),
    "XML4": ("CHITIEU_CHITIET_DICHVUCANLAMSANG", "DSACH_CHI_TIET_CLS", "CHI_TIET_CLS", True),
    "XML5": (
        "CHITIEU_CHITIET_DIENBIENLAMSANG",
        "DSACH_CHI_TIET_DIEN_BIEN_BENH",
        "CHI_TIET_DIEN_BIEN_BENH",
        True,
    ),
    "XML6": (
        "CHI_TIEU_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
        "DSACH_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
        "HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
        True,
    ),
    "XML7": ("CHI_TIEU_DU_LIEU_GIAY_RA_VIEN", None, None, True),
    "XML8": ("CHI_TIEU_DU_LIEU_TOM_TAT_HO_SO_BENH_AN", None, None, True),
    "XML9": (
        "CHI_TIEU_DU_LIEU_GIAY_CHUNG_SINH",
        "DSACH_GIAYCHUNGSINH",
        "DU_LIEU_GIAY_CHUNG_SINH",
        True,
    ),
    "XML10": ("CHI_TIEU_DU_LIEU_GIAY_NGHI_DUONG_THAI", None, None, True),
    "XML11": ("CHI_TIEU_DU_LIEU_GIAY_CHUNG_NHAN_NGHI_VIEC_HUONG_BAO_HIEM_XA_HOI", None, None, True),
    # Never exported by facilities (entered on the BHXH portal); one client uses this tag.
    "XML12": ("GIAM_DINH_Y_KHOA", None, None, False),
    "XML13": ("CHI_TIEU_GIAYCHUYENTUYEN", None, None, True),
    "XML14": ("CHI_TIEU_GIAYHEN_KHAMLAI", None, None, True),
    "XML15": (
        "CHI_TIEU_DIEUTRI_BENHLAO",
        "DSACH_CHITIET_DIEUTRI_BENHLAO",
        "CHITIET_DIEUTRI_BENHLAO",
        True,
    ),
}

ELEMENT_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
TO_STRING = re.compile(r"Đổi kiểu dữ liệu thành chuỗi")
NEW_SIZE = re.compile(r"Tăng kích thước tối đa lên (\d+) ký tự")
# Anything else that talks about type or size must be looked at by a person.
SUSPICIOUS = re.compile(r"kiểu dữ liệu|kích thước tối đa", re.IGNORECASE)
NEW_FIELD_PREFIX = re.compile(r"^\s*Bổ sung trường mới\s*:\s*")
KINDS = {"Chuỗi": "str", "Số": "num"}
DESCRIPTION_LIMIT = 200


def table_name(sheet_title: str) -> str:
    """Map a sheet title ('Bang Check-in', ' Bang 7_Giay ra vien') to XML0 … XML15."""
    title = sheet_title.strip()
    if "check-in" in title.lower():
        return "XML0"
    match = re.match(r"(?i)bang\s*(\d+)", title)
    if not match:
        raise SystemExit(f"cannot map sheet {sheet_title!r} to a table")
    return f"XML{int(match.group(1))}"


def text(value: Any) -> str:
    return "" if value is None else str(value).replace("\r\n", "\n").strip()


def parse_size(value: Any) -> int | None:
    raw = text(value)
    if raw.lower() == "n":
        return None
    if not raw.isdigit():
        raise SystemExit(f"unexpected maximum size {value!r}")
    return int(raw)


def short(description: str) -> str:
    """First sentence of the official description (whitespace flattened), at most ~200 chars."""
    flat = " ".join(description.split())
    sentence = re.split(r"(?<=\.)\s", flat, maxsplit=1)[0]
    if len(sentence) <= DESCRIPTION_LIMIT:
        return sentence
    cut = sentence[:DESCRIPTION_LIMIT].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def header_index(rows: list[tuple[Any, ...]]) -> int:
    for index, row in enumerate(rows):
        if row and text(row[0]) == "STT":
            return index
    raise SystemExit("no header row starting with STT")


def element_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    start = header_index(rows) + 1
    padded = [tuple(row) + (None,) * 8 for row in rows[start:]]
    return [row for row in padded if ELEMENT_NAME.fullmatch(text(row[1]))]


def required_flags(sheet: Any) -> list[tuple[str, bool, str | None]]:
    """(name, required, note) from the vendor workbook; only an exact 'x' is required."""
    rows = list(sheet.iter_rows(values_only=True))
    header = [text(cell) for cell in rows[header_index(rows)]]
    column = header.index("Bắt buộc")
    flags = []
    for row in element_rows(rows):
        mark = text(row[column])
        required = mark.lower() == "x"
        note = None if required or not mark else mark
        flags.append((text(row[1]), required, note))
    return flags


def build(data_dir: Path) -> dict[str, Any]:
    official = openpyxl.load_workbook(data_dir / OFFICIAL, read_only=True)
    vendor = openpyxl.load_workbook(data_dir / VENDOR, read_only=True)
    if len(official.worksheets) != 16 or len(vendor.worksheets) != 16:
        raise SystemExit("expected 16 sheets in each workbook")
    tables = []
    for sheet, vendor_sheet in zip(official.worksheets, vendor.worksheets, strict=True):
        name = table_name(sheet.title)
        if table_name(vendor_sheet.title) != name:
            raise SystemExit(f"sheet order differs: {sheet.title!r} / {vendor_sheet.title!r}")
        rows = list(sheet.iter_rows(values_only=True))
        flags = required_flags(vendor_sheet)
        elements = []
        for order, row in enumerate(element_rows(rows), start=1):
            element = text(row[1])
            kind_130 = KINDS[text(row[2])]
            size_130 = parse_size(row[3])
            change = text(row[5]) or None
            kind, size = kind_130, size_130
            if change:
                if TO_STRING.search(change):
                    kind = "str"
                size_match = NEW_SIZE.search(change)
                if size_match:
                    size = int(size_match.group(1))
                leftover = NEW_SIZE.sub("", TO_STRING.sub("", change))
                if SUSPICIOUS.search(leftover):
                    raise SystemExit(f"{name}.{element}: uninterpreted change {change!r}")
            description = text(row[4]) or NEW_FIELD_PREFIX.sub("", change or "")
            flag_name, required, note = flags[order - 1]
            if flag_name != element:
                raise SystemExit(f"{name}: vendor row {order} is {flag_name}, not {element}")
            elements.append(
                {
                    "name": element,
                    "order": order,
                    "stt": int(text(row[0])) if text(row[0]).isdigit() else None,
                    "kind": kind,
                    "max_len": size,
                    "kind_qd130": kind_130,
                    "max_len_qd130": size_130,
                    "required": required,
                    "required_note": note,
                    "description_vi": short(description),
                    "change_4750": change,
                }
            )
        if len(flags) != len(elements):
            raise SystemExit(
                f"{name}: vendor lists {len(flags)} elements, official {len(elements)}"
            )
        root, list_tag, record_tag, confirmed = STRUCTURE[name]
        tables.append(
            {
                "name": name,
                "sheet": sheet.title,
                "title_vi": text(rows[0][0]).split("\n", 1)[0].strip(),
                "root": root,
                "list_tag": list_tag,
                "record_tag": record_tag,
                "root_confirmed": confirmed,
                "elements": elements,
            }
        )
    return {
        "generated_by": "scripts/gen_qd4750_spec.py",
        "sources": {
            "official": f"{OFFICIAL} (appendix of QĐ 4750/QĐ-BYT amending QĐ 130/QĐ-BYT)",
            "required": f"{VENDOR} (vendor validation workbook: a second opinion, not law)",
            "tags": "vn-formats.md §1.3 (BHXH XSD tags as observed in implementations)",
        },
        "tables": tables,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    spec = build(args.data_dir)
    args.output.write_text(json.dumps(spec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    count = sum(len(table["elements"]) for table in spec["tables"])
    sys.stderr.write(f"wrote {args.output} ({len(spec['tables'])} tables, {count} elements)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
