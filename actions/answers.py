"""Actions that answer patient questions from the knowledge base.

The answer itself is decided in `knowledge.answers`; these actions give it what the conversation knows (the
treatment day, the stage, the last topic), remember what the answer taught (slots `treatment_stage`,
`topic`, `stage_question`) and ask the stage through `stage_form` when the answer depends on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    conversation_stage,
    day_of,
    latest_intent,
    patient_text,
    previous_patient_text,
    send,
    set_pending_question,
    store_stage,
    treatment_date_of,
)
from bot import services
from bot.conversation.pipeline import STAGE_QUESTION
from bot.records import record_unanswered
from knowledge.answers import Answer, asks_something
from knowledge.context import AFTER, BEFORE, corrected_stage, stage_answer, stated_stage

STAGE_FORM = "stage_form"
STAGE_SLOT = "treatment_stage"


def _remember_date(tracker: Tracker) -> list[EventType]:
    stated = treatment_date_of(tracker)
    events: list[EventType] = []
    if stated and stated.isoformat() != tracker.get_slot("treatment_date"):
        events.append(SlotSet("treatment_date", stated.isoformat()))
    if stated and tracker.get_slot(STAGE_SLOT) != AFTER:
        events.append(SlotSet(STAGE_SLOT, AFTER))
    return events


async def _keep_unanswered(
    tracker: Tracker, best_score: float | None, reason: str = "fallback", question: str | None = None
) -> None:
    """Record the question for staff, who see what patients ask that the articles do not cover."""
    question = question if question is not None else patient_text(tracker)
    intent = latest_intent(tracker)
    db = services.current().db
    await asyncio.to_thread(record_unanswered, db, tracker.sender_id, question, intent, best_score, reason)


async def _answer(
    tracker: Tracker, question: str, *, ask_stage: bool = True, use_intent: bool = True
) -> Answer:
    app = services.current()
    return await asyncio.to_thread(
        app.answerer.answer,
        question,
        latest_intent(tracker) if use_intent else None,
        day_of(tracker, app.today()),
        stage=conversation_stage(tracker),
        topic=tracker.get_slot("topic"),
        ask_stage=ask_stage,
    )


async def _reply(dispatcher: CollectingDispatcher, tracker: Tracker, answer: Answer, question: str) -> list:
    """Send an answer or fallback and return the slot events it implies."""
    send(dispatcher, answer.text, answer.kind, answer.sources)
    if answer.kind == "fallback":
        await _keep_unanswered(tracker, answer.score, question=question)
        return []
    if answer.score < services.current().answerer.threshold:
        # Answered only because the NLU intent agreed with the article: staff check these too.
        await _keep_unanswered(tracker, answer.score, "low_confidence", question)
    return [SlotSet("topic", answer.topic)] if answer.topic else []


async def _answer_or_ask_stage(
    dispatcher: CollectingDispatcher, tracker: Tracker, answer: Answer, question: str
) -> list[EventType]:
    if answer.kind == "ask_stage":
        return [
            *_remember_date(tracker),
            SlotSet("stage_question", answer.pending),
            FollowupAction(STAGE_FORM),
        ]
    return [*await _reply(dispatcher, tracker, answer, question), *_remember_date(tracker)]


async def _what_it_also_asks(tracker: Tracker) -> Answer | None:
    """NLU read the whole message as conversation (a greeting, thanks, a yes or no, booking, a treatment
    date), but it may also ask something: "how can I book a consultation?" is answered by an article, "no
    picking at all, right?" is a question, "is a latte ok the day after?" names a thing the guidance does not
    cover. The answerer decides without the intent's help; None when the message asks nothing it can place."""
    question = patient_text(tracker)
    if not asks_something(question):
        return None
    answer = await _answer(tracker, question, use_intent=False)
    if answer.kind in ("answer", "ask_stage") or answer.reason == "not_covered":
        return answer
    return None


async def _answer_previous_again(
    dispatcher: CollectingDispatcher, tracker: Tracker, stage: str
) -> list[EventType] | None:
    """The patient's previous question answered again now that the stage (and treatment day) is known or
    corrected: "can I wear makeup?" / "it was done 2 days ago". None when there is no previous question or
    it has no answer at that stage."""
    previous = previous_patient_text(tracker)
    if not previous:
        return None
    app = services.current()
    day = day_of(tracker, app.today()) if stage == AFTER else None
    answer = await asyncio.to_thread(
        app.answerer.answer, previous, None, day, stage=stage, ask_stage=False, stage_first=True
    )
    if answer.kind != "answer":
        return None
    return await _reply(dispatcher, tracker, answer, previous)


async def _answer_corrected_stage(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType] | None:
    """ "Sorry, I meant before": the previous question answered again at the stage the patient corrected
    to, and the stage remembered (unless a treatment date says otherwise). None when this is no such
    correction or the previous question has no answer at that stage."""
    stage = corrected_stage(patient_text(tracker))
    events = await _answer_previous_again(dispatcher, tracker, stage) if stage else None
    if events is None:
        return None
    if treatment_date_of(tracker) is None:
        await store_stage(tracker.sender_id, stage)
        events.append(SlotSet(STAGE_SLOT, stage))
    return events


