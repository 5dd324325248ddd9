"""Search-index rows extracted from a FHIR resource: pure, fast and tolerant.

The record store calls :func:`extract` on every write and stores the rows in the same
transaction as the resource, so a search never sees half a write. Nothing here does I/O; a
resource is the plain ``dict`` parsed from FHIR JSON.

Why tolerant: the store validates before it indexes, but an index must never be the reason a
write fails. Missing elements, wrong shapes and malformed dates yield no row instead of an
error. Why fast: every write pays for it, so paths are compiled once per resource type, shared
paths are walked once, and folding and date parsing are memoised (names and dates repeat).

Row conventions (the search layer relies on them):

* Strings are folded with :func:`ytehub.core.units.fold` (no diacritics, ``đ``→``d``, lower
  case) so ``name=nguyen van an`` finds "Nguyễn Văn An"; ``exact`` keeps the original.
  A HumanName also yields its whole name, family-first and given-first.
* Token ``text`` is folded too (Coding.display, CodeableConcept.text, Identifier.type.text),
  for ``:text``. A CodeableConcept.text that repeats no display gets its own row without code.
* An Identifier with a coded ``type`` adds a row under ``<param>:of-type`` whose system is the
  type's system and whose code is ``<type code>|<value>`` (HAPI's layout for ``:of-type``).
* A reference parameter also indexes a logical reference (``Reference.identifier``) as token
  rows under the same parameter name, for ``:identifier``.
* ``uri`` parameters are token rows without a system; ``number`` parameters are quantity rows
  without system, code or unit.
* An open Period end is ``datetime.min`` / ``datetime.max`` (UTC).
* ``_id`` and ``_lastUpdated`` get no rows: the store answers them from the resource row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final

from ytehub.core.units import fold
from ytehub.records.errors import FhirError
from ytehub.records.fhirdate import parse_fhir_date
from ytehub.records.search_params import (
    SearchParam,
    compile_path,
    params_for,
    patient_compartment_params,
)

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "DateRow",
    "IndexRows",
    "QuantityRow",
    "ReferenceRow",
    "StringRow",
    "TokenRow",
    "extract",
    "patient_refs",
    "split_reference",
]

DATE_MIN: Final = datetime.min.replace(tzinfo=UTC)
"""The low end of a Period without ``start``."""
DATE_MAX: Final = datetime.max.replace(tzinfo=UTC)
"""The high end of a Period without ``end``."""

OF_TYPE: Final = ":of-type"
CURRENCY_SYSTEM: Final = "urn:iso:std:iso:4217"

# Parameters answered from the resource row, not from index rows.
_NOT_EXTRACTED: Final = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A code in a system (``system`` None when the element has none: code, boolean, uri)."""

    param: str
    system: str | None
    code: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class StringRow:
    """A folded string for default/``:contains`` search, with the original for ``:exact``."""

    param: str
    value: str
    exact: str


@dataclass(frozen=True, slots=True)
class DateRow:
    """The UTC instants a date, dateTime, instant, Period or Timing event covers (inclusive)."""

    param: str
    low: datetime
    high: datetime


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """A reference: ``url`` as written; type and id when the url names them."""

    param: str
    target_type: str | None
    target_id: str | None
    url: str


@dataclass(frozen=True, slots=True)
class QuantityRow:
    """A measured amount; ``system``/``code`` are the coded unit (UCUM), ``unit`` as written."""

    param: str
    value: Decimal
    system: str | None
    code: str | None
    unit: str | None


@dataclass(slots=True)
class IndexRows:
    """Everything one resource contributes to the five index tables."""

    tokens: list[TokenRow] = field(default_factory=list)
    strings: list[StringRow] = field(default_factory=list)
    dates: list[DateRow] = field(default_factory=list)
    references: list[ReferenceRow] = field(default_factory=list)
    quantities: list[QuantityRow] = field(default_factory=list)


# --------------------------------------------------------------------------- memoised helpers

_fold: Callable[[str], str] = lru_cache(maxsize=1 << 16)(fold)


@lru_cache(maxsize=1 << 14)
def _date_range(text: str) -> tuple[datetime, datetime] | None:
    """The UTC range of a FHIR date text; None when it is malformed (validation's job)."""
    try:
        parsed = parse_fhir_date(text)
    except FhirError:
        return None
    return parsed.low, parsed.high


_REFERENCE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


