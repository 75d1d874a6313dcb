"""SMS and WhatsApp through Twilio: the Messaging webhook, its status callbacks, and the sender of replies.

`POST /channels/twilio/messages` (Twilio's "A message comes in" webhook, for SMS numbers and `whatsapp:`
senders) and `POST /channels/twilio/status` (the StatusCallback of the replies we send) are signed by Twilio:
`X-Twilio-Signature` is checked with the `twilio` library's `RequestValidator` against the configured public
URL (`ASSISTANT_PUBLIC_URL` + path, never the URL the request claims, so it works behind a proxy), with the
account's auth token, or with a Webhooks SharedKey secret when the request says one signed it. A missing or
bad signature is a 403 before anything is read into the database. The message is stored and acknowledged
with empty TwiML at once; the reply is produced in the background and sent through the outbox by
`TwilioPatientSender`, so a slow Rasa never makes Twilio retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated
from urllib.parse import parse_qsl

import requests
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import ImmutableMultiDict
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm
from twilio.rest import Client

from bot.channels.outgoing import contact_of, inside_window, mark_opted_out, template_text
from bot.channels.texting import Envelope, TextingChannels
from bot.db import Database
from bot.models import utcnow
from bot.outbox.notice import Notice
from bot.outbox.notifiers import DeliveryError, DeliveryRefused
from bot.settings import Settings

log = logging.getLogger(__name__)
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # it logs URLs with phone numbers

router = APIRouter(prefix="/channels/twilio", tags=["texting"])

SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_MESSAGE_SID = re.compile(r"^(SM|MM|IM)[0-9a-fA-F]{32}$")
_ADDRESS = re.compile(r"^(whatsapp:)?\+?[0-9A-Za-z]{3,32}$")
MAX_FIELDS = 200
# Permanent refusals: retrying cannot help (a bad number, a blocked destination, a closed WhatsApp window).
UNSUBSCRIBED, OUTSIDE_WINDOW = 21610, 63016


def _texting(request: Request) -> TextingChannels:
    return request.app.state.texting


TextingDep = Annotated[TextingChannels, Depends(_texting)]


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "problems": []}, status_code=status)


class TwilioSignature:
    """Checks Twilio's request signature against the URL Twilio was configured with."""

    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.public_url.rstrip("/")
        self.account_sid = settings.twilio_account_sid
        self.auth_token = RequestValidator(settings.twilio_auth_token.get_secret_value())
        shared = settings.twilio_webhook_shared_key.get_secret_value()
        self.shared_key = RequestValidator(shared) if shared else None

    def url_of(self, request: Request) -> str:
        """The URL Twilio signed: the public address + the path and query this app received."""
        query = request.scope.get("query_string", b"").decode("latin-1")
        return f"{self.base_url}{request.url.path}" + (f"?{query}" if query else "")

    def valid(self, request: Request, params: ImmutableMultiDict) -> bool:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return False
        settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER)
        validator, algorithm = self.auth_token, None
        if settings_header:
            if self.shared_key is None:
                log.warning("twilio request signed with a shared key, but no shared key is configured")
                return False
            validator, algorithm = self.shared_key, get_signature_algorithm(settings_header)
        return validator.validate(self.url_of(request), params, signature, algorithm)


async def _signed_form(request: Request) -> ImmutableMultiDict | JSONResponse:
    """The form parameters of a request Twilio signed, or the error response to send instead."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return _problem(415, "Twilio webhooks are application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        return _problem(400, "the body is not a UTF-8 form")
    params = ImmutableMultiDict(pairs)
    signature: TwilioSignature = request.app.state.twilio_signature
    if not signature.valid(request, params):
        log.warning("twilio webhook refused: missing or invalid signature")
        return _problem(403, "missing or invalid X-Twilio-Signature")
    if params.get("AccountSid") != signature.account_sid:
        log.warning("twilio webhook refused: another account")
        return _problem(403, "the request is for another Twilio account")
    return params


def envelope_of(params: ImmutableMultiDict) -> Envelope | str:
    """The message in Twilio's parameters, or what is wrong with them."""
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or ""
    sender, clinic = params.get("From", ""), params.get("To", "")
    if not _MESSAGE_SID.match(sid):
        return "MessageSid is missing or malformed"
    if not _ADDRESS.match(sender) or not _ADDRESS.match(clinic):
        return "From and To must be phone numbers (or whatsapp: addresses)"
    try:
        media = max(0, min(int(params.get("NumMedia") or 0), 10))
    except ValueError:
        return "NumMedia must be a number"
    return Envelope(
        provider="twilio",
        provider_id=sid,
        channel="whatsapp" if sender.startswith("whatsapp:") else "sms",
        sender=sender,
        clinic_address=clinic,
        text=params.get("Body", ""),
        media=media,
        choice=None,
        choice_title=params.get("ButtonText") or None,  # a WhatsApp quick-reply button
        # With Advanced Opt-Out, Twilio answered the keyword itself and says so.
        keyword_handled=bool(params.get("OptOutType")),
    )


