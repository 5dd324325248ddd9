"""Verification (xác thực) of golden persons against the national population register (Cơ sở
dữ liệu quốc gia về dân cư).

A person's CCCD is looked up in the register through an adapter (``PopulationRegister``); the
register's name, birth date and sex are compared with the golden record and the outcome is
stored on the person: ``verified``, ``mismatch`` (with the fields that disagree) or
``not_found``. The shipped adapter reads an extract loaded into ``registry_population`` with
``load_extract``; a province with access to the national database's API plugs in its own.
See docs/registry-verification.md.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ytehub.core import units
from ytehub.core.db import Database
from ytehub.registry.models import PopulationEntry, RegistryPerson
from ytehub.registry.normalize import current_commune, fold_name, parse_birth, parse_sex

VERIFIED = "verified"
MISMATCH = "mismatch"
NOT_FOUND = "not_found"
STATUSES = (VERIFIED, MISMATCH, NOT_FOUND)
# The fields whose disagreement makes a mismatch, in the order they are reported.
COMPARED_FIELDS = ("name", "birth_date", "sex")

EXTRACT_SOURCE = "population-extract"
# Columns an extract must have; the others are read when present.
REQUIRED_COLUMNS = ("so_dinh_danh", "ho_ten", "ngay_sinh", "gioi_tinh")
OPTIONAL_COLUMNS = ("dia_chi_thuong_tru", "ma_xa", "ma_tinh")
_ALIASES = {"dia_chi": "dia_chi_thuong_tru"}
_SKIPPED_ROWS_KEPT = 20


# --------------------------------------------------------------------------------------
# The register adapter
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    """What the register says about one CCCD, in our terms, whatever the adapter's source."""

    cccd: str  # số định danh cá nhân, 12 digits
    full_name: str  # họ tên, as written (with diacritics)
    birth_date: str | None = None  # ISO ``YYYY-MM-DD`` (or ``YYYY``/``YYYY-MM`` when partial)
    sex: str | None = None  # "male", "female"
    commune_code: str | None = None  # 2025 five-digit code of the permanent residence
    province_code: str | None = None
    address: str | None = None  # địa chỉ thường trú
    source: str | None = None  # which extract or service answered

    @property
    def name_folded(self) -> str | None:
        return fold_name(self.full_name)


class PopulationRegister(Protocol):
    """The national population database as verification sees it.

    ``lookup`` returns None only when the register has no such CCCD; it must raise when the
    register cannot answer (network, authorisation), so an outage never reads as not_found.
    ``name`` is stored on each person as ``verification_source``.
    """

    name: str

    def lookup(self, cccd: str) -> RegisterEntry | None: ...


@runtime_checkable
class BulkPopulationRegister(Protocol):
    """A register that can answer many CCCDs at once (used per batch when offered)."""

    name: str

    def lookup(self, cccd: str) -> RegisterEntry | None: ...

    def lookup_many(self, cccds: Collection[str]) -> dict[str, RegisterEntry]: ...


class ExtractRegister:
    """The shipped adapter: the extract loaded into ``registry_population``."""

    name = EXTRACT_SOURCE

    def __init__(self, session: Session) -> None:
        self.session = session

    def lookup(self, cccd: str) -> RegisterEntry | None:
        row = self.session.get(PopulationEntry, cccd)
        return _entry(row) if row is not None else None

    def lookup_many(self, cccds: Collection[str]) -> dict[str, RegisterEntry]:
        """One query for the whole batch instead of one per person."""
        wanted = sorted(set(cccds))
        if not wanted:
            return {}
        rows = self.session.scalars(
            select(PopulationEntry).where(PopulationEntry.so_dinh_danh.in_(wanted))
        )
        return {row.so_dinh_danh: _entry(row) for row in rows}


def _entry(row: PopulationEntry) -> RegisterEntry:
    sex = {"1": "male", "2": "female"}.get(row.gioi_tinh or "")
    return RegisterEntry(
        cccd=row.so_dinh_danh,
        full_name=row.ho_ten,
        birth_date=row.ngay_sinh,
        sex=sex,
        commune_code=row.ma_xa,
        province_code=row.ma_tinh,
        address=row.dia_chi,
        source=row.source,
    )


# --------------------------------------------------------------------------------------
# Loading an extract
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtractLoad:
    """What ``load_extract`` did: rows stored, rows skipped for a malformed identity number
    (data-row numbers, 1 = the first row after the header; the first few only)."""

    source: str
    loaded: int
    skipped: int
    skipped_rows: tuple[int, ...] = ()


