"""Texting channels (SMS, WhatsApp): where replies go, inbound messages until handled, delivery events.

- channel_contacts: one row per SMS or WhatsApp conversation: the patient's number (needed to reply), the
  clinic number, the opt-out, the last inbound message (WhatsApp's 24-hour window), the numbered choices.
- inbound_messages: every acknowledged provider message, unique by provider id (redeliveries are duplicates).
- delivery_events: delivery statuses reported by Twilio's callbacks and Meta's status events.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_contacts",
        sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("clinic_address", sa.String(64), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending_buttons", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("provider", "provider_id", name="uq_inbound_provider_id"),
    )
    op.create_index("ix_inbound_status", "inbound_messages", ["status", "received_at"])
    op.create_index("ix_inbound_messages_conversation_id", "inbound_messages", ["conversation_id"])
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_ref", sa.String(128), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("error_code", sa.String(16), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "provider_ref", "status", name="uq_delivery_event"),
    )
    op.create_index("ix_delivery_events_provider_ref", "delivery_events", ["provider_ref"])


def downgrade() -> None:
    op.drop_table("delivery_events")
    op.drop_index("ix_inbound_messages_conversation_id", "inbound_messages")
    op.drop_index("ix_inbound_status", "inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("channel_contacts")
