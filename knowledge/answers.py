"""Extractive answers: the clinic's own reviewed passages, with the source article cited, or an honest "no".

For each question of a message (a message with several is split, up to a limit) the answerer decides, in
order:

1. the domain gate: a request that is not about the treatment at all ("how do I wash my car?") gets the
   short "I can only help with your microneedling treatment" reply, never an article;
2. the things check: a question about a thing no article covers (coffee, a sauna, Botox, the neck) gets
   "I don't have the clinic's guidance on <thing>", never the nearest article;
3. the stage: whether the treatment has happened, from the question's own words or else the conversation
   (treatment date, "my appointment is next Friday", the patient's answer when asked). Known, it chooses
   between an after-care article and its pre-care counterpart; unknown while the two are close, the patient is
   asked (the Rasa stage form) instead of guessed at;
4. the topic: an elliptical follow-up ("and tomorrow?") that answers nothing on its own is answered from the
   previous topic's article;
5. the score: the best article's fused score (question-to-question, passage and BM25 signals, see
   `knowledge.retriever`) must clear the calibrated threshold, and a higher one when most of the question's
   words appear in no article; below it the patient is told to call the clinic.

The reply quotes the chosen article (its opening paragraph, which gives the direct answer, and the passage
that best matches the question). Every fixed sentence comes from knowledge/replies.yml.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from knowledge import context
from knowledge.chunking import Passage
from knowledge.clinic import ClinicProfile
from knowledge.lexical import terms
from knowledge.replies import Replies, load_replies
from knowledge.retriever import Candidate, Retriever, read_settings
from knowledge.things import Thing, ThingReader, load_things, words_of
from safety.reading import normalise_text
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
# "and is it any better?", "can I do it daily?": a question that only points back at the one before it.
POINTS_BACK = re.compile(r"\b(?:it|that|this|them|those|these|one)\b", re.IGNORECASE)
POINTING_MAX_WORDS = 12
AFTER_STAGES = ("aftercare",)
BEFORE_STAGES = ("before",)

Kind = Literal["answer", "fallback", "ask_stage"]
DomainGate = Callable[[np.ndarray], float]  # a question's embedding -> P(not about the treatment at all)


@dataclass(frozen=True)
class Decision:
    """The calibrated numbers of the answer decision (`answers` in settings.yml)."""

    threshold: float  # fused score the best article needs
    unknown_share: float = 1.0  # a question whose words are at least this share unknown to every article...
    unknown_threshold: float = 1.0  # ...needs this fused score instead
    stage_margin: float = 0.0  # counterparts this close are both plausible: ask the stage when unknown
    thing_boost: float = 0.0  # ranking bonus for articles that cover the things the question names
    off_topic: float = 1.0  # domain gate probability from which a question is not about the treatment

    def __post_init__(self) -> None:
        for name in ("threshold", "unknown_share", "unknown_threshold", "off_topic"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"answers.{name} must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 <= self.stage_margin <= 0.5 or not 0.0 <= self.thing_boost <= 0.2:
            raise ValueError("answers.stage_margin must be in [0, 0.5] and answers.thing_boost in [0, 0.2]")


@dataclass(frozen=True)
class Answer:
    """The reply to one patient message."""

    kind: Kind
    text: str
    sources: list[dict] = field(default_factory=list)  # [{"id", "title", "version"}] of the cited articles
    score: float = 0.0  # best fused score behind the decision
    reason: str = "answered"  # answered | not_covered | off_topic | no_match | empty | stage_unknown
    topic: str | None = None  # the article answered from: the conversation's topic for follow-ups
    thing: str | None = None  # not_covered: the thing the guidance does not cover
    buttons: list[str] = field(default_factory=list)  # ask_stage: the two answers the patient can tap
    pending: str | None = None  # ask_stage: the question to answer once the stage is known


@dataclass(frozen=True)
class _Part:
    """The outcome for one question of the message."""

    question: str
    reason: str
    passages: tuple[Passage, ...] = ()
    score: float = 0.0
    thing: Thing | None = None
    candidate: Candidate | None = None


class Answerer:
    """Decides, for each question of a message, whether and from which article it can be answered."""

    def __init__(
        self,
        retriever: Retriever,
        clinic: ClinicProfile,
        decision: Decision,
        *,
        things: ThingReader | None = None,
        replies: Replies | None = None,
        domain_gate: DomainGate | None = None,
        max_questions: int = DEFAULT_MAX_QUESTIONS,
    ) -> None:
        if max_questions < 1:
            raise ValueError(f"max_questions must be >= 1, got {max_questions}")
        self.retriever = retriever
        self.decision = decision
        self.threshold = decision.threshold
        self.max_questions = max_questions
        self.things = things or load_things()
        self.replies = replies or load_replies(clinic)
        self.domain_gate = domain_gate
        rows = retriever.store.passages
        # Each article opens with its direct answer (an editorial rule for articles), so a reply quoting a
        # later paragraph leads with the opening one.
        self._openings = {p.article_id: p for p in rows if p.is_quotable and p.position == 0}
        self._covers = {p.article_id: set(p.covers) for p in rows}
        self._counterparts = {p.article_id: p.counterparts for p in rows}
        self._covered = set().union(*self._covers.values()) if self._covers else set()
        # Words naming a thing some article covers are known words even where no article spells them
        # ("crossfit" is exercise): only truly unfamiliar words make the stricter threshold apply.
        self._known_terms = frozenset(terms(" ".join(self.things.words_of_things(self._covered))))

    @classmethod
    def from_settings(
        cls,
        retriever: Retriever,
        clinic: ClinicProfile,
        path: Path | None = None,
        domain_gate: DomainGate | None = None,
    ) -> Answerer:
        """An answerer configured by the `answers` section of settings.yml; the domain gate is the trained
        one for the index's embedding model (knowledge/domain_gate.json) unless one is given."""
        settings = read_settings("answers", path)
        if domain_gate is None:
            from knowledge.domain import load_domain_gate

            domain_gate = load_domain_gate(retriever.store.manifest.model_name)
        decision = Decision(**{k: v for k, v in settings.items() if k in Decision.__dataclass_fields__})
        return cls(
            retriever,
            clinic,
            decision,
            domain_gate=domain_gate,
            max_questions=settings.get("max_questions", DEFAULT_MAX_QUESTIONS),
        )

    def fallback_text(self) -> str:
        """The "can't answer from the clinic's guidance, please call" reply, for callers that skip search."""
        return self.replies.text("fallback")

    # --- the one entry point -------------------------------------------------------------------------
    def answer(
        self,
        message: str,
        intent: str | None = None,
        day: int | None = None,
        *,
        stage: str | None = None,
        topic: str | None = None,
        ask_stage: bool = True,
        stage_first: bool = False,
    ) -> Answer:
        """Answer every question in the message (up to `max_questions`) from the clinic's articles.

        `day` is the treatment day when known (the treatment has happened); `stage` the stage the
        conversation established ("before" / "after"); `topic` the article the previous answer came from.
        With `ask_stage` False (the patient was asked and did not say) a stage-dependent question is answered
        from its best article instead of asking again. With `stage_first` the given stage wins over the one
        the question's own words suggest (the patient corrected it: "sorry, I meant after").
        """
        if day is not None:
            stage = context.AFTER
        questions = split_questions(message)
        if not questions:
            return Answer("fallback", self.fallback_text(), reason="empty")
        # The NLU intent describes the whole message; with several questions it fits one of them at best.
        part_intent = intent if len(questions) == 1 else None
        parts = self._answer_parts(
            questions[: self.max_questions], part_intent, day, stage, topic, stage_first
        )
        if not ask_stage:
            parts = [self._answer_anyway(p) if p.reason == "stage_unknown" else p for p in parts]
        answered = [part for part in parts if part.passages]
        if not answered:
            return self._without_answer(parts)
        lines = [self._quote(part) if part.passages else self._unanswered(part) for part in parts]
        if len(questions) > self.max_questions:
            lines.append(self.replies.text("more_questions"))
        cited = [part.passages[0] for part in answered]
        # The version lets the clinic show later exactly what the patient was told.
        sources = [{"id": p.article_id, "title": p.title, "version": p.version} for p in cited]
        return Answer(
            "answer",
            "\n\n".join(lines),
            sources,
            max(part.score for part in answered),
            topic=answered[-1].passages[0].article_id,
        )

    def _without_answer(self, parts: list[_Part]) -> Answer:
        """No question could be answered: ask the stage, or say why not (the first part's reason)."""
        best = max((part.score for part in parts), default=0.0)
        asking = next((part for part in parts if part.reason == "stage_unknown"), None)
        if asking is not None:
            return Answer(
                "ask_stage",
                self.replies.text("ask_stage"),
                score=asking.score,
                reason="stage_unknown",
                buttons=self.replies.options("stage_buttons"),
                pending=asking.question,
            )
        first = parts[0]
        if first.reason == "not_covered" and first.thing is not None:
            text = self.replies.text("not_covered", thing=first.thing.name)
            return Answer("fallback", text, score=best, reason="not_covered", thing=first.thing.name)
        if first.reason == "off_topic":
            return Answer("fallback", self.replies.text("off_topic"), score=best, reason="off_topic")
        return Answer("fallback", self.fallback_text(), score=best, reason=first.reason)

    def _answer_parts(
        self,
        questions: list[str],
        intent: str | None,
        day: int | None,
        stage: str | None,
        topic: str | None,
        stage_first: bool = False,
    ) -> list[_Part]:
        """One part per question; a question answered by an article already quoted is dropped."""
        parts: list[_Part] = []
        quoted: set[str] = set()
        for question in questions:
            if parts and parts[-1].reason == "not_covered" and self._points_back(question):
                continue  # it asks more about the thing the guidance does not cover
            part = self.decide(question, intent, day, stage, topic, stage_first)
            article_id = part.passages[0].article_id if part.passages else None
            if article_id in quoted and context.has_own_subject(question):
                # Read as a follow-up of the article already quoted, but it names something of its own
                # ("where do I park"): decided alone, so it is answered or told to ask the clinic, never lost.
                part = self.decide(question, intent, day, stage, None, stage_first)
                article_id = part.passages[0].article_id if part.passages else None
            if article_id in quoted:
                continue
            if article_id:
                quoted.add(article_id)
                topic = article_id
            parts.append(part)
        if len(parts) > 1 and any(p.passages for p in parts):
            # Asking the stage for one question while answering the others would split the reply in two:
            # the stage-dependent one is answered from its best article.
            parts = [self._answer_anyway(p) if p.reason == "stage_unknown" else p for p in parts]
        return parts

    def _points_back(self, question: str) -> bool:
        words = words_of(question)
        return (
            len(words) <= POINTING_MAX_WORDS
            and not self.things.things_in(question)
            and bool(POINTS_BACK.search(" ".join(words)))
        )

    # --- deciding one question -------------------------------------------------------------------------
    def decide(
        self,
        question: str,
        intent: str | None = None,
        day: int | None = None,
        stage: str | None = None,
        topic: str | None = None,
        stage_first: bool = False,
    ) -> _Part:
        """The outcome for one question (see the module docstring for the order of the checks)."""
        if not words_of(question):
            return _Part(question, "no_match")
        candidates = [c for c in self.retriever.candidates(question, intent, day) if not c.excluded]
        if not candidates:
            return _Part(question, "no_match")
        named = self.things.things_in(question)
        uncovered = [thing for thing in named if thing.name not in self._covered]
        best_score = candidates[0].score
        if uncovered:
            return _Part(question, "not_covered", score=best_score, thing=uncovered[0])
        if self._off_topic(question, named):
            return _Part(question, "off_topic", score=best_score)
        own_stage = None if stage_first and stage else context.question_stage(question)
        ranked = self._ranked(candidates, named, own_stage or stage)
        follow_up = self._follow_up_article(question, topic, ranked, own_stage or stage)
        if follow_up is not None:
            return self._quoted(question, follow_up)
        best = ranked[0]
        if best.score < self._threshold_for(question):
            return _Part(question, "no_match", score=best.score, candidate=best)
        if own_stage is None and stage is None:
            rival = self._stage_rival(best, ranked)
            if rival is not None:
                return _Part(question, "stage_unknown", score=best.score, candidate=best)
        return self._quoted(question, best)

    def _off_topic(self, question: str, named: tuple[Thing, ...]) -> bool:
        """Not about the treatment at all: the gate is confident and the question names nothing we cover."""
        if self.domain_gate is None or named:
            return False
        return self.domain_gate(self.retriever.embed(question)) >= self.decision.off_topic

    def _threshold_for(self, question: str) -> float:
        """The plain threshold, or the stricter one when most of the words of the question itself (its last
        sentence: what comes before it is usually context, "I'm a gardener") are in no article."""
        unknown = self.unknown_share(question)
        strict = unknown >= self.decision.unknown_share
        return max(self.decision.threshold, self.decision.unknown_threshold if strict else 0.0)

    def unknown_share(self, question: str) -> float:
        """The share of the words of the question's last sentence that no article and no covered thing has."""
        return self.retriever.store.lexical.unknown_share(terms(last_sentence(question)), self._known_terms)

    def _ranked(
        self, candidates: list[Candidate], named: tuple[Thing, ...], stage: str | None
    ) -> list[Candidate]:
        """Candidates re-ranked for the things the question names, without the wrong-stage counterparts."""
        if stage is not None:
            wrong = AFTER_STAGES if stage == context.BEFORE else BEFORE_STAGES
            kept = [c for c in candidates if not (c.stage in wrong and self._counterparts.get(c.article_id))]
            candidates = kept or candidates
        if not named or not self.decision.thing_boost:
            return candidates
        names = {thing.name for thing in named}

        def key(candidate: Candidate) -> float:
            covered = len(names & self._covers.get(candidate.article_id, set())) / len(names)
            return candidate.rank_score + self.decision.thing_boost * covered

        return sorted(candidates, key=key, reverse=True)

    def _follow_up_article(
        self, question: str, topic: str | None, ranked: list[Candidate], stage: str | None
    ) -> Candidate | None:
        """The previous topic's article for a follow-up that answers nothing on its own ("and tomorrow?")."""
        if not topic or not context.is_follow_up(question):
            return None
        answerable_alone = context.has_own_subject(question) and ranked[0].score >= self._threshold_for(
            question
        )
        if answerable_alone:
            return None
        previous = next((c for c in ranked if c.article_id == topic), None)
        if previous is None and stage is not None:
            # The stage moved the topic to its counterpart ("and before my next session?").
            others = set(self._counterparts.get(topic, ()))
            previous = next((c for c in ranked if c.article_id in others), None)
        return previous

    def _stage_rival(self, best: Candidate, ranked: list[Candidate]) -> Candidate | None:
        """The best article's counterpart at the other stage, when it is nearly as good a match. A margin of 0
        switches asking off (a counterpart ranked lower may still have the higher fused score)."""
        if self.decision.stage_margin <= 0.0:
            return None
        others = set(self._counterparts.get(best.article_id, ()))
        rival = next((c for c in ranked if c.article_id in others), None)
        if rival is not None and best.score - rival.score <= self.decision.stage_margin:
            return rival
        return None

    def _answer_anyway(self, part: _Part) -> _Part:
        return self._quoted(part.question, part.candidate) if part.candidate else part

    def _quoted(self, question: str, candidate: Candidate) -> _Part:
        """The article's opening (its direct answer) and its passage that best matches the question."""
        best = candidate.passages[0]
        opening = self._openings.get(candidate.article_id, best)
        if opening != best and not _repeats(opening, best):
            passages: tuple[Passage, ...] = (opening, best)
        else:
            passages = (best,)
        return _Part(question, "answered", passages, candidate.score, candidate=candidate)

    # --- wording ---------------------------------------------------------------------------------------
    def _quote(self, part: _Part) -> str:
        texts = [passage.text for passage in part.passages]
        return "\n\n".join([*texts, self.replies.text("citation", title=part.passages[0].title)])

    def _unanswered(self, part: _Part) -> str:
        question = part.question.rstrip("?!. ")
        if len(question) > QUOTED_QUESTION_CHARS:
            question = question[: QUOTED_QUESTION_CHARS - 1].rstrip() + "…"
        if part.reason == "not_covered" and part.thing is not None:
            return self.replies.text("not_covered_part", question=question, thing=part.thing.name)
        return self.replies.text("unanswered_part", question=question)


def last_sentence(text: str) -> str:
    """The last sentence of a text (the question a message ends with)."""
    sentences = [
        sentence.text for sentence in blank_english()(" ".join(text.split())).sents if sentence.text.strip()
    ]
    return sentences[-1] if sentences else text


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


def asks_something(message: str) -> bool:
    """Whether a message asks anything: a sentence ending in "?" or opening with a question word."""
    return any(_is_question(segment) for segment in _segments(message))


def _is_question(segment: str) -> bool:
    words = normalise_text(segment).split()
    first_word = re.sub(r"[^a-z]", "", words[0]) if words else ""
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


def _repeats(passage: Passage, other: Passage) -> bool:
    """Whether two passages share most of their words (quoting both would say the same thing twice)."""
    words, other_words = _words(passage.text), _words(other.text)
    return len(words & other_words) / max(1, len(words | other_words)) > MAX_EXTRA_PASSAGE_OVERLAP


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))
