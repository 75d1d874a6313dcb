"""The knowledge version an app instance answers from, and its swap when new content is published.

A `KnowledgeVersion` is one index (`PassageStore`) with the answerer built over it; it never changes. The
`LiveIndex` holds the current one and replaces it with a single reference assignment, so a question that
started on the old version finishes on it, and no question ever sees half of each. Building happens
beside the running version (in a background thread of the app): unchanged passages keep their vectors,
so publishing one article embeds only that article.

Several app instances stay in step through the published content's hash (see bot/staff/sync.py): each one
looks for a saved index with that hash in its index folder (shared disk: another instance built it) and
builds it itself otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from knowledge.answers import Answerer
from knowledge.articles import Article
from knowledge.embedding import Embedder
from knowledge.index import PassageStore, content_hash, find_saved, prune

log = logging.getLogger(__name__)

AnswererFactory = Callable[[PassageStore, Embedder], Answerer]
KEEP_VERSIONS = 20
CANDIDATES_KEPT = 8


@dataclass(frozen=True)
class KnowledgeVersion:
    """One immutable knowledge version: the index and the answerer over it."""

    store: PassageStore
    answerer: Answerer

    @property
    def content_hash(self) -> str:
        return self.store.manifest.content_hash

    @property
    def version(self) -> str:
        return self.store.manifest.version


class LiveIndex:
    """Holds the version patients are answered from; builds, saves and swaps in new ones."""

    def __init__(
        self,
        embedder: Embedder,
        make_answerer: AnswererFactory,
        index_dir: Path | None = None,  # None: versions live in memory only (tests, tools)
        keep_versions: int = KEEP_VERSIONS,
    ) -> None:
        self.embedder = embedder
        self.index_dir = index_dir
        self.keep_versions = keep_versions
        self.make_answerer = make_answerer
        self._current: KnowledgeVersion | None = None
        self._build_lock = threading.Lock()  # one build at a time; readers never wait for it
        self._listeners: list[Callable[[KnowledgeVersion], None]] = []
        self._candidates: OrderedDict[str, PassageStore] = OrderedDict()
        self._candidates_lock = threading.Lock()
        self.last_swap_seconds: float | None = None  # how long the last refresh took (for /admin/knowledge)

    @property
    def current(self) -> KnowledgeVersion:
        if self._current is None:
            raise RuntimeError("no knowledge version loaded yet")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def subscribe(self, listener: Callable[[KnowledgeVersion], None]) -> None:
        """Call `listener(version)` after every swap (in the thread that swapped)."""
        self._listeners.append(listener)

    def refresh(self, articles: Iterable[Article]) -> bool:
        """Make the published `articles` live if they are not already; True when a swap happened."""
        articles = list(articles)
        digest = content_hash(articles)
        with self._build_lock:
            if self._current is not None and self._current.content_hash == digest:
                return False
            started = time.perf_counter()
            store = self._saved(digest) or self._build_and_save(articles)
            self._install(store)
            self.last_swap_seconds = time.perf_counter() - started
        log.info("knowledge version %s live (%d passages)", store.manifest.version, len(store))
        return True

    def install(self, store: PassageStore) -> KnowledgeVersion:
        """Make a store that is already built live (e.g. one loaded or built before the app started)."""
        with self._build_lock:
            self._install(store)
        return self.current

    def candidate(self, articles: Iterable[Article]) -> KnowledgeVersion:
        """A version over `articles` that is not live (drafts to try, a change to check); cached."""
        articles = list(articles)
        digest = content_hash(articles)
        with self._candidates_lock:
            store = self._candidates.get(digest)
            if store is not None:
                self._candidates.move_to_end(digest)
        if store is None:
            if self._current is not None and self._current.content_hash == digest:
                store = self._current.store
            else:
                store = PassageStore.build(articles, self.embedder, reuse=self._reusable())
            with self._candidates_lock:
                self._candidates[digest] = store
                while len(self._candidates) > CANDIDATES_KEPT:
                    self._candidates.popitem(last=False)
        return KnowledgeVersion(store, self.make_answerer(store, self.embedder))

    def version_for(self, store: PassageStore, embedder: Embedder | None = None) -> KnowledgeVersion:
        """`store` with an answerer of its own (e.g. over a caching embedder for the safety gate)."""
        return KnowledgeVersion(store, self.make_answerer(store, embedder or self.embedder))

    # --- internals -----------------------------------------------------------------------------------
    def _saved(self, digest: str) -> PassageStore | None:
        with self._candidates_lock:
            candidate = self._candidates.get(digest)
        if candidate is not None:
            if self.index_dir is not None:
                candidate.save(self.index_dir)
            return candidate
        if self.index_dir is None:
            return None
        return find_saved(self.index_dir, digest, self.embedder)

    def _build_and_save(self, articles: list[Article]) -> PassageStore:
        store = PassageStore.build(articles, self.embedder, reuse=self._reusable())
        if self.index_dir is not None:
            store.save(self.index_dir)
            try:
                prune(self.index_dir, self.keep_versions)
            except OSError as error:  # another instance pruning at the same time
                log.warning("old index versions not pruned: %s", type(error).__name__)
        return store

    def _reusable(self) -> PassageStore | None:
        return self._current.store if self._current is not None else None

    def _install(self, store: PassageStore) -> None:
        version = KnowledgeVersion(store, self.make_answerer(store, self.embedder))
        self._current = version  # the swap: one reference assignment
        for listener in list(self._listeners):
            listener(version)
