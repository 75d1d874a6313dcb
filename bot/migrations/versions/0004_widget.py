"""The web widget: a reply records whether staff were alerted, so a reloaded chat says so only when true.

- messages.alerted: for urgent and emergency replies, whether clinic staff were durably alerted; null for
  every other message (and for replies written before this revision: the widget then says nothing).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("alerted", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("alerted")
