"""FHIR search over HTTP on both databases: parameter types, prefixes, chains, includes, paging."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import add_user, bearer, token_for
from ytehub.core.db import Database

FHIR = {"content-type": "application/fhir+json"}


def _patient(pid: str, family: str, given: list[str], cccd: str, birth: str, sex: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:ytehub:sid:cccd", "value": cccd}],
        "name": [{"family": family, "given": given}],
        "gender": sex,
        "birthDate": birth,
        "address": [{"city": "Thành phố Hồ Chí Minh", "line": ["12 Lê Lợi"]}],
    }


@pytest.fixture
def world(client: TestClient, db: Database) -> dict[str, str]:
    add_user(db, "bs.an", "clinician")
    headers = {**bearer(token_for(client, "bs.an")), **FHIR}
    people = [
        _patient("p1", "Nguyễn", ["Văn", "An"], "079090001111", "1990-05-17", "male"),
        _patient("p2", "Trần", ["Thị", "Bình"], "079185002222", "1985-11-02", "female"),
        _patient("p3", "Nguyễn", ["Thị", "Ánh"], "001201003333", "2001-01-30", "female"),
    ]
    for person in people:
        assert (
            client.put(f"/fhir/Patient/{person['id']}", json=person, headers=headers).status_code
            == 201
        )
    encounters = [
        ("e1", "p1", "2025-08-01T08:00:00+07:00", "2025-08-03T10:00:00+07:00"),
        ("e2", "p2", "2025-09-10T09:00:00+07:00", "2025-09-10T11:00:00+07:00"),
        ("e3", "p1", "2025-10-05T07:30:00+07:00", "2025-10-05T09:00:00+07:00"),
    ]
    for eid, pid, start, end in encounters:
        enc = {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": start, "end": end},
        }
        assert client.put(f"/fhir/Encounter/{eid}", json=enc, headers=headers).status_code == 201
    for oid, pid, value in (("o1", "p1", 38.9), ("o2", "p2", 36.6), ("o3", "p3", 40.1)):
        obs = {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": "2025-08-01T09:00:00+07:00",
            "valueQuantity": {
                "value": value,
                "unit": "Cel",
                "system": "http://unitsofmeasure.org",
                "code": "Cel",
            },
        }
        assert client.put(f"/fhir/Observation/{oid}", json=obs, headers=headers).status_code == 201
    return headers


def _ids(client: TestClient, url: str, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return sorted(
        e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"
    )


def test_names_with_or_without_diacritics(client: TestClient, world: dict[str, str]) -> None:
    assert _ids(client, "/fhir/Patient", world, name="nguyen van an") == ["p1"]
    assert _ids(client, "/fhir/Patient", world, name="NGUYỄN") == ["p1", "p3"]
    assert _ids(client, "/fhir/Patient", world, family="tran") == ["p2"]
    assert _ids(client, "/fhir/Patient", world, **{"given:exact": "Ánh"}) == ["p3"]
    assert _ids(client, "/fhir/Patient", world, **{"given:exact": "Anh"}) == []
    assert _ids(client, "/fhir/Patient", world, **{"name:contains": "binh"}) == ["p2"]


def test_tokens(client: TestClient, world: dict[str, str]) -> None:
    assert _ids(client, "/fhir/Patient", world, identifier="urn:ytehub:sid:cccd|079185002222") == [
        "p2"
    ]
    assert _ids(client, "/fhir/Patient", world, identifier="001201003333") == ["p3"]
    assert _ids(client, "/fhir/Patient", world, gender="female") == ["p2", "p3"]
    assert _ids(client, "/fhir/Patient", world, **{"gender:not": "female"}) == ["p1"]
    assert _ids(client, "/fhir/Patient", world, gender="male,female") == ["p1", "p2", "p3"]
    assert _ids(client, "/fhir/Patient", world, _id="p1,p3") == ["p1", "p3"]


def test_dates_and_prefixes(client: TestClient, world: dict[str, str]) -> None:
    assert _ids(client, "/fhir/Patient", world, birthdate="1990") == ["p1"]
    assert _ids(client, "/fhir/Patient", world, birthdate="1985-11") == ["p2"]
    assert _ids(client, "/fhir/Patient", world, birthdate="ge1990-01-01") == ["p1", "p3"]
    assert _ids(client, "/fhir/Patient", world, birthdate="lt1990-05-17") == ["p2"]
    response = client.get(
        "/fhir/Encounter",
        params=[("date", "ge2025-09-01"), ("date", "le2025-12-31")],
        headers=world,
    )
    assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == ["e2", "e3"]


def test_references_and_chains(client: TestClient, world: dict[str, str]) -> None:
    assert _ids(client, "/fhir/Encounter", world, subject="Patient/p1") == ["e1", "e3"]
    assert _ids(client, "/fhir/Encounter", world, patient="p2") == ["e2"]
    assert _ids(
        client,
        "/fhir/Encounter",
        world,
        **{"subject.identifier": "urn:ytehub:sid:cccd|079090001111"},
    ) == ["e1", "e3"]
    assert _ids(client, "/fhir/Observation", world, **{"patient.gender": "female"}) == ["o2", "o3"]


def test_quantities(client: TestClient, world: dict[str, str]) -> None:
    assert _ids(client, "/fhir/Observation", world, **{"value-quantity": "gt38"}) == ["o1", "o3"]
    assert _ids(
        client,
        "/fhir/Observation",
        world,
        **{"value-quantity": "36.6|http://unitsofmeasure.org|Cel"},
    ) == ["o2"]


def test_include_and_revinclude(client: TestClient, world: dict[str, str]) -> None:
    bundle = client.get(
        "/fhir/Encounter", params={"_id": "e2", "_include": "Encounter:subject"}, headers=world
    ).json()
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {("Encounter", "match"), ("Patient", "include")}
    bundle = client.get(
        "/fhir/Patient", params={"_id": "p1", "_revinclude": "Encounter:subject"}, headers=world
    ).json()
    included = sorted(
        e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"
    )
    assert included == ["e1", "e3"]


def test_sort_count_paging_and_total(client: TestClient, world: dict[str, str]) -> None:
    first = client.get(
        "/fhir/Patient", params={"_sort": "-birthdate", "_count": "2"}, headers=world
    ).json()
    assert first["total"] == 3
    assert [e["resource"]["id"] for e in first["entry"]] == ["p3", "p1"]
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(following, headers=world).json()
    assert [e["resource"]["id"] for e in second["entry"]] == ["p2"]
    assert not any(link["relation"] == "next" for link in second["link"])
    assert any(link["relation"] == "previous" for link in second["link"])
    counted = client.get("/fhir/Patient", params={"_summary": "count"}, headers=world).json()
    assert counted["total"] == 3 and counted["entry"] == []
    subset = client.get(
        "/fhir/Patient", params={"_id": "p1", "_elements": "gender"}, headers=world
    ).json()["entry"][0]["resource"]
    assert "name" not in subset and subset["gender"] == "male"
    assert subset["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_post_search(client: TestClient, world: dict[str, str]) -> None:
    response = client.post(
        "/fhir/Patient/_search",
        data={"family": "nguyen"},
        headers=bearer(world["Authorization"].split()[1]),
    )
    assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == ["p1", "p3"]


def test_unknown_and_malformed_parameters(client: TestClient, world: dict[str, str]) -> None:
    lenient = client.get("/fhir/Patient", params={"shoe-size": "42"}, headers=world).json()
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["resource"]["issue"][0]["severity"] == "warning"
    strict = client.get(
        "/fhir/Patient", params={"shoe-size": "42"}, headers={**world, "Prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["expression"] == ["shoe-size"]
    bad_date = client.get("/fhir/Patient", params={"birthdate": "1990-13"}, headers=world)
    assert bad_date.status_code == 400 and bad_date.json()["resourceType"] == "OperationOutcome"


def test_conditional_create(client: TestClient, world: dict[str, str]) -> None:
    body = _patient("ignored", "Lê", ["Văn", "Cường"], "079090009999", "1970-01-01", "male")
    del body["id"]
    condition = {"If-None-Exist": "identifier=urn:ytehub:sid:cccd|079090009999"}
    made = client.post("/fhir/Patient", json=body, headers={**world, **condition})
    assert made.status_code == 201
    again = client.post("/fhir/Patient", json=body, headers={**world, **condition})
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
    many = client.post(
        "/fhir/Patient", json=body, headers={**world, "If-None-Exist": "family=nguyen"}
    )
    assert many.status_code == 412


def test_citizen_search_is_confined(
    client: TestClient, db: Database, world: dict[str, str]
) -> None:
    add_user(db, "dan.p1", "citizen", person_id="p1")
    citizen = {**bearer(token_for(client, "dan.p1")), **FHIR}
    assert _ids(client, "/fhir/Patient", citizen) == ["p1"]
    assert _ids(client, "/fhir/Encounter", citizen) == ["e1", "e3"]
    assert _ids(client, "/fhir/Observation", citizen, **{"value-quantity": "gt30"}) == ["o1"]


def test_deleted_resources_leave_search(client: TestClient, world: dict[str, str]) -> None:
    client.delete("/fhir/Encounter/e1", headers=world)
    assert _ids(client, "/fhir/Encounter", world, subject="Patient/p1") == ["e3"]


def test_metadata(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    assert (
        statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    )
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"name", "identifier", "birthdate"} <= {p["name"] for p in patient["searchParam"]}
