"""Personal health record: sections, ordering, chronic detection, FHIR document, PDF."""

from __future__ import annotations

import json
import re
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ytehub.records.fhirdate import parse_fhir_date
from ytehub.records.phr import (
    SECTION_CODE_SYSTEM,
    SECTION_TYPES,
    PersonalRecord,
    build_record,
    display_date,
    display_period,
)
from ytehub.records.phr_pdf import record_pdf

ICT = timezone(timedelta(hours=7))
AS_OF = datetime(2025, 9, 1, 8, 0, tzinfo=ICT)
NOW = datetime(2025, 9, 1, 9, 30, tzinfo=ICT)
BASE = "https://ytehub.example.vn/fhir"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
XHTML = "http://www.w3.org/1999/xhtml"
PT = {"reference": "Patient/p1"}
NAME = "Trần Văn Hùng"


def icd(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": ICD10, "code": code, "display": text}], "text": text}


def loinc(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": text}], "text": text}


def category(code: str, system: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}]}]


COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TCMR = "urn:ytehub:cs:tcmr-vaccine"
CVX = "http://hl7.org/fhir/sid/cvx"


def status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {
                "use": "secondary",
                "system": "urn:ytehub:sid:site-patient-id",
                "value": "BN-2025-004521",
                "assigner": {"display": "Bệnh viện Bệnh Nhiệt đới"},
            },
            {
                "system": "urn:ytehub:sid:bhyt",
                "value": "GD4797912345678",
                "period": {"end": "2025-12-31"},
            },
            {"use": "official", "system": "urn:ytehub:sid:cccd", "value": "079095001234"},
        ],
        "name": [
            {"use": "official", "family": "Trần", "given": ["Văn", "Hùng"]},
            {"use": "nickname", "text": "Hùng Bé"},
        ],
        "gender": "male",
        "birthDate": "1995-03-10",
        "telecom": [{"system": "phone", "value": "0903123456", "use": "mobile"}],
        "address": [
            {
                "use": "home",
                "line": ["12 Lê Lợi"],
                "country": "VN",
                "extension": [{"url": "urn:ytehub:ext:commune-code", "valueCode": "26740"}],
            }
        ],
        "extension": [
            {
                "url": "urn:ytehub:ext:ethnicity",
                "valueCoding": {"system": "urn:ytehub:cs:dan-toc", "code": "01", "display": "Kinh"},
            },
            {"url": "urn:ytehub:ext:occupation", "valueString": "Giáo viên"},
        ],
    }


def encounter(
    eid: str,
    cls: str,
    start: str,
    end: str | None,
    provider: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    period = {"start": start} | ({"end": end} if end else {})
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": ACT_CODE, "code": cls},
        "subject": PT,
        "period": period,
        "serviceProvider": provider,
        **extra,
    }


def condition(cid: str, code: str, text: str, cat: str, clinical: str, **extra: Any) -> dict:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": status(CLINICAL, clinical),
        "verificationStatus": status(VERIFICATION, "confirmed"),
        "category": category(cat, COND_CAT),
        "code": icd(code, text),
        "subject": PT,
        **extra,
    }


def observation(oid: str, cat: str, code: dict, when: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": category(cat, OBS_CAT),
        "code": code,
        "subject": PT,
        "effectiveDateTime": when,
        **value,
    }


def quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    return {
        "value": value,
        "unit": unit,
        "system": "http://unitsofmeasure.org",
        "code": code or unit,
    }


def immunization(iid: str, code: str, cvx: str, when: str, dose: int, **extra: Any) -> dict:
    return {
        "resourceType": "Immunization",
        "id": iid,
        "status": "completed",
        "vaccineCode": {
            "coding": [{"system": TCMR, "code": code}, {"system": CVX, "code": cvx}],
        },
        "patient": PT,
        "occurrenceDateTime": when,
        "location": {"display": "Trạm Y tế Phường Sài Gòn"},
        "protocolApplied": [{"doseNumberPositiveInt": dose}],
        **extra,
    }


