"""The way a patient message travels: clean -> triage -> conversation -> escalation -> Rasa -> reply.

Every channel (chat API, web widget, SMS, WhatsApp) turns its envelope into an `IncomingMessage` and calls
`ChatPipeline.handle`. Triage runs first, on the cleaned text, before any I/O; everything after it is
guarded, so whatever fails (the database, Rasa, the actions) the patient still gets the triage reply and
the clinic's phone. Staff are said to be alerted only when the escalation was durably recorded.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.conversation import store
from bot.conversation.triage_reply import NOT_ESCALATED, EscalationOutcome, TriageReplies
from bot.errors import where
from bot.models import Conversation
from bot.rasa_client import RasaUnavailable
from bot.schemas import Button, ChatMessage, Source, without_lone_surrogates
from bot.services import Services
from knowledge.context import AFTER, BEFORE, stage_answer, stated_stage
from safety.engine import Triage
from safety.reading import extract_treatment_date, stated_day, treatment_day
from safety.reading.answers import read_answer
from safety.rules import RANK

log = logging.getLogger(__name__)

# Control characters other than tab/newline (lone surrogates: see bot.schemas.without_lone_surrogates).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
RASA_COMMAND = "/"
# Put before patient text that starts with "/": Rasa would read it as an intent command, and it is text.
TEXT_GUARD = "\u200b"
HISTORY_MESSAGES = 8
HISTORY_WINDOW = timedelta(hours=48)
RED_FLAG_INTENT = "/EXTERNAL_red_flag"
UNSURE_INTENT = "/EXTERNAL_unsure_report"
STOP_CLARIFYING_INTENT = "/EXTERNAL_stop_clarifying"
# The pending question while the assistant asks whether the treatment has happened (actions/answers.py).
STAGE_QUESTION = "treatment_stage"


class BadMessage(ValueError):
    """The message cannot be processed as it is; `reply` names the replies.yml text that says why."""

    def __init__(self, reply: str, **values: object) -> None:
        super().__init__(reply)
        self.reply = reply
        self.values = values


@dataclass(frozen=True)
class IncomingMessage:
    text: str
    channel: str = "api"
    # Verified by the channel adapter (a session token, a signed webhook); None starts a new conversation.
    conversation_id: str | None = None
    treatment_date: date | None = None
    source: str | None = None  # the client's address or the sender: rate limits and escalation caps
    new_session_hash: str | None = None  # a new web/API conversation: the hash of its session secret
    answer: bool = True  # False (rate-limited): triage, escalation and the safety reply only
    # The channel could not confirm the conversation because its records are unavailable (the session
    # token's signature is valid): triage, the escalation spool and the safety reply only.
    unconfirmed: bool = False


@dataclass(frozen=True)
class PipelineResult:
    conversation_id: str | None  # None only when the database could not be reached
    messages: list[ChatMessage]
    triage: Triage
    created: bool = False
    handed_off: bool = False


@dataclass
class _Context:
    """What the conversation knows when the message arrives."""

    conversation: Conversation
    created: bool
    day: int | None
    history: list[str] = field(default_factory=list)


def clean_text(text: str, max_chars: int) -> str:
    """Normalise what any client sends: Unicode NFC, no control characters or lone surrogates, trimmed.

    The limit is checked before normalising (which could expand the text) and after it."""
    if len(text) > max_chars * 2:
        raise BadMessage("too_long", length=len(text), limit=max_chars)
    text = without_lone_surrogates(text)
    cleaned = _CONTROL_CHARS.sub(" ", unicodedata.normalize("NFC", text)).strip()
    if not cleaned:
        raise BadMessage("empty_message")
    if len(cleaned) > max_chars:
        raise BadMessage("too_long", length=len(cleaned), limit=max_chars)
    return cleaned


def replace_level(message: ChatMessage, level: str) -> ChatMessage:
    """Every message of a reply carries the triage level the conversation has reached."""
    return message if message.triage == level else message.model_copy(update={"triage": level})


def for_rasa(text: str) -> str:
    """Patient text is always text: never a Rasa command (`/restart`, `/ask_makeup`)."""
    return TEXT_GUARD + text if text.lstrip().startswith(RASA_COMMAND) else text


class ChatPipeline:
    """Turns one patient message into the assistant's reply messages."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.turns = TurnCounter()
        self.wording = TriageReplies(services.triage.protocol, services.replies, services.clinic)

    # --- the one entry point ----------------------------------------------------------------------------
    async def handle(self, incoming: IncomingMessage) -> PipelineResult:
        services = self.services
        text = clean_text(incoming.text, services.settings.max_message_chars)
        today = services.today()
        day = self._stated_day(incoming, text, today)
        # 1. Triage on the text alone, before any I/O: whatever fails later, this reply stands.
        triage = await self._triage(text, day)
        if incoming.unconfirmed:
            return await self._without_conversation(incoming, text, triage)
        if not (incoming.answer or incoming.conversation_id or triage.escalates or triage.unsure):
            # A new conversation over its limits with nothing worrying in it: nothing to open or keep.
            return PipelineResult(None, [self._slow_down(triage)], triage)
        # 2. The conversation: may fail (database locked, read-only, full, gone).
        try:
            context = await asyncio.to_thread(self._open_conversation, incoming, text, today)
        except Exception as error:  # noqa: BLE001 - the patient still gets the triage reply
            log.error("conversation unavailable channel=%s: %s", incoming.channel, type(error).__name__)
            return await self._without_conversation(incoming, text, triage)
        conversation = context.conversation
        outcome = NOT_ESCALATED
        try:
            # 3. The same message read again with what the conversation knows: the treatment day, the
            # earlier messages, and the answer to a clarifying question the assistant asked.
            triage = await self._triage_in_context(text, triage, day, context)
            if triage.escalates:
                outcome = await self._escalate(conversation.id, triage, text, incoming)
            messages = await self._reply(context, text, triage, outcome, incoming)
        except Exception as error:  # noqa: BLE001 - whatever broke, the triage reply and the clinic's phone
            log.error(
                "reply failed conversation=%s: %s at %s",
                conversation.reference,
                type(error).__name__,
                where(error),
            )
            if triage.escalates and outcome is NOT_ESCALATED:
                outcome = await self._escalate(conversation.id, triage, text, incoming)
            handed_off = conversation.handed_off
            messages = [*self._triage_messages(triage, outcome, handed_off), self._unavailable(triage)]
        messages = [replace_level(message, triage.level) for message in messages]
        await self._remember(conversation.id, triage, text, messages)
        return PipelineResult(conversation.id, messages, triage, context.created, conversation.handed_off)

    async def _reply(
        self,
        context: _Context,
        text: str,
        triage: Triage,
        outcome: EscalationOutcome,
        incoming: IncomingMessage,
    ) -> list[ChatMessage]:
        conversation = context.conversation
        log.info(
            "message conversation=%s channel=%s triage=%s escalation=%s",
            conversation.reference,
            incoming.channel,
            triage.level,
            outcome.status,
        )
        # When the red flag was in an earlier message and staff already know, this message gets its own
        # answer rather than the same instruction again; the triage field keeps the conversation's level.
        spoken = triage
        if outcome.status == "duplicate" and RANK[triage.message_level] < RANK[triage.level]:
            spoken = replace(triage, level=triage.message_level, reply=None, signs=())
        if conversation.handed_off:
            return await self._while_handed_off(conversation, text, spoken, outcome)
        return await self._converse(context, text, spoken, outcome, incoming)

    # --- triage -------------------------------------------------------------------------------------------
    def _stated_day(self, incoming: IncomingMessage, text: str, today: date) -> int | None:
        """The treatment day from the request or the message; never raises, whatever the text."""
        if incoming.treatment_date is not None:
            return treatment_day(incoming.treatment_date, today)
        try:
            return stated_day(text, today)
        except Exception as error:  # noqa: BLE001 - a day the reader cannot read is an unknown day
            log.error("treatment day not read: %s", type(error).__name__)
            return None

    async def _triage(self, text: str, day: int | None, history: list[str] | None = None) -> Triage:
        engine = self.services.triage
        try:
            triage = await asyncio.to_thread(engine.assess, text, day)
            if history:
                conversation = await asyncio.to_thread(engine.assess_conversation, [*history, text], day)
                triage = triage.raised_by(conversation)
            return triage
        except Exception as error:  # noqa: BLE001 - unsure, so the patient gets safety-netting advice
            log.error("triage failed: %s", type(error).__name__)
            return Triage("none", unsure=True, layers={"error": "none"})

    async def _triage_in_context(
        self, text: str, first: Triage, first_day: int | None, context: _Context
    ) -> Triage:
        conversation = context.conversation
        triage = first
        if context.day != first_day:
            # The conversation knows a different treatment day: the message is read again with it.
            triage = await self._triage(text, context.day, context.history)
        elif context.history:
            conversation_layer = await asyncio.to_thread(
                self.services.triage.assess_conversation, [*context.history, text], context.day
            )
            triage = first.raised_by(conversation_layer)
        question = conversation.pending_question
        if question and read_answer(text, triage.language) == "yes":
            asked = next((q for q in self.services.triage.protocol.questions if q.id == question), None)
            if asked is not None:
                sign = self.services.triage.protocol.sign(asked.sign)
                answered = Triage(
                    sign.severity,
                    (sign.id,),
                    self.services.triage.reply_for(sign.id),
                    language=triage.language,
                    layers={"clarifying": sign.severity},
                )
                triage = triage.raised_by(answered)
        return triage

    # --- the conversation row -------------------------------------------------------------------------
    def _open_conversation(self, incoming: IncomingMessage, text: str, today: date) -> _Context:
        try:
            return self._find_or_start(incoming, text, today)
        except IntegrityError:
            # Two first messages of one new conversation raced to create it; the other one won.
            return self._find_or_start(incoming, text, today)

    def _find_or_start(self, incoming: IncomingMessage, text: str, today: date) -> _Context:
        services = self.services
        history: list[str] = []
        if incoming.conversation_id is not None:
            history = store.recent_patient_texts(
                services.db, incoming.conversation_id, HISTORY_MESSAGES - 1, HISTORY_WINDOW
            )
        with services.db.session() as session:
            conversation = (
                session.get(Conversation, incoming.conversation_id) if incoming.conversation_id else None
            )
            created = conversation is None
            if conversation is None:
                conversation = store.new_conversation(incoming.channel, incoming.new_session_hash)
                session.add(conversation)
            known = conversation.treatment_date is not None or conversation.stage == BEFORE
            # Once the date is known, or the treatment is known to be still to come, only a message that names
            # the treatment may change it ("can I use my toner tonight?" is not a treatment tonight).
            stated = incoming.treatment_date or extract_treatment_date(text, today, explicit_only=known)
            if stated and stated <= today and stated != conversation.treatment_date:
                conversation.treatment_date = stated
            self._note_stage(conversation, text, today)
            session.flush()
            session.expunge(conversation)
        # While staff have the conversation, the patient's messages are for them.
        store.add_message(services.db, conversation.id, "patient", text, for_staff=conversation.handed_off)
        day = store.treatment_day_of(conversation, today)
        return _Context(conversation, created, day, history)

    # --- the treatment stage (knowledge/answers.py chooses after-care or pre-care articles with it) -------
    @staticmethod
    def _note_stage(conversation: Conversation, text: str, today: date) -> None:
        """A known treatment date means the treatment has happened; otherwise a message may say it is still
        to come ("my appointment is next Friday"). The stage travels to Rasa as metadata."""
        if conversation.treatment_date is not None:
            conversation.stage = AFTER
            return
        try:
            said = stated_stage(text, today)
        except Exception as error:  # noqa: BLE001 - an unread stage is an unknown stage
            log.error("stage not read: %s", type(error).__name__)
            return
        if said is not None:
            conversation.stage = said

    def _answer_to(self, pending: str | None, text: str, language: str) -> str | None:
        """The patient's answer to the question the assistant asked last, or None if this is not one."""
        if not pending:
            return None
        if pending == STAGE_QUESTION:
            return stage_answer(text, self.services.today())
        return read_answer(text, language)

    async def _without_conversation(
        self, incoming: IncomingMessage, text: str, triage: Triage
    ) -> PipelineResult:
        """The database is unavailable: the triage reply, an escalation to the spool, the clinic's phone."""
        outcome = NOT_ESCALATED
        if triage.escalates:
            conversation_id = incoming.conversation_id or store.new_conversation(incoming.channel).id
            # Straight to the spool: the database has just failed, and the patient must not wait for it
            # to time out again before being told to call.
            outcome = await self._escalate(conversation_id, triage, text, incoming, write_attempts=0)
        messages = self._triage_messages(triage, outcome, handed_off=False)
        messages.append(self._unavailable(triage))
        return PipelineResult(None, messages, triage)

    # --- escalation -----------------------------------------------------------------------------------
    async def _escalate(
        self,
        conversation_id: str,
        triage: Triage,
        text: str,
        incoming: IncomingMessage,
        write_attempts: int | None = None,
    ) -> EscalationOutcome:
        """Record the escalation before Rasa is asked, so neither a slow nor a stopped Rasa can lose it."""
        attempts = {} if write_attempts is None else {"write_attempts": write_attempts}
        try:
            recorded = await asyncio.to_thread(
                self.services.escalations.record,
                conversation_id,
                triage.level,
                triage.signs,
                incoming.channel,
                text,
                incoming.source,
                **attempts,
            )
        except Exception as error:  # noqa: BLE001 - the patient must still get the protocol reply
            log.error("escalation not recorded: %s", type(error).__name__)
            return EscalationOutcome("failed", False)
        return EscalationOutcome(recorded.status, recorded.alerted)

    # --- replies -------------------------------------------------------------------------------------------
    def _triage_messages(
        self, triage: Triage, outcome: EscalationOutcome, handed_off: bool
    ) -> list[ChatMessage]:
        """The pipeline's own triage messages (Rasa's actions send the same words when Rasa is up)."""
        if triage.escalates:
            return [self.wording.for_escalation(triage, outcome, handed_off)]
        if triage.unsure:
            return [self.wording.safety_net(triage)]
        if triage.level == "routine" and triage.reply:
            return [self.wording.for_routine(triage)]
        return []

    async def _while_handed_off(
        self, conversation: Conversation, text: str, triage: Triage, outcome: EscalationOutcome
    ) -> list[ChatMessage]:
        """Staff have this conversation (the message was kept for them); triage still speaks first."""
        messages = [
            m for m in self._triage_messages(triage, outcome, handed_off=True) if m.kind == "escalation"
        ]
        messages.append(
            ChatMessage(
                text=self.services.replies.text("handoff_waiting", triage.language),
                kind="handoff",
                triage=triage.level,
            )
        )
        return messages

    async def _converse(
        self,
        context: _Context,
        text: str,
        triage: Triage,
        outcome: EscalationOutcome,
        incoming: IncomingMessage,
    ) -> list[ChatMessage]:
        conversation = context.conversation
        replies = self.services.replies
        if triage.language != "en":
            # Rasa and the articles are English: triage has spoken; say so in the patient's language.
            notice = ChatMessage(
                text=replies.text("other_language", triage.language), kind="fallback", triage=triage.level
            )
            return [*self._triage_messages(triage, outcome, handed_off=False), notice]
        metadata = self._metadata(conversation, triage, outcome, incoming)
        pending = conversation.pending_question
        answered = self._answer_to(pending, text, triage.language)
        # An emergency gets its one instruction only: no article may muddy "call 911 now"; and a "yes" to a
        # clarifying question that raised a red flag has nothing more to answer.
        answer_text = (
            incoming.answer and triage.level != "emergency" and not (triage.escalates and answered == "yes")
        )
        answers: list[ChatMessage] = []
        try:
            turn = self.turns.count(conversation.id)
            # Never in the middle of the clarifying questions: a new session would end Rasa's form.
            if not pending and starts_rasa_session(turn, self.services.settings.rasa_session_turns):
                await self.services.rasa.send(conversation.id, "/session_start", metadata)
            if pending and answered is None:
                # The patient moved on instead of answering the clarifying question.
                await self.services.rasa.send(conversation.id, STOP_CLARIFYING_INTENT, metadata)
            if triage.escalates:
                answers += await self._ask_rasa(conversation.id, RED_FLAG_INTENT, metadata, triage)
            if answer_text:
                answers += await self._ask_rasa(conversation.id, for_rasa(text), metadata, triage)
            if triage.unsure and not pending and incoming.answer:
                answers += await self._ask_rasa(conversation.id, UNSURE_INTENT, metadata, triage)
        except RasaUnavailable as error:
            log.warning("rasa unavailable conversation=%s error=%s", conversation.reference, error)
            return [*self._triage_messages(triage, outcome, handed_off=False), self._unavailable(triage)]
        return self._with_triage_first(answers, triage, outcome, incoming)

    def _with_triage_first(
        self,
        answers: list[ChatMessage],
        triage: Triage,
        outcome: EscalationOutcome,
        incoming: IncomingMessage,
    ) -> list[ChatMessage]:
        """Whatever Rasa said, the red-flag instruction comes first and the safety reply is there."""
        ours = self._triage_messages(triage, outcome, handed_off=False)
        if triage.escalates:
            answers = [a for a in answers if a.kind != "escalation"]
            answers = [ours[0], *answers]
        elif triage.unsure and not any(a.kind == "escalation" for a in answers):
            answers = [*ours, *answers]
        elif triage.level == "routine" and not any(a.kind == "answer" for a in answers):
            # The protocol's reassurance is better than "I don't know" for an expected effect.
            answers = [*ours, *(a for a in answers if a.kind != "fallback")]
        if not incoming.answer:
            answers.append(self._slow_down(triage))
        return answers or [self._unavailable(triage)]

    async def _ask_rasa(
        self, sender: str, text: str, metadata: dict[str, Any], triage: Triage
    ) -> list[ChatMessage]:
        raw = await self.services.rasa.send(sender, text, metadata)
        shaped = [shape_rasa_message(message, triage.level) for message in raw]
        return [message for message in shaped if message is not None]

    def _metadata(
        self,
        conversation: Conversation,
        triage: Triage,
        outcome: EscalationOutcome,
        incoming: IncomingMessage,
    ) -> dict[str, Any]:
        return {
            "treatment_date": conversation.treatment_date.isoformat()
            if conversation.treatment_date
            else None,
            "stage": conversation.stage,
            "channel": incoming.channel,
            "triage": {
                "level": triage.level,
                "concepts": list(triage.signs),
                "unsure": triage.unsure,
                "language": triage.language,
                "escalation": outcome.status,
                "alerted": outcome.alerted,
            },
        }

    def _unavailable(self, triage: Triage) -> ChatMessage:
        text = self.services.replies.text("unavailable", triage.language)
        return ChatMessage(text=text, kind="fallback", triage=triage.level)

    def _slow_down(self, triage: Triage) -> ChatMessage:
        return ChatMessage(text=self.services.replies.text("slow_down"), kind="fallback", triage=triage.level)

    async def _remember(
        self, conversation_id: str, triage: Triage, text: str, messages: list[ChatMessage]
    ) -> None:
        """Keep the replies (with the article versions they quoted) and put unsure reports up for review."""
        db = self.services.db

        def write() -> None:
            for message in messages:
                sources = [source.model_dump() for source in message.sources] or None
                store.add_message(
                    db,
                    conversation_id,
                    "assistant",
                    message.text,
                    kind=message.kind,
                    triage=message.triage,
                    sources=sources,
                    alerted=message.alerted,
                )
            if triage.unsure:
                store.add_review(db, conversation_id, text, "unsure", triage.level)

        try:
            await asyncio.to_thread(write)
        except Exception as error:  # noqa: BLE001 - the patient has the reply; the record is best effort
            log.error("reply not recorded: %s", type(error).__name__)


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
    slower with every message; a new session every `session_turns` turns keeps a turn's cost flat. A turn
    that answers a clarifying question skips it (the next one comes `session_turns` turns later).
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
            triage=custom.get("triage", triage_level) if custom.get("kind") == "escalation" else triage_level,
            sources=[Source(**source) for source in custom.get("sources", [])],
            buttons=[Button(**button) for button in custom.get("buttons", [])],
        )
    if message.get("text"):
        buttons = [Button(title=b["title"], payload=b["payload"]) for b in message.get("buttons", [])]
        return ChatMessage(text=message["text"], kind="smalltalk", triage=triage_level, buttons=buttons)
    return None
