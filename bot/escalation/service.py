"""Record an escalation and queue its staff alerts: one transaction, once per conversation and red flag.

- One escalation per conversation and set of signs at a level: the same red flag said again in other words
  is a duplicate (staff already know); a new sign or a worse level is a new escalation. The database
  decides, not the process: the dedupe key is unique, so of two concurrent writers only one inserts.
- A source (one client address or phone) that raises many escalations in a short time is capped: further
  escalations are still recorded for staff, but folded into the source's last alerted one (`aggregated`)
  instead of texting, e-mailing and paging staff again, so a flood never buries a real alert.
- "The clinic team has been alerted" must be true. The write is retried; if the database still refuses it,
  the escalation goes to a durable local spool (one fsync'ed file each) that the outbox worker drains into
  the database; only if that fails too is the patient told to call the clinic themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot.db import Database
from bot.escalation.models import ESCALATING_LEVELS, Escalation
from bot.models import as_utc, utcnow
from bot.outbox.models import PRIORITY, OutboxMessage
from bot.outbox.notifiers import configured_channels
from bot.outbox.queue import Outbox
from bot.settings import Settings
from knowledge.clinic import ClinicProfile

log = logging.getLogger(__name__)

Contact = tuple[str, str]  # (channel, recipient)
RANK = {"urgent": 1, "emergency": 2}
WRITE_ATTEMPTS = 3


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
    """What happened to an escalation: `alerted` is whether the patient may be told staff know."""

    escalation_id: int | None
    status: str  # new | duplicate | aggregated | spooled | failed
    alerted: bool

    @property
    def created(self) -> bool:
        return self.status == "new"


def dedupe_key(conversation_id: str, severity: str, signs: Sequence[str]) -> str:
    return hashlib.sha256(f"{conversation_id}\n{severity}\n{','.join(sorted(signs))}".encode()).hexdigest()


def source_key(source: str | None) -> str | None:
    """A client address or phone number, hashed: rate accounting needs identity, not the number itself."""
    return hashlib.sha256(source.encode()).hexdigest()[:32] if source else None


class EscalationService:
    """Writes and reads of escalations for the pipeline and the staff console."""

    def __init__(
        self,
        db: Database,
        contacts: StaffContacts,
        outbox: Outbox,
        *,
        window: timedelta = timedelta(hours=24),
        source_cap: int = 5,
        source_window: timedelta = timedelta(hours=1),
        spool_dir: Path | None = None,
        clock=utcnow,  # noqa: ANN001 - a () -> datetime
    ) -> None:
        self.db = db
        self.contacts = contacts
        self.outbox = outbox
        self.window = window
        self.source_cap = source_cap
        self.source_window = source_window
        self.spool_dir = spool_dir
        self.clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, clinic: ClinicProfile, outbox: Outbox
    ) -> EscalationService:
        return cls(
            db,
            StaffContacts.from_settings(settings, clinic),
            outbox,
            window=timedelta(seconds=settings.escalation_dedupe_seconds),
            source_cap=settings.escalations_per_source,
            source_window=timedelta(seconds=settings.escalation_source_window_seconds),
            spool_dir=settings.var_dir / "spool" / "escalations",
        )

    # --- recording ------------------------------------------------------------------------------------
    def record(
        self,
        conversation_id: str,
        severity: str,
        signs: Sequence[str],
        channel: str,
        text: str,
        source: str | None = None,
        write_attempts: int = WRITE_ATTEMPTS,
    ) -> Recorded:
        """Store the escalation and queue its alerts, durably, or say that it could not be done.

        `write_attempts=0` goes straight to the spool (the caller has just seen the database fail)."""
        if severity not in ESCALATING_LEVELS:
            raise ValueError(f"only {ESCALATING_LEVELS} are escalated, not {severity!r}")
        source_hash = source_key(source)
        for attempt in range(1, write_attempts + 1):
            try:
                recorded = self._record(conversation_id, severity, list(signs), channel, text, source_hash)
            except IntegrityError:
                continue  # a concurrent writer won: the next round finds its row
            except OperationalError as error:  # locked, full, gone: wait a moment and try again
                log.warning("escalation write attempt %d failed: %s", attempt, type(error).__name__)
                time.sleep(0.05 * attempt)
                continue
            log.info(
                "escalation id=%s severity=%s signs=%d status=%s",
                recorded.escalation_id,
                severity,
                len(signs),
                recorded.status,
            )
            if recorded.status == "new":
                self.outbox.wake()
            return recorded
        return self._spool(conversation_id, severity, list(signs), channel, text, source_hash)

    def _record(
        self,
        conversation_id: str,
        severity: str,
        signs: list[str],
        channel: str,
        text: str,
        source: str | None,
    ) -> Recorded:
        with self.db.session() as session:
            now = self.clock()
            covering = self._covering(session, conversation_id, severity, signs, now)
            if covering is not None:
                return Recorded(covering.id, "duplicate", alerted=bool(self.contacts.alert))
            key = dedupe_key(conversation_id, severity, signs)
            existing = session.scalars(select(Escalation).where(Escalation.dedupe_key == key)).one_or_none()
            if existing is not None:
                existing.dedupe_key = f"{key}:{existing.id}"  # outside the window: retire the old key
                session.flush()
            escalation = _add_escalation(
                session, conversation_id, severity, signs, channel, text, now, key, source
            )
            capped_into = self._capped(session, source, escalation.id, now)
            if capped_into is not None:
                capped_into.aggregated += 1
                return Recorded(escalation.id, "aggregated", alerted=True)
            queued = self.queue_alerts(session, escalation.id, "alert", severity, now)
            return Recorded(escalation.id, "new", alerted=queued > 0)

    def _covering(
        self, session: Session, conversation_id: str, severity: str, signs: list[str], now: datetime
    ) -> Escalation | None:
        """The latest escalation of this window that already told staff about all these signs, at this level
        or worse (together with the ones before it), or None."""
        earlier = session.scalars(
            select(Escalation)
            .where(Escalation.conversation_id == conversation_id, Escalation.created_at > now - self.window)
            .order_by(Escalation.id)
        ).all()
        relevant = [row for row in earlier if RANK[row.severity] >= RANK[severity]]
        covered = {sign for row in relevant for sign in (row.concepts or [])}
        return relevant[-1] if signs and set(signs) <= covered else None

    def _capped(self, session: Session, source: str | None, new_id: int, now: datetime) -> Escalation | None:
        """The escalation to fold this one into when its source is over the cap, else None."""
        if source is None:
            return None
        recent = select(Escalation).where(
            Escalation.source == source,
            Escalation.created_at > now - self.source_window,
            Escalation.id != new_id,
        )
        alerted = session.scalars(
            recent.where(
                Escalation.id.in_(select(OutboxMessage.escalation_id).where(OutboxMessage.kind == "alert"))
            ).order_by(Escalation.id.desc())
        ).all()
        if len(alerted) < self.source_cap:
            return None
        return alerted[0]

    def queue_alerts(
        self, session: Session, escalation_id: int, kind: str, priority: str, now: datetime
    ) -> int:
        """Queue the alert (or reminder) rows of an escalation in the caller's transaction."""
        contacts = self.contacts.alert if kind == "alert" else self.contacts.reminder
        for channel, recipient in contacts:
            self.outbox.add(
                session,
                kind=kind,
                channel=channel,
                recipient=recipient,
                priority=PRIORITY[priority],
                dedupe_key=f"esc{escalation_id}-{kind}-{channel}-{recipient}",
                escalation_id=escalation_id,
                now=now,
            )
        return len(contacts)

    # --- the spool: escalations the database could not take ----------------------------------------------
    def _spool(
        self,
        conversation_id: str,
        severity: str,
        signs: list[str],
        channel: str,
        text: str,
        source: str | None,
    ) -> Recorded:
        if self.spool_dir is None:
            log.error("escalation could not be recorded and there is no spool")
            return Recorded(None, "failed", alerted=False)
        entry = {
            "conversation_id": conversation_id,
            "severity": severity,
            "signs": signs,
            "channel": channel,
            "text": text,
            "source": source,
            "at": self.clock().isoformat(),
        }
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            path = self.spool_dir / f"{uuid.uuid4().hex}.json"
            with open(path.with_suffix(".tmp"), "w", encoding="utf-8") as handle:
                json.dump(entry, handle)
                handle.flush()
                os.fsync(handle.fileno())
            path.with_suffix(".tmp").replace(path)
        except OSError as error:
            log.error("escalation could not be recorded nor spooled: %s", type(error).__name__)
            return Recorded(None, "failed", alerted=False)
        log.warning("escalation spooled to disk: the database refused it")
        self.outbox.wake()
        return Recorded(None, "spooled", alerted=bool(self.contacts.alert))

    def drain_spool(self) -> int:
        """Move spooled escalations into the database (the outbox worker calls this every pass).

        A database that still refuses stops the drain: the entries wait on disk for the next pass. An entry
        that cannot be read (a damaged file) is set aside as `.unreadable`, with an error in the log, so it
        never holds back the escalations spooled after it."""
        if self.spool_dir is None or not self.spool_dir.is_dir():
            return 0
        drained = 0
        for path in sorted(self.spool_dir.glob("*.json")):
            try:
                entry = _spooled_entry(path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.error("spooled escalation %s unreadable, set aside: %s", path.stem, type(error).__name__)
                path.replace(path.with_suffix(".unreadable"))
                continue
            try:
                self._drain_one(entry, f"spool-{path.stem}")
            except OperationalError as error:
                log.warning("spooled escalation not drained yet: %s", type(error).__name__)
                break
            path.unlink(missing_ok=True)
            drained += 1
        if drained:
            log.info("drained %d spooled escalations", drained)
        return drained

    def _drain_one(self, entry: dict, dedupe_key: str) -> None:
        conversation, severity, signs = entry["conversation_id"], entry["severity"], entry["signs"]
        with self.db.session() as session:
            now = self.clock()
            self._ensure_conversation(session, conversation, entry["channel"])
            if self._covering(session, conversation, severity, signs, now) is not None:
                return  # staff were told of these signs meanwhile
            channel, text, at, source = entry["channel"], entry["text"], entry["at"], entry["source"]
            escalation = _add_escalation(
                session, conversation, severity, signs, channel, text, at, dedupe_key, source
            )
            self.queue_alerts(session, escalation.id, "alert", severity, now)

    @staticmethod
    def _ensure_conversation(session: Session, conversation_id: str, channel: str) -> None:
        """A spooled escalation may come from a conversation the database never got to create."""
        from bot.conversation.store import new_conversation
        from bot.models import Conversation

        if session.get(Conversation, conversation_id) is None:
            conversation = new_conversation(channel)
            conversation.id = conversation_id
            session.add(conversation)
            session.flush()

    # --- staff side ---------------------------------------------------------------------------------------
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
        """Most severe first, then newest; `status` is `open` (not acknowledged) or `acknowledged`."""
        query = select(Escalation).order_by(Escalation.created_at.desc(), Escalation.id.desc()).limit(limit)
        if status == "open":
            query = query.where(Escalation.acknowledged_at.is_(None))
        elif status == "acknowledged":
            query = query.where(Escalation.acknowledged_at.is_not(None))
        with self.db.session() as session:
            rows = list(session.scalars(query))
        return sorted(rows, key=lambda row: (-RANK[row.severity], -as_utc(row.created_at).timestamp()))

    def open_count(self) -> int:
        with self.db.session() as session:
            return int(
                session.scalar(select(func.count(Escalation.id)).where(Escalation.acknowledged_at.is_(None)))
            )

    def notifications(self, escalation_ids: Sequence[int]) -> dict[int, list[OutboxMessage]]:
        """The outbox rows of these escalations, oldest first, by escalation id."""
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.escalation_id.in_(escalation_ids))
            .order_by(OutboxMessage.id)
        )
        grouped: dict[int, list[OutboxMessage]] = {escalation_id: [] for escalation_id in escalation_ids}
        with self.db.session() as session:
            for row in session.scalars(query):
                grouped[row.escalation_id].append(row)  # type: ignore[index]
        return grouped


