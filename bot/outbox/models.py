"""The outbox table: every message the app sends, staff alerts and patient replies alike."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base, utcnow

# Lower is sooner: an emergency alert never waits behind a routine reply.
PRIORITY = {"emergency": 0, "urgent": 1, "reminder": 2, "reply": 3, "checkin": 5}


class OutboxMessage(Base):
    """One message to one recipient over one channel, kept until it is delivered (or given up on).

    Staff alerts are composed from their escalation when they are sent (so they never copy the patient's
    words); patient and staff replies carry their `body`.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "priority", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # alert | reminder (staff, about an escalation) | reply (to a patient) | staff_reply | checkin.
    # Patient messages on SMS and WhatsApp: channel twilio | whatsapp_cloud, recipient = the conversation id
    # (the sender looks the number up in channel_contacts, so the number is stored once).
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=PRIORITY["reply"])
    channel: Mapped[str] = mapped_column(String(24))  # sms | email | webhook | whatsapp | ...
    recipient: Mapped[str] = mapped_column(String(255))
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"), nullable=True, index=True)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id"), nullable=True, index=True
    )
    body: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # Enqueueing twice (a duplicate message, two workers adding a reminder) cannot make a second row.
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    # pending | delivered | failed (gave up) | cancelled (no longer needed) | refused (must not be sent)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)  # SMS sid ...
    # The furthest delivery status the provider reported (Twilio callbacks, Meta status events).
    provider_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(128), nullable=True)  # an error class, no content
