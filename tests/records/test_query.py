"""FHIR search parsing: types, modifiers, OR/AND, escapes, chains, includes, result parameters,
strict and lenient handling, bilingual errors naming the parameter, canonical URL round trip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ytehub.records.errors import FhirError, Issue
from ytehub.records.fhirdate import parse_fhir_date
from ytehub.records.query import (
    DEFAULT_COUNT,
    MAX_COUNT,
    PREFIXES,
    Chain,
    Criterion,
    DateValue,
    IdentifierTypeValue,
    Include,
    MissingValue,
    NumberValue,
    ParamDef,
    QuantityValue,
    ReferenceValue,
    SearchPlan,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
    format_search_url,
    parse_search,
)

# --- a stand-in registry, so these tests do not depend on search_params.json -------------


@dataclass(frozen=True, slots=True)
class Param:
    resource_type: str
    name: str
    type: str
    paths: tuple[str, ...] = ()
    target_types: tuple[str, ...] = ()


def _param(resource_type: str, name: str, kind: str, *targets: str) -> Param:
    path = f"{resource_type}.{name.replace('-', '')}"
    return Param(resource_type, name, kind, (path,), tuple(targets))


COMMON = {
    p.name: p
    for p in (
        Param("Resource", "_id", "token", ("Resource.id",)),
        Param("Resource", "_lastUpdated", "date", ("Resource.meta.lastUpdated",)),
        Param("Resource", "_tag", "token", ("Resource.meta.tag",)),
        Param("Resource", "_profile", "uri", ("Resource.meta.profile",)),
        Param("Resource", "_security", "token", ("Resource.meta.security",)),
    )
}
TYPES: dict[str, list[Param]] = {
    "Patient": [
        _param("Patient", "name", "string"),
        _param("Patient", "family", "string"),
        _param("Patient", "birthdate", "date"),
        _param("Patient", "gender", "token"),
        Param("Patient", "identifier", "token", ("Patient.identifier",)),
        _param("Patient", "general-practitioner", "reference", "Organization", "Practitioner"),
        _param("Patient", "organization", "reference", "Organization"),
        _param("Patient", "link", "reference"),  # any target type
        _param("Patient", "near", "special"),  # a type the parser does not handle
    ],
    "Observation": [
        _param("Observation", "subject", "reference", "Group", "Device", "Patient", "Location"),
        _param("Observation", "patient", "reference", "Patient"),
        _param("Observation", "performer", "reference", "Practitioner", "Organization", "Patient"),
        _param("Observation", "encounter", "reference", "Encounter"),
        _param("Observation", "code", "token"),
        _param("Observation", "date", "date"),
        _param("Observation", "value-quantity", "quantity"),
        _param("Observation", "value-string", "string"),
    ],
    "Organization": [
        _param("Organization", "name", "string"),
        Param("Organization", "identifier", "token", ("Organization.identifier",)),
    ],
    "Practitioner": [_param("Practitioner", "name", "string")],
    "Group": [_param("Group", "code", "token"), _param("Group", "identifier", "token")],
    "Device": [Param("Device", "identifier", "token", ("Device.identifier",))],
    "Encounter": [_param("Encounter", "subject", "reference", "Patient", "Group")],
    "RiskAssessment": [
        _param("RiskAssessment", "probability", "number"),
        _param("RiskAssessment", "subject", "reference", "Patient", "Group"),
    ],
}


def stand_in(resource_type: str) -> Mapping[str, ParamDef]:
    """Like ``search_params.params_for``: own parameters plus the common ones."""
    return {**COMMON, **{p.name: p for p in TYPES.get(resource_type, [])}}


def parse(
    pairs: Sequence[tuple[str, str]], resource_type: str = "Patient", *, strict: bool = True
) -> SearchPlan:
    return parse_search(resource_type, pairs, strict=strict, params_for=stand_in)


def only(plan: SearchPlan) -> Criterion:
    [criterion] = plan.criteria
    return criterion


def values(name: str, value: str, resource_type: str = "Patient") -> tuple[object, ...]:
    return only(parse([(name, value)], resource_type)).values


def failure(
    pairs: Sequence[tuple[str, str]], resource_type: str = "Patient", *, strict: bool = True
) -> FhirError:
    with pytest.raises(FhirError) as caught:
        parse(pairs, resource_type, strict=strict)
    assert caught.value.status == 400
    for issue in caught.value.issues:
        assert issue.severity == "error"
        assert issue.text.vi and issue.text.en and issue.text.vi != issue.text.en
    return caught.value


def single_issue(
    pairs: Sequence[tuple[str, str]], resource_type: str = "Patient", *, strict: bool = True
) -> Issue:
    [issue] = failure(pairs, resource_type, strict=strict).issues
    return issue


# --- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("male", TokenValue(None, "male", True)),
        (
            "http://hl7.org/fhir/administrative-gender|male",
            TokenValue("http://hl7.org/fhir/administrative-gender", "male", False),
        ),
        ("|male", TokenValue(None, "male", False)),
        (
            "http://hl7.org/fhir/administrative-gender|",
            TokenValue("http://hl7.org/fhir/administrative-gender", None, False),
        ),
        ("a\\|b", TokenValue(None, "a|b", True)),
        ("s\\|t|c\\,d", TokenValue("s|t", "c,d", False)),
    ],
)
def test_token_forms(raw: str, expected: TokenValue) -> None:
    assert values("gender", raw) == (expected,)


@pytest.mark.parametrize("raw", ["|", "a|b|c"])
def test_malformed_tokens(raw: str) -> None:
    issue = single_issue([("gender", raw)])
    assert issue.code == "invalid" and issue.expression == "gender"
    assert raw in issue.text.en and raw in issue.text.vi


def test_token_modifiers() -> None:
    criterion = only(parse([("gender:not", "male,female")]))
    assert criterion.modifier == "not"
    assert criterion.values == (TokenValue(None, "male", True), TokenValue(None, "female", True))
    assert values("gender:text", "Nữ,nam") == (StringValue("Nữ"), StringValue("nam"))
    assert values("gender:missing", "true") == (MissingValue(True),)
    assert values("gender:missing", "false") == (MissingValue(False),)
    assert values("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446") == (
        IdentifierTypeValue("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "446"),
    )


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("gender:in", "http://hl7.org/fhir/ValueSet/administrative-gender", "not-supported"),
        ("gender:below", "m", "not-supported"),
        ("gender:exact", "male", "invalid"),
        ("gender:bogus", "male", "invalid"),
        ("gender:of-type", "a|b|c", "invalid"),  # gender is not an identifier
        ("identifier:of-type", "MR|446", "invalid"),
        ("identifier:of-type", "a||c", "invalid"),
        ("gender:missing", "maybe", "invalid"),
        ("gender:missing", "true,false", "invalid"),
        ("gender:", "male", "invalid"),
    ],
)
def test_bad_token_modifiers_are_always_refused(name: str, value: str, code: str) -> None:
    """FHIR: a server SHALL reject a modifier it does not support, strict or not."""
    issue = single_issue([(name, value)], strict=False)
    assert issue.code == code
    assert issue.expression == name


def test_id_is_a_token() -> None:
    criterion = only(parse([("_id", "a1,b2")]))
    assert (criterion.param, criterion.type) == ("_id", "token")
    assert criterion.values == (TokenValue(None, "a1", True), TokenValue(None, "b2", True))


# --- strings -----------------------------------------------------------------------------


def test_strings_and_modifiers() -> None:
    plain = only(parse([("name", "Nguyễn Văn")]))
    assert (plain.modifier, plain.values) == (None, (StringValue("Nguyễn Văn"),))
    assert only(parse([("name:exact", "An")])).modifier == "exact"
    assert only(parse([("name:contains", "an")])).modifier == "contains"
    assert values("name:missing", "true") == (MissingValue(True),)
    assert single_issue([("name:text", "x")]).code == "not-supported"
    assert single_issue([("name:not", "x")]).code == "invalid"


# --- escapes, OR and AND -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "texts"),
    [
        ("a,b", ("a", "b")),
        ("a\\,b", ("a,b",)),
        ("a\\\\,b", ("a\\", "b")),
        ("a\\$b", ("a$b",)),
        ("a\\|b", ("a|b",)),
        ("a|b", ("a|b",)),
        ("a\\nb", ("a\\nb",)),  # not a FHIR escape: kept as written
        ("a\\", ("a\\",)),
        ("Trần, Thị", ("Trần", " Thị")),
    ],
)
def test_escapes(raw: str, texts: tuple[str, ...]) -> None:
    assert values("name", raw) == tuple(StringValue(t) for t in texts)


@pytest.mark.parametrize("raw", ["a,", ",a", "a,,b"])
def test_empty_or_value_is_refused(raw: str) -> None:
    assert single_issue([("name", raw)]).expression == "name"


def test_repeated_names_are_and() -> None:
    plan = parse([("birthdate", "ge2000"), ("birthdate", "lt2010"), ("name", "An,Bình")])
    assert [c.param for c in plan.criteria] == ["birthdate", "birthdate", "name"]
    assert [len(c.values) for c in plan.criteria] == [1, 1, 2]


def test_empty_values_are_ignored() -> None:
    plan = parse([("name", ""), ("birthdate", ""), ("_count", ""), ("bogus", "")])
    assert plan == SearchPlan("Patient")
    assert plan.warnings == []


def test_too_many_or_values() -> None:
    assert single_issue([("_id", ",".join(str(i) for i in range(1001)))]).expression == "_id"
    assert len(values("_id", ",".join(str(i) for i in range(1000)))) == 1000


# --- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_date_prefixes(prefix: str) -> None:
    assert values("birthdate", f"{prefix}2024-05") == (
        DateValue(prefix, parse_fhir_date("2024-05")),  # type: ignore[arg-type]
    )


def test_date_default_prefix_and_zones() -> None:
    [value] = values("birthdate", "2024-05-01")
    assert isinstance(value, DateValue) and value.prefix == "eq"
    assert value.range.low == datetime(2024, 4, 30, 17, tzinfo=UTC)
    # An unencoded "+07:00" arrives as " 07:00": read as meant.
    [spaced] = values("_lastUpdated", "gt2024-05-01T08:00:00 07:00")
    [encoded] = values("_lastUpdated", "gt2024-05-01T08:00:00+07:00")
    assert spaced == encoded
    assert isinstance(encoded, DateValue) and encoded.range.low == datetime(
        2024, 5, 1, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "raw", ["2024-13", "2024-02-30", "xx2024", "Ge2024", "geq2024", "ge", "yesterday", "2024,"]
)
def test_bad_dates_name_the_parameter(raw: str) -> None:
    issue = single_issue([("birthdate", raw)], strict=False)
    assert issue.code == "invalid"
    assert issue.expression == "birthdate"
    assert raw.rstrip(",") in issue.text.en


def test_date_modifiers() -> None:
    assert values("birthdate:missing", "false") == (MissingValue(False),)
    assert single_issue([("birthdate:exact", "2024")]).code == "invalid"


# --- numbers and quantities --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.8", NumberValue("eq", Decimal("0.8"))),
        ("gt0.8", NumberValue("gt", Decimal("0.8"))),
        ("ap-1", NumberValue("ap", Decimal("-1"))),
        ("1e2", NumberValue("eq", Decimal("100"))),
        ("le1.5E-3", NumberValue("le", Decimal("0.0015"))),
    ],
)
def test_numbers(raw: str, expected: NumberValue) -> None:
    assert values("probability", raw, "RiskAssessment") == (expected,)


def test_number_keeps_its_written_precision() -> None:
    [value] = values("probability", "0.80", "RiskAssessment")
    assert isinstance(value, NumberValue) and str(value.number) == "0.80"


@pytest.mark.parametrize("raw", ["x1", "gt", "1.", ".5", "1,5.x", "NaN", "Infinity", "zz5", "0x10"])
def test_bad_numbers(raw: str) -> None:
    error = failure([("probability", raw)], "RiskAssessment")
    assert all(i.expression == "probability" for i in error.issues)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5.4", QuantityValue("eq", Decimal("5.4"))),
        (
            "gt5.4|http://unitsofmeasure.org|mg",
            QuantityValue("gt", Decimal("5.4"), "http://unitsofmeasure.org", "mg"),
        ),
        ("le5.4||mg", QuantityValue("le", Decimal("5.4"), None, "mg")),
        (
            "5.4|http://unitsofmeasure.org|",
            QuantityValue("eq", Decimal("5.4"), "http://unitsofmeasure.org", None),
        ),
        ("5|a\\|b|mm\\[Hg\\]", QuantityValue("eq", Decimal("5"), "a|b", "mm\\[Hg\\]")),
    ],
)
def test_quantities(raw: str, expected: QuantityValue) -> None:
    assert values("value-quantity", raw, "Observation") == (expected,)


@pytest.mark.parametrize(
    "raw",
    ["|http://unitsofmeasure.org|mg", "gt|http://unitsofmeasure.org|mg", "5.4|mg", "mg", "5|a|b|c"],
)
def test_bad_quantities(raw: str) -> None:
    issue = single_issue([("value-quantity", raw)], "Observation")
    assert issue.expression == "value-quantity" and issue.code == "invalid"


# --- references --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("subject", "123", ReferenceValue(None, "123")),  # several target types: unknown
        ("patient", "123", ReferenceValue("Patient", "123")),  # the only target type
        ("subject", "Patient/123", ReferenceValue("Patient", "123")),
        ("subject:Patient", "123", ReferenceValue("Patient", "123")),
        ("subject:Patient", "Patient/123", ReferenceValue("Patient", "123")),
        (
            "subject",
            "https://fhir.soyte.example.vn/fhir/Patient/123",
            ReferenceValue("Patient", "123", "https://fhir.soyte.example.vn/fhir/Patient/123"),
        ),
        (
            "subject",
            "urn:uuid:0f6b3c9e-1b5e-4c7a-9d1e-2a4b6c8d0e1f",
            ReferenceValue(None, None, "urn:uuid:0f6b3c9e-1b5e-4c7a-9d1e-2a4b6c8d0e1f"),
        ),
        ("performer", "Organization/bv-da-khoa", ReferenceValue("Organization", "bv-da-khoa")),
    ],
)
def test_references(name: str, raw: str, expected: ReferenceValue) -> None:
    assert values(name, raw, "Observation") == (expected,)


def test_reference_modifiers() -> None:
    criterion = only(parse([("subject:Patient", "1,2")], "Observation"))
    assert criterion.modifier == "Patient"
    assert values("subject:missing", "true", "Observation") == (MissingValue(True),)
    assert values("subject:identifier", "urn:oid:1.2|0123", "Observation") == (
        TokenValue("urn:oid:1.2", "0123", False),
    )
    # A reference parameter with any target type takes any type modifier.
    assert values("link:Patient", "5") == (ReferenceValue("Patient", "5"),)


@pytest.mark.parametrize(
    ("name", "raw", "code"),
    [
        ("subject:Encounter", "1", "invalid"),  # not a target of subject
        ("subject:Patient", "Group/1", "invalid"),  # value contradicts the modifier
        ("encounter", "Patient/1", "invalid"),  # not a target of encounter
        ("subject", "Patient/1/_history/2", "not-supported"),
        ("subject", "Patient/", "invalid"),
        ("subject", "patient/1", "invalid"),
        ("subject", "a b", "invalid"),
        ("subject", "x" * 65, "invalid"),
        ("subject:below", "Patient/1", "not-supported"),
        ("subject:exact", "1", "invalid"),
    ],
)
def test_bad_references(name: str, raw: str, code: str) -> None:
    issue = single_issue([(name, raw)], "Observation")
    assert (issue.code, issue.expression) == (code, name)


# --- uri ---------------------------------------------------------------------------------


def test_uri_and_modifiers() -> None:
    url = "http://fhir.ytehub.vn/StructureDefinition/vn-patient"
    assert values("_profile", url) == (UriValue(url),)
    assert only(parse([("_profile:below", "http://fhir.ytehub.vn/")])).modifier == "below"
    assert only(parse([("_profile:above", url)])).modifier == "above"
    assert single_issue([("_profile:contains", "ytehub")]).code == "not-supported"


def test_common_token_params() -> None:
    plan = parse([("_tag", "http://ytehub.vn/tag|synthetic"), ("_security", "|R")])
    assert [c.values[0] for c in plan.criteria] == [
        TokenValue("http://ytehub.vn/tag", "synthetic", False),
        TokenValue(None, "R", False),
    ]


# --- chains ------------------------------------------------------------------------------


def test_chain_to_the_target_type_defining_the_parameter() -> None:
    """Observation.subject targets Group first; only Patient has birthdate."""
    criterion = only(parse([("subject.birthdate", "ge2000")], "Observation"))
    assert criterion == Criterion(
        "subject",
        "reference",
        None,
        (),
        Chain(
            "subject",
            "Patient",
            Criterion("birthdate", "date", None, (DateValue("ge", parse_fhir_date("2000")),)),
        ),
    )
    group = only(parse([("subject.code", "x")], "Observation"))
    assert group.chain is not None and group.chain.target_type == "Group"


def test_chain_prefers_patient() -> None:
    """Group, Device and Patient all have identifier: a record's subject is the patient."""
    criterion = only(parse([("subject.identifier", "urn:oid:1|42")], "Observation"))
    assert criterion.chain is not None and criterion.chain.target_type == "Patient"
    device = only(parse([("subject:Device.identifier", "sn-1")], "Observation"))
    assert device.chain is not None and device.chain.target_type == "Device"


