"""The FHIR R4 search parameters ytehub indexes, as validated data.

The definitions live in ``search_params.json`` beside this module ("rules as data"): adding a
parameter is a data change reviewed like any other, not a code change. The file is loaded and
validated once, at import, so a bad entry fails at start-up with a
:class:`~ytehub.core.errors.DomainError` (``records.search_params_invalid``) naming the entry,
instead of silently indexing nothing.

Paths use a small FHIRPath subset that :mod:`ytehub.records.indexing` evaluates without a
FHIRPath engine (fast, and every path is checkable against the FHIR models)::

    path  := Type ("." step)* [".exists()"]
    step  := element | "where(" element "='" literal "')"

* ``Type`` is the resource type (``Resource`` for the common parameters).
* ``element`` is a JSON element name; arrays are traversed implicitly. Choice types are written
  out: ``Observation.valueQuantity``, ``Condition.onsetDateTime``.
* ``where(system='phone')`` keeps the items whose element equals the literal.
* ``exists()`` (token parameters only) yields ``true`` when the path has a value.
* FHIRPath's ``.where(resolve() is Patient)`` is the ``target`` list of a reference parameter:
  only references to those types are indexed (an empty list means any type).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

from ytehub.core.errors import DomainError, Text

__all__ = [
    "COMMON_PARAMS",
    "PARAM_TYPES",
    "SEARCHABLE_TYPES",
    "SEARCH_PARAMS_PATH",
    "CompiledPath",
    "SearchParam",
    "SearchParamSet",
    "compile_path",
    "load_search_params",
    "params_for",
    "patient_compartment_params",
]

SEARCH_PARAMS_PATH: Final = Path(__file__).with_name("search_params.json")

ParamType = Literal["token", "string", "date", "reference", "quantity", "uri", "number"]
PARAM_TYPES: Final[frozenset[str]] = frozenset(
    {"token", "string", "date", "reference", "quantity", "uri", "number"}
)

COMMON_TYPE: Final = "Resource"
"""The pseudo resource type that roots the paths of the common parameters (``_tag`` …)."""

_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_PARAM_NAME = re.compile(r"_?[a-z][a-zA-Z0-9]*(?:-[a-z0-9]+)*")
_ROOT = re.compile(r"([A-Z][A-Za-z]+)")
_STEP = re.compile(
    r"\.(?:"
    r"where\((?P<field>[a-z][A-Za-z0-9]*)='(?P<literal>[^'\\]*)'\)"
    r"|(?P<exists>exists\(\))"
    r"|(?P<element>[a-z][A-Za-z0-9]*)(?![A-Za-z0-9(])"
    r")"
)


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type.

    ``paths`` are in the FHIRPath subset described in the module docstring; ``target_types``
    restricts a reference parameter to references to those types (empty: any type, and always
    empty for the other types).
    """

    resource_type: str
    name: str
    type: ParamType
    paths: tuple[str, ...]
    target_types: tuple[str, ...] = ()


class CompiledPath(NamedTuple):
    """A parsed path: ``root`` type, then element names (``str``) or ``(element, literal)``
    filters for ``where``; ``exists`` when the path ends in ``.exists()``."""

    root: str
    steps: tuple[str | tuple[str, str], ...]
    exists: bool


@dataclass(frozen=True, slots=True)
class SearchParamSet:
    """A loaded, validated definition file."""

    common: Mapping[str, SearchParam]
    by_type: Mapping[str, Mapping[str, SearchParam]]
    patient_compartment: Mapping[str, tuple[str, ...]]
    fhir_version: str


def compile_path(path: str) -> CompiledPath:
    """Parse ``path``; ``ValueError`` saying what is wrong when it is outside the subset."""
    if not isinstance(path, str):
        raise ValueError(f"a path must be a string, not {type(path).__name__}")
    root = _ROOT.match(path)
    if root is None:
        raise ValueError(f"{path!r} must start with a resource type")
    steps: list[str | tuple[str, str]] = []
    exists = False
    pos = root.end()
    while pos < len(path):
        if exists:
            raise ValueError(f"{path!r}: exists() must come last")
        step = _STEP.match(path, pos)
        if step is None:
            raise ValueError(f"{path!r}: cannot read the path from {path[pos:]!r}")
        if step["element"]:
            steps.append(step["element"])
        elif step["field"]:
            if not steps or not isinstance(steps[-1], str):
                raise ValueError(f"{path!r}: where() must follow an element")
            steps.append((step["field"], step["literal"]))
        else:
            exists = True
        pos = step.end()
    if not any(isinstance(s, str) for s in steps):
        raise ValueError(f"{path!r} names no element")
    return CompiledPath(root.group(1), tuple(steps), exists)


