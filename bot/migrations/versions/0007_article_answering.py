"""What an article answers, kept with each version: its listed patient questions, the things it covers and
its counterparts at the other stage (front matter `questions`, `covers`, `counterparts`), as JSON.

Without them an article from the store is matched by its passages only, and the things check would find
every thing uncovered. Null: a version saved before these fields existed (it answers from its passages).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kb_article_versions") as batch:
        batch.add_column(sa.Column("answering", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kb_article_versions") as batch:
        batch.drop_column("answering")
