"""From a patient question to ranked passages: cosine search, intent topic boost, treatment-day filter.

Ranking = cosine similarity + a moderate boost when the passage's topic is the topic of the Rasa intent
(`ask_<topic>`). The boost only reorders close candidates: NLU can be wrong, so it must not be able to pull a
clearly worse passage to the top. When the treatment day is known, passages of articles whose `days` range
does not contain it are excluded; articles without `days` apply on any day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from knowledge.chunking import Passage
from knowledge.embedding import Embedder
from knowledge.index import IndexMismatchError, PassageStore

SETTINGS_FILE = Path(__file__).with_name("settings.yml")
QUESTION_INTENT_PREFIX = "ask_"
DEFAULT_TOP_K = 5
DEFAULT_TOPIC_BOOST = 0.07
DEFAULT_CANDIDATES = 50
DEFAULT_QUERY_CACHE_SIZE = 512
MAX_TOPIC_BOOST = 0.3


def read_settings(section: str, path: Path | None = None) -> dict[str, Any]:
    """One section of `knowledge/settings.yml` (or of the file at `path`)."""
    data = yaml.safe_load((path or SETTINGS_FILE).read_text(encoding="utf-8")) or {}
    if not isinstance(data.get(section), dict):
        raise ValueError(f"{path or SETTINGS_FILE}: missing section '{section}'")
    return data[section]


@dataclass(frozen=True)
class Hit:
    """A passage that matched a question, and why."""

    passage: Passage
    score: float  # cosine similarity between question and passage
    adjusted_score: float  # cosine + boosts: the ranking key
    reasons: tuple[str, ...]
    excluded: bool = False  # filtered out (treatment day); only `Retriever.rank` returns these


def topic_of_intent(intent: str | None) -> str | None:
    """`ask_makeup_after` -> `makeup_after`; other intents (greet, nlu_fallback, ...) have no topic."""
    if intent and intent.startswith(QUESTION_INTENT_PREFIX) and len(intent) > len(QUESTION_INTENT_PREFIX):
        return intent[len(QUESTION_INTENT_PREFIX) :]
    return None


class Retriever:
    """Searches a `PassageStore` with questions embedded by the same model that built it."""

    def __init__(
        self,
        store: PassageStore,
        embedder: Embedder,
        top_k: int = DEFAULT_TOP_K,
        *,
        topic_boost: float = DEFAULT_TOPIC_BOOST,
        candidates: int = DEFAULT_CANDIDATES,
        query_cache_size: int = DEFAULT_QUERY_CACHE_SIZE,
    ) -> None:
        _check_settings(top_k, topic_boost, candidates)
        if (store.manifest.model_name, store.manifest.dimension) != (embedder.model_name, embedder.dimension):
            raise IndexMismatchError(
                f"the index was built with {store.manifest.model_name}, the embedder is {embedder.model_name}"
            )
        self.store = store
        self.top_k = top_k
        self.topic_boost = topic_boost
        self._embedder = embedder
        self._pool = max(candidates, top_k)
        self._embed_query = lru_cache(maxsize=query_cache_size)(self._embed_uncached)

    @classmethod
    def from_settings(cls, store: PassageStore, embedder: Embedder, path: Path | None = None) -> Retriever:
        """A retriever configured by the `retrieval` section of settings.yml."""
        settings = read_settings("retrieval", path)
        return cls(
            store,
            embedder,
            settings.get("top_k", DEFAULT_TOP_K),
            topic_boost=settings.get("topic_boost", DEFAULT_TOPIC_BOOST),
            candidates=settings.get("candidates", DEFAULT_CANDIDATES),
            query_cache_size=settings.get("query_cache_size", DEFAULT_QUERY_CACHE_SIZE),
        )

    def search(self, query: str, intent: str | None = None, day: int | None = None) -> list[Hit]:
        """The `top_k` best passages for the question, best first, never one excluded by the day."""
        return [hit for hit in self.rank(query, intent, day) if not hit.excluded][: self.top_k]

    def rank(self, query: str, intent: str | None = None, day: int | None = None) -> list[Hit]:
        """Every candidate FAISS returned, scored and sorted; excluded ones are kept but flagged."""
        query = " ".join(query.split())
        if not query:
            return []
        topic = topic_of_intent(intent)
        candidates = self.store.search(self._embed_query(query), self._pool)
        hits = [self._score(passage, cosine, topic, day) for passage, cosine in candidates]
        return sorted(hits, key=lambda hit: hit.adjusted_score, reverse=True)

    def _score(self, passage: Passage, cosine: float, topic: str | None, day: int | None) -> Hit:
        reasons = [f"cosine similarity {cosine:.3f}"]
        boost = 0.0
        if topic is not None and passage.topic == topic:
            boost = self.topic_boost
            reasons.append(f"topic '{topic}' matches the intent: +{boost:.2f}")
        excluded = day is not None and not passage.applies_on(day)
        if day is not None:
            reasons.append(_day_reason(passage, day, excluded))
        return Hit(passage, cosine, cosine + boost, tuple(reasons), excluded)

    def _embed_uncached(self, query: str) -> np.ndarray:
        vector = self._embedder.encode([query])[0]
        vector.flags.writeable = False  # shared by every caller through the cache
        return vector


def _day_reason(passage: Passage, day: int, excluded: bool) -> str:
    if passage.days is None:
        return f"treatment day {day}: the article applies on any day"
    first, last = passage.days
    verdict = "excluded: outside" if excluded else "within"
    return f"treatment day {day} {verdict} the article's days {first}-{last}"


def _check_settings(top_k: Any, topic_boost: Any, candidates: Any) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a whole number >= 1, got {top_k!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"candidates must be a whole number >= 1, got {candidates!r}")
    if not isinstance(topic_boost, int | float) or not math.isfinite(topic_boost):
        raise ValueError(f"topic_boost must be a number, got {topic_boost!r}")
    if not 0 <= topic_boost <= MAX_TOPIC_BOOST:
        # A large boost would let a wrong NLU intent override what the question actually says.
        raise ValueError(f"topic_boost must be between 0 and {MAX_TOPIC_BOOST}, got {topic_boost}")
