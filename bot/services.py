"""The long-lived objects of the clinic app, built once at start-up and shared by the API and the actions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.db import Database, migrate
from bot.escalation.service import EscalationService
from bot.rasa_client import RasaClient
from bot.settings import Settings
from knowledge.answers import Answerer
from knowledge.clinic import ClinicProfile, load_clinic_profile
from safety.rules import RedFlagDetector

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    clinic: ClinicProfile
    detector: RedFlagDetector
    answerer: Answerer
    rasa: RasaClient
    # Built from the others unless given (tests): escalation records and their staff notifications.
    escalations: EscalationService = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.escalations is None:
            self.escalations = EscalationService.from_settings(self.settings, self.db, self.clinic)

    def today(self) -> date:
        """Today in the clinic's time zone: treatment days are counted the way the clinic counts them."""
        return datetime.now(ZoneInfo(self.clinic.timezone)).date()


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
    """Open the database, load the clinic profile, the red-flag protocol and the knowledge index."""
    from bot.knowledge_base import load_answerer  # heavy (torch): imported only when the app really starts

    migrate(settings.database_url)
    clinic = load_clinic_profile(settings.clinic_profile)
    services = Services(
        settings=settings,
        db=Database(settings.database_url),
        clinic=clinic,
        detector=RedFlagDetector(clinic=clinic),
        answerer=load_answerer(settings, clinic),
        rasa=RasaClient(settings.rasa_url, settings.rasa_timeout_seconds),
    )
    log.info("services ready: index %s", services.answerer.retriever.store.manifest.version)
    return services
