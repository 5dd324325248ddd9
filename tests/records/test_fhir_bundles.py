"""Transaction and batch Bundles: atomic, urn:uuid references rewritten, per-entry outcomes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import add_user, bearer, token_for
from ytehub.core.db import Database

FHIR = {"content-type": "application/fhir+json"}
PATIENT_URN = "urn:uuid:7f0c3e0a-0000-4000-8000-000000000001"


def _headers(client: TestClient, db: Database, role: str = "clinician") -> dict[str, str]:
    add_user(db, f"u.{role}", role)
    return {**bearer(token_for(client, f"u.{role}")), **FHIR}


def _transaction(encounter_status: str = "finished") -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7f0c3e0a-0000-4000-8000-000000000002",
                "resource": {
                    "resourceType": "Encounter",
                    "status": encounter_status,
                    "class": {"code": "IMP"},
                    "subject": {"reference": PATIENT_URN},
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "fullUrl": PATIENT_URN,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:ytehub:sid:cccd", "value": "079090004444"}],
                    "name": [{"family": "Phạm", "given": ["Minh"]}],
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=urn:ytehub:sid:cccd|079090004444",
                },
            },
        ],
    }


def test_transaction_rewrites_references(client: TestClient, db: Database) -> None:
    headers = _headers(client, db)
    response = client.post("/fhir", json=_transaction(), headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    encounter_entry, patient_entry = answer["entry"]
    assert encounter_entry["response"]["status"].startswith("201")
    patient_id = patient_entry["resource"]["id"]
    encounter = client.get(
        f"/fhir/{encounter_entry['response']['location'].rsplit('/_history', 1)[0]}",
        headers=headers,
    ).json()
    assert encounter["subject"]["reference"] == f"Patient/{patient_id}"
    found = client.get("/fhir/Encounter", params={"patient": patient_id}, headers=headers).json()
    assert found["total"] == 1

    again = client.post("/fhir", json=_transaction(), headers=headers).json()
    assert again["entry"][1]["response"]["status"] == "200", "ifNoneExist found the patient"
    second = again["entry"][0]["resource"]
    assert second["subject"]["reference"] == f"Patient/{patient_id}"


def test_failed_transaction_leaves_nothing(client: TestClient, db: Database) -> None:
    headers = _headers(client, db)
    bad = _transaction()
    bad["entry"][0]["resource"]["period"] = {"start": "2025-13-45"}
    response = client.post("/fhir", json=bad, headers=headers)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"][0].startswith("Bundle.entry[0]")
    assert client.get("/fhir/Patient", headers=headers).json()["total"] == 0
    assert client.get("/fhir/Encounter", headers=headers).json()["total"] == 0


def test_batch_reports_each_entry(client: TestClient, db: Database) -> None:
    headers = _headers(client, db)
    client.put("/fhir/Patient/b1", json={"resourceType": "Patient", "id": "b1"}, headers=headers)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/b1"}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {
                "resource": {"resourceType": "Patient", "birthDate": "bad"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "gender": "female"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient?gender=female"}},
            {"request": {"method": "DELETE", "url": "Patient/b1"}},
        ],
    }
    answer = client.post("/fhir", json=batch, headers=headers).json()
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses[0] == "200" and statuses[1] == "404" and statuses[2] == "400"
    assert statuses[3].startswith("201") and statuses[5] == "204"
    assert answer["entry"][2]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert answer["type"] == "batch-response"


def test_bundle_authorisation(client: TestClient, db: Database) -> None:
    headers = _headers(client, db, role="vaccinator")
    response = client.post("/fhir", json=_transaction(), headers=headers)
    assert response.status_code == 403 and response.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient", headers=headers).json()["total"] == 0


def test_not_a_bundle(client: TestClient, db: Database) -> None:
    headers = _headers(client, db)
    response = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=headers
    )
    assert response.status_code == 400 and response.json()["issue"][0]["expression"] == [
        "Bundle.type"
    ]
