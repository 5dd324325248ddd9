"""Area scopes filter FHIR results: a commune sees its residents, a facility what it wrote."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import add_user, bearer, token_for
from ytehub.core.db import Database
from ytehub.core.security import AreaScope, service

FHIR = {"content-type": "application/fhir+json"}
COMMUNE = "urn:ytehub:ext:commune-code"


def _resident(pid: str, commune: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Lê", "given": ["Hoa"]}],
        "address": [
            {"extension": [{"url": COMMUNE, "valueCode": commune}], "city": "Thành phố Hồ Chí Minh"}
        ],
    }


def _encounter(eid: str, pid: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
    }


def test_commune_scope(client: TestClient, db: Database) -> None:
    add_user(db, "bs.tinh", "clinician")
    province = {**bearer(token_for(client, "bs.tinh")), **FHIR}
    for pid, commune in (("r1", "26740"), ("r2", "26743"), ("r3", "00640")):
        client.put(f"/fhir/Patient/{pid}", json=_resident(pid, commune), headers=province)
        client.put(f"/fhir/Encounter/e-{pid}", json=_encounter(f"e-{pid}", pid), headers=province)
    add_user(db, "bs.xa", "clinician", AreaScope.communes(["26740", "26743"]))
    local = {**bearer(token_for(client, "bs.xa")), **FHIR}
    patients = client.get("/fhir/Patient", headers=local).json()
    assert sorted(e["resource"]["id"] for e in patients["entry"]) == ["r1", "r2"]
    encounters = client.get("/fhir/Encounter", headers=local).json()
    assert sorted(e["resource"]["id"] for e in encounters["entry"]) == ["e-r1", "e-r2"]
    assert client.get("/fhir/Patient/r3", headers=local).status_code == 403
    assert client.get("/fhir/Encounter/e-r3", headers=local).status_code == 403
    outside = client.put("/fhir/Patient/r4", json=_resident("r4", "00640"), headers=local)
    assert outside.status_code == 403
    assert client.get("/fhir/Patient/r4", headers=province).status_code == 404, "rolled back"
    included = client.get(
        "/fhir/Encounter", params={"_include": "Encounter:subject"}, headers=local
    ).json()
    assert {e["resource"]["id"] for e in included["entry"]} == {"e-r1", "e-r2", "r1", "r2"}


def test_facility_scope(client: TestClient, db: Database) -> None:
    with db.session() as session:
        _c, secret_a = service.create_client(
            session, client_id="bv-a", name="A", facility_code="79001"
        )
        _c, secret_b = service.create_client(
            session, client_id="bv-b", name="B", facility_code="79002"
        )

    def token(client_id: str, secret: str) -> dict[str, str]:
        answer = client.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        return {**bearer(answer.json()["access_token"]), **FHIR}

    a, b = token("bv-a", secret_a), token("bv-b", secret_b)
    assert (
        client.put("/fhir/Patient/f1", json=_resident("f1", "26740"), headers=a).status_code == 201
    )
    assert (
        client.put("/fhir/Encounter/fe1", json=_encounter("fe1", "f1"), headers=a).status_code
        == 201
    )
    assert client.get("/fhir/Patient/f1", headers=a).status_code == 200
    assert client.get("/fhir/Patient/f1", headers=b).status_code == 403
    assert client.get("/fhir/Encounter", headers=b).json()["total"] == 0
    assert client.get("/fhir/Encounter", headers=a).json()["total"] == 1
    # What no person owns (an Organization) is still inside one facility's area: another
    # facility can delete it neither alone nor inside a transaction Bundle.
    organization = {"resourceType": "Organization", "id": "org-a", "name": "Khoa A"}
    assert client.put("/fhir/Organization/org-a", json=organization, headers=a).status_code == 201
    assert client.delete("/fhir/Organization/org-a", headers=b).status_code == 403
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": "Organization/org-a"}}],
    }
    assert client.post("/fhir", json=bundle, headers=b).status_code == 403
    assert client.get("/fhir/Organization/org-a", headers=a).status_code == 200
