"""Tables of the texting channels (SMS and WhatsApp). Change them only together with a migration.

A phone number is personal data: it is stored once, in `channel_contacts.address`, because replies must
reach it; conversation ids and rate-limit keys carry a keyed hash of it, and logs carry neither.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base, utcnow


class ChannelContact(Base):
    """Where the replies of one SMS or WhatsApp conversation go, and what the patient agreed to."""

    __tablename__ = "channel_contacts"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | whatsapp
    provider: Mapped[str] = mapped_column(String(16))  # twilio | meta: the one the last message came through
    address: Mapped[str] = mapped_column(String(64))  # the patient's number as the provider spells it
    clinic_address: Mapped[str] = mapped_column(String(64))  # the clinic number (Meta: phone number id)
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # WhatsApp's customer-service window: free-form messages only within 24 hours of the patient's last one.
    last_inbound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The numbered choices of the last reply ([{"title", "payload"}]): "2" means the second one.
    pending_buttons: Mapped[list[dict] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InboundMessage(Base):
    """A provider's message, kept from the moment it is acknowledged until its reply is queued.

    The unique (provider, provider_id) pair makes a redelivered message (Twilio retrying, Meta retrying for
    days, two deliveries at once) a duplicate. `envelope` holds what processing needs and is cleared once
    the message was handled (the conversation keeps the patient's words).
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("provider", "provider_id", name="uq_inbound_provider_id"),
        Index("ix_inbound_status", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(128))  # MessageSid / wamid
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    envelope: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="received")  # received | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DeliveryEvent(Base):
    """A delivery status the provider reported for a message the app sent (Twilio callback, Meta status)."""

    __tablename__ = "delivery_events"
    __table_args__ = (UniqueConstraint("provider", "provider_ref", "status", name="uq_delivery_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str] = mapped_column(String(128), index=True)  # message sid / wamid
    status: Mapped[str] = mapped_column(String(24))  # queued|sent|delivered|read|undelivered|failed
    error_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
