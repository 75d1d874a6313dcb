"""One message ready to hand to a delivery channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Notice:
    """`key` is stable across retries and restarts: the provider's idempotency key where it has one."""

    key: str
    channel: str
    recipient: str
    subject: str
    text: str
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
