"""The FHIR hot path (``FastInteractions``) takes exactly the requests the router would give the
generic read, search, create, update and delete routes, and answers them as those routes do."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match

from tests.conftest import add_user, bearer, token_for
from ytehub.api import create_app
from ytehub.core.db import Database
from ytehub.core.settings import Settings
from ytehub.records.api import FastInteractions

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
PATHS = (
    "/fhir",
    "/fhir/",
    "/fhir/metadata",
    "/fhir/_history",
    "/fhir/Patient",
    "/fhir/Patient/",
    "/fhir/Observation",
    "/fhir/Unknown",
    "/fhir/Patient/abc-1",
    "/fhir/Patient/_history",
    "/fhir/Patient/_search",
    "/fhir/Patient/$match",
    "/fhir/Patient/$everything",
    "/fhir/Patient/abc/$everything",
    "/fhir/Patient/abc/$summary",
    "/fhir/Patient/abc/_history",
    "/fhir/Patient/abc/_history/2",
    "/fhir/metadata/x",
    "/fhir/_history/x",
    "/fhir/Patient//x",
    "/fhirx/Patient",
    "/api/v1/users",
)


def _scope(method: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": root_path + path,
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
    }


def _endpoint_without_fast_path(app: FastAPI, scope: dict[str, Any]) -> Any:
    """The endpoint the router's own routes give this request (the first full match)."""
    for route in app.router.routes:
        if isinstance(route, FastInteractions):
            continue
        match, child = route.matches(dict(scope))
        if match is not Match.FULL:
            continue
        if hasattr(route, "_match"):  # a router included in the application
            _, _, chosen, _ = route._match(dict(scope))
            return getattr(chosen, "endpoint", chosen)
        return child.get("endpoint", route)
    return None


@pytest.mark.parametrize("root_path", ["", "/ytehub"])
def test_fast_path_takes_what_the_router_would_take(tmp_path, root_path: str) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path, secret_key="k" * 32, _env_file=None))
    fast = next(r for r in app.router.routes if isinstance(r, FastInteractions))
    taken = 0
    for method in METHODS:
        for path in PATHS:
            scope = _scope(method, path, root_path)
            match, child = fast.matches(scope)
            if match is Match.NONE:
                continue
            taken += 1
            assert child["endpoint"] is _endpoint_without_fast_path(app, scope), (method, path)
    assert taken >= 8


def test_fast_path_answers_like_the_routes(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    headers = {**bearer(token_for(client, "bs.an")), "content-type": "application/fhir+json"}
    body = {"resourceType": "Patient", "gender": "male"}

    assert client.get("/fhir/Patient/x").status_code == 401
    bad = client.post("/fhir/Patient", content=b"{", headers=headers)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    unauthenticated_bad = client.post("/fhir/Patient", content=b"{")
    assert unauthenticated_bad.status_code == 400, "the body is read before the token"
    assert client.get("/fhir/Nothing/1", headers=headers).status_code == 404

    created = client.post("/fhir/Patient", json=body, headers={**headers, "x-request-id": "r1"})
    assert created.status_code == 201 and created.headers["x-request-id"] == "r1"
    assert created.headers["x-frame-options"] == "DENY"
    pid = created.json()["id"]
    assert created.headers["location"] == f"/fhir/Patient/{pid}/_history/1"
    read = client.get(f"/fhir/Patient/{pid}", headers=headers)
    assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
    assert "last-modified" in read.headers
    assert client.get("/fhir/Patient", headers=headers).json()["total"] == 1
    updated = client.put(f"/fhir/Patient/{pid}", json={**body, "id": pid}, headers=headers)
    assert updated.status_code == 200 and updated.headers["etag"] == 'W/"2"'
    assert client.delete(f"/fhir/Patient/{pid}", headers=headers).status_code == 204
    assert client.get(f"/fhir/Patient/{pid}", headers=headers).status_code == 410
