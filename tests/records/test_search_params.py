"""The search-parameter data loads, names real FHIR R4 elements, and rejects bad edits."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from ytehub.core.errors import DomainError
from ytehub.records.search_params import (
    COMMON_PARAMS,
    SEARCH_PARAMS_PATH,
    SEARCHABLE_TYPES,
    SearchParam,
    compile_path,
    load_search_params,
    params_for,
    patient_compartment_params,
)

EXPECTED_TYPES = {
    "Patient",
    "Person",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Encounter",
    "EpisodeOfCare",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "Procedure",
    "Medication",
    "MedicationRequest",
    "MedicationDispense",
    "Immunization",
    "ImmunizationRecommendation",
    "AllergyIntolerance",
    "ServiceRequest",
    "Appointment",
    "Composition",
    "DocumentReference",
    "Provenance",
    "AuditEvent",
}

# FHIR element types each parameter type can index (R4 search rules).
COMPATIBLE: dict[str, set[str]] = {
    "token": {
        "Coding",
        "CodeableConcept",
        "Identifier",
        "ContactPoint",
        "code",
        "string",
        "boolean",
        "uri",
        "id",
        "canonical",
    },
    "string": {"string", "markdown", "HumanName", "Address"},
    "date": {"date", "dateTime", "instant", "Period", "Timing"},
    "reference": {"Reference", "canonical", "uri"},
    "quantity": {"Quantity", "Age", "Duration", "Money", "SimpleQuantity", "Distance", "Count"},
    "uri": {"uri", "url", "canonical"},
    "number": {"decimal", "integer", "positiveInt", "unsignedInt"},
}


# --------------------------------------------------------------------------- R4B model walking


def _field(model: Any, name: str) -> Any:
    """The pydantic field for JSON element ``name`` (fhir.resources keeps FHIR names, but
    renames Python keywords: ``class`` is ``class_fhir`` with alias ``class``)."""
    for key, info in model.model_fields.items():
        if (info.alias or key) == name and not key.endswith("__ext"):
            return info
    return None


def _element_type(annotation: Any) -> str:
    """The FHIR type name behind a field annotation: ``CodeableConcept``, ``dateTime`` …"""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            assert len(args) == 1, annotation
            annotation = args[0]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Annotated:
            marker = typing.get_args(annotation)[1]
            name = type(marker).__name__
            return name[0].lower() + name[1:]
        else:
            break
    if annotation is bool:
        return "boolean"
    name = annotation.__name__
    assert name.endswith("Type"), annotation
    return name.removesuffix("Type")


def _resolve(resource_type: str, path: str) -> tuple[str, Any]:
    """Walk ``path`` through the R4B models; the leaf's FHIR type and its field info."""
    compiled = compile_path(path)
    model = get_fhir_model_class(resource_type)
    info: Any = None
    kind = resource_type
    for step in compiled.steps:
        if isinstance(step, tuple):
            name, literal = step
            where = _field(model, name)
            assert where is not None, f"{path}: where({name}=…) names no element of {kind}"
            allowed = (where.json_schema_extra or {}).get("enum_values")
            if allowed and "+" not in allowed:
                assert literal in allowed, f"{path}: {literal!r} not in {allowed}"
            continue
        assert model is not None, f"{path}: {kind} is a primitive, it has no {step!r}"
        info = _field(model, step)
        assert info is not None, f"{path}: {kind} has no element {step!r}"
        kind = _element_type(info.annotation)
        model = get_fhir_model_class(kind) if kind[0].isupper() else None
    return kind, info


ALL_PARAMS: list[SearchParam] = [
    *COMMON_PARAMS.values(),
    *(p for t in SEARCHABLE_TYPES for p in params_for(t).values() if p.resource_type != "Resource"),
]


# --------------------------------------------------------------------------- the packaged data


