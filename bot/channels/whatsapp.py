"""WhatsApp Cloud API (Meta), direct: the webhook and the sender of replies through the Graph API.

- `GET /channels/whatsapp/webhook`: Meta's verification handshake; the verify token is compared in constant
  time and `hub.challenge` echoed.
- `POST /channels/whatsapp/webhook`: `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret)
  is checked before the body is parsed; then text messages, reply-button presses and media become
  `Envelope`s (each message id once: Meta retries for days), and status events are recorded.
- `WhatsAppCloudSender` sends outbox rows: text, reply buttons, or, outside the 24-hour customer-service
  window, the configured approved template; without one the message is refused with that reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from bot.channels.outgoing import contact_of, inside_window, template_text
from bot.channels.texting import Envelope, TextingChannels
from bot.db import Database
from bot.models import utcnow
from bot.outbox.notice import Notice
from bot.outbox.notifiers import DeliveryError, DeliveryRefused
from bot.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/channels/whatsapp", tags=["texting"])

SIGNATURE_HEADER = "X-Hub-Signature-256"
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_WAMID = re.compile(r"^[A-Za-z0-9._=:+/-]{1,128}$")
_WA_ID = re.compile(r"^\+?[0-9]{5,20}$")
MEDIA_TYPES = frozenset(
    {"image", "video", "audio", "document", "sticker", "location", "contacts", "unsupported"}
)
IGNORED_TYPES = frozenset({"reaction", "system", "request_welcome", "ephemeral"})
# Graph API error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
RE_ENGAGEMENT = 131047  # more than 24 hours since the patient's last message
PERMANENT = frozenset({100, 131008, 131009, 131021, 131026, 131047, 131051, 132000, 132001, 133010})


def _texting(request: Request) -> TextingChannels:
    return request.app.state.texting


TextingDep = Annotated[TextingChannels, Depends(_texting)]


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "problems": []}, status_code=status)


def signature_of(app_secret: str, body: bytes) -> str:
    """What Meta sends in `X-Hub-Signature-256` for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


@router.get("/webhook", response_class=PlainTextResponse)
async def verify_webhook(
    texting: TextingDep,
    mode: Annotated[str, Query(alias="hub.mode", max_length=32)] = "",
    token: Annotated[str, Query(alias="hub.verify_token", max_length=256)] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=256)] = "",
):
    """Meta's subscription handshake: the verify token it was given, in exchange for its challenge."""
    expected = texting.settings.whatsapp_verify_token.get_secret_value()
    if mode != "subscribe" or not hmac.compare_digest(token.encode(), expected.encode()):
        log.warning("whatsapp webhook verification refused")
        return _problem(403, "verification refused")
    if not _CHALLENGE.match(challenge):
        return _problem(400, "hub.challenge is missing or malformed")
    return PlainTextResponse(challenge)


@router.post("/webhook")
async def webhook_event(request: Request, texting: TextingDep) -> JSONResponse:
    """Meta's event notification: messages from patients and statuses of what we sent."""
    body = await request.body()  # the raw bytes: the signature covers exactly these
    app_secret = texting.settings.whatsapp_app_secret.get_secret_value()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature or not hmac.compare_digest(signature.encode(), signature_of(app_secret, body).encode()):
        log.warning("whatsapp webhook refused: missing or invalid signature")
        return _problem(403, f"missing or invalid {SIGNATURE_HEADER}")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _problem(400, "the body is not JSON")
    if not isinstance(event, dict) or event.get("object") != "whatsapp_business_account":
        return _problem(400, "not a WhatsApp Business Account event")
    messages, statuses = read_event(event, texting.settings.whatsapp_phone_number_id)
    new = 0
    try:
        for envelope in messages:
            accepted = await asyncio.to_thread(texting.accept, envelope)
            if accepted is not None:
                texting.schedule(accepted)
                new += 1
        for status in statuses:
            await asyncio.to_thread(texting.record_status, "meta", *status)
    except Exception as error:  # noqa: BLE001 - Meta retries a non-200, and duplicates are dropped
        log.error("whatsapp event not stored: %s", type(error).__name__)
        return _problem(503, "the event could not be stored; it will be retried")
    log.info("whatsapp event: %d messages (%d new), %d statuses", len(messages), new, len(statuses))
    return JSONResponse({"received": True})