def load_extract(
    db: Database,
    path: Path | str,
    source: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch: int = 5000,
) -> ExtractLoad:
    """Load a register extract (CSV or Parquet) into ``registry_population``.

    Streams ``batch`` rows per transaction, so memory stays bounded whatever the file's size;
    a row whose identity number is already stored replaces it (a newer extract wins).
    ``on_progress`` gets the number of data rows read so far, skipped ones included.
    """
    path = Path(path)
    label = (source or path.name)[:128]
    loaded = skipped = read = reported = 0
    skipped_rows: list[int] = []
    with ExitStack() as stack:
        header, rows = (_parquet_rows if _is_parquet(path) else _csv_rows)(path, stack, batch)
        index = _column_index(header)
        pending: dict[str, dict[str, Any]] = {}
        for values in rows:
            read += 1
            row = _population_row(values, index)
            if row is None:
                skipped += 1
                if len(skipped_rows) < _SKIPPED_ROWS_KEPT:
                    skipped_rows.append(read)
            else:
                pending[row["so_dinh_danh"]] = row  # a repeat within the batch: the last wins
                loaded += 1
            if len(pending) >= batch:
                _store(db, pending, label)
                pending = {}
                if on_progress:
                    on_progress(read)
                    reported = read
        if pending:
            _store(db, pending, label)
    if on_progress and (read != reported or not read):
        on_progress(read)
    return ExtractLoad(label, loaded, skipped, tuple(skipped_rows))


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".parq"):
        return True
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def _csv_rows(
    path: Path, stack: ExitStack, batch: int
) -> tuple[list[str], Iterator[Sequence[Any]]]:
    handle = stack.enter_context(path.open(encoding="utf-8-sig", newline=""))
    reader = csv.reader(handle)
    return next(reader, []), reader


def _parquet_rows(
    path: Path, stack: ExitStack, batch: int
) -> tuple[list[str], Iterator[Sequence[Any]]]:
    connection = duckdb.connect()
    stack.callback(connection.close)
    result = connection.execute("select * from read_parquet(?)", [str(path)])
    header = [column[0] for column in result.description or []]

    def rows() -> Iterator[Sequence[Any]]:
        while chunk := result.fetchmany(batch):
            yield from chunk

    return header, rows()


def _column_index(header: Sequence[str]) -> dict[str, int]:
    """Position of each known column; a clear error naming what a foreign file lacks."""
    index: dict[str, int] = {}
    for position, raw in enumerate(header):
        name = str(raw).strip().lower()
        index.setdefault(_ALIASES.get(name, name), position)
    missing = [column for column in REQUIRED_COLUMNS if column not in index]
    if missing:
        raise ValueError(
            "population-register extract lacks column(s) "
            + ", ".join(missing)
            + f" (needs {', '.join(REQUIRED_COLUMNS)}; optional {', '.join(OPTIONAL_COLUMNS)})"
        )
    return index


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):  # Parquet DATE / TIMESTAMP columns
        return value.isoformat()[:10]
    return str(value).strip()


def _code(value: Any, width: int) -> str | None:
    """A numeric code as text of ``width`` digits (Parquet may store codes as integers)."""
    text = str(value) if isinstance(value, int) else _text(value)
    if not text.isascii() or not text.isdigit() or len(text) > width:
        return None
    return text.zfill(width)


def _iso(year: int | None, month: int | None, day: int | None) -> str | None:
    if year is None:
        return None
    parts = [f"{year:04d}"]
    if month is not None:
        parts.append(f"{month:02d}")
        if day is not None:
            parts.append(f"{day:02d}")
    return "-".join(parts)


