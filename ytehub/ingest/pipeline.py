"""From a facility's files to the shared health record: read safely, validate, resolve each
patient in the client registry, map to FHIR, store — idempotent and resumable. Reading,
validating and mapping need no database (``ytehub.ingest.prepare``); this module stores.

- A file is known by its SHA-256: the same bytes again store nothing.
- An episode (facility, MA_LK) is stored whole or not at all: what can refuse it is checked
  before its first write, and any other failure rolls the batch back. Its rows' hash is kept,
  so an identical episode in another file is "unchanged" and a corrected one replaces its
  resources as new versions (resources it no longer has are deleted).
- Episodes are committed in batches; a process killed mid-file loses nothing committed, and a
  re-run skips what was stored (by hash) and finishes the rest. The file is marked done last.
- Every stored episode emits an outbox event in the same transaction, and is audited.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ytehub.core import audit, collector, deferred
from ytehub.core.db import Database
from ytehub.core.errors import DomainError, Text
from ytehub.ingest.mapping import prefix_of
from ytehub.ingest.models import IngestEpisode, IngestFile, OutboxEvent
from ytehub.ingest.prepare import (
    MAX_FILE_BYTES,
    TOO_LARGE,
    PreparedEpisode,
    PreparedFile,
    now,
    prepare,
    prepare_to_send,
)
from ytehub.records.store import RecordStore, render
from ytehub.registry import service as registry
from ytehub.registry.fhir import patient_resource
from ytehub.registry.model import MatchModel

MAX_ZIP_MEMBER_BYTES = 200 * 1024 * 1024
MAX_ZIP_TOTAL_BYTES = 4 * 1024 * 1024 * 1024
MAX_ZIP_RATIO = 200  # a member expanding more than this is a bomb, not an export
EPISODES_PER_COMMIT = 500
# The tables a bulk run looks up for every file or episode. Their statistics are refreshed as
# the run grows them (batches 1, 2, 4, 8, …): PostgreSQL planned the registry's candidate query
# for the empty tables of the run's start, 35 times slower than needed.
LOOKED_UP_TABLES = (
    "ingest_files",
    "ingest_episodes",
    "registry_keys",
    "registry_sources",
    "registry_persons",
)


@dataclass(slots=True)
class FileOutcome:
    """What happened to one file."""

    name: str
    sha256: str
    status: str  # done, duplicate, rejected
    facility_code: str | None = None
    episodes: int = 0
    stored: int = 0
    replaced: int = 0
    unchanged: int = 0
    refused: int = 0
    errors: int = 0
    warnings: int = 0
    reason: Text | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, lang: str | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "status": self.status,
            "facility_code": self.facility_code,
            "episodes": self.episodes,
            "stored": self.stored,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "errors": self.errors,
            "warnings": self.warnings,
            "reason": self.reason.in_language(lang) if self.reason else None,
            "report": self.report,
        }


def rejected_file(name: str, data: bytes, reason: Text) -> FileOutcome:
    return FileOutcome(name, hashlib.sha256(data).hexdigest(), "rejected", reason=reason)


_FILES = IngestFile.__table__
_EPISODES = IngestEpisode.__table__
_REPLACE_EPISODE = update(_EPISODES).where(  # SET: the params
    _EPISODES.c.facility_code == bindparam("b_facility"),
    _EPISODES.c.ma_lk == bindparam("b_ma_lk"),
)
_FILE_STATUS = select(_FILES.c.status, _FILES.c.facility_code, _FILES.c.report).where(
    _FILES.c.sha256 == bindparam("sha")
)
_INSERT_FILE = insert(_FILES)
_UPDATE_FILE = update(_FILES).where(_FILES.c.sha256 == bindparam("b_sha"))  # SET: the params
_STORED = select(
    _EPISODES.c.ma_lk, _EPISODES.c.content_hash, _EPISODES.c.resources, _EPISODES.c.submissions
).where(
    _EPISODES.c.facility_code == bindparam("facility"),
    _EPISODES.c.ma_lk.in_(bindparam("keys", expanding=True)),
)


@dataclass(slots=True)
class StoredEpisode:
    """What is known of an episode already stored: enough to tell a resubmission."""

    content_hash: str
    resources: list[str]
    submissions: int


class _HeldEpisodes:
    """The batch's episode rows and outbox events, sent a statement per table before the
    commit (see ``ytehub.core.deferred``): a row each by the ORM cost more than the episode."""

    read_by: frozenset[type] = frozenset({IngestEpisode, OutboxEvent})

    def __init__(self) -> None:
        self.discard()

    def discard(self) -> None:
        self.new: list[dict[str, Any]] = []
        self.replaced: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def flush(self, session: Session) -> None:
        new, replaced, events = self.new, self.replaced, self.events
        self.discard()
        connection = session.connection()
        if new:
            connection.execute(insert(_EPISODES), new)
        if replaced:
            connection.execute(_REPLACE_EPISODE, replaced)
        if events:
            connection.execute(insert(OutboxEvent.__table__), events)


class Ingest:
    """One ingest run over a database: files in, outcomes out.

    Work is committed in batches of about ``EPISODES_PER_COMMIT`` episodes that may span many
    small files (a facility sends a file a day, often of one or two episodes), so the rows of a
    batch reach the database a statement per table and one commit serves them all. A file is
    marked done in the transaction of its last episode. Use as a context manager, or call
    :meth:`commit` after the last file.
    """

    def __init__(
        self,
        db: Database,
        channel: str = "cli",
        actor: str | None = None,
        facility_scope: str | None = None,
        on_episodes: Callable[[int], None] | None = None,
        bulk: bool = False,
    ) -> None:
        self.db = db
        self.bulk = bulk
        self._batches = 0
        self.channel = channel
        self.actor = actor
        self.facility_scope = facility_scope
        self.on_episodes = on_episodes
        self._session: Session | None = None
        self._held = 0  # episodes written in the open batch
        # Persons whose golden Patient must be (re)written before the batch commits, and
        # whether it is new: written once per batch, however many of their records arrived.
        self._patients: dict[str, bool] = {}
        # Episodes written in the open batch, which a query of the database cannot see yet.
        self._batch: dict[tuple[str, str], StoredEpisode] = {}
        # The row of the file being taken, until it is written: at its end, or as "processing"
        # when a batch commits before its end.
        self._open_file: dict[str, Any] | None = None
        with db.session() as session:
            self.model: MatchModel = registry.active_model(session)

    def __enter__(self) -> Ingest:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.rollback()

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.db.sessions()
        return self._session

    def commit(self) -> None:
        if self._session is not None:
            try:
                self._write_patients(self._session)
                if self._open_file is not None:  # a re-run finds it "processing", finishes it
                    self._session.connection().execute(_INSERT_FILE, self._open_file)
                    self._open_file = None
                self._session.commit()
            finally:
                self._session.close()
                self._session = None
            self._batches += 1
            if self.bulk and self._batches & (self._batches - 1) == 0:
                self.db.analyze(*LOOKED_UP_TABLES)  # after batches 1, 2, 4, 8, …
        self._held = 0
        self._patients.clear()
        self._batch.clear()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
            self._session.close()
            self._session = None
        self._held = 0
        self._patients.clear()
        self._batch.clear()
        self._open_file = None

    def _audit(self, action: str, **fields: Any) -> None:
        audit.defer(self.session, audit.AuditEntry(action=action, actor=self.actor, **fields))

    # --- one file -------------------------------------------------------------------------

    def file_now(self, name: str, data: bytes) -> FileOutcome:
        """Take one file and commit it (the API and the watched folder answer per file)."""
        outcome = self.file(name, data)
        self.commit()
        return outcome

    def file(self, name: str, data: bytes) -> FileOutcome:
        """Take one file into the open batch (committed when the batch is full)."""
        return self.take(prepare(name, data))

    def take(self, file: PreparedFile) -> FileOutcome:
        """Take one prepared file (see ``ytehub.ingest.prepare``) into the open batch."""
        try:
            return self._take(file)
        except BaseException:
            self.rollback()
            raise

    def _take(self, file: PreparedFile) -> FileOutcome:
        name, sha = file.name, file.sha256
        connection = self.session.connection()
        known = connection.execute(_FILE_STATUS, {"sha": sha}).first()
        if known is not None and known.status in ("done", "rejected"):
            if known.facility_code:
                self._check_scope(known.facility_code)
            return FileOutcome(
                name, sha, "duplicate", known.facility_code, report=known.report or {}
            )
        if file.facility_code is not None:
            self._check_scope(file.facility_code)
        if file.rejection is not None or file.facility_code is None:
            return self._reject(file, file.rejection or TOO_LARGE, exists=known is not None)
        facility_code = file.facility_code
        outcome = FileOutcome(
            name,
            sha,
            "done",
            facility_code,
            episodes=len(file.episodes),
            errors=file.errors,
            warnings=file.warnings,
            report=file.report,
        )
        if known is None:
            self._open_file = {
                "sha256": sha,
                "name": name[:512],
                "facility_code": facility_code[:16] or None,
                "channel": self.channel,
                "received_at": now(),
                "size": file.size,
                "status": "processing",
            }
        stored = self._stored_episodes(facility_code, [e.ma_lk for e in file.episodes])
        for done, episode in enumerate(file.episodes, start=1):
            if episode.mapped is None:
                outcome.refused += 1
            else:
                result = self._store_episode(file, episode, stored)
                self._held += 1
                setattr(outcome, result, getattr(outcome, result) + 1)
            if self._held >= EPISODES_PER_COMMIT:
                self.commit()
            if self.on_episodes is not None:
                self.on_episodes(done)
        finished = {
            "status": "done",
            "finished_at": now(),
            "episodes": outcome.episodes,
            "stored": outcome.stored + outcome.replaced,
            "unchanged": outcome.unchanged,
            "refused": outcome.refused,
            "report": outcome.report,
        }
        if self._open_file is not None:
            self.session.connection().execute(_INSERT_FILE, {**self._open_file, **finished})
            self._open_file = None
        else:
            self.session.connection().execute(_UPDATE_FILE, {"b_sha": sha, **finished})
        self._audit(
            "ingest.file",
            resource_type="IngestFile",
            resource_id=sha,
            detail={
                "name": outcome.name[:200],
                "facility": outcome.facility_code,
                "stored": outcome.stored,
                "replaced": outcome.replaced,
                "unchanged": outcome.unchanged,
                "refused": outcome.refused,
            },
        )
        return outcome

    def _stored_episodes(self, facility_code: str, ma_lks: list[str]) -> dict[str, StoredEpisode]:
        """The file's episodes already stored, by MA_LK: one query per few hundred, then what
        the open batch wrote on top (the database cannot see it yet)."""
        keys = list(dict.fromkeys(ma_lks))
        stored: dict[str, StoredEpisode] = {}
        connection = self.session.connection()
        for start in range(0, len(keys), 500):
            chunk = {"facility": facility_code, "keys": keys[start : start + 500]}
            for row in connection.execute(_STORED, chunk):
                stored[row.ma_lk] = StoredEpisode(row.content_hash, row.resources, row.submissions)
        for key in keys:
            held = self._batch.get((facility_code, key))
            if held is not None:
                stored[key] = held
        return stored

    def _check_scope(self, facility_code: str) -> None:
        if self.facility_scope is not None and facility_code != self.facility_scope:
            raise DomainError(
                "ingest.other_facility",
                Text(
                    f"Tệp của cơ sở {facility_code}, không phải {self.facility_scope}.",
                    f"The file is from facility {facility_code}, not {self.facility_scope}.",
                ),
                status=403,
                field="MACSKCB",
                value=facility_code,
            )

    def _reject(self, file: PreparedFile, reason: Text, exists: bool) -> FileOutcome:
        name, sha = file.name, file.sha256
        report = file.report
        row = {
            "name": name[:512],
            "facility_code": None,
            "channel": self.channel,
            "received_at": now(),
            "finished_at": now(),
            "size": file.size,
            "status": "rejected",
            "report": {"reason": {"vi": reason.vi, "en": reason.en}, **report},
        }
        connection = self.session.connection()
        if exists:
            connection.execute(_UPDATE_FILE, {"b_sha": sha, **row})
        else:
            connection.execute(_INSERT_FILE, {"sha256": sha, **row})
        self._audit(
            "ingest.reject",
            resource_type="IngestFile",
            resource_id=sha,
            detail={"name": name[:200], "reason": reason.en},
        )
        return FileOutcome(name, sha, "rejected", reason=reason, report=report)

    # --- one episode ----------------------------------------------------------------------

    def _store_episode(
        self, file: PreparedFile, episode: PreparedEpisode, stored: dict[str, StoredEpisode]
    ) -> str:
        """Store one validated episode whole: "stored", "replaced" or "unchanged". Anything
        that fails rolls the whole batch back, so no episode is ever half-written."""
        assert episode.patient is not None and episode.mapped is not None
        assert file.facility_code is not None
        facility_code, file_sha256 = file.facility_code, file.sha256
        session = self.session
        decision = registry.register(session, episode.patient, self.actor, self.model)
        person_id = decision.person_id
        if decision.action != "unchanged":
            new = decision.action in ("new", "review")
            self._patients[person_id] = self._patients.get(person_id, False) or new
        ma_lk = episode.ma_lk
        previous = stored.get(ma_lk)
        mapped = episode.mapped
        if previous is not None and previous.content_hash == mapped.content_hash:
            return "unchanged"
        store = RecordStore(session)
        if previous is None:
            if episode.rendered is None:  # prepared here
                assert file.recorded is not None
                mapped.for_patient(person_id)
                rendered = [render(resource, file.recorded) for resource in mapped.resources]
            else:  # prepared and rendered by a worker
                assert file.placeholder is not None
                rendered = [r.for_patient(file.placeholder, person_id) for r in episode.rendered]
            for resource in rendered:
                store.create_rendered(resource, facility_code)
            keys = [f"{r.resource_type}/{r.id}" for r in rendered]
        else:
            # A resubmission keeps the ids its episode was first stored with: it is mapped
            # again with their time (its own mapping carries this submission's clock).
            made = episode.rendered[0].id if episode.rendered else mapped.resources[0]["id"]
            first = previous.resources[0].partition("/")[2] if previous.resources else made
            mapped = file.remapped(episode, prefix_of(first)).for_patient(person_id)
            keys = [f"{r['resourceType']}/{r['id']}" for r in mapped.resources]
            for resource in mapped.resources:
                store.update(
                    resource["resourceType"],
                    resource["id"],
                    resource,
                    facility_code=facility_code,
                    trusted=True,
                )
            for gone in set(previous.resources) - set(keys):
                resource_type, _, resource_id = gone.partition("/")
                store.delete(resource_type, resource_id)
        moment = now()
        row = {
            "content_hash": mapped.content_hash,
            "file_sha256": file_sha256,
            "person_id": person_id,
            "resources": keys,
            "submissions": previous.submissions + 1 if previous is not None else 1,
            "stored_at": moment,
        }
        held = deferred.held(session, "ingest", _HeldEpisodes)
        if previous is None:
            held.new.append({"facility_code": facility_code, "ma_lk": mapped.ma_lk, **row})
        else:
            held.replaced.append({"b_facility": facility_code, "b_ma_lk": mapped.ma_lk, **row})
        now_stored = StoredEpisode(mapped.content_hash, keys, row["submissions"])
        stored[ma_lk] = self._batch[(facility_code, ma_lk)] = now_stored
        held.events.append(
            {
                "at": moment,
                "topic": "episode.stored" if previous is None else "episode.replaced",
                "key": f"{facility_code}|{mapped.ma_lk}"[:128],
                "payload": {
                    "facility_code": facility_code,
                    "ma_lk": mapped.ma_lk,
                    "person_id": person_id,
                    "resources": keys,
                    "file_sha256": file_sha256,
                },
            }
        )
        self._audit(
            "ingest.episode",
            resource_type="Encounter",
            person_id=person_id,
            detail={
                "facility": facility_code,
                "ma_lk": mapped.ma_lk,
                "resources": len(keys),
                "replaced": previous is not None,
            },
        )
        return "stored" if previous is None else "replaced"

    def _write_patients(self, session: Session) -> None:
        """Each changed person's golden Patient: created with the person, rewritten when a
        record joins them (another facility's identifiers, perhaps a better name or date)."""
        store = RecordStore(session)
        goldens = registry.goldens_of(session, list(self._patients))
        for person_id, new in self._patients.items():
            resource = patient_resource(person_id, *goldens[person_id])
            if new:
                store.create(resource, resource_id=person_id, fresh_id=True, trusted=True)
            else:
                store.update("Patient", person_id, resource, trusted=True)
        self._patients.clear()


# --- inputs: files, folders, zip archives ---------------------------------------------------


def candidate_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The XML files and zip archives under ``paths`` (folders searched recursively), in order;
    paths that are neither are passed on, to be reported."""
    for path in paths:
        if path.is_dir():
            yield from (
                child
                for child in sorted(path.rglob("*"))
                if child.is_file() and child.suffix.lower() in (".xml", ".zip")
            )
        else:
            yield path


def inputs(paths: Iterable[Path]) -> Iterator[tuple[str, bytes | Text]]:
    """(name, bytes) of every XML file under ``paths`` (files, folders, zip archives); a part
    that cannot be read safely comes as (name, reason)."""
    for path in candidate_files(paths):
        if path.suffix.lower() == ".zip":
            yield from _zip_members(path)
        elif path.is_file():
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                yield str(path), TOO_LARGE
                continue
            yield str(path), path.read_bytes()
        else:
            yield str(path), Text("Không tìm thấy tệp.", "No such file.")


def _zip_members(path: Path) -> Iterator[tuple[str, bytes | Text]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        yield str(path), Text(f"Tệp zip hỏng: {error}.", f"Broken zip archive: {error}.")
        return
    total = 0
    with archive:
        for info in archive.infolist():
            name = f"{path}!{info.filename}"
            if info.is_dir() or not info.filename.lower().endswith(".xml"):
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            total += info.file_size
            if (
                info.file_size > MAX_ZIP_MEMBER_BYTES
                or total > MAX_ZIP_TOTAL_BYTES
                or ratio > MAX_ZIP_RATIO
            ):
                yield (
                    name,
                    Text(
                        "Tệp trong zip quá lớn hoặc nén bất thường (zip bomb).",
                        "A member of the zip is too large or compressed abnormally (zip bomb).",
                    ),
                )
                continue
            with archive.open(info) as member:
                data = member.read(MAX_ZIP_MEMBER_BYTES + 1)
            if len(data) > MAX_ZIP_MEMBER_BYTES:
                yield name, Text("Tệp trong zip quá lớn.", "A member of the zip is too large.")
                continue
            yield name, data


# A long run prepares files (read, validate, map, render: no database) in a worker process
# while this one stores: the first files are prepared here, so a short run starts no process.
PREPARE_HERE_FILES = 16
# Files go to a worker in chunks, many chunks ahead: a task per file, or a few chunks, left the
# worker idle while this process was busy storing or committing.
CHUNK_FILES = 16
CHUNK_BYTES = 4 * 1024 * 1024
AHEAD_CHUNKS = 32
AHEAD_BYTES = 64 * 1024 * 1024  # input held for the workers at most (at least one chunk)

Input = tuple[str, bytes | Text]
PreparedInput = tuple[str, bytes, PreparedFile] | tuple[str, Text, None]


def prepared_inputs(
    sources: Iterable[Input], workers: int | None = None, prepare_here: int = PREPARE_HERE_FILES
) -> Iterator[PreparedInput]:
    """Each input with its prepared file (or its reason when it could not be read), in input
    order. After the first ``prepare_here`` files, preparation moves to ``workers`` processes
    (default: one when this machine has a spare core), a bounded amount ahead of the caller,
    so storing some files overlaps with preparing the next."""
    if workers is None:
        workers = 1 if (os.cpu_count() or 1) > 1 else 0
    sources = iter(sources)
    for name, data in itertools.islice(sources, prepare_here if workers else None):
        yield (name, data, None) if isinstance(data, Text) else (name, data, prepare(name, data))
    if not workers:
        return
    # A clean process, not a copy of this one (spawn where there is no fork server: Windows).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
    ) as pool:
        ahead: deque[tuple[list[Input], Future[list[PreparedFile]], int]] = deque()
        held = 0
        for chunk in _chunks(sources):
            files = [(name, data) for name, data in chunk if isinstance(data, bytes)]
            size = sum(len(data) for _, data in files)
            ahead.append((chunk, pool.submit(_prepare_to_send, files), size))
            held += size
            while ahead and (held > AHEAD_BYTES or len(ahead) > AHEAD_CHUNKS * workers):
                held -= ahead[0][2]
                yield from _received(*ahead.popleft()[:2])
        while ahead:
            yield from _received(*ahead.popleft()[:2])


def _chunks(sources: Iterator[Input]) -> Iterator[list[Input]]:
    chunk: list[Input] = []
    size = 0
    for name, data in sources:
        chunk.append((name, data))
        size += len(data) if isinstance(data, bytes) else 0
        if len(chunk) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _prepare_to_send(files: list[tuple[str, bytes]]) -> list[PreparedFile]:
    return [prepare_to_send(name, data) for name, data in files]


def _received(chunk: list[Input], future: Future[list[PreparedFile]]) -> Iterator[PreparedInput]:
    prepared = iter(future.result())
    for name, data in chunk:
        if isinstance(data, Text):
            yield name, data, None
        else:
            file = next(prepared)
            file.data = data
            yield name, data, file


def _start_worker(ingesting: int) -> None:
    """A preparing worker: bulk collector settings, and a watch that ends it once the
    ingesting process is gone (a SIGKILL gives that no chance to stop its workers, which
    would wait for work forever and keep the pool's server alive)."""
    collector.enter_bulk_job()
    threading.Thread(target=_exit_without, args=(ingesting,), daemon=True).start()


def _exit_without(ingesting: int) -> None:
    while True:
        time.sleep(1)
        try:
            os.kill(ingesting, 0)
        except ProcessLookupError:
            os._exit(0)


def ingest_paths(
    db: Database,
    paths: Iterable[Path],
    channel: str = "cli",
    actor: str | None = None,
    on_file: Callable[[FileOutcome], None] | None = None,
    on_episodes: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> list[FileOutcome]:
    """Ingest every file under ``paths`` (see :func:`inputs`); ``workers`` as in
    :func:`prepared_inputs`."""
    outcomes = []
    with (
        collector.bulk_job(),
        Ingest(db, channel, actor, on_episodes=on_episodes, bulk=True) as run,
    ):
        for name, data, prepared in prepared_inputs(inputs(paths), workers):
            if prepared is None:
                assert isinstance(data, Text)
                outcome = rejected_file(name, name.encode(), data)
            else:
                outcome = run.take(prepared)
            outcomes.append(outcome)
            if on_file is not None:
                on_file(outcome)
    return outcomes
