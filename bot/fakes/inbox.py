"""What a fake server received, kept for tests and the control endpoint."""

from __future__ import annotations

import threading
from typing import Any


class Inbox:
    """A list of received items, safe to read from other threads while the server stores more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []

    def received(self) -> list[dict[str, Any]]:
        """A copy of everything stored so far, oldest first."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def store(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._received.append(item)
