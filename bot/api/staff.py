"""The staff API (`/admin`, bearer token `ASSISTANT_STAFF_TOKEN`): escalations, handoff, unanswered questions.

Endpoints are plain functions: FastAPI runs them in its thread pool, so database waits never block chats.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.deps import ServicesDep, checked_first
from bot.conversation import store
from bot.escalation import handoff
from bot.escalation.models import Escalation
from bot.models import Conversation, Message, TriageReview, UnansweredQuestion, as_utc
from bot.outbox.models import OutboxMessage
from bot.outbox.worker import backlog
from bot.schemas import ErrorResponse

_bearer = HTTPBearer(auto_error=False, description="the staff token (ASSISTANT_STAFF_TOKEN)")


def require_staff(
    services: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Every /admin route: a valid staff bearer token, compared in constant time."""
    _check_token(services.settings.staff_token, credentials.credentials if credentials else None)


def _staff_first(request: Request) -> None:
    """The same check on the bare request, before the body is read (see `checked_first`)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = request.app.state.services.settings.staff_token
    _check_token(expected, token if scheme.lower() == "bearer" else None)


def _check_token(expected: str, given: str | None) -> None:
    # Bytes, so a header with any characters compares without raising.
    if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="a valid staff token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(
    prefix="/admin",
    tags=["staff"],
    dependencies=[Depends(require_staff)],
    route_class=checked_first(_staff_first),
    responses={
        401: {"model": ErrorResponse, "description": "missing or wrong staff token"},
        404: {"model": ErrorResponse, "description": "no such escalation or conversation"},
    },
)

ConversationId = Annotated[str, Path(max_length=64)]
EscalationId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # SQLite's integers end at 2^63
StaffName = Annotated[str | None, Field(default=None, max_length=64, description="who, for the record")]


class NotificationOut(BaseModel):
    channel: str
    purpose: str  # alert | reminder
    status: str
    attempts: int
    delivered_at: datetime | None
    last_error: str | None


class EscalationOut(BaseModel):
    id: int
    conversation_id: str
    conversation_reference: str | None
    severity: str
    concepts: list[str]
    channel: str
    patient_text: str
    created_at: datetime
    aggregated: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    notifications: list[NotificationOut]


class Acknowledgement(BaseModel):
    staff_name: StaffName


class HandedOffConversation(BaseModel):
    conversation_id: str
    channel: str
    reason: str | None
    since: datetime | None


class HandoffMessageOut(BaseModel):
    id: int
    sender: Literal["patient", "assistant", "staff"]
    staff_name: str | None
    text: str
    created_at: datetime


class StaffReply(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    staff_name: StaffName


class HandBack(BaseModel):
    staff_name: StaffName


class UnansweredOut(BaseModel):
    id: int
    conversation_id: str
    question: str
    intent: str | None
    best_score: float | None
    created_at: datetime


@router.get("/escalations", response_model=list[EscalationOut])
def list_escalations(
    services: ServicesDep,
    status_filter: Annotated[Literal["open", "acknowledged", "all"], Query(alias="status")] = "all",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EscalationOut]:
    """Escalations, newest first, with the delivery state of their staff notifications."""
    rows = services.escalations.recent(None if status_filter == "all" else status_filter, limit)
    notifications = services.escalations.notifications([row.id for row in rows])
    references = _references(services, {row.conversation_id for row in rows})
    return [_escalation_out(row, notifications[row.id], references.get(row.conversation_id)) for row in rows]


@router.post("/escalations/{escalation_id}/acknowledge", response_model=EscalationOut)
def acknowledge(
    escalation_id: EscalationId, services: ServicesDep, body: Acknowledgement | None = None
) -> EscalationOut:
    """Someone is dealing with it: stops the reminder to the backup contact. Repeating it changes nothing."""
    row = services.escalations.acknowledge(escalation_id, body.staff_name if body else None)
    if row is None:
        raise HTTPException(status_code=404, detail="no such escalation")
    reference = _references(services, {row.conversation_id}).get(row.conversation_id)
    return _escalation_out(row, services.escalations.notifications([row.id])[row.id], reference)


@router.get("/conversations/handed-off", response_model=list[HandedOffConversation])
def handed_off_conversations(services: ServicesDep) -> list[HandedOffConversation]:
    """Conversations staff have taken over, longest waiting first."""
    return [
        HandedOffConversation(
            conversation_id=conversation.id,
            channel=conversation.channel,
            reason=started.reason if started else None,
            since=as_utc(started.started_at) if started else None,
        )
        for conversation, started in handoff.handed_off(services.db)
    ]


@router.get("/conversations/{conversation_id}/messages", response_model=list[HandoffMessageOut])
def conversation_messages(conversation_id: ConversationId, services: ServicesDep) -> list[HandoffMessageOut]:
    """The conversation's messages (patient, assistant, staff), oldest first."""
    _require_conversation(services, conversation_id)
    return [_message_out(message) for message in store.messages(services.db, conversation_id)]