def compartment() -> list[dict[str, Any]]:
    """A realistic compartment: a dengue admission on top of known hypertension."""
    tyt = {"display": "Trạm Y tế Phường Sài Gòn"}
    bv = {"display": "Bệnh viện Bệnh Nhiệt đới"}
    return [
        # Encounters: a 2024 outpatient visit, a 2025 inpatient dengue stay, a follow-up.
        encounter("enc-2024", "AMB", "2024-03-15T08:10:00+07:00", "2024-03-15T08:40:00+07:00", tyt),
        encounter(
            "enc-dengue",
            "IMP",
            "2025-08-01T10:00:00+07:00",
            "2025-08-06T09:00:00+07:00",
            bv,
            diagnosis=[
                {"condition": {"reference": "Condition/cond-htn-2025"}, "rank": 2},
                {"condition": {"reference": "Condition/cond-dengue"}, "rank": 1},
                {"condition": {"reference": "Condition/cond-refuted"}, "rank": 3},
            ],
        ),
        encounter(
            "enc-followup",
            "AMB",
            "2025-08-20T09:00:00+07:00",
            None,
            {"identifier": {"system": "urn:ytehub:sid:facility", "value": "79010"}},
            reasonCode=[{"text": "Tái khám sau sốt xuất huyết"}],
        ),
        # Conditions
        condition(
            "cond-htn",
            "I10",
            "Tăng huyết áp vô căn (nguyên phát)",
            "problem-list-item",
            "active",
            onsetDateTime="2024-03",
            recordedDate="2024-03-15",
            encounter={"reference": "Encounter/enc-2024"},
        ),
        condition(
            "cond-htn-2025",
            "I10",
            "Tăng huyết áp vô căn (nguyên phát)",
            "encounter-diagnosis",
            "active",
            recordedDate="2025-08-01",
            encounter={"reference": "Encounter/enc-dengue"},
        ),
        condition(
            "cond-dengue",
            "A91",
            "Sốt xuất huyết Dengue",
            "encounter-diagnosis",
            "resolved",
            onsetDateTime="2025-07-30",
            recordedDate="2025-08-01",
        ),
        condition(
            "cond-pneumonia",
            "J18.9",
            "Viêm phổi, không xác định",
            "problem-list-item",
            "resolved",
            onsetDateTime="2010",
        ),
        condition(
            "cond-refuted",
            "A90",
            "Sốt Dengue",
            "encounter-diagnosis",
            "resolved",
            verificationStatus=status(VERIFICATION, "refuted"),
        ),
        # Allergy, family history, risk factors
        {
            "resourceType": "AllergyIntolerance",
            "id": "allergy-pen",
            "clinicalStatus": status(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"
            ),
            "type": "allergy",
            "category": ["medication"],
            "criticality": "high",
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": "764146007"}],
                "text": "Penicillin",
            },
            "patient": PT,
            "recordedDate": "2015-06",
            "reaction": [{"manifestation": [{"text": "Mày đay"}], "severity": "severe"}],
        },
        {
            "resourceType": "FamilyMemberHistory",
            "id": "fmh-mother",
            "status": "completed",
            "patient": PT,
            "relationship": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                ]
            },
            "condition": [{"code": icd("E11", "Đái tháo đường type 2")}],
        },
        observation(
            "obs-smoking",
            "social-history",
            loinc("72166-2", "Tình trạng hút thuốc lá"),
            "2025-08-01",
            valueCodeableConcept={"text": "Đã bỏ thuốc"},
        ),
        observation(
            "obs-alcohol",
            "social-history",
            loinc("74013-4", "Số đơn vị rượu mỗi ngày"),
            "2025-08-01",
            valueQuantity=quantity(2, "đơn vị/ngày", "{drinks}/d"),
        ),
        # Immunizations (TCMR)
        immunization("imm-hepb0", "HepB0", "08", "1995-03-10", 1),
        immunization(
            "imm-bcg",
            "BCG",
            "19",
            "1995-03-20",
            1,
            site={
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActSite", "code": "LA"}
                ]
            },
        ),
        immunization("imm-penta1", "DTP-HepB-Hib", "198", "1995-05-12", 1),
        # Lab results and vital signs
        observation(
            "obs-plt-1",
            "laboratory",
            loinc("777-3", "Tiểu cầu"),
            "2025-08-03T07:00:00+07:00",
            valueQuantity=quantity(45, "G/L", "10*9/L"),
            referenceRange=[{"low": quantity(150, "G/L"), "high": quantity(450, "G/L")}],
            interpretation=[
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "L",
                        }
                    ]
                }
            ],
        ),
        observation(
            "obs-plt-2",
            "laboratory",
            loinc("777-3", "Tiểu cầu"),
            "2025-08-05T07:00:00+07:00",
            valueQuantity=quantity(120, "G/L", "10*9/L"),
            referenceRange=[{"low": quantity(150, "G/L"), "high": quantity(450, "G/L")}],
        ),
        observation(
            "obs-temp",
            "vital-signs",
            loinc("8310-5", "Nhiệt độ cơ thể"),
            "2025-08-01T10:30:00+07:00",
            valueQuantity=quantity(39.2, "°C", "Cel"),
            referenceRange=[{"low": quantity(36.0, "°C"), "high": quantity(37.5, "°C")}],
            interpretation=[{"coding": [{"code": "H"}]}],
        ),
        observation(
            "obs-bp",
            "vital-signs",
            loinc("85354-6", "Huyết áp"),
            "2025-08-20T09:05:00+07:00",
            component=[
                {"code": loinc("8480-6", "Tâm thu"), "valueQuantity": quantity(150, "mmHg")},
                {"code": loinc("8462-4", "Tâm trương"), "valueQuantity": quantity(95, "mmHg")},
            ],
        ),
        {
            "resourceType": "DiagnosticReport",
            "id": "dr-cbc",
            "status": "final",
            "code": loinc("58410-2", "Tổng phân tích tế bào máu ngoại vi"),
            "subject": PT,
            "effectiveDateTime": "2025-08-03T07:00:00+07:00",
            "result": [{"reference": "Observation/obs-plt-1"}],
            "conclusion": "Giảm tiểu cầu",
        },
        # Medications
        {
            "resourceType": "MedicationRequest",
            "id": "mr-amlo",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Amlodipin 5 mg"},
            "subject": PT,
            "authoredOn": "2025-08-20",
            "dosageInstruction": [
                {
                    "text": "Uống 1 viên mỗi sáng",
                    "timing": {"repeat": {"boundsDuration": {"value": 30, "code": "d"}}},
                }
            ],
        },
        {
            "resourceType": "MedicationRequest",
            "id": "mr-amlo-2024",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Amlodipin 5 mg"},
            "subject": PT,
            "authoredOn": "2024-03-15",
            "dosageInstruction": [
                {
                    "text": "Uống 1 viên mỗi sáng",
                    "timing": {
                        "repeat": {"boundsPeriod": {"start": "2024-03-15", "end": "2024-04-13"}}
                    },
                }
            ],
        },
        {
            "resourceType": "MedicationRequest",
            "id": "mr-para",
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "N02BE01"}],
                "text": "Paracetamol 500 mg",
            },
            "subject": PT,
            "encounter": {"reference": "Encounter/enc-dengue"},
            "authoredOn": "2025-08-01",
            "dosageInstruction": [
                {
                    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "viên"}}],
                }
            ],
        },
        {
            "resourceType": "MedicationDispense",
            "id": "md-amlo",
            "status": "completed",
            "medicationCodeableConcept": {"text": "Amlodipin 5 mg"},
            "subject": PT,
            "authorizingPrescription": [{"reference": "MedicationRequest/mr-amlo"}],
            "whenHandedOver": "2025-08-20T10:00:00+07:00",
            "daysSupply": {"value": 30, "unit": "ngày", "code": "d"},
        },
        # An appointment for a follow-up visit.
        {
            "resourceType": "Appointment",
            "id": "appt-1",
            "status": "booked",
            "description": "Tái khám tăng huyết áp",
            "start": "2025-09-20T08:00:00+07:00",
            "end": "2025-09-20T08:30:00+07:00",
            "participant": [
                {"actor": PT, "status": "accepted"},
                {"actor": {"display": "Trạm Y tế Phường Sài Gòn"}, "status": "accepted"},
            ],
        },
        # Noise: unknown kinds, junk, another person's data, an entered-in-error dose.
        {"resourceType": "Basic", "id": "b1", "code": {"text": "x"}},
        {"resourceType": "Coverage", "id": "cov1", "status": "active"},
        {"no": "resourceType"},
        "garbage",  # type: ignore[list-item]
        observation(
            "obs-other-person",
            "laboratory",
            loinc("777-3", "Tiểu cầu"),
            "2025-08-04",
            valueQuantity=quantity(300, "G/L"),
        )
        | {"subject": {"reference": "Patient/p2"}},
        immunization("imm-error", "OPV", "178", "1995-05-12", 1) | {"status": "entered-in-error"},
    ]