def test_chain_forms() -> None:
    typed = only(parse([("subject:Patient.name:exact", "An")], "Observation"))
    assert typed.chain == Chain(
        "subject", "Patient", Criterion("name", "string", "exact", (StringValue("An"),))
    )
    identifier = only(parse([("subject:Patient.identifier", "urn:oid:1|42")], "Observation"))
    assert identifier.chain is not None
    assert identifier.chain.inner.values == (TokenValue("urn:oid:1", "42", False),)
    patient = only(parse([("patient.birthdate", "2024")], "Observation"))
    assert patient.chain is not None and patient.chain.target_type == "Patient"
    to_reference = only(parse([("general-practitioner.name", "Lan")]))
    assert to_reference.chain is not None
    assert to_reference.chain.target_type == "Organization"
    any_target = only(parse([("link:Patient.gender", "male")]))
    assert any_target.chain is not None and any_target.chain.target_type == "Patient"


@pytest.mark.parametrize(
    ("resource_type", "name", "code"),
    [
        ("Observation", "subject.bogus", "invalid"),  # unknown inner: an error even if lenient
        ("Observation", "subject:Group.birthdate", "invalid"),
        ("Observation", "subject:Encounter.date", "invalid"),
        ("Observation", "subject:patient.name", "invalid"),
        ("Observation", "subject.", "invalid"),
        ("Observation", "code.name", "invalid"),  # not a reference
        ("Observation", "subject.organization.name", "not-supported"),
        ("Observation", "subject.name:bogus", "invalid"),
        ("Observation", "subject.birthdate:", "invalid"),
        ("Patient", "link.gender", "invalid"),  # any target type: needs a :Type modifier
        ("Patient", "organization.near", "invalid"),
    ],
)
def test_bad_chains(resource_type: str, name: str, code: str) -> None:
    issue = single_issue([(name, "x")], resource_type, strict=False)
    assert (issue.code, issue.expression) == (code, name)
    assert issue.text.vi != issue.text.en