@lru_cache(maxsize=1 << 14)
def split_reference(url: str) -> tuple[str | None, str | None]:
    """``(type, id)`` named by a reference url (relative, absolute or versioned), else
    ``(None, None)`` (``urn:uuid:``, ``#contained``, conditional references)."""
    if url.startswith(("#", "urn:")):
        return None, None
    match = _REFERENCE.search(url)
    if match is None:
        return None, None
    return match.group(1), match.group(2)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, (str, Decimal)):
        try:
            number = Decimal(value)
        except (InvalidOperation, ValueError):
            return None
        return number if number.is_finite() else None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------- walking paths


_Steps = tuple[str | tuple[str, str], ...]


def _walk(top: Any, steps: _Steps) -> list[Any]:
    """The values at ``steps`` below ``top`` (the value of a path's first element); lists are
    flattened at every step."""
    current: list[Any] = top if isinstance(top, list) else [top]
    for step in steps:
        found: list[Any] = []
        if isinstance(step, str):
            for node in current:
                if isinstance(node, dict):
                    value = node.get(step)
                    if value is None:
                        continue
                    if isinstance(value, list):
                        found.extend(value)
                    else:
                        found.append(value)
        else:
            name, literal = step
            found = [n for n in current if isinstance(n, dict) and n.get(name) == literal]
        if not found:
            return found
        current = found
    return current


class _Out:
    """Row tuples collected during one extraction, before dedupe."""

    __slots__ = ("dates", "quantities", "references", "strings", "tokens")

    def __init__(self) -> None:
        self.tokens: list[tuple[str, str | None, str | None, str | None]] = []
        self.strings: list[tuple[str, str, str]] = []
        self.dates: list[tuple[str, datetime, datetime]] = []
        self.references: list[tuple[str, str | None, str | None, str]] = []
        self.quantities: list[tuple[str, Decimal, str | None, str | None, str | None]] = []


# --------------------------------------------------------------------------- per-type handlers


def _coding(param: str, coding: Any, out: _Out) -> str | None:
    """Add a Coding's row; returns its folded display (so a repeated text can be skipped)."""
    if not isinstance(coding, dict):
        return None
    code = _str(coding.get("code"))
    display = _str(coding.get("display"))
    text = _fold(display) if display else None
    if code is not None or text:
        out.tokens.append((param, _str(coding.get("system")), code, text))
    return text


def _identifier(param: str, ident: dict[str, Any], out: _Out) -> None:
    """Identifier or ContactPoint: system and value (a ContactPoint's system is its kind)."""
    value = _str(ident.get("value"))
    if value is None:
        return
    text: str | None = None
    kind = ident.get("type")
    if isinstance(kind, dict):
        label = _str(kind.get("text"))
        codings = kind.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                if not isinstance(coding, dict):
                    continue
                code = _str(coding.get("code"))
                if code is not None:
                    out.tokens.append(
                        (param + OF_TYPE, _str(coding.get("system")), f"{code}|{value}", None)
                    )
                label = label or _str(coding.get("display"))
        text = _fold(label) if label else None
    out.tokens.append((param, _str(ident.get("system")), value, text))


def _token(param: str, value: Any, out: _Out) -> None:
    if isinstance(value, str):
        if value:
            out.tokens.append((param, None, value, None))
    elif isinstance(value, bool):
        out.tokens.append((param, None, "true" if value else "false", None))
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "code" not in value and "value" not in value):
            displays: set[str | None] = set()
            codings = value.get("coding")
            if isinstance(codings, list):
                for coding in codings:
                    displays.add(_coding(param, coding, out))
            text = _str(value.get("text"))
            if text is not None:
                folded = _fold(text)
                if folded and folded not in displays:
                    out.tokens.append((param, None, None, folded))
        elif "value" in value:
            _identifier(param, value, out)
        else:
            _coding(param, value, out)
    elif isinstance(value, (int, Decimal)):
        out.tokens.append((param, None, str(value), None))


def _uri(param: str, value: Any, out: _Out) -> None:
    if isinstance(value, str) and value:
        out.tokens.append((param, None, value, None))


# HumanName and Address parts; each becomes its own row.
_STRING_PARTS: Final = frozenset(
    {
        "family",
        "given",
        "prefix",
        "suffix",
        "text",
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
    }
)


