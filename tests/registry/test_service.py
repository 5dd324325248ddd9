"""Register-or-match, review, merge and unmerge against real databases."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from ytehub.core.db import Database
from ytehub.core.errors import DomainError
from ytehub.core.models import AuditEvent
from ytehub.registry import service
from ytehub.registry.blocking import blocking_keys
from ytehub.registry.models import RegistryLink, RegistryPerson, RegistryReview
from ytehub.registry.normalize import record

AN = {
    "name": "Nguyễn Văn An",
    "birth": "198503150000",
    "sex": "1",
    "document": "079085001234",
    "bhyt_card": "DN4797912345678",
    "commune": "26734",
    "phone": "0912345678",
}


def test_the_same_person_at_two_facilities_is_linked(db: Database) -> None:
    with db.session() as session:
        first = service.register(session, record("79001", "BN1", **AN), actor="test")
        # Another facility's software drops diacritics, writes the year only, no phone.
        second = service.register(
            session,
            record(
                "79002",
                "0042",
                **{**AN, "name": "NGUYEN VAN AN", "birth": "198500000000", "phone": None},
            ),
            actor="test",
        )
    assert first.action == "new"
    assert second.action == "linked"
    assert second.person_id == first.person_id
    assert second.probability is not None and second.probability >= 0.99
    with db.session() as session:
        person = session.get(RegistryPerson, first.person_id)
        assert person is not None
        # The golden record keeps the full birth date and the name with diacritics.
        assert person.golden["birth_day"] == 15
        assert person.golden["display_name"] == "Nguyễn Văn An"
        actions = [link.action for link in session.scalars(select(RegistryLink))]
        assert actions == ["new", "link"]
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "registry.link"))


def test_a_different_person_gets_a_new_golden_record(db: Database) -> None:
    with db.session() as session:
        first = service.register(session, record("79001", "BN1", **AN))
        other = service.register(
            session,
            record(
                "79001",
                "BN2",
                name="Trần Thị Bình",
                birth="19920704",
                sex="2",
                document="079192004321",
                commune="26734",
            ),
        )
    assert other.action == "new"
    assert other.person_id != first.person_id


def test_same_cccd_with_another_sex_is_never_linked(db: Database) -> None:
    with db.session() as session:
        first = service.register(session, record("79001", "BN1", **AN))
        clash = service.register(
            session,
            record("79003", "X9", **{**AN, "sex": "2", "birth": "196203150000"}),
        )
    assert clash.action == "review"
    assert clash.person_id != first.person_id
    assert clash.reason == "conflict:sex"
    with db.session() as session:
        review = session.scalars(select(RegistryReview)).one()
        assert review.candidate_person_id == first.person_id
        assert review.status == "open"


def test_a_record_with_nothing_identifying_is_rejected(db: Database) -> None:
    with db.session() as session, pytest.raises(DomainError) as caught:
        service.register(session, record("79001", "BN7", name="Lan", sex="2"))
    assert caught.value.code == "registry.not_identifying"
    assert caught.value.status == 422
    assert "CCCD" in caught.value.message.en


def test_resubmitting_a_record_updates_it_in_place(db: Database) -> None:
    with db.session() as session:
        first = service.register(session, record("79001", "BN1", **AN))
        same = service.register(session, record("79001", "BN1", **AN))
        again = service.register(session, record("79001", "BN1", **{**AN, "phone": "0987654321"}))
    assert same.action == "unchanged"
    assert again.action == "updated"
    assert again.person_id == first.person_id
    with db.session() as session:
        person = session.get(RegistryPerson, first.person_id)
        assert person is not None and person.golden["phone"] == "0987654321"


def test_review_link_merges_and_unmerge_restores(db: Database) -> None:
    with db.session() as session:
        first = service.register(session, record("79001", "BN1", **AN))
        clash = service.register(
            session, record("79003", "X9", **{**AN, "sex": "2", "birth": "196203150000"})
        )
        review_id = clash.review_id
    assert review_id is not None
    with db.session() as session:
        service.decide(session, review_id, link=True, actor="reviewer")
    with db.session() as session:
        merged = session.get(RegistryPerson, clash.person_id)
        assert merged is not None and merged.status == "merged"
        assert merged.merged_into == first.person_id
        assert {s.local_id for s in service.sources_of(session, first.person_id)} == {"BN1", "X9"}
    with db.session() as session:
        assert service.unmerge(session, clash.person_id, actor="reviewer") == 1
    with db.session() as session:
        assert [s.local_id for s in service.sources_of(session, first.person_id)] == ["BN1"]
        assert [s.local_id for s in service.sources_of(session, clash.person_id)] == ["X9"]
        actions = [link.action for link in service.history_of(session, clash.person_id)]
        assert actions == ["new", "review", "merge", "unmerge"]
        with pytest.raises(DomainError) as caught:
            service.decide(session, review_id, link=False, actor="reviewer")
        assert caught.value.code == "registry.already_decided"


def test_not_a_match_keeps_both_apart(db: Database) -> None:
    with db.session() as session:
        first = service.register(session, record("79001", "BN1", **AN))
        clash = service.register(
            session, record("79003", "X9", **{**AN, "sex": "2", "birth": "196203150000"})
        )
        assert clash.review_id is not None
        service.decide(session, clash.review_id, link=False, actor="reviewer")
    with db.session() as session:
        assert session.get(RegistryPerson, clash.person_id).status == "active"  # type: ignore[union-attr]
        assert [s.local_id for s in service.sources_of(session, first.person_id)] == ["BN1"]
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "registry.not_a_match"))


def test_match_lists_candidates_with_grades(db: Database) -> None:
    with db.session() as session:
        first = service.register(session, record("79001", "BN1", **AN))
        found = service.match(
            session,
            record("query", "q", name="nguyen van an", birth="1985-03-15", sex="1"),
            explain=True,
        )
    assert found and found[0].person_id == first.person_id
    assert found[0].grade is not None
    assert {e["comparison"] for e in found[0].explanation} >= {"given", "family", "birth"}


def test_imported_persons_are_found_by_later_records(db: Database) -> None:
    first = record("79001", "BN1", **AN)
    same = record("79002", "7", **{**AN, "name": "NGUYEN VAN AN", "phone": None})
    other = record(
        "79001", "BN2", name="Trần Thị Bình", birth="19920704", sex="2", document="079192004321"
    )
    with db.session() as session:
        assert service.import_persons(session, [[first, same], [other]], actor="test") == 3
    with db.session() as session:
        assert service.active_persons(session) == 2
        later = service.register(session, record("79005", "Z1", **{**AN, "birth": "1985"}))
        assert later.action == "linked"
        linked = {s.local_id for s in service.sources_of(session, later.person_id)}
        assert linked == {"BN1", "7", "Z1"}


def test_candidates_are_probed_by_key_in_postgresql_generic_plans(
    db: Database, backend: str
) -> None:
    """A prepared statement's generic plan must still look the blocking keys up in their
    index: with a bound LIMIT, PostgreSQL walked the whole source-id index instead (a cost
    that grows with the registry, paid for every patient)."""
    if backend != "postgresql":
        pytest.skip("SQLite has no generic plans")
    with db.session() as session:
        for n in range(200):
            fields = {**AN, "name": f"Trần Thị Mai {n}", "document": f"0790850{n:05d}"}
            fields.update(bhyt_card=f"DN47979{n:08d}", phone=f"09{n:08d}", birth="199001010000")
            service.register(session, record("79001", f"BN{n}", **fields), actor="test")
    keys = blocking_keys(record("79001", "X", **AN))
    compiled = service._CANDIDATES.compile(dialect=postgresql.dialect())
    expanded = compiled.construct_expanded_state({"keys": keys})
    names = re.findall(r"%\((\w+)\)s", expanded.statement)
    sql = expanded.statement
    for number, name in enumerate(names, start=1):
        sql = sql.replace(f"%({name})s", f"${number}", 1)
    arguments = ", ".join(f"'{expanded.parameters[name]}'" for name in names)
    with db.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE registry_keys, registry_sources")
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE candidates AS {sql}")
        plan = "\n".join(
            row[0] for row in connection.exec_driver_sql(f"EXPLAIN EXECUTE candidates({arguments})")
        )
    assert re.search(r"Index Cond: \(\(?key\)?(::text)? = ANY", plan), plan


def test_goldens_of_many_persons_at_once(db: Database) -> None:
    with db.session() as session:
        an = service.register(session, record("79001", "BN1", **AN), actor="test")
        service.register(session, record("79002", "0042", **AN), actor="test")
        other = {**AN, "name": "Lê Thị Hoa", "document": "079190004321", "bhyt_card": None}
        hoa = service.register(session, record("79001", "BN2", **other), actor="test")
        found = service.goldens_of(session, [an.person_id, hoa.person_id])
        assert found[an.person_id][0]["display_name"] == "Nguyễn Văn An"
        assert [local for _, local in found[an.person_id][1]] == ["BN1", "0042"]
        assert found[hoa.person_id][0]["display_name"] == "Lê Thị Hoa"
        with pytest.raises(DomainError):
            service.goldens_of(session, [an.person_id, "no-such-person"])
