"""The record store: create, read, version, update, delete, history and search FHIR resources.

One repository over SQLAlchemy serves SQLite and PostgreSQL alike; the FHIR REST layer calls
it and never writes SQL. Index rows are rewritten in the same transaction as the resource, so
a search never sees a half-written resource. The caller owns the transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Dialect, Table, func, select
from sqlalchemy.orm import Session

from ytehub.core import deferred
from ytehub.records.errors import FhirError
from ytehub.records.indexing import extract_tuples, patient_refs
from ytehub.records.models import (
    INDEX_COLUMNS,
    INDEX_TABLES,
    FhirResource,
    FhirVersion,
    reference_index,
)
from ytehub.records.validation import validate

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
QUANTITY_LIMIT = Decimal(10) ** 16  # what Numeric(24, 8) holds


def now() -> datetime:
    return datetime.now(UTC)


def instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_id(resource_id: str, expression: str = "id") -> str:
    if not ID_PATTERN.match(resource_id):
        raise FhirError.single(
            400,
            "invalid",
            f"Mã tài nguyên không hợp lệ: {resource_id!r}.",
            f"Invalid resource id: {resource_id!r}.",
            expression,
        )
    return resource_id


COMMUNE_EXTENSION = "urn:ytehub:ext:commune-code"


def commune_of(patient: dict[str, Any]) -> str | None:
    """The commune (2025 code) of a Patient's first address that carries one."""
    for address in patient.get("address") or []:
        for extension in (address.get("extension") or []) if isinstance(address, dict) else []:
            if isinstance(extension, dict) and extension.get("url") == COMMUNE_EXTENSION:
                code = extension.get("valueCode") or extension.get("valueString")
                if isinstance(code, str) and len(code) <= 5:
                    return code
    return None


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource as stored, with its version and time, and the person it belongs to."""

    resource: dict[str, Any]
    version_id: int
    last_updated: datetime
    created: bool = False
    person_id: str | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


_RESOURCES = FhirResource.__table__
_VERSIONS = FhirVersion.__table__
# The read every interaction starts with, sent to the driver as SQL text and converted by the
# columns' own processors: SQLAlchemy's cache key and result set-up cost more than the lookup.
_CURRENT_COLUMNS = tuple(
    _RESOURCES.c[name]
    for name in ("version_id", "deleted", "person_id", "facility_code", "last_updated", "content")
)


class Current(NamedTuple):
    """A resource's stored row, without its key."""

    version_id: int
    deleted: bool
    person_id: str | None
    facility_code: str | None
    last_updated: datetime
    content: dict[str, Any] | None


@lru_cache(maxsize=8)
def _current_sql(dialect: Dialect, for_update: bool) -> tuple[str, tuple[Any, ...]]:
    """The SELECT for ``dialect`` and the result conversion of each column."""
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"SELECT {', '.join(column.name for column in _CURRENT_COLUMNS)} FROM {_RESOURCES.name}"
        f" WHERE resource_type = {mark} AND id = {mark}"
    )
    if for_update and dialect.name == "postgresql":
        sql += " FOR UPDATE"
    converters = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in _CURRENT_COLUMNS
    )
    return sql, converters


