"""FHIR R4 REST API (/fhir): read, vread, create, update, delete, history.

Handlers parse the request, authorise it (scope per resource type and interaction, citizens
confined to their own compartment), call the record store, audit, and shape the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from ytehub.api.context import request_language
from ytehub.api.deps import (
    Access,
    authorize_resource,
    current_principal,
    get_session,
    request_session,
)
from ytehub.core.security import Principal, Scope, allows
from ytehub.records.bundles import EntryContext, process_bundle
from ytehub.records.capability import capability_statement
from ytehub.records.errors import FhirError, operation_outcome
from ytehub.records.fhirdate import parse_fhir_date
from ytehub.records.query import SearchPlan, format_search_url, parse_search
from ytehub.records.search import SearchResult, find_existing, offset_of, run_search, visible
from ytehub.records.store import RecordStore, Stored, instant
from ytehub.records.validation import is_resource_type

FHIR_JSON = "application/fhir+json"
router = APIRouter(prefix="/fhir", tags=["FHIR R4"])


def fhir_base(request: Request) -> str:
    """This server's FHIR base URL, for fullUrls and links."""
    return str(request.base_url).rstrip("/") + "/fhir"


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=FHIR_JSON)


def _type(resource_type: str) -> str:
    if not is_resource_type(resource_type):
        raise FhirError.single(
            404,
            "not-supported",
            f"Loại tài nguyên không được hỗ trợ: {resource_type}.",
            f"Unsupported resource type: {resource_type}.",
        )
    return resource_type


async def fhir_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError.single(
            400, "structure", f"JSON không hợp lệ: {exc}.", f"Invalid JSON: {exc}."
        ) from None
    if not isinstance(body, dict):
        raise FhirError.single(
            400,
            "structure",
            "Nội dung phải là một đối tượng JSON.",
            "The body must be a JSON object.",
        )
    return body


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    """A POSTed _search form, read on the event loop so the handler can run in a thread."""
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


def _if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise FhirError.single(
            400, "invalid", f"If-Match không hợp lệ: {header}.", f"Invalid If-Match: {header}."
        )
    return int(value)


def _written(request: Request, stored: Stored, resource_type: str) -> Response:
    """Answer a write as `Prefer: return=` asks (representation by default)."""
    resource_id = stored.resource["id"]
    headers = {
        "ETag": stored.etag,
        "Last-Modified": instant(stored.last_updated),
        "Location": f"/fhir/{resource_type}/{resource_id}/_history/{stored.version_id}",
    }
    status = 201 if stored.created else 200
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    if "return=OperationOutcome" in prefer:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": f"{resource_type}/{resource_id} v{stored.version_id} stored",
                }
            ],
        }
        return fhir_response(outcome, status, headers)
    return fhir_response(stored.resource, status, headers)


def _guard_compartment(
    access: Access, resource_type: str, resource_id: str, person_id: str | None
) -> None:
    if access.compartment is None:
        return
    own = person_id == access.compartment or (
        resource_type == "Patient" and resource_id == access.compartment
    )
    if not own:
        raise FhirError.single(
            403,
            "forbidden",
            "Người dân chỉ được xem hồ sơ của chính mình.",
            "Citizens may only access their own record.",
        )


def _reach(session: Session, access: Access, resource_type: str, resource_id: str) -> None:
    """Refuse what lies outside the caller's area (communes, or facility)."""
    if not visible(session, resource_type, resource_id, access.principal.area):
        raise FhirError.single(
            403,
            "forbidden",
            f"{resource_type}/{resource_id} nằm ngoài địa bàn được giao.",
            f"{resource_type}/{resource_id} is outside your assigned area.",
        )


def writer_facility(access: Access) -> str | None:
    area = access.principal.area
    return area.codes[0] if area.kind == "facility" else None


def _access(request: Request, principal: Principal, resource_type: str, action: str) -> Access:
    return authorize_resource(request, principal, _type(resource_type), action)


