"""Extractive answers: the clinic's own reviewed passages, with the source article cited.

The assistant never writes new medical text. It quotes the top-ranked passage (and at most one more passage
of the same article when that one also clears the threshold and adds something), or, when the top passage's
cosine similarity is below the calibrated threshold, says it cannot answer from the clinic's guidance and
gives the clinic's phone. A message with several questions is split and each question is answered on its
own (up to a limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from knowledge.chunking import Passage
from knowledge.clinic import ClinicProfile
from knowledge.retriever import Hit, Retriever, read_settings, topic_of_intent
from safety.reading.nlp import blank_english

DEFAULT_MAX_QUESTIONS = 3
# A second passage whose words mostly repeat the first one adds nothing worth the patient's reading time.
MAX_EXTRA_PASSAGE_OVERLAP = 0.6
# Words a question usually starts with, SMS spellings included.
QUESTION_WORDS = frozenset(
    (  # noqa: SIM905 - a plain word list reads better than 27 quoted strings
        "can could should shall is are am was were do does did will would may might must "
        "when what whats how hows why where which who whos"
    ).split()
)
# A question quoted back in an "ask the clinic" line is cut to this many characters.
QUOTED_QUESTION_CHARS = 80
LEADING_JOINT = re.compile(r"^(?:and\s+also|also|and|plus|oh\s+and|btw)\b[\s,]*", re.IGNORECASE)
# "... and can I ...", "..., also when ...": a joint only splits when a new question starts right after it.
INNER_JOINT = re.compile(
    r"\s*,?\s+(?:and\s+also|also|and|plus)\s*,?\s+"
    r"(?=(?:can|could|should|do|does|is|are|will|may|when|what|how|why|where|which)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Wording:
    """Reply templates (settings.yml `answers.wording`); `{clinic_phone}` etc. are clinic profile facts."""

    citation: str  # {title}: the cited article's title
    fallback: str
    unanswered_part: str  # {question}: the question that could not be answered
    more_questions: str

    @classmethod
    def from_settings(cls, path: Path | None = None) -> Wording:
        return cls(**read_settings("answers", path)["wording"])


@dataclass(frozen=True)
class Answer:
    """The reply to one patient message."""

    kind: Literal["answer", "fallback"]
    text: str
    sources: list[dict] = field(default_factory=list)  # [{"id", "title", "version"}] of the cited articles
    score: float = 0.0  # best cosine similarity behind the decision


@dataclass(frozen=True)
class _Part:
    """The outcome for one question of the message: the passages to quote, or none."""

    question: str
    passages: tuple[Passage, ...]
    score: float


class Answerer:
    """Composes extractive replies from a `Retriever`'s hits."""

    def __init__(
        self,
        retriever: Retriever,
        clinic: ClinicProfile,
        threshold: float,
        *,
        intent_threshold: float | None = None,
        max_questions: int = DEFAULT_MAX_QUESTIONS,
        wording: Wording | None = None,
    ) -> None:
        intent_threshold = threshold if intent_threshold is None else intent_threshold
        if not -1.0 <= intent_threshold <= threshold <= 1.0:
            raise ValueError(f"thresholds are cosines with -1 <= intent_threshold <= threshold <= 1, got "
                             f"{intent_threshold} and {threshold}")
        if max_questions < 1:
            raise ValueError(f"max_questions must be >= 1, got {max_questions}")
        self.retriever = retriever
        # Each article opens with its direct answer (an editorial rule for articles), so a reply quoting a
        # later paragraph leads with the opening one.
        self._openings = {p.article_id: p for p in retriever.store.passages if p.position == 0}
        self.threshold = threshold
        self.intent_threshold = intent_threshold
        self.max_questions = max_questions
        wording = wording or Wording.from_settings()
        self._citation = wording.citation
        self._fallback = clinic.fill(wording.fallback)
        self._unanswered_part = _fill_clinic_facts(wording.unanswered_part, clinic, keep="question")
        self._more_questions = clinic.fill(wording.more_questions)

    @classmethod
    def from_settings(cls, retriever: Retriever, clinic: ClinicProfile, path: Path | None = None) -> Answerer:
        """An answerer configured by the `answers` section of settings.yml (threshold, wording)."""
        settings = read_settings("answers", path)
        return cls(
            retriever,
            clinic,
            settings["threshold"],
            intent_threshold=settings.get("intent_threshold"),
            max_questions=settings.get("max_questions", DEFAULT_MAX_QUESTIONS),
            wording=Wording(**settings["wording"]),
        )

    def fallback_text(self) -> str:
        """The "can't answer from the clinic's guidance, please call" reply, for callers that skip search."""
        return self._fallback

    def answer(self, message: str, intent: str | None = None, day: int | None = None) -> Answer:
        """Answer every question in the message (up to `max_questions`) from the clinic's articles."""
        questions = split_questions(message)
        # The NLU intent describes the whole message; with several questions it fits one of them at best.
        part_intent = intent if len(questions) == 1 else None
        parts = self._answer_parts(questions[: self.max_questions], part_intent, day)
        answered = [part for part in parts if part.passages]
        if not answered:
            best = max((part.score for part in parts), default=0.0)
            return Answer("fallback", self._fallback, [], best)
        lines = [self._quote(part) if part.passages else self._unanswered(part) for part in parts]
        if len(questions) > self.max_questions:
            lines.append(self._more_questions)
        cited = [part.passages[0] for part in answered]
        # The version lets the clinic show later exactly what the patient was told.
        sources = [{"id": p.article_id, "title": p.title, "version": p.version} for p in cited]
        return Answer("answer", "\n\n".join(lines), sources, max(part.score for part in answered))

    def _answer_parts(self, questions: list[str], intent: str | None, day: int | None) -> list[_Part]:
        """One part per question; a question answered by an article already quoted is dropped."""
        parts: list[_Part] = []
        quoted: set[str] = set()
        for question in questions:
            part = self._answer_one(question, intent, day)
            article_id = part.passages[0].article_id if part.passages else None
            if article_id in quoted:
                continue
            if article_id:
                quoted.add(article_id)
            parts.append(part)
        return parts

    def _answer_one(self, question: str, intent: str | None, day: int | None) -> _Part:
        """The top-ranked passage if it clears the threshold, after its article's opening or with one more
        passage of its article that adds to it."""
        hits = self.retriever.search(question, intent, day)
        if not hits:
            return _Part(question, (), 0.0)
        best = hits[0]
        # The decision uses the raw cosine, not the boosted score: a (possibly wrong) intent may reorder
        # passages but must not turn a weak match into an answer.
        if best.score < self._threshold_for(best, intent):
            return _Part(question, (), best.score)
        opening = self._openings.get(best.passage.article_id, best.passage)
        if opening != best.passage and not _repeats(opening, best.passage):
            return _Part(question, (opening, best.passage), best.score)
        extra = next((hit for hit in hits[1:] if hit.score >= self.threshold and _adds_to(hit, best)), None)
        if extra is None:
            return _Part(question, (best.passage,), best.score)
        return _Part(question, (best.passage, extra.passage), best.score)

    def _threshold_for(self, best: Hit, intent: str | None) -> float:
        """The strict threshold, or the lower one when the NLU intent names the best passage's topic: two
        independent signals agreeing ("ask_exercise" and the exercise article) need less textual overlap."""
        agrees = best.passage.topic == topic_of_intent(intent)
        return self.intent_threshold if agrees else self.threshold

    def _quote(self, part: _Part) -> str:
        texts = [passage.text for passage in part.passages]
        return "\n\n".join([*texts, self._citation.replace("{title}", part.passages[0].title)])

    def _unanswered(self, part: _Part) -> str:
        question = part.question.rstrip("?!. ")
        if len(question) > QUOTED_QUESTION_CHARS:
            question = question[: QUOTED_QUESTION_CHARS - 1].rstrip() + "…"
        return self._unanswered_part.replace("{question}", question)