def test_packaged_definitions_load_for_every_type() -> None:
    assert set(SEARCHABLE_TYPES) == EXPECTED_TYPES
    assert tuple(sorted(SEARCHABLE_TYPES)) == SEARCHABLE_TYPES
    loaded = load_search_params(SEARCH_PARAMS_PATH)
    assert loaded.fhir_version.startswith("4.")
    assert set(loaded.by_type) == EXPECTED_TYPES
    raw = json.loads(SEARCH_PARAMS_PATH.read_text(encoding="utf-8"))
    entries = sum(len(v) for v in raw["resources"].values())
    own = [p for t in SEARCHABLE_TYPES for p in params_for(t).values() if p.resource_type == t]
    assert len(own) == entries
    for resource_type in SEARCHABLE_TYPES:
        assert len(params_for(resource_type)) - len(COMMON_PARAMS) >= 8, resource_type


def test_common_params_are_valid_everywhere() -> None:
    assert set(COMMON_PARAMS) == {"_id", "_lastUpdated", "_tag", "_profile", "_security"}
    assert COMMON_PARAMS["_tag"].paths == ("Resource.meta.tag",)
    for resource_type in (*SEARCHABLE_TYPES, "Basic", "NoSuchType"):
        params = params_for(resource_type)
        for name, param in COMMON_PARAMS.items():
            assert params[name] is param
    assert dict(params_for("Basic")) == dict(COMMON_PARAMS)


@pytest.mark.parametrize("param", ALL_PARAMS, ids=lambda p: f"{p.resource_type}.{p.name}")
def test_every_path_is_an_r4_element_of_a_fitting_type(param: SearchParam) -> None:
    for path in param.paths:
        assert path.split(".", 1)[0] == param.resource_type
        kind, info = _resolve(param.resource_type, path)
        if compile_path(path).exists:
            continue
        assert kind in COMPATIBLE[param.type], f"{path} is {kind}, not for a {param.type} param"
        if param.type == "reference":
            declared = (info.json_schema_extra or {}).get("enum_reference_types") or []
            if declared and "Resource" not in declared:
                assert set(param.target_types) <= set(declared), (path, declared)
                assert param.target_types, f"{path}: list the targets ({declared})"
        else:
            assert param.target_types == ()


def test_the_parameters_clinicians_use_are_there() -> None:
    wanted = {
        "Patient": {
            "identifier": "token",
            "name": "string",
            "family": "string",
            "given": "string",
            "birthdate": "date",
            "gender": "token",
            "address": "string",
            "address-city": "string",
            "telecom": "token",
            "phone": "token",
            "active": "token",
            "general-practitioner": "reference",
            "organization": "reference",
            "link": "reference",
            "deceased": "token",
        },
        "Encounter": {
            "subject": "reference",
            "patient": "reference",
            "class": "token",
            "type": "token",
            "status": "token",
            "date": "date",
            "participant": "reference",
            "service-provider": "reference",
            "location": "reference",
            "identifier": "token",
            "reason-code": "token",
            "episode-of-care": "reference",
        },
        "Observation": {
            "subject": "reference",
            "patient": "reference",
            "code": "token",
            "category": "token",
            "date": "date",
            "value-quantity": "quantity",
            "status": "token",
            "encounter": "reference",
            "identifier": "token",
            "performer": "reference",
        },
        "Condition": {
            "subject": "reference",
            "patient": "reference",
            "code": "token",
            "clinical-status": "token",
            "verification-status": "token",
            "category": "token",
            "onset-date": "date",
            "recorded-date": "date",
            "encounter": "reference",
            "identifier": "token",
        },
        "Immunization": {
            "patient": "reference",
            "vaccine-code": "token",
            "date": "date",
            "status": "token",
            "lot-number": "string",
            "location": "reference",
            "performer": "reference",
            "identifier": "token",
        },
        "MedicationRequest": {
            "subject": "reference",
            "patient": "reference",
            "code": "token",
            "medication": "reference",
            "status": "token",
            "intent": "token",
            "authoredon": "date",
            "encounter": "reference",
            "requester": "reference",
            "identifier": "token",
        },
        "Composition": {
            "subject": "reference",
            "patient": "reference",
            "type": "token",
            "date": "date",
            "author": "reference",
            "identifier": "token",
            "status": "token",
        },
        "DocumentReference": {
            "subject": "reference",
            "patient": "reference",
            "type": "token",
            "date": "date",
            "status": "token",
            "identifier": "token",
            "relatesto": "reference",
        },
        "Provenance": {
            "target": "reference",
            "agent": "reference",
            "recorded": "date",
            "entity": "reference",
        },
        "AuditEvent": {
            "date": "date",
            "agent": "reference",
            "entity": "reference",
            "type": "token",
            "action": "token",
            "patient": "reference",
        },
        "Appointment": {
            "patient": "reference",
            "actor": "reference",
            "date": "date",
            "status": "token",
            "service-type": "token",
        },
    }
    for resource_type, names in wanted.items():
        params = params_for(resource_type)
        for name, kind in names.items():
            assert name in params, f"{resource_type}.{name} is missing"
            assert params[name].type == kind, f"{resource_type}.{name}"
    assert params_for("Condition")["onset-date"].paths == (
        "Condition.onsetDateTime",
        "Condition.onsetPeriod",
    )
    assert params_for("Observation")["value-quantity"].paths == ("Observation.valueQuantity",)


