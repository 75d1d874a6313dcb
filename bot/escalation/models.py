"""Tables for escalations and human handoff. Change them only together with a migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base, as_utc, utcnow

ESCALATING_LEVELS = ("urgent", "emergency")

__all__ = ["ESCALATING_LEVELS", "Escalation", "Handoff", "as_utc"]


class Escalation(Base):
    """A worrying message that staff must see: the one place the patient's words are kept for them.

    One per conversation and set of signs at a level: the same red flag said again in other words is not a
    new escalation, a worse level is. `aggregated` counts escalations that a flood from one source folded
    into this one instead of notifying staff again.
    """

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    severity: Mapped[str] = mapped_column(String(16))  # urgent | emergency
    concepts: Mapped[list[str]] = mapped_column(JSON, default=list)  # the protocol's sign ids
    channel: Mapped[str] = mapped_column(String(16))
    patient_text: Mapped[str] = mapped_column(Text)  # never logged, never put in a notification
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # Unique while the duplicate window lasts; afterwards it is retired by appending ":<id>" (see service).
    dedupe_key: Mapped[str] = mapped_column(String(96), unique=True, index=True)
    source: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # hashed client key
    aggregated: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    backup_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Handoff(Base):
    """A period in which staff, not the assistant, answer a conversation."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # patient_request | staff_reply
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
