"""Tables of the app database. Change them only together with a migration in bot/migrations/versions/."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a time zone; every time stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    """One patient conversation on one channel; its id is the Rasa sender id.

    The id is issued by the server and is not a credential: a web or API client proves it owns the
    conversation with a session token whose secret is stored here only as a hash (`token_hash`). Logs,
    staff notices and webhooks name a conversation by its opaque `reference`, never by the token.
    """

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    treatment_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    handed_off: Mapped[bool] = mapped_column(Boolean, default=False)
    reference: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # sha256 of the session secret
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The treatment stage the conversation established ("before" / "after"), when the date does not say.
    stage: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The clarifying question the assistant asked last about an unclear symptom report (protocol id).
    pending_question: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Message(Base):
    """One message of a conversation: what the patient wrote, what the assistant or staff answered.

    Assistant messages record the articles (and their versions) they quoted, so the clinic can show
    exactly what a patient was told.
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    sender: Mapped[str] = mapped_column(String(16))  # patient | assistant | staff
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # the chat API kind, for replies
    triage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    sources: Mapped[list[dict] | None] = mapped_column(JSON, nullable=True)  # [{"id", "title", "version"}]
    staff_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # True for a patient message staff should see (written while handed off); replies the patient sees.
    for_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # An urgent or emergency reply: whether staff were alerted (the widget says so only when they were).
    alerted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class UnansweredQuestion(Base):
    """A question the assistant could not answer from the knowledge base, for staff to review."""

    __tablename__ = "unanswered_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    question: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    best_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Staff (issue 12): why it is listed, and the group of similar questions staff deal with at once.
    # fallback | out_of_scope | low_confidence
    reason: Mapped[str] = mapped_column(String(16), default="fallback")
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("unanswered_groups.id"), nullable=True, index=True
    )


class TriageReview(Base):
    """A symptom report triage could not place with confidence: staff look at it (safety-netting)."""

    __tablename__ = "triage_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))  # unsure | unreadable_language | triage_error
    level: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
