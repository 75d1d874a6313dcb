"""Staff accounts, the article store with versions and sign-offs, knowledge releases, the audit log, and
groups of unanswered questions (whose stored text is now redacted).

- staff_users, staff_sessions, staff_api_tokens: who may sign in or call the staff API.
- kb_articles, kb_article_versions, kb_signoffs: every version of every article, the version patients get,
  and the clinician sign-off of that exact version with its review-by date.
- kb_releases: each change of the published content; app instances swap their index when it changes.
- audit_log: who changed, approved, published or rolled back what, and when.
- unanswered_groups + unanswered_questions.reason/group_id; existing questions are redacted in place.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        _when("locked_until", nullable=True),
        _when("created_at"),
        _when("last_login_at", nullable=True),
        sa.UniqueConstraint("username", name="uq_staff_users_username"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("revoked_at", nullable=True),
    )
    op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"])
    op.create_table(
        "staff_api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        _when("created_at"),
        _when("last_used_at", nullable=True),
        _when("revoked_at", nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_staff_api_tokens_token_hash"),
    )
    op.create_index("ix_staff_api_tokens_user_id", "staff_api_tokens", ["user_id"])

    op.create_table(
        "kb_articles",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("head_version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _when("created_at"),
        _when("updated_at"),
    )
    op.create_index("ix_kb_articles_status", "kb_articles", ["status"])
    op.create_table(
        "kb_article_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("article_id", sa.String(80), sa.ForeignKey("kb_articles.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("days_first", sa.Integer(), nullable=True),
        sa.Column("days_last", sa.Integer(), nullable=True),
        sa.Column("source_section", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("note", sa.String(300), nullable=True),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=True),
        sa.Column("created_by", sa.String(80), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("article_id", "version", name="uq_kb_article_versions_version"),
    )
    op.create_index("ix_kb_article_versions_article_id", "kb_article_versions", ["article_id"])
    op.create_table(
        "kb_signoffs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("article_id", sa.String(80), sa.ForeignKey("kb_articles.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("clinician_id", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=True),
        sa.Column("clinician", sa.String(80), nullable=False),
        _when("signed_at"),
        sa.Column("review_by", sa.Date(), nullable=False),
        sa.Column("note", sa.String(300), nullable=True),
    )
    op.create_index("ix_kb_signoffs_article_version", "kb_signoffs", ["article_id", "version"])
    op.create_table(
        "kb_releases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("article_id", sa.String(80), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(80), nullable=False),
        _when("created_at"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _when("at"),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=True),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_type", sa.String(24), nullable=True),
        sa.Column("target_id", sa.String(80), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_user_id", "audit_log", ["user_id"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_target_id", "audit_log", ["target_id"])

    op.create_table(
        "unanswered_groups",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("representative", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        _when("created_at"),
        _when("resolved_at", nullable=True),
        sa.Column("resolved_by", sa.String(80), nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("article_id", sa.String(80), nullable=True),
    )
    op.create_index("ix_unanswered_groups_resolved_at", "unanswered_groups", ["resolved_at"])
    with op.batch_alter_table("unanswered_questions") as batch:
        batch.add_column(sa.Column("reason", sa.String(16), nullable=False, server_default="fallback"))
        batch.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_unanswered_questions_group_id", "unanswered_groups", ["group_id"], ["id"]
        )
        batch.create_index("ix_unanswered_questions_group_id", ["group_id"])
    _redact_existing_questions()


def _redact_existing_questions() -> None:
    """Questions kept before redaction existed lose their phone numbers, e-mail addresses and names."""
    from bot.staff.redaction import redact

    bind = op.get_bind()
    questions = sa.table("unanswered_questions", sa.column("id", sa.Integer), sa.column("question", sa.Text))
    for row_id, question in bind.execute(sa.select(questions.c.id, questions.c.question)).fetchall():
        cleaned = redact(question)
        if cleaned != question:
            bind.execute(questions.update().where(questions.c.id == row_id).values(question=cleaned))


def downgrade() -> None:
    with op.batch_alter_table("unanswered_questions") as batch:
        batch.drop_index("ix_unanswered_questions_group_id")
        batch.drop_constraint("fk_unanswered_questions_group_id", type_="foreignkey")
        batch.drop_column("group_id")
        batch.drop_column("reason")
    for table in (
        "unanswered_groups",
        "audit_log",
        "kb_releases",
        "kb_signoffs",
        "kb_article_versions",
        "kb_articles",
        "staff_api_tokens",
        "staff_sessions",
        "staff_users",
    ):
        op.drop_table(table)
