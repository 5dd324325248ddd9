"""The FHIR REST API over real HTTP through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import add_user, bearer, token_for
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent

FHIR = {"content-type": "application/fhir+json"}


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:ytehub:sid:cccd", "value": "079090001234"}],
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1990-05-17",
        **extra,
    }


def _clinician(client: TestClient, db: Database) -> dict[str, str]:
    add_user(db, "bs.an", "clinician")
    return {**bearer(token_for(client, "bs.an")), **FHIR}


def test_create_read_update_delete(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    created = client.post("/fhir/Patient", json=patient(), headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    pid = body["id"]
    assert body["meta"]["versionId"] == "1" and created.headers["etag"] == 'W/"1"'
    assert created.headers["location"] == f"/fhir/Patient/{pid}/_history/1"
    assert created.headers["content-type"].startswith("application/fhir+json")

    read = client.get(f"/fhir/Patient/{pid}", headers=headers)
    assert read.status_code == 200 and read.json()["name"][0]["family"] == "Nguyễn"

    changed = {**body, "gender": "female"}
    updated = client.put(
        f"/fhir/Patient/{pid}", json=changed, headers={**headers, "If-Match": 'W/"1"'}
    )
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    stale = client.put(
        f"/fhir/Patient/{pid}", json=changed, headers={**headers, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"

    first = client.get(f"/fhir/Patient/{pid}/_history/1", headers=headers)
    assert first.json()["gender"] == "male"
    history = client.get(f"/fhir/Patient/{pid}/_history", headers=headers).json()
    assert history["type"] == "history" and [e["response"]["etag"] for e in history["entry"]] == [
        'W/"2"',
        'W/"1"',
    ]

    assert client.delete(f"/fhir/Patient/{pid}", headers=headers).status_code == 204
    gone = client.get(f"/fhir/Patient/{pid}", headers=headers)
    assert gone.status_code == 410 and gone.json()["issue"][0]["code"] == "deleted"
    assert client.get(f"/fhir/Patient/{pid}/_history/2", headers=headers).status_code == 200
    again = client.put(f"/fhir/Patient/{pid}", json={**changed, "meta": {}}, headers=headers)
    assert again.status_code == 201 and again.json()["meta"]["versionId"] == "4"


def test_update_as_create_and_prefer(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    made = client.put(
        "/fhir/Patient/vn-001",
        json=patient(id="vn-001"),
        headers={**headers, "Prefer": "return=minimal"},
    )
    assert made.status_code == 201 and made.content == b""
    assert made.headers["location"] == "/fhir/Patient/vn-001/_history/1"
    outcome = client.put(
        "/fhir/Patient/vn-001",
        json=patient(id="vn-001"),
        headers={**headers, "Prefer": "return=OperationOutcome"},
    )
    assert outcome.json()["resourceType"] == "OperationOutcome"


def test_errors_are_operation_outcomes(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    bad_json = client.post("/fhir/Patient", content=b"{not json", headers=headers)
    assert bad_json.status_code == 400 and bad_json.json()["issue"][0]["code"] == "structure"
    wrong_type = client.post("/fhir/Patient", json={"resourceType": "Observation"}, headers=headers)
    assert wrong_type.status_code == 400
    assert wrong_type.json()["issue"][0]["expression"] == ["resourceType"]
    invalid = client.post("/fhir/Patient", json=patient(birthDate="1990-13-45"), headers=headers)
    assert invalid.status_code == 400
    issue = invalid.json()["issue"][0]
    assert issue["expression"] == ["Patient.birthDate"] and issue["severity"] == "error"
    missing = client.get("/fhir/Patient/nope", headers=headers)
    assert missing.status_code == 404 and missing.json()["issue"][0]["code"] == "not-found"
    unknown = client.get("/fhir/Spaceship/1", headers=headers)
    assert unknown.status_code == 404
    mismatch = client.put("/fhir/Patient/a1", json=patient(id="b2"), headers=headers)
    assert mismatch.status_code == 400
    assert client.get("/fhir/Patient/x").json()["resourceType"] == "OperationOutcome"


def test_failed_write_leaves_nothing(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    client.post("/fhir/Patient", json=patient(birthDate="bad"), headers=headers)
    history = client.get("/fhir/Patient/_history", headers=headers).json()
    assert history["total"] == 0


def test_scopes_per_type_and_interaction(client: TestClient, db: Database) -> None:
    add_user(db, "yt.xa", "vaccinator")
    vaccinator = {**bearer(token_for(client, "yt.xa")), **FHIR}
    assert client.post("/fhir/Patient", json=patient(), headers=vaccinator).status_code == 403
    immunization = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "urn:ytehub:cs:tcmr-vaccine", "code": "BCG"}]},
        "patient": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2025-08-01",
    }
    made = client.post("/fhir/Immunization", json=immunization, headers=vaccinator)
    assert made.status_code == 201, made.text
    add_user(db, "ld", "manager")
    manager = {**bearer(token_for(client, "ld")), **FHIR}
    refused = client.get(f"/fhir/Immunization/{made.json()['id']}", headers=manager)
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"


def test_citizen_sees_only_their_own_record(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    mine = client.put("/fhir/Patient/me-1", json=patient(id="me-1"), headers=headers).json()
    other = client.put("/fhir/Patient/other-1", json=patient(id="other-1"), headers=headers)
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/me-1"},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
    obs_id = client.post("/fhir/Observation", json=obs, headers=headers).json()["id"]
    add_user(db, "dan.01", "citizen", person_id=mine["id"])
    citizen = {**bearer(token_for(client, "dan.01")), **FHIR}
    assert client.get("/fhir/Patient/me-1", headers=citizen).status_code == 200
    assert client.get(f"/fhir/Observation/{obs_id}", headers=citizen).status_code == 200
    assert client.get(f"/fhir/Patient/{other.json()['id']}", headers=citizen).status_code == 403
    assert client.get("/fhir/Patient/_history", headers=citizen).status_code == 403
    with db.session() as session:
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "fhir.read", AuditEvent.actor == "dan.01")
        ).all()
    assert {e.person_id for e in reads} == {"me-1"}


def test_every_access_is_audited_with_the_person(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    client.put("/fhir/Patient/p9", json=patient(id="p9"), headers=headers)
    cond = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p9"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "A91"}]},
    }
    cid = client.post("/fhir/Condition", json=cond, headers=headers).json()["id"]
    client.get(f"/fhir/Condition/{cid}", headers={**headers, "X-Purpose-Of-Use": "TREAT"})
    with db.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("fhir.%")).order_by(AuditEvent.seq)
        ).all()
    assert [(e.action, e.resource_type, e.person_id) for e in events] == [
        ("fhir.create", "Patient", "p9"),
        ("fhir.create", "Condition", "p9"),
        ("fhir.read", "Condition", "p9"),
    ]
    assert all(e.purpose == "TREAT" for e in events)


def test_everything_and_system_history(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    client.put("/fhir/Patient/ev1", json=patient(id="ev1"), headers=headers)
    for _ in range(3):
        enc = {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/ev1"},
        }
        client.post("/fhir/Encounter", json=enc, headers=headers)
    client.put("/fhir/Patient/other", json=patient(id="other"), headers=headers)
    first = client.get(
        "/fhir/Patient/ev1/$everything", params={"_count": "3"}, headers=headers
    ).json()
    assert first["total"] == 4 and first["entry"][0]["resource"]["resourceType"] == "Patient"
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest = client.get(following, headers=headers).json()
    assert len(rest["entry"]) == 1 and rest["entry"][0]["resource"]["resourceType"] == "Encounter"
    history = client.get("/fhir/_history", headers=headers).json()
    assert history["type"] == "history" and history["total"] == 5
    add_user(db, "qt", "admin")
    admin = bearer(token_for(client, "qt"))
    assert client.get("/fhir/_history", headers=admin).status_code == 403


def test_required_code_bindings(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    response = client.post("/fhir/Patient", json=patient(gender="robot"), headers=headers)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["code"] == "code-invalid" and issue["expression"] == ["Patient.gender"]
    encounter = {"resourceType": "Encounter", "status": "done", "class": {"code": "AMB"}}
    assert client.post("/fhir/Encounter", json=encounter, headers=headers).status_code == 400


def test_conditional_update(client: TestClient, db: Database) -> None:
    headers = _clinician(client, db)
    query = "identifier=urn:ytehub:sid:cccd|079090001234"
    made = client.put(f"/fhir/Patient?{query}", json=patient(), headers=headers)
    assert made.status_code == 201
    pid = made.json()["id"]
    changed = client.put(f"/fhir/Patient?{query}", json=patient(gender="female"), headers=headers)
    assert changed.status_code == 200 and changed.json()["id"] == pid
    assert changed.json()["meta"]["versionId"] == "2"
    client.post("/fhir/Patient", json=patient(), headers=headers)  # a second match
    assert client.put(f"/fhir/Patient?{query}", json=patient(), headers=headers).status_code == 412
    assert client.put("/fhir/Patient", json=patient(), headers=headers).status_code == 400
