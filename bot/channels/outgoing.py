"""Messages to SMS and WhatsApp patients as rows of the one outbox (bot/outbox), in the caller's transaction.

A row's recipient is the conversation id, not the number: the provider's sender looks the number up in
`channel_contacts` when it sends, so the number is stored once and an opt-out recorded after the row was
queued still stops it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.channels.models import ChannelContact
from bot.channels.render import SmsStyle, Style, WhatsAppStyle, render_staff_reply
from bot.db import Database
from bot.models import as_utc
from bot.outbox.models import PRIORITY
from bot.outbox.notifiers import DeliveryRefused
from bot.outbox.queue import Outbox

# The outbox channel (the sender) of each provider.
OUTBOX_CHANNEL = {"twilio": "twilio", "meta": "whatsapp_cloud"}
TEXTING_CHANNELS = ("sms", "whatsapp")


def style_for(channel: str, provider: str, sms_max_segments: int) -> Style:
    if channel == "sms":
        return SmsStyle(sms_max_segments)
    # Reply buttons need the Cloud API; Twilio's WhatsApp gets numbered choices.
    return WhatsAppStyle(interactive=provider == "meta")


def queue_patient_message(
    session: Session,
    outbox: Outbox | None,
    contact: ChannelContact,
    *,
    kind: str,
    dedupe_key: str,
    body: dict[str, Any],
    priority: int = PRIORITY["reply"],
) -> bool:
    """Queue one message to the conversation's patient on their channel; False if it was queued already."""
    queue = outbox or Outbox()  # adding needs no listeners; the worker polls when nobody wakes it
    row = queue.add(
        session,
        kind=kind,
        channel=OUTBOX_CHANNEL[contact.provider],
        recipient=contact.conversation_id,
        priority=priority,
        dedupe_key=dedupe_key,
        body=body,
        conversation_id=contact.conversation_id,
    )
    return row is not None


def queue_staff_reply(
    session: Session, conversation_id: str, message_id: int, text: str, outbox: Outbox | None = None
) -> bool:
    """A staff reply to an SMS or WhatsApp conversation goes to the patient on that channel; False for a
    conversation that has no texting contact (the web chat picks staff replies up itself)."""
    contact = session.get(ChannelContact, conversation_id)
    if contact is None:
        return False
    style = style_for(contact.channel, contact.provider, sms_max_segments=1)
    return queue_patient_message(
        session,
        outbox,
        contact,
        kind="staff_reply",
        dedupe_key=f"staff-message-{message_id}",
        body={"text": render_staff_reply(text, style), "purpose": "staff_reply"},
    )


WHATSAPP_WINDOW = timedelta(hours=24)


def contact_of(db: Database, conversation_id: str) -> ChannelContact:
    """The contact a queued patient message goes to (its row's recipient is the conversation id)."""
    with db.session() as session:
        contact = session.get(ChannelContact, conversation_id)
    if contact is None:
        raise DeliveryRefused("the conversation has no texting contact")
    return contact


def inside_window(contact: ChannelContact, purpose: str, now: datetime) -> bool:
    """Whether a free-form message may be sent now; raises `DeliveryRefused` when nothing may be.

    A patient who sent STOP gets nothing but the confirmation (and answers to HELP) until START. WhatsApp
    allows free-form messages only within 24 hours of the patient's last message; outside that window only
    an approved template may be sent (False here: the sender sends the template or refuses)."""
    if contact.opted_out_at is not None and purpose != "keyword":
        raise DeliveryRefused("the patient opted out (STOP)")
    if contact.channel != "whatsapp":
        return True
    return now - as_utc(contact.last_inbound_at) <= WHATSAPP_WINDOW


def mark_opted_out(db: Database, conversation_id: str, now: datetime) -> None:
    """The provider says the number unsubscribed (Twilio 21610): remember it here too."""
    with db.session() as session:
        contact = session.get(ChannelContact, conversation_id)
        if contact is not None and contact.opted_out_at is None:
            contact.opted_out_at = now


def template_text(text: str, limit: int = 1024) -> str:
    """A template variable: one line (Meta refuses newlines, tabs and long runs of spaces in parameters)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rsplit(" ", 1)[0] + "..."