@pytest.fixture(scope="module")
def record() -> PersonalRecord:
    return build_record(patient(), compartment(), as_of=AS_OF)


@pytest.fixture(scope="module")
def bundle(record: PersonalRecord) -> dict[str, Any]:
    return record.as_document_bundle(BASE, NOW)


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def test_administrative_information(record: PersonalRecord) -> None:
    admin = record.administrative
    assert admin.full_name == NAME
    assert admin.family_name == "Trần"
    assert admin.given_names == ("Văn", "Hùng")
    assert admin.sex == "male"
    assert admin.sex_label is not None and admin.sex_label.vi == "Nam"
    assert admin.birth_date == "1995-03-10"
    assert admin.age_years == 30
    assert [i.kind for i in admin.identifiers] == ["cccd", "bhyt", "facility"]
    assert admin.identifier("cccd") == "079095001234"
    assert admin.identifier("bhyt") == "GD4797912345678"
    bhyt = admin.identifiers[1]
    assert bhyt.valid_until == "2025-12-31"
    assert admin.identifiers[2].assigner == "Bệnh viện Bệnh Nhiệt đới"
    (address,) = admin.addresses
    assert address.commune_code == "26740"
    assert address.commune_name == "Phường Sài Gòn"
    assert address.province_code == "79"
    assert address.province_name == "Thành phố Hồ Chí Minh"
    assert address.text == "12 Lê Lợi, Phường Sài Gòn, Thành phố Hồ Chí Minh"
    assert admin.phones == ("0903123456",)
    assert admin.ethnicity == "Kinh"
    assert admin.occupation == "Giáo viên"
    assert admin.refs() == ("Patient/p1",)
    rows = dict(admin.tables("vi")[0].rows)
    assert rows["Ngày sinh"] == "10/03/1995 (30 tuổi)"
    assert rows["Số thẻ BHYT"] == "GD4797912345678 (hạn đến 31/12/2025)"


def test_history_allergies_family_and_risk_factors(record: PersonalRecord) -> None:
    history = record.history
    (allergy,) = history.allergies
    assert allergy.substance.text == "Penicillin"
    assert allergy.criticality == "high"
    assert allergy.categories == ("medication",)
    assert [r.vi for r in allergy.reactions] == ["Mày đay (nặng)"]
    assert [r.en for r in allergy.reactions] == ["Mày đay (severe)"]
    (mother,) = history.family_history
    assert mother.relationship_label.vi == "Mẹ"
    assert mother.conditions == ("E11 Đái tháo đường type 2",)
    kinds = {r.kind: r for r in history.risk_factors}
    assert kinds["tobacco"].value == "Đã bỏ thuốc"
    assert kinds["tobacco"].label.vi == "Hút thuốc lá"
    assert kinds["alcohol"].value == "2 đơn vị/ngày"


