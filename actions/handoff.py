"""The patient asked for a person: staff take the conversation over."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import send
from bot import services
from bot.escalation.handoff import hand_off

log = logging.getLogger(__name__)


class ActionHandoff(Action):
    """Hand the conversation to clinic staff and tell the patient where the answer will come from."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        app = services.current()
        started = await asyncio.to_thread(hand_off, app.db, tracker.sender_id, "patient_request")
        log.info("handoff new=%s", started)
        send(dispatcher, app.replies.text("handoff"), kind="handoff")
        return []