class _PendingRows:
    """Rows of this transaction's writes not yet sent, sent a statement per table (see
    ``ytehub.core.deferred``). Order on flush: old index rows out, resources, versions, new
    index rows in."""

    read_by: frozenset[type] = frozenset({FhirResource, FhirVersion})

    def __init__(self) -> None:
        self.discard()

    def discard(self) -> None:
        self.keys: set[tuple[str, str]] = set()  # (type, id) of every resource held
        self.cleared: list[dict[str, Any]] = []
        self.inserted: list[dict[str, Any]] = []
        self.replaced: list[dict[str, Any]] = []
        self.versions: list[dict[str, Any]] = []
        self.index: dict[Table, list[tuple[Any, ...]]] = {table: [] for table in INDEX_TABLES}

    def replace(self, resource_type: str, resource_id: str, row: dict[str, Any]) -> None:
        """A stored resource's new current row: its old index rows go first."""
        key = {"b_type": resource_type, "b_id": resource_id}
        self.cleared.append(key)
        self.replaced.append({**key, **row})

    def version(
        self,
        resource_type: str,
        resource_id: str,
        version: int,
        moment: datetime,
        method: str,
        content: dict[str, Any] | None,
    ) -> None:
        self.keys.add((resource_type, resource_id))
        self.versions.append(
            {
                "resource_type": resource_type,
                "id": resource_id,
                "version_id": version,
                "last_updated": moment,
                "method": method,
                "content": content,
            }
        )

    def flush(self, session: Session) -> None:
        if not (self.inserted or self.replaced or self.versions or self.cleared):
            return
        cleared, inserted, replaced, versions, index = (
            self.cleared,
            self.inserted,
            self.replaced,
            self.versions,
            self.index,
        )
        self.discard()  # first: the statements below run ORM-free, but never twice
        connection = session.connection()
        rows = len(inserted) + len(versions) + sum(len(held) for held in index.values())
        if connection.dialect.name == "postgresql" and rows < COPY_FROM_ROWS:
            # A request's few rows: every statement in one pipeline, so the flush waits for one
            # round trip instead of one per statement (an update sent eleven).
            driver = connection.connection.driver_connection
            assert driver is not None
            with driver.pipeline(), driver.cursor() as cursor:
                _send(connection, cursor.executemany, cleared, inserted, replaced, versions, index)
        else:
            _send(
                connection, connection.exec_driver_sql, cleared, inserted, replaced, versions, index
            )


