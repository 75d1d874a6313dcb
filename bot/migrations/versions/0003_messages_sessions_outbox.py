"""Every message of a conversation; server-issued sessions; one outbox for everything the app sends.

- conversations: an opaque reference for logs and notices, the hash of the session secret, end time,
  the treatment stage and the pending clarifying question.
- messages: patient, assistant and staff messages (replaces handoff_messages).
- escalations: the source that raised them and how many further ones were folded in.
- outbox: replaces staff_notifications, with a kind, a priority and a body for patient messages.
- triage_reviews: symptom reports triage could not place, for staff.

Revision ID: 0003
Revises: 0002
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PRIORITY = {"emergency": 0, "urgent": 1, "reminder": 2}


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("reference", sa.String(16), nullable=True))
        batch.add_column(sa.Column("token_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("stage", sa.String(8), nullable=True))
        batch.add_column(sa.Column("pending_question", sa.String(32), nullable=True))
        batch.create_unique_constraint("uq_conversations_reference", ["reference"])
    bind = op.get_bind()
    conversations = sa.table("conversations", sa.column("id", sa.String), sa.column("reference", sa.String))
    for (conversation_id,) in bind.execute(sa.select(conversations.c.id)).fetchall():
        bind.execute(
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(reference="C" + secrets.token_hex(6))
        )

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("triage", sa.String(16), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=True),
        sa.Column("staff_name", sa.String(64), nullable=True),
        sa.Column("for_staff", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "id"])
    op.execute(
        "INSERT INTO messages (conversation_id, sender, text, kind, staff_name, for_staff, created_at) "
        "SELECT conversation_id, sender, text, 'handoff', staff_name, sender = 'patient', created_at "
        "FROM handoff_messages ORDER BY id"
    )
    op.drop_table("handoff_messages")

    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("source", sa.String(32), nullable=True))
        batch.add_column(sa.Column("aggregated", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_escalations_source", ["source"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(24), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("escalation_id", sa.Integer(), sa.ForeignKey("escalations.id"), nullable=True),
        sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("dedupe_key", sa.String(160), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_ref", sa.String(255), nullable=True),
        sa.Column("provider_status", sa.String(24), nullable=True),
        sa.Column("last_error", sa.String(128), nullable=True),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "priority", "next_attempt_at"])
    op.create_index("ix_outbox_escalation_id", "outbox", ["escalation_id"])
    op.create_index("ix_outbox_conversation_id", "outbox", ["conversation_id"])
    op.create_index("ix_outbox_provider_ref", "outbox", ["provider_ref"])
    op.execute(
        "INSERT INTO outbox (kind, priority, channel, recipient, escalation_id, dedupe_key, status, "
        "attempts, "
        "next_attempt_at, claimed_by, claimed_until, created_at, delivered_at, provider_ref, last_error) "
        "SELECT n.purpose, CASE WHEN n.purpose = 'reminder' THEN 2 WHEN e.severity = 'emergency' THEN 0 "
        "ELSE 1 END, n.channel, n.recipient, n.escalation_id, "
        "'esc' || n.escalation_id || '-' || n.purpose || '-' || n.channel || '-' || n.recipient, n.status, "
        "n.attempts, n.next_attempt_at, n.claimed_by, n.claimed_until, n.created_at, n.delivered_at, "
        "n.provider_ref, n.last_error "
        "FROM staff_notifications n JOIN escalations e ON e.id = n.escalation_id ORDER BY n.id"
    )
    op.drop_table("staff_notifications")

    op.create_table(
        "triage_reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_triage_reviews_conversation_id", "triage_reviews", ["conversation_id"])
    op.create_index("ix_triage_reviews_created_at", "triage_reviews", ["created_at"])


def downgrade() -> None:
    raise NotImplementedError("0003 folds two tables into new ones; restore a backup to go back")
