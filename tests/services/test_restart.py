"""A restart mid-turn loses nothing: a real process runs a chat turn (litellm's mock_response
stands in for the remote provider), is SIGKILLed while the sandbox evaluates the candidate, and
a new process finds the job ``interrupted`` (through ``python -m app jobs --json``), the session
and the reply intact, nothing ``running``, and running the job again completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app import services
from app.config import Settings
from db import queries
from db.engine import unit_of_work
from db.models import Evaluation, Job
from tests.conftest import ROOT
from tests.services.conftest import BASELINE, FASTER, TESTS, WORKLOAD, reply_with

MOCK_MODEL = "openai/gpt-4o-mini"
STALE_S = 2.0

RUNNER = """
import sys, time
from app import services
from app.config import Settings
from app.services import Context
from db.engine import make_engine
from tests.services.conftest import FASTER, LIMITS, reply_with, sandbox_backend

url, sid = sys.argv[1], int(sys.argv[2])
backend, allow = sandbox_backend()
ctx = Context.from_settings(
    Settings(database_url=url, job_stale_s=float(sys.argv[3])),
    engine=make_engine(url),
    sandbox_backend=backend,
    allow_process=allow,
    sandbox_limits=LIMITS,
    # a long measurement, so the kill lands while the sandbox is timing
    sandbox_timing={"budget_s": 40, "min_rounds": 200, "max_rounds": 200, "pairs_per_round": 2},
    model="openai/gpt-4o-mini",
    llm_options={"mock_response": reply_with(FASTER)},
)
services.set_default_context(ctx)
ada = services.Actor(name="ada", role="admin")
job = services.submit_job("turn", session_id=sid, params={"text": "go"}, actor=ada, ctx=ctx)
print(job.id, flush=True)
time.sleep(600)
"""


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PERFLOOP_JOB_STALE_S": str(STALE_S),
        "PYTHONPATH": str(ROOT),
    }


@pytest.mark.slow
def test_a_turn_killed_mid_evaluation_is_interrupted_and_runs_again(ctx, tmp_path: Path):
    url = str(ctx.engine.url)
    ctx.settings = Settings(database_url=url, job_stale_s=STALE_S)
    ctx.model = MOCK_MODEL
    ctx.llm_options = {"mock_response": reply_with(FASTER)}
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model=MOCK_MODEL,
        ctx=ctx,
    )
    assert view.ready, view.validation_error
    sid = view.info.id
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    proc = subprocess.Popen(
        [sys.executable, str(script), url, str(sid), str(STALE_S)],
        cwd=ROOT,
        env=_env(url),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        job_id = int(proc.stdout.readline())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with unit_of_work(ctx.engine) as s:
                running = s.scalars(select(Evaluation).where(Evaluation.job_id == job_id)).all()
                job = s.get(Job, job_id)
                stages = [p[0] for p in job.progress]
            # A stage is reported when it ends: once equivalence has, timing (40 s) runs.
            if running and running[0].status == "running" and "equivalence" in stages:
                time.sleep(2.0)
                break
            assert proc.poll() is None, "the runner died on its own"
            time.sleep(0.1)
        else:
            pytest.fail(f"the evaluation never reached timing: {stages}")
        os.killpg(proc.pid, signal.SIGKILL)  # the process and the sandbox it started
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()

    time.sleep(STALE_S + 0.5)
    # a new process looks at the jobs (and marks the stale one)
    out = subprocess.run(
        [sys.executable, "-m", "app", "jobs", "--session", str(sid), "--json"],
        cwd=ROOT,
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    listed = {j["id"]: j for j in json.loads(out.stdout)}
    mine = listed[job_id]
    assert {"id", "kind", "session_id", "state", "error"} <= set(mine)
    assert (mine["kind"], mine["session_id"], mine["state"]) == ("turn", sid, "interrupted")
    assert "Interrupted" in mine["error"]

    with unit_of_work(ctx.engine) as s:
        assert not s.scalars(select(Job).where(Job.state.in_(("queued", "running")))).all()
        evs = s.scalars(select(Evaluation).where(Evaluation.job_id == job_id)).all()
        assert [e.status for e in evs] == ["interrupted"]
        assert not s.scalars(select(Evaluation).where(Evaluation.status == "running")).all()
        msgs = queries.list_messages(sid, session=s)
    assert [m.content for m in msgs if m.role == "assistant"] == [reply_with(FASTER)]
    session = services.get_session(sid, ctx=ctx)
    interrupted = [c for c in session.candidates if c.origin == "llm"]
    assert [c.evaluation.status for c in interrupted] == ["interrupted"]

    again = services.rerun_job(job_id, actor=services.Actor(name="ada", role="admin"), ctx=ctx)
    done = services.wait_job(again.id, 240, ctx=ctx)
    assert done.state == "done", done.error
    assert done.rerun_of == job_id and done.started_by == "ada"
    [cand] = done.result.candidates
    assert cand.evaluation.status == "ok" and cand.evaluation.correct
