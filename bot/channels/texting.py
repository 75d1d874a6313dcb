"""Patients who text: what the SMS and WhatsApp adapters share, from an acknowledged message to its reply.

1. The adapter checks the provider's signature, reads its envelope into an `Envelope` and calls `accept`:
   in one transaction the conversation (`sms-<hash>`, `wa-<hash>`), its contact (where replies go) and the
   inbound message are stored. The provider's message id is unique, so a redelivery (also a concurrent one)
   is a duplicate and is acknowledged without being handled again. Then the adapter acknowledges at once.
2. `handle` runs in the background: it claims the message (a lease, so another instance or a restart
   resumes it if this one dies), and with the conversation's lock (one patient's messages in order):
   keywords (STOP / START / HELP) change the opt-out; anything else goes through `ChatPipeline.handle`, the
   same pipeline as every channel, triage first; a numbered choice ("2") is mapped back to its button.
3. The reply is rendered for the channel and queued in the outbox in the transaction that marks the message
   handled: one reply per message, whatever crashes where. A patient who opted out gets no reply (the
   message is still triaged, kept and escalated: staff can call).

Per-sender rate limit: over it, the message is still triaged and escalated, and the patient gets the safety
reply if there is one, otherwise one polite "slow down" per window and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from limits import parse, storage, strategies
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.channels.models import ChannelContact, DeliveryEvent, InboundMessage
from bot.channels.outgoing import queue_patient_message, style_for
from bot.channels.render import Wording, render
from bot.conversation import store
from bot.conversation.pipeline import BadMessage, ChatPipeline, IncomingMessage
from bot.models import Conversation, utcnow
from bot.outbox.models import PRIORITY, OutboxMessage
from bot.schemas import Button, ChatMessage
from bot.services import Services

log = logging.getLogger(__name__)

ID_PREFIX = {"sms": "sms", "whatsapp": "wa"}
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
_CHOICE = re.compile(r"^\s*([1-9])\s*[.)]?\s*$")
# Furthest first: a late "sent" callback never overwrites "delivered".
STATUS_RANK = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "read": 5}
FINAL_FAILURES = frozenset({"failed", "undelivered"})
HANDLE_ATTEMPTS = 3
SWEEP_SECONDS = 5.0
UNCLAIMED_GRACE = timedelta(seconds=15)


@dataclass(frozen=True)
class Envelope:
    """What an adapter read from one provider message (a verified request)."""

    provider: str  # twilio | meta
    provider_id: str  # MessageSid / wamid
    channel: str  # sms | whatsapp
    sender: (
        str  # the patient's address as the provider spells it ("+1555...", "whatsapp:+1555...", "1555...")
    )
    clinic_address: str  # the clinic's number (Twilio) or phone number id (Meta)
    text: str = ""
    media: int = 0  # attachments (pictures, voice notes, files, locations)
    choice: str | None = None  # a reply button's id (WhatsApp interactive)
    choice_title: str | None = None
    keyword_handled: bool = False  # the provider already answered a STOP/START/HELP itself


@dataclass(frozen=True)
class Accepted:
    """A message stored and acknowledged, to be handled."""

    inbound_id: int
    conversation_id: str


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...]
    interactive: bool
    priority: int
    purpose: str  # reply | keyword


def normalised_number(address: str) -> str:
    """ "whatsapp:+1 555-010" / "1555010" -> "+1555010": one patient, one id, on either WhatsApp provider."""
    digits = re.sub(r"\D", "", address.removeprefix("whatsapp:"))
    return f"+{digits}" if digits else address


def sender_key(secret: str, channel: str, address: str) -> str:
    """A keyed hash of the sender: conversation ids, rate limits and escalation caps, never the number."""
    message = f"{channel}:{normalised_number(address)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def conversation_id_for(secret: str, channel: str, address: str) -> str:
    return f"{ID_PREFIX[channel]}-{sender_key(secret, channel, address)}"


def keyword_of(text: str) -> str | None:
    """STOP / START / HELP when the whole message is one of their words ("stop please" is a message)."""
    word = re.sub(r"[\s.!]+$", "", text.strip()).upper()
    if word in OPT_OUT:
        return "STOP"
    if word in OPT_IN:
        return "START"
    if word in HELP:
        return "HELP"
    return None


class KeyedLocks:
    """One asyncio lock per conversation, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class SenderLimits:
    """Messages per sender, and how many "slow down" replies a sender gets (the `limits` library)."""

    def __init__(self, storage_url: str, per_sender: str, notices: str) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_url))
        self._per_sender = parse(per_sender)
        self._notices = parse(notices)

    def allowed(self, key: str) -> bool:
        return self._hit(self._per_sender, "texting-sender", key)

    def may_say_slow_down(self, key: str) -> bool:
        return self._hit(self._notices, "texting-notice", key)

    def _hit(self, item, namespace: str, key: str) -> bool:  # noqa: ANN001 - a RateLimitItem
        try:
            return self._limiter.hit(item, namespace, key)
        except Exception as error:  # noqa: BLE001 - a limiter outage must not stop patients
            log.error("texting rate limiter unavailable: %s", type(error).__name__)
            return True


