"""Escalations and handoffs in the admin UI: the patients' own words, for the care roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from bot.conversation import store as conversation_store
from bot.escalation import handoff
from bot.models import Conversation, as_utc, utcnow
from bot.staff import audit
from bot.staff.auth import (
    RuntimeDep,
    checked_form,
)
from bot.staff.ui.pages import (
    CareStaff,
    NotFound,
    back,
    page,
)

router = APIRouter(prefix="/admin", tags=["staff UI"], include_in_schema=False)


# --- escalations and handoffs --------------------------------------------------------------------------
SEVERITY_ORDER = {"emergency": 0, "urgent": 1}


@dataclass(frozen=True)
class EscalationRow:
    id: int
    severity: str
    concepts: list[str]
    patient_text: str
    reference: str | None
    conversation_id: str
    age: str
    acknowledged_by: str | None
    channel: str


@router.get("/care/escalations")
def escalations(request: Request, runtime: RuntimeDep, user: CareStaff, show: str = "open") -> HTMLResponse:
    services = runtime.services
    rows = services.escalations.recent(None if show == "all" else "open", 300)
    with services.db.session() as session:
        references = dict(
            session.execute(
                select(Conversation.id, Conversation.reference).where(
                    Conversation.id.in_({r.conversation_id for r in rows})
                )
            ).all()
        )
    now = utcnow()
    ordered = sorted(
        rows, key=lambda r: (r.acknowledged_at is not None, SEVERITY_ORDER.get(r.severity, 9), r.created_at)
    )
    shown = [
        EscalationRow(
            r.id,
            r.severity,
            r.concepts,
            r.patient_text,
            references.get(r.conversation_id),
            r.conversation_id,
            _age(now - as_utc(r.created_at)),
            r.acknowledged_by,
            r.channel,
        )
        for r in ordered
    ]
    return page(request, "escalations.html", user, escalations=shown, show=show)


@router.post("/care/escalations/{escalation_id}/acknowledge")
async def acknowledge(request: Request, escalation_id: int, runtime: RuntimeDep, user: CareStaff) -> Response:
    await checked_form(request, runtime)
    row = runtime.services.escalations.acknowledge(escalation_id, user.display_name)
    if row is None:
        return back("/admin/care/escalations", "refused", detail="no such escalation")
    audit.write(
        runtime.services.db,
        user.actor,
        "escalation_acknowledged",
        target_type="escalation",
        target_id=str(escalation_id),
    )
    return back("/admin/care/escalations", "acknowledged")


@router.get("/care/handoffs")
def handoffs(request: Request, runtime: RuntimeDep, user: CareStaff) -> HTMLResponse:
    now = utcnow()
    rows = [
        {
            "id": c.id,
            "reference": c.reference,
            "channel": c.channel,
            "reason": h.reason if h else "",
            "waiting": _age(now - as_utc(h.started_at)) if h else "",
        }
        for c, h in handoff.handed_off(runtime.services.db)
    ]
    return page(request, "handoffs.html", user, conversations=rows)


@router.get("/care/conversations/{conversation_id}")
def conversation(
    request: Request, conversation_id: str, runtime: RuntimeDep, user: CareStaff
) -> HTMLResponse:
    services = runtime.services
    with services.db.session() as session:
        found = session.get(Conversation, conversation_id[:64])
        if found is None:
            raise NotFound()
        session.expunge(found)
    messages = conversation_store.messages(services.db, found.id)
    return page(request, "conversation.html", user, conversation=found, messages=messages)


@router.post("/care/conversations/{conversation_id}/reply")
async def reply(request: Request, conversation_id: str, runtime: RuntimeDep, user: CareStaff) -> Response:
    form = await checked_form(request, runtime)
    text = str(form.get("text", "")).strip()
    target = f"/admin/care/conversations/{quote(conversation_id)}"
    if not text or len(text) > 2000:
        return back(target, "refused", detail="a reply has 1 to 2000 characters")
    posted = handoff.post_staff_reply(
        runtime.services.db, conversation_id[:64], text, user.display_name, runtime.services.outbox
    )
    if posted is None:
        raise NotFound()
    audit.write(
        runtime.services.db,
        user.actor,
        "staff_replied",
        target_type="conversation",
        target_id=conversation_id[:64],
    )
    return back(target, "replied")


@router.post("/care/conversations/{conversation_id}/hand-back")
async def hand_back(request: Request, conversation_id: str, runtime: RuntimeDep, user: CareStaff) -> Response:
    await checked_form(request, runtime)
    changed = handoff.hand_back(runtime.services.db, conversation_id[:64], user.display_name)
    if changed is None:
        raise NotFound()
    if changed:
        audit.write(
            runtime.services.db,
            user.actor,
            "handed_back",
            target_type="conversation",
            target_id=conversation_id[:64],
        )
    return back("/admin/care/handoffs", "handed_back")


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"
