"""The durable outbox: delivers every outbound message from the database, once, by priority, across restarts.

How a message is delivered once:
1. It is a row (`outbox`) written in the same transaction as what it announces (an escalation, a reply),
   with a unique `dedupe_key`: it cannot be lost or queued twice.
2. A worker claims a due row with a compare-and-set UPDATE (pending, due, not claimed or claim expired ->
   claimed by me until now + lease). Only one worker can win; the claim is committed before sending, so two
   workers, two app instances or a restarted app never send the same row at the same time.
3. After sending, the row is marked delivered with the provider's reference. A failure releases the claim
   and schedules a retry with exponential backoff, until `max_attempts`; a refusal (`DeliveryRefused`: an
   opted-out patient, a closed WhatsApp window) is final and kept as `refused` with its reason.
4. If a worker dies between sending and marking, its claim expires and the row is retried. That retry asks
   the provider first where it can (Twilio: list the messages sent to that number, look for the row's key)
   and otherwise sends with the same idempotency key (e-mail Message-ID, webhook Idempotency-Key).

Due rows are taken by priority: emergency alerts first, then urgent alerts, reminders, replies, check-ins,
so a flood of routine traffic never delays an alert. The worker also re-notifies the backup contact when an
escalation stays unacknowledged too long, and drains the escalation spool (escalations written to disk when
the database could not take them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, update

from bot.db import Database
from bot.escalation.models import Escalation
from bot.escalation.notices import compose
from bot.models import Conversation, as_utc, utcnow
from bot.outbox.models import OutboxMessage
from bot.outbox.notice import Notice
from bot.outbox.notifiers import DeliveryError, DeliveryRefused, Notifier, build_notifiers

if TYPE_CHECKING:
    from sqlalchemy.sql.dml import Update

    from bot.escalation.service import EscalationService
    from bot.services import Services

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
REMINDER_MAX_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 300.0
    max_attempts: int = 15

    def delay(self, attempts: int) -> timedelta:
        """Wait after the `attempts`-th failed attempt: base, 2 x base, 4 x base ... up to max."""
        return timedelta(seconds=min(self.max_seconds, self.base_seconds * 2 ** (attempts - 1)))


@dataclass(frozen=True)
class Claimed:
    row_id: int
    kind: str
    attempts: int  # including this one
    notice: Notice


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_pending_seconds: float | None
    failed: int


def backlog(db: Database, now: datetime | None = None) -> Backlog:
    """How much is waiting in the outbox: for the health check and the staff console."""
    now = now or utcnow()
    with db.session() as session:
        pending, oldest = session.execute(
            select(func.count(OutboxMessage.id), func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status == "pending"
            )
        ).one()
        failed = session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "failed"))
    age = (now - as_utc(oldest)).total_seconds() if oldest is not None else None
    return Backlog(int(pending), age, int(failed or 0))


class OutboxWorker:
    """Polls the outbox; `run_once` is one synchronous pass, `start`/`stop` run it as an asyncio task."""

    def __init__(
        self,
        db: Database,
        notifiers: Mapping[str, Notifier],
        escalations: EscalationService,
        *,
        clinic_name: str,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(seconds=60),
        renotify_after: timedelta = timedelta(minutes=15),
        clock: Clock = utcnow,
        batch: int = 50,
    ) -> None:
        self.db = db
        self.notifiers = dict(notifiers)
        self.escalations = escalations
        self.clinic_name = clinic_name
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.renotify_after = renotify_after
        self.clock = clock
        self.batch = batch
        self.worker_id = f"outbox-{uuid.uuid4().hex[:12]}"
        self._stopping = False
        # Set (from any thread) when something was queued: a pass in progress looks again before its next
        # delivery, so an emergency queued during a batch of routine rows goes next, not after the batch.
        self._queued = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_services(cls, services: Services) -> OutboxWorker:
        settings = services.settings
        return cls(
            services.db,
            {**build_notifiers(settings), **services.channel_senders},
            services.escalations,
            clinic_name=services.clinic.name,
            policy=RetryPolicy(
                base_seconds=settings.outbox_retry_base_seconds,
                max_seconds=settings.outbox_retry_max_seconds,
                max_attempts=settings.outbox_max_attempts,
            ),
            lease=timedelta(seconds=settings.outbox_lease_seconds),
            renotify_after=timedelta(seconds=settings.escalation_renotify_seconds),
        )

    # --- one pass -------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Drain the spool, queue due reminders, then deliver what is due; return how many were delivered."""
        self._queued.clear()
        self.escalations.drain_spool()
        self.queue_reminders()
        delivered = 0
        due = self._due_ids()
        while due and not self._stopping:
            if self._queued.is_set():  # something new (perhaps more urgent) was queued: take the order again
                self._queued.clear()
                self.escalations.drain_spool()
                due = self._due_ids()
                continue
            claimed = self._claim(due.pop(0))
            if claimed is not None:
                delivered += self._deliver(claimed)
        return delivered

    def queue_reminders(self) -> int:
        """Queue the backup contact's reminder for each escalation unacknowledged past the delay."""
        if not self.escalations.contacts.reminder:
            return 0
        now = self.clock()
        overdue = (
            select(Escalation.id)
            .where(Escalation.acknowledged_at.is_(None), Escalation.backup_notified_at.is_(None))
            .where(Escalation.created_at <= now - self.renotify_after)
            # A reminder is about today's escalations: a restart after a week must not page anyone for old
            # ones.
            .where(Escalation.created_at > now - REMINDER_MAX_AGE)
        )
        with self.db.session() as session:
            escalation_ids = list(session.scalars(overdue))
        return sum(self._queue_reminder(escalation_id, now) for escalation_id in escalation_ids)

    def _queue_reminder(self, escalation_id: int, now: datetime) -> int:
        with self.db.session() as session:
            # Compare-and-set: of several workers, only the one that flips backup_notified_at queues rows.
            flipped = session.execute(
                update(Escalation)
                .where(Escalation.id == escalation_id)
                .where(Escalation.acknowledged_at.is_(None), Escalation.backup_notified_at.is_(None))
                .values(backup_notified_at=now)
            )
            if flipped.rowcount != 1:
                return 0
            self.escalations.queue_alerts(session, escalation_id, "reminder", "reminder", now)
        log.info("escalation id=%s unacknowledged: backup contact reminder queued", escalation_id)
        return 1

    def _due_ids(self) -> list[int]:
        now = self.clock()
        query = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .where(or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
            .order_by(OutboxMessage.priority, OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(self.batch)
        )
        with self.db.session() as session:
            return list(session.scalars(query))

    def _claim(self, row_id: int) -> Claimed | None:
        """Take the row for this worker until the lease ends, or None if another worker has it."""
        with self.db.session() as session:
            now = self.clock()
            won = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.status == "pending")
                .where(OutboxMessage.next_attempt_at <= now)
                .where(or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
                .values(
                    claimed_by=self.worker_id,
                    claimed_until=now + self.lease,
                    attempts=OutboxMessage.attempts + 1,
                )
            )
            if won.rowcount != 1:
                return None
            row = session.get_one(OutboxMessage, row_id, populate_existing=True)
            notice = self._notice(session, row)
            if notice is None:
                row.status, row.claimed_by, row.claimed_until = "cancelled", None, None
                return None
            return Claimed(row.id, row.kind, row.attempts, notice)

    def _notice(self, session, row: OutboxMessage) -> Notice | None:  # noqa: ANN001 - a Session
        """What to send for a row; None when it no longer needs sending."""
        if row.escalation_id is not None:
            escalation = session.get_one(Escalation, row.escalation_id)
            if row.kind == "reminder" and escalation.acknowledged_at is not None:
                return None  # acknowledged since the reminder was queued: nobody needs it now
            conversation = session.get(Conversation, escalation.conversation_id)
            reference = (conversation.reference if conversation else None) or f"#{escalation.id}"
            return compose(row, escalation, reference, self.clinic_name)
        body = row.body or {}
        created_ms = int(as_utc(row.created_at).timestamp() * 1000)
        return Notice(
            key=f"out{row.id}-{created_ms}",
            channel=row.channel,
            recipient=row.recipient,
            subject=str(body.get("subject", "")),
            text=str(body.get("text", "")),
            created_at=as_utc(row.created_at),
            payload=body,
        )

    def _deliver(self, claimed: Claimed) -> int:
        notifier = self.notifiers.get(claimed.notice.channel)
        try:
            if notifier is None:
                raise DeliveryError("channel not configured")
            # Attempt > 1: an earlier one may have got through before its worker could mark it.
            reference = notifier.already_delivered(claimed.notice) if claimed.attempts > 1 else None
            reference = reference or notifier.send(claimed.notice)
        except DeliveryRefused as error:
            self._refused(claimed, str(error))
            return 0
        except DeliveryError as error:
            self._failed(claimed, str(error))
            return 0
        self._delivered(claimed, reference)
        return 1

    def _delivered(self, claimed: Claimed, reference: str) -> None:
        with self.db.session() as session:
            marked = session.execute(
                self._mine(claimed).values(
                    status="delivered",
                    delivered_at=self.clock(),
                    provider_ref=reference[:255],
                    claimed_by=None,
                    claimed_until=None,
                    last_error=None,
                )
            )
        if marked.rowcount != 1:
            # The lease ran out while sending and another worker took the row: raise the lease.
            log.warning("outbox id=%s delivered after its lease expired", claimed.row_id)
        log.info(
            "outbox id=%s kind=%s channel=%s delivered attempt=%s",
            claimed.row_id,
            claimed.kind,
            claimed.notice.channel,
            claimed.attempts,
        )

    def _failed(self, claimed: Claimed, reason: str) -> None:
        gave_up = claimed.attempts >= self.policy.max_attempts
        values: dict[str, object] = {"claimed_by": None, "claimed_until": None, "last_error": reason[:128]}
        if gave_up:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = self.clock() + self.policy.delay(claimed.attempts)
        with self.db.session() as session:
            session.execute(self._mine(claimed).values(**values))
        level = logging.ERROR if gave_up else logging.WARNING
        log.log(
            level,
            "outbox id=%s kind=%s channel=%s attempt=%s failed (%s)%s",
            claimed.row_id,
            claimed.kind,
            claimed.notice.channel,
            claimed.attempts,
            reason,
            ": giving up, staff must check the console" if gave_up else "",
        )

    def _refused(self, claimed: Claimed, reason: str) -> None:
        """Not sendable, now or later: kept as `refused` with the reason, for staff to see."""
        values = {"status": "refused", "claimed_by": None, "claimed_until": None, "last_error": reason[:128]}
        with self.db.session() as session:
            session.execute(self._mine(claimed).values(**values))
        log.warning(
            "outbox id=%s kind=%s channel=%s refused (%s)",
            claimed.row_id,
            claimed.kind,
            claimed.notice.channel,
            reason,
        )

    def _mine(self, claimed: Claimed) -> Update:
        """An UPDATE of the claimed row that does nothing if this worker no longer holds the claim."""
        return update(OutboxMessage).where(
            OutboxMessage.id == claimed.row_id, OutboxMessage.claimed_by == self.worker_id
        )

    # --- background task ------------------------------------------------------------------------------

    def start(self, poll_seconds: float) -> None:
        """Run passes every `poll_seconds`, and at once when woken (something was queued)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(poll_seconds), name=self.worker_id)
        log.info("outbox worker %s started: channels %s", self.worker_id, sorted(self.notifiers))
        if not self.escalations.contacts.alert:
            log.warning("no staff alert channel configured: escalations are recorded, nobody is told")

    def wake(self) -> None:
        """Thread-safe: make the running worker look at the outbox now."""
        self._queued.set()
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        """Finish the message in hand (its claim would otherwise wait for the lease), then stop."""
        self._stopping = True
        self._loop = None  # late wake-ups become no-ops
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self, poll_seconds: float) -> None:
        assert self._wake is not None
        while not self._stopping:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception as error:  # noqa: BLE001 - the worker must outlive a database hiccup
                # The class name only: database errors can quote the statement's parameters.
                log.error("outbox pass failed: %s", type(error).__name__)
            with contextlib.suppress(TimeoutError):  # nothing woke us within the poll interval: poll anyway
                await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
            self._wake.clear()
