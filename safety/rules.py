"""The rule layer of triage: the red-flag protocol (`protocol.yml`) applied to a message.

Deterministic: the protocol names the signs, their disposition, patterns, day windows and replies; this
module finds them with spaCy's blank English tokenizer and the pattern matcher of `safety.patterns`, reads
the context of each match (`safety.context`: negation, questions, hypotheticals, other people's stories)
and the numbers of the message (temperatures, via `safety.reading`). The highest disposition found wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from spacy.tokens import Doc

from safety.context import MessageReading
from safety.patterns import Match, PatternSet
from safety.protocol import FACT_PREFIX, Protocol, Rule, Sign, load_protocol
from safety.reading.language import detect_language
from safety.reading.nlp import blank_english
from safety.reading.normalise import TypoCorrector, normalise_text, stem
from safety.reading.numbers import measures

LEVELS = ("none", "routine", "urgent", "emergency")
RANK = {level: rank for rank, level in enumerate(LEVELS)}


@dataclass(frozen=True)
class RuleFinding:
    """What the rules found in one message."""

    level: str
    signs: tuple[str, ...]  # most severe first
    # Whether the message reports a symptom in the protocol's words: True when one is reported (found as a
    # sign or not), False when it has symptom words but none is a current report (all negated, asked about,
    # hypothetical, someone else's or past), None when it has no symptom words at all.
    reported: bool | None
    about_health: bool = True  # the message names a body part, a treatment or a health word
    reported_text: str = ""  # the words of the message that report something current (for the learned layer)
    evidence: tuple[tuple[str, str], ...] = ()  # (sign, words of the message) behind each sign, for `explain`

    def emergencies_only(self, protocol: Protocol) -> RuleFinding:
        """The finding without its urgent and expected signs: for messages that are not about health at
        all ("the paint is peeling off my fence"), where everyday words are not symptoms."""
        kept = tuple(s for s in self.signs if protocol.sign(s).severity == "emergency")
        return replace(self, level="emergency" if kept else "none", signs=kept)

    def nothing(self) -> RuleFinding:
        """The finding without any sign (a message that is not about health at all)."""
        return replace(self, level="none", signs=())


NOTHING = RuleFinding("none", (), None, False)


class RuleLayer:
    """Applies the red-flag protocol to one text. Build once; `assess` is cheap (a few milliseconds)."""

    def __init__(self, protocol: Protocol | None = None, known_words: Iterable[str] = ()):
        self.protocol = protocol or load_protocol()
        self._nlp = blank_english()
        self._patterns = PatternSet(self._nlp, self.protocol)
        self._typos = TypoCorrector(
            surface_words=self._patterns.symptom_words,
            known_words=set(self._patterns.surface_words) | set(known_words),
        )
        self._by_id = {sign.id: sign for sign in self.protocol.signs}
        self._norm_cache: dict[str, tuple[str, str]] = {}
        self._reading_lists: dict[str, dict[str, tuple[str, ...]]] = {}

    @classmethod
    def from_path(cls, path: Path | None) -> RuleLayer:
        return cls(load_protocol(path))

    def assess(self, text: str, day: int | None = None, describing: bool = False) -> RuleFinding:
        """The signs of the protocol that `text` reports; `day` is the treatment day, when known.

        `describing`: the signs `text` describes, reported or not (for checking articles, not patients)."""
        clean = normalise_text(text or "")
        if not any(ch.isalpha() for ch in clean):
            return NOTHING
        doc = self._nlp(clean)
        lowers = [t.lower_ for t in doc]
        norms, corrected = self._norms(doc, lowers)
        sentence = [0] * len(doc)
        for number, sent in enumerate(doc.sents):
            sentence[sent.start : sent.end] = [number] * (sent.end - sent.start)
        found = self._patterns.find(norms, corrected, sentence)
        reading_lists = self._reading_for(detect_language(text))
        reading = MessageReading(doc, lowers, sentence, found, reading_lists, describing)
        symptom_matches = [m for p in self._patterns.symptom_patterns for m in found.get(p, [])]
        kept = reading.reported_tokens(symptom_matches)
        reported_text = " ".join(t.text for t, keep in zip(doc, kept, strict=True) if keep)
        # Numbers count only where the patient reports ("if I get a fever of 38" is no fever).
        facts = self._facts(reported_text)
        fired = [s for s in self.protocol.signs if self._sign_found(s, found, reading, day, facts)]
        about_health = self._about_health(found, reading_lists)
        reported = True if fired else self._reported(found, reading)
        signs = self._apply_day_windows(fired, day)
        if not signs:
            return RuleFinding("none", (), reported, about_health, reported_text)
        signs.sort(key=lambda s: -RANK[s.severity])  # stable: protocol order within a severity
        ids = tuple(dict.fromkeys(s.id for s in signs))
        evidence = tuple(
            (sign.id, doc[m.start : m.end].text)
            for sign in fired
            for m in self._evidence(sign, found, reading)
        )
        return RuleFinding(signs[0].severity, ids, reported, about_health, reported_text, evidence)

    def reported_text(self, text: str) -> str:
        """The words of `text` that report something current (what the learned layer reads)."""
        return self.assess(text).reported_text

    # --- internals ----------------------------------------------------------------------------------
    def _reading_for(self, language: str) -> dict[str, tuple[str, ...]]:
        if language not in self._reading_lists:
            self._reading_lists[language] = self.protocol.reading_for(language)
        return self._reading_lists[language]

    def _facts(self, clean: str) -> set[str]:
        """The `$facts` of the message: its vital signs at or above each threshold of the protocol."""
        stated = measures(clean)
        facts = set()
        for name, (measure, threshold) in self.protocol.facts.items():
            if measure not in stated:
                continue
            below = measure.endswith("_below")
            if (stated[measure] < threshold) if below else (stated[measure] >= threshold):
                facts.add(FACT_PREFIX + name)
        return facts

    def _apply_day_windows(self, fired: list[Sign], day: int | None) -> list[Sign]:
        """An expected effect reported after its usual days is read as its `beyond` sign."""
        signs = []
        for sign in fired:
            if sign.usual_days is not None and day is not None and day > sign.usual_days[1]:
                signs.append(self._by_id[sign.beyond])  # type: ignore[index]
            else:
                signs.append(sign)
        return signs

    @staticmethod
    def _about_health(found: dict[str, list[Match]], reading_lists: dict[str, tuple[str, ...]]) -> bool:
        """Whether the message mentions a body, a treatment or a health word (the `health_context` list)."""
        return any(found.get(pattern) for pattern in reading_lists["health_context"])

    def _reported(self, found: dict[str, list[Match]], reading: MessageReading) -> bool | None:
        """Whether any protocol symptom word is a current report (see `RuleFinding.reported`)."""
        seen = False
        for sign in self.protocol.signs:
            for rule in sign.rules:
                # A rule's symptom words: its `any` patterns and the first item of an `all` rule (the
                # other items say where, when or how: "treatment", "for 20 minutes").
                for element in rule.any + rule.all[:1]:
                    for match in (m for p in element for m in found.get(p, [])):
                        if reading.counts(match):
                            return True
                        seen = True
        return False if seen else None

    def _norms(self, doc: Doc, lowers: list[str]) -> tuple[list[str], list[str]]:
        """Each token's stem and its spelling, both of the protocol word it misspells when it is one
        ("colapsed" is read as "collapsed", for exact-form patterns too)."""
        norms, spelled = [], []
        for token, lower in zip(doc, lowers, strict=True):
            cached = self._norm_cache.get(lower)
            if cached is None:
                corrected = (self._typos.correct(lower) if lower.isalpha() else None) or lower
                cached = (stem(corrected), corrected)
                if len(self._norm_cache) < 50_000:
                    self._norm_cache[lower] = cached
            token.norm_ = cached[0]
            norms.append(cached[0])
            spelled.append(cached[1])
        return norms, spelled

    def _sign_found(
        self,
        sign: Sign,
        found: dict[str, list[Match]],
        reading: MessageReading,
        day: int | None,
        facts: set[str],
    ) -> bool:
        return any(self._rule_met(rule, found, reading, day, facts) for rule in sign.rules)

    def _evidence(self, sign: Sign, found: dict[str, list[Match]], reading: MessageReading) -> list[Match]:
        """The counted matches of a fired sign's patterns (what `explain` shows a clinician)."""
        elements = [element for rule in sign.rules for element in rule.any + rule.all]
        return list(dict.fromkeys(m for element in elements for m in self._valid(element, found, reading)))

    @staticmethod
    def _valid(
        element: tuple[str, ...], found: dict[str, list[Match]], reading: MessageReading
    ) -> list[Match]:
        return [m for pattern in element for m in found.get(pattern, []) if reading.counts(m)]

    @staticmethod
    def _unless_segments(
        rule: Rule, found: dict[str, list[Match]], reading: MessageReading, facts: set[str]
    ) -> set[int]:
        """Segments (a sentence, or its part before or after a "but") an `unless` pattern rules out: its
        own and the earlier ones of its sentence, since what a patient says after a turn is the newer news
        ("it was going down but now it is puffier again": the "going down" does not cancel "puffier").
        A fact rules out the whole message; a negated `unless` rules nothing out ("not in a group")."""
        if facts.intersection(rule.unless):
            return set(reading.segment_of)
        blocked: set[int] = set()
        matches = sorted((m for p in rule.unless for m in found.get(p, [])), key=lambda m: m.start)
        negated_ends: set[int] = set()
        for m in matches:
            # "not grouped together": a negated `unless` word carries its negation to the next one
            if reading.negated_right_before(m) or m.start in negated_ends:
                negated_ends.add(m.end)
                continue
            sentence, segment = reading.sentence_of[m.start], reading.segment_of[m.start]
            blocked.update(
                reading.segment_of[i]
                for i in range(len(reading.segment_of))
                if reading.sentence_of[i] == sentence and reading.segment_of[i] <= segment
            )
        return blocked

    def _rule_met(
        self,
        rule: Rule,
        found: dict[str, list[Match]],
        reading: MessageReading,
        day: int | None,
        facts: set[str],
    ) -> bool:
        if not rule.applies_on(day):
            return False
        blocked = self._unless_segments(rule, found, reading, facts)
        everything_blocked = bool(blocked) and blocked >= set(reading.segment_of)

        def unblocked(element: tuple[str, ...]) -> list[Match]:
            return [
                m
                for m in self._valid(element, found, reading)
                if reading.segment_of[m.content[0]] not in blocked
            ]

        for element in rule.any:
            if facts.intersection(element) and not everything_blocked:
                return True
            if unblocked(element):
                return True
        if not rule.all:
            return False
        # A fact belongs to the whole message: it satisfies its item in any sentence.
        per_item: list[list[Match]] = []
        for element in rule.all:
            if facts.intersection(element):
                if everything_blocked:
                    return False
                continue
            matches = unblocked(element)
            if not matches:
                return False
            per_item.append(matches)
        if rule.within == "message":
            return not blocked
        if not per_item:
            return True
        sentence_sets = [{reading.sentence_of[m.content[0]] for m in matches} for matches in per_item]
        return bool(set.intersection(*sentence_sets))
