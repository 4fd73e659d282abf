"""A team instance under load: 8 simulated users each run 3 chat turns against the app's
services, with 2 job workers on a throw-away PostgreSQL database, while an A/A evaluation (the
baseline against an identical copy) is measured over and over on the same workers.

The model is the recorded-transcript provider (remote providers cannot be reached here): every
reply proposes the same faster version, so each turn stores and evaluates one candidate in the
real sandbox. The workers are real ``app.worker.run_worker`` processes (started with the
transcript installed); this process plays the app (``PERFLOOP_JOBS=queue``: it only enqueues).

Prints: jobs lost (must be 0), duplicated (0), queue wait p50/p95, the A/A CI half-width while
the load runs (target within ±3 %) beside the same A/A on the same idle workers just before the
load starts (their ratio is what the load costs; the idle figure is this host's own noise), the
A/A speedups themselves (identical code: 1 inside every CI, and how far from 1 the point
estimates stray), and the wall time.
Run: ``.venv/bin/python bench/team_load.py [users] [turns] [aa_runs]``
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "recorded/transcript"
#: The sandbox's own default timing (None): the A/A figure is the one a user would get.
TIMING = None
WORKER = """
import sys
from app import services, worker
from app.services import Context
from tests.llm import recorded
from tests.services.conftest import FASTER, reply_with

