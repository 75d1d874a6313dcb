"""The public chat API (the web widget and integrators use it): `POST /api/chat` and the session's messages.

Sessions are issued by the server: a request without a session starts one and gets its token back; every
later request presents the token in the `X-Session-Token` header. A client never chooses a conversation id,
and an id alone opens nothing.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bot.api.deps import ClientDep, PipelineDep, ServicesDep
from bot.conversation import store
from bot.conversation.pipeline import BadMessage, IncomingMessage
from bot.conversation.sessions import HEADER, InvalidSession, NewSession, SessionsUnavailable, new_session
from bot.models import Conversation, as_utc
from bot.schemas import ERRORS, SESSION_ID_PATTERN, ChatMessage, ChatRequest, ChatResponse, ErrorResponse
from bot.services import Services

router = APIRouter(prefix="/api", tags=["chat"])

SessionId = Annotated[str, Path(max_length=64, pattern=SESSION_ID_PATTERN)]
TokenHeader = Annotated[str | None, Header(alias=HEADER, max_length=512)]
MAX_TREATMENT_AGE_DAYS = 3650
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _refused(status: int, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=detail, headers=headers)


async def verified(services: Services, token: str | None, session_id: str | None) -> str:
    """The conversation the token opens, or 401."""
    try:
        return await asyncio.to_thread(services.sessions.verify, token, session_id)
    except InvalidSession as error:
        raise _refused(401, str(error)) from error


@router.post("/chat", response_model=ChatResponse, responses=ERRORS)
async def chat(
    request: ChatRequest,
    pipeline: PipelineDep,
    services: ServicesDep,
    client: ClientDep,
    token: TokenHeader = None,
):
    """Send one patient message. Without a session (no `session_id`, no token) a new one starts."""
    conversation_id = None
    session: NewSession | None = None
    unconfirmed = False
    if request.session_id is not None or token:
        try:
            conversation_id = await verified(services, token, request.session_id)
        except SessionsUnavailable as error:
            # The records are down: the message is still triaged (escalations go to the spool).
            conversation_id, unconfirmed = error.conversation_id, True
        limited = not services.limits.message(client, conversation_id).allowed
    else:
        session = new_session()
        limited = (
            not services.limits.new_session(client).allowed
            or not services.limits.message(client, None).allowed
        )
    treatment_date, problem = _treatment_date(services, request.treatment_date)
    if problem:
        # A date that cannot be true is refused, unless the text is a red flag: then it is ignored and the
        # message gets its triage reply like any other (nothing is stored for a refused message).
        try:
            triage = await asyncio.to_thread(services.triage.assess, request.text)
            calm = not (triage.escalates or triage.unsure)
        except Exception:  # noqa: BLE001 - the pipeline's own triage gives the safety-netting reply
            calm = False
        if calm:
            return JSONResponse(
                ErrorResponse(
                    detail="invalid request", problems=[{"field": "treatment_date", "problem": problem}]
                ).model_dump(),
                status_code=422,
            )
    incoming = IncomingMessage(
        text=request.text,
        channel="api",
        conversation_id=conversation_id,
        treatment_date=treatment_date,
        source=client,
        new_session_hash=session.token_hash if session else None,
        answer=not limited,
        unconfirmed=unconfirmed,
    )
    try:
        result = await pipeline.handle(incoming)
    except BadMessage as error:
        text = services.replies.text(error.reply, **error.values)
        return JSONResponse(
            ErrorResponse(detail=text, problems=[{"field": "text", "problem": text}]).model_dump(),
            status_code=422,
        )
    if limited and not (result.triage.escalates or result.triage.unsure):
        return JSONResponse(
            ErrorResponse(detail=services.replies.text("slow_down")).model_dump(),
            status_code=429,
            headers={"Retry-After": "30"},
        )
    issued = None
    if session is not None and result.conversation_id is not None and result.created:
        services.limits.started(result.conversation_id)
        issued = services.sessions.token(result.conversation_id, session)
    return ChatResponse(session_id=result.conversation_id, session_token=issued, messages=result.messages)


def _treatment_date(services: Services, given: str | None) -> tuple[date | None, str | None]:
    """The treatment date the client sent, or the problem with it (None, None: none was sent)."""
    if given is None:
        return None, None
    try:
        stated = date.fromisoformat(given) if ISO_DATE.fullmatch(given) else None
    except ValueError:
        stated = None
    if stated is None:
        return None, "treatment_date must be a real date written YYYY-MM-DD"
    today = services.today()
    if stated > today:
        return (
            None,
            "treatment_date is in the future: send the date of a treatment that has happened (YYYY-MM-DD)",
        )
    if (today - stated).days > MAX_TREATMENT_AGE_DAYS:
        return None, "treatment_date is more than ten years ago: send the real date as YYYY-MM-DD"
    return stated, None


class ConversationMessage(ChatMessage):
    id: int
    sender: str  # patient | assistant | staff
    created_at: datetime


class ConversationMessages(BaseModel):
    session_id: str
    handed_off: bool
    messages: list[ConversationMessage]


@router.get("/conversations/{session_id}/messages", response_model=ConversationMessages, responses=ERRORS)
async def conversation_messages(
    session_id: SessionId,
    services: ServicesDep,
    client: ClientDep,
    token: TokenHeader = None,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> ConversationMessages:
    """The conversation's messages with an id above `after` (0 for all), oldest first: the widget shows
    the conversation again after a reload and polls here for staff replies during a handoff."""
    conversation_id = await verified(services, token, session_id)
    # Reads have their own allowance: a widget polling for staff replies must not use up the messages.
    if not services.limits.read(client).allowed:
        raise _refused(429, services.replies.text("slow_down"), {"Retry-After": "30"})

    def read() -> ConversationMessages:
        with services.db.session() as session:
            conversation = session.get(Conversation, conversation_id)
            handed_off = bool(conversation and conversation.handed_off)
        rows = [m for m in store.messages(services.db, conversation_id, after_id=after)]
        return ConversationMessages(
            session_id=conversation_id,
            handed_off=handed_off,
            messages=[
                ConversationMessage(
                    id=row.id,
                    sender=row.sender,
                    text=row.text,
                    kind=row.kind or ("handoff" if row.sender == "staff" else "answer"),
                    triage=row.triage or "none",
                    sources=row.sources or [],
                    alerted=row.alerted,
                    created_at=as_utc(row.created_at),
                )
                for row in rows
            ],
        )

    return await asyncio.to_thread(read)


@router.delete("/conversations/{session_id}", status_code=204, responses=ERRORS)
async def end_conversation(session_id: SessionId, services: ServicesDep, token: TokenHeader = None) -> None:
    """End the chat and forget this device: the token opens nothing any more (the clinic keeps its record)."""
    conversation_id = await verified(services, token, session_id)
    await asyncio.to_thread(services.sessions.end, conversation_id)