def test_chronic_detection_merges_repeated_records(record: PersonalRecord) -> None:
    (htn,) = record.history.chronic_conditions
    assert htn.condition.icd10 == "I10"
    assert htn.condition.chronic_group is not None
    assert htn.condition.chronic_group.vi == "Tăng huyết áp"
    assert htn.since == "2024-03"
    assert set(htn.refs) == {"Condition/cond-htn", "Condition/cond-htn-2025"}
    # Dengue is acute; pneumonia is a resolved problem-list item: neither is chronic.
    past = {c.ref: c for c in record.history.past_conditions}
    assert set(past) == {"Condition/cond-pneumonia"}
    assert not past["Condition/cond-pneumonia"].chronic


@pytest.mark.parametrize(
    ("code", "category", "clinical", "chronic"),
    [
        ("E11.9", "encounter-diagnosis", "active", True),
        ("C50", "encounter-diagnosis", "remission", True),
        ("D48.1", "encounter-diagnosis", "active", True),
        ("D50", "encounter-diagnosis", "active", False),
        ("B18.1", "encounter-diagnosis", "active", True),
        ("B19", "encounter-diagnosis", "active", False),
        ("J45", "encounter-diagnosis", "active", True),
        ("N18.3", "encounter-diagnosis", "active", True),
        ("A16", "encounter-diagnosis", "resolved", True),
        ("F25", "encounter-diagnosis", "active", True),
        ("G40.9", "encounter-diagnosis", "active", True),
        ("K29", "problem-list-item", "active", True),
        ("K29", "problem-list-item", "inactive", False),
        ("J06", "encounter-diagnosis", "active", False),
    ],
)
def test_chronic_rule(code: str, category: str, clinical: str, chronic: bool) -> None:
    resources = [condition("c", code, "x", category, clinical)]
    built = build_record(patient(), resources, as_of=AS_OF)
    assert bool(built.history.chronic_conditions) is chronic
    assert bool(built.history.past_conditions) is not chronic


def test_system_less_icd_code_is_recognised() -> None:
    res = condition("c", "I10", "THA", "encounter-diagnosis", "active")
    res["code"] = {"coding": [{"code": "I10"}], "text": "THA"}
    built = build_record(patient(), [res], as_of=AS_OF)
    assert built.history.chronic_conditions[0].condition.icd10 == "I10"


def test_immunizations_grouped_by_vaccine(record: PersonalRecord) -> None:
    groups = record.immunizations.groups
    assert [g.code.code for g in groups] == ["HepB0", "BCG", "DTP-HepB-Hib"]
    by_code = {g.code.code: g for g in groups}
    assert by_code["BCG"].label.vi == "Vắc xin phòng lao (BCG)"
    assert by_code["BCG"].label.en == "BCG (tuberculosis)"
    (bcg,) = by_code["BCG"].doses
    assert bcg.date == "1995-03-20"
    assert bcg.dose_number == "1"
    assert bcg.site is not None and bcg.site.vi == "Cánh tay trái"
    assert bcg.facility == "Trạm Y tế Phường Sài Gòn"
    # The entered-in-error OPV dose is gone.
    assert "Immunization/imm-error" not in record.immunizations.refs()
    rows = record.immunizations.tables("vi")[0].rows
    assert rows[1][:4] == ("Vắc xin phòng lao (BCG)", "1", "20/03/1995", "Cánh tay trái")


def test_doses_of_one_vaccine_oldest_first() -> None:
    doses = [
        immunization("d3", "DTP-HepB-Hib", "198", "2024-06-01", 3),
        immunization("d1", "DTP-HepB-Hib", "198", "2024-04-01", 1),
        immunization("d2", "DTP-HepB-Hib", "198", "2024-05-01", 2),
    ]
    built = build_record(patient(), doses, as_of=AS_OF)
    (group,) = built.immunizations.groups
    assert [d.dose_number for d in group.doses] == ["1", "2", "3"]


def test_encounters_newest_first_with_diagnoses(record: PersonalRecord) -> None:
    encounters = record.encounters.encounters
    assert [e.ref for e in encounters] == [
        "Encounter/enc-followup",
        "Encounter/enc-dengue",
        "Encounter/enc-2024",
    ]
    followup, dengue, first = encounters
    assert followup.facility == "79010"  # identifier only
    assert followup.reasons == ("Tái khám sau sốt xuất huyết",)
    assert followup.diagnoses == ()
    assert dengue.inpatient
    assert dengue.class_label.vi == "Nội trú"
    assert dengue.class_label.en == "Inpatient"
    assert dengue.length_of_stay_days == 5
    assert dengue.facility == "Bệnh viện Bệnh Nhiệt đới"
    # Ranked: principal (rank 1) first; the refuted one is left out.
    assert [d.label for d in dengue.diagnoses] == [
        "A91 Sốt xuất huyết Dengue",
        "I10 Tăng huyết áp vô căn (nguyên phát)",
    ]
    assert first.class_label.vi == "Ngoại trú"
    assert [d.ref for d in first.diagnoses] == ["Condition/cond-htn"]
    (appointment,) = record.encounters.appointments
    assert appointment.upcoming
    assert appointment.facility == "Trạm Y tế Phường Sài Gòn"