recorded.install([reply_with(FASTER)] * 1000)
services.set_default_context(
    Context.from_settings(model="recorded/transcript", sandbox_timing=%r or None)
)
sys.exit(worker.run_worker(concurrency=int(sys.argv[1])))
"""


def _how(ctx, evaluation_id: int) -> str:  # noqa: ANN001
    """How the sandbox timed it: rounds, why it stopped, pipelined (a spare core), budget."""
    from db.models import Evaluation

    with ctx.engine.connect() as conn:
        result = (
            conn.execute(Evaluation.__table__.select().where(Evaluation.id == evaluation_id))
            .first()
            .result
        )
    t = (result or {}).get("timing") or {}
    return (
        f"rounds {t.get('rounds')} stopped {t.get('stopped')} pipelined {t.get('pipelined')} "
        f"budget {t.get('budget_s')} s timing {result.get('timing_s')} s"
    )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    turns = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    aa_runs = int(sys.argv[3]) if len(sys.argv) > 3 else 6

    from alembic import command

    from app import services
    from app.config import Settings, get_settings
    from app.services import Context
    from db.engine import make_engine
    from tests.conftest import alembic_config
    from tests.services.conftest import BASELINE, TESTS, WORKLOAD

    admin_url = get_settings().test_postgres_url
    name = f"perfloop_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "head")
    env = {**os.environ, "DATABASE_URL": url, "PERFLOOP_JOBS": "queue", "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER % (TIMING,), "2"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    engine = make_engine(url)
    ctx = Context.from_settings(
        Settings(database_url=url, jobs="queue"), engine=engine, model=MODEL
    )
    submitted: list[int] = []
    lock = threading.Lock()
    errors: list[str] = []

    def submit(kind: str, sid: int, **params) -> int:  # noqa: ANN003
        job = services.submit_job(kind, session_id=sid, params=params, ctx=ctx)
        with lock:
            submitted.append(job.id)
        return job.id

    def user(i: int) -> None:
        sid = services.create_session(
            baseline_source=BASELINE,
            entry_point="count_common",
            workload_source=WORKLOAD,
            tests_source=TESTS,
            title=f"user {i}",
            model=MODEL,
            validate=False,
            ctx=ctx,
        ).info.id
        for kind, params in [("validation", {})] + [("turn", {"text": "faster"})] * turns:
            snap = services.wait_job(submit(kind, sid, **params), 900, ctx=ctx)
            if snap.state != "done":
                errors.append(f"user {i} {kind}: {snap.state} {snap.error}")
                return

    started = time.monotonic()
    try:
        aa_sid = services.create_session(
            baseline_source=BASELINE,
            entry_point="count_common",
            workload_source=WORKLOAD,
            title="A/A",
            model=MODEL,
            validate=False,
            ctx=ctx,
        ).info.id
        services.wait_job(submit("validation", aa_sid), 900, ctx=ctx)
        same = services.submit_job(
            "hand edit",
            session_id=aa_sid,
            params={"source": BASELINE, "note": "A/A", "evaluate": False},
            ctx=ctx,
        )
        submitted.append(same.id)
        aa_candidate = services.wait_job(same.id, 300, ctx=ctx).result.id

        def aa(label: str, into: list) -> None:
            snap = services.wait_job(
                submit("evaluation", aa_sid, candidate_id=aa_candidate), 900, ctx=ctx
            )
            ev = snap.result
            if snap.state == "done" and ev.ci_low and ev.ci_high:
                half = (ev.ci_high / ev.ci_low) ** 0.5 - 1
                into.append((half, ev.speedup, ev.ci_low, ev.ci_high))
                print(
                    f"  A/A {label}: ×{ev.speedup:.3f} ±{half * 100:.1f} % {_how(ctx, ev.id)}",
                    flush=True,
                )

        idle: list[tuple] = []
        for _ in range(max(2, aa_runs // 2)):
            aa("idle", idle)
        threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
        for t in threads:
            t.start()
        loaded: list[tuple] = []
        while any(t.is_alive() for t in threads) and len(loaded) < aa_runs:
            aa("under load", loaded)
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, state, created_at, started_at FROM job ORDER BY id")
            ).all()
            deliveries = dict(
                conn.execute(
                    text(
                        "SELECT (args->>'job_id')::int, count(*) FROM procrastinate_jobs GROUP BY 1"
                    )
                ).all()
            )
            twice = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT job_id, candidate_id FROM evaluation "
                    "WHERE job_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d"
                )
            ).scalar()
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
        ctx.close()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    states = {r.id: r.state for r in rows}
    lost = [j for j in submitted if states.get(j) not in ("done", "failed", "cancelled")]
    duplicated = sum(1 for j in submitted if deliveries.get(j, 0) > 1) + int(twice or 0)
    waits = [(r.started_at - r.created_at).total_seconds() for r in rows if r.started_at]
    failed = [j for j in submitted if states.get(j) == "failed"]
    print(
        f"team load: {users} users x {turns} turns, 2 workers x 2 jobs, PostgreSQL, "
        f"recorded-transcript model, sandbox timing {TIMING or 'default'}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"jobs submitted {len(submitted)}, done {sum(s == 'done' for s in states.values())}, "
        f"failed {len(failed)}"
    )
    print(f"jobs lost {len(lost)} (must be 0), duplicated {duplicated} (must be 0)")
    print(f"queue wait p50 {percentile(waits, 50):.2f} s, p95 {percentile(waits, 95):.2f} s")
    for label, runs in (("idle", idle), ("under load", loaded)):
        if not runs:
            continue
        halves = [r[0] * 100 for r in runs]
        strays = [abs(r[1] - 1) * 100 for r in runs]
        covered = sum(1 for r in runs if r[2] <= 1 <= r[3])
        print(
            f"A/A {label}: CI half-width median {np.median(halves):.2f} %, "
            f"max {max(halves):.2f} %; "
            f"speedup off 1 by median {np.median(strays):.2f} %, max {max(strays):.2f} %; "
            f"1 inside {covered} of {len(runs)} CIs"
        )
    if idle and loaded:
        ratio = np.median([r[0] for r in loaded]) / np.median([r[0] for r in idle])
        print(f"A/A CI half-width under load / idle: {ratio:.2f} (target under load ±3 %)")
    print(f"wall time {wall:.0f} s")
    for e in errors:
        print("error:", e)


if __name__ == "__main__":
    main()