def split_questions(message: str) -> list[str]:
    """Split a message into its distinct questions; statements travel with the question after them.

    "I had it done yesterday. Can I wear makeup? also when can I work out" ->
    ["I had it done yesterday. Can I wear makeup?", "when can I work out"]. A message with no question
    at all is one question ("my skin is peeling").
    """
    questions: list[str] = []
    pending: list[str] = []
    for segment in _segments(message):
        pending.append(segment)
        if _is_question(segment):
            questions.append(" ".join(pending))
            pending = []
    if pending and questions:
        questions[-1] = " ".join([questions[-1], *pending])
    elif pending:
        questions.append(" ".join(pending))
    return _distinct(questions)


def _segments(message: str) -> list[str]:
    """Sentences, further split at joints such as "and can I" or "also when"."""
    segments = []
    for sentence in blank_english()(" ".join(message.split())).sents:
        for piece in INNER_JOINT.split(sentence.text):
            piece = LEADING_JOINT.sub("", piece.strip())
            if piece:
                segments.append(piece)
    return segments


def _is_question(segment: str) -> bool:
    first_word = re.sub(r"[^a-z]", "", segment.split()[0].lower())
    return segment.endswith("?") or first_word in QUESTION_WORDS


def _distinct(questions: list[str]) -> list[str]:
    seen: set[str] = set()
    distinct = []
    for question in questions:
        key = " ".join(re.findall(r"[a-z0-9]+", question.lower()))
        if key not in seen:
            seen.add(key)
            distinct.append(question)
    return distinct


def _adds_to(candidate: Hit, best: Hit) -> bool:
    """Another passage of the same article that is not mostly a repeat of the best one."""
    same_article = candidate.passage.article_id == best.passage.article_id
    return same_article and not _repeats(candidate.passage, best.passage)


def _repeats(passage: Passage, other: Passage) -> bool:
    """Whether two passages share most of their words (quoting both would say the same thing twice)."""
    words, other_words = _words(passage.text), _words(other.text)
    return len(words & other_words) / max(1, len(words | other_words)) > MAX_EXTRA_PASSAGE_OVERLAP


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _fill_clinic_facts(template: str, clinic: ClinicProfile, keep: str) -> str:
    """Fill the clinic facts now and leave `{keep}` in place for a per-reply value."""
    placeholder = "{" + keep + "}"
    return clinic.fill(template.replace(placeholder, "{" + placeholder + "}"))