def _population_row(values: Sequence[Any], index: Mapping[str, int]) -> dict[str, Any] | None:
    """A table row from one extract row; None when the identity number is not 12 digits."""

    def cell(column: str) -> Any:
        position = index.get(column)
        return values[position] if position is not None and position < len(values) else None

    raw_id = cell("so_dinh_danh")
    so_dinh_danh = _text(raw_id)
    if isinstance(raw_id, int) and 10 <= len(so_dinh_danh) < 12:
        # An integer column drops the leading zeros of a CCCD (province codes 001 to 096).
        so_dinh_danh = so_dinh_danh.zfill(12)
    if len(so_dinh_danh) != 12 or not (so_dinh_danh.isascii() and so_dinh_danh.isdigit()):
        return None
    ho_ten = " ".join(_text(cell("ho_ten")).split())[:128]
    sex = parse_sex(_text(cell("gioi_tinh")))
    raw_commune = _code(cell("ma_xa"), 5)
    commune = current_commune(raw_commune) or raw_commune
    province = _code(cell("ma_tinh"), 2)
    if province is None and commune is not None:
        unit = units.commune(commune)
        province = unit.province_code if unit else None
    return {
        "so_dinh_danh": so_dinh_danh,
        "ho_ten": ho_ten,
        "name_folded": (fold_name(ho_ten) or "")[:128],
        "ngay_sinh": _iso(*parse_birth(_text(cell("ngay_sinh")))),
        "gioi_tinh": {"male": "1", "female": "2"}.get(sex or ""),
        "dia_chi": _text(cell("dia_chi_thuong_tru"))[:512] or None,
        "ma_xa": commune,
        "ma_tinh": province,
    }


def _store(db: Database, rows: Mapping[str, dict[str, Any]], source: str) -> None:
    """Replace the batch's identity numbers: delete then insert, one transaction."""
    now = datetime.now(UTC)
    with db.session() as session:
        session.execute(delete(PopulationEntry).where(PopulationEntry.so_dinh_danh.in_(list(rows))))
        session.execute(
            insert(PopulationEntry),
            [{**row, "source": source, "loaded_at": now} for row in rows.values()],
        )


# --------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome for one person: a status, the fields that disagree, and what to show."""

    status: str
    mismatched: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def compare_with_register(golden: Mapping[str, Any], entry: RegisterEntry | None) -> Verification:
    """Compare a golden record (``SourceRecord.plain()`` keys) with the register's answer.

    Unknown on either side is never a disagreement. Name: equal after folding (no diacritics,
    case or spacing). Birth: the year must match; month and day count when both sides know
    them. Sex: when both know it. A different commune is reported but is no mismatch: people
    move, and the register lags behind.
    """
    if not golden.get("cccd"):
        return Verification(NOT_FOUND, (), {"mismatched": [], "reason": "no_cccd"})
    if entry is None:
        return Verification(NOT_FOUND, (), {"mismatched": [], "reason": "not_in_register"})
    checked: list[str] = []
    mismatched: list[str] = []
    differences: dict[str, dict[str, Any]] = {}

    ours_name = fold_name(golden.get("name")) or fold_name(golden.get("display_name"))
    theirs_name = entry.name_folded
    if ours_name and theirs_name:
        checked.append("name")
        if ours_name != theirs_name:
            mismatched.append("name")
            written = golden.get("display_name") or ours_name
            differences["name"] = {"registry": written, "register": entry.full_name}

    year, month, day = (_int(golden.get(k)) for k in ("birth_year", "birth_month", "birth_day"))
    r_year, r_month, r_day = parse_birth(entry.birth_date)
    if year is not None and r_year is not None:
        checked.append("birth_date")
        differs = year != r_year
        if month is not None and r_month is not None:
            differs = differs or month != r_month
            if day is not None and r_day is not None:
                differs = differs or day != r_day
        if differs:
            mismatched.append("birth_date")
            differences["birth_date"] = {
                "registry": _iso(year, month, day),
                "register": _iso(r_year, r_month, r_day),
            }

    sex = golden.get("sex") if golden.get("sex") in ("male", "female") else None
    if sex and entry.sex:
        checked.append("sex")
        if sex != entry.sex:
            mismatched.append("sex")
            differences["sex"] = {"registry": sex, "register": entry.sex}

    detail: dict[str, Any] = {"mismatched": mismatched, "checked": checked}
    if differences:
        detail["differences"] = differences
    commune = golden.get("commune")
    if commune and entry.commune_code and commune != entry.commune_code:
        detail["commune"] = {"registry": commune, "register": entry.commune_code}
    if entry.source:
        detail["register_source"] = entry.source
    return Verification(MISMATCH if mismatched else VERIFIED, tuple(mismatched), detail)


# --------------------------------------------------------------------------------------
# Verifying the registry
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class VerificationSummary:
    """Counts of one run: persons checked, per status, and how often each field disagreed."""

    source: str | None = None
    checked: int = 0
    verified: int = 0
    mismatch: int = 0
    not_found: int = 0
    mismatched_fields: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {VERIFIED: self.verified, MISMATCH: self.mismatch, NOT_FOUND: self.not_found}


RegisterFactory = Callable[[Session], PopulationRegister]


