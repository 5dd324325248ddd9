"""The record store: create, read, version, update, delete, history and search FHIR resources.

One repository over SQLAlchemy serves SQLite and PostgreSQL alike; the FHIR REST layer calls
it and never writes SQL. Index rows are rewritten in the same transaction as the resource, so
a search never sees a half-written resource. The caller owns the transaction.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ytehub.records.errors import FhirError
from ytehub.records.indexing import extract, patient_refs
from ytehub.records.models import (
    INDEX_TABLES,
    FhirResource,
    FhirVersion,
    date_index,
    quantity_index,
    reference_index,
    string_index,
    token_index,
)
from ytehub.records.validation import validate

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
QUANTITY_LIMIT = Decimal(10) ** 16  # what Numeric(24, 8) holds


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


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
    """A resource as stored, with its version and time."""

    resource: dict[str, Any]
    version_id: int
    last_updated: datetime
    created: bool = False

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


class RecordStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- writes ---------------------------------------------------------------------------

    def create(
        self,
        resource: dict[str, Any],
        resource_id: str | None = None,
        facility_code: str | None = None,
    ) -> Stored:
        resource = validate(resource)
        resource_type = resource["resourceType"]
        new_id = check_id(resource_id) if resource_id else str(uuid.uuid4())
        # A fresh UUID cannot collide; only a client-chosen id needs the look-up.
        if resource_id and self.session.get(FhirResource, (resource_type, new_id)) is not None:
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
    ) -> Stored:
        """Update, or create with the client's id (update-as-create)."""
        check_id(resource_id)
        resource = validate(resource, resource_type)
        if resource.get("id") not in (None, resource_id):
            raise FhirError.single(
                400,
                "invalid",
                f"id trong nội dung ({resource.get('id')}) khác id trên địa chỉ ({resource_id}).",
                f"The id in the body ({resource.get('id')}) differs from the address "
                f"({resource_id}).",
                f"{resource_type}.id",
            )
        current = self.session.get(FhirResource, (resource_type, resource_id), with_for_update=True)
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
        current = self.session.get(FhirResource, (resource_type, resource_id), with_for_update=True)
        if current is None or current.deleted:
            return None
        moment = now()
        current.version_id += 1
        current.deleted = True
        current.last_updated = moment
        current.content = None
        self.session.add(
            FhirVersion(
                resource_type=resource_type,
                id=resource_id,
                version_id=current.version_id,
                last_updated=moment,
                method="DELETE",
                content=None,
            )
        )
        self._clear_index(resource_type, resource_id)
        return current.version_id

    def _write(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        current: FhirResource | None,
        method: str,
        facility_code: str | None = None,
    ) -> Stored:
        moment = now()
        version = (current.version_id if current is not None else 0) + 1
        created = current is None or current.deleted
        body = copy.deepcopy(resource)
        body["id"] = resource_id
        meta = dict(body.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = instant(moment)
        body["meta"] = meta
        people = patient_refs(body)
        person_id = next(iter(people)) if len(people) == 1 else None
        commune = commune_of(body) if resource_type == "Patient" else None
        if current is None:
            self.session.add(
                FhirResource(
                    resource_type=resource_type,
                    id=resource_id,
                    version_id=version,
                    last_updated=moment,
                    deleted=False,
                    person_id=person_id,
                    commune_code=commune,
                    facility_code=facility_code,
                    content=body,
                )
            )
        else:
            current.version_id, current.last_updated = version, moment
            current.deleted, current.person_id, current.content = False, person_id, body
            current.commune_code = commune
            current.facility_code = facility_code or current.facility_code
            self._clear_index(resource_type, resource_id)
        self.session.add(
            FhirVersion(
                resource_type=resource_type,
                id=resource_id,
                version_id=version,
                last_updated=moment,
                method=method,
                content=body,
            )
        )
        self._index(resource_type, resource_id, body)
        self.session.flush()
        return Stored(body, version, moment, created=created)

    def _clear_index(self, resource_type: str, resource_id: str) -> None:
        connection = self.session.connection()  # Core, not the ORM: this runs on every write
        for table in INDEX_TABLES:
            connection.execute(
                delete(table).where(
                    table.c.resource_type == resource_type, table.c.resource_id == resource_id
                )
            )

    def _index(self, resource_type: str, resource_id: str, body: dict[str, Any]) -> None:
        """Write the index rows, cut to the columns' sizes so both databases accept them."""
        rows = extract(body)
        owner = {"resource_type": resource_type, "resource_id": resource_id}
        batches = (
            (
                token_index,
                [
                    {
                        **owner,
                        "param": r.param,
                        "system": _cut(r.system, 256),
                        "code": _cut(r.code, 256),
                    }
                    for r in rows.tokens
                ],
            ),
            (
                string_index,
                [
                    {**owner, "param": r.param, "value": r.value[:512], "exact": r.exact[:512]}
                    for r in rows.strings
                ],
            ),
            (
                date_index,
                [{**owner, "param": r.param, "low": r.low, "high": r.high} for r in rows.dates],
            ),
            (
                reference_index,
                [
                    {
                        **owner,
                        "param": r.param,
                        "target_type": r.target_type,
                        "target_id": _cut(r.target_id, 64),
                        "url": r.url[:512],
                    }
                    for r in rows.references
                ],
            ),
            (
                quantity_index,
                [
                    {
                        **owner,
                        "param": r.param,
                        "value": r.value,
                        "system": _cut(r.system, 256),
                        "code": _cut(r.code, 64),
                        "unit": _cut(r.unit, 64),
                    }
                    for r in rows.quantities
                    if abs(r.value) < QUANTITY_LIMIT
                ],
            ),
        )
        connection = self.session.connection()
        for table, values in batches:
            if values:
                connection.execute(insert(table), values)

    # --- reads ----------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Stored:
        row = self.session.get(FhirResource, (resource_type, resource_id))
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
        return Stored(row.content, row.version_id, row.last_updated)

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
        row = self.session.get(FhirResource, (resource_type, resource_id))
        return row.person_id if row is not None else None
