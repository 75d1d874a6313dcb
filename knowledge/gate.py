"""The safety gate on publishing: what a content change does to the answers, and whether it is safe.

It answers the project's own labelled questions with the live content and with the candidate content (the
live content with the change applied), lists every question whose reply changes, and refuses a change
that breaks an emergency reply or makes a red-flag article unreachable (see knowledge/safety_gate.yml).

Questions are answered without Rasa (no NLU intent): the strict threshold applies, as for a question whose
intent names no topic. Question embeddings are cached across checks, and the live content's answers per
content hash, so a check costs one pass of FAISS searches once the cache is warm.
"""

from __future__ import annotations

import glob
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from knowledge.answers import Answerer
from knowledge.chunking import Passage
from knowledge.clinic import ClinicProfile
from knowledge.embedding import Embedder
from knowledge.index import PassageStore

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = Path(__file__).with_name("safety_gate.yml")
LABELLED_TRAIN = ROOT / "labelled" / "train"
RED_FLAG_QUESTION_SIGNS = ("general_question", "hypothetical")
CACHE_LIMIT = 20_000

# (level, signs) the red-flag protocol's rules read in a text.
RuleReader = Callable[[str], tuple[str, tuple[str, ...]]]
AnswererFactory = Callable[[PassageStore, Embedder], Answerer]


@dataclass(frozen=True)
class Probe:
    """A labelled question: `expected` are the articles that may answer it; none means it should fall back."""

    id: str
    text: str
    day: int | None
    expected: tuple[str, ...]
    red_flag_question: bool = False


@dataclass(frozen=True)
class Outcome:
    kind: str  # answer | fallback
    article: str | None  # the first article cited
    articles: tuple[str, ...] = ()

    def label(self) -> str:
        return self.article or "no answer (call the clinic)"


@dataclass(frozen=True)
class QuestionChange:
    probe: Probe
    before: Outcome
    after: Outcome

    @property
    def lost_answer(self) -> bool:
        return self.before.kind == "answer" and self.after.kind != "answer"

    @property
    def verdict(self) -> str:
        before, after = _right(self.probe, self.before), _right(self.probe, self.after)
        if before and not after:
            return "now wrong"
        if after and not before:
            return "now right"
        return "changed"


@dataclass(frozen=True)
class Reach:
    """How many of a red-flag article's questions reach it before and after the change."""

    article_id: str
    questions: int
    before: int
    after: int
    published_after: bool

    @property
    def broken(self) -> bool:
        return self.before > 0 and (self.after == 0 or not self.published_after)


@dataclass(frozen=True)
class EmergencyConflict:
    article_id: str
    position: int
    text: str
    signs: tuple[str, ...]
    already_live: bool


@dataclass(frozen=True)
class GateReport:
    live_hash: str
    candidate_hash: str
    questions: int
    right_before: int
    right_after: int
    changes: tuple[QuestionChange, ...]
    reach: tuple[Reach, ...]
    conflicts: tuple[EmergencyConflict, ...]
    seconds: float = 0.0
    refusals: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.refusals

    @property
    def lost_answers(self) -> tuple[QuestionChange, ...]:
        return tuple(change for change in self.changes if change.lost_answer)

    def summary(self) -> dict:
        """Counts for the audit log and the API."""
        return {
            "passed": self.passed,
            "questions": self.questions,
            "right_before": self.right_before,
            "right_after": self.right_after,
            "changed": len(self.changes),
            "lost_answers": len(self.lost_answers),
            "refusals": list(self.refusals),
        }


@dataclass(frozen=True)
class GateConfig:
    red_flag_articles: tuple[str, ...]
    emergency_instruction: tuple[str, ...]

    @classmethod
    def load(cls, clinic: ClinicProfile, path: Path = CONFIG_FILE) -> GateConfig:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        words = [
            str(w).replace("{emergency_number}", clinic.emergency_number)
            for w in data["emergency_instruction"]
        ]
        return cls(tuple(data["red_flag_articles"]), tuple(word.lower() for word in words))


