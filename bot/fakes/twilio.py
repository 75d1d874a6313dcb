"""A fake of Twilio's Messages API (2010-04-01): create and list SMS, with HTTP basic auth, and Twilio's side
of the Messaging webhooks.

Enough of the real protocol for the `twilio` library to work against it unchanged: form-encoded
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` returning a message resource with a `sid`, the paged
list (filters `To` and `From`; date filters are ignored), and Twilio's JSON errors (20003 bad credentials,
21602/21604 missing body or recipient, 21617 body over 1,600 characters). A `ContentSid` (an approved
WhatsApp template) may stand in for the body. When a message names a `StatusCallback`, the fake calls it,
signed like Twilio signs (`X-Twilio-Signature`), with `sent` and then `delivered`.

`incoming(...)` is Twilio delivering a patient's message to the app's webhook: the form parameters Twilio
sends and their signature, computed with the `twilio` library's own `RequestValidator`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import threading
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from bot.channels.render import sms_segments
from bot.fakes.http import FakeRequest, HttpFake, Reply

API = "/2010-04-01"
MAX_BODY_CHARS = 1600
_MESSAGES = re.compile(rf"{API}/Accounts/(?P<sid>AC\w+)/Messages\.json")


def twilio_error(code: int, message: str, status: int) -> Reply:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio(HttpFake):
    """Accepts SMS for one account; `received()` lists the message resources it created."""

    def __init__(self, account_sid: str, auth_token: str, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(port, host)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.status_callbacks = True  # call each message's StatusCallback (sent, delivered)
        self.callbacks_made: list[dict[str, Any]] = []  # (url, status, http status) of each callback

    def respond(self, request: FakeRequest) -> Reply:
        match = _MESSAGES.fullmatch(request.path)
        if match is None or request.method not in ("GET", "POST"):
            return twilio_error(20404, f"The requested resource {request.path} was not found", 404)
        if not self._authorised(request.headers.get("authorization", ""), match["sid"]):
            return twilio_error(20003, "Authenticate", 401)
        if request.method == "POST":
            return self._create(request.form)
        return 200, self._page(request.query)

    def _authorised(self, header: str, path_sid: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            scheme.lower() == "basic"
            and hmac.compare_digest(user, self.account_sid)
            and hmac.compare_digest(password, self.auth_token)
            and path_sid == self.account_sid
        )

    def _create(self, form: dict[str, str]) -> Reply:
        if not form.get("To"):
            return twilio_error(21604, "A 'To' phone number is required.", 400)
        if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
            return twilio_error(21602, "Message body is required.", 400)
        if len(form.get("Body", "")) > MAX_BODY_CHARS:
            return twilio_error(21617, "The concatenated message body exceeds the 1600 character limit.", 400)
        message = self._resource(form)
        self.store(message)
        if form.get("StatusCallback") and self.status_callbacks:
            threading.Thread(target=self._report, args=(form["StatusCallback"], message), daemon=True).start()
        return 201, message

    def _report(self, url: str, message: dict[str, Any]) -> None:
        """Twilio's delivery reports: `sent`, then `delivered`, each signed with the auth token."""
        for status in ("sent", "delivered"):
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": "2010-04-01",
                "From": message["from"] or "",
                "MessageSid": message["sid"],
                "MessageStatus": status,
                "SmsSid": message["sid"],
                "SmsStatus": status,
                "To": message["to"],
            }
            body, headers = signed_form(self.auth_token, url, params)
            try:
                answered = httpx.post(url, content=body, headers=headers, timeout=5).status_code
            except httpx.HTTPError as error:
                answered = type(error).__name__
            with self._lock:
                self.callbacks_made.append({"url": url, "status": status, "answered": answered})

    def incoming(
        self,
        url: str,
        sender: str,
        to: str,
        body: str = "",
        media: int = 0,
        sid: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The request Twilio makes to the app's webhook `url` for a patient's message (body, headers)."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": sender,
            "MessageSid": sid or new_message_sid(),
            "NumMedia": str(media),
            "NumSegments": str(sms_segments(body).count),
            "SmsStatus": "received",
            "To": to,
            **{f"MediaUrl{n}": f"https://api.twilio.com/media/ME{n}" for n in range(media)},
            **(extra or {}),
        }
        params["SmsMessageSid"] = params["SmsSid"] = params["MessageSid"]
        if sender.startswith("whatsapp:"):
            params.update(WaId=sender.removeprefix("whatsapp:+"), ProfileName="Patient")
        return signed_form(self.auth_token, url, params)

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = new_message_sid()
        now = format_datetime(datetime.now(UTC))
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            # A template's text is Twilio's to fill in; the fake shows which template and its variables.
            "body": form.get("Body")
            or f"{form.get('ContentSid', '')} {form.get('ContentVariables', '')}".strip(),
            "date_created": now,
            "date_sent": now,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(sms_segments(form.get("Body", "")).count),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }

    def _page(self, query: dict[str, str]) -> dict[str, Any]:
        messages = [
            message
            for message in reversed(self.received())  # newest first, as Twilio lists them
            if query.get("To") in (None, message["to"]) and query.get("From") in (None, message["from"])
        ]
        uri = f"{API}/Accounts/{self.account_sid}/Messages.json"
        return {
            "messages": messages,
            "end": max(len(messages) - 1, 0),
            "first_page_uri": f"{uri}?PageSize=50&Page=0",
            "next_page_uri": None,
            "previous_page_uri": None,
            "page": 0,
            "page_size": 50,
            "start": 0,
            "uri": f"{uri}?PageSize=50&Page=0",
        }


def new_message_sid() -> str:
    return "SM" + uuid.uuid4().hex


def signed_form(auth_token: str, url: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """A form body and the headers Twilio sends with it, `X-Twilio-Signature` included."""
    signature = RequestValidator(auth_token).compute_signature(url, params)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return urlencode(params).encode(), headers
