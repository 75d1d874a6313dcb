"""What the patient is told about a triaged message: the protocol's advice and, only when it is true, that
staff were alerted. Used by the Rasa action that sends it and by the pipeline when Rasa is unavailable, so
the words are the same either way. All wording comes from safety/protocol.yml and knowledge/replies.yml."""

from __future__ import annotations

from dataclasses import dataclass

from bot.schemas import Button, ChatMessage
from knowledge.clinic import ClinicProfile
from knowledge.replies import Replies
from safety.engine import Triage
from safety.protocol import Protocol


@dataclass(frozen=True)
class EscalationOutcome:
    """What became of the escalation of a message (see `bot.escalation.service.Recorded`)."""

    status: str  # new | duplicate | aggregated | spooled | failed | none
    alerted: bool


NOT_ESCALATED = EscalationOutcome("none", False)


class TriageReplies:
    def __init__(self, protocol: Protocol, replies: Replies, clinic: ClinicProfile) -> None:
        self.protocol = protocol
        self.replies = replies
        self.clinic = clinic

    def for_escalation(self, triage: Triage, outcome: EscalationOutcome, handed_off: bool) -> ChatMessage:
        """The urgent or emergency message: the protocol's advice, then what we did about it."""
        parts = [self._native_line(triage, triage.level), triage.reply or ""]
        parts.append(self._alert_line(triage.level, outcome))
        offer = []
        if triage.level == "urgent" and not handed_off:
            # A button sends its payload as the patient's text: plain words the NLU reads as asking for
            # a person.
            title = self.replies.text("handoff_button", triage.language)
            offer = [Button(title=title, payload=title)]
        return ChatMessage(
            text=" ".join(part for part in parts if part),
            kind="escalation",
            triage=triage.level,
            buttons=offer,
            alerted=outcome.alerted,
        )

    def for_routine(self, triage: Triage) -> ChatMessage:
        """An expected effect: the protocol's reassurance and when to call."""
        text = " ".join(part for part in (self._native_line(triage, "routine"), triage.reply or "") if part)
        return ChatMessage(text=text, kind="answer", triage="routine")

    def safety_net(self, triage: Triage) -> ChatMessage:
        """A symptom report no layer could place: when to call the clinic or the emergency number."""
        native = self._native_line(triage, "safety_net")
        text = " ".join(
            part for part in (native, self.clinic.fill(self.protocol.wording["safety_net"])) if part
        )
        return ChatMessage(text=text, kind="escalation", triage=triage.level)

    def _alert_line(self, level: str, outcome: EscalationOutcome) -> str:
        wording = self.protocol.wording
        if outcome.status == "duplicate" and outcome.alerted:
            return self.clinic.fill(wording["already_alerted"])
        if outcome.alerted:
            return self.clinic.fill(wording["emergency_alerted" if level == "emergency" else "alerted"])
        return self.clinic.fill(wording["not_alerted"])

    def _native_line(self, triage: Triage, disposition: str) -> str:
        lines = self.protocol.translations.get(triage.language, {})
        return self.clinic.fill(lines[disposition]) if disposition in lines else ""