def test_chained_value_errors_name_the_chain() -> None:
    issue = single_issue([("subject.birthdate", "garbage")], "Observation")
    assert issue.expression == "subject.birthdate"


def test_reverse_chaining_is_not_supported() -> None:
    name = "_has:Observation:patient:code"
    issue = single_issue([(name, "1234-5")])
    assert (issue.code, issue.expression) == ("not-supported", name)
    plan = parse([(name, "1234-5"), ("name", "An")], strict=False)
    assert [c.param for c in plan.criteria] == ["name"]
    [warning] = plan.warnings
    assert (warning.severity, warning.code, warning.expression) == (
        "warning",
        "not-supported",
        name,
    )


# --- _include and _revinclude ------------------------------------------------------------


def test_includes() -> None:
    plan = parse(
        [
            ("_include", "Observation:subject"),
            ("_include", "Observation:performer:Practitioner"),
            ("_include", "Observation:subject"),  # repeated: once
        ],
        "Observation",
    )
    assert plan.includes == [
        Include("Observation", "subject"),
        Include("Observation", "performer", "Practitioner"),
    ]
    assert plan.revincludes == []


def test_revinclude_and_wildcards() -> None:
    plan = parse(
        [
            ("_revinclude", "Observation:subject"),
            ("_revinclude", "Observation:patient:Patient"),
            ("_include", "*"),
            ("_include", "Patient:*"),
        ]
    )
    assert plan.revincludes == [
        Include("Observation", "subject"),
        Include("Observation", "patient", "Patient"),
    ]
    assert plan.includes == [Include("Patient", "*")]


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("_include", "Observation:subject", "invalid"),  # _include starts at Patient
        ("_include", "Patient:name", "invalid"),  # not a reference
        ("_include", "Patient:organization:Practitioner", "invalid"),
        ("_include", "Patient", "invalid"),
        ("_include", "Patient:organization:Organization:x", "invalid"),
        ("_include", "patient:organization", "invalid"),
        ("_revinclude", "Observation:encounter", "invalid"),  # does not refer to Patient
        ("_revinclude", "Observation:subject:Group", "invalid"),
        ("_revinclude", "Observation:*", "invalid"),
        ("_include:bogus", "Patient:organization", "invalid"),
    ],
)
def test_bad_includes(name: str, value: str, code: str) -> None:
    issue = single_issue([(name, value)], strict=False)
    assert (issue.code, issue.expression) == (code, name)