def _invalid(entry: str, en: str, vi: str) -> DomainError:
    return DomainError(
        code="records.search_params_invalid",
        message=Text(
            f"Định nghĩa tham số tìm kiếm không hợp lệ tại mục {entry}: {vi}",
            f"Invalid search parameter definition {entry}: {en}",
        ),
        status=500,
        field=entry,
    )


def _param(resource_type: str, raw: Any, where: str) -> SearchParam:
    """Validate one JSON entry into a :class:`SearchParam`."""
    if not isinstance(raw, dict):
        raise _invalid(where, "an entry must be an object", "mỗi mục phải là một đối tượng")
    name = raw.get("name")
    entry = f"{resource_type}.{name}" if isinstance(name, str) else where
    unknown = set(raw) - {"name", "type", "paths", "target", "note"}
    if unknown:
        raise _invalid(
            entry, f"unknown keys {sorted(unknown)}", f"khóa không hợp lệ {sorted(unknown)}"
        )
    if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
        raise _invalid(entry, f"bad name {name!r}", f"tên không hợp lệ {name!r}")
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise _invalid(entry, f"unknown type {kind!r}", f"kiểu tham số không được hỗ trợ {kind!r}")
    paths = raw.get("paths")
    if not isinstance(paths, list) or not paths:
        raise _invalid(
            entry, "paths must be a non-empty list", "paths phải là danh sách có phần tử"
        )
    for path in paths:
        try:
            compiled = compile_path(path)
        except ValueError as exc:
            raise _invalid(entry, f"bad path: {exc}", f"đường dẫn sai: {exc}") from None
        if compiled.root != resource_type:
            raise _invalid(
                entry,
                f"path {path!r} must start with {resource_type}",
                f"đường dẫn {path!r} phải bắt đầu bằng {resource_type}",
            )
        if compiled.exists and kind != "token":
            raise _invalid(
                entry, "exists() is only for token parameters", "exists() chỉ dùng cho token"
            )
    if len(set(paths)) != len(paths):
        raise _invalid(entry, "a path is listed twice", "một đường dẫn bị lặp")
    target = raw.get("target")
    if kind == "reference":
        if not isinstance(target, list) or not all(
            isinstance(t, str) and _RESOURCE_TYPE.fullmatch(t) for t in target
        ):
            raise _invalid(
                entry,
                "a reference parameter needs 'target': a list of resource types ([] for any)",
                "tham số tham chiếu cần 'target': danh sách kiểu tài nguyên ([] là mọi kiểu)",
            )
    elif target is not None:
        raise _invalid(
            entry, "only reference parameters have 'target'", "chỉ tham số tham chiếu có 'target'"
        )
    return SearchParam(
        resource_type=resource_type,
        name=name,
        type=kind,
        paths=tuple(paths),
        target_types=tuple(target or ()),
    )


def _params(resource_type: str, raw: Any, where: str) -> Mapping[str, SearchParam]:
    if not isinstance(raw, list):
        raise _invalid(where, "must be a list of entries", "phải là danh sách các mục")
    params: dict[str, SearchParam] = {}
    for index, item in enumerate(raw):
        param = _param(resource_type, item, f"{where}[{index}]")
        if param.name in params:
            raise _invalid(
                f"{resource_type}.{param.name}", "defined twice", "được định nghĩa hai lần"
            )
        params[param.name] = param
    return MappingProxyType(params)


