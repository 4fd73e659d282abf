"""Server time to render the browser studio's heaviest pages (issue 6 targets):

- Review of a session with 200 messages and 50 evaluated candidates: under 1.5 s;
- Sessions with 10,000 sessions stored: under 1 s.

Each figure is the time of one script run of the page in Streamlit's AppTest (the same script
run the server does for a browser, without the network), on a fresh SQLite database filled
through the data layer. The first run is a warm-up (imports, caches); the median and the
spread of the next ``--rounds`` runs are printed.

    .venv/bin/python bench/ui_render.py [--rounds 7] [--sessions 10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAIN = str(ROOT / "app" / "main.py")
SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x * x\n    return total\n"


def _database(url: str) -> None:
    from alembic import command

    from tests.conftest import alembic_config

    command.upgrade(alembic_config(url), "head")


def fill_review_session(engine, *, messages: int = 200, candidates: int = 50) -> int:  # noqa: ANN001
    """One session: ``messages`` chat messages, ``candidates`` candidates in a tree, each with an
    evaluation (line profile of 5 lines) and a comment on every tenth message."""
    from db import models as m
    from db.engine import unit_of_work

    rng = random.Random(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with unit_of_work(engine) as s:
        session = m.OptimizationSession(
            title="Bench review",
            author="bench",
            baseline_source=SOURCE,
            entry_point="f",
            workload_source="def cases():\n    yield ([1, 2, 3],)\n",
        )
        s.add(session)
        s.flush()
        message_ids = []
        for i in range(messages):
            role = "user" if i % 2 == 0 else "assistant"
            text = (
                f"Please try variant {i}."
                if role == "user"
                else f"Here is a version:\n\n```python\n{SOURCE}```\n\nIt avoids work {i}."
            )
            msg = m.Message(
                session_id=session.id,
                role=role,
                content=text,
                kind="chat",
                model="perfloop-moe/default",
                completion_tokens=120 if role == "assistant" else None,
                latency_s=2.0 if role == "assistant" else None,
                created_at=start + timedelta(seconds=i),
            )
            s.add(msg)
            s.flush()
            message_ids.append(msg.id)
            if i % 10 == 0:
                s.add(m.Comment(session_id=session.id, message_id=msg.id, author="bench",
                                text=f"comment on message {i}"))  # fmt: skip
        parents: list[int | None] = [None]
        for i in range(candidates):
            cand = m.Candidate(
                session_id=session.id,
                parent_id=rng.choice(parents),
                source=SOURCE.replace("total", f"total{i}"),
                origin="baseline" if i == 0 else "llm",
                message_id=message_ids[min(len(message_ids) - 1, 2 * i + 1)] if i else None,
                meta={"iteration": i},
                created_at=start + timedelta(seconds=i),
            )
            s.add(cand)
            s.flush()
            parents.append(cand.id)
            speed = 1.0 if i == 0 else rng.uniform(0.5, 4.0)
            s.add(
                m.Evaluation(
                    candidate_id=cand.id,
                    backend="bwrap",
                    status="ok",
                    correct=rng.random() > 0.2,
                    tests_passed=3,
                    tests_failed=0,
                    equivalent=True,
                    speedup=None if i == 0 else speed,
                    ci_low=None if i == 0 else speed * 0.95,
                    ci_high=None if i == 0 else speed * 1.05,
                    verdict=None if i == 0 else ("faster" if speed > 1.05 else "slower"),
                    peak_memory_bytes=rng.randint(1, 50) * 2**20,
                    line_profile=[
                        {
                            "line": n,
                            "hits": 100,
                            "time": 0.01 * n,
                            "share": n / 15,
                            "source": SOURCE.splitlines()[n - 1],
                        }
                        for n in range(1, 6)
                    ],  # fmt: skip
                    started_at=start,
                    finished_at=start + timedelta(seconds=5),
                )
            )
        return session.id


def fill_sessions(engine, n: int) -> None:  # noqa: ANN001
    """``n`` sessions, each with a baseline candidate and its evaluation, inserted in bulk."""
    from sqlalchemy import insert, select

    from db import models as m

    start = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(m.OptimizationSession),
            [
                {
                    "title": f"Session {i}",
                    "author": f"author{i % 17}",
                    "visibility": "team",
                    "mode": "chat",
                    "model": "perfloop-moe/default",
                    "baseline_source": SOURCE,
                    "entry_point": "f",
                    "workload_source": "",
                    "tags": [f"tag{i % 5}"],
                    "notes": "",
                    "created_at": start + timedelta(minutes=i),
                    "updated_at": start + timedelta(minutes=i),
                }
                for i in range(n)
            ],
        )
        ids = conn.execute(select(m.OptimizationSession.id)).scalars().all()
        conn.execute(
            insert(m.Candidate),
            [
                {"session_id": sid, "source": SOURCE, "origin": "baseline", "meta": {},
                 "created_at": start}
                for sid in ids
            ],
        )  # fmt: skip
        cids = conn.execute(select(m.Candidate.id)).scalars().all()
        conn.execute(
            insert(m.Evaluation),
            [
                {"candidate_id": cid, "backend": "bwrap", "status": "ok", "correct": True,
                 "speedup": 1.0 + (cid % 7) / 3, "verdict": "faster", "mismatches": [],
                 "timing": {}, "line_profile": [], "result": {}}
                for cid in cids
            ],
        )  # fmt: skip


def time_page(page: str, rounds: int, **query: str) -> list[float]:
    """Seconds per script run of ``pages/<page>.py`` (AppTest), after one warm-up run."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page(str(ROOT / "pages" / f"{page}.py"))
    at.run()  # warm-up
    if at.exception:
        raise SystemExit(f"{page}: {[e.value for e in at.exception]}")
    if at.error:
        raise SystemExit(f"{page}: {[e.value for e in at.error]}")
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    # what was drawn, so a page that silently draws nothing cannot look fast
    shown = [c.value for c in at.caption if "match" in c.value]
    print(f"  drew {len(at.chat_message)} chat messages, {len(at.dataframe)} tables "
          f"{shown[0] if shown else ''}")  # fmt: skip
    return times


def report(name: str, times: list[float], target: float) -> None:
    median = statistics.median(times)
    verdict = "within" if median < target else "OVER"
    print(
        f"{name:<48} median {median * 1000:7.0f} ms   min {min(times) * 1000:6.0f}   "
        f"max {max(times) * 1000:6.0f}   (n={len(times)}; target < {target:g} s: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args()

    from app import services
    from app.config import Settings
    from db.engine import make_engine

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'review.db'}"
        _database(url)
        engine = make_engine(url)
        sid = fill_review_session(engine)
        services.set_default_context(
            services.Context.from_settings(Settings(database_url=url), engine=engine)
        )
        view = services.get_session(sid)
        print(f"Review: {len(view.messages)} messages, {len(view.candidates)} candidates")
        report("Review (200 messages, 50 candidates)", time_page("review", args.rounds,
               session=str(sid)), 1.5)  # fmt: skip
        engine.dispose()

        url = f"sqlite:///{Path(tmp) / 'sessions.db'}"
        _database(url)
        engine = make_engine(url)
        t0 = time.perf_counter()
        fill_sessions(engine, args.sessions)
        print(f"Sessions: {args.sessions} stored in {time.perf_counter() - t0:.1f} s")
        services.set_default_context(
            services.Context.from_settings(Settings(database_url=url), engine=engine)
        )
        report(f"Sessions ({args.sessions:,} stored)", time_page("sessions", args.rounds), 1.0)
        engine.dispose()


if __name__ == "__main__":
    main()
