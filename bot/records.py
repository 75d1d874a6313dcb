"""Writes of conversation facts staff review later."""

from __future__ import annotations

from bot.db import Database
from bot.models import Conversation, UnansweredQuestion

MAX_STORED_CHARS = 1000


def record_unanswered(
    db: Database, conversation_id: str, question: str, intent: str | None, best_score: float | None
) -> None:
    """Keep a question the assistant could not answer, so staff can add what patients ask for."""
    with db.session() as session:
        if session.get(Conversation, conversation_id) is None:  # a conversation started directly on Rasa
            session.add(Conversation(id=conversation_id, channel="rasa", handed_off=False))
            session.flush()
        session.add(
            UnansweredQuestion(
                conversation_id=conversation_id,
                question=question[:MAX_STORED_CHARS],
                intent=intent,
                best_score=best_score,
            )
        )