def verify_persons(
    db: Database,
    register_factory: RegisterFactory = ExtractRegister,
    on_progress: Callable[[int], None] | None = None,
    only_unchecked: bool = False,
    batch: int = 2000,
) -> VerificationSummary:
    """Check every active person against the register and store the outcome.

    ``batch`` persons per transaction, in id order, so a run can be stopped and resumed (with
    ``only_unchecked``) and never holds the database for long. ``register_factory`` is called
    with each batch's session (an API adapter may ignore it and reuse one client).
    ``on_progress`` gets the number of persons done so far.
    """
    summary = VerificationSummary()
    fields: Counter[str] = Counter()
    after = ""
    while True:
        with db.session() as session:
            query = (
                select(RegistryPerson.id, RegistryPerson.golden, RegistryPerson.cccd)
                .where(RegistryPerson.status == "active", RegistryPerson.id > after)
                .order_by(RegistryPerson.id)
                .limit(batch)
            )
            if only_unchecked:
                query = query.where(RegistryPerson.verification.is_(None))
            rows = session.execute(query).all()
            if not rows:
                break
            register = register_factory(session)
            summary.source = register.name
            goldens = [_with_cccd(row.golden, row.cccd) for row in rows]
            entries = _lookup(register, [g["cccd"] for g in goldens if g.get("cccd")])
            now = datetime.now(UTC)
            changes = []
            for row, golden in zip(rows, goldens, strict=True):
                outcome = compare_with_register(golden, entries.get(golden.get("cccd") or ""))
                setattr(summary, outcome.status, getattr(summary, outcome.status) + 1)
                fields.update(outcome.mismatched)
                changes.append(
                    {
                        "id": row.id,
                        "verification": outcome.status,
                        "verified_at": now,
                        "verification_source": register.name[:64],
                        "verification_detail": outcome.detail,
                    }
                )
            session.execute(update(RegistryPerson), changes)
        summary.checked += len(rows)
        after = rows[-1].id
        if on_progress:
            on_progress(summary.checked)
    summary.mismatched_fields = {name: fields[name] for name in COMPARED_FIELDS if fields[name]}
    return summary


def _with_cccd(golden: Mapping[str, Any] | None, column: str | None) -> dict[str, Any]:
    """The golden record, with the indexed CCCD column standing in when the JSON lacks it."""
    merged = dict(golden or {})
    if not merged.get("cccd") and column:
        merged["cccd"] = column
    return merged


def _lookup(register: PopulationRegister, cccds: list[str]) -> dict[str, RegisterEntry]:
    if isinstance(register, BulkPopulationRegister):
        return register.lookup_many(cccds)
    found = {}
    for cccd in dict.fromkeys(cccds):
        entry = register.lookup(cccd)
        if entry is not None:
            found[cccd] = entry
    return found


# --------------------------------------------------------------------------------------
# Coverage by commune
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommuneShare:
    """Active persons of one commune by verification status (``None`` code: no commune)."""

    commune_code: str | None
    commune_name: str | None
    total: int
    verified: int
    mismatch: int
    not_found: int
    unchecked: int
    share_verified: float  # verified / total


def verified_share_by_commune(
    session: Session, province_code: str | None = None
) -> list[CommuneShare]:
    """How much of each commune's registry the register confirms, by commune code.

    With ``province_code`` only that province's communes; without it, persons with no commune
    come last under a ``None`` code.
    """
    query = (
        select(RegistryPerson.commune_code, RegistryPerson.verification, func.count())
        .where(RegistryPerson.status == "active")
        .group_by(RegistryPerson.commune_code, RegistryPerson.verification)
    )
    if province_code is not None:
        codes = [commune.code for commune in units.communes(province_code)]
        query = query.where(RegistryPerson.commune_code.in_(codes))
    counts: dict[str | None, Counter[str]] = {}
    for code, status, number in session.execute(query):
        key = status if status in STATUSES else "unchecked"
        counts.setdefault(code, Counter())[key] += number
    shares = []
    for code in sorted(counts, key=lambda c: (c is None, c or "")):
        tally = counts[code]
        total = sum(tally.values())
        unit = units.commune(code) if code else None
        shares.append(
            CommuneShare(
                commune_code=code,
                commune_name=unit.name if unit else None,
                total=total,
                verified=tally[VERIFIED],
                mismatch=tally[MISMATCH],
                not_found=tally[NOT_FOUND],
                unchecked=tally["unchecked"],
                share_verified=tally[VERIFIED] / total if total else 0.0,
            )
        )
    return shares
