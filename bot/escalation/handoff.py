"""Human handoff: staff take over a conversation, the assistant stops answering it until they hand it back.

While a conversation is handed off, the patient's messages are kept for staff (Rasa never sees them) and
staff replies reach the patient: in the web chat they appear on the next poll
(`GET /api/conversations/{id}/messages`); on SMS and WhatsApp they are sent through the outbox.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from bot.channels.outgoing import queue_staff_reply
from bot.conversation import store
from bot.db import Database
from bot.escalation.models import Handoff
from bot.models import Conversation, Message, utcnow
from bot.outbox.queue import Outbox


def hand_off(db: Database, conversation_id: str, reason: str, channel: str = "rasa") -> bool:
    """Give the conversation to staff; False if it already was. Starts the conversation if it is unknown
    (a conversation can begin directly on Rasa)."""
    with db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            conversation = store.new_conversation(channel)
            conversation.id = conversation_id
            session.add(conversation)
            session.flush()  # before the handoff row that refers to it
        return _start(session, conversation, reason)


def hand_back(db: Database, conversation_id: str, staff_name: str | None) -> bool | None:
    """Give the conversation back to the assistant; None if unknown, False if it was not handed off."""
    with db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            return None
        if not conversation.handed_off:
            return False
        conversation.handed_off = False
        for handoff in session.scalars(_open_handoffs(conversation_id)):
            handoff.ended_at, handoff.ended_by = utcnow(), staff_name
        return True


def post_staff_reply(
    db: Database, conversation_id: str, text: str, staff_name: str | None, outbox: Outbox | None = None
) -> Message | None:
    """Store a staff reply for the patient (handing the conversation off if it was not); None if unknown.

    On SMS and WhatsApp the reply is queued in the outbox in the same transaction (pass the app's `outbox`
    to have it sent at once rather than on the worker's next poll)."""
    with db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            return None
        _start(session, conversation, "staff_reply")
        reply = Message(
            conversation_id=conversation_id,
            sender="staff",
            staff_name=staff_name,
            text=text,
            kind="handoff",
            triage="none",
            created_at=utcnow(),
        )
        session.add(reply)
        session.flush()
        queued = queue_staff_reply(session, conversation_id, reply.id, text, outbox)
    if queued and outbox is not None:
        outbox.wake()
    return reply


def handed_off(db: Database) -> list[tuple[Conversation, Handoff | None]]:
    """Conversations staff have now, each with the handoff that started it, longest waiting first."""
    query = (
        select(Conversation, Handoff)
        .outerjoin(Handoff, (Handoff.conversation_id == Conversation.id) & Handoff.ended_at.is_(None))
        .where(Conversation.handed_off.is_(True))
        .order_by(Handoff.started_at)
    )
    with db.session() as session:
        return [(conversation, handoff) for conversation, handoff in session.execute(query)]


def _start(session: Session, conversation: Conversation, reason: str) -> bool:
    if conversation.handed_off:
        return False
    conversation.handed_off = True
    session.add(Handoff(conversation_id=conversation.id, reason=reason))
    return True


def _open_handoffs(conversation_id: str) -> Select[tuple[Handoff]]:
    return select(Handoff).where(Handoff.conversation_id == conversation_id, Handoff.ended_at.is_(None))
