"""`ytehub registry …` in-process against real databases: train, load-register, verify, status."""

from __future__ import annotations

import csv

from sqlalchemy import select

from tests.test_cli import env, invoke  # noqa: F401  (the CLI environment fixture)
from ytehub.core.db import Database
from ytehub.core.settings import Settings
from ytehub.registry import service
from ytehub.registry.models import RegistryModel, RegistryPerson
from ytehub.registry.normalize import from_identity
from ytehub.synth.identities import facility_records


def _index(db: Database, people: int) -> list[tuple[str, str, str, str]]:
    """Register the facility records of ``people`` synthetic persons; their register rows."""
    identities = list(facility_records(people, seed=5))
    by_person: dict[str, list] = {}
    for identity in identities:
        by_person.setdefault(identity.person_id, []).append(identity)
    with db.session() as session:
        service.import_persons(
            session, [[from_identity(i) for i in group] for group in by_person.values()]
        )
    return [
        (i.so_cccd, i.ho_ten, i.ngay_sinh, i.gioi_tinh)
        for group in by_person.values()
        for i in group[:1]
        if len(i.so_cccd) == 12
    ]


def test_train_load_verify_status(env: Settings, db: Database, tmp_path) -> None:  # noqa: F811
    rows = _index(db, 600)
    out = invoke("registry", "train")
    assert "Model version" in out
    with db.session() as session:
        model = session.scalars(select(RegistryModel)).one()
        assert "splink" in model.params["source"]
        assert service.active_model(session).version == model.version
    extract = tmp_path / "population-register.csv"
    with extract.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["so_dinh_danh", "ho_ten", "ngay_sinh", "gioi_tinh", "ma_xa", "ma_tinh"])
        for cccd, name, birth, sex in rows:
            writer.writerow([cccd, name, f"{birth[:4]}-{birth[4:6]}-{birth[6:8]}", sex, "", ""])
        writer.writerow(["12AB", "Bad Row", "2000-01-01", "1", "", ""])
    out = invoke("registry", "load-register", str(extract))
    assert f"{len(rows):,}" in out and "skipped" in out
    out = invoke("registry", "verify")
    assert "Verified" in out
    with db.session() as session:
        verified = session.scalars(
            select(RegistryPerson).where(RegistryPerson.verification == "verified")
        ).all()
    assert len(verified) > len(rows) // 2
    out = invoke("registry", "status")
    assert "Persons" in out and "Open reviews" in out


def test_dedupe_merges_split_persons_and_queues_conflicts(env: Settings, db: Database) -> None:  # noqa: F811
    from ytehub.registry.normalize import record

    an = {"name": "Nguyễn Văn An", "birth": "19850315", "sex": "1", "document": "079085001234"}
    split = [
        [record("79001", "BN1", **an)],
        [record("79002", "77", **{**an, "name": "NGUYEN VAN AN"})],  # the same man, apart
        [record("79003", "X9", **{**an, "sex": "2"})],  # same CCCD, another sex: never merged
        [record("79001", "BN2", name="Trần Thị Bình", birth="19920704", sex="2")],
    ]
    with db.session() as session:
        service.import_persons(session, split)
    dry = invoke("registry", "dedupe", "--dry-run")
    assert "Persons found" in dry and "Persons merged" not in dry
    with db.session() as session:
        assert service.active_persons(session) == 4  # a dry run changes nothing
    out = invoke("registry", "dedupe")
    assert "Persons merged" in out
    with db.session() as session:
        assert service.active_persons(session) == 3
        reviews = service.open_reviews(session)
        assert [r.reason for r in reviews] == ["conflict:sex"]
