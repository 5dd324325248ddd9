"""Patient/$match and the registry API over real HTTP through the ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import add_user, bearer, token_for
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent
from ytehub.core.security import AreaScope

AN = {
    "system": "79001",
    "local_id": "BN1",
    "name": "Nguyễn Văn An",
    "birth": "198503150000",
    "sex": "1",
    "document": "079085001234",
    "bhyt_card": "DN4797912345678",
    "commune": "26734",
    "phone": "0912345678",
}


def _query(**patient: Any) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": {"resourceType": "Patient", **patient}},
            {"name": "count", "valueInteger": 5},
        ],
    }


def _steward(client: TestClient, db: Database) -> dict[str, str]:
    add_user(db, "steward", "registrar")
    return bearer(token_for(client, "steward"))


def test_register_then_match_finds_the_person(client: TestClient, db: Database) -> None:
    steward = _steward(client, db)
    first = client.post("/api/v1/registry/records", json=AN, headers=steward)
    assert first.status_code == 200, first.text
    assert first.json()["action"] == "new"
    second = client.post(
        "/api/v1/registry/records",
        json={**AN, "system": "79002", "local_id": "77", "name": "NGUYEN VAN AN", "phone": None},
        headers=steward,
    )
    assert second.json()["action"] == "linked"
    person_id = first.json()["person_id"]

    add_user(db, "doctor", "clinician")
    doctor = bearer(token_for(client, "doctor"))
    answer = client.post(
        "/fhir/Patient/$match",
        json=_query(
            name=[{"text": "nguyen van an"}],
            birthDate="1985-03-15",
            gender="male",
            identifier=[{"system": "urn:ytehub:sid:cccd", "value": "079085001234"}],
        ),
        headers=doctor,
    )
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    top = bundle["entry"][0]
    assert top["resource"]["id"] == person_id
    assert top["search"]["extension"][0]["valueCode"] == "certain"
    assert top["search"]["score"] > 0.99
    facility_ids = {
        (i["system"], i["value"]) for i in top["resource"]["identifier"] if "ma-bn" in i["system"]
    }
    assert facility_ids == {
        ("urn:ytehub:sid:ma-bn:79001", "BN1"),
        ("urn:ytehub:sid:ma-bn:79002", "77"),
    }
    assert top["resource"]["name"][0]["text"] == "Nguyễn Văn An"

    view = client.get(f"/api/v1/registry/persons/{person_id}", headers=steward).json()
    assert [r["local_id"] for r in view["records"]] == ["BN1", "77"]
    assert [h["action"] for h in view["history"]] == ["new", "link"]
    with db.session() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "registry.match"))


def test_match_errors_are_operation_outcomes(client: TestClient, db: Database) -> None:
    add_user(db, "doctor", "clinician")
    doctor = bearer(token_for(client, "doctor"))
    wrong = client.post("/fhir/Patient/$match", json={"resourceType": "Patient"}, headers=doctor)
    assert wrong.status_code == 400
    assert wrong.json()["resourceType"] == "OperationOutcome"
    assert wrong.json()["issue"][0]["expression"] == ["Parameters"]
    empty = client.post("/fhir/Patient/$match", json=_query(gender="male"), headers=doctor)
    assert empty.status_code == 422
    assert "nhận diện" in empty.json()["issue"][0]["diagnostics"]
    count = _query(gender="male")
    count["parameter"][1]["valueInteger"] = 500
    too_many = client.post("/fhir/Patient/$match", json=count, headers=doctor)
    assert too_many.status_code == 400
    assert "valueInteger" in too_many.json()["issue"][0]["expression"][0]


def test_commune_scoped_users_match_only_their_residents(client: TestClient, db: Database) -> None:
    steward = _steward(client, db)
    client.post("/api/v1/registry/records", json=AN, headers=steward)
    add_user(db, "station", "clinician", AreaScope.communes(["00004"]))
    station = bearer(token_for(client, "station"))
    answer = client.post(
        "/fhir/Patient/$match",
        json=_query(identifier=[{"system": "urn:ytehub:sid:cccd", "value": "079085001234"}]),
        headers=station,
    )
    assert answer.status_code == 200
    assert answer.json()["total"] == 0


def test_review_queue_decision_and_unmerge(client: TestClient, db: Database) -> None:
    steward = _steward(client, db)
    first = client.post("/api/v1/registry/records", json=AN, headers=steward).json()
    clash = client.post(
        "/api/v1/registry/records",
        json={**AN, "system": "79003", "local_id": "X9", "sex": "2", "birth": "19620315"},
        headers=steward,
    ).json()
    assert clash["action"] == "review" and clash["reason"] == "conflict:sex"
    queue = client.get("/api/v1/registry/reviews", headers=steward).json()["items"]
    assert [item["id"] for item in queue] == [clash["review_id"]]
    decided = client.post(
        f"/api/v1/registry/reviews/{clash['review_id']}/decision",
        json={"decision": "link"},
        headers=steward,
    )
    assert decided.json() == {"id": clash["review_id"], "status": "linked"}
    again = client.post(
        f"/api/v1/registry/reviews/{clash['review_id']}/decision",
        json={"decision": "link"},
        headers=steward,
    )
    assert again.status_code == 409
    undo = client.post(f"/api/v1/registry/persons/{clash['person_id']}/unmerge", headers=steward)
    assert undo.json()["records_moved"] == 1
    view = client.get(f"/api/v1/registry/persons/{first['person_id']}", headers=steward).json()
    assert [r["local_id"] for r in view["records"]] == ["BN1"]


def test_registry_writes_need_the_steward_scope(client: TestClient, db: Database) -> None:
    add_user(db, "doctor", "clinician")
    doctor = bearer(token_for(client, "doctor"))
    refused = client.post("/api/v1/registry/records", json=AN, headers=doctor)
    assert refused.status_code == 403
    assert refused.json()["code"] == "auth.scope_missing"
