"""Patient side of human handoff: the chat widget polls here for staff replies.

`GET /api/conversations/{session_id}/messages?after=<id>` returns the staff replies with an id above `after`
(0 for all), oldest first; the widget keeps the last id it showed. `handed_off` says whether staff still
have the conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from bot.api.deps import ServicesDep
from bot.escalation import handoff
from bot.escalation.models import as_utc
from bot.models import Conversation
from bot.schemas import ChatMessage

router = APIRouter(prefix="/api", tags=["chat"])

SessionId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class StaffMessage(ChatMessage):
    id: int
    created_at: datetime


class StaffMessages(BaseModel):
    session_id: str
    handed_off: bool
    messages: list[StaffMessage]


@router.get("/conversations/{session_id}/messages", response_model=StaffMessages)
def staff_messages(
    session_id: SessionId, services: ServicesDep, after: Annotated[int, Query(ge=0)] = 0
) -> StaffMessages:
    """Staff replies to this conversation newer than message `after` (a plain function: runs in a thread)."""
    with services.db.session() as session:
        conversation = session.get(Conversation, session_id)
    if conversation is None:
        raise HTTPException(status_code=404, detail="no such conversation")
    replies = handoff.messages(services.db, session_id, after_id=after, sender="staff")
    return StaffMessages(
        session_id=session_id,
        handed_off=conversation.handed_off,
        messages=[
            StaffMessage(id=reply.id, text=reply.text, kind="handoff", created_at=as_utc(reply.created_at))
            for reply in replies
        ],
    )