def test_medications_current_and_past(record: PersonalRecord) -> None:
    meds = record.medications
    assert [m.ref for m in meds.current] == ["MedicationRequest/mr-amlo"]
    (amlo,) = meds.current
    assert amlo.end == "2025-09-18"
    assert amlo.dose is not None and amlo.dose.vi == "Uống 1 viên mỗi sáng"
    assert amlo.dispense_refs == ("MedicationDispense/md-amlo",)
    assert amlo.dispensed == ("2025-08-20T10:00:00+07:00",)
    assert [m.ref for m in meds.past] == [
        "MedicationRequest/mr-para",
        "MedicationRequest/mr-amlo-2024",
    ]
    para = meds.past[0]
    assert para.dose is not None
    assert para.dose.vi == "1 viên × 3 lần/ngày"
    assert para.dose.en == "1 viên × 3 times per day"
    assert para.code.code == "N02BE01"
    statuses = [row[4] for row in meds.tables("vi")[1].rows]
    assert statuses == ["Đã dùng xong", "Đã hết đợt"]  # the 2024 course is over
    assert set(meds.refs()) == {
        "MedicationRequest/mr-amlo",
        "MedicationRequest/mr-amlo-2024",
        "MedicationRequest/mr-para",
        "MedicationDispense/md-amlo",
    }


def test_results_newest_first_with_units_ranges_flags(record: PersonalRecord) -> None:
    results = record.results.results
    assert [r.ref for r in results] == [
        "Observation/obs-bp",
        "Observation/obs-plt-2",
        "Observation/obs-plt-1",
        "Observation/obs-temp",
    ]
    bp, plt2, plt1, temp = results
    assert bp.value_with_unit == "150/95 mmHg"
    assert plt1.value_with_unit == "45 G/L"
    assert plt1.reference_range == "150–450 G/L"
    assert plt1.interpretation == "L" and not plt1.interpretation_derived
    assert plt1.report_ref == "DiagnosticReport/dr-cbc"
    assert plt2.interpretation == "L" and plt2.interpretation_derived
    assert temp.value_with_unit == "39.2 °C"
    assert temp.interpretation_label is not None and temp.interpretation_label.vi == "Cao"
    assert "vital-signs" in temp.category
    (report,) = record.results.reports
    assert report.conclusion == "Giảm tiểu cầu"
    assert report.result_refs == ("Observation/obs-plt-1",)
    # Someone else's observation never reaches this record.
    assert "Observation/obs-other-person" not in record.resources


def test_timeline_newest_first(record: PersonalRecord) -> None:
    timeline = record.timeline
    starts = [parse_fhir_date(e.date).low for e in timeline]
    assert starts == sorted(starts, reverse=True)
    # 20/08: dispensed 10:00, blood pressure 09:05, follow-up visit 09:00.
    assert [e.ref for e in timeline[:3]] == [
        "MedicationDispense/md-amlo",
        "Observation/obs-bp",
        "Encounter/enc-followup",
    ]
    assert timeline[0].label.vi == "Cấp thuốc: Amlodipin 5 mg"
    visit = timeline[2]
    assert visit.kind == "encounter"
    assert visit.label.vi == "Khám ngoại trú — 79010"
    assert visit.label.en == "Outpatient visit — 79010"
    kinds = {e.kind for e in timeline}
    assert kinds == {"encounter", "diagnosis", "immunization", "lab", "medication"}
    assert timeline[-1].ref == "Immunization/imm-hepb0"
    labels = [e.label.vi for e in timeline]
    assert "Chẩn đoán: A91 Sốt xuất huyết Dengue" in labels
    assert "Tiêm chủng: Vắc xin phòng lao (BCG), mũi 1" in labels
    assert "Xét nghiệm, cận lâm sàng: Tiểu cầu: 45 G/L (Thấp)" in labels
    assert any(e.label.en == "Prescribed: Paracetamol 500 mg" for e in timeline)


def test_as_dict_is_json_ready(record: PersonalRecord) -> None:
    data = record.as_dict()
    text = json.dumps(data, ensure_ascii=False)
    assert NAME in text
    assert data["as_of"] == "2025-09-01T08:00:00+07:00"
    assert data["administrative"]["title"] == {
        "vi": "Thông tin hành chính",
        "en": "Administrative information",
    }
    assert data["history"]["chronic_conditions"][0]["since"] == "2024-03"
    assert data["encounters"]["encounters"][1]["class_label"]["vi"] == "Nội trú"
    assert data["immunizations"]["empty"] is False
    assert data["timeline"][0]["label"]["en"] == "Dispensed: Amlodipin 5 mg"


# --------------------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------------------


def test_empty_record() -> None:
    bare = {"resourceType": "Patient", "id": "lonely"}
    built = build_record(bare, [], as_of=AS_OF)
    assert built.administrative.full_name == ""
    for section in built.sections()[1:]:
        assert section.is_empty
        assert section.refs() == ()
    assert built.timeline == ()
    tables = built.immunizations.tables("vi")
    assert tables[0].rows == () and tables[0].empty_text == "Chưa có dữ liệu tiêm chủng."
    document = built.as_document_bundle(BASE, NOW)
    Bundle.model_validate(document)
    sections = document["entry"][0]["resource"]["section"]
    assert [s.get("entry") for s in sections] == [[{"reference": "Patient/lonely"}]] + [None] * 5
    assert all("emptyReason" in s for s in sections[1:])
    assert "Chưa có dữ liệu tiêm chủng." in sections[2]["text"]["div"]
    pdf = record_pdf(built, generated_at=NOW)
    assert pdf.startswith(b"%PDF")