@lru_cache(maxsize=4)
def labelled_probes(folder: Path = LABELLED_TRAIN) -> tuple[Probe, ...]:
    """The labelled questions (answer and fallback kinds) and the labelled questions about red flags."""
    probes = []
    for path in sorted(glob.glob(str(folder / "questions*.yml"))):
        for item in yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []:
            if item.get("kind") == "answer":
                expected = (item["article"], *(item.get("also") or ()))
            elif item.get("kind") == "fallback":
                expected = ()
            else:
                continue  # small talk, handoff, other languages: Rasa's side, not the articles'
            probes.append(Probe(str(item["id"]), str(item["text"]), item.get("day"), tuple(expected)))
    for path in sorted(glob.glob(str(folder / "symptoms*.yml"))):
        for item in yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []:
            english = "spanish" not in item.get("style", "") and item.get("style") not in (
                "french",
                "portuguese",
            )
            if item.get("sign") in RED_FLAG_QUESTION_SIGNS and english:
                probes.append(Probe(str(item["id"]), str(item["text"]), item.get("day"), (), True))
    return tuple(probes)


class CachingEmbedder:
    """Remembers the vectors of texts it embedded: the labelled questions are embedded once per process."""

    _shared: dict[int, CachingEmbedder] = {}

    @classmethod
    def shared(cls, inner: Embedder) -> CachingEmbedder:
        """One cache per model object for the whole process (every gate of this process shares it)."""
        if isinstance(inner, CachingEmbedder):
            return inner
        found = cls._shared.get(id(inner))
        if found is None or found.inner is not inner:
            found = cls._shared[id(inner)] = cls(inner)
        return found

    def __init__(self, inner: Embedder, limit: int = CACHE_LIMIT) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self._cache: dict[str, np.ndarray] = {}
        self._limit = limit

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
        if missing:
            if len(self._cache) + len(missing) > self._limit:
                self._cache.clear()
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._cache[text] for text in texts]).astype(np.float32, copy=False)


