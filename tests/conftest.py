"""Fixtures: every database test runs on SQLite and on a real PostgreSQL server.

`--db=sqlite` or `--db=postgresql` narrows the run; the default is both.
"""

from __future__ import annotations

import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.pg import Cluster, start_cluster
from ytehub.api import create_app
from ytehub.core import migrate
from ytehub.core.db import Database, make_engine
from ytehub.core.security import AreaScope, service
from ytehub.core.settings import Settings

BACKENDS = ("sqlite", "postgresql")
TEMPLATE_DB = "ytehub_template"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default=",".join(BACKENDS), help="sqlite, postgresql or both")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = [b.strip() for b in metafunc.config.getoption("--db").split(",") if b.strip()]
        unknown = set(chosen) - set(BACKENDS)
        if unknown:
            raise pytest.UsageError(f"unknown --db value(s): {', '.join(sorted(unknown))}")
        metafunc.parametrize("backend", chosen, scope="session")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    try:
        engine = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {TEMPLATE_DB}"))
        engine.dispose()
        template = make_engine(cluster.url(TEMPLATE_DB))
        migrate.upgrade(template)
        template.dispose()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ytehub.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name("ytehub.db-wal").exists()
    return path


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of the chosen backend, for this test alone."""
    if backend == "sqlite":
        path = tmp_path / "ytehub.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    try:
        yield cluster.url(name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=secrets.token_urlsafe(32),
        _env_file=None,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, db)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client


PASSWORD = "correct-horse-42"


def add_user(
    db: Database,
    username: str,
    role: str,
    area: AreaScope | None = None,
    person_id: str | None = None,
) -> str:
    with db.session() as session:
        service.create_user(
            session,
            username=username,
            full_name=username.title(),
            password=PASSWORD,
            role=role,
            area=area or AreaScope.province(),
            person_id=person_id,
        )
    return username


def token_for(client: TestClient, username: str, password: str = PASSWORD, **form: str) -> str:
    response = client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **form},
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next: str = "/"):  # type: ignore[no-untyped-def]
    """Sign in to the console as a browser does (the form's CSRF token from its cookie); the
    session cookie stays on ``client``. The answer is the form post's, not followed."""
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf": page.cookies["ytehub_csrf"],
            "next": next,
        },
        follow_redirects=False,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
