"""Console pages of the health record over HTTP: person search by name, CCCD and BHYT."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import add_user, bearer, sign_in, token_for
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent
from ytehub.core.security import AreaScope
from ytehub.web.records import query_for

COMMUNE = "urn:ytehub:ext:commune-code"


def _person(pid: str, family: str, given: list[str], cccd: str, card: str, commune: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": "female",
        "birthDate": "1988-02-03",
        "name": [{"family": family, "given": given}],
        "identifier": [
            {"system": "urn:ytehub:sid:cccd", "value": cccd},
            {"system": "urn:ytehub:sid:bhyt", "value": card},
        ],
        "address": [{"extension": [{"url": COMMUNE, "valueCode": commune}]}],
    }


def test_query_kinds() -> None:
    assert query_for("079088001234")[0] == "cccd"
    assert query_for("021234567")[0] == "cccd"
    assert query_for("gd4797912345678")[1] == [
        ("identifier", "urn:ytehub:sid:bhyt|GD4797912345678")
    ]
    assert query_for("  nguyen   thi  hoa ")[1] == [("name", "nguyen thi hoa")]


def test_person_search_page(client: TestClient, db: Database) -> None:
    add_user(db, "bs.an", "clinician")
    headers = {**bearer(token_for(client, "bs.an")), "content-type": "application/fhir+json"}
    client.put(
        "/fhir/Patient/h1",
        json=_person("h1", "Nguyễn", ["Thị", "Hoa"], "079188001234", "GD4797912345678", "26740"),
        headers=headers,
    )
    client.put(
        "/fhir/Patient/h2",
        json=_person("h2", "Trần", ["Văn", "Hải"], "079088005678", "DN4797998765432", "00640"),
        headers=headers,
    )
    sign_in(client, "bs.an")
    by_name = client.get("/records", params={"q": "nguyen thi hoa"})
    assert by_name.status_code == 200 and 'href="/records/h1"' in by_name.text
    assert "Phường Sài Gòn" in by_name.text and 'href="/records/h2"' not in by_name.text
    assert 'href="/records/h2"' in client.get("/records", params={"q": "079088005678"}).text
    assert 'href="/records/h1"' in client.get("/records", params={"q": "GD4797912345678"}).text
    assert "Không tìm thấy ai." in client.get("/records", params={"q": "khong co ai"}).text
    with db.session() as session:
        people = session.scalars(
            select(AuditEvent.person_id).where(AuditEvent.action == "console.person_search")
        ).all()
    assert sorted(people) == ["h1", "h1", "h2"]


def test_person_search_respects_area(client: TestClient, db: Database) -> None:
    add_user(db, "bs.tinh", "clinician")
    headers = {**bearer(token_for(client, "bs.tinh")), "content-type": "application/fhir+json"}
    client.put(
        "/fhir/Patient/a1",
        json=_person("a1", "Lê", ["Lan"], "079188001111", "GD4797911111111", "00640"),
        headers=headers,
    )
    add_user(db, "bs.xa", "clinician", AreaScope.communes(["26740"]))
    sign_in(client, "bs.xa")
    assert 'href="/records/a1"' not in client.get("/records", params={"q": "le lan"}).text


def test_vaccinator_without_patient_read_is_told(client: TestClient, db: Database) -> None:
    add_user(db, "ld", "manager")
    sign_in(client, "ld")
    page = client.get("/records", params={"q": "nguyen"})
    assert page.status_code == 200 and 'role="alert"' in page.text