@router.post(
    "/messages",
    response_class=Response,
    responses={200: {"content": {"text/xml": {}}, "description": "empty TwiML: the reply follows by API"}},
)
async def incoming_message(request: Request, texting: TextingDep) -> Response:
    """Twilio's incoming-message webhook: verified, stored once, acknowledged; answered in the background."""
    params = await _signed_form(request)
    if isinstance(params, JSONResponse):
        return params
    envelope = envelope_of(params)
    if isinstance(envelope, str):
        return _problem(400, envelope)
    try:
        accepted = await asyncio.to_thread(texting.accept, envelope)
    except Exception as error:  # noqa: BLE001 - Twilio sees a 503 and its fallback URL / retry takes over
        log.error("twilio message not stored: %s", type(error).__name__)
        return _problem(503, "the message could not be stored; try again")
    if accepted is None:
        log.info("twilio message duplicate: acknowledged again, not handled again")
    else:
        texting.schedule(accepted)
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/status", status_code=204, response_class=Response)
async def status_callback(request: Request, texting: TextingDep) -> Response:
    """Twilio's StatusCallback for the replies we sent: queued, sent, delivered, undelivered, failed, read."""
    params = await _signed_form(request)
    if isinstance(params, JSONResponse):
        return params
    sid = params.get("MessageSid", "")
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if not _MESSAGE_SID.match(sid) or not re.fullmatch(r"[a-z_]{2,24}", status):
        return _problem(400, "MessageSid and MessageStatus are required")
    error_code = (params.get("ErrorCode") or "")[:16] or None
    await asyncio.to_thread(texting.record_status, "twilio", sid, status, error_code, None)
    return Response(status_code=204)


class TwilioPatientSender:
    """Sends outbox rows to SMS and WhatsApp patients through Twilio's Messages API."""

    channel = "twilio"

    def __init__(self, db: Database, settings: Settings, clock=utcnow) -> None:  # noqa: ANN001
        self.db = db
        self.clock = clock
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=TwilioHttpClient(timeout=settings.notify_timeout_seconds),
        )
        if settings.twilio_base_url:
            self.client.api.base_url = settings.twilio_base_url.rstrip("/")
        self.status_callback = f"{settings.public_url.rstrip('/')}/channels/twilio/status"
        self.content_sid = settings.twilio_whatsapp_content_sid

    def send(self, notice: Notice) -> str:
        contact = contact_of(self.db, notice.recipient)
        purpose = str(notice.payload.get("purpose", "reply"))
        params: dict[str, str] = {
            "to": contact.address,
            "from_": contact.clinic_address,
            "status_callback": self.status_callback,
        }
        if inside_window(contact, purpose, self.clock()):
            params["body"] = notice.text
        elif self.content_sid:
            params["content_sid"] = self.content_sid
            params["content_variables"] = json.dumps({"1": template_text(notice.text)})
        else:
            raise DeliveryRefused("outside the WhatsApp 24-hour window and no approved template configured")
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as error:
            if error.code == UNSUBSCRIBED:
                mark_opted_out(self.db, notice.recipient, self.clock())
            raise _delivery_error(error) from error
        except (TwilioException, requests.RequestException) as error:
            raise DeliveryError(type(error).__name__) from error
        return str(message.sid)

    def already_delivered(self, notice: Notice) -> str | None:
        """A retry after a crash: the same text to the same number since the row was queued means it went."""
        contact = contact_of(self.db, notice.recipient)
        since = notice.created_at - timedelta(seconds=5)
        try:
            sent = self.client.messages.list(
                to=contact.address, from_=contact.clinic_address, date_sent_after=since, limit=50
            )
        except (TwilioException, requests.RequestException) as error:
            raise DeliveryError(type(error).__name__) from error
        for message in sent:
            created = message.date_created
            if isinstance(created, str):
                created = parsedate_to_datetime(created)
            if message.body == notice.text and (created is None or created >= since):
                return str(message.sid)
        return None


def _delivery_error(error: TwilioRestException) -> DeliveryError:
    reason = f"twilio status {error.status} code {error.code}"
    if error.code in (UNSUBSCRIBED, OUTSIDE_WINDOW) or error.status in (400, 403, 404):
        return DeliveryRefused(reason)
    return DeliveryError(reason)  # 401 (credentials being fixed), 429, 5xx: retried with backoff
