"""Human handoff: staff take over a conversation, the assistant stops answering it until they hand it back.

While a conversation is handed off, the patient's messages are kept here for staff (Rasa never sees them),
and staff replies wait here until the patient's chat picks them up
(`GET /api/conversations/{id}/messages?after=<last id seen>`).
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from bot.db import Database
from bot.escalation.models import Handoff, HandoffMessage
from bot.models import Conversation, utcnow
from knowledge.clinic import ClinicProfile

HANDOFF_BUTTON = {"title": "Talk to a person", "payload": "/request_human"}


def handoff_text(clinic: ClinicProfile) -> str:
    """What the patient is told when staff take over."""
    return (
        f"I've asked the team at {clinic.name} to take over. A member of staff will reply here "
        f"({clinic.hours}), or you can call {clinic.phone}."
    )


def waiting_text(clinic: ClinicProfile) -> str:
    """The reply to each message while staff have the conversation."""
    return f"A member of staff at {clinic.name} will answer here. If it can't wait, call {clinic.phone}."


def hand_off(db: Database, conversation_id: str, reason: str, channel: str = "rasa") -> bool:
    """Give the conversation to staff; False if it already was. Starts the conversation if it is unknown
    (a conversation can begin directly on Rasa)."""
    with db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            conversation = Conversation(id=conversation_id, channel=channel, handed_off=False)
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


def record_patient_message(db: Database, conversation_id: str, text: str) -> None:
    """Keep what the patient wrote while staff have the conversation, for staff to read."""
    with db.session() as session:
        session.add(HandoffMessage(conversation_id=conversation_id, sender="patient", text=text))


def post_staff_reply(
    db: Database, conversation_id: str, text: str, staff_name: str | None
) -> HandoffMessage | None:
    """Store a staff reply for the patient (handing the conversation off if it was not); None if unknown."""
    with db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            return None
        _start(session, conversation, "staff_reply")
        reply = HandoffMessage(
            conversation_id=conversation_id, sender="staff", staff_name=staff_name, text=text
        )
        session.add(reply)
        session.flush()
        return reply


def messages(
    db: Database, conversation_id: str, after_id: int = 0, sender: str | None = None
) -> list[HandoffMessage]:
    """The handoff messages of a conversation with an id above `after_id`, oldest first."""
    query = select(HandoffMessage).where(
        HandoffMessage.conversation_id == conversation_id, HandoffMessage.id > after_id
    )
    if sender is not None:
        query = query.where(HandoffMessage.sender == sender)
    with db.session() as session:
        return list(session.scalars(query.order_by(HandoffMessage.id)))


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
