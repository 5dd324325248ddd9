"""Conformance: independent FHIR clients from PyPI drive the real server over loopback.

`fhirpy` (SyncFHIRClient) and SMART's `fhirclient` talk to `python -m ytehub.cli serve`, started
as its own process on a free 127.0.0.1 port against the test database of each backend; they
create, read, update, search, page, read history, delete, and post transaction Bundles. The
clients know nothing of ytehub: whatever they need must be plain FHIR R4 REST.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fhirclient import client as fhirclient_client
from fhirclient.models import bundle as fc_bundle
from fhirclient.models import capabilitystatement as fc_capability
from fhirclient.models import patient as fc_patient
from fhirclient.server import FHIRUnauthorizedException
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound
from fhirpy.base.searchset import Raw

from tests.conftest import PASSWORD, add_user
from tests.server import running_server
from ytehub.core.db import Database
from ytehub.core.settings import Settings

HTTP_SECONDS = 15  # every client request gets at most this long
CCCD = "urn:ytehub:sid:cccd"
AN_CCCD = "079090001111"
BINH_CCCD = "079185002222"


# -- the server in its own process (same approach as tests/web/test_browser.py) -------------


@pytest.fixture
def clinician(db: Database) -> str:
    username = add_user(db, "bs.an", "clinician")
    db.dispose()  # the server process opens its own connections
    return username


@pytest.fixture
def live_server(settings: Settings, clinician: str, tmp_path: Path) -> Iterator[str]:
    """The real server in its own process; yields its base URL and always stops it."""
    with running_server(settings, tmp_path) as base_url:
        yield base_url


@pytest.fixture
def token(live_server: str, clinician: str) -> str:
    """A clinician's access token (user/*.read user/*.write) from the OAuth2 password grant."""
    response = requests.post(
        f"{live_server}/auth/token",
        data={"grant_type": "password", "username": clinician, "password": PASSWORD},
        timeout=HTTP_SECONDS,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def fhirpy_client(live_server: str, token: str) -> SyncFHIRClient:
    return SyncFHIRClient(
        f"{live_server}/fhir",
        authorization=f"Bearer {token}",
        requests_config={"timeout": HTTP_SECONDS},
    )


# -- resources ---------------------------------------------------------------------------------


def _patient(family: str, given: list[str], cccd: str, birth: str, gender: str) -> dict[str, Any]:
    return {
        "identifier": [{"system": CCCD, "value": cccd}],
        "name": [{"family": family, "given": given, "text": " ".join([family, *given])}],
        "gender": gender,
        "birthDate": birth,
        "address": [{"line": ["12 Lê Lợi"], "city": "Thành phố Hồ Chí Minh", "country": "VN"}],
    }


def _encounter(patient_ref: str, start: str) -> dict[str, Any]:
    return {
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": patient_ref},
        "period": {"start": start, "end": start.replace("T08:", "T10:")},
    }


def _ids(resources: list[Any]) -> list[str]:
    return [resource.id for resource in resources]


# -- fhirpy ------------------------------------------------------------------------------------


def test_fhirpy_create_read_update_search_history_delete(fhirpy_client: SyncFHIRClient) -> None:
    client = fhirpy_client

    # create: POST /fhir/Patient, the server assigns the id and version 1
    an = client.resource(
        "Patient", **_patient("Nguyễn", ["Văn", "An"], AN_CCCD, "1990-05-17", "male")
    )
    an.save()
    assert an.id and an.meta.versionId == "1"
    binh = client.resource(
        "Patient", **_patient("Trần", ["Thị", "Bình"], BINH_CCCD, "1985-11-02", "female")
    )
    binh.save()
    assert binh.id and binh.id != an.id

    # read: GET /fhir/Patient/{id}, diacritics intact
    read = client.reference("Patient", an.id).to_resource()
    assert read.name[0].family == "Nguyễn" and read.name[0].given == ["Văn", "An"]
    assert read.get_by_path(["identifier", {"system": CCCD}, "value"]) == AN_CCCD
    assert client.get("Patient", an.id)["birthDate"] == "1990-05-17"

    # update: PUT /fhir/Patient/{id} with the whole resource, a new version
    an["telecom"] = [{"system": "phone", "value": "0903123456"}]
    an.save()
    assert an.meta.versionId == "2"
    assert client.get("Patient", an.id)["telecom"][0]["value"] == "0903123456"

    # search: names without diacritics, identifiers with and without the system
    patients = client.resources("Patient")
    assert _ids(patients.search(name="nguyen van an").fetch()) == [an.id]
    assert _ids(patients.search(family="tran").fetch()) == [binh.id]
    assert _ids(patients.search(identifier=f"{CCCD}|{AN_CCCD}").fetch()) == [an.id]
    assert _ids(patients.search(identifier=BINH_CCCD).fetch()) == [binh.id]
    assert patients.search(identifier=f"{CCCD}|000000000000").fetch() == []
    assert patients.search(identifier=f"{CCCD}|{BINH_CCCD}").get().id == binh.id

    # five encounters for An (2025-08-01 … 2025-08-05), one for Bình
    starts = [f"2025-08-0{day}T08:00:00+07:00" for day in (3, 1, 5, 2, 4)]
    made = {}
    for start in starts:
        encounter = client.resource("Encounter", **_encounter(f"Patient/{an.id}", start))
        encounter.save()
        made[start] = encounter.id
    other = client.resource("Encounter", **_encounter(f"Patient/{binh.id}", starts[0]))
    other.save()
    by_date = [made[start] for start in sorted(starts)]

    encounters = client.resources("Encounter")
    assert sorted(_ids(encounters.search(subject=f"Patient/{an.id}").fetch_all())) == sorted(
        by_date
    )
    assert _ids(encounters.search(subject=binh).fetch()) == [other.id]  # a resource as the value
    # chains: typed (subject:Patient.identifier) and untyped (subject.identifier)
    chained = encounters.search(subject__Patient__identifier=f"{CCCD}|{AN_CCCD}")
    assert "subject:Patient.identifier" in chained.params
    assert sorted(_ids(chained.fetch_all())) == sorted(by_date)
    untyped = encounters.search(Raw(**{"subject.identifier": f"{CCCD}|{BINH_CCCD}"}))
    assert _ids(untyped.fetch_all()) == [other.id]

    # _include: the subject comes along, marked as an include
    bundle = encounters.search(_id=other.id).include("Encounter", "subject").fetch_raw()
    modes = {(e.resource.resourceType, e.resource.id, e.search.mode) for e in bundle.entry}
    assert modes == {("Encounter", other.id, "match"), ("Patient", binh.id, "include")}

    # _sort both ways, and _count paging: fetch_all() follows Bundle.link "next" over 3 pages
    mine = encounters.search(subject=f"Patient/{an.id}")
    assert _ids(mine.sort("date").fetch()) == by_date
    assert _ids(mine.sort("-date").fetch()) == by_date[::-1]
    paged = mine.sort("-date").limit(2)
    first_page = paged.fetch_raw()
    assert len(first_page.entry) == 2
    assert any(link.relation == "next" for link in first_page.link)
    assert _ids(paged.fetch_all()) == by_date[::-1]
    assert mine.count() == 5

    # history: GET /fhir/Patient/{id}/_history (newest first) and vread of version 1
    history = an.execute("_history", method="get")
    assert history.resourceType == "Bundle" and history.type == "history"
    versions = [entry.resource.meta.versionId for entry in history.entry]
    assert versions == ["2", "1"]
    assert [entry.request.method for entry in history.entry] == ["PUT", "POST"]
    first = client.execute(f"Patient/{an.id}/_history/1", method="get")
    assert first.meta.versionId == "1" and "telecom" not in first
    type_history = client.execute("Encounter/_history", method="get")
    assert len(type_history.entry) == 6

    # delete: DELETE /fhir/Encounter/{id}, then the read is 410 Gone, mapped to ResourceNotFound
    gone = made[starts[0]]
    client.reference("Encounter", gone).delete()
    with pytest.raises(ResourceNotFound) as deleted:
        client.get("Encounter", gone)
    assert '"deleted"' in str(deleted.value)  # the OperationOutcome of a 410, not a 404's
    with pytest.raises(ResourceNotFound) as missing:
        client.get("Encounter", "no-such-encounter")
    assert '"not-found"' in str(missing.value)
    assert gone not in _ids(encounters.search(subject=f"Patient/{an.id}").fetch_all())
    after = client.execute(f"Encounter/{gone}/_history", method="get")
    assert [entry.request.method for entry in after.entry] == ["DELETE", "POST"]

    # an invalid resource is refused with an OperationOutcome, which fhirpy raises
    with pytest.raises(OperationOutcome) as refused:
        client.resource("Patient", birthDate="1990-13-01").save()
    assert refused.value.resource["resourceType"] == "OperationOutcome"


# -- fhirclient (SMART on FHIR) ----------------------------------------------------------------


def test_fhirclient_capability_create_read_search(live_server: str, token: str) -> None:
    smart = fhirclient_client.FHIRClient(
        settings={"app_id": "ytehub-test", "api_base": f"{live_server}/fhir"}
    )
    server = smart.server
    # The CapabilityStatement is read without credentials (GET /fhir/metadata). The token comes
    # from our own /auth/token, so it travels as a default header of fhirclient's
    # requests.Session (server.session), which every request of the server object uses.
    statement = server.capabilityStatement
    assert isinstance(statement, fc_capability.CapabilityStatement)
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    assert "application/fhir+json" in statement.format
    rest = statement.rest[0]
    assert rest.mode == "server"
    patient_caps = next(r for r in rest.resource if r.type == "Patient")
    assert {"read", "create", "search-type", "history-instance"} <= {
        i.code for i in patient_caps.interaction
    }
    assert {"name", "family", "identifier"} <= {p.name for p in patient_caps.searchParam}
    server.session.headers["Authorization"] = f"Bearer {token}"

    # create: Patient(...).create(server) POSTs and returns the server's JSON
    made = fc_patient.Patient(
        {
            "resourceType": "Patient",
            **_patient("Trần", ["Thị", "Bình"], BINH_CCCD, "1985-11-02", "female"),
        }
    )
    answer = made.create(server)
    assert answer is not None and answer["resourceType"] == "Patient"
    new_id = answer["id"]
    assert answer["meta"]["versionId"] == "1"

    # read: Patient.read(id, server), parsed by fhirclient's strict R4 models
    read = fc_patient.Patient.read(new_id, server)
    assert read.id == new_id
    assert read.name[0].family == "Trần" and read.name[0].given == ["Thị", "Bình"]
    assert read.identifier[0].system == CCCD and read.identifier[0].value == BINH_CCCD
    assert read.birthDate.isostring == "1985-11-02"
    assert read.meta.versionId == "1"

    # search: Patient.where(struct).perform_resources(server), without diacritics
    fc_patient.Patient(
        {
            "resourceType": "Patient",
            **_patient("Nguyễn", ["Văn", "An"], AN_CCCD, "1990-05-17", "male"),
        }
    ).create(server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # perform_resources() is deprecated
        found = fc_patient.Patient.where(struct={"family": "tran"}).perform_resources(server)
    assert [p.id for p in found] == [new_id]
    assert all(isinstance(p, fc_patient.Patient) for p in found)
    by_identifier = list(
        fc_patient.Patient.where(
            struct={"identifier": f"{CCCD}|{BINH_CCCD}"}
        ).perform_resources_iter(server)
    )
    assert [p.id for p in by_identifier] == [new_id]
    everyone = list(
        fc_patient.Patient.where(
            struct={"_count": "1", "_sort": "birthdate"}
        ).perform_resources_iter(server)  # follows Bundle.link "next" page by page
    )
    assert [p.name[0].family for p in everyone] == ["Trần", "Nguyễn"]

    # update and delete through the models; a read of a deleted resource is HTTP 410
    read.gender = "other"
    read.update(server)
    assert fc_patient.Patient.read(new_id, server).meta.versionId == "2"
    read.delete(server)
    with pytest.raises(requests.HTTPError) as gone:
        fc_patient.Patient.read(new_id, server)
    assert gone.value.response.status_code == 410

    # without the bearer header the server answers 401, which fhirclient raises as its own
    del server.session.headers["Authorization"]
    with pytest.raises(FHIRUnauthorizedException):
        fc_patient.Patient.read(new_id, server)


# -- transaction -------------------------------------------------------------------------------


def _transaction(patient: dict[str, Any], encounter: dict[str, Any]) -> dict[str, Any]:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    encounter["subject"] = {"reference": patient_url}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": {"resourceType": "Patient", **patient},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {"resourceType": "Encounter", **encounter},
                "request": {"method": "POST", "url": "Encounter"},
            },
        ],
    }


