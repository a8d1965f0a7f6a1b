"""web: a secret kept on the browser's session to be shown once after a redirect"""

import sqlalchemy as sa
from alembic import op

revision = "0004_h23"
# After search (0004_h25), which landed first.
down_revision = "0004_h25"


def upgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shown_once", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("shown_once")