def _send(
    connection: Connection,
    many: Callable[[str, list[tuple[Any, ...]]], Any],
    cleared: list[dict[str, Any]],
    inserted: list[dict[str, Any]],
    replaced: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    index: dict[Table, list[tuple[Any, ...]]],
) -> None:
    """Old index rows out, resources in or replaced, their versions, new index rows in: each
    a statement per table through ``many`` (the driver's executemany, or a pipeline's), with
    the columns' own conversions, and large inserts on PostgreSQL by COPY.

    SQL text to the driver: SQLAlchemy's per-row parameter handling cost more than the
    database's insert itself (a resource takes a dozen index rows besides its own two)."""
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    done: dict[tuple[type, int], Any] = {}  # see _converted; the objects outlive this call

    def insert(table: Table, names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        rows = _converted(connection, table, names, rows, done)
        if connection.dialect.name == "postgresql" and len(rows) >= COPY_FROM_ROWS:
            _copy(connection, table, names, rows)
        else:
            marks = ", ".join(mark for _ in names)
            many(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", rows)

    if cleared:
        keys = [(key["b_type"], key["b_id"]) for key in cleared]
        for table in INDEX_TABLES:
            many(
                f"DELETE FROM {table.name} WHERE resource_type = {mark} AND resource_id = {mark}",
                keys,
            )
    if inserted:
        insert(_RESOURCES, tuple(inserted[0]), [tuple(row.values()) for row in inserted])
    if replaced:
        names = tuple(name for name in replaced[0] if not name.startswith("b_"))
        rows = [(*(row[n] for n in names), row["b_type"], row["b_id"]) for row in replaced]
        assignments = ", ".join(f"{name} = {mark}" for name in names)
        many(
            f"UPDATE {_RESOURCES.name} SET {assignments}"
            f" WHERE resource_type = {mark} AND id = {mark}",
            _converted(connection, _RESOURCES, names, rows, done),
        )
    if versions:
        insert(_VERSIONS, tuple(versions[0]), [tuple(row.values()) for row in versions])
    for table, held in index.items():
        if held:
            insert(table, INDEX_COLUMNS[table], held)


def _converted(
    connection: Connection,
    table: Table,
    names: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    done: dict[tuple[type, int], Any],
) -> list[tuple[Any, ...]]:
    """``rows`` with the columns' own conversions applied (dates on SQLite, JSON), only the
    columns that convert touched row by row. ``done`` holds this flush's conversions by
    (column type, object): a written resource's body and time go in both its current and its
    version row, and are converted once."""
    for position, kind, convert in _bind_converters(connection.dialect, table, names):

        def once(value: Any, kind: type = kind, convert: Callable[[Any], Any] = convert) -> Any:
            key = (kind, id(value))
            found = done.get(key, done)
            if found is done:
                found = done[key] = convert(value)
            return found

        rows = [(*row[:position], once(row[position]), *row[position + 1 :]) for row in rows]
    return rows


@lru_cache(maxsize=256)
def _bind_converters(
    dialect: Dialect, table: Table, names: tuple[str, ...]
) -> tuple[tuple[int, type, Callable[[Any], Any]], ...]:
    """(position, column type, conversion) of the columns that convert; asking the types each
    time cost a tenth of a create."""
    found = []
    for position, name in enumerate(names):
        column_type = table.c[name].type
        convert = column_type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            found.append((position, type(column_type), convert))
    return tuple(found)


# From this many rows PostgreSQL takes them by COPY: its bulk path parses and indexes rows at
# several times the rate of INSERTs, even pipelined; below it, starting a COPY costs more.
COPY_FROM_ROWS = 64


def _copy(
    connection: Connection, table: Table, names: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """COPY ``rows`` in, on the session's own connection and transaction (psycopg)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _versioned(
    resource: dict[str, Any], resource_id: str, version: int, moment: datetime
) -> dict[str, Any]:
    """The body as stored: its id and meta set (only the top dict is copied)."""
    body = dict(resource)
    body["id"] = resource_id
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(moment)
    body["meta"] = meta
    return body


def _person_of(body: dict[str, Any]) -> str | None:
    people = patient_refs(body)
    return next(iter(people)) if len(people) == 1 else None


def _new_row(
    resource_type: str,
    resource_id: str,
    facility_code: str | None,
    moment: datetime,
    person_id: str | None,
    commune: str | None,
    content: Any,
) -> dict[str, Any]:
    """A new resource's current row (the column order every held insert shares)."""
    return {
        "resource_type": resource_type,
        "id": resource_id,
        "facility_code": facility_code,
        "version_id": 1,
        "last_updated": moment,
        "deleted": False,
        "person_id": person_id,
        "commune_code": commune,
        "content": content,
    }


def index_rows(
    resource_type: str, resource_id: str, body: dict[str, Any]
) -> tuple[list[tuple[Any, ...]], ...]:
    """The index rows of ``body``, a list per table of ``INDEX_TABLES``, as tuples in
    ``INDEX_COLUMNS`` order, cut to the columns' sizes so both databases accept them."""
    rows = extract_tuples(body)
    rt, rid = resource_type, resource_id
    return (
        [
            (rt, rid, param, system and system[:256], code and code[:256])
            for param, system, code, _text in rows.tokens
        ],
        [(rt, rid, param, value[:512], exact[:512]) for param, value, exact in rows.strings],
        [(rt, rid, param, low, high) for param, low, high in rows.dates],
        [
            (rt, rid, param, kind, ident and ident[:64], url[:512])
            for param, kind, ident, url in rows.references
        ],
        [
            (rt, rid, param, value, system and system[:256], code and code[:64], unit and unit[:64])
            for param, value, system, code, unit in rows.quantities
            if abs(value) < QUANTITY_LIMIT
        ],
    )


_REFERENCE_ROWS = INDEX_TABLES.index(reference_index)


@dataclass(slots=True)
class Rendered:
    """A new resource as the store holds it, made by :func:`render` without a database: the
    JSON of its first version and its index rows. A bulk ingest renders in a worker process
    and the store takes the result as is (:meth:`RecordStore.create_rendered`)."""

    resource_type: str
    id: str
    moment: datetime
    person_id: str | None
    commune: str | None
    content: str
    index: tuple[list[tuple[Any, ...]], ...]  # rows of each of INDEX_TABLES

    def for_patient(self, placeholder: str, patient_id: str) -> Rendered:
        """This resource, rendered with ``Patient/{placeholder}`` where the Patient was not
        yet known, pointing at ``Patient/{patient_id}`` instead: in its JSON, its reference
        index rows and its owner."""
        old, new = f"Patient/{placeholder}", f"Patient/{patient_id}"
        self.content = self.content.replace(f'"{old}"', f'"{new}"')
        references = self.index[_REFERENCE_ROWS]  # (type, id, param, target type, id, url)
        references[:] = [
            (*row[:4], patient_id, new) if row[3] == "Patient" and row[4] == placeholder else row
            for row in references
        ]
        if self.person_id == placeholder:
            self.person_id = patient_id
        return self


def render(resource: dict[str, Any], moment: datetime) -> Rendered:
    """``resource`` (with its id) as its first version, trusted as :meth:`RecordStore.create`
    trusts the platform's own mappers."""
    resource_type, resource_id = resource["resourceType"], resource["id"]
    body = _versioned(resource, resource_id, 1, moment)
    return Rendered(
        resource_type,
        resource_id,
        moment,
        _person_of(body),
        commune_of(body) if resource_type == "Patient" else None,
        orjson.dumps(body).decode(),
        index_rows(resource_type, resource_id, body),
    )


class RecordStore:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending = deferred.held(session, "records", _PendingRows)

    def flush(self) -> None:
        self.pending.flush(self.session)

    # --- writes ---------------------------------------------------------------------------

    def create(
        self,
        resource: dict[str, Any],
        resource_id: str | None = None,
        facility_code: str | None = None,
        fresh_id: bool = False,
        trusted: bool = False,
    ) -> Stored:
        """Create; ``resource_id`` is the client's choice unless ``fresh_id`` says the server
        just made it (a new UUID cannot collide, so only a client's id needs the look-up).

        ``trusted``: the resource was built by the platform's own mappers (whose output the
        tests validate), so the schema check, a third of a write's cost, is skipped."""
        resource = resource if trusted else validate(resource)
        resource_type = resource["resourceType"]
        new_id = check_id(resource_id) if resource_id else str(uuid.uuid4())
        if resource_id and not fresh_id and self._current(resource_type, new_id) is not None:
            raise FhirError.single(
                409,
                "duplicate",
                f"{resource_type}/{new_id} đã tồn tại.",
                f"{resource_type}/{new_id} already exists.",
                "id",
            )
        return self._write(resource_type, new_id, resource, None, "POST", facility_code)

    def update(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        if_match: int | None = None,
        facility_code: str | None = None,
        trusted: bool = False,
    ) -> Stored:
        """Update, or create with the client's id (update-as-create); ``trusted`` as in
        :meth:`create`."""
        check_id(resource_id)
        resource = resource if trusted else validate(resource, resource_type)
        if resource.get("id") not in (None, resource_id):
            raise FhirError.single(
                400,
                "invalid",
                f"id trong nội dung ({resource.get('id')}) khác id trên địa chỉ ({resource_id}).",
                f"The id in the body ({resource.get('id')}) differs from the address "
                f"({resource_id}).",
                f"{resource_type}.id",
            )
        current = self._current(resource_type, resource_id, for_update=True)
        if if_match is not None:
            actual = current.version_id if current is not None else None
            if actual != if_match:
                raise FhirError.single(
                    412,
                    "conflict",
                    f"Phiên bản hiện tại là {actual}, không phải {if_match} (If-Match).",
                    f"The current version is {actual}, not {if_match} (If-Match).",
                )
        return self._write(resource_type, resource_id, resource, current, "PUT", facility_code)

    def delete(self, resource_type: str, resource_id: str) -> int | None:
        """Delete (a new, empty version); deleting what is gone or absent is not an error."""
        current = self._current(resource_type, resource_id, for_update=True)
        if current is None or current.deleted:
            return None
        moment = now()
        version = current.version_id + 1
        self.pending.replace(
            resource_type,
            resource_id,
            {
                "version_id": version,
                "last_updated": moment,
                "deleted": True,
                "person_id": current.person_id,
                "commune_code": None,
                "facility_code": current.facility_code,
                "content": None,
            },
        )
        self.pending.version(resource_type, resource_id, version, moment, "DELETE", None)
        return version

    def _current(
        self, resource_type: str, resource_id: str, for_update: bool = False
    ) -> Current | None:
        """The stored row (version, deleted, person, facility, time, content) or None."""
        if (resource_type, resource_id) in self.pending.keys:
            self.flush()  # only a resource written in this transaction needs its rows sent
        connection = self.session.connection()  # begins the transaction if need be
        sql, converters = _current_sql(connection.dialect, for_update)
        driver = connection.connection.driver_connection
        assert driver is not None
        row = driver.execute(sql, (resource_type, resource_id)).fetchone()
        if row is None:
            return None
        return Current(
            *(
                convert(value) if convert is not None else value
                for convert, value in zip(converters, row, strict=True)
            )
        )

    def _write(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        current: Current | None,
        method: str,
        facility_code: str | None = None,
    ) -> Stored:
        moment = now()
        version = (current.version_id if current is not None else 0) + 1
        created = current is None or current.deleted
        body = _versioned(resource, resource_id, version, moment)
        person_id = _person_of(body)
        commune = commune_of(body) if resource_type == "Patient" else None
        if current is None:
            row = _new_row(
                resource_type, resource_id, facility_code, moment, person_id, commune, body
            )
            self.pending.inserted.append(row)
        else:
            row = {
                "version_id": version,
                "last_updated": moment,
                "deleted": False,
                "person_id": person_id,
                "commune_code": commune,
                "content": body,
                "facility_code": facility_code or current.facility_code,
            }
            self.pending.replace(resource_type, resource_id, row)
        self.pending.version(resource_type, resource_id, version, moment, method, body)
        self._hold_index(index_rows(resource_type, resource_id, body))
        return Stored(body, version, moment, created=created, person_id=person_id)

    def create_rendered(self, rendered: Rendered, facility_code: str | None = None) -> None:
        """Hold a new resource made by :func:`render` (elsewhere, perhaps in another process)
        as :meth:`create` with a server-made id would: its rows need no more work here. The
        caller vouches that the id is new."""
        content = orjson.Fragment(rendered.content)  # written as is; once for both rows
        rt, rid, moment = rendered.resource_type, rendered.id, rendered.moment
        self.pending.inserted.append(
            _new_row(rt, rid, facility_code, moment, rendered.person_id, rendered.commune, content)
        )
        self.pending.version(rt, rid, 1, moment, "POST", content)
        self._hold_index(rendered.index)

    def _hold_index(self, rows: tuple[list[tuple[Any, ...]], ...]) -> None:
        for table, held in zip(INDEX_TABLES, rows, strict=True):
            self.pending.index[table].extend(held)

    # --- reads ----------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Stored:
        row = self._current(resource_type, resource_id)
        if row is None:
            raise FhirError.single(
                404,
                "not-found",
                f"Không tìm thấy {resource_type}/{resource_id}.",
                f"{resource_type}/{resource_id} not found.",
            )
        if row.deleted or row.content is None:
            raise FhirError.single(
                410,
                "deleted",
                f"{resource_type}/{resource_id} đã bị xóa.",
                f"{resource_type}/{resource_id} was deleted.",
            )
        return Stored(row.content, row.version_id, row.last_updated, person_id=row.person_id)

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> Stored:
        row = self.session.get(FhirVersion, (resource_type, resource_id, version_id))
        if row is None:
            raise FhirError.single(
                404,
                "not-found",
                f"Không có phiên bản {version_id} của {resource_type}/{resource_id}.",
                f"No version {version_id} of {resource_type}/{resource_id}.",
            )
        if row.content is None:
            raise FhirError.single(
                410,
                "deleted",
                f"Phiên bản {version_id} là bản ghi xóa.",
                f"Version {version_id} is a deletion.",
            )
        return Stored(row.content, row.version_id, row.last_updated)

    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        since: datetime | None = None,
        count: int = 50,
    ) -> list[FhirVersion]:
        query = select(FhirVersion)
        if resource_type is not None:
            query = query.where(FhirVersion.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(FhirVersion.id == resource_id)
        if since is not None:
            query = query.where(FhirVersion.last_updated >= since)
        query = query.order_by(FhirVersion.last_updated.desc(), FhirVersion.version_id.desc())
        return list(self.session.scalars(query.limit(count)))

    def compartment(
        self, patient_id: str, offset: int, count: int
    ) -> tuple[list[FhirResource], int]:
        """The Patient and everything that belongs to them (partition key), oldest type first."""
        where = (
            FhirResource.deleted.is_(False),
            ((FhirResource.resource_type == "Patient") & (FhirResource.id == patient_id))
            | (FhirResource.person_id == patient_id),
        )
        total = self.session.scalar(select(func.count()).select_from(FhirResource).where(*where))
        rows = self.session.scalars(
            select(FhirResource)
            .where(*where)
            .order_by(
                FhirResource.resource_type != "Patient",
                FhirResource.resource_type,
                FhirResource.last_updated,
                FhirResource.id,
            )
            .offset(offset)
            .limit(count)
        )
        return list(rows), total or 0

    def person_of(self, resource_type: str, resource_id: str) -> str | None:
        row = self._current(resource_type, resource_id)
        return row.person_id if row is not None else None
