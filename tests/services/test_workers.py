"""The team deployment on a real PostgreSQL: the app only enqueues (``PERFLOOP_JOBS=queue``);
two real ``python -m app worker`` processes run the jobs through procrastinate. Each job runs
exactly once, a stop request from another process stops a job, and two processes that try to
start a turn on one session at once get one turn and one clear refusal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app import services
from app.config import Settings
from app.services import Context
from db.engine import make_engine
from tests.conftest import ROOT, alembic_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PERFLOOP_JOBS": "queue",
        "PERFLOOP_JOB_STALE_S": "10",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def queue(postgres_url: str) -> Iterator[Context]:
    from alembic import command

    command.upgrade(alembic_config(postgres_url), "head")
    engine = make_engine(postgres_url)
    ctx = Context.from_settings(Settings(database_url=postgres_url, jobs="queue"), engine=engine)
    try:
        yield ctx
    finally:
        ctx.close()
        engine.dispose()


@pytest.fixture
def workers(queue: Context) -> Iterator[list[subprocess.Popen]]:
    url = queue.engine.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "worker", "--concurrency", "3"],
            cwd=ROOT,
            env=_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
            if p.stderr:
                p.stderr.close()


def _wait_all(ids: list[int], ctx: Context, timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    snaps = [services.wait_job(i, max(0.1, deadline - time.monotonic()), ctx=ctx) for i in ids]
    return snaps


def test_two_workers_run_thirty_jobs_each_exactly_once(queue, workers):
    ids = [services.submit_job("ping", params={"sleep_s": 0.2}, ctx=queue).id for _ in range(30)]
    snaps = _wait_all(ids, queue)
    assert [s.state for s in snaps] == ["done"] * 30, [s.error for s in snaps]
    pids = {p.pid for p in workers}
    ran_on = [s.result["pid"] for s in snaps]
    assert set(ran_on) <= pids and len(set(ran_on)) == 2, "both workers took jobs"
    assert all(s.worker == s.result["worker"] for s in snaps)
    with queue.engine.connect() as conn:
        tasks = conn.execute(
            text("SELECT (args->>'job_id')::int, status FROM procrastinate_jobs")
        ).all()
    # none lost, none delivered twice
    assert sorted(t[0] for t in tasks) == sorted(ids)
    assert {t[1] for t in tasks} == {"succeeded"}


def test_a_stop_request_from_another_process_stops_a_worker_job(queue, workers):
    job = services.submit_job("ping", params={"sleep_s": 120}, ctx=queue)
    deadline = time.monotonic() + 60
    while services.get_job(job.id, ctx=queue).state != "running":
        assert time.monotonic() < deadline, "no worker took the job"
        time.sleep(0.1)
    url = queue.engine.url.render_as_string(hide_password=False)
    out = subprocess.run(
        [sys.executable, "-m", "app", "jobs", "--cancel", str(job.id), "--json"],
        cwd=ROOT,
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    listed = {j["id"]: j for j in json.loads(out.stdout)}
    assert listed[job.id]["cancel_requested"] is True
    snap = services.wait_job(job.id, 20, ctx=queue)
    assert snap.state == "cancelled" and snap.finished_at is not None
    assert (snap.finished_at - snap.started_at).total_seconds() < 60


RACER = """
import sys, time
from app import services
sid, at = int(sys.argv[1]), float(sys.argv[2])
time.sleep(max(0.0, at - time.time()))
try:
    job = services.submit_job("turn", session_id=sid, params={"text": "go"})
    print("started", job.id)
except services.SessionBusy as exc:
    print("refused", exc)
"""


def test_two_processes_starting_a_turn_on_one_session_get_one_turn(queue):
    from tests.services.conftest import BASELINE, WORKLOAD

    sid = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        validate=False,
        ctx=queue,
    ).info.id
    url = queue.engine.url.render_as_string(hide_password=False)
    at = time.time() + 6  # both processes imported and waiting by then
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(sid), str(at)],
            cwd=ROOT,
            env=_env(url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [r.communicate(timeout=120) for r in racers]
    lines = sorted(o[0].strip() for o in outs)
    assert all(r.returncode == 0 for r in racers), [o[1] for o in outs]
    assert lines[0].startswith("refused Session") and lines[1].startswith("started")
    job_id = int(lines[1].split()[1])
    assert f"already has a turn in progress (job {job_id}, queued)" in lines[0]
    assert [j.id for j in services.list_jobs(sid, ctx=queue)] == [job_id]