class SafetyGate:
    """Compares the live content with a candidate and decides whether the candidate may be published."""

    def __init__(
        self,
        make_answerer: AnswererFactory,
        embedder: Embedder,
        read_rules: RuleReader,
        config: GateConfig,
        probes: Iterable[Probe],
    ) -> None:
        self._make_answerer = make_answerer
        self._embedder = CachingEmbedder.shared(embedder)
        self._read_rules = read_rules
        self.config = config
        self.probes = tuple(probes)
        self._outcomes: dict[str, dict[str, Outcome]] = {}  # content hash -> probe id -> outcome
        self._rule_cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def warm(self, stop: Callable[[], bool] = lambda: False, batch: int = 32) -> None:
        """Embed every labelled question now (a few seconds, once per process), a batch at a time so that
        `stop()` can end it early (the app is shutting down)."""
        texts = [probe.text for probe in self.probes]
        for start in range(0, len(texts), batch):
            if stop():
                return
            self._embedder.encode(texts[start : start + batch])

    def check(self, live: PassageStore, candidate: PassageStore) -> GateReport:
        started = time.perf_counter()
        with self._lock:  # the caches are shared; two checks at once would do the same work twice
            before = self._answers(live)
            after = self._answers(candidate)
        changes = tuple(
            QuestionChange(probe, before[probe.id], after[probe.id])
            for probe in self.probes
            if before[probe.id] != after[probe.id]
        )
        scored = [probe for probe in self.probes if not probe.red_flag_question]
        reach = self._reach(live, candidate, before, after)
        conflicts = self._conflicts(live, candidate)
        refusals = [
            f"emergency reply broken: '{c.article_id}' passage {c.position + 1} describes an emergency "
            f"({', '.join(c.signs)}) without telling the patient to call the emergency number"
            for c in conflicts
            if not c.already_live
        ]
        refusals += [
            f"red-flag article unreachable: '{r.article_id}' "
            + ("would no longer be published" if not r.published_after else "answers none of its questions")
            + f" (it answered {r.before} of {r.questions} before)"
            for r in reach
            if r.broken
        ]
        return GateReport(
            live_hash=live.manifest.content_hash,
            candidate_hash=candidate.manifest.content_hash,
            questions=len(self.probes),
            right_before=sum(_right(p, before[p.id]) for p in scored),
            right_after=sum(_right(p, after[p.id]) for p in scored),
            changes=changes,
            reach=reach,
            conflicts=conflicts,
            seconds=time.perf_counter() - started,
            refusals=tuple(refusals),
        )

    # --- the labelled questions ------------------------------------------------------------------------
    def _answers(self, store: PassageStore) -> dict[str, Outcome]:
        digest = store.manifest.content_hash
        known = self._outcomes.get(digest)
        if known is not None:
            return known
        answerer = self._make_answerer(store, self._embedder)
        outcomes = {}
        for probe in self.probes:
            answer = answerer.answer(probe.text, None, probe.day)
            articles = tuple(source["id"] for source in answer.sources)
            outcomes[probe.id] = Outcome(answer.kind, articles[0] if articles else None, articles)
        if len(self._outcomes) > 16:
            self._outcomes.clear()
        self._outcomes[digest] = outcomes
        return outcomes

    def _reach(
        self,
        live: PassageStore,
        candidate: PassageStore,
        before: dict[str, Outcome],
        after: dict[str, Outcome],
    ) -> tuple[Reach, ...]:
        published_before = {p.article_id for p in live.passages}
        published_after = {p.article_id for p in candidate.passages}
        reach = []
        for article_id in self.config.red_flag_articles:
            if article_id not in published_before:
                continue
            questions = [
                probe
                for probe in self.probes
                if article_id in probe.expected
                or (probe.red_flag_question and article_id in before[probe.id].articles)
            ]
            reach.append(
                Reach(
                    article_id,
                    len(questions),
                    sum(article_id in before[probe.id].articles for probe in questions),
                    sum(article_id in after[probe.id].articles for probe in questions),
                    article_id in published_after,
                )
            )
        return tuple(reach)

    # --- emergency replies -----------------------------------------------------------------------------
    def _conflicts(self, live: PassageStore, candidate: PassageStore) -> tuple[EmergencyConflict, ...]:
        """Passages of the changed articles that describe an emergency without the emergency instruction."""
        live_texts = _by_article(live.passages)
        changed = {
            article_id
            for article_id, passages in _by_article(candidate.passages).items()
            if [p.text for p in passages] != [p.text for p in live_texts.get(article_id, [])]
        }
        live_conflicts = {
            (p.article_id, sign)
            for article_id in changed
            for p in live_texts.get(article_id, [])
            for sign in self._emergency_signs(p)
        }
        conflicts = []
        for passage in candidate.passages:
            if passage.article_id not in changed:
                continue
            signs = self._emergency_signs(passage)
            if signs:
                already = all((passage.article_id, sign) in live_conflicts for sign in signs)
                conflicts.append(
                    EmergencyConflict(passage.article_id, passage.position, passage.text, signs, already)
                )
        return tuple(conflicts)

    def _emergency_signs(self, passage: Passage) -> tuple[str, ...]:
        reading = self._rule_cache.get(passage.text)
        if reading is None:
            reading = self._read_rules(passage.text)
            self._rule_cache[passage.text] = reading
        level, signs = reading
        lowered = passage.text.lower()
        if level != "emergency" or any(word in lowered for word in self.config.emergency_instruction):
            return ()
        return signs


def _right(probe: Probe, outcome: Outcome) -> bool:
    if probe.red_flag_question:
        return False
    if not probe.expected:
        return outcome.kind == "fallback"
    return outcome.kind == "answer" and outcome.article in probe.expected


def _by_article(passages: Iterable[Passage]) -> dict[str, list[Passage]]:
    grouped: dict[str, list[Passage]] = {}
    for passage in passages:
        grouped.setdefault(passage.article_id, []).append(passage)
    return grouped
