"""Structural validation of incoming resources against the FHIR R4 models.

``fhir.resources`` 8 ships R5 by default; its ``R4B`` package is the R4-compatible model set
(R4B changed none of the resources the platform stores in a way that matters here).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from ytehub.core.errors import Text
from ytehub.records.errors import FhirError, Issue


@cache
def _model(resource_type: str) -> Any:
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None
    # Only resources, not data types (get_fhir_model_class also knows "HumanName").
    return model if issubclass(model, Resource) else None


def is_resource_type(name: str) -> bool:
    return _model(name) is not None


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    parts = [resource_type]
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def validate(resource: Any, expected_type: str | None = None) -> dict[str, Any]:
    """Check ``resource`` is a well-formed FHIR R4 resource (of ``expected_type`` when given);
    every problem becomes an OperationOutcome issue naming the element."""
    if not isinstance(resource, dict):
        raise FhirError.single(
            400,
            "structure",
            "Nội dung phải là một đối tượng JSON.",
            "The body must be a JSON object.",
        )
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise FhirError.single(
            400, "required", "Thiếu resourceType.", "resourceType is missing.", "resourceType"
        )
    if expected_type is not None and resource_type != expected_type:
        raise FhirError.single(
            400,
            "invalid",
            f"resourceType là {resource_type} nhưng địa chỉ là của {expected_type}.",
            f"resourceType is {resource_type} but the address is for {expected_type}.",
            "resourceType",
        )
    model = _model(resource_type)
    if model is None:
        raise FhirError.single(
            400,
            "not-supported",
            f"Loại tài nguyên không được hỗ trợ: {resource_type}.",
            f"Unsupported resource type: {resource_type}.",
            "resourceType",
        )
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        issues = [
            Issue(
                "error",
                "invalid" if error["type"] != "missing" else "required",
                Text(f"Giá trị không hợp lệ: {error['msg']}", f"Invalid value: {error['msg']}"),
                _path(resource_type, tuple(error["loc"])),
            )
            for error in exc.errors()[:20]
        ]
        raise FhirError(400, issues) from None
    issues = _binding_issues(resource_type, resource)
    if issues:
        raise FhirError(400, issues)
    return resource


@cache
def _bindings() -> dict[str, frozenset[str]]:
    raw = json.loads(files(__package__).joinpath("bindings.json").read_text(encoding="utf-8"))
    return {path: frozenset(codes) for path, codes in raw.items() if not path.startswith("_")}


def _values(node: Any, steps: list[str]) -> list[Any]:
    if not steps:
        return [node]
    if isinstance(node, list):
        return [v for item in node for v in _values(item, steps)]
    if isinstance(node, dict) and steps[0] in node:
        return _values(node[steps[0]], steps[1:])
    return []


def _binding_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    """Codes outside a required value set (e.g. Patient.gender "robot")."""
    issues = []
    for path, codes in _bindings().items():
        owner, _, rest = path.partition(".")
        if owner != resource_type:
            continue
        allowed = ", ".join(sorted(codes))
        for value in _values(resource, rest.split(".")):
            if isinstance(value, str) and value not in codes:
                issues.append(
                    Issue(
                        "error",
                        "code-invalid",
                        Text(
                            f"Mã '{value}' không thuộc tập giá trị bắt buộc ({allowed}).",
                            f"Code '{value}' is not in the required value set ({allowed}).",
                        ),
                        path,
                    )
                )
    return issues
