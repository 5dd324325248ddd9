"""The `ytehub` command, run in-process through Typer's runner against a real database."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from ytehub.cli import app
from ytehub.core import units
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent, User
from ytehub.core.security.passwords import verify_password
from ytehub.core.settings import Settings

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YTEHUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("YTEHUB_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.delenv("YTEHUB_SECRET_KEY", raising=False)
    monkeypatch.setenv("YTEHUB_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("YTEHUB_DEFAULT_LANGUAGE", "en")
    return settings


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_creates_secret_and_is_repeatable(env: Settings) -> None:
    out = invoke("init")
    assert "Database ready" in out and "Created a new secret key" in out
    key = env.data_dir / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600
    before = key.read_text()
    assert "Created a new secret key" not in invoke("init")
    assert key.read_text() == before


def test_demo_prints_working_credentials(env: Settings, db: Database) -> None:
    out = invoke("demo", "--no-serve", "--people", "200")
    password = re.search(r"Password\s*│\s*(\S+)", out)
    assert password and "http://127.0.0.1:8000/" in out
    with db.session() as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        assert admin.role == "admin" and verify_password(admin.password_hash, password[1])
    assert (env.data_dir / "province" / "manifest.json").exists(), "a demo province is generated"
    from ytehub.ingest.models import IngestEpisode
    from ytehub.records.models import FhirResource
    from ytehub.registry.models import RegistryPerson

    with db.session() as session:
        episodes = session.scalars(select(IngestEpisode)).all()
        assert episodes, "the demo province's files are ingested"
        encounter = session.get(FhirResource, tuple(episodes[0].resources[0].split("/")))
        assert encounter is not None and encounter.person_id == episodes[0].person_id
        checked = session.scalars(
            select(RegistryPerson.verification).where(RegistryPerson.verification.is_not(None))
        ).all()
        assert "verified" in checked, "persons are checked against the register extract"
    again_out = invoke("demo", "--no-serve", "--people", "200")
    assert "Generating a synthetic province" not in again_out, "generated only once"
    again = re.search(r"Password\s*│\s*(\S+)", again_out)
    assert again and again[1] != password[1], "a fresh password every start"


def test_users_commands(env: Settings, db: Database) -> None:
    invoke("init")
    out = invoke(
        "users",
        "add",
        "yt.xa1",
        "--role",
        "vaccinator",
        "--name",
        "Lê Thị Hoa",
        "--area",
        "communes:26740,26743",
    )
    generated = re.search(r"Password: (\S+)", out)
    assert generated
    listing = invoke("users", "list")
    assert "yt.xa1" in listing and "Vaccinator" in listing and "26740" in listing
    invoke("users", "disable", "yt.xa1")
    assert "disabled" in invoke("users", "list")
    invoke("users", "enable", "yt.xa1")
    invoke("users", "reset-password", "yt.xa1", "--password", "chosen-pass-77")
    with db.session() as session:
        user = session.scalars(select(User).where(User.username == "yt.xa1")).one()
        assert verify_password(user.password_hash, "chosen-pass-77") and not user.disabled
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions == [
        "users.create",
        "users.list",
        "users.disable",
        "users.list",
        "users.enable",
        "users.reset_password",
    ]


def test_users_add_reports_errors(env: Settings) -> None:
    invoke("init")
    result = runner.invoke(app, ["users", "add", "x.y", "--role", "wizard"])
    assert result.exit_code == 1 and "Unknown role: wizard" in result.output
    result = runner.invoke(
        app, ["users", "add", "x.y", "--role", "clinician", "--area", "facility:"]
    )
    assert result.exit_code == 1 and "Invalid area scope" in result.output


def test_clients_commands(env: Settings) -> None:
    invoke("init")
    out = invoke("clients", "add", "bv-79001", "--facility", "79001", "--name", "BV Quận 1")
    assert re.search(r"Secret \(shown once\): \S{20,}", out)
    assert "79001" in invoke("clients", "list")
    bad = runner.invoke(app, ["clients", "add", "bv-x", "--facility", "7900"])
    assert bad.exit_code == 1


def test_audit_verify_finds_tampering(env: Settings, db: Database) -> None:
    invoke("init")
    invoke("users", "add", "an.bs", "--role", "clinician")
    invoke("users", "list")
    assert "Audit trail intact: 2" in invoke("audit", "verify")
    with db.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(actor="cli:nobody"))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 2 and "broken at event: 1" in result.output


def test_units_commands(env: Settings) -> None:
    assert "26740" in invoke("units", "search", "phuong sai gon")
    shown = invoke("units", "show", "79")
    assert "Hồ Chí Minh" in shown and f"{len(units.communes('79'))} communes" in shown
    assert "Phường Sài Gòn" in invoke("units", "show", "26740")
    assert "→ 79" in invoke("units", "convert", "74")
    converted = invoke("units", "convert", "--address", "Xã Ngũ Hiệp, Huyện Thanh Trì, Hà Nội")
    assert "00640" in converted
    assert runner.invoke(app, ["units", "show", "99999"]).exit_code == 1


def test_audit_archive_commands(env: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    invoke("init")
    invoke("users", "add", "an.bs", "--role", "clinician")
    archive = tmp_path / "audit-2026.jsonl.gz"
    assert "Events archived: 1" in invoke(
        "audit", "archive", "--before", "2999-01-01", "--out", str(archive)
    )
    assert "Audit trail intact: 1" in invoke("audit", "verify-archive", str(archive))
    assert "Audit trail intact: 1" in invoke("audit", "verify")  # the archive event itself
    again = runner.invoke(
        app, ["audit", "archive", "--before", "2999-01-01", "--out", str(archive)]
    )
    assert again.exit_code == 1, "an existing archive is never overwritten"
