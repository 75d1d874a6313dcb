"""Safety triage: the red-flag detector every patient message goes through before anything else.

Deterministic and rule-based: the protocol (`redflags.yml`) names the symptom concepts, their severity,
patterns, day rules and replies; this module applies it with spaCy's blank English pipeline and a Matcher.
A red flag is never dropped in favour of a friendly answer: the highest severity found wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spacy.tokens import Doc

from knowledge.clinic import ClinicProfile, load_clinic_profile
from safety.context import MessageReading
from safety.patterns import Match, PatternSet
from safety.protocol import Concept, Protocol, Rule, load_protocol
from safety.reading.nlp import blank_english
from safety.reading.normalise import TypoCorrector, mentioned_treatment_day, normalise_text, stem

LEVELS = ("none", "routine", "urgent", "emergency")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}


@dataclass(frozen=True)
class TriageResult:
    level: str  # "none" | "routine" | "urgent" | "emergency"
    concepts: list[str]  # ids of the red-flag concepts found, most severe first
    reply: str | None  # the protocol reply for the most severe concept, clinic facts filled in

    @property
    def escalates(self) -> bool:
        """Whether staff must be told (urgent) or the patient sent to emergency care."""
        return self.level in ("urgent", "emergency")


NO_RED_FLAG = TriageResult(level="none", concepts=[], reply=None)


class RedFlagDetector:
    """Applies the red-flag protocol to one message at a time. Build once; `assess` is cheap."""

    def __init__(self, protocol_path: Path | None = None, clinic: ClinicProfile | None = None):
        self._protocol: Protocol = load_protocol(protocol_path)
        self._clinic = clinic or load_clinic_profile()
        self._nlp = blank_english()
        self._patterns = PatternSet(self._nlp, self._protocol)
        self._typos = TypoCorrector(
            surface_words=self._patterns.symptom_words,
            known_words=self._patterns.surface_words,
        )
        self._replies = {c.id: self._clinic.fill(c.reply) for c in self._protocol.concepts}
        self._norm_cache: dict[str, str] = {}

    @property
    def protocol(self) -> Protocol:
        return self._protocol

    def assess(self, text: str, day: int | None = None) -> TriageResult:
        """Triage one patient message; `day` is the treatment day when the conversation knows it."""
        clean = normalise_text(text or "")
        if not any(ch.isalpha() for ch in clean):
            return NO_RED_FLAG
        doc = self._nlp(clean)
        lowers = [t.lower_ for t in doc]
        norms = self._norms(doc, lowers)
        sentence = [0] * len(doc)
        for number, sent in enumerate(doc.sents):
            sentence[sent.start : sent.end] = [number] * (sent.end - sent.start)
        found = self._patterns.find(norms, lowers, sentence)
        reading = MessageReading(doc, lowers, sentence, found, self._protocol.reading)
        if day is None:
            day = mentioned_treatment_day(clean)
        fired = [c for c in self._protocol.concepts if self._concept_found(c, found, reading, day)]
        if not fired:
            return NO_RED_FLAG
        fired.sort(key=lambda c: -_RANK[c.severity])  # stable: protocol order within a severity
        return TriageResult(
            level=fired[0].severity,
            concepts=[c.id for c in fired],
            reply=self._replies[fired[0].id],
        )

    # --- internals ----------------------------------------------------------------------------------
    def _norms(self, doc: Doc, lowers: list[str]) -> list[str]:
        """Each token's NORM becomes its stem, or the stem of the protocol word it misspells."""
        norms = []
        for token, lower in zip(doc, lowers, strict=True):
            norm = self._norm_cache.get(lower)
            if norm is None:
                corrected = self._typos.correct(lower) if lower.isalpha() else None
                norm = stem(corrected or lower)
                if len(self._norm_cache) < 50_000:
                    self._norm_cache[lower] = norm
            token.norm_ = norm
            norms.append(norm)
        return norms

    def _concept_found(
        self, concept: Concept, found: dict[str, list[Match]], reading: MessageReading, day: int | None
    ) -> bool:
        return any(self._rule_met(rule, found, reading, day) for rule in concept.rules)

    @staticmethod
    def _valid(
        element: tuple[str, ...], found: dict[str, list[Match]], reading: MessageReading
    ) -> list[Match]:
        return [m for pattern in element for m in found.get(pattern, []) if reading.counts(m)]

    @staticmethod
    def _unless_sentences(rule: Rule, found: dict[str, list[Match]], reading: MessageReading) -> set[int]:
        return {reading.sentence_of[m.start] for pattern in rule.unless for m in found.get(pattern, [])}

    def _rule_met(
        self, rule: Rule, found: dict[str, list[Match]], reading: MessageReading, day: int | None
    ) -> bool:
        if not rule.applies_on(day):
            return False
        blocked = self._unless_sentences(rule, found, reading)
        for element in rule.any:
            if any(
                reading.sentence_of[m.content[0]] not in blocked for m in self._valid(element, found, reading)
            ):
                return True
        if not rule.all:
            return False
        per_item = [self._valid(element, found, reading) for element in rule.all]
        if not all(per_item):
            return False
        if rule.within == "message":
            return not blocked
        sentence_sets = [{reading.sentence_of[m.content[0]] for m in matches} for matches in per_item]
        shared = set.intersection(*sentence_sets) - blocked
        return bool(shared)
