"""Ingest end to end against real databases: files, folders and zips in; registry, FHIR
store, outbox and audit out; idempotent, replaceable, resumable after SIGKILL, and safe
against hostile files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ytehub.core.db import Database
from ytehub.core.models import AuditEvent
from ytehub.formats.qd4750 import read_envelope, render_envelope, render_table
from ytehub.ingest.mapping import prefix_of
from ytehub.ingest.models import IngestEpisode, IngestFile, OutboxEvent
from ytehub.ingest.pipeline import (
    PREPARE_HERE_FILES,
    Ingest,
    ingest_paths,
    inputs,
    prepared_inputs,
)
from ytehub.ingest.watch import watch
from ytehub.records.models import FhirResource
from ytehub.records.store import render
from ytehub.registry.models import RegistryPerson
from ytehub.synth.province import SynthConfig, generate_province


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("province")
    generate_province(SynthConfig(people=300, days=120, seed=3), out)
    return out


def _files(province: Path) -> list[Path]:
    return sorted((province / "qd4750").rglob("*.xml"))


def _count(db: Database, model: type, *where: object) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _episodes_in(files: list[Path]) -> int:
    return sum(len(read_envelope(f.read_bytes()).episodes) for f in files)


def test_a_province_is_ingested_whole(db: Database, province: Path) -> None:
    files = _files(province)
    outcomes = ingest_paths(db, [province / "qd4750"], actor="test")
    assert len(outcomes) == len(files)
    assert all(o.status == "done" for o in outcomes), [o.as_dict() for o in outcomes[:3]]
    total = _episodes_in(files)
    stored = sum(o.stored for o in outcomes)
    assert stored + sum(o.refused for o in outcomes) == total
    assert stored >= total * 0.95
    assert _count(db, IngestEpisode) == stored
    assert _count(db, FhirResource, FhirResource.resource_type == "Encounter") == stored
    assert _count(db, OutboxEvent, OutboxEvent.topic == "episode.stored") == stored
    assert _count(db, AuditEvent, AuditEvent.action == "ingest.episode") == stored
    persons = _count(db, RegistryPerson)
    # One golden Patient per person, far fewer persons than episodes' facility records.
    assert _count(db, FhirResource, FhirResource.resource_type == "Patient") == persons
    assert 0 < persons <= 300
    with db.session() as session:
        for episode in session.scalars(select(IngestEpisode).limit(20)):
            for key in episode.resources:
                resource_type, _, resource_id = key.partition("/")
                row = session.get(FhirResource, (resource_type, resource_id))
                assert row is not None and not row.deleted
                assert row.person_id in (episode.person_id, None) or resource_type == "Provenance"


def test_the_same_file_twice_stores_nothing_new(db: Database, province: Path) -> None:
    first = _files(province)[0]
    run = Ingest(db, actor="test")
    assert run.file_now(first.name, first.read_bytes()).status == "done"
    versions = _count(db, FhirResource)
    events = _count(db, OutboxEvent)
    again = run.file_now(first.name, first.read_bytes())
    assert again.status == "duplicate"
    assert _count(db, FhirResource) == versions and _count(db, OutboxEvent) == events


def _rewrite(path: Path, change) -> bytes:  # type: ignore[no-untyped-def]
    """The file with ``change(episode)`` applied to every episode, re-rendered."""
    envelope = read_envelope(path.read_bytes())
    episodes = []
    for episode in envelope.episodes:
        change(episode)
        episodes.append({table: render_table(table, rows) for table, rows in episode.items()})
    created = envelope.created
    day = date(int(created[:4]), int(created[4:6]), int(created[6:8]))
    return render_envelope(envelope.facility_code, day, episodes)


def test_a_corrected_episode_replaces_its_resources(db: Database, province: Path) -> None:
    path = next(
        p
        for p in _files(province)
        if len(read_envelope(p.read_bytes()).episodes[0].get("XML4", [])) >= 2
    )
    run = Ingest(db, actor="test")
    run.file_now(path.name, path.read_bytes())
    with db.session() as session:
        before = session.scalars(select(IngestEpisode)).first()
        assert before is not None
        old_keys = list(before.resources)

    def drop_a_result(episode: dict) -> None:  # type: ignore[type-arg]
        episode["XML4"] = episode["XML4"][:-1]
        first = episode["XML1"][0]
        first["CHAN_DOAN_RV"] = "Chẩn đoán đã sửa"
        # The admission time, which leads the ids, corrected too: the ids must not move.
        admitted = datetime.strptime(first["NGAY_VAO"], "%Y%m%d%H%M") - timedelta(hours=1)
        first["NGAY_VAO"] = admitted.strftime("%Y%m%d%H%M")
        starts.append(admitted.strftime("%Y-%m-%dT%H:%M:00+07:00"))

    starts: list[str] = []
    corrected = _rewrite(path, drop_a_result)
    outcome = run.file_now("corrected.xml", corrected)
    assert outcome.replaced >= 1 and outcome.stored == 0
    with db.session() as session:
        after = session.get(IngestEpisode, (before.facility_code, before.ma_lk))
        assert after is not None and after.submissions == 2
        gone = set(old_keys) - set(after.resources)
        assert gone, "the dropped result's Observation is gone"
        for key in gone:
            resource_type, _, resource_id = key.partition("/")
            assert session.get(FhirResource, (resource_type, resource_id)).deleted  # type: ignore[union-attr]
        encounter = next(k for k in after.resources if k.startswith("Encounter/"))
        assert encounter in old_keys and set(after.resources) <= set(old_keys)
        row = session.get(FhirResource, tuple(encounter.split("/")))
        assert row is not None and row.version_id == 2
        assert row.content["period"]["start"] == starts[0]  # type: ignore[index]
    assert _count(db, OutboxEvent, OutboxEvent.topic == "episode.replaced") >= 1


def test_an_episode_prepared_elsewhere_is_replaced_with_its_first_ids(
    db: Database, province: Path
) -> None:
    """Both submissions prepared by a worker (which sends rendered resources, not the
    episode's tables): the correction maps the file's bytes again with the first ids."""
    path = next(
        p
        for p in _files(province)
        if len(read_envelope(p.read_bytes()).episodes[0].get("XML4", [])) >= 2
    )

    def drop_a_result(episode: dict) -> None:  # type: ignore[type-arg]
        episode["XML4"] = episode["XML4"][:-1]

    sources = [(path.name, path.read_bytes()), ("corrected.xml", _rewrite(path, drop_a_result))]
    run = Ingest(db, actor="test")
    outcomes = []
    for _, _, prepared in prepared_inputs(sources, workers=1, prepare_here=0):
        assert prepared is not None and prepared.episodes[0].rendered is not None
        outcomes.append(run.take(prepared))
        run.commit()
    assert outcomes[0].stored >= 1 and outcomes[1].replaced >= 1
    with db.session() as session:
        episode = session.scalars(select(IngestEpisode)).first()
        assert episode is not None and episode.submissions == 2
        kept = set(episode.resources)
        rows = {
            (r.resource_type, r.id): r
            for r in session.scalars(select(FhirResource).where(FhirResource.deleted.is_(False)))
        }
    for key in kept:
        resource_type, _, resource_id = key.partition("/")
        row = rows[(resource_type, resource_id)]
        assert row.version_id == 2 and row.person_id in (episode.person_id, None)
        assert "unresolved" not in str(row.content)


HOSTILE = {
    "xxe": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<GIAMDINHHS>&x;</GIAMDINHHS>",
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<GIAMDINHHS>&lol2;</GIAMDINHHS>",
    "utf16": "<?xml version='1.0' encoding='UTF-16'?><GIAMDINHHS/>".encode("utf-16"),
    "truncated": b"<GIAMDINHHS><THONGTINDONVI><MACSKCB>79001</MACSKCB></THONGTIN",
}


def test_hostile_files_are_rejected_and_nothing_is_stored(
    db: Database, province: Path, tmp_path: Path
) -> None:
    good = _files(province)[0].read_bytes()
    text = good.decode()
    start = text.index("<NOIDUNGFILE>") + len("<NOIDUNGFILE>")
    bad_base64 = (text[:start] + "!!!not base64!!!" + text[start:]).encode()
    cases = {**HOSTILE, "bad-base64": bad_base64}
    for name, data in cases.items():
        (tmp_path / f"{name}.xml").write_bytes(data)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.xml", b"<a>" + b" " * 50_000_000 + b"</a>")
    outcomes = ingest_paths(db, [tmp_path], actor="test")
    by_name = {Path(o.name.split("!")[0]).stem: o for o in outcomes}
    assert set(by_name) == {*cases, "bomb"}
    for name, outcome in by_name.items():
        assert outcome.status == "rejected", name
        assert outcome.reason is not None and outcome.reason.vi and outcome.reason.en, name
    assert "DOCTYPE" in by_name["xxe"].reason.en  # type: ignore[union-attr]
    assert "base64" in by_name["bad-base64"].reason.en  # type: ignore[union-attr]
    assert "zip bomb" in by_name["bomb"].reason.en  # type: ignore[union-attr]
    assert _count(db, FhirResource) == 0
    assert _count(db, RegistryPerson) == 0
    assert _count(db, IngestFile, IngestFile.status == "rejected") == len(cases)


def test_watch_folder_ingests_and_moves_files(db: Database, province: Path, tmp_path: Path) -> None:
    drop = tmp_path / "sftp"
    drop.mkdir()
    source = _files(province)[0]
    (drop / source.name).write_bytes(source.read_bytes())
    (drop / "junk.xml").write_bytes(b"<not-an-envelope/>")
    outcomes = list(watch(db, [drop], interval=0.0, rounds=2, actor="test"))
    assert sorted(o.status for o in outcomes) == ["done", "rejected"]
    assert (drop / "done" / source.name).exists()
    assert (drop / "rejected" / "junk.xml").exists()
    assert (drop / "rejected" / "junk.xml.report.json").exists()


def _processes_with(value: str) -> list[int]:
    """Processes whose environment holds ``value`` (a run's own data directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environment = (entry / "environ").read_bytes()
            except OSError:
                continue
            if value.encode() in environment:
                found.append(int(entry.name))
    return found


def test_files_prepared_by_a_worker_are_the_files_prepared_here(province: Path) -> None:
    """Past the first files a worker process prepares them and renders their resources: once
    pointed at the person, they are what the store renders here from the same resources, and
    an episode whose tables stayed with the worker maps again from the file's bytes."""
    files = _files(province)[: PREPARE_HERE_FILES + 8]
    here = list(prepared_inputs(inputs(files), workers=0))
    there = list(prepared_inputs(inputs(files), workers=1))
    assert [name for name, _, _ in there] == [name for name, _, _ in here]
    moved = 0
    for (_, _, mine), (_, data, theirs) in zip(here, there, strict=True):
        assert mine is not None and theirs is not None
        assert (theirs.sha256, theirs.report, theirs.rejection) == (
            mine.sha256,
            mine.report,
            mine.rejection,
        )
        mine.source, mine.recorded = theirs.source, theirs.recorded  # the same clock for both
        for ours, sent in zip(mine.episodes, theirs.episodes, strict=True):
            assert sent.patient == ours.patient and (sent.mapped is None) == (ours.mapped is None)
            if sent.rendered is None:
                continue
            moved += 1
            assert sent.tables is None and theirs.data == data and theirs.placeholder
            prefix = prefix_of(sent.rendered[0].id)
            assert theirs.remapped(sent, prefix) == mine.remapped(ours, prefix)
            expected = [
                render(resource, theirs.recorded)
                for resource in mine.remapped(ours, prefix).for_patient("person-1").resources
            ]
            pointed = [r.for_patient(theirs.placeholder, "person-1") for r in sent.rendered]
            assert pointed == expected
            assert theirs.placeholder not in repr(pointed)
    assert moved >= 8  # the files past the first ones were prepared elsewhere


def test_a_killed_run_loses_nothing_and_a_rerun_finishes(
    db: Database, tmp_path: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    province = tmp_path / "big"
    generate_province(SynthConfig(people=1500, days=120, seed=4), province)
    env = {
        **os.environ,
        "YTEHUB_DATA_DIR": str(settings.data_dir),
        "YTEHUB_DATABASE_URL": settings.resolved_database_url,
        "YTEHUB_CONFIG": str(tmp_path / "none.toml"),
    }
    command = [sys.executable, "-m", "ytehub.cli", "ingest", str(province / "qd4750")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(db, IngestEpisode) < 50 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    # Its preparing workers (and their pool's server) notice and end too.
    deadline = time.monotonic() + 10
    while _processes_with(env["YTEHUB_DATA_DIR"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_with(env["YTEHUB_DATA_DIR"])
    total = _episodes_in(_files(province))
    committed = _count(db, IngestEpisode)
    assert 50 <= committed < total, "killed mid-run"
    # Nothing half-written: every committed episode has all its resources, and no Encounter
    # exists without its episode row.
    with db.session() as session:
        keys = [k for e in session.scalars(select(IngestEpisode)) for k in e.resources]
        stored = {
            f"{t}/{i}"
            for t, i in session.execute(select(FhirResource.resource_type, FhirResource.id))
        }
    assert set(keys) <= stored
    assert _count(db, FhirResource, FhirResource.resource_type == "Encounter") == committed
    rerun = subprocess.run(command, env=env, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    episodes = _count(db, IngestEpisode)
    refused = total - episodes
    assert refused <= total * 0.05
    assert _count(db, FhirResource, FhirResource.resource_type == "Encounter") == episodes
    assert _count(db, OutboxEvent) == episodes
    assert _count(db, IngestFile, IngestFile.status == "done") == len(_files(province))


def test_facility_systems_send_their_own_files(client, db: Database, province: Path) -> None:  # type: ignore[no-untyped-def]
    from ytehub.core.security import service as security

    path = _files(province)[0]
    facility = read_envelope(path.read_bytes()).facility_code
    with db.session() as session:
        _client, secret = security.create_client(
            session, client_id="his-1", name="HIS", facility_code=facility
        )
        _other, other_secret = security.create_client(
            session, client_id="his-2", name="HIS 2", facility_code="01001"
        )

    def token(client_id: str, secret: str) -> dict[str, str]:
        answer = client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    own = client.post(
        "/api/v1/ingest/qd4750",
        content=path.read_bytes(),
        headers={**token("his-1", secret), "content-type": "application/xml"},
    )
    assert own.status_code == 200, own.text
    assert own.json()["status"] == "done" and own.json()["stored"] >= 1
    assert "episodes" in own.json()["report"]
    foreign = client.post(
        "/api/v1/ingest/qd4750",
        content=path.read_bytes(),
        headers={**token("his-2", other_secret), "content-type": "application/xml"},
    )
    assert foreign.status_code == 403
    broken = client.post(
        "/api/v1/ingest/qd4750",
        content=HOSTILE["xxe"],
        headers={**token("his-1", secret), "content-type": "application/xml"},
    )
    assert broken.status_code == 422
    assert "DOCTYPE" in broken.json()["reason"] or "DOCTYPE" in str(broken.json())
