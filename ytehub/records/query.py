"""FHIR search requests parsed into a plan: pure, no I/O.

A GET query string or a POST ``_search`` form arrives as (name, value) pairs. This module
checks them against the search parameters of the resource type and produces a
:class:`SearchPlan` of typed criteria and result parameters, which the repository turns into
SQL and the server serialises back into ``Bundle.link`` URLs with :func:`format_search_url`.
Keeping the parse apart from the SQL means every malformed or unsupported request is refused
(or, when lenient, reported) in one place, with the parameter named and a message in both
Vietnamese and English, before any query runs.

Semantics (FHIR R4 search):

- repeated names are ANDed; comma-separated values within one parameter are ORed;
- ``\\,`` ``\\|`` ``\\$`` and ``\\\\`` escape a comma, bar, dollar and backslash in a value;
- a parameter with an empty value is ignored, as the specification asks;
- unknown parameters (and unsupported features such as ``_has`` or ``_include:iterate``)
  fail with 400 under ``Prefer: handling=strict`` and are otherwise skipped with a warning in
  ``SearchPlan.warnings``, which the server adds to the Bundle as an OperationOutcome;
- malformed values and unsupported modifiers always fail with 400 (the specification says a
  server SHALL reject a modifier it does not support: ignoring it would widen the result).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol
from urllib.parse import quote

from ytehub.core.errors import Text
from ytehub.records.errors import FhirError, Issue
from ytehub.records.fhirdate import DateRange, format_fhir_date, parse_fhir_date

Prefix = Literal["eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap"]
PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")

DEFAULT_COUNT = 20
MAX_COUNT = 1000
MAX_OR_VALUES = 1000
MAX_CURSOR_LENGTH = 4096
TOTAL_MODES = ("none", "estimate", "accurate")
DEFAULT_TOTAL = "accurate"
SUMMARY_MODES = ("true", "count", "false", "text", "data")
SORTABLE_TYPES = frozenset({"date", "string", "token"})
SUPPORTED_TYPES = frozenset({"token", "string", "date", "reference", "quantity", "uri", "number"})

# Modifiers FHIR R4 defines that this server does not implement: refused as not-supported.
_UNSUPPORTED_MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"in", "not-in", "below", "above", "code-text", "text-advanced"}),
    "string": frozenset({"text", "text-advanced"}),
    "reference": frozenset({"above", "below", "code-text", "text", "text-advanced"}),
    "uri": frozenset({"contains"}),
    "date": frozenset(),
    "number": frozenset(),
    "quantity": frozenset(),
}
_SUPPORTED_MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"not", "missing", "text", "of-type"}),
    "string": frozenset({"exact", "contains", "missing"}),
    "reference": frozenset({"missing", "identifier"}),
    "uri": frozenset({"below", "above", "missing"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
}
_IGNORED = frozenset({"_format", "_pretty"})

_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
_ELEMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,4})?")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_URL_TAIL = re.compile(r"/([A-Z][A-Za-z]{0,63})/([A-Za-z0-9\-.]{1,64})")
_SPACE_FOR_PLUS = re.compile(r" (?=[0-9]{2}:[0-9]{2}$)")
_UNESCAPE = re.compile(r"\\([\\,|$])")
_ESCAPE = re.compile(r"([\\,|$])")
_MAX_SHOWN = 80


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenValue:
    """``code`` (any system), ``system|code``, ``|code`` (no system) or ``system|`` (any code).

    ``any_system`` is true only for a bare ``code``; with it false, ``system`` None means the
    coding must have no system and ``code`` None means any code in ``system``.
    """

    system: str | None
    code: str | None
    any_system: bool = False


@dataclass(frozen=True, slots=True)
class StringValue:
    """A string (or ``:text``) value, unescaped and not yet folded: folding is the store's."""

    text: str


@dataclass(frozen=True, slots=True)
class DateValue:
    """``[prefix]date``; ``range`` is the interval the written date covers."""

    prefix: Prefix
    range: DateRange


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """``id``, ``Type/id`` or an absolute ``url`` (whose ``Type/id`` tail is also split out).

    ``target_type`` comes from the value, the ``:Type`` modifier or the parameter's only target.
    """

    target_type: str | None
    id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class QuantityValue:
    """``[prefix]number[|system|code]``; an empty system or code is None (matches any)."""

    prefix: Prefix
    number: Decimal
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class NumberValue:
    """``[prefix]number``; the Decimal keeps the written precision for ``eq``'s implicit range."""

    prefix: Prefix
    number: Decimal


