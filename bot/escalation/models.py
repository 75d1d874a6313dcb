"""Tables for escalations, their staff notifications (the outbox) and human handoff.

Change them only together with a migration (bot/migrations/versions/0002_escalations.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base, utcnow

ESCALATING_LEVELS = ("urgent", "emergency")


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a time zone; every time stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Escalation(Base):
    """A worrying message that staff must see: the one place the patient's words are kept for them."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    severity: Mapped[str] = mapped_column(String(16))  # urgent | emergency
    concepts: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel: Mapped[str] = mapped_column(String(16))
    patient_text: Mapped[str] = mapped_column(Text)  # never logged, never put in a notification
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # Unique while the duplicate window lasts; afterwards it is retired by appending ":<id>" (see service).
    dedupe_key: Mapped[str] = mapped_column(String(96), unique=True, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    backup_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StaffNotification(Base):
    """One message to one recipient over one channel, in the outbox until it is delivered."""

    __tablename__ = "staff_notifications"
    __table_args__ = (
        # Enqueueing twice (duplicate message, two workers adding the reminder) cannot make a second row.
        UniqueConstraint(
            "escalation_id", "purpose", "channel", "recipient", name="uq_staff_notifications_once"
        ),
        Index("ix_staff_notifications_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # alert | reminder (to the backup contact)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email | webhook
    recipient: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed|cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(255), nullable=True)  # SMS sid, Message-ID
    last_error: Mapped[str | None] = mapped_column(String(128), nullable=True)  # an error class, no content


class Handoff(Base):
    """A period in which staff, not the assistant, answer a conversation."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # patient_request | staff_reply
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class HandoffMessage(Base):
    """A message in a handed-off conversation: what the patient wrote to staff, or a staff reply."""

    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    sender: Mapped[str] = mapped_column(String(16))  # patient | staff
    staff_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
