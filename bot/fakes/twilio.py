"""A fake of Twilio's Messages API (2010-04-01): create and list SMS, with HTTP basic auth.

Enough of the real protocol for the `twilio` library to work against it unchanged: form-encoded
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` returning a message resource with a `sid`, the paged
list (filters `To` and `From`; date filters are ignored), and Twilio's JSON errors (20003 bad credentials,
21602/21604 missing body or recipient).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from bot.fakes.http import FakeRequest, HttpFake, Reply

API = "/2010-04-01"
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
        if not form.get("Body") and not form.get("MediaUrl"):
            return twilio_error(21602, "Message body is required.", 400)
        message = self._resource(form)
        self.store(message)
        return 201, message

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        now = format_datetime(datetime.now(UTC))
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": now,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(max(1, -(-len(form.get("Body", "")) // 160))),
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
