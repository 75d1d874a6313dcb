"""Small helpers shared by the actions: reading the tracker and sending chat-contract messages."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import services
from bot.conversation.pipeline import TEXT_GUARD
from bot.models import Conversation
from knowledge.context import AFTER, STAGES
from safety.reading import treatment_day


def message_metadata(tracker: Tracker) -> dict[str, Any]:
    return tracker.latest_message.get("metadata") or {}


def treatment_date_of(tracker: Tracker) -> date | None:
    """The treatment date the app sent with this message, else the one remembered in the slot."""
    value = message_metadata(tracker).get("treatment_date") or tracker.get_slot("treatment_date")
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def day_of(tracker: Tracker, today: date) -> int | None:
    stated = treatment_date_of(tracker)
    return treatment_day(stated, today) if stated else None


def patient_text(tracker: Tracker) -> str:
    """What the patient wrote, without the guard the app puts before text that starts with "/"."""
    return (tracker.latest_message.get("text") or "").removeprefix(TEXT_GUARD)


def conversation_stage(tracker: Tracker) -> str | None:
    """Whether the treatment has happened ("after") or is still to come ("before"), when the conversation
    knows: the treatment date, the patient's answer to the stage question (slot), or what the app read from
    the conversation ("my appointment is next Friday", sent as metadata)."""
    if treatment_date_of(tracker) is not None:
        return AFTER
    for value in (tracker.get_slot("treatment_stage"), message_metadata(tracker).get("stage")):
        if value in STAGES:
            return value
    return None


async def set_pending_question(conversation_id: str, question: str | None) -> None:
    """Tell the app which question the assistant is waiting for an answer to (it reads the answer first)."""
    await asyncio.to_thread(_update_conversation, conversation_id, pending_question=question)


async def store_stage(conversation_id: str, stage: str) -> None:
    """Keep the stage with the conversation, so every later message carries it (metadata `stage`)."""
    await asyncio.to_thread(_update_conversation, conversation_id, stage=stage)


def _update_conversation(conversation_id: str, **values: Any) -> None:
    with services.current().db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is not None:
            for name, value in values.items():
                setattr(conversation, name, value)


def previous_patient_text(tracker: Tracker) -> str | None:
    """What the patient wrote before this message (None at the start of the conversation)."""
    texts = [
        event.get("text") or ""
        for event in tracker.events
        if event.get("event") == "user" and not (event.get("text") or "").startswith("/")
    ]
    return texts[-2].removeprefix(TEXT_GUARD) if len(texts) >= 2 and texts[-2] else None


def latest_intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def send(
    dispatcher: CollectingDispatcher,
    text: str,
    kind: str,
    sources: list[dict[str, Any]] | None = None,
    buttons: list[dict[str, str]] | None = None,
    triage: str | None = None,
) -> None:
    """Send one message in the shape the clinic app turns into the chat API contract."""
    message: dict[str, Any] = {"text": text, "kind": kind, "sources": sources or [], "buttons": buttons or []}
    if triage is not None:
        message["triage"] = triage
    dispatcher.utter_message(json_message=message)
