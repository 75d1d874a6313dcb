"""Triage: every patient message through every layer; the highest level any layer gives wins.

Layers, each of which may raise a message's level and none of which can lower it:
1. rules: the red-flag protocol (`protocol.yml`) applied by `safety.rules`;
2. learned: sentence embeddings and heads trained on the project's labelled bank (`safety.learned`);
3. conversation: the patient's recent messages read together with the known treatment day, so a symptom
   named in one message and its worrying feature in the next are one report.

The learned layer also says whether a message is about health at all: when it is confidently not, and
nothing in the message names a body, a treatment or a health word, the rules' urgent and expected signs
are not counted ("the stock market is bleeding"). Emergency signs always count.

Before a treatment ("my session is on the 14th, I have a cold sore, should I still come?") there is nothing
to be a complication of: only emergency signs count, whatever layer finds them.

A message that reads as a symptom report but that no layer places with confidence is `unsure`: the
pipeline adds safety-netting advice and puts it on the staff review list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from knowledge.clinic import ClinicProfile
from safety.learned import Embedder, LearnedFinding, LearnedLayer
from safety.protocol import Protocol, load_protocol
from safety.reading.language import detect_language
from safety.reading.normalise import english_words
from safety.reading.treatment_day import says_only_when, treatment_upcoming
from safety.rules import LEVELS, RANK, RuleFinding, RuleLayer

log = logging.getLogger(__name__)

ESCALATING = ("urgent", "emergency")
OFF_TOPIC_GATE = 0.5  # P(off-topic) above which a message with no health word is not read for symptoms
OFF_TOPIC_SURE = 0.85  # ... and above which not even a health word makes its everyday words symptoms
# An "emergency" the rules read in a message with no health word at all ("my sourdough collapsed in the
# oven") is dropped only when the learned layer is all but certain it is off-topic AND sees no emergency.
OFF_TOPIC_CERTAIN = 0.95
NO_EMERGENCY = 0.1
# A learned raise is attributed to this sign when the rules found none of that level.
LEARNED_SIGN = {"urgent": "learned_urgent", "emergency": "learned_emergency"}


@dataclass(frozen=True)
class Triage:
    """The triage of one message (or of the recent messages of a conversation)."""

    level: str  # none | routine | urgent | emergency
    signs: tuple[str, ...] = ()  # the protocol's sign ids found, most severe first
    reply: str | None = None  # the protocol's advice for the most severe sign, clinic facts filled in
    unsure: bool = False  # a symptom report no layer could place: safety-netting and staff review
    language: str = "en"
    layers: dict[str, str] = field(default_factory=dict)  # layer -> level it gave

    @property
    def escalates(self) -> bool:
        return self.level in ESCALATING

    @property
    def message_level(self) -> str:
        """The level this message calls for on its own, leaving out what only the conversation adds."""
        own = [level for layer, level in self.layers.items() if layer != "conversation"]
        return max(own, key=RANK.__getitem__, default="none")

    def raised_by(self, other: Triage) -> Triage:
        """The higher of two triages of the same message; signs of both, reply of the higher one."""
        higher, lower = (other, self) if RANK[other.level] > RANK[self.level] else (self, other)
        return Triage(
            level=higher.level,
            signs=tuple(dict.fromkeys(higher.signs + lower.signs)),
            reply=higher.reply or lower.reply,
            unsure=(self.unsure or other.unsure) and higher.level not in ESCALATING,
            language=self.language,
            layers={**lower.layers, **higher.layers},
        )


NO_TRIAGE = Triage("none")


class TriageEngine:
    """The layers and the protocol's replies. Build once at start-up; `assess` takes a few milliseconds
    for the rules, plus one sentence embedding for the learned layer."""

    def __init__(
        self,
        clinic: ClinicProfile,
        protocol: Protocol | None = None,
        learned: LearnedLayer | None = None,
    ) -> None:
        self.protocol = protocol or load_protocol()
        self.rules = RuleLayer(self.protocol, known_words=english_words())
        self.learned = learned
        self._replies = {sign.id: clinic.fill(sign.reply) for sign in self.protocol.signs}
        self._learned_replies = {
            level: clinic.fill(self.protocol.wording[f"learned_{level}"]) for level in ESCALATING
        }

    def load_learned_layer(self, embedder: Embedder, folder: Path, retrain: bool = False) -> None:
        """Load the learned layer trained for this protocol and bank (training it if there is none)."""
        self.learned = LearnedLayer.load_or_train(
            embedder, self.rules.reported_text, folder, self.protocol.fingerprint, retrain=retrain
        )

    # --- the two questions the pipeline asks --------------------------------------------------------
    def assess(self, text: str, day: int | None = None, today: date | None = None) -> Triage:
        """Triage one message; `day` is the treatment day when known."""
        language = detect_language(text)
        rules = self.rules.assess(text, day)
        # "I had microneedling 2 days ago" reports no symptom: nothing for the learned layer to weigh.
        only_when = rules.level == "none" and says_only_when(text)
        learned = None if only_when else self._learned(rules.reported_text)
        if day is None and treatment_upcoming(text, today or date.today()):
            rules = rules.emergencies_only(self.protocol)
            if learned is not None and learned.level != "emergency":
                learned = replace(learned, level="none", unsure=False)
        if learned is not None and day is None and self._off_topic(rules, learned):
            certain = learned.p_offtopic >= OFF_TOPIC_CERTAIN and learned.p_emergency < NO_EMERGENCY
            rules = (
                rules.nothing()
                if certain and not rules.about_health
                else rules.emergencies_only(self.protocol)
            )
        triage = self._from_rules(rules, language)
        if learned is not None and rules.reported is not False:
            # The learned layer reads no context: when every symptom word of the message is negated, asked
            # about or someone else's ("no fever, vision normal"), it is not a report and it may not raise.
            triage = triage.raised_by(self._from_learned(learned))
        return triage

    @staticmethod
    def _off_topic(rules: RuleFinding, learned: LearnedFinding) -> bool:
        """Confidently not about health: then everyday words ("the paint is peeling") are not symptoms."""
        gate = OFF_TOPIC_GATE if not rules.about_health else OFF_TOPIC_SURE
        return learned.p_offtopic >= gate

    def assess_conversation(self, messages: Sequence[str], day: int | None) -> Triage:
        """The patient's recent messages (oldest first, the current one last) read together as one report.

        Rules only: they combine a symptom from one message with its feature from another ("my face is
        really red" / "it's warm and spreading") and apply the known treatment day to all of them.
        """
        if not messages:
            return NO_TRIAGE
        joined = " .\n".join(message.strip().rstrip(".") for message in messages)
        rules = self.rules.assess(joined, day)
        triage = self._from_rules(rules, detect_language(messages[-1]))
        return replace(triage, layers={"conversation": triage.level})

    def reply_for(self, sign_id: str) -> str:
        """The protocol's advice for a sign (or for a learned-layer raise), clinic facts filled in."""
        for level, learned_sign in LEARNED_SIGN.items():
            if sign_id == learned_sign:
                return self._learned_replies[level]
        return self._replies[sign_id]

    # --- composing results --------------------------------------------------------------------------
    def _from_rules(self, rules: RuleFinding, language: str) -> Triage:
        reply = self._replies[rules.signs[0]] if rules.signs else None
        return Triage(rules.level, rules.signs, reply, language=language, layers={"rules": rules.level})

    def _from_learned(self, learned: LearnedFinding) -> Triage:
        """The learned layer's verdict, to raise the rules' one (whose language it keeps)."""
        layers = {"learned": learned.level}
        if learned.level == "none":
            # A report the rules could not place and the learned layer is unsure about.
            unsure = learned.unsure and learned.p_offtopic < OFF_TOPIC_GATE
            return Triage("none", unsure=unsure, layers=layers)
        sign = LEARNED_SIGN[learned.level]
        return Triage(learned.level, (sign,), self._learned_replies[learned.level], layers=layers)

    def _learned(self, text: str) -> LearnedFinding | None:
        if self.learned is None:
            return None
        try:
            return self.learned.assess(text)
        except Exception as error:  # noqa: BLE001 - the rules' verdict stands when the model fails
            log.error("learned triage layer failed: %s", type(error).__name__)
            return None

    # --- explaining ---------------------------------------------------------------------------------
    def explain(self, text: str, day: int | None = None) -> dict:
        """What each layer made of a message and why (for `python -m safety explain` and staff)."""
        rules = self.rules.assess(text, day)
        learned = self.learned.assess(rules.reported_text, explain=True) if self.learned else None
        triage = self.assess(text, day)
        return {
            "level": triage.level,
            "signs": list(triage.signs),
            "unsure": triage.unsure,
            "language": triage.language,
            "rules": {
                "level": rules.level,
                "signs": list(rules.signs),
                "about_health": rules.about_health,
                "because": [f"{sign}: {words}" for sign, words in rules.evidence],
            },
            "reported_words": rules.reported_text,
            "learned": None
            if learned is None
            else {
                "level": learned.level,
                "p_urgent_or_emergency": round(learned.p_escalate, 3),
                "p_emergency": round(learned.p_emergency, 3),
                "p_off_topic": round(learned.p_offtopic, 3),
                "thresholds": self.learned.thresholds.__dict__,  # type: ignore[union-attr]
                "nearest_examples": [
                    {"text": n.text, "label": n.label, "level": n.level, "similarity": round(n.similarity, 3)}
                    for n in learned.neighbours
                ],
            },
            "reply": triage.reply,
        }


__all__ = ["LEVELS", "Triage", "TriageEngine", "NO_TRIAGE"]
