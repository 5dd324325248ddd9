"""Client-registry use cases: match, register-or-match, review decisions, merge and unmerge.

Every function works inside the caller's session and transaction; every decision is written
to the link history (``registry_links``, never rewritten) and to the audit trail.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from ytehub.core import audit
from ytehub.core.errors import DomainError, Text
from ytehub.registry.blocking import blocking_keys
from ytehub.registry.model import (
    DEFAULT_LEVELS,
    DEFAULT_PRIOR,
    Grade,
    MatchModel,
    conflict,
    probability,
)
from ytehub.registry.models import (
    RegistryKey,
    RegistryLink,
    RegistryModel,
    RegistryPerson,
    RegistryReview,
    RegistrySource,
)
from ytehub.registry.normalize import SourceRecord

MAX_CANDIDATES = 1_000  # source records scored per query; a block larger than this is noise
_SOURCE_FIELDS = set(SourceRecord.__slots__)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Candidate:
    person_id: str
    probability: float
    weight: float
    grade: Grade | None
    source_id: int  # the person's record that matched best
    conflict: str | None = None
    explanation: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Decision:
    """What register-or-match did with one record."""

    action: str  # linked, new, review, updated, unchanged
    person_id: str
    source_id: int
    probability: float | None = None
    review_id: int | None = None
    reason: str | None = None
    candidates: list[Candidate] = field(default_factory=list)


def record_of(fields: dict[str, Any]) -> SourceRecord:
    return SourceRecord(**{k: v for k, v in fields.items() if k in _SOURCE_FIELDS})


# --- the model ------------------------------------------------------------------------------

_models: dict[int, MatchModel] = {}


def default_model() -> MatchModel:
    return MatchModel(levels=dict(DEFAULT_LEVELS), prior=DEFAULT_PRIOR, source="default")


def active_model(session: Session) -> MatchModel:
    """The newest active model (cached by version), or the defaults before any training."""
    version = session.scalar(
        select(func.max(RegistryModel.version)).where(RegistryModel.active.is_(True))
    )
    if version is None:
        return _models.setdefault(0, default_model())
    model = _models.get(version)
    if model is None:
        row = session.get(RegistryModel, version)
        assert row is not None
        model = _models[version] = MatchModel.from_json(row.params, version)
    return model


def save_model(session: Session, model: MatchModel, actor: str | None) -> int:
    """Store ``model`` as the new active version."""
    version = (session.scalar(select(func.max(RegistryModel.version))) or 0) + 1
    session.add(
        RegistryModel(
            version=version,
            created_at=now(),
            source=model.source[:128],
            active=True,
            params=model.as_json(),
        )
    )
    audit.defer(
        session,
        audit.AuditEntry(
            action="registry.model",
            actor=actor,
            resource_type="RegistryModel",
            resource_id=str(version),
            detail={"source": model.source},
        ),
    )
    session.flush()
    return version


# --- matching -------------------------------------------------------------------------------


_SOURCES = RegistrySource.__table__
_SOURCE_COLUMNS = (
    _SOURCES.c.id,
    _SOURCES.c.system,
    _SOURCES.c.local_id,
    _SOURCES.c.person_id,
    _SOURCES.c.fields,
)


# Built once: the ingest runs these for every patient, and building a statement cost more than
# running it.
_EXISTING = select(*_SOURCE_COLUMNS).where(
    _SOURCES.c.system == bindparam("system"), _SOURCES.c.local_id == bindparam("local_id")
)
_CANDIDATES = select(*_SOURCE_COLUMNS).where(
    _SOURCES.c.id.in_(
        select(RegistryKey.source_id)
        .where(RegistryKey.key.in_(bindparam("keys", expanding=True)))
        .distinct()
        # Written into the SQL, not bound: PostgreSQL's generic plan for a bound LIMIT walked
        # the whole source-id index (3 ms a patient at 13,000 keys, growing with the registry)
        # instead of probing the keys (0.1 ms).
        .limit(literal_column(str(MAX_CANDIDATES)))
    )
)
_UPDATE_FIELDS = (
    update(_SOURCES)
    .where(_SOURCES.c.id == bindparam("b_id"))
    .values(fields=bindparam("fields"), updated_at=bindparam("updated_at"))
)
_INSERT_PERSON = insert(RegistryPerson.__table__)
_INSERT_SOURCE = insert(_SOURCES).returning(_SOURCES.c.id)
_INSERT_KEY = insert(RegistryKey.__table__)
_DELETE_KEYS = delete(RegistryKey.__table__).where(
    RegistryKey.__table__.c.source_id == bindparam("source_id")
)
_INSERT_LINK = insert(RegistryLink.__table__)
_PERSONS = RegistryPerson.__table__
_SOURCE_FIELDS_OF = select(_SOURCES.c.fields).where(_SOURCES.c.person_id == bindparam("person"))
_SET_GOLDEN = (
    update(_PERSONS)
    .where(_PERSONS.c.id == bindparam("b_id"))
    .values(
        golden=bindparam("golden"),
        commune_code=bindparam("commune_code"),
        cccd=bindparam("cccd"),
        updated_at=bindparam("updated_at"),
    )
)


def _candidate_sources(session: Session, record: SourceRecord) -> Sequence[Any]:
    """(id, system, local_id, person_id, fields) of the records sharing a blocking key.

    Core rows through the connection: the ingest asks this for every patient, and ORM
    objects (and the autoflush before each query) cost more than the scoring."""
    keys = blocking_keys(record)
    if not keys:
        return []
    return session.connection().execute(_CANDIDATES, {"keys": keys}).all()


def match(
    session: Session,
    record: SourceRecord,
    model: MatchModel | None = None,
    exclude: tuple[str, str] | None = None,
    explain: bool = False,
) -> list[Candidate]:
    """Persons this record may be, best first: the best-scoring record of each person."""
    model = model or active_model(session)
    best: dict[str, Candidate] = {}
    for source in _candidate_sources(session, record):
        if exclude is not None and (source.system, source.local_id) == exclude:
            continue
        other = record_of(source.fields)
        weight = model.weight(record, other)
        current = best.get(source.person_id)
        if current is not None and current.weight >= weight:
            continue
        p = probability(weight)
        best[source.person_id] = Candidate(
            source.person_id,
            p,
            weight,
            model.grade(p),
            source.id,
            conflict(record, other),
            model.explain(record, other) if explain else [],
        )
    ranked = sorted(best.values(), key=lambda c: c.weight, reverse=True)
    return [c for c in ranked if c.grade is not None or c.conflict is not None]


# --- register-or-match ----------------------------------------------------------------------


def not_identifying(record: SourceRecord) -> DomainError:
    gap = record.identifying_gap()
    assert gap is not None
    return DomainError("registry.not_identifying", gap, status=422, field="record")


def register(
    session: Session,
    record: SourceRecord,
    actor: str | None = None,
    model: MatchModel | None = None,
) -> Decision:
    """Link an incoming source record to its person, or create one; potential matches and
    conflicts go to the review queue and are never linked automatically."""
    if record.identifying_gap() is not None:
        raise not_identifying(record)
    model = model or active_model(session)
    moment = now()
    connection = session.connection()
    existing = connection.execute(
        _EXISTING, {"system": record.system, "local_id": record.local_id}
    ).first()
    if existing is not None:
        if record_of(existing.fields) == record:
            return Decision("unchanged", existing.person_id, existing.id)
        connection.execute(
            _UPDATE_FIELDS, {"b_id": existing.id, "fields": record.plain(), "updated_at": moment}
        )
        _rekey(session, existing.id, record)
        _refresh_golden(session, existing.person_id)
        return Decision("updated", existing.person_id, existing.id)

    candidates = match(session, record, model)
    best = candidates[0] if candidates else None
    conflicting = next((c for c in candidates if c.conflict), None)
    if (
        best is not None
        and best.conflict is None
        and best.probability >= model.link_threshold
        and (conflicting is None or conflicting.person_id == best.person_id)
    ):
        source_id = _add_source(session, record, best.person_id, moment)
        _history(session, "link", source_id, best.person_id, best.probability, actor, model)
        _refresh_golden(session, best.person_id)
        _audit(session, "registry.link", actor, best.person_id, source_id, best.probability)
        return Decision(
            "linked", best.person_id, source_id, best.probability, None, None, candidates
        )

    person_id = _new_person(session, record, moment)
    source_id = _add_source(session, record, person_id, moment)
    _history(session, "new", source_id, person_id, None, actor, model)
    flagged = conflicting or (
        best if best is not None and best.probability >= model.review_threshold else None
    )
    if flagged is None:
        _audit(session, "registry.new", actor, person_id, source_id, None)
        return Decision("new", person_id, source_id, None, None, None, candidates)
    reason = f"conflict:{flagged.conflict}" if flagged.conflict else "potential"
    review = RegistryReview(
        source_id=source_id,
        candidate_person_id=flagged.person_id,
        probability=flagged.probability,
        reason=reason,
        status="open",
        created_at=moment,
    )
    session.add(review)
    session.flush()
    _history(session, "review", source_id, person_id, flagged.probability, actor, model, reason)
    _audit(session, "registry.review", actor, person_id, source_id, flagged.probability, reason)
    return Decision(
        "review", person_id, source_id, flagged.probability, review.id, reason, candidates
    )


def _new_person(session: Session, record: SourceRecord, moment: datetime) -> str:
    person_id = str(uuid.uuid4())
    session.connection().execute(
        _INSERT_PERSON,
        {
            "id": person_id,
            "created_at": moment,
            "updated_at": moment,
            "status": "active",
            "golden": record.plain(),
            "commune_code": record.commune,
            "cccd": record.cccd,
        },
    )
    return person_id


def _source_row(record: SourceRecord, person_id: str, moment: datetime) -> dict[str, Any]:
    return {
        "system": record.system,
        "local_id": record.local_id,
        "person_id": person_id,
        "fields": record.plain(),
        "created_at": moment,
        "updated_at": moment,
    }


def _add_source(session: Session, record: SourceRecord, person_id: str, moment: datetime) -> int:
    source_id: int = (
        session.connection()
        .execute(_INSERT_SOURCE, _source_row(record, person_id, moment))
        .scalar_one()
    )
    _rekey(session, source_id, record, fresh=True)
    return source_id


def _rekey(session: Session, source_id: int, record: SourceRecord, fresh: bool = False) -> None:
    connection = session.connection()
    if not fresh:
        connection.execute(_DELETE_KEYS, {"source_id": source_id})
    keys = blocking_keys(record)
    if keys:
        connection.execute(
            _INSERT_KEY,
            [{"key": key[:160], "source_id": source_id} for key in dict.fromkeys(keys)],
        )


def _history(
    session: Session,
    action: str,
    source_id: int | None,
    person_id: str,
    probability: float | None,
    actor: str | None,
    model: MatchModel | None = None,
    reason: str | None = None,
    from_person_id: str | None = None,
) -> None:
    session.connection().execute(
        _INSERT_LINK,
        {
            "at": now(),
            "action": action,
            "source_id": source_id,
            "person_id": person_id,
            "from_person_id": from_person_id,
            "probability": probability,
            "actor": actor,
            "reason": reason,
            "model_version": model.version if model else None,
        },
    )


def _audit(
    session: Session,
    action: str,
    actor: str | None,
    person_id: str,
    source_id: int | None,
    probability: float | None,
    reason: str | None = None,
) -> None:
    detail: dict[str, Any] = {"source_id": source_id}
    if probability is not None:
        detail["probability"] = round(probability, 6)
    if reason:
        detail["reason"] = reason
    audit.defer(
        session,
        audit.AuditEntry(
            action=action,
            actor=actor,
            resource_type="RegistryPerson",
            resource_id=person_id,
            person_id=person_id,
            detail=detail,
        ),
    )


# --- the golden record ----------------------------------------------------------------------

GOLDEN_FIELDS = (
    "family",
    "middle",
    "given",
    "sex",
    "cccd",
    "cmnd",
    "passport",
    "bhxh",
    "bhyt_card",
    "commune",
    "phone",
)


def golden_record(records: Sequence[SourceRecord]) -> dict[str, Any]:
    """The best value of each field: the commonest among the records, a full birth date over a
    partial one, a name written with diacritics over one without."""
    if not records:
        return {}
    out: dict[str, Any] = {"system": "golden", "local_id": ""}
    for name in GOLDEN_FIELDS:
        values = Counter(getattr(r, name) for r in records if getattr(r, name))
        out[name] = values.most_common(1)[0][0] if values else None
    births = Counter(
        (r.birth_year, r.birth_month, r.birth_day) for r in records if r.birth_year is not None
    )
    if births:
        (year, month, day), _ = max(
            births.items(),
            key=lambda item: (item[0][2] is not None, item[0][1] is not None, item[1]),
        )
        out.update(birth_year=year, birth_month=month, birth_day=day)
    else:
        out.update(birth_year=None, birth_month=None, birth_day=None)
    parts = [out["family"], out["middle"], out["given"]]
    out["name"] = " ".join(p for p in parts if p) or None
    displays = Counter(r.display_name for r in records if r.display_name)
    out["display_name"] = (
        max(displays.items(), key=lambda item: (not item[0].isascii(), item[1]))[0]
        if displays
        else None
    )
    return out


def _refresh_golden(session: Session, person_id: str) -> None:
    connection = session.connection()
    records = [
        record_of(fields)
        for fields in connection.execute(_SOURCE_FIELDS_OF, {"person": person_id}).scalars()
    ]
    golden = golden_record(records)
    connection.execute(
        _SET_GOLDEN,
        {
            "b_id": person_id,
            "golden": golden,
            "commune_code": golden.get("commune"),
            "cccd": golden.get("cccd"),
            "updated_at": now(),
        },
    )
    held = session.identity_map.get(identity_key(RegistryPerson, person_id))
    if held is not None:  # written around the ORM: the copy this session holds is stale
        session.expire(held)


# --- decisions: review, merge, unmerge ------------------------------------------------------


def not_found(what: str, key: object) -> DomainError:
    return DomainError(
        "registry.not_found",
        Text(f"Không tìm thấy {what} {key}.", f"No {what} {key}."),
        status=404,
        field=what,
        value=str(key),
    )


def get_person(session: Session, person_id: str) -> RegistryPerson:
    person = session.get(RegistryPerson, person_id)
    if person is None:
        raise not_found("person", person_id)
    return person


def merge(
    session: Session, survivor_id: str, merged_id: str, actor: str | None, reason: str = "merge"
) -> int:
    """Move every record of ``merged_id`` to ``survivor_id``; the merged person is kept, marked
    merged, so the merge can be undone. Returns the number of records moved."""
    if survivor_id == merged_id:
        raise DomainError(
            "registry.same_person",
            Text(
                "Không thể hợp nhất một người với chính họ.", "Cannot merge a person with itself."
            ),
            status=400,
            field="merged",
        )
    survivor, merged = get_person(session, survivor_id), get_person(session, merged_id)
    if survivor.status != "active" or merged.status != "active":
        raise DomainError(
            "registry.not_active",
            Text("Chỉ hợp nhất được hai người đang hoạt động.", "Only active persons can merge."),
            status=409,
            field="person",
        )
    sources = list(
        session.scalars(select(RegistrySource.id).where(RegistrySource.person_id == merged_id))
    )
    session.execute(
        update(RegistrySource)
        .where(RegistrySource.person_id == merged_id)
        .values(person_id=survivor_id, updated_at=now())
    )
    for source_id in sources:
        _history(session, "merge", source_id, survivor_id, None, actor, None, reason, merged_id)
    merged.status, merged.merged_into, merged.updated_at = "merged", survivor_id, now()
    session.flush()
    _refresh_golden(session, survivor_id)
    _audit(session, "registry.merge", actor, survivor_id, None, None, f"merged {merged_id}")
    return len(sources)


def unmerge(session: Session, merged_id: str, actor: str | None) -> int:
    """Undo a merge: the records that came from ``merged_id`` go back to it."""
    merged = get_person(session, merged_id)
    if merged.status != "merged" or merged.merged_into is None:
        raise DomainError(
            "registry.not_merged",
            Text(f"{merged_id} chưa bị hợp nhất.", f"{merged_id} is not merged."),
            status=409,
            field="person",
            value=merged_id,
        )
    survivor_id = merged.merged_into
    moved = [
        link.source_id
        for link in session.scalars(
            select(RegistryLink).where(
                RegistryLink.action == "merge",
                RegistryLink.from_person_id == merged_id,
                RegistryLink.person_id == survivor_id,
            )
        )
        if link.source_id is not None
    ]
    back = [
        s
        for s in session.scalars(
            select(RegistrySource).where(
                RegistrySource.id.in_(moved), RegistrySource.person_id == survivor_id
            )
        )
    ]
    for source in back:
        source.person_id, source.updated_at = merged_id, now()
        _history(session, "unmerge", source.id, merged_id, None, actor, None, None, survivor_id)
    merged.status, merged.merged_into, merged.updated_at = "active", None, now()
    session.flush()
    _refresh_golden(session, survivor_id)
    _refresh_golden(session, merged_id)
    _audit(session, "registry.unmerge", actor, merged_id, None, None, f"from {survivor_id}")
    return len(back)


def decide(session: Session, review_id: int, link: bool, actor: str | None) -> RegistryReview:
    """A reviewer's decision: link (merge the record's person into the candidate) or not a
    match (the two stay apart; the decision is kept)."""
    review = session.get(RegistryReview, review_id)
    if review is None:
        raise not_found("review", review_id)
    if review.status != "open":
        raise DomainError(
            "registry.already_decided",
            Text("Mục này đã được quyết định.", "This item was already decided."),
            status=409,
            field="review",
            value=str(review_id),
        )
    source = session.get(RegistrySource, review.source_id)
    assert source is not None
    if link:
        if source.person_id != review.candidate_person_id:
            merge(session, review.candidate_person_id, source.person_id, actor, "review")
        review.status = "linked"
    else:
        review.status = "not_a_match"
        _history(
            session,
            "not-a-match",
            source.id,
            source.person_id,
            review.probability,
            actor,
            None,
            f"not {review.candidate_person_id}",
        )
        _audit(
            session,
            "registry.not_a_match",
            actor,
            source.person_id,
            source.id,
            review.probability,
            f"not {review.candidate_person_id}",
        )
    review.decided_at, review.decided_by = now(), actor
    session.flush()
    return review


# --- reading --------------------------------------------------------------------------------


_GOLDEN = select(_PERSONS.c.id, _PERSONS.c.golden).where(
    _PERSONS.c.id.in_(bindparam("ids", expanding=True))
)
_IDENTIFIERS = (
    select(_SOURCES.c.person_id, _SOURCES.c.system, _SOURCES.c.local_id)
    .where(_SOURCES.c.person_id.in_(bindparam("ids", expanding=True)))
    .order_by(_SOURCES.c.id)
)


def goldens_of(
    session: Session, person_ids: list[str]
) -> dict[str, tuple[dict[str, Any], list[tuple[str, str]]]]:
    """Each person's golden record and their records' (system, local id), for their golden
    Patients: two queries a few hundred persons, where an ingest batch asked two a person."""
    session.flush()
    found: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {}
    connection = session.connection()
    for start in range(0, len(person_ids), 500):
        ids = {"ids": person_ids[start : start + 500]}
        for person_id, golden in connection.execute(_GOLDEN, ids):
            found[person_id] = (golden, [])
        for person_id, system, local_id in connection.execute(_IDENTIFIERS, ids):
            found[person_id][1].append((system, local_id))
    missing = set(person_ids) - set(found)
    if missing:
        raise not_found("person", min(missing))
    return found


def sources_of(session: Session, person_id: str) -> list[RegistrySource]:
    return list(
        session.scalars(
            select(RegistrySource)
            .where(RegistrySource.person_id == person_id)
            .order_by(RegistrySource.id)
        )
    )


def history_of(session: Session, person_id: str) -> list[RegistryLink]:
    return list(
        session.scalars(
            select(RegistryLink)
            .where(
                (RegistryLink.person_id == person_id) | (RegistryLink.from_person_id == person_id)
            )
            .order_by(RegistryLink.id)
        )
    )


def review_view(session: Session, review_id: int) -> dict[str, Any]:
    """A review item with both sides and what each comparison said, for the review screen."""
    review = session.get(RegistryReview, review_id)
    if review is None:
        raise not_found("review", review_id)
    source = session.get(RegistrySource, review.source_id)
    candidate = get_person(session, review.candidate_person_id)
    assert source is not None
    record = record_of(source.fields)
    others = sources_of(session, candidate.id)
    model = active_model(session)
    best = max(others, key=lambda s: model.weight(record, record_of(s.fields)), default=None)
    return {
        "id": review.id,
        "status": review.status,
        "reason": review.reason,
        "probability": review.probability,
        "record": source.fields,
        "record_system": source.system,
        "record_local_id": source.local_id,
        "record_person_id": source.person_id,
        "candidate_person_id": candidate.id,
        "candidate_golden": candidate.golden,
        "candidate_records": [
            {"system": s.system, "local_id": s.local_id, "fields": s.fields} for s in others
        ],
        "explanation": model.explain(record, record_of(best.fields)) if best else [],
    }


def active_persons(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RegistryPerson)
            .where(RegistryPerson.status == "active")
        )
        or 0
    )


def open_review_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(RegistryReview).where(RegistryReview.status == "open")
        )
        or 0
    )


def open_reviews(session: Session, limit: int = 50) -> list[RegistryReview]:
    return list(
        session.scalars(
            select(RegistryReview)
            .where(RegistryReview.status == "open")
            .order_by(RegistryReview.created_at, RegistryReview.id)
            .limit(limit)
        )
    )


def import_persons(
    session: Session,
    groups: Iterable[Sequence[SourceRecord]],
    actor: str | None = None,
    reason: str = "import",
) -> int:
    """Store already-resolved persons (each group is one person's records, e.g. the clusters
    of a batch deduplication) in a few statements per chunk instead of matching one by one.
    Records already in the index are not touched. Returns the number of records stored."""
    moment = now()
    stored = 0
    persons: list[dict[str, Any]] = []
    pending: list[tuple[str, SourceRecord]] = []
    for group in groups:
        person_id = str(uuid.uuid4())
        golden = golden_record(group)
        persons.append(
            {
                "id": person_id,
                "created_at": moment,
                "updated_at": moment,
                "status": "active",
                "golden": golden,
                "commune_code": golden.get("commune"),
                "cccd": golden.get("cccd"),
            }
        )
        pending.extend((person_id, record) for record in group)
        if len(pending) >= 5_000:
            stored += _import_chunk(session, persons, pending, actor, reason, moment)
            persons, pending = [], []
    if pending:
        stored += _import_chunk(session, persons, pending, actor, reason, moment)
    return stored


def _import_chunk(
    session: Session,
    persons: list[dict[str, Any]],
    pending: list[tuple[str, SourceRecord]],
    actor: str | None,
    reason: str,
    moment: datetime,
) -> int:
    session.execute(insert(RegistryPerson), persons)
    ids = (
        session.execute(
            insert(RegistrySource).returning(RegistrySource.id, sort_by_parameter_order=True),
            [_source_row(record, person_id, moment) for person_id, record in pending],
        )
        .scalars()
        .all()
    )
    keys = [
        {"key": key[:160], "source_id": source_id}
        for source_id, (_person, record) in zip(ids, pending, strict=True)
        for key in dict.fromkeys(blocking_keys(record))
    ]
    if keys:
        session.execute(insert(RegistryKey), keys)
    session.execute(
        insert(RegistryLink),
        [
            {
                "at": moment,
                "action": "new",
                "source_id": source_id,
                "person_id": person_id,
                "actor": actor,
                "reason": reason,
            }
            for source_id, (person_id, _record) in zip(ids, pending, strict=True)
        ],
    )
    audit.defer(
        session,
        audit.AuditEntry(
            action="registry.import",
            actor=actor,
            resource_type="RegistryPerson",
            detail={"persons": len(persons), "records": len(pending), "reason": reason},
        ),
    )
    return len(pending)


@dataclass(slots=True)
class DedupeApplied:
    persons_merged: int = 0
    reviews_added: int = 0


def apply_dedupe(
    session: Session, clusters: dict[str, str], review: Iterable[Any], actor: str | None
) -> DedupeApplied:
    """Make the index agree with a batch deduplication: the persons of one cluster are merged
    into the one holding most of its records (undoable, with history); the pairs it left for
    review are queued unless a review of that record and person is already there."""
    sources = {f"{s.system}|{s.local_id}": s for s in session.scalars(select(RegistrySource))}
    members: dict[str, list[RegistrySource]] = {}
    for uid, cluster in clusters.items():
        if uid in sources:
            members.setdefault(cluster, []).append(sources[uid])
    applied = DedupeApplied()
    for group in members.values():
        counts = Counter(s.person_id for s in group)
        if len(counts) < 2:
            continue
        survivor = max(counts, key=lambda person: (counts[person], person))
        for person_id in counts:
            if person_id != survivor:
                merge(session, survivor, person_id, actor, "dedupe")
                applied.persons_merged += 1
    queued = {
        (r.source_id, r.candidate_person_id)
        for r in session.scalars(select(RegistryReview).where(RegistryReview.status == "open"))
    }
    for pair in review:
        a, b = sources.get(pair.uid_a), sources.get(pair.uid_b)
        if a is None or b is None or a.person_id == b.person_id:
            continue
        if (b.id, a.person_id) in queued:
            continue
        session.add(
            RegistryReview(
                source_id=b.id,
                candidate_person_id=a.person_id,
                probability=pair.probability,
                reason=pair.reason,
                status="open",
                created_at=now(),
            )
        )
        queued.add((b.id, a.person_id))
        applied.reviews_added += 1
    session.flush()
    return applied
