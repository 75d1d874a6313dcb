"""A fake of Meta's WhatsApp Cloud API: the Graph API's `POST /{version}/{phone-number-id}/messages`, and
Meta's side of the webhook (signed event notifications).

The Graph side checks what the real one checks and answers in its error format (`{"error": {"message",
"type", "code", "fbtrace_id"}}`): the bearer token (190), the phone number id and the payload (100: text up
to 4,096 characters, reply-button bodies up to 1,024, one to three buttons with titles up to 20 characters
and distinct ids), and the customer-service window: a free-form message to someone who has not written in
the last 24 hours is refused with 131047 (a template is accepted). The fake learns when a patient last wrote
from the events it builds (`message_event`), as Meta knows it from the messages it delivers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from typing import Any

import httpx

from bot.fakes.http import FakeRequest, HttpFake, Reply

WINDOW_SECONDS = 24 * 3600
_MESSAGES = re.compile(r"/v\d+\.\d+/(?P<number>[^/]+)/messages")
RE_ENGAGEMENT = 131047


def graph_error(code: int, message: str, status: int = 400, kind: str = "OAuthException") -> Reply:
    return status, {
        "error": {"message": message, "type": kind, "code": code, "fbtrace_id": secrets.token_urlsafe(12)}
    }


def new_wamid() -> str:
    return "wamid." + secrets.token_urlsafe(36)


class FakeMetaGraph(HttpFake):
    """Accepts WhatsApp messages for one phone number id; `received()` lists the messages it accepted."""

    def __init__(
        self,
        access_token: str,
        app_secret: str,
        phone_number_id: str,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(port, host)
        self.access_token = access_token
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.clock = time.time
        self._last_inbound: dict[str, float] = {}
        self._window_lock = threading.Lock()

    # --- the Graph API -------------------------------------------------------------------------------------
    def respond(self, request: FakeRequest) -> Reply:
        match = _MESSAGES.fullmatch(request.path)
        if match is None or request.method != "POST":
            return graph_error(100, f"Unsupported {request.method} request.", 400, "GraphMethodException")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token, self.access_token):
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token", 401)
        if match["number"] != self.phone_number_id:
            return graph_error(100, f"Object with ID '{match['number']}' does not exist", 400)
        try:
            message = request.json()
        except ValueError:
            return graph_error(100, "Invalid parameter: the body is not JSON")
        problem = _problem(message)
        if problem:
            return graph_error(100, problem)
        if message["type"] != "template" and not self.inside_window(str(message["to"])):
            return graph_error(
                RE_ENGAGEMENT,
                "Re-engagement message: more than 24 hours have passed since the recipient last replied",
            )
        wamid = new_wamid()
        self.store({**message, "id": wamid})
        to = str(message["to"])
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }

    def inside_window(self, wa_id: str) -> bool:
        with self._window_lock:
            last = self._last_inbound.get(wa_id.lstrip("+"))
        return last is not None and self.clock() - last <= WINDOW_SECONDS

    def age(self, wa_id: str, seconds: float) -> None:
        """Pretend the patient's last message was `seconds` earlier (the window is Meta's to keep)."""
        with self._window_lock:
            self._last_inbound[wa_id] = self._last_inbound.get(wa_id, self.clock()) - seconds

    # --- Meta's side of the webhook -----------------------------------------------------------------------
    def message_event(
        self,
        wa_id: str,
        text: str | None = None,
        *,
        button: tuple[str, str] | None = None,
        media: str | None = None,
        caption: str = "",
        wamid: str | None = None,
    ) -> dict[str, Any]:
        """The webhook event of one patient message (text, a reply-button press (id, title), or media)."""
        message: dict[str, Any] = {
            "from": wa_id,
            "id": wamid or new_wamid(),
            "timestamp": str(int(self.clock())),
        }
        if button is not None:
            message["type"] = "interactive"
            message["interactive"] = {
                "type": "button_reply",
                "button_reply": {"id": button[0], "title": button[1]},
            }
        elif media is not None:
            message["type"] = media
            message[media] = {"id": secrets.token_hex(8), "mime_type": "image/jpeg", "caption": caption}
        else:
            message["type"] = "text"
            message["text"] = {"body": text or ""}
        with self._window_lock:
            self._last_inbound[wa_id] = self.clock()
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100100", "phone_number_id": self.phone_number_id},
            "contacts": [{"profile": {"name": "Patient"}, "wa_id": wa_id}],
            "messages": [message],
        }
        return _event(value)

    def status_event(
        self, wamid: str, status: str, wa_id: str, error_code: int | None = None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(self.clock())),
            "recipient_id": wa_id,
        }
        if error_code is not None:
            item["errors"] = [{"code": error_code, "title": "Message failed to send"}]
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100100", "phone_number_id": self.phone_number_id},
            "statuses": [item],
        }
        return _event(value)

    def signed(self, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body Meta posts and its headers, `X-Hub-Signature-256` included."""
        body = json.dumps(event, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}

    def deliver(self, url: str, event: dict[str, Any]) -> int:
        """Post a signed event to the app's webhook, as Meta does; the app's HTTP status."""
        body, headers = self.signed(event)
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code

    def act(self, action: str, payload: dict[str, Any]) -> Reply:
        """The fakes process's control endpoint: `POST /whatsapp/deliver {"url", "wa_id", "text"}`."""
        if action != "deliver":
            return 404, {"detail": "unknown action"}
        event = self.message_event(str(payload["wa_id"]), str(payload.get("text", "")))
        return 200, {"status": self.deliver(str(payload["url"]), event)}


def _event(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def _problem(message: Any) -> str | None:
    """What the Graph API would refuse in a message payload, or None."""
    if not isinstance(message, dict) or message.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required and must be whatsapp."
    if not re.fullmatch(r"\+?[0-9]{5,20}", str(message.get("to", ""))):
        return "Invalid parameter: to"
    kind = message.get("type")
    if kind == "text":
        body = (message.get("text") or {}).get("body")
        if not isinstance(body, str) or not body:
            return "Param text['body'] is required"
        if len(body) > 4096:
            return "Param text['body'] must be at most 4096 characters long."
        return None
    if kind == "interactive":
        return _interactive_problem(message.get("interactive") or {})
    if kind == "template":
        template = message.get("template") or {}
        return None if template.get("name") and (template.get("language") or {}).get("code") else "template"
    return f"Unsupported message type {kind!r}"


def _interactive_problem(interactive: dict[str, Any]) -> str | None:
    body = (interactive.get("body") or {}).get("text")
    buttons = (interactive.get("action") or {}).get("buttons") or []
    if interactive.get("type") != "button" or not isinstance(body, str) or not body:
        return "Param interactive['body']['text'] is required"
    if len(body) > 1024:
        return "Param interactive['body']['text'] must be at most 1024 characters long."
    if not 1 <= len(buttons) <= 3:
        return "Param interactive['action']['buttons'] must have between 1 and 3 elements."
    ids = [str((b.get("reply") or {}).get("id", "")) for b in buttons]
    titles = [str((b.get("reply") or {}).get("title", "")) for b in buttons]
    if len(set(ids)) != len(ids) or not all(ids):
        return "Button ids must be unique and not empty."
    if not all(0 < len(t) <= 20 for t in titles):
        return "Button title length must be between 1 and 20 characters."
    return None
