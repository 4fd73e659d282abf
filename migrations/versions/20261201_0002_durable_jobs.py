"""durable jobs; candidate iteration numbers as a column, unique per session

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 20:30:00

Adds the ``job`` table (with the partial unique index that lets at most one session-changing
job be queued or running per session), ``evaluation.job_id`` and ``candidate.iteration`` /
``candidate.block`` with the unique constraint (session_id, iteration, block). Existing rows
get their numbers from ``candidate.meta["iteration"]`` / ``["block"]``; where two rows would
collide (several hand edits once shared a number by a race) the later one gets the next free
block, so nothing is renumbered on the chart's x axis.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("started_by", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("holds_session", sa.Boolean(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("routing_tail", sa.JSON(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("rerun_of", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rerun_of"], ["job.id"], name=op.f("fk_job_rerun_of_job"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["optimization_session.id"],
            name=op.f("fk_job_session_id_optimization_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_state", ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_session_id"), ["session_id"], unique=False)
        batch_op.create_index(
            "uq_job_session_busy",
            ["session_id"],
            unique=True,
            sqlite_where=sa.text("holds_session = 1 AND state IN ('queued', 'running')"),
            postgresql_where=sa.text("holds_session AND state IN ('queued', 'running')"),
        )

    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_evaluation_job_id_job"), "job", ["job_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("candidate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("iteration", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("block", sa.Integer(), nullable=True))

    conn = op.get_bind()
    cand = sa.table(
        "candidate",
        sa.column("id", sa.Integer),
        sa.column("session_id", sa.Integer),
        sa.column("meta", sa.JSON),
        sa.column("iteration", sa.Integer),
        sa.column("block", sa.Integer),
    )
    used: dict[int, set[tuple[int, int]]] = {}
    rows = conn.execute(sa.select(cand.c.id, cand.c.session_id, cand.c.meta).order_by(cand.c.id))
    for cid, sid, meta in rows.fetchall():
        meta = meta if isinstance(meta, dict) else {}
        iteration = _int(meta.get("iteration"))
        block = _int(meta.get("block"))
        taken = used.setdefault(sid, set())
        while (iteration, block) in taken:
            block += 1
        taken.add((iteration, block))
        conn.execute(
            sa.update(cand).where(cand.c.id == cid).values(iteration=iteration, block=block)
        )

    with op.batch_alter_table("candidate", schema=None) as batch_op:
        batch_op.alter_column("iteration", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("block", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(
            "uq_candidate_iteration", ["session_id", "iteration", "block"]
        )


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def downgrade() -> None:
    with op.batch_alter_table("candidate", schema=None) as batch_op:
        batch_op.drop_constraint("uq_candidate_iteration", type_="unique")
        batch_op.drop_column("block")
        batch_op.drop_column("iteration")
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_evaluation_job_id_job"), type_="foreignkey")
        batch_op.drop_column("job_id")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("uq_job_session_busy")
        batch_op.drop_index(batch_op.f("ix_job_session_id"))
        batch_op.drop_index("ix_job_state")
    op.drop_table("job")
