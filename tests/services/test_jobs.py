"""Durable jobs: every background action is a row that any process can poll, stop or reap; a
page never blocks on the sandbox or the model."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app import services
from app.config import Settings
from app.services import job_kinds
from app.services.job_kinds import JobKind
from db import queries
from db.engine import make_engine, unit_of_work
from db.models import Candidate, Evaluation, Job, utcnow
from tests.services.conftest import BASELINE, TESTS, WORKLOAD

_gate = threading.Event()


def _slow(session_id, p, *, ctx, on_progress, **_):  # noqa: ANN001, ANN202
    on_progress("waiting", {"n": p["n"]})
    while not _gate.wait(0.05):
        on_progress("waiting", {"n": p["n"]})  # a stop request takes effect here
    return {"n": p["n"] * 2}


job_kinds.register(JobKind("test slow", _slow))
job_kinds.register(JobKind("test turn", _slow, holds_session=True, needs_session=True))


def _session(ctx) -> int:  # noqa: ANN001
    return services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        validate=False,
        ctx=ctx,
    ).info.id


@pytest.mark.slow
def test_validation_runs_as_a_job_row_with_progress(ctx):
    sid = _session(ctx)
    ada = services.Actor(name="ada", role="admin")
    job = services.submit_job("validation", session_id=sid, actor=ada, ctx=ctx)
    assert job.state in ("queued", "running") and job.started_by == "ada"
    snap = services.wait_job(job.id, 120, ctx=ctx)
    assert snap.state == "done", snap.error
    stages = [stage for stage, _ in snap.progress]
    assert stages[0] == "validate" and "timing" in stages and stages[-1] == "done"
    assert snap.result.ready and snap.session_id == sid  # the typed SessionView, from JSON
    assert snap.text == "" and snap.tokens == 0
    assert snap.worker and snap.started_at and snap.finished_at and snap.heartbeat_at


def test_a_failing_job_reports_the_message_for_the_person(ctx):
    view = services.create_session(
        baseline_source="def f(x):\n    return x +\n",
        entry_point="f",
        workload_source="def cases():\n    return [(1,)]\n",
        validate=False,
        ctx=ctx,
    )
    job = services.submit_job("validation", session_id=view.info.id, ctx=ctx)
    snap = services.wait_job(job.id, 30, ctx=ctx)
    assert snap.state == "failed" and snap.error_type == "CodeDoesNotParse"
    assert snap.error == "The baseline code does not parse: line 2: invalid syntax"


def test_unknown_kinds_and_sessions_are_refused_with_a_clear_message(ctx):
    # a job naming a row that does not exist is refused before anything is queued
    with pytest.raises(services.NotFound, match="candidate 12345 does not exist"):
        services.submit_job("evaluation", params={"candidate_id": 12345}, ctx=ctx)
    with pytest.raises(services.InvalidInput, match="no job kind 'nope'"):
        services.submit_job("nope", ctx=ctx)
    with pytest.raises(services.NotFound, match="session 999"):
        services.submit_job("turn", session_id=999, ctx=ctx)


def test_jobs_run_concurrently_and_are_rows_another_process_reads(ctx):
    _gate.clear()
    jobs = [services.submit_job("test slow", params={"n": i}, ctx=ctx) for i in range(3)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(services.get_job(j.id, ctx=ctx).state == "running" for j in jobs):
            break
        time.sleep(0.05)
    # a fresh engine on the same file sees the same jobs: nothing lives in process memory
    other = make_engine(str(ctx.engine.url))
    try:
        with unit_of_work(other) as s:
            states = s.scalars(select(Job.state).order_by(Job.id)).all()
        assert states == ["running"] * 3
    finally:
        other.dispose()
    _gate.set()
    done = [services.wait_job(j.id, 10, ctx=ctx) for j in jobs]
    assert [d.state for d in done] == ["done"] * 3
    assert [d.result for d in done] == [{"n": 0}, {"n": 2}, {"n": 4}]


def test_a_stop_flag_set_in_the_row_stops_the_job(ctx):
    _gate.clear()
    job = services.submit_job("test slow", params={"n": 1}, ctx=ctx)
    while services.get_job(job.id, ctx=ctx).state != "running":
        time.sleep(0.02)
    # as another process would: only the row changes
    with unit_of_work(ctx.engine) as s:
        s.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
    snap = services.wait_job(job.id, 10, ctx=ctx)
    _gate.set()
    assert snap.state == "cancelled" and snap.error.startswith("Stopped")


def test_a_queued_job_is_cancelled_at_once_and_can_be_run_again(ctx):
    _gate.set()
    sid = _session(ctx)
    with unit_of_work(ctx.engine) as s:  # a job some other worker has not picked up yet
        row = Job(kind="test turn", session_id=sid, state="queued", holds_session=True)
        row.params, row.progress, row.routing_tail = {"n": 3}, [], []
        s.add(row)
        s.flush()
        queued = row.id
    assert services.cancel_job(queued, ctx=ctx).state == "cancelled"
    again = services.rerun_job(queued, ctx=ctx)
    assert again.rerun_of == queued and again.params == {"n": 3}
    assert services.wait_job(again.id, 10, ctx=ctx).result == {"n": 6}


def test_one_running_turn_per_session_is_enforced_by_the_database(any_ctx):
    ctx = any_ctx
    _gate.clear()
    sid = _session(ctx)
    first = services.submit_job("test turn", session_id=sid, params={"n": 1}, ctx=ctx)
    try:
        while services.get_job(first.id, ctx=ctx).state != "running":
            time.sleep(0.02)
        with pytest.raises(services.SessionBusy) as info:
            services.submit_job("test turn", session_id=sid, params={"n": 2}, ctx=ctx)
        assert str(info.value) == (
            f"Session {sid} already has a test turn in progress (job {first.id}, running); "
            "wait for it to finish or stop it first."
        )
        # not a check in Python: the index refuses a second row written behind its back
        with pytest.raises(IntegrityError), unit_of_work(ctx.engine) as s:
            row = Job(kind="turn", session_id=sid, state="running", holds_session=True)
            row.params, row.progress, row.routing_tail = {}, [], []
            s.add(row)
            s.flush()
        # jobs that do not change the session may run beside it
        side = services.submit_job("test slow", session_id=sid, params={"n": 5}, ctx=ctx)
    finally:
        _gate.set()
    assert services.wait_job(first.id, 10, ctx=ctx).state == "done"
    assert services.wait_job(side.id, 10, ctx=ctx).state == "done"
    nxt = services.submit_job("test turn", session_id=sid, params={"n": 3}, ctx=ctx)
    assert services.wait_job(nxt.id, 10, ctx=ctx).state == "done"


def test_candidate_iterations_are_unique_per_session_by_a_constraint(any_ctx):
    ctx = any_ctx
    sid = _session(ctx)
    with unit_of_work(ctx.engine) as s:
        base = s.scalars(select(Candidate).where(Candidate.session_id == sid)).one()
        assert (base.iteration, base.block) == (0, 0)
        a = queries.add_candidate(session=s, session_id=sid, source="x", origin="human")
        b = queries.add_candidate(
            session=s, session_id=sid, source="y", origin="llm", block=1, iteration=a.iteration
        )
        assert a.iteration == 1 and b.iteration == 1  # one turn's blocks share a number
    with pytest.raises(IntegrityError), unit_of_work(ctx.engine) as s:
        queries.add_candidate(session=s, session_id=sid, source="z", origin="human", iteration=1)


def test_a_number_taken_by_another_writer_is_retried_with_the_next(ctx):
    from app.services.candidates import store_numbered

    sid = _session(ctx)
    calls: list[int] = []

    def write(s, iteration):  # noqa: ANN001, ANN202
        calls.append(iteration)
        if len(calls) == 1:  # another process takes this number between our read and write
            with unit_of_work(ctx.engine) as other:
                queries.add_candidate(
                    session=other,
                    session_id=sid,
                    source="them",
                    origin="human",
                    iteration=iteration,
                )
        return queries.add_candidate(
            session=s, session_id=sid, source="us", origin="human", iteration=iteration
        ).iteration

    assert store_numbered(ctx, sid, write) == 2
    assert calls == [1, 2]


def test_a_job_with_a_stale_heartbeat_is_marked_interrupted_with_its_evaluations(ctx):
    sid = _session(ctx)
    old = utcnow() - timedelta(seconds=120)
    with unit_of_work(ctx.engine) as s:
        row = Job(
            kind="turn",
            session_id=sid,
            state="running",
            holds_session=True,
            worker="gone:1",
            heartbeat_at=old,
            text="Use a set for b",
            tokens=5,
        )
        row.params, row.progress, row.routing_tail = {"text": "go"}, [["llm", {}]], []
        s.add(row)
        s.flush()
        cand = s.scalars(select(Candidate).where(Candidate.session_id == sid)).one()
        ev = queries.add_evaluation(
            session=s, candidate_id=cand.id, backend="bwrap", status="running"
        )
        ev.job_id = row.id
        job_id, ev_id = row.id, ev.id
    ctx.settings = Settings(database_url=str(ctx.engine.url), job_stale_s=30)
    [snap] = services.list_jobs(sid, ctx=ctx)
    assert snap.state == "interrupted" and snap.error.startswith("Interrupted: the process")
    assert snap.text == "Use a set for b"
    with unit_of_work(ctx.engine) as s:
        assert s.get(Evaluation, ev_id).status == "interrupted"
        msgs = queries.list_messages(sid, session=s)
        assert (msgs[-1].role, msgs[-1].kind, msgs[-1].content) == (
            "assistant",
            "error",
            "Use a set for b",
        ), "the partial reply is kept in the transcript"
        assert not s.scalars(select(Job).where(Job.state == "running")).all()
    # the session is free again: a new turn may start
    _gate.set()
    again = services.submit_job("test turn", session_id=sid, params={"n": 1}, ctx=ctx)
    assert services.wait_job(again.id, 10, ctx=ctx).state == "done"
    assert job_id != again.id


def test_a_live_job_keeps_its_heartbeat_fresh(ctx):
    _gate.clear()
    ctx.settings = Settings(database_url=str(ctx.engine.url), job_stale_s=1.2)
    job = services.submit_job("test slow", params={"n": 1}, ctx=ctx)
    try:
        time.sleep(2.5)  # twice the staleness limit
        assert services.list_jobs(ctx=ctx)[-1].state == "running"
    finally:
        _gate.set()
    assert services.wait_job(job.id, 10, ctx=ctx).state == "done"


def test_model_choices_start_with_the_local_model(ctx):
    choices = services.model_choices(ctx=ctx)
    assert choices[0].model == "perfloop-moe/default" and choices[0].usable and choices[0].local
    openai = next(c for c in choices if c.model.startswith("openai/"))
    assert openai.usable is (ctx.settings.openai_api_key is not None)
    if not openai.usable:
        assert openai.note == "set OPENAI_API_KEY to use it"


def _streams(session_id, p, *, ctx, on_token, on_routing, **_):  # noqa: ANN001, ANN202
    from app.llm.types import RoutingEvent

    for i in range(100):
        on_token(f"t{i} ")
        on_routing(RoutingEvent(i, f"t{i}", i, [[i % 8, 1]], [[0.75, 0.25]]))
    _gate.wait(10)
    return None


job_kinds.register(JobKind("test stream", _streams))


def test_tokens_and_routing_reach_the_row_while_the_job_streams(ctx):
    _gate.clear()
    job = services.submit_job("test stream", ctx=ctx)
    try:
        deadline = time.monotonic() + 10
        snap = services.get_job(job.id, ctx=ctx)
        while snap.tokens < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
            snap = services.get_job(job.id, ctx=ctx)
        assert snap.state == "running"
        assert snap.text.startswith("t0 t1 ") and snap.tokens == 100
        tail = snap.routing_tail  # bounded: the newest events only
        assert [e.index for e in tail] == list(range(100 - len(tail), 100)) and len(tail) == 64
        assert tail[-1].experts == [[99 % 8, 1]] and tail[-1].weights == [[0.75, 0.25]]
    finally:
        _gate.set()
    assert services.wait_job(job.id, 10, ctx=ctx).state == "done"


def test_a_process_never_reaps_the_jobs_it_holds(ctx):
    _gate.clear()
    ctx.settings = Settings(database_url=str(ctx.engine.url), job_stale_s=30)
    job = services.submit_job("test slow", params={"n": 1}, ctx=ctx)
    try:
        with unit_of_work(ctx.engine) as s:  # as if its pulse thread had been starved
            s.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(heartbeat_at=utcnow() - timedelta(seconds=300))
            )
        assert services.reap_stale_jobs(ctx=ctx) == []
        assert services.get_job(job.id, ctx=ctx).state in ("queued", "running")
    finally:
        _gate.set()
    assert services.wait_job(job.id, 10, ctx=ctx).state == "done"
