"""Small helpers shared by the actions: reading the tracker and sending chat-contract messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

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
