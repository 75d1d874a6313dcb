"""The chat path in-process: the real triage engine (the protocol's rules; the learned layer is tested on
its own), a stand-in for the Rasa server that can be down, and services built from them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from fastapi.testclient import TestClient

from bot import services as services_module
from bot.db import Database
from bot.main import create_app
from bot.rasa_client import RasaUnavailable
from bot.services import Services
from bot.settings import Settings
from knowledge.clinic import load_clinic_profile
from safety.engine import TriageEngine

URGENT_TEXT = "there is yellow pus coming out of my chin"
EMERGENCY_TEXT = "my lips are swelling and my throat feels tight"
ROUTINE_TEXT = "my face is a bit red today"


@lru_cache(maxsize=1)
def triage_engine() -> TriageEngine:
    """The real engine, built once per test run (the protocol compiles in about a second)."""
    return TriageEngine(load_clinic_profile())


class StubRasa:
    """Answers every patient message with one knowledge-base answer, or is down. Records what it got."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[str] = []

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        if self.down:
            raise RasaUnavailable("ConnectError")
        self.received.append(text)
        if text.startswith("/EXTERNAL"):
            return []  # the Rasa actions' own replies are tested with the real Rasa (tests/e2e)
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
        triage=triage_engine(),
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
