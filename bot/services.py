"""The long-lived objects of the clinic app, built once at start-up and shared by the API and the actions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.conversation.sessions import Sessions
from bot.db import Database, migrate
from bot.escalation.service import EscalationService
from bot.limits import RateLimits
from bot.outbox.queue import Outbox
from bot.rasa_client import RasaClient
from bot.settings import Settings
from knowledge.answers import Answerer
from knowledge.clinic import ClinicProfile, load_clinic_profile
from knowledge.replies import Replies, load_replies
from safety.engine import TriageEngine

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    clinic: ClinicProfile
    triage: TriageEngine
    answerer: Answerer
    rasa: RasaClient
    replies: Replies = None  # type: ignore[assignment]
    outbox: Outbox = field(default_factory=Outbox)
    # Built from the others unless given (tests): escalation records, sessions, rate limits.
    escalations: EscalationService = None  # type: ignore[assignment]
    sessions: Sessions = None  # type: ignore[assignment]
    limits: RateLimits = None  # type: ignore[assignment]
    # Outbox senders for patient channels (SMS, WhatsApp), by channel name: added by the channel adapters.
    channel_senders: dict[str, Any] = field(default_factory=dict)
    # Staff (issue 12): the live knowledge version (knowledge.live.LiveIndex); each publish swaps it and
    # `answerer` with it. None when services are built without a knowledge index (tests).
    knowledge: Any = None

    def __post_init__(self) -> None:
        if self.replies is None:
            self.replies = load_replies(self.clinic)
        if self.escalations is None:
            self.escalations = EscalationService.from_settings(
                self.settings, self.db, self.clinic, self.outbox
            )
        if self.sessions is None:
            self.sessions = Sessions(
                self.db, self.settings.session_secret_key(), self.settings.session_max_age_seconds
            )
        if self.limits is None:
            self.limits = RateLimits.from_settings(self.settings)

    def today(self) -> date:
        """Today in the clinic's time zone: treatment days are counted the way the clinic counts them."""
        return self.clinic.today()


_current: Services | None = None


def install(services: Services) -> None:
    """Make `services` the ones the Rasa actions use (the actions run in this process)."""
    global _current
    _current = services


def current() -> Services:
    if _current is None:
        raise RuntimeError("clinic app services are not started")
    return _current


def build_services(settings: Settings) -> Services:
    """Open the database, load the clinic profile, the triage engine and the knowledge index."""
    from bot.knowledge_base import load_knowledge  # heavy (torch): imported only when the app really starts

    migrate(settings.database_url)
    clinic = load_clinic_profile(settings.clinic_profile)
    db = Database(settings.database_url, settings.database_busy_timeout_seconds)
    live = load_knowledge(settings, clinic, db)
    embedder = live.embedder
    triage = TriageEngine(clinic)
    try:
        triage.load_learned_layer(embedder, settings.learned_dir)
    except Exception as error:  # noqa: BLE001 - the rules still triage every message
        log.error("learned triage layer unavailable, rules only: %s", type(error).__name__)
    services = Services(
        settings=settings,
        db=db,
        clinic=clinic,
        triage=triage,
        answerer=live.current.answerer,
        rasa=RasaClient(settings.rasa_url, settings.rasa_timeout_seconds),
        knowledge=live,
    )
    # Staff (issue 12): a publish swaps the knowledge version; the actions read `services.answerer` once
    # per question, so a question in flight finishes on the version it started with.
    live.subscribe(lambda version: setattr(services, "answerer", version.answerer))
    log.info("services ready: index %s", services.answerer.retriever.store.manifest.version)
    return services