def test_iterate_is_not_supported() -> None:
    issue = single_issue([("_include:iterate", "Patient:organization")])
    assert (issue.code, issue.expression) == ("not-supported", "_include:iterate")
    plan = parse([("_revinclude:iterate", "Observation:patient")], strict=False)
    assert plan.revincludes == [Include("Observation", "patient")]  # one level still included
    [warning] = plan.warnings
    assert warning.severity == "warning" and warning.expression == "_revinclude:iterate"


def test_unknown_include_parameters_follow_handling() -> None:
    for name, value in (("_include", "Patient:bogus"), ("_revinclude", "Basic:subject")):
        issue = single_issue([(name, value)])
        assert (issue.code, issue.expression) == ("not-supported", name)
        plan = parse([(name, value)], strict=False)
        assert plan.includes == plan.revincludes == []
        assert [w.expression for w in plan.warnings] == [name]
    assert single_issue([("_revinclude", "*")]).code == "not-supported"


# --- _sort -------------------------------------------------------------------------------


def test_sort() -> None:
    plan = parse([("_sort", "-birthdate,name,_id,-_lastUpdated,gender")])
    assert plan.sort == [
        SortKey("birthdate", "date", True),
        SortKey("name", "string", False),
        SortKey("_id", "token", False),
        SortKey("_lastUpdated", "date", True),
        SortKey("gender", "token", False),
    ]


