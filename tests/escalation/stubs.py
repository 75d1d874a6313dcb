"""Stand-ins for the slow or separately tested parts of the app, so the chat path runs in-process:
a red-flag detector with fixed answers, a Rasa server that can be down, and services built from them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from bot import services as services_module
from bot.db import Database
from bot.main import create_app
from bot.rasa_client import RasaUnavailable
from bot.services import Services
from bot.settings import Settings
from knowledge.clinic import load_clinic_profile

URGENT_TEXT = "there is yellow pus on my chin"
EMERGENCY_TEXT = "my lips are swelling and my throat feels tight"
URGENT_REPLY = "This needs checking today: call the clinic at (555) 010-0142. Our staff have been alerted."
EMERGENCY_REPLY = "Call 911 now: swelling with a tight throat can be a severe allergic reaction."


@dataclass(frozen=True)
class Triage:
    level: str = "none"
    concepts: list[str] = field(default_factory=list)
    reply: str | None = None


class StubDetector:
    """Urgent for pus, emergency for a tight throat, nothing otherwise (the real detector is tested apart)."""

    def assess(self, text: str, day: int | None = None) -> Triage:
        if "throat" in text:
            return Triage("emergency", ["allergic_reaction_airway"], EMERGENCY_REPLY)
        if "pus" in text:
            return Triage("urgent", ["infection"], URGENT_REPLY)
        return Triage()


class StubRasa:
    """Answers every message with one knowledge-base answer, or is down."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[str] = []

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        if self.down:
            raise RasaUnavailable("ConnectError")
        self.received.append(text)
        return [
            {"recipient_id": sender, "custom": {"text": "Here is what the clinic says.", "kind": "answer"}}
        ]

    async def is_alive(self) -> bool:
        return not self.down

    async def close(self) -> None:
        """Nothing to release."""


def stub_services(settings: Settings, db: Database) -> Services:
    return Services(
        settings=settings,
        db=db,
        clinic=load_clinic_profile(),
        detector=StubDetector(),  # type: ignore[arg-type]
        answerer=None,  # type: ignore[arg-type] - answers come from the stub Rasa
        rasa=StubRasa(),  # type: ignore[arg-type]
    )


@contextmanager
def running_app(services: Services) -> Iterator[TestClient]:
    """The app (with its outbox worker) around `services`; the actions' services are restored afterwards."""
    try:
        previous = services_module.current()
    except RuntimeError:
        previous = None
    try:
        with TestClient(create_app(services=services)) as client:
            yield client
    finally:
        if previous is not None:
            services_module.install(previous)
