"""Run a parsed FHIR search (:class:`SearchPlan`) against the store's index tables.

The plan is turned into one SQL statement per page (SQLAlchemy Core, the same on SQLite and
PostgreSQL): each criterion becomes an EXISTS over an index table, OR-ed within a parameter
and AND-ed across parameters; one level of chaining becomes a nested EXISTS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session, aliased

from ytehub.core.security import AreaScope
from ytehub.core.units import fold
from ytehub.records.errors import FhirError
from ytehub.records.fhirdate import DateRange
from ytehub.records.models import (
    FhirResource,
    date_index,
    quantity_index,
    reference_index,
    string_index,
    token_index,
)
from ytehub.records.query import (
    Criterion,
    DateValue,
    MissingValue,
    QuantityValue,
    ReferenceValue,
    SearchPlan,
    StringValue,
    TokenValue,
    UriValue,
    parse_search,
)

_TABLES = {
    "token": token_index,
    "uri": token_index,
    "string": string_index,
    "date": date_index,
    "reference": reference_index,
    "quantity": quantity_index,
    "number": quantity_index,
}


# The store writes through Core: rows must not come from ORM objects loaded earlier in the
# same transaction (a bundle that searches, updates, then searches again).
FRESH = {"populate_existing": True}


def _unsupported(criterion: Criterion, what: str) -> FhirError:
    return FhirError.single(
        400,
        "not-supported",
        f"Chưa hỗ trợ tìm kiếm {what} cho tham số {criterion.param}.",
        f"Searching {what} is not supported yet for parameter {criterion.param}.",
        criterion.param,
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _date_match(low: Any, high: Any, value: DateValue) -> ColumnElement[bool]:
    r: DateRange = value.range
    prefix = value.prefix
    if prefix == "eq":
        return and_(low >= r.low, high <= r.high)
    if prefix == "ne":
        return not_(and_(low >= r.low, high <= r.high))
    if prefix == "gt":
        return high > r.high
    if prefix == "lt":
        return low < r.low
    if prefix == "ge":
        return high >= r.low
    if prefix == "le":
        return low <= r.high
    if prefix == "sa":
        return low > r.high
    if prefix == "eb":
        return high < r.low
    # ap: within 10 % of the distance to now (at least a day), as the specification suggests
    distance = abs(datetime.now(UTC) - r.low)
    slack = max(timedelta(days=1), distance / 10)
    return and_(low <= r.high + slack, high >= r.low - slack)


def _number_match(column: Any, prefix: str, number: Decimal) -> ColumnElement[bool]:
    # eq/ne/ap honour the precision written: 5.4 means [5.35, 5.45)
    exponent = number.as_tuple().exponent
    half = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0) / 2
    if prefix in ("eq", "ap"):
        widen = half if prefix == "eq" else max(half, abs(number) / 10)
        return and_(column >= number - widen, column < number + widen)
    return {
        "ne": or_(column < number - half, column >= number + half),
        "gt": column > number,
        "lt": column < number,
        "ge": column >= number,
        "le": column <= number,
        "sa": column > number,
        "eb": column < number,
    }[prefix]


def _value_match(criterion: Criterion, table: Any, value: Any) -> ColumnElement[bool]:
    if isinstance(value, TokenValue):
        parts = []
        if value.code is not None:
            parts.append(table.c.code == value.code)
        if not value.any_system:
            parts.append(
                table.c.system.is_(None) if value.system is None else table.c.system == value.system
            )
        return and_(*parts) if parts else true()
    if isinstance(value, UriValue):
        if criterion.modifier == "below":
            return table.c.code.like(_like_escape(value.uri) + "%", escape="\\")
        return table.c.code == value.uri
    if isinstance(value, StringValue):
        if criterion.modifier == "exact":
            return table.c.exact == value.text
        folded = _like_escape(fold(value.text))
        pattern = f"%{folded}%" if criterion.modifier == "contains" else f"{folded}%"
        return table.c.value.like(pattern, escape="\\")
    if isinstance(value, DateValue):
        return _date_match(table.c.low, table.c.high, value)
    if isinstance(value, ReferenceValue):
        parts = []
        if value.id is not None:
            parts.append(table.c.target_id == value.id)
            if value.target_type is not None:
                parts.append(table.c.target_type == value.target_type)
        elif value.url is not None:
            parts.append(table.c.url == value.url)
        return and_(*parts) if parts else false()
    if isinstance(value, QuantityValue):
        parts = [_number_match(table.c.value, value.prefix, value.number)]
        if value.system is not None:
            parts.append(table.c.system == value.system)
        if value.code is not None:
            parts.append(or_(table.c.code == value.code, table.c.unit == value.code))
        return and_(*parts)
    number = getattr(value, "number", None)
    if number is not None:
        return _number_match(table.c.value, value.prefix, number)
    raise _unsupported(criterion, type(value).__name__)


def _owned(table: Any, resource_type: str, owner_id: Any, param: str) -> ColumnElement[bool]:
    return and_(
        table.c.resource_type == resource_type,
        table.c.resource_id == owner_id,
        table.c.param == param,
    )


def _indexed(table: Any, resource_type: str, param: str) -> Select[Any]:
    """Ids of the resources of a type with index rows for ``param``: criteria select from the
    index and test membership, so the cost follows the matches, not the size of the store."""
    return select(table.c.resource_id).where(
        table.c.resource_type == resource_type, table.c.param == param
    )


def _member(
    owner: Any,
    table: Any,
    resource_type: str,
    param: str,
    correlated: bool,
    *conditions: ColumnElement[bool],
) -> ColumnElement[bool]:
    """``owner`` has index rows for ``param`` meeting ``conditions``.

    Two spellings of the same test, because the two planners differ: SQLite runs a correlated
    EXISTS once per candidate row (slow on large stores) but an IN over the index fast;
    PostgreSQL turns EXISTS into a well-estimated semi-join, and can misjudge an IN over a
    common code (measured in bench/bench_fhir.py: Observation?patient&code 8 ms vs 200 ms).
    """
    if correlated:
        return exists(
            select(1)
            .select_from(table)
            .where(_owned(table, resource_type, owner.id, param), *conditions)
        )
    return owner.id.in_(_indexed(table, resource_type, param).where(*conditions))


def criterion_clause(
    resource_type: str, owner: Any, criterion: Criterion, correlated: bool = False
) -> ColumnElement[bool]:
    """A boolean SQL expression over ``owner`` (a FhirResource alias) for one criterion."""
    if criterion.param == "_id":
        return owner.id.in_([v.code for v in criterion.values if isinstance(v, TokenValue)])
    if criterion.param == "_lastUpdated":
        return or_(
            *(
                _date_match(owner.last_updated, owner.last_updated, v)
                for v in criterion.values
                if isinstance(v, DateValue)
            )
        )
    if criterion.chain is not None:
        chain = criterion.chain
        target = aliased(FhirResource)
        targets = select(target.id).where(
            target.resource_type == chain.target_type,
            target.deleted.is_(False),
            criterion_clause(chain.target_type, target, chain.inner, correlated),
        )
        refs = reference_index
        return _member(
            owner,
            refs,
            resource_type,
            chain.reference_param,
            correlated,
            refs.c.target_type == chain.target_type,
            refs.c.target_id.in_(targets),
        )
    table = _TABLES.get(criterion.type)
    if table is None:
        raise _unsupported(criterion, criterion.type)
    if criterion.modifier == "missing":
        missing = any(isinstance(v, MissingValue) and v.missing for v in criterion.values)
        present = _member(owner, table, resource_type, criterion.param, correlated)
        return not_(present) if missing else present
    if criterion.modifier in ("text", "of-type", "identifier", "above"):
        raise _unsupported(criterion, f":{criterion.modifier}")
    matches = or_(*(_value_match(criterion, table, v) for v in criterion.values))
    found = _member(owner, table, resource_type, criterion.param, correlated, matches)
    return not_(found) if criterion.modifier == "not" else found


@dataclass(slots=True)
class SearchResult:
    matches: list[FhirResource]
    total: int | None
    offset: int
    includes: list[FhirResource] = field(default_factory=list)


def area_clause(area: AreaScope | None) -> ColumnElement[bool] | None:
    """Which resources an area scope reaches: Patients living in its communes and everything
    about them; for a facility, what it wrote and the Patients it wrote about."""
    if area is None or area.kind == "province":
        return None
    if area.kind == "communes":
        residents = select(FhirResource.id).where(
            FhirResource.resource_type == "Patient",
            FhirResource.commune_code.in_(area.codes),
        )
        return or_(
            and_(
                FhirResource.resource_type == "Patient", FhirResource.commune_code.in_(area.codes)
            ),
            and_(FhirResource.resource_type != "Patient", FhirResource.person_id.in_(residents)),
        )
    writer = aliased(FhirResource)
    patients_seen = select(writer.person_id).where(writer.facility_code.in_(area.codes))
    return or_(
        FhirResource.facility_code.in_(area.codes),
        and_(FhirResource.resource_type == "Patient", FhirResource.id.in_(patients_seen)),
    )


_SELECTIVITY = {"reference": 1, "token": 2, "uri": 2, "string": 3, "date": 4, "quantity": 4}


def _selectivity(criterion: Criterion) -> int:
    """Which criteria narrow a search most, typically: ids, references, codes, then ranges."""
    if criterion.param == "_id":
        return 0
    if criterion.chain is not None or criterion.modifier in ("missing", "not"):
        return 5
    return _SELECTIVITY.get(criterion.type, 5)


def _base(
    plan: SearchPlan, compartment: str | None, area: AreaScope | None, correlated: bool
) -> Select[Any]:
    query = select(FhirResource).where(
        FhirResource.resource_type == plan.resource_type, FhirResource.deleted.is_(False)
    )
    # SQLite: the most selective criterion drives (an IN over its index), the others are
    # checked per candidate (EXISTS on the index's owner key), so a common code or a wide date
    # range is never materialised in full. PostgreSQL plans EXISTS as semi-joins by itself.
    drive = not correlated and compartment is None
    for position, criterion in enumerate(sorted(plan.criteria, key=_selectivity)):
        per_candidate = correlated or not (drive and position == 0)
        query = query.where(
            criterion_clause(plan.resource_type, FhirResource, criterion, per_candidate)
        )
    if compartment is not None:
        if plan.resource_type == "Patient":
            query = query.where(FhirResource.id == compartment)
        else:
            query = query.where(FhirResource.person_id == compartment)
    reach = area_clause(area)
    if reach is not None:
        query = query.where(reach)
    return query


def _sort_key(plan: SearchPlan, key: Any) -> Any:
    if key.param == "_id":
        return FhirResource.id
    if key.param == "_lastUpdated":
        return FhirResource.last_updated
    table = _TABLES.get(key.type)
    column = {"date": "low", "string": "value", "token": "code"}.get(key.type)
    if table is None or column is None:
        raise FhirError.single(
            400,
            "not-supported",
            f"Không sắp xếp được theo {key.param}.",
            f"Cannot sort by {key.param}.",
            "_sort",
        )
    aggregate = func.max if key.descending else func.min
    return (
        select(aggregate(table.c[column]))
        .where(_owned(table, plan.resource_type, FhirResource.id, key.param))
        .scalar_subquery()
    )


def offset_of(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.startswith("o") or not cursor[1:].isdigit():
        raise FhirError.single(
            400, "invalid", "Con trỏ trang không hợp lệ.", "Invalid page cursor.", "_cursor"
        )
    return int(cursor[1:])


def _count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def run_search(
    session: Session,
    plan: SearchPlan,
    compartment: str | None = None,
    area: AreaScope | None = None,
) -> SearchResult:
    """Matches for one page (plus the total when asked), in a stable order."""
    correlated = session.get_bind().dialect.name == "postgresql"
    query = _base(plan, compartment, area, correlated)
    offset = offset_of(plan.cursor)
    wants_total = plan.total != "none" or plan.summary == "count"
    if plan.summary == "count" or plan.count == 0:
        return SearchResult([], _count(session, query) if wants_total else None, offset)
    order = []
    for key in plan.sort:
        expression = _sort_key(plan, key)
        order.append(expression.desc() if key.descending else expression.asc())
    order += [FhirResource.last_updated.asc(), FhirResource.id.asc()]
    rows = list(
        session.scalars(
            query.order_by(*order).offset(offset).limit(plan.count),
            execution_options=FRESH,
        )
    )
    total = None
    if wants_total:
        # A page that is not full ends the results: its size gives the total without counting.
        full = len(rows) == plan.count or (offset and not rows)
        total = _count(session, query) if full else offset + len(rows)
    result = SearchResult(rows, total, offset)
    result.includes = _includes(session, plan, rows, compartment, area)
    return result


def _includes(
    session: Session,
    plan: SearchPlan,
    rows: list[FhirResource],
    compartment: str | None,
    area: AreaScope | None,
) -> list[FhirResource]:
    if not rows or not (plan.includes or plan.revincludes):
        return []
    ids = [row.id for row in rows]
    found: dict[tuple[str, str], FhirResource] = {}
    refs = reference_index
    for include in plan.includes:
        conditions = [refs.c.resource_type == plan.resource_type, refs.c.resource_id.in_(ids)]
        if include.param != "*":
            conditions.append(refs.c.param == include.param)
        if include.target_type:
            conditions.append(refs.c.target_type == include.target_type)
        targets = select(refs.c.target_type, refs.c.target_id).where(*conditions).subquery()
        for row in session.scalars(
            select(FhirResource)
            .join(
                targets,
                and_(
                    FhirResource.resource_type == targets.c.target_type,
                    FhirResource.id == targets.c.target_id,
                ),
            )
            .where(FhirResource.deleted.is_(False))
            .distinct(),
            execution_options=FRESH,
        ):
            found[(row.resource_type, row.id)] = row
    for include in plan.revincludes:
        sources = select(refs.c.resource_id).where(
            refs.c.resource_type == include.source_type,
            refs.c.param == include.param,
            refs.c.target_type == plan.resource_type,
            refs.c.target_id.in_(ids),
        )
        for row in session.scalars(
            select(FhirResource).where(
                FhirResource.resource_type == include.source_type,
                FhirResource.deleted.is_(False),
                FhirResource.id.in_(sources),
            ),
            execution_options=FRESH,
        ):
            found[(row.resource_type, row.id)] = row
    matched = {(row.resource_type, row.id) for row in rows}
    included = [row for key, row in found.items() if key not in matched]
    if compartment is not None:
        included = [
            r
            for r in included
            if r.person_id == compartment or (r.resource_type == "Patient" and r.id == compartment)
        ]
    reach = area_clause(area)
    if reach is not None and included:
        keys = [(r.resource_type, r.id) for r in included]
        shown = set(
            session.execute(
                select(FhirResource.resource_type, FhirResource.id).where(
                    tuple_(FhirResource.resource_type, FhirResource.id).in_(keys), reach
                )
            ).all()
        )
        included = [r for r in included if (r.resource_type, r.id) in {tuple(k) for k in shown}]
    return included


def visible(session: Session, resource_type: str, resource_id: str, area: AreaScope | None) -> bool:
    """Whether one resource lies inside an area scope."""
    reach = area_clause(area)
    if reach is None:
        return True
    count = session.scalar(
        select(func.count())
        .select_from(FhirResource)
        .where(FhirResource.resource_type == resource_type, FhirResource.id == resource_id, reach)
    )
    return bool(count)


def find_existing(
    session: Session, access: Any, resource_type: str, condition: str
) -> FhirResource | None:
    """The one resource a conditional-create condition (``If-None-Exist``) finds, or None;
    several is an error (412), as the specification requires."""
    plan = parse_search(resource_type, parse_qsl(condition.removeprefix("?")), strict=True)
    plan.count, plan.total = 2, "none"
    found = run_search(session, plan, access.compartment, access.principal.area).matches
    if len(found) > 1:
        raise FhirError.single(
            412,
            "multiple-matches",
            "Điều kiện tạo có điều kiện khớp nhiều tài nguyên.",
            "The conditional-create condition matches several resources.",
        )
    return found[0] if found else None