def test_sort_on_builtin_params_without_a_registry_entry() -> None:
    plan = parse_search(
        "Patient", [("_sort", "-_lastUpdated,_id")], strict=True, params_for=lambda _: {}
    )
    assert plan.sort == [SortKey("_lastUpdated", "date", True), SortKey("_id", "token")]


@pytest.mark.parametrize("value", ["bogus", "organization", "-organization,name"])
def test_unsortable_keys_follow_handling(value: str) -> None:
    issue = single_issue([("_sort", value)])
    assert (issue.code, issue.expression) == ("not-supported", "_sort")
    plan = parse([("_sort", value)], strict=False)
    assert plan.sort == ([SortKey("name", "string")] if "name" in value else [])
    assert [w.expression for w in plan.warnings] == ["_sort"]


@pytest.mark.parametrize("value", ["name,", "--name", "-", "name:exact", "name,-name", "a b"])
def test_malformed_sort(value: str) -> None:
    issue = single_issue([("_sort", value)], strict=False)
    assert (issue.code, issue.expression) == ("invalid", "_sort")


# --- _count and the other result parameters ----------------------------------------------


def test_count() -> None:
    assert parse([]).count == DEFAULT_COUNT == 20
    assert parse([("_count", "0")]).count == 0
    assert parse([("_count", "1000")]).count == MAX_COUNT
    plan = parse([("_count", "5000")])
    assert plan.count == MAX_COUNT
    [warning] = plan.warnings
    assert warning.severity == "warning" and warning.expression == "_count"


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "1e3", "١٠", "9999999999", " 5"])
def test_bad_count(value: str) -> None:
    issue = single_issue([("_count", value)], strict=False)
    assert (issue.code, issue.expression) == ("invalid", "_count")
    assert value in issue.text.vi


