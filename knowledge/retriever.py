"""From a patient question to ranked articles: dense and lexical scores of every index row, fused per article.

Every row of the index (an article's passages and the patient questions it lists) is scored twice: by the
cosine of the question's embedding with the row's (FAISS) and by normalised BM25 over the words (bm25s).
Per article that gives three signals, fused with calibrated weights (`retrieval.weights` in settings.yml,
written by `python -m knowledge calibrate`):

- question: the best cosine between the patient's question and one the article lists (question to question),
- passage: the best cosine with one of its passages,
- lexical: the best normalised BM25 over its rows.

A moderate boost is added to the ranking (not to the fused score the answer threshold reads) when the
article's topic is the topic of the Rasa intent (`ask_<topic>`): NLU can be wrong, so it may reorder close
candidates but not turn a weak match into an answer. When the treatment day is known, articles whose `days`
range does not contain it are excluded; articles without `days` apply on any day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from knowledge.chunking import Passage, without_treatment_name
from knowledge.embedding import Embedder
from knowledge.index import IndexMismatchError, PassageStore
from knowledge.lexical import terms

SETTINGS_FILE = Path(__file__).with_name("settings.yml")
QUESTION_INTENT_PREFIX = "ask_"
DEFAULT_TOP_K = 5
DEFAULT_TOPIC_BOOST = 0.03
DEFAULT_QUERY_CACHE_SIZE = 512
MAX_TOPIC_BOOST = 0.3
# How much a passage's own words count when choosing which of an article's passages to quote.
QUOTE_LEXICAL_WEIGHT = 0.3


def read_settings(section: str, path: Path | None = None) -> dict[str, Any]:
    """One section of `knowledge/settings.yml` (or of the file at `path`)."""
    data = yaml.safe_load((path or SETTINGS_FILE).read_text(encoding="utf-8")) or {}
    if not isinstance(data.get(section), dict):
        raise ValueError(f"{path or SETTINGS_FILE}: missing section '{section}'")
    return data[section]


@dataclass(frozen=True)
class Weights:
    """How the three per-article signals are fused; they sum to 1 so the fused score reads like a cosine."""

    question: float = 0.5
    passage: float = 0.3
    lexical: float = 0.2

    def __post_init__(self) -> None:
        values = (self.question, self.passage, self.lexical)
        if not all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"fusion weights must be numbers >= 0, got {values}")
        if abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f"fusion weights must sum to 1, got {sum(values):.3f}")

    def fuse(self, question: float | None, passage: float, lexical: float | None) -> float:
        """The fused score over the signals there are: without a lexical signal (a question of stop words
        only, "what is it?") or without a question signal (an article that lists no questions: a staff draft,
        an article written before questions were listed) the other weights share the missing one's weight,
        so a missing signal costs nothing."""
        signals = [(self.passage, passage)]
        signals += [(self.question, question)] if question is not None else []
        signals += [(self.lexical, lexical)] if lexical is not None else []
        total = sum(weight for weight, _ in signals)
        return sum(weight * value for weight, value in signals) / total if total else 0.0


@dataclass(frozen=True)
class Hit:
    """A quotable passage that matched a question, and why."""

    passage: Passage
    score: float  # cosine similarity between question and passage
    adjusted_score: float  # cosine + boosts: the ranking key
    reasons: tuple[str, ...]
    excluded: bool = False  # filtered out (treatment day); only `Retriever.rank` returns these


@dataclass(frozen=True)
class Candidate:
    """One article as the answer to a question: its signals, the fused score, the passages to quote."""

    article_id: str
    title: str
    topic: str
    stage: str
    question_score: float  # best cosine with a question the article lists (0 when it lists none)
    passage_score: float  # best cosine with one of its passages
    lexical_score: float  # best normalised BM25 over its rows
    score: float  # fused: what the answer threshold reads
    rank_score: float  # fused + intent boost: the ranking key
    passages: tuple[Passage, ...]  # its quotable passages, the best one for the question first
    excluded: bool  # outside the article's treatment days
    reasons: tuple[str, ...]


def topic_of_intent(intent: str | None) -> str | None:
    """`ask_makeup_after` -> `makeup_after`; other intents (greet, nlu_fallback, ...) have no topic."""
    if intent and intent.startswith(QUESTION_INTENT_PREFIX) and len(intent) > len(QUESTION_INTENT_PREFIX):
        return intent[len(QUESTION_INTENT_PREFIX) :]
    return None


class Retriever:
    """Scores a `PassageStore` for questions embedded by the same model that built it."""

    def __init__(
        self,
        store: PassageStore,
        embedder: Embedder,
        top_k: int = DEFAULT_TOP_K,
        *,
        topic_boost: float = DEFAULT_TOPIC_BOOST,
        weights: Weights | None = None,
        query_cache_size: int = DEFAULT_QUERY_CACHE_SIZE,
    ) -> None:
        _check_settings(top_k, topic_boost)
        if (store.manifest.model_name, store.manifest.dimension) != (embedder.model_name, embedder.dimension):
            raise IndexMismatchError(
                f"the index was built with {store.manifest.model_name}, the embedder is {embedder.model_name}"
            )
        self.store = store
        self.top_k = top_k
        self.topic_boost = topic_boost
        self.weights = weights or Weights()
        self._embedder = embedder
        self._embed_query = lru_cache(maxsize=query_cache_size)(self._embed_uncached)
        self._rows_of: dict[str, list[int]] = {}
        for row, passage in enumerate(store.passages):
            self._rows_of.setdefault(passage.article_id, []).append(row)

    @classmethod
    def from_settings(cls, store: PassageStore, embedder: Embedder, path: Path | None = None) -> Retriever:
        """A retriever configured by the `retrieval` section of settings.yml."""
        settings = read_settings("retrieval", path)
        return cls(
            store,
            embedder,
            settings.get("top_k", DEFAULT_TOP_K),
            topic_boost=settings.get("topic_boost", DEFAULT_TOPIC_BOOST),
            weights=Weights(**settings["weights"]) if settings.get("weights") else None,
            query_cache_size=settings.get("query_cache_size", DEFAULT_QUERY_CACHE_SIZE),
        )

    def embed(self, query: str) -> np.ndarray:
        """The question's normalised embedding (recent ones are cached; the array is read-only)."""
        return self._embed_query(" ".join(query.split()))

    def candidates(self, query: str, intent: str | None = None, day: int | None = None) -> list[Candidate]:
        """Every article scored for the question, best first; those outside the treatment day come last."""
        query = " ".join(query.split())
        if not query or not len(self.store):
            return []
        dense = self.store.dense_scores(self.embed(query))
        query_terms = terms(query)
        has_words = any(self.store.lexical.knows(term) for term in query_terms)
        lexical = self.store.lexical.scores(query_terms) if has_words else None
        topic = topic_of_intent(intent)
        found = [
            self._candidate(article, rows, dense, lexical, topic, day)
            for article, rows in self._rows_of.items()
        ]
        return sorted(found, key=lambda c: (not c.excluded, c.rank_score), reverse=True)

    def search(self, query: str, intent: str | None = None, day: int | None = None) -> list[Hit]:
        """The `top_k` best quotable passages for the question, best first, never one excluded by the day."""
        return [hit for hit in self.rank(query, intent, day) if not hit.excluded][: self.top_k]

    def rank(self, query: str, intent: str | None = None, day: int | None = None) -> list[Hit]:
        """Every quotable passage by cosine (+ the intent boost); excluded ones are kept but flagged."""
        query = " ".join(query.split())
        if not query:
            return []
        topic = topic_of_intent(intent)
        dense = self.store.dense_scores(self.embed(query))
        hits = []
        for row, passage in enumerate(self.store.passages):
            if not passage.is_quotable:
                continue
            cosine = float(dense[row])
            boost = self.topic_boost if topic is not None and passage.topic == topic else 0.0
            reasons = [f"cosine similarity {cosine:.3f}"]
            if boost:
                reasons.append(f"topic '{topic}' matches the intent: +{boost:.2f}")
            excluded = day is not None and not passage.applies_on(day)
            if day is not None:
                reasons.append(_day_reason(passage, day, excluded))
            hits.append(Hit(passage, cosine, cosine + boost, tuple(reasons), excluded))
        return sorted(hits, key=lambda hit: hit.adjusted_score, reverse=True)

    def _candidate(
        self,
        article_id: str,
        rows: Sequence[int],
        dense: np.ndarray,
        lexical: np.ndarray | None,
        topic: str | None,
        day: int | None,
    ) -> Candidate:
        passages = self.store.passages
        quotable = [row for row in rows if passages[row].is_quotable]
        asked = [row for row in rows if not passages[row].is_quotable]
        question = max((float(dense[row]) for row in asked), default=None)
        passage = max((float(dense[row]) for row in quotable), default=0.0)
        words = max((float(lexical[row]) for row in rows), default=0.0) if lexical is not None else None
        fused = self.weights.fuse(question, passage, words)
        first = passages[rows[0]]
        boost = self.topic_boost if topic is not None and first.topic == topic else 0.0
        excluded = day is not None and not first.applies_on(day)
        shown = "-" if words is None else f"{words:.3f}"
        asked_shown = "-" if question is None else f"{question:.3f}"
        reasons = [f"question match {asked_shown}, passage {passage:.3f}, words {shown} -> fused {fused:.3f}"]
        if boost:
            reasons.append(f"topic '{topic}' matches the intent: +{boost:.2f} to the ranking")
        if day is not None:
            reasons.append(_day_reason(first, day, excluded))
        words_of_row = (lambda row: float(lexical[row])) if lexical is not None else (lambda row: 0.0)
        order = sorted(
            quotable,
            key=lambda row: float(dense[row]) + QUOTE_LEXICAL_WEIGHT * words_of_row(row),
            reverse=True,
        )
        return Candidate(
            article_id=article_id,
            title=first.title,
            topic=first.topic,
            stage=first.stage,
            question_score=question or 0.0,
            passage_score=passage,
            lexical_score=words or 0.0,
            score=fused,
            rank_score=fused + boost,
            passages=tuple(passages[row] for row in order),
            excluded=excluded,
            reasons=tuple(reasons),
        )

    def _embed_uncached(self, query: str) -> np.ndarray:
        vector = self._embedder.encode([without_treatment_name(query)])[0]
        vector.flags.writeable = False  # shared by every caller through the cache
        return vector


def _day_reason(passage: Passage, day: int, excluded: bool) -> str:
    if passage.days is None:
        return f"treatment day {day}: the article applies on any day"
    first, last = passage.days
    verdict = "excluded: outside" if excluded else "within"
    return f"treatment day {day} {verdict} the article's days {first}-{last}"


def _check_settings(top_k: Any, topic_boost: Any) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a whole number >= 1, got {top_k!r}")
    if not isinstance(topic_boost, int | float) or not math.isfinite(topic_boost):
        raise ValueError(f"topic_boost must be a number, got {topic_boost!r}")
    if not 0 <= topic_boost <= MAX_TOPIC_BOOST:
        # A large boost would let a wrong NLU intent override what the question actually says.
        raise ValueError(f"topic_boost must be between 0 and {MAX_TOPIC_BOOST}, got {topic_boost}")