@router.post("/conversations/{conversation_id}/messages", response_model=HandoffMessageOut, status_code=201)
def post_reply(conversation_id: ConversationId, body: StaffReply, services: ServicesDep) -> HandoffMessageOut:
    """Reply to the patient (they see it on their next poll). Replying takes the conversation over."""
    reply = handoff.post_staff_reply(services.db, conversation_id, body.text, body.staff_name)
    if reply is None:
        raise HTTPException(status_code=404, detail="no such conversation")
    return _message_out(reply)


@router.post("/conversations/{conversation_id}/hand-back")
def hand_back(conversation_id: ConversationId, services: ServicesDep, body: HandBack | None = None) -> dict:
    """The assistant answers this conversation again."""
    changed = handoff.hand_back(services.db, conversation_id, body.staff_name if body else None)
    if changed is None:
        raise HTTPException(status_code=404, detail="no such conversation")
    return {"conversation_id": conversation_id, "handed_off": False, "changed": changed}


@router.get("/unanswered-questions", response_model=list[UnansweredOut])
def unanswered_questions(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[UnansweredOut]:
    """Questions the assistant could not answer from the knowledge base, newest first."""
    query = select(UnansweredQuestion).order_by(UnansweredQuestion.id.desc()).limit(limit)
    with services.db.session() as session:
        rows = session.scalars(query).all()
    return [
        UnansweredOut(
            id=row.id,
            conversation_id=row.conversation_id,
            question=row.question,
            intent=row.intent,
            best_score=row.best_score,
            created_at=as_utc(row.created_at),
        )
        for row in rows
    ]


def _require_conversation(services: ServicesDep, conversation_id: str) -> None:
    with services.db.session() as session:
        if session.get(Conversation, conversation_id) is None:
            raise HTTPException(status_code=404, detail="no such conversation")


def _references(services: ServicesDep, conversation_ids: set[str]) -> dict[str, str | None]:
    with services.db.session() as session:
        rows = session.execute(
            select(Conversation.id, Conversation.reference).where(Conversation.id.in_(conversation_ids))
        ).all()
    return {conversation_id: reference for conversation_id, reference in rows}


def _escalation_out(
    row: Escalation, notifications: list[OutboxMessage], reference: str | None
) -> EscalationOut:
    return EscalationOut(
        id=row.id,
        conversation_id=row.conversation_id,
        conversation_reference=reference,
        severity=row.severity,
        concepts=row.concepts,
        channel=row.channel,
        patient_text=row.patient_text,
        created_at=as_utc(row.created_at),
        aggregated=row.aggregated,
        acknowledged_at=row.acknowledged_at and as_utc(row.acknowledged_at),
        acknowledged_by=row.acknowledged_by,
        notifications=[
            NotificationOut(
                channel=n.channel,
                purpose=n.kind,
                status=n.status,
                attempts=n.attempts,
                delivered_at=n.delivered_at and as_utc(n.delivered_at),
                last_error=n.last_error,
            )
            for n in notifications
        ],
    )


def _message_out(message: Message) -> HandoffMessageOut:
    return HandoffMessageOut(
        id=message.id,
        sender=message.sender,
        staff_name=message.staff_name,
        text=message.text,
        created_at=as_utc(message.created_at),
    )


class TriageReviewOut(BaseModel):
    id: int
    conversation_id: str
    text: str
    reason: str
    level: str
    created_at: datetime


@router.get("/triage-reviews", response_model=list[TriageReviewOut])
def triage_reviews(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[TriageReviewOut]:
    """Symptom reports triage could not place with confidence (the patient got safety-netting advice)."""
    query = (
        select(TriageReview)
        .where(TriageReview.reviewed_at.is_(None))
        .order_by(TriageReview.id.desc())
        .limit(limit)
    )
    with services.db.session() as session:
        rows = session.scalars(query).all()
    return [
        TriageReviewOut(
            id=r.id,
            conversation_id=r.conversation_id,
            text=r.text,
            reason=r.reason,
            level=r.level,
            created_at=as_utc(r.created_at),
        )
        for r in rows
    ]


class OutboxStatus(BaseModel):
    pending: int
    oldest_pending_seconds: float | None
    failed: int


@router.get("/outbox", response_model=OutboxStatus)
def outbox_status(services: ServicesDep) -> OutboxStatus:
    """How much is waiting to be sent, and for how long."""
    waiting = backlog(services.db)
    return OutboxStatus(
        pending=waiting.pending, oldest_pending_seconds=waiting.oldest_pending_seconds, failed=waiting.failed
    )
