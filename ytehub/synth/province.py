"""Generate a whole synthetic province: people, facilities, a period of care in the national
formats, vaccinations, 115 calls, the population-register extract, and the ground truth.

Streams people household by household; rendered episodes wait in an on-disk spool (SQLite)
until every facility-day file can be written, so memory stays bounded whatever the size.
The same configuration always gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import pickle
import random
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

import orjson

from ytehub.core import units
from ytehub.formats import qd4750
from ytehub.synth.care import CareModel, plan_outbreaks
from ytehub.synth.defects import DefectRates, IdentityFactory, residence_address
from ytehub.synth.emergency import emergency_calls, write_calls_csv
from ytehub.synth.facilities import Workforce, generate_facilities
from ytehub.synth.immunization import (
    commune_profiles,
    immunization_bundle,
    immunization_history,
    write_vaccinations_csv,
)
from ytehub.synth.model import Episode, Facility, PatientIdentity, Person
from ytehub.synth.people import PopulationConfig, generate_people

LAYOUT_VERSION = 1
CHILD_AGE_LIMIT = 6  # vaccination histories for children under this age at the period's end


@dataclass(frozen=True, slots=True)
class SynthConfig:
    people: int = 20_000
    province_code: str = "79"
    seed: int = 1
    start: date = date(2025, 7, 1)
    days: int = 365
    defects: DefectRates = field(default_factory=DefectRates)
    twin_rate: float = 0.01
    common_name_boost: float = 0.0
    outbreaks: bool = True

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)


@dataclass(slots=True)
class SynthSummary:
    people: int = 0
    births: int = 0
    deaths: int = 0
    households: int = 0
    facilities: int = 0
    practitioners: int = 0
    episodes: int = 0
    table_rows: int = 0
    source_records: int = 0
    facility_files: int = 0
    checkin_files: int = 0
    vaccinations: int = 0
    children_vaccinated: int = 0
    emergency_calls: int = 0
    outbreaks: int = 0
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 (small files)


class _Spool:
    """Rendered episodes keyed by (facility, day), kept on disk until the files are written."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "spool.sqlite"
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE e (facility TEXT, day TEXT, seq INTEGER, kind TEXT, body BLOB)"
        )
        self.pending: list[tuple[str, str, int, str, bytes]] = []
        self.seq = 0

    def add(self, facility: str, day: str, kind: str, body: bytes) -> None:
        self.seq += 1
        self.pending.append((facility, day, self.seq, kind, body))
        if len(self.pending) >= 5_000:
            self.flush()

    def flush(self) -> None:
        self.db.executemany("INSERT INTO e VALUES (?, ?, ?, ?, ?)", self.pending)
        self.pending.clear()

    def groups(self, kind: str) -> Iterator[tuple[str, str, list[bytes]]]:
        self.flush()
        self.db.execute("CREATE INDEX IF NOT EXISTS e_order ON e (kind, facility, day, seq)")
        current: tuple[str, str] | None = None
        bodies: list[bytes] = []
        for facility, day, body in self.db.execute(
            "SELECT facility, day, body FROM e WHERE kind = ? ORDER BY facility, day, seq", (kind,)
        ):
            if (facility, day) != current:
                if current is not None:
                    yield current[0], current[1], bodies
                current, bodies = (facility, day), []
            bodies.append(body)
        if current is not None:
            yield current[0], current[1], bodies

    def close(self) -> None:
        self.db.close()