def test_partial_dates_and_missing_data() -> None:
    person = {
        "resourceType": "Patient",
        "id": "old",
        "name": [{"text": "Lê Thị Tư"}],
        "gender": "female",
        "birthDate": "1950",
        "address": [{"text": "Ấp 3, xã Tân Phú"}],
    }
    me = {"reference": "Patient/old"}
    amb = {"system": ACT_CODE, "code": "AMB"}
    # Minimal but valid FHIR: required elements only, dates of every precision.
    resources: list[dict[str, Any]] = [
        condition(
            "c1", "E11", "Đái tháo đường", "problem-list-item", "active", onsetDateTime="2015"
        )
        | {"subject": me},
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": amb,
            "period": {"start": "2025-08"},
        },
        {
            "resourceType": "Encounter",
            "id": "e2",
            "status": "finished",
            "class": amb,
            "period": {"start": "2025-08-15"},
        },
        {"resourceType": "Encounter", "id": "e4", "status": "finished", "class": amb},
        {"resourceType": "Observation", "status": "final", "code": {"text": "Đường huyết"}},
        {
            "resourceType": "Immunization",
            "id": "i1",
            "status": "completed",
            "patient": me,
            "vaccineCode": {"text": "Vắc xin cúm"},
            "occurrenceString": "khi còn nhỏ",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "status": "unknown",
            "intent": "order",
            "subject": me,
            "medicationCodeableConcept": {"text": "Metformin"},
        },
        {"resourceType": "AllergyIntolerance", "id": "a1", "patient": me},
        {
            "resourceType": "FamilyMemberHistory",
            "id": "f1",
            "status": "partial",
            "patient": me,
            "relationship": {"text": "Anh trai"},
        },
        {
            "resourceType": "Procedure",
            "id": "pr1",
            "status": "completed",
            "subject": me,
            "performedDateTime": "2001",
            "code": {"text": "Mổ ruột thừa"},
        },
    ]
    # Not valid FHIR, still summarised (never shown in the document test below).
    malformed: list[dict[str, Any]] = [
        {"resourceType": "Encounter", "id": "e3", "status": "finished", "period": {"start": "bad"}},
        {"resourceType": "Condition", "id": "c9", "code": "I10", "onsetDateTime": 2015},
        {"resourceType": "Observation", "id": "o9", "valueQuantity": {"value": "NaN"}},
        {"resourceType": "Immunization", "id": "i9", "protocolApplied": "x", "vaccineCode": []},
        {"resourceType": "MedicationRequest", "id": "m9", "dosageInstruction": [{"timing": 3}]},
    ]
    broken = build_record(person, resources + malformed, as_of=AS_OF)
    assert {e.ref for e in broken.encounters.encounters} >= {"Encounter/e3"}
    assert record_pdf(broken, generated_at=NOW).startswith(b"%PDF")
    json.dumps(broken.as_dict())

    built = build_record(person, resources, as_of=AS_OF)
    assert built.administrative.age_years == 75
    assert built.administrative.addresses[0].text == "Ấp 3, xã Tân Phú"
    assert built.administrative.addresses[0].commune_code is None
    refs = [e.ref for e in built.encounters.encounters]
    assert refs == ["Encounter/e2", "Encounter/e1", "Encounter/e4"]
    assert built.history.chronic_conditions[0].since == "2015"
    assert built.history.procedures[0].date == "2001"
    assert built.history.family_history[0].relationship_label.vi == "Anh trai"
    (flu,) = built.immunizations.groups
    assert flu.label.vi == "Vắc xin cúm" and flu.doses[0].date is None
    assert [m.name for m in built.medications.past] == ["Metformin"]
    assert "Procedure/pr1" in {e.ref for e in built.timeline}
    assert display_date("1950") == "1950"
    assert display_date("2025-08") == "08/2025"
    assert display_date("2025-08", "en") == "2025-08"
    assert display_date("2025-08-01T03:00:00Z") == "01/08/2025 10:00"
    assert display_date("bad") == "bad"
    assert display_period("2025-08-01", "2025-08-06") == "01/08/2025 – 06/08/2025"
    assert (
        display_period("2024-03-15T08:10:00+07:00", "2024-03-15T08:40:00+07:00")
        == "15/03/2024 08:10–08:40"
    )
    assert display_period(None, "2025-08-06", "en") == "– 2025-08-06"
    # An Observation without an id gets a stable one; everything still makes a document.
    (result,) = built.results.results
    assert result.ref.startswith("Observation/")
    again = build_record(person, resources, as_of=AS_OF)
    assert again.results.results[0].ref == result.ref
    Bundle.model_validate(built.as_document_bundle(BASE, NOW))
    for lang in ("vi", "en"):
        assert record_pdf(built, lang=lang, generated_at=NOW).startswith(b"%PDF")


def test_a_patient_without_id_gets_a_stable_one() -> None:
    person = patient()
    del person["id"]
    first = build_record(person, [], as_of=AS_OF)
    second = build_record(person, [], as_of=AS_OF)
    assert first.administrative.ref == second.administrative.ref
    assert first.administrative.ref.startswith("Patient/")


# --------------------------------------------------------------------------------------
# FHIR document
# --------------------------------------------------------------------------------------

