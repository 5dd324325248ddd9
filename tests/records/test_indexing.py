"""Index rows extracted from realistic Vietnamese resources, and robustness on odd input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ytehub.core.units import fold
from ytehub.records.indexing import (
    DATE_MAX,
    DATE_MIN,
    DateRow,
    IndexRows,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    extract,
    patient_refs,
    split_reference,
)
from ytehub.records.search_params import SEARCHABLE_TYPES, compile_path, params_for

CCCD = "urn:ytehub:sid:cccd"
COMMUNE_EXT = "urn:ytehub:ext:commune-code"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VN = timezone(timedelta(hours=7))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def end_of(*parts: int) -> datetime:
    """The last microsecond of the given UTC second."""
    return datetime(*parts, 999999, tzinfo=UTC)


def tokens(rows: IndexRows, param: str) -> set[tuple[str | None, str | None]]:
    return {(r.system, r.code) for r in rows.tokens if r.param == param}


def strings(rows: IndexRows, param: str) -> set[str]:
    return {r.value for r in rows.strings if r.param == param}


def dates(rows: IndexRows, param: str) -> set[tuple[datetime, datetime]]:
    return {(r.low, r.high) for r in rows.dates if r.param == param}


def refs(rows: IndexRows, param: str) -> set[tuple[str | None, str | None, str]]:
    return {(r.target_type, r.target_id, r.url) for r in rows.references if r.param == param}


def params(rows: IndexRows) -> set[str]:
    every = [*rows.tokens, *rows.strings, *rows.dates, *rows.references, *rows.quantities]
    return {r.param for r in every}


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {
            "versionId": "2",
            "lastUpdated": "2025-07-01T03:00:00.000Z",
            "profile": ["urn:ytehub:profile:patient"],
            "tag": [{"system": "urn:ytehub:cs:source", "code": "tiem-chung"}],
            "security": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                    "code": "N",
                }
            ],
        },
        "identifier": [
            {
                "use": "official",
                "system": CCCD,
                "value": "046090001234",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": "NI",
                        }
                    ],
                    "text": "Căn cước công dân",
                },
            },
            {"use": "secondary", "system": "urn:ytehub:sid:site-patient-id", "value": "TE-0042"},
        ],
        "active": True,
        "name": [
            {
                "use": "official",
                "text": "Nguyễn Văn Đức",
                "family": "Nguyễn",
                "given": ["Văn", "Đức"],
            }
        ],
        "telecom": [
            {"system": "phone", "value": "0912345678", "use": "mobile"},
            {"system": "email", "value": "duc.nv@example.vn"},
        ],
        "gender": "male",
        "birthDate": "1990-05-17",
        "address": [
            {
                "use": "home",
                "line": ["12 Lê Lợi"],
                "city": "Phường Thuận Hóa",
                "state": "Thành phố Huế",
                "country": "VN",
                "extension": [{"url": COMMUNE_EXT, "valueCode": "19774"}],
            }
        ],
        "generalPractitioner": [{"reference": "Organization/46001"}],
        "managingOrganization": {"reference": "https://fhir.ytehub.vn/fhir/Organization/46000"},
        "link": [{"other": {"reference": "Patient/p0"}, "type": "replaces"}],
    }


# --------------------------------------------------------------------------- Patient


def test_patient_tokens() -> None:
    rows = extract(patient())
    assert tokens(rows, "identifier") == {
        (CCCD, "046090001234"),
        ("urn:ytehub:sid:site-patient-id", "TE-0042"),
    }
    assert tokens(rows, "identifier:of-type") == {
        ("http://terminology.hl7.org/CodeSystem/v2-0203", "NI|046090001234")
    }
    cccd = next(r for r in rows.tokens if r.code == "046090001234" and r.param == "identifier")
    assert cccd.text == "can cuoc cong dan"
    assert tokens(rows, "gender") == {(None, "male")}
    assert tokens(rows, "active") == {(None, "true")}
    assert tokens(rows, "phone") == {("phone", "0912345678")}
    assert tokens(rows, "email") == {("email", "duc.nv@example.vn")}
    assert tokens(rows, "telecom") == {("phone", "0912345678"), ("email", "duc.nv@example.vn")}
    assert tokens(rows, "address-use") == {(None, "home")}
    assert tokens(rows, "address-commune") == {(None, "19774")}
    assert tokens(rows, "_tag") == {("urn:ytehub:cs:source", "tiem-chung")}
    assert tokens(rows, "_security") == {
        ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N")
    }
    assert tokens(rows, "_profile") == {(None, "urn:ytehub:profile:patient")}


def test_patient_strings_are_folded() -> None:
    rows = extract(patient())
    assert strings(rows, "family") == {"nguyen"}
    assert strings(rows, "given") == {"van", "duc"}
    assert strings(rows, "name") == {"nguyen van duc", "nguyen", "van", "duc", "van duc nguyen"}
    whole = next(r for r in rows.strings if r.param == "name" and r.value == "nguyen van duc")
    assert whole.exact == "Nguyễn Văn Đức"
    assert strings(rows, "address") == {"12 le loi", "phuong thuan hoa", "thanh pho hue", "vn"}
    assert strings(rows, "address-city") == {"phuong thuan hoa"}
    assert strings(rows, "address-state") == {"thanh pho hue"}
    assert strings(rows, "address-country") == {"vn"}
    for row in rows.strings:
        assert row.value == fold(row.exact)


def test_a_full_name_search_matches_without_text_or_diacritics() -> None:
    """``name=nguyen van an`` must find a name given only as parts, in any spelling."""
    resource = {
        "resourceType": "Patient",
        "id": "p2",
        "name": [{"family": "NGUYỄN", "given": ["Văn", "An"]}],
    }
    values = strings(extract(resource), "name")
    query = fold("nguyen van an")
    assert query in values
    assert any(v.startswith(fold("Nguyen Van")) for v in values)
    foreign = {"resourceType": "Patient", "name": [{"family": "Smith", "given": ["John"]}]}
    assert {"smith john", "john smith"} <= strings(extract(foreign), "name")


def test_patient_dates_and_references() -> None:
    rows = extract(patient())
    # A date is a Vietnam-time calendar day: 17 May 1990 00:00+07:00 is 16 May 17:00 UTC.
    assert dates(rows, "birthdate") == {(utc(1990, 5, 16, 17), end_of(1990, 5, 17, 16, 59, 59))}
    assert refs(rows, "general-practitioner") == {("Organization", "46001", "Organization/46001")}
    assert refs(rows, "organization") == {
        ("Organization", "46000", "https://fhir.ytehub.vn/fhir/Organization/46000")
    }
    assert refs(rows, "link") == {("Patient", "p0", "Patient/p0")}
    assert rows.quantities == []
    assert "_id" not in params(rows) and "_lastUpdated" not in params(rows)


def test_partial_dates_give_ranges() -> None:
    def birth(text: str) -> set[tuple[datetime, datetime]]:
        return dates(extract({"resourceType": "Patient", "birthDate": text}), "birthdate")

    assert birth("1990") == {(utc(1989, 12, 31, 17), end_of(1990, 12, 31, 16, 59, 59))}
    assert birth("1990-02") == {(utc(1990, 1, 31, 17), end_of(1990, 2, 28, 16, 59, 59))}
    assert birth("2024-02-29") == {(utc(2024, 2, 28, 17), end_of(2024, 2, 29, 16, 59, 59))}
    assert birth("1990-13") == set()  # malformed: no row, no error
    assert birth("17/05/1990") == set()


def test_deceased() -> None:
    dead = {"resourceType": "Patient", "deceasedDateTime": "2024-03-02T10:15:00+07:00"}
    rows = extract(dead)
    assert tokens(rows, "deceased") == {(None, "true")}
    assert dates(rows, "death-date") == {(utc(2024, 3, 2, 3, 15), end_of(2024, 3, 2, 3, 15, 0))}
    alive = extract({"resourceType": "Patient", "deceasedBoolean": False})
    assert tokens(alive, "deceased") == {(None, "false")}
    assert tokens(extract({"resourceType": "Patient"}), "deceased") == set()


# --------------------------------------------------------------------------- clinical resources


def encounter() -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "identifier": [{"system": "urn:ytehub:sid:ma-lk", "value": "LK2025000123"}],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
            "display": "ambulatory",
        },
        "type": [{"coding": [{"system": "urn:ytehub:cs:ma-loai-kcb", "code": "01"}]}],
        "subject": {"reference": "Patient/p1", "display": "Nguyễn Văn Đức"},
        "participant": [
            {"individual": {"reference": "Practitioner/bs7"}},
            {"individual": {"reference": "RelatedPerson/me1"}},
        ],
        "period": {"start": "2025-03-01T08:00:00+07:00", "end": "2025-03-01T09:30:00+07:00"},
        "reasonCode": [{"text": "Sốt cao"}],
        "location": [{"location": {"reference": "Location/phong-kham-1"}}],
        "serviceProvider": {"reference": "https://fhir.ytehub.vn/fhir/Organization/46001"},
        "episodeOfCare": [{"reference": "EpisodeOfCare/eoc1"}],
    }


def test_encounter() -> None:
    rows = extract(encounter())
    assert dates(rows, "date") == {(utc(2025, 3, 1, 1), end_of(2025, 3, 1, 2, 30, 0))}
    assert refs(rows, "subject") == {("Patient", "p1", "Patient/p1")}
    assert refs(rows, "patient") == {("Patient", "p1", "Patient/p1")}
    assert refs(rows, "participant") == {
        ("Practitioner", "bs7", "Practitioner/bs7"),
        ("RelatedPerson", "me1", "RelatedPerson/me1"),
    }
    assert refs(rows, "practitioner") == {("Practitioner", "bs7", "Practitioner/bs7")}
    assert refs(rows, "service-provider") == {
        ("Organization", "46001", "https://fhir.ytehub.vn/fhir/Organization/46001")
    }
    assert refs(rows, "location") == {("Location", "phong-kham-1", "Location/phong-kham-1")}
    assert refs(rows, "episode-of-care") == {("EpisodeOfCare", "eoc1", "EpisodeOfCare/eoc1")}
    assert tokens(rows, "class") == {("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB")}
    klass = next(r for r in rows.tokens if r.param == "class")
    assert klass.text == "ambulatory"
    assert tokens(rows, "type") == {("urn:ytehub:cs:ma-loai-kcb", "01")}
    assert tokens(rows, "status") == {(None, "finished")}
    assert tokens(rows, "identifier") == {("urn:ytehub:sid:ma-lk", "LK2025000123")}
    reason = [r for r in rows.tokens if r.param == "reason-code"]
    assert reason == [TokenRow("reason-code", None, None, "sot cao")]
    assert patient_refs(encounter()) == {"p1"}


def test_periods_with_open_ends() -> None:
    open_end = {**encounter(), "period": {"start": "2025-03-01"}}
    assert dates(extract(open_end), "date") == {(utc(2025, 2, 28, 17), DATE_MAX)}
    open_start = {**encounter(), "period": {"end": "2025-03"}}
    assert dates(extract(open_start), "date") == {(DATE_MIN, end_of(2025, 3, 31, 16, 59, 59))}
    assert DATE_MIN.tzinfo is UTC and DATE_MAX.tzinfo is UTC
    empty = {**encounter(), "period": {}}
    assert dates(extract(empty), "date") == set()
    broken = {**encounter(), "period": {"start": "2025-03-01", "end": "yesterday"}}
    assert dates(extract(broken), "date") == set()


def observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}],
            "text": "Cân nặng",
        },
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2025-03-01T08:10:00+07:00",
        "performer": [{"reference": "Practitioner/bs7"}, {"reference": "Patient/p1"}],
        "valueQuantity": {"value": 62.5, "unit": "kg", "system": UCUM, "code": "kg"},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8302-2"}]},
                "valueQuantity": {"value": 168, "unit": "cm", "system": UCUM, "code": "cm"},
            }
        ],
    }


def test_observation() -> None:
    rows = extract(observation())
    assert tokens(rows, "code") == {(LOINC, "29463-7"), (None, None)}
    texts = {r.text for r in rows.tokens if r.param == "code"}
    assert texts == {"body weight", "can nang"}
    assert tokens(rows, "combo-code") == {(LOINC, "29463-7"), (LOINC, "8302-2"), (None, None)}
    assert tokens(rows, "component-code") == {(LOINC, "8302-2")}
    weight = QuantityRow("value-quantity", Decimal("62.5"), UCUM, "kg", "kg")
    height = QuantityRow("component-value-quantity", Decimal("168"), UCUM, "cm", "cm")
    assert weight in rows.quantities and height in rows.quantities
    combo = {r.value for r in rows.quantities if r.param == "combo-value-quantity"}
    assert combo == {Decimal("62.5"), Decimal("168")}
    assert dates(rows, "date") == {(utc(2025, 3, 1, 1, 10), end_of(2025, 3, 1, 1, 10, 0))}
    assert refs(rows, "performer") == {
        ("Practitioner", "bs7", "Practitioner/bs7"),
        ("Patient", "p1", "Patient/p1"),
    }
    assert refs(rows, "encounter") == {("Encounter", "e1", "Encounter/e1")}
    assert patient_refs(observation()) == {"p1"}


def test_observation_of_a_group_is_not_a_patients() -> None:
    resource = {**observation(), "subject": {"reference": "Group/household-9"}, "performer": []}
    rows = extract(resource)
    assert refs(rows, "subject") == {("Group", "household-9", "Group/household-9")}
    assert refs(rows, "patient") == set()
    assert patient_refs(resource) == set()


def test_condition() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "identifier": [{"system": "urn:ytehub:sid:site-record-id", "value": "BA-77"}],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [{"coding": [{"code": "encounter-diagnosis"}]}],
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "A97.0"}],
            "text": "Sốt xuất huyết Dengue không có dấu hiệu cảnh báo",
        },
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "onsetDateTime": "2025-02-27T20:00:00",  # no zone: Vietnam time
        "recordedDate": "2025-03-01",
    }
    rows = extract(condition)
    assert dates(rows, "onset-date") == {(utc(2025, 2, 27, 13), end_of(2025, 2, 27, 13, 0, 0))}
    assert dates(rows, "recorded-date") == {(utc(2025, 2, 28, 17), end_of(2025, 3, 1, 16, 59, 59))}
    assert tokens(rows, "code") == {("http://hl7.org/fhir/sid/icd-10", "A97.0"), (None, None)}
    assert "sot xuat huyet dengue khong co dau hieu canh bao" in {r.text for r in rows.tokens}
    assert tokens(rows, "clinical-status") == {
        ("http://terminology.hl7.org/CodeSystem/condition-clinical", "active")
    }
    assert tokens(rows, "verification-status") == {
        ("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed")
    }
    assert tokens(rows, "category") == {(None, "encounter-diagnosis")}
    assert refs(rows, "patient") == {("Patient", "p1", "Patient/p1")}
    assert refs(rows, "encounter") == {("Encounter", "e1", "Encounter/e1")}
    period = {**condition, "onsetDateTime": None, "onsetPeriod": {"start": "2025-02"}}
    assert dates(extract(period), "onset-date") == {(utc(2025, 1, 31, 17), DATE_MAX)}


def immunization() -> dict[str, Any]:
    """As the synthetic province writes it: logical references to facilities."""
    return {
        "resourceType": "Immunization",
        "id": "i1",
        "identifier": [{"system": "urn:ytehub:sid:site-record-id", "value": "R-1"}],
        "status": "completed",
        "vaccineCode": {
            "coding": [
                {"system": "urn:ytehub:cs:tcmr-vaccine", "code": "BCG", "display": "Vắc xin lao"},
                {"system": "http://hl7.org/fhir/sid/cvx", "code": "19", "display": "BCG"},
            ],
            "text": "Vắc xin lao",
        },
        "patient": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2025-01-12",
        "primarySource": True,
        "location": {
            "type": "Location",
            "identifier": {"system": "urn:ytehub:sid:facility", "value": "46012"},
        },
        "lotNumber": "BCG-2412-A",
        "performer": [
            {"actor": {"reference": "Organization/46012"}},
            {"actor": {"reference": "Device/d1"}},  # not a valid performer target
        ],
        "protocolApplied": [
            {
                "series": "BCG",
                "targetDisease": [
                    {"coding": [{"system": "http://snomed.info/sct", "code": "56717001"}]}
                ],
                "doseNumberPositiveInt": 1,
            }
        ],
    }


def test_immunization() -> None:
    rows = extract(immunization())
    assert tokens(rows, "vaccine-code") == {
        ("urn:ytehub:cs:tcmr-vaccine", "BCG"),
        ("http://hl7.org/fhir/sid/cvx", "19"),
    }  # the text repeats a display, so it needs no row of its own
    assert dates(rows, "date") == {(utc(2025, 1, 11, 17), end_of(2025, 1, 12, 16, 59, 59))}
    assert strings(rows, "lot-number") == {"bcg-2412-a"}
    assert strings(rows, "series") == {"bcg"}
    assert tokens(rows, "target-disease") == {("http://snomed.info/sct", "56717001")}
    assert refs(rows, "patient") == {("Patient", "p1", "Patient/p1")}
    assert refs(rows, "performer") == {("Organization", "46012", "Organization/46012")}
    # A logical reference is searchable with location:identifier=urn:ytehub:sid:facility|46012.
    assert refs(rows, "location") == set()
    assert tokens(rows, "location") == {("urn:ytehub:sid:facility", "46012")}
    assert patient_refs(immunization()) == {"p1"}


def test_medication_request() -> None:
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "identifier": [{"system": "urn:ytehub:sid:don-thuoc", "value": "46001DT0001"}],
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "urn:ytehub:cs:thuoc-bhyt",
                    "code": "40.17",
                    "display": "Paracetamol 500mg",
                }
            ]
        },
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "authoredOn": "2025-03-01T09:00:00+07:00",
        "requester": {"reference": "Practitioner/bs7"},
        "dosageInstruction": [
            {
                "text": "Uống 1 viên khi sốt",
                "timing": {
                    "event": ["2025-03-01T20:00:00+07:00", "2025-03-02T08:00:00+07:00"],
                    "repeat": {"boundsPeriod": {"start": "2025-03-01", "end": "2025-03-03"}},
                },
            }
        ],
    }
    rows = extract(request)
    assert tokens(rows, "code") == {("urn:ytehub:cs:thuoc-bhyt", "40.17")}
    assert tokens(rows, "intent") == {(None, "order")}
    assert dates(rows, "authoredon") == {(utc(2025, 3, 1, 2), end_of(2025, 3, 1, 2, 0, 0))}
    assert dates(rows, "date") == {
        (utc(2025, 3, 1, 13), end_of(2025, 3, 1, 13, 0, 0)),
        (utc(2025, 3, 2, 1), end_of(2025, 3, 2, 1, 0, 0)),
        (utc(2025, 2, 28, 17), end_of(2025, 3, 3, 16, 59, 59)),
    }
    assert refs(rows, "requester") == {("Practitioner", "bs7", "Practitioner/bs7")}
    assert refs(rows, "medication") == set()
    assert refs(rows, "subject") == refs(rows, "patient") == {("Patient", "p1", "Patient/p1")}
    assert patient_refs(request) == {"p1"}
    by_reference = {**request, "medicationReference": {"reference": "Medication/m1"}}
    assert refs(extract(by_reference), "medication") == {("Medication", "m1", "Medication/m1")}


def test_composition() -> None:
    composition = {
        "resourceType": "Composition",
        "id": "doc1",
        "identifier": {"system": "urn:ytehub:sid:so-kham", "value": "SK-1"},
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary"}]},
        "subject": {"reference": "urn:uuid:2d0c6b5e-5a2f-4b4e-9d55-3f2a8f0d1e11"},
        "date": "2025-03-01T10:00:00Z",
        "author": [{"reference": "Practitioner/bs7"}, {"reference": "Organization/46001"}],
        "title": "Sổ khám bệnh điện tử",
        "relatesTo": [{"code": "replaces", "targetReference": {"reference": "Composition/doc0"}}],
        "section": [
            {
                "code": {"coding": [{"system": LOINC, "code": "11450-4"}]},
                "entry": [{"reference": "Condition/c1"}, {"reference": "#inline"}],
            }
        ],
    }
    rows = extract(composition)
    assert tokens(rows, "type") == {(LOINC, "60591-5")}
    assert tokens(rows, "identifier") == {("urn:ytehub:sid:so-kham", "SK-1")}
    assert dates(rows, "date") == {(utc(2025, 3, 1, 10), end_of(2025, 3, 1, 10, 0, 0))}
    # An unresolved urn:uuid keeps its url only; its type cannot be told.
    uuid_url = "urn:uuid:2d0c6b5e-5a2f-4b4e-9d55-3f2a8f0d1e11"
    assert refs(rows, "subject") == {(None, None, uuid_url)}
    assert refs(rows, "author") == {
        ("Practitioner", "bs7", "Practitioner/bs7"),
        ("Organization", "46001", "Organization/46001"),
    }
    assert refs(rows, "entry") == {("Condition", "c1", "Condition/c1"), (None, None, "#inline")}
    assert refs(rows, "related-ref") == {("Composition", "doc0", "Composition/doc0")}
    assert tokens(rows, "section") == {(LOINC, "11450-4")}
    assert strings(rows, "title") == {"so kham benh dien tu"}
    assert patient_refs(composition) == set()
    resolved = {**composition, "subject": {"reference": "Patient/p1"}}
    assert patient_refs(resolved) == {"p1"}


# --------------------------------------------------------------------------- references


def test_split_reference() -> None:
    assert split_reference("Patient/123") == ("Patient", "123")
    assert split_reference("Patient/123/_history/4") == ("Patient", "123")
    assert split_reference("https://fhir.ytehub.vn/fhir/Patient/a-1.b") == ("Patient", "a-1.b")
    assert split_reference("http://x.vn/fhir/Observation/o1/_history/2") == ("Observation", "o1")
    assert split_reference("urn:uuid:6f0f4a1e-0000-4000-8000-000000000000") == (None, None)
    assert split_reference("urn:oid:1.2.3") == (None, None)
    assert split_reference("#contained-1") == (None, None)
    assert split_reference("Patient?identifier=urn:ytehub:sid:cccd|0460") == (None, None)
    assert split_reference("Patient/") == (None, None)


def test_target_types_are_honoured() -> None:
    resource = {
        "resourceType": "AuditEvent",
        "recorded": "2025-03-01T10:00:00Z",
        "agent": [{"who": {"reference": "Practitioner/bs7"}, "requestor": True}],
        "entity": [
            {"what": {"reference": "https://fhir.ytehub.vn/fhir/Patient/p1"}},
            {"what": {"reference": "Observation/o1"}},
            {"what": {"reference": "urn:uuid:abc", "type": "Observation"}},
        ],
        "action": "R",
    }
    rows = extract(resource)
    assert refs(rows, "patient") == {
        ("Patient", "p1", "https://fhir.ytehub.vn/fhir/Patient/p1")
    }  # the Observation, even as urn:uuid with a declared type, is no patient
    assert len(refs(rows, "entity")) == 3
    assert patient_refs(resource) == {"p1"}


def test_appointment_and_provenance_patients() -> None:
    appointment = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2025-03-05T07:30:00+07:00",
        "participant": [
            {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
            {"actor": {"reference": "Location/phong-tiem"}, "status": "accepted"},
        ],
        "serviceType": [{"coding": [{"system": "urn:ytehub:cs:dich-vu", "code": "tiem-chung"}]}],
    }
    rows = extract(appointment)
    assert refs(rows, "patient") == {("Patient", "p1", "Patient/p1")}
    assert refs(rows, "location") == {("Location", "phong-tiem", "Location/phong-tiem")}
    assert len(refs(rows, "actor")) == 2
    assert tokens(rows, "service-type") == {("urn:ytehub:cs:dich-vu", "tiem-chung")}
    assert patient_refs(appointment) == {"p1"}
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": "Immunization/i1"}, {"reference": "Patient/p1"}],
        "recorded": "2025-03-05T01:00:00Z",
        "agent": [{"who": {"reference": "Organization/46012"}}],
    }
    rows = extract(provenance)
    assert len(refs(rows, "target")) == 2
    assert refs(rows, "patient") == {("Patient", "p1", "Patient/p1")}
    assert patient_refs(provenance) == {"p1"}


def test_patient_refs_of_a_patient_is_itself() -> None:
    assert patient_refs(patient()) == {"p1"}  # not the linked Patient/p0
    assert patient_refs({"resourceType": "Patient"}) == set()
    assert patient_refs({"resourceType": "Organization", "id": "o"}) == set()
    assert patient_refs({"resourceType": "Basic", "subject": {"reference": "Patient/p1"}}) == set()
    assert patient_refs({"subject": {"reference": "Patient/p1"}}) == set()
    two = {**observation(), "performer": [{"reference": "Patient/p9"}]}
    assert patient_refs(two) == {"p1", "p9"}


# --------------------------------------------------------------------------- edge cases


def test_unknown_types_get_common_rows_only() -> None:
    basic = {
        "resourceType": "Basic",
        "id": "b1",
        "meta": {"tag": [{"system": "urn:t", "code": "x", "display": "Thẻ"}]},
        "code": {"coding": [{"code": "x"}]},
        "subject": {"reference": "Patient/p1"},
    }
    rows = extract(basic)
    assert rows.tokens == [TokenRow("_tag", "urn:t", "x", "the")]
    assert rows.strings == rows.dates == rows.references == rows.quantities == []
    assert extract({"meta": {"tag": [{"code": "y"}]}}).tokens == [TokenRow("_tag", None, "y", None)]
    assert extract([]) == IndexRows()  # type: ignore[arg-type]


def test_rows_are_unique() -> None:
    resource = patient()
    resource["name"].append(dict(resource["name"][0]))
    resource["identifier"].append(dict(resource["identifier"][1]))
    rows = extract(resource)
    for table in (rows.tokens, rows.strings, rows.dates, rows.references, rows.quantities):
        assert len(table) == len(set(table))
    assert len({(r.param, r.value) for r in rows.strings}) == len(rows.strings)


def test_odd_values_give_no_rows() -> None:
    resource = {
        "resourceType": "Observation",
        "status": None,
        "code": {"coding": [None, 3, {"display": ""}], "text": ""},
        "subject": {"reference": ""},
        "valueQuantity": {"value": "nhiều", "unit": "kg"},
        "effectivePeriod": {"start": 2025},
        "component": [{"valueQuantity": {"value": float("nan")}}, "x", None],
        "identifier": [{"system": "urn:x"}, {"value": 12}],
    }
    rows = extract(resource)
    assert params(rows) == set()
    money_like = {"resourceType": "Observation", "valueQuantity": {"value": "1.50", "code": "kg"}}
    assert [r for r in extract(money_like).quantities if r.param == "value-quantity"] == [
        QuantityRow("value-quantity", Decimal("1.50"), None, "kg", None)
    ]


def test_row_types() -> None:
    for resource in (patient(), encounter(), observation(), immunization()):
        rows = extract(resource)
        assert all(isinstance(r, TokenRow) for r in rows.tokens)
        assert all(isinstance(r, StringRow) for r in rows.strings)
        assert all(isinstance(r, DateRow) for r in rows.dates)
        assert all(isinstance(r, ReferenceRow) for r in rows.references)
        assert all(isinstance(r, QuantityRow) for r in rows.quantities)


# --------------------------------------------------------------------------- properties

ELEMENTS = sorted(
    {
        step if isinstance(step, str) else step[0]
        for resource_type in (*SEARCHABLE_TYPES, "Basic")
        for param in params_for(resource_type).values()
        for path in param.paths
        for step in compile_path(path).steps
    }
    | {"reference", "coding", "system", "code", "value", "display", "text", "unit", "currency"}
    | {"start", "end", "event", "repeat", "boundsPeriod", "family", "given", "line", "city"}
    | {"type", "identifier", "url", "valueCode", "id"}
)

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "2024",
            "2024-02-30",
            "2024-05-01T08:30:00+07:00",
            "0001-01-01",
            "9999-12-31T23:59:59-14:00",
            "Patient/p1",
            "https://x.vn/fhir/Patient/p2/_history/1",
            "urn:uuid:1",
            "#c",
            "phone",
            "email",
            COMMUNE_EXT,
            "1e400",
            "NaN",
            "Nguyễn Thị Ánh",
        ]
    )
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(ELEMENTS), inner, max_size=6)
    ),
    max_leaves=40,
)
RESOURCES = st.builds(
    lambda resource_type, body: {**body, "resourceType": resource_type},
    st.sampled_from([*SEARCHABLE_TYPES, "Basic", ""]),
    st.dictionaries(st.sampled_from(ELEMENTS), JSON, max_size=10),
)


@settings(max_examples=400, deadline=None)
@given(RESOURCES)
def test_extraction_never_raises_on_arbitrary_nesting(resource: dict[str, Any]) -> None:
    rows = extract(resource)
    people = patient_refs(resource)
    assert all(isinstance(p, str) and p for p in people)
    for row in rows.tokens:
        assert row.code is None or isinstance(row.code, str)
        assert row.system is None or isinstance(row.system, str)
    for row in rows.strings:
        assert isinstance(row.exact, str) and row.value == fold(row.exact) and row.value
    for row in rows.dates:
        assert row.low.tzinfo is not None and row.high.tzinfo is not None
        assert row.low.utcoffset() == row.high.utcoffset() == timedelta(0)
    for row in rows.references:
        assert isinstance(row.url, str) and row.url
    for row in rows.quantities:
        assert isinstance(row.value, Decimal) and row.value.is_finite()


VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
)


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(VIETNAMESE + VIETNAMESE.upper() + " \t\n-'.,0123456789"))
    | st.text()
)
def test_folding_is_idempotent(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    if text.isascii():
        assert once == " ".join(text.casefold().split())


def test_folding_examples() -> None:
    assert fold("Nguyễn Văn Đức") == "nguyen van duc"
    assert fold("  TRẦN   thị  Hoà ") == fold("Trần Thị Hòa") == "tran thi hoa"
    decomposed = "Nguye\u0302\u0303n"  # NFD input folds like NFC
    assert fold(decomposed) == "nguyen"
