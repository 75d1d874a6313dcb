"""Putting messages into the outbox: in the caller's transaction, once per dedupe key."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import utcnow
from bot.outbox.models import OutboxMessage

log = logging.getLogger(__name__)


class Outbox:
    """Adds outbox rows and wakes the workers that deliver them."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(
        self,
        session: Session,
        *,
        kind: str,
        channel: str,
        recipient: str,
        priority: int,
        dedupe_key: str,
        body: dict[str, Any] | None = None,
        escalation_id: int | None = None,
        conversation_id: str | None = None,
        now: datetime | None = None,
    ) -> OutboxMessage | None:
        """Queue one message in `session`'s transaction: it exists if and only if what it announces does.

        Returns None when a message with the same key is already queued (a duplicate)."""
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)) is not None:
            return None
        now = now or utcnow()
        row = OutboxMessage(
            kind=kind,
            priority=priority,
            channel=channel,
            recipient=recipient,
            escalation_id=escalation_id,
            conversation_id=conversation_id,
            body=body,
            dedupe_key=dedupe_key,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(row)
        return row

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` (from any thread) after something was queued; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.remove(listener)

        return unsubscribe

    def wake(self) -> None:
        """Tell the workers to look now (call after the transaction that queued rows committed)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
