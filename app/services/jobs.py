"""Durable background jobs: the one way to start, watch, stop and re-run a chat turn, an
evaluation, a validation, a ConAIR round, a summary or an edit.

Every job is a row of the ``job`` table (``db.models.Job``) from the moment it is submitted.
Pages poll rows, never process memory, so a restart loses nothing and any process can show a
job, stop it (``cancel_requested``, which the worker checks) or reap it: a job whose worker's
heartbeat is older than ``PERFLOOP_JOB_STALE_S`` is marked ``interrupted`` by whoever looks
next (``submit_job``, ``list_jobs``, ``python -m app jobs``), and so are the evaluations it was
running. What a job does is named by its ``kind`` (``app.services.job_kinds``) and its JSON
``params``, so whichever process claims the row runs the same code:

- ``PERFLOOP_JOBS=embedded`` (default): the submitting process runs it on a small thread pool
  (``JobHost``), nothing to start by hand;
- ``PERFLOOP_JOBS=queue``: the row is handed to procrastinate (``app.worker``) and
  ``python -m app worker`` processes on any machine claim it.

Claiming is ``UPDATE job SET state='running' ... WHERE state='queued'``: a row runs once even if
it is delivered twice. At most one session-changing job is queued or running per session (a
partial unique index): a second one is refused with ``SessionBusy``.
"""

from __future__ import annotations

import contextvars
import os
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, false, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.services import job_kinds
from app.services._convert import utc
from app.services._jsonable import to_json
from app.services.access import (
    SYSTEM,
    Actor,
    acting,
    readable,
    require_change,
    require_create,
    require_read,
)
from app.services.context import Context, get_context
from app.services.errors import Cancelled, Forbidden, InvalidInput, NotFound, ServiceError
from db.engine import unit_of_work
from db.models import JOB_ACTIVE_STATES, Evaluation, Job, OptimizationSession, utcnow

#: How many routing events a row keeps for the live heatmap (the newest ones).
ROUTING_TAIL = 64
#: Seconds between two writes of a running job's streamed text / progress / routing.
FLUSH_S = 0.2
#: The job that the current thread works for (evaluations record it; see ``current_job``).
_current_job: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "perfloop_job", default=None
)
FINISHED_STATES = ("done", "failed", "cancelled", "interrupted")


class SessionBusy(InvalidInput):
    """Another session-changing job is queued or running on this session."""


def current_job() -> int | None:
    """The id of the job this code runs for (None outside a job)."""
    return _current_job.get()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- what the pages see ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSnapshot:
    id: int
    kind: str
    session_id: int | None
    state: str  # queued, running, done, failed, cancelled, interrupted
    text: str  # the streamed reply so far
    tokens: int
    routing_tail: list[Any]  # the latest routing events (app.llm.RoutingEvent)
    progress: list[tuple[str, dict[str, Any]]]  # (stage, info), in order
    result: Any  # the job function's return value (a typed view), once done
    error: str | None  # the message for the person, once failed or interrupted
    error_type: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    started_by: str | None = None
    worker: str | None = None
    heartbeat_at: datetime | None = None
    cancel_requested: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    rerun_of: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def as_json(self) -> dict[str, Any]:
        """What ``python -m app jobs --json`` prints for one job."""
        return {
            "id": self.id,
            "kind": self.kind,
            "session_id": self.session_id,
            "state": self.state,
            "error": self.error,
            "error_type": self.error_type,
            "started_by": self.started_by,
            "worker": self.worker,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "cancel_requested": self.cancel_requested,
            "tokens": self.tokens,
            "rerun_of": self.rerun_of,
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _snapshot(row: Job) -> JobSnapshot:
    from app.llm.types import RoutingEvent

    kind = job_kinds.KINDS.get(row.kind)
    result = None
    if row.result is not None and kind is not None:
        try:
            result = kind.decode(row.result)
        except Exception:  # noqa: BLE001 - an old row's result shape: show the raw JSON
            result = row.result
    return JobSnapshot(
        id=row.id,
        kind=row.kind,
        session_id=row.session_id,
        state=row.state,
        text=row.text or "",
        tokens=row.tokens or 0,
        routing_tail=[RoutingEvent(**e) for e in row.routing_tail or [] if isinstance(e, dict)],
        progress=[(str(p[0]), dict(p[1] or {})) for p in row.progress or []],
        result=result,
        error=row.error,
        error_type=row.error_type,
        created_at=utc(row.created_at),
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at),
        started_by=row.started_by,
        worker=row.worker,
        heartbeat_at=utc(row.heartbeat_at),
        cancel_requested=bool(row.cancel_requested),
        params=dict(row.params or {}),
        rerun_of=row.rerun_of,
    )