EXPECTED_SECTION_REFS = {
    "administrative": {"Patient/p1"},
    "history": {
        "AllergyIntolerance/allergy-pen",
        "Condition/cond-htn",
        "Condition/cond-htn-2025",
        "Condition/cond-pneumonia",
        "FamilyMemberHistory/fmh-mother",
        "Observation/obs-smoking",
        "Observation/obs-alcohol",
    },
    "immunizations": {"Immunization/imm-hepb0", "Immunization/imm-bcg", "Immunization/imm-penta1"},
    "encounters": {
        "Encounter/enc-2024",
        "Encounter/enc-dengue",
        "Encounter/enc-followup",
        "Condition/cond-htn",
        "Condition/cond-htn-2025",
        "Condition/cond-dengue",
        "Appointment/appt-1",
    },
    "medications": {
        "MedicationRequest/mr-amlo",
        "MedicationRequest/mr-amlo-2024",
        "MedicationRequest/mr-para",
        "MedicationDispense/md-amlo",
    },
    "results": {
        "Observation/obs-plt-1",
        "Observation/obs-plt-2",
        "Observation/obs-temp",
        "Observation/obs-bp",
        "DiagnosticReport/dr-cbc",
    },
}


def test_document_bundle_validates_with_r4b(bundle: dict[str, Any]) -> None:
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "document"
    assert bundle["identifier"]["system"] == "urn:ietf:rfc:3986"
    assert bundle["timestamp"] == "2025-09-01T09:30:00+07:00"
    composition = bundle["entry"][0]["resource"]
    Composition.model_validate(composition)
    assert composition["resourceType"] == "Composition"
    assert composition["status"] == "final"
    assert composition["title"] == "Hồ sơ sức khỏe cá nhân"
    assert {"system": LOINC, "code": "60591-5", "display": "Patient summary Document"} in (
        composition["type"]["coding"]
    )
    assert composition["subject"]["reference"] == "Patient/p1"
    assert bundle["entry"][1]["resource"]["resourceType"] == "Patient"


def test_composition_sections_reference_exactly_their_resources(bundle: dict[str, Any]) -> None:
    sections = bundle["entry"][0]["resource"]["section"]
    got = {}
    for section in sections:
        (coding,) = [c for c in section["code"]["coding"] if c["system"] == SECTION_CODE_SYSTEM]
        got[coding["code"]] = {e["reference"] for e in section["entry"]}
        assert section["title"]
    assert got == EXPECTED_SECTION_REFS


def test_bundle_holds_every_referenced_resource_once(bundle: dict[str, Any]) -> None:
    entries = bundle["entry"]
    urls = [e["fullUrl"] for e in entries]
    assert len(urls) == len(set(urls))
    for entry in entries:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{BASE}/{resource['resourceType']}/{resource['id']}"
    referenced = set().union(*EXPECTED_SECTION_REFS.values())
    held = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries[1:]}
    assert held == referenced
    for noise in ("Basic/b1", "Coverage/cov1", "Observation/obs-other-person"):
        assert noise not in held


def test_narratives_are_valid_escaped_xhtml(bundle: dict[str, Any]) -> None:
    composition = bundle["entry"][0]["resource"]
    for section in composition["section"]:
        assert section["text"]["status"] == "generated"
        root = etree.fromstring(section["text"]["div"].encode())
        assert root.tag == f"{{{XHTML}}}div"
        assert root.find(f".//{{{XHTML}}}table") is not None
    history = etree.fromstring(composition["section"][1]["text"]["div"].encode())
    cells = [td.text for td in history.iter(f"{{{XHTML}}}td")]
    assert "Penicillin" in cells


def test_narrative_escapes_markup() -> None:
    nasty = condition("c", "I10", 'THA <script>alert("x")</script> & "co"', "x", "active")
    nasty["note"] = [{"text": "\x00"}]
    built = build_record(patient(), [nasty], as_of=AS_OF)
    document = built.as_document_bundle(BASE, NOW)
    Bundle.model_validate(document)
    div = document["entry"][0]["resource"]["section"][1]["text"]["div"]
    assert "<script>" not in div
    root = etree.fromstring(div.encode())
    assert any(
        '<script>alert("x")</script>' in (td.text or "") for td in root.iter(f"{{{XHTML}}}td")
    )


def test_document_is_deterministic(record: PersonalRecord) -> None:
    assert record.as_document_bundle(BASE, NOW) == record.as_document_bundle(BASE + "/", NOW)
    later = record.as_document_bundle(BASE, NOW + timedelta(minutes=1))
    assert later["identifier"] != record.as_document_bundle(BASE, NOW)["identifier"]


# --------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------


