"""The way a patient message travels: clean -> conversation -> triage -> Rasa -> reply.

Every channel (chat API, SMS, WhatsApp) adapts its input to `IncomingMessage` and calls `ChatPipeline.handle`.
Triage runs first, on every message, and its reply never depends on Rasa being up.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.escalation.handoff import HANDOFF_BUTTON, record_patient_message, waiting_text
from bot.models import Conversation
from bot.rasa_client import RasaUnavailable
from bot.schemas import Button, ChatMessage, ChatResponse, Source
from bot.services import Services
from safety.reading.treatment_day import extract_treatment_date, treatment_day
from safety.rules import TriageResult

log = logging.getLogger(__name__)

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ESCALATING_LEVELS = ("urgent", "emergency")


class BadMessage(ValueError):
    """The message cannot be processed as it is; the text says why, in words a patient understands."""


@dataclass(frozen=True)
class IncomingMessage:
    text: str
    session_id: str | None = None
    treatment_date: date | None = None
    channel: str = "api"


def clean_text(text: str, max_chars: int) -> str:
    """Strip control characters and surrounding blanks; refuse empty or over-long messages."""
    cleaned = _CONTROL_CHARS.sub(" ", text).strip()
    if not cleaned:
        raise BadMessage("The message is empty. Please type your question.")
    if len(cleaned) > max_chars:
        raise BadMessage(f"The message is too long ({len(cleaned)} characters, the limit is {max_chars}).")
    return cleaned


class ChatPipeline:
    """Turns one patient message into the assistant's reply messages."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.turns = TurnCounter()

    async def handle(self, incoming: IncomingMessage) -> ChatResponse:
        services = self.services
        text = clean_text(incoming.text, services.settings.max_message_chars)
        today = services.today()
        # In a thread: the commit waits for the disk, and the event loop keeps serving meanwhile.
        conversation = await asyncio.to_thread(self._conversation, incoming, text, today)
        day = treatment_day(conversation.treatment_date, today) if conversation.treatment_date else None

        triage = services.detector.assess(text, day)
        log.info(
            "message conversation=%s channel=%s triage=%s", conversation.id, incoming.channel, triage.level
        )

        messages: list[ChatMessage] = []
        if triage.level in ESCALATING_LEVELS:
            await self._escalate(conversation.id, text, triage, incoming.channel)
            offer = [] if conversation.handed_off else [Button(**HANDOFF_BUTTON)]
            messages.append(
                ChatMessage(text=triage.reply or "", kind="escalation", triage=triage.level, buttons=offer)
            )
        if conversation.handed_off:
            # Staff have this conversation: keep the message for them instead of answering automatically.
            await asyncio.to_thread(record_patient_message, services.db, conversation.id, text)
            waiting = ChatMessage(text=waiting_text(services.clinic), kind="handoff", triage=triage.level)
            messages.append(waiting)
            return ChatResponse(session_id=conversation.id, messages=messages)

        metadata = {
            "treatment_date": conversation.treatment_date.isoformat()
            if conversation.treatment_date
            else None,
            "triage": {"level": triage.level, "concepts": triage.concepts},
            "channel": incoming.channel,
        }
        turn = self.turns.count(conversation.id)
        messages += await self._ask_rasa(conversation.id, turn, text, metadata, triage)
        return ChatResponse(session_id=conversation.id, messages=messages)

    async def _escalate(self, conversation_id: str, text: str, triage: TriageResult, channel: str) -> None:
        """Record the escalation before Rasa is asked, so neither a slow nor a stopped Rasa can lose it."""
        try:
            record = self.services.escalations.record
            await asyncio.to_thread(record, conversation_id, triage.level, triage.concepts, channel, text)
        except Exception as error:  # noqa: BLE001 - the patient must still get the protocol reply
            # The class name only: database errors can quote the patient's text as a parameter.
            log.error("escalation not recorded conversation=%s: %s", conversation_id, type(error).__name__)

    def _conversation(self, incoming: IncomingMessage, text: str, today: date) -> Conversation:
        """Find or start the conversation and update its treatment date."""
        try:
            return self._update_conversation(incoming, text, today)
        except IntegrityError:
            # Two first messages of one new session raced to create it; the other one won: use that row.
            return self._update_conversation(incoming, text, today)

    def _update_conversation(self, incoming: IncomingMessage, text: str, today: date) -> Conversation:
        with self.services.db.session() as session:
            conversation = session.get(Conversation, incoming.session_id) if incoming.session_id else None
            known = conversation is not None and conversation.treatment_date is not None
            # Once the date is known, only a message that names the treatment again may change it.
            stated = extract_treatment_date(text, today, explicit_only=known) or incoming.treatment_date
            if stated and stated > today:
                stated = None  # a future date is an appointment, not a treatment that happened
            if conversation is None:
                conversation = Conversation(
                    id=incoming.session_id or uuid.uuid4().hex, channel=incoming.channel, handed_off=False
                )
                session.add(conversation)
            if stated and stated != conversation.treatment_date:
                conversation.treatment_date = stated
            return conversation

    async def _ask_rasa(
        self, sender: str, turn: int, text: str, metadata: dict[str, Any], triage: TriageResult
    ) -> list[ChatMessage]:
        try:
            if starts_rasa_session(turn, self.services.settings.rasa_session_turns):
                await self.services.rasa.send(sender, "/session_start", metadata)
            raw = await self.services.rasa.send(sender, text, metadata)
        except RasaUnavailable as error:
            log.warning("rasa unavailable conversation=%s error=%s", sender, error)
            return [self._unavailable_message(triage)]
        replies = [shape_rasa_message(message, triage.level) for message in raw]
        replies = [reply for reply in replies if reply is not None]
        if triage.level == "routine" and not any(reply.kind == "answer" for reply in replies):
            # The protocol's reassurance is better than "I don't know" for an expected effect.
            replies = [r for r in replies if r.kind != "fallback"]
            replies.insert(0, ChatMessage(text=triage.reply or "", kind="answer", triage="routine"))
        return replies or [self._unavailable_message(triage)]

    def _unavailable_message(self, triage: TriageResult) -> ChatMessage:
        clinic = self.services.clinic
        text = (
            f"Sorry, I can't answer questions right now. Please call {clinic.name} at {clinic.phone} "
            f"({clinic.hours})."
        )
        if triage.level == "routine" and triage.reply:
            text = f"{triage.reply} {text}"
        return ChatMessage(text=text, kind="fallback", triage=triage.level)