# --- the API -------------------------------------------------------------------------------


def submit_job(
    kind: str,
    *,
    session_id: int | None = None,
    params: dict[str, Any] | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
    rerun_of: int | None = None,
) -> JobSnapshot:
    """Store a job row and hand it to whoever executes jobs here (``PERFLOOP_JOBS``).

    ``params`` are the job function's arguments as JSON (views and dataclasses are flattened).
    Raises ``SessionBusy`` when the kind changes the session and another such job is queued or
    running on it, ``NotFound`` for an unknown session, ``InvalidInput`` for an unknown kind,
    ``Forbidden`` when the acting person may not change the session (the job then runs with
    the rights checked here, under their name).
    """
    c = get_context(ctx)
    who = acting(actor, c)
    spec = job_kinds.KINDS.get(kind)
    if spec is None:
        raise InvalidInput(f"There is no job kind {kind!r}; known: {', '.join(job_kinds.KINDS)}.")
    if spec.needs_session and session_id is None:
        raise InvalidInput(f"A {kind} job needs a session.")
    values = to_json(dict(params or {}))
    reap_stale_jobs(ctx=c)
    embedded = c.settings.jobs == "embedded"
    now = utcnow()
    try:
        with unit_of_work(c.engine) as s:
            # A job acts on the rows its params name (a candidate, a summary, tests): they must
            # be of its session, and that session is the one whose rights are checked.
            for sid in _sessions_named(s, values):
                if session_id is None:
                    session_id = sid
                elif sid != session_id:
                    raise InvalidInput(
                        f"The {kind} job names rows of session {sid}, not of session {session_id}."
                    )
            if session_id is not None:
                require_change(s, session_id, who, c.settings)
            else:
                require_create(who, "start work")
            row = Job(
                kind=kind,
                session_id=session_id,
                started_by=who.name,
                state="queued",
                holds_session=spec.holds_session and session_id is not None,
                params=values,
                progress=[],
                routing_tail=[],
                text="",
                tokens=0,
                worker=host().name if embedded else None,
                heartbeat_at=now if embedded else None,
                created_at=now,
                cancel_requested=False,
                rerun_of=rerun_of,
            )
            s.add(row)
            s.flush()
            job_id = row.id
    except IntegrityError as exc:
        busy = _busy_job(c.engine, session_id)
        if busy is None:
            raise
        raise SessionBusy(
            f"Session {session_id} already has a {busy.kind} in progress (job {busy.id}, "
            f"{busy.state}); wait for it to finish or stop it first.",
            stored={"session_id": session_id, "job_id": busy.id},
        ) from exc
    if embedded:
        host().run(job_id, c)
    else:
        from app import worker

        worker.enqueue(job_id, c)
    return get_job(job_id, actor=who, ctx=c)