@dataclass(frozen=True, slots=True)
class UriValue:
    """A uri value; with ``:below``/``:above`` a prefix match in the store."""

    uri: str


@dataclass(frozen=True, slots=True)
class MissingValue:
    """``:missing=true|false``: whether the element must be absent (true) or present."""

    missing: bool


@dataclass(frozen=True, slots=True)
class IdentifierTypeValue:
    """``identifier:of-type=system|code|value``: an identifier of that type with that value."""

    system: str
    code: str
    value: str


Value = (
    TokenValue
    | StringValue
    | DateValue
    | ReferenceValue
    | QuantityValue
    | NumberValue
    | UriValue
    | MissingValue
    | IdentifierTypeValue
)


@dataclass(frozen=True, slots=True)
class Chain:
    """``reference_param[:target_type].inner``: resources whose reference points at a
    ``target_type`` resource matching ``inner`` (one level only)."""

    reference_param: str
    target_type: str
    inner: Criterion


@dataclass(frozen=True, slots=True)
class Criterion:
    """One search parameter occurrence: its ``values`` are ORed; criteria are ANDed.

    ``modifier`` is None, a FHIR modifier (``not``, ``missing``, ``exact``, …) or, on a
    reference, a type name (``Patient``). A chained criterion has ``type`` "reference", no
    modifier and no values: everything is in ``chain``.
    """

    param: str
    type: str
    modifier: str | None
    values: tuple[Value, ...]
    chain: Chain | None = None


@dataclass(frozen=True, slots=True)
class Include:
    """``_include``/``_revinclude=source_type:param[:target_type]``; ``param`` may be ``*``."""

    source_type: str
    param: str
    target_type: str | None = None


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ``_sort`` key; ``type`` tells the store how to order (date, string or token)."""

    param: str
    type: str
    descending: bool = False


@dataclass
class SearchPlan:
    """A parsed search. ``warnings`` (what lenient handling skipped) is not part of equality:
    two requests that select and present the same results are the same plan."""

    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    cursor: str | None = None
    total: str = DEFAULT_TOTAL
    summary: str | None = None
    elements: tuple[str, ...] = ()
    warnings: list[Issue] = field(default_factory=list, compare=False)


# --------------------------------------------------------------------------------------
# Search parameter definitions
# --------------------------------------------------------------------------------------


class ParamDef(Protocol):
    """What the parser needs of a ``search_params.SearchParam``."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def paths(self) -> Sequence[str]: ...

    @property
    def target_types(self) -> Sequence[str]: ...


ParamsFor = Callable[[str], Mapping[str, ParamDef]]


def _by_name(params: Mapping[str, ParamDef] | Iterable[ParamDef]) -> dict[str, ParamDef]:
    if isinstance(params, Mapping):
        return dict(params)
    return {p.name: p for p in params}


def default_params_for(resource_type: str) -> Mapping[str, ParamDef]:
    """The type's parameters plus the common ones (``_id``, ``_lastUpdated``, …).

    Imported lazily so this module loads (and its tests run) without the registry.
    """
    from ytehub.records import search_params

    merged = _by_name(search_params.COMMON_PARAMS)
    merged.update(_by_name(search_params.params_for(resource_type)))
    return merged


