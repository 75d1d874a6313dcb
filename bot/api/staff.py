"""The staff JSON API (`/admin/...`): escalations, handoff, unanswered questions, triage reviews, outbox.

Every call carries a personal token (`Authorization: Bearer <token>`, made on the Account page of the
admin UI or with `python -m bot.staff create-token`); the acting user is the token's owner, never a name in
the request. Patients' words are for the `care` roles (clinician, admin). The article endpoints are in
bot/staff/api.py.

Endpoints are plain functions: FastAPI runs them in its thread pool, so database waits never block chats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.deps import ServicesDep
from bot.conversation import store
from bot.escalation import handoff
from bot.escalation.models import Escalation
from bot.models import Conversation, Message, TriageReview, UnansweredQuestion, as_utc
from bot.outbox.models import OutboxMessage
from bot.outbox.worker import backlog
from bot.staff import audit
from bot.staff.accounts import UserInfo
from bot.staff.auth import api_permission, api_router

router = api_router(tags=["staff"])

CareStaff = Annotated[UserInfo, Depends(api_permission("care"))]
ContentStaff = Annotated[UserInfo, Depends(api_permission("questions"))]
ConversationId = Annotated[str, Path(max_length=64)]
EscalationId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # SQLite's integers end at 2^63


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


class UnansweredOut(BaseModel):
    id: int
    question: str  # redacted: no phone numbers, e-mail addresses or names
    reason: str  # fallback | out_of_scope | low_confidence
    intent: str | None
    best_score: float | None
    created_at: datetime


@router.get("/escalations", response_model=list[EscalationOut])
def list_escalations(
    services: ServicesDep,
    user: CareStaff,
    status_filter: Annotated[Literal["open", "acknowledged", "all"], Query(alias="status")] = "all",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EscalationOut]:
    """Escalations, newest first, with the delivery state of their staff notifications."""
    rows = services.escalations.recent(None if status_filter == "all" else status_filter, limit)
    notifications = services.escalations.notifications([row.id for row in rows])
    references = _references(services, {row.conversation_id for row in rows})
    return [_escalation_out(row, notifications[row.id], references.get(row.conversation_id)) for row in rows]


@router.post("/escalations/{escalation_id}/acknowledge", response_model=EscalationOut)
def acknowledge(escalation_id: EscalationId, services: ServicesDep, user: CareStaff) -> EscalationOut:
    """Someone is dealing with it: stops the reminder to the backup contact. Repeating it changes nothing."""
    row = services.escalations.acknowledge(escalation_id, user.display_name)
    if row is None:
        raise HTTPException(status_code=404, detail="no such escalation")
    audit.write(
        services.db, user.actor, "escalation_acknowledged", target_type="escalation", target_id=str(row.id)
    )
    reference = _references(services, {row.conversation_id}).get(row.conversation_id)
    return _escalation_out(row, services.escalations.notifications([row.id])[row.id], reference)


@router.get("/conversations/handed-off", response_model=list[HandedOffConversation])
def handed_off_conversations(services: ServicesDep, user: CareStaff) -> list[HandedOffConversation]:
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
def conversation_messages(
    conversation_id: ConversationId, services: ServicesDep, user: CareStaff
) -> list[HandoffMessageOut]:
    """The conversation's messages (patient, assistant, staff), oldest first."""
    _require_conversation(services, conversation_id)
    return [_message_out(message) for message in store.messages(services.db, conversation_id)]


@router.post("/conversations/{conversation_id}/messages", response_model=HandoffMessageOut, status_code=201)
def post_reply(
    conversation_id: ConversationId, body: StaffReply, services: ServicesDep, user: CareStaff
) -> HandoffMessageOut:
    """Reply to the patient (they see it on their next poll). Replying takes the conversation over."""
    reply = handoff.post_staff_reply(
        services.db, conversation_id, body.text, user.display_name, services.outbox
    )
    if reply is None:
        raise HTTPException(status_code=404, detail="no such conversation")
    audit.write(
        services.db, user.actor, "staff_replied", target_type="conversation", target_id=conversation_id
    )
    return _message_out(reply)


@router.post("/conversations/{conversation_id}/hand-back")
def hand_back(conversation_id: ConversationId, services: ServicesDep, user: CareStaff) -> dict:
    """The assistant answers this conversation again."""
    changed = handoff.hand_back(services.db, conversation_id, user.display_name)
    if changed is None:
        raise HTTPException(status_code=404, detail="no such conversation")
    if changed:
        audit.write(
            services.db, user.actor, "handed_back", target_type="conversation", target_id=conversation_id
        )
    return {"conversation_id": conversation_id, "handed_off": False, "changed": changed}


@router.get("/unanswered-questions", response_model=list[UnansweredOut])
def unanswered_questions(
    services: ServicesDep, user: ContentStaff, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[UnansweredOut]:
    """Questions the assistant could not answer from the knowledge base, newest first."""
    query = select(UnansweredQuestion).order_by(UnansweredQuestion.id.desc()).limit(limit)
    with services.db.session() as session:
        rows = session.scalars(query).all()
    return [
        UnansweredOut(
            id=row.id,
            question=row.question,
            reason=row.reason,
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
    services: ServicesDep, user: CareStaff, limit: Annotated[int, Query(ge=1, le=500)] = 100
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
def outbox_status(services: ServicesDep, user: CareStaff) -> OutboxStatus:
    """How much is waiting to be sent, and for how long."""
    waiting = backlog(services.db)
    return OutboxStatus(
        pending=waiting.pending, oldest_pending_seconds=waiting.oldest_pending_seconds, failed=waiting.failed
    )
