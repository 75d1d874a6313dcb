"""What staff are told about an escalation, per channel. Never the patient's words: those stay in the
database behind the staff API, because SMS, e-mail and webhooks pass through other companies' systems."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.escalation.models import Escalation, StaffNotification, as_utc


@dataclass(frozen=True)
class Notice:
    """One notification ready to send. `key` is stable across retries and restarts (the idempotency key)."""

    key: str
    channel: str
    recipient: str
    subject: str
    text: str
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


def notification_key(notification: StaffNotification) -> str:
    # The creation time makes the key unique even if a database is reset and ids start again, so a mail
    # system that drops repeated Message-IDs never drops a new notification.
    created_ms = int(as_utc(notification.created_at).timestamp() * 1000)
    return f"esc{notification.escalation_id}-n{notification.id}-{created_ms}"


def compose(notification: StaffNotification, escalation: Escalation, clinic_name: str) -> Notice:
    """The notice for one outbox row: a short SMS, a fuller e-mail, or the webhook's JSON."""
    key = notification_key(notification)
    when = as_utc(escalation.created_at).strftime("%Y-%m-%d %H:%M UTC")
    severity = escalation.severity.upper()
    concepts = ", ".join(escalation.concepts) or "unspecified"
    if notification.purpose == "reminder":
        headline = f"REMINDER: {severity} escalation #{escalation.id} from {when} is NOT acknowledged yet"
    else:
        headline = f"{severity} escalation #{escalation.id} at {when}"
    if notification.channel == "sms":
        text = f"{clinic_name}: {headline}. Concerns: {concepts}. Acknowledge in the staff console. Ref {key}"
    else:
        text = _email_text(headline, concepts, escalation, key)
    return Notice(
        key=key,
        channel=notification.channel,
        recipient=notification.recipient,
        subject=f"[{clinic_name}] {headline}",
        text=text,
        created_at=as_utc(notification.created_at),
        payload=_payload(notification.purpose, escalation, key, when),
    )


def _email_text(headline: str, concepts: str, escalation: Escalation, key: str) -> str:
    return (
        f"{headline}.\n\n"
        f"Concerns detected: {concepts}\n"
        f"Conversation: {escalation.conversation_id} (channel: {escalation.channel})\n\n"
        "The patient's message is in the staff API: GET /admin/escalations?status=open\n"
        f"Acknowledge it there: POST /admin/escalations/{escalation.id}/acknowledge\n\n"
        f"Ref {key}\n"
    )


def _payload(purpose: str, escalation: Escalation, key: str, when: str) -> dict[str, Any]:
    return {
        "event": f"escalation.{purpose}",
        "idempotency_key": key,
        "escalation": {
            "id": escalation.id,
            "severity": escalation.severity,
            "concepts": list(escalation.concepts),
            "conversation_id": escalation.conversation_id,
            "channel": escalation.channel,
            "created_at": when,
        },
    }
