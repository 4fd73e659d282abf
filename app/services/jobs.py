"""Background jobs a page can start and poll: a chat turn, an evaluation, a session's
validation. The browser reruns a page script many times a second; it must never block on the
model or the sandbox, and one person's long turn must not stall another's page.

A job runs one service function in its own thread, records every callback it receives (tokens,
routing events, progress) and its result or error; ``Job.snapshot()`` gives a consistent copy.
"""

from __future__ import annotations

import inspect
import itertools
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from app.services.errors import Cancelled, NotFound, ServiceError

JobState = Literal["running", "done", "failed", "cancelled"]

#: How many routing events a snapshot keeps (the live panel shows the latest ones).
ROUTING_TAIL = 256


@dataclass(frozen=True)
class JobSnapshot:
    id: int
    kind: str
    session_id: int | None
    state: JobState
    text: str  # the streamed reply so far
    tokens: int
    routing_tail: list[Any]  # the latest routing events (app.llm.RoutingEvent)
    progress: list[tuple[str, dict[str, Any]]]  # (stage, info), in order
    result: Any  # the service function's return value, once done
    error: str | None  # the message for the person, once failed
    error_type: str | None
    started_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state != "running"


@dataclass
class Job:
    id: int
    kind: str
    session_id: int | None
    state: JobState = "running"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    result: Any = None
    error: BaseException | None = None
    _text: list[str] = field(default_factory=list)
    _routing: list[Any] = field(default_factory=list)
    _progress: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _routing_count: int = 0

    # -- callbacks handed to the service function ------------------------------------------
    def on_token(self, text: str) -> None:
        if self._cancel.is_set():
            raise Cancelled("stopped by the person")
        with self._lock:
            self._text.append(text)

    def on_routing(self, event: Any) -> None:
        with self._lock:
            self._routing.append(event)
            self._routing_count += 1
            if len(self._routing) > 2 * ROUTING_TAIL:
                del self._routing[:-ROUTING_TAIL]

    def on_progress(self, stage: str, info: dict[str, Any] | None = None) -> None:
        if self._cancel.is_set() and stage != "done":
            raise Cancelled("stopped by the person")
        with self._lock:
            self._progress.append((stage, dict(info or {})))

    # -- for the page ----------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop at the next token or progress event."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            err = self.error
            return JobSnapshot(
                id=self.id,
                kind=self.kind,
                session_id=self.session_id,
                state=self.state,
                text="".join(self._text),
                tokens=len(self._text),
                routing_tail=list(self._routing[-ROUTING_TAIL:]),
                progress=list(self._progress),
                result=self.result,
                error=None if err is None else str(err),
                error_type=None if err is None else type(err).__name__,
                started_at=self.started_at,
                finished_at=self.finished_at,
            )


_jobs: dict[int, Job] = {}
_ids = itertools.count(1)
_registry_lock = threading.Lock()


def start_job(
    kind: str,
    fn: Callable[..., Any],
    /,
    *args: Any,
    session_id: int | None = None,
    **kwargs: Any,
) -> Job:
    """Run ``fn(*args, **kwargs, on_token=..., on_routing=..., on_progress=...)`` in a thread.

    Callbacks passed in ``kwargs`` are chained after the job's own recorders. Poll with
    ``get_job(job.id).snapshot()``.
    """
    with _registry_lock:
        job = Job(id=next(_ids), kind=kind, session_id=session_id)
        _jobs[job.id] = job
    accepted = _callback_names(fn)
    for name in ("on_token", "on_routing", "on_progress"):
        if name not in accepted:
            continue
        own = getattr(job, name)
        theirs = kwargs.pop(name, None)
        kwargs[name] = own if theirs is None else _chain(own, theirs)

    def run() -> None:
        try:
            result = fn(*args, **kwargs)
        except Cancelled as exc:
            _finish(job, "cancelled", error=exc)
        except ServiceError as exc:
            _finish(job, "failed", error=exc)
        except BaseException as exc:  # noqa: BLE001 - a job reports, it never kills the app
            exc.add_note(traceback.format_exc())
            _finish(job, "failed", error=exc)
        else:
            _finish(job, "done", result=result)

    job._thread = threading.Thread(target=run, name=f"perfloop-job-{job.id}", daemon=True)
    job._thread.start()
    return job


def _callback_names(fn: Callable[..., Any]) -> set[str]:
    """Which of the three callbacks ``fn`` takes (a validation has no tokens to report)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {"on_token", "on_routing", "on_progress"}
    return {"on_token", "on_routing", "on_progress"} & set(params)


def _chain(a: Callable[..., Any], b: Callable[..., Any]) -> Callable[..., Any]:
    def both(*args: Any) -> None:
        a(*args)
        b(*args)

    return both


def _finish(job: Job, state: JobState, *, result: Any = None, error: BaseException | None = None):
    with job._lock:
        job.state = state
        job.result = result
        job.error = error
        job.finished_at = datetime.now(UTC)
    job._done.set()


def get_job(job_id: int) -> Job:
    with _registry_lock:
        job = _jobs.get(job_id)
    if job is None:
        raise NotFound("job", job_id)
    return job


def list_jobs(session_id: int | None = None, *, running_only: bool = False) -> list[Job]:
    with _registry_lock:
        jobs = list(_jobs.values())
    return [
        j
        for j in jobs
        if (session_id is None or j.session_id == session_id)
        and (not running_only or j.state == "running")
    ]


def forget_finished(older_than_s: float = 3600.0) -> int:
    """Drop finished jobs older than ``older_than_s``; returns how many were dropped."""
    now = datetime.now(UTC)
    with _registry_lock:
        old = [
            i
            for i, j in _jobs.items()
            if j.finished_at is not None and (now - j.finished_at).total_seconds() > older_than_s
        ]
        for i in old:
            del _jobs[i]
    return len(old)
