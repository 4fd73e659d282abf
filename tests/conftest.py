"""Shared fixtures: real databases (a fresh SQLite file and a fresh PostgreSQL database per test),
migrated with the real Alembic migrations.

PostgreSQL is not optional: `make test` starts the server, and a test that needs it fails (never
skips) when it is unreachable, so CI cannot pass without it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from app.config import get_settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


def _postgres_admin_url() -> str:
    return get_settings().test_postgres_url


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the running PostgreSQL server; fails loudly when there is none."""
    url = _postgres_admin_url()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - turn any connection error into one clear failure
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(url).render_as_string(hide_password=True)}"
            f" ({type(exc).__name__}). `make test` starts it (scripts/postgres.sh); "
            "run `make postgres` or deselect with -m 'not postgres'.",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"perfloop_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from db.engine import dispose_engines

        dispose_engines()
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin, name: str, tries: int = 20) -> None:  # noqa: ANN001
    """DROP DATABASE ... WITH (FORCE), tried again while it is refused for a moment: FORCE may
    not end a backend of another role, such as an autovacuum worker that is busy in the fresh
    database just then (seen once in a full run: "must be a member of the role whose process is
    being terminated"); such a worker finishes within moments."""
    from sqlalchemy.exc import ProgrammingError

    for attempt in range(tries):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError:
            if attempt == tries - 1:
                raise
            time.sleep(0.5)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'perfloop.db'}"


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A database migrated to head, on SQLite and on PostgreSQL."""
    from alembic import command

    command.upgrade(alembic_config(empty_db_url), "head")
    return empty_db_url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from db.engine import make_engine

    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite database only (for tests where the backend does not matter)."""
    from alembic import command

    from db.engine import make_engine

    command.upgrade(alembic_config(sqlite_url), "head")
    eng = make_engine(sqlite_url)
    try:
        yield eng
    finally:
        eng.dispose()