def _sessions_named(s: Any, params: dict[str, Any]) -> set[int]:
    """The sessions of the candidates, summaries and test cases a job's params name."""
    from db.models import Candidate, CodeSummary, TestCase

    found: set[int] = set()

    def of(model: Any, ident: Any) -> Any:
        if not isinstance(ident, int) or isinstance(ident, bool):
            raise InvalidInput(f"{model.__tablename__} id must be a number, got {ident!r}")
        row = s.get(model, ident)
        if row is None:
            raise NotFound(model.__tablename__.replace("_", " "), ident)
        return row

    for key in ("candidate_id", "parent_id"):
        if params.get(key) is not None:
            found.add(of(Candidate, params[key]).session_id)
    if params.get("summary_id") is not None:
        found.add(of(Candidate, of(CodeSummary, params["summary_id"]).candidate_id).session_id)
    for answer in params.get("answers") or []:
        if isinstance(answer, dict) and answer.get("test_case_id") is not None:
            found.add(of(TestCase, answer["test_case_id"]).session_id)
    return found


def _busy_job(engine: Engine, session_id: int | None) -> Job | None:
    if session_id is None:
        return None
    with unit_of_work(engine) as s:
        return s.scalars(
            select(Job).where(
                Job.session_id == session_id,
                Job.holds_session.is_(True),
                Job.state.in_(JOB_ACTIVE_STATES),
            )
        ).first()


def _job_row(s: Any, job_id: int, who: Actor, c: Context, *, change: bool = False) -> Job:
    """The job's row if ``who`` may see it (read its session) or, with ``change``, stop or
    re-run it (change its session); a job of no session is its starter's and the admins'."""
    row = s.get(Job, job_id)
    if row is None:
        raise NotFound("job", job_id)
    if row.session_id is not None:
        (require_change if change else require_read)(s, row.session_id, who, c.settings)
    elif not (who.is_admin or (who.signed_in and row.started_by == who.name)):
        raise Forbidden(f"Job {job_id} is {row.started_by}'s (you are {who.describe()}).")
    return row


def get_job(job_id: int, *, actor: Actor | None = None, ctx: Context | None = None) -> JobSnapshot:
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        return _snapshot(_job_row(s, job_id, acting(actor, c), c))