def _string(param: str, value: Any, out: _Out) -> None:
    if isinstance(value, str):
        folded = _fold(value)
        if folded:
            out.strings.append((param, folded, value))
        return
    if not isinstance(value, dict):
        return
    for key, part in value.items():
        if key not in _STRING_PARTS:
            continue
        if isinstance(part, str):
            _string(param, part, out)
        elif isinstance(part, list):
            for item in part:
                if isinstance(item, str):
                    _string(param, item, out)
    family = value.get("family")
    given = value.get("given")
    if isinstance(family, str) or isinstance(given, list):
        # The whole name in both orders: Vietnamese family-first ("Nguyễn Văn An") and the
        # given-first order of foreign names, so a full-name search matches either way.
        names = [g for g in given if isinstance(g, str) and g] if isinstance(given, list) else []
        head = [family] if isinstance(family, str) and family else []
        if head and names:
            _string(param, " ".join(head + names), out)
            _string(param, " ".join(names + head), out)
        elif len(names) > 1:
            _string(param, " ".join(names), out)


def _date(param: str, value: Any, out: _Out) -> None:
    if isinstance(value, str):
        found = _date_range(value)
        if found is not None:
            out.dates.append((param, found[0], found[1]))
    elif isinstance(value, dict):
        if "start" in value or "end" in value:
            _period(param, value, out)
        else:
            events = value.get("event")
            if isinstance(events, list):
                for event in events:
                    if isinstance(event, str):
                        _date(param, event, out)
            repeat = value.get("repeat")
            if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
                _period(param, repeat["boundsPeriod"], out)


def _period(param: str, period: dict[str, Any], out: _Out) -> None:
    """start.low .. end.high; an open end reaches DATE_MIN / DATE_MAX; a bad end: no row."""
    start, end = period.get("start"), period.get("end")
    if not isinstance(start, str) and not isinstance(end, str):
        return
    low, high = DATE_MIN, DATE_MAX
    if isinstance(start, str):
        found = _date_range(start)
        if found is None:
            return
        low = found[0]
    if isinstance(end, str):
        found = _date_range(end)
        if found is None:
            return
        high = found[1]
    out.dates.append((param, low, high))


def _quantity(param: str, value: Any, out: _Out) -> None:
    if isinstance(value, dict):
        number = _decimal(value.get("value"))
        if number is None:
            return
        currency = _str(value.get("currency"))
        if currency is not None:  # Money
            out.quantities.append((param, number, CURRENCY_SYSTEM, currency, currency))
            return
        out.quantities.append(
            (
                param,
                number,
                _str(value.get("system")),
                _str(value.get("code")),
                _str(value.get("unit")),
            )
        )
    else:
        _number(param, value, out)


def _number(param: str, value: Any, out: _Out) -> None:
    number = _decimal(value)
    if number is not None:
        out.quantities.append((param, number, None, None, None))


def _reference(param: str, targets: frozenset[str], value: Any, out: _Out) -> None:
    """Reference (literal and/or logical) or canonical; only to ``targets`` when non-empty.

    A reference whose type cannot be told (``urn:uuid:``, ``#contained``) is kept unless its
    ``Reference.type`` says it points elsewhere.
    """
    if isinstance(value, dict):
        declared = _str(value.get("type"))
        url = _str(value.get("reference"))
        if url is not None:
            kind, ident = split_reference(url)
            pointee = kind or declared
            if not targets or pointee is None or pointee in targets:
                out.references.append((param, kind, ident, url))
        logical = value.get("identifier")
        if isinstance(logical, dict) and (not targets or declared is None or declared in targets):
            _identifier(param, logical, out)
    elif isinstance(value, str) and value:
        kind, ident = split_reference(value.split("|", 1)[0])
        if not targets or kind is None or kind in targets:
            out.references.append((param, kind, ident, value))


_Handler = Callable[[str, Any, _Out], None]
_HANDLERS: Final[dict[str, _Handler]] = {
    "token": _token,
    "string": _string,
    "date": _date,
    "quantity": _quantity,
    "uri": _uri,
    "number": _number,
}


# --------------------------------------------------------------------------- compiled plans


@dataclass(frozen=True, slots=True)
class _Use:
    """One parameter reading the values of one path."""

    param: str
    type: str
    targets: frozenset[str]
    exists: bool


# A plan groups paths by their first element, which most resources lack: one dict lookup skips
# the whole group. Each branch is the rest of a path and every parameter that reads it.
_Branch = tuple[_Steps, tuple[_Use, ...]]
_Plan = tuple[tuple[str, tuple[_Branch, ...]], ...]


