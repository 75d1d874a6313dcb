"""Rate limits per client, per conversation and overall (the `limits` library; Redis for several instances).

A client here is what the channel knows of the sender: the network address for the web and API, the phone
number for SMS and WhatsApp (every Twilio request comes from Twilio's addresses). Keys are hashed, so
neither addresses nor phone numbers sit in the limiter's storage.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from limits import RateLimitItem, parse, storage, strategies

from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: str | None = None  # which limit was hit: client | conversation | global | sessions | reads


def _key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


class RateLimits:
    def __init__(
        self,
        storage_url: str,
        per_client: str,
        per_conversation: str,
        overall: str,
        new_sessions: str,
        reads_per_client: str = "240/minute",
    ) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_url))
        self._items: dict[str, RateLimitItem] = {
            "client": parse(per_client),
            "conversation": parse(per_conversation),
            "global": parse(overall),
            "sessions": parse(new_sessions),
            "reads": parse(reads_per_client),
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            settings.rate_limit_storage,
            settings.rate_limit_per_client,
            settings.rate_limit_per_conversation,
            settings.rate_limit_global,
            settings.rate_limit_new_sessions,
            settings.rate_limit_reads_per_client,
        )

    def message(self, client: str | None, conversation_id: str | None) -> Verdict:
        """Count one message; whether it may be answered in full."""
        checks = [("global", "all")]
        if client:
            checks.append(("client", _key(client)))
        if conversation_id:
            checks.append(("conversation", _key(conversation_id)))
        return self._hit(checks)

    def started(self, conversation_id: str) -> None:
        """A new conversation's first message counts against its own allowance too (it had no id yet)."""
        self._hit([("conversation", _key(conversation_id))])

    def new_session(self, client: str | None) -> Verdict:
        return self._hit([("sessions", _key(client or "unknown"))])

    def read(self, client: str | None) -> Verdict:
        """Count one read (a page, the widget's files and texts, a poll for new messages): a budget of its
        own, so polling never eats into the messages a patient may send."""
        return self._hit([("reads", _key(client or "unknown"))])

    def _hit(self, checks: list[tuple[str, str]]) -> Verdict:
        for name, key in checks:
            try:
                if not self._limiter.hit(self._items[name], name, key):
                    return Verdict(False, name)
            except Exception as error:  # noqa: BLE001 - a limiter outage must not stop patients
                log.error("rate limiter unavailable: %s", type(error).__name__)
                return Verdict(True)
        return Verdict(True)