class TurnCounter:
    """Messages per conversation seen by this process, for the most recent conversations.

    Only paces Rasa sessions, so it lives in memory: after a restart or on another app instance a count
    starts again, which merely moves the next session start.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._counts: OrderedDict[str, int] = OrderedDict()

    def count(self, conversation_id: str) -> int:
        """Count one more message of the conversation; return its number (1 for the first)."""
        turn = self._counts.pop(conversation_id, 0) + 1
        self._counts[conversation_id] = turn
        if len(self._counts) > self.capacity:
            self._counts.popitem(last=False)
        return turn


def starts_rasa_session(turn: int, session_turns: int) -> bool:
    """Whether this turn opens a new Rasa session (the slots carry over).

    Rasa loads and sends every event of the current session on each turn, so a long conversation would get
    slower with every message; a new session every `session_turns` turns keeps a turn's cost flat.
    """
    return turn > 1 and (turn - 1) % session_turns == 0


def shape_rasa_message(message: dict[str, Any], triage_level: str) -> ChatMessage | None:
    """Fit one Rasa REST message into the chat contract.

    Actions send a custom JSON message with an explicit kind; plain domain responses are small talk.
    """
    custom = message.get("custom")
    if isinstance(custom, dict) and custom.get("text"):
        return ChatMessage(
            text=custom["text"],
            kind=custom.get("kind", "answer"),
            triage=triage_level,
            sources=[Source(**source) for source in custom.get("sources", [])],
            buttons=[Button(**button) for button in custom.get("buttons", [])],
        )
    if message.get("text"):
        buttons = [Button(title=b["title"], payload=b["payload"]) for b in message.get("buttons", [])]
        return ChatMessage(text=message["text"], kind="smalltalk", triage=triage_level, buttons=buttons)
    return None