@router.post("")
@router.post("/")
def bundle(
    request: Request,
    body: dict[str, Any] = Depends(fhir_body),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    """Batch or transaction Bundle."""
    context = EntryContext(
        authorize=lambda resource_type, action: _access(request, principal, resource_type, action),
        guard=_guard_compartment,
        reach=lambda access, resource_type, resource_id: _reach(
            session, access, resource_type, resource_id
        ),
        facility=writer_facility,
        base_url=fhir_base(request),
    )
    answer = process_bundle(session, context, body)
    session.commit()
    return fhir_response(answer)


@router.get("/metadata")
def metadata(request: Request) -> Response:
    """The CapabilityStatement, generated from what is implemented (no authentication)."""
    return fhir_response(capability_statement(fhir_base(request)))


def _searchset(request: Request, plan: SearchPlan, result: SearchResult) -> dict[str, Any]:
    base = fhir_base(request)
    here = f"{base}/{plan.resource_type}"
    links = [{"relation": "self", "url": f"{here}?{format_search_url(plan)}"}]
    page_end = result.offset + len(result.matches)
    if len(result.matches) == plan.count and (result.total is None or page_end < result.total):
        following = replace(plan, cursor=f"o{page_end}")
        links.append({"relation": "next", "url": f"{here}?{format_search_url(following)}"})
    if result.offset > 0:
        start = max(result.offset - plan.count, 0)
        before = replace(plan, cursor=f"o{start}" if start else None)
        links.append({"relation": "previous", "url": f"{here}?{format_search_url(before)}"})
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{row.resource_type}/{row.id}",
            "resource": _elements(row.content or {}, plan.elements),
            "search": {"mode": "match"},
        }
        for row in result.matches
    ]
    entries += [
        {
            "fullUrl": f"{base}/{row.resource_type}/{row.id}",
            "resource": row.content,
            "search": {"mode": "include"},
        }
        for row in result.includes
    ]
    if plan.warnings:
        entries.append(
            {
                "resource": operation_outcome(plan.warnings, request_language(request)),
                "search": {"mode": "outcome"},
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entries,
    }
    if result.total is not None:
        bundle["total"] = result.total
    return bundle


def _elements(resource: dict[str, Any], elements: tuple[str, ...]) -> dict[str, Any]:
    if not elements:
        return resource
    kept = {k: v for k, v in resource.items() if k in {"resourceType", "id", "meta", *elements}}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [
        *meta.get("tag", []),
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED",
        },
    ]
    kept["meta"] = meta
    return kept


def _search(
    request: Request,
    session: Session,
    principal: Principal,
    resource_type: str,
    pairs: list[tuple[str, str]],
) -> Response:
    access = _access(request, principal, resource_type, "read")
    strict = "handling=strict" in request.headers.get("prefer", "")
    plan = parse_search(resource_type, pairs, strict=strict)
    result = run_search(session, plan, access.compartment, access.principal.area)
    people = sorted({row.person_id for row in [*result.matches, *result.includes] if row.person_id})
    for person in people or [None]:
        access.audit(
            session,
            "fhir.search",
            resource_type=resource_type,
            person_id=person,
            detail={"query": format_search_url(plan), "matches": len(result.matches)},
        )
    session.commit()
    return fhir_response(_searchset(request, plan, result))


@router.get("/_history")
def system_history(
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    """History across every type: for callers allowed to read everything, province-wide."""
    access = _access(request, principal, "Patient", "read")
    if (
        not allows(principal.scopes, Scope("user", "*", "read"))
        and not allows(principal.scopes, Scope("system", "*", "read"))
    ) or principal.area.kind != "province":
        raise FhirError.single(
            403,
            "forbidden",
            "Lịch sử toàn hệ thống cần quyền đọc mọi loại, toàn tỉnh.",
            "System history needs read access to every type, province-wide.",
        )
    rows = RecordStore(session).history(None, None, _since(request), _count(request))
    access.audit(session, "fhir.history", detail={"count": len(rows)})
    session.commit()
    return fhir_response(_history_bundle(rows, fhir_base(request)))


@router.get("/Patient/{patient_id}/$everything")
def everything(
    patient_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    """The Patient and every resource in their compartment, a page at a time."""
    access = _access(request, principal, "Patient", "read")
    store = RecordStore(session)
    store.read("Patient", patient_id)
    _guard_compartment(access, "Patient", patient_id, patient_id)
    _reach(session, access, "Patient", patient_id)
    count = _count(request)
    offset = offset_of(request.query_params.get("_cursor"))
    rows, total = store.compartment(patient_id, offset, count)
    rows = [r for r in rows if allows_read(principal, r.resource_type)]
    access.audit(
        session,
        "fhir.everything",
        resource_type="Patient",
        resource_id=patient_id,
        person_id=patient_id,
        detail={"returned": len(rows)},
    )
    session.commit()
    base = fhir_base(request)
    here = f"{base}/Patient/{patient_id}/$everything?_count={count}"
    links = [{"relation": "self", "url": f"{here}&_cursor=o{offset}" if offset else here}]
    if offset + count < total:
        links.append({"relation": "next", "url": f"{here}&_cursor=o{offset + count}"})
    return fhir_response(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/{r.resource_type}/{r.id}",
                    "resource": r.content,
                    "search": {"mode": "match"},
                }
                for r in rows
            ],
        }
    )