def _pdf_text(pdf: bytes) -> str:
    """Text of an fpdf2 PDF: glyph ids in the content streams mapped back through each
    font's ToUnicode CMap (fpdf2 subsets fonts, so the bytes never hold the plain text)."""
    objects = {
        int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj\s*(.*?)endobj", pdf, re.S)
    }

    def stream(body: bytes) -> bytes:
        found = re.search(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S)
        assert found is not None
        data = found.group(1)
        return zlib.decompress(data) if b"/FlateDecode" in body else data

    cmaps: dict[bytes, dict[int, str]] = {}
    for body in objects.values():
        fonts = re.search(rb"/Font\s*<<(.*?)>>", body, re.S)
        if not fonts:
            continue
        for name, num in re.findall(rb"/(F\d+)\s+(\d+) 0 R", fonts.group(1)):
            font = objects[int(num)]
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font)
            if not to_unicode:
                continue
            table: dict[int, str] = {}
            cmap = stream(objects[int(to_unicode.group(1))]).decode("latin-1")
            for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
                for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                    table[int(src, 16)] = bytes.fromhex(dst).decode("utf-16-be")
            for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
                for lo, hi, dst in re.findall(
                    r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block
                ):
                    start = int(dst, 16)
                    for offset, gid in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                        table[gid] = chr(start + offset)
            cmaps[name] = table

    escapes = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}

    def unescape(raw: bytes) -> bytes:
        def one(match: re.Match[bytes]) -> bytes:
            code = match.group(1)
            if code[:1].isdigit():
                return bytes([int(code, 8)])
            return escapes.get(code, code)

        return re.sub(rb"\\([0-7]{1,3}|.)", one, raw, flags=re.S)

    out: list[str] = []
    for body in objects.values():
        if b"stream" not in body or b"/Length" not in body:
            continue
        try:
            content = stream(body)
        except (AssertionError, zlib.error):
            continue
        font: dict[int, str] = {}
        for token in re.finditer(rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj", content, re.S):
            if token.group(1):
                font = cmaps.get(token.group(1), {})
            elif font:
                raw = unescape(token.group(2))
                out.append(
                    "".join(
                        font.get(int.from_bytes(raw[i : i + 2]), "?")
                        for i in range(0, len(raw) - 1, 2)
                    )
                )
    return "\n".join(out)


def test_pdf_is_deterministic_and_bilingual(record: PersonalRecord) -> None:
    vi = record_pdf(record, generated_at=NOW)
    assert vi.startswith(b"%PDF")
    assert vi == record_pdf(record, lang="vi", generated_at=NOW)
    en = record_pdf(record, lang="en", generated_at=NOW)
    assert en.startswith(b"%PDF") and en != vi
    assert record_pdf(record, generated_at=NOW + timedelta(hours=1)) != vi
    assert 5_000 < len(vi) < 400_000


def test_pdf_text_keeps_vietnamese(record: PersonalRecord) -> None:
    text = _pdf_text(record_pdf(record, generated_at=NOW))
    assert NAME in text
    assert "HỒ SƠ SỨC KHỎE CÁ NHÂN" in text
    assert "Phường Sài Gòn" in text
    assert "Tạo bởi ytehub lúc 01/09/2025 09:30 — dữ liệu tổng hợp" in text
    assert "Trang 1/" in text
    english = _pdf_text(record_pdf(record, lang="en", generated_at=NOW))
    assert "Generated by ytehub at 2025-09-01 09:30 — aggregated data" in english
    assert "PERSONAL HEALTH RECORD" in english


def test_pdf_survives_odd_text() -> None:
    odd = condition("c", "I10", "THA 高血压 \x07 " + "x" * 300, "problem-list-item", "active")
    built = build_record(patient(), [odd], as_of=AS_OF)
    assert record_pdf(built, generated_at=datetime(2025, 9, 1, 9, 30)).startswith(b"%PDF")


def test_wrong_patient_resource_is_refused() -> None:
    with pytest.raises(ValueError, match="Patient"):
        build_record({"resourceType": "Observation"}, [])


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "coding",
                    "code",
                    "text",
                    "display",
                    "system",
                    "value",
                    "unit",
                    "reference",
                    "start",
                    "end",
                    "rank",
                    "condition",
                    "low",
                    "high",
                    "repeat",
                    "timing",
                    "boundsDuration",
                    "boundsPeriod",
                    "valueCode",
                    "url",
                    "extension",
                    "given",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
_FIELDS = [
    "id",
    "status",
    "code",
    "category",
    "clinicalStatus",
    "verificationStatus",
    "encounter",
    "subject",
    "period",
    "class",
    "diagnosis",
    "serviceProvider",
    "onsetDateTime",
    "recordedDate",
    "effectiveDateTime",
    "valueQuantity",
    "valueCodeableConcept",
    "component",
    "referenceRange",
    "interpretation",
    "result",
    "vaccineCode",
    "occurrenceDateTime",
    "protocolApplied",
    "site",
    "medicationCodeableConcept",
    "dosageInstruction",
    "authoredOn",
    "authorizingPrescription",
    "whenHandedOver",
    "daysSupply",
    "reaction",
    "relationship",
    "start",
    "participant",
    "content",
    "performedDateTime",
    "location",
    "performer",
]


@given(
    st.lists(
        st.fixed_dictionaries(
            {"resourceType": st.sampled_from(sorted(SECTION_TYPES))},
            optional={
                f: _JSON | st.sampled_from(["2025", "2025-08", "2025-08-01T10:00Z"])
                for f in _FIELDS
            },
        ),
        max_size=6,
    ),
    _JSON,
)
@settings(max_examples=150, deadline=None)
def test_any_json_shape_is_summarised_without_error(
    resources: list[dict[str, Any]], noise: Any
) -> None:
    person = patient() | {"name": noise if isinstance(noise, list) else [noise]}
    built = build_record(person, resources, as_of=AS_OF)
    json.dumps(built.as_dict(), allow_nan=True)
    for section in built.sections():
        for lang in ("vi", "en"):
            section.tables(lang)
    document = built.as_document_bundle(BASE, NOW)
    for section in document["entry"][0]["resource"]["section"]:
        etree.fromstring(section["text"]["div"].encode())
