"""Table specifications of QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT, loaded from ``tables.json``.

The JSON is generated once from the official appendix workbook by
``scripts/gen_qd4750_spec.py`` and committed: the application never reads the workbook.
``required`` comes from a vendor validation workbook (only an exact "x" in its "Bắt buộc"
column) — a second opinion, not law; its conditional wording is kept in ``required_note``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from ytehub.formats.qd4750._errors import error

__all__ = ["ENVELOPE_TABLES", "TABLES", "Element", "TableSpec"]


@dataclass(frozen=True, slots=True)
class Element:
    """One element (chỉ tiêu) of a table, as the official sheet lists it after the 4750 changes."""

    name: str
    order: int  # 1-based position in the official sheet (4750-inserted rows keep their place)
    kind: Literal["str", "num"]
    max_len: int | None  # None for "n" (unbounded)
    required: bool  # vendor workbook's unconditional "x" only — a second opinion
    description_vi: str
    change_4750: str | None
    required_note: str | None = None  # vendor's conditional wording, e.g. "Bắt buộc khi …"


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table: its inner XML tags and its elements in official order."""

    name: str  # "XML0" (check-in) … "XML15"
    title_vi: str
    root: str
    list_tag: str | None  # None for single-record tables (fields directly under root)
    record_tag: str | None
    elements: tuple[Element, ...]
    root_confirmed: bool = True  # False only for XML12, whose tags no primary source gives
    _by_name: dict[str, Element] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {element.name: element for element in self.elements})
        object.__setattr__(self, "_names", tuple(element.name for element in self.elements))

    @property
    def single(self) -> bool:
        """True when the table holds one record whose fields sit directly under the root."""
        return self.list_tag is None

    @property
    def names(self) -> tuple[str, ...]:
        """Element names in official order (precomputed: writers call this in hot loops)."""
        return self._names

    def element(self, name: str) -> Element:
        """The element called ``name``; a DomainError (not KeyError) so callers can report it."""
        try:
            return self._by_name[name]
        except KeyError:
            raise error(
                "qd4750.unknown_element",
                f"Bảng {self.name} không có chỉ tiêu {name}",
                f"Table {self.name} has no element {name}",
                field=name,
                table=self.name,
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def _load() -> dict[str, TableSpec]:
    raw: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath("tables.json").read_text(encoding="utf-8")
    )
    tables = {}
    for table in raw["tables"]:
        elements = tuple(
            Element(
                name=item["name"],
                order=item["order"],
                kind=item["kind"],
                max_len=item["max_len"],
                required=item["required"],
                description_vi=item["description_vi"],
                change_4750=item["change_4750"],
                required_note=item["required_note"],
            )
            for item in table["elements"]
        )
        tables[table["name"]] = TableSpec(
            name=table["name"],
            title_vi=table["title_vi"],
            root=table["root"],
            list_tag=table["list_tag"],
            record_tag=table["record_tag"],
            elements=elements,
            root_confirmed=table["root_confirmed"],
        )
    return tables


#: All 16 tables: "XML0" (check-in, its own document) and "XML1" … "XML15".
TABLES: dict[str, TableSpec] = _load()

#: Tables that may appear as LOAIHOSO inside GIAMDINHHS: XML1–XML11 and XML13–XML15.
#: XML0 is a separate upload; XML12 is entered on the BHXH portal, never sent in files.
ENVELOPE_TABLES: tuple[str, ...] = tuple(name for name in TABLES if name not in ("XML0", "XML12"))