@dataclass(frozen=True)
class _Claimed:
    inbound_id: int
    conversation_id: str
    attempts: int
    envelope: Envelope
    opted_out: bool = False
    pending_buttons: tuple[dict, ...] | list[dict] = ()


class TextingChannels:
    """The texting side of the app: accepts verified messages, handles them in the background, records
    delivery statuses. One per app process; several processes share the work through the database."""

    def __init__(self, services: Services, pipeline: ChatPipeline, clock=utcnow) -> None:  # noqa: ANN001
        self.services = services
        self.pipeline = pipeline
        self.settings = services.settings
        self.clock = clock
        self.secret = services.settings.session_secret_key()
        self.limits = SenderLimits(
            self.settings.rate_limit_storage,
            self.settings.texting_rate_limit_per_sender,
            self.settings.texting_slow_down_notices,
        )
        self.lease = timedelta(seconds=self.settings.texting_lease_seconds)
        self._locks = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._last_prune = datetime.min.replace(tzinfo=self.clock().tzinfo)

    # --- 1. accept -------------------------------------------------------------------------------------
    def accept(self, envelope: Envelope) -> Accepted | None:
        """Store a verified message durably; None for a duplicate (stored already)."""
        conversation_id = conversation_id_for(self.secret, envelope.channel, envelope.sender)
        for _attempt in range(3):
            try:
                inbound_id = self._store(envelope, conversation_id)
            except IntegrityError:
                continue  # a concurrent delivery of it, or the same patient's first two messages at once
            return Accepted(inbound_id, conversation_id) if inbound_id is not None else None
        return None

    def _store(self, envelope: Envelope, conversation_id: str) -> int | None:
        db = self.services.db
        with db.session() as session:
            seen = session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.provider == envelope.provider,
                    InboundMessage.provider_id == envelope.provider_id,
                )
            )
            if seen is not None:
                return None
            now = self.clock()
            if session.get(Conversation, conversation_id) is None:
                conversation = store.new_conversation(envelope.channel)
                conversation.id = conversation_id
                session.add(conversation)
                session.flush()
            contact = session.get(ChannelContact, conversation_id)
            if contact is None:
                contact = ChannelContact(
                    conversation_id=conversation_id, channel=envelope.channel, created_at=now
                )
                session.add(contact)
            contact.provider = envelope.provider
            contact.address = envelope.sender
            contact.clinic_address = envelope.clinic_address
            contact.last_inbound_at = now
            inbound = InboundMessage(
                provider=envelope.provider,
                provider_id=envelope.provider_id,
                conversation_id=conversation_id,
                envelope=asdict(envelope),
                status="received",
                attempts=0,
                received_at=now,
            )
            session.add(inbound)
            session.flush()
            return inbound.id

    # --- 2. handle in the background ----------------------------------------------------------------------
    def schedule(self, accepted: Accepted) -> None:
        """Handle the message in the background of the running event loop."""
        task = asyncio.create_task(self.handle(accepted), name=f"texting-{accepted.inbound_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, accepted: Accepted) -> None:
        # The conversation's lock first, before any await: waiters get it in the order they arrived, so one
        # patient's messages are handled (and answered) in order.
        async with self._locks.hold(accepted.conversation_id):
            claimed = await asyncio.to_thread(self._claim, accepted.inbound_id)
            if claimed is None:
                return  # handled already, or another worker has it
            try:
                reply = await self._respond(claimed)
                await asyncio.to_thread(self._finish, claimed, reply)
            except asyncio.CancelledError:
                await asyncio.shield(asyncio.to_thread(self._release, claimed, final=False))
                raise
            except Exception as error:  # noqa: BLE001 - never silence: retried, then the patient gets the phone
                log.error("texting inbound id=%s failed: %s", accepted.inbound_id, type(error).__name__)
                await asyncio.to_thread(self._release, claimed, final=claimed.attempts >= HANDLE_ATTEMPTS)
        self.services.outbox.wake()

    def _claim(self, inbound_id: int) -> _Claimed | None:
        now = self.clock()
        with self.services.db.session() as session:
            won = session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == inbound_id, InboundMessage.status == "received")
                .where(or_(InboundMessage.claimed_until.is_(None), InboundMessage.claimed_until < now))
                .values(claimed_until=now + self.lease, attempts=InboundMessage.attempts + 1)
            )
            if won.rowcount != 1:
                return None
            inbound = session.get_one(InboundMessage, inbound_id, populate_existing=True)
            # Read under the conversation's lock: the patient's previous message may just have been a STOP.
            contact = session.get_one(ChannelContact, inbound.conversation_id)
            return _Claimed(
                inbound.id,
                inbound.conversation_id,
                inbound.attempts,
                Envelope(**(inbound.envelope or {})),
                opted_out=contact.opted_out_at is not None,
                pending_buttons=list(contact.pending_buttons or []),
            )

    async def _respond(self, claimed: _Claimed) -> Reply | None:
        envelope = claimed.envelope
        keyword = keyword_of(envelope.text) if not envelope.media else None
        if keyword is not None:
            return await asyncio.to_thread(self._keyword, claimed, keyword)
        if envelope.media and not envelope.text.strip():
            log.info("texting conversation message with media only (%d)", envelope.media)
            return None if claimed.opted_out else self._fixed(claimed, "media_only")
        key = sender_key(self.secret, envelope.channel, envelope.sender)
        allowed = self.limits.allowed(key)
        incoming = IncomingMessage(
            text=self._chosen(claimed) or envelope.text,
            channel=envelope.channel,
            conversation_id=claimed.conversation_id,
            source=f"{envelope.channel}:{key}",
            answer=allowed,
        )
        try:
            result = await self.pipeline.handle(incoming)
        except BadMessage as error:  # empty, too long: answered politely
            return None if claimed.opted_out else self._fixed(claimed, error.reply, **error.values)
        messages, language = list(result.messages), result.triage.language
        if not allowed:
            messages = self._slowed(messages, key)
        if envelope.media and messages:
            messages.append(self._message("texting_media_ignored", language))
        if claimed.opted_out:
            log.info("texting reply withheld: the patient opted out (triage=%s)", result.triage.level)
            return None
        if not messages:
            return None
        level = result.triage.level
        priority = PRIORITY[level] if level in ("emergency", "urgent") else PRIORITY["reply"]
        return self._rendered(claimed, messages, language, priority)

    def _chosen(self, claimed: _Claimed) -> str | None:
        """A reply button pressed, or a number typed after numbered choices: that choice's payload."""
        envelope = claimed.envelope
        match = _CHOICE.match(envelope.choice or envelope.text or "")
        if match is not None and 0 < int(match[1]) <= len(claimed.pending_buttons):
            return str(claimed.pending_buttons[int(match[1]) - 1]["payload"])
        return envelope.choice_title  # a button of an older message: its title says what was meant

    def _slowed(self, messages: list[ChatMessage], key: str) -> list[ChatMessage]:
        """Over the limit: the safety reply stays; the "slow down" goes out once per window."""
        slow_down = self.services.replies.text("slow_down")
        safety = [m for m in messages if m.text != slow_down]
        if any(m.kind == "escalation" for m in safety):
            return safety
        return [m for m in messages if m.text == slow_down][:1] if self.limits.may_say_slow_down(key) else []

    def _keyword(self, claimed: _Claimed, keyword: str) -> Reply | None:
        """STOP / START / HELP: the opt-out is stored; the confirmation comes from us unless the provider
        sent its own (Twilio does for SMS unless its replies are turned off)."""
        now = self.clock()
        db = self.services.db
        with db.session() as session:
            contact = session.get_one(ChannelContact, claimed.conversation_id)
            if keyword == "STOP":
                contact.opted_out_at = contact.opted_out_at or now
            elif keyword == "START":
                contact.opted_out_at = None
        store.add_message(db, claimed.conversation_id, "patient", claimed.envelope.text.strip())
        log.info("texting keyword %s conversation stored", keyword)
        envelope = claimed.envelope
        provider_answers = envelope.provider == "twilio" and envelope.channel == "sms"
        if envelope.keyword_handled or (provider_answers and not self.settings.twilio_keyword_replies):
            return None
        name = {"STOP": "texting_stopped", "START": "texting_started", "HELP": "texting_help"}[keyword]
        # "keyword": sent even to a patient who opted out (the confirmation of STOP, the answer to HELP).
        return self._fixed(claimed, name, purpose="keyword")

    def _message(self, name: str, language: str = "en", **values: object) -> ChatMessage:
        return ChatMessage(text=self.services.replies.text(name, language, **values), kind="fallback")

    def _fixed(self, claimed: _Claimed, name: str, purpose: str = "reply", **values: object) -> Reply:
        return self._rendered(claimed, [self._message(name, **values)], "en", PRIORITY["reply"], purpose)

    def _rendered(
        self,
        claimed: _Claimed,
        messages: list[ChatMessage],
        language: str,
        priority: int,
        purpose: str = "reply",
    ) -> Reply:
        envelope = claimed.envelope
        style = style_for(envelope.channel, envelope.provider, self.settings.sms_max_segments)
        rendered = render(messages, style, Wording.from_replies(self.services.replies, language))
        if rendered.segments is not None:
            log.info(
                "texting reply sms segments=%d encoding=%s shortened=%s",
                rendered.segments.count,
                rendered.segments.encoding,
                rendered.shortened,
            )
        return Reply(rendered.text, rendered.buttons, rendered.interactive, priority, purpose)

    def _finish(self, claimed: _Claimed, reply: Reply | None, status: str = "done") -> None:
        """Mark the message handled and queue its reply: one transaction, so exactly one reply."""
        with self.services.db.session() as session:
            inbound = session.get_one(InboundMessage, claimed.inbound_id)
            inbound.status, inbound.envelope, inbound.processed_at = status, None, self.clock()
            inbound.claimed_until = None
            contact = session.get_one(ChannelContact, claimed.conversation_id)
            # The numbers of the last reply only: a later "2" means nothing once another message came in.
            buttons = [b.model_dump() for b in reply.buttons] if reply is not None else []
            contact.pending_buttons = buttons or None
            if reply is None:
                return
            body: dict[str, Any] = {"text": reply.text, "purpose": reply.purpose}
            if reply.interactive:
                body["buttons"] = [{"id": str(n), "title": b.title} for n, b in enumerate(reply.buttons, 1)]
            queue_patient_message(
                session,
                self.services.outbox,
                contact,
                kind="reply",
                dedupe_key=f"inbound-{claimed.inbound_id}-{inbound.provider_id}"[:160],
                body=body,
                priority=reply.priority,
            )

    def _release(self, claimed: _Claimed, final: bool) -> None:
        """Let the message be tried again; after the last attempt the patient gets the clinic's phone."""
        if final:
            reply = None if claimed.opted_out else self._fixed(claimed, "unavailable")
            self._finish(claimed, reply, status="failed")
            return
        with self.services.db.session() as session:
            session.get_one(InboundMessage, claimed.inbound_id).claimed_until = None

    # --- delivery statuses -----------------------------------------------------------------------------
    def record_status(
        self, provider: str, reference: str, status: str, error_code: str | None, at: datetime | None
    ) -> None:
        """Keep a provider's delivery status; the outbox row keeps the furthest one reached."""
        status = status.lower()[:24]
        with self.services.db.session() as session:
            exists = session.scalar(
                select(DeliveryEvent.id).where(
                    DeliveryEvent.provider == provider,
                    DeliveryEvent.provider_ref == reference,
                    DeliveryEvent.status == status,
                )
            )
            if exists is None:
                session.add(
                    DeliveryEvent(
                        provider=provider,
                        provider_ref=reference,
                        status=status,
                        error_code=error_code,
                        occurred_at=at,
                        received_at=self.clock(),
                    )
                )
            row = session.scalars(
                select(OutboxMessage).where(OutboxMessage.provider_ref == reference)
            ).first()
            if row is not None and _further(status, row.provider_status):
                row.provider_status = status
                if status in FINAL_FAILURES and error_code:
                    row.last_error = f"{provider} delivery {status} code {error_code}"[:128]
        log.info("delivery status provider=%s status=%s known=%s", provider, status, row is not None)

    # --- background sweep: messages whose handler died, old ids -----------------------------------------
    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="texting-sweeper")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let messages in hand finish (a little while), then stop; unfinished ones resume on next start."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                for accepted in await asyncio.to_thread(self._stranded):
                    self.schedule(accepted)
                await asyncio.to_thread(self._prune)
            except Exception as error:  # noqa: BLE001 - the sweeper must outlive a database hiccup
                log.error("texting sweep failed: %s", type(error).__name__)

    def _stranded(self) -> list[Accepted]:
        """Messages acknowledged but not handled: their worker died, or the app stopped meanwhile."""
        now = self.clock()
        query = (
            select(InboundMessage.id, InboundMessage.conversation_id)
            .where(InboundMessage.status == "received")
            .where(
                or_(
                    InboundMessage.claimed_until < now,
                    InboundMessage.claimed_until.is_(None)
                    & (InboundMessage.received_at < now - UNCLAIMED_GRACE),
                )
            )
            .order_by(InboundMessage.id)
            .limit(20)
        )
        with self.services.db.session() as session:
            return [
                Accepted(inbound_id, conversation_id)
                for inbound_id, conversation_id in session.execute(query)
            ]

    def _prune(self) -> None:
        """Forget handled message ids after the dedupe period (hourly)."""
        now = self.clock()
        if now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        cutoff = now - timedelta(days=self.settings.texting_dedupe_days)
        with self.services.db.session() as session:
            session.execute(
                delete(InboundMessage).where(
                    InboundMessage.status.in_(("done", "failed")), InboundMessage.received_at < cutoff
                )
            )


def _further(status: str, current: str | None) -> bool:
    if current is None or status in FINAL_FAILURES:
        return True
    if current in FINAL_FAILURES:
        return False
    return STATUS_RANK.get(status, -1) > STATUS_RANK.get(current, -1)