def list_jobs(
    session_id: int | None = None,
    *,
    running_only: bool = False,
    limit: int = 50,
    reap: bool = True,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> list[JobSnapshot]:
    """The newest ``limit`` jobs (of one session, or all) that the acting person may see,
    oldest first; stale ones are marked ``interrupted`` first. ``running_only``: queued and
    running ones."""
    c = get_context(ctx)
    who = acting(actor, c)
    if reap:
        reap_stale_jobs(ctx=c)
    with unit_of_work(c.engine) as s:
        q = select(Job).order_by(Job.id.desc()).limit(limit)
        if not who.is_admin:
            sessions = select(OptimizationSession.id).where(readable(who, c.settings))
            own = Job.started_by == who.name if who.signed_in else false()
            q = q.where(or_(Job.session_id.in_(sessions), and_(Job.session_id.is_(None), own)))
        if session_id is not None:
            q = q.where(Job.session_id == session_id)
        if running_only:
            q = q.where(Job.state.in_(JOB_ACTIVE_STATES))
        return [_snapshot(r) for r in reversed(list(s.scalars(q)))]


def cancel_job(
    job_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> JobSnapshot:
    """Ask a job to stop: a queued one is cancelled at once; a running one stops at its next
    token or progress event (its worker, in any process, reads the flag). Whoever may change
    the job's session may stop it."""
    c = get_context(ctx)
    who = acting(actor, c)
    now = utcnow()
    with unit_of_work(c.engine) as s:
        row = _job_row(s, job_id, who, c, change=True)
        if row.state == "queued":
            row.state = "cancelled"
            row.finished_at = now
            row.error = "Stopped before it started."
            row.error_type = "Cancelled"
        if row.state in JOB_ACTIVE_STATES or row.state == "cancelled":
            row.cancel_requested = True
    host().cancel_local(c.engine, job_id)
    return get_job(job_id, actor=who, ctx=c)


def rerun_job(
    job_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> JobSnapshot:
    """Submit a finished job again with the same kind, session and parameters (the "Run
    again" button of an interrupted, failed or stopped job)."""
    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        old = _snapshot(_job_row(s, job_id, who, c, change=True))
    if not old.finished:
        raise InvalidInput(f"Job {job_id} is still {old.state}; stop it before running it again.")
    return submit_job(
        old.kind,
        session_id=old.session_id,
        params=old.params,
        actor=who,
        ctx=c,
        rerun_of=old.id,
    )


def wait_job(
    job_id: int,
    timeout: float | None = None,
    *,
    actor: Actor | None = None,
    ctx: Context | None = None,
    poll_s: float = 0.1,
) -> JobSnapshot:
    """Block until the job is finished (or ``timeout`` passes); its latest snapshot."""
    c = get_context(ctx)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        snap = get_job(job_id, actor=actor, ctx=c)
        if snap.finished or (deadline is not None and time.monotonic() >= deadline):
            return snap
        if host().wait_local(c.engine, job_id, poll_s):
            continue
        time.sleep(poll_s)


INTERRUPTED = (
    "Interrupted: the process running this job stopped (no heartbeat for {s:g} s). What it had "
    "produced is kept; run it again to finish."
)


def reap_stale_jobs(*, ctx: Context | None = None) -> list[int]:
    """Mark jobs whose worker stopped sending heartbeats ``interrupted`` (with a message), and
    the evaluations they were running too; the partial reply of an interrupted turn is kept in
    the transcript. Any live process may do this. Returns the ids marked."""
    c = get_context(ctx)
    stale_s = float(c.settings.job_stale_s)
    cutoff = utcnow() - timedelta(seconds=stale_s)
    stale = (
        Job.state.in_(JOB_ACTIVE_STATES),
        Job.worker.is_not(None),
        Job.heartbeat_at < cutoff,
        # a job this process holds is alive, whatever its last heartbeat says (a starved pulse
        # thread must not get its own jobs reaped by its own page)
        Job.id.not_in(host().held_ids(c.engine)),
    )
    with unit_of_work(c.engine) as s:
        ids = list(s.scalars(select(Job.id).where(*stale)))
        if not ids:
            return []
        now = utcnow()
        s.execute(
            update(Job)
            .where(Job.id.in_(ids), *stale)
            .values(
                state="interrupted",
                finished_at=now,
                error=INTERRUPTED.format(s=stale_s),
                error_type="Interrupted",
            )
            .execution_options(synchronize_session=False)
        )
        reaped = list(s.scalars(select(Job).where(Job.id.in_(ids), Job.state == "interrupted")))
        s.execute(
            update(Evaluation)
            .where(
                Evaluation.job_id.in_([j.id for j in reaped]),
                Evaluation.status.in_(("pending", "running")),
            )
            .values(
                status="interrupted",
                error="The evaluation was interrupted: the process running it stopped.",
                finished_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        for job in reaped:
            _keep_partial_reply(s, job)
        return [j.id for j in reaped]


def _keep_partial_reply(s: Any, job: Job) -> None:
    """A turn killed while the model was writing: its streamed text goes into the transcript
    (as a failed reply, like a provider that broke off), so the session shows what was said."""
    from db import queries

    stages = [p[0] for p in job.progress or []]
    if job.kind != "turn" or not job.text or job.session_id is None or "extract" in stages:
        return
    queries.add_message(
        session=s,
        session_id=job.session_id,
        role="assistant",
        content=job.text,
        kind="error",
        meta={"job_id": job.id, "interrupted": True},
    )


# --- running jobs --------------------------------------------------------------------------


@dataclass
class _Held:
    """A job this process holds: its buffers between two flushes and its stop flag."""

    id: int
    engine: Engine
    beat_s: float = 5.0  # seconds between two heartbeats (a sixth of the staleness limit)
    last_beat: float = 0.0
    state: str = "queued"
    text: list[str] = field(default_factory=list)
    tokens: int = 0
    progress: list[list[Any]] = field(default_factory=list)
    routing: deque = field(default_factory=lambda: deque(maxlen=ROUTING_TAIL))
    dirty: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_raised: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # callbacks handed to the job function
    def on_token(self, text: str) -> None:
        if self.cancel.is_set():
            self.cancel_raised = True
            raise Cancelled("stopped by the person")
        with self.lock:
            self.text.append(text)
            self.tokens += 1
            self.dirty = True

    def on_routing(self, event: Any) -> None:
        with self.lock:
            self.routing.append(
                {
                    "index": event.index,
                    "token": event.token,
                    "token_id": event.token_id,
                    "experts": [list(map(int, e)) for e in event.experts],
                    "weights": [[round(float(w), 3) for w in ws] for ws in event.weights],
                }
            )
            self.dirty = True

    def on_progress(self, stage: str, info: dict[str, Any] | None = None) -> None:
        if self.cancel.is_set() and stage != "done":
            self.cancel_raised = True
            raise Cancelled("stopped by the person")
        event = [stage, to_json(dict(info or {}))]
        with self.lock:
            if not self.progress or self.progress[-1] != event:  # a repeat says nothing new
                self.progress.append(event)
                self.dirty = True

    def pending(self) -> dict[str, Any] | None:
        with self.lock:
            if not self.dirty:
                return None
            self.dirty = False
            return {
                "text": "".join(self.text),
                "tokens": self.tokens,
                "progress": list(self.progress),
                "routing_tail": list(self.routing),
            }


class JobHost:
    """The jobs one process runs: a bounded thread pool, and one pulse thread that writes the
    streamed text in batches (every ``FLUSH_S``), sends the heartbeat of every job held here
    (queued or running) and reads the stop flags set by other processes."""

    def __init__(self, workers: int | None = None) -> None:
        self.name = worker_name()
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._held: dict[tuple[str, int], _Held] = {}
        self._lock = threading.Lock()
        self._pulse: threading.Thread | None = None

    def _key(self, engine: Engine, job_id: int) -> tuple[str, int]:
        return (str(engine.url), job_id)

    def run(self, job_id: int, ctx: Context) -> None:
        """Hold a queued row and run it on the pool (the embedded mode)."""
        held = _Held(job_id, ctx.engine, beat_s=_beat_s(ctx))
        with self._lock:
            self._held[self._key(ctx.engine, job_id)] = held
            if self._pool is None:
                workers = self._workers or max(1, int(ctx.settings.job_workers))
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="perfloop-job")
            pool = self._pool
        self._ensure_pulse()
        pool.submit(self.execute, job_id, ctx, held)

    def execute(self, job_id: int, ctx: Context, held: _Held | None = None) -> str:
        """Claim the row and run its job function here; returns the final state ("skipped" if
        another worker had it or it was no longer queued)."""
        held = held or _Held(job_id, ctx.engine, beat_s=_beat_s(ctx))
        key = self._key(ctx.engine, job_id)
        with self._lock:
            self._held[key] = held
        self._ensure_pulse()
        try:
            return self._execute(job_id, ctx, held)
        finally:
            with self._lock:
                self._held.pop(key, None)
            held.done.set()

    def _execute(self, job_id: int, ctx: Context, held: _Held) -> str:
        now = utcnow()
        with unit_of_work(ctx.engine) as s:
            claimed = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(state="running", worker=self.name, started_at=now, heartbeat_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            row = s.get(Job, job_id)
            if not claimed or row is None:
                return "skipped"
            kind, session_id, params = row.kind, row.session_id, dict(row.params or {})
            # the job acts with the rights submit_job checked, under its starter's name
            as_starter = ctx.acting_as(Actor(name=row.started_by or SYSTEM.name, system=True))
            if row.cancel_requested:
                held.cancel.set()
        held.state = "running"
        token = _current_job.set(job_id)
        result: Any = None
        error: BaseException | None = None
        try:
            spec = job_kinds.KINDS[kind]
            result = spec.encode(
                spec.run(
                    session_id,
                    params,
                    on_token=held.on_token,
                    on_routing=held.on_routing,
                    on_progress=held.on_progress,
                    ctx=as_starter,
                )
            )
            state = "cancelled" if held.cancel_raised else "done"
        except Cancelled as exc:
            state, error = "cancelled", exc
        except ServiceError as exc:
            state, error = ("cancelled" if held.cancel_raised else "failed"), exc
        except BaseException as exc:  # noqa: BLE001 - a job reports, it never kills the worker
            exc.add_note(traceback.format_exc())
            state, error = "failed", exc
        finally:
            _current_job.reset(token)
        self._finish(ctx.engine, held, state, result, error)
        return state

    def _finish(
        self, engine: Engine, held: _Held, state: str, result: Any, error: BaseException | None
    ) -> None:
        values: dict[str, Any] = held.pending() or {}
        message = None
        if error is not None:
            message = str(error) or type(error).__name__
            if state == "cancelled":
                message = "Stopped. What was produced so far is saved."
        values.update(
            state=state,
            result=result,
            error=message,
            error_type=None if error is None else type(error).__name__,
            finished_at=utcnow(),
            heartbeat_at=utcnow(),
        )
        with unit_of_work(engine) as s:
            s.execute(
                update(Job)
                .where(Job.id == held.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def cancel_local(self, engine: Engine, job_id: int) -> None:
        with self._lock:
            held = self._held.get(self._key(engine, job_id))
        if held is not None:
            held.cancel.set()

    def wait_local(self, engine: Engine, job_id: int, timeout: float) -> bool:
        """Wait on a job held here (True: it was held here and the wait is over)."""
        with self._lock:
            held = self._held.get(self._key(engine, job_id))
        if held is None:
            return False
        held.done.wait(timeout)
        return True

    def held_ids(self, engine: Engine) -> list[int]:
        """The ids of the jobs of ``engine``'s database this process holds."""
        url = str(engine.url)
        with self._lock:
            return [job_id for (u, job_id) in self._held if u == url]

    # -- the pulse ----------------------------------------------------------------------------
    def _ensure_pulse(self) -> None:
        with self._lock:
            if self._pulse is None or not self._pulse.is_alive():
                self._pulse = threading.Thread(
                    target=self._pulse_loop, name="perfloop-job-pulse", daemon=True
                )
                self._pulse.start()

    def _pulse_loop(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            with self._lock:
                held = list(self._held.values())
            for h in held:
                now = time.monotonic()
                beat = now - h.last_beat >= h.beat_s
                try:
                    self._pulse_one(h, beat)
                except Exception:  # noqa: BLE001,S112 - a busy database: try again next pulse
                    continue
                if beat:
                    h.last_beat = now

    def _pulse_one(self, h: _Held, beat: bool) -> None:
        values = h.pending() if h.state == "running" else None
        if values is None and not beat:
            return
        values = dict(values or {})
        values["heartbeat_at"] = utcnow()
        with unit_of_work(h.engine) as s:
            s.execute(
                update(Job)
                .where(Job.id == h.id, Job.state.in_(JOB_ACTIVE_STATES))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if h.state == "running" and s.scalar(
                select(Job.cancel_requested).where(Job.id == h.id)
            ):
                h.cancel.set()


def _beat_s(ctx: Context) -> float:
    return max(0.2, float(ctx.settings.job_stale_s) / 6)


_host: JobHost | None = None
_host_lock = threading.Lock()


def host() -> JobHost:
    """This process's job host (created on first use)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = JobHost()
        return _host


def run_in_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` bound to the caller's context variables (the current job), for thread pools."""
    ctx = contextvars.copy_context()
    return lambda *a, **kw: ctx.run(fn, *a, **kw)
