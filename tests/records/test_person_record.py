"""The personal health record over HTTP: JSON, PDF, FHIR document, console page; authorised."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, add_user, bearer, token_for
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent
from ytehub.core.security import AreaScope

FHIR = {"content-type": "application/fhir+json"}
COMMUNE = "urn:ytehub:ext:commune-code"


def _load(client: TestClient, headers: dict[str, str]) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "r1",
        "gender": "male",
        "birthDate": "1961-04-09",
        "name": [{"family": "Trần", "given": ["Văn", "Hùng"]}],
        "identifier": [{"system": "urn:ytehub:sid:cccd", "value": "079061001234"}],
        "address": [{"extension": [{"url": COMMUNE, "valueCode": "26740"}]}],
    }
    assert client.put("/fhir/Patient/r1", json=patient, headers=headers).status_code == 201
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000e1",
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "IMP",
                    },
                    "subject": {"reference": "Patient/r1"},
                    "period": {
                        "start": "2025-09-01T08:00:00+07:00",
                        "end": "2025-09-05T10:00:00+07:00",
                    },
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "Patient/r1"},
                    "encounter": {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000e1"},
                    "code": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/sid/icd-10",
                                "code": "A91",
                                "display": "Sốt xuất huyết Dengue",
                            }
                        ]
                    },
                    "recordedDate": "2025-09-01",
                },
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "Patient/r1"},
                    "clinicalStatus": {"coding": [{"code": "active"}]},
                    "code": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/sid/icd-10",
                                "code": "I10",
                                "display": "Tăng huyết áp",
                            }
                        ]
                    },
                    "onsetDateTime": "2018",
                },
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "resource": {
                    "resourceType": "Immunization",
                    "status": "completed",
                    "patient": {"reference": "Patient/r1"},
                    "vaccineCode": {"text": "Vắc xin uốn ván"},
                    "occurrenceDateTime": "2024-03-01",
                },
                "request": {"method": "POST", "url": "Immunization"},
            },
        ],
    }
    assert client.post("/fhir", json=bundle, headers=headers).status_code == 200


def test_record_json_pdf_and_document(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    headers = {**bearer(token_for(client, "bs.an")), **FHIR}
    _load(client, headers)
    record = client.get("/api/v1/persons/r1/record", headers=headers).json()
    assert record["administrative"]["full_name"] == "Trần Văn Hùng"
    assert [c["condition"]["icd10"] for c in record["history"]["chronic_conditions"]] == ["I10"]
    assert record["encounters"]["encounters"][0]["diagnoses"]
    assert record["timeline"][0]["date"].startswith("2025-09")
    pdf = client.get("/api/v1/persons/r1/record.pdf", headers=headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    document = client.get("/fhir/Patient/r1/$summary", headers=headers).json()
    assert document["type"] == "document"
    assert document["entry"][0]["resource"]["resourceType"] == "Composition"
    with db.session() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.person_id == "r1", AuditEvent.action.like("record.%")
            )
        ).all()
    assert sorted(actions) == ["record.document", "record.json", "record.pdf"]


def test_record_authorisation(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    headers = {**bearer(token_for(client, "bs.an")), **FHIR}
    _load(client, headers)
    add_user(db, "dan.r1", "citizen", person_id="r1")
    own = client.get("/api/v1/persons/r1/record", headers=bearer(token_for(client, "dan.r1")))
    assert own.status_code == 200
    add_user(db, "dan.x", "citizen", person_id="someone-else")
    other = client.get("/api/v1/persons/r1/record", headers=bearer(token_for(client, "dan.x")))
    assert other.status_code == 403
    add_user(db, "bs.xa", "clinician", AreaScope.communes(["00640"]))
    outside = client.get("/api/v1/persons/r1/record", headers=bearer(token_for(client, "bs.xa")))
    assert outside.status_code == 403
    assert client.get("/api/v1/persons/nobody/record", headers=headers).status_code == 404
    assert client.get("/api/v1/persons/r1/record").status_code == 401


def test_console_person_page(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    headers = {**bearer(token_for(client, "bs.an")), **FHIR}
    _load(client, headers)
    login = client.get("/login")
    client.post(
        "/login",
        data={
            "username": "bs.an",
            "password": PASSWORD,
            "csrf": login.cookies["ytehub_csrf"],
            "next": "/",
        },
    )
    page = client.get("/records/r1")
    assert page.status_code == 200
    assert 'data-testid="record-name">Trần Văn Hùng<' in page.text
    assert "Tăng huyết áp" in page.text and 'data-testid="timeline"' in page.text
    assert "Phường Sài Gòn" in page.text
    missing = client.get("/records/nobody")
    assert 'data-testid="record-error"' in missing.text