def _add_escalation(  # noqa: PLR0913 - the columns of one escalation
    session: Session,
    conversation_id: str,
    severity: str,
    signs: list[str],
    channel: str,
    text: str,
    created_at: datetime,
    key: str,
    source: str | None,
) -> Escalation:
    """A new escalation row in the caller's transaction, with its id."""
    escalation = Escalation(
        conversation_id=conversation_id,
        severity=severity,
        concepts=signs,
        channel=channel,
        patient_text=text,
        created_at=created_at,
        dedupe_key=key,
        source=source,
        aggregated=0,
    )
    session.add(escalation)
    session.flush()
    return escalation


def _spooled_entry(path: Path) -> dict:
    """A spool file's escalation, checked: every field there and of its type, the time parsed."""
    entry = json.loads(path.read_text(encoding="utf-8"))
    if entry["severity"] not in ESCALATING_LEVELS:
        raise ValueError("not an escalating level")
    if not all(isinstance(entry[key], str) for key in ("conversation_id", "channel", "text", "at")):
        raise TypeError("a field is not text")
    if not (isinstance(entry["signs"], list) and all(isinstance(sign, str) for sign in entry["signs"])):
        raise TypeError("signs are not a list of names")
    if entry.get("source") is not None and not isinstance(entry["source"], str):
        raise TypeError("source is not text")
    return {**entry, "at": datetime.fromisoformat(entry["at"]), "source": entry.get("source")}
