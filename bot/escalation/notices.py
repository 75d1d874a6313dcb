"""What staff are told about an escalation, per channel. Never the patient's words: those stay in the
database behind the staff console, because SMS, e-mail and webhooks pass through other companies' systems.
A conversation is named by its opaque reference, never by its id or session token."""

from __future__ import annotations

from typing import Any

from bot.escalation.models import Escalation
from bot.models import as_utc
from bot.outbox.models import OutboxMessage
from bot.outbox.notice import Notice


def notification_key(row: OutboxMessage) -> str:
    # The creation time makes the key unique even if a database is reset and ids start again, so a mail
    # system that drops repeated Message-IDs never drops a new notification.
    created_ms = int(as_utc(row.created_at).timestamp() * 1000)
    return f"esc{row.escalation_id}-n{row.id}-{created_ms}"


def compose(row: OutboxMessage, escalation: Escalation, reference: str, clinic_name: str) -> Notice:
    """The notice for one outbox row about an escalation: a short SMS, a fuller e-mail, the webhook's JSON."""
    key = notification_key(row)
    when = as_utc(escalation.created_at).strftime("%Y-%m-%d %H:%M UTC")
    severity = escalation.severity.upper()
    concepts = ", ".join(escalation.concepts) or "unspecified"
    if escalation.aggregated:
        concepts += f" (+{escalation.aggregated} more from the same source)"
    if row.kind == "reminder":
        headline = f"REMINDER: {severity} escalation #{escalation.id} from {when} is NOT acknowledged yet"
    else:
        headline = f"{severity} escalation #{escalation.id} at {when}"
    if row.channel == "sms":
        text = f"{clinic_name}: {headline}. Concerns: {concepts}. Acknowledge in the staff console. Ref {key}"
    else:
        text = _email_text(headline, concepts, escalation, reference, key)
    return Notice(
        key=key,
        channel=row.channel,
        recipient=row.recipient,
        subject=f"[{clinic_name}] {headline}",
        text=text,
        created_at=as_utc(row.created_at),
        payload=_payload(row.kind, escalation, reference, key, when),
    )


def _email_text(headline: str, concepts: str, escalation: Escalation, reference: str, key: str) -> str:
    return (
        f"{headline}.\n\n"
        f"Concerns detected: {concepts}\n"
        f"Conversation: {reference} (channel: {escalation.channel})\n\n"
        "The patient's message is in the staff console: /admin/escalations\n"
        f"Acknowledge it there (escalation #{escalation.id}).\n\n"
        f"Ref {key}\n"
    )


def _payload(kind: str, escalation: Escalation, reference: str, key: str, when: str) -> dict[str, Any]:
    return {
        "event": f"escalation.{kind}",
        "idempotency_key": key,
        "escalation": {
            "id": escalation.id,
            "severity": escalation.severity,
            "concepts": list(escalation.concepts),
            "conversation": reference,
            "channel": escalation.channel,
            "created_at": when,
            "aggregated": escalation.aggregated,
        },
    }
