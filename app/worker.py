"""The team deployment's job queue: procrastinate on the PostgreSQL the team already runs.

With ``PERFLOOP_JOBS=queue`` the app stores a job row and defers one procrastinate task that
names it (``enqueue``); ``python -m app worker`` (``run_worker``) on any machine that has the
sandbox and reaches the database receives the task and runs the row with the same job
functions as the embedded pool (``JobHost.execute``: the row is claimed by a conditional
UPDATE, so a task delivered twice still runs the job once). Heartbeats, streamed text, the stop
flag and "interrupted" all live in the job row, as in the embedded mode; procrastinate only
delivers. Its own tables are created on first use (``ensure_schema``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.engine import make_url

from app.services.context import Context, get_context

QUEUE = "perfloop"
TASK = "perfloop.run_job"
_lock = threading.Lock()
_apps: dict[str, Any] = {}
_schema_ready: set[str] = set()
_opened: set[int] = set()
log = logging.getLogger("perfloop.worker")


class QueueUnavailable(RuntimeError):
    """The queue mode cannot run here (not PostgreSQL, or procrastinate is missing)."""


def conninfo(url: str) -> str:
    """The libpq URL procrastinate's psycopg connector wants, from a SQLAlchemy URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise QueueUnavailable(
            "PERFLOOP_JOBS=queue needs PostgreSQL (procrastinate keeps its queue there); "
            f"the database is {parsed.get_backend_name()}. Set DATABASE_URL to a PostgreSQL "
            "database or use PERFLOOP_JOBS=embedded."
        )
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def queue_app(url: str) -> Any:
    """The procrastinate App for this database, with the one task that runs a job row."""
    try:
        import procrastinate
    except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
        raise QueueUnavailable("procrastinate is not installed (see requirements.txt)") from exc
    info = conninfo(url)
    with _lock:
        app = _apps.get(info)
        if app is None:
            app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=info))

            @app.task(name=TASK, queue=QUEUE)
            def run_job(job_id: int) -> str:
                from app.services.jobs import host

                return host().execute(int(job_id), get_context())

            _apps[info] = app
        return app


def ensure_schema(url: str) -> None:
    """Create procrastinate's tables once per database (under an advisory lock, so two
    workers starting together do not both try)."""
    import psycopg
    from procrastinate.schema import SchemaManager

    with _lock:
        if url in _schema_ready:
            return
    with psycopg.connect(conninfo(url)) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(74210)")
        row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        if not (row and row[0]):
            conn.execute(SchemaManager.get_schema())
    with _lock:
        _schema_ready.add(url)


def info_of(app: Any) -> int:
    return id(app)


def enqueue(job_id: int, ctx: Context | None = None) -> None:
    """Hand a queued job row to the workers."""
    c = get_context(ctx)
    url = c.engine.url.render_as_string(hide_password=False)
    ensure_schema(url)
    app = queue_app(url)
    with _lock:
        if info_of(app) not in _opened:  # one pool per process, kept open
            app.open()
            _opened.add(info_of(app))
    app.tasks[TASK].defer(job_id=job_id)


def run_worker(*, concurrency: int | None = None, wait: bool = True) -> int:
    """Run queued jobs until stopped (SIGINT / SIGTERM); ``concurrency`` jobs at once."""
    c = get_context()
    url = c.engine.url.render_as_string(hide_password=False)
    conninfo(url)  # a clear message before anything else
    ensure_schema(url)
    n = max(1, concurrency or int(c.settings.job_workers))
    app = queue_app(url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log.info("perfloop worker: %d job(s) at once on queue %r", n, QUEUE)
    app.run_worker(queues=[QUEUE], concurrency=n, wait=wait)
    return 0
