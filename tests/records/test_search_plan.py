"""SQLite's planner, given statistics, drives a patient-scoped search from the patient."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from ytehub.core.db import Database
from ytehub.records.models import FhirResource
from ytehub.records.query import parse_search
from ytehub.records.search import _base
from ytehub.records.store import RecordStore


def _observation(patient_id: str, code: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def test_statistics_make_searches_probe_ids_not_scan_types(db: Database) -> None:
    with db.session() as session:
        store = RecordStore(session)
        patients = [store.create({"resourceType": "Patient"}).resource["id"] for _ in range(150)]
        for n, patient_id in enumerate(patients):
            for k in range(10):
                store.create(_observation(patient_id, ("8867-4", "8310-5")[(n + k) % 2]))
    db.optimize()
    plan = parse_search(
        "Observation", [("patient", patients[7]), ("code", "http://loinc.org|8867-4")], strict=True
    )
    query = (
        _base(plan, None, None, correlated=False)
        .order_by(FhirResource.last_updated, FhirResource.id)
        .limit(20)
    )
    with db.session() as session:
        assert len(session.scalars(query).all()) == 5
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL keeps its statistics itself (autovacuum); optimize() leaves it be
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM sqlite_stat1")).scalar_one() > 0
        steps = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
        found = connection.exec_driver_sql(sql).fetchall()
    assert len(found) == 5
    assert not any("ix_fhir_resources_type_updated" in step for step in steps), steps
    assert any("ix_fhir_idx_token_owner" in step for step in steps), steps