class _Registry:
    """Per-request cache over ``params_for``; an unknown type has no parameters."""

    def __init__(self, params_for: ParamsFor) -> None:
        self._params_for = params_for
        self._cache: dict[str, Mapping[str, ParamDef]] = {}

    def of(self, resource_type: str) -> Mapping[str, ParamDef]:
        if resource_type not in self._cache:
            try:
                found = self._params_for(resource_type)
            except (LookupError, FhirError):
                found = {}
            self._cache[resource_type] = found
        return self._cache[resource_type]


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def _shown(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"


def _bad(expression: str, vi: str, en: str, code: str = "invalid") -> FhirError:
    return FhirError.single(400, code, vi, en, expression)


def _bad_value(expression: str, value: str, vi: str, en: str) -> FhirError:
    shown = _shown(value)
    return _bad(
        expression,
        f"Giá trị '{shown}' của tham số '{expression}' không hợp lệ: {vi}",
        f"Invalid value '{shown}' for parameter '{expression}': {en}",
    )


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not escaped; escapes stay for :func:`_unescape`."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    r"""``\,`` ``\|`` ``\$`` ``\\`` become the character; any other backslash stays."""
    return _UNESCAPE.sub(r"\1", text)


def _escape(text: str) -> str:
    return _ESCAPE.sub(r"\\\1", text)


def _or_values(raw: str, expression: str) -> list[str]:
    """The comma-separated alternatives of one value, still escaped."""
    pieces = _split(raw, ",")
    if len(pieces) > MAX_OR_VALUES:
        raise _bad_value(
            expression,
            raw,
            f"tối đa {MAX_OR_VALUES} giá trị phân tách bằng dấu phẩy",
            f"at most {MAX_OR_VALUES} comma-separated values",
        )
    if any(piece == "" for piece in pieces):
        raise _bad_value(
            expression,
            raw,
            "có giá trị rỗng trong danh sách phân tách bằng dấu phẩy",
            "the comma-separated list has an empty value",
        )
    return pieces


def _prefixed(raw: str, expression: str) -> tuple[Prefix, str]:
    """Split an ordered value's comparison prefix (default ``eq``)."""
    head = raw[:2]
    for prefix in PREFIXES:
        if head == prefix:
            return prefix, raw[2:]
    if raw[:1].isalpha():
        raise _bad_value(
            expression,
            raw,
            "tiền tố so sánh phải là một trong " + ", ".join(PREFIXES),
            "the comparison prefix must be one of " + ", ".join(PREFIXES),
        )
    return "eq", raw


def _decimal(raw: str, original: str, expression: str) -> Decimal:
    if not _DECIMAL.fullmatch(raw):
        raise _bad_value(
            expression, original, "cần một số thập phân (ví dụ 5.4)", "a decimal number is needed"
        )
    return Decimal(raw)


def _token(raw: str, expression: str) -> TokenValue:
    parts = _split(raw, "|")
    if len(parts) == 1:
        return TokenValue(None, _unescape(parts[0]), True)
    if len(parts) == 2:
        system, code = (_unescape(p) or None for p in parts)
        if system is None and code is None:
            raise _bad_value(expression, raw, "thiếu mã và hệ mã", "both system and code are empty")
        return TokenValue(system, code, False)
    raise _bad_value(
        expression,
        raw,
        "dùng dạng mã, hệ-mã|mã, |mã hoặc hệ-mã| (dấu | trong giá trị viết là \\|)",
        "use code, system|code, |code or system| (write a literal | as \\|)",
    )


def _identifier_type(raw: str, expression: str) -> IdentifierTypeValue:
    parts = [_unescape(p) for p in _split(raw, "|")]
    if len(parts) != 3 or not all(parts):
        raise _bad_value(
            expression,
            raw,
            "dùng dạng hệ-mã|mã-loại|giá-trị",
            "use type-system|type-code|value",
        )
    return IdentifierTypeValue(parts[0], parts[1], parts[2])


def _date(raw: str, expression: str) -> DateValue:
    # An unencoded "+07:00" arrives as " 07:00" after form decoding; read it as meant.
    text = _SPACE_FOR_PLUS.sub("+", raw)
    prefix, rest = _prefixed(text, expression)
    try:
        return DateValue(prefix, parse_fhir_date(rest, expression=expression))
    except FhirError as error:
        # Name the value as the client wrote it (with its prefix) and the parameter.
        reason = error.issues[0].text
        raise _bad_value(expression, raw, reason.vi, reason.en) from None


def _number(raw: str, expression: str) -> NumberValue:
    prefix, rest = _prefixed(raw, expression)
    return NumberValue(prefix, _decimal(rest, raw, expression))


def _quantity(raw: str, expression: str) -> QuantityValue:
    parts = _split(raw, "|")
    if len(parts) not in (1, 3):
        raise _bad_value(
            expression,
            raw,
            "dùng dạng [tiền tố]số hoặc [tiền tố]số|hệ-đơn-vị|mã-đơn-vị",
            "use [prefix]number or [prefix]number|system|code",
        )
    prefix, number = _prefixed(parts[0], expression)
    if not number:
        raise _bad_value(expression, raw, "thiếu số lượng", "the number is missing")
    value = _decimal(number, raw, expression)
    if len(parts) == 1:
        return QuantityValue(prefix, value)
    system, code = (_unescape(p) or None for p in parts[1:])
    return QuantityValue(prefix, value, system, code)


def _reference(
    raw: str, expression: str, definition: ParamDef, type_modifier: str | None
) -> ReferenceValue:
    text = _unescape(raw)
    targets = tuple(definition.target_types)
    url: str | None = None
    if _ABSOLUTE.match(text):
        url = text
        tail = _URL_TAIL.search(text)
        if tail and tail.end() == len(text):
            target, ident = tail.group(1), tail.group(2)
        else:
            target, ident = type_modifier, None
    elif "/" in text:
        parts = text.split("/")
        if len(parts) == 4 and parts[2] == "_history":
            raise _bad(
                expression,
                f"Tìm theo tham chiếu có phiên bản ('{_shown(text)}') chưa được hỗ trợ",
                f"Searching by a versioned reference ('{_shown(text)}') is not supported",
                "not-supported",
            )
        if (
            len(parts) != 2
            or not _TYPE_NAME.fullmatch(parts[0])
            or not _FHIR_ID.fullmatch(parts[1])
        ):
            raise _bad_value(
                expression, raw, "dùng dạng id, Loại/id hoặc một URL", "use id, Type/id or a URL"
            )
        target, ident = parts[0], parts[1]
    else:
        if not _FHIR_ID.fullmatch(text):
            raise _bad_value(
                expression,
                raw,
                "id chỉ gồm chữ, số, '-' và '.', tối đa 64 ký tự",
                "an id has only letters, digits, '-' and '.', at most 64 characters",
            )
        ident = text
        target = type_modifier or (targets[0] if len(targets) == 1 else None)
    if type_modifier and target != type_modifier:
        raise _bad_value(
            expression,
            raw,
            f"tham chiếu không trỏ tới {type_modifier} như bổ ngữ yêu cầu",
            f"the reference does not point to a {type_modifier} as the modifier requires",
        )
    if target and targets and target not in targets and url is None:
        raise _bad_value(
            expression,
            raw,
            f"tham số chỉ trỏ tới {', '.join(targets)}",
            f"the parameter only refers to {', '.join(targets)}",
        )
    return ReferenceValue(target, ident, url)


def _missing(raw: str, expression: str) -> MissingValue:
    if raw not in ("true", "false"):
        raise _bad_value(expression, raw, "dùng true hoặc false", "use true or false")
    return MissingValue(raw == "true")


def _is_identifier_param(definition: ParamDef) -> bool:
    """``:of-type`` applies only to parameters over ``Identifier`` elements."""
    return "identifier" in definition.name or any("identifier" in p for p in definition.paths)


def _criterion(
    name: str, definition: ParamDef, modifier: str | None, raw: str, expression: str
) -> Criterion:
    """Check the modifier against the parameter's type and parse the ORed values."""
    kind = definition.type

    def each(parse: Callable[[str], Value]) -> tuple[Value, ...]:
        return tuple(parse(piece) for piece in _or_values(raw, expression))

    if modifier == "missing":
        return Criterion(name, kind, modifier, (_missing(raw, expression),))
    type_modifier = (
        modifier if kind == "reference" and modifier and _TYPE_NAME.fullmatch(modifier) else None
    )
    if modifier is not None and type_modifier is None:
        if modifier in _UNSUPPORTED_MODIFIERS.get(kind, frozenset()):
            raise _bad(
                expression,
                f"Bổ ngữ ':{modifier}' của tham số '{name}' chưa được hỗ trợ",
                f"The modifier ':{modifier}' on parameter '{name}' is not supported",
                "not-supported",
            )
        if modifier not in _SUPPORTED_MODIFIERS.get(kind, frozenset()) or (
            modifier == "of-type" and not _is_identifier_param(definition)
        ):
            raise _bad(
                expression,
                f"Bổ ngữ ':{_shown(modifier)}' không dùng được với tham số '{name}' ({kind})",
                f"The modifier ':{_shown(modifier)}' is not valid on parameter '{name}' ({kind})",
            )
    if type_modifier is not None:
        targets = tuple(definition.target_types)
        if targets and type_modifier not in targets:
            raise _bad(
                expression,
                f"Tham số '{name}' không trỏ tới {type_modifier}; chỉ tới {', '.join(targets)}",
                f"Parameter '{name}' does not refer to {type_modifier}; "
                f"only to {', '.join(targets)}",
            )

    values: tuple[Value, ...]
    if kind == "token":
        if modifier == "text":
            values = each(lambda p: StringValue(_unescape(p)))
        elif modifier == "of-type":
            values = each(lambda p: _identifier_type(p, expression))
        else:
            values = each(lambda p: _token(p, expression))
    elif kind == "string":
        values = each(lambda p: StringValue(_unescape(p)))
    elif kind == "date":
        values = each(lambda p: _date(p, expression))
    elif kind == "number":
        values = each(lambda p: _number(p, expression))
    elif kind == "quantity":
        values = each(lambda p: _quantity(p, expression))
    elif kind == "uri":
        values = each(lambda p: UriValue(_unescape(p)))
    elif modifier == "identifier":
        values = each(lambda p: _token(p, expression))
    else:  # reference
        values = each(lambda p: _reference(p, expression, definition, type_modifier))
    return Criterion(name, kind, modifier, values)


# --------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------


class _Parser:
    """Collects every problem of a request so the client can fix them all at once."""

    def __init__(self, resource_type: str, registry: _Registry, strict: bool) -> None:
        self.plan = SearchPlan(resource_type)
        self.registry = registry
        self.strict = strict
        self.errors: list[Issue] = []
        self.seen: set[str] = set()
        self.result_params: dict[str, Callable[[str], None]] = {
            "_count": self.count,
            "_sort": self.sort,
            "_total": self.total,
            "_summary": self.summary,
            "_elements": self.elements,
        }

    # -- reporting ---------------------------------------------------------------------

    def unsupported(self, expression: str, vi: str, en: str) -> None:
        """Strict: an error. Lenient: skipped, with a warning for the Bundle."""
        if self.strict:
            self.errors.append(Issue("error", "not-supported", Text(vi, en), expression))
        else:
            text = Text(f"{vi} — đã bỏ qua", f"{en} — ignored")
            self.plan.warnings.append(Issue("warning", "not-supported", text, expression))

    def unknown_param(self, expression: str, name: str, resource_type: str) -> None:
        self.unsupported(
            expression,
            f"Tham số tìm kiếm '{_shown(name)}' không được hỗ trợ cho {resource_type}",
            f"Unknown search parameter '{_shown(name)}' for {resource_type}",
        )

    # -- dispatch ----------------------------------------------------------------------

    def feed(self, name: str, value: str) -> None:
        try:
            self._feed(name, value)
        except FhirError as error:
            self.errors.extend(error.issues)

    def _feed(self, name: str, value: str) -> None:
        base, _, modifier = name.partition(".")[0].partition(":")
        if name in _IGNORED:
            return
        if value == "":
            return  # FHIR: a parameter without a value is ignored
        if base in ("_include", "_revinclude") and "." not in name:
            self.include(name, base, modifier, value)
        elif name in ("_page", "_cursor"):
            self.once("_cursor", name)
            self.cursor(name, value)
        elif name in self.result_params:
            self.once(name, name)
            self.result_params[name](value)
        elif base == "_has":
            self.unsupported(
                name,
                f"Chuỗi ngược _has ('{_shown(name)}') chưa được hỗ trợ",
                f"Reverse chaining with _has ('{_shown(name)}') is not supported",
            )
        else:
            self.criterion(name, value)

    def once(self, slot: str, name: str) -> None:
        if slot in self.seen:
            raise _bad(
                name,
                f"Tham số '{name}' chỉ được dùng một lần",
                f"The parameter '{name}' may only appear once",
            )
        self.seen.add(slot)

    # -- criteria ----------------------------------------------------------------------

    def criterion(self, name: str, value: str) -> None:
        head, dot, rest = name.partition(".")
        base, colon, modifier = head.partition(":")
        resource_type = self.plan.resource_type
        definition = self.registry.of(resource_type).get(base)
        if definition is None or not _PARAM_NAME.fullmatch(base):
            self.unknown_param(name, name, resource_type)
            return
        if definition.type not in SUPPORTED_TYPES:
            self.unsupported(
                name,
                f"Tham số '{base}' kiểu {definition.type} chưa được hỗ trợ",
                f"Parameter '{base}' of type {definition.type} is not supported",
            )
            return
        if colon and not modifier:
            raise _bad(name, "Thiếu bổ ngữ sau dấu ':'", "A modifier is missing after ':'")
        if dot:
            self.plan.criteria.append(self.chain(name, definition, modifier or None, rest, value))
        else:
            self.plan.criteria.append(_criterion(base, definition, modifier or None, value, name))

    def chain(
        self, name: str, definition: ParamDef, modifier: str | None, rest: str, value: str
    ) -> Criterion:
        """``ref[:Type].inner[:modifier]=value``, one level deep."""
        if definition.type != "reference":
            raise _bad(
                name,
                f"Chỉ tham số tham chiếu mới nối chuỗi được; '{definition.name}' là "
                f"{definition.type}",
                f"Only reference parameters can be chained; '{definition.name}' is "
                f"{definition.type}",
            )
        if "." in rest:
            raise _bad(
                name,
                "Chỉ hỗ trợ nối chuỗi một cấp",
                "Only one level of chaining is supported",
                "not-supported",
            )
        targets = tuple(definition.target_types)
        if modifier is not None:
            if not _TYPE_NAME.fullmatch(modifier) or (targets and modifier not in targets):
                raise _bad(
                    name,
                    f"'{_shown(modifier)}' không phải loại tài nguyên mà '{definition.name}' "
                    f"trỏ tới",
                    f"'{_shown(modifier)}' is not a resource type '{definition.name}' refers to",
                )
            candidates: tuple[str, ...] = (modifier,)
        else:
            candidates = targets
        inner_name, inner_colon, inner_modifier = rest.partition(":")
        # Chain to one target type: Patient when it defines the inner parameter (a health
        # record's subject is nearly always the patient), else the first in the parameter's
        # order that does. FHIR would search every such type; one keeps the SQL a single join.
        defining = [t for t in candidates if inner_name in self.registry.of(t)]
        if not defining:
            if not candidates:
                raise _bad(
                    name,
                    f"'{definition.name}' trỏ tới mọi loại tài nguyên: ghi rõ loại, ví dụ "
                    f"{definition.name}:Patient.{_shown(inner_name)}",
                    f"'{definition.name}' may refer to any resource type: name one, e.g. "
                    f"{definition.name}:Patient.{_shown(inner_name)}",
                )
            where = ", ".join(candidates)
            raise _bad(
                name,
                f"Không có tham số '{_shown(inner_name)}' trên {where} để nối chuỗi",
                f"No parameter '{_shown(inner_name)}' on {where} to chain to",
            )
        target = "Patient" if "Patient" in defining else defining[0]
        inner_definition = self.registry.of(target)[inner_name]
        if inner_definition.type not in SUPPORTED_TYPES:
            raise _bad(
                name,
                f"Tham số '{inner_name}' kiểu {inner_definition.type} chưa được hỗ trợ",
                f"Parameter '{inner_name}' of type {inner_definition.type} is not supported",
                "not-supported",
            )
        if inner_colon and not inner_modifier:
            raise _bad(name, "Thiếu bổ ngữ sau dấu ':'", "A modifier is missing after ':'")
        inner = _criterion(inner_name, inner_definition, inner_modifier or None, value, name)
        param = name.partition(".")[0].partition(":")[0]
        return Criterion(param, "reference", None, (), Chain(param, target, inner))

    # -- result parameters -------------------------------------------------------------

    def count(self, value: str) -> None:
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            raise _bad_value("_count", value, "cần số nguyên không âm", "a whole number >= 0")
        count = int(value)
        if count > MAX_COUNT:
            text = Text(
                f"_count={count} vượt mức tối đa; mỗi trang trả về {MAX_COUNT} kết quả",
                f"_count={count} exceeds the maximum; pages hold {MAX_COUNT} results",
            )
            self.plan.warnings.append(Issue("warning", "informational", text, "_count"))
            count = MAX_COUNT
        self.plan.count = count

    def total(self, value: str) -> None:
        if value not in TOTAL_MODES:
            raise _bad_value(
                "_total",
                value,
                "dùng none, estimate hoặc accurate",
                "use none, estimate or accurate",
            )
        self.plan.total = value

    def summary(self, value: str) -> None:
        if value not in SUMMARY_MODES:
            modes = ", ".join(SUMMARY_MODES)
            raise _bad_value("_summary", value, f"dùng một trong {modes}", f"use one of {modes}")
        self.plan.summary = value

    def elements(self, value: str) -> None:
        names: list[str] = []
        for piece in value.split(","):
            element = piece.strip()
            if not _ELEMENT.fullmatch(element):
                raise _bad_value(
                    "_elements",
                    value,
                    "cần danh sách tên phần tử phân tách bằng dấu phẩy",
                    "a comma-separated list of element names is needed",
                )
            if element not in names:
                names.append(element)
        self.plan.elements = tuple(names)

    def cursor(self, name: str, value: str) -> None:
        if len(value) > MAX_CURSOR_LENGTH:
            raise _bad_value(name, value, "con trỏ trang quá dài", "the page cursor is too long")
        self.plan.cursor = value

    def sort(self, value: str) -> None:
        keys: list[SortKey] = []
        resource_type = self.plan.resource_type
        params = self.registry.of(resource_type)
        for piece in value.split(","):
            descending = piece.startswith("-")
            name = piece[1:] if descending else piece
            if not _PARAM_NAME.fullmatch(name):
                raise _bad_value(
                    "_sort",
                    value,
                    "dùng danh sách tham số, '-' phía trước để sắp giảm dần",
                    "use a list of parameters, with '-' in front for descending",
                )
            definition = params.get(name)
            kind = definition.type if definition else _BUILTIN_SORT.get(name)
            if kind is None:
                self.unknown_param("_sort", name, resource_type)
                continue
            if kind not in SORTABLE_TYPES:
                self.unsupported(
                    "_sort",
                    f"Không sắp xếp được theo '{name}' (kiểu {kind})",
                    f"Cannot sort by '{name}' (type {kind})",
                )
                continue
            if any(key.param == name for key in keys):
                raise _bad_value("_sort", value, f"'{name}' lặp lại", f"'{name}' is repeated")
            keys.append(SortKey(name, kind, descending))
        self.plan.sort = keys

    def include(self, name: str, base: str, modifier: str, value: str) -> None:
        if modifier and modifier not in ("iterate", "recurse"):
            raise _bad(
                name,
                f"Bổ ngữ ':{_shown(modifier)}' không dùng được với {base}",
                f"The modifier ':{_shown(modifier)}' is not valid on {base}",
            )
        if modifier:
            self.unsupported(
                name,
                f"{name} chưa được hỗ trợ; chỉ gộp một cấp",
                f"{name} is not supported; only one level is included",
            )
            if self.strict:
                return
        reverse = base == "_revinclude"
        resource_type = self.plan.resource_type
        if value == "*":
            if reverse:
                self.unsupported(
                    name, "_revinclude=* chưa được hỗ trợ", "_revinclude=* is not supported"
                )
                return
            value = f"{resource_type}:*"
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise _bad_value(
                name, value, "dùng dạng Loại:tham-số[:Loại-đích]", "use Type:param[:TargetType]"
            )
        source, param = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if not _TYPE_NAME.fullmatch(source) or (target and not _TYPE_NAME.fullmatch(target)):
            raise _bad_value(
                name, value, "tên loại tài nguyên không hợp lệ", "invalid resource type name"
            )
        if not reverse and source != resource_type:
            raise _bad_value(
                name,
                value,
                f"_include phải bắt đầu bằng {resource_type}",
                f"_include must start with {resource_type}",
            )
        if param == "*":
            if reverse:
                raise _bad_value(
                    name, value, "_revinclude cần tên tham số", "_revinclude needs a parameter"
                )
        else:
            definition = self.registry.of(source).get(param)
            if definition is None:
                self.unknown_param(name, param, source)
                return
            if definition.type != "reference":
                raise _bad_value(
                    name,
                    value,
                    f"'{param}' không phải tham số tham chiếu",
                    f"'{param}' is not a reference parameter",
                )
            targets = tuple(definition.target_types)
            if target and targets and target not in targets:
                raise _bad_value(
                    name,
                    value,
                    f"'{param}' không trỏ tới {target}",
                    f"'{param}' does not refer to {target}",
                )
            if reverse and targets and resource_type not in targets:
                raise _bad_value(
                    name,
                    value,
                    f"'{source}.{param}' không trỏ tới {resource_type}",
                    f"'{source}.{param}' does not refer to {resource_type}",
                )
        if reverse and target and target != resource_type:
            raise _bad_value(
                name,
                value,
                f"loại đích phải là {resource_type}",
                f"the target type must be {resource_type}",
            )
        include = Include(source, param, target)
        bucket = self.plan.revincludes if reverse else self.plan.includes
        if include not in bucket:
            bucket.append(include)

    def finish(self) -> SearchPlan:
        if self.errors:
            raise FhirError(400, self.errors)
        return self.plan


# ``_id`` and ``_lastUpdated`` sort even when the registry lacks the common parameters.
_BUILTIN_SORT = {"_id": "token", "_lastUpdated": "date"}


def parse_search(
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    params_for: ParamsFor | None = None,
) -> SearchPlan:
    """Parse the (name, value) pairs of a search on ``resource_type`` into a plan.

    ``strict`` is the client's ``Prefer: handling=strict``. ``params_for`` returns every
    parameter valid on a type (its own and the common ones); it defaults to the registry in
    ``search_params``. Raises :class:`FhirError` 400 with one issue per problem.
    """
    parser = _Parser(resource_type, _Registry(params_for or default_params_for), strict)
    for name, value in params:
        parser.feed(name, value)
    return parser.finish()


# --------------------------------------------------------------------------------------
# Canonical URL
# --------------------------------------------------------------------------------------

_SAFE = ":/|,*$"


def _format_value(criterion: Criterion, value: Value) -> str:
    if isinstance(value, MissingValue):
        return "true" if value.missing else "false"
    if isinstance(value, TokenValue):
        code = _escape(value.code or "")
        if value.any_system:
            return code
        return f"{_escape(value.system or '')}|{code}"
    if isinstance(value, StringValue):
        return _escape(value.text)
    if isinstance(value, UriValue):
        return _escape(value.uri)
    if isinstance(value, DateValue):
        return _prefix(value.prefix) + format_fhir_date(value.range)
    if isinstance(value, NumberValue):
        return _prefix(value.prefix) + str(value.number)
    if isinstance(value, QuantityValue):
        text = _prefix(value.prefix) + str(value.number)
        if value.system is None and value.code is None:
            return text
        return f"{text}|{_escape(value.system or '')}|{_escape(value.code or '')}"
    if isinstance(value, IdentifierTypeValue):
        return "|".join(_escape(p) for p in (value.system, value.code, value.value))
    # ReferenceValue
    if value.url is not None:
        return _escape(value.url)
    if value.target_type and criterion.modifier is None:
        return f"{value.target_type}/{value.id}"
    return value.id or ""


def _prefix(prefix: Prefix) -> str:
    return "" if prefix == "eq" else prefix


def _criterion_pair(criterion: Criterion) -> tuple[str, str]:
    target = criterion
    name = criterion.param
    if criterion.chain is not None:
        target = criterion.chain.inner
        name = f"{criterion.param}:{criterion.chain.target_type}.{target.param}"
    if target.modifier:
        name += f":{target.modifier}"
    return name, ",".join(_format_value(target, v) for v in target.values)


def search_pairs(plan: SearchPlan) -> list[tuple[str, str]]:
    """The plan as canonical (name, value) pairs: criteria in order, then result parameters."""
    pairs = [_criterion_pair(c) for c in plan.criteria]
    for key, includes in (("_include", plan.includes), ("_revinclude", plan.revincludes)):
        for include in includes:
            text = f"{include.source_type}:{include.param}"
            pairs.append((key, text + (f":{include.target_type}" if include.target_type else "")))
    if plan.sort:
        pairs.append(
            ("_sort", ",".join(("-" if k.descending else "") + k.param for k in plan.sort))
        )
    pairs.append(("_count", str(plan.count)))
    if plan.total != DEFAULT_TOTAL:
        pairs.append(("_total", plan.total))
    if plan.summary is not None:
        pairs.append(("_summary", plan.summary))
    if plan.elements:
        pairs.append(("_elements", ",".join(plan.elements)))
    if plan.cursor is not None:
        pairs.append(("_cursor", plan.cursor))
    return pairs


def format_search_url(plan: SearchPlan) -> str:
    """The plan's canonical query string (no ``?``), for ``Bundle.link`` self and next.

    ``parse_search(t, parse_qsl(format_search_url(plan)))`` gives an equal plan; skipped
    parameters are gone, so the self link shows what was actually searched.
    """
    return "&".join(f"{quote(n, safe=_SAFE)}={quote(v, safe=_SAFE)}" for n, v in search_pairs(plan))
