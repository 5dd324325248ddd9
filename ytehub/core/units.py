"""Vietnam's administrative units (in force since 1 July 2025) and legacy-code conversion.

Sources:

* **Current units** — the General Statistics Office (GSO) list of 34 provinces and 3,321
  communes (2,621 xã, 687 phường, 13 đặc khu; no districts), as packaged by
  ``vietnam-provinces``. Its codes are the ones ytehub stores.
* **Legacy conversion** — the conversion tables of ``vietnamadminunits``: its SQLite
  ``data/dataset.db`` (tables ``admin_units`` and ``admin_units_legacy``) and
  ``data/converter_2025.json`` (``DICT_PROVINCE``, ``DICT_PROVINCE_WARD_NO_DIVIDED``,
  ``DICT_PROVINCE_WARD_DIVIDED``), plus its offline legacy address parser.

``vietnamadminunits`` keys units by folded names and its new commune codes differ from
the GSO codes for about 120 communes, so every new commune it names is resolved to a
``vietnam-provinces`` commune by (province, name); codes from that package never leak out.

Everything is loaded lazily on first use and cached in memory only; nothing is written.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import sqlite3
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "AddressConversion",
    "Commune",
    "CommuneGeo",
    "LegacyCommune",
    "LegacyConversion",
    "Province",
    "commune",
    "commune_geo",
    "communes",
    "convert_address",
    "convert_legacy_commune",
    "convert_legacy_province",
    "fold",
    "legacy_province_name",
    "origin_province",
    "predecessors",
    "province",
    "provinces",
    "search",
]

# --------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Province:
    """A province-level unit: ``code`` is two digits, ``kind`` is "tỉnh" or
    "thành phố trung ương"."""

    code: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Commune:
    """A commune-level unit: ``code`` is five digits, ``kind`` is "xã", "phường" or
    "đặc khu"; ``province_code`` is the two-digit code of its province."""

    code: str
    name: str
    kind: str
    province_code: str


@dataclass(frozen=True, slots=True)
class LegacyConversion:
    """Where a pre-2025 commune went.

    ``commune`` is the new commune (the default one when the old commune was divided);
    it is ``None`` only when the conversion tables name a commune that cannot be
    resolved to the GSO list (reported as *unmapped*). ``candidates`` lists every new
    commune that received part of the old one, default first; for an undivided commune
    it holds just ``commune``.
    """

    old_code: str
    old_name: str
    old_district_code: str
    old_district_name: str
    old_province_code: str
    old_province_name: str
    province: Province
    commune: Commune | None
    split: bool
    candidates: tuple[Commune, ...]

    @property
    def mapped(self) -> bool:
        """True when the old commune resolved to a current commune."""
        return self.commune is not None


@dataclass(frozen=True, slots=True)
class AddressConversion:
    """A legacy free-text address converted to the current units.

    ``commune`` is ``None`` when only the province could be recognised. ``old_*`` are the
    legacy units the parser recognised (``None`` where it found none).
    """

    text: str
    province: Province
    commune: Commune | None
    split: bool
    candidates: tuple[Commune, ...]
    street: str | None
    old_province_name: str | None
    old_district_name: str | None
    old_commune_name: str | None
    old_commune_code: str | None


# --------------------------------------------------------------------------------------
# Folding
# --------------------------------------------------------------------------------------

_D_MAP = str.maketrans({"đ": "d", "Đ": "D"})
_WS = re.compile(r"\s+")
_APOSTROPHES = re.compile(r"['’‘ʼ`´]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Fold Vietnamese text for comparison: no diacritics (đ→d), lower case, single spaces.

    Users type names with, without or with half the diacritics, in any case, with tone
    marks placed either way ("Hòa"/"Hoà"); all of these fold to the same string.
    Punctuation is kept. Uses NFD so composed and decomposed input fold alike.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_D_MAP))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WS.sub(" ", stripped.casefold()).strip()


def _search_key(text: str) -> str:
    """Fold and drop punctuation so "Ea H’leo" ≈ "ea hleo" and "A - B" ≈ "a b"."""
    folded = _APOSTROPHES.sub("", fold(text))
    return _NON_ALNUM.sub(" ", folded).strip()


def _accented_words(text: str) -> list[str]:
    """Case-folded words with their diacritics, to break ties between names that fold alike."""
    return _WORD.findall(unicodedata.normalize("NFC", text).casefold())


def _clean_name(name: str) -> str:
    """NFC and single spaces: the GSO list has a few names with doubled spaces."""
    return _WS.sub(" ", unicodedata.normalize("NFC", name)).strip()


def _norm_code(code: str | int | None, width: int) -> str | None:
    """Zero-pad a numeric code ("1" → "01"); ``None`` if it is not a plausible code."""
    if code is None:
        return None
    text = str(code).strip()
    if not text.isascii() or not text.isdigit() or len(text) > width:
        return None
    return text.zfill(width)


# --------------------------------------------------------------------------------------
# Current units (vietnam-provinces)
# --------------------------------------------------------------------------------------

_CITY = "thành phố trung ương"
_PROVINCE = "tỉnh"
_XA = "xã"
_PHUONG = "phường"
_DAC_KHU = "đặc khu"

# Leading words (as search keys) that name a unit's kind, in names and in queries.
_NAME_PREFIXES: dict[str, tuple[str, ...]] = {
    _CITY: ("thanh pho",),
    _PROVINCE: ("tinh",),
    _XA: ("xa",),
    _PHUONG: ("phuong",),
    _DAC_KHU: ("dac khu",),
}
_QUERY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("thanh pho", _CITY),
    ("tp", _CITY),
    ("tinh", _PROVINCE),
    ("dac khu", _DAC_KHU),
    ("dk", _DAC_KHU),
    ("phuong", _PHUONG),
    ("p", _PHUONG),
    ("xa", _XA),
    ("x", _XA),
)


@dataclass(frozen=True, slots=True)
class _SearchEntry:
    unit: Province | Commune
    kind: str
    full: str
    bare: str
    words: frozenset[str]  # accented, case-folded words: prefer "Thanh Trì" over "Thạnh Trị"
    order: tuple[int, int, str, str]  # provinces first, then shorter names, then A-Z


@dataclass(frozen=True, slots=True)
class _Current:
    provinces: dict[str, Province]
    communes: dict[str, Commune]
    by_province: dict[str, tuple[Commune, ...]]
    entries: tuple[_SearchEntry, ...]


def _kind(value: Any) -> str:
    """``VietNamDivisionType`` is a str enum; keep its plain value."""
    return str(getattr(value, "value", value))


def _int_code(value: Any) -> int:
    """``ProvinceCode``/``WardCode`` are IntEnums; be tolerant of plain ints or strings."""
    return int(getattr(value, "value", value))


def _bare(key: str, kind: str) -> str:
    """The search key without its leading kind word ("xa thanh tri" → "thanh tri")."""
    for prefix in _NAME_PREFIXES.get(kind, ()):
        if key.startswith(prefix + " "):
            return key[len(prefix) + 1 :]
    return key


def _entry(unit: Province | Commune) -> _SearchEntry:
    full = _search_key(unit.name)
    level = 0 if isinstance(unit, Province) else 1
    order = (level, len(full), full, unit.code)
    words = frozenset(_accented_words(unit.name))
    return _SearchEntry(unit, unit.kind, full, _bare(full, unit.kind), words, order)


@cache
def _current() -> _Current:
    """Load the GSO list once: the lookups and the search index all come from here."""
    from vietnam_provinces import Province as VPProvince
    from vietnam_provinces import Ward as VPWard

    provs = sorted(
        (
            Province(
                code=f"{_int_code(p.code):02d}",
                name=_clean_name(p.name),
                kind=_kind(p.division_type),
            )
            for p in VPProvince.iter_all()
        ),
        key=lambda p: p.code,
    )
    comms = sorted(
        (
            Commune(
                code=f"{_int_code(w.code):05d}",
                name=_clean_name(w.name),
                kind=_kind(w.division_type),
                province_code=f"{_int_code(w.province_code):02d}",
            )
            for w in VPWard.iter_all()
        ),
        key=lambda c: (c.province_code, c.code),
    )
    by_province: dict[str, list[Commune]] = {p.code: [] for p in provs}
    for c in comms:
        by_province.setdefault(c.province_code, []).append(c)
    entries = [_entry(u) for u in (*provs, *comms)]
    return _Current(
        provinces={p.code: p for p in provs},
        communes={c.code: c for c in comms},
        by_province={k: tuple(v) for k, v in by_province.items()},
        entries=tuple(entries),
    )


def provinces() -> list[Province]:
    """All 34 current provinces, by code."""
    return list(_current().provinces.values())


def communes(province_code: str | None = None) -> list[Commune]:
    """Current communes by (province, code); only one province's if ``province_code``
    is given (unknown code → empty list)."""
    data = _current()
    if province_code is None:
        return list(data.communes.values())
    code = _norm_code(province_code, 2)
    return list(data.by_province.get(code or "", ()))


def province(code: str) -> Province | None:
    """The current province with this code ("1" and "01" both work), or ``None``."""
    norm = _norm_code(code, 2)
    return _current().provinces.get(norm) if norm else None


def commune(code: str) -> Commune | None:
    """The current commune with this code ("640" and "00640" both work), or ``None``."""
    norm = _norm_code(code, 5)
    return _current().communes.get(norm) if norm else None


# --------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------


def _query_variants(query: str) -> list[tuple[str, str | None]]:
    """The query as typed, plus — when it starts with a kind word ("phường", "tp", "xã") —
    the remainder restricted to units of that kind."""
    key = _search_key(query)
    if not key:
        return []
    variants: list[tuple[str, str | None]] = [(key, None)]
    for prefix, kind in _QUERY_PREFIXES:
        if key.startswith(prefix + " "):
            rest = key[len(prefix) + 1 :]
            if rest:
                variants.append((rest, kind))
    return variants


def _rank(needle: str, haystack: str) -> int | None:
    """0 exact, 1 prefix, 2 substring, ``None`` no match."""
    if needle == haystack:
        return 0
    if haystack.startswith(needle):
        return 1
    if needle in haystack:
        return 2
    return None


def search(
    query: str, *, province_code: str | None = None, limit: int = 20
) -> list[Province | Commune]:
    """Find provinces and communes by name, with or without diacritics, in any case.

    The kind word is optional ("sai gon", "phuong sai gon", "P. Sài Gòn"; "ho chi minh",
    "tp ho chi minh"); when given, it must agree with the unit's kind. Ranked exact
    match first, then prefix, then substring; among equals, names sharing the query's
    diacritics, then provinces before communes, then shorter names. With
    ``province_code`` only that province's communes are searched.
    """
    if limit <= 0:
        return []
    variants = _query_variants(query)
    if not variants:
        return []
    data = _current()
    pool: Iterable[_SearchEntry] = data.entries
    if province_code is not None:
        code = _norm_code(province_code, 2)
        pool = (
            e for e in data.entries if isinstance(e.unit, Commune) and e.unit.province_code == code
        )
    query_words = _accented_words(query)
    hits: list[tuple[int, int, tuple[int, int, str, str], Province | Commune]] = []
    for entry in pool:
        best: int | None = None
        for needle, kind in variants:
            if kind is not None and kind != entry.kind:
                continue
            for haystack in (entry.full, entry.bare) if kind is None else (entry.bare,):
                rank = _rank(needle, haystack)
                if rank is not None and (best is None or rank < best):
                    best = rank
        if best is not None:
            misses = sum(word not in entry.words for word in query_words)
            hits.append((best, misses, entry.order, entry.unit))
    hits.sort(key=lambda h: h[:3])
    return [hit[3] for hit in hits[:limit]]


# --------------------------------------------------------------------------------------
# Legacy conversion (vietnamadminunits)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _OldCommune:
    code: str
    name: str
    district_code: str
    district_name: str
    province_code: str
    province_name: str
    key: str


@dataclass(frozen=True, slots=True)
class _Target:
    province_code: str
    candidates: tuple[str | None, ...]  # new commune codes, default first; None = unresolved
    split: bool


@dataclass(frozen=True, slots=True)
class _Legacy:
    old_communes: dict[str, _OldCommune]  # old 5-digit code → row
    targets: dict[str, _Target]  # "oldprovince_olddistrict_oldward" key → new units
    provinces: dict[str, str]  # old 2-digit province code → new province code


def _package_dir() -> Path:
    """Locate vietnamadminunits' data without importing it (its import costs ~0.3 s)."""
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("vietnamadminunits is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _rows(sql: str) -> list[sqlite3.Row]:
    """Query the package's dataset read-only (site-packages may be read-only, too)."""
    path = _package_dir() / "data" / "dataset.db"
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _resolver() -> Callable[[str, str], str | None]:
    """Map (province code, commune name) from vietnamadminunits to a GSO commune code:
    exact name first, then folded name when that is unambiguous in the province
    ("Văn Lang"/"Văn Lăng" fold alike)."""
    exact: dict[tuple[str, str], str] = {}
    folded: dict[tuple[str, str], list[str]] = {}
    for c in _current().communes.values():
        exact[(c.province_code, _clean_name(c.name).casefold())] = c.code
        folded.setdefault((c.province_code, _search_key(c.name)), []).append(c.code)

    def resolve(province_code: str, name: str) -> str | None:
        hit = exact.get((province_code, _clean_name(name).casefold()))
        if hit is not None:
            return hit
        codes = folded.get((province_code, _search_key(name)), [])
        return codes[0] if len(codes) == 1 else None

    return resolve


@cache
def _legacy() -> _Legacy:
    """Derive old-commune → new-commune tables by joining ``admin_units_legacy`` keys with
    the converter dictionaries, and resolving new communes to GSO codes by name."""
    with (_package_dir() / "data" / "converter_2025.json").open(encoding="utf-8") as fh:
        conv = json.load(fh)

    new_units = _rows("SELECT provinceKey, provinceCode, wardKey, ward FROM admin_units")
    new_province = {r["provinceKey"]: _norm_code(r["provinceCode"], 2) or "" for r in new_units}
    resolve = _resolver()
    new_commune = {
        (r["provinceKey"], r["wardKey"]): resolve(new_province[r["provinceKey"]], r["ward"])
        for r in new_units
    }

    targets: dict[str, _Target] = {}
    for pkey, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for wkey, old_keys in wards.items():
            target = _Target(new_province[pkey], (new_commune.get((pkey, wkey)),), False)
            for old_key in old_keys:
                targets[old_key] = target
    for pkey, divided in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, options in divided.items():
            ordered = sorted(options, key=lambda o: not o["isDefaultNewWard"])
            codes = tuple(new_commune.get((pkey, o["newWardKey"])) for o in ordered)
            targets[old_key] = _Target(new_province[pkey], codes, len(codes) > 1)

    old_rows = _rows(
        "SELECT province, provinceCode, provinceKey, district, districtCode, districtKey,"
        " ward, wardCode, wardKey FROM admin_units_legacy"
    )
    old_province_key = {r["provinceKey"]: _norm_code(r["provinceCode"], 2) or "" for r in old_rows}
    provinces_map = {
        old_province_key[old]: new_province[new]
        for new, olds in conv["DICT_PROVINCE"].items()
        for old in olds
        if old in old_province_key
    }
    old_communes: dict[str, _OldCommune] = {}
    for r in old_rows:
        code = _norm_code(r["wardCode"], 5)
        if code is None:  # island districts with no communes (e.g. Côn Đảo)
            continue
        old_communes[code] = _OldCommune(
            code=code,
            name=_clean_name(r["ward"]),
            district_code=_norm_code(r["districtCode"], 3) or "",
            district_name=_clean_name(r["district"]),
            province_code=_norm_code(r["provinceCode"], 2) or "",
            province_name=_clean_name(r["province"]),
            key=f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey']}",
        )
    return _Legacy(old_communes=old_communes, targets=targets, provinces=provinces_map)


def _resolve_target(target: _Target | None) -> tuple[Commune | None, tuple[Commune, ...], bool]:
    """(default commune, all candidates default first, split) for a conversion target."""
    if target is None:
        return None, (), False
    found = [commune(code) for code in target.candidates if code is not None]
    candidates = tuple(c for c in found if c is not None)
    default_code = target.candidates[0] if target.candidates else None
    default = commune(default_code) if default_code else None
    return default, candidates, target.split


def convert_legacy_province(old_code: str) -> Province | None:
    """The current province that absorbed one of the 63 pre-2025 provinces
    (74 Bình Dương → 79 TP Hồ Chí Minh); ``None`` for a code that never existed."""
    norm = _norm_code(old_code, 2)
    new_code = _legacy().provinces.get(norm or "")
    return province(new_code) if new_code else None


def convert_legacy_commune(old_code: str) -> LegacyConversion | None:
    """Convert a pre-2025 five-digit commune code to its current commune.

    Returns ``None`` when the code is not in the legacy list (a typo or a code
    dissolved before the list's date) — callers treat that as invalid input. For a known
    code the result is always returned; ``result.commune is None`` marks the rare case the
    conversion tables cannot be resolved to the GSO list.
    """
    norm = _norm_code(old_code, 5)
    legacy = _legacy()
    old = legacy.old_communes.get(norm or "")
    if old is None:
        return None
    target = legacy.targets.get(old.key)
    new_code = target.province_code if target else legacy.provinces.get(old.province_code)
    new_province = province(new_code or "")
    if new_province is None:  # pragma: no cover - every legacy province maps
        return None
    default, candidates, split = _resolve_target(target)
    return LegacyConversion(
        old_code=old.code,
        old_name=old.name,
        old_district_code=old.district_code,
        old_district_name=old.district_name,
        old_province_code=old.province_code,
        old_province_name=old.province_name,
        province=new_province,
        commune=default,
        split=split,
        candidates=candidates,
    )


_IMPORT_LOCK = threading.Lock()


@cache
def _legacy_parser() -> Callable[..., Any]:
    """Import the package's offline legacy parser once, silencing any console output."""
    with (
        _IMPORT_LOCK,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        from vietnamadminunits.parser import ParseMode, parse_address

    def parse(text: str) -> Any:
        return parse_address(text, mode=ParseMode.LEGACY, keep_street=True, level=3)

    return parse


def convert_address(text: str) -> AddressConversion | None:
    """Convert a legacy free-text address ("ward, district, province") to current units.

    Follows ``vietnamadminunits.convert_address`` (its legacy parser and conversion
    tables) but never geocodes: for a divided old commune the package would send the
    address to ArcGIS, which leaks patient addresses and needs the network. Instead the
    default new commune is chosen and every candidate is returned. ``None`` when no
    province is recognised.
    """
    if not text or not text.strip():
        return None
    old = _legacy_parser()(text)
    new_province = convert_legacy_province(old.province_code or "")
    if new_province is None:
        return None
    target: _Target | None = None
    if old.district_key:
        key = f"{old.province_key}_{old.district_key}_{old.ward_key or ''}"
        target = _legacy().targets.get(key)
    default, candidates, split = _resolve_target(target)
    return AddressConversion(
        text=text,
        province=new_province,
        commune=default,
        split=split,
        candidates=candidates,
        street=old.street or None,
        old_province_name=old.province or None,
        old_district_name=old.district or None,
        old_commune_name=old.ward or None,
        old_commune_code=_norm_code(old.ward_code, 5),
    )


@dataclass(frozen=True, slots=True)
class CommuneGeo:
    """A commune's reference point and area (vietnamadminunits, GSO-based)."""

    latitude: float
    longitude: float
    area_km2: float


@cache
def _geo() -> dict[str, CommuneGeo]:
    resolve = _resolver()
    table: dict[str, CommuneGeo] = {}
    for row in _rows("SELECT provinceCode, ward, wardLat, wardLon, wardAreaKm2 FROM admin_units"):
        code = resolve(_norm_code(row["provinceCode"], 2) or "", row["ward"])
        if code is not None and row["wardLat"] is not None:
            table[code] = CommuneGeo(row["wardLat"], row["wardLon"], row["wardAreaKm2"] or 0.0)
    return table


def commune_geo(code: str) -> CommuneGeo | None:
    """Where a current commune lies, for maps, facility positions and ambulance routing."""
    normalised = _norm_code(code, 5)
    return _geo().get(normalised) if normalised else None


def origin_province(commune_code: str) -> str | None:
    """The old (pre-2025) province code of the commune whose code a current commune reuses.

    Codes issued before the merger (facility codes, BHYT card prefixes) carry it.
    """
    normalised = _norm_code(commune_code, 5)
    old = _legacy().old_communes.get(normalised) if normalised else None
    return old.province_code if old else None


@cache
def _old_province_names() -> dict[str, str]:
    return {c.province_code: c.province_name for c in _legacy().old_communes.values()}


def legacy_province_name(old_code: str) -> str | None:
    """The name of one of the 63 provinces before the 2025 merger, e.g. "74" → Bình Dương."""
    normalised = _norm_code(old_code, 2)
    return _old_province_names().get(normalised) if normalised else None


@dataclass(frozen=True, slots=True)
class LegacyCommune:
    """A commune as it was coded before 1 July 2025 (three levels)."""

    code: str
    name: str
    district_code: str
    district_name: str
    province_code: str
    province_name: str


@cache
def _predecessors() -> dict[str, tuple[LegacyCommune, ...]]:
    legacy = _legacy()
    found: dict[str, list[LegacyCommune]] = {}
    for old in legacy.old_communes.values():
        target = legacy.targets.get(old.key)
        if target is None or not target.candidates or target.candidates[0] is None:
            continue
        found.setdefault(target.candidates[0], []).append(
            LegacyCommune(
                old.code,
                old.name,
                old.district_code,
                old.district_name,
                old.province_code,
                old.province_name,
            )
        )
    return {code: tuple(sorted(olds, key=lambda o: o.code)) for code, olds in found.items()}


def predecessors(commune_code: str) -> tuple[LegacyCommune, ...]:
    """The old communes whose territory (by default) became this current commune."""
    normalised = _norm_code(commune_code, 5)
    return _predecessors().get(normalised, ()) if normalised else ()