def test_patient_params_are_references_to_patients() -> None:
    for resource_type in SEARCHABLE_TYPES:
        param = params_for(resource_type).get("patient")
        if param is None:
            continue
        assert param.type == "reference"
        assert param.target_types == ("Patient",), resource_type
    clinical = EXPECTED_TYPES - {
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "Medication",
    }
    assert {t for t in clinical if "patient" not in params_for(t)} == set()


def test_patient_compartment() -> None:
    assert patient_compartment_params("Observation") == ("subject", "performer")
    assert patient_compartment_params("Immunization") == ("patient",)
    assert patient_compartment_params("Encounter") == ("patient",)
    for outside in ("Organization", "Practitioner", "Location", "Medication", "Basic"):
        assert patient_compartment_params(outside) == ()
    for resource_type in SEARCHABLE_TYPES:
        for name in patient_compartment_params(resource_type):
            param = params_for(resource_type)[name]
            assert param.type == "reference"
            assert not param.target_types or "Patient" in param.target_types


# --------------------------------------------------------------------------- the path subset


def test_compile_path() -> None:
    assert compile_path("Patient.name.given").steps == ("name", "given")
    phone = compile_path("Patient.telecom.where(system='phone')")
    assert phone.steps == ("telecom", ("system", "phone"))
    commune = compile_path(
        "Patient.address.extension.where(url='urn:ytehub:ext:commune-code').valueCode"
    )
    assert commune.steps == (
        "address",
        "extension",
        ("url", "urn:ytehub:ext:commune-code"),
        "valueCode",
    )
    deceased = compile_path("Patient.deceasedDateTime.exists()")
    assert deceased.exists and deceased.steps == ("deceasedDateTime",)
    for bad in (
        "Patient",
        "patient.name",
        "Patient..name",
        "Patient.name.",
        "Patient.Name",
        "Patient.where(system='phone')",
        "Patient.name.exists().given",
        "(Observation.value as Quantity)",
        "Observation.value.as(Quantity)",
        "Patient.name | Patient.address",
        "Patient.telecom.where(system=phone)",
    ):
        with pytest.raises(ValueError):
            compile_path(bad)


# --------------------------------------------------------------------------- bad edits fail


def _definitions(**changes: Any) -> dict[str, Any]:
    raw = {
        "fhir_version": "4.0.1",
        "common": [{"name": "_tag", "type": "token", "paths": ["Resource.meta.tag"]}],
        "resources": {
            "Patient": [
                {"name": "name", "type": "string", "paths": ["Patient.name"]},
                {
                    "name": "organization",
                    "type": "reference",
                    "paths": ["Patient.managingOrganization"],
                    "target": ["Organization"],
                },
                {
                    "name": "link",
                    "type": "reference",
                    "paths": ["Patient.link.other"],
                    "target": [],
                },
            ]
        },
        "patient_compartment": {"Patient": ["link"]},
    }
    raw.update(changes)
    return raw


