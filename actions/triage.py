"""The conversational side of triage, as Rasa custom actions.

The clinic app triages every message before Rasa and records escalations durably itself; it then sends
`/EXTERNAL_red_flag` or `/EXTERNAL_unsure_report` with the triage in the message metadata, and these
actions answer: the protocol's instruction (with whether staff were alerted), the safety-netting advice,
and the clarifying questions of `triage_check_form`. When Rasa is down the app sends the same words itself.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import message_metadata, send, set_pending_question
from bot import services
from bot.conversation.triage_reply import EscalationOutcome, TriageReplies
from safety.engine import Triage
from safety.reading.answers import read_answer

QUESTION_SLOTS = {"breathing": "check_breathing", "fever": "check_fever", "spreading": "check_spreading",
                  "worsening": "check_worsening"}  # fmt: skip


def _wording() -> TriageReplies:
    app = services.current()
    return TriageReplies(app.triage.protocol, app.replies, app.clinic)


def _triage_of(tracker: Tracker) -> tuple[Triage, EscalationOutcome]:
    """The triage the app attached to this message."""
    data = message_metadata(tracker).get("triage") or {}
    signs = tuple(str(sign) for sign in data.get("concepts") or ())
    engine = services.current().triage
    reply = engine.reply_for(signs[0]) if signs else None
    triage = Triage(
        level=str(data.get("level", "none")),
        signs=signs,
        reply=reply,
        unsure=bool(data.get("unsure")),
        language=str(data.get("language", "en")),
    )
    return triage, EscalationOutcome(str(data.get("escalation", "none")), bool(data.get("alerted")))


def _end_clarifying() -> list[EventType]:
    return [
        ActiveLoop(None),
        SlotSet("requested_slot", None),
        *(SlotSet(s, None) for s in QUESTION_SLOTS.values()),
    ]


class ActionRedFlag(Action):
    """An urgent or emergency message: the protocol's instruction first, and the truth about alerting."""

    def name(self) -> str:
        return "action_red_flag"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        triage, outcome = _triage_of(tracker)
        if triage.escalates:
            message = _wording().for_escalation(triage, outcome, handed_off=False)
            send(
                dispatcher,
                message.text,
                "escalation",
                buttons=[b.model_dump() for b in message.buttons],
                triage=triage.level,
            )
        await set_pending_question(tracker.sender_id, None)
        return _end_clarifying()


class ActionSafetyNet(Action):
    """A symptom report no layer could place: when to call, before the clarifying questions."""

    def name(self) -> str:
        return "action_safety_net"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        triage, _ = _triage_of(tracker)
        message = _wording().safety_net(triage)
        send(dispatcher, message.text, "escalation", triage=triage.level)
        send(dispatcher, services.current().replies.text("clarify_intro"), "smalltalk")
        return []


class ActionStopClarifying(Action):
    """The patient moved on instead of answering: stop asking (their message is answered normally)."""

    def name(self) -> str:
        return "action_stop_clarifying"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        await set_pending_question(tracker.sender_id, None)
        return _end_clarifying()


class ActionTriageCheckDone(Action):
    """All clarifying questions answered "no": reassure, and say when to call."""

    def name(self) -> str:
        return "action_triage_check_done"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        send(dispatcher, services.current().replies.text("clarify_done"), "answer")
        await set_pending_question(tracker.sender_id, None)
        return [SlotSet(s, None) for s in QUESTION_SLOTS.values()]


class _AskQuestion:
    """Asks one of the protocol's clarifying questions and tells the app which one is pending, so it can
    read the answer (a "yes" is triaged as that sign before Rasa sees it). A mixin, so that rasa-sdk does
    not register it as an action itself."""

    question_id = ""

    def name(self) -> str:
        return f"action_ask_{QUESTION_SLOTS[self.question_id]}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        app = services.current()
        question = next(q for q in app.triage.protocol.questions if q.id == self.question_id)
        yes, no = app.replies.options("yes_no")
        send(
            dispatcher,
            question.ask,
            "smalltalk",
            buttons=[{"title": yes, "payload": yes}, {"title": no, "payload": no}],
        )
        await set_pending_question(tracker.sender_id, self.question_id)
        return []


class ActionAskCheckBreathing(_AskQuestion, Action):
    question_id = "breathing"


class ActionAskCheckFever(_AskQuestion, Action):
    question_id = "fever"


class ActionAskCheckSpreading(_AskQuestion, Action):
    question_id = "spreading"


class ActionAskCheckWorsening(_AskQuestion, Action):
    question_id = "worsening"


class ValidateTriageCheckForm(FormValidationAction):
    """Every answer becomes "yes", "no" or "unclear" (the app has already triaged a "yes")."""

    def name(self) -> str:
        return "validate_triage_check_form"

    async def validate(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = await super().validate(dispatcher, tracker, domain)
        normalised = []
        for event in events:
            if (
                event.get("event") == "slot"
                and event.get("name") in QUESTION_SLOTS.values()
                and event.get("value")
            ):
                answer = read_answer(str(event["value"])) or "unclear"
                event = SlotSet(event["name"], answer)
            normalised.append(event)
        return normalised
