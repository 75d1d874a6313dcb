"""Actions that answer patient questions from the knowledge base."""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import day_of, latest_intent, send, treatment_date_of
from bot import services
from bot.records import record_unanswered


def _remember_date(tracker: Tracker) -> list[EventType]:
    stated = treatment_date_of(tracker)
    if stated and stated.isoformat() != tracker.get_slot("treatment_date"):
        return [SlotSet("treatment_date", stated.isoformat())]
    return []


async def _keep_unanswered(tracker: Tracker, best_score: float | None, reason: str = "fallback") -> None:
    """Record the question for staff, who see what patients ask that the articles do not cover."""
    question = tracker.latest_message.get("text") or ""
    intent = latest_intent(tracker)
    db = services.current().db
    await asyncio.to_thread(record_unanswered, db, tracker.sender_id, question, intent, best_score, reason)


class ActionAnswerQuestion(Action):
    """Answer from the clinic's reviewed articles, citing them, or say honestly that we don't know."""

    def name(self) -> str:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        app = services.current()
        question = tracker.latest_message.get("text") or ""
        intent = latest_intent(tracker)
        answer = await asyncio.to_thread(app.answerer.answer, question, intent, day_of(tracker, app.today()))
        send(dispatcher, answer.text, answer.kind, answer.sources)
        if answer.kind == "fallback":
            await _keep_unanswered(tracker, answer.score)
        elif answer.score < app.answerer.threshold:
            # Answered only because the NLU intent agreed with the article: staff check these too.
            await _keep_unanswered(tracker, answer.score, "low_confidence")
        return _remember_date(tracker)


class ActionOutOfScope(Action):
    """Questions the clinic's guidance does not cover: no guessing, point to the clinic."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        send(dispatcher, services.current().replies.text("fallback"), "fallback")
        await _keep_unanswered(tracker, best_score=None, reason="out_of_scope")
        return _remember_date(tracker)


class ActionRememberTreatmentDate(Action):
    """The patient told us when they were treated: remember it and say which treatment day it is."""

    def name(self) -> str:
        return "action_remember_treatment_date"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        app = services.current()
        stated = treatment_date_of(tracker)
        if stated is None:
            text = app.replies.text("treatment_date_unclear")
        else:
            text = app.replies.text(
                "treatment_date_noted", date=f"{stated:%A %d %B}", day=day_of(tracker, app.today())
            )
        send(dispatcher, text, "smalltalk")
        return _remember_date(tracker)