def _write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "params.json"
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw), encoding="utf-8")
    return path


def _patient(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"Patient": list(entries)}


def test_a_minimal_file_loads(tmp_path: Path) -> None:
    loaded = load_search_params(_write(tmp_path, _definitions()))
    assert loaded.by_type["Patient"]["organization"].target_types == ("Organization",)
    assert set(loaded.by_type["Patient"]) == {"_tag", "name", "organization", "link"}
    assert loaded.patient_compartment == {"Patient": ("link",)}


@pytest.mark.parametrize(
    ("resources", "entry", "words"),
    [
        (
            _patient({"name": "name", "type": "text", "paths": ["Patient.name"]}),
            "Patient.name",
            "unknown type",
        ),
        (
            _patient({"name": "name", "type": "string", "paths": ["Patient.name..given"]}),
            "Patient.name",
            "bad path",
        ),
        (
            _patient({"name": "name", "type": "string", "paths": ["Person.name"]}),
            "Patient.name",
            "must start with Patient",
        ),
        (
            _patient({"name": "name", "type": "string", "paths": []}),
            "Patient.name",
            "non-empty",
        ),
        (
            _patient(
                {"name": "org", "type": "reference", "paths": ["Patient.managingOrganization"]}
            ),
            "Patient.org",
            "target",
        ),
        (
            _patient({"name": "name", "type": "string", "paths": ["Patient.name"], "target": []}),
            "Patient.name",
            "only reference",
        ),
        (
            _patient(
                {"name": "name", "type": "string", "paths": ["Patient.name"]},
                {"name": "name", "type": "string", "paths": ["Patient.name.text"]},
            ),
            "Patient.name",
            "defined twice",
        ),
        (
            _patient({"name": "Name!", "type": "string", "paths": ["Patient.name"]}),
            "Patient.Name!",
            "bad name",
        ),
        (
            _patient({"name": "name", "type": "string", "paths": ["Patient.name"], "x": 1}),
            "Patient.name",
            "unknown keys",
        ),
        (
            _patient(
                {"name": "dead", "type": "date", "paths": ["Patient.deceasedDateTime.exists()"]}
            ),
            "Patient.dead",
            "exists()",
        ),
        (
            _patient({"name": "_tag", "type": "token", "paths": ["Patient.meta.tag"]}),
            "Patient._tag",
            "common parameter",
        ),
    ],
)
def test_bad_entries_fail_naming_the_entry(
    tmp_path: Path, resources: dict[str, Any], entry: str, words: str
) -> None:
    path = _write(tmp_path, _definitions(resources=resources, patient_compartment={}))
    with pytest.raises(DomainError) as caught:
        load_search_params(path)
    error = caught.value
    assert error.code == "records.search_params_invalid"
    assert error.field == entry
    assert entry in error.message.en and entry in error.message.vi
    assert words in error.message.en


@pytest.mark.parametrize(
    ("compartment", "words"),
    [
        ({"Patient": ["name"]}, "not a reference parameter"),
        ({"Patient": ["organization"]}, "cannot refer to a Patient"),
        ({"Observation": ["subject"]}, "unknown resource type"),
        ({"Patient": []}, "must list"),
    ],
)
def test_bad_compartments_fail(tmp_path: Path, compartment: dict[str, Any], words: str) -> None:
    path = _write(tmp_path, _definitions(patient_compartment=compartment))
    with pytest.raises(DomainError, match=words):
        load_search_params(path)


def test_broken_files_fail(tmp_path: Path) -> None:
    with pytest.raises(DomainError, match="not valid JSON"):
        load_search_params(_write(tmp_path, "{"))
    with pytest.raises(DomainError, match="R4"):
        load_search_params(_write(tmp_path, _definitions(fhir_version="5.0.0")))
    with pytest.raises(DomainError, match="resources"):
        load_search_params(_write(tmp_path, _definitions(resources={})))
    with pytest.raises(DomainError, match="list of entries"):
        load_search_params(_write(tmp_path, _definitions(resources={"Patient": {}})))