@router.get("/{resource_type}")
def search_get(
    resource_type: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    return _search(
        request, session, principal, resource_type, list(request.query_params.multi_items())
    )


@router.post("/{resource_type}/_search")
def search_post(
    resource_type: str,
    request: Request,
    form: list[tuple[str, str]] = Depends(_form_pairs),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    pairs = [*request.query_params.multi_items(), *form]
    return _search(request, session, principal, resource_type, pairs)


def allows_read(principal: Principal, resource_type: str) -> bool:
    return any(
        allows(principal.scopes, Scope(context, resource_type, "read"))
        for context in ("user", "system", "patient")
    )


@router.get("/{resource_type}/_history")
def type_history(
    resource_type: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    access = _access(request, principal, resource_type, "read")
    if access.compartment is not None:
        raise FhirError.single(
            403,
            "forbidden",
            "Người dân chỉ được xem lịch sử hồ sơ của chính mình.",
            "Citizens may only see the history of their own record.",
        )
    rows = RecordStore(session).history(resource_type, None, _since(request), _count(request))
    access.audit(session, "fhir.history", resource_type=resource_type, detail={"count": len(rows)})
    session.commit()
    return fhir_response(_history_bundle(rows, fhir_base(request)))


@router.get("/{resource_type}/{resource_id}")
def read(
    resource_type: str,
    resource_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    access = _access(request, principal, resource_type, "read")
    store = RecordStore(session)
    stored = store.read(resource_type, resource_id)
    person = stored.person_id
    _guard_compartment(access, resource_type, resource_id, person)
    _reach(session, access, resource_type, resource_id)
    access.audit(
        session, "fhir.read", resource_type=resource_type, resource_id=resource_id, person_id=person
    )
    session.commit()
    return fhir_response(
        stored.resource,
        headers={"ETag": stored.etag, "Last-Modified": instant(stored.last_updated)},
    )


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
def vread(
    resource_type: str,
    resource_id: str,
    version_id: int,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    access = _access(request, principal, resource_type, "read")
    store = RecordStore(session)
    stored = store.vread(resource_type, resource_id, version_id)
    person = store.person_of(resource_type, resource_id)
    _guard_compartment(access, resource_type, resource_id, person)
    _reach(session, access, resource_type, resource_id)
    access.audit(
        session,
        "fhir.vread",
        resource_type=resource_type,
        resource_id=resource_id,
        person_id=person,
        detail={"version": version_id},
    )
    session.commit()
    return fhir_response(stored.resource, headers={"ETag": stored.etag})


@router.post("/{resource_type}")
def create(
    resource_type: str,
    request: Request,
    body: dict[str, Any] = Depends(fhir_body),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    access = _access(request, principal, resource_type, "write")
    if body.get("resourceType") != resource_type:
        raise FhirError.single(
            400,
            "invalid",
            f"resourceType phải là {resource_type}.",
            f"resourceType must be {resource_type}.",
            "resourceType",
        )
    store = RecordStore(session)
    condition = request.headers.get("if-none-exist")
    found = find_existing(session, access, resource_type, condition) if condition else None
    if found is not None:
        access.audit(
            session,
            "fhir.create.exists",
            resource_type=resource_type,
            resource_id=found.id,
            person_id=found.person_id,
        )
        session.commit()
        return fhir_response(
            found.content,
            200,
            {
                "ETag": f'W/"{found.version_id}"',
                "Location": f"/fhir/{resource_type}/{found.id}/_history/{found.version_id}",
            },
        )
    stored = store.create(body, facility_code=writer_facility(access))
    person = stored.person_id
    _guard_compartment(access, resource_type, stored.resource["id"], person)
    _reach(session, access, resource_type, stored.resource["id"])
    access.audit(
        session,
        "fhir.create",
        resource_type=resource_type,
        resource_id=stored.resource["id"],
        person_id=person,
    )
    session.commit()
    return _written(request, stored, resource_type)


def _put(
    request: Request,
    principal: Principal,
    session: Session,
    resource_type: str,
    resource_id: str | None,
    body: dict[str, Any],
) -> Response:
    """Update by id, or — with no id — conditional update: the search in the query string
    picks the one resource to update (none: create; several: 412)."""
    access = _access(request, principal, resource_type, "write")
    store = RecordStore(session)
    facility = writer_facility(access)
    if resource_id is None:
        if not request.url.query:
            raise FhirError.single(
                400,
                "invalid",
                "Cập nhật có điều kiện cần tham số tìm kiếm.",
                "A conditional update needs search parameters.",
            )
        found = find_existing(session, access, resource_type, str(request.url.query))
        if found is None:
            stored = store.create(body, facility_code=facility)
        else:
            resource_id = found.id
            body = {**body, "id": found.id}
    if resource_id is not None:
        # Whether the caller may replace what is stored: only a citizen or an area smaller
        # than the province can be refused, so only then is the stored owner looked up.
        if access.compartment is not None or access.principal.area.kind != "province":
            before = store.person_of(resource_type, resource_id)
            if before is not None:
                _guard_compartment(access, resource_type, resource_id, before)
                _reach(session, access, resource_type, resource_id)
        stored = store.update(
            resource_type,
            resource_id,
            body,
            if_match=_if_match(request),
            facility_code=facility,
        )
    new_id = stored.resource["id"]
    person = stored.person_id
    _guard_compartment(access, resource_type, new_id, person)
    _reach(session, access, resource_type, new_id)
    access.audit(
        session,
        "fhir.create" if stored.created else "fhir.update",
        resource_type=resource_type,
        resource_id=new_id,
        person_id=person,
    )
    session.commit()
    return _written(request, stored, resource_type)


@router.put("/{resource_type}/{resource_id}")
def update(
    resource_type: str,
    resource_id: str,
    request: Request,
    body: dict[str, Any] = Depends(fhir_body),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    return _put(request, principal, session, resource_type, resource_id, body)


@router.put("/{resource_type}")
def conditional_update(
    resource_type: str,
    request: Request,
    body: dict[str, Any] = Depends(fhir_body),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    return _put(request, principal, session, resource_type, None, body)


@router.delete("/{resource_type}/{resource_id}")
def delete(
    resource_type: str,
    resource_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    access = _access(request, principal, resource_type, "write")
    store = RecordStore(session)
    person = store.person_of(resource_type, resource_id)
    _guard_compartment(access, resource_type, resource_id, person)
    _reach(session, access, resource_type, resource_id)
    version = store.delete(resource_type, resource_id)
    access.audit(
        session,
        "fhir.delete",
        resource_type=resource_type,
        resource_id=resource_id,
        person_id=person,
        detail={"version": version},
    )
    session.commit()
    headers = {"ETag": f'W/"{version}"'} if version else None
    return Response(status_code=204, headers=headers)


def _history_bundle(rows: list[Any], base: str) -> dict[str, Any]:
    entries = []
    for row in rows:
        entry: dict[str, Any] = {
            "fullUrl": f"{base}/{row.resource_type}/{row.id}",
            "request": {
                "method": row.method,
                "url": f"{row.resource_type}/{row.id}"
                if row.method != "POST"
                else row.resource_type,
            },
            "response": {
                "status": {"POST": "201", "PUT": "200", "DELETE": "204"}[row.method],
                "etag": f'W/"{row.version_id}"',
                "lastModified": instant(row.last_updated),
            },
        }
        if row.content is not None:
            entry["resource"] = row.content
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}


def _since(request: Request) -> datetime | None:
    value = request.query_params.get("_since")
    return parse_fhir_date(value).low if value else None


def _count(request: Request) -> int:
    value = request.query_params.get("_count", "50")
    if not value.isdigit() or not 0 < int(value) <= 1000:
        raise FhirError.single(
            400,
            "invalid",
            "_count phải từ 1 đến 1000.",
            "_count must be between 1 and 1000.",
            "_count",
        )
    return int(value)


@router.get("/{resource_type}/{resource_id}/_history")
def instance_history(
    resource_type: str,
    resource_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    access = _access(request, principal, resource_type, "read")
    store = RecordStore(session)
    person = store.person_of(resource_type, resource_id)
    _guard_compartment(access, resource_type, resource_id, person)
    if person is not None or resource_type == "Patient":
        _reach(session, access, resource_type, resource_id)
    rows = store.history(resource_type, resource_id, _since(request), _count(request))
    if not rows:
        store.read(resource_type, resource_id)  # raises the precise 404
    access.audit(
        session,
        "fhir.history",
        resource_type=resource_type,
        resource_id=resource_id,
        person_id=person,
    )
    session.commit()
    return fhir_response(_history_bundle(rows, fhir_base(request)))


# --- the hot path ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Interaction:
    """One route of the fast path: its handler and what the handler takes."""

    handler: Callable[..., Response]
    path_params: tuple[str, ...]
    body: bool = False


def _run(
    interaction: _Interaction,
    request: Request,
    principal: Principal,
    path: tuple[str, ...],
    body: dict[str, Any] | None,
) -> Response:
    """Call the handler with a session of its own, as `get_session` gives one, in the worker
    thread that does the work."""
    arguments: dict[str, Any] = dict(zip(interaction.path_params, path, strict=True))
    if interaction.body:
        arguments["body"] = body
    with request_session(request.app.state.db) as session:
        return interaction.handler(
            request=request, principal=principal, session=session, **arguments
        )


_READ = _Interaction(read, ("resource_type", "resource_id"))
_SEARCH = _Interaction(search_get, ("resource_type",))
_CREATE = _Interaction(create, ("resource_type",), body=True)
_UPDATE = _Interaction(update, ("resource_type", "resource_id"), body=True)
_CONDITIONAL_UPDATE = _Interaction(conditional_update, ("resource_type",), body=True)
_DELETE = _Interaction(delete, ("resource_type", "resource_id"))
# Paths that routes declared before the generic ones above take (see the router's order).
_TYPE_LEVEL_GET = frozenset({"metadata", "_history"})


def _route_path(scope: AsgiScope) -> str:
    """The path the router matches: without the application's root path (Starlette's rule)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        return "" if path == root else path[len(root) :] if path[len(root)] == "/" else path
    return path


def _interaction(method: str, path: str) -> tuple[_Interaction, tuple[str, ...]] | None:
    """The generic FHIR route this request reaches, exactly as the router would pick it, or
    None for anything else (left to the router)."""
    if not path.startswith("/fhir/"):
        return None
    parts = tuple(path[6:].split("/"))
    if not all(parts):
        return None
    if len(parts) == 1:
        if method == "GET":
            return None if parts[0] in _TYPE_LEVEL_GET else (_SEARCH, parts)
        if method == "POST":
            return _CREATE, parts
        if method == "PUT":
            return _CONDITIONAL_UPDATE, parts
    elif len(parts) == 2:
        if method == "GET":
            return None if parts[1] == "_history" else (_READ, parts)
        if method == "PUT":
            return _UPDATE, parts
        if method == "DELETE":
            return _DELETE, parts
    return None


class FastInteractions(BaseRoute):
    """Read, search, create, update and delete, the interactions the FHIR API mostly serves,
    reached without the router's scan and FastAPI's dependency solving.

    Each request paid about a tenth of its time for those: the router tried it against every
    route declared before the one it took, twice, and solved the handler's dependencies one
    by one. This route takes exactly the requests the generic routes above would take (the
    tests check it against the router), runs the same dependencies in the same order, and
    calls the same handlers, in a worker thread; errors leave through the application's
    exception handlers as before. Installed just before this module's router, so the routes
    declared before it (``$summary``, ``$match``) keep their paths; the routes above stay
    the documentation (OpenAPI) and serve the other methods (HEAD).
    """

    def matches(self, scope: AsgiScope) -> tuple[Match, AsgiScope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        found = _interaction(scope["method"], _route_path(scope))
        if found is None:
            return Match.NONE, {}
        interaction, path = found
        return Match.FULL, {
            "endpoint": interaction.handler,
            "path_params": dict(zip(interaction.path_params, path, strict=True)),
            "ytehub.fhir_interaction": found,
        }

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        interaction, path = scope["ytehub.fhir_interaction"]
        request = Request(scope, receive, send)
        body = await fhir_body(request) if interaction.body else None
        principal = await current_principal(request)
        response = await run_in_threadpool(_run, interaction, request, principal, path, body)
        await response(scope, receive, send)
