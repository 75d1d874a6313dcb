"""Conversation rows and their messages: what was said, by whom, and what the assistant quoted."""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.db import Database
from bot.models import Conversation, Message, TriageReview, utcnow

MAX_STORED_CHARS = 4000


def new_conversation(channel: str, token_hash: str | None = None) -> Conversation:
    """A new conversation row: a server-made id namespaced by channel, and an opaque reference."""
    return Conversation(
        id=f"{channel}-{uuid.uuid4().hex}",
        channel=channel,
        handed_off=False,
        reference="C" + secrets.token_hex(6).upper(),
        token_hash=token_hash,
    )


def recent_patient_texts(db: Database, conversation_id: str, limit: int, since: timedelta) -> list[str]:
    """The patient's last `limit` messages within `since`, oldest first (for conversation-level triage)."""
    query = (
        select(Message.text)
        .where(Message.conversation_id == conversation_id, Message.sender == "patient")
        .where(Message.created_at > utcnow() - since)
        .order_by(Message.id.desc())
        .limit(limit)
    )
    with db.session() as session:
        return list(reversed(session.scalars(query).all()))


def add_message(
    db: Database,
    conversation_id: str,
    sender: str,
    text: str,
    *,
    kind: str | None = None,
    triage: str | None = None,
    sources: list[dict] | None = None,
    staff_name: str | None = None,
    for_staff: bool = False,
    alerted: bool | None = None,
) -> Message:
    with db.session() as session:
        message = Message(
            conversation_id=conversation_id,
            sender=sender,
            text=text[:MAX_STORED_CHARS],
            kind=kind,
            triage=triage,
            sources=sources,
            staff_name=staff_name,
            for_staff=for_staff,
            alerted=alerted,
            created_at=utcnow(),
        )
        session.add(message)
        session.flush()
        return message


def messages(
    db: Database, conversation_id: str, after_id: int = 0, senders: tuple[str, ...] | None = None
) -> list[Message]:
    """Messages of a conversation with an id above `after_id`, oldest first."""
    query = select(Message).where(Message.conversation_id == conversation_id, Message.id > after_id)
    if senders is not None:
        query = query.where(Message.sender.in_(senders))
    with db.session() as session:
        return list(session.scalars(query.order_by(Message.id)))


def add_review(db: Database, conversation_id: str, text: str, reason: str, level: str) -> None:
    """Put a message on the staff's triage review list."""
    with db.session() as session:
        session.add(
            TriageReview(
                conversation_id=conversation_id, text=text[:MAX_STORED_CHARS], reason=reason, level=level
            )
        )


def treatment_day_of(conversation: Conversation, today: date) -> int | None:
    if conversation.treatment_date is None:
        return None
    return max(0, (today - conversation.treatment_date).days)


def as_utc_or_none(moment: datetime | None) -> datetime | None:
    from bot.models import as_utc

    return as_utc(moment) if moment else None