def read_event(
    event: dict[str, Any], phone_number_id: str
) -> tuple[list[Envelope], list[tuple[str, str, str | None, datetime | None]]]:
    """The messages and statuses of one webhook event (parts of an unexpected shape are skipped)."""
    messages: list[Envelope] = []
    statuses: list[tuple[str, str, str | None, datetime | None]] = []
    for entry in _dicts(event.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            number_id = str((value.get("metadata") or {}).get("phone_number_id", ""))
            if phone_number_id and number_id != phone_number_id:
                log.warning("whatsapp event for another phone number id: ignored")
                continue
            messages += [e for m in _dicts(value.get("messages")) if (e := _envelope(m, number_id))]
            statuses += [s for item in _dicts(value.get("statuses")) if (s := _status(item))]
    return messages, statuses


def _envelope(message: dict[str, Any], number_id: str) -> Envelope | None:
    wamid, sender, kind = message.get("id"), str(message.get("from", "")), message.get("type")
    if not isinstance(wamid, str) or not _WAMID.match(wamid) or not _WA_ID.match(sender):
        log.warning("whatsapp message without a usable id or sender: skipped")
        return None
    if kind in IGNORED_TYPES:
        return None
    text, media, choice, title = "", 0, None, None
    if kind == "text":
        text = str((message.get("text") or {}).get("body", ""))
    elif kind == "interactive":
        interactive = message.get("interactive") or {}
        pressed = interactive.get("button_reply") or interactive.get("list_reply") or {}
        choice, title = str(pressed.get("id", ""))[:64] or None, str(pressed.get("title", ""))[:64] or None
    elif kind == "button":  # a template's quick-reply button
        title = str((message.get("button") or {}).get("text", ""))[:64] or None
    elif kind in MEDIA_TYPES:
        media = 1
        text = (
            str((message.get(kind) or {}).get("caption", "")) if isinstance(message.get(kind), dict) else ""
        )
    else:
        media = 1  # a type this adapter does not know: answered like a picture ("please write it")
    return Envelope(
        provider="meta",
        provider_id=wamid,
        channel="whatsapp",
        sender=sender,
        clinic_address=number_id,
        text=text,
        media=media,
        choice=choice,
        choice_title=title,
    )


def _status(item: dict[str, Any]) -> tuple[str, str, str | None, datetime | None] | None:
    wamid, status = item.get("id"), item.get("status")
    if not isinstance(wamid, str) or not _WAMID.match(wamid) or not isinstance(status, str):
        return None
    errors = _dicts(item.get("errors"))
    code = str(errors[0].get("code"))[:16] if errors and errors[0].get("code") is not None else None
    try:
        at = datetime.fromtimestamp(int(item.get("timestamp", "")), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        at = None
    return wamid, status[:24], code, at


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


class WhatsAppCloudSender:
    """Sends outbox rows to WhatsApp patients through the Graph API's `/{phone-number-id}/messages`."""

    channel = "whatsapp_cloud"

    def __init__(self, db: Database, settings: Settings, clock=utcnow) -> None:  # noqa: ANN001
        self.db = db
        self.clock = clock
        self.base_url = f"{settings.whatsapp_graph_url.rstrip('/')}/{settings.whatsapp_graph_version}"
        self.phone_number_id = settings.whatsapp_phone_number_id
        self.template_name = settings.whatsapp_template_name
        self.template_language = settings.whatsapp_template_language
        token = settings.whatsapp_access_token.get_secret_value()
        self.client = httpx.Client(
            timeout=settings.notify_timeout_seconds, headers={"Authorization": f"Bearer {token}"}
        )

    def send(self, notice: Notice) -> str:
        contact = contact_of(self.db, notice.recipient)
        purpose = str(notice.payload.get("purpose", "reply"))
        number_id = contact.clinic_address or self.phone_number_id
        if inside_window(contact, purpose, self.clock()):
            try:
                return self._post(number_id, self._free_form(contact.address, notice))
            except DeliveryRefused as refused:
                # Meta's clock says the window has closed: the template, if there is one.
                if f"code {RE_ENGAGEMENT}" not in str(refused) or not self.template_name:
                    raise
        if not self.template_name:
            raise DeliveryRefused("outside the WhatsApp 24-hour window and no approved template configured")
        return self._post(number_id, self._template(contact.address, notice.text))

    def already_delivered(self, notice: Notice) -> str | None:
        return None  # the Graph API cannot be asked what was sent; a crash between send and mark may repeat

    def _free_form(self, to: str, notice: Notice) -> dict[str, Any]:
        message: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        buttons = notice.payload.get("buttons")
        if buttons:
            message["type"] = "interactive"
            message["interactive"] = {
                "type": "button",
                "body": {"text": notice.text},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": str(b["id"]), "title": str(b["title"])}}
                        for b in buttons
                    ]
                },
            }
        else:
            message["type"] = "text"
            message["text"] = {"preview_url": False, "body": notice.text}
        return message

    def _template(self, to: str, text: str) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": self.template_name,
                "language": {"code": self.template_language},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": template_text(text)}]}
                ],
            },
        }

    def _post(self, number_id: str, message: dict[str, Any]) -> str:
        try:
            response = self.client.post(f"{self.base_url}/{number_id}/messages", json=message)
        except httpx.HTTPError as error:
            raise DeliveryError(type(error).__name__) from error
        if response.status_code == 200:
            try:
                return str(response.json()["messages"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError) as error:
                raise DeliveryError("graph api answered without a message id") from error
        try:
            code = int((response.json().get("error") or {}).get("code"))
        except (ValueError, TypeError, AttributeError):
            code = None
        reason = f"graph api status {response.status_code} code {code}"
        if code in PERMANENT:
            raise DeliveryRefused(reason)
        raise DeliveryError(reason)  # rate limits (130429, 131056), bad token (190), 5xx: retried