async def _answer_what_it_also_asks(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType] | None:
    """Whatever NLU made of the message, what it also asks: a stage correction, or a question the articles
    place. None when it asks neither."""
    corrected = await _answer_corrected_stage(dispatcher, tracker)
    if corrected is not None:
        return corrected
    answer = await _what_it_also_asks(tracker)
    if answer is None:
        return None
    return await _answer_or_ask_stage(dispatcher, tracker, answer, patient_text(tracker))


class ActionAnswerQuestion(Action):
    """Answer from the clinic's reviewed articles, citing them, or say honestly that we don't know; when the
    answer depends on whether the treatment has happened and nothing said so, ask first."""

    def name(self) -> str:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        corrected = await _answer_corrected_stage(dispatcher, tracker)
        if corrected is not None:
            return corrected
        question = patient_text(tracker)
        return await _answer_or_ask_stage(dispatcher, tracker, await _answer(tracker, question), question)


class ActionSmallTalk(Action):
    """A greeting, thanks, goodbye, "are you a bot?", booking, or a yes or no out of context: the intent's
    response from the domain, unless the message also asks something the articles answer (then that)."""

    RESPONSES = {"affirm": "utter_ask_anything_else", "deny": "utter_ask_anything_else"}

    def name(self) -> str:
        return "action_small_talk"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        answered = await _answer_what_it_also_asks(dispatcher, tracker)
        if answered is not None:
            return answered
        intent = latest_intent(tracker) or "greet"
        dispatcher.utter_message(response=self.RESPONSES.get(intent, f"utter_{intent}"))
        return []


class ActionAskTreatmentStage(Action):
    """The stage form's question: has the treatment already happened, or is it still coming up?"""

    def name(self) -> str:
        return "action_ask_treatment_stage"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        replies = services.current().replies
        buttons = [{"title": title, "payload": title} for title in replies.options("stage_buttons")]
        send(dispatcher, replies.text("ask_stage"), "smalltalk", buttons=buttons)
        # The app reads the reply before Rasa does: an answer goes to the form, anything else ends it.
        await set_pending_question(tracker.sender_id, STAGE_QUESTION)
        return []


class ValidateStageForm(FormValidationAction):
    """The patient's reply becomes "before" or "after"; a reply that says neither ends the form."""

    def name(self) -> str:
        return "validate_stage_form"

    async def validate_treatment_stage(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        stage = stage_answer(str(slot_value or ""), services.current().today())
        await set_pending_question(tracker.sender_id, None)
        if stage is None:
            return {STAGE_SLOT: None, "requested_slot": None}
        await store_stage(tracker.sender_id, stage)
        return {STAGE_SLOT: stage}

    async def validate(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = await super().validate(dispatcher, tracker, domain)
        if any(
            e.get("event") == "slot" and e.get("name") == STAGE_SLOT and e.get("value") is None
            for e in events
        ):
            events.append(ActiveLoop(None))
        return events


class ActionAnswerAfterStage(Action):
    """The stage form is done: answer the question that was waiting, now with the stage (or without it)."""

    def name(self) -> str:
        return "action_answer_after_stage"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        question = tracker.get_slot("stage_question") or patient_text(tracker)
        answer = await _answer(tracker, question, ask_stage=False)
        return [*await _reply(dispatcher, tracker, answer, question), SlotSet("stage_question", None)]


class ActionOutOfScope(ActionAnswerQuestion):
    """NLU read the message as outside the clinic's guidance. The answerer still has the last word, because it
    can say more than NLU: which thing the guidance does not cover, that the assistant only helps with the
    treatment, or (NLU being wrong) the article that does answer it."""

    def name(self) -> str:
        return "action_out_of_scope"


class ActionRememberTreatmentDate(Action):
    """The patient said when they were (or will be) treated: remember it and say what that means."""

    def name(self) -> str:
        return "action_remember_treatment_date"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        app = services.current()
        stated = treatment_date_of(tracker)
        if stated is not None:
            text = app.replies.text(
                "treatment_date_noted", date=f"{stated:%A %d %B}", day=day_of(tracker, app.today())
            )
            send(dispatcher, text, "smalltalk")
            also = await _what_it_also_asks(tracker)
            if also is not None:
                return await _answer_or_ask_stage(dispatcher, tracker, also, patient_text(tracker))
            again = await _answer_previous_again(dispatcher, tracker, AFTER)
            return [*(again or []), *_remember_date(tracker)]
        if (
            stated_stage(patient_text(tracker), app.today()) == BEFORE
            or conversation_stage(tracker) == BEFORE
        ):
            send(dispatcher, app.replies.text("stage_noted_before"), "smalltalk")
            await store_stage(tracker.sender_id, BEFORE)
            again = await _answer_previous_again(dispatcher, tracker, BEFORE)
            return [*(again or []), SlotSet(STAGE_SLOT, BEFORE)]
        answered = await _answer_what_it_also_asks(dispatcher, tracker)
        if answered is not None:
            return answered
        send(dispatcher, app.replies.text("treatment_date_unclear"), "smalltalk")
        return []