def test_transaction(fhirpy_client: SyncFHIRClient, live_server: str, token: str) -> None:
    client = fhirpy_client
    bundle = _transaction(
        _patient("Lê", ["Văn", "Cường"], "079070003333", "1970-01-01", "male"),
        _encounter("placeholder", "2025-09-10T08:00:00+07:00"),
    )

    # POST [base] with the Bundle: fhirpy's execute("") posts to the service base
    answer = client.execute("", method="post", data=bundle)
    assert answer.resourceType == "Bundle" and answer.type == "transaction-response"
    assert len(answer.entry) == 2
    statuses = [entry.response.status for entry in answer.entry]
    assert all(status.startswith("201") for status in statuses), statuses
    patient_loc, encounter_loc = (entry.response.location for entry in answer.entry)
    assert "Patient/" in patient_loc and "Encounter/" in encounter_loc
    patient_id = patient_loc.split("Patient/")[1].split("/")[0]
    encounter_id = encounter_loc.split("Encounter/")[1].split("/")[0]

    # the urn:uuid reference was rewritten to the Patient's new id
    encounter = client.get("Encounter", encounter_id)
    assert encounter["subject"]["reference"] == f"Patient/{patient_id}"
    assert client.get("Patient", patient_id)["name"][0]["family"] == "Lê"
    linked = client.resources("Encounter").search(subject__Patient__identifier="079070003333")
    assert _ids(linked.fetch()) == [encounter_id]

    # a resource (not a dict) saved by fhirpy posts the same way: Bundle with no id -> POST [base]
    second = client.resource(
        "Bundle",
        **_transaction(
            _patient("Phạm", ["Thị", "Dung"], "079080004444", "1980-02-02", "female"),
            _encounter("placeholder", "2025-09-11T08:00:00+07:00"),
        ),
    )
    second.save()
    assert second.type == "transaction-response"
    assert [e.response.status[:3] for e in second.entry] == ["201", "201"]
    assert client.resources("Patient").search(identifier="079080004444").count() == 1

    # all or nothing: an invalid second entry leaves no Patient behind
    failing = _transaction(
        _patient("Hoàng", ["Văn", "Em"], "079060005555", "1960-03-03", "male"),
        {"class": {"code": "AMB"}},  # Encounter.status (1..1) is missing
    )
    with pytest.raises(OperationOutcome) as refused:
        client.execute("", method="post", data=failing)
    issues = refused.value.resource["issue"]
    assert issues[0]["severity"] == "error"
    assert any(where.startswith("Bundle.entry[1]") for where in issues[0].get("expression", []))
    assert client.resources("Patient").search(identifier="079060005555").fetch() == []

    # fhirclient knows transactions too: Bundle(type=transaction).create() posts to [base]/
    smart = fhirclient_client.FHIRClient(
        settings={"app_id": "ytehub-test", "api_base": f"{live_server}/fhir"}
    )
    smart.server.session.headers["Authorization"] = f"Bearer {token}"
    third = fc_bundle.Bundle(
        _transaction(
            _patient("Võ", ["Thị", "Giang"], "079050006666", "1950-04-04", "female"),
            _encounter("placeholder", "2025-09-13T08:00:00+07:00"),
        )
    )
    assert third.createPath() is None
    reply = fc_bundle.Bundle(third.create(smart.server))
    assert reply.type == "transaction-response"
    assert [e.response.status[:3] for e in reply.entry] == ["201", "201"]

    assert client.resources("Patient").count() == 3
    assert client.resources("Encounter").count() == 3
