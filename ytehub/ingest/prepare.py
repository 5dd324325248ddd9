"""The half of an ingest that needs no database: read a file safely, validate it, find each
episode's patient, hash and map its rows (pointed at the person once the registry answers).

A bulk ingest prepares files ahead in a worker process (``prepare_to_send``), which also
renders each resource as the store will hold it, so the ingesting process only matches and
stores.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ytehub.core.errors import DomainError, Text
from ytehub.formats.qd4750 import read_envelope
from ytehub.ingest.mapping import MappedEpisode, SourceFile, map_episode
from ytehub.ingest.validation import validate_envelope
from ytehub.records.store import Rendered, render
from ytehub.registry.normalize import SourceRecord, from_xml1

MAX_FILE_BYTES = 200 * 1024 * 1024
UNRESOLVED = "unresolved"  # the patient id an episode is mapped with before the registry

TOO_LARGE = Text(
    f"Tệp lớn hơn giới hạn {MAX_FILE_BYTES} byte.",
    f"The file exceeds the limit of {MAX_FILE_BYTES} bytes.",
)
ENVELOPE_ERRORS = Text(
    "Tệp có lỗi ở phần bao (GIAMDINHHS): xem báo cáo; không lưu gì.",
    "The envelope (GIAMDINHHS) has errors: see the report; nothing was stored.",
)


@dataclass(slots=True)
class PreparedEpisode:
    """One episode ready to store; ``mapped`` is None when it must be refused (validation
    errors, or a patient with nothing identifying)."""

    ma_lk: str
    # As read, to map again (see ``remapped``); None when the file was prepared in another
    # process, which does not send them back (the file's bytes are read again if need be).
    tables: dict[str, list[dict[str, str]]] | None
    patient: SourceRecord | None = None
    mapped: MappedEpisode | None = None
    # ``mapped``'s resources as the store holds them, when the file was prepared in another
    # process (which sends these instead: ``mapped.resources`` is then empty).
    rendered: list[Rendered] | None = None


@dataclass(slots=True)
class PreparedFile:
    name: str
    sha256: str
    size: int
    facility_code: str | None = None
    rejection: Text | None = None  # the whole file is refused, with this reason
    report: dict[str, Any] = field(default_factory=dict)
    errors: int = 0
    warnings: int = 0
    episodes: list[PreparedEpisode] = field(default_factory=list)
    source: SourceFile | None = None
    recorded: datetime | None = None
    data: bytes | None = None  # the file, when its episodes' tables were not kept
    placeholder: str | None = None  # the Patient id ``rendered`` resources point at

    def remapped(self, episode: PreparedEpisode, prefix: str) -> MappedEpisode:
        """``episode`` mapped with the id prefix it was first stored with, so a resubmission
        keeps its resources' ids."""
        assert self.facility_code and self.source and self.recorded
        if episode.tables is None:  # read the file again, once for all its episodes
            assert self.data is not None
            read = read_envelope(self.data, max_bytes=MAX_FILE_BYTES).episodes
            for each, tables in zip(self.episodes, read, strict=True):
                each.tables = tables
        assert episode.tables is not None
        return map_episode(
            self.facility_code, episode.tables, UNRESOLVED, self.source, self.recorded, prefix
        )


def prepare_to_send(name: str, data: bytes) -> PreparedFile:
    """:func:`prepare` for another process, which sends back what the store will hold rather
    than the dicts it was made from: each episode's resources rendered (their JSON and index
    rows, pointing at a placeholder Patient until the registry has named the person), without
    the tables as read. Unpickling the dicts cost the receiver about as much as preparing the
    file; a resubmission, which needs them, maps its tables again (``remapped``)."""
    prepared = prepare(name, data)
    placeholder = f"unresolved-{secrets.token_hex(16)}"  # in no file: safe to replace
    for episode in prepared.episodes:
        episode.tables = None
        mapped = episode.mapped
        if mapped is not None:
            assert prepared.recorded is not None
            mapped.for_patient(placeholder)
            episode.rendered = [render(r, prepared.recorded) for r in mapped.resources]
            episode.mapped = replace(mapped, resources=[])
            prepared.placeholder = placeholder
    return prepared


def now() -> datetime:
    return datetime.now(UTC)


def prepare(name: str, data: bytes) -> PreparedFile:
    sha = hashlib.sha256(data).hexdigest()
    prepared = PreparedFile(name, sha, len(data))
    if len(data) > MAX_FILE_BYTES:
        prepared.rejection = TOO_LARGE
        return prepared
    try:
        envelope = read_envelope(data, max_bytes=MAX_FILE_BYTES)
    except DomainError as error:
        prepared.rejection, prepared.report = error.message, {"code": error.code}
        return prepared
    report = validate_envelope(envelope)
    prepared.facility_code = envelope.facility_code
    prepared.report = report.as_dict()
    prepared.errors, prepared.warnings = report.errors, report.warnings
    if not report.file_ok:
        prepared.rejection = ENVELOPE_ERRORS
        return prepared
    source = prepared.source = SourceFile(name=name, sha256=sha, received=now())
    recorded = prepared.recorded = now()
    for episode, episode_report in zip(envelope.episodes, report.episodes, strict=True):
        first = (episode.get("XML1") or [{}])[0]
        item = PreparedEpisode(first.get("MA_LK", "").strip(), episode)
        prepared.episodes.append(item)
        if not episode_report.ok:
            continue
        patient = from_xml1(envelope.facility_code, first)
        if patient.identifying_gap() is not None:
            continue
        item.patient = patient
        item.mapped = map_episode(envelope.facility_code, episode, UNRESOLVED, source, recorded)
    return prepared
