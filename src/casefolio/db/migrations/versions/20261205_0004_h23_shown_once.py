"""web: a secret kept on the browser's session to be shown once after a redirect

Revision ID: 0004_h23
Revises: 0004_h25
Create Date: 2026-12-05 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_h23"
# After search (0004_h25), which landed first.
down_revision: str | None = "0004_h25"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shown_once", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("shown_once")
