"""A fake receiver of the staff-notification JSON webhook: stores each POST and checks its signature."""

from __future__ import annotations

import hashlib
import hmac

from bot.fakes.http import FakeRequest, HttpFake, Reply

SIGNATURE_HEADER = "x-assistant-signature"
IDEMPOTENCY_HEADER = "idempotency-key"


def sign(secret: str, body: bytes) -> str:
    """The signature the sender puts in `X-Assistant-Signature` (HMAC-SHA256 of the exact body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeWebhookReceiver(HttpFake):
    """Accepts JSON POSTs on any path; `received()` lists them with their headers and signature check."""

    def __init__(self, secret: str = "", port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(port, host)
        self.secret = secret

    def respond(self, request: FakeRequest) -> Reply:
        if request.method != "POST":
            return 405, {"detail": "POST only"}
        try:
            payload = request.json()
        except ValueError:
            return 400, {"detail": "body is not JSON"}
        signature = request.headers.get(SIGNATURE_HEADER, "")
        self.store(
            {
                "path": request.path,
                "json": payload,
                "idempotency_key": request.headers.get(IDEMPOTENCY_HEADER),
                "signature_valid": bool(self.secret)
                and hmac.compare_digest(signature, sign(self.secret, request.body)),
            }
        )
        return 200, {"received": True}
