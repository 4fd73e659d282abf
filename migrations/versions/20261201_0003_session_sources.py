"""session sources: project directory, archive or installed module; target, environment,
selected project tests

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "source_kind",
    "project_path",
    "module",
    "module_file",
    "target",
    "environment",
    "project_tests",
)


def upgrade() -> None:
    with op.batch_alter_table("optimization_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source_kind", sa.String(length=16), server_default="paste", nullable=False)
        )
        batch_op.add_column(sa.Column("project_path", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("module", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("module_file", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("target", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("environment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("project_tests", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("optimization_session", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