def test_result_parameters() -> None:
    plan = parse(
        [
            ("_total", "none"),
            ("_summary", "count"),
            ("_elements", "name, gender,name"),
            ("_format", "json"),
            ("_pretty", "true"),
            ("_page", "opaque+cursor/=="),
        ]
    )
    assert (plan.total, plan.summary, plan.elements) == ("none", "count", ("name", "gender"))
    assert plan.cursor == "opaque+cursor/=="
    assert plan.criteria == [] and plan.warnings == []
    assert parse([("_cursor", "abc")]).cursor == "abc"
    assert parse([]).total == "accurate"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_total", "all"),
        ("_summary", "yes"),
        ("_elements", "name,"),
        ("_elements", "name.given"),
        ("_cursor", "x" * 5000),
    ],
)
def test_bad_result_parameters(name: str, value: str) -> None:
    assert single_issue([(name, value)], strict=False).expression == name


@pytest.mark.parametrize(
    "pairs",
    [
        [("_count", "1"), ("_count", "2")],
        [("_sort", "name"), ("_sort", "birthdate")],
        [("_page", "a"), ("_cursor", "b")],
        [("_total", "none"), ("_total", "none")],
    ],
)
def test_result_parameters_appear_once(pairs: list[tuple[str, str]]) -> None:
    assert single_issue(pairs, strict=False).expression == pairs[1][0]


# --- strict and lenient handling ---------------------------------------------------------


def test_unknown_parameters_strict() -> None:
    error = failure([("bogus", "1"), ("name", "An"), ("_text", "ho"), ("near", "1|2|3|km")])
    assert [(i.code, i.expression) for i in error.issues] == [
        ("not-supported", "bogus"),
        ("not-supported", "_text"),
        ("not-supported", "near"),  # a type the parser does not handle
    ]
    assert "bogus" in error.issues[0].text.vi and "bogus" in error.issues[0].text.en


def test_misspelt_result_parameters_are_unknown() -> None:
    plan = parse([("_count:x", "5"), ("_include.x", "Patient:organization")], strict=False)
    assert plan == SearchPlan("Patient")
    assert [w.expression for w in plan.warnings] == ["_count:x", "_include.x"]


def test_unknown_parameters_lenient() -> None:
    plan = parse([("bogus", "1"), ("name", "An"), ("bogus:exact", "2")], strict=False)
    assert [c.param for c in plan.criteria] == ["name"]
    assert [(w.severity, w.code, w.expression) for w in plan.warnings] == [
        ("warning", "not-supported", "bogus"),
        ("warning", "not-supported", "bogus:exact"),
    ]
    assert all(w.text.vi != w.text.en for w in plan.warnings)
    # Warnings are not part of the plan's identity.
    assert plan == parse([("name", "An")])


def test_every_problem_is_reported_at_once() -> None:
    error = failure(
        [("birthdate", "2024-13"), ("_count", "x"), ("gender:in", "vs"), ("bogus", "1")]
    )
    assert [i.expression for i in error.issues] == ["birthdate", "_count", "gender:in", "bogus"]


def test_malformed_values_fail_even_when_lenient() -> None:
    error = failure([("birthdate", "soon"), ("bogus", "1")], strict=False)
    assert [i.expression for i in error.issues] == ["birthdate"]


# --- canonical URL -----------------------------------------------------------------------


