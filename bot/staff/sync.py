"""Keeps this app instance on the newest published knowledge: a background thread that swaps the index.

Every publish, rollback or retirement writes a release row (the content hash of the published articles)
in the same transaction. Each instance's thread looks at the newest release every `poll_seconds` (one
indexed query), and at once when this instance published; when the hash differs from what it serves it
reads the published articles, gets the index for them (a saved one from a shared index folder, or an
incremental build) and swaps it in. So several instances need only the shared database.
"""

from __future__ import annotations

import logging
import threading

from bot.staff.articles import ArticleStore
from knowledge.live import LiveIndex

log = logging.getLogger(__name__)


class KnowledgeSync:
    def __init__(self, store: ArticleStore, live: LiveIndex, poll_seconds: float = 2.0) -> None:
        self.store = store
        self.live = live
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="knowledge-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        """Look now (this instance just published)."""
        self._wake.set()

    def sync_once(self) -> bool:
        """Swap to the newest release if this instance does not serve it yet; True when it swapped."""
        release = self.store.latest_release()
        if release is None or (self.live.loaded and release[1] == self.live.current.content_hash):
            return False
        return self.live.refresh(self.store.published_articles())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except Exception as error:  # noqa: BLE001 - the current version keeps answering
                log.error("knowledge sync failed: %s", type(error).__name__, exc_info=error)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
