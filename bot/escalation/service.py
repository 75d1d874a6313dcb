"""Record an escalation and queue its staff notifications: one transaction, once per duplicate.

A duplicate is the same text (ignoring case and spacing) in the same conversation within the dedupe window.
The database decides, not the process: `escalations.dedupe_key` is unique, so of two concurrent requests only
one can insert; the other gets an integrity error, looks again and finds the winner. Once the window has
passed the old row's key is retired (":<id>" appended) so a repeat is recorded as news.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import Database
from bot.escalation.models import ESCALATING_LEVELS, Escalation, StaffNotification, as_utc
from bot.escalation.notifiers import configured_channels
from bot.models import utcnow
from bot.settings import Settings
from knowledge.clinic import ClinicProfile

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Contact = tuple[str, str]  # (channel, recipient)


@dataclass(frozen=True)
class StaffContacts:
    """Who is told about an escalation: `alert` at once, `reminder` when it is not acknowledged in time."""

    alert: tuple[Contact, ...]
    reminder: tuple[Contact, ...]

    @classmethod
    def from_settings(cls, settings: Settings, clinic: ClinicProfile) -> StaffContacts:
        channels = configured_channels(settings)
        on_call = settings.on_call_phone or clinic.on_call_phone
        alert = [("sms", on_call), ("email", settings.staff_email), ("webhook", settings.webhook_url)]
        reminder = [("sms", settings.backup_phone), ("email", settings.backup_email)]
        return cls(
            alert=tuple((c, to) for c, to in alert if c in channels and to),
            reminder=tuple((c, to) for c, to in reminder if c in channels and to),
        )


@dataclass(frozen=True)
class Recorded:
    escalation_id: int
    created: bool  # False: a duplicate of a recent escalation, nothing new was queued


def dedupe_key(conversation_id: str, text: str) -> str:
    normalised = " ".join(text.casefold().split())
    return hashlib.sha256(f"{conversation_id}\n{normalised}".encode()).hexdigest()


class EscalationService:
    """Writes and reads of escalations for the pipeline and the staff API."""

    def __init__(
        self, db: Database, contacts: StaffContacts, dedupe_window: timedelta, clock: Clock = utcnow
    ) -> None:
        self.db = db
        self.contacts = contacts
        self.dedupe_window = dedupe_window
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, clinic: ClinicProfile) -> EscalationService:
        window = timedelta(seconds=settings.escalation_dedupe_seconds)
        return cls(db, StaffContacts.from_settings(settings, clinic), window)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` (from any thread) after each new escalation is committed: the outbox wakes up.

        Returns the function that unsubscribes it.
        """
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                self._listeners.remove(listener)

        return unsubscribe

    def record(
        self, conversation_id: str, severity: str, concepts: Sequence[str], channel: str, text: str
    ) -> Recorded:
        """Store the escalation and its notifications, or return the recent one this message duplicates."""
        if severity not in ESCALATING_LEVELS:
            raise ValueError(f"only {ESCALATING_LEVELS} are escalated, not {severity!r}")
        key = dedupe_key(conversation_id, text)
        for _ in range(3):  # each lost race means a winner now exists: the next round returns it
            try:
                recorded = self._record_once(key, conversation_id, severity, list(concepts), channel, text)
            except IntegrityError:
                continue
            log.info(
                "escalation id=%s conversation=%s severity=%s concepts=%d new=%s",
                recorded.escalation_id,
                conversation_id,
                severity,
                len(concepts),
                recorded.created,
            )
            if recorded.created:
                self._notify_listeners()
            return recorded
        raise RuntimeError("escalation could not be recorded after repeated conflicts")

    def _record_once(
        self, key: str, conversation_id: str, severity: str, concepts: list[str], channel: str, text: str
    ) -> Recorded:
        with self.db.session() as session:
            now = self.clock()
            existing = session.scalars(select(Escalation).where(Escalation.dedupe_key == key)).one_or_none()
            if existing is not None and as_utc(existing.created_at) > now - self.dedupe_window:
                return Recorded(existing.id, created=False)
            if existing is not None:
                existing.dedupe_key = f"{key}:{existing.id}"
                session.flush()
            escalation = Escalation(
                conversation_id=conversation_id,
                severity=severity,
                concepts=concepts,
                channel=channel,
                patient_text=text,
                created_at=now,
                dedupe_key=key,
            )
            session.add(escalation)
            session.flush()
            queue_notifications(session, escalation.id, "alert", self.contacts.alert, now)
            return Recorded(escalation.id, created=True)

    def _notify_listeners(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def acknowledge(self, escalation_id: int, staff_name: str | None) -> Escalation | None:
        """Mark the escalation handled (the first acknowledgement counts); None if there is no such one."""
        with self.db.session() as session:
            escalation = session.get(Escalation, escalation_id)
            if escalation is not None and escalation.acknowledged_at is None:
                escalation.acknowledged_at = self.clock()
                escalation.acknowledged_by = staff_name
                log.info("escalation id=%s acknowledged", escalation_id)
            return escalation

    def recent(self, status: str | None = None, limit: int = 100) -> list[Escalation]:
        """Newest first; `status` is `open` (not acknowledged) or `acknowledged`, None for all."""
        query = select(Escalation).order_by(Escalation.created_at.desc(), Escalation.id.desc()).limit(limit)
        if status == "open":
            query = query.where(Escalation.acknowledged_at.is_(None))
        elif status == "acknowledged":
            query = query.where(Escalation.acknowledged_at.is_not(None))
        with self.db.session() as session:
            return list(session.scalars(query))

    def notifications(self, escalation_ids: Sequence[int]) -> dict[int, list[StaffNotification]]:
        """The outbox rows of these escalations, oldest first, by escalation id."""
        query = (
            select(StaffNotification)
            .where(StaffNotification.escalation_id.in_(escalation_ids))
            .order_by(StaffNotification.id)
        )
        grouped: dict[int, list[StaffNotification]] = {escalation_id: [] for escalation_id in escalation_ids}
        with self.db.session() as session:
            for row in session.scalars(query):
                grouped[row.escalation_id].append(row)
        return grouped


def queue_notifications(
    session: Session, escalation_id: int, purpose: str, contacts: Sequence[Contact], now: datetime
) -> None:
    """Add outbox rows in the caller's transaction: they exist if and only if what they announce does."""
    for channel, recipient in contacts:
        session.add(
            StaffNotification(
                escalation_id=escalation_id,
                purpose=purpose,
                channel=channel,
                recipient=recipient,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
