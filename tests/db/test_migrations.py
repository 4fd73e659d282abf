"""The four stock migration checks (pytest-alembic) plus the `alembic` CLI itself, on SQLite and
on a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_alembic import create_alembic_fixture
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import create_engine, inspect

from db.models import Base
from tests.conftest import ROOT

# pytest-alembic's runner, bound to the same alembic.ini the app uses.
alembic_runner = create_alembic_fixture({"file": str(ROOT / "alembic.ini")})

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_engine(empty_db_url: str):
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def alembic_config():
    return {"file": str(ROOT / "alembic.ini"), "attributes": {"configure_logger": False}}


def _alembic_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_upgrade_then_check_finds_no_difference(empty_db_url: str) -> None:
    up = _alembic_cli(empty_db_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    check = _alembic_cli(empty_db_url, "check")
    assert check.returncode == 0, check.stderr + check.stdout
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    engine = create_engine(empty_db_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables


def test_cli_downgrade_then_upgrade_round_trip(empty_db_url: str) -> None:
    assert _alembic_cli(empty_db_url, "upgrade", "head").returncode == 0
    down = _alembic_cli(empty_db_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    engine = create_engine(empty_db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    again = _alembic_cli(empty_db_url, "upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert _alembic_cli(empty_db_url, "check").returncode == 0