def test_canonical_url() -> None:
    plan = parse(
        [
            ("name:exact", "Nguyễn\\, An"),
            ("birthdate", "ge2000-01-01"),
            ("birthdate", "lt2010-01-01T08:30+07:00"),
            ("gender", "http://hl7.org/fhir/administrative-gender|female,|male,other"),
            ("organization", "1"),
            ("general-practitioner:Practitioner", "7"),
            ("organization.name", "Bệnh viện"),
            ("_include", "Patient:organization"),
            ("_sort", "-birthdate"),
            ("_count", "50"),
            ("_cursor", "k&y=1 2"),
        ]
    )
    assert format_search_url(plan) == (
        "name:exact=Nguy%E1%BB%85n%5C,%20An"
        "&birthdate=ge2000-01-01"
        "&birthdate=lt2010-01-01T01:30Z"
        "&gender=http://hl7.org/fhir/administrative-gender|female,|male,other"
        "&organization=Organization/1"
        "&general-practitioner:Practitioner=7"
        "&organization:Organization.name=B%E1%BB%87nh%20vi%E1%BB%87n"
        "&_include=Patient:organization"
        "&_sort=-birthdate"
        "&_count=50"
        "&_cursor=k%26y%3D1%202"
    )
    again = parse(parse_qsl(format_search_url(plan)))
    assert again == plan


def test_canonical_url_of_an_empty_search() -> None:
    assert format_search_url(parse([])) == "_count=20"
    plan = parse([("_total", "estimate"), ("_summary", "false"), ("_elements", "id,name")])
    assert format_search_url(plan) == "_count=20&_total=estimate&_summary=false&_elements=id,name"


# Values the generated queries draw from: every character that needs escaping in FHIR
# (\ , | $) or in a URL (& = + % # space ?), and Vietnamese letters.
TEXT = st.text(
    alphabet=st.sampled_from(list("aAđĐ ễỹ09\\,|$&=+%#?/:.-_*")), min_size=1, max_size=12
)
IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,8}", fullmatch=True)
DECIMALS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?", fullmatch=True
)
DATES = st.sampled_from(
    [
        "2024",
        "2024-02",
        "2024-02-29",
        "2024-05-01T08:30",
        "2024-05-01T08:30Z",
        "2024-05-01T08:30:15+05:45",
        "2024-05-01T08:30:15.123-03:00",
        "1999-12-31T24:00",
        "0001",
    ]
)
PREFIX = st.sampled_from(("", *PREFIXES))


def escape(text: str) -> str:
    return "".join("\\" + c if c in "\\,|$" else c for c in text)


def _or(draw: st.DrawFn, one: st.SearchStrategy[str]) -> str:
    return ",".join(draw(st.lists(one, min_size=1, max_size=3)))


@st.composite
def token(draw: st.DrawFn) -> str:
    system, code = escape(draw(TEXT)), escape(draw(TEXT))
    return draw(st.sampled_from([code, f"{system}|{code}", f"|{code}", f"{system}|"]))


@st.composite
def criterion(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.integers(0, 13))
    strings = TEXT.map(escape)
    if kind == 0:
        return draw(st.sampled_from(["name", "name:exact", "name:contains"])), _or(draw, strings)
    if kind == 1:
        return draw(st.sampled_from(["gender", "gender:not", "_id", "_tag"])), _or(draw, token())
    if kind == 2:
        return "gender:text", _or(draw, strings)
    if kind == 3:
        name = draw(st.sampled_from(["identifier:of-type"]))
        return name, "|".join(draw(st.tuples(strings, strings, strings)))
    if kind == 4:
        name = draw(st.sampled_from(["birthdate", "_lastUpdated"]))
        return name, _or(draw, st.builds(str.__add__, PREFIX, DATES))
    if kind == 5:
        return draw(st.sampled_from(["name:missing", "gender:missing", "organization:missing"])), (
            draw(st.sampled_from(["true", "false"]))
        )
    if kind == 6:
        refs = st.one_of(IDS, IDS.map("Organization/{}".format))
        return "organization", _or(draw, refs)
    if kind == 7:
        refs = st.one_of(IDS, IDS.map("Practitioner/{}".format), IDS.map("Organization/{}".format))
        return "general-practitioner", _or(draw, refs)
    if kind == 8:
        name = draw(st.sampled_from(["general-practitioner:Practitioner", "link:Patient"]))
        return name, _or(draw, IDS)
    if kind == 9:
        url = IDS.map("http://example.org/fhir/Organization/{}".format)
        return "organization", _or(draw, st.one_of(url, strings.map("urn:x:{}".format)))
    if kind == 10:
        return "organization:identifier", _or(draw, token())
    if kind == 11:
        name = draw(
            st.sampled_from(["organization.name", "general-practitioner:Practitioner.name:exact"])
        )
        return name, _or(draw, strings)
    if kind == 12:
        return "link:Patient.birthdate", _or(draw, st.builds(str.__add__, PREFIX, DATES))
    url = TEXT.map(lambda t: "http://x/" + escape(t))
    return draw(st.sampled_from(["_profile", "_profile:below"])), _or(draw, url)


