"""Batch and transaction Bundles (POST /fhir).

A transaction is all or nothing: every entry is processed in one database transaction, in the
order the specification sets (DELETE, POST, PUT, GET), with ``urn:uuid:`` references rewritten
to the ids the server assigns; any failure rolls everything back and answers with the failing
entry named. A batch processes each entry on its own savepoint and reports each outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.orm import Session

from ytehub.core import deferred
from ytehub.core.errors import DomainError, Text
from ytehub.records.errors import FhirError, Issue, operation_outcome
from ytehub.records.query import parse_search
from ytehub.records.search import find_existing, run_search
from ytehub.records.store import RecordStore, instant

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3, "HEAD": 3}
MAX_ENTRIES = 5_000


@dataclass(frozen=True, slots=True)
class EntryContext:
    """What the REST layer lends the bundle processor: authorisation and audit per entry."""

    authorize: Callable[[str, str], Any]  # (resource_type, "read"|"write") -> Access
    guard: Callable[[Any, str, str, str | None], None]  # compartment check
    reach: Callable[[Any, str, str], None]  # area check
    facility: Callable[[Any], str | None]  # the writer's facility code, if facility-scoped
    base_url: str


def _entry_error(index: int, error: FhirError) -> FhirError:
    issues = [
        Issue(
            i.severity,
            i.code,
            Text(f"Mục {index}: {i.text.vi}", f"Entry {index}: {i.text.en}"),
            f"Bundle.entry[{index}]" + (f".resource.{i.expression}" if i.expression else ""),
        )
        for i in error.issues
    ]
    return FhirError(error.status, issues)


def _bad(index: int, vi: str, en: str, where: str = "request") -> FhirError:
    return FhirError.single(
        400,
        "invalid",
        f"Mục {index}: {vi}",
        f"Entry {index}: {en}",
        f"Bundle.entry[{index}].{where}",
    )


def _rewrite(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _rewrite(v, mapping) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in mapping:
            out["reference"] = mapping[ref]
        return out
    if isinstance(value, list):
        return [_rewrite(v, mapping) for v in value]
    return value


def process_bundle(
    session: Session, context: EntryContext, bundle: dict[str, Any]
) -> dict[str, Any]:
    kind = bundle.get("type")
    if bundle.get("resourceType") != "Bundle" or kind not in ("transaction", "batch"):
        raise FhirError.single(
            400,
            "invalid",
            "Cần một Bundle loại transaction hoặc batch.",
            "Expected a Bundle of type transaction or batch.",
            "Bundle.type",
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise FhirError.single(
            400,
            "too-costly",
            f"Bundle có tối đa {MAX_ENTRIES} mục.",
            f"A bundle may hold at most {MAX_ENTRIES} entries.",
            "Bundle.entry",
        )
    store = RecordStore(session)
    context = _preauthorised(context, entries, kind)
    planned = [(i, e) for i, e in enumerate(entries)]
    if kind == "transaction":
        planned.sort(key=lambda item: ORDER.get(_method(item[0], item[1]), 9))
    mapping = _assign_ids(entries) if kind == "transaction" else {}
    if kind == "transaction":
        _resolve_conditionals(session, context, entries, mapping)
    responses: dict[int, dict[str, Any]] = {}
    for index, entry in planned:
        if kind == "transaction":
            try:
                responses[index] = _one(session, store, context, index, entry, mapping)
            except FhirError as error:
                raise _entry_error(index, error) from None
        else:
            deferred.flush(session)  # what is held before a savepoint must outlive its rollback
            savepoint = session.begin_nested()
            try:
                responses[index] = _one(session, store, context, index, entry, {})
                savepoint.commit()
            except (FhirError, DomainError) as error:
                savepoint.rollback()
                error = _as_fhir(error)
                responses[index] = {
                    "response": {
                        "status": str(error.status),
                        "outcome": operation_outcome(error.issues),
                    }
                }
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": f"{kind}-response",
        "entry": [responses[i] for i in range(len(entries))],
    }


def _as_fhir(error: FhirError | DomainError) -> FhirError:
    if isinstance(error, FhirError):
        return error
    return FhirError(
        error.status,
        [
            Issue(
                "error",
                "forbidden" if error.status == 403 else "security",
                error.message,
                error.field,
            )
        ],
    )


def _preauthorised(context: EntryContext, entries: list[Any], kind: str) -> EntryContext:
    """Authorise every (type, interaction) the bundle needs before anything is written.

    A refusal is audited in its own transaction; doing that halfway through a transaction
    would wait on the transaction's own write lock (SQLite). In a transaction any refusal
    fails the whole bundle; in a batch only the entries it concerns.
    """
    decisions: dict[tuple[str, str], Any] = {}
    for index, entry in enumerate(entries):
        try:
            method = _method(index, entry)
            resource_type, _id, _query = _target(index, entry["request"].get("url"))
        except FhirError:
            continue  # reported when the entry itself is processed
        action = "read" if method in ("GET", "HEAD") else "write"
        if (resource_type, action) in decisions:
            continue
        try:
            decisions[(resource_type, action)] = context.authorize(resource_type, action)
        except (DomainError, FhirError) as error:
            if kind == "transaction":
                raise _entry_error(index, _as_fhir(error)) from None
            decisions[(resource_type, action)] = error

    def decided(resource_type: str, action: str) -> Any:
        decision = decisions.get((resource_type, action))
        if decision is None:
            decision = context.authorize(resource_type, action)
        if isinstance(decision, (DomainError, FhirError)):
            raise decision
        return decision

    return EntryContext(
        authorize=decided,
        guard=context.guard,
        reach=context.reach,
        facility=context.facility,
        base_url=context.base_url,
    )


def _method(index: int, entry: Any) -> str:
    request = entry.get("request") if isinstance(entry, dict) else None
    method = request.get("method") if isinstance(request, dict) else None
    if method not in ORDER:
        raise _bad(
            index,
            "thiếu hoặc sai request.method.",
            "request.method is missing or wrong.",
            "request.method",
        )
    return method


def _assign_ids(entries: list[Any]) -> dict[str, str]:
    """Ids for every POSTed urn:uuid, chosen before any entry runs so references resolve."""
    mapping: dict[str, str] = {}
    for entry in entries:
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        request = entry.get("request") if isinstance(entry, dict) else None
        if (
            isinstance(full_url, str)
            and full_url.startswith("urn:uuid:")
            and isinstance(resource, dict)
            and isinstance(request, dict)
            and request.get("method") == "POST"
        ):
            mapping[full_url] = f"{resource.get('resourceType')}/{uuid.uuid4()}"
    return mapping


def _resolve_conditionals(
    session: Session, context: EntryContext, entries: list[Any], mapping: dict[str, str]
) -> None:
    """Point urn:uuid references at resources a conditional create will find, before any
    entry is written, so every entry of the transaction sees the same answer."""
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if not (
            isinstance(request, dict)
            and request.get("method") == "POST"
            and request.get("ifNoneExist")
            and full_url in mapping
        ):
            continue
        resource_type = mapping[full_url].partition("/")[0]
        try:
            found = find_existing(
                session,
                context.authorize(resource_type, "write"),
                resource_type,
                request["ifNoneExist"],
            )
        except FhirError as error:
            raise _entry_error(index, error) from None
        if found is not None:
            mapping[full_url] = f"{resource_type}/{found.id}"


def _target(index: int, url: Any) -> tuple[str, str | None, list[tuple[str, str]]]:
    if not isinstance(url, str) or not url:
        raise _bad(index, "thiếu request.url.", "request.url is missing.", "request.url")
    parts = urlsplit(url)
    path = parts.path.strip("/").removeprefix("fhir/")
    segments = path.split("/")
    resource_type = segments[0]
    resource_id = segments[1] if len(segments) > 1 and segments[1] else None
    return resource_type, resource_id, parse_qsl(parts.query)


def _one(
    session: Session,
    store: RecordStore,
    context: EntryContext,
    index: int,
    entry: Any,
    mapping: dict[str, str],
) -> dict[str, Any]:
    method = _method(index, entry)
    request = entry["request"]
    resource_type, resource_id, query = _target(index, request.get("url"))
    resource = entry.get("resource")
    if resource is not None:
        resource = _rewrite(resource, mapping)
    if method in ("GET", "HEAD"):
        access = context.authorize(resource_type, "read")
        if resource_id:
            stored = store.read(resource_type, resource_id)
            person = stored.person_id
            context.guard(access, resource_type, resource_id, person)
            context.reach(access, resource_type, resource_id)
            access.audit(
                session,
                "fhir.read",
                resource_type=resource_type,
                resource_id=resource_id,
                person_id=person,
            )
            return {"resource": stored.resource, "response": {"status": "200", "etag": stored.etag}}
        plan = parse_search(resource_type, query, strict=False)
        result = run_search(session, plan, access.compartment, access.principal.area)
        access.audit(
            session,
            "fhir.search",
            resource_type=resource_type,
            detail={"matches": len(result.matches)},
        )
        return {
            "resource": {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": result.total,
                "entry": [{"resource": r.content} for r in result.matches],
            },
            "response": {"status": "200"},
        }
    access = context.authorize(resource_type, "write")
    if method == "DELETE":
        if not resource_id:
            raise _bad(index, "DELETE cần Type/id.", "DELETE needs Type/id.", "request.url")
        person = store.person_of(resource_type, resource_id)
        context.guard(access, resource_type, resource_id, person)
        # As the REST delete: a resource no person owns (an Organization a facility wrote)
        # is still inside or outside the caller's area.
        context.reach(access, resource_type, resource_id)
        version = store.delete(resource_type, resource_id)
        access.audit(
            session,
            "fhir.delete",
            resource_type=resource_type,
            resource_id=resource_id,
            person_id=person,
        )
        return {"response": {"status": "204" if version else "404"}}
    if not isinstance(resource, dict):
        raise _bad(index, "thiếu resource.", "resource is missing.", "resource")
    if method == "POST":
        condition = request.get("ifNoneExist")
        if condition:
            plan = parse_search(resource_type, parse_qsl(condition.removeprefix("?")), strict=True)
            plan.count, plan.total = 2, "none"
            existing = run_search(session, plan, access.compartment).matches
            if len(existing) > 1:
                raise FhirError.single(
                    412,
                    "multiple-matches",
                    "ifNoneExist khớp nhiều tài nguyên.",
                    "ifNoneExist matches several resources.",
                )
            if existing:
                found = existing[0]
                full_url = entry.get("fullUrl")
                if isinstance(full_url, str) and full_url in mapping:
                    # later entries must point at the resource that already exists
                    mapping[full_url] = f"{resource_type}/{found.id}"
                return {
                    "response": {
                        "status": "200",
                        "location": f"{resource_type}/{found.id}/_history/{found.version_id}",
                    }
                }
        full_url = entry.get("fullUrl")
        new_id = mapping.get(full_url, "").partition("/")[2] if isinstance(full_url, str) else ""
        stored = store.create(
            resource,
            resource_id=new_id or None,
            facility_code=context.facility(access),
            fresh_id=bool(new_id),
        )
    else:
        if not resource_id:
            raise _bad(index, "PUT cần Type/id.", "PUT needs Type/id.", "request.url")
        context.guard(
            access, resource_type, resource_id, store.person_of(resource_type, resource_id)
        )
        if_match = request.get("ifMatch")
        version = int(str(if_match).removeprefix("W/").strip('"')) if if_match else None
        stored = store.update(
            resource_type,
            resource_id,
            resource,
            if_match=version,
            facility_code=context.facility(access),
        )
    new_id = stored.resource["id"]
    person = stored.person_id
    context.guard(access, resource_type, new_id, person)
    context.reach(access, resource_type, new_id)
    access.audit(
        session,
        "fhir.create" if stored.created else "fhir.update",
        resource_type=resource_type,
        resource_id=new_id,
        person_id=person,
    )
    return {
        "fullUrl": f"{context.base_url}/{resource_type}/{new_id}",
        "resource": stored.resource,
        "response": {
            "status": "201 Created" if stored.created else "200 OK",
            "location": f"{resource_type}/{new_id}/_history/{stored.version_id}",
            "etag": stored.etag,
            "lastModified": instant(stored.last_updated),
        },
    }
