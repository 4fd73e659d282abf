"""No lost writes: many threads writing at once all land, on SQLite (WAL + busy timeout) and on
PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from db import queries, unit_of_work
from db.models import Message

THREADS = 8
PER_THREAD = 200


def test_eight_threads_write_1600_messages_without_loss(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        sid = queries.create_session(
            session=s, title="t", baseline_source="", entry_point="f", workload_source=""
        ).id

    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                # One unit of work per message, as the app writes them (each one a transaction).
                with unit_of_work(engine) as s:
                    queries.add_message(session=s, session_id=sid, role="user", content=f"{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with unit_of_work(engine) as s:
        count = s.scalar(select(func.count(Message.id)).where(Message.session_id == sid))
        contents = set(s.scalars(select(Message.content)))
    assert count == THREADS * PER_THREAD
    assert contents == {f"{n}-{i}" for n in range(THREADS) for i in range(PER_THREAD)}


def test_sqlite_runs_in_wal_mode_with_busy_timeout(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
