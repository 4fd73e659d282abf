"""The jobs migration moves each candidate's iteration from ``meta`` into the unique
(session_id, iteration, block) columns, keeping the numbers the chart shows (a collision from
the old max+1 race gets the next block), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import create_engine, text

from tests.conftest import alembic_config


def test_existing_iterations_move_into_the_unique_columns(empty_db_url: str) -> None:
    cfg = alembic_config(empty_db_url)
    command.upgrade(cfg, "0001")
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO optimization_session (id, title, author, created_at, updated_at,"
                    " visibility, mode, baseline_source, entry_point, workload_source, tags,"
                    " notes) VALUES (1, 't', 'a', '2026-01-01', '2026-01-01', 'team', 'chat',"
                    " 'x', 'f', 'w', '[]', '')"
                )
            )
            metas = [
                {"iteration": 0},
                {"iteration": 1, "block": 0},
                {"iteration": 1, "block": 1},
                {"iteration": 2, "note": "hand edit"},
                {"iteration": 2, "note": "a hand edit that raced the one above"},
                {},
            ]
            for i, meta in enumerate(metas, 1):
                conn.execute(
                    text(
                        "INSERT INTO candidate (id, session_id, source, origin, meta, created_at)"
                        " VALUES (:id, 1, 's', 'llm', :meta, '2026-01-01')"
                    ),
                    {"id": i, "meta": json.dumps(meta)},
                )
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, iteration, block FROM candidate ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [
            (1, 0, 0),
            (2, 1, 0),
            (3, 1, 1),
            (4, 2, 0),
            (5, 2, 1),
            (6, 0, 1),
        ]
    finally:
        engine.dispose()