def _person_rng(seed: int, person_id: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}|care|{person_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _households(people: Iterable[Person]) -> Iterator[list[Person]]:
    batch: list[Person] = []
    for person in people:
        if batch and person.household_id != batch[0].household_id:
            yield batch
            batch = []
        batch.append(person)
    if batch:
        yield batch


PERSON_FIELDS = [
    "person_id",
    "household_id",
    "family_name",
    "middle_name",
    "given_name",
    "sex",
    "birth_date",
    "birth_time",
    "birth_province_code",
    "province_code",
    "commune_code",
    "street_address",
    "cccd",
    "cmnd",
    "bhyt_card",
    "bhyt_registered_facility",
    "bhxh_number",
    "phone",
    "ethnicity_code",
    "occupation_code",
    "nationality_code",
    "death_date",
    "mother_id",
    "twin_of",
]
REGISTER_FIELDS = [
    "so_dinh_danh",
    "ho_ten",
    "ngay_sinh",
    "gioi_tinh",
    "dia_chi_thuong_tru",
    "ma_xa",
    "ma_tinh",
]
SOURCE_FIELDS = ["facility_code", "ma_bn", "person_id", "defects"]
EPISODE_FIELDS = [
    "ma_lk",
    "facility_code",
    "ma_bn",
    "person_id",
    "admitted",
    "discharged",
    "ma_benh_chinh",
    "outbreak_id",
]


def _csv(stack: ExitStack, path: Path, header: list[str]) -> csv.writer:  # type: ignore[valid-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: TextIO = stack.enter_context(path.open("w", encoding="utf-8", newline=""))
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(header)
    return writer


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def generate_province(
    config: SynthConfig,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> SynthSummary:
    """Write the documented layout (docs/synthetic-province.md) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    summary = SynthSummary()
    province = units.province(config.province_code)
    if province is None:
        raise ValueError(f"unknown province code {config.province_code}")
    workforce = generate_facilities(config.province_code, config.seed)
    facilities = {f.code: f for f in workforce.facilities}
    summary.facilities, summary.practitioners = (
        len(workforce.facilities),
        len(workforce.practitioners),
    )
    _write_facilities(out, workforce)

    rng = random.Random(f"province:{config.seed}")
    communes = [c.code for c in units.communes(config.province_code)]
    outbreaks = (
        plan_outbreaks(config.province_code, communes, config.start, config.days, rng)
        if config.outbreaks
        else []
    )
    summary.outbreaks = len(outbreaks)
    care = CareModel(
        workforce.facilities,
        workforce.practitioners,
        config.start,
        config.days,
        outbreaks,
        commune_population=config.people / max(len(communes), 1),
    )
    identities = IdentityFactory(config.seed, config.defects, config.start)
    profiles = commune_profiles(config.province_code, config.seed)
    population = PopulationConfig(
        people=config.people,
        province_code=config.province_code,
        seed=config.seed,
        start=config.start,
        days=config.days,
        twin_rate=config.twin_rate,
        common_name_boost=config.common_name_boost,
    )

    with tempfile.TemporaryDirectory(prefix="ytehub-synth-") as scratch, ExitStack() as stack:
        spool = _Spool(Path(scratch))
        stack.callback(spool.close)
        truth = out / "truth"
        persons_csv = _csv(stack, truth / "persons.csv", PERSON_FIELDS)
        sources_csv = _csv(stack, truth / "source-records.csv", SOURCE_FIELDS)
        episodes_csv = _csv(stack, truth / "episodes.csv", EPISODE_FIELDS)
        register_csv = _csv(stack, out / "register" / "population-register.csv", REGISTER_FIELDS)
        vaccination_handle = stack.enter_context(_open(out / "immunization" / "vaccinations.csv"))
        write_vaccinations_csv([], vaccination_handle, header=True)
        bundles = stack.enter_context(_open(out / "immunization" / "bundles.ndjson", binary=True))
        vaccination_records: list[Any] = []
        until = config.end
        child_cutoff = date(until.year - CHILD_AGE_LIMIT, until.month, min(until.day, 28))

        for household in _households(generate_people(population, workforce.facilities)):
            summary.households += 1
            for person in household:
                summary.people += 1
                summary.births += person.birth_date >= config.start
                summary.deaths += person.death_date is not None
                persons_csv.writerow([_cell(getattr(person, name)) for name in PERSON_FIELDS])
                if person.death_date is None or person.death_date > config.start:
                    register_csv.writerow(_register_row(person))
                seen: dict[str, list[PatientIdentity]] = {}
                person_rng = _person_rng(config.seed, person.person_id)

                def identity_for(
                    facility: Facility,
                    _p: Person = person,
                    _seen: dict[str, list[PatientIdentity]] = seen,
                    _rng: random.Random = person_rng,
                ) -> PatientIdentity:
                    known = _seen.get(facility.code)
                    if known is None:
                        known = identities.identities(_p, facility)
                        _seen[facility.code] = known
                        for identity in known:
                            sources_csv.writerow(
                                [
                                    identity.facility_code,
                                    identity.ma_bn,
                                    identity.person_id,
                                    ";".join(identity.defects),
                                ]
                            )
                    return known[0] if len(known) == 1 else _rng.choice(known)

                for episode in care.episodes_for(
                    person,
                    identity_for,
                    person_rng,
                    children=[c for c in household if c.mother_id == person.person_id],
                ):
                    _spool_episode(spool, episode, summary)
                    xml1 = episode.tables["XML1"][0]
                    episodes_csv.writerow(
                        [
                            episode.ma_lk,
                            episode.facility_code,
                            xml1.get("MA_BN", ""),
                            episode.person_id,
                            episode.admitted.isoformat(),
                            episode.discharged.isoformat(),
                            xml1.get("MA_BENH_CHINH", ""),
                            episode.outbreak_id or "",
                        ]
                    )
                summary.source_records += sum(len(v) for v in seen.values())
                if person.birth_date > child_cutoff:
                    mother = next((m for m in household if m.person_id == person.mother_id), None)
                    history = immunization_history(
                        person,
                        until,
                        person_rng,
                        profiles[person.commune_code],
                        workforce.facilities,
                        mother_name=mother.full_name if mother else "",
                    )
                    if history:
                        summary.children_vaccinated += 1
                        summary.vaccinations += len(history)
                        vaccination_records.extend(history)
                        bundles.write(orjson.dumps(immunization_bundle(person, history)) + b"\n")
                        if len(vaccination_records) >= 10_000:
                            write_vaccinations_csv(
                                vaccination_records, vaccination_handle, header=False
                            )
                            vaccination_records.clear()
            if progress is not None:
                progress(summary.people)
        write_vaccinations_csv(vaccination_records, vaccination_handle, header=False)

        summary.facility_files = _write_facility_files(spool, out / "qd4750", facilities)
        summary.checkin_files = _write_checkin_files(spool, out / "qd4750-checkin")

    with _open(out / "emergency" / "calls-115.csv") as handle:
        calls = list(
            emergency_calls(
                province_code=config.province_code,
                start=config.start,
                days=config.days,
                population=config.people,
                seed=config.seed,
            )
        )
        write_calls_csv(calls, handle)
        summary.emergency_calls = len(calls)
    _write_outbreaks(out / "truth" / "outbreaks.csv", outbreaks)
    _write_manifest(out, config, summary)
    return summary


def _open(path: Path, binary: bool = False) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    if binary:
        return path.open("wb")
    return path.open("w", encoding="utf-8", newline="")


def _register_row(person: Person) -> list[str]:
    """What the national population database answers for a person (the truth, no defects)."""
    address = residence_address(person)
    return [
        person.cccd or "",
        person.full_name,
        person.birth_date.isoformat(),
        "1" if person.sex == "male" else "2",
        address,
        person.commune_code,
        person.province_code,
    ]


def _spool_episode(spool: _Spool, episode: Episode, summary: SynthSummary) -> None:
    rendered = {
        table: qd4750.render_table(table, rows) for table, rows in episode.tables.items() if rows
    }
    day = f"{episode.discharged:%Y%m%d}"
    spool.add(episode.facility_code, day, "hoso", pickle.dumps(rendered, protocol=5))
    checkin = _checkin_row(episode.tables["XML1"][0])
    spool.add(
        episode.facility_code,
        f"{episode.admitted:%Y%m%d}",
        "checkin",
        pickle.dumps(checkin, protocol=5),
    )
    summary.episodes += 1
    summary.table_rows += episode.row_count() + 1


_CHECKIN_NAMES = frozenset(qd4750.TABLES["XML0"].names)


def _checkin_row(xml1: dict[str, str]) -> dict[str, str]:
    """The check-in (XML0) notice sent when the visit's first cost arises: its elements come
    from the episode's summary."""
    return {name: value for name, value in xml1.items() if name in _CHECKIN_NAMES}


def _write_facility_files(spool: _Spool, root: Path, facilities: dict[str, Facility]) -> int:
    written = 0
    for facility_code, day, bodies in spool.groups("hoso"):
        episodes = [pickle.loads(body) for body in bodies]
        created = date(int(day[:4]), int(day[4:6]), int(day[6:]))
        path = root / facility_code / f"{facility_code}_{day}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(qd4750.render_envelope(facility_code, created, episodes))
        written += 1
    return written


def _write_checkin_files(spool: _Spool, root: Path) -> int:
    written = 0
    for facility_code, day, bodies in spool.groups("checkin"):
        rows = [pickle.loads(body) for body in bodies]
        for stt, row in enumerate(rows, start=1):
            row["STT"] = str(stt)
        path = root / facility_code / f"{facility_code}_{day}_checkin.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(qd4750.render_checkin(rows))
        written += 1
    return written


def _write_facilities(out: Path, workforce: Workforce) -> None:
    with ExitStack() as stack:
        facilities = _csv(
            stack,
            out / "facilities.csv",
            [
                "code",
                "name",
                "level",
                "province_code",
                "commune_code",
                "latitude",
                "longitude",
                "beds",
            ],
        )
        for f in workforce.facilities:
            facilities.writerow(
                [
                    f.code,
                    f.name,
                    f.level,
                    f.province_code,
                    f.commune_code,
                    f.latitude,
                    f.longitude,
                    f.beds,
                ]
            )
        practitioners = _csv(
            stack,
            out / "practitioners.csv",
            [
                "practitioner_id",
                "full_name",
                "sex",
                "facility_code",
                "certificate_number",
                "department_code",
                "bhxh_number",
            ],
        )
        for p in workforce.practitioners:
            practitioners.writerow(
                [
                    p.practitioner_id,
                    p.full_name,
                    p.sex,
                    p.facility_code,
                    p.certificate_number,
                    p.department_code,
                    p.bhxh_number,
                ]
            )


def _write_outbreaks(path: Path, outbreaks: list[Any]) -> None:
    with ExitStack() as stack:
        writer = _csv(
            stack, path, ["outbreak_id", "icd10", "communes", "start", "end", "extra_cases"]
        )
        for o in outbreaks:
            writer.writerow(
                [
                    o.outbreak_id,
                    o.icd10,
                    ";".join(o.communes),
                    o.start.isoformat(),
                    o.end.isoformat(),
                    o.extra_cases,
                ]
            )


def _write_manifest(out: Path, config: SynthConfig, summary: SynthSummary) -> None:
    """Configuration and counts; no wall-clock time, so the same seed gives the same bytes."""
    for name in ("facilities.csv", "practitioners.csv", "truth/outbreaks.csv"):
        summary.files[name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    manifest = {
        "layout_version": LAYOUT_VERSION,
        "generator": "ytehub.synth",
        "config": {**asdict(config), "start": config.start.isoformat()},
        "counts": {k: v for k, v in asdict(summary).items() if k != "files"},
        "sha256": summary.files,
    }
    (out / "manifest.json").write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