@st.composite
def observation_criterion(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        quantity = st.builds(
            lambda p, n, s, c: f"{p}{n}" + (f"|{s}|{c}" if s is not None else ""),
            PREFIX,
            DECIMALS,
            st.none() | TEXT.map(escape) | st.just(""),
            TEXT.map(escape) | st.just(""),
        )
        return "value-quantity", _or(draw, quantity)
    if kind == 1:
        return "subject.birthdate", _or(draw, st.builds(str.__add__, PREFIX, DATES))
    return "subject", _or(draw, st.one_of(IDS, IDS.map("Patient/{}".format)))


RESULT_PARAMS = st.lists(
    st.sampled_from(
        [
            ("_include", "Patient:organization"),
            ("_include", "Patient:general-practitioner:Practitioner"),
            ("_revinclude", "Observation:subject"),
            ("_revinclude", "Encounter:subject:Patient"),
        ]
    ),
    max_size=3,
)


@st.composite
def query(draw: st.DrawFn) -> list[tuple[str, str]]:
    pairs = draw(st.lists(criterion(), max_size=5))
    pairs += draw(RESULT_PARAMS)
    if draw(st.booleans()):
        keys = draw(
            st.lists(
                st.sampled_from(["name", "birthdate", "gender", "_id"]), unique=True, min_size=1
            )
        )
        pairs.append(("_sort", ",".join(draw(st.sampled_from(["", "-"])) + k for k in keys)))
    if draw(st.booleans()):
        pairs.append(("_count", str(draw(st.integers(0, 2000)))))
    for name, choices in (
        ("_total", ["none", "estimate", "accurate"]),
        ("_summary", ["true", "count", "false", "text", "data"]),
        ("_elements", ["name", "name,gender", "id,meta"]),
    ):
        if draw(st.booleans()):
            pairs.append((name, draw(st.sampled_from(choices))))
    if draw(st.booleans()):
        pairs.append(("_cursor", draw(TEXT)))
    return draw(st.permutations(pairs))


@settings(max_examples=300)
@given(pairs=query())
def test_canonical_url_round_trip(pairs: list[tuple[str, str]]) -> None:
    plan = parse(pairs)
    url = format_search_url(plan)
    again = parse(parse_qsl(url))
    assert again == plan
    assert format_search_url(again) == url


@given(pairs=st.lists(observation_criterion(), max_size=4))
def test_canonical_url_round_trip_observation(pairs: list[tuple[str, str]]) -> None:
    plan = parse(pairs, "Observation")
    assert parse(parse_qsl(format_search_url(plan)), "Observation") == plan


# --- against the real registry -----------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> None:
    """The shipped ``search_params.json`` (skipped only if the module cannot be imported)."""
    pytest.importorskip("ytehub.records.search_params")


@pytest.mark.usefixtures("registry")
def test_with_the_real_registry() -> None:
    plan = parse_search(
        "Patient",
        [
            ("birthdate", "ge1990-01-01"),
            ("gender", "female"),
            ("name", "Nguyễn"),
            ("identifier", "urn:oid:1.2|0123"),
            ("_lastUpdated", "gt2024-01-01"),
            ("_tag", "http://ytehub.vn|synthetic"),
            ("_id", "p1,p2"),
            ("_sort", "-birthdate,_lastUpdated"),
            ("_revinclude", "Observation:subject"),
            ("_count", "10"),
        ],
        strict=True,
    )
    assert [(c.param, c.type) for c in plan.criteria] == [
        ("birthdate", "date"),
        ("gender", "token"),
        ("name", "string"),
        ("identifier", "token"),
        ("_lastUpdated", "date"),
        ("_tag", "token"),
        ("_id", "token"),
    ]
    assert plan.revincludes == [Include("Observation", "subject")]
    assert parse_search("Patient", parse_qsl(format_search_url(plan)), strict=True) == plan


@pytest.mark.usefixtures("registry")
def test_chain_with_the_real_registry() -> None:
    plan = parse_search(
        "Observation",
        [("subject.birthdate", "ge2000"), ("subject:Patient.identifier", "urn:oid:1|7")],
        strict=True,
    )
    assert [c.chain.target_type for c in plan.criteria if c.chain] == ["Patient", "Patient"]
    with pytest.raises(FhirError) as caught:
        parse_search("Patient", [("bogus", "1")], strict=True)
    assert caught.value.issues[0].expression == "bogus"


@pytest.mark.usefixtures("registry")
def test_real_registry_types_are_all_handled() -> None:
    from ytehub.records.search_params import SEARCHABLE_TYPES, params_for

    for resource_type in SEARCHABLE_TYPES:
        for name, definition in params_for(resource_type).items():
            if definition.type == "reference":
                continue
            value = {"date": "2024", "number": "1", "quantity": "1"}.get(definition.type, "x")
            plan = parse_search(resource_type, [(name, value)], strict=True)
            assert only(plan).type == definition.type
