"""`make run` — the README's first command — migrates and serves the app: the health endpoint
answers `ok` and the database is at head."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT
from tests.support.net import free_port


@pytest.mark.slow
def test_make_run_serves_health_ok_on_a_migrated_database(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "run.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        body = b""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as r:
                    body = r.read()
                    break
            except OSError:
                time.sleep(1)
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert body == b"ok"
        engine = create_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        engine.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