def _split_first(path: str) -> tuple[str, _Steps, bool]:
    compiled = compile_path(path)
    first = compiled.steps[0]
    if not isinstance(first, str):  # compile_path never yields this; narrows the type
        raise ValueError(f"{path!r} must start with an element")
    return first, compiled.steps[1:], compiled.exists


def _build_plan(params: Iterable[SearchParam]) -> _Plan:
    grouped: dict[str, dict[_Steps, list[_Use]]] = {}
    for param in params:
        for path in param.paths:
            first, rest, exists = _split_first(path)
            use = _Use(param.name, param.type, frozenset(param.target_types), exists)
            grouped.setdefault(first, {}).setdefault(rest, []).append(use)
    return tuple(
        (first, tuple((rest, tuple(uses)) for rest, uses in branches.items()))
        for first, branches in grouped.items()
    )


@lru_cache(maxsize=512)
def _plan(resource_type: str) -> _Plan:
    """The paths to walk for a type; unknown types get the common parameters only."""
    return _build_plan(
        p for p in params_for(resource_type).values() if p.name not in _NOT_EXTRACTED
    )


@lru_cache(maxsize=512)
def _compartment_paths(resource_type: str) -> tuple[tuple[str, _Steps], ...]:
    params = params_for(resource_type)
    paths = {
        _split_first(path)[:2]
        for name in patient_compartment_params(resource_type)
        for path in params[name].paths
    }
    return tuple(sorted(paths, key=repr))


# --------------------------------------------------------------------------- public API


def extract(resource: dict[str, Any]) -> IndexRows:
    """The index rows of ``resource`` for its type's parameters and the common ones.

    Never raises on odd content: what cannot be read gives no row. Rows are unique.
    """
    out = extract_tuples(resource)
    return IndexRows(
        tokens=[TokenRow(*row) for row in out.tokens],
        strings=[StringRow(*row) for row in out.strings],
        dates=[DateRow(*row) for row in out.dates],
        references=[ReferenceRow(*row) for row in out.references],
        quantities=[QuantityRow(*row) for row in out.quantities],
    )


def extract_tuples(resource: dict[str, Any]) -> _Out:
    """:func:`extract` as plain tuples in the rows' field order, for the store's bulk writes."""
    out = _Out()
    if not isinstance(resource, dict):
        return out
    resource_type = resource.get("resourceType")
    for first, branches in _plan(resource_type if isinstance(resource_type, str) else ""):
        top = resource.get(first)
        if top is None:
            continue
        for rest, uses in branches:
            values = _walk(top, rest)
            if not values:
                continue
            for use in uses:
                if use.exists:
                    out.tokens.append((use.param, None, "true", None))
                elif use.type == "reference":
                    for value in values:
                        _reference(use.param, use.targets, value, out)
                else:
                    handler = _HANDLERS[use.type]
                    for value in values:
                        handler(use.param, value, out)
    strings: dict[tuple[str, str], tuple[str, str, str]] = {}
    for row in out.strings:
        strings.setdefault(row[:2], row)
    out.strings = list(strings.values())
    out.tokens = list(dict.fromkeys(out.tokens))
    out.dates = list(dict.fromkeys(out.dates))
    out.references = list(dict.fromkeys(out.references))
    out.quantities = list(dict.fromkeys(out.quantities))
    return out


def patient_refs(resource: dict[str, Any]) -> set[str]:
    """Ids of the Patients whose compartment holds ``resource``: whose record it is.

    A Patient belongs to itself only (its ``link`` targets are other records). Only literal
    references that name a Patient (``Patient/123``, ``https://…/Patient/123``) count.
    """
    if not isinstance(resource, dict):
        return set()
    resource_type = resource.get("resourceType")
    if resource_type == "Patient":
        own = resource.get("id")
        return {own} if isinstance(own, str) and own else set()
    if not isinstance(resource_type, str):
        return set()
    found: set[str] = set()
    for first, rest in _compartment_paths(resource_type):
        top = resource.get(first)
        if top is None:
            continue
        for value in _walk(top, rest):
            if isinstance(value, dict):
                url = value.get("reference")
                if isinstance(url, str):
                    kind, ident = split_reference(url)
                    if kind == "Patient" and ident is not None:
                        found.add(ident)
    return found
