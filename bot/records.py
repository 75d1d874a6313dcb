"""Writes of conversation facts staff review later."""

from __future__ import annotations

from bot.db import Database
from bot.models import Conversation, UnansweredQuestion
from bot.staff.redaction import redact

MAX_STORED_CHARS = 1000


def record_unanswered(
    db: Database,
    conversation_id: str,
    question: str,
    intent: str | None,
    best_score: float | None,
    reason: str = "fallback",
) -> None:
    """Keep a question the assistant could not answer (or answered with low confidence), so staff can add
    what patients ask for. Phone numbers, e-mail addresses and names are redacted before it is stored."""
    with db.session() as session:
        if session.get(Conversation, conversation_id) is None:  # a conversation started directly on Rasa
            session.add(Conversation(id=conversation_id, channel="rasa", handed_off=False))
            session.flush()
        session.add(
            UnansweredQuestion(
                conversation_id=conversation_id,
                question=redact(question[:MAX_STORED_CHARS]),
                intent=intent,
                best_score=best_score,
                reason=reason,
            )
        )