def _parse(raw: Any) -> SearchParamSet:
    if not isinstance(raw, dict):
        raise _invalid("(root)", "the file must hold an object", "tệp phải chứa một đối tượng")
    common = _params(COMMON_TYPE, raw.get("common"), "common")
    resources = raw.get("resources")
    if not isinstance(resources, dict) or not resources:
        raise _invalid("resources", "must be a non-empty object", "phải là đối tượng có phần tử")
    by_type: dict[str, Mapping[str, SearchParam]] = {}
    for resource_type, entries in resources.items():
        if not _RESOURCE_TYPE.fullmatch(resource_type) or resource_type == COMMON_TYPE:
            raise _invalid(
                resource_type, "not a resource type name", "không phải tên kiểu tài nguyên"
            )
        own = _params(resource_type, entries, resource_type)
        clash = set(own) & set(common)
        if clash:
            raise _invalid(
                f"{resource_type}.{sorted(clash)[0]}",
                "redefines a common parameter",
                "định nghĩa lại tham số chung",
            )
        by_type[resource_type] = MappingProxyType({**common, **own})
    compartment_raw = raw.get("patient_compartment")
    if not isinstance(compartment_raw, dict):
        raise _invalid("patient_compartment", "must be an object", "phải là một đối tượng")
    compartment: dict[str, tuple[str, ...]] = {}
    for resource_type, names in compartment_raw.items():
        entry = f"patient_compartment.{resource_type}"
        if resource_type not in by_type:
            raise _invalid(entry, "unknown resource type", "kiểu tài nguyên không có tham số")
        if not isinstance(names, list) or not names:
            raise _invalid(entry, "must list parameter names", "phải liệt kê tên tham số")
        for name in names:
            param = by_type[resource_type].get(name) if isinstance(name, str) else None
            if param is None or param.type != "reference":
                raise _invalid(
                    entry,
                    f"{name!r} is not a reference parameter of {resource_type}",
                    f"{name!r} không phải tham số tham chiếu của {resource_type}",
                )
            if param.target_types and "Patient" not in param.target_types:
                raise _invalid(
                    entry, f"{name!r} cannot refer to a Patient", f"{name!r} không trỏ tới Patient"
                )
        compartment[resource_type] = tuple(names)
    version = raw.get("fhir_version")
    if not isinstance(version, str) or not version.startswith("4."):
        raise _invalid("fhir_version", "must be a FHIR R4 version", "phải là phiên bản FHIR R4")
    return SearchParamSet(
        common=common,
        by_type=MappingProxyType(by_type),
        patient_compartment=MappingProxyType(compartment),
        fhir_version=version,
    )


def load_search_params(path: Path | str = SEARCH_PARAMS_PATH) -> SearchParamSet:
    """Read and validate a definition file; ``records.search_params_invalid`` naming the entry
    for any problem (including JSON syntax)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _invalid(
            path.name, f"not valid JSON ({exc})", f"không phải JSON hợp lệ ({exc})"
        ) from exc
    return _parse(raw)


_DEFINITIONS: Final = load_search_params()

COMMON_PARAMS: Final[Mapping[str, SearchParam]] = _DEFINITIONS.common
"""``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``: valid on every type.
``_tag``, ``_profile`` and ``_security`` are indexed from ``meta``; ``_id`` and ``_lastUpdated``
are answered from the resource row itself (its key and ``last_updated``), so they get no rows."""

SEARCHABLE_TYPES: Final[tuple[str, ...]] = tuple(sorted(_DEFINITIONS.by_type))
"""The resource types with their own search parameters."""


def params_for(resource_type: str) -> Mapping[str, SearchParam]:
    """Every parameter valid on ``resource_type``, by name: its own and the common ones.

    A type without definitions gets the common ones only, so ``_tag`` and ``_id`` work on
    every type the store accepts.
    """
    return _DEFINITIONS.by_type.get(resource_type, COMMON_PARAMS)


def patient_compartment_params(resource_type: str) -> tuple[str, ...]:
    """The reference parameters that put a ``resource_type`` in a Patient's compartment
    (FHIR R4 CompartmentDefinition ``patient``); empty for types outside it (Organization,
    Practitioner, Medication, …). Used to find whose record a resource is."""
    return _DEFINITIONS.patient_compartment.get(resource_type, ())
